-- ac.onnx.export of models imported from Keras (tools/onnx_keras_check.lua):
-- the ONNX checker, ONNX Runtime at batch 1 and 3 and the export -> load
-- round trip against adcorre's forward, the output names, metadata, and
-- the errors.
local ac = require("adcorre")
local check = dofile("tools/onnx_check.lua")
local kc = dofile("tools/onnx_keras_check.lua")
local files = require("files")

local h5_missing = kc.h5_missing()
local dir = files.tmpdir()
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

local ENV = "LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./build/?.so;;' nice -n 10 lua5.4 "

local function strip(e) return (tostring(e):gsub("^[%w%./_%-]+%.lua:%d+: ", "", 1)) end

local function ops_of(path)
  local ops = {}
  for _, n in ipairs(ac.onnx.read(path).nodes) do ops[n.op_type] = (ops[n.op_type] or 0) + 1 end
  return ops
end

local EXPECT = {
  adcorre_xception_small_graph = {"dense_10", "lambda", "lambda_1", "lambda_2", "lambda_3", "lambda_4",
    "lambda_5", "lambda_6", "lambda_7", "lambda_8", "lambda_9"},
  multi_output = {"dense", "lambda", "add"},
}

describe("onnx export of Keras models", function()
  for _, case in ipairs(kc.CASES) do
    it(case.label .. ": checker, ONNX Runtime at batch 1 and 3, round trip within 1e-4", function()
      if h5_missing then pending(h5_missing); return end
      kc.make({case.file})
      ac.set_num_threads(2)
      local skip_checker, skip_ort = check.checker_missing(), check.ort_missing()
      local r = kc.run_case(case, dir, {skip_checker = skip_checker, skip_ort = skip_ort})
      assert.are.equal(case.native or false, r.native)
      assert.are.same(case.outputs or EXPECT[case.label], r.outputs)
      assert.is_true(kc.worst(r.keras) <= kc.TOL, "adcorre vs PyTorch " .. kc.worst(r.keras))
      for _, b in ipairs(r.batches) do
        for _, kind in ipairs({"ort", "roundtrip"}) do
          for name, e in pairs(b[kind] or {}) do
            assert.is_true(e <= kc.TOL, ("%s batch %d %s: %s error %g"):format(case.label, b.batch, kind, name, e))
          end
        end
      end
      local path = dir .. "/" .. case.label .. ".onnx"
      local ops = ops_of(path)
      assert.is_nil(ops.BatchNormalization, "every batch norm follows a convolution or Dense: folded")
      assert.is_nil(ops.Dropout)
      if case.file == "multi_output" or case.file == "chunked" then assert.is_true(ops.Transpose == 1) end
      if case.file == "multi_output" then assert.is_true(ops.AveragePool == 1 and ops.Concat == 1) end
      local g = ac.onnx.load(path)
      assert.are.equal(ac.version, g.meta.adcorre_version)
      assert.are.equal("0,1", g.meta.input_range)
      if not case.native then
        local want = ({minixception_k20 = '["predictions"]', chunked = '["dense"]'})[case.label]
          or require("adcorre.json").encode(EXPECT[case.label])
        assert.are.equal(want, g.meta.keras_outputs)
      else
        assert.are.equal("10", g.meta.k)
        assert.are.equal(10, #g:forward(ac.rand(1, 3, 96, 96)).embeddings)
      end
      if not skip_checker then
        assert.is_true(r.checker.ok, tostring(r.checker.error))
        assert.are.equal(8, r.checker.ir_version)
        assert.is_true(r.checker.opset >= 13)
        assert.are.equal("N", r.checker.inputs.input[1])
      end
      os.remove(path)
      if skip_checker then pending(skip_checker) end
      if skip_ort then pending(skip_ort) end
    end)
  end

  it("names an unsupported module inside a Keras graph", function()
    if h5_missing then pending(h5_missing); return end
    kc.make({"chunked"})
    local model = ac.keras.load(kc.DIR .. "/chunked.h5")
    local Module = require("adcorre.nn.Module")
    local Odd = Module.class("nn.OddKerasLayer", Module)
    function Odd:updateOutput(x) self.output = x; return x end
    for _, n in ipairs(model.nodes) do
      if n.name == "max_pooling2d" then n.module = Odd() end
    end
    local ok, e = pcall(ac.onnx.export, model, dir .. "/odd.onnx")
    assert.is_false(ok)
    assert.matches("onnx.export: max_pooling2d (nn.OddKerasLayer) is not supported", strip(e), 1, true)
  end)

  it("a Keras graph inside an AdCorreNet (a trunk other than Xception's) exports", function()
    if h5_missing then pending(h5_missing); return end
    kc.make({"multi_output"})
    local g = ac.keras.load(kc.DIR .. "/multi_output.h5")
    -- the feature map output alone: the nodes up to it (its ancestors) as a graph
    local Graph = require("adcorre.keras.Graph")
    local nodes = {}
    for i = 1, g.outputs[3] do
      local n = g.nodes[i]
      nodes[i] = {module = n.module, inputs = n.inputs, name = n.name}
    end
    local one = Graph(nodes, {g.outputs[3]})
    local net = ac.models.AdCorreNet(ac.nn.Sequential():add(one), 32,
      {classes = 4, k = 2, d = 3})
    net.input_shape = g.input_shape
    net:evaluate()
    local path = dir .. "/in_net.onnx"
    ac.onnx.export(net, path)
    ac.manual_seed(4)
    local x = ac.rand(3, table.unpack(g.input_shape))
    local ref = check.reference(net, x)
    local o = ac.onnx.load(path):forward(x)
    assert.is_true(check.relerr(ref.logits, o.logits) <= kc.TOL)
    assert.is_true(check.relerr(ref.embeddings, ac.cat(o.embeddings, 2)) <= kc.TOL)
    local missing = check.ort_missing()
    if missing then pending(missing); return end
    local r = check.ort(path, x, dir)
    assert.is_true(check.relerr(ref.logits, r.logits) <= kc.TOL)
  end)

  it("examples/export.lua takes a Keras file with --classes and --input-range", function()
    if h5_missing then pending(h5_missing); return end
    kc.make({"chunked"})
    local out = dir .. "/cli.onnx"
    local p = io.popen((ENV .. "examples/export.lua --model %s/chunked.h5 --onnx %s --classes a,b,c,d,e "
      .. "--input-range=-1,1 --json 2>&1"):format(kc.DIR, out))
    local s = p:read("a")
    assert.is_true(p:close(), s)
    local j = require("adcorre.json").decode(s:match("({.*})%s*$"))
    assert.are.same({"logits", "probabilities"}, j.outputs)
    local g = ac.onnx.load(out)
    assert.are.same({"a", "b", "c", "d", "e"}, g.class_names)
    assert.are.equal("-1,1", g.meta.input_range)
    assert.are.equal('["dense"]', g.meta.keras_outputs)
    p = io.popen((ENV .. "examples/export.lua --model %s/chunked.h5 --onnx %s --classes a,b 2>&1"):format(kc.DIR, out))
    s = p:read("a")
    assert.is_falsy(p:close())
    assert.matches("--classes", s, 1, true)
  end)

  it("ac.onnx.load refuses a malformed Transpose in a Keras export", function()
    if h5_missing then pending(h5_missing); return end
    kc.make({"chunked"})
    local path = dir .. "/t.onnx"
    ac.onnx.export(ac.keras.load(kc.DIR .. "/chunked.h5"), path)
    local m = ac.onnx.read(path)
    for _, n in ipairs(m.nodes) do
      if n.op_type == "Transpose" then n.attrs[1].value = {0, 2, 2, 1} end
    end
    require("adcorre.core").onnx.save(path, m)
    local ok, e = pcall(ac.onnx.load, path)
    assert.is_false(ok)
    assert.matches("(Transpose): perm {0, 2, 2, 1} is not a permutation of 0..3", e, 1, true)
  end)
end)
