--- bench/ac_side.lua - the adcorre side of `make bench` (bench/torch_ref.py is
-- the PyTorch side; both time the same phases the same way).
--
--   lua5.4 bench/ac_side.lua --model minixception|xception [--batch 64]
--       [--train-iters 10] [--infer-iters 10] [--lat-iters 50] [--warmup 2]
--       [--threads 2] [--profile 0|1] [--isa native|avx2|generic] [--size N (input side)]
--
-- Phases, in this order:
--   train  zeroGradParameters, forward (training mode), AdCorreLoss forward
--          and backward (adaptive weights, confusion history), model
--          backward, Adam step (lr 1e-3, decay 1e-5)
--   infer  evaluation mode, one batch
--   lat    evaluation mode, batch 1, one image per call
--   with --profile 1, one more instrumented training step and inference
--   batch: time and GFLOP/s per layer type (bench/layerprof.lua)
-- Prints one JSON line (images/s, median latency, VmHWM after training and at
-- the end, per-step seconds, the profile).
package.path = "./lua/?.lua;./lua/?/init.lua;./bench/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")
local json = require("adcorre.json")

local o = {model = "minixception", batch = 64, ["train-iters"] = 10, ["infer-iters"] = 10,
           ["lat-iters"] = 50, warmup = 2, threads = 2, profile = 0, seed = 1, isa = "native",
           size = 0}
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-([%w%-]+)$")
  if arg[i] == "--help" or arg[i] == "-h" then
    print("usage: lua5.4 bench/ac_side.lua --model minixception|xception [--batch 64] [--train-iters 10] " ..
      "[--infer-iters 10] [--lat-iters 50] [--warmup 2] [--threads 2] [--profile 0|1] [--isa native|avx2|generic] [--size N]")
    os.exit(0)
  end
  if not key or o[key] == nil or arg[i + 1] == nil then
    io.stderr:write("ac_side: bad argument " .. tostring(arg[i]) .. "\n")
    os.exit(2)
  end
  o[key] = (key == "model" or key == "isa") and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
  i = i + 2
end

local function vmhwm_kib()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  for line in f:lines() do
    local v = line:match("^VmHWM:%s+(%d+)")
    if v then f:close(); return tonumber(v) end
  end
  f:close()
  return 0
end

ac.set_num_threads(o.threads)
ac.manual_seed(o.seed)
-- --isa generic|avx2|avx512 caps the kernels' dispatch (the AVX2 bench row); native: the CPU's best
local isa = o.isa ~= "native" and require("adcorre.testing").isa_limit(o.isa) or ac.config().isa
local net, shape
if o.model == "minixception" then
  local s = o.size > 0 and o.size or 48
  net, shape = ac.models.minixception{in_channels = 1, size = s, classes = 7, k = 10, d = 256}, {1, s, s}
elseif o.model == "xception" then
  local s = o.size > 0 and o.size or 224
  net, shape = ac.models.xception{in_channels = 3, size = s, classes = 7, k = 10, d = 256}, {3, s, s}
else
  io.stderr:write("ac_side: unknown model " .. o.model .. "\n")
  os.exit(2)
end
local B = o.batch
local x = ac.randn(B, shape[1], shape[2], shape[3])
local labels = {}
for b = 1, B do labels[b] = (b - 1) % 7 + 1 end
local y = ac.tensor(labels, "int64")
local crit = ac.AdCorreLoss{classes = 7}
local opt = ac.optim.Adam(net, {lr = 1e-3, decay = 1e-5})
local res = {side = "adcorre", model = o.model, batch = B, isa = isa, threads = ac.get_num_threads and ac.get_num_threads() or o.threads,
             nparams = net:nparams()}

local function train_step(prof)
  local t0 = ac.now()
  net:zeroGradParameters()
  local out = net:forward(x)
  local t1 = ac.now()
  local L = crit:forward(out.logits, out.embeddings, y)
  local gl, ge = crit:backward()
  local t2 = ac.now()
  net:backward(x, {logits = gl, embeddings = ge})
  local t3 = ac.now()
  opt:step()
  local t4 = ac.now()
  if prof then
    prof:add("loss (forward+backward)", t2 - t1, 0)
    local np = res.nparams
    prof:add("adam", t4 - t3, 0)
    prof.adam_params = np
  end
  return L
end

net:training()
crit:training()
local steps, L = {}, nil
for it = 1, o.warmup + o["train-iters"] do
  local t0 = ac.now()
  L = train_step()
  local dt = ac.now() - t0
  if it > o.warmup then steps[#steps + 1] = dt end
end
local sum = 0
for _, s in ipairs(steps) do sum = sum + s end
res.train_step_s = steps
res.train_ips = B * #steps / sum
res.loss = L
res.rss_train_kib = vmhwm_kib()

local prof
if o.profile == 1 then
  prof = require("layerprof").attach(net)
  local t0 = ac.now()
  train_step(prof)
  res.profile_train_s = ac.now() - t0
  res.profile_train = prof:report()
end

net:evaluate()
crit:evaluate()
local times = {}
for it = 1, o.warmup + o["infer-iters"] do
  local t0 = ac.now()
  net:forward(x)
  local dt = ac.now() - t0
  if it > o.warmup then times[#times + 1] = dt end
end
sum = 0
for _, s in ipairs(times) do sum = sum + s end
res.infer_batch_s = times
res.infer_ips = B * #times / sum

if prof then
  prof:reset()
  local t0 = ac.now()
  net:forward(x)
  res.profile_infer_s = ac.now() - t0
  res.profile_infer = prof:report()
  prof:detach()
end

local x1 = x:narrow(1, 1, 1):contiguous()
local lat = {}
for it = 1, o.warmup + o["lat-iters"] do
  local t0 = ac.now()
  net:forward(x1)
  local dt = ac.now() - t0
  if it > o.warmup then lat[#lat + 1] = dt end
end
table.sort(lat)
res.latency_ms = 1e3 * lat[#lat // 2 + 1]
res.rss_end_kib = vmhwm_kib()
print(json.encode(res))
