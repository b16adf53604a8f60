/*
 * linalg.c - LAPACK-backed decompositions (see linalg.h). Matrices are
 * copied to row-major double buffers, decomposed with LAPACKE, and copied
 * back to float32.
 */
#include "core/linalg.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

static int to_double(const ac_tensor *a, const char *fn, double **out) {
  char b[128];
  if (a->ndim != 2) return ac_fail("%s: expects a 2-d tensor, got %s", fn, ac_shape_str(a, b, sizeof b));
  int64_t n = ac_numel(a);
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!d) return ac_fail("%s: out of memory", fn);
  for (int64_t i = 0; i < n; i++) d[i] = ac_get_flat(a, i);
  for (int64_t i = 0; i < n; i++)
    if (d[i] != d[i] || d[i] - d[i] != 0) {
      free(d);
      return ac_fail("%s: input contains NaN or Inf", fn);
    }
  *out = d;
  return 0;
}

static int from_double(ac_tensor *t, int ndim, const int64_t *shape, const double *d) {
  if (ac_tensor_new(t, AC_F32, ndim, shape)) return -1;
  int64_t n = ac_numel(t);
  float *p = ac_f32(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)d[i];
  return 0;
}

int ac_eigh(const ac_tensor *a, ac_tensor *w, ac_tensor *v) {
  char b[128];
  double *A, *W;
  memset(w, 0, sizeof *w);
  memset(v, 0, sizeof *v);
  if (a->ndim != 2 || a->shape[0] != a->shape[1])
    return ac_fail("eigh: expects a square matrix, got %s", ac_shape_str(a, b, sizeof b));
  if (to_double(a, "eigh", &A)) return -1;
  int64_t n = a->shape[0];
  if (n == 0) {
    free(A);
    int64_t s1[1] = {0}, s2[2] = {0, 0};
    if (ac_tensor_new(w, AC_F32, 1, s1)) return -1;
    return ac_tensor_new(v, AC_F32, 2, s2);
  }
  W = malloc(sizeof(double) * (size_t)n);
  if (!W) {
    free(A);
    return ac_fail("eigh: out of memory");
  }
  lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, A, (lapack_int)n, W);
  int rc = 0;
  if (info != 0) rc = ac_fail("eigh: LAPACK dsyevd failed (info %d)", (int)info);
  else {
    int64_t s1[1] = {n}, s2[2] = {n, n};
    if (from_double(w, 1, s1, W) || from_double(v, 2, s2, A)) {
      ac_tensor_release(w);
      rc = -1;
    }
  }
  free(A);
  free(W);
  return rc;
}

int ac_svd(const ac_tensor *a, ac_tensor *u, ac_tensor *s, ac_tensor *vt) {
  double *A;
  memset(u, 0, sizeof *u);
  memset(s, 0, sizeof *s);
  memset(vt, 0, sizeof *vt);
  if (to_double(a, "svd", &A)) return -1;
  int64_t m = a->shape[0], n = a->shape[1], k = m < n ? m : n;
  double *U = malloc(sizeof(double) * (size_t)(m * k + 1)), *S = malloc(sizeof(double) * (size_t)(k + 1)),
         *VT = malloc(sizeof(double) * (size_t)(k * n + 1));
  int rc = 0;
  if (!U || !S || !VT) rc = ac_fail("svd: out of memory");
  else if (k > 0) {
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)m, (lapack_int)n, A, (lapack_int)n, S, U,
                                     (lapack_int)k, VT, (lapack_int)n);
    if (info != 0) rc = ac_fail("svd: LAPACK dgesdd failed (info %d)", (int)info);
  }
  if (!rc) {
    int64_t su[2] = {m, k}, ss[1] = {k}, sv[2] = {k, n};
    if (from_double(u, 2, su, U) || from_double(s, 1, ss, S) || from_double(vt, 2, sv, VT)) {
      ac_tensor_release(u);
      ac_tensor_release(s);
      rc = -1;
    }
  }
  free(A);
  free(U);
  free(S);
  free(VT);
  return rc;
}

int ac_solve(const ac_tensor *a, const ac_tensor *b, ac_tensor *x) {
  char b1[128], b2[128];
  memset(x, 0, sizeof *x);
  if (a->ndim != 2 || a->shape[0] != a->shape[1])
    return ac_fail("solve: A must be square, got %s", ac_shape_str(a, b1, sizeof b1));
  int vec = b->ndim == 1;
  int64_t n = a->shape[0], r = vec ? 1 : (b->ndim == 2 ? b->shape[1] : -1);
  if (r < 0 || b->shape[0] != n)
    return ac_fail("solve: B %s does not match A %s", ac_shape_str(b, b2, sizeof b2), ac_shape_str(a, b1, sizeof b1));
  double *A, *B;
  if (to_double(a, "solve", &A)) return -1;
  ac_tensor bv = *b;
  if (vec) ac_view_unsqueeze(&bv, 1);
  if (to_double(&bv, "solve", &B)) {
    free(A);
    return -1;
  }
  lapack_int *ipiv = malloc(sizeof(lapack_int) * (size_t)(n + 1));
  int rc = 0;
  if (!ipiv) rc = ac_fail("solve: out of memory");
  else if (n > 0) {
    lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)r, A, (lapack_int)n, ipiv, B, (lapack_int)r);
    if (info > 0) rc = ac_fail("solve: the matrix is singular (U[%d,%d] = 0)", (int)info, (int)info);
    else if (info < 0) rc = ac_fail("solve: LAPACK dgesv failed (info %d)", (int)info);
  }
  if (!rc) {
    int64_t shape[2] = {n, r};
    rc = from_double(x, vec ? 1 : 2, shape, B);
  }
  free(A);
  free(B);
  free(ipiv);
  return rc;
}

int ac_inv(const ac_tensor *a, ac_tensor *out) {
  char b[128];
  memset(out, 0, sizeof *out);
  if (a->ndim != 2 || a->shape[0] != a->shape[1]) return ac_fail("inv: expects a square matrix, got %s", ac_shape_str(a, b, sizeof b));
  int64_t n = a->shape[0], shape[2] = {n, n};
  ac_tensor eye;
  if (ac_tensor_new(&eye, AC_F32, 2, shape)) return -1;
  for (int64_t i = 0; i < n; i++) ac_f32(&eye)[i * n + i] = 1;
  int rc = ac_solve(a, &eye, out);
  ac_tensor_release(&eye);
  return rc;
}
