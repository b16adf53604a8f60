#!/bin/sh
# Leak check of the tensor API: tools/tensor_exercise.lua under
#   valgrind --leak-check=full
# with the normal build (valgrind emulates no AVX-512, so the kernels take
# their portable paths, which the specs also run). Passes when valgrind
# reports no definitely lost bytes and no memory errors; prints valgrind's
# leak summary and ends with "N passed, N failed" (one case).
#
#   sh tools/valgrind_check.sh [rounds]     (from the repository root, after make;
#                                            valgrind comes with `make deps-dev`)
set -u
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (make deps-dev)"; exit 2; }
[ -f build/adcorre/core.so ] || { echo "build/adcorre/core.so missing: run make"; exit 2; }
LOG=$(mktemp /tmp/ac_valgrind.XXXXXX)
trap 'rm -f "$LOG"' EXIT
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --error-exitcode=3 --log-file="$LOG" lua5.4 tools/tensor_exercise.lua "${1:-2}"
rc=$?
sed -n '/HEAP SUMMARY/,$p' "$LOG" | sed 's/^==[0-9]*== //'
if [ $rc -eq 0 ] && grep -q "definitely lost: 0 bytes\|All heap blocks were freed" "$LOG"; then
  echo "1 passed, 0 failed"
else
  echo "valgrind exit status $rc"
  echo "0 passed, 1 failed"
  exit 1
fi
