--- adcorre: tensors, layers, the Ad-Corre loss and data tools for facial
-- expression recognition, with C kernels on OpenBLAS.
--
--   local ac = require("adcorre")
--   local x = ac.randn(2, 3)
--   print(x:sum(2))
--
-- The C half lives in `adcorre.core`; this file adds the Lua-level tensor
-- helpers and loads the larger areas (nn, models, optim, data, ...) lazily on
-- first use.
local core = require("adcorre.core")

-- The public C functions become ac.*: the tensor constructors and controls,
-- the operators, .npy I/O, linalg and a few named ones. The other areas
-- (core.nn, core.loss, core.optim, ...) are the kernels behind the Lua
-- modules and stay in adcorre.core.
local ac = {}
for _, area in ipairs({ core.tensor, core.ops }) do
  for k, v in pairs(area) do
    if type(v) == "function" then ac[k] = v end
  end
end
ac.load_npy, ac.save_npy = core.io.load_npy, core.io.save_npy
ac.linalg = core.linalg
ac.corrcoef = core.loss.corrcoef
ac.arena_stats, ac.arena_trim = core.nn.arena_stats, core.nn.arena_trim

--- The processor and BLAS as the library sees them: {isa, avx2, avx512f,
-- l1d_bytes, l2_bytes, blas_core, blas_core_isa, blas_advice, threads}.
function ac.config()
  local c = core.cpu.config()
  c.threads = ac.get_num_threads()
  return c
end
-- Said once, at the first require: OpenBLAS running older kernels than the CPU has.
do
  local advice = core.cpu.config().blas_advice
  if advice then io.stderr:write("adcorre: ", advice, "\n") end
end

local methods = core.tensor.methods
ac.Tensor = methods          -- the method table of every tensor (add methods here)
ac._Tensor_mt = core.tensor.mt
ac.version = "0.1.0"

local is_tensor = core.tensor.is_tensor
local unpack = table.unpack

-- Canonical FER class order (1-based), the one every data set is mapped to.
ac.classes = { "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt" }

----------------------------------------------------------------------------
-- Tensor helpers written in Lua
----------------------------------------------------------------------------

--- Joins tensors along dimension `dim` (1-based, default 1).
function ac.cat(list, dim)
  dim = dim or 1
  if type(list) ~= "table" or #list == 0 then
    error("cat: expects a non-empty array of tensors", 2)
  end
  local first = list[1]
  if not is_tensor(first) then error("cat: element 1 is not a tensor", 2) end
  local nd = first:dim()
  if dim < 0 then dim = dim + nd + 1 end
  if dim < 1 or dim > nd then
    error(("cat: dimension %d out of range for %d-d tensors"):format(dim, nd), 2)
  end
  local shape = first:shape()
  local total = 0
  for i, t in ipairs(list) do
    if not is_tensor(t) then error(("cat: element %d is not a tensor"):format(i), 2) end
    local s = t:shape()
    if #s ~= nd then
      error(("cat: element %d has %d dimensions, element 1 has %d"):format(i, #s, nd), 2)
    end
    for d = 1, nd do
      if d ~= dim and s[d] ~= shape[d] then
        error(("cat: element %d has size %d in dimension %d, element 1 has %d"):format(i, s[d], d, shape[d]), 2)
      end
    end
    total = total + s[dim]
  end
  shape[dim] = total
  shape[#shape + 1] = first:dtype()
  local out = ac.zeros(unpack(shape))
  local pos = 1
  for _, t in ipairs(list) do
    local n = t:size(dim)
    if n > 0 then out:narrow(dim, pos, n):copy(t) end
    pos = pos + n
  end
  return out
end

--- Stacks equally shaped tensors along a new dimension `dim` (default 1).
function ac.stack(list, dim)
  dim = dim or 1
  local views = {}
  for i, t in ipairs(list) do
    if not is_tensor(t) then error(("stack: element %d is not a tensor"):format(i), 2) end
    views[i] = t:unsqueeze(dim)
  end
  return ac.cat(views, dim)
end

--- Gathers rows: out[i] = t[idx[i]] along dimension 1 (idx: int64 tensor or Lua array, 1-based).
function methods.index_select(t, dim, idx)
  if type(idx) == "table" then idx = ac.tensor(idx, "int64") end
  local shape = t:shape()
  local n = idx:numel()
  shape[dim] = n
  shape[#shape + 1] = t:dtype()
  local out = ac.zeros(unpack(shape))
  local flat = idx:view(-1)
  for i = 1, n do
    out:select(dim, i):copy(t:select(dim, flat[i]))
  end
  return out
end

function methods.equal(a, b)
  if not is_tensor(b) then return false end
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  if a:numel() == 0 then return true end
  return a:ne(b):sum() == 0
end

function methods.allclose(a, b, rtol, atol)
  rtol, atol = rtol or 1e-5, atol or 1e-8
  local diff = (a - b):abs()
  local tol = b:abs() * rtol + atol
  return diff:gt(tol):sum() == 0
end

--- t:apply_(fn): calls fn(value) for each element and stores its result (slow; for small tensors).
function methods.apply_(t, fn)
  local flat = t:view(-1)
  for i = 1, #flat do
    local v = fn(flat[i])
    if v ~= nil then flat[i] = v end
  end
  return t
end

methods.nElement = methods.numel

----------------------------------------------------------------------------
-- Lazily loaded areas
----------------------------------------------------------------------------

local lazy = {
  nn = "adcorre.nn",
  models = "adcorre.models",
  optim = "adcorre.optim",
  image = "adcorre.image",
  augment = "adcorre.augment",
  data = "adcorre.data",
  metrics = "adcorre.metrics",
  plot = "adcorre.plot",
  synthfer = "adcorre.synthfer",
  json = "adcorre.json",
  onnx = "adcorre.onnx",
  face = "adcorre.face",
  AdCorreLoss = "adcorre.loss",
  keras = "adcorre.keras",
  linalg = false,  -- from core
}

local lazy_fields = {
  save = { "adcorre.serialize", "save" },
  load = { "adcorre.serialize", "load" },
  load_weights = { "adcorre.serialize", "load_weights" },
  save_tensors = { "adcorre.serialize", "save_tensors" },
  load_tensors = { "adcorre.serialize", "load_tensors" },
  save_checkpoint = { "adcorre.serialize", "save_checkpoint" },
  load_checkpoint = { "adcorre.serialize", "load_checkpoint" },
}

setmetatable(ac, {
  __index = function(t, k)
    local mod = lazy[k]
    if mod then
      local v = require(mod)
      rawset(t, k, v)
      return v
    end
    local f = lazy_fields[k]
    if f then
      local v = require(f[1])[f[2]]
      rawset(t, k, v)
      return v
    end
    return nil
  end,
})

package.loaded["adcorre"] = ac
return ac
