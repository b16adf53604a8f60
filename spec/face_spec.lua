-- spec/face_spec.lua - ac.face: the cascade XML reader, the integral images
-- against their definitions, detection on real photographs, the agreement
-- with OpenCV's detectMultiScale (tools/face_opencv_compare.py, when
-- python3-opencv is there) and the errors of bad cascades and arguments.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local core = require("adcorre.core")
local face = ac.face

local SK = "/usr/lib/python3/dist-packages/skimage/data/"
local CV = "/usr/share/opencv4/"

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function tmp(name)
  local d = os.tmpname()
  os.remove(d)
  assert(fs.mkdir_p(d))
  return d .. "/" .. name
end

describe("face cascade XML", function()
  if not exists(CV .. "haarcascades/haarcascade_frontalface_default.xml") then
    pending("opencv-data is not installed (no " .. CV .. ")")
    return
  end

  it("reads every new-format cascade of opencv-data", function()
    local n = 0
    for _, dir in ipairs({ "haarcascades", "lbpcascades" }) do
      local p = io.popen("ls " .. CV .. dir .. "/*.xml")
      for path in p:lines() do
        local f = io.open(path, "rb")
        local text = f:read("a")
        f:close()
        if text:find('type_id="opencv-haar-classifier"', 1, true) then
          assert.has_error(function() face.cascade(path) end)
          local ok, err = pcall(face.cascade, path)
          assert.is_false(ok)
          assert.matches("old %(OpenCV 1%.x%) Haar format", err)
        else
          local info = face.info(path)
          assert.is_true(info.width >= 10 and info.height >= 10)
          n = n + 1
        end
      end
      p:close()
    end
    assert.is_true(n >= 15)
  end)

  it("knows the cascades by name", function()
    local d = face.info("frontalface_default")
    assert.same({ type = "haar", width = 24, height = 24, stages = 25, tilted = false }, d)
    assert.same("lbp", face.info("lbp_frontalface_improved").type)
    assert.is_true(face.info("upperbody").tilted)
    assert.same(20, face.info("frontalface_alt2").width)
  end)

  it("refuses what is not a cascade, naming the file and the problem", function()
    local p = tmp("bad.xml")
    write(p, "<?xml version=\"1.0\"?><opencv_storage><x>1</x></opencv_storage>")
    local ok, err = pcall(face.cascade, p)
    assert.is_false(ok)
    assert.matches("bad%.xml", err)
    assert.matches("no <cascade> element", err)
    -- a real cascade cut in the middle of its stages
    local f = io.open(CV .. "haarcascades/haarcascade_frontalface_default.xml", "rb")
    local text = f:read("a")
    f:close()
    write(p, text:sub(1, #text // 2))
    ok, err = pcall(face.cascade, p)
    assert.is_false(ok)
    assert.matches("face cascade", err)
    -- a node pointing at a feature that does not exist
    local broken = text:gsub("<internalNodes>%s*0 %-1 0 ", "<internalNodes>0 -1 99999 ", 1)
    write(p, broken)
    ok, err = pcall(face.cascade, p)
    assert.is_false(ok)
    assert.matches("feature 99999", err)
    ok, err = pcall(face.cascade, "no_such_cascade")
    assert.is_false(ok)
    assert.matches("opencv%-data", err)
    ok, err = pcall(face.cascade, "/nonexistent/x.xml")
    assert.is_false(ok)
    assert.matches("does not exist", err)
  end)
end)

describe("face integral images", function()
  it("equal their definitions, tilted included", function()
    ac.manual_seed(3)
    local h, w = 13, 17
    local img = (ac.rand(h, w) * 255):floor()
    local u8 = core.face.grey(img / 255)
    local px = u8:totable()
    local sum, sq, tilted = core.face.integral(u8)
    sum, sq, tilted = sum:totable(), sq:totable(), tilted:totable()
    for Y = 0, h do
      for X = 0, w do
        local s, q, t = 0, 0, 0
        for y = 0, h - 1 do
          for x = 0, w - 1 do
            local v = px[y + 1][x + 1]
            if y < Y and x < X then s, q = s + v, q + v * v end
            if y < Y and math.abs(x - X + 1) <= Y - y - 1 then t = t + v end
          end
        end
        assert.same(s, sum[Y + 1][X + 1])
        assert.same(q, sq[Y + 1][X + 1])
        assert.same(t, tilted[Y + 1][X + 1])
      end
    end
  end)

  it("resize keeps an image of the same size and averages a 2x shrink", function()
    local u8 = core.face.grey(ac.rand(8, 6))
    assert.same(u8:totable(), core.face.resize(u8, 8, 6):totable())
    local small = core.face.resize(u8, 4, 3):totable()
    local big = u8:totable()
    for y = 1, 4 do
      for x = 1, 3 do
        local m = (big[2 * y - 1][2 * x - 1] + big[2 * y - 1][2 * x] + big[2 * y][2 * x - 1] + big[2 * y][2 * x]) / 4
        assert.is_true(math.abs(small[y][x] - m) <= 1, ("%d %d: %g vs %g"):format(y, x, small[y][x], m))
      end
    end
  end)
end)

describe("face.detect", function()
  if not exists(SK .. "astronaut.png") or not exists(CV) then
    pending("python3-skimage's astronaut.png or opencv-data is missing")
    return
  end
  local astro = ac.image.load(SK .. "astronaut.png")

  it("finds the astronaut's face, grey or RGB, float or uint8", function()
    local b = face.detect(astro)
    assert.same(1, #b)
    local r = b[1]
    assert.is_true(face.iou(r, { 177, 66, 95, 95 }) > 0.9, ("%d %d %d %d"):format(r.x, r.y, r.w, r.h))
    assert.is_true(r.score >= 5)
    local grey = face.detect(ac.image.to_grey(astro))
    assert.same(1, #grey)
    assert.is_true(face.iou(grey[1], r) > 0.9)
    local u8 = core.face.grey(astro)
    assert.same(b, face.detect(u8))
    local lbp = face.detect(astro, { cascade = "lbp_frontalface_improved", min_neighbors = 3 })
    assert.same(1, #lbp)
    assert.is_true(face.iou(lbp[1], r) > 0.5)
  end)

  it("honours min_size, max_size and min_neighbors", function()
    assert.same(0, #face.detect(astro, { min_size = 120 }))
    assert.same(0, #face.detect(astro, { max_size = 60 }))
    local raw = face.detect(astro, { min_neighbors = 0 })
    assert.is_true(#raw > 20)
    for _, b in ipairs(raw) do assert.same(1, b.score) end
  end)

  it("finds every face of a picture tiled from real faces, and boxes stay inside", function()
    -- four astronaut heads at three sizes on a flat background
    local head = ac.image.crop(ac.image.to_grey(astro), 31, 131, 200, 200)
    local canvas = ac.full({ 1, 420, 700 }, 0.5)
    local spots = { { 10, 10, 200 }, { 260, 20, 120 }, { 420, 200, 180 }, { 610, 300, 80 } }
    for _, s in ipairs(spots) do
      canvas:narrow(2, s[2] + 1, s[3]):narrow(3, s[1] + 1, s[3]):copy(ac.image.resize(head, s[3], s[3]))
    end
    local found = face.detect(canvas, { min_neighbors = 3 })
    local n = face.match(found, (function()
      local ref = {}
      for i, s in ipairs(spots) do ref[i] = { s[1] + s[3] * 0.23, s[2] + s[3] * 0.18, s[3] * 0.48, s[3] * 0.48 } end
      return ref
    end)(), 0.3)
    assert.same(4, n)
    for _, b in ipairs(found) do
      assert.is_true(b.x >= 0 and b.y >= 0 and b.x + b.w <= 700 and b.y + b.h <= 420)
    end
  end)

  it("finds the same raw windows on the portable and the vector paths", function()
    local testing = require("adcorre.testing")
    local canvas = ac.image.resize(ac.image.to_grey(astro), 700, 900)
    for _, name in ipairs({ "frontalface_default", "frontalface_alt2", "lbp_frontalface_improved" }) do
      for _, threads in ipairs({ 1, 2 }) do
        ac.set_num_threads(threads)
        testing.isa_limit("generic")
        local a = face.detect(canvas, { cascade = name, min_neighbors = 0 })
        testing.isa_limit(nil)
        local b = face.detect(canvas, { cascade = name, min_neighbors = 0 })
        assert.is_true(#a > 10, name)
        assert.same(a, b)
      end
    end
    ac.set_num_threads(2)
  end)

  it("says what is wrong with its arguments", function()
    local function err(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return e
    end
    assert.matches("scale must be a number > 1", err(function() face.detect(astro, { scale = 1 }) end))
    assert.matches("min_neighbors must be an integer", err(function() face.detect(astro, { min_neighbors = 1.5 }) end))
    assert.matches("min_size must be a number or {w, h}", err(function() face.detect(astro, { min_size = "x" }) end))
    assert.matches("1 %(grey%) or 3 %(RGB%) channels", err(function() face.detect(ac.zeros(2, 50, 50)) end))
    assert.matches("must be float32 or uint8", err(function() face.detect(ac.zeros(50, 50):long()) end))
    assert.matches("%[C, H, W%] or %[H, W%]", err(function() face.detect(ac.zeros(50)) end))
    assert.matches("sizes must be in", err(function() face.detect(astro, { min_size = -1 }) end))
  end)
end)

describe("face.detect against OpenCV", function()
  local probe = io.popen("/usr/bin/python3 -c 'import cv2' 2>/dev/null; echo $?")
  local have_cv2 = probe:read("l") == "0"
  probe:close()
  if not have_cv2 then
    pending("python3-opencv (cv2) is not installed: no comparison with detectMultiScale")
    return
  end
  it("finds OpenCV's boxes on real and tiled photos with three cascades", function()
    local json = require("adcorre.json")
    local p = io.popen("/usr/bin/python3 tools/face_opencv_compare.py --json --quick 2>/dev/null")
    local out = p:read("a")
    p:close()
    local r = json.decode(out:match("([^\n]*)\n*$"))
    assert.is_true(#r.rows >= 9)
    local total, both = 0, 0
    for _, row in ipairs(r.rows) do
      assert.is_true(row.ok, ("%s %s: opencv %d, both %d, extra %d"):format(row.image, row.cascade, row.opencv,
        row.both, row.only_ours))
      total, both = total + row.opencv, both + row.both
    end
    assert.is_true(total >= 40)
    assert.is_true(both >= 0.95 * total)
  end)
end)
