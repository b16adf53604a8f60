--- adcorre.stats: the summary statistics of repeated runs: mean, sample
-- standard deviation, Student-t 95 % confidence intervals and the paired
-- comparison of two lists measured on the same seeds.
--
--   local S = require("adcorre.stats")
--   local d = S.describe({0.84, 0.85, 0.83})  -- {n, mean, sd, lo, hi}
--   local p = S.paired(adcorre, ce)           -- difference adcorre - ce, seed by seed:
--   -- {n, mean, sd, lo, hi, t, p, wins, losses, ties}
--
-- The t quantiles and two-sided p-values come from the regularised
-- incomplete beta function (continued fraction, as in Numerical Recipes),
-- accurate to about 1e-10 for the degrees of freedom used here.
local M = {}

local function check_list(fname, xs)
  if type(xs) ~= "table" then error(fname .. ": expects a list of numbers", 3) end
  for i, x in ipairs(xs) do
    if type(x) ~= "number" or x ~= x then error(("%s: element %d is not a number"):format(fname, i), 3) end
  end
end

function M.mean(xs)
  check_list("stats.mean", xs)
  if #xs == 0 then return 0 / 0 end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s / #xs
end

--- Sample standard deviation (n - 1); NaN below two values.
function M.sd(xs)
  check_list("stats.sd", xs)
  local n = #xs
  if n < 2 then return 0 / 0 end
  local m = M.mean(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + (x - m) * (x - m) end
  return math.sqrt(s / (n - 1))
end

-- log Gamma (Lanczos, g = 7, n = 9)
local LG = { 0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7 }
local function lgamma(x)
  if x < 0.5 then return math.log(math.pi / math.abs(math.sin(math.pi * x))) - lgamma(1 - x) end
  x = x - 1
  local a = LG[1]
  local t = x + 7.5
  for i = 1, 8 do a = a + LG[i + 1] / (x + i) end
  return 0.5 * math.log(2 * math.pi) + (x + 0.5) * math.log(t) - t + math.log(a)
end

local function betacf(a, b, x)
  local qab, qap, qam = a + b, a + 1, a - 1
  local c, d = 1, 1 - qab * x / qap
  if math.abs(d) < 1e-300 then d = 1e-300 end
  d = 1 / d
  local h = d
  for m = 1, 300 do
    local m2 = 2 * m
    local aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1 + aa * d; if math.abs(d) < 1e-300 then d = 1e-300 end
    c = 1 + aa / c; if math.abs(c) < 1e-300 then c = 1e-300 end
    d = 1 / d
    h = h * d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1 + aa * d; if math.abs(d) < 1e-300 then d = 1e-300 end
    c = 1 + aa / c; if math.abs(c) < 1e-300 then c = 1e-300 end
    d = 1 / d
    local del = d * c
    h = h * del
    if math.abs(del - 1) < 1e-15 then break end
  end
  return h
end

--- Regularised incomplete beta I_x(a, b).
function M.betai(a, b, x)
  if x <= 0 then return 0 end
  if x >= 1 then return 1 end
  local bt = math.exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * math.log(x) + b * math.log(1 - x))
  if x < (a + 1) / (a + b + 2) then return bt * betacf(a, b, x) / a end
  return 1 - bt * betacf(b, a, 1 - x) / b
end

--- P(T <= t) for Student's t with df degrees of freedom.
function M.t_cdf(t, df)
  local t2 = t * t
  local tail
  if t2 < df then
    -- near 0 through P(|T| < |t|), which has no cancellation there
    tail = 0.5 * (1 - M.betai(0.5, df / 2, t2 / (df + t2)))
  else
    tail = 0.5 * M.betai(df / 2, 0.5, df / (df + t2))
  end
  return t >= 0 and 1 - tail or tail
end

--- The p-quantile of Student's t with df degrees of freedom (bisection).
function M.t_quantile(p, df)
  if not (p > 0 and p < 1) then error("stats.t_quantile: p must be in (0, 1), got " .. tostring(p), 2) end
  if not (df > 0) then error("stats.t_quantile: df must be positive, got " .. tostring(df), 2) end
  local lo, hi = -1e3, 1e3
  for _ = 1, 200 do
    local mid = 0.5 * (lo + hi)
    if M.t_cdf(mid, df) < p then lo = mid else hi = mid end
  end
  return 0.5 * (lo + hi)
end

--- {n, mean, sd, lo, hi}: the 95 % interval mean -+ t(0.975, n-1) sd / sqrt(n)
-- (lo = hi = mean for one value, whose sd is NaN).
function M.describe(xs)
  check_list("stats.describe", xs)
  local n = #xs
  local m, s = M.mean(xs), M.sd(xs)
  local r = { n = n, mean = m, sd = s, lo = m, hi = m }
  if n >= 2 then
    local h = M.t_quantile(0.975, n - 1) * s / math.sqrt(n)
    r.lo, r.hi = m - h, m + h
  end
  return r
end

--- Paired comparison of xs against ys (same length, same seeds, in order):
-- the differences xs[i] - ys[i] described as above, with the paired t
-- statistic, its two-sided p-value (NaN when every difference is equal, or
-- below two pairs) and the counts of pairs where x wins, loses, ties.
function M.paired(xs, ys)
  check_list("stats.paired", xs)
  check_list("stats.paired", ys)
  if #xs ~= #ys then error(("stats.paired: %d values against %d (the lists must pair up)"):format(#xs, #ys), 2) end
  local d = {}
  local wins, losses, ties = 0, 0, 0
  for i = 1, #xs do
    d[i] = xs[i] - ys[i]
    if d[i] > 0 then wins = wins + 1 elseif d[i] < 0 then losses = losses + 1 else ties = ties + 1 end
  end
  local r = M.describe(d)
  r.wins, r.losses, r.ties = wins, losses, ties
  r.t, r.p = 0 / 0, 0 / 0
  if r.n >= 2 and r.sd > 0 then
    r.t = r.mean / (r.sd / math.sqrt(r.n))
    r.p = 2 * (1 - M.t_cdf(math.abs(r.t), r.n - 1))
  elseif r.n >= 2 and r.mean == 0 then
    r.p = 1
  end
  return r
end

return M
