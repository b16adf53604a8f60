--[[
adcorre.loss - the Ad-Corre loss (Fard & Mahoor, IEEE Access 2022) as a
criterion: softmax cross-entropy plus the Feature, Mean and Embedding
Discriminators, with exact gradients for the logits and every embedding.

  local ac = require("adcorre")
  local loss = ac.AdCorreLoss{classes = 7}          -- lambda 50/7, adaptive, md "present"
  local total, parts = loss:forward(logits, embeddings, labels)
  --   logits [B, C] float32; embeddings = {E_1 .. E_k}, each [B, d] float32;
  --   labels: integer tensor [B] or Lua array, 1-based classes
  --   parts = {ce =, fd =, md =, ed =}; total = lambda * ce + fd + md + ed
  local gradLogits, gradEmbeddings = loss:backward()
  --   parts.grad_norm = {ce =, fd =, md =, ed =} is filled in by backward

Options (defaults in brackets):
  classes   number of classes C (required)
  lambda    weight of CE [50 / C; 50 with reference = true]
  fd, md, ed  enable each discriminator [true]
  adaptive  FD weights from the confusion history [true; false with reference]
  history   number of recent training predictions in the history [1000]
  md_mode   "present" (classes in the batch) or "reference" (all classes,
            other samples weighted 1e-7) ["present"; "reference" with reference]
  eps       guard of the row normalisation sqrt(|c|^2 + eps) [1e-8]
  reference the released code's balance: CE averaged over B*C with lambda 50,
            FD without adaptive weights, md_mode "reference". Options given
            explicitly override what reference implies.
  distributed  the loss of the global batch over MPI ranks [false]
            (adcorre.distributed_loss, doc/distributed.md)
  detach    FD, MD and ED are computed and reported but pass no gradient, as
            in the released code (NumPy inside the gradient tape): the
            gradient is lambda * CE's alone [false]

The exact definitions, the edge-case values and the gradients are in
doc/loss.md; the kernels in csrc/adcorre_loss.c.
]]

local core = require("adcorre.core")
local ac_tensor = core.tensor.tensor

local AdCorreLoss = {}
AdCorreLoss.__index = AdCorreLoss
AdCorreLoss.__name = "ac.AdCorreLoss"

local known = {
  classes = true, lambda = true, fd = true, md = true, ed = true, adaptive = true,
  history = true, md_mode = true, eps = true, reference = true, detach = true,
  distributed = true, -- the loss of the global batch under MPI (adcorre.distributed_loss)
}

local function opt_error(msg, ...)
  error("AdCorreLoss: " .. string.format(msg, ...), 3)
end

local function check_bool(o, key, default)
  local v = o[key]
  if v == nil then return default end
  if type(v) ~= "boolean" then opt_error("option '%s' must be a boolean, got %s", key, type(v)) end
  return v
end

local function check_int(o, key, default, lo, hi)
  local v = o[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    opt_error("option '%s' must be an integer, got %s", key, tostring(v))
  end
  v = math.tointeger(v)
  if not v or v < lo or (hi and v > hi) then
    opt_error("option '%s' must be an integer in %d..%s, got %s", key, lo, hi and tostring(hi) or "", tostring(o[key]))
  end
  return v
end

--- Creates the loss. See the module comment for the options.
function AdCorreLoss.new(opts)
  if type(opts) ~= "table" then
    error("AdCorreLoss: expects a table of options, e.g. ac.AdCorreLoss{classes = 7}", 2)
  end
  for k in pairs(opts) do
    if not known[k] then opt_error("unknown option '%s'", tostring(k)) end
  end
  if opts.classes == nil then opt_error("option 'classes' is required") end
  if opts.distributed ~= nil then return require("adcorre.distributed_loss").new(AdCorreLoss, opts) end
  local C = check_int(opts, "classes", nil, 1, 100000)
  local reference = check_bool(opts, "reference", false)
  local cfg = {
    classes = C,
    reference = reference,
    lambda = reference and 50 or 50 / C,
    fd = check_bool(opts, "fd", true),
    md = check_bool(opts, "md", true),
    ed = check_bool(opts, "ed", true),
    adaptive = check_bool(opts, "adaptive", not reference),
    history = check_int(opts, "history", 1000, 0, 1 << 40),
    md_mode = reference and "reference" or "present",
    eps = 1e-8,
    ce_over_classes = reference,
    detach = check_bool(opts, "detach", false),
  }
  if opts.lambda ~= nil then
    local l = opts.lambda
    if type(l) ~= "number" or l ~= l or l == math.huge or l == -math.huge then
      opt_error("option 'lambda' must be a finite number, got %s", tostring(l))
    end
    cfg.lambda = l
  end
  if opts.md_mode ~= nil then
    if opts.md_mode ~= "present" and opts.md_mode ~= "reference" then
      opt_error("option 'md_mode' must be \"present\" or \"reference\", got %s", tostring(opts.md_mode))
    end
    cfg.md_mode = opts.md_mode
  end
  if opts.eps ~= nil then
    local e = opts.eps
    if type(e) ~= "number" or not (e > 0) or e == math.huge then
      opt_error("option 'eps' must be a positive number, got %s", tostring(e))
    end
    cfg.eps = e
  end
  local self = setmetatable({
    config = cfg,
    train = true,
    _state = core.loss.new(C, cfg.history),
    gradLogits = nil,
    gradEmbeddings = {},
    stats = { ce = 0, fd = 0, md = 0, ed = 0, total = 0, md_classes = 0,
              grad_norm = { ce = 0, fd = 0, md = 0, ed = 0 } },
  }, AdCorreLoss)
  core.loss.configure(self._state, cfg)
  return self
end

setmetatable(AdCorreLoss, {
  __call = function(_, opts) return AdCorreLoss.new(opts) end,
})

-- Calls a kernel binding; its error is raised again at the caller of the
-- method (level 3), so the position is the user's line, not this file's.
local function call(fn, ...)
  local ok, a, b, c, d, e, f = pcall(fn, ...)
  if not ok then error((tostring(a):gsub("^[^:\n]*lua/adcorre/loss%.lua:%d+: ", "")), 3) end
  return a, b, c, d, e, f
end

--- total, parts = loss:forward(logits, embeddings, labels)
function AdCorreLoss:forward(logits, embeddings, labels)
  if getmetatable(self) ~= AdCorreLoss then
    error("AdCorreLoss:forward: call it as loss:forward(logits, embeddings, labels)", 2)
  end
  local total, ce, fd, md, ed, mdc =
    call(core.loss.forward, self._state, logits, embeddings, labels, self.train)
  local s = self.stats
  s.total, s.ce, s.fd, s.md, s.ed, s.md_classes = total, ce, fd, md, ed, mdc
  local gn = s.grad_norm
  gn.ce, gn.fd, gn.md, gn.ed = 0, 0, 0, 0
  local parts = { ce = ce, fd = fd, md = md, ed = ed, grad_norm = { ce = 0, fd = 0, md = 0, ed = 0 } }
  self._parts = parts
  self.output = total
  return total, parts
end
AdCorreLoss.updateOutput = AdCorreLoss.forward

--- gradLogits, gradEmbeddings = loss:backward()
-- Gradients of the total of the last forward. The returned tensors are
-- buffers of the loss, overwritten by the next backward.
function AdCorreLoss:backward()
  if getmetatable(self) ~= AdCorreLoss then
    error("AdCorreLoss:backward: call it as loss:backward()", 2)
  end
  local gZ, gE, nce, nfd, nmd, ned =
    core.loss.backward(self._state, self.gradLogits, self.gradEmbeddings)
  self.gradLogits, self.gradEmbeddings = gZ, gE
  -- detach: FD, MD and ED depend on the embeddings only, so dropping their
  -- embedding gradients leaves exactly lambda * dCE/dZ
  if self.config.detach then
    for j = 1, #gE do gE[j]:zero() end
    nfd, nmd, ned = 0, 0, 0
  end
  local gn = self.stats.grad_norm
  gn.ce, gn.fd, gn.md, gn.ed = nce, nfd, nmd, ned
  local pg = self._parts and self._parts.grad_norm
  if pg then pg.ce, pg.fd, pg.md, pg.ed = nce, nfd, nmd, ned end
  return gZ, gE
end
AdCorreLoss.updateGradInput = AdCorreLoss.backward

--- Training mode: forward records argmax(logits) vs labels in the history.
function AdCorreLoss:training()
  self.train = true
  return self
end

--- Evaluation mode: forward leaves the history alone.
function AdCorreLoss:evaluate()
  self.train = false
  return self
end

--- The row-normalised C x C confusion matrix the next forward uses for the
-- adaptive weights (the pinned one after set_confusion). Rows of classes not
-- seen in the history are all 0.
function AdCorreLoss:confusion()
  return core.loss.confusion(self._state)
end

--- Pins the confusion matrix (a [C, C] tensor or nested Lua table); nil unpins.
function AdCorreLoss:set_confusion(M)
  if type(M) == "table" and not core.tensor.is_tensor(M) then
    local ok, t = pcall(require("adcorre").tensor, M)
    if not ok then error("AdCorreLoss:set_confusion: M is not a matrix: " .. tostring(t), 2) end
    M = t
  end
  call(core.loss.set_confusion, self._state, M)
  return self
end

--- Appends (label, prediction) pairs to the history (1-based tensors of equal size).
function AdCorreLoss:record(labels, predictions)
  call(core.loss.record, self._state, labels, predictions)
  return self
end

--- Empties the confusion history (a pinned matrix stays pinned).
function AdCorreLoss:clear_history()
  core.loss.clear_history(self._state)
  return self
end

--- recorded, capacity, pinned
function AdCorreLoss:history()
  return core.loss.history(self._state)
end

--- The confusion history as plain data (for checkpoints): {labels = {...},
-- predictions = {...}} oldest first, and the pinned matrix when one is set.
function AdCorreLoss:history_state()
  local y, p = core.loss.history_pairs(self._state)
  local _, _, pinned = core.loss.history(self._state)
  local st = { labels = y:totable(), predictions = p:totable() }
  if pinned then st.pinned = self:confusion():totable() end
  return st
end

--- Restores what history_state() returned: the next adaptive weights are
-- exactly those the saved loss would have used.
function AdCorreLoss:load_history_state(st)
  if type(st) ~= "table" or type(st.labels) ~= "table" or type(st.predictions) ~= "table"
      or #st.labels ~= #st.predictions then
    error("AdCorreLoss:load_history_state: expects {labels = {...}, predictions = {...}} of equal length", 2)
  end
  core.loss.clear_history(self._state)
  if #st.labels > 0 then
    core.loss.record(self._state, ac_tensor(st.labels, "int64"), ac_tensor(st.predictions, "int64"))
  end
  if st.pinned then self:set_confusion(ac_tensor(st.pinned)) end
end

function AdCorreLoss:__tostring()
  local c = self.config
  return string.format(
    "ac.AdCorreLoss{classes=%d, lambda=%.6g, fd=%s, md=%s, ed=%s, adaptive=%s, history=%d, md_mode=%q, eps=%g%s}",
    c.classes, c.lambda, tostring(c.fd), tostring(c.md), tostring(c.ed), tostring(c.adaptive),
    c.history, c.md_mode, c.eps, (c.reference and ", reference=true" or "") .. (c.detach and ", detach=true" or ""))
end

--- R = AdCorreLoss.corrcoef(X [n, m] [, eps]): the epsilon-guarded Pearson
-- correlation between the rows of X that every term uses (numpy.corrcoef).
AdCorreLoss.corrcoef = core.loss.corrcoef

return AdCorreLoss
