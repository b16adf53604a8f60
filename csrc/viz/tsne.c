/*
 * tsne.c - exact t-SNE (see tsne.h).
 *
 * Affinities: squared distances of the centred data through one sgemm; for
 * each row i a binary search on beta_i = 1 / (2 sigma_i^2) makes the entropy
 * of p_{j|i} equal log(perplexity); P = (P_cond + P_cond^T) / (2N).
 *
 * Gradient (with exaggeration e and Student-t kernel w_ij = 1 / (1 + |y_i - y_j|^2),
 * Z = sum_{k != l} w_kl):  dC/dy_i = 4 sum_j (e p_ij - w_ij / Z) w_ij (y_i - y_j).
 * Each step is one pass over the rows that computes w on the fly (cheaper
 * than storing N^2 values) and accumulates the attractive and repulsive sums
 * separately, so Z is only needed when they are combined. Updates use
 * momentum and per-coordinate gains (+0.2 when the gradient changes sign
 * against the update, x0.8 otherwise, at least 0.01), as in the reference
 * implementation; Y is re-centred after each step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"

#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "viz/tsne.h"

void ac_tsne_defaults(ac_tsne_opts *o) {
  o->perplexity = 30;
  o->iterations = 1000;
  o->exaggeration = 12;
  o->exaggeration_iterations = 250;
  o->learning_rate = 0;
  o->dims = 2;
  o->seed = 0;
}

/* ======================================================================== */
/* affinities                                                                */
/* ======================================================================== */

typedef struct aff_ctx {
  float *P;          /* [n, n]: squared distances in, conditional P out (row by row) */
  const float *sq;   /* squared norms [n] */
  int n;
  double log_perp;
  int fails;         /* rows whose search did not converge (kept, counted) */
} aff_ctx;

static void aff_rows(void *vctx, int64_t begin, int64_t end, int tid) {
  aff_ctx *c = vctx;
  int n = c->n;
  for (int64_t i = begin; i < end; i++) {
    float *row = c->P + (size_t)i * n;
    /* distances, shifted by the smallest off-diagonal one (does not change p_{j|i}) */
    double dmin = INFINITY;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double dij = (double)c->sq[i] + c->sq[j] - 2.0 * row[j];
      if (dij < 0) dij = 0;
      row[j] = (float)dij;
      /* the minimum of the stored (float) values, so that row[j] - dmin >= 0 exactly:
       * with duplicate points the search drives beta very high, and a tiny
       * negative difference would overflow exp() */
      if (row[j] < dmin) dmin = row[j];
    }
    row[i] = 0;
    double beta = 1.0, lo = 0.0, hi = INFINITY;
    /* start from a scale that fits the data: beta ~ 1 / median-ish distance */
    double mean = 0;
    for (int j = 0; j < n; j++)
      if (j != i) mean += row[j] - dmin;
    mean /= (n - 1);
    if (mean > 0) beta = 1.0 / mean;
    double sum = 0, H = 0;
    int ok = 0;
    for (int it = 0; it < 200; it++) {
      sum = 0;
      double sdp = 0;
      for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double dd = row[j] - dmin;
        double p = exp(-beta * dd);
        sum += p;
        sdp += dd * p;
      }
      H = log(sum) + beta * sdp / sum;
      double diff = H - c->log_perp;
      if (fabs(diff) < 1e-5) {
        ok = 1;
        break;
      }
      if (diff > 0) { /* too flat: sharpen */
        lo = beta;
        beta = isinf(hi) ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = (beta + lo) / 2;
      }
    }
    if (!ok) __atomic_add_fetch(&c->fails, 1, __ATOMIC_RELAXED);
    sum = 0;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double p = exp(-beta * (row[j] - dmin));
      row[j] = (float)p;
      sum += p;
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) row[j] *= inv;
    row[i] = 0;
  }
}

/* ======================================================================== */
/* gradient passes                                                           */
/* ======================================================================== */

#define MAXD 3

typedef struct grad_ctx {
  const float *P;      /* [n, n] symmetric joint probabilities */
  float *ys[MAXD];     /* coordinates, one array per dimension */
  float *rowz;         /* [n] row sums of w (pass 1) */
  float *gA[MAXD], *gB[MAXD]; /* [n] per dimension: attraction and repulsion sums */
  float *scratch;      /* [nthreads, n] */
  int n, dims;
  float invz;
  double *rowkl;       /* [n] for the final KL */
} grad_ctx;

/* g over n points: positions ys, gradient halves gA/gB in the first
 * 3 * MAXD columns of work (n floats each); the caller sets rowz. */
static void grad_ctx_init(grad_ctx *g, const float *P, int n, int dims, float *work, float *scratch,
                          double *rowkl) {
  memset(g, 0, sizeof *g);
  g->P = P;
  g->n = n;
  g->dims = dims;
  g->scratch = scratch;
  g->rowkl = rowkl;
  for (int k = 0; k < MAXD; k++) {
    g->ys[k] = work + (size_t)n * k;
    g->gA[k] = work + (size_t)n * (MAXD + k);
    g->gB[k] = work + (size_t)n * (2 * MAXD + k);
  }
}

/* w_ij for j in [0, n) into w (w_ii included, = 1). */
static void kernel_row(const grad_ctx *c, int64_t i, float *w) {
  int n = c->n;
  if (c->dims == 2) {
    const float *y0 = c->ys[0], *y1 = c->ys[1];
    float a = y0[i], b = y1[i];
    for (int j = 0; j < n; j++) {
      float dx = a - y0[j], dy = b - y1[j];
      w[j] = 1.0f / (1.0f + dx * dx + dy * dy);
    }
  } else {
    for (int j = 0; j < n; j++) w[j] = 0;
    for (int k = 0; k < c->dims; k++) {
      const float *yk = c->ys[k];
      float a = yk[i];
      for (int j = 0; j < n; j++) {
        float dx = a - yk[j];
        w[j] += dx * dx;
      }
    }
    for (int j = 0; j < n; j++) w[j] = 1.0f / (1.0f + w[j]);
  }
}

/* Sum with 8 independent accumulators (vectorisable, fixed order). */
static double sum8(const float *v, int n) {
  float acc[8] = {0};
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += v[j + k];
  double s = 0;
  for (int k = 0; k < 8; k++) s += acc[k];
  for (; j < n; j++) s += v[j];
  return s;
}

/* One pass per row: z_i = sum_j w_ij (minus w_ii = 1), and per dimension
 * A_i = sum_j p_ij w_ij (y_i - y_j), B_i = sum_j w_ij^2 (y_i - y_j); then
 * dC/dy_i = 4 (e A_i - B_i / Z) once Z = sum_i z_i is known. */
static void pass_grad(void *vctx, int64_t begin, int64_t end, int tid) {
  grad_ctx *c = vctx;
  int n = c->n;
  float *w = c->scratch + (size_t)tid * n;
  for (int64_t i = begin; i < end; i++) {
    kernel_row(c, i, w);
    c->rowz[i] = (float)(sum8(w, n) - 1.0);
    const float *p = c->P + (size_t)i * n;
    for (int k = 0; k < c->dims; k++) {
      const float *yk = c->ys[k];
      float a = yk[i];
      float accA[8] = {0}, accB[8] = {0};
      int j = 0;
      for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) {
          float wq = w[j + q], dq = a - yk[j + q];
          accA[q] += p[j + q] * wq * dq;
          accB[q] += wq * wq * dq;
        }
      double sa = 0, sb = 0;
      for (int q = 0; q < 8; q++) sa += accA[q], sb += accB[q];
      for (; j < n; j++) {
        float dq = a - yk[j];
        sa += p[j] * w[j] * dq;
        sb += w[j] * w[j] * dq;
      }
      c->gA[k][i] = (float)sa;
      c->gB[k][i] = (float)sb;
    }
  }
}

static void pass_z(void *vctx, int64_t begin, int64_t end, int tid) {
  grad_ctx *c = vctx;
  float *w = c->scratch + (size_t)tid * c->n;
  for (int64_t i = begin; i < end; i++) {
    kernel_row(c, i, w);
    c->rowz[i] = (float)(sum8(w, c->n) - 1.0); /* minus w_ii */
  }
}

static void pass_kl(void *vctx, int64_t begin, int64_t end, int tid) {
  grad_ctx *c = vctx;
  int n = c->n;
  float *w = c->scratch + (size_t)tid * n;
  for (int64_t i = begin; i < end; i++) {
    kernel_row(c, i, w);
    const float *p = c->P + (size_t)i * n;
    double s = 0;
    for (int j = 0; j < n; j++) {
      if (j == i || p[j] <= 0) continue;
      double q = (double)w[j] * c->invz;
      if (q < 1e-30) q = 1e-30;
      s += p[j] * log(p[j] / q);
    }
    c->rowkl[i] = s;
  }
}

/* ======================================================================== */
/* affinities and gradient as separate entry points                          */
/* ======================================================================== */

static int check_x(const float *X, int n, int d, double perplexity) {
  if (n < 4) return ac_fail("t-SNE needs at least 4 points, got %d", n);
  if (d < 1) return ac_fail("t-SNE: points have no features");
  if (!(perplexity >= 1) || perplexity > (n - 1) / 3.0)
    return ac_fail("t-SNE: perplexity %g must be in [1, %g] for %d points", perplexity, (n - 1) / 3.0, n);
  for (size_t i = 0; i < (size_t)n * d; i++)
    if (!isfinite(X[i])) return ac_fail("t-SNE: X[%zu, %zu] is not finite", i / d + 1, i % d + 1);
  return 0;
}

int ac_tsne_affinities(const float *X, int n, int d, double perplexity, float *P) {
  if (check_x(X, n, d, perplexity)) return -1;
  float *Xc = malloc(sizeof(float) * (size_t)n * d);
  float *sq = malloc(sizeof(float) * n);
  if (!Xc || !sq) {
    free(Xc), free(sq);
    return ac_fail("t-SNE: out of memory for %d x %d points", n, d);
  }
  /* centre the data (better conditioned distances), then Gram matrix by sgemm */
  for (int k = 0; k < d; k++) {
    double m = 0;
    for (int i = 0; i < n; i++) m += X[(size_t)i * d + k];
    m /= n;
    for (int i = 0; i < n; i++) Xc[(size_t)i * d + k] = (float)(X[(size_t)i * d + k] - m);
  }
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < d; k++) s += (double)Xc[(size_t)i * d + k] * Xc[(size_t)i * d + k];
    sq[i] = (float)s;
  }
  ac_gemm_parallel(2, n, n, d, 1.0f, Xc, d, Xc, d, 0, P, n); /* P = Xc Xc^T */

  aff_ctx ac = {P, sq, n, log(perplexity), 0};
  ac_parallel_for(n, 16, aff_rows, &ac);
  /* symmetrise */
  double inv2n = 1.0 / (2.0 * n);
  for (int i = 0; i < n; i++) {
    P[(size_t)i * n + i] = 0;
    for (int j = i + 1; j < n; j++) {
      float v = (float)((P[(size_t)i * n + j] + P[(size_t)j * n + i]) * inv2n);
      if (v < 1e-12f) v = 1e-12f;
      P[(size_t)i * n + j] = P[(size_t)j * n + i] = v;
    }
  }
  free(Xc), free(sq);
  return 0;
}

int ac_tsne_gradient(const float *P, const float *Y, int n, int dims, double exaggeration, float *grad,
                     double *kl) {
  if (n < 2) return ac_fail("t-SNE gradient: needs at least 2 points, got %d", n);
  if (dims < 1 || dims > MAXD) return ac_fail("t-SNE gradient: dims must be 1..%d, got %d", MAXD, dims);
  int nt = ac_get_num_threads();
  float *work = calloc((size_t)n * (3 * MAXD + 1), sizeof(float));
  float *scratch = malloc(sizeof(float) * (size_t)n * (nt > 0 ? nt : 1));
  double *rowkl = malloc(sizeof(double) * n);
  if (!work || !scratch || !rowkl) {
    free(work), free(scratch), free(rowkl);
    return ac_fail("t-SNE gradient: out of memory for %d points", n);
  }
  grad_ctx g;
  grad_ctx_init(&g, P, n, dims, work, scratch, rowkl);
  g.rowz = work + (size_t)n * 3 * MAXD;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dims; k++) g.ys[k][i] = Y[(size_t)i * dims + k];
  ac_parallel_for(n, 32, pass_grad, &g);
  double Z = 0;
  for (int i = 0; i < n; i++) Z += g.rowz[i];
  g.invz = (float)(1.0 / (Z > 1e-30 ? Z : 1e-30));
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dims; k++)
      grad[(size_t)i * dims + k] = (float)(4.0 * (exaggeration * g.gA[k][i] - g.gB[k][i] * g.invz));
  if (kl) {
    ac_parallel_for(n, 32, pass_kl, &g);
    double s = 0;
    for (int i = 0; i < n; i++) s += rowkl[i];
    *kl = s;
  }
  free(work), free(scratch), free(rowkl);
  return 0;
}

/* ======================================================================== */
/* driver                                                                    */
/* ======================================================================== */

int ac_tsne_check(int64_t n, int64_t d, const ac_tsne_opts *o) {
  if (o->dims < 1 || o->dims > 3) return ac_fail("dims must be 1, 2 or 3, got %d", o->dims);
  if (n < 4) return ac_fail("need at least 4 points, got %lld", (long long)n);
  if (n > AC_TSNE_MAX_POINTS)
    return ac_fail("exact t-SNE is limited to %d points, got %lld", AC_TSNE_MAX_POINTS, (long long)n);
  if (d < 1) return ac_fail("X has no features ([%lld, %lld])", (long long)n, (long long)d);
  if (!(o->perplexity >= 1) || o->perplexity > (double)(n - 1) / 3.0)
    return ac_fail("perplexity %g must be in [1, (N-1)/3] = [1, %g] for N = %lld", o->perplexity,
                   (double)(n - 1) / 3.0, (long long)n);
  if (o->iterations < 1 || o->iterations > 100000)
    return ac_fail("iterations must be in 1..100000, got %d", o->iterations);
  if (o->exaggeration_iterations < 0) return ac_fail("exaggeration_iterations must be >= 0");
  if (!(o->exaggeration >= 1 && o->exaggeration <= 100))
    return ac_fail("exaggeration must be in [1, 100], got %g", o->exaggeration);
  if (!(o->learning_rate >= 0) || !isfinite(o->learning_rate))
    return ac_fail("learning_rate must be >= 0 (0 = automatic), got %g", o->learning_rate);
  return 0;
}

int ac_tsne(const float *X, int n, int d, float *Y, int has_init, const ac_tsne_opts *o, double *kl) {
  if (check_x(X, n, d, o->perplexity)) return -1;
  if (o->dims < 1 || o->dims > MAXD) return ac_fail("t-SNE: dims must be 1..%d, got %d", MAXD, o->dims);
  if (has_init)
    for (size_t i = 0; i < (size_t)n * o->dims; i++)
      if (!isfinite(Y[i])) return ac_fail("t-SNE: the initial embedding has a non-finite value");

  int dims = o->dims, nt = ac_get_num_threads();
  size_t nn = (size_t)n * n;
  float *P = malloc(sizeof(float) * nn);
  float *work = calloc((size_t)n * (5 * MAXD + 1), sizeof(float)); /* ys, gA, gB, update, gains, rowz */
  float *scratch = malloc(sizeof(float) * (size_t)n * (nt > 0 ? nt : 1));
  double *rowkl = malloc(sizeof(double) * n);
  if (!P || !work || !scratch || !rowkl) {
    free(P), free(work), free(scratch), free(rowkl);
    return ac_fail("t-SNE: out of memory for %d points (needs %.1f MB)", n, nn * 4.0 / 1e6);
  }
  if (ac_tsne_affinities(X, n, d, o->perplexity, P)) {
    free(P), free(work), free(scratch), free(rowkl);
    return -1;
  }

  grad_ctx g;
  grad_ctx_init(&g, P, n, dims, work, scratch, rowkl);
  float *upd[MAXD], *gain[MAXD];
  for (int k = 0; k < MAXD; k++) upd[k] = work + (size_t)n * (3 * MAXD + k);
  float *gains = work + (size_t)n * 4 * MAXD;
  g.rowz = work + (size_t)n * 5 * MAXD;
  for (int k = 0; k < MAXD; k++) gain[k] = gains + (size_t)n * k;
  for (size_t i = 0; i < (size_t)n * MAXD; i++) gains[i] = 1.0f;

  if (has_init) {
    for (int i = 0; i < n; i++)
      for (int k = 0; k < dims; k++) g.ys[k][i] = Y[(size_t)i * dims + k];
  } else {
    ac_rng r;
    ac_rng_seed(&r, o->seed);
    for (int i = 0; i < n; i++)
      for (int k = 0; k < dims; k++) g.ys[k][i] = (float)(1e-4 * ac_rng_normal(&r));
  }

  double lr = o->learning_rate > 0 ? o->learning_rate : fmax(n / o->exaggeration / 4.0, 50.0);
  for (int it = 0; it < o->iterations; it++) {
    int early = it < o->exaggeration_iterations;
    float mom = early ? 0.5f : 0.8f;
    float exag = early ? (float)o->exaggeration : 1.0f;
    ac_parallel_for(n, 32, pass_grad, &g);
    double Z = 0;
    for (int i = 0; i < n; i++) Z += g.rowz[i];
    float invz = (float)(1.0 / (Z > 1e-30 ? Z : 1e-30));
    for (int k = 0; k < dims; k++) {
      float *y = g.ys[k], *u = upd[k], *ga = gain[k];
      double mean = 0;
      for (int i = 0; i < n; i++) {
        float gr = 4.0f * (exag * g.gA[k][i] - g.gB[k][i] * invz);
        float gi = ga[i];
        gi = (gr > 0) != (u[i] > 0) ? gi + 0.2f : gi * 0.8f;
        if (gi < 0.01f) gi = 0.01f;
        ga[i] = gi;
        u[i] = mom * u[i] - (float)lr * gi * gr;
        y[i] += u[i];
        mean += y[i];
      }
      float m = (float)(mean / n);
      for (int i = 0; i < n; i++) y[i] -= m;
    }
  }

  /* final KL(P || Q) without exaggeration */
  ac_parallel_for(n, 32, pass_z, &g);
  double Z = 0;
  for (int i = 0; i < n; i++) Z += g.rowz[i];
  g.invz = (float)(1.0 / (Z > 1e-30 ? Z : 1e-30));
  ac_parallel_for(n, 32, pass_kl, &g);
  double klsum = 0;
  for (int i = 0; i < n; i++) klsum += rowkl[i];
  if (kl) *kl = klsum;

  int bad = 0;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < dims; k++) {
      float v = g.ys[k][i];
      if (!isfinite(v)) bad = 1;
      Y[(size_t)i * dims + k] = v;
    }
  free(P), free(work), free(scratch), free(rowkl);
  if (bad) return ac_fail("t-SNE diverged (non-finite coordinates); try a smaller learning_rate");
  return 0;
}
