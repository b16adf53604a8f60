/*
 * conv_im2col.c - groups == 1 convolutions other than 1x1 stride-1 unpadded
 * ones (k x k kernels, strided 1x1 shortcuts): the im2col columns of a
 * strip of at most 256 output positions go into per-thread scratch and one
 * GEMM per strip multiplies them by the weight [O, C*kh*kw]. Forward tasks
 * are (sample, strip), each writing its own block of y. The input gradient
 * is the TN GEMM W^T gy per strip, scattered back by col2im; strips of one
 * sample overlap in gx, so its tasks are whole samples.
 */
#include <string.h>
#include "cpu/conv_kernels.h"
#include "cpu/gemm.h"
#include "core/parallel.h"

/* Columns of output positions [p0, p1) of one sample: cols[k * S + s]
 * (k = (ci*kh + i)*kw + j, s = p - p0). */
static void im2col_strip(const ac_conv2d_cfg *c, const float *xn, int64_t p0, int64_t p1,
                         float *cols) {
  int64_t S = p1 - p0;
  for (int64_t ci = 0; ci < c->C; ci++) {
    const float *xp = xn + ci * c->H * c->W;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        int64_t k = (ci * c->kh + i) * c->kw + j;
        float *row = cols + k * S;
        for (int64_t p = p0; p < p1;) {
          int64_t oh = p / c->OW, ow0 = p % c->OW;
          int64_t run = c->OW - ow0 < p1 - p ? c->OW - ow0 : p1 - p;
          int64_t h = oh * c->sh - c->pt + i;
          float *dst = row + (p - p0);
          if (h < 0 || h >= c->H) {
            for (int64_t q = 0; q < run; q++) dst[q] = 0.0f;
          } else if (c->sw == 1) {
            /* stride 1: zeros, one contiguous piece of the input row, zeros */
            const float *xr = xp + h * c->W;
            int64_t w0 = ow0 - c->pl + j; /* input column of q = 0 */
            int64_t qa = w0 < 0 ? -w0 : 0, qb = c->W - w0 < run ? c->W - w0 : run;
            if (qb < qa) qb = qa;
            for (int64_t q = 0; q < qa; q++) dst[q] = 0.0f;
            if (qb > qa) memcpy(dst + qa, xr + w0 + qa, sizeof(float) * (size_t)(qb - qa));
            for (int64_t q = qb; q < run; q++) dst[q] = 0.0f;
          } else {
            const float *xr = xp + h * c->W;
            for (int64_t q = 0; q < run; q++) {
              int64_t ww = (ow0 + q) * c->sw - c->pl + j;
              dst[q] = (ww >= 0 && ww < c->W) ? xr[ww] : 0.0f;
            }
          }
          p += run;
        }
      }
  }
}

/* gx[n] += columns cols[k * S + s] of output positions [p0, p1). */
static void col2im_strip(const ac_conv2d_cfg *c, float *gxn, int64_t p0, int64_t p1,
                         const float *cols) {
  int64_t S = p1 - p0;
  for (int64_t ci = 0; ci < c->C; ci++) {
    float *gp = gxn + ci * c->H * c->W;
    for (int64_t i = 0; i < c->kh; i++)
      for (int64_t j = 0; j < c->kw; j++) {
        const float *row = cols + ((ci * c->kh + i) * c->kw + j) * S;
        for (int64_t p = p0; p < p1;) {
          int64_t oh = p / c->OW, ow0 = p % c->OW;
          int64_t run = c->OW - ow0 < p1 - p ? c->OW - ow0 : p1 - p;
          int64_t h = oh * c->sh - c->pt + i;
          if (h >= 0 && h < c->H && c->sw == 1) {
            /* stride 1: one contiguous piece of the row */
            const float *src = row + (p - p0);
            float *gr = gp + h * c->W;
            int64_t w0 = ow0 - c->pl + j;
            int64_t qa = w0 < 0 ? -w0 : 0, qb = c->W - w0 < run ? c->W - w0 : run;
            if (qb > qa) {
              float *restrict g = gr + w0 + qa;
              const float *restrict sq = src + qa;
              for (int64_t q = 0; q < qb - qa; q++) g[q] += sq[q];
            }
          } else if (h >= 0 && h < c->H) {
            const float *src = row + (p - p0);
            float *gr = gp + h * c->W;
            for (int64_t q = 0; q < run; q++) {
              int64_t ww = (ow0 + q) * c->sw - c->pl + j;
              if (ww >= 0 && ww < c->W) gr[ww] += src[q];
            }
          }
          p += run;
        }
      }
  }
}

typedef struct {
  const ac_conv2d_cfg *c;
  const float *a, *w, *b; /* a: x (forward) or gy (input gradient) */
  float *out, *ws;
  int64_t nstrip, sw, colsz; /* strips, strip width, per-thread scratch floats */
} ic_ctx;

int64_t ac_im2col_workspace(const ac_conv2d_cfg *c) {
  return ac_get_num_threads() * c->C * c->kh * c->kw * ac_conv_strip_width(c);
}

static void ic_forward_task(void *vctx, int64_t begin, int64_t end, int tid) {
  ic_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  float *cols = t->ws + tid * t->colsz;
  for (int64_t q = begin; q < end; q++) {
    int64_t s = q % t->nstrip, n = q / t->nstrip;
    int64_t p0 = s * t->sw, p1 = p0 + t->sw < P ? p0 + t->sw : P, S = p1 - p0;
    if (S <= 0) continue;
    float *yn = t->out + n * c->O * P + p0;
    im2col_strip(c, t->a + n * c->C * c->H * c->W, p0, p1, cols);
    ac_gemm_nn(c->O, S, K, 1.0f, t->w, K, cols, S, 0, yn, P);
    if (t->b) ac_conv_add_bias(yn, t->b, c->O, S, P);
  }
}

static void ic_backward_input_task(void *vctx, int64_t begin, int64_t end, int tid) {
  ic_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw;
  float *cols = t->ws + tid * t->colsz;
  for (int64_t n = begin; n < end; n++) {
    float *gxn = t->out + n * c->C * c->H * c->W;
    memset(gxn, 0, sizeof(float) * (size_t)(c->C * c->H * c->W));
    for (int64_t p0 = 0; p0 < P; p0 += t->sw) {
      int64_t p1 = p0 + t->sw < P ? p0 + t->sw : P, S = p1 - p0;
      ac_gemm_tn(K, S, c->O, 1.0f, t->w, K, t->a + n * c->O * P + p0, P, 0, cols, S);
      col2im_strip(c, gxn, p0, p1, cols);
    }
  }
}

void ac_im2col_forward(const ac_conv2d_cfg *c, float *y, const float *x, const float *w,
                       const float *b, float *ws) {
  int64_t K = c->C * c->kh * c->kw;
  ic_ctx t = {c, x, w, b, y, ws, ac_conv_nstrips(c), ac_conv_strip_width(c),
              K * ac_conv_strip_width(c)};
  ac_parallel_for(c->N * t.nstrip, ac_conv_grain(c->O * K * t.sw), ic_forward_task, &t);
}

void ac_im2col_backward_input(const ac_conv2d_cfg *c, float *gx, const float *gy,
                              const float *w, float *ws) {
  int64_t K = c->C * c->kh * c->kw;
  ic_ctx t = {c, gy, w, NULL, gx, ws, ac_conv_nstrips(c), ac_conv_strip_width(c),
              K * ac_conv_strip_width(c)};
  ac_parallel_for(c->N, 1, ic_backward_input_task, &t);
}
