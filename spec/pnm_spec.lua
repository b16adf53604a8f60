-- Netpbm images (PBM, PGM, PPM; plain P1-P3 and raw P4-P6) decoded as the
-- specification says, against Pillow (tools/pnm_reference.py) on random
-- images of every kind and maximum value, and the bad-input cases.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local PY = "/usr/bin/python3"
local function have_pillow()
  local p = io.popen(PY .. " -c 'import PIL, numpy' 2>&1; echo rc=$?")
  local out = p:read("a")
  p:close()
  return out:match("rc=0") ~= nil
end
local pillow = have_pillow()

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function samples(t)
  -- CHW float in [0,1] -> HWC 8-bit list
  local s = t:shape()
  local c, h, w = s[1], s[2], s[3]
  local v = (t * 255 + 0.5):floor():contiguous():view(c * h * w):totable()
  local out = {}
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      for k = 0, c - 1 do out[#out + 1] = math.tointeger(v[k * h * w + y * w + x + 1]) end
    end
  end
  return out
end

-- A random image of kind P1..P6 with maxval mv; returns its bytes and the
-- expected 8-bit samples by the specification's scaling.
local function make(kind, w, h, mv, rng)
  local c = (kind == 3 or kind == 6) and 3 or 1
  local bitmap = kind == 1 or kind == 4
  local vals, want = {}, {}
  for i = 1, w * h * c do
    local v = bitmap and rng(0, 1) or rng(0, mv)
    vals[i] = v
    want[i] = bitmap and (v == 1 and 0 or 255) or math.floor(v * 255 / mv + 0.5)
  end
  local head = bitmap and ("P%d\n# a comment\n%d %d\n"):format(kind, w, h)
    or ("P%d\n%d # width\n%d\n%d\n"):format(kind, w, h, mv)
  local body = {}
  if kind <= 3 then
    for i, v in ipairs(vals) do body[#body + 1] = tostring(v) .. (i % 7 == 0 and "\n" or " ") end
  elseif kind == 4 then
    for y = 0, h - 1 do
      for bx = 0, (w + 7) // 8 - 1 do
        local byte = 0
        for b = 0, 7 do
          local x = bx * 8 + b
          if x < w and vals[y * w + x + 1] == 1 then byte = byte | (0x80 >> b) end
        end
        body[#body + 1] = string.char(byte)
      end
    end
  else
    for _, v in ipairs(vals) do body[#body + 1] = mv > 255 and string.pack(">I2", v) or string.char(v) end
  end
  return head .. table.concat(body), want, c
end

describe("PNM", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))
  teardown(function() os.execute("rm -rf " .. dir) end)

  local seed = 12345
  local function rng(lo, hi)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return lo + (seed >> 12) % (hi - lo + 1)
  end

  local cases = {}
  for kind = 1, 6 do
    local mvs = (kind == 1 or kind == 4) and { 1 } or { 1, 15, 255, 1000, 65535 }
    for _, mv in ipairs(mvs) do
      local w, h = rng(1, 19), rng(1, 7)
      local bytes, want, c = make(kind, w, h, mv, rng)
      local path = ("%s/P%d_%d.pnm"):format(dir, kind, mv)
      write(path, bytes)
      cases[#cases + 1] = { kind = kind, mv = mv, w = w, h = h, c = c, path = path, want = want }
    end
  end

  it("every kind and maximum value decodes to round(v * 255 / maxval)", function()
    for _, cs in ipairs(cases) do
      local t = ac.image.load(cs.path)
      assert.are.same({ cs.c, cs.h, cs.w }, t:shape(), cs.path)
      assert.are.same(cs.want, samples(t), cs.path)
      assert.are.same({ cs.w, cs.h, cs.c }, { ac.image.info(cs.path) }, cs.path)
    end
  end)

  local pillow_it = pillow and it or pending
  pillow_it("agrees with Pillow on every file" .. (pillow and "" or " (skipped: python3-pil or python3-numpy missing)"), function()
    local paths = {}
    for _, cs in ipairs(cases) do paths[#paths + 1] = cs.path end
    local p = io.popen(PY .. " tools/pnm_reference.py " .. table.concat(paths, " ") .. " 2>&1")
    local out = p:read("a")
    p:close()
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      local cs = cases[n]
      local nums = {}
      for v in line:gmatch("%d+") do nums[#nums + 1] = math.tointeger(tonumber(v)) end
      local approx = line:match("approx%s*$") ~= nil
      assert(#nums >= 3, "Pillow: " .. out)
      assert.are.same({ cs.w, cs.h, cs.c }, { nums[1], nums[2], nums[3] }, cs.path)
      local ours = samples(ac.image.load(cs.path))
      assert.are.equal(#nums - 3, #ours, cs.path)
      for i, v in ipairs(ours) do
        local d = math.abs(v - nums[i + 3])
        if d > (approx and 1 or 0) then
          error(("%s: sample %d is %d, Pillow %d"):format(cs.path, i, v, nums[i + 3]))
        end
      end
    end
    assert.are.equal(#cases, n, out)
  end)

  it("converts channels after decoding: a plain PPM asked for grey, a PBM asked for RGB", function()
    local g = ac.image.decode("P3 2 1 15\n15 0 0  0 0 15\n", 1)
    assert.are.same({ 76, 28 }, samples(g))
    local rgb = ac.image.decode("P1 2 1\n10", 3)
    assert.are.same({ 0, 0, 0, 255, 255, 255 }, samples(rgb))
  end)

  it("refuses what the specification does not allow, saying what is wrong", function()
    local function fails(msg, bytes)
      local ok, e = pcall(ac.image.decode, bytes)
      assert.is_false(ok, msg)
      assert.truthy(tostring(e):find(msg, 1, true), tostring(e))
    end
    fails("PNM maximum value 0", "P5 1 1 0\n\0")
    fails("PNM sample 1 is 16, above the maximum value 15", "P5 2 1 15\n\1\16")
    fails("PNM sample 0 is 65535, above the maximum value 1000", "P5 1 1 1000\n\255\255")
    fails("PNM sample 2 is above the maximum value 7", "P2 3 1 7\n1 2 8\n")
    fails("plain PNM sample 1 is not a number", "P2 2 1 255\n1 x\n")
    fails("plain PBM pixel 1 is '2', expected 0 or 1", "P1 2 1\n02")
    fails("truncated PNM: header says 2 x 2 with 3 channels, the data holds fewer than 12 samples", "P3 2 2 255\n1 2 3\n")
    fails("truncated PNM: header says 9 x 2 bitmap, needs 4 bytes of pixels, file has 3", "P4 9 2\n\0\0\0")
    fails("truncated PNM: the header ends before its maximum value", "P6 3 3")
    fails("PNM width is not a number", "P5 x 1 255\n")
    fails("image has no pixels (0 x 3)", "P5 0 3 255\n")
    fails("PNM width larger than 65535", "P5 70000 1 255\n")
  end)
end)
