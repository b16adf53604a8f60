/*
 * conv_fast.c - which fast kernel family runs a convolution, and the entry
 * points of conv_fast.h. The families live in their own files
 * (conv_kernels.h):
 *   depthwise 3x3 "same"            -> conv_dw3.c
 *   groups == 1, forward / input gradient:
 *     small dense 3-wide (AVX2+)    -> conv_small.c
 *     1x1 stride 1 unpadded         -> conv_pointwise.c
 *     everything else               -> conv_im2col.c
 *   groups == 1, weight gradient:
 *     small dense 3-wide (AVX2+)    -> conv_small.c, else conv_wgrad.c
 * Each family dispatches between its AVX-512, AVX2 and portable code through
 * cpu/cpu.h; the workspace covers every family a configuration can reach on
 * any code path, so a dispatch limit set by a test after set-up stays safe.
 */
#include "cpu/conv_fast.h"
#include "cpu/conv_kernels.h"
#include "core/tensor.h"

static int enabled = 1;
void ac_convfast_enable(int on) { enabled = on ? 1 : 0; }

int ac_convfast_supports(const ac_conv2d_cfg *c) {
  if (c->OH < 1 || c->OW < 1) return 0;
  if (ac_dw3_matches(c)) return 1;
  return c->groups == 1;
}

int ac_convfast_preferred(const ac_conv2d_cfg *c) {
  if (!enabled || !ac_convfast_supports(c)) return 0;
  if (ac_dw3_matches(c) || (c->kh == 1 && c->kw == 1) || ac_sd_active(c)) return 1;
  /* dense k x k: with fewer than 16 output channels the GEMM has a single
   * short row block and the im2col copy dominates; the wide-chunk path wins */
  return c->O >= 16;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int64_t ac_convfast_workspace(const ac_conv2d_cfg *c) {
  if (!ac_convfast_supports(c) || ac_dw3_matches(c)) return 0;
  int64_t need = ac_conv_is_1x1(c) ? ac_pw_workspace(c) : ac_im2col_workspace(c);
  if (ac_sd_shape(c)) need = max64(need, ac_sd_workspace(c));
  return max64(need, ac_wgrad_workspace(c));
}

static int check(const ac_conv2d_cfg *c, const float *ws) {
  if (!ac_convfast_supports(c)) return ac_fail("conv2d (fast): configuration not supported");
  if (!ac_dw3_matches(c) && ws == NULL) return ac_fail("conv2d (fast): missing workspace");
  return 0;
}

int ac_convfast_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                        const float *b, float *ws) {
  if (check(c, ws)) return -1;
  if (ac_dw3_matches(c))
    ac_dw3_forward(c, y, x, w, b);
  else if (ac_sd_active(c))
    ac_sd_forward(c, y, x, w, b);
  else if (ac_conv_is_1x1(c))
    ac_pw_forward(c, y, x, w, b, ws);
  else
    ac_im2col_forward(c, y, x, w, b, ws);
  return 0;
}

int ac_convfast_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy,
                               const float *w, float *ws) {
  if (check(c, ws)) return -1;
  if (ac_dw3_matches(c))
    ac_dw3_backward_input(c, gx, gy, w);
  else if (ac_sd_active(c) && ac_sd_input_ok(c))
    ac_sd_backward_input(c, gx, gy, w);
  else if (ac_conv_is_1x1(c))
    ac_pw_backward_input(c, gx, gy, w, ws);
  else
    ac_im2col_backward_input(c, gx, gy, w, ws);
  return 0;
}

int ac_convfast_fused_backward_ok(const ac_conv2d_cfg *c) {
  return c->path == AC_CONV_FAST && ac_dw3_matches(c);
}

int ac_convfast_backward_fused(const ac_conv2d_cfg *c, float *gx, float *gw, float *gb,
                               const float *x, const float *gy, const float *w, float scale) {
  if (!ac_dw3_matches(c))
    return ac_fail("conv2d (fast): fused backward is for depthwise 3x3 \"same\" only");
  ac_dw3_backward_params(c, gx, gw, gb, x, gy, w, scale);
  return 0;
}

int ac_convfast_backward_params(const ac_conv2d_cfg *c, float *gw, float *gb, const float *x,
                                const float *gy, float scale, float *ws) {
  if (check(c, ws)) return -1;
  if (ac_dw3_matches(c)) {
    ac_dw3_backward_params(c, NULL, gw, gb, x, gy, NULL, scale);
    return 0;
  }
  if (ac_sd_active(c))
    ac_sd_backward_params(c, gw, x, gy, scale, ws);
  else
    ac_wgrad(c, gw, x, gy, scale, ws);
  if (gb) {
    int64_t P = c->OH * c->OW;
    for (int64_t o = 0; o < c->O; o++) {
      double acc = 0;
      for (int64_t n = 0; n < c->N; n++) {
        const float *g = gy + (n * c->O + o) * P;
        for (int64_t p = 0; p < P; p++) acc += g[p];
      }
      gb[o] += scale * (float)acc;
    }
  }
  return 0;
}
