-- Bad input files and data (npy, safetensors, images, CSVs, data-set
-- folders; the arguments of data objects and image functions) must raise a
-- Lua error whose message says what is wrong (bad arguments of tensors,
-- layers, the loss, optimisers and models: spec/bad_args_spec.lua). Each case checks the message text: the
-- whole message (after the Lua "file.lua:line: " position prefix, and with
-- this spec's temporary folder written as $D) must equal the expected one.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local serialize = require("adcorre.serialize")

local D -- temporary folder for the files of this spec

local function path(name) return D .. "/" .. name end

local function write(name, bytes)
  local f = assert(io.open(path(name), "wb"))
  f:write(bytes)
  f:close()
  return path(name)
end

local function mkdir(name)
  assert(fs.mkdir_p(path(name)))
  return path(name)
end

local bad = require("bad_input")
local err_of, fails = bad.err_of, bad.fails

-- .npy file with a version-1 header padded to 64 bytes
local function npy(header, data)
  local pad = (64 - (10 + #header + 1) % 64) % 64
  header = header .. string.rep(" ", pad) .. "\n"
  return "\x93NUMPY\x01\x00" .. string.pack("<I2", #header) .. header .. (data or "")
end

-- safetensors file: u64 header length, JSON header, data
local function st(header, data) return string.pack("<I8", #header) .. header .. (data or "") end

local fer_header = "emotion,pixels,Usage\n"
local function fer_row(code, pixels, usage)
  return ("%s,%s,%s\n"):format(code, pixels, usage)
end
local px48 = ("1 "):rep(2303) .. "1"

setup(function()
  D = os.tmpname()
  os.remove(D)
  assert(fs.mkdir_p(D))
  bad.D = D
end)

teardown(function()
  if D and D:match("^/tmp/") then os.execute("rm -rf '" .. D .. "'") end
end)

describe("bad .npy files", function()
  it("empty file", function()
    fails("load_npy: $D/e.npy: not an .npy file (bad magic)", ac.load_npy, write("e.npy", ""))
  end)
  it("wrong magic", function()
    fails("load_npy: $D/m.npy: not an .npy file (bad magic)", ac.load_npy, write("m.npy", "NOTNUMPY\1\0\0\0"))
  end)
  it("unsupported format version", function()
    fails("load_npy: $D/v.npy: unsupported format version 9", ac.load_npy, write("v.npy", "\x93NUMPY\x09\x00\x00\x00"))
  end)
  it("header longer than the file", function()
    fails("load_npy: $D/t.npy: truncated header (255 bytes announced, 8 present)", ac.load_npy,
      write("t.npy", "\x93NUMPY\x01\x00\xff\x00{'descr'"))
  end)
  it("complex dtype", function()
    fails("load_npy: $D/c.npy: unsupported dtype '<c8' (float, int, uint, bool are read)", ac.load_npy,
      write("c.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", ("\0"):rep(16))))
  end)
  it("object arrays (pickles) are refused", function()
    fails("load_npy: $D/o.npy: unsupported dtype '|O' (float, int, uint, bool are read)", ac.load_npy,
      write("o.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }")))
  end)
  it("data shorter than the shape", function()
    fails("load_npy: $D/s.npy: truncated data: shape needs 24 bytes, file has 8", ac.load_npy,
      write("s.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", ("\0"):rep(8))))
  end)
  it("negative dimension", function()
    fails("load_npy: $D/n.npy: malformed 'shape'", ac.load_npy,
      write("n.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }")))
  end)
  it("dimension beyond 2^50", function()
    fails("load_npy: $D/h.npy: dimension too large", ac.load_npy,
      write("h.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")))
  end)
  it("shape product overflowing 64 bits", function()
    fails("load_npy: $D/o64.npy: shape overflows", ac.load_npy,
      write("o64.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }")))
  end)
  it("no shape", function()
    fails("load_npy: $D/ns.npy: header has no 'shape' tuple", ac.load_npy,
      write("ns.npy", npy("{'descr': '<f4', 'fortran_order': False, }")))
  end)
  it("more than 8 dimensions", function()
    fails("load_npy: $D/9.npy: more than 8 dimensions", ac.load_npy,
      write("9.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", "\0\0\0\0")))
  end)
  it("uint64 values above the int64 range", function()
    fails("load_npy: $D/u8.npy: uint64 element 1 does not fit in int64", ac.load_npy,
      write("u8.npy", npy("{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }",
        string.pack("<I8", 5) .. "\xff\xff\xff\xff\xff\xff\xff\xff")))
  end)
  it("missing file and folder", function()
    fails("load_npy: cannot open $D/nope.npy: No such file or directory", ac.load_npy, path("nope.npy"))
    fails("load_npy: $D is a directory, expected a file", ac.load_npy, D)
  end)
  it("save_npy: not a tensor, missing folder", function()
    fails("save_npy: argument 2 must be a tensor, got number", ac.save_npy, path("x.npy"), 5)
    fails("save_npy: cannot write $D/no/such/x.npy: No such file or directory", ac.save_npy,
      path("no/such/x.npy"), ac.zeros(2))
  end)
end)

describe("bad safetensors files", function()
  local load = serialize.load_tensors
  it("shorter than the length field", function()
    fails("safetensors_load: $D/a.st: not a safetensors file: 3 bytes, shorter than the 8-byte header length",
      load, write("a.st", "abc"))
  end)
  it("header length beyond the file", function()
    fails("safetensors_load: $D/b.st: truncated file: header length 1000 but only 2 bytes follow the length field",
      load, write("b.st", string.pack("<I8", 1000) .. "{}"))
  end)
  it("header length above the 100 MB limit", function()
    fails("safetensors_load: $D/b2.st: not a safetensors file: header length 200000000 exceeds the limit of 100000000",
      load, write("b2.st", string.pack("<I8", 200000000) .. "{}"))
  end)
  it("broken JSON", function()
    local msg = err_of(load, write("c.st", st('{"a":')))
    assert.truthy(msg:find("^safetensors_load: %$D/c%.st: ") and msg:find("JSON"), msg)
  end)
  it("unknown dtype", function()
    local msg = err_of(load, write("d.st", st('{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}}', "\0\0\0\0")))
    assert.truthy(msg:find("^safetensors_load: %$D/d%.st: ") and msg:find("X9", 1, true), msg)
  end)
  it("byte size that does not match the shape", function()
    fails('safetensors_load: $D/e.st: tensor "a": shape [2] of F32 needs 8 bytes but data_offsets [0, 4] hold 4',
      load, write("e.st", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', "\0\0\0\0")))
  end)
  it("a hole before the first tensor", function()
    local msg = err_of(load, write("f.st", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ("\0"):rep(8))))
    assert.truthy(msg:find("^safetensors_load: %$D/f%.st: ") and msg:find("hole"), msg)
  end)
  it("invalid UTF-8 in the header", function()
    local msg = err_of(load, write("g.st", st('{"\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "\0\0\0\0")))
    assert.truthy(msg:find("^safetensors_load: %$D/g%.st: ") and msg:find("UTF%-8"), msg)
  end)
  it("bytes after the last tensor", function()
    local msg = err_of(load, write("h.st", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', ("\0"):rep(5))))
    assert.truthy(msg:find("^safetensors_load: %$D/h%.st: ") and msg:find("5"), msg)
  end)
  it("duplicate tensor names", function()
    local msg = err_of(load, write("i.st", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' ..
      '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ("\0"):rep(8))))
    assert.truthy(msg:find("^safetensors_load: %$D/i%.st: ") and msg:find("duplicate"), msg)
  end)
  it("ac.load of a weights-only file asks for load_weights", function()
    serialize.save_tensors(path("wo.safetensors"), { a = ac.zeros(2) })
    local msg = err_of(ac.load, path("wo.safetensors"))
    assert.truthy(msg:find("load: $D/wo.safetensors has no architecture in its metadata", 1, true), msg)
  end)
  it("load_weights into a model of another shape lists every mismatch", function()
    ac.save(path("l.safetensors"), ac.nn.Linear(2, 3))
    fails("load_weights: $D/l.safetensors does not match the model (2 problems):\n" ..
      "  shape mismatch: weight model [4, 2] file [3, 2]\n  shape mismatch: bias model [4] file [3]",
      ac.load_weights, ac.nn.Linear(2, 4), path("l.safetensors"))
  end)
  it("save: not a model, no path", function()
    fails("save: expected a model (an nn module or a model of ac.models), got number", ac.save, path("m.st"), 5)
    fails("save: path must be a non-empty string, got nil", ac.save, nil, ac.nn.Linear(2, 2))
  end)
end)

describe("bad images and image arguments", function()
  it("missing, empty, corrupt PNG, truncated JPEG", function()
    fails("image.load: $D/none.png: cannot open (No such file or directory)", ac.image.load, path("none.png"))
    fails("image.load: $D/e.png: empty file", ac.image.load, write("e.png", ""))
    fails("image.load: $D/g.png: cannot decode image (first not IHDR)", ac.image.load,
      write("g.png", "\x89PNG\r\n\x1a\nxxxxxxxx"))
    fails("image.load: $D/t.jpg: truncated or corrupt JPEG (no end-of-image marker)", ac.image.load,
      write("t.jpg", "\xff\xd8\xff\xe0\0\x10JFIF\0"))
  end)
  it("a real PNG cut in half", function()
    local img = ac.rand(3, 16, 16)
    ac.image.save(path("ok.png"), img)
    local f = assert(io.open(path("ok.png"), "rb"))
    local bytes = f:read("a")
    f:close()
    local msg = err_of(ac.image.load, write("half.png", bytes:sub(1, #bytes // 2)))
    assert.truthy(msg:find("^image%.load: %$D/half%.png: cannot decode image %(.+%)$"), msg)
  end)
  it("decode arguments", function()
    fails("image.decode: expects a string of bytes, got number", ac.image.decode, 5)
    fails("image.load: channels must be 0 (as stored), 1, 2, 3 or 4, got 7", ac.image.load, write("g2.png", "x"), 7)
  end)
  it("resize, crop, pad, channels", function()
    fails("image.resize: height must be 1..65536, got 0", ac.image.resize, ac.zeros(1, 4, 4), 0, 4)
    fails("image.crop: height must be 1..65536, got -1", ac.image.crop, ac.zeros(1, 4, 4), 1, 1, -1, 2)
    fails("image.pad: pad must be a number or {top, bottom, left, right}", ac.image.pad, ac.zeros(1, 4, 4), "x")
    fails("image.to_channels: channels must be 1 or 3, got 2", ac.image.to_channels, ac.zeros(1, 4, 4), 2)
  end)
  it("normalize with a zero std", function()
    fails("image.normalize: normalize: std[1] = 0 must be finite and non-zero", ac.image.normalize,
      ac.zeros(1, 4, 4), { 0 }, { 0 })
  end)
  it("save: unknown format, missing folder, 2 channels, no images for a grid", function()
    fails("image.save: cannot tell the format of '$D/x.xyz' (use .png, .jpg or opts.format)", ac.image.save,
      path("x.xyz"), ac.zeros(1, 4, 4))
    local msg = err_of(ac.image.save, path("no/x.png"), ac.zeros(1, 4, 4))
    assert.truthy(msg:find("^image%.save: %$D/no/x%.png: cannot write image %(.+%)$"), msg)
    fails("image.save: $D/x.png: cannot save an image with 2 channels (1, 3 or 4)", ac.image.save, path("x.png"),
      ac.zeros(2, 4, 4))
    fails("image.grid: no images", ac.image.grid, {})
  end)
end)

describe("bad CSV files (fer2013.csv)", function()
  local function fer(name, text, opts)
    opts = opts or {}
    opts.path = write(name, text)
    return ac.data.fer2013(opts)
  end
  it("missing file, no path option", function()
    fails("fer2013: not found: $D/nofer.csv", ac.data.fer2013, { path = path("nofer.csv") })
    fails("fer2013: option 'path' is required", ac.data.fer2013, {})
  end)
  it("header without the needed columns", function()
    fails("$D/f1.csv:1: header must name the columns 'emotion' and 'pixels' (and optionally 'Usage')", fer,
      "f1.csv", "a,b,c\n1,2,3\n")
  end)
  it("too few pixels", function()
    fails("$D/f2.csv:2: expected 2304 pixels (48x48), got 3", fer, "f2.csv", fer_header .. fer_row(0, "1 2 3", "Training"))
  end)
  it("unknown emotion code", function()
    fails("$D/f3.csv:3: unknown emotion label 9 (expected 0..6)", fer, "f3.csv",
      fer_header .. fer_row(0, px48, "Training") .. fer_row(9, px48, "Training"))
  end)
  it("unterminated quote", function()
    fails("$D/f4.csv:2: unterminated quoted field", fer, "f4.csv", fer_header .. '0,"1 2\n')
  end)
  it("unknown Usage", function()
    fails("$D/f5.csv:2: unknown Usage 'Foo' (Training, PublicTest or PrivateTest)", fer, "f5.csv",
      fer_header .. fer_row(0, px48, "Foo"))
  end)
  it("pixel value out of range, not a number", function()
    fails("$D/f6.csv:2: pixel 1 = 300 is outside 0..255", fer, "f6.csv",
      fer_header .. fer_row(0, "300" .. (" 1"):rep(2303), "Training"))
    fails("$D/f6b.csv:2: pixel 2 is not an integer ('x 1 1 1 1 1 ')", fer, "f6b.csv",
      fer_header .. fer_row(0, "1 x" .. (" 1"):rep(2302), "Training"))
  end)
  it("wrong number of fields", function()
    fails("$D/f8.csv:2: expected 3 fields, got 2", fer, "f8.csv", fer_header .. "0," .. px48 .. "\n")
  end)
  it("unknown split", function()
    fails("fer2013: unknown split 'bogus' (train, val, test or all)", fer, "f7.csv",
      fer_header .. fer_row(0, px48, "Training"), { split = "bogus" })
  end)
end)

describe("bad data-set folders", function()
  it("folder: missing, empty, no images, not FER class names", function()
    fails("folder: folder not found: $D/nothere", ac.data.folder, { path = path("nothere") })
    mkdir("emptyf")
    fails("folder: no class folders under $D/emptyf", ac.data.folder, { path = path("emptyf") })
    mkdir("ni/happy")
    fails("folder: no image files under $D/ni/<class>/", ac.data.folder, { path = path("ni") })
    mkdir("nf/bananas")
    ac.image.save(path("nf/bananas/1.png"), ac.zeros(1, 8, 8))
    fails("folder: class folder 'bananas' is not a FER class name (use canonical = false for arbitrary classes)",
      ac.data.folder, { path = path("nf"), canonical = true })
  end)
  it("npy folder: missing, label count, negative label, wrong image rank", function()
    fails("npy: folder not found: $D/nonpy", ac.data.npy, { path = path("nonpy") })
    mkdir("np1")
    ac.save_npy(path("np1/train_images.npy"), ac.zeros(3, 4, 4, "uint8"))
    ac.save_npy(path("np1/train_labels.npy"), ac.tensor({ 0, 1 }, "int64"))
    fails("npy: $D/np1/train_images.npy has 3 images but $D/np1/train_labels.npy has 2 labels", ac.data.npy,
      { path = path("np1") })
    mkdir("np2")
    ac.save_npy(path("np2/train_images.npy"), ac.zeros(2, 4, 4, "uint8"))
    ac.save_npy(path("np2/train_labels.npy"), ac.tensor({ 0, -1 }, "int64"))
    fails("npy: $D/np2/train_labels.npy: label -1 at index 2 is negative (ids are 0..K-1)", ac.data.npy,
      { path = path("np2") })
    mkdir("np3")
    ac.save_npy(path("np3/train_images.npy"), ac.zeros(2, 4, "uint8"))
    ac.save_npy(path("np3/train_labels.npy"), ac.tensor({ 0, 1 }, "int64"))
    fails("npy: $D/np3/train_images.npy must be [N, H, W] or [N, H, W, C], got 2 dimensions", ac.data.npy,
      { path = path("np3") })
  end)
  it("a corrupt .npy inside a data-set folder names the file", function()
    mkdir("np4")
    write("np4/train_images.npy", "\x93NUMPY\x01\x00\x40\x00{'descr'")
    ac.save_npy(path("np4/train_labels.npy"), ac.tensor({ 0 }, "int64"))
    local msg = err_of(ac.data.npy, { path = path("np4") })
    assert.truthy(msg:find("load_npy: $D/np4/train_images.npy: truncated header (64 bytes announced, 8 present)", 1, true),
      msg)
  end)
  it("data.open: unknown data set", function()
    fails("data.open: unknown data set 'mnist' (known: fer2013, ferplus, rafdb, affectnet, folder, npy, synthfer)",
      ac.data.open, "mnist", {})
  end)
end)

describe("bad arguments to data objects", function()
  local ds
  setup(function() ds = ac.data.synthfer{ n = 10 } end)
  it("Loader: not a data set, unknown option, batch 0", function()
    fails("Loader: expects a data set (from ac.data) as first argument", ac.data.Loader, {}, {})
    fails("Loader: unknown option 'batchsize' (known: augment, balanced, batch, channels, drop_last, epoch_size, " ..
      "prefetch, seed, shard, shuffle, size, skip_bad, workers)", ac.data.Loader, ds, { batchsize = 3 })
    fails("Loader: option 'batch' must be >= 1, got 0", ac.data.Loader, ds, { batch = 0 })
  end)
  it("Dataset:get: fractional and out-of-range index", function()
    fails("Dataset:get: index must be an integer, got 1.5", ds.get, ds, 1.5)
    fails("get: index 11 out of range 1..10", ds.get, ds, 11)
  end)
end)
