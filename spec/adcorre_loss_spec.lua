-- spec/adcorre_loss_spec.lua - the Ad-Corre loss: values and gradients against
-- the float64 PyTorch autograd reference (tools/torch_adcorre_reference.py ->
-- spec/fixtures/adcorre), finite-difference checks of every part and the
-- confusion history; edge cases and bad input are in
-- spec/adcorre_loss_edge_spec.lua.
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
local util = require("loss_util")
local maxabs, relerr = util.maxabs, util.relerr
local randn_rows, embeddings = util.randn_rows, util.embeddings

local function scalar_rel(a, b)
  if b == 0 then return math.abs(a) end
  return math.abs(a - b) / math.abs(b)
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
  for _, isa in ipairs({ "native", "avx2", "generic" }) do
  for _, case in ipairs(cases) do
    it(("matches case %s (B=%d C=%d k=%d d=%d) within 1e-5 (%s)"):format(case.name, case.B, case.C, case.k, case.d, isa), function()
      require("adcorre.testing").isa_limit(isa ~= "native" and isa or nil)
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
