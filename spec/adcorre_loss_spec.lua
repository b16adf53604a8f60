-- spec/adcorre_loss_spec.lua - the Ad-Corre loss: values and gradients against
-- the float64 PyTorch autograd reference (tools/torch_adcorre_reference.py ->
-- spec/fixtures/adcorre), finite-difference checks of every part, the
-- confusion history, edge cases (one class, B = 1, k = 1, constant rows,
-- absent classes) and bad input.
local ac = require("adcorre")

local FIX = "spec/fixtures/adcorre/"
local VERBOSE = os.getenv("ADCORRE_VERBOSE")

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

-- Minimal .npy reader (little-endian f4 / i8, C order) so the comparison
-- depends on nothing but the loss itself.
local function read_npy(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  assert(data:sub(1, 6) == "\147NUMPY", path .. ": not an npy file")
  local major = data:byte(7)
  local hlen, pos
  if major == 1 then hlen, pos = string.unpack("<I2", data, 9)
  else hlen, pos = string.unpack("<I4", data, 9) end
  local header = data:sub(pos, pos + hlen - 1)
  local descr = header:match("'descr':%s*'([^']+)'")
  assert(not header:match("'fortran_order':%s*True"), path .. ": fortran order")
  local shape = {}
  for n in header:match("'shape':%s*%(([^%)]*)%)"):gmatch("%d+") do shape[#shape + 1] = tonumber(n) end
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local kinds = { ["<f4"] = { "<f", 4, "float32" }, ["<i8"] = { "<i8", 8, "int64" } }
  assert(kinds[descr], path .. ": unsupported dtype " .. tostring(descr))
  local fmt, size, dtype = table.unpack(kinds[descr])
  local flat, p = {}, pos + hlen
  for i = 1, n do
    flat[i] = string.unpack(fmt, data, p)
    p = p + size
  end
  return ac.tensor(flat, dtype):view(table.unpack(shape))
end

-- asserts that fn raises an error whose message contains the plain text `text`
local function error_like(fn, text)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing: " .. text)
  assert.is_truthy(tostring(err):find(text, 1, true), "error was: " .. tostring(err))
end

local function maxabs(t) return t:abs():max() end

-- max|a - b| / max|b| (0 when both are 0)
local function relerr(a, b)
  local den = maxabs(b)
  local num = maxabs(a - b)
  if den == 0 then return num end
  return num / den
end

local function scalar_rel(a, b)
  if b == 0 then return math.abs(a) end
  return math.abs(a - b) / math.abs(b)
end

local function all_finite(t)
  local v = t:contiguous():view(-1)
  for i = 1, #v do
    local x = v[i]
    if x ~= x or x == math.huge or x == -math.huge then return false end
  end
  return true
end

local function randn_rows(B, d, normalise)
  local t = ac.randn(B, d)
  if normalise then
    for b = 1, B do
      local row = t[b]
      row:div_(row:norm())
    end
  end
  return t
end

local function embeddings(k, B, d, normalise)
  local E = {}
  for j = 1, k do E[j] = randn_rows(B, d, normalise) end
  return E
end

local function total_of(loss, Z, E, y)
  local total = loss:forward(Z, E, y)
  return total
end

-- Central-difference check of d total / d x for every element of x (a tensor
-- that is one of the inputs), against the analytic gradient g.
local function fd_check(loss, Z, E, y, x, g, h, atol, rtol)
  local flat = x:view(-1)
  local gflat = g:contiguous():view(-1)
  local worst, worst_i = 0, 0
  for i = 1, #flat do
    local x0 = flat[i]
    flat[i] = x0 + h
    local lp = total_of(loss, Z, E, y)
    flat[i] = x0 - h
    local lm = total_of(loss, Z, E, y)
    flat[i] = x0
    local num = (lp - lm) / (2 * h)
    local ana = gflat[i]
    local excess = math.abs(num - ana) - (atol + rtol * math.abs(num))
    if excess > worst then worst, worst_i = excess, i end
  end
  return worst, worst_i
end

local function check_grads(loss, Z, E, y, h, atol, rtol)
  loss:forward(Z, E, y)
  local gZ, gE = loss:backward()
  gZ = gZ:clone()
  local gEc = {}
  for j = 1, #gE do gEc[j] = gE[j]:clone() end
  local w, i = fd_check(loss, Z, E, y, Z, gZ, h, atol, rtol)
  assert.are.equal(0, w, "logits gradient off at element " .. i)
  for j = 1, #E do
    w, i = fd_check(loss, Z, E, y, E[j], gEc[j], h, atol, rtol)
    assert.are.equal(0, w, ("embeddings[%d] gradient off at element %d"):format(j, i))
  end
  return gZ, gEc
end

---------------------------------------------------------------------------
-- against PyTorch
---------------------------------------------------------------------------

describe("AdCorreLoss vs PyTorch autograd (float64)", function()
  local cases = dofile(FIX .. "cases.lua")
  local inputs = {}
  local function load_inputs(prefix)
    if not inputs[prefix] then
      local Efull = read_npy(FIX .. prefix .. "_emb.npy")
      local E = {}
      for j = 1, Efull:size(1) do E[j] = Efull[j]:contiguous() end
      inputs[prefix] = {
        Z = read_npy(FIX .. prefix .. "_logits.npy"),
        E = E,
        y = read_npy(FIX .. prefix .. "_labels.npy"),
        M = read_npy(FIX .. prefix .. "_M.npy"),
      }
    end
    return inputs[prefix]
  end

  it("has at least five cases, one with B=50, k=10, d=256", function()
    assert.is_true(#cases >= 5)
    local big = false
    for _, c in ipairs(cases) do
      if c.B == 50 and c.k == 10 and c.d == 256 then big = true end
    end
    assert.is_true(big)
  end)

  -- the backward's row kernel has an AVX-512 and a portable version
  local core = require("adcorre.core")
  after_each(function() require("adcorre.testing").isa_limit(nil) end)
  for _, isa in ipairs({ "native", "generic" }) do
  for _, case in ipairs(cases) do
    it(("matches case %s (B=%d C=%d k=%d d=%d) within 1e-5 (%s)"):format(case.name, case.B, case.C, case.k, case.d, isa), function()
      require("adcorre.testing").isa_limit(isa == "generic" and "generic" or nil)
      local inp = load_inputs(case.inputs)
      local loss = ac.AdCorreLoss(case.options)
      loss:set_confusion(inp.M)
      local total, parts = loss:forward(inp.Z, inp.E, inp.y)
      local gZ, gE = loss:backward()
      local worst = scalar_rel(total, case.parts.total)
      for _, key in ipairs({ "ce", "fd", "md", "ed" }) do
        local e = scalar_rel(parts[key], case.parts[key])
        assert.is_true(e <= 1e-5, ("%s: %.17g vs torch %.17g"):format(key, parts[key], case.parts[key]))
        worst = math.max(worst, e)
        local en = scalar_rel(parts.grad_norm[key], case.grad_norm[key])
        assert.is_true(en <= 1e-5, ("grad norm %s: %.17g vs torch %.17g"):format(key, parts.grad_norm[key], case.grad_norm[key]))
      end
      assert.is_true(scalar_rel(total, case.parts.total) <= 1e-5)
      local tZ = read_npy(FIX .. case.grads .. "_grad_logits.npy")
      local tE = read_npy(FIX .. case.grads .. "_grad_emb.npy")
      local eZ = relerr(gZ, tZ)
      assert.is_true(eZ <= 1e-5, "gradLogits rel err " .. eZ)
      local eE = 0
      for j = 1, case.k do
        local e = relerr(gE[j], tE[j])
        assert.is_true(e <= 1e-5, ("gradEmbeddings[%d] rel err %g"):format(j, e))
        eE = math.max(eE, e)
      end
      if VERBOSE then
        io.stderr:write(("\n%-28s %-7s values %.2e  gradLogits %.2e  gradEmbeddings %.2e"):format(case.name, isa, worst, eZ, eE))
      end
    end)
  end
  end
end)

---------------------------------------------------------------------------
-- finite differences
---------------------------------------------------------------------------

describe("AdCorreLoss finite-difference gradients", function()
  local B, C, k, d = 7, 4, 3, 6
  local y = { 1, 2, 2, 4, 1, 1, 4 } -- class 3 absent
  local M = ac.tensor({ { 0.7, 0.1, 0.1, 0.1 }, { 0.2, 0.5, 0.2, 0.1 }, { 0, 0, 0, 0 }, { 0.1, 0.1, 0.1, 0.7 } })
  local h, atol, rtol = 1e-3, 3e-5, 2e-3

  local function setup(seed)
    ac.manual_seed(seed)
    return ac.randn(B, C), embeddings(k, B, d, false)
  end

  local variants = {
    { "CE only", { fd = false, md = false, ed = false } },
    { "FD adaptive only", { md = false, ed = false, lambda = 0 } },
    { "FD plain only", { md = false, ed = false, lambda = 0, adaptive = false } },
    { "MD present only", { fd = false, ed = false, lambda = 0 } },
    { "MD reference only", { fd = false, ed = false, lambda = 0, md_mode = "reference" } },
    { "ED only", { fd = false, md = false, lambda = 0 } },
    { "total, defaults", {} },
    { "total, reference", { reference = true } },
  }
  for vi, v in ipairs(variants) do
    it("checks " .. v[1], function()
      local Z, E = setup(100 + vi)
      local opts = { classes = C }
      for key, val in pairs(v[2]) do opts[key] = val end
      local loss = ac.AdCorreLoss(opts):evaluate()
      loss:set_confusion(M)
      check_grads(loss, Z, E, y, h, atol, rtol)
    end)
  end

  it("checks the adaptive weights coming from the history (not pinned)", function()
    local Z, E = setup(7)
    local loss = ac.AdCorreLoss{ classes = C, md = false, ed = false }
    -- fill the history with some predictions, then freeze it
    loss:record(ac.tensor({ 1, 1, 2, 2, 4, 4, 3 }, "int64"), ac.tensor({ 1, 2, 2, 2, 4, 1, 3 }, "int64"))
    loss:evaluate()
    check_grads(loss, Z, E, y, h, atol, rtol)
  end)

  it("passes the shared gradcheck helper on the total (all parts, adaptive, absent class)", function()
    local gradcheck = require("gradcheck")
    local Z, E = setup(31)
    local loss = ac.AdCorreLoss{ classes = C }:evaluate()
    loss:set_confusion(M)
    gradcheck.assert{
      label = "AdCorreLoss total",
      forward = function() return (loss:forward(Z, E, y)) end,
      backward = function()
        local gz, ge = loss:backward()
        return { gz, ge[1], ge[2], ge[3] }
      end,
      wrt = { Z, E[1], E[2], E[3] },
      names = { "logits", "embeddings[1]", "embeddings[2]", "embeddings[3]" },
      eps = 1e-3, rtol = 1e-2, atol = 1e-5, max_checks = 200,
    }
  end)

  it("checks a batch of one class and a constant-ish row", function()
    local Z, E = setup(9)
    E[2][3]:fill(0.3)
    E[2][3][1] = 0.31 -- almost constant: |c|^2 = 8e-5, well above eps
    local loss = ac.AdCorreLoss{ classes = C }:evaluate()
    loss:set_confusion(M)
    check_grads(loss, Z, E, { 2, 2, 2, 2, 2, 2, 2 }, 1e-4, 1e-4, 5e-3)
  end)
end)

---------------------------------------------------------------------------
-- history and adaptive weights
---------------------------------------------------------------------------

describe("AdCorreLoss confusion history", function()
  it("records argmax vs label in training mode only, row-normalised", function()
    local loss = ac.AdCorreLoss{ classes = 3 }
    local Z = ac.tensor({ { 5, 0, 0 }, { 0, 5, 0 }, { 5, 0, 0 }, { 0, 0, 5 } })
    local E = { ac.randn(4, 5) }
    loss:forward(Z, E, { 1, 2, 2, 3 })
    assert.are.same({ { 1, 0, 0 }, { 0.5, 0.5, 0 }, { 0, 0, 1 } }, loss:confusion():totable())
    loss:evaluate()
    loss:forward(Z, E, { 3, 3, 3, 3 })
    assert.are.same({ { 1, 0, 0 }, { 0.5, 0.5, 0 }, { 0, 0, 1 } }, loss:confusion():totable())
    assert.are.equal(4, (loss:history()))
    loss:training()
    loss:forward(Z, E, { 3, 3, 3, 3 })
    assert.are.equal(8, (loss:history()))
  end)

  it("keeps only the last `history` predictions", function()
    local loss = ac.AdCorreLoss{ classes = 2, history = 3 }
    local E = { ac.randn(2, 4) }
    loss:forward(ac.tensor({ { 1, 0 }, { 1, 0 } }), E, { 1, 1 }) -- (1,1) (1,1)
    loss:forward(ac.tensor({ { 0, 1 }, { 0, 1 } }), E, { 1, 2 }) -- (1,2) (2,2); first (1,1) evicted
    local recorded, cap = loss:history()
    assert.are.equal(3, recorded)
    assert.are.equal(3, cap)
    assert.are.same({ { 0.5, 0.5 }, { 0, 1 } }, loss:confusion():totable())
  end)

  it("a class never seen has diagonal 0; an empty history gives W = 3 off the diagonal", function()
    ac.manual_seed(3)
    local Z, E = ac.randn(6, 4), embeddings(2, 6, 8, true)
    local y = { 1, 2, 3, 1, 2, 3 }
    local adaptive = ac.AdCorreLoss{ classes = 4, md = false, ed = false }:evaluate()
    local plain = ac.AdCorreLoss{ classes = 4, md = false, ed = false, adaptive = false }
    local _, pa = adaptive:forward(Z, E, y)
    local _, pp = plain:forward(Z, E, y)
    assert.is_true(math.abs(pa.fd - 3 * pp.fd) < 1e-6 * pa.fd)
    -- a perfect history makes every M[c,c] = 1, i.e. W = 1
    adaptive:record(ac.tensor({ 1, 2, 3 }, "int64"), ac.tensor({ 1, 2, 3 }, "int64"))
    local _, pb = adaptive:forward(Z, E, y)
    assert.is_true(math.abs(pb.fd - pp.fd) < 1e-6 * pp.fd)
  end)

  it("uses the history before the current batch (the next step's weights)", function()
    ac.manual_seed(4)
    local E = embeddings(2, 4, 8, true)
    local y = { 1, 2, 1, 2 }
    local wrong = ac.tensor({ { 0, 9 }, { 9, 0 }, { 0, 9 }, { 9, 0 } }) -- all wrong
    local loss = ac.AdCorreLoss{ classes = 2, md = false, ed = false }
    local plain = ac.AdCorreLoss{ classes = 2, md = false, ed = false, adaptive = false }
    local _, p0 = plain:forward(wrong, E, y)
    local _, p1 = loss:forward(wrong, E, y) -- empty history: W = 3
    assert.is_true(math.abs(p1.fd - 3 * p0.fd) < 1e-6 * p0.fd)
    local _, p2 = loss:forward(wrong, E, y) -- history all wrong: M diag 0, still W = 3
    assert.is_true(math.abs(p2.fd - 3 * p0.fd) < 1e-6 * p0.fd)
    local right = ac.tensor({ { 9, 0 }, { 0, 9 }, { 9, 0 }, { 0, 9 } })
    loss:clear_history()
    loss:forward(right, E, y) -- records all right; weights still from the empty history
    local _, p3 = loss:forward(right, E, y)
    assert.is_true(math.abs(p3.fd - p0.fd) < 1e-6 * p0.fd)
  end)

  it("set_confusion pins M (tensor or nested table); nil unpins", function()
    local loss = ac.AdCorreLoss{ classes = 2 }
    loss:set_confusion({ { 0.25, 0.75 }, { 0, 1 } })
    assert.are.same({ { 0.25, 0.75 }, { 0, 1 } }, loss:confusion():totable())
    loss:forward(ac.tensor({ { 1, 0 } }), { ac.randn(1, 3) }, { 2 })
    assert.are.same({ { 0.25, 0.75 }, { 0, 1 } }, loss:confusion():totable())
    local _, _, pinned = loss:history()
    assert.is_true(pinned)
    loss:set_confusion(nil)
    assert.are.same({ { 0, 0 }, { 1, 0 } }, loss:confusion():totable())
    assert.has_error(function() loss:set_confusion(ac.zeros(3, 3)) end,
      "AdCorreLoss:set_confusion: M must be [2, 2], got [3, 3]")
    assert.has_error(function() loss:set_confusion(ac.tensor({ { 0 / 0, 0 }, { 0, 1 } })) end,
      "AdCorreLoss:set_confusion: M has a non-finite value at (1, 1)")
  end)
end)

---------------------------------------------------------------------------
-- edge cases
---------------------------------------------------------------------------

describe("AdCorreLoss edge cases", function()
  local function finite_everything(loss, Z, E, y)
    local total, parts = loss:forward(Z, E, y)
    local gZ, gE = loss:backward()
    assert.is_true(total == total and math.abs(total) < math.huge)
    for _, key in ipairs({ "ce", "fd", "md", "ed" }) do
      assert.is_true(parts[key] == parts[key] and math.abs(parts[key]) < math.huge, key)
    end
    assert.is_true(all_finite(gZ))
    for j = 1, #gE do assert.is_true(all_finite(gE[j])) end
    return total, parts, gZ, gE
  end

  it("one class in the batch: MD (present) = 0 with zero gradient; FD has only +1 targets", function()
    ac.manual_seed(11)
    local E = embeddings(3, 5, 8, true)
    local loss = ac.AdCorreLoss{ classes = 7, ed = false, fd = false, lambda = 0 }
    local total, parts, _, gE = finite_everything(loss, ac.randn(5, 7), E, { 4, 4, 4, 4, 4 })
    assert.are.equal(0, parts.md)
    assert.are.equal(0, total)
    assert.are.equal(0, parts.grad_norm.md)
    for j = 1, 3 do assert.are.equal(0, maxabs(gE[j])) end
    -- FD: all pairs same class, so FD = mean W (1 - Phi)
    local fdl = ac.AdCorreLoss{ classes = 7, md = false, ed = false, adaptive = false, lambda = 0 }
    local _, p = finite_everything(fdl, ac.randn(5, 7), E, { 4, 4, 4, 4, 4 })
    local want = 0
    for j = 1, 3 do
      local R = ac.AdCorreLoss.corrcoef(E[j])
      for a = 1, 5 do for b = 1, 5 do if a ~= b then want = want + (1 - R[a][b]) end end end
    end
    want = want / (3 * 25)
    assert.is_true(math.abs(p.fd - want) < 1e-6)
    -- reference MD with one class present: absent classes share the global mean
    local ref = ac.AdCorreLoss{ classes = 3, md_mode = "reference" }
    local _, pr = finite_everything(ref, ac.randn(5, 3), E, { 2, 2, 2, 2, 2 })
    assert.is_true(pr.md > 0)
  end)

  it("B = 1: FD = 0, MD = 0, CE = logsumexp - z_y, everything finite", function()
    ac.manual_seed(12)
    local Z = ac.randn(1, 5)
    local E = embeddings(4, 1, 16, true)
    local loss = ac.AdCorreLoss{ classes = 5 }
    local _, parts, gZ = finite_everything(loss, Z, E, { 3 })
    assert.are.equal(0, parts.fd)
    assert.are.equal(0, parts.md)
    assert.is_true(parts.ed > 0)
    local z = Z[1]
    local s = 0
    for c = 1, 5 do s = s + math.exp(z[c]) end
    assert.is_true(math.abs(parts.ce - (math.log(s) - z[3])) < 1e-6)
    -- gradLogits = lambda * (softmax - onehot)
    for c = 1, 5 do
      local want = (50 / 5) * (math.exp(z[c]) / s - (c == 3 and 1 or 0))
      assert.is_true(math.abs(gZ[1][c] - want) < 1e-5)
    end
  end)

  it("k = 1: ED = 0 with zero gradient", function()
    ac.manual_seed(13)
    local loss = ac.AdCorreLoss{ classes = 3, fd = false, md = false, lambda = 0 }
    local total, parts, _, gE = finite_everything(loss, ac.randn(6, 3), embeddings(1, 6, 10, false), { 1, 2, 3, 1, 2, 3 })
    assert.are.equal(0, parts.ed)
    assert.are.equal(0, total)
    assert.are.equal(0, maxabs(gE[1]))
  end)

  it("constant rows: correlation 0, finite values and gradients", function()
    local X = ac.tensor({ { 1, 2, 3, 4 }, { 2, 2, 2, 2 }, { 4, 3, 2, 1 } })
    local R = ac.AdCorreLoss.corrcoef(X)
    assert.is_true(math.abs(R[1][3] + 1) < 1e-6)
    assert.is_true(math.abs(R[1][1] - 1) < 1e-6)
    for j = 1, 3 do
      assert.are.equal(0, R[2][j])
      assert.are.equal(0, R[j][2])
    end
    ac.manual_seed(14)
    local E = embeddings(3, 6, 8, false)
    E[1][2]:fill(0.5)
    E[3]:fill(-1) -- a whole embedding constant
    local loss = ac.AdCorreLoss{ classes = 3, reference = false }
    finite_everything(loss, ac.randn(6, 3), E, { 1, 2, 3, 1, 2, 2 })
    local ref = ac.AdCorreLoss{ classes = 3, reference = true }
    finite_everything(ref, ac.randn(6, 3), E, { 1, 1, 1, 1, 1, 1 })
    -- all embeddings zero: every correlation is 0
    local Z0 = { ac.zeros(4, 5), ac.zeros(4, 5) }
    local l0 = ac.AdCorreLoss{ classes = 2, adaptive = false, lambda = 0 }
    local total, parts = finite_everything(l0, ac.zeros(4, 2), Z0, { 1, 2, 1, 2 })
    assert.is_true(math.abs(parts.fd - 12 / 16) < 1e-12) -- 12 off-diagonal pairs, W = 1, Phi = 0
    assert.is_true(math.abs(parts.md - 2 / 4) < 1e-12) -- C' = 2: 2 off-diagonal entries of 1
    assert.is_true(math.abs(parts.ed - 2 / 4) < 1e-12)
    assert.is_true(math.abs(total - (12 / 16 + 1)) < 1e-12)
  end)

  it("absent classes: MD (present) depends only on the classes in the batch", function()
    ac.manual_seed(15)
    local E = embeddings(2, 6, 12, true)
    local a = ac.AdCorreLoss{ classes = 8, fd = false, ed = false }
    local b = ac.AdCorreLoss{ classes = 3, fd = false, ed = false }
    local _, pa = a:forward(ac.randn(6, 8), E, { 2, 5, 8, 2, 5, 8 })
    a:backward()
    local ga = a.gradEmbeddings[1]:clone()
    local _, pb = b:forward(ac.randn(6, 3), E, { 1, 2, 3, 1, 2, 3 })
    b:backward()
    assert.is_true(math.abs(pa.md - pb.md) < 1e-12)
    assert.is_true(relerr(ga, b.gradEmbeddings[1]) < 1e-6)
  end)

  it("reference = true reports CE over B*C with lambda 50 (same total weight)", function()
    ac.manual_seed(16)
    local Z, E = ac.randn(5, 7), embeddings(2, 5, 6, true)
    local y = { 1, 2, 3, 4, 5 }
    local d = ac.AdCorreLoss{ classes = 7, adaptive = false, md_mode = "reference" }
    local r = ac.AdCorreLoss{ classes = 7, reference = true }
    assert.are.equal(50, r.config.lambda)
    assert.is_false(r.config.adaptive)
    assert.are.equal("reference", r.config.md_mode)
    local td, pd = d:forward(Z, E, y)
    local tr, pr = r:forward(Z, E, y)
    assert.is_true(math.abs(pr.ce * 7 - pd.ce) < 1e-12)
    assert.is_true(math.abs(tr - td) < 1e-9)
    local gd = d:backward():clone()
    assert.is_true(relerr(r:backward(), gd) < 1e-6)
  end)

  it("reuses its gradient buffers and reports the norm of each part's gradient", function()
    ac.manual_seed(17)
    local Z, E = ac.randn(8, 4), embeddings(3, 8, 6, true)
    local y = { 1, 2, 3, 4, 1, 2, 3, 4 }
    local loss = ac.AdCorreLoss{ classes = 4 }
    loss:forward(Z, E, y)
    local gZ1, gE1 = loss:backward()
    local e11 = gE1[1]
    loss:forward(Z, E, y)
    local gZ2, gE2 = loss:backward()
    assert.is_true(rawequal(gZ1, gZ2) and rawequal(gE1, gE2) and rawequal(e11, gE2[1]))
    assert.is_true(math.abs(loss.stats.grad_norm.ce - gZ2:norm()) < 1e-5 * gZ2:norm())
    -- FD only: the norm of the embeddings' gradient is grad_norm.fd
    local fdl = ac.AdCorreLoss{ classes = 4, md = false, ed = false }
    local _, parts = fdl:forward(Z, E, y)
    local _, g = fdl:backward()
    local sq = 0
    for j = 1, 3 do sq = sq + g[j]:norm() ^ 2 end
    assert.is_true(math.abs(parts.grad_norm.fd - math.sqrt(sq)) < 1e-5 * math.sqrt(sq))
    assert.are.equal(0, parts.grad_norm.md)
    -- a different batch size gets new buffers of the right shape
    loss:forward(ac.randn(3, 4), embeddings(3, 3, 6, true), { 1, 2, 3 })
    local gZ3, gE3 = loss:backward()
    assert.are.same({ 3, 4 }, gZ3:shape())
    assert.are.same({ 3, 6 }, gE3[3]:shape())
  end)

  it("gives the same result on 1 and 2 threads", function()
    ac.manual_seed(19)
    local B, k, d = 40, 6, 96
    local Z, E = ac.randn(B, 7), embeddings(k, B, d, true)
    local y = {}
    for b = 1, B do y[b] = (b * 5) % 6 + 1 end
    local saved = ac.get_num_threads()
    local res = {}
    for _, n in ipairs({ 1, 2 }) do
      ac.set_num_threads(n)
      local loss = ac.AdCorreLoss{ classes = 7 }:evaluate()
      local total, parts = loss:forward(Z, E, y)
      local gZ, gE = loss:backward()
      local g = {}
      for j = 1, k do g[j] = gE[j]:clone() end
      res[n] = { total = total, parts = parts, gZ = gZ:clone(), gE = g }
    end
    ac.set_num_threads(saved)
    assert.is_true(math.abs(res[1].total - res[2].total) <= 1e-12 * math.abs(res[1].total))
    assert.is_true(relerr(res[2].gZ, res[1].gZ) == 0)
    for j = 1, k do assert.is_true(relerr(res[2].gE[j], res[1].gE[j]) <= 1e-6) end
  end)

  it("accepts labels as int64, uint8, integral float32 tensors and Lua arrays", function()
    ac.manual_seed(18)
    local Z, E = ac.randn(3, 3), embeddings(2, 3, 4, true)
    local loss = ac.AdCorreLoss{ classes = 3 }:evaluate()
    local t1 = loss:forward(Z, E, { 1, 3, 2 })
    assert.are.equal(t1, (loss:forward(Z, E, ac.tensor({ 1, 3, 2 }, "int64"))))
    assert.are.equal(t1, (loss:forward(Z, E, ac.tensor({ 1, 3, 2 }, "uint8"))))
    assert.are.equal(t1, (loss:forward(Z, E, ac.tensor({ 1, 3, 2 }))))
    assert.are.equal(t1, (loss:forward(Z, E, ac.tensor({ { 1 }, { 3 }, { 2 } }, "int64"))))
    -- non-contiguous inputs give the same result
    local Zt = Z:t():contiguous():t()
    assert.are.equal(t1, (loss:forward(Zt, E, { 1, 3, 2 })))
  end)
end)

---------------------------------------------------------------------------
-- bad input
---------------------------------------------------------------------------

describe("AdCorreLoss bad input", function()
  local loss = ac.AdCorreLoss{ classes = 3 }
  local Z = ac.randn(4, 3)
  local E = { ac.randn(4, 5), ac.randn(4, 5) }

  it("names the bad label and its position", function()
    assert.has_error(function() loss:forward(Z, E, { 1, 2, 4, 1 }) end,
      "AdCorreLoss:forward: label 4 at position 3 is outside 1..3")
    assert.has_error(function() loss:forward(Z, E, ac.tensor({ 1, 0, 2, 1 }, "int64")) end,
      "AdCorreLoss:forward: label 0 at position 2 is outside 1..3")
    assert.has_error(function() loss:forward(Z, E, ac.tensor({ 1, 2, 2.5, 1 })) end,
      "AdCorreLoss:forward: label 2.5 at position 3 is not an integer")
    assert.has_error(function() loss:forward(Z, E, { 1, 2, "x", 1 }) end,
      "AdCorreLoss:forward: label at position 3 must be an integer, got string ")
    assert.has_error(function() loss:forward(Z, E, { 1, 2, 3 }) end,
      "AdCorreLoss:forward: labels has 3 entries, logits has 4 rows")
    assert.has_error(function() loss:forward(Z, E, ac.tensor({ 1, 2 }, "int64")) end,
      "AdCorreLoss:forward: labels must be a tensor [4] (one per sample), got [2]")
    assert.has_error(function() loss:forward(Z, E, nil) end,
      "AdCorreLoss:forward: labels must be an integer tensor or a Lua array, got nil")
  end)

  it("checks logits and embeddings shapes, dtypes and values", function()
    assert.has_error(function() loss:forward(ac.randn(4, 5), E, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: logits must be [B, 3], got [4, 5]")
    assert.has_error(function() loss:forward(Z, { ac.randn(4, 5), ac.randn(3, 5) }, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: embeddings[2] must be [4, d] (one row per logits row), got [3, 5]")
    assert.has_error(function() loss:forward(Z, { ac.randn(4, 5), ac.randn(4, 6) }, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: embeddings[2] is [4, 6] but embeddings[1] has width 5")
    assert.has_error(function() loss:forward(Z, { ac.zeros(4, 5, "int64") }, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: embeddings[1] must be a float32 tensor, got int64")
    assert.has_error(function() loss:forward(Z, {}, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: embeddings is empty (need at least one [B, d] tensor)")
    assert.has_error(function() loss:forward(Z, ac.randn(4, 5), { 1, 1, 1, 1 }) end)
    local bad = ac.randn(4, 5)
    bad[2][4] = 0 / 0
    error_like(function() loss:forward(Z, { E[1], bad }, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: embeddings[2] has a non-finite value")
    error_like(function() loss:forward(Z, { E[1], bad }, { 1, 1, 1, 1 }) end, "nan) at row 2, column 4")
    local zi = Z:clone()
    zi[3][1] = math.huge
    assert.has_error(function() loss:forward(zi, E, { 1, 1, 1, 1 }) end,
      "AdCorreLoss:forward: logits has a non-finite value (inf) at row 3, column 1")
  end)

  it("checks options and call order", function()
    assert.has_error(function() ac.AdCorreLoss{} end, "AdCorreLoss: option 'classes' is required")
    assert.has_error(function() ac.AdCorreLoss{ classes = 7, lamda = 3 } end, "AdCorreLoss: unknown option 'lamda'")
    assert.has_error(function() ac.AdCorreLoss{ classes = 0 } end)
    assert.has_error(function() ac.AdCorreLoss{ classes = 7, md_mode = "all" } end)
    assert.has_error(function() ac.AdCorreLoss{ classes = 7, eps = 0 } end)
    assert.has_error(function() ac.AdCorreLoss{ classes = 7, history = -1 } end)
    assert.has_error(function() ac.AdCorreLoss{ classes = 7, fd = "yes" } end)
    assert.has_error(function() ac.AdCorreLoss{ classes = 7 }:backward() end,
      "AdCorreLoss:backward: call forward first")
  end)
end)
