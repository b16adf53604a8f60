/*
 * nn_batchnorm.c - batch normalisation kernels over [N, C, P] (P = H*W for
 * BatchNorm2d, 1 for BatchNorm1d), optionally fused with the ReLU that
 * follows, parallel over channels. Conventions (see doc/nn.md): the batch is
 * normalised with the biased variance; the running variance is updated with
 * the unbiased one, and `momentum` is the weight of the new statistic
 * (PyTorch's convention; Keras' momentum 0.99 corresponds to 0.01 here).
 *
 * Per channel the norm is y = a * x + s (relu: max(a * x + s, 0)) with
 * a = gamma * invstd and s = beta - mean * a, both computed from the saved
 * float mean and invstd by bn_affine(), so that a backward recomputes the
 * ReLU mask (a * x + s > 0) bit for bit from the input instead of reading
 * a stored output or mask: the kernels need only the input, the two [C]
 * statistics and the parameters.
 *
 * Training forward: two passes per channel (shifted sums of x and x^2, float
 * inside a row of P values and double across rows; then the normalisation).
 * Training backward: two passes (sums of the masked gradient g and of
 * g * (x - mean); then gx = k g - u x + v). Each pass is an AVX-512 loop
 * with masked tails when the CPU has it, an AVX2 + FMA loop on CPUs with
 * AVX2 only (run-time dispatch), else a portable loop the compiler
 * vectorises for the build target.
 */
#include <math.h>
#include <immintrin.h>
#include "nn/nn.h"
#include "core/tensor.h"
#include "core/parallel.h"
#include "nn/nn_reduce.h"
#include "cpu/cpu.h"
#include "cpu/simd.h"

/* ---- per-row pieces: portable ---------------------------------------------- */

/* s1 += sum (x - m), s2 += sum (x - m)^2 over one row */
static void row_stats_c(const float *x, float m, int64_t n, double *s1, double *s2) {
  float a, b;
  nn_sum_sq(x, m, n, &a, &b);
  *s1 += a;
  *s2 += b;
}

/* y = a x + s, or max(a x + s, 0) */
static void row_norm_c(float *y, const float *x, float a, float s, int64_t n, int relu) {
  if (relu)
    for (int64_t i = 0; i < n; i++) {
      float z = x[i] * a + s;
      y[i] = z > 0.0f ? z : 0.0f;
    }
  else
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + s;
}

/* with g = relu ? (a x + s > 0 ? gy : 0) : gy:
 * sg += sum g, sgx += sum g * (x - m) */
static void row_gsums_c(const float *gy, const float *x, float m, float a, float s, int64_t n,
                        int relu, double *sg, double *sgx) {
  if (!relu) {
    *sg += nn_sum(gy, n);
    *sgx += nn_dotdev(gy, x, m, n);
    return;
  }
  float p[8] = {0, 0, 0, 0, 0, 0, 0, 0}, q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) {
      float xv = x[i + k], gv = gy[i + k];
      float g = xv * a + s > 0.0f ? gv : 0.0f;
      p[k] += g;
      q[k] += g * (xv - m);
    }
  float rp = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
  float rq = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
  for (; i < n; i++) {
    float g = x[i] * a + s > 0.0f ? gy[i] : 0.0f;
    rp += g;
    rq += g * (x[i] - m);
  }
  *sg += rp;
  *sgx += rq;
}

/* gx = k g - u x + v (g masked as above) */
static void row_gx_c(float *gx, const float *gy, const float *x, float a, float s, float k,
                     float u, float v, int64_t n, int relu) {
  if (relu)
    for (int64_t i = 0; i < n; i++) {
      float xv = x[i], gv = gy[i];
      float g = xv * a + s > 0.0f ? gv : 0.0f;
      gx[i] = k * g - u * xv + v;
    }
  else
    for (int64_t i = 0; i < n; i++) gx[i] = k * gy[i] - u * x[i] + v;
}

/* ---- per-row pieces: AVX-512 ------------------------------------------------- */

#define AVX512 __attribute__((target("avx512f")))

static inline AVX512 __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1u); }

/* the row's float partial sums go to double once per row */
static inline AVX512 double hsum_pd(__m512 v) {
  __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

static AVX512 void row_stats_512(const float *x, float m, int64_t n, double *s1, double *s2) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
    a0 = _mm512_add_ps(a0, d0);
    a1 = _mm512_add_ps(a1, d1);
    b0 = _mm512_fmadd_ps(d0, d0, b0);
    b1 = _mm512_fmadd_ps(d1, d1, b1);
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
    __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vm);
    a0 = _mm512_add_ps(a0, d);
    b0 = _mm512_fmadd_ps(d, d, b0);
  }
  *s1 += hsum_pd(_mm512_add_ps(a0, a1));
  *s2 += hsum_pd(_mm512_add_ps(b0, b1));
}

static AVX512 void row_norm_512(float *y, const float *x, float a, float s, int64_t n, int relu) {
  const __m512 va = _mm512_set1_ps(a), vs = _mm512_set1_ps(s), z = _mm512_setzero_ps();
  int64_t i = 0;
  if (relu) {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(y + i, _mm512_max_ps(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, vs), z));
  } else {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(y + i, _mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, vs));
  }
  if (i < n) {
    __mmask16 k = tail_mask(n - i);
    __m512 r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), va, vs);
    if (relu) r = _mm512_max_ps(r, z);
    _mm512_mask_storeu_ps(y + i, k, r);
  }
}

static AVX512 void row_gsums_512(const float *gy, const float *x, float m, float a, float s,
                                 int64_t n, int relu, double *sg, double *sgx) {
  const __m512 vm = _mm512_set1_ps(m), va = _mm512_set1_ps(a), vs = _mm512_set1_ps(s);
  const __m512 z = _mm512_setzero_ps();
  __m512 p0 = z, p1 = z, q0 = z, q1 = z;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    __m512 g0 = _mm512_loadu_ps(gy + i), g1 = _mm512_loadu_ps(gy + i + 16);
    if (relu) {
      g0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_fmadd_ps(x0, va, vs), z, _CMP_GT_OQ), g0);
      g1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_fmadd_ps(x1, va, vs), z, _CMP_GT_OQ), g1);
    }
    p0 = _mm512_add_ps(p0, g0);
    p1 = _mm512_add_ps(p1, g1);
    q0 = _mm512_fmadd_ps(g0, _mm512_sub_ps(x0, vm), q0);
    q1 = _mm512_fmadd_ps(g1, _mm512_sub_ps(x1, vm), q1);
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
    __m512 x0 = _mm512_maskz_loadu_ps(k, x + i), g0 = _mm512_maskz_loadu_ps(k, gy + i);
    if (relu)
      g0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_fmadd_ps(x0, va, vs), z, _CMP_GT_OQ), g0);
    p0 = _mm512_add_ps(p0, g0);
    q0 = _mm512_fmadd_ps(g0, _mm512_sub_ps(x0, vm), q0);
  }
  *sg += hsum_pd(_mm512_add_ps(p0, p1));
  *sgx += hsum_pd(_mm512_add_ps(q0, q1));
}

static AVX512 void row_gx_512(float *gx, const float *gy, const float *x, float a, float s,
                              float kk, float u, float v, int64_t n, int relu) {
  const __m512 va = _mm512_set1_ps(a), vs = _mm512_set1_ps(s), z = _mm512_setzero_ps();
  const __m512 vk = _mm512_set1_ps(kk), vu = _mm512_set1_ps(-u), vv = _mm512_set1_ps(v);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
    __m512 x0 = _mm512_maskz_loadu_ps(k, x + i), g0 = _mm512_maskz_loadu_ps(k, gy + i);
    if (relu)
      g0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_fmadd_ps(x0, va, vs), z, _CMP_GT_OQ), g0);
    _mm512_mask_storeu_ps(gx + i, k, _mm512_fmadd_ps(vk, g0, _mm512_fmadd_ps(vu, x0, vv)));
  }
}

/* ---- per-row pieces: AVX2 + FMA (8 lanes; ragged ends through masked
 * loads and stores, the same arithmetic as the full vectors) --------------------- */

#define AVX2 __attribute__((target("avx2,fma")))

static inline AVX2 double hsum_pd256(__m256 v) {
  __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

static AVX2 void row_stats_256(const float *x, float m, int64_t n, double *s1, double *s2) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
    a0 = _mm256_add_ps(a0, d0);
    a1 = _mm256_add_ps(a1, d1);
    b0 = _mm256_fmadd_ps(d0, d0, b0);
    b1 = _mm256_fmadd_ps(d1, d1, b1);
  }
  for (; i < n; i += 8) {
    __m256i k = ac_lanes8(n - i);
    __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm), _mm256_castsi256_ps(k));
    a0 = _mm256_add_ps(a0, d);
    b0 = _mm256_fmadd_ps(d, d, b0);
  }
  *s1 += hsum_pd256(_mm256_add_ps(a0, a1));
  *s2 += hsum_pd256(_mm256_add_ps(b0, b1));
}

static AVX2 void row_norm_256(float *y, const float *x, float a, float s, int64_t n, int relu) {
  const __m256 va = _mm256_set1_ps(a), vs = _mm256_set1_ps(s), z = _mm256_setzero_ps();
  int64_t i = 0;
  if (relu) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(y + i, _mm256_max_ps(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vs), z));
  } else {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vs));
  }
  if (i < n) {
    __m256i k = ac_lanes8(n - i);
    __m256 r = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, k), va, vs);
    if (relu) r = _mm256_max_ps(r, z);
    _mm256_maskstore_ps(y + i, k, r);
  }
}

/* g with the lanes where a x + s <= 0 zeroed (the ReLU's mask) */
static inline AVX2 __m256 relu_mask_256(__m256 g, __m256 xv, __m256 va, __m256 vs) {
  return _mm256_and_ps(g, _mm256_cmp_ps(_mm256_fmadd_ps(xv, va, vs), _mm256_setzero_ps(), _CMP_GT_OQ));
}

static AVX2 void row_gsums_256(const float *gy, const float *x, float m, float a, float s,
                               int64_t n, int relu, double *sg, double *sgx) {
  const __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(a), vs = _mm256_set1_ps(s);
  __m256 p0 = _mm256_setzero_ps(), p1 = p0, q0 = p0, q1 = p0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    __m256 g0 = _mm256_loadu_ps(gy + i), g1 = _mm256_loadu_ps(gy + i + 8);
    if (relu) {
      g0 = relu_mask_256(g0, x0, va, vs);
      g1 = relu_mask_256(g1, x1, va, vs);
    }
    p0 = _mm256_add_ps(p0, g0);
    p1 = _mm256_add_ps(p1, g1);
    q0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(x0, vm), q0);
    q1 = _mm256_fmadd_ps(g1, _mm256_sub_ps(x1, vm), q1);
  }
  for (; i < n; i += 8) {
    __m256i k = ac_lanes8(n - i);
    __m256 x0 = _mm256_maskload_ps(x + i, k), g0 = _mm256_maskload_ps(gy + i, k);
    if (relu) g0 = relu_mask_256(g0, x0, va, vs);
    p0 = _mm256_add_ps(p0, g0);
    q0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(x0, vm), q0);
  }
  *sg += hsum_pd256(_mm256_add_ps(p0, p1));
  *sgx += hsum_pd256(_mm256_add_ps(q0, q1));
}

static AVX2 void row_gx_256(float *gx, const float *gy, const float *x, float a, float s,
                            float kk, float u, float v, int64_t n, int relu) {
  const __m256 va = _mm256_set1_ps(a), vs = _mm256_set1_ps(s);
  const __m256 vk = _mm256_set1_ps(kk), vu = _mm256_set1_ps(-u), vv = _mm256_set1_ps(v);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x0 = _mm256_loadu_ps(x + i), g0 = _mm256_loadu_ps(gy + i);
    if (relu) g0 = relu_mask_256(g0, x0, va, vs);
    _mm256_storeu_ps(gx + i, _mm256_fmadd_ps(vk, g0, _mm256_fmadd_ps(vu, x0, vv)));
  }
  if (i < n) {
    __m256i k = ac_lanes8(n - i);
    __m256 x0 = _mm256_maskload_ps(x + i, k), g0 = _mm256_maskload_ps(gy + i, k);
    if (relu) g0 = relu_mask_256(g0, x0, va, vs);
    _mm256_maskstore_ps(gx + i, k, _mm256_fmadd_ps(vk, g0, _mm256_fmadd_ps(vu, x0, vv)));
  }
}

/* ---- channel tasks ------------------------------------------------------------ */

typedef struct {
  float *out, *save_mean, *save_invstd, *running_mean, *running_var;
  float *ggamma, *gbeta;
  const float *x, *gy, *gamma, *beta, *mean, *invstd, *rmean, *rvar;
  int64_t N, C, P;
  float eps, momentum, scale;
  int relu, isa, train; /* isa: the dispatch level (ac_cpu_isa()) */
} bn_ctx;

static int bn_check(int64_t N, int64_t C, int64_t P) {
  if (N < 1 || C < 1 || P < 1)
    return ac_fail("empty shape N=%lld C=%lld P=%lld", (long long)N, (long long)C,
                   (long long)P);
  return 0;
}

static int64_t bn_grain(int64_t N, int64_t P) {
  int64_t g = 16384 / (N * P);
  return g < 1 ? 1 : g;
}

/* The norm of channel c as y = a x + s, from the saved float statistics
 * (the forward and every backward use this one function). */
static void bn_affine(const bn_ctx *t, int64_t c, float mean, float invstd, float *a, float *s) {
  double g = t->gamma ? t->gamma[c] : 1.0, b = t->beta ? t->beta[c] : 0.0;
  double ad = g * (double)invstd;
  *a = (float)ad;
  *s = (float)(b - (double)mean * ad);
}

/* Rows in reverse order: the statistics pass just read the last rows, which
 * are then still in cache. */
static void bn_norm_channel(const bn_ctx *t, int64_t c, float a, float s) {
  for (int64_t n = t->N - 1; n >= 0; n--) {
    const float *xp = t->x + (n * t->C + c) * t->P;
    float *yp = t->out + (n * t->C + c) * t->P;
    if (t->isa >= AC_ISA_AVX512) row_norm_512(yp, xp, a, s, t->P, t->relu);
    else if (t->isa == AC_ISA_AVX2) row_norm_256(yp, xp, a, s, t->P, t->relu);
    else row_norm_c(yp, xp, a, s, t->P, t->relu);
  }
}

/* Per channel: shifted sums (shift = the channel's first value, against
 * cancellation), mean and invstd, running statistics, then y. */
static void bn_train_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  const int64_t N = t->N, C = t->C, P = t->P, M = N * P;
  for (int64_t c = begin; c < end; c++) {
    float shift = t->x[c * P];
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < N; n++) {
      const float *xp = t->x + (n * C + c) * P;
      if (t->isa >= AC_ISA_AVX512) row_stats_512(xp, shift, P, &s1, &s2);
      else if (t->isa == AC_ISA_AVX2) row_stats_256(xp, shift, P, &s1, &s2);
      else row_stats_c(xp, shift, P, &s1, &s2);
    }
    double dm = s1 / (double)M;
    double mean = shift + dm;
    double ss = s2 - s1 * dm; /* sum (x - mean)^2 */
    if (ss < 0) ss = 0;
    double var = ss / (double)M;
    float mf = (float)mean, inf = (float)(1.0 / sqrt(var + t->eps)), a, s;
    t->save_mean[c] = mf;
    t->save_invstd[c] = inf;
    if (t->running_mean)
      t->running_mean[c] = (float)((1.0 - t->momentum) * t->running_mean[c] + t->momentum * mean);
    if (t->running_var) {
      double unbiased = M > 1 ? ss / (double)(M - 1) : var;
      t->running_var[c] = (float)((1.0 - t->momentum) * t->running_var[c] + t->momentum * unbiased);
    }
    bn_affine(t, c, mf, inf, &a, &s);
    bn_norm_channel(t, c, a, s);
  }
}

/* Evaluation mode (the running statistics), or, with t->mean / t->invstd
 * set, the saved statistics of an earlier forward (ac_batchnorm_apply). */
static void bn_eval_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  for (int64_t c = begin; c < end; c++) {
    float mf, inf, a, s;
    if (t->invstd) {
      mf = t->mean[c];
      inf = t->invstd[c];
    } else {
      mf = t->rmean[c];
      inf = (float)(1.0 / sqrt((double)t->rvar[c] + t->eps));
    }
    if (t->save_mean) t->save_mean[c] = mf;
    if (t->save_invstd) t->save_invstd[c] = inf;
    bn_affine(t, c, mf, inf, &a, &s);
    bn_norm_channel(t, c, a, s);
  }
}

/* sum g and sum g * xhat of channel c (g: the gradient after the ReLU mask),
 * with sum g * xhat = invstd * sum g * (x - mean). */
static void bn_sums(const bn_ctx *t, int64_t c, float a, float s, double *sg, double *sgx) {
  double p = 0, q = 0;
  float m = t->mean[c];
  for (int64_t n = 0; n < t->N; n++) {
    const float *xp = t->x + (n * t->C + c) * t->P;
    const float *gp = t->gy + (n * t->C + c) * t->P;
    if (t->isa >= AC_ISA_AVX512) row_gsums_512(gp, xp, m, a, s, t->P, t->relu, &p, &q);
    else if (t->isa == AC_ISA_AVX2) row_gsums_256(gp, xp, m, a, s, t->P, t->relu, &p, &q);
    else row_gsums_c(gp, xp, m, a, s, t->P, t->relu, &p, &q);
  }
  *sg = p;
  *sgx = q * t->invstd[c];
}

/* Input gradient (when out is set) and parameter gradients (when ggamma /
 * gbeta are set). Training mode: through the batch statistics,
 *   gx = g*invstd * (g - sg/M - xhat * sgx/M) = k g - u x + v;
 * evaluation mode: gx = k g (u = v = 0). */
static void bn_backward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  const int64_t N = t->N, C = t->C, P = t->P, M = N * P;
  for (int64_t c = begin; c < end; c++) {
    float a, s;
    bn_affine(t, c, t->mean[c], t->invstd[c], &a, &s);
    double sg = 0, sgx = 0;
    if (t->train || t->ggamma || t->gbeta) bn_sums(t, c, a, s, &sg, &sgx);
    if (t->ggamma) t->ggamma[c] += t->scale * (float)sgx;
    if (t->gbeta) t->gbeta[c] += t->scale * (float)sg;
    if (!t->out) continue;
    double mean = t->mean[c], invstd = t->invstd[c];
    double k = (t->gamma ? t->gamma[c] : 1.0) * invstd, u = 0, v = 0;
    if (t->train) {
      u = k * invstd * sgx / (double)M;
      v = u * mean - k * sg / (double)M;
    }
    for (int64_t n = N - 1; n >= 0; n--) { /* reverse: the sums' last rows are in cache */
      const float *xp = t->x + (n * C + c) * P;
      const float *gp = t->gy + (n * C + c) * P;
      float *op = t->out + (n * C + c) * P;
      if (t->isa >= AC_ISA_AVX512) row_gx_512(op, gp, xp, a, s, (float)k, (float)u, (float)v, P, t->relu);
      else if (t->isa == AC_ISA_AVX2) row_gx_256(op, gp, xp, a, s, (float)k, (float)u, (float)v, P, t->relu);
      else row_gx_c(op, gp, xp, a, s, (float)k, (float)u, (float)v, P, t->relu);
    }
  }
}

/* ---- entry points ---------------------------------------------------------------- */

int ac_batchnorm_forward_train(float *y, float *save_mean, float *save_invstd,
                               float *running_mean, float *running_var, const float *x,
                               const float *gamma, const float *beta, int64_t N, int64_t C,
                               int64_t P, float eps, float momentum, int relu) {
  if (bn_check(N, C, P)) return -1;
  if (!(eps > 0.0f)) return ac_fail("eps must be > 0, got %g", (double)eps);
  bn_ctx t = {.out = y, .save_mean = save_mean, .save_invstd = save_invstd,
              .running_mean = running_mean, .running_var = running_var, .x = x,
              .gamma = gamma, .beta = beta, .N = N, .C = C, .P = P, .eps = eps,
              .momentum = momentum, .relu = relu != 0, .isa = ac_cpu_isa()};
  ac_parallel_for(C, bn_grain(N, P), bn_train_task, &t);
  return 0;
}

int ac_batchnorm_forward_eval(float *y, float *save_mean, float *save_invstd, const float *x,
                              const float *running_mean, const float *running_var,
                              const float *gamma, const float *beta, int64_t N, int64_t C,
                              int64_t P, float eps, int relu) {
  if (bn_check(N, C, P)) return -1;
  if (!(eps > 0.0f)) return ac_fail("eps must be > 0, got %g", (double)eps);
  for (int64_t c = 0; c < C; c++)
    if (!(running_var[c] + eps > 0.0f))
      return ac_fail("running_var[%lld] = %g makes var + eps <= 0", (long long)c + 1,
                     (double)running_var[c]);
  bn_ctx t = {.out = y, .save_mean = save_mean, .save_invstd = save_invstd, .x = x,
              .rmean = running_mean, .rvar = running_var, .gamma = gamma, .beta = beta,
              .N = N, .C = C, .P = P, .eps = eps, .relu = relu != 0, .isa = ac_cpu_isa()};
  ac_parallel_for(C, bn_grain(N, P), bn_eval_task, &t);
  return 0;
}

int ac_batchnorm_apply(float *y, const float *x, const float *mean, const float *invstd,
                       const float *gamma, const float *beta, int64_t N, int64_t C, int64_t P,
                       int relu) {
  if (bn_check(N, C, P)) return -1;
  bn_ctx t = {.out = y, .x = x, .mean = mean, .invstd = invstd, .gamma = gamma, .beta = beta,
              .N = N, .C = C, .P = P, .relu = relu != 0, .isa = ac_cpu_isa()};
  ac_parallel_for(C, bn_grain(N, P), bn_eval_task, &t);
  return 0;
}

int ac_batchnorm_backward(float *gx, float *ggamma, float *gbeta, const float *gy,
                          const float *x, const float *mean, const float *invstd,
                          const float *gamma, const float *beta, int64_t N, int64_t C, int64_t P,
                          float scale, int train, int relu) {
  if (bn_check(N, C, P)) return -1;
  bn_ctx t = {.out = gx, .ggamma = ggamma, .gbeta = gbeta, .gy = gy, .x = x, .mean = mean,
              .invstd = invstd, .gamma = gamma, .beta = beta, .N = N, .C = C, .P = P,
              .scale = scale, .train = train != 0, .relu = relu != 0, .isa = ac_cpu_isa()};
  ac_parallel_for(C, bn_grain(N, P), bn_backward_task, &t);
  return 0;
}

/* ---- folding into a convolution ------------------------------------------------ */

void ac_scale_rows(float *dst, const float *src, const float *s, int64_t rows, int64_t per) {
  for (int64_t r = 0; r < rows; r++) {
    float v = s[r];
    const float *a = src + r * per;
    float *d = dst + r * per;
    for (int64_t k = 0; k < per; k++) d[k] = a[k] * v;
  }
}
