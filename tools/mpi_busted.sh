#!/bin/sh
# Runs the MPI specs (spec_mpi/) on every rank of an mpirun job: rank 0's
# busted output goes to the terminal, the other ranks' to build/mpi-rank<N>.log
# (shown when that rank fails). The exit status is the rank's busted status,
# which mpirun passes on.
rank=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}
if [ "$rank" = 0 ]; then
  exec lua5.4 /usr/bin/busted --run=mpi "$@"
fi
mkdir -p build
lua5.4 /usr/bin/busted --run=mpi "$@" > build/mpi-rank$rank.log 2>&1
rc=$?
if [ $rc -ne 0 ]; then echo "rank $rank failed:"; cat build/mpi-rank$rank.log; fi
exit $rc
