--- adcorre.plot.scatter: points coloured by class, with a legend.
local core = require("adcorre.core")
local C = core.plot
local fmt = string.format
local floor, abs = math.floor, math.abs
local is_tensor = core.tensor.is_tensor
local u = require("adcorre.plot.util")
local check_path = u.check_path
local check_opts = u.check_opts
local check_size = u.check_size
local save = u.save
local to_array = u.to_array
local check_names = u.check_names
local range = u.range
local axes = u.axes
local title = u.title
local fit_label = u.fit_label
local legend_size = u.legend_size
local legend = u.legend

local plot = {}

local function to_xy(fname, XY)
  local xs, ys = {}, {}
  if is_tensor(XY) then
    local s = XY:shape()
    if #s ~= 2 or s[2] ~= 2 then
      error(fmt("%s: XY must be [N, 2], got shape [%s]", fname, table.concat(s, ", ")), 3)
    end
    local t = XY:float():totable()
    for i = 1, #t do xs[i], ys[i] = t[i][1], t[i][2] end
  elseif type(XY) == "table" then
    for i = 1, #XY do
      local p = XY[i]
      if type(p) ~= "table" or type(p[1]) ~= "number" or type(p[2]) ~= "number" then
        error(fmt("%s: XY[%d] must be a pair {x, y} of numbers", fname, i), 3)
      end
      xs[i], ys[i] = p[1], p[2]
    end
  else
    error(fmt("%s: XY must be a tensor [N, 2] or an array of {x, y}, got %s", fname, type(XY)), 3)
  end
  for i = 1, #xs do
    if xs[i] ~= xs[i] or ys[i] ~= ys[i] or abs(xs[i]) == math.huge or abs(ys[i]) == math.huge then
      error(fmt("%s: point %d is not finite (%s, %s)", fname, i, tostring(xs[i]), tostring(ys[i])), 3)
    end
  end
  return xs, ys
end

local function to_labels(fname, labels, n, C_)
  local l = to_array(fname, "labels", labels)
  if #l ~= n then error(fmt("%s: %d points but %d labels", fname, n, #l), 3) end
  for i = 1, n do
    local v = l[i]
    if v ~= floor(v) or v < 1 or v > C_ then
      error(fmt("%s: labels[%d] = %s is out of range 1..%d", fname, i, tostring(v), C_), 3)
    end
  end
  return l
end

--- scatter(path, XY, labels, class_names [, opts]): points coloured by class
-- with a legend. XY: tensor [N,2] or array of {x, y}; labels 1-based.
-- opts: title, xlabel, ylabel, width (640), height (520), radius (3.5), alpha (0.75).
function plot.scatter(path, XY, labels, class_names, opts)
  local fname = "plot.scatter"
  check_path(fname, path)
  local names = check_names(fname, class_names)
  if #names == 0 then error(fname .. ": class_names is empty", 2) end
  local xs, ys = to_xy(fname, XY)
  local lab = to_labels(fname, labels, #xs, #names)
  opts = check_opts(fname, opts)
  local W, H = check_size(fname, opts, 640, 520)
  local r = opts.radius or (#xs > 3000 and 2.5 or 3.5)
  local alpha = opts.alpha or 0.75

  local cv = C.canvas(W, H, 0xFFFFFF)
  local has_title = opts.title and opts.title ~= ""
  local entries = {}
  local counts = {}
  for i = 1, #lab do counts[lab[i]] = (counts[lab[i]] or 0) + 1 end
  local shapes = { "circle", "square", "triangle", "diamond" }
  for c = 1, #names do
    entries[#entries + 1] = { name = fit_label(names[c], 1.5, W * 0.25), color = C.palette(c),
      shape = shapes[(c - 1) // 10 % 4 + 1], kind = "marker" }
  end
  local ls = 1.5
  local lw = legend_size(entries, ls)
  local box = { x = 70, y = has_title and 50 or 20 }
  box.w = W - box.x - lw - 30
  box.h = H - box.y - 60 - (opts.xlabel and 20 or 0)
  if opts.ylabel then box.x = box.x + 20; box.w = box.w - 20 end
  local xlo, xhi = range(xs, 0.05)
  local ylo, yhi = range(ys, 0.05)
  local X, Y = axes(cv, box, xlo, xhi, ylo, yhi,
    { xlabel = opts.xlabel, ylabel = opts.ylabel, ylabel_x = box.x - 62, grid = true })
  -- draw in an interleaved order so that no class hides another systematically
  local n = #xs
  local step = 1
  if n > 1 then
    step = 7919 % n
    local function gcd(a, b) while b ~= 0 do a, b = b, a % b end return a end
    while step == 0 or gcd(step, n) ~= 1 do step = step + 1 end
  end
  local idx = 0
  for _ = 1, n do
    local i = idx + 1
    local c = lab[i]
    cv:marker(X(xs[i]), Y(ys[i]), r, C.palette(c), entries[c].shape, 0xFFFFFF, 0.6, alpha)
    idx = (idx + step) % n
  end
  legend(cv, box.x + box.w + 18, box.y, entries, ls, false)
  if has_title then title(cv, W, opts.title, 16) end
  box.xlo, box.xhi, box.ylo, box.yhi = xlo, xhi, ylo, yhi
  return save(fname, cv, path), box
end

plot.to_labels = to_labels
return plot
