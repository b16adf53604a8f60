/*
 * conv_kernels.h - the kernel families behind conv_fast.h, one file each;
 * internal to csrc/cpu/ (conv_fast.c decides which family runs a
 * configuration and owns the public entry points).
 *
 *   conv_dw3.c        depthwise 3x3 "same" (groups == C == O, stride 1, pad 1)
 *   conv_pointwise.c  1x1 stride-1 unpadded: GEMMs on the input planes themselves
 *   conv_im2col.c     every other groups == 1 convolution: im2col strips + GEMM
 *   conv_wgrad.c      the weight gradient of both, as one GEMM over every sample
 *   conv_small.c      small dense 3-wide kernels (mini-Xception's first layers);
 *                     conv_small_avx2.c and conv_dw3_avx2.c: their AVX2 paths
 *
 * Same conventions as nn.h: forward and input gradient OVERWRITE, the
 * parameter gradient ACCUMULATES scale * dL/dw. Workspaces are floats, sized
 * for the current thread count (per-thread slices at tid * slice).
 */
#ifndef AC_CONV_KERNELS_H
#define AC_CONV_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "nn/nn.h"

/* Output positions per strip of the pointwise and im2col paths (at most). */
#define AC_CONV_STRIP 256

/* Parallel grain (items per task) for items of `work` multiply-adds each. */
static inline int64_t ac_conv_grain(int64_t work) {
  int64_t g = 16384 / (work > 0 ? work : 1);
  return g < 1 ? 1 : g;
}

/* Strips of the OH * OW output positions: ac_conv_nstrips(c) balanced strips
 * of ac_conv_strip_width(c) positions (a multiple of 16, at most
 * AC_CONV_STRIP), the last one shorter. */
static inline int64_t ac_conv_nstrips(const ac_conv2d_cfg *c) {
  return (c->OH * c->OW + AC_CONV_STRIP - 1) / AC_CONV_STRIP;
}
static inline int64_t ac_conv_strip_width(const ac_conv2d_cfg *c) {
  int64_t P = c->OH * c->OW, ns = ac_conv_nstrips(c);
  int64_t sw = (P + ns - 1) / ns;
  sw = (sw + 15) / 16 * 16;
  return sw > AC_CONV_STRIP ? AC_CONV_STRIP : sw;
}

/* rows [0, n) of a strip of S positions (row stride P) += b[row]. */
static inline void ac_conv_add_bias(float *y, const float *b, int64_t n, int64_t S, int64_t P) {
  for (int64_t o = 0; o < n; o++) {
    float bv = b[o], *r = y + o * P;
    for (int64_t p = 0; p < S; p++) r[p] += bv;
  }
}

/* 1 for a 1x1, stride-1, unpadded convolution. */
static inline int ac_conv_is_1x1(const ac_conv2d_cfg *c) {
  return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 &&
         c->pb == 0 && c->pr == 0;
}

/* ---- conv_dw3.c ---- */
int ac_dw3_matches(const ac_conv2d_cfg *c);
void ac_dw3_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                    const float *b);
void ac_dw3_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w);
/* gw, gb (gb may be NULL) accumulate; with gx and w given, the input
 * gradient too, in the same pass over gy. */
void ac_dw3_backward_params(const ac_conv2d_cfg *c, float *gx, float *gw, float *gb,
                            const float *x, const float *gy, const float *w, float scale);

/* conv_dw3_avx2.c: one plane; planes narrower than AC_DW3_FLAT_W2 take the
 * flat kernels, the others (W >= 8) the row kernels. y / out as above. */
#define AC_DW3_FLAT_W2 16
void ac_dw3_plane_avx2(float *y, const float *x, int64_t H, int64_t W, const float *w,
                       float bias);
void ac_dw3_flat_avx2(float *y, const float *x, int64_t H, int64_t W, const float *w,
                      float bias);
void ac_dw3_params_plane_avx2(double *out, const float *x, const float *gy, int64_t H,
                              int64_t W);
void ac_dw3_params_flat_avx2(double *out, const float *x, const float *gy, int64_t H,
                             int64_t W);

/* ---- conv_pointwise.c (ac_conv_is_1x1 configurations) ---- */
int64_t ac_pw_workspace(const ac_conv2d_cfg *c);
void ac_pw_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                   const float *b, float *ws);
void ac_pw_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w,
                          float *ws);

/* ---- conv_im2col.c (other groups == 1 configurations) ---- */
int64_t ac_im2col_workspace(const ac_conv2d_cfg *c);
void ac_im2col_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                       const float *b, float *ws);
void ac_im2col_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy,
                              const float *w, float *ws);

/* ---- conv_wgrad.c (every groups == 1 configuration; no bias) ---- */
int64_t ac_wgrad_workspace(const ac_conv2d_cfg *c);
void ac_wgrad(const ac_conv2d_cfg *c, float *gw, const float *x, const float *gy, float scale,
              float *ws);

/* ---- conv_small.c (AVX-512 or AVX2 only: callers check ac_sd_active) ---- */
int ac_sd_shape(const ac_conv2d_cfg *c); /* the shape qualifies */
int ac_sd_active(const ac_conv2d_cfg *c); /* ... and an AVX-512 or AVX2 path runs */
int ac_sd_input_ok(const ac_conv2d_cfg *c); /* the input-gradient kernel applies */
int64_t ac_sd_workspace(const ac_conv2d_cfg *c);
void ac_sd_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                   const float *b);
void ac_sd_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w);
/* gw += scale * dL/dw (no bias) */
void ac_sd_backward_params(const ac_conv2d_cfg *c, float *gw, const float *x, const float *gy,
                           float scale, float *ws);
/* conv_small_avx2.c: one output row oh (forward), one sample's weight
 * gradient into part [O, C, kh, 3] (accumulated), one input row h (input
 * gradient, C % 8 == 0) of one sample; yn, xn, gyn, gxn: the sample's planes */
void ac_sd_forward_row_avx2(const ac_conv2d_cfg *c, float *yn, const float *xn, const float *w,
                            const float *b, int64_t oh);
void ac_sd_params_sample_avx2(const ac_conv2d_cfg *c, float *part, const float *xn,
                              const float *gyn);
void ac_sd_backward_input_row_avx2(const ac_conv2d_cfg *c, float *gxn, const float *gyn,
                                   const float *w, int64_t h);

#endif
