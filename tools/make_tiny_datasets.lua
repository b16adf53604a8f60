--- make_tiny_datasets.lua - builds tiny data sets in every format adcorre
-- reads (real PNG and JPEG files, CSVs, .npy), with known labels and pixel
-- values, plus malformed variants. Used by the data specs (written into a
-- temporary folder at test time) and handy for trying the programs:
--
--   lua5.4 tools/make_tiny_datasets.lua OUTDIR
--
-- As a module: local tiny = dofile("tools/make_tiny_datasets.lua");
-- local m = tiny.build(outdir) -> manifest (paths and expected values).
local ac = require("adcorre")
local fs = require("adcorre.fs")

local M = {}

local function mkdir(p)
  if not fs.mkdir_p(p) then error("cannot create folder " .. p) end
end

local function write(path, text)
  local f = assert(io.open(path .. ".tmp", "wb"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

-- FER-2013 codes (0 Angry .. 6 Neutral) -> canonical class
M.fer_to_canonical = { [0] = 7, 6, 5, 2, 3, 4, 1 }
-- RAF-DB codes 1..7 -> canonical
M.raf_to_canonical = { 4, 5, 6, 2, 3, 7, 1 }
M.fer_folder_names = { [0] = "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral" }

--- Pixel k (0-based) of fer2013 row r (0-based): a known pattern.
function M.fer_pixel(r, k) return (r * 31 + k * 7) % 256 end

--- Uniform grey value of image i (1-based) in the file-based sets.
function M.flat_value(i) return (40 + i * 23) % 256 end

local function flat_image(c, h, w, v)
  return ac.full({ c, h, w }, v / 255)
end

-- fer2013.csv: 3 splits x 7 codes, rows in a fixed order. Returns the expected rows.
local function fer_csv(dir)
  mkdir(dir)
  local usages = { "Training", "PublicTest", "PrivateTest" }
  local per = { Training = 2, PublicTest = 1, PrivateTest = 1 } -- rows per code
  local lines = { "emotion,pixels,Usage" }
  local rows = {}
  local r = 0
  for _, u in ipairs(usages) do
    for code = 0, 6 do
      for _ = 1, per[u] do
        local px = {}
        for k = 0, 48 * 48 - 1 do px[k + 1] = M.fer_pixel(r, k) end
        lines[#lines + 1] = ("%d,%s,%s"):format(code, table.concat(px, " "), u)
        rows[#rows + 1] = { row = r, code = code, usage = u, label = M.fer_to_canonical[code] }
        r = r + 1
      end
    end
  end
  write(dir .. "/fer2013.csv", table.concat(lines, "\r\n") .. "\r\n") -- CRLF as shipped
  return rows
end

-- fer2013new.csv (FER+) matching the rows of fer_csv.
local function ferplus_csv(dir, rows)
  -- columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
  local lines = { "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF" }
  local expect = {}
  for i, row in ipairs(rows) do
    local votes = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
    local name = ("fer%07d.png"):format(row.row)
    local label
    local k = (i - 1) % 10
    if k == 9 then name = "" -- no image: left out
    elseif k == 8 then votes[9] = 8; votes[1] = 2 -- unknown majority: left out
    elseif k == 7 then votes[1] = 4; votes[2] = 4; votes[3] = 2 -- no majority: left out
    else
      votes[k + 1] = 7; votes[((k + 1) % 8) + 1] = 2; votes[((k + 2) % 8) + 1] = 1 -- single vote is dropped
      label = ({ 1, 2, 4, 3, 7, 6, 5, 8 })[k + 1]
    end
    local v = {}
    for j = 1, 10 do v[j] = tostring(votes[j]) end
    lines[#lines + 1] = ("%s,%s,%s"):format(row.usage, name, table.concat(v, ","))
    expect[i] = label
  end
  write(dir .. "/fer2013new.csv", table.concat(lines, "\n") .. "\n")
  return expect
end

-- Malformed fer2013 variants.
local function fer_bad(dir)
  mkdir(dir)
  local good = {}
  for k = 1, 48 * 48 do good[k] = "1" end
  local g = table.concat(good, " ")
  local short = table.concat(good, " ", 1, 48 * 48 - 1)
  local files = {
    wrong_pixels = "emotion,pixels,Usage\n3," .. g .. ",Training\n3," .. short .. ",Training\n0," .. g .. ",PublicTest\n",
    unknown_label = "emotion,pixels,Usage\n3," .. g .. ",Training\n9," .. g .. ",Training\n",
    bad_pixel = "emotion,pixels,Usage\n3," .. g:gsub("^1", "x") .. ",Training\n",
    big_pixel = "emotion,pixels,Usage\n3," .. g:gsub("^1", "256") .. ",Training\n",
    no_header = "3," .. g .. ",Training\n",
    unterminated = 'emotion,pixels,Usage\n3,"' .. g .. ",Training\n",
  }
  local out = {}
  for name, text in pairs(files) do
    out[name] = dir .. "/" .. name .. ".csv"
    write(out[name], text)
  end
  return out
end

-- Class folders with PNG (grey) or JPEG (RGB) files.
local function class_folders(root, splits, names, n_per, ext, channels, size)
  local expect = {}
  local i = 0
  for _, split in ipairs(splits) do
    expect[split] = {}
    for ci, cname in ipairs(names) do
      mkdir(root .. "/" .. split .. "/" .. cname)
      local n = n_per(split, ci)
      for j = 1, n do
        i = i + 1
        local v = M.flat_value(i)
        local path = ("%s/%s/%s/img%03d.%s"):format(root, split, cname, j, ext)
        ac.image.save(path, flat_image(channels, size, size, v), { quality = 100 })
        expect[split][#expect[split] + 1] = { path = path, class = cname, value = v }
      end
    end
  end
  return expect
end

local function rafdb(root)
  mkdir(root .. "/EmoLabel")
  mkdir(root .. "/Image/aligned")
  local lines, expect = {}, {}
  local i = 0
  for _, split in ipairs({ "train", "test" }) do
    for code = 1, 7 do
      local n = split == "train" and 2 or 1
      for _ = 1, n do
        i = i + 1
        local name = ("%s_%05d.jpg"):format(split, i)
        local v = M.flat_value(i)
        local img = ac.zeros(3, 24, 24)
        img[1]:fill(v / 255); img[2]:fill(((v + 60) % 256) / 255); img[3]:fill(((v + 120) % 256) / 255)
        ac.image.save(root .. "/Image/aligned/" .. name:gsub("%.jpg$", "_aligned.jpg"), img, { quality = 100 })
        lines[#lines + 1] = name .. " " .. code
        expect[#expect + 1] = { name = name, split = split, code = code, label = M.raf_to_canonical[code], value = v }
      end
    end
  end
  write(root .. "/EmoLabel/list_patition_label.txt", table.concat(lines, "\n") .. "\n")
  -- a malformed copy: unknown code, a missing image
  local bad = root .. "_bad"
  mkdir(bad .. "/EmoLabel")
  mkdir(bad .. "/Image")
  os.execute(("cp -r '%s/Image/aligned' '%s/Image/'"):format(root, bad))
  write(bad .. "/EmoLabel/list_patition_label.txt",
    lines[1] .. "\ntrain_00002.jpg 9\ntrain_99999.jpg 3\n" .. lines[3] .. "\n")
  return expect, bad
end

local function affectnet(root)
  mkdir(root .. "/Manually_Annotated_Images/101")
  local header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
  local expect = { train = {}, val = {} }
  local i = 0
  local function csv(name, split, codes)
    local lines = { header }
    for _, code in ipairs(codes) do
      i = i + 1
      local rel = ("101/img%04d.jpg"):format(i)
      local v = M.flat_value(i)
      -- a 32x32 image: background 0, face box (8, 8, 16, 16) filled with v
      local img = ac.zeros(3, 32, 32)
      img:narrow(2, 9, 16):narrow(3, 9, 16):fill(v / 255)
      ac.image.save(root .. "/Manually_Annotated_Images/" .. rel, img, { quality = 100 })
      local lm = {}
      for k = 1, 68 do lm[k] = ("%.2f;%.2f"):format(k, k) end
      lines[#lines + 1] = ("%s,8,8,16,16,%s,%d,0.1,-0.2"):format(rel, table.concat(lm, ";"), code)
      expect[split][#expect[split] + 1] = { code = code, value = v }
    end
    write(root .. "/" .. name, table.concat(lines, "\n") .. "\n")
  end
  csv("training.csv", "train", { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 1, 6 })
  csv("validation.csv", "val", { 0, 1, 2, 3, 4, 5, 6, 7 })
  local bad = root .. "_bad"
  mkdir(bad)
  os.execute(("cp -r '%s/Manually_Annotated_Images' '%s/'"):format(root, bad))
  write(bad .. "/training.csv", header .. "\n101/img0001.jpg,8,8,16,16,1;1,12,0,0\n")
  write(bad .. "/validation.csv", header .. "\n101/img0001.jpg,8,8,16,16,1;1,3,0,0\n101/none.jpg,8,8,16,16,1;1,3,0,0\n")
  return expect, bad
end

local function npy(root)
  mkdir(root)
  -- train: uint8 [N, 6, 5] grey, labels 0..3 (4 classes, no classes.txt -> canonical names)
  local n = 8
  local img = ac.zeros(n, 6, 5, "uint8")
  local lab = {}
  for i = 1, n do
    img[i]:fill((i * 17) % 256)
    lab[i] = (i - 1) % 4
  end
  ac.save_npy(root .. "/train_images.npy", img)
  ac.save_npy(root .. "/train_labels.npy", ac.tensor(lab, "int64"))
  -- test: float32 [N, 6, 5, 3] in [0, 1]
  local t = ac.zeros(4, 6, 5, 3)
  for i = 1, 4 do t[i]:fill(i / 8) end
  ac.save_npy(root .. "/test_images.npy", t)
  ac.save_npy(root .. "/test_labels.npy", ac.tensor({ 3, 2, 1, 0 }, "int64"))
  -- a 10-class set with classes.txt
  local many = root .. "_classes"
  mkdir(many)
  local m = ac.zeros(10, 4, 4, "uint8")
  local ml = {}
  for i = 1, 10 do ml[i] = i - 1; m[i]:fill(i) end
  ac.save_npy(many .. "/train_images.npy", m)
  ac.save_npy(many .. "/train_labels.npy", ac.tensor(ml, "int64"))
  local names = {}
  for i = 1, 10 do names[i] = "class" .. (i - 1) end
  write(many .. "/classes.txt", table.concat(names, "\n") .. "\n")
  -- malformed: 8 images, 7 labels
  local bad = root .. "_bad"
  mkdir(bad)
  ac.save_npy(bad .. "/train_images.npy", img)
  ac.save_npy(bad .. "/train_labels.npy", ac.tensor({ 0, 1, 2, 3, 0, 1, 2 }, "int64"))
  return { train_labels = lab, many = many, bad = bad }
end

--- Builds everything under `out`; returns the manifest.
function M.build(out)
  mkdir(out)
  local m = { root = out }
  m.fer_rows = fer_csv(out .. "/fer2013")
  m.ferplus = ferplus_csv(out .. "/fer2013", m.fer_rows)
  m.fer_bad = fer_bad(out .. "/fer2013_bad")
  -- fer2013 per-class folders (PNG, grey 48x48): train 2 per class, test 1 per class
  m.fer_folders = class_folders(out .. "/fer2013_folders", { "train", "test" },
    { "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise" },
    function(split) return split == "train" and 2 or 1 end, "png", 1, 48)
  -- generic folder set (JPEG, RGB 20x20) with arbitrary class names
  m.folder = class_folders(out .. "/folder", { "train", "val" }, { "cats", "dogs", "owls" },
    function(split, ci) return split == "train" and ci + 1 or 1 end, "jpg", 3, 20)
  -- a truncated JPEG and a corrupt PNG in an otherwise good folder set
  mkdir(out .. "/folder_bad/train/a")
  mkdir(out .. "/folder_bad/train/b")
  ac.image.save(out .. "/folder_bad/train/a/good.png", flat_image(1, 8, 8, 100))
  ac.image.save(out .. "/folder_bad/train/b/good.png", flat_image(1, 8, 8, 200))
  local jpg = out .. "/folder_bad/train/a/ok.jpg"
  ac.image.save(jpg, flat_image(3, 16, 16, 50))
  local f = assert(io.open(jpg, "rb"))
  local bytes = f:read("a")
  f:close()
  write(out .. "/folder_bad/train/a/truncated.jpg", bytes:sub(1, #bytes // 2))
  write(out .. "/folder_bad/train/b/corrupt.png", "\137PNG\r\n\26\n" .. ("garbage"):rep(20))
  os.remove(jpg)
  m.rafdb, m.rafdb_bad = rafdb(out .. "/rafdb")
  m.affectnet, m.affectnet_bad = affectnet(out .. "/affectnet")
  m.npy = npy(out .. "/npy")
  return m
end

if arg and arg[0] and arg[0]:match("make_tiny_datasets%.lua$") and not package.loaded["tools.make_tiny_datasets"] then
  local out = arg[1]
  if not out then
    io.stderr:write("usage: lua5.4 tools/make_tiny_datasets.lua OUTDIR\n")
    os.exit(1)
  end
  M.build(out)
  print("tiny data sets written to " .. out)
end

return M
