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
    -- stb_image 2.27 wrote past its Huffman arrays on this one; the wrapper refuses it first
    ["jpeg_dht_counts_over_256.bin"] = "image.decode: <memory>: corrupt JPEG (Huffman table with more than 256 codes)",
    -- an 85-byte PNG whose IDAT length field claims 1.4 GB: stb_image reallocates that much before
    -- finding the data missing (memory amplification, not a crash)
    ["png_idat_length_claims_1_4_gb.bin"] = "image.decode: <memory>: cannot decode image (outofdata)",
    -- a number in a PNM header overflowing int (undefined behaviour in stb_image 2.27, answered as too large)
    ["pnm_header_integer_overflow.bin"] = "image.decode: <memory>: cannot decode image (too large)",
  },
}

-- Replays one fixture through the Lua entry point for its kind; returns ok, message.
local replay = {
  npy = function(path) return pcall(ac.load_npy, path) end,
  safetensors = function(path) return pcall(serialize.load_tensors, path) end,
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
      ok, e = pcall(require("adcorre.core")._csv_read, tmp, { delim = delim, header = false, columns = { 1 } })
    else
      ok, e = pcall(require("adcorre.data.fer2013").read_csv, tmp,
        { side = 1 + (mode >> 3) % 4, skip_bad = (mode >> 5) % 2 == 1 })
    end
    os.remove(tmp)
    if not ok then e = tostring(e):gsub(tmp:gsub("%p", "%%%0"), "<file>") end
    return ok, e
  end,
}

for _, kind in ipairs({ "npy", "safetensors", "csv", "image" }) do
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

describe("fuzz regressions: open issues", function()
  -- spec/fixtures/fuzz/image/jpeg_dht_cut_by_eof_counts_over_256.bin: a DHT segment whose length
  -- field runs past the end of the file; stb_image reads the missing count bytes as 0, the table's
  -- counts still sum past 256 and stb_image 2.27 writes past stbi__huffman.size[257]. The check in
  -- csrc/image.c (jpeg_bad_huffman) only looks at tables whose 17 header bytes are all inside the
  -- file, so this one reaches stb_image (today: "cannot decode image (bad code lengths)" after the
  -- out-of-bounds write). Fix: count the bytes that are there for a table cut by the end of the file.
  -- spec/fixtures/fuzz/image/jpeg_ff_fill_before_soi_dht_over_256.bin: 0xFF fill bytes before the
  -- SOI marker. stb_image skips them and decodes the JPEG, but csrc/image.c only treats a file as
  -- JPEG when it starts with FF D8, so neither its Huffman-table check nor its truncated-JPEG check
  -- runs, and the oversized table reaches stb_image. Fix: skip leading FF bytes in both checks.
  pending("image: 0xFF fill bytes before the JPEG SOI marker do not bypass the Huffman-table and " ..
    "truncation checks ('image.decode: <memory>: corrupt JPEG (Huffman table with more than 256 codes)')")
  -- spec/fixtures/fuzz/image/jpeg_huffman_code_negative_index.bin: entropy-coded data holding a
  -- code that is not in the table. stb_image 2.27's stbi__jpeg_huff_decode computes a negative
  -- symbol index (-64983 here) and reads h->size[c] / h->values[c] out of bounds; its STBI_ASSERT on
  -- that read is compiled into Debian's libstb.so, so a crafted file can abort the process (fixed
  -- upstream in 2.28: "if (c < 0 || c >= 256) return -1"). The wrapper cannot see this without
  -- decoding; the fix is an stb_image with that check (a patched copy built into the library).
  pending("image: a JPEG with an invalid Huffman code is an error, never an out-of-bounds read or an abort " ..
    "(needs stb_image >= 2.28's check in stbi__jpeg_huff_decode)")
  -- spec/fixtures/fuzz/image/pgm_16bit_short_data_heap_overread.bin: a 16-bit PGM (maxval 515) with
  -- almost no pixel data. stb_image 2.27 ignores the short read and stbi__convert_16_to_8 reads past
  -- its buffer; the call SUCCEEDS with heap bytes as pixels. The same happens with any truncated
  -- 8-bit PNM ("P5\n4 4\n255\n" + 3 bytes decodes to 16 pixels of uninitialised memory that change
  -- from run to run). Fix in csrc/image.c: for P5/P6 check that the data after the header holds
  -- w * h * channels * (maxval > 255 ? 2 : 1) bytes.
  pending("image: a truncated PNM (8- or 16-bit) is an error, not pixels read from uninitialised or " ..
    "out-of-bounds memory ('image.decode: <memory>: truncated PNM ...')")
  -- spec/fixtures/fuzz/image/png_null_idata_plus_offset.bin: the error message ends in bytes that
  -- are not text ("cannot decode image (\xd5\xff\xf2)"): the failure reason the wrapper quotes is
  -- not a valid string for this PNG.
  pending("image: every decode error message is printable text")
  pending("image: a JPEG Huffman table cut by the end of the file with more than 256 codes is refused " ..
    "before stb_image ('image.decode: <memory>: corrupt JPEG (Huffman table with more than 256 codes)')")
end)
