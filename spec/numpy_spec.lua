-- spec/numpy_spec.lua - the tensor core against NumPy: products, broadcasting,
-- element-wise maths, reductions and views that are not contiguous, on the
-- fixtures of tools/numpy_tensor_reference.py (spec/fixtures/numpy/).
local ac = require("adcorre")

local FIX = "spec/fixtures/numpy/"
local function input(name) return ac.load_npy(FIX .. "in_" .. name .. ".npy") end
local function expected(name) return ac.load_npy(FIX .. "out_" .. name .. ".npy") end

-- max |a - b| / max |b|, shapes equal
local function rel_max(a, b)
  assert.are.same(b:shape(), a:shape())
  local scale = b:float():abs():max()
  return (a:float() - b:float()):abs():max() / (scale > 0 and scale or 1)
end

local function same_shape(a, b)
  assert.are.same(b:shape(), a:shape())
end

local function exact(a, b)
  same_shape(a, b)
  assert.are.equal(b:dtype(), a:dtype())
  assert.is_true(a:equal(b), "values differ: max |diff| " .. tostring((a:float() - b:float()):abs():max()))
end

-- element-wise within `ulps` float32 ulps of the reference
local function close_ulps(a, b, ulps)
  same_shape(a, b)
  local tol = b:abs() * (ulps * 2 ^ -23) + 1e-30
  local over = ((a - b):abs() - tol):max()
  assert.is_true(over <= 0, "beyond " .. ulps .. " ulps by " .. over)
end

describe("tensor core vs NumPy", function()
  local A, B, X, Y, P, R
  setup(function()
    A, B, X, Y, P, R = input("A"), input("B"), input("X"), input("Y"), input("P"), input("R")
  end)

  describe("products", function()
    it("matmul of 512x300 by 300x200 within 1e-4 relative", function()
      local C = ac.matmul(A, B)
      same_shape(C, expected("mm"))
      local e = rel_max(C, expected("mm"))
      assert.is_true(e <= 1e-4, "relative error " .. e)
    end)
    it("transposed views go in without copies and give the transposed product", function()
      local Ct = ac.matmul(B:t(), A:t())
      local ref = expected("mm"):t()
      same_shape(Ct, ref)
      assert.is_true(rel_max(Ct, ref) <= 1e-4)
    end)
    it("narrowed (strided) operands", function()
      local C = ac.matmul(A:narrow(2, 1, 100), B:narrow(1, 1, 100))
      same_shape(C, expected("mm_narrow"))
      assert.is_true(rel_max(C, expected("mm_narrow")) <= 1e-4)
    end)
  end)

  describe("broadcasting and element-wise maths", function()
    it("+ - * / broadcast [4,1,5] with [3,1] and [4,3,5] exactly", function()
      exact(X + Y, expected("add"))
      exact(X - Y, expected("sub"))
      exact(X * Y, expected("mul"))
      exact(X / P, expected("div"))
      exact(ac.add(X, Y), expected("add"))
    end)
    it("comparisons broadcast to uint8", function()
      exact(X:lt(Y), expected("lt"))
    end)
    it("exp, log, sqrt and pow within a few float32 ulps", function()
      close_ulps(X:exp(), expected("exp"), 4)
      close_ulps(P:log(), expected("log"), 4)
      close_ulps(P:sqrt(), expected("sqrt"), 1)
      close_ulps(P ^ 1.7, expected("pow"), 4)
    end)
  end)

  describe("reductions", function()
    it("sum over everything and along a dimension, mean", function()
      local total = R:abs():sum()
      assert.is_true(math.abs(R:sum() - expected("sum_all")[1]) <= 1e-6 * total)
      assert.is_true(rel_max(R:sum(2), expected("sum_d2")) <= 1e-6)
      assert.is_true(rel_max(R:mean(3), expected("mean_d3")) <= 1e-6)
    end)
    it("max and min with their 1-based indices, argmax", function()
      local v, i = R:max(1)
      exact(v, expected("max_d1"))
      exact(i, expected("max_d1_idx"))
      local w, j = R:min(2)
      exact(w, expected("min_d2"))
      exact(j, expected("min_d2_idx"))
      exact(R:argmax(3), expected("argmax_d3"))
    end)
    it("unbiased var and std, 2-norm along a dimension", function()
      assert.is_true(rel_max(R:var(2), expected("var_d2")) <= 1e-6)
      assert.is_true(rel_max(R:std(1), expected("std_d1")) <= 1e-6)
      assert.is_true(rel_max(R:norm(2, 3), expected("norm_d3")) <= 1e-6)
    end)
  end)

  describe("views that are not contiguous", function()
    it("permute, narrow, select and expand copy out exactly", function()
      local p = R:permute(3, 2, 1)
      assert.is_false(p:is_contiguous())
      exact(p:contiguous(), expected("permute"))
      exact(R:narrow(2, 3, 4):clone(), expected("narrow"))
      exact(R:select(3, 4):contiguous(), expected("select"))
      exact(Y:expand(3, 5):contiguous(), expected("expand"))
    end)
    it("element-wise arithmetic between strided views", function()
      local a = R:permute(3, 2, 1):narrow(1, 2, 3)  -- [3, 7, 6]
      local b = R:narrow(1, 1, 3):narrow(3, 1, 6)   -- [3, 7, 6]
      exact(a * b + 1, expected("views_mul_add"))
    end)
    it("reductions over permuted, expanded and transposed views", function()
      assert.is_true(rel_max(R:permute(3, 2, 1):sum(2), expected("permute_sum_d2")) <= 1e-6)
      assert.is_true(rel_max(Y:expand(3, 5):sum(2), expected("expand_sum_d2")) <= 1e-6)
      local v = R:transpose(2, 3):max(2)
      exact(v, expected("transpose_max_d2"))
    end)
  end)
end)
