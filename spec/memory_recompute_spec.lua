-- Memory savers that trade time for memory (gradient checkpointing, the
-- separable convolution's recomputed depthwise output), the buffers'
-- arena itself, and the index-free max-pool of evaluation mode. Each saver
-- must give exactly the numbers of the plain computation.
local ac = require("adcorre")
local nn = ac.nn
local knobs = require("memory_knobs")

local function maxdiff(a, b)
  local d = (a - b):abs():max()
  return type(d) == "number" and d or d:item()
end

describe("gradient checkpointing", function()
  local saved_min
  setup(function() saved_min = knobs.zero() end)
  teardown(function() knobs.restore(saved_min) end)

  local function grads_of(s)
    local _, gs = s:parameters()
    local out = {}
    for i, g in ipairs(gs) do out[i] = g:clone() end
    return out
  end

  it("xception{checkpoint = true}: identical outputs, gradients and running statistics", function()
    ac.manual_seed(31)
    local a = ac.models.xception{size = 71, k = 2, d = 8}
    ac.manual_seed(31)
    local b = ac.models.xception{size = 71, k = 2, d = 8, checkpoint = true}
    assert.is_true(b.trunk.modules[9].checkpoint) -- block5 .. block12
    assert.is_true(b.arch.args.checkpoint)
    assert.has_error(function() ac.models.xception{checkpoint = 1} end,
      "models.xception: checkpoint must be a boolean, got number")
    ac.manual_seed(32)
    local x = ac.randn(2, 3, 71, 71)
    for step = 1, 2 do
      local ge = {ac.randn(2, 8), ac.randn(2, 8)}
      local gl = ac.randn(2, 7)
      local ga, gb
      for _, net in ipairs({a, b}) do
        ac.manual_seed(33 + step) -- the same dropout masks
        net:zeroGradParameters()
        net:forward(x)
        local g = net:backward(x, {logits = gl, embeddings = ge}):clone()
        if net == a then ga = g else gb = g end
      end
      assert.are.equal(0, maxdiff(a.output.logits, b.output.logits), "step " .. step)
      assert.are.equal(0, maxdiff(ga, gb), "step " .. step)
      local da, db = grads_of(a), grads_of(b)
      for i = 1, #da do assert.are.equal(0, maxdiff(da[i], db[i]), "step " .. step .. " grad " .. i) end
      local ra, rb = a:buffers(), b:buffers()
      for k, t in pairs(ra) do assert.are.equal(0, maxdiff(t, rb[k]), k) end
    end
    -- a checkpointed block keeps only its output after the forward
    b:forward(x)
    local blk = b.trunk.modules[9]
    assert.is_not_nil(blk.output)
    blk.modules[1]:apply(function(m) assert.is_nil(rawget(m, "output"), tostring(m)) end)
  end)
end)

describe("separable convolution: the depthwise output recomputed in the backward", function()
  local saved
  setup(function() saved = nn.SeparableConv2d.recomputeMin end)
  teardown(function() nn.SeparableConv2d.recomputeMin = saved end)

  local function sep()
    ac.manual_seed(41)
    return nn.SeparableConv2d(4, 6, 3, 1, "same")
  end

  it("releases it after the forward from recomputeMin elements per sample on, with the gradients of keeping it", function()
    local x = ac.randn(2, 4, 7, 7)
    local gy = ac.randn(2, 6, 7, 7)
    nn.SeparableConv2d.recomputeMin = 0
    local a, b, u = sep(), sep(), sep()
    b:keepOutputs()
    for step = 1, 2 do
      for _, m in ipairs({a, b, u}) do m:zeroGradParameters(); m:forward(x) end
      assert.is_nil(rawget(a.depthwise, "output"))      -- released
      assert.is_not_nil(rawget(b.depthwise, "output"))  -- kept
      local ga, gb = a:backward(x, gy):clone(), b:backward(x, gy):clone()
      local gu = u:updateGradInput(x, gy):clone()       -- two-phase protocol
      u:accGradParameters(x, gy)
      assert.are.equal(0, maxdiff(ga, gb), "step " .. step)
      assert.are.equal(0, maxdiff(ga, gu), "step " .. step)
      local _, da = a:parameters()
      local _, db = b:parameters()
      local _, du = u:parameters()
      for i = 1, #da do
        assert.are.equal(0, maxdiff(da[i], db[i]), "step " .. step)
        assert.are.equal(0, maxdiff(da[i], du[i]), "step " .. step)
      end
    end
    -- below the threshold (4 x 7 x 7 = 196 elements per sample) it stays
    nn.SeparableConv2d.recomputeMin = 197
    a:forward(x)
    assert.is_not_nil(rawget(a.depthwise, "output"))
    nn.SeparableConv2d.recomputeMin = 196
    a:forward(x)
    assert.is_nil(rawget(a.depthwise, "output"))
    -- evaluation mode keeps it (no backward to recompute for)
    a:evaluate()
    a:forward(x)
    assert.is_not_nil(rawget(a.depthwise, "output"))
  end)

  it("a backward before any forward is still an error naming the layer", function()
    nn.SeparableConv2d.recomputeMin = 0
    local m = sep()
    assert.has_error(function() m:backward(ac.randn(2, 4, 7, 7), ac.randn(2, 6, 7, 7)) end)
  end)
end)

describe("the buffers' arena", function()
  local core = require("adcorre.core")
  local MiB = 1048576
  -- under AddressSanitizer each range is its own block (csrc/arena.c), so
  -- what is reserved follows what is used and there is nothing to merge
  local sanitized = os.getenv("AC_SANITIZED") == "1"

  it("merges a handed-back range with its free neighbours, so a larger request fits in it", function()
    -- three ranges of 8 MiB, taken one after the other, then the first two
    -- handed back: a 16 MiB request takes their place without mapping more.
    -- No collection may run in between: it would return the ranges of
    -- earlier specs' garbage and move the counts.
    collectgarbage(); collectgarbage()
    collectgarbage("stop")
    finally(function() collectgarbage("restart") end)
    local a = core.nn.pool_new({2 * MiB})
    local b = core.nn.pool_new({2 * MiB})
    local c = core.nn.pool_new({2 * MiB})
    a:fill(1); b:fill(2); c:fill(3)
    local reserved0, used0 = core.nn.arena_stats()
    assert.is_true(core.nn.pool_release(a))
    assert.is_true(core.nn.pool_release(b))
    assert.is_false(core.nn.pool_release(b))          -- only once
    local reserved1, used1 = core.nn.arena_stats()
    assert.are.equal(used0 - 16 * MiB, used1)
    assert.are.equal(sanitized and reserved0 - 16 * MiB or reserved0, reserved1)
    local d = core.nn.pool_new({4 * MiB})
    local reserved2, used2 = core.nn.arena_stats()
    assert.are.equal(reserved0, reserved2)             -- nothing new mapped
    assert.are.equal(used0, used2)
    d:fill(4)
    assert.are.equal(3, c:min())                       -- the neighbour is untouched
    assert.are.equal(3, c:max())
    assert.are.same({4 * MiB}, d:shape())
    assert.are.equal("float32", d:dtype())
    -- a storage whose range went back is never written through nn_buffer
    local e = core.nn.buffer(a, {16})
    assert.is_false(e:is_same_storage(a))
    core.nn.pool_release(c)
    core.nn.pool_release(d)
  end)

  it("gives a range back when its last view is collected, and trims unused mappings", function()
    collectgarbage(); collectgarbage()
    local _, used0 = core.nn.arena_stats()
    do
      local t = core.nn.pool_new({3 * MiB})
      local v = t:view(-1):narrow(1, 1, 10)
      t = nil
      collectgarbage(); collectgarbage()
      local _, u = core.nn.arena_stats()
      assert.are.equal(used0 + 12 * MiB, u)              -- the view keeps it
      v:fill(0)
    end
    collectgarbage(); collectgarbage()
    local _, used1 = core.nn.arena_stats()
    assert.are.equal(used0, used1)
    assert.is_true(math.type(core.nn.arena_trim()) == "integer")
  end)

  it("rejects bad shapes", function()
    assert.has_error(function() core.nn.pool_new({2, -1}) end, "bad argument #1 to 'pool_new' (bad size at dimension 2)")
    assert.has_error(function() core.nn.pool_new({2 ^ 40, 2 ^ 40}) end)
  end)
end)

describe("max-pool in evaluation mode", function()
  local saved
  setup(function() saved = nn.Sequential.releaseMin; nn.Sequential.releaseMin = 0 end)
  teardown(function() nn.Sequential.releaseMin = saved end)

  it("writes no indices, gives the training-mode maxima, and a backward after it the same gradients", function()
    ac.manual_seed(51)
    for _, cfg in ipairs({{3, 2, "same"}, {2, 2, 0}, {3, 1, 1}}) do
      local x = ac.randn(2, 3, 11, 13)
      local function net()
        return nn.Sequential():add(nn.Conv2d(3, 4, 1, 1, 0, 1, {bias = false}))
          :add(nn.MaxPool2d(cfg[1], cfg[2], cfg[3])):add(nn.ReLU())
      end
      ac.manual_seed(52)
      local a = net()
      ac.manual_seed(52)
      local b = net():evaluate()
      local ya, yb = a:forward(x):clone(), b:forward(x):clone()
      assert.are.equal(0, maxdiff(ya, yb))
      local pool = b.modules[2]
      assert.is_nil(pool._bufs.indices)                 -- none written
      assert.is_not_nil(b.modules[1].output)            -- its input is kept for a backward
      local gy = ac.randn(table.unpack(ya:shape()))
      local ga, gb = a:backward(x, gy):clone(), b:backward(x, gy):clone()
      assert.are.equal(0, maxdiff(ga, gb))
      local _, da = a:parameters()
      local _, db = b:parameters()
      assert.are.equal(0, maxdiff(da[1], db[1]))
    end
  end)
end)
