-- spec/metrics_spec.lua - ac.metrics: the confusion accumulator on hand-worked
-- examples (counts, accuracy, per-class precision/recall/F1, absent classes),
-- its input forms and argument errors, and the resumable CSV log.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local function close(a, b, tol)
  return math.abs(a - b) <= (tol or 1e-12)
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(fs.mkdir_p(d))
  return d
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- targets {1,1,1,2,2,3,3,3,3}, predictions {1,2,1,2,2,3,1,3,2}, 4 classes (class 4 absent).
-- Counts (rows true, cols predicted):
--   [2 1 0 0]   recall 2/3  precision 2/3 (column 1 total 3)
--   [0 2 0 0]   recall 1    precision 2/4
--   [1 1 2 0]   recall 1/2  precision 2/2
--   [0 0 0 0]   recall 0    precision 0 (never predicted, never a target)
-- F1 = 2/3 for classes 1..3, 0 for class 4; accuracy 6/9; mean class accuracy
-- over the 3 present classes (2/3 + 1 + 1/2) / 3 = 13/18.
local T = { 1, 1, 1, 2, 2, 3, 3, 3, 3 }
local P = { 1, 2, 1, 2, 2, 3, 1, 3, 2 }

describe("metrics.Confusion", function()
  it("counts and rates on a hand-worked example", function()
    local m = ac.metrics.Confusion(4)
    m:add(P, T)
    assert.same({ { 2, 1, 0, 0 }, { 0, 2, 0, 0 }, { 1, 1, 2, 0 }, { 0, 0, 0, 0 } }, m:matrix():totable())
    assert.equal("int64", m:matrix():dtype())
    assert.is_true(close(6 / 9, m:accuracy()))
    assert.is_true(close(13 / 18, m:mean_class_accuracy()))
    local pc = m:per_class()
    local want_p = { 2 / 3, 0.5, 1, 0 }
    local want_r = { 2 / 3, 1, 0.5, 0 }
    local want_f = { 2 / 3, 2 / 3, 2 / 3, 0 }
    for c = 1, 4 do
      assert.is_true(close(want_p[c], pc.precision[c]), "precision " .. c)
      assert.is_true(close(want_r[c], pc.recall[c]), "recall " .. c)
      assert.is_true(close(want_f[c], pc.f1[c]), "f1 " .. c)
    end
    assert.same({ 3, 2, 4, 0 }, pc.support)
    assert.is_true(close(2 / 3, m:macro_f1()))
    local N = m:normalized()
    assert.equal("float32", N:dtype())
    local Nt = N:totable()
    assert.is_true(close(2 / 3, Nt[1][1], 1e-6))
    assert.is_true(close(0.25, Nt[3][1], 1e-6))
    assert.same({ 0, 0, 0, 0 }, Nt[4])
    for i = 1, 3 do
      local s = 0
      for j = 1, 4 do s = s + Nt[i][j] end
      assert.is_true(close(1, s, 1e-6))
    end
  end)

  it("accepts int64 tensors, float scores (argmax) and single numbers identically", function()
    local a = ac.metrics.Confusion(4):add(P, T)
    local b = ac.metrics.Confusion(4):add(ac.tensor(P, "int64"), ac.tensor(T, "int64"))
    assert.same(a:matrix():totable(), b:matrix():totable())
    local scores = ac.zeros(#P, 4)
    for i, p in ipairs(P) do scores[i][p] = 1 + i end
    local c = ac.metrics.Confusion(4):add(scores, ac.tensor(T, "int64"))
    assert.same(a:matrix():totable(), c:matrix():totable())
    local d = ac.metrics.Confusion(4)
    for i = 1, #P do d:add(P[i], T[i]) end
    assert.same(a:matrix():totable(), d:matrix():totable())
    assert.equal(9, d.total)
  end)

  it("a perfect classifier, an empty matrix and reset", function()
    local m = ac.metrics.Confusion(3)
    assert.equal(0, m:accuracy())
    assert.equal(0, m:mean_class_accuracy())
    m:add({ 1, 2, 3, 3 }, { 1, 2, 3, 3 })
    assert.equal(1, m:accuracy())
    assert.equal(1, m:mean_class_accuracy())
    assert.same({ 1, 1, 1 }, m:per_class().f1)
    m:reset()
    assert.equal(0, m.total)
    assert.same({ { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } }, m:matrix():totable())
  end)

  it("formats a readable table with percentages and per-class scores", function()
    local m = ac.metrics.Confusion(4):add(P, T)
    local s = m:format({ "Neutral", "Happy", "Sad", "Surprise" })
    assert.truthy(s:find("accuracy 66.67 %", 1, true))
    assert.truthy(s:find("mean class accuracy 72.22 %", 1, true))
    assert.truthy(s:find("Surprise", 1, true))
    assert.truthy(s:find("precision", 1, true))
    -- the "Sad" row: 25 % / 25 % / 50 % / 0 %
    local row = s:match("\nSad[^\n]*")
    assert.truthy(row:find("25.0%s+25.0%s+50.0%s+0.0"))
    assert.equal(s, tostring(ac.metrics.Confusion(4, { "Neutral", "Happy", "Sad", "Surprise" }):add(P, T)))
    local summary = m:summary()
    assert.equal(9, summary.total)
    assert.same(m:normalized_table(), summary.confusion)
  end)

  it("rejects bad arguments with clear errors and adds nothing", function()
    assert.has_error(function() ac.metrics.Confusion(0) end, "Confusion: number of classes must be >= 1, got 0")
    assert.has_error(function() ac.metrics.Confusion(2.5) end)
    local m = ac.metrics.Confusion(3)
    assert.has_error(function() m:add({ 1, 2 }, { 1 }) end, "Confusion:add: 2 predictions but 1 targets")
    assert.has_error(function() m:add({ 1, 4 }, { 1, 1 }) end, "Confusion:add: pred[2] = 4 is out of range 1..3")
    assert.has_error(function() m:add({ 1, 1 }, { 0, 1 }) end, "Confusion:add: target[1] = 0 is out of range 1..3")
    assert.has_error(function() m:add({ 1.5 }, { 1 }) end, "Confusion:add: pred[1] is not an integer class (1.5)")
    assert.has_error(function() m:add(ac.zeros(2, 4), { 1, 1 }) end,
      "Confusion:add: scores have 4 columns, the matrix has 3 classes")
    assert.has_error(function() m:add(ac.zeros(2, 2, "int64"), { 1, 1 }) end,
      "Confusion:add: pred must be a 1-d tensor of classes, got shape [2, 2]")
    assert.has_error(function() m:add("x", { 1 }) end)
    assert.equal(0, m.total)
    assert.has_error(function() m:format({ "a" }) end, "Confusion:format: class_names must be an array of 3 names")
  end)
end)

describe("metrics.CSVLog", function()
  it("writes a header and one flushed line per row, quoting where needed", function()
    local d = tmpdir()
    local path = d .. "/log.csv"
    local log = ac.metrics.CSVLog(path, { "epoch", "loss", "note" })
    log:write { epoch = 1, loss = 0.25, note = 'a,"b"' }
    -- flushed: readable before close
    assert.equal('epoch,loss,note\n1,0.25,"a,""b"""\n', slurp(path))
    log:write { epoch = 2 }
    log:close()
    assert.equal('epoch,loss,note\n1,0.25,"a,""b"""\n2,,\n', slurp(path))
    local cols, rows = ac.metrics.read_csv(path)
    assert.same({ "epoch", "loss", "note" }, cols)
    assert.equal(2, #rows)
    assert.equal('a,"b"', rows[1].note)
    assert.equal(0.25, rows[1].loss)
    assert.is_nil(rows[2].loss)
    os.execute("rm -rf " .. d)
  end)

  it("resumes: keeps rows under the same header, drops a partial last line, filters with keep", function()
    local d = tmpdir()
    local path = d .. "/log.csv"
    local log = ac.metrics.CSVLog(path, { "epoch", "acc" })
    for e = 1, 3 do log:write { epoch = e, acc = e / 10 } end
    log:close()
    -- a crash in the middle of a line
    local f = assert(io.open(path, "ab")); f:write("4,0."); f:close()
    local r = ac.metrics.CSVLog(path, { "epoch", "acc" })
    assert.equal(3, #r:get_rows())
    assert.same({ 1, 2, 3 }, r:column("epoch"))
    r:write { epoch = 4, acc = 0.4 }
    r:close()
    assert.equal("epoch,acc\n1,0.1\n2,0.2\n3,0.3\n4,0.4\n", slurp(path))
    -- resume from a checkpoint of epoch 2: later rows go
    local k = ac.metrics.CSVLog(path, { "epoch", "acc" }, { keep = function(row) return row.epoch <= 2 end })
    k:write { epoch = 3, acc = 0.33 }
    k:close()
    assert.equal("epoch,acc\n1,0.1\n2,0.2\n3,0.33\n", slurp(path))
    -- fresh starts over
    ac.metrics.CSVLog(path, { "epoch", "acc" }, { fresh = true }):close()
    assert.equal("epoch,acc\n", slurp(path))
    os.execute("rm -rf " .. d)
  end)

  it("rejects a different header, unknown columns and unwritable paths", function()
    local d = tmpdir()
    local path = d .. "/log.csv"
    ac.metrics.CSVLog(path, { "epoch", "acc" }):close()
    assert.has_error(function() ac.metrics.CSVLog(path, { "epoch", "loss" }) end,
      "CSVLog: " .. path .. " exists with header 'epoch,acc', expected 'epoch,loss' (pass fresh = true to replace it)")
    local log = ac.metrics.CSVLog(path, { "epoch", "acc" })
    assert.has_error(function() log:write { epoch = 1, acuracy = 2 } end,
      "CSVLog:write: unknown column 'acuracy' (columns: epoch, acc)")
    log:close()
    assert.has_error(function() log:write { epoch = 1 } end, "CSVLog:write: the log is closed")
    assert.has_error(function() ac.metrics.CSVLog(d .. "/no/such/dir/log.csv", { "a" }) end)
    assert.has_error(function() ac.metrics.CSVLog(path, {}) end, "CSVLog: columns must be a non-empty array of names")
    assert.has_error(function() ac.metrics.CSVLog(path, { "a", "a" }) end, "CSVLog: column 'a' appears twice")
    os.execute("rm -rf " .. d)
  end)
end)
