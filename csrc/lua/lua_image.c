/*
 * lua_image.c - thin bindings for the image kernels (image.h): load / decode
 * / save, resize, crop, pad, colour conversion and normalisation. The
 * user-facing functions live in lua/adcorre/image.lua; these are the C
 * halves (names start with "_image_").
 */
#include <stdlib.h>
#include <string.h>

#include "image/exif.h"
#include "image/image.h"
#include "lua/lua_util.h"

/* Pushes the float [c, h, w] image of interleaved 8-bit pixels px. */
static void push_chw(lua_State *L, const char *fname, uint8_t *px, int w, int h, int c) {
  int64_t shape[3] = {c, h, w};
  ac_tensor *t = lua_newuserdatauv(L, sizeof(ac_tensor), 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, AC_TENSOR_MT);
  if (ac_tensor_new(t, AC_F32, 3, shape)) {
    ac_image_free(px);
    acL_error(L, "%s: %s", fname, ac_error());
  }
  ac_image_u8hwc_to_chw(px, h, w, c, c, ac_f32(t));
  ac_image_free(px);
}

static int check_channels(lua_State *L, int idx, const char *fname) {
  lua_Integer c = luaL_optinteger(L, idx, 0);
  if (c < 0 || c > 4) acL_error(L, "%s: channels must be 0 (as stored), 1, 2, 3 or 4, got %lld", fname, (long long)c);
  return (int)c;
}

static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int c = check_channels(L, 2, "image.load");
  int exif = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3); /* EXIF orientation (JPEG) */
  uint8_t *px;
  int w, h, cc;
  if (ac_image_decode_file_exif(path, c, exif, &px, &w, &h, &cc)) return acL_kernel_error(L, "image.load");
  push_chw(L, "image.load", px, w, h, cc);
  return 1;
}

static int l_decode(lua_State *L) {
  size_t len;
  const char *buf = luaL_checklstring(L, 1, &len);
  int c = check_channels(L, 2, "image.decode");
  int exif = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  uint8_t *px;
  int w, h, cc;
  if (ac_image_decode_mem_exif((const uint8_t *)buf, len, c, exif, &px, &w, &h, &cc))
    return acL_kernel_error(L, "image.decode");
  push_chw(L, "image.decode", px, w, h, cc);
  return 1;
}

static int l_info(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int w, h, c;
  if (ac_image_info_file(path, &w, &h, &c)) return acL_kernel_error(L, "image.info");
  lua_pushinteger(L, w);
  lua_pushinteger(L, h);
  lua_pushinteger(L, c);
  return 3;
}

/* An image argument: float32 [c, h, w] (or [h, w] as one channel). */
static ac_tensor *check_image(lua_State *L, int idx, const char *fname, int *c, int *h, int *w) {
  ac_tensor *t = acL_checkf32(L, idx, fname, "image");
  if (t->ndim == 2) {
    *c = 1;
    *h = (int)t->shape[0];
    *w = (int)t->shape[1];
  } else if (t->ndim == 3) {
    *c = (int)t->shape[0];
    *h = (int)t->shape[1];
    *w = (int)t->shape[2];
  } else {
    acL_error(L, "%s: image must be [C, H, W] or [H, W], got %s", fname, acL_shape(t));
  }
  if (*h <= 0 || *w <= 0 || *c <= 0) acL_error(L, "%s: image is empty (%s)", fname, acL_shape(t));
  return acL_contig(L, idx);
}

static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int c, h, w;
  ac_tensor *t = check_image(L, 2, "image.save", &c, &h, &w);
  const char *fmt = luaL_checkstring(L, 3);
  int q = (int)acL_optint(L, 4, 95, "image.save", "quality", ACL_INT_MIN, ACL_INT_MAX);
  ACL_CALL(L, "image.save", ac_image_save(path, fmt, ac_f32(t), c, h, w, q));
  return 0;
}

/* Batch-like argument: float32 [..., H, W] with leading dims flattened into planes. */
static ac_tensor *check_planes(lua_State *L, int idx, const char *fname, int64_t *planes, int *h, int *w) {
  ac_tensor *t = acL_checkf32(L, idx, fname, "image");
  if (t->ndim < 2) acL_error(L, "%s: image must have at least 2 dimensions (H, W), got %s", fname, acL_shape(t));
  *h = (int)t->shape[t->ndim - 2];
  *w = (int)t->shape[t->ndim - 1];
  *planes = 1;
  for (int i = 0; i < t->ndim - 2; i++) *planes *= t->shape[i];
  if (*h <= 0 || *w <= 0 || *planes <= 0) acL_error(L, "%s: image is empty (%s)", fname, acL_shape(t));
  return acL_contig(L, idx);
}

/* A new float32 tensor shaped like src [..., H, W] with the last two sizes h, w. */
static ac_tensor *new_planes_like(lua_State *L, const ac_tensor *src, int64_t h, int64_t w) {
  int64_t shape[AC_MAXDIM];
  memcpy(shape, src->shape, sizeof shape);
  shape[src->ndim - 2] = h;
  shape[src->ndim - 1] = w;
  return acL_new(L, AC_F32, src->ndim, shape);
}

static int check_size(lua_State *L, int idx, const char *fname, const char *what) {
  lua_Integer v = luaL_checkinteger(L, idx);
  if (v < 1 || v > 65536) acL_error(L, "%s: %s must be 1..65536, got %lld", fname, what, (long long)v);
  return (int)v;
}

static int l_resize(lua_State *L) {
  int64_t planes;
  int h, w;
  ac_tensor *t = check_planes(L, 1, "image.resize", &planes, &h, &w);
  int oh = check_size(L, 2, "image.resize", "height"), ow = check_size(L, 3, "image.resize", "width");
  ac_tensor *out = new_planes_like(L, acL_check(L, 1), oh, ow);
  ACL_CALL(L, "image.resize", ac_image_resize(ac_f32(t), (int)planes, h, w, ac_f32(out), oh, ow));
  return 1;
}

static int l_crop(lua_State *L) {
  int64_t planes;
  int h, w;
  ac_tensor *t = check_planes(L, 1, "image.crop", &planes, &h, &w);
  /* |y|, |x| <= 2^30 keeps y + row and x + column (sizes <= 65536) inside int. */
  int y = (int)acL_checkint(L, 2, "image.crop", "y", -(1 << 30), 1 << 30);
  int x = (int)acL_checkint(L, 3, "image.crop", "x", -(1 << 30), 1 << 30);
  int ch = check_size(L, 4, "image.crop", "height"), cw = check_size(L, 5, "image.crop", "width");
  float fill = (float)luaL_optnumber(L, 6, 0.0);
  ac_tensor *out = new_planes_like(L, acL_check(L, 1), ch, cw);
  ACL_CALL(L, "image.crop", ac_image_crop(ac_f32(t), (int)planes, h, w, y, x, ch, cw, fill, ac_f32(out)));
  return 1;
}

static int border_mode(lua_State *L, int idx, const char *fname) {
  const char *m = luaL_optstring(L, idx, "constant");
  if (!strcmp(m, "constant")) return AC_BORDER_CONSTANT;
  if (!strcmp(m, "replicate")) return AC_BORDER_REPLICATE;
  if (!strcmp(m, "reflect")) return AC_BORDER_REFLECT;
  return acL_error(L, "%s: border mode must be 'constant', 'replicate' or 'reflect', got '%s'", fname, m);
}

static int l_pad(lua_State *L) {
  int64_t planes;
  int h, w;
  ac_tensor *t = check_planes(L, 1, "image.pad", &planes, &h, &w);
  lua_Integer a[4];
  for (int i = 0; i < 4; i++) a[i] = luaL_checkinteger(L, 2 + i);
  int mode = border_mode(L, 6, "image.pad");
  float fill = (float)luaL_optnumber(L, 7, 0.0);
  for (int i = 0; i < 4; i++)
    if (a[i] < 0 || a[i] > 65536)
      acL_error(L, "image.pad: amounts must be 0..65536, got %lld %lld %lld %lld", (long long)a[0], (long long)a[1],
                (long long)a[2], (long long)a[3]);
  int top = (int)a[0], bottom = (int)a[1], left = (int)a[2], right = (int)a[3];
  ac_tensor *out = new_planes_like(L, acL_check(L, 1), h + top + bottom, w + left + right);
  ACL_CALL(L, "image.pad", ac_image_pad(ac_f32(t), (int)planes, h, w, top, bottom, left, right, mode, fill, ac_f32(out)));
  return 1;
}

/* Channel dim is the third from the end: [..., C, H, W]. */
static int l_convert(lua_State *L, int to_grey) {
  const char *fname = to_grey ? "image.to_grey" : "image.to_rgb";
  ac_tensor *src = acL_checkf32(L, 1, fname, "image");
  if (src->ndim < 3) acL_error(L, "%s: image must be [..., C, H, W], got %s", fname, acL_shape(src));
  const int cd = src->ndim - 3;
  const int64_t need = to_grey ? 3 : 1;
  if (src->shape[cd] != need)
    acL_error(L, "%s: image must have %d channel%s, got %s", fname, (int)need, need > 1 ? "s" : "", acL_shape(src));
  ac_tensor *t = acL_contig(L, 1);
  int64_t shape[AC_MAXDIM];
  memcpy(shape, src->shape, sizeof shape);
  shape[cd] = to_grey ? 1 : 3;
  ac_tensor *out = acL_new(L, AC_F32, src->ndim, shape);
  int64_t n = 1;
  for (int i = 0; i < cd; i++) n *= src->shape[i];
  const int h = (int)src->shape[cd + 1], w = (int)src->shape[cd + 2];
  const int64_t hw = (int64_t)h * w;
  for (int64_t b = 0; b < n; b++) {
    if (to_grey) ac_image_rgb_to_grey(ac_f32(t) + b * 3 * hw, h, w, ac_f32(out) + b * hw);
    else ac_image_grey_to_rgb(ac_f32(t) + b * hw, h, w, ac_f32(out) + b * 3 * hw);
  }
  return 1;
}
static int l_to_grey(lua_State *L) { return l_convert(L, 1); }
static int l_to_rgb(lua_State *L) { return l_convert(L, 0); }

/* _image_normalize(t [..., C, H, W] contiguous float32, mean{}, std{}) in place */
static int l_normalize(lua_State *L) {
  ac_tensor *t = acL_checkf32(L, 1, "image.normalize", "image");
  if (t->ndim < 3) acL_error(L, "image.normalize: image must be [..., C, H, W], got %s", acL_shape(t));
  if (!ac_is_contiguous(t)) acL_error(L, "image.normalize: image must be contiguous (use :contiguous())");
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  const int cd = t->ndim - 3;
  const int c = (int)t->shape[cd];
  if (c > 64) acL_error(L, "image.normalize: at most 64 channels, got %d", c);
  float mean[64], sd[64];
  int nm = (int)acL_checkrange(L, luaL_len(L, 2), "image.normalize", "length of", "mean", 0, ACL_INT_MAX);
  int ns = (int)acL_checkrange(L, luaL_len(L, 3), "image.normalize", "length of", "std", 0, ACL_INT_MAX);
  if ((nm != 1 && nm != c) || (ns != 1 && ns != c))
    acL_error(L, "image.normalize: mean and std need 1 or %d values (image %s), got %d and %d", c, acL_shape(t), nm, ns);
  for (int k = 0; k < c; k++) {
    lua_geti(L, 2, nm == 1 ? 1 : k + 1);
    lua_geti(L, 3, ns == 1 ? 1 : k + 1);
    mean[k] = (float)luaL_checknumber(L, -2);
    sd[k] = (float)luaL_checknumber(L, -1);
    lua_pop(L, 2);
  }
  int64_t n = 1;
  for (int i = 0; i < cd; i++) n *= t->shape[i];
  ACL_CALL(L, "image.normalize", ac_image_normalize(ac_f32(t), n, c, t->shape[cd + 1] * t->shape[cd + 2], mean, sd));
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg image_funcs[] = {
    {"load", l_load},       {"decode", l_decode}, {"info", l_info},
    {"save", l_save},       {"resize", l_resize}, {"crop", l_crop},
    {"pad", l_pad},         {"to_grey", l_to_grey}, {"to_rgb", l_to_rgb},
    {"normalize", l_normalize}, {NULL, NULL}};

int ac_open_image(lua_State *L) {
  luaL_newlib(L, image_funcs);
  return 1;
}
