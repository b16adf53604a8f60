/*
 * nn_pool.c - pooling kernels (NCHW): max pooling with argmax indices,
 * average pooling, global average pooling. Parallel over (sample, channel)
 * planes. Padding is given per side (top, left, bottom, right) so that
 * Keras "same" padding (extra cell at the bottom/right) is exact: padding
 * cells are -inf for max pooling and are excluded from or counted in the
 * average divisor as configured. 3x3 stride-2 max pooling goes to
 * pool_fast.c's AVX-512 kernel when the CPU has it (identical results).
 */
#include <math.h>
#include <string.h>
#include "nn/nn.h"
#include "cpu/pool_fast.h"
#include "core/tensor.h"
#include "core/parallel.h"

int ac_pool2d_setup(ac_pool2d_cfg *c) {
  if (c->N < 1 || c->C < 1 || c->H < 1 || c->W < 1)
    return ac_fail("empty input (N=%lld C=%lld H=%lld W=%lld)", (long long)c->N,
                   (long long)c->C, (long long)c->H, (long long)c->W);
  if (c->kh < 1 || c->kw < 1) return ac_fail("kernel size must be >= 1");
  if (c->sh < 1 || c->sw < 1) return ac_fail("stride must be >= 1");
  if (c->pt < 0 || c->pl < 0 || c->pb < 0 || c->pr < 0) return ac_fail("padding must be >= 0");
  if (c->pt >= c->kh || c->pb >= c->kh || c->pl >= c->kw || c->pr >= c->kw)
    return ac_fail("padding (%lld,%lld,%lld,%lld) must be smaller than the kernel %lldx%lld",
                   (long long)c->pt, (long long)c->pl, (long long)c->pb, (long long)c->pr,
                   (long long)c->kh, (long long)c->kw);
  if (c->H + c->pt + c->pb < c->kh || c->W + c->pl + c->pr < c->kw)
    return ac_fail("padded input %lldx%lld is smaller than the kernel %lldx%lld",
                   (long long)(c->H + c->pt + c->pb), (long long)(c->W + c->pl + c->pr),
                   (long long)c->kh, (long long)c->kw);
  c->OH = (c->H + c->pt + c->pb - c->kh) / c->sh + 1;
  c->OW = (c->W + c->pl + c->pr - c->kw) / c->sw + 1;
  return 0;
}

typedef struct {
  const ac_pool2d_cfg *c;
  float *out;
  int64_t *idx;
  const float *in;
  const int64_t *cidx;
} pool_ctx;

static int64_t pool_grain(const ac_pool2d_cfg *c) {
  int64_t g = 32768 / (c->OH * c->OW * c->kh * c->kw);
  return g < 1 ? 1 : g;
}

/* Window [h0, h1) x [w0, w1) of output (oh, ow), clipped to the input. */
static void window(const ac_pool2d_cfg *c, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                   int64_t *w0, int64_t *w1) {
  int64_t hs = oh * c->sh - c->pt, ws = ow * c->sw - c->pl;
  *h0 = hs < 0 ? 0 : hs;
  *h1 = hs + c->kh > c->H ? c->H : hs + c->kh;
  *w0 = ws < 0 ? 0 : ws;
  *w1 = ws + c->kw > c->W ? c->W : ws + c->kw;
}

/* Output column range [lo, hi] whose window column ow*sw - pl + j is inside [0, W). */
static void col_range(int64_t W, int64_t OW, int64_t sw, int64_t pl, int64_t j, int64_t *lo,
                      int64_t *hi) {
  int64_t num = pl - j;
  int64_t l = num <= 0 ? 0 : (num + sw - 1) / sw;
  int64_t top = W - 1 + pl - j;
  int64_t h = top < 0 ? -1 : top / sw;
  *lo = l;
  *hi = h > OW - 1 ? OW - 1 : h;
}

/* One output row at a time, taps outer and output columns inner: the running
 * maxima of neighbouring outputs are independent, so the inner loop
 * pipelines. Taps are visited in the window's row-major order, so the first
 * maximum wins; a NaN replaces the running value (PyTorch's rule). */
static void maxpool_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pool_ctx *t = vctx;
  /* locals: stores through the int64 index array could alias the config */
  const int64_t H = t->c->H, W = t->c->W, OH = t->c->OH, OW = t->c->OW;
  const int64_t kh = t->c->kh, kw = t->c->kw, sh = t->c->sh, sw = t->c->sw;
  const int64_t pt = t->c->pt, pl = t->c->pl;
  for (int64_t q = begin; q < end; q++) {
    const float *restrict xp = t->in + q * H * W;
    for (int64_t oh = 0; oh < OH; oh++) {
      float *restrict yr = t->out + q * OH * OW + oh * OW;
      int64_t *restrict ir = t->idx ? t->idx + q * OH * OW + oh * OW : NULL;
      int64_t hs = oh * sh - pt;
      int64_t h0 = hs < 0 ? 0 : hs, h1 = hs + kh > H ? H : hs + kh;
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t ws = ow * sw - pl;
        yr[ow] = -INFINITY;
        if (ir) ir[ow] = h0 * W + (ws < 0 ? 0 : ws);
      }
      for (int64_t h = h0; h < h1; h++) {
        const float *restrict xr = xp + h * W;
        for (int64_t j = 0; j < kw; j++) {
          int64_t lo, hi;
          col_range(W, OW, sw, pl, j, &lo, &hi);
          int64_t cand = h * W - pl + j + lo * sw; /* flat index of column lo's tap */
          if (ir)
            for (int64_t ow = lo; ow <= hi; ow++, cand += sw) {
              float v = xr[ow * sw - pl + j];
              float b = yr[ow];
              int take = (v > b) | (v != v);
              yr[ow] = take ? v : b;
              ir[ow] = take ? cand : ir[ow];
            }
          else /* values only (evaluation mode): the same rule */
            for (int64_t ow = lo; ow <= hi; ow++) {
              float v = xr[ow * sw - pl + j];
              yr[ow] = (v > yr[ow]) | (v != v) ? v : yr[ow];
            }
        }
      }
    }
  }
}

int ac_maxpool2d_forward(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x) {
  if (c->OH < 1 || c->OW < 1) return ac_fail("configuration not set up");
  if (ac_poolfast_max_supports(c)) return ac_poolfast_max_forward(c, y, idx, x);
  pool_ctx t = {c, y, idx, x, NULL};
  ac_parallel_for(c->N * c->C, pool_grain(c), maxpool_task, &t);
  return 0;
}

static void maxpool_back_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pool_ctx *t = vctx;
  const ac_pool2d_cfg *c = t->c;
  int64_t HW = c->H * c->W, OP = c->OH * c->OW;
  for (int64_t q = begin; q < end; q++) {
    float *gp = t->out + q * HW;
    const float *gyp = t->in + q * OP;
    const int64_t *ip = t->cidx + q * OP;
    memset(gp, 0, sizeof(float) * (size_t)HW);
    for (int64_t p = 0; p < OP; p++) {
      int64_t i = ip[p];
      if (i >= 0 && i < HW) gp[i] += gyp[p];
    }
  }
}

int ac_maxpool2d_backward_input(const ac_pool2d_cfg *c, float *gx, const float *gy,
                                const int64_t *idx) {
  if (c->OH < 1 || c->OW < 1) return ac_fail("configuration not set up");
  pool_ctx t = {c, gx, NULL, gy, idx};
  ac_parallel_for(c->N * c->C, pool_grain(c), maxpool_back_task, &t);
  return 0;
}

static float avg_divisor(const ac_pool2d_cfg *c, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
  if (c->count_include_pad) return (float)(c->kh * c->kw);
  return (float)((h1 - h0) * (w1 - w0));
}

static void avgpool_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pool_ctx *t = vctx;
  const ac_pool2d_cfg *c = t->c;
  int64_t HW = c->H * c->W, OP = c->OH * c->OW;
  for (int64_t q = begin; q < end; q++) {
    const float *xp = t->in + q * HW;
    float *yp = t->out + q * OP;
    for (int64_t oh = 0; oh < c->OH; oh++)
      for (int64_t ow = 0; ow < c->OW; ow++) {
        int64_t h0, h1, w0, w1;
        window(c, oh, ow, &h0, &h1, &w0, &w1);
        float s = 0.0f;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += xp[h * c->W + w];
        yp[oh * c->OW + ow] = s / avg_divisor(c, h0, h1, w0, w1);
      }
  }
}

int ac_avgpool2d_forward(const ac_pool2d_cfg *c, float *y, const float *x) {
  if (c->OH < 1 || c->OW < 1) return ac_fail("configuration not set up");
  pool_ctx t = {c, y, NULL, x, NULL};
  ac_parallel_for(c->N * c->C, pool_grain(c), avgpool_task, &t);
  return 0;
}

static void avgpool_back_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pool_ctx *t = vctx;
  const ac_pool2d_cfg *c = t->c;
  int64_t HW = c->H * c->W, OP = c->OH * c->OW;
  for (int64_t q = begin; q < end; q++) {
    float *gp = t->out + q * HW;
    const float *gyp = t->in + q * OP;
    memset(gp, 0, sizeof(float) * (size_t)HW);
    for (int64_t oh = 0; oh < c->OH; oh++)
      for (int64_t ow = 0; ow < c->OW; ow++) {
        int64_t h0, h1, w0, w1;
        window(c, oh, ow, &h0, &h1, &w0, &w1);
        float g = gyp[oh * c->OW + ow] / avg_divisor(c, h0, h1, w0, w1);
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gp[h * c->W + w] += g;
      }
  }
}

int ac_avgpool2d_backward_input(const ac_pool2d_cfg *c, float *gx, const float *gy) {
  if (c->OH < 1 || c->OW < 1) return ac_fail("configuration not set up");
  pool_ctx t = {c, gx, NULL, gy, NULL};
  ac_parallel_for(c->N * c->C, pool_grain(c), avgpool_back_task, &t);
  return 0;
}

int ac_global_avgpool_forward(float *y, const float *x, int64_t N, int64_t C, int64_t P) {
  if (N < 1 || C < 1 || P < 1) return ac_fail("empty input");
  for (int64_t q = 0; q < N * C; q++) {
    const float *xp = x + q * P;
    double s = 0;
    for (int64_t p = 0; p < P; p++) s += xp[p];
    y[q] = (float)(s / (double)P);
  }
  return 0;
}

int ac_global_avgpool_backward_input(float *gx, const float *gy, int64_t N, int64_t C, int64_t P) {
  if (N < 1 || C < 1 || P < 1) return ac_fail("empty input");
  float inv = 1.0f / (float)P;
  for (int64_t q = 0; q < N * C; q++) {
    float g = gy[q] * inv;
    float *gp = gx + q * P;
    for (int64_t p = 0; p < P; p++) gp[p] = g;
  }
  return 0;
}
