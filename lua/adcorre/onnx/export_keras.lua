--- adcorre.onnx.export_keras: the ONNX graph of a keras.Graph (what
-- ac.keras.load returns for networks other than the Ad-Corre one), for
-- ac.onnx.export (adcorre.onnx.export does the layers).
--
-- One node (two for some layers, see adcorre.onnx.export) per Keras layer,
-- named after the layer, in the graph's topological order. A
-- BatchNormalization whose only input is a Conv2D / SeparableConv2D /
-- DepthwiseConv2D / Dense without an inline activation, which nothing else
-- reads and which is not an output, is folded into that layer. Dropout
-- leaves no node; Keras' Flatten (NHWC order) is Transpose + Flatten.
--
-- The outputs (the contract, README "Deploying: ONNX"):
--   one output ending in a softmax (Activation("softmax"), or a Dense with
--     activation "softmax"): `logits`, the values before the softmax, and
--     `probabilities`, the model's output
--   one other output: `output` (with opts.probabilities and a 2-D output,
--     also `probabilities`, its softmax)
--   several outputs: one per Keras output, in Keras' order, each named
--     after its layer (characters other than letters, digits and _ . / -
--     become _; "input" and repeats get a suffix)
local ac = require("adcorre")

local M = {}

local BN = {["nn.BatchNorm2d"] = true, ["nn.BatchNorm1d"] = true}
local FOLDABLE = {["nn.Conv2d"] = true, ["nn.SeparableConv2d"] = true, ["nn.Linear"] = true}

local function prefix(path, name) return path and (path .. "/" .. name) or name end

-- conv node index -> index of the batch norm folded into it
local function folds(g)
  local readers = {}
  for _, n in ipairs(g.nodes) do
    for _, j in ipairs(n.inputs or {}) do readers[j] = (readers[j] or 0) + 1 end
  end
  for _, o in ipairs(g.outputs) do readers[o] = (readers[o] or 0) + 2 end
  local f = {}
  for i, n in ipairs(g.nodes) do
    if n.module and BN[n.module.__typename] and #n.inputs == 1 then
      local j = n.inputs[1]
      local c = g.nodes[j].module
      if c and FOLDABLE[c.__typename] and readers[j] == 1 then f[j] = i end
    end
  end
  return f
end

-- True when module m ends in a softmax that can be split off.
local function softmax_tail(m)
  if m.__typename == "nn.SoftMax" then return true end
  return m.__typename == "nn.Sequential" and #m.modules >= 2 and m.modules[#m.modules].__typename == "nn.SoftMax"
end

--- Emits the nodes of keras.Graph g (value v at its input) under path (nil
--- at the top); returns the values of its nodes (index -> {name, x}) and,
--- when node `split` ends in a softmax, the value before it.
function M.emit_graph(B, path, g, v, E, split)
  local vals = {v}
  local fold = folds(g)
  local pre
  for i = 2, #g.nodes do
    local n = g.nodes[i]
    local m, p = n.module, prefix(path, n.name)
    local ins = {}
    for k, j in ipairs(n.inputs) do ins[k] = vals[j] end
    if fold[i] then
      vals[i] = false -- emitted with its batch norm
    elseif #ins == 1 and ins[1] == false then
      local c = g.nodes[n.inputs[1]]
      vals[i] = E.emit_folded(B, prefix(path, c.name), c.module, vals[c.inputs[1]], m, p)
    elseif i == split then
      local sm = m
      pre = ins[1]
      if m.__typename == "nn.Sequential" then
        sm = m.modules[#m.modules]
        local body = {__typename = "nn.Sequential", modules = {table.unpack(m.modules, 1, #m.modules - 1)}}
        pre = E.emit(B, p, body, pre)
        p = p .. "/" .. (sm.name or "softmax")
      end
      vals[i] = E.emit(B, p, sm, pre)
    else
      vals[i] = E.emit(B, p, m, #ins == 1 and ins[1] or ins)
    end
  end
  return vals, pre
end

local function clean(name) return (tostring(name):gsub("[^%w_%./%-]", "_")) end

-- Gives the values in `wanted` ({value =, name =}) their output names: the
-- producing node's output is renamed (everywhere it is read); a value that
-- is the graph input or already named gets an Identity.
local function name_outputs(B, wanted)
  local taken = {input = true}
  for _, e in ipairs(B.inits) do taken[e.name] = true end
  for _, n in ipairs(B.nodes) do for _, o in ipairs(n.outputs) do taken[o] = true end end
  local ren = {}
  for _, w in ipairs(wanted) do
    local name, k = w.name, 1
    while taken[name] do k = k + 1; name = w.name .. "_" .. k end
    taken[name] = true
    w.name = name
    local v = w.value.name
    if v == "input" or ren[v] then
      B:node("Identity", name .. "/identity", {v}, nil, name)
    else
      ren[v] = name
    end
  end
  for _, n in ipairs(B.nodes) do
    for k, s in ipairs(n.inputs) do n.inputs[k] = ren[s] or s end
    for k, s in ipairs(n.outputs) do n.outputs[k] = ren[s] or s end
  end
end

local function dims(x)
  local d = x:shape()
  d[1] = "N"
  return d
end

--- The graph of keras.Graph model for an input of shape {C, H, W}; returns
--- the builder and the output list ({name, dims}), as export.build does.
function M.build(model, input_shape, opts, E)
  local B = E.new_builder()
  B.used.input = true
  local v = {name = "input", x = ac.zeros(1, input_shape[1], input_shape[2], input_shape[3])}
  local outs = model.outputs
  local single = #outs == 1
  local om = model.nodes[outs[1]].module
  local split = single and om and softmax_tail(om) and outs[1] or nil
  local vals, pre = M.emit_graph(B, nil, model, v, E, split)
  local wanted = {}
  if split then
    wanted = {{value = pre, name = "logits"}, {value = vals[split], name = "probabilities"}}
  elseif single then
    wanted = {{value = vals[outs[1]], name = "output"}}
    local y = vals[outs[1]]
    if opts.probabilities and y.x:dim() == 2 then
      local sm = E.emit(B, "softmax", ac.nn.SoftMax(), y)
      wanted[2] = {value = sm, name = "probabilities"}
    end
  else
    for k, j in ipairs(outs) do wanted[k] = {value = vals[j], name = clean(model.nodes[j].name)} end
  end
  name_outputs(B, wanted)
  local outputs = {}
  for k, w in ipairs(wanted) do outputs[k] = {name = w.name, dims = dims(w.value.x)} end
  return B, outputs
end

return M
