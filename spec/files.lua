--- spec/files.lua - the specs' small file helpers: a fresh temporary
-- folder, and whole-file reads and writes in binary mode.
local fs = require("adcorre.fs")

local M = {}

function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(fs.mkdir_p(d))
  return d
end

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

return M
