--- tools/synthfer_calibrate.lua - writes a synthfer set in the npy folder
-- layout (train_images.npy [N,48,48] uint8, train_labels.npy [N] int64 0..6,
-- test_*, classes.txt) for tools/synthfer_calibrate.py and for
-- `examples/train.lua --dataset npy`.
--
--   lua5.4 tools/synthfer_calibrate.lua OUTDIR [--train 20000] [--test 3500]
--       [--seed 1] [--difficulty 1] [--noise ..] [--occlusion ..] [--blur ..] [--max_rotation ..]
--
-- Training samples are samples 1..train of the set `seed`; test samples are
-- samples 1..test of the set `seed + 1000003` (different faces).
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")
local fs = require("adcorre.fs")

local out = arg[1]
if not out or out == "--help" or out == "-h" then
  io.stderr:write("usage: lua5.4 tools/synthfer_calibrate.lua OUTDIR [--train N] [--test N] [--seed S] [--threads T]\n" ..
    "       [--difficulty D] [--noise S] [--occlusion P] [--blur P] [--max_rotation DEG]\n")
  os.exit(out and 0 or 2)
end
local opts = { train = 20000, test = 3500, seed = 1, threads = 2 }
local gen = {}
local i = 2
while i <= #arg do
  local k, v = arg[i]:match("^%-%-(.+)$"), tonumber(arg[i + 1])
  if not k or not v then error("bad argument " .. tostring(arg[i]) .. " " .. tostring(arg[i + 1])) end
  if opts[k] then opts[k] = math.tointeger(v) or error("--" .. k .. " must be an integer") else gen[k] = v end
  i = i + 2
end
ac.set_num_threads(opts.threads)
assert(fs.mkdir_p(out))
for _, split in ipairs({ { "train", opts.train, opts.seed }, { "test", opts.test, opts.seed + 1000003 } }) do
  local name, n, seed = split[1], split[2], split[3]
  local o = { seed = seed, dtype = "uint8" }
  for k, v in pairs(gen) do o[k] = v end
  local t0 = ac.now()
  local x, y = ac.synthfer.generate(n, o)
  local dt = ac.now() - t0
  ac.save_npy(out .. "/" .. name .. "_images.npy", x:view(n, 48, 48))
  ac.save_npy(out .. "/" .. name .. "_labels.npy", y - 1)
  io.stderr:write(("%s: %d images in %.2fs (%.0f images/s, %d threads)\n"):format(name, n, dt, n / dt, opts.threads))
end
local f = assert(io.open(out .. "/classes.txt.tmp", "w"))
f:write(table.concat(ac.synthfer.classes, "\n"), "\n")
f:close()
assert(os.rename(out .. "/classes.txt.tmp", out .. "/classes.txt"))
