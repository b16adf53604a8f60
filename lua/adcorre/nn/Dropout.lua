--- nn.Dropout([p = 0.5]): inverted dropout. In training mode each element
-- is zeroed with probability p and the others are scaled by 1/(1-p); in
-- evaluation mode (or with p = 0) it is the identity. The mask is drawn from
-- the library generator (ac.manual_seed fixes it).
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")

local Dropout = Module.class("nn.Dropout", Module)
-- the backward reads the mask only
Dropout._needsInputField = false
Dropout._needsOutputField = false

function Dropout:__init(p)
  Module.__init(self)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p >= 1 then
    error("Dropout: p must be in [0, 1), got " .. tostring(p), 2)
  end
  self.p = p
  self._args = { p }
end

function Dropout:updateOutput(input)
  self:_checkInput("forward", input)
  if not self.train or self.p == 0 then
    self._identity = true
    self.output = input
    return input
  end
  self._identity = false
  local s = input:shape()
  -- own buffers (self.output may still alias the input from an identity call)
  local y = self:_buffer("output", s)
  self.output = y
  local mask = self:_buffer("mask", s)
  self:_call("forward", core.nn.dropout_forward, input, y, mask, self.p)
  return y
end

function Dropout:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  if self._identity then
    self.gradInput = gradOutput
    return gradOutput
  end
  local gx = self:_buffer("gradInput", gradOutput:shape())
  self.gradInput = gx
  self:_call("backward", core.nn.mul_backward_input, gradOutput, self._bufs.mask, gx)
  return gx
end

function Dropout:__tostring__()
  return ("nn.Dropout(%g)"):format(self.p)
end

return Dropout
