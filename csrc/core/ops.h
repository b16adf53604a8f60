/*
 * ops.h - element-wise arithmetic with broadcasting, reductions and matrix
 * products on ac_tensor views (float32 fast paths; int64 and uint8 through a
 * generic path). Outputs are caller-provided; shapes are checked here.
 */
#ifndef AC_OPS_H
#define AC_OPS_H
#include "core/tensor.h"

typedef enum {
  AC_ADD, AC_SUB, AC_MUL, AC_DIV, AC_POW, AC_MAX, AC_MIN,
  AC_EQ, AC_NE, AC_LT, AC_LE, AC_GT, AC_GE, AC_RSUB, AC_RDIV, AC_RPOW
} ac_binop;

typedef enum {
  AC_NEG, AC_EXP, AC_LOG, AC_SQRT, AC_ABS, AC_SIGN, AC_SIGMOID, AC_TANH,
  AC_FLOOR, AC_CEIL, AC_ROUND, AC_RELU, AC_SQUARE, AC_RSQRT, AC_LOG1P, AC_RECIP
} ac_unop;

typedef enum { AC_RSUM, AC_RMEAN, AC_RMAX, AC_RMIN, AC_RPROD } ac_redop;

/* ---- dtype rules (what the Lua operators and functions return) ------- */
/* Comparisons give uint8; float32 wins over integers, and so does a
 * non-integer scalar; division and powers give float32; otherwise int64,
 * except maximum/minimum of two uint8 tensors (uint8). */
ac_dtype ac_binary_dtype(ac_binop op, ac_dtype a, ac_dtype b, int scalar_is_float);
/* s op a written as a op' s (a - s -> AC_SUB, s - a -> AC_RSUB, s < a -> a > s). */
ac_binop ac_binop_swapped(ac_binop op);
/* "add", "sub", ..., "ge" (the reversed ops give their forward name). */
const char *ac_binop_name(ac_binop op);
/* Reductions over a dimension: max/min keep the dtype, mean gives float32,
 * sum and prod float32 for float32 input, int64 otherwise. */
ac_dtype ac_reduce_dtype(ac_redop op, ac_dtype a);

/* The broadcast shape of a and b (numpy rules); -1 with a message if they do not broadcast. */
int ac_broadcast_shape(const ac_tensor *a, const ac_tensor *b, int *ndim, int64_t *shape);
/* out = a op b, out has the broadcast shape (out may alias a when a has that shape). */
int ac_binary(ac_tensor *out, const ac_tensor *a, const ac_tensor *b, ac_binop op);
/* out = a op s (for AC_RSUB/RDIV/RPOW: s op a). */
int ac_binary_scalar(ac_tensor *out, const ac_tensor *a, double s, ac_binop op);
int ac_unary(ac_tensor *out, const ac_tensor *a, ac_unop op);
int ac_clamp(ac_tensor *out, const ac_tensor *a, double lo, double hi);
/* out = a + alpha * b (same numel, float32) */
int ac_axpy(ac_tensor *out, const ac_tensor *a, double alpha, const ac_tensor *b);

/* Reductions over all elements (computed in double). */
double ac_reduce_all(const ac_tensor *a, ac_redop op, int64_t *argidx);
/* Over one dimension: out has a's shape with dim removed (or kept as 1 when keepdim);
 * idx (optional, int64) receives argmax/argmin positions (0-based). */
int ac_reduce_dim(ac_tensor *out, ac_tensor *idx, const ac_tensor *a, int dim, ac_redop op);
/* Variance over all (correction = 1 for unbiased) or over dim. */
double ac_var_all(const ac_tensor *a, int correction);
int ac_var_dim(ac_tensor *out, const ac_tensor *a, int dim, int correction);
double ac_norm_all(const ac_tensor *a, double p);
int ac_norm_dim(ac_tensor *out, const ac_tensor *a, int dim, double p);

/* C = beta*C + alpha * A @ B for 2-d float32 views (A [m,k], B [k,n], C [m,n]);
 * transposed views are passed to sgemm without copies. */
int ac_addmm(ac_tensor *c, const ac_tensor *a, const ac_tensor *b, float alpha, float beta);
/* Batched: A [b,m,k], B [b,k,n], C [b,m,n]. */
int ac_baddbmm(ac_tensor *c, const ac_tensor *a, const ac_tensor *b, float alpha, float beta);

#endif
