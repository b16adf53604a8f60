/*
 * nn_linear.c - fully connected layer kernels: y = x W^T + b with
 * W [O, In] (Torch/PyTorch layout). Three sgemm calls.
 */
#include <cblas.h>
#include "nn.h"
#include "tensor.h"

int ac_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N,
                      int64_t In, int64_t O) {
  if (N < 1 || In < 1 || O < 1) return ac_fail("linear: empty shape N=%lld In=%lld O=%lld",
                                              (long long)N, (long long)In, (long long)O);
  float beta = 0.0f;
  if (b) {
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < O; o++) y[n * O + o] = b[o];
    beta = 1.0f;
  }
  /* y [N, O] = x [N, In] @ W^T [In, O] */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)O, (int)In, 1.0f, x, (int)In,
              w, (int)In, beta, y, (int)O);
  return 0;
}

int ac_linear_backward_input(float *gx, const float *gy, const float *w, int64_t N, int64_t In,
                             int64_t O) {
  if (N < 1 || In < 1 || O < 1) return ac_fail("linear: empty shape");
  /* gx [N, In] = gy [N, O] @ W [O, In] */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)In, (int)O, 1.0f, gy,
              (int)O, w, (int)In, 0.0f, gx, (int)In);
  return 0;
}

int ac_linear_backward_params(float *gw, float *gb, const float *x, const float *gy, int64_t N,
                              int64_t In, int64_t O, float scale) {
  if (N < 1 || In < 1 || O < 1) return ac_fail("linear: empty shape");
  /* gw [O, In] += scale * gy^T [O, N] @ x [N, In] */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)O, (int)In, (int)N, scale, gy, (int)O,
              x, (int)In, 1.0f, gw, (int)In);
  if (gb)
    for (int64_t o = 0; o < O; o++) {
      double acc = 0;
      for (int64_t n = 0; n < N; n++) acc += gy[n * O + o];
      gb[o] += scale * (float)acc;
    }
  return 0;
}
