/*
 * gemm.h - the library's single-precision GEMM, with run-time dispatch
 * (cpu/cpu.h): register-blocked AVX-512 micro-kernels, else portable loops.
 * Linear, the Ad-Corre loss and the convolution kernels call it.
 *
 * All matrices are row-major with leading dimensions lda, ldb, ldc; beta is
 * 0 (C is overwritten) or 1 (C accumulates). Results do not depend on the
 * thread count: the parallel form splits C into blocks and each block runs
 * the serial kernel with the same K order.
 *
 *   ac_gemm_nn(M, N, K, 1.0f, A, K, B, N, 0, C, N);   // C = A B
 */
#ifndef AC_GEMM_H
#define AC_GEMM_H
#include <stdint.h>

/* Blocking of the AVX-512 kernels: MR rows of A per micro-kernel call (MRV
 * for the one-vector ragged strip). K runs in blocks of ac_gemm_kc() and B
 * in panels of ac_gemm_nc() columns, both chosen once from the cache sizes
 * (cpu/cpu.h): a 32-column strip of one K block of B fills the L1 data
 * cache (kc = L1d / 128 bytes, a multiple of 64 in [128, AC_GEMM_KC_MAX]),
 * and one K block of a panel a quarter of L2. The K block fixes the order
 * of the sums, so results are the same on any thread count but may differ
 * in the last bits between CPUs with other L1 sizes. */
#define AC_GEMM_MR 8
#define AC_GEMM_MRV 16
#define AC_GEMM_KC_MAX 512
/* Largest N of ac_gemm_strip's packed path (an im2col strip). */
#define AC_GEMM_STRIP_N 256
int64_t ac_gemm_kc(void);
int64_t ac_gemm_nc(void);

/* C[M,N] = alpha * A[M,K] B[K,N] + (beta ? C : 0) (single-threaded). */
void ac_gemm_nn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc);
/* The same with A given transposed: A is [K, M] (lda its row length). */
void ac_gemm_tn(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc);
/* The same with B given transposed: B is [N, K]. */
void ac_gemm_nt(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, int beta, float *C, int64_t ldc);
/* One of the three (trans 0 = nn, 1 = tn, 2 = nt) on the library's thread
 * pool, split over blocks of rows of C (or of columns when C has few rows). */
void ac_gemm_parallel(int trans, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc);

/* C [M, N] = A B (ta: A given as [K, M]) for N <= AC_GEMM_STRIP_N columns whose
 * rows of B lie far apart (an NCHW plane: ldb = H * W). On the AVX-512 path
 * each K block of B is first packed into `pack` (ac_gemm_strip_pack(N)
 * floats, may be NULL: then no packing); otherwise the plain kernels. */
void ac_gemm_strip(int ta, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float *C, int64_t ldc, float *pack);
/* Floats of ac_gemm_strip's packing buffer for N columns. */
int64_t ac_gemm_strip_pack(int64_t N);

/* AVX-512 only (call when ac_cpu_use_avx512()): dst[k][j - j0] =
 * src[j][k0 + k] for rows j in [j0, j1) (at most 32) and k in [0, kc): a
 * block of rows transposed into a [kc][32] strip, lanes beyond j1 - j0
 * zero. The weight-gradient kernels pack 1x1 inputs with it. */
void ac_gemm_pack_t32_avx512(const float *src, int64_t ld, int64_t j0, int64_t j1, int64_t k0,
                             int64_t kc, float *dst);

#endif
