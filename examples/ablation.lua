--- examples/ablation.lua - the Ad-Corre ablation study: the same network,
-- data and seed trained with CE only, CE + FD, CE + FD + MD and the full loss
-- (CE + FD + MD + ED), then a table of test accuracies like the paper's.
--
--   lua5.4 examples/ablation.lua --dataset synthfer --epochs 3
--   lua5.4 examples/ablation.lua --dataset rafdb --data ~/data/RAF-DB/basic --epochs 20 --json
--
-- Takes every option of train.lua (see --help); --out holds one folder per variant.
local ac = require("adcorre")
local cli = require("adcorre.cli")
local json = require("adcorre.json")
local trainer = require("adcorre.trainer")

local parser = cli.train_parser()
parser:name("ablation.lua")
parser:description("Train one network per loss variant (CE, CE+FD, CE+FD+MD, Ad-Corre) and compare them.")
local args = parser:parse()
local say = cli.printer(args.json)
ac.set_num_threads(args.threads)

local variants = {
  { name = "CE", ce_only = true },
  { name = "CE + FD", no_md = true, no_ed = true },
  { name = "CE + FD + MD", no_ed = true },
  { name = "Ad-Corre (CE + FD + MD + ED)" },
}

local results = {}
for vi, v in ipairs(variants) do
  local a = {}
  for k, val in pairs(args) do a[k] = val end
  a.ce_only, a.no_fd, a.no_md, a.no_ed = v.ce_only, v.no_fd, v.no_md, v.no_ed
  ac.manual_seed(args.seed)
  local train_set, eval_set, info = cli.open_datasets(a)
  local train_loader, eval_loader = cli.loader(train_set, a, info, true), cli.loader(eval_set, a, info, false)
  local model = cli.build_model(a, info)
  local loss = cli.build_loss(a, #info.classes)
  local tr = trainer.new({ model = model, loss = loss, optim = cli.build_optimizer(a, model), classes = info.classes })
  say(("[%d/%d] %s: %s"):format(vi, #variants, v.name, cli.describe_loss(a, loss)))
  local best, last = 0, nil
  for epoch = 1, args.epochs do
    local s = tr:train_epoch(train_loader, epoch)
    last = tr:evaluate(eval_loader)
    best = math.max(best, last.accuracy)
    say(("  epoch %d: loss %.4f, train acc %.2f%%, %s acc %.2f%%"):format(epoch, s.total, 100 * s.accuracy,
      info.eval_split, 100 * last.accuracy))
  end
  local dir = args.out .. "/" .. v.name:gsub("[^%w]+", "_"):gsub("_+$", "")
  cli.mkdir(dir)
  ac.save(dir .. "/model.safetensors", model, { classes = info.classes, size = info.size, channels = info.channels })
  results[vi] = { variant = v.name, accuracy = last.accuracy, best_accuracy = best,
    mean_class_accuracy = last.mean_class_accuracy }
  train_loader:close()
  eval_loader:close()
end

say("")
say(("%-30s %10s %10s %12s"):format("loss", "accuracy", "best", "mean class"))
for _, r in ipairs(results) do
  say(("%-30s %9.2f%% %9.2f%% %11.2f%%"):format(r.variant, 100 * r.accuracy, 100 * r.best_accuracy,
    100 * r.mean_class_accuracy))
end
if args.json then io.stdout:write(json.encode({ ablation = results, epochs = args.epochs, dataset = args.dataset }), "\n") end
