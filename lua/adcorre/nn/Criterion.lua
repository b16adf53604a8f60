--- adcorre.nn.Criterion: base class of losses (Torch's nn.Criterion).
--   loss = c:forward(input, target)        (a number; = c:updateOutput)
--   gradInput = c:backward(input, target)  (= c:updateGradInput)
local Module = require("adcorre.nn.Module")

local Criterion = Module.class("nn.Criterion", Module)
Criterion._paramFields = {}

function Criterion:__init()
  Module.__init(self)
  self.output = 0
end

function Criterion:forward(input, target)
  return self:updateOutput(input, target)
end

function Criterion:backward(input, target)
  return self:updateGradInput(input, target)
end

Criterion.__call = function(self, input, target) return self:forward(input, target) end

return Criterion
