/*
 * lua_optim.c - bindings of the optimiser kernels (optim.h) used by
 * lua/adcorre/optim.lua. Every buffer is a contiguous float32 tensor with the
 * same number of elements as the parameter buffer; they are updated in place.
 *
 *   core.optim_sgd(p, g, buf|nil, lr, momentum, dampening, weight_decay, nesterov, first)
 *   core.optim_adam(p, g, m, v, vmax|nil, t, lr, beta1, beta2, eps, weight_decay,
 *                   decoupled, keras_eps)
 *   core.optim_sumsq(g) -> sum of squares (number)
 *   core.optim_clip_grad_norm(g, max_norm) -> norm before clipping
 */
#include "lua/lua_util.h"
#include "nn/optim.h"

/* A contiguous float32 tensor of n elements (n < 0: any), or an error naming fname and arg. */
static float *check_buf(lua_State *L, int idx, const char *fname, const char *arg, int64_t *n) {
  ac_tensor *t = acL_checkf32(L, idx, fname, arg);
  if (!ac_is_contiguous(t)) acL_error(L, "%s: argument '%s' must be contiguous (shape %s)", fname, arg, acL_shape(t));
  if (*n >= 0 && ac_numel(t) != *n)
    acL_error(L, "%s: argument '%s' has %lld elements (shape %s), expected %lld", fname, arg,
               (long long)ac_numel(t), acL_shape(t), (long long)*n);
  *n = ac_numel(t);
  return ac_f32(t);
}

static float check_nonneg(lua_State *L, int idx, const char *fname, const char *what) {
  lua_Number v = luaL_checknumber(L, idx);
  if (!(v >= 0)) acL_error(L, "%s: %s must be >= 0, got %f", fname, what, (double)v);
  return (float)v;
}

static int l_sgd(lua_State *L) {
  const char *fn = "optim.SGD:step";
  int64_t n = -1;
  float *p = check_buf(L, 1, fn, "params", &n);
  float *g = check_buf(L, 2, fn, "grads", &n);
  float *buf = lua_isnoneornil(L, 3) ? NULL : check_buf(L, 3, fn, "momentum_buffer", &n);
  ac_sgd_cfg cfg;
  cfg.lr = check_nonneg(L, 4, fn, "lr");
  cfg.momentum = check_nonneg(L, 5, fn, "momentum");
  cfg.dampening = (float)luaL_checknumber(L, 6);
  cfg.weight_decay = check_nonneg(L, 7, fn, "weight_decay");
  cfg.nesterov = lua_toboolean(L, 8);
  int first = lua_toboolean(L, 9);
  if (p == g) acL_error(L, "%s: params and grads are the same buffer", fn);
  ACL_CALL(L, fn, ac_sgd_step(p, g, buf, n, &cfg, first));
  return 0;
}

static int l_adam(lua_State *L) {
  const char *fn = "optim.Adam:step";
  int64_t n = -1;
  float *p = check_buf(L, 1, fn, "params", &n);
  float *g = check_buf(L, 2, fn, "grads", &n);
  float *m = check_buf(L, 3, fn, "exp_avg", &n);
  float *v = check_buf(L, 4, fn, "exp_avg_sq", &n);
  float *vmax = lua_isnoneornil(L, 5) ? NULL : check_buf(L, 5, fn, "max_exp_avg_sq", &n);
  lua_Integer t = luaL_checkinteger(L, 6);
  ac_adam_cfg cfg;
  cfg.lr = check_nonneg(L, 7, fn, "lr");
  cfg.beta1 = (float)luaL_checknumber(L, 8);
  cfg.beta2 = (float)luaL_checknumber(L, 9);
  cfg.eps = check_nonneg(L, 10, fn, "eps");
  cfg.weight_decay = check_nonneg(L, 11, fn, "weight_decay");
  cfg.decoupled = lua_toboolean(L, 12);
  cfg.keras_eps = lua_toboolean(L, 13);
  cfg.amsgrad = vmax != NULL;
  if (p == g || m == v) acL_error(L, "%s: buffers must be distinct", fn);
  ACL_CALL(L, fn, ac_adam_step(p, g, m, v, vmax, n, &cfg, (int64_t)t));
  return 0;
}

static int l_sumsq(lua_State *L) {
  int64_t n = -1;
  float *g = check_buf(L, 1, "optim.sumsq", "x", &n);
  lua_pushnumber(L, ac_sumsq(g, n));
  return 1;
}

static int l_clip(lua_State *L) {
  const char *fn = "optim.clip_grad_norm";
  int64_t n = -1;
  float *g = check_buf(L, 1, fn, "grads", &n);
  double max_norm = luaL_checknumber(L, 2);
  double norm = 0;
  ACL_CALL(L, fn, ac_clip_grad_norm(g, n, max_norm, &norm));
  lua_pushnumber(L, norm);
  return 1;
}

int ac_open_optim(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"sgd", l_sgd},
    {"adam", l_adam},
    {"sumsq", l_sumsq},
    {"clip_grad_norm", l_clip},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
