/*
 * conv_wgrad.c - weight gradient of the groups == 1 convolutions as one
 * GEMM over every sample: gw [O, K] += scale * gy [O, N*P] cols [N*P, K], the reduction
 * running over all N * P output positions. Its columns are cut into panels
 * of at most 256 (K), its rows into blocks of at most 256 (O); each task
 * owns one tile of gw (and, for small weights, one group of samples, with
 * its own [O, K] partial sums) and walks its positions in chunks of at most
 * 256 that stay inside one sample: the chunk's im2col columns for the
 * panel are packed once, transposed, into [32-column strip][position][32]
 * (contiguous B strips for the micro-kernel; a 1x1 stride-1 input is
 * transposed 16 x 16 in registers), then every 8-row block of gy's rows
 * runs against them. The split depends on the shapes only, so the result
 * does not depend on the thread count. Portable packing, or AVX-512 (16 x
 * 16) or AVX2 (8 x 8) register transposes for 1x1 inputs; the GEMM
 * dispatches by itself.
 */
#include <immintrin.h>
#include "cpu/conv_kernels.h"
#include "cpu/gemm.h"
#include "cpu/cpu.h"
#include "core/parallel.h"

#define GW_PANEL 256 /* K columns per tile */
#define GW_ROWS 256  /* O rows per tile (at most) */
#define GW_TASKS 8   /* tasks aimed at */
#define GW_CHUNK 256 /* output positions per chunk (the K of each GEMM call), at most */

typedef struct {
  int64_t ncp, nc;   /* panel width (multiple of 32) and panels */
  int64_t orow, no;  /* rows per block (multiple of 8) and blocks */
  int64_t nk;        /* sample groups (each with its own partial sums when > 1) */
  int64_t kcw, nkc;  /* positions per chunk and chunks per sample */
} gw_plan;

static void gw_plan_for(const ac_conv2d_cfg *c, gw_plan *pl) {
  int64_t K = c->C * c->kh * c->kw, O = c->O, P = c->OH * c->OW;
  pl->nc = (K + GW_PANEL - 1) / GW_PANEL;
  pl->ncp = ((K + pl->nc - 1) / pl->nc + 31) / 32 * 32;
  pl->nc = (K + pl->ncp - 1) / pl->ncp;
  pl->no = (O + GW_ROWS - 1) / GW_ROWS;
  pl->nk = 1;
  /* small weights: split the samples first (the partial sums are small) */
  while (pl->nc * pl->no * pl->nk < GW_TASKS && pl->nk * 2 <= c->N &&
         pl->nk * 2 * O * K <= ((int64_t)1 << 18))
    pl->nk *= 2;
  /* then the rows, down to blocks of 32 (each block packs its own columns) */
  for (;;) {
    int64_t orow = ((O + pl->no - 1) / pl->no + 7) / 8 * 8;
    if (pl->nc * pl->no * pl->nk >= GW_TASKS || orow < 64) break;
    pl->no *= 2;
  }
  pl->orow = ((O + pl->no - 1) / pl->no + 7) / 8 * 8;
  pl->no = (O + pl->orow - 1) / pl->orow;
  pl->nkc = (P + GW_CHUNK - 1) / GW_CHUNK;
  pl->kcw = ((P + pl->nkc - 1) / pl->nkc + 15) / 16 * 16;
  if (pl->kcw > GW_CHUNK) pl->kcw = GW_CHUNK;
  pl->nkc = (P + pl->kcw - 1) / pl->kcw;
}

/* Floats of one thread's packed columns. */
static int64_t gw_packsz(const gw_plan *pl) { return pl->kcw * pl->ncp; }

/* Portable packing: dst[(k - j0) / 32][p - p0][(k - j0) % 32] = column k of
 * the im2col matrix at output position p, for k in [j0, j1). */
static void gw_pack_generic(const ac_conv2d_cfg *c, const float *xn, int64_t p0, int64_t p1,
                            int64_t j0, int64_t j1, float *dst) {
  int64_t S = p1 - p0;
  for (int64_t k = j0; k < j1; k++) {
    int64_t ci = k / (c->kh * c->kw), i = (k / c->kw) % c->kh, j = k % c->kw;
    float *col = dst + ((k - j0) / 32) * S * 32 + (k - j0) % 32;
    const float *xp = xn + ci * c->H * c->W;
    for (int64_t p = p0; p < p1;) {
      int64_t oh = p / c->OW, ow0 = p % c->OW;
      int64_t run = c->OW - ow0 < p1 - p ? c->OW - ow0 : p1 - p;
      int64_t h = oh * c->sh - c->pt + i;
      float *d = col + (p - p0) * 32;
      if (h < 0 || h >= c->H) {
        for (int64_t q = 0; q < run; q++) d[q * 32] = 0.0f;
      } else {
        const float *xr = xp + h * c->W;
        for (int64_t q = 0; q < run; q++) {
          int64_t ww = (ow0 + q) * c->sw - c->pl + j;
          d[q * 32] = (ww >= 0 && ww < c->W) ? xr[ww] : 0.0f;
        }
      }
      p += run;
    }
  }
}

/* The same for a 1x1 stride-1 unpadded convolution (column k is input
 * channel k): 16 channels x 16 positions per register transpose, masked at
 * the ragged ends (AVX-512 only). */
static void gw_pack1x1_avx512(const ac_conv2d_cfg *c, const float *xn, int64_t p0, int64_t p1,
                              int64_t j0, int64_t j1, float *dst) {
  int64_t S = p1 - p0, P = c->H * c->W;
  for (int64_t s0 = j0; s0 < j1; s0 += 32)
    ac_gemm_pack_t32_avx512(xn, P, s0, j1 - s0 < 32 ? j1 : s0 + 32, p0, S, dst + ((s0 - j0) / 32) * S * 32);
}

/* r[i][j] <- r[j][i]: an 8 x 8 transpose in registers. */
__attribute__((target("avx2"))) static inline void tr8_avx2(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

/* The same packing as gw_pack1x1_avx512 with AVX2: blocks of 8 channels x
 * 8 positions transposed in registers, the ragged channels and positions
 * copied one by one. */
__attribute__((target("avx2"))) static void gw_pack1x1_avx2(const ac_conv2d_cfg *c,
                                                             const float *xn, int64_t p0,
                                                             int64_t p1, int64_t j0, int64_t j1,
                                                             float *dst) {
  int64_t S = p1 - p0, P = c->H * c->W, S8 = S / 8 * 8;
  int64_t k8 = j0 + (j1 - j0) / 8 * 8;
  for (int64_t k0 = j0; k0 < k8; k0 += 8) {
    float *d = dst + ((k0 - j0) / 32) * S * 32 + (k0 - j0) % 32;
    const float *src = xn + k0 * P + p0;
    for (int64_t s = 0; s < S8; s += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * P + s);
      tr8_avx2(r);
      for (int i = 0; i < 8; i++) _mm256_storeu_ps(d + (s + i) * 32, r[i]);
    }
    for (int64_t s = S8; s < S; s++)
      for (int i = 0; i < 8; i++) d[s * 32 + i] = src[i * P + s];
  }
  for (int64_t k = k8; k < j1; k++) {
    float *d = dst + ((k - j0) / 32) * S * 32 + (k - j0) % 32;
    const float *src = xn + k * P + p0;
    for (int64_t s = 0; s < S; s++) d[s * 32] = src[s];
  }
}

typedef struct {
  const ac_conv2d_cfg *c;
  const float *x, *gy;
  float *gw, *parts, *pack;
  float scale;
  gw_plan pl;
} gw_ctx;

/* task = (sample group, row block, panel) */
static void gw_task(void *vctx, int64_t begin, int64_t end, int tid) {
  gw_ctx *t = vctx;
  const ac_conv2d_cfg *c = t->c;
  const gw_plan *pl = &t->pl;
  int64_t P = c->OH * c->OW, K = c->C * c->kh * c->kw, OK = c->O * K;
  /* 1x1 inputs: 2 = AVX-512 transposes, 1 = AVX2 ones, 0 = portable packing */
  int fast1x1 = !ac_conv_is_1x1(c) ? 0 : ac_cpu_isa() >= AC_ISA_AVX512 ? 2 : ac_cpu_isa() == AC_ISA_AVX2;
  float *pack = t->pack + tid * gw_packsz(pl);
  for (int64_t q = begin; q < end; q++) {
    int64_t cb = q % pl->nc, ob = (q / pl->nc) % pl->no, g = q / (pl->nc * pl->no);
    int64_t j0 = cb * pl->ncp, j1 = j0 + pl->ncp < K ? j0 + pl->ncp : K;
    int64_t o0 = ob * pl->orow, o1 = o0 + pl->orow < c->O ? o0 + pl->orow : c->O;
    int64_t n0 = g * c->N / pl->nk, n1 = (g + 1) * c->N / pl->nk;
    /* one group: straight into gw (alpha = scale); several: into the group's partials */
    float *C = pl->nk > 1 ? t->parts + g * OK : t->gw;
    float alpha = pl->nk > 1 ? 1.0f : t->scale;
    int acc = pl->nk > 1 ? 0 : 1;
    if (o0 >= o1 || j0 >= j1) continue;
    for (int64_t n = n0; n < n1; n++) {
      const float *xn = t->x + n * c->C * c->H * c->W, *gyn = t->gy + n * c->O * P;
      for (int64_t p0 = 0; p0 < P; p0 += pl->kcw) {
        int64_t p1 = p0 + pl->kcw < P ? p0 + pl->kcw : P, S = p1 - p0;
        if (fast1x1 == 2)
          gw_pack1x1_avx512(c, xn, p0, p1, j0, j1, pack);
        else if (fast1x1 == 1)
          gw_pack1x1_avx2(c, xn, p0, p1, j0, j1, pack);
        else
          gw_pack_generic(c, xn, p0, p1, j0, j1, pack);
        for (int64_t s0 = j0; s0 < j1; s0 += 32)
          ac_gemm_nn(o1 - o0, j1 - s0 < 32 ? j1 - s0 : 32, S, alpha, gyn + o0 * P + p0, P,
                     pack + ((s0 - j0) / 32) * S * 32, 32, acc, C + o0 * K + s0, K);
        acc = 1;
      }
    }
  }
}

int64_t ac_wgrad_workspace(const ac_conv2d_cfg *c) {
  gw_plan pl;
  gw_plan_for(c, &pl);
  return ac_get_num_threads() * gw_packsz(&pl) + (pl.nk > 1 ? pl.nk * c->O * c->C * c->kh * c->kw : 0);
}

void ac_wgrad(const ac_conv2d_cfg *c, float *gw, const float *x, const float *gy, float scale,
              float *ws) {
  int64_t P = c->OH * c->OW, nt = ac_get_num_threads(), OK = c->O * c->C * c->kh * c->kw;
  gw_ctx t = {c, x, gy, gw, NULL, ws, scale, {0}};
  gw_plan_for(c, &t.pl);
  t.parts = ws + nt * gw_packsz(&t.pl);
  int64_t tasks = t.pl.nk * t.pl.no * t.pl.nc;
  int64_t per = t.pl.orow * t.pl.ncp * P * (c->N / t.pl.nk);
  ac_parallel_for(tasks, per >= 65536 ? 1 : (65536 + per - 1) / per, gw_task, &t);
  if (t.pl.nk > 1)
    for (int64_t e = 0; e < OK; e++) {
      float s = 0.0f;
      for (int64_t g = 0; g < t.pl.nk; g++) s += t.parts[g * OK + e];
      gw[e] += scale * s;
    }
}
