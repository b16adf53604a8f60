-- The Module contract of adcorre.nn: getParameters views, accumulation of
-- gradients, modes, clone / clearState / apply, printing, names of
-- parameters and buffers, buffer reuse, dropout and batch-norm statistics,
-- and the fast convolution paths against the naive reference kernels.
local ac = require("adcorre")
local nn = ac.nn
local core = require("adcorre.core")

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

describe("Conv2d fast paths agree with the naive reference kernels", function()
  local function compare(x, w, b, geo, what)
    local info = { core.nn.conv2d_info(x:shape(), w:shape(), geo) }
    local OH, OW, nws = info[1], info[2], info[3]
    local N, O = x:size(1), w:size(1)
    local ws = nws > 0 and ac.zeros(nws) or nil
    local y, yr = ac.zeros(N, O, OH, OW), ac.zeros(N, O, OH, OW)
    core.nn.conv2d_forward(x, w, b, y, ws, geo)
    core.nn.conv2d_forward(x, w, b, yr, nil, geo, true)
    local gy = ac.randn(N, O, OH, OW)
    local gx, gxr = ac.zeros(table.unpack(x:shape())), ac.zeros(table.unpack(x:shape()))
    core.nn.conv2d_backward_input(x, gy, w, gx, ws, geo)
    core.nn.conv2d_backward_input(x, gy, w, gxr, nil, geo, true)
    local gw, gwr = ac.zeros(table.unpack(w:shape())), ac.zeros(table.unpack(w:shape()))
    local gb, gbr = ac.zeros(O), ac.zeros(O)
    core.nn.conv2d_backward_params(x, gy, gw, gb, ws, geo, 0.5)
    core.nn.conv2d_backward_params(x, gy, gwr, gbr, nil, geo, 0.5, true)
    local function rel(a, r) return maxdiff(a, r) / math.max(r:abs():max(), 1e-12) end
    assert(rel(y, yr) < 2e-6, what .. " forward " .. rel(y, yr))
    assert(rel(gx, gxr) < 2e-6, what .. " backward input " .. rel(gx, gxr))
    assert(rel(gw, gwr) < 2e-5, what .. " backward params " .. rel(gw, gwr))
    assert(rel(gb, gbr) < 2e-5, what .. " backward bias " .. rel(gb, gbr))
    return info[4]
  end

  before_each(function() ac.manual_seed(13) end)

  it("im2col over several chunks (workspace budget exceeded)", function()
    local path = compare(ac.randn(9, 64, 40, 40), ac.randn(8, 64, 3, 3), ac.randn(8), { 1, 1, 1, 1, 1, 1, 1 }, "chunks")
    assert.are.equal("im2col", path)
  end)
  it("1x1 on the im2col path when the fast kernels are off, on the fast path by default", function()
    require("adcorre.testing").convfast_enable(false) -- nn_conv.c's own path (conv_fast.c takes 1x1 by default)
    local ok, r = pcall(compare, ac.randn(3, 16, 9, 7), ac.randn(12, 16, 1, 1), ac.randn(12), { 1, 1, 0, 0, 0, 0, 1 }, "1x1")
    require("adcorre.testing").convfast_enable(true)
    assert(ok, r)
    assert.are.equal("im2col", r)
    assert.are.equal("fast", compare(ac.randn(3, 16, 9, 7), ac.randn(12, 16, 1, 1), ac.randn(12), { 1, 1, 0, 0, 0, 0, 1 }, "1x1 fast"))
  end)
  it("depthwise path, asymmetric padding, stride 2, multiplier 2", function()
    assert.are.equal("depthwise", compare(ac.randn(3, 5, 11, 8), ac.randn(10, 1, 3, 3), ac.randn(10), { 2, 2, 0, 1, 1, 0, 5 }, "dw"))
  end)
  it("stride-1 depthwise path: 3x3 unrolled, and a 5x3 kernel with asymmetric padding and multiplier 2", function()
    require("adcorre.testing").convfast_enable(false) -- conv_fast.c takes the 3x3 "same" ones by default
    local ok, err = pcall(function()
      assert.are.equal("depthwise_s1", compare(ac.randn(3, 4, 9, 7), ac.randn(4, 1, 3, 3), ac.randn(4), { 1, 1, 1, 1, 1, 1, 4 }, "dw s1 3x3"))
      assert.are.equal("depthwise_s1", compare(ac.randn(2, 3, 8, 9), ac.randn(6, 1, 5, 3), ac.randn(6), { 1, 1, 3, 0, 1, 2, 3 }, "dw s1 5x3"))
      assert.are.equal("depthwise_s1", compare(ac.randn(5, 2, 3, 2), ac.randn(2, 1, 3, 3), nil, { 1, 1, 1, 1, 1, 1, 2 }, "dw s1 tiny"))
      assert.are.equal("depthwise_s1", compare(ac.randn(2, 3, 20, 19), ac.randn(3, 1, 3, 3), ac.randn(3), { 1, 1, 1, 1, 1, 1, 3 }, "dw s1 wide rows"))
    end)
    require("adcorre.testing").convfast_enable(true)
    assert(ok, err)
    assert.are.equal("fast", compare(ac.randn(3, 4, 9, 7), ac.randn(4, 1, 3, 3), ac.randn(4), { 1, 1, 1, 1, 1, 1, 4 }, "dw 3x3 fast"))
    assert.are.equal("fast", compare(ac.randn(2, 3, 20, 19), ac.randn(3, 1, 3, 3), ac.randn(3), { 1, 1, 1, 1, 1, 1, 3 }, "dw 3x3 fast wide rows"))
  end)
  it("grouped im2col path", function()
    assert.are.equal("im2col", compare(ac.randn(2, 6, 8, 9), ac.randn(9, 2, 3, 2), nil, { 1, 2, 1, 1, 0, 1, 3 }, "groups"))
  end)
  it("the same results with 1 and 2 threads", function()
    local m = nn.Conv2d(8, 16, 3, 1, 1)
    local d = nn.Conv2d(16, 16, 3, 1, 1, 16)
    local x = ac.randn(4, 8, 12, 12)
    local threads = ac.get_num_threads()
    ac.set_num_threads(1)
    local y1 = d:forward(m:forward(x)):clone()
    ac.set_num_threads(2)
    local y2 = d:forward(m:forward(x)):clone()
    ac.set_num_threads(threads)
    assert.is_true(maxdiff(y1, y2) < 1e-5)
  end)
end)

describe("BatchNorm2d fused with ReLU ({relu = true})", function()
  local function maxrel(a, b)
    local d, m = (a - b):abs():max(), b:abs():max()
    d = type(d) == "number" and d or d:item()
    m = type(m) == "number" and m or m:item()
    return d / math.max(m, 1e-30)
  end
  local function pair(c)
    local f = nn.BatchNorm2d(c, 1e-3, 0.01, { relu = true })
    local b = nn.BatchNorm2d(c, 1e-3, 0.01)
    local w, bias = ac.rand(c) + 0.5, ac.randn(c) * 0.5
    f.weight:copy(w); f.bias:copy(bias); b.weight:copy(w); b.bias:copy(bias)
    return f, nn.Sequential():add(b):add(nn.ReLU(true))
  end
  after_each(function() require("adcorre.testing").isa_limit(nil) end)

  it("gives the results of BatchNorm2d + ReLU(true) on both code paths, step after step", function()
    ac.manual_seed(21)
    for _, isa in ipairs({ "native", "generic" }) do
      require("adcorre.testing").isa_limit(isa == "generic" and "generic" or nil)
      for _, shape in ipairs({ { 3, 5, 7, 9 }, { 4, 3, 1, 1 }, { 2, 4, 12, 12 }, { 2, 3, 1, 16 } }) do
        local f, s = pair(shape[2])
        for step = 1, 2 do
          local x, gy = ac.randn(table.unpack(shape)) * 2 + 0.5, ac.randn(table.unpack(shape))
          f:zeroGradParameters(); s:zeroGradParameters()
          local yf, ys = f:forward(x), s:forward(x)
          assert.is_true(maxrel(yf, ys) < 1e-6, isa)
          local gf, gs = f:backward(x, gy), s:backward(x, gy)
          assert.is_true(maxrel(gf, gs) < 1e-5, isa .. " gradInput " .. maxrel(gf, gs))
          assert.is_true(maxrel(f.gradWeight, s.modules[1].gradWeight) < 1e-5, isa)
          assert.is_true(maxrel(f.gradBias, s.modules[1].gradBias) < 1e-5, isa)
          assert.is_true(maxrel(f.running_mean, s.modules[1].running_mean) < 1e-6, isa)
          assert.is_true(maxrel(f.running_var, s.modules[1].running_var) < 1e-6, isa)
        end
        f:evaluate(); s:evaluate()
        local x, gy = ac.randn(table.unpack(shape)), ac.randn(table.unpack(shape))
        assert.is_true(maxrel(f:forward(x), s:forward(x)) < 1e-6, isa)
        assert.is_true(maxrel(f:backward(x, gy), s:backward(x, gy)) < 1e-6, isa)
      end
    end
  end)

  it("the AVX-512 and portable kernels agree (odd row lengths, large rows)", function()
    if core.nn.isa() ~= "avx512" then pending("no AVX-512 on this CPU"); return end
    ac.manual_seed(22)
    for _, shape in ipairs({ { 2, 3, 37, 41 }, { 8, 5, 1, 33 }, { 3, 2, 112, 112 } }) do
      local x, gy = ac.randn(table.unpack(shape)) * 3 + 1, ac.randn(table.unpack(shape))
      local out = {}
      for _, isa in ipairs({ "native", "generic" }) do
        require("adcorre.testing").isa_limit(isa == "generic" and "generic" or nil)
        local m = nn.BatchNorm2d(shape[2], 1e-3, 0.01, { relu = true })
        m.weight:copy(ac.tensor({ 1.5, -0.7, 0.2, 1, 2 }):narrow(1, 1, shape[2]))
        m.bias:fill(0.1)
        local y = m:forward(x):clone()
        out[isa] = { y, m:backward(x, gy):clone(), m.gradWeight:clone(), m.gradBias:clone(),
                     m.running_var:clone() }
      end
      for i = 1, 5 do
        assert.is_true(maxrel(out.native[i], out.generic[i]) < 2e-5, ("tensor %d: %g"):format(i, maxrel(out.native[i], out.generic[i])))
      end
    end
  end)

  it("needs only its input in the backward: the output may be released", function()
    ac.manual_seed(23)
    local f = nn.BatchNorm2d(4, 1e-3, 0.01, { relu = true })
    f.bias:copy(ac.randn(4))
    local x, gy = ac.randn(3, 4, 5, 5), ac.randn(3, 4, 5, 5)
    f:forward(x)
    local g1 = f:backward(x, gy):clone()
    f:zeroGradParameters()
    f.output:fill(0) -- overwritten by the next layer, or
    f.output = nil   -- released once it has been read
    local g2 = f:backward(x, gy)
    assert.are.equal(0, maxdiff(g1, g2))
    assert.has_error(function() nn.BatchNorm2d(4, 1e-3, 0.01, { relu = true }):backward(x, gy) end,
      "BatchNorm2d:backward: call forward before backward")
  end)

  it("recomputes the output of its last forward bit for bit (containers may drop it)", function()
    ac.manual_seed(26)
    for _, relu in ipairs({ true, false }) do
      for _, train in ipairs({ true, false }) do
        local m = nn.BatchNorm2d(5, 1e-3, 0.01, { relu = relu })
        m.weight:copy(ac.randn(5)); m.bias:copy(ac.randn(5))
        if not train then m:evaluate() end
        local x = ac.randn(3, 5, 7, 9)
        local y = m:forward(x):clone()
        local rm = m.running_mean:clone()
        m.output = nil
        local r = m:_recomputeOutput(x)
        assert.is_true(rawequal(r, m.output))
        assert.are.equal(0, maxdiff(r, y))
        assert.are.equal(0, maxdiff(m.running_mean, rm)) -- statistics untouched
      end
    end
    assert.is_true(nn.BatchNorm2d(2):_canRecomputeOutput())
    assert.has_error(function() nn.BatchNorm2d(5):_recomputeOutput(ac.randn(2, 5, 3, 3)) end,
      "BatchNorm2d:forward: no earlier forward to recompute")
    local r = nn.ReLU()
    local x = ac.randn(4, 6)
    local y = r:forward(x):clone()
    r.output = nil
    assert.are.equal(0, maxdiff(r:_recomputeOutput(x), y))
    assert.is_false(nn.ReLU(true):_canRecomputeOutput())
  end)

  it("backward into its gradOutput (gradInput set to the gradOutput tensor) gives the same gradients", function()
    ac.manual_seed(27)
    for _, relu in ipairs({ true, false }) do
      for _, train in ipairs({ true, false }) do
        local m = nn.BatchNorm2d(3, 1e-3, 0.01, { relu = relu })
        m.weight:copy(ac.randn(3)); m.bias:copy(ac.randn(3))
        if not train then m:evaluate() end
        local x, gy = ac.randn(4, 3, 5, 6), ac.randn(4, 3, 5, 6)
        m:forward(x)
        m:zeroGradParameters()
        local g1, gw1 = m:backward(x, gy):clone(), m.gradWeight:clone()
        m:zeroGradParameters()
        local g = gy:clone()
        m.gradInput = g
        local g2 = m:backward(x, g)
        assert.is_true(rawequal(g2, g))
        assert.are.equal(0, maxdiff(g1, g2))
        assert.are.equal(0, maxdiff(gw1, m.gradWeight))
      end
    end
    local r = nn.ReLU()
    local x, gy = ac.randn(3, 7), ac.randn(3, 7)
    r:forward(x)
    local g1 = r:backward(x, gy):clone()
    local g = gy:clone()
    r.gradInput = g
    assert.are.equal(0, maxdiff(g1, r:backward(x, g)))
  end)

  it("prints, keeps its arguments and names, loads the weights of a plain batch norm", function()
    local f = nn.BatchNorm2d(4, 1e-3, 0.01, { relu = true })
    assert.are.equal("nn.BatchNorm2d(4, eps 0.001, momentum 0.01, relu)", tostring(f))
    assert.are.same({ 4, 1e-3, 0.01, { affine = true, relu = true } }, f._args)
    assert.are.equal(tostring(f), tostring(nn.BatchNorm2d(table.unpack(f._args))))
    local names = {}
    for _, e in ipairs(f:namedParameters()) do names[#names + 1] = e.name end
    for _, e in ipairs(f:namedBuffers()) do names[#names + 1] = e.name end
    assert.are.same({ "weight", "bias", "running_mean", "running_var" }, names)
    assert.has_error(function() nn.BatchNorm2d(4, 1e-3, 0.01, { relu = 1 }) end,
      "BatchNorm2d: relu must be a boolean, got number")
  end)

  it("evaluation-mode folding into the convolution applies the ReLU", function()
    ac.manual_seed(24)
    local function net()
      ac.manual_seed(25)
      local s = nn.Sequential():add(nn.Conv2d(3, 6, 3, 1, 1, 1, { bias = false }))
        :add(nn.BatchNorm2d(6, 1e-3, 0.01, { relu = true })):add(nn.Conv2d(6, 2, 1))
      local bn = s.modules[2]
      bn.bias:copy(ac.randn(6))
      bn.running_mean:copy(ac.randn(6) * 0.3)
      bn.running_var:copy(ac.rand(6) + 0.5)
      return s
    end
    local a, b = net(), net()
    a:evaluate()
    b:evaluate()
    b.train = true -- the Sequential itself in "training": no folding, the norm stays in evaluation mode
    local x = ac.randn(6, 3, 8, 8)
    a:keepOutputs() -- the norm's output is read below
    local ya = a:forward(x):clone()
    assert.is_true(a._fused == true)
    local yb = b:forward(x)
    assert.is_nil(b._fused)
    assert.is_true(maxrel(ya, yb) < 1e-5)
    local mn = a.modules[2].output:min()
    assert.is_true((type(mn) == "number" and mn or mn:item()) >= 0)
  end)
end)
