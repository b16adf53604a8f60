-- Inputs the fuzz harnesses (fuzz/) found crashing or misbehaving, fed
-- through the Lua API. Each lives under spec/fixtures/fuzz/<harness>/ in the
-- harness's own input format (for csv and image the first byte is the mode
-- byte of fuzz_csv.c / fuzz_image.c; the rest is the file). Every file in
-- those folders is replayed: it must give a clear Lua error or a valid
-- result, never a crash. Files with a known expected message are checked
-- against it.
local ac = require("adcorre")
local serialize = require("adcorre.serialize")

local ROOT = "spec/fixtures/fuzz"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function files_of(kind)
  local out = {}
  local p = io.popen("ls -1 '" .. ROOT .. "/" .. kind .. "' 2>/dev/null")
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  table.sort(out)
  return out
end

local function strip(e) return (tostring(e):gsub("^[%w%./_%-]+%.lua:%d+: ", "", 1)) end

-- Expected messages of the recorded inputs (file name -> exact message).
local expected = {
  npy = {
    ["descr_key_at_header_end.npy"] = "load_npy: spec/fixtures/fuzz/npy/descr_key_at_header_end.npy: header has no 'descr'",
    -- shape (0, 28423, 2036854775807582): no elements, but the strides overflowed int64
    ["empty_dim_stride_overflow.npy"] =
      "load_npy: spec/fixtures/fuzz/npy/empty_dim_stride_overflow.npy: tensor of that shape is too large",
  },
  image = {
    -- JPEG goes to libjpeg-turbo (csrc/jpegdec.c), never to stb_image 2.27, whose Huffman code wrote
    -- past its arrays on the first three and read outside its table (or aborted) on the fourth.
    -- A DHT segment declaring more than 256 codes:
    ["jpeg_dht_counts_over_256.bin"] = "image.decode: <memory>: corrupt JPEG (Bogus Huffman table definition)",
    -- the same table cut by the end of the file:
    ["jpeg_dht_cut_by_eof_counts_over_256.bin"] =
      "image.decode: <memory>: truncated or corrupt JPEG (no end-of-image marker)",
    -- the same behind 0xFF fill bytes before the SOI marker (the format test skips them too):
    ["jpeg_ff_fill_before_soi_dht_over_256.bin"] = "image.decode: <memory>: corrupt JPEG (Bogus Huffman table definition)",
    -- a code missing from a Huffman table (stb_image read at index -64983); libjpeg-turbo stops earlier
    -- on this file, at its undefined quantisation table:
    ["jpeg_huffman_code_negative_index.bin"] =
      "image.decode: <memory>: corrupt JPEG (Quantization table 0x00 was not defined)",
    -- a 16-bit PGM with almost no pixel data: stb_image read past its buffer and succeeded
    ["pgm_16bit_short_data_heap_overread.bin"] = "image.decode: <memory>: truncated PNM: header says 15 x 3, " ..
      "1 channel of 16 bits, needs 90 bytes of pixels, file has 6",
    -- an 85-byte PNG whose IDAT length field claims 1.4 GB: stb_image reallocated that much before
    -- finding the data missing; chunk lengths are now checked against the file first
    ["png_idat_length_claims_1_4_gb.bin"] = "image.decode: <memory>: cannot decode image (PNG chunk IDAT says " ..
      "1493172252 bytes, the file has 44 left: truncated or corrupt)",
    -- an empty IDAT chunk before any image data: stb_image 2.27 applies an offset to a NULL pointer
    -- (undefined behaviour); refused first. The message quoted from stb_image used to end in non-text
    -- bytes (see "unknown critical PNG chunk" below).
    ["png_null_idata_plus_offset.bin"] =
      "image.decode: <memory>: cannot decode image (empty PNG IDAT chunk before the image data)",
    -- a number in a PNM header overflowing int in stb_image 2.27's parser (undefined behaviour):
    -- refused by the header check first
    ["pnm_header_integer_overflow.bin"] = "image.decode: <memory>: cannot decode image (PNM width larger than 65535)",
  },
}

-- Replays one fixture through the Lua entry point for its kind; returns ok, message.
local replay = {
  npy = function(path) return pcall(ac.load_npy, path) end,
  safetensors = function(path) return pcall(serialize.load_tensors, path) end,
  onnx = function(path) return pcall(require("adcorre.core").onnx.load, path) end,
  image = function(path)
    local b = read(path)
    return pcall(ac.image.decode, b:sub(2), b:byte(1) % 5)
  end,
  csv = function(path)
    local b = read(path)
    local mode = b:byte(1)
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write(b:sub(2))
    f:close()
    local ok, e
    if mode % 8 < 4 then
      local delim = ({ ",", ";", "\t", " " })[mode % 8 + 1]
      ok, e = pcall(require("adcorre.core").data.csv_read, tmp, { delim = delim, header = false, columns = { 1 } })
    else
      ok, e = pcall(require("adcorre.data.fer2013").read_csv, tmp,
        { side = 1 + (mode >> 3) % 4, skip_bad = (mode >> 5) % 2 == 1 })
    end
    os.remove(tmp)
    if not ok then e = tostring(e):gsub(tmp:gsub("%p", "%%%0"), "<file>") end
    return ok, e
  end,
}

for _, kind in ipairs({ "npy", "safetensors", "csv", "image", "onnx" }) do
  describe("fuzz regressions: " .. kind, function()
    for _, name in ipairs(files_of(kind)) do
      it(name, function()
        local ok, e = replay[kind](ROOT .. "/" .. kind .. "/" .. name)
        local want = expected[kind] and expected[kind][name]
        if want then
          assert.is_false(ok, "expected an error")
          assert.are.equal(want, strip(e))
        elseif not ok then
          -- any other recorded input: a string error that says something
          assert.are.equal("string", type(e))
          assert.truthy(#strip(e) > 10, e)
        end
      end)
    end
  end)
end

describe("fuzz regressions: npy header ending right after a key", function()
  local tmp
  before_each(function() tmp = os.tmpname() end)
  after_each(function() os.remove(tmp) end)
  local function npy_with_header(h)
    local f = assert(io.open(tmp, "wb"))
    f:write("\x93NUMPY\x01\x00" .. string.pack("<I2", #h) .. h)
    f:close()
  end
  it("'descr': at the end of the header", function()
    npy_with_header("{'descr':")
    assert.has_error(function() ac.load_npy(tmp) end, "load_npy: " .. tmp .. ": header has no 'descr'")
  end)
  it("'shape': at the end of the header", function()
    npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape':")
    assert.has_error(function() ac.load_npy(tmp) end, "load_npy: " .. tmp .. ": header has no 'shape' tuple")
  end)
  it("uint64 elements read exactly, and above INT64_MAX refused", function()
    local big = "\xff\xff\xff\xff\xff\xff\xff\x7f" -- INT64_MAX, not exact as a double
    npy_with_header("{'descr': '>u8', 'fortran_order': False, 'shape': (1,), }" .. (" "):rep(8) .. "\n")
    local f = assert(io.open(tmp, "ab"))
    f:write(big:reverse())
    f:close()
    local t = ac.load_npy(tmp)
    assert.are.equal(math.maxinteger, t[1])
  end)
end)

describe("fuzz regressions: tensor shapes whose strides overflow", function()
  it("an empty tensor with huge other dimensions is refused", function()
    assert.has_error(function() ac.zeros(0, 1 << 40, 1 << 40) end, "tensor of that shape is too large")
    assert.has_error(function() ac.zeros(1 << 62, 0, 4) end, "tensor of that shape is too large")
    assert.are.same({ 0, 1 << 20, 1 << 20 }, ac.zeros(0, 1 << 20, 1 << 20):shape())
  end)
end)

describe("fuzz regressions: int64 through strided copies", function()
  -- found via a Fortran-ordered '>i8' .npy (spec/fixtures/fuzz/npy/fortran_int64_beyond_2_53.npy):
  -- the transposing copy went through double, rounding values beyond 2^53 and overflowing near 2^63
  it("a transposed int64 tensor copies exactly", function()
    local v = (1 << 62) + 1
    local t = ac.tensor({ { v, 2 }, { 3, math.maxinteger } }, "int64")
    local c = t:transpose(1, 2):contiguous()
    assert.are.equal(v, c[1][1])
    assert.are.equal(3, c[1][2])
    assert.are.equal(math.maxinteger, c[2][2])
    assert.are.equal(math.mininteger, ac.tensor({ math.mininteger, 0 }, "int64"):view(2, 1):expand(2, 3):clone()[1][3])
  end)
  it("a Fortran-ordered int64 .npy keeps values beyond 2^53", function()
    local tmp = os.tmpname()
    local h = "{'descr': '<i8', 'fortran_order': True, 'shape': (2, 2), }"
    h = h .. (" "):rep((64 - (10 + #h + 1) % 64) % 64) .. "\n"
    local f = assert(io.open(tmp, "wb"))
    -- column-major data of [[2^62+1, 5], [-7, 2^63-1]]
    f:write("\x93NUMPY\x01\x00" .. string.pack("<I2", #h) .. h ..
      string.pack("<i8<i8<i8<i8", (1 << 62) + 1, -7, 5, math.maxinteger))
    f:close()
    local t = ac.load_npy(tmp)
    os.remove(tmp)
    assert.are.same({ { (1 << 62) + 1, 5 }, { -7, math.maxinteger } }, t:totable())
  end)
  it("float to int64 conversion saturates instead of overflowing", function()
    local f = ac.tensor({ 1e30, -1e30, 0 / 0, 2.5, -2.5 })
    assert.are.same({ math.maxinteger, math.mininteger, 0, 2, -2 }, f:long():totable())
  end)
end)

describe("fuzz regressions: image decode hardening", function()
  local function fails(want, ...)
    local ok, e = pcall(...)
    assert.is_false(ok, "expected an error")
    assert.are.equal(want, strip(e))
  end
  local function jpeg_bytes(c, h, w, seed)
    ac.manual_seed(seed or 7)
    local tmp = os.tmpname() .. ".jpg"
    ac.image.save(tmp, ac.rand(c, h, w), { quality = 90 })
    local b = read(tmp)
    os.remove(tmp)
    return b
  end

  it("0xFF fill bytes before the SOI marker: the JPEG decoder, never stb_image, and its checks run", function()
    local b = jpeg_bytes(3, 16, 16)
    local plain = ac.image.decode(b)
    local filled = ac.image.decode("\xff\xff\xff" .. b)
    assert.are.same(plain:shape(), filled:shape())
    assert.are.equal(0, (plain - filled):abs():max())
    fails("image.decode: <memory>: truncated or corrupt JPEG (no end-of-image marker)",
      ac.image.decode, "\xff\xff" .. b:sub(1, #b // 2))
  end)

  it("a JPEG cut anywhere before its end-of-image marker is an error, never an image", function()
    local b = jpeg_bytes(3, 24, 24)
    for n = 2, #b - 1, 7 do
      local ok, e = pcall(ac.image.decode, b:sub(1, n))
      assert.is_false(ok, "cut at " .. n)
      assert.truthy(strip(e):find("^image%.decode: <memory>: [%w ]*JPEG %(.+%)$"), e)
    end
  end)

  it("a code missing from a JPEG Huffman table is an error (libjpeg-turbo only warns and fills grey)", function()
    local b = jpeg_bytes(3, 32, 32)
    local sos = b:find("\xff\xda", 1, true)
    local data = sos + 2 + b:byte(sos + 2) * 256 + b:byte(sos + 3)
    -- stuffed FF bytes in the entropy-coded data: a run of 1 bits, a code no table holds
    local bad = b:sub(1, data + 9) .. ("\xff\x00"):rep(4) .. b:sub(data + 18)
    fails("image.decode: <memory>: corrupt JPEG (bad Huffman code)", ac.image.decode, bad)
  end)

  it("a JPEG announcing a huge image is refused before allocating", function()
    local b = jpeg_bytes(3, 16, 16)
    local sof = b:find("\xff\xc0", 1, true)
    -- SOF0: FF C0, length (2), precision (1), height (2), width (2)
    local big = b:sub(1, sof + 4) .. string.pack(">I2I2", 60000, 60000) .. b:sub(sof + 9)
    fails("image.decode: <memory>: image too large (60000 x 60000 x 3 channels is 10800000000 bytes, " ..
      "more than 2147483647)", ac.image.decode, big)
  end)

  it("grey, YCbCr and Adobe CMYK / YCCK JPEGs give the requested channel counts, as stb_image did", function()
    -- spec/fixtures/jpeg: made by tools/make_jpeg_fixtures.c (stb_image_write only writes YCbCr)
    local g, rgb = read("spec/fixtures/jpeg/grey_16x8.jpg"), jpeg_bytes(3, 8, 16)
    assert.are.same({ 1, 8, 16 }, ac.image.decode(g):shape())
    assert.are.same({ 3, 8, 16 }, ac.image.decode(rgb):shape())
    for c = 1, 4 do
      assert.are.same({ c, 8, 16 }, ac.image.decode(g, c):shape())
      assert.are.same({ c, 8, 16 }, ac.image.decode(rgb, c):shape())
    end
    local px = function(t, k, x) return math.floor(t[k][1][x] * 255 + 0.5) end
    assert.are.same({ 0, 240 }, { px(ac.image.decode(g), 1, 1), px(ac.image.decode(g), 1, 16) })
    local g3 = ac.image.decode(g, 3)
    assert.are.same({ 240, 240, 240 }, { px(g3, 1, 16), px(g3, 2, 16), px(g3, 3, 16) })
    local x = ac.image.decode(rgb, 4)
    assert.are.equal(1, x[4]:min())
    assert.are.equal(0, (x:narrow(1, 1, 3) - ac.image.decode(rgb, 3)):abs():max())
    local ga = ac.image.decode(g, 2)
    assert.are.equal(0, (ga[1] - ac.image.decode(g, 1)[1]):abs():max())
    assert.are.equal(1, ga[2]:min())
    -- inverted CMYK, left half red and right half blue; 3 channels as stored
    for _, name in ipairs({ "adobe_cmyk_16x8.jpg", "adobe_ycck_16x8.jpg" }) do
      local b = read("spec/fixtures/jpeg/" .. name)
      local c = ac.image.decode(b)
      assert.are.same({ 3, 8, 16 }, c:shape())
      assert.are.same({ 255, 0, 0, 0, 0, 255 }, { px(c, 1, 1), px(c, 2, 1), px(c, 3, 1), px(c, 1, 16), px(c, 2, 16), px(c, 3, 16) })
      local grey = ac.image.decode(b, 1)
      assert.is_true(math.abs(px(grey, 1, 1) - 76) <= 1 and math.abs(px(grey, 1, 16) - 28) <= 1)
      assert.are.same({ 4, 8, 16 }, ac.image.decode(b, 4):shape())
    end
  end)

  it("a truncated PNM (8- or 16-bit) is an error, not pixels from memory it never wrote", function()
    fails("image.decode: <memory>: truncated PNM: header says 4 x 4, 1 channel of 8 bits, needs 16 bytes of " ..
      "pixels, file has 3", ac.image.decode, "P5\n4 4\n255\n" .. "abc")
    fails("image.decode: <memory>: truncated PNM: header says 2 x 2, 3 channels of 16 bits, needs 24 bytes of " ..
      "pixels, file has 23", ac.image.decode, "P6 2 2 65535\n" .. ("x"):rep(23))
    fails("image.decode: <memory>: truncated PNM: header says 3 x 1, 1 channel of 8 bits, needs 3 bytes of " ..
      "pixels, file has 0", ac.image.decode, "P5\n# a comment\n3 1\n255\n")
    -- complete files, comments included, still decode
    local g = ac.image.decode("P5\n# a comment\n3 1\n255\n" .. string.char(0, 51, 255))
    assert.are.same({ 0, 51, 255 }, (g * 255 + 0.5):floor():view(3):totable())
    local g16 = ac.image.decode("P5 2 1 65535\n" .. string.char(0, 0, 255, 255))
    assert.are.same({ 0, 255 }, (g16 * 255 + 0.5):floor():view(2):totable())
    -- a 16-bit PNM asked for other channels: stb_image 2.27 converted it as 8-bit data and read twice
    -- that buffer (spec/fixtures/fuzz/image/pgm_16bit_channel_conversion_overread.bin); now converted
    -- by the library after decoding as stored
    local rgba = ac.image.decode("P5 2 1 65535\n" .. string.char(0, 0, 255, 255), 4)
    assert.are.same({ 0, 255, 0, 255, 0, 255, 255, 255 }, (rgba * 255 + 0.5):floor():view(8):totable())
    local grey = ac.image.decode("P6 2 1 65535\n" .. string.char(255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255), 1)
    assert.are.same({ 76, 28 }, (grey * 255 + 0.5):floor():view(2):totable())
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write("P5\n4 4\n255\nabc")
    f:close()
    local ok, e = pcall(ac.image.info, tmp)
    os.remove(tmp)
    assert.is_false(ok)
    assert.truthy(e:find("truncated PNM", 1, true), e)
  end)

  it("an unknown critical PNG chunk with zero CRCs is refused in printable words", function()
    -- stb_image 2.27 reported it by copying the chunk type from the file into a static buffer;
    -- libpng checks the (zero, wrong) CRCs first. spec/png_spec.lua has one with right CRCs.
    local png = "\x89PNG\r\n\x1a\n" .. string.pack(">I4", 13) .. "IHDR" .. string.pack(">I4I4", 1, 1) ..
      "\8\0\0\0\0" .. "\0\0\0\0" .. string.pack(">I4", 0) .. "\xd5\xff\xf2\0" .. "\0\0\0\0"
    fails("image.decode: <memory>: cannot decode image (PNG: broken data stream: a chunk's CRC does not match its data)",
      ac.image.decode, png)
  end)

  it("every decode error message of the recorded inputs is printable text", function()
    for _, name in ipairs(files_of("image")) do
      local b = read(ROOT .. "/image/" .. name)
      for c = 0, 4 do
        local ok, e = pcall(ac.image.decode, b:sub(2), c)
        if not ok then assert.truthy(not tostring(e):find("[^\32-\126]"), name .. ": " .. e) end
      end
    end
  end)
end)
