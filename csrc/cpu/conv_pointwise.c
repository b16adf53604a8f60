/*
 * conv_pointwise.c - 1x1 stride-1 unpadded convolutions (the pointwise half
 * of a separable convolution) with no copy of the input: per sample the
 * output is W [O, C] times the input seen as [C, H*W]. Tasks are (sample,
 * strip of positions, block of output rows): the rows are split too when
 * there are too few (sample, strip) tasks for the threads (batch-1
 * inference). The planes' rows lie H * W apart, so each K block of them is
 * packed into per-thread scratch (ac_gemm_strip) before the micro-kernels
 * read it. Every task writes a disjoint block of the output.
 */
#include "cpu/conv_kernels.h"
#include "cpu/gemm.h"
#include "core/parallel.h"

typedef struct {
  const ac_conv2d_cfg *c;
  const float *a, *w, *b; /* a: x (forward) or gy (input gradient) */
  float *out, *ws;
  int64_t nstrip, sw, colsz; /* strips, strip width, per-thread scratch floats */
  int64_t nob, ob;           /* row blocks per (sample, strip) and rows per block */
} pw_ctx;

/* Output rows M split into nob blocks of ob (a multiple of 8) rows while
 * there are fewer than 4 tasks per thread and blocks keep >= 32 rows. */
static void pw_plan(pw_ctx *t, int64_t M) {
  int64_t nt = ac_get_num_threads(), tasks = t->c->N * t->nstrip, nob = 1;
  while (tasks * nob < 4 * nt && M / (nob * 2) >= 32) nob *= 2;
  t->nob = nob;
  t->ob = ((M + nob - 1) / nob + 7) / 8 * 8;
}

int64_t ac_pw_workspace(const ac_conv2d_cfg *c) {
  return ac_get_num_threads() * ac_gemm_strip_pack(ac_conv_strip_width(c));
}

/* y[n][o0:o1][p0:p1] = W[o0:o1] x[n][:, p0:p1] (+ b) */
static void pw_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  pw_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, K = c->C;
  for (int64_t q = begin; q < end; q++) {
    int64_t ob = q % t->nob, s = (q / t->nob) % t->nstrip, n = q / (t->nob * t->nstrip);
    int64_t p0 = s * t->sw, p1 = p0 + t->sw < P ? p0 + t->sw : P, S = p1 - p0;
    int64_t o0 = ob * t->ob, o1 = o0 + t->ob < c->O ? o0 + t->ob : c->O;
    if (o0 >= o1 || S <= 0) continue;
    const float *xn = t->a + n * c->C * c->H * c->W;
    float *yn = t->out + n * c->O * P + p0 + o0 * P;
    ac_gemm_strip(0, o1 - o0, S, K, t->w + o0 * K, K, xn + p0, P, yn, P, t->ws + tid * t->colsz);
    if (t->b) ac_conv_add_bias(yn, t->b + o0, o1 - o0, S, P);
  }
}

/* gx[n][k0:k1][p0:p1] = W^T[k0:k1, :] gy[n][:, p0:p1]: W [O, C] read
 * transposed in place. */
static void pw_backward_input_task(void *vctx, int64_t begin, int64_t end, int tid) {
  pw_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, K = c->C;
  for (int64_t q = begin; q < end; q++) {
    int64_t ob = q % t->nob, s = (q / t->nob) % t->nstrip, n = q / (t->nob * t->nstrip);
    int64_t p0 = s * t->sw, p1 = p0 + t->sw < P ? p0 + t->sw : P;
    int64_t k0 = ob * t->ob, k1 = k0 + t->ob < K ? k0 + t->ob : K;
    if (k0 >= k1 || p1 <= p0) continue;
    ac_gemm_strip(1, k1 - k0, p1 - p0, c->O, t->w + k0, K, t->a + n * c->O * P + p0, P,
                  t->out + n * c->C * P + k0 * P + p0, P, t->ws + tid * t->colsz);
  }
}

void ac_pw_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                   const float *b, float *ws) {
  pw_ctx t = {c, x, w, b, y, ws, ac_conv_nstrips(c), ac_conv_strip_width(c),
              ac_gemm_strip_pack(ac_conv_strip_width(c)), 1, c->O};
  pw_plan(&t, c->O);
  ac_parallel_for(c->N * t.nstrip * t.nob, ac_conv_grain(t.ob * c->C * t.sw), pw_forward_task, &t);
}

void ac_pw_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy, const float *w,
                          float *ws) {
  pw_ctx t = {c, gy, w, NULL, gx, ws, ac_conv_nstrips(c), ac_conv_strip_width(c),
              ac_gemm_strip_pack(ac_conv_strip_width(c)), 1, c->C};
  pw_plan(&t, c->C);
  ac_parallel_for(c->N * t.nstrip * t.nob, ac_conv_grain(t.ob * c->O * t.sw),
                  pw_backward_input_task, &t);
}
