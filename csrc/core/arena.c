/* arena.c - the memory behind the layers' activation and gradient buffers.
 *
 * A training step takes and hands back hundreds of buffers of many sizes
 * (Xception at batch 8: 0.1 to 46 MiB). Kept in per-size free lists, the
 * buffers a step hands back late (the middle flow's, during the backward)
 * sit idle while the entry flow's backward needs larger ones: ~450 MiB of
 * Xception's training peak was such idle memory. Here every buffer is a
 * range of a few large mappings; a handed-back range merges with its free
 * neighbours at once, so any later request of any size can use it, and the
 * peak is what is live at one time plus what best fit cannot place.
 *
 * Ranges are best fit over all chunks (ties: the lowest address), carved
 * from the start of the chosen free range. A chunk is a private anonymous
 * mapping of at least AC_ARENA_CHUNK bytes; its pages cost memory only once
 * written. Chunks stay mapped while a training loop runs (a step frees
 * and takes the same memory again); ac_arena_trim() hands back those in
 * which every range is free and no storage points any more. Contents of
 * a new range are unspecified.
 *
 * Under AddressSanitizer every range is its own aligned_alloc block, filled
 * with NaN, so the sanitizer still sees each buffer's bounds and any use
 * after hand-back, and a reader that counts on zeros shows up. */
#include "core/arena.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AC_ARENA_PLAIN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define AC_ARENA_PLAIN 1
#endif

#define AC_ARENA_CHUNK ((size_t)128 << 20) /* bytes reserved per mapping, at least */
#define AC_ARENA_GRAIN ((size_t)256)       /* ranges are multiples of this */

typedef struct { size_t off, len; } range;

typedef struct chunk {
  char *base;
  size_t size;
  range *free;     /* free ranges, by offset, never adjacent */
  int nfree, capfree;
  size_t used;     /* bytes in ranges handed out */
  long refs;       /* storages pointing into the chunk */
  struct chunk *next;
} chunk;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static chunk *chunks;
static size_t reserved_bytes, used_bytes;

static size_t round_up(size_t n, size_t g) { return (n + g - 1) / g * g; }

size_t ac_arena_size(size_t nbytes) { return round_up(nbytes ? nbytes : 1, AC_ARENA_GRAIN); }

#ifndef AC_ARENA_PLAIN
static int insert_free(chunk *c, int at, size_t off, size_t len) {
  if (c->nfree == c->capfree) {
    int nc = c->capfree ? 2 * c->capfree : 16;
    range *nf = realloc(c->free, sizeof(range) * (size_t)nc);
    if (!nf) return -1;
    c->free = nf;
    c->capfree = nc;
  }
  memmove(c->free + at + 1, c->free + at, sizeof(range) * (size_t)(c->nfree - at));
  c->free[at].off = off;
  c->free[at].len = len;
  c->nfree++;
  return 0;
}

static void remove_free(chunk *c, int at) {
  memmove(c->free + at, c->free + at + 1, sizeof(range) * (size_t)(c->nfree - at - 1));
  c->nfree--;
}

static chunk *new_chunk(size_t need) {
  size_t size = need > AC_ARENA_CHUNK ? round_up(need, (size_t)2 << 20) : AC_ARENA_CHUNK;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED && size > need) { /* a tight address-space limit: just what is needed */
    size = round_up(need, (size_t)4096);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  if (p == MAP_FAILED) return NULL;
  chunk *c = calloc(1, sizeof *c);
  if (!c || insert_free(c, 0, 0, size) != 0) {
    if (c) free(c->free);
    free(c);
    munmap(p, size);
    return NULL;
  }
  c->base = p;
  c->size = size;
  c->next = chunks;
  chunks = c;
  reserved_bytes += size;
  return c;
}


static chunk *chunk_of(const void *p) {
  for (chunk *c = chunks; c; c = c->next)
    if ((const char *)p >= c->base && (const char *)p < c->base + c->size) return c;
  return NULL;
}
#endif

void *ac_arena_alloc(size_t nbytes, void **owner) {
  size_t need = ac_arena_size(nbytes);
#ifdef AC_ARENA_PLAIN
  void *p = aligned_alloc(AC_ARENA_GRAIN, need);
  if (!p) return NULL;
  memset(p, 0xff, need); /* NaN: a reader that counts on zeros shows up */
  pthread_mutex_lock(&mu);
  used_bytes += need;
  reserved_bytes += need;
  pthread_mutex_unlock(&mu);
  *owner = p;
  return p;
#else
  pthread_mutex_lock(&mu);
  chunk *best = NULL;
  int besti = -1;
  for (chunk *c = chunks; c; c = c->next) {
    for (int i = 0; i < c->nfree; i++) {
      range r = c->free[i];
      if (r.len < need) continue;
      if (!best || r.len < best->free[besti].len ||
          (r.len == best->free[besti].len && c->base + r.off < best->base + best->free[besti].off)) {
        best = c;
        besti = i;
      }
    }
  }
  if (!best) {
    best = new_chunk(need);
    besti = 0;
  }
  if (!best) {
    pthread_mutex_unlock(&mu);
    return NULL;
  }
  range *r = &best->free[besti];
  char *p = best->base + r->off;
  r->off += need;
  r->len -= need;
  if (r->len == 0) remove_free(best, besti);
  best->used += need;
  best->refs++;
  used_bytes += need;
  pthread_mutex_unlock(&mu);
  *owner = best;
  return p;
#endif
}

void ac_arena_free(void *p, size_t nbytes) {
  if (!p) return;
  size_t len = ac_arena_size(nbytes);
#ifdef AC_ARENA_PLAIN
  free(p);
  pthread_mutex_lock(&mu);
  used_bytes -= len;
  reserved_bytes -= len;
  pthread_mutex_unlock(&mu);
#else
  pthread_mutex_lock(&mu);
  chunk *c = chunk_of(p);
  if (c) {
    size_t off = (size_t)((char *)p - c->base);
    int lo = 0, hi = c->nfree; /* first free range after off */
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (c->free[mid].off < off) lo = mid + 1;
      else hi = mid;
    }
    int prev = lo - 1, next = lo;
    int join_prev = prev >= 0 && c->free[prev].off + c->free[prev].len == off;
    int join_next = next < c->nfree && off + len == c->free[next].off;
    if (join_prev && join_next) {
      c->free[prev].len += len + c->free[next].len;
      remove_free(c, next);
    } else if (join_prev) {
      c->free[prev].len += len;
    } else if (join_next) {
      c->free[next].off = off;
      c->free[next].len += len;
    } else if (insert_free(c, lo, off, len) != 0) {
      /* no memory for the bookkeeping: the range stays out of use */
      pthread_mutex_unlock(&mu);
      return;
    }
    c->used -= len;
    used_bytes -= len;
  }
  pthread_mutex_unlock(&mu);
#endif
}

void ac_arena_unref(void *owner) {
#ifdef AC_ARENA_PLAIN
  (void)owner;
#else
  if (!owner) return;
  pthread_mutex_lock(&mu);
  chunk *c = owner;
  c->refs--;
  pthread_mutex_unlock(&mu);
#endif
}

size_t ac_arena_trim(void) {
  size_t n = 0;
#ifndef AC_ARENA_PLAIN
  pthread_mutex_lock(&mu);
  chunk **pp = &chunks;
  while (*pp) {
    chunk *c = *pp;
    if (c->used == 0 && c->refs == 0) {
      *pp = c->next;
      munmap(c->base, c->size);
      reserved_bytes -= c->size;
      n += c->size;
      free(c->free);
      free(c);
    } else {
      pp = &c->next;
    }
  }
  pthread_mutex_unlock(&mu);
#endif
  return n;
}

void ac_arena_stats(size_t *reserved, size_t *used) {
  pthread_mutex_lock(&mu);
  *reserved = reserved_bytes;
  *used = used_bytes;
  pthread_mutex_unlock(&mu);
}
