-- spec/data_spec.lua - the data-set readers on tiny data sets in every format
-- (built by tools/make_tiny_datasets.lua into a temporary folder): counts,
-- mapping to the canonical class order, pixel values, and the errors (file
-- and line) or skips of malformed input.
local ac = require("adcorre")
local tiny = dofile("tools/make_tiny_datasets.lua")

local function err(f)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function quiet(f)
  -- runs f with warnings (stderr) sent to a string; returns f's results and the text
  local real = io.stderr
  local buf = {}
  io.stderr = { write = function(_, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end end }
  local r = table.pack(pcall(f))
  io.stderr = real
  if not r[1] then error(r[2], 0) end
  return r[2], table.concat(buf)
end

local dir, m
local function build()
  if not m then
    dir = os.tmpname()
    os.remove(dir)
    m = tiny.build(dir)
  end
  return m
end

describe("data", function()
setup(build)
teardown(function() if dir then os.execute("rm -rf '" .. dir .. "'") end end)

describe("data sets", function()

  it("fer2013.csv: splits, canonical labels and exact pixels", function()
    local sp = ac.data.fer2013.splits { path = dir .. "/fer2013" }
    assert.equal(14, #sp.train); assert.equal(7, #sp.val); assert.equal(7, #sp.test)
    assert.same({ "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }, sp.train.classes)
    assert.same({ 2, 2, 2, 2, 2, 2, 2 }, sp.train:class_counts())
    local offsets = { train = 0, val = 14, test = 21 }
    for name, ds in pairs(sp) do
      for i = 1, #ds do
        local row = m.fer_rows[offsets[name] + i]
        local img, label = ds:get(i)
        assert.equal(row.label, label)
        assert.same({ 1, 48, 48 }, img:shape())
        for _, k in ipairs({ 0, 1, 47, 48, 1000, 2303 }) do
          local v = img[1][k // 48 + 1][k % 48 + 1]
          assert.is_true(math.abs(v - tiny.fer_pixel(row.row, k) / 255) < 1e-6)
        end
      end
    end
    -- the mapping of every FER code: 0 Angry -> 7 ... 6 Neutral -> 1
    local ds = ac.data.fer2013 { path = dir .. "/fer2013/fer2013.csv", split = "val" }
    local labels = {}
    for i = 1, #ds do labels[i] = ds:label(i) end
    assert.same({ 7, 6, 5, 2, 3, 4, 1 }, labels)
    local all = ac.data.fer2013 { path = dir .. "/fer2013", split = "all" }
    assert.equal(28, #all)
    local rgb = ac.data.fer2013 { path = dir .. "/fer2013", split = "test", channels = 3 }
    assert.same({ 3, 48, 48 }, rgb:get(1):shape())
  end)

  it("fer2013 per-class folders (PNG) map folder names to canonical classes", function()
    local sp = ac.data.fer2013.splits { path = dir .. "/fer2013_folders" }
    assert.equal(14, #sp.train); assert.equal(7, #sp.test); assert.is_nil(sp.val)
    assert.same({ 2, 2, 2, 2, 2, 2, 2 }, sp.train:class_counts())
    local want = { angry = 7, disgust = 6, fear = 5, happy = 2, neutral = 1, sad = 3, surprise = 4 }
    local by_path = {}
    for _, e in ipairs(m.fer_folders.train) do by_path[e.path] = e end
    local ds = sp.train
    for i = 1, #ds do
      local img, label = ds:get(i)
      local e = by_path[ds.paths[i]]
      assert.equal(want[e.class], label)
      assert.same({ 1, 48, 48 }, img:shape())
      assert.is_true(math.abs(img:mean() - e.value / 255) < 1e-6)
    end
  end)

  it("ferplus: majority votes with outlier removal; unknown, NF, ties and nameless rows left out", function()
    local sp = ac.data.ferplus.splits { path = dir .. "/fer2013" }
    local offsets = { train = 0, val = 14, test = 21 }
    local sizes = { train = 14, val = 7, test = 7 }
    for name, ds in pairs(sp) do
      assert.equal(8, #ds.classes)
      local want_labels, want_rows = {}, {}
      for i = 1, sizes[name] do
        local l = m.ferplus[offsets[name] + i]
        if l then want_labels[#want_labels + 1] = l; want_rows[#want_rows + 1] = m.fer_rows[offsets[name] + i].row end
      end
      assert.equal(#want_labels, #ds)
      assert.equal(sizes[name] - #want_labels, ds.excluded)
      for i = 1, #ds do
        local img, label = ds:get(i)
        assert.equal(want_labels[i], label)
        assert.is_true(math.abs(img[1][1][2] - tiny.fer_pixel(want_rows[i], 1) / 255) < 1e-6)
      end
    end
    assert.equal(8, ac.data.ferplus.majority({ 0, 0, 0, 0, 0, 0, 0, 5, 1, 1 }))
    assert.is_nil(ac.data.ferplus.majority({ 3, 3, 0, 0, 0, 0, 0, 0, 0, 0 }))
    assert.equal(4, ac.data.ferplus.majority({ 0, 0, 3, 1, 1, 1, 1, 1, 1, 1 })) -- single votes dropped
  end)

  it("rafdb: list file, aligned JPEGs, code mapping 1..7 -> 4 5 6 2 3 7 1", function()
    local sp = ac.data.rafdb.splits { path = dir .. "/rafdb" }
    assert.equal(14, #sp.train); assert.equal(7, #sp.test)
    local train_expect = {}
    for _, e in ipairs(m.rafdb) do if e.split == "train" then train_expect[#train_expect + 1] = e end end
    for i = 1, #sp.train do
      local img, label = sp.train:get(i)
      local e = train_expect[i]
      assert.equal(e.label, label)
      assert.same({ 3, 24, 24 }, img:shape())
      assert.is_true(math.abs(img[1]:mean() - e.value / 255) <= 2 / 255)
      assert.is_true(math.abs(img[2]:mean() - ((e.value + 60) % 256) / 255) <= 2 / 255)
    end
    local grey = ac.data.rafdb { path = dir .. "/rafdb", split = "test", channels = 1 }
    assert.same({ 1, 24, 24 }, grey:get(1):shape())
  end)

  it("affectnet: 7- and 8-class protocols, codes 8-10 left out, images cropped to the face box", function()
    local tr7 = ac.data.affectnet { path = dir .. "/affectnet", split = "train" }
    local tr8 = ac.data.affectnet { path = dir .. "/affectnet", split = "train", classes = 8 }
    assert.equal(10, #tr7); assert.equal(11, #tr8)
    assert.equal(4, tr7.excluded); assert.equal(3, tr8.excluded)
    assert.same({ 1, 3, 1, 1, 1, 1, 2 }, tr7:class_counts())
    assert.same({ 1, 3, 1, 1, 1, 1, 2, 1 }, tr8:class_counts())
    local val = ac.data.affectnet { path = dir .. "/affectnet", split = "test", classes = 8 }
    assert.equal(8, #val)
    for i = 1, #val do
      local img, label = val:get(i)
      assert.equal(m.affectnet.val[i].code + 1, label)
      assert.same({ 3, 16, 16 }, img:shape())
      assert.is_true(math.abs(img:mean() - m.affectnet.val[i].value / 255) <= 3 / 255)
    end
  end)

  it("folder: arbitrary class names in sorted order, shared across splits", function()
    local sp = ac.data.folder.splits { path = dir .. "/folder" }
    assert.same({ "cats", "dogs", "owls" }, sp.train.classes)
    assert.same({ 2, 3, 4 }, sp.train:class_counts())
    assert.same({ 1, 1, 1 }, sp.val:class_counts())
    local by_path = {}
    for _, e in ipairs(m.folder.train) do by_path[e.path] = e end
    for i = 1, #sp.train do
      local img, label = sp.train:get(i)
      local e = by_path[sp.train.paths[i]]
      assert.equal(sp.train.classes[label], e.class)
      assert.is_true(math.abs(img:mean() - e.value / 255) <= 2 / 255)
    end
    local sized = ac.data.folder { path = dir .. "/folder", split = "val", size = 8 }
    assert.same({ 3, 8, 8 }, sized:get(1):shape())
  end)

  it("npy: uint8 [N,H,W] and float32 [N,H,W,C], ids 0..K-1 -> classes 1..K, names", function()
    local sp = ac.data.npy.splits { path = dir .. "/npy" }
    assert.equal(8, #sp.train); assert.equal(4, #sp.test)
    assert.same({ "Neutral", "Happy", "Sad", "Surprise" }, sp.train.classes)
    for i = 1, 8 do
      local img, label = sp.train:get(i)
      assert.equal(m.npy.train_labels[i] + 1, label)
      assert.same({ 1, 6, 5 }, img:shape())
      assert.is_true(math.abs(img:max() - ((i * 17) % 256) / 255) < 1e-6)
    end
    local img, label = sp.test:get(2)
    assert.same({ 3, 6, 5 }, img:shape())
    assert.is_true(math.abs(img:mean() - 2 / 8) < 1e-6)
    assert.equal(3, label)
    local many = ac.data.npy { path = m.npy.many }
    assert.equal(10, #many.classes)
    assert.equal("class9", many.classes[10])
    assert.equal(10, many:label(10))
  end)

  it("synthfer: generated in memory, balanced, reproducible", function()
    local a = ac.data.synthfer { n = 14, seed = 3 }
    local b = ac.data.synthfer { n = 14, seed = 3 }
    assert.same({ 2, 2, 2, 2, 2, 2, 2 }, a:class_counts())
    local x, la = a:get(5)
    local y, lb = b:get(5)
    assert.equal(la, lb)
    assert.equal(0, ((x - y):abs():max()))
    assert.is_true(x:min() >= 0 and x:max() <= 1)
    local t = ac.data.synthfer { n = 7, seed = 3, split = "test" }
    assert.is_true(((t:get(1) - x):abs():max()) > 0)
  end)

  it("a synthfer fer2013.csv goes through the fer2013 reader", function()
    if not ac.synthfer or not ac.synthfer.write_csv then return end
    local p = dir .. "/synth.csv"
    ac.synthfer.write_csv(p, { seed = 2, train = 14, public = 7, private = 7 })
    local ds = ac.data.fer2013 { path = p, split = "train" }
    assert.equal(14, #ds)
    local mem = ac.data.synthfer { n = 14, seed = 2 }
    for i = 1, 14 do
      local a, la = ds:get(i)
      local b, lb = mem:get(i)
      assert.equal(lb, la)
      assert.is_true(((a - b):abs():max()) < 1e-6)
    end
  end)
end)

describe("malformed data", function()

  it("fer2013 rows: wrong pixel count, unknown label, bad values, no header, open quote", function()
    local b = m.fer_bad
    assert.matches("wrong_pixels%.csv:3: expected 2304 pixels %(48x48%), got 2303",
      err(function() ac.data.fer2013 { path = b.wrong_pixels } end))
    assert.matches("unknown_label%.csv:3: unknown emotion label 9", err(function() ac.data.fer2013 { path = b.unknown_label } end))
    assert.matches("bad_pixel%.csv:2: pixel 1 is not an integer", err(function() ac.data.fer2013 { path = b.bad_pixel } end))
    assert.matches("big_pixel%.csv:2: pixel 1 = 256", err(function() ac.data.fer2013 { path = b.big_pixel } end))
    assert.matches("no_header%.csv:1: header must name", err(function() ac.data.fer2013 { path = b.no_header } end))
    assert.matches("unterminated%.csv:2: unterminated quoted field", err(function() ac.data.fer2013 { path = b.unterminated } end))
    assert.matches("not found", err(function() ac.data.fer2013 { path = dir .. "/missing.csv" } end))
  end)

  it("skip_bad skips malformed rows and counts them in a warning", function()
    local ds, warning = quiet(function() return ac.data.fer2013 { path = m.fer_bad.wrong_pixels, skip_bad = true } end)
    assert.equal(1, #ds)
    assert.equal(1, ds.skipped)
    assert.matches("skipped 1 bad entry", warning)
    local val = quiet(function() return ac.data.fer2013 { path = m.fer_bad.wrong_pixels, split = "val", skip_bad = true } end)
    assert.equal(1, #val)
  end)

  it("rafdb: unknown code and missing image name the list line", function()
    assert.matches("list_patition_label%.txt:2: unknown label 9", err(function() ac.data.rafdb { path = m.rafdb_bad } end))
    local ds, warning = quiet(function() return ac.data.rafdb { path = m.rafdb_bad, skip_bad = true } end)
    assert.equal(2, #ds)
    assert.matches("skipped 2 bad entries", warning)
    assert.matches("folder not found", err(function() ac.data.rafdb { path = dir .. "/nothing" } end))
  end)

  it("affectnet: unknown code and missing image", function()
    assert.matches("training%.csv:2: unknown expression code 12", err(function() ac.data.affectnet { path = m.affectnet_bad } end))
    assert.matches("validation%.csv:3: image not found: .*none%.jpg",
      err(function() ac.data.affectnet { path = m.affectnet_bad, split = "val" } end))
    local ds = quiet(function() return ac.data.affectnet { path = m.affectnet_bad, split = "val", skip_bad = true } end)
    assert.equal(1, #ds)
  end)

  it("npy: image and label counts that differ name both files", function()
    local e = err(function() ac.data.npy { path = m.npy.bad } end)
    assert.matches("train_images%.npy has 8 images but .*train_labels%.npy has 7 labels", e)
    assert.matches("not found", err(function() ac.data.npy { path = m.npy.bad, split = "test" } end))
  end)

  it("truncated and corrupt image files raise errors naming the file on read", function()
    local ds = ac.data.folder { path = dir .. "/folder_bad" }
    local msgs = {}
    for i = 1, #ds do
      local ok, e = pcall(ds.get, ds, i)
      if not ok then msgs[#msgs + 1] = tostring(e) end
    end
    assert.equal(2, #msgs)
    local joined = table.concat(msgs, "\n")
    assert.matches("corrupt%.png: cannot decode image", joined)
    assert.matches("truncated%.jpg: truncated or corrupt JPEG", joined)
  end)

  it("argument errors", function()
    assert.matches("option 'path' is required", err(function() ac.data.fer2013 {} end))
    assert.matches("unknown split 'dev'", err(function() ac.data.fer2013 { path = dir .. "/fer2013", split = "dev" } end))
    assert.matches("unknown data set 'ckplus'", err(function() ac.data.open("ckplus", {}) end))
    assert.matches("split 'val' not found", err(function() ac.data.folder { path = dir .. "/fer2013_folders", split = "val" } end))
    assert.matches("classes must be 7 or 8", err(function() ac.data.affectnet { path = dir .. "/affectnet", classes = 9 } end))
  end)
end)
end)
