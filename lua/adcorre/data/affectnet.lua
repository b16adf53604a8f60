--- adcorre.data.affectnet: AffectNet (manually annotated part) as distributed:
-- training.csv / validation.csv with the columns subDirectory_filePath,
-- face_x, face_y, face_width, face_height, facial_landmarks, expression,
-- valence, arousal, and the image folder (Manually_Annotated_Images).
--
--   ac.data.affectnet{path = "AffectNet", split = "train", classes = 8}
--
-- Expression codes 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust,
-- 6 Anger, 7 Contempt map to canonical classes 1..8. The 7-class protocol
-- (classes = 7, default) leaves Contempt rows out; codes 8-10 (None,
-- Uncertain, No-Face) are always left out. Each image is cropped to its face
-- box. Splits: train = training.csv, val = test = validation.csv (AffectNet's
-- test set is not public). Options: path (the folder with the CSVs, or with
-- Manually_Annotated_file_lists/), images (the image folder; default
-- PATH/Manually_Annotated_Images or PATH/Manually_Annotated/Manually_Annotated_Images
-- or PATH), classes (7 or 8), channels (3), check_files (default true: a
-- missing image is an error, or skipped with skip_bad), skip_bad.
local core = require("adcorre.core")
local data = require("adcorre.data")
local util = data.util

local M = {}
M.split_names = { "train", "val", "test" }
local csv_of = { train = "training.csv", val = "validation.csv", test = "validation.csv" }

local function find_csv(root, name)
  for _, p in ipairs({ util.join(root, name), util.join(root, "Manually_Annotated_file_lists/" .. name) }) do
    if util.kind(p) == "file" then return p end
  end
  error(("affectnet: %s not found in %s (or its Manually_Annotated_file_lists/)"):format(name, root), 4)
end

local function image_dir(root, opts)
  if opts.images then return util.expect(opts.images, "dir", "affectnet") end
  for _, p in ipairs({ util.join(root, "Manually_Annotated_Images"),
                       util.join(root, "Manually_Annotated/Manually_Annotated_Images") }) do
    if util.kind(p) == "dir" then return p end
  end
  return root
end

function M.open(opts)
  opts = opts or {}
  local root = util.need(opts, "path", "affectnet")
  util.expect(root, "dir", "affectnet")
  local split = opts.split or "train"
  if not csv_of[split] then error(("affectnet: unknown split '%s' (train, val or test)"):format(tostring(split)), 2) end
  local nclass = opts.classes or 7
  if nclass ~= 7 and nclass ~= 8 then error("affectnet: classes must be 7 or 8, got " .. tostring(nclass), 2) end
  local csv = find_csv(root, csv_of[split])
  local imgdir = image_dir(root, opts)
  local cols, lines, _, skipped, first = core.data.csv_read(csv, {
    columns = { "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression" },
    types = { "string", "number", "number", "number", "number", "integer" }, skip_bad = opts.skip_bad })
  local paths, labels, boxes = {}, {}, {}
  local excluded = 0
  local check = opts.check_files ~= false
  for i, rel in ipairs(cols[1]) do
    local code = cols[6][i]
    local why
    if code < 0 or code > 10 then why = ("unknown expression code %d (expected 0..10)"):format(code)
    elseif code >= 8 or (code == 7 and nclass == 7) then
      excluded = excluded + 1
    else
      local file = util.join(imgdir, rel)
      local w, h = cols[4][i], cols[5][i]
      if not (w > 0 and h > 0) then why = ("face box %gx%g is empty"):format(w, h)
      elseif check and util.kind(file) ~= "file" then why = "image not found: " .. file end
      if not why then
        paths[#paths + 1] = file
        labels[#labels + 1] = code + 1
        local b = #boxes
        boxes[b + 1], boxes[b + 2], boxes[b + 3], boxes[b + 4] = cols[2][i], cols[3][i], w, h
      end
    end
    if why then skipped, first = util.bad_row("affectnet", csv, lines[i], why, opts.skip_bad, skipped, first, 2) end
  end
  util.warn_skipped(csv, skipped, first)
  if #paths == 0 then error(("affectnet: no usable rows in %s"):format(csv), 2) end
  local classes = {}
  for k = 1, nclass do classes[k] = data.canonical[k] end
  local bt = core.tensor.tensor(boxes):view(#paths, 4)
  local ds = data.from_files { paths = paths, labels = labels, boxes = bt, classes = classes,
                               channels = opts.channels or 3, name = "affectnet", split = split, path = csv,
                               skipped = skipped }
  ds.excluded = excluded
  return ds
end

function M.splits(opts)
  opts = opts or {}
  local out = {}
  local root = util.need(opts, "path", "affectnet")
  for _, s in ipairs({ "train", "val" }) do
    local ok = pcall(find_csv, root, csv_of[s])
    if ok then
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.split = s
      out[s] = M.open(o)
    end
  end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
