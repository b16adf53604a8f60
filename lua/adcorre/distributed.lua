--- adcorre.distributed: data-parallel training over MPI (Open MPI from
-- Debian: openmpi-bin, libopenmpi-dev). The collectives are a C binding of
-- the MPI C API in build/adcorre/distributed_core.so, an object of its own so
-- that the rest of the library runs without MPI (doc/distributed.md).
--
--   local dist = require("adcorre.distributed")
--   dist.init()                                   -- rank(), size()
--   dist.broadcast_parameters(model, 0)           -- the same start everywhere
--   dist.sync_batchnorm(model)                    -- batch statistics of the global batch
--   local loss = ac.AdCorreLoss{classes = 7, distributed = true}
--   ... forward, loss:forward/backward, model:backward ...
--   dist.allreduce_gradients(model)               -- the single-process gradient
--   opt:step()
--   dist.finalize()
--
-- Run with `mpirun -np N lua5.4 script.lua` (as root add --allow-run-as-root;
-- more ranks than cores: --oversubscribe). Every function below except rank,
-- size, launched and initialized is collective: all ranks call it in the same
-- order. MPI errors are returned as Lua errors, never aborts; dist.abort(msg)
-- ends the whole job from a rank that failed.
local ac = require("adcorre")
require("adcorre.core") -- publishes the C interface distributed_core.so uses

local ok, C = pcall(require, "adcorre.distributed_core")
if not ok then
  error("adcorre.distributed: the MPI binding (adcorre.distributed_core) could not be loaded: " .. tostring(C)
    .. "\nInstall Open MPI (Debian packages openmpi-bin and libopenmpi-dev, e.g. `make deps`) and rebuild"
    .. " with `make`, which then builds build/adcorre/distributed_core.so.", 2)
end

local M = { core = C }
local state = { rank = 0, size = 1 }

--- True when the process was started by an MPI launcher (mpirun, srun).
function M.launched()
  for _, v in ipairs({ "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK" }) do
    if os.getenv(v) then return true end
  end
  return false
end

--- Starts MPI (once; later calls return the same). Returns rank (0-based), size.
function M.init()
  state.rank, state.size = C.init()
  return state.rank, state.size
end

function M.initialized() return C.active() end
function M.rank() return state.rank end
function M.size() return state.size end
function M.host() return C.host() end

--- Ends MPI in this process (collective). Harmless when not started.
function M.finalize() C.finalize() end

--- Ends every rank of the job: prints msg (when given) to stderr with this
--- rank's number first. For a rank that cannot go on; returns only on error.
function M.abort(msg, code)
  if msg then io.stderr:write(("rank %d: %s\n"):format(state.rank, tostring(msg))) io.stderr:flush() end
  C.abort(code or 1)
end

function M.barrier() C.barrier() end

--- In place over the ranks; op "sum" (default), "mean" (float32), "max" or
--- "min". t must be contiguous. Returns t.
function M.allreduce(t, op) return C.allreduce(t, op or "sum") end

--- t of rank root to every rank, in place (t has the same shape everywhere). Returns t.
function M.broadcast(t, root) return C.broadcast(t, root or 0) end

--- A number reduced over the ranks (sum, max or min), as a float64 value
--- carried in float32: for counts and sums of statistics, not for bits.
function M.allreduce_number(x, op)
  local t = ac.tensor({ x })
  C.allreduce(t, op or "sum")
  return t[1]
end

--- Concatenation along dimension 1 of every rank's t, in rank order (a new
--- tensor). The ranks may have different sizes in dimension 1; the others
--- must agree. Returns the tensor and the per-rank sizes {n_0, n_1, ...}.
function M.allgather(t, out)
  if not ac.is_tensor(t) then error("dist.allgather: expects a tensor, got " .. type(t), 2) end
  local shape = t:shape()
  if #shape == 0 then error("dist.allgather: needs a tensor with at least one dimension", 2) end
  if not t:is_contiguous() then t = t:contiguous() end
  local rows = C.allgather_counts(shape[1])
  local row = t:numel() // math.max(shape[1], 1)
  if shape[1] == 0 then row = 1; for d = 2, #shape do row = row * shape[d] end end
  local total, elems = 0, {}
  for r, n in ipairs(rows) do total = total + n; elems[r] = n * row end
  local s = {}
  for d = 1, #shape do s[d] = shape[d] end
  s[1] = total
  if out == nil or out:size(1) ~= total then
    s[#s + 1] = t:dtype()
    out = ac.zeros(table.unpack(s))
  end
  C.allgatherv(t, out, elems)
  return out, rows
end

----------------------------------------------------------------------------
-- models
----------------------------------------------------------------------------

local function flat_grads(model, where)
  if type(model) ~= "table" or not model.getParameters then
    error(where .. ": expects a model (with getParameters), got " .. type(model), 3)
  end
  local p, g = model:getParameters()
  return p, g
end

--- After model:backward on every rank: one allreduce over the model's flat
--- gradient buffer (getParameters; the optimisers use the same buffer), so
--- every rank holds the same gradient. op "sum" (default) gives the
--- single-process gradient of the union batch when the loss is the
--- distributed one (its gradients are already those of the global batch);
--- "mean" averages per-rank losses that are each a mean over the own batch.
--- The reduction runs after the backward, not overlapped with it.
function M.allreduce_gradients(model, op)
  local _, g = flat_grads(model, "dist.allreduce_gradients")
  if op ~= nil and op ~= "sum" and op ~= "mean" then
    error("dist.allreduce_gradients: op must be \"sum\" or \"mean\", got " .. tostring(op), 2)
  end
  if g:numel() > 0 then C.allreduce(g, op or "sum") end
  return g
end

--- The parameters and buffers (running statistics) of rank root on every
--- rank: one broadcast of the flat parameter buffer and one per buffer.
function M.broadcast_parameters(model, root)
  local p = flat_grads(model, "dist.broadcast_parameters")
  root = root or 0
  if p:numel() > 0 then C.broadcast(p, root) end
  if model.namedBuffers then
    for _, e in ipairs(model:namedBuffers()) do
      local t = e.tensor
      if t:is_contiguous() then C.broadcast(t, root)
      else
        local c = t:contiguous()
        C.broadcast(c, root)
        t:copy(c)
      end
    end
  end
  return model
end

--- Batch-norm layers of model take their training statistics, and the
--- gradients through them, over the global batch (adcorre.distributed_bn).
--- Returns the number of layers changed.
function M.sync_batchnorm(model)
  return require("adcorre.distributed_bn").convert(model, M)
end

--- The slice of an epoch of n samples that this rank takes: the options for
--- ac.data.Loader (shard = {rank, size}); see doc/distributed.md.
function M.shard() return { state.rank, state.size } end

return M
