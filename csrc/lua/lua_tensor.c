/*
 * lua_tensor.c - the adcorre.Tensor userdata: constructors, views, copies,
 * conversion to and from Lua tables, random fills and the
 * metamethods (__index, __newindex, __len, __tostring, __gc, __close).
 * Element-wise arithmetic and reductions live in lua_ops.c; the printed
 * form is core/tensor_print.c's.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_util.h"
#include "core/tensor_print.h"
#include "core/parallel.h"
#include "core/random.h"

/* ===================================================================== */
/* helpers                                                                 */
/* ===================================================================== */

static int parse_dtype(lua_State *L, const char *s, ac_dtype *d) {
  if (!strcmp(s, "float32") || !strcmp(s, "float")) *d = AC_F32;
  else if (!strcmp(s, "int64") || !strcmp(s, "long")) *d = AC_I64;
  else if (!strcmp(s, "uint8") || !strcmp(s, "byte")) *d = AC_U8;
  else return acL_error(L, "unknown dtype '%s' (float32, int64 or uint8)", s);
  return 0;
}

/* shape from args starting at idx; a trailing string is a dtype */
static int shape_and_dtype(lua_State *L, int idx, int64_t *shape, ac_dtype *dt) {
  *dt = AC_F32;
  int top = lua_gettop(L);
  if (top >= idx && lua_type(L, top) == LUA_TSTRING) parse_dtype(L, lua_tostring(L, top), dt);
  int n = acL_checkshape(L, idx, shape);
  for (int i = 0; i < n; i++)
    if (shape[i] < 0) acL_error(L, "size %d is negative (%lld)", i + 1, (long long)shape[i]);
  return n;
}

/* 1-based Lua dim (negative counts from the end) -> 0-based; error if out of range */
static int check_dim(lua_State *L, int arg, const ac_tensor *t, int allow_end) {
  lua_Integer d = luaL_checkinteger(L, arg);
  int n = t->ndim + (allow_end ? 1 : 0);
  if (d < 0) d += n + 1;
  if (d < 1 || d > n)
    acL_error(L, "dimension %lld out of range for a %d-d tensor %s", (long long)luaL_checkinteger(L, arg), t->ndim,
              acL_shape(t));
  return (int)d - 1;
}

static void check_kernel(lua_State *L, const char *fname, int rc) {
  if (rc) acL_kernel_error(L, fname);
}

/* ===================================================================== */
/* constructors                                                            */
/* ===================================================================== */

/* Pushes a new zero tensor of the shape (and dtype, unless float32 is
 * forced) given by the arguments: (d1, d2, ... [, dtype]) or ({d1, ...} [, dtype]). */
static ac_tensor *push_new(lua_State *L, int force_f32) {
  int64_t shape[AC_MAXDIM];
  ac_dtype dt;
  int n = shape_and_dtype(L, 1, shape, &dt);
  return acL_new(L, force_f32 ? AC_F32 : dt, n, shape);
}

static int t_zeros(lua_State *L) {
  push_new(L, 0);
  return 1;
}

static int t_ones(lua_State *L) {
  ac_fill(push_new(L, 0), 1);
  return 1;
}

/* full(shape_table, value [, dtype]) */
static int t_full(lua_State *L) {
  int64_t shape[AC_MAXDIM];
  luaL_checktype(L, 1, LUA_TTABLE);
  double v = luaL_checknumber(L, 2);
  ac_dtype dt = AC_F32;
  if (!lua_isnoneornil(L, 3)) parse_dtype(L, luaL_checkstring(L, 3), &dt);
  int n = acL_checkshape(L, 1, shape);
  ac_tensor *t = acL_new(L, dt, n, shape);
  ac_fill(t, v);
  return 1;
}

static void fill_uniform(ac_tensor *t, double a, double b) {
  ac_rng *r = ac_global_rng();
  int64_t n = ac_numel(t);
  if (t->dtype == AC_F32 && ac_is_contiguous(t)) {
    float *p = ac_f32(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(a + (b - a) * ac_rng_uniform(r));
  } else {
    for (int64_t i = 0; i < n; i++) ac_set_flat(t, i, a + (b - a) * ac_rng_uniform(r));
  }
}

static void fill_normal(ac_tensor *t, double mean, double std) {
  ac_rng *r = ac_global_rng();
  int64_t n = ac_numel(t);
  for (int64_t i = 0; i < n; i++) ac_set_flat(t, i, mean + std * ac_rng_normal(r));
}

static int t_rand(lua_State *L) {
  fill_uniform(push_new(L, 1), 0, 1);
  return 1;
}

static int t_randn(lua_State *L) {
  fill_normal(push_new(L, 1), 0, 1);
  return 1;
}

static int t_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "randperm: n must be >= 0");
  int64_t shape[1] = {n};
  ac_tensor *t = acL_new(L, AC_I64, 1, shape);
  int64_t *p = ac_i64(t);
  for (int64_t i = 0; i < n; i++) p[i] = i + 1;
  ac_rng *r = ac_global_rng();
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)ac_rng_below(r, (uint64_t)i + 1);
    int64_t x = p[i];
    p[i] = p[j];
    p[j] = x;
  }
  return 1;
}

/* arange(stop) | arange(start, stop [, step]) : [start, stop) like numpy; dtype int64 when all integers */
static int t_arange(lua_State *L) {
  double start = 0, stop, step = 1;
  int allint;
  if (lua_gettop(L) == 1 || lua_isnil(L, 2)) {
    stop = luaL_checknumber(L, 1);
    allint = lua_isinteger(L, 1);
  } else {
    start = luaL_checknumber(L, 1);
    stop = luaL_checknumber(L, 2);
    if (!lua_isnoneornil(L, 3)) step = luaL_checknumber(L, 3);
    allint = lua_isinteger(L, 1) && lua_isinteger(L, 2) && (lua_isnoneornil(L, 3) || lua_isinteger(L, 3));
  }
  if (step == 0) return acL_error(L, "arange: step must not be zero");
  double cnt = ceil((stop - start) / step);
  if (cnt < 0) cnt = 0;
  if (cnt > 1e12) return acL_error(L, "arange: too many elements");
  int64_t shape[1] = {(int64_t)cnt};
  ac_tensor *t = acL_new(L, allint ? AC_I64 : AC_F32, 1, shape);
  for (int64_t i = 0; i < shape[0]; i++) ac_set_flat(t, i, start + step * (double)i);
  return 1;
}

static int t_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), m = luaL_optinteger(L, 2, n);
  luaL_argcheck(L, n >= 0 && m >= 0, 1, "eye: sizes must be >= 0");
  int64_t shape[2] = {n, m};
  ac_tensor *t = acL_new(L, AC_F32, 2, shape);
  for (int64_t i = 0; i < n && i < m; i++) ac_f32(t)[i * m + i] = 1;
  return 1;
}

/* --- from nested Lua tables -------------------------------------------- */

static int table_shape(lua_State *L, int idx, int depth, int64_t *shape, int *ndim) {
  if (depth >= AC_MAXDIM) return acL_error(L, "tensor: table nested deeper than %d", AC_MAXDIM);
  int64_t n = (int64_t)luaL_len(L, idx);
  shape[depth] = n;
  *ndim = depth + 1;
  if (n > 0) {
    lua_geti(L, idx, 1);
    if (lua_istable(L, -1)) table_shape(L, lua_gettop(L), depth + 1, shape, ndim);
    else if (!lua_isnumber(L, -1) && !lua_isboolean(L, -1))
      acL_error(L, "tensor: element 1 at depth %d is a %s, expected a number or a table", depth + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return 0;
}

static void table_fill(lua_State *L, int idx, int depth, const int64_t *shape, int ndim, ac_tensor *t, int64_t *pos) {
  int64_t n = (int64_t)luaL_len(L, idx);
  if (n != shape[depth]) acL_error(L, "tensor: ragged table: a row at depth %d has %lld entries, expected %lld", depth + 1, (long long)n, (long long)shape[depth]);
  for (int64_t i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    if (depth + 1 < ndim) {
      if (!lua_istable(L, -1)) acL_error(L, "tensor: ragged table: element %lld at depth %d is not a table", (long long)i, depth + 1);
      table_fill(L, lua_gettop(L), depth + 1, shape, ndim, t, pos);
    } else {
      double v;
      if (t->dtype == AC_I64 && lua_isinteger(L, -1)) { /* exact for all 64-bit values */
        ac_i64(t)[(*pos)++] = (int64_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        continue;
      }
      if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
      else {
        int isnum;
        v = lua_tonumberx(L, -1, &isnum);
        if (!isnum) acL_error(L, "tensor: element %lld at depth %d is a %s, expected a number", (long long)i, depth + 1, luaL_typename(L, -1));
      }
      ac_set_flat(t, (*pos)++, v);
    }
    lua_pop(L, 1);
  }
}

/* tensor(table | number [, dtype]) */
static int t_tensor(lua_State *L) {
  ac_dtype dt = AC_F32;
  if (!lua_isnoneornil(L, 2)) parse_dtype(L, luaL_checkstring(L, 2), &dt);
  if (lua_type(L, 1) == LUA_TNUMBER) {
    ac_tensor *t = acL_new(L, dt, 0, NULL);
    ac_set_flat(t, 0, lua_tonumber(L, 1));
    return 1;
  }
  if (acL_test(L, 1)) {
    ac_tensor *s = acL_check(L, 1);
    ac_tensor *t = acL_new(L, lua_isnoneornil(L, 2) ? s->dtype : dt, s->ndim, s->shape);
    check_kernel(L, "tensor", ac_copy(t, s));
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t shape[AC_MAXDIM];
  int ndim = 0;
  table_shape(L, 1, 0, shape, &ndim);
  ac_tensor *t = acL_new(L, dt, ndim, shape);
  int64_t pos = 0;
  table_fill(L, 1, 0, shape, ndim, t, &pos);
  return 1;
}

/* ===================================================================== */
/* queries                                                                 */
/* ===================================================================== */

static int m_shape(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_size(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  if (lua_isnoneornil(L, 2)) return m_shape(L);
  int d = check_dim(L, 2, t, 0);
  lua_pushinteger(L, t->shape[d]);
  return 1;
}

static int m_stride(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushinteger(L, t->stride[check_dim(L, 2, t, 0)]);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->stride[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_dim(lua_State *L) {
  lua_pushinteger(L, acL_check(L, 1)->ndim);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, ac_numel(acL_check(L, 1)));
  return 1;
}

static int m_dtype(lua_State *L) {
  lua_pushstring(L, ac_dtype_name(acL_check(L, 1)->dtype));
  return 1;
}

static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, ac_is_contiguous(acL_check(L, 1)));
  return 1;
}

/* true when both views share one storage */
static int m_is_same_storage(lua_State *L) {
  ac_tensor *a = acL_check(L, 1), *b = acL_check(L, 2);
  lua_pushboolean(L, a->storage == b->storage);
  return 1;
}

static int m_storage_offset(lua_State *L) {
  lua_pushinteger(L, acL_check(L, 1)->offset + 1);
  return 1;
}

/* element offset of flat row-major index i of a view */
static int64_t flat_offset(const ac_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return off;
}

/* pushes the element at element offset o from the view's first element */
static void push_at(lua_State *L, const ac_tensor *t, int64_t o) {
  switch (t->dtype) {
  case AC_F32: lua_pushnumber(L, ((const float *)ac_data(t))[o]); break;
  case AC_I64: lua_pushinteger(L, ((const int64_t *)ac_data(t))[o]); break;
  case AC_U8: lua_pushinteger(L, ((const uint8_t *)ac_data(t))[o]); break;
  }
}

static void push_element(lua_State *L, const ac_tensor *t, int64_t i) { push_at(L, t, flat_offset(t, i)); }

static int m_item(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  if (ac_numel(t) != 1)
    return acL_error(L, "item: tensor %s has %lld elements, item() needs exactly one", acL_shape(t), (long long)ac_numel(t));
  push_element(L, t, 0);
  return 1;
}

static void totable_rec(lua_State *L, const ac_tensor *t, int dim, int64_t off) {
  int64_t n = t->shape[dim];
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    int64_t o = off + i * t->stride[dim];
    if (dim == t->ndim - 1) push_at(L, t, o);
    else totable_rec(L, t, dim + 1, o);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_totable(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  if (t->ndim == 0) {
    push_element(L, t, 0);
    return 1;
  }
  luaL_checkstack(L, t->ndim + 4, "totable");
  totable_rec(L, t, 0, 0);
  return 1;
}

/* ===================================================================== */
/* views                                                                   */
/* ===================================================================== */

/* Pushes t viewed with a new shape; 0 (nothing pushed, reason in ac_error())
 * when the sizes or the layout do not allow a view. */
static int push_reshaped_view(lua_State *L, ac_tensor *t, int n, const int64_t *shape) {
  ac_tensor v;
  ac_tensor_view_of(&v, t);
  if (ac_view_reshape(&v, n, shape)) {
    ac_tensor_release(&v);
    return 0;
  }
  acL_push_move(L, &v);
  return 1;
}

static int m_view(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int64_t shape[AC_MAXDIM];
  int n = acL_checkshape(L, 2, shape);
  if (!push_reshaped_view(L, t, n, shape)) return acL_kernel_error(L, "view");
  return 1;
}

/* reshape: a view when the layout allows, otherwise a copy */
static int m_reshape(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int64_t shape[AC_MAXDIM];
  int n = acL_checkshape(L, 2, shape);
  if (push_reshaped_view(L, t, n, shape)) return 1;
  ac_tensor *c = acL_new(L, t->dtype, t->ndim, t->shape);
  check_kernel(L, "reshape", ac_copy(c, t));
  check_kernel(L, "reshape", ac_view_reshape(c, n, shape));
  return 1;
}

static int m_transpose(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int d0, d1;
  if (lua_isnoneornil(L, 2)) {
    if (t->ndim != 2) return acL_error(L, "t(): expects a 2-d tensor, got %s", acL_shape(t));
    d0 = 0, d1 = 1;
  } else {
    d0 = check_dim(L, 2, t, 0);
    d1 = check_dim(L, 3, t, 0);
  }
  ac_tensor *v = acL_push_view(L, t);
  ac_view_transpose(v, d0, d1);
  return 1;
}

static int m_permute(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int64_t p64[AC_MAXDIM];
  int n = acL_checkshape(L, 2, p64);
  if (n != t->ndim) return acL_error(L, "permute: %d dimensions given for a %d-d tensor", n, t->ndim);
  int perm[AC_MAXDIM];
  for (int i = 0; i < n; i++)
    perm[i] = (int)acL_checkrange(L, p64[i], "permute", "argument", "dims", ACL_INT_MIN + 1, ACL_INT_MAX) - 1;
  ac_tensor *v = acL_push_view(L, t);
  check_kernel(L, "permute", ac_view_permute(v, perm));
  return 1;
}

static int m_narrow(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int d = check_dim(L, 2, t, 0);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  ac_tensor *v = acL_push_view(L, t);
  check_kernel(L, "narrow", ac_view_narrow(v, d, start - 1, len));
  return 1;
}

static int m_select(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int d = check_dim(L, 2, t, 0);
  lua_Integer i = luaL_checkinteger(L, 3);
  if (i < 0) i += t->shape[d] + 1;
  ac_tensor *v = acL_push_view(L, t);
  check_kernel(L, "select", ac_view_select(v, d, i - 1));
  return 1;
}

static int m_expand(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int64_t shape[AC_MAXDIM];
  int n;
  ac_tensor *o = acL_test(L, 2);
  if (o) {
    n = o->ndim;
    memcpy(shape, o->shape, sizeof shape);
  } else {
    n = acL_checkshape(L, 2, shape);
  }
  ac_tensor *v = acL_push_view(L, t);
  check_kernel(L, "expand", ac_view_expand(v, n, shape));
  return 1;
}

static int m_unsqueeze(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int d = check_dim(L, 2, t, 1);
  ac_tensor *v = acL_push_view(L, t);
  check_kernel(L, "unsqueeze", ac_view_unsqueeze(v, d));
  return 1;
}

static int m_squeeze(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? -1 : check_dim(L, 2, t, 0);
  ac_tensor *v = acL_push_view(L, t);
  check_kernel(L, "squeeze", ac_view_squeeze(v, d));
  return 1;
}

/* ===================================================================== */
/* data movement                                                           */
/* ===================================================================== */

static int m_contiguous(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  if (ac_is_contiguous(t)) {
    lua_settop(L, 1);
    return 1;
  }
  ac_tensor *c = acL_new(L, t->dtype, t->ndim, t->shape);
  check_kernel(L, "contiguous", ac_copy(c, t));
  return 1;
}

static int m_clone(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  ac_tensor *c = acL_new(L, t->dtype, t->ndim, t->shape);
  check_kernel(L, "clone", ac_copy(c, t));
  return 1;
}

static int m_copy(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  ac_tensor *s = acL_test(L, 2);
  if (!s) return acL_error(L, "copy: argument #1 must be a tensor, got %s", luaL_typename(L, 2));
  acL_check(L, 2);
  check_kernel(L, "copy", ac_copy(t, s));
  lua_settop(L, 1);
  return 1;
}

static int m_fill(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  ac_fill(t, luaL_checknumber(L, 2));
  lua_settop(L, 1);
  return 1;
}

static int m_zero(lua_State *L) {
  ac_fill(acL_check(L, 1), 0);
  lua_settop(L, 1);
  return 1;
}

static int to_type(lua_State *L, ac_dtype d) {
  ac_tensor *t = acL_check(L, 1);
  if (t->dtype == d) {
    lua_settop(L, 1);
    return 1;
  }
  ac_tensor *c = acL_new(L, d, t->ndim, t->shape);
  check_kernel(L, "type", ac_copy(c, t));
  return 1;
}

static int m_float(lua_State *L) { return to_type(L, AC_F32); }
static int m_long(lua_State *L) { return to_type(L, AC_I64); }
static int m_byte(lua_State *L) { return to_type(L, AC_U8); }

static int m_type(lua_State *L) {
  acL_check(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_pushstring(L, ac_dtype_name(acL_check(L, 1)->dtype));
    return 1;
  }
  ac_dtype d;
  parse_dtype(L, luaL_checkstring(L, 2), &d);
  lua_settop(L, 1);
  return to_type(L, d);
}

static int m_uniform_(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  fill_uniform(t, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1));
  lua_settop(L, 1);
  return 1;
}

static int m_normal_(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  fill_normal(t, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1));
  lua_settop(L, 1);
  return 1;
}

static int m_bernoulli_(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  luaL_argcheck(L, p >= 0 && p <= 1, 2, "bernoulli_: p must be in [0, 1]");
  ac_rng *r = ac_global_rng();
  int64_t n = ac_numel(t);
  for (int64_t i = 0; i < n; i++) ac_set_flat(t, i, ac_rng_uniform(r) < p ? 1 : 0);
  lua_settop(L, 1);
  return 1;
}

/* ===================================================================== */
/* printing                                                                */
/* ===================================================================== */

/* __tostring: the text of core/tensor_print.c, written straight into a Lua
 * buffer of its exact length. */
static int m_tostring(lua_State *L) {
  ac_tensor *t = luaL_checkudata(L, 1, AC_TENSOR_MT);
  size_t n = ac_tensor_format(t, NULL, 0);
  luaL_Buffer b;
  char *s = luaL_buffinitsize(L, &b, n + 1);
  ac_tensor_format(t, s, n + 1);
  luaL_pushresultsize(&b, n);
  return 1;
}

/* ===================================================================== */
/* metamethods                                                             */
/* ===================================================================== */

static int mm_gc(lua_State *L) {
  ac_tensor *t = luaL_checkudata(L, 1, AC_TENSOR_MT);
  ac_tensor_release(t);
  return 0;
}

static int mm_len(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
  return 1;
}

/* t[i] (1-based, negative from the end): a number for 1-d tensors, else a view */
static int mm_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    ac_tensor *t = acL_check(L, 1);
    int isint;
    lua_Integer i = lua_tointegerx(L, 2, &isint);
    if (!isint) return acL_error(L, "tensor index %s is not an integer", lua_tostring(L, 2));
    if (t->ndim == 0) return acL_error(L, "cannot index a 0-d tensor; use :item()");
    if (i < 0) i += t->shape[0] + 1;
    if (i < 1 || i > t->shape[0])
      return acL_error(L, "index %lld is out of range for dimension 1 of size %lld (tensor %s)", (long long)lua_tointeger(L, 2),
                        (long long)t->shape[0], acL_shape(t));
    if (t->ndim == 1) {
      push_element(L, t, i - 1);
      return 1;
    }
    ac_tensor *v = acL_push_view(L, t);
    ac_view_select(v, 0, i - 1);
    return 1;
  }
  /* methods table is the first upvalue */
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int mm_newindex(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int isint;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (!isint) return acL_error(L, "tensor: cannot assign field '%s' (only integer indices)", lua_tostring(L, 2));
  if (t->ndim == 0) return acL_error(L, "cannot index a 0-d tensor");
  if (i < 0) i += t->shape[0] + 1;
  if (i < 1 || i > t->shape[0])
    return acL_error(L, "index %lld is out of range for dimension 1 of size %lld", (long long)i, (long long)t->shape[0]);
  ac_tensor v;
  ac_tensor_view_of(&v, t);
  ac_view_select(&v, 0, i - 1);
  int rc;
  ac_tensor *src = acL_test(L, 3);
  if (src) rc = ac_copy(&v, src);
  else if (lua_type(L, 3) == LUA_TNUMBER) rc = ac_fill(&v, lua_tonumber(L, 3));
  else {
    ac_tensor_release(&v);
    return acL_error(L, "tensor: can only assign a number or a tensor, got %s", luaL_typename(L, 3));
  }
  ac_tensor_release(&v);
  if (rc) return acL_kernel_error(L, "assign");
  return 0;
}

/* ===================================================================== */
/* global state: seed, threads, clock, generator state                    */
/* ===================================================================== */

static int l_manual_seed(lua_State *L) {
  ac_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

static int l_get_rng_state(lua_State *L) {
  int64_t shape[1] = {4};
  ac_tensor *t = acL_new(L, AC_I64, 1, shape);
  memcpy(ac_i64(t), ac_global_rng()->s, sizeof(uint64_t) * 4);
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  if (t->dtype != AC_I64 || ac_numel(t) != 4 || !ac_is_contiguous(t))
    return acL_error(L, "set_rng_state: expects the int64 tensor of 4 elements from get_rng_state(), got %s %s",
                      ac_dtype_name(t->dtype), acL_shape(t));
  memcpy(ac_global_rng()->s, ac_i64(t), sizeof(uint64_t) * 4);
  return 0;
}

static int l_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 64, 1, "set_num_threads: n must be between 1 and 64");
  ac_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, ac_get_num_threads());
  return 1;
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, ac_now());
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, acL_test(L, 1) != NULL);
  return 1;
}

/* ===================================================================== */
/* registration                                                            */
/* ===================================================================== */

static const luaL_Reg methods[] = {
  {"shape", m_shape}, {"size", m_size}, {"stride", m_stride}, {"dim", m_dim}, {"nDimension", m_dim},
  {"numel", m_numel}, {"nelement", m_numel}, {"dtype", m_dtype}, {"is_contiguous", m_is_contiguous},
  {"isContiguous", m_is_contiguous}, {"is_same_storage", m_is_same_storage}, {"storage_offset", m_storage_offset},
  {"item", m_item}, {"totable", m_totable},
  {"view", m_view}, {"reshape", m_reshape}, {"transpose", m_transpose}, {"t", m_transpose}, {"permute", m_permute},
  {"narrow", m_narrow}, {"select", m_select}, {"expand", m_expand}, {"expand_as", m_expand},
  {"unsqueeze", m_unsqueeze}, {"squeeze", m_squeeze},
  {"contiguous", m_contiguous}, {"clone", m_clone}, {"copy", m_copy}, {"fill", m_fill}, {"fill_", m_fill},
  {"zero", m_zero}, {"zero_", m_zero}, {"float", m_float}, {"long", m_long}, {"byte", m_byte}, {"type", m_type},
  {"uniform_", m_uniform_}, {"normal_", m_normal_}, {"bernoulli_", m_bernoulli_},
  {NULL, NULL}};

static const luaL_Reg functions[] = {
  {"zeros", t_zeros}, {"ones", t_ones}, {"empty", t_zeros}, {"full", t_full}, {"rand", t_rand}, {"randn", t_randn},
  {"randperm", t_randperm}, {"arange", t_arange}, {"eye", t_eye}, {"tensor", t_tensor},
  {"manual_seed", l_manual_seed}, {"get_rng_state", l_get_rng_state}, {"set_rng_state", l_set_rng_state},
  {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads}, {"now", l_now},
  {"is_tensor", l_is_tensor}, {NULL, NULL}};

int ac_open_tensor(lua_State *L) {
  luaL_newlib(L, functions);                     /* area table */
  luaL_newmetatable(L, AC_TENSOR_MT);           /* mt */
  acL_register_mt(L);
  lua_newtable(L);                               /* mt methods */
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "methods");                /* tensor.methods = methods */
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, AC_TENSOR_METHODS);
  lua_pushcclosure(L, mm_index, 1);              /* mt __index */
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, mm_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, mm_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, mm_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, m_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, mm_len);
  lua_setfield(L, -2, "__len");
  lua_pushstring(L, "adcorre.Tensor");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "mt");                     /* tensor.mt = mt */
  return 1;
}
