--- tools/onnx_keras_check.lua - ac.onnx.export of models imported from Keras
-- (ac.keras.load), checked like the native exports (tools/onnx_check.lua):
-- the ONNX checker (full_check), ONNX Runtime at batch 1 and 3 against
-- adcorre's forward of the Keras model, and export -> ac.onnx.load ->
-- forward against the same. The Keras files are tools/keras_h5_make.py's:
--   minixception_k20        Keras 2.0 mini-Xception, Conv2D + GAP + softmax
--                           head: a keras.Graph, outputs logits, probabilities
--   adcorre_xception_small  the Ad-Corre Xception (tf.keras 2.4) at 96x96:
--                           the native AdCorreNet (logits, embeddings,
--                           probabilities), and with {native = false} the
--                           keras.Graph with 11 outputs named after its layers
--   multi_output            depthwise, average pooling, concatenated maps,
--                           NHWC Flatten, Dense + BatchNormalization, 3 outputs
--   chunked                 Flatten + Dense softmax
-- Also checks adcorre's forward against the PyTorch outputs that
-- keras_h5_make.py wrote for the file's own input (column "keras").
--
--   lua5.4 tools/onnx_keras_check.lua [--cases a,b] [--json]
-- Errors are max |ours - theirs| / max |ours| per output; the bar is 1e-4.
-- Also loaded by spec/onnx_keras_spec.lua.
if not package.loaded["adcorre.core"] then
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./build/?.so;" .. package.cpath
end
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")
local check = dofile("tools/onnx_check.lua")

local M = {TOL = check.TOL, DIR = "build/keras-fixtures"}

M.CASES = {
  {label = "minixception_k20", file = "minixception_k20", outputs = {"logits", "probabilities"}},
  {label = "adcorre_xception_small", file = "adcorre_xception_small", native = true,
   outputs = {"logits", "embeddings", "probabilities"}},
  {label = "adcorre_xception_small_graph", file = "adcorre_xception_small", load = {native = false}},
  {label = "multi_output", file = "multi_output"},
  {label = "chunked", file = "chunked", outputs = {"logits", "probabilities"}},
}

--- nil when the Keras files can be written, else what is missing.
function M.h5_missing()
  local p = io.popen("/usr/bin/python3 -c 'import h5py, torch' 2>&1; echo $?")
  local out = p:read("a")
  p:close()
  if not out:match("0%s*$") then return "python3-h5py or python3-torch is not installed" end
  return nil
end

--- Writes the Keras files of the given makers that are not there yet.
function M.make(files)
  local missing = {}
  for _, n in ipairs(files) do
    local f = io.open(M.DIR .. "/" .. n .. ".h5")
    if f then f:close() else missing[#missing + 1] = n end
  end
  if #missing == 0 then return end
  local h = io.popen(("nice -n 10 /usr/bin/python3 tools/keras_h5_make.py %s %s 2>&1"):format(M.DIR,
    table.concat(missing, " ")))
  local out = h:read("a")
  assert(h:close(), "tools/keras_h5_make.py failed: " .. out)
end

-- adcorre's outputs of model for x, by ONNX output name (the export's
-- contract, adcorre.onnx.export_keras).
local function reference(model, x, names)
  if model.trunk and model.heads then return check.reference(model, x) end
  local y = model:forward(x)
  if ac.is_tensor(y) then y = {y} end
  local r = {}
  if names[1] == "logits" and names[2] == "probabilities" then
    local n = model.nodes[model.outputs[1]]
    local m = n.module
    local pre = m.__typename == "nn.SoftMax" and model._vals[n.inputs[1]] or m.modules[#m.modules - 1].output
    r.logits, r.probabilities = pre:clone(), y[1]:clone()
  else
    for k, name in ipairs(names) do r[name] = y[k]:clone() end
  end
  return r
end

-- ac.onnx.load's outputs with the embeddings list concatenated
local function loaded(g, x)
  local o = g:forward(x)
  local r = {}
  for k, v in pairs(o) do r[k] = ac.is_tensor(v) and v or ac.cat(v, 2) end
  return r
end

--- Every check for one case; returns a report table.
function M.run_case(case, dir, opts)
  opts = opts or {}
  local h5 = M.DIR .. "/" .. case.file .. ".h5"
  local model, info = ac.keras.load(h5, case.load)
  local path = dir .. "/" .. case.label .. ".onnx"
  local t0 = ac.now()
  local gt = ac.onnx.export(model, path, {probabilities = case.native or nil})
  local rep = {label = case.label, native = info.native, export_s = ac.now() - t0, batches = {}, outputs = {},
               nodes = #gt.nodes}
  for k, o in ipairs(gt.outputs) do rep.outputs[k] = o.name end
  if not opts.skip_checker then rep.checker = check.check(path) end
  -- adcorre against PyTorch on the file's own input
  local x0 = ac.load_npy(M.DIR .. "/" .. case.file .. "_input.npy")
  local y0 = model:forward(x0)
  if model.trunk then
    rep.keras = {logits = check.relerr(ac.load_npy(M.DIR .. "/" .. case.file .. "_logits.npy"), y0.logits)}
  else
    if ac.is_tensor(y0) then y0 = {y0} end
    rep.keras = {}
    for k, t in ipairs(y0) do
      rep.keras["out" .. k] = check.relerr(ac.load_npy(("%s/%s_out%d.npy"):format(M.DIR, case.file, k)), t)
    end
  end
  local g = ac.onnx.load(path)
  local s = model.input_shape
  for _, B in ipairs({1, 3}) do
    ac.manual_seed(200 + B)
    local x = ac.rand(B, s[1], s[2], s[3])
    local ref = reference(model, x, rep.outputs)
    local b = {batch = B, roundtrip = {}}
    if not opts.skip_ort then
      local o = check.ort(path, x, dir)
      b.ort = {}
      for _, n in ipairs(rep.outputs) do b.ort[n] = check.relerr(ref[n], o[n]) end
    end
    local r = loaded(g, x)
    for _, n in ipairs(rep.outputs) do b.roundtrip[n] = check.relerr(ref[n], r[n]) end
    rep.batches[#rep.batches + 1] = b
  end
  return rep
end

local function worst(e)
  local w = 0
  for _, v in pairs(e) do w = math.max(w, v) end
  return w
end
M.worst = worst

local function main()
  local want, as_json = nil, false
  local i = 1
  while i <= #arg do
    if arg[i] == "--cases" then want = {}; for c in arg[i + 1]:gmatch("[^,]+") do want[c] = true end; i = i + 1
    elseif arg[i] == "--json" then as_json = true
    else io.stderr:write("usage: lua5.4 tools/onnx_keras_check.lua [--cases a,b] [--json]\n"); os.exit(2) end
    i = i + 1
  end
  local missing = check.ort_missing() or check.checker_missing() or M.h5_missing()
  if missing then io.stderr:write("onnx_keras_check: " .. missing .. "\n"); os.exit(3) end
  ac.set_num_threads(2)
  local cases, files = {}, {}
  for _, c in ipairs(M.CASES) do
    if not want or want[c.label] then cases[#cases + 1] = c; files[#files + 1] = c.file end
  end
  M.make(files)
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))
  local all, bad = {}, false
  for _, c in ipairs(cases) do
    local r = M.run_case(c, dir)
    all[#all + 1] = r
    bad = bad or not r.checker.ok or worst(r.keras) > M.TOL
    if not as_json then
      print(("%s%s: %d nodes, outputs %s, export %.2f s, checker %s; adcorre vs PyTorch %.2e"):format(c.label,
        r.native and " (native AdCorreNet)" or "", r.nodes, table.concat(r.outputs, ", "), r.export_s,
        r.checker.ok and "ok" or ("FAILED: " .. tostring(r.checker.error)), worst(r.keras)))
    end
    for _, b in ipairs(r.batches) do
      for _, kind in ipairs({"ort", "roundtrip"}) do
        local e = b[kind]
        bad = bad or worst(e) > M.TOL
        if not as_json then
          local parts = {}
          for _, n in ipairs(r.outputs) do parts[#parts + 1] = ("%s %.2e"):format(n, e[n]) end
          print(("  batch %d %-9s max rel. error: %s  %s"):format(b.batch, kind, table.concat(parts, "  "),
            worst(e) <= M.TOL and "ok" or "OVER 1e-4"))
        end
      end
    end
  end
  os.execute("rm -rf '" .. dir .. "'")
  if as_json then print(json.encode({tolerance = M.TOL, cases = all, ok = not bad})) end
  os.exit(bad and 1 or 0)
end

if arg and arg[0] and arg[0]:match("onnx_keras_check%.lua$") then main() end
return M
