/*
 * lua_plot.c - bindings for the plot area: the Canvas userdata (pixels live
 * inside the userdata, so nothing can leak), colour helpers and t-SNE.
 *
 *   local core = require("adcorre.core")
 *   local cv = core._plot.canvas(640, 480, 0xFFFFFF)
 *   cv:line(10, 10, 200, 100, 0x1F77B4, 2)
 *   cv:text(320, 20, "Title", 2, 0x000000, "center", "top")
 *   cv:save("out.png")
 *
 * Colours are 0xRRGGBB integers, "#rrggbb" / "#rgb" strings or {r, g, b}
 * tables (0..255). Coordinates are pixels from the top-left corner.
 */
#include <math.h>
#include <string.h>

#include "lua/lua_util.h"
#include "viz/plot.h"
#include "core/random.h"
#include "viz/tsne.h"

#define CANVAS_MT "adcorre.Canvas"

typedef struct lcanvas {
  ac_canvas c;
  /* pixels follow */
} lcanvas;

static ac_canvas *check_canvas(lua_State *L, int idx) {
  lcanvas *u = luaL_checkudata(L, idx, CANVAS_MT);
  return &u->c;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static uint32_t check_color(lua_State *L, int idx, const char *fname) {
  int t = lua_type(L, idx);
  if (t == LUA_TNUMBER) {
    lua_Integer v;
    if (!lua_isinteger(L, idx)) {
      lua_Number n = lua_tonumber(L, idx);
      if (n != floor(n)) return (uint32_t)acL_error(L, "%s: colour must be an integer 0xRRGGBB, got %g", fname, n);
      v = (lua_Integer)n;
    } else {
      v = lua_tointeger(L, idx);
    }
    if (v < 0 || v > 0xFFFFFF)
      return (uint32_t)acL_error(L, "%s: colour 0x%llx out of range 0..0xFFFFFF", fname, (long long)v);
    return (uint32_t)v;
  }
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if ((n == 7 || n == 4) && s[0] == '#') {
      uint32_t v = 0;
      int ok = 1;
      for (size_t i = 1; i < n; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0) ok = 0;
        v = n == 7 ? (v << 4) | (uint32_t)(h & 15) : (v << 8) | (uint32_t)((h & 15) * 17);
      }
      if (ok) return v;
    }
    return (uint32_t)acL_error(L, "%s: colour string must be \"#rrggbb\" or \"#rgb\", got \"%s\"", fname, s);
  }
  if (t == LUA_TTABLE) {
    uint32_t v = 0;
    for (int i = 1; i <= 3; i++) {
      lua_rawgeti(L, idx, i);
      int isnum;
      lua_Number x = lua_tonumberx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum || x < 0 || x > 255)
        return (uint32_t)acL_error(L, "%s: colour table must be {r, g, b} with values 0..255", fname);
      v = (v << 8) | (uint32_t)lrint(x);
    }
    return v;
  }
  return (uint32_t)acL_error(L, "%s: expected a colour (0xRRGGBB, \"#rrggbb\" or {r,g,b}), got %s", fname,
                              luaL_typename(L, idx));
}

static float opt_alpha(lua_State *L, int idx, const char *fname) {
  lua_Number a = luaL_optnumber(L, idx, 1.0);
  if (!(a >= 0 && a <= 1)) return (float)acL_error(L, "%s: alpha must be in [0, 1], got %g", fname, a);
  return (float)a;
}

static double check_finite(lua_State *L, int idx, const char *fname, const char *what) {
  lua_Number v = luaL_checknumber(L, idx);
  if (!isfinite(v)) return acL_error(L, "%s: %s must be finite, got %g", fname, what, v);
  return v;
}

/* ======================================================================== */
/* canvas                                                                    */
/* ======================================================================== */

/* canvas(w, h [, bg]) */
static int l_canvas(lua_State *L) {
  lua_Integer w = luaL_checkinteger(L, 1), h = luaL_checkinteger(L, 2);
  uint32_t bg = lua_isnoneornil(L, 3) ? 0xFFFFFF : check_color(L, 3, "canvas");
  if (w < 1 || h < 1 || w > 16384 || h > 16384)
    return acL_error(L, "canvas: size %lldx%lld out of range (1..16384)", (long long)w, (long long)h);
  size_t px = (size_t)w * (size_t)h * 3;
  lcanvas *u = lua_newuserdatauv(L, sizeof(lcanvas) + px, 0);
  memset(&u->c, 0, sizeof u->c);
  if (ac_canvas_init(&u->c, (int)w, (int)h, bg, (uint8_t *)(u + 1))) return acL_kernel_error(L, "canvas");
  luaL_setmetatable(L, CANVAS_MT);
  return 1;
}

static int m_size(lua_State *L) {
  ac_canvas *c = check_canvas(L, 1);
  lua_pushinteger(L, c->w);
  lua_pushinteger(L, c->h);
  return 2;
}

static int m_clear(lua_State *L) {
  ac_canvas *c = check_canvas(L, 1);
  ac_canvas_clear(c, check_color(L, 2, "Canvas:clear"));
  lua_settop(L, 1);
  return 1;
}

/* cv:rect(x, y, w, h, color [, alpha]) */
static int m_rect(lua_State *L) {
  const char *fn = "Canvas:rect";
  ac_canvas *c = check_canvas(L, 1);
  double x = check_finite(L, 2, fn, "x"), y = check_finite(L, 3, fn, "y");
  double w = check_finite(L, 4, fn, "width"), h = check_finite(L, 5, fn, "height");
  uint32_t col = check_color(L, 6, fn);
  float a = opt_alpha(L, 7, fn);
  ac_canvas_fill_rect(c, x, y, w, h, col, a);
  lua_settop(L, 1);
  return 1;
}

/* cv:stroke_rect(x, y, w, h, line_width, color [, alpha]) */
static int m_stroke_rect(lua_State *L) {
  const char *fn = "Canvas:stroke_rect";
  ac_canvas *c = check_canvas(L, 1);
  double x = check_finite(L, 2, fn, "x"), y = check_finite(L, 3, fn, "y");
  double w = check_finite(L, 4, fn, "width"), h = check_finite(L, 5, fn, "height");
  double lw = check_finite(L, 6, fn, "line width");
  uint32_t col = check_color(L, 7, fn);
  float a = opt_alpha(L, 8, fn);
  if (lw > 0) ac_canvas_stroke_rect(c, x, y, w, h, lw, col, a);
  lua_settop(L, 1);
  return 1;
}

/* cv:line(x0, y0, x1, y1, color [, width [, alpha]]) */
static int m_line(lua_State *L) {
  const char *fn = "Canvas:line";
  ac_canvas *c = check_canvas(L, 1);
  double x0 = check_finite(L, 2, fn, "x0"), y0 = check_finite(L, 3, fn, "y0");
  double x1 = check_finite(L, 4, fn, "x1"), y1 = check_finite(L, 5, fn, "y1");
  uint32_t col = check_color(L, 6, fn);
  double w = luaL_optnumber(L, 7, 1.0);
  float a = opt_alpha(L, 8, fn);
  if (!(w > 0 && w < 1000)) return acL_error(L, "%s: width must be in (0, 1000), got %g", fn, w);
  ACL_CALL(L, fn, ac_canvas_line(c, x0, y0, x1, y1, w, col, a));
  lua_settop(L, 1);
  return 1;
}

/* cv:polyline(xs, ys, color [, width [, alpha]]): xs, ys Lua arrays of equal
 * length; a NaN value breaks the line into pieces. */
static int m_polyline(lua_State *L) {
  const char *fn = "Canvas:polyline";
  ac_canvas *c = check_canvas(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2), m = luaL_len(L, 3);
  if (n != m) return acL_error(L, "%s: %lld x values but %lld y values", fn, (long long)n, (long long)m);
  uint32_t col = check_color(L, 4, fn);
  double w = luaL_optnumber(L, 5, 1.0);
  float a = opt_alpha(L, 6, fn);
  if (!(w > 0 && w < 1000)) return acL_error(L, "%s: width must be in (0, 1000), got %g", fn, w);
  if (n > (1 << 26)) return acL_error(L, "%s: too many points (%lld)", fn, (long long)n);
  if (n == 0) {
    lua_settop(L, 1);
    return 1;
  }
  double *xy = lua_newuserdatauv(L, sizeof(double) * 2 * (size_t)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    for (int k = 0; k < 2; k++) {
      lua_rawgeti(L, 2 + k, i + 1);
      int isnum;
      lua_Number v = lua_tonumberx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum) return acL_error(L, "%s: %s[%lld] is not a number", fn, k ? "y" : "x", (long long)(i + 1));
      xy[2 * i + k] = v;
    }
  }
  ACL_CALL(L, fn, ac_canvas_polyline(c, xy, (int)n, w, col, a));
  lua_settop(L, 1);
  return 1;
}

static int check_shape(lua_State *L, int idx, const char *fn) {
  static const char *const names[] = {"circle", "square", "triangle", "diamond", NULL};
  if (lua_isnoneornil(L, idx)) return AC_MARKER_CIRCLE;
  const char *s = luaL_checkstring(L, idx);
  for (int i = 0; names[i]; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return acL_error(L, "%s: unknown marker '%s' (circle, square, triangle, diamond)", fn, s);
}

/* cv:marker(x, y, r, color [, shape [, outline_color [, outline_width [, alpha]]]]) */
static int m_marker(lua_State *L) {
  const char *fn = "Canvas:marker";
  ac_canvas *c = check_canvas(L, 1);
  double x = check_finite(L, 2, fn, "x"), y = check_finite(L, 3, fn, "y"), r = check_finite(L, 4, fn, "radius");
  uint32_t col = check_color(L, 5, fn);
  int shape = check_shape(L, 6, fn);
  uint32_t oc = lua_isnoneornil(L, 7) ? 0 : check_color(L, 7, fn);
  double ow = lua_isnoneornil(L, 7) ? 0 : luaL_optnumber(L, 8, 1.0);
  float a = opt_alpha(L, 9, fn);
  if (!(r >= 0 && r < 1000)) return acL_error(L, "%s: radius must be in [0, 1000), got %g", fn, r);
  ac_canvas_marker(c, shape, x, y, r, col, oc, ow, a);
  lua_settop(L, 1);
  return 1;
}

static int check_align(lua_State *L, int idx, const char *fn, int vertical) {
  if (lua_isnoneornil(L, idx)) return 0;
  const char *s = luaL_checkstring(L, idx);
  if (!vertical) {
    if (!strcmp(s, "left")) return AC_ALIGN_LEFT;
    if (!strcmp(s, "center")) return AC_ALIGN_CENTER;
    if (!strcmp(s, "right")) return AC_ALIGN_RIGHT;
    return acL_error(L, "%s: horizontal alignment must be left, center or right, got '%s'", fn, s);
  }
  if (!strcmp(s, "top")) return AC_ALIGN_TOP;
  if (!strcmp(s, "middle")) return AC_ALIGN_MIDDLE;
  if (!strcmp(s, "bottom")) return AC_ALIGN_BOTTOM;
  return acL_error(L, "%s: vertical alignment must be top, middle or bottom, got '%s'", fn, s);
}

/* cv:text(x, y, str [, scale [, color [, halign [, valign [, rotate]]]]]) */
static int m_text(lua_State *L) {
  const char *fn = "Canvas:text";
  ac_canvas *c = check_canvas(L, 1);
  double x = check_finite(L, 2, fn, "x"), y = check_finite(L, 3, fn, "y");
  const char *s = luaL_checkstring(L, 4);
  double scale = luaL_optnumber(L, 5, 1.0);
  uint32_t col = lua_isnoneornil(L, 6) ? 0 : check_color(L, 6, fn);
  int ha = check_align(L, 7, fn, 0), va = check_align(L, 8, fn, 1);
  int rot = lua_toboolean(L, 9);
  if (!(scale > 0 && scale <= 64)) return acL_error(L, "%s: scale must be in (0, 64], got %g", fn, scale);
  ac_canvas_text(c, x, y, s, scale, col, ha, va, rot);
  lua_settop(L, 1);
  return 1;
}

/* r, g, b = cv:pixel(x, y)  (0-based pixel indices) */
static int m_pixel(lua_State *L) {
  ac_canvas *c = check_canvas(L, 1);
  lua_Integer x = luaL_checkinteger(L, 2), y = luaL_checkinteger(L, 3);
  if (x < 0 || y < 0 || x >= c->w || y >= c->h)
    return acL_error(L, "Canvas:pixel: (%lld, %lld) outside the %dx%d canvas", (long long)x, (long long)y, c->w,
                      c->h);
  const uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
  lua_pushinteger(L, p[0]);
  lua_pushinteger(L, p[1]);
  lua_pushinteger(L, p[2]);
  return 3;
}

/* float32 [3, H, W] in [0, 1] */
static int m_to_tensor(lua_State *L) {
  ac_canvas *c = check_canvas(L, 1);
  int64_t shape[3] = {3, c->h, c->w};
  ac_tensor *t = acL_new(L, AC_F32, 3, shape);
  float *d = ac_f32(t);
  size_t n = (size_t)c->w * c->h;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) d[k * n + i] = c->px[3 * i + k] / 255.0f;
  return 1;
}

static int m_save(lua_State *L) {
  ac_canvas *c = check_canvas(L, 1);
  const char *path = luaL_checkstring(L, 2);
  if (ac_canvas_write_png(c, path)) return acL_error(L, "Canvas:save: %s", ac_error());
  lua_pushstring(L, path);
  return 1;
}

static int m_tostring(lua_State *L) {
  ac_canvas *c = check_canvas(L, 1);
  lua_pushfstring(L, "adcorre.Canvas %dx%d", c->w, c->h);
  return 1;
}

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static int l_text_size(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  double scale = luaL_optnumber(L, 2, 1.0);
  lua_pushnumber(L, ac_text_width(s, scale));
  lua_pushnumber(L, ac_text_height(s, scale));
  return 2;
}

static int l_colormap(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  double t = luaL_checknumber(L, 2);
  uint32_t rgb;
  if (ac_colormap(name, t, &rgb)) return acL_kernel_error(L, "colormap");
  lua_pushinteger(L, rgb);
  return 1;
}

static int l_palette(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 1);
  if (i < 1) return acL_error(L, "palette: index must be >= 1, got %lld", (long long)i);
  lua_pushinteger(L, ac_palette((int)((i - 1) % 1000000)));
  return 1;
}

static int l_luminance(lua_State *L) {
  lua_pushnumber(L, ac_luminance(check_color(L, 1, "luminance")));
  return 1;
}

/* ======================================================================== */
/* t-SNE                                                                     */
/* ======================================================================== */

/* Y, kl = tsne(X [N,D] float32, Y0 [N,dims] or nil, opts table). Private to
 * plot.tsne (lua/adcorre/plot.lua), which names the function in the
 * messages: these carry none. */
static int l_tsne(lua_State *L) {
  ac_tensor *x = acL_checkf32(L, 1, NULL, "X");
  ac_tensor *y0 = lua_isnoneornil(L, 2) ? NULL : acL_checkf32(L, 2, NULL, "init");
  luaL_checktype(L, 3, LUA_TTABLE);
  ac_tsne_opts o;
  ac_tsne_defaults(&o);
#define NUMOPT(field, key)                                        \
  lua_getfield(L, 3, key);                                        \
  if (!lua_isnil(L, -1)) o.field = luaL_checknumber(L, -1);       \
  lua_pop(L, 1);
#define INTOPT(field, key)                                        \
  lua_getfield(L, 3, key);                                        \
  if (!lua_isnil(L, -1))                                          \
    o.field = (int)acL_checkrange(L, luaL_checkinteger(L, -1), NULL, "option", key, ACL_INT_MIN, ACL_INT_MAX); \
  lua_pop(L, 1);
  NUMOPT(perplexity, "perplexity")
  NUMOPT(exaggeration, "exaggeration")
  NUMOPT(learning_rate, "learning_rate")
  INTOPT(iterations, "iterations")
  INTOPT(exaggeration_iterations, "exaggeration_iterations")
  INTOPT(dims, "dims")
#undef NUMOPT
#undef INTOPT
  lua_getfield(L, 3, "seed");
  uint64_t seed;
  if (lua_isnil(L, -1)) seed = ac_rng_next(ac_global_rng());
  else seed = (uint64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  o.seed = seed;

  if (x->ndim != 2) return acL_error(L, "X must be 2-d [N, D], got %s", acL_shape(x));
  int64_t n = x->shape[0], d = x->shape[1];
  if (ac_tsne_check(n, d, &o)) return acL_error(L, "%s", ac_error());
  if (y0 && (y0->ndim != 2 || y0->shape[0] != n || y0->shape[1] != o.dims))
    return acL_error(L, "init must be [%lld, %d], got %s", (long long)n, o.dims, acL_shape(y0));

  x = acL_contig(L, 1);
  if (y0) y0 = acL_contig(L, 2);
  int64_t yshape[2] = {n, o.dims};
  ac_tensor *y = acL_new(L, AC_F32, 2, yshape);
  if (y0) memcpy(ac_f32(y), ac_f32(y0), sizeof(float) * (size_t)(n * o.dims));
  double kl = 0;
  if (ac_tsne(ac_f32(x), (int)n, (int)d, ac_f32(y), y0 != NULL, &o, &kl)) return acL_error(L, "%s", ac_error());
  lua_pushnumber(L, kl);
  return 2;
}

/* P = tsne_affinities(X [N,D], perplexity) */
static int l_tsne_affinities(lua_State *L) {
  const char *fn = "tsne_affinities";
  ac_tensor *x = acL_checkf32(L, 1, fn, "X");
  double perp = luaL_checknumber(L, 2);
  if (x->ndim != 2) return acL_error(L, "%s: X must be 2-d [N, D], got %s", fn, acL_shape(x));
  if (x->shape[0] > AC_TSNE_MAX_POINTS)
    return acL_error(L, "%s: limited to %d points, got %lld", fn, AC_TSNE_MAX_POINTS, (long long)x->shape[0]);
  x = acL_contig(L, 1);
  int64_t shape[2] = {x->shape[0], x->shape[0]};
  ac_tensor *p = acL_new(L, AC_F32, 2, shape);
  ACL_CALL(L, fn, ac_tsne_affinities(ac_f32(x), (int)x->shape[0], (int)x->shape[1], perp, ac_f32(p)));
  return 1;
}

/* grad, kl = tsne_gradient(P [N,N], Y [N,dims] [, exaggeration]) */
static int l_tsne_gradient(lua_State *L) {
  const char *fn = "tsne_gradient";
  ac_tensor *p = acL_checkf32(L, 1, fn, "P");
  ac_tensor *y = acL_checkf32(L, 2, fn, "Y");
  double e = luaL_optnumber(L, 3, 1.0);
  if (y->ndim != 2 || p->ndim != 2 || p->shape[0] != y->shape[0] || p->shape[1] != y->shape[0])
    return acL_error(L, "%s: P must be [N, N] and Y [N, dims], got %s and %s", fn, acL_shape(p), acL_shape(y));
  if (y->shape[0] > AC_TSNE_MAX_POINTS) return acL_error(L, "%s: limited to %d points", fn, AC_TSNE_MAX_POINTS);
  p = acL_contig(L, 1);
  y = acL_contig(L, 2);
  ac_tensor *g = acL_new(L, AC_F32, 2, y->shape);
  double kl = 0;
  ACL_CALL(L, fn, ac_tsne_gradient(ac_f32(p), ac_f32(y), (int)y->shape[0], (int)y->shape[1], e, ac_f32(g), &kl));
  lua_pushnumber(L, kl);
  return 2;
}

static const luaL_Reg canvas_methods[] = {
    {"size", m_size},     {"clear", m_clear},   {"rect", m_rect},       {"stroke_rect", m_stroke_rect},
    {"line", m_line},     {"polyline", m_polyline}, {"marker", m_marker}, {"text", m_text},
    {"pixel", m_pixel},   {"to_tensor", m_to_tensor}, {"save", m_save},  {NULL, NULL}};

static const luaL_Reg funcs[] = {{"canvas", l_canvas},       {"text_size", l_text_size}, {"colormap", l_colormap},
                                 {"palette", l_palette},     {"luminance", l_luminance}, {"tsne", l_tsne},
                                 {"tsne_affinities", l_tsne_affinities}, {"tsne_gradient", l_tsne_gradient},
                                 {NULL, NULL}};

int ac_open_plot(lua_State *L) {
  if (luaL_newmetatable(L, CANVAS_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, canvas_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, m_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
