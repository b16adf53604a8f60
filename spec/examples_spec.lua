-- spec/examples_spec.lua - the command-line programs as a user runs them:
-- train.lua, evaluate.lua, predict.lua and inspect.lua with --json, on a tiny
-- synthfer set written in the FER-2013 CSV format.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local json = require("adcorre.json")

-- Each run's stderr goes to its own file: parallel test runs must not share one.
local STDERR = os.tmpname()

local function sh(cmd)
  local env = 'LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="' .. (package.cpath:match("^([^;]*)") or "./build/?.so") .. ';;" '
  local p = io.popen(env .. cmd .. " 2>" .. STDERR .. "; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  out = out:gsub("exit=%d+%s*$", "")
  return out, code
end

local function last_json(out)
  local last
  for line in out:gmatch("[^\n]+") do last = line end
  return json.decode(last)
end

describe("example programs", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir_p(dir))
  local csv = dir .. "/fer2013.csv"
  ac.synthfer.write_csv(csv, { seed = 5, train = 210, public = 35, private = 70 })

  it("train.lua --help documents the options", function()
    local out, code = sh("lua5.4 examples/train.lua --help")
    assert.equal(0, code)
    for _, opt in ipairs({ "--dataset", "--resume", "--lambda", "--no-adaptive", "--md-mode", "--augment", "--json" }) do
      assert.truthy(out:find(opt, 1, true), opt)
    end
  end)

  it("train.lua, evaluate.lua and predict.lua with --json", function()
    local out, code = sh(("lua5.4 examples/train.lua --dataset fer2013 --data %s --epochs 1 --batch 35 --k 2 --d 16 "
      .. "--no-plots --json --out %s/run"):format(csv, dir))
    assert.equal(0, code, out)
    local r = last_json(out)
    assert.equal(1, r.epochs)
    assert.equal(7, #r.classes)
    assert.equal("Neutral", r.classes[1])
    assert.equal(7, #r.confusion)
    assert.is_true(r.accuracy >= 0 and r.accuracy <= 1)
    assert.is_true(r.mean_class_accuracy >= 0 and r.mean_class_accuracy <= 1)
    assert.is_true(r.train_images_per_s > 0)
    for _, f in ipairs({ "model.safetensors", "best.safetensors", "checkpoint.safetensors", "log.csv" }) do
      assert.truthy(io.open(dir .. "/run/" .. f), f)
    end

    out, code = sh(("lua5.4 examples/evaluate.lua --model %s/run/model.safetensors --dataset fer2013 --data %s --json")
      :format(dir, csv))
    assert.equal(0, code, out)
    local e = last_json(out)
    assert.equal(70, e.images)
    assert.equal(r.accuracy, e.accuracy)

    local ds = ac.data.fer2013 { path = csv, split = "test" }
    local img = ds:get(1)
    ac.image.save(dir .. "/a.png", img)
    ac.image.save(dir .. "/b.jpg", img)
    out, code = sh(("lua5.4 examples/predict.lua --json --model %s/run/model.safetensors %s/a.png %s/b.jpg")
      :format(dir, dir, dir))
    assert.equal(0, code, out)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      local p = json.decode(line)
      local s = 0
      for _, v in pairs(p.probabilities) do s = s + v end
      assert.is_true(math.abs(s - 1) < 1e-9, "probabilities sum to " .. s)
      assert.truthy(p.probabilities[p.label])
      n = n + 1
    end
    assert.equal(2, n)
  end)

  it("predict.lua reports a missing image and exits non-zero", function()
    -- a model of its own, so the spec does not depend on the one trained above
    local model = dir .. "/missing_image_model.safetensors"
    local m = ac.models.minixception { size = 48, k = 2, d = 8 }
    ac.save(model, m)
    local out, code = sh(("lua5.4 examples/predict.lua --model %s %s/none.png"):format(model, dir))
    assert.are_not.equal(0, code)
    local f = io.open(STDERR)
    local err = f:read("a")
    f:close()
    assert.truthy(err:find(dir .. "/none.png: cannot open", 1, true), err)
  end)

  it("inspect.lua --json counts the splits per class", function()
    local out, code = sh(("lua5.4 examples/inspect.lua --dataset fer2013 --data %s --json"):format(csv))
    assert.equal(0, code, out)
    local r = last_json(out)
    local total = 0
    for _, c in pairs(r.splits.train) do total = total + c end
    assert.equal(210, total)
    assert.equal(10, r.splits.test.Neutral)
  end)
end)
