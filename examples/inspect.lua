--- examples/inspect.lua - counts per split and class of a FER data set, and a
-- preview grid of augmented training samples.
--
--   lua5.4 examples/inspect.lua --dataset fer2013 --data ~/data/fer2013.csv
--   lua5.4 examples/inspect.lua --dataset rafdb --data ~/data/RAF-DB/basic --json
--   lua5.4 examples/inspect.lua --dataset synthfer --data none --preview faces.png --augment masked
--
-- --json prints one object: {"classes": [...], "splits": {"train": {"<class>": count, ...}, ...}}.
local here = (arg and arg[0] or ""):match("^(.-)/?examples/[^/]*$")
if here then
  if here == "" then here = "." end
  package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
  package.cpath = here .. "/build/?.so;" .. package.cpath
end

local ac = require("adcorre")
local argparse = require("argparse")
local cli = require("adcorre.cli")
local json = require("adcorre.json")

local parser = argparse("inspect.lua", "Counts per split and class of a FER data set; a grid of augmented samples.")
parser:option("--dataset", "Data set: " .. table.concat(ac.data.datasets, ", ") .. "."):count(1)
parser:option("--data", "Path to the data (file or folder; ignored by synthfer unless it names a fer2013.csv)."):count(1)
parser:flag("--json", "Print the counts as one JSON object.")
parser:option("--preview", "Write a PNG grid of augmented training samples to this file.")
parser:option("--augment", "Augmentation preset for the preview: " .. table.concat(ac.augment.presets, ", ") .. ".", "standard")
parser:option("--rows", "Preview rows.", "4"):convert(cli.integer("--rows", 1))
parser:option("--cols", "Preview columns.", "8"):convert(cli.integer("--cols", 1))
parser:option("--size", "Preview image size (default: the data's).", nil):convert(cli.integer("--size", 8))
parser:option("--classes", "AffectNet protocol: 7 or 8 classes.", "7"):convert(cli.integer("--classes", 1))
parser:option("--n", "synthfer: samples in the train split (val/test get n/10).", "2000"):convert(cli.integer("--n", 1))
parser:option("--seed", "Seed for the preview and synthfer.", "1"):convert(cli.integer("--seed", 0))
parser:flag("--skip-bad", "Skip malformed rows / files (counted in a warning) instead of stopping.")

local args = parser:parse()
local name = args.dataset
local ok_name = false
for _, d in ipairs(ac.data.datasets) do if d == name then ok_name = true end end
if not ok_name then
  io.stderr:write(("inspect.lua: unknown data set '%s' (known: %s)\n"):format(name, table.concat(ac.data.datasets, ", ")))
  os.exit(2)
end

ac.manual_seed(math.tointeger(args.seed) or 1)
local opts = { path = args.data, skip_bad = args.skip_bad }
if name == "affectnet" then opts.classes = math.tointeger(args.classes) end
if name == "synthfer" then
  local n = math.tointeger(args.n) or 2000
  local kind = ac.data.util.kind(args.data)
  if kind == nil then opts.path = nil end -- generate in memory
  opts.n = nil
  local splits = {}
  if opts.path then
    splits = ac.data.synthfer.splits(opts)
  else
    for _, s in ipairs({ "train", "val", "test" }) do
      splits[s] = ac.data.synthfer { split = s, n = s == "train" and n or math.max(1, n // 10),
                                     seed = math.tointeger(args.seed) or 1 }
    end
  end
  ac.data._inspect_splits = splits
end

local ok, splits = pcall(function()
  if ac.data._inspect_splits then return ac.data._inspect_splits end
  return ac.data.splits(name, opts)
end)
if not ok then
  io.stderr:write("inspect.lua: " .. tostring(splits) .. "\n")
  os.exit(1)
end

local order = { "train", "val", "test", "all" }
local names = {}
for _, s in ipairs(order) do if splits[s] then names[#names + 1] = s end end
if #names == 0 then
  io.stderr:write("inspect.lua: no splits found at " .. tostring(args.data) .. "\n")
  os.exit(1)
end
local classes = splits[names[1]].classes

if args.json then
  local out = { splits = {}, classes = json.array(classes) }
  for _, s in ipairs(names) do out.splits[s] = splits[s]:counts_by_name() end
  print(json.encode(out))
else
  local w = 10
  for _, c in ipairs(classes) do w = math.max(w, #c + 1) end
  io.write(("%-" .. w .. "s"):format("class"))
  for _, s in ipairs(names) do io.write(("%10s"):format(s)) end
  io.write("\n")
  for k, c in ipairs(classes) do
    io.write(("%-" .. w .. "s"):format(c))
    for _, s in ipairs(names) do io.write(("%10d"):format(splits[s]:class_counts()[k] or 0)) end
    io.write("\n")
  end
  io.write(("%-" .. w .. "s"):format("total"))
  for _, s in ipairs(names) do io.write(("%10d"):format(#splits[s])) end
  io.write("\n")
  local first = splits[names[1]]
  local c, h, wd = first.channels, first.height, first.width
  if not h then _, h, wd = first.source:size(1) end
  io.write(("images: %d channel%s, %s x %s%s\n"):format(c, c > 1 and "s" or "", tostring(h), tostring(wd),
    first.height and "" or " (first image; sizes may vary)"))
end

if args.preview then
  local ds = splits.train or splits[names[1]]
  local n = math.min(#ds, math.tointeger(args.rows * args.cols) or 32)
  local size = args.size and math.tointeger(args.size) or nil
  local loader = ac.data.Loader(ds, { batch = n, augment = args.augment, workers = 1, shuffle = true,
                                      seed = math.tointeger(args.seed) or 1, size = size })
  local it = loader:epoch()
  local x = it()
  ac.image.save(args.preview, ac.image.grid(x, { ncol = math.tointeger(args.cols) or 8 }))
  loader:close()
  if not args.json then print("preview: " .. args.preview) end
end
