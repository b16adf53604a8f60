--- nn.AvgPool2d(k [, stride = k [, pad = 0 [, opts]]]): average pooling over
-- NCHW input. opts.count_include_pad: see adcorre.nn.Pool2d.
local Pool2d = require("adcorre.nn.Pool2d")
local core = require("adcorre.core")

local AvgPool2d = Pool2d.class("nn.AvgPool2d", Pool2d)

function AvgPool2d:updateOutput(input)
  local s, geo, OH, OW = self:_prepare("forward", input)
  local y = self:_resized("output", { s[1], s[2], OH, OW })
  self:_call("forward", core.nn.avgpool2d_forward, input, y, geo)
  return y
end

function AvgPool2d:updateGradInput(input, gradOutput)
  local s, geo = self:_prepare("backward", input)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", s)
  self:_call("backward", core.nn.avgpool2d_backward_input, gradOutput, gx, geo)
  return gx
end

function AvgPool2d:__tostring__()
  return "nn.AvgPool2d(" .. self:_describe() .. (self.count_include_pad and "" or ", excluding padding") .. ")"
end

return AvgPool2d
