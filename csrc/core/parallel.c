/*
 * parallel.c - a small persistent pthread pool for the library's parallel
 * loops, sized together with OpenBLAS by ac_set_num_threads. One parallel
 * region runs at a time; a call made while another region is active (from a
 * task, or from another thread such as a data-loader worker) runs serially,
 * so the number of busy compute threads never exceeds the setting.
 *
 * Hand-off: a region is announced by bumping an atomic ticket
 * (generation * 128 + number of chunks); idle workers spin on it for a short
 * while (AC_SPIN_US, about 300 us, with pause instructions) before sleeping on
 * a condition variable, and the caller likewise spins briefly on the pending
 * count before sleeping. Back-to-back regions (a network's layers) then cost
 * a few microseconds each instead of a futex wake-up; an idle pool sleeps.
 *
 * Chunk c is always the range [c*chunk, (c+1)*chunk) run with tid = c, so
 * results never depend on scheduling. Whoever claims a chunk first (an
 * atomic bit mask) runs it: worker c claims chunk c, and the caller, once
 * its own chunk 0 is done, claims and runs any chunk whose worker has not
 * started yet. On a machine busy with other processes a descheduled worker
 * then no longer stalls the region.
 */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include "core/parallel.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);

#define MAX_THREADS 64
#define AC_SPIN_US 300.0

static struct {
  pthread_mutex_t lock;      /* guards sleeping and the fields below */
  pthread_cond_t work_cv;    /* workers sleep here for a new ticket */
  pthread_cond_t done_cv;    /* the caller sleeps here for pending == 0 */
  pthread_mutex_t region;    /* held for the duration of one parallel region */
  pthread_t threads[MAX_THREADS];
  int nworkers;              /* threads started (nthreads - 1 at most) */
  int nthreads;              /* the setting */
  _Atomic uint64_t ticket;   /* generation * 128 + nchunks of the current region */
  _Atomic int pending;       /* chunks other than 0 not finished yet */
  _Atomic uint64_t claim;    /* bit c: chunk c of the current region is taken */
  ac_task_fn fn;
  void *ctx;
  int64_t n, chunk;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, 0, 0, 0, NULL, NULL, 0, 0};

static _Thread_local int in_task = 0;
/* The ticket when worker i was started: the first region it must join is the next one. */
static uint64_t start_ticket[MAX_THREADS];

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void run_chunk(int c) {
  int64_t b = (int64_t)c * pool.chunk;
  int64_t e = b + pool.chunk;
  if (e > pool.n) e = pool.n;
  if (b < e) {
    in_task = 1;
    pool.fn(pool.ctx, b, e, c);
    in_task = 0;
  }
}

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg; /* 1..nworkers */
  uint64_t seen = start_ticket[id];
  for (;;) {
    uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    if (t == seen) {
      double t0 = ac_now();
      for (int i = 0;; i++) {
        cpu_relax();
        t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        if (t != seen) break;
        if ((i & 63) == 63 && (ac_now() - t0) * 1e6 > AC_SPIN_US) break;
      }
      if (t == seen) {
        pthread_mutex_lock(&pool.lock);
        while ((t = atomic_load_explicit(&pool.ticket, memory_order_acquire)) == seen)
          pthread_cond_wait(&pool.work_cv, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
      }
    }
    seen = t;
    uint64_t bit = (uint64_t)1 << id;
    if (id < (int)(t & 127) &&
        !(atomic_fetch_or_explicit(&pool.claim, bit, memory_order_acq_rel) & bit)) {
      run_chunk(id);
      if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_signal(&pool.done_cv);
        pthread_mutex_unlock(&pool.lock);
      }
    }
  }
  return NULL;
}

static int default_threads(void) {
  const char *e = getenv("AC_NUM_THREADS");
  if (e && atoi(e) > 0) return atoi(e);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (int)n;
}

/* Workers run (spin) in this library's code; the Lua interpreter unloads C
 * modules when it closes its state at exit. Pin the library in memory (no
 * unmapping under a running worker) the first time workers are started. */
static void pin_library(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  Dl_info info;
  if (dladdr((void *)&pin_library, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void ac_set_num_threads(int n) {
  if (n < 1) n = 1;
  if (n > 1) pin_library();
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&pool.region);
  pthread_mutex_lock(&pool.lock);
  pool.nthreads = n;
  while (pool.nworkers < n - 1) {
    int id = pool.nworkers + 1;
    start_ticket[id] = atomic_load_explicit(&pool.ticket, memory_order_relaxed);
    if (pthread_create(&pool.threads[pool.nworkers], NULL, worker_main, (void *)(intptr_t)id) != 0) {
      pool.nthreads = pool.nworkers + 1; /* could not start more: run with what we have */
      break;
    }
    pthread_detach(pool.threads[pool.nworkers]);
    pool.nworkers++;
  }
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&pool.region);
  openblas_set_num_threads(pool.nthreads);
}

int ac_get_num_threads(void) {
  if (pool.nthreads == 0) ac_set_num_threads(default_threads());
  return pool.nthreads;
}

void ac_parallel_for(int64_t n, int64_t grain, ac_task_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int nt = ac_get_num_threads();
  int64_t maxchunks = (n + grain - 1) / grain;
  if (nt > maxchunks) nt = (int)maxchunks;
  if (nt <= 1 || in_task || pthread_mutex_trylock(&pool.region) != 0) {
    fn(ctx, 0, n, 0);
    return;
  }
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.chunk = (n + nt - 1) / nt;
  int nchunks = (int)((n + pool.chunk - 1) / pool.chunk);
  atomic_store_explicit(&pool.pending, nchunks - 1, memory_order_relaxed); /* chunk 0 is ours */
  /* chunk 0 and the ids beyond nchunks are taken from the start */
  uint64_t live = nchunks >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nchunks) - 1;
  atomic_store_explicit(&pool.claim, ~live | 1, memory_order_release);
  pthread_mutex_lock(&pool.lock);
  uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_relaxed);
  atomic_store_explicit(&pool.ticket, ((t >> 7) + 1) << 7 | (uint64_t)nchunks, memory_order_release);
  pthread_cond_broadcast(&pool.work_cv);
  pthread_mutex_unlock(&pool.lock);
  run_chunk(0);
  for (int c = 1; c < nchunks; c++) {
    uint64_t bit = (uint64_t)1 << c;
    if (!(atomic_fetch_or_explicit(&pool.claim, bit, memory_order_acq_rel) & bit)) {
      run_chunk(c);
      atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
    }
  }
  if (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
    double t0 = ac_now();
    for (int i = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; i++) {
      cpu_relax();
      if ((i & 63) == 63 && (ac_now() - t0) * 1e6 > AC_SPIN_US) break;
    }
    pthread_mutex_lock(&pool.lock);
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0)
      pthread_cond_wait(&pool.done_cv, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
  }
  pthread_mutex_unlock(&pool.region);
}

double ac_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
