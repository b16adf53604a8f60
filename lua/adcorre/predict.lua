--- adcorre.predict: classifying images with a trained model (behind
-- examples/predict.lua, and handy in the REPL).
--
--   local predict = require("adcorre.predict")
--   local model, info = predict.load_model("out/train/model.safetensors")
--   local r = predict.image(model, info, "face.png")
--   print(r.label, r.probabilities.Happy)
local ac = require("adcorre")

local M = {}

--- Loads a model file; info = {classes, channels, size} from the file's
-- metadata (or from the architecture when the file has none).
function M.load_model(path)
  local model, extra = ac.load(path)
  extra = extra or {}
  local arch = model.arch and model.arch.args or {}
  local shape = model.input_shape or {}
  local info = {
    classes = extra.classes,
    channels = extra.channels or arch.in_channels or shape[1] or 1,
    size = extra.size or shape[2] or 48,
  }
  if not info.classes then
    local C = arch.classes or 7
    info.classes = {}
    for i = 1, C do info.classes[i] = ac.classes[i] or tostring(i) end
  end
  model:evaluate()
  return model, info
end

--- The model's input for one image file: [1, C, size, size] float32 in [0, 1].
function M.prepare(info, path)
  local img = ac.image.load(path, info.channels)
  local s = img:shape()
  if s[2] ~= info.size or s[3] ~= info.size then img = ac.image.resize(img, info.size, info.size) end
  return img:view(1, info.channels, info.size, info.size)
end

--- Softmax of a logits row as a Lua array.
local function softmax(z)
  local m = -math.huge
  for i = 1, #z do if z[i] > m then m = z[i] end end
  local s, p = 0, {}
  for i = 1, #z do p[i] = math.exp(z[i] - m); s = s + p[i] end
  for i = 1, #z do p[i] = p[i] / s end
  return p
end

--- {image, label, probabilities = {name = p}, [embeddings = {{...}, ...}]}
function M.image(model, info, path, opts)
  opts = opts or {}
  local x = M.prepare(info, path)
  local out = model:forward(x)
  local p = softmax(out.logits[1]:totable())
  local best = 1
  for i = 2, #p do if p[i] > p[best] then best = i end end
  local r = { image = path, label = info.classes[best], probabilities = {} }
  for i, name in ipairs(info.classes) do r.probabilities[name] = p[i] end
  if opts.embeddings then
    r.embeddings = {}
    for j, e in ipairs(out.embeddings) do r.embeddings[j] = e[1]:totable() end
  end
  return r
end

return M
