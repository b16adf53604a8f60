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

/* *s1 = sum (x[i] - m), *s2 = sum (x[i] - m)^2 in one pass */
static inline void nn_sum_sq(const float *x, float m, int64_t n, float *s1, float *s2) {
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) {
      float d = x[i + k] - m;
      a[k] += d;
      b[k] += d * d;
    }
  float ra = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  float rb = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  for (; i < n; i++) {
    float d = x[i] - m;
    ra += d;
    rb += d * d;
  }
  *s1 = ra;
  *s2 = rb;
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
