/*
 * conv_small.c - small dense convolutions (mini-Xception's first two
 * layers): stride 1, no padding, kw == 3, output channels a multiple of 8
 * up to 32. Direct AVX-512 loops: 8 output channels x 16 columns per step
 * for the forward, 8 output channels x 3 taps per step for the weight
 * gradient (per-thread partial sums, added in thread order), 8 input
 * channels x 16 columns for the input gradient (when C % 8 == 0; otherwise
 * the im2col path). conv_small_avx2.c holds the AVX2 + FMA versions. No
 * portable version: without AVX2 these shapes take the im2col path.
 */
#include <string.h>
#include <immintrin.h>
#include "cpu/conv_kernels.h"
#include "cpu/cpu.h"
#include "cpu/simd.h"
#include "core/parallel.h"

typedef struct {
  const ac_conv2d_cfg *c;
  const float *x, *w, *b, *gy;
  float *y, *gx, *parts;
  int64_t partsz; /* floats of one thread's partial sums */
} sd_ctx;

int ac_sd_shape(const ac_conv2d_cfg *c) {
  return c->groups == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 && c->pb == 0 &&
         c->pr == 0 && c->kw == 3 && c->kh >= 1 && c->kh <= 7 && c->O % 8 == 0 && c->O <= 32;
}

int ac_sd_active(const ac_conv2d_cfg *c) { return ac_sd_shape(c) && ac_cpu_isa() >= AC_ISA_AVX2; }

int ac_sd_input_ok(const ac_conv2d_cfg *c) { return c->C % 8 == 0; }

__attribute__((target("avx512f"))) static void sd_forward_row(const ac_conv2d_cfg *c, float *yn,
                                                               const float *xn, const float *w,
                                                               const float *b, int64_t oh) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OP = c->OH * c->OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3;
  for (int64_t o0 = 0; o0 < c->O; o0 += 8) {
    for (int64_t w0 = 0; w0 < OW; w0 += 16) {
      __mmask16 m = ac_lanes16(OW - w0);
      __m512 acc[8];
      for (int r = 0; r < 8; r++) acc[r] = _mm512_set1_ps(b ? b[o0 + r] : 0.0f);
      for (int64_t ci = 0; ci < C; ci++)
        for (int64_t i = 0; i < kh; i++) {
          const float *xr = xn + (ci * H + oh + i) * W + w0;
          const float *wp = w + o0 * KK + (ci * kh + i) * 3;
          __m512 x0 = _mm512_maskz_loadu_ps(m, xr);
          __m512 x1 = _mm512_maskz_loadu_ps(m, xr + 1);
          __m512 x2 = _mm512_maskz_loadu_ps(m, xr + 2);
          for (int r = 0; r < 8; r++) {
            const float *wr = wp + r * KK;
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wr[0]), x0, acc[r]);
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wr[1]), x1, acc[r]);
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wr[2]), x2, acc[r]);
          }
        }
      for (int r = 0; r < 8; r++) _mm512_mask_storeu_ps(yn + (o0 + r) * OP + oh * OW + w0, m, acc[r]);
    }
  }
}

/* The 24 accumulators stay in registers (fully unrolled, fixed indices);
 * a row's tail vector is handled after the full ones, so the full vectors
 * need no mask. */
#define SD_PARAMS_STEP(M, OFF)                                                                \
  do {                                                                                        \
    __m512 x0 = _mm512_maskz_loadu_ps(M, xr + (OFF));                                         \
    __m512 x1 = _mm512_maskz_loadu_ps(M, xr + (OFF) + 1);                                     \
    __m512 x2 = _mm512_maskz_loadu_ps(M, xr + (OFF) + 2);                                     \
    _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {                                     \
      __m512 g = _mm512_maskz_loadu_ps(M, gr + r * OP + (OFF));                               \
      a0[r] = _mm512_fmadd_ps(g, x0, a0[r]);                                                  \
      a1[r] = _mm512_fmadd_ps(g, x1, a1[r]);                                                  \
      a2[r] = _mm512_fmadd_ps(g, x2, a2[r]);                                                  \
    }                                                                                         \
  } while (0)

__attribute__((target("avx512f"))) static void sd_params_sample(const ac_conv2d_cfg *c,
                                                                 float *part, const float *xn,
                                                                 const float *gyn) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OH = c->OH, OP = OH * OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3, full = OW / 16 * 16;
  const __mmask16 mt = ac_lanes16(OW - full);
  for (int64_t o0 = 0; o0 < c->O; o0 += 8)
    for (int64_t ci = 0; ci < C; ci++)
      for (int64_t i = 0; i < kh; i++) {
        __m512 a0[8], a1[8], a2[8];
        _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) a0[r] = a1[r] = a2[r] = _mm512_setzero_ps();
        for (int64_t oh = 0; oh < OH; oh++) {
          const float *xr = xn + (ci * H + oh + i) * W;
          const float *gr = gyn + o0 * OP + oh * OW;
          for (int64_t w0 = 0; w0 < full; w0 += 16) SD_PARAMS_STEP((__mmask16)0xFFFF, w0);
          if (mt) SD_PARAMS_STEP(mt, full);
        }
        _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {
          float *pr = part + (o0 + r) * KK + (ci * kh + i) * 3;
          pr[0] += _mm512_reduce_add_ps(a0[r]);
          pr[1] += _mm512_reduce_add_ps(a1[r]);
          pr[2] += _mm512_reduce_add_ps(a2[r]);
        }
      }
}
#undef SD_PARAMS_STEP

/* gx[c][h][w] = sum_{o,i,j} gy[o][h-i][w-j] w[o][c][i][j] over valid (h-i, w-j);
 * one input row h of one sample, input channels in blocks of 8 (C % 8 == 0). */
__attribute__((target("avx512f"))) static void sd_backward_input_row(const ac_conv2d_cfg *c,
                                                                      float *gxn,
                                                                      const float *gyn,
                                                                      const float *w, int64_t h) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OH = c->OH, OP = OH * OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3;
  for (int64_t c0 = 0; c0 < C; c0 += 8)
    for (int64_t w0 = 0; w0 < W; w0 += 16) {
      __mmask16 mw = ac_lanes16(W - w0);
      __m512 acc[8];
      for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
      for (int64_t i = 0; i < kh; i++) {
        int64_t oh = h - i;
        if (oh < 0 || oh >= OH) continue;
        for (int64_t j = 0; j < 3; j++) {
          /* lane l reads gy column w0 + l - j, valid when it lies in [0, OW) */
          int64_t lo = j - w0 > 0 ? j - w0 : 0, hi = OW + j - w0; /* lanes [lo, hi) */
          __mmask16 m = (__mmask16)(mw & ac_lanes16(hi) & ~ac_lanes16(lo));
          for (int64_t o = 0; o < c->O; o++) {
            const float *gr = gyn + o * OP + oh * OW;
            __m512 g = lo > 0 ? _mm512_maskz_expandloadu_ps(m, gr)
                              : _mm512_maskz_loadu_ps(m, gr + w0 - j);
            const float *wp = w + o * KK + (c0 * kh + i) * 3 + j;
            for (int r = 0; r < 8; r++)
              acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wp[r * kh * 3]), g, acc[r]);
          }
        }
      }
      for (int r = 0; r < 8; r++) _mm512_mask_storeu_ps(gxn + ((c0 + r) * H + h) * W + w0, mw, acc[r]);
    }
}

static void sd_backward_input_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  sd_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  void (*row)(const ac_conv2d_cfg *, float *, const float *, const float *, int64_t) =
      ac_cpu_use_avx512() ? sd_backward_input_row : ac_sd_backward_input_row_avx2;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->H, h = q % c->H;
    row(c, t->gx + n * c->C * c->H * c->W, t->gy + n * c->O * c->OH * c->OW, t->w, h);
  }
}

static void sd_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  sd_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  void (*row)(const ac_conv2d_cfg *, float *, const float *, const float *, const float *,
              int64_t) = ac_cpu_use_avx512() ? sd_forward_row : ac_sd_forward_row_avx2;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->OH, oh = q % c->OH;
    row(c, t->y + n * c->O * c->OH * c->OW, t->x + n * c->C * c->H * c->W, t->w, t->b, oh);
  }
}

static void sd_params_task(void *vctx, int64_t begin, int64_t end, int tid) {
  sd_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  void (*sample)(const ac_conv2d_cfg *, float *, const float *, const float *) =
      ac_cpu_use_avx512() ? sd_params_sample : ac_sd_params_sample_avx2;
  for (int64_t n = begin; n < end; n++)
    sample(c, t->parts + tid * t->partsz, t->x + n * c->C * c->H * c->W,
           t->gy + n * c->O * c->OH * c->OW);
}

int64_t ac_sd_workspace(const ac_conv2d_cfg *c) {
  return ac_get_num_threads() * c->O * c->C * c->kh * c->kw;
}

void ac_sd_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                   const float *b) {
  sd_ctx t = {c, x, w, b, NULL, y, NULL, NULL, 0};
  ac_parallel_for(c->N * c->OH, ac_conv_grain(c->O * c->C * c->kh * c->kw * c->OW),
                  sd_forward_task, &t);
}

void ac_sd_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w) {
  sd_ctx t = {c, NULL, w, NULL, gy, NULL, gx, NULL, 0};
  ac_parallel_for(c->N * c->H, ac_conv_grain(c->O * c->C * c->kh * c->kw * c->W),
                  sd_backward_input_task, &t);
}

void ac_sd_backward_params(const ac_conv2d_cfg *c, float *gw, const float *x, const float *gy,
                           float scale, float *ws) {
  int64_t nt = ac_get_num_threads(), OK = c->O * c->C * c->kh * c->kw;
  float *parts = ws;
  memset(parts, 0, sizeof(float) * (size_t)(nt * OK));
  sd_ctx t = {c, x, NULL, NULL, gy, NULL, NULL, parts, OK};
  ac_parallel_for(c->N, 1, sd_params_task, &t);
  for (int64_t e = 0; e < OK; e++) {
    float s = 0.0f;
    for (int64_t th = 0; th < nt; th++) s += parts[th * OK + e];
    gw[e] += scale * s;
  }
}
