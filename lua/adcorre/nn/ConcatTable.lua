--- nn.ConcatTable: gives the same input to every member and outputs the
-- table of their outputs; the input gradient is the sum of the members'.
--   local heads = nn.ConcatTable():add(nn.Linear(16, 4)):add(nn.Linear(16, 4))
--   local out = heads:forward(x)      -- {T[B,4], T[B,4]}
local Container = require("adcorre.nn.Container")

local ConcatTable = Container.class("nn.ConcatTable", Container)

function ConcatTable:__init()
  Container.__init(self)
  self.output = {}
end

function ConcatTable:updateOutput(input)
  local out = {}
  for i = 1, #self.modules do out[i] = self:_child(i, "updateOutput", input) end
  self.output = out
  return out
end

local function check_grads(self, gradOutput)
  if type(gradOutput) ~= "table" or #gradOutput ~= #self.modules then
    error(("%s: gradOutput must be a table of %d tensors, got %s"):format(self.__typename,
      #self.modules, type(gradOutput) == "table" and (#gradOutput .. " entries") or type(gradOutput)), 0)
  end
end

-- gradInput = sum of the members' gradInputs (tensors, or tables of tensors).
local function accumulate(self, name, acc, g, first)
  if type(g) == "table" then
    acc = type(acc) == "table" and acc or {}
    for k, v in ipairs(g) do acc[k] = accumulate(self, name .. "." .. k, acc[k], v, first) end
    return acc
  end
  if first then
    local t = self:_buffer(name, g:shape())
    t:copy(g)
    return t
  end
  acc:add_(g)
  return acc
end

function ConcatTable:updateGradInput(input, gradOutput)
  check_grads(self, gradOutput)
  local acc
  for i = 1, #self.modules do
    local g = self:_child(i, "updateGradInput", input, gradOutput[i])
    acc = accumulate(self, "gradInput", acc, g, i == 1)
  end
  self.gradInput = acc
  return acc
end

function ConcatTable:accGradParameters(input, gradOutput, scale)
  check_grads(self, gradOutput)
  for i = 1, #self.modules do
    self:_child(i, "accGradParameters", input, gradOutput[i], scale or 1)
  end
end

function ConcatTable:backward(input, gradOutput, scale)
  check_grads(self, gradOutput)
  local acc
  for i = 1, #self.modules do
    local g = self:_child(i, "backward", input, gradOutput[i], scale or 1)
    acc = accumulate(self, "gradInput", acc, g, i == 1)
  end
  self.gradInput = acc
  return acc
end

function ConcatTable:__tostring__()
  local lines = { self.__typename .. " {", "  input" }
  for i, m in ipairs(self.modules) do
    local branch = (i == #self.modules) and "  `-> " or "  |-> "
    local pad = (i == #self.modules) and "      " or "  |   "
    local label = m.name and ("(" .. i .. ") " .. m.name) or ("(" .. i .. ")")
    lines[#lines + 1] = branch .. label .. ": " .. Container._indent(tostring(m), pad)
  end
  lines[#lines + 1] = "  ... -> output"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

return ConcatTable
