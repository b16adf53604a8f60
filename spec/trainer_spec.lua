-- spec/trainer_spec.lua - the training loop: steps lower the loss, evaluation
-- summaries are consistent, and a run resumed from a checkpoint ends exactly
-- where an uninterrupted run with the same seed ends.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local trainer = require("adcorre.trainer")

local function tiny_data(n, seed)
  local x, y = ac.synthfer.generate(n, { seed = seed, dtype = "uint8" })
  local s = x:shape()
  return ac.data.from_memory { images = x:view(s[1], s[3], s[4], 1), labels = y, classes = ac.synthfer.classes }
end

local function setup(dir)
  ac.manual_seed(11)
  local model = ac.models.minixception { size = 24, k = 2, d = 8 }
  local loss = ac.AdCorreLoss { classes = 7, history = 50 }
  local opt = ac.optim.Adam(model, { lr = 1e-3, decay = 1e-5 })
  local tr = trainer.new { model = model, loss = loss, optim = opt, classes = ac.synthfer.classes }
  local train = ac.data.Loader(tiny_data(48, 3), { batch = 16, workers = 2, seed = 5, size = 24, augment = "light" })
  local test = ac.data.Loader(tiny_data(32, 4), { batch = 16, workers = 1, seed = 5, size = 24, shuffle = false })
  return tr, train, test
end

describe("trainer", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))

  it("lowers the training loss on a fixed batch", function()
    ac.manual_seed(2)
    local model = ac.models.minixception { size = 16, k = 2, d = 8 }
    local tr = trainer.new { model = model, loss = ac.AdCorreLoss { classes = 7 },
      optim = ac.optim.Adam(model, { lr = 3e-3 }), classes = ac.synthfer.classes }
    local x = ac.rand(14, 1, 16, 16)
    local y = ac.tensor({ 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7 }, "int64")
    local first = tr:step(x, y)
    local last
    for _ = 1, 15 do last = tr:step(x, y) end
    assert.is_true(last < first, ("loss went from %g to %g"):format(first, last))
  end)

  it("non-finite logits from a diverged weight are named, or skipped and counted", function()
    local function run(skip)
      ac.manual_seed(4)
      local model = ac.models.minixception { size = 16, k = 2, d = 8, classes = 3 }
      local opt = ac.optim.Adam(model, { lr = 1e-3 })
      local tr = trainer.new { model = model, loss = ac.AdCorreLoss { classes = 3 }, optim = opt,
        classes = { "a", "b", "c" }, skip_nonfinite = skip }
      local params = model:parameters()
      params[#params - 1]:view(-1)[1] = 0 / 0 -- the classifier's weight
      return tr, opt
    end
    local x, y = ac.rand(4, 1, 16, 16), { 1, 2, 3, 1 }
    local tr = run(false)
    assert.has_error(function() tr:step(x, y) end,
      "training stopped: the logits 4x3 have NaN or Inf (use skip_nonfinite / --skip-nonfinite to skip such batches)")
    local tr2, opt = run(true)
    local before = opt.params:clone()
    local total, reason = tr2:step(x, y)
    assert.is_nil(total)
    assert.equal("the logits 4x3 have NaN or Inf", reason)
    assert.equal(1, tr2.skipped)
    assert.equal(before:ne(before):sum(), opt.params:ne(opt.params):sum()) -- untouched (NaN stays NaN)
  end)

  it("evaluation summaries are consistent", function()
    local tr, train, test = setup(dir)
    tr:train_epoch(train, 1)
    local r, conf = tr:evaluate(test)
    assert.equal(32, r.images)
    assert.equal(32, conf:matrix():sum())
    local rowsum = ac.tensor(r.confusion):sum(2)
    for i = 1, 7 do
      local v = rowsum[i]
      assert.is_true(math.abs(v - 1) < 1e-5 or v == 0)
    end
    assert.is_true(r.accuracy >= 0 and r.accuracy <= 1)
    train:close()
    test:close()
  end)

  it("a resumed run ends exactly like an uninterrupted one", function()
    -- uninterrupted: three epochs
    local tr, train, test = setup(dir)
    for e = 1, 3 do tr:train_epoch(train, e) end
    local straight = tr:evaluate(test)
    local straight_w = ac.cat({ tr.optim.params:view(-1) }):clone()
    train:close()
    test:close()
    -- interrupted after epoch 1, checkpoint, new process state, resume
    tr, train, test = setup(dir)
    tr:train_epoch(train, 1)
    tr:save_checkpoint(dir .. "/ck.safetensors", 1)
    train:close()
    test:close()
    ac.manual_seed(999) -- a fresh process would start from another state
    ac.rand(100)
    tr, train, test = setup(dir)
    local epoch = tr:load_checkpoint(dir .. "/ck.safetensors")
    assert.equal(1, epoch)
    for e = epoch + 1, 3 do tr:train_epoch(train, e) end
    local resumed = tr:evaluate(test)
    assert.is_true(tr.optim.params:equal(straight_w), "weights differ after resume")
    assert.same(straight.counts, resumed.counts)
    assert.equal(straight.loss, resumed.loss)
    train:close()
    test:close()
  end)
end)
