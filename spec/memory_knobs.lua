--- spec/memory_knobs.lua - the memory planner's size thresholds set to 0
-- for a block of specs (their small inputs would otherwise keep every
-- output: nn.Sequential.releaseMin, every recomputable output:
-- nn.Sequential.recomputeMin, nn.SeparableConv2d.recomputeMin), and put
-- back afterwards.
--   local saved
--   setup(function() saved = knobs.zero() end)
--   teardown(function() knobs.restore(saved) end)
local nn = require("adcorre").nn

local knobs = {}

function knobs.zero()
  local saved = { nn.Sequential.releaseMin, nn.Sequential.recomputeMin, nn.SeparableConv2d.recomputeMin }
  nn.Sequential.releaseMin, nn.Sequential.recomputeMin, nn.SeparableConv2d.recomputeMin = 0, 0, 0
  return saved
end

function knobs.restore(saved)
  nn.Sequential.releaseMin, nn.Sequential.recomputeMin, nn.SeparableConv2d.recomputeMin = saved[1], saved[2], saved[3]
end

return knobs
