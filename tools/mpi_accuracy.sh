#!/bin/sh
# Accuracy of a 2-rank examples/train.lua run (per-rank batch B/2) against a
# single-process run with the same global batch B, on a synthfer npy set,
# for seeds 1 2 3 (make test-mpi-accuracy). Prints each run's test accuracy,
# the per-seed differences and "N passed, N failed": a seed passes when the
# two runs are within TOL (default 0.05) of each other.
# EPOCHS (4), NTRAIN (6000), NTEST (1000), B (50), AUGMENT (none) override
# the run; the defaults give about 480 steps, enough to leave chance level.
set -u
MPIRUN=${MPIRUN:-"mpirun --allow-run-as-root --oversubscribe"}
EPOCHS=${EPOCHS:-4}; NTRAIN=${NTRAIN:-6000}; NTEST=${NTEST:-1000}; B=${B:-50}; TOL=${TOL:-0.05}
AUGMENT=${AUGMENT:-none}
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lua5.4 tools/make_npy_synthfer.lua "$tmp/npy" "$NTRAIN" "$NTEST" > /dev/null || exit 1
acc() { lua5.4 -e 'print(string.format("%.4f", require("adcorre.json").decode(io.read("a")).accuracy))' < "$1"; }
common="--dataset npy --data $tmp/npy --epochs $EPOCHS --augment $AUGMENT --workers 1 --no-plots --json"
pass=0; fail=0
for seed in 1 2 3; do
  lua5.4 examples/train.lua $common --seed $seed --batch $B --threads 2 --out "$tmp/one$seed" > "$tmp/one$seed.json" 2> /dev/null
  $MPIRUN -np 2 -x LUA_PATH_5_4 -x LUA_CPATH_5_4 lua5.4 examples/train.lua $common --seed $seed --batch $((B / 2)) \
    --threads 1 --out "$tmp/two$seed" > "$tmp/two$seed.json" 2> /dev/null
  a1=$(acc "$tmp/one$seed.json"); a2=$(acc "$tmp/two$seed.json")
  d=$(lua5.4 -e "print(string.format('%.4f', $a2 - $a1))")
  if lua5.4 -e "os.exit(math.abs($a2 - $a1) <= $TOL)"; then pass=$((pass + 1)); r=ok; else fail=$((fail + 1)); r=FAILED; fi
  echo "$r: seed $seed: 1 process batch $B: $a1; 2 ranks x $((B / 2)): $a2 (difference $d)"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
