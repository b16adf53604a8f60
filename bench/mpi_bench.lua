--- bench/mpi_bench.lua - the figures behind doc/distributed.md's scaling table.
--
--   mpirun --allow-run-as-root --oversubscribe -np 2 lua5.4 bench/mpi_bench.lua allreduce
--   lua5.4 bench/mpi_bench.lua step [minixception|xception] [batch] [steps]
--
-- allreduce: dist.allreduce ("sum", float32) of 4 KiB .. 64 MiB on every
-- rank, best of several repetitions per size; prints the time, the
-- algorithm bandwidth (bytes / time) and the bus bandwidth (2 (R - 1) / R
-- bytes / time, what a ring moves per rank).
-- step: one process's training step (forward, Ad-Corre loss, backward,
-- Adam) at a batch, median of the steps after a warm-up, and the model's
-- gradient bytes (float32).
local ac = require("adcorre")
local what = arg[1] or "allreduce"

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

if what == "allreduce" then
  local dist = require("adcorre.distributed")
  local rank, size = dist.init()
  if rank == 0 then
    print(("allreduce over %d ranks (%s), load %s"):format(size, dist.host(),
      (io.open("/proc/loadavg") and io.open("/proc/loadavg"):read("l") or "?")))
    print("bytes        time_us   algbw_GB/s  busbw_GB/s")
  end
  local bytes = 4096
  while bytes <= 64 * 1024 * 1024 do
    local t = ac.ones(bytes // 4)
    local reps = math.max(3, math.min(200, (256 * 1024 * 1024) // bytes // 4))
    dist.barrier()
    dist.allreduce(t) -- warm-up
    local times = {}
    for i = 1, reps do
      dist.barrier()
      local t0 = ac.now()
      dist.allreduce(t)
      times[i] = ac.now() - t0
    end
    local best = dist.allreduce_number(median(times), "max")
    if rank == 0 then
      print(("%-12d %9.1f %11.2f %11.2f"):format(bytes, best * 1e6, bytes / best / 1e9,
        2 * (size - 1) / size * bytes / best / 1e9))
    end
    bytes = bytes * 4
  end
  dist.finalize()
elseif what == "step" then
  local arch, batch, steps = arg[2] or "minixception", tonumber(arg[3] or "50"), tonumber(arg[4] or "8")
  ac.set_num_threads(tonumber(os.getenv("THREADS") or "2"))
  ac.manual_seed(1)
  local big = arch == "xception"
  local model = ac.models[arch]{ in_channels = big and 3 or 1, size = big and 224 or 48, classes = 7, k = 10, d = 256 }
  local loss = ac.AdCorreLoss{ classes = 7 }
  local opt = ac.optim.Adam(model, { lr = 1e-3 })
  local x = ac.randn(batch, big and 3 or 1, big and 224 or 48, big and 224 or 48)
  local y = {}
  for i = 1, batch do y[i] = (i - 1) % 7 + 1 end
  model:training()
  local times = {}
  for s = 1, steps + 1 do
    local t0 = ac.now()
    opt:zero_grad()
    local out = model:forward(x)
    loss:forward(out.logits, out.embeddings, y)
    local gl, ge = loss:backward()
    model:backward(x, { logits = gl, embeddings = ge })
    opt:step()
    if s > 1 then times[#times + 1] = ac.now() - t0 end
  end
  local _, g = model:getParameters()
  local med = median(times)
  print(("%s batch %d: step %.1f ms (median of %d), %.1f img/s, %d parameters = %.2f MB of gradients, load %s"):format(
    arch, batch, med * 1e3, #times, batch / med, g:numel(), g:numel() * 4 / 1e6,
    io.open("/proc/loadavg"):read("l")))
else
  error("usage: bench/mpi_bench.lua allreduce | step [arch] [batch] [steps]", 0)
end
