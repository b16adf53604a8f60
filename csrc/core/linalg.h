/*
 * linalg.h - dense linear algebra on LAPACK: symmetric eigen-decomposition,
 * singular value decomposition, linear solves and inverses. Inputs are 2-d
 * float32 tensors (any strides); outputs are new contiguous tensors.
 * Computation runs in double precision for accuracy.
 */
#ifndef AC_LINALG_H
#define AC_LINALG_H
#include "core/tensor.h"

/* A [n,n] symmetric -> w [n] ascending eigenvalues, V [n,n] eigenvectors in columns. */
int ac_eigh(const ac_tensor *a, ac_tensor *w, ac_tensor *v);
/* A [m,n] -> U [m,k], S [k], Vt [k,n] with k = min(m,n) (thin SVD). */
int ac_svd(const ac_tensor *a, ac_tensor *u, ac_tensor *s, ac_tensor *vt);
/* Solves A X = B for A [n,n], B [n,r] -> X [n,r]. */
int ac_solve(const ac_tensor *a, const ac_tensor *b, ac_tensor *x);
/* Inverse of A [n,n]. */
int ac_inv(const ac_tensor *a, ac_tensor *out);

#endif
