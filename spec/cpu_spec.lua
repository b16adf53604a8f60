-- The CPU-feature API (csrc/cpu/cpu.h), its dispatch levels and the
-- OpenBLAS-core check (csrc/cpu/blas_check.c): ac.config(), the advice for
-- any core name, and one training step of a small network giving the same
-- results (within float rounding) on the generic, AVX2 and AVX-512 paths.
local ac = require("adcorre")
local core = require("adcorre.core")
local testing = require("adcorre.testing")
local nn = ac.nn

local function rel(a, b)
  local d, s = (a - b):abs():max(), b:abs():max()
  if type(d) ~= "number" then d = d:item() end
  if type(s) ~= "number" then s = s:item() end
  return s > 0 and d / s or d
end

describe("ac.config()", function()
  it("reports the dispatch level, the CPU's features, its caches and the BLAS core", function()
    local c = ac.config()
    assert.is_true(c.isa == "generic" or c.isa == "avx2" or c.isa == "avx512")
    assert.are.equal("boolean", type(c.avx2))
    assert.are.equal(c.avx512f, c.isa == "avx512")
    assert.is_true(c.l1d_bytes >= 4096 and c.l2_bytes >= c.l1d_bytes)
    assert.are.equal("string", type(c.blas_core))
    assert.is_true(c.blas_core_isa == "generic" or c.blas_core_isa == "avx2" or c.blas_core_isa == "avx512")
    assert.are.equal(ac.get_num_threads(), c.threads)
    -- advice exactly when OpenBLAS's core is below the CPU's level
    local rank = {generic = 0, avx2 = 1, avx512 = 2}
    local best = c.avx512f and 2 or c.avx2 and 1 or 0
    assert.are.equal(rank[c.blas_core_isa] < best, c.blas_advice ~= nil)
  end)
  it("follows the test limit, never above the CPU", function()
    local c = ac.config()
    assert.are.equal("generic", testing.isa_limit("generic"))
    assert.are.equal("generic", ac.config().isa)
    local two = testing.isa_limit("avx2")
    assert.are.equal(c.avx2 and "avx2" or "generic", two)
    assert.are.equal(c.isa, testing.isa_limit(nil))
    assert.has_error(function() testing.isa_limit("sse9") end)
  end)
end)

describe("OpenBLAS core advice", function()
  local advice = core.cpu.blas_advice
  it("names the variable when the core is older than the CPU", function()
    assert.matches("OpenBLAS runs its Prescott kernels on a CPU with AVX%-512; set OPENBLAS_CORETYPE=SkylakeX",
                   advice("Prescott", "avx512"))
    assert.matches("OPENBLAS_CORETYPE=SkylakeX", advice("Haswell", "avx512", true))
    assert.matches("with AVX2; set OPENBLAS_CORETYPE=Haswell", advice("Sandybridge", "avx2", false))
    assert.matches("OPENBLAS_CORETYPE=Zen", advice("Prescott", "avx2", true))
  end)
  it("is silent when the core is as new as the CPU", function()
    assert.is_nil(advice("SkylakeX", "avx512"))
    assert.is_nil(advice("cooperlake", "avx512"))
    assert.is_nil(advice("Zen", "avx2", true))
    assert.is_nil(advice("Haswell", "avx2"))
    assert.is_nil(advice("Prescott", "generic"))
  end)
  it("rejects an unknown level", function()
    assert.has_error(function() advice("Haswell", "avx3") end)
  end)
end)

describe("dispatch levels", function()
  after_each(function() testing.isa_limit(nil) end)
  -- a network with every kernel family: small dense, im2col, depthwise 3x3,
  -- pointwise, batch norm + ReLU, max pooling, Linear
  local function step(isa)
    testing.isa_limit(isa)
    ac.manual_seed(9)
    local net = nn.Sequential()
      :add(nn.Conv2d(1, 8, 3, 1, 0, 1, {bias = false})) -- a bias before a batch norm gets ~0 gradient
      :add(nn.BatchNorm2d(8, 1e-3, 0.01, {relu = true}))
      :add(nn.Conv2d(8, 16, 3, 1, 0))
      :add(nn.Conv2d(16, 16, 3, 1, 1, 16))
      :add(nn.Conv2d(16, 24, 1))
      :add(nn.MaxPool2d(3, 2, 1))
      :add(nn.GlobalAvgPool2d())
    local x = ac.randn(4, 1, 21, 19)
    local y = net:forward(x)
    local lin = nn.Linear(y:shape()[2], 7)
    local z = lin:forward(y)
    local gz = ac.randn(table.unpack(z:shape()))
    net:zeroGradParameters(); lin:zeroGradParameters()
    local gx = net:backward(x, lin:backward(y, gz))
    local out = {z:clone(), gx:clone(), (ac.matmul(y, y:t()))}
    local _, grads = net:parameters()
    for _, g in ipairs(grads) do out[#out + 1] = g:clone() end
    out[#out + 1] = lin.gradWeight:clone()
    return out
  end
  it("generic, AVX2 and AVX-512 give the same results", function()
    local c = ac.config()
    local ref = step("generic")
    local levels = {}
    if c.avx2 then levels[#levels + 1] = "avx2" end
    if c.avx512f then levels[#levels + 1] = "avx512" end
    if #levels == 0 then pending("the CPU has neither AVX2 nor AVX-512: only the portable path runs") return end
    for _, isa in ipairs(levels) do
      local got = step(isa)
      for i = 1, #ref do
        assert.is_true(rel(got[i], ref[i]) <= 1e-4, isa .. " result " .. i .. " rel " .. rel(got[i], ref[i]))
      end
    end
  end)
end)
