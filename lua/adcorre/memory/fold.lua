--- adcorre.memory.fold: in evaluation mode, a convolution followed by a
-- batch norm runs as one convolution with the norm folded in
--   weight * s, bias (b - mean) * s + beta,  s = gamma / sqrt(running_var + eps)
-- written straight into the norm's output, so the convolution's own output
-- is never made. The pairs are found by class (FOLDS below), not by name.
-- A backward after such a forward first re-runs the plain forward
-- (adcorre.memory.plan.recompute), so gradients are those of the unfused
-- network.
local ac = require("adcorre")
local core = require("adcorre.core")
local Conv2d = require("adcorre.nn.Conv2d")
local SeparableConv2d = require("adcorre.nn.SeparableConv2d")
local BatchNorm2d = require("adcorre.nn.BatchNorm2d")

local M = {}

-- Class of the first module -> its convolution that the norm folds into.
local FOLDS = {
  [Conv2d] = function(m) return m end,
  [SeparableConv2d] = function(m) return m.pointwise end,
}

-- true when m (a convolution) and bn (the next module) run folded on x.
local function foldable(m, bn, x)
  if bn.train or not bn.running_var then return false end
  local conv_of = FOLDS[getmetatable(m)]
  local conv = conv_of and conv_of(m)
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

local fold_scratch = {}

local function fused_forward(m, bn, x)
  local conv, cin = m, x
  if getmetatable(m) == SeparableConv2d then
    cin = m.depthwise:updateOutput(x)
    conv = m.pointwise
  end
  local O = conv.nout
  local s = bn:_buffer("fold_s", {O})
  s:copy(bn.running_var)
  s:add_(bn.eps)
  s:rsqrt_()
  if bn.weight then s:mul_(bn.weight) end
  -- the folded weight is only read by this call: one scratch for all of them
  local fw = core.nn.buffer(fold_scratch.w, conv.weight:shape())
  fold_scratch.w = fw
  core.convfast.scale_rows(conv.weight, s, fw)
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
  conv:_call("forward", core.nn.conv2d_forward, cin, fw, fb, y, ws, geo)
  if bn.relu then core.nn.relu_forward(y, y) end -- BatchNorm2d(..., {relu = true})
  return y
end

--- true when the children of the Sequential `seq` may run folded in its
--- next forward (evaluation mode, and not a recomputation's plain forward).
function M.active(seq) return not seq.train and not seq._plain end

--- Children i and i + 1 of the Sequential `seq` run folded on x when they
--- are a convolution and a batch norm in evaluation mode and the batch is
--- large enough for the fold to pay: returns their output and i + 1, or nil
--- (run child i the plain way).
function M.forward(seq, i, x)
  local m, nxt = seq.modules[i], seq.modules[i + 1]
  if getmetatable(nxt) ~= BatchNorm2d or not foldable(m, nxt, x) then return nil end
  local ok, r = pcall(fused_forward, m, nxt, x)
  if not ok then
    error(("in module %d (%s) of %s: %s"):format(i, m.__typename, seq.__typename, tostring(r)), 0)
  end
  return r, i + 1
end

return M
