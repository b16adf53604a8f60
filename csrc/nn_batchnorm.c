/*
 * nn_batchnorm.c - batch normalisation kernels over [N, C, P] (P = H*W for
 * BatchNorm2d, 1 for BatchNorm1d), parallel over channels. Statistics are
 * accumulated in double. Conventions (see doc/nn.md): the batch is
 * normalised with the biased variance; the running variance is updated with
 * the unbiased one, and `momentum` is the weight of the new statistic
 * (PyTorch's convention; Keras' momentum 0.99 corresponds to 0.01 here).
 */
#include <math.h>
#include "nn.h"
#include "tensor.h"
#include "parallel.h"
#include "nn_reduce.h"

typedef struct {
  float *out, *save_mean, *save_invstd, *running_mean, *running_var;
  float *ggamma, *gbeta;
  const float *x, *gy, *gamma, *beta, *mean, *invstd, *rmean, *rvar;
  int64_t N, C, P;
  float eps, momentum, scale;
} bn_ctx;

static int bn_check(int64_t N, int64_t C, int64_t P) {
  if (N < 1 || C < 1 || P < 1)
    return ac_fail("batchnorm: empty shape N=%lld C=%lld P=%lld", (long long)N, (long long)C,
                   (long long)P);
  return 0;
}

static int64_t bn_grain(int64_t N, int64_t P) {
  int64_t g = 16384 / (N * P);
  return g < 1 ? 1 : g;
}

/* Per channel: one pass for the statistics, shifted by the channel's first
 * value against cancellation (float inside a row of P values, double across
 * rows), one pass to normalise. */
static void bn_train_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  const int64_t N = t->N, C = t->C, P = t->P, M = N * P;
  for (int64_t c = begin; c < end; c++) {
    float shift = t->x[c * P];
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < N; n++) {
      float a, b;
      nn_sum_sq(t->x + (n * C + c) * P, shift, P, &a, &b);
      s1 += a;
      s2 += b;
    }
    double dm = s1 / (double)M;
    double mean = shift + dm;
    double ss = s2 - s1 * dm; /* sum (x - mean)^2 */
    if (ss < 0) ss = 0;
    double var = ss / (double)M;
    double invstd = 1.0 / sqrt(var + t->eps);
    float g = t->gamma ? t->gamma[c] : 1.0f, b = t->beta ? t->beta[c] : 0.0f;
    float a = (float)(g * invstd), sh = (float)(b - mean * g * invstd);
    for (int64_t n = 0; n < N; n++) {
      const float *xp = t->x + (n * C + c) * P;
      float *yp = t->out + (n * C + c) * P;
      for (int64_t p = 0; p < P; p++) yp[p] = xp[p] * a + sh;
    }
    t->save_mean[c] = (float)mean;
    t->save_invstd[c] = (float)invstd;
    if (t->running_mean)
      t->running_mean[c] = (float)((1.0 - t->momentum) * t->running_mean[c] + t->momentum * mean);
    if (t->running_var) {
      double unbiased = M > 1 ? ss / (double)(M - 1) : var;
      t->running_var[c] = (float)((1.0 - t->momentum) * t->running_var[c] + t->momentum * unbiased);
    }
  }
}

int ac_batchnorm_forward_train(float *y, float *save_mean, float *save_invstd,
                               float *running_mean, float *running_var, const float *x,
                               const float *gamma, const float *beta, int64_t N, int64_t C,
                               int64_t P, float eps, float momentum) {
  if (bn_check(N, C, P)) return -1;
  if (!(eps > 0.0f)) return ac_fail("batchnorm: eps must be > 0, got %g", (double)eps);
  bn_ctx t = {.out = y, .save_mean = save_mean, .save_invstd = save_invstd,
              .running_mean = running_mean, .running_var = running_var, .x = x,
              .gamma = gamma, .beta = beta, .N = N, .C = C, .P = P, .eps = eps,
              .momentum = momentum};
  ac_parallel_for(C, bn_grain(N, P), bn_train_task, &t);
  return 0;
}

static void bn_eval_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  int64_t N = t->N, C = t->C, P = t->P;
  for (int64_t c = begin; c < end; c++) {
    double invstd = 1.0 / sqrt((double)t->rvar[c] + t->eps);
    float g = t->gamma ? t->gamma[c] : 1.0f, b = t->beta ? t->beta[c] : 0.0f;
    float a = (float)(g * invstd), sh = (float)(b - t->rmean[c] * g * invstd);
    if (t->save_mean) t->save_mean[c] = t->rmean[c];
    if (t->save_invstd) t->save_invstd[c] = (float)invstd;
    for (int64_t n = 0; n < N; n++) {
      const float *xp = t->x + (n * C + c) * P;
      float *yp = t->out + (n * C + c) * P;
      for (int64_t p = 0; p < P; p++) yp[p] = xp[p] * a + sh;
    }
  }
}

int ac_batchnorm_forward_eval(float *y, float *save_mean, float *save_invstd, const float *x,
                              const float *running_mean,
                              const float *running_var, const float *gamma, const float *beta,
                              int64_t N, int64_t C, int64_t P, float eps) {
  if (bn_check(N, C, P)) return -1;
  if (!(eps > 0.0f)) return ac_fail("batchnorm: eps must be > 0, got %g", (double)eps);
  for (int64_t c = 0; c < C; c++)
    if (!(running_var[c] + eps > 0.0f))
      return ac_fail("batchnorm: running_var[%lld] = %g makes var + eps <= 0", (long long)c + 1,
                     (double)running_var[c]);
  bn_ctx t = {.out = y, .save_mean = save_mean, .save_invstd = save_invstd, .x = x,
              .rmean = running_mean, .rvar = running_var, .gamma = gamma,
              .beta = beta, .N = N, .C = C, .P = P, .eps = eps};
  ac_parallel_for(C, bn_grain(N, P), bn_eval_task, &t);
  return 0;
}

/* sum gy and sum gy * xhat of channel c, with
 * sum gy * xhat = invstd * (sum gy * (x - mean)). */
static void bn_sums(const bn_ctx *t, int64_t c, double mean, double invstd, double *sgy,
                    double *sgyx) {
  double a = 0, b = 0;
  float mf = (float)mean;
  for (int64_t n = 0; n < t->N; n++) {
    const float *xp = t->x + (n * t->C + c) * t->P;
    const float *gp = t->gy + (n * t->C + c) * t->P;
    a += nn_sum(gp, t->P);
    b += nn_dotdev(gp, xp, mf, t->P);
  }
  *sgy = a;
  *sgyx = b * invstd;
}

static void bn_backward_train_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  const int64_t N = t->N, C = t->C, P = t->P, M = N * P;
  for (int64_t c = begin; c < end; c++) {
    double mean = t->mean[c], invstd = t->invstd[c], sgy, sgyx;
    bn_sums(t, c, mean, invstd, &sgy, &sgyx);
    double g = t->gamma ? t->gamma[c] : 1.0;
    /* gx = g*invstd * (gy - sgy/M - (x - mean)*invstd * sgyx/M) = k*gy - u*x + v */
    double k = g * invstd, u = k * invstd * sgyx / M;
    float kf = (float)k, uf = (float)u, vf = (float)(u * mean - k * sgy / M);
    for (int64_t n = 0; n < N; n++) {
      const float *xp = t->x + (n * C + c) * P;
      const float *gp = t->gy + (n * C + c) * P;
      float *op = t->out + (n * C + c) * P;
      for (int64_t p = 0; p < P; p++) op[p] = kf * gp[p] - uf * xp[p] + vf;
    }
    if (t->ggamma) t->ggamma[c] += t->scale * (float)sgyx;
    if (t->gbeta) t->gbeta[c] += t->scale * (float)sgy;
  }
}

int ac_batchnorm_backward_input_train(float *gx, const float *gy, const float *x,
                                      const float *save_mean, const float *save_invstd,
                                      const float *gamma, int64_t N, int64_t C, int64_t P) {
  if (bn_check(N, C, P)) return -1;
  bn_ctx t = {.out = gx, .gy = gy, .x = x, .mean = save_mean, .invstd = save_invstd,
              .gamma = gamma, .N = N, .C = C, .P = P};
  ac_parallel_for(C, bn_grain(N, P), bn_backward_train_task, &t);
  return 0;
}

int ac_batchnorm_backward_train(float *gx, float *ggamma, float *gbeta, const float *gy,
                                const float *x, const float *save_mean, const float *save_invstd,
                                const float *gamma, int64_t N, int64_t C, int64_t P, float scale) {
  if (bn_check(N, C, P)) return -1;
  bn_ctx t = {.out = gx, .ggamma = ggamma, .gbeta = gbeta, .gy = gy, .x = x,
              .mean = save_mean, .invstd = save_invstd, .gamma = gamma, .N = N, .C = C,
              .P = P, .scale = scale};
  ac_parallel_for(C, bn_grain(N, P), bn_backward_train_task, &t);
  return 0;
}

static void bn_backward_eval_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  int64_t N = t->N, C = t->C, P = t->P;
  for (int64_t c = begin; c < end; c++) {
    float k = (float)((t->gamma ? t->gamma[c] : 1.0) / sqrt((double)t->rvar[c] + t->eps));
    for (int64_t n = 0; n < N; n++) {
      const float *gp = t->gy + (n * C + c) * P;
      float *op = t->out + (n * C + c) * P;
      for (int64_t p = 0; p < P; p++) op[p] = k * gp[p];
    }
  }
}

int ac_batchnorm_backward_input_eval(float *gx, const float *gy, const float *running_var,
                                     const float *gamma, int64_t N, int64_t C, int64_t P,
                                     float eps) {
  if (bn_check(N, C, P)) return -1;
  bn_ctx t = {.out = gx, .gy = gy, .rvar = running_var, .gamma = gamma, .N = N, .C = C, .P = P,
              .eps = eps};
  ac_parallel_for(C, bn_grain(N, P), bn_backward_eval_task, &t);
  return 0;
}

static void bn_params_task(void *vctx, int64_t begin, int64_t end, int tid) {
  (void)tid;
  bn_ctx *t = vctx;
  for (int64_t c = begin; c < end; c++) {
    double sgy, sgyx;
    bn_sums(t, c, t->mean[c], t->invstd[c], &sgy, &sgyx);
    if (t->ggamma) t->ggamma[c] += t->scale * (float)sgyx;
    if (t->gbeta) t->gbeta[c] += t->scale * (float)sgy;
  }
}

int ac_batchnorm_backward_params(float *ggamma, float *gbeta, const float *gy, const float *x,
                                 const float *mean, const float *invstd, int64_t N, int64_t C,
                                 int64_t P, float scale) {
  if (bn_check(N, C, P)) return -1;
  bn_ctx t = {.ggamma = ggamma, .gbeta = gbeta, .gy = gy, .x = x, .mean = mean,
              .invstd = invstd, .N = N, .C = C, .P = P, .scale = scale};
  ac_parallel_for(C, bn_grain(N, P), bn_params_task, &t);
  return 0;
}
