-- spec/exif_spec.lua - ac.image.load applies a JPEG's EXIF orientation
-- (tags 1-8, little- and big-endian EXIF, as Pillow's exif_transpose and
-- OpenCV's imread do), {exif = false} keeps the stored pixels, and damaged
-- EXIF data is ignored rather than trusted.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local files = require("files")
local tmpdir, read, write = files.tmpdir, files.read, files.write

-- An APP1 segment whose IFD0 holds Orientation = v.
local function app1(v, big_endian)
  local e = big_endian and ">" or "<"
  local tiff = (big_endian and "MM" or "II") .. string.pack(e .. "I2I4", 42, 8)
      .. string.pack(e .. "I2", 1) .. string.pack(e .. "I2I2I4I2I2", 0x0112, 3, 1, v, 0) .. string.pack(e .. "I4", 0)
  local body = "Exif\0\0" .. tiff
  return "\xFF\xE1" .. string.pack(">I2", #body + 2) .. body
end

local function with_exif(jpeg, seg) return jpeg:sub(1, 2) .. seg .. jpeg:sub(3) end

-- The upright version of pixels t ([C][H][W] tables) for orientation o,
-- written from the definitions of the tags.
local function upright(t, o)
  local C, H, W = #t, #t[1], #t[1][1]
  local ow, oh = W, H
  if o >= 5 then ow, oh = H, W end
  local out = {}
  for c = 1, C do
    out[c] = {}
    for y = 0, oh - 1 do
      local row = {}
      for x = 0, ow - 1 do
        local sx, sy
        if o == 1 then sx, sy = x, y
        elseif o == 2 then sx, sy = W - 1 - x, y
        elseif o == 3 then sx, sy = W - 1 - x, H - 1 - y
        elseif o == 4 then sx, sy = x, H - 1 - y
        elseif o == 5 then sx, sy = y, x
        elseif o == 6 then sx, sy = y, H - 1 - x
        elseif o == 7 then sx, sy = W - 1 - y, H - 1 - x
        else sx, sy = W - 1 - y, x end
        row[x + 1] = t[c][sy + 1][sx + 1]
      end
      out[c][y + 1] = row
    end
  end
  return out
end

describe("EXIF orientation", function()
  local dir, base
  setup(function()
    dir = tmpdir()
    -- an asymmetric RGB picture: 24 wide, 16 high, a bright block top-left
    local img = ac.zeros(3, 16, 24)
    for y = 1, 16 do
      for x = 1, 24 do
        img[1][y][x] = x / 24
        img[2][y][x] = y / 16
        img[3][y][x] = (x <= 6 and y <= 4) and 1 or 0.2
      end
    end
    ac.image.save(dir .. "/plain.jpg", img, { quality = 100 })
    base = read(dir .. "/plain.jpg")
  end)

  for o = 1, 8 do
    it("honours orientation " .. o, function()
      for _, be in ipairs({ false, true }) do
        local p = dir .. ("/o%d%s.jpg"):format(o, be and "m" or "i")
        write(p, with_exif(base, app1(o, be)))
        local stored = ac.image.load(p, 3, { exif = false })
        assert.same({ 3, 16, 24 }, stored:shape())
        local got = ac.image.load(p, 3)
        local want = upright(stored:totable(), o)
        assert.same(want, got:totable())
        if o >= 5 then assert.same({ 3, 24, 16 }, got:shape()) end
        -- the bright block ends up where an upright viewer sees it
        local grey = ac.image.load(p, 1)
        assert.same(got:shape()[2], grey:shape()[2])
        -- decode() of the bytes agrees with load()
        assert.same(got:totable(), ac.image.decode(read(p), 3):totable())
      end
    end)
  end

  it("ignores damaged or absent EXIF data", function()
    local plain = ac.image.load(dir .. "/plain.jpg", 3):totable()
    local bad = {
      app1(9),                                                  -- orientation out of range
      "\xFF\xE1\x00\x10Exif\0\0II\x2A\x00\xFF\xFF\xFF\x7F",     -- IFD offset past the segment
      "\xFF\xE1\x00\x08Exif\0\0",                               -- no TIFF header
      "\xFF\xE1\x00\x12Exif\0\0MM\x00\x2A\x00\x00\x00\x08\x00\x09", -- 9 entries announced, none there
    }
    for i, seg in ipairs(bad) do
      local p = dir .. ("/bad%d.jpg"):format(i)
      write(p, with_exif(base, seg))
      assert.same(plain, ac.image.load(p, 3):totable())
    end
    assert.has_error(function() ac.image.load(dir .. "/plain.jpg", 3, "no") end,
      "image.load: opts must be a table, got string")
  end)

  it("gives the pixels OpenCV's imread gives", function()
    local probe = io.popen("/usr/bin/python3 -c 'import cv2' 2>/dev/null; echo $?")
    local have = probe:read("l") == "0"
    probe:close()
    if not have then
      pending("python3-opencv (cv2) is not installed")
      return
    end
    local files = {}
    for o = 1, 8 do
      files[o] = dir .. ("/o%di.jpg"):format(o)
      write(files[o], with_exif(base, app1(o, false)))
    end
    local py = "import cv2,numpy as np,sys\n" ..
        "for i,p in enumerate(sys.argv[1:]):\n" ..
        "  a=cv2.imread(p,cv2.IMREAD_COLOR)[:,:,::-1].transpose(2,0,1)\n" ..
        "  np.save('" .. dir .. "/cv%d.npy'%(i+1), np.ascontiguousarray(a))\n"
    write(dir .. "/cv.py", py)
    assert(os.execute("/usr/bin/python3 " .. dir .. "/cv.py " .. table.concat(files, " ")))
    for o = 1, 8 do
      local ref = ac.load_npy(dir .. ("/cv%d.npy"):format(o)):float() / 255
      local got = ac.image.load(files[o], 3)
      assert.same(ref:shape(), got:shape())
      assert.is_true((ref - got):abs():max() <= 1.5 / 255, "orientation " .. o)
    end
  end)
end)
