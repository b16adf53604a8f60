-- Agreement of the adcorre.nn layers and the cross-entropy with PyTorch: forward outputs, input
-- gradients, parameter gradients and batch-norm running statistics, on the
-- cases built by tools/torch_nn_compare.py. When /usr/bin/python3 has torch
-- the cases are regenerated for this run; otherwise the copy kept in
-- spec/fixtures/nn/torch_cases.lua is used (also when AC_TORCH_FIXTURES=stored). Error measure: max |ours - torch|
-- over the tensor, divided by max |torch| (must stay below 1e-4).
local ac = require("adcorre")
local nn = ac.nn

local TOL = tonumber(os.getenv("AC_NN_TORCH_TOL")) or 1e-4

local function load_cases()
  local python = "/usr/bin/python3"
  if os.getenv("AC_TORCH_FIXTURES") == "stored" then python = "/nonexistent/python3" end
  local probe = io.popen(python .. " -c 'import torch' 2>/dev/null; echo $?")
  local status = probe and probe:read("*l")
  if probe then probe:close() end
  if status == "0" then
    local path = os.tmpname()
    local p = io.popen(python .. " tools/torch_nn_compare.py " .. path .. " 2>&1")
    local msg = p:read("*a")
    local ok = p:close()
    if not ok then error("tools/torch_nn_compare.py failed: " .. msg) end
    local cases = dofile(path)
    os.remove(path)
    return cases, "generated now"
  end
  local f = io.open("spec/fixtures/nn/torch_cases.lua")
  if f then
    f:close()
    return dofile("spec/fixtures/nn/torch_cases.lua"), "stored fixtures"
  end
  return nil
end

local function T(entry)
  return ac.tensor(entry.data):view(table.unpack(entry.shape))
end

local function relerr(ours, ref)
  local a, b = ours:contiguous():view(-1), ref:contiguous():view(-1)
  assert.are.equal(b:numel(), a:numel())
  local m, d = 0, 0
  for i = 1, b:numel() do
    m = math.max(m, math.abs(b[i]))
    d = math.max(d, math.abs(a[i] - b[i]))
  end
  return d / math.max(m, 1e-12)
end

local function expect_close(what, ours, ref)
  local e = relerr(ours, ref)
  assert(e < TOL, ("%s: relative error %.3g (limit %g)"):format(what, e, TOL))
  return e
end

local build = {}

function build.Linear(c, t)
  local m = nn.Linear(table.unpack(c.args))
  m.weight:copy(T(t.weight))
  m.bias:copy(T(t.bias))
  return m, { weight = "gradWeight", bias = "gradBias" }
end

function build.Conv2d(c, t)
  local m = nn.Conv2d(table.unpack(c.args, 1, 7))
  m.weight:copy(T(t.weight))
  if t.bias then m.bias:copy(T(t.bias)) end
  return m, { weight = "gradWeight", bias = t.bias and "gradBias" or nil }
end

function build.SeparableConv2d(c, t)
  local m = nn.SeparableConv2d(table.unpack(c.args, 1, 5))
  m.depthwise.weight:copy(T(t.dweight))
  m.pointwise.weight:copy(T(t.pweight))
  return m
end

function build.BatchNorm2d(c, t)
  local m = nn.BatchNorm2d(table.unpack(c.args))
  m.weight:copy(T(t.weight))
  m.bias:copy(T(t.bias))
  m.running_mean:copy(T(t.running_mean0))
  m.running_var:copy(T(t.running_var0))
  if c.training then m:training() else m:evaluate() end
  return m, { weight = "gradWeight", bias = "gradBias" }
end

function build.BatchNorm1d(c, t)
  local m = nn.BatchNorm1d(table.unpack(c.args))
  m.weight:copy(T(t.weight))
  m.bias:copy(T(t.bias))
  m.running_mean:copy(T(t.running_mean0))
  m.running_var:copy(T(t.running_var0))
  if c.training then m:training() else m:evaluate() end
  return m
end

function build.SoftMax() return nn.SoftMax() end
function build.LogSoftMax() return nn.LogSoftMax() end
function build.L2Normalize() return nn.L2Normalize() end

function build.MaxPool2d(c) return nn.MaxPool2d(table.unpack(c.args)) end
function build.AvgPool2d(c) return nn.AvgPool2d(table.unpack(c.args)) end

local cases, source = load_cases()

describe("nn layers agree with PyTorch", function()
  if not cases then
    pending("no torch and no spec/fixtures/nn/torch_cases.lua")
    return
  end
  it("has cases (" .. source .. ")", function() assert.is_true(#cases.cases >= 15) end)
  for _, c in ipairs(cases.cases) do
    it(c.kind .. ": " .. c.name, function()
      local t = c.tensors
      if c.kind == "CrossEntropyCriterion" then
        local crit = nn.CrossEntropyCriterion(t.weights and T(t.weights) or nil)
        local x, target = T(t.x), T(t.target):long()
        local loss = crit:forward(x, target)
        local ref = t.loss.data[1]
        assert(math.abs(loss - ref) / math.abs(ref) < TOL, ("loss %.9g, torch %.9g"):format(loss, ref))
        expect_close("gradInput", crit:backward(x, target), T(t.gx))
        return
      end
      local m = build[c.kind](c, t)
      local x = T(t.x)
      m:zeroGradParameters()
      local y = m:forward(x)
      expect_close("output", y, T(t.y))
      local gx = m:backward(x, T(t.gy))
      expect_close("gradInput", gx, T(t.gx))
      if c.kind == "SeparableConv2d" then
        expect_close("gradient of the depthwise weight", m.depthwise.gradWeight, T(t.gdweight))
        expect_close("gradient of the pointwise weight", m.pointwise.gradWeight, T(t.gpweight))
      end
      if t.gweight then expect_close("gradWeight", m.gradWeight, T(t.gweight)) end
      if t.gbias then expect_close("gradBias", m.gradBias, T(t.gbias)) end
      if c.kind == "BatchNorm2d" or c.kind == "BatchNorm1d" then
        expect_close("running_mean", m.running_mean, T(t.running_mean))
        expect_close("running_var", m.running_var, T(t.running_var))
      end
    end)
  end
end)
