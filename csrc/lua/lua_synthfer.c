/*
 * lua_synthfer.c - bindings of the synthfer generator (csrc/synthfer.h):
 * generate / render samples into tensors, write a fer2013.csv and a PNG
 * grid. The Lua API (lua/adcorre/synthfer.lua) builds on these.
 *
 *   core.synthfer_generate(n, seed|nil, start0, opts|nil, dtype) -> images [n,1,48,48], labels int64 [n]
 *   core.synthfer_render(seed, index0, label, opts|nil)          -> image float32 [1,48,48]
 *   core.synthfer_label(seed, index0)                             -> class 1..7
 *   core.synthfer_fer_code(label)                                 -> FER-2013 code 0..6
 *   core.synthfer_write_csv(path, pixels uint8 [n,...], labels int64 [n], usage uint8 [n])
 *   core.synthfer_write_grid(path, images float32 [n,(1,)h,w], cols)
 *   core.synthfer_defaults()                                      -> options table
 *   core.synthfer_seed()                                          -> a seed from the global generator
 */
#include <string.h>

#include "lua/lua_util.h"
#include "core/random.h"
#include "data/synthfer.h"

/* ---- options ------------------------------------------------------------ */

typedef struct opt_field { const char *name; size_t off; } opt_field;
static const opt_field sf_fields[] = {
    {"difficulty", offsetof(ac_synthfer_opts, difficulty)},
    {"max_rotation", offsetof(ac_synthfer_opts, max_rotation)},
    {"occlusion", offsetof(ac_synthfer_opts, occlusion)},
    {"noise", offsetof(ac_synthfer_opts, noise)},
    {"blur", offsetof(ac_synthfer_opts, blur)},
};
#define SF_NFIELDS (sizeof sf_fields / sizeof sf_fields[0])

/* Reads an options table at idx (nil = defaults). Unknown keys and
 * non-numbers are errors; ranges are checked by the kernel. */
static void sf_checkopts(lua_State *L, int idx, const char *fname, ac_synthfer_opts *o) {
  ac_synthfer_defaults(o);
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) acL_error(L, "%s: options must be a table, got %s", fname, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING)
      acL_error(L, "%s: option keys must be strings, got %s", fname, luaL_typename(L, -2));
    const char *key = lua_tostring(L, -2);
    size_t k = 0;
    while (k < SF_NFIELDS && strcmp(sf_fields[k].name, key) != 0) k++;
    if (k == SF_NFIELDS)
      acL_error(L, "%s: unknown option '%s' (known: difficulty, max_rotation, occlusion, noise, blur)", fname, key);
    if (lua_type(L, -1) != LUA_TNUMBER)
      acL_error(L, "%s: option '%s' must be a number, got %s", fname, key, luaL_typename(L, -1));
    *(float *)((char *)o + sf_fields[k].off) = (float)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  if (ac_synthfer_check_opts(o)) acL_kernel_error(L, fname);
}

static uint64_t sf_checkseed(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return ac_rng_next(ac_global_rng()) >> 1;
  int isint = 0;
  lua_Integer s = lua_tointegerx(L, idx, &isint);
  if (!isint) acL_error(L, "%s: seed must be an integer, got %s", fname, luaL_typename(L, idx));
  return (uint64_t)s;
}

static lua_Integer sf_checkint(lua_State *L, int idx, const char *fname, const char *arg, lua_Integer lo) {
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint) acL_error(L, "%s: '%s' must be an integer, got %s", fname, arg,
                         lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  if (v < lo) acL_error(L, "%s: '%s' must be >= %lld, got %lld", fname, arg, (long long)lo, (long long)v);
  return v;
}

/* ---- generation ---------------------------------------------------------- */

static int l_generate(lua_State *L) {
  const char *fn = "synthfer.generate";
  lua_Integer n = sf_checkint(L, 1, fn, "n", 0);
  uint64_t seed = sf_checkseed(L, 2, fn);
  lua_Integer start = lua_isnoneornil(L, 3) ? 0 : sf_checkint(L, 3, fn, "start", 0);
  ac_synthfer_opts o;
  sf_checkopts(L, 4, fn, &o);
  const char *dt = luaL_optstring(L, 5, "float32");
  ac_dtype dtype;
  if (strcmp(dt, "float32") == 0) dtype = AC_F32;
  else if (strcmp(dt, "uint8") == 0) dtype = AC_U8;
  else return acL_error(L, "%s: dtype must be \"float32\" or \"uint8\", got \"%s\"", fn, dt);
  if (n > (lua_Integer)1 << 26) return acL_error(L, "%s: n = %lld is too large (at most 2^26 per call)", fn, (long long)n);
  int64_t ishape[4] = {n, 1, AC_SYNTHFER_SIZE, AC_SYNTHFER_SIZE}, lshape[1] = {n};
  ac_tensor *img = acL_new(L, dtype, 4, ishape);
  ac_tensor *lab = acL_new(L, AC_I64, 1, lshape);
  if (dtype == AC_F32)
    ACL_CALL(L, fn, ac_synthfer_generate(seed, start, n, &o, n ? ac_f32(img) : NULL, ac_i64(lab)));
  else
    ACL_CALL(L, fn, ac_synthfer_generate_u8(seed, start, n, &o, n ? ac_u8(img) : NULL, ac_i64(lab)));
  return 2;
}

static int l_render(lua_State *L) {
  const char *fn = "synthfer.render";
  uint64_t seed = sf_checkseed(L, 1, fn);
  lua_Integer index = sf_checkint(L, 2, fn, "index", 0);
  lua_Integer label = sf_checkint(L, 3, fn, "label", 1);
  if (label > AC_SYNTHFER_CLASSES)
    return acL_error(L, "%s: 'label' must be a class in 1..%d, got %lld", fn, AC_SYNTHFER_CLASSES, (long long)label);
  ac_synthfer_opts o;
  sf_checkopts(L, 4, fn, &o);
  int64_t shape[3] = {1, AC_SYNTHFER_SIZE, AC_SYNTHFER_SIZE};
  ac_tensor *img = acL_new(L, AC_F32, 3, shape);
  ACL_CALL(L, fn, ac_synthfer_render(seed, index, (int)label, &o, ac_f32(img)));
  return 1;
}

static int l_label(lua_State *L) {
  const char *fn = "synthfer.label";
  uint64_t seed = sf_checkseed(L, 1, fn);
  lua_Integer index = sf_checkint(L, 2, fn, "index", 0);
  lua_pushinteger(L, ac_synthfer_label(seed, index));
  return 1;
}

static int l_fer_code(lua_State *L) {
  lua_Integer label = sf_checkint(L, 1, "synthfer.fer_code", "label", 1);
  int code = ac_synthfer_fer_code(label > AC_SYNTHFER_CLASSES ? -1 : (int)label);
  if (code < 0) return acL_error(L, "synthfer.fer_code: 'label' must be a class in 1..7, got %lld", (long long)label);
  lua_pushinteger(L, code);
  return 1;
}

/* A seed drawn from the global generator (the one ac.manual_seed sets). */
static int l_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(ac_rng_next(ac_global_rng()) >> 1));
  return 1;
}

static int l_defaults(lua_State *L) {
  ac_synthfer_opts o;
  ac_synthfer_defaults(&o);
  lua_createtable(L, 0, (int)SF_NFIELDS);
  for (size_t k = 0; k < SF_NFIELDS; k++) {
    lua_pushnumber(L, (lua_Number) * (float *)((char *)&o + sf_fields[k].off));
    lua_setfield(L, -2, sf_fields[k].name);
  }
  return 1;
}

/* ---- writers ------------------------------------------------------------- */

static ac_tensor *sf_checkdtype(lua_State *L, int idx, const char *fn, const char *arg, ac_dtype dt) {
  ac_tensor *t = acL_test(L, idx);
  if (!t) acL_error(L, "%s: '%s' must be a tensor, got %s", fn, arg, luaL_typename(L, idx));
  if (!t->storage) acL_error(L, "%s: '%s' is a closed tensor", fn, arg);
  if (t->dtype != dt)
    acL_error(L, "%s: '%s' must be %s, got %s", fn, arg, ac_dtype_name(dt), ac_dtype_name(t->dtype));
  return t;
}

static int l_write_csv(lua_State *L) {
  const char *fn = "synthfer.write_csv";
  const char *path = luaL_checkstring(L, 1);
  ac_tensor *pix = sf_checkdtype(L, 2, fn, "pixels", AC_U8);
  ac_tensor *lab = sf_checkdtype(L, 3, fn, "labels", AC_I64);
  ac_tensor *use = sf_checkdtype(L, 4, fn, "usage", AC_U8);
  int64_t n = pix->ndim > 0 ? pix->shape[0] : 0;
  if (pix->ndim < 2 || ac_numel(pix) != n * AC_SYNTHFER_PIXELS)
    return acL_error(L, "%s: 'pixels' must be [N, 48, 48] (or [N, 1, 48, 48], [N, 2304]), got %s", fn, acL_shape(pix));
  if (lab->ndim != 1 || lab->shape[0] != n || use->ndim != 1 || use->shape[0] != n)
    return acL_error(L, "%s: 'labels' %s and 'usage' %s must be [%lld] like the pixels %s", fn,
                      acL_shape(lab), acL_shape(use), (long long)n, acL_shape(pix));
  pix = acL_contig(L, 2);
  lab = acL_contig(L, 3);
  use = acL_contig(L, 4);
  ACL_CALL(L, fn, ac_synthfer_write_csv(path, ac_u8(pix), ac_i64(lab), ac_u8(use), n));
  return 0;
}

static int l_write_grid(lua_State *L) {
  const char *fn = "synthfer.save_grid";
  const char *path = luaL_checkstring(L, 1);
  ac_tensor *img = acL_checkf32(L, 2, fn, "images");
  lua_Integer cols = sf_checkint(L, 3, fn, "cols", 1);
  int ok = (img->ndim == 3) || (img->ndim == 4 && img->shape[1] == 1);
  if (!ok) return acL_error(L, "%s: 'images' must be [N, H, W] or [N, 1, H, W], got %s", fn, acL_shape(img));
  int64_t n = img->shape[0], h = img->shape[img->ndim - 2], w = img->shape[img->ndim - 1];
  if (n < 1 || h < 1 || w < 1) return acL_error(L, "%s: 'images' is empty: %s", fn, acL_shape(img));
  if (h > 4096 || w > 4096 || cols > 4096) return acL_error(L, "%s: images %s or cols %lld too large", fn, acL_shape(img), (long long)cols);
  img = acL_contig(L, 2);
  ACL_CALL(L, fn, ac_synthfer_write_grid_png(path, ac_f32(img), n, (int)h, (int)w, (int)cols));
  return 0;
}

int ac_open_synthfer(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"generate", l_generate},   {"render", l_render},
      {"label", l_label},         {"fer_code", l_fer_code},
      {"defaults", l_defaults},   {"seed", l_seed},   {"write_csv", l_write_csv},
      {"write_grid", l_write_grid}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
