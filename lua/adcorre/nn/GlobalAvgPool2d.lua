--- nn.GlobalAvgPool2d(): the mean over H and W: [N, C, H, W] -> [N, C]
-- (Keras' GlobalAveragePooling2D).
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")

local GlobalAvgPool2d = Module.class("nn.GlobalAvgPool2d", Module)

function GlobalAvgPool2d:updateOutput(input)
  self:_checkInput("forward", input, 4)
  local s = input:shape()
  local y = self:_resized("output", { s[1], s[2] })
  self:_call("forward", core.nn.global_avgpool_forward, input, y)
  return y
end

function GlobalAvgPool2d:updateGradInput(input, gradOutput)
  self:_checkInput("backward", input, 4)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", input:shape())
  self:_call("backward", core.nn.global_avgpool_backward_input, gradOutput, gx)
  return gx
end

return GlobalAvgPool2d
