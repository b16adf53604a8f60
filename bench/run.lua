--- bench/run.lua - `make bench`: adcorre against PyTorch 1.13 on the same
-- networks, loss and optimiser, both on the same number of threads.
--
--   lua5.4 bench/run.lua [--threads 2] [--rounds 3] [--models minixception,xception]
--                        [--quick] [--json FILE]
--
-- 1. The machine's limit: the best sgemm rate, C = A B with 2048 x 2048
--    matrices on the same threads, through the library's GEMM and through
--    OpenBLAS with the core it picked (named; OPENBLAS_CORETYPE is never set
--    here: set it by hand to see another core). Every model and layer rate is
--    read against the better of the two.
-- 2. For each model, processes alternate: adcorre (bench/ac_side.lua), PyTorch
--    (bench/torch_ref.py), adcorre, PyTorch, ... (`--rounds` of each). Each
--    side runs in its own process so its peak RSS (VmHWM) is its own. A
--    process measures training steps (forward, Ad-Corre loss, backward, Adam),
--    inference on a batch and the batch-1 latency.
--      minixception 48x48x1, batch 64 ; xception 224x224x3, batch 8
--    One more PyTorch process on 1 thread is printed for reference (not a
--    target): how PyTorch fares without OpenMP contention on a busy machine.
--    ONNX Runtime (bench/ort_side.js, CPU provider, the same threads, graph
--    optimisations on) runs the graph ac.onnx.export writes, in the same
--    alternation: inference batch and batch-1 latency, the inference anchor
--    (targets: adcorre >= 1.0x its images/s, <= 1.0x its latency).
-- 3. A table per model: min / median / max over the rounds of each side
--    (every round is printed too), the ratios of the medians against the
--    targets of the project, the peak RSS after training, training and
--    inference as a percentage of the machine's limit, and one more adcorre
--    round with the dispatch capped at AVX2 (when the CPU has AVX-512: the
--    speed on CPUs without it, not a target).
-- 4. The time and GFLOP/s of each layer type in one instrumented training step
--    and one inference batch of adcorre, with the percentage of the sgemm rate.
-- The load average is printed next to every measurement: the figures are only
-- comparable when nothing else runs on the machine.
package.path = "./lua/?.lua;./lua/?/init.lua;./bench/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")

local o = {threads = 2, rounds = 3, models = "minixception,xception", quick = false, json = nil}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--threads" then o.threads = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--rounds" then o.rounds = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--models" then o.models = arg[i + 1]; i = i + 1
  elseif a == "--json" then o.json = arg[i + 1]; i = i + 1
  elseif a == "--quick" then o.quick = true
  elseif a == "--help" or a == "-h" then
    print("usage: lua5.4 bench/run.lua [--threads 2] [--rounds 3] [--models minixception,xception] [--quick] [--json FILE]")
    os.exit(0)
  else
    io.stderr:write("bench/run.lua: unknown argument " .. a .. "\n")
    os.exit(2)
  end
  i = i + 1
end
if not o.threads or o.threads < 1 or not o.rounds or o.rounds < 1 then
  io.stderr:write("bench/run.lua: --threads and --rounds need positive integers\n")
  os.exit(2)
end

local util = require("benchutil")
local load = util.load

local function cpu_name()
  local f = io.open("/proc/cpuinfo")
  if not f then return "?" end
  local name
  for line in f:lines() do
    name = line:match("^model name%s*:%s*(.-)%s*$")
    if name then break end
  end
  f:close()
  return name or "?"
end

local function out(fmt, ...) io.write(fmt:format(...), "\n"); io.flush() end

local report = {threads = o.threads, cpu = cpu_name(), date = os.date("!%Y-%m-%dT%H:%M:%SZ"), models = {}}
out("adcorre benchmark  %s  threads %d  cpu %s  OPENBLAS_CORETYPE=%s", report.date, o.threads,
  report.cpu, os.getenv("OPENBLAS_CORETYPE") or "-")
out("load average at start: %s", load())

------------------------------------------------------------------------------
-- sgemm 2048^3
------------------------------------------------------------------------------
ac.set_num_threads(o.threads)
ac.manual_seed(1)
do
  local n = 2048
  local core = require("adcorre.core")
  local cfg = ac.config()
  local a, b, c = ac.randn(n, n), ac.randn(n, n), ac.zeros(n, n)
  local function rate(form)
    core.convfast.gemm(a, b, c, 1, 0, form) -- warm-up
    local best = math.huge
    for _ = 1, (o.quick and 2 or 4) do
      local t0 = ac.now()
      core.convfast.gemm(a, b, c, 1, 0, form)
      local dt = ac.now() - t0
      if dt < best then best = dt end
    end
    return 2 * n ^ 3 / best * 1e-9
  end
  report.sgemm_own_gflops = rate("par-nn")
  report.sgemm_blas_gflops = rate("blas")
  report.blas_core, report.isa = cfg.blas_core, cfg.isa
  report.sgemm_gflops = math.max(report.sgemm_own_gflops, report.sgemm_blas_gflops)
  out("sgemm 2048^3, %d threads: library GEMM (%s) %.1f GFLOP/s, OpenBLAS (%s core) %.1f GFLOP/s; limit %.1f  [load %s]",
    o.threads, cfg.isa, report.sgemm_own_gflops, cfg.blas_core, report.sgemm_blas_gflops, report.sgemm_gflops, load())
  if cfg.blas_advice then out("  %s", cfg.blas_advice) end
  a, b, c = nil, nil, nil
  collectgarbage()
end

------------------------------------------------------------------------------
-- the two sides, alternated
------------------------------------------------------------------------------
local configs = {
  minixception = {batch = 64, train = 10, infer = 10, lat = 50, warmup = 2,
                  targets = {train = 3.5, infer = 3.5, latency = 0.3, rss = 0.5}},
  xception = {batch = 8, train = 3, infer = 3, lat = 5, warmup = 1,
              targets = {train = 1.6, infer = 1.6, latency = 0.6, rss = 0.5, train_pct = 70, infer_pct = 75}},
}
if o.quick then
  configs.minixception.train, configs.minixception.infer, configs.minixception.lat = 4, 4, 20
  configs.xception.train, configs.xception.infer, configs.xception.lat = 1, 1, 2
end

local function run_side(cmd) return util.run_json(cmd, "bench/run.lua") end

local function args_for(name, c, profile)
  return ("--model %s --batch %d --train-iters %d --infer-iters %d --lat-iters %d --warmup %d --threads %d")
    :format(name, c.batch, c.train, c.infer, c.lat, c.warmup, o.threads) .. (profile and " --profile 1" or "")
end

-- min, median and max of a field over rounds
local function spread(rounds, field)
  local v = {}
  for _, r in ipairs(rounds) do v[#v + 1] = r[field] end
  table.sort(v)
  local n = #v
  local med = n % 2 == 1 and v[(n + 1) // 2] or (v[n // 2] + v[n // 2 + 1]) / 2
  return v[1], med, v[n]
end

-- flops of one training step / inference batch per image, from the profile
local function flops_per_image(rows, batch)
  local f = 0
  for _, r in ipairs(rows or {}) do f = f + (r.flops or 0) end
  return f / batch
end

local function pass(ratio, target, lower)
  if lower then return ratio <= target and "yes" or "NO" end
  return ratio >= target and "yes" or "NO"
end

-- ONNX Runtime (npm onnxruntime-node in build/ort, `make ort`) on the
-- graph ac.onnx.export writes for the same network: the inference anchor.
local ort_missing
do
  local f = io.open((os.getenv("ORT_DIR") or "build/ort") .. "/node_modules/onnxruntime-node/package.json")
  if f then f:close() else ort_missing = "onnxruntime-node is not in build/ort (make ort)" end
  if not ort_missing and not os.execute("node --version >/dev/null 2>&1") then ort_missing = "node is not installed" end
end
local ort_targets = {infer = 1.0, latency = 1.0}

local function export_onnx(name)
  assert(fs.mkdir_p("build/bench"))
  local path = "build/bench/" .. name .. ".onnx"
  ac.manual_seed(1)
  local net = name == "minixception" and ac.models.minixception{in_channels = 1, size = 48, classes = 7, k = 10, d = 256}
    or ac.models.xception{in_channels = 3, size = 224, classes = 7, k = 10, d = 256}
  ac.onnx.export(net, path)
  net = nil
  collectgarbage()
  return path
end

local mrep_t1
for name in o.models:gmatch("[^,]+") do
  local c = configs[name]
  if not c then io.stderr:write("bench/run.lua: unknown model " .. name .. "\n"); os.exit(2) end
  out("")
  out("== %s, batch %d (training %d steps, inference %d batches, latency median of %d) ==",
    name, c.batch, c.train, c.infer, c.lat)
  local acr, thr, ortr = {}, {}, {}
  local onnx_path = not ort_missing and export_onnx(name)
  for r = 1, o.rounds do
    local l0 = load()
    local a = run_side(("%s bench/ac_side.lua %s"):format(arg[-1] or "lua5.4", args_for(name, c, r == 1)))
    a.load = l0
    acr[#acr + 1] = a
    out("  round %d adcorre: train %8.2f img/s  infer %8.2f img/s  latency %8.2f ms  peak RSS %7.1f MiB  [load %s]",
      r, a.train_ips, a.infer_ips, a.latency_ms, a.rss_train_kib / 1024, l0)
    l0 = load()
    local t = run_side("/usr/bin/python3 bench/torch_ref.py " .. args_for(name, c, false))
    t.load = l0
    thr[#thr + 1] = t
    out("  round %d pytorch: train %8.2f img/s  infer %8.2f img/s  latency %8.2f ms  peak RSS %7.1f MiB  [load %s]",
      r, t.train_ips, t.infer_ips, t.latency_ms, t.rss_train_kib / 1024, l0)
    if onnx_path then
      l0 = load()
      local e = run_side(("node bench/ort_side.js --onnx %s --batch %d --infer-iters %d --lat-iters %d --warmup %d --threads %d --profile %d")
        :format(onnx_path, c.batch, c.infer, c.lat, c.warmup, o.threads, r == 1 and 1 or 0))
      e.load = l0
      ortr[#ortr + 1] = e
      out("  round %d onnxrt : %28s infer %8.2f img/s  latency %8.2f ms  peak RSS %7.1f MiB  [load %s]",
        r, "", e.infer_ips, e.latency_ms, e.rss_kib / 1024, l0)
    end
  end
  if o.threads > 1 then
    -- For reference only (not a target): PyTorch's OpenMP threads suffer badly
    -- on a busy machine, its 1-thread figures show what it does without that.
    local l0 = load()
    local c1 = {}
    for k, v in pairs(c) do c1[k] = v end
    local t1 = run_side("/usr/bin/python3 bench/torch_ref.py " ..
      args_for(name, c1, false):gsub("%-%-threads %d+", "--threads 1"))
    out("  reference pytorch 1 thread: train %8.2f img/s  infer %8.2f img/s  latency %8.2f ms  [load %s]",
      t1.train_ips, t1.infer_ips, t1.latency_ms, l0)
    mrep_t1 = t1
  end
  -- the AVX2 row: one more adcorre round with the dispatch capped (CPUs without AVX-512)
  local avx2
  if ac.config().avx512f then
    local l0 = load()
    avx2 = run_side(("%s bench/ac_side.lua %s --isa avx2"):format(arg[-1] or "lua5.4", args_for(name, c, false)))
    avx2.load = l0
    out("  avx2 cap adcorre: train %8.2f img/s  infer %8.2f img/s  latency %8.2f ms  [load %s]",
      avx2.train_ips, avx2.infer_ips, avx2.latency_ms, l0)
  end
  local A, T, S = {}, {}, {}
  for _, f in ipairs({{"train", "train_ips"}, {"infer", "infer_ips"}, {"latency", "latency_ms"}, {"rss", "rss_train_kib"}}) do
    local a0, a1, a2 = spread(acr, f[2])
    local t0, t1, t2 = spread(thr, f[2])
    A[f[1]], T[f[1]] = a1, t1
    S[f[1]] = {adcorre = {a0, a1, a2}, torch = {t0, t1, t2}}
  end
  local tg = c.targets
  local rows = {
    {"training (img/s)", "train", A.train / T.train, ">=", tg.train, false},
    {"inference batch (img/s)", "infer", A.infer / T.infer, ">=", tg.infer, false},
    {"latency batch 1 (ms)", "latency", A.latency / T.latency, "<=", tg.latency, true},
    {"peak RSS training (MiB)", "rss", A.rss / T.rss, "<=", tg.rss, true},
  }
  out("  %-26s %26s %26s %7s %9s %5s", "min / median / max", "adcorre", "pytorch", "ratio", "target", "met")
  local mrep = {adcorre = acr, torch = thr, median = {adcorre = A, torch = T}, spread = S, ratios = {},
                torch_1thread = mrep_t1, avx2 = avx2}
  mrep_t1 = nil
  for _, r in ipairs(rows) do
    local met = pass(r[3], r[5], r[6])
    local k = 1 / (r[2] == "rss" and 1024 or 1)
    local sa, st = S[r[2]].adcorre, S[r[2]].torch
    out("  %-26s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %7.3f %4s %4.2f %5s", r[1], sa[1] * k, sa[2] * k, sa[3] * k,
      st[1] * k, st[2] * k, st[3] * k, r[3], r[4], r[5], met)
    mrep.ratios[r[1]] = {ratio = r[3], target = r[5], met = met == "yes"}
  end
  -- against the machine's limit: the inference flops counted by the profiled
  -- round; a training step does three times the multiply-adds (forward,
  -- input gradient, weight gradient of every convolution and Linear)
  local finfer = flops_per_image(acr[1].profile_infer, c.batch)
  local ftrain = 3 * finfer
  for _, p in ipairs({{"training", A.train * ftrain, tg.train_pct}, {"inference", A.infer * finfer, tg.infer_pct}}) do
    local pct = 100 * p[2] * 1e-9 / report.sgemm_gflops
    out("  %-26s %8.1f GFLOP/s = %5.1f %% of the %.0f GFLOP/s limit%s", p[1] .. " (median)", p[2] * 1e-9, pct,
      report.sgemm_gflops, p[3] and ("  target %d %%: %s"):format(p[3], pct >= p[3] and "yes" or "NO") or "")
    mrep.ratios[p[1] .. " % of limit"] = {ratio = pct, target = p[3], met = p[3] and pct >= p[3]}
  end
  if avx2 then
    out("  %-26s train %.3f  infer %.3f  latency %.3f of the native medians", "avx2 cap", avx2.train_ips / A.train,
      avx2.infer_ips / A.infer, avx2.latency_ms / A.latency)
  end
  if onnx_path then
    local _, oi = spread(ortr, "infer_ips")
    local _, ol = spread(ortr, "latency_ms")
    local OR = {infer = oi, latency = ol}
    mrep.onnxruntime = ortr
    mrep.median.onnxruntime = OR
    out("  %-26s %12s %12s %12s %9s %10s %5s", "inference vs ONNX Runtime", "adcorre", "onnxruntime", "pytorch",
      "ratio", "target", "met")
    for _, r in ipairs({{"inference batch (img/s)", A.infer, OR.infer, T.infer, A.infer / OR.infer, ">=", ort_targets.infer, false},
                        {"latency batch 1 (ms)", A.latency, OR.latency, T.latency, A.latency / OR.latency, "<=", ort_targets.latency, true}}) do
      local met = pass(r[5], r[7], r[8])
      out("  %-26s %12.2f %12.2f %12.2f %9.3f %6s %4.2f %5s", r[1], r[2], r[3], r[4], r[5], r[6], r[7], met)
      mrep.ratios["onnxruntime " .. r[1]] = {ratio = r[5], target = r[7], met = met == "yes"}
    end
  else
    out("  ONNX Runtime: skipped (%s)", ort_missing)
  end
  -- per-layer-type rates of the instrumented adcorre run
  local a1 = acr[1]
  for _, phase in ipairs({{"training step", a1.profile_train, a1.profile_train_s},
                          {"inference batch", a1.profile_infer, a1.profile_infer_s}}) do
    out("  adcorre per layer type, one %s (%.1f ms instrumented; sgemm %.0f GFLOP/s):", phase[1],
      phase[3] * 1e3, report.sgemm_gflops)
    out("    %-28s %9s %6s %10s %8s", "layer type", "ms", "share", "GFLOP/s", "% sgemm")
    for _, r in ipairs(phase[2]) do
      if r.time > 0 then
        local pct = r.flops > 0 and ("%7.1f%%"):format(100 * r.gflops / report.sgemm_gflops) or "       -"
        local gf = r.flops > 0 and ("%10.2f"):format(r.gflops) or "         -"
        out("    %-28s %9.2f %5.1f%% %s %s", r.kind, r.time * 1e3, 100 * r.time / phase[3], gf, pct)
      end
    end
  end
  local o1 = ortr[1]
  if o1 and o1.profile_infer then
    out("  onnxruntime per op type, one inference batch (%.1f ms profiled; its profiler's kernel times):",
      o1.profile_infer_s * 1e3)
    for _, r in ipairs(o1.profile_infer) do
      out("    %-28s %9.2f %5.1f%%", r.kind, r.time * 1e3, 100 * r.time / o1.profile_infer_s)
    end
  end
  report.models[name] = mrep
  out("  load average after %s: %s", name, load())
end

out("")
out("load average at end: %s", load())
if o.json then
  local tmp = o.json .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(json.encode(report), "\n")
  f:close()
  assert(os.rename(tmp, o.json))
end
