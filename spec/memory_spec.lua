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
