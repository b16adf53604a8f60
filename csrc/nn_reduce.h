/*
 * nn_reduce.h - float reductions for the nn kernels with eight independent
 * partial sums, so that the compiler can vectorise them without
 * -ffast-math (a single running sum is a serial dependency chain). The
 * summation order is fixed, so results do not depend on thread counts.
 */
#ifndef AC_NN_REDUCE_H
#define AC_NN_REDUCE_H
#include <stdint.h>

/* sum x[i] */
static inline float nn_sum(const float *x, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) s[k] += x[i + k];
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) r += x[i];
  return r;
}

/* sum x[i] * y[i] */
static inline float nn_dot(const float *x, const float *y, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) s[k] += x[i + k] * y[i + k];
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) r += x[i] * y[i];
  return r;
}

/* sum (x[i] - m)^2 */
static inline float nn_sqdev(const float *x, float m, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) {
      float d = x[i + k] - m;
      s[k] += d * d;
    }
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) r += (x[i] - m) * (x[i] - m);
  return r;
}

/* sum g[i] * (x[i] - m) */
static inline float nn_dotdev(const float *g, const float *x, float m, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) s[k] += g[i + k] * (x[i + k] - m);
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) r += g[i] * (x[i] - m);
  return r;
}

#endif
