/*
 * annotate.h - drawing detected faces onto a picture (a box in a colour per
 * class and a filled label above it with the class and probability, text in
 * black or white by the colour's luminance), and the conversions between
 * the library's float [C, H, W] images and the interleaved 8-bit RGB frames
 * that video pipes carry.
 */
#ifndef AC_FACE_ANNOTATE_H
#define AC_FACE_ANNOTATE_H
#include <stdint.h>

typedef struct ac_face_mark {
  int x, y, w, h;      /* box in pixels, 0-based top-left */
  uint32_t rgb;        /* 0xRRGGBB */
  const char *label;   /* printable ASCII (others show as '?'); NULL: none */
} ac_face_mark;

/* Draws marks on rgb[h * w * 3] (row-major RGB); line width and text size
 * grow with the picture. Boxes may reach outside the picture (clipped).
 * Nothing is drawn when memory for the canvas cannot be had. */
void ac_face_annotate(uint8_t *rgb, int w, int h, const ac_face_mark *marks, int n);

/* float [c, h, w] in [0, 1] (c = 1 or 3, clamped) -> rgb[h * w * 3]. */
void ac_face_chw_to_rgb24(const float *img, int c, int h, int w, uint8_t *rgb);
/* rgb[h * w * 3] -> float [3, h, w] in [0, 1]. */
void ac_face_rgb24_to_chw(const uint8_t *rgb, int h, int w, float *img);

#endif
