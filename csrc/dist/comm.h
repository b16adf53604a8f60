/*
 * comm.h - collective communication over MPI for data-parallel training, on
 * plain buffers. No Lua here; the binding is csrc/lua/lua_dist.c and both
 * are linked into build/adcorre/distributed_core.so, the only object that
 * needs libmpi (core.so loads without MPI).
 *
 * Every call is collective over MPI_COMM_WORLD unless said otherwise, and
 * must be made by every rank in the same order. MPI errors are returned (the
 * communicator's error handler is MPI_ERRORS_RETURN): each function returns
 * 0, or -1 with a message for ac_dist_error(). Counts are elements and may
 * exceed INT_MAX (the calls are split).
 *
 * Element types: AC_DIST_F32, AC_DIST_I64, AC_DIST_U8, AC_DIST_F64 (the
 * first three are ac_dtype's values). Reductions: sum, max, min; "mean" is
 * a sum divided by the size, done by the caller.
 */
#ifndef AC_DIST_COMM_H
#define AC_DIST_COMM_H
#include <stdint.h>

enum { AC_DIST_F32 = 0, AC_DIST_I64 = 1, AC_DIST_U8 = 2, AC_DIST_F64 = 3 };
enum { AC_DIST_SUM = 0, AC_DIST_MAX = 1, AC_DIST_MIN = 2 };

/* The message of the calling thread's last failure. */
const char *ac_dist_error(void);

/* Initialises MPI once (MPI_THREAD_FUNNELED: only the calling thread talks
 * to MPI; the library's compute threads never do). Returns rank and size.
 * Calling it again returns the same values. */
int ac_dist_init(int *rank, int *size);
/* 1 after ac_dist_init and before ac_dist_finalize. */
int ac_dist_active(void);
int ac_dist_finalize(void);
/* Ends every rank of the job with `code` (MPI_Abort): for a rank that failed,
 * so that the others do not wait for it forever. Returns only on error. */
int ac_dist_abort(int code);
/* Name of the processor (host) of this rank, written into buf. */
int ac_dist_host(char *buf, int n);

int ac_dist_barrier(void);
/* In place: buf[0..n) = op over the ranks. */
int ac_dist_allreduce(void *buf, int64_t n, int type, int op);
/* buf[0..n) of rank root to every rank. */
int ac_dist_broadcast(void *buf, int64_t n, int type, int root);
/* counts[r] = n of rank r, for every r (counts has size() entries). */
int ac_dist_allgather_count(int64_t n, int64_t *counts);
/* recv = concatenation over ranks of each rank's send (counts[r] elements
 * from rank r, as ac_dist_allgather_count gave). */
int ac_dist_allgatherv(const void *send, int64_t n, void *recv, const int64_t *counts, int type);

#endif
