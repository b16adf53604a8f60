--- examples/evaluate.lua - every metric of a trained model on a data set split.
--
--   lua5.4 examples/evaluate.lua --model out/train/model.safetensors --dataset fer2013 --data fer2013.csv
--   lua5.4 examples/evaluate.lua --model m.safetensors --dataset synthfer --split test --out out/eval --json
--   lua5.4 examples/evaluate.lua --model fer2013_mini_XCEPTION.hdf5 --classes fer2013 --input-range=-1,1 \
--       --dataset fer2013 --data fer2013.csv
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

local model, minfo = predict.load_model(args.model, { classes = args.classes, input_range = args.input_range })
args.size = args.size or minfo.size
args.channels = args.channels or minfo.channels
args.eval_split = args.split
local _, eval_set, info = cli.open_datasets(args, false)
if #info.classes ~= #minfo.classes then
  error(("evaluate: the model has %d classes (%s), the data set %d (%s)"):format(#minfo.classes,
    table.concat(minfo.classes, ", "), #info.classes, table.concat(info.classes, ", ")), 0)
end
-- the model's output order (e.g. FER-2013's for a Keras model) -> the data set's
local perm, same = {}, true
for j, name in ipairs(info.classes) do
  for i, m in ipairs(minfo.classes) do if m == name then perm[j] = i end end
  if not perm[j] then
    error(("evaluate: the data set's class %s is not among the model's (%s); name them with --classes"):format(
      name, table.concat(minfo.classes, ", ")), 0)
  end
  same = same and perm[j] == j
end
local eval_model = model
if not same and model.__typename == "models.AdCorreNet" then
  eval_model = setmetatable({
    forward = function(_, x)
      local o = model:forward(x)
      return { logits = o.logits:index_select(2, perm), embeddings = o.embeddings }
    end,
  }, { __index = model })
end
say(("evaluating %s on %s %s: %d images, input %dx%dx%d"):format(args.model, args.dataset, info.eval_split,
  #eval_set, info.channels, info.size, info.size))

local loader = cli.loader(eval_set, args, info, false)
local tr = trainer.new({ model = eval_model, loss = ac.AdCorreLoss({ classes = #info.classes }), optim = {},
  classes = info.classes })
-- the loader gives [0, 1]; a model trained on another range gets its own
local lo, hi = minfo.input_range[1], minfo.input_range[2]
local function batches()
  local it = loader:epoch()
  return function()
    local x, y = it()
    if x ~= nil and (lo ~= 0 or hi ~= 1) then x = x * (hi - lo) + lo end
    return x, y
  end
end
local t0 = ac.now()
local r, conf
if model.__typename == "models.AdCorreNet" then
  r, conf = tr:evaluate(batches())
else
  -- a plain classifier (an imported Keras graph): its first output's argmax
  model:evaluate()
  conf = require("adcorre.metrics").Confusion(#info.classes)
  local n = 0
  for x, y in batches() do
    local out = model:forward(x)
    if not ac.is_tensor(out) then out = out[1] end
    conf:add(same and out:argmax(2) or out:index_select(2, perm):argmax(2), y)
    n = n + x:size(1)
  end
  r = trainer.summary(conf, info.classes)
  r.images = n
end
local dt = ac.now() - t0
say(conf:format(info.classes))
say(("%.0f images/s"):format(r.images / math.max(dt, 1e-9)))

if args.out and model.__typename == "models.AdCorreNet" then
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
