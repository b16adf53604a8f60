--- adcorre.data.npy: a folder of NumPy arrays, as numpy users store data sets:
-- <split>_images.npy ([N, H, W] or [N, H, W, C], uint8 0..255 or float32 in
-- [0, 1] or 0..255; [N, C, H, W] with C = 1 or 3 is accepted too) and
-- <split>_labels.npy ([N] integer class ids 0..K-1) for split = train, val,
-- test; class names from an optional classes.txt (one per line), else the
-- canonical FER names when K <= 8, else "0", "1", .... Any number of classes.
--
--   ac.data.npy{path = "arrays/", split = "test"}
--
-- Label id k becomes class k + 1. Options: path, split (default "train"),
-- channels (default the stored count).
local core = require("adcorre.core")
local data = require("adcorre.data")
local util = data.util

local M = {}
M.split_names = { "train", "val", "test" }

local function load(path)
  return require("adcorre").load_npy(path)
end

local function read_classes(root)
  local f = util.join(root, "classes.txt")
  if util.kind(f) ~= "file" then return nil end
  local names = {}
  local fh = assert(io.open(f, "r"))
  for line in fh:lines() do
    line = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
    if line ~= "" then names[#names + 1] = line end
  end
  fh:close()
  if #names == 0 then error("npy: " .. f .. " holds no class names", 4) end
  return names, f
end

-- Labels as int64 0-based ids, checked.
local function read_labels(file, n_images, images_file)
  local lab = load(file)
  local s = lab:shape()
  if #s == 2 and s[2] == 1 then lab = lab:view(s[1]); s = lab:shape() end
  if #s ~= 1 then error(("npy: %s must be 1-d [N], got %d dimensions"):format(file, #s), 4) end
  if lab:dtype() == "float32" then
    -- NaN and infinities pass a "v - floor(v) == 0" test and became class 1
    -- when converted: every value is checked, and the first bad one named.
    for i, v in ipairs(lab:totable()) do
      if v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v) or math.abs(v) > 2 ^ 53 then
        local what = v ~= v and "NaN" or (v == math.huge or v == -math.huge) and "infinite" or "not an integer"
        error(("npy: %s: label %s at index %d (0-based) is %s (labels are class ids 0..K-1)"):format(file,
          tostring(v), i - 1, what), 4)
      end
    end
    lab = lab:long()
  elseif lab:dtype() == "uint8" then lab = lab:long() end
  if n_images and s[1] ~= n_images then
    error(("npy: %s has %d images but %s has %d labels"):format(images_file, n_images, file, s[1]), 4)
  end
  if s[1] > 0 then
    local mn, mi = lab:min()
    if mn < 0 then
      error(("npy: %s: label %d at index %d is negative (ids are 0..K-1)"):format(file, mn, (mi and mi or 0)), 4)
    end
  end
  return lab
end

local function read_images(file)
  local img = load(file)
  local s = img:shape()
  if #s == 3 then img = img:view(s[1], s[2], s[3], 1)
  elseif #s == 4 then
    if s[4] > 4 and (s[2] == 1 or s[2] == 3) then img = img:permute(1, 3, 4, 2):contiguous() end
  else
    error(("npy: %s must be [N, H, W] or [N, H, W, C], got %d dimensions"):format(file, #s), 4)
  end
  s = img:shape()
  if s[4] < 1 or s[4] > 4 then error(("npy: %s: %d channels (1..4 supported)"):format(file, s[4]), 4) end
  local scale = 1
  if img:dtype() == "int64" then
    if img:numel() > 0 and (img:min() < 0 or img:max() > 255) then
      error(("npy: %s: integer pixels must be 0..255"):format(file), 4)
    end
    img = img:byte()
  elseif img:dtype() == "float32" then
    if img:numel() > 0 and img:max() > 1.0 then scale = 1 / 255 end
  end
  return img:contiguous(), scale
end

local function files(root, split)
  return util.join(root, split .. "_images.npy"), util.join(root, split .. "_labels.npy")
end

-- Number of classes: classes.txt, else 1 + the largest id over every labels file.
local function class_names(root)
  local names, f = read_classes(root)
  if names then return names, f end
  local k = 0
  for _, s in ipairs(M.split_names) do
    local _, lf = files(root, s)
    if util.kind(lf) == "file" then
      local lab = read_labels(lf)
      if lab:numel() > 0 then k = math.max(k, lab:max() + 1) end
    end
  end
  names = {}
  for i = 1, k do names[i] = k <= 8 and data.canonical[i] or tostring(i - 1) end
  return names
end

local function build(root, split, classes, classes_file, opts)
  local imf, lf = files(root, split)
  util.expect(imf, "file", "npy")
  util.expect(lf, "file", "npy")
  local img, scale = read_images(imf)
  local lab = read_labels(lf, img:size(1), imf)
  if lab:numel() > 0 then
    local mx, mi = lab:max()
    if mx >= #classes then
      error(("npy: %s: label %d at index %d but there are %d classes%s"):format(lf, mx, mi or 0, #classes,
        classes_file and (" (" .. classes_file .. ")") or ""), 4)
    end
  end
  return data.from_memory { images = img, labels = lab + 1, scale = scale, classes = classes,
                            channels = opts.channels or img:size(4), name = "npy", split = split, path = root }
end

function M.open(opts)
  opts = opts or {}
  local root = util.need(opts, "path", "npy")
  util.expect(root, "dir", "npy")
  local split = opts.split or "train"
  local classes, cf = class_names(root)
  return build(root, split, classes, cf, opts)
end

function M.splits(opts)
  opts = opts or {}
  local root = util.need(opts, "path", "npy")
  util.expect(root, "dir", "npy")
  local classes, cf = class_names(root)
  local out = {}
  for _, s in ipairs(M.split_names) do
    local imf = files(root, s)
    if util.kind(imf) == "file" then out[s] = build(root, s, classes, cf, opts) end
  end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
