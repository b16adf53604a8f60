--- adcorre.data.fer2013: FER-2013 as fer2013.csv (header emotion,pixels,Usage;
-- 48x48 grey pixels as 2304 space-separated values) or as the per-class image
-- folders of its common re-distribution (ROOT/train/angry/*.png, ROOT/test/...).
--
--   ac.data.fer2013{path = "fer2013.csv", split = "train"}   -- Training rows
--   ac.data.fer2013{path = "fer2013/", split = "test"}       -- folder form
--
-- CSV splits: train = Training, val = PublicTest, test = PrivateTest,
-- "all" = every row. Emotion codes 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad,
-- 5 Surprise, 6 Neutral map to the canonical classes 7, 6, 5, 2, 3, 4, 1.
-- Options: path (file or folder; a folder holding fer2013.csv counts as the
-- CSV), split (default "train"), skip_bad (skip and count malformed rows
-- instead of raising), channels (1 default; 3 replicates the grey plane).
local core = require("adcorre.core")
local data = require("adcorre.data")
local util = data.util

local M = {}

M.classes = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }
--- fer2013 emotion code + 1 -> canonical class
M.code_map = { 7, 6, 5, 2, 3, 4, 1 }
M.usage_of_split = { train = 0, val = 1, test = 2 }
M.split_names = { "train", "val", "test" }

local function csv_path(path)
  local k = util.kind(path)
  if k == nil then error("fer2013: not found: " .. path, 3) end
  if k == "dir" then
    local f = util.join(path, "fer2013.csv")
    if util.kind(f) == "file" then return f end
    return nil
  end
  return path
end

--- Parses the CSV once: images u8 [N,48,48,1], labels, usage, rows.
function M.read_csv(path, opts)
  opts = opts or {}
  local images, labels, usage, rows, skipped, first = core.data.fer2013_read(path, opts.side or 48, M.code_map,
    opts.skip_bad)
  util.warn_skipped(path, skipped, first)
  return { images = images, labels = labels, usage = usage, rows = rows, skipped = skipped, path = path }
end

-- Builds the data set of one split from parsed rows.
local function split_dataset(parsed, split, opts, name, classes)
  local images, labels = parsed.images, parsed.labels
  if split ~= "all" then
    local code = M.usage_of_split[split]
    if code == nil then
      error(("fer2013: unknown split '%s' (train, val, test or all)"):format(tostring(split)), 3)
    end
    local idx = {}
    local u = parsed.usage:totable()
    for i = 1, #u do if u[i] == code then idx[#idx + 1] = i end end
    if #idx == 0 then
      error(("%s: no rows in split '%s' (Usage %s)"):format(parsed.path, split,
        ({ [0] = "Training", "PublicTest", "PrivateTest" })[code]), 3)
    end
    local it = core.tensor.tensor(idx, "int64")
    images = core.data.gather_rows(images, it)
    labels = core.data.gather_rows(labels, it)
  end
  local ds = data.from_memory { images = images, labels = labels, classes = classes or M.classes,
                                channels = opts.channels or 1, name = name or "fer2013", split = split,
                                path = parsed.path, skipped = parsed.skipped }
  return ds
end
M._split_dataset = split_dataset

local function folder_form(path, opts, split)
  return data.folder { path = path, split = split, channels = opts.channels or 1, canonical = true,
                       skip_bad = opts.skip_bad, name = "fer2013", classes = M.classes }
end

--- Opens one split (see the module comment for options).
function M.open(opts)
  opts = opts or {}
  local path = util.need(opts, "path", "fer2013")
  local split = opts.split or "train"
  local csv = csv_path(path)
  if not csv then return folder_form(path, opts, split) end
  return split_dataset(M.read_csv(csv, opts), split, opts)
end

--- All splits present: {train = ds, val = ds, test = ds} (CSV parsed once).
function M.splits(opts)
  opts = opts or {}
  local path = util.need(opts, "path", "fer2013")
  local csv = csv_path(path)
  if not csv then return data.folder.splits { path = path, channels = opts.channels or 1, canonical = true,
                                              skip_bad = opts.skip_bad, name = "fer2013", classes = M.classes } end
  local parsed = M.read_csv(csv, opts)
  local present = {}
  for _, u in ipairs(parsed.usage:totable()) do present[u] = true end
  local out = {}
  for _, s in ipairs(M.split_names) do
    if present[M.usage_of_split[s]] then out[s] = split_dataset(parsed, s, opts) end
  end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
