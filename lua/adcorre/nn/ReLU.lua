--- nn.ReLU([inplace]): y = max(x, 0); the gradient at 0 is 0.
-- With inplace = true (Torch's nn.ReLU(true)) the output is the input tensor
-- itself, overwritten: for a ReLU whose input nothing else reads afterwards,
-- e.g. right after a batch norm (whose backward needs only its own input),
-- it saves one activation of memory. A non-contiguous input is not
-- overwritten (a new output is made).
local Module = require("adcorre.nn.Module")
local core = require("adcorre.core")

local ReLU = Module.class("nn.ReLU", Module)
ReLU._needsInputField = false   -- the backward reads the output (adcorre.memory.plan)

function ReLU:__init(inplace)
  Module.__init(self)
  if inplace ~= nil and type(inplace) ~= "boolean" then
    error("ReLU: inplace must be a boolean, got " .. type(inplace), 3)
  end
  self.inplace = inplace == true
  if self.inplace then self._args = { true } end
end

function ReLU:updateOutput(input)
  self:_checkInput("forward", input)
  if self.inplace and input:is_contiguous() then
    self:_call("forward", core.nn.relu_forward, input, input)
    self.output = input
    return input
  end
  local y = self:_resized("output", input:shape())
  self:_call("forward", core.nn.relu_forward, input, y)
  return y
end

--- For containers that drop outputs (adcorre.memory.plan): the output again from the
--- same input, into self.output (not for ReLU(true), whose input is gone).
function ReLU:_recomputeOutput(input)
  if self.inplace then self:_error("forward", "ReLU(true) cannot recompute its output (its input was overwritten)") end
  self:_checkInput("forward", input)
  local y = self:_resized("output", input:shape())
  self:_call("forward", core.nn.relu_forward, input, y)
  return y
end
function ReLU:_canRecomputeOutput() return not self.inplace end

function ReLU:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local gx = self:_resized("gradInput", gradOutput:shape())
  self:_call("backward", core.nn.relu_backward_input, gradOutput, self.output, gx)
  return gx
end

function ReLU:__tostring__()
  return self.inplace and "nn.ReLU(inplace)" or "nn.ReLU"
end

return ReLU
