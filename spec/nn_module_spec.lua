-- The Module contract of adcorre.nn: getParameters views, accumulation of
-- gradients, modes, clone / clearState / apply, printing, names of
-- parameters and buffers, buffer reuse, dropout and batch-norm statistics
-- (the fast kernels' agreement is spec/nn_fastpath_spec.lua).
local ac = require("adcorre")
local nn = ac.nn

local function maxdiff(a, b) return ((a - b):abs():max()) end

local function small_net()
  return nn.Sequential()
    :add(nn.Conv2d(1, 4, 3, 1, 1)):add(nn.BatchNorm2d(4, 1e-3, 0.01)):add(nn.ReLU())
    :add(nn.MaxPool2d(3, 2, "same"))
    :add(nn.SeparableConv2d(4, 6, 3, 1, 1)):add(nn.GlobalAvgPool2d())
    :add(nn.Linear(6, 3))
end

describe("nn.Module contract", function()
  before_each(function() ac.manual_seed(11) end)

  it("getParameters returns flat views that follow the module", function()
    local net = small_net()
    local ps = net:parameters()
    local n = 0
    for _, p in ipairs(ps) do n = n + p:numel() end
    local w0 = net.modules[1].weight:clone()
    local flat, gflat = net:getParameters()
    assert.are.equal(n, flat:numel())
    assert.are.equal(n, gflat:numel())
    assert.are.equal(n, net:nparams())
    assert.are.equal(0, maxdiff(net.modules[1].weight, w0))
    -- writing the flat buffer changes the module's weight
    flat:narrow(1, 1, 1):fill(42)
    assert.are.equal(42, net.modules[1].weight:view(-1)[1])
    -- gradients land in the flat gradient buffer
    local x = ac.randn(2, 1, 8, 8)
    net:zeroGradParameters()
    net:forward(x)
    net:backward(x, ac.randn(2, 3))
    local s = 0
    for _, g in ipairs(select(2, net:parameters())) do s = s + g:abs():sum() end
    assert.is_true(math.abs(gflat:abs():sum() - s) < 1e-3 * s)
    -- a second call keeps the same buffers and values
    local flat2, gflat2 = net:getParameters()
    assert.is_true(flat2:is_same_storage(flat))
    assert.is_true(gflat2:is_same_storage(gflat))
    assert.are.equal(0, maxdiff(flat2, flat))
    net:zeroGradParameters()
    assert.are.equal(0, gflat:abs():sum())
  end)

  it("backward accumulates parameter gradients; scale multiplies them", function()
    local m = nn.Linear(3, 2)
    local x, g = ac.randn(4, 3), ac.randn(4, 2)
    m:zeroGradParameters()
    m:forward(x)
    m:backward(x, g)
    local g1 = m.gradWeight:clone()
    m:backward(x, g)
    assert.is_true(maxdiff(m.gradWeight, g1 * 2) < 1e-5)
    m:zeroGradParameters()
    m:backward(x, g, 0.25)
    assert.is_true(maxdiff(m.gradWeight, g1 * 0.25) < 1e-6)
  end)

  it("training / evaluate reach every module", function()
    local net = small_net()
    net:evaluate()
    net:apply(function(m) assert.is_false(m.train) end)
    net:training()
    net:apply(function(m) assert.is_true(m.train) end)
  end)

  it("clone is a deep copy", function()
    local net = small_net()
    local x = ac.randn(2, 1, 8, 8)
    net:evaluate()
    local y = net:forward(x):clone()
    local c = net:clone()
    assert.are.equal(0, maxdiff(c:forward(x), y))
    c.modules[1].weight:fill(0)
    assert.are.equal(0, maxdiff(net:forward(x), y))
    assert.is_true(maxdiff(c:forward(x), y) > 0)
  end)

  it("clearState drops buffers and the module still works", function()
    local net = small_net()
    local x = ac.randn(2, 1, 8, 8)
    net:evaluate()
    local y = net:forward(x):clone()
    net:clearState()
    net:apply(function(m) assert.is_nil(m.gradInput) end)
    assert.are.equal(0, maxdiff(net:forward(x), y))
  end)

  it("reuses its output buffers between calls of the same shape", function()
    local net = small_net()
    local x = ac.randn(2, 1, 8, 8)
    local y1 = net:forward(x)
    local c1 = net.modules[1].output
    local y2 = net:forward(x)
    assert.is_true(rawequal(y1, y2))
    assert.is_true(rawequal(c1, net.modules[1].output))
    local g1 = net:backward(x, ac.randn(2, 3))
    local g2 = net:backward(x, ac.randn(2, 3))
    assert.is_true(rawequal(g1, g2))
  end)

  it("prints the architecture tree", function()
    local s = tostring(small_net())
    assert.truthy(s:find("nn.Sequential {", 1, true))
    assert.truthy(s:find("[input -> (1) -> (2) -> (3) -> (4) -> (5) -> (6) -> (7) -> output]", 1, true))
    assert.truthy(s:find("(1): nn.Conv2d(1 -> 4, 3x3, pad 1)", 1, true))
    assert.truthy(s:find("(2): nn.BatchNorm2d(4, eps 0.001, momentum 0.01)", 1, true))
    assert.truthy(s:find("(4): nn.MaxPool2d(3x3, stride 2,2, pad same)", 1, true))
    assert.truthy(s:find("(5): nn.SeparableConv2d(4 -> 6, 3x3, pad 1,1)", 1, true))
    assert.truthy(s:find("(7): nn.Linear(6 -> 3)", 1, true))
    local ct = tostring(nn.ConcatTable():add(nn.Linear(2, 2)):add(nn.Sequential():add(nn.ReLU())))
    assert.truthy(ct:find("|-> (1): nn.Linear(2 -> 2)", 1, true))
    assert.truthy(ct:find("`-> (2): nn.Sequential {", 1, true))
  end)

  it("names parameters and buffers by position and child name", function()
    local net = small_net()
    local names = {}
    for _, e in ipairs(net:namedParameters()) do names[#names + 1] = e.name end
    assert.are.same({ "1.weight", "1.bias", "2.weight", "2.bias", "5.depthwise.weight",
      "5.pointwise.weight", "7.weight", "7.bias" }, names)
    local b = net:buffers()
    assert.truthy(b["2.running_mean"])
    assert.truthy(b["2.running_var"])
    local sd = net:stateDict()
    assert.truthy(sd["5.depthwise.weight"])
    assert.truthy(sd["2.running_var"])
    net.modules[7].name = "classifier"
    assert.truthy(net:stateDict()["classifier.weight"])
  end)

  it("calling a module runs forward", function()
    local m = nn.Linear(3, 2)
    local x = ac.randn(2, 3)
    assert.are.equal(0, maxdiff(m(x), m:forward(x)))
  end)

  it("keeps constructor arguments", function()
    assert.are.same({ 3, 8, { 3, 3 }, { 2, 2 }, "same", 1, { bias = false } },
      nn.Conv2d(3, 8, 3, 2, "same", 1, { bias = false })._args)
    assert.are.same({ 4, 1e-3, 0.01, { affine = true } }, nn.BatchNorm2d(4, 1e-3, 0.01)._args)
    assert.are.same({ 0.5 }, nn.Dropout(0.5)._args)
  end)

  it("every layer can be rebuilt from its class and _args", function()
    local layers = {
      nn.Linear(4, 3, { bias = false }), nn.Conv2d(2, 4, { 3, 1 }, { 2, 1 }, "same", 2, { bias = false }),
      nn.SeparableConv2d(3, 5, 3, 2, "same", { multiplier = 2, bias = true }),
      nn.BatchNorm2d(3, 1e-3, 0.01), nn.BatchNorm1d(4, 1e-5, 0.1, { affine = false }),
      nn.MaxPool2d(3, 2, "same"), nn.AvgPool2d(2, 1, 1, { count_include_pad = false }),
      nn.Dropout(0.25), nn.L2Normalize(1e-8), nn.JoinTable(-1), nn.ReLU(), nn.GlobalAvgPool2d(),
      nn.CrossEntropyCriterion(ac.tensor({ 1, 2 }), { sizeAverage = false }), nn.Concat(2),
    }
    for _, m in ipairs(layers) do
      local r = getmetatable(m)(table.unpack(m._args, 1, 8))
      assert.are.equal(tostring(m), tostring(r))
      assert.are.same(m._args, r._args)
      local a, b = m:parameters(), r:parameters()
      assert.are.equal(#a, #b)
      for i = 1, #a do assert.are.same(a[i]:shape(), b[i]:shape()) end
    end
  end)

  it("Conv2d:noBias and bias-less construction", function()
    local a = nn.Conv2d(2, 3, 3):noBias()
    assert.is_nil(a.bias)
    assert.are.equal(54, a:nparams())
    assert.are.equal(54, nn.Conv2d(2, 3, 3, 1, 0, { bias = false }):nparams())
  end)

  it("Keras-style initialisation: Glorot-uniform bounds, zero bias; He as an option", function()
    local c = nn.Conv2d(16, 32, 3)
    local lim = math.sqrt(6 / (16 * 9 + 32 * 9))
    assert.is_true(c.weight:abs():max() <= lim)
    assert.is_true(c.weight:abs():max() > 0.9 * lim)
    assert.are.equal(0, c.bias:abs():sum())
    local d = nn.Conv2d(8, 8, 3, 1, 1, 8) -- depthwise: Keras fans (kh*kw*nin, kh*kw*mult)
    local dlim = math.sqrt(6 / (9 * 8 + 9 * 1))
    assert.is_true(d.weight:abs():max() <= dlim and d.weight:abs():max() > 0.8 * dlim)
    local h = nn.Conv2d(16, 32, 3):reset("he")
    local hlim = math.sqrt(6 / (16 * 9))
    assert.is_true(h.weight:abs():max() <= hlim and h.weight:abs():max() > 0.9 * hlim)
    local l = nn.Linear(100, 10)
    assert.is_true(l.weight:abs():max() <= math.sqrt(6 / 110))
    ac.manual_seed(3)
    local a1 = nn.Linear(5, 4).weight:clone()
    ac.manual_seed(3)
    assert.are.equal(0, maxdiff(nn.Linear(5, 4).weight, a1))
  end)
end)

describe("nn layer behaviour", function()
  before_each(function() ac.manual_seed(12) end)

  it("Dropout zeroes about p of the elements and rescales the rest", function()
    local d = nn.Dropout(0.3)
    local x = ac.ones(200, 100)
    local y = d:forward(x)
    local zeros = y:eq(0):sum()
    assert.is_true(math.abs(zeros / 20000 - 0.3) < 0.02)
    local kept = y:view(-1)[1] ~= 0 and y:view(-1)[1] or y:max()
    assert.is_true(math.abs(kept - 1 / 0.7) < 1e-6)
    -- same seed, same mask
    ac.manual_seed(5)
    local a = d:forward(x):clone()
    ac.manual_seed(5)
    assert.are.equal(0, maxdiff(d:forward(x), a))
    d:evaluate()
    assert.are.equal(0, maxdiff(d:forward(x), x))
  end)

  it("Dropout never writes into its input or the next layer's gradient after an identity pass", function()
    local d = nn.Dropout(0.5)
    local x, g = ac.ones(4, 5), ac.ones(4, 5)
    d:evaluate()
    d:forward(x)
    d:backward(x, g)
    d:training()
    d:forward(x)
    d:backward(x, g)
    assert.are.equal(20, x:sum())
    assert.are.equal(20, g:sum())
  end)

  it("BatchNorm updates running statistics with unbiased variance and momentum", function()
    local bn = nn.BatchNorm1d(2, 1e-3, 0.25)
    local x = ac.tensor({ { 1, 10 }, { 2, 20 }, { 3, 30 }, { 6, 0 } })
    bn:forward(x)
    -- mean (3, 15); unbiased var (14/3, 500/3)
    local rm, rv = bn.running_mean:totable(), bn.running_var:totable()
    assert.is_true(math.abs(rm[1] - 0.25 * 3) < 1e-5 and math.abs(rm[2] - 0.25 * 15) < 1e-5)
    assert.is_true(math.abs(rv[1] - (0.75 + 0.25 * 14 / 3)) < 1e-5)
    assert.is_true(math.abs(rv[2] - (0.75 + 0.25 * 500 / 3)) < 1e-4)
    -- output normalised with the biased variance
    local y = bn.output:select(2, 1):totable()
    assert.is_true(math.abs(y[1] - (1 - 3) / math.sqrt(3.5 + 1e-3)) < 1e-5)
    bn:evaluate()
    local ye = bn:forward(x):select(2, 1):totable()
    assert.is_true(math.abs(ye[1] - (1 - rm[1]) / math.sqrt(rv[1] + 1e-3)) < 1e-5)
  end)

  it("L2Normalize gives unit rows, and zeros (no NaN) for a zero row", function()
    local m = nn.L2Normalize()
    local x = ac.randn(3, 5)
    x:select(1, 2):zero()
    local y = m:forward(x)
    local n = (y * y):sum(2):view(-1):totable()
    assert.is_true(math.abs(n[1] - 1) < 1e-5 and math.abs(n[3] - 1) < 1e-5)
    assert.are.equal(0, n[2])
    local g = m:backward(x, ac.randn(3, 5))
    assert.are.equal(0, g:ne(g):sum()) -- no NaN
  end)

  it("SoftMax rows sum to 1; LogSoftMax is its log", function()
    local x = ac.randn(4, 6) * 10
    local p = nn.SoftMax():forward(x)
    local s = p:sum(2):view(-1):totable()
    for _, v in ipairs(s) do assert.is_true(math.abs(v - 1) < 1e-5) end
    assert.is_true(maxdiff(nn.LogSoftMax():forward(x):exp(), p) < 1e-6)
  end)

  it("CrossEntropyCriterion matches -log softmax at the target", function()
    local x = ac.tensor({ { 1, 2, 3 }, { 0, 0, 5 } })
    local c = nn.CrossEntropyCriterion()
    local l = c:forward(x, { 2, 3 })
    local function lse(a, b, d) return math.log(math.exp(a) + math.exp(b) + math.exp(d)) end
    local want = ((lse(1, 2, 3) - 2) + (lse(0, 0, 5) - 5)) / 2
    assert.is_true(math.abs(l - want) < 1e-6)
    assert.is_true(math.abs(c:forward(x[1], 2) - (lse(1, 2, 3) - 2)) < 1e-6)
  end)

  it("MaxPool2d same padding: output ceil(H/stride), padding never wins", function()
    local m = nn.MaxPool2d(3, 2, "same")
    local x = -ac.ones(1, 1, 5, 6)
    local y = m:forward(x)
    assert.are.same({ 1, 1, 3, 3 }, y:shape())
    assert.are.equal(-1, y:max())
  end)

  it("GlobalAvgPool2d gives [N, C]", function()
    local y = nn.GlobalAvgPool2d():forward(ac.ones(2, 3, 4, 5) * 2)
    assert.are.same({ 2, 3 }, y:shape())
    assert.is_true(maxdiff(y, ac.ones(2, 3) * 2) < 1e-6)
  end)

  it("Concat joins member outputs along a dimension", function()
    local m = nn.Concat(2):add(nn.Conv2d(2, 3, 1)):add(nn.Conv2d(2, 1, 1))
    local y = m:forward(ac.randn(2, 2, 3, 3))
    assert.are.same({ 2, 4, 3, 3 }, y:shape())
  end)
end)
