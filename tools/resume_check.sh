#!/bin/sh
# tools/resume_check.sh - a training run killed with SIGKILL in the middle of
# an epoch and restarted with --resume must end with the same metrics as an
# uninterrupted run with the same seed and thread count.
#
#   sh tools/resume_check.sh [workdir]
#
# Prints both final JSON results and "resume check: identical" (exit 0) or
# the difference (exit 1).
set -eu
cd "$(dirname "$0")/.."
W=${1:-$(mktemp -d)}
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;"
mkdir -p "$W"
W="$W" lua5.4 -e 'require("adcorre").synthfer.write_csv(os.getenv("W") .. "/fer2013.csv", {seed = 3, train = 12000, public = 0, private = 700})' 
ARGS="--dataset fer2013 --data $W/fer2013.csv --epochs 4 --batch 50 --threads 2 --workers 2 --seed 7 --no-plots --json"

# 1. uninterrupted
lua5.4 examples/train.lua $ARGS --out "$W/straight" > "$W/straight.json" 2> "$W/straight.err"

# 2. killed in the middle of epoch 2, then resumed
lua5.4 examples/train.lua $ARGS --out "$W/killed" > /dev/null 2> "$W/killed.err" &
pid=$!
# wait for the checkpoint of epoch 1, then for part of epoch 2
while [ ! -f "$W/killed/checkpoint.safetensors" ]; do
  if ! kill -0 $pid 2>/dev/null; then echo "resume check: the run ended before its first checkpoint"; exit 1; fi
  sleep 0.2
done
sleep 1.5
kill -9 $pid
wait $pid 2>/dev/null || true
# the kill must have landed inside epoch 2, before its end-of-epoch line
if grep -q '^epoch 2/' "$W/killed.err"; then
  echo "resume check: the run finished epoch 2 before it was killed (a faster machine: raise the train size)"
  exit 1
fi
echo "killed the run (pid $pid) during epoch 2: $(tail -n 1 "$W/killed.err" | cut -c1-100)"
lua5.4 examples/train.lua $ARGS --out "$W/killed" --resume "$W/killed/checkpoint.safetensors" > "$W/resumed.json" 2> "$W/resumed.err"

tail -n 1 "$W/straight.json" > "$W/a.json"
tail -n 1 "$W/resumed.json" > "$W/b.json"
A="$W/a.json" B="$W/b.json" lua5.4 -e '
  local json = require("adcorre.json")
  local function rd(p) local f = assert(io.open(p)); local s = f:read("a"); f:close(); return json.decode(s) end
  local a, b = rd(os.getenv("A")), rd(os.getenv("B"))
  local keys = {"accuracy", "mean_class_accuracy", "confusion", "f1", "best_accuracy", "best_epoch"}
  local same = true
  for _, k in ipairs(keys) do
    if json.encode(a[k]) ~= json.encode(b[k]) then
      same = false
      print(("differs: %s: %s vs %s"):format(k, json.encode(a[k]), json.encode(b[k])))
    end
  end
  print(("uninterrupted: accuracy %.4f  mean class %.4f"):format(a.accuracy, a.mean_class_accuracy))
  print(("resumed:       accuracy %.4f  mean class %.4f"):format(b.accuracy, b.mean_class_accuracy))
  if not same then print("resume check: DIFFERENT"); os.exit(1) end
  print("resume check: identical")'
