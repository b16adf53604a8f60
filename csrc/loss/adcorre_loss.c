/*
 * adcorre_loss.c - kernels of the Ad-Corre loss: epsilon-guarded row
 * correlation, softmax cross-entropy, FD (adaptive weights, one GEMM per
 * embedding on the library's own kernels), MD ("present" / "reference"
 * class means), ED, the gradient of each with respect to the logits and
 * every embedding, and the confusion history ring. The definitions are in adcorre_loss.h; doc/loss.md derives
 * the gradients.
 */
#include "loss/adcorre_loss.h"

#include <immintrin.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "core/parallel.h"
#include "core/tensor.h"

/* ======================================================================== */
/* Row normalisation and correlation                                         */
/* ======================================================================== */

/* Sums with four independent double accumulators (the compiler keeps the
 * order fixed, so results do not depend on the machine or thread count). */
static double sum_f(const float *x, int64_t n) {
  double a[4] = {0, 0, 0, 0};
  int64_t t = 0;
  for (; t + 4 <= n; t += 4)
    for (int l = 0; l < 4; l++) a[l] += (double)x[t + l];
  for (; t < n; t++) a[0] += (double)x[t];
  return (a[0] + a[1]) + (a[2] + a[3]);
}

static double dot_f(const float *x, const float *y, int64_t n) {
  double a[4] = {0, 0, 0, 0};
  int64_t t = 0;
  for (; t + 4 <= n; t += 4)
    for (int l = 0; l < 4; l++) a[l] += (double)x[t + l] * (double)y[t + l];
  for (; t < n; t++) a[0] += (double)x[t] * (double)y[t];
  return (a[0] + a[1]) + (a[2] + a[3]);
}

static void rownorm_one(const float *x, int64_t m, double eps, float *u, double *s) {
  double mean = sum_f(x, m) / (double)m;
  double a[4] = {0, 0, 0, 0};
  int64_t t = 0;
  for (; t + 4 <= m; t += 4)
    for (int l = 0; l < 4; l++) {
      double c = (double)x[t + l] - mean;
      a[l] += c * c;
    }
  for (; t < m; t++) {
    double c = (double)x[t] - mean;
    a[0] += c * c;
  }
  double ss = (a[0] + a[1]) + (a[2] + a[3]);
  double si = sqrt(ss + eps), inv = 1.0 / si;
  for (t = 0; t < m; t++) u[t] = (float)(((double)x[t] - mean) * inv);
  *s = si;
}

void ac_rownorm_forward(const float *X, int64_t n, int64_t m, double eps, float *U, double *s) {
  for (int64_t i = 0; i < n; i++) rownorm_one(X + i * m, m, eps, U + i * m, s + i);
}

/* dL/dc = (g - u <u,g>) / s ; dL/dx = dL/dc - mean(dL/dc). */
double ac_rownorm_backward_row(const float *u, double s, const double *g, int64_t m, double *dx) {
  double dot = 0.0, gsum = 0.0, usum = 0.0;
  for (int64_t t = 0; t < m; t++) {
    dot += (double)u[t] * g[t];
    gsum += g[t];
    usum += u[t];
  }
  double inv = 1.0 / s, mean = (gsum - dot * usum) * inv / (double)m, sq = 0.0;
  for (int64_t t = 0; t < m; t++) {
    double v = (g[t] - (double)u[t] * dot) * inv - mean;
    dx[t] = v;
    sq += v * v;
  }
  return sq;
}

/* The same two steps on a double row (MD's class means). */
static void rownorm_forward_d(double *x, int64_t m, double eps, double *s) {
  double sum = 0.0, ss = 0.0;
  for (int64_t t = 0; t < m; t++) sum += x[t];
  double mean = sum / (double)m;
  for (int64_t t = 0; t < m; t++) {
    x[t] -= mean;
    ss += x[t] * x[t];
  }
  *s = sqrt(ss + eps);
  double inv = 1.0 / *s;
  for (int64_t t = 0; t < m; t++) x[t] *= inv;
}

static void rownorm_backward_d(const double *u, double s, const double *g, int64_t m, double *dx) {
  double dot = 0.0, gsum = 0.0, usum = 0.0;
  for (int64_t t = 0; t < m; t++) {
    dot += u[t] * g[t];
    gsum += g[t];
    usum += u[t];
  }
  double inv = 1.0 / s, mean = (gsum - dot * usum) * inv / (double)m;
  for (int64_t t = 0; t < m; t++) dx[t] = (g[t] - u[t] * dot) * inv - mean;
}

int ac_corrcoef(const float *X, int64_t n, int64_t m, double eps, float *R, float *U_scratch,
                double *s_scratch) {
  if (n < 1 || m < 1 || n > INT_MAX || m > INT_MAX)
    return ac_fail("corrcoef: matrix [%lld, %lld] must have 1..%d rows and columns", (long long)n,
                   (long long)m, INT_MAX);
  ac_rownorm_forward(X, n, m, eps, U_scratch, s_scratch);
  /* the library's own GEMM (not OpenBLAS: no BLAS threads woken for a small product) */
  ac_gemm_nt(n, n, m, 1.0f, U_scratch, m, U_scratch, m, 0, R, n);
  return 0;
}

/* ======================================================================== */
/* Softmax cross-entropy                                                      */
/* ======================================================================== */

double ac_ce_forward(const float *Z, const int64_t *y, int64_t B, int64_t C, float *P) {
  double total = 0.0;
  for (int64_t b = 0; b < B; b++) {
    const float *z = Z + b * C;
    float *p = P + b * C;
    double mx = z[0];
    for (int64_t c = 1; c < C; c++)
      if (z[c] > mx) mx = z[c];
    double sum = 0.0;
    for (int64_t c = 0; c < C; c++) sum += exp((double)z[c] - mx);
    double lse = mx + log(sum);
    for (int64_t c = 0; c < C; c++) p[c] = (float)exp((double)z[c] - lse);
    total += lse - (double)z[y[b]];
  }
  return total / (double)B;
}

double ac_ce_backward(const float *P, const int64_t *y, int64_t B, int64_t C, double scale,
                      float *gZ) {
  double sq = 0.0;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t c = 0; c < C; c++) {
      double v = scale * ((double)P[b * C + c] - (c == y[b] ? 1.0 : 0.0));
      gZ[b * C + c] = (float)v;
      sq += v * v;
    }
  }
  return sq;
}

/* ======================================================================== */
/* Confusion history                                                          */
/* ======================================================================== */

void ac_adcorre_clear_history(ac_adcorre *L) {
  L->hist_len = 0;
  L->hist_pos = 0;
  memset(L->counts, 0, sizeof(int64_t) * (size_t)L->C * (size_t)L->C);
}

void ac_adcorre_record(ac_adcorre *L, const int64_t *y, const int64_t *pred, int64_t n) {
  if (L->hist_cap <= 0) return;
  int64_t C = L->C;
  for (int64_t i = 0; i < n; i++) {
    if (L->hist_len == L->hist_cap) {
      int64_t oy = L->hist_y[L->hist_pos], op = L->hist_p[L->hist_pos];
      L->counts[oy * C + op]--;
    } else {
      L->hist_len++;
    }
    L->hist_y[L->hist_pos] = (int32_t)y[i];
    L->hist_p[L->hist_pos] = (int32_t)pred[i];
    L->counts[y[i] * C + pred[i]]++;
    L->hist_pos = (L->hist_pos + 1) % L->hist_cap;
  }
}

void ac_adcorre_confusion(const ac_adcorre *L, double *M) {
  int64_t C = L->C;
  if (L->pinned) {
    memcpy(M, L->M_pinned, sizeof(double) * (size_t)(C * C));
    return;
  }
  for (int64_t r = 0; r < C; r++) {
    int64_t tot = 0;
    for (int64_t c = 0; c < C; c++) tot += L->counts[r * C + c];
    for (int64_t c = 0; c < C; c++)
      M[r * C + c] = tot > 0 ? (double)L->counts[r * C + c] / (double)tot : 0.0;
  }
}

void ac_adcorre_set_confusion(ac_adcorre *L, const double *M) {
  if (!M) {
    L->pinned = 0;
    return;
  }
  memcpy(L->M_pinned, M, sizeof(double) * (size_t)L->C * (size_t)L->C);
  L->pinned = 1;
}

/* M[c,c] of the matrix the weights use. */
static double confusion_diag(const ac_adcorre *L, int64_t c) {
  int64_t C = L->C;
  if (L->pinned) return L->M_pinned[c * C + c];
  int64_t tot = 0;
  for (int64_t t = 0; t < C; t++) tot += L->counts[c * C + t];
  return tot > 0 ? (double)L->counts[c * C + c] / (double)tot : 0.0;
}

/* ======================================================================== */
/* Life cycle and workspace                                                   */
/* ======================================================================== */

int ac_adcorre_init(ac_adcorre *L, int cls, int64_t history) {
  memset(L, 0, sizeof(*L));
  if (cls < 1) return ac_fail("AdCorreLoss: classes must be >= 1, got %d", cls);
  if (history < 0 || history > ((int64_t)1 << 40))
    return ac_fail("AdCorreLoss: history must be in 0..2^40, got %lld", (long long)history);
  L->C = cls;
  L->lambda = 50.0 / (double)cls;
  L->eps = 1e-8;
  L->use_fd = L->use_md = L->use_ed = 1;
  L->adaptive = 1;
  L->md_mode = AC_MD_PRESENT;
  L->hist_cap = history;
  size_t hc = history > 0 ? (size_t)history : 1;
  L->hist_y = malloc(sizeof(int32_t) * hc);
  L->hist_p = malloc(sizeof(int32_t) * hc);
  L->counts = calloc((size_t)cls * (size_t)cls, sizeof(int64_t));
  L->M_pinned = calloc((size_t)cls * (size_t)cls, sizeof(double));
  if (!L->hist_y || !L->hist_p || !L->counts || !L->M_pinned) {
    ac_adcorre_free(L);
    return ac_fail("AdCorreLoss: out of memory for a history of %lld predictions",
                   (long long)history);
  }
  return 0;
}

void ac_adcorre_free(ac_adcorre *L) {
  free(L->hist_y);
  free(L->hist_p);
  free(L->counts);
  free(L->M_pinned);
  free(L->ws);
  free(L->in_y);
  free((void *)L->in_e);
  memset(L, 0, sizeof(*L));
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Lays the workspace out for (B, k, d), growing it if needed. */
static int workspace(ac_adcorre *L, int64_t B, int64_t k, int64_t d) {
  size_t C = (size_t)L->C, b = (size_t)B, kk = (size_t)k, dd = (size_t)d;
  size_t sz[15] = {
      sizeof(int64_t) * b,          sizeof(float) * b * C,      sizeof(float) * kk * b * dd,
      sizeof(double) * kk * b,      sizeof(float) * kk * b * dd, sizeof(float) * b * b,
      sizeof(double) * b * dd,      sizeof(double) * kk * C * dd, sizeof(double) * kk * C,
      sizeof(double) * C,           sizeof(int64_t) * C,        sizeof(int) * C,
      sizeof(double) * (4 * dd + C * dd), sizeof(double) * b, sizeof(double) * kk * b};
  size_t total = 0;
  for (int i = 0; i < 15; i++) total += round64(sz[i]);
  if (total > L->ws_bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, total) != 0 || !p)
      return ac_fail("AdCorreLoss: out of memory (%zu bytes of workspace for B=%lld, k=%lld, d=%lld)",
                     total, (long long)B, (long long)k, (long long)d);
    free(L->ws);
    L->ws = p;
    L->ws_bytes = total;
  }
  char *q = L->ws;
  void **slot[15] = {(void **)&L->y,  (void **)&L->P,  (void **)&L->U,    (void **)&L->s,
                     (void **)&L->V,  (void **)&L->A,  (void **)&L->S,    (void **)&L->mu,
                     (void **)&L->ms, (void **)&L->mw, (void **)&L->ncls, (void **)&L->pos,
                     (void **)&L->row, (void **)&L->wa, (void **)&L->rowval};
  for (int i = 0; i < 15; i++) {
    *slot[i] = q;
    q += round64(sz[i]);
  }
  return 0;
}

/* ======================================================================== */
/* Forward                                                                    */
/* ======================================================================== */

/* Row-parallel pieces. A "row" r = j * B + b is sample b of embedding j. */
typedef struct row_ctx {
  ac_adcorre *L;
  const float *const *E;
  float *const *gE;
  int64_t B, k, d;
  int fd_on, ed_on;
  double cfd, ced;
  double sq[64][2]; /* per-thread |dx_fd|^2, |dx_ed|^2 */
} row_ctx;

static int64_t row_grain(int64_t d) { return d >= 4096 ? 1 : 4096 / d; }

static void rownorm_task(void *vctx, int64_t r0, int64_t r1, int tid) {
  row_ctx *c = vctx;
  (void)tid;
  for (int64_t r = r0; r < r1; r++)
    rownorm_one(c->E[r / c->B] + (r % c->B) * c->d, c->d, c->L->eps, c->L->U + r * c->d,
                c->L->s + r);
}

/* Embeddings [j0, j1): V_j = A U_j with the library's GEMM (the products are
 * small: OpenBLAS would wake its own threads, which then spin against the
 * pool), then rowval = <u_r, v_r> for the rows of embedding j. */
static void fd_dot_task(void *vctx, int64_t j0, int64_t j1, int tid) {
  row_ctx *c = vctx;
  (void)tid;
  int64_t B = c->B, d = c->d;
  for (int64_t j = j0; j < j1; j++) {
    ac_gemm_nn(B, d, B, 1.0f, c->L->A, B, c->L->U + j * B * d, d, 0, c->L->V + j * B * d, d);
    for (int64_t r = j * B; r < (j + 1) * B; r++)
      c->L->rowval[r] = dot_f(c->L->U + r * d, c->L->V + r * d, d);
  }
}

/* FD: A = W o Omega, V_j = A U_j, value = sum W - sum_a <u_a, V_a>. */
static double fd_forward(ac_adcorre *L, row_ctx *ctx, int64_t B, int64_t k, int64_t d) {
  if (B < 2) return 0.0;
  const int64_t *y = L->y;
  double *wa = L->wa, sumW = 0.0;
  /* mw [C] is free until md_forward: per-class 1 - M[c,c] */
  for (int64_t c = 0; c < L->C; c++) L->mw[c] = L->adaptive ? 1.0 - confusion_diag(L, c) : 0.0;
  for (int64_t a = 0; a < B; a++) wa[a] = L->mw[y[a]];
  for (int64_t a = 0; a < B; a++) {
    for (int64_t b = 0; b < B; b++) {
      if (a == b) {
        L->A[a * B + b] = 0.0f;
        continue;
      }
      double W = 1.0 + wa[a] + wa[b];
      sumW += W;
      L->A[a * B + b] = (float)(y[a] == y[b] ? W : -W);
    }
  }
  ac_parallel_for(k, B * B * d >= 65536 ? 1 : 65536 / (B * B * d) + 1, fd_dot_task, ctx);
  double total = 0.0;
  for (int64_t j = 0; j < k; j++) {
    double dot = 0.0;
    for (int64_t b = 0; b < B; b++) dot += L->rowval[j * B + b];
    total += sumW - dot;
  }
  return total / ((double)k * (double)B * (double)B);
}

/* ED, sample b: S_b = sum_j u_j,b (saved), value k(k-1) + |S_b|^2 - sum_j |u_j,b|^2. */
static void ed_task(void *vctx, int64_t b0, int64_t b1, int tid) {
  row_ctx *c = vctx;
  ac_adcorre *L = c->L;
  int64_t B = c->B, k = c->k, d = c->d;
  (void)tid;
  for (int64_t b = b0; b < b1; b++) {
    double *S = L->S + b * d, sq = 0.0;
    for (int64_t t = 0; t < d; t++) S[t] = 0.0;
    for (int64_t j = 0; j < k; j++) {
      const float *u = L->U + (j * B + b) * d;
      for (int64_t t = 0; t < d; t++) S[t] += (double)u[t];
      sq += dot_f(u, u, d);
    }
    double a4[4] = {0, 0, 0, 0};
    int64_t t = 0;
    for (; t + 4 <= d; t += 4)
      for (int l = 0; l < 4; l++) a4[l] += S[t + l] * S[t + l];
    for (; t < d; t++) a4[0] += S[t] * S[t];
    L->rowval[b] = (double)(k * (k - 1)) + ((a4[0] + a4[1]) + (a4[2] + a4[3])) - sq;
  }
}

static double ed_forward(ac_adcorre *L, row_ctx *ctx, int64_t B, int64_t k, int64_t d) {
  if (k < 2) return 0.0;
  ac_parallel_for(B, row_grain(k * d), ed_task, ctx);
  double total = 0.0;
  for (int64_t b = 0; b < B; b++) total += L->rowval[b];
  return total / ((double)B * (double)k * (double)k);
}

/* MD: class means of each E_j, normalised rows mu (C' of them), value
 * C'(C'-1) + |sum mu|^2 - sum |mu|^2 over C'^2. */
static double md_forward(ac_adcorre *L, const float *const *E, int64_t B, int64_t k, int64_t d) {
  int64_t C = L->C, Cp = 0;
  const int64_t *y = L->y;
  for (int64_t c = 0; c < C; c++) L->ncls[c] = 0;
  for (int64_t b = 0; b < B; b++) L->ncls[y[b]]++;
  if (L->md_mode == AC_MD_REFERENCE) {
    for (int64_t c = 0; c < C; c++) {
      L->pos[c] = (int)c;
      L->mw[c] = (double)L->ncls[c] + (double)(B - L->ncls[c]) * AC_MD_REFERENCE_WEIGHT;
    }
    Cp = C;
  } else {
    for (int64_t c = 0; c < C; c++) {
      L->pos[c] = L->ncls[c] > 0 ? (int)Cp++ : -1;
      L->mw[c] = (double)L->ncls[c];
    }
  }
  L->md_classes = (int)Cp;
  if (Cp < 2) return 0.0;
  double total = 0.0, *T = L->row;
  for (int64_t j = 0; j < k; j++) {
    const float *X = E[j];
    double *mu = L->mu + j * C * d;
    for (int64_t t = 0; t < Cp * d; t++) mu[t] = 0.0;
    for (int64_t t = 0; t < d; t++) T[t] = 0.0;
    for (int64_t b = 0; b < B; b++) {
      double *m = mu + L->pos[y[b]] * d;
      const float *x = X + b * d;
      for (int64_t t = 0; t < d; t++) m[t] += x[t];
    }
    if (L->md_mode == AC_MD_REFERENCE) {
      const double e = AC_MD_REFERENCE_WEIGHT;
      for (int64_t b = 0; b < B; b++) {
        const float *x = X + b * d;
        for (int64_t t = 0; t < d; t++) T[t] += x[t];
      }
      for (int64_t c = 0; c < C; c++) {
        double *m = mu + c * d, inv = 1.0 / L->mw[c];
        for (int64_t t = 0; t < d; t++) m[t] = ((1.0 - e) * m[t] + e * T[t]) * inv;
      }
    } else {
      for (int64_t c = 0; c < C; c++) {
        if (L->pos[c] < 0) continue;
        double *m = mu + L->pos[c] * d, inv = 1.0 / L->mw[c];
        for (int64_t t = 0; t < d; t++) m[t] *= inv;
      }
    }
    double sq = 0.0, ss = 0.0;
    for (int64_t t = 0; t < d; t++) T[t] = 0.0;
    for (int64_t p = 0; p < Cp; p++) {
      double *m = mu + p * d;
      rownorm_forward_d(m, d, L->eps, L->ms + j * C + p);
      for (int64_t t = 0; t < d; t++) {
        T[t] += m[t];
        sq += m[t] * m[t];
      }
    }
    for (int64_t t = 0; t < d; t++) ss += T[t] * T[t];
    total += (double)(Cp * (Cp - 1)) + ss - sq;
  }
  return total / ((double)k * (double)Cp * (double)Cp);
}

int ac_adcorre_forward(ac_adcorre *L, const float *Z, const float *const *E, int64_t k,
                       int64_t B, int64_t d, const int64_t *y, int training) {
  L->have_forward = 0;
  if (B < 1 || k < 1 || d < 1 || B > INT_MAX || d > INT_MAX || k > INT_MAX)
    return ac_fail("AdCorreLoss:forward: sizes B=%lld, k=%lld, d=%lld out of range", (long long)B,
                   (long long)k, (long long)d);
  if (workspace(L, B, k, d)) return -1;
  int64_t C = L->C;
  memcpy(L->y, y, sizeof(int64_t) * (size_t)B);
  L->B = B;
  L->k = k;
  L->d = d;

  double ce = ac_ce_forward(Z, L->y, B, C, L->P);
  if (L->ce_over_classes) ce /= (double)C;
  L->ce = ce;

  row_ctx ctx = {.L = L, .E = E, .B = B, .k = k, .d = d};
  if (L->use_fd || L->use_ed) ac_parallel_for(k * B, row_grain(d), rownorm_task, &ctx);
  L->fd = L->use_fd ? fd_forward(L, &ctx, B, k, d) : 0.0;
  L->ed = L->use_ed ? ed_forward(L, &ctx, B, k, d) : 0.0;
  L->md_classes = 0;
  L->md = L->use_md ? md_forward(L, E, B, k, d) : 0.0;
  L->total = L->lambda * L->ce + L->fd + L->md + L->ed;
  L->gn_ce = L->gn_fd = L->gn_md = L->gn_ed = 0.0;

  if (training && L->hist_cap > 0) {
    for (int64_t b = 0; b < B; b++) {
      const float *z = Z + b * C;
      int64_t best = 0;
      for (int64_t c = 1; c < C; c++)
        if (z[c] > z[best]) best = c;
      int64_t yb = L->y[b];
      ac_adcorre_record(L, &yb, &best, 1);
    }
  }
  L->have_forward = 1;
  return 0;
}

/* ======================================================================== */
/* Backward                                                                   */
/* ======================================================================== */

/* One row of FD + ED backward, fused: with g1 = cfd v (FD) and
 * g2 = ced (S_b - u) (ED), dx_i = (g_i - u <u,g_i>) / s - mean(...).
 * One pass gathers every sum the row needs, a second writes the gradient;
 * each sum keeps the four-lane order of sum_f / dot_f. At least one of FD
 * and ED is on (the caller zeroes the gradient when neither is). */
static void fd_ed_row(const float *restrict u, const float *restrict v, const double *restrict S,
                      int64_t d, double inv, int fd_on, int ed_on, double cfd, double ced,
                      float *restrict out, double *sq1, double *sq2) {
  double us[4] = {0, 0, 0, 0}, uv[4] = {0, 0, 0, 0}, vs[4] = {0, 0, 0, 0};
  double a[4] = {0, 0, 0, 0}, e[4] = {0, 0, 0, 0};
  const int64_t d4 = d & ~(int64_t)3;
  for (int64_t t = 0; t < d; t++) {
    int l = t < d4 ? (int)(t & 3) : 0; /* the tail goes to lane 0, as in sum_f */
    double ut = u[t];
    us[l] += ut;
    if (fd_on) {
      uv[l] += ut * (double)v[t];
      vs[l] += (double)v[t];
    }
    if (ed_on) {
      a[l] += ut * (S[t] - ut);
      e[l] += S[t];
    }
  }
#define AC_SUM4(x) (((x)[0] + (x)[1]) + ((x)[2] + (x)[3]))
  double usum = AC_SUM4(us);
  double dot1 = fd_on ? cfd * AC_SUM4(uv) : 0.0, gs1 = fd_on ? cfd * AC_SUM4(vs) : 0.0;
  double dot2 = ed_on ? ced * AC_SUM4(a) : 0.0, gs2 = ed_on ? ced * (AC_SUM4(e) - usum) : 0.0;
  double mean1 = (gs1 - dot1 * usum) * inv / (double)d;
  double mean2 = (gs2 - dot2 * usum) * inv / (double)d;
  double q1[4] = {0, 0, 0, 0}, q2[4] = {0, 0, 0, 0};
  for (int64_t t = 0; t < d; t++) {
    double ut = u[t], dx1 = 0.0, dx2 = 0.0;
    if (fd_on) dx1 = (cfd * (double)v[t] - ut * dot1) * inv - mean1;
    if (ed_on) dx2 = (ced * (S[t] - ut) - ut * dot2) * inv - mean2;
    q1[t & 3] += dx1 * dx1;
    q2[t & 3] += dx2 * dx2;
    out[t] = (float)(dx1 + dx2);
  }
  *sq1 += AC_SUM4(q1);
  *sq2 += AC_SUM4(q2);
#undef AC_SUM4
}

/* The scalar parts the vector rows share: the sums' tail after the lanes
 * are reduced (sums = usum, <u,v>, sum v, <u,S-u>, sum S), the row's
 * coefficients, and the gradient's tail. Inlined into each vector row, so
 * they compile with its instruction set. */
typedef struct { double dot1, dot2, mean1, mean2; } fded_coef;

static inline void fded_sums_tail(const float *restrict u, const float *restrict v,
                                  const double *restrict S, int64_t t, int64_t d, int fd_on, int ed_on,
                                  double sums[5]) {
  for (; t < d; t++) {
    double ut = u[t];
    sums[0] += ut;
    if (fd_on) {
      sums[1] += ut * (double)v[t];
      sums[2] += (double)v[t];
    }
    if (ed_on) {
      sums[3] += ut * (S[t] - ut);
      sums[4] += S[t];
    }
  }
}

static inline fded_coef fded_coefs(const double sums[5], int64_t d, double inv, int fd_on, int ed_on,
                                   double cfd, double ced) {
  double usum = sums[0];
  double dot1 = fd_on ? cfd * sums[1] : 0.0, gs1 = fd_on ? cfd * sums[2] : 0.0;
  double dot2 = ed_on ? ced * sums[3] : 0.0, gs2 = ed_on ? ced * (sums[4] - usum) : 0.0;
  fded_coef c = {dot1, dot2, (gs1 - dot1 * usum) * inv / (double)d, (gs2 - dot2 * usum) * inv / (double)d};
  return c;
}

static inline void fded_out_tail(const float *restrict u, const float *restrict v, const double *restrict S,
                                 int64_t t, int64_t d, double inv, int fd_on, int ed_on, double cfd,
                                 double ced, fded_coef c, float *restrict out, double *s1, double *s2) {
  for (; t < d; t++) {
    double ut = u[t], dx1 = 0.0, dx2 = 0.0;
    if (fd_on) dx1 = (cfd * (double)v[t] - ut * c.dot1) * inv - c.mean1;
    if (ed_on) dx2 = (ced * (S[t] - ut) - ut * c.dot2) * inv - c.mean2;
    *s1 += dx1 * dx1;
    *s2 += dx2 * dx2;
    out[t] = (float)(dx1 + dx2);
  }
}

/* The same row with AVX-512: eight lanes per sum (an order of its own). */
__attribute__((target("avx512f"))) static void fd_ed_row_avx512(
    const float *restrict u, const float *restrict v, const double *restrict S, int64_t d,
    double inv, int fd_on, int ed_on, double cfd, double ced, float *restrict out, double *sq1,
    double *sq2) {
  __m512d us = _mm512_setzero_pd(), uv = us, vs = us, a = us, e = us;
  int64_t d8 = d & ~(int64_t)7, t;
  for (t = 0; t < d8; t += 8) {
    __m512d ut = _mm512_cvtps_pd(_mm256_loadu_ps(u + t));
    us = _mm512_add_pd(us, ut);
    if (fd_on) {
      __m512d vt = _mm512_cvtps_pd(_mm256_loadu_ps(v + t));
      uv = _mm512_fmadd_pd(ut, vt, uv);
      vs = _mm512_add_pd(vs, vt);
    }
    if (ed_on) {
      __m512d st = _mm512_loadu_pd(S + t);
      a = _mm512_fmadd_pd(ut, _mm512_sub_pd(st, ut), a);
      e = _mm512_add_pd(e, st);
    }
  }
  double sums[5] = {_mm512_reduce_add_pd(us), _mm512_reduce_add_pd(uv), _mm512_reduce_add_pd(vs),
                    _mm512_reduce_add_pd(a), _mm512_reduce_add_pd(e)};
  fded_sums_tail(u, v, S, t, d, fd_on, ed_on, sums);
  const fded_coef c = fded_coefs(sums, d, inv, fd_on, ed_on, cfd, ced);
  const double dot1 = c.dot1, dot2 = c.dot2, mean1 = c.mean1, mean2 = c.mean2;
  /* dx1 = cfd inv v - (dot1 inv) u - mean1; dx2 = ced inv S - (ced + dot2) inv u - mean2 */
  __m512d c1v = _mm512_set1_pd(cfd * inv), c1u = _mm512_set1_pd(-dot1 * inv), m1 = _mm512_set1_pd(-mean1);
  __m512d c2s = _mm512_set1_pd(ced * inv), c2u = _mm512_set1_pd(-(ced + dot2) * inv),
          m2 = _mm512_set1_pd(-mean2);
  __m512d q1 = _mm512_setzero_pd(), q2 = q1;
  for (t = 0; t < d8; t += 8) {
    __m512d ut = _mm512_cvtps_pd(_mm256_loadu_ps(u + t));
    __m512d dx1 = _mm512_setzero_pd(), dx2 = dx1;
    if (fd_on) {
      __m512d vt = _mm512_cvtps_pd(_mm256_loadu_ps(v + t));
      dx1 = _mm512_fmadd_pd(c1v, vt, _mm512_fmadd_pd(c1u, ut, m1));
      q1 = _mm512_fmadd_pd(dx1, dx1, q1);
    }
    if (ed_on) {
      dx2 = _mm512_fmadd_pd(c2s, _mm512_loadu_pd(S + t), _mm512_fmadd_pd(c2u, ut, m2));
      q2 = _mm512_fmadd_pd(dx2, dx2, q2);
    }
    _mm256_storeu_ps(out + t, _mm512_cvtpd_ps(_mm512_add_pd(dx1, dx2)));
  }
  double s1 = _mm512_reduce_add_pd(q1), s2 = _mm512_reduce_add_pd(q2);
  fded_out_tail(u, v, S, t, d, inv, fd_on, ed_on, cfd, ced, c, out, &s1, &s2);
  *sq1 += s1;
  *sq2 += s2;
}

/* The same row with AVX2 + FMA: four double lanes per sum (an order of its
 * own). */
static inline __attribute__((target("avx2,fma"))) double hsum4_pd(__m256d v) {
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

__attribute__((target("avx2,fma"))) static void fd_ed_row_avx2(
    const float *restrict u, const float *restrict v, const double *restrict S, int64_t d,
    double inv, int fd_on, int ed_on, double cfd, double ced, float *restrict out, double *sq1,
    double *sq2) {
  __m256d us = _mm256_setzero_pd(), uv = us, vs = us, a = us, e = us;
  int64_t d4 = d & ~(int64_t)3, t;
  for (t = 0; t < d4; t += 4) {
    __m256d ut = _mm256_cvtps_pd(_mm_loadu_ps(u + t));
    us = _mm256_add_pd(us, ut);
    if (fd_on) {
      __m256d vt = _mm256_cvtps_pd(_mm_loadu_ps(v + t));
      uv = _mm256_fmadd_pd(ut, vt, uv);
      vs = _mm256_add_pd(vs, vt);
    }
    if (ed_on) {
      __m256d st = _mm256_loadu_pd(S + t);
      a = _mm256_fmadd_pd(ut, _mm256_sub_pd(st, ut), a);
      e = _mm256_add_pd(e, st);
    }
  }
  double sums[5] = {hsum4_pd(us), hsum4_pd(uv), hsum4_pd(vs), hsum4_pd(a), hsum4_pd(e)};
  fded_sums_tail(u, v, S, t, d, fd_on, ed_on, sums);
  const fded_coef c = fded_coefs(sums, d, inv, fd_on, ed_on, cfd, ced);
  const double dot1 = c.dot1, dot2 = c.dot2, mean1 = c.mean1, mean2 = c.mean2;
  /* dx1 = cfd inv v - (dot1 inv) u - mean1; dx2 = ced inv S - (ced + dot2) inv u - mean2 */
  __m256d c1v = _mm256_set1_pd(cfd * inv), c1u = _mm256_set1_pd(-dot1 * inv), m1 = _mm256_set1_pd(-mean1);
  __m256d c2s = _mm256_set1_pd(ced * inv), c2u = _mm256_set1_pd(-(ced + dot2) * inv),
          m2 = _mm256_set1_pd(-mean2);
  __m256d q1 = _mm256_setzero_pd(), q2 = q1;
  for (t = 0; t < d4; t += 4) {
    __m256d ut = _mm256_cvtps_pd(_mm_loadu_ps(u + t));
    __m256d dx1 = _mm256_setzero_pd(), dx2 = dx1;
    if (fd_on) {
      __m256d vt = _mm256_cvtps_pd(_mm_loadu_ps(v + t));
      dx1 = _mm256_fmadd_pd(c1v, vt, _mm256_fmadd_pd(c1u, ut, m1));
      q1 = _mm256_fmadd_pd(dx1, dx1, q1);
    }
    if (ed_on) {
      dx2 = _mm256_fmadd_pd(c2s, _mm256_loadu_pd(S + t), _mm256_fmadd_pd(c2u, ut, m2));
      q2 = _mm256_fmadd_pd(dx2, dx2, q2);
    }
    _mm_storeu_ps(out + t, _mm256_cvtpd_ps(_mm256_add_pd(dx1, dx2)));
  }
  double s1 = hsum4_pd(q1), s2 = hsum4_pd(q2);
  fded_out_tail(u, v, S, t, d, inv, fd_on, ed_on, cfd, ced, c, out, &s1, &s2);
  *sq1 += s1;
  *sq2 += s2;
}

static void fd_ed_backward_task(void *vctx, int64_t r0, int64_t r1, int tid) {
  row_ctx *c = vctx;
  ac_adcorre *L = c->L;
  int64_t B = c->B, d = c->d;
  double sq1 = 0.0, sq2 = 0.0;
  void (*row)(const float *, const float *, const double *, int64_t, double, int, int, double, double,
              float *, double *, double *) = ac_cpu_isa() >= AC_ISA_AVX512 ? fd_ed_row_avx512
                                             : ac_cpu_isa() == AC_ISA_AVX2  ? fd_ed_row_avx2
                                                                            : fd_ed_row;
  for (int64_t r = r0; r < r1; r++) {
    int64_t j = r / B, b = r % B;
    row(L->U + r * d, L->V + r * d, L->S + b * d, d, 1.0 / L->s[r], c->fd_on, c->ed_on,
              c->cfd, c->ced, c->gE[j] + b * d, &sq1, &sq2);
  }
  c->sq[tid & 63][0] += sq1;
  c->sq[tid & 63][1] += sq2;
}

int ac_adcorre_backward(ac_adcorre *L, float *gZ, float *const *gE) {
  if (!L->have_forward) return ac_fail("AdCorreLoss:backward: call forward first");
  int64_t B = L->B, k = L->k, d = L->d, C = L->C;

  double scale = L->lambda / ((double)B * (L->ce_over_classes ? (double)C : 1.0));
  L->gn_ce = sqrt(ac_ce_backward(L->P, L->y, B, C, scale, gZ));

  /* FD and ED: gradient wrt each normalised row, then through the normalisation. */
  row_ctx ctx = {.L = L, .gE = gE, .B = B, .k = k, .d = d};
  ctx.fd_on = L->use_fd && B >= 2;
  ctx.ed_on = L->use_ed && k >= 2;
  ctx.cfd = -2.0 / ((double)k * (double)B * (double)B);
  ctx.ced = 2.0 / ((double)B * (double)k * (double)k);
  if (ctx.fd_on || ctx.ed_on)
    ac_parallel_for(k * B, row_grain(d), fd_ed_backward_task, &ctx);
  else /* MD alone adds into a zero gradient */
    for (int64_t j = 0; j < k; j++) memset(gE[j], 0, sizeof(float) * (size_t)(B * d));
  double sq_fd = 0.0, sq_ed = 0.0;
  for (int i = 0; i < 64; i++) {
    sq_fd += ctx.sq[i][0];
    sq_ed += ctx.sq[i][1];
  }
  L->gn_fd = sqrt(sq_fd);
  L->gn_ed = sqrt(sq_ed);

  /* MD: gradient wrt each normalised class mean, to the mean, to the rows. */
  double sq_md = 0.0;
  int64_t Cp = L->md_classes;
  if (L->use_md && Cp >= 2) {
    double cmd = 2.0 / ((double)k * (double)Cp * (double)Cp);
    double *Sm = L->row, *g = L->row + d, *base = L->row + 2 * d, *dm = L->row + 4 * d;
    const double e = AC_MD_REFERENCE_WEIGHT;
    for (int64_t j = 0; j < k; j++) {
      const double *mu = L->mu + j * C * d;
      for (int64_t t = 0; t < d; t++) Sm[t] = 0.0;
      for (int64_t p = 0; p < Cp; p++)
        for (int64_t t = 0; t < d; t++) Sm[t] += mu[p * d + t];
      for (int64_t p = 0; p < Cp; p++) {
        for (int64_t t = 0; t < d; t++) g[t] = cmd * (Sm[t] - mu[p * d + t]);
        rownorm_backward_d(mu + p * d, L->ms[j * C + p], g, d, dm + p * d);
      }
      /* dm_p is dL/d(mean p); the mean of class c is sum_b w_cb x_b / mw_c */
      if (L->md_mode == AC_MD_REFERENCE) {
        for (int64_t t = 0; t < d; t++) base[t] = 0.0;
        for (int64_t c = 0; c < C; c++) {
          double f = e / L->mw[c];
          for (int64_t t = 0; t < d; t++) base[t] += f * dm[c * d + t];
        }
      }
      for (int64_t b = 0; b < B; b++) {
        float *out = gE[j] + b * d;
        int64_t c = L->y[b];
        const double *dmc = dm + L->pos[c] * d;
        if (L->md_mode == AC_MD_REFERENCE) {
          double f = (1.0 - e) / L->mw[c];
          for (int64_t t = 0; t < d; t++) {
            double v = base[t] + f * dmc[t];
            out[t] = (float)((double)out[t] + v);
            sq_md += v * v;
          }
        } else {
          double f = 1.0 / L->mw[c];
          for (int64_t t = 0; t < d; t++) {
            double v = f * dmc[t];
            out[t] = (float)((double)out[t] + v);
            sq_md += v * v;
          }
        }
      }
    }
  }
  L->gn_md = sqrt(sq_md);
  return 0;
}
