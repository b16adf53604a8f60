--- tools/onnx_check.lua - ac.onnx.export checked by independent tools:
-- the ONNX checker (python3-onnx, full_check) and ONNX Runtime (npm
-- onnxruntime-node, tools/onnx_ort_run.js), plus the export -> ac.onnx.load
-- round trip, for each architecture at batch sizes 1 and 3.
--
--   lua5.4 tools/onnx_check.lua [--models minixception,xception] [--json]
--
-- Models get random weights and random batch-norm statistics (so that the
-- folding of the norms into the convolutions is exercised). Errors are
-- max |ours - theirs| / max |ours| over each output; the bar is 1e-4.
-- Also loaded by spec/onnx_spec.lua (require-style: returns its functions).
-- Run as a script it finds the fresh build; loaded by a spec it keeps the
-- spec's paths (the sanitizer run must not load build/adcorre/core.so
-- beside build-asan's: two copies of the library in one process).
if not package.loaded["adcorre.core"] then
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./build/?.so;" .. package.cpath
end
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")

local M = {}

M.TOL = 1e-4

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

--- nil when ONNX Runtime can run, else what is missing.
function M.ort_missing()
  if not run("node --version") then return "node (Node.js) is not installed" end
  local dir = os.getenv("ORT_DIR") or "build/ort"
  local f = io.open(dir .. "/node_modules/onnxruntime-node/package.json")
  if not f then return "onnxruntime-node is not in " .. dir .. " (run `make ort`)" end
  f:close()
  return nil
end

--- nil when the ONNX checker can run, else what is missing.
function M.checker_missing()
  if not run("/usr/bin/python3 -c 'import onnx'") then return "python3-onnx is not installed" end
  return nil
end

--- The checker's verdict on a file: {ok =, error =, ...}.
function M.check(path)
  local _, out = run("/usr/bin/python3 tools/onnx_checker.py " .. sh(path))
  local line = out:match("({.*})%s*$")
  if not line then return {ok = false, error = out} end
  return json.decode(line)
end

--- ONNX Runtime's outputs for input x: name -> tensor.
function M.ort(path, x, dir)
  ac.save_npy(dir .. "/input.npy", x)
  local ok, out = run(("node tools/onnx_ort_run.js %s %s %s"):format(sh(path), sh(dir .. "/input.npy"), sh(dir)))
  if not ok then error("onnx_ort_run failed: " .. out, 0) end
  local info = json.decode(out:match("({.*})%s*$"))
  local r = {}
  for name in pairs(info.outputs) do r[name] = ac.load_npy(dir .. "/" .. name .. ".npy") end
  return r
end

--- max |a - b| / max |a|
function M.relerr(a, b)
  local sa, sb = a:shape(), b:shape()
  if table.concat(sa, "x") ~= table.concat(sb, "x") then
    error(("shapes differ: [%s] vs [%s]"):format(table.concat(sa, ", "), table.concat(sb, ", ")), 0)
  end
  local scale = a:abs():max()
  return (a - b):abs():max() / (scale > 0 and scale or 1)
end

--- A model of architecture `arch` with random weights and norm statistics.
function M.model(arch, seed)
  ac.manual_seed(seed or 1)
  local net = ac.models[arch]{}
  net:apply(function(m)
    if m.running_mean then
      local n = m.running_mean:numel()
      m.running_mean:copy(ac.randn(n) * 0.2)
      m.running_var:copy(ac.rand(n) + 0.5)
      if m.weight then m.weight:copy(ac.rand(n) + 0.5) end
      if m.bias then m.bias:copy(ac.randn(n) * 0.2) end
    end
  end)
  net:evaluate()
  return net
end

--- adcorre's own outputs: {logits, embeddings (concatenated), probabilities}
function M.reference(net, x)
  local o = net:forward(x)
  return {logits = o.logits:clone(), embeddings = ac.cat(o.embeddings, 2),
          probabilities = ac.nn.SoftMax():forward(o.logits):clone()}
end

--- Every check for one architecture; returns a report table.
function M.run_arch(arch, dir, opts)
  opts = opts or {}
  local net = M.model(arch, 7)
  local path = dir .. "/" .. arch .. ".onnx"
  local t0 = ac.now()
  ac.onnx.export(net, path, {probabilities = true})
  local rep = {arch = arch, export_s = ac.now() - t0, batches = {}}
  local f = io.open(path, "rb")
  rep.bytes = f:seek("end")
  f:close()
  if not opts.skip_checker then rep.checker = M.check(path) end
  local g = ac.onnx.load(path)
  local s = net.input_shape
  for _, B in ipairs({1, 3}) do
    ac.manual_seed(100 + B)
    local x = ac.rand(B, s[1], s[2], s[3])
    local ref = M.reference(net, x)
    local b = {batch = B}
    if not opts.skip_ort then
      local o = M.ort(path, x, dir)
      b.ort = {}
      for _, n in ipairs({"logits", "embeddings", "probabilities"}) do b.ort[n] = M.relerr(ref[n], o[n]) end
    end
    local r = g:forward(x)
    b.roundtrip = {logits = M.relerr(ref.logits, r.logits),
                   embeddings = M.relerr(ref.embeddings, ac.cat(r.embeddings, 2)),
                   probabilities = M.relerr(ref.probabilities, r.probabilities)}
    rep.batches[#rep.batches + 1] = b
  end
  return rep
end

local function main()
  local models, as_json = "minixception,xception", false
  local i = 1
  while i <= #arg do
    if arg[i] == "--models" then models = arg[i + 1]; i = i + 1
    elseif arg[i] == "--json" then as_json = true
    else io.stderr:write("usage: lua5.4 tools/onnx_check.lua [--models a,b] [--json]\n"); os.exit(2) end
    i = i + 1
  end
  local missing = M.ort_missing() or M.checker_missing()
  if missing then io.stderr:write("onnx_check: " .. missing .. "\n"); os.exit(3) end
  ac.set_num_threads(2)
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))
  local all, bad = {}, false
  for arch in models:gmatch("[^,]+") do
    local r = M.run_arch(arch, dir)
    all[#all + 1] = r
    if not as_json then
      print(("%s: %.1f MB, export %.2f s, checker %s (IR %s, opset %s, %s nodes)"):format(arch, r.bytes / 1e6,
        r.export_s, r.checker.ok and "ok" or ("FAILED: " .. tostring(r.checker.error)), tostring(r.checker.ir_version),
        tostring(r.checker.opset), tostring(r.checker.nodes)))
    end
    bad = bad or not r.checker.ok
    for _, b in ipairs(r.batches) do
      for _, kind in ipairs({"ort", "roundtrip"}) do
        local e = b[kind]
        local worst = math.max(e.logits, e.embeddings, e.probabilities)
        bad = bad or worst > M.TOL
        if not as_json then
          print(("  batch %d %-9s max rel. error: logits %.2e  embeddings %.2e  probabilities %.2e  %s"):format(
            b.batch, kind, e.logits, e.embeddings, e.probabilities, worst <= M.TOL and "ok" or "OVER 1e-4"))
        end
      end
    end
  end
  os.execute("rm -rf " .. sh(dir))
  if as_json then print(json.encode({tolerance = M.TOL, models = all, ok = not bad})) end
  os.exit(bad and 1 or 0)
end

if arg and arg[0] and arg[0]:match("onnx_check%.lua$") then main() end
return M
