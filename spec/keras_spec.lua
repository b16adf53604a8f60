-- Keras HDF5 import (ac.keras.load / load_weights) against PyTorch: the
-- files are written by tools/keras_h5_make.py with h5py exactly as Keras
-- lays them out, and the same networks are computed by PyTorch from the same
-- config and weights. Error measure: max |ours - torch| / max |torch| <= 1e-4.
-- Also: the bad-input errors, and a finite-difference check of the graph's
-- backward (fan-out, Add, Concatenate, Flatten).
local ac = require("adcorre")
local gradcheck = require("gradcheck")

local TOL = 1e-4
local kf = require("keras_fixtures")
local DIR = kf.DIR
local HAVE = kf.available
local fixtures = kf.make

local function rel(got, want)
  assert.same(want:shape(), got:shape())
  local scale = want:abs():max()
  return (got - want):abs():max() / (scale > 0 and scale or 1)
end

local function npy(name) return ac.load_npy(DIR .. "/" .. name .. ".npy") end

local function errmsg(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function describe_torch(name, body)
  if HAVE then describe(name, body)
  else pending(name .. ": skipped, /usr/bin/python3 lacks h5py or torch (make deps-dev)") end
end

describe_torch("keras import against PyTorch", function()
  setup(function() fixtures("minixception_k20", "adcorre_xception", "xception_notop", "chunked") end)

  it("mini-Xception full model, Keras 2.0 naming: softmax output and pre-softmax", function()
    local m, info = ac.keras.load(DIR .. "/minixception_k20.h5")
    assert.equal("2.0.5", info.keras_version)
    assert.same({1, 48, 48, 7, false, 46}, {info.in_channels, info.height, info.width, info.classes,
      info.native, info.layers})
    local y = m:forward(npy("minixception_k20_input"))
    local r1 = rel(y, npy("minixception_k20_out1"))
    local r2 = rel(m:value("global_average_pooling2d_1"), npy("minixception_k20_logits"))
    print(("\n    minixception_k20: softmax rel %.2e, pre-softmax rel %.2e"):format(r1, r2))
    assert.is_true(r1 <= TOL and r2 <= TOL)
  end)

  it("the authors' Ad-Corre Xception (tf.keras 2.4) comes back as a native AdCorreNet", function()
    local m, info = ac.keras.load(DIR .. "/adcorre_xception.h5")
    assert.equal("models.AdCorreNet", m.__typename)
    assert.same({true, "xception", 10, 256, 7, 3, 224, 224, "2.4.0", 11},
      {info.native, info.trunk, info.k, info.d, info.classes, info.in_channels, info.height, info.width,
       info.keras_version, info.outputs})
    local y = m:forward(npy("adcorre_xception_input"))
    local worst = rel(y.logits, npy("adcorre_xception_logits"))
    local rp = rel(ac.nn.SoftMax():forward(y.logits), npy("adcorre_xception_out1"))
    for j = 1, 10 do
      worst = math.max(worst, rel(y.embeddings[j], npy(("adcorre_xception_out%d"):format(j + 1))))
    end
    print(("\n    adcorre_xception: logits/embeddings rel %.2e, probabilities rel %.2e"):format(worst, rp))
    assert.is_true(worst <= TOL and rp <= TOL)
    -- the same file as a plain graph gives Keras' outputs in order
    local g = ac.keras.load(DIR .. "/adcorre_xception.h5", {native = false})
    local out = g:forward(npy("adcorre_xception_input"))
    assert.equal(11, #out)
    assert.is_true(rel(out[1], npy("adcorre_xception_out1")) <= TOL)
    assert.is_true(rel(out[11], npy("adcorre_xception_out11")) <= TOL)
  end)

  it("a notop ImageNet Xception weights file (counters from conv2d_4) fills ac.models.xception's trunk", function()
    local net = ac.models.xception{size = 96}
    local _, r = ac.keras.load_weights(net, DIR .. "/xception_notop.h5")
    assert.is_true(r.trunk_only)
    assert.equal(40, r.paired)
    net:evaluate()
    local f = net.trunk:forward(npy("xception_notop_input"))
    local e = rel(f:view(f:size(1), -1), npy("xception_notop_features"))
    print(("\n    xception_notop: trunk features rel %.2e"):format(e))
    assert.is_true(e <= TOL)
  end)

  it("attributes split into layer_names0, layer_names1, ...; Flatten in NHWC order", function()
    local m, info = ac.keras.load(DIR .. "/chunked.h5")
    assert.equal(8, info.layers)
    assert.is_true(rel(m:forward(npy("chunked_input")), npy("chunked_out1")) <= TOL)
  end)
end)

describe("keras.Graph", function()
  local topology = require("adcorre.keras.topology")
  local function L(class, name, inputs, config)
    config = config or {}
    config.name = name
    local nodes = {}
    for k, i in ipairs(inputs) do nodes[k] = {i, 0, 0, {}} end
    return {class_name = class, name = name, config = config, inbound_nodes = #inputs > 0 and {nodes} or {}}
  end
  -- a fan-out into an Add and a Concatenate, a separable convolution, a
  -- flatten and two outputs
  local config = {class_name = "Functional", config = {name = "g", layers = {
    L("InputLayer", "in", {}, {batch_input_shape = {ac.keras.NULL, 6, 5, 2}}),
    L("Conv2D", "c1", {"in"}, {filters = 3, kernel_size = {3, 3}, strides = {2, 2}, padding = "same"}),
    L("SeparableConv2D", "s1", {"c1"}, {filters = 3, kernel_size = {3, 3}, padding = "same", use_bias = true}),
    L("Add", "add", {"c1", "s1"}),
    L("Concatenate", "cat", {"add", "c1"}, {axis = -1}),
    L("AveragePooling2D", "ap", {"cat"}, {pool_size = {2, 2}, strides = {1, 1}, padding = "same"}),
    L("Flatten", "fl", {"ap"}),
    L("Dense", "d1", {"fl"}, {units = 4}),
    L("GlobalAveragePooling2D", "gap", {"cat"}),
  }, input_layers = {{"in", 0, 0}}, output_layers = {{"d1", 0, 0}, {"gap", 0, 0}}}}

  it("parses, runs and back-propagates a DAG (finite differences)", function()
    ac.manual_seed(3)
    local g = topology.parse(config, "spec")
    assert.same({6, 3, 3}, g.nodes[g.by_name.cat].shape)
    local m = topology.module(g)
    for _, p in ipairs(m:parameters()) do p:copy(ac.randn(table.unpack(p:shape())) * 0.5) end
    local out = m:forward(ac.rand(2, 2, 6, 5))
    assert.same({2, 4}, out[1]:shape())
    assert.same({2, 6}, out[2]:shape())
    gradcheck.assert_module(m, ac.rand(2, 2, 6, 5), {eps = 1e-2, rtol = 2e-2})
  end)

  it("refuses cycles, unknown inputs and several inputs", function()
    local bad = {class_name = "Functional", config = {name = "g", layers = {
      L("InputLayer", "in", {}, {batch_input_shape = {ac.keras.NULL, 4, 4, 1}}),
      L("ReLU", "a", {"b"}), L("ReLU", "b", {"a"})},
      input_layers = {{"in", 0, 0}}, output_layers = {{"b", 0, 0}}}}
    assert.matches("cycle through 'b'", errmsg(topology.parse, bad, "spec"))
    bad.config.layers[2] = L("ReLU", "a", {"zz"})
    assert.matches("layer 'a' reads 'zz', which is not in the model", errmsg(topology.parse, bad, "spec"))
    bad.config.input_layers = {{"in", 0, 0}, {"a", 0, 0}}
    assert.matches("2 inputs", errmsg(topology.parse, bad, "spec"))
  end)
end)

describe_torch("keras import errors", function()
  setup(function() fixtures("bad", "chunked", "xception_notop") end)

  it("a missing file, a folder, a non-HDF5 file and a truncated file", function()
    assert.matches("cannot open .*nope%.h5", errmsg(ac.keras.load, DIR .. "/nope.h5"))
    assert.matches("is a directory", errmsg(ac.keras.load, DIR))
    local txt = os.tmpname()
    local f = io.open(txt, "w"); f:write("not hdf5 at all\n"); f:close()
    assert.matches("not an HDF5 file", errmsg(ac.keras.load, txt))
    local src = io.open(DIR .. "/chunked.h5", "rb"):read("a")
    f = io.open(txt, "wb"); f:write(src:sub(1, #src // 2)); f:close()
    local e = errmsg(ac.keras.load, txt)
    assert.matches("keras%.load: " .. txt:gsub("%p", "%%%0"), e)
    assert.matches("truncated", e)
    os.remove(txt)
  end)

  it("an unsupported layer and a Lambda that is not l2_normalize are named", function()
    local e = errmsg(ac.keras.load, DIR .. "/bad_unknown_layer.h5")
    assert.matches("layer 'batch_normalization' %(LSTM%)", e)
    assert.matches("layer class 'LSTM' is not supported", e)
    e = errmsg(ac.keras.load, DIR .. "/bad_other_lambda.h5")
    assert.matches("layer 'activation' %(Lambda%)", e)
    assert.matches("not l2_normalize", e)
  end)

  it("a missing group, a missing weight, a wrong shape", function()
    assert.matches("no weights group 'model_weights/conv2d' for layer 'conv2d'",
      errmsg(ac.keras.load, DIR .. "/bad_missing_group.h5"))
    assert.matches("layer 'batch_normalization': weight 4 'batch_normalization/moving_variance:0'.* is missing",
      errmsg(ac.keras.load, DIR .. "/bad_missing_weight.h5"))
    assert.matches("layer 'dense' %(Dense%): weight 'kernel' has shape %[3, 5%] in the file, the layer expects %[4, 5%]",
      errmsg(ac.keras.load, DIR .. "/bad_wrong_shape.h5"))
  end)

  it("files that are not what the call expects", function()
    assert.matches("no model_config attribute: not a Keras model file",
      errmsg(ac.keras.load, DIR .. "/bad_not_keras.h5"))
    assert.matches("weights only", errmsg(ac.keras.load, DIR .. "/xception_notop.h5"))
    assert.matches("not a Keras weights file",
      errmsg(ac.keras.load_weights, ac.models.minixception{}, DIR .. "/bad_not_keras.h5"))
  end)

  it("a weights file of another architecture names the first mismatching layer and both shapes", function()
    local e = errmsg(ac.keras.load_weights, ac.models.xception{size = 96}, DIR .. "/bad_other_arch.h5")
    assert.matches("keras%.load_weights: .*bad_other_arch%.h5: ", e)
    assert.matches("layer '[%w_]+' %(%w+%) weight '[%w_]+' has shape %[[%d, ]+%] in the file, the model's '[%w._]+' expects %[[%d, ]+%]", e)
    e = errmsg(ac.keras.load_weights, ac.models.minixception{}, DIR .. "/xception_notop.h5")
    assert.matches("layer 'block1_conv1' %(Conv2D%) weight 'kernel' has shape %[3, 3, 3, 32%] in the file, " ..
      "the model's 'trunk.conv1' expects %[3, 3, 1, 8%]", e)
  end)

  it("bad arguments", function()
    assert.matches("path must be a string", errmsg(ac.keras.load, 3))
    assert.matches("unknown option 'nativ'", errmsg(ac.keras.load, DIR .. "/chunked.h5", {nativ = false}))
    assert.matches("expected a model", errmsg(ac.keras.load_weights, nil, DIR .. "/chunked.h5"))
  end)
end)
