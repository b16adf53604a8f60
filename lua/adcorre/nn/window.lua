--- adcorre.nn.window: the kernel / stride / padding arguments shared by the
-- sliding-window modules (Conv2d, Pool2d).
--   pad: a number, {h, w}, "valid" (0) or "same" (Keras/TensorFlow: output
--        ceil(H/stride), the odd cell of padding at the bottom/right)
local core = require("adcorre.core")

local window = {}

--- (a, b) from a number or a pair {h, w} of integers >= 1 (>= 0 with
--- allow_zero); the error names `name` and points at the module's caller
--- (level 4: pair <- __init <- constructor <- caller) unless `level` is given.
function window.pair(v, what, allow_zero, name, level)
  local a, b
  if type(v) == "table" then a, b = v[1], v[2] else a, b = v, v end
  local lo = allow_zero and 0 or 1
  if math.type(a) ~= "integer" or math.type(b) ~= "integer" or a < lo or b < lo then
    error(("%s: %s must be an integer >= %d or a pair {h, w}, got %s"):format(name, what, lo, tostring(v)),
      level or 4)
  end
  return a, b
end

--- Sets m.padding ("same" or {ph, pw}) and m.ph, m.pw from a pad argument
--- (called from a module's __init).
function window.set_padding(m, pad, name)
  pad = pad or 0
  if pad == "valid" then pad = 0 end
  if pad == "same" then
    m.padding = "same"
  else
    m.ph, m.pw = window.pair(pad, "padding", true, name, 5)
    m.padding = { m.ph, m.pw }
  end
end

--- Padding top, bottom, left, right of module m (kh, kw, sh, sw, padding,
--- ph, pw) for an input of shape s (NCHW).
function window.padding(m, s)
  if m.padding == "same" then
    local pt, pb = core.nn.same_padding(s[3], m.kh, m.sh)
    local pl, pr = core.nn.same_padding(s[4], m.kw, m.sw)
    return pt, pb, pl, pr
  end
  return m.ph, m.ph, m.pw, m.pw
end

return window
