-- Data-parallel training under MPI (adcorre.distributed). Run on 2 ranks by
-- `make test-mpi` (tools/mpi_busted.sh): every rank takes part of a fixed
-- batch and compares what the collectives give with what one process
-- computes on the whole batch (each rank computes that reference itself).
-- Collectives come before the assertions of each test, so that a failing
-- assertion on one rank cannot leave the other waiting.
local ac = require("adcorre")
local dist = require("adcorre.distributed")
local rank, size = dist.init()

-- rows of this rank when B rows are split unevenly: rank r gets B0 + r rows
local function split(B)
  local base = (B - size * (size - 1) // 2) // size
  local off = 0
  for r = 0, rank - 1 do off = off + base + r end
  local n = base + rank
  if rank == size - 1 then n = B - off end
  return off, n
end

local function rel(a, b)
  local d = (a - b):norm()
  local n = b:norm()
  return n > 0 and d / n or d
end

local function max_over_ranks(x) return dist.allreduce_number(x, "max") end

describe("adcorre.distributed collectives", function()
  it("rank and size", function()
    assert.are.equal(2, size)
    assert.is_true(rank == 0 or rank == 1)
    assert.is_true(dist.initialized())
  end)

  it("allreduce sum, mean, max, min in place", function()
    local s = ac.tensor({ 1, 2, 3 }) * (rank + 1)
    local m, mx, mn = s:clone(), s:clone(), s:clone()
    dist.allreduce(s, "sum"); dist.allreduce(m, "mean"); dist.allreduce(mx, "max"); dist.allreduce(mn, "min")
    local i = ac.tensor({ rank + 1, 10 }, "int64")
    dist.allreduce(i)
    assert.are.same({ 3, 6, 9 }, s:totable())
    assert.are.same({ 1.5, 3, 4.5 }, m:totable())
    assert.are.same({ 2, 4, 6 }, mx:totable())
    assert.are.same({ 1, 2, 3 }, mn:totable())
    assert.are.same({ 3, 20 }, i:totable())
  end)

  it("allgather along dimension 1 with different row counts", function()
    local t = ac.ones(rank + 1, 3) * (rank + 1)
    local g, rows = dist.allgather(t)
    assert.are.same({ 3, 3 }, g:shape())
    assert.are.same({ 1, 2 }, rows)
    assert.are.same({ { 1, 1, 1 }, { 2, 2, 2 }, { 2, 2, 2 } }, g:totable())
  end)

  it("broadcast from a root, barrier", function()
    local t = ac.tensor({ rank, rank })
    dist.broadcast(t, 1)
    dist.barrier()
    assert.are.same({ 1, 1 }, t:totable())
  end)

  it("errors name the problem and do not hang", function()
    local ok1, e1 = pcall(dist.allreduce, ac.zeros(4, 4):t(), "sum")
    local ok2, e2 = pcall(dist.broadcast, ac.zeros(2), 5)
    local ok3, e3 = pcall(dist.allreduce, ac.zeros(2, "int64"), "mean")
    dist.barrier()
    assert.is_false(ok1); assert.matches("contiguous", e1)
    assert.is_false(ok2); assert.matches("root 5 is not a rank", e2)
    assert.is_false(ok3); assert.matches("float32", e3)
  end)
end)

-- a fixed batch every rank can build
local B, C, k, d = 13, 7, 3, 16
local function batch(seed)
  ac.manual_seed(seed)
  local Z = ac.randn(B, C)
  local E = {}
  for j = 1, k do E[j] = ac.randn(B, d) end
  local y = {}
  for i = 1, B do y[i] = (i * 5 + seed) % C + 1 end
  return Z, E, y
end

local function own(Z, E, y, off, n)
  local e = {}
  for j = 1, #E do e[j] = E[j]:narrow(1, off + 1, n):clone() end
  local yy = {}
  for i = 1, n do yy[i] = y[off + i] end
  return Z:narrow(1, off + 1, n):clone(), e, yy
end

describe("AdCorreLoss{distributed = true}", function()
  local cases = {
    { name = "all terms", o = {} },
    { name = "CE alone", o = { fd = false, md = false, ed = false } },
    { name = "FD alone", o = { md = false, ed = false, lambda = 0 } },
    { name = "MD alone", o = { fd = false, ed = false, lambda = 0 } },
    { name = "MD reference mode", o = { fd = false, ed = false, lambda = 0, md_mode = "reference" } },
    { name = "ED alone", o = { fd = false, md = false, lambda = 0 } },
  }
  for ci, case in ipairs(cases) do
    it("equals the single-process loss and gradient rows: " .. case.name, function()
      local Z, E, y = batch(ci)
      local off, n = split(B)
      local o1, o2 = { classes = C, distributed = true }, { classes = C }
      for kk, v in pairs(case.o) do o1[kk], o2[kk] = v, v end
      local dl, sl = ac.AdCorreLoss(o1), ac.AdCorreLoss(o2)
      local z, e, yy = own(Z, E, y, off, n)
      local t1, p1 = dl:forward(z, e, yy)
      local gz, ge = dl:backward()
      local t2, p2 = sl:forward(Z, E, y)
      local GZ, GE = sl:backward()
      assert.are.equal(t2, t1)
      for _, key in ipairs({ "ce", "fd", "md", "ed" }) do assert.are.equal(p2[key], p1[key]) end
      assert.is_true(gz:equal(GZ:narrow(1, off + 1, n)))
      for j = 1, k do assert.is_true(ge[j]:equal(GE[j]:narrow(1, off + 1, n))) end
    end)
  end

  it("merges the confusion history: adaptive weights after some steps equal one process's", function()
    local dl = ac.AdCorreLoss{ classes = C, distributed = true, history = 20 }
    local sl = ac.AdCorreLoss{ classes = C, history = 20 }
    local off, n = split(B)
    local t1, t2, gz, GZ
    for step = 1, 4 do
      local Z, E, y = batch(10 + step)
      local z, e, yy = own(Z, E, y, off, n)
      t1 = dl:forward(z, e, yy)
      gz = dl:backward()
      t2 = sl:forward(Z, E, y)
      GZ = sl:backward()
    end
    local recorded = dl:history()
    assert.are.equal(20, recorded)
    assert.is_true(dl:confusion():equal(sl:confusion()))
    assert.are.equal(t2, t1)
    assert.is_true(gz:equal(GZ:narrow(1, off + 1, n)))
  end)

  it("a shape that differs between ranks is the same error everywhere", function()
    local dl = ac.AdCorreLoss{ classes = C, distributed = true }
    local dd = rank == 0 and 8 or 9
    local ok, err = pcall(dl.forward, dl, ac.randn(2, C), { ac.randn(2, dd) }, { 1, 2 })
    dist.barrier()
    assert.is_false(ok)
    assert.matches("rank 0 has logits %[2, 7%] and 1 embeddings of 8, rank 1 has %[2, 7%] and 1 of 9", err)
  end)

  it("a bad label on one rank is reported on every rank", function()
    local dl = ac.AdCorreLoss{ classes = C, distributed = true }
    local ok, err = pcall(dl.forward, dl, ac.randn(2, C), { ac.randn(2, 4) }, rank == 1 and { 1, 9 } or { 1, 2 })
    dist.barrier()
    assert.is_false(ok)
    assert.matches("label", err)
  end)
end)

-- a small Ad-Corre network: mini-Xception trunk at 16x16, k = 2 heads of 8
-- (the data seed is one whose pre-activations keep clear of the ReLU kink:
-- a value within rounding of 0 may take the other side of the mask in the
-- other summation order, which is a true difference of one gradient entry)
local function net(seed)
  ac.manual_seed(seed)
  return ac.models.minixception{ in_channels = 1, size = 16, classes = C, k = 2, d = 8, dropout = 0 }
end

local function grads_of(model, x, y, loss)
  model:zeroGradParameters()
  local out = model:forward(x)
  loss:forward(out.logits, out.embeddings, y)
  local gl, ge = loss:backward()
  model:backward(x, { logits = gl, embeddings = ge })
  local _, g = model:getParameters()
  return g
end

describe("allreduce_gradients and sync_batchnorm", function()
  local N = 12
  local function data()
    ac.manual_seed(78)
    local x = ac.randn(N, 1, 16, 16)
    local y = {}
    for i = 1, N do y[i] = (i * 3) % C + 1 end
    return x, y
  end

  -- gradients of one process on the whole batch and of this rank after
  -- allreduce_gradients, for a network in evaluation or training mode
  local function both_gradients(seed, train)
    local x, y = data()
    local off, n = split(N)
    local ref, m = net(seed), net(seed)
    if train then ref:training(); m:training() else ref:evaluate(); m:evaluate() end
    local converted = train and dist.sync_batchnorm(m) or 0
    local G = grads_of(ref, x, y, ac.AdCorreLoss{ classes = C, adaptive = false }):clone()
    local yy = {}
    for i = 1, n do yy[i] = y[off + i] end
    grads_of(m, x:narrow(1, off + 1, n):contiguous(), yy, ac.AdCorreLoss{ classes = C, adaptive = false, distributed = true })
    local g = dist.allreduce_gradients(m)
    return max_over_ranks(rel(g, G)), ref, m, converted, G:numel()
  end

  it("evaluation mode: every rank holds the single-process gradient of the whole batch", function()
    local r, _, _, _, count = both_gradients(5, false)
    print(("\n  eval-mode gradient, relative difference to one process: %.3g (%d values)"):format(r, count))
    assert.is_true(r < 1e-5, "relative difference " .. r)
  end)

  it("training mode with sync_batchnorm and dropout 0: the single-process gradient", function()
    local r, ref, m, converted = both_gradients(6, true)
    -- the running statistics follow the global batch too
    local rm_ref = {}
    for _, e in ipairs(ref:namedBuffers()) do rm_ref[e.name] = e.tensor end
    local rb = 0
    for _, e in ipairs(m:namedBuffers()) do rb = math.max(rb, rel(e.tensor, rm_ref[e.name])) end
    rb = max_over_ranks(rb)
    print(("\n  train-mode gradient (%d synchronised batch norms): relative difference %.3g; running statistics %.3g"):format(
      converted, r, rb))
    assert.is_true(converted > 0)
    assert.is_true(r < 1e-5, "relative difference " .. r)
    assert.is_true(rb < 1e-5, "running statistics differ by " .. rb)
  end)

  it("20 Adam steps: parameters bit-identical on both ranks and close to one process", function()
    local x, y = data()
    local off, n = split(N)
    local ref = net(7); ref:training()
    local m = net(8); m:training() -- another initialisation: broadcast_parameters must fix it
    if rank == 0 then m = net(7); m:training() end
    dist.broadcast_parameters(m, 0)
    dist.sync_batchnorm(m)
    local ro = ac.optim.Adam(ref, { lr = 1e-3 })
    local mo = ac.optim.Adam(m, { lr = 1e-3 })
    local sl = ac.AdCorreLoss{ classes = C, history = 30 }
    local dl = ac.AdCorreLoss{ classes = C, history = 30, distributed = true }
    local xx = x:narrow(1, off + 1, n):contiguous()
    local yy = {}
    for i = 1, n do yy[i] = y[off + i] end
    for _ = 1, 20 do
      grads_of(ref, x, y, sl); ro:step()
      grads_of(m, xx, yy, dl); dist.allreduce_gradients(m); mo:step()
    end
    local p = m:getParameters()
    local P = ref:getParameters()
    local all = dist.allgather(p:view(1, -1))
    local same = all[1]:equal(all[2])
    local r = max_over_ranks(rel(p, P))
    print(("\n  after 20 steps: ranks bit-identical %s, relative difference to one process %.3g"):format(
      tostring(same), r))
    assert.is_true(same)
    -- Adam divides by sqrt(v): a near-zero gradient that differs in its last
    -- bits still moves its parameter by about lr, so the runs drift apart at
    -- the rounding level of the updates, not of the values (1e-7 .. 1e-4 seen)
    assert.is_true(r < 1e-3, "relative difference " .. r)
  end)
end)

describe("finalize", function()
  it("ends MPI on every rank (last: mpirun counts a rank that exits without it as failed)", function()
    dist.finalize()
    assert.is_false(dist.initialized())
  end)
end)
