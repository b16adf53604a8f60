/*
 * lua_face.c - thin bindings for the face detector (csrc/face/): cascades
 * built from the arrays that lua/adcorre/face/cascade_xml.lua reads out of an
 * OpenCV cascade XML, detection on an image tensor, and the detector's
 * intermediate images (grey, pyramid resize, integral images) for the
 * comparisons with OpenCV. The user-facing functions are in
 * lua/adcorre/face.lua.
 */
#include <stdlib.h>
#include <string.h>

#include "face/annotate.h"
#include "face/cascade.h"
#include "face/group.h"
#include "face/integral.h"
#include "lua/lua_util.h"

#define CASCADE_MT "adcorre.Cascade"

typedef struct {
  ac_cascade *c;
} cascade_box;

static int cascade_gc(lua_State *L) {
  cascade_box *b = luaL_checkudata(L, 1, CASCADE_MT);
  ac_cascade_free(b->c);
  b->c = NULL;
  return 0;
}

static ac_cascade *check_cascade(lua_State *L, int idx) {
  cascade_box *b = luaL_checkudata(L, idx, CASCADE_MT);
  if (!b->c) acL_error(L, "face: the cascade was closed");
  return b->c;
}

/* A scratch buffer owned by a userdata on the stack (freed by Lua's GC even
 * when an error is raised before the end of the call). */
static void *scratch(lua_State *L, size_t nbytes) {
  void *p = lua_newuserdatauv(L, nbytes ? nbytes : 1, 0);
  memset(p, 0, nbytes ? nbytes : 1);
  return p;
}

/* Length of the array field `name` of the table at idx (pushed nothing). */
static int field_len(lua_State *L, int idx, const char *name) {
  if (lua_getfield(L, idx, name) != LUA_TTABLE) acL_error(L, "face.cascade: field '%s' must be an array", name);
  lua_Integer n = luaL_len(L, -1);
  lua_pop(L, 1);
  if (n < 0 || n > 100000000) acL_error(L, "face.cascade: field '%s' has %lld entries", name, (long long)n);
  return (int)n;
}

/* Copies the numbers of array field `name` (n of them) into a scratch buffer. */
static double *field_doubles(lua_State *L, int idx, const char *name, int n) {
  int have = field_len(L, idx, name);
  if (have != n) acL_error(L, "face.cascade: field '%s' has %d entries, %d expected", name, have, n);
  double *out = scratch(L, sizeof(double) * (size_t)n);
  int top = lua_gettop(L);
  lua_getfield(L, idx, name);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    int ok;
    out[i] = lua_tonumberx(L, -1, &ok);
    if (!ok) acL_error(L, "face.cascade: field '%s' entry %d is not a number", name, i + 1);
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return out;
}

static int *field_ints(lua_State *L, int idx, const char *name, int n) {
  int have = field_len(L, idx, name);
  if (have != n) acL_error(L, "face.cascade: field '%s' has %d entries, %d expected", name, have, n);
  int *out = scratch(L, sizeof(int) * (size_t)n);
  int top = lua_gettop(L);
  lua_getfield(L, idx, name);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < -2147483648LL || v > 2147483647LL)
      acL_error(L, "face.cascade: field '%s' entry %d is not a 32-bit integer", name, i + 1);
    out[i] = (int)v;
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return out;
}

static int intfield(lua_State *L, int idx, const char *name) {
  lua_getfield(L, idx, name);
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) acL_error(L, "face.cascade: field '%s' must be an integer", name);
  lua_pop(L, 1);
  return (int)acL_checkrange(L, v, "face.cascade", "field", name, ACL_INT_MIN, ACL_INT_MAX);
}

/* cascade(spec) -> cascade userdata; spec as ac_cascade_spec with arrays. */
static int l_cascade(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  ac_cascade_spec s;
  memset(&s, 0, sizeof s);
  lua_getfield(L, 1, "type");
  const char *type = lua_tostring(L, -1);
  if (!type || (strcmp(type, "haar") && strcmp(type, "lbp")))
    acL_error(L, "face.cascade: type must be \"haar\" or \"lbp\", got %s", type ? type : luaL_typename(L, -1));
  s.type = strcmp(type, "haar") == 0 ? AC_CASCADE_HAAR : AC_CASCADE_LBP;
  lua_pop(L, 1);
  s.win_w = intfield(L, 1, "width");
  s.win_h = intfield(L, 1, "height");
  s.nstages = field_len(L, 1, "stage_threshold");
  s.ntrees = field_len(L, 1, "tree_nodes");
  s.nnodes = field_len(L, 1, "node_feature");
  s.nfeatures = field_len(L, 1, s.type == AC_CASCADE_HAAR ? "tilted" : "rects");
  if (s.type == AC_CASCADE_LBP) s.nfeatures /= 4;
  if (s.nstages < 1 || s.ntrees < 1 || s.nnodes < 1 || s.nfeatures < 1)
    acL_error(L, "face.cascade: %d stages, %d weak classifiers, %d nodes, %d features", s.nstages, s.ntrees, s.nnodes,
              s.nfeatures);
  s.stage_threshold = field_doubles(L, 1, "stage_threshold", s.nstages);
  s.stage_ntrees = field_ints(L, 1, "stage_ntrees", s.nstages);
  s.tree_nodes = field_ints(L, 1, "tree_nodes", s.ntrees);
  s.node_left = field_ints(L, 1, "node_left", s.nnodes);
  s.node_right = field_ints(L, 1, "node_right", s.nnodes);
  s.node_feature = field_ints(L, 1, "node_feature", s.nnodes);
  s.leaves = field_doubles(L, 1, "leaves", s.nnodes + s.ntrees);
  if (s.type == AC_CASCADE_HAAR) {
    s.node_threshold = field_doubles(L, 1, "node_threshold", s.nnodes);
    s.rects = field_doubles(L, 1, "rects", s.nfeatures * 15);
    s.tilted = field_ints(L, 1, "tilted", s.nfeatures);
  } else {
    s.node_subset = (const int32_t *)field_ints(L, 1, "node_subset", s.nnodes * 8);
    s.rects = field_doubles(L, 1, "rects", s.nfeatures * 4);
  }
  cascade_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->c = NULL;
  luaL_setmetatable(L, CASCADE_MT);
  ACL_CALL(L, "face.cascade", ac_cascade_new(&s, &b->c));
  return 1;
}

static int l_info(lua_State *L) {
  ac_cascade *c = check_cascade(L, 1);
  int type, w, h, n, tilted;
  ac_cascade_info(c, &type, &w, &h, &n, &tilted);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, type == AC_CASCADE_HAAR ? "haar" : "lbp");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, w);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, h);
  lua_setfield(L, -2, "height");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "stages");
  lua_pushboolean(L, tilted);
  lua_setfield(L, -2, "tilted");
  return 1;
}

/* The grey 8-bit pixels of an image argument: float32 or uint8, [C, H, W]
 * or [H, W]; pushed as a uint8 [H, W] tensor. */
static ac_tensor *grey_of(lua_State *L, int idx, const char *fname) {
  ac_tensor *t = acL_check(L, idx);
  int c, h, w;
  if (t->ndim == 2) c = 1, h = (int)t->shape[0], w = (int)t->shape[1];
  else if (t->ndim == 3) c = (int)t->shape[0], h = (int)t->shape[1], w = (int)t->shape[2];
  else acL_error(L, "%s: image must be [C, H, W] or [H, W], got %s", fname, acL_shape(t));
  if (c != 1 && c != 3 && c != 4)
    acL_error(L, "%s: image must have 1 (grey) or 3 (RGB) channels, got %s", fname, acL_shape(t));
  if (h < 1 || w < 1) acL_error(L, "%s: image is empty (%s)", fname, acL_shape(t));
  if (t->dtype != AC_F32 && t->dtype != AC_U8)
    acL_error(L, "%s: image must be float32 or uint8, got %s", fname, ac_dtype_name(t->dtype));
  ac_tensor *src = acL_contig(L, idx);
  int64_t shape[2] = {h, w};
  ac_tensor *g = acL_new(L, AC_U8, 2, shape);
  int rc = src->dtype == AC_F32 ? ac_face_grey_f32(ac_f32(src), c, h, w, ac_u8(g))
                                : ac_face_grey_u8(ac_u8(src), c, h, w, ac_u8(g));
  if (rc) acL_kernel_error(L, fname);
  return g;
}

static void push_rects(lua_State *L, const ac_rects *r) {
  lua_createtable(L, r->n, 0);
  for (int i = 0; i < r->n; i++) {
    const int *p = r->xywh + 4 * (size_t)i;
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, p[0]);
    lua_setfield(L, -2, "x");
    lua_pushinteger(L, p[1]);
    lua_setfield(L, -2, "y");
    lua_pushinteger(L, p[2]);
    lua_setfield(L, -2, "w");
    lua_pushinteger(L, p[3]);
    lua_setfield(L, -2, "h");
    lua_pushinteger(L, r->score[i]);
    lua_setfield(L, -2, "score");
    lua_rawseti(L, -2, i + 1);
  }
}

/* detect(cascade, img, scale, min_neighbors, min_w, min_h, max_w, max_h) -> boxes */
static int l_detect(lua_State *L) {
  ac_cascade *c = check_cascade(L, 1);
  double scale = luaL_checknumber(L, 3);
  lua_Integer mn = luaL_checkinteger(L, 4);
  lua_Integer minw = luaL_checkinteger(L, 5), minh = luaL_checkinteger(L, 6);
  lua_Integer maxw = luaL_checkinteger(L, 7), maxh = luaL_checkinteger(L, 8);
  if (!(scale > 1.0) || scale > 100.0) acL_error(L, "face.detect: scale must be in (1, 100], got %g", scale);
  if (mn < 0 || mn > 100000) acL_error(L, "face.detect: min_neighbors must be >= 0, got %lld", (long long)mn);
  if (minw < 0 || minh < 0 || maxw < 0 || maxh < 0 || minw > 1000000 || minh > 1000000 || maxw > 1000000 ||
      maxh > 1000000)
    acL_error(L, "face.detect: sizes must be in [0, 1000000]");
  ac_tensor *g = grey_of(L, 2, "face.detect");
  int h = (int)g->shape[0], w = (int)g->shape[1];
  ac_rects r = {0};
  int rc = ac_cascade_detect(c, ac_u8(g), w, h, scale, (int)minw, (int)minh, (int)maxw, (int)maxh, &r);
  if (rc == 0) rc = ac_rects_group(&r, (int)mn, 0.2);
  if (rc == 0) ac_rects_clip(&r, w, h);
  if (rc) {
    ac_rects_free(&r);
    return acL_kernel_error(L, "face.detect");
  }
  push_rects(L, &r); /* raises only when Lua is out of memory */
  ac_rects_free(&r);
  return 1;
}

/* grey(img) -> uint8 [H, W] as the detector sees the image */
static int l_grey(lua_State *L) {
  grey_of(L, 1, "face.grey");
  return 1;
}

static ac_tensor *check_u8_2d(lua_State *L, int idx, const char *fname) {
  ac_tensor *t = acL_check(L, idx);
  if (t->dtype != AC_U8 || t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1)
    acL_error(L, "%s: expects a uint8 [H, W] image, got %s %s", fname, ac_dtype_name(t->dtype), acL_shape(t));
  return acL_contig(L, idx);
}

/* resize(u8 [H, W], h, w) -> u8 [h, w], the pyramid's resize */
static int l_resize(lua_State *L) {
  ac_tensor *t = check_u8_2d(L, 1, "face.resize");
  lua_Integer oh = luaL_checkinteger(L, 2), ow = luaL_checkinteger(L, 3);
  if (oh < 1 || ow < 1 || oh > 100000 || ow > 100000)
    acL_error(L, "face.resize: size %lldx%lld out of range", (long long)oh, (long long)ow);
  int64_t shape[2] = {oh, ow};
  ac_tensor *o = acL_new(L, AC_U8, 2, shape);
  int *tmp = scratch(L, sizeof(int) * AC_FACE_RESIZE_TMP(ow, oh));
  ac_face_resize_u8(ac_u8(t), (int)t->shape[1], (int)t->shape[0], ac_u8(o), (int)ow, (int)oh, tmp);
  lua_pop(L, 1);
  return 1;
}

/* integral(u8 [H, W]) -> sum, sqsum, tilted as int64 [H+1, W+1] (exact) */
static int l_integral(lua_State *L) {
  ac_tensor *t = check_u8_2d(L, 1, "face.integral");
  int h = (int)t->shape[0], w = (int)t->shape[1];
  if ((int64_t)h * w > 16 * 1024 * 1024) acL_error(L, "face.integral: image too large for the exact check");
  size_t n = (size_t)(h + 1) * (size_t)(w + 1);
  uint32_t *buf = scratch(L, sizeof(uint32_t) * (3 * n + 2 * (size_t)(w + 1)));
  ac_face_integral(ac_u8(t), w, h, buf, buf + n, buf + 2 * n, buf + 3 * n);
  int64_t shape[2] = {h + 1, w + 1};
  for (int k = 0; k < 3; k++) {
    ac_tensor *o = acL_new(L, AC_I64, 2, shape);
    int64_t *d = ac_data(o);
    /* sums of 8-bit pixels of an image this size fit in 32 bits unsigned,
     * squares may wrap: callers compare modulo 2^32 */
    for (size_t i = 0; i < n; i++) d[i] = (int64_t)buf[k * n + i];
  }
  return 3;
}

/* An image argument as float [C, H, W] (C = 1 or 3; [H, W] is grey). */
static ac_tensor *check_f32_image(lua_State *L, int idx, const char *fname, int *c, int *h, int *w) {
  ac_tensor *t = acL_checkf32(L, idx, fname, "image");
  if (t->ndim == 2) *c = 1, *h = (int)t->shape[0], *w = (int)t->shape[1];
  else if (t->ndim == 3) *c = (int)t->shape[0], *h = (int)t->shape[1], *w = (int)t->shape[2];
  else acL_error(L, "%s: image must be [C, H, W] or [H, W], got %s", fname, acL_shape(t));
  if ((*c != 1 && *c != 3) || *h < 1 || *w < 1 || *h > 16384 || *w > 16384)
    acL_error(L, "%s: image must be 1 or 3 channels of at most 16384 x 16384, got %s", fname, acL_shape(t));
  return acL_contig(L, idx);
}

/* annotate(img, marks) -> new RGB [3, H, W]; marks = {{x, y, w, h, rgb, label}, ...} */
static int l_annotate(lua_State *L) {
  int c, h, w;
  ac_tensor *t = check_f32_image(L, 1, "face.annotate", &c, &h, &w);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer nl = luaL_len(L, 2);
  if (nl < 0 || nl > 100000) acL_error(L, "face.annotate: %lld marks", (long long)nl);
  int n = (int)nl;
  ac_face_mark *m = scratch(L, sizeof(ac_face_mark) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (!lua_istable(L, -1)) acL_error(L, "face.annotate: mark %d must be a table", i + 1);
    int v[5];
    for (int k = 0; k < 5; k++) {
      lua_rawgeti(L, -1, k + 1);
      int ok;
      lua_Integer x = lua_tointegerx(L, -1, &ok);
      if (!ok || x < -1000000 || x > 0xFFFFFF + 1) acL_error(L, "face.annotate: mark %d value %d is not an integer", i + 1, k + 1);
      v[k] = (int)x;
      lua_pop(L, 1);
    }
    m[i].x = v[0], m[i].y = v[1], m[i].w = v[2], m[i].h = v[3], m[i].rgb = (uint32_t)v[4] & 0xFFFFFF;
    lua_rawgeti(L, -1, 6);
    m[i].label = lua_tostring(L, -1); /* kept alive by the marks table */
    lua_pop(L, 2);
  }
  int64_t shape[3] = {3, h, w};
  uint8_t *rgb = scratch(L, (size_t)h * (size_t)w * 3);
  ac_face_chw_to_rgb24(ac_f32(t), c, h, w, rgb);
  ac_face_annotate(rgb, w, h, m, n);
  ac_tensor *o = acL_new(L, AC_F32, 3, shape);
  ac_face_rgb24_to_chw(rgb, h, w, ac_f32(o));
  return 1;
}

/* rgb24(img) -> string of H * W * 3 bytes (a raw video frame) */
static int l_rgb24(lua_State *L) {
  int c, h, w;
  ac_tensor *t = check_f32_image(L, 1, "face.rgb24", &c, &h, &w);
  luaL_Buffer b;
  uint8_t *p = (uint8_t *)luaL_buffinitsize(L, &b, (size_t)h * (size_t)w * 3);
  ac_face_chw_to_rgb24(ac_f32(t), c, h, w, p);
  luaL_pushresultsize(&b, (size_t)h * (size_t)w * 3);
  return 1;
}

/* from_rgb24(bytes, w, h) -> float [3, h, w] */
static int l_from_rgb24(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer w = luaL_checkinteger(L, 2), h = luaL_checkinteger(L, 3);
  if (w < 1 || h < 1 || w > 16384 || h > 16384 || (size_t)(w * h * 3) != len)
    acL_error(L, "face.from_rgb24: %zu bytes are not a %lldx%lld RGB frame", len, (long long)w, (long long)h);
  int64_t shape[3] = {3, h, w};
  ac_tensor *o = acL_new(L, AC_F32, 3, shape);
  ac_face_rgb24_to_chw((const uint8_t *)s, (int)h, (int)w, ac_f32(o));
  return 1;
}

static const luaL_Reg face_fns[] = {{"cascade", l_cascade}, {"info", l_info},         {"detect", l_detect},
                                    {"grey", l_grey},       {"resize", l_resize},     {"integral", l_integral},
                                    {"annotate", l_annotate}, {"rgb24", l_rgb24},     {"from_rgb24", l_from_rgb24},
                                    {NULL, NULL}};

int ac_open_face(lua_State *L) {
  if (luaL_newmetatable(L, CASCADE_MT)) {
    lua_pushcfunction(L, cascade_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cascade_gc);
    lua_setfield(L, -2, "__close");
    lua_pushstring(L, "adcorre.Cascade");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  luaL_newlib(L, face_fns);
  return 1;
}
