--- nn.Concat(dim): a container that gives the same input to every member
-- and joins their outputs along dimension `dim` (Torch's nn.Concat):
-- nn.Concat(d) behaves as ConcatTable followed by JoinTable(d).
local Container = require("adcorre.nn.Container")
local ConcatTable = require("adcorre.nn.ConcatTable")
local JoinTable = require("adcorre.nn.JoinTable")

local Concat = Container.class("nn.Concat", Container)

function Concat:__init(dim)
  Container.__init(self)
  self.dim = dim
  self._args = { dim }
  self._join = JoinTable(dim)
end

function Concat:updateOutput(input)
  local outs = ConcatTable.updateOutput(self, input)
  self._outs = outs
  self.output = self._join:updateOutput(outs)
  return self.output
end

function Concat:updateGradInput(input, gradOutput)
  local gs = self._join:updateGradInput(self._outs, gradOutput)
  return ConcatTable.updateGradInput(self, input, gs)
end

function Concat:accGradParameters(input, gradOutput, scale)
  local gs = self._join.gradInput
  if #gs ~= #self.modules then gs = self._join:updateGradInput(self._outs, gradOutput) end
  ConcatTable.accGradParameters(self, input, gs, scale)
end

function Concat:backward(input, gradOutput, scale)
  local gs = self._join:updateGradInput(self._outs, gradOutput)
  return ConcatTable.backward(self, input, gs, scale)
end

function Concat:__tostring__()
  local s = ConcatTable.__tostring__(self)
  return (s:gsub("^nn%.Concat {", ("nn.Concat(%d) {"):format(self.dim)))
end

function Concat:_clearState()
  self._outs = nil
  self._join:clearState()
end

return Concat
