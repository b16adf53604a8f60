/*
 * adcorre_check.c - what the Ad-Corre loss accepts as one batch, checked in
 * one place before ac_adcorre_forward runs: logits [B, C] with B >= 1, k
 * embeddings [B, d] of one width d >= 1, B labels that are integers in
 * 1..C, and no NaN or infinity anywhere. Messages name the argument, the
 * position and the shapes, and no function (the caller adds
 * "AdCorreLoss:forward: ").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "loss/adcorre_loss.h"

/* First non-finite element of a contiguous float array, or -1. */
static int64_t first_nonfinite(const float *p, int64_t n) {
  /* blocks of 256 checked branch-free on the exponent bits (vectorised),
   * the element found only in a block that has one */
  for (int64_t i0 = 0; i0 < n; i0 += 256) {
    int64_t i1 = i0 + 256 < n ? i0 + 256 : n;
    uint32_t any = 0;
    for (int64_t i = i0; i < i1; i++) {
      uint32_t bits;
      memcpy(&bits, p + i, sizeof bits);
      any |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (any)
      for (int64_t i = i0; i < i1; i++)
        if (!isfinite(p[i])) return i;
  }
  return -1;
}

/* Grows the per-call buffers (labels as 0-based classes, embedding
 * pointers) kept in L between calls. */
static int grow(ac_adcorre *L, int64_t B, int64_t k) {
  if (B > L->in_ycap) {
    int64_t *p = realloc(L->in_y, sizeof(int64_t) * (size_t)B);
    if (!p) return ac_fail("out of memory for %lld labels", (long long)B);
    L->in_y = p;
    L->in_ycap = B;
  }
  if (k > L->in_ecap) {
    const float **e = realloc((void *)L->in_e, sizeof(float *) * (size_t)k);
    if (!e) return ac_fail("out of memory");
    L->in_e = e;
    L->in_ecap = k;
  }
  return 0;
}

static int check_shapes(const ac_adcorre *L, const ac_adcorre_batch *in, int64_t *pB, int64_t *pd) {
  char s1[160];
  const ac_tensor *Z = in->Z;
  int C = L->C;
  if (Z->ndim != 2 || Z->shape[1] != C)
    return ac_fail("logits must be [B, %d], got %s", C, ac_shape_str(Z, s1, sizeof s1));
  int64_t B = Z->shape[0];
  if (B < 1) return ac_fail("logits has no rows (%s)", ac_shape_str(Z, s1, sizeof s1));
  int64_t d = -1;
  for (int64_t j = 0; j < in->k; j++) {
    const ac_tensor *e = in->E[j];
    if (e->ndim != 2 || e->shape[0] != B)
      return ac_fail("embeddings[%lld] must be [%lld, d] (one row per logits row), got %s", (long long)j + 1,
                     (long long)B, ac_shape_str(e, s1, sizeof s1));
    if (d < 0) d = e->shape[1];
    else if (e->shape[1] != d)
      return ac_fail("embeddings[%lld] is %s but embeddings[1] has width %lld", (long long)j + 1,
                     ac_shape_str(e, s1, sizeof s1), (long long)d);
    if (d < 1) return ac_fail("embeddings[%lld] has width 0 (%s)", (long long)j + 1, ac_shape_str(e, s1, sizeof s1));
  }
  *pB = B;
  *pd = d;
  return 0;
}

/* The labels as 0-based classes into y [B]. */
static int check_labels(const ac_adcorre_batch *in, int64_t B, int C, int64_t *y) {
  const ac_tensor *t = in->labels;
  if (t) {
    char s1[160];
    if (ac_numel(t) != B || (t->ndim != 1 && !(t->ndim == 2 && t->shape[1] == 1)))
      return ac_fail("labels must be a tensor [%lld] (one per sample), got %s", (long long)B,
                     ac_shape_str(t, s1, sizeof s1));
    for (int64_t i = 0; i < B; i++) {
      double v = ac_get_flat(t, i);
      if (t->dtype == AC_F32 && (v != floor(v) || !isfinite(v)))
        return ac_fail("label %g at position %lld is not an integer", v, (long long)i + 1);
      int64_t c = (int64_t)v;
      if (c < 1 || c > C)
        return ac_fail("label %lld at position %lld is outside 1..%d", (long long)c, (long long)i + 1, C);
      y[i] = c - 1;
    }
    return 0;
  }
  if (in->nlabels != B)
    return ac_fail("labels has %lld entries, logits has %lld rows", (long long)in->nlabels, (long long)B);
  for (int64_t i = 0; i < B; i++) {
    int64_t c = in->labels1[i];
    if (c < 1 || c > C)
      return ac_fail("label %lld at position %lld is outside 1..%d", (long long)c, (long long)i + 1, C);
    y[i] = c - 1;
  }
  return 0;
}

static int check_finite(const ac_adcorre_batch *in, int64_t B, int64_t C, int64_t d) {
  const float *z = ac_f32(in->Z);
  int64_t bad = first_nonfinite(z, B * C);
  if (bad >= 0)
    return ac_fail("logits has a non-finite value (%f) at row %lld, column %lld", (double)z[bad],
                   (long long)(bad / C) + 1, (long long)(bad % C) + 1);
  for (int64_t j = 0; j < in->k; j++) {
    const float *e = ac_f32(in->E[j]);
    bad = first_nonfinite(e, B * d);
    if (bad >= 0)
      return ac_fail("embeddings[%lld] has a non-finite value (%f) at row %lld, column %lld", (long long)j + 1,
                     (double)e[bad], (long long)(bad / d) + 1, (long long)(bad % d) + 1);
  }
  return 0;
}

int ac_adcorre_forward_checked(ac_adcorre *L, const ac_adcorre_batch *in, int training) {
  int64_t B = 0, d = 0;
  L->have_forward = 0;
  if (in->k < 1) return ac_fail("embeddings is empty (need at least one [B, d] tensor)");
  if (check_shapes(L, in, &B, &d)) return -1;
  /* (the caller's part: float32 data in row-major order) */
  if (in->Z->dtype != AC_F32 || !ac_is_contiguous(in->Z)) return ac_fail("logits must be a contiguous float32 tensor");
  for (int64_t j = 0; j < in->k; j++)
    if (in->E[j]->dtype != AC_F32 || !ac_is_contiguous(in->E[j]))
      return ac_fail("embeddings[%lld] must be a contiguous float32 tensor", (long long)j + 1);
  if (grow(L, B, in->k)) return -1;
  if (check_labels(in, B, L->C, L->in_y)) return -1;
  if (check_finite(in, B, L->C, d)) return -1;
  for (int64_t j = 0; j < in->k; j++) L->in_e[j] = ac_f32(in->E[j]);
  return ac_adcorre_forward(L, ac_f32(in->Z), L->in_e, in->k, B, d, L->in_y, training);
}
