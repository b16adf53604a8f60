--- bench/conv_bench.lua - the convolution kernels of nn_conv.c against the
-- fast kernels of conv_fast.c on the shapes of mini-Xception (batch 64) and
-- Xception (batch 8): milliseconds and GFLOP/s of forward, input gradient
-- and weight gradient.
--
--   lua5.4 bench/conv_bench.lua [--model minixception|xception|both] [--threads 2] [--reps 3]
package.path = "./lua/?.lua;./lua/?/init.lua;./bench/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")
local core = require("adcorre.core")

local o = {model = "both", threads = 2, reps = 3}
for i = 1, #arg, 2 do
  local k = arg[i]:match("^%-%-(%w+)$")
  if not k or o[k] == nil then io.stderr:write("conv_bench: bad argument " .. arg[i] .. "\n"); os.exit(2) end
  o[k] = k == "model" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
end
ac.set_num_threads(o.threads)

-- {name, N, C, H, O, k, stride, geometry}
local function shapes(model)
  local s = {}
  if model == "minixception" then
    local N = 64
    s[#s + 1] = {"conv1 3x3 1->8 48", N, 1, 48, 8, 3, {1, 1, 0, 0, 0, 0, 1}}
    s[#s + 1] = {"conv2 3x3 8->8 46", N, 8, 46, 8, 3, {1, 1, 0, 0, 0, 0, 1}}
    local H, nin = 44, 8
    for _, c in ipairs({16, 32, 64, 128}) do
      s[#s + 1] = {("dw 3x3 %d @%d"):format(nin, H), N, nin, H, nin, 3, {1, 1, 1, 1, 1, 1, nin}}
      s[#s + 1] = {("pw %d->%d @%d"):format(nin, c, H), N, nin, H, c, 1, {1, 1, 0, 0, 0, 0, 1}}
      s[#s + 1] = {("dw 3x3 %d @%d"):format(c, H), N, c, H, c, 3, {1, 1, 1, 1, 1, 1, c}}
      s[#s + 1] = {("pw %d->%d @%d"):format(c, c, H), N, c, H, c, 1, {1, 1, 0, 0, 0, 0, 1}}
      s[#s + 1] = {("shortcut 1x1/2 %d->%d @%d"):format(nin, c, H), N, nin, H, c, 1, {2, 2, 0, 0, 0, 0, 1}}
      H, nin = (H + 1) // 2, c
    end
  else
    local N = 8
    s[#s + 1] = {"block1_conv1 3x3/2 3->32 224", N, 3, 224, 32, 3, {2, 2, 0, 0, 0, 0, 1}}
    s[#s + 1] = {"block1_conv2 3x3 32->64 111", N, 32, 111, 64, 3, {1, 1, 0, 0, 0, 0, 1}}
    s[#s + 1] = {"block2 dw 64 @109", N, 64, 109, 64, 3, {1, 1, 1, 1, 1, 1, 64}}
    s[#s + 1] = {"block2 pw 64->128 @109", N, 64, 109, 128, 1, {1, 1, 0, 0, 0, 0, 1}}
    s[#s + 1] = {"block3 pw 256->256 @55", N, 256, 55, 256, 1, {1, 1, 0, 0, 0, 0, 1}}
    s[#s + 1] = {"middle dw 728 @19", N, 728, 19, 728, 3, {1, 1, 1, 1, 1, 1, 728}}
    s[#s + 1] = {"middle pw 728->728 @19", N, 728, 19, 728, 1, {1, 1, 0, 0, 0, 0, 1}}
    s[#s + 1] = {"block14 pw 1536->2048 @10", N, 1536, 10, 2048, 1, {1, 1, 0, 0, 0, 0, 1}}
  end
  return s
end

local function best_ms(f)
  f()
  local b = math.huge
  for _ = 1, o.reps do
    local t0 = ac.now()
    f()
    b = math.min(b, ac.now() - t0)
  end
  return b * 1e3
end

print(("conv kernels, %d threads, isa %s, best of %d (load %s)"):format(o.threads, core.convfast.isa(), o.reps,
  io.open("/proc/loadavg"):read("l")))
print(("%-30s %-6s %9s %9s %9s %9s"):format("layer", "pass", "old ms", "fast ms", "old GF/s", "fast GF/s"))
for _, model in ipairs(o.model == "both" and {"minixception", "xception"} or {o.model}) do
  for _, s in ipairs(shapes(model)) do
    local name, N, C, H, O, k, geo = table.unpack(s)
    local g = geo[7]
    local xs, ws = {N, C, H, H}, {O, C // g, k, k}
    local OH, OW, nws = core.nn.conv2d_info(xs, ws, geo)
    local x, w = ac.randn(table.unpack(xs)), ac.randn(table.unpack(ws))
    local y, gy, gx, gw = ac.zeros(N, O, OH, OW), ac.randn(N, O, OH, OW), ac.zeros(table.unpack(xs)), ac.zeros(table.unpack(ws))
    local wsb = nws > 0 and ac.zeros(nws) or nil
    local flops = 2 * N * O * OH * OW * (C // g) * k * k
    local fast = core.convfast.supports(xs, ws, geo)
    local fws = fast and core.convfast.workspace(xs, ws, geo) or 0
    fws = fws > 0 and ac.zeros(fws) or nil
    local rows = {
      {"fwd", function() core.nn.conv2d_forward(x, w, nil, y, wsb, geo) end,
              function() core.convfast.forward(x, w, nil, geo, y, fws) end},
      {"bwd-in", function() core.nn.conv2d_backward_input(x, gy, w, gx, wsb, geo) end,
                 function() core.convfast.backward_input(x, gy, w, geo, gx, fws) end},
      {"bwd-w", function() core.nn.conv2d_backward_params(x, gy, gw, nil, wsb, geo, 1) end,
                function() core.convfast.backward_params(x, gy, gw, nil, geo, 1, fws) end},
    }
    for _, r in ipairs(rows) do
      local a = best_ms(r[2])
      local b = fast and best_ms(r[3]) or nil
      print(("%-30s %-6s %9.2f %9s %9.1f %9s"):format(name, r[1], a, b and ("%.2f"):format(b) or "-",
        flops / a * 1e-6, b and ("%.1f"):format(flops / b * 1e-6) or "-"))
    end
  end
end
