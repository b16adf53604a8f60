/*
 * simd.h - small helpers shared by the AVX-512 and AVX2 kernels of csrc/cpu/
 * and csrc/nn/. Internal to the kernels: callers dispatch on cpu/cpu.h first.
 */
#ifndef AC_SIMD_H
#define AC_SIMD_H
#include <stdint.h>
#include <immintrin.h>

/* The mask of the first n lanes of a 16-float vector (0 <= result <= 0xFFFF). */
static inline __mmask16 ac_lanes16(int64_t n) {
  if (n <= 0) return 0;
  if (n >= 16) return (__mmask16)0xFFFF;
  return (__mmask16)((1u << n) - 1u);
}

/* AVX2: the mask of the first n lanes of an 8-float vector (all bits set in
 * a lane that is on), for _mm256_maskload_ps / _mm256_maskstore_ps, which
 * neither read nor fault on the lanes that are off. */
__attribute__((target("avx2"))) static inline __m256i ac_lanes8(int64_t n) {
  static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_loadu_si256((const __m256i *)(tbl + 8 - n));
}

/* AVX2: the sum of the 8 lanes (pairwise: lanes i and i + 4, then halves). */
__attribute__((target("avx2"))) static inline float ac_hsum8(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

#endif
