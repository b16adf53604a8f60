--- examples/predict.lua - the facial expression in each image, with its probabilities.
--
--   lua5.4 examples/predict.lua --model Trained_Models/minixception_synthfer.safetensors face1.png face2.jpg
--   lua5.4 examples/predict.lua --model out/train/model.safetensors --json --embeddings face.png
--
-- Each image is loaded (JPEG, PNG, BMP, TGA, GIF, PNM), converted to the
-- model's channel count and resized to its input size, then classified.
local ac = require("adcorre")
local argparse = require("argparse")
local json = require("adcorre.json")
local predict = require("adcorre.predict")

local p = argparse("predict.lua", "Recognise the facial expression in images with a trained model.")
p:option("--model", "Model file (.safetensors from train.lua or ac.save)."):count(1)
p:argument("images", "Image files."):args("+")
p:option("--threads", "Compute threads.", "2"):convert(tonumber)
p:option("--top", "Show the k most likely expressions (text output).", "3"):convert(tonumber)
p:flag("--embeddings", "Also print each image's k embeddings.")
p:flag("--json", "One JSON object per image and line: {image, label, probabilities, [embeddings]}.")
local args = p:parse()

ac.set_num_threads(args.threads)
local model, info = predict.load_model(args.model)
local failures = 0
for _, path in ipairs(args.images) do
  local ok, r = pcall(predict.image, model, info, path, { embeddings = args.embeddings })
  if not ok then
    failures = failures + 1
    io.stderr:write(("predict: %s\n"):format(tostring(r)))
  elseif args.json then
    io.stdout:write(json.encode(r), "\n")
  else
    local order = {}
    for i, name in ipairs(info.classes) do order[i] = { name, r.probabilities[name] } end
    table.sort(order, function(a, b) return a[2] > b[2] end)
    local parts = {}
    for i = 1, math.min(args.top, #order) do
      parts[#parts + 1] = ("%s %.1f%%"):format(order[i][1], 100 * order[i][2])
    end
    io.stdout:write(("%s: %s   (%s)\n"):format(path, r.label, table.concat(parts, ", ")))
    if r.embeddings then
      for j, e in ipairs(r.embeddings) do
        local head = {}
        for i = 1, math.min(6, #e) do head[i] = ("%.3f"):format(e[i]) end
        io.stdout:write(("  embedding %d: [%s, ...] (%d values)\n"):format(j, table.concat(head, ", "), #e))
      end
    end
  end
end
os.exit(failures == 0 and 0 or 1)
