--- adcorre.image: reading, writing and transforming images as float32
-- tensors [C, H, W] with values in [0, 1] (batches [N, C, H, W] where noted).
--
--   local img = ac.image.load("face.jpg", 1)        -- 1 x H x W grey
--   local small = ac.image.resize(img, 48, 48)       -- area when shrinking
--   ac.image.save("small.png", small)
--
-- Decoding uses libjpeg-turbo (JPEG) and stb_image (PNG, BMP, TGA, GIF first frame, PNM);
-- saving writes PNG or JPEG (by extension) through a temporary file.
local core = require("adcorre.core")

local image = {}

local function ac() return require("adcorre") end

local function exif_opt(opts, fname)
  if opts == nil then return true end
  if type(opts) ~= "table" then error(fname .. ": opts must be a table, got " .. type(opts), 3) end
  return opts.exif ~= false
end

--- Loads an image file. channels: 0 or nil = as stored, 1 grey, 3 RGB (2/4 with alpha).
-- A JPEG's EXIF orientation is applied (the image comes upright, as
-- Pillow's exif_transpose and OpenCV's imread give it) unless opts.exif == false.
function image.load(path, channels, opts)
  if type(path) ~= "string" then error("image.load: path must be a string, got " .. type(path), 2) end
  return core.image.load(path, channels or 0, exif_opt(opts, "image.load"))
end

--- Decodes an encoded image held in a Lua string (opts as image.load).
function image.decode(bytes, channels, opts)
  if type(bytes) ~= "string" then error("image.decode: expects a string of bytes, got " .. type(bytes), 2) end
  return core.image.decode(bytes, channels or 0, exif_opt(opts, "image.decode"))
end

--- Width, height and stored channel count of an image file, without decoding it.
function image.info(path)
  return core.image.info(path)
end

--- Saves a [C, H, W] or [H, W] image (values clamped to [0, 1]) as PNG or JPEG,
-- chosen from the extension or opts.format; opts.quality for JPEG (default 95).
function image.save(path, img, opts)
  opts = opts or {}
  local fmt = opts.format
  if not fmt then
    local ext = path:match("%.([%w]+)$")
    ext = ext and ext:lower()
    if ext == "png" then fmt = "png"
    elseif ext == "jpg" or ext == "jpeg" then fmt = "jpg"
    else error(("image.save: cannot tell the format of '%s' (use .png, .jpg or opts.format)"):format(path), 2) end
  end
  core.image.save(path, img, fmt, opts.quality or 95)
  return path
end

--- Resizes the last two dimensions to h x w (bilinear up, area down).
function image.resize(img, h, w)
  return core.image.resize(img, h, w or h)
end

--- Crops a window of h x w whose top-left pixel is (y, x), 1-based; parts
-- outside the image are filled with `fill` (default 0).
function image.crop(img, y, x, h, w, fill)
  return core.image.crop(img, y - 1, x - 1, h, w, fill or 0)
end

--- Crops the centre h x w window.
function image.center_crop(img, h, w)
  w = w or h
  local s = img:shape()
  local H, W = s[#s - 1], s[#s]
  return core.image.crop(img, (H - h) // 2, (W - w) // 2, h, w, 0)
end

--- Pads the last two dimensions. pad: a number (all sides) or {top, bottom, left, right};
-- mode "constant" (fill), "replicate" or "reflect".
function image.pad(img, pad, mode, fill)
  local t, b, l, r
  if type(pad) == "number" then t, b, l, r = pad, pad, pad, pad
  elseif type(pad) == "table" then t, b, l, r = pad[1], pad[2], pad[3], pad[4]
  else error("image.pad: pad must be a number or {top, bottom, left, right}", 2) end
  return core.image.pad(img, t, b, l, r, mode or "constant", fill or 0)
end

--- [..., 3, H, W] -> [..., 1, H, W] (BT.601 luma); a grey image is returned as is.
function image.to_grey(img)
  local s = img:shape()
  if #s >= 3 and s[#s - 2] == 1 then return img end
  return core.image.to_grey(img)
end

--- [..., 1, H, W] -> [..., 3, H, W]; an RGB image is returned as is.
function image.to_rgb(img)
  local s = img:shape()
  if #s >= 3 and s[#s - 2] == 3 then return img end
  return core.image.to_rgb(img)
end

--- Returns the image with `channels` channels (1 or 3).
function image.to_channels(img, channels)
  if channels == 1 then return image.to_grey(img) end
  if channels == 3 then return image.to_rgb(img) end
  error("image.to_channels: channels must be 1 or 3, got " .. tostring(channels), 2)
end

--- In place: (x - mean[c]) / std[c] per channel of [..., C, H, W]. mean, std: numbers or arrays.
function image.normalize(img, mean, std)
  if type(mean) == "number" then mean = { mean } end
  if type(std) == "number" then std = { std } end
  if not img:is_contiguous() then error("image.normalize: image must be contiguous", 2) end
  return core.image.normalize(img, mean, std)
end

--- Tiles images into one picture. images: [N, C, H, W] tensor or an array of
-- [C, H, W] tensors (same shape). opts: ncol (default ceil(sqrt(N))), pad
-- (pixels between tiles, default 2), value (background, default 1).
function image.grid(images, opts)
  opts = opts or {}
  local list = {}
  if type(images) == "table" then list = images
  else
    local n = images:size(1)
    for i = 1, n do list[i] = images:select(1, i) end
  end
  local n = #list
  if n == 0 then error("image.grid: no images", 2) end
  local s = list[1]:shape()
  if #s == 2 then s = { 1, s[1], s[2] } end
  local c, h, w = s[1], s[2], s[3]
  local ncol = opts.ncol or math.ceil(math.sqrt(n))
  if math.type(ncol) ~= "integer" then
    if type(ncol) == "number" and ncol == math.floor(ncol) then ncol = math.tointeger(ncol) end
  end
  if math.type(ncol) ~= "integer" or ncol < 1 then
    error(("image.grid: ncol must be a positive integer, got %s"):format(tostring(opts.ncol)), 2)
  end
  local pad0 = opts.pad or 2
  if math.type(pad0) ~= "integer" and not (type(pad0) == "number" and pad0 == math.floor(pad0)) or pad0 < 0 then
    error(("image.grid: pad must be a non-negative integer, got %s"):format(tostring(opts.pad)), 2)
  end
  local nrow = math.ceil(n / ncol)
  local pad = opts.pad or 2
  local out = ac().full({ c, nrow * h + (nrow + 1) * pad, ncol * w + (ncol + 1) * pad }, opts.value or 1)
  for i = 1, n do
    local im = list[i]
    if im:dim() == 2 then im = im:view(1, h, w) end
    local ish = im:shape()
    if ish[1] ~= c or ish[2] ~= h or ish[3] ~= w then
      error(("image.grid: image %d is %dx%dx%d, image 1 is %dx%dx%d"):format(i, ish[1], ish[2], ish[3], c, h, w), 2)
    end
    local r, q = (i - 1) // ncol, (i - 1) % ncol
    out:narrow(2, pad + r * (h + pad) + 1, h):narrow(3, pad + q * (w + pad) + 1, w):copy(im)
  end
  return out
end

return image
