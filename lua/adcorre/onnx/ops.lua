--- adcorre.onnx.ops: one adcorre step per ONNX node, for ac.onnx.load.
--
-- build(node, ctx) returns {module = m | fn = f, args = {value names},
-- table_arg = bool}: a module run on the node's dynamic inputs (one tensor,
-- or a table of them when table_arg), or a function of them. ctx gives
-- ctx.const(name) (an initializer or nil), ctx.example(name) (the batch-1
-- value that the graph computes, for shapes) and ctx.fail(fmt, ...).
--
-- Supported (default domain, the op set ac.onnx.export writes):
--   Conv (2-D, dilations 1, pads explicit or auto_pad), BatchNormalization
--   (inference), Relu, MaxPool / AveragePool (ceil_mode 0), GlobalAveragePool,
--   Flatten, Gemm (transA 0, constant B), MatMul (constant B), Add (two values
--   of one shape, or a value and a constant broadcast on the last axis),
--   LpNormalization (p 2, last axis), Concat, Softmax / LogSoftmax (last
--   axis), Identity, Dropout (inference: identity), Transpose (Keras'
--   NHWC Flatten).
local core = require("adcorre.core")
local nn = require("adcorre.nn")

local M = {}

M.SUPPORTED = {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
  "Flatten", "Gemm", "MatMul", "Add", "LpNormalization", "Concat", "Softmax", "LogSoftmax",
  "Identity", "Dropout", "Transpose"}

local function attrs_of(node)
  local a = {}
  for _, e in ipairs(node.attrs) do a[e.name] = e.value end
  return a
end

local function shape_str(s) return "[" .. table.concat(s, ", ") .. "]" end

-- The initializer at input i of node, checked against the expected shape
-- (false entries accept any size).
local function weight(node, ctx, i, what, shape)
  local name = node.inputs[i]
  local t = name and name ~= "" and ctx.const(name)
  if not t then ctx.fail("%s (input %d, '%s') must be an initializer", what, i, tostring(name)) end
  if t:dtype() ~= "float32" then ctx.fail("%s '%s' must be float32, got %s", what, name, t:dtype()) end
  if shape then
    local s = t:shape()
    local ok = #s == #shape
    for d = 1, #shape do if ok and shape[d] and s[d] ~= shape[d] then ok = false end end
    if not ok then
      local want = {}
      for d = 1, #shape do want[d] = shape[d] and tostring(shape[d]) or "?" end
      ctx.fail("initializer %s '%s' has shape %s, expected %s", what, name, shape_str(s), shape_str(want))
    end
  end
  return t
end

local function dynamic(node, ctx, i)
  local name = node.inputs[i]
  local x = name and ctx.example(name)
  if not x then ctx.fail("input %d ('%s') is not computed by an earlier node", i, tostring(name)) end
  return x
end

-- Padding argument of a Conv2d / Pool2d for an ONNX window op.
local function padding(a, ctx, x, kh, kw, sh, sw)
  local ap = a.auto_pad or "NOTSET"
  local H, W = x:size(3), x:size(4)
  local st, sb = core.nn.same_padding(H, kh, sh)
  local sl, sr = core.nn.same_padding(W, kw, sw)
  if ap == "SAME_UPPER" then return "same" end
  if ap == "VALID" then return 0 end
  if ap == "SAME_LOWER" then
    if st == sb and sl == sr then return {st, sl} end
    ctx.fail("auto_pad SAME_LOWER with uneven padding is not supported")
  end
  if ap ~= "NOTSET" then ctx.fail("auto_pad '%s' is not supported", tostring(ap)) end
  local p = a.pads or {0, 0, 0, 0}
  if #p ~= 4 then ctx.fail("pads must have 4 values for a 2-D window, got %d", #p) end
  local pt, pl, pb, pr = p[1], p[2], p[3], p[4]
  if pt == pb and pl == pr then return {pt, pl} end
  if pt == st and pb == sb and pl == sl and pr == sr then return "same" end
  ctx.fail("asymmetric pads {%d, %d, %d, %d} other than TensorFlow's 'same' are not supported", pt, pl, pb, pr)
end

local function window_args(a, ctx, x, kshape, what)
  if x:dim() ~= 4 then ctx.fail("%s needs a 4-D input [N, C, H, W], got %s", what, shape_str(x:shape())) end
  local k = a.kernel_shape or kshape
  if not k or #k ~= 2 then ctx.fail("kernel_shape must have 2 values") end
  local s = a.strides or {1, 1}
  for _, d in ipairs(a.dilations or {}) do
    if d ~= 1 then ctx.fail("dilations other than 1 are not supported") end
  end
  if (a.ceil_mode or 0) ~= 0 then ctx.fail("ceil_mode 1 is not supported") end
  return k, s, padding(a, ctx, x, k[1], k[2], s[1], s[2])
end

-- A step of module m holding weight W and bias (or none).
local function with_weights(m, W, bias)
  m.weight:copy(W)
  if bias then m.bias:copy(bias) end
  return {module = m}
end

local B = {}

function B.Conv(node, ctx)
  local a = attrs_of(node)
  local x = dynamic(node, ctx, 1)
  local g = a.group or 1
  local C = x:size(2)
  if C % g ~= 0 then ctx.fail("group %d does not divide the %d input channels", g, C) end
  local W = weight(node, ctx, 2, "weight", {false, C // g, false, false})
  local nout = W:size(1)
  local k, s, pad = window_args(a, ctx, x, {W:size(3), W:size(4)}, "Conv")
  if k[1] ~= W:size(3) or k[2] ~= W:size(4) then
    ctx.fail("kernel_shape {%d, %d} differs from the weight's %s", k[1], k[2], shape_str(W:shape()))
  end
  local bias = node.inputs[3] and node.inputs[3] ~= "" and weight(node, ctx, 3, "bias", {nout})
  return with_weights(nn.Conv2d(C, nout, k, s, pad, g, {bias = bias and true or false}), W, bias)
end

function B.BatchNormalization(node, ctx)
  local a = attrs_of(node)
  local x = dynamic(node, ctx, 1)
  if a.training_mode == 1 then ctx.fail("training_mode 1 is not supported") end
  local C = x:size(2)
  local m
  if x:dim() == 4 then m = nn.BatchNorm2d(C, a.epsilon or 1e-5)
  elseif x:dim() == 2 or x:dim() == 3 then m = nn.BatchNorm1d(C, a.epsilon or 1e-5)
  else ctx.fail("input of rank %d is not supported", x:dim()) end
  m.weight:copy(weight(node, ctx, 2, "scale", {C}))
  m.bias:copy(weight(node, ctx, 3, "B", {C}))
  m.running_mean:copy(weight(node, ctx, 4, "mean", {C}))
  m.running_var:copy(weight(node, ctx, 5, "var", {C}))
  m:evaluate()
  return {module = m}
end

function B.Relu() return {module = nn.ReLU()} end

function B.MaxPool(node, ctx)
  if #node.outputs > 1 then ctx.fail("the Indices output is not supported") end
  local k, s, pad = window_args(attrs_of(node), ctx, dynamic(node, ctx, 1), nil, "MaxPool")
  return {module = nn.MaxPool2d(k, s, pad)}
end

function B.AveragePool(node, ctx)
  local a = attrs_of(node)
  local k, s, pad = window_args(a, ctx, dynamic(node, ctx, 1), nil, "AveragePool")
  return {module = nn.AvgPool2d(k, s, pad, {count_include_pad = (a.count_include_pad or 0) == 1})}
end

function B.GlobalAveragePool(node, ctx)
  local x = dynamic(node, ctx, 1)
  if x:dim() ~= 4 then ctx.fail("needs a 4-D input, got %s", shape_str(x:shape())) end
  local m = nn.GlobalAvgPool2d()
  -- ONNX keeps the pooled dims: [N, C, 1, 1]
  return {fn = function(t)
    local y = m:forward(t)
    return y:view(y:size(1), y:size(2), 1, 1)
  end, module = m, wrap = true}
end

function B.Flatten(node, ctx)
  local a = attrs_of(node)
  local x = dynamic(node, ctx, 1)
  local axis = a.axis or 1
  if axis < 0 then axis = axis + x:dim() end
  if axis < 0 or axis > x:dim() then ctx.fail("axis %d out of range for rank %d", a.axis, x:dim()) end
  return {fn = function(t)
    local s = t:shape()
    local lead = 1
    for d = 1, axis do lead = lead * s[d] end
    return t:contiguous():view(lead, -1)
  end}
end

local function linear(W, bias)
  return with_weights(nn.Linear(W:size(2), W:size(1), {bias = bias ~= nil}), W, bias)
end

function B.Gemm(node, ctx)
  local a = attrs_of(node)
  local x = dynamic(node, ctx, 1)
  if x:dim() ~= 2 then ctx.fail("A must be 2-D, got %s", shape_str(x:shape())) end
  if (a.transA or 0) ~= 0 then ctx.fail("transA 1 is not supported") end
  local nin = x:size(2)
  local W
  if (a.transB or 0) == 1 then W = weight(node, ctx, 2, "B", {false, nin})
  else W = weight(node, ctx, 2, "B", {nin, false}):t():contiguous() end
  W = W * (a.alpha or 1)
  local bias
  if node.inputs[3] and node.inputs[3] ~= "" then
    local c = weight(node, ctx, 3, "C")
    if c:numel() ~= W:size(1) then
      ctx.fail("initializer C '%s' has shape %s, expected [%d]", node.inputs[3], shape_str(c:shape()), W:size(1))
    end
    bias = c:contiguous():view(-1) * (a.beta or 1)
  end
  return linear(W, bias)
end

function B.MatMul(node, ctx)
  local x = dynamic(node, ctx, 1)
  if x:dim() ~= 2 then ctx.fail("A must be 2-D, got %s", shape_str(x:shape())) end
  return linear(weight(node, ctx, 2, "B", {x:size(2), false}):t():contiguous(), nil)
end

function B.Add(node, ctx)
  local c1, c2 = ctx.const(node.inputs[1]), ctx.const(node.inputs[2])
  if not c1 and not c2 then
    local a, b = dynamic(node, ctx, 1), dynamic(node, ctx, 2)
    local sa, sb = a:shape(), b:shape()
    if shape_str(sa) ~= shape_str(sb) then
      ctx.fail("inputs of shapes %s and %s: only equal shapes are supported (no broadcasting)", shape_str(sa), shape_str(sb))
    end
    return {module = nn.Add(), table_arg = true}
  end
  local vi = c1 and 2 or 1
  local c = c1 or c2
  local x = dynamic(node, ctx, vi)
  if c:dtype() ~= "float32" or c:numel() ~= x:size(x:dim()) then
    ctx.fail("constant '%s' of shape %s: only a vector of the last axis' size (%d) is supported",
      c1 and node.inputs[1] or node.inputs[2], shape_str(c:shape()), x:size(x:dim()))
  end
  local shape = {}
  for d = 1, x:dim() - 1 do shape[d] = 1 end
  shape[x:dim()] = c:numel()
  local cb = c:contiguous():view(table.unpack(shape))
  return {fn = function(t) return t + cb end, args = {node.inputs[vi]}}
end

function B.LpNormalization(node, ctx)
  local a = attrs_of(node)
  local x = dynamic(node, ctx, 1)
  local axis = a.axis or -1
  if axis < 0 then axis = axis + x:dim() end
  if (a.p or 2) ~= 2 then ctx.fail("p = %d is not supported (only 2)", a.p) end
  if x:dim() ~= 2 or axis ~= 1 then ctx.fail("only the last axis of a 2-D input is supported") end
  return {module = nn.L2Normalize()}
end

function B.Concat(node, ctx)
  local a = attrs_of(node)
  if a.axis == nil then ctx.fail("the axis attribute is required") end
  local x = dynamic(node, ctx, 1)
  local axis = a.axis < 0 and a.axis + x:dim() or a.axis
  for i = 1, #node.inputs do dynamic(node, ctx, i) end
  return {module = nn.JoinTable(axis + 1), table_arg = true}
end

local function softmax(cls)
  return function(node, ctx)
    local a = attrs_of(node)
    local x = dynamic(node, ctx, 1)
    local axis = a.axis or -1
    if axis < 0 then axis = axis + x:dim() end
    if x:dim() > 2 or axis ~= x:dim() - 1 then ctx.fail("only the last axis of a 1-D or 2-D input is supported") end
    return {module = cls()}
  end
end
B.Softmax = softmax(nn.SoftMax)
B.LogSoftmax = softmax(nn.LogSoftMax)

function B.Transpose(node, ctx)
  local x = dynamic(node, ctx, 1)
  local perm = attrs_of(node).perm
  if perm == nil then
    perm = {}
    for d = 1, x:dim() do perm[d] = x:dim() - d end
  end
  if #perm ~= x:dim() then ctx.fail("perm has %d entries for an input of rank %d", #perm, x:dim()) end
  local p, seen = {}, {}
  for d, a in ipairs(perm) do
    if math.type(a) ~= "integer" or a < 0 or a >= x:dim() or seen[a] then
      ctx.fail("perm {%s} is not a permutation of 0..%d", table.concat(perm, ", "), x:dim() - 1)
    end
    seen[a], p[d] = true, a + 1
  end
  return {fn = function(t) return t:permute(table.unpack(p)):contiguous() end}
end

function B.Identity() return {fn = function(t) return t end} end
B.Dropout = B.Identity

function M.build(node, ctx)
  if node.domain ~= "" and node.domain ~= "ai.onnx" then
    ctx.fail("domain '%s' is not supported", node.domain)
  end
  local f = B[node.op_type]
  if not f then
    ctx.fail("op '%s' is not supported (supported: %s)", node.op_type, table.concat(M.SUPPORTED, ", "))
  end
  return f(node, ctx)
end

return M
