--- nn.ReLU(): y = max(x, 0); the gradient at 0 is 0.
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")

local ReLU = Module.class("nn.ReLU", Module)

function ReLU:updateOutput(input)
  self:_checkInput("forward", input)
  local y = self:_resized("output", input:shape())
  self:_call("forward", core.nn_relu_forward, input, y)
  return y
end

function ReLU:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", gradOutput:shape())
  self:_call("backward", core.nn_relu_backward_input, gradOutput, self.output, gx)
  return gx
end

return ReLU
