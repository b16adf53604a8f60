--- adcorre.cli: the pieces shared by the command-line programs in examples/
-- (argument parsers, data set opening, model/loss/optimiser construction,
-- the progress display, plots). The programs themselves stay short.
local ac = require("adcorre")
local json = require("adcorre.json")
local fs = require("adcorre.fs")

local M = {}

----------------------------------------------------------------------------
-- small utilities
----------------------------------------------------------------------------

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.shell_quote = shell_quote

--- Makes the folder path and its parents (mkdir -p).
function M.mkdir(path)
  if not fs.mkdir_p(path) then error("cannot create the folder " .. path, 2) end
end

-- Lua's own runtime errors: these mean the library (or the program) failed,
-- not the user's input, and keep their position and traceback.
local RUNTIME = { "^attempt to ", "stack overflow", "^table index is ", "^invalid key to 'next'",
                  "^bad argument #%d+ to '[%w_.:]+' %(.-expected" }

--- Runs a program's body. An error is printed as "<name>: <message>" on
-- stderr and the process exits with status 1; positions that point into the
-- library's or the program's own source ("./lua/adcorre/data/fer2013.lua:40:")
-- are dropped, since the message itself names the user's file and line.
-- A runtime error of Lua (attempt to index nil, ...) is a failure of the
-- library: it keeps its traceback and exits with status 3.
function M.main(name, body)
  local ok, err = xpcall(body, function(e)
    if type(e) ~= "string" then return { user = tostring(e) } end
    local msg = e
    repeat
      local before = msg
      msg = msg:gsub("^[%w%./_-]*lua/adcorre/[%w/_]+%.lua:%d+: ", ""):gsub("^[%w%./_-]*examples/[%w_]+%.lua:%d+: ", "")
    until msg == before
    local body = msg:gsub("^[^:\n]+:%d+: ", "")
    for _, pat in ipairs(RUNTIME) do
      if body:find(pat) then return { bug = debug.traceback(e, 2) } end
    end
    return { user = msg }
  end)
  if ok then return end
  io.stdout:flush()
  if err.bug then
    io.stderr:write(name, ": internal error: ", err.bug, "\n")
    os.exit(3, true)
  end
  io.stderr:write(name, ": ", err.user, "\n")
  os.exit(1, true)
end

--- true when stdout is a terminal
function M.stdout_is_tty()
  if M._tty == nil then M._tty = os.execute("test -t 1") == true end
  return M._tty
end

--- A print function: to stdout normally, to stderr when stdout carries JSON.
function M.printer(json_mode)
  local f = json_mode and io.stderr or io.stdout
  return function(s)
    f:write(s, "\n")
    f:flush()
  end
end

----------------------------------------------------------------------------
-- argument parsers
----------------------------------------------------------------------------

local DATASETS = { "synthfer", "fer2013", "ferplus", "rafdb", "affectnet", "folder", "npy" }
M.DATASETS = DATASETS

-- Converters for integer options: "1.5" or "x" is an error naming the
-- option when the command line is parsed, not after an epoch of training.
local function integer(name, min)
  return function(s)
    local v = math.tointeger(tonumber(s))
    if v == nil then return nil, ("option '%s' must be an integer, got '%s'"):format(name, s) end
    if min and v < min then return nil, ("option '%s' must be >= %d, got %d"):format(name, min, v) end
    return v
  end
end
M.integer = integer

local function dataset_options(p)
  p:option("--dataset", "Data set: " .. table.concat(DATASETS, ", ") .. ".", "synthfer")
    :choices(DATASETS)
  p:option("--data", "Path of the data set (file or folder, as the publisher ships it).")
  p:option("--size", "Input size in pixels (default: the data's, 48 for FER-2013).")
    :convert(integer("--size", 8))
  p:option("--channels", "Input channels, 1 or 3 (default: the data's).")
    :convert(integer("--channels", 1))
  p:option("--affectnet-classes", "AffectNet protocol: 7 or 8 classes.", "7"):convert(integer("--affectnet-classes", 7))
  p:option("--limit", "Use at most this many images of each split, evenly spaced over it (0 = all).", "0")
    :convert(integer("--limit", 0))
  p:option("--workers", "Data-loading threads.", "2"):convert(integer("--workers", 0))
  p:flag("--skip-bad", "Skip unreadable images and malformed rows (counted in a warning) instead of stopping.")
end

--- The options of train.lua. With opts.epoch_list, --epochs is kept as the
-- string given (the ablation runner reads a list such as "3,20").
function M.train_parser(opts)
  opts = opts or {}
  local argparse = require("argparse")
  local p = argparse("train.lua", "Train a facial-expression network with the Ad-Corre loss.")
  p:epilog("Every epoch writes OUT/log.csv, OUT/checkpoint.safetensors and, when the accuracy improves, "
    .. "OUT/best.safetensors; at the end OUT/model.safetensors and the plots OUT/confusion.png, "
    .. "OUT/curves.png, OUT/embeddings.png. --resume OUT/checkpoint.safetensors continues a run exactly.")
  dataset_options(p)
  p:option("--eval-split", "Split evaluated after every epoch: test, val or train.", "test")
    :choices({ "test", "val", "train" })
  p:option("--arch", "Network: minixception or xception.", "minixception"):choices({ "minixception", "xception" })
  if opts.epoch_list then
    p:option("--epochs", "Comma-separated epochs at which every run is evaluated; it trains to the largest.", "3,20")
  else
    p:option("--epochs", "Epochs to train.", "10"):convert(integer("--epochs", 1))
  end
  p:option("--batch", "Batch size (the reference uses 50).", "50"):convert(integer("--batch", 1))
  p:option("--optim", "Optimiser: adam, adamw or sgd.", "adam"):choices({ "adam", "adamw", "sgd" })
  p:option("--lr", "Learning rate.", "1e-3"):convert(tonumber)
  p:option("--decay", "Keras time decay: lr / (1 + decay * step).", "1e-5"):convert(tonumber)
  p:option("--momentum", "SGD momentum.", "0.9"):convert(tonumber)
  p:option("--weight-decay", "Weight decay (L2 for adam/sgd, decoupled for adamw).", "0"):convert(tonumber)
  p:option("--schedule", "Learning-rate schedule: none, step (x0.1 every 5 epochs), cosine, cyclic.", "none")
    :choices({ "none", "step", "cosine", "cyclic" })
  p:option("--clip", "Clip gradients to this global norm (0 = off).", "0"):convert(tonumber)
  p:option("--k", "Number of embedding heads.", "10"):convert(integer("--k", 1))
  p:option("--d", "Size of each embedding.", "256"):convert(integer("--d", 2))
  p:option("--lambda", "Weight of the cross-entropy (default 50 / classes).")
    :convert(tonumber)
  p:flag("--no-fd", "Leave out the Feature Discriminator.")
  p:flag("--no-md", "Leave out the Mean Discriminator.")
  p:flag("--no-ed", "Leave out the Embedding Discriminator.")
  p:flag("--ce-only", "Cross-entropy only (no FD, MD or ED).")
  p:flag("--no-adaptive", "FD without the adaptive weights.")
  p:option("--md-mode", "MD over the classes present in the batch, or as the released code.", "present")
    :choices({ "present", "reference" })
  p:flag("--reference", "The released code's loss balance (CE over B*C with lambda 50, FD unweighted, md reference).")
  p:flag("--detach", "FD, MD and ED computed and reported but passing no gradient, as the released code trains.")
  p:option("--augment", "Augmentation preset: none, light, standard, masked.", "standard")
  p:flag("--balanced", "Class-balanced sampling (for unbalanced sets such as AffectNet).")
  p:option("--threads", "Compute threads (BLAS and the library's loops).", "2"):convert(integer("--threads", 1))
  p:option("--seed", "Random seed (initialisation, shuffling, augmentation, dropout).", "1"):convert(integer("--seed", 0))
  p:option("--out", "Output folder.", "out/train")
  p:option("--resume", "Continue from a checkpoint (OUT/checkpoint.safetensors).")
  p:option("--init", "Start from Keras weights (.h5: save_weights, ImageNet xception_weights_..._notop.h5, "
    .. "or a full model); a file without the top fills the trunk only.")
  p:option("--freeze-trunk", "Fine-tuning: keep the trunk fixed for the first N epochs.", "0"):convert(tonumber)
  p:option("--trunk-lr-mult", "Fine-tuning: the trunk's learning rate is this times --lr.", "1"):convert(tonumber)
  p:flag("--skip-nonfinite", "Skip batches whose loss or gradients are NaN or Inf (counted) instead of stopping.")
  p:flag("--no-plots", "Do not draw the PNG plots.")
  p:flag("--json", "Print one JSON object with the results on the last line of stdout (other output goes to stderr).")
  p:flag("--distributed", "Data-parallel over MPI ranks (implied under mpirun or srun): --batch is per rank.")
  p:option("--lr-scale", "Learning rate under --distributed: none (as given) or linear (x ranks).", "none")
    :choices({ "none", "linear" })
  return p
end

function M.evaluate_parser()
  local argparse = require("argparse")
  local p = argparse("evaluate.lua", "Evaluate a trained model on a data set split.")
  p:option("--model", "Model file: .safetensors (train.lua, ac.save, convert.lua) or Keras .h5."):args(1)
  p:option("--classes", "Class names of a Keras model's outputs: fer2013, rafdb, affectnet, canonical or NAME,...")
  p:option("--input-range", "Input values for black,white the model was trained on, e.g. 0,1 or -1,1.")
  dataset_options(p)
  p:option("--split", "Split to evaluate: test, val or train.", "test"):choices({ "test", "val", "train" })
  p:option("--batch", "Batch size.", "100"):convert(integer("--batch", 1))
  p:option("--threads", "Compute threads.", "2"):convert(integer("--threads", 1))
  p:option("--out", "Folder for the plots (confusion.png, embeddings.png).")
  p:option("--embedding-plot", "Projection for the embedding plot: pca or tsne.", "pca"):choices({ "pca", "tsne" })
  p:flag("--json", "Print one JSON object with the results on the last line of stdout.")
  return p
end

----------------------------------------------------------------------------
-- settings stored with checkpoints (for --resume)
----------------------------------------------------------------------------

local SETTING_KEYS = { "dataset", "data", "size", "channels", "affectnet_classes", "limit", "skip_bad", "eval_split",
  "arch", "batch", "optim", "lr", "decay", "momentum", "weight_decay", "schedule", "clip", "k", "d", "lambda",
  "no_fd", "no_md", "no_ed", "ce_only", "no_adaptive", "md_mode", "reference", "detach", "augment", "balanced",
  "seed", "skip_nonfinite", "workers", "lr_scale" }

function M.settings(args)
  local s = {}
  for _, k in ipairs(SETTING_KEYS) do s[k] = args[k] end
  return s
end

function M.read_settings(path)
  local _, meta = require("adcorre.serialize").load_tensors(path)
  local extra = meta.extra and json.decode(meta.extra) or {}
  if type(extra.settings) ~= "table" then
    error("resume: " .. path .. " is not a checkpoint written by train.lua (no settings)", 0)
  end
  return extra
end

--- The run's settings come from the checkpoint; epochs, threads, output and
-- display options from the command line.
function M.merge_resumed(args, ck)
  local merged = {}
  for k, v in pairs(args) do merged[k] = v end
  for _, k in ipairs(SETTING_KEYS) do merged[k] = ck.settings[k] end
  return merged
end

----------------------------------------------------------------------------
-- model, loss and optimiser
----------------------------------------------------------------------------

function M.build_model(args, info)
  local ctor = ac.models[args.arch]
  if not ctor then error("unknown --arch " .. tostring(args.arch), 0) end
  return ctor({ in_channels = info.channels, size = info.size, classes = #info.classes, k = args.k, d = args.d })
end

function M.build_loss(args, C, extra)
  local o = { classes = C }
  for k, v in pairs(extra or {}) do o[k] = v end
  if args.reference then o.reference = true end
  if args.lambda then o.lambda = args.lambda end
  if args.ce_only then
    o.fd, o.md, o.ed = false, false, false
  else
    if args.no_fd then o.fd = false end
    if args.no_md then o.md = false end
    if args.no_ed then o.ed = false end
  end
  if args.no_adaptive then o.adaptive = false end
  if args.detach then o.detach = true end
  if not args.reference or args.md_mode ~= "present" then o.md_mode = args.md_mode end
  return ac.AdCorreLoss(o)
end

function M.describe_loss(args, loss)
  local c = loss.config
  local parts = { "CE x " .. string.format("%.4g", c.lambda) }
  if c.fd then parts[#parts + 1] = c.adaptive and "FD (adaptive)" or "FD" end
  if c.md then parts[#parts + 1] = "MD (" .. tostring(c.md_mode) .. ")" end
  if c.ed then parts[#parts + 1] = "ED" end
  local s = table.concat(parts, " + ")
  if c.detach and (c.fd or c.md or c.ed) then s = s .. " (FD, MD, ED detached)" end
  return s
end

function M.build_optimizer(args, model)
  local cfg = { lr = args.lr, decay = args.decay, weight_decay = args.weight_decay ~= 0 and args.weight_decay or nil }
  if args.schedule == "step" then
    cfg.schedule = ac.optim.schedules.step({ every = 5, gamma = 0.1 })
  elseif args.schedule == "cosine" then
    cfg.schedule = ac.optim.schedules.cosine({ T = args.epochs })
  elseif args.schedule == "cyclic" then
    cfg.schedule = ac.optim.schedules.cyclic({ base = args.lr / 10, max = args.lr })
  end
  if args.optim == "sgd" then
    cfg.momentum = args.momentum
    return ac.optim.SGD(model, cfg)
  elseif args.optim == "adamw" then
    return ac.optim.AdamW(model, cfg)
  end
  return ac.optim.Adam(model, cfg)
end

----------------------------------------------------------------------------
-- data
----------------------------------------------------------------------------

local SPLIT_FALLBACK = { test = { "test", "val" }, val = { "val", "test" }, train = { "train" } }

--- Opens the training split and the evaluation split of args.dataset.
-- Returns train_set, eval_set, info = {classes, channels, size, eval_split}.
function M.open_datasets(args, want_train)
  if want_train == nil then want_train = true end
  local mod = ac.data[args.dataset]
  if not mod then error("unknown --dataset " .. tostring(args.dataset), 0) end
  if args.dataset ~= "synthfer" and not args.data then
    error(("--data is required for --dataset %s (the path of the data as its publisher ships it)"):format(args.dataset), 0)
  end
  local opts = { path = args.data, channels = args.channels, skip_bad = args.skip_bad or nil }
  if args.dataset == "affectnet" then opts.classes = args.affectnet_classes end
  if args.dataset == "synthfer" and args.synth_n then opts.n = args.synth_n end
  local splits = mod.splits(opts)
  local eval_name = args.eval_split or args.split or "test"
  local eval_set
  for _, name in ipairs(SPLIT_FALLBACK[eval_name] or { eval_name }) do
    if splits[name] and #splits[name] > 0 then
      eval_set, eval_name = splits[name], name
      break
    end
  end
  if not eval_set then
    local have = {}
    for k in pairs(splits) do have[#have + 1] = k end
    table.sort(have)
    error(("%s at %s has no '%s' split (it has: %s)"):format(args.dataset, tostring(args.data), eval_name,
      table.concat(have, ", ")), 0)
  end
  if args.limit and args.limit > 0 then
    if eval_set == splits.train then
      eval_set = eval_set:head(args.limit)
      splits.train = eval_set
    else
      eval_set = eval_set:head(args.limit)
      if splits.train then splits.train = splits.train:head(args.limit) end
    end
  end
  local train_set = splits.train
  if want_train and (not train_set or #train_set == 0) then
    error(("%s at %s has no training images"):format(args.dataset, tostring(args.data)), 0)
  end
  local ref = train_set or eval_set
  local size = args.size or ref.height or 48
  if not args.size and ref.height and ref.width and ref.height ~= ref.width then size = math.max(ref.height, ref.width) end
  local info = {
    classes = ref.classes, channels = args.channels or ref.channels or 1, size = size, eval_split = eval_name,
  }
  args.eval_split = eval_name
  return train_set, eval_set, info
end

--- A loader over `ds`: shuffled and augmented for training, in order and
-- plain for evaluation; shard ({rank, size, pad}) for data-parallel runs.
function M.loader(ds, args, info, train, shard)
  return ac.data.Loader(ds, {
    shard = shard,
    batch = args.batch, shuffle = train, augment = train and args.augment or "none",
    workers = args.workers or 2, seed = args.seed or 1, size = info.size, channels = info.channels,
    balanced = train and args.balanced or nil, skip_bad = args.skip_bad or nil,
  })
end

----------------------------------------------------------------------------
-- plots
----------------------------------------------------------------------------

--- confusion.png, curves.png (when there is a history) and embeddings.png in out_dir.
function M.plots(out_dir, tr, model, eval_loader, info, summary, method, evaluator)
  ac.plot.confusion(out_dir .. "/confusion.png", ac.tensor(summary.confusion), info.classes,
    { title = ("Confusion (%s accuracy %.2f%%)"):format(info.eval_split, 100 * summary.accuracy) })
  if tr.history and #tr.history > 0 then
    local ep, tl, ta, ea = {}, {}, {}, {}
    for i, h in ipairs(tr.history) do ep[i], tl[i], ta[i], ea[i] = h.epoch, h.train_loss, h.train_accuracy, h.accuracy end
    ac.plot.curves(out_dir .. "/curves.png", {
      title = "Training", xlabel = "epoch", ylabel = "accuracy",
      series = { { name = "train accuracy", x = ep, y = ta }, { name = info.eval_split .. " accuracy", x = ep, y = ea } },
    })
    ac.plot.curves(out_dir .. "/loss.png", {
      title = "Training loss", xlabel = "epoch", ylabel = "loss",
      series = { { name = "train loss", x = ep, y = tl } },
    })
  end
  local r = (evaluator or tr):evaluate(eval_loader, { keep_embeddings = true })
  local X, y = r.embeddings, r.labels
  local n = X:size(1)
  if n > 2000 then X, y = X:narrow(1, 1, 2000), y:narrow(1, 1, 2000) end
  ac.plot.embedding(out_dir .. "/embeddings.png", X, y, info.classes,
    { method = method or "pca", title = "Embeddings (" .. (method or "pca") .. ")" })
end

----------------------------------------------------------------------------
-- progress display
----------------------------------------------------------------------------

local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, (s % 3600) // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

--- A progress callback for the trainer: a redrawn bar on a terminal, a plain
-- line every few seconds otherwise (to stderr when --json).
function M.progress_bar(args, nbatches)
  local tty = M.stdout_is_tty() and not args.json
  local f = args.json and io.stderr or io.stdout
  local last = 0
  return function(p)
    local now = ac.now()
    local done = p.step
    local total = nbatches or p.nbatches or 0
    local eta = (done > 0 and total > 0) and p.elapsed / done * (total - done) or 0
    local parts = string.format("loss %.4f ce %.4f fd %.4f md %.4f ed %.4f acc %.2f%% | %.0f img/s",
      p.loss, p.ce, p.fd, p.md, p.ed, 100 * p.accuracy, p.images_per_s)
    if tty then
      if now - last < 0.1 and done < total then return end
      last = now
      local width = 24
      local filled = total > 0 and math.floor(width * done / total) or 0
      f:write(string.format("\r\27[Kepoch %d [%s%s] %d/%d %s ETA %s", p.epoch, string.rep("=", filled),
        string.rep(" ", width - filled), done, total, parts, fmt_time(eta)))
      f:flush()
    else
      if now - last < 10 and done < total then return end
      last = now
      f:write(string.format("epoch %d step %d/%d %s elapsed %s ETA %s\n", p.epoch, done, total, parts,
        fmt_time(p.elapsed), fmt_time(eta)))
      f:flush()
    end
  end
end

function M.progress_done(args)
  if M.stdout_is_tty() and not args.json then
    io.stdout:write("\n")
    io.stdout:flush()
  end
end

return M
