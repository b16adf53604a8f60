-- Memory savers of training: ReLU(true) after a batch norm, and the input
-- gradients recycled through the shared pool by one-sweep backward passes.
-- Each must give exactly the numbers of the plain computation.
local ac = require("adcorre")
local nn = ac.nn
local knobs = require("memory_knobs")

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

describe("released outputs and recycled gradients", function()
  -- the small inputs here would otherwise keep every output (Sequential.releaseMin)
  -- and every batch-norm output (Sequential.recomputeMin)
  local saved_min
  setup(function() saved_min = knobs.zero() end)
  teardown(function() knobs.restore(saved_min) end)

  it("a small input keeps every output; a large one releases what no backward reads", function()
    -- the Dropout's output is read only by the ReLU's forward (its backward reads its own output)
    local s = nn.Sequential():add(nn.Dropout(0.25)):add(nn.ReLU()):add(nn.Linear(8, 2))
    s:training()
    nn.Sequential.releaseMin = 1000
    finally(function() nn.Sequential.releaseMin = 0 end)
    s:forward(ac.randn(4, 8))                        -- 32 elements: kept
    assert.is_not_nil(rawget(s.modules[1], "output"))
    s:forward(ac.randn(200, 8))                      -- 1600 elements: released
    assert.is_nil(rawget(s.modules[1], "output"))
    assert.is_not_nil(rawget(s.modules[2], "output"))
    nn.Sequential.releaseMin = 0
    s:forward(ac.randn(4, 8))
    assert.is_nil(rawget(s.modules[1], "output"))
  end)

  it("a batch-norm output is released for recomputation only from recomputeMin elements on", function()
    local function run(min)
      nn.Sequential.recomputeMin = min
      local s = nn.Sequential():add(nn.Conv2d(2, 3, 3, 1, 1)):add(nn.BatchNorm2d(3)):add(nn.Conv2d(3, 2, 3, 1, 1))
      s:training()
      s:forward(ac.randn(2, 2, 6, 6))                 -- the norm's output: 216 elements
      return rawget(s.modules[2], "output")
    end
    finally(function() nn.Sequential.recomputeMin = 0 end)
    assert.is_nil(run(216))
    assert.is_not_nil(run(217))
  end)

  -- a residual network: stem, a down-sampling block (max-pool + 1x1
  -- shortcut) and an identity block, as in Xception
  local function resnet(seed, fused)
    ac.manual_seed(seed or 21)
    -- batch norm + ReLU: two modules, or one BatchNorm2d{relu = true}
    local function bn_relu(seq, n)
      if fused then return seq:add(nn.BatchNorm2d(n, 1e-3, 0.01, {relu = true})) end
      return seq:add(nn.BatchNorm2d(n, 1e-3, 0.01)):add(nn.ReLU(true))
    end
    local function res(main, shortcut)
      local split = nn.ConcatTable():add(main):add(shortcut or nn.Identity())
      return nn.Sequential():add(split):add(nn.Add())
    end
    local s = nn.Sequential()
    bn_relu(s:add(nn.Conv2d(3, 8, 3, 1, 1, 1, {bias = false})), 8)
    local down = bn_relu(nn.Sequential():add(nn.SeparableConv2d(8, 16, 3, 1, "same")), 16)
      :add(nn.SeparableConv2d(16, 16, 3, 1, "same")):add(nn.BatchNorm2d(16, 1e-3, 0.01))
      :add(nn.MaxPool2d(3, 2, "same"))
    local short = nn.Sequential():add(nn.Conv2d(8, 16, 1, 2, "same", 1, {bias = false})):add(nn.BatchNorm2d(16))
    s:add(res(down, short))
    local mid = nn.Sequential()
    for _ = 1, 2 do
      mid:add(nn.ReLU()):add(nn.SeparableConv2d(16, 16, 3, 1, "same")):add(nn.BatchNorm2d(16, 1e-3, 0.01))
    end
    s:add(res(mid))
    s:add(nn.ReLU()):add(nn.GlobalAvgPool2d())
    return s
  end

  local function grads_of(s)
    local _, gs = s:parameters()
    local out = {}
    for i, g in ipairs(gs) do out[i] = g:clone() end
    return out
  end

  local function same_list(a, b, what)
    assert.are.equal(#a, #b)
    for i = 1, #a do assert.are.equal(0, maxdiff(a[i], b[i]), what .. " " .. i) end
  end

  for _, fused in ipairs({false, true}) do
  it("give exactly the numbers of a network that keeps everything, step after step" ..
     (fused and " (batch norm + ReLU fused, outputs recomputed)" or ""), function()
    local a, b = resnet(nil, fused), resnet(nil, fused)
    b:keepOutputs()
    local ua, ub = resnet(nil, fused), resnet(nil, fused) -- two-phase protocol on the releasing network
    ac.manual_seed(22)
    for step = 1, 3 do
      local x, gy = ac.randn(2, 3, 10, 10), ac.randn(2, 16)
      for _, s in ipairs({a, b, ua}) do s:zeroGradParameters() end
      local ya, yb, yu = a:forward(x):clone(), b:forward(x):clone(), ua:forward(x):clone()
      assert.are.equal(0, maxdiff(ya, yb))
      assert.are.equal(0, maxdiff(ya, yu))
      local ga, gb = a:backward(x, gy):clone(), b:backward(x, gy):clone()
      local gu = ua:updateGradInput(x, gy):clone()
      ua:accGradParameters(x, gy)
      assert.are.equal(0, maxdiff(ga, gb), "step " .. step)
      assert.are.equal(0, maxdiff(ga, gu), "step " .. step)
      same_list(grads_of(a), grads_of(b), "step " .. step .. " grad")
      same_list(grads_of(a), grads_of(ua), "step " .. step .. " grad (two-phase)")
      local ra, rb = a:buffers(), b:buffers()
      for k, t in pairs(ra) do assert.are.equal(0, maxdiff(t, rb[k]), k) end
    end
    local _ = ub
  end)
  end

  it("release what no backward reads after forward; the last output stays", function()
    local s = resnet()
    s:training()
    local y = s:forward(ac.randn(2, 3, 10, 10))
    assert.is_true(rawequal(y, s.output))
    assert.is_not_nil(s.modules[#s.modules].output)
    local down = s.modules[4].modules[1].modules[1]
    assert.is_nil(down.modules[5].output)             -- batch norm read by the max-pool
    assert.is_not_nil(down.modules[4].output)         -- its input: the norm's backward reads it
    assert.is_not_nil(down.modules[3].output)         -- ReLU(true): its backward reads its output
    local mid = s.modules[5].modules[1].modules[1]
    -- the next block's first ReLU gives its output again from its input
    -- before the backwards that read it: its output goes, the Add's stays
    assert.is_nil(mid.modules[1].output)
    assert.is_not_nil(s.modules[4].modules[2].output)
    assert.is_nil(mid.modules[3].output)              -- batch norm read by a ReLU
    assert.is_not_nil(mid.modules[4].output)          -- that ReLU's output
    assert.is_nil(s.modules[5].modules[2].output)     -- an Add's output read by a ReLU
    -- with keepOutputs every module keeps its output, as in Torch
    s:keepOutputs()
    s:forward(ac.randn(2, 3, 10, 10))
    s:apply(function(m) assert.is_not_nil(m.output, tostring(m)) end)
    s:keepOutputs(false)
  end)

  it("release every inner output and input gradient after a one-sweep backward", function()
    local s = resnet()
    local x = ac.randn(2, 3, 10, 10)
    s:forward(x)
    local g = s:backward(x, ac.randn(2, 16))
    assert.is_true(rawequal(g, s.gradInput))
    for i = 1, #s.modules - 1 do
      s.modules[i]:apply(function(m)
        assert.is_nil(rawget(m, "output"), tostring(m))
        -- input gradients left: the returned one (module 1's) and the
        -- Identity's (its gradOutput, not a buffer of its own)
        local t = rawget(m, "gradInput")
        if ac.is_tensor(t) and m.__typename ~= "nn.Identity" then
          assert.is_true(rawequal(t, g), tostring(m))
        end
      end)
    end
    assert.is_not_nil(s.output)
    -- the ConcatTable's branches handed their gradients back
    local split = s.modules[4].modules[1]
    assert.is_nil(rawget(split.modules[1], "gradInput"))
    assert.is_nil(rawget(split.modules[2], "gradInput"))
  end)

  it("a second backward after one forward re-runs the forward and gives the same gradients", function()
    local a, b = resnet(), resnet()
    b:keepOutputs()
    ac.manual_seed(23)
    local x, gy = ac.randn(2, 3, 10, 10), ac.randn(2, 16)
    for _, s in ipairs({a, b}) do
      s:zeroGradParameters()
      s:forward(x)
    end
    local ga1 = a:backward(x, gy):clone()
    local ga2 = a:backward(x, gy):clone()
    b:backward(x, gy)
    local gb = b:backward(x, gy)
    assert.are.equal(0, maxdiff(ga1, ga2))
    assert.are.equal(0, maxdiff(ga2, gb))
    same_list(grads_of(a), grads_of(b), "grad (accumulated twice)")
    -- running statistics were updated by the one forward only
    local ra, rb = a:buffers(), b:buffers()
    for k, t in pairs(ra) do assert.are.equal(0, maxdiff(t, rb[k]), k) end
    -- and the inner outputs can be read again after the recomputation
    assert.is_not_nil(a.output)
  end)

  it("keep an output that a pass-through child hands to a layer whose backward reads it", function()
    ac.manual_seed(24)
    -- ReLU -> Identity -> MaxPool: the ReLU's backward reads its output, which
    -- lives on in the Identity's; the max-pool does not read its input
    local s = nn.Sequential():add(nn.Conv2d(2, 3, 3, 1, 1)):add(nn.ReLU()):add(nn.Identity())
      :add(nn.MaxPool2d(2)):add(nn.Conv2d(3, 2, 1))
    local k = s:clone()
    k:keepOutputs()
    local x, gy = ac.randn(2, 2, 6, 6), ac.randn(2, 2, 3, 3)
    s:forward(x)
    k:forward(x)
    assert.is_nil(s.modules[1].output)     -- read by the ReLU, whose backward reads its own output
    assert.is_not_nil(s.modules[2].output)
    assert.is_nil(s.modules[3].output)     -- the Identity's field, read by the max-pool
    assert.is_not_nil(s.modules[4].output) -- read by a convolution
    -- a buffer taken by someone else in between must not change the ReLU's output
    local other = nn.Sequential():add(nn.Conv2d(2, 3, 3, 1, 1)):add(nn.ReLU()):add(nn.MaxPool2d(2))
    other:forward(ac.randn(2, 2, 6, 6))
    assert.are.equal(0, maxdiff(s:backward(x, gy), k:backward(x, gy)))
    same_list(grads_of(s), grads_of(k), "grad")
  end)
end)
