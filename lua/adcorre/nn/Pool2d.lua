--- nn.Pool2d: shared code of MaxPool2d and AvgPool2d.
--   XPool2d(k [, stride = k [, pad = 0 [, opts]]])
--   k, stride : a number or {h, w}
--   pad       : a number, {h, w} (each smaller than the kernel), "valid" or
--               "same" (Keras/TensorFlow: output ceil(H/stride), the odd
--               cell of padding at the bottom/right)
-- Padding cells are -inf for max pooling. For average pooling they are
-- zeros counted in the divisor when opts.count_include_pad (the default for
-- numeric padding, as PyTorch), and excluded with "same" (as Keras).
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")
local window = require("adcorre.nn.window")
local pair = window.pair

local Pool2d = Module.class("nn.Pool2d", Module)

function Pool2d:__init(k, stride, pad, opts)
  Module.__init(self)
  local name = self.__typename:gsub("^nn%.", "")
  opts = opts or {}
  self.kh, self.kw = pair(k, "kernel size", false, name)
  self.sh, self.sw = pair(stride or { self.kh, self.kw }, "stride", false, name)
  window.set_padding(self, pad, name)
  if self.padding ~= "same" and (self.ph >= self.kh or self.pw >= self.kw) then
    error(("%s: padding %d,%d must be smaller than the kernel %dx%d"):format(name, self.ph, self.pw, self.kh, self.kw), 3)
  end
  if opts.count_include_pad == nil then
    self.count_include_pad = self.padding ~= "same"
  else
    self.count_include_pad = opts.count_include_pad and true or false
  end
  self._args = { { self.kh, self.kw }, { self.sh, self.sw },
                 self.padding == "same" and "same" or { self.ph, self.pw },
                 { count_include_pad = self.count_include_pad } }
end

-- {kh, kw, sh, sw, pt, pl, pb, pr, count_include_pad} for input shape s
function Pool2d:_geometry(s)
  local g = self._geo
  local key = s[3] * 65536 + s[4]
  if g and g.key == key then return g end
  local pt, pb, pl, pr = window.padding(self, s)
  g = { self.kh, self.kw, self.sh, self.sw, pt, pl, pb, pr, self.count_include_pad, key = key }
  self._geo = g
  return g
end

function Pool2d:_prepare(method, x)
  self:_checkInput(method, x, 4)
  local s = x:shape()
  local geo = self:_geometry(s)
  local OH, OW = self:_call(method, core.nn.pool2d_info, s, geo)
  return s, geo, OH, OW
end

function Pool2d:_describe()
  local parts = { ("%dx%d"):format(self.kh, self.kw) }
  parts[#parts + 1] = ("stride %d,%d"):format(self.sh, self.sw)
  if self.padding == "same" then parts[#parts + 1] = "pad same"
  elseif self.ph ~= 0 or self.pw ~= 0 then parts[#parts + 1] = ("pad %d,%d"):format(self.ph, self.pw) end
  return table.concat(parts, ", ")
end

function Pool2d:__tostring__()
  return self.__typename .. "(" .. self:_describe() .. ")"
end

return Pool2d
