--- nn.Linear(nin, nout [, opts]): y = x W^T + b, W [nout, nin].
-- opts: bias (default true), init ("glorot" default, "he", ...; see
-- adcorre.nn.initializers). Input [N, nin] or [nin].
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")
local core = require("adcorre.core")
local initializers = require("adcorre.nn.initializers")

local Linear = Module.class("nn.Linear", Module)

local function check_count(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error(("Linear: %s must be a positive integer, got %s"):format(what, tostring(v)), 3)
  end
end

function Linear:__init(nin, nout, opts)
  Module.__init(self)
  check_count(nin, "nin")
  check_count(nout, "nout")
  opts = opts or {}
  self.nin, self.nout = nin, nout
  self.weight = ac.zeros(nout, nin)
  self.gradWeight = ac.zeros(nout, nin)
  if opts.bias ~= false then
    self.bias = ac.zeros(nout)
    self.gradBias = ac.zeros(nout)
  end
  self._args = { nin, nout, { bias = opts.bias ~= false } }
  self:reset(opts.init)
end

--- Re-initialises the weight (Keras fans: fan_in = nin, fan_out = nout) and zeroes the bias.
function Linear:reset(scheme)
  initializers.fill(self.weight, scheme, self.nin, self.nout)
  if self.bias then self.bias:zero() end
  return self
end
Linear.init = Linear.reset

--- Removes the bias. Returns self.
function Linear:noBias()
  self.bias, self.gradBias = nil, nil
  self._args[3] = { bias = false }
  return self
end

function Linear:_as2d(method, x)
  self:_checkInput(method, x, 1, 2)
  local s = x:shape()
  local nin = s[#s]
  if nin ~= self.nin then
    self:_error(method, "input has %d features, weight expects %d (input %s)", nin, self.nin, self._shapeStr(s))
  end
  if #s == 1 then return x:view(1, nin) end
  return x
end

function Linear:updateOutput(input)
  local x = self:_as2d("forward", input)
  local N = x:size(1)
  local y = self:_resized("output", { N, self.nout })
  self:_call("forward", core.nn.linear_forward, x, self.weight, self.bias, y)
  if input:dim() == 1 then self.output = y:view(self.nout) end
  return self.output
end

function Linear:updateGradInput(input, gradOutput)
  local x = self:_as2d("backward", input)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local N = x:size(1)
  local g = gradOutput:dim() == 1 and gradOutput:view(1, self.nout) or gradOutput
  local gx = self:_resized("gradInput", { N, self.nin })
  self:_call("backward", core.nn.linear_backward_input, g, self.weight, gx)
  if input:dim() == 1 then self.gradInput = gx:view(self.nin) end
  return self.gradInput
end

function Linear:accGradParameters(input, gradOutput, scale)
  local x = self:_as2d("backward", input)
  self:_checkGradOutput("backward", gradOutput, self.output)
  local g = gradOutput:dim() == 1 and gradOutput:view(1, self.nout) or gradOutput
  self:_call("backward", core.nn.linear_backward_params, x, g, self.gradWeight, self.gradBias, scale or 1)
end

function Linear:__tostring__()
  return ("nn.Linear(%d -> %d%s)"):format(self.nin, self.nout, self.bias and "" or ", no bias")
end

return Linear
