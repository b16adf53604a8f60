/*
 * loader.h - data sources and the threaded batch loader.
 *
 * A source (ac_source) is an indexable set of labelled images: either images
 * held in memory (one uint8 or float32 array [N, H, W, C]) or a list of image
 * files (with an optional face box per file). ac_source_get decodes sample i
 * into a float C x H x W image in [0, 1], converting channels and resizing.
 *
 * A loader (ac_loader) owns `workers` POSIX threads that fill whole batches
 * ahead of the consumer (a ring of `prefetch` batch slots), in epoch order.
 * Sample at position p of epoch e is augmented with the generator
 * fork(seed, (e << 40) | p), so batches do not depend on the number of
 * workers. A failure inside a worker is stored in its batch slot and
 * reported by ac_loader_next when that batch is fetched.
 *
 *   ac_loader *ld = ac_loader_new(src, &opts);      // starts the threads
 *   ac_loader_start_epoch(ld, 1);
 *   while ((n = ac_loader_next(ld, x, y)) > 0) train(x, y, n);
 *   ac_loader_free(ld);                              // joins the threads
 */
#ifndef AC_LOADER_H
#define AC_LOADER_H
#include <stdint.h>
#include "data/augment.h"
#include "core/tensor.h"

typedef struct ac_source ac_source;

/* images: contiguous uint8 or float32 [N, H, W, C] (C 1..4), retained (not
 * copied); labels: N values (1-based classes), copied. `scale` multiplies
 * stored values (1/255 for uint8 pixels). */
ac_source *ac_source_memory(const ac_tensor *images, const int64_t *labels, float scale);
/* paths: n file names (copied); boxes: NULL or n * 4 floats (x, y, w, h) of a
 * crop window in pixels, clipped to the image; labels copied. */
ac_source *ac_source_files(int64_t n, const char *const *paths, const float *boxes, const int64_t *labels);
void ac_source_retain(ac_source *s);
void ac_source_release(ac_source *s);
int64_t ac_source_len(const ac_source *s);
int64_t ac_source_label(const ac_source *s, int64_t i);
const int64_t *ac_source_labels(const ac_source *s);
/* Native size of sample i (memory: the array's; files: decoded, after the box). */
int ac_source_size(const ac_source *s, int64_t i, int *c, int *h, int *w);
/* Decodes sample i to float [oc, oh, ow] into dst (oc 1 or 3 or the stored
 * channel count). */
int ac_source_get(const ac_source *s, int64_t i, int oc, int oh, int ow, float *dst);
/* Decodes sample i at its native size; *out is malloc'ed (caller frees). */
int ac_source_get_native(const ac_source *s, int64_t i, int oc, float **out, int *h, int *w);

typedef struct ac_loader_opts {
  int64_t batch;     /* samples per batch */
  int workers;       /* worker threads; 0 = fill batches in the caller */
  int prefetch;      /* batch slots (>= 1); default 2 * workers */
  int shuffle;       /* reshuffle every epoch */
  int drop_last;     /* drop a final incomplete batch */
  int balanced;      /* class-balanced sampling with replacement */
  int64_t epoch_size;/* samples per epoch for the balanced sampler (0 = N) */
  int skip_bad;      /* replace undecodable samples by the next in order, counting them */
  int c, h, w;       /* output image shape */
  uint64_t seed;
  ac_aug_pipeline aug;
  /* Data-parallel sharding (shard_count > 1): every rank draws the same
   * epoch order and takes the positions shard_rank, shard_rank + count, ...
   * of it; sample p of the shard is augmented as global position
   * shard_rank + p * count, so the union of the ranks' batches b is the
   * single-process batch b of batch * count samples. shard_pad: every shard
   * has ceil(N / count) samples (the order wraps round to its start) so all
   * ranks run the same number of steps; otherwise the shards differ by at
   * most one sample and cover the epoch exactly once (evaluation). */
  int64_t shard_rank, shard_count;
  int shard_pad;
} ac_loader_opts;

typedef struct ac_loader ac_loader;

ac_loader *ac_loader_new(ac_source *src, const ac_loader_opts *o); /* NULL + ac_fail */
void ac_loader_free(ac_loader *ld);                                /* stops and joins the workers */
/* Sets the epoch (>= 1) and its sample order; batches of the previous epoch
 * still being filled are discarded. */
int ac_loader_start_epoch(ac_loader *ld, int64_t epoch);
int64_t ac_loader_nbatches(const ac_loader *ld);
int64_t ac_loader_epoch_len(const ac_loader *ld);
/* Copies the next batch into x [batch, c, h, w] and y [batch]; returns its
 * sample count, 0 at the end of the epoch, -1 on failure (message of the
 * worker that failed, naming the file). */
int64_t ac_loader_next(ac_loader *ld, float *x, int64_t *y);
int64_t ac_loader_skipped(const ac_loader *ld);
/* The dataset index (0-based) of epoch position p (for tests). */
int64_t ac_loader_order(const ac_loader *ld, int64_t p);

#endif
