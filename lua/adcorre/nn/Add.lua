--- nn.Add: the sum of a table of equally shaped tensors (Torch's
-- CAddTable), e.g. the merge of a residual block. Every input receives the
-- whole gradient: gradInput[i] is the gradOutput tensor itself (no copies;
-- read it, do not write into it). The backward reads neither the inputs
-- nor the output, so a container may release them (adcorre.memory.plan).
--   nn.Add():forward({a, b})   -- a + b
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")
local core = require("adcorre.core")

local Add = Module.class("nn.Add", Module)
Add._needsInputField = false
Add._needsOutputField = false

function Add:__init()
  Module.__init(self)
  self.gradInput = {}
end

local function shape_str(s) return "[" .. table.concat(s, ", ") .. "]" end

function Add:updateOutput(input)
  if type(input) ~= "table" or #input == 0 then
    self:_error("forward", "input must be a non-empty table of tensors, got %s", type(input))
  end
  local first = input[1]
  if not ac.is_tensor(first) then self:_error("forward", "input[1] is not a tensor") end
  local shape = first:shape()
  for i = 2, #input do
    local t = input[i]
    if not ac.is_tensor(t) then self:_error("forward", "input[%d] is not a tensor", i) end
    local s = t:shape()
    local same = #s == #shape
    if same then for k = 1, #s do if s[k] ~= shape[k] then same = false end end end
    if not same then
      self:_error("forward", "input[%d] has shape %s, input[1] has %s", i, shape_str(s), shape_str(shape))
    end
  end
  local out = self:_resized("output", shape)
  local second = input[2]
  if second and first:dtype() == "float32" and second:dtype() == "float32"
      and first:is_contiguous() and second:is_contiguous() then
    core.nn.add_forward(first, second, out) -- one pass
  else
    out:copy(first)
    if second then out:add_(second) end
  end
  for i = 3, #input do out:add_(input[i]) end
  self._n = #input
  return out
end

function Add:updateGradInput(input, gradOutput)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local n = type(input) == "table" and #input or self._n
  local gi = {}
  for i = 1, n do gi[i] = gradOutput end
  self.gradInput = gi
  return gi
end

return Add
