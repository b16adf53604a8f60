/*
 * conv_small_avx2.c - the AVX2 + FMA path of conv_small.c (small dense
 * convolutions: stride 1, no padding, kw == 3, output channels a multiple
 * of 8 up to 32), for CPUs without AVX-512; conv_small.c dispatches.
 *
 * 16 ymm registers instead of 32 zmm: the forward keeps 8 output channels x
 * 8 columns (8 accumulators), the weight gradient 4 output channels x 3 taps
 * (12 accumulators, the three shifted input vectors and the gradient vector
 * fill the rest), the input gradient 8 input channels x 8 columns. Rows are
 * cut into 8-column blocks; where a row is at least 8 wide its ragged end
 * runs as one more full block ending at the row's end (it overlaps the one
 * before and writes the same values again: the forward and the input
 * gradient overwrite), so only rows narrower than 8 need masked stores.
 * The weight gradient reads ragged ends with masked loads instead (it sums).
 */
#include <immintrin.h>
#include "cpu/conv_kernels.h"
#include "cpu/simd.h"

#define AVX2 __attribute__((target("avx2,fma")))

/* The 8-column block at w0 of output row oh, channels o0..o0+7:
 * y = b + sum_{ci,i,j} w[o][ci][i][j] x[ci][oh+i][w0+j+l]; m: the lanes
 * to compute (NULL: all 8, no mask needed). */
static inline AVX2 __attribute__((always_inline)) void sd_fwd_block(
    const ac_conv2d_cfg *c, float *yn, const float *xn, const float *w, const float *b,
    int64_t oh, int64_t o0, int64_t w0, const __m256i *m) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OP = c->OH * c->OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3;
  __m256 acc[8];
  _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) acc[r] = _mm256_set1_ps(b ? b[o0 + r] : 0.0f);
  for (int64_t ci = 0; ci < C; ci++)
    for (int64_t i = 0; i < kh; i++) {
      const float *xr = xn + (ci * H + oh + i) * W + w0;
      const float *wp = w + o0 * KK + (ci * kh + i) * 3;
      __m256 x0, x1, x2;
      if (m) {
        x0 = _mm256_maskload_ps(xr, *m);
        x1 = _mm256_maskload_ps(xr + 1, *m);
        x2 = _mm256_maskload_ps(xr + 2, *m);
      } else {
        x0 = _mm256_loadu_ps(xr);
        x1 = _mm256_loadu_ps(xr + 1);
        x2 = _mm256_loadu_ps(xr + 2);
      }
      _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {
        const float *wr = wp + r * KK;
        acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(wr), x0, acc[r]);
        acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + 1), x1, acc[r]);
        acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + 2), x2, acc[r]);
      }
    }
  _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {
    float *yr = yn + (o0 + r) * OP + oh * OW + w0;
    if (m) _mm256_maskstore_ps(yr, *m, acc[r]);
    else _mm256_storeu_ps(yr, acc[r]);
  }
}

AVX2 void ac_sd_forward_row_avx2(const ac_conv2d_cfg *c, float *yn, const float *xn,
                                 const float *w, const float *b, int64_t oh) {
  const int64_t OW = c->OW;
  for (int64_t o0 = 0; o0 < c->O; o0 += 8) {
    if (OW < 8) {
      __m256i m = ac_lanes8(OW);
      sd_fwd_block(c, yn, xn, w, b, oh, o0, 0, &m);
      continue;
    }
    for (int64_t w0 = 0; w0 + 8 <= OW; w0 += 8) sd_fwd_block(c, yn, xn, w, b, oh, o0, w0, NULL);
    if (OW % 8) sd_fwd_block(c, yn, xn, w, b, oh, o0, OW - 8, NULL);
  }
}

/* One 8-column step of the weight gradient for 4 output channels: a_j[r] +=
 * gy[o0+r][oh][w0+l] * x[ci][oh+i][w0+j+l], with every load masked to m
 * (MASKED) or none. */
#define SD2_PARAMS_STEP(MASKED, M, OFF)                                                       \
  do {                                                                                        \
    __m256 x0, x1, x2;                                                                        \
    if (MASKED) {                                                                             \
      x0 = _mm256_maskload_ps(xr + (OFF), M);                                                 \
      x1 = _mm256_maskload_ps(xr + (OFF) + 1, M);                                             \
      x2 = _mm256_maskload_ps(xr + (OFF) + 2, M);                                             \
    } else {                                                                                  \
      x0 = _mm256_loadu_ps(xr + (OFF));                                                       \
      x1 = _mm256_loadu_ps(xr + (OFF) + 1);                                                   \
      x2 = _mm256_loadu_ps(xr + (OFF) + 2);                                                   \
    }                                                                                         \
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                     \
      __m256 g = MASKED ? _mm256_maskload_ps(gr + r * OP + (OFF), M)                          \
                        : _mm256_loadu_ps(gr + r * OP + (OFF));                               \
      a0[r] = _mm256_fmadd_ps(g, x0, a0[r]);                                                  \
      a1[r] = _mm256_fmadd_ps(g, x1, a1[r]);                                                  \
      a2[r] = _mm256_fmadd_ps(g, x2, a2[r]);                                                  \
    }                                                                                         \
  } while (0)

/* part[o][ci][i][j] += sum_{oh,ow} gy[o][oh][ow] x[ci][oh+i][ow+j] for one sample. */
AVX2 void ac_sd_params_sample_avx2(const ac_conv2d_cfg *c, float *part, const float *xn,
                                   const float *gyn) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OH = c->OH, OP = OH * OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3, full = OW / 8 * 8;
  const __m256i mt = ac_lanes8(OW - full);
  for (int64_t o0 = 0; o0 < c->O; o0 += 4)
    for (int64_t ci = 0; ci < C; ci++)
      for (int64_t i = 0; i < kh; i++) {
        __m256 a0[4], a1[4], a2[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) a0[r] = a1[r] = a2[r] = _mm256_setzero_ps();
        for (int64_t oh = 0; oh < OH; oh++) {
          const float *xr = xn + (ci * H + oh + i) * W;
          const float *gr = gyn + o0 * OP + oh * OW;
          for (int64_t w0 = 0; w0 < full; w0 += 8) SD2_PARAMS_STEP(0, mt, w0);
          if (full < OW) SD2_PARAMS_STEP(1, mt, full);
        }
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {
          float *pr = part + (o0 + r) * KK + (ci * kh + i) * 3;
          pr[0] += ac_hsum8(a0[r]);
          pr[1] += ac_hsum8(a1[r]);
          pr[2] += ac_hsum8(a2[r]);
        }
      }
}
#undef SD2_PARAMS_STEP

/* Lane l of the result: gy row gr at column w0 + l - j where that lies in
 * [0, OW), else 0. */
static inline AVX2 __m256 sd_gy_shifted(const float *gr, int64_t w0, int64_t j, int64_t OW) {
  int64_t s = w0 - j; /* column of lane 0 */
  if (s >= 0) {
    if (OW - s >= 8) return _mm256_loadu_ps(gr + s);
    return _mm256_maskload_ps(gr + s, ac_lanes8(OW - s));
  }
  /* s < 0 (only w0 == 0): lanes [-s, 8) read columns 0, 1, ...; a masked
   * load from gr + s touches only those */
  __m256i m = _mm256_andnot_si256(ac_lanes8(-s), ac_lanes8(OW - s));
  return _mm256_maskload_ps(gr + s, m);
}

/* The 8-column block at w0 of input row h, input channels c0..c0+7:
 * gx[c][h][w] = sum_{o,i,j} gy[o][h-i][w-j] w[o][c][i][j] over valid (h-i, w-j). */
static inline AVX2 __attribute__((always_inline)) void sd_bwd_block(
    const ac_conv2d_cfg *c, float *gxn, const float *gyn, const float *w, int64_t h, int64_t c0,
    int64_t w0, const __m256i *m) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OH = c->OH, OP = OH * OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3;
  __m256 acc[8];
  _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < kh; i++) {
    int64_t oh = h - i;
    if (oh < 0 || oh >= OH) continue;
    for (int64_t j = 0; j < 3; j++)
      for (int64_t o = 0; o < c->O; o++) {
        __m256 g = sd_gy_shifted(gyn + o * OP + oh * OW, w0, j, OW);
        const float *wp = w + o * KK + (c0 * kh + i) * 3 + j;
        _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++)
          acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + r * kh * 3), g, acc[r]);
      }
  }
  _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {
    float *gr = gxn + ((c0 + r) * H + h) * W + w0;
    if (m) _mm256_maskstore_ps(gr, *m, acc[r]);
    else _mm256_storeu_ps(gr, acc[r]);
  }
}

/* One input row h of one sample, input channels in blocks of 8 (C % 8 == 0). */
AVX2 void ac_sd_backward_input_row_avx2(const ac_conv2d_cfg *c, float *gxn, const float *gyn,
                                        const float *w, int64_t h) {
  const int64_t W = c->W;
  for (int64_t c0 = 0; c0 < c->C; c0 += 8) {
    if (W < 8) {
      __m256i m = ac_lanes8(W);
      sd_bwd_block(c, gxn, gyn, w, h, c0, 0, &m);
      continue;
    }
    for (int64_t w0 = 0; w0 + 8 <= W; w0 += 8) sd_bwd_block(c, gxn, gyn, w, h, c0, w0, NULL);
    if (W % 8) sd_bwd_block(c, gxn, gyn, w, h, c0, W - 8, NULL);
  }
}
