--- adcorre.face: face detection with OpenCV's trained cascades (Haar or
-- LBP, read from their XML; Debian's opencv-data ships them) evaluated by the
-- library's own kernel (csrc/face/), with the pyramid, window steps and
-- grouping of OpenCV's CascadeClassifier::detectMultiScale.
--
--   local ac = require("adcorre")
--   local img = ac.image.load("group.jpg")            -- grey or RGB
--   for _, b in ipairs(ac.face.detect(img, { min_neighbors = 5 })) do
--     print(b.x, b.y, b.w, b.h, b.score)               -- 0-based top-left, pixels
--   end
--
-- Options: cascade (a name: "frontalface_default", "frontalface_alt2",
-- "lbp_frontalface_improved", ...; or a path to an XML file), scale (1.1),
-- min_neighbors (5), min_size (30; a number or {w, h}), max_size (none).
-- score is the number of raw windows grouped into the box.
local core = require("adcorre.core")
local xml = require("adcorre.face.cascade_xml")

local M = {}

--- Folders searched for cascade names (AC_CASCADE_DIR first when set).
M.dirs = { "/usr/share/opencv4", "/usr/share/opencv" }
M.default_cascade = "frontalface_default"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- The XML file of a cascade name or path.
function M.cascade_path(name)
  if type(name) ~= "string" or name == "" then
    error("face: cascade must be a name or a path, got " .. tostring(name), 3)
  end
  if name:find("/", 1, true) or name:match("%.xml$") then
    if not exists(name) then error(("face: cascade file '%s' does not exist"):format(name), 3) end
    return name
  end
  local files
  if name:match("^haarcascade_") or name:match("^lbpcascade_") then
    files = { (name:match("^haar") and "haarcascades/" or "lbpcascades/") .. name .. ".xml" }
  elseif name:match("^lbp_") then
    files = { "lbpcascades/lbpcascade_" .. name:sub(5) .. ".xml" }
  else
    files = { "haarcascades/haarcascade_" .. name .. ".xml", "lbpcascades/lbpcascade_" .. name .. ".xml" }
  end
  local dirs = {}
  if os.getenv("AC_CASCADE_DIR") then dirs[1] = os.getenv("AC_CASCADE_DIR") end
  for _, d in ipairs(M.dirs) do dirs[#dirs + 1] = d end
  for _, d in ipairs(dirs) do
    for _, f in ipairs(files) do
      if exists(d .. "/" .. f) then return d .. "/" .. f end
    end
  end
  error(("face: no cascade '%s' in %s (install Debian's opencv-data, or give a path)"):format(
    name, table.concat(dirs, ", ")), 3)
end

local cache = {}

--- The cascade of a name or path, read once per process.
function M.cascade(name)
  name = name or M.default_cascade
  if type(name) == "userdata" then return name end
  local path = M.cascade_path(name)
  local c = cache[path]
  if not c then
    c = core.face.cascade(xml.read(path))
    cache[path] = c
  end
  return c, path
end

--- Window size, type ("haar" or "lbp"), stage count and tilted use.
function M.info(name)
  return core.face.info(M.cascade(name))
end

local function size_opt(v, what, default)
  if v == nil then return default, default end
  if type(v) == "number" then return math.floor(v), math.floor(v) end
  if type(v) == "table" and type(v[1]) == "number" and type(v[2]) == "number" then
    return math.floor(v[1]), math.floor(v[2])
  end
  error(("face.detect: %s must be a number or {w, h}, got %s"):format(what, tostring(v)), 3)
end

--- Faces in an image tensor ([C, H, W] or [H, W], float in [0, 1] or uint8):
-- {{x =, y =, w =, h =, score =}, ...} in pixels of the image, x and y the
-- 0-based top-left corner.
function M.detect(img, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("face.detect: opts must be a table", 2) end
  if type(img) == "string" then img = require("adcorre.image").load(img) end
  local c = M.cascade(opts.cascade)
  local scale = opts.scale or 1.1
  if type(scale) ~= "number" or not (scale > 1) then
    error("face.detect: scale must be a number > 1, got " .. tostring(scale), 2)
  end
  local mn = opts.min_neighbors or 5
  if math.type(mn) ~= "integer" and not (type(mn) == "number" and mn == math.floor(mn)) then
    error("face.detect: min_neighbors must be an integer, got " .. tostring(mn), 2)
  end
  local minw, minh = size_opt(opts.min_size, "min_size", 30)
  local maxw, maxh = size_opt(opts.max_size, "max_size", 0)
  return core.face.detect(c, img, scale, math.tointeger(mn) or math.floor(mn), minw, minh, maxw, maxh)
end

--- Intersection over union of two boxes {x, y, w, h} (fields or arrays).
function M.iou(a, b)
  local ax, ay, aw, ah = a.x or a[1], a.y or a[2], a.w or a[3], a.h or a[4]
  local bx, by, bw, bh = b.x or b[1], b.y or b[2], b.w or b[3], b.h or b[4]
  local iw = math.min(ax + aw, bx + bw) - math.max(ax, bx)
  local ih = math.min(ay + ah, by + bh) - math.max(ay, by)
  if iw <= 0 or ih <= 0 then return 0 end
  local inter = iw * ih
  return inter / (aw * ah + bw * bh - inter)
end

--- Greedy one-to-one matching of boxes `a` against reference boxes `ref` at
-- IoU >= thr: matched count, the unmatched of ref, the unmatched of a.
function M.match(a, ref, thr)
  thr = thr or 0.6
  local pairs_ = {}
  for i, p in ipairs(a) do
    for j, q in ipairs(ref) do
      local v = M.iou(p, q)
      if v >= thr then pairs_[#pairs_ + 1] = { v, i, j } end
    end
  end
  table.sort(pairs_, function(x, y) return x[1] > y[1] end)
  local used_a, used_r, n = {}, {}, 0
  for _, p in ipairs(pairs_) do
    if not used_a[p[2]] and not used_r[p[3]] then
      used_a[p[2]], used_r[p[3]], n = true, true, n + 1
    end
  end
  return n, #ref - n, #a - n
end

return M
