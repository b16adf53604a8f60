/*
 * gemm_kernels.h - the per-ISA GEMM paths behind gemm.h; internal to
 * csrc/cpu/ (gemm.c dispatches, after handling empty products).
 * form: 0 = nn, 1 = tn (A given [K, M]), 2 = nt (B given [N, K]);
 * M, N, K > 0; beta 0 or 1.
 */
#ifndef AC_GEMM_KERNELS_H
#define AC_GEMM_KERNELS_H
#include <stdint.h>

void ac_gemm_avx2(int form, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, int beta, float *C, int64_t ldc);

#endif
