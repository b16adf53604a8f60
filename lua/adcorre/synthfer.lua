--- adcorre.synthfer: a procedural facial-expression data set made by the
-- library itself (48x48 grey faces, the 7 canonical classes), so training
-- runs on a machine with no downloaded data. See doc/synthfer.md.
--
--   local ac = require("adcorre")
--   local x, y = ac.synthfer.generate(20000, {seed = 1})   -- [N,1,48,48] float in [0,1], int64 1..7
--   ac.synthfer.write_csv("synth/fer2013.csv", {seed = 1, train = 20000, public = 2000, private = 2000})
--   ac.synthfer.preview("faces.png", {per_class = 10})
--
-- Sample i (1-based) of the set with seed s is a pure function of (s, i,
-- options): the same images whatever the thread count or chunking.
local core = require("adcorre.core")

local M = {}

--- Canonical class names, class 1..7.
M.classes = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger" }
--- FER-2013 emotion code of each canonical class (0 Angry, 1 Disgust, 2 Fear,
-- 3 Happy, 4 Sad, 5 Surprise, 6 Neutral).
M.fer_codes = { 6, 3, 4, 5, 2, 1, 0 }
--- Image side.
M.size = 48

-- Keys of the generator itself; everything else in an options table is
-- either an API key of the calling function or a mistake.
local GEN_KEYS = { difficulty = true, max_rotation = true, occlusion = true, noise = true, blur = true }

--- The default generator options: {difficulty=1, max_rotation=20,
-- occlusion=0.25, noise=0.04, blur=0.3}.
function M.defaults()
  return core.synthfer.defaults()
end

-- Splits opts into generator options and the API keys `allowed`; unknown
-- keys raise an error naming the function.
local function split_opts(fname, opts, allowed)
  if opts == nil then return {}, {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(fname, type(opts)), 3)
  end
  local gen, api = {}, {}
  for k, v in pairs(opts) do
    if GEN_KEYS[k] then
      if type(v) ~= "number" then
        error(("%s: option '%s' must be a number, got %s"):format(fname, k, type(v)), 3)
      end
      gen[k] = v
    elseif allowed[k] then
      api[k] = v
    else
      local names = {}
      for name in pairs(GEN_KEYS) do names[#names + 1] = name end
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      error(("%s: unknown option '%s' (known: %s)"):format(fname, tostring(k), table.concat(names, ", ")), 3)
    end
  end
  return gen, api
end

-- Calls a C function; its error is re-raised at the caller of the API
-- function (level 3), without the position inside this file.
local function ccall(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if not res[1] then
    local msg = tostring(res[2]):gsub("^[^\n]-%.lua:%d+: ", "", 1)
    error(msg, 3)
  end
  return table.unpack(res, 2, res.n)
end

local function check_int(fname, what, v, lo)
  if math.type(v) ~= "integer" then
    if type(v) == "number" and v == math.floor(v) then
      v = math.tointeger(v)
    else
      error(("%s: '%s' must be an integer, got %s"):format(fname, what,
        type(v) == "number" and tostring(v) or type(v)), 3)
    end
  end
  if v < lo then error(("%s: '%s' must be >= %d, got %d"):format(fname, what, lo, v), 3) end
  return v
end

local function check_seed(fname, seed)
  if seed == nil then return nil end
  if math.type(seed) ~= "integer" then
    error(("%s: 'seed' must be an integer, got %s"):format(fname,
      type(seed) == "number" and tostring(seed) or type(seed)), 3)
  end
  return seed
end

--- generate(n [, opts]) -> images, labels
-- images: [n, 1, 48, 48] float32 in [0, 1] (opts.dtype = "uint8": 0..255);
-- labels: int64 [n], canonical classes 1..7, exactly balanced per block of 7.
-- opts: seed (integer; default: drawn from the generator set by
-- ac.manual_seed), start (index of the first sample, 1-based, default 1),
-- dtype, and the generator options (see defaults()). Also callable as
-- generate{n = ..., seed = ...}.
function M.generate(n, opts)
  if type(n) == "table" and opts == nil then
    opts = {}
    for k, v in pairs(n) do opts[k] = v end
    n = opts.n
    opts.n = nil
  end
  n = check_int("synthfer.generate", "n", n, 0)
  local gen, api = split_opts("synthfer.generate", opts, { seed = true, start = true, dtype = true })
  local seed = check_seed("synthfer.generate", api.seed)
  local start = check_int("synthfer.generate", "start", api.start or 1, 1)
  local dtype = api.dtype or "float32"
  if dtype ~= "float32" and dtype ~= "uint8" then
    error(("synthfer.generate: dtype must be \"float32\" or \"uint8\", got %s"):format(tostring(dtype)), 2)
  end
  return ccall(core.synthfer.generate, n, seed, start - 1, gen, dtype)
end

--- label(seed, i) -> the class (1..7) of sample i (1-based) of the set with this seed.
function M.label(seed, i)
  if seed == nil then error("synthfer.label: 'seed' is required", 2) end
  check_seed("synthfer.label", seed)
  i = check_int("synthfer.label", "i", i, 1)
  return core.synthfer.label(seed, i - 1)
end

--- render(label [, opts]) -> image [1, 48, 48] float32: sample opts.index
-- (1-based, default 1) of the set opts.seed (default 0) drawn as class
-- `label` (1..7) whatever its own label is.
function M.render(label, opts)
  local gen, api = split_opts("synthfer.render", opts, { seed = true, index = true })
  label = check_int("synthfer.render", "label", label, 1)
  if label > 7 then error(("synthfer.render: 'label' must be a class in 1..7, got %d"):format(label), 2) end
  local index = check_int("synthfer.render", "index", api.index or 1, 1)
  return ccall(core.synthfer.render, check_seed("synthfer.render", api.seed) or 0, index - 1, label, gen)
end

--- fer_code(label) -> FER-2013 emotion code of canonical class `label`.
function M.fer_code(label)
  return ccall(core.synthfer.fer_code, label)
end

--- write_csv(path [, opts]) -> info
-- Writes a fer2013.csv (header `emotion,pixels,Usage`): opts.train rows of
-- Training, opts.public of PublicTest, opts.private of PrivateTest (defaults
-- 28709 / 3589 / 3589, the FER-2013 sizes), samples 1.. of the set opts.seed
-- in that order (so the splits hold different faces). The file is written
-- to a temporary name and renamed. info = {path, seed, train, public,
-- private, rows, counts = {[usage] = {[class name] = count}}}.
function M.write_csv(path, opts)
  if type(path) ~= "string" then
    error(("synthfer.write_csv: 'path' must be a string, got %s"):format(type(path)), 2)
  end
  local gen, api = split_opts("synthfer.write_csv", opts,
    { seed = true, train = true, public = true, private = true, start = true })
  local ntr = check_int("synthfer.write_csv", "train", api.train or 28709, 0)
  local npub = check_int("synthfer.write_csv", "public", api.public or 3589, 0)
  local npriv = check_int("synthfer.write_csv", "private", api.private or 3589, 0)
  local start = check_int("synthfer.write_csv", "start", api.start or 1, 1)
  local seed = check_seed("synthfer.write_csv", api.seed)
  if seed == nil then seed = core.synthfer.seed() end
  local n = ntr + npub + npriv
  if n < 1 then error("synthfer.write_csv: no rows requested (train + public + private = 0)", 2) end
  local pixels, labels = ccall(core.synthfer.generate, n, seed, start - 1, gen, "uint8")
  local usage = core.tensor.zeros(n, "uint8")
  if npub > 0 then usage:narrow(1, ntr + 1, npub):fill(1) end
  if npriv > 0 then usage:narrow(1, ntr + npub + 1, npriv):fill(2) end
  ccall(core.synthfer.write_csv, path, pixels, labels, usage)
  local counts = { Training = {}, PublicTest = {}, PrivateTest = {} }
  for _, u in pairs(counts) do for _, c in ipairs(M.classes) do u[c] = 0 end end
  local lab = labels:totable()
  for i = 1, n do
    local u = i <= ntr and "Training" or (i <= ntr + npub and "PublicTest" or "PrivateTest")
    local c = M.classes[lab[i]]
    counts[u][c] = counts[u][c] + 1
  end
  return { path = path, seed = seed, train = ntr, public = npub, private = npriv, rows = n, counts = counts }
end

--- save_grid(path, images [, cols]) writes images [N, 1, H, W] or [N, H, W]
-- (float32 in [0,1]) as one PNG grid, `cols` per row (default 8).
function M.save_grid(path, images, cols)
  if type(path) ~= "string" then
    error(("synthfer.save_grid: 'path' must be a string, got %s"):format(type(path)), 2)
  end
  ccall(core.synthfer.write_grid, path, images, cols or 8)
end

--- preview(path [, opts]) writes a PNG grid with one row per class
-- (Neutral .. Anger, top to bottom) of opts.per_class samples (default 8) of
-- the set opts.seed (default 0), with the generator options in opts.
function M.preview(path, opts)
  local gen, api = split_opts("synthfer.preview", opts, { seed = true, per_class = true })
  local per = check_int("synthfer.preview", "per_class", api.per_class or 8, 1)
  local seed = check_seed("synthfer.preview", api.seed) or 0
  local grid = core.tensor.zeros(7 * per, 1, 48, 48)
  for c = 1, 7 do
    for j = 1, per do
      grid[(c - 1) * per + j]:copy(core.synthfer.render(seed, (c - 1) * per + j - 1, c, gen))
    end
  end
  M.save_grid(path, grid, per)
  return grid
end

return M
