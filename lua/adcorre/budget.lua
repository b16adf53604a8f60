--- adcorre.budget: the allocation budget every importer rebuilds a model
-- under (ac.load, ac.keras.load / load_weights, ac.onnx.load).
--
--   local ok, m = budget.run(budget.bytes(held), budget.why(held), ctor, args)
--   if not ok and budget.exceeded(m) then ... end
--
-- budget.bytes(held) is what a file holding `held` bytes of weights can
-- justify: the parameters and their gradients (twice the weights) plus room
-- for small state. While `fn` runs, the calling thread may allocate at most
-- `limit` bytes of tensors in all, so a file whose architecture asks for
-- absurd sizes fails before it takes memory. The previous budget is
-- restored on every path, errors included.
local core = require("adcorre.core")

local M = {}

M.SLACK = 16 << 20

--- The budget for a file holding `held` bytes of weights.
function M.bytes(held) return 2 * held + M.SLACK end

--- The reason the refusal gives: "what the file's N bytes of weights justify".
function M.why(held, what)
  return ("what the file's %d bytes of %s justify"):format(held, what or "weights")
end

--- pcall(fn, ...) with at most `limit` bytes of tensors; restores the previous budget.
function M.run(limit, why, fn, ...)
  local before = core.io.alloc_budget(limit, why)
  local r = table.pack(pcall(fn, ...))
  core.io.alloc_budget(before)
  return table.unpack(r, 1, r.n)
end

--- True when an error message is the budget's refusal.
function M.exceeded(msg) return tostring(msg):find("exceeds the budget of", 1, true) ~= nil end

--- An error message without the Lua position of the library's source.
function M.strip(msg) return (tostring(msg):gsub("^[^:]*%.lua:%d+: ", "")) end

return M
