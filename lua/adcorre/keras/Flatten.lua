--- keras.Flatten(): Keras' Flatten of an NCHW input: [B, C, H, W] -> [B, H*W*C]
-- in NHWC order (what a Dense layer after it was trained on); a 2-d input
-- passes through.
local Module = require("adcorre.nn.Module")

local Flatten = Module.class("keras.Flatten", Module)

function Flatten:updateOutput(input)
  self:_checkInput("forward", input, 2, 4)
  if input:dim() == 2 then
    self.output = input
    return input
  end
  local s = input:shape()
  local y = self:_resized("output", {s[1], s[3], s[4], s[2]})
  y:copy(input:permute(1, 3, 4, 2))
  self.output = y:view(s[1], s[2] * s[3] * s[4])
  return self.output
end

function Flatten:updateGradInput(input, gradOutput)
  if input:dim() == 2 then
    self.gradInput = gradOutput
    return gradOutput
  end
  local s = input:shape()
  local gx = self:_resized("gradInput", s)
  gx:permute(1, 3, 4, 2):copy(gradOutput:view(s[1], s[3], s[4], s[2]))
  return gx
end

function Flatten:__tostring__() return "keras.Flatten (NHWC order)" end

return Flatten
