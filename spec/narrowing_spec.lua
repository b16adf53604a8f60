-- spec/narrowing_spec.lua - integer arguments past 2^31: every binding that
-- narrows a Lua integer (64-bit) to a C int checks the range first, so a
-- size, offset, index or count beyond int is an error naming the function,
-- the argument and the value, never a wrapped small number used silently.
local ac = require("adcorre")
local core = require("adcorre.core")

local P31, P32 = 2 ^ 31 | 0, 2 ^ 32 | 0 -- 2147483648, 4294967296

local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function has(e, ...)
  for _, s in ipairs({ ... }) do assert.matches(s, e, 1, true) end
end

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

describe("narrowing casts", function()
  teardown(function() os.execute("rm -rf '" .. tmp .. "'") end)

  describe("image", function()
    local img = ac.rand(3, 8, 8)
    local INT = "(-1073741824..1073741824)"

    it("crop: offsets past 2^31 and below -2^31 are refused", function()
      has(err(core.image.crop, img, P31, 0, 2, 2), "image.crop: argument 'y' = 2147483648 is out of range " .. INT)
      has(err(core.image.crop, img, 0, P32 + 1, 2, 2), "image.crop: argument 'x' = 4294967297 is out of range")
      has(err(core.image.crop, img, -P31 - 1, 0, 2, 2), "argument 'y' = -2147483649 is out of range")
      -- through the public 1-based wrapper: y = 2^32 + 1 is offset 2^32, not 0
      has(err(ac.image.crop, img, P32 + 1, 1, 2, 2), "image.crop: argument 'y' = 4294967296 is out of range")
      -- in range: unchanged (offsets past the image read the fill value)
      assert.are.equal(0, ac.image.crop(img, 1000, 1, 2, 2):sum())
    end)

    it("crop and resize: sizes are reported as given", function()
      has(err(core.image.crop, img, 0, 0, P32 + 2, 2), "image.crop: height must be 1..65536, got 4294967298")
      has(err(core.image.resize, img, 4, -P32), "image.resize: width must be 1..65536, got -4294967296")
    end)

    it("pad: amounts past 2^32 are not taken as 0", function()
      has(err(core.image.pad, img, P32, 0, 0, 0), "image.pad: amounts must be 0..65536, got 4294967296 0 0 0")
      has(err(core.image.pad, img, 0, 0, 0, P32 + 1), "got 0 0 0 4294967297")
      has(err(core.image.pad, img, 0, -P32, 0, 0), "got 0 -4294967296 0 0")
    end)

    it("save: quality past 2^32 is not taken as 95", function()
      local path = tmp .. "/q.jpg"
      has(err(core.image.save, path, img, "jpg", P32 + 95),
        "image.save: argument 'quality' = 4294967391 is out of range (-2147483648..2147483647)")
      assert.is_nil(io.open(path, "rb"))
    end)

    it("load and decode: channels are reported as given", function()
      has(err(core.image.load, tmp .. "/none.png", P32 + 3), "image.load: channels must be 0 (as stored), 1, 2, 3 or 4, got 4294967299")
      has(err(core.image.decode, "x", -P32), "image.decode: channels must be", "got -4294967296")
    end)
  end)

  it("augment.warp: border past 2^32 is not taken as 0", function()
    local x = ac.rand(1, 4, 4)
    has(err(core.augment.warp, x, { 1, 0, 0, 1 }, { 0, 0 }, P32),
      "augment.warp: argument 'border' = 4294967296 is out of range")
  end)

  it("convfast.gemm: beta past 2^32 is not taken as 1", function()
    local A, B, C = ac.rand(2, 2), ac.rand(2, 2), ac.zeros(2, 2)
    has(err(core.convfast.gemm, A, B, C, 1, P32 + 1, "nn"),
      "convfast_gemm: argument 'beta' = 4294967297 is out of range")
    assert.are.equal(0, C:sum())
  end)

  describe("data", function()
    it("fer2013_read: side and label codes", function()
      has(err(core.data.fer2013_read, tmp .. "/none.csv", P32 + 48, {}, false),
        "fer2013: argument 'side' = 4294967344 is out of range")
      has(err(core.data.fer2013_read, tmp .. "/none.csv", 48, { 1, P32 + 2 }, false),
        "fer2013: argument 'label map entry' = 4294967298 is out of range")
    end)

    it("source:get: channels and sizes past 2^32 are not taken as small ones", function()
      local ds = ac.data.from_memory { images = ac.zeros(2, 4, 4, "uint8"), labels = { 1, 2 } }
      has(err(ds.source.get, ds.source, 1, P32 + 1), "get: channels must be 1..4, got 4294967297")
      has(err(ds.source.get, ds.source, 1, 1, P32 + 4, 4), "get: size must be 1..16384, got 4294967300 x 4")
      has(err(ds.source.get, ds.source, 1, 1, 4, -P32), "got 4 x -4294967296")
      has(err(ds.source.get, ds.source, P32 + 1), "get: index 4294967297 out of range 1..2")
    end)

    it("loader_new: int options past 2^31 are refused", function()
      local ds = ac.data.from_memory { images = ac.zeros(4, 4, 4, "uint8"), labels = { 1, 2, 3, 4 } }
      for _, k in ipairs({ "workers", "prefetch", "channels", "height", "width" }) do
        has(err(core.data.loader_new, ds.source, { batch = 2, seed = 1, [k] = P32 + 1 }),
          "Loader: option '" .. k .. "' = 4294967297 is out of range (-2147483648..2147483647)")
        has(err(core.data.loader_new, ds.source, { batch = 2, seed = 1, [k] = -P32 }),
          "Loader: option '" .. k .. "' = -4294967296 is out of range")
      end
      has(err(core.data.loader_new, ds.source, { batch = P32 * 4, seed = 1 }),
        "Loader: batch must be 1..1000000, got 17179869184")
    end)
  end)

  it("face.cascade: window sizes past 2^31", function()
    has(err(core.face.cascade, { type = "haar", width = P32 + 24, height = 24 }),
      "face.cascade: field 'width' = 4294967320 is out of range")
    has(err(core.face.cascade, { type = "haar", width = 24, height = -P31 - 1 }),
      "face.cascade: field 'height' = -2147483649 is out of range")
  end)

  it("face: sizes already checked before narrowing", function()
    local g = ac.zeros(8, 8, "uint8")
    has(err(core.face.resize, g, P31, 4), "face.resize: size 2147483648x4 out of range")
    has(err(core.face.from_rgb24, "abc", P32 + 1, 1), "not a 4294967297x1 RGB frame")
  end)

  it("plot.tsne: integer options past 2^31", function()
    local X = ac.rand(6, 3)
    for _, k in ipairs({ "dims", "iterations", "exaggeration_iterations" }) do
      has(err(core.plot.tsne, X, nil, { [k] = P32 + 2, seed = 1 }),
        "option '" .. k .. "' = 4294967298 is out of range")
    end
    has(err(ac.plot.tsne, X, { iterations = P32 + 5, seed = 1, init = "random" }),
      "plot.tsne: option 'iterations' = 4294967301 is out of range")
  end)

  it("plot: canvas sizes, pixel and palette indices", function()
    has(err(ac.plot.canvas, P32 + 8, 8), "canvas: size 4294967304x8 out of range")
    local cv = ac.plot.canvas(4, 4)
    has(err(cv.pixel, cv, P32, 0), "Canvas:pixel: (4294967296, 0) outside the 4x4 canvas")
    assert.are.equal(core.plot.palette(1), core.plot.palette(1000001))
  end)

  describe("tensor", function()
    local t = ac.zeros(2, 3)

    it("permute: dimensions past 2^32 are not taken as small ones", function()
      has(err(t.permute, t, P32 + 2, 1), "permute: argument 'dims' = 4294967298 is out of range")
      has(err(t.permute, t, 2, -P32), "permute: argument 'dims' = -4294967296 is out of range")
      assert.are.same({ 3, 2 }, t:permute(2, 1):shape())
    end)

    it("dimensions and indices are reported as given", function()
      has(err(t.transpose, t, P32 + 1, 2), "dimension 4294967297 out of range for a 2-d tensor [2, 3]")
      has(err(t.size, t, -P32), "dimension -4294967296 out of range")
      has(err(t.sum, t, P32 + 1), "dimension 4294967297 out of range for a 2-d tensor [2, 3]")
      has(err(function() return t[P32 + 1] end), "index 4294967297 is out of range for dimension 1 of size 2")
      has(err(function() t[P32 + 1] = 0 end), "index 4294967297 is out of range for dimension 1 of size 2")
      has(err(t.narrow, t, 1, P32 + 1, 1), "narrow")
      has(err(t.select, t, 1, P32 + 1), "select")
    end)

    it("set_num_threads refuses n past 2^32", function()
      has(err(core.tensor.set_num_threads, P32 + 2), "set_num_threads: n must be between 1 and 64")
    end)
  end)

  it("onnx.save: elem_type past 2^32 is not taken as 1", function()
    local path = tmp .. "/e.onnx"
    has(err(core.onnx.save, path, { nodes = {}, inputs = { { name = "x", elem_type = P32 + 1, dims = { 1 } } },
      outputs = {} }), "onnx.save: field 'elem_type' = 4294967297 is out of range")
    assert.is_nil(io.open(path, "rb"))
  end)

  it("AdCorreLoss: classes and history past 2^31", function()
    has(err(core.loss.new, P32 + 7, 0), "AdCorreLoss: classes must be in 1..100000, got 4294967303")
    has(err(core.loss.new, 7, -P32), "AdCorreLoss: history must be a count >= 0, got -4294967296")
  end)

  it("synthfer: counts, labels and columns past 2^31", function()
    has(err(core.synthfer.generate, P32, 1), "synthfer.generate: n = 4294967296 is too large")
    has(err(core.synthfer.render, 1, 0, P32 + 1), "'label' must be a class in 1..7, got 4294967297")
    has(err(core.synthfer.fer_code, P32 + 1), "'label' must be a class in 1..7, got 4294967297")
  end)

  describe("table lengths (a __len past 2^31 is not taken as a small one)", function()
    local function len(n) return setmetatable({}, { __len = function() return n end }) end

    it("augment.pipeline, fer2013_read, csv_read", function()
      has(err(core.augment.pipeline, len(P32 + 1)), "augment: length of 'ops' = 4294967297 is out of range (0..2147483647)")
      has(err(core.data.fer2013_read, tmp .. "/none.csv", 48, len(P32 + 2), false),
        "fer2013: length of 'label map' = 4294967298 is out of range")
      has(err(core.data.csv_read, tmp .. "/none.csv", { columns = len(P32 + 1) }),
        "csv_read: length of 'columns' = 4294967297 is out of range")
      has(err(core.data.csv_read, tmp .. "/none.csv", { columns = len(-1) }),
        "csv_read: length of 'columns' = -1 is out of range")
    end)

    it("image.normalize, shapes, safetensors_save", function()
      local img = ac.rand(1, 2, 2)
      has(err(core.image.normalize, img, len(P32 + 1), { 1 }), "image.normalize: length of 'mean' = 4294967297")
      has(err(core.image.normalize, img, { 0 }, len(P32 + 1)), "image.normalize: length of 'std' = 4294967297")
      has(err(core.tensor.zeros, len(P32 + 2)), "length of 'shape' = 4294967298 is out of range")
      has(err(core.face.annotate, ac.zeros(3, 4, 4), len(P32 + 1)), "face.annotate: 4294967297 marks")
      has(err(core.safetensors.save, tmp .. "/s.safetensors", len(P32 + 1), {}),
        "safetensors_save: 4294967297 names but 0 tensors")
    end)
  end)

  it("dist: root and count past 2^31 (no MPI job needed)", function()
    local ok, C = pcall(require, "adcorre.distributed_core")
    if not ok then
      pending("adcorre.distributed_core is not on the cpath (make builds it when Open MPI is present; make asan does not): " .. tostring(C))
      return
    end
    has(err(C.broadcast, ac.zeros(2), P32), "dist.broadcast: argument 'root' = 4294967296 is out of range")
    has(err(C.allgather_counts, -P32), "dist.allgather: negative count -4294967296")
  end)
end)
