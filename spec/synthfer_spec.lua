-- spec/synthfer_spec.lua - the synthfer generator: determinism (seed, thread
-- count, chunking), value range, class balance, the fer2013.csv writer's
-- label mapping and Usage counts (re-read by a plain Lua parser), the PNG
-- preview, and argument errors.
local ac = require("adcorre")
local sf = ac.synthfer

local function tmpname(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. suffix
end

local function max_abs_diff(a, b)
  return (a - b):abs():max()
end

-- Parses a fer2013.csv: returns the header and an array of rows
-- {code = , pixels = {...}, usage = }.
local function read_fer_csv(path)
  local f = assert(io.open(path, "r"))
  local header = f:read("l")
  local rows = {}
  for line in f:lines() do
    local code, pix, usage = line:match("^(%d+),([%d ]+),(%a+)$")
    assert(code, "malformed row " .. (#rows + 1))
    local px = {}
    for v in pix:gmatch("%d+") do px[#px + 1] = tonumber(v) end
    rows[#rows + 1] = { code = tonumber(code), pixels = px, usage = usage }
  end
  f:close()
  return header, rows
end

describe("synthfer.generate", function()
  local saved_threads
  setup(function() saved_threads = ac.get_num_threads() end)
  teardown(function() ac.set_num_threads(saved_threads) end)

  it("returns [N,1,48,48] float32 images in [0,1] and int64 labels 1..7", function()
    local x, y = sf.generate(35, { seed = 11 })
    assert.same({ 35, 1, 48, 48 }, x:shape())
    assert.equal("float32", x:dtype())
    assert.same({ 35 }, y:shape())
    assert.equal("int64", y:dtype())
    assert.is_true(x:min() >= 0 and x:max() <= 1)
    assert.is_true(y:min() >= 1 and y:max() <= 7)
    -- images are not flat: every face has contrast
    for i = 1, 35 do assert.is_true(x[i]:std() > 0.02, "image " .. i .. " is flat") end
  end)

  it("is a pure function of the seed and index", function()
    local a, la = sf.generate(21, { seed = 5 })
    local b, lb = sf.generate(21, { seed = 5 })
    assert.equal(0, max_abs_diff(a, b))
    assert.is_true(la:equal(lb))
    local c = sf.generate(21, { seed = 6 })
    for i = 1, 21 do assert.is_true(max_abs_diff(a[i], c[i]) > 0.05, "sample " .. i .. " equal across seeds") end
    -- samples within a set differ
    assert.is_true(max_abs_diff(a[1], a[2]) > 0.05)
  end)

  it("does not depend on the thread count, the chunking or the global generator", function()
    ac.set_num_threads(1)
    local a, la = sf.generate(40, { seed = 99 })
    ac.set_num_threads(2)
    ac.manual_seed(1234)
    local b, lb = sf.generate(40, { seed = 99 })
    assert.equal(0, max_abs_diff(a, b))
    assert.is_true(la:equal(lb))
    local c, lc = sf.generate(15, { seed = 99, start = 11 })
    assert.equal(0, max_abs_diff(a:narrow(1, 11, 15), c))
    assert.is_true(la:narrow(1, 11, 15):equal(lc))
    for i = 1, 40 do assert.equal(la[i], sf.label(99, i)) end
  end)

  it("follows ac.manual_seed when no seed is given", function()
    ac.manual_seed(7)
    local a = sf.generate(7)
    ac.manual_seed(7)
    local b = sf.generate(7)
    local c = sf.generate(7)
    assert.equal(0, max_abs_diff(a, b))
    assert.is_true(max_abs_diff(b, c) > 0.05)
  end)

  it("balances the classes exactly in every block of 7", function()
    local _, y = sf.generate(700, { seed = 3 })
    local counts = {}
    local lab = y:totable()
    for b = 0, 99 do
      local seen = {}
      for j = 1, 7 do
        local c = lab[b * 7 + j]
        assert.is_nil(seen[c], "class repeated in block " .. b)
        seen[c] = true
        counts[c] = (counts[c] or 0) + 1
      end
    end
    for c = 1, 7 do assert.equal(100, counts[c]) end
    -- the order within blocks is seeded, not fixed
    local _, y2 = sf.generate(700, { seed = 4 })
    assert.is_false(y:equal(y2))
  end)

  it("uint8 output is the rounded float output", function()
    local x = sf.generate(14, { seed = 8 })
    local u = sf.generate(14, { seed = 8, dtype = "uint8" })
    assert.equal("uint8", u:dtype())
    assert.same({ 14, 1, 48, 48 }, u:shape())
    assert.is_true(max_abs_diff((x * 255):float(), u:float()) <= 0.5 + 1e-3)
  end)

  it("accepts the table form and n = 0", function()
    local a = sf.generate { n = 3, seed = 2, difficulty = 0.5 }
    local b = sf.generate(3, { seed = 2, difficulty = 0.5 })
    assert.equal(0, max_abs_diff(a, b))
    local z, zl = sf.generate(0, { seed = 1 })
    assert.equal(0, z:numel())
    assert.equal(0, zl:numel())
  end)

  it("a nuisance option changes only its own effect", function()
    local o = { seed = 12, noise = 0, blur = 0, occlusion = 0 }
    local a = sf.generate(14, o)
    o.occlusion = 1
    local b = sf.generate(14, o)
    for i = 1, 14 do
      local same = (a[i] - b[i]):abs():lt(1e-6):float():sum()
      local differ = 2304 - same
      -- the occluder covers part of the face; the rest is the same picture
      assert.is_true(differ > 20, "sample " .. i .. ": no occluder drawn")
      assert.is_true(same > 2304 * 0.4, "sample " .. i .. ": occlusion changed the whole image")
    end
  end)

  it("options change the images", function()
    local base = sf.generate(7, { seed = 1 })
    for _, o in ipairs({ { difficulty = 0 }, { noise = 0 }, { occlusion = 1 }, { max_rotation = 0 }, { blur = 1 } }) do
      o.seed = 1
      local x = sf.generate(7, o)
      assert.is_true(max_abs_diff(base, x) > 0.01)
    end
  end)
end)

describe("synthfer.render", function()
  it("draws sample i as its own class exactly like generate", function()
    local x, y = sf.generate(7, { seed = 21 })
    for i = 1, 7 do
      local r = sf.render(y[i], { seed = 21, index = i })
      assert.same({ 1, 48, 48 }, r:shape())
      assert.equal(0, max_abs_diff(x[i], r))
    end
  end)

  it("the expression changes the face, mostly in its middle", function()
    local clean = { seed = 4, index = 3, difficulty = 0, noise = 0, blur = 0, occlusion = 0, max_rotation = 0 }
    local faces = {}
    for c = 1, 7 do faces[c] = sf.render(c, clean) end
    for a = 1, 7 do
      for b = a + 1, 7 do
        local d = (faces[a] - faces[b]):abs()
        assert.is_true(d:sum() > 1, ("classes %d and %d look alike"):format(a, b))
        -- the border rows (background, hair, shoulders) do not carry the expression
        assert.equal(0, d:narrow(2, 1, 3):max())
      end
    end
  end)
end)

describe("synthfer.write_csv", function()
  it("writes fer2013.csv with FER codes, pixels and Usage counts", function()
    local path = tmpname("_fer2013.csv")
    local info = sf.write_csv(path, { seed = 17, train = 30, public = 8, private = 6, difficulty = 0.8 })
    assert.equal(44, info.rows)
    local header, rows = read_fer_csv(path)
    assert.equal("emotion,pixels,Usage", header)
    assert.equal(44, #rows)
    local pix, lab = sf.generate(44, { seed = 17, dtype = "uint8", difficulty = 0.8 })
    local usage_counts = {}
    local code_of = { 6, 3, 4, 5, 2, 1, 0 }
    for i, r in ipairs(rows) do
      usage_counts[r.usage] = (usage_counts[r.usage] or 0) + 1
      local expected_usage = i <= 30 and "Training" or (i <= 38 and "PublicTest" or "PrivateTest")
      assert.equal(expected_usage, r.usage)
      assert.equal(code_of[lab[i]], r.code)
      assert.equal(2304, #r.pixels)
      local flat = pix[i]:view(2304)
      for _, k in ipairs({ 1, 2, 100, 1000, 1151, 2304 }) do assert.equal(flat[k], r.pixels[k]) end
    end
    assert.same({ Training = 30, PublicTest = 8, PrivateTest = 6 }, usage_counts)
    -- info.counts agrees with the file
    local total = 0
    for _, u in pairs(info.counts) do for _, n in pairs(u) do total = total + n end end
    assert.equal(44, total)
    -- no temporary file is left beside it
    assert.is_nil(io.open(path .. ".tmp." .. "x", "r"))
    os.remove(path)
  end)

  it("maps canonical classes to FER-2013 codes", function()
    local expect = { 6, 3, 4, 5, 2, 1, 0 }
    local fer_names = { [0] = "Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral" }
    local canon = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }
    for c = 1, 7 do
      assert.equal(expect[c], sf.fer_code(c))
      assert.equal(canon[c]:sub(1, 3), fer_names[sf.fer_code(c)]:sub(1, 3))
    end
    assert.has_error(function() sf.fer_code(8) end, "synthfer.fer_code: 'label' must be a class in 1..7, got 8")
  end)

  it("reports unwritable paths and leaves no file", function()
    local ok, err = pcall(sf.write_csv, "/nonexistent-dir/fer2013.csv", { train = 7, public = 0, private = 0, seed = 1 })
    assert.is_false(ok)
    assert.matches("/nonexistent%-dir/fer2013.csv", err)
  end)
end)

describe("synthfer.preview / save_grid", function()
  it("writes a PNG grid with one row per class", function()
    local path = tmpname("_grid.png")
    local grid = sf.preview(path, { per_class = 3, seed = 2 })
    assert.same({ 21, 1, 48, 48 }, grid:shape())
    local f = assert(io.open(path, "rb"))
    local data = f:read("a")
    f:close()
    assert.equal("\137PNG\r\n\26\n", data:sub(1, 8))
    -- IHDR: width and height, big-endian, after the 8-byte signature and 8-byte chunk header
    local w = string.unpack(">I4", data, 17)
    local h = string.unpack(">I4", data, 21)
    assert.equal(3 * 50 + 2, w)
    assert.equal(7 * 50 + 2, h)
    os.remove(path)
  end)
end)

describe("synthfer argument errors", function()
  it("raise clear messages", function()
    assert.has_error(function() sf.generate(-1) end, "synthfer.generate: 'n' must be >= 0, got -1")
    assert.has_error(function() sf.generate(2.5) end, "synthfer.generate: 'n' must be an integer, got 2.5")
    assert.has_error(function() sf.generate("x") end, "synthfer.generate: 'n' must be an integer, got string")
    assert.has_error(function() sf.generate(2, { seed = 1.5 }) end, "synthfer.generate: 'seed' must be an integer, got 1.5")
    assert.has_error(function() sf.generate(2, { start = 0 }) end, "synthfer.generate: 'start' must be >= 1, got 0")
    assert.has_error(function() sf.generate(2, { dtype = "int64" }) end,
      'synthfer.generate: dtype must be "float32" or "uint8", got int64')
    assert.has_error(function() sf.generate(2, { noise = "lots" }) end,
      "synthfer.generate: option 'noise' must be a number, got string")
    assert.has_error(function() sf.generate(2, "fast") end, "synthfer.generate: options must be a table, got string")
    local ok, err = pcall(sf.generate, 2, { dificulty = 1 })
    assert.is_false(ok)
    assert.matches("synthfer.generate: unknown option 'dificulty' %(known: .*difficulty", err)
    ok, err = pcall(sf.generate, 2, { difficulty = 5 })
    assert.is_false(ok)
    assert.matches("synthfer.generate: difficulty must be in %[0, 3%], got 5", err)
    ok, err = pcall(sf.generate, 2, { occlusion = -0.1 })
    assert.matches("occlusion must be a probability in %[0, 1%]", err)
    ok, err = pcall(sf.generate, 2, { max_rotation = 90 })
    assert.matches("max_rotation must be in %[0, 45%] degrees, got 90", err)
    ok, err = pcall(sf.generate, 2, { noise = 0 / 0 })
    assert.is_false(ok)
    assert.matches("noise must be in", err)
    assert.has_error(function() sf.render(0) end, "synthfer.render: 'label' must be >= 1, got 0")
    assert.has_error(function() sf.render(8) end, "synthfer.render: 'label' must be a class in 1..7, got 8")
    assert.has_error(function() sf.label(nil, 1) end, "synthfer.label: 'seed' is required")
    assert.has_error(function() sf.label(1, 0) end, "synthfer.label: 'i' must be >= 1, got 0")
    assert.has_error(function() sf.write_csv(3) end, "synthfer.write_csv: 'path' must be a string, got number")
    assert.has_error(function() sf.write_csv("x.csv", { train = 0, public = 0, private = 0 }) end,
      "synthfer.write_csv: no rows requested (train + public + private = 0)")
    assert.has_error(function() sf.save_grid("x.png", ac.zeros(2, 3, 48, 48)) end,
      "synthfer.save_grid: 'images' must be [N, H, W] or [N, 1, H, W], got [2, 3, 48, 48]")
    assert.has_error(function() sf.save_grid("x.png", ac.zeros(2, 48, 48, "uint8")) end,
      "synthfer.save_grid: argument 'images' must be float32, got uint8")
    assert.has_error(function() sf.preview("x.png", { per_class = 0 }) end,
      "synthfer.preview: 'per_class' must be >= 1, got 0")
  end)

  it("the C functions check their arguments too", function()
    local core = require("adcorre.core")
    assert.has_error(function() core.synthfer.generate(2, 1, -1) end, "synthfer.generate: 'start' must be >= 0, got -1")
    assert.has_error(function() core.synthfer.generate(2, 1, 0, { foo = 1 }) end,
      "synthfer.generate: unknown option 'foo' (known: difficulty, max_rotation, occlusion, noise, blur)")
    assert.has_error(function() core.synthfer.write_csv("x.csv", ac.zeros(2, 48, 48, "uint8"), ac.zeros(3, "int64"), ac.zeros(2, "uint8")) end,
      "synthfer.write_csv: 'labels' [3] and 'usage' [2] must be [2] like the pixels [2, 48, 48]")
    assert.has_error(function() core.synthfer.write_csv("x.csv", ac.zeros(2, 40, 40, "uint8"), ac.zeros(2, "int64"), ac.zeros(2, "uint8")) end,
      "synthfer.write_csv: 'pixels' must be [N, 48, 48] (or [N, 1, 48, 48], [N, 2304]), got [2, 40, 40]")
    local ok, err = pcall(core.synthfer.write_csv, "x.csv", ac.zeros(1, 48, 48, "uint8"), ac.tensor({ 9 }, "int64"), ac.zeros(1, "uint8"))
    assert.is_false(ok)
    assert.matches("row 1: label 9 is not a class in 1..7", err)
    assert.is_nil(io.open("x.csv", "r"))
  end)
end)
