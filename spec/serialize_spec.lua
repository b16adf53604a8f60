-- serialize_spec.lua - safetensors files: round trips, every reader check on
-- hand-made bad files, crash-safe writes, and model save/load.
local ac = require("adcorre")
local ser = require("adcorre.serialize")

local function tmpname(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. (suffix or ".safetensors")
end

local function write_raw(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function read_raw(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- A file from a header string and data bytes (header padded like the writer does
-- unless pad == false).
local function st_file(header, data, pad)
  if pad ~= false then header = header .. string.rep(" ", (8 - #header % 8) % 8) end
  return string.pack("<I8", #header) .. header .. (data or "")
end

local function load_error(bytes)
  local p = tmpname()
  write_raw(p, bytes)
  local ok, err = pcall(ser.load_tensors, p)
  os.remove(p)
  assert.is_false(ok, "expected the file to be rejected")
  return tostring(err)
end

local function f32(...)
  local t = {}
  for i, v in ipairs({...}) do t[i] = string.pack("<f", v) end
  return table.concat(t)
end

describe("safetensors files", function()
  it("round-trip float32, int64 and uint8 tensors bit for bit, with metadata", function()
    ac.manual_seed(11)
    local a = ac.randn(3, 4, 5)
    local b = ac.tensor({{1, -2}, {9007199254740993, 4}}, "int64")
    local c = ac.tensor({0, 7, 255}, "uint8")
    local s = ac.tensor({3.5}):view({})       -- 0-d
    local e = ac.zeros(0, 3)                  -- empty
    local nc = ac.randn(4, 6):transpose(1, 2) -- non-contiguous
    local p = tmpname()
    ser.save_tensors(p, {a = a, b = b, c = c, s = s, e = e, nc = nc}, {note = "héllo \"x\"\n", n = 3})
    local t, meta, names = ser.load_tensors(p)
    assert.same({"a", "b", "c", "e", "nc", "s"}, names)
    assert.same(a:shape(), t.a:shape())
    assert.same(a:totable(), t.a:totable())
    assert.equal("int64", t.b:dtype())
    assert.same(b:totable(), t.b:totable())
    assert.equal("uint8", t.c:dtype())
    assert.same({0, 7, 255}, t.c:totable())
    assert.same({}, t.s:shape())
    assert.equal(3.5, t.s:item())
    assert.same({0, 3}, t.e:shape())
    assert.same(nc:totable(), t.nc:totable())
    assert.equal("héllo \"x\"\n", meta.note)
    assert.equal("3", meta.n)
    -- header length is a multiple of 8 and the header is JSON with our names
    local raw = read_raw(p)
    local n = string.unpack("<I8", raw)
    assert.equal(0, n % 8)
    assert.truthy(raw:sub(9, 8 + n):find('"a":{"dtype":"F32","shape":[3,4,5],"data_offsets":[0,240]}', 1, true))
    local info = ac.safetensors_info and ac.safetensors_info(p) or require("adcorre.core").safetensors.info(p)
    assert.same({dtype = "F32", loads_as = "float32", shape = {3, 4, 5}}, info.a)
    os.remove(p)
  end)

  it("reads the dtypes other writers use (F64, F16, BF16, I32, I8, BOOL)", function()
    local data = string.pack("<d", 0.1) .. string.pack("<I2I2", 0x3C00, 0xC000) ..
                 string.pack("<I2", 0x3F80) .. string.pack("<i4", -7) .. string.pack("<i1", -3) .. "\2"
    local h = '{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' ..
              '"h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},' ..
              '"b":{"dtype":"BF16","shape":[],"data_offsets":[12,14]},' ..
              '"i":{"dtype":"I32","shape":[1,1],"data_offsets":[14,18]},' ..
              '"j":{"dtype":"I8","shape":[1],"data_offsets":[18,19]},' ..
              '"k":{"dtype":"BOOL","shape":[1],"data_offsets":[19,20]}}'
    local p = tmpname()
    write_raw(p, st_file(h, data))
    local t = ser.load_tensors(p)
    os.remove(p)
    assert.equal("float32", t.d:dtype())
    assert.near(0.1, t.d:totable()[1], 1e-8)
    assert.same({1, -2}, t.h:totable())
    assert.equal(1, t.b:item())
    assert.equal("int64", t.i:dtype())
    assert.same({{-7}}, t.i:totable())
    assert.same({-3}, t.j:totable())
    assert.same({1}, t.k:totable())
  end)

  describe("rejects bad files with a clear error:", function()
    local good_h = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    it("shorter than 8 bytes", function()
      assert.matches("shorter than the 8%-byte header length", load_error("abc"))
    end)
    it("header length over 100,000,000", function()
      assert.matches("header length 100000001 exceeds the limit", load_error(string.pack("<I8", 100000001) .. "{}"))
    end)
    it("header longer than the file", function()
      assert.matches("truncated file: header length 64 but only 10 bytes", load_error(string.pack("<I8", 64) .. "{}        "))
    end)
    it("header not valid UTF-8", function()
      assert.matches("not valid UTF%-8", load_error(st_file('{"w\xff":{}}')))
    end)
    it("header not JSON", function()
      assert.matches("invalid JSON", load_error(st_file('{"w":{"dtype":"F32",}}')))
      assert.matches("does not start with a JSON object", load_error(st_file('[1]')))
      assert.matches("trailing characters", load_error(st_file('{} x')))
    end)
    it("unknown dtype, too many dims, missing fields", function()
      assert.matches('unknown dtype "F33"', load_error(st_file('{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', f32(1, 2))))
      assert.matches("more than 8 dimensions", load_error(st_file('{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', f32(1))))
      assert.matches('lacks "data_offsets"', load_error(st_file('{"w":{"dtype":"F32","shape":[2]}}', f32(1, 2))))
      assert.matches("non%-negative integer", load_error(st_file('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', f32(1, 2))))
      assert.matches('__metadata__ value of "k" must be a string',
        load_error(st_file('{"__metadata__":{"k":1},' .. good_h:sub(2), f32(1, 2))))
    end)
    it("duplicate names", function()
      assert.matches('duplicate tensor name "w"', load_error(st_file(
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2))))
    end)
    it("shape x dtype size different from the offsets", function()
      assert.matches('tensor "w": shape %[3%] of F32 needs 12 bytes but data_offsets %[0, 8%] hold 8',
        load_error(st_file('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', f32(1, 2))))
      assert.matches("shape product overflows", load_error(st_file(
        '{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', f32(1, 2))))
    end)
    it("holes, overlaps and offsets not starting at 0", function()
      assert.matches("data has a hole: bytes %[0, 4%)", load_error(st_file(
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2))))
      assert.matches("data has a hole: bytes %[4, 8%)", load_error(st_file(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', f32(1, 2, 3))))
      assert.matches('overlaps the previous tensor', load_error(st_file(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2))))
    end)
    it("truncated data and trailing bytes", function()
      assert.matches("truncated file: tensors need 8 data bytes, the file has 6", load_error(st_file(good_h, f32(1, 2):sub(1, 6))))
      assert.matches("4 trailing bytes after the last tensor", load_error(st_file(good_h, f32(1, 2, 3))))
    end)
    it("a file cut anywhere is rejected", function()
      local p = tmpname()
      ser.save_tensors(p, {a = ac.randn(10), b = ac.randn(3, 3)}, {k = "v"})
      local raw = read_raw(p)
      for _, cut in ipairs({1, 7, 8, 20, #raw - 40, #raw - 1}) do
        write_raw(p, raw:sub(1, cut))
        local ok, err = pcall(ser.load_tensors, p)
        assert.is_false(ok, "cut at " .. cut)
        err = tostring(err)
        assert.is_truthy(err:find("truncated", 1, true) or err:find("shorter", 1, true), err)
      end
      os.remove(p)
    end)
  end)

  it("random corruptions of a valid file never crash the reader", function()
    local p = tmpname()
    ser.save_tensors(p, {a = ac.randn(3, 4), b = ac.tensor({1, 2}, "int64"), c = ac.zeros(0)}, {k = "v"})
    local raw = read_raw(p)
    local hlen = string.unpack("<I8", raw)
    local state = 12345
    local function rnd(n) state = (state * 1103515245 + 12345) % 2147483648; return state % n + 1 end
    local rejected = 0
    for _ = 1, 300 do
      local bytes = {raw:byte(1, -1)}
      for _ = 1, rnd(3) do
        local pos = rnd(8 + hlen)           -- the length field or the header
        bytes[pos] = rnd(256) - 1
      end
      local s = string.char(table.unpack(bytes))
      if rnd(4) == 1 then s = s:sub(1, rnd(#s)) end
      write_raw(p, s)
      local ok, err = pcall(ser.load_tensors, p)
      if not ok then
        rejected = rejected + 1
        assert.is_string(err)
        assert.truthy(err:find(p, 1, true), err)
      end
    end
    os.remove(p)
    assert.is_true(rejected > 150)
  end)

  describe("writes safely:", function()
    it("reports a full device (/dev/full)", function()
      local ok, err = pcall(ser.save_tensors, "/dev/full", {a = ac.ones(1000)})
      assert.is_false(ok)
      assert.matches("/dev/full: write failed: No space left on device", err)
    end)
    it("reports a directory that cannot be written", function()
      local ok, err = pcall(ser.save_tensors, "/proc/adcorre-test.safetensors", {a = ac.ones(3)})
      assert.is_false(ok)
      assert.matches("cannot create a temporary file", err)
      ok, err = pcall(ser.save_tensors, "/nonexistent-dir/x.safetensors", {a = ac.ones(3)})
      assert.is_false(ok)
      assert.matches("No such file or directory", err)
    end)
    it("leaves the old file intact when a write fails midway, and leaves no temporary file", function()
      local dir = tmpname("")
      assert.is_true(os.execute("mkdir " .. dir))
      local p = dir .. "/m.safetensors"
      ser.save_tensors(p, {a = ac.ones(4)})
      local before = read_raw(p)
      -- a child process with a 64 KiB file size limit writes 4 MB: write() fails with EFBIG
      local script = dir .. "/child.lua"
      write_raw(script, ("package.path = %q; package.cpath = %q\n"):format(package.path, package.cpath) ..
        "local ac = require('adcorre')\n" ..
        ("local ok, e = pcall(require('adcorre.serialize').save_tensors, %q, {a = ac.ones(1000000)})\n"):format(p) ..
        "io.write(tostring(e)); os.exit(ok and 0 or 3)\n")
      local cmd = ("sh -c 'trap \"\" XFSZ; ulimit -f 64; exec lua5.4 %s' > %s/out.txt 2>&1"):format(script, dir)
      local _, _, code = os.execute(cmd)
      local out = read_raw(dir .. "/out.txt")
      assert.equal(3, code, out)
      assert.matches("write failed %(File too large%); any existing file is unchanged", out)
      assert.equal(before, read_raw(p))
      local ls = io.popen("ls -A " .. dir):read("a")
      assert.equal("child.lua\nm.safetensors\nout.txt\n", ls)
      os.execute("rm -rf " .. dir)
    end)
    it("rejects bad arguments before writing", function()
      assert.has_error(function() ser.save_tensors(tmpname(), {a = 3}) end, "save_tensors: 'a' is not a tensor (number)")
      assert.has_error(function() ser.save_tensors(tmpname(), {[1] = ac.ones(1)}) end,
        "save_tensors: tensor names must be strings, got number")
      assert.has_error(function() ser.save_tensors("", {}) end)
    end)
  end)
end)

describe("json metadata", function()
  it("encodes and decodes nested values, keeping integers integers", function()
    local v = {a = 1, b = {1.5, -2, "x\ny"}, c = {d = true, e = false}, f = "é\"\\"}
    local s = ser.json.encode(v)
    local w = ser.json.decode(s)
    assert.same(v, w)
    assert.equal("integer", math.type(w.a))
    assert.equal("float", math.type(w.b[1]))
    assert.has_error(function() ser.json.decode('{"a":1,}') end)
    assert.has_error(function() ser.json.encode({f = function() end}) end)
  end)
end)

describe("model files", function()
  local function small()
    return ac.models.minixception{in_channels = 1, size = 20, classes = 4, k = 3, d = 16}
  end
  local function randomise(net)
    for _, m in ipairs(net:findModules("nn.BatchNorm2d")) do
      local n = m.weight:numel()
      m.weight:copy(ac.rand(n) + 0.5); m.bias:copy(ac.randn(n))
      m.running_mean:copy(ac.randn(n)); m.running_var:copy(ac.rand(n) + 0.5)
    end
  end
  local function same_bits(a, b)
    local ta, tb = a:view(a:numel()):totable(), b:view(b:numel()):totable()
    if #ta ~= #tb then return false end
    for i = 1, #ta do
      if string.pack("<f", ta[i]) ~= string.pack("<f", tb[i]) then return false end
    end
    return true
  end

  it("save -> load -> forward is bit-identical (minixception, with running statistics)", function()
    ac.manual_seed(21)
    local net = small()
    randomise(net)
    net:evaluate()
    local x = ac.randn(5, 1, 20, 20)
    local a = net:forward(x)
    local p = tmpname()
    ac.save(p, net, {classes = {"a", "b", "c", "d"}, mean = 0.5})
    local net2, extra = ac.load(p)
    assert.same({"a", "b", "c", "d"}, extra.classes)
    assert.equal(0.5, extra.mean)
    assert.equal(net:nparams(), net2:nparams())
    assert.same(net.arch, net2.arch)
    local b = net2:forward(x)
    assert.is_true(same_bits(a.logits, b.logits))
    for j = 1, 3 do assert.is_true(same_bits(a.embeddings[j], b.embeddings[j])) end
    -- every parameter and buffer is stored under a stable name
    local t = ser.load_tensors(p)
    assert.is_true(same_bits(net.trunk.modules[2].running_var, t["trunk.conv1_bn.running_var"]))
    assert.is_truthy(t["trunk.module4.split.main.module4_sepconv2.pointwise.weight"])
    assert.is_truthy(t["heads.head3.dense.bias"])
    assert.is_truthy(t["classifier.weight"])
    os.remove(p)
  end)

  it("saves and rebuilds a plain nn tree from its constructor arguments", function()
    ac.manual_seed(2)
    local nn = ac.nn
    local net = nn.Sequential()
      :add(nn.Conv2d(2, 3, 3, 1, "same", 1, {bias = false}))
      :add(nn.BatchNorm2d(3, 1e-3, 0.01)):add(nn.ReLU())
      :add(nn.SeparableConv2d(3, 4, 3, 2, 1)):add(nn.GlobalAvgPool2d()):add(nn.Linear(4, 2))
    net:evaluate()
    local x = ac.randn(2, 2, 8, 8)
    local y = net:forward(x):clone()
    local p = tmpname()
    ac.save(p, net)
    local net2 = ac.load(p)
    assert.is_true(same_bits(y, net2:forward(x)))
    assert.equal(tostring(net), tostring(net2))
    os.remove(p)
  end)

  it("a truncated model file gives a clear error", function()
    local net = small()
    local p = tmpname()
    ac.save(p, net)
    local raw = read_raw(p)
    write_raw(p, raw:sub(1, #raw - 100))
    local ok, err = pcall(ac.load, p)
    assert.is_false(ok)
    assert.matches("truncated file: tensors need %d+ data bytes, the file has %d+ after the header", err)
    os.remove(p)
  end)

  it("weights-only loading reports every name, shape and dtype mismatch", function()
    local net = small()
    local p = tmpname()
    -- a file from a model with d = 8: shape mismatches in every head and the classifier
    ac.save(p, ac.models.minixception{in_channels = 1, size = 20, classes = 4, k = 3, d = 8})
    local ok, err = pcall(ac.load_weights, net, p)
    assert.is_false(ok)
    assert.matches("load_weights: .* does not match the model %(7 problems%)", err)
    assert.truthy(err:find("shape mismatch: heads.head1.dense.weight model [16, 128] file [8, 128]", 1, true))
    assert.truthy(err:find("shape mismatch: classifier.weight model [4, 48] file [4, 24]", 1, true))
    -- missing tensor, unexpected tensor, wrong dtype
    local tensors = ser.load_tensors(p)
    local good = {}
    for _, e in ipairs(ser.named_tensors(net)) do good[e.name] = e.tensor:clone() end
    good["classifier.bias"] = nil
    good["trunk.conv1.weight"] = good["trunk.conv1.weight"]:long()
    good["extra.thing"] = ac.zeros(2)
    ser.save_tensors(p, good)
    local before = net.classifier.weight:clone()
    net.classifier.weight:fill(0.25)
    ok, err = pcall(ac.load_weights, net, p)
    assert.is_false(ok)
    assert.truthy(err:find("missing in file: classifier.bias [4] float32", 1, true), err)
    assert.truthy(err:find("dtype mismatch: trunk.conv1.weight model float32 file I64", 1, true), err)
    assert.truthy(err:find("unexpected in file: extra.thing [2] F32", 1, true), err)
    -- nothing was copied on failure; a good file loads
    for _, row in ipairs(net.classifier.weight:totable()) do
      for _, v in ipairs(row) do assert.equal(0.25, v) end
    end
    assert.is_true(before:numel() == net.classifier.weight:numel())
    good["classifier.bias"] = ac.ones(4)
    good["trunk.conv1.weight"] = good["trunk.conv1.weight"]:float()
    good["extra.thing"] = nil
    ser.save_tensors(p, good)
    ac.load_weights(net, p)
    assert.same({1, 1, 1, 1}, net.classifier.bias:totable())
    -- a file without architecture cannot be rebuilt
    ok, err = pcall(ac.load, p)
    assert.is_false(ok)
    assert.matches("has no architecture in its metadata", err)
    assert.is_truthy(tensors)
    os.remove(p)
  end)

  it("checkpoints restore the model and the optimiser so training continues exactly", function()
    ac.manual_seed(8)
    local x, y = ac.randn(6, 1, 20, 20), ac.tensor({1, 2, 3, 4, 1, 2}, "int64")
    local function train(net, opt, steps)
      local ce = ac.nn.CrossEntropyCriterion()
      for _ = 1, steps do
        net:zeroGradParameters()
        local out = net:forward(x)
        ce:forward(out.logits, y)
        net:backward(x, {logits = ce:backward(out.logits, y)})
        opt:step()
      end
    end
    local a = small(); a.dropout.p = 0
    local b = a:clone()
    local oa = ac.optim.Adam(a, {lr = 1e-2, decay = 1e-3})
    train(a, oa, 4)
    local ob = ac.optim.Adam(b, {lr = 1e-2, decay = 1e-3})
    train(b, ob, 2)
    local p = tmpname()
    ser.save_checkpoint(p, {model = b, optim = ob, epoch = 7, note = "x"})
    local c = small(); c.dropout.p = 0
    local oc = ac.optim.Adam(c, {lr = 1e-2, decay = 1e-3})
    local ck = ser.load_checkpoint(p, c, oc)
    assert.equal(7, ck.epoch)
    assert.equal("x", ck.note)
    assert.equal(2, oc.t)
    train(c, oc, 2)
    local pa = a:getParameters()
    local pc = c:getParameters()
    assert.is_true(same_bits(pa, pc))
    os.remove(p)
  end)
end)
