/*
 * conv_fast.c - fast convolution kernels (see conv_fast.h): a direct
 * depthwise 3x3 "same" kernel and an im2col-strip + register-blocked GEMM
 * path for groups == 1 convolutions, each with an AVX-512 version picked at
 * run time (__builtin_cpu_supports) and a portable version.
 *
 * GEMM micro-kernel (AVX-512): 8 rows of A x 32 columns of B per call, 16
 * accumulators, K in blocks of 256 so that the 256 x 32 panel of B stays in
 * L1 while the rows of A stream through; masked loads and stores for the
 * last columns, so any N works without padding copies.
 */
#include <string.h>
#include <immintrin.h>
#include "cpu/conv_fast.h"
#include "core/tensor.h"
#include "core/parallel.h"

#define GEMM_MR 8
#define GEMM_KC 256
#define GEMM_NC 256
#define STRIP 256 /* output positions per im2col strip */

static int force_generic = 0;
static int enabled = 1;

static int use_avx512(void) {
  static int v = -1;
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") ? 1 : 0;
  }
  return v && !force_generic;
}

int ac_convfast_use_avx512(void) { return use_avx512(); }
void ac_convfast_force_generic(int on) { force_generic = on ? 1 : 0; }
void ac_convfast_enable(int on) { enabled = on ? 1 : 0; }
const char *ac_convfast_isa(void) { return use_avx512() ? "avx512" : "generic"; }

/* ======================================================================
 * GEMM
 * ====================================================================== */

static void gemm_generic(int ta, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float *c = C + i * ldc;
    if (!beta) memset(c, 0, sizeof(float) * (size_t)N);
    for (int64_t k = 0; k < K; k++) {
      float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
      const float *b = B + k * ldb;
      for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
    }
  }
}

#define DEF_MK512(R)                                                                           \
  __attribute__((target("avx512f"))) static void mk512_##R(                                    \
      int64_t kc, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,           \
      int64_t ldc, __mmask16 m0, __mmask16 m1, float alpha, int acc) {                          \
    __m512 c0[R], c1[R];                                                                       \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                      \
      c0[r] = _mm512_setzero_ps();                                                             \
      c1[r] = _mm512_setzero_ps();                                                             \
    }                                                                                          \
    for (int64_t k = 0; k < kc; k++) {                                                         \
      __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb);                                      \
      __m512 b1 = _mm512_maskz_loadu_ps(m1, B + k * ldb + 16);                                 \
      _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                    \
        __m512 a = _mm512_set1_ps(A[r * lda + k]);                                             \
        c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);                                                 \
        c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);                                                 \
      }                                                                                        \
    }                                                                                          \
    __m512 va = _mm512_set1_ps(alpha);                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                      \
      float *cr = C + r * ldc;                                                                 \
      __m512 v0 = _mm512_mul_ps(va, c0[r]), v1 = _mm512_mul_ps(va, c1[r]);                     \
      if (acc) {                                                                               \
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));                                 \
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));                            \
      }                                                                                        \
      _mm512_mask_storeu_ps(cr, m0, v0);                                                       \
      _mm512_mask_storeu_ps(cr + 16, m1, v1);                                                  \
    }                                                                                          \
  }
DEF_MK512(1)
DEF_MK512(2)
DEF_MK512(3)
DEF_MK512(4)
DEF_MK512(5)
DEF_MK512(6)
DEF_MK512(7)
DEF_MK512(8)

#define DEF_MK512T(R)                                                                           \
  __attribute__((target("avx512f"))) static void mk512t_##R(                                    \
      int64_t kc, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,           \
      int64_t ldc, __mmask16 m0, __mmask16 m1, float alpha, int acc) {                          \
    __m512 c0[R], c1[R];                                                                       \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                      \
      c0[r] = _mm512_setzero_ps();                                                             \
      c1[r] = _mm512_setzero_ps();                                                             \
    }                                                                                          \
    for (int64_t k = 0; k < kc; k++) {                                                         \
      __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb);                                      \
      __m512 b1 = _mm512_maskz_loadu_ps(m1, B + k * ldb + 16);                                 \
      _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                    \
        __m512 a = _mm512_set1_ps(A[k * lda + r]);                                             \
        c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);                                                 \
        c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);                                                 \
      }                                                                                        \
    }                                                                                          \
    __m512 va = _mm512_set1_ps(alpha);                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                      \
      float *cr = C + r * ldc;                                                                 \
      __m512 v0 = _mm512_mul_ps(va, c0[r]), v1 = _mm512_mul_ps(va, c1[r]);                     \
      if (acc) {                                                                               \
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));                                 \
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));                            \
      }                                                                                        \
      _mm512_mask_storeu_ps(cr, m0, v0);                                                       \
      _mm512_mask_storeu_ps(cr + 16, m1, v1);                                                  \
    }                                                                                          \
  }

DEF_MK512T(1)
DEF_MK512T(2)
DEF_MK512T(3)
DEF_MK512T(4)
DEF_MK512T(5)
DEF_MK512T(6)
DEF_MK512T(7)
DEF_MK512T(8)

/* Ragged last columns (at most 16): one vector of B per k and up to 16 rows
 * of A (16 accumulators again), so a 361- or 100-column product does not
 * pay a full 32-column strip for its last 9 or 4 columns. AIDX is the index
 * of A's element (row r, column k): r * lda + k, or k * lda + r transposed. */
#define DEF_MK512V(NAME, R, AIDX)                                                               \
  __attribute__((target("avx512f"))) static void NAME##_##R(                                   \
      int64_t kc, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,           \
      int64_t ldc, __mmask16 m0, __mmask16 m1, float alpha, int acc) {                          \
    (void)m1;                                                                                  \
    __m512 c0[R];                                                                              \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) c0[r] = _mm512_setzero_ps();          \
    for (int64_t k = 0; k < kc; k++) {                                                         \
      __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb);                                      \
      _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                     \
        c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[AIDX]), b0, c0[r]);                           \
    }                                                                                          \
    __m512 va = _mm512_set1_ps(alpha);                                                         \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                     \
      __m512 v0 = _mm512_mul_ps(va, c0[r]);                                                    \
      if (acc) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, C + r * ldc));                 \
      _mm512_mask_storeu_ps(C + r * ldc, m0, v0);                                              \
    }                                                                                          \
  }
#define DEF_MK512V_BOTH(R) DEF_MK512V(mk512v, R, r * lda + k) DEF_MK512V(mk512vt, R, k * lda + r)
DEF_MK512V_BOTH(1)
DEF_MK512V_BOTH(2)
DEF_MK512V_BOTH(3)
DEF_MK512V_BOTH(4)
DEF_MK512V_BOTH(5)
DEF_MK512V_BOTH(6)
DEF_MK512V_BOTH(7)
DEF_MK512V_BOTH(8)
DEF_MK512V_BOTH(9)
DEF_MK512V_BOTH(10)
DEF_MK512V_BOTH(11)
DEF_MK512V_BOTH(12)
DEF_MK512V_BOTH(13)
DEF_MK512V_BOTH(14)
DEF_MK512V_BOTH(15)
DEF_MK512V_BOTH(16)

typedef void (*mk512_fn)(int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t,
                         __mmask16, __mmask16, float, int);
static const mk512_fn mk512[GEMM_MR + 1] = {NULL,     mk512_1, mk512_2, mk512_3, mk512_4,
                                            mk512_5, mk512_6, mk512_7, mk512_8};
static const mk512_fn mk512t[GEMM_MR + 1] = {NULL,      mk512t_1, mk512t_2, mk512t_3, mk512t_4,
                                             mk512t_5, mk512t_6, mk512t_7, mk512t_8};
#define GEMM_MRV 16
static const mk512_fn mk512v[GEMM_MRV + 1] = {
    NULL,       mk512v_1,   mk512v_2,   mk512v_3,   mk512v_4,  mk512v_5,
    mk512v_6,   mk512v_7,   mk512v_8,   mk512v_9,   mk512v_10, mk512v_11,
    mk512v_12,  mk512v_13,  mk512v_14,  mk512v_15,  mk512v_16};
static const mk512_fn mk512vt[GEMM_MRV + 1] = {
    NULL,       mk512vt_1,  mk512vt_2,  mk512vt_3,  mk512vt_4,  mk512vt_5,
    mk512vt_6,  mk512vt_7,  mk512vt_8,  mk512vt_9,  mk512vt_10, mk512vt_11,
    mk512vt_12, mk512vt_13, mk512vt_14, mk512vt_15, mk512vt_16};

static __mmask16 lanes(int64_t n) {
  if (n <= 0) return 0;
  if (n >= 16) return (__mmask16)0xFFFF;
  return (__mmask16)((1u << n) - 1u);
}

static void gemm_avx512(int ta, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  const mk512_fn *mk = ta ? mk512t : mk512, *mkv = ta ? mk512vt : mk512v;
  /* 256-column panels of B; in each, k blocks of 256, then 8-row blocks of A
   * (8 x 256 floats, L1-resident), then 32-column strips: the 256 x 256
   * block of B (256 KB) stays in L2 across the row blocks. A last strip of
   * at most 16 columns runs separately, 16 rows at a time, one vector wide. */
  for (int64_t c0 = 0; c0 < N; c0 += GEMM_NC) {
    int64_t c1 = N - c0 < GEMM_NC ? N : c0 + GEMM_NC;
    int64_t rag = (c1 - c0) % 32 <= 16 ? (c1 - c0) % 32 : 0; /* one-vector last strip */
    int64_t cm = c1 - rag;
    for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
      int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
      int acc = beta || k0 > 0;
      if (cm > c0)
        for (int64_t i0 = 0; i0 < M; i0 += GEMM_MR) {
          int64_t mr = M - i0 < GEMM_MR ? M - i0 : GEMM_MR;
          const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
          for (int64_t n0 = c0; n0 < cm; n0 += 32) {
            int64_t w = cm - n0 < 32 ? cm - n0 : 32;
            mk[mr](kc, Ab, lda, B + k0 * ldb + n0, ldb, C + i0 * ldc + n0, ldc, lanes(w),
                   lanes(w - 16), alpha, acc);
          }
        }
      if (rag)
        for (int64_t i0 = 0; i0 < M; i0 += GEMM_MRV) {
          int64_t mr = M - i0 < GEMM_MRV ? M - i0 : GEMM_MRV;
          const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
          mkv[mr](kc, Ab, lda, B + k0 * ldb + cm, ldb, C + i0 * ldc + cm, ldc, lanes(rag), 0,
                  alpha, acc);
        }
    }
  }
}

/* The same for at most GEMM_NC columns whose B rows lie far apart (an NCHW
 * plane of a convolution: ldb = H * W, a new page every row or two): each
 * K block of B is first copied into `pack` as contiguous [32-column
 * strip][kc][32] (kc x N floats, L2-resident, unit-stride for the
 * micro-kernel and its prefetchers), then run as gemm_avx512 does. pack
 * holds GEMM_KC * ceil(N / 32) * 32 floats. */
__attribute__((target("avx512f"))) static void gemm_avx512_packb(
    int ta, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
    int64_t ldb, float *C, int64_t ldc, float *pack) {
  const mk512_fn *mk = ta ? mk512t : mk512, *mkv = ta ? mk512vt : mk512v;
  int64_t rag = N % 32 <= 16 ? N % 32 : 0, cm = N - rag;
  for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
    int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
    int acc = k0 > 0;
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
      int64_t w = N - n0 < 32 ? N - n0 : 32;
      __mmask16 m0 = lanes(w), m1 = lanes(w - 16);
      float *d = pack + (n0 / 32) * kc * 32;
      const float *b = B + k0 * ldb + n0;
      for (int64_t k = 0; k < kc; k++) {
        _mm512_storeu_ps(d + k * 32, _mm512_maskz_loadu_ps(m0, b + k * ldb));
        _mm512_storeu_ps(d + k * 32 + 16, _mm512_maskz_loadu_ps(m1, b + k * ldb + 16));
      }
    }
    if (cm > 0)
      for (int64_t i0 = 0; i0 < M; i0 += GEMM_MR) {
        int64_t mr = M - i0 < GEMM_MR ? M - i0 : GEMM_MR;
        const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
        for (int64_t n0 = 0; n0 < cm; n0 += 32) {
          int64_t w = cm - n0 < 32 ? cm - n0 : 32;
          mk[mr](kc, Ab, lda, pack + (n0 / 32) * kc * 32, 32, C + i0 * ldc + n0, ldc, lanes(w),
                 lanes(w - 16), 1.0f, acc);
        }
      }
    if (rag)
      for (int64_t i0 = 0; i0 < M; i0 += GEMM_MRV) {
        int64_t mr = M - i0 < GEMM_MRV ? M - i0 : GEMM_MRV;
        const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
        mkv[mr](kc, Ab, lda, pack + (cm / 32) * kc * 32, 32, C + i0 * ldc + cm, ldc, lanes(rag), 0,
                1.0f, acc);
      }
  }
}

/* C [M, N] = A B (ta: A given as [K, M]) for N <= GEMM_NC, B packed through
 * `pack` on the AVX-512 path (see gemm_avx512_packb); plain otherwise. */
static void gemm_strip(int ta, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float *C, int64_t ldc, float *pack) {
  if (M <= 0 || N <= 0) return;
  if (use_avx512() && K > 0 && N <= GEMM_NC && pack)
    gemm_avx512_packb(ta, M, N, K, A, lda, B, ldb, C, ldc, pack);
  else if (ta)
    ac_gemm_tn(M, N, K, 1.0f, A, lda, B, ldb, 0, C, ldc);
  else
    ac_gemm_nn(M, N, K, 1.0f, A, lda, B, ldb, 0, C, ldc);
}

void ac_gemm_nn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!beta)
      for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * (size_t)N);
    return;
  }
  if (use_avx512())
    gemm_avx512(0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_generic(0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ac_gemm_tn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!beta)
      for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * (size_t)N);
    return;
  }
  if (use_avx512())
    gemm_avx512(1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_generic(1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* C[M,N] = alpha A[M,K] B[N,K]^T + (beta ? C : 0): dot products of rows. */
static void gemm_nt_generic(int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, const float *B, int64_t ldb, int beta, float *C,
                            int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      const float *a = A + i * lda, *b = B + j * ldb;
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) s += a[k] * b[k];
      C[i * ldc + j] = alpha * s + (beta ? C[i * ldc + j] : 0.0f);
    }
}

__attribute__((target("avx512f"))) static void tr16_avx512(__m512 r[16]);

/* dst[k][j - j0] = src[j][k0 + k] for rows j in [j0, j1) (at most 32) and
 * k in [0, kc): a block of rows transposed into a [kc][32] strip, 16 x 16
 * in registers, masked at the ragged ends (lanes beyond j1 - j0 get 0). */
__attribute__((target("avx512f"))) static void pack_t32_avx512(const float *src, int64_t ld,
                                                                int64_t j0, int64_t j1,
                                                                int64_t k0, int64_t kc,
                                                                float *dst) {
  for (int64_t h = j0; h < j1; h += 16) {
    int64_t nj = j1 - h < 16 ? j1 - h : 16;
    float *d = dst + (h - j0);
    for (int64_t q0 = 0; q0 < kc; q0 += 16) {
      int64_t nq = kc - q0 < 16 ? kc - q0 : 16;
      __mmask16 m = lanes(nq);
      __m512 r[16];
      for (int64_t i = 0; i < 16; i++)
        r[i] = i < nj ? _mm512_maskz_loadu_ps(m, src + (h + i) * ld + k0 + q0) : _mm512_setzero_ps();
      tr16_avx512(r);
      for (int64_t q = 0; q < nq; q++) _mm512_storeu_ps(d + (q0 + q) * 32, r[q]);
    }
  }
}

/* 16 vectors -> one: lane (i % 4) * 4 + i / 4 of the result is the sum of
 * a[i]'s lanes (a transpose-and-add tree, 15 adds instead of 16 reductions). */
__attribute__((target("avx512f"))) static inline __m512 reduce16_avx512(const __m512 a[16]) {
  __m512 b[8], c[4], d[2];
  for (int i = 0; i < 8; i++) /* lanes 0-7: a[2i]'s halves added, 8-15: a[2i+1]'s */
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; i++) /* each 128-bit quarter: four partial lanes of one a */
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; i++)
    d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
}

/* One row of A (batch-1 Linear): C[j] = alpha <A, B_j> (+ C[j]) for 16 rows
 * of B at a time, each A vector loaded once per 16 rows. */
__attribute__((target("avx512f"))) static void gemv_nt_avx512(int64_t N, int64_t K, float alpha,
                                                              const float *A, const float *B,
                                                              int64_t ldb, int beta, float *C) {
  for (int64_t j0 = 0; j0 < N; j0 += 16) {
    int64_t nj = N - j0 < 16 ? N - j0 : 16;
    __m512 acc[16];
    for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      __mmask16 m = lanes(K - k);
      __m512 a = _mm512_maskz_loadu_ps(m, A + k);
      /* row j0 + r goes to acc[(r % 4) * 4 + r / 4], so lane r of the sum is row r */
      for (int r = 0; r < 16; r++)
        if (r < nj)
          acc[(r % 4) * 4 + r / 4] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, B + (j0 + r) * ldb + k),
                                                     acc[(r % 4) * 4 + r / 4]);
    }
    __mmask16 mj = lanes(nj);
    __m512 y = _mm512_mul_ps(_mm512_set1_ps(alpha), reduce16_avx512(acc));
    if (beta) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mj, C + j0));
    _mm512_mask_storeu_ps(C + j0, mj, y);
  }
}

/* Few rows of A (batch-1 Linear): 4 x 4 dot products of rows, B read once
 * and not transposed (the product is bound by reading B). */
__attribute__((target("avx512f"))) static void gemm_nt_dot_avx512(int64_t M, int64_t N, int64_t K,
                                                              float alpha, const float *A,
                                                              int64_t lda, const float *B,
                                                              int64_t ldb, int beta, float *C,
                                                              int64_t ldc) {
  for (int64_t i0 = 0; i0 < M; i0 += 4) {
    int64_t mi = M - i0 < 4 ? M - i0 : 4;
    for (int64_t j0 = 0; j0 < N; j0 += 4) {
      int64_t nj = N - j0 < 4 ? N - j0 : 4;
      __m512 acc[4][4];
      for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
      for (int64_t k = 0; k < K; k += 16) {
        __mmask16 m = lanes(K - k);
        __m512 a[4], b[4];
        for (int r = 0; r < 4; r++)
          a[r] = r < mi ? _mm512_maskz_loadu_ps(m, A + (i0 + r) * lda + k) : _mm512_setzero_ps();
        for (int q = 0; q < 4; q++)
          b[q] = q < nj ? _mm512_maskz_loadu_ps(m, B + (j0 + q) * ldb + k) : _mm512_setzero_ps();
        for (int r = 0; r < 4; r++)
          for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(a[r], b[q], acc[r][q]);
      }
      for (int r = 0; r < mi; r++)
        for (int q = 0; q < nj; q++) {
          float *c = C + (i0 + r) * ldc + j0 + q;
          *c = alpha * _mm512_reduce_add_ps(acc[r][q]) + (beta ? *c : 0.0f);
        }
    }
  }
}

/* C = alpha A B^T (+ C): each 32-row block of B (32 columns of C) and K
 * block is transposed once into a [256][32] strip on the stack, then every
 * 8-row block of A runs the NN micro-kernel against it. */
__attribute__((target("avx512f"))) static void gemm_nt_avx512(int64_t M, int64_t N, int64_t K,
                                                              float alpha, const float *A,
                                                              int64_t lda, const float *B,
                                                              int64_t ldb, int beta, float *C,
                                                              int64_t ldc) {
  if (M == 1) {
    gemv_nt_avx512(N, K, alpha, A, B, ldb, beta, C);
    return;
  }
  if (M <= 4) {
    gemm_nt_dot_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  float strip[GEMM_KC * 32] __attribute__((aligned(64)));
  for (int64_t n0 = 0; n0 < N; n0 += 32) {
    int64_t w = N - n0 < 32 ? N - n0 : 32;
    for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
      int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
      int acc = beta || k0 > 0;
      pack_t32_avx512(B, ldb, n0, n0 + w, k0, kc, strip);
      if (w > 16)
        for (int64_t i0 = 0; i0 < M; i0 += GEMM_MR) {
          int64_t mr = M - i0 < GEMM_MR ? M - i0 : GEMM_MR;
          mk512[mr](kc, A + i0 * lda + k0, lda, strip, 32, C + i0 * ldc + n0, ldc, lanes(w),
                    lanes(w - 16), alpha, acc);
        }
      else
        for (int64_t i0 = 0; i0 < M; i0 += GEMM_MRV) {
          int64_t mr = M - i0 < GEMM_MRV ? M - i0 : GEMM_MRV;
          mk512v[mr](kc, A + i0 * lda + k0, lda, strip, 32, C + i0 * ldc + n0, ldc, lanes(w), 0,
                     alpha, acc);
        }
    }
  }
}

void ac_gemm_nt(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!beta)
      for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * (size_t)N);
    return;
  }
  if (use_avx512())
    gemm_nt_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_nt_generic(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ac_scale_rows(float *dst, const float *src, const float *s, int64_t rows, int64_t per) {
  for (int64_t r = 0; r < rows; r++) {
    float v = s[r];
    const float *a = src + r * per;
    float *d = dst + r * per;
    for (int64_t k = 0; k < per; k++) d[k] = a[k] * v;
  }
}

/* ---- the library's thread pool over row blocks of C ---- */
typedef struct {
  int kind; /* 0 nn, 1 tn, 2 nt */
  int64_t M, N, K, lda, ldb, ldc, rows;
  float alpha;
  const float *A, *B;
  float *C;
  int beta;
} pgemm_ctx;

static void pgemm_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pgemm_ctx *t = vctx;
  for (int64_t q = begin; q < end; q++) {
    int64_t i0 = q * t->rows, i1 = i0 + t->rows < t->M ? i0 + t->rows : t->M;
    const float *A = t->kind == 1 ? t->A + i0 : t->A + i0 * t->lda;
    float *C = t->C + i0 * t->ldc;
    if (t->kind == 0)
      ac_gemm_nn(i1 - i0, t->N, t->K, t->alpha, A, t->lda, t->B, t->ldb, t->beta, C, t->ldc);
    else if (t->kind == 1)
      ac_gemm_tn(i1 - i0, t->N, t->K, t->alpha, A, t->lda, t->B, t->ldb, t->beta, C, t->ldc);
    else
      ac_gemm_nt(i1 - i0, t->N, t->K, t->alpha, A, t->lda, t->B, t->ldb, t->beta, C, t->ldc);
  }
}

/* Blocks of `rows` (here: columns) of C for products with few rows (batch-1
 * Linear): the threads share the reading of B. */
static void pgemm_cols_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pgemm_ctx *t = vctx;
  for (int64_t q = begin; q < end; q++) {
    int64_t j0 = q * t->rows, j1 = j0 + t->rows < t->N ? j0 + t->rows : t->N;
    const float *B = t->kind == 2 ? t->B + j0 * t->ldb : t->B + j0;
    float *C = t->C + j0;
    if (t->kind == 0)
      ac_gemm_nn(t->M, j1 - j0, t->K, t->alpha, t->A, t->lda, B, t->ldb, t->beta, C, t->ldc);
    else if (t->kind == 1)
      ac_gemm_tn(t->M, j1 - j0, t->K, t->alpha, t->A, t->lda, B, t->ldb, t->beta, C, t->ldc);
    else
      ac_gemm_nt(t->M, j1 - j0, t->K, t->alpha, t->A, t->lda, B, t->ldb, t->beta, C, t->ldc);
  }
}

void ac_gemm_parallel(int trans, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  int64_t nt = ac_get_num_threads();
  if (M < 8 * nt && N >= 64 * nt) {
    /* too few rows for every thread: blocks of columns (multiples of 32) */
    int64_t cols = ((N + 2 * nt - 1) / (2 * nt) + 31) / 32 * 32;
    pgemm_ctx t = {trans, M, N, K, lda, ldb, ldc, cols, alpha, A, B, C, beta};
    int64_t blocks = (N + cols - 1) / cols;
    int64_t work = cols * M * (K > 0 ? K : 1);
    ac_parallel_for(blocks, work >= 65536 ? 1 : (65536 + work - 1) / work, pgemm_cols_task, &t);
    return;
  }
  int64_t rows = (M + 2 * nt - 1) / (2 * nt);
  rows = (rows + 7) / 8 * 8;
  if (rows < 8) rows = 8;
  pgemm_ctx t = {trans, M, N, K, lda, ldb, ldc, rows, alpha, A, B, C, beta};
  int64_t blocks = (M + rows - 1) / rows;
  int64_t work = rows * N * (K > 0 ? K : 1);
  ac_parallel_for(blocks, work >= 65536 ? 1 : (65536 + work - 1) / work, pgemm_task, &t);
}

/* ======================================================================
 * depthwise 3x3, stride 1, padding 1
 * ====================================================================== */

static int is_dw3(const ac_conv2d_cfg *c) {
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

__attribute__((target("avx512f"))) static void dw3_plane_avx512(float *y, const float *x,
                                                                 int64_t H, int64_t W,
                                                                 const float *w, float bias) {
  __m512 wv[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[t]);
  __m512 vb = _mm512_set1_ps(bias);
  for (int64_t h = 0; h < H; h++) {
    for (int64_t w0 = 0; w0 < W; w0 += 16) {
      int64_t n = W - w0;
      __mmask16 mc = lanes(n), mr = lanes(n - 1);
      __m512 acc = vb;
      _Pragma("GCC unroll 3") for (int i = 0; i < 3; i++) {
        int64_t hh = h + i - 1;
        if (hh < 0 || hh >= H) continue;
        const float *r = x + hh * W;
        __m512 vc = _mm512_maskz_loadu_ps(mc, r + w0);
        __m512 vl = w0 == 0 ? _mm512_maskz_expandloadu_ps((__mmask16)(mc & 0xFFFE), r)
                            : _mm512_maskz_loadu_ps(mc, r + w0 - 1);
        __m512 vr = _mm512_maskz_loadu_ps(mr, r + w0 + 1);
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
      __mmask16 mc = lanes(n), mr = lanes(n - 1);
      __m512 g = _mm512_maskz_loadu_ps(mc, gy + h * W + w0);
      _Pragma("GCC unroll 3") for (int i = 0; i < 3; i++) {
        int64_t hh = h + i - 1;
        if (hh < 0 || hh >= H) continue;
        const float *r = x + hh * W;
        __m512 vc = _mm512_maskz_loadu_ps(mc, r + w0);
        __m512 vl = w0 == 0 ? _mm512_maskz_expandloadu_ps((__mmask16)(mc & 0xFFFE), r)
                            : _mm512_maskz_loadu_ps(mc, r + w0 - 1);
        __m512 vr = _mm512_maskz_loadu_ps(mr, r + w0 + 1);
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
  __mmask16 m = lanes(HW - p);
  __mmask16 ml = m & _mm512_cmpneq_epi32_mask(col, _mm512_setzero_si512());
  __mmask16 mr = m & _mm512_cmpneq_epi32_mask(col, _mm512_set1_epi32((int)(W - 1)));
  __mmask16 mu = (__mmask16)(m & ~lanes(W - p)); /* p + l >= W: a row above */
  __mmask16 md = (__mmask16)(m & lanes(HW - W - p)); /* p + l + W < HW: a row below */
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

__attribute__((target("avx512f"))) static void dw3_flat_avx512(float *y, const float *x,
                                                                int64_t H, int64_t W,
                                                                const float *w, float bias) {
  int64_t HW = H * W, off[9];
  __m512 wv[9];
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) {
    wv[t] = _mm512_set1_ps(w[t]);
    off[t] = (t / 3 - 1) * W + (t % 3 - 1);
  }
  __m512 vb = _mm512_set1_ps(bias);
  __m512i col = dw3_next_col(
      _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(16)),
      W);
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
  _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) {
    acc[t] = _mm512_setzero_ps();
    off[t] = (t / 3 - 1) * W + (t % 3 - 1);
  }
  __m512i col = dw3_next_col(
      _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(16)),
      W);
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
  int v = use_avx512();
  for (int64_t q = begin; q < end; q++) {
    int64_t ch = q % c->C;
    float wk[9];
    for (int k = 0; k < 9; k++) wk[k] = t->w[ch * 9 + (t->flip ? 8 - k : k)];
    float bias = t->b ? t->b[ch] : 0.0f;
    if (v)
      (c->W < DW3_FLAT_W ? dw3_flat_avx512 : dw3_plane_avx512)(t->out + q * HW, t->in + q * HW,
                                                               c->H, c->W, wk, bias);
    else
      dw3_plane_generic(t->out + q * HW, t->in + q * HW, c->H, c->W, wk, bias);
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
  int v = use_avx512();
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
        if (t->out) {
          float *gxp = t->out + (n * c->C + ch) * HW;
          if (v)
            (c->W < DW3_FLAT_W ? dw3_flat_avx512 : dw3_plane_avx512)(gxp, gp, c->H, c->W,
                                                                     wk[ch - c0], 0.0f);
          else
            dw3_plane_generic(gxp, gp, c->H, c->W, wk[ch - c0], 0.0f);
        }
        if (v)
          (c->W < DW3_FLAT_W ? dw3_params_flat_avx512 : dw3_params_plane_avx512)(
              acc[ch - c0], xp, gp, c->H, c->W);
        else
          dw3_params_plane_generic(acc[ch - c0], xp, gp, c->H, c->W);
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

static int64_t grain_for(int64_t work) {
  int64_t g = 16384 / (work > 0 ? work : 1);
  return g < 1 ? 1 : g;
}

/* ======================================================================
 * groups == 1: im2col strips + GEMM
 * ====================================================================== */

static int is_direct1x1(const ac_conv2d_cfg *c) {
  return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 &&
         c->pb == 0 && c->pr == 0;
}

/* Columns of output positions [p0, p1) of one sample. transposed == 0:
 * cols[k * S + s]; transposed == 1: cols[s * K + k] (k = (ci*kh + i)*kw + j). */
static void im2col_strip(const ac_conv2d_cfg *c, const float *xn, int64_t p0, int64_t p1,
                         float *cols, int transposed) {
  int64_t S = p1 - p0, K = c->C * c->kh * c->kw;
  for (int64_t ci = 0; ci < c->C; ci++) {
    const float *xp = xn + ci * c->H * c->W;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        int64_t k = (ci * c->kh + i) * c->kw + j;
        float *row = transposed ? cols + k : cols + k * S;
        int64_t st = transposed ? K : 1;
        for (int64_t p = p0; p < p1;) {
          int64_t oh = p / c->OW, ow0 = p % c->OW;
          int64_t run = c->OW - ow0 < p1 - p ? c->OW - ow0 : p1 - p;
          int64_t h = oh * c->sh - c->pt + i;
          float *dst = row + (p - p0) * st;
          if (h < 0 || h >= c->H) {
            for (int64_t q = 0; q < run; q++) dst[q * st] = 0.0f;
          } else if (st == 1 && c->sw == 1) {
            /* stride 1: zeros, one contiguous piece of the input row, zeros */
            const float *xr = xp + h * c->W;
            int64_t w0 = ow0 - c->pl + j; /* input column of q = 0 */
            int64_t qa = w0 < 0 ? -w0 : 0, qb = c->W - w0 < run ? c->W - w0 : run;
            if (qb < qa) qb = qa;
            for (int64_t q = 0; q < qa; q++) dst[q] = 0.0f;
            if (qb > qa) memcpy(dst + qa, xr + w0 + qa, sizeof(float) * (size_t)(qb - qa));
            for (int64_t q = qb; q < run; q++) dst[q] = 0.0f;
          } else {
            const float *xr = xp + h * c->W;
            for (int64_t q = 0; q < run; q++) {
              int64_t ww = (ow0 + q) * c->sw - c->pl + j;
              dst[q * st] = (ww >= 0 && ww < c->W) ? xr[ww] : 0.0f;
            }
          }
          p += run;
        }
      }
  }
}

/* gx[n] += columns cols[k * S + s] of output positions [p0, p1). */
static void col2im_strip(const ac_conv2d_cfg *c, float *gxn, int64_t p0, int64_t p1,
                         const float *cols) {
  int64_t S = p1 - p0;
  for (int64_t ci = 0; ci < c->C; ci++) {
    float *gp = gxn + ci * c->H * c->W;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        const float *row = cols + ((ci * c->kh + i) * c->kw + j) * S;
        for (int64_t p = p0; p < p1;) {
          int64_t oh = p / c->OW, ow0 = p % c->OW;
          int64_t run = c->OW - ow0 < p1 - p ? c->OW - ow0 : p1 - p;
          int64_t h = oh * c->sh - c->pt + i;
          if (h >= 0 && h < c->H && c->sw == 1) {
            /* stride 1: one contiguous piece of the row */
            const float *src = row + (p - p0);
            float *gr = gp + h * c->W;
            int64_t w0 = ow0 - c->pl + j;
            int64_t qa = w0 < 0 ? -w0 : 0, qb = c->W - w0 < run ? c->W - w0 : run;
            if (qb > qa) {
              float *restrict g = gr + w0 + qa;
              const float *restrict sq = src + qa;
              for (int64_t q = 0; q < qb - qa; q++) g[q] += sq[q];
            }
          } else if (h >= 0 && h < c->H) {
            const float *src = row + (p - p0);
            float *gr = gp + h * c->W;
            for (int64_t q = 0; q < run; q++) {
              int64_t ww = (ow0 + q) * c->sw - c->pl + j;
              if (ww >= 0 && ww < c->W) gr[ww] += src[q];
            }
          }
          p += run;
        }
      }
  }
}

typedef struct {
  const ac_conv2d_cfg *c;
  const float *x, *w, *b, *gy, *wt;
  float *y, *gx, *cols, *parts;
  int64_t nstrip, colsz, partsz;
  int64_t sw;       /* strip width (positions) */
  int64_t nob, ob;  /* output-row blocks per (sample, strip) and rows per block */
} g1_ctx;

static int64_t nstrips(const ac_conv2d_cfg *c) {
  int64_t P = c->OH * c->OW;
  return (P + STRIP - 1) / STRIP;
}

/* Balanced strips: nstrip strips of sw positions (a multiple of 16, at most
 * STRIP), the last one shorter. */
static int64_t strip_width(const ac_conv2d_cfg *c) {
  int64_t P = c->OH * c->OW, ns = nstrips(c);
  int64_t sw = (P + ns - 1) / ns;
  sw = (sw + 15) / 16 * 16;
  return sw > STRIP ? STRIP : sw;
}

/* For the direct 1x1 passes (disjoint outputs), split the M rows too when
 * there are too few (sample, strip) tasks to keep every thread busy
 * (batch-1 inference). */
static void row_blocks(g1_ctx *t, int64_t M) {
  int64_t nt = ac_get_num_threads(), tasks = t->c->N * t->nstrip, nob = 1;
  while (tasks * nob < 4 * nt && M / (nob * 2) >= 32) nob *= 2;
  t->nob = nob;
  t->ob = ((M + nob - 1) / nob + 7) / 8 * 8;
}

static void g1_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  g1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  int direct = is_direct1x1(c);
  float *cols = t->cols + tid * t->colsz;
  for (int64_t q = begin; q < end; q++) {
    int64_t ob = q % t->nob, s = (q / t->nob) % t->nstrip, n = q / (t->nob * t->nstrip);
    int64_t p0 = s * t->sw, p1 = p0 + t->sw < P ? p0 + t->sw : P, S = p1 - p0;
    int64_t o0 = ob * t->ob, o1 = o0 + t->ob < c->O ? o0 + t->ob : c->O;
    if (o0 >= o1 || S <= 0) continue;
    const float *xn = t->x + n * c->C * c->H * c->W;
    float *yn = t->y + n * c->O * P + p0 + o0 * P;
    if (direct) {
      /* B = the input's plane rows, H * W apart: packed per K block */
      gemm_strip(0, o1 - o0, S, K, t->w + o0 * K, K, xn + p0, P, yn, P, t->cols + tid * t->colsz);
    } else {
      im2col_strip(c, xn, p0, p1, cols, 0);
      ac_gemm_nn(o1 - o0, S, K, 1.0f, t->w + o0 * K, K, cols, S, 0, yn, P);
    }
    if (t->b)
      for (int64_t o = o0; o < o1; o++) {
        float bv = t->b[o], *r = yn + (o - o0) * P;
        for (int64_t p = 0; p < S; p++) r[p] += bv;
      }
  }
}

/* direct 1x1: tasks over (sample, strip); otherwise over samples (col2im overlaps). */
static void g1_backward_input_task(void *vctx, int64_t begin, int64_t end, int tid) {
  g1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  if (is_direct1x1(c)) {
    for (int64_t q = begin; q < end; q++) {
      int64_t ob = q % t->nob, s = (q / t->nob) % t->nstrip, n = q / (t->nob * t->nstrip);
      int64_t p0 = s * t->sw, p1 = p0 + t->sw < P ? p0 + t->sw : P;
      int64_t k0 = ob * t->ob, k1 = k0 + t->ob < K ? k0 + t->ob : K;
      if (k0 >= k1 || p1 <= p0) continue;
      /* gx rows k0..k1 = W^T[k0:k1, :] gy: W [O, K] read transposed in place,
       * gy's plane rows packed per K block */
      gemm_strip(1, k1 - k0, p1 - p0, c->O, t->w + k0, K, t->gy + n * c->O * P + p0, P,
                 t->gx + n * c->C * P + k0 * P + p0, P, t->cols + tid * t->colsz);
    }
    return;
  }
  float *cols = t->cols + tid * t->colsz;
  for (int64_t n = begin; n < end; n++) {
    float *gxn = t->gx + n * c->C * c->H * c->W;
    memset(gxn, 0, sizeof(float) * (size_t)(c->C * c->H * c->W));
    for (int64_t p0 = 0; p0 < P; p0 += t->sw) {
      int64_t p1 = p0 + t->sw < P ? p0 + t->sw : P, S = p1 - p0;
      ac_gemm_tn(K, S, c->O, 1.0f, t->w, K, t->gy + n * c->O * P + p0, P, 0, cols, S);
      col2im_strip(c, gxn, p0, p1, cols);
    }
  }
}

/* ----------------------------------------------------------------------
 * Weight gradient of the groups == 1 convolutions as one GEMM over every
 * sample: gw [O, K] += scale * gy [O, N*P] cols [N*P, K], the reduction
 * running over all N * P output positions. Its columns are cut into panels
 * of at most 256 (K), its rows into blocks of at most 256 (O); each task
 * owns one tile of gw (and, for small weights, one group of samples, with
 * its own [O, K] partial sums) and walks its positions in chunks of at most
 * 256 that stay inside one sample: the chunk's im2col columns for the
 * panel are packed once, transposed, into [32-column strip][position][32]
 * (contiguous B strips for the micro-kernel; a 1x1 stride-1 input is
 * transposed 16 x 16 in registers), then every 8-row block of gy's rows
 * runs against them. The split depends on the shapes only, so the result
 * does not depend on the thread count.
 * ---------------------------------------------------------------------- */

#define GW_PANEL 256 /* K columns per tile */
#define GW_ROWS 256  /* O rows per tile (at most) */
#define GW_TASKS 8   /* tasks aimed at */

typedef struct {
  int64_t ncp, nc;   /* panel width (multiple of 32) and panels */
  int64_t orow, no;  /* rows per block (multiple of 8) and blocks */
  int64_t nk;        /* sample groups (each with its own partial sums when > 1) */
  int64_t kcw, nkc;  /* positions per chunk and chunks per sample */
} gw_plan;

static void gw_plan_for(const ac_conv2d_cfg *c, gw_plan *pl) {
  int64_t K = c->C * c->kh * c->kw, O = c->O, P = c->OH * c->OW;
  pl->nc = (K + GW_PANEL - 1) / GW_PANEL;
  pl->ncp = ((K + pl->nc - 1) / pl->nc + 31) / 32 * 32;
  pl->nc = (K + pl->ncp - 1) / pl->ncp;
  pl->no = (O + GW_ROWS - 1) / GW_ROWS;
  pl->nk = 1;
  /* small weights: split the samples first (the partial sums are small) */
  while (pl->nc * pl->no * pl->nk < GW_TASKS && pl->nk * 2 <= c->N &&
         pl->nk * 2 * O * K <= ((int64_t)1 << 18))
    pl->nk *= 2;
  /* then the rows, down to blocks of 32 (each block packs its own columns) */
  for (;;) {
    int64_t orow = ((O + pl->no - 1) / pl->no + 7) / 8 * 8;
    if (pl->nc * pl->no * pl->nk >= GW_TASKS || orow < 64) break;
    pl->no *= 2;
  }
  pl->orow = ((O + pl->no - 1) / pl->no + 7) / 8 * 8;
  pl->no = (O + pl->orow - 1) / pl->orow;
  pl->nkc = (P + GEMM_KC - 1) / GEMM_KC;
  pl->kcw = ((P + pl->nkc - 1) / pl->nkc + 15) / 16 * 16;
  if (pl->kcw > GEMM_KC) pl->kcw = GEMM_KC;
  pl->nkc = (P + pl->kcw - 1) / pl->kcw;
}

/* Floats of one thread's packed columns. */
static int64_t gw_packsz(const gw_plan *pl) { return pl->kcw * pl->ncp; }

/* Portable packing: dst[(k - j0) / 32][p - p0][(k - j0) % 32] = column k of
 * the im2col matrix at output position p, for k in [j0, j1). */
static void gw_pack_generic(const ac_conv2d_cfg *c, const float *xn, int64_t p0, int64_t p1,
                            int64_t j0, int64_t j1, float *dst) {
  int64_t S = p1 - p0;
  for (int64_t k = j0; k < j1; k++) {
    int64_t ci = k / (c->kh * c->kw), i = (k / c->kw) % c->kh, j = k % c->kw;
    float *col = dst + ((k - j0) / 32) * S * 32 + (k - j0) % 32;
    const float *xp = xn + ci * c->H * c->W;
    for (int64_t p = p0; p < p1;) {
      int64_t oh = p / c->OW, ow0 = p % c->OW;
      int64_t run = c->OW - ow0 < p1 - p ? c->OW - ow0 : p1 - p;
      int64_t h = oh * c->sh - c->pt + i;
      float *d = col + (p - p0) * 32;
      if (h < 0 || h >= c->H) {
        for (int64_t q = 0; q < run; q++) d[q * 32] = 0.0f;
      } else {
        const float *xr = xp + h * c->W;
        for (int64_t q = 0; q < run; q++) {
          int64_t ww = (ow0 + q) * c->sw - c->pl + j;
          d[q * 32] = (ww >= 0 && ww < c->W) ? xr[ww] : 0.0f;
        }
      }
      p += run;
    }
  }
}

__attribute__((target("avx512f"))) static void tr16_avx512(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int h = 0; h < 2; h++)
    for (int i = 0; i < 4; i++) {
      t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
      t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xDD);
    }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
  }
}

/* The same for a 1x1 stride-1 unpadded convolution (column k is input
 * channel k): 16 channels x 16 positions per register transpose, masked at
 * the ragged ends. */
__attribute__((target("avx512f"))) static void gw_pack1x1_avx512(const ac_conv2d_cfg *c,
                                                                  const float *xn, int64_t p0,
                                                                  int64_t p1, int64_t j0,
                                                                  int64_t j1, float *dst) {
  int64_t S = p1 - p0, P = c->H * c->W;
  for (int64_t s0 = j0; s0 < j1; s0 += 32)
    pack_t32_avx512(xn, P, s0, j1 - s0 < 32 ? j1 : s0 + 32, p0, S, dst + ((s0 - j0) / 32) * S * 32);
}

typedef struct {
  const ac_conv2d_cfg *c;
  const float *x, *gy;
  float *gw, *parts, *pack;
  float scale;
  gw_plan pl;
} gw_ctx;

/* task = (sample group, row block, panel) */
static void gw_task(void *vctx, int64_t begin, int64_t end, int tid) {
  gw_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const gw_plan *pl = &t->pl;
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw, OK = c->O * K;
  int fast1x1 = is_direct1x1(c) && use_avx512();
  float *pack = t->pack + tid * gw_packsz(pl);
  for (int64_t q = begin; q < end; q++) {
    int64_t cb = q % pl->nc, ob = (q / pl->nc) % pl->no, g = q / (pl->nc * pl->no);
    int64_t j0 = cb * pl->ncp, j1 = j0 + pl->ncp < K ? j0 + pl->ncp : K;
    int64_t o0 = ob * pl->orow, o1 = o0 + pl->orow < c->O ? o0 + pl->orow : c->O;
    int64_t n0 = g * c->N / pl->nk, n1 = (g + 1) * c->N / pl->nk;
    /* one group: straight into gw (alpha = scale); several: into the group's partials */
    float *C = pl->nk > 1 ? t->parts + g * OK : t->gw;
    float alpha = pl->nk > 1 ? 1.0f : t->scale;
    int acc = pl->nk > 1 ? 0 : 1;
    if (o0 >= o1 || j0 >= j1) continue;
    for (int64_t n = n0; n < n1; n++) {
      const float *xn = t->x + n * c->C * c->H * c->W, *gyn = t->gy + n * c->O * P;
      for (int64_t p0 = 0; p0 < P; p0 += pl->kcw) {
        int64_t p1 = p0 + pl->kcw < P ? p0 + pl->kcw : P, S = p1 - p0;
        if (fast1x1)
          gw_pack1x1_avx512(c, xn, p0, p1, j0, j1, pack);
        else
          gw_pack_generic(c, xn, p0, p1, j0, j1, pack);
        for (int64_t s0 = j0; s0 < j1; s0 += 32)
          ac_gemm_nn(o1 - o0, j1 - s0 < 32 ? j1 - s0 : 32, S, alpha, gyn + o0 * P + p0, P,
                     pack + ((s0 - j0) / 32) * S * 32, 32, acc, C + o0 * K + s0, K);
        acc = 1;
      }
    }
  }
}

/* ======================================================================
 * small dense convolutions (mini-Xception's first two layers): stride 1,
 * no padding, kw == 3, output channels a multiple of 8 up to 32. Direct
 * AVX-512 loops: 8 output channels x 16 columns per step for the forward,
 * 8 output channels x 3 taps per step for the weight gradient (per-thread
 * partial sums), 8 input channels x 16 columns for the input gradient
 * (when C % 8 == 0; otherwise the im2col path).
 * ====================================================================== */

static int is_small_dense_shape(const ac_conv2d_cfg *c) {
  return c->groups == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 && c->pb == 0 &&
         c->pr == 0 && c->kw == 3 && c->kh >= 1 && c->kh <= 7 && c->O % 8 == 0 && c->O <= 32;
}

static int is_small_dense(const ac_conv2d_cfg *c) { return is_small_dense_shape(c) && use_avx512(); }

__attribute__((target("avx512f"))) static void sd_forward_row(const ac_conv2d_cfg *c, float *yn,
                                                               const float *xn, const float *w,
                                                               const float *b, int64_t oh) {
  const int64_t H = c->H, W = c->W, OW = c->OW, OP = c->OH * c->OW, C = c->C, kh = c->kh;
  const int64_t KK = C * kh * 3;
  for (int64_t o0 = 0; o0 < c->O; o0 += 8) {
    for (int64_t w0 = 0; w0 < OW; w0 += 16) {
      __mmask16 m = lanes(OW - w0);
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
  const __mmask16 mt = lanes(OW - full);
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
      __mmask16 mw = lanes(W - w0);
      __m512 acc[8];
      for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
      for (int64_t i = 0; i < kh; i++) {
        int64_t oh = h - i;
        if (oh < 0 || oh >= OH) continue;
        for (int64_t j = 0; j < 3; j++) {
          /* lane l reads gy column w0 + l - j, valid when it lies in [0, OW) */
          int64_t lo = j - w0 > 0 ? j - w0 : 0, hi = OW + j - w0; /* lanes [lo, hi) */
          __mmask16 m = (__mmask16)(mw & lanes(hi) & ~lanes(lo));
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
  g1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->H, h = q % c->H;
    sd_backward_input_row(c, t->gx + n * c->C * c->H * c->W, t->gy + n * c->O * c->OH * c->OW,
                          t->w, h);
  }
}

static void sd_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  g1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  for (int64_t q = begin; q < end; q++) {
    int64_t n = q / c->OH, oh = q % c->OH;
    sd_forward_row(c, t->y + n * c->O * c->OH * c->OW, t->x + n * c->C * c->H * c->W, t->w, t->b,
                   oh);
  }
}

static void sd_params_task(void *vctx, int64_t begin, int64_t end, int tid) {
  g1_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  for (int64_t n = begin; n < end; n++)
    sd_params_sample(c, t->parts + tid * t->partsz, t->x + n * c->C * c->H * c->W,
                     t->gy + n * c->O * c->OH * c->OW);
}

/* ======================================================================
 * public entry points
 * ====================================================================== */

int ac_convfast_supports(const ac_conv2d_cfg *c) {
  if (c->OH < 1 || c->OW < 1) return 0;
  if (is_dw3(c)) return 1;
  return c->groups == 1;
}

int ac_convfast_preferred(const ac_conv2d_cfg *c) {
  if (!enabled || !ac_convfast_supports(c)) return 0;
  if (is_dw3(c) || (c->kh == 1 && c->kw == 1) || is_small_dense(c)) return 1;
  /* dense k x k: with fewer than 16 output channels the GEMM has a single
   * short row block and the im2col copy dominates; the wide-chunk path wins */
  return c->O >= 16;
}

/* Per-thread scratch of the forward / input-gradient tasks: an im2col strip,
 * or for a direct 1x1 one packed K block of B (gemm_strip). */
static int64_t g1_colsz(const ac_conv2d_cfg *c) {
  if (is_direct1x1(c)) return GEMM_KC * ((strip_width(c) + 31) / 32 * 32);
  return c->C * c->kh * c->kw * strip_width(c);
}

/* Scratch: per-thread im2col strips (forward, input gradient; none for a
 * direct 1x1), per-thread partial sums (small dense kernels' weight
 * gradient), or per-thread packed columns + the sample groups' partial sums
 * (the weight-gradient GEMM). */
int64_t ac_convfast_workspace(const ac_conv2d_cfg *c) {
  if (!ac_convfast_supports(c) || is_dw3(c)) return 0;
  int64_t nt = ac_get_num_threads(), OK = c->O * c->C * c->kh * c->kw;
  int64_t need = nt * g1_colsz(c);
  /* both weight-gradient paths: the dispatch (forced generic in tests) picks one per call */
  if (is_small_dense_shape(c) && need < nt * OK) need = nt * OK;
  gw_plan pl;
  gw_plan_for(c, &pl);
  int64_t g = nt * gw_packsz(&pl) + (pl.nk > 1 ? pl.nk * OK : 0);
  return need > g ? need : g;
}

static int check(const ac_conv2d_cfg *c, const float *ws) {
  if (!ac_convfast_supports(c)) return ac_fail("conv2d (fast): configuration not supported");
  if (!is_dw3(c) && ws == NULL) return ac_fail("conv2d (fast): missing workspace");
  return 0;
}

int ac_convfast_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                        const float *b, float *ws) {
  if (check(c, ws)) return -1;
  if (is_dw3(c)) {
    dw3_ctx t = {c, y, NULL, NULL, x, NULL, w, b, 1.0f, 0};
    ac_parallel_for(c->N * c->C, grain_for(9 * c->H * c->W), dw3_planes_task, &t);
    return 0;
  }
  int64_t K = c->C * c->kh * c->kw, nt = ac_get_num_threads();
  g1_ctx t = {c, x, w, b, NULL, NULL, y, NULL, ws, NULL, nstrips(c), g1_colsz(c), 0,
              strip_width(c), 1, c->O};
  (void)nt;
  if (is_small_dense(c)) {
    ac_parallel_for(c->N * c->OH, grain_for(c->O * K * c->OW), sd_forward_task, &t);
    return 0;
  }
  if (is_direct1x1(c)) row_blocks(&t, c->O);
  ac_parallel_for(c->N * t.nstrip * t.nob, grain_for(t.ob * K * t.sw), g1_forward_task, &t);
  return 0;
}

int ac_convfast_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy,
                               const float *w, float *ws) {
  if (check(c, ws)) return -1;
  if (is_dw3(c)) {
    dw3_ctx t = {c, gx, NULL, NULL, gy, NULL, w, NULL, 1.0f, 1};
    ac_parallel_for(c->N * c->C, grain_for(9 * c->H * c->W), dw3_planes_task, &t);
    return 0;
  }
  int64_t K = c->C * c->kh * c->kw;
  const float *wt = NULL; /* W is read transposed by the TN GEMM: no copy */
  g1_ctx t = {c, NULL, w, NULL, gy, wt, NULL, gx, ws, NULL, nstrips(c), g1_colsz(c), 0,
              strip_width(c), 1, K};
  if (is_small_dense(c) && c->C % 8 == 0) {
    ac_parallel_for(c->N * c->H, grain_for(c->O * K * c->W), sd_backward_input_task, &t);
    return 0;
  }
  if (is_direct1x1(c)) {
    row_blocks(&t, K);
    ac_parallel_for(c->N * t.nstrip * t.nob, grain_for(t.ob * c->O * t.sw), g1_backward_input_task, &t);
  }
  else
    ac_parallel_for(c->N, 1, g1_backward_input_task, &t);
  return 0;
}

int ac_convfast_fused_backward_ok(const ac_conv2d_cfg *c) {
  return c->path == AC_CONV_FAST && is_dw3(c);
}

int ac_convfast_backward_fused(const ac_conv2d_cfg *c, float *gx, float *gw, float *gb,
                               const float *x, const float *gy, const float *w, float scale) {
  if (!is_dw3(c)) return ac_fail("conv2d (fast): fused backward is for depthwise 3x3 \"same\" only");
  dw3_ctx t = {c, gx, gw, gb, gy, x, w, NULL, scale, 1};
  ac_parallel_for(c->C, 1, dw3_params_task, &t);
  return 0;
}

int ac_convfast_backward_params(const ac_conv2d_cfg *c, float *gw, float *gb, const float *x,
                                const float *gy, float scale, float *ws) {
  if (check(c, ws)) return -1;
  int64_t P = c->OH * c->OW;
  if (is_dw3(c)) {
    dw3_ctx t = {c, NULL, gw, gb, gy, x, NULL, NULL, scale, 0};
    ac_parallel_for(c->C, 1, dw3_params_task, &t);
    return 0;
  }
  int64_t K = c->C * c->kh * c->kw, nt = ac_get_num_threads(), OK = c->O * K;
  if (is_small_dense(c)) {
    float *parts = ws;
    memset(parts, 0, sizeof(float) * (size_t)(nt * OK));
    g1_ctx t = {c, x, NULL, NULL, gy, NULL, NULL, NULL, NULL, parts, nstrips(c), g1_colsz(c), OK,
                strip_width(c), 1, c->O};
    ac_parallel_for(c->N, 1, sd_params_task, &t);
    for (int64_t e = 0; e < OK; e++) {
      float s = 0.0f;
      for (int64_t th = 0; th < nt; th++) s += parts[th * OK + e];
      gw[e] += scale * s;
    }
  } else {
    gw_ctx t = {c, x, gy, gw, NULL, ws, scale, {0}};
    gw_plan_for(c, &t.pl);
    t.parts = ws + nt * gw_packsz(&t.pl);
    int64_t tasks = t.pl.nk * t.pl.no * t.pl.nc;
    int64_t per = t.pl.orow * t.pl.ncp * P * (c->N / t.pl.nk);
    ac_parallel_for(tasks, per >= 65536 ? 1 : (65536 + per - 1) / per, gw_task, &t);
    if (t.pl.nk > 1)
      for (int64_t e = 0; e < OK; e++) {
        float s = 0.0f;
        for (int64_t g = 0; g < t.pl.nk; g++) s += t.parts[g * OK + e];
        gw[e] += scale * s;
      }
  }
  if (gb)
    for (int64_t o = 0; o < c->O; o++) {
      double acc = 0;
      for (int64_t n = 0; n < c->N; n++) {
        const float *g = gy + (n * c->O + o) * P;
        for (int64_t p = 0; p < P; p++) acc += g[p];
      }
      gb[o] += scale * (float)acc;
    }
  return 0;
}
