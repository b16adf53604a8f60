--- adcorre.trainer: the training and evaluation loops behind
-- examples/train.lua and examples/evaluate.lua.
--
--   local T = require("adcorre.trainer")
--   local tr = T.new{model = m, loss = ac.AdCorreLoss{classes = 7}, optim = opt,
--                    classes = names, out = "out/run1"}
--   for epoch = 1, 10 do
--     local s = tr:train_epoch(train_batches, epoch)    -- iterator of (x, y)
--     local r = tr:evaluate(test_batches)
--     tr:checkpoint(epoch, r)
--   end
--
-- A step is forward, loss, backward, optimiser. Before the optimiser runs,
-- the loss and every gradient are checked: a NaN or Inf stops training with
-- a message naming the first bad tensor, or (skip_nonfinite = true) the batch
-- is skipped and counted. Checkpoints hold everything needed to continue
-- exactly: model, optimiser state, epoch, the generator state, the loss's
-- confusion history and the best score so far; they are written to a
-- temporary name and renamed.
local ac = require("adcorre")
local core = require("adcorre.core")
local serialize = require("adcorre.serialize")
local metrics = require("adcorre.metrics")

local M = {}
local Trainer = {}
Trainer.__index = Trainer

local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

--- opts: model, loss (an AdCorreLoss or any criterion with the same forward/backward),
-- optim, classes (names), out (folder, optional), clip (global-norm, optional),
-- skip_nonfinite (bool), progress (function(info) called after every step, optional).
-- Data-parallel runs (adcorre.distributed_train) add after_backward(model)
-- (called between the backward and the gradient checks), eval_loss (the
-- criterion evaluate uses, default loss) and reduce(conf, sums, n) -> n
-- (merges an epoch's confusion, sums and image count over the ranks).
function M.new(opts)
  assert(type(opts) == "table", "trainer.new: expects an options table")
  for _, k in ipairs({ "model", "loss", "optim", "classes" }) do
    if opts[k] == nil then error("trainer.new: option '" .. k .. "' is required", 2) end
  end
  local self = setmetatable({}, Trainer)
  self.model, self.loss, self.optim = opts.model, opts.loss, opts.optim
  self.classes = opts.classes
  self.out = opts.out
  self.clip = opts.clip
  self.skip_nonfinite = opts.skip_nonfinite or false
  self.progress = opts.progress
  self.after_backward, self.eval_loss, self.reduce = opts.after_backward, opts.eval_loss, opts.reduce
  self.skipped = 0
  self.best = nil
  self.best_epoch = nil
  self.history = {}
  return self
end

--- The first non-finite tensor among the model's gradients, as its name (or nil).
local function first_bad_gradient(model)
  local named = serialize.named_tensors(model)
  local params, grads = model:parameters()
  -- parameters() order is the module order; name them by matching storage views
  for i, g in ipairs(grads) do
    if not core.ops.all_finite(g) then
      local name = "parameter " .. i
      for _, e in ipairs(named) do
        if e.tensor == params[i] then name = e.name break end
      end
      return name .. " " .. table.concat(g:shape(), "x")
    end
  end
  return nil
end
M.first_bad_gradient = first_bad_gradient

--- One optimisation step on a batch. Returns total, parts, logits (or nil, reason when skipped).
function Trainer:step(x, y)
  local model, loss = self.model, self.loss
  model:training()
  loss:training()
  local out = model:forward(x)
  local bad
  -- a diverged network gives non-finite outputs: name them before the loss refuses them
  if not core.ops.all_finite(out.logits) then
    bad = "the logits " .. table.concat(out.logits:shape(), "x") .. " have NaN or Inf"
  else
    for j, e in ipairs(out.embeddings) do
      if not core.ops.all_finite(e) then
        bad = ("embedding %d (%s) has NaN or Inf"):format(j, table.concat(e:shape(), "x"))
        break
      end
    end
  end
  local total, parts
  if not bad then total, parts = loss:forward(out.logits, out.embeddings, y) end
  if not bad and not is_finite(total) then
    bad = "the loss is " .. tostring(total) .. string.format(" (ce %s, fd %s, md %s, ed %s)",
      tostring(parts.ce), tostring(parts.fd), tostring(parts.md), tostring(parts.ed))
  end
  if not bad then
    local gl, ge = loss:backward()
    self.optim:zero_grad()
    model:backward(x, { logits = gl, embeddings = ge })
    if self.after_backward then self.after_backward(model) end
    local name = core.ops.all_finite(self.optim.grads) and nil or first_bad_gradient(model)
    if name then bad = "the gradient of " .. name .. " has NaN or Inf" end
  end
  if bad then
    if self.skip_nonfinite then
      self.skipped = self.skipped + 1
      return nil, bad
    end
    error("training stopped: " .. bad .. " (use skip_nonfinite / --skip-nonfinite to skip such batches)", 2)
  end
  if self.clip then ac.optim.clip_grad_norm(self.optim.grads, self.clip) end
  self.optim:step()
  return total, parts, out.logits
end

--- Trains one epoch over `batches` (an iterator function returning x, y, or a
-- loader with :epoch(e)). Returns the epoch's statistics.
function Trainer:train_epoch(batches, epoch, nbatches)
  local iter = batches
  if type(batches) == "table" then iter = batches:epoch(epoch) end
  local conf = metrics.Confusion(#self.classes)
  local sums = { total = 0, ce = 0, fd = 0, md = 0, ed = 0 }
  local n, steps, t0 = 0, 0, ac.now()
  local skipped0 = self.skipped
  for x, y in iter do
    local total, parts, logits = self:step(x, y)
    local b = x:size(1)
    if total then
      steps = steps + 1
      sums.total = sums.total + total * b
      for _, k in ipairs({ "ce", "fd", "md", "ed" }) do sums[k] = sums[k] + (parts[k] or 0) * b end
      conf:add(logits:argmax(2), y)
      n = n + b
    end
    if self.progress then
      local dt = ac.now() - t0
      self.progress({
        epoch = epoch, step = steps + (self.skipped - skipped0), nbatches = nbatches, images = n,
        images_per_s = n / math.max(dt, 1e-9), elapsed = dt,
        loss = n > 0 and sums.total / n or 0,
        ce = n > 0 and sums.ce / n or 0, fd = n > 0 and sums.fd / n or 0,
        md = n > 0 and sums.md / n or 0, ed = n > 0 and sums.ed / n or 0,
        accuracy = conf:accuracy(), lr = self.optim:get_lr(),
      })
    end
  end
  if self.reduce then n = self.reduce(conf, sums, n) end
  local dt = ac.now() - t0
  if self.optim.next_epoch then self.optim:next_epoch() end
  local s = {
    epoch = epoch, images = n, seconds = dt, images_per_s = n / math.max(dt, 1e-9),
    skipped = self.skipped - skipped0, accuracy = conf:accuracy(),
  }
  for k, v in pairs(sums) do s[k] = n > 0 and v / n or 0 end
  return s
end

--- Evaluates on `batches`: a metrics.Confusion plus a summary table. With
-- keep_embeddings, also returns the concatenated embeddings [N, k*d] and labels.
function Trainer:evaluate(batches, opts)
  opts = opts or {}
  local model = self.model
  model:evaluate()
  local iter = batches
  if type(batches) == "table" then iter = batches:epoch() end
  local conf = metrics.Confusion(#self.classes)
  local embs, labels = {}, {}
  local loss_sum, n = 0, 0
  local loss = self.eval_loss or self.loss
  local was_training = loss.train
  loss:evaluate()
  for x, y in iter do
    local out = model:forward(x)
    local total = loss:forward(out.logits, out.embeddings, y)
    loss_sum = loss_sum + total * x:size(1)
    n = n + x:size(1)
    conf:add(out.logits:argmax(2), y)
    if opts.keep_embeddings then
      embs[#embs + 1] = ac.cat(out.embeddings, 2)
      labels[#labels + 1] = (type(y) == "table") and ac.tensor(y, "int64") or y:clone()
    end
  end
  if was_training then loss:training() end
  if self.reduce then
    local sums = { loss = loss_sum }
    n = self.reduce(conf, sums, n)
    loss_sum = sums.loss
  end
  model:training()
  local r = M.summary(conf, self.classes)
  r.loss = n > 0 and loss_sum / n or 0
  r.images = n
  if opts.keep_embeddings and #embs > 0 then
    r.embeddings = ac.cat(embs, 1)
    r.labels = ac.cat(labels, 1)
  end
  return r, conf
end

--- A JSON-able summary of a confusion meter.
function M.summary(conf, classes)
  local per = conf:per_class()
  return {
    accuracy = conf:accuracy(),
    mean_class_accuracy = conf:mean_class_accuracy(),
    confusion = conf:normalized_table(),
    counts = conf:matrix_table(),
    classes = classes,
    precision = per.precision, recall = per.recall, f1 = per.f1, support = per.support,
  }
end

----------------------------------------------------------------------------
-- checkpoints
----------------------------------------------------------------------------

-- The generator state is four 64-bit words; JSON numbers cannot hold them
-- exactly, so they travel as hexadecimal strings.
function M.rng_to_hex(t)
  local out = {}
  for i = 1, 4 do out[i] = string.format("%016x", t[i]) end
  return out
end

function M.rng_from_hex(h)
  local v = {}
  for i = 1, 4 do v[i] = math.tointeger(tonumber(h[i], 16)) end
  return ac.tensor(v, "int64")
end

--- Everything needed to continue exactly after `epoch`.
function Trainer:checkpoint_state(epoch, extra)
  local ck = {
    model = self.model, optim = self.optim, epoch = epoch,
    rng_state = M.rng_to_hex(ac.get_rng_state()),
    best = self.best, best_epoch = self.best_epoch,
    skipped = self.skipped, history = self.history,
  }
  if self.loss.history_state then
    local hs = self.loss:history_state()
    ck.loss_history = hs
  end
  for k, v in pairs(extra or {}) do ck[k] = v end
  return ck
end

function Trainer:save_checkpoint(path, epoch, extra)
  serialize.save_checkpoint(path, self:checkpoint_state(epoch, extra))
end

--- Restores the state saved by save_checkpoint; returns the checkpoint's epoch and fields.
function Trainer:load_checkpoint(path)
  local ck = serialize.load_checkpoint(path, self.model, self.optim)
  if ck.rng_state then ac.set_rng_state(M.rng_from_hex(ck.rng_state)) end
  if ck.loss_history and self.loss.load_history_state then self.loss:load_history_state(ck.loss_history) end
  self.best, self.best_epoch = ck.best, ck.best_epoch
  self.skipped = ck.skipped or 0
  self.history = ck.history or {}
  return ck.epoch or 0, ck
end

M.Trainer = Trainer
return M
