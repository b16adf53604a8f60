--- bench/scaling.lua - `make bench-scaling`: how the cost of adcorre grows.
-- Images/s of training and inference and peak RSS (VmHWM) against
--   batch size  (mini-Xception 1, 8, 32, 64, 128, 256; Xception 1, 4, 8, 16, 32),
--   threads     (1, 2; mini-Xception at batch 64, Xception at batch 8),
--   input size  (Xception 48, 96, 160, 224 at batch 8: the FLOPs grow with the area),
-- each point in its own process (bench/ac_side.lua) so that its peak RSS is
-- its own. Prints markdown tables (for doc/performance.md) with the load
-- average of each point; --json FILE also writes the raw results.
--
--   lua5.4 bench/scaling.lua [--models minixception,xception] [--parts batch,threads,size]
--                            [--iters 3] [--json FILE]
package.path = "./lua/?.lua;./lua/?/init.lua;./bench/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local json = require("adcorre.json")
local util = require("benchutil")
local load = util.load

local o = {models = "minixception,xception", parts = "batch,threads,size", iters = 3, json = nil}
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(%w+)$")
  if not k or o[k] == nil and k ~= "json" or arg[i + 1] == nil then
    io.stderr:write("bench/scaling.lua: bad argument " .. tostring(arg[i]) .. "\n")
    os.exit(2)
  end
  o[k] = k == "iters" and math.tointeger(tonumber(arg[i + 1])) or arg[i + 1]
  i = i + 2
end

local function has(list, x)
  for v in list:gmatch("[^,]+") do if v == x then return true end end
  return false
end

-- one point: ac_side with a model, batch, threads and input size
local function point(model, batch, threads, size)
  local cmd = ("%s bench/ac_side.lua --model %s --batch %d --threads %d --size %d --train-iters %d "
    .. "--infer-iters %d --lat-iters 3 --warmup 1"):format(arg[-1] or "lua5.4", model, batch, threads,
    size, o.iters, o.iters)
  local l0 = load()
  local r = util.run_json(cmd, "bench/scaling.lua")
  r.load, r.threads, r.size = l0, threads, size
  return r
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
  xception = {size = 224, batches = {1, 4, 8, 16, 32}, base = 8, sizes = {48, 96, 160, 224}},
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
  end
end
if o.json then
  local f = assert(io.open(o.json .. ".tmp", "w"))
  f:write(json.encode(results), "\n")
  f:close()
  assert(os.rename(o.json .. ".tmp", o.json))
end
