/*
 * plot.h - a small RGB raster canvas for figures: filled rectangles,
 * anti-aliased lines, polylines and discs, markers, text (stb_easy_font
 * glyphs scaled by any factor, optionally rotated a quarter turn), colour
 * maps, and PNG output written atomically.
 *
 * Coordinates are in pixels, x to the right, y down, (0, 0) the top-left
 * corner of the top-left pixel; a pixel's centre is at (i + 0.5, j + 0.5).
 * Colours are 0xRRGGBB; alpha in [0, 1] blends over what is there.
 *
 *   ac_canvas c;
 *   if (ac_canvas_init(&c, 640, 480, 0xFFFFFF, NULL)) puts(ac_error());
 *   ac_canvas_line(&c, 10, 10, 200, 100, 2.0, 0x1F77B4, 1.0f);
 *   ac_canvas_text(&c, 320, 20, "Title", 2.0, 0x000000, AC_ALIGN_CENTER, AC_ALIGN_TOP, 0);
 *   if (ac_canvas_write_png(&c, "out.png")) puts(ac_error());
 *   ac_canvas_free(&c);
 */
#ifndef AC_PLOT_H
#define AC_PLOT_H
#include <stdint.h>

typedef struct ac_canvas {
  int w, h;
  uint8_t *px;  /* w*h*3 bytes, row-major RGB */
  int owned;    /* 1: px was malloc'ed by ac_canvas_init */
} ac_canvas;

enum { AC_ALIGN_LEFT = 0, AC_ALIGN_CENTER = 1, AC_ALIGN_RIGHT = 2 };      /* horizontal */
enum { AC_ALIGN_TOP = 0, AC_ALIGN_MIDDLE = 1, AC_ALIGN_BOTTOM = 2 };      /* vertical */
enum { AC_MARKER_CIRCLE = 0, AC_MARKER_SQUARE = 1, AC_MARKER_TRIANGLE = 2, AC_MARKER_DIAMOND = 3 };

/* Sizes up to 16384 x 16384. mem: NULL to malloc, or a caller buffer of w*h*3 bytes. */
int ac_canvas_init(ac_canvas *c, int w, int h, uint32_t bg, uint8_t *mem);
void ac_canvas_free(ac_canvas *c);
void ac_canvas_clear(ac_canvas *c, uint32_t rgb);

/* Axis-aligned rectangle [x, x+w) x [y, y+h) with fractional edges anti-aliased. */
void ac_canvas_fill_rect(ac_canvas *c, double x, double y, double w, double h, uint32_t rgb, float alpha);
/* Rectangle outline of the given line width, drawn inside the rectangle. */
void ac_canvas_stroke_rect(ac_canvas *c, double x, double y, double w, double h, double width, uint32_t rgb,
                           float alpha);
/* Anti-aliased segment of the given width with round caps. */
int ac_canvas_line(ac_canvas *c, double x0, double y0, double x1, double y1, double width, uint32_t rgb,
                   float alpha);
/* n points xy[2i], xy[2i+1]; joins are covered once (no double blending). Points
 * with a non-finite coordinate break the line. Returns -1 only when out of memory. */
int ac_canvas_polyline(ac_canvas *c, const double *xy, int n, double width, uint32_t rgb, float alpha);
/* Filled anti-aliased disc. */
void ac_canvas_disc(ac_canvas *c, double cx, double cy, double r, uint32_t rgb, float alpha);
/* A marker of "radius" r with an outline (outline width 0: none). */
void ac_canvas_marker(ac_canvas *c, int shape, double cx, double cy, double r, uint32_t fill, uint32_t outline,
                      double outline_width, float alpha);

/* Text with stb_easy_font glyphs (printable ASCII; other bytes show as '?'),
 * `scale` pixels per font unit (glyph cap height is 7 units, line height 12).
 * (x, y) is the anchor, aligned by halign/valign (vertical alignment uses the
 * cap height, so digits and capitals centre exactly). rotate = 1 turns the
 * text a quarter turn counter-clockwise (reads bottom to top); the anchor and
 * alignment then refer to the rotated box. */
void ac_canvas_text(ac_canvas *c, double x, double y, const char *text, double scale, uint32_t rgb, int halign,
                    int valign, int rotate);
/* Width of the text in pixels at the given scale (the longest line). */
double ac_text_width(const char *text, double scale);
/* Height of the text in pixels at the given scale: cap height of one line plus 12 units per extra line. */
double ac_text_height(const char *text, double scale);

/* Colour maps: t in [0, 1] (clamped). Names: "viridis", "blues" (white to
 * dark blue), "greys", "magma". Returns -1 for an unknown name. */
int ac_colormap(const char *name, double t, uint32_t *rgb);
/* Categorical palette (tab10 then 10 more distinct colours), i >= 0 cycles. */
uint32_t ac_palette(int i);
/* Relative luminance in [0, 1] of a colour (sRGB weights). */
double ac_luminance(uint32_t rgb);

/* PNG through stb_image_write into memory, then written atomically. */
int ac_canvas_write_png(const ac_canvas *c, const char *path);

#endif
