--- examples/demo.lua - the whole pipeline on a fresh machine, without any download:
-- synthfer faces written as a fer2013.csv, a mini-Xception trained with the
-- Ad-Corre loss through the FER-2013 loader, the test accuracy and confusion
-- matrix, the saved model and plots under out/, and predictions on a few
-- images. `make demo` runs it.
--
--   lua5.4 examples/demo.lua [--epochs N] [--train N] [--out DIR] [--threads N]
local ac = require("adcorre")
local argparse = require("argparse")
local cli = require("adcorre.cli")

local p = argparse("demo.lua", "Train and use an Ad-Corre mini-Xception on synthetic faces.")
p:option("--out", "Output folder.", "out")
p:option("--train", "Training images to generate.", "15000"):convert(cli.integer("--train", 1))
p:option("--test", "Test (PrivateTest) images to generate.", "2000"):convert(cli.integer("--test", 1))
p:option("--epochs", "Training epochs.", "6"):convert(cli.integer("--epochs", 1))
p:option("--threads", "Compute threads.", "2"):convert(cli.integer("--threads", 1))
p:option("--seed", "Seed of the data and of training.", "1"):convert(cli.integer("--seed", 0))
local args = p:parse()

local function run(cmd)
  io.stdout:write("$ ", cmd, "\n")
  io.stdout:flush()
  local ok, how, code = os.execute(cmd)
  if not ok then error(("demo: command failed (%s %s): %s"):format(tostring(how), tostring(code), cmd), 0) end
end

local q = cli.shell_quote
local data_dir = args.out .. "/synthfer"
cli.mkdir(data_dir)
local csv = data_dir .. "/fer2013.csv"
local t0 = ac.now()
local info = ac.synthfer.write_csv(csv, { seed = args.seed, train = args.train, public = 500, private = args.test })
print(("wrote %s: %d rows (Training %d, PublicTest 500, PrivateTest %d) in %.1f s"):format(csv, info.rows,
  args.train, args.test, ac.now() - t0))

local lua = arg[-1] or "lua5.4"
local run_dir = args.out .. "/demo"
run(("%s examples/train.lua --dataset fer2013 --data %s --arch minixception --epochs %d --batch 50 "
  .. "--threads %d --seed %d --out %s --augment light"):format(lua, q(csv), args.epochs, args.threads, args.seed, q(run_dir)))

-- a few test faces as image files, in both formats predict.lua reads
local ds = ac.data.fer2013 { path = csv, split = "test" }
local imgs = {}
for i = 1, 4 do
  local img, label = ds:get(i)
  local name = ("%s/face%d_%s.%s"):format(data_dir, i, ds.classes[label], i % 2 == 1 and "png" or "jpg")
  ac.image.save(name, img)
  imgs[#imgs + 1] = q(name)
end
run(("%s examples/predict.lua --model %s %s"):format(lua, q(run_dir .. "/model.safetensors"), table.concat(imgs, " ")))
print(("demo finished in %.0f s; model, log, checkpoint and plots are in %s"):format(ac.now() - t0, run_dir))
