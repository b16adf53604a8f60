--- examples/export.lua - writes a trained model as an ONNX file, for
-- ONNX Runtime, onnxruntime-web, OpenCV's dnn module, ...
--
--   lua5.4 examples/export.lua --model Trained_Models/minixception_synthfer.safetensors --onnx fer.onnx
--   lua5.4 examples/export.lua --model out/train/model.safetensors --onnx m.onnx --probabilities --json
--   lua5.4 examples/export.lua --model fer2013_mini_XCEPTION.h5 --onnx m.onnx --classes fer2013
--
-- The graph: input float32 [N, C, H, W] (pixels in the model's input
-- range, [0, 1] for models trained here), outputs logits [N, classes] and
-- embeddings [N, k * d] (and probabilities with --probabilities); class
-- names, input range and adcorre version in the metadata. A Keras model
-- other than the Ad-Corre network keeps its own outputs (logits and
-- probabilities for a softmax classifier; see adcorre.onnx.export_keras).
-- See ac.onnx.
local ac = require("adcorre")
local argparse = require("argparse")
local json = require("adcorre.json")
local predict = require("adcorre.predict")

local p = argparse("export.lua", "Export a trained model to ONNX (opset 13).")
p:option("--model", "Model file: .safetensors (train.lua, ac.save, convert.lua) or Keras .h5."):count(1)
p:option("--onnx", "Output .onnx file."):count(1)
p:flag("--probabilities", "Add a softmax output 'probabilities'.")
p:option("--classes", "Class names of a Keras model's outputs: fer2013, rafdb, affectnet, canonical or NAME,...")
p:option("--input-range", "Input range LO,HI written to the metadata (default: the model's, else 0,1).")
p:flag("--json", "Print one JSON object: {onnx, nodes, initializers, bytes, outputs, classes}.")
local args = p:parse()

local function fail(msg)
  io.stderr:write("export: ", tostring(msg), "\n")
  os.exit(1)
end

local ok, model, info = pcall(predict.load_model, args.model,
  {classes = args.classes, input_range = args.input_range})
if not ok then fail(model) end
local range = args.input_range and info.input_range or nil
local g
ok, g = pcall(ac.onnx.export, model, args.onnx,
  {probabilities = args.probabilities, classes = info.classes, input_range = range})
if not ok then fail(g) end
local f = io.open(args.onnx, "rb")
local bytes = f and f:seek("end") or 0
if f then f:close() end
local outs = {}
for i, o in ipairs(g.outputs) do outs[i] = o.name end
if args.json then
  io.stdout:write(json.encode({onnx = args.onnx, nodes = #g.nodes, initializers = #g.initializers,
    bytes = bytes, outputs = outs, classes = info.classes}), "\n")
else
  io.stdout:write(("%s: %d nodes, %d initializers, %.1f MB; input [N, %d, %d, %d]; outputs %s\n"):format(
    args.onnx, #g.nodes, #g.initializers, bytes / 1e6, g.inputs[1].dims[2], g.inputs[1].dims[3],
    g.inputs[1].dims[4], table.concat(outs, ", ")))
end
