--- adcorre.onnx: ONNX export and import (ac.onnx).
--
--   ac.onnx.export(model, "model.onnx" [, opts])
--   local g = ac.onnx.load("model.onnx")   -- an nn module running the graph
--   local out = g:forward(x)               -- {logits =, embeddings = {E_1..E_k}, ...}
--
-- The exported graph (opset 13, IR version 8):
--   input        float32 [N, C, H, W], N symbolic
--   logits       [N, classes]
--   embeddings   [N, k * d]: the k L2-normalised heads concatenated, in order
--   probabilities [N, classes] (softmax), with opts.probabilities = true
-- Batch norms that follow a convolution are folded into it; Dropout is left
-- out. metadata_props: classes (JSON array), input_range ("lo,hi"),
-- input_shape ("C,H,W"), k, d, architecture, adcorre_version.
-- A model imported from Keras that is not the Ad-Corre network (a
-- keras.Graph) has its own outputs (adcorre.onnx.export_keras: logits and
-- probabilities for a softmax classifier, else output, or one per Keras
-- output named after its layer) and keras_outputs (its output layers, JSON).
--
-- opts: probabilities (boolean), classes (array of names; default the
-- canonical FER names), input_range ({lo, hi}; default model.input_range or
-- {0, 1}), input_shape ({C, H, W}; default model.input_shape), graph_name.
-- The file is written to a temporary name and renamed.
local ac = require("adcorre")
local core = require("adcorre.core")
local json = require("adcorre.json")
local export = require("adcorre.onnx.export")

local M = {}

M.OPSET = 13
M.IR_VERSION = 8

local OPTS = {probabilities = true, classes = true, input_range = true, input_shape = true, graph_name = true}

local function check_opts(o)
  if o == nil then return {} end
  if type(o) ~= "table" then error("onnx.export: options must be a table, got " .. type(o), 3) end
  for k in pairs(o) do
    if not OPTS[k] then error(("onnx.export: unknown option '%s'"):format(tostring(k)), 3) end
  end
  return o
end

local function default_classes(n)
  local c = {}
  for i = 1, n do c[i] = ac.classes[i] or tostring(i) end
  return c
end

--- Writes model as an ONNX file; returns the graph table (for inspection).
function M.export(model, path, opts)
  opts = check_opts(opts)
  if type(model) ~= "table" or type(model.forward) ~= "function" then
    error("onnx.export: model must be an nn module, got " .. type(model), 2)
  end
  if type(path) ~= "string" then error("onnx.export: path must be a string, got " .. type(path), 2) end
  local shape = opts.input_shape or model.input_shape
  if type(shape) ~= "table" or #shape ~= 3 then
    error("onnx.export: the model has no input_shape; pass opts.input_shape = {C, H, W}", 2)
  end
  local range = opts.input_range or model.input_range or {0, 1}
  local was_training = model.train
  model:evaluate()
  local ok, B, outputs = pcall(export.build, model, shape, opts)
  if was_training then model:training() end
  if not ok then error(B, 0) end
  local classes = model.classes
  local kinfo = model.keras_info or {}
  local nclasses = type(classes) == "number" and classes or kinfo.classes
  local names = opts.classes or default_classes(nclasses or outputs[1].dims[2])
  local meta = {
    {"classes", json.encode(names)},
    {"input_range", ("%.17g,%.17g"):format(range[1], range[2])},
    {"input_shape", table.concat(shape, ",")},
    {"input_layout", "NCHW"},
    {"adcorre_version", ac.version},
  }
  if model.k then
    meta[#meta + 1] = {"k", tostring(model.k)}
    meta[#meta + 1] = {"d", tostring(model.d)}
  end
  if model.arch and model.arch.constructor then meta[#meta + 1] = {"architecture", model.arch.constructor} end
  if model.__typename == "keras.Graph" then
    local names = {}
    for i, o in ipairs(model.outputs) do names[i] = model.nodes[o].name end
    meta[#meta + 1] = {"keras_outputs", json.encode(names)}
  end
  local g = {
    ir_version = M.IR_VERSION, opset = M.OPSET,
    producer_name = "adcorre", producer_version = ac.version,
    graph_name = opts.graph_name or kinfo.name or (model.arch and model.arch.constructor) or "adcorre",
    metadata = meta, nodes = B.nodes, initializers = B.inits,
    inputs = {{name = "input", elem_type = 1, dims = {"N", shape[1], shape[2], shape[3]}}},
    outputs = outputs,
  }
  for _, o in ipairs(g.outputs) do o.elem_type = 1 end
  core.onnx.save(path, g)
  return g
end

--- Reads an ONNX file into a runnable module (see adcorre.onnx.graph).
function M.load(path)
  if type(path) ~= "string" then error("onnx.load: path must be a string, got " .. type(path), 2) end
  return require("adcorre.onnx.graph").new(core.onnx.load(path), path)
end

--- The decoded file as a plain table (nodes, initializers, metadata, ...).
function M.read(path)
  return core.onnx.load(path)
end

return M
