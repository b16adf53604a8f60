-- spec/loss_detach_spec.lua - AdCorreLoss{detach = true}, the released code's
-- training: FD, MD and ED are computed and reported as with the full loss,
-- but the gradient is exactly CE's (lambda * dCE/dZ, no embedding gradient).
local ac = require("adcorre")

local function inputs(B, C, k, d, seed)
  ac.manual_seed(seed)
  local Z = ac.randn(B, C)
  local E = {}
  for j = 1, k do E[j] = ac.randn(B, d) end
  local y = {}
  for b = 1, B do y[b] = (b * 5 + seed) % C + 1 end
  return Z, E, y
end

local function max_abs_diff(a, b) return (a - b):abs():max() end

describe("AdCorreLoss detach", function()
  for _, reference in ipairs({ false, true }) do
    it("gives CE's gradient and the full loss's values (reference = " .. tostring(reference) .. ")", function()
      local C = 7
      local Z, E, y = inputs(24, C, 3, 32, 3)
      local full = ac.AdCorreLoss({ classes = C, reference = reference })
      local det = ac.AdCorreLoss({ classes = C, reference = reference, detach = true })
      local ce = ac.AdCorreLoss({ classes = C, reference = reference, fd = false, md = false, ed = false })
      local tf, pf = full:forward(Z, E, y)
      local td, pd = det:forward(Z, E, y)
      local _, pc = ce:forward(Z, E, y)
      -- the reported loss is the full one
      assert.equal(tf, td)
      for _, k in ipairs({ "ce", "fd", "md", "ed" }) do assert.equal(pf[k], pd[k], k) end
      assert.is_true(pd.fd > 0 and pd.md > 0 and pd.ed > 0)
      -- the gradient is CE's alone, bit for bit
      local gZd, gEd = det:backward()
      local gZd_copy = gZd:clone()
      local gEd_copy = {}
      for j = 1, #gEd do gEd_copy[j] = gEd[j]:clone() end
      local gZc, gEc = ce:backward()
      assert.equal(0, max_abs_diff(gZd_copy, gZc))
      for j = 1, #gEd_copy do
        assert.equal(0, gEd_copy[j]:abs():max(), "embedding " .. j)
        assert.equal(0, gEc[j]:abs():max(), "embedding " .. j)
      end
      -- the full loss does pass an embedding gradient (so the check above can fail)
      local _, gEf = full:backward()
      assert.is_true(gEf[1]:abs():max() > 0)
      assert.equal(0, pd.grad_norm.fd)
      assert.equal(0, pd.grad_norm.md)
      assert.equal(0, pd.grad_norm.ed)
      assert.is_true(pd.grad_norm.ce > 0)
      assert.equal(pc.grad_norm.ce, pd.grad_norm.ce)
    end)
  end

  it("keeps the confusion history like the full loss", function()
    local Z, E, y = inputs(16, 5, 2, 8, 9)
    local full = ac.AdCorreLoss({ classes = 5 })
    local det = ac.AdCorreLoss({ classes = 5, detach = true })
    full:forward(Z, E, y)
    det:forward(Z, E, y)
    assert.same(full:confusion():totable(), det:confusion():totable())
    assert.equal(select(1, full:history()), select(1, det:history()))
  end)

  it("is shown by tostring and rejects a non-boolean", function()
    assert.truthy(tostring(ac.AdCorreLoss({ classes = 3, detach = true })):find("detach=true", 1, true))
    assert.falsy(tostring(ac.AdCorreLoss({ classes = 3 })):find("detach", 1, true))
    local ok, err = pcall(ac.AdCorreLoss, { classes = 3, detach = 1 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("option 'detach' must be a boolean", 1, true), err)
  end)
end)
