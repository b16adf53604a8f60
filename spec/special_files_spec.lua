-- Special files given where a data, image or model file is expected: a FIFO
-- with no writer (a plain open() blocks forever), /dev/zero (reads without
-- end), /dev/null (empty), a folder. Every reader refuses them before it
-- reads, naming the path and its kind. Each case runs in its own lua5.4
-- under `timeout` and an address-space cap, so a regression shows as a
-- failed case instead of a hung or swapping test run.
local fs = require("adcorre.fs")
local proc = require("child")
local sh, child = proc.sh, proc.run

local dir = os.tmpname()
os.remove(dir)
assert(fs.mkdir_p(dir))
local fifo = dir .. "/pipe"
assert(sh("mkfifo " .. fifo) == 0, "mkfifo failed")

-- name, Lua expression reading the file at P
local READERS = {
  { "ac.load_npy", "ac.load_npy(P)" },
  { "ac.image.load", "ac.image.load(P)" },
  { "ac.image.info", "ac.image.info(P)" },
  { "ac.load (model)", "ac.load(P)" },
  { "fer2013 csv", "ac.data.fer2013{path = P, split = 'train'}" },
}

local KINDS = {
  { "a FIFO", fifo, "is a FIFO, expected a regular file" },
  { "/dev/zero", "/dev/zero", "is a character device, expected a regular file" },
  { "/dev/null", "/dev/null", "is a character device, expected a regular file" },
}

describe("special files", function()
  for _, k in ipairs(KINDS) do
    for _, r in ipairs(READERS) do
      it(("%s read by %s is refused at once, naming the path and its kind"):format(k[1], r[1]), function()
        local rc, out = child(([[
local ac = require("adcorre")
local P = %q
local ok, e = pcall(function() return %s end)
print(ok, e)
]]):format(k[2], r[2]))
        assert.are_not.equal(124, rc, "timed out: " .. out)
        assert.are.equal(0, rc, out)
        assert.matches("^false\t", out)
        assert.matches(k[2], out, 1, true)
        assert.matches(k[3], out, 1, true)
      end)
    end
  end

  it("a folder of the npy data set whose images file is a FIFO is refused", function()
    local root = dir .. "/npyset"
    assert(sh(("mkdir -p %s && mkfifo %s/train_images.npy %s/train_labels.npy"):format(root, root, root)) == 0)
    local rc, out = child(([[
local ac = require("adcorre")
local ok, e = pcall(ac.data.npy, {path = %q, split = "train"})
print(ok, e)
]]):format(root))
    assert.are_not.equal(124, rc, "timed out: " .. out)
    assert.matches("^false\t", out)
    assert.matches("is a FIFO, expected a regular file", out, 1, true)
  end)

  it("a folder given as an image is refused as a folder", function()
    local ac = require("adcorre")
    local ok, e = pcall(ac.image.load, dir)
    assert.is_false(ok)
    assert.matches(dir, tostring(e), 1, true)
    assert.matches("directory", tostring(e), 1, true)
  end)

  it("a regular file is still read after the checks (reads the whole file)", function()
    local ac = require("adcorre")
    local p = dir .. "/t.npy"
    local t = ac.randn(3, 4)
    ac.save_npy(p, t)
    local u = ac.load_npy(p)
    assert.are.same(t:totable(), u:totable())
    local core = require("adcorre.core")
    local bytes = core.io.read_file(p)
    local f = assert(io.open(p, "rb"))
    assert.are.equal(f:read("a"), bytes)
    f:close()
  end)

  it("core.io.read_file refuses a FIFO and /dev/zero", function()
    local core = require("adcorre.core")
    local ok, e = pcall(core.io.read_file, "/dev/zero")
    assert.is_false(ok)
    assert.matches("/dev/zero: is a character device, expected a regular file", tostring(e), 1, true)
    ok, e = pcall(core.io.read_file, fifo)
    assert.is_false(ok)
    assert.matches("is a FIFO", tostring(e), 1, true)
  end)

  teardown(function() sh("rm -rf " .. dir) end)
end)
