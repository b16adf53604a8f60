/*
 * image.h - image kernels on plain arrays: decoding (JPEG with libjpeg-turbo,
 * PNG with libpng, PNM with pnm.c; BMP, TGA, GIF first frame with stb_image)
 * into 8-bit pixels, conversion to float
 * C x H x W planes in [0, 1], encoding PNG / JPEG (stb_image_write, written
 * to a temporary name then renamed), resizing (bilinear when enlarging, area
 * averaging when shrinking, chosen per axis), crop, pad, RGB <-> grey and
 * per-channel normalisation.
 *
 * Layouts: "HWC u8" is what decoders produce (rows of interleaved channels);
 * "CHW f32" is what the rest of the library uses (one plane per channel).
 *
 *   uint8_t *px; int w, h, c;
 *   if (ac_image_decode_file("face.jpg", 1, &px, &w, &h, &c)) puts(ac_error());
 *   float *img = malloc(sizeof(float) * c * h * w);
 *   ac_image_u8hwc_to_chw(px, h, w, c, c, img);       // c planes in [0, 1]
 *   ac_image_free(px);
 *
 * All functions return 0 on success and -1 after ac_fail() on bad input.
 */
#ifndef AC_IMAGE_H
#define AC_IMAGE_H
#include <stddef.h>
#include <stdint.h>

/* ---- decode ------------------------------------------------------------- */
/* Decodes a file / a memory buffer into interleaved 8-bit pixels (HWC) with
 * `req_c` channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; 0 = as stored).
 * *c receives the channel count of the returned buffer. Free with
 * ac_image_free. Errors name the file (a buffer in memory is "<memory>")
 * and the decoder's reason, as printable text. Images of more than
 * AC_IMAGE_MAX_BYTES (2 GiB) of pixels are refused before allocating. */
int ac_image_decode_file(const char *path, int req_c, uint8_t **px, int *w, int *h, int *c);
int ac_image_decode_mem(const uint8_t *buf, size_t len, int req_c, uint8_t **px, int *w, int *h, int *c);
/* Decodes an encoded file held in memory, naming it `name` in errors. A JPEG
 * is decoded at the smallest DCT scale n/8 (n = 1..8) whose size is at least
 * min_w x min_h (libjpeg-turbo's scaled IDCT: much faster than decoding the
 * whole image and shrinking it); 0, 0 or any other format: full size. */
int ac_image_decode_named(const char *name, const uint8_t *buf, size_t len, int req_c, int min_w, int min_h,
                          uint8_t **px, int *w, int *h, int *c);
void ac_image_free(uint8_t *px);
/* Width, height and stored channels without decoding the pixels. */
int ac_image_info_file(const char *path, int *w, int *h, int *c);
int ac_image_info_named(const char *name, const uint8_t *buf, size_t len, int *w, int *h, int *c);
/* Reads a whole file (malloc'ed) with the decoders' error message
 * "<path>: cannot open (<reason>)". */
int ac_image_read_file(const char *path, uint8_t **buf, size_t *len);

/* HWC u8 with `c` channels -> CHW f32 in [0,1] with `oc` channels (1 or 3;
 * or oc == c). 3/4 -> 1 uses ITU-R BT.601 luma; 1/2 -> 3 replicates grey;
 * alpha is dropped. */
int ac_image_u8hwc_to_chw(const uint8_t *src, int h, int w, int c, int oc, float *dst);
/* Same from float HWC data (values kept as they are). */
int ac_image_f32hwc_to_chw(const float *src, int h, int w, int c, int oc, float *dst);

/* ---- encode ------------------------------------------------------------- */
/* Writes CHW f32 (values clamped to [0,1], c = 1, 3 or 4) as PNG or JPEG
 * (chosen by `format`: "png" / "jpg"; quality 1..100 for JPEG). The file is
 * written under a temporary name in the same folder, then renamed. */
int ac_image_save(const char *path, const char *format, const float *img, int c, int h, int w, int quality);

/* ---- geometry ----------------------------------------------------------- */
/* Resizes each of the c planes from h x w to oh x ow. Per axis: bilinear with
 * half-pixel centres (PyTorch align_corners=False) when the size grows or
 * stays, area averaging (exact box overlap) when it shrinks. */
int ac_image_resize(const float *src, int c, int h, int w, float *dst, int oh, int ow);
/* dst (c x ch x cw) = src window at rows y.., cols x..; parts outside the
 * source are filled with `fill`. */
int ac_image_crop(const float *src, int c, int h, int w, int y, int x, int ch, int cw,
                  float fill, float *dst);
/* Border modes shared with augment.c. */
enum { AC_BORDER_CONSTANT = 0, AC_BORDER_REPLICATE = 1, AC_BORDER_REFLECT = 2 };
/* dst (c x (h+top+bottom) x (w+left+right)); new pixels by `mode`. */
int ac_image_pad(const float *src, int c, int h, int w, int top, int bottom, int left, int right,
                 int mode, float fill, float *dst);
/* Maps a coordinate outside [0, n) into it (replicate / reflect-101 style
 * mirror without repeating the edge). Returns -1 for constant mode. */
int ac_border_index(int i, int n, int mode);

/* ---- colour ------------------------------------------------------------- */
/* 3 planes -> 1 plane (BT.601: 0.299 R + 0.587 G + 0.114 B). */
void ac_image_rgb_to_grey(const float *src, int h, int w, float *dst);
/* 1 plane -> 3 identical planes. */
void ac_image_grey_to_rgb(const float *src, int h, int w, float *dst);
/* In place: plane k = (plane k - mean[k]) / std[k]; std must be non-zero. */
int ac_image_normalize(float *img, int64_t n, int c, int64_t hw, const float *mean, const float *std);

#endif
