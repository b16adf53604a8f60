/*
 * conv_fast.h - direct convolution kernels tuned for the shapes of the
 * Xception family, with run-time dispatch through cpu/cpu.h (AVX-512 when
 * the CPU has it, else portable loops the compiler vectorises for the
 * build target). The kernel families are listed in conv_kernels.h.
 *
 *   - depthwise 3x3, stride 1, padding 1 on every side (Keras "same"),
 *     groups == C == O: vector rows with masked edges, no scratch;
 *   - every groups == 1 convolution (1x1 pointwise included): im2col of a
 *     strip of output positions into per-thread scratch (no copy at all for
 *     1x1 stride-1 unpadded ones) and a register-blocked GEMM micro-kernel,
 *     parallel over (sample, strip); the weight gradient is one GEMM over
 *     every sample (reduction over N * positions) on tiles of the weight,
 *     split by the shapes alone (the same result on any thread count).
 * Same conventions as nn.h: NCHW, weight [O, C/groups, kh, kw], forward and
 * input gradient OVERWRITE, the parameter gradient ACCUMULATES scale * dL/dw.
 *
 *   ac_conv2d_cfg c = {...};  ac_conv2d_setup(&c);
 *   if (ac_convfast_supports(&c)) {
 *     float *ws = malloc(ac_convfast_workspace(&c) * sizeof(float));
 *     ac_convfast_forward(&c, y, x, w, b, ws);
 *   }
 */
#ifndef AC_CONV_FAST_H
#define AC_CONV_FAST_H
#include <stdint.h>
#include "nn/nn.h"

/* 1 when the fast kernels handle this (set-up) configuration. */
int ac_convfast_supports(const ac_conv2d_cfg *c);
/* 1 when the fast kernels are expected to beat nn_conv.c's paths for c
 * (ac_conv2d_setup then selects them): depthwise 3x3 same, every 1x1, and
 * dense convolutions with at least 16 output channels. */
int ac_convfast_preferred(const ac_conv2d_cfg *c);
/* Scratch floats the fast kernels need for c with the current thread count. */
int64_t ac_convfast_workspace(const ac_conv2d_cfg *c);
int ac_convfast_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                        const float *b, float *ws);
int ac_convfast_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy,
                               const float *w, float *ws);
int ac_convfast_backward_params(const ac_conv2d_cfg *c, float *gw, float *gb, const float *x,
                                const float *gy, float scale, float *ws);
/* 1 when c is a depthwise 3x3 "same" convolution on the fast path (after
 * ac_conv2d_setup): ac_convfast_backward_fused then applies. */
int ac_convfast_fused_backward_ok(const ac_conv2d_cfg *c);
/* Depthwise 3x3 "same": the input gradient (overwritten) and the weight and
 * bias gradients (accumulated, scaled) in one pass over gy, plane by plane
 * (gy read once instead of twice); parallel over channels. */
int ac_convfast_backward_fused(const ac_conv2d_cfg *c, float *gx, float *gw, float *gb,
                               const float *x, const float *gy, const float *w, float scale);

/* Whether ac_conv2d_setup may pick these kernels (default 1); 0 lets the
 * tests reach nn_conv.c's own paths. Affects configurations set up later. */
void ac_convfast_enable(int on);

#endif
