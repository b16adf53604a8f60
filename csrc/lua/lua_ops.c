/*
 * lua_ops.c - bindings for element-wise arithmetic (with broadcasting),
 * comparisons, unary maths, reductions and matrix products, as functions on
 * the module, tensor methods and Lua operators (+ - * / ^ unary -).
 */
#include <math.h>
#include <string.h>

#include "lua/lua_util.h"
#include "core/ops.h"

/* ===================================================================== */
/* binary                                                                  */
/* ===================================================================== */

/* out-of-place a op b where either may be a number */
static int binary(lua_State *L, ac_binop op) {
  ac_tensor *a = acL_test(L, 1), *b = acL_test(L, 2);
  const char *name = ac_binop_name(op);
  if (a && !a->storage) return acL_error(L, "%s: argument 1 is a closed tensor", name);
  if (b && !b->storage) return acL_error(L, "%s: argument 2 is a closed tensor", name);
  if (a && b) {
    int nd;
    int64_t shape[AC_MAXDIM];
    if (ac_broadcast_shape(a, b, &nd, shape)) return acL_kernel_error(L, name);
    ac_tensor *o = acL_new(L, ac_binary_dtype(op, a->dtype, b->dtype, 0), nd, shape);
    if (ac_binary(o, a, b, op)) return acL_kernel_error(L, name);
    return 1;
  }
  if (a && lua_type(L, 2) == LUA_TNUMBER) {
    double s = lua_tonumber(L, 2);
    ac_tensor *o = acL_new(L, ac_binary_dtype(op, a->dtype, a->dtype, !lua_isinteger(L, 2)), a->ndim, a->shape);
    if (ac_binary_scalar(o, a, s, op)) return acL_kernel_error(L, name);
    return 1;
  }
  if (b && lua_type(L, 1) == LUA_TNUMBER) {
    double s = lua_tonumber(L, 1);
    ac_binop sop = ac_binop_swapped(op);
    ac_tensor *o = acL_new(L, ac_binary_dtype(sop, b->dtype, b->dtype, !lua_isinteger(L, 1)), b->ndim, b->shape);
    if (ac_binary_scalar(o, b, s, sop)) return acL_kernel_error(L, name);
    return 1;
  }
  return acL_error(L, "%s: expects tensors or numbers, got %s and %s", name, luaL_typename(L, 1), luaL_typename(L, 2));
}

/* in place: a = a op b (b broadcast to a's shape) */
static int binary_(lua_State *L, ac_binop op) {
  ac_tensor *a = acL_check(L, 1);
  const char *name = ac_binop_name(op);
  ac_tensor *b = acL_test(L, 2);
  int rc;
  if (b) {
    acL_check(L, 2);
    int nd;
    int64_t shape[AC_MAXDIM];
    if (ac_broadcast_shape(a, b, &nd, shape)) return acL_kernel_error(L, name);
    if (nd != a->ndim || memcmp(shape, a->shape, sizeof(int64_t) * (size_t)nd))
      return acL_error(L, "%s_: in-place result %s must keep the shape of the tensor %s", name, acL_shape(b), acL_shape(a));
    if (!lua_isnoneornil(L, 3) && (op == AC_ADD || op == AC_SUB)) {
      /* a += alpha * b */
      double alpha = luaL_checknumber(L, 3) * (op == AC_SUB ? -1 : 1);
      if (a->dtype == AC_F32 && b->dtype == AC_F32 && ac_same_shape(a, b) && ac_is_contiguous(a) && ac_is_contiguous(b))
        rc = ac_axpy(a, a, alpha, b);
      else {
        ac_tensor *tmp = acL_new(L, AC_F32, b->ndim, b->shape);
        rc = ac_binary_scalar(tmp, b, alpha, AC_MUL) || ac_binary(a, a, tmp, AC_ADD);
      }
    } else {
      rc = ac_binary(a, a, b, op);
    }
  } else {
    rc = ac_binary_scalar(a, a, luaL_checknumber(L, 2), op);
  }
  if (rc) return acL_kernel_error(L, name);
  lua_settop(L, 1);
  return 1;
}

#define BIN(fn, op) \
  static int fn(lua_State *L) { return binary(L, op); } \
  static int fn##_(lua_State *L) { return binary_(L, op); }
BIN(op_add, AC_ADD)
BIN(op_sub, AC_SUB)
BIN(op_mul, AC_MUL)
BIN(op_div, AC_DIV)
BIN(op_pow, AC_POW)
BIN(op_maximum, AC_MAX)
BIN(op_minimum, AC_MIN)
#undef BIN

static int op_eq(lua_State *L) { return binary(L, AC_EQ); }
static int op_ne(lua_State *L) { return binary(L, AC_NE); }
static int op_lt(lua_State *L) { return binary(L, AC_LT); }
static int op_le(lua_State *L) { return binary(L, AC_LE); }
static int op_gt(lua_State *L) { return binary(L, AC_GT); }
static int op_ge(lua_State *L) { return binary(L, AC_GE); }

static int op_unm(lua_State *L) {
  ac_tensor *a = acL_check(L, 1);
  ac_tensor *o = acL_new(L, a->dtype, a->ndim, a->shape);
  if (ac_binary_scalar(o, a, -1, AC_MUL)) return acL_kernel_error(L, "neg");
  return 1;
}

/* ===================================================================== */
/* unary                                                                   */
/* ===================================================================== */

static int unary(lua_State *L, ac_unop op, const char *name, int inplace) {
  ac_tensor *a = acL_check(L, 1);
  ac_tensor *o;
  if (inplace) {
    if (a->dtype != AC_F32) return acL_error(L, "%s_: in-place maths needs a float32 tensor, got %s", name, ac_dtype_name(a->dtype));
    o = a;
  } else {
    o = acL_new(L, AC_F32, a->ndim, a->shape);
  }
  if (ac_unary(o, a, op)) return acL_kernel_error(L, name);
  if (inplace) lua_settop(L, 1);
  return 1;
}

#define UN(fn, op, name) \
  static int fn(lua_State *L) { return unary(L, op, name, 0); } \
  static int fn##_(lua_State *L) { return unary(L, op, name, 1); }
UN(op_neg, AC_NEG, "neg")
UN(op_exp, AC_EXP, "exp")
UN(op_log, AC_LOG, "log")
UN(op_sqrt, AC_SQRT, "sqrt")
UN(op_abs, AC_ABS, "abs")
UN(op_sign, AC_SIGN, "sign")
UN(op_sigmoid, AC_SIGMOID, "sigmoid")
UN(op_tanh, AC_TANH, "tanh")
UN(op_floor, AC_FLOOR, "floor")
UN(op_ceil, AC_CEIL, "ceil")
UN(op_round, AC_ROUND, "round")
UN(op_relu, AC_RELU, "relu")
UN(op_square, AC_SQUARE, "square")
UN(op_rsqrt, AC_RSQRT, "rsqrt")
UN(op_log1p, AC_LOG1P, "log1p")
UN(op_reciprocal, AC_RECIP, "reciprocal")
#undef UN

/* clamp(t, lo, hi): nil bounds are open */
static int clamp_impl(lua_State *L, int inplace) {
  ac_tensor *a = acL_check(L, 1);
  double lo = lua_isnoneornil(L, 2) ? -INFINITY : luaL_checknumber(L, 2);
  double hi = lua_isnoneornil(L, 3) ? INFINITY : luaL_checknumber(L, 3);
  if (lo > hi) return acL_error(L, "clamp: min %g is greater than max %g", lo, hi);
  ac_tensor *o = inplace ? a : acL_new(L, a->dtype, a->ndim, a->shape);
  if (ac_clamp(o, a, lo, hi)) return acL_kernel_error(L, "clamp");
  if (inplace) lua_settop(L, 1);
  return 1;
}
static int op_clamp(lua_State *L) { return clamp_impl(L, 0); }
static int op_clamp_(lua_State *L) { return clamp_impl(L, 1); }

/* ===================================================================== */
/* reductions                                                              */
/* ===================================================================== */

static int opt_dim(lua_State *L, int arg, const ac_tensor *t) {
  if (lua_isnoneornil(L, arg)) return -1;
  lua_Integer d = luaL_checkinteger(L, arg);
  if (d < 0) d += t->ndim + 1;
  if (d < 1 || d > t->ndim)
    return acL_error(L, "dimension %lld out of range for a %d-d tensor %s", (long long)lua_tointeger(L, arg), t->ndim, acL_shape(t));
  return (int)d - 1;
}

/* new tensor for a reduction over dim, keeping it as size 1 when keepdim */
static ac_tensor *reduced(lua_State *L, const ac_tensor *a, int dim, int keepdim, ac_dtype dt) {
  int64_t shape[AC_MAXDIM];
  int n = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (i == dim) {
      if (keepdim) shape[n++] = 1;
    } else {
      shape[n++] = a->shape[i];
    }
  }
  return acL_new(L, dt, n, shape);
}

static int reduce(lua_State *L, ac_redop op, const char *name) {
  ac_tensor *a = acL_check(L, 1);
  int dim = opt_dim(L, 2, a);
  int keepdim = lua_toboolean(L, 3);
  if (dim < 0) {
    if ((op == AC_RMAX || op == AC_RMIN) && ac_numel(a) == 0) return acL_error(L, "%s: tensor is empty", name);
    int64_t arg;
    double v = ac_reduce_all(a, op, &arg);
    if (a->dtype != AC_F32 && op != AC_RMEAN) lua_pushinteger(L, (lua_Integer)v);
    else lua_pushnumber(L, v);
    if (op == AC_RMAX || op == AC_RMIN) {
      lua_pushinteger(L, arg + 1);
      return 2;
    }
    return 1;
  }
  ac_dtype dt = ac_reduce_dtype(op, a->dtype);
  ac_tensor *o = reduced(L, a, dim, keepdim, dt);
  ac_tensor *idx = NULL;
  if (op == AC_RMAX || op == AC_RMIN) idx = reduced(L, a, dim, keepdim, AC_I64);
  if (ac_reduce_dim(o, idx, a, dim, op)) return acL_kernel_error(L, name);
  if (idx) {
    int64_t n = ac_numel(idx);
    int64_t *p = ac_i64(idx);
    for (int64_t i = 0; i < n; i++) p[i] += 1; /* 1-based */
    return 2;
  }
  return 1;
}

static int op_sum(lua_State *L) { return reduce(L, AC_RSUM, "sum"); }
static int op_mean(lua_State *L) { return reduce(L, AC_RMEAN, "mean"); }
static int op_prod(lua_State *L) { return reduce(L, AC_RPROD, "prod"); }
static int op_max(lua_State *L) { return reduce(L, AC_RMAX, "max"); }
static int op_min(lua_State *L) { return reduce(L, AC_RMIN, "min"); }

static int argext(lua_State *L, ac_redop op, const char *name) {
  int n = reduce(L, op, name);
  /* return only the indices */
  lua_remove(L, -n);
  return 1;
}
static int op_argmax(lua_State *L) { return argext(L, AC_RMAX, "argmax"); }
static int op_argmin(lua_State *L) { return argext(L, AC_RMIN, "argmin"); }

/* var(t [, dim [, unbiased=true [, keepdim]]]) */
static int var_impl(lua_State *L, int take_sqrt) {
  ac_tensor *a = acL_check(L, 1);
  int dim = opt_dim(L, 2, a);
  int correction = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  int keepdim = lua_toboolean(L, 4);
  if (dim < 0) {
    double v = ac_var_all(a, correction);
    lua_pushnumber(L, take_sqrt ? sqrt(v) : v);
    return 1;
  }
  ac_tensor *o = reduced(L, a, dim, keepdim, AC_F32);
  if (ac_var_dim(o, a, dim, correction)) return acL_kernel_error(L, take_sqrt ? "std" : "var");
  if (take_sqrt) ac_unary(o, o, AC_SQRT);
  return 1;
}
static int op_var(lua_State *L) { return var_impl(L, 0); }
static int op_std(lua_State *L) { return var_impl(L, 1); }

/* norm(t [, p=2 [, dim [, keepdim]]]) */
static int op_norm(lua_State *L) {
  ac_tensor *a = acL_check(L, 1);
  double p = luaL_optnumber(L, 2, 2);
  if (p < 0) return acL_error(L, "norm: p must be >= 0, got %g", p);
  int dim = opt_dim(L, 3, a);
  if (dim < 0) {
    lua_pushnumber(L, ac_norm_all(a, p));
    return 1;
  }
  ac_tensor *o = reduced(L, a, dim, lua_toboolean(L, 4), AC_F32);
  if (ac_norm_dim(o, a, dim, p)) return acL_kernel_error(L, "norm");
  return 1;
}

/* ===================================================================== */
/* matrix products                                                         */
/* ===================================================================== */

/* matmul(a, b): 2-d @ 2-d, 2-d @ 1-d, 1-d @ 2-d, 1-d @ 1-d (a number), 3-d @ 3-d */
static int op_matmul(lua_State *L) {
  ac_tensor *a = acL_checkf32(L, 1, "matmul", "a"), *b = acL_checkf32(L, 2, "matmul", "b");
  if (a->ndim == 3 && b->ndim == 3) {
    if (a->shape[0] != b->shape[0] || a->shape[2] != b->shape[1])
      return acL_error(L, "matmul: sizes do not match: %s @ %s", acL_shape(a), acL_shape(b));
    int64_t shape[3] = {a->shape[0], a->shape[1], b->shape[2]};
    ac_tensor *c = acL_new(L, AC_F32, 3, shape);
    if (ac_baddbmm(c, a, b, 1, 0)) return acL_kernel_error(L, "matmul");
    return 1;
  }
  if (a->ndim < 1 || a->ndim > 2 || b->ndim < 1 || b->ndim > 2)
    return acL_error(L, "matmul: expects 1-d, 2-d or (both) 3-d tensors, got %s @ %s", acL_shape(a), acL_shape(b));
  ac_tensor A = *a, B = *b;
  if (A.ndim == 1) ac_view_unsqueeze(&A, 0);
  if (B.ndim == 1) ac_view_unsqueeze(&B, 1);
  if (A.shape[1] != B.shape[0]) return acL_error(L, "matmul: sizes do not match: %s @ %s", acL_shape(a), acL_shape(b));
  int64_t shape[2] = {A.shape[0], B.shape[1]};
  ac_tensor *c = acL_new(L, AC_F32, 2, shape);
  if (ac_addmm(c, &A, &B, 1, 0)) return acL_kernel_error(L, "matmul");
  if (a->ndim == 1 && b->ndim == 1) {
    lua_pushnumber(L, ac_f32(c)[0]);
    return 1;
  }
  if (a->ndim == 1) ac_view_squeeze(c, 0);
  else if (b->ndim == 1) ac_view_squeeze(c, 1);
  return 1;
}

/* addmm(c, a, b [, alpha=1 [, beta=1]]) -> new tensor beta*c + alpha*a@b (c broadcasts) */
static int op_addmm(lua_State *L) {
  ac_tensor *c = acL_checkf32(L, 1, "addmm", "c");
  ac_tensor *a = acL_checkf32(L, 2, "addmm", "a"), *b = acL_checkf32(L, 3, "addmm", "b");
  float alpha = (float)luaL_optnumber(L, 4, 1), beta = (float)luaL_optnumber(L, 5, 1);
  if (a->ndim != 2 || b->ndim != 2) return acL_error(L, "addmm: expects 2-d a and b, got %s and %s", acL_shape(a), acL_shape(b));
  if (a->shape[1] != b->shape[0]) return acL_error(L, "addmm: sizes do not match: %s @ %s", acL_shape(a), acL_shape(b));
  int64_t shape[2] = {a->shape[0], b->shape[1]};
  ac_tensor cv = *c; /* borrowed view, not retained */
  if (ac_view_expand(&cv, 2, shape))
    return acL_error(L, "addmm: c %s does not broadcast to the product's shape [%lld, %lld]", acL_shape(c),
                      (long long)shape[0], (long long)shape[1]);
  ac_tensor *o = acL_new(L, AC_F32, 2, shape);
  if (ac_copy(o, &cv) || ac_addmm(o, a, b, alpha, beta)) return acL_kernel_error(L, "addmm");
  return 1;
}

/* t:addmm_(a, b [, alpha=1 [, beta=1]]) in place on t */
static int op_addmm_(lua_State *L) {
  ac_tensor *c = acL_checkf32(L, 1, "addmm_", "self");
  ac_tensor *a = acL_checkf32(L, 2, "addmm_", "a"), *b = acL_checkf32(L, 3, "addmm_", "b");
  float alpha = (float)luaL_optnumber(L, 4, 1), beta = (float)luaL_optnumber(L, 5, 1);
  if (ac_addmm(c, a, b, alpha, beta)) return acL_kernel_error(L, "addmm_");
  lua_settop(L, 1);
  return 1;
}

static int op_bmm(lua_State *L) {
  ac_tensor *a = acL_checkf32(L, 1, "bmm", "a"), *b = acL_checkf32(L, 2, "bmm", "b");
  if (a->ndim != 3 || b->ndim != 3) return acL_error(L, "bmm: expects 3-d tensors, got %s and %s", acL_shape(a), acL_shape(b));
  int64_t shape[3] = {a->shape[0], a->shape[1], b->shape[2]};
  ac_tensor *c = acL_new(L, AC_F32, 3, shape);
  if (ac_baddbmm(c, a, b, 1, 0)) return acL_kernel_error(L, "bmm");
  return 1;
}

static int op_dot(lua_State *L) {
  ac_tensor *a = acL_check(L, 1), *b = acL_check(L, 2);
  if (ac_numel(a) != ac_numel(b)) return acL_error(L, "dot: %s and %s have different element counts", acL_shape(a), acL_shape(b));
  double s = 0;
  int64_t n = ac_numel(a);
  for (int64_t i = 0; i < n; i++) s += ac_get_flat(a, i) * ac_get_flat(b, i);
  lua_pushnumber(L, s);
  return 1;
}

/* true when every element is finite (no NaN or Inf); integer tensors always are */
static int op_all_finite(lua_State *L) {
  ac_tensor *a = acL_check(L, 1);
  int ok = 1;
  if (a->dtype == AC_F32) {
    int64_t n = ac_numel(a);
    if (ac_is_contiguous(a)) {
      const float *p = ac_f32(a);
      float acc = 0;
      for (int64_t i = 0; i < n; i++) acc += p[i] * 0.0f; /* NaN or Inf turns the sum into NaN */
      ok = acc == 0;
    } else {
      for (int64_t i = 0; i < n && ok; i++) {
        double v = ac_get_flat(a, i);
        ok = v - v == 0;
      }
    }
  }
  lua_pushboolean(L, ok);
  return 1;
}

/* ===================================================================== */
/* registration                                                            */
/* ===================================================================== */

static const luaL_Reg both[] = {
  {"add", op_add}, {"sub", op_sub}, {"mul", op_mul}, {"div", op_div}, {"pow", op_pow}, {"maximum", op_maximum},
  {"minimum", op_minimum}, {"eq", op_eq}, {"ne", op_ne}, {"lt", op_lt}, {"le", op_le}, {"gt", op_gt}, {"ge", op_ge},
  {"neg", op_neg}, {"exp", op_exp}, {"log", op_log}, {"sqrt", op_sqrt}, {"abs", op_abs}, {"sign", op_sign},
  {"sigmoid", op_sigmoid}, {"tanh", op_tanh}, {"floor", op_floor}, {"ceil", op_ceil}, {"round", op_round},
  {"relu", op_relu}, {"square", op_square}, {"rsqrt", op_rsqrt}, {"log1p", op_log1p}, {"reciprocal", op_reciprocal},
  {"clamp", op_clamp}, {"sum", op_sum}, {"mean", op_mean}, {"prod", op_prod}, {"max", op_max}, {"min", op_min},
  {"argmax", op_argmax}, {"argmin", op_argmin}, {"var", op_var}, {"std", op_std}, {"norm", op_norm},
  {"all_finite", op_all_finite}, {"matmul", op_matmul}, {"mm", op_matmul}, {"bmm", op_bmm}, {"dot", op_dot}, {NULL, NULL}};

static const luaL_Reg methods_only[] = {
  {"add_", op_add_}, {"sub_", op_sub_}, {"mul_", op_mul_}, {"div_", op_div_}, {"pow_", op_pow_},
  {"maximum_", op_maximum_}, {"minimum_", op_minimum_}, {"neg_", op_neg_}, {"exp_", op_exp_}, {"log_", op_log_},
  {"sqrt_", op_sqrt_}, {"abs_", op_abs_}, {"sign_", op_sign_}, {"sigmoid_", op_sigmoid_}, {"tanh_", op_tanh_},
  {"floor_", op_floor_}, {"ceil_", op_ceil_}, {"round_", op_round_}, {"relu_", op_relu_}, {"square_", op_square_},
  {"rsqrt_", op_rsqrt_}, {"log1p_", op_log1p_}, {"reciprocal_", op_reciprocal_}, {"clamp_", op_clamp_},
  {"addmm_", op_addmm_}, {NULL, NULL}};

int ac_open_ops(lua_State *L) {
  luaL_newlib(L, both);
  lua_pushcfunction(L, op_addmm);
  lua_setfield(L, -2, "addmm");
  lua_getfield(L, LUA_REGISTRYINDEX, AC_TENSOR_METHODS);
  luaL_setfuncs(L, both, 0);
  luaL_setfuncs(L, methods_only, 0);
  lua_pop(L, 1);
  luaL_getmetatable(L, AC_TENSOR_MT);
  lua_pushcfunction(L, op_add);
  lua_setfield(L, -2, "__add");
  lua_pushcfunction(L, op_sub);
  lua_setfield(L, -2, "__sub");
  lua_pushcfunction(L, op_mul);
  lua_setfield(L, -2, "__mul");
  lua_pushcfunction(L, op_div);
  lua_setfield(L, -2, "__div");
  lua_pushcfunction(L, op_pow);
  lua_setfield(L, -2, "__pow");
  lua_pushcfunction(L, op_unm);
  lua_setfield(L, -2, "__unm");
  lua_pop(L, 1);
  return 1;
}
