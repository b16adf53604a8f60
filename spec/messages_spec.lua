-- Inputs that used to give a wrong result or a message that did not say
-- what was wrong: float labels with NaN or infinities in an npy data set,
-- FER-2013 pixels with leading zeros, image.grid{ncol = 0}, a missing model
-- file, and the programs' errors, which name the user's file and line and
-- never the library's source position.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local dir = os.tmpname()
os.remove(dir)
assert(fs.mkdir_p(dir))

local function sh(cmd)
  local env = 'LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="' ..
    (package.cpath:match("^([^;]*)") or "./build/?.so") .. ';;" '
  local p = io.popen(env .. "timeout 120 " .. cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  return out:gsub("exit=%d+%s*$", ""), tonumber(out:match("exit=(%d+)%s*$"))
end

local function write(name, text)
  local p = dir .. "/" .. name
  local f = assert(io.open(p, "wb"))
  f:write(text)
  f:close()
  return p
end

describe("labels of an npy data set", function()
  for _, c in ipairs({ { 0 / 0, "NaN" }, { math.huge, "infinite" }, { -math.huge, "infinite" }, { 2.5, "not an integer" } }) do
    it(("a float label that is %s is an error naming the file and the index"):format(c[2]), function()
      local root = dir .. "/npy_" .. c[2]:gsub(" ", "_") .. tostring(c[1] < 0)
      assert(fs.mkdir_p(root))
      ac.save_npy(root .. "/train_images.npy", ac.zeros(4, 6, 6))
      ac.save_npy(root .. "/test_images.npy", ac.zeros(2, 6, 6))
      ac.save_npy(root .. "/test_labels.npy", ac.tensor({ 0, 1 }))
      ac.save_npy(root .. "/train_labels.npy", ac.tensor({ 0, 1, c[1], 1 }))
      local ok, e = pcall(ac.data.npy, { path = root, split = "train" })
      assert.is_false(ok)
      assert.truthy(tostring(e):find(root .. "/train_labels.npy: label ", 1, true), tostring(e))
      assert.truthy(tostring(e):find("at index 2 (0-based) is " .. c[2], 1, true), tostring(e))
    end)
  end
end)

describe("messages", function()
  teardown(function() os.execute("rm -rf " .. dir) end)
  it("FER-2013 pixels may carry leading zeros; a value above 255 is quoted as written", function()
    local px = {}
    for i = 1, 2304 do px[i] = i == 1 and "0007" or "0" end
    local csv = write("z.csv", "emotion,pixels,Usage\n3," .. table.concat(px, " ") .. ",Training\n")
    local ds = ac.data.fer2013 { path = csv, split = "train" }
    assert.are.equal(7, math.floor(ds:get(1):totable()[1][1][1] * 255 + 0.5))
    px[1] = "000256"
    csv = write("z2.csv", "emotion,pixels,Usage\n3," .. table.concat(px, " ") .. ",Training\n")
    local ok, e = pcall(ac.data.fer2013, { path = csv, split = "train" })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("z2.csv:2: pixel 1 = 000256 is outside 0..255", 1, true), tostring(e))
  end)

  it("image.grid{ncol = 0} says what is wrong", function()
    local imgs = { ac.zeros(1, 4, 4), ac.zeros(1, 4, 4) }
    for _, bad in ipairs({ 0, -1, 1.5 }) do
      local ok, e = pcall(ac.image.grid, imgs, { ncol = bad })
      assert.is_false(ok)
      assert.truthy(tostring(e):find("image.grid: ncol must be a positive integer, got " .. tostring(bad), 1, true),
        tostring(e))
    end
    assert.are.same({ 1, 8, 14 }, ac.image.grid(imgs, { ncol = 2.0 }):shape())
  end)

  it("a missing model file names the caller, not the binding", function()
    local ok, e = pcall(ac.load, dir .. "/none.safetensors")
    assert.is_false(ok)
    assert.truthy(tostring(e):find("^load: " .. dir .. "/none.safetensors: cannot open"), tostring(e))
  end)

  it("the programs print the user's file and line, not the library's source position", function()
    local bad = write("bad.csv", "emotion,pixels,Usage\n3,1 2 x,Training\n")
    local out, code = sh("lua5.4 examples/train.lua --dataset fer2013 --data " .. bad .. " --epochs 1")
    assert.are.equal(1, code, out)
    assert.truthy(out:find("train.lua: " .. bad .. ":2: pixel 3 is not an integer ('x')", 1, true), out)
    assert.falsy(out:find("lua/adcorre/", 1, true), out)
    assert.falsy(out:find("stack traceback", 1, true), out)
    out, code = sh("lua5.4 examples/evaluate.lua --model " .. dir .. "/none.safetensors --dataset synthfer")
    assert.are.equal(1, code, out)
    assert.truthy(out:find("evaluate.lua: load: " .. dir .. "/none.safetensors: cannot open", 1, true), out)
    assert.falsy(out:find("stack traceback", 1, true), out)
  end)

  it("a failure of the library itself keeps its traceback (exit status 3)", function()
    local cli = require("adcorre.cli")
    local prog = write("boom.lua", ([[
package.path = %q
package.cpath = %q
require("adcorre.cli").main("boom.lua", function() local t = nil; return t.field end)
]]):format(package.path, package.cpath))
    local _ = cli
    local out, code = sh("lua5.4 " .. prog)
    assert.are.equal(3, code, out)
    assert.truthy(out:find("boom.lua: internal error: ", 1, true), out)
    assert.truthy(out:find("attempt to index", 1, true), out)
    assert.truthy(out:find("stack traceback", 1, true), out)
  end)
end)
