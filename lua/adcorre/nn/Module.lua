--- adcorre.nn.Module: the base class of every layer and container.
--
-- The contract is Torch7's nn.Module:
--   output    = m:forward(input)              (= m:updateOutput(input))
--   gradInput = m:backward(input, gradOutput [, scale])
--             = m:updateGradInput(input, gradOutput)
--               followed by m:accGradParameters(input, gradOutput, scale),
--               which ADDS scale * dLoss/dParameters to the gradients.
--   m:zeroGradParameters() zeroes them; m:parameters() -> {params}, {grads};
--   m:getParameters() -> flat params, flat grads (every parameter and
--   gradient becomes a view into one contiguous buffer each, so an optimiser
--   is a single loop; calling it again returns the same buffers).
-- Layers keep their output and gradInput (m.output, m.gradInput) and their
-- scratch tensors between calls, so a steady training loop allocates no new
-- buffers; inside containers, outputs and input gradients that no backward
-- needs any more go back to a shared pool (adcorre.memory.pool and .plan,
-- m:keepOutputs()). m:clearState() drops them.
--
-- Subclasses are made with nn.class(name, parent):
--   local Scale = nn.class("nn.Scale", nn.Module)
--   function Scale:__init(k) nn.Module.__init(self); self.k = k; self._args = {k} end
--   function Scale:updateOutput(x) self.output = x * self.k; return self.output end
--   function Scale:updateGradInput(x, g) self.gradInput = g * self.k; return self.gradInput end
local ac = require("adcorre")
local core = require("adcorre.core")

local nn_class

local Module = {}
Module.__typename = "nn.Module"

-- Metamethods are looked up with rawget on the metatable, so every class
-- carries its own copy of them.
local METAMETHODS = { "__tostring", "__call", "__len", "__close" }

--- Creates a class named `name` deriving from `parent` (default nn.Module).
-- Calling the class constructs an instance: Class(...) runs Class.__init.
function nn_class(name, parent)
  parent = parent or Module
  local cls = {}
  cls.__index = cls
  cls.__typename = name
  cls.__parent = parent
  for _, k in ipairs(METAMETHODS) do
    if rawget(parent, k) ~= nil then cls[k] = rawget(parent, k) end
  end
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local self = setmetatable({}, c)
      self:__init(...)
      return self
    end,
    __tostring = function() return name end,
  })
end

Module.__index = Module
setmetatable(Module, {
  __call = function(c, ...)
    local self = setmetatable({}, c)
    self:__init(...)
    return self
  end,
  __tostring = function() return "nn.Module" end,
})

function Module:__init()
  self.train = true
  self._args = {}
  self._bufs = {}
end

--- The module's type name, e.g. "nn.Conv2d".
function Module:type() return self.__typename end
function Module:typename() return self.__typename end

--- true when `cls` is the class of m or one of its ancestors.
function Module:isInstanceOf(cls)
  local c = getmetatable(self)
  while c do
    if c == cls then return true end
    c = rawget(c, "__parent")
  end
  return false
end

----------------------------------------------------------------------------
-- forward / backward
----------------------------------------------------------------------------

function Module:updateOutput(input)
  error(self.__typename .. ":updateOutput: not defined for this module", 2)
end

function Module:updateGradInput(input, gradOutput)
  error(self.__typename .. ":updateGradInput: not defined for this module", 2)
end

--- Adds scale * dLoss/dParameters to the gradients (no-op without parameters).
function Module:accGradParameters(input, gradOutput, scale) end

function Module:forward(input)
  return self:updateOutput(input)
end

function Module:backward(input, gradOutput, scale)
  scale = scale or 1
  self:updateGradInput(input, gradOutput)
  self:accGradParameters(input, gradOutput, scale)
  return self.gradInput
end

Module.__call = function(self, input) return self:forward(input) end

----------------------------------------------------------------------------
-- parameters
----------------------------------------------------------------------------

-- Leaf modules list their parameter fields: { {"weight", "gradWeight"}, ... }
Module._paramFields = { { "weight", "gradWeight" }, { "bias", "gradBias" } }
-- and their saveable, non-trainable state (batch-norm running statistics).
Module._bufferFields = {}

--- Returns {params}, {grads} (two arrays in the same order; empty when none).
function Module:parameters()
  local ps, gs = {}, {}
  for _, f in ipairs(self._paramFields) do
    local p = self[f[1]]
    if p ~= nil then
      ps[#ps + 1] = p
      gs[#gs + 1] = self[f[2]]
    end
  end
  return ps, gs
end

--- Array of {name = "weight", param = T, grad = T} with dotted names for
--- children ("3.weight" or "<child name>.weight" when the child has a name).
function Module:namedParameters(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for _, f in ipairs(self._paramFields) do
    local p = self[f[1]]
    if p ~= nil then out[#out + 1] = { name = prefix .. f[1], param = p, grad = self[f[2]] } end
  end
  return out
end

--- Array of {name = ..., tensor = T}: non-trainable state that must be saved.
function Module:namedBuffers(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for _, f in ipairs(self._bufferFields) do
    local b = self[f]
    if b ~= nil then out[#out + 1] = { name = prefix .. f, tensor = b } end
  end
  return out
end

--- {name -> tensor} of the saveable buffers (running statistics).
function Module:buffers()
  local m = {}
  for _, e in ipairs(self:namedBuffers()) do m[e.name] = e.tensor end
  return m
end

--- {name -> tensor} of parameters and buffers: everything a model file stores.
function Module:stateDict()
  local m = {}
  for _, e in ipairs(self:namedParameters()) do m[e.name] = e.param end
  for _, e in ipairs(self:namedBuffers()) do m[e.name] = e.tensor end
  return m
end

--- Number of trainable parameters.
function Module:nparams()
  local n = 0
  for _, p in ipairs((self:parameters())) do n = n + p:numel() end
  return n
end

function Module:zeroGradParameters()
  local _, gs = self:parameters()
  for _, g in ipairs(gs) do g:zero() end
end

-- One contiguous buffer holding every tensor of `list` (deduplicated);
-- each tensor becomes a view into it, so references held elsewhere follow.
local function flatten(list)
  local uniq, seen = {}, {}
  for _, t in ipairs(list) do
    if not seen[t] then
      seen[t] = true
      uniq[#uniq + 1] = t
    end
  end
  if #uniq == 0 then return ac.zeros(0) end
  local already = core.nn.flat_of(uniq)
  if already then return already end
  local total = 0
  for _, t in ipairs(uniq) do total = total + t:numel() end
  local flat = ac.zeros(total)
  local off = 0
  for _, t in ipairs(uniq) do
    local n = t:numel()
    flat:narrow(1, off + 1, n):copy(t)
    core.nn.set(t, flat, off)
    off = off + n
  end
  return flat
end

--- Flat views: returns params, grads (1-D tensors). Afterwards every
--- parameter (and gradient) tensor of the module is a view into them.
function Module:getParameters()
  local ps, gs = self:parameters()
  return flatten(ps), flatten(gs)
end

----------------------------------------------------------------------------
-- modes, traversal, copies
----------------------------------------------------------------------------

function Module:training()
  self:apply(function(m) m.train = true end)
  return self
end

function Module:evaluate()
  self:apply(function(m) m.train = false end)
  return self
end

--- Calls fn(m) on this module and then on every descendant.
function Module:apply(fn)
  fn(self)
  if self.modules then
    for _, m in ipairs(self.modules) do m:apply(fn) end
  end
  return self
end

--- Drops outputs, gradients with respect to the input and scratch buffers
--- (parameters, their gradients and running statistics stay).
function Module:clearState()
  self:apply(function(m)
    m.output = nil
    m.gradInput = nil
    m._outShape = nil
    m._bufs = {}
    if m._clearState then m:_clearState() end
  end)
  return self
end

local function deepcopy(v, memo)
  if type(v) ~= "table" and not ac.is_tensor(v) then return v end
  if memo[v] ~= nil then return memo[v] end
  if ac.is_tensor(v) then
    local c = v:clone()
    memo[v] = c
    return c
  end
  local mt = getmetatable(v)
  local c = {}
  memo[v] = c
  for k, x in pairs(v) do c[deepcopy(k, memo)] = deepcopy(x, memo) end
  return setmetatable(c, mt)
end

--- A deep copy: same architecture, copied parameters, buffers and state.
function Module:clone()
  return deepcopy(self, {})
end

----------------------------------------------------------------------------
-- helpers for subclasses
----------------------------------------------------------------------------

--- A scratch tensor of the given shape kept in self._bufs[name] and reused
--- while its storage is large enough (contents unspecified).
function Module:_buffer(name, shape, dtype)
  local bufs = self._bufs
  if not bufs then
    bufs = {}
    self._bufs = bufs
  end
  local t = core.nn.buffer(bufs[name], shape, dtype)
  bufs[name] = t
  return t
end

----------------------------------------------------------------------------
-- memory: outputs and input gradients live in a shared pool
----------------------------------------------------------------------------
-- adcorre.memory.pool adds _resized (an output or gradInput buffer of the
-- pool), the release calls and keepOutputs; adcorre.memory.plan the
-- _needsInput / _needsOutput declarations its planner reads. A layer whose
-- backward does not read its input (a ReLU reads its output, a max-pool its
-- indices) or its output (a convolution, a batch norm) sets
-- _needsInputField / _needsOutputField = false; a layer that can give its
-- output again from its input defines _recomputeOutput and
-- _canRecomputeOutput.
require("adcorre.memory.pool").install(Module)
require("adcorre.memory.plan").install_module(Module)

--- Raises "<Type>:<method>: <message>" at the caller of the public method.
function Module:_error(method, fmt, ...)
  local name = self.__typename:gsub("^nn%.", "")
  error(("%s:%s: " .. fmt):format(name, method, ...), 0)
end

--- Checks that x is a float32 tensor with one of the allowed ranks.
function Module:_checkInput(method, x, ...)
  if not ac.is_tensor(x) then
    self:_error(method, "input must be a tensor, got %s", type(x))
  end
  if x:dtype() ~= "float32" then
    self:_error(method, "input must be float32, got %s", x:dtype())
  end
  if x:numel() == 0 then
    self:_error(method, "input is empty (%s)", self._shapeStr(x))
  end
  local nd = x:dim()
  local ranks = { ... }
  if #ranks > 0 then
    for _, r in ipairs(ranks) do if nd == r then return x end end
    local want = {}
    for i, r in ipairs(ranks) do want[i] = tostring(r) end
    self:_error(method, "input must have %s dimensions, got %d (%s)",
      table.concat(want, " or "), nd, table.concat(x:shape(), "x"))
  end
  return x
end

--- Checks that gradOutput has the shape of ref (usually self.output).
function Module:_checkGradOutput(method, g, ref)
  if not ac.is_tensor(g) then
    self:_error(method, "gradOutput must be a tensor, got %s", type(g))
  end
  local b
  if ac.is_tensor(ref) then
    b = ref:shape()
  elseif ref == nil and self._outShape then
    b = self._outShape   -- the output was released (no backward needs it)
  else
    self:_error(method, "call forward before backward")
  end
  local a = g:shape()
  local same = #a == #b
  if same then for i = 1, #a do if a[i] ~= b[i] then same = false end end end
  if not same then
    self:_error(method, "gradOutput has shape %s, output has %s",
      "[" .. table.concat(a, ", ") .. "]", "[" .. table.concat(b, ", ") .. "]")
  end
  return g
end

--- Calls a core kernel binding; its error (which names no function, see
-- csrc/lua/lua_util.h) comes back as "<Type>:<method>: ...".
local function call_result(self, method, ok, ...)
  if not ok then self:_error(method, "%s", tostring((...))) end
  return ...
end

function Module:_call(method, f, ...)
  return call_result(self, method, pcall(f, ...))
end

--- "[2, 3, 4]"
function Module._shapeStr(t)
  local s = type(t) == "table" and t or t:shape()
  return "[" .. table.concat(s, ", ") .. "]"
end

--- One-line description (containers print a tree).
function Module:__tostring__()
  return self.__typename
end

Module.__tostring = function(self) return self:__tostring__() end

Module.class = nn_class
return Module
