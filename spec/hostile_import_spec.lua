-- Keras and ONNX files whose weights are small (a few hundred bytes) but
-- whose model_config or graph asks for absurd sizes: 10^9 Dense units (a
-- 10^9-class classifier), 10^8 Conv2D filters, a 10^4 x 10^4 kernel, a
-- 10^5 x 10^5 input before Flatten + Dense; ONNX pads of 10^6 on a Conv or a
-- MaxPool and a 10^5 x 10^5 graph input. ac.keras.load and ac.onnx.load
-- rebuild the model under the allocation budget the file's weights justify
-- (adcorre.budget), so each is refused before it allocates, with a message
-- naming the file and the layer or node. Each case runs in its own lua5.4
-- under `timeout` and a 3 GB address-space cap (spec/child.lua), so a
-- regression is a failed case, not a machine out of memory.
local ac = require("adcorre")
local core = require("adcorre.core")
local proc = require("child")
local files = require("files")
local kf = require("keras_fixtures")

local dir = files.tmpdir()

local function child_load(fn, path)
  return proc.run(([[
local ok, e = pcall(require("adcorre").%s, %q)
print(ok, e)
]]):format(fn, path), {seconds = 30, cap_kb = 3000000})
end

local function refused(fn, path, want)
  local rc, out = child_load(fn, path)
  assert.are_not.equal(124, rc, "timed out: " .. out)
  assert.are.equal(0, rc, out)
  assert.matches("^false\t", out)
  assert.truthy(out:find(path .. ": ", 1, true), out)
  for _, w in ipairs(want) do assert.truthy(out:find(w, 1, true), "wanted '" .. w .. "' in: " .. out) end
end

local KERAS = {
  {"dense_units", "10^9 Dense units (a 10^9-class classifier)", "layer 'dense' (Dense)"},
  {"conv_filters", "10^8 Conv2D filters", "layer 'conv2d' (Conv2D)"},
  {"kernel_size", "a 10^4 x 10^4 Conv2D kernel", "layer 'conv2d' (Conv2D)"},
  {"flatten_input", "a 10^5 x 10^5 input before Flatten + Dense", "layer 'dense' (Dense)"},
}

describe("hostile Keras model_config", function()
  local function run(name, fn)
    if kf.available then it(name, fn)
    else pending(name .. ": skipped, /usr/bin/python3 lacks h5py or torch (make deps-dev)") end
  end

  run("the unchanged small file loads in the child", function()
    kf.make("hostile")
    local rc, out = child_load("keras.load", kf.DIR .. "/hostile_none.h5")
    assert.are.equal(0, rc, out)
    assert.matches("^true\t", out)
  end)

  for _, c in ipairs(KERAS) do
    run(c[2] .. ": refused before allocating, naming the file and the layer", function()
      kf.make("hostile")
      refused("keras.load", kf.DIR .. "/hostile_" .. c[1] .. ".h5",
        {"keras.load: ", c[3], "exceeds the budget of", "bytes of weights justify"})
    end)
  end

  run("the budget is lifted after a refused load and after load_weights", function()
    kf.make("hostile")
    local rc, out = proc.run(([[
local ac, core = require("adcorre"), require("adcorre.core")
assert(core.io.alloc_budget(nil) == nil)
assert(not pcall(ac.keras.load, %q))
assert(core.io.alloc_budget(nil) == nil, "left set after a refusal")
local m = ac.keras.load(%q)
assert(core.io.alloc_budget(nil) == nil, "left set after a load")
ac.keras.load_weights(m, %q)
assert(core.io.alloc_budget(nil) == nil, "left set after load_weights")
assert(#ac.zeros(2000, 2000):shape() == 2)
print("lifted")
]]):format(kf.DIR .. "/hostile_dense_units.h5", kf.DIR .. "/hostile_none.h5", kf.DIR .. "/hostile_none.h5"),
      {seconds = 30, cap_kb = 3000000})
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("lifted", 1, true), out)
  end)
end)

-- input [N, 1, 8, 8] -> Conv(2, 3x3, pads) -> Relu -> MaxPool(pads + 1, pads)
-- -> GlobalAveragePool -> Flatten: 18 + 2 floats of initializers.
local function onnx_file(name, o)
  o = o or {}
  local p = dir .. "/" .. name .. ".onnx"
  local function ints(n, v) return {name = n, type = "ints", value = v} end
  local cp, pp = o.conv_pads or 1, o.pool_pads or 0
  local pk = pp + 1 -- a pool's padding is smaller than its window
  core.onnx.save(p, {producer_name = "spec", graph_name = name,
    nodes = {
      {op_type = "Conv", name = "conv", inputs = {"x", "w", "b"}, outputs = {"c"},
       attrs = {ints("kernel_shape", {3, 3}), ints("pads", {cp, cp, cp, cp})}},
      {op_type = "Relu", name = "relu", inputs = {"c"}, outputs = {"r"}},
      {op_type = "MaxPool", name = "pool", inputs = {"r"}, outputs = {"m"},
       attrs = {ints("kernel_shape", {pk, pk}), ints("pads", {pp, pp, pp, pp})}},
      {op_type = "GlobalAveragePool", name = "gap", inputs = {"m"}, outputs = {"g"}},
      {op_type = "Flatten", name = "flat", inputs = {"g"}, outputs = {"y"}},
    },
    initializers = {{name = "w", tensor = ac.randn(2, 1, 3, 3)}, {name = "b", tensor = ac.zeros(2)}},
    inputs = {{name = "x", elem_type = 1, dims = {"N", 1, o.size or 8, o.size or 8}}},
    outputs = {{name = "y", elem_type = 1, dims = {"N", 2}}}})
  return p
end

describe("hostile ONNX graphs", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("the unchanged small graph loads and runs", function()
    local g = ac.onnx.load(onnx_file("none"))
    assert.are.same({3, 2}, g:forward(ac.randn(3, 1, 8, 8)).y:shape())
    local rc, out = child_load("onnx.load", onnx_file("none"))
    assert.are.equal(0, rc, out)
    assert.matches("^true\t", out)
  end)

  local CASES = {
    {"Conv pads of 10^6", {conv_pads = 1000000}, "node 1 'conv' (Conv)", "exceeds the budget of"},
    {"MaxPool pads of 10^6 (window 10^6 + 1)", {pool_pads = 1000000}, "node 3 'pool' (MaxPool)", "exceeds the budget of"},
    {"a 10^5 x 10^5 input", {size = 100000}, "input 'x' has shape [N, 1, 100000, 100000]",
     "more than the file's 80 bytes of initializers justify"},
  }
  for i, c in ipairs(CASES) do
    it(c[1] .. ": refused before allocating, naming the file and the node", function()
      refused("onnx.load", onnx_file("case" .. i, c[2]), {"onnx.load: ", c[3], c[4]})
    end)
  end

  it("the budget is lifted after a refused load", function()
    local rc, out = proc.run(([[
local ac, core = require("adcorre"), require("adcorre.core")
assert(not pcall(ac.onnx.load, %q))
assert(core.io.alloc_budget(nil) == nil, "left set after a refusal")
print("lifted")
]]):format(onnx_file("big", {conv_pads = 1000000})), {seconds = 30, cap_kb = 3000000})
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("lifted", 1, true), out)
  end)
end)
