-- spec/loader_shard_spec.lua - ac.data.Loader{shard = {rank, size}}: the
-- per-epoch slices of data-parallel training. The ranks' batches b together
-- are the single-process batch b of size * batch samples, augmented alike;
-- padded shards have equal length, unpadded ones cover the epoch once.
local ac = require("adcorre")

-- n images 6x6 whose pixel (1, 1) encodes their index
local function indexed(n)
  local img = ac.zeros(n, 6, 6, "uint8")
  local lab = {}
  for i = 1, n do img[i]:fill(i); lab[i] = (i - 1) % 7 + 1 end
  return ac.data.from_memory { images = img, labels = lab }
end

local function batches(loader, e)
  local out = {}
  for x, y, n in loader:epoch(e) do out[#out + 1] = { x = x:clone(), y = y:clone(), n = n } end
  return out
end

local function sorted_ids(list)
  local ids = {}
  for _, b in ipairs(list) do
    for j = 1, b.n do ids[#ids + 1] = math.floor(b.x[j][1][1][1] * 255 + 0.5) end
  end
  table.sort(ids)
  return ids
end

describe("Loader shards", function()
  for _, workers in ipairs({ 0, 2 }) do
    it("the union of the ranks' batches is the single-process batch, augmentation included (workers " .. workers .. ")", function()
      local ds = indexed(40)
      local opts = function(extra)
        local o = { batch = 5, seed = 9, workers = workers, augment = "standard" }
        for k, v in pairs(extra) do o[k] = v end
        return o
      end
      local one = batches(ac.data.Loader(ds, opts { batch = 10 }), 2)
      local r0 = batches(ac.data.Loader(ds, opts { shard = { 0, 2 } }), 2)
      local r1 = batches(ac.data.Loader(ds, opts { shard = { 1, 2 } }), 2)
      assert.are.equal(#one, #r0)
      assert.are.equal(#one, #r1)
      for b = 1, #one do
        -- rank r's sample j of a batch is global position r + 2 (j - 1)
        for j = 1, 5 do
          assert.is_true(r0[b].x[j]:equal(one[b].x[2 * j - 1]))
          assert.is_true(r1[b].x[j]:equal(one[b].x[2 * j]))
          assert.are.equal(one[b].y[2 * j - 1], r0[b].y[j])
          assert.are.equal(one[b].y[2 * j], r1[b].y[j])
        end
      end
    end)
  end

  it("padded shards have equal length and wrap round; unpadded ones cover the epoch once", function()
    local ds = indexed(11)
    local p0 = ac.data.Loader(ds, { batch = 4, workers = 0, seed = 3, shard = { 0, 3 } })
    local p2 = ac.data.Loader(ds, { batch = 4, workers = 0, seed = 3, shard = { 2, 3 } })
    assert.are.equal(1, p0:nbatches())
    assert.are.equal(1, p2:nbatches())
    local a, c = sorted_ids(batches(p0, 1)), sorted_ids(batches(p2, 1))
    assert.are.equal(4, #a)
    assert.are.equal(4, #c)
    local all = {}
    for r = 0, 2 do
      local l = ac.data.Loader(ds, { batch = 2, workers = 0, seed = 3, shuffle = true, shard = { r, 3, pad = false } })
      for _, id in ipairs(sorted_ids(batches(l, 1))) do all[#all + 1] = id end
    end
    table.sort(all)
    local want = {}
    for i = 1, 11 do want[i] = i end
    assert.are.same(want, all)
  end)

  it("a Lua data set (ds:get only) is sharded the same way", function()
    local ds = { channels = 1, height = 2, width = 2 }
    function ds:get(i) return ac.ones(1, 2, 2) * (i / 255), i % 3 + 1 end
    setmetatable(ds, { __len = function() return 9 end })
    local all = {}
    for r = 0, 1 do
      local l = ac.data.Loader(ds, { batch = 2, seed = 4, shard = { r, 2, pad = false } })
      for _, id in ipairs(sorted_ids(batches(l, 1))) do all[#all + 1] = id end
    end
    table.sort(all)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9 }, all)
  end)

  it("a shard outside 0..size-1 is refused", function()
    local ok, e = pcall(ac.data.Loader, indexed(4), { shard = { 2, 2 } })
    assert.is_false(ok)
    assert.matches("shard", e)
  end)
end)
