/*
 * pool_fast.h - vectorised max pooling for 3x3 windows, stride 2 (any
 * padding up to 2 on the left), the max-pool of the Xception family; run-time
 * dispatch through cpu/cpu.h (AVX-512). nn_pool.c uses it when ac_poolfast_max_supports says
 * so, with the same results (values and argmax indices) as its own loops.
 */
#ifndef AC_POOL_FAST_H
#define AC_POOL_FAST_H
#include <stdint.h>
#include "nn/nn.h"

int ac_poolfast_max_supports(const ac_pool2d_cfg *c);
/* y [N, C, OH, OW], idx [N, C, OH, OW] (flat h * W + w of the maximum), x [N, C, H, W] */
int ac_poolfast_max_forward(const ac_pool2d_cfg *c, float *y, int64_t *idx, const float *x);

#endif
