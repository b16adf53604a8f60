--- examples/evaluate.lua - every metric of a trained model on a data set split.
--
--   lua5.4 examples/evaluate.lua --model out/train/model.safetensors --dataset fer2013 --data fer2013.csv
--   lua5.4 examples/evaluate.lua --model m.safetensors --dataset synthfer --split test --out out/eval --json
--
-- Prints the accuracy, the mean per-class accuracy, the row-normalised
-- confusion matrix and per-class precision / recall / F1; with --out, draws
-- confusion.png and embeddings.png there.
local ac = require("adcorre")
local cli = require("adcorre.cli")
local json = require("adcorre.json")
local predict = require("adcorre.predict")
local trainer = require("adcorre.trainer")

cli.main("evaluate.lua", function()

local args = cli.evaluate_parser():parse()
ac.set_num_threads(args.threads)
local say = cli.printer(args.json)

local model, minfo = predict.load_model(args.model)
args.size = args.size or minfo.size
args.channels = args.channels or minfo.channels
args.eval_split = args.split
local _, eval_set, info = cli.open_datasets(args, false)
if #info.classes ~= #minfo.classes then
  error(("evaluate: the model has %d classes (%s), the data set %d (%s)"):format(#minfo.classes,
    table.concat(minfo.classes, ", "), #info.classes, table.concat(info.classes, ", ")), 0)
end
say(("evaluating %s on %s %s: %d images, input %dx%dx%d"):format(args.model, args.dataset, info.eval_split,
  #eval_set, info.channels, info.size, info.size))

local loader = cli.loader(eval_set, args, info, false)
local tr = trainer.new({ model = model, loss = ac.AdCorreLoss({ classes = #info.classes }), optim = {},
  classes = info.classes })
local t0 = ac.now()
local r, conf = tr:evaluate(loader)
local dt = ac.now() - t0
say(conf:format(info.classes))
say(("%.0f images/s"):format(r.images / math.max(dt, 1e-9)))

if args.out then
  cli.mkdir(args.out)
  cli.plots(args.out, { history = {} }, model, loader, info, r, args.embedding_plot, tr)
  say(("plots: %s/confusion.png %s/embeddings.png"):format(args.out, args.out))
end

if args.json then
  io.stdout:write(json.encode({
    accuracy = r.accuracy, mean_class_accuracy = r.mean_class_accuracy, confusion = r.confusion,
    classes = info.classes, precision = r.precision, recall = r.recall, f1 = r.f1, support = r.support,
    images = r.images, split = info.eval_split, model = args.model, images_per_s = r.images / math.max(dt, 1e-9),
  }), "\n")
end
loader:close()
end)
