/*
 * lua_nn.c - thin bindings of the layer kernels (csrc/nn.h) for the Lua
 * modules in lua/adcorre/nn/. Every function takes its inputs, its
 * preallocated outputs and scratch tensors (owned by the Lua module, reused
 * between calls) and checks dtypes, contiguity and shapes before any work.
 * The checks here make sure no call can reach a kernel with inconsistent
 * arguments; their messages name the argument and the shapes but no
 * function, because the Lua module that calls (Module:_call) adds its own:
 * "Conv2d:forward: ...". Also: buffer (grow-only scratch tensors), set (make
 * a tensor a view into another one's storage, for getParameters) and the
 * arena pool, which the modules call directly (Lua argument errors).
 */
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "lua/lua_util.h"
#include "core/arena.h"
#include "nn/nn.h"
#include "cpu/cpu.h"
#include "core/random.h"

/* ======================================================================
 * argument helpers
 * ====================================================================== */

/* A float32 input; a contiguous copy is pushed when needed. */
static ac_tensor *in_f32(lua_State *L, int idx, const char *arg) {
  acL_checkf32(L, idx, NULL, arg);
  return acL_contig(L, idx);
}

/* A float32 input or NULL for nil/none. */
static ac_tensor *opt_in_f32(lua_State *L, int idx, const char *arg) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return in_f32(L, idx, arg);
}

/* A contiguous float32 output (written in place). */
static ac_tensor *out_f32(lua_State *L, int idx, const char *arg) {
  ac_tensor *t = acL_checkf32(L, idx, NULL, arg);
  if (!ac_is_contiguous(t)) acL_error(L, "output '%s' must be contiguous", arg);
  return t;
}

static ac_tensor *opt_out_f32(lua_State *L, int idx, const char *arg) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return out_f32(L, idx, arg);
}

static ac_tensor *out_i64(lua_State *L, int idx, const char *arg) {
  ac_tensor *t = acL_check(L, idx);
  if (t->dtype != AC_I64)
    acL_error(L, "argument '%s' must be int64, got %s", arg, ac_dtype_name(t->dtype));
  if (!ac_is_contiguous(t)) acL_error(L, "argument '%s' must be contiguous", arg);
  return t;
}

static void need_ndim(lua_State *L, const ac_tensor *t, int ndim, const char *arg) {
  if (t->ndim != ndim)
    acL_error(L, "'%s' must have %d dimensions, got %s", arg, ndim, acL_shape(t));
}

static void need_numel(lua_State *L, const ac_tensor *t, int64_t n,
                       const char *arg) {
  if (ac_numel(t) != n)
    acL_error(L, "'%s' %s must have %lld elements", arg, acL_shape(t), (long long)n);
}

static void need_same(lua_State *L, const ac_tensor *a, const ac_tensor *b,
                      const char *an, const char *bn) {
  if (!ac_same_shape(a, b))
    acL_error(L, "'%s' %s and '%s' %s must have the same shape", an, acL_shape(a), bn,
               acL_shape(b));
}

static int64_t check_int(lua_State *L, int idx, const char *arg) {
  int isnum = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isnum);
  if (!isnum) acL_error(L, "'%s' must be an integer", arg);
  return (int64_t)v;
}

static float tofloat(lua_State *L, int idx, const char *arg) {
  if (!lua_isnumber(L, idx)) acL_error(L, "'%s' must be a number", arg);
  return (float)lua_tonumber(L, idx);
}

static const float *fp(const ac_tensor *t) { return t ? ac_f32(t) : NULL; }
static float *fpw(const ac_tensor *t) { return t ? ac_f32(t) : NULL; }

/* ======================================================================
 * buffers and views
 * ====================================================================== */

/* A shape table at idx (acL_checkshape) whose sizes are all >= 0; returns
 * the number of dimensions and the element count in *numel (an argument
 * error when it overflows a byte count of 8-byte elements). */
static int shape_arg(lua_State *L, int idx, int64_t *shape, size_t *numel) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int ndim = acL_checkshape(L, idx, shape);
  size_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return luaL_argerror(L, idx, lua_pushfstring(L, "bad size at dimension %d", i + 1));
    if (shape[i] > 0 && n > (SIZE_MAX / 8) / (size_t)shape[i])
      return luaL_argerror(L, idx, "tensor of that shape is too large");
    n *= (size_t)shape[i];
  }
  *numel = n;
  return ndim;
}

/* buffer(t|nil, shape_table [, dtype]) -> tensor of that shape: t itself
 * when it already has it, else a view on t's storage when it is big enough,
 * else a new zero-filled tensor. Contents are unspecified on reuse. */
static int l_buffer(lua_State *L) {
  int64_t shape[AC_MAXDIM];
  size_t numel;
  int ndim = shape_arg(L, 2, shape, &numel);
  ac_dtype dt = AC_F32;
  const char *ds = luaL_optstring(L, 3, "float32");
  if (strcmp(ds, "int64") == 0) dt = AC_I64;
  else if (strcmp(ds, "uint8") == 0) dt = AC_U8;
  else if (strcmp(ds, "float32") != 0) return luaL_argerror(L, 3, lua_pushfstring(L, "unknown dtype '%s'", ds));
  ac_tensor *t = acL_test(L, 1);
  /* (a storage whose arena range was handed back is not reused) */
  if (t && t->storage && t->dtype == dt && !(t->storage->arena && !t->storage->arena_held)) {
    if (t->ndim == ndim && ac_is_contiguous(t)) {
      int same = 1;
      for (int i = 0; i < ndim; i++) same &= t->shape[i] == shape[i];
      if (same) {
        lua_pushvalue(L, 1);
        return 1;
      }
    }
    if (numel * ac_dtype_size(dt) <= t->storage->nbytes && numel > 0) {
      ac_tensor *v = acL_push_view(L, t);
      v->offset = 0;
      v->ndim = ndim;
      memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
      ac_contiguous_strides(ndim, shape, v->stride);
      return 1;
    }
  }
  acL_new(L, dt, ndim, shape);
  return 1;
}

/* pool_new(shape_table) -> a float32 tensor of that shape on a range of
 * the arena (arena.h), contents unspecified: the layers' outputs and input
 * gradients (Module.lua's pool). */
static int l_pool_new(lua_State *L) {
  int64_t shape[AC_MAXDIM];
  size_t numel;
  int ndim = shape_arg(L, 1, shape, &numel);
  ac_tensor empty;
  memset(&empty, 0, sizeof empty);
  ac_tensor *t = acL_push_move(L, &empty); /* the userdata first: a Lua error leaks nothing */
  ac_storage *st = ac_storage_new_arena(numel * sizeof(float));
  if (!st) return acL_error(L, "pool_new: %s", ac_error());
  t->storage = st;
  t->dtype = AC_F32;
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  ac_contiguous_strides(ndim, shape, t->stride);
  return 1;
}

/* pool_release(t): t's arena range goes back to the arena now (views of
 * t's storage must not be read or written afterwards); false when t's
 * storage is not an arena range that is still held. */
static int l_pool_release(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  int held = t->storage->arena && t->storage->arena_held;
  ac_storage_arena_release(t->storage);
  lua_pushboolean(L, held);
  return 1;
}

/* arena_stats() -> bytes mapped, bytes in ranges handed out */
static int l_arena_stats(lua_State *L) {
  size_t r, u;
  ac_arena_stats(&r, &u);
  lua_pushinteger(L, (lua_Integer)r);
  lua_pushinteger(L, (lua_Integer)u);
  return 2;
}

/* arena_trim() -> bytes given back to the system */
static int l_arena_trim(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ac_arena_trim());
  return 1;
}

/* set(t, src, offset) : t becomes a contiguous view of t's own shape on
 * src's storage, starting at element `offset` (0-based) of src's view. Every
 * Lua reference to t sees the change (Torch's set()). src must be contiguous
 * and hold enough elements; dtypes must match. */
static int l_set(lua_State *L) {
  ac_tensor *t = acL_check(L, 1);
  ac_tensor *src = acL_check(L, 2);
  int64_t off = luaL_checkinteger(L, 3);
  if (t->dtype != src->dtype) return luaL_argerror(L, 2, "dtypes differ");
  if (!ac_is_contiguous(src)) return luaL_argerror(L, 2, "source must be contiguous");
  int64_t n = ac_numel(t);
  if (off < 0 || off + n > ac_numel(src))
    return acL_error(L, "set: %lld elements at offset %lld do not fit in %s", (long long)n,
                      (long long)off, acL_shape(src));
  ac_tensor v;
  memset(&v, 0, sizeof v);
  ac_tensor_view_of(&v, src);
  v.offset = src->offset + off;
  v.ndim = t->ndim;
  memcpy(v.shape, t->shape, sizeof v.shape);
  ac_contiguous_strides(v.ndim, v.shape, v.stride);
  ac_tensor_release(t);
  *t = v;
  return 0;
}

/* flat_of(list) -> a 1-D view of the storage when the tensors of the list
 * are contiguous, share one storage, follow each other in order from its
 * first element and cover it exactly; nil otherwise. */
static int l_flat_of(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) return 0;
  ac_storage *st = NULL;
  int64_t next = 0;
  ac_dtype dt = AC_F32;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    ac_tensor *t = acL_test(L, -1);
    lua_pop(L, 1);
    if (!t || !t->storage || !ac_is_contiguous(t)) return 0;
    if (i == 1) {
      st = t->storage;
      dt = t->dtype;
    }
    if (t->storage != st || t->dtype != dt || t->offset != next) return 0;
    next += ac_numel(t);
  }
  if ((size_t)next * ac_dtype_size(dt) != st->nbytes) return 0;
  lua_geti(L, 1, 1);
  ac_tensor *first = acL_check(L, -1);
  ac_tensor *v = acL_push_view(L, first);
  v->offset = 0;
  v->ndim = 1;
  v->shape[0] = next;
  v->stride[0] = 1;
  return 1;
}

/* same_padding(n, k, stride) -> before, after */
static int l_same_padding(lua_State *L) {
  int64_t n = luaL_checkinteger(L, 1), k = luaL_checkinteger(L, 2), s = luaL_checkinteger(L, 3);
  if (n < 1 || k < 1 || s < 1) return acL_error(L, "same_padding: sizes must be >= 1");
  int64_t a, b;
  ac_same_padding(n, k, s, &a, &b);
  lua_pushinteger(L, a);
  lua_pushinteger(L, b);
  return 2;
}

/* ======================================================================
 * Linear
 * ====================================================================== */

/* linear_forward(x [N,In], w [O,In], b [O]|nil, y [N,O]) */
static int l_linear_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *w = in_f32(L, 2, "weight");
  ac_tensor *b = opt_in_f32(L, 3, "bias"), *y = out_f32(L, 4, "output");
  need_ndim(L, x, 2, "input");
  need_ndim(L, w, 2, "weight");
  int64_t N = x->shape[0], In = x->shape[1], O = w->shape[0];
  if (w->shape[1] != In)
    return acL_error(L, "input %s does not match weight %s", acL_shape(x), acL_shape(w));
  if (b) need_numel(L, b, O, "bias");
  need_numel(L, y, N * O, "output");
  ACL_CALL(L, NULL, ac_linear_forward(ac_f32(y), ac_f32(x), ac_f32(w), fp(b), N, In, O));
  return 0;
}

/* linear_backward_input(gy [N,O], w [O,In], gx [N,In]) */
static int l_linear_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *w = in_f32(L, 2, "weight");
  ac_tensor *gx = out_f32(L, 3, "gradInput");
  need_ndim(L, gy, 2, "gradOutput");
  need_ndim(L, w, 2, "weight");
  int64_t N = gy->shape[0], O = w->shape[0], In = w->shape[1];
  if (gy->shape[1] != O)
    return acL_error(L, "gradOutput %s does not match weight %s", acL_shape(gy),
                      acL_shape(w));
  need_numel(L, gx, N * In, "gradInput");
  ACL_CALL(L, NULL, ac_linear_backward_input(ac_f32(gx), ac_f32(gy), ac_f32(w), N, In, O));
  return 0;
}

/* linear_backward_params(x [N,In], gy [N,O], gw [O,In], gb [O]|nil, scale) */
static int l_linear_backward_params(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *gy = in_f32(L, 2, "gradOutput");
  ac_tensor *gw = out_f32(L, 3, "gradWeight"), *gb = opt_out_f32(L, 4, "gradBias");
  float scale = (float)luaL_optnumber(L, 5, 1.0);
  need_ndim(L, x, 2, "input");
  need_ndim(L, gy, 2, "gradOutput");
  int64_t N = x->shape[0], In = x->shape[1], O = gy->shape[1];
  if (gy->shape[0] != N)
    return acL_error(L, "input %s and gradOutput %s differ in batch size", acL_shape(x),
                      acL_shape(gy));
  need_numel(L, gw, O * In, "gradWeight");
  if (gb) need_numel(L, gb, O, "gradBias");
  ACL_CALL(L, NULL, ac_linear_backward_params(ac_f32(gw), fpw(gb), ac_f32(x), ac_f32(gy), N, In, O,
                                             scale));
  return 0;
}

/* ======================================================================
 * Conv2d
 * ====================================================================== */

/* Reads the geometry {sh, sw, pt, pl, pb, pr, groups} at idx, input shape
 * from x [N,C,H,W] and O, kh, kw from the weight [O, C/groups, kh, kw]. */
static void conv_cfg(lua_State *L, int idx, const ac_tensor *x, const ac_tensor *w,
                     ac_conv2d_cfg *c) {
  static const char *const names[7] = {"stride_h", "stride_w", "pad_top", "pad_left",
                                       "pad_bottom", "pad_right", "groups"};
  int64_t v[7];
  luaL_checktype(L, idx, LUA_TTABLE);
  for (int i = 0; i < 7; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = check_int(L, -1, names[i]);
    lua_pop(L, 1);
  }
  need_ndim(L, x, 4, "input");
  need_ndim(L, w, 4, "weight");
  memset(c, 0, sizeof *c);
  c->N = x->shape[0];
  c->C = x->shape[1];
  c->H = x->shape[2];
  c->W = x->shape[3];
  c->O = w->shape[0];
  c->kh = w->shape[2];
  c->kw = w->shape[3];
  c->sh = v[0];
  c->sw = v[1];
  c->pt = v[2];
  c->pl = v[3];
  c->pb = v[4];
  c->pr = v[5];
  c->groups = v[6];
  if (c->groups < 1 || w->shape[1] * c->groups != c->C)
    acL_error(L, "input %s has %lld channels, weight %s with groups=%lld expects %lld",
               acL_shape(x), (long long)c->C, acL_shape(w), (long long)c->groups,
               (long long)(w->shape[1] * c->groups));
  if (ac_conv2d_setup(c)) acL_kernel_error(L, NULL);
}

static ac_tensor *conv_ws(lua_State *L, int idx, const ac_conv2d_cfg *c) {
  int64_t need = ac_conv2d_workspace(c);
  if (need == 0) return NULL;
  ac_tensor *ws = out_f32(L, idx, "workspace");
  if (ac_numel(ws) < need)
    acL_error(L, "workspace %s is smaller than the %lld floats needed", acL_shape(ws),
               (long long)need);
  return ws;
}

/* conv2d_info(x_shape_table, w_shape_table, geometry) -> OH, OW, workspace floats, path */
static int l_conv2d_info(lua_State *L) {
  ac_tensor x, w;
  memset(&x, 0, sizeof x);
  memset(&w, 0, sizeof w);
  x.ndim = w.ndim = 4;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (acL_checkshape(L, 1, x.shape) != 4 || acL_checkshape(L, 2, w.shape) != 4)
    return acL_error(L, "shapes must have 4 dimensions");
  ac_conv2d_cfg c;
  conv_cfg(L, 3, &x, &w, &c);
  lua_pushinteger(L, c.OH);
  lua_pushinteger(L, c.OW);
  lua_pushinteger(L, ac_conv2d_workspace(&c));
  lua_pushstring(L, c.path == AC_CONV_DEPTHWISE      ? "depthwise"
                   : c.path == AC_CONV_DEPTHWISE_S1 ? "depthwise_s1"
                   : c.path == AC_CONV_FAST         ? "fast"
                                                    : "im2col");
  return 4;
}

static void conv_need_out(lua_State *L, const ac_tensor *y, const ac_conv2d_cfg *c,
                          const char *arg) {
  if (y->ndim != 4 || y->shape[0] != c->N || y->shape[1] != c->O || y->shape[2] != c->OH ||
      y->shape[3] != c->OW)
    acL_error(L, "'%s' is %s, expected [%lld, %lld, %lld, %lld]", arg, acL_shape(y),
               (long long)c->N, (long long)c->O, (long long)c->OH, (long long)c->OW);
}

/* conv2d_forward(x, w, b|nil, y, ws|nil, geometry [, "ref"]) */
static int l_conv2d_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *w = in_f32(L, 2, "weight");
  ac_tensor *b = opt_in_f32(L, 3, "bias"), *y = out_f32(L, 4, "output");
  int ref = lua_toboolean(L, 7);
  ac_conv2d_cfg c;
  conv_cfg(L, 6, x, w, &c);
  if (b) need_numel(L, b, c.O, "bias");
  conv_need_out(L, y, &c, "output");
  if (ref) {
    ACL_CALL(L, NULL, ac_conv2d_forward_ref(&c, ac_f32(y), ac_f32(x), ac_f32(w), fp(b)));
  } else {
    ac_tensor *ws = conv_ws(L, 5, &c);
    ACL_CALL(L, NULL, ac_conv2d_forward(&c, ac_f32(y), ac_f32(x), ac_f32(w), fp(b), fpw(ws)));
  }
  return 0;
}

/* conv2d_backward_input(x, gy, w, gx, ws|nil, geometry [, "ref"]) ; x only gives the shape */
static int l_conv2d_backward_input(lua_State *L) {
  ac_tensor *x = acL_checkf32(L, 1, NULL, "input");
  ac_tensor *gy = in_f32(L, 2, "gradOutput"), *w = in_f32(L, 3, "weight");
  ac_tensor *gx = out_f32(L, 4, "gradInput");
  int ref = lua_toboolean(L, 7);
  ac_conv2d_cfg c;
  conv_cfg(L, 6, x, w, &c);
  conv_need_out(L, gy, &c, "gradOutput");
  need_same(L, gx, x, "gradInput", "input");
  if (ref) {
    ACL_CALL(L, NULL, ac_conv2d_backward_input_ref(&c, ac_f32(gx), ac_f32(gy), ac_f32(w)));
  } else {
    ac_tensor *ws = conv_ws(L, 5, &c);
    ACL_CALL(L, NULL, ac_conv2d_backward_input(&c, ac_f32(gx), ac_f32(gy), ac_f32(w), fpw(ws)));
  }
  return 0;
}

/* conv2d_backward_params(x, gy, gw, gb|nil, ws|nil, geometry, scale [, "ref"]) */
static int l_conv2d_backward_params(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *gy = in_f32(L, 2, "gradOutput");
  ac_tensor *gw = out_f32(L, 3, "gradWeight"), *gb = opt_out_f32(L, 4, "gradBias");
  float scale = (float)luaL_optnumber(L, 7, 1.0);
  int ref = lua_toboolean(L, 8);
  ac_conv2d_cfg c;
  conv_cfg(L, 6, x, gw, &c);
  conv_need_out(L, gy, &c, "gradOutput");
  if (gb) need_numel(L, gb, c.O, "gradBias");
  if (ref) {
    ACL_CALL(L, NULL, ac_conv2d_backward_params_ref(&c, ac_f32(gw), fpw(gb), ac_f32(x), ac_f32(gy),
                                                   scale));
  } else {
    ac_tensor *ws = conv_ws(L, 5, &c);
    ACL_CALL(L, NULL, ac_conv2d_backward_params(&c, ac_f32(gw), fpw(gb), ac_f32(x), ac_f32(gy),
                                               scale, fpw(ws)));
  }
  return 0;
}

/* ======================================================================
 * BatchNorm
 * ====================================================================== */

/* x [N, C, ...] -> N, C, P */
static void bn_dims(lua_State *L, const ac_tensor *x, int64_t *N, int64_t *C, int64_t *P) {
  if (x->ndim < 2) acL_error(L, "input must be [N, C, ...], got %s", acL_shape(x));
  *N = x->shape[0];
  *C = x->shape[1];
  int64_t p = 1;
  for (int i = 2; i < x->ndim; i++) p *= x->shape[i];
  *P = p;
}

static void bn_vec(lua_State *L, const ac_tensor *t, int64_t C, const char *arg) {
  if (t) need_numel(L, t, C, arg);
}

/* batchnorm_forward_train(x, gamma|nil, beta|nil, y, save_mean, save_invstd,
 *                            running_mean|nil, running_var|nil, eps, momentum [, relu]) */
static int l_bn_forward_train(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input");
  ac_tensor *g = opt_in_f32(L, 2, "weight"), *b = opt_in_f32(L, 3, "bias");
  ac_tensor *y = out_f32(L, 4, "output");
  ac_tensor *sm = out_f32(L, 5, "save_mean"), *si = out_f32(L, 6, "save_invstd");
  ac_tensor *rm = opt_out_f32(L, 7, "running_mean"), *rv = opt_out_f32(L, 8, "running_var");
  float eps = tofloat(L, 9, "eps"), mom = tofloat(L, 10, "momentum");
  int relu = lua_toboolean(L, 11);
  int64_t N, C, P;
  bn_dims(L, x, &N, &C, &P);
  need_same(L, y, x, "output", "input");
  bn_vec(L, g, C, "weight");
  bn_vec(L, b, C, "bias");
  bn_vec(L, sm, C, "save_mean");
  bn_vec(L, si, C, "save_invstd");
  bn_vec(L, rm, C, "running_mean");
  bn_vec(L, rv, C, "running_var");
  ACL_CALL(L, NULL, ac_batchnorm_forward_train(ac_f32(y), ac_f32(sm), ac_f32(si), fpw(rm), fpw(rv),
                                              ac_f32(x), fp(g), fp(b), N, C, P, eps, mom, relu));
  return 0;
}

/* batchnorm_forward_eval(x, gamma|nil, beta|nil, y, save_mean|nil, save_invstd|nil,
 *                           running_mean, running_var, eps [, relu]) */
static int l_bn_forward_eval(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input");
  ac_tensor *g = opt_in_f32(L, 2, "weight"), *b = opt_in_f32(L, 3, "bias");
  ac_tensor *y = out_f32(L, 4, "output");
  ac_tensor *sm = opt_out_f32(L, 5, "save_mean"), *si = opt_out_f32(L, 6, "save_invstd");
  ac_tensor *rm = in_f32(L, 7, "running_mean"), *rv = in_f32(L, 8, "running_var");
  float eps = tofloat(L, 9, "eps");
  int relu = lua_toboolean(L, 10);
  int64_t N, C, P;
  bn_dims(L, x, &N, &C, &P);
  need_same(L, y, x, "output", "input");
  bn_vec(L, g, C, "weight");
  bn_vec(L, b, C, "bias");
  bn_vec(L, sm, C, "save_mean");
  bn_vec(L, si, C, "save_invstd");
  bn_vec(L, rm, C, "running_mean");
  bn_vec(L, rv, C, "running_var");
  ACL_CALL(L, NULL, ac_batchnorm_forward_eval(ac_f32(y), fpw(sm), fpw(si), ac_f32(x), ac_f32(rm),
                                             ac_f32(rv), fp(g), fp(b), N, C, P, eps, relu));
  return 0;
}

/* batchnorm_apply(x, gamma|nil, beta|nil, y, save_mean, save_invstd [, relu]) */
static int l_bn_apply(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input");
  ac_tensor *g = opt_in_f32(L, 2, "weight"), *b = opt_in_f32(L, 3, "bias");
  ac_tensor *y = out_f32(L, 4, "output");
  ac_tensor *sm = in_f32(L, 5, "save_mean"), *si = in_f32(L, 6, "save_invstd");
  int relu = lua_toboolean(L, 7);
  int64_t N, C, P;
  bn_dims(L, x, &N, &C, &P);
  need_same(L, y, x, "output", "input");
  bn_vec(L, g, C, "weight");
  bn_vec(L, b, C, "bias");
  bn_vec(L, sm, C, "save_mean");
  bn_vec(L, si, C, "save_invstd");
  ACL_CALL(L, NULL, ac_batchnorm_apply(ac_f32(y), ac_f32(x), ac_f32(sm), ac_f32(si), fp(g), fp(b),
                                      N, C, P, relu));
  return 0;
}

/* batchnorm_backward(x, gy, save_mean, save_invstd, gamma|nil, beta|nil,
 *                       gx|nil, ggamma|nil, gbeta|nil, scale, train, relu)
 * Input gradient into gx and / or parameter gradients added to ggamma, gbeta
 * (see ac_batchnorm_backward). */
static int l_bn_backward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *gy = in_f32(L, 2, "gradOutput");
  ac_tensor *sm = in_f32(L, 3, "save_mean"), *si = in_f32(L, 4, "save_invstd");
  ac_tensor *g = opt_in_f32(L, 5, "weight"), *b = opt_in_f32(L, 6, "bias");
  ac_tensor *gx = opt_out_f32(L, 7, "gradInput");
  ac_tensor *gg = opt_out_f32(L, 8, "gradWeight"), *gb = opt_out_f32(L, 9, "gradBias");
  float scale = (float)luaL_optnumber(L, 10, 1.0);
  int train = lua_toboolean(L, 11), relu = lua_toboolean(L, 12);
  int64_t N, C, P;
  bn_dims(L, x, &N, &C, &P);
  need_same(L, gy, x, "gradOutput", "input");
  if (gx) need_same(L, gx, x, "gradInput", "input");
  bn_vec(L, sm, C, "save_mean");
  bn_vec(L, si, C, "save_invstd");
  bn_vec(L, g, C, "weight");
  bn_vec(L, b, C, "bias");
  bn_vec(L, gg, C, "gradWeight");
  bn_vec(L, gb, C, "gradBias");
  ACL_CALL(L, NULL, ac_batchnorm_backward(fpw(gx), fpw(gg), fpw(gb), ac_f32(gy), ac_f32(x),
                                         ac_f32(sm), ac_f32(si), fp(g), fp(b), N, C, P, scale,
                                         train, relu));
  return 0;
}

/* nn.isa() -> "avx512" | "avx2" | "generic" (the dispatch level, cpu/cpu.h) */
static int l_nn_isa(lua_State *L) {
  lua_pushstring(L, ac_isa_name(ac_cpu_isa()));
  return 1;
}

/* ======================================================================
 * Pooling
 * ====================================================================== */

/* geometry table {kh, kw, sh, sw, pt, pl, pb, pr [, count_include_pad]} */
static void pool_cfg(lua_State *L, int idx, const int64_t *xshape, ac_pool2d_cfg *c) {
  static const char *const names[8] = {"kernel_h", "kernel_w", "stride_h", "stride_w",
                                       "pad_top", "pad_left", "pad_bottom", "pad_right"};
  int64_t v[8];
  luaL_checktype(L, idx, LUA_TTABLE);
  for (int i = 0; i < 8; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = check_int(L, -1, names[i]);
    lua_pop(L, 1);
  }
  lua_geti(L, idx, 9);
  int cip = lua_toboolean(L, -1);
  lua_pop(L, 1);
  memset(c, 0, sizeof *c);
  c->N = xshape[0];
  c->C = xshape[1];
  c->H = xshape[2];
  c->W = xshape[3];
  c->kh = v[0];
  c->kw = v[1];
  c->sh = v[2];
  c->sw = v[3];
  c->pt = v[4];
  c->pl = v[5];
  c->pb = v[6];
  c->pr = v[7];
  c->count_include_pad = cip;
  if (ac_pool2d_setup(c)) acL_kernel_error(L, NULL);
}

static void pool_need_out(lua_State *L, const ac_tensor *y, const ac_pool2d_cfg *c,
                          const char *arg) {
  if (y->ndim != 4 || y->shape[0] != c->N || y->shape[1] != c->C || y->shape[2] != c->OH ||
      y->shape[3] != c->OW)
    acL_error(L, "'%s' is %s, expected [%lld, %lld, %lld, %lld]", arg, acL_shape(y),
               (long long)c->N, (long long)c->C, (long long)c->OH, (long long)c->OW);
}

/* pool2d_info(x_shape_table, geometry) -> OH, OW */
static int l_pool2d_info(lua_State *L) {
  int64_t s[AC_MAXDIM];
  luaL_checktype(L, 1, LUA_TTABLE);
  if (acL_checkshape(L, 1, s) != 4) return acL_error(L, "input shape must have 4 dimensions");
  ac_pool2d_cfg c;
  pool_cfg(L, 2, s, &c);
  lua_pushinteger(L, c.OH);
  lua_pushinteger(L, c.OW);
  return 2;
}

/* maxpool2d_forward(x, y, idx|nil, geometry): nil idx computes the
 * maxima only (evaluation) */
static int l_maxpool_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  ac_tensor *ix = lua_isnil(L, 3) ? NULL : out_i64(L, 3, "indices");
  need_ndim(L, x, 4, "input");
  ac_pool2d_cfg c;
  pool_cfg(L, 4, x->shape, &c);
  pool_need_out(L, y, &c, "output");
  if (ix) pool_need_out(L, ix, &c, "indices");
  ACL_CALL(L, NULL, ac_maxpool2d_forward(&c, ac_f32(y), ix ? ac_i64(ix) : NULL, ac_f32(x)));
  return 0;
}

/* maxpool2d_backward_input(gy, idx, gx, geometry) */
static int l_maxpool_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *ix = out_i64(L, 2, "indices");
  ac_tensor *gx = out_f32(L, 3, "gradInput");
  need_ndim(L, gx, 4, "gradInput");
  ac_pool2d_cfg c;
  pool_cfg(L, 4, gx->shape, &c);
  pool_need_out(L, gy, &c, "gradOutput");
  pool_need_out(L, ix, &c, "indices");
  ACL_CALL(L, NULL, ac_maxpool2d_backward_input(&c, ac_f32(gx), ac_f32(gy), ac_i64(ix)));
  return 0;
}

/* avgpool2d_forward(x, y, geometry) */
static int l_avgpool_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  need_ndim(L, x, 4, "input");
  ac_pool2d_cfg c;
  pool_cfg(L, 3, x->shape, &c);
  pool_need_out(L, y, &c, "output");
  ACL_CALL(L, NULL, ac_avgpool2d_forward(&c, ac_f32(y), ac_f32(x)));
  return 0;
}

/* avgpool2d_backward_input(gy, gx, geometry) */
static int l_avgpool_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *gx = out_f32(L, 2, "gradInput");
  need_ndim(L, gx, 4, "gradInput");
  ac_pool2d_cfg c;
  pool_cfg(L, 3, gx->shape, &c);
  pool_need_out(L, gy, &c, "gradOutput");
  ACL_CALL(L, NULL, ac_avgpool2d_backward_input(&c, ac_f32(gx), ac_f32(gy)));
  return 0;
}

/* global_avgpool_forward(x [N,C,...], y [N,C]) */
static int l_gap_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  int64_t N, C, P;
  bn_dims(L, x, &N, &C, &P);
  need_numel(L, y, N * C, "output");
  ACL_CALL(L, NULL, ac_global_avgpool_forward(ac_f32(y), ac_f32(x), N, C, P));
  return 0;
}

/* global_avgpool_backward_input(gy [N,C], gx [N,C,...]) */
static int l_gap_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *gx = out_f32(L, 2, "gradInput");
  int64_t N, C, P;
  bn_dims(L, gx, &N, &C, &P);
  need_numel(L, gy, N * C, "gradOutput");
  ACL_CALL(L, NULL, ac_global_avgpool_backward_input(ac_f32(gx), ac_f32(gy), N, C, P));
  return 0;
}

/* ======================================================================
 * element-wise and row-wise layers
 * ====================================================================== */

/* relu_forward(x, y) */
static int l_relu_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  need_numel(L, y, ac_numel(x), "output");
  ACL_CALL(L, NULL, ac_relu_forward(ac_f32(y), ac_f32(x), ac_numel(x)));
  return 0;
}

/* add_forward(a, b, y): y = a + b (same number of elements) */
static int l_add_forward(lua_State *L) {
  ac_tensor *a = in_f32(L, 1, "a"), *b = in_f32(L, 2, "b"), *y = out_f32(L, 3, "output");
  need_numel(L, b, ac_numel(a), "b");
  need_numel(L, y, ac_numel(a), "output");
  ACL_CALL(L, NULL, ac_add_forward(ac_f32(y), ac_f32(a), ac_f32(b), ac_numel(a)));
  return 0;
}

/* relu_backward_input(gy, y, gx) */
static int l_relu_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *y = in_f32(L, 2, "output");
  ac_tensor *gx = out_f32(L, 3, "gradInput");
  need_numel(L, gy, ac_numel(y), "gradOutput");
  need_numel(L, gx, ac_numel(y), "gradInput");
  ACL_CALL(L, NULL, ac_relu_backward_input(ac_f32(gx), ac_f32(gy), ac_f32(y), ac_numel(y)));
  return 0;
}

/* dropout_forward(x, y, mask, p) */
static int l_dropout_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  ac_tensor *m = out_f32(L, 3, "mask");
  float p = tofloat(L, 4, "p");
  need_numel(L, y, ac_numel(x), "output");
  need_numel(L, m, ac_numel(x), "mask");
  ACL_CALL(L, NULL, ac_dropout_forward(ac_f32(y), ac_f32(m), ac_f32(x), ac_numel(x), p,
                                      ac_global_rng()));
  return 0;
}

/* mul_backward_input(gy, mask, gx) */
static int l_mul_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *m = in_f32(L, 2, "mask");
  ac_tensor *gx = out_f32(L, 3, "gradInput");
  need_numel(L, gy, ac_numel(m), "gradOutput");
  need_numel(L, gx, ac_numel(m), "gradInput");
  ACL_CALL(L, NULL, ac_mul_backward_input(ac_f32(gx), ac_f32(gy), ac_f32(m), ac_numel(m)));
  return 0;
}

/* rows of a [..., D] tensor */
static void rows_of(lua_State *L, const ac_tensor *x, int64_t *N, int64_t *D) {
  if (x->ndim < 1) acL_error(L, "input must have at least 1 dimension");
  *D = x->shape[x->ndim - 1];
  *N = *D ? ac_numel(x) / *D : 0;
}

typedef int (*row_fwd)(float *, const float *, int64_t, int64_t);
typedef int (*row_bwd)(float *, const float *, const float *, int64_t, int64_t);

static int row_forward(lua_State *L, row_fwd k) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  int64_t N, D;
  rows_of(L, x, &N, &D);
  need_same(L, y, x, "output", "input");
  ACL_CALL(L, NULL, k(ac_f32(y), ac_f32(x), N, D));
  return 0;
}

static int row_backward(lua_State *L, row_bwd k) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *y = in_f32(L, 2, "output");
  ac_tensor *gx = out_f32(L, 3, "gradInput");
  int64_t N, D;
  rows_of(L, y, &N, &D);
  need_same(L, gy, y, "gradOutput", "output");
  need_same(L, gx, y, "gradInput", "output");
  ACL_CALL(L, NULL, k(ac_f32(gx), ac_f32(gy), ac_f32(y), N, D));
  return 0;
}

static int l_softmax_forward(lua_State *L) {
  return row_forward(L, ac_softmax_forward);
}
static int l_softmax_backward_input(lua_State *L) {
  return row_backward(L, ac_softmax_backward_input);
}
static int l_logsoftmax_forward(lua_State *L) {
  return row_forward(L, ac_logsoftmax_forward);
}
static int l_logsoftmax_backward_input(lua_State *L) {
  return row_backward(L, ac_logsoftmax_backward_input);
}

/* l2norm_forward(x [N,D], y, norm [N], eps) */
static int l_l2norm_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input"), *y = out_f32(L, 2, "output");
  ac_tensor *nr = out_f32(L, 3, "norm");
  float eps = tofloat(L, 4, "eps");
  int64_t N, D;
  rows_of(L, x, &N, &D);
  need_same(L, y, x, "output", "input");
  need_numel(L, nr, N, "norm");
  ACL_CALL(L, NULL, ac_l2norm_forward(ac_f32(y), ac_f32(nr), ac_f32(x), N, D, eps));
  return 0;
}

/* l2norm_backward_input(gy, y, norm, gx, eps) */
static int l_l2norm_backward_input(lua_State *L) {
  ac_tensor *gy = in_f32(L, 1, "gradOutput"), *y = in_f32(L, 2, "output");
  ac_tensor *nr = in_f32(L, 3, "norm"), *gx = out_f32(L, 4, "gradInput");
  float eps = tofloat(L, 5, "eps");
  int64_t N, D;
  rows_of(L, y, &N, &D);
  need_same(L, gy, y, "gradOutput", "output");
  need_same(L, gx, y, "gradInput", "output");
  need_numel(L, nr, N, "norm");
  ACL_CALL(L, NULL, ac_l2norm_backward_input(ac_f32(gx), ac_f32(gy), ac_f32(y), ac_f32(nr), N, D,
                                            eps));
  return 0;
}

/* targets: an int64 tensor [N] (contiguous copy pushed if needed) */
static ac_tensor *targets(lua_State *L, int idx, int64_t N) {
  ac_tensor *t = acL_check(L, idx);
  if (t->dtype != AC_I64)
    acL_error(L, "targets must be int64, got %s", ac_dtype_name(t->dtype));
  if (ac_numel(t) != N)
    acL_error(L, "%lld targets for %lld rows", (long long)ac_numel(t), (long long)N);
  return acL_contig(L, idx);
}

/* cross_entropy_forward(x [N,D], t int64 [N] (1-based), prob [N,D], weight|nil, average) -> loss */
static int l_ce_forward(lua_State *L) {
  ac_tensor *x = in_f32(L, 1, "input");
  need_ndim(L, x, 2, "input");
  int64_t N = x->shape[0], D = x->shape[1];
  ac_tensor *t = targets(L, 2, N);
  ac_tensor *pr = out_f32(L, 3, "prob");
  ac_tensor *w = opt_in_f32(L, 4, "weights");
  int avg = lua_isnoneornil(L, 5) ? 1 : lua_toboolean(L, 5);
  need_same(L, pr, x, "prob", "input");
  if (w) need_numel(L, w, D, "weights");
  double loss = 0;
  ACL_CALL(L, NULL, ac_cross_entropy_forward(&loss, ac_f32(pr), ac_f32(x), ac_i64(t), fp(w), N, D,
                                            1, avg));
  lua_pushnumber(L, loss);
  return 1;
}

/* cross_entropy_backward_input(prob [N,D], t, gx [N,D], weight|nil, average, scale) */
static int l_ce_backward_input(lua_State *L) {
  ac_tensor *pr = in_f32(L, 1, "prob");
  need_ndim(L, pr, 2, "prob");
  int64_t N = pr->shape[0], D = pr->shape[1];
  ac_tensor *t = targets(L, 2, N);
  ac_tensor *gx = out_f32(L, 3, "gradInput");
  ac_tensor *w = opt_in_f32(L, 4, "weights");
  int avg = lua_isnoneornil(L, 5) ? 1 : lua_toboolean(L, 5);
  float scale = (float)luaL_optnumber(L, 6, 1.0);
  need_same(L, gx, pr, "gradInput", "prob");
  if (w) need_numel(L, w, D, "weights");
  ACL_CALL(L, NULL, ac_cross_entropy_backward_input(ac_f32(gx), ac_f32(pr), ac_i64(t), fp(w), N, D,
                                                   1, avg, scale));
  return 0;
}

/* ======================================================================
 * registration
 * ====================================================================== */

static const luaL_Reg nn_funcs[] = {
    {"buffer", l_buffer},
    {"pool_new", l_pool_new},
    {"pool_release", l_pool_release},
    {"arena_stats", l_arena_stats},
    {"arena_trim", l_arena_trim},
    {"set", l_set},
    {"flat_of", l_flat_of},
    {"same_padding", l_same_padding},
    {"linear_forward", l_linear_forward},
    {"linear_backward_input", l_linear_backward_input},
    {"linear_backward_params", l_linear_backward_params},
    {"conv2d_info", l_conv2d_info},
    {"conv2d_forward", l_conv2d_forward},
    {"conv2d_backward_input", l_conv2d_backward_input},
    {"conv2d_backward_params", l_conv2d_backward_params},
    {"batchnorm_forward_train", l_bn_forward_train},
    {"batchnorm_forward_eval", l_bn_forward_eval},
    {"batchnorm_apply", l_bn_apply},
    {"batchnorm_backward", l_bn_backward},
    {"isa", l_nn_isa},
    {"pool2d_info", l_pool2d_info},
    {"maxpool2d_forward", l_maxpool_forward},
    {"maxpool2d_backward_input", l_maxpool_backward_input},
    {"avgpool2d_forward", l_avgpool_forward},
    {"avgpool2d_backward_input", l_avgpool_backward_input},
    {"global_avgpool_forward", l_gap_forward},
    {"global_avgpool_backward_input", l_gap_backward_input},
    {"relu_forward", l_relu_forward},
    {"add_forward", l_add_forward},
    {"relu_backward_input", l_relu_backward_input},
    {"dropout_forward", l_dropout_forward},
    {"mul_backward_input", l_mul_backward_input},
    {"softmax_forward", l_softmax_forward},
    {"softmax_backward_input", l_softmax_backward_input},
    {"logsoftmax_forward", l_logsoftmax_forward},
    {"logsoftmax_backward_input", l_logsoftmax_backward_input},
    {"l2norm_forward", l_l2norm_forward},
    {"l2norm_backward_input", l_l2norm_backward_input},
    {"cross_entropy_forward", l_ce_forward},
    {"cross_entropy_backward_input", l_ce_backward_input},
    {NULL, NULL}};

int ac_open_nn(lua_State *L) {
  luaL_newlib(L, nn_funcs);
  return 1;
}
