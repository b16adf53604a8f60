-- Allocation failure is a Lua error, never a crash: a child lua5.4 warms the
-- library up, caps its own address space at its size + a headroom
-- (require("adcorre.testing").limit_address_space, RLIMIT_AS as `ulimit -v` sets it), then asks
-- for more than fits. The whole set (10 cases, incl. recovery) is
-- tools/alloc_fail_test.sh. Skipped under AddressSanitizer, whose shadow
-- memory does not fit any such limit.
local sanitized = os.getenv("AC_SANITIZED") == "1"
local run_it = sanitized and pending or it

local WARM = [[
local ac = require("adcorre")
local m = ac.models.minixception{ size = 16, k = 2, d = 4 }
m:forward(ac.rand(2, 1, 16, 16))
local a = ac.randn(64, 64); local _ = ac.matmul(a, a)
collectgarbage(); collectgarbage()
require("adcorre.testing").limit_address_space(%d * 1048576)
]]

local function child(head_mb, code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(WARM:format(head_mb), code, "\n")
  f:close()
  local cmd = ("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q timeout 120 lua5.4 %s 2>&1; echo \"rc=$?\""):format(
    package.path, package.cpath, path)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  os.remove(path)
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out
end

describe("allocation failure", function()
  run_it("a tensor larger than the address space left is a Lua error (exit 1, not a signal)", function()
    local rc, out = child(64, 'require("adcorre").zeros(20000, 20000)')
    assert.are.equal(1, rc, out)
    assert.matches("out of memory allocating 1600000000 bytes", out, 1, true)
  end)

  run_it("a forward that runs out of memory names the module, and the process recovers", function()
    local rc, out = child(96, [[
      local ac = require("adcorre")
      local net = ac.models.minixception{}
      local ok, e = pcall(net.forward, net, ac.zeros(3000, 1, 48, 48))
      assert(not ok)
      print("error: " .. tostring(e))
      collectgarbage(); collectgarbage()
      local y = net:forward(ac.zeros(2, 1, 48, 48))
      print("recovered", y.logits:size(1))
    ]])
    assert.are.equal(0, rc, out)
    assert.matches("in module 1 (nn.Sequential) of models.AdCorreNet", out, 1, true)
    assert.matches("out of memory allocating", out, 1, true)
    assert.matches("recovered\t2", out, 1, true)
  end)

  run_it("the limit is what was asked: a smaller allocation still succeeds", function()
    local rc, out = child(64, 'print("ok", require("adcorre").zeros(1000, 1000):numel())')
    assert.are.equal(0, rc, out)
    assert.matches("ok\t1000000", out, 1, true)
  end)
end)
