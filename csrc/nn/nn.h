/*
 * nn.h - neural-network layer kernels on contiguous float32 arrays (NCHW).
 *
 * Every layer has `ac_<layer>_forward`, `ac_<layer>_backward_input` (writes
 * the input gradient; OVERWRITES) and, when it has parameters,
 * `ac_<layer>_backward_params` (ACCUMULATES into the parameter gradients,
 * scaled by `scale`, Torch's accGradParameters). The comment beside each
 * argument gives its shape. Callers (csrc/lua/lua_nn.c) check shapes first; the
 * kernels check only the configuration they are given and return 0, or -1
 * after ac_fail() with a message that says what is wrong and names no
 * function ("padded input 3x3 is smaller than the kernel 5x5"): the caller
 * does ("Conv2d:forward: ..."). Kernels allocate nothing: scratch memory (im2col columns
 * and the like) is passed in, sized with the matching *_workspace function,
 * and owned by the caller so that a training step reuses it.
 *
 * Example: a 3x3 convolution, stride 1, padding 1, on a [2,3,8,8] input.
 *
 *   ac_conv2d_cfg c = {.N=2, .C=3, .H=8, .W=8, .O=16, .kh=3, .kw=3,
 *                      .sh=1, .sw=1, .pt=1, .pl=1, .pb=1, .pr=1, .groups=1};
 *   if (ac_conv2d_setup(&c)) puts(ac_error());   // fills OH, OW
 *   float *ws = malloc(ac_conv2d_workspace(&c) * sizeof(float));
 *   ac_conv2d_forward(&c, y, x, w, b, ws);        // y: [2,16,8,8] out
 */
#ifndef AC_NN_H
#define AC_NN_H
#include <stdint.h>
#include "core/random.h"

/* ---- Linear ------------------------------------------------------------ */
/* y = x W^T + b */
int ac_linear_forward(float *y,          /* [N, O] out */
                      const float *x,    /* [N, In] */
                      const float *w,    /* [O, In] */
                      const float *b,    /* [O] or NULL */
                      int64_t N, int64_t In, int64_t O);
int ac_linear_backward_input(float *gx,        /* [N, In] out */
                             const float *gy,  /* [N, O] */
                             const float *w,   /* [O, In] */
                             int64_t N, int64_t In, int64_t O);
/* gw += scale * gy^T x ; gb += scale * sum_n gy */
int ac_linear_backward_params(float *gw,        /* [O, In] accumulated */
                              float *gb,        /* [O] accumulated, or NULL */
                              const float *x,   /* [N, In] */
                              const float *gy,  /* [N, O] */
                              int64_t N, int64_t In, int64_t O, float scale);

/* ---- Conv2d ------------------------------------------------------------ */
/* Geometry of one convolution. pt/pl/pb/pr are top/left/bottom/right
 * zero padding (asymmetric padding gives Keras "same"). Weight layout
 * [O, C/groups, kh, kw]. ac_conv2d_setup validates and fills OH, OW and the
 * internal fields. */
typedef struct ac_conv2d_cfg {
  int64_t N, C, H, W, O;
  int64_t kh, kw, sh, sw, pt, pl, pb, pr, groups;
  /* filled by ac_conv2d_setup */
  int64_t OH, OW;
  int path;      /* AC_CONV_FAST, AC_CONV_DEPTHWISE(_S1) or AC_CONV_IM2COL */
  int64_t chunk; /* samples per im2col chunk */
} ac_conv2d_cfg;
/* The rule that picks the path is written at the top of nn_conv.c. */
enum { AC_CONV_IM2COL = 0, AC_CONV_DEPTHWISE = 2, AC_CONV_DEPTHWISE_S1 = 3,
       AC_CONV_FAST = 4 /* csrc/cpu/conv_fast.c */ };

int ac_conv2d_setup(ac_conv2d_cfg *c);
/* Scratch floats the forward/backward kernels need (0 for some paths). For
 * the stride-1 depthwise path it depends on ac_get_num_threads() (one padded
 * plane per thread): ask right before the call. */
int64_t ac_conv2d_workspace(const ac_conv2d_cfg *c);
int ac_conv2d_forward(const ac_conv2d_cfg *c,
                      float *y,        /* [N, O, OH, OW] out */
                      const float *x,  /* [N, C, H, W] */
                      const float *w,  /* [O, C/groups, kh, kw] */
                      const float *b,  /* [O] or NULL */
                      float *ws);      /* [ac_conv2d_workspace(c)] scratch */
int ac_conv2d_backward_input(const ac_conv2d_cfg *c,
                             float *gx,       /* [N, C, H, W] out */
                             const float *gy, /* [N, O, OH, OW] */
                             const float *w,  /* [O, C/groups, kh, kw] */
                             float *ws);
/* gw += scale * dL/dw ; gb += scale * dL/db */
int ac_conv2d_backward_params(const ac_conv2d_cfg *c,
                              float *gw,       /* [O, C/groups, kh, kw] accumulated */
                              float *gb,       /* [O] accumulated, or NULL */
                              const float *x,  /* [N, C, H, W] */
                              const float *gy, /* [N, O, OH, OW] */
                              float scale, float *ws);
/* Naive reference kernels (direct loops, no scratch), kept to test the fast ones. */
int ac_conv2d_forward_ref(const ac_conv2d_cfg *c, float *y, const float *x,
                          const float *w, const float *b);
int ac_conv2d_backward_input_ref(const ac_conv2d_cfg *c, float *gx, const float *gy,
                                 const float *w);
int ac_conv2d_backward_params_ref(const ac_conv2d_cfg *c, float *gw, float *gb,
                                  const float *x, const float *gy, float scale);

/* Keras/TensorFlow "same" padding along one axis: output ceil(n / stride),
 * total padding split with the extra cell after (bottom/right). */
void ac_same_padding(int64_t n, int64_t k, int64_t stride, int64_t *before, int64_t *after);

/* ---- BatchNorm (1d: P = 1, 2d: P = H*W), optionally fused with a ReLU ---- */
/* Training mode: normalises with the batch mean and the biased variance,
 * saves mean and invstd = 1/sqrt(var + eps) for the backward, and updates
 * the running statistics (when not NULL) as
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * unbiased_var
 * (PyTorch's convention; Keras' momentum 0.99 is momentum 0.01 here).
 * relu != 0 writes max(y, 0) instead of y (batch norm + ReLU in one pass). */
int ac_batchnorm_forward_train(float *y,             /* [N, C, P] out */
                               float *save_mean,     /* [C] out */
                               float *save_invstd,   /* [C] out */
                               float *running_mean,  /* [C] updated, or NULL */
                               float *running_var,   /* [C] updated, or NULL */
                               const float *x,       /* [N, C, P] */
                               const float *gamma,   /* [C] or NULL (1) */
                               const float *beta,    /* [C] or NULL (0) */
                               int64_t N, int64_t C, int64_t P,
                               float eps, float momentum, int relu);
/* Evaluation mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta
 * (max(y, 0) with relu). save_mean/save_invstd (may be NULL) receive
 * running_mean and 1/sqrt(running_var + eps), for ac_batchnorm_backward. */
int ac_batchnorm_forward_eval(float *y, float *save_mean, float *save_invstd, /* [C] out */
                              const float *x,            /* [N, C, P] */
                              const float *running_mean,           /* [C] */
                              const float *running_var,            /* [C] */
                              const float *gamma, const float *beta, /* [C] or NULL */
                              int64_t N, int64_t C, int64_t P, float eps, int relu);
/* The output of an earlier forward again, bit for bit, from its input and the
 * mean / invstd it saved (no statistics are updated): lets a container drop
 * the output after the next layer has read it and recompute it for the
 * backward. */
int ac_batchnorm_apply(float *y,                          /* [N, C, P] out */
                       const float *x,                    /* [N, C, P] */
                       const float *mean, const float *invstd, /* [C] saved by the forward */
                       const float *gamma, const float *beta,  /* [C] or NULL */
                       int64_t N, int64_t C, int64_t P, int relu);
/* Gradients of either forward, from its input and the mean / invstd it
 * saved (the ReLU mask is recomputed from x, gamma and beta: no output or
 * mask is read). With g = relu ? gy * (a x + s > 0) : gy, xhat = (x - mean)
 * * invstd:
 *   gx (when not NULL; OVERWRITTEN) = training: gamma*invstd * (g - mean(g)
 *       - xhat * mean(g * xhat)); evaluation: gamma * invstd * g
 *   ggamma += scale * sum g * xhat ; gbeta += scale * sum g (each when not NULL).
 * Input and parameter gradients in one pass over the data. */
int ac_batchnorm_backward(float *gx,                    /* [N, C, P] out, or NULL */
                          float *ggamma, float *gbeta,  /* [C] accumulated, or NULL */
                          const float *gy, const float *x, /* [N, C, P] */
                          const float *mean, const float *invstd, /* [C] saved by the forward */
                          const float *gamma, const float *beta,  /* [C] or NULL */
                          int64_t N, int64_t C, int64_t P, float scale, int train, int relu);
/* dst[r][k] = src[r][k] * s[r] for rows x per floats: folds an evaluation
 * batch norm's per-channel scale into the weight rows of the convolution
 * before it. dst may be src. */
void ac_scale_rows(float *dst, const float *src, const float *s, int64_t rows, int64_t per);

/* ---- Pooling ------------------------------------------------------------ */
typedef struct ac_pool2d_cfg {
  int64_t N, C, H, W;
  int64_t kh, kw, sh, sw, pt, pl, pb, pr;
  int count_include_pad; /* average pooling only */
  int64_t OH, OW;        /* filled by ac_pool2d_setup */
} ac_pool2d_cfg;
int ac_pool2d_setup(ac_pool2d_cfg *c);
/* Padding cells count as -inf. idx receives, per output, the flat index
 * (h * W + w) of the maximum inside its input plane (first one on ties);
 * idx may be NULL (evaluation: values only, the same values). */
int ac_maxpool2d_forward(const ac_pool2d_cfg *c,
                         float *y,         /* [N, C, OH, OW] out */
                         int64_t *idx,     /* [N, C, OH, OW] out, or NULL */
                         const float *x);  /* [N, C, H, W] */
int ac_maxpool2d_backward_input(const ac_pool2d_cfg *c,
                                float *gx,           /* [N, C, H, W] out */
                                const float *gy,     /* [N, C, OH, OW] */
                                const int64_t *idx); /* [N, C, OH, OW] */
/* Padding cells are zeros; the divisor is kh*kw when count_include_pad,
 * else the number of input cells inside the window (Keras "same"). */
/* y, gy: [N, C, OH, OW]; x, gx: [N, C, H, W] */
int ac_avgpool2d_forward(const ac_pool2d_cfg *c, float *y, const float *x);
int ac_avgpool2d_backward_input(const ac_pool2d_cfg *c, float *gx, const float *gy);
/* [N, C, P] -> [N, C] mean over P */
int ac_global_avgpool_forward(float *y, const float *x, int64_t N, int64_t C, int64_t P);
int ac_global_avgpool_backward_input(float *gx, const float *gy, int64_t N, int64_t C, int64_t P);

/* ---- Activations and friends (nn_act.c) --------------------------------- */
/* all arrays [n] */
int ac_relu_forward(float *y, const float *x, int64_t n);
/* y = a + b over n elements, one pass on the pool (y may be a or b) */
int ac_add_forward(float *y, const float *a, const float *b, int64_t n);
/* gx = gy where y > 0, else 0 (y is the forward output); y may be x and gx may be gy */
int ac_relu_backward_input(float *gx, const float *gy, const float *y, int64_t n);
/* Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p); y = x * mask.
 * ac_mul_backward_input: gx = gy * mask. All arrays [n]. */
int ac_dropout_forward(float *y, float *mask, const float *x, int64_t n, float p, ac_rng *rng);
int ac_mul_backward_input(float *gx, const float *gy, const float *mask, int64_t n);
/* Row-wise softmax / log-softmax; x, y, gy, gx: [N, D]; the backward takes
 * the forward's output y. */
int ac_softmax_forward(float *y, const float *x, int64_t N, int64_t D);
int ac_softmax_backward_input(float *gx, const float *gy, const float *y, int64_t N, int64_t D);
int ac_logsoftmax_forward(float *y, const float *x, int64_t N, int64_t D);
int ac_logsoftmax_backward_input(float *gx, const float *gy, const float *y, int64_t N,
                                 int64_t D);
/* Row-wise L2 normalisation: y = x / sqrt(max(|x|^2, eps)); x, y, gy, gx:
 * [N, D]; norm [N] (saved by the forward). */
int ac_l2norm_forward(float *y, float *norm, const float *x, int64_t N, int64_t D, float eps);
int ac_l2norm_backward_input(float *gx, const float *gy, const float *y, const float *norm,
                             int64_t N, int64_t D, float eps);
/* Cross-entropy of softmax(x) with targets t counted from `base` (0 or 1:
 * class t[n] - base). prob receives softmax(x). *loss = the sum over rows
 * of -weight[t]*log p[t], divided by the sum of weight[t] (or by 1 when
 * !average). weight may be NULL (all 1). A target outside the classes fails. */
int ac_cross_entropy_forward(double *loss,          /* out */
                             float *prob,           /* [N, D] out */
                             const float *x,        /* [N, D] logits */
                             const int64_t *t,      /* [N] */
                             const float *weight,   /* [D] or NULL */
                             int64_t N, int64_t D, int64_t base, int average);
/* gx = scale * weight[t] * (prob - onehot(t)) / (sum of weights or 1) */
int ac_cross_entropy_backward_input(float *gx,        /* [N, D] out */
                                    const float *prob, /* [N, D] from the forward */
                                    const int64_t *t, const float *weight,
                                    int64_t N, int64_t D, int64_t base, int average,
                                    float scale);

#endif
