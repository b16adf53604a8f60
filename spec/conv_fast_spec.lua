-- The fast convolution kernels (csrc/cpu/conv_*.c) and the GEMM (csrc/cpu/gemm*.c) against the naive
-- reference kernels of nn_conv.c: forward, input gradient and accumulated
-- parameter gradient, on the CPU's best path, the AVX2 path (dispatch capped
-- at AVX2) and the portable path, for shapes that cross every edge case of
-- the vector code (widths around the 16-lane and 8-lane vectors, more than 256 output positions per
-- sample = several im2col strips, more than 256 input channels = several K
-- blocks of the GEMM, strides, asymmetric "same" padding, one-pixel planes).
local ac = require("adcorre")
local core = require("adcorre.core")

local TOL = 1e-4

local function rel(a, b)
  local d, s = (a - b):abs():max(), b:abs():max()
  if type(d) ~= "number" then d = d:item() end
  if type(s) ~= "number" then s = s:item() end
  return s > 0 and d / s or d
end

-- geometry {sh, sw, pt, pl, pb, pr, groups}
local function compare(xs, ws, geo, bias)
  local x = ac.randn(table.unpack(xs))
  local w = ac.randn(table.unpack(ws))
  local b = bias and ac.randn(ws[1]) or nil
  local OH, OW = core.nn.conv2d_info(xs, ws, geo)
  local y_ref = ac.zeros(xs[1], ws[1], OH, OW)
  core.nn.conv2d_forward(x, w, b, y_ref, nil, geo, "ref")
  local y = core.convfast.forward(x, w, b, geo)
  assert.is_true(rel(y, y_ref) <= TOL, "forward rel " .. rel(y, y_ref))

  local gy = ac.randn(xs[1], ws[1], OH, OW)
  local gx_ref = ac.zeros(table.unpack(xs))
  core.nn.conv2d_backward_input(x, gy, w, gx_ref, nil, geo, "ref")
  local gx = core.convfast.backward_input(x, gy, w, geo)
  assert.is_true(rel(gx, gx_ref) <= TOL, "backward input rel " .. rel(gx, gx_ref))

  -- accumulation with a scale onto non-zero gradients
  local gw0 = ac.randn(table.unpack(ws))
  local gb0 = bias and ac.randn(ws[1]) or nil
  local gw_ref, gw = gw0:clone(), gw0:clone()
  local gb_ref, gb = gb0 and gb0:clone(), gb0 and gb0:clone()
  core.nn.conv2d_backward_params(x, gy, gw_ref, gb_ref, nil, geo, 0.5, "ref")
  core.convfast.backward_params(x, gy, gw, gb, geo, 0.5)
  assert.is_true(rel(gw - gw0, gw_ref - gw0) <= TOL, "gradWeight rel " .. rel(gw - gw0, gw_ref - gw0))
  if bias then
    assert.is_true(rel(gb - gb0, gb_ref - gb0) <= TOL, "gradBias rel " .. rel(gb - gb0, gb_ref - gb0))
  end
end

local cases = {
  {"depthwise 3x3 same, 17x17 (one full vector + one lane)", {3, 5, 17, 17}, {5, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 5}, false},
  {"depthwise 3x3 same, 33x20 with bias", {2, 4, 33, 20}, {4, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 4}, true},
  {"depthwise 3x3 same, 1x1 planes", {2, 3, 1, 1}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, false},
  {"depthwise 3x3 same, 2x16 and 6x6", {2, 3, 2, 16}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, false},
  {"depthwise 3x3 same, 6x6", {4, 8, 6, 6}, {8, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 8}, false},
  {"depthwise 3x3 same, 7x1 and 1x9 planes (flat kernel: one column, one row)", {2, 3, 7, 1}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, false},
  {"depthwise 3x3 same, 1x9 plane", {2, 3, 1, 9}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, true},
  {"depthwise 3x3 same, 5x31 (widest flat plane)", {2, 3, 5, 31}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, false},
  {"depthwise 3x3 same, 4x40 (row kernel)", {2, 3, 4, 40}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, true},
  {"depthwise 3x3 same, 3x15 (widest AVX2 flat plane)", {2, 3, 3, 15}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, false},
  {"depthwise 3x3 same, 5x8 and 4x9 planes", {2, 3, 5, 8}, {3, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 3}, true},
  {"depthwise 3x3 same, 4x9 plane", {3, 2, 4, 9}, {2, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 2}, false},
  {"pointwise 1x1, 5x9 (45 positions)", {2, 7, 5, 9}, {13, 7, 1, 1}, {1, 1, 0, 0, 0, 0, 1}, true},
  {"pointwise 1x1, 23x23 (3 strips)", {2, 16, 23, 23}, {40, 16, 1, 1}, {1, 1, 0, 0, 0, 0, 1}, false},
  {"pointwise 1x1, 300 channels (2 K blocks)", {2, 300, 4, 5}, {9, 300, 1, 1}, {1, 1, 0, 0, 0, 0, 1}, false},
  {"pointwise 1x1, 270 outputs, 3 samples, 19x17 (weight gradient: two row blocks, two sample groups, ragged chunks)", {3, 40, 19, 17}, {270, 40, 1, 1}, {1, 1, 0, 0, 0, 0, 1}, true},
  {"pointwise 1x1, 520 -> 300, one sample (weight gradient: three column panels, four row blocks)", {1, 520, 5, 7}, {300, 520, 1, 1}, {1, 1, 0, 0, 0, 0, 1}, false},
  {"pointwise 1x1 stride 2 (shortcut)", {3, 6, 11, 11}, {10, 6, 1, 1}, {2, 2, 0, 0, 0, 0, 1}, false},
  {"3x3 valid, 1 -> 8 channels", {2, 1, 12, 12}, {8, 1, 3, 3}, {1, 1, 0, 0, 0, 0, 1}, false},
  {"3x3 stride 2 valid, 3 -> 10 channels, 19x19 (more than one strip)", {2, 3, 37, 37}, {10, 3, 3, 3}, {2, 2, 0, 0, 0, 0, 1}, true},
  {"3x3 same with the odd cell after (Keras), 8 -> 8, 10x10", {2, 8, 10, 10}, {8, 8, 3, 3}, {2, 2, 0, 0, 1, 1, 1}, false},
  {"3x3 valid, 8 -> 16 channels, 21x19 (direct small-conv kernel, ragged rows)", {3, 8, 21, 19}, {16, 8, 3, 3}, {1, 1, 0, 0, 0, 0, 1}, true},
  {"3x3 valid, 8 -> 8 channels, 6x7 (direct small-conv kernel, rows narrower than 8)", {2, 8, 6, 7}, {8, 8, 3, 3}, {1, 1, 0, 0, 0, 0, 1}, true},
  {"3x3 valid, 16 -> 32 channels, 5x10 (direct small-conv kernel, 8-column rows)", {2, 16, 5, 10}, {32, 16, 3, 3}, {1, 1, 0, 0, 0, 0, 1}, false},
  {"5x3 valid, 3 -> 24 channels (direct small-conv kernel, three row blocks)", {2, 3, 9, 36}, {24, 3, 5, 3}, {1, 1, 0, 0, 0, 0, 1}, false},
  {"5x3 kernel, padding 2,1", {1, 4, 9, 7}, {6, 4, 5, 3}, {1, 1, 2, 1, 2, 1, 1}, false},
}

-- the depthwise backward in one pass (input gradient overwritten, weight and
-- bias gradients accumulated) against the reference kernels
local function compare_fused(xs, geo, bias)
  local C = xs[2]
  local ws = {C, 1, 3, 3}
  local x, w, gy = ac.randn(table.unpack(xs)), ac.randn(table.unpack(ws)), ac.randn(table.unpack(xs))
  local gx_ref = ac.zeros(table.unpack(xs))
  core.nn.conv2d_backward_input(x, gy, w, gx_ref, nil, geo, "ref")
  local gw0, gb0 = ac.randn(table.unpack(ws)), bias and ac.randn(C) or nil
  local gw_ref, gb_ref = gw0:clone(), gb0 and gb0:clone()
  core.nn.conv2d_backward_params(x, gy, gw_ref, gb_ref, nil, geo, 0.5, "ref")
  local gx, gw, gb = ac.randn(table.unpack(xs)), gw0:clone(), gb0 and gb0:clone()
  assert.is_true(core.convfast.backward_fused(x, gy, w, gx, gw, gb, geo, 0.5))
  assert.is_true(rel(gx, gx_ref) <= TOL, "fused input gradient rel " .. rel(gx, gx_ref))
  assert.is_true(rel(gw - gw0, gw_ref - gw0) <= TOL, "fused gradWeight rel " .. rel(gw - gw0, gw_ref - gw0))
  if bias then assert.is_true(rel(gb - gb0, gb_ref - gb0) <= TOL) end
end

-- "dispatch": the CPU's best; "avx2" and "generic" capped by adcorre.testing
-- (an "avx2" cap on a CPU without AVX2 runs the portable path again)
for _, path in ipairs({"dispatch", "avx2", "generic"}) do
  describe("conv_fast (" .. path .. " path) against the reference kernels", function()
    setup(function() require("adcorre.testing").isa_limit(path ~= "dispatch" and path or nil) end)
    teardown(function() require("adcorre.testing").isa_limit(nil) end)
    before_each(function() ac.manual_seed(7) end)
    for _, c in ipairs(cases) do
      it(c[1], function() compare(c[2], c[3], c[4], c[5]) end)
    end
    it("depthwise backward in one pass: 19x19, 3x44 with bias, 1x1, 6x21, 5x11", function()
      compare_fused({3, 5, 19, 19}, {1, 1, 1, 1, 1, 1, 5}, false)
      compare_fused({2, 4, 3, 44}, {1, 1, 1, 1, 1, 1, 4}, true)
      compare_fused({2, 3, 1, 1}, {1, 1, 1, 1, 1, 1, 3}, false)
      compare_fused({2, 3, 6, 21}, {1, 1, 1, 1, 1, 1, 3}, true)
      compare_fused({2, 3, 5, 11}, {1, 1, 1, 1, 1, 1, 3}, false)
    end)
    it("GEMM with K blocks, ragged M and N, alpha and beta", function()
      local A, B = ac.randn(19, 300), ac.randn(300, 70)
      local C0 = ac.randn(19, 70)
      local C = C0:clone()
      core.convfast.gemm(A, B, C, 0.5, 1)
      local ref = ac.matmul(A, B) * 0.5 + C0
      assert.is_true(rel(C, ref) <= 1e-5)
      core.convfast.gemm(A, B, C, 1.0, 0)
      assert.is_true(rel(C, ac.matmul(A, B)) <= 1e-5)
    end)
    -- every form, serial and on the pool: ragged M (one- and 16-row blocks),
    -- ragged N (a last strip of 1..16 columns runs one vector wide, 17..31
    -- two), K over one block
    for _, form in ipairs({"nn", "tn", "nt", "par-nn", "par-tn", "par-nt", "blas"}) do
      it("GEMM " .. form .. " with ragged shapes", function()
        -- (few rows and many columns: the pool splits the columns; at most 4 rows: dot products for nt)
        for _, s in ipairs({{1, 1, 1}, {19, 70, 300}, {33, 17, 5}, {8, 48, 257}, {40, 100, 64}, {3, 31, 16},
                            {2, 300, 40}, {5, 200, 33}, {1, 2048, 70},
                            -- one row (nt: 16 rows of B per block, a ragged last block)
                            {1, 7, 2560}, {1, 256, 128}, {1, 23, 17}, {1, 16, 16}, {1, 33, 5}}) do
          local M, N, K = s[1], s[2], s[3]
          local tr = form:sub(-2)
          local A = tr == "tn" and ac.randn(K, M) or ac.randn(M, K)
          local B = tr == "nt" and ac.randn(N, K) or ac.randn(K, N)
          local An = tr == "tn" and A:t():contiguous() or A
          local Bn = tr == "nt" and B:t():contiguous() or B
          local C0 = ac.randn(M, N)
          local C = C0:clone()
          core.convfast.gemm(A, B, C, 0.5, 1, form)
          assert.is_true(rel(C, ac.matmul(An, Bn) * 0.5 + C0) <= 1e-5, form .. " " .. table.concat(s, "x"))
          core.convfast.gemm(A, B, C, 1.0, 0, form)
          assert.is_true(rel(C, ac.matmul(An, Bn)) <= 1e-5, form .. " " .. table.concat(s, "x"))
        end
      end)
    end
  end)
end

describe("conv_fast dispatch", function()
  it("reports its code path", function()
    local isa = core.convfast.isa()
    assert.is_true(isa == "avx512" or isa == "avx2" or isa == "generic")
  end)
  it("declines configurations it does not handle", function()
    -- grouped (not depthwise), depthwise with stride 2, depthwise 5x5
    assert.is_false(core.convfast.supports({1, 4, 8, 8}, {4, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 2}))
    assert.is_false(core.convfast.supports({1, 4, 8, 8}, {4, 1, 3, 3}, {2, 2, 1, 1, 1, 1, 4}))
    assert.is_false(core.convfast.supports({1, 4, 8, 8}, {4, 1, 5, 5}, {1, 1, 2, 2, 2, 2, 4}))
    assert.is_true(core.convfast.supports({1, 4, 8, 8}, {4, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 4}))
    assert.has_error(function()
      core.convfast.forward(ac.randn(1, 4, 8, 8), ac.randn(4, 2, 3, 3), nil, {1, 1, 1, 1, 1, 1, 2})
    end, "convfast_forward: this convolution is not handled by the fast kernels")
  end)
  it("runs the one-pass depthwise backward only where it applies", function()
    local x, w = ac.randn(2, 4, 9, 9), ac.randn(4, 1, 3, 3)
    local gx, gw = ac.zeros(2, 4, 9, 9), ac.zeros(4, 1, 3, 3)
    -- stride 2: another kernel; nothing is written
    assert.is_false(core.convfast.backward_fused(x, ac.randn(2, 4, 5, 5), w, gx, gw, nil, {2, 2, 1, 1, 1, 1, 4}, 1))
    assert.are.equal(0, gw:abs():max())
    -- the fast kernels switched off: nn_conv.c's paths
    require("adcorre.testing").convfast_enable(false)
    local ok, ran = pcall(core.convfast.backward_fused, x, ac.randn(2, 4, 9, 9), w, gx, gw, nil, {1, 1, 1, 1, 1, 1, 4}, 1)
    require("adcorre.testing").convfast_enable(true)
    assert.is_true(ok)
    assert.is_false(ran)
    assert.is_true(core.convfast.backward_fused(x, ac.randn(2, 4, 9, 9), w, gx, gw, nil, {1, 1, 1, 1, 1, 1, 4}, 1))
  end)
  it("gives the same results on 1 and 2 threads", function()
    ac.manual_seed(3)
    local x, gy = ac.randn(4, 16, 9, 9), ac.randn(4, 24, 9, 9)
    local geo = {1, 1, 0, 0, 0, 0, 1}
    local out = {}
    local n0 = ac.get_num_threads()
    for _, n in ipairs({1, 2}) do
      ac.set_num_threads(n)
      local gw = ac.zeros(24, 16, 1, 1)
      core.convfast.backward_params(x, gy, gw, nil, geo, 1.0)
      out[n] = gw
    end
    ac.set_num_threads(n0)
    assert.is_true(rel(out[1], out[2]) <= 1e-6)
  end)
end)

describe("pool_fast: 3x3 stride-2 max pooling against nn_pool.c's loops", function()
  -- geometry {kh, kw, sh, sw, pt, pl, pb, pr}
  -- isa: "generic", "avx2" or nil (the CPU's best; planes at most 8 outputs
  -- wide take the AVX2 kernel there too)
  local function run(x, geo, isa, values_only)
    require("adcorre.testing").isa_limit(isa)
    local OH, OW = core.nn.pool2d_info(x:shape(), geo)
    local s = x:shape()
    local y, idx = ac.zeros(s[1], s[2], OH, OW), ac.zeros({s[1], s[2], OH, OW}, "int64")
    local ok, err = pcall(core.nn.maxpool2d_forward, x, y, not values_only and idx or nil, geo)
    require("adcorre.testing").isa_limit(nil)
    assert(ok, err)
    return y, idx
  end
  local function same(a, b)
    local ta, tb = a:view(a:numel()):totable(), b:view(b:numel()):totable()
    for i = 1, #ta do
      if not (ta[i] == tb[i] or (ta[i] ~= ta[i] and tb[i] ~= tb[i])) then return false, i end
    end
    return true
  end
  for _, c in ipairs({
    {"44x44, Keras same (odd cell after)", {2, 3, 44, 44}, {3, 3, 2, 2, 0, 0, 1, 1}},
    {"11x11, same (one each side)", {2, 4, 11, 11}, {3, 3, 2, 2, 1, 1, 1, 1}},
    {"109x109 (several vectors per row)", {1, 2, 109, 109}, {3, 3, 2, 2, 1, 1, 1, 1}},
    {"6x40 valid", {3, 2, 6, 40}, {3, 3, 2, 2, 0, 0, 0, 0}},
    {"3x3 input, padding 2 on the left", {1, 1, 3, 3}, {3, 3, 2, 2, 2, 2, 0, 0}},
    {"6x6, Keras same (3x3 outputs)", {3, 5, 6, 6}, {3, 3, 2, 2, 0, 0, 1, 1}},
    {"13x9, padding 2 on the left (5 wide)", {2, 3, 13, 9}, {3, 3, 2, 2, 2, 2, 1, 1}},
    {"9x17 valid (8 wide)", {2, 2, 9, 17}, {3, 3, 2, 2, 0, 0, 0, 0}},
    {"7x37 same (18 wide: vectors of 8, 8 and 2)", {2, 2, 7, 37}, {3, 3, 2, 2, 1, 1, 1, 1}},
  }) do
    it(c[1] .. ": same values and argmax indices, with ties and NaN", function()
      ac.manual_seed(4)
      local x = ac.randn(table.unpack(c[2]))
      -- many ties (clamped to +-1) and a few NaN (log of a negative: x < -2.5)
      x = (x * 2):clamp(-1, 1) + (x + 2.5):log() * 0
      local y2, i2 = run(x, c[3], "generic")
      for _, isa in ipairs({"dispatch", "avx2"}) do
        local y1, i1 = run(x, c[3], isa ~= "dispatch" and isa or nil)
        assert.is_true((same(y1, y2)), isa .. " values")
        assert.is_true((same(i1, i2)), isa .. " indices")
        -- no indices wanted (evaluation): the same values, nothing allocated
        assert.is_true((same(y2, (run(x, c[3], isa ~= "dispatch" and isa or nil, true)))), isa .. " values only")
      end
      assert.is_true((same(y2, (run(x, c[3], "generic", true)))))
    end)
  end
end)
