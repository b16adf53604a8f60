/*
 * loader.c - data sources (images in memory or image files) and the batch
 * loader: POSIX worker threads that decode, resize and augment whole batches
 * into a ring of slots ahead of the consumer, in a per-epoch order drawn
 * from the loader's seed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "data/loader.h"
#include "core/random.h"

/* ======================================================================== */
/* sources                                                                   */
/* ======================================================================== */

enum { SRC_MEMORY = 1, SRC_FILES = 2 };

struct ac_source {
  int refcount;
  int kind;
  int64_t n;
  int64_t *labels;
  /* memory */
  ac_storage *storage;
  const void *data;
  ac_dtype dtype;
  int h, w, c;
  float scale;
  /* files */
  char **paths;
  float *boxes;
};

static void source_destroy(ac_source *s) {
  if (!s) return;
  if (s->storage) ac_storage_release(s->storage);
  if (s->paths) {
    for (int64_t i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
  }
  free(s->boxes);
  free(s->labels);
  free(s);
}

void ac_source_retain(ac_source *s) { __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED); }
void ac_source_release(ac_source *s) {
  if (s && __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) == 0) source_destroy(s);
}
int64_t ac_source_len(const ac_source *s) { return s->n; }
int64_t ac_source_label(const ac_source *s, int64_t i) { return s->labels[i]; }
const int64_t *ac_source_labels(const ac_source *s) { return s->labels; }

static ac_source *source_alloc(int kind, int64_t n, const int64_t *labels) {
  ac_source *s = calloc(1, sizeof *s);
  if (!s) { ac_fail("source: out of memory"); return NULL; }
  s->refcount = 1;
  s->kind = kind;
  s->n = n;
  s->labels = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!s->labels) { free(s); ac_fail("source: out of memory for %lld labels", (long long)n); return NULL; }
  if (n > 0) memcpy(s->labels, labels, sizeof(int64_t) * (size_t)n);
  return s;
}

ac_source *ac_source_memory(const ac_tensor *images, const int64_t *labels, float scale) {
  if (images->ndim != 4) { ac_fail("source: images must be [N, H, W, C], got %d dims", images->ndim); return NULL; }
  if (!ac_is_contiguous(images)) { ac_fail("source: images must be contiguous"); return NULL; }
  if (images->dtype != AC_U8 && images->dtype != AC_F32) { ac_fail("source: images must be uint8 or float32"); return NULL; }
  const int64_t *sh = images->shape;
  if (sh[1] <= 0 || sh[2] <= 0 || sh[3] < 1 || sh[3] > 4 || sh[1] > 65535 || sh[2] > 65535) {
    char b[64];
    ac_fail("source: images [N, H, W, C] need C in 1..4 and a positive size, got %s", ac_shape_str(images, b, sizeof b));
    return NULL;
  }
  ac_source *s = source_alloc(SRC_MEMORY, sh[0], labels);
  if (!s) return NULL;
  s->storage = images->storage;
  ac_storage_retain(s->storage);
  s->data = ac_data(images);
  s->dtype = images->dtype;
  s->h = (int)sh[1];
  s->w = (int)sh[2];
  s->c = (int)sh[3];
  s->scale = scale;
  return s;
}

ac_source *ac_source_files(int64_t n, const char *const *paths, const float *boxes, const int64_t *labels) {
  ac_source *s = source_alloc(SRC_FILES, n, labels);
  if (!s) return NULL;
  s->paths = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
  if (!s->paths) goto oom;
  for (int64_t i = 0; i < n; i++)
    if (!(s->paths[i] = strdup(paths[i]))) goto oom;
  if (boxes) {
    s->boxes = malloc(sizeof(float) * 4 * (size_t)(n > 0 ? n : 1));
    if (!s->boxes) goto oom;
    memcpy(s->boxes, boxes, sizeof(float) * 4 * (size_t)n);
  }
  return s;
oom:
  source_destroy(s);
  ac_fail("source: out of memory for %lld file names", (long long)n);
  return NULL;
}

/* The crop window of a decoded file: the box clipped to the image. */
static int file_window(const ac_source *s, int64_t i, int W, int H, int *x0, int *y0, int *ww, int *wh) {
  *x0 = 0;
  *y0 = 0;
  *ww = W;
  *wh = H;
  if (!s->boxes) return 0;
  const float *b = s->boxes + 4 * i;
  double bx = b[0], by = b[1], bw = b[2], bh = b[3];
  double xa = bx < 0 ? 0 : bx, ya = by < 0 ? 0 : by;
  double xb = bx + bw > W ? W : bx + bw, yb = by + bh > H ? H : by + bh;
  int ix0 = (int)xa, iy0 = (int)ya, ix1 = (int)(xb + 0.5), iy1 = (int)(yb + 0.5);
  if (!(ix1 > ix0 && iy1 > iy0))
    return ac_fail("%s: face box (x %g, y %g, w %g, h %g) lies outside the %d x %d image", s->paths[i], bx, by, bw, bh,
                   W, H);
  *x0 = ix0;
  *y0 = iy0;
  *ww = ix1 - ix0;
  *wh = iy1 - iy0;
  return 0;
}

/* Decodes file sample i into a malloc'ed float [oc, wh, ww]: the face box
 * (or the whole image). With a target size tw x th > 0 (the caller resizes
 * to it next), a JPEG is decoded at the smallest DCT scale n/8 that keeps
 * the window at least that large (libjpeg-turbo's scaled IDCT: a 1000-pixel
 * photo cut to 224 decodes at a quarter of the size, several times faster),
 * and the window is taken from the scaled image. Without a target, and for
 * other formats, the image is decoded at full size. */
static int file_decode(const ac_source *s, int64_t i, int oc, int tw, int th, float **out, int *oh, int *ow) {
  if (oc != 1 && oc != 3) return ac_fail("%s: images from files are read with 1 or 3 channels, not %d", s->paths[i], oc);
  const char *path = s->paths[i];
  uint8_t *buf, *px;
  size_t len;
  if (ac_image_read_file(path, &buf, &len)) return -1;
  int W = 0, H = 0, C, min_w = 0, min_h = 0, x0, y0, ww, wh;
  if (tw > 0 && th > 0) {
    if (s->boxes) { /* the window must keep tw x th pixels after scaling */
      if (ac_image_info_named(path, buf, len, &W, &H, &C) || file_window(s, i, W, H, &x0, &y0, &ww, &wh)) {
        free(buf);
        return -1;
      }
      min_w = (int)(((int64_t)tw * W + ww - 1) / ww);
      min_h = (int)(((int64_t)th * H + wh - 1) / wh);
    } else {
      min_w = tw;
      min_h = th;
    }
  }
  int w, h;
  int rc = ac_image_decode_named(path, buf, len, oc, min_w, min_h, &px, &w, &h, &C);
  free(buf);
  if (rc) return -1;
  if (min_w > 0 && s->boxes && (w != W || h != H)) { /* box of the full image -> scaled image */
    const double sx = (double)w / W, sy = (double)h / H;
    int xa = (int)(x0 * sx + 0.5), ya = (int)(y0 * sy + 0.5);
    int xb = (int)((x0 + ww) * sx + 0.5), yb = (int)((y0 + wh) * sy + 0.5);
    if (xb > w) xb = w;
    if (yb > h) yb = h;
    if (xa >= xb) xa = xb - 1;
    if (ya >= yb) ya = yb - 1;
    x0 = xa;
    y0 = ya;
    ww = xb - xa;
    wh = yb - ya;
  } else if (file_window(s, i, w, h, &x0, &y0, &ww, &wh)) {
    ac_image_free(px);
    return -1;
  }
  float *img = malloc(sizeof(float) * (size_t)oc * wh * ww);
  if (!img) {
    ac_image_free(px);
    return ac_fail("%s: out of memory for a %d x %d image", path, wh, ww);
  }
  const float k = 1.0f / 255.0f;
  const int64_t plane = (int64_t)wh * ww;
  for (int y = 0; y < wh; y++) {
    const uint8_t *row = px + ((int64_t)(y0 + y) * w + x0) * oc;
    for (int ch = 0; ch < oc; ch++) {
      float *d = img + ch * plane + (int64_t)y * ww;
      for (int x = 0; x < ww; x++) d[x] = row[x * oc + ch] * k;
    }
  }
  ac_image_free(px);
  *out = img;
  *oh = wh;
  *ow = ww;
  return 0;
}

/* Converts memory sample i to float [oc, h, w] (native size) into dst. */
static int memory_convert(const ac_source *s, int64_t i, int oc, float *dst) {
  const int64_t per = (int64_t)s->h * s->w * s->c;
  if (s->dtype == AC_U8) return ac_image_u8hwc_to_chw((const uint8_t *)s->data + i * per, s->h, s->w, s->c, oc, dst);
  if (ac_image_f32hwc_to_chw((const float *)s->data + i * per, s->h, s->w, s->c, oc, dst)) return -1;
  if (s->scale != 1.0f) {
    const int64_t n = (int64_t)oc * s->h * s->w;
    for (int64_t j = 0; j < n; j++) dst[j] *= s->scale;
  }
  return 0;
}

int ac_source_size(const ac_source *s, int64_t i, int *c, int *h, int *w) {
  if (i < 0 || i >= s->n) return ac_fail("source: index %lld out of range 1..%lld", (long long)i + 1, (long long)s->n);
  if (s->kind == SRC_MEMORY) {
    *c = s->c;
    *h = s->h;
    *w = s->w;
    return 0;
  }
  int W, H, C;
  if (ac_image_info_file(s->paths[i], &W, &H, &C)) return -1;
  int x0, y0;
  if (file_window(s, i, W, H, &x0, &y0, w, h)) return -1;
  *c = C;
  return 0;
}

int ac_source_get_native(const ac_source *s, int64_t i, int oc, float **out, int *h, int *w) {
  if (i < 0 || i >= s->n) return ac_fail("source: index %lld out of range 1..%lld", (long long)i + 1, (long long)s->n);
  if (s->kind == SRC_FILES) return file_decode(s, i, oc, 0, 0, out, h, w);
  float *img = malloc(sizeof(float) * (size_t)oc * s->h * s->w);
  if (!img) return ac_fail("source: out of memory");
  if (memory_convert(s, i, oc, img)) {
    free(img);
    return -1;
  }
  *out = img;
  *h = s->h;
  *w = s->w;
  return 0;
}

int ac_source_get(const ac_source *s, int64_t i, int oc, int oh, int ow, float *dst) {
  if (i < 0 || i >= s->n) return ac_fail("source: index %lld out of range 1..%lld", (long long)i + 1, (long long)s->n);
  if (s->kind == SRC_MEMORY && s->h == oh && s->w == ow) return memory_convert(s, i, oc, dst);
  float *img;
  int h, w;
  if (s->kind == SRC_FILES ? file_decode(s, i, oc, ow, oh, &img, &h, &w) : ac_source_get_native(s, i, oc, &img, &h, &w))
    return -1;
  int rc = ac_image_resize(img, oc, h, w, dst, oh, ow);
  free(img);
  return rc;
}

/* ======================================================================== */
/* loader                                                                    */
/* ======================================================================== */

enum { SLOT_EMPTY = 0, SLOT_FILLING = 1, SLOT_READY = 2 };

typedef struct {
  int state;
  int64_t batch; /* batch index this slot holds */
  int64_t count;
  float *x;
  int64_t *y;
  int failed;
  char err[512];
} slot_t;

struct ac_loader {
  ac_source *src;
  ac_loader_opts o;
  int64_t chw;
  ac_rng base;
  /* per-class index lists for the balanced sampler */
  int64_t nclass_present;
  int64_t *class_start, *class_idx; /* CSR: class k's samples at class_idx[class_start[k] .. class_start[k+1]) */
  /* epoch state (guarded by mu) */
  int64_t epoch, epoch_len, nbatches;
  int64_t full_len; /* length of the order; epoch_len is this shard's part of it */
  int64_t *order;
  int64_t next_claim, consumed;
  int64_t gen;
  int busy;
  int stop;
  int64_t skipped;
  slot_t *slots;
  int nthreads;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t work, ready, idle;
};

static int fill_samples(ac_loader *ld, int64_t epoch, const int64_t *order, int64_t elen, int64_t start,
                        int64_t count, slot_t *s, float *scratch);

/* Position in the epoch's order of this shard's position pos (see shard_* in loader.h). */
static int64_t global_pos(const ac_loader *ld, int64_t pos) {
  return ld->o.shard_count > 1 ? ld->o.shard_rank + pos * ld->o.shard_count : pos;
}

/* Fills one batch (positions b*batch ..) of epoch `epoch` with order `order`. */
static int fill_batch(ac_loader *ld, int64_t epoch, const int64_t *order, int64_t elen, int64_t b, slot_t *s) {
  const int64_t bs = ld->o.batch;
  int64_t start = b * bs, count = elen - start < bs ? elen - start : bs;
  s->count = count;
  float *scratch = ld->o.aug.n > 0 ? malloc(sizeof(float) * 2 * (size_t)ld->chw) : NULL;
  if (ld->o.aug.n > 0 && !scratch) return ac_fail("loader: out of memory");
  int rc = fill_samples(ld, epoch, order, elen, start, count, s, scratch);
  free(scratch);
  return rc;
}

static int fill_samples(ac_loader *ld, int64_t epoch, const int64_t *order, int64_t elen, int64_t start,
                        int64_t count, slot_t *s, float *scratch) {
  for (int64_t j = 0; j < count; j++) {
    const int64_t pos = global_pos(ld, start + j), full = ld->full_len;
    float *dst = s->x + j * ld->chw;
    int64_t idx = order[pos % full];
    int ok = ac_source_get(ld->src, idx, ld->o.c, ld->o.h, ld->o.w, dst) == 0;
    for (int64_t k = 1; !ok && ld->o.skip_bad && k <= 16 && k < full; k++) {
      __atomic_add_fetch(&ld->skipped, 1, __ATOMIC_RELAXED);
      idx = order[(pos + k) % full];
      ok = ac_source_get(ld->src, idx, ld->o.c, ld->o.h, ld->o.w, dst) == 0;
    }
    if (!ok) return -1;
    ac_rng r;
    ac_rng_fork(&ld->base, ((uint64_t)epoch << 40) | (uint64_t)pos, &r);
    if (ld->o.aug.n > 0 && ac_aug_sample_with(&ld->o.aug, dst, ld->o.c, ld->o.h, ld->o.w, &r, scratch)) return -1;
    s->y[j] = ac_source_label(ld->src, idx);
  }
  return 0;
}

static void *worker_main(void *arg) {
  ac_loader *ld = arg;
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    while (!ld->stop && !(ld->next_claim < ld->nbatches && ld->next_claim < ld->consumed + ld->o.prefetch))
      pthread_cond_wait(&ld->work, &ld->mu);
    if (ld->stop) break;
    int64_t b = ld->next_claim++;
    slot_t *s = &ld->slots[b % ld->o.prefetch];
    s->state = SLOT_FILLING;
    s->batch = b;
    const int64_t gen = ld->gen, epoch = ld->epoch, elen = ld->epoch_len;
    const int64_t *order = ld->order;
    ld->busy++;
    pthread_mutex_unlock(&ld->mu);

    int rc = fill_batch(ld, epoch, order, elen, b, s);
    char msg[512];
    if (rc) snprintf(msg, sizeof msg, "%s", ac_error());

    pthread_mutex_lock(&ld->mu);
    ld->busy--;
    if (gen == ld->gen) {
      s->failed = rc != 0;
      if (rc) memcpy(s->err, msg, sizeof msg);
      s->state = SLOT_READY;
      pthread_cond_broadcast(&ld->ready);
    } else {
      s->state = SLOT_EMPTY;
    }
    if (ld->busy == 0) pthread_cond_broadcast(&ld->idle);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

static void loader_destroy(ac_loader *ld) {
  if (ld->slots) {
    for (int i = 0; i < ld->o.prefetch; i++) {
      free(ld->slots[i].x);
      free(ld->slots[i].y);
    }
    free(ld->slots);
  }
  free(ld->order);
  free(ld->class_start);
  free(ld->class_idx);
  free(ld->threads);
  if (ld->src) ac_source_release(ld->src);
  free(ld);
}

static int build_classes(ac_loader *ld) {
  const int64_t n = ld->src->n;
  const int64_t *lab = ac_source_labels(ld->src);
  int64_t maxl = 0;
  for (int64_t i = 0; i < n; i++) {
    if (lab[i] < 1) return ac_fail("loader: sample %lld has label %lld (labels are 1-based)", (long long)i + 1, (long long)lab[i]);
    if (lab[i] > maxl) maxl = lab[i];
  }
  if (maxl > 1000000) return ac_fail("loader: label %lld is too large for the balanced sampler", (long long)maxl);
  int64_t *cnt = calloc((size_t)maxl + 1, sizeof(int64_t));
  ld->class_idx = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!cnt || !ld->class_idx) { free(cnt); return ac_fail("loader: out of memory"); }
  for (int64_t i = 0; i < n; i++) cnt[lab[i]]++;
  int64_t present = 0;
  for (int64_t k = 1; k <= maxl; k++) present += cnt[k] > 0;
  ld->class_start = malloc(sizeof(int64_t) * (size_t)(present + 1));
  if (!ld->class_start) { free(cnt); return ac_fail("loader: out of memory"); }
  /* map label -> dense present-class index */
  int64_t *pos = calloc((size_t)maxl + 1, sizeof(int64_t));
  if (!pos) { free(cnt); return ac_fail("loader: out of memory"); }
  int64_t k2 = 0, acc = 0;
  for (int64_t k = 1; k <= maxl; k++)
    if (cnt[k] > 0) {
      ld->class_start[k2++] = acc;
      pos[k] = acc;
      acc += cnt[k];
    }
  ld->class_start[present] = acc;
  for (int64_t i = 0; i < n; i++) ld->class_idx[pos[lab[i]]++] = i;
  ld->nclass_present = present;
  free(cnt);
  free(pos);
  return 0;
}

ac_loader *ac_loader_new(ac_source *src, const ac_loader_opts *o) {
  if (o->batch < 1) { ac_fail("loader: batch must be >= 1, got %lld", (long long)o->batch); return NULL; }
  if (o->workers < 0 || o->workers > 256) { ac_fail("loader: workers must be 0..256, got %d", o->workers); return NULL; }
  if (!(o->c == 1 || o->c == 3 || o->c == 2 || o->c == 4) || o->h < 1 || o->w < 1 || o->h > 16384 || o->w > 16384) {
    ac_fail("loader: output shape %d x %d x %d is not valid (channels 1..4, sides 1..16384)", o->c, o->h, o->w);
    return NULL;
  }
  if (src->n < 1) { ac_fail("loader: the data set is empty"); return NULL; }
  if (o->shard_count > 1 && (o->shard_rank < 0 || o->shard_rank >= o->shard_count)) {
    ac_fail("loader: shard rank %lld is not in 0..%lld", (long long)o->shard_rank, (long long)o->shard_count - 1);
    return NULL;
  }
  if (ac_aug_validate(&o->aug)) return NULL;
  ac_loader *ld = calloc(1, sizeof *ld);
  if (!ld) { ac_fail("loader: out of memory"); return NULL; }
  ld->o = *o;
  if (ld->o.prefetch < 1) ld->o.prefetch = o->workers > 0 ? 2 * o->workers : 1;
  if (ld->o.workers == 0) ld->o.prefetch = 1;
  if (ld->o.epoch_size <= 0) ld->o.epoch_size = src->n;
  ld->src = src;
  ac_source_retain(src);
  ld->chw = (int64_t)o->c * o->h * o->w;
  ac_rng_seed(&ld->base, o->seed);
  if (o->balanced && build_classes(ld)) { loader_destroy(ld); return NULL; }
  ld->slots = calloc((size_t)ld->o.prefetch, sizeof(slot_t));
  ld->order = malloc(sizeof(int64_t) * (size_t)(o->balanced ? ld->o.epoch_size : src->n));
  if (!ld->slots || !ld->order) { loader_destroy(ld); ac_fail("loader: out of memory"); return NULL; }
  for (int i = 0; i < ld->o.prefetch; i++) {
    ld->slots[i].x = malloc(sizeof(float) * (size_t)(o->batch * ld->chw));
    ld->slots[i].y = malloc(sizeof(int64_t) * (size_t)o->batch);
    if (!ld->slots[i].x || !ld->slots[i].y) {
      loader_destroy(ld);
      ac_fail("loader: out of memory for %d batches of %lld x %d x %d x %d", ld->o.prefetch, (long long)o->batch, o->c,
              o->h, o->w);
      return NULL;
    }
  }
  pthread_mutex_init(&ld->mu, NULL);
  pthread_cond_init(&ld->work, NULL);
  pthread_cond_init(&ld->ready, NULL);
  pthread_cond_init(&ld->idle, NULL);
  ld->threads = calloc((size_t)(o->workers > 0 ? o->workers : 1), sizeof(pthread_t));
  if (!ld->threads) { ac_loader_free(ld); ac_fail("loader: out of memory"); return NULL; }
  for (int i = 0; i < o->workers; i++) {
    if (pthread_create(&ld->threads[i], NULL, worker_main, ld) != 0) {
      ac_loader_free(ld);
      ac_fail("loader: cannot start worker thread %d", i + 1);
      return NULL;
    }
    ld->nthreads++;
  }
  return ld;
}

void ac_loader_free(ac_loader *ld) {
  if (!ld) return;
  pthread_mutex_lock(&ld->mu);
  ld->stop = 1;
  pthread_cond_broadcast(&ld->work);
  pthread_mutex_unlock(&ld->mu);
  for (int i = 0; i < ld->nthreads; i++) pthread_join(ld->threads[i], NULL);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->work);
  pthread_cond_destroy(&ld->ready);
  pthread_cond_destroy(&ld->idle);
  loader_destroy(ld);
}

/* Samples of this shard in an epoch of n. */
static int64_t shard_len(const ac_loader *ld, int64_t n) {
  const int64_t S = ld->o.shard_count, r = ld->o.shard_rank;
  if (S <= 1) return n;
  if (ld->o.shard_pad) return (n + S - 1) / S;
  return n > r ? (n - r + S - 1) / S : 0;
}

int ac_loader_start_epoch(ac_loader *ld, int64_t epoch) {
  if (epoch < 1 || epoch >= ((int64_t)1 << 23)) return ac_fail("loader: epoch must be 1..8388607, got %lld", (long long)epoch);
  pthread_mutex_lock(&ld->mu);
  ld->gen++;
  ld->nbatches = 0; /* workers stop claiming */
  while (ld->busy > 0) pthread_cond_wait(&ld->idle, &ld->mu);
  for (int i = 0; i < ld->o.prefetch; i++) ld->slots[i].state = SLOT_EMPTY;
  ac_rng r;
  ac_rng_fork(&ld->base, 0x5EEDULL << 44 | (uint64_t)epoch, &r);
  const int64_t n = ld->src->n;
  if (ld->o.balanced) {
    ld->epoch_len = ld->o.epoch_size;
    for (int64_t p = 0; p < ld->epoch_len; p++) {
      int64_t k = (int64_t)ac_rng_below(&r, (uint64_t)ld->nclass_present);
      int64_t a = ld->class_start[k], m = ld->class_start[k + 1] - a;
      ld->order[p] = ld->class_idx[a + (int64_t)ac_rng_below(&r, (uint64_t)m)];
    }
  } else {
    ld->epoch_len = n;
    for (int64_t p = 0; p < n; p++) ld->order[p] = p;
    if (ld->o.shuffle)
      for (int64_t p = n - 1; p > 0; p--) {
        int64_t q = (int64_t)ac_rng_below(&r, (uint64_t)p + 1);
        int64_t t = ld->order[p];
        ld->order[p] = ld->order[q];
        ld->order[q] = t;
      }
  }
  ld->full_len = ld->epoch_len;
  ld->epoch_len = shard_len(ld, ld->full_len);
  ld->epoch = epoch;
  int64_t nb = ld->epoch_len / ld->o.batch;
  if (!ld->o.drop_last && ld->epoch_len % ld->o.batch) nb++;
  ld->next_claim = 0;
  ld->consumed = 0;
  ld->nbatches = nb;
  pthread_cond_broadcast(&ld->work);
  pthread_mutex_unlock(&ld->mu);
  return 0;
}

int64_t ac_loader_nbatches(const ac_loader *ld) {
  int64_t len = shard_len(ld, ld->o.balanced ? ld->o.epoch_size : ld->src->n);
  return len / ld->o.batch + (!ld->o.drop_last && len % ld->o.batch ? 1 : 0);
}

int64_t ac_loader_epoch_len(const ac_loader *ld) {
  return shard_len(ld, ld->o.balanced ? ld->o.epoch_size : ld->src->n);
}
int64_t ac_loader_skipped(const ac_loader *ld) { return __atomic_load_n(&ld->skipped, __ATOMIC_RELAXED); }
int64_t ac_loader_order(const ac_loader *ld, int64_t p) {
  return (p >= 0 && p < ld->epoch_len) ? ld->order[global_pos(ld, p) % ld->full_len] : -1;
}

int64_t ac_loader_next(ac_loader *ld, float *x, int64_t *y) {
  pthread_mutex_lock(&ld->mu);
  if (ld->epoch == 0) {
    pthread_mutex_unlock(&ld->mu);
    return ac_fail("loader: no epoch started");
  }
  if (ld->consumed >= ld->nbatches) {
    pthread_mutex_unlock(&ld->mu);
    return 0;
  }
  const int64_t b = ld->consumed;
  slot_t *s = &ld->slots[b % ld->o.prefetch];
  if (ld->nthreads == 0) { /* synchronous: fill in the caller */
    s->batch = b;
    s->failed = fill_batch(ld, ld->epoch, ld->order, ld->epoch_len, b, s) != 0;
    if (s->failed) snprintf(s->err, sizeof s->err, "%s", ac_error());
    s->state = SLOT_READY;
  }
  while (!(s->state == SLOT_READY && s->batch == b)) pthread_cond_wait(&ld->ready, &ld->mu);
  pthread_mutex_unlock(&ld->mu);

  int64_t count = s->count;
  int failed = s->failed;
  char msg[512];
  if (failed) memcpy(msg, s->err, sizeof msg);
  else {
    memcpy(x, s->x, sizeof(float) * (size_t)(count * ld->chw));
    memcpy(y, s->y, sizeof(int64_t) * (size_t)count);
  }

  pthread_mutex_lock(&ld->mu);
  s->state = SLOT_EMPTY;
  ld->consumed++;
  pthread_cond_broadcast(&ld->work);
  pthread_mutex_unlock(&ld->mu);
  if (failed) return ac_fail("%s", msg);
  return count;
}
