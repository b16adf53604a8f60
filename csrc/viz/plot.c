/*
 * plot.c - the raster canvas of plot.h: anti-aliased primitives computed by
 * exact pixel coverage (rectangles) or distance to the shape (lines, discs,
 * markers), text from stb_easy_font quads, colour maps, PNG output.
 *
 * stb_easy_font is a header of static functions; this is the one file that
 * includes it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop
#include <stb_image_write.h>

#include "io/fileio.h"
#include "viz/plot.h"
#include "core/tensor.h"

#define AC_CANVAS_MAX 16384

/* ======================================================================== */
/* canvas                                                                    */
/* ======================================================================== */

int ac_canvas_init(ac_canvas *c, int w, int h, uint32_t bg, uint8_t *mem) {
  memset(c, 0, sizeof *c);
  if (w < 1 || h < 1 || w > AC_CANVAS_MAX || h > AC_CANVAS_MAX)
    return ac_fail("canvas size %dx%d out of range (1..%d)", w, h, AC_CANVAS_MAX);
  if (mem) {
    c->px = mem;
  } else {
    c->px = malloc((size_t)w * h * 3);
    if (!c->px) return ac_fail("canvas %dx%d: out of memory", w, h);
    c->owned = 1;
  }
  c->w = w;
  c->h = h;
  ac_canvas_clear(c, bg);
  return 0;
}

void ac_canvas_free(ac_canvas *c) {
  if (c->owned) free(c->px);
  memset(c, 0, sizeof *c);
}

void ac_canvas_clear(ac_canvas *c, uint32_t rgb) {
  uint8_t r = (rgb >> 16) & 255, g = (rgb >> 8) & 255, b = rgb & 255;
  size_t n = (size_t)c->w * c->h;
  for (size_t i = 0; i < n; i++) {
    c->px[3 * i] = r;
    c->px[3 * i + 1] = g;
    c->px[3 * i + 2] = b;
  }
}

/* Blends colour rgb with coverage a (0..1) into pixel (x, y), which must be inside. */
static inline void blend(ac_canvas *c, int x, int y, uint32_t rgb, float a) {
  if (a <= 0.f) return;
  if (a > 1.f) a = 1.f;
  uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
  float r = (float)((rgb >> 16) & 255), g = (float)((rgb >> 8) & 255), b = (float)(rgb & 255);
  p[0] = (uint8_t)lrintf(p[0] + a * (r - p[0]));
  p[1] = (uint8_t)lrintf(p[1] + a * (g - p[1]));
  p[2] = (uint8_t)lrintf(p[2] + a * (b - p[2]));
}

/* Integer pixel range [*i0, *i1) covering [lo, hi) clipped to [0, n). Returns 0 when empty. */
static int clip_range(double lo, double hi, int n, int *i0, int *i1) {
  if (!(hi > lo)) return 0;
  double a = floor(lo), b = ceil(hi);
  if (a < 0) a = 0;
  if (b > n) b = n;
  if (b <= a) return 0;
  *i0 = (int)a;
  *i1 = (int)b;
  return 1;
}

static inline double overlap1(double lo, double hi, int i) {
  double a = lo > i ? lo : i, b = hi < i + 1 ? hi : i + 1;
  return b > a ? b - a : 0.0;
}

void ac_canvas_fill_rect(ac_canvas *c, double x, double y, double w, double h, uint32_t rgb, float alpha) {
  if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h)) return;
  int x0, x1, y0, y1;
  if (!clip_range(x, x + w, c->w, &x0, &x1) || !clip_range(y, y + h, c->h, &y0, &y1)) return;
  for (int j = y0; j < y1; j++) {
    double cy = overlap1(y, y + h, j);
    for (int i = x0; i < x1; i++) blend(c, i, j, rgb, (float)(cy * overlap1(x, x + w, i)) * alpha);
  }
}

void ac_canvas_stroke_rect(ac_canvas *c, double x, double y, double w, double h, double width, uint32_t rgb,
                           float alpha) {
  if (width * 2 >= w || width * 2 >= h) {
    ac_canvas_fill_rect(c, x, y, w, h, rgb, alpha);
    return;
  }
  ac_canvas_fill_rect(c, x, y, w, width, rgb, alpha);
  ac_canvas_fill_rect(c, x, y + h - width, w, width, rgb, alpha);
  ac_canvas_fill_rect(c, x, y + width, width, h - 2 * width, rgb, alpha);
  ac_canvas_fill_rect(c, x + w - width, y + width, width, h - 2 * width, rgb, alpha);
}

/* ======================================================================== */
/* lines                                                                     */
/* ======================================================================== */

/* Distance from (px, py) to the segment (x0,y0)-(x1,y1). */
static inline double seg_dist(double px, double py, double x0, double y0, double x1, double y1) {
  double dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy;
  double t = l2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / l2 : 0.0;
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  double ex = px - (x0 + t * dx), ey = py - (y0 + t * dy);
  return sqrt(ex * ex + ey * ey);
}

/* A coverage mask over a clipped pixel box; shapes combine with max (lines) or
 * a clamped sum (text quads) and the mask is blended once at the end. */
typedef struct mask {
  int x0, y0, w, h;
  float *m;
} mask;

static int mask_init(mask *k, const ac_canvas *c, double lx, double ly, double hx, double hy) {
  int x0, x1, y0, y1;
  k->m = NULL;
  k->w = k->h = 0;
  if (!clip_range(lx, hx, c->w, &x0, &x1) || !clip_range(ly, hy, c->h, &y0, &y1)) return 0;
  k->x0 = x0;
  k->y0 = y0;
  k->w = x1 - x0;
  k->h = y1 - y0;
  k->m = calloc((size_t)k->w * k->h, sizeof(float));
  if (!k->m) return ac_fail("canvas: out of memory for a %dx%d mask", k->w, k->h);
  return 0;
}

static void mask_blend(ac_canvas *c, mask *k, uint32_t rgb, float alpha) {
  for (int j = 0; j < k->h; j++)
    for (int i = 0; i < k->w; i++) {
      float a = k->m[(size_t)j * k->w + i];
      if (a > 0) blend(c, k->x0 + i, k->y0 + j, rgb, (a > 1 ? 1 : a) * alpha);
    }
  free(k->m);
  k->m = NULL;
}

static void mask_segment(mask *k, double x0, double y0, double x1, double y1, double hw) {
  double lx = fmin(x0, x1) - hw - 1, hx = fmax(x0, x1) + hw + 1;
  double ly = fmin(y0, y1) - hw - 1, hy = fmax(y0, y1) + hw + 1;
  int i0 = (int)floor(lx) - k->x0, i1 = (int)ceil(hx) - k->x0;
  int j0 = (int)floor(ly) - k->y0, j1 = (int)ceil(hy) - k->y0;
  if (i0 < 0) i0 = 0;
  if (j0 < 0) j0 = 0;
  if (i1 > k->w) i1 = k->w;
  if (j1 > k->h) j1 = k->h;
  for (int j = j0; j < j1; j++) {
    double py = k->y0 + j + 0.5;
    for (int i = i0; i < i1; i++) {
      double px = k->x0 + i + 0.5;
      double cov = hw + 0.5 - seg_dist(px, py, x0, y0, x1, y1);
      if (cov <= 0) continue;
      if (cov > 1) cov = 1;
      float *m = &k->m[(size_t)j * k->w + i];
      if (cov > *m) *m = (float)cov;
    }
  }
}

int ac_canvas_polyline(ac_canvas *c, const double *xy, int n, double width, uint32_t rgb, float alpha) {
  if (n < 1 || !(width > 0)) return 0;
  /* Lines thinner than a pixel are drawn one pixel wide and fainter. */
  if (width < 1) {
    alpha *= (float)width;
    width = 1;
  }
  double hw = width / 2;
  double lx = INFINITY, ly = INFINITY, hx = -INFINITY, hy = -INFINITY;
  for (int i = 0; i < n; i++) {
    double x = xy[2 * i], y = xy[2 * i + 1];
    if (!isfinite(x) || !isfinite(y)) continue;
    lx = fmin(lx, x);
    hx = fmax(hx, x);
    ly = fmin(ly, y);
    hy = fmax(hy, y);
  }
  if (!(hx >= lx)) return 0;
  mask k;
  if (mask_init(&k, c, lx - hw - 1, ly - hw - 1, hx + hw + 1, hy + hw + 1)) return -1;
  if (!k.m) return 0;
  for (int i = 0; i < n; i++) {
    double x0 = xy[2 * i], y0 = xy[2 * i + 1];
    if (!isfinite(x0) || !isfinite(y0)) continue;
    if (i + 1 < n && isfinite(xy[2 * i + 2]) && isfinite(xy[2 * i + 3]))
      mask_segment(&k, x0, y0, xy[2 * i + 2], xy[2 * i + 3], hw);
    else if (i == 0 || !isfinite(xy[2 * i - 2]) || !isfinite(xy[2 * i - 1]))
      mask_segment(&k, x0, y0, x0, y0, hw); /* isolated point: a dot */
  }
  mask_blend(c, &k, rgb, alpha);
  return 0;
}

int ac_canvas_line(ac_canvas *c, double x0, double y0, double x1, double y1, double width, uint32_t rgb,
                   float alpha) {
  double xy[4] = {x0, y0, x1, y1};
  return ac_canvas_polyline(c, xy, 2, width, rgb, alpha);
}

/* ======================================================================== */
/* discs and markers                                                         */
/* ======================================================================== */

/* Signed distance (negative inside) from (px, py) to a marker centred at the origin. */
static double marker_sdf(int shape, double px, double py, double r) {
  switch (shape) {
  case AC_MARKER_SQUARE: {
    double s = r * 0.886; /* same area as the disc */
    double dx = fabs(px) - s, dy = fabs(py) - s;
    double ox = dx > 0 ? dx : 0, oy = dy > 0 ? dy : 0;
    return sqrt(ox * ox + oy * oy) + fmin(fmax(dx, dy), 0.0);
  }
  case AC_MARKER_DIAMOND: {
    double s = r * 1.25;
    return (fabs(px) + fabs(py) - s) * 0.70710678;
  }
  case AC_MARKER_TRIANGLE: {
    /* equilateral, pointing up, circumradius 1.3 r, centroid at the origin */
    double R = r * 1.3, k = sqrt(3.0);
    double x = fabs(px) / R, y = py / R;
    /* edges: bottom y = 0.5; right edge through the apex (0,-1) and (k/2, 0.5) */
    double d1 = y - 0.5;
    double d2 = (k * x - y - 1.0) / 2.0; /* outward unit normal (k/2, -1/2) */
    return fmax(d1, d2) * R;
  }
  default:
    return sqrt(px * px + py * py) - r;
  }
}

void ac_canvas_marker(ac_canvas *c, int shape, double cx, double cy, double r, uint32_t fill, uint32_t outline,
                      double outline_width, float alpha) {
  if (!isfinite(cx) || !isfinite(cy) || !(r > 0)) return;
  double ext = r * 1.8 + outline_width + 1;
  int x0, x1, y0, y1;
  if (!clip_range(cx - ext, cx + ext, c->w, &x0, &x1) || !clip_range(cy - ext, cy + ext, c->h, &y0, &y1)) return;
  for (int j = y0; j < y1; j++)
    for (int i = x0; i < x1; i++) {
      double d = marker_sdf(shape, i + 0.5 - cx, j + 0.5 - cy, r);
      double cov = 0.5 - d; /* coverage of the fill */
      if (outline_width > 0) {
        double cov_out = 0.5 - d + outline_width / 2;     /* shape grown by half the outline */
        double cov_in = 0.5 - d - outline_width / 2;      /* fill area inside the outline */
        if (cov_out > 0) blend(c, i, j, outline, (float)fmin(cov_out, 1.0) * alpha);
        if (cov_in > 0) blend(c, i, j, fill, (float)fmin(cov_in, 1.0) * alpha);
      } else if (cov > 0) {
        blend(c, i, j, fill, (float)fmin(cov, 1.0) * alpha);
      }
    }
}

void ac_canvas_disc(ac_canvas *c, double cx, double cy, double r, uint32_t rgb, float alpha) {
  ac_canvas_marker(c, AC_MARKER_CIRCLE, cx, cy, r, rgb, 0, 0, alpha);
}

/* ======================================================================== */
/* text                                                                      */
/* ======================================================================== */

#define FONT_CAP 7.0
#define FONT_LINE 12.0

static char font_char(unsigned char ch) { return (ch >= 32 && ch < 127) ? (char)ch : '?'; }

static double font_advance(char ch) {
  char s[2] = {ch, 0};
  return stb_easy_font_width(s);
}

double ac_text_width(const char *text, double scale) {
  double best = 0, cur = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p == '\n') {
      best = fmax(best, cur);
      cur = 0;
      continue;
    }
    cur += font_advance(font_char(*p));
  }
  best = fmax(best, cur);
  /* the last column of every glyph advance is spacing */
  return best > 0 ? (best - 1) * scale : 0;
}

double ac_text_height(const char *text, double scale) {
  int lines = 1;
  for (const char *p = text; *p; p++)
    if (*p == '\n') lines++;
  return (FONT_CAP + FONT_LINE * (lines - 1)) * scale;
}

/* Adds coverage of the rectangle [x, x+w) x [y, y+h) to the mask (clamped sum). */
static void mask_rect_add(mask *k, double x, double y, double w, double h) {
  int i0, i1, j0, j1;
  if (!clip_range(x - k->x0, x + w - k->x0, k->w, &i0, &i1)) return;
  if (!clip_range(y - k->y0, y + h - k->y0, k->h, &j0, &j1)) return;
  double lx = x - k->x0, ly = y - k->y0;
  for (int j = j0; j < j1; j++) {
    double cy = overlap1(ly, ly + h, j);
    for (int i = i0; i < i1; i++) {
      float *m = &k->m[(size_t)j * k->w + i];
      *m += (float)(cy * overlap1(lx, lx + w, i));
    }
  }
}

void ac_canvas_text(ac_canvas *c, double x, double y, const char *text, double scale, uint32_t rgb, int halign,
                    int valign, int rotate) {
  if (!text || !*text || !(scale > 0) || !isfinite(x) || !isfinite(y)) return;
  double W = ac_text_width(text, scale), H = ac_text_height(text, scale);
  double bw = rotate ? H : W, bh = rotate ? W : H; /* box on screen */
  double left = x - halign * bw / 2, top = y - valign * bh / 2;
  double ext = 3 * scale; /* descenders and the last glyph column */
  mask k;
  if (mask_init(&k, c, left - ext, top - ext, left + bw + ext, top + bh + ext)) return;
  if (!k.m) return;
  /* pen in font units along the text (u) and down the lines (v) */
  double pu = 0, pv = 0;
  char vbuf[64 * 48];
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p == '\n') {
      pu = 0;
      pv += FONT_LINE;
      continue;
    }
    char s[2] = {font_char(*p), 0};
    int nq = stb_easy_font_print(0, 0, s, NULL, vbuf, (int)sizeof vbuf);
    for (int q = 0; q < nq; q++) {
      const float *v0 = (const float *)(vbuf + q * 64);      /* corner 0: x, y */
      const float *v2 = (const float *)(vbuf + q * 64 + 32); /* corner 2: x + w, y + h */
      double u0 = pu + v0[0], u1 = pu + v2[0], w0 = pv + v0[1], w1 = pv + v2[1];
      if (!rotate) {
        mask_rect_add(&k, left + u0 * scale, top + w0 * scale, (u1 - u0) * scale, (w1 - w0) * scale);
      } else {
        /* quarter turn counter-clockwise: screen x = left + v, screen y = bottom - u */
        double bottom = top + bh;
        mask_rect_add(&k, left + w0 * scale, bottom - u1 * scale, (w1 - w0) * scale, (u1 - u0) * scale);
      }
    }
    pu += font_advance(s[0]);
  }
  mask_blend(c, &k, rgb, 1.0f);
}

/* ======================================================================== */
/* colours                                                                   */
/* ======================================================================== */

static const uint32_t viridis[] = {0x440154, 0x482475, 0x414487, 0x355F8D, 0x2A788E, 0x21918C,
                                   0x22A884, 0x44BF70, 0x7AD151, 0xBDDF26, 0xFDE725};
static const uint32_t magma[] = {0x000004, 0x140E36, 0x3B0F70, 0x641A80, 0x8C2981, 0xB73779,
                                 0xDE4968, 0xF7705C, 0xFE9F6D, 0xFECF92, 0xFCFDBF};
static const uint32_t blues[] = {0xF7FBFF, 0xDEEBF7, 0xC6DBEF, 0x9ECAE1, 0x6BAED6,
                                 0x4292C6, 0x2171B5, 0x08519C, 0x08306B};
static const uint32_t greys[] = {0xFFFFFF, 0x000000};

static uint32_t lerp_map(const uint32_t *m, int n, double t) {
  if (!(t >= 0)) t = 0; /* also NaN */
  if (t > 1) t = 1;
  double f = t * (n - 1);
  int i = (int)floor(f);
  if (i >= n - 1) return m[n - 1];
  double a = f - i;
  uint32_t out = 0;
  for (int s = 16; s >= 0; s -= 8) {
    double v0 = (m[i] >> s) & 255, v1 = (m[i + 1] >> s) & 255;
    out |= (uint32_t)lrint(v0 + a * (v1 - v0)) << s;
  }
  return out;
}

int ac_colormap(const char *name, double t, uint32_t *rgb) {
#define MAP(str, arr) if (strcmp(name, str) == 0) { *rgb = lerp_map(arr, (int)(sizeof arr / sizeof arr[0]), t); return 0; }
  MAP("viridis", viridis)
  MAP("magma", magma)
  MAP("blues", blues)
  MAP("greys", greys)
#undef MAP
  return ac_fail("unknown colour map '%s' (viridis, magma, blues, greys)", name);
}

static const uint32_t palette[] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD, 0x8C564B, 0xE377C2,
                                   0x7F7F7F, 0xBCBD22, 0x17BECF, 0xAEC7E8, 0xFFBB78, 0x98DF8A, 0xFF9896,
                                   0xC5B0D5, 0xC49C94, 0xF7B6D2, 0xC7C7C7, 0xDBDB8D, 0x9EDAE5};

uint32_t ac_palette(int i) {
  int n = (int)(sizeof palette / sizeof palette[0]);
  if (i < 0) i = -i;
  return palette[i % n];
}

double ac_luminance(uint32_t rgb) {
  return (0.2126 * ((rgb >> 16) & 255) + 0.7152 * ((rgb >> 8) & 255) + 0.0722 * (rgb & 255)) / 255.0;
}

/* ======================================================================== */
/* PNG                                                                       */
/* ======================================================================== */

typedef struct membuf {
  unsigned char *data;
  size_t len, cap;
  int oom;
} membuf;

static void membuf_write(void *ctx, void *data, int size) {
  membuf *b = ctx;
  if (b->oom || size <= 0) return;
  if (b->len + (size_t)size > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + (size_t)size) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
      b->oom = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, (size_t)size);
  b->len += (size_t)size;
}

int ac_canvas_write_png(const ac_canvas *c, const char *path) {
  membuf b = {0};
  int ok = stbi_write_png_to_func(membuf_write, &b, c->w, c->h, 3, c->px, c->w * 3);
  if (!ok || b.oom) {
    free(b.data);
    return ac_fail("%s: PNG encoding of a %dx%d image failed%s", path, c->w, c->h, b.oom ? " (out of memory)" : "");
  }
  int rc = ac_write_file_atomic(path, b.data, b.len);
  free(b.data);
  return rc;
}
