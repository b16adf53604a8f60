--- adcorre.data.folder: images in class folders, ROOT/<split>/<class>/*.jpg|png|...
-- or ROOT/<class>/* (a single split, "all").
--
--   ac.data.folder{path = "faces", split = "train", channels = 3}
--
-- Class folders whose names all name FER classes (angry, Anger, happy,
-- happiness, 3_sad, ...) map to the canonical order (1 Neutral .. 7 Anger,
-- 8 Contempt); otherwise classes are the folder names in sorted order (the
-- union over splits, so every split has the same class indices).
-- Options: path, split (default "train" when split folders exist, else
-- "all"), channels (default 3), canonical (true / false / nil = automatic),
-- classes (names to use with canonical mapping), size ({h, w} or a number:
-- ds:get resizes), skip_bad (ignored here: bad files are found when read; the
-- Loader's skip_bad skips them).
local data = require("adcorre.data")
local util = data.util

local M = {}

local split_alias = {
  train = { "train", "Train", "training", "Training" },
  val = { "val", "valid", "validation", "Val", "Validation", "PublicTest" },
  test = { "test", "Test", "testing", "PrivateTest" },
}
M.split_names = { "train", "val", "test" }

local function split_dir(root, split)
  for _, name in ipairs(split_alias[split] or { split }) do
    local p = util.join(root, name)
    if util.kind(p) == "dir" then return p end
  end
  return nil
end

local function subdirs(path)
  local names, dirs = util.listdir(path)
  local out = {}
  for i, n in ipairs(names) do if dirs[i] and n:sub(1, 1) ~= "." then out[#out + 1] = n end end
  return out
end

-- The class folders of every split present, and whether the root has splits.
local function layout(root)
  util.expect(root, "dir", "folder")
  local splits = {}
  for _, s in ipairs(M.split_names) do
    local d = split_dir(root, s)
    if d then splits[#splits + 1] = { name = s, dir = d } end
  end
  if #splits == 0 then return { { name = "all", dir = root } }, false end
  return splits, true
end

-- Decides the class list and the folder-name -> label mapping.
local function class_map(dirs, opts)
  local names, seen = {}, {}
  for _, d in ipairs(dirs) do
    for _, n in ipairs(subdirs(d)) do
      if not seen[n] then seen[n] = true; names[#names + 1] = n end
    end
  end
  table.sort(names)
  if #names == 0 then error(("folder: no class folders under %s"):format(table.concat(dirs, ", ")), 4) end
  local canonical = opts.canonical
  local all_known = true
  for _, n in ipairs(names) do if not util.canonical_index(n) then all_known = false end end
  if canonical == nil then canonical = all_known end
  local map, classes = {}, nil
  if canonical then
    local maxk = 0
    for _, n in ipairs(names) do
      local k = util.canonical_index(n)
      if not k then
        error(("folder: class folder '%s' is not a FER class name (use canonical = false for arbitrary classes)"):format(n), 4)
      end
      map[n] = k
      if k > maxk then maxk = k end
    end
    classes = {}
    local base = opts.classes or data.canonical
    local nc = math.max(#base, maxk, 7)
    for k = 1, nc do classes[k] = base[k] or data.canonical[k] end
  else
    classes = {}
    for i, n in ipairs(names) do map[n] = i; classes[i] = n end
  end
  return map, classes
end

local function build(dir, split, map, classes, opts)
  local paths, labels = {}, {}
  for _, cname in ipairs(subdirs(dir)) do
    local label = map[cname]
    local cdir = util.join(dir, cname)
    local files, isdir = util.listdir(cdir)
    for i, f in ipairs(files) do
      if not isdir[i] and util.is_image(f) then
        paths[#paths + 1] = util.join(cdir, f)
        labels[#labels + 1] = label
      end
    end
  end
  if #paths == 0 then error(("folder: no image files under %s/<class>/"):format(dir), 4) end
  local h, w
  if opts.size then
    if type(opts.size) == "number" then h, w = opts.size, opts.size else h, w = opts.size[1], opts.size[2] end
  end
  local ds = data.from_files { paths = paths, labels = labels, classes = classes, channels = opts.channels or 3,
                               name = opts.name or "folder", split = split, path = dir, height = h, width = w }
  ds.resize = h ~= nil
  return ds
end

--- Opens one split.
function M.open(opts)
  opts = opts or {}
  local root = util.need(opts, "path", "folder")
  local splits, has_splits = layout(root)
  local dirs = {}
  for i, s in ipairs(splits) do dirs[i] = s.dir end
  local map, classes = class_map(dirs, opts)
  local want = opts.split or (has_splits and "train" or "all")
  for _, s in ipairs(splits) do
    if s.name == want then return build(s.dir, want, map, classes, opts) end
  end
  local found = {}
  for _, s in ipairs(splits) do found[#found + 1] = s.name end
  error(("folder: split '%s' not found under %s (found: %s)"):format(want, root, table.concat(found, ", ")), 2)
end

--- Every split present: {train = ds, ...} (or {all = ds}).
function M.splits(opts)
  opts = opts or {}
  local root = util.need(opts, "path", "folder")
  local splits = layout(root)
  local dirs = {}
  for i, s in ipairs(splits) do dirs[i] = s.dir end
  local map, classes = class_map(dirs, opts)
  local out = {}
  for _, s in ipairs(splits) do out[s.name] = build(s.dir, s.name, map, classes, opts) end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
