-- Truncated BMP and TGA files are errors naming the file and what is
-- missing (csrc/image/rastercheck.c); stb_image decoded the missing rows as
-- zeros. Whole files, written by Pillow in every layout (BMP 1/4/8/24/32-bit,
-- TGA grey/RGB/RGBA/palette, raw and RLE), decode to Pillow's pixels, and
-- every cut of them is refused.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local pillow_ref = require("pillow_ref")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("BMP and TGA", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))
  teardown(function() os.execute("rm -rf " .. dir) end)

  local run = pillow_ref.available and it or pending
  run("whole files decode to Pillow's pixels; every truncation is an error that names the file" ..
    (pillow_ref.available and "" or pillow_ref.missing), function()
    local script = [[
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(3)
rgb = rng.integers(0, 256, (7, 13, 3), dtype=np.uint8)
rgb[:, 4:9] = rgb[0, 0]                      # runs, so RLE packs something
grey = rgb[:, :, 0].copy()
rgba = np.dstack([rgb, rng.integers(0, 256, (7, 13), dtype=np.uint8)])
cases = [
  ("bmp1", Image.fromarray(grey > 127), "bmp", {}),
  ("bmp4", Image.fromarray(rgb).quantize(12), "bmp", {}),
  ("bmp8", Image.fromarray(grey), "bmp", {}),
  ("bmp24", Image.fromarray(rgb), "bmp", {}),
  ("bmp32", Image.fromarray(rgba), "bmp", {}),
  ("tga_grey", Image.fromarray(grey), "tga", {}),
  ("tga_rgb", Image.fromarray(rgb), "tga", {}),
  ("tga_rgba", Image.fromarray(rgba), "tga", {}),
  ("tga_pal", Image.fromarray(rgb).quantize(12), "tga", {}),
  ("tga_rle_grey", Image.fromarray(grey), "tga", {"compression": "tga_rle"}),
  ("tga_rle_rgb", Image.fromarray(rgb), "tga", {"compression": "tga_rle"}),
  ("tga_rle_rgba", Image.fromarray(rgba), "tga", {"compression": "tga_rle"}),
]
for name, im, fmt, kw in cases:
    path = "%s/%s.%s" % (d, name, fmt)
    im.save(path, **kw)
    back = Image.open(path)
    mode = {"1": "L", "L": "L", "P": "RGB", "RGB": "RGB", "RGBA": "RGBA"}[back.mode]
    a = np.array(back.convert(mode))
    c = 1 if a.ndim == 2 else a.shape[2]
    print(path, a.shape[1], a.shape[0], c, " ".join(str(int(v)) for v in a.ravel()))
]]
    local list, out = pillow_ref.run(script, dir)
    local n = 0
    for _, r in ipairs(list) do
      local path = r.name
      pillow_ref.check(ac.image.load(path, r.c), r)
      -- every cut that removes pixel data: an error naming the file, never zeros
      local bytes = read(path)
      local kind = path:match("%.bmp$") and "BMP" or "TGA"
      -- (not the last byte: a BMP's last row may end in padding; Pillow ends a TGA with the
      -- 26-byte TGA 2.0 footer, which is optional)
      local cuts = { #bytes - (kind == "TGA" and 30 or 5), #bytes // 2, 40 }
      for _, cut in pairs(cuts) do
        if cut > 20 and cut < #bytes then
          local tp = dir .. "/cut." .. kind:lower()
          local g = assert(io.open(tp, "wb"))
          g:write(bytes:sub(1, cut))
          g:close()
          local ok, e = pcall(ac.image.load, tp)
          assert.is_false(ok, ("%s cut to %d of %d bytes decoded"):format(path, cut, #bytes))
          assert.truthy(tostring(e):find(tp .. ": truncated " .. kind, 1, true)
            or tostring(e):find(tp .. ": cannot decode", 1, true), tostring(e))
        end
      end
      n = n + 1
    end
    assert.are.equal(12, n, out)
  end)

  it("a BMP whose pixels are cut names the sizes", function()
    -- 2 x 2, 24-bit: rows of 6 bytes padded to 8, pixels at 54
    local hdr = "BM" .. string.pack("<I4I4I4", 70, 0, 54) ..
      string.pack("<I4i4i4I2I2I4I4i4i4I4I4", 40, 2, 2, 1, 24, 0, 16, 2835, 2835, 0, 0)
    local whole = hdr .. ("\1\2\3\4\5\6\0\0"):rep(2)
    assert.are.same({ 3, 2, 2 }, ac.image.decode(whole):shape())
    local ok, e = pcall(ac.image.decode, whole:sub(1, 54 + 8))
    assert.is_false(ok)
    assert.truthy(tostring(e):find("<memory>: truncated BMP: header says 2 x 2 at 24 bits per pixel, pixels " ..
      "from byte 54 need 68 bytes, the file has 62", 1, true), tostring(e))
  end)

  it("an RLE TGA whose packets end early names how far they reach", function()
    -- 4 x 1 RGB, type 10: one run packet of 3 pixels, then nothing
    local hdr = string.char(0, 0, 10) .. ("\0"):rep(9) .. string.pack("<I2I2", 4, 1) .. string.char(24, 0)
    local ok, e = pcall(ac.image.decode, hdr .. string.char(0x82, 1, 2, 3))
    assert.is_false(ok)
    assert.truthy(tostring(e):find("<memory>: truncated TGA: the run-length data ends after 3 of its 4 x 1 pixels",
      1, true), tostring(e))
    local t = ac.image.decode(hdr .. string.char(0x83, 1, 2, 3))
    assert.are.same({ 3, 1, 4 }, t:shape())
  end)
end)
