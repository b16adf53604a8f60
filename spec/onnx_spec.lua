-- ac.onnx: export checked by the ONNX checker (python3-onnx) and ONNX
-- Runtime (npm onnxruntime-node, `make ort`), the export -> load round
-- trip, the reader on files made by the onnx package, and bad input.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local core = require("adcorre.core")
local check = dofile("tools/onnx_check.lua")

local files = require("files")
local tmpdir, read, write = files.tmpdir, files.read, files.write

local function ls(dir)
  return (fs.listdir(dir))
end

local function strip(e) return (tostring(e):gsub("^[%w%./_%-]+%.lua:%d+: ", "", 1)) end

local dir = tmpdir()
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

describe("onnx export of the native models", function()
  for _, arch in ipairs({"minixception", "xception"}) do
    it(arch .. ": checker, ONNX Runtime at batch 1 and 3, and the round trip within 1e-4", function()
      ac.set_num_threads(2)
      local skip_checker, skip_ort = check.checker_missing(), check.ort_missing()
      local r = check.run_arch(arch, dir, {skip_checker = skip_checker, skip_ort = skip_ort})
      if not skip_checker then
        assert.is_true(r.checker.ok, tostring(r.checker.error))
        assert.are.equal(8, r.checker.ir_version)
        assert.is_true(r.checker.opset >= 13)
        local net = check.model(arch, 7)
        local s = net.input_shape
        assert.are.same({"N", s[1], s[2], s[3]}, r.checker.inputs.input)
        assert.are.same({"N", 7}, r.checker.outputs.logits)
        assert.are.same({"N", 2560}, r.checker.outputs.embeddings)
        assert.are.same({"N", 7}, r.checker.outputs.probabilities)
        -- batch norms folded, no dropout: an inference graph
        for _, op in ipairs(r.checker.ops) do
          assert.is_true(op ~= "BatchNormalization" and op ~= "Dropout", op)
        end
        local md = r.checker.metadata
        assert.are.equal('["Neutral","Happy","Sad","Surprise","Fear","Disgust","Anger"]', md.classes)
        assert.are.equal("0,1", md.input_range)
        assert.are.equal(ac.version, md.adcorre_version)
      end
      for _, b in ipairs(r.batches) do
        for _, kind in ipairs({"ort", "roundtrip"}) do
          if b[kind] then
            for name, e in pairs(b[kind]) do
              assert.is_true(e <= check.TOL, ("%s batch %d %s: %s error %g"):format(arch, b.batch, kind, name, e))
            end
          end
        end
      end
      os.remove(dir .. "/" .. arch .. ".onnx")
      if skip_checker then pending(skip_checker) end
      if skip_ort then pending(skip_ort) end
    end)
  end

  it("any AdCorreNet: a free-standing batch norm, biases, average pooling", function()
    local nn = ac.nn
    ac.manual_seed(3)
    local trunk = nn.Sequential()
      :add(nn.Conv2d(3, 6, 3, 1, 1))
      :add(nn.ReLU())
      :add(nn.BatchNorm2d(6))
      :add(nn.AvgPool2d(2, 2))
      :add(nn.Conv2d(6, 8, 3, 2, "same", 2))
      :add(nn.BatchNorm2d(8, 1e-3, 0.1, {relu = true}))
      :add(nn.MaxPool2d(3, 2, "same"))
    local net = ac.models.AdCorreNet(trunk, 8, {classes = 5, k = 3, d = 4})
    net.input_shape = {3, 17, 15}
    net:apply(function(m)
      if m.running_mean then
        m.running_mean:copy(ac.randn(m.running_mean:numel()))
        m.running_var:copy(ac.rand(m.running_var:numel()) + 0.5)
      end
    end)
    net:evaluate()
    local path = dir .. "/custom.onnx"
    ac.onnx.export(net, path)
    local x = ac.rand(3, 3, 17, 15)
    local ref = check.reference(net, x)
    local g = ac.onnx.load(path)
    local o = g:forward(x)
    assert.is_true(check.relerr(ref.logits, o.logits) <= 1e-5)
    assert.are.equal(3, #o.embeddings)
    assert.is_true(check.relerr(ref.embeddings, ac.cat(o.embeddings, 2)) <= 1e-5)
    assert.is_nil(o.probabilities)
    local ops = {}
    for _, n in ipairs(ac.onnx.read(path).nodes) do ops[n.op_type] = true end
    assert.is_true(ops.BatchNormalization and ops.AveragePool and ops.Conv and true)
    local missing = check.ort_missing()
    if missing then pending(missing); return end
    local r = check.ort(path, x, dir)
    assert.is_true(check.relerr(ref.logits, r.logits) <= check.TOL)
    assert.is_true(check.relerr(ref.embeddings, r.embeddings) <= check.TOL)
  end)

  it("keeps the model's training mode and names the classes given", function()
    local net = ac.models.minixception{size = 28, classes = 3, k = 2, d = 8}
    net:training()
    local path = dir .. "/mode.onnx"
    ac.onnx.export(net, path, {classes = {"a", "b", "c"}, input_range = {-1, 1}})
    assert.is_true(net.train)
    local g = ac.onnx.load(path)
    assert.are.same({"a", "b", "c"}, g.class_names)
    assert.are.equal("-1,1", g.meta.input_range)
    assert.are.same({1, 28, 28}, g.input_shape)
  end)
end)

describe("onnx bad input", function()
  it("names an unsupported module, writes nothing and keeps an existing file", function()
    local Module = require("adcorre.nn.Module")
    local Odd = Module.class("nn.OddLayer", Module)
    function Odd:updateOutput(x) self.output = x; return x end
    local trunk = ac.nn.Sequential():add(ac.nn.Conv2d(1, 4, 3)):add(Odd())
    local net = ac.models.AdCorreNet(trunk, 4, {k = 1, d = 2, classes = 2})
    net.input_shape = {1, 8, 8}
    local sub = tmpdir()
    local path = sub .. "/m.onnx"
    write(path, "previous")
    local ok, e = pcall(ac.onnx.export, net, path)
    assert.is_false(ok)
    assert.matches("onnx.export: trunk/2 (nn.OddLayer) is not supported", strip(e), 1, true)
    assert.are.equal("previous", read(path))
    assert.are.same({"m.onnx"}, ls(sub))
    os.execute("rm -rf '" .. sub .. "'")
  end)

  it("a failed write says why and leaves no temporary file", function()
    local net = ac.models.minixception{size = 16, k = 2, d = 4}
    local ok, e = pcall(ac.onnx.export, net, dir .. "/no/such/folder/m.onnx")
    assert.is_false(ok)
    assert.matches("onnx.save: cannot write " .. dir .. "/no/such/folder/m.onnx", e, 1, true)
    local sub = tmpdir()
    ac.onnx.export(net, sub .. "/m.onnx")
    ac.onnx.export(net, sub .. "/m.onnx", {probabilities = true}) -- replaces it
    assert.are.same({"m.onnx"}, ls(sub))
    assert.are.equal(3, #ac.onnx.read(sub .. "/m.onnx").outputs)
    os.execute("rm -rf '" .. sub .. "'")
  end)

  it("asks for input_shape, rejects unknown options", function()
    local net = ac.models.AdCorreNet(ac.nn.Sequential():add(ac.nn.Conv2d(1, 4, 3)), 4, {k = 1, d = 2})
    local ok, e = pcall(ac.onnx.export, net, dir .. "/x.onnx")
    assert.is_false(ok)
    assert.matches("pass opts.input_shape", e, 1, true)
    ok, e = pcall(ac.onnx.export, net, dir .. "/x.onnx", {input_shape = {1, 8, 8}, probs = true})
    assert.is_false(ok)
    assert.matches("unknown option 'probs'", e, 1, true)
    assert.is_true(pcall(ac.onnx.export, net, dir .. "/x.onnx", {input_shape = {1, 8, 8}}))
  end)

  local small
  local function small_model()
    if small then return small end
    local net = ac.models.minixception{size = 16, k = 2, d = 4}
    small = dir .. "/small.onnx"
    ac.onnx.export(net, small)
    return small
  end

  it("a missing, empty, garbage or truncated file gives a clear error, never a crash", function()
    local ok, e = pcall(ac.onnx.load, dir .. "/none.onnx")
    assert.is_false(ok)
    assert.matches("cannot open .*none.onnx", e)
    local bytes = read(small_model())
    local cases = {[""] = "no graph", ["\255\255\255"] = "truncated", ["hello world"] = "wire type"}
    for s, msg in pairs(cases) do
      write(dir .. "/bad.onnx", s)
      ok, e = pcall(ac.onnx.load, dir .. "/bad.onnx")
      assert.is_false(ok)
      assert.matches(msg, e, 1, true)
    end
    local n = 0
    for cut = 1, #bytes - 1, math.max(1, #bytes // 97) do
      write(dir .. "/cut.onnx", bytes:sub(1, cut))
      ok, e = pcall(ac.onnx.load, dir .. "/cut.onnx")
      assert.is_false(ok, "cut at " .. cut)
      assert.matches("^onnx.load: ", strip(e))
      n = n + 1
    end
    assert.is_true(n > 90)
    write(dir .. "/cut.onnx", bytes:sub(1, #bytes - 3))
    ok, e = pcall(ac.onnx.load, dir .. "/cut.onnx")
    assert.matches("truncated", e, 1, true)
  end)

  -- a decoded file, edited and written back
  local function edited(fn)
    local m = ac.onnx.read(small_model())
    fn(m)
    local p = dir .. "/edited.onnx"
    core.onnx.save(p, m)
    return pcall(ac.onnx.load, p)
  end

  it("an unknown op names the op and the node", function()
    local ok, e = edited(function(m) m.nodes[2].op_type = "LeakyRelu" end)
    assert.is_false(ok)
    assert.matches("node 2 'trunk/conv1_bn/relu' (LeakyRelu): op 'LeakyRelu' is not supported", e, 1, true)
    ok, e = edited(function(m) m.nodes[1].domain = "com.example" end)
    assert.matches("domain 'com.example' is not supported", e, 1, true)
  end)

  it("a wrong-shaped initializer names it and both shapes", function()
    local ok, e = edited(function(m)
      for _, i in ipairs(m.initializers) do
        if i.name == "trunk/conv2.weight" then i.tensor = ac.zeros(8, 3, 3, 3) end
      end
    end)
    assert.is_false(ok)
    assert.matches("initializer weight 'trunk/conv2.weight' has shape [8, 3, 3, 3], expected [?, 8, ?, ?]", e, 1, true)
    ok, e = edited(function(m)
      for _, i in ipairs(m.initializers) do
        if i.name == "classifier.bias" then i.tensor = ac.zeros(5) end
      end
    end)
    assert.is_false(ok)
    assert.matches("initializer C 'classifier.bias' has shape [5], expected [7]", e, 1, true)
    ok, e = edited(function(m) m.nodes[5].inputs[1] = "nowhere" end)
    assert.matches("input 1 ('nowhere') is not computed by an earlier node", e, 1, true)
  end)

  it("core.onnx.save checks its table", function()
    local ok, e = pcall(core.onnx.save, dir .. "/t.onnx", {nodes = {{name = "a"}}, inputs = {}, outputs = {}})
    assert.is_false(ok)
    assert.matches("nodes[1].op_type must be a string, got nil", e, 1, true)
    ok, e = pcall(core.onnx.save, dir .. "/t.onnx", {nodes = {}, inputs = {{name = "x", dims = {1.5}}}, outputs = {}})
    assert.matches("inputs[1]: dims[1] must be a non-negative integer or a name", e, 1, true)
    ok, e = pcall(core.onnx.save, dir .. "/t.onnx", {nodes = {{op_type = "X",
      attrs = {{name = "a", type = "blob", value = 1}}}}, inputs = {}, outputs = {}})
    assert.matches("unknown attribute type 'blob'", e, 1, true)
  end)
end)

describe("onnx reader", function()
  it("writes and reads back every attribute type, metadata and dims", function()
    local p = dir .. "/attrs.onnx"
    local w = ac.randn(2, 3)
    core.onnx.save(p, {producer_name = "t", graph_name = "g", metadata = {{"k", "v"}, {"empty", ""}},
      nodes = {{op_type = "Op", name = "n", inputs = {"x", "", "w"}, outputs = {"y"}, attrs = {
        {name = "i", type = "int", value = -3}, {name = "f", type = "float", value = 0.5},
        {name = "s", type = "string", value = "a\0b"}, {name = "is", type = "ints", value = {1, -2, 1 << 40}},
        {name = "fs", type = "floats", value = {1.25, -2}}}}},
      initializers = {{name = "w", tensor = w}, {name = "l", tensor = ac.tensor({5, -6}, "int64")}},
      inputs = {{name = "x", dims = {"batch", 3, 0}}}, outputs = {{name = "y", dims = {}}}})
    local m = ac.onnx.read(p)
    assert.are.equal(8, m.ir_version)
    assert.are.equal(13, m.opset)
    assert.are.same({{"k", "v"}, {"empty", ""}}, m.metadata)
    local n = m.nodes[1]
    assert.are.same({"x", "", "w"}, n.inputs)
    local a = {}
    for _, e in ipairs(n.attrs) do a[e.name] = e end
    assert.are.same({-3, 0.5, "a\0b", {1, -2, 1 << 40}, {1.25, -2}},
      {a.i.value, a.f.value, a.s.value, a.is.value, a.fs.value})
    assert.are.equal("ints", a.is.type)
    assert.is_true(m.initializers[1].tensor:equal(w))
    assert.are.same({5, -6}, m.initializers[2].tensor:totable())
    assert.are.same({"batch", 3, 0}, m.inputs[1].dims)
  end)

  it("runs a model written by the onnx package (float_data, MatMul, Add of a constant, auto_pad) as ONNX Runtime does", function()
    local missing = check.checker_missing()
    if missing then pending(missing); return end
    local p = dir .. "/helper.onnx"
    local py = [[
import sys, numpy as np, onnx
from onnx import TensorProto as T, helper as h
r = np.random.default_rng(0)
w = r.standard_normal((4, 2, 3, 3)).astype(np.float32)
fc = r.standard_normal((4, 3))
nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
         h.make_node("Relu", ["c"], ["r"]),
         h.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]),
         h.make_node("GlobalAveragePool", ["p"], ["g"]), h.make_node("Flatten", ["g"], ["f"]),
         h.make_node("MatMul", ["f", "fc"], ["m"]), h.make_node("Add", ["m", "bias"], ["a"]),
         h.make_node("Softmax", ["a"], ["y"], axis=1)]
inits = [h.make_tensor("w", T.FLOAT, w.shape, w.flatten().tolist()),
         h.make_tensor("b", T.FLOAT, [4], [0.1, -0.2, 0.3, 0.0]),
         h.make_tensor("fc", T.FLOAT, [4, 3], fc.flatten().tolist()),
         h.make_tensor("bias", T.FLOAT, [3], [1.0, 0.0, -1.0])]
g = h.make_graph(nodes, "helper", [h.make_tensor_value_info("x", T.FLOAT, ["N", 2, 9, 8])],
                 [h.make_tensor_value_info("y", T.FLOAT, ["N", 3])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
]]
    write(dir .. "/helper.py", py)
    assert.is_true(os.execute("/usr/bin/python3 '" .. dir .. "/helper.py' '" .. p .. "'"))
    local g = ac.onnx.load(p)
    ac.manual_seed(5)
    local x = ac.randn(2, 2, 9, 8)
    local y = g:forward(x).y
    assert.are.same({2, 3}, y:shape())
    missing = check.ort_missing()
    if missing then pending(missing); return end
    local r = check.ort(p, x, dir)
    assert.is_true(check.relerr(r.y, y) <= 1e-5, tostring(check.relerr(r.y, y)))
  end)
end)
