/*
 * integral.h - the per-level images of the cascade detector (cascade.h):
 * 8-bit grey from an image tensor's planes, the bilinear 8-bit resize of the
 * image pyramid, and the integral images the features are summed from.
 *
 * The grey conversion and the resize use OpenCV's fixed-point arithmetic
 * (cvtColor RGB2GRAY with 15-bit weights; the bit-exact bilinear resize,
 * INTER_LINEAR_EXACT, that its cascade detector uses) so that the pyramid
 * levels equal those of cv::CascadeClassifier pixel for pixel
 * (tools/face_opencv_compare.py checks it).
 *
 * Integral images are (h + 1) x (w + 1), row stride w + 1, with a zero first
 * row and column. Sums are kept modulo 2^32: the difference of four corners
 * of any window of fewer than 2^31 / 255^2 pixels is exact once cast to
 * int32_t.
 *   sum(Y, X)    = sum of img(y, x) for y < Y, x < X
 *   sqsum(Y, X)  = the same of img(y, x)^2
 *   tilted(Y, X) = sum of img(y, x) for y < Y, |x - X + 1| <= Y - y - 1
 *                  (the 45-degree rotated integral; pixels outside are 0)
 */
#ifndef AC_FACE_INTEGRAL_H
#define AC_FACE_INTEGRAL_H
#include <stdint.h>

/* c float planes [c, h, w] in [0, 1] (c = 1, or >= 3: the first three are
 * R, G, B) -> grey[h * w]. Each value is first taken back to 8 bits
 * (round(v * 255), clamped), which is exact for decoded images. */
int ac_face_grey_f32(const float *img, int c, int h, int w, uint8_t *grey);
/* The same from 8-bit planes [c, h, w]. */
int ac_face_grey_u8(const uint8_t *img, int c, int h, int w, uint8_t *grey);

/* src (sh x sw) -> dst (dh x dw), bilinear with half-pixel centres and
 * edge replication. tmp must hold AC_FACE_RESIZE_TMP(dw, dh) ints. */
#define AC_FACE_RESIZE_TMP(dw, dh) (3 * (size_t)(dw) + 2 * (size_t)(dh) + 2)
void ac_face_resize_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int *tmp);

/* Integral images of img (h x w); sqsum and tilted may be NULL. tilted needs
 * a scratch row of 2 * (w + 1) uint32_t in tmp (NULL when tilted is NULL). */
void ac_face_integral(const uint8_t *img, int w, int h, uint32_t *sum, uint32_t *sqsum, uint32_t *tilted,
                      uint32_t *tmp);

#endif
