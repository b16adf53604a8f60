-- Model files whose tensors are valid but whose metadata lies: an
-- architecture asking for 10^9 heads, classes or embedding sizes, fields out
-- of range or of the wrong type, class names that do not match the
-- classifier, metadata that is not JSON. ac.load refuses each before it
-- allocates (the rebuild runs under an allocation budget the file's tensors
-- justify, serialize.lua) with a message naming the file and the field.
-- Each case runs in its own lua5.4 under `timeout` and a 3 GB address-space
-- cap, so a regression is a failed case, not a machine out of memory.
local ac = require("adcorre")
local fs = require("adcorre.fs")
local core = require("adcorre.core")
local json = require("adcorre.json")
local proc = require("child")

local dir = os.tmpname()
os.remove(dir)
assert(fs.mkdir_p(dir))

-- A small valid model file, then copies with the metadata changed.
local base = dir .. "/base.safetensors"
ac.manual_seed(1)
ac.save(base, ac.models.minixception{ k = 2, d = 4, size = 16 })
local tensors, meta = core.safetensors.load(base)
local names = {}
for k in pairs(tensors) do names[#names + 1] = k end
table.sort(names)

local function variant(name, change)
  local m = {}
  for k, v in pairs(meta) do m[k] = v end
  change(m)
  local list = {}
  for i, n in ipairs(names) do list[i] = tensors[n] end
  local p = dir .. "/" .. name .. ".safetensors"
  core.safetensors.save(p, names, list, m)
  return p
end

local function arch(args, ctor)
  return function(m)
    local a = json.decode(m.architecture)
    for k, v in pairs(args) do a.args[k] = v end
    if ctor then a.constructor = ctor end
    m.architecture = json.encode(a)
  end
end

local function child(code) return proc.run(code, { seconds = 30, cap_kb = 3000000 }) end

local CASES = {
  { "k = 10^9 heads", arch({ k = 1000000000 }), "the architecture asks for more parameters than the file holds" },
  { "classes = 10^9", arch({ classes = 1000000000 }), "the architecture asks for more parameters than the file holds" },
  { "d = 10^9", arch({ d = 1000000000 }), "the architecture asks for more parameters than the file holds" },
  { "in_channels = 10^8", arch({ in_channels = 100000000 }),
    "the architecture asks for more parameters than the file holds" },
  { "d = -5", arch({ d = -5 }), "architecture field d = -5 (must be >= 2)" },
  { "k = 0", arch({ k = 0 }), "architecture field k = 0 (must be >= 1)" },
  { "d = 1.5", arch({ d = 1.5 }), "architecture field d = 1.5 (must be an integer)" },
  { "classes = 'seven'", arch({ classes = "seven" }), "architecture field classes = seven (must be an integer)" },
  { "an unknown option", arch({ colour = 1 }), "architecture field colour is not an option of this model" },
  { "an unknown constructor", arch({}, "resnet999"), "unknown architecture 'resnet999'" },
  { "architecture not JSON", function(m) m.architecture = "{\"constructor\": " end, "bad architecture metadata" },
  { "extra not JSON", function(m) m.extra = "{\"classes\": [" end, "metadata field 'extra' is not valid JSON" },
  { "3 class names for 7 outputs", function(m) m.extra = json.encode({ classes = { "a", "b", "c" } }) end,
    "the file names 3 classes but its classifier has 7 outputs" },
  { "class names not a list", function(m) m.extra = json.encode({ classes = 5 }) end,
    "metadata field classes must be a list of names, got number" },
  { "a generic Linear(10^9, 10^9)", function(m)
    m.architecture = json.encode({ constructor = "nn", args = { type = "nn.Linear", args = { 1000000000, 1000000000 } } })
  end, "the architecture asks for more parameters than the file holds" },
}

describe("hostile model metadata", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("the untouched file loads", function()
    local m = ac.load(base)
    assert.are.same({ 1, 7 }, m:forward(ac.zeros(1, 1, 16, 16)).logits:shape())
  end)

  for i, c in ipairs(CASES) do
    it(c[1] .. ": refused before allocating, naming the file and the field", function()
      local p = variant("case" .. i, c[2])
      local rc, out = child(([[
local ok, e = pcall(require("adcorre").load, %q)
print(ok, e)
]]):format(p))
      assert.are_not.equal(124, rc, "timed out: " .. out)
      assert.are.equal(0, rc, out)
      assert.matches("^false\t", out)
      assert.truthy(out:find("load: " .. p .. ": ", 1, true), out)
      assert.truthy(out:find(c[3], 1, true), out)
    end)
  end

  it("the budget is the calling thread's and is lifted after the load", function()
    assert.is_nil(core.io.alloc_budget(nil))
    local ok = pcall(ac.load, variant("big", arch({ k = 1000000000 })))
    assert.is_false(ok)
    assert.is_nil(core.io.alloc_budget(nil)) -- none left set
    assert.are.same({ 2000, 2000 }, ac.zeros(2000, 2000):shape())
  end)
end)
