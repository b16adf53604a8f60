--- bench/loader_bench.lua - throughput of the threaded loader.
--
--   lua5.4 bench/loader_bench.lua [--workers 2] [--json]
--
-- 1. 48x48 grey samples held in memory (a synthfer fer2013.csv read back by
--    the fer2013 reader), augmented with the "standard" and "masked" presets.
-- 2. 224x224 RGB batches decoded from JPEG files (256x256 and 224x224 files
--    written first), resized and augmented ("standard" and "crop").
-- Samples per second over whole epochs after one warm-up epoch: wall clock,
-- and from the process's CPU time (what `workers` free cores would give when
-- the machine is shared; the loader's threads are the only busy ones).
local here = (arg and arg[0] or ""):match("^(.-)/?bench/[^/]*$")
if here then
  if here == "" then here = "." end
  package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
  package.cpath = (os.getenv("AC_BENCH_CPATH") or (here .. "/build/?.so")) .. ";" .. package.cpath
end
local ac = require("adcorre")
local json = require("adcorre.json")
local fs = require("adcorre.fs")

local workers, as_json = 2, false
for i = 1, #arg do
  if arg[i] == "--workers" then workers = math.tointeger(tonumber(arg[i + 1])) end
  if arg[i] == "--json" then as_json = true end
end

local function say(...) if not as_json then print(...) end end

local tmp = os.tmpname()
os.remove(tmp)
assert(fs.mkdir_p(tmp))

local function measure(ds, opts, epochs)
  local ld = ac.data.Loader(ds, opts)
  for _ in ld:epoch() do end -- warm-up
  local t0, c0, n = ac.now(), os.clock(), 0
  for _ = 1, epochs do
    for _, _, k in ld:epoch() do n = n + k end
  end
  local dt, cpu = ac.now() - t0, os.clock() - c0
  ld:close()
  -- wall-clock rate, and the rate the process's CPU time would give on
  -- `workers` uncontended cores (the machine may be shared with other jobs)
  return n / dt, n / cpu * math.max(1, opts.workers)
end

local results = { workers = workers }

-- 1. 48x48 in memory
ac.manual_seed(1)
local csv = tmp .. "/fer2013.csv"
ac.synthfer.write_csv(csv, { seed = 1, train = 20000, public = 10, private = 10 })
local fer = ac.data.fer2013 { path = csv, split = "train" }
for _, preset in ipairs({ "none", "standard", "masked" }) do
  local r, rc = measure(fer, { batch = 64, workers = workers, augment = preset, seed = 1 }, 2)
  results["fer48_" .. preset] = r
  results["fer48_" .. preset .. "_cpu"] = rc
  say(("48x48 grey, augment %-9s %8.0f samples/s wall, %8.0f by CPU time  (%d workers)"):format(preset, r, rc, workers))
end

-- 2. JPEG files -> 224x224 RGB
local function write_jpegs(folder, n, size)
  for c = 1, 2 do assert(fs.mkdir_p(("%s/train/c%d"):format(folder, c))) end
  local faces = ac.synthfer.generate(n, { seed = 3 })
  for i = 1, n do
    local g = ac.image.resize(faces[i], size, size)
    local rgb = ac.zeros(3, size, size)
    rgb[1]:copy(g[1]); rgb[2]:copy(g[1] * 0.9); rgb[3]:copy(g[1] * 0.8)
    ac.image.save(("%s/train/c%d/%05d.jpg"):format(folder, (i % 2) + 1, i), rgb, { quality = 90 })
  end
end
for _, src in ipairs({ 256, 224 }) do
  local folder = ("%s/jpeg%d"):format(tmp, src)
  write_jpegs(folder, 400, src)
  local ds = ac.data.folder { path = folder, split = "train" }
  for _, preset in ipairs({ "standard", "crop" }) do
    local r, rc = measure(ds, { batch = 50, size = 224, workers = workers, augment = preset, seed = 1 }, 2)
    results[("jpeg%d_to224_%s"):format(src, preset)] = r
    results[("jpeg%d_to224_%s_cpu"):format(src, preset)] = rc
    say(("%dx%d JPEG -> 224x224 RGB, augment %-9s %6.0f images/s wall, %6.0f by CPU time  (%d workers)"):format(
      src, src, preset, r, rc, workers))
  end
end

os.execute("rm -rf '" .. tmp .. "'")
if as_json then print(json.encode(results)) end
