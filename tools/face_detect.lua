--- tools/face_detect.lua - prints the faces ac.face.detect finds, one JSON
-- object per image and line: {"image", "width", "height", "seconds",
-- "boxes": [[x, y, w, h, score], ...]}. The Lua half of
-- tools/face_opencv_compare.py and bench/face_bench.py.
--
--   lua5.4 tools/face_detect.lua --cascade frontalface_default --scale 1.1 \
--       --min-neighbors 5 --min-size 30 [--repeat 3] [--threads 2] IMAGE...
local ac = require("adcorre")
local json = require("adcorre.json")

local opts = { cascade = "frontalface_default", scale = 1.1, min_neighbors = 5, min_size = 30 }
local images, rep, threads = {}, 1, nil
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--cascade" then opts.cascade = arg[i + 1]; i = i + 1
  elseif a == "--scale" then opts.scale = tonumber(arg[i + 1]); i = i + 1
  elseif a == "--min-neighbors" then opts.min_neighbors = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--min-size" then opts.min_size = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--max-size" then opts.max_size = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--repeat" then rep = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--threads" then threads = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  else images[#images + 1] = a end
  i = i + 1
end
if threads then ac.set_num_threads(threads) end
ac.face.cascade(opts.cascade) -- reading the XML is not part of the timing
for _, path in ipairs(images) do
  local img = ac.image.load(path)
  local s = img:shape()
  local best, boxes = math.huge, nil
  for _ = 1, rep do
    local t = ac.now()
    boxes = ac.face.detect(img, opts)
    best = math.min(best, ac.now() - t)
  end
  local out = {}
  for k, b in ipairs(boxes) do out[k] = { b.x, b.y, b.w, b.h, b.score } end
  io.stdout:write(json.encode({ image = path, width = s[3], height = s[2], seconds = best, boxes = out }), "\n")
end
