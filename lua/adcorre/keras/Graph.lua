--- keras.Graph: a functional (DAG) network of nn modules, what a Keras
-- functional model becomes when it is not the Ad-Corre network.
--
--   local g = Graph(nodes, outputs)
--   -- nodes[i] = {module = m or nil (the input), inputs = {j, ...}, name = }
--   --   in topological order: every j < i; node 1 is the input
--   -- outputs = {i, ...}: the nodes whose values forward returns
--   g:forward(x)   -> one tensor for one output, else a list in Keras' order
--   g:backward(x, gradOutput)   (gradOutput shaped like the output; a list
--                                may leave entries nil for outputs without loss)
--
-- A node read by several others gets the sum of their gradients. The modules
-- are self.modules (graph order), so parameters, training / evaluate, names
-- and saving work as for any container; a module's name is its Keras layer's.
local Container = require("adcorre.nn.Container")

local Graph = Container.class("keras.Graph", Container)

function Graph:__init(nodes, outputs)
  Container.__init(self)
  self.nodes, self.outputs = nodes, outputs
  for i, n in ipairs(nodes) do
    if n.module then
      self.modules[#self.modules + 1] = n.module
      n.index = #self.modules
    end
    for _, j in ipairs(n.inputs or {}) do
      if j >= i then error("keras.Graph: node " .. i .. " reads node " .. j .. " (not topological)", 2) end
    end
  end
  self._vals = {}
end

local function node_input(vals, n)
  if #n.inputs == 1 then return vals[n.inputs[1]] end
  local t = {}
  for k, j in ipairs(n.inputs) do t[k] = vals[j] end
  return t
end

function Graph:updateOutput(x)
  local vals = self._vals
  vals[1] = x
  for i = 2, #self.nodes do
    local n = self.nodes[i]
    local ok, y = pcall(n.module.forward, n.module, node_input(vals, n))
    if not ok then
      error(("in layer '%s' (%s) of keras.Graph: %s"):format(n.name, n.module.__typename, tostring(y)), 0)
    end
    vals[i] = y
  end
  if #self.outputs == 1 then
    self.output = vals[self.outputs[1]]
  else
    local out = {}
    for k, j in ipairs(self.outputs) do out[k] = vals[j] end
    self.output = out
  end
  return self.output
end

-- Adds g into grads[j]; a second contribution goes into a copy, never into
-- a module's own gradInput buffer (it may alias another branch's).
local function accumulate(grads, owned, j, g)
  if g == nil then return end
  if grads[j] == nil then
    grads[j] = g
  else
    if not owned[j] then
      grads[j] = grads[j]:clone()
      owned[j] = true
    end
    grads[j]:add_(g)
  end
end

-- mode "backward" (scale given) or "input"
local function run_backward(self, x, gradOutput, mode, scale)
  local vals = self._vals
  if vals[1] ~= x then self:updateOutput(x) end
  local grads, owned = {}, {}
  if #self.outputs == 1 then
    accumulate(grads, owned, self.outputs[1], gradOutput)
  else
    if type(gradOutput) ~= "table" or getmetatable(gradOutput) == getmetatable(x) then
      error(("keras.Graph:backward: the model has %d outputs, gradOutput must be a list"):format(#self.outputs), 0)
    end
    for k, j in ipairs(self.outputs) do accumulate(grads, owned, j, gradOutput[k]) end
  end
  for i = #self.nodes, 2, -1 do
    local n, g = self.nodes[i], grads[i]
    if g ~= nil then
      local m = n.module
      local input = node_input(vals, n)
      local ok, gi
      if mode == "backward" then ok, gi = pcall(m.backward, m, input, g, scale)
      else ok, gi = pcall(m.updateGradInput, m, input, g) end
      if not ok then
        error(("in layer '%s' (%s) of keras.Graph: %s"):format(n.name, m.__typename, tostring(gi)), 0)
      end
      if #n.inputs == 1 then accumulate(grads, owned, n.inputs[1], gi)
      else for k, j in ipairs(n.inputs) do accumulate(grads, owned, j, gi[k]) end end
    end
    grads[i] = nil
  end
  self.gradInput = grads[1]
  return self.gradInput
end

function Graph:backward(x, gradOutput, scale)
  return run_backward(self, x, gradOutput, "backward", scale or 1)
end

function Graph:updateGradInput(x, gradOutput)
  return run_backward(self, x, gradOutput, "input")
end

-- accGradParameters alone would need each module's gradOutput again: run the
-- whole backward (input and parameter gradients together).
function Graph:accGradParameters(x, gradOutput, scale)
  run_backward(self, x, gradOutput, "backward", scale or 1)
end

--- The value of layer `name` in the last forward (nil before one).
function Graph:value(name)
  for i, n in ipairs(self.nodes) do
    if n.name == name then return self._vals[i] end
  end
  error("keras.Graph:value: no layer named '" .. tostring(name) .. "'", 2)
end

function Graph:_clearState()
  self._vals = {}
end

function Graph:__tostring__()
  local lines = {("keras.Graph: %d layers, %d output%s"):format(#self.modules, #self.outputs,
    #self.outputs == 1 and "" or "s")}
  for i = 2, #self.nodes do
    local n = self.nodes[i]
    local from = {}
    for k, j in ipairs(n.inputs) do from[k] = self.nodes[j].name end
    lines[#lines + 1] = ("  %s <- %s: %s"):format(n.name, table.concat(from, ", "), tostring(n.module))
  end
  return table.concat(lines, "\n")
end

return Graph
