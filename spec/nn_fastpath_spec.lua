-- The fast kernels behind adcorre.nn's layers: Conv2d's fast paths
-- against the naive reference kernels, and BatchNorm2d fused with the ReLU
-- that follows it against the two modules in turn.
local ac = require("adcorre")
local nn = ac.nn
local core = require("adcorre.core")

local function maxdiff(a, b) return ((a - b):abs():max()) end

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
    for _, isa in ipairs({ "native", "avx2", "generic" }) do
      require("adcorre.testing").isa_limit(isa ~= "native" and isa or nil)
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

  it("the AVX-512, AVX2 and portable kernels agree (odd row lengths, large rows)", function()
    if core.nn.isa() == "generic" then pending("neither AVX-512 nor AVX2 on this CPU"); return end
    ac.manual_seed(22)
    for _, shape in ipairs({ { 2, 3, 37, 41 }, { 8, 5, 1, 33 }, { 3, 2, 112, 112 } }) do
      local x, gy = ac.randn(table.unpack(shape)) * 3 + 1, ac.randn(table.unpack(shape))
      local out = {}
      for _, isa in ipairs({ "native", "avx2", "generic" }) do
        require("adcorre.testing").isa_limit(isa ~= "native" and isa or nil)
        local m = nn.BatchNorm2d(shape[2], 1e-3, 0.01, { relu = true })
        m.weight:copy(ac.tensor({ 1.5, -0.7, 0.2, 1, 2 }):narrow(1, 1, shape[2]))
        m.bias:fill(0.1)
        local y = m:forward(x):clone()
        out[isa] = { y, m:backward(x, gy):clone(), m.gradWeight:clone(), m.gradBias:clone(),
                     m.running_var:clone() }
      end
      for i = 1, 5 do
        for _, isa in ipairs({ "native", "avx2" }) do
          local e = maxrel(out[isa][i], out.generic[i])
          assert.is_true(e < 2e-5, ("%s tensor %d: %g"):format(isa, i, e))
        end
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
