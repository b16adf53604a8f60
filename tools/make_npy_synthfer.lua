--- make_npy_synthfer.lua - writes a synthfer data set in the npy layout
-- (train_images.npy [N,48,48] uint8, train_labels.npy [N] int64 0-based,
-- test_*), for runs of examples/train.lua --dataset npy:
--
--   lua5.4 tools/make_npy_synthfer.lua OUTDIR [NTRAIN [NTEST]]
local ac = require("adcorre")
local fs = require("adcorre.fs")

local out, ntrain, ntest = arg[1], tonumber(arg[2] or "1400"), tonumber(arg[3] or "700")
if not out then error("usage: lua5.4 tools/make_npy_synthfer.lua OUTDIR [NTRAIN [NTEST]]", 0) end
assert(fs.mkdir_p(out), "cannot create " .. out)
for _, sp in ipairs({ { "train", ntrain, 11 }, { "test", ntest, 12 } }) do
  local x, y = ac.synthfer.generate(math.tointeger(sp[2]), { seed = sp[3], dtype = "uint8" })
  x = x:view(sp[2], 48, 48)
  ac.save_npy(out .. "/" .. sp[1] .. "_images.npy", x:contiguous())
  ac.save_npy(out .. "/" .. sp[1] .. "_labels.npy", y - 1)
end
print(("wrote %s: %d train, %d test images of 48x48"):format(out, ntrain, ntest))
