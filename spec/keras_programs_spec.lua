-- The programs on Keras files: predict.lua on an .h5 against convert.lua +
-- predict.lua on the converted file, train.lua --init from a notop ImageNet
-- Xception weights file (the trunk, frozen for the epoch, is still the
-- imported one, whose features PyTorch gives too), evaluate.lua on an .h5,
-- and the fine-tuning options.
local ac = require("adcorre")
local json = require("adcorre.json")

local kf = require("keras_fixtures")
local DIR = kf.DIR
local ENV = "LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./build/?.so;;' nice -n 10 lua5.4 "

local function run(cmd)
  local p = io.popen(ENV .. cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  assert(ok, cmd .. " failed:\n" .. out)
  return out
end

-- The JSON objects on a program's output lines.
local function json_lines(out)
  local r = {}
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then r[#r + 1] = json.decode(line) end
  end
  return r
end

local fixtures = kf.make

local body = function()
  local tmp = os.tmpname()
  os.remove(tmp)
  setup(function()
    fixtures("adcorre_xception", "xception_notop", "minixception_k20")
    require("adcorre.fs").mkdir_p(tmp)
    ac.manual_seed(5)
    ac.image.save(tmp .. "/face.png", ac.rand(3, 120, 100))
    -- a tiny npy data set of 96x96 colour images for train.lua
    require("adcorre.fs").mkdir_p(tmp .. "/npy")
    for _, split in ipairs({"train", "test"}) do
      ac.save_npy(("%s/npy/%s_images.npy"):format(tmp, split), (ac.rand(8, 96, 96, 3) * 255):floor():byte())
      ac.save_npy(("%s/npy/%s_labels.npy"):format(tmp, split), ac.tensor({0, 1, 2, 3, 4, 5, 6, 0}, "int64"))
    end
  end)
  teardown(function() os.execute("rm -rf " .. tmp) end)

  it("predict.lua on the authors-like .h5 and on its convert.lua output give the same probabilities", function()
    local img = tmp .. "/face.png"
    local a = json_lines(run(("examples/predict.lua --detect none --model %s/adcorre_xception.h5 --classes canonical " ..
      "--input-range 0,1 %s --json"):format(DIR, img)))[1]
    run(("examples/convert.lua %s/adcorre_xception.h5 %s/authors.safetensors --classes canonical --input-range 0,1")
      :format(DIR, tmp))
    local b = json_lines(run(("examples/predict.lua --detect none --model %s/authors.safetensors %s --json"):format(tmp, img)))[1]
    assert.equal(a.label, b.label)
    local worst = 0
    for name, p in pairs(a.probabilities) do worst = math.max(worst, math.abs(p - b.probabilities[name])) end
    print(("\n    predict .h5 vs converted: label %s, max |dp| %.2e"):format(a.label, worst))
    assert.is_true(worst <= 1e-6)
    -- the converted file keeps the classes and the input range
    local _, extra = ac.load(tmp .. "/authors.safetensors")
    assert.same(ac.classes[1], extra.classes[1])
    assert.same({0, 1}, extra.input_range)
  end)

  it("a converted plain graph (mini-Xception, FER-2013 order, input -1,1) keeps its outputs", function()
    local img = tmp .. "/face.png"
    local a = json_lines(run(("examples/predict.lua --detect none --model %s/minixception_k20.h5 --classes fer2013 " ..
      "--input-range=-1,1 %s --json"):format(DIR, img)))[1]
    run(("examples/convert.lua %s/minixception_k20.h5 %s/mini.safetensors --classes fer2013 --input-range=-1,1")
      :format(DIR, tmp))
    local b = json_lines(run(("examples/predict.lua --detect none --model %s/mini.safetensors %s --json"):format(tmp, img)))[1]
    assert.is_not_nil(a.probabilities.Anger)
    for name, p in pairs(a.probabilities) do assert.is_true(math.abs(p - b.probabilities[name]) <= 1e-6) end
  end)

  it("evaluate.lua on a Keras file maps its class order and input range", function()
    require("adcorre.fs").mkdir_p(tmp .. "/grey")
    ac.manual_seed(8)
    local imgs = (ac.rand(7, 48, 48) * 255):floor():byte()
    for _, split in ipairs({"train", "test"}) do
      ac.save_npy(("%s/grey/%s_images.npy"):format(tmp, split), imgs)
      ac.save_npy(("%s/grey/%s_labels.npy"):format(tmp, split), ac.tensor({0, 1, 2, 3, 4, 5, 6}, "int64"))
    end
    local r = json_lines(run(("examples/evaluate.lua --model %s/minixception_k20.h5 --classes fer2013 " ..
      "--input-range=-1,1 --dataset npy --data %s/grey --json"):format(DIR, tmp)))
    r = r[#r]
    -- the same by hand: FER-2013 output order -> canonical, inputs in [-1, 1]
    local m = ac.keras.load(DIR .. "/minixception_k20.h5")
    local p = m:forward((imgs:float() / 255):view(7, 1, 48, 48) * 2 - 1)
    local fer = require("adcorre.keras.conventions").ORDERS.fer2013
    for i = 1, 7 do
      local best = 1
      for c = 2, 7 do if p[i][c] > p[i][best] then best = c end end
      local j
      for c, name in ipairs(ac.classes) do if name == fer[best] then j = c end end
      assert.equal(1, r.confusion[i][j])   -- image i has canonical label i
    end
  end)

  it("train.lua --init notop.h5 --arch xception starts from the imported trunk (frozen for its epoch)", function()
    local out = run(("examples/train.lua --dataset npy --data %s/npy --batch 4 --arch xception --epochs 1 " ..
      "--freeze-trunk 1 --init %s/xception_notop.h5 --out %s/run --no-plots --json"):format(tmp, DIR, tmp))
    local r = json_lines(out)
    r = r[#r]
    assert.same({40, true}, {r.init.paired, r.init.trunk_only})
    -- the trained model's trunk parameters are the file's, to the bit; its heads moved
    local trained = ac.load(tmp .. "/run/model.safetensors")
    local imported = ac.models.xception{size = 96}
    ac.keras.load_weights(imported, DIR .. "/xception_notop.h5")
    local a, b = trained.trunk:parameters(), imported.trunk:parameters()
    assert.equal(#b, #a)
    for i = 1, #a do assert.is_true(a[i]:equal(b[i]), "trunk parameter " .. i .. " moved") end
    assert.is_false(trained.classifier.weight:equal(imported.classifier.weight))
    -- and the imported trunk is Keras' (PyTorch's features of the same file)
    imported:evaluate()
    local f = imported.trunk:forward(ac.load_npy(DIR .. "/xception_notop_input.npy"))
    local want = ac.load_npy(DIR .. "/xception_notop_features.npy")
    local e = (f:view(f:size(1), -1) - want):abs():max() / want:abs():max()
    print(("\n    train --init: %d trunk tensors as imported; imported trunk vs PyTorch rel %.2e"):format(#a, e))
    assert.is_true(e <= 1e-4)
  end)
end

if kf.available then describe("keras files in the programs", body)
else pending("keras files in the programs: skipped, /usr/bin/python3 lacks h5py or torch (make deps-dev)") end

describe("finetune.trunk", function()
  local finetune = require("adcorre.finetune")
  local function setup_model()
    ac.manual_seed(11)
    local net = ac.models.minixception{size = 16, k = 2, d = 8, classes = 3}
    local opt = ac.optim.Adam(net, {lr = 1e-2})
    return net, opt
  end
  local function step(net, opt)
    local x = ac.rand(4, 1, 16, 16)
    net:training()
    local out = net:forward(x)
    net:zeroGradParameters()
    local g = {}
    for j, e in ipairs(out.embeddings) do g[j] = e * 0 + 0.1 end
    net:backward(x, {logits = out.logits * 0 + 0.2, embeddings = g})
    opt:step()
  end

  it("a frozen trunk does not move; the heads do; a multiplier scales the trunk's step exactly", function()
    local net, opt = setup_model()
    local before = net.trunk:parameters()[1]:clone()
    local head = net.classifier.weight:clone()
    local ft = finetune.trunk(opt, net, {freeze_epochs = 1, lr_mult = 0.5})
    ft:set_epoch(1)
    ac.manual_seed(2); step(net, opt)
    assert.is_true(net.trunk:parameters()[1]:equal(before))
    assert.is_false(net.classifier.weight:equal(head))
    -- epoch 2: half the step of an unwrapped optimiser in the same state
    local net2, opt2 = setup_model()
    ac.manual_seed(2); step(net2, opt2)   -- same state as net after its first step, but trunk moved
    local p1 = net.trunk:parameters()
    for i, p in ipairs(net2.trunk:parameters()) do p:copy(p1[i]) end
    ft:set_epoch(2)
    local p0 = net.trunk:parameters()[1]:clone()
    ac.manual_seed(3); step(net, opt)
    ac.manual_seed(3); step(net2, opt2)
    local full = net2.trunk:parameters()[1] - p0
    local half = net.trunk:parameters()[1] - p0
    assert.is_true((half * 2 - full):abs():max() <= 1e-5 * (full:abs():max() + 1e-12) + 1e-7)
    assert.matches("lr_mult must be >= 0", select(2, pcall(finetune.trunk, opt, net, {lr_mult = -1})))
  end)
end)
