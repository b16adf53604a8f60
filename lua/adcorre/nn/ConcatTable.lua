--- nn.ConcatTable: gives the same input to every member and outputs the
-- table of their outputs; the input gradient is the sum of the members'.
--   local heads = nn.ConcatTable():add(nn.Linear(16, 4)):add(nn.Linear(16, 4))
--   local out = heads:forward(x)      -- {T[B,4], T[B,4]}
local Container = require("adcorre.nn.Container")
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")

local ConcatTable = Container.class("nn.ConcatTable", Container)
require("adcorre.memory.plan").install_concat(ConcatTable)

function ConcatTable:__init()
  Container.__init(self)
  self.output = {}
end

function ConcatTable:updateOutput(input)
  local out, pass = {}, {}
  for i = 1, #self.modules do
    out[i] = self:_child(i, "updateOutput", input)
    pass[i] = Module._aliases(out[i], input)
  end
  self.output, self._pass = out, pass
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

-- true when t is one of the gradOutput tensors (still needed by a member).
local function is_grad_output(t, gradOutput)
  for _, g in ipairs(gradOutput) do if rawequal(g, t) then return true end end
  return false
end

--- backward in one sweep. Tensor gradients are summed into the first
--- member's input gradient (taken over from the shared pool, adcorre.memory.pool)
--- and every later member's goes back to the pool once added, so the
--- members reuse one another's buffers; gradInput is then a pool buffer
--- that the container around it recycles in turn.
function ConcatTable:backward(input, gradOutput, scale)
  check_grads(self, gradOutput)
  if self._keepOutputs then
    local acc
    for i = 1, #self.modules do
      local g = self:_child(i, "backward", input, gradOutput[i], scale or 1)
      acc = accumulate(self, "gradInput", acc, g, i == 1)
    end
    self.gradInput = acc
    return acc
  end
  local acc
  for i = 1, #self.modules do
    local m = self.modules[i]
    local g = self:_child(i, "backward", input, gradOutput[i], scale or 1)
    if not ac.is_tensor(g) then
      acc = accumulate(self, "gradInput", i > 1 and acc or nil, g, i == 1)
    elseif i == 1 then
      acc = not is_grad_output(g, gradOutput) and self:_adoptGradInput(m)
      if not acc then
        acc = self:_resized("gradInput", g:shape())
        acc:copy(g)
      end
    else
      acc:add_(g)
      if not is_grad_output(g, gradOutput) then Module._releaseGradInput(m, acc) end
    end
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
