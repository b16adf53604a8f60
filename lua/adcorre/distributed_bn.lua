--- adcorre.distributed_bn: synchronised batch normalisation for
-- dist.sync_batchnorm(model). In training mode every converted layer
-- normalises with the mean and biased variance of the GLOBAL batch (all
-- ranks' rows) and back-propagates through those statistics exactly, so a
-- run on R ranks with per-rank batch b computes what one process computes on
-- the union batch of R * b rows.
--
-- Forward: the layer's own kernel gives each rank's mean m_r and variance
-- v_r over its n_r values per channel; one allreduce of (n_r m_r, n_r) gives
-- the global mean m, a second of n_r (v_r + (m_r - m)^2) the global biased
-- variance (the parallel-variance formula, which avoids E[x^2] - m^2).
-- The output is then written by batchnorm_apply with (m, 1/sqrt(v + eps));
-- the running statistics take the unbiased global variance.
-- Backward, with g the gradient after the fused ReLU's mask and
-- xhat = (x - m) * invstd:
--   gx = gamma invstd (g - S_g / n - xhat S_gx / n),  S over the global batch,
-- from one allreduce of the local (S_gx, S_g): the evaluation-mode kernel
-- gives gamma invstd g, and batchnorm_apply with gamma' = -gamma invstd S_gx / n,
-- beta' = -gamma invstd S_g / n the rest. The parameter gradients stay the
-- local sums: dist.allreduce_gradients adds them up with the others.
-- Evaluation mode (running statistics) is untouched.
local ac = require("adcorre")
local core = require("adcorre.core")
local nnk = core.nn

local M = {}

local function vec(self, name, C)
  local t = self._sync[name]
  if not t or t:numel() ~= C then
    t = ac.zeros(C)
    self._sync[name] = t
  end
  return t
end

local function sync_forward(self, input)
  if not self.train then return self._syncPlain.updateOutput(self, input) end
  local s = self:_check("forward", input)
  local C = self.nfeatures
  local dist = self._dist
  local y = self:_resized("output", s)
  local sm, si = self:_buffer("save_mean", { C }), self:_buffer("save_invstd", { C })
  local nl = input:numel() // C
  -- local statistics from the layer's kernel (its output is rewritten below)
  local lm, li = vec(self, "lmean", C), vec(self, "linvstd", C)
  self:_call("forward", nnk.batchnorm_forward_train, input, self.weight, self.bias, y, lm, li, nil, nil,
    self.eps, self.momentum, false)
  local a = vec(self, "pack1", C + 1)
  for c = 1, C do a[c] = nl * lm[c] end
  a[C + 1] = nl
  dist.allreduce(a, "sum")
  local n = a[C + 1]
  if n <= 1 then self:_error("forward", "training needs more than one value per channel over all ranks") end
  local b = vec(self, "pack2", C)
  local eps = self.eps
  for c = 1, C do
    local m = a[c] / n
    sm[c] = m
    local iv = li[c]
    local vl = 1 / (iv * iv) - eps
    if vl < 0 then vl = 0 end
    local dm = lm[c] - m
    b[c] = nl * (vl + dm * dm)
  end
  dist.allreduce(b, "sum")
  local rm, rv, mom = self.running_mean, self.running_var, self.momentum
  for c = 1, C do
    local v = b[c] / n
    si[c] = 1 / math.sqrt(v + eps)
    rm[c] = (1 - mom) * rm[c] + mom * sm[c]
    rv[c] = (1 - mom) * rv[c] + mom * v * n / (n - 1)
  end
  self._syncN = n
  self:_call("forward", nnk.batchnorm_apply, input, self.weight, self.bias, y, sm, si, self.relu)
  self._fwdTrain = true
  return y
end

local function sync_backward(self, input, gradOutput, gx, gw, gb, scale)
  if not self._fwdTrain then return self._syncPlain._backward(self, input, gradOutput, gx, gw, gb, scale) end
  local C = self.nfeatures
  local sm, si = self._bufs.save_mean, self._bufs.save_invstd
  local sgx, sg = vec(self, "sgx", C), vec(self, "sg", C)
  sgx:zero()
  sg:zero()
  -- local sums of g * xhat and g (g after the ReLU mask), in one pass
  self:_call("backward", nnk.batchnorm_backward, input, gradOutput, sm, si, self.weight, self.bias,
    nil, sgx, sg, 1, true, self.relu)
  if gw then gw:add_(sgx * (scale or 1)) end
  if gb then gb:add_(sg * (scale or 1)) end
  if not gx then return end
  local pack = vec(self, "pack3", 2 * C)
  pack:narrow(1, 1, C):copy(sgx)
  pack:narrow(1, C + 1, C):copy(sg)
  self._dist.allreduce(pack, "sum")
  local n = self._syncN
  local ga, gbeta = vec(self, "ga", C), vec(self, "gbeta", C)
  local w = self.weight
  for c = 1, C do
    local k = -(w and w[c] or 1) * si[c] / n
    ga[c] = k * pack[c]
    gbeta[c] = k * pack[C + c]
  end
  -- gamma * invstd * g (the evaluation-mode formula), then the statistics' part
  self:_call("backward", nnk.batchnorm_backward, input, gradOutput, sm, si, self.weight, self.bias,
    gx, nil, nil, 1, false, self.relu)
  local d = self._sync.corr
  if not d or d:numel() ~= input:numel() then
    d = ac.zeros(table.unpack(input:shape()))
    self._sync.corr = d
  end
  self:_call("backward", nnk.batchnorm_apply, input, ga, gbeta, d, sm, si, false)
  gx:add_(d)
end

--- Converts every batch-norm layer of model (instance-level overrides; the
--- class is unchanged, so saving and loading see an ordinary model).
function M.convert(model, dist)
  local BatchNorm = require("adcorre.nn.BatchNorm")
  local plain = { updateOutput = BatchNorm.updateOutput, _backward = BatchNorm._backward }
  local count = 0
  model:apply(function(m)
    if type(m) == "table" and m.running_mean and m._backward == BatchNorm._backward and not m._sync then
      m._sync, m._dist, m._syncPlain = {}, dist, plain
      m.updateOutput = sync_forward
      m._backward = sync_backward
      count = count + 1
    end
  end)
  return count
end

return M
