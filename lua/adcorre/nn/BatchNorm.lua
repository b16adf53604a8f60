--- nn.BatchNorm: shared code of BatchNorm1d ([N, C] or [N, C, L]) and
-- BatchNorm2d ([N, C, H, W]).
--   BatchNormXd(n [, eps = 1e-5 [, momentum = 0.1 [, opts]]])
-- Training mode normalises with the batch mean and biased variance and
-- updates running_mean / running_var (the latter with the unbiased batch
-- variance) as running = (1 - momentum) * running + momentum * batch:
-- PyTorch's convention. Keras' BatchNormalization(momentum=0.99,
-- epsilon=1e-3) is BatchNorm2d(n, 1e-3, 0.01) here. Evaluation mode uses the
-- running statistics. opts.affine (default true) adds weight (gamma, ones)
-- and bias (beta, zeros). running_mean / running_var are buffers: saved with
-- the model (m:buffers()), not trained.
--
-- opts.relu = true fuses the ReLU that follows: the output is
-- max(norm(x), 0), written in the same pass (BatchNorm + ReLU as one
-- module, what the models use). Its backward, like the plain one's, needs
-- only the input and the saved per-channel mean and 1/std: the ReLU mask is
-- recomputed from the input, so no normalised copy, mask or output is kept
-- for it (the output may be released once the next layer has read it).
-- The backward may write the input gradient over gradOutput: a container
-- that owns gradOutput can make it the module's gradInput before calling
-- backward (one gradient buffer less); ReLU's backward allows the same.
-- Parameter and buffer names are those of the plain BatchNorm.
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")
local core = require("adcorre.core")

local BatchNorm = Module.class("nn.BatchNorm", Module)
BatchNorm._bufferFields = { "running_mean", "running_var" }
BatchNorm._ranks = { 2, 3, 4 }
BatchNorm._needsOutputField = false   -- the backward reads the input (adcorre.memory.plan)

function BatchNorm:__init(n, eps, momentum, opts)
  Module.__init(self)
  local name = self.__typename:gsub("^nn%.", "")
  if math.type(n) ~= "integer" or n < 1 then
    error(("%s: number of features must be a positive integer, got %s"):format(name, tostring(n)), 3)
  end
  eps = eps or 1e-5
  momentum = momentum or 0.1
  if type(eps) ~= "number" or eps <= 0 then error(("%s: eps must be > 0, got %s"):format(name, tostring(eps)), 3) end
  if type(momentum) ~= "number" or momentum < 0 or momentum > 1 then
    error(("%s: momentum must be in [0, 1], got %s"):format(name, tostring(momentum)), 3)
  end
  opts = opts or {}
  self.nfeatures, self.eps, self.momentum = n, eps, momentum
  self.affine = opts.affine ~= false
  if opts.relu ~= nil and type(opts.relu) ~= "boolean" then
    error(("%s: relu must be a boolean, got %s"):format(name, type(opts.relu)), 3)
  end
  self.relu = opts.relu == true
  if self.affine then
    self.weight = ac.ones(n)
    self.bias = ac.zeros(n)
    self.gradWeight = ac.zeros(n)
    self.gradBias = ac.zeros(n)
  end
  self.running_mean = ac.zeros(n)
  self.running_var = ac.ones(n)
  self._args = { n, eps, momentum, { affine = self.affine, relu = self.relu or nil } }
end

function BatchNorm:reset()
  if self.affine then
    self.weight:fill(1)
    self.bias:zero()
  end
  self.running_mean:zero()
  self.running_var:fill(1)
  return self
end
BatchNorm.init = BatchNorm.reset

function BatchNorm:_check(method, x)
  self:_checkInput(method, x, table.unpack(self._ranks))
  local s = x:shape()
  if s[2] ~= self.nfeatures then
    self:_error(method, "input has %d channels, expected %d (input %s)", s[2], self.nfeatures, self._shapeStr(s))
  end
  return s
end

function BatchNorm:updateOutput(input)
  local s = self:_check("forward", input)
  local C = self.nfeatures
  local y = self:_resized("output", s)
  local sm, si = self:_buffer("save_mean", { C }), self:_buffer("save_invstd", { C })
  if self.train then
    if input:numel() // C <= 1 then
      self:_error("forward", "training needs more than one value per channel (input %s)", self._shapeStr(s))
    end
    self:_call("forward", core.nn.batchnorm_forward_train, input, self.weight, self.bias, y, sm, si,
      self.running_mean, self.running_var, self.eps, self.momentum, self.relu)
  else
    self:_call("forward", core.nn.batchnorm_forward_eval, input, self.weight, self.bias, y, sm, si,
      self.running_mean, self.running_var, self.eps, self.relu)
  end
  self._fwdTrain = self.train
  return y
end

--- For containers that drop outputs no backward needs (adcorre.memory.plan): the
--- output of the last forward again, bit for bit, from the same input and
--- the statistics that forward saved (nothing is updated), written into
--- self.output. A fused batch norm + ReLU's output is the next layer's
--- input; a container may release it after the forward and call this before
--- the next layer's backward, so that only the norm's input is held.
function BatchNorm:_recomputeOutput(input)
  local s = self:_check("forward", input)
  if self._fwdTrain == nil or not (self._bufs and self._bufs.save_invstd) then
    self:_error("forward", "no earlier forward to recompute")
  end
  local y = self:_resized("output", s)
  self:_call("forward", core.nn.batchnorm_apply, input, self.weight, self.bias, y,
    self._bufs.save_mean, self._bufs.save_invstd, self.relu)
  return y
end
function BatchNorm:_canRecomputeOutput() return true end

-- Checks a backward's arguments against the forward (the gradient has the
-- input's shape; the output itself is not needed).
function BatchNorm:_checkBackward(input, gradOutput)
  local s = self:_check("backward", input)
  if self._fwdTrain == nil or not (self._bufs and self._bufs.save_invstd) then
    self:_error("backward", "call forward before backward")
  end
  self:_checkGradOutput("backward", gradOutput, self.output or input)
  return s
end

-- gx (or nil) and the parameter gradients (or nil) in one kernel call.
function BatchNorm:_backward(input, gradOutput, gx, gw, gb, scale)
  self:_call("backward", core.nn.batchnorm_backward, input, gradOutput, self._bufs.save_mean,
    self._bufs.save_invstd, self.weight, self.bias, gx, gw, gb, scale or 1, self._fwdTrain, self.relu)
end

function BatchNorm:updateGradInput(input, gradOutput)
  local s = self:_checkBackward(input, gradOutput)
  local gx = self:_resized("gradInput", s)
  self:_backward(input, gradOutput, gx, nil, nil, 1)
  return gx
end

function BatchNorm:accGradParameters(input, gradOutput, scale)
  if not self.affine then return end
  self:_checkBackward(input, gradOutput)
  self:_backward(input, gradOutput, nil, self.gradWeight, self.gradBias, scale)
end

--- Input and parameter gradients in one pass over the data.
function BatchNorm:backward(input, gradOutput, scale)
  local s = self:_checkBackward(input, gradOutput)
  local gx = self:_resized("gradInput", s)
  self:_backward(input, gradOutput, gx, self.gradWeight, self.gradBias, scale)
  return gx
end

function BatchNorm:__tostring__()
  local s = ("%s(%d, eps %g, momentum %g%s%s)"):format(self.__typename, self.nfeatures, self.eps,
    self.momentum, self.affine and "" or ", no affine", self.relu and ", relu" or "")
  return s
end

return BatchNorm
