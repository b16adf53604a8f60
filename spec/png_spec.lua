-- PNG integrity: a chunk whose CRC does not match, image data whose Adler-32
-- does not match, and image data that ends early are errors that name the
-- file and the damage (libpng, csrc/image/png.c); whole files decode to the
-- pixels they hold, for every colour type Pillow writes.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local CRC = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do c = (c & 1) ~= 0 and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  CRC[n] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = CRC[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end
local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return (b << 16) | a
end
local function chunk(typ, data, bad_crc)
  local crc = crc32(typ .. data)
  if bad_crc then crc = crc ~ 1 end
  return string.pack(">I4", #data) .. typ .. data .. string.pack(">I4", crc)
end
-- zlib stream of stored (uncompressed) blocks
local function zlib_stored(raw, bad_adler)
  local out = { "\x78\x01" }
  local pos = 1
  repeat
    local piece = raw:sub(pos, pos + 65534)
    pos = pos + #piece
    local final = pos > #raw and 1 or 0
    out[#out + 1] = string.char(final) .. string.pack("<I2I2", #piece, (~#piece) & 0xFFFF) .. piece
  until pos > #raw
  local ad = adler32(raw)
  if bad_adler then ad = ad ~ 1 end
  out[#out + 1] = string.pack(">I4", ad)
  return table.concat(out)
end

-- A w x h 8-bit RGB image whose pixel (x, y) is (x*40, y*60, x+y), filter 0.
local W, H = 5, 3
local function raw_rgb()
  local rows = {}
  for y = 0, H - 1 do
    local r = { "\0" }
    for x = 0, W - 1 do r[#r + 1] = string.char(x * 40, y * 60, x + y) end
    rows[#rows + 1] = table.concat(r)
  end
  return table.concat(rows)
end
local function png(opts)
  opts = opts or {}
  local ihdr = string.pack(">I4I4", W, H) .. "\8\2\0\0\0"
  local idat = opts.idat or zlib_stored(raw_rgb(), opts.bad_adler)
  local parts = { "\x89PNG\r\n\x1a\n", chunk("IHDR", ihdr) }
  if opts.text then parts[#parts + 1] = chunk("tEXt", "Comment\0hello", opts.bad_text_crc) end
  parts[#parts + 1] = chunk("IDAT", idat, opts.bad_idat_crc)
  if not opts.no_iend then parts[#parts + 1] = chunk("IEND", "") end
  return table.concat(parts)
end

local function fails(msg, bytes)
  local ok, e = pcall(ac.image.decode, bytes)
  assert.is_false(ok, msg)
  assert.truthy(tostring(e):find(msg, 1, true), tostring(e))
end

describe("PNG integrity", function()
  it("a whole file decodes to its pixels", function()
    local t = ac.image.decode(png({ text = true }))
    assert.are.same({ 3, H, W }, t:shape())
    local v = (t * 255 + 0.5):floor():totable()
    assert.are.equal(160, v[1][1][5])
    assert.are.equal(120, v[2][3][1])
    assert.are.equal(6, v[3][3][5])
  end)

  it("a wrong CRC in the image data is a broken data stream", function()
    fails("<memory>: cannot decode image (PNG: broken data stream: a chunk's CRC does not match its data)",
      png({ bad_idat_crc = true }))
  end)

  it("a wrong CRC in an ancillary chunk is an error too", function()
    fails("broken data stream: a chunk's CRC does not match its data", png({ text = true, bad_text_crc = true }))
  end)

  it("a wrong Adler-32 (CRC recomputed over the damaged data) is a broken data stream", function()
    fails("<memory>: cannot decode image (PNG: broken data stream: the image data's Adler-32 checksum does not match)",
      png({ bad_adler = true }))
  end)

  it("damaged pixels with both checksums recomputed decode (nothing to detect), damaged ones without do not", function()
    local raw = raw_rgb()
    local damaged = raw:sub(1, 7) .. "X" .. raw:sub(9)
    assert.has_no.errors(function() ac.image.decode(png({ idat = zlib_stored(damaged) })) end)
    local stale = zlib_stored(raw)
    local idat = stale:sub(1, 12) .. "X" .. stale:sub(14) -- Adler of the undamaged data
    fails("Adler-32 checksum does not match", png({ idat = idat }))
  end)

  it("image data that ends before the last row is a truncated file", function()
    local short = zlib_stored(raw_rgb():sub(1, 20))
    fails("<memory>: cannot decode image (PNG: truncated file: the image data ends before the last row)",
      png({ idat = short }))
    local whole = png()
    fails("PNG chunk IDAT says", whole:sub(1, #whole - 30)) -- the chunk check comes first
  end)

  it("a file cut after its image data (no IEND) still decodes: the image is whole", function()
    local t = ac.image.decode(png({ no_iend = true }))
    assert.are.same({ 3, H, W }, t:shape())
  end)

  it("an unknown critical chunk, or one whose type is not letters, is refused in printable words", function()
    local ihdr = string.pack(">I4I4", W, H) .. "\8\2\0\0\0"
    local function with(typ)
      return "\x89PNG\r\n\x1a\n" .. chunk("IHDR", ihdr) .. chunk(typ, "") ..
        chunk("IDAT", zlib_stored(raw_rgb())) .. chunk("IEND", "")
    end
    fails("(PNG: QXYZ: unhandled critical chunk)", with("QXYZ"))
    fails("(PNG: [D5][FF][F2][00]: invalid chunk type)", with("\xd5\xff\xf2\0"))
    assert.has_no.errors(function() ac.image.decode(with("qxYz")) end) -- unknown ancillary: skipped
  end)

  it("errors name the file", function()
    local p = os.tmpname()
    local f = assert(io.open(p, "wb"))
    f:write(png({ bad_idat_crc = true }))
    f:close()
    local ok, e = pcall(ac.image.load, p)
    os.remove(p)
    assert.is_false(ok)
    assert.truthy(tostring(e):find(p .. ": cannot decode image (PNG: broken data stream", 1, true), tostring(e))
  end)
end)

local pillow_ref = require("pillow_ref")

describe("PNG colour types", function()
  local run = pillow_ref.available and it or pending
  run("palette, 1/2/4-bit grey, grey + alpha, RGB, RGBA, 16-bit grey and tRNS decode to the pixels written" ..
    (pillow_ref.available and "" or pillow_ref.missing), function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(fs.mkdir_p(dir))
    -- Pillow writes each image and prints the 8-bit HWC samples a reader must give:
    -- 16-bit samples by their high byte (what stb_image gave), tRNS as alpha.
    local script = [[
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(7)
def emit(name, im, want, **kw):
    im.save(d + "/" + name + ".png", **kw)
    print(name, want.shape[1], want.shape[0], 1 if want.ndim == 2 else want.shape[2],
          " ".join(str(int(v)) for v in want.ravel()))
g = rng.integers(0, 256, (4, 6), dtype=np.uint8)
emit("L", Image.fromarray(g), g)
rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
emit("RGB", Image.fromarray(rgb), rgb)
rgba = rng.integers(0, 256, (4, 6, 4), dtype=np.uint8)
emit("RGBA", Image.fromarray(rgba), rgba)
la = rng.integers(0, 256, (4, 6, 2), dtype=np.uint8)
emit("LA", Image.fromarray(la, "LA"), la)
b = rng.integers(0, 2, (4, 9), dtype=np.uint8).astype(bool)
emit("1bit", Image.fromarray(b), b.astype(np.uint8) * 255)
for bits in (2, 4):
    q = rng.integers(0, 1 << bits, (4, 6), dtype=np.uint8)
    emit("grey%d" % bits, Image.fromarray(q * (255 // ((1 << bits) - 1))), q * (255 // ((1 << bits) - 1)), bits=bits)
pal = Image.fromarray(rgb).quantize(16)
emit("P", pal, np.array(pal.convert("RGB")))
g16 = rng.integers(0, 65536, (4, 6)).astype(np.uint16)
emit("I16", Image.fromarray(g16, "I;16"), (g16 >> 8).astype(np.uint8))
t = Image.fromarray(rgb[:, :, 0]); t.info["transparency"] = int(rgb[0, 0, 0])
want = np.stack([rgb[:, :, 0], np.where(rgb[:, :, 0] == rgb[0, 0, 0], 0, 255).astype(np.uint8)], 2)
emit("Ltrns", t, want, transparency=int(rgb[0, 0, 0]))
]]
    local list, out = pillow_ref.run(script, dir)
    local n = 0
    for _, r in ipairs(list) do
      pillow_ref.check(ac.image.load(dir .. "/" .. r.name .. ".png"), r)
      n = n + 1
    end
    os.execute("rm -rf " .. dir)
    assert.are.equal(10, n, out)
  end)
end)
