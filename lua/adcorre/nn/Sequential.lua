--- nn.Sequential: feeds each module's output to the next.
--   local net = nn.Sequential():add(nn.Linear(4, 8)):add(nn.ReLU()):add(nn.Linear(8, 2))
local Container = require("adcorre.nn.Container")
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")
local core = require("adcorre.core")

local Sequential = Container.class("nn.Sequential", Container)

----------------------------------------------------------------------------
-- evaluation mode: a convolution followed by a batch norm runs as one
-- convolution with the norm folded in (weight * s, bias (b - mean) * s + beta,
-- s = gamma / sqrt(running_var + eps)), written straight into the norm's
-- output, when the batch is large enough for the fold to pay (batch x input
-- positions > weights per output channel; batch-1 Xception keeps the plain
-- path). The convolution's own output is then not computed; a backward
-- after such a forward first re-runs the plain forward (unfuse), so
-- gradients are those of the unfused network.
----------------------------------------------------------------------------
local function conv_of(m)
  if m.__typename == "nn.Conv2d" then return m end
  if m.__typename == "nn.SeparableConv2d" then return m.pointwise end
  return nil
end

local function fusable(m, bn, x)
  if bn.__typename ~= "nn.BatchNorm2d" or bn.train or not bn.running_var then return false end
  local conv = conv_of(m)
  if not conv or m.train or conv.nout ~= bn.nfeatures then return false end
  -- anything unusual goes the plain way (which also gives the usual errors)
  if not (ac.is_tensor(x) and x:dim() == 4 and x:size(2) == m.nin and x:dtype() == "float32") then
    return false
  end
  -- folding touches every weight once; it pays when the norm's pass over the
  -- output (batch x positions per channel) is larger than a channel's weights
  local w = conv.weight:shape()
  return x:size(1) * x:size(3) * x:size(4) > w[2] * w[3] * w[4]
end

local fold_scratch = {}

local function fused_forward(m, bn, x)
  local conv, cin = m, x
  if m.__typename == "nn.SeparableConv2d" then
    cin = m.depthwise:updateOutput(x)
    conv = m.pointwise
  end
  local O = conv.nout
  local s = bn:_buffer("fold_s", {O})
  s:copy(bn.running_var)
  s:add_(bn.eps)
  s:rsqrt_()
  if bn.weight then s:mul_(bn.weight) end
  -- the folded weight is only read by this call: one scratch for all of them
  local fw = core.nn.buffer(fold_scratch.w, conv.weight:shape())
  fold_scratch.w = fw
  core.convfast.scale_rows(conv.weight, s, fw)
  local fb = bn:_buffer("fold_b", {O})
  fb:copy(bn.running_mean)
  fb:mul_(s)
  fb:mul_(-1)
  if bn.bias then fb:add_(bn.bias) end
  if conv.bias then
    local t = bn:_buffer("fold_t", {O})
    t:copy(conv.bias)
    t:mul_(s)
    fb:add_(t)
  end
  local sh, geo, OH, OW, ws = conv:_prepare("forward", cin)
  local y = bn:_resized("output", {sh[1], O, OH, OW})
  conv:_call("forward", core.nn.conv2d_forward, cin, fw, fb, y, ws, geo)
  if bn.relu then core.nn.relu_forward(y, y) end -- BatchNorm2d(..., {relu = true})
  return y
end

----------------------------------------------------------------------------
-- releasing outputs (see "activation and gradient memory" in Module.lua)
----------------------------------------------------------------------------
-- self._pass[k] is true when child k's output shares storage with its input
-- (Identity, ReLU(true), Dropout in evaluation): the input then lives on in
-- that output, and what the children after k need decides its fate too.

-- Fate of child j's output once children 1..i have run: "release" when no
-- backward reads it any more, "recompute" when one does but the child can
-- give it again from its input (_recomputeOutput: a batch norm, a ReLU), so
-- it is released now and recomputed just before the backward that reads it,
-- "keep", or "wait" (it lives on through pass-through children up to the
-- newest output).
-- Sequential.recomputeMin: an output is released for recomputation only
-- when it has at least this many elements (2^20 = 4 MB of float32: every
-- batch norm of Xception at batch 8, whose peak RSS it lowers by ~80 MB;
-- for mini-Xception at batch 64 only the 16-channel module's, where the
-- smaller ones would cost an extra pass each (~5 % of a step) for little
-- memory). 0 recomputes whatever can be.
Sequential.recomputeMin = 1048576

local function big_enough(t, n)
  return n <= 0 or (ac.is_tensor(t) and t:numel() >= n)
end

local function fate(self, j, i, n)
  local mods, pass = self.modules, self._pass
  local m = mods[j]
  -- (recomputing needs the input: kept when the child's backward reads it;
  -- the first child's is the container's, whose fate is decided later)
  local again = not pass[j] and m._canRecomputeOutput ~= nil and m:_canRecomputeOutput()
    and (j == 1 or m._needsInputField) and big_enough(m.output, Sequential.recomputeMin)
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

function Sequential:_needsInput()
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

function Sequential:_needsOutput()
  local pass = self._pass
  if not pass then return true end
  for k = #self.modules, 1, -1 do
    if self.modules[k]:_needsOutput() then return true end
    if not pass[k] then return false end
  end
  return true
end

function Sequential:_dropOutput()
  local pass = self._pass or {}
  for k = #self.modules, 1, -1 do
    self.modules[k]:_dropOutput()
    if not pass[k] then break end
  end
  self.output = nil
end

-- Releases every output inside the children (checkpointing: the backward
-- recomputes them) but the block's own output.
local function release_inside(self)
  for _, m in ipairs(self.modules) do Module._releaseTree(m, self.output) end
  self._spent = true
end

-- Sequential.releaseMin: inputs with fewer elements than this keep every
-- output (no release bookkeeping): a batch-1 mini-Xception's activations
-- total a few hundred kB, and deciding each output's fate costs more time
-- (0.33 -> 0.40 ms per image) than the memory is worth. 0 releases always.
Sequential.releaseMin = 65536

function Sequential:updateOutput(input)
  local x = input
  local mods = self.modules
  local n, i, fused = #mods, 1, false
  local release = not self._keepOutputs and not (ac.is_tensor(input) and input:numel() < Sequential.releaseMin)
  local pass, pending, last, recomp = self._pass or {}, {}, 0, {}
  self._pass, self._recomp = pass, recomp
  self._spent = nil
  -- (only training draws random numbers in the children: Dropout)
  self._rng = self.train and ac.get_rng_state() or nil
  while i <= n do
    local m, nxt = mods[i], mods[i + 1]
    local ran
    if nxt and not self.train and not self._plain and fusable(m, nxt, x) then
      local ok, r = pcall(fused_forward, m, nxt, x)
      if not ok then
        error(("in module %d (%s) of %s: %s"):format(i, m.__typename, self.__typename, tostring(r)), 0)
      end
      pass[i], pass[i + 1] = false, false
      x, fused, ran, i = r, true, i + 1, i + 2
    else
      local y = self:_child(i, "updateOutput", x)
      pass[i] = Module._aliases(y, x)
      x, ran, i = y, i, i + 1
    end
    if release then
      -- outputs of earlier children that no backward reads any more
      for j = math.max(last, 1), ran - 1 do pending[#pending + 1] = j end
      last = ran
      local keep = {}
      for _, j in ipairs(pending) do
        local f = fate(self, j, ran, n)
        if f == "release" then
          mods[j]:_dropOutput()
        elseif f == "recompute" then
          mods[j]:_dropOutput()
          mods[j]._outRecompute = true -- its input must stay (Module:_needsInput)
          recomp[j] = true
        elseif f == "wait" then
          keep[#keep + 1] = j
        end
      end
      pending = keep
    end
  end
  self._fused = fused or nil
  self.output = x
  if release and self.checkpoint and self.train then release_inside(self) end
  return x
end

-- Before a backward: recompute the outputs a fused forward skipped, or that
-- a previous one-sweep backward (or checkpointing) released. The forward is
-- re-run on the same input with the random generator as it was at the
-- forward and the running statistics restored afterwards, so it gives the
-- same numbers and leaves no trace.
local function recompute(self, input)
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

-- The input of child i in the last forward (nil when it was released
-- because child i's backward does not read it).
local function input_of(self, i, input)
  if i == 1 then return input end
  return self.modules[i - 1].output
end

-- Before child i's backward: the outputs it reads (its input, its own
-- output) that were released for recomputation, given again.
local function restore_outputs(self, i, input)
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

function Sequential:updateGradInput(input, gradOutput)
  recompute(self, input)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    restore_outputs(self, i, input)
    g = self:_child(i, "updateGradInput", input_of(self, i, input), g)
  end
  self.gradInput = g
  return g
end

function Sequential:accGradParameters(input, gradOutput, scale)
  recompute(self, input)
  scale = scale or 1
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local m = self.modules[i]
    restore_outputs(self, i, input)
    self:_child(i, "accGradParameters", input_of(self, i, input), g, scale)
    g = m.gradInput
  end
end

--- backward in one sweep: each child runs updateGradInput and
--- accGradParameters back to back (what Torch's Sequential:backward does);
--- a child's gradInput goes back to the shared pool once the child before it
--- has used it, and the outputs inside a child once its backward is done
--- (see Module.lua): inner gradInput and output fields are nil afterwards.
--- Calling backward again without a new forward re-runs the forward first
--- (same numbers, running statistics untouched).
function Sequential:backward(input, gradOutput, scale)
  recompute(self, input)
  scale = scale or 1
  local release = not self._keepOutputs
  local g = gradOutput
  local n = #self.modules
  for i = n, 1, -1 do
    restore_outputs(self, i, input)
    g = self:_child(i, "backward", input_of(self, i, input), g, scale)
    if release then
      -- the next child's gradInput has been used: recycle it (Module.lua)
      if i < n then Module._releaseGradInput(self.modules[i + 1], g) end
      -- nothing inside child i is needed any more
      Module._releaseTree(self.modules[i], self.output)
      -- nor child i's input, unless the backward of child i - 1 reads it
      local p = self.modules[i - 1]
      if p and not (self._pass or {})[i - 1] and not p:_needsOutput() and not Module._aliases(p.output, self.output) then
        p:_dropOutput()
      end
    end
  end
  if release then self._spent = true end
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
