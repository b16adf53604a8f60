#!/bin/sh
# Writing to a full device, a full disk or a read-only folder must fail with
# a clear Lua error and leave the previous file intact (no truncated or
# half-written file in its place, no temporary file left behind).
#
# Writers: ac.save (model), serialize.save_checkpoint (checkpoint), ac.save_npy,
# serialize.save_tensors, ac.image.save (PNG and JPEG), metrics.CSVLog,
# synthfer.write_csv. Places:
#   device    a private copy of /dev/full (mknod c 1 7 in a temporary folder:
#             a writer that renames a temporary file over its target would
#             destroy the real /dev/full, so the test never points at it)
#   full      a 64 kB tmpfs holding the previous versions; the new ones are larger
#   readonly  a tmpfs holding the previous versions, remounted read-only
# Needs root (mount, mknod). Ends with "N passed, N failed".
#   sh tools/full_disk_test.sh        (from the repository root, after make)
set -u
cd "$(dirname "$0")/.."
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;"
export LUA_CPATH_5_4="./build/?.so;;"
[ -f build/adcorre/core.so ] || { echo "build/adcorre/core.so missing: run make"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "full_disk_test: needs root (mount, mknod)"; exit 2; }
TMP=$(mktemp -d /tmp/ac_disk.XXXXXX)
cleanup() {
  umount "$TMP/full" 2>/dev/null
  umount "$TMP/ro" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/driver.lua" <<'EOF'
-- driver.lua MODE DIR: MODE = prepare (write the previous versions) or
-- attack (overwrite them with larger versions and check what happened) or
-- device (write each kind to DIR/<kind>, a full-device node).
local ac = require("adcorre")
local serialize = require("adcorre.serialize")
local mode, dir = arg[1], arg[2]

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- each writer: name, file, write(path, big) (big = the larger new version)
local function model(big)
  ac.manual_seed(big and 2 or 1)
  if big then return ac.models.minixception{ size = 48, classes = 7, k = 2, d = 16 } end
  return ac.nn.Linear(4, 2)
end
local writers = {
  { "model", "m.safetensors", function(p, big) ac.save(p, model(big)) end },
  { "checkpoint", "ck.safetensors", function(p, big)
      local m = model(big)
      local o = ac.optim.Adam(m, { lr = 1e-3 })
      serialize.save_checkpoint(p, { model = m, optim = o, epoch = big and 2 or 1 })
    end },
  { "npy", "a.npy", function(p, big) ac.manual_seed(3); ac.save_npy(p, ac.randn(big and 40000 or 16)) end },
  { "tensors", "t.safetensors", function(p, big) ac.manual_seed(4); serialize.save_tensors(p, { w = ac.randn(big and 40000 or 16) }) end },
  { "png", "i.png", function(p, big) ac.manual_seed(5); ac.image.save(p, ac.rand(3, big and 160 or 8, big and 160 or 8)) end },
  { "jpeg", "i.jpg", function(p, big) ac.manual_seed(6); ac.image.save(p, ac.rand(3, big and 256 or 8, big and 256 or 8), { quality = 100 }) end },
  -- a log is appended to (resumed, not replaced): its previous rows must survive as a prefix
  -- (on a device it starts a fresh log: resuming would read the device as the old log)
  { "csvlog", "log.csv", function(p, big, device)
      local log = ac.metrics.CSVLog(p, { "epoch", "loss" }, { fresh = device })
      for e = 1, big and 6000 or 2 do log:write({ epoch = e, loss = 1 / e }) end
    end, append = true },
  { "synthfer_csv", "fer.csv", function(p, big) ac.synthfer.write_csv(p, { seed = 1, train = big and 60 or 1, public = 0, private = 0 }) end },
}

local function leftovers(d, file)
  local out = {}
  local p = io.popen("ls -a '" .. d .. "'")
  for n in p:lines() do
    if n ~= "." and n ~= ".." and n ~= file and n:sub(1, #file) == file then out[#out + 1] = n end
  end
  p:close()
  return out
end

local pass, fail = 0, 0
local function report(ok, what, detail)
  if ok then pass = pass + 1 else fail = fail + 1 end
  print(("%-5s %s: %s"):format(ok and "ok" or "FAIL", what, detail))
end

if mode == "prepare" then
  for _, w in ipairs(writers) do w[3](dir .. "/" .. w[2], false) end
  os.exit(0)
elseif mode == "attack" then
  for _, w in ipairs(writers) do
    local p = dir .. "/" .. w[2]
    local before = assert(read(p), "previous " .. p .. " missing")
    local ok, e = pcall(w[3], p, true)
    e = tostring(e):gsub("\n.*", "")
    local after = read(p)
    local left = leftovers(dir, w[2])
    local intact = after == before or (w.append and after ~= nil and after:sub(1, #before) == before)
    local good = (not ok) and intact and #left == 0
    local detail
    if ok then detail = "no error"
    else detail = e end
    if not intact then detail = detail .. "; PREVIOUS FILE CHANGED (" .. #before .. " -> " .. (after and #after or "missing") .. " bytes)" end
    if #left > 0 then detail = detail .. "; LEFT BEHIND: " .. table.concat(left, " ") end
    if w.append and after and after:sub(1, #before) == before then
      -- the rows written before the failure read back, the partial last line dropped
      local okr, cols, rows = pcall(ac.metrics.read_csv, p)
      if not okr or #cols ~= 2 or #rows < 2 then
        good = false
        detail = detail .. "; the log does not read back: " .. tostring(okr and #rows or cols)
      else
        detail = detail .. ("; log reads back with %d rows"):format(#rows)
      end
    end
    if good and w[1] == "model" then
      local okl, m = pcall(ac.load, p)
      good = okl and m.weight ~= nil
      if not good then detail = detail .. "; previous model does not load: " .. tostring(m) end
    end
    report(good, arg[3] .. " " .. w[1], detail)
  end
elseif mode == "device" then
  for _, w in ipairs(writers) do
    local p = dir .. "/" .. w[1] .. "_" .. w[2]
    os.execute("rm -f '" .. p .. "' && mknod '" .. p .. "' c 1 7")
    local ok, e = pcall(w[3], p, true, true)
    e = tostring(e):gsub("\n.*", "")
    local p2 = io.popen("stat -c %F '" .. p .. "' 2>&1")
    local kind = p2:read("l")
    p2:close()
    local left = leftovers(dir, w[1] .. "_" .. w[2])
    local good = (not ok) and kind == "character special file" and #left == 0
    local detail = ok and "no error" or e
    if kind ~= "character special file" then detail = detail .. "; THE DEVICE NODE WAS REPLACED (now: " .. tostring(kind) .. ")" end
    if #left > 0 then detail = detail .. "; LEFT BEHIND: " .. table.concat(left, " ") end
    report(good, "device " .. w[1], detail)
  end
end
print(("RESULT %d %d"):format(pass, fail))
EOF

total_pass=0
total_fail=0
tally() {
  r=$(grep '^RESULT' "$TMP/log" | tail -n 1)
  grep -v '^RESULT' "$TMP/log"
  set -- $r
  total_pass=$((total_pass + ${2:-0}))
  total_fail=$((total_fail + ${3:-1}))
}

# 1. a full device
mkdir -p "$TMP/dev"
lua5.4 "$TMP/driver.lua" device "$TMP/dev" >"$TMP/log" 2>&1
tally

# 2. a full disk: 64 kB tmpfs with the previous versions, new versions larger
mkdir -p "$TMP/full"
mount -t tmpfs -o size=64k tmpfs "$TMP/full" || { echo "cannot mount a tmpfs"; exit 2; }
lua5.4 "$TMP/driver.lua" prepare "$TMP/full" || { echo "prepare failed"; exit 2; }
echo "full disk: $(df -k "$TMP/full" | awk 'NR==2 {print $3 " kB used of " $2}')"
lua5.4 "$TMP/driver.lua" attack "$TMP/full" "full-disk" >"$TMP/log" 2>&1
tally

# 3. a read-only folder
mkdir -p "$TMP/ro"
mount -t tmpfs -o size=4m tmpfs "$TMP/ro" || { echo "cannot mount a tmpfs"; exit 2; }
lua5.4 "$TMP/driver.lua" prepare "$TMP/ro" || { echo "prepare failed"; exit 2; }
mount -o remount,ro "$TMP/ro" || { echo "cannot remount read-only"; exit 2; }
lua5.4 "$TMP/driver.lua" attack "$TMP/ro" "read-only" >"$TMP/log" 2>&1
tally

echo "full_disk_test: $total_pass passed, $total_fail failed"
[ $total_fail -eq 0 ]
