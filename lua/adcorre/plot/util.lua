--- adcorre.plot.util: what every figure shares: argument checks that name
-- the function and argument, the atomic save, ticks, axes, titles and
-- legends. Errors are raised at the level of the public function's caller.
local core = require("adcorre.core")
local C = core.plot
local fmt = string.format
local floor, ceil, log, max, min, abs = math.floor, math.ceil, math.log, math.max, math.min, math.abs
local is_tensor = core.tensor.is_tensor

local plot = {}

local INK = 0x222222      -- text and axes
local SOFT = 0x555555     -- tick labels
local GRID = 0xE6E6E6     -- grid lines
local FRAME = 0x888888
plot.INK, plot.SOFT, plot.GRID, plot.FRAME = INK, SOFT, GRID, FRAME

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

plot.fail, plot.check_path, plot.check_opts, plot.check_size = fail, check_path, check_opts, check_size
plot.save, plot.to_array, plot.check_names, plot.text_w = save, to_array, check_names, text_w
plot.range, plot.axes, plot.title, plot.fit_label = range, axes, title, fit_label
plot.legend_size, plot.legend = legend_size, legend
return plot
