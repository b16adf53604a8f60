/*
 * annotate.c - boxes and labels drawn with the figure canvas (viz/plot.h)
 * straight onto a picture's pixels, and the frame conversions of annotate.h.
 */
#include "face/annotate.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "viz/plot.h"

void ac_face_annotate(uint8_t *rgb, int w, int h, const ac_face_mark *marks, int n) {
  ac_canvas cv;
  /* the canvas clears what it is given: draw on a copy of the picture */
  if (ac_canvas_init(&cv, w, h, 0, NULL)) return; /* sizes checked by the caller */
  memcpy(cv.px, rgb, (size_t)w * (size_t)h * 3);
  int side = w < h ? w : h;
  double lw = side / 250.0 < 2.0 ? 2.0 : side / 250.0;
  double scale = side / 400.0 < 1.5 ? 1.5 : side / 400.0;
  for (int i = 0; i < n; i++) {
    const ac_face_mark *m = &marks[i];
    double bw = lw < m->w / 8.0 ? lw : (m->w / 8.0 > 1 ? m->w / 8.0 : 1);
    ac_canvas_stroke_rect(&cv, m->x, m->y, m->w, m->h, bw, m->rgb, 1.0f);
    if (!m->label || !m->label[0]) continue;
    double tw = ac_text_width(m->label, scale), th = ac_text_height(m->label, scale);
    double pad = 2 * scale;
    double bx = m->x, by = m->y - th - 2 * pad;
    if (by < 0) by = m->y; /* no room above: inside the box's top */
    if (bx + tw + 2 * pad > w) bx = w - tw - 2 * pad;
    if (bx < 0) bx = 0;
    ac_canvas_fill_rect(&cv, bx, by, tw + 2 * pad, th + 2 * pad, m->rgb, 0.85f);
    uint32_t ink = ac_luminance(m->rgb) > 0.45 ? 0x000000 : 0xFFFFFF;
    ac_canvas_text(&cv, bx + pad, by + pad, m->label, scale, ink, AC_ALIGN_LEFT, AC_ALIGN_TOP, 0);
  }
  memcpy(rgb, cv.px, (size_t)w * (size_t)h * 3);
  ac_canvas_free(&cv);
}

static uint8_t u8(float v) {
  float s = v * 255.0f;
  if (!(s > 0.0f)) return 0;
  if (s >= 255.0f) return 255;
  return (uint8_t)lrintf(s);
}

void ac_face_chw_to_rgb24(const float *img, int c, int h, int w, uint8_t *rgb) {
  size_t n = (size_t)h * (size_t)w;
  for (size_t i = 0; i < n; i++) {
    for (int k = 0; k < 3; k++) rgb[3 * i + k] = u8(img[(c >= 3 ? (size_t)k * n : 0) + i]);
  }
}

void ac_face_rgb24_to_chw(const uint8_t *rgb, int h, int w, float *img) {
  size_t n = (size_t)h * (size_t)w;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) img[(size_t)k * n + i] = rgb[3 * i + k] * (1.0f / 255.0f);
}
