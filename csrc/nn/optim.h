/*
 * optim.h - optimiser kernels: one loop over flat float32 buffers per update
 * rule. All parameters of a model live in one flat buffer `p` [n] and their
 * gradients in `g` [n] (module:getParameters()); the per-parameter state
 * (momentum buffer, Adam moments) are flat buffers of the same length.
 *
 * The update rules follow torch.optim (PyTorch 1.13) exactly, so that the
 * numbers can be compared with it:
 *
 *   SGD   (ac_sgd_step):   d = g + wd * p
 *                          buf = first ? d : momentum * buf + (1 - dampening) * d
 *                          d = nesterov ? d + momentum * buf : buf   (momentum > 0)
 *                          p -= lr * d
 *   Adam  (ac_adam_step):  d = g + wd * p                (L2 penalty, "adam")
 *                          p *= 1 - lr * wd             (decoupled, "adamw"; d = g)
 *                          m = b1 m + (1 - b1) d ;  v = b2 v + (1 - b2) d^2
 *                          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *                  keras_eps: p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 *                          (eps added to the uncorrected sqrt(v), as Keras / TF do)
 *
 * t is the 1-based step number (the step being taken). Learning-rate decay
 * and schedules are applied by the caller, which passes the lr of this step.
 *
 * Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_):
 *   ac_sumsq returns sum(g^2) (double accumulation, in a fixed order so the
 *   result does not depend on the number of threads); ac_scale multiplies.
 *
 * Every function returns 0, or -1 after ac_fail() on bad arguments.
 */
#ifndef AC_OPTIM_H
#define AC_OPTIM_H
#include <stdint.h>

typedef struct ac_sgd_cfg {
  float lr, momentum, dampening, weight_decay;
  int nesterov;
} ac_sgd_cfg;

/* p[n] -= update; buf[n] is the momentum buffer (unused, may be NULL, when
 * momentum == 0); first != 0 on the first step (buf is initialised to d). */
int ac_sgd_step(float *p, const float *g, float *buf, int64_t n,
                const ac_sgd_cfg *cfg, int first);

typedef struct ac_adam_cfg {
  float lr, beta1, beta2, eps, weight_decay;
  int decoupled; /* 1: AdamW (decoupled weight decay), 0: Adam (L2 in the gradient) */
  int keras_eps; /* 1: eps added to sqrt(v) before bias correction (Keras) */
  int amsgrad;   /* 1: vmax[n] keeps the running max of v */
} ac_adam_cfg;

/* t >= 1 is this step's number. m, v [n] the moments; vmax [n] when amsgrad. */
int ac_adam_step(float *p, const float *g, float *m, float *v, float *vmax,
                 int64_t n, const ac_adam_cfg *cfg, int64_t t);

/* sum of x[i]^2 over [0, n), in double. */
double ac_sumsq(const float *x, int64_t n);
/* x[i] *= s */
void ac_scale(float *x, int64_t n, float s);
/* Global-norm clipping of g[n]: if ||g|| > max_norm, g *= max_norm / (||g|| + 1e-6).
 * Writes the norm before clipping to *norm_out (may be NULL). */
int ac_clip_grad_norm(float *g, int64_t n, double max_norm, double *norm_out);

#endif
