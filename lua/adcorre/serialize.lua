--[==[
adcorre.serialize - model files and checkpoints in the safetensors format.

  ac.save(path, model [, extra])      -- architecture + parameters + buffers
  local model = ac.load(path)         -- rebuilds the model (evaluate mode)
  ac.load_weights(model, path)        -- weights only, into an existing model;
                                      -- every name / shape / dtype mismatch is reported
  ac.save_tensors(path, {name = tensor, ...} [, meta])
  local tensors, meta = ac.load_tensors(path)
  ac.save_checkpoint(path, {model = m, optim = opt, epoch = 3, ...})
  local ck = ac.load_checkpoint(path [, model [, opt]])

Tensor names are stable: those of module:namedParameters() and
module:namedBuffers(), i.e. the path of a module in the model tree, made of
the module's `name` field when it has one (the models of ac.models name every
layer as Keras does: "block1_conv1", ...) or its 1-based position in its
container, then the tensor's field: "trunk.block1_conv1.weight",
"trunk.block1_conv1_bn.running_mean".

Metadata (all strings, as safetensors requires):
  "format"        "adcorre"
  "format_version" "1"
  "architecture"  JSON {"constructor": "minixception", "args": {...}} for the
                  models of ac.models (model.arch), or {"constructor": "nn",
                  "args": {type=, args=, name=, modules=[...]}} for any tree of
                  ac.nn modules (their constructor arguments, module._args)
  "extra"         JSON of the optional `extra` table
]==]

local core = require("adcorre.core")
local budget = require("adcorre.budget")

local M = {}

------------------------------------------------------------------------------
-- JSON of metadata values (nil/boolean/number/string/array/object), in the
-- exact form of adcorre.json: floats "%.17g", NaN/infinity an error.
------------------------------------------------------------------------------

local json = require("adcorre.json")
M.json = json

local EXACT = {exact = true}

local function json_encode(v)
  local ok, s = pcall(json.encode, v, EXACT)
  if not ok then error(s, 0) end
  return s
end

------------------------------------------------------------------------------
-- named tensors of a module tree
------------------------------------------------------------------------------

--- Named tensors of a model: an array of {name=, tensor=, kind="param"|"buffer"}
--- in a deterministic order: the parameters (module:namedParameters()), then
--- the buffers (module:namedBuffers()), both depth first in container order.
function M.named_tensors(model)
  if type(model) ~= "table" or type(model.namedParameters) ~= "function" then
    error("serialize: expected an nn module (with namedParameters), got " .. type(model), 0)
  end
  local out, seen = {}, {}
  local function add(name, t, kind)
    if seen[name] then error("serialize: two tensors are named '" .. name .. "'", 0) end
    seen[name] = true
    out[#out + 1] = {name = name, tensor = t, kind = kind}
  end
  for _, e in ipairs(model:namedParameters()) do add(e.name, e.param, "param") end
  if model.namedBuffers then
    for _, e in ipairs(model:namedBuffers()) do add(e.name, e.tensor, "buffer") end
  end
  return out
end

local function shape_str(s)
  local p = {}
  for i, d in ipairs(s) do p[i] = tostring(d) end
  return "[" .. table.concat(p, ", ") .. "]"
end

local ST_DTYPE = {float32 = "F32", int64 = "I64", uint8 = "U8"}

------------------------------------------------------------------------------
-- plain tensor files
------------------------------------------------------------------------------

local function check_path(path, where)
  if type(path) ~= "string" or path == "" then
    error(where .. ": path must be a non-empty string, got " .. type(path), 3)
  end
end

-- core.safetensors.load / info with the caller's name in the message
-- ("load: m.safetensors: ...") instead of the binding's.
local function read_file(fn, path, where)
  local ok, a, b = pcall(fn, path)
  if not ok then
    error(where .. ": " .. tostring(a):gsub("^[^:]*%.lua:%d+: ", ""):gsub("^safetensors_[%w_]+: ", ""), 0)
  end
  return a, b
end

--- Writes a table name -> tensor (sorted by name) with optional metadata:
--- values that are not strings are stored as JSON.
function M.save_tensors(path, tensors, meta)
  check_path(path, "save_tensors")
  if type(tensors) ~= "table" then error("save_tensors: tensors must be a table name -> tensor", 2) end
  local names = {}
  for k, v in pairs(tensors) do
    if type(k) ~= "string" then error("save_tensors: tensor names must be strings, got " .. type(k), 2) end
    if not core.tensor.is_tensor(v) then error("save_tensors: '" .. k .. "' is not a tensor (" .. type(v) .. ")", 2) end
    names[#names + 1] = k
  end
  table.sort(names)
  local list = {}
  for i, k in ipairs(names) do list[i] = tensors[k] end
  local m = {}
  for k, v in pairs(meta or {}) do m[k] = type(v) == "string" and v or json_encode(v) end
  core.safetensors.save(path, names, list, m)
end

--- Reads every tensor of a safetensors file: tensors (name -> tensor), metadata, names in file order.
function M.load_tensors(path)
  check_path(path, "load_tensors")
  return core.safetensors.load(path)
end

------------------------------------------------------------------------------
-- models
------------------------------------------------------------------------------

-- Architecture of a plain ac.nn module tree: type, constructor arguments,
-- name and children, recursively.
local function describe(m, path)
  if type(m) ~= "table" or type(m.__typename) ~= "string" then
    error("save: " .. path .. " is not an nn module", 0)
  end
  local d = {type = m.__typename, args = m._args or {}, name = m.name}
  local ok, err = pcall(json.encode, d.args, EXACT)
  if not ok then error("save: constructor arguments of " .. path .. " (" .. m.__typename .. "): " .. err, 0) end
  if m.modules then
    d.modules = {}
    for i, c in ipairs(m.modules) do d.modules[i] = describe(c, path .. "." .. i) end
  end
  return d
end

local function rebuild(d, path)
  local nn = require("adcorre.nn")
  if type(d) ~= "table" or type(d.type) ~= "string" then error("bad module description at " .. path, 0) end
  local cname = d.type:gsub("^nn%.", "")
  local ctor = nn[cname]
  if ctor == nil then error("unknown module type '" .. d.type .. "' at " .. path, 0) end
  local args = d.args or {}
  local m = ctor(table.unpack(args, 1, args.n or #args))
  m.name = d.name
  -- containers that build their own children (e.g. SeparableConv2d) keep them
  if not (m.modules and #m.modules > 0) then
    for i, c in ipairs(d.modules or {}) do m:add(rebuild(c, path .. "." .. i)) end
  end
  return m
end

local function architecture(model)
  local a = type(model) == "table" and model.arch or nil
  if type(a) == "table" and type(a.constructor) == "string" then return a end
  if type(model) == "table" and type(model.__typename) == "string" then
    return {constructor = "nn", args = describe(model, "model")}
  end
  error("save: expected a model (an nn module or a model of ac.models), got " .. type(model), 3)
end

local function model_meta(model, extra)
  local a = architecture(model)
  local meta = {format = "adcorre", format_version = "1",
                architecture = json_encode({constructor = a.constructor, args = a.args or {}})}
  if extra ~= nil then
    if type(extra) ~= "table" then error("save: extra must be a table, got " .. type(extra), 3) end
    meta.extra = json_encode(extra)
  end
  return meta
end

--- Saves a model: architecture (JSON in the metadata), parameters and buffers.
function M.save(path, model, extra)
  check_path(path, "save")
  local meta = model_meta(model, extra)
  local names, list = {}, {}
  for i, e in ipairs(M.named_tensors(model)) do names[i] = e.name; list[i] = e.tensor end
  core.safetensors.save(path, names, list, meta)
end

-- Copies file tensors into the model's tensors, after checking every name,
-- shape and dtype; all mismatches are reported in one error. `prefix` selects
-- the file tensors under "prefix" (checkpoints).
local function assign(model, path, info, tensors, prefix, opts, where)
  opts = opts or {}
  local strict = opts.strict ~= false
  local want = M.named_tensors(model)
  local problems = {}
  local file_names = {}
  for name in pairs(info) do
    if prefix == "" or name:sub(1, #prefix) == prefix then file_names[name:sub(#prefix + 1)] = name end
  end
  local matched = {}
  for _, e in ipairs(want) do
    local fname = file_names[e.name]
    if not fname then
      if strict or e.kind == "param" then
        problems[#problems + 1] = string.format("missing in file: %s %s %s", e.name, shape_str(e.tensor:shape()),
          e.tensor:dtype())
      end
    else
      matched[e.name] = true
      local fi = info[fname]
      local ms = e.tensor:shape()
      if shape_str(ms) ~= shape_str(fi.shape) then
        problems[#problems + 1] = string.format("shape mismatch: %s model %s file %s", e.name, shape_str(ms),
          shape_str(fi.shape))
      end
      if ST_DTYPE[e.tensor:dtype()] ~= fi.dtype then
        problems[#problems + 1] = string.format("dtype mismatch: %s model %s file %s", e.name, e.tensor:dtype(),
          fi.dtype)
      end
    end
  end
  if strict then
    local extra = {}
    for short in pairs(file_names) do if not matched[short] then extra[#extra + 1] = short end end
    table.sort(extra)
    for _, n in ipairs(extra) do
      problems[#problems + 1] = string.format("unexpected in file: %s %s %s", n, shape_str(info[file_names[n]].shape),
        info[file_names[n]].dtype)
    end
  end
  if #problems > 0 then
    error(string.format("%s: %s does not match the model (%d problem%s):\n  %s", where, path, #problems,
      #problems == 1 and "" or "s", table.concat(problems, "\n  ")), 0)
  end
  tensors = tensors or core.safetensors.load(path)
  for _, e in ipairs(want) do
    local fname = file_names[e.name]
    if fname then e.tensor:copy(tensors[fname]) end
  end
end

--- Loads the weights (parameters and buffers) of a file into an existing model.
--- opts.strict = false ignores extra file tensors and missing buffers.
function M.load_weights(model, path, opts)
  check_path(path, "load_weights")
  local info = read_file(core.safetensors.info, path, "load_weights")
  assign(model, path, info, nil, "", opts, "load_weights")
  return model
end

-- Bytes of tensor data a file holds (what can justify a rebuilt model's size).
local function data_bytes(tensors)
  local n = 0
  for _, t in pairs(tensors) do n = n + t:numel() * (t:dtype() == "uint8" and 1 or t:dtype() == "int64" and 8 or 4) end
  return n
end

-- A constructor's argument error as the file's field: "models.minixception: d
-- must be >= 2, got -5" -> "architecture field d = -5 (must be >= 2)".
local function field_error(msg)
  msg = tostring(msg):gsub("^[^:]*%.lua:%d+: ", "")
  local key, rule, got = msg:match("^models%.[%w_]+: ([%w_]+) must be (.-), got (.+)$")
  if key then return ("architecture field %s = %s (must be %s)"):format(key, got, rule) end
  local opt = msg:match("^models%.[%w_]+: unknown option '(.-)'$")
  if opt then return ("architecture field %s is not an option of this model"):format(opt) end
  return msg:gsub("^models%.[%w_]+: ", "architecture: ")
end

-- Decodes a JSON metadata field, naming the file and the field on failure.
local function meta_json(meta, key, path, where)
  local ok, v = pcall(json.decode, meta[key])
  if not ok then error(("%s: %s: metadata field '%s' is not valid JSON: %s"):format(where, path, key,
    tostring(v):gsub("^[^:]*%.lua:%d+: ", "")), 0) end
  return v
end

-- Rebuilds the model the metadata describes. While the constructor runs, the
-- thread's allocation budget is what the file's tensors can justify (the
-- parameters and their gradients, twice the file's tensor bytes, plus
-- room for small state), so an architecture that asks for absurd sizes
-- (10^9 heads, a 10^9-class classifier) fails before it takes memory.
local function build(meta, path, where, tensors)
  if not meta.architecture then
    error(where .. ": " .. path .. " has no architecture in its metadata (weights only: use " ..
          "ac.load_weights(model, path))", 0)
  end
  local ok, a = pcall(json.decode, meta.architecture)
  if not ok or type(a) ~= "table" or type(a.constructor) ~= "string" then
    error(where .. ": " .. path .. ": bad architecture metadata: " .. tostring(ok and "not an object" or a), 0)
  end
  local ctor
  if a.constructor ~= "nn" then
    ctor = require("adcorre.models")[a.constructor]
    if type(ctor) ~= "function" then
      error(where .. ": " .. path .. ": unknown architecture '" .. a.constructor .. "'", 0)
    end
  end
  local held = data_bytes(tensors)
  local limit, why = budget.bytes(held), budget.why(held, "tensors")
  local ok2, m
  if a.constructor == "nn" then
    ok2, m = budget.run(limit, why, rebuild, a.args, "model")
  else
    ok2, m = budget.run(limit, why, ctor, a.args or {})
  end
  if not ok2 then
    local msg = tostring(m)
    if budget.exceeded(msg) then
      error(("%s: %s: the architecture asks for more parameters than the file holds (%d bytes of tensors): %s"):format(
        where, path, held, budget.strip(msg)), 0)
    end
    if a.constructor == "nn" then error(where .. ": " .. path .. ": cannot rebuild the architecture: " .. msg, 0) end
    error(where .. ": " .. path .. ": " .. field_error(msg), 0)
  end
  return m
end

-- The number of outputs of a rebuilt model's classifier, when it has one.
local function n_outputs(model)
  local a = model.arch and model.arch.args
  if a and math.type(a.classes) == "integer" then return a.classes end
  return nil
end

-- Class names stored with a model must be as many as its outputs.
local function check_classes(extra, model, path, where)
  if type(extra) ~= "table" or extra.classes == nil then return end
  if type(extra.classes) ~= "table" then
    error(("%s: %s: metadata field classes must be a list of names, got %s"):format(where, path, type(extra.classes)), 0)
  end
  local C = n_outputs(model)
  if C and #extra.classes ~= C then
    error(("%s: %s: the file names %d classes but its classifier has %d outputs"):format(where, path,
      #extra.classes, C), 0)
  end
end

--- Rebuilds a model saved by ac.save and loads its weights. The model is
--- returned in evaluate mode; `extra` (if saved) is the second result.
function M.load(path)
  check_path(path, "load")
  local tensors, meta = read_file(core.safetensors.load, path, "load")
  local extra
  if meta.extra then extra = meta_json(meta, "extra", path, "load") end
  local model = build(meta, path, "load", tensors)
  local info = {}
  for name, t in pairs(tensors) do info[name] = {shape = t:shape(), dtype = ST_DTYPE[t:dtype()]} end
  assign(model, path, info, tensors, "", nil, "load")
  check_classes(extra, model, path, "load")
  if model.evaluate then model:evaluate() end
  return model, extra
end

------------------------------------------------------------------------------
-- checkpoints: model + optimiser state + anything JSON-able
------------------------------------------------------------------------------

--- ck = {model = m, optim = opt (optional), epoch = ..., any other JSON-able fields}
function M.save_checkpoint(path, ck)
  check_path(path, "save_checkpoint")
  if type(ck) ~= "table" or ck.model == nil then
    error("save_checkpoint: expected {model = model, optim = opt, ...}", 2)
  end
  local names, list = {}, {}
  for _, e in ipairs(M.named_tensors(ck.model)) do
    names[#names + 1] = "model/" .. e.name
    list[#list + 1] = e.tensor
  end
  local meta = model_meta(ck.model, nil)
  if ck.optim ~= nil then
    local st = ck.optim:state()
    local keys = {}
    for k in pairs(st.tensors) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      names[#names + 1] = "optim/" .. k
      list[#list + 1] = st.tensors[k]
    end
    st.tensors = nil
    meta.optim = json_encode(st)
  end
  local rest = {}
  for k, v in pairs(ck) do if k ~= "model" and k ~= "optim" then rest[k] = v end end
  meta.extra = json_encode(rest)
  core.safetensors.save(path, names, list, meta)
end

--- Returns {model = ..., optim_state = ..., <extra fields>}. With `model`
--- given, loads into it (else rebuilds it); with `opt` given, restores its state.
function M.load_checkpoint(path, model, opt)
  check_path(path, "load_checkpoint")
  local tensors, meta = read_file(core.safetensors.load, path, "load_checkpoint")
  local ck = meta.extra and meta_json(meta, "extra", path, "load_checkpoint") or {}
  if type(ck) ~= "table" then error("load_checkpoint: " .. path .. ": metadata field 'extra' is not an object", 0) end
  model = model or build(meta, path, "load_checkpoint", tensors)
  local info = {}
  for name, t in pairs(tensors) do info[name] = {shape = t:shape(), dtype = ST_DTYPE[t:dtype()]} end
  assign(model, path, info, tensors, "model/", nil, "load_checkpoint")
  check_classes(ck, model, path, "load_checkpoint")
  ck.model = model
  if meta.optim then
    local st = meta_json(meta, "optim", path, "load_checkpoint")
    st.tensors = {}
    for name, t in pairs(tensors) do
      if name:sub(1, 6) == "optim/" then st.tensors[name:sub(7)] = t end
    end
    ck.optim_state = st
    if opt then opt:load_state(st) end
  elseif opt then
    error("load_checkpoint: " .. path .. " holds no optimiser state", 2)
  end
  return ck
end

return M
