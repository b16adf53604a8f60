--- nn.Sequential: feeds each module's output to the next.
--   local net = nn.Sequential():add(nn.Linear(4, 8)):add(nn.ReLU()):add(nn.Linear(8, 2))
local Container = require("adcorre.nn.Container")
local Module = require("adcorre.nn.Module")
local ac = require("adcorre")
local core = require("adcorre.core")

local Sequential = Container.class("nn.Sequential", Container)

----------------------------------------------------------------------------
-- evaluation mode: a convolution followed by a batch norm runs as one
-- convolution with the norm folded in (weight * s, bias (b - mean) * s + beta,
-- s = gamma / sqrt(running_var + eps)), written straight into the norm's
-- output, when the batch is large enough for the fold to pay (batch x input
-- positions > weights per output channel; batch-1 Xception keeps the plain
-- path). The convolution's own output is then not computed; a backward
-- after such a forward first re-runs the plain forward (unfuse), so
-- gradients are those of the unfused network.
----------------------------------------------------------------------------
local function conv_of(m)
  if m.__typename == "nn.Conv2d" then return m end
  if m.__typename == "nn.SeparableConv2d" then return m.pointwise end
  return nil
end

local function fusable(m, bn, x)
  if bn.__typename ~= "nn.BatchNorm2d" or bn.train or not bn.running_var then return false end
  local conv = conv_of(m)
  if not conv or m.train or conv.nout ~= bn.nfeatures then return false end
  -- anything unusual goes the plain way (which also gives the usual errors)
  if not (ac.is_tensor(x) and x:dim() == 4 and x:size(2) == m.nin and x:dtype() == "float32") then
    return false
  end
  -- folding touches every weight once; it pays when the norm's pass over the
  -- output (batch x positions per channel) is larger than a channel's weights
  local w = conv.weight:shape()
  return x:size(1) * x:size(3) * x:size(4) > w[2] * w[3] * w[4]
end

local function fused_forward(m, bn, x)
  local conv, cin = m, x
  if m.__typename == "nn.SeparableConv2d" then
    cin = m.depthwise:updateOutput(x)
    conv = m.pointwise
  end
  local O = conv.nout
  local s = bn:_buffer("fold_s", {O})
  s:copy(bn.running_var)
  s:add_(bn.eps)
  s:rsqrt_()
  if bn.weight then s:mul_(bn.weight) end
  local fw = bn:_buffer("fold_w", conv.weight:shape())
  core.convfast_scale_rows(conv.weight, s, fw)
  local fb = bn:_buffer("fold_b", {O})
  fb:copy(bn.running_mean)
  fb:mul_(s)
  fb:mul_(-1)
  if bn.bias then fb:add_(bn.bias) end
  if conv.bias then
    local t = bn:_buffer("fold_t", {O})
    t:copy(conv.bias)
    t:mul_(s)
    fb:add_(t)
  end
  local sh, geo, OH, OW, ws = conv:_prepare("forward", cin)
  local y = bn:_resized("output", {sh[1], O, OH, OW})
  conv:_call("forward", core.nn_conv2d_forward, cin, fw, fb, y, ws, geo)
  if bn.relu then core.nn_relu_forward(y, y) end -- BatchNorm2d(..., {relu = true})
  return y
end

function Sequential:updateOutput(input)
  local x = input
  local n, i, fused = #self.modules, 1, false
  while i <= n do
    local m, nxt = self.modules[i], self.modules[i + 1]
    if nxt and not self.train and fusable(m, nxt, x) then
      local ok, r = pcall(fused_forward, m, nxt, x)
      if not ok then
        error(("in module %d (%s) of %s: %s"):format(i, m.__typename, self.__typename, tostring(r)), 0)
      end
      x, fused, i = r, true, i + 2
    else
      x = self:_child(i, "updateOutput", x)
      i = i + 1
    end
  end
  self._fused = fused or nil
  self.output = x
  return x
end

-- Before a backward: recompute the outputs a fused forward skipped.
local function unfuse(self, input)
  if not self._fused then return end
  self._fused = nil
  local x = input
  for i = 1, #self.modules do x = self:_child(i, "updateOutput", x) end
  self.output = x
end

function Sequential:updateGradInput(input, gradOutput)
  unfuse(self, input)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local prev = i > 1 and self.modules[i - 1].output or input
    g = self:_child(i, "updateGradInput", prev, g)
  end
  self.gradInput = g
  return g
end

function Sequential:accGradParameters(input, gradOutput, scale)
  unfuse(self, input)
  scale = scale or 1
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local m = self.modules[i]
    local prev = i > 1 and self.modules[i - 1].output or input
    self:_child(i, "accGradParameters", prev, g, scale)
    g = m.gradInput
  end
end

--- backward in one sweep: each child runs updateGradInput and
--- accGradParameters back to back (what Torch's Sequential:backward does);
--- a child's gradInput goes back to the shared pool once the child before it
--- has used it (see Module.lua), so inner gradInput fields are nil afterwards.
function Sequential:backward(input, gradOutput, scale)
  unfuse(self, input)
  scale = scale or 1
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local prev = i > 1 and self.modules[i - 1].output or input
    g = self:_child(i, "backward", prev, g, scale)
    -- the next child's gradInput has been used: recycle it (Module.lua)
    if i < #self.modules then Module._releaseGradInput(self.modules[i + 1], g) end
  end
  self.gradInput = g
  return g
end

function Sequential:__tostring__()
  local lines = { self.__typename .. " {" }
  local chain = { "input" }
  for i = 1, #self.modules do chain[#chain + 1] = "(" .. i .. ")" end
  chain[#chain + 1] = "output"
  lines[#lines + 1] = "  [" .. table.concat(chain, " -> ") .. "]"
  for i, m in ipairs(self.modules) do
    local label = m.name and ("(" .. i .. ") " .. m.name) or ("(" .. i .. ")")
    lines[#lines + 1] = "  " .. label .. ": " .. Container._indent(tostring(m), "  ")
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

return Sequential
