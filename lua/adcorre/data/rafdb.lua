--- adcorre.data.rafdb: RAF-DB basic emotions as distributed:
-- ROOT/EmoLabel/list_patition_label.txt (lines "train_00001.jpg 5") and
-- ROOT/Image/aligned/train_00001_aligned.jpg (100x100 RGB).
--
--   ac.data.rafdb{path = "RAF-DB/basic", split = "test"}
--
-- Codes 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger,
-- 7 Neutral map to the canonical classes 4, 5, 6, 2, 3, 7, 1. Splits come
-- from the file-name prefix (train_ / test_). Options: path, split ("train",
-- "test", "all"), aligned (default true; false reads Image/original/<name>),
-- channels (default 3), skip_bad (skip list lines that are malformed, have an
-- unknown code or name a missing image, counting them in a warning).
local core = require("adcorre.core")
local data = require("adcorre.data")
local util = data.util

local M = {}
M.classes = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }
M.code_map = { 4, 5, 6, 2, 3, 7, 1 }
M.split_names = { "train", "test" }

local function read_list(root, opts)
  util.expect(root, "dir", "rafdb")
  local list = util.join(root, "EmoLabel/list_patition_label.txt")
  util.expect(list, "file", "rafdb")
  local cols, lines, _, skipped, first = core.data.csv_read(list, { delim = " ", header = false, columns = { 1, 2 },
    types = { "string", "integer" }, skip_bad = opts.skip_bad })
  local aligned = opts.aligned ~= false
  local imgdir = util.join(root, aligned and "Image/aligned" or "Image/original")
  util.expect(imgdir, "dir", "rafdb")
  local rows = { train = { paths = {}, labels = {} }, test = { paths = {}, labels = {} } }
  for i, name in ipairs(cols[1]) do
    local code = cols[2][i]
    local why
    local split = name:match("^(%a+)_")
    local label = M.code_map[code]
    if not label then why = ("unknown label %d (expected 1..7)"):format(code)
    elseif split ~= "train" and split ~= "test" then why = ("image name '%s' does not start with train_ or test_"):format(name)
    end
    local file
    if not why then
      file = aligned and util.join(imgdir, (name:gsub("%.(%w+)$", "_aligned.%1"))) or util.join(imgdir, name)
      if util.kind(file) ~= "file" then why = "image not found: " .. file end
    end
    if why then
      skipped, first = util.bad_row("rafdb", list, lines[i], why, opts.skip_bad, skipped, first, 4)
    else
      local r = rows[split]
      r.paths[#r.paths + 1] = file
      r.labels[#r.labels + 1] = label
    end
  end
  util.warn_skipped(list, skipped, first)
  return rows, skipped, imgdir
end

local function make(rows, split, opts, imgdir, skipped)
  if #rows.paths == 0 then error(("rafdb: no images in split '%s'"):format(split), 3) end
  return data.from_files { paths = rows.paths, labels = rows.labels, classes = M.classes,
                           channels = opts.channels or 3, name = "rafdb", split = split, path = imgdir,
                           skipped = skipped }
end

function M.open(opts)
  opts = opts or {}
  local split = opts.split or "train"
  local rows, skipped, imgdir = read_list(util.need(opts, "path", "rafdb"), opts)
  if split == "all" then
    local all = { paths = {}, labels = {} }
    for _, s in ipairs(M.split_names) do
      for i, p in ipairs(rows[s].paths) do all.paths[#all.paths + 1] = p; all.labels[#all.labels + 1] = rows[s].labels[i] end
    end
    return make(all, "all", opts, imgdir, skipped)
  end
  if not rows[split] then error(("rafdb: unknown split '%s' (train, test or all)"):format(tostring(split)), 2) end
  return make(rows[split], split, opts, imgdir, skipped)
end

function M.splits(opts)
  opts = opts or {}
  local rows, skipped, imgdir = read_list(util.need(opts, "path", "rafdb"), opts)
  local out = {}
  for _, s in ipairs(M.split_names) do
    if #rows[s].paths > 0 then out[s] = make(rows[s], s, opts, imgdir, skipped) end
  end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
