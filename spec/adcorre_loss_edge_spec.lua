-- spec/adcorre_loss_edge_spec.lua - the Ad-Corre loss at its edges (one
-- class, B = 1, k = 1, constant rows, absent classes) and on bad input;
-- values and gradients against PyTorch: spec/adcorre_loss_spec.lua.
local ac = require("adcorre")
local util = require("loss_util")
local error_like, maxabs, relerr, all_finite = util.error_like, util.maxabs, util.relerr, util.all_finite
local embeddings = util.embeddings

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
