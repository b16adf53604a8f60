/*
 * simd.h - small helpers shared by the AVX-512 kernels of csrc/cpu/.
 * Internal to the kernels: callers dispatch on cpu/cpu.h first.
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

#endif
