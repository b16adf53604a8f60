--- bench/scaling.lua - `make bench-scaling`: how the cost of adcorre grows.
-- Images/s of training and inference and peak RSS (VmHWM) against
--   batch size  (mini-Xception 1, 8, 32, 64, 128, 256; Xception 1, 4, 8, 16, 32),
--   threads     (1, 2; mini-Xception at batch 64, Xception at batch 8),
--   input size  (Xception 72, 96, 160, 224 at batch 8: the FLOPs grow with the area;
--                Xception, as Keras' builds it, refuses inputs below 71x71),
-- each point in its own process (bench/ac_side.lua) so that its peak RSS is
-- its own. Prints markdown tables (for doc/performance.md) with the load
-- average of each point; --json FILE also writes the raw results.
--
--   lua5.4 bench/scaling.lua [--models minixception,xception] [--parts batch,threads,size]
--                            [--iters N] [--repeat N] [--json FILE]
-- Each point times --iters training steps and inference batches after a warm-up
-- (default 10 after 2 for mini-Xception, 3 after 1 for Xception: its steps
-- take seconds, and the first steps of a process are slower while the
-- memory plan and the pool settle). Each point is the best of --repeat
-- processes (default 3 for mini-Xception, whose short runs vary by up to a
-- fifth from process to process, 1 for Xception).
package.path = "./lua/?.lua;./lua/?/init.lua;./bench/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local json = require("adcorre.json")
local util = require("benchutil")
local load = util.load

local o = {models = "minixception,xception", parts = "batch,threads,size", iters = false, repeat_ = false,
  json = nil}
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(%w+)$")
  if k == "repeat" then k = "repeat_" end
  if not k or o[k] == nil and k ~= "json" or arg[i + 1] == nil then
    io.stderr:write("bench/scaling.lua: bad argument " .. tostring(arg[i]) .. "\n")
    os.exit(2)
  end
  local int = k == "iters" or k == "repeat_"
  if int then o[k] = math.tointeger(tonumber(arg[i + 1])) else o[k] = arg[i + 1] end
  if int and not (o[k] and o[k] >= 1) then
    io.stderr:write("bench/scaling.lua: --" .. arg[i]:sub(3) .. " needs a positive integer\n"); os.exit(2)
  end
  i = i + 2
end

local function has(list, x)
  for v in list:gmatch("[^,]+") do if v == x then return true end end
  return false
end

-- one point: ac_side with a model, batch, threads and input size
local function point(model, batch, threads, size)
  local iters = o.iters or (model == "minixception" and 10 or 3)
  local warmup = model == "minixception" and 2 or 1
  local cmd = ("%s bench/ac_side.lua --model %s --batch %d --threads %d --size %d --train-iters %d "
    .. "--infer-iters %d --lat-iters 3 --warmup %d"):format(arg[-1] or "lua5.4", model, batch, threads,
    size, iters, iters, warmup)
  local best
  for _ = 1, o.repeat_ or (model == "minixception" and 3 or 1) do
    local l0 = load()
    local r = util.run_json(cmd, "bench/scaling.lua")
    r.load = l0
    if best then
      best.train_ips = math.max(best.train_ips, r.train_ips)
      best.infer_ips = math.max(best.infer_ips, r.infer_ips)
      best.rss_train_kib = math.max(best.rss_train_kib, r.rss_train_kib)
      best.load = r.load
    else
      best = r
    end
  end
  best.threads, best.size = threads, size
  return best
end

local results = {}
local function table_of(title, key, rows)
  print("")
  print("### " .. title)
  print("")
  print(("| %s | train img/s | infer img/s | train peak RSS MiB | load |"):format(key))
  print("|---|---|---|---|---|")
  for _, r in ipairs(rows) do
    print(("| %s | %.2f | %.2f | %.0f | %s |"):format(tostring(r[key]), r.train_ips, r.infer_ips,
      r.rss_train_kib / 1024, r.load))
    io.flush()
  end
end

local plan = {
  minixception = {size = 48, batches = {1, 8, 32, 64, 128, 256}, base = 64},
  xception = {size = 224, batches = {1, 4, 8, 16, 32}, base = 8, sizes = {72, 96, 160, 224}},
}
for model in o.models:gmatch("[^,]+") do
  local p = plan[model]
  if not p then io.stderr:write("bench/scaling.lua: unknown model " .. model .. "\n"); os.exit(2) end
  results[model] = {}
  if has(o.parts, "batch") then
    local rows = {}
    for _, b in ipairs(p.batches) do
      local r = point(model, b, 2, p.size)
      rows[#rows + 1] = r
    end
    results[model].batch = rows
    table_of(("%s %dx%d: batch size, 2 threads"):format(model, p.size, p.size), "batch", rows)
  end
  if has(o.parts, "threads") then
    local rows = {}
    for _, t in ipairs({1, 2}) do rows[#rows + 1] = point(model, p.base, t, p.size) end
    results[model].threads = rows
    table_of(("%s %dx%d batch %d: threads"):format(model, p.size, p.size, p.base), "threads", rows)
  end
  if has(o.parts, "size") and p.sizes then
    local rows = {}
    for _, s in ipairs(p.sizes) do rows[#rows + 1] = point(model, p.base, 2, s) end
    results[model].size = rows
    table_of(("%s batch %d: input size, 2 threads"):format(model, p.base), "size", rows)
    -- time per input pixel against the largest size: 1.00 when the time grows
    -- with the area as the FLOPs do
    local last = rows[#rows]
    print("")
    print("| size | train time per pixel | infer time per pixel |")
    print("|---|---|---|")
    for _, r in ipairs(rows) do
      local a = (last.size / r.size) ^ 2
      print(("| %d | %.2f | %.2f |"):format(r.size, last.train_ips / r.train_ips * a, last.infer_ips / r.infer_ips * a))
    end
  end
end
if o.json then
  local f = assert(io.open(o.json .. ".tmp", "w"))
  f:write(json.encode(results), "\n")
  f:close()
  assert(os.rename(o.json .. ".tmp", o.json))
end
