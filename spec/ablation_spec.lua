-- spec/ablation_spec.lua - the ablation study runner (examples/ablation.lua,
-- adcorre.ablation, adcorre.ablation_report) on a tiny npy data set the spec
-- writes: its help, the records, tables and plot it writes, the claim that one
-- run evaluated at several epochs equals the shorter runs, resuming, and the
-- nearest-class-mean accuracy against a direct computation.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")
local A = require("adcorre.ablation")

local function sh(cmd)
  local env = 'LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="'
    .. (package.cpath:match("^([^;]*)") or "./build/?.so") .. ';;" '
  local p = io.popen(env .. cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code
end

local function read_lines(path)
  local t = {}
  for line in io.lines(path) do t[#t + 1] = line end
  return t
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("ablation runner", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir .. "/data"))
  -- three classes told apart by the brightness of a band, plus noise
  ac.manual_seed(4)
  local function split(name, n)
    local x = ac.rand(n, 16, 16) * 120
    local y = {}
    for i = 1, n do
      y[i] = (i - 1) % 3
      x:select(1, i):narrow(1, 1 + 5 * y[i], 5):add_(120)
    end
    ac.save_npy(dir .. "/data/" .. name .. "_images.npy", x:byte())
    ac.save_npy(dir .. "/data/" .. name .. "_labels.npy", ac.tensor(y, "int64"))
  end
  split("train", 60)
  split("test", 30)
  local base = ("lua5.4 examples/ablation.lua --dataset npy --data %s/data --augment none --batch 20 --k 2 --d 8 "
    .. "--threads 1 --workers 1 --embedding-points 30"):format(dir)

  it("--help documents the runner", function()
    local out, code = sh("lua5.4 examples/ablation.lua --help")
    assert.equal(0, code, out)
    for _, opt in ipairs({ "--seeds", "--epochs", "--variants", "--lambdas", "--warmup", "--detach",
      "--report-only", "--embedding-plots", "--results", "detached", "95 %" }) do
      assert.truthy(out:find(opt, 1, true), opt)
    end
  end)

  it("trains every variant and seed, writes records, tables and plots, and resumes", function()
    local cmd = base .. (" --seeds 2 --epochs 1,2 --variants ce,adcorre,detached --lambdas 20 "
      .. "--embedding-plots adcorre --json --out %s/study"):format(dir)
    local out, code = sh(cmd)
    assert.equal(0, code, out)
    local lines = read_lines(dir .. "/study/results.jsonl")
    assert.equal(8, #lines)
    local seen = {}
    for _, l in ipairs(lines) do
      local r = json.decode(l)
      seen[r.variant .. ":" .. r.seed] = true
      assert.equal(2, #r.points)
      assert.same({ 1, 2 }, { r.points[1].epoch, r.points[2].epoch })
      for _, p in ipairs(r.points) do
        assert.is_true(p.accuracy >= 0 and p.accuracy <= 1)
        assert.is_true(p.ncm >= 0 and p.ncm <= 1)
      end
    end
    for _, v in ipairs({ "ce", "adcorre", "detached", "lambda=20" }) do
      assert.is_true(seen[v .. ":1"] and seen[v .. ":2"], v)
    end
    local md = io.open(dir .. "/study/ablation.md"):read("a")
    for _, s in ipairs({ "### Epoch 1", "### Epoch 2", "| CE | 2 |", "Ad-Corre, lambda 20",
      "released code (reference, detached)", "Δ accuracy vs CE" }) do
      assert.truthy(md:find(s, 1, true), s)
    end
    for _, f in ipairs({ "ablation.png", "embeddings_adcorre_pca.png", "embeddings_adcorre_tsne.png" }) do
      assert.is_true(file_exists(dir .. "/study/" .. f), f)
    end
    local last
    for l in out:gmatch("[^\n]+") do last = l end
    local s = json.decode(last).ablation
    assert.equal("ce", s[1].variant)
    local adc
    for _, v in ipairs(s) do if v.variant == "adcorre" then adc = v end end
    assert.equal(2, adc.epochs[2].vs_ce.n)
    assert.equal(2, adc.epochs[2].accuracy.n)

    -- a second start skips what is there
    out, code = sh(cmd)
    assert.equal(0, code, out)
    assert.truthy(out:find("already in", 1, true))
    assert.equal(8, #read_lines(dir .. "/study/results.jsonl"))
    out, code = sh(("lua5.4 examples/ablation.lua --report-only --out %s/study --no-plots"):format(dir))
    assert.equal(0, code, out)
    assert.truthy(out:find("### Epoch 2", 1, true))

    -- one run evaluated at epochs 1 and 2 passed through the state a 1-epoch run ends in
    out, code = sh(base .. (" --seeds 1 --epochs 1 --variants adcorre --embedding-plots '' --out %s/short")
      :format(dir))
    assert.equal(0, code, out)
    local short = json.decode(read_lines(dir .. "/short/results.jsonl")[1]).points[1]
    local long
    for _, l in ipairs(lines) do
      local r = json.decode(l)
      if r.variant == "adcorre" and r.seed == 1 then long = r.points[1] end
    end
    assert.equal(long.accuracy, short.accuracy)
    assert.equal(long.train_loss, short.train_loss)
    assert.equal(long.ncm, short.ncm)
  end)

  it("names an unknown variant and a bad epoch list", function()
    local out, code = sh(base .. " --variants ce,nope --out " .. dir .. "/bad")
    assert.is_true(code ~= 0)
    assert.truthy(out:find("unknown variant 'nope'", 1, true), out)
    out, code = sh(base .. " --epochs 3,x --out " .. dir .. "/bad")
    assert.is_true(code ~= 0)
    assert.truthy(out:find("'x' is not a number", 1, true), out)
  end)

  it("nearest-class-mean accuracy equals a direct computation", function()
    ac.manual_seed(7)
    local C, N, M, D = 4, 50, 23, 6
    local Xtr, Xte = ac.randn(N, D), ac.randn(M, D)
    local ytr, yte = {}, {}
    for i = 1, N do ytr[i] = (i * 7) % 3 + 1 end                 -- class 4 absent from training
    for i = 1, M do yte[i] = (i % C) + 1 end
    local xt, xe = Xtr:totable(), Xte:totable()
    local mean, cnt = {}, {}
    for c = 1, C do mean[c], cnt[c] = {}, 0; for j = 1, D do mean[c][j] = 0 end end
    for i = 1, N do
      local c = ytr[i]
      cnt[c] = cnt[c] + 1
      for j = 1, D do mean[c][j] = mean[c][j] + xt[i][j] end
    end
    local hit = 0
    for i = 1, M do
      local best, bd = nil, math.huge
      for c = 1, C do
        if cnt[c] > 0 then
          local dd = 0
          for j = 1, D do local v = xe[i][j] - mean[c][j] / cnt[c]; dd = dd + v * v end
          if dd < bd then best, bd = c, dd end
        end
      end
      if best == yte[i] then hit = hit + 1 end
    end
    local got = A.ncm_accuracy(Xtr, ac.tensor(ytr, "int64"), Xte, ac.tensor(yte, "int64"), C)
    assert.equal(hit / M, got)
    assert.is_true(hit > 0 and hit < M)
  end)
end)
