--- spec/gradcheck.lua - finite-difference gradient checks shared by every
-- layer and loss spec.
--
-- The checked function may return a number (a loss), a tensor or a (nested)
-- table of tensors. Tensor outputs are reduced to the scalar
--   L = sum_k w_k * out_k
-- with fixed pseudo-random weights w (the gradOutput handed to `backward`),
-- so every output element takes part. Derivatives are central differences
-- (L(x + eps) - L(x - eps)) / (2 eps) evaluated in double precision on the
-- Lua side; the float32 forward sets the noise floor, hence the defaults
-- eps = 1e-2 and rtol = 1e-2, both settable per call. A coordinate whose
-- one-sided differences disagree strongly sits on a kink (ReLU at 0, a tie
-- in a max) and is skipped; the check fails when more than `max_skipped`
-- (default 10 %) of the coordinates are skipped. Use gradcheck.distinct()
-- to build inputs without ties or zeros. `forward` is evaluated many times:
-- it must be a pure function of the `wrt` tensors (fix random masks with
-- ac.manual_seed inside it; freeze state that a forward updates, such as a
-- loss's confusion history, e.g. with loss:set_confusion). After the check the
-- tensors hold their original values and forward has been run on them.
--
--   local gradcheck = require("gradcheck")
--   gradcheck.assert_module(nn.Linear(3, 2), ac.randn(4, 3))
--   gradcheck.assert{
--     forward = function() return loss:forward(logits, embs, labels) end,
--     backward = function() local gz, ge = loss:backward(); return {gz, ge[1]} end,
--     wrt = {logits, embs[1]},
--     eps = 1e-3, rtol = 2e-2,
--   }
local ac = require("adcorre")

local gradcheck = {}

-- A small deterministic generator (independent of the library's, so that a
-- check does not move the library's random stream).
local function lcg(seed)
  local s = seed or 12345
  return function()
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 2147483648
  end
end

local function flatten_outputs(out, acc)
  acc = acc or {}
  if ac.is_tensor(out) then
    acc[#acc + 1] = out
  elseif type(out) == "table" then
    -- named fields in a fixed order, then the array part
    local keys = {}
    for k in pairs(out) do if type(k) ~= "number" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do flatten_outputs(out[k], acc) end
    for _, v in ipairs(out) do flatten_outputs(v, acc) end
  elseif type(out) ~= "number" then
    error("gradcheck: the function returned a " .. type(out))
  end
  return acc
end

-- gradOutput of the same structure as out, filled from rnd in [-1, 1].
local function make_grad_output(out, rnd)
  if type(out) == "number" then return 1 end
  if ac.is_tensor(out) then
    local g = ac.zeros(table.unpack(out:shape()))
    local f = g:view(-1)
    for i = 1, f:numel() do f[i] = 2 * rnd() - 1 end
    return g
  end
  local g = {}
  for k, v in pairs(out) do g[k] = make_grad_output(v, rnd) end
  return g
end

-- L = sum of out .* w in double.
local function project(out, w)
  if type(out) == "number" then return out end
  local outs, ws = flatten_outputs(out), flatten_outputs(w)
  local s = 0
  for i, t in ipairs(outs) do
    local f = t:contiguous():view(-1)
    local g = ws[i]:view(-1)
    for k = 1, f:numel() do s = s + f[k] * g[k] end
  end
  return s
end

local function deep_clone(g)
  if ac.is_tensor(g) then return g:clone() end
  if type(g) ~= "table" then return g end
  local c = {}
  for k, v in pairs(g) do c[k] = deep_clone(v) end
  return c
end

--- Runs a check and returns ok, report. Arguments (a table):
--   forward()          -> number | tensor | table of tensors, using the current values of `wrt`
--   backward(gradOut)  -> array of analytic gradients, one per tensor of `wrt`
--                         (gradOut is 1 for a number output)
--   wrt                array of float32 tensors (perturbed in place, restored after)
--   names              optional names of the wrt tensors for the report
--   eps (1e-2), rtol (1e-2), atol (1e-3), max_checks (per tensor, default 60),
--   max_skipped (fraction, default 0.1), kink_tol (default 0.2), seed
-- report = {checked =, skipped =, max_err =, worst = "..."}
function gradcheck.check(o)
  local eps = o.eps or 1e-2
  local rtol, atol = o.rtol or 1e-2, o.atol or 1e-3
  local max_checks = o.max_checks or 60
  local kink_tol = o.kink_tol or 0.2
  local rnd = lcg(o.seed)
  local out0 = o.forward()
  local w = make_grad_output(out0, rnd)
  local grads = o.backward(w)
  if type(grads) ~= "table" or #grads ~= #o.wrt then
    error(("gradcheck: backward returned %s gradients for %d tensors"):format(
      type(grads) == "table" and #grads or type(grads), #o.wrt))
  end
  grads = deep_clone(grads) -- later forwards may overwrite module buffers
  local report = { checked = 0, skipped = 0, max_err = 0, worst = "none" }
  local failures = {}
  for ti, t in ipairs(o.wrt) do
    local name = o.names and o.names[ti] or ("wrt[" .. ti .. "]")
    local g = grads[ti]
    if not ac.is_tensor(g) then error(("gradcheck: gradient %d is %s, not a tensor"):format(ti, type(g))) end
    local ts, gs = t:shape(), g:shape()
    if table.concat(ts, "x") ~= table.concat(gs, "x") then
      error(("gradcheck: %s has shape %s, its gradient %s"):format(name, table.concat(ts, "x"), table.concat(gs, "x")))
    end
    if not t:is_contiguous() then error("gradcheck: " .. name .. " must be contiguous") end
    local tf, gf = t:view(-1), g:contiguous():view(-1)
    local n = tf:numel()
    local idx = {}
    if n <= max_checks then
      for i = 1, n do idx[i] = i end
    else
      local seen = {}
      while #idx < max_checks do
        local i = 1 + math.floor(rnd() * n)
        if not seen[i] then
          seen[i] = true
          idx[#idx + 1] = i
        end
      end
    end
    for _, i in ipairs(idx) do
      local x0 = tf[i]
      tf[i] = x0 + eps
      local lp = project(o.forward(), w)
      tf[i] = x0 - eps
      local lm = project(o.forward(), w)
      tf[i] = x0
      local l0 = project(o.forward(), w)
      local num = (lp - lm) / (2 * eps)
      local fwd, bwd = (lp - l0) / eps, (l0 - lm) / eps
      local ana = gf[i]
      local scale = math.max(math.abs(fwd), math.abs(bwd), math.abs(ana), 1e-3)
      if math.abs(fwd - bwd) > kink_tol * scale + 4 * atol then
        report.skipped = report.skipped + 1
      else
        report.checked = report.checked + 1
        local err = math.abs(ana - num)
        local tol = atol + rtol * math.max(math.abs(ana), math.abs(num))
        local rel = err / math.max(tol, 1e-30)
        if rel > report.max_err then
          report.max_err = rel
          report.worst = ("%s[%d]: analytic %.6g, numeric %.6g"):format(name, i, ana, num)
        end
        if err > tol and #failures < 5 then
          failures[#failures + 1] = ("%s[%d]: analytic %.6g, numeric %.6g (|diff| %.3g > tol %.3g)"):format(
            name, i, ana, num, err, tol)
        end
      end
    end
  end
  -- leave the function evaluated at the original point
  o.forward()
  local total = report.checked + report.skipped
  local ok = #failures == 0
  if total > 0 and report.skipped > (o.max_skipped or 0.1) * total then
    ok = false
    failures[#failures + 1] = ("%d of %d coordinates sit on kinks (use distinct inputs)"):format(report.skipped, total)
  end
  report.failures = failures
  return ok, report
end

--- Like check, but raises an error listing the failures.
function gradcheck.assert(o)
  local ok, r = gradcheck.check(o)
  if not ok then
    error("gradient check failed (" .. (o.label or "") .. "):\n  " .. table.concat(r.failures, "\n  ")
      .. ("\n  checked %d, skipped %d"):format(r.checked, r.skipped), 2)
  end
  return r
end

--- Checks a module: gradients with respect to its input (a tensor or a
--- table of tensors) and, unless opts.params == false, its parameters.
--- opts as for check (eps, rtol, ...), plus scale (accGradParameters scale, default 1).
function gradcheck.module(m, input, opts)
  opts = opts or {}
  local inputs = flatten_outputs(input)
  local wrt, names = {}, {}
  if opts.input ~= false then
    for i, t in ipairs(inputs) do
      wrt[#wrt + 1] = t
      names[#names + 1] = "input" .. (#inputs > 1 and i or "")
    end
  end
  local params = {}
  if opts.params ~= false then
    local named = m:namedParameters()
    for _, e in ipairs(named) do
      wrt[#wrt + 1] = e.param
      names[#names + 1] = e.name
      params[#params + 1] = e
    end
  end
  local scale = opts.scale or 1
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.wrt, o.names = wrt, names
  o.forward = function() return m:forward(input) end
  o.backward = function(gradOut)
    m:zeroGradParameters()
    local gi = m:backward(input, gradOut, scale)
    local gs = {}
    if opts.input ~= false then
      local gis = flatten_outputs(gi)
      if #gis ~= #inputs then error("gradcheck: gradInput does not match the input structure") end
      for i = 1, #gis do gs[#gs + 1] = gis[i] end
    end
    for _, e in ipairs(params) do gs[#gs + 1] = e.grad * (1 / scale) end
    return gs
  end
  return gradcheck.check(o)
end

function gradcheck.assert_module(m, input, opts)
  local ok, r = gradcheck.module(m, input, opts)
  if not ok then
    error(("gradient check of %s failed:\n  "):format(tostring(m):match("^[^\n]*"))
      .. table.concat(r.failures, "\n  ") .. ("\n  checked %d, skipped %d"):format(r.checked, r.skipped), 2)
  end
  return r
end

--- A float32 tensor of the given shape whose values are distinct, at least
--- `gap` apart and at least gap/2 away from 0, in random order: inputs on
--- which max / ReLU kinks cannot be crossed by a step smaller than gap/2.
function gradcheck.distinct(shape, gap, seed)
  gap = gap or 0.05
  local rnd = lcg(seed or 7)
  local t = ac.zeros(table.unpack(shape))
  local f = t:view(-1)
  local n = f:numel()
  local perm = {}
  for i = 1, n do perm[i] = i end
  for i = n, 2, -1 do
    local j = 1 + math.floor(rnd() * i)
    perm[i], perm[j] = perm[j], perm[i]
  end
  for i = 1, n do f[i] = (perm[i] - (n + 1) / 2 + (perm[i] > n / 2 and 0.5 or -0.5)) * gap end
  return t
end

return gradcheck
