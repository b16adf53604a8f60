--- adcorre.keras: Keras HDF5 files without TensorFlow.
--
--   local model, info = ac.keras.load("model.h5" [, opts])
--   ac.keras.load_weights(model, "weights.h5" [, opts])
--
-- ac.keras.load reads a full-model file (model.save("x.h5"): root attributes
-- model_config, keras_version, backend; group model_weights; the group
-- optimizer_weights is ignored), rebuilds the functional graph and loads its
-- weights. model:forward(x) takes NCHW float32 and returns what the Keras
-- model returns: one tensor, or a list in Keras' output order (image
-- outputs NCHW). The Ad-Corre network comes back as the native AdCorreNet
-- (forward -> {logits = pre-softmax, embeddings = {...}}); see
-- adcorre.keras.native.
--   opts.native = false     always the plain graph
--   opts.verify = false     skip the check that a native trunk computes the
--                           graph's features (one forward of each on a random input)
-- info = {in_channels, height, width, classes, keras_version, backend,
--         layers (in model_config), native (true for an AdCorreNet),
--         trunk ("xception", "minixception", "graph" or nil), k, d,
--         outputs, name, note (why no native trunk)}
--
-- ac.keras.load_weights loads a weights-only file (model.save_weights, or
-- Keras' ImageNet xception_weights_tf_dim_ordering_tf_kernels[_notop].h5)
-- or the weights of a full-model file into a native model of ac.models
-- (or a keras.Graph from ac.keras.load). Layers are paired as
-- adcorre.keras.match says; a file without the top (no Dense layers) fills
-- the trunk only. opts.trunk_only = true ignores the file's Dense layers.
-- Returns the model and {paired =, ignored = {names}, trunk_only =}.
local topology = require("adcorre.keras.topology")
local h5 = require("adcorre.keras.h5")
local layers = require("adcorre.keras.layers")
local match = require("adcorre.keras.match")
local native = require("adcorre.keras.native")
local budget = require("adcorre.budget")

local M = {}

-- model_config is decoded with lua-cjson (Debian lua-cjson, in `make deps`):
-- Keras' JSON has nulls inside arrays ([null, 224, 224, 3]) that must keep
-- their place. In objects a null is dropped; in arrays it becomes M.NULL.
-- Integral numbers become integers.
M.NULL = require("adcorre.json").null
local function clean(v, null)
  if v == null then return nil end
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) ~= "table" then return v end
  local out = {}
  local n = #v
  if n > 0 or next(v) == nil then
    for i = 1, n do
      local c = clean(v[i], null)
      if c == nil then c = M.NULL end
      out[i] = c
    end
  else
    for k, c in pairs(v) do out[k] = clean(c, null) end
  end
  return out
end

local function decode_config(s)
  local ok, cjson = pcall(require, "cjson")
  if not ok then error("lua-cjson is needed to read Keras model_config (Debian: lua-cjson; make deps)", 0) end
  local ok2, v = pcall(cjson.decode, s)
  if not ok2 then return false, v end
  return true, clean(v, cjson.null)
end


local function check_opts(opts, allowed, where)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(where .. ": options must be a table, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not allowed[k] then error(("%s: unknown option '%s'"):format(where, tostring(k)), 3) end
  end
  return opts
end

-- Reads the weights of every graph node that has some into its module.
local function load_graph_weights(f, g, root, where)
  for _, n in ipairs(g.nodes) do
    local ws = n.spec.weights
    if ws and #ws > 0 then
      local found, order = f:layer_weights(root, n.name, true)
      local lw = ("%s: %s: layer '%s' (%s)"):format(where, f.path, n.name, n.class)
      -- names other than Keras' (old files: "W", "b", ...) are taken in order
      local named = true
      for _, w in ipairs(ws) do if found[w.name] == nil then named = false end end
      if not named and #order == #ws then
        local byname = {}
        for k, w in ipairs(ws) do byname[w.name] = found[order[k]] end
        found = byname
      end
      if #order > #ws then
        error(("%s holds %d weights (%s), the layer takes %d"):format(lw, #order, table.concat(order, ", "), #ws), 0)
      end
      layers.assign(n.spec, found, lw)
    end
  end
end

-- Float32 bytes of the weights that weight_layers lists (what a config
-- built from the file can be justified by).
local function held_bytes(wl)
  local n = 0
  for _, l in ipairs(wl) do
    for _, shape in pairs(l.weights) do
      local e = 4
      for _, d in ipairs(shape) do e = e * d end
      n = n + e
    end
  end
  return n
end

local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end

-- The model of a decoded model_config (graph g parsed, weights loaded or
-- not); sets model.arch so that ac.save / ac.load can rebuild it.
local function finish(g, cfg_json, where, opts, info, held)
  local model
  if opts.native ~= false then
    local p = native.find(g)
    if p then
      local kind, note
      model, kind, note = native.rebuild(g, p, where,
        {native_trunk = opts.native_trunk, verify = opts.verify, held = held})
      info.native, info.trunk, info.note = true, kind, note
      info.k, info.d, info.classes = p.k, p.d, p.classes
    end
  end
  if not model then
    model = topology.module(g)
    model.input_shape = g.input_shape
  end
  if not model.arch then
    model.arch = {constructor = "keras", args = {model_config = cfg_json, native = opts.native ~= false}}
  end
  model:evaluate()
  return model
end

local function parse(cfg_json, where)
  local ok, cfg = decode_config(cfg_json)
  if not ok or type(cfg) ~= "table" then error(("%s: model_config is not valid JSON: %s"):format(where, tostring(cfg)), 0) end
  return cfg, topology.parse(cfg, where)
end

--- Loads a Keras full-model HDF5 file (see the file comment).
function M.load(path, opts)
  local where = "keras.load"
  opts = check_opts(opts, {native = true, verify = true, native_trunk = true}, where)
  local f <close> = h5.open(path, where)
  local cfg_json = f:attr_string("/", "model_config")
  if cfg_json == nil then
    if f:attr_list("/", "layer_names") then
      f:fail("holds weights only (no model_config): use ac.keras.load_weights(model, path)")
    end
    f:fail("has no model_config attribute: not a Keras model file")
  end
  if f:kind("model_weights") ~= "group" then f:fail("has no model_weights group") end
  local lwhere = where .. ": " .. path
  -- the graph is built under the allocation budget the file's weights
  -- justify, so a config asking for absurd sizes fails before it allocates
  local held = held_bytes(f:weight_layers("model_weights"))
  local ok, cfg, g = budget.run(budget.bytes(held), budget.why(held), parse, cfg_json, lwhere)
  if not ok then error(cfg, 0) end
  load_graph_weights(f, g, "model_weights", where)
  local s = g.input_shape
  local info = {
    keras_version = f:attr_string("/", "keras_version") or f:attr_string("model_weights", "keras_version"),
    backend = f:attr_string("/", "backend"),
    layers = #(cfg.config and cfg.config.layers or cfg.config or {}),
    outputs = #g.outputs, name = cfg.config and cfg.config.name,
    in_channels = s[1], height = s[2], width = s[3], native = false,
  }
  local last = g.nodes[g.outputs[1]].shape
  info.classes = #last == 1 and last[1] or nil
  local model = finish(g, cfg_json, lwhere, opts, info, held)
  model.keras_info = info
  return model, info
end

--- The model of a model_config JSON string with fresh weights (what
--- ac.load calls for an imported model saved with ac.save:
--- architecture {"constructor": "keras", "args": {"model_config": ...}}).
function M.from_config(args)
  local where = "keras.from_config"
  if type(args) ~= "table" or type(args.model_config) ~= "string" then
    error(where .. ": expected {model_config = JSON string}", 2)
  end
  local _, g = parse(args.model_config, where)
  return finish(g, args.model_config, where, {native = args.native, native_trunk = false}, {})
end

-- The weight root of a file: "/" for save_weights files, "model_weights"
-- for full models.
local function weight_root(f)
  if f:attr_list("/", "layer_names") then return "/" end
  if f:kind("model_weights") == "group" then return "model_weights" end
  f:fail("has neither layer_names nor a model_weights group: not a Keras weights file")
end

-- load_weights' pairing of the file's layers with the model's, and the copy.
local function pair_and_copy(f, root, wl, model, opts, lwhere)
  local src = match.file_units(wl, lwhere)
  local has_dense = false
  for _, u in ipairs(src) do if u.class == "Dense" then has_dense = true end end
  local trunk_only = opts.trunk_only or not has_dense
  local target = model
  if trunk_only and model.trunk then target = model.trunk end
  local dst = match.native_units(target)
  local pairs_, ignored = match.pair(src, dst, lwhere, {optional_class = "Dense", skip_optional = trunk_only})
  match.copy(pairs_, function(name)
    return (f:layer_weights(root, name, true))
  end, lwhere)
  return #pairs_, {ignored = ignored, trunk_only = trunk_only and true or false}
end

--- Loads Keras weights into a native model (see the file comment).
function M.load_weights(model, path, opts)
  local where = "keras.load_weights"
  opts = check_opts(opts, {trunk_only = true}, where)
  if type(model) ~= "table" or type(model.namedParameters) ~= "function" then
    error(where .. ": expected a model (an nn module) as argument 1, got " .. type(model), 2)
  end
  local f <close> = h5.open(path, where)
  local root = weight_root(f)
  local lwhere = where .. ": " .. path
  local wl = f:weight_layers(root)
  if #wl == 0 then f:fail("holds no layer with weights") end
  -- reading each weight and converting its layout takes up to twice its bytes
  local held = held_bytes(wl)
  local ok, r1, r2 = budget.run(budget.bytes(2 * held), budget.why(held), pair_and_copy, f, root, wl, model, opts, lwhere)
  if not ok then error(r1, 0) end
  return model, {paired = r1, ignored = r2.ignored, trunk_only = r2.trunk_only, layers = count(wl)}
end

return M
