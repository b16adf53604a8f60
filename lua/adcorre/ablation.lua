--- adcorre.ablation: the runs behind examples/ablation.lua. One run trains a
-- network with one loss variant and one seed, and evaluates it at each
-- epoch of a list; a record holds, per evaluated epoch, the test accuracy,
-- the mean per-class accuracy, the nearest-class-mean accuracy of the
-- embeddings and the training loss.
--
--   local A = require("adcorre.ablation")
--   local vs = A.select_variants("ce,adcorre,detached", {lambdas = {1, 20}})
--   local data = A.open(args)                 -- data sets opened once for all runs
--   local rec = A.run(vs[1], 1, args, data, {epochs = {3, 20}, ncm = true})
--
-- The seed sets the initialisation, the shuffling, the augmentation and the
-- dropout; two variants with the same seed start from the same weights and
-- see the same batches, which is what makes the comparison paired. With a
-- schedule that does not depend on the total length (none, step, cyclic, and
-- Keras' time decay) a run to 20 epochs passes through exactly the state a
-- run to 3 epochs ends in, so one run is evaluated at every listed epoch;
-- with the cosine schedule each length is its own run.
local ac = require("adcorre")
local cli = require("adcorre.cli")
local trainer = require("adcorre.trainer")

local M = {}

-- Loss settings of each variant; every variant starts from the command line's
-- settings with these flags reset, then applies its own.
local LOSS_FLAGS = { "ce_only", "no_fd", "no_md", "no_ed", "reference", "detach" }

M.VARIANTS = {
  { id = "ce", name = "CE", set = { ce_only = true } },
  { id = "fd", name = "CE + FD", set = { no_md = true, no_ed = true } },
  { id = "fdmd", name = "CE + FD + MD", set = { no_ed = true } },
  { id = "adcorre", name = "Ad-Corre (CE + FD + MD + ED)", set = {} },
  { id = "noadaptive", name = "Ad-Corre, FD not adaptive", set = { no_adaptive = true } },
  { id = "mdref", name = "Ad-Corre, MD reference", set = { md_mode = "reference" } },
  { id = "reference", name = "released balance (reference)", set = { reference = true } },
  { id = "detached", name = "released code (reference, detached)", set = { reference = true, detach = true } },
  { id = "warmup", name = "Ad-Corre after a CE warm-up", set = {}, warmup = true },
}

local by_id = {}
for _, v in ipairs(M.VARIANTS) do by_id[v.id] = v end

--- "a,b,c" or a number list "3,20" as a Lua array (numbers when numeric).
function M.split_list(s, what, numeric)
  local out = {}
  for item in tostring(s or ""):gmatch("[^,%s]+") do
    if numeric then
      local n = tonumber(item)
      if not n then error(("%s: '%s' is not a number (expected a list such as 3,20)"):format(what, item), 0) end
      out[#out + 1] = n
    else
      out[#out + 1] = item
    end
  end
  return out
end

--- The variants named in `list` ("all" = every fixed variant), then one
-- "Ad-Corre, lambda X" per value of opts.lambdas.
function M.select_variants(list, opts)
  opts = opts or {}
  local out = {}
  local ids = M.split_list(list, "--variants")
  for _, id in ipairs(ids) do
    if id == "all" then
      for _, v in ipairs(M.VARIANTS) do out[#out + 1] = v end
    elseif id == "none" then
      -- only the lambda sweep
    elseif by_id[id] then
      out[#out + 1] = by_id[id]
    else
      local known = {}
      for _, v in ipairs(M.VARIANTS) do known[#known + 1] = v.id end
      error(("--variants: unknown variant '%s' (known: %s, all, none)"):format(id, table.concat(known, ", ")), 0)
    end
  end
  for _, l in ipairs(opts.lambdas or {}) do
    if not (l > 0) then error(("--lambdas: %s is not a positive number"):format(tostring(l)), 0) end
    out[#out + 1] = { id = ("lambda=%g"):format(l), name = ("Ad-Corre, lambda %g"):format(l), set = { lambda = l } }
  end
  if #out == 0 then error("--variants: no variant selected", 0) end
  return out
end

--- The settings of one run: the command line's, the variant's loss flags, the seed.
function M.settings(v, args, seed)
  local a = {}
  for k, val in pairs(args) do a[k] = val end
  for _, k in ipairs(LOSS_FLAGS) do a[k] = false end
  for k, val in pairs(v.set or {}) do a[k] = val end
  a.seed = seed
  return a
end

--- Opens the data sets once: {train =, eval =, info =}.
function M.open(args)
  local train_set, eval_set, info = cli.open_datasets(args)
  return { train = train_set, eval = eval_set, info = info }
end

--- Nearest-class-mean accuracy: class means of the training embeddings
-- Xtr [N, D] (labels ytr, 1-based int64 [N]), each test row of Xte assigned
-- to the closest mean in Euclidean distance. Classes absent from the
-- training embeddings are never predicted.
function M.ncm_accuracy(Xtr, ytr, Xte, yte, C)
  local N = Xtr:size(1)
  local lab = ytr:totable()
  local onehot, counts = {}, {}
  for c = 1, C do onehot[c], counts[c] = {}, 0 end
  for i = 1, N do
    local y = lab[i]
    for c = 1, C do onehot[c][i] = (c == y) and 1 or 0 end
    counts[y] = counts[y] + 1
  end
  local means = ac.tensor(onehot):mm(Xtr)                       -- [C, D] sums
  local inv = {}
  for c = 1, C do inv[c] = { counts[c] > 0 and 1 / counts[c] or 0 } end
  means = means * ac.tensor(inv)
  -- argmin |x - m|^2 = argmax (2 x.m - |m|^2); an absent class gets -inf
  local msq = (means * means):sum(2):view(1, C):totable()[1]
  for c = 1, C do if counts[c] == 0 then msq[c] = math.huge end end
  local score = Xte:mm(means:t()) * 2 - ac.tensor({ msq })
  local pred, truth = score:argmax(2):totable(), yte:totable()
  local hit = 0
  for i = 1, #truth do if pred[i] == truth[i] then hit = hit + 1 end end
  return #truth > 0 and hit / #truth or 0
end

-- Evaluates at one epoch of the list.
local function measure(tr, loaders, info, epoch, s, opts)
  local keep = opts.ncm or opts.on_embeddings
  local r = tr:evaluate(loaders.eval, { keep_embeddings = keep })
  local point = {
    epoch = epoch, accuracy = r.accuracy, mean_class_accuracy = r.mean_class_accuracy,
    train_loss = s.total, train_accuracy = s.accuracy,
    ce = s.ce, fd = s.fd, md = s.md, ed = s.ed, seconds = s.seconds,
  }
  if opts.ncm then
    local rt = tr:evaluate(loaders.train_plain, { keep_embeddings = true })
    point.ncm = M.ncm_accuracy(rt.embeddings, rt.labels, r.embeddings, r.labels, #info.classes)
  end
  if opts.on_embeddings then opts.on_embeddings(epoch, r) end
  return point
end

--- Trains variant v with `seed` and evaluates it at every epoch of
-- opts.epochs (ascending). opts: epochs, ncm (nearest-class-mean accuracy),
-- warmup (CE-only epochs of the warm-up variant), on_epoch(point) and
-- on_embeddings(epoch, eval_result) called as the run goes. Returns the
-- record {variant, name, seed, loss, points = {...}, seconds}.
function M.run(v, seed, args, data, opts)
  local a = M.settings(v, args, seed)
  local lengths = opts.epochs
  if args.schedule ~= "cosine" then return M.run_one(v, seed, a, data, opts, lengths[#lengths]) end
  -- the cosine schedule depends on the length: each length is a run of its own
  local rec
  for _, e in ipairs(lengths) do
    local o = {}
    for k, val in pairs(opts) do o[k] = val end
    o.epochs = { e }
    local r = M.run_one(v, seed, a, data, o, e)
    if rec then
      rec.points[#rec.points + 1] = r.points[1]
      rec.seconds, rec.model = rec.seconds + r.seconds, r.model
    else
      rec = r
    end
  end
  return rec
end

function M.run_one(v, seed, a, data, opts, total)
  local info = data.info
  local at = {}
  for _, e in ipairs(opts.epochs) do at[e] = true end
  ac.manual_seed(seed)
  local saved_epochs = a.epochs
  a.epochs = total                                              -- the cosine schedule's length
  local loaders = {
    train = cli.loader(data.train, a, info, true),
    eval = cli.loader(data.eval, a, info, false),
  }
  if opts.ncm then loaders.train_plain = cli.loader(data.train, a, info, false) end
  local model = cli.build_model(a, info)
  local loss = cli.build_loss(a, #info.classes)
  local warm
  local warm_epochs = v.warmup and (opts.warmup or 2) or 0
  if warm_epochs > 0 then
    local w = {}
    for k, val in pairs(a) do w[k] = val end
    w.ce_only = true
    warm = cli.build_loss(w, #info.classes)
  end
  local tr = trainer.new({ model = model, loss = warm or loss, optim = cli.build_optimizer(a, model),
    classes = info.classes, clip = (a.clip or 0) > 0 and a.clip or nil })
  local desc = cli.describe_loss(a, loss)
  if warm then desc = ("CE for %d epochs, then %s"):format(warm_epochs, desc) end
  local rec = { variant = v.id, name = v.name, seed = seed, loss = desc, points = {}, seconds = 0 }
  local t0 = ac.now()
  for epoch = 1, total do
    if warm and epoch == warm_epochs + 1 then tr.loss = loss end
    local s = tr:train_epoch(loaders.train, epoch)
    if at[epoch] then
      local p = measure(tr, loaders, info, epoch, s, opts)
      rec.points[#rec.points + 1] = p
      if opts.on_epoch then opts.on_epoch(p, rec) end
    end
  end
  rec.seconds = ac.now() - t0
  for _, l in pairs(loaders) do l:close() end
  a.epochs = saved_epochs
  rec.model = model
  return rec
end

return M
