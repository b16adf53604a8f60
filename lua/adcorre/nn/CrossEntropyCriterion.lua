--- nn.CrossEntropyCriterion([weights [, opts]]): softmax cross-entropy of
-- logits [N, C] (or [C]) against 1-based class targets (an int64 tensor
-- [N], a Lua array, or a number for a single row):
--   loss = sum_n w[t_n] * (logsumexp(x_n) - x_n[t_n]) / sum_n w[t_n]
-- weights: optional per-class tensor [C]. opts.sizeAverage = false sums
-- over the batch instead of averaging (Torch's flag).
local Criterion = require("adcorre.nn.Criterion")
local ac = require("adcorre")
local core = require("adcorre.core")

local CrossEntropyCriterion = Criterion.class("nn.CrossEntropyCriterion", Criterion)

function CrossEntropyCriterion:__init(weights, opts)
  Criterion.__init(self)
  if weights ~= nil and not ac.is_tensor(weights) then
    if type(weights) == "table" then weights = ac.tensor(weights) else
      error("CrossEntropyCriterion: weights must be a tensor or a Lua array", 2)
    end
  end
  opts = opts or {}
  self.weights = weights
  self.sizeAverage = opts.sizeAverage ~= false
  self._args = { weights and weights:totable() or nil, { sizeAverage = self.sizeAverage } }
end

function CrossEntropyCriterion:_prepare(method, input, target)
  self:_checkInput(method, input, 1, 2)
  local x = input:dim() == 1 and input:view(1, input:size(1)) or input
  local N = x:size(1)
  local t
  if ac.is_tensor(target) then
    t = target:dtype() == "int64" and target or target:long()
  elseif type(target) == "table" then
    for i, v in ipairs(target) do
      if math.type(v) ~= "integer" then
        self:_error(method, "target %d is %s, expected an integer class index", i, tostring(v))
      end
    end
    t = ac.tensor(target, "int64")
  elseif math.type(target) == "integer" then
    t = ac.tensor({ target }, "int64")
  else
    self:_error(method, "target must be an int64 tensor, a Lua array or an integer, got %s", type(target))
  end
  if t:numel() ~= N then
    self:_error(method, "%d targets for %d rows (input %s)", t:numel(), N, self._shapeStr(input))
  end
  if self.weights and self.weights:numel() ~= x:size(2) then
    self:_error(method, "%d class weights for %d classes", self.weights:numel(), x:size(2))
  end
  return x, t:view(N)
end

function CrossEntropyCriterion:updateOutput(input, target)
  local x, t = self:_prepare("forward", input, target)
  local prob = self:_buffer("prob", x:shape())
  self.output = self:_call("forward", core.nn.cross_entropy_forward, x, t, prob, self.weights, self.sizeAverage)
  return self.output
end

function CrossEntropyCriterion:updateGradInput(input, target)
  local x, t = self:_prepare("backward", input, target)
  local prob = self._bufs.prob
  if not prob then self:_error("backward", "call forward first") end
  local gx = self:_resized("gradInput", x:shape())
  self:_call("backward", core.nn.cross_entropy_backward_input, prob, t, gx, self.weights, self.sizeAverage, 1)
  if input:dim() == 1 then self.gradInput = gx:view(input:size(1)) end
  return self.gradInput
end

function CrossEntropyCriterion:__tostring__()
  return "nn.CrossEntropyCriterion" .. (self.weights and "(weighted)" or "")
end

return CrossEntropyCriterion
