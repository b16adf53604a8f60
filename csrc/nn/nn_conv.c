/*
 * nn_conv.c - 2-D convolution kernels (NCHW, weight [O, C/groups, kh, kw]).
 *
 * The rule ac_conv2d_setup follows:
 *   - the configurations csrc/cpu/conv_fast.c does better
 *     (ac_convfast_preferred: depthwise 3x3 same, every 1x1, small valid
 *     3-wide kernels, dense ones with >= 16 output channels) go to those
 *     kernels (path AC_CONV_FAST), unless they are switched off
 *     (adcorre.testing's convfast_enable(false));
 *   - depthwise (groups == C, O a multiple of C): direct loops, parallel over
 *     the (sample, channel) planes; with stride 1 each plane is first copied
 *     into a zero-padded per-thread scratch plane so that the inner loops
 *     have no bounds checks.
 *   - everything else: im2col over a chunk of samples into a caller-owned
 *     workspace, one GEMM per group (cpu/gemm.h, on the thread pool) with
 *     the chunk's columns side by side
 *     (so the GEMM is wide even for small images), then a scatter into NCHW;
 *     col2im on the way back.
 * So with the fast kernels on, nn_conv.c serves the grouped and depthwise
 * convolutions they decline and the dense ones with few output channels.
 * Naive reference kernels (direct loops) are kept at the end for the tests.
 */
#include <string.h>
#include "nn/nn.h"
#include "cpu/conv_fast.h"
#include "cpu/gemm.h"
#include "core/tensor.h"
#include "core/parallel.h"
#include "nn/nn_reduce.h"

/* Largest kernel (kh*kw) of the stride-1 depthwise path. */
#define DW_MAXTAPS 64

/* Floats of scratch the im2col path may use: chunks are sized to stay below. */
#define AC_CONV_WS_BUDGET ((int64_t)1 << 20)

/* ======================================================================
 * setup
 * ====================================================================== */

void ac_same_padding(int64_t n, int64_t k, int64_t stride, int64_t *before, int64_t *after) {
  int64_t out = (n + stride - 1) / stride;
  int64_t total = (out - 1) * stride + k - n;
  if (total < 0) total = 0;
  *before = total / 2;
  *after = total - total / 2;
}

int ac_conv2d_setup(ac_conv2d_cfg *c) {
  if (c->N < 1 || c->C < 1 || c->H < 1 || c->W < 1 || c->O < 1)
    return ac_fail("empty input or output (N=%lld C=%lld H=%lld W=%lld O=%lld)",
                   (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W,
                   (long long)c->O);
  if (c->kh < 1 || c->kw < 1) return ac_fail("kernel size must be >= 1");
  if (c->sh < 1 || c->sw < 1) return ac_fail("stride must be >= 1");
  if (c->pt < 0 || c->pl < 0 || c->pb < 0 || c->pr < 0) return ac_fail("padding must be >= 0");
  if (c->groups < 1 || c->C % c->groups || c->O % c->groups)
    return ac_fail("groups=%lld must divide input channels %lld and output channels %lld",
                   (long long)c->groups, (long long)c->C, (long long)c->O);
  if (c->H + c->pt + c->pb < c->kh || c->W + c->pl + c->pr < c->kw)
    return ac_fail("padded input %lldx%lld is smaller than the kernel %lldx%lld",
                   (long long)(c->H + c->pt + c->pb), (long long)(c->W + c->pl + c->pr),
                   (long long)c->kh, (long long)c->kw);
  c->OH = (c->H + c->pt + c->pb - c->kh) / c->sh + 1;
  c->OW = (c->W + c->pl + c->pr - c->kw) / c->sw + 1;
  if (c->groups > 1 && c->groups == c->C && c->sh == 1 && c->sw == 1 && c->pt < c->kh &&
           c->pb < c->kh && c->pl < c->kw && c->pr < c->kw && c->kh * c->kw <= DW_MAXTAPS)
    c->path = AC_CONV_DEPTHWISE_S1;
  else if (c->groups > 1 && c->groups == c->C)
    c->path = AC_CONV_DEPTHWISE;
  else
    c->path = AC_CONV_IM2COL;
  if (ac_convfast_preferred(c)) c->path = AC_CONV_FAST;
  int64_t P = c->OH * c->OW;
  int64_t per = (c->C * c->kh * c->kw + c->O) * P;
  int64_t chunk = AC_CONV_WS_BUDGET / per;
  if (chunk < 1) chunk = 1;
  if (chunk > c->N) chunk = c->N;
  c->chunk = chunk;
  return 0;
}

/* floats of one padded plane of the stride-1 depthwise path */
static int64_t dws1_plane(const ac_conv2d_cfg *c) {
  int64_t a = (c->H + c->pt + c->pb) * (c->W + c->pl + c->pr);
  int64_t b = (c->H + c->kh - 1) * (c->W + c->kw - 1);
  return a > b ? a : b;
}

int64_t ac_conv2d_workspace(const ac_conv2d_cfg *c) {
  if (c->path == AC_CONV_FAST) return ac_convfast_workspace(c);
  if (c->path == AC_CONV_DEPTHWISE_S1) return (int64_t)ac_get_num_threads() * dws1_plane(c);
  if (c->path != AC_CONV_IM2COL) return 0;
  return c->chunk * (c->C * c->kh * c->kw + c->O) * c->OH * c->OW;
}

/* ======================================================================
 * im2col path
 * ====================================================================== */

/* Columns of a chunk of S samples: cols[(ci*kh + i)*kw + j][s*P + oh*OW + ow]. */
typedef struct {
  const ac_conv2d_cfg *c;
  const float *x; /* first sample of the chunk */
  float *cols;
  float *gx;      /* col2im target (first sample of the chunk) */
  int64_t S;
} im2col_ctx;

/* ow range [lo, hi] whose input column ow*sw - pl + j lies in [0, W). */
static void col_range(const ac_conv2d_cfg *c, int64_t j, int64_t *lo, int64_t *hi) {
  int64_t num = c->pl - j;
  int64_t l = num <= 0 ? 0 : (num + c->sw - 1) / c->sw;
  int64_t top = c->W - 1 + c->pl - j;
  int64_t h = top < 0 ? -1 : top / c->sw;
  if (h > c->OW - 1) h = c->OW - 1;
  if (l > c->OW) l = c->OW;
  *lo = l;
  *hi = h;
}

static void im2col_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  im2col_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t H = c->H, W = c->W, OH = c->OH, OW = c->OW, sh = c->sh, sw = c->sw;
  const int64_t P = OH * OW, SP = t->S * P;
  for (int64_t q = begin; q < end; q++) {
    int64_t s = q / c->C, ci = q % c->C;
    const float *xp = t->x + (s * c->C + ci) * H * W;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        float *row = t->cols + ((ci * c->kh + i) * c->kw + j) * SP + s * P;
        int64_t lo, hi;
        col_range(c, j, &lo, &hi);
        for (int64_t oh = 0; oh < OH; oh++) {
          int64_t h = oh * sh - c->pt + i;
          float *r = row + oh * OW;
          if (h < 0 || h >= H || hi < lo) {
            memset(r, 0, sizeof(float) * (size_t)OW);
            continue;
          }
          const float *xr = xp + h * W - c->pl + j; /* xr[ow * sw] is column ow */
          for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0.0f;
          if (sw == 1)
            memcpy(r + lo, xr + lo, sizeof(float) * (size_t)(hi - lo + 1));
          else
            for (int64_t ow = lo; ow <= hi; ow++) r[ow] = xr[ow * sw];
          for (int64_t ow = hi + 1; ow < OW; ow++) r[ow] = 0.0f;
        }
      }
  }
}

static void col2im_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  im2col_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t H = c->H, W = c->W, OH = c->OH, OW = c->OW, sh = c->sh, sw = c->sw;
  const int64_t P = OH * OW, SP = t->S * P;
  for (int64_t q = begin; q < end; q++) {
    int64_t s = q / c->C, ci = q % c->C;
    float *gp = t->gx + (s * c->C + ci) * H * W;
    memset(gp, 0, sizeof(float) * (size_t)(H * W));
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        const float *row = t->cols + ((ci * c->kh + i) * c->kw + j) * SP + s * P;
        int64_t lo, hi;
        col_range(c, j, &lo, &hi);
        if (hi < lo) continue;
        for (int64_t oh = 0; oh < OH; oh++) {
          int64_t h = oh * sh - c->pt + i;
          if (h < 0 || h >= H) continue;
          const float *r = row + oh * OW;
          float *gr = gp + h * W - c->pl + j; /* gr[ow * sw] is column ow */
          if (sw == 1)
            for (int64_t ow = lo; ow <= hi; ow++) gr[ow] += r[ow];
          else
            for (int64_t ow = lo; ow <= hi; ow++) gr[ow * sw] += r[ow];
        }
      }
  }
}

/* tmp [O, S*P] <-> y [S, O, P] (plus bias on the way out). */
typedef struct {
  const ac_conv2d_cfg *c;
  float *nchw;
  float *tmp;
  const float *b;
  int64_t S;
  int to_nchw;
} scatter_ctx;

static void scatter_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  scatter_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, SP = t->S * P;
  for (int64_t q = begin; q < end; q++) {
    int64_t s = q / c->O, o = q % c->O;
    float *a = t->nchw + (s * c->O + o) * P;
    float *m = t->tmp + o * SP + s * P;
    if (t->to_nchw) {
      if (t->b) {
        float bv = t->b[o];
        for (int64_t p = 0; p < P; p++) a[p] = m[p] + bv;
      } else {
        memcpy(a, m, sizeof(float) * (size_t)P);
      }
    } else {
      memcpy(m, a, sizeof(float) * (size_t)P);
    }
  }
}

static int64_t grain_for(int64_t work_per_item) {
  int64_t g = 32768 / (work_per_item > 0 ? work_per_item : 1);
  return g < 1 ? 1 : g;
}

static void run_im2col(const ac_conv2d_cfg *c, const float *x, float *cols, int64_t S) {
  im2col_ctx t = {c, x, cols, NULL, S};
  ac_parallel_for(S * c->C, grain_for(c->kh * c->kw * c->OH * c->OW), im2col_task, &t);
}

static void run_scatter(const ac_conv2d_cfg *c, float *nchw, float *tmp, const float *b,
                        int64_t S, int to_nchw) {
  scatter_ctx t = {c, nchw, tmp, b, S, to_nchw};
  ac_parallel_for(S * c->O, grain_for(c->OH * c->OW), scatter_task, &t);
}

static void im2col_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                           const float *b, float *ws) {
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  int64_t G = c->groups, Kg = K / G, Og = c->O / G;
  float *cols = ws, *tmp = ws + c->chunk * K * P;
  for (int64_t n0 = 0; n0 < c->N; n0 += c->chunk) {
    int64_t S = c->N - n0 < c->chunk ? c->N - n0 : c->chunk, SP = S * P;
    run_im2col(c, x + n0 * c->C * c->H * c->W, cols, S);
    for (int64_t g = 0; g < G; g++)
      ac_gemm_parallel(0, Og, SP, Kg, 1.0f, w + g * Og * Kg, Kg, cols + g * Kg * SP, SP, 0,
                       tmp + g * Og * SP, SP);
    run_scatter(c, y + n0 * c->O * P, tmp, b, S, 1);
  }
}

static void im2col_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy,
                                  const float *w, float *ws) {
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  int64_t G = c->groups, Kg = K / G, Og = c->O / G;
  float *cols = ws, *tmp = ws + c->chunk * K * P;
  for (int64_t n0 = 0; n0 < c->N; n0 += c->chunk) {
    int64_t S = c->N - n0 < c->chunk ? c->N - n0 : c->chunk, SP = S * P;
    run_scatter(c, (float *)(gy + n0 * c->O * P), tmp, NULL, S, 0);
    for (int64_t g = 0; g < G; g++)
      ac_gemm_parallel(1, Kg, SP, Og, 1.0f, w + g * Og * Kg, Kg, tmp + g * Og * SP, SP, 0,
                       cols + g * Kg * SP, SP);
    im2col_ctx t = {c, NULL, cols, gx + n0 * c->C * c->H * c->W, S};
    ac_parallel_for(S * c->C, grain_for(c->kh * c->kw * P), col2im_task, &t);
  }
}

static void im2col_backward_params(const ac_conv2d_cfg *c, float *gw, float *gb, const float *x,
                                   const float *gy, float scale, float *ws) {
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  int64_t G = c->groups, Kg = K / G, Og = c->O / G;
  float *cols = ws, *tmp = ws + c->chunk * K * P;
  for (int64_t n0 = 0; n0 < c->N; n0 += c->chunk) {
    int64_t S = c->N - n0 < c->chunk ? c->N - n0 : c->chunk, SP = S * P;
    run_im2col(c, x + n0 * c->C * c->H * c->W, cols, S);
    run_scatter(c, (float *)(gy + n0 * c->O * P), tmp, NULL, S, 0);
    for (int64_t g = 0; g < G; g++)
      ac_gemm_parallel(2, Og, Kg, SP, scale, tmp + g * Og * SP, SP, cols + g * Kg * SP, SP, 1,
                       gw + g * Og * Kg, Kg);
    if (gb)
      for (int64_t o = 0; o < c->O; o++) {
        double acc = 0;
        const float *m = tmp + o * SP;
        for (int64_t p = 0; p < SP; p++) acc += m[p];
        gb[o] += scale * (float)acc;
      }
  }
}

/* ======================================================================
 * depthwise path (groups == C; output channel o reads input channel o / M)
 * ====================================================================== */

typedef struct {
  const ac_conv2d_cfg *c;
  float *out;
  const float *a, *w, *b; /* a: x (forward) or gy (backward) */
} dw_ctx;

/* Taps outer, output rows inner: the valid column range of a tap is
 * computed once per plane. */
static void dw_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  dw_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t M = c->O / c->C, HW = c->H * c->W, OP = c->OH * c->OW;
  const int64_t H = c->H, W = c->W, OH = c->OH, OW = c->OW, sh = c->sh, sw = c->sw;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->O, o = q % c->O, ci = o / M;
    const float *xp = t->a + (n * c->C + ci) * HW;
    const float *wo = t->w + o * c->kh * c->kw;
    float *yp = t->out + q * OP;
    float bv = t->b ? t->b[o] : 0.0f;
    for (int64_t p = 0; p < OP; p++) yp[p] = bv;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        float wv = wo[i * c->kw + j];
        int64_t lo, hi;
        col_range(c, j, &lo, &hi);
        if (hi < lo) continue;
        for (int64_t oh = 0; oh < OH; oh++) {
          int64_t h = oh * sh - c->pt + i;
          if (h < 0 || h >= H) continue;
          float *yr = yp + oh * OW;
          const float *xr = xp + h * W - c->pl + j; /* xr[ow * sw] is column ow */
          if (sw == 1)
            for (int64_t ow = lo; ow <= hi; ow++) yr[ow] += wv * xr[ow];
          else
            for (int64_t ow = lo; ow <= hi; ow++) yr[ow] += wv * xr[ow * sw];
        }
      }
  }
}

static void dw_backward_input_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  dw_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t M = c->O / c->C, HW = c->H * c->W, OP = c->OH * c->OW;
  const int64_t H = c->H, W = c->W, OH = c->OH, OW = c->OW, sh = c->sh, sw = c->sw;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->C, ci = q % c->C;
    float *gp = t->out + q * HW;
    memset(gp, 0, sizeof(float) * (size_t)HW);
    for (int64_t m = 0; m < M; m++) {
      int64_t o = ci * M + m;
      const float *gyp = t->a + (n * c->O + o) * OP;
      const float *wo = t->w + o * c->kh * c->kw;
      for (int64_t i = 0; i < c->kh; i++)
        for (int64_t j = 0; j < c->kw; j++) {
          float wv = wo[i * c->kw + j];
          int64_t lo, hi;
          col_range(c, j, &lo, &hi);
          if (hi < lo) continue;
          for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h = oh * sh - c->pt + i;
            if (h < 0 || h >= H) continue;
            const float *gr = gyp + oh * OW;
            float *xr = gp + h * W - c->pl + j; /* xr[ow * sw] is column ow */
            if (sw == 1)
              for (int64_t ow = lo; ow <= hi; ow++) xr[ow] += wv * gr[ow];
            else
              for (int64_t ow = lo; ow <= hi; ow++) xr[ow * sw] += wv * gr[ow];
          }
        }
    }
  }
}

typedef struct {
  const ac_conv2d_cfg *c;
  const float *x, *gy;
  float *gw, *gb;
  float scale;
} dwp_ctx;

static void dw_backward_params_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  dwp_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t M = c->O / c->C, HW = c->H * c->W, OP = c->OH * c->OW;
  for (int64_t o = begin; o < end; o++) {
    int64_t ci = o / M;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        int64_t lo, hi;
        col_range(c, j, &lo, &hi);
        double acc = 0;
        for (int64_t n = 0; n < c->N; n++) {
          const float *xp = t->x + (n * c->C + ci) * HW;
          const float *gyp = t->gy + (n * c->O + o) * OP;
          for (int64_t oh = 0; oh < c->OH; oh++) {
            int64_t h = oh * c->sh - c->pt + i;
            if (h < 0 || h >= c->H) continue;
            const float *xr = xp + h * c->W, *gr = gyp + oh * c->OW;
            float s = 0.0f;
            if (c->sw == 1) {
              if (hi >= lo) s = nn_dot(gr + lo, xr + j - c->pl + lo, hi - lo + 1);
            } else {
              for (int64_t ow = lo; ow <= hi; ow++) s += gr[ow] * xr[ow * c->sw - c->pl + j];
            }
            acc += s;
          }
        }
        t->gw[o * c->kh * c->kw + i * c->kw + j] += t->scale * (float)acc;
      }
    if (t->gb) {
      double acc = 0;
      for (int64_t n = 0; n < c->N; n++) {
        const float *gyp = t->gy + (n * c->O + o) * OP;
        for (int64_t p = 0; p < OP; p++) acc += gyp[p];
      }
      t->gb[o] += t->scale * (float)acc;
    }
  }
}

/* ======================================================================
 * stride-1 depthwise path: each plane is copied into a zero-padded scratch
 * plane (one per thread), after which every output is a plain correlation
 * with no bounds checks (vectorised along the row; 3x3 unrolled).
 * ====================================================================== */

typedef struct {
  const ac_conv2d_cfg *c;
  float *out, *ws, *gw, *gb;
  const float *a, *w, *b;
  float scale;
} dws1_ctx;

/* dst [Hp, Wp] = src [H, W] placed at (top, left), zeros elsewhere */
static void pad_plane(float *dst, const float *src, int64_t H, int64_t W, int64_t top,
                      int64_t left, int64_t Hp, int64_t Wp) {
  memset(dst, 0, sizeof(float) * (size_t)(Hp * Wp));
  for (int64_t h = 0; h < H; h++)
    memcpy(dst + (h + top) * Wp + left, src + h * W, sizeof(float) * (size_t)W);
}

/* out [OH, OW] += sum_ij k[i*kw + j] * in[(oh + i) * Win + ow + j] */
static void corr_acc(float *restrict out, const float *restrict in, int64_t Win,
                     const float *k, int64_t kh, int64_t kw, int64_t OH, int64_t OW) {
  if (kh == 3 && kw == 3) {
    const float k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6],
                k7 = k[7], k8 = k[8];
    for (int64_t oh = 0; oh < OH; oh++) {
      const float *r0 = in + oh * Win, *r1 = r0 + Win, *r2 = r1 + Win;
      float *o = out + oh * OW;
      for (int64_t ow = 0; ow < OW; ow++)
        o[ow] += k0 * r0[ow] + k1 * r0[ow + 1] + k2 * r0[ow + 2] + k3 * r1[ow] + k4 * r1[ow + 1] +
                 k5 * r1[ow + 2] + k6 * r2[ow] + k7 * r2[ow + 1] + k8 * r2[ow + 2];
    }
    return;
  }
  for (int64_t oh = 0; oh < OH; oh++) {
    float *o = out + oh * OW;
    for (int64_t i = 0; i < kh; i++) {
      const float *r = in + (oh + i) * Win;
      for (int64_t j = 0; j < kw; j++) {
        const float kv = k[i * kw + j];
        for (int64_t ow = 0; ow < OW; ow++) o[ow] += kv * r[ow + j];
      }
    }
  }
}

static void dws1_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  dws1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t M = c->O / c->C, HW = c->H * c->W, OP = c->OH * c->OW;
  const int64_t Hp = c->H + c->pt + c->pb, Wp = c->W + c->pl + c->pr;
  float *pad = t->ws + (int64_t)tid * dws1_plane(c);
  int64_t last = -1;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->O, o = q % c->O, ci = o / M, src = n * c->C + ci;
    if (src != last) pad_plane(pad, t->a + src * HW, c->H, c->W, c->pt, c->pl, Hp, Wp);
    last = src;
    float *yp = t->out + q * OP;
    float bv = t->b ? t->b[o] : 0.0f;
    for (int64_t p = 0; p < OP; p++) yp[p] = bv;
    corr_acc(yp, pad, Wp, t->w + o * c->kh * c->kw, c->kh, c->kw, c->OH, c->OW);
  }
}

/* gx[h][w] = sum_m sum_ij w_o[i][j] gy_o[h + pt - i][w + pl - j]: a correlation
 * of gy padded by (kh-1-pt, kw-1-pl) with the flipped kernel. */
static void dws1_backward_input_task(void *vctx, int64_t begin, int64_t end, int tid) {
  dws1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t M = c->O / c->C, HW = c->H * c->W, OP = c->OH * c->OW, K = c->kh * c->kw;
  const int64_t Hg = c->H + c->kh - 1, Wg = c->W + c->kw - 1;
  float *pad = t->ws + (int64_t)tid * dws1_plane(c);
  float flip[DW_MAXTAPS];
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->C, ci = q % c->C;
    float *gp = t->out + q * HW;
    memset(gp, 0, sizeof(float) * (size_t)HW);
    for (int64_t m = 0; m < M; m++) {
      int64_t o = ci * M + m;
      const float *wo = t->w + o * K;
      for (int64_t k = 0; k < K; k++) flip[k] = wo[K - 1 - k];
      pad_plane(pad, t->a + (n * c->O + o) * OP, c->OH, c->OW, c->kh - 1 - c->pt,
                c->kw - 1 - c->pl, Hg, Wg);
      corr_acc(gp, pad, Wg, flip, c->kh, c->kw, c->H, c->W);
    }
  }
}

/* acc[i*3 + j] += sum_oh,ow g[oh][ow] * pad[oh + i][ow + j], four lanes per
 * tap so that the nine sums vectorise. */
static void dw_grad3x3(double *acc, const float *restrict g, const float *restrict pad,
                       int64_t Wp, int64_t OH, int64_t OW) {
  float a[9][4];
  for (int k = 0; k < 9; k++)
    for (int l = 0; l < 4; l++) a[k][l] = 0.0f;
  for (int64_t oh = 0; oh < OH; oh++) {
    const float *gr = g + oh * OW, *r0 = pad + oh * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
    int64_t ow = 0;
    for (; ow + 4 <= OW; ow += 4)
      for (int l = 0; l < 4; l++) {
        float gv = gr[ow + l];
        a[0][l] += gv * r0[ow + l];
        a[1][l] += gv * r0[ow + l + 1];
        a[2][l] += gv * r0[ow + l + 2];
        a[3][l] += gv * r1[ow + l];
        a[4][l] += gv * r1[ow + l + 1];
        a[5][l] += gv * r1[ow + l + 2];
        a[6][l] += gv * r2[ow + l];
        a[7][l] += gv * r2[ow + l + 1];
        a[8][l] += gv * r2[ow + l + 2];
      }
    for (; ow < OW; ow++) {
      float gv = gr[ow];
      a[0][0] += gv * r0[ow];
      a[1][0] += gv * r0[ow + 1];
      a[2][0] += gv * r0[ow + 2];
      a[3][0] += gv * r1[ow];
      a[4][0] += gv * r1[ow + 1];
      a[5][0] += gv * r1[ow + 2];
      a[6][0] += gv * r2[ow];
      a[7][0] += gv * r2[ow + 1];
      a[8][0] += gv * r2[ow + 2];
    }
  }
  for (int k = 0; k < 9; k++) acc[k] += (double)((a[k][0] + a[k][1]) + (a[k][2] + a[k][3]));
}

/* gw_o[i][j] += scale * sum_n sum_oh <gy_o[oh][:], xpad[oh + i][j : j + OW]> */
static void dws1_backward_params_task(void *vctx, int64_t begin, int64_t end, int tid) {
  dws1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const int64_t M = c->O / c->C, HW = c->H * c->W, OP = c->OH * c->OW, K = c->kh * c->kw;
  const int64_t Hp = c->H + c->pt + c->pb, Wp = c->W + c->pl + c->pr;
  float *pad = t->ws + (int64_t)tid * dws1_plane(c);
  double acc[DW_MAXTAPS];
  for (int64_t o = begin; o < end; o++) {
    int64_t ci = o / M;
    double bacc = 0;
    for (int64_t k = 0; k < K; k++) acc[k] = 0;
    for (int64_t n = 0; n < c->N; n++) {
      const float *gyp = t->a + (n * c->O + o) * OP;
      pad_plane(pad, t->w + (n * c->C + ci) * HW, c->H, c->W, c->pt, c->pl, Hp, Wp);
      if (c->kh == 3 && c->kw == 3 && c->OW < 16) /* short rows: per-row dots cost more */
        dw_grad3x3(acc, gyp, pad, Wp, c->OH, c->OW);
      else
        for (int64_t i = 0; i < c->kh; i++)
          for (int64_t j = 0; j < c->kw; j++) {
            float s = 0.0f;
            for (int64_t oh = 0; oh < c->OH; oh++)
              s += nn_dot(gyp + oh * c->OW, pad + (oh + i) * Wp + j, c->OW);
            acc[i * c->kw + j] += s;
          }
      if (t->gb) bacc += nn_sum(gyp, OP);
    }
    for (int64_t k = 0; k < K; k++) t->gw[o * K + k] += t->scale * (float)acc[k];
    if (t->gb) t->gb[o] += t->scale * (float)bacc;
  }
}

/* ======================================================================
 * public entry points
 * ====================================================================== */

static int check_ws(const ac_conv2d_cfg *c, const float *ws) {
  if (c->OH < 1 || c->OW < 1 || c->chunk < 1) return ac_fail("configuration not set up");
  if ((c->path == AC_CONV_IM2COL || c->path == AC_CONV_DEPTHWISE_S1) && ws == NULL)
    return ac_fail("missing workspace");
  return 0;
}

int ac_conv2d_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                      const float *b, float *ws) {
  if (check_ws(c, ws)) return -1;
  if (c->path == AC_CONV_FAST) return ac_convfast_forward(c, y, x, w, b, ws);
  if (c->path == AC_CONV_DEPTHWISE_S1) {
    dws1_ctx t = {.c = c, .out = y, .ws = ws, .a = x, .w = w, .b = b};
    ac_parallel_for(c->N * c->O, grain_for(c->OH * c->OW * c->kh * c->kw), dws1_forward_task, &t);
  } else if (c->path == AC_CONV_DEPTHWISE) {
    dw_ctx t = {c, y, x, w, b};
    ac_parallel_for(c->N * c->O, grain_for(c->OH * c->OW * c->kh * c->kw), dw_forward_task, &t);
  } else {
    im2col_forward(c, y, x, w, b, ws);
  }
  return 0;
}

int ac_conv2d_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w,
                             float *ws) {
  if (check_ws(c, ws)) return -1;
  if (c->path == AC_CONV_FAST) return ac_convfast_backward_input(c, gx, gy, w, ws);
  if (c->path == AC_CONV_DEPTHWISE_S1) {
    dws1_ctx t = {.c = c, .out = gx, .ws = ws, .a = gy, .w = w};
    ac_parallel_for(c->N * c->C, grain_for(c->O / c->C * c->H * c->W * c->kh * c->kw),
                    dws1_backward_input_task, &t);
  } else if (c->path == AC_CONV_DEPTHWISE) {
    dw_ctx t = {c, gx, gy, w, NULL};
    ac_parallel_for(c->N * c->C, grain_for(c->O / c->C * c->OH * c->OW * c->kh * c->kw),
                    dw_backward_input_task, &t);
  } else {
    im2col_backward_input(c, gx, gy, w, ws);
  }
  return 0;
}

int ac_conv2d_backward_params(const ac_conv2d_cfg *c, float *gw, float *gb, const float *x,
                              const float *gy, float scale, float *ws) {
  if (check_ws(c, ws)) return -1;
  if (c->path == AC_CONV_FAST) return ac_convfast_backward_params(c, gw, gb, x, gy, scale, ws);
  if (c->path == AC_CONV_DEPTHWISE_S1) {
    /* .a = gy, .w = x (read only) */
    dws1_ctx t = {.c = c, .ws = ws, .gw = gw, .gb = gb, .a = gy, .w = x, .scale = scale};
    ac_parallel_for(c->O, 1, dws1_backward_params_task, &t);
  } else if (c->path == AC_CONV_DEPTHWISE) {
    dwp_ctx t = {c, x, gy, gw, gb, scale};
    ac_parallel_for(c->O, 1, dw_backward_params_task, &t);
  } else {
    im2col_backward_params(c, gw, gb, x, gy, scale, ws);
  }
  return 0;
}

/* ======================================================================
 * naive reference kernels
 * ====================================================================== */

int ac_conv2d_forward_ref(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                          const float *b) {
  int64_t Cg = c->C / c->groups, Og = c->O / c->groups;
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t o = 0; o < c->O; o++) {
      int64_t g = o / Og;
      for (int64_t oh = 0; oh < c->OH; oh++)
        for (int64_t ow = 0; ow < c->OW; ow++) {
          double acc = b ? b[o] : 0.0;
          for (int64_t cc = 0; cc < Cg; cc++)
            for (int64_t i = 0; i < c->kh; i++)
              for (int64_t j = 0; j < c->kw; j++) {
                int64_t h = oh * c->sh - c->pt + i, ww = ow * c->sw - c->pl + j;
                if (h < 0 || h >= c->H || ww < 0 || ww >= c->W) continue;
                acc += (double)w[((o * Cg + cc) * c->kh + i) * c->kw + j] *
                       x[((n * c->C + g * Cg + cc) * c->H + h) * c->W + ww];
              }
          y[((n * c->O + o) * c->OH + oh) * c->OW + ow] = (float)acc;
        }
    }
  return 0;
}

int ac_conv2d_backward_input_ref(const ac_conv2d_cfg *c, float *gx, const float *gy,
                                 const float *w) {
  int64_t Cg = c->C / c->groups, Og = c->O / c->groups;
  memset(gx, 0, sizeof(float) * (size_t)(c->N * c->C * c->H * c->W));
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t o = 0; o < c->O; o++) {
      int64_t g = o / Og;
      for (int64_t oh = 0; oh < c->OH; oh++)
        for (int64_t ow = 0; ow < c->OW; ow++) {
          float gv = gy[((n * c->O + o) * c->OH + oh) * c->OW + ow];
          for (int64_t cc = 0; cc < Cg; cc++)
            for (int64_t i = 0; i < c->kh; i++)
              for (int64_t j = 0; j < c->kw; j++) {
                int64_t h = oh * c->sh - c->pt + i, ww = ow * c->sw - c->pl + j;
                if (h < 0 || h >= c->H || ww < 0 || ww >= c->W) continue;
                gx[((n * c->C + g * Cg + cc) * c->H + h) * c->W + ww] +=
                    gv * w[((o * Cg + cc) * c->kh + i) * c->kw + j];
              }
        }
    }
  return 0;
}

int ac_conv2d_backward_params_ref(const ac_conv2d_cfg *c, float *gw, float *gb, const float *x,
                                  const float *gy, float scale) {
  int64_t Cg = c->C / c->groups, Og = c->O / c->groups;
  for (int64_t o = 0; o < c->O; o++) {
    int64_t g = o / Og;
    double bacc = 0;
    for (int64_t cc = 0; cc < Cg; cc++)
      for (int64_t i = 0; i < c->kh; i++)
        for (int64_t j = 0; j < c->kw; j++) {
          double acc = 0;
          for (int64_t n = 0; n < c->N; n++)
            for (int64_t oh = 0; oh < c->OH; oh++)
              for (int64_t ow = 0; ow < c->OW; ow++) {
                int64_t h = oh * c->sh - c->pt + i, ww = ow * c->sw - c->pl + j;
                if (h < 0 || h >= c->H || ww < 0 || ww >= c->W) continue;
                acc += (double)gy[((n * c->O + o) * c->OH + oh) * c->OW + ow] *
                       x[((n * c->C + g * Cg + cc) * c->H + h) * c->W + ww];
              }
          gw[((o * Cg + cc) * c->kh + i) * c->kw + j] += scale * (float)acc;
        }
    if (gb) {
      for (int64_t n = 0; n < c->N; n++)
        for (int64_t p = 0; p < c->OH * c->OW; p++) bacc += gy[(n * c->O + o) * c->OH * c->OW + p];
      gb[o] += scale * (float)bacc;
    }
  }
  return 0;
}
