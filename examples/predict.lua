--- examples/predict.lua - the facial expression of every face in pictures,
-- folders and videos, with its probabilities.
--
--   lua5.4 examples/predict.lua --model Trained_Models/minixception_synthfer.safetensors group.jpg
--   lua5.4 examples/predict.lua --model m.safetensors --json --annotate out/ --csv faces.csv --recursive photos/
--   lua5.4 examples/predict.lua --model m.safetensors --video clip.mp4 --every 5 --csv clip.csv --annotate clip_out.mp4
--   lua5.4 examples/predict.lua --model m.safetensors --box 120,40,96,96 --box 300,60,90,90 photo.jpg
--   lua5.4 examples/predict.lua --model authors.h5 --classes canonical --input-range 0,1 face.jpg
--
-- Faces are found with OpenCV's cascades (ac.face.detect; --detect auto
-- falls back to the whole picture when none is found or the picture is
-- already face-sized), cropped square with a margin, converted to the
-- model's channels, size and input range, and classified in one batch.
local ac = require("adcorre")
local argparse = require("argparse")
local json = require("adcorre.json")
local predict = require("adcorre.predict")
local batch = require("adcorre.predict.batch")

local p = argparse("predict.lua", "Recognise the facial expression of the faces in pictures and videos.")
p:option("--model", "Model file: .safetensors (train.lua, ac.save, convert.lua) or Keras .h5."):count(1)
p:argument("images", "Image files, folders, or @list.txt files."):args("*")
p:option("--list", "A file listing one image path per line.")
p:flag("--recursive", "Also read the sub-folders of folder arguments.")
p:option("--video", "A video file (read through ffmpeg) instead of images.")
p:option("--every", "With --video: classify every N-th frame.", "1"):convert(tonumber)
p:option("--detect", "Face detection: auto, haar, lbp or none.", "auto")
    :choices({ "auto", "haar", "lbp", "none" })
p:option("--cascade", "Cascade name or XML path for haar/auto (default frontalface_default).")
p:option("--scale", "Detector scale step.", "1.1"):convert(tonumber)
p:option("--min-neighbors", "Detector grouping threshold.", "5"):convert(tonumber)
p:option("--min-size", "Smallest face in pixels.", "30"):convert(tonumber)
p:option("--box", "A face box x,y,w,h (0-based pixels; repeatable): classify it instead of detecting."):count("*")
p:option("--margin", "Crop margin around a detected box, as a fraction of its side.", "0.2"):convert(tonumber)
p:option("--min-prob", "Faces whose top probability is below P are marked uncertain."):convert(tonumber)
p:option("--classes", "Class names overriding the model's: fer2013, rafdb, affectnet, canonical or NAME,NAME,...")
p:option("--input-range", "The model's input range LO,HI (pixels 0..1 are mapped to it; default the file's, "
  .. "else 0,1; write negative ones as --input-range=-1,1).")
p:option("--annotate", "Write the picture with boxes and labels: a PNG/JPEG, a folder for many inputs, "
  .. "or an .mp4 with --video.")
p:option("--csv", "Write one row per face to this CSV file.")
p:flag("--json", "One JSON object per image (or classified frame) and line.")
p:flag("--embeddings", "Also give each face's k embeddings.")
p:option("--top", "Show the k most likely expressions (text output).", "3"):convert(tonumber)
p:option("--threads", "Compute threads.", "2"):convert(tonumber)
p:flag("--no-progress", "No progress line on stderr.")
local args = p:parse()

local function fail(msg) io.stderr:write("predict: ", msg, "\n"); os.exit(2) end
if args.input_range then
  local ok, err = pcall(require("adcorre.keras.conventions").input_range, args.input_range, "--input-range")
  if not ok then fail(err) end
end
local boxes
for _, b in ipairs(args.box) do
  local v = {}
  for n in b:gmatch("[^,]+") do v[#v + 1] = math.tointeger(tonumber(n)) end
  if #v ~= 4 or not (v[1] and v[2] and v[3] and v[4]) or v[3] <= 0 or v[4] <= 0 then
    fail(("--box must be x,y,w,h in whole pixels with w, h > 0, got '%s'"):format(b))
  end
  boxes = boxes or {}
  boxes[#boxes + 1] = v
end
if args.every < 1 or args.every ~= math.floor(args.every) then fail("--every must be a whole number >= 1") end

ac.set_num_threads(args.threads)
local okm, model, info = pcall(predict.load_model, args.model, { classes = args.classes, input_range = args.input_range })
if not okm then fail(tostring(model)) end
local opts = {
  detect = args.detect, cascade = args.cascade, scale = args.scale, min_neighbors = math.tointeger(args.min_neighbors),
  min_size = math.tointeger(args.min_size), boxes = boxes, margin = args.margin, min_prob = args.min_prob,
  input_range = info.input_range, embeddings = args.embeddings,
}
local csv = args.csv and batch.csv(args.csv, info.classes)

local function show(name, r)
  if args.json then
    io.stdout:write(json.encode(r), "\n")
    return
  end
  for i, f in ipairs(r.faces) do
    local order = {}
    for k, c in ipairs(info.classes) do order[k] = { c, f.probabilities[c] } end
    table.sort(order, function(a, b) return a[2] > b[2] end)
    local parts = {}
    for k = 1, math.min(args.top, #order) do parts[k] = ("%s %.1f%%"):format(order[k][1], 100 * order[k][2]) end
    io.stdout:write(("%s: face %d at %d,%d %dx%d%s: %s%s   (%s)\n"):format(name, i, f.box[1], f.box[2], f.box[3],
      f.box[4], f.detected and "" or " (whole picture or given box)", f.label, f.uncertain and " (uncertain)" or "",
      table.concat(parts, ", ")))
    if f.embeddings then
      for j, e in ipairs(f.embeddings) do
        local head = {}
        for k = 1, math.min(6, #e) do head[k] = ("%.3f"):format(e[k]) end
        io.stdout:write(("  embedding %d: [%s, ...] (%d values)\n"):format(j, table.concat(head, ", "), #e))
      end
    end
  end
  for _, n in ipairs(r.notes or {}) do io.stderr:write(("predict: %s: %s\n"):format(name, n)) end
end

local failures = 0
if args.video then
  local video = require("adcorre.predict.video")
  local ok, err = pcall(function()
    local frames, vinfo = video.frames(args.video, args.every)
    local out = args.annotate and video.writer(args.annotate, vinfo.width, vinfo.height, vinfo.fps)
    local total = vinfo.frames and math.ceil(vinfo.frames / args.every) or 0
    local prog = batch.progress(total, { enabled = not args.no_progress and total > 0, unit = "frames",
                                         rate_unit = "frame" })
    local last
    for i, t, img, bytes in frames do
      if img then
        local r = predict.faces(model, info, img, opts)
        r.video, r.frame, r.time = args.video, i, t
        show(("%s frame %d (%.2f s)"):format(args.video, i, t), r)
        if csv then csv:add(args.video, r, i, t) end
        last = r
        prog:step()
      end
      if out then
        if last then out:write(predict.annotate(img or require("adcorre.core").face.from_rgb24(bytes, vinfo.width, vinfo.height), last, nil, info))
        else out:write_bytes(bytes) end
      end
      img = nil
      collectgarbage()
    end
    if out then out:close() end
  end)
  if not ok then failures = failures + 1; io.stderr:write(tostring(err), "\n") end
else
  local inputs = batch.expand(args.images, { list = args.list, recursive = args.recursive })
  if #inputs == 0 then fail("no images given (files, folders, @list.txt, --list or --video)") end
  local prog = batch.progress(#inputs, { enabled = not args.no_progress })
  for _, path in ipairs(inputs) do
    local ok, r, img = pcall(predict.image, model, info, path, opts)
    if not ok then
      failures = failures + 1
      io.stderr:write(("predict: %s\n"):format(tostring(r)))
    else
      show(path, r)
      if csv then csv:add(path, r) end
      if args.annotate then
        local ok2, e = pcall(predict.annotate, img, r, batch.annotate_path(args.annotate, path, #inputs > 1), info)
        if not ok2 then failures = failures + 1; io.stderr:write(("predict: %s\n"):format(tostring(e))) end
      end
    end
    prog:step(not ok)
    r, img = nil, nil
    collectgarbage()
  end
  if failures > 0 then io.stderr:write(("predict: %d of %d images failed\n"):format(failures, #inputs)) end
end
if csv then csv:close() end
os.exit(failures == 0 and 0 or 1)
