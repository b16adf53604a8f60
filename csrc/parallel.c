/*
 * parallel.c - a small persistent pthread pool for the library's parallel
 * loops, sized together with OpenBLAS by ac_set_num_threads. One parallel
 * region runs at a time; a call made while another region is active (from a
 * task, or from another thread such as a data-loader worker) runs serially,
 * so the number of busy compute threads never exceeds the setting.
 */
#include "parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);

#define MAX_THREADS 64

static struct {
  pthread_mutex_t lock;      /* guards the fields below */
  pthread_cond_t work_cv;    /* workers wait for a new generation */
  pthread_cond_t done_cv;    /* the caller waits for pending == 0 */
  pthread_mutex_t region;    /* held for the duration of one parallel region */
  pthread_t threads[MAX_THREADS];
  int nworkers;              /* threads started (nthreads - 1 at most) */
  int nthreads;              /* the setting */
  unsigned long generation;
  int pending;
  ac_task_fn fn;
  void *ctx;
  int64_t n, chunk;
  int nchunks;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, 0, 0, NULL, NULL, 0, 0, 0};

static _Thread_local int in_task = 0;

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
  unsigned long seen = 0;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    while (pool.generation == seen) pthread_cond_wait(&pool.work_cv, &pool.lock);
    seen = pool.generation;
    int mine = id < pool.nchunks;
    pthread_mutex_unlock(&pool.lock);
    if (mine) run_chunk(id);
    pthread_mutex_lock(&pool.lock);
    if (mine && --pool.pending == 0) pthread_cond_signal(&pool.done_cv);
  }
  return NULL;
}

static int default_threads(void) {
  const char *e = getenv("AC_NUM_THREADS");
  if (e && atoi(e) > 0) return atoi(e);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (int)n;
}

void ac_set_num_threads(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&pool.region);
  pthread_mutex_lock(&pool.lock);
  pool.nthreads = n;
  while (pool.nworkers < n - 1) {
    int id = pool.nworkers + 1;
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
  pthread_mutex_lock(&pool.lock);
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.chunk = (n + nt - 1) / nt;
  pool.nchunks = (int)((n + pool.chunk - 1) / pool.chunk);
  pool.pending = pool.nchunks - 1; /* chunk 0 is ours */
  pool.generation++;
  pthread_cond_broadcast(&pool.work_cv);
  pthread_mutex_unlock(&pool.lock);
  run_chunk(0);
  pthread_mutex_lock(&pool.lock);
  while (pool.pending > 0) pthread_cond_wait(&pool.done_cv, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&pool.region);
}

double ac_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
