--[[
adcorre.optim - optimisers over a model's flat parameter buffer.

  local opt = ac.optim.Adam(model, {lr = 1e-3, decay = 1e-5})
  for each batch:
    model:zeroGradParameters()
    ... forward, loss, backward ...
    opt:step()
  opt:next_epoch()            -- at the end of every epoch (epoch-based schedules)

`model` is anything with getParameters() -> flatParams, flatGrads (called once,
at construction), or a table {params = flatParams, grads = flatGrads}. The
update of one step is one C loop over the flat buffers (csrc/optim.c); the
rules are those of torch.optim (PyTorch 1.13), see doc/optim.md.

Options common to every optimiser:
  lr            base learning rate
  decay         Keras time decay: lr_t = lr / (1 + decay * iterations), where
                iterations = number of updates made before this one (so the
                first step uses lr)
  clip          max global gradient norm (torch.nn.utils.clip_grad_norm_); nil = off
  schedule      a schedule from ac.optim.schedules (step, cosine, cyclic) or a
                table {"step", every = 5, gamma = 0.1}; it sets the lr before decay
  weight_decay  L2 penalty (SGD, Adam) or decoupled decay (AdamW)

  opt:step() -> lr used, gradient norm (when clip is set)
  opt:get_lr() -> lr the next step will use ; opt.last_lr -> lr of the last step
  opt:set_lr(lr) sets the base lr ; opt:next_epoch() ; opt:set_epoch(e)
  opt:state() -> {kind, t, epoch, lr, config, tensors = {name -> tensor}}
  opt:load_state(state) restores it (tensors copied into the buffers)
]]

local core = require("adcorre.core")

local M = {}

------------------------------------------------------------------------------
-- schedules
------------------------------------------------------------------------------

local schedules = {}
M.schedules = schedules

local function check_pos(v, what, where)
  if type(v) ~= "number" or not (v > 0) then
    error(string.format("%s: %s must be a positive number, got %s", where, what, tostring(v)), 3)
  end
  return v
end

--- Step decay: lr * gamma ^ floor(epoch / every) (torch StepLR). The
--- reference configuration multiplies by 0.1 every 5 epochs.
function schedules.step(o)
  o = o or {}
  local s = {kind = "step", every = o.every or o.step_size or 5, gamma = o.gamma or 0.1}
  check_pos(s.every, "every", "schedules.step")
  check_pos(s.gamma, "gamma", "schedules.step")
  function s.lr(_, base, epoch, _)
    return base * s.gamma ^ (epoch // s.every)
  end
  return s
end

--- Cosine annealing from lr to eta_min over T epochs (unit = "epoch", the
--- default) or T steps (unit = "step"); torch CosineAnnealingLR's closed form,
--- held at eta_min after T.
function schedules.cosine(o)
  o = o or {}
  local s = {kind = "cosine", T = o.T or o.T_max, eta_min = o.eta_min or 0, unit = o.unit or "epoch"}
  check_pos(s.T, "T", "schedules.cosine")
  if s.unit ~= "epoch" and s.unit ~= "step" then
    error("schedules.cosine: unit must be \"epoch\" or \"step\", got " .. tostring(s.unit), 2)
  end
  function s.lr(_, base, epoch, iter)
    local e = s.unit == "epoch" and epoch or iter
    if e > s.T then e = s.T end
    return s.eta_min + (base - s.eta_min) * (1 + math.cos(math.pi * e / s.T)) / 2
  end
  return s
end

--- Cyclic learning rate between the optimiser's lr (or base) and max, per
--- step (torch CyclicLR): step_size steps up, step_size_down (default the
--- same) down; mode "triangular", "triangular2" or "exp_range" (gamma).
function schedules.cyclic(o)
  o = o or {}
  local s = {kind = "cyclic", base = o.base, max = o.max or o.max_lr, step_size = o.step_size or 2000,
             step_size_down = o.step_size_down, mode = o.mode or "triangular", gamma = o.gamma or 1.0}
  check_pos(s.max, "max", "schedules.cyclic")
  check_pos(s.step_size, "step_size", "schedules.cyclic")
  local down = s.step_size_down or s.step_size
  check_pos(down, "step_size_down", "schedules.cyclic")
  if s.mode ~= "triangular" and s.mode ~= "triangular2" and s.mode ~= "exp_range" then
    error("schedules.cyclic: mode must be triangular, triangular2 or exp_range, got " .. tostring(s.mode), 2)
  end
  local total = s.step_size + down
  local ratio = s.step_size / total
  function s.lr(_, base, _, iter)
    local lo = s.base or base
    local cycle = math.floor(1 + iter / total)
    local x = 1.0 + iter / total - cycle
    local scale = x <= ratio and x / ratio or (x - 1) / (ratio - 1)
    local f
    if s.mode == "triangular" then f = 1.0
    elseif s.mode == "triangular2" then f = 1 / (2.0 ^ (cycle - 1))
    else f = s.gamma ^ iter end
    return lo + (s.max - lo) * scale * f
  end
  return s
end

local function make_schedule(spec)
  if spec == nil then return nil end
  if type(spec) == "table" and type(spec.lr) == "function" then return spec end
  if type(spec) == "string" then spec = {spec} end
  if type(spec) ~= "table" then error("optim: schedule must be a table or a name, got " .. type(spec), 3) end
  local kind = spec[1] or spec.kind
  local ctor = schedules[kind]
  if not ctor then
    error("optim: unknown schedule " .. tostring(kind) .. " (step, cosine, cyclic)", 3)
  end
  return ctor(spec)
end

------------------------------------------------------------------------------
-- base optimiser
------------------------------------------------------------------------------

local Optimizer = {}
Optimizer.__index = Optimizer
M.Optimizer = Optimizer

local function flat_buffers(model, where)
  local p, g
  if type(model) == "table" and model.params and model.grads and not model.getParameters then
    p, g = model.params, model.grads
  elseif (type(model) == "table" or type(model) == "userdata") and model.getParameters then
    p, g = model:getParameters()
  else
    error(where .. ": expected a model with getParameters() or {params=, grads=}, got " .. type(model), 3)
  end
  if not core.tensor.is_tensor(p) or not core.tensor.is_tensor(g) then
    error(where .. ": getParameters() must return two tensors", 3)
  end
  if p:dtype() ~= "float32" or g:dtype() ~= "float32" then
    error(where .. ": parameters and gradients must be float32", 3)
  end
  if not p:is_contiguous() or not g:is_contiguous() then
    error(where .. ": flat parameters and gradients must be contiguous", 3)
  end
  if p:numel() ~= g:numel() then
    error(string.format("%s: %d parameters but %d gradients", where, p:numel(), g:numel()), 3)
  end
  if p:dim() ~= 1 then p = p:view(p:numel()) end
  if g:dim() ~= 1 then g = g:view(g:numel()) end
  return p, g
end

local function new_optimizer(class, kind, model, cfg, defaults)
  local where = "optim." .. kind
  cfg = cfg or {}
  if type(cfg) ~= "table" then error(where .. ": options must be a table", 3) end
  local self = setmetatable({kind = kind}, class)
  self.params, self.grads = flat_buffers(model, where)
  self.n = self.params:numel()
  local c = {}
  for k, v in pairs(defaults) do c[k] = v end
  for k, v in pairs(cfg) do
    if k ~= "schedule" then
      if defaults[k] == nil and k ~= "clip" and k ~= "decay" then
        error(string.format("%s: unknown option '%s'", where, tostring(k)), 3)
      end
      c[k] = v
    end
  end
  c.decay = c.decay or 0
  for _, k in ipairs({"lr", "decay", "weight_decay"}) do
    if type(c[k]) ~= "number" or not (c[k] >= 0) then
      error(string.format("%s: %s must be a number >= 0, got %s", where, k, tostring(c[k])), 3)
    end
  end
  if c.clip ~= nil and (type(c.clip) ~= "number" or not (c.clip > 0)) then
    error(string.format("%s: clip must be a positive number, got %s", where, tostring(c.clip)), 3)
  end
  self.cfg = c
  self.base_lr = c.lr
  self.schedule = make_schedule(cfg.schedule)
  self.t = 0       -- updates made
  self.epoch = 0   -- completed epochs
  self.last_lr = nil
  self.buffers = {}
  return self
end

--- The learning rate the next step will use (schedule, then Keras time decay).
function Optimizer:get_lr()
  local lr = self.base_lr
  if self.schedule then lr = self.schedule:lr(self.base_lr, self.epoch, self.t) end
  if self.cfg.decay ~= 0 then lr = lr / (1 + self.cfg.decay * self.t) end
  return lr
end

function Optimizer:set_lr(lr)
  if type(lr) ~= "number" or not (lr >= 0) then
    error("optim." .. self.kind .. ":set_lr: lr must be a number >= 0, got " .. tostring(lr), 2)
  end
  self.base_lr = lr
end

function Optimizer:next_epoch() self.epoch = self.epoch + 1 end

function Optimizer:set_epoch(e)
  if math.type(e) ~= "integer" or e < 0 then
    error("optim." .. self.kind .. ":set_epoch: epoch must be an integer >= 0, got " .. tostring(e), 2)
  end
  self.epoch = e
end

function Optimizer:zero_grad() self.grads:zero() end

--- Clips (when configured), applies one update and returns the lr used and
--- the gradient norm before clipping (nil without clipping).
function Optimizer:step()
  local lr = self:get_lr()
  local norm
  if self.cfg.clip then norm = core.optim.clip_grad_norm(self.grads, self.cfg.clip) end
  self.t = self.t + 1
  self:_update(lr)
  self.last_lr = lr
  return lr, norm
end

--- Global L2 norm of the current gradients.
function Optimizer:grad_norm() return math.sqrt(core.optim.sumsq(self.grads)) end

function Optimizer:_buffer(name)
  local b = self.buffers[name]
  if not b then
    b = core.tensor.zeros(self.n)
    self.buffers[name] = b
  end
  return b
end

function Optimizer:state()
  local cfg = {}
  for k, v in pairs(self.cfg) do cfg[k] = v end
  local sched
  if self.schedule then
    sched = {}
    for k, v in pairs(self.schedule) do if type(v) ~= "function" then sched[k] = v end end
  end
  local tensors = {}
  for k, v in pairs(self.buffers) do tensors[k] = v end
  return {kind = self.kind, t = self.t, epoch = self.epoch, lr = self.base_lr, n = self.n,
          config = cfg, schedule = sched, tensors = tensors}
end

function Optimizer:load_state(s)
  local where = "optim." .. self.kind .. ":load_state"
  if type(s) ~= "table" then error(where .. ": expected a state table, got " .. type(s), 2) end
  if s.kind ~= self.kind then
    error(string.format("%s: state is for %s, not %s", where, tostring(s.kind), self.kind), 2)
  end
  if s.n ~= nil and s.n ~= self.n then
    error(string.format("%s: state is for %d parameters, this optimiser has %d", where, s.n, self.n), 2)
  end
  if math.type(s.t) ~= "integer" or s.t < 0 then error(where .. ": bad step counter t", 2) end
  for name, t in pairs(s.tensors or {}) do
    if not core.tensor.is_tensor(t) or t:numel() ~= self.n then
      error(string.format("%s: state tensor '%s' must have %d elements%s", where, name, self.n,
        core.tensor.is_tensor(t) and (", got " .. t:numel()) or ""), 2)
    end
  end
  for name, t in pairs(s.tensors or {}) do
    local b = self:_buffer(name)
    b:copy(t:view(t:numel()))
  end
  self.t = s.t
  self.epoch = s.epoch or 0
  if s.lr then self.base_lr = s.lr end
end

------------------------------------------------------------------------------
-- SGD
------------------------------------------------------------------------------

local SGD = setmetatable({}, {__index = Optimizer})
SGD.__index = SGD

--- SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD).
function M.SGD(model, cfg)
  local self = new_optimizer(SGD, "SGD", model, cfg,
    {lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false})
  local c = self.cfg
  if type(c.momentum) ~= "number" or c.momentum < 0 then error("optim.SGD: momentum must be >= 0", 2) end
  if c.nesterov and (c.momentum <= 0 or c.dampening ~= 0) then
    error("optim.SGD: nesterov needs momentum > 0 and dampening = 0", 2)
  end
  return self
end

function SGD:_update(lr)
  local c = self.cfg
  local buf, first = nil, false
  if c.momentum ~= 0 then
    first = self.buffers.momentum_buffer == nil
    buf = self:_buffer("momentum_buffer")
  end
  core.optim.sgd(self.params, self.grads, buf, lr, c.momentum, c.dampening, c.weight_decay,
    c.nesterov and true or false, first)
end

------------------------------------------------------------------------------
-- Adam / AdamW
------------------------------------------------------------------------------

local Adam = setmetatable({}, {__index = Optimizer})
Adam.__index = Adam

local function adam_like(kind, model, cfg, decoupled)
  local self = new_optimizer(Adam, kind, model, cfg,
    {lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = decoupled and 1e-2 or 0,
     amsgrad = false, eps_mode = "torch"})
  local c = self.cfg
  if cfg and cfg.betas then error("optim." .. kind .. ": use beta1 and beta2", 3) end
  if c.eps_mode ~= "torch" and c.eps_mode ~= "keras" then
    error("optim." .. kind .. ": eps_mode must be \"torch\" or \"keras\", got " .. tostring(c.eps_mode), 3)
  end
  for _, k in ipairs({"beta1", "beta2"}) do
    if type(c[k]) ~= "number" or not (c[k] >= 0 and c[k] < 1) then
      error(string.format("optim.%s: %s must be in [0, 1), got %s", kind, k, tostring(c[k])), 3)
    end
  end
  if type(c.eps) ~= "number" or not (c.eps >= 0) then error("optim." .. kind .. ": eps must be >= 0", 3) end
  self.decoupled = decoupled
  return self
end

--- Adam (torch.optim.Adam; weight_decay is an L2 term added to the gradient).
--- eps_mode = "keras" adds eps to sqrt(v) before bias correction as Keras does.
function M.Adam(model, cfg) return adam_like("Adam", model, cfg, false) end

--- AdamW (torch.optim.AdamW: decoupled weight decay, default 1e-2).
function M.AdamW(model, cfg) return adam_like("AdamW", model, cfg, true) end

function Adam:_update(lr)
  local c = self.cfg
  local m, v = self:_buffer("exp_avg"), self:_buffer("exp_avg_sq")
  local vmax = c.amsgrad and self:_buffer("max_exp_avg_sq") or nil
  core.optim.adam(self.params, self.grads, m, v, vmax, self.t, lr, c.beta1, c.beta2, c.eps,
    c.weight_decay, self.decoupled, c.eps_mode == "keras")
end

--- Global-norm clipping of a flat gradient buffer; returns the norm before.
function M.clip_grad_norm(grads, max_norm) return core.optim.clip_grad_norm(grads, max_norm) end

return M
