--- nn.Identity: output = input, gradInput = gradOutput (no copies).
local Module = require("adcorre.nn.Module")

local Identity = Module.class("nn.Identity", Module)
Identity._needsInputField = false
Identity._needsOutputField = false

function Identity:updateOutput(input)
  self.output = input
  return input
end

function Identity:updateGradInput(input, gradOutput)
  self.gradInput = gradOutput
  return gradOutput
end

return Identity
