/*
 * conv_dw3_avx2.c - the AVX2 + FMA path of conv_dw3.c (depthwise 3x3,
 * stride 1, padding 1 on every side), for CPUs without AVX-512;
 * conv_dw3.c dispatches and owns the tasks.
 *
 * Planes at least AC_DW3_FLAT_W2 wide run row by row in 8-column blocks:
 * the left neighbours of column 0 and the right one of the last column come
 * from masked loads (lanes off read nothing, so nothing outside the plane
 * is touched). A ragged row end runs as one more full block ending at the
 * row's end: the forward rewrites the same values there, the weight
 * gradient masks off the lanes the block before already summed. Narrower
 * planes run as one flat array of H * W positions, 8 consecutive positions
 * per vector across rows; each tap is a masked load at a fixed offset
 * (-W-1 .. W+1) whose lanes outside the plane or in the wrong row are off.
 * Per lane the forward adds the taps in the order of the AVX-512 kernels.
 */
#include <immintrin.h>
#include "cpu/conv_kernels.h"
#include "cpu/simd.h"

#define AVX2 __attribute__((target("avx2,fma")))

/* lanes 1..7 on, lane 0 off; lanes 0..6 on, lane 7 off */
#define DW3_NOT_FIRST _mm256_setr_epi32(0, -1, -1, -1, -1, -1, -1, -1)
#define DW3_NOT_LAST _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0)

/* Columns w0 - 1 + l, w0 + l, w0 + 1 + l (l < 8) of row r, W >= 8 and
 * w0 + 8 <= W; a column outside the row reads 0. */
static inline AVX2 __attribute__((always_inline)) void dw3_taps8(const float *r, int64_t w0,
                                                                 int64_t W, __m256 *vl, __m256 *vc,
                                                                 __m256 *vr) {
  *vc = _mm256_loadu_ps(r + w0);
  *vl = w0 == 0 ? _mm256_maskload_ps(r - 1, DW3_NOT_FIRST) : _mm256_loadu_ps(r + w0 - 1);
  *vr = w0 + 8 == W ? _mm256_maskload_ps(r + w0 + 1, DW3_NOT_LAST) : _mm256_loadu_ps(r + w0 + 1);
}

/* Output row h, the 8 columns from w0: bias + sum_{i,j} w[3i+j] x[h+i-1][w0+l+j-1]. */
static inline AVX2 __attribute__((always_inline)) __m256 dw3_block8(const float *x, int64_t H,
                                                                    int64_t W, const __m256 *wv,
                                                                    __m256 vb, int64_t h,
                                                                    int64_t w0) {
  __m256 acc = vb;
  _Pragma("GCC unroll 3") for (int i = 0; i < 3; i++) {
    int64_t hh = h + i - 1;
    if (hh < 0 || hh >= H) continue;
    __m256 vl, vc, vr;
    dw3_taps8(x + hh * W, w0, W, &vl, &vc, &vr);
    acc = _mm256_fmadd_ps(wv[3 * i], vl, acc);
    acc = _mm256_fmadd_ps(wv[3 * i + 1], vc, acc);
    acc = _mm256_fmadd_ps(wv[3 * i + 2], vr, acc);
  }
  return acc;
}

/* y = bias + sum_{i,j} w[i][j] x[h+i-1][w+j-1] over one H x W plane (W >= 8). */
AVX2 void ac_dw3_plane_avx2(float *y, const float *x, int64_t H, int64_t W, const float *w,
                            float bias) {
  __m256 wv[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) wv[t] = _mm256_set1_ps(w[t]);
  __m256 vb = _mm256_set1_ps(bias);
  for (int64_t h = 0; h < H; h++) {
    float *yr = y + h * W;
    for (int64_t w0 = 0; w0 + 8 <= W; w0 += 8)
      _mm256_storeu_ps(yr + w0, dw3_block8(x, H, W, wv, vb, h, w0));
    if (W % 8) _mm256_storeu_ps(yr + W - 8, dw3_block8(x, H, W, wv, vb, h, W - 8));
  }
}

/* The 9 tap sums of the 8 columns from w0 of row h, lanes m of g only. */
static inline AVX2 __attribute__((always_inline)) void dw3_params_block8(
    __m256 *acc, const float *x, __m256 g, int64_t H, int64_t W, int64_t h, int64_t w0) {
  _Pragma("GCC unroll 3") for (int i = 0; i < 3; i++) {
    int64_t hh = h + i - 1;
    if (hh < 0 || hh >= H) continue;
    __m256 vl, vc, vr;
    dw3_taps8(x + hh * W, w0, W, &vl, &vc, &vr);
    acc[3 * i] = _mm256_fmadd_ps(g, vl, acc[3 * i]);
    acc[3 * i + 1] = _mm256_fmadd_ps(g, vc, acc[3 * i + 1]);
    acc[3 * i + 2] = _mm256_fmadd_ps(g, vr, acc[3 * i + 2]);
  }
}

/* out[i*3+j] += sum_{h,w} gy[h][w] x[h+i-1][w+j-1] over one plane (W >= 8). */
AVX2 void ac_dw3_params_plane_avx2(double *out, const float *x, const float *gy, int64_t H,
                                   int64_t W) {
  __m256 acc[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) acc[t] = _mm256_setzero_ps();
  const int64_t full = W / 8 * 8;
  /* the last block starts at W - 8: its lanes below full - (W - 8) were summed */
  const __m256i mt = _mm256_andnot_si256(ac_lanes8(full - (W - 8)), ac_lanes8(8));
  for (int64_t h = 0; h < H; h++) {
    const float *gr = gy + h * W;
    for (int64_t w0 = 0; w0 < full; w0 += 8)
      dw3_params_block8(acc, x, _mm256_loadu_ps(gr + w0), H, W, h, w0);
    if (full < W)
      dw3_params_block8(acc, x, _mm256_maskload_ps(gr + W - 8, mt), H, W, h, W - 8);
  }
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) out[t] += ac_hsum8(acc[t]);
}

/* ---- narrow planes: one flat array of positions -------------------------------- */

/* The lanes of the 8 positions from p (column of lane l: col[l]) for which
 * tap t = 3 i + j lies inside the plane: m[t]. */
static inline AVX2 __attribute__((always_inline)) void dw3_flat_masks8(__m256i m[9], __m256i col,
                                                                       int64_t p, int64_t H,
                                                                       int64_t W) {
  const int64_t HW = H * W;
  __m256i pl = _mm256_add_epi32(_mm256_set1_epi32((int)p), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)HW), pl);           /* p + l < HW */
  __m256i mu = _mm256_and_si256(in, _mm256_cmpgt_epi32(pl, _mm256_set1_epi32((int)W - 1)));
  __m256i md = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(HW - W)), pl);     /* a row below */
  __m256i ml = _mm256_andnot_si256(_mm256_cmpeq_epi32(col, _mm256_setzero_si256()), in);
  __m256i mr = _mm256_andnot_si256(_mm256_cmpeq_epi32(col, _mm256_set1_epi32((int)W - 1)), in);
  m[0] = _mm256_and_si256(mu, ml), m[1] = mu, m[2] = _mm256_and_si256(mu, mr);
  m[3] = ml, m[4] = in, m[5] = mr;
  m[6] = _mm256_and_si256(md, ml), m[7] = md, m[8] = _mm256_and_si256(md, mr);
}

/* col + 8 modulo W (lanes hold columns in [0, W)). */
static inline AVX2 __m256i dw3_next_col8(__m256i col, int64_t W) {
  const __m256i vw = _mm256_set1_epi32((int)W), wm1 = _mm256_set1_epi32((int)W - 1);
  col = _mm256_add_epi32(col, _mm256_set1_epi32(8));
  for (;;) {
    __m256i ge = _mm256_cmpgt_epi32(col, wm1);
    if (_mm256_testz_si256(ge, ge)) return col;
    col = _mm256_sub_epi32(col, _mm256_and_si256(ge, vw));
  }
}

/* off[t]: the offset of tap t from a position; the result: the columns of
 * positions 0..7. */
static inline AVX2 __m256i dw3_flat_start8(int64_t off[9], int64_t W) {
  for (int t = 0; t < 9; t++) off[t] = (t / 3 - 1) * W + (t % 3 - 1);
  return dw3_next_col8(_mm256_setr_epi32(-8, -7, -6, -5, -4, -3, -2, -1), W);
}

AVX2 void ac_dw3_flat_avx2(float *y, const float *x, int64_t H, int64_t W, const float *w,
                           float bias) {
  int64_t HW = H * W, off[9];
  __m256 wv[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) wv[t] = _mm256_set1_ps(w[t]);
  __m256 vb = _mm256_set1_ps(bias);
  __m256i col = dw3_flat_start8(off, W);
  for (int64_t p = 0; p < HW; p += 8) {
    __m256i m[9];
    dw3_flat_masks8(m, col, p, H, W);
    __m256 acc = vb;
    _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++)
      acc = _mm256_fmadd_ps(wv[t], _mm256_maskload_ps(x + p + off[t], m[t]), acc);
    if (p + 8 <= HW) _mm256_storeu_ps(y + p, acc);
    else _mm256_maskstore_ps(y + p, m[4], acc);
    col = dw3_next_col8(col, W);
  }
}

AVX2 void ac_dw3_params_flat_avx2(double *out, const float *x, const float *gy, int64_t H,
                                  int64_t W) {
  int64_t HW = H * W, off[9];
  __m256 acc[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) acc[t] = _mm256_setzero_ps();
  __m256i col = dw3_flat_start8(off, W);
  for (int64_t p = 0; p < HW; p += 8) {
    __m256i m[9];
    dw3_flat_masks8(m, col, p, H, W);
    __m256 g = _mm256_maskload_ps(gy + p, m[4]);
    _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++)
      acc[t] = _mm256_fmadd_ps(g, _mm256_maskload_ps(x + p + off[t], m[t]), acc[t]);
    col = dw3_next_col8(col, W);
  }
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) out[t] += ac_hsum8(acc[t]);
}
