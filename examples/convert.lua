--- examples/convert.lua - a Keras HDF5 model as a native model file.
--
--   lua5.4 examples/convert.lua authors_affectnet.h5 affectnet.safetensors --classes canonical --input-range 0,1
--   lua5.4 examples/convert.lua fer2013_mini_XCEPTION.h5 mini.safetensors --classes fer2013 --input-range -1,1
--
-- The output is what ac.save writes (architecture + weights); its metadata
-- keeps the class names and the input range, so predict.lua and
-- evaluate.lua need no flags for it afterwards.
local ac = require("adcorre")
local argparse = require("argparse")
local json = require("adcorre.json")
local conventions = require("adcorre.keras.conventions")

local p = argparse("convert.lua", "Convert a Keras .h5 model into an adcorre .safetensors model.")
p:argument("input", "Keras full-model file (model.save(...h5)).")
p:argument("output", "Model file to write (.safetensors).")
p:option("--classes", "Class names of the outputs: fer2013, rafdb, affectnet, canonical or NAME,NAME,...",
  "canonical")
p:option("--input-range", "Input values for black,white the model was trained on, e.g. 0,1 or -1,1.", "0,1")
p:flag("--json", "Print a JSON summary on stdout.")
local args = p:parse()

local ok, err = pcall(function()
  local model, info = ac.keras.load(args.input)
  local C = info.classes or model.classes
  if not C then error("convert: " .. args.input .. ": the first output is not a class vector", 0) end
  local extra = {
    classes = conventions.classes(args.classes, C, "--classes"),
    input_range = conventions.input_range(args.input_range, "--input-range"),
    channels = info.in_channels, height = info.height, width = info.width,
    size = info.height == info.width and info.height or nil,
    source = args.input, keras_version = info.keras_version,
  }
  ac.save(args.output, model, extra)
  local summary = {input = args.input, output = args.output, native = info.native, trunk = info.trunk,
                   classes = extra.classes, input_range = extra.input_range, layers = info.layers,
                   keras_version = info.keras_version, parameters = model:nparams()}
  if args.json then
    io.stdout:write(json.encode(summary), "\n")
  else
    io.stdout:write(("%s -> %s: %s, %d parameters, classes %s, input range %g,%g\n"):format(args.input,
      args.output, info.native and ("native AdCorreNet (" .. info.trunk .. " trunk)") or "Keras graph",
      summary.parameters, table.concat(extra.classes, ","), extra.input_range[1], extra.input_range[2]))
  end
end)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
