/*
 * lua_loss.c - bindings of the Ad-Corre loss kernels (loss/adcorre_loss.h):
 * an "adcorre.AdCorreState" userdata that owns the C loss state (workspace,
 * confusion history) and the functions lua/adcorre/loss.lua builds the
 * AdCorreLoss class from. The bindings turn Lua values into tensors; the
 * kernels check shapes and values (loss/adcorre_check.c). Errors name the
 * method, the argument and the shapes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss/adcorre_loss.h"
#include "lua/lua_util.h"

#define STATE_MT "adcorre.AdCorreState"

typedef struct loss_state {
  ac_adcorre L;
  int live;
  ac_tensor **eview; /* [ecap] the embeddings of the current forward */
  float **gptr;      /* [ecap] the embedding gradients of the current backward */
  int64_t ecap;
} loss_state;

/* ======================================================================== */
/* helpers                                                                    */
/* ======================================================================== */

static loss_state *check_state(lua_State *L, int idx) {
  loss_state *s = luaL_checkudata(L, idx, STATE_MT);
  if (!s->live) acL_error(L, "AdCorreLoss: the loss state has been closed");
  return s;
}

static void grow_buffers(lua_State *L, loss_state *s, int64_t k) {
  if (k > s->ecap) {
    ac_tensor **e = realloc(s->eview, sizeof(ac_tensor *) * (size_t)k);
    if (!e) acL_error(L, "AdCorreLoss: out of memory");
    s->eview = e;
    float **g = realloc(s->gptr, sizeof(float *) * (size_t)k);
    if (!g) acL_error(L, "AdCorreLoss: out of memory");
    s->gptr = g;
    s->ecap = k;
  }
}

/* ======================================================================== */
/* life cycle and configuration                                               */
/* ======================================================================== */

/* adcorre_loss_new(classes, history) -> state */
static int l_new(lua_State *L) {
  lua_Integer C = luaL_checkinteger(L, 1), H = luaL_checkinteger(L, 2);
  if (C < 1 || C > 100000) return acL_error(L, "AdCorreLoss: classes must be in 1..100000, got %lld", (long long)C);
  if (H < 0 || H > ((lua_Integer)1 << 40))
    return acL_error(L, "AdCorreLoss: history must be a count >= 0, got %lld", (long long)H);
  loss_state *s = lua_newuserdatauv(L, sizeof(loss_state), 0);
  memset(s, 0, sizeof(*s));
  luaL_setmetatable(L, STATE_MT);
  if (ac_adcorre_init(&s->L, (int)C, (int64_t)H)) return acL_kernel_error(L, "AdCorreLoss");
  s->live = 1;
  return 1;
}

static int l_gc(lua_State *L) {
  loss_state *s = luaL_checkudata(L, 1, STATE_MT);
  if (s->live) ac_adcorre_free(&s->L);
  free(s->eview);
  free(s->gptr);
  s->eview = NULL;
  s->gptr = NULL;
  s->ecap = 0;
  s->live = 0;
  return 0;
}

static int l_tostring(lua_State *L) {
  loss_state *s = luaL_checkudata(L, 1, STATE_MT);
  if (!s->live) lua_pushstring(L, "adcorre.AdCorreState (closed)");
  else lua_pushfstring(L, "adcorre.AdCorreState (%d classes)", s->L.C);
  return 1;
}

/* adcorre_loss_configure(state, {lambda=, eps=, fd=, md=, ed=, adaptive=,
 * md_mode=, ce_over_classes=}) ; values are validated by loss.lua and again
 * here for the ones that could break the kernels. */
static int l_configure(lua_State *L) {
  loss_state *s = check_state(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  ac_adcorre *A = &s->L;
  lua_getfield(L, 2, "lambda");
  double lambda = luaL_optnumber(L, -1, A->lambda);
  lua_getfield(L, 2, "eps");
  double eps = luaL_optnumber(L, -1, A->eps);
  lua_getfield(L, 2, "md_mode");
  const char *mode = luaL_optstring(L, -1, A->md_mode == AC_MD_REFERENCE ? "reference" : "present");
  if (!isfinite(lambda)) return acL_error(L, "AdCorreLoss: lambda must be a finite number, got %f", lambda);
  if (!(eps > 0.0) || !isfinite(eps)) return acL_error(L, "AdCorreLoss: eps must be > 0, got %g", eps);
  int md_mode;
  if (!strcmp(mode, "present")) md_mode = AC_MD_PRESENT;
  else if (!strcmp(mode, "reference")) md_mode = AC_MD_REFERENCE;
  else return acL_error(L, "AdCorreLoss: md_mode must be \"present\" or \"reference\", got \"%s\"", mode);
  A->lambda = lambda;
  A->eps = eps;
  A->md_mode = md_mode;
  const char *flags[] = {"fd", "md", "ed", "adaptive", "ce_over_classes"};
  int *dst[] = {&A->use_fd, &A->use_md, &A->use_ed, &A->adaptive, &A->ce_over_classes};
  for (int i = 0; i < 5; i++) {
    lua_getfield(L, 2, flags[i]);
    if (!lua_isnil(L, -1)) *dst[i] = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  A->have_forward = 0;
  return 0;
}

/* ======================================================================== */
/* forward / backward                                                         */
/* ======================================================================== */

/* adcorre_loss_forward(state, logits [B,C], {E_1..E_k} each [B,d], labels, training)
 * -> total, ce, fd, md, ed, md_classes. The Lua values become tensors here
 * (types, contiguous copies, a Lua array of labels read as integers);
 * ac_adcorre_forward_checked checks the shapes, the labels and the values. */
static int l_forward(lua_State *L) {
  const char *fn = "AdCorreLoss:forward";
  loss_state *s = check_state(L, 1);
  acL_checkf32(L, 2, fn, "logits");
  if (!lua_istable(L, 3))
    return acL_error(L, "%s: embeddings must be a Lua array of [B, d] tensors, got %s", fn, luaL_typename(L, 3));
  lua_Integer k = luaL_len(L, 3);
  if (k < 1) return acL_error(L, "%s: embeddings is empty (need at least one [B, d] tensor)", fn);
  if (k > 100000) return acL_error(L, "%s: %lld embeddings is too many", fn, (long long)k);
  int training = lua_toboolean(L, 5);
  lua_settop(L, 5);
  luaL_checkstack(L, 2 * (int)k + 8, "too many embeddings");
  grow_buffers(L, s, (int64_t)k);
  for (lua_Integer j = 1; j <= k; j++) {
    lua_geti(L, 3, j);
    ac_tensor *e = acL_test(L, -1);
    if (!e || !e->storage || e->dtype != AC_F32)
      return acL_error(L, "%s: embeddings[%lld] must be a float32 tensor, got %s", fn, (long long)j,
                       e ? (e->storage ? ac_dtype_name(e->dtype) : "a closed tensor") : luaL_typename(L, -1));
    s->eview[j - 1] = acL_contig(L, lua_gettop(L)); /* a copy, when made, stays on the stack */
  }
  ac_adcorre_batch in = {.Z = acL_contig(L, 2), .E = (const ac_tensor *const *)s->eview, .k = (int64_t)k};
  ac_tensor *t = acL_test(L, 4);
  if (t) {
    if (!t->storage) return acL_error(L, "%s: labels is a closed tensor", fn);
    in.labels = t;
  } else {
    if (!lua_istable(L, 4))
      return acL_error(L, "%s: labels must be an integer tensor or a Lua array, got %s", fn, luaL_typename(L, 4));
    int64_t n = (int64_t)luaL_len(L, 4);
    ac_tensor *buf = acL_new(L, AC_I64, 1, &n);
    for (int64_t i = 0; i < n; i++) {
      lua_geti(L, 4, (lua_Integer)i + 1);
      int isint = 0;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (!isint)
        return acL_error(L, "%s: label at position %lld must be an integer, got %s %s", fn, (long long)i + 1,
                         luaL_typename(L, -1), lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : "");
      ac_i64(buf)[i] = (int64_t)v;
      lua_pop(L, 1);
    }
    in.labels1 = ac_i64(buf);
    in.nlabels = n;
  }
  if (ac_adcorre_forward_checked(&s->L, &in, training)) return acL_kernel_error(L, fn);
  lua_pushnumber(L, s->L.total);
  lua_pushnumber(L, s->L.ce);
  lua_pushnumber(L, s->L.fd);
  lua_pushnumber(L, s->L.md);
  lua_pushnumber(L, s->L.ed);
  lua_pushinteger(L, s->L.md_classes);
  return 6;
}

/* A contiguous float32 [n0, n1] tensor: the one at idx if it fits, else a new one.
 * Leaves the result on the top of the stack. */
static ac_tensor *reuse_or_new(lua_State *L, int idx, int64_t n0, int64_t n1) {
  ac_tensor *t = acL_test(L, idx);
  if (t && t->storage && t->dtype == AC_F32 && t->ndim == 2 && t->shape[0] == n0 && t->shape[1] == n1 &&
      ac_is_contiguous(t)) {
    lua_pushvalue(L, idx);
    return t;
  }
  int64_t shape[2] = {n0, n1};
  return acL_new(L, AC_F32, 2, shape);
}

/* adcorre_loss_backward(state, gradLogits or nil, gradEmbeddings table)
 * -> gradLogits, gradEmbeddings, gn_ce, gn_fd, gn_md, gn_ed
 * The given buffers are reused when their shapes fit; others are replaced. */
static int l_backward(lua_State *L) {
  loss_state *s = check_state(L, 1);
  if (!s->L.have_forward) return acL_error(L, "AdCorreLoss:backward: call forward first");
  int64_t B = s->L.B, k = s->L.k, d = s->L.d;
  if (!lua_istable(L, 3)) {
    lua_settop(L, 2);
    lua_createtable(L, (int)k, 0);
  }
  lua_settop(L, 3);
  ac_tensor *gZ = reuse_or_new(L, 2, B, s->L.C); /* index 4 */
  for (int64_t j = 0; j < k; j++) {
    lua_geti(L, 3, (lua_Integer)j + 1);
    ac_tensor *g = reuse_or_new(L, -1, B, d);
    s->gptr[j] = ac_f32(g);
    lua_seti(L, 3, (lua_Integer)j + 1);
    lua_pop(L, 1);
  }
  for (lua_Integer j = k + 1; j <= (lua_Integer)luaL_len(L, 3); j++) {
    lua_pushnil(L);
    lua_seti(L, 3, j);
  }
  if (ac_adcorre_backward(&s->L, ac_f32(gZ), s->gptr)) return acL_kernel_error(L, "AdCorreLoss:backward");
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 3);
  lua_pushnumber(L, s->L.gn_ce);
  lua_pushnumber(L, s->L.gn_fd);
  lua_pushnumber(L, s->L.gn_md);
  lua_pushnumber(L, s->L.gn_ed);
  return 6;
}

/* ======================================================================== */
/* confusion history                                                          */
/* ======================================================================== */

/* adcorre_loss_confusion(state) -> new float32 tensor [C, C] */
static int l_confusion(lua_State *L) {
  loss_state *s = check_state(L, 1);
  int64_t C = s->L.C, shape[2] = {C, C};
  int64_t dshape[1] = {2 * C * C};
  ac_tensor *tmp = acL_new(L, AC_F32, 1, dshape); /* C*C doubles */
  double *M = (double *)ac_data(tmp);
  ac_tensor *out = acL_new(L, AC_F32, 2, shape);
  ac_adcorre_confusion(&s->L, M);
  float *o = ac_f32(out);
  for (int64_t i = 0; i < C * C; i++) o[i] = (float)M[i];
  return 1;
}

/* adcorre_loss_set_confusion(state, M [C, C] tensor or nil) */
static int l_set_confusion(lua_State *L) {
  const char *fn = "AdCorreLoss:set_confusion";
  loss_state *s = check_state(L, 1);
  int64_t C = s->L.C;
  if (lua_isnoneornil(L, 2)) {
    ac_adcorre_set_confusion(&s->L, NULL);
    return 0;
  }
  ac_tensor *M = acL_test(L, 2);
  if (!M || !M->storage) return acL_error(L, "%s: M must be a [%lld, %lld] tensor or nil, got %s", fn, (long long)C, (long long)C, luaL_typename(L, 2));
  if (M->ndim != 2 || M->shape[0] != C || M->shape[1] != C)
    return acL_error(L, "%s: M must be [%lld, %lld], got %s", fn, (long long)C, (long long)C, acL_shape(M));
  for (int64_t i = 0; i < C * C; i++) {
    double v = ac_get_flat(M, i);
    if (!isfinite(v))
      return acL_error(L, "%s: M has a non-finite value at (%lld, %lld)", fn, (long long)(i / C) + 1,
                        (long long)(i % C) + 1);
  }
  int64_t dshape[1] = {2 * C * C};
  ac_tensor *tmp = acL_new(L, AC_F32, 1, dshape); /* C*C doubles */
  double *buf = (double *)ac_data(tmp);
  for (int64_t i = 0; i < C * C; i++) buf[i] = ac_get_flat(M, i);
  ac_adcorre_set_confusion(&s->L, buf);
  return 0;
}

/* adcorre_loss_history(state) -> recorded, capacity, pinned */
static int l_history(lua_State *L) {
  loss_state *s = check_state(L, 1);
  lua_pushinteger(L, s->L.hist_len);
  lua_pushinteger(L, s->L.hist_cap);
  lua_pushboolean(L, s->L.pinned);
  return 3;
}

static int l_clear_history(lua_State *L) {
  loss_state *s = check_state(L, 1);
  ac_adcorre_clear_history(&s->L);
  return 0;
}

/* adcorre_loss_record(state, labels, predictions): appends pairs (1-based). */
static int l_record(lua_State *L) {
  loss_state *s = check_state(L, 1);
  ac_tensor *y = acL_check(L, 2), *p = acL_check(L, 3);
  int64_t n = ac_numel(y), C = s->L.C;
  if (ac_numel(p) != n)
    return acL_error(L, "AdCorreLoss:record: labels %s and predictions %s differ in size", acL_shape(y), acL_shape(p));
  for (int64_t i = 0; i < n; i++) {
    double a = ac_get_flat(y, i), b = ac_get_flat(p, i);
    if (a != floor(a) || b != floor(b) || a < 1 || a > C || b < 1 || b > C)
      return acL_error(L, "AdCorreLoss:record: pair %lld (%g, %g) is outside 1..%lld", (long long)i + 1, a, b, (long long)C);
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t a = (int64_t)ac_get_flat(y, i) - 1, b = (int64_t)ac_get_flat(p, i) - 1;
    ac_adcorre_record(&s->L, &a, &b, 1);
  }
  return 0;
}

/* adcorre_loss_history_pairs(state) -> labels, predictions: int64 [n] (1-based),
 * the recorded pairs from oldest to newest (what a checkpoint stores). */
static int l_history_pairs(lua_State *L) {
  loss_state *s = check_state(L, 1);
  int64_t n = s->L.hist_len, cap = s->L.hist_cap;
  int64_t shape[1] = {n};
  ac_tensor *y = acL_new(L, AC_I64, 1, shape);
  ac_tensor *p = acL_new(L, AC_I64, 1, shape);
  /* the oldest pair sits at hist_pos once the ring is full, at 0 before */
  int64_t start = n == cap ? s->L.hist_pos : 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t j = cap > 0 ? (start + i) % cap : 0;
    ac_i64(y)[i] = (int64_t)s->L.hist_y[j] + 1;
    ac_i64(p)[i] = (int64_t)s->L.hist_p[j] + 1;
  }
  return 2;
}

/* corrcoef(X [n, m] float32 [, eps]) -> R [n, n]: epsilon-guarded Pearson
 * correlation between the rows of X (numpy.corrcoef). */
static int l_corrcoef(lua_State *L) {
  ac_tensor *X = acL_checkf32(L, 1, "corrcoef", "X");
  double eps = luaL_optnumber(L, 2, 1e-8);
  if (X->ndim != 2 || X->shape[0] < 1 || X->shape[1] < 1)
    return acL_error(L, "corrcoef: X must be a non-empty matrix [n, m], got %s", acL_shape(X));
  if (!(eps > 0.0)) return acL_error(L, "corrcoef: eps must be > 0, got %g", eps);
  int64_t n = X->shape[0], m = X->shape[1];
  int64_t rs[2] = {n, n}, us[2] = {n, m}, ss[1] = {2 * n};
  ac_tensor *Xc = acL_contig(L, 1);
  ac_tensor *U = acL_new(L, AC_F32, 2, us);
  ac_tensor *S = acL_new(L, AC_F32, 1, ss); /* n doubles */
  ac_tensor *R = acL_new(L, AC_F32, 2, rs);
  ACL_CALL(L, "corrcoef", ac_corrcoef(ac_f32(Xc), n, m, eps, ac_f32(R), ac_f32(U), (double *)ac_data(S)));
  return 1;
}

static const luaL_Reg functions[] = {
    {"new", l_new},
    {"configure", l_configure},
    {"forward", l_forward},
    {"backward", l_backward},
    {"confusion", l_confusion},
    {"set_confusion", l_set_confusion},
    {"history", l_history},
    {"clear_history", l_clear_history},
    {"record", l_record},
    {"history_pairs", l_history_pairs},
    {"corrcoef", l_corrcoef},
    {NULL, NULL}};

int ac_open_loss(lua_State *L) {
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, functions);
  return 1;
}
