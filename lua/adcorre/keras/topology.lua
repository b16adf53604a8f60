--- adcorre.keras.topology: a Keras model_config (functional "Model" /
-- "Functional" or "Sequential", Keras 2.0 to tf.keras 2.x dialects) -> the
-- layer nodes in topological order, each with its nn module and shapes.
--
--   local g = topology.parse(config, where)
--   -- g.nodes[i] = {name =, class =, layer = (config entry), inputs = {j, ...},
--   --               spec = (keras.layers.build result), shape = {C, H, W} | {N}}
--   -- g.nodes[1] is the input; g.outputs = {i, ...} in Keras' output order;
--   -- g.by_name[name] = i
--   local net = topology.module(g [, upto])    -- a keras.Graph (upto: one node
--                                           -- index that becomes the output)
local layers = require("adcorre.keras.layers")
local budget = require("adcorre.budget")
local Graph = require("adcorre.keras.Graph")

local M = {}

local function fail(where, fmt, ...) error(where .. ": " .. fmt:format(...), 0) end

-- Inbound layer names of a layer entry (Keras 2 node format:
-- inbound_nodes = [[[name, node_index, tensor_index, kwargs], ...]]).
local function inbound(entry, where)
  local nodes = entry.inbound_nodes or {}
  if #nodes == 0 then return {} end
  if #nodes > 1 then
    fail(where, "layer '%s' is called %d times (shared layers are not supported)", entry.name, #nodes)
  end
  local names = {}
  for k, ref in ipairs(nodes[1]) do
    if type(ref) ~= "table" or type(ref[1]) ~= "string" then
      fail(where, "layer '%s': inbound node %d is not [name, node, tensor, kwargs]", entry.name, k)
    end
    if (ref[2] or 0) ~= 0 or (ref[3] or 0) ~= 0 then
      fail(where, "layer '%s' reads output %s of node %s of '%s' (only single-output layers are supported)",
        entry.name, tostring(ref[3]), tostring(ref[2]), ref[1])
    end
    names[k] = ref[1]
  end
  return names
end

-- A Sequential config as functional layer entries.
local function sequential_entries(cfg, where)
  local list = cfg
  if type(cfg) == "table" and cfg.layers then list = cfg.layers end
  if type(list) ~= "table" or #list == 0 then fail(where, "Sequential model_config has no layers") end
  local entries, prev = {}, nil
  for i, l in ipairs(list) do
    local c = l.config or {}
    local name = c.name or ("layer_" .. i)
    if i == 1 and l.class_name ~= "InputLayer" then
      local shape = c.batch_input_shape
      if not shape then fail(where, "the first layer '%s' of the Sequential model has no batch_input_shape", name) end
      entries[1] = {name = "input", class_name = "InputLayer", config = {batch_input_shape = shape}}
      prev = "input"
    end
    entries[#entries + 1] = {name = name, class_name = l.class_name, config = c,
                             inbound_nodes = prev and {{{prev, 0, 0, {}}}} or {}}
    prev = name
  end
  return entries, {entries[1].name}, {prev}
end

local function refs(list, what, where)
  local out = {}
  for k, r in ipairs(list or {}) do
    if type(r) ~= "table" or type(r[1]) ~= "string" then fail(where, "%s %d is not [name, node, tensor]", what, k) end
    out[k] = r[1]
  end
  return out
end

--- Parses a model_config table (see the file comment).
function M.parse(config, where)
  if type(config) ~= "table" then fail(where, "model_config is not a JSON object") end
  local class, cfg = config.class_name, config.config
  local entries, inputs, outputs
  if class == "Sequential" then
    entries, inputs, outputs = sequential_entries(cfg, where)
  elseif class == "Model" or class == "Functional" then
    if type(cfg) ~= "table" or type(cfg.layers) ~= "table" then fail(where, "model_config has no layers") end
    entries = cfg.layers
    inputs, outputs = refs(cfg.input_layers, "input", where), refs(cfg.output_layers, "output", where)
  else
    fail(where, "model class '%s' is not supported (Model, Functional or Sequential)", tostring(class))
  end
  if #inputs ~= 1 then fail(where, "the model has %d inputs (only one is supported)", #inputs) end
  if #outputs < 1 then fail(where, "the model has no outputs") end

  local by_entry = {}
  for k, e in ipairs(entries) do
    if type(e) ~= "table" or type(e.name) ~= "string" then fail(where, "layer %d has no name", k) end
    if by_entry[e.name] then fail(where, "two layers are named '%s'", e.name) end
    by_entry[e.name] = e
  end
  -- depth-first from the outputs: parents before children, cycles refused
  local g = {nodes = {}, outputs = {}, by_name = {}}
  local state = {}
  local function visit(name, from)
    local e = by_entry[name]
    if not e then fail(where, "layer '%s' reads '%s', which is not in the model", from or "?", name) end
    if state[name] == "done" then return g.by_name[name] end
    if state[name] == "open" then fail(where, "the layers form a cycle through '%s'", name) end
    state[name] = "open"
    local ins = {}
    for k, src in ipairs(inbound(e, where)) do ins[k] = visit(src, name) end
    if #ins == 0 and name ~= inputs[1] then
      fail(where, "layer '%s' (%s) has no inputs and is not the model's input", name, tostring(e.class_name))
    end
    if name == inputs[1] and #g.nodes > 0 then fail(where, "the input layer '%s' is not first", name) end
    local in_shapes = {}
    for k, j in ipairs(ins) do in_shapes[k] = g.nodes[j].shape end
    local lwhere = ("%s: layer '%s' (%s)"):format(where, name, tostring(e.class_name))
    if name == inputs[1] and e.class_name ~= "InputLayer" then
      fail(where, "the model's input '%s' is a %s, not an InputLayer", name, tostring(e.class_name))
    end
    local ok, spec = pcall(layers.build, e, in_shapes, lwhere)
    if not ok then
      -- an nn constructor's own error (the allocation budget's refusal) names the layer too
      local msg = tostring(spec)
      if msg:sub(1, #lwhere) ~= lwhere then msg = lwhere .. ": " .. budget.strip(msg) end
      error(msg, 0)
    end
    g.nodes[#g.nodes + 1] = {name = name, class = e.class_name, layer = e, inputs = ins, spec = spec,
                             shape = spec.shape, where = lwhere}
    g.by_name[name] = #g.nodes
    state[name] = "done"
    return #g.nodes
  end
  visit(inputs[1], nil)
  for k, o in ipairs(outputs) do g.outputs[k] = visit(o, nil) end
  g.input_shape = g.nodes[1].shape
  return g
end

--- The nodes that `target` depends on (a set of indices, target included).
function M.ancestors(g, target)
  local keep = {}
  local function mark(i)
    if keep[i] then return end
    keep[i] = true
    for _, j in ipairs(g.nodes[i].inputs) do mark(j) end
  end
  mark(target)
  return keep
end

--- A keras.Graph of the parsed graph (or of the part that computes node
--- `upto`, which becomes its only output).
function M.module(g, upto)
  local keep = upto and M.ancestors(g, upto) or nil
  local nodes, remap = {}, {}
  for i, n in ipairs(g.nodes) do
    if not keep or keep[i] then
      local ins = {}
      for k, j in ipairs(n.inputs) do ins[k] = remap[j] end
      nodes[#nodes + 1] = {module = n.spec.module, inputs = ins, name = n.name}
      remap[i] = #nodes
    end
  end
  local outs = {}
  if upto then outs[1] = remap[upto]
  else for k, j in ipairs(g.outputs) do outs[k] = remap[j] end end
  return Graph(nodes, outs)
end

return M
