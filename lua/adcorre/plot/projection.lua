--- adcorre.plot.projection: PCA and t-SNE of embeddings, and the scatter
-- plot of either.
local core = require("adcorre.core")
local C = core.plot
local fmt = string.format
local max, min, abs = math.max, math.min, math.abs
local is_tensor = core.tensor.is_tensor
local u = require("adcorre.plot.util")
local scatter = require("adcorre.plot.scatter")
local check_path = u.check_path
local check_opts = u.check_opts
local check_names = u.check_names
local to_labels = scatter.to_labels

local function ac() return require("adcorre") end

local plot = { scatter = scatter.scatter }

local function check_X(fname, X)
  if not is_tensor(X) then error(fmt("%s: X must be a tensor [N, D], got %s", fname, type(X)), 3) end
  if X:dim() ~= 2 then
    error(fmt("%s: X must be 2-d [N, D], got shape [%s]", fname, table.concat(X:shape(), ", ")), 3)
  end
  return X:float()
end

--- pca(X [N,D], k) -> [N,k] projections on the k leading principal axes
-- (each axis' sign fixed so that its largest loading is positive), and the
-- explained variances. Uses the D x D covariance or, when N < D, the N x N Gram matrix.
function plot.pca(X, k)
  local fname = "plot.pca"
  X = check_X(fname, X)
  k = k or 2
  local N, D = X:size(1), X:size(2)
  if math.type(k) ~= "integer" or k < 1 or k > min(N, D) then
    error(fmt("%s: k must be an integer in 1..%d for X of shape [%d, %d], got %s", fname, min(N, D), N, D, tostring(k)), 2)
  end
  local A = ac()
  local Xc = X - X:mean(1):view(1, D)
  local Y, var = A.zeros(N, k), {}
  if N >= D then
    local cov = A.matmul(Xc:transpose(1, 2), Xc) / max(N - 1, 1)
    local w, V = A.linalg.eigh(cov)     -- ascending
    local wt, Vt = w:totable(), V:totable()
    local P = A.zeros(D, k)
    for j = 1, k do
      local col = D - j + 1
      local big, sign = 0, 1
      for i = 1, D do if abs(Vt[i][col]) > big then big = abs(Vt[i][col]); sign = Vt[i][col] < 0 and -1 or 1 end end
      for i = 1, D do P[i][j] = sign * Vt[i][col] end
      var[j] = max(wt[col], 0)
    end
    Y = A.matmul(Xc, P)
  else
    local G = A.matmul(Xc, Xc:transpose(1, 2))
    local w, U = A.linalg.eigh(G)
    local wt = w:totable()
    local Ut = U:totable()
    for j = 1, k do
      local col = N - j + 1
      local s = math.sqrt(max(wt[col], 0))
      -- sign from the loading vector v = Xc^T u / s
      local u = A.zeros(N, 1)
      for i = 1, N do u[i][1] = Ut[i][col] end
      local v = A.matmul(Xc:transpose(1, 2), u):view(D):totable()
      local big, sign = 0, 1
      for i = 1, D do if abs(v[i]) > big then big = abs(v[i]); sign = v[i] < 0 and -1 or 1 end end
      for i = 1, N do Y[i][j] = sign * s * Ut[i][col] end
      var[j] = max(wt[col], 0) / max(N - 1, 1)
    end
  end
  return Y, var
end

--- tsne(X [N,D], opts) -> Y [N, dims], kl. opts: perplexity (30, lowered to
-- (N-1)/3 for small N), iterations (1000), exaggeration (12),
-- exaggeration_iterations (250), learning_rate (0 = max(N/12/4, 50)),
-- dims (2), seed (default: drawn from the global generator, so
-- ac.manual_seed fixes it), init ("pca" (default) or "random").
function plot.tsne(X, opts)
  local fname = "plot.tsne"
  X = check_X(fname, X)
  opts = check_opts(fname, opts)
  local N = X:size(1)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.perplexity == nil then o.perplexity = min(30, (N - 1) / 3) end
  local init = o.init or "pca"
  o.init = nil
  local Y0
  if init == "pca" then
    local dims = o.dims or 2
    if N >= 4 and X:size(2) >= dims then
      Y0 = plot.pca(X, dims)
      local first = Y0:select(2, 1)
      local sd = first:std()
      if type(sd) ~= "number" then sd = sd:item() end
      if sd > 0 then Y0 = Y0 * (1e-4 / sd) else Y0 = nil end
    end
  elseif init ~= "random" then
    error(fmt("%s: init must be \"pca\" or \"random\", got %s", fname, tostring(init)), 2)
  end
  local ok, Y, kl = pcall(C.tsne, X, Y0, o)
  if not ok then error(fname .. ": " .. tostring(Y), 2) end
  return Y, kl
end

--- embedding(path, X [N,D], labels, class_names [, opts]): projects X to 2-d
-- (opts.method = "pca" (default) or "tsne"; t-SNE options pass through:
-- perplexity, iterations, seed) and draws the scatter plot. Returns path and
-- the 2-d coordinates [N,2].
function plot.embedding(path, X, labels, class_names, opts)
  local fname = "plot.embedding"
  check_path(fname, path)
  X = check_X(fname, X)
  opts = check_opts(fname, opts)
  local names = check_names(fname, class_names)
  to_labels(fname, labels, X:size(1), #names)
  local method = opts.method or "pca"
  local Y, xl, yl
  if method == "pca" then
    if X:size(1) < 2 or X:size(2) < 2 then
      error(fmt("%s: PCA to 2-d needs at least 2 points and 2 features, got [%d, %d]", fname, X:size(1), X:size(2)), 2)
    end
    local var
    Y, var = plot.pca(X, 2)
    local tot = 0
    local Xc = X - X:mean(1):view(1, X:size(2))
    tot = (Xc * Xc):sum() / max(X:size(1) - 1, 1)
    if type(tot) ~= "number" then tot = tot:item() end
    xl = tot > 0 and fmt("PC1 (%.1f%%)", 100 * var[1] / tot) or "PC1"
    yl = tot > 0 and fmt("PC2 (%.1f%%)", 100 * var[2] / tot) or "PC2"
  elseif method == "tsne" then
    local o = {}
    for _, k in ipairs({ "perplexity", "iterations", "seed", "learning_rate", "exaggeration",
      "exaggeration_iterations", "init" }) do o[k] = opts[k] end
    Y = plot.tsne(X, o)
    xl, yl = "t-SNE 1", "t-SNE 2"
  else
    error(fmt("%s: method must be \"pca\" or \"tsne\", got %s", fname, tostring(method)), 2)
  end
  local sopts = { title = opts.title or (method == "pca" and "PCA of the embeddings" or "t-SNE of the embeddings"),
    xlabel = xl, ylabel = yl, width = opts.width, height = opts.height, radius = opts.radius, alpha = opts.alpha }
  plot.scatter(path, Y, labels, names, sopts)
  return path, Y
end

return plot
