--- adcorre.data: the FER data sets, read as their publishers ship them and
-- mapped to the canonical class order (1 Neutral, 2 Happy, 3 Sad,
-- 4 Surprise, 5 Fear, 6 Disgust, 7 Anger, 8 Contempt), and the threaded
-- batch loader.
--
--   local ds = ac.data.fer2013{path = "fer2013.csv", split = "train"}
--   print(#ds, ds.classes[1], ds:class_counts()[1])
--   local img, label = ds:get(1)                 -- float [1, 48, 48] in [0, 1], 1-based class
--   local loader = ac.data.Loader(ds, {batch = 64, augment = "standard", workers = 2})
--   for x, y, n in loader:epoch() do ... end     -- x [64, 1, 48, 48], y int64 [64]
--
-- Data sets: fer2013, ferplus, rafdb, affectnet, folder, npy, synthfer (see
-- doc/data.md). Every one has #ds, ds:get(i), ds.classes, ds:class_counts(),
-- ds.split, and the module's .splits(opts) -> {split = dataset}.
local core = require("adcorre.core")
local fs = require("adcorre.fs")

local data = {}

data.canonical = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt" }
data.datasets = { "fer2013", "ferplus", "rafdb", "affectnet", "folder", "npy", "synthfer" }

----------------------------------------------------------------------------
-- helpers shared by the data-set readers
----------------------------------------------------------------------------

local util = {}
data.util = util

function util.join(a, b)
  if a == "" or a == "." then return b end
  if a:sub(-1) == "/" then return a .. b end
  return a .. "/" .. b
end

--- "file", "dir", "other" or nil.
function util.kind(path) return core.data.path_kind(path) end

--- Sorted entries of a folder: names, is_dir flags (adcorre.fs).
util.listdir = fs.listdir

local image_ext = { jpg = true, jpeg = true, png = true, bmp = true, tga = true, gif = true, pnm = true,
                    ppm = true, pgm = true, pbm = true }
function util.is_image(name)
  local ext = name:match("%.([%w]+)$")
  return ext ~= nil and image_ext[ext:lower()] == true and name:sub(1, 1) ~= "."
end

-- Folder / label names that mean a canonical class.
local synonyms = {
  neutral = 1, happy = 2, happiness = 2, sad = 3, sadness = 3, surprise = 4, surprised = 4,
  fear = 5, fearful = 5, scared = 5, disgust = 6, disgusted = 6, anger = 7, angry = 7, contempt = 8,
}
--- Canonical class index of a name ("angry", "Happiness", ...), or nil.
function util.canonical_index(name)
  return synonyms[name:lower():gsub("^%d+[_%-%s]*", "")]
end

function util.warn_skipped(what, n, first)
  if n and n > 0 then
    io.stderr:write(("warning: %s: skipped %d bad entr%s (first: %s)\n"):format(what, n, n == 1 and "y" or "ies",
      tostring(first)))
  end
end

--- A bad row of a list file: raises "<fname>: <file>:<line>: <why>" (error
--- level `level` as seen from the caller) unless skip_bad; else returns the
--- skip count plus one and the first message so far.
function util.bad_row(fname, file, line, why, skip_bad, skipped, first, level)
  local msg = ("%s:%d: %s"):format(file, line, why)
  if not skip_bad then error(fname .. ": " .. msg, level + 1) end
  return skipped + 1, first or msg
end

function util.need(opts, key, fname)
  local v = opts[key]
  if v == nil then error(("%s: option '%s' is required"):format(fname, key), 3) end
  return v
end

--- Checks that a path exists with the expected kind ("file"/"dir").
function util.expect(path, kind, what)
  local k, words = core.data.path_kind(path)
  if k == nil then error(("%s: %s not found: %s"):format(what, kind == "dir" and "folder" or "file", path), 3) end
  if kind == "file" and k == "other" then
    error(("%s: %s: is a %s, expected a regular file"):format(what, path, words), 3)
  end
  if kind and k ~= kind then error(("%s: %s is not a %s"):format(what, path, kind == "dir" and "folder" or "file"), 3) end
  return path
end

----------------------------------------------------------------------------
-- Dataset
----------------------------------------------------------------------------

local Dataset = {}
Dataset.__index = Dataset
Dataset.__name = "adcorre.data.Dataset"
data.Dataset = Dataset

local function new_dataset(t)
  t.skipped = t.skipped or 0
  return setmetatable(t, Dataset)
end

--- A data set of images held in memory. images: uint8 or float32 [N, H, W]
-- or [N, H, W, C]; labels: int64 tensor or array of 1-based classes;
-- classes: names; scale: multiplier of float pixels (default 1).
function data.from_memory(o)
  local images = o.images
  local s = images:shape()
  if #s == 3 then images = images:view(s[1], s[2], s[3], 1); s = images:shape() end
  if #s ~= 4 then error("data.from_memory: images must be [N, H, W] or [N, H, W, C]", 2) end
  local src = core.data.source_memory(images, o.labels, o.scale or 1)
  return new_dataset { source = src, classes = o.classes or data.canonical, channels = o.channels or s[4],
                       height = s[2], width = s[3], name = o.name or "memory", split = o.split,
                       path = o.path, skipped = o.skipped, images = images }
end

--- A data set of image files. paths: array; labels: 1-based classes;
-- boxes: optional float32 [N, 4] (x, y, w, h) crops; channels: 1 or 3.
function data.from_files(o)
  local labels = o.labels
  local src = core.data.source_files(o.paths, labels, o.boxes)
  return new_dataset { source = src, classes = o.classes or data.canonical, channels = o.channels or 3,
                       height = o.height, width = o.width, name = o.name or "files", split = o.split,
                       path = o.path, skipped = o.skipped, paths = o.paths, boxes = o.boxes }
end

Dataset.__len = function(self) return #self.source end

--- Sample i (1-based): image float32 [C, H, W] in [0, 1] (native size, or
-- the data set's fixed height/width), label (1-based class).
function Dataset:get(i)
  if math.type(i) ~= "integer" then
    if type(i) == "number" and i == math.floor(i) then i = math.tointeger(i)
    else error(("Dataset:get: index must be an integer, got %s"):format(tostring(i)), 2) end
  end
  if self.height and self.width and self.resize then
    return self.source:get(i, self.channels, self.height, self.width)
  end
  return self.source:get(i, self.channels)
end

--- The label (1-based) of sample i.
function Dataset:label(i) return self.source:label(i) end

--- All labels as an int64 tensor [N].
function Dataset:labels() return self.source:labels() end

--- At most n samples, evenly spaced over the data set (sample 1, then every
-- #ds / n-th), so that a data set stored class by class keeps every class;
-- the data set itself when it has no more than n.
function Dataset:head(n)
  if math.type(n) ~= "integer" or n < 1 then
    error(("Dataset:head: n must be a positive integer, got %s"):format(tostring(n)), 2)
  end
  local total = #self.source
  if n >= total then return self end
  local idx = {}
  for i = 1, n do idx[i] = (i - 1) * total // n + 1 end
  local it = core.tensor.tensor(idx, "int64")
  local labels = core.data.gather_rows(self.source:labels(), it)
  local o = { labels = labels, classes = self.classes, channels = self.channels, height = self.height,
              width = self.width, name = self.name, split = self.split, path = self.path, skipped = self.skipped }
  local ds
  if self.images then
    o.images = core.data.gather_rows(self.images, it)
    ds = data.from_memory(o)
  elseif self.paths then
    o.paths = {}
    for i, k in ipairs(idx) do o.paths[i] = self.paths[k] end
    if self.boxes then o.boxes = core.data.gather_rows(self.boxes, it) end
    ds = data.from_files(o)
  else
    error(("Dataset:head: %s keeps neither images nor paths"):format(tostring(self)), 2)
  end
  ds.resize = self.resize
  return ds
end

--- Counts per class, an array aligned with ds.classes.
function Dataset:class_counts()
  if self._counts then return self._counts end
  local counts = {}
  for k = 1, #self.classes do counts[k] = 0 end
  local lab = self.source:labels()
  local n = #self.source
  if n > 0 then
    for _, v in ipairs(lab:totable()) do
      if v >= 1 and v <= #counts then counts[v] = counts[v] + 1 end
    end
  end
  self._counts = counts
  return counts
end

--- Counts per class name: {[name] = count}.
function Dataset:counts_by_name()
  local out = {}
  for k, c in ipairs(self:class_counts()) do out[self.classes[k]] = c end
  return out
end

--- Image shape {C, H, W} of the samples (H, W nil when sizes vary, e.g. files).
function Dataset:image_shape()
  return { self.channels, self.height, self.width }
end

Dataset.__tostring = function(self)
  return ("adcorre.data.%s(split=%s, n=%d, classes=%d, channels=%d%s)"):format(self.name, tostring(self.split),
    #self.source, #self.classes, self.channels,
    self.height and (", size=%dx%d"):format(self.height, self.width) or "")
end

----------------------------------------------------------------------------
-- lazily loaded readers and the loader
----------------------------------------------------------------------------

local modules = { fer2013 = true, ferplus = true, rafdb = true, affectnet = true, folder = true, npy = true,
                  synthfer = true }

--- Opens data set `name` with options (path, split, ...).
function data.open(name, opts)
  if not modules[name] then
    error(("data.open: unknown data set '%s' (known: %s)"):format(tostring(name), table.concat(data.datasets, ", ")), 2)
  end
  return data[name](opts)
end

--- All splits of data set `name` found at opts.path: {split = dataset}.
function data.splits(name, opts)
  if not modules[name] then
    error(("data.splits: unknown data set '%s' (known: %s)"):format(tostring(name), table.concat(data.datasets, ", ")), 2)
  end
  return data[name].splits(opts)
end

setmetatable(data, {
  __index = function(t, k)
    if modules[k] then
      local m = require("adcorre.data." .. k)
      rawset(t, k, m)
      return m
    elseif k == "Loader" then
      local m = require("adcorre.data.loader")
      rawset(t, k, m.Loader)
      return m.Loader
    end
    return nil
  end,
})

return data
