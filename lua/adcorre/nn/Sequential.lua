--- nn.Sequential: feeds each module's output to the next.
--   local net = nn.Sequential():add(nn.Linear(4, 8)):add(nn.ReLU()):add(nn.Linear(8, 2))
-- What is kept, released or recomputed between the children is decided by
-- adcorre.memory.plan; in evaluation mode a convolution and the batch norm
-- after it may run as one (adcorre.memory.fold). Either way the numbers are
-- those of running every child in turn and keeping every output.
local Container = require("adcorre.nn.Container")
local plan = require("adcorre.memory.plan")
local fold = require("adcorre.memory.fold")

local Sequential = Container.class("nn.Sequential", Container)
plan.install_sequential(Sequential)

-- Sequential.releaseMin: inputs with fewer elements than this keep every
-- output (no release bookkeeping: for small inputs, batch-1 inference
-- above all, deciding each output's fate costs more time than the memory
-- is worth). 0 releases always.
Sequential.releaseMin = 65536
-- Sequential.recomputeMin: an output is released for recomputation only
-- when it has at least this many elements (2^20 = 4 MB of float32; smaller
-- ones would cost an extra pass each for little memory). 0 recomputes
-- whatever can be.
Sequential.recomputeMin = 1048576

function Sequential:updateOutput(input)
  local run, folding = plan.start(self, input), fold.active(self)
  local mods, x, i = self.modules, input, 1
  local n = #mods
  while i <= n do
    local y, last
    if folding then y, last = fold.forward(self, i, x) end
    if y == nil then y, last = self:_child(i, "updateOutput", x), i end
    plan.ran(self, run, i, last, x, y)
    x, i = y, last + 1
  end
  self.output = x
  plan.finish(self, run)
  return x
end

-- The input of child i in the last forward (nil when it was released
-- because child i's backward does not read it).
local function input_of(self, i, input)
  if i == 1 then return input end
  return self.modules[i - 1].output
end

function Sequential:updateGradInput(input, gradOutput)
  plan.recompute(self, input)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    plan.restore(self, i, input_of, input)
    g = self:_child(i, "updateGradInput", input_of(self, i, input), g)
  end
  self.gradInput = g
  return g
end

function Sequential:accGradParameters(input, gradOutput, scale)
  plan.recompute(self, input)
  scale = scale or 1
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local m = self.modules[i]
    plan.restore(self, i, input_of, input)
    self:_child(i, "accGradParameters", input_of(self, i, input), g, scale)
    g = m.gradInput
  end
end

--- backward in one sweep: each child runs updateGradInput and
--- accGradParameters back to back (what Torch's Sequential:backward does);
--- what no later step reads goes back to the shared pool as the sweep goes
--- (adcorre.memory.plan): inner gradInput and output fields are nil
--- afterwards. Calling backward again without a new forward re-runs the
--- forward first (same numbers, running statistics untouched).
function Sequential:backward(input, gradOutput, scale)
  plan.recompute(self, input)
  scale = scale or 1
  local release = plan.releasing(self)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    plan.restore(self, i, input_of, input)
    g = self:_child(i, "backward", input_of(self, i, input), g, scale)
    if release then plan.backward_step(self, i, g) end
  end
  if release then plan.backward_done(self) end
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
