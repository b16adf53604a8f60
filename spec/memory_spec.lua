-- Memory savers of training: ReLU(true) after a batch norm, and the input
-- gradients recycled through the shared pool by one-sweep backward passes.
-- Each must give exactly the numbers of the plain computation.
local ac = require("adcorre")
local nn = ac.nn

local function maxdiff(a, b)
  local d = (a - b):abs():max()
  return type(d) == "number" and d or d:item()
end

local function net(inplace)
  ac.manual_seed(5)
  local s = nn.Sequential()
  s:add(nn.Conv2d(3, 8, 3, 1, 1, 1, {bias = false})):add(nn.BatchNorm2d(8, 1e-3, 0.01)):add(nn.ReLU(inplace))
  s:add(nn.SeparableConv2d(8, 8, 3, 1, "same")):add(nn.BatchNorm2d(8, 1e-3, 0.01)):add(nn.ReLU(inplace))
  s:add(nn.Conv2d(8, 4, 1, 1, 0))
  return s
end

describe("memory savers", function()
  it("ReLU(true) gives the results of ReLU() and overwrites its input", function()
    ac.manual_seed(9)
    local x, gy = ac.randn(2, 3, 9, 9), ac.randn(2, 4, 9, 9)
    local a, b = net(false), net(true)
    local ya, yb = a:forward(x), b:forward(x)
    assert.are.equal(0, maxdiff(ya, yb))
    assert.is_true(rawequal(b.modules[3].output, b.modules[2].output))
    local ga, gb = a:backward(x, gy), b:backward(x, gy)
    assert.are.equal(0, maxdiff(ga, gb))
    local _, da = a:parameters()
    local _, db = b:parameters()
    for i = 1, #da do assert.are.equal(0, maxdiff(da[i], db[i])) end
    assert.are.equal("nn.ReLU(inplace)", tostring(nn.ReLU(true)))
    assert.has_error(function() nn.ReLU(1) end, "ReLU: inplace must be a boolean, got number")
  end)

  it("one-sweep backward with recycled gradients equals the two-phase protocol, step after step", function()
    ac.manual_seed(10)
    local x = ac.randn(2, 3, 9, 9)
    local a, b = net(true), net(true)
    for step = 1, 3 do
      local gy = ac.randn(2, 4, 9, 9)
      a:zeroGradParameters(); b:zeroGradParameters()
      a:forward(x); b:forward(x)
      local ga = a:backward(x, gy):clone()
      local gb = b:updateGradInput(x, gy):clone()
      b:accGradParameters(x, gy)
      assert.are.equal(0, maxdiff(ga, gb), "step " .. step)
      local _, da = a:parameters()
      local _, db = b:parameters()
      for i = 1, #da do assert.are.equal(0, maxdiff(da[i], db[i]), "step " .. step) end
      -- the inner modules' input gradients went back to the pool
      assert.is_nil(a.modules[4].gradInput)
      assert.is_nil(a.modules[4].pointwise.gradInput)
      assert.is_not_nil(b.modules[4].gradInput)
    end
  end)
end)

describe("evaluation-mode convolution + batch norm folding", function()
  local function rel(p, q)
    local d, s = (p - q):abs():max(), q:abs():max()
    d = type(d) == "number" and d or d:item()
    s = type(s) == "number" and s or s:item()
    return d / s
  end
  local function trained_stats(s)
    s:apply(function(m)
      if m.running_var then
        m.running_var:copy(ac.rand(m.nfeatures) + 0.5)
        m.running_mean:copy(ac.randn(m.nfeatures) * 0.3)
        m.weight:copy(ac.rand(m.nfeatures) + 0.5)
        m.bias:copy(ac.randn(m.nfeatures) * 0.3)
      end
    end)
    return s
  end
  local function plain(s, on)
    s:apply(function(m) if m.__typename == "nn.Sequential" then m.train = on end end)
  end

  it("gives the unfused outputs, and a backward after it the unfused gradients", function()
    local s = trained_stats(net(true))
    s:evaluate()
    ac.manual_seed(12)
    local x, gy = ac.randn(4, 3, 9, 9), ac.randn(4, 4, 9, 9)
    local yf = s:forward(x):clone()
    assert.is_true(s._fused == true)
    s:zeroGradParameters()
    local gf = s:backward(x, gy):clone()
    local _, df = s:parameters()
    local dfc = {}
    for i, d in ipairs(df) do dfc[i] = d:clone() end
    plain(s, true) -- the Sequential in "training" keeps the batch norms in evaluation mode, unfused
    local yp = s:forward(x):clone()
    assert.is_nil(s._fused)
    s:zeroGradParameters()
    local gp = s:backward(x, gy):clone()
    local _, dp = s:parameters()
    assert.is_true(rel(yf, yp) < 1e-5, "output rel " .. rel(yf, yp))
    assert.are.equal(0, maxdiff(gf, gp))
    for i = 1, #dp do assert.are.equal(0, maxdiff(dfc[i], dp[i])) end
  end)

  it("keeps the plain path when folding would not pay (one image, wide input)", function()
    local s = trained_stats(nn.Sequential():add(nn.Conv2d(64, 8, 3, 1, 1)):add(nn.BatchNorm2d(8)))
    s:evaluate()
    s:forward(ac.randn(1, 64, 4, 4)) -- 16 positions < 64 * 9 weights per output channel
    assert.is_nil(s._fused)
    s:forward(ac.randn(8, 64, 16, 16))
    assert.is_true(s._fused == true)
  end)
end)
