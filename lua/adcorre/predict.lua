--- adcorre.predict: classifying the faces in pictures with a trained model
-- (behind examples/predict.lua, and handy in the REPL).
--
--   local predict = require("adcorre.predict")
--   local model, info = predict.load_model("out/train/model.safetensors")
--   local r = predict.image(model, info, "group.jpg")          -- detects, crops, classifies
--   for _, f in ipairs(r.faces) do print(f.box[1], f.box[2], f.label, f.probabilities[f.label]) end
--   predict.annotate(ac.image.load("group.jpg"), r, "group_annotated.png")
--
-- A result: {image, width, height, faces = {{box = {x, y, w, h}, detected,
-- label, probabilities = {name = p}, [uncertain], [clipped]}, ...}, label,
-- probabilities} where the top-level label and probabilities are those of
-- the largest face. Boxes are 0-based pixels of the upright picture.
local ac = require("adcorre")
local core = require("adcorre.core")
local face = require("adcorre.face")

local M = {}

local function is_keras(path)
  local l = path:lower()
  return l:match("%.h5$") or l:match("%.hdf5$")
end
M.is_keras = is_keras

--- Loads a model file: ours (.safetensors) or Keras' (.h5, see ac.keras.load).
-- info = {classes, channels, size, input_range}: from the file's metadata
-- (or the architecture), overridden by opts.classes (a named order or
-- NAME,NAME,...; see adcorre.keras.conventions) and opts.input_range
-- ("LO,HI" or {lo, hi}: what the model takes for black and white).
function M.load_model(path, opts)
  opts = opts or {}
  local conv = require("adcorre.keras.conventions")
  local model, extra
  if is_keras(path) then
    local k
    model, k = ac.keras.load(path)
    extra = {channels = k.in_channels, size = k.height}
    model.keras_classes = k.classes
  else
    model, extra = ac.load(path)
  end
  extra = extra or {}
  local arch = model.arch and model.arch.args or {}
  local shape = model.input_shape or {}
  local info = {
    classes = extra.classes,
    channels = extra.channels or arch.in_channels or shape[1] or 1,
    size = extra.size or shape[2] or 48,
    input_range = conv.input_range(opts.input_range or extra.input_range, "--input-range"),
  }
  local C = model.classes or model.keras_classes or arch.classes or 7
  if opts.classes then
    info.classes = conv.classes(opts.classes, C, "--classes")
  elseif not info.classes then
    info.classes = {}
    for i = 1, C do info.classes[i] = ac.classes[i] or tostring(i) end
  end
  model:evaluate()
  return model, info
end

--- The model's input for one whole image file: [1, C, size, size], black to
--- white spanning info.input_range (default [0, 1]).
function M.prepare(info, path)
  local img = ac.image.load(path, info.channels)
  local s = img:shape()
  if s[2] ~= info.size or s[3] ~= info.size then img = ac.image.resize(img, info.size, info.size) end
  local x = img:view(1, info.channels, info.size, info.size)
  local r = info.input_range
  if r and (r[1] ~= 0 or r[2] ~= 1) then x = x * (r[2] - r[1]) + r[1] end
  return x
end

--- Softmax of a logits row as a Lua array.
function M.softmax(z)
  local m = -math.huge
  for i = 1, #z do if z[i] > m then m = z[i] end end
  local s, p = 0, {}
  for i = 1, #z do p[i] = math.exp(z[i] - m); s = s + p[i] end
  for i = 1, #z do p[i] = p[i] / s end
  return p
end

local CASCADE = { haar = "frontalface_default", lbp = "lbp_frontalface_improved" }

--- Faces of a picture for predict's detect modes: "auto" and "haar" (the
-- Haar cascade, or opts.cascade), "lbp", "none" (no detection: {}).
function M.detect(img, opts)
  opts = opts or {}
  local mode = opts.detect or "auto"
  if mode == "none" then return {} end
  if not CASCADE[mode] and mode ~= "auto" then
    error(("predict: --detect must be auto, haar, lbp or none, got '%s'"):format(tostring(mode)), 2)
  end
  return face.detect(img, {
    cascade = opts.cascade or CASCADE[mode] or CASCADE.haar,
    scale = opts.scale, min_neighbors = opts.min_neighbors, min_size = opts.min_size,
  })
end

--- The square crop of a box with `margin` (a fraction of the box side on
-- every side): x, y, side (0-based; may reach outside the picture).
function M.crop_box(b, margin)
  local side = math.max(b[3], b[4])
  local s = math.floor(side * (1 + 2 * (margin or 0.2)) + 0.5)
  local cx, cy = b[1] + b[3] / 2, b[2] + b[4] / 2
  return math.floor(cx - s / 2 + 0.5), math.floor(cy - s / 2 + 0.5), s
end

--- A box clipped to a W x H picture; nil when nothing is left. Second
-- value: whether it was clipped.
local function clip(b, W, H)
  local x0, y0 = math.max(0, b[1]), math.max(0, b[2])
  local x1, y1 = math.min(W, b[1] + b[3]), math.min(H, b[2] + b[4])
  if x1 <= x0 or y1 <= y0 then return nil, true end
  local c = { x0, y0, x1 - x0, y1 - y0 }
  return c, c[1] ~= b[1] or c[2] ~= b[2] or c[3] ~= b[3] or c[4] ~= b[4]
end

--- Classifies the faces of a picture tensor (as ac.image.load returns it).
-- opts: detect ("auto"), cascade, scale, min_neighbors, min_size, boxes
-- (given {x, y, w, h} boxes instead of detection), margin (0.2), min_prob,
-- input_range (default info.input_range, else {0, 1}), classes (names overriding info.classes),
-- embeddings (also return each face's k embeddings).
function M.faces(model, info, img, opts)
  opts = opts or {}
  if img:dim() == 2 then img = img:view(1, img:size(1), img:size(2)) end
  local s = img:shape()
  local H, W = s[2], s[3]
  local classes = opts.classes or info.classes
  local list, notes = {}, {}
  if opts.boxes then
    for i, b in ipairs(opts.boxes) do
      local c, clipped = clip(b, W, H)
      if not c then
        notes[#notes + 1] = ("box %d (%d,%d,%d,%d) is outside the %dx%d picture: skipped"):format(
          i, b[1], b[2], b[3], b[4], W, H)
      else
        if clipped then
          notes[#notes + 1] = ("box %d (%d,%d,%d,%d) clipped to the %dx%d picture"):format(i, b[1], b[2], b[3], b[4], W, H)
        end
        list[#list + 1] = { box = c, detected = false, given = true, clipped = clipped or nil }
      end
    end
  else
    local mode = opts.detect or "auto"
    local face_sized = math.max(W, H) <= 2 * info.size
    if mode ~= "none" and not (mode == "auto" and face_sized) then
      for _, b in ipairs(M.detect(img, opts)) do
        list[#list + 1] = { box = { b.x, b.y, b.w, b.h }, detected = true, score = b.score }
      end
    end
    if #list == 0 then list[1] = { box = { 0, 0, W, H }, detected = false } end
  end
  local r = { width = W, height = H, faces = list, notes = notes[1] and notes or nil }
  if #list == 0 then return r end
  -- every face through one batch forward
  local C, S = info.channels, info.size
  local lo, hi = 0, 1
  local range = opts.input_range or info.input_range
  if range then lo, hi = range[1], range[2] end
  local x = ac.zeros(#list, C, S, S)
  for i, f in ipairs(list) do
    local crop
    if f.detected then
      local cx, cy, side = M.crop_box(f.box, opts.margin)
      crop = ac.image.crop(img, cy + 1, cx + 1, side, side)
    else
      crop = ac.image.crop(img, f.box[2] + 1, f.box[1] + 1, f.box[4], f.box[3])
    end
    crop = ac.image.to_channels(crop, C)
    x[i]:copy(ac.image.resize(crop, S, S))
  end
  if lo ~= 0 or hi ~= 1 then x = x * (hi - lo) + lo end
  local out = model:forward(x)
  -- a plain Keras graph gives its (first) output, already a softmax
  local probs = not out.logits and (ac.is_tensor(out) and out or out[1]):totable()
  local logits = out.logits and out.logits:totable()
  local best_area = -1
  for i, f in ipairs(list) do
    local p = probs and probs[i] or M.softmax(logits[i])
    local top = 1
    for k = 2, #p do if p[k] > p[top] then top = k end end
    f.label = classes[top] or tostring(top)
    f.probabilities = {}
    for k = 1, #p do f.probabilities[classes[k] or tostring(k)] = p[k] end
    if opts.min_prob and p[top] < opts.min_prob then f.uncertain = true end
    if opts.embeddings and out.embeddings then
      f.embeddings = {}
      for j, e in ipairs(out.embeddings) do f.embeddings[j] = e[i]:totable() end
    end
    local area = f.box[3] * f.box[4]
    if area > best_area then
      best_area = area
      r.label, r.probabilities, r.embeddings = f.label, f.probabilities, f.embeddings
    end
  end
  return r
end

--- Loads and classifies one picture file (opts as M.faces; opts.exif).
function M.image(model, info, path, opts)
  opts = opts or {}
  local img = ac.image.load(path, 0, { exif = opts.exif })
  local c = img:size(1)
  if c == 2 or c == 4 then img = img:narrow(1, 1, c - 1):contiguous() end
  local r = M.faces(model, info, img, opts)
  r.image = path
  return r, img
end

--- Class colours: the figure palette by class index.
function M.color(info_or_classes, label)
  local classes = info_or_classes.classes or info_or_classes
  for i, name in ipairs(classes) do
    if name == label then return core.plot.palette(i - 1) end
  end
  return 0x808080
end

--- The picture with each face's box and "label 87%" drawn (uncertain faces
-- grey, labelled "uncertain"); saved to path (PNG or JPEG) when given.
function M.annotate(img, result, path, info)
  local classes = (info and info.classes) or {}
  if #classes == 0 and result.faces[1] and result.faces[1].probabilities then
    for name in pairs(result.faces[1].probabilities) do classes[#classes + 1] = name end
    table.sort(classes)
  end
  local marks = {}
  for i, f in ipairs(result.faces) do
    local label, rgb = nil, 0x808080
    if f.label then
      local p = f.probabilities[f.label]
      label = f.uncertain and ("uncertain (%s %d%%)"):format(f.label, math.floor(100 * p + 0.5))
        or ("%s %d%%"):format(f.label, math.floor(100 * p + 0.5))
      if not f.uncertain then rgb = M.color(classes, f.label) end
    end
    marks[i] = { f.box[1], f.box[2], f.box[3], f.box[4], rgb, label }
  end
  local out = core.face.annotate(img, marks)
  if path then ac.image.save(path, out) end
  return out
end

return M
