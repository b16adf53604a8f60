-- spec/loader_spec.lua - ac.data.Loader: batch shapes, epoch coverage,
-- shuffling, determinism across worker counts, the balanced sampler, files,
-- errors raised in worker threads, skip_bad, and clean shutdown.
local ac = require("adcorre")
local tiny = dofile("tools/make_tiny_datasets.lua")

local function err(f)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

-- N images 4x4 whose pixel values encode their index: image i is filled with i.
local function indexed(n, labels)
  local img = ac.zeros(n, 4, 4, "uint8")
  local lab = {}
  for i = 1, n do
    img[i]:fill(i)
    lab[i] = labels and labels(i) or ((i - 1) % 7) + 1
  end
  return ac.data.from_memory { images = img, labels = lab }
end

local function ids(x, n)
  local out = {}
  for j = 1, n do out[j] = math.floor(x[j][1][1][1] * 255 + 0.5) end
  return out
end

describe("Loader", function()
  local dir, m
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    m = tiny.build(dir)
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("covers every sample once per epoch in shuffled batches; the last batch is short", function()
    local ds = indexed(70)
    local ld = ac.data.Loader(ds, { batch = 16, workers = 2, seed = 1 })
    assert.equal(5, #ld)
    local orders = {}
    for e = 1, 2 do
      local seen, order, sizes = {}, {}, {}
      for x, y, n in ld:epoch() do
        assert.same({ n, 1, 4, 4 }, x:shape())
        assert.same({ n }, y:shape())
        sizes[#sizes + 1] = n
        for j, id in ipairs(ids(x, n)) do
          assert.is_nil(seen[id])
          seen[id] = true
          order[#order + 1] = id
          assert.equal(((id - 1) % 7) + 1, y[j])
        end
      end
      assert.same({ 16, 16, 16, 16, 6 }, sizes)
      assert.equal(70, #order)
      orders[e] = table.concat(order, ",")
    end
    assert.are_not.equal(orders[1], orders[2])
    local sorted = {}
    for i = 1, 70 do sorted[i] = i end
    assert.are_not.equal(table.concat(sorted, ","), orders[1])
    ld:close()
  end)

  it("shuffle = false keeps the data set order; drop_last drops the short batch", function()
    local ds = indexed(10)
    local ld = ac.data.Loader(ds, { batch = 4, shuffle = false, drop_last = true, workers = 1 })
    assert.equal(2, #ld)
    local got = {}
    for x, _, n in ld:epoch() do for _, id in ipairs(ids(x, n)) do got[#got + 1] = id end end
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, got)
  end)

  it("gives the same batches for any number of workers and the same seed", function()
    local ds = ac.data.synthfer { n = 50, seed = 4 }
    local function run(workers, seed)
      local ld = ac.data.Loader(ds, { batch = 8, workers = workers, seed = seed, augment = "masked", prefetch = 3 })
      local xs, ys = {}, {}
      for e = 1, 2 do
        for x, y in ld:epoch() do xs[#xs + 1] = x:clone(); ys[#ys + 1] = y:clone() end
      end
      ld:close()
      return xs, ys
    end
    local x0, y0 = run(0, 9)
    for _, w in ipairs({ 1, 2, 3 }) do
      local xw, yw = run(w, 9)
      assert.equal(#x0, #xw)
      for b = 1, #x0 do
        assert.is_true(x0[b]:equal(xw[b]), "workers " .. w .. " batch " .. b)
        assert.is_true(y0[b]:equal(yw[b]))
      end
    end
    local x1 = run(2, 10)
    assert.is_false(x0[1]:equal(x1[1]))
    -- the seed can come from ac.manual_seed
    ac.manual_seed(5)
    local a = run(2)
    ac.manual_seed(5)
    local b = run(1)
    assert.is_true(a[3]:equal(b[3]))
  end)

  it("resizes and converts channels; augmented values stay in [0, 1]", function()
    local ds = ac.data.synthfer { n = 20, seed = 1 }
    local ld = ac.data.Loader(ds, { batch = 10, size = 32, channels = 3, augment = "standard", workers = 2 })
    for x in ld:epoch() do
      assert.same({ 10, 3, 32, 32 }, x:shape())
      assert.is_true(x:min() >= 0 and x:max() <= 1)
    end
    local plain = ac.data.Loader(ds, { batch = 20, size = 32, shuffle = false, workers = 1 })
    local x = plain:epoch()()
    local want = ac.image.resize(ds:get(7), 32, 32)
    assert.is_true(((x[7] - want):abs():max()) < 1e-6)
    local rgb = ac.data.Loader(ds, { batch = 20, channels = 3, workers = 1 }):epoch()()
    assert.is_true(rgb[1][1]:equal(rgb[1][3]))
  end)

  it("reads image files (folder, affectnet face boxes) in the workers", function()
    local ds = ac.data.folder { path = dir .. "/folder", split = "train" }
    local ld = ac.data.Loader(ds, { batch = 4, size = { 10, 12 }, shuffle = false, workers = 2 })
    local seen = 0
    for x, y, n in ld:epoch() do
      assert.same({ n, 3, 10, 12 }, x:shape())
      for j = 1, n do
        seen = seen + 1
        local img, label = ds:get(seen)
        assert.equal(label, y[j])
        assert.is_true(math.abs(x[j]:mean() - img:mean()) < 1e-5)
      end
    end
    assert.equal(#ds, seen)
    local an = ac.data.affectnet { path = dir .. "/affectnet", split = "val", classes = 8 }
    local la = ac.data.Loader(an, { batch = 8, size = 16, shuffle = false, workers = 2 })
    local x = la:epoch()()
    for j = 1, 8 do
      assert.is_true(math.abs(x[j]:mean() - m.affectnet.val[j].value / 255) <= 3 / 255)
    end
  end)

  it("JPEGs much larger than the output decode at a DCT scale: close to full decoding + area resizing", function()
    -- the loader decodes a JPEG at the smallest n/8 scale that keeps the output size (or the face
    -- box at the output size); the result must stay close to decoding at full size and shrinking
    local face = ac.synthfer.generate(1, { seed = 5 })[1]
    for _, s in ipairs({ 256, 512 }) do
      local g = ac.image.resize(face, s, s)
      local rgb = ac.zeros(3, s, s)
      rgb[1]:copy(g[1]); rgb[2]:copy(g[1] * 0.8); rgb[3]:copy(g[1] * 0.6)
      local p = ("%s/big%d.jpg"):format(dir, s)
      ac.image.save(p, rgb, { quality = 95 })
      local full = ac.image.load(p, 3)
      for _, t in ipairs({ 224, 64, 48 }) do
        for _, boxed in ipairs({ false, true }) do
          local box = boxed and ac.tensor({ { s * 0.2, s * 0.1, s * 0.6, s * 0.7 } }) or nil
          local ds = ac.data.from_files { paths = { p }, labels = { 1 }, channels = 3, boxes = box }
          local ld = ac.data.Loader(ds, { batch = 1, size = t, workers = 0, seed = 1 })
          local x
          for xb in ld:epoch() do x = xb[1]:clone() end
          ld:close()
          local ref = full
          if boxed then
            local x0, y0 = math.floor(s * 0.2), math.floor(s * 0.1)
            ref = ac.image.crop(full, y0 + 1, x0 + 1, math.floor(s * 0.8 + 0.5) - y0, math.floor(s * 0.8 + 0.5) - x0)
          end
          local d = (x - ac.image.resize(ref, t, t)):abs()
          local what = ("%d -> %d%s"):format(s, t, boxed and " (box)" or "")
          assert.is_true(d:mean() < 0.01, what .. ": mean difference " .. d:mean())
          assert.is_true(d:max() < 0.1, what .. ": largest difference " .. d:max())
        end
      end
    end
  end)

  it("the balanced sampler evens out the classes", function()
    local ds = indexed(100, function(i) return i <= 90 and 1 or 2 end)
    local ld = ac.data.Loader(ds, { batch = 50, balanced = true, epoch_size = 2000, workers = 2, seed = 3 })
    assert.equal(40, #ld)
    local counts = { 0, 0 }
    for _, y, n in ld:epoch() do for j = 1, n do counts[y[j]] = counts[y[j]] + 1 end end
    assert.equal(2000, counts[1] + counts[2])
    assert.is_true(counts[2] > 850 and counts[2] < 1150, "class 2 drawn " .. counts[2])
  end)

  it("an error inside a worker comes back as a Lua error naming the file", function()
    local ds = ac.data.folder { path = dir .. "/folder_bad" }
    local ld = ac.data.Loader(ds, { batch = 1, size = 8, workers = 2, shuffle = false })
    local e = err(function() for _ in ld:epoch() do end end)
    assert.is_truthy(e:match("truncated%.jpg") or e:match("corrupt%.png"), e)
    -- the loader can start a new epoch afterwards, and fails the same way
    local e2 = err(function() for _ in ld:epoch() do end end)
    assert.is_truthy(e2:match("truncated%.jpg") or e2:match("corrupt%.png"))
    ld:close()
  end)

  it("skip_bad replaces unreadable files and counts them", function()
    local ds = ac.data.folder { path = dir .. "/folder_bad" }
    local real = io.stderr
    local warned = {}
    io.stderr = { write = function(_, s) warned[#warned + 1] = s end }
    local ld = ac.data.Loader(ds, { batch = 2, size = 8, workers = 2, skip_bad = true, seed = 1 })
    local n_total = 0
    local ok, e = pcall(function() for _, _, n in ld:epoch() do n_total = n_total + n end end)
    io.stderr = real
    assert.is_true(ok, tostring(e))
    assert.equal(#ds, n_total)
    assert.is_true(ld:skipped() >= 2)
    assert.matches("skipped", table.concat(warned))
  end)

  it("works with a data set written in Lua (only get)", function()
    local ds = setmetatable({ channels = 1, classes = { "a", "b" } }, {
      __len = function() return 9 end,
      __index = { get = function(_, i) return ac.full({ 1, 5, 5 }, i / 10), (i % 2) + 1 end },
    })
    local ld = ac.data.Loader(ds, { batch = 4, size = 6, shuffle = false, augment = "light", seed = 2 })
    local n_total = 0
    for x, y, n in ld:epoch() do
      assert.same({ n, 1, 6, 6 }, x:shape())
      n_total = n_total + n
      assert.equal(((n_total - n + 1) % 2) + 1, y[1])
    end
    assert.equal(9, n_total)
  end)

  it("closes cleanly: explicit close, <close>, and garbage collection join the workers", function()
    local ds = indexed(64)
    do
      local ld <close> = ac.data.Loader(ds, { batch = 8, workers = 2 })
      local it = ld:epoch()
      it() -- workers are busy filling ahead
    end
    for _ = 1, 20 do
      local ld = ac.data.Loader(ds, { batch = 8, workers = 2, augment = "standard" })
      local it = ld:epoch()
      it()
    end
    collectgarbage()
    collectgarbage()
    local ld = ac.data.Loader(ds, { batch = 8, workers = 2 })
    ld:close()
    assert.matches("closed", err(function() ld:epoch() end))
  end)

  it("option errors", function()
    local ds = indexed(8)
    assert.matches("unknown option 'bach'", err(function() ac.data.Loader(ds, { bach = 4 }) end))
    assert.matches("batch", err(function() ac.data.Loader(ds, { batch = 0 }) end))
    assert.matches("workers", err(function() ac.data.Loader(ds, { workers = -1 }) end))
    assert.matches("expects a data set", err(function() ac.data.Loader(nil) end))
    assert.matches("unknown preset", err(function() ac.data.Loader(ds, { augment = "heavy" }) end))
    assert.matches("labels are 1%-based",
      err(function() ac.data.Loader(ac.data.from_memory { images = ac.zeros(2, 3, 3, "uint8"), labels = { 0, 1 } }, { balanced = true }) end))
  end)
end)
