--- spec/pillow_ref.lua - the image specs' reference decoder: whether Pillow
-- is there, running a Python script that prints one line per image
-- ("<name> <w> <h> <c> <8-bit samples, HWC>"), and comparing a decoded
-- tensor with such a line.
local M = {}

M.PY = "/usr/bin/python3"

local p = io.popen(M.PY .. " -c 'import PIL, numpy' 2>&1; echo rc=$?")
M.available = p:read("a"):match("rc=0") ~= nil
p:close()
M.missing = " (skipped: python3-pil or python3-numpy missing)"

--- Runs `script` with `dir` as its argument; returns the list of
-- {name =, w =, h =, c =, samples = {...}} it printed, and its whole output.
function M.run(script, dir)
  local sp = dir .. "/make.py"
  local f = assert(io.open(sp, "w"))
  f:write(script)
  f:close()
  local h = io.popen(M.PY .. " " .. sp .. " " .. dir .. " 2>&1")
  local out = h:read("a")
  h:close()
  local list = {}
  for line in out:gmatch("[^\n]+") do
    local nums = {}
    for v in line:gmatch("%s(%d+)") do nums[#nums + 1] = math.tointeger(tonumber(v)) end
    if #nums <= 3 then error("Pillow: " .. out, 2) end
    list[#list + 1] = { name = line:match("^(%S+)"), w = nums[1], h = nums[2], c = nums[3],
                        samples = { table.unpack(nums, 4) } }
  end
  return list, out
end

--- Errors unless t (float [c, h, w] in [0, 1]) holds r's 8-bit samples.
function M.check(t, r)
  local s = t:shape()
  local c, h, w = r.c, r.h, r.w
  if s[1] ~= c or s[2] ~= h or s[3] ~= w then
    error(("%s: shape %s, Pillow %d x %d x %d"):format(r.name, table.concat(s, "x"), c, h, w), 2)
  end
  local v = (t * 255 + 0.5):floor():contiguous():view(c * h * w):totable()
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      for k = 0, c - 1 do
        local got, want = v[k * h * w + y * w + x + 1], r.samples[(y * w + x) * c + k + 1]
        if got ~= want then error(("%s: (%d,%d,%d) is %d, Pillow %d"):format(r.name, x, y, k, got, want)) end
      end
    end
  end
end

return M
