--- adcorre.data.ferplus: FER+ relabelling of FER-2013. Images come from
-- fer2013.csv; labels from fer2013new.csv (Usage, Image name, neutral,
-- happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
-- vote counts; same row order as fer2013.csv).
--
--   ac.data.ferplus{path = "data/", split = "train"}     -- both CSVs in data/
--   ac.data.ferplus{fer2013 = "a/fer2013.csv", ferplus = "b/fer2013new.csv"}
--
-- Label = the majority vote as in the FER+ reference code: single votes are
-- dropped as outliers, the top emotion must hold more than half of the
-- remaining votes, and rows whose majority is "unknown" or "NF" (not a face),
-- rows without an image name and rows without a majority are left out
-- (counted in ds.excluded). 8 classes in canonical order (Contempt = 8).
-- Splits: train = Training, val = PublicTest, test = PrivateTest, all.
local core = require("adcorre.core")
local data = require("adcorre.data")
local util = data.util
local fer2013 = require("adcorre.data.fer2013")

local M = {}
M.split_names = { "train", "val", "test" }
M.classes = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt" }
M.vote_columns = { "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF" }
--- FER+ vote column (1..8) -> canonical class
M.column_class = { 1, 2, 4, 3, 7, 6, 5, 8 }

--- The majority label (canonical class) of one row of 10 vote counts, or nil.
function M.majority(votes)
  local v, sum = {}, 0
  for i = 1, 10 do
    local x = votes[i]
    if x < 1.0 + 2.220446049250313e-16 then x = 0 end
    v[i] = x
    sum = sum + x
  end
  if sum <= 0 then return nil end
  local best, arg = -1, 0
  for i = 1, 10 do if v[i] > best then best, arg = v[i], i end end
  if best > 0.5 * sum and arg <= 8 then return M.column_class[arg] end
  return nil
end

local function paths(opts)
  local f, p = opts.fer2013, opts.ferplus
  if opts.path then
    util.expect(opts.path, nil, "ferplus")
    if util.kind(opts.path) == "dir" then
      f = f or util.join(opts.path, "fer2013.csv")
      p = p or util.join(opts.path, "fer2013new.csv")
    end
  end
  if not f or not p then error("ferplus: give path (a folder with fer2013.csv and fer2013new.csv) or fer2013= and ferplus=", 4) end
  util.expect(f, "file", "ferplus")
  util.expect(p, "file", "ferplus")
  return f, p
end

local usage_code = { Training = 0, PublicTest = 1, PrivateTest = 2 }

local function read(opts)
  local fpath, ppath = paths(opts)
  local parsed = fer2013.read_csv(fpath, opts)
  local cols = { "Usage", "Image name" }
  local types = { "string", "string" }
  for _, c in ipairs(M.vote_columns) do cols[#cols + 1] = c; types[#types + 1] = "number" end
  local v, lines, _, skipped, first = core.data.csv_read(ppath, { columns = cols, types = types, skip_bad = opts.skip_bad })
  util.warn_skipped(ppath, skipped, first)
  -- FER+ data row (0-based, from its line number) -> label / usage
  local label_of, usage_of = {}, {}
  local nrows = 0
  for i = 1, #lines do
    local row = lines[i] - 2
    if row + 1 > nrows then nrows = row + 1 end
    local name = v[2][i]
    local u = usage_code[v[1][i]]
    if u == nil then
      util.bad_row("ferplus", ppath, lines[i], ("unknown Usage '%s'"):format(v[1][i]), opts.skip_bad, 0, nil, 4)
    else
      usage_of[row] = u
      if name ~= nil and name:match("%S") then -- rows without an image name are left out
        local votes = {}
        for k = 1, 10 do votes[k] = v[k + 2][i] end
        label_of[row] = M.majority(votes)
      end
    end
  end
  local frows = parsed.rows:totable()
  local last = frows[#frows] or -1
  if nrows ~= last + 1 and not opts.skip_bad then
    error(("ferplus: %s has %d data rows but %s has %d; they must be the same rows in the same order"):format(
      ppath, nrows, fpath, last + 1), 4)
  end
  return parsed, frows, label_of, usage_of, fpath
end

local function build(parsed, frows, label_of, usage_of, split, opts)
  local idx, labels = {}, {}
  local want = split ~= "all" and fer2013.usage_of_split[split] or nil
  if split ~= "all" and want == nil then
    error(("ferplus: unknown split '%s' (train, val, test or all)"):format(tostring(split)), 4)
  end
  local excluded = 0
  for i, r in ipairs(frows) do
    local u = usage_of[r]
    if u ~= nil and (want == nil or u == want) then
      local l = label_of[r]
      if l then idx[#idx + 1] = i; labels[#labels + 1] = l else excluded = excluded + 1 end
    end
  end
  if #idx == 0 then error(("ferplus: no labelled rows in split '%s'"):format(split), 4) end
  local images = core.data.gather_rows(parsed.images, core.tensor.tensor(idx, "int64"))
  local ds = data.from_memory { images = images, labels = core.tensor.tensor(labels, "int64"), classes = M.classes,
                                channels = opts.channels or 1, name = "ferplus", split = split, path = parsed.path }
  ds.excluded = excluded
  return ds
end

function M.open(opts)
  opts = opts or {}
  local parsed, frows, label_of, usage_of = read(opts)
  return build(parsed, frows, label_of, usage_of, opts.split or "train", opts)
end

function M.splits(opts)
  opts = opts or {}
  local parsed, frows, label_of, usage_of = read(opts)
  local present = {}
  for _, u in pairs(usage_of) do present[u] = true end
  local out = {}
  for _, s in ipairs(M.split_names) do
    if present[fer2013.usage_of_split[s]] then out[s] = build(parsed, frows, label_of, usage_of, s, opts) end
  end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
