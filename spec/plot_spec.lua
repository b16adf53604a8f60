-- spec/plot_spec.lua - the canvas primitives, colour maps, PNG output, and
-- the figures of ac.plot (confusion heat map, scatter, curves, PCA
-- embedding): files are valid PNGs of the right size, pixels where they
-- should be, and bad arguments give clear errors.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local core = require("adcorre.core")

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(fs.mkdir_p(d))
  return d
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Width and height from the PNG signature and IHDR chunk.
local function png_size(path)
  local s = slurp(path)
  assert.equal("\137PNG\r\n\26\n", s:sub(1, 8))
  assert.equal("IHDR", s:sub(13, 16))
  local w, h = string.unpack(">I4>I4", s, 17)
  return w, h
end

-- Pixel (x, y) (0-based) of a decoded [3, H, W] image as 0..255 integers.
local function px(img, x, y)
  return math.floor(img[1][y + 1][x + 1] * 255 + 0.5), math.floor(img[2][y + 1][x + 1] * 255 + 0.5),
    math.floor(img[3][y + 1][x + 1] * 255 + 0.5)
end

local function rgb(c) return (c >> 16) & 255, (c >> 8) & 255, c & 255 end

local names7 = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }

describe("plot canvas", function()
  local P = core.plot

  it("fills rectangles exactly and anti-aliases fractional edges", function()
    local cv = P.canvas(20, 10, 0xFFFFFF)
    assert.same({ 20, 10 }, { cv:size() })
    cv:rect(2, 3, 4, 2, 0x102030)
    assert.same({ 0x10, 0x20, 0x30 }, { cv:pixel(2, 3) })
    assert.same({ 0x10, 0x20, 0x30 }, { cv:pixel(5, 4) })
    assert.same({ 255, 255, 255 }, { cv:pixel(6, 4) })
    assert.same({ 255, 255, 255 }, { cv:pixel(2, 5) })
    cv:rect(10, 0, 0.5, 1, 0x000000) -- half a pixel: mid grey
    local r = cv:pixel(10, 0)
    assert.is_true(r >= 126 and r <= 129, "half coverage gives " .. r)
    cv:rect(12, 0, 1, 1, "#ff0000", 0.5)
    assert.same({ 255, 128, 128 }, { cv:pixel(12, 0) })
    cv:rect(14, 0, 1, 1, { 0, 0, 255 })
    assert.same({ 0, 0, 255 }, { cv:pixel(14, 0) })
  end)

  it("draws lines, polylines and markers where they belong", function()
    local cv = P.canvas(100, 100, 0xFFFFFF)
    cv:line(10, 50.5, 90, 50.5, 0x000000, 3)
    assert.same({ 0, 0, 0 }, { cv:pixel(50, 50) })
    assert.same({ 0, 0, 0 }, { cv:pixel(50, 49) })
    assert.same({ 255, 255, 255 }, { cv:pixel(50, 46) })
    assert.same({ 255, 255, 255 }, { cv:pixel(50, 55) })
    cv:polyline({ 10, 50, 90 }, { 10, 40, 10 }, 0xFF0000, 2)
    assert.same({ 255, 0, 0 }, { cv:pixel(50, 39) })
    cv:marker(20, 80, 6, 0x00FF00, "square")
    assert.same({ 0, 255, 0 }, { cv:pixel(20, 80) })
    assert.same({ 255, 255, 255 }, { cv:pixel(30, 80) })
    for _, shape in ipairs({ "circle", "triangle", "diamond" }) do
      cv:marker(60, 80, 6, 0x0000FF, shape)
      assert.same({ 0, 0, 255 }, { cv:pixel(60, 80) }, shape)
    end
  end)

  it("renders text inside its aligned box", function()
    local w, h = P.text_size("Happy 100%", 2)
    assert.is_true(w > 80 and w < 140, "width " .. w)
    assert.equal(14, h)
    local cv = P.canvas(200, 60, 0xFFFFFF)
    cv:text(100, 30, "Happy 100%", 2, 0x000000, "center", "middle")
    local inside, outside = 0, 0
    for y = 0, 59 do
      for x = 0, 199 do
        local r = cv:pixel(x, y)
        if r < 128 then
          if x >= 100 - w / 2 - 1 and x <= 100 + w / 2 + 1 and y >= 30 - h / 2 - 1 and y <= 30 + h / 2 + 5 then
            inside = inside + 1
          else
            outside = outside + 1
          end
        end
      end
    end
    assert.is_true(inside > 100, "dark pixels in the box: " .. inside)
    assert.equal(0, outside)
    -- rotated text occupies a tall box
    local cv2 = P.canvas(60, 200, 0xFFFFFF)
    cv2:text(30, 100, "True", 2, 0x000000, "center", "middle", true)
    local miny, maxy, minx, maxx = 1e9, -1, 1e9, -1
    for y = 0, 199 do
      for x = 0, 59 do
        if cv2:pixel(x, y) < 128 then
          miny, maxy = math.min(miny, y), math.max(maxy, y)
          minx, maxx = math.min(minx, x), math.max(maxx, x)
        end
      end
    end
    assert.is_true(maxy - miny > 2 * (maxx - minx), "rotated text is taller than wide")
  end)

  it("has colour maps from light to dark and a categorical palette", function()
    assert.equal(0xF7FBFF, P.colormap("blues", 0))
    assert.equal(0x08306B, P.colormap("blues", 1))
    assert.equal(0x08306B, P.colormap("blues", 7)) -- clamped
    assert.equal(0x440154, P.colormap("viridis", 0))
    assert.equal(0xFDE725, P.colormap("viridis", 1))
    local prev = 2
    for t = 0, 1, 0.1 do
      local l = P.luminance(P.colormap("blues", t))
      assert.is_true(l < prev)
      prev = l
    end
    assert.equal(0x1F77B4, P.palette(1))
    assert.has_error(function() P.colormap("jet", 0.5) end,
      "colormap: unknown colour map 'jet' (viridis, magma, blues, greys)")
  end)

  it("writes PNG files that decode to the same pixels", function()
    local d = tmpdir()
    local cv = P.canvas(33, 17, 0x336699)
    cv:rect(0, 0, 3, 3, 0xFF0000)
    cv:save(d .. "/c.png")
    assert.same({ 33, 17 }, { png_size(d .. "/c.png") })
    local img = ac.image.load(d .. "/c.png")
    assert.same({ 3, 17, 33 }, img:shape())
    assert.same({ 255, 0, 0 }, { px(img, 1, 1) })
    assert.same({ 0x33, 0x66, 0x99 }, { px(img, 20, 10) })
    local t = cv:to_tensor()
    assert.same({ 3, 17, 33 }, t:shape())
    assert.is_true(((t - img):abs():max()) < 1e-6)
    -- no temporary file is left behind
    local ls = io.popen("ls " .. d):read("a")
    assert.equal("c.png\n", ls)
    os.execute("rm -rf " .. d)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() P.canvas(0, 10) end, "canvas: size 0x10 out of range (1..16384)")
    local cv = P.canvas(10, 10)
    assert.has_error(function() cv:rect(0, 0, 1, 1, 0x1000000) end, "Canvas:rect: colour 0x1000000 out of range 0..0xFFFFFF")
    assert.has_error(function() cv:rect(0, 0, 1, 1, "#12345") end,
      'Canvas:rect: colour string must be "#rrggbb" or "#rgb", got "#12345"')
    assert.has_error(function() cv:rect(0, 0, 1, 1, 0, 2) end, "Canvas:rect: alpha must be in [0, 1], got 2")
    local okn, errn = pcall(cv.line, cv, 0, 0, 0 / 0, 1, 0)
    assert.is_false(okn)
    assert.truthy(errn:find("Canvas:line: x1 must be finite, got", 1, true), errn)
    assert.has_error(function() cv:polyline({ 1, 2 }, { 1 }, 0) end, "Canvas:polyline: 2 x values but 1 y values")
    assert.has_error(function() cv:marker(1, 1, 2, 0, "star") end,
      "Canvas:marker: unknown marker 'star' (circle, square, triangle, diamond)")
    assert.has_error(function() cv:text(1, 1, "x", 1, 0, "middle") end,
      "Canvas:text: horizontal alignment must be left, center or right, got 'middle'")
    assert.has_error(function() cv:pixel(10, 0) end, "Canvas:pixel: (10, 0) outside the 10x10 canvas")
    local ok, err = pcall(cv.save, cv, "/nonexistent-dir/x.png")
    assert.is_false(ok)
    assert.truthy(err:find("Canvas:save: cannot write /nonexistent-dir/x.png", 1, true), err)
  end)
end)

describe("plot.confusion", function()
  local M = {
    { 820, 20, 60, 10, 30, 20, 40 },
    { 0, 1000, 0, 0, 0, 0, 0 },
    { 120, 15, 640, 10, 90, 40, 85 },
    { 10, 30, 15, 870, 60, 5, 10 },
    { 60, 10, 110, 150, 560, 40, 70 },
    { 40, 20, 60, 5, 30, 700, 145 },
    { 0, 0, 0, 0, 0, 0, 0 }, -- a class never seen: an all-zero row
  }

  it("writes a 640x560 heat map whose cells have the colour of their value", function()
    local d = tmpdir()
    local path, lay = ac.plot.confusion(d .. "/cm.png", ac.tensor(M, "int64"), names7, { title = "Test set" })
    assert.equal(d .. "/cm.png", path)
    assert.same({ 640, 560 }, { png_size(path) })
    local img = ac.image.load(path)
    assert.equal(7, lay.n)
    assert.is_true(lay.cell >= 50, "cells are at least 50 px: " .. lay.cell)
    local function corner(i, j) -- a pixel inside cell (i, j) away from its text
      return px(img, lay.x + (j - 1) * lay.cell + 3, lay.y + (i - 1) * lay.cell + 3)
    end
    -- 100 % is the darkest colour of the map, 0 % the lightest
    assert.same({ rgb(0x08306B) }, { corner(2, 2) })
    assert.same({ rgb(0xF7FBFF) }, { corner(2, 1) })
    assert.same({ rgb(0xF7FBFF) }, { corner(7, 7) })
    assert.same({ rgb(core.plot.colormap("blues", 0.82)) }, { corner(1, 1) })
    -- text colour follows the cell: white pixels on the dark cell, dark ones on a light cell
    local function count(i, j, pred)
      local n = 0
      for y = lay.y + (i - 1) * lay.cell + 5, lay.y + i * lay.cell - 5 do
        for x = lay.x + (j - 1) * lay.cell + 5, lay.x + j * lay.cell - 5 do
          if pred(px(img, x, y)) then n = n + 1 end
        end
      end
      return n
    end
    assert.is_true(count(2, 2, function(r, g, b) return r > 230 and g > 230 and b > 230 end) > 30)
    assert.is_true(count(2, 1, function(r) return r < 80 end) > 30)
    -- the same picture from the row-normalised matrix of ac.metrics
    local m = ac.metrics.Confusion(7)
    local pred, target = {}, {}
    for i = 1, 7 do
      for j = 1, 7 do
        for _ = 1, M[i][j] do pred[#pred + 1] = j; target[#target + 1] = i end
      end
    end
    m:add(pred, target)
    local p2 = ac.plot.confusion(d .. "/cm2.png", m:normalized_table(), names7, { title = "Test set" })
    assert.is_true(slurp(path) == slurp(p2), "same picture from the normalised matrix")
    -- and from the float32 tensor: the same picture up to rounding of the colours
    local p3 = ac.plot.confusion(d .. "/cm3.png", m:normalized(), names7, { title = "Test set" })
    local diff = (ac.image.load(p3) - img):abs():max()
    assert.is_true(diff <= 1.5 / 255, "float32 matrix differs by " .. diff)
    os.execute("rm -rf " .. d)
  end)

  it("shows raw counts with normalize = false and fits other sizes", function()
    local d = tmpdir()
    local _, lay = ac.plot.confusion(d .. "/c.png", { { 5, 1 }, { 2, 9 } }, { "yes", "no" },
      { normalize = false, width = 400, height = 360 })
    assert.same({ 400, 360 }, { png_size(d .. "/c.png") })
    local img = ac.image.load(d .. "/c.png")
    local r, g, b = px(img, lay.x + lay.cell + 3, lay.y + lay.cell + 3)
    assert.same({ rgb(0x08306B) }, { r, g, b }) -- 9 is the maximum
    os.execute("rm -rf " .. d)
  end)

  it("rejects bad arguments", function()
    local f = ac.plot.confusion
    assert.has_error(function() f("/tmp/x.png", ac.zeros(2, 3), { "a", "b" }) end,
      "plot.confusion: M must be a square matrix [C, C], got shape [2, 3]")
    assert.has_error(function() f("/tmp/x.png", { { 1, 2 }, { 3 } }, { "a", "b" }) end,
      "plot.confusion: M must be square: row 2 has 1 entries, expected 2")
    assert.has_error(function() f("/tmp/x.png", { { 1, -2 }, { 3, 4 } }, { "a", "b" }) end,
      "plot.confusion: M[1][2] must be a finite number >= 0, got -2")
    assert.has_error(function() f("/tmp/x.png", { { 1, 2 }, { 3, 4 } }, { "a" }) end,
      "plot.confusion: 1 class names for 2 classes")
    assert.has_error(function() f(nil, { { 1 } }, { "a" }) end,
      "plot.confusion: path must be a non-empty string, got nil")
    assert.has_error(function() f("/tmp/x.png", { { 1 } }, { "a" }, { width = 10 }) end,
      "plot.confusion: width and height must be integers in 160..8192 x 120..8192, got 10 x 560")
    local ok, err = pcall(f, "/nonexistent-dir/cm.png", { { 1 } }, { "a" })
    assert.is_false(ok)
    assert.truthy(err:find("plot.confusion: cannot write /nonexistent-dir/cm.png", 1, true), err)
  end)
end)

describe("plot.scatter and plot.curves", function()
  it("scatter draws each class in its palette colour with a legend", function()
    local d = tmpdir()
    local XY, labels = {}, {}
    for i = 1, 60 do
      local c = (i - 1) % 3 + 1
      XY[i] = { c * 10 + math.sin(i), c * 5 + math.cos(i) }
      labels[i] = c
    end
    local path, box = ac.plot.scatter(d .. "/s.png", XY, labels, { "a", "b", "c" }, { title = "S" })
    assert.same({ 640, 520 }, { png_size(path) })
    local img = ac.image.load(path)
    -- the marker of point 1 (class 1) is centred on its mapped position
    local x = box.x + (XY[1][1] - box.xlo) / (box.xhi - box.xlo) * box.w
    local y = box.y + box.h - (XY[1][2] - box.ylo) / (box.yhi - box.ylo) * box.h
    local r, g, b = px(img, math.floor(x), math.floor(y))
    local pr, pg, pb = rgb(core.plot.palette(1))
    assert.is_true(math.abs(r - pr) + math.abs(g - pg) + math.abs(b - pb) < 120,
      ("pixel %d %d %d near palette 1"):format(r, g, b))
    -- tensors work too
    ac.plot.scatter(d .. "/s2.png", ac.tensor(XY), ac.tensor(labels, "int64"), { "a", "b", "c" })
    assert.same({ 640, 520 }, { png_size(d .. "/s2.png") })
    os.execute("rm -rf " .. d)
  end)

  it("scatter rejects bad arguments", function()
    local s = ac.plot.scatter
    assert.has_error(function() s("/tmp/x.png", ac.zeros(4, 3), { 1, 1, 1, 1 }, { "a" }) end,
      "plot.scatter: XY must be [N, 2], got shape [4, 3]")
    assert.has_error(function() s("/tmp/x.png", ac.zeros(4, 2), { 1, 1, 1 }, { "a" }) end,
      "plot.scatter: 4 points but 3 labels")
    assert.has_error(function() s("/tmp/x.png", ac.zeros(2, 2), { 1, 3 }, { "a", "b" }) end,
      "plot.scatter: labels[2] = 3 is out of range 1..2")
    assert.has_error(function() s("/tmp/x.png", ac.zeros(2, 2), { 1, 0 }, { "a", "b" }) end,
      "plot.scatter: labels[2] = 0 is out of range 1..2")
    assert.has_error(function() s("/tmp/x.png", { { 0, 0 / 0 } }, { 1 }, { "a" }) end)
  end)

  it("curves draw every series with a legend placed off the data", function()
    local d = tmpdir()
    local x, y1, y2 = {}, {}, {}
    for e = 1, 20 do x[e] = e; y1[e] = 2 * math.exp(-e / 5); y2[e] = 2.2 * math.exp(-e / 7) end
    local path, box = ac.plot.curves(d .. "/c.png", { title = "loss", xlabel = "epoch", ylabel = "loss",
      series = { { name = "train", x = x, y = y1 }, { name = "test", x = ac.tensor(x), y = ac.tensor(y2) } } })
    assert.same({ 640, 420 }, { png_size(path) })
    -- decreasing curves leave the top-right corner free
    assert.is_true(box.legend.x > box.x + box.w / 2 and box.legend.y < box.y + box.h / 2)
    local img = ac.image.load(path)
    -- a point of series 1 is drawn in palette colour 1
    local px_, py_ = box.x + (x[10] - box.xlo) / (box.xhi - box.xlo) * box.w,
        box.y + box.h - (y1[10] - box.ylo) / (box.yhi - box.ylo) * box.h
    local r, g, b = px(img, math.floor(px_), math.floor(py_))
    local pr, pg, pb = rgb(core.plot.palette(1))
    assert.is_true(math.abs(r - pr) + math.abs(g - pg) + math.abs(b - pb) < 90)
    assert.has_error(function() ac.plot.curves(d .. "/c.png", { series = {} }) end,
      "plot.curves: spec.series must be a non-empty array of {name=, x=, y=}")
    assert.has_error(function() ac.plot.curves(d .. "/c.png", { series = { { x = { 1, 2 }, y = { 1 } } } }) end,
      "plot.curves: series 1 has 2 x values and 1 y values")
    assert.has_error(function() ac.plot.curves(d .. "/c.png", { series = { { y = { 1, "a" } } } }) end,
      "plot.curves: series 1 y[2] is not a number (string)")
    os.execute("rm -rf " .. d)
  end)

  it("ticks are round numbers covering the range", function()
    local t = ac.plot.ticks(0.13, 0.87, 5)
    assert.same({ 0.2, 0.4, 0.6, 0.8 }, t)
    local t2, f2 = ac.plot.ticks(0, 100, 5)
    assert.same({ 0, 20, 40, 60, 80, 100 }, t2)
    assert.equal("%.0f", f2)
    -- whole steps for whole-number data (epochs)
    local t3, f3 = ac.plot.ticks(0.9, 3.1, 6, true)
    assert.same({ 1, 2, 3 }, t3)
    assert.equal("%.0f", f3)
  end)
end)

describe("plot.pca and plot.embedding", function()
  it("pca finds the axes of largest variance, through the covariance or the Gram matrix", function()
    ac.manual_seed(7)
    local N = 200
    local X = ac.zeros(N, 3)
    local z = ac.randn(N, 3)
    for i = 1, N do
      local a, b, c = z[i][1] * 5, z[i][2] * 2, z[i][3] * 0.1
      -- principal axes (1,1,0)/sqrt2 (sd 5), (0,0,1) (sd 2), (1,-1,0)/sqrt2 (sd 0.1)
      X[i][1] = (a + c) / math.sqrt(2) + 3
      X[i][2] = (a - c) / math.sqrt(2) - 1
      X[i][3] = b
    end
    local Y, var = ac.plot.pca(X, 2)
    assert.same({ N, 2 }, Y:shape())
    assert.is_true(var[1] > var[2])
    -- Y[:,1] agrees with the projection on (1,1,0)/sqrt2 up to sign
    local Xc = X - X:mean(1):view(1, 3)
    local proj = (Xc:select(2, 1) + Xc:select(2, 2)) / math.sqrt(2)
    local e1 = math.min(((Y:select(2, 1) - proj):abs():max()), ((Y:select(2, 1) + proj):abs():max()))
    assert.is_true(e1 < 0.2, "first axis error " .. e1)
    -- N < D: the Gram path gives the same projections as the covariance path on X^T-sized data
    local A = ac.randn(6, 10)
    local Yg = ac.plot.pca(A, 3)           -- 6 < 10: Gram matrix
    local Ac = A - A:mean(1):view(1, 10)
    local U, S = ac.linalg.svd(Ac)
    for j = 1, 3 do
      local ref = U:select(2, j) * S[j]
      local col = Yg:select(2, j)
      local err = math.min(((col - ref):abs():max()), ((col + ref):abs():max()))
      assert.is_true(err < 1e-3, "component " .. j .. " error " .. err)
    end
    assert.has_error(function() ac.plot.pca(A, 7) end,
      "plot.pca: k must be an integer in 1..6 for X of shape [6, 10], got 7")
    assert.has_error(function() ac.plot.pca(ac.zeros(5)) end, "plot.pca: X must be 2-d [N, D], got shape [5]")
  end)

  it("embedding projects and draws, and checks its labels first", function()
    local d = tmpdir()
    ac.manual_seed(3)
    local X = ac.randn(90, 8)
    local labels = {}
    for i = 1, 90 do
      labels[i] = (i - 1) % 3 + 1
      X[i][labels[i]] = X[i][labels[i]] + 6
    end
    local path, Y = ac.plot.embedding(d .. "/e.png", X, labels, { "a", "b", "c" })
    assert.same({ 640, 520 }, { png_size(path) })
    assert.same({ 90, 2 }, Y:shape())
    local _, Y2 = ac.plot.embedding(d .. "/t.png", X, labels, { "a", "b", "c" },
      { method = "tsne", seed = 1, iterations = 300 })
    assert.same({ 90, 2 }, Y2:shape())
    assert.has_error(function() ac.plot.embedding(d .. "/e.png", X, labels, { "a", "b" }) end,
      "plot.embedding: labels[3] = 3 is out of range 1..2")
    assert.has_error(function() ac.plot.embedding(d .. "/e.png", X, labels, { "a", "b", "c" }, { method = "umap" }) end,
      'plot.embedding: method must be "pca" or "tsne", got umap')
    os.execute("rm -rf " .. d)
  end)
end)
