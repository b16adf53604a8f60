--- nn.Sequential: feeds each module's output to the next.
--   local net = nn.Sequential():add(nn.Linear(4, 8)):add(nn.ReLU()):add(nn.Linear(8, 2))
local Container = require("adcorre.nn.Container")
local Module = require("adcorre.nn.Module")

local Sequential = Container.class("nn.Sequential", Container)

function Sequential:updateOutput(input)
  local x = input
  for i = 1, #self.modules do x = self:_child(i, "updateOutput", x) end
  self.output = x
  return x
end

function Sequential:updateGradInput(input, gradOutput)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local prev = i > 1 and self.modules[i - 1].output or input
    g = self:_child(i, "updateGradInput", prev, g)
  end
  self.gradInput = g
  return g
end

function Sequential:accGradParameters(input, gradOutput, scale)
  scale = scale or 1
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local m = self.modules[i]
    local prev = i > 1 and self.modules[i - 1].output or input
    self:_child(i, "accGradParameters", prev, g, scale)
    g = m.gradInput
  end
end

--- backward in one sweep: each child runs updateGradInput and
--- accGradParameters back to back (what Torch's Sequential:backward does);
--- a child's gradInput goes back to the shared pool once the child before it
--- has used it (see Module.lua), so inner gradInput fields are nil afterwards.
function Sequential:backward(input, gradOutput, scale)
  scale = scale or 1
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local prev = i > 1 and self.modules[i - 1].output or input
    g = self:_child(i, "backward", prev, g, scale)
    -- the next child's gradInput has been used: recycle it (Module.lua)
    if i < #self.modules then Module._releaseGradInput(self.modules[i + 1], g) end
  end
  self.gradInput = g
  return g
end

function Sequential:__tostring__()
  local lines = { self.__typename .. " {" }
  local chain = { "input" }
  for i = 1, #self.modules do chain[#chain + 1] = "(" .. i .. ")" end
  chain[#chain + 1] = "output"
  lines[#lines + 1] = "  [" .. table.concat(chain, " -> ") .. "]"
  for i, m in ipairs(self.modules) do
    local label = m.name and ("(" .. i .. ") " .. m.name) or ("(" .. i .. ")")
    lines[#lines + 1] = "  " .. label .. ": " .. Container._indent(tostring(m), "  ")
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

return Sequential
