--- adcorre.data.loader: batches of [N, C, H, W] float32 images and int64
-- labels, shuffled per epoch, decoded, resized and augmented by C worker
-- threads ahead of the training loop.
--
--   local loader = ac.data.Loader(ds, {batch = 64, augment = "standard", workers = 2, seed = 1})
--   for epoch = 1, 10 do
--     for x, y, n in loader:epoch() do ... end   -- x, y are reused: clone to keep
--   end
--   loader:close()                               -- or let it be collected
--
-- Options: batch (32), shuffle (true), workers (2; 0 = in the caller),
-- prefetch (batches held ready, default 2 x workers), augment (preset name,
-- op list or Compose; default none), size (number or {h, w}; default the
-- data set's size, or the first image's), channels (default the data set's),
-- balanced (class-balanced sampling with replacement), epoch_size (samples
-- per balanced epoch, default #ds), drop_last, seed (default drawn from the
-- library generator), skip_bad (an unreadable image is replaced by the next
-- sample in order and counted; a warning is printed after the epoch),
-- shard ({rank, size [, pad = true]}: data-parallel training takes this
-- rank's slice of every epoch's order; see ac_loader_opts in
-- csrc/data/loader.h and doc/distributed.md).
--
-- Determinism: sample p of epoch e is augmented with a generator forked
-- from (seed, e, p), and the order is drawn from (seed, e); the batches are
-- the same for any number of workers.
local core = require("adcorre.core")
local data = require("adcorre.data")
local augment = require("adcorre.augment")

local M = {}

local Loader = {}
Loader.__index = Loader
Loader.__name = "adcorre.data.Loader"

local known = { batch = true, shuffle = true, workers = true, prefetch = true, augment = true, size = true,
                channels = true, balanced = true, epoch_size = true, drop_last = true, seed = true,
                skip_bad = true, shard = true }

local function int_opt(opts, key, default, lo)
  local v = opts[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" then
    if type(v) == "number" and v == math.floor(v) then v = math.tointeger(v)
    else error(("Loader: option '%s' must be an integer, got %s"):format(key, tostring(v)), 4) end
  end
  if v < lo then error(("Loader: option '%s' must be >= %d, got %d"):format(key, lo, v), 4) end
  return v
end

function M.Loader(ds, opts)
  opts = opts or {}
  if type(ds) ~= "table" or (ds.source == nil and type(ds.get) ~= "function") then
    error("Loader: expects a data set (from ac.data) as first argument", 2)
  end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(("Loader: unknown option '%s' (known: %s)"):format(tostring(k), table.concat(names, ", ")), 2)
    end
  end
  if #ds == 0 then error("Loader: the data set is empty", 2) end
  local self = setmetatable({}, Loader)
  self.ds = ds
  self.batch = int_opt(opts, "batch", 32, 1)
  self.workers = int_opt(opts, "workers", 2, 0)
  self.channels = int_opt(opts, "channels", ds.channels or 1, 1)
  local h, w
  if type(opts.size) == "number" then h, w = opts.size, opts.size
  elseif type(opts.size) == "table" then h, w = opts.size[1], opts.size[2]
  elseif ds.height and ds.width then h, w = ds.height, ds.width
  elseif ds.source then
    local _, h1, w1 = ds.source:size(1)
    h, w = h1, w1
  else
    local img = ds:get(1)
    local s = img:shape()
    h, w = s[#s - 1], s[#s]
  end
  self.height, self.width = math.tointeger(h), math.tointeger(w)
  if not self.height or not self.width or self.height < 1 or self.width < 1 then
    error(("Loader: size must be positive integers, got %s x %s"):format(tostring(h), tostring(w)), 2)
  end
  local shard = opts.shard
  if shard ~= nil then
    local r, n = type(shard) == "table" and math.tointeger(shard[1]), type(shard) == "table" and math.tointeger(shard[2])
    if not r or not n or n < 1 or r < 0 or r >= n then
      error("Loader: option 'shard' must be {rank, size} with 0 <= rank < size, got " .. tostring(shard), 2)
    end
    self.shard = { rank = r, size = n, pad = shard.pad ~= false }
  end
  self.augment = augment.resolve(opts.augment)
  self.seed = opts.seed
  self.shuffle = opts.shuffle ~= false
  self.epoch_count = 0
  self.skipped_reported = 0
  self.x = core.tensor.zeros(self.batch, self.channels, self.height, self.width)
  self.y = core.tensor.zeros(self.batch, "int64")
  if ds.source then
    self.c_loader = core.data.loader_new(ds.source, {
      batch = self.batch, workers = self.workers, prefetch = opts.prefetch, shuffle = self.shuffle,
      drop_last = opts.drop_last, balanced = opts.balanced, epoch_size = opts.epoch_size,
      skip_bad = opts.skip_bad, channels = self.channels, height = self.height, width = self.width,
      seed = opts.seed, shard_rank = self.shard and self.shard.rank, shard_count = self.shard and self.shard.size,
      shard_pad = self.shard and self.shard.pad }, self.augment.pipeline)
    self.nb = self.c_loader:nbatches()
  else
    -- a data set written in Lua (only ds:get): batches are built in the caller
    self.lua_seed = opts.seed or math.floor(core.tensor.rand(1)[1] * 2 ^ 52)
    self.drop_last = opts.drop_last
    local n = #ds
    if self.shard then
      local S, r = self.shard.size, self.shard.rank
      n = self.shard.pad and (n + S - 1) // S or (n > r and (n - r + S - 1) // S or 0)
    end
    self.lua_len = n
    self.nb = n // self.batch + ((not opts.drop_last and n % self.batch ~= 0) and 1 or 0)
  end
  return self
end

Loader.__len = function(self) return self.nb end

--- Number of batches per epoch.
function Loader:nbatches() return self.nb end

--- Samples replaced because they could not be read (skip_bad).
function Loader:skipped() return self.c_loader and self.c_loader:skipped() or 0 end

local function lua_epoch(self, e)
  local ds, n, bs = self.ds, #self.ds, self.batch
  local order = {}
  for i = 1, n do order[i] = i end
  if self.shuffle then
    local rng_state = (self.lua_seed * 1000003 + e) % math.maxinteger
    math.randomseed(rng_state)
    for i = n, 2, -1 do
      local j = math.random(1, i)
      order[i], order[j] = order[j], order[i]
    end
  end
  local b, len, sh = 0, self.lua_len, self.shard
  return function()
    if b >= self.nb then return nil end
    local start = b * bs
    local count = math.min(bs, len - start)
    for j = 1, count do
      local p = start + j - 1                                 -- 0-based shard position
      if sh then p = (sh.rank + p * sh.size) % n end          -- its place in the epoch's order
      local img, label = ds:get(order[p + 1])
      local s = img:shape()
      if #s == 2 then img = img:view(1, s[1], s[2]); s = img:shape() end
      if s[1] ~= self.channels then img = require("adcorre.image").to_channels(img, self.channels) end
      if s[2] ~= self.height or s[3] ~= self.width then img = core.image.resize(img, self.height, self.width) end
      self.x[j]:copy(img)
      self.y[j] = label
    end
    local xb = count < bs and self.x:narrow(1, 1, count) or self.x
    local yb = count < bs and self.y:narrow(1, 1, count) or self.y
    if #self.augment > 0 then
      local target = xb:is_contiguous() and xb or xb:contiguous()
      core.augment.apply(self.augment.pipeline, target, self.lua_seed, (e << 40) + start)
      if target ~= xb then xb:copy(target) end
    end
    b = b + 1
    return xb, yb, count
  end
end

--- Iterates one epoch: for x, y, n in loader:epoch() do ... end. The epoch
-- number defaults to the next one (1, 2, ...); pass it to resume a run.
-- x [batch, C, H, W] and y [batch] are overwritten by the next batch (the
-- last batch of an epoch may be shorter: narrowed views of n samples).
function Loader:epoch(e)
  if self.closed then error("Loader: closed", 2) end
  e = e or (self.epoch_count + 1)
  self.epoch_count = e
  if not self.c_loader then return lua_epoch(self, e) end
  local cl = self.c_loader
  cl:start_epoch(e)
  local x, y, bs = self.x, self.y, self.batch
  return function()
    local n = cl:next(x, y)
    if n == 0 then
      local sk = cl:skipped()
      if sk > self.skipped_reported then
        data.util.warn_skipped("Loader", sk - self.skipped_reported, "unreadable images replaced by the next sample")
        self.skipped_reported = sk
      end
      return nil
    end
    if n < bs then return x:narrow(1, 1, n), y:narrow(1, 1, n), n end
    return x, y, n
  end
end
Loader.iter = Loader.epoch

--- Stops and joins the worker threads (also done when the loader is collected).
function Loader:close()
  if self.c_loader then self.c_loader:close() end
  self.closed = true
end
Loader.__close = Loader.close
Loader.__gc = Loader.close

Loader.__tostring = function(self)
  return ("adcorre.data.Loader(batch=%d, batches=%d, workers=%d, image=%dx%dx%d, augment=%s)"):format(self.batch,
    self.nb, self.workers, self.channels, self.height, self.width, tostring(self.augment))
end

return M
