/*
 * lua_util.c - helpers shared by the bindings: tensor userdata creation and
 * checking, shape parsing, kernel-error conversion (see lua_util.h).
 */
#include "lua/lua_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int acL_error(lua_State *L, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  luaL_where(L, 1);
  lua_pushstring(L, buf);
  lua_concat(L, 2);
  lua_error(L); /* longjmps */
  __builtin_unreachable();
}

/* The tensor metatable is also kept in the registry under this address:
 * every binding checks its tensor arguments, and luaL_testudata's lookup by
 * name (a string made and compared each time) was ~2-3 % of a batch-1 forward. */
static const char tensor_mt_key = 0;

void acL_register_mt(lua_State *L) {
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
}

ac_tensor *acL_test(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
  int ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return ok ? lua_touserdata(L, idx) : NULL;
}

ac_tensor *acL_check(lua_State *L, int idx) {
  ac_tensor *t = acL_test(L, idx);
  if (!t) luaL_typeerror(L, idx, AC_TENSOR_MT);
  if (!t->storage) luaL_argerror(L, idx, "tensor has been closed");
  return t;
}

ac_tensor *acL_checkf32(lua_State *L, int idx, const char *fname, const char *argname) {
  const char *sep = fname ? ": " : "";
  if (!fname) fname = "";
  ac_tensor *t = acL_test(L, idx);
  if (!t) {
    acL_error(L, "%s%sargument '%s' must be a tensor, got %s", fname, sep, argname, luaL_typename(L, idx));
    return NULL;
  }
  if (!t->storage) acL_error(L, "%s%sargument '%s' is a closed tensor", fname, sep, argname);
  if (t->dtype != AC_F32)
    acL_error(L, "%s%sargument '%s' must be float32, got %s", fname, sep, argname, ac_dtype_name(t->dtype));
  return t;
}

static ac_tensor *push_empty(lua_State *L) {
  ac_tensor *t = lua_newuserdatauv(L, sizeof(ac_tensor), 0);
  memset(t, 0, sizeof *t);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
  lua_setmetatable(L, -2);
  return t;
}

ac_tensor *acL_new(lua_State *L, ac_dtype dtype, int ndim, const int64_t *shape) {
  ac_tensor *t = push_empty(L);
  if (ac_tensor_new(t, dtype, ndim, shape) != 0) acL_error(L, "%s", ac_error());
  return t;
}

ac_tensor *acL_push_view(lua_State *L, const ac_tensor *src) {
  ac_tensor *t = push_empty(L);
  ac_tensor_view_of(t, src);
  return t;
}

ac_tensor *acL_push_move(lua_State *L, ac_tensor *src) {
  ac_tensor *t = push_empty(L);
  *t = *src;
  src->storage = NULL;
  return t;
}

ac_tensor *acL_contig(lua_State *L, int idx) {
  ac_tensor *t = acL_check(L, idx);
  if (ac_is_contiguous(t)) return t;
  ac_tensor *c = acL_new(L, t->dtype, t->ndim, t->shape);
  if (ac_copy(c, t)) acL_error(L, "%s", ac_error());
  return c;
}

int acL_kernel_error(lua_State *L, const char *fname) {
  if (!fname) return acL_error(L, "%s", ac_error());
  return acL_error(L, "%s: %s", fname, ac_error());
}

const char *acL_shape(const ac_tensor *t) {
  static _Thread_local char bufs[4][160];
  static _Thread_local int k = 0;
  char *b = bufs[k++ & 3];
  return ac_shape_str(t, b, 160);
}

lua_Integer acL_checkrange(lua_State *L, lua_Integer v, const char *fname, const char *kind, const char *name,
                           lua_Integer lo, lua_Integer hi) {
  if (v < lo || v > hi)
    acL_error(L, "%s%s%s '%s' = %lld is out of range (%lld..%lld)", fname ? fname : "", fname ? ": " : "", kind, name,
              (long long)v, (long long)lo, (long long)hi);
  return v;
}

lua_Integer acL_checkint(lua_State *L, int idx, const char *fname, const char *argname, lua_Integer lo,
                         lua_Integer hi) {
  return acL_checkrange(L, luaL_checkinteger(L, idx), fname, "argument", argname, lo, hi);
}

lua_Integer acL_optint(lua_State *L, int idx, lua_Integer def, const char *fname, const char *argname,
                       lua_Integer lo, lua_Integer hi) {
  if (lua_isnoneornil(L, idx)) return def;
  return acL_checkint(L, idx, fname, argname, lo, hi);
}

static int64_t check_dimsize(lua_State *L, int idx) {
  int isnum = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isnum);
  if (!isnum) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      acL_error(L, "size %s is not an integer", lua_tostring(L, idx));
    acL_error(L, "expected a size (integer), got %s", luaL_typename(L, idx));
  }
  return (int64_t)v;
}

int acL_checkshape(lua_State *L, int idx, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, idx)) {
    n = (int)acL_checkrange(L, luaL_len(L, idx), NULL, "length of", "shape", 0, ACL_INT_MAX);
    if (n > AC_MAXDIM) acL_error(L, "a tensor has at most %d dimensions, got %d", AC_MAXDIM, n);
    for (int i = 0; i < n; i++) {
      lua_geti(L, idx, i + 1);
      shape[i] = check_dimsize(L, -1);
      lua_pop(L, 1);
    }
    return n;
  }
  int top = lua_gettop(L);
  for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
    if (n >= AC_MAXDIM) acL_error(L, "a tensor has at most %d dimensions", AC_MAXDIM);
    shape[n++] = check_dimsize(L, i);
  }
  return n;
}
