-- spec/stats_spec.lua - adcorre.stats against SciPy (tools/stats_scipy_reference.py
-- -> spec/fixtures/stats/scipy.json): Student-t quantiles and distribution
-- function, 95 % intervals, paired t tests; and its bad input.
local S = require("adcorre.stats")
local json = require("adcorre.json")

local function fixture()
  local f = assert(io.open("spec/fixtures/stats/scipy.json", "r"))
  local t = json.decode(f:read("a"))
  f:close()
  return t
end

local function close(want, got, tol, what)
  assert(math.abs(want - got) <= tol * math.max(1, math.abs(want)),
    ("%s: want %.15g, got %.15g"):format(what, want, got))
end

describe("stats", function()
  local fx = fixture()

  it("t quantiles equal scipy.stats.t.ppf", function()
    for _, q in ipairs(fx.quantiles) do
      close(q.t, S.t_quantile(q.p, q.df), 1e-8, ("t_quantile(%g, %g)"):format(q.p, q.df))
    end
  end)

  it("the t distribution function equals scipy.stats.t.cdf", function()
    for _, c in ipairs(fx.cdf) do
      close(c.cdf, S.t_cdf(c.t, c.df), 1e-10, ("t_cdf(%g, %g)"):format(c.t, c.df))
    end
  end)

  it("intervals and paired tests equal scipy.stats.ttest_rel", function()
    for i, p in ipairs(fx.paired) do
      local d = S.describe(p.x)
      close(p.x_mean, d.mean, 1e-12, "mean " .. i)
      close(p.x_sd, d.sd, 1e-10, "sd " .. i)
      close(p.x_lo, d.lo, 1e-9, "lo " .. i)
      close(p.x_hi, d.hi, 1e-9, "hi " .. i)
      local r = S.paired(p.x, p.y)
      assert.equal(#p.x, r.n)
      close(p.mean, r.mean, 1e-9, "paired mean " .. i)
      close(p.sd, r.sd, 1e-8, "paired sd " .. i)
      close(p.lo, r.lo, 1e-8, "paired lo " .. i)
      close(p.hi, r.hi, 1e-8, "paired hi " .. i)
      close(p.t, r.t, 1e-8, "paired t " .. i)
      close(p.p, r.p, 1e-8, "paired p " .. i)
      assert.equal(#p.x, r.wins + r.losses + r.ties)
    end
  end)

  it("handles one value, equal differences and counts wins", function()
    local d = S.describe({ 0.5 })
    assert.equal(1, d.n)
    assert.equal(0.5, d.lo)
    assert.is_true(d.sd ~= d.sd)
    local r = S.paired({ 0.9, 0.8, 0.7 }, { 0.9, 0.8, 0.7 })
    assert.equal(1, r.p)
    assert.equal(3, r.ties)
    r = S.paired({ 0.9, 0.8, 0.75 }, { 0.8, 0.8, 0.7 })
    assert.same({ 2, 0, 1 }, { r.wins, r.losses, r.ties })
  end)

  it("rejects lists that do not pair up and non-numbers", function()
    local ok, err = pcall(S.paired, { 1, 2 }, { 1 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("2 values against 1", 1, true), err)
    ok, err = pcall(S.describe, { 1, "x" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("element 2 is not a number", 1, true), err)
    ok, err = pcall(S.t_quantile, 1.5, 3)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("p must be in (0, 1)", 1, true), err)
  end)
end)
