--- adcorre.ablation_report: the tables and the plot of an ablation study
-- from its run records (adcorre.ablation.run, one per variant and seed).
--
--   local R = require("adcorre.ablation_report")
--   local md, summary = R.markdown(runs, {title = "Fashion-MNIST"})
--   R.plot("out/ablation.png", summary)
--
-- summary[i] = {variant, name, epochs = {[j] = {epoch, seeds, accuracy =
-- stats.describe, mean_class_accuracy =, ncm =, vs_ce = stats.paired of the
-- accuracy (and vs_ce_mca of the mean class accuracy, vs_ce_ncm of NCM)}}}.
-- The paired comparison uses the seeds both the variant and CE have.
local S = require("adcorre.stats")

local M = {}

local function pct(x) return (x == x) and ("%.2f"):format(100 * x) or "-" end

-- values of `key` at `epoch` by seed
local function by_seed(runs, id, epoch, key)
  local out = {}
  for _, r in ipairs(runs) do
    if r.variant == id then
      for _, p in ipairs(r.points) do
        if p.epoch == epoch and p[key] ~= nil then out[r.seed] = p[key] end
      end
    end
  end
  return out
end

local function sorted_keys(t)
  local k = {}
  for s in pairs(t) do k[#k + 1] = s end
  table.sort(k)
  return k
end

local function values(t)
  local v = {}
  for _, s in ipairs(sorted_keys(t)) do v[#v + 1] = t[s] end
  return v
end

local function pair(a, b)
  local xs, ys = {}, {}
  for _, s in ipairs(sorted_keys(a)) do
    if b[s] ~= nil then xs[#xs + 1], ys[#ys + 1] = a[s], b[s] end
  end
  return xs, ys
end

--- The per-variant, per-epoch statistics (see the module comment).
function M.summarise(runs)
  local order, names, epochs_of = {}, {}, {}
  for _, r in ipairs(runs) do
    if not names[r.variant] then
      order[#order + 1] = r.variant
      names[r.variant] = r.name
      epochs_of[r.variant] = {}
    end
    for _, p in ipairs(r.points) do epochs_of[r.variant][p.epoch] = true end
  end
  -- CE first, the rest in the order they were run
  for i, id in ipairs(order) do
    if id == "ce" then table.remove(order, i); table.insert(order, 1, "ce") break end
  end
  local summary = {}
  for _, id in ipairs(order) do
    local entry = { variant = id, name = names[id], epochs = {} }
    for _, e in ipairs(sorted_keys(epochs_of[id])) do
      local acc = by_seed(runs, id, e, "accuracy")
      local mca = by_seed(runs, id, e, "mean_class_accuracy")
      local ncm = by_seed(runs, id, e, "ncm")
      local pe = { epoch = e, seeds = sorted_keys(acc), accuracy = S.describe(values(acc)),
        mean_class_accuracy = S.describe(values(mca)), per_seed = acc }
      if next(ncm) then pe.ncm = S.describe(values(ncm)) end
      if id ~= "ce" then
        for key, field in pairs({ accuracy = "vs_ce", mean_class_accuracy = "vs_ce_mca", ncm = "vs_ce_ncm" }) do
          local mine, ce = by_seed(runs, id, e, key), by_seed(runs, "ce", e, key)
          local xs, ys = pair(mine, ce)
          if #xs > 0 then pe[field] = S.paired(xs, ys) end
        end
      end
      entry.epochs[#entry.epochs + 1] = pe
    end
    summary[#summary + 1] = entry
  end
  return summary
end

local function ci(d) return d.n >= 2 and ("%s .. %s"):format(pct(d.lo), pct(d.hi)) or "-" end
local function msd(d) return d.n >= 2 and ("%s ± %s"):format(pct(d.mean), pct(d.sd)) or pct(d.mean) end
local function diff(d)
  if not d then return "-" end
  local s = ("%+.2f"):format(100 * d.mean)
  if d.n >= 2 then s = s .. (" (%+.2f .. %+.2f)"):format(100 * d.lo, 100 * d.hi) end
  return s
end
local function pval(d)
  if not d or d.p ~= d.p then return "-" end
  return (d.p < 0.001 and "< 0.001" or ("%.3f"):format(d.p)) .. (" (%d/%d/%d)"):format(d.wins, d.losses, d.ties)
end

--- Markdown: per evaluated epoch, one table of the statistics; then the
-- accuracy of every run by seed. Returns the text and the summary.
function M.markdown(runs, opts)
  opts = opts or {}
  local summary = M.summarise(runs)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## " .. (opts.title or "Ad-Corre ablation"))
  add("")
  add("Accuracies in %, over seeds: mean ± sample sd, the 95 % t interval of the mean; Δ is the paired "
    .. "difference to CE over the seeds both have (mean and 95 % t interval); p is the paired t test's "
    .. "two-sided p-value, with the seeds where the variant wins/loses/ties against CE. NCM: nearest-class-mean "
    .. "accuracy of the test embeddings against the training class means.")
  local all_epochs = {}
  for _, v in ipairs(summary) do for _, pe in ipairs(v.epochs) do all_epochs[pe.epoch] = true end end
  for _, e in ipairs(sorted_keys(all_epochs)) do
    add("")
    add(("### Epoch %d"):format(e))
    add("")
    add("| variant | seeds | test accuracy | 95 % CI | Δ accuracy vs CE | p (w/l/t) | mean class accuracy | 95 % CI "
      .. "| Δ mean class vs CE | NCM accuracy | Δ NCM vs CE |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for _, v in ipairs(summary) do
      for _, pe in ipairs(v.epochs) do
        if pe.epoch == e then
          add(("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |"):format(v.name, pe.accuracy.n,
            msd(pe.accuracy), ci(pe.accuracy), diff(pe.vs_ce), pval(pe.vs_ce), msd(pe.mean_class_accuracy),
            ci(pe.mean_class_accuracy), diff(pe.vs_ce_mca), pe.ncm and msd(pe.ncm) or "-", diff(pe.vs_ce_ncm)))
        end
      end
    end
  end
  add("")
  add("### Test accuracy of every run")
  add("")
  local seeds = {}
  for _, r in ipairs(runs) do seeds[r.seed] = true end
  local sl = sorted_keys(seeds)
  local head, rule = { "| variant | epoch |" }, { "|---|---|" }
  for _, s in ipairs(sl) do head[#head + 1] = (" seed %d |"):format(s); rule[#rule + 1] = "---|" end
  add(table.concat(head))
  add(table.concat(rule))
  for _, v in ipairs(summary) do
    for _, pe in ipairs(v.epochs) do
      local row = { ("| %s | %d |"):format(v.name, pe.epoch) }
      for _, s in ipairs(sl) do row[#row + 1] = " " .. (pe.per_seed[s] and pct(pe.per_seed[s]) or "-") .. " |" end
      add(table.concat(row))
    end
  end
  add("")
  return table.concat(L, "\n"), summary
end

--- The paired difference to CE of the mean test accuracy (percentage
-- points, over the seeds both have) against the evaluated epochs, one line
-- per variant and CE's own line at 0; with a single epoch, the variants
-- along x instead. Differences, not means, so that variants run with
-- different seeds are not compared through seed noise.
function M.plot(path, summary, opts)
  opts = opts or {}
  local plot = require("adcorre").plot
  local series, single, ce_epochs = {}, true, {}
  for _, v in ipairs(summary) do
    if #v.epochs > 1 then single = false end
    if v.variant == "ce" then for j, pe in ipairs(v.epochs) do ce_epochs[j] = pe.epoch end end
  end
  if single then
    local x, y = {}, {}
    for _, v in ipairs(summary) do
      local d = v.epochs[1].vs_ce
      if d then x[#x + 1], y[#y + 1] = #x + 1, 100 * d.mean end
    end
    if #x == 0 then return nil end
    series[1] = { name = "paired difference to CE (variants in table order, CE excluded)", x = x, y = y }
  else
    if #ce_epochs > 0 then
      local z = {}
      for j = 1, #ce_epochs do z[j] = 0 end
      series[1] = { name = "CE", x = ce_epochs, y = z }
    end
    for _, v in ipairs(summary) do
      local x, y = {}, {}
      for _, pe in ipairs(v.epochs) do
        if pe.vs_ce then x[#x + 1], y[#y + 1] = pe.epoch, 100 * pe.vs_ce.mean end
      end
      if #x > 0 then series[#series + 1] = { name = v.name, x = x, y = y } end
    end
    if #series == 0 then return nil end
  end
  return plot.curves(path, { title = opts.title or "Ad-Corre ablation", xlabel = single and "variant" or "epoch",
    ylabel = "test accuracy - CE (points)", series = series, width = 760, height = 480 })
end

return M
