--- adcorre.distributed_train: what examples/train.lua needs to run on MPI
-- ranks (adcorre.distributed): launch detection, the per-rank shards of the
-- loaders, the same start and synchronised batch norms on every rank, the
-- gradient allreduce after each backward, and the merge of each epoch's
-- confusion, loss sums and image counts. Only rank 0 prints and writes.
--
--   local D = require("adcorre.distributed_train").start(args)   -- nil: one process
--   if D then D:prepare(model); trainer_opts = D:trainer_opts(trainer_opts, loss) end
local M = {}

--- True when the process was started by an MPI launcher (mpirun, srun with
--- PMI/PMIx) with more than one rank, or when --distributed was given.
function M.wanted(args)
  if args.distributed then return true end
  local n = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMI_SIZE") or os.getenv("SLURM_NTASKS") or "")
  if os.getenv("PMIX_RANK") and not n then return true end
  return n ~= nil and n > 1
end

local D = {}
D.__index = D

--- Starts MPI when wanted; returns the run's distributed state or nil.
function M.start(args)
  if not M.wanted(args) then return nil end
  local dist = require("adcorre.distributed")
  local rank, size = dist.init()
  if args.skip_nonfinite then
    error("--skip-nonfinite is not available in a distributed run (a batch skipped on one rank would leave the "
      .. "others waiting in the loss's allgather)", 0)
  end
  return setmetatable({ dist = dist, rank = rank, size = size, root = rank == 0 }, D)
end

--- The loader shard of this rank: training shards are padded to equal
--- length (every rank runs the same number of steps), evaluation shards
--- cover the split exactly once.
function D:shard(train) return { self.rank, self.size, pad = train } end

--- The learning rate after --lr-scale (linear: times the number of ranks).
function D:lr(args)
  if args.lr_scale == "linear" then return args.lr * self.size end
  return args.lr
end

--- The same parameters and buffers as rank 0, batch norms over the global batch.
function D:prepare(model)
  self.dist.broadcast_parameters(model, 0)
  self.bn_layers = self.dist.sync_batchnorm(model)
  return model
end

local SUM_KEYS = { "total", "ce", "fd", "md", "ed", "loss" }

--- Merges an epoch's confusion counts, loss sums and image count over the
--- ranks (two allreduces); returns the global image count.
function D:reduce(conf, sums, n)
  local ac = require("adcorre")
  local m = conf:matrix()
  self.dist.allreduce(m, "sum")
  local C, total = conf.C, 0
  for i = 1, C do
    for j = 1, C do
      conf.M[i][j] = m[i][j]
      total = total + m[i][j]
    end
  end
  conf.total = total
  local v = ac.zeros(#SUM_KEYS + 1, "float32")
  for i, k in ipairs(SUM_KEYS) do v[i] = sums[k] or 0 end
  v[#SUM_KEYS + 1] = n
  self.dist.allreduce(v, "sum")
  for i, k in ipairs(SUM_KEYS) do if sums[k] ~= nil then sums[k] = v[i] end end
  return math.tointeger(math.floor(v[#SUM_KEYS + 1] + 0.5))
end

--- The trainer options of a distributed run: the allreduce after every
--- backward; evaluation with the per-rank loss (its shards may differ by a
--- batch, and the global-batch loss would wait for the missing one), merged
--- by reduce.
function D:trainer_opts(opts, loss)
  local dist = self.dist
  opts.after_backward = function(model) dist.allreduce_gradients(model) end
  opts.eval_loss = loss.inner or loss
  opts.reduce = function(conf, sums, n) return self:reduce(conf, sums, n) end
  return opts
end

function D:describe(args)
  return ("distributed: %d ranks x batch %d = global batch %d; lr %g%s; %d batch norms synchronised"):format(
    self.size, args.batch, self.size * args.batch, self:lr(args),
    args.lr_scale == "linear" and (" (--lr-scale linear: %g x %d)"):format(args.lr, self.size) or "",
    self.bn_layers or 0)
end

function D:finish() self.dist.finalize() end

return M
