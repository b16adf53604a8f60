/*
 * nn_linear.c - fully connected layer kernels: y = x W^T + b with
 * W [O, In] (Torch/PyTorch layout). Three GEMMs (cpu/gemm.h) on the
 * library's thread pool: small batches make OpenBLAS's own threads a poor
 * fit (wake-up cost, spinning threads that compete with the pool on a busy
 * machine).
 */
#include "cpu/gemm.h"
#include "nn/nn.h"
#include "core/tensor.h"

int ac_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N,
                      int64_t In, int64_t O) {
  if (N < 1 || In < 1 || O < 1) return ac_fail("empty shape N=%lld In=%lld O=%lld",
                                              (long long)N, (long long)In, (long long)O);
  int beta = 0;
  if (b) {
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < O; o++) y[n * O + o] = b[o];
    beta = 1;
  }
  /* y [N, O] = x [N, In] @ W^T [In, O] */
  ac_gemm_parallel(2, N, O, In, 1.0f, x, In, w, In, beta, y, O);
  return 0;
}

int ac_linear_backward_input(float *gx, const float *gy, const float *w, int64_t N, int64_t In,
                             int64_t O) {
  if (N < 1 || In < 1 || O < 1) return ac_fail("empty shape");
  /* gx [N, In] = gy [N, O] @ W [O, In] */
  ac_gemm_parallel(0, N, In, O, 1.0f, gy, O, w, In, 0, gx, In);
  return 0;
}

int ac_linear_backward_params(float *gw, float *gb, const float *x, const float *gy, int64_t N,
                              int64_t In, int64_t O, float scale) {
  if (N < 1 || In < 1 || O < 1) return ac_fail("empty shape");
  /* gw [O, In] += scale * gy^T [O, N] @ x [N, In] */
  ac_gemm_parallel(1, O, In, N, scale, gy, O, x, In, 1, gw, In);
  if (gb)
    for (int64_t o = 0; o < O; o++) {
      double acc = 0;
      for (int64_t n = 0; n < N; n++) acc += gy[n * O + o];
      gb[o] += scale * (float)acc;
    }
  return 0;
}
