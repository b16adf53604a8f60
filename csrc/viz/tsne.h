/*
 * tsne.h - exact t-SNE (van der Maaten & Hinton 2008) for a few thousand
 * points: Gaussian affinities calibrated to a perplexity by binary search on
 * each row's precision, symmetrised; Student-t similarities in the embedding;
 * gradient descent with momentum, per-coordinate gains and early
 * exaggeration. O(N^2) memory and time per iteration, rows in parallel on
 * the library's thread pool. Every reduction here has a fixed order, so a
 * seed gives the same result at a given thread count (the sgemm of the
 * distances may round differently when OpenBLAS runs on another count).
 *
 *   ac_tsne_opts o; ac_tsne_defaults(&o); o.seed = 1;
 *   float *Y = malloc(sizeof(float) * n * 2);
 *   double kl;
 *   if (ac_tsne(X, n, d, Y, 0, &o, &kl)) puts(ac_error());
 */
#ifndef AC_TSNE_H
#define AC_TSNE_H
#include <stdint.h>

typedef struct ac_tsne_opts {
  double perplexity;           /* effective number of neighbours; default 30 */
  int iterations;              /* total gradient steps; default 1000 */
  double exaggeration;         /* P multiplier in the first steps; default 12 */
  int exaggeration_iterations; /* default 250 (momentum 0.5 there, 0.8 after) */
  double learning_rate;        /* 0 = automatic: max(N / exaggeration / 4, 50) */
  int dims;                    /* embedding dimension 1..3; default 2 */
  uint64_t seed;               /* for the random initialisation */
} ac_tsne_opts;

void ac_tsne_defaults(ac_tsne_opts *o);

/* The limits of the exact method and of its options for n points of d
 * features: n in 4..AC_TSNE_MAX_POINTS, d >= 1, dims 1..3, perplexity in
 * [1, (n-1)/3], iterations 1..100000, exaggeration in [1, 100],
 * exaggeration_iterations >= 0, learning_rate >= 0 and finite. -1 with a
 * message naming the first option out of range (no prefix: the caller names
 * the function). */
#define AC_TSNE_MAX_POINTS 20000
int ac_tsne_check(int64_t n, int64_t d, const ac_tsne_opts *o);

/* X [n, d] row-major -> Y [n, dims]. has_init = 1: Y holds the starting
 * embedding (e.g. scaled PCA); otherwise Y is drawn from N(0, 1e-4^2).
 * kl (may be NULL) receives the final KL(P || Q). Needs n >= 4 and
 * 1 <= perplexity <= (n - 1) / 3. */
int ac_tsne(const float *X, int n, int d, float *Y, int has_init, const ac_tsne_opts *o, double *kl);

/* The symmetric joint affinities P [n, n] (diagonal 0, sum 1, entries >= 1e-12 off
 * the diagonal) for a perplexity. */
int ac_tsne_affinities(const float *X, int n, int d, double perplexity, float *P);
/* Gradient [n, dims] of KL(e P || Q) at Y [n, dims] as used by the optimiser
 * (e = exaggeration; e = 1 is the exact gradient of KL(P || Q)), and KL(P || Q)
 * itself into *kl when kl is not NULL. */
int ac_tsne_gradient(const float *P, const float *Y, int n, int dims, double exaggeration, float *grad,
                     double *kl);

#endif
