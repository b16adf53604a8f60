-- models_spec.lua - the Xception and mini-Xception Ad-Corre networks:
-- exact parameter counts (Keras' figures), output shapes for several input
-- sizes, a finite-difference check of the whole network, forward + backward
-- against PyTorch (tools/torch_minixception.py) and a short training run
-- whose memory must stay flat.
local ac = require("adcorre")
local ser = require("adcorre.serialize")
local gradcheck = require("gradcheck")

local function has_torch()
  return os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == true
end

local function tmpname(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. (suffix or ".safetensors")
end

local function total(t)
  local s = t:sum()
  return type(s) == "number" and s or s:item()
end

local function rand_grads(B, k, d, classes)
  local ge = {}
  for j = 1, k do ge[j] = ac.randn(B, d) end
  return ac.randn(B, classes), ge
end

-- Non-trivial batch-norm parameters and running statistics.
local function randomise_bn(model)
  for _, m in ipairs(model:findModules("nn.BatchNorm2d")) do
    local n = m.weight:numel()
    m.weight:copy(ac.rand(n) + 0.5)
    m.bias:copy(ac.randn(n) * 0.1)
    m.running_mean:copy(ac.randn(n) * 0.1)
    m.running_var:copy(ac.rand(n) + 0.5)
  end
end

describe("models", function()
  it("xception: Keras' Xception without top has 20,806,952 trainable parameters (+ head: 26,070,319)", function()
    local net = ac.models.xception{in_channels = 3, size = 224, classes = 7, k = 10, d = 256}
    assert.equal(20806952, net.trunk:nparams())
    assert.equal(26070319, net:nparams())
    local buffers = 0
    for _, e in ipairs(net.trunk:namedBuffers()) do buffers = buffers + e.tensor:numel() end
    assert.equal(20861480, net.trunk:nparams() + buffers)
    assert.equal(26070319 + buffers, net:nparams{buffers = true})
    -- Keras layer names
    assert.equal("block1_conv1", net.trunk.modules[1].name)
    -- the last batch norm carries Keras' block14_sepconv2_act (fused ReLU)
    local last = net.trunk.modules[#net.trunk.modules - 1]
    assert.equal("block14_sepconv2_bn", last.name)
    assert.is_true(last.relu)
    assert.equal(20, #net:findModules("nn.SeparableConv2d") - 14) -- 34 separable convolutions in all
  end)

  it("xception gives Keras' spatial sizes at 224x224 (111, 109, 55, 28, 14, 7)", function()
    ac.manual_seed(5)
    local net = ac.models.xception{k = 2, d = 8}
    net:evaluate()
    net:keepOutputs()   -- intermediate outputs are read below
    local out = net:forward(ac.randn(1, 3, 224, 224))
    local sizes = {}
    for _, m in ipairs(net.trunk.modules) do
      if m.name == "block1_conv1_bn" or m.name == "block1_conv2_bn" or m.name == "block2" or
         m.name == "block3" or m.name == "block4" or m.name == "block13" or m.name == "block14_sepconv2_bn" then
        sizes[#sizes + 1] = m.output:size(3)
      end
    end
    assert.same({111, 109, 55, 28, 14, 7, 7}, sizes)
    assert.same({2048, 7, 7}, {net.trunk.modules[#net.trunk.modules - 1].output:size(2), 7, 7})
    assert.same({1, 7}, out.logits:shape())
  end)

  it("minixception: trunk 48,880 trainable parameters, 397,047 with the head", function()
    local net = ac.models.minixception{in_channels = 1, size = 48, classes = 7, k = 10, d = 256}
    assert.equal(48880, net.trunk:nparams())
    assert.equal(397047, net:nparams())
    local flat = net:getParameters()
    assert.equal(397047, flat:numel())
  end)

  it("minixception works for 28x28, 48x48 and 64x64 inputs and any channel count", function()
    ac.manual_seed(1)
    for _, c in ipairs({{1, 28, 3}, {1, 48, 2}, {3, 64, 8}}) do
      local net = ac.models.minixception{in_channels = c[1], size = c[2], classes = c[3], k = 3, d = 16}
      local x = ac.randn(5, c[1], c[2], c[2])
      local out = net:forward(x)
      assert.same({5, c[3]}, out.logits:shape())
      assert.equal(3, #out.embeddings)
      for _, e in ipairs(out.embeddings) do
        assert.same({5, 16}, e:shape())
        local norms = (e * e):sum(2):sqrt():totable()
        for _, n in ipairs(norms) do assert.near(1, type(n) == "table" and n[1] or n, 1e-5) end
      end
      local gl, ge = rand_grads(5, 3, 16, c[3])
      local gx = net:backward(x, {logits = gl, embeddings = ge})
      assert.same({5, c[1], c[2], c[2]}, gx:shape())
    end
  end)

  it("clearState keeps the weights; save / load_weights methods", function()
    ac.manual_seed(4)
    local net = ac.models.minixception{size = 20, k = 2, d = 8}
    net:evaluate()
    local x = ac.randn(2, 1, 20, 20)
    local a = net:forward(x).logits:clone()
    net:clearState()
    assert.has_error(function() net:backward(x, {logits = ac.zeros(2, 7)}) end,
      "AdCorreNet:backward: call forward first")
    assert.same(a:totable(), net:forward(x).logits:totable())
    local p = tmpname()
    net:save(p)
    local other = ac.models.minixception{size = 20, k = 2, d = 8}
    other:load_weights(p):evaluate()
    assert.same(a:totable(), other:forward(x).logits:totable())
    os.remove(p)
  end)

  it("prints a readable architecture", function()
    local s = tostring(ac.models.minixception{})
    assert.truthy(s:find("minixception input 1x48x48", 1, true))
    assert.truthy(s:find("397,047 trainable parameters", 1, true))
    assert.truthy(s:find("module4_sepconv2: nn.SeparableConv2d(128 -> 128, 3x3, pad same)", 1, true))
  end)

  it("rejects bad options and inputs clearly", function()
    assert.has_error(function() ac.models.minixception{size = 4} end,
      "models.minixception: input size 4x4 is too small (at least 5x5)")
    assert.has_error(function() ac.models.xception{size = 64} end,
      "models.xception: input size 64x64 is too small (at least 71x71)")
    assert.has_error(function() ac.models.minixception{k = 0} end, "models.minixception: k must be >= 1, got 0")
    assert.has_error(function() ac.models.minixception{clases = 3} end, "models.minixception: unknown option 'clases'")
    local net = ac.models.minixception{}
    assert.has_error(function() net:forward(ac.randn(2, 3, 48, 48)) end,
      "AdCorreNet:forward: input has 3 channels, the model expects 1")
    assert.has_error(function() net:forward(ac.randn(48, 48)) end, "AdCorreNet:forward: input must be [B, C, H, W], got [48, 48]")
  end)

  -- The head (k Linear + L2Normalize, concatenation, classifier) and the way
  -- the loss's embedding gradients join the classifier's are smooth: checked
  -- by finite differences here. The trunk's ReLU / max-pool kinks make float32
  -- differences of the whole network unreliable; the whole backward is checked
  -- against PyTorch below (and every layer has its own check).
  it("finite-difference check of the head's parameters (gradients from logits and embeddings)", function()
    ac.manual_seed(3)
    local net = ac.models.minixception{in_channels = 1, size = 12, classes = 3, k = 2, d = 4}
    randomise_bn(net)
    net:evaluate()
    local x = ac.randn(3, 1, 12, 12)
    local gl, ge = rand_grads(3, 2, 4, 3)
    local function loss()
      local o = net:forward(x)
      local L = total(o.logits * gl)
      for j = 1, 2 do L = L + total(o.embeddings[j] * ge[j]) end
      return L
    end
    local byname = {}
    for _, e in ipairs(net:namedParameters()) do byname[e.name] = e end
    local names = {"heads.head1.dense.weight", "heads.head2.dense.bias", "classifier.weight", "classifier.bias"}
    local wrt = {}
    for i, n in ipairs(names) do wrt[i] = assert(byname[n], n).param end
    gradcheck.assert{
      forward = loss,
      backward = function()
        net:zeroGradParameters()
        net:forward(x)
        net:backward(x, {logits = gl, embeddings = ge})
        local g = {}
        for i, n in ipairs(names) do g[i] = byname[n].grad end
        return g
      end,
      wrt = wrt,
      eps = 1e-2, rtol = 1e-2,
    }
    -- gradients from the embeddings alone reach the trunk
    net:zeroGradParameters()
    net:forward(x)
    local gx = net:backward(x, {embeddings = ge})
    assert.is_true(total(gx * gx) > 0)
    assert.equal(0, total(byname["classifier.weight"].grad * byname["classifier.weight"].grad))
  end)

  it("20 training steps at batch 64: the loss falls and the resident memory stays flat", function()
    local check = dofile("tools/train_memory_check.lua")
    local r = check.run{steps = 20, batch = 64, loss = "adcorre", seed = 1}
    print(("\n  minixception 20 steps: loss %.4f -> %.4f, rss step 3 %.1f MiB, step 20 %.1f MiB (x%.4f)"):format(
      r.losses[1], r.losses[20], r.rss[3] / 2 ^ 20, r.rss[20] / 2 ^ 20, r.ratio))
    assert.is_true(r.losses[20] < r.losses[1])
    -- under AddressSanitizer the allocator's quarantine decides the RSS, not the library
    if os.getenv("AC_SANITIZED") ~= "1" then
      assert.is_true(r.ok_rss, ("rss grew x%.4f between step 3 and step 20"):format(r.ratio))
    end
  end)

  local run = has_torch() and it or pending
  for _, mode in ipairs({"train", "eval"}) do
    run("minixception forward and backward agree with PyTorch within 1e-4 relative (" .. mode .. " mode)", function()
      ac.manual_seed(42)
      local B, k, d, C = 6, 10, 256, 7
      local net = ac.models.minixception{in_channels = 1, size = 48, classes = C, k = k, d = d}
      randomise_bn(net)
      local mfile, iofile, ofile = tmpname(), tmpname(), tmpname()
      ac.save(mfile, net)
      local x = ac.randn(B, 1, 48, 48)
      local gl, ge = rand_grads(B, k, d, C)
      local iot = {x = x, g_logits = gl}
      for j = 1, k do iot["g_emb" .. j] = ge[j] end
      ser.save_tensors(iofile, iot)
      if mode == "train" then net:training(); net.dropout:evaluate() else net:evaluate() end
      net:zeroGradParameters()
      local out = net:forward(x)
      local gx = net:backward(x, {logits = gl, embeddings = ge})
      local ours = {logits = out.logits, grad_input = gx}
      for j = 1, k do ours["emb" .. j] = out.embeddings[j] end
      for _, e in ipairs(net:namedParameters()) do ours["grad." .. e.name] = e.grad end
      for _, e in ipairs(net:namedBuffers()) do ours["buf." .. e.name] = e.tensor end
      ser.save_tensors(ofile, ours)
      local cmd = ("/usr/bin/python3 tools/torch_minixception.py %s %s %s --mode %s"):format(mfile, iofile, ofile, mode)
      local pipe = io.popen(cmd .. " 2>&1")
      local text = pipe:read("a")
      local ok = pipe:close()
      os.remove(mfile); os.remove(iofile); os.remove(ofile)
      local res = ser.json.decode(text:match("{.*}") or "null")
      assert.is_table(res, text)
      print(("\n  minixception vs torch (%s): %d tensors, max rel %.2e (%s)"):format(mode, res.n, res.max_rel, res.worst))
      assert.is_true(ok == true, text)
      assert.is_true(res.max_rel <= 1e-4)
    end)
  end
end)
