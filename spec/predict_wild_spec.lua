-- spec/predict_wild_spec.lua - predict in the wild, as a user runs it: a
-- picture tiled from a real face at several scales gives every face with
-- JSON, CSV and an annotated PNG; folders (recursive, one broken file),
-- given boxes (clipped), the REPL functions, and video through ffmpeg at
-- constant memory.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")
local predict = require("adcorre.predict")

local MODEL = "Trained_Models/minixception_synthfer.safetensors"
local ASTRO = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function sh(cmd, env)
  local e = 'LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="' ..
      (package.cpath:match("^([^;]*)") or "./build/?.so") .. ';;" ' .. (env or "")
  local errf = os.tmpname()
  local p = io.popen(e .. cmd .. " 2>" .. errf .. "; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local f = io.open(errf)
  local err = f:read("a")
  f:close()
  os.remove(errf)
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code, err
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("predict in the wild", function()
  if not exists(ASTRO) or not exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml") then
    pending("python3-skimage's astronaut.png or opencv-data is missing")
    return
  end
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir .. "/photos/sub"))
  -- four heads of a real photograph at four sizes on a noisy grey background
  local astro = ac.image.load(ASTRO)
  local head = ac.image.crop(astro, 31, 131, 200, 200)
  ac.manual_seed(1)
  local canvas = ac.rand(3, 460, 760) * 0.2 + 0.4
  local spots = { { 10, 10, 200 }, { 260, 20, 120 }, { 420, 200, 180 }, { 640, 330, 100 } }
  for _, s in ipairs(spots) do
    canvas:narrow(2, s[2] + 1, s[3]):narrow(3, s[1] + 1, s[3]):copy(ac.image.resize(head, s[3], s[3]))
  end
  local group = dir .. "/photos/group.png"
  ac.image.save(group, canvas)
  local truth = {}
  for i, s in ipairs(spots) do truth[i] = { s[1] + s[3] * 0.23, s[2] + s[3] * 0.18, s[3] * 0.48, s[3] * 0.48 } end

  it("finds every face of a tiled picture and writes JSON, CSV and an annotated PNG", function()
    local out, code, err = sh(("lua5.4 examples/predict.lua --model %s --json --csv %s/g.csv --annotate %s/g.png %s")
      :format(MODEL, dir, dir, group))
    assert.equal(0, code, err)
    local r = json.decode(lines(out)[1])
    assert.same(group, r.image)
    assert.same(760, r.width)
    assert.same(460, r.height)
    assert.same(4, #r.faces)
    local boxes = {}
    for i, f in ipairs(r.faces) do
      assert.is_true(f.detected)
      assert.same(4, #f.box)
      local s = 0
      for _, p in pairs(f.probabilities) do s = s + p end
      assert.is_true(math.abs(s - 1) < 1e-6)
      boxes[i] = f.box
    end
    assert.same(4, (ac.face.match(boxes, truth, 0.3)))
    -- the top level is the largest face
    local largest = r.faces[1]
    for _, f in ipairs(r.faces) do if f.box[3] * f.box[4] > largest.box[3] * largest.box[4] then largest = f end end
    assert.same(largest.label, r.label)
    local csv = lines(read(dir .. "/g.csv"))
    assert.same(5, #csv)
    assert.matches("^image,frame,time,face,x,y,w,h,detected,label,probability,uncertain,Neutral,Happy", csv[1])
    local ann = ac.image.load(dir .. "/g.png")
    assert.same({ 3, 460, 760 }, ann:shape())
    assert.is_true((ann - ac.image.load(group)):abs():max() > 0.3) -- boxes were drawn
  end)

  it("runs a folder recursively, past a broken file, with a folder of annotations", function()
    assert(os.execute(("cp %s %s/photos/sub/astro.png"):format(ASTRO, dir)))
    local f = io.open(dir .. "/photos/broken.jpg", "wb")
    f:write("\xFF\xD8\xFF\xE0 this is not a picture")
    f:close()
    local out, code, err = sh(("lua5.4 examples/predict.lua --model %s --json --recursive --annotate %s/ann %s/photos")
      :format(MODEL, dir, dir))
    assert.equal(1, code)
    assert.matches("broken%.jpg", err)
    assert.matches("1 of 3 images failed", err)
    assert.same(2, #lines(out))
    assert.is_true(exists(dir .. "/ann/group.png"))
    assert.is_true(exists(dir .. "/ann/astro.png"))
    -- without --recursive the sub-folder is not read
    out = sh(("lua5.4 examples/predict.lua --model %s --json %s/photos"):format(MODEL, dir))
    assert.same(1, #lines(out))
  end)

  it("classifies given boxes, clipping the ones that reach outside", function()
    local out, code, err = sh(("lua5.4 examples/predict.lua --model %s --json --box 40,40,120,120 --box 700,400,100,100 "
      .. "--box 900,900,10,10 %s"):format(MODEL, group))
    assert.equal(0, code, err)
    local r = json.decode(lines(out)[1])
    assert.same(2, #r.faces)
    assert.same({ 40, 40, 120, 120 }, r.faces[1].box)
    assert.same({ 700, 400, 60, 60 }, r.faces[2].box)
    assert.is_true(r.faces[2].clipped)
    assert.is_false(r.faces[1].detected)
    assert.matches("clipped", table.concat(r.notes, " "))
    assert.matches("outside", table.concat(r.notes, " "))
    out, code, err = sh(("lua5.4 examples/predict.lua --model %s --box 1,2,3 %s"):format(MODEL, group))
    assert.equal(2, code)
    assert.matches("%-%-box must be x,y,w,h", err)
  end)

  it("gives the REPL the same functions, with whole-picture fallback and uncertain faces", function()
    local model, info = predict.load_model(MODEL)
    local img = ac.image.load(group)
    assert.same(4, #predict.detect(img))
    local r = predict.faces(model, info, img, { min_prob = 0.999 })
    assert.same(4, #r.faces)
    local none = predict.faces(model, info, img, { detect = "none" })
    assert.same(1, #none.faces)
    assert.same({ 0, 0, 760, 460 }, none.faces[1].box)
    assert.is_false(none.faces[1].detected)
    -- a face-sized picture is classified whole under auto
    local small = predict.faces(model, info, ac.image.resize(img, 80, 90))
    assert.is_false(small.faces[1].detected)
    local a = predict.annotate(img, r)
    assert.same({ 3, 460, 760 }, a:shape())
    for _, f in ipairs(r.faces) do
      if f.probabilities[f.label] < 0.999 then assert.is_true(f.uncertain) end
    end
  end)

  describe("video", function()
    local have = os.execute("command -v ffmpeg >/dev/null 2>&1")
    if not have then
      pending("ffmpeg is not installed (Debian package ffmpeg)")
      return
    end
    local clip = dir .. "/clip.mp4"
    assert(os.execute(("ffmpeg -v error -y -loop 1 -i %s -t 6 -r 10 -vf scale=760:460 -c:v libx264 -pix_fmt yuv420p %s")
      :format(group, clip)))

    it("reads frames through ffmpeg, every N-th classified, CSV and annotated video", function()
      local out, code, err = sh(("lua5.4 examples/predict.lua --model %s --video %s --every 10 --json --csv %s/v.csv "
        .. "--annotate %s/v.mp4 --no-progress"):format(MODEL, clip, dir, dir))
      assert.equal(0, code, err)
      local js = lines(out)
      assert.same(6, #js)
      local r = json.decode(js[2])
      assert.same(10, r.frame)
      assert.is_true(math.abs(r.time - 1.0) < 1e-9)
      assert.same(4, #r.faces)
      assert.same(25, #lines(read(dir .. "/v.csv")))
      local p = io.popen("ffprobe -v error -count_frames -show_entries stream=nb_read_frames,width,height -of csv=p=0 "
        .. dir .. "/v.mp4")
      local probe = p:read("a")
      p:close()
      assert.matches("760,460,60", probe)
    end)

    it("keeps memory constant over the length of a video", function()
      local video = require("adcorre.predict.video")
      local model, info = predict.load_model(MODEL)
      local function rss()
        for l in io.lines("/proc/self/status") do
          local kb = l:match("^VmRSS:%s+(%d+)")
          if kb then return tonumber(kb) / 1024 end
        end
      end
      local at, n = {}, 0
      for i, _, img in video.frames(clip, 1) do
        predict.faces(model, info, img)
        img = nil
        collectgarbage()
        n = n + 1
        if i == 10 or i == 59 then at[i] = rss() end
      end
      assert.same(60, n)
      assert.is_true(at[59] - at[10] < 25, ("RSS %.1f MiB at frame 10, %.1f at frame 59"):format(at[10], at[59]))
    end)

    it("names the package when ffmpeg is missing, and a file that is not a video", function()
      local lua = io.popen("command -v lua5.4"):read("l")
      local _, code, err = sh((lua .. " examples/predict.lua --model %s --video %s"):format(MODEL, clip), "PATH=/nonexistent ")
      assert.equal(1, code)
      assert.matches("Debian package ffmpeg", err)
      _, code, err = sh(("lua5.4 examples/predict.lua --model %s --video %s"):format(MODEL, group .. ".nope"))
      assert.equal(1, code)
      assert.matches("does not exist", err)
      local bad = dir .. "/bad.mp4"
      local f = io.open(bad, "wb")
      f:write(("not a video"):rep(100))
      f:close()
      _, code, err = sh(("lua5.4 examples/predict.lua --model %s --video %s"):format(MODEL, bad))
      assert.equal(1, code)
      assert.matches("no video stream", err)
    end)
  end)
end)
