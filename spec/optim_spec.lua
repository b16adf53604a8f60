-- optim_spec.lua - optimisers: updates against torch.optim on fixed gradients
-- (tools/torch_optim_compare.py, when /usr/bin/python3 has torch), Keras time
-- decay, schedules, clipping, state round trip and argument errors.
local core = require("adcorre.core")
local optim = require("adcorre.optim")

local function has_torch()
  return os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == true
end

local function flat(t) return t:view(t:numel()):totable() end

local function maxdiff(a, b)
  local ta, tb = flat(a), flat(b)
  assert(#ta == #tb, "length mismatch")
  local m = 0
  for i = 1, #ta do m = math.max(m, math.abs(ta[i] - tb[i])) end
  return m
end

-- Minimal JSON for the configuration list (numbers, strings, booleans, tables).
local function json(v)
  local ty = type(v)
  if ty == "number" then return string.format("%.17g", v)
  elseif ty == "boolean" then return tostring(v)
  elseif ty == "string" then return string.format("%q", v)
  elseif #v > 0 then
    local parts = {}
    for _, x in ipairs(v) do parts[#parts + 1] = json(x) end
    return "[" .. table.concat(parts, ",") .. "]"
  else
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = string.format("%q", k) .. ":" .. json(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
end

local N, T = 1031, 6

local configs = {
  {opt = "SGD", lr = 0.1},
  {opt = "SGD", lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 1e-2},
  {opt = "SGD", lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 1e-3},
  {opt = "Adam", lr = 1e-2},
  {opt = "Adam", lr = 1e-3, decay = 1e-2, weight_decay = 1e-2, clip = 1.0},
  {opt = "Adam", lr = 1e-2, amsgrad = true, beta1 = 0.8, beta2 = 0.99, eps = 1e-6},
  {opt = "AdamW", lr = 1e-2, weight_decay = 0.1},
  {opt = "AdamW", lr = 1e-2, schedule = {kind = "step", every = 2, gamma = 0.5}, steps_per_epoch = 1},
  {opt = "SGD", lr = 0.1, momentum = 0.5, schedule = {kind = "cosine", T = 3}, steps_per_epoch = 2},
  {opt = "Adam", lr = 1e-3, schedule = {kind = "cyclic", max = 1e-2, step_size = 2}},
  {opt = "Adam", lr = 1e-3, schedule = {kind = "cyclic", max = 1e-2, step_size = 1, mode = "triangular2"}},
  {opt = "Adam", lr = 1e-3, decay = 1e-5, eps = 1e-7, eps_mode = "keras"},
}

-- Runs config c with our optimiser from p0 over the rows of grads.
local function run_ours(c, p0, grads)
  local p, g = p0:clone(), core.tensor.zeros(N)
  local o = {}
  for k, v in pairs(c) do if k ~= "opt" and k ~= "steps_per_epoch" then o[k] = v end end
  local opt = optim[c.opt]({params = p, grads = g}, o)
  local lrs = {}
  for k = 1, T do
    g:copy(grads:select(1, k))
    lrs[k] = opt:step()
    if c.steps_per_epoch and k % c.steps_per_epoch == 0 then opt:next_epoch() end
  end
  return p, lrs
end

describe("optim vs torch.optim", function()
  local run = has_torch() and it or pending
  run("SGD, Adam, AdamW (+clip, decay, schedules, keras eps) match within 1e-6", function()
    core.tensor.manual_seed(7)
    local p0, grads = core.tensor.randn(N), core.tensor.randn(T, N)
    local dir = os.tmpname()
    local inp, out = dir .. ".in.safetensors", dir .. ".out.safetensors"
    core.safetensors.save(inp, {"p0", "grads"}, {p0, grads}, {configs = json(configs)})
    local ok = os.execute("/usr/bin/python3 tools/torch_optim_compare.py " .. inp .. " " .. out)
    assert.is_true(ok == true, "comparison script failed")
    local ref = core.safetensors.load(out)
    os.remove(inp); os.remove(out); os.remove(dir)
    local worst = 0
    for i, c in ipairs(configs) do
      local p, lrs = run_ours(c, p0, grads)
      local d = maxdiff(p, ref["p" .. i])
      worst = math.max(worst, d)
      assert.is_true(d <= 1e-6, string.format("config %d (%s): max |ours - torch| = %.3g", i, json(c), d))
      local rl = ref["lr" .. i]:totable()
      for k = 1, T do
        assert.is_true(math.abs(lrs[k] - rl[k]) <= 1e-6 * rl[k] + 1e-12,
          string.format("config %d step %d: lr %.9g vs torch %.9g", i, k, lrs[k], rl[k]))
      end
      -- the update is not trivially zero
      assert.is_true(maxdiff(p, p0) > 1e-4)
    end
    print(string.format("\n  optim vs torch: %d configurations, max |diff| = %.3g", #configs, worst))
  end)
end)

describe("optim", function()
  it("Adam's first step moves each parameter by lr * sign(g)", function()
    local p, g = core.tensor.tensor({1, -2, 3}), core.tensor.tensor({0.5, -4, 1e-3})
    local opt = optim.Adam({params = p, grads = g}, {lr = 0.1, eps = 0})
    opt:step()
    local r = p:totable()
    assert.near(0.9, r[1], 1e-6); assert.near(-1.9, r[2], 1e-6); assert.near(2.9, r[3], 1e-6)
  end)

  it("applies Keras time decay lr / (1 + decay * iterations)", function()
    local p, g = core.tensor.zeros(4), core.tensor.ones(4)
    local opt = optim.SGD({params = p, grads = g}, {lr = 0.5, decay = 0.25})
    assert.near(0.5, opt:get_lr(), 1e-15)
    for k = 0, 4 do
      local lr = opt:step()
      assert.near(0.5 / (1 + 0.25 * k), lr, 1e-15)
      assert.near(lr, opt.last_lr, 0)
    end
    -- SGD without momentum: p = -sum(lr_k)
    local s = 0
    for k = 0, 4 do s = s + 0.5 / (1 + 0.25 * k) end
    assert.near(-s, p:totable()[1], 1e-6)
  end)

  it("step schedule: x0.1 every 5 epochs; set_lr changes the base", function()
    local opt = optim.Adam({params = core.tensor.zeros(2), grads = core.tensor.zeros(2)},
      {lr = 1e-3, schedule = optim.schedules.step{every = 5, gamma = 0.1}})
    local seen = {}
    for e = 0, 11 do opt:set_epoch(e); seen[e] = opt:get_lr() end
    assert.near(1e-3, seen[4], 1e-18); assert.near(1e-4, seen[5], 1e-18)
    assert.near(1e-4, seen[9], 1e-18); assert.near(1e-5, seen[10], 1e-18)
    opt:set_lr(1.0); opt:set_epoch(0)
    assert.equal(1.0, opt:get_lr())
  end)

  it("cosine and cyclic schedules hit their end points", function()
    local c = optim.schedules.cosine{T = 10, eta_min = 0.01}
    assert.near(1.0, c:lr(1.0, 0, 0), 1e-12)
    assert.near(0.505, c:lr(1.0, 5, 0), 1e-12)
    assert.near(0.01, c:lr(1.0, 10, 0), 1e-12)
    assert.near(0.01, c:lr(1.0, 50, 0), 1e-12)
    local y = optim.schedules.cyclic{max = 1.0, step_size = 4}
    assert.near(0.1, y:lr(0.1, 0, 0), 1e-12)
    assert.near(0.55, y:lr(0.1, 0, 2), 1e-12)
    assert.near(1.0, y:lr(0.1, 0, 4), 1e-12)
    assert.near(0.1, y:lr(0.1, 0, 8), 1e-12)
  end)

  it("clips the global gradient norm", function()
    local p, g = core.tensor.zeros(3), core.tensor.tensor({3, 4, 0})
    local opt = optim.SGD({params = p, grads = g}, {lr = 1, clip = 1})
    local _, norm = opt:step()
    assert.near(5, norm, 1e-6)
    local r = p:totable()
    assert.near(-0.6, r[1], 1e-6); assert.near(-0.8, r[2], 1e-6)
    assert.near(1, math.sqrt(core.optim.sumsq(g)), 1e-5)
    -- below the threshold nothing changes
    local g2 = core.tensor.tensor({0.3, 0.4})
    assert.near(0.5, optim.clip_grad_norm(g2, 1), 1e-6)
    assert.same({0.30000001192092896, 0.4000000059604645}, g2:totable())
  end)

  it("works on any module with getParameters()", function()
    local P, G = core.tensor.randn(20), core.tensor.randn(20)
    local calls = 0
    local fake = {getParameters = function() calls = calls + 1; return P, G end}
    local before = P:clone()
    local opt = optim.AdamW(fake, {lr = 1e-2})
    opt:step(); opt:step()
    assert.equal(1, calls)
    assert.is_true(maxdiff(P, before) > 1e-3)
  end)

  it("state() / load_state() continue a run exactly", function()
    for _, kind in ipairs({"SGD", "Adam", "AdamW"}) do
      core.tensor.manual_seed(3)
      local p0, grads = core.tensor.randn(50), core.tensor.randn(6, 50)
      local cfg = kind == "SGD" and {lr = 0.1, momentum = 0.9} or {lr = 1e-2, decay = 1e-3, amsgrad = true}
      -- straight run
      local pa, ga = p0:clone(), core.tensor.zeros(50)
      local a = optim[kind]({params = pa, grads = ga}, cfg)
      for k = 1, 6 do ga:copy(grads:select(1, k)); a:step() end
      -- 3 steps, state, fresh optimiser, load, 3 more
      local pb, gb = p0:clone(), core.tensor.zeros(50)
      local b = optim[kind]({params = pb, grads = gb}, cfg)
      for k = 1, 3 do gb:copy(grads:select(1, k)); b:step() end
      local st = b:state()
      local saved = {}
      for name, t in pairs(st.tensors) do saved[name] = t:clone() end
      st.tensors = saved
      local c = optim[kind]({params = pb, grads = gb}, cfg)
      c:load_state(st)
      assert.equal(3, c.t)
      for k = 4, 6 do gb:copy(grads:select(1, k)); c:step() end
      assert.equal(0, maxdiff(pa, pb), kind)
    end
  end)

  it("rejects bad options and mismatched state with clear errors", function()
    local m = {params = core.tensor.zeros(4), grads = core.tensor.zeros(4)}
    assert.has_error(function() optim.Adam(m, {lr = -1}) end, "optim.Adam: lr must be a number >= 0, got -1")
    assert.has_error(function() optim.Adam(m, {lrr = 1}) end, "optim.Adam: unknown option 'lrr'")
    assert.has_error(function() optim.SGD(m, {nesterov = true}) end,
      "optim.SGD: nesterov needs momentum > 0 and dampening = 0")
    assert.has_error(function() optim.Adam(m, {beta1 = 1}) end, "optim.Adam: beta1 must be in [0, 1), got 1")
    assert.has_error(function() optim.Adam(m, {clip = 0}) end, "optim.Adam: clip must be a positive number, got 0")
    assert.has_error(function() optim.Adam({params = core.tensor.zeros(3), grads = core.tensor.zeros(4)}) end,
      "optim.Adam: 3 parameters but 4 gradients")
    assert.has_error(function() optim.SGD(42) end)
    local a = optim.Adam(m)
    assert.has_error(function() a:load_state({kind = "SGD", t = 1}) end,
      "optim.Adam:load_state: state is for SGD, not Adam")
    assert.has_error(function() a:load_state({kind = "Adam", t = 1, tensors = {exp_avg = core.tensor.zeros(5)}}) end,
      "optim.Adam:load_state: state tensor 'exp_avg' must have 4 elements, got 5")
    assert.has_error(function() core.optim.adam(core.tensor.zeros(4), core.tensor.zeros(3), core.tensor.zeros(4), core.tensor.zeros(4), nil,
      1, 0.1, 0.9, 0.999, 1e-8, 0, false, false) end,
      "optim.Adam:step: argument 'grads' has 3 elements (shape [3]), expected 4")
  end)
end)
