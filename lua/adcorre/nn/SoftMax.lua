--- nn.SoftMax(): softmax over the last dimension (each row sums to 1).
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")

local SoftMax = Module.class("nn.SoftMax", Module)
SoftMax._fwd = "softmax_forward"
SoftMax._bwd = "softmax_backward_input"

function SoftMax:updateOutput(input)
  self:_checkInput("forward", input, 1, 2)
  local y = self:_resized("output", input:shape())
  self:_call("forward", core.nn[self._fwd], input, y)
  return y
end

function SoftMax:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", gradOutput:shape())
  self:_call("backward", core.nn[self._bwd], gradOutput, self.output, gx)
  return gx
end

return SoftMax
