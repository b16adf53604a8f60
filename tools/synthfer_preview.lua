--- tools/synthfer_preview.lua - writes a PNG grid of synthfer samples, one
-- row per class (Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger from
-- top to bottom).
--
--   lua5.4 tools/synthfer_preview.lua [OUT.png] [--per_class 10] [--seed 0]
--       [--difficulty 1] [--noise ..] [--occlusion ..] [--blur ..] [--max_rotation ..]
--
-- `--clean` turns off noise, blur, occluders and rotation and sets the
-- difficulty to 0: the class prototypes on varied identities.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ac = require("adcorre")

local out = "synthfer_preview.png"
local opts = {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--help" or a == "-h" then
    print("usage: lua5.4 tools/synthfer_preview.lua [OUT.png] [--per_class N] [--seed S] [--clean]\n" ..
      "       [--difficulty D] [--noise S] [--occlusion P] [--blur P] [--max_rotation DEG]")
    os.exit(0)
  elseif a == "--clean" then
    opts.difficulty, opts.noise, opts.blur, opts.occlusion, opts.max_rotation = 0, 0, 0, 0, 0
    i = i + 1
  elseif a:match("^%-%-") then
    local v = tonumber(arg[i + 1])
    if v == nil then
      io.stderr:write("synthfer_preview: " .. a .. " needs a number\n")
      os.exit(2)
    end
    local key = a:sub(3)
    opts[key] = (key == "seed" or key == "per_class") and math.tointeger(v) or v
    i = i + 2
  else
    out = a
    i = i + 1
  end
end
local ok, err = pcall(ac.synthfer.preview, out, opts)
if not ok then
  io.stderr:write(tostring(err) .. "\n")
  os.exit(1)
end
print(("wrote %s (rows: %s)"):format(out, table.concat(ac.synthfer.classes, ", ")))
