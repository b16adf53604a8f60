--- adcorre.memory.plan: which activations a Sequential keeps, releases or
-- recomputes, so that a training step holds what is live at one time rather
-- than one buffer per layer; and what each module and container tells the
-- planner (_needsInput, _needsOutput, _dropOutput).
--
--  * forward: the output of a child goes back to the pool
--    (adcorre.memory.pool) once the next child has read it when no backward
--    reads it (a max-pool's or an Add's output, a batch norm's output read
--    by a max-pool, an Add or a ReLU); one that a backward reads but the
--    child can give again from its input (_recomputeOutput: a batch norm, a
--    ReLU) is released and recomputed just before that backward;
--  * one-sweep backward: a child's input gradient goes back once the child
--    before it has used it, and every output inside a child once the
--    child's backward is done;
--  * gradient checkpointing (m.checkpoint in training): a block keeps only
--    its input and output, and its backward re-runs the forward first.
-- A layer declares what its backward reads with _needsInputField and
-- _needsOutputField (default: both, the safe choice). The outermost
-- module's output and gradInput are always kept. updateGradInput /
-- accGradParameters called separately (Torch's two-phase protocol) release
-- nothing; m:keepOutputs() turns the releases off. Whatever is released
-- or recomputed, the numbers are those of keeping everything.
local ac = require("adcorre")
local pool = require("adcorre.memory.pool")

local aliases, release_tree, release_gradInput = pool.aliases, pool.release_tree, pool.release_gradInput

local M = {}

----------------------------------------------------------------------------
-- what a module's backward reads
----------------------------------------------------------------------------

local function module_needs_input(self)
  return self._needsInputField or rawget(self, "_outRecompute") == true
end
local function module_needs_output(self) return self._needsOutputField end

-- self._pass[k] is true when child k's output shares storage with its input
-- (Identity, ReLU(true), Dropout in evaluation): the input then lives on in
-- that output, and what the children after k need decides its fate too.
local function seq_needs_input(self)
  if self.checkpoint and self.train then return true end
  local pass = self._pass
  if not pass then return true end
  for k, m in ipairs(self.modules) do
    if m:_needsInput() then return true end
    if not pass[k] then return false end     -- later children never see the input
    if m:_needsOutput() then return true end -- child k's output is the input
  end
  return true
end

local function seq_needs_output(self)
  local pass = self._pass
  if not pass then return true end
  for k = #self.modules, 1, -1 do
    if self.modules[k]:_needsOutput() then return true end
    if not pass[k] then return false end
  end
  return true
end

local function seq_drop_output(self)
  local pass = self._pass or {}
  for k = #self.modules, 1, -1 do
    self.modules[k]:_dropOutput()
    if not pass[k] then break end
  end
  self.output = nil
end

-- ConcatTable: a member's backward reads the input when any member's does
-- (or passes it on as an output that its backward reads).
local function concat_needs_input(self)
  local pass = self._pass
  if not pass then return true end
  for i, m in ipairs(self.modules) do
    if m:_needsInput() or (pass[i] and m:_needsOutput()) then return true end
  end
  return false
end

local function concat_needs_output(self)
  for _, m in ipairs(self.modules) do
    if m:_needsOutput() then return true end
  end
  return false
end

local function concat_drop_output(self)
  for _, m in ipairs(self.modules) do m:_dropOutput() end
  self.output = nil
end

--- The defaults, for the module base class.
function M.install_module(Module)
  Module._needsInputField = true
  Module._needsOutputField = true
  Module._needsInput = module_needs_input
  Module._needsOutput = module_needs_output
end

--- The rules of the containers.
function M.install_sequential(Sequential)
  Sequential._needsInput = seq_needs_input
  Sequential._needsOutput = seq_needs_output
  Sequential._dropOutput = seq_drop_output
end

function M.install_concat(ConcatTable)
  ConcatTable._needsInput = concat_needs_input
  ConcatTable._needsOutput = concat_needs_output
  ConcatTable._dropOutput = concat_drop_output
end

----------------------------------------------------------------------------
-- forward
----------------------------------------------------------------------------

local function big_enough(t, n)
  return n <= 0 or (ac.is_tensor(t) and t:numel() >= n)
end

-- Fate of child j's output once children 1..i have run: "release" when no
-- backward reads it any more, "recompute" when one does but the child can
-- give it again from its input, "keep", or "wait" (it lives on through
-- pass-through children up to the newest output). An output is released
-- for recomputation only when it has at least self.recomputeMin elements.
local function fate(self, j, i, n)
  local mods, pass = self.modules, self._pass
  local m = mods[j]
  -- (recomputing needs the input: kept when the child's backward reads it;
  -- the first child's is the container's, whose fate is decided later)
  local again = not pass[j] and m._canRecomputeOutput ~= nil and m:_canRecomputeOutput()
    and (j == 1 or m._needsInputField) and big_enough(m.output, self.recomputeMin)
  local needed = m:_needsOutput()
  for k = j + 1, i do
    local c = mods[k]
    if c:_needsInput() then
      needed = true
      if k > j + 1 then again = false end
      break
    end
    if not pass[k] then break end
    if c:_needsOutput() then needed, again = true, false break end
    if k == i then return i == n and "keep" or "wait" end
  end
  if not needed then return "release" end
  return again and "recompute" or "keep"
end

--- Before a forward of `self` on `input`: the run's state for M.ran and
--- M.finish. Inputs with fewer than self.releaseMin elements keep every
--- output (no release bookkeeping).
function M.start(self, input)
  local release = not self._keepOutputs and not (ac.is_tensor(input) and input:numel() < self.releaseMin)
  self._pass, self._recomp = self._pass or {}, {}
  self._spent = nil
  -- (only training draws random numbers in the children: Dropout)
  self._rng = self.train and ac.get_rng_state() or nil
  return {release = release, pending = {}, last = 0, fused = false}
end

--- After children i..last have run on x and given y (last > i: a folded
--- pair, adcorre.memory.fold): records pass-through and hands back the
--- earlier outputs that no backward reads any more.
function M.ran(self, run, i, last, x, y)
  local pass, mods = self._pass, self.modules
  if last > i then
    for k = i, last do pass[k] = false end
    run.fused = true
  else
    pass[i] = aliases(y, x)
  end
  if not run.release then return end
  local pending = run.pending
  for j = math.max(run.last, 1), last - 1 do pending[#pending + 1] = j end
  run.last = last
  local keep = {}
  for _, j in ipairs(pending) do
    local f = fate(self, j, last, #mods)
    if f == "release" then
      mods[j]:_dropOutput()
    elseif f == "recompute" then
      mods[j]:_dropOutput()
      mods[j]._outRecompute = true -- its input must stay (module_needs_input)
      self._recomp[j] = true
    elseif f == "wait" then
      keep[#keep + 1] = j
    end
  end
  run.pending = keep
end

--- After the forward: checkpointing releases every output inside the
--- children but the block's own (the backward recomputes them).
function M.finish(self, run)
  self._fused = run.fused or nil
  if run.release and self.checkpoint and self.train then
    for _, m in ipairs(self.modules) do release_tree(m, self.output) end
    self._spent = true
  end
end

----------------------------------------------------------------------------
-- backward
----------------------------------------------------------------------------

--- Before a backward: recomputes the outputs a folded forward skipped, or
--- that a previous one-sweep backward (or checkpointing) released. The
--- forward is re-run on the same input with the random generator as it was
--- at the forward and the running statistics restored afterwards, so it
--- gives the same numbers and leaves no trace.
function M.recompute(self, input)
  if not (self._fused or self._spent) then return end
  local saved = {}
  for _, e in ipairs(self:namedBuffers()) do saved[#saved + 1] = {e.tensor, e.tensor:clone()} end
  local rng_now = ac.get_rng_state()
  if self._rng then ac.set_rng_state(self._rng) end
  local ckpt = self.checkpoint
  self.checkpoint, self._plain = nil, true
  local ok, err = pcall(self.updateOutput, self, input)
  self.checkpoint, self._plain = ckpt, nil
  ac.set_rng_state(rng_now)
  for _, p in ipairs(saved) do p[1]:copy(p[2]) end
  if not ok then error(err, 0) end
end

--- Before child i's backward: the outputs it reads (its input, its own
--- output) that were released for recomputation, given again; input_of(j)
--- is child j's input.
function M.restore(self, i, input_of, input)
  local recomp = self._recomp
  if not recomp then return end
  for j = i - 1, i do
    local m = self.modules[j]
    if recomp[j] and rawget(m, "output") == nil then
      local ok, err = pcall(m._recomputeOutput, m, input_of(self, j, input))
      if not ok then
        error(("in module %d (%s) of %s: %s"):format(j, m.__typename, self.__typename, tostring(err)), 0)
      end
    end
  end
end

--- true when a one-sweep backward of self releases as it goes.
function M.releasing(self) return not self._keepOutputs end

--- After child i's backward in a one-sweep backward (g its gradInput):
--- the next child's gradInput, the outputs inside child i and child i's
--- input go back to the pool when nothing reads them any more.
function M.backward_step(self, i, g)
  local mods = self.modules
  if i < #mods then release_gradInput(mods[i + 1], g) end
  release_tree(mods[i], self.output)
  -- child i's input, unless the backward of child i - 1 reads it
  local p = mods[i - 1]
  if p and not (self._pass or {})[i - 1] and not p:_needsOutput() and not aliases(p.output, self.output) then
    p:_dropOutput()
  end
end

--- After a one-sweep backward that released: a new backward must re-run
--- the forward first.
function M.backward_done(self) self._spent = true end

return M
