-- Finite-difference gradient checks of every layer, container and criterion
-- of adcorre.nn (input and parameter gradients), through spec/gradcheck.lua.
local ac = require("adcorre")
local nn = ac.nn
local gradcheck = require("gradcheck")

local function check(m, x, opts)
  local r = gradcheck.assert_module(m, x, opts)
  assert.is_true(r.checked > 0)
  return r
end

-- Random weights instead of zero biases / unit gammas, so that every
-- parameter matters.
local function randomize(m, s)
  local ps = m:parameters()
  for _, p in ipairs(ps) do p:copy(ac.randn(table.unpack(p:shape())) * (s or 0.5)) end
  return m
end

describe("gradcheck: Linear", function()
  before_each(function() ac.manual_seed(1) end)
  it("2-d input with bias", function() check(randomize(nn.Linear(5, 3)), ac.randn(4, 5)) end)
  it("1-d input", function() check(randomize(nn.Linear(5, 3)), ac.randn(5)) end)
  it("without bias, accGradParameters scale 0.5", function()
    check(randomize(nn.Linear(4, 6, { bias = false })), ac.randn(3, 4), { scale = 0.5 })
  end)
end)

describe("gradcheck: Conv2d", function()
  before_each(function() ac.manual_seed(2) end)
  local cases = {
    { "3x3 stride 1 pad 1", { 3, 4, 3, 1, 1 }, { 2, 3, 6, 5 } },
    { "3x3 stride 2 pad 0", { 2, 3, 3, 2, 0 }, { 2, 2, 7, 7 } },
    { "1x1 stride 1 (GEMM path)", { 4, 3, 1, 1, 0 }, { 2, 4, 3, 5 } },
    { "1x1 stride 2", { 3, 5, 1, 2, 0 }, { 2, 3, 5, 6 } },
    { "rectangular kernel, stride and padding", { 2, 3, { 3, 2 }, { 2, 1 }, { 1, 0 } }, { 2, 2, 7, 5 } },
    { "groups 2", { 4, 6, 3, 1, 1, 2 }, { 2, 4, 5, 5 } },
    { "depthwise", { 3, 3, 3, 1, 1, 3 }, { 2, 3, 6, 6 } },
    { "depthwise multiplier 2 stride 2", { 2, 4, 3, 2, 1, 2 }, { 2, 2, 7, 6 } },
    { "same padding stride 2", { 2, 3, 3, 2, "same" }, { 2, 2, 6, 7 } },
    { "same padding depthwise", { 3, 3, 5, 1, "same", 3 }, { 1, 3, 6, 6 } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local m = randomize(nn.Conv2d(table.unpack(c[2], 1, 7)))
      check(m, ac.randn(table.unpack(c[3])), { eps = 1e-2 })
    end)
  end
  it("without bias", function()
    check(randomize(nn.Conv2d(2, 3, 3, 1, 1, 1, { bias = false })), ac.randn(2, 2, 4, 4))
  end)
end)

describe("gradcheck: SeparableConv2d", function()
  before_each(function() ac.manual_seed(3) end)
  it("3x3 pad 1", function() check(randomize(nn.SeparableConv2d(3, 4, 3, 1, 1)), ac.randn(2, 3, 5, 5)) end)
  it("stride 2 same padding, multiplier 2, bias", function()
    check(randomize(nn.SeparableConv2d(2, 3, 3, 2, "same", { multiplier = 2, bias = true })), ac.randn(2, 2, 6, 5))
  end)
end)

describe("gradcheck: BatchNorm", function()
  before_each(function() ac.manual_seed(4) end)
  it("BatchNorm2d training mode", function()
    check(randomize(nn.BatchNorm2d(3)), ac.randn(4, 3, 3, 2) * 2 + 1, { eps = 1e-2, rtol = 2e-2 })
  end)
  it("BatchNorm2d evaluation mode", function()
    local m = randomize(nn.BatchNorm2d(3, 1e-3, 0.01))
    m.running_mean:copy(ac.randn(3))
    m.running_var:copy(ac.rand(3) + 0.5)
    m:evaluate()
    check(m, ac.randn(2, 3, 3, 3))
  end)
  it("BatchNorm1d training mode", function()
    check(randomize(nn.BatchNorm1d(5)), ac.randn(6, 5), { rtol = 2e-2 })
  end)
  it("BatchNorm1d without affine", function()
    check(nn.BatchNorm1d(4, 1e-3, 0.1, { affine = false }), ac.randn(5, 4), { rtol = 2e-2 })
  end)
end)

-- BatchNorm2d(n, eps, momentum, {relu = true}): the ReLU mask is recomputed
-- from the input in the backward. Every case on the AVX-512 path (when the
-- CPU has it) and on the portable one; rows of 7, 35 and 99 values cover the
-- vector bodies and the masked tails.
describe("gradcheck: BatchNorm2d fused with ReLU", function()
  local core = require("adcorre.core")
  before_each(function() ac.manual_seed(4) end)
  after_each(function() require("adcorre.testing").isa_limit(nil) end)
  local function relu_bn(c, opts)
    opts = opts or {}
    opts.relu = true
    local m = nn.BatchNorm2d(c, 1e-3, 0.01, opts)
    if m.affine then
      m.weight:copy(ac.rand(c) + 0.5)
      m.bias:copy(ac.randn(c) * 0.5)
    end
    return m
  end
  for _, isa in ipairs({ "native", "avx2", "generic" }) do
    it("training mode (" .. isa .. ")", function()
      require("adcorre.testing").isa_limit(isa ~= "native" and isa or nil)
      -- a small step: a step of gamma or beta moves the kink of every element
      -- of the channel, and a few of them sit within 1e-2 of it
      check(relu_bn(3), ac.randn(4, 3, 5, 7) * 2 + 1, { eps = 2e-3, rtol = 2e-2 })
      check(relu_bn(2), ac.randn(2, 2, 9, 11), { eps = 2e-3, rtol = 2e-2 })
    end)
    it("evaluation mode (" .. isa .. ")", function()
      require("adcorre.testing").isa_limit(isa ~= "native" and isa or nil)
      local m = relu_bn(3)
      m.running_mean:copy(ac.randn(3))
      m.running_var:copy(ac.rand(3) + 0.5)
      m:evaluate()
      check(m, ac.randn(2, 3, 1, 7))
    end)
    it("without affine, and a channel with gamma = 0 (" .. isa .. ")", function()
      require("adcorre.testing").isa_limit(isa ~= "native" and isa or nil)
      check(relu_bn(3, { affine = false }), ac.randn(3, 3, 3, 3), { eps = 1e-2, rtol = 2e-2 })
      local m = relu_bn(3)
      m.weight[2] = 0
      m.bias[2] = 0.3 -- a constant positive output: the input gradient is 0, beta's is not
      m.weight[3] = 0
      m.bias[3] = -0.3 -- constant 0: no gradient at all
      check(m, ac.randn(3, 3, 4, 3), { eps = 1e-2, rtol = 2e-2 })
    end)
  end
  it("in a Sequential between convolutions", function()
    local m = nn.Sequential():add(nn.Conv2d(2, 3, 3, 1, 1, 1, { bias = false })):add(relu_bn(3))
      :add(nn.Conv2d(3, 2, 1))
    randomize(m.modules[1])
    randomize(m.modules[3])
    check(m, ac.randn(3, 2, 5, 4), { eps = 1e-2, rtol = 2e-2 })
  end)
end)

describe("gradcheck: pooling", function()
  it("MaxPool2d 2x2 stride 2", function()
    check(nn.MaxPool2d(2, 2), gradcheck.distinct({ 2, 2, 4, 6 }, 0.05), { eps = 1e-2 })
  end)
  it("MaxPool2d 3x3 stride 2 same padding (overlapping windows)", function()
    check(nn.MaxPool2d(3, 2, "same"), gradcheck.distinct({ 2, 2, 7, 6 }, 0.05), { eps = 1e-2 })
  end)
  it("MaxPool2d 3x3 stride 1 pad 1", function()
    check(nn.MaxPool2d(3, 1, 1), gradcheck.distinct({ 1, 2, 5, 5 }, 0.05), { eps = 1e-2 })
  end)
  it("AvgPool2d with padding counted", function()
    check(nn.AvgPool2d(3, 2, 1), ac.randn(2, 2, 5, 6))
  end)
  it("AvgPool2d same padding (excluded)", function()
    check(nn.AvgPool2d(3, 2, "same"), ac.randn(2, 2, 6, 7))
  end)
  it("GlobalAvgPool2d", function() check(nn.GlobalAvgPool2d(), ac.randn(3, 4, 3, 5)) end)
end)

describe("gradcheck: activations", function()
  it("ReLU", function() check(nn.ReLU(), gradcheck.distinct({ 3, 4, 5 }, 0.05)) end)
  it("Dropout in training mode (fixed mask)", function()
    local m = nn.Dropout(0.4)
    local x = ac.randn(5, 6)
    local r = gradcheck.assert {
      forward = function() ac.manual_seed(9); return m:forward(x) end,
      backward = function(g) return { m:backward(x, g) } end,
      wrt = { x },
    }
    assert.is_true(r.checked > 0)
  end)
  it("Dropout in evaluation mode", function() check(nn.Dropout(0.5):evaluate(), ac.randn(3, 4)) end)
  it("L2Normalize", function() check(nn.L2Normalize(), ac.randn(4, 7)) end)
  it("L2Normalize 1-d", function() check(nn.L2Normalize(), ac.randn(6)) end)
  it("SoftMax", function() check(nn.SoftMax(), ac.randn(3, 5)) end)
  it("LogSoftMax", function() check(nn.LogSoftMax(), ac.randn(3, 5)) end)
end)

describe("gradcheck: containers", function()
  before_each(function() ac.manual_seed(5) end)
  it("Sequential", function()
    local m = nn.Sequential():add(nn.Conv2d(2, 3, 3, 1, 1)):add(nn.BatchNorm2d(3))
      :add(nn.GlobalAvgPool2d()):add(nn.Linear(3, 4)):add(nn.L2Normalize())
    randomize(m)
    check(m, ac.randn(3, 2, 4, 4), { rtol = 2e-2 })
  end)
  it("ConcatTable + JoinTable", function()
    local heads = nn.ConcatTable():add(nn.Linear(4, 3)):add(nn.Linear(4, 2)):add(nn.Identity())
    local m = nn.Sequential():add(heads):add(nn.JoinTable(2))
    randomize(m)
    check(m, ac.randn(3, 4))
  end)
  it("ConcatTable output table", function()
    local m = randomize(nn.ConcatTable():add(nn.Linear(4, 3)):add(nn.SoftMax()))
    check(m, ac.randn(2, 4))
  end)
  it("Add (residual block)", function()
    local branch = nn.ConcatTable()
      :add(nn.Sequential():add(nn.Conv2d(2, 2, 3, 1, 1)):add(nn.ReLU()):add(nn.Conv2d(2, 2, 3, 1, 1)))
      :add(nn.Identity())
    local m = randomize(nn.Sequential():add(branch):add(nn.Add()))
    check(m, ac.randn(2, 2, 4, 4), { rtol = 2e-2 })
  end)
  it("Add of a table input", function()
    check(nn.Add(), { ac.randn(2, 3), ac.randn(2, 3), ac.randn(2, 3) })
  end)
  it("Concat along channels", function()
    local m = randomize(nn.Concat(2):add(nn.Conv2d(2, 3, 1)):add(nn.Conv2d(2, 1, 3, 1, 1)))
    check(m, ac.randn(2, 2, 3, 3))
  end)
  it("JoinTable of tables along dim 1 and -1", function()
    check(nn.JoinTable(1), { ac.randn(2, 3), ac.randn(4, 3) })
    check(nn.JoinTable(-1), { ac.randn(2, 3), ac.randn(2, 1) })
  end)
end)

describe("gradcheck: CrossEntropyCriterion", function()
  it("mean over the batch", function()
    local c = nn.CrossEntropyCriterion()
    local x = ac.randn(5, 4)
    local t = ac.tensor({ 1, 4, 2, 2, 3 }, "int64")
    gradcheck.assert {
      forward = function() return c:forward(x, t) end,
      backward = function() return { c:backward(x, t) } end,
      wrt = { x }, eps = 1e-3,
    }
  end)
  it("class weights, sum, Lua array targets", function()
    local c = nn.CrossEntropyCriterion(ac.tensor({ 1, 2, 0.5 }), { sizeAverage = false })
    local x = ac.randn(4, 3)
    local t = { 3, 1, 2, 3 }
    gradcheck.assert {
      forward = function() return c:forward(x, t) end,
      backward = function() return { c:backward(x, t) } end,
      wrt = { x }, eps = 1e-3,
    }
  end)
end)

describe("gradcheck helper", function()
  -- fixed inputs: a coordinate near 0 of x^2 has a relative curvature the
  -- helper takes for a kink, so random ones made these specs order-dependent
  it("detects a wrong gradient", function()
    local x = ac.tensor({ 0.8, -1.3, 0.45 })
    local ok, r = gradcheck.check {
      forward = function() return (x * x):sum() end,
      backward = function() return { x * 3 } end,
      wrt = { x },
    }
    assert.is_false(ok)
    assert.is_true(#r.failures > 0)
  end)
  it("accepts a right gradient of a scalar function", function()
    local x = ac.tensor({ 0.7, -1.3, 0.4, 2.1 })
    local ok = gradcheck.check {
      forward = function() return (x * x):sum() end,
      backward = function() return { x * 2 } end,
      wrt = { x },
    }
    assert.is_true(ok)
  end)
end)
