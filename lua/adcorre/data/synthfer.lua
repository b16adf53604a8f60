--- adcorre.data.synthfer: the library's procedural FER set (adcorre.synthfer)
-- as a data set: 48x48 grey faces of the 7 canonical classes, generated in
-- memory. Splits hold different faces: train = samples 1..n, val = samples
-- from 10,000,001, test = samples from 20,000,001 of the same seed.
--
--   ac.data.synthfer{n = 20000, seed = 1, split = "train"}
--
-- Options: n (default 20000 for train, 2000 otherwise), seed (default 1),
-- split, channels (1), and the generator options of adcorre.synthfer
-- (difficulty, max_rotation, occlusion, noise, blur). With path = a
-- fer2013.csv (or a folder holding one) it reads that file instead, which
-- is what synthfer.write_csv produces.
local data = require("adcorre.data")

local M = {}
M.split_names = { "train", "val", "test" }
M.classes = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }
local start_of = { train = 1, val = 10000001, test = 20000001 }
local gen_keys = { difficulty = true, max_rotation = true, occlusion = true, noise = true, blur = true }

local function generator()
  local ok, sf = pcall(require, "adcorre.synthfer")
  if not ok then error("synthfer: the generator module adcorre.synthfer is not available: " .. tostring(sf), 4) end
  return sf
end

function M.open(opts)
  opts = opts or {}
  if opts.path then
    return data.fer2013 { path = opts.path, split = opts.split, channels = opts.channels, skip_bad = opts.skip_bad }
  end
  local split = opts.split or "train"
  local start = start_of[split]
  if not start then error(("synthfer: unknown split '%s' (train, val or test)"):format(tostring(split)), 2) end
  local n = opts.n or (split == "train" and 20000 or 2000)
  local gopts = { seed = opts.seed or 1, start = start, dtype = "uint8" }
  for k, v in pairs(opts) do if gen_keys[k] then gopts[k] = v end end
  local images, labels = generator().generate(n, gopts)
  local s = images:shape() -- [n, 1, 48, 48]
  local ds = data.from_memory { images = images:view(s[1], s[3], s[4], 1), labels = labels, classes = M.classes,
                                channels = opts.channels or 1, name = "synthfer", split = split }
  ds.seed = gopts.seed
  return ds
end

function M.splits(opts)
  opts = opts or {}
  local out = {}
  for _, s in ipairs(M.split_names) do
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.split = s
    out[s] = M.open(o)
  end
  return out
end

return setmetatable(M, { __call = function(_, opts) return M.open(opts) end })
