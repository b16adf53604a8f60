/*
 * nn_act.c - element-wise and row-wise layer kernels: ReLU, inverted
 * dropout, softmax / log-softmax over rows, row-wise L2 normalisation and the
 * softmax cross-entropy. Row reductions accumulate in double.
 */
#include <math.h>
#include <string.h>
#include "nn/nn.h"
#include "core/tensor.h"
#include "core/parallel.h"

/* ---- ReLU ----------------------------------------------------------------- */

typedef struct {
  float *out;
  const float *a, *b;
} ew_ctx;

static void relu_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  ew_ctx *t = vctx;
  float *y = t->out; /* may equal x */
  const float *x = t->a;
  for (int64_t i = begin; i < end; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_back_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  ew_ctx *t = vctx;
  float *gx = t->out; /* may equal gy */
  const float *gy = t->a, *y = t->b;
  /* both loads unconditional so that the select vectorises */
  for (int64_t i = begin; i < end; i++) {
    float g = gy[i];
    gx[i] = y[i] > 0.0f ? g : 0.0f;
  }
}

#define EW_GRAIN 65536

int ac_relu_forward(float *y, const float *x, int64_t n) {
  ew_ctx t = {y, x, NULL};
  ac_parallel_for(n, EW_GRAIN, relu_task, &t);
  return 0;
}

static void add_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  ew_ctx *t = vctx;
  float *y = t->out; /* may equal a or b */
  const float *a = t->a, *b = t->b;
  for (int64_t i = begin; i < end; i++) y[i] = a[i] + b[i];
}

int ac_add_forward(float *y, const float *a, const float *b, int64_t n) {
  ew_ctx t = {y, a, b};
  ac_parallel_for(n, EW_GRAIN, add_task, &t);
  return 0;
}

int ac_relu_backward_input(float *gx, const float *gy, const float *y, int64_t n) {
  ew_ctx t = {gx, gy, y};
  ac_parallel_for(n, EW_GRAIN, relu_back_task, &t);
  return 0;
}

/* ---- Dropout -------------------------------------------------------------- */

int ac_dropout_forward(float *y, float *mask, const float *x, int64_t n, float p, ac_rng *rng) {
  if (!(p >= 0.0f && p < 1.0f)) return ac_fail("p must be in [0, 1), got %g", (double)p);
  float keep = 1.0f / (1.0f - p);
  /* the generator's state in local variables (registers) for the loop: the
   * numbers of ac_rng_uniform, one per element, in order */
  uint64_t s[4] = {rng->s[0], rng->s[1], rng->s[2], rng->s[3]};
  double pd = p;
  uint32_t kb;
  memcpy(&kb, &keep, 4);
  for (int64_t i = 0; i < n; i++) {
    /* branch-free select (the comparison is a coin flip) */
    uint32_t mb = kb & (0u - (uint32_t)(ac_rng_step_uniform(s) >= pd));
    float m;
    memcpy(&m, &mb, 4);
    mask[i] = m;
    y[i] = x[i] * m;
  }
  for (int k = 0; k < 4; k++) rng->s[k] = s[k];
  return 0;
}

int ac_mul_backward_input(float *gx, const float *gy, const float *mask, int64_t n) {
  for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * mask[i];
  return 0;
}

/* ---- softmax / log-softmax ------------------------------------------------ */

static int rows_check(int64_t N, int64_t D) {
  if (N < 1 || D < 1) return ac_fail("empty input [%lld, %lld]", (long long)N, (long long)D);
  return 0;
}

int ac_softmax_forward(float *y, const float *x, int64_t N, int64_t D) {
  if (rows_check(N, D)) return -1;
  for (int64_t n = 0; n < N; n++) {
    const float *xr = x + n * D;
    float *yr = y + n * D;
    float m = xr[0];
    for (int64_t d = 1; d < D; d++) m = xr[d] > m ? xr[d] : m;
    double s = 0;
    for (int64_t d = 0; d < D; d++) {
      yr[d] = expf(xr[d] - m);
      s += yr[d];
    }
    float inv = (float)(1.0 / s);
    for (int64_t d = 0; d < D; d++) yr[d] *= inv;
  }
  return 0;
}

int ac_softmax_backward_input(float *gx, const float *gy, const float *y, int64_t N, int64_t D) {
  if (rows_check(N, D)) return -1;
  for (int64_t n = 0; n < N; n++) {
    const float *yr = y + n * D, *gr = gy + n * D;
    double dot = 0;
    for (int64_t d = 0; d < D; d++) dot += (double)gr[d] * yr[d];
    for (int64_t d = 0; d < D; d++) gx[n * D + d] = yr[d] * (gr[d] - (float)dot);
  }
  return 0;
}

int ac_logsoftmax_forward(float *y, const float *x, int64_t N, int64_t D) {
  if (rows_check(N, D)) return -1;
  for (int64_t n = 0; n < N; n++) {
    const float *xr = x + n * D;
    float *yr = y + n * D;
    float m = xr[0];
    for (int64_t d = 1; d < D; d++) m = xr[d] > m ? xr[d] : m;
    double s = 0;
    for (int64_t d = 0; d < D; d++) s += exp((double)(xr[d] - m));
    float lse = m + (float)log(s);
    for (int64_t d = 0; d < D; d++) yr[d] = xr[d] - lse;
  }
  return 0;
}

int ac_logsoftmax_backward_input(float *gx, const float *gy, const float *y, int64_t N,
                                 int64_t D) {
  if (rows_check(N, D)) return -1;
  for (int64_t n = 0; n < N; n++) {
    const float *yr = y + n * D, *gr = gy + n * D;
    double s = 0;
    for (int64_t d = 0; d < D; d++) s += gr[d];
    for (int64_t d = 0; d < D; d++) gx[n * D + d] = gr[d] - expf(yr[d]) * (float)s;
  }
  return 0;
}

/* ---- L2 normalisation ------------------------------------------------------ */

int ac_l2norm_forward(float *y, float *norm, const float *x, int64_t N, int64_t D, float eps) {
  if (rows_check(N, D)) return -1;
  if (!(eps > 0.0f)) return ac_fail("eps must be > 0, got %g", (double)eps);
  for (int64_t n = 0; n < N; n++) {
    const float *xr = x + n * D;
    double ss = 0;
    for (int64_t d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
    double nr = sqrt(ss > eps ? ss : (double)eps);
    norm[n] = (float)nr;
    float inv = (float)(1.0 / nr);
    for (int64_t d = 0; d < D; d++) y[n * D + d] = xr[d] * inv;
  }
  return 0;
}

/* y = x / r with r = sqrt(max(|x|^2, eps)). When |x|^2 > eps:
 * gx = (gy - y <y, gy>) / r ; otherwise r is constant and gx = gy / r. */
int ac_l2norm_backward_input(float *gx, const float *gy, const float *y, const float *norm,
                             int64_t N, int64_t D, float eps) {
  if (rows_check(N, D)) return -1;
  for (int64_t n = 0; n < N; n++) {
    const float *yr = y + n * D, *gr = gy + n * D;
    double r = norm[n];
    double dot = 0;
    if (r * r > (double)eps * (1.0 + 1e-6))
      for (int64_t d = 0; d < D; d++) dot += (double)yr[d] * gr[d];
    float inv = (float)(1.0 / r);
    for (int64_t d = 0; d < D; d++) gx[n * D + d] = (gr[d] - yr[d] * (float)dot) * inv;
  }
  return 0;
}

/* ---- cross-entropy ---------------------------------------------------------- */

static int ce_check(const int64_t *t, const float *weight, int64_t N, int64_t D, int64_t base,
                    double *wsum, int average) {
  if (rows_check(N, D)) return -1;
  double s = 0;
  for (int64_t n = 0; n < N; n++) {
    if (t[n] < base || t[n] >= D + base)
      return ac_fail("target %lld of sample %lld is outside %lld..%lld",
                     (long long)t[n], (long long)n + 1, (long long)base, (long long)(D - 1 + base));
    s += weight ? weight[t[n] - base] : 1.0;
  }
  if (!average) s = 1.0;
  if (!(s > 0)) return ac_fail("the targets' weights sum to %g", s);
  *wsum = s;
  return 0;
}

int ac_cross_entropy_forward(double *loss, float *prob, const float *x, const int64_t *t,
                             const float *weight, int64_t N, int64_t D, int64_t base,
                             int average) {
  double wsum = 1.0;
  if (ce_check(t, weight, N, D, base, &wsum, average)) return -1;
  double total = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *xr = x + n * D;
    float *pr = prob + n * D;
    float m = xr[0];
    for (int64_t d = 1; d < D; d++) m = xr[d] > m ? xr[d] : m;
    double s = 0;
    for (int64_t d = 0; d < D; d++) s += exp((double)(xr[d] - m));
    double lse = m + log(s);
    for (int64_t d = 0; d < D; d++) pr[d] = (float)exp((double)xr[d] - lse);
    int64_t k = t[n] - base;
    double w = weight ? weight[k] : 1.0;
    total += w * (lse - xr[k]);
  }
  *loss = total / wsum;
  return 0;
}

int ac_cross_entropy_backward_input(float *gx, const float *prob, const int64_t *t,
                                    const float *weight, int64_t N, int64_t D, int64_t base,
                                    int average, float scale) {
  double wsum = 1.0;
  if (ce_check(t, weight, N, D, base, &wsum, average)) return -1;
  for (int64_t n = 0; n < N; n++) {
    int64_t c = t[n] - base;
    float k = (float)((weight ? weight[c] : 1.0) * scale / wsum);
    for (int64_t d = 0; d < D; d++) gx[n * D + d] = k * prob[n * D + d];
    gx[n * D + c] -= k;
  }
  return 0;
}
