--- adcorre.keras.layers: one Keras layer config -> an adcorre.nn module, its
-- output shape, and the conversion of its Keras weights.
--
--   local spec = layers.build(layer, in_shapes, where)
--   -- spec.module: the nn module (NCHW), spec.shape: output shape without
--   -- the batch ({C, H, W} or {N}), spec.weights: the Keras weights it takes,
--   -- in Keras' saving order, each {name =, shape =} (nil when it has none)
--   layers.assign(spec, found, where)   -- found: short name -> float32 tensor
--
-- Keras layouts (keras/saving/hdf5_format.py, keras/layers/convolutional.py):
-- Conv2D kernel [kh, kw, in, out] (HWIO), depthwise kernel [kh, kw, C, m]
-- (output channel c*m + j), pointwise kernel [1, 1, C*m, out], Dense kernel
-- [in, out], BatchNormalization gamma, beta (absent when scale / center is
-- false), moving_mean, moving_variance. "same" padding is TensorFlow's (the
-- odd cell at the bottom / right), as nn.Conv2d and nn.Pool2d do it.
local ac = require("adcorre")
local nn = require("adcorre.nn")
local Flatten = require("adcorre.keras.Flatten")

local M = {}

local function fail(where, fmt, ...)
  error(where .. ": " .. fmt:format(...), 0)
end

local function shape_str(s)
  return "[" .. table.concat(s, ", ") .. "]"
end
M.shape_str = shape_str

local function pair(v, what, where)
  if type(v) == "number" then return math.tointeger(v), math.tointeger(v) end
  if type(v) == "table" and #v == 2 and math.tointeger(v[1]) and math.tointeger(v[2]) then
    return math.tointeger(v[1]), math.tointeger(v[2])
  end
  fail(where, "%s must be an integer or a pair, got %s", what, tostring(v))
end

local function check_channels_last(cfg, where)
  if cfg.data_format ~= nil and cfg.data_format ~= "channels_last" then
    fail(where, "data_format '%s' is not supported (only channels_last)", tostring(cfg.data_format))
  end
end

local function spatial(in_shape, where)
  if #in_shape ~= 3 then
    fail(where, "expects an image input [H, W, C], got a tensor of shape %s (NCHW without the batch)",
      shape_str(in_shape))
  end
  return in_shape[1], in_shape[2], in_shape[3]
end

-- Output size of a sliding window along one axis.
local function out_size(n, k, s, padding, where)
  local o
  if padding == "same" then o = (n + s - 1) // s
  elseif padding == "valid" then o = (n - k) // s + 1
  else fail(where, "padding '%s' is not supported (same or valid)", tostring(padding)) end
  if o < 1 then fail(where, "input %d is smaller than the window %d", n, k) end
  return o
end

local ACT = {
  relu = function() return nn.ReLU() end,
  linear = false,
  softmax = function(shape, where)
    if #shape ~= 1 then fail(where, "softmax over an image tensor is not supported") end
    return nn.SoftMax()
  end,
}

-- The module of an activation name (nil for linear).
local function activation(name, shape, where)
  local f = ACT[name or "linear"]
  if f == nil then
    fail(where, "activation '%s' is not supported (relu, softmax, linear)", tostring(name))
  end
  return f and f(shape, where) or nil
end
M.activation = activation

-- m followed by its inline activation, as one Sequential when there is one.
local function with_activation(m, cfg, shape, where)
  local a = activation(cfg.activation, shape, where)
  if not a then return m end
  m.name = "layer"
  a.name = "activation"
  return nn.Sequential():add(m):add(a)
end

-- The base64 decoder for Lambda's marshalled code (Keras' func_dump).
local B64 = {}
do
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[chars:byte(i)] = i - 1 end
end
local function base64_decode(s)
  local out, bits, n = {}, 0, 0
  for i = 1, #s do
    local v = B64[s:byte(i)]
    if v then
      bits = (bits << 6) | v
      n = n + 6
      if n >= 8 then
        n = n - 8
        out[#out + 1] = string.char((bits >> n) & 0xff)
      end
    end
  end
  return table.concat(out)
end
M.base64_decode = base64_decode

-- True when a Lambda / TFOpLambda config computes l2_normalize.
local function is_l2_normalize(class, cfg)
  local f = cfg["function"]
  if class == "TFOpLambda" then return type(f) == "string" and f:find("l2_normalize", 1, true) ~= nil end
  if type(f) == "table" then f = f[1] end
  if type(f) ~= "string" then return false end
  if f:find("l2_normalize", 1, true) then return true end
  return base64_decode(f):find("l2_normalize", 1, true) ~= nil
end

----------------------------------------------------------------------------
-- builders: (cfg, in_shapes, where) -> module, out_shape, weights
----------------------------------------------------------------------------

local B = {}

function B.InputLayer(cfg, _, where)
  local s = cfg.batch_input_shape or cfg.batch_shape
  if type(s) ~= "table" then fail(where, "has no batch_input_shape") end
  local dims = {}
  for i = 2, #s do
    local v = math.tointeger(s[i])
    if not v then fail(where, "input dimension %d is not fixed (%s): the importer needs a fixed input size", i - 1,
      tostring(s[i])) end
    dims[#dims + 1] = v
  end
  if #dims == 3 then return nil, {dims[3], dims[1], dims[2]} end
  if #dims == 1 then return nil, dims end
  fail(where, "input shape %s is not [H, W, C] or [N]", shape_str(dims))
end

local function conv_geometry(cfg, in_shape, where)
  check_channels_last(cfg, where)
  local c, h, w = spatial(in_shape, where)
  local kh, kw = pair(cfg.kernel_size, "kernel_size", where)
  local sh, sw = pair(cfg.strides or 1, "strides", where)
  local dh, dw = pair(cfg.dilation_rate or 1, "dilation_rate", where)
  if dh ~= 1 or dw ~= 1 then fail(where, "dilation_rate %d,%d is not supported", dh, dw) end
  local pad = cfg.padding or "valid"
  local oh, ow = out_size(h, kh, sh, pad, where), out_size(w, kw, sw, pad, where)
  return c, {kh, kw}, {sh, sw}, pad, oh, ow
end

function B.Conv2D(cfg, ins, where)
  local c, k, s, pad, oh, ow = conv_geometry(cfg, ins[1], where)
  local f, groups = math.tointeger(cfg.filters), math.tointeger(cfg.groups or 1)
  if not groups or c % groups ~= 0 or f % groups ~= 0 then
    fail(where, "groups %s must divide %d input channels and %d filters", tostring(cfg.groups), c, f)
  end
  local bias = cfg.use_bias ~= false
  local m = nn.Conv2d(c, f, k, s, pad, groups, {bias = bias})
  local ws = {{name = "kernel", shape = {k[1], k[2], c // groups, f}}}
  if bias then ws[2] = {name = "bias", shape = {f}} end
  local shape = {f, oh, ow}
  return with_activation(m, cfg, shape, where), shape, ws, m
end

function B.SeparableConv2D(cfg, ins, where)
  local c, k, s, pad, oh, ow = conv_geometry(cfg, ins[1], where)
  local f, mult = math.tointeger(cfg.filters), math.tointeger(cfg.depth_multiplier or 1)
  local bias = cfg.use_bias ~= false
  local m = nn.SeparableConv2d(c, f, k, s, pad, {bias = bias, multiplier = mult})
  local ws = {{name = "depthwise_kernel", shape = {k[1], k[2], c, mult}},
              {name = "pointwise_kernel", shape = {1, 1, c * mult, f}}}
  if bias then ws[3] = {name = "bias", shape = {f}} end
  local shape = {f, oh, ow}
  return with_activation(m, cfg, shape, where), shape, ws, m
end

function B.DepthwiseConv2D(cfg, ins, where)
  local c, k, s, pad, oh, ow = conv_geometry(cfg, ins[1], where)
  local mult = math.tointeger(cfg.depth_multiplier or 1)
  local bias = cfg.use_bias ~= false
  local m = nn.Conv2d(c, c * mult, k, s, pad, c, {bias = bias})
  local ws = {{name = "depthwise_kernel", shape = {k[1], k[2], c, mult}}}
  if bias then ws[2] = {name = "bias", shape = {c * mult}} end
  local shape = {c * mult, oh, ow}
  return with_activation(m, cfg, shape, where), shape, ws, m
end

function B.BatchNormalization(cfg, ins, where)
  local s = ins[1]
  local axis = cfg.axis
  if type(axis) == "table" then
    if #axis ~= 1 then fail(where, "normalises over %d axes (only the channel axis is supported)", #axis) end
    axis = axis[1]
  end
  axis = math.tointeger(axis or -1)
  if not (axis == -1 or axis == #s) then
    fail(where, "axis %s is not the channel axis of a %d-d input", tostring(cfg.axis), #s + 1)
  end
  local n = s[1]
  local eps = cfg.epsilon or 1e-3
  local momentum = 1 - (cfg.momentum or 0.99)
  local scale, center = cfg.scale ~= false, cfg.center ~= false
  local ctor = #s == 3 and nn.BatchNorm2d or nn.BatchNorm1d
  local m = ctor(n, eps, momentum, {affine = scale or center})
  local ws = {}
  if scale then ws[#ws + 1] = {name = "gamma", shape = {n}} end
  if center then ws[#ws + 1] = {name = "beta", shape = {n}} end
  ws[#ws + 1] = {name = "moving_mean", shape = {n}}
  ws[#ws + 1] = {name = "moving_variance", shape = {n}}
  return m, s, ws, m
end

function B.Activation(cfg, ins, where)
  local a = activation(cfg.activation, ins[1], where)
  return a or nn.Identity(), ins[1]
end

function B.ReLU(cfg, ins, where)
  if cfg.max_value ~= nil or (cfg.negative_slope or 0) ~= 0 or (cfg.threshold or 0) ~= 0 then
    fail(where, "only a plain ReLU is supported (max_value %s, negative_slope %s, threshold %s)",
      tostring(cfg.max_value), tostring(cfg.negative_slope), tostring(cfg.threshold))
  end
  return nn.ReLU(), ins[1]
end

local function pooling(ctor)
  return function(cfg, ins, where)
    check_channels_last(cfg, where)
    local c, h, w = spatial(ins[1], where)
    local kh, kw = pair(cfg.pool_size or 2, "pool_size", where)
    local sh, sw = pair(cfg.strides or {kh, kw}, "strides", where)
    local pad = cfg.padding or "valid"
    local oh, ow = out_size(h, kh, sh, pad, where), out_size(w, kw, sw, pad, where)
    return ctor({kh, kw}, {sh, sw}, pad), {c, oh, ow}
  end
end
B.MaxPooling2D = pooling(nn.MaxPool2d)
B.AveragePooling2D = pooling(nn.AvgPool2d)

function B.GlobalAveragePooling2D(cfg, ins, where)
  check_channels_last(cfg, where)
  if cfg.keepdims then fail(where, "keepdims = true is not supported") end
  local c = spatial(ins[1], where)
  return nn.GlobalAvgPool2d(), {c}
end

local function same_shapes(ins, where)
  for i = 2, #ins do
    if shape_str(ins[i]) ~= shape_str(ins[1]) then
      fail(where, "input %d has shape %s, input 1 has %s (NCHW without the batch)", i, shape_str(ins[i]),
        shape_str(ins[1]))
    end
  end
end

function B.Add(_, ins, where)
  if #ins < 2 then fail(where, "needs at least 2 inputs, got %d", #ins) end
  same_shapes(ins, where)
  return nn.Add(), ins[1]
end

function B.Concatenate(cfg, ins, where)
  if #ins < 2 then fail(where, "needs at least 2 inputs, got %d", #ins) end
  local r = #ins[1]
  local axis = math.tointeger(cfg.axis or -1)
  if axis < 0 then axis = axis + r + 1 end -- Keras axis on [B, ...NHWC], 0 = batch
  if axis < 1 or axis > r then fail(where, "axis %s is out of range", tostring(cfg.axis)) end
  -- NHWC axis -> our dimension of the batched NCHW tensor
  local dim = r == 3 and ({3, 4, 2})[axis] or axis + 1
  local ours = dim - 1 -- index into the unbatched shape
  local out = {table.unpack(ins[1])}
  out[ours] = 0
  for i, s in ipairs(ins) do
    if #s ~= r then fail(where, "input %d has %d dimensions, input 1 has %d", i, #s, r) end
    for d = 1, r do
      if d ~= ours and s[d] ~= ins[1][d] then
        fail(where, "input %d has shape %s, input 1 has %s", i, shape_str(s), shape_str(ins[1]))
      end
    end
    out[ours] = out[ours] + s[ours]
  end
  return nn.JoinTable(dim), out
end

function B.Dense(cfg, ins, where)
  local s = ins[1]
  if #s ~= 1 then
    fail(where, "expects a flat input [N], got %s (add a Flatten or a global pooling)", shape_str(s))
  end
  local units = math.tointeger(cfg.units)
  local bias = cfg.use_bias ~= false
  local m = nn.Linear(s[1], units, {bias = bias})
  local ws = {{name = "kernel", shape = {s[1], units}}}
  if bias then ws[2] = {name = "bias", shape = {units}} end
  return with_activation(m, cfg, {units}, where), {units}, ws, m
end

function B.Dropout(cfg, ins)
  return nn.Dropout(cfg.rate or 0.5), ins[1]
end

function B.Flatten(cfg, ins, where)
  check_channels_last(cfg, where)
  local n = 1
  for _, v in ipairs(ins[1]) do n = n * v end
  return Flatten(), {n}
end

function B.Lambda(cfg, ins, where, class)
  if not is_l2_normalize(class or "Lambda", cfg) then
    fail(where, "is a %s that is not l2_normalize: its Python code cannot be rebuilt here",
      class or "Lambda")
  end
  local s = ins[1]
  if #s ~= 1 then fail(where, "l2_normalize is supported on flat inputs [N], got %s", shape_str(s)) end
  local axis = type(cfg.arguments) == "table" and cfg.arguments.axis or nil
  if axis ~= nil and axis ~= 1 and axis ~= -1 then
    fail(where, "l2_normalize over axis %s is not supported (only the feature axis)", tostring(axis))
  end
  local m = nn.L2Normalize()
  m.keras_l2 = true
  return m, s
end
B.TFOpLambda = function(cfg, ins, where) return B.Lambda(cfg, ins, where, "TFOpLambda") end

M.supported = {}
for k in pairs(B) do M.supported[#M.supported + 1] = k end
table.sort(M.supported)

--- Builds the module of one layer (see the file comment).
function M.build(layer, in_shapes, where)
  local class = layer.class_name
  local f = B[class]
  if not f then
    fail(where, "layer class '%s' is not supported (supported: %s)", tostring(class),
      table.concat(M.supported, ", "))
  end
  local m, shape, ws, core = f(layer.config or {}, in_shapes, where)
  if m then m.name = layer.name end
  return {module = m, shape = shape, weights = ws, core = core or m, class = class, name = layer.name}
end

----------------------------------------------------------------------------
-- weights
----------------------------------------------------------------------------

-- Copies Keras tensors into the module's (converted to its layout).
local COPY = {
  Conv2D = function(m, w)
    m.weight:copy(w.kernel:permute(4, 3, 1, 2))
    if m.bias then m.bias:copy(w.bias) end
  end,
  SeparableConv2D = function(m, w)
    m.depthwise.weight:copy(w.depthwise_kernel:permute(3, 4, 1, 2))
    m.pointwise.weight:copy(w.pointwise_kernel:permute(4, 3, 1, 2))
    if m.pointwise.bias then m.pointwise.bias:copy(w.bias) end
  end,
  DepthwiseConv2D = function(m, w)
    m.weight:copy(w.depthwise_kernel:permute(3, 4, 1, 2))
    if m.bias then m.bias:copy(w.bias) end
  end,
  Dense = function(m, w)
    m.weight:copy(w.kernel:t())
    if m.bias then m.bias:copy(w.bias) end
  end,
  BatchNormalization = function(m, w)
    if m.weight then
      if w.gamma then m.weight:copy(w.gamma) else m.weight:fill(1) end
      if w.beta then m.bias:copy(w.beta) else m.bias:zero() end
    end
    m.running_mean:copy(w.moving_mean)
    m.running_var:copy(w.moving_variance)
  end,
}
M.COPY = COPY

--- Checks the Keras tensors `found` (short name -> tensor) against
--- spec.weights and copies them into spec.core. `where` names the file and layer.
function M.assign(spec, found, where)
  for _, w in ipairs(spec.weights or {}) do
    local t = found[w.name]
    if t == nil then fail(where, "weight '%s' %s is missing", w.name, shape_str(w.shape)) end
    local s = t:shape()
    if shape_str(s) ~= shape_str(w.shape) then
      fail(where, "weight '%s' has shape %s in the file, the layer expects %s", w.name, shape_str(s),
        shape_str(w.shape))
    end
  end
  COPY[spec.class](spec.core, found)
end

--- A module's Keras class for weight conversion (by the module's type).
function M.class_of(m)
  local t = m.__typename
  if t == "nn.SeparableConv2d" then return "SeparableConv2D" end
  if t == "nn.Conv2d" then return (m.groups == m.nin and m.groups > 1) and "DepthwiseConv2D" or "Conv2D" end
  if t == "nn.Linear" then return "Dense" end
  if t == "nn.BatchNorm2d" or t == "nn.BatchNorm1d" then return "BatchNormalization" end
end

--- The Keras weights (name, shape) a native module takes.
function M.weights_of(m)
  local c = M.class_of(m)
  if c == "Conv2D" then
    local ws = {{name = "kernel", shape = {m.kh, m.kw, m.nin // m.groups, m.nout}}}
    if m.bias then ws[2] = {name = "bias", shape = {m.nout}} end
    return c, ws
  elseif c == "DepthwiseConv2D" then
    local ws = {{name = "depthwise_kernel", shape = {m.kh, m.kw, m.nin, m.nout // m.nin}}}
    if m.bias then ws[2] = {name = "bias", shape = {m.nout}} end
    return c, ws
  elseif c == "SeparableConv2D" then
    local dw = m.depthwise
    local ws = {{name = "depthwise_kernel", shape = {dw.kh, dw.kw, m.nin, m.multiplier}},
                {name = "pointwise_kernel", shape = {1, 1, m.nin * m.multiplier, m.nout}}}
    if m.pointwise.bias then ws[3] = {name = "bias", shape = {m.nout}} end
    return c, ws
  elseif c == "Dense" then
    local s = m.weight:shape()
    local ws = {{name = "kernel", shape = {s[2], s[1]}}}
    if m.bias then ws[2] = {name = "bias", shape = {s[1]}} end
    return c, ws
  elseif c == "BatchNormalization" then
    local n = m.running_mean:numel()
    return c, {{name = "gamma", shape = {n}}, {name = "beta", shape = {n}},
               {name = "moving_mean", shape = {n}}, {name = "moving_variance", shape = {n}}}
  end
end

return M
