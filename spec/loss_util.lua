--- spec/loss_util.lua - what the Ad-Corre loss specs share: random
-- embeddings, error and finiteness assertions, relative errors.
local ac = require("adcorre")
local luassert = require("luassert")

local util = {}

-- asserts that fn raises an error whose message contains the plain text `text`
function util.error_like(fn, text)
  local ok, err = pcall(fn)
  luassert.is_false(ok, "expected an error containing: " .. text)
  luassert.is_truthy(tostring(err):find(text, 1, true), "error was: " .. tostring(err))
end

function util.maxabs(t) return t:abs():max() end
local maxabs = util.maxabs

-- max|a - b| / max|b| (0 when both are 0)
function util.relerr(a, b)
  local den = maxabs(b)
  local num = maxabs(a - b)
  if den == 0 then return num end
  return num / den
end

function util.all_finite(t)
  local v = t:contiguous():view(-1)
  for i = 1, #v do
    local x = v[i]
    if x ~= x or x == math.huge or x == -math.huge then return false end
  end
  return true
end

function util.randn_rows(B, d, normalise)
  local t = ac.randn(B, d)
  if normalise then
    for b = 1, B do
      local row = t[b]
      row:div_(row:norm())
    end
  end
  return t
end

function util.embeddings(k, B, d, normalise)
  local E = {}
  for j = 1, k do E[j] = util.randn_rows(B, d, normalise) end
  return E
end

return util
