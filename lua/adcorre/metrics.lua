--- adcorre.metrics: classification metrics and a resumable CSV log.
--
--   local m = ac.metrics.Confusion(7)
--   m:add(logits, labels)          -- [B,C] scores (argmax taken) or [B] classes
--   print(m:accuracy(), m:mean_class_accuracy())
--   print(m:format(ac.classes))    -- confusion in % and per-class P/R/F1
--
--   local log = ac.metrics.CSVLog("out/log.csv", {"epoch", "loss", "accuracy"})
--   log:write{epoch = 1, loss = 0.93, accuracy = 0.61}
--
-- Classes are 1-based. Rows of the confusion matrix are the true classes,
-- columns the predicted ones.
--
-- Conventions for empty cases (no division by zero, never NaN):
--   recall(c)    = M[c,c] / (row c total), 0 when class c never occurs as a target
--   precision(c) = M[c,c] / (column c total), 0 when class c is never predicted
--   f1(c)        = 2 P R / (P + R), 0 when P + R = 0
--   accuracy     = trace / total, 0 when nothing was added
--   mean_class_accuracy = mean of recall over the classes that occur as targets
--                 (classes with support 0 are left out), 0 when nothing was added
--   normalized() rows of absent classes are all 0.
local metrics = {}

local function ac() return require("adcorre") end

local function is_tensor(x)
  return require("adcorre.core").tensor.is_tensor(x)
end

local fmt = string.format

----------------------------------------------------------------------------
-- Confusion matrix accumulator
----------------------------------------------------------------------------

local Confusion = {}
Confusion.__index = Confusion
Confusion.__name = "adcorre.metrics.Confusion"

--- Confusion(C [, class_names]): a C x C accumulator of counts.
function metrics.Confusion(C, class_names)
  if math.type(C) ~= "integer" then
    if type(C) == "number" and C == math.floor(C) then C = math.tointeger(C)
    else error("Confusion: number of classes must be an integer, got " .. tostring(C), 2) end
  end
  if C < 1 then error(fmt("Confusion: number of classes must be >= 1, got %d", C), 2) end
  if class_names ~= nil and (type(class_names) ~= "table" or #class_names ~= C) then
    error(fmt("Confusion: class_names must be an array of %d names", C), 2)
  end
  local self = setmetatable({ C = C, class_names = class_names }, Confusion)
  self:reset()
  return self
end

function Confusion:reset()
  local M = {}
  for i = 1, self.C do
    local row = {}
    for j = 1, self.C do row[j] = 0 end
    M[i] = row
  end
  self.M = M
  self.total = 0
  return self
end

-- Turns predictions / targets into a Lua array of integer classes.
-- what = "pred" accepts [N,C] float scores (argmax along dim 2) or a [C] score vector.
local function to_classes(x, what, C, fname)
  if type(x) == "number" then
    return { x }
  elseif is_tensor(x) then
    local nd = x:dim()
    if x:dtype() == "float32" and what == "pred" and nd == 2 then
      if x:size(2) ~= C then
        error(fmt("%s: scores have %d columns, the matrix has %d classes", fname, x:size(2), C), 3)
      end
      if x:size(1) == 0 then return {} end
      return x:argmax(2):totable()
    end
    if nd == 0 then return { x:item() } end
    if nd ~= 1 then
      local s = table.concat(x:shape(), ", ")
      error(fmt("%s: %s must be a 1-d tensor of classes, got shape [%s]", fname, what == "pred" and "pred" or "target", s), 3)
    end
    return x:totable()
  elseif type(x) == "table" then
    return x
  end
  error(fmt("%s: %s must be a tensor, a Lua array or a number, got %s", fname,
    what == "pred" and "pred" or "target", type(x)), 3)
end

local function check_classes(arr, C, name, fname)
  for i = 1, #arr do
    local v = arr[i]
    if type(v) ~= "number" or v ~= math.floor(v) then
      error(fmt("%s: %s[%d] is not an integer class (%s)", fname, name, i, tostring(v)), 3)
    end
    if v < 1 or v > C then
      error(fmt("%s: %s[%d] = %d is out of range 1..%d", fname, name, i, v, C), 3)
    end
  end
end

--- m:add(pred, target): pred and target are int64 tensors [N], Lua arrays or
-- single numbers (1-based classes); pred may also be float32 scores [N,C]
-- (argmax is taken). Nothing is added when any value is invalid.
function Confusion:add(pred, target)
  local fname = "Confusion:add"
  local p = to_classes(pred, "pred", self.C, fname)
  local t = to_classes(target, "target", self.C, fname)
  if #p ~= #t then
    error(fmt("%s: %d predictions but %d targets", fname, #p, #t), 2)
  end
  check_classes(p, self.C, "pred", fname)
  check_classes(t, self.C, "target", fname)
  local M = self.M
  for i = 1, #p do
    local r = M[math.tointeger(t[i])]
    local j = math.tointeger(p[i])
    r[j] = r[j] + 1
  end
  self.total = self.total + #p
  return self
end

--- Counts as an int64 tensor [C,C] (rows: true class, columns: predicted).
function Confusion:matrix()
  return ac().tensor(self.M, "int64")
end

--- Row-normalised matrix (each true-class row sums to 1; absent classes: 0) as float32 [C,C].
function Confusion:normalized()
  return ac().tensor(self:normalized_table())
end

--- The same as nested Lua tables (for JSON output).
function Confusion:normalized_table()
  local out = {}
  for i = 1, self.C do
    local row, s = {}, 0
    for j = 1, self.C do s = s + self.M[i][j] end
    for j = 1, self.C do row[j] = s > 0 and self.M[i][j] / s or 0 end
    out[i] = row
  end
  return out
end

--- Counts as nested Lua tables.
function Confusion:matrix_table()
  local out = {}
  for i = 1, self.C do out[i] = table.move(self.M[i], 1, self.C, 1, {}) end
  return out
end

function Confusion:accuracy()
  if self.total == 0 then return 0 end
  local tr = 0
  for i = 1, self.C do tr = tr + self.M[i][i] end
  return tr / self.total
end

--- {precision = {...}, recall = {...}, f1 = {...}, support = {...}} (arrays of C numbers).
function Confusion:per_class()
  local C, M = self.C, self.M
  local P, R, F, S = {}, {}, {}, {}
  for c = 1, C do
    local row, col = 0, 0
    for k = 1, C do row = row + M[c][k]; col = col + M[k][c] end
    local tp = M[c][c]
    local p = col > 0 and tp / col or 0
    local r = row > 0 and tp / row or 0
    P[c], R[c], S[c] = p, r, row
    F[c] = (p + r) > 0 and 2 * p * r / (p + r) or 0
  end
  return { precision = P, recall = R, f1 = F, support = S }
end

-- Unweighted mean of a per_class() field over the classes that occur as targets.
local function mean_over_present(self, field)
  local pc = self:per_class()
  local s, n = 0, 0
  for c = 1, self.C do
    if pc.support[c] > 0 then s = s + pc[field][c]; n = n + 1 end
  end
  return n > 0 and s / n or 0
end

--- Mean of per-class recall over the classes that occur as targets.
function Confusion:mean_class_accuracy() return mean_over_present(self, "recall") end

--- Unweighted mean of F1 over the classes that occur as targets.
function Confusion:macro_f1() return mean_over_present(self, "f1") end

--- Everything at once as plain Lua values (ready for JSON).
function Confusion:summary(class_names)
  local pc = self:per_class()
  return {
    total = self.total,
    accuracy = self:accuracy(),
    mean_class_accuracy = self:mean_class_accuracy(),
    macro_f1 = self:macro_f1(),
    confusion = self:normalized_table(),
    counts = self:matrix_table(),
    precision = pc.precision, recall = pc.recall, f1 = pc.f1, support = pc.support,
    classes = class_names or self.class_names,
  }
end

local function default_names(C)
  local ok, acm = pcall(ac)
  if ok and C <= #acm.classes then return table.move(acm.classes, 1, C, 1, {}) end
  local n = {}
  for i = 1, C do n[i] = tostring(i) end
  return n
end

local function pad(s, w, right)
  local n = utf8.len(s) or #s
  if n >= w then return s end
  if right then return string.rep(" ", w - n) .. s end
  return s .. string.rep(" ", w - n)
end

local function clip(s, w)
  if (utf8.len(s) or #s) <= w then return s end
  return s:sub(1, w)
end

--- A readable text report: the row-normalised confusion matrix in percent
-- (rows true, columns predicted), then precision / recall / F1 / support per class.
function Confusion:format(class_names)
  class_names = class_names or self.class_names or default_names(self.C)
  if type(class_names) ~= "table" or #class_names ~= self.C then
    error(fmt("Confusion:format: class_names must be an array of %d names", self.C), 2)
  end
  local names = {}
  local lw = 4
  for i = 1, self.C do
    names[i] = tostring(class_names[i])
    lw = math.max(lw, utf8.len(names[i]) or #names[i])
  end
  local corner = "true \\ pred"
  lw = math.max(lw, #corner)
  local cw = 8
  for i = 1, self.C do cw = math.max(cw, math.min(11, (utf8.len(names[i]) or #names[i]) + 2)) end
  local N = self:normalized_table()
  local lines = {}
  lines[#lines + 1] = fmt("accuracy %.2f %%   mean class accuracy %.2f %%   macro F1 %.4f   (%d samples)",
    100 * self:accuracy(), 100 * self:mean_class_accuracy(), self:macro_f1(), self.total)
  lines[#lines + 1] = ""
  local head = { pad(corner, lw + 1) }
  for j = 1, self.C do head[#head + 1] = pad(clip(names[j], cw - 1), cw, true) end
  lines[#lines + 1] = table.concat(head)
  for i = 1, self.C do
    local row = { pad(names[i], lw + 1) }
    for j = 1, self.C do row[#row + 1] = pad(fmt("%.1f", 100 * N[i][j]), cw, true) end
    lines[#lines + 1] = table.concat(row)
  end
  lines[#lines + 1] = ""
  local pc = self:per_class()
  lines[#lines + 1] = pad("class", lw + 1) .. pad("precision", 10, true) .. pad("recall", 10, true)
    .. pad("f1", 10, true) .. pad("support", 10, true)
  for c = 1, self.C do
    lines[#lines + 1] = pad(names[c], lw + 1) .. pad(fmt("%.4f", pc.precision[c]), 10, true)
      .. pad(fmt("%.4f", pc.recall[c]), 10, true) .. pad(fmt("%.4f", pc.f1[c]), 10, true)
      .. pad(fmt("%d", pc.support[c]), 10, true)
  end
  return table.concat(lines, "\n")
end

Confusion.__tostring = function(self) return self:format() end

metrics.ConfusionClass = Confusion
----------------------------------------------------------------------------
-- CSV log: adcorre.csvlog
----------------------------------------------------------------------------

local csvlog = require("adcorre.csvlog")
metrics.CSVLog, metrics.read_csv, metrics.CSVLogClass = csvlog.CSVLog, csvlog.read_csv, csvlog.CSVLogClass

return metrics
