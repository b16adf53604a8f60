--- tools/image_torch_compare.lua - compares ac.image.resize (bilinear up,
-- area down by integer factors) and ac.image.pad (reflect / replicate) with
-- PyTorch 1.13 (torch.nn.functional.interpolate / pad) on random images.
--
--   lua5.4 tools/image_torch_compare.lua      (needs /usr/bin/python3 with torch)
--
-- Prints one line per case with the max |difference|.
local ac = require("adcorre")
local fs = require("adcorre.fs")

local dir = os.tmpname()
os.remove(dir)
assert(fs.mkdir_p(dir))
ac.manual_seed(1)

local cases = {
  { "bilinear", 3, 17, 23, 40, 51 },
  { "bilinear", 1, 48, 48, 224, 224 },
  { "bilinear", 3, 5, 7, 6, 19 },
  { "area", 3, 48, 48, 24, 24 },
  { "area", 1, 224, 224, 56, 56 },
  { "area", 3, 30, 60, 10, 20 },
}
local lines = {}
for i, c in ipairs(cases) do
  local x = ac.rand(c[2], c[3], c[4])
  local y = ac.image.resize(x, c[5], c[6])
  ac.save_npy(("%s/in%d.npy"):format(dir, i), x)
  ac.save_npy(("%s/out%d.npy"):format(dir, i), y)
  lines[#lines + 1] = ("('%s', %d, %d, %d)"):format(c[1], i, c[5], c[6])
end
local px = ac.rand(2, 9, 11)
ac.save_npy(dir .. "/pad_in.npy", px)
ac.save_npy(dir .. "/pad_reflect.npy", ac.image.pad(px, { 3, 2, 4, 1 }, "reflect"))
ac.save_npy(dir .. "/pad_replicate.npy", ac.image.pad(px, { 3, 2, 4, 1 }, "replicate"))

local py = ([[
import numpy as np, torch, torch.nn.functional as F
d = %q
for mode, i, h, w in [%s]:
    x = torch.from_numpy(np.load(f"{d}/in{i}.npy"))[None]
    ours = np.load(f"{d}/out{i}.npy")
    if mode == "bilinear":
        ref = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    else:
        ref = F.interpolate(x, size=(h, w), mode="area")[0].numpy()
    print(f"resize {mode:8s} {tuple(x.shape[1:])} -> {(h, w)}: max |diff| = {np.abs(ref - ours).max():.3g}")
x = torch.from_numpy(np.load(f"{d}/pad_in.npy"))[None]
for mode in ["reflect", "replicate"]:
    ref = F.pad(x, (4, 1, 3, 2), mode=mode)[0].numpy()
    ours = np.load(f"{d}/pad_{mode}.npy")
    print(f"pad {mode}: max |diff| = {np.abs(ref - ours).max():.3g}")
]]):format(dir, table.concat(lines, ", "))
local f = assert(io.open(dir .. "/cmp.py", "w"))
f:write(py)
f:close()
local ok = os.execute("/usr/bin/python3 '" .. dir .. "/cmp.py'")
os.execute("rm -rf '" .. dir .. "'")
if not ok then os.exit(1) end
