/*
 * pool_fast.c - vectorised max pooling for 3x3 windows with stride 2 (the
 * Xception family's "same" max-pool), picked at run time by ac_cpu_isa();
 * nn_pool.c calls it and keeps its portable loops for everything else.
 *
 * AVX-512, 16 outputs at a time: the 33 input columns their windows cover
 * in one row are loaded into three registers (masked loads filling -inf
 * outside the row, an expand-load for left padding, so nothing outside the
 * row is read), and the three taps come out with one lane permutation each
 * (even / odd / even+2 columns).
 * AVX2, 8 outputs at a time: the 18 columns from the first window column on
 * are read straight from the row when they lie inside it, else from a small
 * copy of the row with -inf outside it; the taps are the even and odd
 * columns (a shuffle and a 64-bit lane permutation) and the even columns
 * from two further on.
 * Within a row the taps are visited left to right and a tap replaces the
 * running maximum when it is larger or NaN; the rows' results are combined
 * top to bottom by the same rule. That is the portable kernel's row-major
 * fold (the last NaN, else the first maximum), so values and argmax indices
 * are identical. Each input row is folded once per vector of outputs: the
 * row two windows share (stride 2, height 3) is not folded twice. Without
 * indices (evaluation) the planes run a copy of the kernel with the index
 * arithmetic compiled out.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "cpu/pool_fast.h"
#include "cpu/cpu.h"
#include "cpu/simd.h"
#include "core/parallel.h"


int ac_poolfast_max_supports(const ac_pool2d_cfg *c) {
  return ac_cpu_isa() >= AC_ISA_AVX2 && c->kh == 3 && c->kw == 3 && c->sh == 2 && c->sw == 2 &&
         c->pl <= 2 && c->H * c->W < ((int64_t)1 << 30);
}


#define AVX512 __attribute__((target("avx512f")))

/* The three taps of one input row for 16 outputs (window columns ws0 + 2l
 * .. ws0 + 2l + 2 of lane l) folded left to right: *bv the maximum, *bi its
 * flat index (row offset + column); a lane whose taps are all -inf or
 * padding keeps its first valid column. */
static inline __attribute__((always_inline)) AVX512 void mp_row(const float *xr, int64_t W, int64_t ws0, __m512i col,
                                 int64_t rowoff, __m512 *bv, __m512i *bi) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i ev2 = _mm512_setr_epi32(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0);
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 v3[3]; /* window columns ws0 + o .. ws0 + o + 15, -inf outside the row */
  for (int o = 0; o < 3; o++) {
    int64_t cc = ws0 + 16 * o;
    __mmask16 mv = (__mmask16)(ac_lanes16(W - cc) & ~ac_lanes16(-cc));
    if (!mv)
      v3[o] = ninf;
    else if (cc >= 0)
      v3[o] = _mm512_mask_loadu_ps(ninf, mv, xr + cc);
    else /* left padding: lanes from -cc on hold columns 0, 1, ... */
      v3[o] = _mm512_mask_expandloadu_ps(ninf, mv, xr);
  }
  __m512 t0 = _mm512_permutex2var_ps(v3[0], ev, v3[1]);
  __m512 t1 = _mm512_permutex2var_ps(v3[0], od, v3[1]);
  /* column 2l + 2: lanes 0..14 from (v0, v1), lane 15 is v2's first */
  __m512 t2 = _mm512_permutex2var_ps(v3[0], ev2, v3[1]);
  t2 = _mm512_mask_permutexvar_ps(t2, (__mmask16)0x8000, _mm512_setzero_si512(), v3[2]);
  __m512i base = _mm512_add_epi32(_mm512_set1_epi32((int)rowoff), col);
  __m512 best = ninf;
  __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)rowoff),
                                 _mm512_max_epi32(col, _mm512_setzero_si512()));
  __m512 taps[3] = {t0, t1, t2};
  for (int j = 0; j < 3; j++) {
    __m512 v = taps[j];
    /* padding taps are -inf: never larger, never NaN */
    __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    best = _mm512_mask_mov_ps(best, take, v);
    idx = _mm512_mask_mov_epi32(idx, take, _mm512_add_epi32(base, _mm512_set1_epi32(j)));
  }
  *bv = best;
  *bi = idx;
}

/* One plane. The window's rows are folded top to bottom with the same rule
 * as its taps (a row's result replaces the running one when it is larger or
 * NaN), which gives the row-major fold's value and index; the row a window
 * shares with the next one (stride 2, height 3) is folded once, and the
 * rows of a window are independent chains. */
static inline __attribute__((always_inline)) AVX512 void mp_plane_t(const ac_pool2d_cfg *c, float *y,
                                                                     int64_t *idx, const float *x,
                                                                     const int want) {
  const int64_t H = c->H, W = c->W, OH = c->OH, OW = c->OW, pt = c->pt, pl = c->pl;
  const __m512i two = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    __mmask16 mo = ac_lanes16(OW - ow0);
    int64_t ws0 = ow0 * 2 - pl; /* first window column of lane 0 */
    __m512i col = _mm512_add_epi32(_mm512_set1_epi32((int)ws0), two);
    int64_t ch = -1; /* the row folded last, kept for the next window */
    __m512 cv = _mm512_setzero_ps();
    __m512i ci = _mm512_setzero_si512();
    for (int64_t oh = 0; oh < OH; oh++) {
      int64_t hs = oh * 2 - pt;
      int64_t h0 = hs < 0 ? 0 : hs, h1 = hs + 3 > H ? H : hs + 3;
      __m512 best;
      __m512i bi;
      if (h0 >= h1) { /* no row inside: as the row-major fold, -inf at the first cell */
        best = _mm512_set1_ps(-INFINITY);
        bi = _mm512_add_epi32(_mm512_set1_epi32((int)(h0 * W)),
                              _mm512_max_epi32(col, _mm512_setzero_si512()));
      } else {
        if (h0 == ch) {
          best = cv;
          bi = ci;
        } else {
          mp_row(x + h0 * W, W, ws0, col, h0 * W, &best, &bi);
        }
        for (int64_t h = h0 + 1; h < h1; h++) {
          __m512 v;
          __m512i vi;
          mp_row(x + h * W, W, ws0, col, h * W, &v, &vi);
          __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
          best = _mm512_mask_mov_ps(best, take, v);
          bi = _mm512_mask_mov_epi32(bi, take, vi);
          if (h == h1 - 1) {
            ch = h;
            cv = v;
            ci = vi;
          }
        }
      }
      _mm512_mask_storeu_ps(y + oh * OW + ow0, mo, best);
      if (!want) continue; /* evaluation: the maxima only */
      __m512i i0 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(bi));
      __m512i i1 = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(bi, 1));
      _mm512_mask_storeu_epi64(idx + oh * OW + ow0, (__mmask8)(mo & 0xFF), i0);
      _mm512_mask_storeu_epi64(idx + oh * OW + ow0 + 8, (__mmask8)(mo >> 8), i1);
    }
  }
}

AVX512 static void mp_plane_idx(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x) {
  mp_plane_t(c, y, idx, x, 1);
}
AVX512 static void mp_plane_val(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x) {
  (void)idx;
  mp_plane_t(c, y, NULL, x, 0);
}

/* ---- AVX2 ------------------------------------------------------------------ */

#define AVX2 __attribute__((target("avx2,fma")))

/* Even (odd) columns of the 16 in a, b: a shuffle within 128-bit halves,
 * then the 64-bit pieces put in order. */
static inline AVX2 __m256 ev8(__m256 a, __m256 b) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}
static inline AVX2 __m256 od8(__m256 a, __m256 b) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

/* take = v > best or v is NaN */
static inline AVX2 __m256 take8(__m256 v, __m256 best) {
  return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* As mp_row for 8 outputs: lane l's window columns are ws0 + 2l .. + 2. */
static inline __attribute__((always_inline)) AVX2 void mp_row8(const float *xr, int64_t W,
                                                               int64_t ws0, __m256i col,
                                                               int64_t rowoff, __m256 *bv,
                                                               __m256i *bi, const int want) {
  __m256 taps[3];
  if (ws0 >= 0 && ws0 + 18 <= W) { /* inside the row */
    const float *p = xr + ws0;
    __m256 a0 = _mm256_loadu_ps(p), a1 = _mm256_loadu_ps(p + 8);
    taps[0] = ev8(a0, a1);
    taps[1] = od8(a0, a1);
    taps[2] = ev8(_mm256_loadu_ps(p + 2), _mm256_loadu_ps(p + 10));
  } else if (ws0 >= 0) { /* the right end: masked loads, -inf beyond the row */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 v[4];
    static const int off[4] = {0, 8, 2, 10};
    for (int i = 0; i < 4; i++) {
      int64_t left = W - (ws0 + off[i]);
      __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 0 ? 0 : left > 8 ? 8 : left)), lane);
      v[i] = _mm256_blendv_ps(ninf, _mm256_maskload_ps(xr + ws0 + off[i], m), _mm256_castsi256_ps(m));
    }
    taps[0] = ev8(v[0], v[1]);
    taps[1] = od8(v[0], v[1]);
    taps[2] = ev8(v[2], v[3]);
  } else { /* left padding (the first vector of a row): a copy with -inf around it */
    float buf[24];
    for (int i = 0; i < 18; i++) {
      int64_t cc = ws0 + i;
      buf[i] = cc >= 0 && cc < W ? xr[cc] : -INFINITY;
    }
    __m256 a0 = _mm256_loadu_ps(buf), a1 = _mm256_loadu_ps(buf + 8);
    taps[0] = ev8(a0, a1);
    taps[1] = od8(a0, a1);
    taps[2] = ev8(_mm256_loadu_ps(buf + 2), _mm256_loadu_ps(buf + 10));
  }
  __m256 best = _mm256_set1_ps(-INFINITY);
  __m256i idx = _mm256_setzero_si256(), base = _mm256_setzero_si256();
  if (want) {
    idx = _mm256_add_epi32(_mm256_set1_epi32((int)rowoff), _mm256_max_epi32(col, _mm256_setzero_si256()));
    base = _mm256_add_epi32(_mm256_set1_epi32((int)rowoff), col);
  }
  for (int j = 0; j < 3; j++) {
    __m256 take = take8(taps[j], best);
    best = _mm256_blendv_ps(best, taps[j], take);
    if (want)
      idx = _mm256_castps_si256(_mm256_blendv_ps(
          _mm256_castsi256_ps(idx), _mm256_castsi256_ps(_mm256_add_epi32(base, _mm256_set1_epi32(j))), take));
  }
  *bv = best;
  *bi = idx;
}

/* As mp_plane_t, 8 outputs per vector. */
static inline __attribute__((always_inline)) AVX2 void mp_plane8_t(const ac_pool2d_cfg *c, float *y,
                                                                   int64_t *idx, const float *x,
                                                                   const int want) {
  const int64_t H = c->H, W = c->W, OH = c->OH, OW = c->OW, pt = c->pt, pl = c->pl;
  const __m256i two = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 8) {
    int64_t nl = OW - ow0 < 8 ? OW - ow0 : 8;
    __m256i mo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nl), lane);
    int64_t ws0 = ow0 * 2 - pl;
    __m256i col = _mm256_add_epi32(_mm256_set1_epi32((int)ws0), two);
    int64_t ch = -1;
    __m256 cv = _mm256_setzero_ps();
    __m256i ci = _mm256_setzero_si256();
    for (int64_t oh = 0; oh < OH; oh++) {
      int64_t hs = oh * 2 - pt;
      int64_t h0 = hs < 0 ? 0 : hs, h1 = hs + 3 > H ? H : hs + 3;
      __m256 best;
      __m256i bi = _mm256_setzero_si256();
      if (h0 >= h1) {
        best = _mm256_set1_ps(-INFINITY);
        if (want)
          bi = _mm256_add_epi32(_mm256_set1_epi32((int)(h0 * W)), _mm256_max_epi32(col, _mm256_setzero_si256()));
      } else {
        if (h0 == ch) {
          best = cv;
          bi = ci;
        } else {
          mp_row8(x + h0 * W, W, ws0, col, h0 * W, &best, &bi, want);
        }
        for (int64_t h = h0 + 1; h < h1; h++) {
          __m256 v;
          __m256i vi;
          mp_row8(x + h * W, W, ws0, col, h * W, &v, &vi, want);
          __m256 take = take8(v, best);
          best = _mm256_blendv_ps(best, v, take);
          if (want)
            bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(vi), take));
          if (h == h1 - 1) {
            ch = h;
            cv = v;
            ci = vi;
          }
        }
      }
      float *yo = y + oh * OW + ow0;
      if (nl == 8) _mm256_storeu_ps(yo, best);
      else _mm256_maskstore_ps(yo, mo, best);
      if (!want) continue;
      __m256i i0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(bi));
      __m256i i1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(bi, 1));
      long long *io = (long long *)(idx + oh * OW + ow0);
      _mm256_maskstore_epi64(io, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(mo)), i0);
      _mm256_maskstore_epi64(io + 4, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(mo, 1)), i1);
    }
  }
}

AVX2 static void mp_plane8_idx(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x) {
  mp_plane8_t(c, y, idx, x, 1);
}
AVX2 static void mp_plane8_val(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x) {
  (void)idx;
  mp_plane8_t(c, y, NULL, x, 0);
}

/* ---- dispatch ---------------------------------------------------------------- */

typedef void (*mp_plane_fn)(const ac_pool2d_cfg *, float *, int64_t *, const float *);

typedef struct {
  const ac_pool2d_cfg *c;
  float *y;
  int64_t *idx;
  const float *x;
  mp_plane_fn plane;
} mp_ctx;

static void mp_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  mp_ctx *t = vctx;
  const ac_pool2d_cfg *c = t->c;
  int64_t HW = c->H * c->W, OP = c->OH * c->OW;
  for (int64_t q = begin; q < end; q++)
    t->plane(c, t->y + q * OP, t->idx ? t->idx + q * OP : NULL, t->x + q * HW);
}

int ac_poolfast_max_forward(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x) {
  int wide = ac_cpu_use_avx512();
  mp_ctx t = {c, y, idx, x, wide ? (idx ? mp_plane_idx : mp_plane_val) : (idx ? mp_plane8_idx : mp_plane8_val)};
  int64_t work = 9 * c->OH * c->OW;
  int64_t grain = 16384 / (work > 0 ? work : 1);
  ac_parallel_for(c->N * c->C, grain < 1 ? 1 : grain, mp_task, &t);
  return 0;
}
