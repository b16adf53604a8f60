#!/bin/sh
# The end-to-end training loop against the pure training step (issue 17):
# examples/train.lua over a FER-2013-shaped CSV (synthfer faces, 48x48 grey;
# 224x224 RGB for Xception), loader and augmentation on, against
# bench/ac_side.lua's training steps (the `make bench` figure) at the same
# batch and threads, alternating, ROUNDS rounds. Prints each round's two
# rates and their ratio; the train.lua rate is the epoch's images/s as its
# log.csv records it (the training loop only, evaluation excluded).
#   sh bench/train_e2e.sh [minixception|xception] [ROUNDS]
# LIMIT (images per epoch; 8000 / 160), AUGMENT (standard), WORKERS (2),
# THREADS (2) override.
set -u
cd "$(dirname "$0")/.."
model=${1:-minixception}; rounds=${2:-3}
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;"
AUGMENT=${AUGMENT:-standard}; WORKERS=${WORKERS:-2}; THREADS=${THREADS:-2}
if [ "$model" = xception ]; then
  B=8; LIMIT=${LIMIT:-160}; ITERS=10; shape="--size 224 --channels 3"; side="--size 224"
else
  B=64; LIMIT=${LIMIT:-8000}; ITERS=100; shape=""; side=""
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lua5.4 -e "require('adcorre').synthfer.write_csv('$tmp/fer2013.csv', {seed = 1, train = $LIMIT, public = 64, private = 64})" \
  > /dev/null || exit 1
rate() { lua5.4 -e 'print(string.format("%.1f", require("adcorre.json").decode(io.read("a")).train_ips))'; }
echo "model $model batch $B threads $THREADS workers $WORKERS augment $AUGMENT, $LIMIT images per epoch"
for r in $(seq "$rounds"); do
  pure=$(lua5.4 bench/ac_side.lua --model "$model" --batch $B --threads "$THREADS" $side --train-iters $ITERS \
    --infer-iters 1 --lat-iters 1 2>/dev/null | rate)
  lua5.4 examples/train.lua --dataset fer2013 --data "$tmp/fer2013.csv" --arch "$model" $shape --epochs 1 \
    --batch $B --augment "$AUGMENT" --workers "$WORKERS" --threads "$THREADS" --no-plots --out "$tmp/run" \
    > /dev/null 2>&1 || { echo "train.lua failed"; exit 1; }
  e2e=$(tail -1 "$tmp/run/log.csv" | cut -d, -f12)
  lua5.4 -e "print(string.format('round %d: pure step %.1f img/s, train.lua %.1f img/s, ratio %.3f  [load %s]', $r, $pure, $e2e, $e2e / $pure, io.open('/proc/loadavg'):read('a'):match('^(%S+ %S+ %S+)')))"
done
