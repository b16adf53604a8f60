--- nn.SeparableConv2d(nin, nout, k [, stride [, pad [, opts]]]): Keras'
-- SeparableConv2D: a depthwise k x k convolution (nin -> nin * multiplier,
-- groups = nin, stride and padding as given) followed by a pointwise 1 x 1
-- convolution (-> nout). Neither has a bias unless opts.bias is true (then
-- only the pointwise one does, as in Keras). opts.multiplier (default 1) is
-- Keras' depth_multiplier. Parameters: depthwise.weight [nin*m, 1, kh, kw],
-- pointwise.weight [nout, nin*m, 1, 1].
local Container = require("adcorre.nn.Container")
local Module = require("adcorre.nn.Module")
local Conv2d = require("adcorre.nn.Conv2d")

local SeparableConv2d = Container.class("nn.SeparableConv2d", Container)
SeparableConv2d._needsOutputField = false   -- as its pointwise Conv2d (adcorre.memory.plan)

function SeparableConv2d:__init(nin, nout, k, stride, pad, opts)
  Container.__init(self)
  opts = opts or {}
  local m = opts.multiplier or 1
  if math.type(m) ~= "integer" or m < 1 then
    error("SeparableConv2d: multiplier must be a positive integer, got " .. tostring(m), 2)
  end
  if math.type(nin) ~= "integer" or nin < 1 then error("SeparableConv2d: nin must be a positive integer, got " .. tostring(nin), 2) end
  if math.type(nout) ~= "integer" or nout < 1 then error("SeparableConv2d: nout must be a positive integer, got " .. tostring(nout), 2) end
  self.nin, self.nout, self.multiplier = nin, nout, m
  self.depthwise = Conv2d(nin, nin * m, k, stride, pad, nin, { bias = false, init = opts.init })
  self.pointwise = Conv2d(nin * m, nout, 1, 1, 0, 1, { bias = opts.bias == true, init = opts.init })
  self.depthwise.name = "depthwise"
  self.pointwise.name = "pointwise"
  self.modules = { self.depthwise, self.pointwise }
  local dw = self.depthwise
  self._args = { nin, nout, { dw.kh, dw.kw }, { dw.sh, dw.sw }, dw._args[5],
                 { bias = opts.bias == true, multiplier = m } }
end

function SeparableConv2d:reset(scheme)
  self.depthwise:reset(scheme)
  self.pointwise:reset(scheme)
  return self
end
SeparableConv2d.init = SeparableConv2d.reset

-- Errors read "SeparableConv2d:forward: ..." rather than naming the inner convolution.
local function run(self, method, f, ...)
  local ok, r = pcall(f, ...)
  if not ok then
    local msg = tostring(r):gsub("^Conv2d:", "SeparableConv2d:")
    error(msg, 0)
  end
  return r
end

-- Training: the depthwise output (the pointwise convolution's input, read
-- by its weight gradient) is handed back to the shared pool once the
-- pointwise forward has run, and recomputed from the input at the start of
-- the backward, when one sample's depthwise output has at least
-- SeparableConv2d.recomputeMin elements (the default recomputes Xception's
-- large depthwise outputs and keeps mini-Xception's, where the extra pass
-- would cost time for memory it does not need: doc/performance.md). The
-- gradients are identical.
-- m:keepOutputs() keeps it; 0 always recomputes.
SeparableConv2d.recomputeMin = 65536

function SeparableConv2d:updateOutput(input)
  local h = run(self, "forward", self.depthwise.updateOutput, self.depthwise, input)
  self.output = run(self, "forward", self.pointwise.updateOutput, self.pointwise, h)
  self._dwRecompute = nil
  if self.train and not self._keepOutputs and h:numel() >= SeparableConv2d.recomputeMin * h:size(1) then
    self.depthwise:_dropOutput()
    self._dwRecompute = true
  end
  return self.output
end

-- The depthwise output of the last forward, recomputed when it was released.
local function dw_output(self, input)
  local h = rawget(self.depthwise, "output")
  if h == nil and self._dwRecompute then
    h = run(self, "backward", self.depthwise.updateOutput, self.depthwise, input)
  end
  return h
end

function SeparableConv2d:updateGradInput(input, gradOutput)
  local g = run(self, "backward", self.pointwise.updateGradInput, self.pointwise, dw_output(self, input), gradOutput)
  self.gradInput = run(self, "backward", self.depthwise.updateGradInput, self.depthwise, input, g)
  return self.gradInput
end

function SeparableConv2d:accGradParameters(input, gradOutput, scale)
  run(self, "backward", self.pointwise.accGradParameters, self.pointwise, dw_output(self, input), gradOutput, scale)
  run(self, "backward", self.depthwise.accGradParameters, self.depthwise, input, self.pointwise.gradInput, scale)
end

function SeparableConv2d:backward(input, gradOutput, scale)
  local h = dw_output(self, input)
  local g = run(self, "backward", self.pointwise.backward, self.pointwise, h, gradOutput, scale)
  -- the pointwise weight gradient has read h: back to the pool before the
  -- depthwise backward takes its buffers
  if self._dwRecompute and not self._keepOutputs then self.depthwise:_dropOutput() end
  self.gradInput = run(self, "backward", self.depthwise.backward, self.depthwise, input, g, scale)
  Module._releaseGradInput(self.pointwise, self.gradInput)
  return self.gradInput
end

function SeparableConv2d:__tostring__()
  local dw = self.depthwise
  local parts = { ("%d -> %d, %dx%d"):format(self.nin, self.nout, dw.kh, dw.kw) }
  if dw.sh ~= 1 or dw.sw ~= 1 then parts[#parts + 1] = ("stride %d,%d"):format(dw.sh, dw.sw) end
  if dw.padding == "same" then parts[#parts + 1] = "pad same"
  elseif dw.ph ~= 0 or dw.pw ~= 0 then parts[#parts + 1] = ("pad %d,%d"):format(dw.ph, dw.pw) end
  if self.multiplier ~= 1 then parts[#parts + 1] = "multiplier " .. self.multiplier end
  if self.pointwise.bias then parts[#parts + 1] = "bias" end
  return "nn.SeparableConv2d(" .. table.concat(parts, ", ") .. ")"
end

return SeparableConv2d
