--- adcorre.augment: random augmentation of image batches, computed in C.
--
--   local aug = ac.augment.Compose{
--     ac.augment.HFlip(0.5),
--     ac.augment.Affine{rotate = 10, scale = {0.9, 1.1}, translate = 0.1, border = "reflect"},
--     ac.augment.ColorJitter{brightness = 0.2, contrast = 0.2},
--     ac.augment.RandomErasing{p = 0.5},
--   }
--   aug(x)                    -- x: float32 [N, C, H, W] (or [C, H, W]), in place
--   aug:apply(x, {out = y})   -- into y, x untouched
--   local std = ac.augment.preset("standard")
--
-- Each sample draws its parameters from its own generator, forked from a seed
-- drawn from the library generator (ac.manual_seed fixes it) or given as
-- opts.seed, so the result does not depend on the number of threads.
-- Values in [0, 1] stay in [0, 1].
local core = require("adcorre.core")

local augment = {}

local Op = {}
Op.__index = Op
Op.__name = "adcorre.augment.Op"

local function new_op(spec, name)
  return setmetatable({ spec = spec, name = name }, Op)
end

local function range(v, name, what, default, centre)
  if v == nil then return default[1], default[2] end
  if type(v) == "number" then
    if centre then return centre - v, centre + v end
    return v, v
  end
  if type(v) == "table" and type(v[1]) == "number" and type(v[2]) == "number" then return v[1], v[2] end
  error(("%s: %s must be a number or {lo, hi}"):format(name, what), 3)
end

local function check_opts(opts, name, allowed)
  opts = opts or {}
  if type(opts) ~= "table" then error(name .. ": expects a table of options", 3) end
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      error(("%s: unknown option '%s' (known: %s)"):format(name, tostring(k), table.concat(names, ", ")), 3)
    end
  end
  return opts
end

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

--- Mirrors left-right with probability p (default 0.5).
function augment.HFlip(p)
  if type(p) == "table" then p = p.p end
  return new_op({ kind = "hflip", p = p or 0.5 }, "HFlip")
end

--- Random affine warp about the image centre.
-- rotate: max degrees (angle ~ U(-r, r)); scale: {lo, hi} or s (= {1-s, 1+s});
-- translate: fraction of the size, a number or {x, y}; shear: max degrees;
-- border: "constant" (fill), "replicate" or "reflect"; p (default 1).
function augment.Affine(o)
  o = check_opts(o, "Affine", set { "rotate", "scale", "translate", "shear", "border", "fill", "p" })
  local slo, shi = range(o.scale, "Affine", "scale", { 1, 1 }, 1)
  local tx, ty
  if type(o.translate) == "table" then tx, ty = o.translate[1], o.translate[2]
  else tx = o.translate or 0; ty = tx end
  return new_op({ kind = "affine", p = o.p or 1, rotate = o.rotate or 0, scale_lo = slo, scale_hi = shi,
                  translate_x = tx, translate_y = ty, shear = o.shear or 0, border = o.border or "constant",
                  fill = o.fill or 0 }, "Affine")
end

--- Random crop of area fraction in scale = {lo, hi} and aspect ratio in ratio =
-- {lo, hi} (log-uniform), resized back to the input size (torchvision rule).
function augment.RandomResizedCrop(o)
  o = check_opts(o, "RandomResizedCrop", set { "scale", "ratio", "p" })
  local alo, ahi = range(o.scale, "RandomResizedCrop", "scale", { 0.08, 1 })
  local rlo, rhi = range(o.ratio, "RandomResizedCrop", "ratio", { 3 / 4, 4 / 3 })
  return new_op({ kind = "resized_crop", p = o.p or 1, area_lo = alo, area_hi = ahi, ratio_lo = rlo, ratio_hi = rhi },
    "RandomResizedCrop")
end

--- Brightness (x * U(1-b, 1+b)), contrast (around the image mean, U(1-c, 1+c))
-- and gamma (x ^ g, g log-uniform in [1/(1+gamma), 1+gamma]); clamped to [0, 1].
function augment.ColorJitter(o)
  o = check_opts(o, "ColorJitter", set { "brightness", "contrast", "gamma", "p" })
  return new_op({ kind = "jitter", p = o.p or 1, brightness = o.brightness or 0, contrast = o.contrast or 0,
                  gamma = o.gamma or 0 }, "ColorJitter")
end

--- Adds N(0, std^2) noise, clamped to [0, 1].
function augment.GaussianNoise(o)
  if type(o) == "number" then o = { std = o } end
  o = check_opts(o, "GaussianNoise", set { "std", "p" })
  return new_op({ kind = "noise", p = o.p or 1, std = o.std or 0.03 }, "GaussianNoise")
end

--- Gaussian blur with sigma ~ U(lo, hi) pixels (reflecting border).
function augment.GaussianBlur(o)
  if type(o) == "number" then o = { sigma = o } end
  o = check_opts(o, "GaussianBlur", set { "sigma", "p" })
  local lo, hi = range(o.sigma, "GaussianBlur", "sigma", { 0.1, 2.0 })
  return new_op({ kind = "blur", p = o.p or 1, sigma_lo = lo, sigma_hi = hi }, "GaussianBlur")
end

--- Random erasing (Zhong et al.): with probability p (default 0.5) one
-- rectangle of area fraction in scale and aspect in ratio is set to value
-- (a number, default 0, or "random" for U(0,1) noise).
function augment.RandomErasing(o)
  o = check_opts(o, "RandomErasing", set { "scale", "ratio", "value", "p" })
  local alo, ahi = range(o.scale, "RandomErasing", "scale", { 0.02, 0.33 })
  local rlo, rhi = range(o.ratio, "RandomErasing", "ratio", { 0.3, 3.3 })
  local random_fill = o.value == "random"
  if o.value ~= nil and not random_fill and type(o.value) ~= "number" then
    error("RandomErasing: value must be a number or \"random\"", 2)
  end
  return new_op({ kind = "erase", p = o.p or 0.5, area_lo = alo, area_hi = ahi, ratio_lo = rlo, ratio_hi = rhi,
                  fill = random_fill and 0 or (o.value or 0), random_fill = random_fill }, "RandomErasing")
end

augment.Noise = augment.GaussianNoise
augment.Blur = augment.GaussianBlur
augment.Erase = augment.RandomErasing

----------------------------------------------------------------------------
-- Compose
----------------------------------------------------------------------------

local Compose = {}
Compose.__index = Compose
Compose.__name = "adcorre.augment.Compose"

--- A pipeline of ops (or other Composes, flattened), applied in order.
function augment.Compose(list)
  list = list or {}
  if type(list) ~= "table" then error("Compose: expects an array of augment ops", 2) end
  local specs, names = {}, {}
  local function add(item, i)
    local mt = getmetatable(item)
    if mt == Op then
      specs[#specs + 1] = item.spec
      names[#names + 1] = item.name
    elseif mt == Compose then
      for _, s in ipairs(item.specs) do specs[#specs + 1] = s end
      for _, s in ipairs(item.names) do names[#names + 1] = s end
    else
      error(("Compose: element %d is not an augment op (got %s)"):format(i, type(item)), 3)
    end
  end
  for i, item in ipairs(list) do add(item, i) end
  local self = setmetatable({ specs = specs, names = names }, Compose)
  self.pipeline = core.augment.pipeline(specs)
  return self
end

--- Applies the pipeline to x ([N, C, H, W] or [C, H, W] float32) in place, or
-- into opts.out. opts.seed fixes the draw (otherwise taken from the library
-- generator); opts.key offsets the per-sample stream ids.
function Compose:apply(x, opts)
  opts = opts or {}
  local target = x
  if opts.out then
    opts.out:copy(x)
    target = opts.out
  end
  if not target:is_contiguous() then error("augment: the target tensor must be contiguous", 2) end
  return core.augment.apply(self.pipeline, target, opts.seed, opts.key or 0)
end

Compose.__call = function(self, x, opts) return self:apply(x, opts) end
Compose.__len = function(self) return #self.specs end
Compose.__tostring = function(self)
  return "Compose{" .. table.concat(self.names, ", ") .. "}"
end

--- Applies this op alone (see Compose:apply).
function Op:apply(x, opts) return augment.Compose { self }:apply(x, opts) end
Op.__call = function(self, x, opts) return self:apply(x, opts) end
Op.__tostring = function(self) return self.name end

----------------------------------------------------------------------------
-- Presets
----------------------------------------------------------------------------

local presets = {
  none = function() return {} end,
  -- mild geometry: flips and small warps
  light = function()
    return { augment.HFlip(0.5),
             augment.Affine { rotate = 10, scale = { 0.9, 1.1 }, translate = 0.05, border = "replicate" } }
  end,
  -- the usual FER recipe: flips, rotation / zoom / shift / shear, photometric jitter
  standard = function()
    return { augment.HFlip(0.5),
             augment.Affine { rotate = 15, scale = { 0.85, 1.15 }, translate = 0.1, shear = 5, border = "replicate", p = 0.9 },
             augment.ColorJitter { brightness = 0.25, contrast = 0.25, gamma = 0.2, p = 0.8 },
             augment.GaussianBlur { sigma = { 0.2, 1.0 }, p = 0.1 },
             augment.GaussianNoise { std = 0.02, p = 0.2 } }
  end,
  -- standard plus random erasing (occlusion; the reference trains on masked images)
  masked = function()
    local ops = { augment.HFlip(0.5),
                  augment.Affine { rotate = 15, scale = { 0.85, 1.15 }, translate = 0.1, shear = 5, border = "replicate", p = 0.9 },
                  augment.ColorJitter { brightness = 0.25, contrast = 0.25, gamma = 0.2, p = 0.8 },
                  augment.GaussianNoise { std = 0.02, p = 0.2 },
                  augment.RandomErasing { p = 0.5, scale = { 0.02, 0.2 }, value = "random" } }
    return ops
  end,
  -- for 224x224 colour data: crops instead of warps
  crop = function()
    return { augment.RandomResizedCrop { scale = { 0.6, 1 }, ratio = { 0.8, 1.25 } },
             augment.HFlip(0.5),
             augment.ColorJitter { brightness = 0.2, contrast = 0.2, p = 0.8 },
             augment.RandomErasing { p = 0.25 } }
  end,
}

augment.presets = { "none", "light", "standard", "masked", "crop" }

--- A named preset as a Compose ("none", "light", "standard", "masked", "crop").
function augment.preset(name)
  local f = presets[name or "none"]
  if not f then
    error(("augment.preset: unknown preset '%s' (known: %s)"):format(tostring(name), table.concat(augment.presets, ", ")), 2)
  end
  return augment.Compose(f())
end

--- Accepts a preset name, a Compose, a single op, a list of ops or nil and returns a Compose.
function augment.resolve(a)
  if a == nil or a == false then return augment.Compose {} end
  if type(a) == "string" then return augment.preset(a) end
  local mt = getmetatable(a)
  if mt == Compose then return a end
  if mt == Op then return augment.Compose { a } end
  if type(a) == "table" then return augment.Compose(a) end
  error("augment: expected a preset name, an op or a Compose, got " .. type(a), 2)
end

--- Deterministic affine warp of one [C, H, W] image: source = A (dst - centre - t) + centre.
function augment.warp(x, A, t, border, fill)
  local modes = { constant = 0, replicate = 1, reflect = 2 }
  return core.augment.warp(x, A, t or { 0, 0 }, modes[border or "constant"] or error("warp: unknown border " .. tostring(border), 2), fill or 0)
end

augment.is_compose = function(x) return getmetatable(x) == Compose end

return augment
