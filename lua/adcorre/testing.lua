--- adcorre.testing: switches for specs, tools and benchmarks only. They live
-- in the same shared object as adcorre.core (so they act on its kernels) but
-- are opened by a separate entry point, luaopen_adcorre_testing, that the
-- production module never calls.
--
--   local testing = require("adcorre.testing")
--   testing.convfast_enable(false)   -- Conv2d on the reference kernels
--   testing.isa_limit("generic")     -- every kernel on its portable loops
--   testing.isa_limit(nil)           -- back to the CPU's best ("avx2", "avx512" cap it)
--   testing.limit_address_space(headroom_bytes)
require("adcorre.core")
-- The shared object adcorre.core was loaded from (Lua's table of loaded C
-- libraries, keyed by path), not merely the first on package.cpath: a
-- second copy of the library would carry switches that act on nothing.
local path
for p in pairs(debug.getregistry()._CLIBS or {}) do
  if type(p) == "string" and p:match("adcorre[/\\]core%.so$") then path = p end
end
path = path or assert(package.searchpath("adcorre.core", package.cpath))
local open = assert(package.loadlib(path, "luaopen_adcorre_testing"))
return open()
