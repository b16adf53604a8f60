--- nn.L2Normalize([eps = 1e-12]): scales each row (last dimension) to unit
-- length: y = x / sqrt(max(|x|^2, eps)) (TensorFlow's l2_normalize). A zero
-- row gives a zero output and a finite gradient.
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")

local L2Normalize = Module.class("nn.L2Normalize", Module)

function L2Normalize:__init(eps)
  Module.__init(self)
  eps = eps or 1e-12
  if type(eps) ~= "number" or eps <= 0 then error("L2Normalize: eps must be > 0, got " .. tostring(eps), 2) end
  self.eps = eps
  self._args = { eps }
end

function L2Normalize:updateOutput(input)
  self:_checkInput("forward", input, 1, 2)
  local s = input:shape()
  local y = self:_resized("output", s)
  local rows = #s == 1 and 1 or s[1]
  local norm = self:_buffer("norm", { rows })
  self:_call("forward", core.nn.l2norm_forward, input, y, norm, self.eps)
  return y
end

function L2Normalize:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", gradOutput:shape())
  self:_call("backward", core.nn.l2norm_backward_input, gradOutput, self.output, self._bufs.norm, gx, self.eps)
  return gx
end

function L2Normalize:__tostring__()
  return "nn.L2Normalize"
end

return L2Normalize
