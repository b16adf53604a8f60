--- adcorre.distributed_loss: ac.AdCorreLoss{..., distributed = true}, the
-- Ad-Corre loss of the GLOBAL batch under MPI (adcorre.distributed).
--
-- forward(logits, embeddings, labels) on every rank with its own rows:
--   1. one allgather of each rank's (rows, C, k, d): the shapes are checked
--      against each other, so a mismatch is the same error on every rank;
--   2. one allgatherv of a packed [b, C + k d + 1] float32 block per rank
--      (logits, the k embeddings, the label; labels are exact in float32
--      below 2^24), into the global [B, C + k d + 1] in rank order;
--   3. the ordinary loss (adcorre.loss) on the B global rows: CE, FD, MD and
--      ED of the union batch, identical on every rank; in training mode the
--      confusion history records all B predictions, so the adaptive weights
--      are the same everywhere (the history is merged by construction).
-- backward() returns the rows of the global gradient that belong to this
-- rank (contiguous views): the exact gradient of the global loss with
-- respect to the own rows. Summing the parameter gradients over the ranks
-- (dist.allreduce_gradients, op "sum") gives the single-process gradient.
--
-- The loss itself is evaluated redundantly on every rank: O(B^2 k d) for FD
-- with B the global batch (doc/distributed.md gives the cost and the bytes).
local ac = require("adcorre")

local M = {}
local DistLoss = {}
DistLoss.__name = "ac.AdCorreLoss(distributed)"

local function dist_error(msg, ...)
  error("AdCorreLoss (distributed): " .. string.format(msg, ...), 3)
end

--- Called by AdCorreLoss.new when opts.distributed is set.
function M.new(AdCorreLoss, opts)
  if type(opts.distributed) ~= "boolean" then
    error("AdCorreLoss: option 'distributed' must be a boolean, got " .. type(opts.distributed), 3)
  end
  local o = {}
  for k, v in pairs(opts) do if k ~= "distributed" then o[k] = v end end
  local inner = AdCorreLoss.new(o)
  if not opts.distributed then return inner end
  local dist = require("adcorre.distributed")
  if not dist.initialized() then dist.init() end
  local self = setmetatable({ inner = inner, dist = dist, config = inner.config, stats = inner.stats,
                              train = inner.train, distributed = true }, DistLoss)
  return self
end

DistLoss.__index = function(self, k)
  local v = rawget(DistLoss, k)
  if v ~= nil then return v end
  -- every other method of AdCorreLoss acts on the global loss inside
  local f = rawget(self, "inner")[k]
  if type(f) == "function" then
    local g = function(s, ...) return f(s.inner, ...) end
    rawset(DistLoss, k, g)
    return g
  end
  return f
end

local function as_labels(labels, b)
  if type(labels) == "table" and not ac.is_tensor(labels) then
    local ok, t = pcall(ac.tensor, labels, "int64")
    if not ok then dist_error("labels are not an array of integers: %s", tostring(t)) end
    labels = t
  end
  if not ac.is_tensor(labels) then dist_error("labels must be an integer tensor or a Lua array, got %s", type(labels)) end
  if labels:numel() ~= b then dist_error("labels has %d entries, logits has %d rows", labels:numel(), b) end
  return labels:view(-1)
end

--- total, parts = loss:forward(logits [b, C], {E_1 .. E_k} [b, d], labels [b]) on each rank's rows.
function DistLoss:forward(logits, embeddings, labels)
  if getmetatable(self) ~= DistLoss then
    error("AdCorreLoss:forward: call it as loss:forward(logits, embeddings, labels)", 2)
  end
  if not ac.is_tensor(logits) or logits:dim() ~= 2 then dist_error("logits must be a [B, C] tensor") end
  if type(embeddings) ~= "table" or #embeddings == 0 then dist_error("embeddings must be an array of [B, d] tensors") end
  local b, C = logits:size(1), logits:size(2)
  local k, d = #embeddings, embeddings[1]:dim() == 2 and embeddings[1]:size(2) or -1
  for j, e in ipairs(embeddings) do
    if not ac.is_tensor(e) or e:dim() ~= 2 or e:size(1) ~= b or e:size(2) ~= d then
      dist_error("embedding %d must be [%d, %d] like embedding 1 and the logits' rows", j, b, d)
    end
  end
  local y = as_labels(labels, b)
  local dist = self.dist
  local R, rank = dist.size(), dist.rank()
  -- 1. every rank's shape, checked everywhere
  local meta = self._meta or ac.zeros(4, "int64")
  self._meta = meta
  meta[1], meta[2], meta[3], meta[4] = b, C, k, d
  local all = dist.allgather(meta:view(1, 4))
  local off, B = 0, 0
  local c0, k0, d0 = all[1][2], all[1][3], all[1][4]
  for r = 1, R do
    local rb, rc, rk, rd = all[r][1], all[r][2], all[r][3], all[r][4]
    if rc ~= c0 or rk ~= k0 or rd ~= d0 then
      dist_error("rank 0 has logits [%d, %d] and %d embeddings of %d, rank %d has [%d, %d] and %d of %d",
        all[1][1], c0, k0, d0, r - 1, rb, rc, rk, rd)
    end
    if r - 1 < rank then off = off + rb end
    B = B + rb
  end
  -- 2. one block per rank
  local W = C + k * d + 1
  local pack = self._pack
  if not pack or pack:size(1) ~= b or pack:size(2) ~= W then
    pack = ac.zeros(b, W)
    self._pack = pack
  end
  if b > 0 then
    pack:narrow(2, 1, C):copy(logits)
    for j, e in ipairs(embeddings) do pack:narrow(2, C + (j - 1) * d + 1, d):copy(e) end
    pack:select(2, W):copy(y)
  end
  local g = self._gathered
  if not g or g:size(1) ~= B or g:size(2) ~= W then g = ac.zeros(B, W); self._gathered = g end
  local counts = {}
  for r = 1, R do counts[r] = all[r][1] * W end
  dist.core.allgatherv(pack, g, counts)
  -- 3. the loss of the global batch
  local Z = self._Z
  if not Z or Z:size(1) ~= B or Z:size(2) ~= C then
    Z = ac.zeros(B, C)
    self._Z, self._E, self._y = Z, {}, ac.zeros(B, "int64")
    for j = 1, k do self._E[j] = ac.zeros(B, d) end
  end
  local E = self._E
  for j = #E + 1, k do E[j] = ac.zeros(B, d) end
  for j = #E, k + 1, -1 do E[j] = nil end
  Z:copy(g:narrow(2, 1, C))
  for j = 1, k do E[j]:copy(g:narrow(2, C + (j - 1) * d + 1, d)) end
  self._y:copy(g:select(2, W))
  self._off, self._b, self._B = off, b, B
  self.inner.train = self.train
  local total, parts = self.inner:forward(Z, E, self._y)
  self.output = total
  return total, parts
end
DistLoss.updateOutput = DistLoss.forward

--- gradLogits [b, C], gradEmbeddings {[b, d] x k}: this rank's rows of the
--- gradient of the global loss (views of the loss's buffers).
function DistLoss:backward()
  if getmetatable(self) ~= DistLoss then error("AdCorreLoss:backward: call it as loss:backward()", 2) end
  local gZ, gE = self.inner:backward()
  local off, b = self._off, self._b
  local oE = {}
  for j, e in ipairs(gE) do oE[j] = e:narrow(1, off + 1, b) end
  self.gradLogits, self.gradEmbeddings = gZ:narrow(1, off + 1, b), oE
  return self.gradLogits, self.gradEmbeddings
end
DistLoss.updateGradInput = DistLoss.backward

function DistLoss:training() self.train = true; self.inner:training(); return self end
function DistLoss:evaluate() self.train = false; self.inner:evaluate(); return self end

function DistLoss:__tostring()
  return tostring(self.inner):gsub("}$", ", distributed=true}")
end

return M
