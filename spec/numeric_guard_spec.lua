-- Numeric guards of the training step (adcorre.trainer): a NaN or Inf in the
-- loss or in any gradient stops the step before the optimiser runs, with a
-- message naming the first bad tensor; with skip_nonfinite the batch is
-- skipped and counted instead. In both cases the parameters stay untouched.
local ac = require("adcorre")
local T = require("adcorre.trainer")
local serialize = require("adcorre.serialize")

local CLASSES = { "a", "b", "c" }
local HINT = " (use skip_nonfinite / --skip-nonfinite to skip such batches)"

local function setup_run(opts)
  ac.manual_seed(7)
  local m = ac.models.minixception{ size = 16, k = 2, d = 4, classes = 3 }
  local loss = opts.loss or ac.AdCorreLoss{ classes = 3 }
  local o = ac.optim.Adam(m, { lr = 1e-3 })
  local tr = T.new{ model = m, loss = loss, optim = o, classes = CLASSES, skip_nonfinite = opts.skip }
  return tr, m, o
end

local function batch()
  return ac.rand(4, 1, 16, 16), { 1, 2, 3, 1 }
end

local function param(m, name)
  for _, e in ipairs(serialize.named_tensors(m)) do
    if e.name == name then return e.tensor end
  end
  error("no parameter " .. name)
end

-- The gradient tensor of parameter `name` (same position in parameters()).
local function grad_of(m, name)
  local p = param(m, name)
  local params, grads = m:parameters()
  for i, q in ipairs(params) do
    if q == p then return grads[i] end
  end
  error("no gradient for " .. name)
end

-- Makes model:backward write `value` into element 1 of each named gradient.
local function poison_backward(m, names, value)
  local backward = m.backward
  m.backward = function(self, x, g)
    local r = backward(self, x, g)
    for _, n in ipairs(names) do grad_of(self, n):view(-1)[1] = value end
    return r
  end
end

-- A criterion with AdCorreLoss's interface whose total is replaced.
local function loss_returning(total)
  local inner = ac.AdCorreLoss{ classes = 3 }
  return {
    forward = function(_, z, e, y)
      local _, parts = inner:forward(z, e, y)
      return total, parts
    end,
    backward = function() return inner:backward() end,
    training = function() inner:training() end,
    evaluate = function() inner:evaluate() end,
  }
end

local function stop_message(tr, x, y)
  local ok, e = pcall(tr.step, tr, x, y)
  assert.is_false(ok, "expected the step to stop")
  return (tostring(e):gsub("^[%w%./_%-]+%.lua:%d+: ", "", 1))
end

describe("numeric guard: stop", function()
  it("a finite batch trains and changes the parameters", function()
    local tr, _, o = setup_run{}
    local before = o.params:clone()
    local total = tr:step(batch())
    assert.is_true(total == total and total < math.huge)
    assert.is_false(o.params:equal(before))
  end)

  it("a NaN loss stops the step, naming the loss and its parts", function()
    local tr, _, o = setup_run{ loss = loss_returning(0 / 0) }
    local before = o.params:clone()
    local msg = stop_message(tr, batch())
    assert.truthy(msg:find("^training stopped: the loss is %-?nan %(ce [%d%.e%-]+, fd [%d%.e%-]+, md [%d%.e%-]+, ed [%d%.e%-]+%)"),
      msg)
    assert.truthy(msg:sub(-#HINT) == HINT, msg)
    assert.is_true(o.params:equal(before))
  end)

  it("an infinite loss stops the step", function()
    local tr = setup_run{ loss = loss_returning(math.huge) }
    local msg = stop_message(tr, batch())
    assert.truthy(msg:find("^training stopped: the loss is inf "), msg)
  end)

  it("a NaN in one gradient is reported with the tensor's name and shape", function()
    local tr, m, o = setup_run{}
    poison_backward(m, { "classifier.bias" }, 0 / 0)
    local before = o.params:clone()
    assert.are.equal("training stopped: the gradient of classifier.bias 3 has NaN or Inf" .. HINT,
      stop_message(tr, batch()))
    assert.is_true(o.params:equal(before))
  end)

  it("an Inf gradient is caught too, and the FIRST bad tensor (module order) is named", function()
    local tr, m = setup_run{}
    poison_backward(m, { "classifier.weight", "trunk.conv1_bn.bias" }, -math.huge)
    assert.are.equal("training stopped: the gradient of trunk.conv1_bn.bias 8 has NaN or Inf" .. HINT,
      stop_message(tr, batch()))
  end)

  it("a NaN pixel reaching the gradients through the real backward pass names the first layer", function()
    local tr, _, o = setup_run{}
    local x, y = batch()
    x[2][1][5][5] = 0 / 0
    local before = o.params:clone()
    local msg = stop_message(tr, x, y)
    assert.truthy(msg:find("^training stopped: ") and msg:find("NaN or Inf", 1, true), msg)
    assert.truthy(msg:find("trunk.conv1.weight 8x1x3x3", 1, true) or msg:find("loss is", 1, true), msg)
    assert.is_true(o.params:equal(before))
  end)
end)

describe("numeric guard: skip_nonfinite", function()
  it("skips and counts bad batches, keeps the parameters, then trains on good ones", function()
    local tr, m, o = setup_run{ skip = true }
    local calls = 0
    local backward = m.backward
    m.backward = function(self, x, g) -- every second batch gets a NaN gradient
      local r = backward(self, x, g)
      calls = calls + 1
      if calls % 2 == 0 then grad_of(self, "classifier.weight"):view(-1)[1] = 0 / 0 end
      return r
    end
    local x, y = batch()
    assert.truthy(tr:step(x, y))
    local before = o.params:clone()
    local total, reason = tr:step(x, y)
    assert.is_nil(total)
    assert.are.equal("the gradient of classifier.weight 3x8 has NaN or Inf", reason)
    assert.are.equal(1, tr.skipped)
    assert.is_true(o.params:equal(before))
    assert.truthy(tr:step(x, y))
    assert.is_false(o.params:equal(before))
    assert.are.equal(1, tr.skipped)
  end)

  it("train_epoch reports the skipped batches and averages only the good ones", function()
    local tr = setup_run{ skip = true, loss = loss_returning(0 / 0) }
    local n = 0
    local s = tr:train_epoch(function()
      n = n + 1
      if n <= 3 then return batch() end
    end, 1)
    assert.are.equal(3, s.skipped)
    assert.are.equal(0, s.images)
    assert.are.equal(0, s.total)
    assert.are.equal(3, tr.skipped)
  end)

  it("non-finite logits (a diverged weight) are skipped and counted, and the step stops without the option", function()
    local tr, m2, o = setup_run{ skip = true }
    local ps2 = m2:parameters()
    ps2[#ps2 - 1]:view(-1)[1] = 0 / 0 -- the classifier's weight
    local before = o.params:clone()
    local total, why = tr:step(batch())
    assert.is_nil(total)
    assert.matches("the logits 4x3 have NaN or Inf", why, 1, true)
    assert.are.equal(1, tr.skipped)
    -- nothing but the poisoned weight itself changed (NaN ~= NaN: compare the rest)
    local a, b = o.params:view(-1), before:view(-1)
    local n, same = a:size(1), true
    for i = 1, n do
      local x, y = a[i], b[i]
      if not (x == y or (x ~= x and y ~= y)) then same = false; break end
    end
    assert.is_true(same)
    local tr3, m3 = setup_run{}
    local ps3 = m3:parameters()
    ps3[#ps3 - 1]:view(-1)[1] = 1 / 0
    local msg = stop_message(tr3, batch())
    assert.matches("the logits 4x3 have NaN or Inf", msg, 1, true)
  end)
end)
