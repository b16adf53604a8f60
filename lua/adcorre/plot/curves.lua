--- adcorre.plot.curves: line plots (training curves) with a legend in the
-- emptiest corner.
local core = require("adcorre.core")
local C = core.plot
local fmt = string.format
local floor, max, min = math.floor, math.max, math.min
local u = require("adcorre.plot.util")
local check_path = u.check_path
local check_size = u.check_size
local save = u.save
local to_array = u.to_array
local range = u.range
local axes = u.axes
local title = u.title
local legend_size = u.legend_size
local legend = u.legend

local plot = {}

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

return plot
