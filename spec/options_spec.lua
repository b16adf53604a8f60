-- Options of the programs do what they say: --limit trains and evaluates on
-- that many images, --skip-bad reaches the loader so one unreadable file
-- does not stop a folder data set, and an integer option given a fraction is
-- refused when the command line is parsed (naming the option), not after an
-- epoch of training.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")

local function sh(cmd)
  local env = 'LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="' ..
    (package.cpath:match("^([^;]*)") or "./build/?.so") .. ';;" '
  local errf = os.tmpname()
  local p = io.popen(env .. "timeout 300 " .. cmd .. " 2>" .. errf .. "; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local f = io.open(errf)
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errf)
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code, err
end

local function last_json(out)
  local last
  for line in out:gmatch("[^\n]+") do last = line end
  return json.decode(last)
end

describe("program options", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))
  teardown(function() os.execute("rm -rf " .. dir) end)
  local csv = dir .. "/fer2013.csv"
  ac.synthfer.write_csv(csv, { seed = 3, train = 140, public = 14, private = 70 })
  local TRAIN = "lua5.4 examples/train.lua --dataset fer2013 --data " .. csv ..
    " --epochs 1 --batch 10 --k 2 --d 8 --threads 1 --workers 0 --no-plots --json --out " .. dir .. "/run"

  it("--limit N trains and evaluates on N images of each split", function()
    local out, code, err = sh(TRAIN .. " --limit 30")
    assert.are.equal(0, code, err)
    local r = last_json(out)
    assert.are.equal(30, r.train_images)
    assert.are.equal(30, r.eval_images)
    out, code, err = sh(TRAIN)
    assert.are.equal(0, code, err)
    r = last_json(out)
    assert.are.equal(140, r.train_images)
    assert.are.equal(70, r.eval_images)
  end)

  it("--limit keeps every class of a data set stored class by class", function()
    local ds = ac.data.fer2013 { path = csv, split = "train" }
    local labels = ds:labels():totable()
    table.sort(labels)
    local sorted = ac.data.from_memory { images = ac.zeros(#labels, 4, 4), labels = labels }
    local seen = {}
    for _, v in ipairs(sorted:head(14):labels():totable()) do seen[v] = true end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    local all = {}
    for _, v in ipairs(labels) do all[v] = true end
    local m = 0
    for _ in pairs(all) do m = m + 1 end
    assert.are.equal(m, n)
    assert.are.equal(14, #sorted:head(14))
    assert.are.equal(#labels, #sorted:head(100000))
  end)

  it("evaluate.lua --limit N evaluates N images", function()
    local out, code, err = sh(TRAIN .. " --limit 20")
    assert.are.equal(0, code, err)
    out, code, err = sh("lua5.4 examples/evaluate.lua --model " .. dir .. "/run/model.safetensors --dataset fer2013 " ..
      "--data " .. csv .. " --threads 1 --workers 0 --json --limit 25")
    assert.are.equal(0, code, err)
    assert.are.equal(25, last_json(out).images)
  end)

  it("--skip-bad reaches the loader: an unreadable image in a folder data set is skipped and counted", function()
    local root = dir .. "/folder"
    for _, split in ipairs({ "train", "test" }) do
      for c, name in ipairs({ "happy", "sad" }) do
        assert(fs.mkdir_p(("%s/%s/%s"):format(root, split, name)))
        for i = 1, 6 do
          ac.image.save(("%s/%s/%s/%d.png"):format(root, split, name, i), ac.rand(1, 24, 24) * (c / 2))
        end
      end
    end
    local f = assert(io.open(root .. "/train/happy/broken.png", "wb"))
    f:write("\x89PNG\r\n\x1a\nnot a png at all")
    f:close()
    local cmd = "lua5.4 examples/train.lua --dataset folder --data " .. root ..
      " --epochs 1 --batch 13 --k 2 --d 8 --threads 1 --workers 0 --no-plots --json --out " .. dir .. "/frun"
    local _, code, err = sh(cmd)
    assert.are_not.equal(0, code)
    assert.truthy(err:find("broken.png", 1, true), err)
    local out
    out, code, err = sh(cmd .. " --skip-bad")
    assert.are.equal(0, code, err)
    local r = last_json(out)
    assert.are.equal(13, r.train_images)
    assert.are.equal(1, r.skipped_images)
  end)

  for _, bad in ipairs({ { "--epochs", "1.5" }, { "--size", "48.5" }, { "--batch", "x" }, { "--k", "2.25" },
                         { "--limit", "=-3" }, { "--threads", "0" } }) do
    it(("%s %s is refused when parsing, naming the option"):format(bad[1], bad[2]), function()
      local arg = bad[2]:sub(1, 1) == "=" and bad[1] .. bad[2] or bad[1] .. " " .. bad[2]
      local _, code, err = sh(TRAIN .. " " .. arg)
      assert.are_not.equal(0, code)
      assert.truthy(err:find("option '" .. bad[1] .. "' must be", 1, true), err)
      assert.falsy(err:find("no integer representation", 1, true), err)
      assert.truthy(err:find("^Usage: train.lua"), err) -- the parser stopped it: nothing ran
    end)
  end
end)
