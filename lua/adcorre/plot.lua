--- adcorre.plot: figures as PNG files, drawn on the library's raster canvas.
--
--   ac.plot.confusion("cm.png", M, ac.classes, {title = "Test"})     -- heat map, % in cells
--   ac.plot.scatter("emb.png", XY, labels, names, {title = "PCA"})  -- XY [N,2], labels 1-based
--   ac.plot.curves("loss.png", {series = {{name = "train", x = {1,2,3}, y = {0.9,0.6,0.5}}},
--                               xlabel = "epoch", ylabel = "loss"})
--   ac.plot.embedding("tsne.png", E, labels, names, {method = "tsne"})
--   local Y = ac.plot.pca(X, 2) ; local Y2, kl = ac.plot.tsne(X, {seed = 1})
--
-- Every function checks its arguments before drawing, writes the file
-- atomically (temporary name + rename) and returns the path and a layout
-- table (where the plot area or the matrix cells are, in pixels). The canvas
-- itself is ac.plot.canvas(w, h [, bg]) (see doc/plots.md).
local core = require("adcorre.core")
local C = core.plot

local plot = {}

local fmt = string.format
local floor, ceil, log, max, min, abs = math.floor, math.ceil, math.log, math.max, math.min, math.abs

local function ac() return require("adcorre") end
local is_tensor = core.tensor.is_tensor

plot.canvas = C.canvas
plot.colormap = C.colormap
plot.palette = C.palette
plot.text_size = C.text_size
--- Lower-level t-SNE pieces: P = tsne_affinities(X, perplexity) (joint, symmetric,
-- sums to 1) and grad, kl = tsne_gradient(P, Y [, exaggeration]).
plot.tsne_affinities = C.tsne_affinities
plot.tsne_gradient = C.tsne_gradient

local INK = 0x222222      -- text and axes
local SOFT = 0x555555     -- tick labels
local GRID = 0xE6E6E6     -- grid lines
local FRAME = 0x888888

----------------------------------------------------------------------------
-- argument helpers
----------------------------------------------------------------------------

local function fail(fname, msg, ...)
  error(fname .. ": " .. fmt(msg, ...), 3)
end

local function check_path(fname, path)
  if type(path) ~= "string" or path == "" then
    error(fmt("%s: path must be a non-empty string, got %s", fname, type(path)), 3)
  end
end

local function check_opts(fname, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(fmt("%s: options must be a table, got %s", fname, type(opts)), 3)
  end
  return opts or {}
end

local function check_size(fname, opts, w, h)
  w, h = opts.width or w, opts.height or h
  if math.type(w) ~= "integer" or math.type(h) ~= "integer" or w < 160 or h < 120 or w > 8192 or h > 8192 then
    error(fmt("%s: width and height must be integers in 160..8192 x 120..8192, got %s x %s",
      fname, tostring(w), tostring(h)), 3)
  end
  return w, h
end

local function save(fname, cv, path)
  local ok, err = pcall(cv.save, cv, path)
  if not ok then
    err = tostring(err):gsub("^Canvas:save: ", "")
    error(fname .. ": " .. err, 3)
  end
  return path
end

-- A 1-d sequence of numbers from a tensor or a Lua array.
local function to_array(fname, what, v)
  if is_tensor(v) then
    if v:dim() ~= 1 then
      error(fmt("%s: %s must be 1-d, got shape [%s]", fname, what, table.concat(v:shape(), ", ")), 3)
    end
    return v:totable()
  elseif type(v) == "table" then
    for i = 1, #v do
      if type(v[i]) ~= "number" then
        error(fmt("%s: %s[%d] is not a number (%s)", fname, what, i, type(v[i])), 3)
      end
    end
    return v
  end
  error(fmt("%s: %s must be a tensor or an array of numbers, got %s", fname, what, type(v)), 3)
end

local function check_names(fname, names, n)
  if type(names) ~= "table" then
    error(fmt("%s: class_names must be an array of strings, got %s", fname, type(names)), 3)
  end
  if n and #names ~= n then
    error(fmt("%s: %d class names for %d classes", fname, #names, n), 3)
  end
  local out = {}
  for i = 1, #names do out[i] = tostring(names[i]) end
  return out
end

local function text_w(s, scale) return (C.text_size(s, scale)) end

----------------------------------------------------------------------------
-- ticks and axes
----------------------------------------------------------------------------

--- Round tick values covering [lo, hi], about n of them; returns ticks and a format.
-- integer = true keeps the step a whole number (epochs, counts).
function plot.ticks(lo, hi, n, integer)
  n = n or 5
  if not (hi > lo) then
    local c = lo
    local d = abs(c) > 0 and abs(c) * 0.1 or 1
    lo, hi = c - d, c + d
  end
  local raw = (hi - lo) / n
  local p = 10 ^ floor(log(raw, 10))
  local step
  for _, m in ipairs({ 1, 2, 2.5, 5, 10 }) do
    step = m * p
    if step >= raw and not (integer and step % 1 ~= 0) then break end
  end
  if integer and step < 1 then step = 1 end
  local k0 = ceil(lo / step - 1e-9)
  local ticks = {}
  local k = k0
  while k * step <= hi + step * 1e-9 do
    local v = tonumber(fmt("%.12g", k * step))
    ticks[#ticks + 1] = v == 0 and 0 or v
    k = k + 1
  end
  local decimals = max(0, -floor(log(step, 10) + 1e-9))
  if step * 10 ^ decimals % 1 ~= 0 then decimals = decimals + 1 end
  local maxabs = max(abs(lo), abs(hi))
  local f
  if maxabs >= 1e6 or (maxabs > 0 and maxabs < 1e-3) then f = "%.2g" else f = "%." .. decimals .. "f" end
  return ticks, f
end

-- Data range with a margin, robust to empty / constant data.
local function range(vals, margin, lo0, hi0)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(vals) do
    if v == v and v ~= math.huge and v ~= -math.huge then
      if v < lo then lo = v end
      if v > hi then hi = v end
    end
  end
  if lo0 then lo = min(lo, lo0) end
  if hi0 then hi = max(hi, hi0) end
  if lo > hi then lo, hi = 0, 1 end
  if hi == lo then
    local d = abs(lo) > 0 and abs(lo) * 0.05 or 0.5
    lo, hi = lo - d, hi + d
  end
  local m = (hi - lo) * (margin or 0)
  return lo - m, hi + m
end

-- Draws the frame, grid, ticks and labels of a plot area; returns x/y mappers.
local function axes(cv, box, xlo, xhi, ylo, yhi, o)
  local x0, y0, w, h = box.x, box.y, box.w, box.h
  local function X(v) return x0 + (v - xlo) / (xhi - xlo) * w end
  local function Y(v) return y0 + h - (v - ylo) / (yhi - ylo) * h end
  local s = o.tick_scale or 1.5
  local xt, xf = plot.ticks(xlo, xhi, o.xticks or 6, o.xinteger)
  local yt, yf = plot.ticks(ylo, yhi, o.yticks or 5)
  for _, v in ipairs(xt) do
    if v >= xlo and v <= xhi then
      local px = X(v)
      if o.grid ~= false then cv:line(px, y0, px, y0 + h, GRID, 1) end
      cv:line(px, y0 + h, px, y0 + h + 5, FRAME, 1)
      cv:text(px, y0 + h + 10, o.xformat and o.xformat(v) or fmt(xf, v), s, SOFT, "center", "top")
    end
  end
  for _, v in ipairs(yt) do
    if v >= ylo and v <= yhi then
      local py = Y(v)
      if o.grid ~= false then cv:line(x0, py, x0 + w, py, GRID, 1) end
      cv:line(x0 - 5, py, x0, py, FRAME, 1)
      cv:text(x0 - 9, py, o.yformat and o.yformat(v) or fmt(yf, v), s, SOFT, "right", "middle")
    end
  end
  cv:stroke_rect(x0 - 0.5, y0 - 0.5, w + 1, h + 1, 1, FRAME)
  local ls = o.label_scale or 2
  if o.xlabel then cv:text(x0 + w / 2, y0 + h + 10 + 7 * s + 14, o.xlabel, ls, INK, "center", "top") end
  if o.ylabel then
    cv:text(o.ylabel_x or (x0 - 60), y0 + h / 2, o.ylabel, ls, INK, "center", "middle", true)
  end
  return X, Y
end

-- The title at scale 2, or smaller when it would not fit the width.
local function title(cv, W, text, y)
  if not text or text == "" then return end
  text = tostring(text)
  local s = min(2, (W - 20) / max(text_w(text, 1), 1))
  cv:text(W / 2, (y or 16) + (2 - s) * 3.5, text, s, INK, "center", "top")
end

-- Shortens a label to at most maxw pixels at scale s, ending it with "..".
local function fit_label(str, s, maxw)
  if text_w(str, s) <= maxw then return str end
  local n = #str
  while n > 1 and text_w(str:sub(1, n) .. "..", s) > maxw do n = n - 1 end
  return str:sub(1, n) .. ".."
end

-- Legend entries {name=, color=, kind="line"|"marker"} in a box at (x, y).
local function legend_size(entries, s)
  local w = 0
  for _, e in ipairs(entries) do w = max(w, text_w(e.name, s)) end
  local row = max(16, 7 * s + 8)
  return w + 44, #entries * row + 10, row
end

local function legend(cv, x, y, entries, s, boxed)
  local w, h, row = legend_size(entries, s)
  if boxed then
    cv:rect(x, y, w, h, 0xFFFFFF, 0.9)
    cv:stroke_rect(x - 0.5, y - 0.5, w + 1, h + 1, 1, 0xCCCCCC)
  end
  for i, e in ipairs(entries) do
    local cy = y + 5 + (i - 0.5) * row
    if e.kind == "line" then
      cv:line(x + 8, cy, x + 30, cy, e.color, 2.5)
    else
      cv:marker(x + 19, cy, 5, e.color, e.shape or "circle", 0xFFFFFF, 1)
    end
    cv:text(x + 38, cy, e.name, s, INK, "left", "middle")
  end
  return w, h
end

----------------------------------------------------------------------------
-- confusion matrix
----------------------------------------------------------------------------

local function to_matrix(fname, M)
  local rows
  if is_tensor(M) then
    local s = M:shape()
    if #s ~= 2 or s[1] ~= s[2] then
      error(fmt("%s: M must be a square matrix [C, C], got shape [%s]", fname, table.concat(s, ", ")), 3)
    end
    rows = M:totable()
  elseif type(M) == "table" then
    rows = M
  else
    error(fmt("%s: M must be a tensor or a nested table, got %s", fname, type(M)), 3)
  end
  local n = #rows
  if n == 0 then error(fname .. ": M is empty", 3) end
  for i = 1, n do
    if type(rows[i]) ~= "table" or #rows[i] ~= n then
      error(fmt("%s: M must be square: row %d has %s entries, expected %d", fname, i,
        type(rows[i]) == "table" and tostring(#rows[i]) or "no", n), 3)
    end
    for j = 1, n do
      local v = rows[i][j]
      if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
        error(fmt("%s: M[%d][%d] must be a finite number >= 0, got %s", fname, i, j, tostring(v)), 3)
      end
    end
  end
  return rows, n
end

--- confusion(path, M, class_names [, opts]): heat map of a confusion matrix
-- (rows true, columns predicted) with the value in each cell.
-- opts: title, normalize (default true: rows scaled to sum to 1, values shown
-- in %), counts (show the count under the percentage; needs M in counts),
-- width (640), height (560), cmap ("blues").
function plot.confusion(path, M, class_names, opts)
  local fname = "plot.confusion"
  check_path(fname, path)
  local rows, n = to_matrix(fname, M)
  local names = check_names(fname, class_names, n)
  opts = check_opts(fname, opts)
  local W, H = check_size(fname, opts, 640, 560)
  local normalize = opts.normalize ~= false
  local cmap = opts.cmap or "blues"
  C.colormap(cmap, 0) -- validates the name

  local V = {}
  local vmax = 0
  for i = 1, n do
    local s = 0
    for j = 1, n do s = s + rows[i][j] end
    V[i] = {}
    for j = 1, n do
      local v = rows[i][j]
      if normalize then v = s > 0 and v / s or 0 end
      V[i][j] = v
      vmax = max(vmax, v)
    end
  end
  if normalize then vmax = 1 elseif vmax == 0 then vmax = 1 end

  local cv = C.canvas(W, H, 0xFFFFFF)
  local has_title = opts.title and opts.title ~= ""
  local top = has_title and 48 or 20
  local ls = 1.5                                   -- class label scale
  local maxname = 0
  for i = 1, n do
    names[i] = fit_label(names[i], ls, W * 0.22)   -- very long names are shortened
    maxname = max(maxname, text_w(names[i], ls))
  end
  local cb_label = normalize and "100%" or fmt("%d", floor(vmax + 0.5))
  local right = 20 + 18 + 10 + text_w(cb_label, ls) + 14
  local left = 14 + 14 + 14 + maxname + 10         -- "True" + gap + names + gap
  -- x labels: horizontal when they fit under a cell, else rotated (read bottom to top)
  local avail_w, grid
  local function fit(bottom_h)
    avail_w = W - left - right
    return min(avail_w, H - top - bottom_h)
  end
  local rotate_x = false
  local horiz_bottom = 10 + 7 * ls + 14 + 14 + 14
  grid = fit(horiz_bottom)
  if maxname > grid / n - 6 then
    rotate_x = true
    grid = fit(10 + maxname + 14 + 14 + 14)
  end
  if grid < 2 * n then error(fmt("%s: a %dx%d figure is too small for %d classes", fname, W, H, n), 2) end
  local cell = floor(grid / n)
  grid = cell * n
  local gx = floor(left + (avail_w - grid) / 2)
  local gy = top
  -- cells
  local function cell_text(v)
    if normalize then
      if v >= 0.9995 then return cell >= 40 and "100%" or "100" end
      return cell >= 40 and fmt("%.1f%%", 100 * v) or fmt("%.0f", 100 * v)
    end
    if v == floor(v) then return fmt("%d", floor(v)) end
    return fmt("%.3g", v)
  end
  -- one text scale for every cell: the largest (up to 1.5) at which the widest value fits
  local widest = 0
  for i = 1, n do
    for j = 1, n do widest = max(widest, text_w(cell_text(V[i][j]), 1)) end
  end
  local vs = floor(min(1.5, (cell - 10) / max(widest, 1)) * 4) / 4
  if vs < 0.75 then vs = 0.75 end
  local show_counts = opts.counts and normalize and cell >= 7 * vs + 7 + 14
  for i = 1, n do
    for j = 1, n do
      local v = V[i][j]
      local col = C.colormap(cmap, v / vmax)
      local x, y = gx + (j - 1) * cell, gy + (i - 1) * cell
      cv:rect(x, y, cell, cell, col)
      local txt = cell_text(v)
      local tc = C.luminance(col) < 0.5 and 0xFFFFFF or 0x1A1A1A
      if show_counts then
        local cs = min(vs, 1.25)
        local gap = 4
        local total = 7 * vs + gap + 7 * cs
        local ty = y + (cell - total) / 2
        cv:text(x + cell / 2, ty, txt, vs, tc, "center", "top")
        cv:text(x + cell / 2, ty + 7 * vs + gap, fmt("%d", floor(rows[i][j] + 0.5)), cs, tc, "center", "top")
      else
        cv:text(x + cell / 2, y + cell / 2, txt, vs, tc, "center", "middle")
      end
    end
  end
  -- thin separators and frame
  for k = 1, n - 1 do
    cv:line(gx + k * cell, gy, gx + k * cell, gy + grid, 0xFFFFFF, 1, 0.6)
    cv:line(gx, gy + k * cell, gx + grid, gy + k * cell, 0xFFFFFF, 1, 0.6)
  end
  cv:stroke_rect(gx - 0.5, gy - 0.5, grid + 1, grid + 1, 1, FRAME)
  -- class names
  for i = 1, n do
    cv:text(gx - 8, gy + (i - 0.5) * cell, names[i], ls, INK, "right", "middle")
    if rotate_x then
      cv:text(gx + (i - 0.5) * cell, gy + grid + 8, names[i], ls, INK, "center", "top", true)
    else
      cv:text(gx + (i - 0.5) * cell, gy + grid + 10, names[i], ls, INK, "center", "top")
    end
  end
  local xlab_y = gy + grid + 10 + (rotate_x and maxname or 7 * ls) + 14
  cv:text(gx + grid / 2, xlab_y, "Predicted", 2, INK, "center", "top")
  cv:text(gx - maxname - 22, gy + grid / 2, "True", 2, INK, "right", "middle", true)
  -- colour bar
  local bx, bw = gx + grid + 20, 18
  local steps = grid
  for k = 0, steps - 1 do
    local t = 1 - (k + 0.5) / steps
    cv:rect(bx, gy + k, bw, 1, C.colormap(cmap, t))
  end
  cv:stroke_rect(bx - 0.5, gy - 0.5, bw + 1, grid + 1, 1, FRAME)
  local ticks = normalize and { 0, 0.25, 0.5, 0.75, 1 } or (plot.ticks(0, vmax, 5))
  for _, t in ipairs(ticks) do
    if t <= vmax then
      local y = gy + grid - t / vmax * grid
      cv:line(bx + bw, y, bx + bw + 4, y, FRAME, 1)
      local lab = normalize and fmt("%d%%", floor(100 * t + 0.5)) or fmt("%g", t)
      cv:text(bx + bw + 8, y, lab, ls, SOFT, "left", "middle")
    end
  end
  if has_title then title(cv, W, opts.title, 16) end
  return save(fname, cv, path), { x = gx, y = gy, cell = cell, n = n, rotated_labels = rotate_x }
end

----------------------------------------------------------------------------
-- scatter
----------------------------------------------------------------------------

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

----------------------------------------------------------------------------
-- curves
----------------------------------------------------------------------------

--- curves(path, {series = {{name=, x=, y=}, ...}, xlabel=, ylabel=, title=,
-- ylim = {lo, hi}, width = 640, height = 420}): line plots with axes, ticks,
-- grid and a legend placed in the emptiest corner. x defaults to 1..#y;
-- x and y may be tensors or arrays; NaN values leave gaps.
function plot.curves(path, spec)
  local fname = "plot.curves"
  check_path(fname, path)
  if type(spec) ~= "table" then error(fname .. ": second argument must be a table with 'series'", 2) end
  local series = spec.series
  if type(series) ~= "table" or #series == 0 then
    error(fname .. ": spec.series must be a non-empty array of {name=, x=, y=}", 2)
  end
  local W, H = check_size(fname, spec, 640, 420)
  local S = {}
  local allx, ally = {}, {}
  for k, s in ipairs(series) do
    if type(s) ~= "table" then error(fmt("%s: series %d must be a table", fname, k), 2) end
    local y = to_array(fname, fmt("series %d y", k), s.y)
    local x
    if s.x == nil then
      x = {}
      for i = 1, #y do x[i] = i end
    else
      x = to_array(fname, fmt("series %d x", k), s.x)
    end
    if #x ~= #y then error(fmt("%s: series %d has %d x values and %d y values", fname, k, #x, #y), 2) end
    S[k] = { name = tostring(s.name or ("series " .. k)), x = x, y = y,
      color = s.color or C.palette(k) }
    for i = 1, #x do allx[#allx + 1] = x[i]; ally[#ally + 1] = y[i] end
  end
  local cv = C.canvas(W, H, 0xFFFFFF)
  local has_title = spec.title and spec.title ~= ""
  local box = { x = 80, y = has_title and 50 or 22 }
  if spec.ylabel then box.x = box.x + 22 end
  box.w = W - box.x - 24
  box.h = H - box.y - 50 - (spec.xlabel and 24 or 0)
  local xlo, xhi = range(allx, 0.02)
  local ylo, yhi
  if spec.ylim then
    ylo, yhi = spec.ylim[1], spec.ylim[2]
    if type(ylo) ~= "number" or type(yhi) ~= "number" or not (yhi > ylo) then
      error(fname .. ": ylim must be {lo, hi} with lo < hi", 2)
    end
  else
    ylo, yhi = range(ally, 0.06)
  end
  local xint = true
  for _, v in ipairs(allx) do if v ~= floor(v) then xint = false; break end end
  local X, Y = axes(cv, box, xlo, xhi, ylo, yhi,
    { xlabel = spec.xlabel, ylabel = spec.ylabel, ylabel_x = box.x - 68, xinteger = xint })
  local entries = {}
  for k, s in ipairs(S) do
    local px, py = {}, {}
    for i = 1, #s.x do
      local yv = s.y[i]
      if yv ~= yv then
        px[i], py[i] = 0 / 0, 0 / 0
      else
        px[i], py[i] = X(s.x[i]), Y(min(max(yv, ylo - (yhi - ylo)), yhi + (yhi - ylo)))
      end
    end
    cv:polyline(px, py, s.color, 2.2)
    if #px <= 40 then
      for i = 1, #px do
        if px[i] == px[i] then cv:marker(px[i], py[i], 3, s.color, "circle", 0xFFFFFF, 1) end
      end
    end
    entries[k] = { name = s.name, color = s.color, kind = "line" }
  end
  -- legend: the corner of the plot area that covers the fewest points
  local ls = 1.5
  local lw, lh = legend_size(entries, ls)
  local best, bx, by = math.huge, nil, nil
  local corners = {
    { box.x + box.w - lw - 8, box.y + 8 }, { box.x + 8, box.y + 8 },
    { box.x + box.w - lw - 8, box.y + box.h - lh - 8 }, { box.x + 8, box.y + box.h - lh - 8 },
  }
  for _, c in ipairs(corners) do
    local hits = 0
    for _, s in ipairs(S) do
      for i = 1, #s.x do
        -- the point and samples along the segment to the next one
        local x1, y1 = X(s.x[i]), Y(s.y[i])
        local x2, y2 = x1, y1
        if i < #s.x then x2, y2 = X(s.x[i + 1]), Y(s.y[i + 1]) end
        for t = 0, 1, 0.125 do
          local px, py = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
          if px >= c[1] - 4 and px <= c[1] + lw + 4 and py >= c[2] - 4 and py <= c[2] + lh + 4 then
            hits = hits + 1
          end
        end
      end
    end
    if hits < best then best, bx, by = hits, c[1], c[2] end
  end
  legend(cv, bx, by, entries, ls, true)
  if has_title then title(cv, W, spec.title, 16) end
  box.xlo, box.xhi, box.ylo, box.yhi = xlo, xhi, ylo, yhi
  box.legend = { x = bx, y = by, w = lw, h = lh }
  return save(fname, cv, path), box
end

----------------------------------------------------------------------------
-- projections
----------------------------------------------------------------------------

local function check_X(fname, X)
  if not is_tensor(X) then error(fmt("%s: X must be a tensor [N, D], got %s", fname, type(X)), 3) end
  if X:dim() ~= 2 then
    error(fmt("%s: X must be 2-d [N, D], got shape [%s]", fname, table.concat(X:shape(), ", ")), 3)
  end
  return X:float()
end

--- pca(X [N,D], k) -> [N,k] projections on the k leading principal axes
-- (each axis' sign fixed so that its largest loading is positive), and the
-- explained variances. Uses the D x D covariance or, when N < D, the N x N Gram matrix.
function plot.pca(X, k)
  local fname = "plot.pca"
  X = check_X(fname, X)
  k = k or 2
  local N, D = X:size(1), X:size(2)
  if math.type(k) ~= "integer" or k < 1 or k > min(N, D) then
    error(fmt("%s: k must be an integer in 1..%d for X of shape [%d, %d], got %s", fname, min(N, D), N, D, tostring(k)), 2)
  end
  local A = ac()
  local Xc = X - X:mean(1):view(1, D)
  local Y, var = A.zeros(N, k), {}
  if N >= D then
    local cov = A.matmul(Xc:transpose(1, 2), Xc) / max(N - 1, 1)
    local w, V = A.linalg.eigh(cov)     -- ascending
    local wt, Vt = w:totable(), V:totable()
    local P = A.zeros(D, k)
    for j = 1, k do
      local col = D - j + 1
      local big, sign = 0, 1
      for i = 1, D do if abs(Vt[i][col]) > big then big = abs(Vt[i][col]); sign = Vt[i][col] < 0 and -1 or 1 end end
      for i = 1, D do P[i][j] = sign * Vt[i][col] end
      var[j] = max(wt[col], 0)
    end
    Y = A.matmul(Xc, P)
  else
    local G = A.matmul(Xc, Xc:transpose(1, 2))
    local w, U = A.linalg.eigh(G)
    local wt = w:totable()
    local Ut = U:totable()
    for j = 1, k do
      local col = N - j + 1
      local s = math.sqrt(max(wt[col], 0))
      -- sign from the loading vector v = Xc^T u / s
      local u = A.zeros(N, 1)
      for i = 1, N do u[i][1] = Ut[i][col] end
      local v = A.matmul(Xc:transpose(1, 2), u):view(D):totable()
      local big, sign = 0, 1
      for i = 1, D do if abs(v[i]) > big then big = abs(v[i]); sign = v[i] < 0 and -1 or 1 end end
      for i = 1, N do Y[i][j] = sign * s * Ut[i][col] end
      var[j] = max(wt[col], 0) / max(N - 1, 1)
    end
  end
  return Y, var
end

--- tsne(X [N,D], opts) -> Y [N, dims], kl. opts: perplexity (30, lowered to
-- (N-1)/3 for small N), iterations (1000), exaggeration (12),
-- exaggeration_iterations (250), learning_rate (0 = max(N/12/4, 50)),
-- dims (2), seed (default: drawn from the global generator, so
-- ac.manual_seed fixes it), init ("pca" (default) or "random").
function plot.tsne(X, opts)
  local fname = "plot.tsne"
  X = check_X(fname, X)
  opts = check_opts(fname, opts)
  local N = X:size(1)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.perplexity == nil then o.perplexity = min(30, (N - 1) / 3) end
  local init = o.init or "pca"
  o.init = nil
  local Y0
  if init == "pca" then
    local dims = o.dims or 2
    if N >= 4 and X:size(2) >= dims then
      Y0 = plot.pca(X, dims)
      local first = Y0:select(2, 1)
      local sd = first:std()
      if type(sd) ~= "number" then sd = sd:item() end
      if sd > 0 then Y0 = Y0 * (1e-4 / sd) else Y0 = nil end
    end
  elseif init ~= "random" then
    error(fmt("%s: init must be \"pca\" or \"random\", got %s", fname, tostring(init)), 2)
  end
  local ok, Y, kl = pcall(C.tsne, X, Y0, o)
  if not ok then error(fname .. ": " .. tostring(Y), 2) end
  return Y, kl
end

--- embedding(path, X [N,D], labels, class_names [, opts]): projects X to 2-d
-- (opts.method = "pca" (default) or "tsne"; t-SNE options pass through:
-- perplexity, iterations, seed) and draws the scatter plot. Returns path and
-- the 2-d coordinates [N,2].
function plot.embedding(path, X, labels, class_names, opts)
  local fname = "plot.embedding"
  check_path(fname, path)
  X = check_X(fname, X)
  opts = check_opts(fname, opts)
  local names = check_names(fname, class_names)
  to_labels(fname, labels, X:size(1), #names)
  local method = opts.method or "pca"
  local Y, xl, yl
  if method == "pca" then
    if X:size(1) < 2 or X:size(2) < 2 then
      error(fmt("%s: PCA to 2-d needs at least 2 points and 2 features, got [%d, %d]", fname, X:size(1), X:size(2)), 2)
    end
    local var
    Y, var = plot.pca(X, 2)
    local tot = 0
    local Xc = X - X:mean(1):view(1, X:size(2))
    tot = (Xc * Xc):sum() / max(X:size(1) - 1, 1)
    if type(tot) ~= "number" then tot = tot:item() end
    xl = tot > 0 and fmt("PC1 (%.1f%%)", 100 * var[1] / tot) or "PC1"
    yl = tot > 0 and fmt("PC2 (%.1f%%)", 100 * var[2] / tot) or "PC2"
  elseif method == "tsne" then
    local o = {}
    for _, k in ipairs({ "perplexity", "iterations", "seed", "learning_rate", "exaggeration",
      "exaggeration_iterations", "init" }) do o[k] = opts[k] end
    Y = plot.tsne(X, o)
    xl, yl = "t-SNE 1", "t-SNE 2"
  else
    error(fmt("%s: method must be \"pca\" or \"tsne\", got %s", fname, tostring(method)), 2)
  end
  local sopts = { title = opts.title or (method == "pca" and "PCA of the embeddings" or "t-SNE of the embeddings"),
    xlabel = xl, ylabel = yl, width = opts.width, height = opts.height, radius = opts.radius, alpha = opts.alpha }
  plot.scatter(path, Y, labels, names, sopts)
  return path, Y
end

return plot
