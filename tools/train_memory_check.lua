--- tools/train_memory_check.lua - trains minixception for a few steps on one
-- fixed batch of random 48x48 images and reports the loss and the resident
-- memory (/proc/self/statm) after every step. The loss must fall and the
-- memory after the last step must be within 5% of that after step 3 (a
-- training step allocates nothing new in steady state).
--
--   lua5.4 tools/train_memory_check.lua [--steps 20] [--batch 64] [--loss adcorre|ce] [--threads N] [--json]
--
-- Exit status 0 when both conditions hold, 1 otherwise. spec/models_spec.lua
-- calls run() directly.
local ac = require("adcorre")

local M = {}

local function rss_bytes()
  local f = io.open("/proc/self/statm", "r")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  local resident = tonumber(line:match("^%d+%s+(%d+)"))
  return resident * 4096
end

--- o = {steps = 20, batch = 64, loss = "adcorre"|"ce", seed = 1, size = 48}
--- Returns {losses = {...}, rss = {...} (bytes), ok_loss, ok_rss, ratio, seconds}
function M.run(o)
  o = o or {}
  local steps, B, size = o.steps or 20, o.batch or 64, o.size or 48
  -- what the caller left for the collector (a spec run before this one) must
  -- not be freed during the measured steps and pass for a shrinking step
  collectgarbage("collect")
  collectgarbage("collect")
  ac.manual_seed(o.seed or 1)
  local net = ac.models.minixception{in_channels = 1, size = size, classes = 7, k = 10, d = 256}
  net:training()
  local opt = ac.optim.Adam(net, {lr = 1e-3, decay = 1e-5})
  local x = ac.randn(B, 1, size, size)
  local labels = {}
  for i = 1, B do labels[i] = (i - 1) % 7 + 1 end
  local y = ac.tensor(labels, "int64")
  local crit
  if o.loss == "ce" then
    crit = ac.nn.CrossEntropyCriterion()
  else
    crit = ac.AdCorreLoss{classes = 7}
  end
  local losses, rss = {}, {}
  local t0 = ac.now()
  for s = 1, steps do
    net:zeroGradParameters()
    local out = net:forward(x)
    local gl, ge, L
    if o.loss == "ce" then
      L = crit:forward(out.logits, y)
      gl = crit:backward(out.logits, y)
    else
      L = crit:forward(out.logits, out.embeddings, y)
      gl, ge = crit:backward()
    end
    net:backward(x, {logits = gl, embeddings = ge})
    opt:step()
    losses[s] = L
    rss[s] = rss_bytes()
  end
  local r = {losses = losses, rss = rss, seconds = ac.now() - t0}
  r.ok_loss = losses[steps] < losses[1]
  r.ratio = rss[steps] / rss[math.min(3, steps)]
  r.ok_rss = math.abs(r.ratio - 1) <= 0.05
  return r
end

if arg and arg[0] and arg[0]:match("train_memory_check%.lua$") then
  local o, json = {}, false
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--steps" then o.steps = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--batch" then o.batch = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--loss" then o.loss = arg[i + 1]; i = i + 1
    elseif a == "--threads" then ac.set_num_threads(tonumber(arg[i + 1])); i = i + 1
    elseif a == "--json" then json = true
    elseif a == "--help" or a == "-h" then
      print("usage: lua5.4 tools/train_memory_check.lua [--steps 20] [--batch 64] [--loss adcorre|ce] [--threads N] [--json]")
      os.exit(0)
    else io.stderr:write("unknown argument " .. a .. "\n"); os.exit(2) end
    i = i + 1
  end
  local r = M.run(o)
  if json then
    print(require("adcorre.serialize").json.encode({losses = r.losses, rss = r.rss, rss_ratio = r.ratio,
      loss_decreased = r.ok_loss, rss_flat = r.ok_rss, seconds = r.seconds}))
  else
    for s = 1, #r.losses do
      print(("step %2d  loss %.5f  rss %.1f MiB"):format(s, r.losses[s], r.rss[s] / 2 ^ 20))
    end
    print(("loss %.5f -> %.5f (%s); rss step 3 -> %d: x%.4f (%s); %.2f s"):format(r.losses[1], r.losses[#r.losses],
      r.ok_loss and "decreased" or "DID NOT DECREASE", #r.rss, r.ratio, r.ok_rss and "within 5%" or "NOT within 5%",
      r.seconds))
  end
  os.exit((r.ok_loss and r.ok_rss) and 0 or 1)
end

return M
