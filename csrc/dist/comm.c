/*
 * comm.c - the MPI calls behind adcorre.distributed (see comm.h): init and
 * finalize with errors returned instead of aborting, allreduce, broadcast,
 * allgather of per-rank row counts and of variable-size blocks. No Lua here.
 */
#define _GNU_SOURCE /* dladdr */
#include "dist/comm.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

static _Thread_local char dist_msg[512];
static int dist_inited, dist_rank, dist_size;

const char *ac_dist_error(void) { return dist_msg; }

static int dist_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int dist_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dist_msg, sizeof dist_msg, fmt, ap);
  va_end(ap);
  return -1;
}

/* An MPI return code as a failure naming the call. */
static int mpi_check(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return 0;
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error code %d", rc);
  return dist_fail("%s failed on rank %d of %d: %s", what, dist_rank, dist_size, s);
}

static int need_init(const char *what) {
  if (dist_inited) return 0;
  return dist_fail("%s: call dist.init() first", what);
}

static MPI_Datatype mpi_type(int type) {
  switch (type) {
  case AC_DIST_F32: return MPI_FLOAT;
  case AC_DIST_I64: return MPI_INT64_T;
  case AC_DIST_U8: return MPI_UINT8_T;
  default: return MPI_DOUBLE;
  }
}

static size_t type_size(int type) {
  switch (type) {
  case AC_DIST_F32: return 4;
  case AC_DIST_U8: return 1;
  default: return 8;
  }
}

int ac_dist_init(int *rank, int *size) {
  if (!dist_inited) {
    int already = 0, done = 0;
    MPI_Initialized(&already);
    MPI_Finalized(&done);
    if (done) return dist_fail("dist.init: MPI was finalized in this process; it cannot start again");
    if (!already) {
      /* Lua loads this object with RTLD_LOCAL, so libmpi's symbols are not
       * global; Open MPI's plugins (mca_*.so) need them. Promote the
       * already-loaded libmpi to the global scope before MPI_Init. */
      Dl_info info;
      if (dladdr((void *)&MPI_Init, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
      int provided = 0;
      int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
      if (rc != MPI_SUCCESS) return dist_fail("dist.init: MPI_Init_thread failed (code %d)", rc);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size);
    dist_inited = 1;
  }
  *rank = dist_rank;
  *size = dist_size;
  return 0;
}

int ac_dist_active(void) { return dist_inited; }

int ac_dist_finalize(void) {
  if (!dist_inited) return 0;
  dist_inited = 0;
  return mpi_check(MPI_Finalize(), "MPI_Finalize");
}

int ac_dist_abort(int code) {
  if (!dist_inited) return dist_fail("dist.abort: MPI is not initialised");
  return mpi_check(MPI_Abort(MPI_COMM_WORLD, code), "MPI_Abort");
}

int ac_dist_host(char *buf, int n) {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  if (need_init("dist.host") || mpi_check(MPI_Get_processor_name(name, &len), "MPI_Get_processor_name")) return -1;
  snprintf(buf, (size_t)n, "%s", name);
  return 0;
}

int ac_dist_barrier(void) {
  if (need_init("dist.barrier")) return -1;
  return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

/* Calls are split into pieces of at most CHUNK elements (MPI counts are int). */
#define CHUNK ((int64_t)1 << 30)

int ac_dist_allreduce(void *buf, int64_t n, int type, int op) {
  if (need_init("dist.allreduce")) return -1;
  MPI_Op mop = op == AC_DIST_MAX ? MPI_MAX : op == AC_DIST_MIN ? MPI_MIN : MPI_SUM;
  char *p = buf;
  for (int64_t at = 0; at < n; at += CHUNK) {
    int64_t m = n - at < CHUNK ? n - at : CHUNK;
    if (mpi_check(MPI_Allreduce(MPI_IN_PLACE, p + (size_t)at * type_size(type), (int)m, mpi_type(type), mop,
                                MPI_COMM_WORLD), "MPI_Allreduce"))
      return -1;
  }
  return 0;
}

int ac_dist_broadcast(void *buf, int64_t n, int type, int root) {
  if (need_init("dist.broadcast")) return -1;
  if (root < 0 || root >= dist_size) return dist_fail("dist.broadcast: root %d is not a rank (0..%d)", root, dist_size - 1);
  char *p = buf;
  for (int64_t at = 0; at < n; at += CHUNK) {
    int64_t m = n - at < CHUNK ? n - at : CHUNK;
    if (mpi_check(MPI_Bcast(p + (size_t)at * type_size(type), (int)m, mpi_type(type), root, MPI_COMM_WORLD),
                  "MPI_Bcast"))
      return -1;
  }
  return 0;
}

int ac_dist_allgather_count(int64_t n, int64_t *counts) {
  if (need_init("dist.allgather")) return -1;
  int64_t mine = n;
  return mpi_check(MPI_Allgather(&mine, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD), "MPI_Allgather");
}

int ac_dist_allgatherv(const void *send, int64_t n, void *recv, const int64_t *counts, int type) {
  if (need_init("dist.allgather")) return -1;
  if (counts[dist_rank] != n)
    return dist_fail("dist.allgather: rank %d sends %lld elements, the counts say %lld", dist_rank, (long long)n,
                     (long long)counts[dist_rank]);
  int64_t total = 0;
  for (int r = 0; r < dist_size; r++) total += counts[r];
  const size_t es = type_size(type);
  if (total <= INT_MAX) {
    int *rc = malloc(sizeof(int) * 2 * (size_t)dist_size);
    if (!rc) return dist_fail("dist.allgather: out of memory");
    int *displ = rc + dist_size, at = 0;
    for (int r = 0; r < dist_size; r++) {
      rc[r] = (int)counts[r];
      displ[r] = at;
      at += rc[r];
    }
    int err = mpi_check(MPI_Allgatherv(send, (int)n, mpi_type(type), recv, rc, displ, mpi_type(type), MPI_COMM_WORLD),
                        "MPI_Allgatherv");
    free(rc);
    return err;
  }
  /* more than INT_MAX elements in all: each rank's block in turn, by broadcast */
  char *out = recv;
  int64_t at = 0;
  for (int r = 0; r < dist_size; r++) {
    if (r == dist_rank) memcpy(out + (size_t)at * es, send, (size_t)n * es);
    if (ac_dist_broadcast(out + (size_t)at * es, counts[r], type, r)) return -1;
    at += counts[r];
  }
  return 0;
}
