--- adcorre.memory.pool: the shared pool of float32 buffers that hold the
-- modules' outputs and input gradients, and the calls that hand them back.
--
-- Outputs and input gradients taken through m:_resized("output" |
-- "gradInput", shape) are ranges of one arena (csrc/core/arena.c) shared by
-- all modules. A range handed back is merged with its free neighbours at
-- once, so memory freed by one shape serves the next request of any shape;
-- taking a range is a best-fit search with no system call, and pages once
-- written stay mapped, so a steady loop neither faults nor zeroes memory.
-- Who hands buffers back, and when, is decided by adcorre.memory.plan
-- (Sequential) and by the containers themselves (ConcatTable,
-- SeparableConv2d); a released field is nil afterwards.
--
-- Invariants: pool.owner[t] is the module whose field holds pool buffer t,
-- pool.cap[t] the elements of t's range (t may be a smaller view of it);
-- only buffers taken through _resized are ever handed back, and only once.
-- install(Module) adds the methods below to the base class.
local ac = require("adcorre")
local core = require("adcorre.core")

local M = {}

local weak = {__mode = "k"}
local pool = {owner = setmetatable({}, weak), cap = setmetatable({}, weak)}

local function numel_of(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

local function give_back(t)
  pool.owner[t] = nil
  pool.cap[t] = nil
  core.nn.pool_release(t)
end

--- self[field] resized to `shape` (reusing its storage when it is large
--- enough; an empty "output" or "gradInput" field takes a new arena range).
local function resized(self, field, shape, dtype)
  local cur = self[field]
  local pooled = (field == "gradInput" or field == "output") and (dtype == nil or dtype == "float32")
  if not pooled then
    local t = core.nn.buffer(cur, shape, dtype)
    self[field] = t
    return t
  end
  local n = numel_of(shape)
  local cap = cur ~= nil and pool.cap[cur] or nil
  if cap and cap < n and rawequal(pool.owner[cur], self) then
    give_back(cur) -- too small: its range goes back, a larger one is taken
    cur, cap = nil, nil
  end
  local t
  if cur == nil then
    t = core.nn.pool_new(shape)
    cap = n
  else
    t = core.nn.buffer(cur, shape)
    if not (cap and t:is_same_storage(cur)) then cap = nil end
  end
  self[field] = t
  if cap then
    pool.owner[t] = self
    pool.cap[t] = cap
  end
  return t
end

-- Clears the gradInput fields of m and of the containers inside it that
-- pass t on as theirs (a Sequential's is its first child's).
local function forget_gradInput(m, t)
  while m and rawequal(rawget(m, "gradInput"), t) do
    m.gradInput = nil
    local mods = rawget(m, "modules")
    local nxt
    if mods then
      for _, c in ipairs(mods) do
        if rawequal(rawget(c, "gradInput"), t) then nxt = c break end
      end
    end
    m = nxt
  end
end

--- Hands m's gradInput back to the pool (not when it is `keep`, the tensor
--- the caller still passes on). Only buffers taken through _resized are
--- recycled, and only once.
local function release_gradInput(m, keep)
  local t = rawget(m, "gradInput")
  if not ac.is_tensor(t) or rawequal(t, keep) then return end
  local o = pool.owner[t]
  if not o then return end
  if rawequal(rawget(o, "gradInput"), t) then o.gradInput = nil end
  forget_gradInput(m, t)
  give_back(t)
end

--- Takes over m's gradInput (a pool buffer) as self.gradInput, so that the
--- caller can accumulate into it; nil when it is not a pool buffer.
local function adopt_gradInput(self, m)
  local t = rawget(m, "gradInput")
  if not ac.is_tensor(t) then return nil end
  local o = pool.owner[t]
  if not o or not rawequal(rawget(o, "gradInput"), t) then return nil end
  o.gradInput = nil
  forget_gradInput(m, t)
  local old = rawget(self, "gradInput")
  if ac.is_tensor(old) and rawequal(pool.owner[old], self) then give_back(old) end
  pool.owner[t] = self
  self.gradInput = t
  return t
end

--- true when a and b (tensors or tables of them) share a storage.
local function aliases(a, b)
  if type(a) == "table" then
    for _, v in pairs(a) do if aliases(v, b) then return true end end
    return false
  end
  if type(b) == "table" then
    for _, v in pairs(b) do if aliases(a, v) then return true end end
    return false
  end
  return ac.is_tensor(a) and ac.is_tensor(b) and a:is_same_storage(b)
end

-- true when o is m or one of its descendants.
local function inside(m, o)
  if rawequal(m, o) then return true end
  local mods = rawget(m, "modules")
  if not mods then return false end
  for _, c in ipairs(mods) do
    if inside(c, o) then return true end
  end
  return false
end

--- Drops self.output (handing it to the pool when it is a pool buffer of
--- this module); its shape is remembered for the gradOutput check.
local function drop_output(self)
  local t = rawget(self, "output")
  if ac.is_tensor(t) then
    self._outShape = t:shape()
    -- the owner may be a child whose output is this module's (a container);
    -- an output passed through from the input belongs to someone else
    local o = pool.owner[t]
    if o and rawequal(rawget(o, "output"), t) and inside(self, o) then
      give_back(t)
      o._outShape = self._outShape
      o.output = nil
    end
  end
  self.output = nil
end

--- Drops every output inside m (m included) but those sharing storage with
--- `keep`, handing pool buffers back: the backward through m is done.
local function release_tree(m, keep)
  m:apply(function(c)
    local t = rawget(c, "output")
    if t == nil or (keep ~= nil and aliases(t, keep)) then return end
    if ac.is_tensor(t) then
      c._outShape = t:shape()
      if rawequal(pool.owner[t], c) then give_back(t) end
    end
    c.output = nil
  end)
end

--- m:keepOutputs([on = true]): containers in m keep every output and input
--- gradient (Torch's behaviour: any module's .output can be read after a
--- forward, backward may be called again) at the cost of the memory the
--- releases save. m:keepOutputs(false) restores the default.
local function keep_outputs(self, on)
  on = on ~= false
  self:apply(function(c) c._keepOutputs = on or nil end)
  return self
end

M.aliases, M.release_tree, M.release_gradInput = aliases, release_tree, release_gradInput

--- Adds the pool's methods to the module base class.
function M.install(Module)
  Module._resized = resized
  Module._releaseGradInput = release_gradInput
  Module._adoptGradInput = adopt_gradInput
  Module._aliases = aliases
  Module._dropOutput = drop_output
  Module._releaseTree = release_tree
  Module.keepOutputs = keep_outputs
  --- Bytes mapped by the buffers' arena, and bytes in ranges in use (for
  --- measurements).
  Module.poolBytes = function() return core.nn.arena_stats() end
end

return M
