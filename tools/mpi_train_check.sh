#!/bin/sh
# 2-rank examples/train.lua checks (make test-mpi): one JSON result line and
# one model and checkpoint from a run; a rank killed mid-epoch ends the job
# with a message and leaves the last checkpoint intact; --resume from it
# continues on every rank to the last epoch. Prints "N passed, N failed".
# MPIRUN overrides the launcher (default: as root, oversubscribed).
set -u
MPIRUN=${MPIRUN:-"mpirun --allow-run-as-root --oversubscribe"}
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAILED: $1"; }
run2() { $MPIRUN -np 2 -x LUA_PATH_5_4 -x LUA_CPATH_5_4 lua5.4 examples/train.lua --dataset npy --data "$tmp/npy" \
  --threads 1 --workers 1 --batch 25 --no-plots "$@"; }

lua5.4 tools/make_npy_synthfer.lua "$tmp/npy" 700 350 > /dev/null || { echo "cannot build the data set"; exit 1; }

# 1. one result line, one model, one checkpoint
run2 --epochs 1 --out "$tmp/a" --json > "$tmp/a.out" 2> "$tmp/a.err"
rc=$?
lines=$(wc -l < "$tmp/a.out")
if [ $rc -eq 0 ] && [ "$lines" -eq 1 ] && head -c 1 "$tmp/a.out" | grep -q '{' \
   && lua5.4 -e 'local j = require("adcorre.json").decode(io.read("a")); assert(j.accuracy and j.epochs == 1)' < "$tmp/a.out"; then
  ok "2-rank run prints exactly one JSON line ($(cut -c1-60 "$tmp/a.out")...)"
else
  bad "2-rank run: rc $rc, $lines stdout lines"; cat "$tmp/a.err"
fi
n=$(ls "$tmp/a" | grep -c '\.safetensors$')
if [ -f "$tmp/a/model.safetensors" ] && [ -f "$tmp/a/checkpoint.safetensors" ] && [ "$n" -eq 3 ]; then
  ok "one model, one checkpoint (and best): $(ls "$tmp/a" | tr '\n' ' ')"
else bad "output files: $(ls "$tmp/a" | tr '\n' ' ')"; fi
if grep -q "global batch 50" "$tmp/a.err"; then ok "the log states the global batch"; else bad "no global batch in the log"; fi

# 2. kill rank 1 after the first epoch is logged. The run asks for 40 epochs
# so that it is still going when the kill comes, however fast the machine
# (3 epochs of this set can end within the polling interval when it is idle).
$MPIRUN -np 2 -x LUA_PATH_5_4 -x LUA_CPATH_5_4 lua5.4 examples/train.lua --dataset npy --data "$tmp/npy" \
  --threads 1 --workers 1 --batch 10 --no-plots --epochs 40 --out "$tmp/k" > "$tmp/k.out" 2> "$tmp/k.err" &
mpid=$! # mpirun itself: its children are the ranks
i=0
# the epoch's checkpoint is written after its log row: wait for both
while [ $i -lt 1200 ] && ! { [ "$(cat "$tmp/k/log.csv" 2>/dev/null | wc -l)" -ge 2 ] && \
  [ -f "$tmp/k/checkpoint.safetensors" ]; }; do sleep 0.1; i=$((i + 1)); done
ranks=$(pgrep -P $mpid lua5.4 | tr '\n' ' ')
victim=$(echo $ranks | cut -d' ' -f2)
ck_before=$(md5sum "$tmp/k/checkpoint.safetensors" 2>/dev/null | cut -d' ' -f1)
if [ -n "$victim" ]; then kill -9 "$victim"; fi
wait $mpid
krc=$?
ck_after=$(md5sum "$tmp/k/checkpoint.safetensors" 2>/dev/null | cut -d' ' -f1)
rows=$(($(wc -l < "$tmp/k/log.csv") - 1))
if [ -n "$victim" ] && [ $krc -ne 0 ] && grep -qi "signal 9\|killed" "$tmp/k.out" "$tmp/k.err"; then
  ok "killing rank 1 (pid $victim) after $rows epoch(s) ends the job (mpirun exit $krc): $(grep -hi "signal 9\|killed" "$tmp/k.out" "$tmp/k.err" | head -1 | sed 's/^ *//')"
else bad "kill: victim '$victim', exit $krc"; tail -5 "$tmp/k.err"; fi
if [ -n "$ck_before" ] && [ "$ck_before" = "$ck_after" ]; then ok "the last checkpoint is intact (epoch $rows)"
else bad "checkpoint changed or missing ($ck_before / $ck_after)"; fi

# 3. --resume continues on every rank
want=$((rows + 2))
run2 --epochs $want --out "$tmp/k" --resume "$tmp/k/checkpoint.safetensors" --json > "$tmp/r.out" 2> "$tmp/r.err"
rrc=$?
last=$(tail -1 "$tmp/k/log.csv" | cut -d, -f1)
if [ $rrc -eq 0 ] && [ "$last" = $want ] && grep -q "resumed from" "$tmp/r.err" && [ "$(wc -l < "$tmp/r.out")" -eq 1 ]; then
  ok "--resume after epoch $rows continues to epoch $want on 2 ranks"
else bad "resume: exit $rrc, last logged epoch '$last'"; tail -5 "$tmp/r.err"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
