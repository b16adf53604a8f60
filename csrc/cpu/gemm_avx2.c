/*
 * gemm_avx2.c - the GEMM's AVX2 + FMA path (gemm.c dispatches here when the
 * CPU has AVX2 but not AVX-512, or when a test caps the level at "avx2").
 *
 * Micro-kernel: up to 6 rows of A x 16 columns of B (two 8-float vectors),
 * 12 accumulators, K in blocks of ac_gemm_kc(). Columns come in strips of 16;
 * a ragged last strip is copied, zero-padded, into a [kc][16] buffer and its
 * C tile goes through a [6][16] buffer, so the kernel never reads or
 * writes past the matrices (AVX2 has no cheap masked accesses). With B
 * given transposed (nt), each 16-row block of B is transposed into such a
 * buffer once per K block and shared by every row block of A; at most 4
 * rows of A run as dot products instead. Each C element sums its K block
 * in k order, the blocks in order: the result does not depend on threads.
 */
#include <string.h>
#include <immintrin.h>
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"

#define MR2 6  /* rows of A per micro-kernel call */
#define NR2 16 /* columns of B per micro-kernel call */

/* C[r][0:16] (+)= alpha * sum_k A(r, k) B[k][0:16] for r < R; AIDX is the
 * index of A(r, k): r * lda + k, or k * lda + r when A is given transposed. */
#define DEF_MK256(NAME, R, AIDX)                                                              \
  __attribute__((target("avx2,fma"))) static void NAME##_##R(                                 \
      int64_t kc, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,          \
      int64_t ldc, float alpha, int acc) {                                                     \
    __m256 c0[R], c1[R];                                                                      \
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {                                     \
      c0[r] = _mm256_setzero_ps();                                                            \
      c1[r] = _mm256_setzero_ps();                                                            \
    }                                                                                         \
    for (int64_t k = 0; k < kc; k++) {                                                        \
      __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);        \
      _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {                                   \
        __m256 a = _mm256_broadcast_ss(A + (AIDX));                                           \
        c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);                                                \
        c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);                                                \
      }                                                                                       \
    }                                                                                         \
    __m256 va = _mm256_set1_ps(alpha);                                                        \
    _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {                                     \
      float *cr = C + r * ldc;                                                                \
      __m256 v0 = _mm256_mul_ps(va, c0[r]), v1 = _mm256_mul_ps(va, c1[r]);                    \
      if (acc) {                                                                              \
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));                                          \
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));                                      \
      }                                                                                       \
      _mm256_storeu_ps(cr, v0);                                                               \
      _mm256_storeu_ps(cr + 8, v1);                                                           \
    }                                                                                         \
  }
#define DEF_MK256_BOTH(R) DEF_MK256(mk256, R, r * lda + k) DEF_MK256(mk256t, R, k * lda + r)
DEF_MK256_BOTH(1)
DEF_MK256_BOTH(2)
DEF_MK256_BOTH(3)
DEF_MK256_BOTH(4)
DEF_MK256_BOTH(5)
DEF_MK256_BOTH(6)

typedef void (*mk256_fn)(int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t,
                         float, int);
static const mk256_fn mk256[MR2 + 1] = {NULL, mk256_1, mk256_2, mk256_3, mk256_4, mk256_5, mk256_6};
static const mk256_fn mk256t[MR2 + 1] = {NULL,     mk256t_1, mk256t_2, mk256t_3,
                                         mk256t_4, mk256t_5, mk256t_6};

/* One kernel call on a strip of w <= 16 columns: straight when w == 16 (B
 * at b with row stride ldb), else through the zero-padded copy `pad`
 * ([kc][16], filled by the caller) and a C tile. */
static void strip_call(mk256_fn f, int64_t mr, int64_t kc, const float *Ab, int64_t lda,
                       const float *b, int64_t ldb, const float *pad, float *C, int64_t ldc,
                       int64_t w, float alpha, int acc) {
  if (w == NR2) {
    f(kc, Ab, lda, b, ldb, C, ldc, alpha, acc);
    return;
  }
  float tile[MR2 * NR2];
  for (int64_t r = 0; r < mr; r++)
    for (int64_t j = 0; j < NR2; j++) tile[r * NR2 + j] = acc && j < w ? C[r * ldc + j] : 0.0f;
  f(kc, Ab, lda, pad, NR2, tile, NR2, alpha, acc);
  for (int64_t r = 0; r < mr; r++) memcpy(C + r * ldc, tile + r * NR2, sizeof(float) * (size_t)w);
}

/* pad[k][j] = B[k][j] for j < w, 0 beyond (k < kc). */
static void pad_rows(float *pad, const float *B, int64_t ldb, int64_t kc, int64_t w) {
  for (int64_t k = 0; k < kc; k++)
    for (int64_t j = 0; j < NR2; j++) pad[k * NR2 + j] = j < w ? B[k * ldb + j] : 0.0f;
}

/* pad[k][j] = B[j][k0 + k] for j < w (B given as [N, K]), 0 beyond. */
static void pad_cols(float *pad, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t w) {
  for (int64_t j = 0; j < NR2; j++)
    for (int64_t k = 0; k < kc; k++) pad[k * NR2 + j] = j < w ? B[j * ldb + k0 + k] : 0.0f;
}

/* nn (ta 0) and tn (ta 1): B panels of ac_gemm_nc() columns, K blocks, row
 * blocks of A, 16-column strips (the ragged one padded once per K block). */
static void gemm_n_avx2(int ta, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, int beta, float *C,
                        int64_t ldc) {
  const mk256_fn *mk = ta ? mk256t : mk256;
  const int64_t KC = ac_gemm_kc(), NC = ac_gemm_nc();
  float pad[AC_GEMM_KC_MAX * NR2];
  for (int64_t c0 = 0; c0 < N; c0 += NC) {
    int64_t c1 = N - c0 < NC ? N : c0 + NC;
    int64_t rag = (c1 - c0) % NR2, cm = c1 - rag;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int64_t kc = K - k0 < KC ? K - k0 : KC;
      int acc = beta || k0 > 0;
      if (rag) pad_rows(pad, B + k0 * ldb + cm, ldb, kc, rag);
      for (int64_t i0 = 0; i0 < M; i0 += MR2) {
        int64_t mr = M - i0 < MR2 ? M - i0 : MR2;
        const float *Ab = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
        for (int64_t n0 = c0; n0 < c1; n0 += NR2) {
          int64_t w = c1 - n0 < NR2 ? c1 - n0 : NR2;
          strip_call(mk[mr], mr, kc, Ab, lda, B + k0 * ldb + n0, ldb, pad, C + i0 * ldc + n0, ldc,
                     w, alpha, acc);
        }
      }
    }
  }
}

/* Dot product of two rows of K floats (8 lanes x 2 accumulators, then the tail). */
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b,
                                                           int64_t K) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
  }
  if (k + 8 <= K) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    k += 8;
  }
  __m256 s = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  for (; k < K; k++) r += a[k] * b[k];
  return r;
}

/* nt: B is [N, K]. At most 4 rows of A (batch-1 Linear): dot products;
 * otherwise each 16-row block of B transposed per K block, then the nn
 * kernel for every row block of A. */
static void gemm_nt_avx2(int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, const float *B, int64_t ldb, int beta, float *C,
                         int64_t ldc) {
  if (M <= 4) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        float *c = C + i * ldc + j;
        *c = alpha * dot_avx2(A + i * lda, B + j * ldb, K) + (beta ? *c : 0.0f);
      }
    return;
  }
  const int64_t KC = ac_gemm_kc();
  float pad[AC_GEMM_KC_MAX * NR2];
  for (int64_t n0 = 0; n0 < N; n0 += NR2) {
    int64_t w = N - n0 < NR2 ? N - n0 : NR2;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int64_t kc = K - k0 < KC ? K - k0 : KC;
      int acc = beta || k0 > 0;
      pad_cols(pad, B + n0 * ldb, ldb, k0, kc, w);
      for (int64_t i0 = 0; i0 < M; i0 += MR2) {
        int64_t mr = M - i0 < MR2 ? M - i0 : MR2;
        float *Cb = C + i0 * ldc + n0;
        if (w == NR2)
          mk256[mr](kc, A + i0 * lda + k0, lda, pad, NR2, Cb, ldc, alpha, acc);
        else
          strip_call(mk256[mr], mr, kc, A + i0 * lda + k0, lda, pad, NR2, pad, Cb, ldc, w, alpha,
                     acc);
      }
    }
  }
}

void ac_gemm_avx2(int form, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc) {
  if (form == 2)
    gemm_nt_avx2(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_n_avx2(form, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
