/*
 * adcorre_loss.h - the Ad-Corre loss (Fard & Mahoor 2022) on plain float
 * arrays: softmax cross-entropy, Feature Discriminator (FD) with adaptive
 * weights, Mean Discriminator (MD, modes "present" and "reference"),
 * Embedding Discriminator (ED), their exact gradients, and the rolling
 * confusion history that drives the adaptive weights. No Lua here.
 *
 * Notation (all 0-based): B samples, C classes, k embeddings of width d.
 *   Z   [B, C]        logits
 *   E_j [B, d]        embedding j (j = 0..k-1), each contiguous
 *   y   [B]           labels in 0..C-1
 *
 * Row correlation (numpy.corrcoef between rows, epsilon-guarded):
 *   c_i = x_i - mean(x_i);  s_i = sqrt(|c_i|^2 + eps);  u_i = c_i / s_i;
 *   corr(X) = U U^T.
 * A constant row has u = 0: it correlates 0 with everything (itself included)
 * and its gradient stays finite (at most |g| / sqrt(eps)).
 *
 * Terms (parts), each a plain mean:
 *   CE = mean_b [logsumexp(Z_b) - Z_b,y_b]       ("reference": divided by C)
 *   FD = 1/(k B^2) sum_j sum_{a,b} W_ab (1 - Omega_ab Phi_j,ab)
 *        Phi_j = corr(E_j); Omega_ab = +1 if y_a == y_b else -1;
 *        W_ab = 1 + (1 - M[y_a,y_a]) + (1 - M[y_b,y_b]) (adaptive) or 1,
 *        W_aa = 0.  The mean divides by B*B (diagonal included, as the
 *        released code's reduce_mean does); B = 1 gives 0.
 *   MD = 1/k sum_j 1/C'^2 sum_{c != c'} (1 + R_j,cc'),  R_j = corr(class means)
 *        "present": the C' classes present in the batch, plain means;
 *                   fewer than 2 present classes gives 0.
 *        "reference": all C' = C classes, class c's mean weights its own
 *                   samples by 1 and every other sample by 1e-7.
 *   ED = 1/B sum_b 1/k^2 sum_{i != j} (1 + <u_i,b, u_j,b>)   (k = 1 gives 0)
 *   total = lambda * CE + FD + MD + ED
 * FD uses one sgemm per embedding (V_j = (W o Omega) U_j, which gives both
 * the value and the gradient); MD and ED use the exact identity
 *   sum_{i != j} <u_i, u_j> = |sum_i u_i|^2 - sum_i |u_i|^2.
 * Scalars are accumulated in double.
 */
#ifndef AC_ADCORRE_LOSS_H
#define AC_ADCORRE_LOSS_H
#include <stddef.h>
#include <stdint.h>
#include "core/tensor.h"

enum { AC_MD_PRESENT = 0, AC_MD_REFERENCE = 1 };
#define AC_MD_REFERENCE_WEIGHT 1e-7 /* Keras K.epsilon(), weight of other classes' samples */

/* ---- building blocks ------------------------------------------------------ */

/* Row normalisation of X [n, m]: U [n, m] (float), s [n] (double) as above. */
void ac_rownorm_forward(const float *X, int64_t n, int64_t m, double eps, float *U, double *s);
/* Gradient through the row normalisation, one row: from g = dL/du (length m)
 * to dx = dL/dx. Returns |dx|^2. u, s from the forward. dx may alias nothing. */
double ac_rownorm_backward_row(const float *u, double s, const double *g, int64_t m, double *dx);

/* R [n, n] = corr(X [n, m]) with the epsilon guard. scratch: n*m floats + n doubles.
 * Returns 0, or -1 (ac_fail) if n or m is out of range. */
int ac_corrcoef(const float *X, int64_t n, int64_t m, double eps, float *R, float *U_scratch,
                double *s_scratch);

/* Softmax cross-entropy, stable log-sum-exp in double. P [B, C] receives the
 * softmax. Returns mean_b (logsumexp(Z_b) - Z_b,y_b). */
double ac_ce_forward(const float *Z, const int64_t *y, int64_t B, int64_t C, float *P);
/* gZ = scale * (P - onehot(y)); returns |gZ|^2. */
double ac_ce_backward(const float *P, const int64_t *y, int64_t B, int64_t C, double scale,
                      float *gZ);

/* ---- the whole loss --------------------------------------------------------- */

typedef struct ac_adcorre {
  /* configuration (set by ac_adcorre_init; flags may be changed between calls) */
  int C;
  double lambda, eps;
  int use_fd, use_md, use_ed, adaptive, md_mode;
  int ce_over_classes; /* 1: CE averaged over B*C (the released code) */

  /* confusion history: a ring of the last hist_cap (label, prediction) pairs */
  int64_t hist_cap, hist_len, hist_pos;
  int32_t *hist_y, *hist_p;
  int64_t *counts; /* [C, C] counts of the pairs in the ring */
  int pinned;
  double *M_pinned; /* [C, C] */

  /* the last forward (what backward needs) */
  int have_forward;
  int64_t B, k, d;
  double ce, fd, md, ed, total;
  double gn_ce, gn_fd, gn_md, gn_ed; /* norms of each weighted part's gradient (last backward) */
  int md_classes;                    /* C' of the last forward */

  /* workspace, grown on demand and kept between calls */
  void *ws;
  size_t ws_bytes;
  int64_t *y;       /* [B] */
  float *P;         /* [B, C] */
  float *U;         /* [k, B, d] */
  double *s;        /* [k, B] */
  float *V;         /* [k, B, d] FD: (W o Omega) U_j */
  float *A;         /* [B, B]   W o Omega */
  double *S;        /* [B, d]   ED: sum_j u_j,b */
  double *mu;       /* [k, C, d] MD: normalised class means */
  double *ms;       /* [k, C]    MD: their s */
  double *mw;       /* [C]       MD: total weight of each class mean */
  int64_t *ncls;    /* [C]       samples of each class in the batch */
  int *pos;         /* [C]       class -> row of the mean matrix, or -1 */
  double *row;      /* [4 d + C d] per-row scratch */
  double *wa;       /* [B]       FD: 1 - M[y_b, y_b] (0 when not adaptive) */
  double *rowval;   /* [k, B]    per-row partial results (summed in a fixed order) */

  /* ac_adcorre_forward_checked's buffers: labels (0-based) and embedding rows */
  int64_t *in_y;
  const float **in_e;
  int64_t in_ycap, in_ecap;
} ac_adcorre;

/* cls >= 1, history >= 0. All flags on, adaptive, md "present", lambda 50/C, eps 1e-8. */
int ac_adcorre_init(ac_adcorre *L, int cls, int64_t history);
void ac_adcorre_free(ac_adcorre *L);

/* Labels y in 0..C-1 (checked by the caller). E[j] points at embedding j [B, d].
 * Computes every enabled part and saves what backward needs. training != 0
 * appends argmax(Z_b) vs y_b to the confusion history AFTER the loss is
 * computed (the adaptive weights use the history before this batch).
 * Returns 0, or -1 with ac_fail (sizes, memory). */
int ac_adcorre_forward(ac_adcorre *L, const float *Z, const float *const *E, int64_t k,
                       int64_t B, int64_t d, const int64_t *y, int training);
/* One batch as the caller was given it (adcorre_check.c checks it all). */
typedef struct ac_adcorre_batch {
  const ac_tensor *Z;         /* logits [B, C], contiguous float32 */
  const ac_tensor *const *E;  /* k embeddings [B, d], contiguous float32 */
  int64_t k;
  const ac_tensor *labels;    /* integer-valued tensor [B] or [B, 1] of 1-based classes; or NULL, and */
  const int64_t *labels1;     /* nlabels 1-based classes (a Lua array read by the caller) */
  int64_t nlabels;
} ac_adcorre_batch;

/* Checks the batch (logits [B, C] with B >= 1; every embedding [B, d] with
 * one d >= 1; B labels, integers in 1..C; every value finite) and then runs
 * ac_adcorre_forward. -1 with a message naming the argument, the position
 * and the shapes, and no function (the caller adds its own). */
int ac_adcorre_forward_checked(ac_adcorre *L, const ac_adcorre_batch *in, int training);

/* gZ [B, C] and gE[j] [B, d] are overwritten with the gradient of total.
 * Returns -1 if no forward was done. */
int ac_adcorre_backward(ac_adcorre *L, float *gZ, float *const *gE);

/* Current row-normalised confusion matrix [C, C] (the pinned one when pinned). */
void ac_adcorre_confusion(const ac_adcorre *L, double *M);
/* Pins M [C, C] (M == NULL unpins). */
void ac_adcorre_set_confusion(ac_adcorre *L, const double *M);
/* Appends n (label, prediction) pairs, both 0..C-1. */
void ac_adcorre_record(ac_adcorre *L, const int64_t *y, const int64_t *pred, int64_t n);
void ac_adcorre_clear_history(ac_adcorre *L);

#endif
