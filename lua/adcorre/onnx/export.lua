--- adcorre.onnx.export: builds the ONNX graph of a model (the table that
-- core.onnx.save writes).
--
-- The module tree is walked in evaluation mode while a batch of one runs
-- through it, so each node knows its input's shape ("same" padding becomes
-- explicit pads). Containers become wiring (Sequential: a chain,
-- ConcatTable: a fork, Add / JoinTable: the join); each layer becomes one or
-- two nodes:
--   Conv2d                  Conv (weight [nout, nin/groups, kh, kw], bias)
--   SeparableConv2d         Conv (depthwise, group = nin) + Conv (1x1)
--   Conv / SeparableConv2d followed by BatchNorm2d in the same Sequential:
--                           the norm folded into the (pointwise) convolution,
--                           W' = W * s, b' = (b - mean) * s + beta with
--                           s = gamma / sqrt(var + eps) (computed in double);
--                           a fused ReLU becomes a Relu node after it
--   BatchNorm2d / 1d alone  BatchNormalization (+ Relu when fused)
--   ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d (+ Flatten: adcorre's is [N, C]),
--   Linear (Gemm, transB = 1), L2Normalize (LpNormalization p = 2),
--   SoftMax, LogSoftMax, Identity / Dropout (nothing: inference graph),
--   keras.Flatten (Transpose to NHWC + Flatten), keras.Graph (a DAG:
--   adcorre.onnx.export_keras, which also builds a whole imported Keras model)
-- Anything else raises "onnx.export: <path> (<type>) is not supported".
local ac = require("adcorre")
local window = require("adcorre.nn.window")

local M = {}

local Builder = {}
Builder.__index = Builder

local function new_builder()
  return setmetatable({nodes = {}, inits = {}, used = {}}, Builder)
end

function Builder:unique(base)
  base = (base or "node"):gsub("[^%w_%./%-]", "_")
  local n, k = base, 1
  while self.used[n] do k = k + 1; n = base .. "_" .. k end
  self.used[n] = true
  return n
end

--- Adds an initializer (a contiguous float32 copy); returns its name.
function Builder:init(name, t)
  name = self:unique(name)
  self.inits[#self.inits + 1] = {name = name, tensor = t:contiguous():clone()}
  return name
end

--- Adds a node; returns its output name (`out` when given, else a new one).
function Builder:node(op, name, inputs, attrs, out)
  name = self:unique(name)
  out = out or name .. ":0"
  self.used[out] = true
  self.nodes[#self.nodes + 1] = {op_type = op, name = name, inputs = inputs, outputs = {out}, attrs = attrs or {}}
  return out
end

local function ints(name, v) return {name = name, type = "ints", value = v} end
local function int(name, v) return {name = name, type = "int", value = v} end
local function float(name, v) return {name = name, type = "float", value = v} end

local function unsupported(path, m)
  error(("onnx.export: %s (%s) is not supported; supported layers: Conv2d, SeparableConv2d, " ..
    "BatchNorm2d, BatchNorm1d, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Linear, L2Normalize, " ..
    "SoftMax, LogSoftMax, Dropout, Identity, Add, JoinTable, keras.Flatten in Sequential / ConcatTable / keras.Graph"):format(
    path, m.__typename or type(m)), 0)
end

-- Runs module m on the value's example tensor (batch of 1).
local function run(m, x)
  local y = m:forward(x)
  if type(y) == "table" and not ac.is_tensor(y) then
    local c = {}
    for i, t in ipairs(y) do c[i] = t:clone() end
    return c
  end
  return y:clone()
end

----------------------------------------------------------------------------
-- batch-norm folding
----------------------------------------------------------------------------

-- Per-channel scale and shift of an evaluation-mode batch norm, in double.
local function bn_affine(bn)
  local mean, var = bn.running_mean:totable(), bn.running_var:totable()
  local g = bn.weight and bn.weight:totable()
  local b = bn.bias and bn.bias:totable()
  local s, t = {}, {}
  for c = 1, #mean do
    s[c] = (g and g[c] or 1) / math.sqrt(var[c] + bn.eps)
    t[c] = (b and b[c] or 0) - mean[c] * s[c]
  end
  return s, t
end

-- W' and b' of convolution conv followed by batch norm bn.
local function fold(conv, bn)
  local s, t = bn_affine(bn)
  local W = conv.weight
  local nout = W:size(1)
  local sv = ac.tensor(s)
  local W2 = (W:contiguous():view(nout, -1) * sv:view(nout, 1)):view(table.unpack(W:shape()))
  local b = conv.bias and conv.bias:totable()
  local b2 = {}
  for c = 1, nout do b2[c] = (b and b[c] or 0) * s[c] + t[c] end
  return W2, ac.tensor(b2)
end

----------------------------------------------------------------------------
-- layers
----------------------------------------------------------------------------

local function conv_node(B, path, conv, v, W, bias)
  local s = v.x:shape()
  local pt, pb, pl, pr = window.padding(conv, s)
  local inputs = {v.name, B:init(path .. ".weight", W or conv.weight)}
  if bias or conv.bias then inputs[3] = B:init(path .. ".bias", bias or conv.bias) end
  return B:node("Conv", path, inputs, {
    ints("kernel_shape", {conv.kh, conv.kw}), ints("strides", {conv.sh, conv.sw}),
    ints("pads", {pt, pl, pb, pr}), ints("dilations", {1, 1}), int("group", conv.groups)})
end

local function relu_node(B, path, name) return B:node("Relu", path .. "/relu", {name}) end

-- Conv2d or SeparableConv2d m, optionally followed by batch norm bn (at bnpath).
local function emit_conv(B, path, m, v, bn, bnpath)
  local out
  local last = m
  if m.__typename == "nn.SeparableConv2d" then
    local h = {name = conv_node(B, path .. "/depthwise", m.depthwise, v), x = run(m.depthwise, v.x)}
    last = m.pointwise
    local W, b
    if bn then W, b = fold(last, bn) end
    out = {name = conv_node(B, path .. "/pointwise", last, h, W, b), x = run(last, h.x)}
  else
    local W, b
    if bn then W, b = fold(m, bn) end
    out = {name = conv_node(B, path, m, v, W, b), x = run(m, v.x)}
  end
  if bn then
    out.x = run(bn, out.x)
    if bn.relu then out.name = relu_node(B, bnpath, out.name) end
  end
  return out
end

local function emit_bn(B, path, m, v)
  local n = m.nfeatures
  local inputs = {v.name,
    B:init(path .. ".weight", m.weight or ac.ones(n)), B:init(path .. ".bias", m.bias or ac.zeros(n)),
    B:init(path .. ".running_mean", m.running_mean), B:init(path .. ".running_var", m.running_var)}
  local name = B:node("BatchNormalization", path, inputs, {float("epsilon", m.eps)})
  if m.relu then name = relu_node(B, path, name) end
  return {name = name, x = run(m, v.x)}
end

local function pool_node(B, path, m, v, op)
  local pt, pb, pl, pr = window.padding(m, v.x:shape())
  local attrs = {ints("kernel_shape", {m.kh, m.kw}), ints("strides", {m.sh, m.sw}), ints("pads", {pt, pl, pb, pr})}
  if op == "AveragePool" then attrs[#attrs + 1] = int("count_include_pad", m.count_include_pad and 1 or 0) end
  return {name = B:node(op, path, {v.name}, attrs), x = run(m, v.x)}
end

-- A 2-D value from a 4-D one (Linear after a pooled [N, C, 1, 1]).
local function flat(B, path, v)
  if v.x:dim() == 2 then return v end
  local s = v.x:shape()
  return {name = B:node("Flatten", path .. "/flatten", {v.name}, {int("axis", 1)}), x = v.x:view(s[1], -1)}
end

-- Linear m as a Gemm, with weight W and bias b when given (a folded norm).
local function emit_linear(B, path, m, v, W, b, out)
  v = flat(B, path, v)
  local inputs = {v.name, B:init(path .. ".weight", W or m.weight)}
  if b or m.bias then inputs[3] = B:init(path .. ".bias", b or m.bias) end
  return {name = B:node("Gemm", path, inputs, {float("alpha", 1), float("beta", 1), int("transB", 1)}, out),
          x = run(m, v.x)}
end

--- Layer m (Conv2d, SeparableConv2d or Linear) at path with the batch norm
--- bn (at bnpath) that follows it folded in.
function M.emit_folded(B, path, m, v, bn, bnpath)
  if m.__typename == "nn.Linear" then
    local W, b = fold(m, bn)
    local out = emit_linear(B, path, m, v, W, b)
    out.x = run(bn, out.x)
    if bn.relu then out.name = relu_node(B, bnpath, out.name) end
    return out
  end
  return emit_conv(B, path, m, v, bn, bnpath)
end

local emit

local function emit_sequential(B, path, m, v)
  local mods = m.modules
  local i = 1
  while i <= #mods do
    local c = mods[i]
    local cp = path .. "/" .. (c.name or tostring(i))
    local nxt = mods[i + 1]
    local tn = c.__typename
    if (tn == "nn.Conv2d" or tn == "nn.SeparableConv2d") and nxt and nxt.__typename == "nn.BatchNorm2d" then
      v = emit_conv(B, cp, c, v, nxt, path .. "/" .. (nxt.name or tostring(i + 1)))
      i = i + 2
    else
      v = emit(B, cp, c, v)
      i = i + 1
    end
  end
  return v
end

function emit(B, path, m, v, out)
  local tn = m.__typename
  if tn == "nn.Sequential" then return emit_sequential(B, path, m, v) end
  if tn == "nn.ConcatTable" then
    local r = {}
    for i, c in ipairs(m.modules) do r[i] = emit(B, path .. "/" .. (c.name or tostring(i)), c, v) end
    return r
  end
  if type(v) == "table" and v.name == nil then
    -- a table of values: only the joins take one
    local names, xs = {}, {}
    for i, e in ipairs(v) do names[i], xs[i] = e.name, e.x end
    if tn == "nn.Add" then
      local name = names[1]
      for i = 2, #names do name = B:node("Add", path .. (i > 2 and i or ""), {name, names[i]}, nil, i == #names and out or nil) end
      return {name = name, x = run(m, xs)}
    elseif tn == "nn.JoinTable" then
      local nd = xs[1]:dim()
      local d = m.dim < 0 and nd + m.dim + 1 or m.dim
      return {name = B:node("Concat", path, names, {int("axis", d - 1)}, out), x = run(m, xs)}
    end
    unsupported(path, m)
  end
  if tn == "nn.Conv2d" or tn == "nn.SeparableConv2d" then return emit_conv(B, path, m, v, nil) end
  if tn == "nn.BatchNorm2d" or tn == "nn.BatchNorm1d" then return emit_bn(B, path, m, v) end
  if tn == "nn.ReLU" then return {name = B:node("Relu", path, {v.name}, nil, out), x = run(m, v.x)} end
  if tn == "nn.MaxPool2d" then return pool_node(B, path, m, v, "MaxPool") end
  if tn == "nn.AvgPool2d" then return pool_node(B, path, m, v, "AveragePool") end
  if tn == "nn.GlobalAvgPool2d" then
    local g = B:node("GlobalAveragePool", path, {v.name})
    return {name = B:node("Flatten", path .. "/flatten", {g}, {int("axis", 1)}, out), x = run(m, v.x)}
  end
  if tn == "nn.Linear" then return emit_linear(B, path, m, v, nil, nil, out) end
  if tn == "keras.Flatten" then
    if v.x:dim() == 2 then return v end
    -- Keras flattens NHWC: move the channels last first
    local t = B:node("Transpose", path .. "/nhwc", {v.name}, {ints("perm", {0, 2, 3, 1})})
    return {name = B:node("Flatten", path, {t}, {int("axis", 1)}, out), x = run(m, v.x)}
  end
  if tn == "keras.Graph" then
    local vals = require("adcorre.onnx.export_keras").emit_graph(B, path, m, v, M)
    if #m.outputs ~= 1 then error(("onnx.export: %s (keras.Graph) has %d outputs; inside a model one is supported"):format(path, #m.outputs), 0) end
    return vals[m.outputs[1]]
  end
  if tn == "nn.L2Normalize" then
    return {name = B:node("LpNormalization", path, {v.name}, {int("axis", -1), int("p", 2)}, out), x = run(m, v.x)}
  end
  if tn == "nn.SoftMax" or tn == "nn.LogSoftMax" then
    local op = tn == "nn.SoftMax" and "Softmax" or "LogSoftmax"
    return {name = B:node(op, path, {v.name}, {int("axis", -1)}, out), x = run(m, v.x)}
  end
  if tn == "nn.Identity" or tn == "nn.Dropout" then return v end
  unsupported(path, m)
end

----------------------------------------------------------------------------
-- models
----------------------------------------------------------------------------

-- Renames value `v` to `name` (an Identity when it is a graph input or taken).
local function as_output(B, v, name)
  local last = B.nodes[#B.nodes]
  if last and last.outputs[1] == v.name and not B.used[name] then
    last.outputs[1] = name
    B.used[name] = true
    return name
  end
  return B:node("Identity", name, {v.name}, nil, name .. "_out")
end

--- Graph of model for an input of shape {C, H, W}; returns the builder
--- and the output list ({name, dims}).
function M.build(model, input_shape, opts)
  if model.__typename == "keras.Graph" then
    return require("adcorre.onnx.export_keras").build(model, input_shape, opts, M)
  end
  local B = new_builder()
  local C, H, W = input_shape[1], input_shape[2], input_shape[3]
  B.used.input = true
  local v = {name = "input", x = ac.zeros(1, C, H, W)}
  local outputs
  if model.trunk and model.heads and model.classifier then
    local f = flat(B, "trunk", emit(B, "trunk", model.trunk, v))
    local heads = emit(B, "heads", model.heads, f)
    local names, xs = {}, {}
    for i, h in ipairs(heads) do names[i], xs[i] = h.name, h.x end
    local E = {name = B:node("Concat", "concat", names, {int("axis", 1)}, "embeddings"), x = ac.cat(xs, 2)}
    local logits = emit(B, "classifier", model.classifier, E)
    logits.name = as_output(B, logits, "logits")
    outputs = {{name = "logits", dims = {"N", logits.x:size(2)}},
               {name = "embeddings", dims = {"N", E.x:size(2)}}}
    if opts.probabilities then
      B:node("Softmax", "softmax", {logits.name}, {int("axis", 1)}, "probabilities")
      outputs[3] = {name = "probabilities", dims = {"N", logits.x:size(2)}}
    end
  else
    local y = emit(B, "model", model, v)
    if y.name == nil then error("onnx.export: the model returns a table; only AdCorreNet models may", 0) end
    y.name = as_output(B, y, "output")
    local dims = y.x:shape()
    dims[1] = "N"
    outputs = {{name = y.name, dims = dims}}
  end
  return B, outputs
end

M.new_builder, M.emit, M.as_output = new_builder, emit, as_output
M.attr = {ints = ints, int = int, float = float}

return M
