/*
 * conv_dw3.c - depthwise 3x3 convolution, stride 1, padding 1 on every side
 * (Keras "same"), groups == C == O: the separable convolutions of the
 * Xception family. Direct loops over whole planes, no scratch; AVX-512
 * vector rows with masked edges (planes narrower than 32 as one flat array
 * of positions), the AVX2 kernels of conv_dw3_avx2.c, else portable loops. The input gradient is the same
 * correlation with the flipped filter over gy; the weight gradient sums
 * gy * shifted x per tap (float within a plane, double across planes).
 */
#include <immintrin.h>
#include "cpu/conv_kernels.h"
#include "cpu/cpu.h"
#include "cpu/simd.h"
#include "core/parallel.h"

int ac_dw3_matches(const ac_conv2d_cfg *c) {
  return c->groups == c->C && c->O == c->C && c->kh == 3 && c->kw == 3 && c->sh == 1 &&
         c->sw == 1 && c->pt == 1 && c->pl == 1 && c->pb == 1 && c->pr == 1;
}

/* y = bias + sum_{i,j} w[i][j] x[h+i-1][w+j-1] over one H x W plane. */
static void dw3_plane_generic(float *y, const float *x, int64_t H, int64_t W, const float *w,
                              float bias) {
  for (int64_t h = 0; h < H; h++) {
    float *yr = y + h * W;
    for (int64_t q = 0; q < W; q++) yr[q] = bias;
    for (int64_t i = 0; i < 3; i++) {
      int64_t hh = h + i - 1;
      if (hh < 0 || hh >= H) continue;
      const float *xr = x + hh * W;
      float w0 = w[3 * i], w1 = w[3 * i + 1], w2 = w[3 * i + 2];
      for (int64_t q = 0; q < W; q++) yr[q] += w1 * xr[q];
      for (int64_t q = 1; q < W; q++) yr[q] += w0 * xr[q - 1];
      for (int64_t q = 0; q + 1 < W; q++) yr[q] += w2 * xr[q + 1];
    }
  }
}

/* Columns w0 - 1, w0, w0 + 1 of the 16 positions from w0 of one row r
 * (mc: the positions inside the row, mr: those with a right neighbour);
 * the left neighbour of column 0 and the right one of the last are 0. */
__attribute__((target("avx512f"))) static inline void dw3_row_taps(const float *r, int64_t w0,
                                                                    __mmask16 mc, __mmask16 mr,
                                                                    __m512 *vl, __m512 *vc,
                                                                    __m512 *vr) {
  *vc = _mm512_maskz_loadu_ps(mc, r + w0);
  *vl = w0 == 0 ? _mm512_maskz_expandloadu_ps((__mmask16)(mc & 0xFFFE), r)
                : _mm512_maskz_loadu_ps(mc, r + w0 - 1);
  *vr = _mm512_maskz_loadu_ps(mr, r + w0 + 1);
}

__attribute__((target("avx512f"))) static void dw3_plane_avx512(float *y, const float *x,
                                                                 int64_t H, int64_t W,
                                                                 const float *w, float bias) {
  __m512 wv[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[t]);
  __m512 vb = _mm512_set1_ps(bias);
  for (int64_t h = 0; h < H; h++) {
    for (int64_t w0 = 0; w0 < W; w0 += 16) {
      int64_t n = W - w0;
      __mmask16 mc = ac_lanes16(n), mr = ac_lanes16(n - 1);
      __m512 acc = vb;
      _Pragma("GCC unroll 3") for (int i = 0; i < 3; i++) {
        int64_t hh = h + i - 1;
        if (hh < 0 || hh >= H) continue;
        __m512 vl, vc, vr;
        dw3_row_taps(x + hh * W, w0, mc, mr, &vl, &vc, &vr);
        acc = _mm512_fmadd_ps(wv[3 * i], vl, acc);
        acc = _mm512_fmadd_ps(wv[3 * i + 1], vc, acc);
        acc = _mm512_fmadd_ps(wv[3 * i + 2], vr, acc);
      }
      _mm512_mask_storeu_ps(y + h * W + w0, mc, acc);
    }
  }
}

/* out[i*3+j] += sum_{h,w} gy[h][w] x[h+i-1][w+j-1] over one plane. */
static void dw3_params_plane_generic(double *out, const float *x, const float *gy, int64_t H,
                                     int64_t W) {
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 3; j++) {
      float s = 0.0f;
      int64_t lo = j == 0 ? 1 : 0, hi = j == 2 ? W - 1 : W;
      for (int64_t h = 0; h < H; h++) {
        int64_t hh = h + i - 1;
        if (hh < 0 || hh >= H) continue;
        const float *xr = x + hh * W + j - 1, *gr = gy + h * W;
        for (int64_t q = lo; q < hi; q++) s += gr[q] * xr[q];
      }
      out[i * 3 + j] += s;
    }
}

__attribute__((target("avx512f"))) static void dw3_params_plane_avx512(double *out,
                                                                        const float *x,
                                                                        const float *gy,
                                                                        int64_t H, int64_t W) {
  __m512 acc[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) acc[t] = _mm512_setzero_ps();
  for (int64_t h = 0; h < H; h++) {
    for (int64_t w0 = 0; w0 < W; w0 += 16) {
      int64_t n = W - w0;
      __mmask16 mc = ac_lanes16(n), mr = ac_lanes16(n - 1);
      __m512 g = _mm512_maskz_loadu_ps(mc, gy + h * W + w0);
      _Pragma("GCC unroll 3") for (int i = 0; i < 3; i++) {
        int64_t hh = h + i - 1;
        if (hh < 0 || hh >= H) continue;
        __m512 vl, vc, vr;
        dw3_row_taps(x + hh * W, w0, mc, mr, &vl, &vc, &vr);
        acc[3 * i] = _mm512_fmadd_ps(g, vl, acc[3 * i]);
        acc[3 * i + 1] = _mm512_fmadd_ps(g, vc, acc[3 * i + 1]);
        acc[3 * i + 2] = _mm512_fmadd_ps(g, vr, acc[3 * i + 2]);
      }
    }
  }
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) out[t] += _mm512_reduce_add_ps(acc[t]);
}

/* Planes narrower than DW3_FLAT_W run as one flat array of H * W positions,
 * 16 consecutive positions per vector whatever the row length (a 19-wide
 * row would otherwise fill 19 of 32 lanes, a 6-wide one 6 of 16): each tap
 * is a masked load at a fixed offset (-W-1 .. W+1), the lanes whose
 * neighbour lies in another row or outside the plane masked off. The
 * column of each lane is carried in an integer vector. */
#define DW3_FLAT_W 32

typedef struct {
  __mmask16 m[9]; /* tap (i, j) valid, for the 16 positions from p */
} dw3_masks;

__attribute__((target("avx512f"))) static inline void dw3_flat_masks(dw3_masks *k, __m512i col,
                                                                      int64_t p, int64_t H,
                                                                      int64_t W) {
  int64_t HW = H * W;
  __mmask16 m = ac_lanes16(HW - p);
  __mmask16 ml = m & _mm512_cmpneq_epi32_mask(col, _mm512_setzero_si512());
  __mmask16 mr = m & _mm512_cmpneq_epi32_mask(col, _mm512_set1_epi32((int)(W - 1)));
  __mmask16 mu = (__mmask16)(m & ~ac_lanes16(W - p)); /* p + l >= W: a row above */
  __mmask16 md = (__mmask16)(m & ac_lanes16(HW - W - p)); /* p + l + W < HW: a row below */
  k->m[0] = mu & ml, k->m[1] = mu, k->m[2] = mu & mr;
  k->m[3] = ml, k->m[4] = m, k->m[5] = mr;
  k->m[6] = md & ml, k->m[7] = md, k->m[8] = md & mr;
}

/* col + 16 modulo W (lanes hold columns in [0, W)). */
__attribute__((target("avx512f"))) static inline __m512i dw3_next_col(__m512i col, int64_t W) {
  __m512i vw = _mm512_set1_epi32((int)W);
  col = _mm512_add_epi32(col, _mm512_set1_epi32(16));
  for (;;) {
    __mmask16 ge = _mm512_cmpge_epi32_mask(col, vw);
    if (!ge) return col;
    col = _mm512_mask_sub_epi32(col, ge, col, vw);
  }
}

/* off[t]: the offset of tap t = 3 i + j from a position (-W-1 .. W+1); the
 * result: the columns of positions 0..15 (lanes of the first vector). */
__attribute__((target("avx512f"))) static inline __m512i dw3_flat_start(int64_t off[9],
                                                                         int64_t W) {
  for (int t = 0; t < 9; t++) off[t] = (t / 3 - 1) * W + (t % 3 - 1);
  return dw3_next_col(
      _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(16)),
      W);
}

__attribute__((target("avx512f"))) static void dw3_flat_avx512(float *y, const float *x,
                                                                int64_t H, int64_t W,
                                                                const float *w, float bias) {
  int64_t HW = H * W, off[9];
  __m512 wv[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[t]);
  __m512 vb = _mm512_set1_ps(bias);
  __m512i col = dw3_flat_start(off, W);
  for (int64_t p = 0; p < HW; p += 16) {
    dw3_masks k;
    dw3_flat_masks(&k, col, p, H, W);
    __m512 acc = vb;
    _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++)
      acc = _mm512_fmadd_ps(wv[t], _mm512_maskz_loadu_ps(k.m[t], x + p + off[t]), acc);
    _mm512_mask_storeu_ps(y + p, k.m[4], acc);
    col = dw3_next_col(col, W);
  }
}

__attribute__((target("avx512f"))) static void dw3_params_flat_avx512(double *out,
                                                                       const float *x,
                                                                       const float *gy,
                                                                       int64_t H, int64_t W) {
  int64_t HW = H * W, off[9];
  __m512 acc[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) acc[t] = _mm512_setzero_ps();
  __m512i col = dw3_flat_start(off, W);
  for (int64_t p = 0; p < HW; p += 16) {
    dw3_masks k;
    dw3_flat_masks(&k, col, p, H, W);
    __m512 g = _mm512_maskz_loadu_ps(k.m[4], gy + p);
    _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++)
      acc[t] = _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(k.m[t], x + p + off[t]), acc[t]);
    col = dw3_next_col(col, W);
  }
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) out[t] += _mm512_reduce_add_ps(acc[t]);
}

typedef void (*dw3_plane_fn)(float *, const float *, int64_t, int64_t, const float *, float);
typedef void (*dw3_params_fn)(double *, const float *, const float *, int64_t, int64_t);

/* The plane kernels of the current dispatch level for planes W wide. */
static dw3_plane_fn dw3_plane_for(int64_t W) {
  ac_isa isa = ac_cpu_isa();
  if (isa >= AC_ISA_AVX512) return W < DW3_FLAT_W ? dw3_flat_avx512 : dw3_plane_avx512;
  if (isa == AC_ISA_AVX2) return W < AC_DW3_FLAT_W2 ? ac_dw3_flat_avx2 : ac_dw3_plane_avx2;
  return dw3_plane_generic;
}

static dw3_params_fn dw3_params_for(int64_t W) {
  ac_isa isa = ac_cpu_isa();
  if (isa >= AC_ISA_AVX512) return W < DW3_FLAT_W ? dw3_params_flat_avx512 : dw3_params_plane_avx512;
  if (isa == AC_ISA_AVX2) return W < AC_DW3_FLAT_W2 ? ac_dw3_params_flat_avx2 : ac_dw3_params_plane_avx2;
  return dw3_params_plane_generic;
}

typedef struct {
  const ac_conv2d_cfg *c;
  float *out, *gw, *gb;
  const float *in, *x, *w, *b;
  float scale;
  int flip;
} dw3_ctx;

static void dw3_planes_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  dw3_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t HW = c->H * c->W;
  dw3_plane_fn plane = dw3_plane_for(c->W);
  for (int64_t q = begin; q < end; q++) {
    int64_t ch = q % c->C;
    float wk[9];
    for (int k = 0; k < 9; k++) wk[k] = t->w[ch * 9 + (t->flip ? 8 - k : k)];
    plane(t->out + q * HW, t->in + q * HW, c->H, c->W, wk, t->b ? t->b[ch] : 0.0f);
  }
}

/* Channels [begin, end) in blocks of 64; within a block samples outer and
 * channels inner, so each sample's planes of the block are one contiguous
 * span (streamed, not one plane per megabyte). With t->out set, each
 * plane's input gradient is computed first, while its gy plane is in cache. */
#define DW3_CBLOCK 64
static void dw3_params_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  dw3_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t HW = c->H * c->W;
  dw3_plane_fn plane = dw3_plane_for(c->W);
  dw3_params_fn params = dw3_params_for(c->W);
  for (int64_t c0 = begin; c0 < end; c0 += DW3_CBLOCK) {
    int64_t c1 = end - c0 < DW3_CBLOCK ? end : c0 + DW3_CBLOCK;
    double acc[DW3_CBLOCK][9], bacc[DW3_CBLOCK];
    float wk[DW3_CBLOCK][9];
    for (int64_t ch = c0; ch < c1; ch++) {
      for (int k = 0; k < 9; k++) acc[ch - c0][k] = 0.0;
      bacc[ch - c0] = 0.0;
      if (t->out) /* the input gradient too: the flipped filter over gy */
        for (int k = 0; k < 9; k++) wk[ch - c0][k] = t->w[ch * 9 + 8 - k];
    }
    for (int64_t n = 0; n < c->N; n++)
      for (int64_t ch = c0; ch < c1; ch++) {
        const float *xp = t->x + (n * c->C + ch) * HW, *gp = t->in + (n * c->C + ch) * HW;
        if (t->out) plane(t->out + (n * c->C + ch) * HW, gp, c->H, c->W, wk[ch - c0], 0.0f);
        params(acc[ch - c0], xp, gp, c->H, c->W);
        if (t->gb) {
          float s = 0.0f;
          for (int64_t p = 0; p < HW; p++) s += gp[p];
          bacc[ch - c0] += s;
        }
      }
    for (int64_t ch = c0; ch < c1; ch++) {
      for (int k = 0; k < 9; k++) t->gw[ch * 9 + k] += t->scale * (float)acc[ch - c0][k];
      if (t->gb) t->gb[ch] += t->scale * (float)bacc[ch - c0];
    }
  }
}

void ac_dw3_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                    const float *b) {
  dw3_ctx t = {c, y, NULL, NULL, x, NULL, w, b, 1.0f, 0};
  ac_parallel_for(c->N * c->C, ac_conv_grain(9 * c->H * c->W), dw3_planes_task, &t);
}

void ac_dw3_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w) {
  dw3_ctx t = {c, gx, NULL, NULL, gy, NULL, w, NULL, 1.0f, 1};
  ac_parallel_for(c->N * c->C, ac_conv_grain(9 * c->H * c->W), dw3_planes_task, &t);
}

void ac_dw3_backward_params(const ac_conv2d_cfg *c, float *gx, float *gw, float *gb,
                            const float *x, const float *gy, const float *w, float scale) {
  dw3_ctx t = {c, gx, gw, gb, gy, x, w, NULL, scale, 1};
  ac_parallel_for(c->C, 1, dw3_params_task, &t);
}
