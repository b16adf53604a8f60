-- spec/loss_history_spec.lua - the Ad-Corre loss's confusion history survives
-- a checkpoint: history_state / load_history_state give the same adaptive
-- weights afterwards, with a wrapped ring and with a pinned matrix.
local ac = require("adcorre")

describe("AdCorreLoss history state", function()
  it("restores a wrapped ring so later evictions match", function()
    local a = ac.AdCorreLoss { classes = 3, history = 5 }
    a:record(ac.tensor({ 1, 2, 3, 1, 2, 3, 1 }, "int64"), ac.tensor({ 1, 1, 3, 2, 2, 3, 3 }, "int64"))
    local st = a:history_state()
    assert.same({ 3, 1, 2, 3, 1 }, st.labels)
    assert.same({ 3, 2, 2, 3, 3 }, st.predictions)
    local b = ac.AdCorreLoss { classes = 3, history = 5 }
    b:load_history_state(st)
    assert.is_true(a:confusion():equal(b:confusion()))
    for i = 1, 4 do
      local y, p = ac.tensor({ i % 3 + 1 }, "int64"), ac.tensor({ (i * 2) % 3 + 1 }, "int64")
      a:record(y, p)
      b:record(y, p)
      assert.is_true(a:confusion():equal(b:confusion()))
    end
  end)

  it("gives the same loss value on the next batch", function()
    ac.manual_seed(5)
    local z, e = ac.randn(8, 4), { ac.randn(8, 6), ac.randn(8, 6) }
    local y = ac.tensor({ 1, 2, 3, 4, 1, 2, 3, 4 }, "int64")
    local a = ac.AdCorreLoss { classes = 4, history = 20 }
    a:forward(z, e, y)
    a:forward(z * 2, e, y)
    local b = ac.AdCorreLoss { classes = 4, history = 20 }
    b:load_history_state(a:history_state())
    local ta = a:forward(z * 3, e, y)
    local tb = b:forward(z * 3, e, y)
    assert.equal(ta, tb)
  end)

  it("keeps a pinned matrix and rejects malformed state", function()
    local a = ac.AdCorreLoss { classes = 2 }
    a:set_confusion(ac.tensor({ { 0.75, 0.25 }, { 0.5, 0.5 } }))
    local b = ac.AdCorreLoss { classes = 2 }
    b:load_history_state(a:history_state())
    assert.is_true(b:confusion():equal(a:confusion()))
    assert.has_error(function() b:load_history_state({ labels = { 1 } }) end,
      "AdCorreLoss:load_history_state: expects {labels = {...}, predictions = {...}} of equal length")
  end)
end)
