/*
 * lua_augment.c - bindings for the augmentation kernels (augment.h): a
 * pipeline userdata ("adcorre.AugPipeline") built from a list of op tables,
 * and its application to a float32 [N, C, H, W] batch in place. The Lua
 * classes (HFlip, Affine, ..., Compose, presets) are in lua/adcorre/augment.lua.
 */
#include <string.h>

#include "data/augment.h"
#include "image/image.h"
#include "lua/lua_util.h"
#include "core/random.h"

#define AUG_MT "adcorre.AugPipeline"

static float opt_field(lua_State *L, int idx, const char *key, float def) {
  lua_getfield(L, idx, key);
  float v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) acL_error(L, "augment: field '%s' must be a number, got %s", key, luaL_typename(L, -1));
    v = (float)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static void parse_op(lua_State *L, int idx, int i, ac_aug_op *o) {
  memset(o, 0, sizeof *o);
  lua_getfield(L, idx, "kind");
  const char *k = lua_tostring(L, -1);
  static const char *names[] = {"hflip", "affine", "resized_crop", "jitter", "noise", "blur", "erase", NULL};
  static const int kinds[] = {AC_AUG_HFLIP, AC_AUG_AFFINE, AC_AUG_RESIZED_CROP, AC_AUG_JITTER,
                              AC_AUG_NOISE, AC_AUG_BLUR,   AC_AUG_ERASE};
  for (int j = 0; k && names[j]; j++)
    if (!strcmp(k, names[j])) o->kind = kinds[j];
  if (!o->kind) acL_error(L, "augment: op %d has unknown kind '%s'", i, k ? k : "nil");
  lua_pop(L, 1);
  o->p = opt_field(L, idx, "p", 1.0f);
  o->rotate = opt_field(L, idx, "rotate", 0);
  o->scale_lo = opt_field(L, idx, "scale_lo", 1);
  o->scale_hi = opt_field(L, idx, "scale_hi", 1);
  o->translate_x = opt_field(L, idx, "translate_x", 0);
  o->translate_y = opt_field(L, idx, "translate_y", 0);
  o->shear = opt_field(L, idx, "shear", 0);
  o->fill = opt_field(L, idx, "fill", 0);
  o->area_lo = opt_field(L, idx, "area_lo", 0);
  o->area_hi = opt_field(L, idx, "area_hi", 0);
  o->ratio_lo = opt_field(L, idx, "ratio_lo", 0);
  o->ratio_hi = opt_field(L, idx, "ratio_hi", 0);
  o->brightness = opt_field(L, idx, "brightness", 0);
  o->contrast = opt_field(L, idx, "contrast", 0);
  o->gamma = opt_field(L, idx, "gamma", 0);
  o->std = opt_field(L, idx, "std", 0);
  o->sigma_lo = opt_field(L, idx, "sigma_lo", 0);
  o->sigma_hi = opt_field(L, idx, "sigma_hi", 0);
  lua_getfield(L, idx, "random_fill");
  o->random_fill = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "border");
  const char *b = lua_isnil(L, -1) ? "constant" : lua_tostring(L, -1);
  if (b && !strcmp(b, "constant")) o->border = AC_BORDER_CONSTANT;
  else if (b && !strcmp(b, "replicate")) o->border = AC_BORDER_REPLICATE;
  else if (b && !strcmp(b, "reflect")) o->border = AC_BORDER_REFLECT;
  else acL_error(L, "augment: border must be 'constant', 'replicate' or 'reflect', got '%s'", b ? b : "?");
  lua_pop(L, 1);
}

/* _aug_pipeline({op, op, ...}) -> pipeline userdata */
static int l_pipeline(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)acL_checkrange(L, luaL_len(L, 1), "augment", "length of", "ops", 0, ACL_INT_MAX);
  if (n > AC_AUG_MAXOPS) acL_error(L, "augment: at most %d ops in one pipeline, got %d", AC_AUG_MAXOPS, n);
  ac_aug_pipeline *pl = lua_newuserdatauv(L, sizeof(ac_aug_pipeline), 0);
  memset(pl, 0, sizeof *pl);
  luaL_setmetatable(L, AUG_MT);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    if (!lua_istable(L, -1)) acL_error(L, "augment: op %d must be a table, got %s", i, luaL_typename(L, -1));
    parse_op(L, lua_gettop(L), i, &pl->op[i - 1]);
    lua_pop(L, 1);
  }
  pl->n = n;
  ACL_CALL(L, "augment", ac_aug_validate(pl));
  return 1;
}

/* _aug_apply(pipeline, x [N,C,H,W] | [C,H,W] float32 contiguous, seed|nil, key0|nil) in place */
static int l_apply(lua_State *L) {
  ac_aug_pipeline *pl = luaL_checkudata(L, 1, AUG_MT);
  ac_tensor *x = acL_checkf32(L, 2, "augment", "x");
  if (x->ndim != 3 && x->ndim != 4) acL_error(L, "augment: x must be [N, C, H, W] or [C, H, W], got %s", acL_shape(x));
  if (!ac_is_contiguous(x)) acL_error(L, "augment: x must be contiguous (got a strided view of %s)", acL_shape(x));
  uint64_t seed;
  if (lua_isnoneornil(L, 3)) seed = ac_rng_next(ac_global_rng());
  else seed = (uint64_t)luaL_checkinteger(L, 3);
  uint64_t key0 = (uint64_t)luaL_optinteger(L, 4, 0);
  const int o = x->ndim == 4;
  const int64_t n = o ? x->shape[0] : 1;
  const int c = (int)x->shape[o], h = (int)x->shape[o + 1], w = (int)x->shape[o + 2];
  if (c <= 0 || h <= 0 || w <= 0) acL_error(L, "augment: x is empty (%s)", acL_shape(x));
  ACL_CALL(L, "augment", ac_aug_batch(pl, ac_f32(x), n, c, h, w, seed, key0));
  lua_settop(L, 2);
  return 1;
}

static int l_len(lua_State *L) {
  ac_aug_pipeline *pl = luaL_checkudata(L, 1, AUG_MT);
  lua_pushinteger(L, pl->n);
  return 1;
}

/* _aug_warp(x [C,H,W], A{4}, t{2}, border, fill) -> new image (deterministic affine warp) */
static int l_warp(lua_State *L) {
  ac_tensor *x = acL_checkf32(L, 1, "augment.warp", "x");
  if (x->ndim != 3) acL_error(L, "augment.warp: x must be [C, H, W], got %s", acL_shape(x));
  ac_tensor *xc = acL_contig(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  double A[4], t[2];
  for (int i = 0; i < 4; i++) { lua_geti(L, 2, i + 1); A[i] = luaL_checknumber(L, -1); lua_pop(L, 1); }
  for (int i = 0; i < 2; i++) { lua_geti(L, 3, i + 1); t[i] = luaL_checknumber(L, -1); lua_pop(L, 1); }
  int border = (int)acL_optint(L, 4, AC_BORDER_CONSTANT, "augment.warp", "border", ACL_INT_MIN, ACL_INT_MAX);
  if (border < 0 || border > 2) acL_error(L, "augment.warp: unknown border mode %d", border);
  float fill = (float)luaL_optnumber(L, 5, 0);
  ac_tensor *out = acL_new(L, AC_F32, 3, x->shape);
  ac_aug_warp(ac_f32(xc), ac_f32(out), (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], A, t, border, fill);
  return 1;
}

static const luaL_Reg aug_funcs[] = {
    {"pipeline", l_pipeline}, {"apply", l_apply}, {"warp", l_warp}, {NULL, NULL}};

int ac_open_augment(lua_State *L) {
  if (luaL_newmetatable(L, AUG_MT)) {
    lua_pushcfunction(L, l_len);
    lua_setfield(L, -2, "__len");
    lua_pushstring(L, "adcorre.AugPipeline");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  luaL_newlib(L, aug_funcs);
  return 1;
}
