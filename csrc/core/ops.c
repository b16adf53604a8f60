/*
 * ops.c - element-wise arithmetic with broadcasting, reductions and matrix
 * products for the tensor core (see ops.h). float32 rows run in tight loops;
 * other dtypes go through double.
 */
#include "core/ops.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>
#include "cpu/gemm.h"

/* ===================================================================== */
/* dtype rules                                                             */
/* ===================================================================== */

static int is_compare(ac_binop op) { return op >= AC_EQ && op <= AC_GE; }

ac_dtype ac_binary_dtype(ac_binop op, ac_dtype a, ac_dtype b, int scalar_is_float) {
  if (is_compare(op)) return AC_U8;
  if (a == AC_F32 || b == AC_F32 || scalar_is_float || op == AC_DIV || op == AC_RDIV || op == AC_POW || op == AC_RPOW)
    return AC_F32;
  if (a == AC_I64 || b == AC_I64) return AC_I64;
  return op == AC_SUB || op == AC_RSUB ? AC_I64 : (a == AC_U8 && b == AC_U8 && (op == AC_MAX || op == AC_MIN) ? AC_U8 : AC_I64);
}

ac_binop ac_binop_swapped(ac_binop op) {
  static const ac_binop swapped[] = {AC_ADD, AC_RSUB, AC_MUL, AC_RDIV, AC_RPOW, AC_MAX, AC_MIN, AC_EQ, AC_NE,
                                     AC_GT,  AC_GE,   AC_LT,  AC_LE,   AC_SUB, AC_DIV, AC_POW};
  return swapped[op];
}

const char *ac_binop_name(ac_binop op) {
  static const char *names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne",
                                "lt",  "le",  "gt",  "ge",  "sub", "div", "pow"};
  return names[op];
}

ac_dtype ac_reduce_dtype(ac_redop op, ac_dtype a) {
  if (op == AC_RMAX || op == AC_RMIN) return a;
  if (op == AC_RMEAN) return AC_F32;
  return a == AC_F32 ? AC_F32 : AC_I64;
}

/* ===================================================================== */
/* broadcasting                                                            */
/* ===================================================================== */

int ac_broadcast_shape(const ac_tensor *a, const ac_tensor *b, int *ndim, int64_t *shape) {
  char b1[128], b2[128];
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < n; i++) {
    int ia = a->ndim - n + i, ib = b->ndim - n + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      return ac_fail("shapes %s and %s do not broadcast (dimension %d: %lld vs %lld)", ac_shape_str(a, b1, sizeof b1),
                     ac_shape_str(b, b2, sizeof b2), i + 1, (long long)sa, (long long)sb);
    shape[i] = sa == 1 ? sb : sa;
  }
  *ndim = n;
  return 0;
}

/* strides of t broadcast to (ndim, shape): 0 where t has size 1 or no dim */
static void broadcast_strides(const ac_tensor *t, int ndim, const int64_t *shape, int64_t *st) {
  for (int i = 0; i < ndim; i++) {
    int it = t->ndim - ndim + i;
    st[i] = (it >= 0 && t->shape[it] == shape[i] && shape[i] != 1) ? t->stride[it] : 0;
  }
}

/* ===================================================================== */
/* scalar semantics                                                        */
/* ===================================================================== */

static inline double binop_d(double a, double b, ac_binop op) {
  switch (op) {
  case AC_ADD: return a + b;
  case AC_SUB: return a - b;
  case AC_MUL: return a * b;
  case AC_DIV: return a / b;
  case AC_POW: return pow(a, b);
  case AC_MAX: return a > b || isnan(a) ? a : b;
  case AC_MIN: return a < b || isnan(a) ? a : b;
  case AC_EQ: return a == b;
  case AC_NE: return a != b;
  case AC_LT: return a < b;
  case AC_LE: return a <= b;
  case AC_GT: return a > b;
  case AC_GE: return a >= b;
  case AC_RSUB: return b - a;
  case AC_RDIV: return b / a;
  case AC_RPOW: return pow(b, a);
  }
  return 0;
}

/* o[i*so] = a[i*sa] op b[i*sb] for float32 */
static void row_f32(float *o, int64_t so, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n,
                    ac_binop op) {
  int64_t i;
  if (so == 1 && sa == 1 && sb == 1) {
    switch (op) {
    case AC_ADD: for (i = 0; i < n; i++) o[i] = a[i] + b[i]; return;
    case AC_SUB: for (i = 0; i < n; i++) o[i] = a[i] - b[i]; return;
    case AC_MUL: for (i = 0; i < n; i++) o[i] = a[i] * b[i]; return;
    case AC_DIV: for (i = 0; i < n; i++) o[i] = a[i] / b[i]; return;
    default: break;
    }
  } else if (so == 1 && sa == 1 && sb == 0) {
    float s = *b;
    switch (op) {
    case AC_ADD: for (i = 0; i < n; i++) o[i] = a[i] + s; return;
    case AC_SUB: for (i = 0; i < n; i++) o[i] = a[i] - s; return;
    case AC_MUL: for (i = 0; i < n; i++) o[i] = a[i] * s; return;
    case AC_DIV: for (i = 0; i < n; i++) o[i] = a[i] / s; return;
    default: break;
    }
  }
  switch (op) {
  case AC_ADD: for (i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb]; return;
  case AC_SUB: for (i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb]; return;
  case AC_MUL: for (i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb]; return;
  case AC_DIV: for (i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb]; return;
  case AC_POW: for (i = 0; i < n; i++) o[i * so] = powf(a[i * sa], b[i * sb]); return;
  default:
    for (i = 0; i < n; i++) o[i * so] = (float)binop_d(a[i * sa], b[i * sb], op);
    return;
  }
}

static inline double load_d(const void *p, ac_dtype d, int64_t i) {
  switch (d) {
  case AC_F32: return ((const float *)p)[i];
  case AC_I64: return (double)((const int64_t *)p)[i];
  case AC_U8: return ((const uint8_t *)p)[i];
  }
  return 0;
}

static inline void store_d(void *p, ac_dtype d, int64_t i, double v) {
  switch (d) {
  case AC_F32: ((float *)p)[i] = (float)v; break;
  case AC_I64: ((int64_t *)p)[i] = isfinite(v) ? (int64_t)v : 0; break;
  case AC_U8: ((uint8_t *)p)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
  }
}

/* ===================================================================== */
/* element-wise                                                            */
/* ===================================================================== */

int ac_binary(ac_tensor *out, const ac_tensor *a, const ac_tensor *b, ac_binop op) {
  char b1[128], b2[128];
  int nd;
  int64_t shape[AC_MAXDIM];
  if (ac_broadcast_shape(a, b, &nd, shape)) return -1;
  if (out->ndim != nd || memcmp(out->shape, shape, sizeof(int64_t) * (size_t)nd) != 0)
    return ac_fail("output %s does not have the broadcast shape of %s and %s", ac_shape_str(out, b1, sizeof b1),
                   ac_shape_str(a, b2, sizeof b2), ac_shape_str(b, b1, sizeof b1));
  int64_t n = ac_numel(out);
  if (n == 0) return 0;
  int64_t sa[AC_MAXDIM], sb[AC_MAXDIM];
  broadcast_strides(a, nd, shape, sa);
  broadcast_strides(b, nd, shape, sb);
  void *po = ac_data(out);
  const void *pa = ac_data(a), *pb = ac_data(b);
  if (nd == 0) {
    store_d(po, out->dtype, 0, binop_d(load_d(pa, a->dtype, 0), load_d(pb, b->dtype, 0), op));
    return 0;
  }
  int last = nd - 1;
  int64_t inner = shape[last];
  ac_iter it;
  ac_iter_init(&it, last, shape);
  ac_iter_add_strides(&it, 0, out->stride);
  ac_iter_add_strides(&it, 0, sa);
  ac_iter_add_strides(&it, 0, sb);
  int fast = out->dtype == AC_F32 && a->dtype == AC_F32 && b->dtype == AC_F32;
  do {
    if (fast) {
      row_f32((float *)po + it.off[0], out->stride[last], (const float *)pa + it.off[1], sa[last],
              (const float *)pb + it.off[2], sb[last], inner, op);
    } else {
      for (int64_t i = 0; i < inner; i++)
        store_d(po, out->dtype, it.off[0] + i * out->stride[last],
                binop_d(load_d(pa, a->dtype, it.off[1] + i * sa[last]), load_d(pb, b->dtype, it.off[2] + i * sb[last]), op));
    }
  } while (ac_iter_next(&it));
  return 0;
}

int ac_binary_scalar(ac_tensor *out, const ac_tensor *a, double s, ac_binop op) {
  ac_tensor st;
  float sf = (float)s;
  int64_t si = (int64_t)s;
  memset(&st, 0, sizeof st);
  /* a 0-d view on a stack value */
  ac_storage fake = {0};
  fake.external = 1;
  fake.refcount = 1;
  if (a->dtype == AC_F32 || s != (double)si) {
    fake.data = &sf;
    st.dtype = AC_F32;
    if (a->dtype != AC_F32) { /* keep exact double semantics for int tensors */
      double sd = s;
      int64_t n = ac_numel(out);
      if (!ac_same_shape(out, a)) return ac_fail("output shape differs from input");
      for (int64_t i = 0; i < n; i++) ac_set_flat(out, i, binop_d(ac_get_flat(a, i), sd, op));
      return 0;
    }
  } else {
    fake.data = &si;
    st.dtype = AC_I64;
  }
  st.storage = &fake;
  st.ndim = 0;
  return ac_binary(out, a, &st, op);
}

static inline float unop_f(float x, ac_unop op) {
  switch (op) {
  case AC_NEG: return -x;
  case AC_EXP: return expf(x);
  case AC_LOG: return logf(x);
  case AC_SQRT: return sqrtf(x);
  case AC_ABS: return fabsf(x);
  case AC_SIGN: return (float)((x > 0) - (x < 0));
  case AC_SIGMOID: return 1.0f / (1.0f + expf(-x));
  case AC_TANH: return tanhf(x);
  case AC_FLOOR: return floorf(x);
  case AC_CEIL: return ceilf(x);
  case AC_ROUND: return nearbyintf(x);
  case AC_RELU: return x > 0 ? x : 0;
  case AC_SQUARE: return x * x;
  case AC_RSQRT: return 1.0f / sqrtf(x);
  case AC_LOG1P: return log1pf(x);
  case AC_RECIP: return 1.0f / x;
  }
  return x;
}

int ac_unary(ac_tensor *out, const ac_tensor *a, ac_unop op) {
  char b1[128], b2[128];
  if (!ac_same_shape(out, a))
    return ac_fail("output %s and input %s differ in shape", ac_shape_str(out, b1, sizeof b1), ac_shape_str(a, b2, sizeof b2));
  int64_t n = ac_numel(a);
  if (n == 0) return 0;
  if (out->dtype == AC_F32 && a->dtype == AC_F32 && ac_is_contiguous(out) && ac_is_contiguous(a)) {
    float *o = ac_f32(out);
    const float *x = ac_f32(a);
    for (int64_t i = 0; i < n; i++) o[i] = unop_f(x[i], op);
    return 0;
  }
  ac_iter it;
  ac_iter_init(&it, a->ndim, a->shape);
  ac_iter_add(&it, out);
  ac_iter_add(&it, a);
  void *po = ac_data(out);
  const void *pa = ac_data(a);
  do {
    store_d(po, out->dtype, it.off[0], unop_f((float)load_d(pa, a->dtype, it.off[1]), op));
  } while (ac_iter_next(&it));
  return 0;
}

int ac_clamp(ac_tensor *out, const ac_tensor *a, double lo, double hi) {
  char b1[128], b2[128];
  if (!ac_same_shape(out, a))
    return ac_fail("output %s and input %s differ in shape", ac_shape_str(out, b1, sizeof b1), ac_shape_str(a, b2, sizeof b2));
  if (ac_numel(a) == 0) return 0;
  ac_iter it;
  ac_iter_init(&it, a->ndim, a->shape);
  ac_iter_add(&it, out);
  ac_iter_add(&it, a);
  void *po = ac_data(out);
  const void *pa = ac_data(a);
  do {
    double v = load_d(pa, a->dtype, it.off[1]);
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    store_d(po, out->dtype, it.off[0], v);
  } while (ac_iter_next(&it));
  return 0;
}

int ac_axpy(ac_tensor *out, const ac_tensor *a, double alpha, const ac_tensor *b) {
  if (out->dtype != AC_F32 || a->dtype != AC_F32 || b->dtype != AC_F32)
    return ac_fail("axpy needs float32 tensors");
  int64_t n = ac_numel(out);
  if (ac_numel(a) != n || ac_numel(b) != n) return ac_fail("axpy: element counts differ");
  if (!(ac_is_contiguous(out) && ac_is_contiguous(a) && ac_is_contiguous(b)))
    return ac_fail("axpy needs contiguous tensors");
  float *o = ac_f32(out);
  const float *x = ac_f32(a), *y = ac_f32(b);
  float al = (float)alpha;
  for (int64_t i = 0; i < n; i++) o[i] = x[i] + al * y[i];
  return 0;
}

/* ===================================================================== */
/* reductions                                                              */
/* ===================================================================== */

static void red_init(ac_redop op, double *acc) {
  switch (op) {
  case AC_RSUM: case AC_RMEAN: *acc = 0; break;
  case AC_RPROD: *acc = 1; break;
  case AC_RMAX: *acc = -INFINITY; break;
  case AC_RMIN: *acc = INFINITY; break;
  }
}

/* returns 1 when v replaced the running extreme */
static inline int red_step(ac_redop op, double *acc, double v) {
  switch (op) {
  case AC_RSUM: case AC_RMEAN: *acc += v; return 0;
  case AC_RPROD: *acc *= v; return 0;
  case AC_RMAX: if (v > *acc || isnan(v)) { if (!isnan(*acc)) { *acc = v; return 1; } } return 0;
  case AC_RMIN: if (v < *acc || isnan(v)) { if (!isnan(*acc)) { *acc = v; return 1; } } return 0;
  }
  return 0;
}

double ac_reduce_all(const ac_tensor *a, ac_redop op, int64_t *argidx) {
  int64_t n = ac_numel(a);
  double acc = 0;
  red_init(op, &acc);
  if (argidx) *argidx = 0;
  if (n == 0) return op == AC_RMEAN ? NAN : acc;
  const void *p = ac_data(a);
  if (a->dtype == AC_F32 && ac_is_contiguous(a) && (op == AC_RSUM || op == AC_RMEAN)) {
    const float *x = p;
    /* pairwise-ish: double accumulators over blocks */
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return op == AC_RMEAN ? s / (double)n : s;
  }
  ac_iter it;
  ac_iter_init(&it, a->ndim, a->shape);
  ac_iter_add(&it, a);
  if (op == AC_RMAX || op == AC_RMIN) acc = load_d(p, a->dtype, it.off[0]);
  int64_t i = 0;
  do {
    if (red_step(op, &acc, load_d(p, a->dtype, it.off[0])) && argidx) *argidx = i;
    i++;
  } while (ac_iter_next(&it));
  return op == AC_RMEAN ? acc / (double)n : acc;
}

/* iterate over (outer, inner) with the reduced dim in the middle */
static int reduce_check(ac_tensor *out, const ac_tensor *a, int dim, const char *what) {
  char b1[128], b2[128];
  if (dim < 0 || dim >= a->ndim) return ac_fail("%s: dimension %d out of range for a %d-d tensor", what, dim + 1, a->ndim);
  int64_t want = ac_numel(a) / (a->shape[dim] ? a->shape[dim] : 1);
  if (a->shape[dim] == 0) want = 0;
  if (ac_numel(out) != want && !(a->shape[dim] == 0))
    return ac_fail("%s: output %s does not match input %s reduced over dimension %d", what, ac_shape_str(out, b1, sizeof b1),
                   ac_shape_str(a, b2, sizeof b2), dim + 1);
  return 0;
}

/* An iterator over the lines of a along dim: it->off[0] is the offset of
 * each line's first element (consecutive elements a->stride[dim] apart),
 * visited in the flat order of the reduced output. */
static void iter_lines(ac_iter *it, const ac_tensor *a, int dim) {
  ac_tensor v = *a; /* a viewed with dim moved last */
  int perm[AC_MAXDIM], j = 0;
  for (int i = 0; i < a->ndim; i++) if (i != dim) perm[j++] = i;
  perm[j] = dim;
  ac_view_permute(&v, perm);
  ac_iter_init(it, a->ndim - 1, v.shape);
  ac_iter_add_strides(it, 0, v.stride);
}

int ac_reduce_dim(ac_tensor *out, ac_tensor *idx, const ac_tensor *a, int dim, ac_redop op) {
  if (reduce_check(out, a, dim, "reduce")) return -1;
  if (a->shape[dim] == 0 && (op == AC_RMAX || op == AC_RMIN))
    return ac_fail("max/min over an empty dimension");
  int64_t len = a->shape[dim], sd = a->stride[dim];
  const void *p = ac_data(a);
  if (ac_numel(out) == 0) return 0;
  ac_iter it;
  iter_lines(&it, a, dim);
  int64_t o = 0;
  do {
    double acc = 0;
    int64_t arg = 0;
    red_init(op, &acc);
    if (a->dtype == AC_F32 && (op == AC_RSUM || op == AC_RMEAN)) {
      const float *x = (const float *)p + it.off[0];
      for (int64_t i = 0; i < len; i++) acc += x[i * sd];
    } else {
      if ((op == AC_RMAX || op == AC_RMIN) && len > 0) acc = load_d(p, a->dtype, it.off[0]);
      for (int64_t i = 0; i < len; i++)
        if (red_step(op, &acc, load_d(p, a->dtype, it.off[0] + i * sd))) arg = i;
    }
    if (op == AC_RMEAN) acc = len ? acc / (double)len : NAN;
    ac_set_flat(out, o, acc);
    if (idx) ac_set_flat(idx, o, (double)arg);
    o++;
  } while (ac_iter_next(&it));
  return 0;
}

double ac_var_all(const ac_tensor *a, int correction) {
  int64_t n = ac_numel(a);
  if (n - correction <= 0) return NAN;
  double mean = ac_reduce_all(a, AC_RMEAN, NULL), s = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = ac_get_flat(a, i) - mean;
    s += d * d;
  }
  return s / (double)(n - correction);
}

int ac_var_dim(ac_tensor *out, const ac_tensor *a, int dim, int correction) {
  if (reduce_check(out, a, dim, "var")) return -1;
  int64_t len = a->shape[dim], sd = a->stride[dim], o = 0;
  const void *p = ac_data(a);
  if (ac_numel(out) == 0) return 0;
  ac_iter it;
  iter_lines(&it, a, dim);
  do {
    double m = 0, s = 0;
    for (int64_t i = 0; i < len; i++) m += load_d(p, a->dtype, it.off[0] + i * sd);
    m /= (double)(len ? len : 1);
    for (int64_t i = 0; i < len; i++) {
      double d = load_d(p, a->dtype, it.off[0] + i * sd) - m;
      s += d * d;
    }
    ac_set_flat(out, o++, len - correction > 0 ? s / (double)(len - correction) : NAN);
  } while (ac_iter_next(&it));
  return 0;
}

static inline double norm_acc(double acc, double v, double p) {
  v = fabs(v);
  if (p == 2) return acc + v * v;
  if (p == 1) return acc + v;
  if (isinf(p)) return v > acc ? v : acc;
  if (p == 0) return acc + (v != 0);
  return acc + pow(v, p);
}

static inline double norm_fin(double acc, double p) {
  if (p == 2) return sqrt(acc);
  if (p == 1 || p == 0 || isinf(p)) return acc;
  return pow(acc, 1.0 / p);
}

double ac_norm_all(const ac_tensor *a, double p) {
  int64_t n = ac_numel(a);
  double acc = 0;
  if (a->dtype == AC_F32 && ac_is_contiguous(a) && p == 2) {
    const float *x = ac_f32(a);
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return sqrt(acc);
  }
  for (int64_t i = 0; i < n; i++) acc = norm_acc(acc, ac_get_flat(a, i), p);
  return norm_fin(acc, p);
}

int ac_norm_dim(ac_tensor *out, const ac_tensor *a, int dim, double p) {
  if (reduce_check(out, a, dim, "norm")) return -1;
  int64_t len = a->shape[dim], sd = a->stride[dim], o = 0;
  const void *pp = ac_data(a);
  if (ac_numel(out) == 0) return 0;
  ac_iter it;
  iter_lines(&it, a, dim);
  do {
    double acc = 0;
    for (int64_t i = 0; i < len; i++) acc = norm_acc(acc, load_d(pp, a->dtype, it.off[0] + i * sd), p);
    ac_set_flat(out, o++, norm_fin(acc, p));
  } while (ac_iter_next(&it));
  return 0;
}

/* ===================================================================== */
/* matrix products                                                         */
/* ===================================================================== */

/* A 2-d view is usable by BLAS as-is when one of its strides is 1 and the
 * other (the leading dimension) is >= the row length. */
static int blas_layout(const ac_tensor *t, int64_t s0, int64_t s1, int64_t rows, int64_t cols, CBLAS_TRANSPOSE *tr,
                       int64_t *ld) {
  if ((s1 == 1 || cols == 1) && (s0 >= (cols > 1 ? cols : 1) || rows == 1)) {
    *tr = CblasNoTrans;
    *ld = rows == 1 ? (cols > 1 ? cols : 1) : s0;
    if (*ld < cols) *ld = cols;
    return 1;
  }
  if ((s0 == 1 || rows == 1) && (s1 >= (rows > 1 ? rows : 1) || cols == 1)) {
    *tr = CblasTrans;
    *ld = cols == 1 ? (rows > 1 ? rows : 1) : s1;
    if (*ld < rows) *ld = rows;
    return 1;
  }
  (void)t;
  return 0;
}

static int gemm_checked(const ac_tensor *a, int64_t aoff, const int64_t *ast, const ac_tensor *b, int64_t boff,
                        const int64_t *bst, ac_tensor *c, int64_t coff, const int64_t *cst, int64_t m, int64_t k,
                        int64_t n, float alpha, float beta) {
  CBLAS_TRANSPOSE ta, tb, tc;
  int64_t lda, ldb, ldc;
  if (!blas_layout(a, ast[0], ast[1], m, k, &ta, &lda) || !blas_layout(b, bst[0], bst[1], k, n, &tb, &ldb) ||
      !blas_layout(c, cst[0], cst[1], m, n, &tc, &ldc) || tc != CblasNoTrans)
    return 1; /* caller makes contiguous copies */
  if (ta == CblasTrans && tb == CblasTrans) { /* the one form the library's GEMM lacks */
    cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, alpha, ac_f32(a) + aoff, (int)lda, ac_f32(b) + boff,
                (int)ldb, beta, ac_f32(c) + coff, (int)ldc);
    return 0;
  }
  /* nn, tn, nt: the library's GEMM (cpu/gemm.h), whatever core OpenBLAS runs */
  float *C = ac_f32(c) + coff;
  if (beta != 0.0f && beta != 1.0f)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) C[i * ldc + j] *= beta;
  ac_gemm_parallel(ta == CblasTrans ? 1 : tb == CblasTrans ? 2 : 0, m, n, k, alpha, ac_f32(a) + aoff, lda,
                   ac_f32(b) + boff, ldb, beta != 0.0f, C, ldc);
  return 0;
}

static int mm_core(ac_tensor *c, const ac_tensor *a, const ac_tensor *b, float alpha, float beta, int batched) {
  char b1[128], b2[128], b3[128];
  int nd = batched ? 3 : 2;
  const char *name = batched ? "bmm" : "matmul";
  if (a->ndim != nd || b->ndim != nd || c->ndim != nd)
    return ac_fail("%s: expects %d-d tensors, got %s and %s", name, nd, ac_shape_str(a, b1, sizeof b1), ac_shape_str(b, b2, sizeof b2));
  if (a->dtype != AC_F32 || b->dtype != AC_F32 || c->dtype != AC_F32)
    return ac_fail("%s: expects float32 tensors, got %s and %s", name, ac_dtype_name(a->dtype), ac_dtype_name(b->dtype));
  int o = batched;
  int64_t bs = batched ? a->shape[0] : 1;
  int64_t m = a->shape[o], k = a->shape[o + 1], n = b->shape[o + 1];
  if (b->shape[o] != k || (batched && b->shape[0] != bs))
    return ac_fail("%s: sizes do not match: %s @ %s", name, ac_shape_str(a, b1, sizeof b1), ac_shape_str(b, b2, sizeof b2));
  if (c->shape[o] != m || c->shape[o + 1] != n || (batched && c->shape[0] != bs))
    return ac_fail("%s: output %s, expected [%s%lld, %lld] for %s @ %s", name, ac_shape_str(c, b3, sizeof b3),
                   batched ? "B, " : "", (long long)m, (long long)n, ac_shape_str(a, b1, sizeof b1), ac_shape_str(b, b2, sizeof b2));
  if (m == 0 || n == 0) return 0;
  if (k == 0) {
    if (beta == 0) return ac_fill(c, 0);
    for (int64_t i = 0; i < ac_numel(c); i++) ac_set_flat(c, i, beta * ac_get_flat(c, i));
    return 0;
  }
  /* Contiguous copies for layouts BLAS cannot take (transposed views pass as they are). */
  ac_tensor ac_, bc_, cc_;
  const ac_tensor *A = a, *B = b;
  ac_tensor *C = c;
  int copied_a = 0, copied_b = 0, copied_c = 0;
  CBLAS_TRANSPOSE t;
  int64_t ld;
  if (!blas_layout(A, A->stride[o], A->stride[o + 1], m, k, &t, &ld)) {
    if (ac_contiguous(&ac_, A)) goto fail;
    A = &ac_, copied_a = 1;
  }
  if (!blas_layout(B, B->stride[o], B->stride[o + 1], k, n, &t, &ld)) {
    if (ac_contiguous(&bc_, B)) goto fail;
    B = &bc_, copied_b = 1;
  }
  if (!blas_layout(C, C->stride[o], C->stride[o + 1], m, n, &t, &ld) || t != CblasNoTrans) {
    if (ac_tensor_new_like(&cc_, C) || ac_copy(&cc_, C)) goto fail;
    C = &cc_, copied_c = 1;
  }
  for (int64_t i = 0; i < bs; i++) {
    int64_t ao = batched ? i * A->stride[0] : 0, bo = batched ? i * B->stride[0] : 0, co = batched ? i * C->stride[0] : 0;
    gemm_checked(A, ao, A->stride + o, B, bo, B->stride + o, C, co, C->stride + o, m, k, n, alpha, beta);
  }
  if (copied_c) {
    ac_copy(c, C);
    ac_tensor_release(&cc_);
  }
  if (copied_a) ac_tensor_release(&ac_);
  if (copied_b) ac_tensor_release(&bc_);
  return 0;
fail:
  if (copied_a) ac_tensor_release(&ac_);
  if (copied_b) ac_tensor_release(&bc_);
  return -1;
}

int ac_addmm(ac_tensor *c, const ac_tensor *a, const ac_tensor *b, float alpha, float beta) {
  return mm_core(c, a, b, alpha, beta, 0);
}

int ac_baddbmm(ac_tensor *c, const ac_tensor *a, const ac_tensor *b, float alpha, float beta) {
  return mm_core(c, a, b, alpha, beta, 1);
}
