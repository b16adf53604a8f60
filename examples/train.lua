--- examples/train.lua - train a facial-expression network with the Ad-Corre loss.
--
--   lua5.4 examples/train.lua --dataset synthfer --data out/synth --epochs 5 --out out/run
--   lua5.4 examples/train.lua --dataset fer2013 --data ~/data/fer2013 --epochs 40
--   lua5.4 examples/train.lua --resume out/run/checkpoint.safetensors
--   lua5.4 examples/train.lua --arch xception --init xception_weights_tf_dim_ordering_tf_kernels_notop.h5 \
--       --freeze-trunk 2 --trunk-lr-mult 0.1 --dataset rafdb --data ~/data/RAF-DB --size 224 --channels 3
--   mpirun -np 4 lua5.4 examples/train.lua --dataset npy --data D --batch 50   (global batch 200)
--
-- Under mpirun or srun (or with --distributed) the run is data-parallel
-- (adcorre.distributed_train): each rank trains on its shard of every epoch
-- with the Ad-Corre loss of the global batch; rank 0 alone prints and writes.
--
-- After every epoch: accuracy, mean per-class accuracy, the row-normalised
-- confusion matrix and per-class precision / recall / F1, a row of
-- out/log.csv, a checkpoint (model, optimiser, epoch, generator, confusion
-- history) written atomically, and the best model so far in out/best.safetensors.
local ac = require("adcorre")
local cli = require("adcorre.cli")
local trainer = require("adcorre.trainer")
local metrics = require("adcorre.metrics")
local json = require("adcorre.json")
local dtrain = require("adcorre.distributed_train")

cli.main("train.lua", function()

local parser = cli.train_parser()
local args = parser:parse()

local D = dtrain.start(args) -- nil: one process
local root = D == nil or D.root
local out_dir = args.out
if root then cli.mkdir(out_dir) end
local say = root and cli.printer(args.json) or function() end

----------------------------------------------------------------------------
-- resume: the checkpoint's settings win over the command line's defaults
----------------------------------------------------------------------------
local resume_ck
if args.resume then
  resume_ck = cli.read_settings(args.resume)
  args = cli.merge_resumed(args, resume_ck, parser)
end

ac.set_num_threads(args.threads)
ac.manual_seed(args.seed)

----------------------------------------------------------------------------
-- data
----------------------------------------------------------------------------
local train_set, eval_set, info = cli.open_datasets(args)
local C = #info.classes
say(("data: %s%s, train %d images, %s %d images, %d classes, input %dx%dx%d"):format(
  args.dataset, args.data and (" from " .. args.data) or " (generated)", #train_set, args.eval_split, #eval_set, C, info.channels, info.size, info.size))

local train_loader = cli.loader(train_set, args, info, true, D and D:shard(true))
local eval_loader = cli.loader(eval_set, args, info, false, D and D:shard(false))

----------------------------------------------------------------------------
-- model, loss, optimiser
----------------------------------------------------------------------------
local model = cli.build_model(args, info)
local loss = cli.build_loss(args, C, D and { distributed = true })
local init_report
if args.init and not args.resume then
  local _, r = ac.keras.load_weights(model, args.init)
  init_report = { file = args.init, paired = r.paired, trunk_only = r.trunk_only, ignored = r.ignored }
  say(("init: %d layers from %s%s"):format(r.paired, args.init, r.trunk_only and " (trunk only)" or ""))
end
if D then
  D:prepare(model)
  args.lr_given, args.lr = args.lr, D:lr(args)
end
local opt = cli.build_optimizer(args, model)
if D then args.lr = args.lr_given end -- the checkpoint keeps the lr as given
local ft
if (args.freeze_trunk or 0) > 0 or (args.trunk_lr_mult or 1) ~= 1 then
  ft = require("adcorre.finetune").trunk(opt, model, { freeze_epochs = args.freeze_trunk, lr_mult = args.trunk_lr_mult })
end
say(("model: %s, %d trainable parameters; loss: %s"):format(args.arch, model:nparams(), cli.describe_loss(args, loss)))
if D then say(D:describe(args)) end

local log_columns = { "epoch", "lr", "train_loss", "train_ce", "train_fd", "train_md", "train_ed", "train_accuracy",
  "eval_loss", "accuracy", "mean_class_accuracy", "images_per_s", "seconds", "skipped" }
for _, name in ipairs(info.classes) do
  log_columns[#log_columns + 1] = "f1_" .. name
end

local topts = {
  model = model, loss = loss, optim = opt, classes = info.classes,
  clip = (args.clip or 0) > 0 and args.clip or nil, skip_nonfinite = args.skip_nonfinite,
}
local tr = trainer.new(D and D:trainer_opts(topts, loss) or topts)

local start_epoch = 1
if args.resume then
  local epoch = tr:load_checkpoint(args.resume)
  start_epoch = epoch + 1
  say(("resumed from %s after epoch %d"):format(args.resume, epoch))
end
-- a resumed run keeps the log's rows up to the checkpoint's epoch; a new run starts a new log
local log = root and metrics.CSVLog(out_dir .. "/log.csv", log_columns, args.resume
  and { keep = function(row) return (tonumber(row.epoch) or math.huge) < start_epoch end }
  or { fresh = true })

local nb = train_loader:nbatches()
if root then tr.progress = cli.progress_bar(args, nb) end

local last_summary, last_train, last_conf
for epoch = start_epoch, args.epochs do
  if ft then ft:set_epoch(epoch) end
  local s = tr:train_epoch(train_loader, epoch, nb)
  if root then cli.progress_done(args) end
  local r, conf = tr:evaluate(eval_loader)
  last_summary, last_train, last_conf = r, s, conf
  local row = {
    epoch = epoch, lr = opt.last_lr or opt:get_lr(), train_loss = s.total, train_ce = s.ce, train_fd = s.fd,
    train_md = s.md, train_ed = s.ed, train_accuracy = s.accuracy, eval_loss = r.loss, accuracy = r.accuracy,
    mean_class_accuracy = r.mean_class_accuracy, images_per_s = s.images_per_s, seconds = s.seconds,
    skipped = s.skipped,
  }
  for i, name in ipairs(info.classes) do row["f1_" .. name] = r.f1[i] end
  if root then log:write(row) end
  tr.history[#tr.history + 1] = {
    epoch = epoch, train_loss = s.total, train_accuracy = s.accuracy, eval_loss = r.loss, accuracy = r.accuracy,
  }
  say(("epoch %d/%d  loss %.4f (ce %.4f fd %.4f md %.4f ed %.4f)  train acc %.2f%%  %s acc %.2f%%  mean class acc %.2f%%  %.0f img/s%s"):format(
    epoch, args.epochs, s.total, s.ce, s.fd, s.md, s.ed, 100 * s.accuracy, args.eval_split, 100 * r.accuracy,
    100 * r.mean_class_accuracy, s.images_per_s, s.skipped > 0 and ("  skipped " .. s.skipped) or ""))
  local improved = tr.best == nil or r.accuracy > tr.best
  if improved then
    tr.best, tr.best_epoch = r.accuracy, epoch
    if root then ac.save(out_dir .. "/best.safetensors", model, { classes = info.classes, epoch = epoch, accuracy = r.accuracy,
      size = info.size, channels = info.channels, normalize = info.normalize }) end
  end
  if root then tr:save_checkpoint(out_dir .. "/checkpoint.safetensors", epoch, { settings = cli.settings(args) }) end
end

if last_summary == nil then
  -- nothing left to train (resumed after the last epoch): evaluate the model as it is
  last_summary, last_conf = tr:evaluate(eval_loader)
end

say("")
say(last_conf:format(info.classes))
if root then
  ac.save(out_dir .. "/model.safetensors", model, { classes = info.classes, epoch = args.epochs,
    accuracy = last_summary.accuracy, size = info.size, channels = info.channels, normalize = info.normalize })
end

if root and not args.no_plots then
  -- (distributed: the embedding plot shows rank 0's shard, evaluated without the collectives)
  cli.plots(out_dir, tr, model, eval_loader, info, last_summary, nil,
    D and trainer.new({ model = model, loss = topts.eval_loss, optim = opt, classes = info.classes }))
  say(("plots: %s/confusion.png %s/curves.png %s/embeddings.png"):format(out_dir, out_dir, out_dir))
end
say(("saved %s/model.safetensors (best %s accuracy %.2f%% at epoch %s: %s/best.safetensors)"):format(
  out_dir, args.eval_split, 100 * (tr.best or last_summary.accuracy), tostring(tr.best_epoch), out_dir))

if root and args.json then
  local res = {
    accuracy = last_summary.accuracy, mean_class_accuracy = last_summary.mean_class_accuracy,
    confusion = last_summary.confusion, classes = info.classes, precision = last_summary.precision,
    recall = last_summary.recall, f1 = last_summary.f1, epochs = args.epochs, best_accuracy = tr.best,
    best_epoch = tr.best_epoch, train_images_per_s = last_train and last_train.images_per_s or nil,
    skipped_batches = tr.skipped, model = out_dir .. "/model.safetensors", split = args.eval_split,
    train_images = #train_set, eval_images = #eval_set,
    skipped_images = train_loader:skipped() + eval_loader:skipped(),
    init = init_report,
  }
  io.stdout:write(json.encode(res), "\n")
end
train_loader:close()
eval_loader:close()
if D then D:finish() end
end)
