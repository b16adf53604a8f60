#!/bin/sh
# Runs each fuzz harness for FUZZ_SECONDS (default 60), one after the other
# (the machine is shared), starting from the seeds of fuzz/make_corpus.py,
# the corpus kept from earlier runs and the regression inputs under
# spec/fixtures/fuzz/<name>. Prints executions, corpus size and crashes per
# harness and exits 1 when any harness found a crash (saved under
# build/fuzz/crashes/<name>/).
#   sh fuzz/run.sh [name ...]        names: npy safetensors csv image onnx model_meta
set -u
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
NAMES=${*:-npy safetensors csv image onnx model_meta}
/usr/bin/python3 fuzz/make_corpus.py build/fuzz/seeds >/dev/null || exit 1
status=0
for n in $NAMES; do
  bin=build/fuzz/fuzz_$n
  [ -x "$bin" ] || { echo "$bin missing: run make fuzz"; exit 1; }
  corpus=build/fuzz/corpus/$n
  crashes=build/fuzz/crashes/$n
  mkdir -p "$corpus" "$crashes"
  extra=""
  [ -d spec/fixtures/fuzz/$n ] && extra=spec/fixtures/fuzz/$n
  log=build/fuzz/$n.log
  "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -max_len=65536 -timeout=20 \
    -dict=fuzz/$n.dict -artifact_prefix="$crashes/" -print_final_stats=1 \
    "$corpus" build/fuzz/seeds/$n $extra >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  ncorp=$(ls "$corpus" | wc -l)
  ncrash=$(ls "$crashes" | wc -l)
  echo "fuzz_$n: ${SECS} s, ${execs:-?} executions, corpus $ncorp files, $ncrash crash files, exit $rc"
  if [ $rc -ne 0 ]; then status=1; grep -m3 -E 'ERROR|SUMMARY|runtime error' "$log"; fi
done
exit $status
