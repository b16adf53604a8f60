--- adcorre.nn.Container: base class of modules that hold other modules in
-- self.modules. Parameters, buffers, modes and traversal go through the
-- children; a child's error is re-raised with its position and type:
--   "in module 3 (nn.Conv2d) of nn.Sequential: Conv2d:forward: input has 3 channels, weight expects 1"
local Module = require("adcorre.nn.Module")

local Container = Module.class("nn.Container", Module)

function Container:__init(...)
  Module.__init(self)
  self.modules = {}
end

--- Appends a module (at position `index` when given). Returns self.
function Container:add(module, index)
  if type(module) ~= "table" or not module.forward then
    error(("%s:add: expected a module, got %s"):format(self.__typename, type(module)), 2)
  end
  if index then
    table.insert(self.modules, index, module)
  else
    self.modules[#self.modules + 1] = module
  end
  return self
end

--- Inserts a module at `index` (default: the end). Returns self.
function Container:insert(module, index)
  return self:add(module, index or #self.modules + 1)
end

--- Removes and returns the module at `index` (default: the last).
function Container:remove(index)
  return table.remove(self.modules, index or #self.modules)
end

function Container:get(index) return self.modules[index] end
function Container:size() return #self.modules end
Container.__len = function(self) return #self.modules end

--- Runs child i's `method` and prefixes any error with where it happened.
function Container:_child(i, method, ...)
  local m = self.modules[i]
  local ok, a = pcall(m[method], m, ...)
  if not ok then
    error(("in module %d (%s) of %s: %s"):format(i, m.__typename, self.__typename, tostring(a)), 0)
  end
  return a
end

function Container:zeroGradParameters()
  for _, m in ipairs(self.modules) do m:zeroGradParameters() end
end

function Container:parameters()
  local ps, gs = {}, {}
  for _, m in ipairs(self.modules) do
    local p, g = m:parameters()
    for i = 1, #p do
      ps[#ps + 1] = p[i]
      gs[#gs + 1] = g[i]
    end
  end
  return ps, gs
end

-- Children are named by their `name` field when set, else by position.
local function child_prefix(prefix, i, m)
  return prefix .. (m.name or tostring(i)) .. "."
end

function Container:namedParameters(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for i, m in ipairs(self.modules) do m:namedParameters(child_prefix(prefix, i, m), out) end
  return out
end

function Container:namedBuffers(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for i, m in ipairs(self.modules) do m:namedBuffers(child_prefix(prefix, i, m), out) end
  return out
end

--- Lists every module of type `typename` (e.g. "nn.Conv2d") in the tree.
function Container:findModules(typename)
  local found = {}
  self:apply(function(m) if m.__typename == typename then found[#found + 1] = m end end)
  return found
end

-- Indents every line but the first.
function Container._indent(s, pad)
  return (s:gsub("\n", "\n" .. pad))
end

return Container
