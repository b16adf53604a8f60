/*
 * optim.c - optimiser kernels over flat float32 buffers (see optim.h for the
 * exact update rules). Each rule is one element-wise loop, split over the
 * thread pool in contiguous ranges; the global gradient norm is reduced in
 * fixed chunks so its value does not depend on the number of threads.
 */
#include <math.h>
#include <stddef.h>
#include "nn/optim.h"
#include "core/parallel.h"
#include "core/tensor.h"

#define OPT_GRAIN 32768

/* ---- SGD ------------------------------------------------------------------ */

typedef struct {
  float *p, *buf;
  const float *g;
  const ac_sgd_cfg *cfg;
  int first;
} sgd_ctx;

static void sgd_range(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const sgd_ctx *c = vctx;
  const float lr = c->cfg->lr, mom = c->cfg->momentum, wd = c->cfg->weight_decay;
  const float damp1 = 1.0f - c->cfg->dampening;
  float *p = c->p, *buf = c->buf;
  const float *g = c->g;
  if (mom == 0.0f) {
    for (int64_t i = begin; i < end; i++) {
      float d = g[i] + wd * p[i];
      p[i] -= lr * d;
    }
  } else if (c->first) {
    for (int64_t i = begin; i < end; i++) {
      float d = g[i] + wd * p[i];
      buf[i] = d;
      if (c->cfg->nesterov) d = d + mom * d;
      p[i] -= lr * d;
    }
  } else {
    for (int64_t i = begin; i < end; i++) {
      float d = g[i] + wd * p[i];
      float b = buf[i] * mom + damp1 * d;
      buf[i] = b;
      d = c->cfg->nesterov ? d + mom * b : b;
      p[i] -= lr * d;
    }
  }
}

int ac_sgd_step(float *p, const float *g, float *buf, int64_t n,
                const ac_sgd_cfg *cfg, int first) {
  if (n < 0) return ac_fail("sgd: negative length %lld", (long long)n);
  if (!p || !g) return ac_fail("sgd: missing parameter or gradient buffer");
  if (cfg->momentum != 0.0f && !buf) return ac_fail("sgd: momentum %g needs a momentum buffer", cfg->momentum);
  if (!(cfg->lr >= 0.0f)) return ac_fail("sgd: learning rate must be >= 0, got %g", cfg->lr);
  if (!(cfg->momentum >= 0.0f)) return ac_fail("sgd: momentum must be >= 0, got %g", cfg->momentum);
  if (!(cfg->weight_decay >= 0.0f)) return ac_fail("sgd: weight_decay must be >= 0, got %g", cfg->weight_decay);
  if (cfg->nesterov && (cfg->momentum <= 0.0f || cfg->dampening != 0.0f))
    return ac_fail("sgd: nesterov needs momentum > 0 and dampening = 0 (momentum %g, dampening %g)",
                   cfg->momentum, cfg->dampening);
  sgd_ctx c = {p, buf, g, cfg, first};
  ac_parallel_for(n, OPT_GRAIN, sgd_range, &c);
  return 0;
}

/* ---- Adam / AdamW ------------------------------------------------------------ */

typedef struct {
  float *p, *m, *v, *vmax;
  const float *g;
  const ac_adam_cfg *cfg;
  float step_size; /* lr / (1 - b1^t) (torch) or lr sqrt(1-b2^t) / (1-b1^t) (keras) */
  float bc2_sqrt;  /* sqrt(1 - b2^t) (torch form only) */
  float decay_mul; /* 1 - lr * wd for AdamW, 1 otherwise */
} adam_ctx;

/* One body, instantiated without branches in the inner loop so it vectorises:
 * with l2 = 0 and dm = 1 the extra terms are exact no-ops for finite values. */
#define ADAM_BODY(DENOM)                                  \
  float pi = p[i];                                        \
  float d = g[i] + l2 * pi;                               \
  pi *= dm;                                               \
  float mi = m[i] * b1 + omb1 * d;                        \
  float vi = v[i] * b2 + omb2 * (d * d);                  \
  m[i] = mi;                                              \
  v[i] = vi;

static void adam_range(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const adam_ctx *c = vctx;
  const ac_adam_cfg *cfg = c->cfg;
  const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
  const float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
  const float l2 = cfg->decoupled ? 0.0f : cfg->weight_decay;
  const float step = c->step_size, bc2s = c->bc2_sqrt, dm = c->decay_mul;
  float *restrict p = c->p, *restrict m = c->m, *restrict v = c->v, *restrict vmax = c->vmax;
  const float *restrict g = c->g;
  if (vmax) {
    for (int64_t i = begin; i < end; i++) {
      ADAM_BODY()
      float vm = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vm;
      float denom = cfg->keras_eps ? sqrtf(vm) + eps : sqrtf(vm) / bc2s + eps;
      p[i] = pi - step * (mi / denom);
    }
  } else if (cfg->keras_eps) {
    for (int64_t i = begin; i < end; i++) {
      ADAM_BODY()
      p[i] = pi - step * (mi / (sqrtf(vi) + eps));
    }
  } else {
    for (int64_t i = begin; i < end; i++) {
      ADAM_BODY()
      p[i] = pi - step * (mi / (sqrtf(vi) / bc2s + eps));
    }
  }
}
#undef ADAM_BODY

int ac_adam_step(float *p, const float *g, float *m, float *v, float *vmax,
                 int64_t n, const ac_adam_cfg *cfg, int64_t t) {
  if (n < 0) return ac_fail("adam: negative length %lld", (long long)n);
  if (!p || !g || !m || !v) return ac_fail("adam: missing parameter, gradient or moment buffer");
  if (cfg->amsgrad && !vmax) return ac_fail("adam: amsgrad needs a max buffer");
  if (t < 1) return ac_fail("adam: step number must be >= 1, got %lld", (long long)t);
  if (!(cfg->lr >= 0.0f)) return ac_fail("adam: learning rate must be >= 0, got %g", cfg->lr);
  if (!(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f))
    return ac_fail("adam: betas must be in [0, 1), got (%g, %g)", cfg->beta1, cfg->beta2);
  if (!(cfg->eps >= 0.0f)) return ac_fail("adam: eps must be >= 0, got %g", cfg->eps);
  if (!(cfg->weight_decay >= 0.0f)) return ac_fail("adam: weight_decay must be >= 0, got %g", cfg->weight_decay);
  double bc1 = 1.0 - pow((double)cfg->beta1, (double)t);
  double bc2 = 1.0 - pow((double)cfg->beta2, (double)t);
  adam_ctx c;
  c.p = p; c.g = g; c.m = m; c.v = v; c.vmax = cfg->amsgrad ? vmax : NULL; c.cfg = cfg;
  if (cfg->keras_eps) {
    c.step_size = (float)((double)cfg->lr * sqrt(bc2) / bc1);
    c.bc2_sqrt = 1.0f;
  } else {
    c.step_size = (float)((double)cfg->lr / bc1);
    c.bc2_sqrt = (float)sqrt(bc2);
  }
  c.decay_mul = cfg->decoupled ? (float)(1.0 - (double)cfg->lr * (double)cfg->weight_decay) : 1.0f;
  ac_parallel_for(n, OPT_GRAIN, adam_range, &c);
  return 0;
}

/* ---- global norm ----------------------------------------------------------------- */

#define SUMSQ_CHUNK 65536

typedef struct {
  const float *x;
  int64_t n;
  double *partial; /* one per chunk */
} sumsq_ctx;

/* Four interleaved double accumulators: a fixed order, shorter dependency chains. */
static double sumsq_block(const float *x, int64_t n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += (double)x[i] * (double)x[i];
    s1 += (double)x[i + 1] * (double)x[i + 1];
    s2 += (double)x[i + 2] * (double)x[i + 2];
    s3 += (double)x[i + 3] * (double)x[i + 3];
  }
  for (; i < n; i++) s0 += (double)x[i] * (double)x[i];
  return (s0 + s1) + (s2 + s3);
}

static void sumsq_range(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const sumsq_ctx *c = vctx;
  for (int64_t k = begin; k < end; k++) {
    int64_t lo = k * SUMSQ_CHUNK, hi = lo + SUMSQ_CHUNK;
    if (hi > c->n) hi = c->n;
    c->partial[k] = sumsq_block(c->x + lo, hi - lo);
  }
}

double ac_sumsq(const float *x, int64_t n) {
  if (n <= 0 || !x) return 0.0;
  int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
  if (nchunks == 1) return sumsq_block(x, n);
  /* 2,048 chunks cover 134M floats on the stack; larger buffers sum in blocks of that. */
  double partial[2048];
  double total = 0.0;
  for (int64_t base = 0; base < nchunks; base += 2048) {
    int64_t nk = nchunks - base < 2048 ? nchunks - base : 2048;
    int64_t lo = base * SUMSQ_CHUNK;
    int64_t len = n - lo;
    if (len > nk * SUMSQ_CHUNK) len = nk * SUMSQ_CHUNK;
    sumsq_ctx c = {x + lo, len, partial};
    ac_parallel_for(nk, 1, sumsq_range, &c);
    for (int64_t k = 0; k < nk; k++) total += partial[k];
  }
  return total;
}

typedef struct { float *x; float s; } scale_ctx;

static void scale_range(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  const scale_ctx *c = vctx;
  for (int64_t i = begin; i < end; i++) c->x[i] *= c->s;
}

void ac_scale(float *x, int64_t n, float s) {
  if (n <= 0 || !x) return;
  scale_ctx c = {x, s};
  ac_parallel_for(n, OPT_GRAIN, scale_range, &c);
}

int ac_clip_grad_norm(float *g, int64_t n, double max_norm, double *norm_out) {
  if (!(max_norm > 0.0)) return ac_fail("clip_grad_norm: max_norm must be > 0, got %g", max_norm);
  double norm = sqrt(ac_sumsq(g, n));
  if (norm_out) *norm_out = norm;
  if (!isfinite(norm)) return ac_fail("clip_grad_norm: the gradient norm is not finite (%g)", norm);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) ac_scale(g, n, (float)coef);
  return 0;
}
