/*
 * cascade.c - boosted Haar / LBP cascades and their multi-scale sliding
 * window detector (the order of operations and the arithmetic are described
 * in cascade.h). Per pyramid level the feature rectangles become offsets
 * into that level's integral images, so a window costs a few loads and adds
 * per feature; rows of a level are shared among the library's threads.
 */
#include "face/cascade.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/tensor.h"
#include "cpu/cpu.h"
#include "face/cascade_simd.h"
#include "face/integral.h"

#define LBP_SUBSET 8 /* 256 categories in 32-bit words */
#define STAGE_EPS 1e-5f
#define SUM_PAD 32 /* entries after the integral image the vector loads may touch */

struct ac_cascade {
  int type, win_w, win_h, nstages, ntrees, nnodes, nfeatures, has_tilted, stumps;
  float *stage_thr;
  int *stage_ntrees, *tree_nodes;
  int *left, *right, *feat;
  float *thr, *leaves;
  int32_t *subset;
  int *rect;      /* Haar: 12 per feature (3 x x, y, w, h); LBP: 4 */
  float *weight;  /* Haar: 3 per feature */
  int *tilted;
};

/* ---- construction -------------------------------------------------------- */
void ac_cascade_free(ac_cascade *c) {
  if (!c) return;
  free(c->stage_thr);
  free(c->stage_ntrees);
  free(c->tree_nodes);
  free(c->left);
  free(c->right);
  free(c->feat);
  free(c->thr);
  free(c->leaves);
  free(c->subset);
  free(c->rect);
  free(c->weight);
  free(c->tilted);
  free(c);
}

/* A Haar rectangle (tilted or not) must lie inside the window. */
static int haar_rect_ok(const ac_cascade_spec *s, int x, int y, int w, int h, int tilted) {
  if (w < 0 || h < 0) return 0;
  if (!tilted) return x >= 0 && y >= 0 && x + w <= s->win_w && y + h <= s->win_h;
  /* corners (x, y), (x - h, y + h), (x + w, y + w), (x + w - h, y + w + h) */
  return x - h >= 0 && x + w <= s->win_w && y >= 0 && y + w + h <= s->win_h;
}

int ac_cascade_new(const ac_cascade_spec *s, ac_cascade **out) {
  *out = NULL;
  if (s->type != AC_CASCADE_HAAR && s->type != AC_CASCADE_LBP) return ac_fail("unknown feature type %d", s->type);
  if (s->win_w < 2 || s->win_h < 2 || s->win_w > 1024 || s->win_h > 1024)
    return ac_fail("window %dx%d is not a detector window", s->win_w, s->win_h);
  if (s->nstages < 1 || s->ntrees < 1 || s->nnodes < 1 || s->nfeatures < 1)
    return ac_fail("cascade has %d stages, %d trees, %d nodes, %d features", s->nstages, s->ntrees, s->nnodes,
                   s->nfeatures);
  long trees = 0, nodes = 0;
  for (int i = 0; i < s->nstages; i++) {
    if (s->stage_ntrees[i] < 1) return ac_fail("stage %d has no weak classifier", i + 1);
    trees += s->stage_ntrees[i];
  }
  if (trees != s->ntrees) return ac_fail("stages list %ld weak classifiers, %d given", trees, s->ntrees);
  int maxnodes = 0;
  for (int t = 0; t < s->ntrees; t++) {
    int n = s->tree_nodes[t];
    if (n < 1) return ac_fail("weak classifier %d has no node", t + 1);
    if (n > 64) return ac_fail("weak classifier %d has %d nodes (at most 64 are read)", t + 1, n);
    /* every node of the tree must be reachable only forwards, every leaf in range */
    for (int k = 0; k < n; k++) {
      long j = nodes + k;
      if (j >= s->nnodes) return ac_fail("weak classifier %d: more nodes than the %d given", t + 1, s->nnodes);
      int lr[2] = {s->node_left[j], s->node_right[j]};
      for (int q = 0; q < 2; q++) {
        if (lr[q] > 0 && (lr[q] <= k || lr[q] >= n))
          return ac_fail("weak classifier %d node %d: child %d outside the tree", t + 1, k, lr[q]);
        if (lr[q] <= 0 && -lr[q] > n)
          return ac_fail("weak classifier %d node %d: leaf %d of %d", t + 1, k, -lr[q], n + 1);
      }
      if (s->node_feature[j] < 0 || s->node_feature[j] >= s->nfeatures)
        return ac_fail("weak classifier %d node %d: feature %d of %d", t + 1, k, s->node_feature[j], s->nfeatures);
    }
    nodes += n;
    if (n > maxnodes) maxnodes = n;
  }
  if (nodes != s->nnodes) return ac_fail("weak classifiers hold %ld nodes, %d given", nodes, s->nnodes);
  for (int f = 0; f < s->nfeatures; f++) {
    if (s->type == AC_CASCADE_HAAR) {
      const double *r = s->rects + 15 * (size_t)f;
      for (int k = 0; k < 3; k++) {
        if (r[5 * k + 4] == 0) continue;
        if (!haar_rect_ok(s, (int)r[5 * k], (int)r[5 * k + 1], (int)r[5 * k + 2], (int)r[5 * k + 3], s->tilted[f]))
          return ac_fail("feature %d rectangle %d (%g %g %g %g%s) is outside the %dx%d window", f, k + 1, r[5 * k],
                         r[5 * k + 1], r[5 * k + 2], r[5 * k + 3], s->tilted[f] ? ", tilted" : "", s->win_w, s->win_h);
      }
    } else {
      const double *r = s->rects + 4 * (size_t)f;
      if (r[0] < 0 || r[1] < 0 || r[2] < 1 || r[3] < 1 || r[0] + 3 * r[2] > s->win_w || r[1] + 3 * r[3] > s->win_h)
        return ac_fail("feature %d (%g %g %g %g) is outside the %dx%d window", f, r[0], r[1], r[2], r[3], s->win_w,
                       s->win_h);
    }
  }
  ac_cascade *c = calloc(1, sizeof *c);
  if (!c) return ac_fail("out of memory");
  c->type = s->type;
  c->win_w = s->win_w;
  c->win_h = s->win_h;
  c->nstages = s->nstages;
  c->ntrees = s->ntrees;
  c->nnodes = s->nnodes;
  c->nfeatures = s->nfeatures;
  c->stumps = maxnodes == 1;
  size_t nn = (size_t)s->nnodes, nf = (size_t)s->nfeatures;
  c->stage_thr = malloc(sizeof(float) * (size_t)s->nstages);
  c->stage_ntrees = malloc(sizeof(int) * (size_t)s->nstages);
  c->tree_nodes = malloc(sizeof(int) * (size_t)s->ntrees);
  c->left = malloc(sizeof(int) * nn);
  c->right = malloc(sizeof(int) * nn);
  c->feat = malloc(sizeof(int) * nn);
  c->thr = malloc(sizeof(float) * nn);
  c->leaves = malloc(sizeof(float) * (nn + (size_t)s->ntrees));
  c->subset = s->type == AC_CASCADE_LBP ? malloc(sizeof(int32_t) * nn * LBP_SUBSET) : NULL;
  c->rect = malloc(sizeof(int) * nf * 12);
  c->weight = malloc(sizeof(float) * nf * 3);
  c->tilted = calloc(nf, sizeof(int));
  if (!c->stage_thr || !c->stage_ntrees || !c->tree_nodes || !c->left || !c->right || !c->feat || !c->thr ||
      !c->leaves || (s->type == AC_CASCADE_LBP && !c->subset) || !c->rect || !c->weight || !c->tilted) {
    ac_cascade_free(c);
    return ac_fail("out of memory");
  }
  for (int i = 0; i < s->nstages; i++) {
    c->stage_thr[i] = (float)s->stage_threshold[i] - STAGE_EPS;
    c->stage_ntrees[i] = s->stage_ntrees[i];
  }
  memcpy(c->tree_nodes, s->tree_nodes, sizeof(int) * (size_t)s->ntrees);
  memcpy(c->left, s->node_left, sizeof(int) * nn);
  memcpy(c->right, s->node_right, sizeof(int) * nn);
  memcpy(c->feat, s->node_feature, sizeof(int) * nn);
  for (size_t j = 0; j < nn; j++) c->thr[j] = s->type == AC_CASCADE_HAAR ? (float)s->node_threshold[j] : 0.0f;
  for (size_t j = 0; j < nn + (size_t)s->ntrees; j++) c->leaves[j] = (float)s->leaves[j];
  if (c->subset) memcpy(c->subset, s->node_subset, sizeof(int32_t) * nn * LBP_SUBSET);
  for (size_t f = 0; f < nf; f++) {
    if (s->type == AC_CASCADE_HAAR) {
      for (int k = 0; k < 3; k++) {
        for (int q = 0; q < 4; q++) c->rect[12 * f + 4 * k + q] = (int)s->rects[15 * f + 5 * k + q];
        c->weight[3 * f + k] = (float)s->rects[15 * f + 5 * k + 4];
      }
      c->tilted[f] = s->tilted[f] != 0;
      if (c->tilted[f]) c->has_tilted = 1;
    } else {
      for (int q = 0; q < 4; q++) c->rect[4 * f + q] = (int)s->rects[4 * f + q];
    }
  }
  *out = c;
  return 0;
}

void ac_cascade_info(const ac_cascade *c, int *type, int *win_w, int *win_h, int *nstages, int *has_tilted) {
  *type = c->type;
  *win_w = c->win_w;
  *win_h = c->win_h;
  *nstages = c->nstages;
  *has_tilted = c->has_tilted;
}

/* ---- boxes ------------------------------------------------------------------ */
int ac_rects_push(ac_rects *r, int x, int y, int w, int h, int score) {
  if (r->n == r->cap) {
    int cap = r->cap ? 2 * r->cap : 64;
    int *xy = realloc(r->xywh, sizeof(int) * 4 * (size_t)cap);
    if (!xy) return ac_fail("out of memory");
    r->xywh = xy;
    int *sc = realloc(r->score, sizeof(int) * (size_t)cap);
    if (!sc) return ac_fail("out of memory");
    r->score = sc;
    r->cap = cap;
  }
  int *p = r->xywh + 4 * (size_t)r->n;
  p[0] = x, p[1] = y, p[2] = w, p[3] = h;
  r->score[r->n++] = score;
  return 0;
}

void ac_rects_free(ac_rects *r) {
  free(r->xywh);
  free(r->score);
  memset(r, 0, sizeof *r);
}

/* ---- one pyramid level -------------------------------------------------------- */
/* A Haar feature as offsets of its rectangles' corners from the window's
 * top-left entry of the level's integral buffer (tilted ones point into the
 * tilted plane). */
typedef struct {
  int ofs[3][4];
  float w[3];
} haar_opt;

typedef struct {
  int ofs[16]; /* corners of the 3 x 3 blocks: 4 x 4 grid points */
} lbp_opt;

/* Stump cascades (one node per weak classifier, the common case) keep each
 * stump's feature, threshold and leaves together, in evaluation order. */
typedef ac_haar_stump haar_stump;

typedef ac_lbp_stump lbp_stump;

/* Haar trees: each node with its feature. */
typedef ac_haar_node haar_node;

typedef struct {
  const ac_cascade *c;
  const uint32_t *sum, *sqsum; /* the level's planes, row stride st */
  int st, sw, sh, ystep, nrows;
  float scale;
  int winw, winh;
  int nofs[4];         /* the variance window: the detector window inset by 1 */
  const haar_opt *haar; /* per feature */
  const lbp_opt *lbp;
  const haar_stump *hs; /* stump cascades: per stump, in order */
  const lbp_stump *ls;
  const haar_node *hn;  /* Haar tree cascades: per node */
} level_ctx;

#define SUM4(p, o) ((int32_t)((p)[(o)[0]] - (p)[(o)[1]] - (p)[(o)[2]] + (p)[(o)[3]]))

static void rect_ofs(int *o, int x, int y, int w, int h, int st) {
  o[0] = x + st * y;
  o[1] = x + w + st * y;
  o[2] = x + st * (y + h);
  o[3] = x + w + st * (y + h);
}

static void tilted_ofs(int *o, int x, int y, int w, int h, int st, int tofs) {
  o[0] = tofs + x + st * y;
  o[1] = tofs + x - h + st * (y + h);
  o[2] = tofs + x + w + st * (y + w);
  o[3] = tofs + x + w - h + st * (y + w + h);
}

static inline float haar_value(const haar_opt *f, const uint32_t *p) {
  float v = f->w[0] * (float)SUM4(p, f->ofs[0]) + f->w[1] * (float)SUM4(p, f->ofs[1]);
  if (f->w[2] != 0.0f) v += f->w[2] * (float)SUM4(p, f->ofs[2]);
  return v;
}

static inline int lbp_code(const lbp_opt *f, const uint32_t *p) {
  const int *o = f->ofs;
#define BLK(a, b, c, d) ((int32_t)(p[o[a]] - p[o[b]] - p[o[c]] + p[o[d]]))
  int32_t cv = BLK(5, 6, 9, 10);
  return (BLK(0, 1, 4, 5) >= cv ? 128 : 0) | (BLK(1, 2, 5, 6) >= cv ? 64 : 0) | (BLK(2, 3, 6, 7) >= cv ? 32 : 0) |
         (BLK(6, 7, 10, 11) >= cv ? 16 : 0) | (BLK(10, 11, 14, 15) >= cv ? 8 : 0) |
         (BLK(9, 10, 13, 14) >= cv ? 4 : 0) | (BLK(8, 9, 12, 13) >= cv ? 2 : 0) | (BLK(4, 5, 8, 9) >= cv ? 1 : 0);
#undef BLK
}

static int run_haar_trees(const ac_cascade *c, const haar_node *nodes, const uint32_t *p, float vnf) {
  int node = 0, leaf = 0, tree = 0;
  for (int si = 0; si < c->nstages; si++) {
    double sum = 0;
    for (int k = c->stage_ntrees[si]; k > 0; k--, tree++) {
      int n = c->tree_nodes[tree], idx = 0;
      do {
        const haar_node *nd = &nodes[node + idx];
        /* ac_haar_node begins as haar_opt does (offsets, weights) */
        idx = haar_value((const haar_opt *)nd->ofs, p) * vnf < nd->thr ? nd->left : nd->right;
      } while (idx > 0);
      sum += c->leaves[leaf - idx];
      node += n;
      leaf += n + 1;
    }
    if (sum < c->stage_thr[si]) return si == 0 ? 0 : -1;
  }
  return 1;
}

/* Stages from `first` on; st points at that stage's first stump. */
static int run_haar_stumps_from(const ac_cascade *c, int first, const haar_stump *st, const uint32_t *p, float vnf) {
  for (int si = first; si < c->nstages; si++) {
    double sum = 0;
    for (int k = c->stage_ntrees[si]; k > 0; k--, st++) {
      float v = st->w[0] * (float)SUM4(p, st->ofs[0]) + st->w[1] * (float)SUM4(p, st->ofs[1]);
      if (st->w[2] != 0.0f) v += st->w[2] * (float)SUM4(p, st->ofs[2]);
      sum += v * vnf < st->thr ? st->left : st->right;
    }
    if (sum < c->stage_thr[si]) return si == 0 ? 0 : -1;
  }
  return 1;
}

static int run_haar_stumps(const ac_cascade *c, const haar_stump *st, const uint32_t *p, float vnf) {
  return run_haar_stumps_from(c, 0, st, p, vnf);
}

static int run_lbp_stumps(const ac_cascade *c, const lbp_stump *st, const uint32_t *p) {
  for (int si = 0; si < c->nstages; si++) {
    double sum = 0;
    for (int k = c->stage_ntrees[si]; k > 0; k--, st++) {
      int code = lbp_code((const lbp_opt *)st->ofs, p);
      sum += (st->subset[code >> 5] >> (code & 31)) & 1 ? st->left : st->right;
    }
    if (sum < c->stage_thr[si]) return si == 0 ? 0 : -1;
  }
  return 1;
}

/* 1: every stage passed; 0: rejected by the first stage; -1 otherwise. */
static int run_window(const level_ctx *L, const uint32_t *p, float vnf) {
  const ac_cascade *c = L->c;
  int node = 0, leaf = 0, tree = 0;
  for (int si = 0; si < c->nstages; si++) {
    double sum = 0;
    int nt = c->stage_ntrees[si];
    for (int k = 0; k < nt; k++, tree++) {
      int n = c->tree_nodes[tree], idx = 0;
      do {
        int j = node + idx, f = c->feat[j];
        int left;
        if (c->type == AC_CASCADE_HAAR) {
          left = haar_value(&L->haar[f], p) * vnf < c->thr[j];
        } else {
          int code = lbp_code(&L->lbp[f], p);
          left = (c->subset[(size_t)j * LBP_SUBSET + (code >> 5)] >> (code & 31)) & 1;
        }
        idx = left ? c->left[j] : c->right[j];
      } while (idx > 0);
      sum += c->leaves[leaf - idx];
      node += n;
      leaf += n + 1;
    }
    if (sum < c->stage_thr[si]) return si == 0 ? 0 : -1;
  }
  return 1;
}

/* Visits every window of one level (rows by ystep), appending detections
 * with the level's index as their score (replaced after sorting). */
/* The window's variance normalisation: 0 when its contrast is too low
 * (OpenCV's setWindow), else 1 with *vnf set. */
static inline int haar_norm(const level_ctx *L, double area, const uint32_t *p, const uint32_t *q, float *vnf) {
  int32_t s = SUM4(p, L->nofs);
  uint32_t sq = q[L->nofs[0]] - q[L->nofs[1]] - q[L->nofs[2]] + q[L->nofs[3]];
  double nf = area * (double)sq - (double)s * s;
  if (!(nf > 0.0)) return 0;
  *vnf = (float)(1.0 / sqrt(nf));
  return area * *vnf < 1e-1;
}

/* Haar and LBP cascades with AVX2: eight candidate windows through the
 * stages together. The first stage decides the serial visiting order (a
 * window after one it rejected is skipped); the visited windows that passed
 * it go on through the other stages. */
static int scan_level_avx2(const level_ctx *L, int level, ac_rects *out) {
  const ac_cascade *c = L->c;
  double area = (double)(c->win_w - 2) * (c->win_h - 2);
  int xend = L->sw + 1 - c->win_w, step = L->ystep, n0 = c->stage_ntrees[0];
  ac_tree_pos start0 = {0, 0, 0}, start1 = {0, 0, n0};
  for (int t = 0; t < n0; t++) start1.node += c->tree_nodes[t];
  start1.leaf = start1.node + n0;
  for (int r = 0; r < L->nrows; r++) {
    int y = r * step, skip = 0;
    const uint32_t *row = L->sum + (size_t)y * L->st, *qrow = L->sqsum ? L->sqsum + (size_t)y * L->st : NULL;
    for (int x0 = 0; x0 < xend; x0 += 8 * step) {
      float vnf[8];
      int ok = 0;
      for (int k = 0; k < 8; k++) {
        int x = x0 + k * step;
        vnf[k] = 1.0f;
        if (x < xend && (L->ls || haar_norm(L, area, row + x, qrow + x, &vnf[k]))) ok |= 1 << k;
      }
      if (!ok) { /* no window runs, none is rejected by the first stage: no skip */
        if (skip && x0 < xend) skip = 0;
        continue;
      }
      int pass = L->ls ? ac_lbp_stages_avx2(L->ls, c->stage_ntrees, c->stage_thr, 0, 1, row + x0, step, ok)
               : L->hs ? ac_haar_stages_avx2(L->hs, c->stage_ntrees, c->stage_thr, 0, 1, row + x0, step, vnf, ok)
                       : ac_haar_tree_stages_avx2(L->hn, c->tree_nodes, c->leaves, c->stage_ntrees, c->stage_thr, 0,
                                                  1, start0, row + x0, step, vnf, ok);
      int go = 0;
      for (int k = 0; k < 8 && x0 + k * step < xend; k++) {
        if (skip) {
          skip = 0;
          continue;
        }
        if (!(ok >> k & 1)) continue; /* rejected before the stages: no skip */
        if (!(pass >> k & 1)) skip = 1;
        else go |= 1 << k;
      }
      if (!go) continue;
      int all = L->ls ? ac_lbp_stages_avx2(L->ls + n0, c->stage_ntrees, c->stage_thr, 1, c->nstages, row + x0, step, go)
              : L->hs ? ac_haar_stages_avx2(L->hs + n0, c->stage_ntrees, c->stage_thr, 1, c->nstages, row + x0, step,
                                            vnf, go)
                      : ac_haar_tree_stages_avx2(L->hn, c->tree_nodes, c->leaves, c->stage_ntrees, c->stage_thr, 1,
                                                 c->nstages, start1, row + x0, step, vnf, go);
      for (int k = 0; k < 8; k++) {
        if (!(all >> k & 1)) continue;
        int x = x0 + k * step;
        if (ac_rects_push(out, (int)lrintf((float)x * L->scale), (int)lrintf((float)y * L->scale), L->winw, L->winh,
                          level))
          return -1;
      }
    }
  }
  return 0;
}

static int scan_level(const level_ctx *L, int level, ac_rects *out) {
  const ac_cascade *c = L->c;
  if ((L->hs || L->hn || L->ls) && !c->has_tilted && c->nstages > 1 && ac_cpu_isa() >= AC_ISA_AVX2)
    return scan_level_avx2(L, level, out);
  double area = (double)(c->win_w - 2) * (c->win_h - 2);
  int xend = L->sw + 1 - c->win_w; /* x + win_w <= sw */
  for (int r = 0; r < L->nrows; r++) {
    int y = r * L->ystep;
    for (int x = 0; x < xend; x += L->ystep) {
      const uint32_t *p = L->sum + (size_t)y * L->st + x;
      float vnf = 1.0f;
      if (c->type == AC_CASCADE_HAAR && !haar_norm(L, area, p, L->sqsum + (size_t)y * L->st + x, &vnf)) continue;
      int res = L->hs   ? run_haar_stumps(c, L->hs, p, vnf)
                : L->hn ? run_haar_trees(c, L->hn, p, vnf)
                : L->ls ? run_lbp_stumps(c, L->ls, p)
                        : run_window(L, p, vnf);
      if (res > 0) {
        if (ac_rects_push(out, (int)lrintf((float)x * L->scale), (int)lrintf((float)y * L->scale), L->winw, L->winh,
                          level))
          return -1;
      } else if (res == 0) {
        x += L->ystep;
      }
    }
  }
  return 0;
}

/* ---- the pyramid -------------------------------------------------------------- */
/* Levels are shared among the threads: each takes the next unprocessed one
 * (largest first) and builds its images in its own buffers. */
typedef struct {
  const ac_cascade *c;
  const uint8_t *grey;
  int w, h, nscales, sw0, sh0;
  const float *scales;
  int next;        /* next level to take (atomic) */
  ac_rects *lists; /* one per thread */
  int *failed;     /* per thread: 1 out of memory */
} pyramid_ctx;

/* Fills L's level-dependent tables for level `si` in the thread's buffers. */
static void prepare_level(const pyramid_ctx *P, int si, level_ctx *L, uint8_t *img, uint32_t *sum, uint32_t *sqsum,
                          int *tmp, void *fopt, void *stumps) {
  const ac_cascade *c = P->c;
  float sc = P->scales[si];
  int sw = (int)lrintf((float)P->w / sc), sh = (int)lrintf((float)P->h / sc);
  if (sw > P->sw0) sw = P->sw0;
  if (sh > P->sh0) sh = P->sh0;
  int st = sw + 1;
  size_t area = (size_t)st * (size_t)(sh + 1);
  memset(L, 0, sizeof *L);
  L->c = c;
  L->sum = sum;
  L->sqsum = sqsum;
  L->st = st;
  L->sw = sw;
  L->sh = sh;
  L->scale = sc;
  L->ystep = sc >= 2 ? 1 : 2;
  L->winw = (int)lrintf((float)c->win_w * sc);
  L->winh = (int)lrintf((float)c->win_h * sc);
  int yend = sh + 1 - c->win_h;
  if (yend <= 0 || sw + 1 - c->win_w <= 0) return; /* nrows = 0 */
  /* OpenCV splits the rows into nstripes stripes of a whole number of steps
   * (nstripes from the first level's width); rows past the last stripe are
   * not visited. */
  int nstripes = (P->sw0 + 1 - c->win_w + 31) / 32;
  if (nstripes < 1) nstripes = 1;
  int stripe = (yend / L->ystep + nstripes - 1) / nstripes;
  if (stripe < 1) stripe = 1;
  stripe *= L->ystep;
  if ((long)nstripes * stripe < yend) yend = nstripes * stripe;
  L->nrows = (yend + L->ystep - 1) / L->ystep;
  ac_face_resize_u8(P->grey, P->w, P->h, img, sw, sh, tmp);
  ac_face_integral(img, sw, sh, sum, sqsum, c->has_tilted ? sum + area : NULL, (uint32_t *)tmp);
  if (c->type == AC_CASCADE_HAAR) {
    haar_opt *hf = fopt;
    rect_ofs(L->nofs, 1, 1, c->win_w - 2, c->win_h - 2, st);
    for (int f = 0; f < c->nfeatures; f++) {
      const int *r = c->rect + 12 * (size_t)f;
      for (int k = 0; k < 3; k++) {
        hf[f].w[k] = c->weight[3 * f + k];
        if (hf[f].w[k] == 0.0f)
          rect_ofs(hf[f].ofs[k], 0, 0, 0, 0, st);
        else if (c->tilted[f])
          tilted_ofs(hf[f].ofs[k], r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3], st, (int)area);
        else
          rect_ofs(hf[f].ofs[k], r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3], st);
      }
    }
    L->haar = hf;
    if (c->stumps) {
      haar_stump *hs = stumps;
      for (int j = 0; j < c->nnodes; j++) {
        const haar_opt *f = &hf[c->feat[j]];
        memcpy(hs[j].ofs, f->ofs, sizeof f->ofs);
        memcpy(hs[j].w, f->w, sizeof f->w);
        hs[j].thr = c->thr[j];
        hs[j].left = c->leaves[2 * j];
        hs[j].right = c->leaves[2 * j + 1];
      }
      L->hs = hs;
    } else {
      haar_node *hn = stumps;
      for (int j = 0; j < c->nnodes; j++) {
        memcpy(hn[j].ofs, hf[c->feat[j]].ofs, sizeof hn[j].ofs);
        memcpy(hn[j].w, hf[c->feat[j]].w, sizeof hn[j].w);
        hn[j].thr = c->thr[j];
        hn[j].left = c->left[j];
        hn[j].right = c->right[j];
      }
      L->hn = hn;
    }
  } else {
    lbp_opt *lf = fopt;
    for (int f = 0; f < c->nfeatures; f++) {
      const int *r = c->rect + 4 * (size_t)f;
      for (int gy = 0; gy < 4; gy++)
        for (int gx = 0; gx < 4; gx++) lf[f].ofs[4 * gy + gx] = (r[0] + gx * r[2]) + st * (r[1] + gy * r[3]);
    }
    L->lbp = lf;
    if (c->stumps) {
      lbp_stump *ls = stumps;
      for (int j = 0; j < c->nnodes; j++) {
        memcpy(ls[j].ofs, lf[c->feat[j]].ofs, sizeof ls[j].ofs);
        memcpy(ls[j].subset, c->subset + (size_t)j * LBP_SUBSET, sizeof ls[j].subset);
        ls[j].left = c->leaves[2 * j];
        ls[j].right = c->leaves[2 * j + 1];
      }
      L->ls = ls;
    }
  }
}

static void pyramid_worker(void *ctx, int64_t begin, int64_t end, int tid) {
  pyramid_ctx *P = ctx;
  const ac_cascade *c = P->c;
  (void)begin, (void)end;
  size_t area0 = (size_t)(P->sw0 + 1) * (size_t)(P->sh0 + 1);
  int planes = c->has_tilted ? 2 : 1;
  uint8_t *img = malloc((size_t)P->sw0 * (size_t)P->sh0);
  uint32_t *sum = malloc(sizeof(uint32_t) * (area0 * (size_t)planes + SUM_PAD));
  uint32_t *sqsum = c->type == AC_CASCADE_HAAR ? malloc(sizeof(uint32_t) * area0) : NULL;
  int *tmp = malloc(sizeof(int) * (AC_FACE_RESIZE_TMP(P->sw0, P->sh0) + 2 * (size_t)(P->sw0 + 1)));
  void *fopt = malloc(c->type == AC_CASCADE_HAAR ? sizeof(haar_opt) * (size_t)c->nfeatures
                                                 : sizeof(lbp_opt) * (size_t)c->nfeatures);
  size_t per_node = c->type == AC_CASCADE_LBP ? (c->stumps ? sizeof(lbp_stump) : 0)
                                              : (c->stumps ? sizeof(haar_stump) : sizeof(haar_node));
  void *stumps = per_node ? malloc(per_node * (size_t)c->nnodes) : NULL;
  if (!img || !sum || (c->type == AC_CASCADE_HAAR && !sqsum) || !tmp || !fopt || (per_node && !stumps)) {
    P->failed[tid] = 1;
  } else {
    for (;;) {
      int si = __atomic_fetch_add(&P->next, 1, __ATOMIC_RELAXED);
      if (si >= P->nscales) break;
      level_ctx L;
      prepare_level(P, si, &L, img, sum, sqsum, tmp, fopt, stumps);
      if (L.nrows > 0 && scan_level(&L, si, &P->lists[tid])) {
        P->failed[tid] = 1;
        break;
      }
    }
  }
  free(img);
  free(sum);
  free(sqsum);
  free(tmp);
  free(fopt);
  free(stumps);
}

/* Raw detections in the order a serial scan finds them: level, row, column. */
static int cmp_raw(const void *a, const void *b) {
  const int *p = a, *q = b; /* level, y, x */
  for (int k = 0; k < 3; k++)
    if (p[k] != q[k]) return p[k] < q[k] ? -1 : 1;
  return 0;
}

int ac_cascade_detect(const ac_cascade *c, const uint8_t *grey, int w, int h, double scale, int min_w,
                      int min_h, int max_w, int max_h, ac_rects *out) {
  if (!(scale > 1.0) || scale > 100.0) return ac_fail("scale must be in (1, 100], got %g", scale);
  if (w < 1 || h < 1) return ac_fail("image is empty (%dx%d)", w, h);
  if (min_w < 0 || min_h < 0 || max_w < 0 || max_h < 0) return ac_fail("sizes must be >= 0");
  if (max_w == 0 || max_h == 0) max_w = w, max_h = h;
  float scales[4096];
  int nscales = 0;
  for (double f = 1;; f *= scale) {
    int ww = (int)lrint(c->win_w * f), wh = (int)lrint(c->win_h * f);
    if (ww > max_w || wh > max_h || ww > w || wh > h || nscales == 4096) break;
    if (ww < min_w || wh < min_h) continue;
    scales[nscales++] = (float)f;
  }
  if (nscales == 0) return 0;
  int nthreads = ac_get_num_threads();
  if (nthreads < 1) nthreads = 1;
  if (nthreads > nscales) nthreads = nscales;
  pyramid_ctx P = {0};
  P.c = c;
  P.grey = grey;
  P.w = w;
  P.h = h;
  P.nscales = nscales;
  P.scales = scales;
  P.sw0 = (int)lrintf((float)w / scales[0]);
  P.sh0 = (int)lrintf((float)h / scales[0]);
  P.lists = calloc((size_t)nthreads, sizeof(ac_rects));
  P.failed = calloc((size_t)nthreads, sizeof(int));
  int rc = 0;
  if (!P.lists || !P.failed) {
    rc = ac_fail("out of memory for a %dx%d image", w, h);
  } else {
    ac_parallel_for(nthreads, 1, pyramid_worker, &P);
    for (int t = 0; t < nthreads; t++)
      if (P.failed[t]) rc = ac_fail("out of memory for the pyramid of a %dx%d image", w, h);
  }
  int total = 0;
  for (int t = 0; t < nthreads && rc == 0; t++) total += P.lists[t].n;
  int *raw = rc == 0 && total > 0 ? malloc(sizeof(int) * 7 * (size_t)total) : NULL;
  if (rc == 0 && total > 0 && !raw) rc = ac_fail("out of memory for %d detections", total);
  if (rc == 0 && total > 0) {
    int k = 0;
    for (int t = 0; t < nthreads; t++)
      for (int i = 0; i < P.lists[t].n; i++, k++) {
        const int *b = P.lists[t].xywh + 4 * (size_t)i;
        int *q = raw + 7 * (size_t)k;
        q[0] = P.lists[t].score[i], q[1] = b[1], q[2] = b[0];
        q[3] = b[0], q[4] = b[1], q[5] = b[2], q[6] = b[3];
      }
    qsort(raw, (size_t)total, sizeof(int) * 7, cmp_raw);
    for (int i = 0; i < total && rc == 0; i++) {
      const int *q = raw + 7 * (size_t)i;
      rc = ac_rects_push(out, q[3], q[4], q[5], q[6], 1);
    }
  }
  free(raw);
  if (P.lists)
    for (int t = 0; t < nthreads; t++) ac_rects_free(&P.lists[t]);
  free(P.lists);
  free(P.failed);
  return rc;
}
