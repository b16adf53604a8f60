--- adcorre.plot.confusion: the confusion-matrix heat map (percentages in
-- the cells, class names on both axes).
local core = require("adcorre.core")
local C = core.plot
local fmt = string.format
local floor, max, min = math.floor, math.max, math.min
local is_tensor = core.tensor.is_tensor
local u = require("adcorre.plot.util")
local check_path = u.check_path
local check_opts = u.check_opts
local check_size = u.check_size
local save = u.save
local check_names = u.check_names
local text_w = u.text_w
local title = u.title
local fit_label = u.fit_label
local INK = u.INK
local SOFT = u.SOFT
local FRAME = u.FRAME

local plot = { ticks = u.ticks }

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

return plot
