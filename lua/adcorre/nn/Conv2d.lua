--- nn.Conv2d(nin, nout, k [, stride [, pad [, groups [, opts]]]]): 2-D
-- convolution of NCHW input, weight [nout, nin/groups, kh, kw].
--   k, stride : a number or {h, w}              (stride default 1)
--   pad       : a number, {h, w}, "valid" (0) or "same" (Keras/TensorFlow:
--               output ceil(H/stride), the odd cell of padding at the
--               bottom/right)                   (default 0)
--   groups    : default 1; groups == nin is a depthwise convolution
--   opts      : {bias = true, init = "glorot"} (opts may take the place of groups)
-- Kernels: im2col + sgemm, a plain GEMM for 1x1 stride-1 convolutions and
-- direct loops for depthwise ones. Scratch memory is shared by all Conv2d
-- modules (calls never overlap) and reused between calls.
--
-- Initialisation follows Keras: Glorot-uniform with fan_in = nin/groups*kh*kw
-- and fan_out = nout*kh*kw, except for depthwise convolutions (groups == nin),
-- where Keras' DepthwiseConv2D kernel (kh, kw, nin, nout/nin) gives
-- fan_in = nin*kh*kw and fan_out = nout/nin*kh*kw. Biases start at zero.
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")
local core = require("adcorre.core")
local initializers = require("adcorre.nn.initializers")
local window = require("adcorre.nn.window")

local Conv2d = Module.class("nn.Conv2d", Module)
Conv2d._needsOutputField = false   -- the backward reads the input (adcorre.memory.plan)

-- One scratch buffer for every convolution.
local shared = {}

function Conv2d:__init(nin, nout, k, stride, pad, groups, opts)
  Module.__init(self)
  if type(groups) == "table" then opts, groups = groups, nil end
  opts = opts or {}
  groups = groups or 1
  if math.type(nin) ~= "integer" or nin < 1 then error("Conv2d: nin must be a positive integer, got " .. tostring(nin), 2) end
  if math.type(nout) ~= "integer" or nout < 1 then error("Conv2d: nout must be a positive integer, got " .. tostring(nout), 2) end
  if math.type(groups) ~= "integer" or groups < 1 or nin % groups ~= 0 or nout % groups ~= 0 then
    error(("Conv2d: groups=%s must divide nin=%d and nout=%d"):format(tostring(groups), nin, nout), 2)
  end
  self.nin, self.nout, self.groups = nin, nout, groups
  self.kh, self.kw = window.pair(k, "kernel size", false, "Conv2d")
  self.sh, self.sw = window.pair(stride or 1, "stride", false, "Conv2d")
  window.set_padding(self, pad, "Conv2d")
  self.weight = ac.zeros(nout, nin // groups, self.kh, self.kw)
  self.gradWeight = ac.zeros(nout, nin // groups, self.kh, self.kw)
  if opts.bias ~= false then
    self.bias = ac.zeros(nout)
    self.gradBias = ac.zeros(nout)
  end
  self._args = { nin, nout, { self.kh, self.kw }, { self.sh, self.sw },
                 self.padding == "same" and "same" or { self.ph, self.pw }, groups,
                 { bias = opts.bias ~= false } }
  self:reset(opts.init)
end

--- Keras fans (see the file comment).
function Conv2d:fans()
  local r = self.kh * self.kw
  if self.groups == self.nin and self.groups > 1 then
    return self.nin * r, (self.nout // self.nin) * r
  end
  return (self.nin // self.groups) * r, self.nout * r
end

--- Re-initialises the weight with `scheme` (default "glorot") and zeroes the bias.
function Conv2d:reset(scheme)
  local fi, fo = self:fans()
  initializers.fill(self.weight, scheme, fi, fo)
  if self.bias then self.bias:zero() end
  return self
end
Conv2d.init = Conv2d.reset

--- Removes the bias. Returns self.
function Conv2d:noBias()
  self.bias, self.gradBias = nil, nil
  self._args[7] = { bias = false }
  return self
end

-- {sh, sw, pt, pl, pb, pr, groups} for an input of shape s.
function Conv2d:_geometry(s)
  local g = self._geo
  local key = s[3] * 65536 + s[4]
  if g and g.key == key then return g end
  local pt, pb, pl, pr = window.padding(self, s)
  g = { self.sh, self.sw, pt, pl, pb, pr, self.groups, key = key }
  self._geo = g
  return g
end

function Conv2d:_prepare(method, x)
  self:_checkInput(method, x, 4)
  local s = x:shape()
  if s[2] ~= self.nin then
    self:_error(method, "input has %d channels, weight expects %d (input %s)", s[2], self.nin, self._shapeStr(s))
  end
  local geo = self:_geometry(s)
  local OH, OW, nws = self:_call(method, core.nn.conv2d_info, s, self.weight:shape(), geo)
  local ws
  if nws > 0 then
    -- one flat buffer, grown to the largest need (the kernels take a prefix)
    ws = shared.ws
    if not ws or ws:numel() < nws then
      ws = ac.zeros(nws)
      shared.ws = ws
    end
  end
  return s, geo, OH, OW, ws
end

function Conv2d:updateOutput(input)
  local s, geo, OH, OW, ws = self:_prepare("forward", input)
  local y = self:_resized("output", { s[1], self.nout, OH, OW })
  self:_call("forward", core.nn.conv2d_forward, input, self.weight, self.bias, y, ws, geo)
  return y
end

function Conv2d:updateGradInput(input, gradOutput)
  local s, geo, _, _, ws = self:_prepare("backward", input)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", s)
  self:_call("backward", core.nn.conv2d_backward_input, input, gradOutput, self.weight, gx, ws, geo)
  return gx
end

function Conv2d:accGradParameters(input, gradOutput, scale)
  local _, geo, _, _, ws = self:_prepare("backward", input)
  self:_checkGradOutput("backward", gradOutput, self.output)
  self:_call("backward", core.nn.conv2d_backward_params, input, gradOutput, self.gradWeight,
    self.gradBias, ws, geo, scale or 1)
end

--- backward = updateGradInput + accGradParameters. Which convolutions do
-- both in one pass over gradOutput is the kernels' rule, decided in one
-- place (core.convfast.backward_fused: true when it ran, depthwise 3x3
-- "same" on the fast kernels); the others run the two kernels in turn.
function Conv2d:backward(input, gradOutput, scale)
  local s, geo, _, _, ws = self:_prepare("backward", input)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", s)
  if not self:_call("backward", core.convfast.backward_fused, input, gradOutput, self.weight, gx,
      self.gradWeight, self.gradBias or nil, geo, scale or 1) then
    self:_call("backward", core.nn.conv2d_backward_input, input, gradOutput, self.weight, gx, ws, geo)
    self:_call("backward", core.nn.conv2d_backward_params, input, gradOutput, self.gradWeight,
      self.gradBias, ws, geo, scale or 1)
  end
  return gx
end

--- Frees the scratch buffer shared by all convolutions.
function Conv2d.releaseWorkspace() shared.ws = nil end

function Conv2d:__tostring__()
  local parts = { ("%d -> %d, %dx%d"):format(self.nin, self.nout, self.kh, self.kw) }
  if self.sh ~= 1 or self.sw ~= 1 then
    parts[#parts + 1] = self.sh == self.sw and ("stride %d"):format(self.sh) or ("stride %d,%d"):format(self.sh, self.sw)
  end
  if self.padding == "same" then
    parts[#parts + 1] = "pad same"
  elseif self.ph ~= 0 or self.pw ~= 0 then
    parts[#parts + 1] = self.ph == self.pw and ("pad %d"):format(self.ph) or ("pad %d,%d"):format(self.ph, self.pw)
  end
  if self.groups ~= 1 then
    parts[#parts + 1] = self.groups == self.nin and "depthwise" or ("groups %d"):format(self.groups)
  end
  if not self.bias then parts[#parts + 1] = "no bias" end
  return "nn.Conv2d(" .. table.concat(parts, ", ") .. ")"
end

return Conv2d
