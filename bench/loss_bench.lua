-- bench/loss_bench.lua - time of one Ad-Corre loss forward + backward.
--
--   lua5.4 bench/loss_bench.lua [--batch 64] [--k 10] [--d 256] [--classes 7]
--                               [--iters 200] [--threads N] [--step 0|1] [--json]
--
-- Prints the median and mean milliseconds of forward alone and of
-- forward + backward (all four parts, adaptive weights, training mode so the
-- confusion history is updated as in training), per thread count. With
-- --step 1 it also times whole mini-Xception training steps (48x48x1 input,
-- same B, k, d, C: zeroGrad, forward, loss, backward) and reports the loss's
-- share of a step.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")

local opts = { batch = 64, k = 10, d = 256, classes = 7, iters = 200, threads = nil, step = 0, json = false }
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--json" then
    opts.json = true
  elseif a == "--help" or a == "-h" then
    print("usage: lua5.4 bench/loss_bench.lua [--batch 64] [--k 10] [--d 256] [--classes 7] [--iters 200] [--threads N] [--step 0|1] [--json]")
    os.exit(0)
  else
    local key = a:match("^%-%-(%w+)$")
    if not key or opts[key] == nil and key ~= "threads" then
      io.stderr:write("loss_bench: unknown argument " .. a .. "\n")
      os.exit(2)
    end
    local v = tonumber(arg[i + 1])
    if not v then
      io.stderr:write("loss_bench: " .. a .. " needs a number\n")
      os.exit(2)
    end
    opts[key] = math.tointeger(v) or v
    i = i + 1
  end
  i = i + 1
end

local function median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or 0.5 * (s[n // 2] + s[n // 2 + 1])
end

local function mean(t)
  local s = 0
  for _, v in ipairs(t) do s = s + v end
  return s / #t
end

local function run(threads)
  ac.set_num_threads(threads)
  ac.manual_seed(1)
  local B, k, d, C = opts.batch, opts.k, opts.d, opts.classes
  local Z = ac.randn(B, C)
  local E = {}
  for j = 1, k do
    E[j] = ac.randn(B, d)
    for b = 1, B do E[j][b]:div_(E[j][b]:norm()) end
  end
  local y = {}
  for b = 1, B do y[b] = (b - 1) % C + 1 end
  local labels = ac.tensor(y, "int64")
  local loss = ac.AdCorreLoss{ classes = C }
  for _ = 1, 10 do -- warm-up (workspace, buffers, BLAS)
    loss:forward(Z, E, labels)
    loss:backward()
  end
  local fwd, both = {}, {}
  for it = 1, opts.iters do
    local t0 = ac.now()
    loss:forward(Z, E, labels)
    local t1 = ac.now()
    loss:backward()
    local t2 = ac.now()
    fwd[it] = (t1 - t0) * 1e3
    both[it] = (t2 - t0) * 1e3
  end
  local r = { threads = threads, forward_ms_median = median(fwd), forward_ms_mean = mean(fwd),
              fwd_bwd_ms_median = median(both), fwd_bwd_ms_mean = mean(both) }
  if opts.step == 1 then
    local model = ac.models.minixception{ in_channels = 1, size = 48, classes = C, k = k, d = d }
    model:training()
    local x = ac.randn(B, 1, 48, 48)
    local steps, shares = {}, {}
    for it = 1, 7 do
      local t0 = ac.now()
      model:zeroGradParameters()
      local out = model:forward(x)
      local t1 = ac.now()
      loss:forward(out.logits, out.embeddings, labels)
      local gz, ge = loss:backward()
      local t2 = ac.now()
      model:backward(x, { logits = gz, embeddings = ge })
      local t3 = ac.now()
      if it > 2 then -- the first two are warm-up
        steps[#steps + 1] = (t3 - t0) * 1e3
        shares[#shares + 1] = (t2 - t1) / (t3 - t0) * 100
      end
    end
    r.step_ms_median = median(steps)
    r.loss_share_percent = median(shares)
  end
  return r
end

local results = {}
local counts = opts.threads and { opts.threads } or { 1, 2 }
for _, n in ipairs(counts) do results[#results + 1] = run(n) end

if opts.json then
  local parts = {}
  for _, r in ipairs(results) do
    local extra = r.step_ms_median and string.format(', "minixception_step_ms_median": %.2f, "loss_share_percent": %.3f',
      r.step_ms_median, r.loss_share_percent) or ""
    parts[#parts + 1] = string.format(
      '{"threads": %d, "forward_ms_median": %.4f, "forward_ms_mean": %.4f, "fwd_bwd_ms_median": %.4f, "fwd_bwd_ms_mean": %.4f%s}',
      r.threads, r.forward_ms_median, r.forward_ms_mean, r.fwd_bwd_ms_median, r.fwd_bwd_ms_mean, extra)
  end
  print(string.format('{"bench": "adcorre_loss", "batch": %d, "k": %d, "d": %d, "classes": %d, "iters": %d, "results": [%s]}',
    opts.batch, opts.k, opts.d, opts.classes, opts.iters, table.concat(parts, ", ")))
else
  print(string.format("Ad-Corre loss, B=%d k=%d d=%d C=%d, %d iterations", opts.batch, opts.k, opts.d,
    opts.classes, opts.iters))
  for _, r in ipairs(results) do
    print(string.format("  threads %d: forward %.3f ms (mean %.3f), forward+backward %.3f ms (mean %.3f)",
      r.threads, r.forward_ms_median, r.forward_ms_mean, r.fwd_bwd_ms_median, r.fwd_bwd_ms_mean))
    if r.step_ms_median then
      print(string.format("    mini-Xception training step %.1f ms; the loss is %.2f %% of it",
        r.step_ms_median, r.loss_share_percent))
    end
  end
end
