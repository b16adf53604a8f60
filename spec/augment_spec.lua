-- spec/augment_spec.lua - ac.augment: identities (two flips, zero rotation),
-- exact geometric cases, value ranges, determinism (same seed, any thread
-- count), each op's effect, presets and option errors.
local ac = require("adcorre")
local A = ac.augment

local function maxdiff(a, b) return ((a - b):abs():max()) end

describe("augment identities", function()
  it("two flips are the identity; one flip mirrors the columns", function()
    ac.manual_seed(3)
    local x = ac.rand(4, 3, 9, 10)
    local y = x:clone()
    A.Compose { A.HFlip(1), A.HFlip(1) }(y)
    assert.equal(0, maxdiff(x, y))
    local z = x:clone()
    A.HFlip(1)(z)
    for j = 1, 10 do assert.equal(x[2][3][5][j], z[2][3][5][11 - j]) end
  end)

  it("a zero-degree rotation (and an identity affine) is the identity", function()
    ac.manual_seed(4)
    local x = ac.rand(3, 1, 48, 48)
    for _, border in ipairs({ "constant", "replicate", "reflect" }) do
      local y = x:clone()
      A.Affine { rotate = 0, border = border }(y)
      assert.equal(0, maxdiff(x, y))
    end
    local y = x:clone()
    A.Affine { rotate = 0, scale = { 1, 1 }, translate = 0, shear = 0 }(y)
    assert.equal(0, maxdiff(x, y))
    assert.equal(0, maxdiff(A.warp(x[1], { 1, 0, 0, 1 }, { 0, 0 }), x[1]))
  end)

  it("exact warps: integer shift, 180-degree rotation, 90-degree rotation", function()
    local x = ac.arange(1, 26):view(1, 5, 5):float()
    local s = A.warp(x, { 1, 0, 0, 1 }, { 1, 0 }, "constant", 0)   -- shift right by one
    for r = 1, 5 do
      assert.equal(0, s[1][r][1])
      for c = 2, 5 do assert.equal(x[1][r][c - 1], s[1][r][c]) end
    end
    local r180 = A.warp(x, { -1, 0, 0, -1 })
    for r = 1, 5 do for c = 1, 5 do assert.equal(x[1][6 - r][6 - c], r180[1][r][c]) end end
    local c, sn = math.cos(math.pi / 2), math.sin(math.pi / 2)
    local r90 = A.warp(x, { c, -sn, sn, c })
    for r = 1, 5 do for q = 1, 5 do
      -- dst(x, y) samples src(x', y') = (cx - (y - cy), cy + (x - cx))
      local sx, sy = 3 - (r - 3), 3 + (q - 3)
      assert.is_true(math.abs(r90[1][r][q] - x[1][sy][sx]) < 1e-4)
    end end
  end)
end)

describe("augment ranges and determinism", function()
  local all_ops = {
    A.HFlip(0.5),
    A.Affine { rotate = 30, scale = { 0.7, 1.3 }, translate = 0.2, shear = 10, border = "reflect" },
    A.Affine { rotate = 180, scale = { 0.5, 2 }, translate = 0.5, border = "constant", fill = 1 },
    A.RandomResizedCrop { scale = { 0.1, 1 } },
    A.ColorJitter { brightness = 1, contrast = 1, gamma = 3 },
    A.GaussianNoise { std = 0.5 },
    A.GaussianBlur { sigma = { 0.1, 5 } },
    A.RandomErasing { p = 1, value = "random" },
    A.RandomErasing { p = 1, value = 1 },
  }

  it("outputs stay in [0, 1] for every op and preset", function()
    ac.manual_seed(5)
    local x = ac.rand(16, 3, 24, 24)
    x[1]:fill(0); x[2]:fill(1)
    for i, op in ipairs(all_ops) do
      local y = x:clone()
      op(y)
      assert.is_true(y:min() >= 0 and y:max() <= 1, "op " .. i .. " " .. tostring(op))
      assert.equal(0, y:ne(y):sum()) -- no NaN
    end
    for _, p in ipairs(A.presets) do
      local y = x:clone()
      A.preset(p)(y)
      assert.is_true(y:min() >= 0 and y:max() <= 1, p)
    end
  end)

  it("the same seed gives the same batch, another seed another", function()
    local x = ac.rand(8, 1, 32, 32)
    local aug = A.preset("masked")
    ac.manual_seed(11)
    local a = aug(x:clone())
    ac.manual_seed(11)
    local b = aug(x:clone())
    assert.equal(0, maxdiff(a, b))
    ac.manual_seed(12)
    local c = aug(x:clone())
    assert.is_true(maxdiff(a, c) > 0)
    local d = aug:apply(x:clone(), { seed = 99 })
    local e = aug:apply(x:clone(), { seed = 99 })
    assert.equal(0, maxdiff(d, e))
  end)

  it("results do not depend on the thread count", function()
    local x = ac.rand(13, 3, 20, 20)
    local aug = A.preset("standard")
    local prev = ac.get_num_threads and ac.get_num_threads() or 2
    ac.set_num_threads(1)
    local a = aug:apply(x:clone(), { seed = 7 })
    ac.set_num_threads(2)
    local b = aug:apply(x:clone(), { seed = 7 })
    ac.set_num_threads(prev)
    assert.equal(0, maxdiff(a, b))
  end)

  it("apply into an output leaves the input untouched; a single image works", function()
    local x = ac.rand(2, 1, 8, 8)
    local keep = x:clone()
    local out = ac.zeros(2, 1, 8, 8)
    A.HFlip(1):apply(x, { out = out })
    assert.equal(0, maxdiff(x, keep))
    assert.equal(x[1][1][1][1], out[1][1][1][8])
    local img = ac.rand(3, 5, 5)
    local f = A.HFlip(1)(img:clone())
    assert.equal(img[2][3][1], f[2][3][5])
  end)
end)

describe("augment ops", function()
  it("blur keeps a constant image and the mean; noise has the asked spread", function()
    local x = ac.full({ 1, 1, 16, 16 }, 0.4)
    A.GaussianBlur { sigma = 2 }(x)
    assert.is_true(maxdiff(x, ac.full({ 1, 1, 16, 16 }, 0.4)) < 1e-6)
    local n = ac.full({ 1, 1, 64, 64 }, 0.5)
    A.GaussianNoise { std = 0.05 }:apply(n, { seed = 1 })
    assert.is_true(math.abs(n:std() - 0.05) < 0.005)
    assert.is_true(math.abs(n:mean() - 0.5) < 0.005)
  end)

  it("random erasing sets one rectangle to the value", function()
    local x = ac.full({ 1, 1, 20, 20 }, 0.5)
    A.RandomErasing { p = 1, scale = { 0.1, 0.1 }, ratio = { 1, 1 }, value = 0 }:apply(x, { seed = 3 })
    local erased = x:eq(0):sum()
    assert.is_true(erased >= 30 and erased <= 50, "erased " .. erased) -- about 10% of 400 pixels
    assert.equal(400 - erased, x:eq(0.5):sum())
  end)

  it("jitter with zero strength and p = 0 ops change nothing", function()
    local x = ac.rand(3, 3, 8, 8)
    local y = x:clone()
    A.Compose { A.ColorJitter {}, A.Affine { rotate = 45, p = 0 }, A.RandomErasing { p = 0 } }(y)
    assert.equal(0, maxdiff(x, y))
  end)

  it("random resized crop of the full area with the image's aspect is the identity", function()
    local x = ac.rand(2, 1, 12, 12)
    local y = x:clone()
    A.RandomResizedCrop { scale = { 1, 1 }, ratio = { 1, 1 } }(y)
    assert.is_true(maxdiff(x, y) < 1e-6)
  end)

  it("option errors name the op", function()
    local function err(f) local ok, e = pcall(f); assert.is_false(ok); return tostring(e) end
    assert.matches("unknown option 'rotat'", err(function() A.Affine { rotat = 3 } end))
    assert.matches("scale range", err(function() A.Compose { A.Affine { scale = { 2, 1 } } } end))
    assert.matches("p must be in", err(function() A.Compose { A.HFlip(2) } end))
    assert.matches("unknown preset", err(function() A.preset("heavy") end))
    assert.matches("not an augment op", err(function() A.Compose { 3 } end))
    assert.matches("border", err(function() A.Compose { A.Affine { border = "wrap" } } end))
    assert.matches("contiguous", err(function() A.HFlip(1)(ac.rand(4, 4, 3):transpose(1, 3)) end))
    assert.matches("float32", err(function() A.HFlip(1)(ac.zeros(1, 1, 2, 2, "uint8")) end))
  end)
end)
