/*
 * gemm.c - single-precision GEMM (see gemm.h): an AVX-512 path of
 * register-blocked micro-kernels picked at run time, the AVX2 path of
 * gemm_avx2.c, and portable loops.
 *
 * Micro-kernel: MR = 8 rows of A x 32 columns of B per call, 16
 * accumulators, K in blocks of 256 so that the 256 x 32 panel of B stays in
 * L1 while the rows of A stream through; masked loads and stores for the
 * last columns, so any N works without padding copies. A ragged last strip
 * of at most 16 columns runs a one-vector kernel over up to 16 rows.
 */
#include <string.h>
#include <immintrin.h>
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"
#include "cpu/cpu.h"
#include "cpu/simd.h"
#include "core/parallel.h"

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

/* MR x 32 micro-kernel: C[r][0:32] (+)= alpha * sum_k A(r, k) B[k][0:32] for
 * r < R, columns masked by m0 (first 16) and m1 (next 16). AIDX is the
 * index of A's element (row r, column k): r * lda + k, or k * lda + r when
 * A is given transposed. */
#define DEF_MK512(NAME, R, AIDX)                                                               \
  __attribute__((target("avx512f"))) static void NAME##_##R(                                   \
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
        __m512 a = _mm512_set1_ps(A[AIDX]);                                                    \
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
#define DEF_MK512_BOTH(R) DEF_MK512(mk512, R, r * lda + k) DEF_MK512(mk512t, R, k * lda + r)
DEF_MK512_BOTH(1)
DEF_MK512_BOTH(2)
DEF_MK512_BOTH(3)
DEF_MK512_BOTH(4)
DEF_MK512_BOTH(5)
DEF_MK512_BOTH(6)
DEF_MK512_BOTH(7)
DEF_MK512_BOTH(8)

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
static const mk512_fn mk512[AC_GEMM_MR + 1] = {NULL,     mk512_1, mk512_2, mk512_3, mk512_4,
                                            mk512_5, mk512_6, mk512_7, mk512_8};
static const mk512_fn mk512t[AC_GEMM_MR + 1] = {NULL,      mk512t_1, mk512t_2, mk512t_3, mk512t_4,
                                             mk512t_5, mk512t_6, mk512t_7, mk512t_8};
static const mk512_fn mk512v[AC_GEMM_MRV + 1] = {
    NULL,       mk512v_1,   mk512v_2,   mk512v_3,   mk512v_4,  mk512v_5,
    mk512v_6,   mk512v_7,   mk512v_8,   mk512v_9,   mk512v_10, mk512v_11,
    mk512v_12,  mk512v_13,  mk512v_14,  mk512v_15,  mk512v_16};
static const mk512_fn mk512vt[AC_GEMM_MRV + 1] = {
    NULL,       mk512vt_1,  mk512vt_2,  mk512vt_3,  mk512vt_4,  mk512vt_5,
    mk512vt_6,  mk512vt_7,  mk512vt_8,  mk512vt_9,  mk512vt_10, mk512vt_11,
    mk512vt_12, mk512vt_13, mk512vt_14, mk512vt_15, mk512vt_16};

static void gemm_avx512(int ta, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  const int64_t KC = ac_gemm_kc(), NC = ac_gemm_nc();
  const mk512_fn *mk = ta ? mk512t : mk512, *mkv = ta ? mk512vt : mk512v;
  /* 256-column panels of B; in each, k blocks of 256, then 8-row blocks of A
   * (8 x 256 floats, L1-resident), then 32-column strips: the 256 x 256
   * block of B (256 KB) stays in L2 across the row blocks. A last strip of
   * at most 16 columns runs separately, 16 rows at a time, one vector wide. */
  for (int64_t c0 = 0; c0 < N; c0 += NC) {
    int64_t c1 = N - c0 < NC ? N : c0 + NC;
    int64_t rag = (c1 - c0) % 32 <= 16 ? (c1 - c0) % 32 : 0; /* one-vector last strip */
    int64_t cm = c1 - rag;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int64_t kc = K - k0 < KC ? K - k0 : KC;
      int acc = beta || k0 > 0;
      if (cm > c0)
        for (int64_t i0 = 0; i0 < M; i0 += AC_GEMM_MR) {
          int64_t mr = M - i0 < AC_GEMM_MR ? M - i0 : AC_GEMM_MR;
          const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
          for (int64_t n0 = c0; n0 < cm; n0 += 32) {
            int64_t w = cm - n0 < 32 ? cm - n0 : 32;
            mk[mr](kc, Ab, lda, B + k0 * ldb + n0, ldb, C + i0 * ldc + n0, ldc, ac_lanes16(w),
                   ac_lanes16(w - 16), alpha, acc);
          }
        }
      if (rag)
        for (int64_t i0 = 0; i0 < M; i0 += AC_GEMM_MRV) {
          int64_t mr = M - i0 < AC_GEMM_MRV ? M - i0 : AC_GEMM_MRV;
          const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
          mkv[mr](kc, Ab, lda, B + k0 * ldb + cm, ldb, C + i0 * ldc + cm, ldc, ac_lanes16(rag), 0,
                  alpha, acc);
        }
    }
  }
}

/* The same for at most AC_GEMM_STRIP_N columns whose B rows lie far apart (an NCHW
 * plane of a convolution: ldb = H * W, a new page every row or two): each
 * K block of B is first copied into `pack` as contiguous [32-column
 * strip][kc][32] (kc x N floats, L2-resident, unit-stride for the
 * micro-kernel and its prefetchers), then run as gemm_avx512 does. pack
 * holds ac_gemm_kc() * ceil(N / 32) * 32 floats. */
__attribute__((target("avx512f"))) static void gemm_avx512_packb(
    int ta, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
    int64_t ldb, float *C, int64_t ldc, float *pack) {
  const int64_t KC = ac_gemm_kc();
  const mk512_fn *mk = ta ? mk512t : mk512, *mkv = ta ? mk512vt : mk512v;
  int64_t rag = N % 32 <= 16 ? N % 32 : 0, cm = N - rag;
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    int64_t kc = K - k0 < KC ? K - k0 : KC;
    int acc = k0 > 0;
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
      int64_t w = N - n0 < 32 ? N - n0 : 32;
      __mmask16 m0 = ac_lanes16(w), m1 = ac_lanes16(w - 16);
      float *d = pack + (n0 / 32) * kc * 32;
      const float *b = B + k0 * ldb + n0;
      for (int64_t k = 0; k < kc; k++) {
        _mm512_storeu_ps(d + k * 32, _mm512_maskz_loadu_ps(m0, b + k * ldb));
        _mm512_storeu_ps(d + k * 32 + 16, _mm512_maskz_loadu_ps(m1, b + k * ldb + 16));
      }
    }
    if (cm > 0)
      for (int64_t i0 = 0; i0 < M; i0 += AC_GEMM_MR) {
        int64_t mr = M - i0 < AC_GEMM_MR ? M - i0 : AC_GEMM_MR;
        const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
        for (int64_t n0 = 0; n0 < cm; n0 += 32) {
          int64_t w = cm - n0 < 32 ? cm - n0 : 32;
          mk[mr](kc, Ab, lda, pack + (n0 / 32) * kc * 32, 32, C + i0 * ldc + n0, ldc, ac_lanes16(w),
                 ac_lanes16(w - 16), 1.0f, acc);
        }
      }
    if (rag)
      for (int64_t i0 = 0; i0 < M; i0 += AC_GEMM_MRV) {
        int64_t mr = M - i0 < AC_GEMM_MRV ? M - i0 : AC_GEMM_MRV;
        const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
        mkv[mr](kc, Ab, lda, pack + (cm / 32) * kc * 32, 32, C + i0 * ldc + cm, ldc, ac_lanes16(rag), 0,
                1.0f, acc);
      }
  }
}

int64_t ac_gemm_kc(void) {
  static int64_t kc = 0;
  if (!kc) {
    int64_t v = ac_cpu_l1d_bytes() / (32 * (int64_t)sizeof(float)) / 64 * 64;
    kc = v < 128 ? 128 : v > AC_GEMM_KC_MAX ? AC_GEMM_KC_MAX : v;
  }
  return kc;
}

int64_t ac_gemm_nc(void) {
  static int64_t nc = 0;
  if (!nc) {
    int64_t v = ac_cpu_l2_bytes() / 4 / (ac_gemm_kc() * (int64_t)sizeof(float)) / 32 * 32;
    nc = v < 128 ? 128 : v > 4096 ? 4096 : v;
  }
  return nc;
}

int64_t ac_gemm_strip_pack(int64_t N) { return ac_gemm_kc() * ((N + 31) / 32 * 32); }

/* C [M, N] = A B (ta: A given as [K, M]) for N <= AC_GEMM_STRIP_N, B packed through
 * `pack` on the AVX-512 path (see gemm_avx512_packb); plain otherwise. */
void ac_gemm_strip(int ta, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float *C, int64_t ldc, float *pack) {
  if (M <= 0 || N <= 0) return;
  if (ac_cpu_use_avx512() && K > 0 && N <= AC_GEMM_STRIP_N && pack)
    gemm_avx512_packb(ta, M, N, K, A, lda, B, ldb, C, ldc, pack);
  else if (ta)
    ac_gemm_tn(M, N, K, 1.0f, A, lda, B, ldb, 0, C, ldc);
  else
    ac_gemm_nn(M, N, K, 1.0f, A, lda, B, ldb, 0, C, ldc);
}

/* 1 when there is nothing to multiply (an empty C, or K == 0: C = beta C). */
static int gemm_empty(int64_t M, int64_t N, int64_t K, int beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return 1;
  if (K > 0) return 0;
  if (!beta)
    for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * (size_t)N);
  return 1;
}

/* ac_gemm_nn (ta 0) and ac_gemm_tn (ta 1) */
static void gemm_n(int ta, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (gemm_empty(M, N, K, beta, C, ldc)) return;
  ac_isa isa = ac_cpu_isa();
  if (isa >= AC_ISA_AVX512)
    gemm_avx512(ta, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (isa == AC_ISA_AVX2)
    ac_gemm_avx2(ta, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_generic(ta, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ac_gemm_nn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  gemm_n(0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ac_gemm_tn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  gemm_n(1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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

/* r[i][j] <- r[j][i]: a 16 x 16 transpose in registers. */
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
      __mmask16 m = ac_lanes16(nq);
      __m512 r[16];
      for (int64_t i = 0; i < 16; i++)
        r[i] = i < nj ? _mm512_maskz_loadu_ps(m, src + (h + i) * ld + k0 + q0) : _mm512_setzero_ps();
      tr16_avx512(r);
      for (int64_t q = 0; q < nq; q++) _mm512_storeu_ps(d + (q0 + q) * 32, r[q]);
    }
  }
}

void ac_gemm_pack_t32_avx512(const float *src, int64_t ld, int64_t j0, int64_t j1, int64_t k0,
                             int64_t kc, float *dst) {
  pack_t32_avx512(src, ld, j0, j1, k0, kc, dst);
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
      __mmask16 m = ac_lanes16(K - k);
      __m512 a = _mm512_maskz_loadu_ps(m, A + k);
      /* row j0 + r goes to acc[(r % 4) * 4 + r / 4], so lane r of the sum is row r */
      for (int r = 0; r < 16; r++)
        if (r < nj)
          acc[(r % 4) * 4 + r / 4] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, B + (j0 + r) * ldb + k),
                                                     acc[(r % 4) * 4 + r / 4]);
    }
    __mmask16 mj = ac_lanes16(nj);
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
        __mmask16 m = ac_lanes16(K - k);
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
  const int64_t KC = ac_gemm_kc();
  if (M == 1) {
    gemv_nt_avx512(N, K, alpha, A, B, ldb, beta, C);
    return;
  }
  if (M <= 4) {
    gemm_nt_dot_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  float strip[AC_GEMM_KC_MAX * 32] __attribute__((aligned(64)));
  for (int64_t n0 = 0; n0 < N; n0 += 32) {
    int64_t w = N - n0 < 32 ? N - n0 : 32;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int64_t kc = K - k0 < KC ? K - k0 : KC;
      int acc = beta || k0 > 0;
      pack_t32_avx512(B, ldb, n0, n0 + w, k0, kc, strip);
      if (w > 16)
        for (int64_t i0 = 0; i0 < M; i0 += AC_GEMM_MR) {
          int64_t mr = M - i0 < AC_GEMM_MR ? M - i0 : AC_GEMM_MR;
          mk512[mr](kc, A + i0 * lda + k0, lda, strip, 32, C + i0 * ldc + n0, ldc, ac_lanes16(w),
                    ac_lanes16(w - 16), alpha, acc);
        }
      else
        for (int64_t i0 = 0; i0 < M; i0 += AC_GEMM_MRV) {
          int64_t mr = M - i0 < AC_GEMM_MRV ? M - i0 : AC_GEMM_MRV;
          mk512v[mr](kc, A + i0 * lda + k0, lda, strip, 32, C + i0 * ldc + n0, ldc, ac_lanes16(w), 0,
                     alpha, acc);
        }
    }
  }
}

void ac_gemm_nt(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (gemm_empty(M, N, K, beta, C, ldc)) return;
  ac_isa isa = ac_cpu_isa();
  if (isa >= AC_ISA_AVX512)
    gemm_nt_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (isa == AC_ISA_AVX2)
    ac_gemm_avx2(2, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_nt_generic(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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

/* One block of C with the serial kernel of t->kind. */
static void pgemm_block(const pgemm_ctx *t, int64_t M, int64_t N, const float *A, const float *B,
                        float *C) {
  if (t->kind == 0)
    ac_gemm_nn(M, N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta, C, t->ldc);
  else if (t->kind == 1)
    ac_gemm_tn(M, N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta, C, t->ldc);
  else
    ac_gemm_nt(M, N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta, C, t->ldc);
}

static void pgemm_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  pgemm_ctx *t = vctx;
  for (int64_t q = begin; q < end; q++) {
    int64_t i0 = q * t->rows, i1 = i0 + t->rows < t->M ? i0 + t->rows : t->M;
    const float *A = t->kind == 1 ? t->A + i0 : t->A + i0 * t->lda;
    pgemm_block(t, i1 - i0, t->N, A, t->B, t->C + i0 * t->ldc);
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
    pgemm_block(t, t->M, j1 - j0, t->A, B, t->C + j0);
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
