-- spec/image_spec.lua - ac.image: decoding (PNG, JPEG, PNM), encoding,
-- resize (bilinear up / area down), crop, pad, colour conversion,
-- normalisation, grid, and the errors of missing / truncated / corrupt files.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local image = ac.image

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(fs.mkdir_p(d))
  return d
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function maxdiff(a, b) return ((a - b):abs():max()) end

describe("image load / save", function()
  local dir
  setup(function() dir = tmpdir() end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("PNG round trip is exact up to 8-bit quantisation (grey and RGB)", function()
    ac.manual_seed(1)
    for _, c in ipairs({ 1, 3, 4 }) do
      local x = ac.rand(c, 7, 9)
      local p = dir .. "/x" .. c .. ".png"
      image.save(p, x)
      local y = image.load(p)
      assert.same({ c, 7, 9 }, y:shape())
      assert.is_true(maxdiff(x, y) <= 0.5 / 255 + 1e-6)
    end
  end)

  it("values are quantised with rounding and clamped to [0, 1]", function()
    local x = ac.tensor({ { { -1, 0, 0.5, 1, 7 } } })
    image.save(dir .. "/clamp.png", x)
    local y = image.load(dir .. "/clamp.png")
    assert.same({ 0, 0, 128, 255, 255 }, (y * 255):view(5):totable())
  end)

  it("JPEG round trip of flat colours stays within 2/255", function()
    local x = ac.zeros(3, 16, 16)
    x[1]:fill(0.2); x[2]:fill(0.6); x[3]:fill(0.9)
    image.save(dir .. "/flat.jpg", x, { quality = 100 })
    local y = image.load(dir .. "/flat.jpg")
    assert.same({ 3, 16, 16 }, y:shape())
    assert.is_true(maxdiff(x, y) <= 2 / 255)
    local w, h, c = image.info(dir .. "/flat.jpg")
    assert.same({ 16, 16, 3 }, { w, h, c })
  end)

  it("channel conversion on load: RGB -> grey and grey -> RGB", function()
    local x = ac.zeros(3, 4, 4)
    x[1]:fill(1)                                    -- pure red
    image.save(dir .. "/red.png", x)
    local g = image.load(dir .. "/red.png", 1)
    assert.same({ 1, 4, 4 }, g:shape())
    assert.is_true(math.abs(g[1][1][1] - 77 / 255) <= 1 / 255) -- stb luma 77/256 of red
    local grey = ac.full({ 1, 4, 4 }, 100 / 255)
    image.save(dir .. "/grey.png", grey)
    local rgb = image.load(dir .. "/grey.png", 3)
    assert.same({ 3, 4, 4 }, rgb:shape())
    assert.is_true(maxdiff(rgb[2], grey[1]) < 1e-6)
  end)

  it("decodes PNM (PGM / PPM) files and encoded bytes in memory", function()
    write(dir .. "/a.pgm", "P5\n3 2\n255\n" .. string.char(0, 51, 102, 153, 204, 255))
    local g = image.load(dir .. "/a.pgm")
    assert.same({ 1, 2, 3 }, g:shape())
    assert.same({ 0, 51, 102, 153, 204, 255 }, (g * 255 + 0.5):floor():view(6):totable())
    write(dir .. "/a.ppm", "P6\n1 1\n255\n" .. string.char(10, 20, 30))
    local p = image.load(dir .. "/a.ppm")
    assert.same({ 10, 20, 30 }, (p * 255 + 0.5):floor():view(3):totable())
    local bytes = read(dir .. "/a.pgm")
    assert.is_true(maxdiff(image.decode(bytes), g) == 0)
  end)

  it("writes through a temporary file: no leftovers, the target replaced", function()
    image.save(dir .. "/r.png", ac.zeros(1, 2, 2))
    image.save(dir .. "/r.png", ac.ones(1, 2, 2))
    assert.equal(1, image.load(dir .. "/r.png"):min())
    local p = io.popen("ls '" .. dir .. "' | grep -c tmp || true")
    local n = tonumber(p:read("a"))
    p:close()
    assert.equal(0, n)
  end)

  it("errors name the file: missing, empty, truncated JPEG, corrupt PNG, truncated PNG", function()
    local function err(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.matches("nope%.png: cannot open", err(function() image.load(dir .. "/nope.png") end))
    write(dir .. "/empty.png", "")
    assert.matches("empty%.png: empty file", err(function() image.load(dir .. "/empty.png") end))
    local x = ac.rand(3, 32, 32)
    image.save(dir .. "/full.jpg", x)
    local bytes = read(dir .. "/full.jpg")
    write(dir .. "/half.jpg", bytes:sub(1, #bytes // 2))
    assert.matches("half%.jpg: truncated or corrupt JPEG", err(function() image.load(dir .. "/half.jpg") end))
    write(dir .. "/bad.png", "\137PNG\r\n\26\n" .. ("x"):rep(100))
    assert.matches("bad%.png: cannot decode image", err(function() image.load(dir .. "/bad.png") end))
    image.save(dir .. "/full.png", x)
    local pb = read(dir .. "/full.png")
    write(dir .. "/cut.png", pb:sub(1, #pb // 2))
    assert.matches("cut%.png: cannot decode image", err(function() image.load(dir .. "/cut.png") end))
    write(dir .. "/text.jpg", "hello world")
    assert.matches("text%.jpg", err(function() image.load(dir .. "/text.jpg") end))
    assert.matches("cannot write", err(function() image.save(dir .. "/no/such/dir/x.png", x) end))
    assert.matches("cannot tell the format", err(function() image.save(dir .. "/x.webp", x) end))
    assert.matches("channels", err(function() image.load(dir .. "/full.png", 5) end))
    assert.matches("2 channels", err(function() image.save(dir .. "/two.png", ac.zeros(2, 3, 3)) end))
  end)

  it("a JPEG Huffman table with more than 256 codes is an error from decode, load and info", function()
    -- fuzz-found input (the first byte is the harness's channel choice); stb_image 2.27 overflowed on
    -- it; libjpeg-turbo refuses the table
    local bytes = read("spec/fixtures/fuzz/image/jpeg_dht_counts_over_256.bin"):sub(2)
    local ok, e = pcall(image.decode, bytes)
    assert.is_false(ok)
    assert.matches("image.decode: <memory>: corrupt JPEG %(Bogus Huffman table definition%)", e)
    write(dir .. "/dht.jpg", bytes)
    assert.matches("dht%.jpg: corrupt JPEG %(Bogus Huffman", select(2, pcall(image.load, dir .. "/dht.jpg")))
    assert.matches("dht%.jpg: corrupt JPEG %(Bogus Huffman", select(2, pcall(image.info, dir .. "/dht.jpg")))
  end)
end)

describe("image geometry and colour", function()
  it("resize to the same size is the identity", function()
    local x = ac.rand(3, 5, 6)
    assert.equal(0, maxdiff(image.resize(x, 5, 6), x))
  end)

  it("bilinear enlargement uses half-pixel centres (PyTorch align_corners=False)", function()
    local x = ac.tensor({ { { 0, 1 } } })
    local y = image.resize(x, 1, 4)
    -- torch.nn.functional.interpolate(x, size=4, mode="linear", align_corners=False)
    local want = { 0, 0.25, 0.75, 1 }
    for i = 1, 4 do assert.is_true(math.abs(y[1][1][i] - want[i]) < 1e-6) end
    local z = image.resize(ac.tensor({ { { 0, 2 }, { 4, 6 } } }), 4, 4)
    -- separable: rows then columns
    assert.is_true(math.abs(z[1][1][1] - 0) < 1e-6)
    assert.is_true(math.abs(z[1][2][2] - (0.75 * 0.75 * 0 + 0.75 * 0.25 * 2 + 0.25 * 0.75 * 4 + 0.25 * 0.25 * 6)) < 1e-6)
  end)

  it("shrinking averages areas: integer factors equal average pooling, fractions weigh overlaps", function()
    local x = ac.arange(0, 16):view(1, 4, 4):float()
    local y = image.resize(x, 2, 2)
    assert.same({ { { 2.5, 4.5 }, { 10.5, 12.5 } } }, y:totable())
    local r = image.resize(ac.tensor({ { { 0, 3, 6 } } }), 1, 2)
    -- output 1 covers [0, 1.5): (0 + 0.5 * 3) / 1.5 ; output 2 covers [1.5, 3): (0.5 * 3 + 6) / 1.5
    assert.is_true(math.abs(r[1][1][1] - 1) < 1e-6)
    assert.is_true(math.abs(r[1][1][2] - 5) < 1e-6)
    -- the mean is preserved when shrinking
    local big = ac.rand(2, 37, 53)
    local s = image.resize(big, 10, 11)
    assert.is_true(math.abs(s:mean() - big:mean()) < 2e-3)
    assert.is_true(s:min() >= big:min() - 1e-6 and s:max() <= big:max() + 1e-6)
  end)

  it("resize works on batches [N, C, H, W]", function()
    local x = ac.rand(2, 3, 8, 8)
    local y = image.resize(x, 4, 4)
    assert.same({ 2, 3, 4, 4 }, y:shape())
    assert.is_true(maxdiff(y[2], image.resize(x[2], 4, 4)) < 1e-7)
  end)

  it("crop (1-based, outside filled) and center_crop", function()
    local x = ac.arange(1, 17):view(1, 4, 4):float()
    assert.same({ { { 6, 7 }, { 10, 11 } } }, image.crop(x, 2, 2, 2, 2):totable())
    assert.same({ { { -1, -1 }, { -1, 1 } } }, image.crop(x, 0, 0, 2, 2, -1):totable())
    assert.same({ { { 6, 7 }, { 10, 11 } } }, image.center_crop(x, 2):totable())
  end)

  it("pad: constant, replicate and reflect (PyTorch semantics)", function()
    local x = ac.tensor({ { { 1, 2, 3 } } })
    assert.same({ 0, 0, 1, 2, 3, 0, 0 }, image.pad(x, { 0, 0, 2, 2 }):view(7):totable())
    assert.same({ 1, 1, 1, 2, 3, 3, 3 }, image.pad(x, { 0, 0, 2, 2 }, "replicate"):view(7):totable())
    assert.same({ 3, 2, 1, 2, 3, 2, 1 }, image.pad(x, { 0, 0, 2, 2 }, "reflect"):view(7):totable())
    assert.same({ 3, 5, 5 }, image.pad(ac.zeros(3, 3, 3), 1):shape())
  end)

  it("RGB <-> grey with BT.601 weights", function()
    local x = ac.zeros(3, 1, 1)
    x[1][1][1] = 1; x[2][1][1] = 0.5; x[3][1][1] = 0.25
    local g = image.to_grey(x)
    assert.is_true(math.abs(g[1][1][1] - (0.299 + 0.587 * 0.5 + 0.114 * 0.25)) < 1e-6)
    local rgb = image.to_rgb(g)
    assert.same({ 3, 1, 1 }, rgb:shape())
    assert.equal(g[1][1][1], rgb[3][1][1])
    assert.same({ 4, 1, 5, 5 }, image.to_grey(ac.rand(4, 3, 5, 5)):shape())
    assert.has_error(function() image.to_grey(ac.zeros(2, 4, 4)) end)
  end)

  it("normalize per channel in place, rejects a zero std", function()
    local x = ac.ones(2, 3, 2, 2)
    image.normalize(x, { 0.5, 1, 0 }, { 0.5, 1, 2 })
    assert.equal(1, x[1][1][1][1])
    assert.equal(0, x[2][2][2][2])
    assert.equal(0.5, x[1][3][1][2])
    local ok, e = pcall(image.normalize, ac.ones(1, 2, 2), 0, 0)
    assert.is_false(ok)
    assert.matches("std", e)
  end)

  it("grid tiles images with padding", function()
    local g = image.grid(ac.zeros(5, 1, 4, 4), { ncol = 3, pad = 1 })
    assert.same({ 1, 2 * 4 + 3, 3 * 4 + 4 }, g:shape())
    assert.equal(1, g[1][1][1])
    assert.equal(0, g[1][2][2])
  end)
end)
