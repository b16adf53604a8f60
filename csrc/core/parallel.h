/*
 * parallel.h - the library's one thread pool. ac_set_num_threads(n) sets both
 * this pool and OpenBLAS, so the process never runs more compute threads than
 * asked for. Work is split into contiguous ranges [begin, end) of an index
 * space; the calling thread takes part. Kernels must not call
 * ac_parallel_for from inside a task (nested calls run serially).
 */
#ifndef AC_PARALLEL_H
#define AC_PARALLEL_H
#include <stdint.h>

typedef void (*ac_task_fn)(void *ctx, int64_t begin, int64_t end, int tid);

void ac_set_num_threads(int n); /* n < 1 means 1; also sets OpenBLAS */
int ac_get_num_threads(void);
/* Runs fn over [0, n) split into at most ac_get_num_threads() ranges of at
 * least `grain` items each. tid is 0..nthreads-1 (for per-thread scratch). */
void ac_parallel_for(int64_t n, int64_t grain, ac_task_fn fn, void *ctx);
/* Monotonic wall-clock seconds. */
double ac_now(void);

#endif
