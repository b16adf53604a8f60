-- spec/tsne_spec.lua - exact t-SNE: affinities against a double-precision
-- Lua reference of the perplexity search, the gradient against the
-- reference formula and finite differences of KL, separation of clusters,
-- determinism for a seed, and argument errors.
local ac = require("adcorre")

-- Reference joint affinities in double precision: per row, bisection on beta
-- until the entropy of p_{j|i} is log(perplexity); P = (P + P^T) / (2n).
local function ref_affinities(X, perp)
  local n, d = #X, #X[1]
  local D = {}
  for i = 1, n do
    D[i] = {}
    for j = 1, n do
      local s = 0
      for k = 1, d do s = s + (X[i][k] - X[j][k]) ^ 2 end
      D[i][j] = s
    end
  end
  local Pc = {}
  for i = 1, n do
    local lo, hi = 0, math.huge
    local beta = 1
    local row
    for _ = 1, 200 do
      row = {}
      local sum, sdp = 0, 0
      for j = 1, n do
        if j ~= i then
          row[j] = math.exp(-beta * D[i][j]); sum = sum + row[j]; sdp = sdp + D[i][j] * row[j]
        else
          row[j] = 0
        end
      end
      local H = math.log(sum) + beta * sdp / sum
      if math.abs(H - math.log(perp)) < 1e-10 then break end
      if H > math.log(perp) then
        lo = beta; beta = hi == math.huge and beta * 2 or (beta + hi) / 2
      else
        hi = beta; beta = (beta + lo) / 2
      end
      for j = 1, n do row[j] = row[j] / sum end
    end
    local s = 0
    for j = 1, n do s = s + row[j] end
    for j = 1, n do row[j] = row[j] / s end
    Pc[i] = row
  end
  local P = {}
  for i = 1, n do
    P[i] = {}
    for j = 1, n do P[i][j] = i == j and 0 or (Pc[i][j] + Pc[j][i]) / (2 * n) end
  end
  return P
end

-- Reference KL(P || Q) and its gradient in double precision.
local function ref_kl_grad(P, Y)
  local n, dims = #Y, #Y[1]
  local W, Z = {}, 0
  for i = 1, n do
    W[i] = {}
    for j = 1, n do
      local s = 0
      for k = 1, dims do s = s + (Y[i][k] - Y[j][k]) ^ 2 end
      W[i][j] = i == j and 0 or 1 / (1 + s)
      Z = Z + W[i][j]
    end
  end
  local kl, G = 0, {}
  for i = 1, n do
    G[i] = {}
    for k = 1, dims do G[i][k] = 0 end
    for j = 1, n do
      if i ~= j then
        local q = W[i][j] / Z
        if P[i][j] > 0 then kl = kl + P[i][j] * math.log(P[i][j] / q) end
        for k = 1, dims do
          G[i][k] = G[i][k] + 4 * (P[i][j] - q) * W[i][j] * (Y[i][k] - Y[j][k])
        end
      end
    end
  end
  return kl, G
end

local function clusters(n_per, d, sep, seed)
  ac.manual_seed(seed)
  local n = 3 * n_per
  local X = ac.randn(n, d)
  local labels = {}
  for i = 1, n do
    local c = (i - 1) % 3 + 1
    labels[i] = c
    X[i][c] = X[i][c] + sep
  end
  return X, labels
end

-- Fraction of points whose nearest neighbour in Y has the same label.
local function nn_agreement(Y, labels)
  local t = Y:totable()
  local ok = 0
  for i = 1, #t do
    local best, bj = math.huge, nil
    for j = 1, #t do
      if j ~= i then
        local dx, dy = t[i][1] - t[j][1], t[i][2] - t[j][2]
        local dd = dx * dx + dy * dy
        if dd < best then best, bj = dd, j end
      end
    end
    if labels[bj] == labels[i] then ok = ok + 1 end
  end
  return ok / #t
end

describe("t-SNE", function()
  it("affinities match a double-precision reference of the perplexity search", function()
    ac.manual_seed(11)
    local X = ac.randn(15, 4)
    for _, perp in ipairs({ 2, 4.5 }) do
      local P = ac.plot.tsne_affinities(X, perp)
      assert.same({ 15, 15 }, P:shape())
      local R = ref_affinities(X:totable(), perp)
      local Pt = P:totable()
      local maxerr, sum = 0, 0
      for i = 1, 15 do
        for j = 1, 15 do
          maxerr = math.max(maxerr, math.abs(Pt[i][j] - R[i][j]))
          sum = sum + Pt[i][j]
          assert.equal(Pt[i][j], Pt[j][i])
        end
        assert.equal(0, Pt[i][i])
      end
      assert.is_true(maxerr < 2e-6, "max |P - ref| = " .. maxerr)
      assert.is_true(math.abs(sum - 1) < 1e-5)
    end
  end)

  it("the gradient matches the reference formula and finite differences of KL", function()
    ac.manual_seed(12)
    local X = ac.randn(10, 3)
    local P = ac.plot.tsne_affinities(X, 3)
    local Y = ac.randn(10, 2)
    local G, kl = ac.plot.tsne_gradient(P, Y)
    local rkl, RG = ref_kl_grad(P:totable(), Y:totable())
    assert.is_true(math.abs(kl - rkl) < 1e-5 * math.max(1, rkl), ("kl %g vs %g"):format(kl, rkl))
    local Gt = G:totable()
    local gmax, err = 0, 0
    for i = 1, 10 do
      for k = 1, 2 do
        gmax = math.max(gmax, math.abs(RG[i][k]))
        err = math.max(err, math.abs(Gt[i][k] - RG[i][k]))
      end
    end
    assert.is_true(err < 1e-5 * gmax + 1e-7, "max |grad - ref| = " .. err)
    -- central differences of the reference KL (double precision)
    local Yt = Y:totable()
    local h, fd_err = 1e-5, 0
    for i = 1, 10 do
      for k = 1, 2 do
        local old = Yt[i][k]
        Yt[i][k] = old + h
        local kp = ref_kl_grad(P:totable(), Yt)
        Yt[i][k] = old - h
        local km = ref_kl_grad(P:totable(), Yt)
        Yt[i][k] = old
        fd_err = math.max(fd_err, math.abs((kp - km) / (2 * h) - Gt[i][k]))
      end
    end
    assert.is_true(fd_err < 1e-4 * gmax + 1e-6, "finite-difference error " .. fd_err)
    -- exaggeration scales the attractive part only
    local G2 = ac.plot.tsne_gradient(P, Y, 4)
    assert.is_true(((G2 - G):abs():max()) > 1e-4)
  end)

  it("keeps well-separated Gaussian clusters apart", function()
    local X, labels = clusters(40, 10, 8, 21)
    local Y, kl = ac.plot.tsne(X, { seed = 5, perplexity = 15, iterations = 500 })
    assert.same({ 120, 2 }, Y:shape())
    assert.is_true(kl > 0 and kl < 2, "KL " .. kl)
    local agree = nn_agreement(Y, labels)
    assert.is_true(agree > 0.95, "nearest-neighbour agreement " .. agree)
    -- the optimised map is much better than a random one
    local P = ac.plot.tsne_affinities(X, 15)
    local _, kl_rand = ac.plot.tsne_gradient(P, ac.randn(120, 2))
    assert.is_true(kl < 0.5 * kl_rand, ("KL %g vs random %g"):format(kl, kl_rand))
  end)

  it("is deterministic for a seed, from a random or a PCA start", function()
    local X = clusters(10, 5, 5, 3)
    local a = ac.plot.tsne(X, { seed = 9, iterations = 200, init = "random" })
    local b = ac.plot.tsne(X, { seed = 9, iterations = 200, init = "random" })
    local c = ac.plot.tsne(X, { seed = 10, iterations = 200, init = "random" })
    assert.equal(0, (a - b):abs():max())
    assert.is_true(((a - c):abs():max()) > 1e-3)
    local p1 = ac.plot.tsne(X, { iterations = 200, seed = 1 })
    local p2 = ac.plot.tsne(X, { iterations = 200, seed = 2 })
    assert.equal(0, (p1 - p2):abs():max()) -- PCA start: no randomness
    -- without a seed, ac.manual_seed decides
    ac.manual_seed(4)
    local r1 = ac.plot.tsne(X, { iterations = 50, init = "random" })
    ac.manual_seed(4)
    local r2 = ac.plot.tsne(X, { iterations = 50, init = "random" })
    assert.equal(0, (r1 - r2):abs():max())
  end)

  it("handles duplicate and constant points without NaN", function()
    ac.manual_seed(1)
    local X = ac.cat({ ac.randn(30, 5), ac.zeros(30, 5) }, 1) -- 30 identical rows
    local P = ac.plot.tsne_affinities(X, 19)
    assert.equal(0, P:ne(P):sum())
    assert.is_true(math.abs(P:sum() - 1) < 1e-5)
    local Y, kl = ac.plot.tsne(X, { seed = 1, iterations = 300 })
    assert.equal(0, Y:ne(Y):sum())
    assert.is_true(kl == kl and kl >= 0)
    local Yc = ac.plot.tsne(ac.ones(20, 3), { seed = 1, iterations = 100 })
    assert.equal(0, Yc:ne(Yc):sum())
  end)

  it("gives clear errors for bad arguments", function()
    local X = ac.randn(10, 3)
    assert.has_error(function() ac.plot.tsne(X, { perplexity = 5 }) end,
      "plot.tsne: perplexity 5 must be in [1, (N-1)/3] = [1, 3] for N = 10")
    assert.has_error(function() ac.plot.tsne(ac.randn(3, 2)) end, "plot.tsne: need at least 4 points, got 3")
    assert.has_error(function() ac.plot.tsne({ { 1, 2 } }) end, "plot.tsne: X must be a tensor [N, D], got table")
    assert.has_error(function() ac.plot.tsne(ac.randn(10)) end, "plot.tsne: X must be 2-d [N, D], got shape [10]")
    assert.has_error(function() ac.plot.tsne(X, { init = "spectral" }) end,
      'plot.tsne: init must be "pca" or "random", got spectral')
    assert.has_error(function() ac.plot.tsne(X, { iterations = 0 }) end,
      "plot.tsne: iterations must be in 1..100000, got 0")
    assert.has_error(function() ac.plot.tsne(X, { dims = 4, init = "random" }) end,
      "plot.tsne: dims must be 1, 2 or 3, got 4")
    local Xn = X:clone()
    Xn[2][3] = 0 / 0
    assert.has_error(function() ac.plot.tsne(Xn, { init = "random", perplexity = 2 }) end,
      "plot.tsne: t-SNE: X[2, 3] is not finite")
    assert.has_error(function() ac.plot.tsne_gradient(ac.zeros(4, 4), ac.zeros(5, 2)) end,
      "tsne_gradient: P must be [N, N] and Y [N, dims], got [4, 4] and [5, 2]")
  end)
end)
