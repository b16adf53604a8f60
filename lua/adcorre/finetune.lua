--- adcorre.finetune: fine-tuning a pre-trained trunk (e.g. ImageNet Xception
-- loaded with ac.keras.load_weights): the trunk frozen for the first epochs,
-- or trained with a fraction of the learning rate.
--
--   local ft = finetune.trunk(opt, model, {freeze_epochs = 2, lr_mult = 0.1})
--   ft:set_epoch(e)     -- at the start of every epoch
--
-- The optimiser's step is wrapped: the trunk's parameters move by
-- lr_mult (0 while frozen) times the step the optimiser computed, i.e.
-- p = p_old + mult * (p_new - p_old). That is an exact learning-rate
-- multiplier for SGD and Adam alike (Adam's moments do not depend on the
-- learning rate), which scaling the gradients would not be for Adam. The
-- trunk's batch-norm statistics keep adapting in training mode.
local M = {}

local Trunk = {}
Trunk.__index = Trunk

function M.trunk(opt, model, o)
  o = o or {}
  local freeze = o.freeze_epochs or 0
  local mult = o.lr_mult or 1
  if type(freeze) ~= "number" or freeze < 0 then error("finetune: freeze_epochs must be >= 0", 2) end
  if type(mult) ~= "number" or mult < 0 then error("finetune: lr_mult must be >= 0", 2) end
  if not model.trunk then error("finetune: the model has no trunk (models of ac.models have)", 2) end
  local self = setmetatable({freeze = freeze, lr_mult = mult, epoch = 1, saved = {},
                             params = (model.trunk:parameters())}, Trunk)
  local step = opt.step
  opt.step = function(o2, ...)
    local m = self:multiplier()
    if m == 1 then return step(o2, ...) end
    for i, p in ipairs(self.params) do
      self.saved[i] = self.saved[i] or p:clone()
      self.saved[i]:copy(p)
    end
    local r = table.pack(step(o2, ...))
    for i, p in ipairs(self.params) do
      if m == 0 then p:copy(self.saved[i])
      else p:mul_(m):add_(self.saved[i] * (1 - m)) end
    end
    return table.unpack(r, 1, r.n)
  end
  return self
end

--- The trunk's learning-rate multiplier in the current epoch.
function Trunk:multiplier()
  if self.epoch <= self.freeze then return 0 end
  return self.lr_mult
end

function Trunk:set_epoch(e) self.epoch = e end

return M
