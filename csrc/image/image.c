/*
 * image.c - image decoding (JPEG through libjpeg-turbo, jpegdec.c; PNG, BMP,
 * TGA, GIF, PNM through the stb_image built into the library, stb_impl.c,
 * after the checks below) and encoding (stb_image_write from libstb), and
 * the plain float kernels of image.h: layout and
 * channel conversion, resize (bilinear up, area down), crop, pad, colour
 * conversion and normalisation.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "io/fileio.h"
#include "image/image.h"
#include "image/pnm.h"
#include "image/png.h"
#include "image/rastercheck.h"
#include "image/jpegdec.h"
#include "image/stb_impl.h"
#include "core/tensor.h"

#define JMSG_WHY 256 /* room for a decoder's reason */

/* ======================================================================== */
/* decode                                                                    */
/* ======================================================================== */

int ac_image_read_file(const char *path, uint8_t **buf, size_t *len) {
  if (ac_read_file(path, buf, len) == 0) return 0;
  if (errno == EINVAL) return -1; /* a special file: ac_open_regular named its kind */
  return ac_fail("%s: cannot open (%s)", path, strerror(errno));
}

/* Formats are told apart by their first bytes, here, not by the decoders.
 * A JPEG starts with the SOI marker FF D8, which may be preceded by 0xFF
 * fill bytes; it goes to libjpeg-turbo from the SOI on. Everything else
 * goes to stb_image, which is built without a JPEG decoder (stb_impl.c),
 * so no JPEG ever reaches stb_image 2.27's faulty Huffman code. */
static int jpeg_start(const uint8_t *b, size_t n, size_t *soi) {
  size_t s = 0;
  while (s + 1 < n && b[s] == 0xFF && b[s + 1] == 0xFF) s++;
  if (s + 1 >= n || b[s] != 0xFF || b[s + 1] != 0xD8) return 0;
  *soi = s;
  return 1;
}

/* Decoder messages are quoted in ours: anything but printable ASCII in them
 * becomes '?', so a message is always text whatever the file held. */
static const char *printable(const char *why, char *out, size_t n) {
  if (!why || !*why) return NULL;
  size_t i = 0;
  for (; why[i] && i + 1 < n; i++) out[i] = (why[i] >= 0x20 && why[i] < 0x7F) ? why[i] : '?';
  out[i] = 0;
  return out;
}

/* PNG: every chunk must fit in the file. stb_image 2.27 trusts a chunk's
 * length and reallocates that much for IDAT data before finding it missing
 * (an 85-byte file made it reserve 1.4 GB), and it applies an offset to a
 * NULL pointer on an empty IDAT chunk that comes before any image data
 * (undefined behaviour; such a chunk is legal but no encoder writes one
 * first, so it is refused). */
static int png_check(const char *name, const uint8_t *b, size_t n) {
  if (n < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return 0;
  size_t p = 8;
  int have_data = 0;
  while (p + 8 <= n) {
    const uint32_t L = (uint32_t)b[p] << 24 | (uint32_t)b[p + 1] << 16 | (uint32_t)b[p + 2] << 8 | b[p + 3];
    char type[5];
    for (int k = 0; k < 4; k++) {
      const uint8_t t = b[p + 4 + k];
      type[k] = (t >= 'A' && t <= 'Z') || (t >= 'a' && t <= 'z') ? (char)t : '?';
    }
    type[4] = 0;
    if (p == 8 && memcmp(type, "IHDR", 4) != 0) return 0; /* stb_image says "first not IHDR" */
    if (L > n - p - 8)
      return ac_fail("%s: cannot decode image (PNG chunk %s says %u bytes, the file has %zu left: truncated or corrupt)",
                     name, type, L, n - p - 8);
    if (memcmp(type, "IDAT", 4) == 0) {
      if (L == 0 && !have_data) return ac_fail("%s: cannot decode image (empty PNG IDAT chunk before the image data)", name);
      have_data |= L > 0;
    }
    if (memcmp(type, "IEND", 4) == 0) break;
    p += 12 + (size_t)L; /* length, type, data, CRC */
  }
  return 0;
}

/* n pixels of `from` channels -> `to` channels, with stb_image's rules
 * (grey = (77 R + 150 G + 29 B) >> 8, grey replicated, alpha 255 when
 * added, dropped when not asked for). NULL when out of memory. */
static uint8_t *convert_channels(const uint8_t *src, int64_t n, int from, int to) {
  uint8_t *dst = malloc((size_t)(n * to));
  if (!dst) return NULL;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *p = src + i * from;
    uint8_t *q = dst + i * to;
    const uint8_t y = from >= 3 ? (uint8_t)((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8) : p[0];
    const uint8_t a = (from == 2 || from == 4) ? p[from - 1] : 255;
    if (to <= 2) q[0] = y;
    else {
      q[0] = from >= 3 ? p[0] : y;
      q[1] = from >= 3 ? p[1] : y;
      q[2] = from >= 3 ? p[2] : y;
    }
    if (to == 2 || to == 4) q[to - 1] = a;
  }
  return dst;
}

static int decode(const char *name, const uint8_t *buf, size_t len, int req_c, int min_w, int min_h, uint8_t **px,
                  int *w, int *h, int *c) {
  if (req_c < 0 || req_c > 4) return ac_fail("%s: channels must be 0..4, got %d", name, req_c);
  if (len == 0) return ac_fail("%s: empty file", name);
  if (len > (size_t)INT32_MAX) return ac_fail("%s: file too large (%zu bytes)", name, len);
  char why[JMSG_WHY], pr[JMSG_WHY];
  size_t soi;
  if (jpeg_start(buf, len, &soi)) {
    if (ac_jpeg_decode(buf + soi, len - soi, req_c, min_w, min_h, px, w, h, c, why, sizeof why))
      return ac_fail("%s: %s", name, printable(why, pr, sizeof pr) ? pr : "corrupt JPEG");
    return 0;
  }
  /* PNM by its own decoder (pnm.c): stb_image 2.27 reads only P5/P6, takes
   * the low byte of 16-bit samples and does not rescale other maximum values.
   * PNG through libpng (png.c), which checks CRCs and the Adler-32 that
   * stb_image ignores. Both give the stored channels, converted here. */
  const int pnm = ac_pnm_is(buf, len), png = ac_png_is(buf, len);
  if (png && png_check(name, buf, len)) return -1;
  if (!pnm && !png && (ac_bmp_check(name, buf, len) || ac_tga_check(name, buf, len))) return -1;
  int iw = 0, ih = 0, ic = 0;
  const char *reason = NULL;
  uint8_t *p = NULL;
  if (pnm) {
    if (ac_pnm_decode(name, buf, len, &p, &iw, &ih, &ic)) return -1;
  } else if (png) {
    if (ac_png_decode(name, buf, len, AC_IMAGE_MAX_BYTES, &p, &iw, &ih, &ic)) return -1;
  } else {
    p = ac_stb_load(buf, (int)len, req_c, &iw, &ih, &ic, &reason);
  }
  if (p && (pnm || png) && req_c && req_c != ic && iw > 0 && ih > 0) {
    uint8_t *q = convert_channels(p, (int64_t)iw * ih, ic, req_c);
    free(p);
    if (!q) return ac_fail("%s: out of memory converting a %d x %d image to %d channels", name, iw, ih, req_c);
    p = q;
  }
  if (!p) {
    const char *r = printable(reason, pr, sizeof pr);
    return ac_fail("%s: cannot decode image (%s)", name, r ? r : "corrupt, truncated or unknown format");
  }
  if (iw <= 0 || ih <= 0) {
    free(p);
    return ac_fail("%s: image has no pixels (%d x %d)", name, iw, ih);
  }
  *px = p;
  *w = iw;
  *h = ih;
  *c = req_c ? req_c : ic;
  return 0;
}

int ac_image_decode_file(const char *path, int req_c, uint8_t **px, int *w, int *h, int *c) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (ac_image_read_file(path, &buf, &len)) return -1;
  int rc = decode(path, buf, len, req_c, 0, 0, px, w, h, c);
  free(buf);
  return rc;
}

int ac_image_decode_mem(const uint8_t *buf, size_t len, int req_c, uint8_t **px, int *w, int *h, int *c) {
  return decode("<memory>", buf, len, req_c, 0, 0, px, w, h, c);
}

int ac_image_decode_named(const char *name, const uint8_t *buf, size_t len, int req_c, int min_w, int min_h,
                          uint8_t **px, int *w, int *h, int *c) {
  return decode(name, buf, len, req_c, min_w, min_h, px, w, h, c);
}

void ac_image_free(uint8_t *px) { free(px); }

int ac_image_info_named(const char *name, const uint8_t *buf, size_t len, int *w, int *h, int *c) {
  if (len == 0 || len > (size_t)INT32_MAX) return ac_fail("%s: %s", name, len ? "file too large" : "empty file");
  char why[JMSG_WHY], pr[JMSG_WHY];
  size_t soi;
  if (jpeg_start(buf, len, &soi)) {
    if (ac_jpeg_info(buf + soi, len - soi, w, h, c, why, sizeof why))
      return ac_fail("%s: %s", name, printable(why, pr, sizeof pr) ? pr : "corrupt JPEG");
    return 0;
  }
  if (ac_pnm_is(buf, len)) {
    ac_pnm_header hd;
    if (ac_pnm_info(name, buf, len, &hd)) return -1;
    *w = hd.w;
    *h = hd.h;
    *c = hd.channels;
    return 0;
  }
  if (png_check(name, buf, len)) return -1;
  const char *reason = NULL;
  if (ac_stb_info(buf, (int)len, w, h, c, &reason)) {
    const char *r = printable(reason, pr, sizeof pr);
    return ac_fail("%s: not a readable image (%s)", name, r ? r : "unknown format");
  }
  return 0;
}

int ac_image_info_file(const char *path, int *w, int *h, int *c) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (ac_image_read_file(path, &buf, &len)) return -1;
  int rc = ac_image_info_named(path, buf, len, w, h, c);
  free(buf);
  return rc;
}

/* ======================================================================== */
/* layout / channel conversion                                              */
/* ======================================================================== */

#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

int ac_image_u8hwc_to_chw(const uint8_t *src, int h, int w, int c, int oc, float *dst) {
  if (c < 1 || c > 4) return ac_fail("image: source has %d channels (1..4 supported)", c);
  if (!(oc == c || oc == 1 || oc == 3)) return ac_fail("image: cannot convert %d channels to %d", c, oc);
  const int64_t hw = (int64_t)h * w;
  const float s = 1.0f / 255.0f;
  if (oc == c) {
    for (int64_t i = 0; i < hw; i++)
      for (int k = 0; k < c; k++) dst[k * hw + i] = src[i * c + k] * s;
  } else if (oc == 1) {
    if (c <= 2) {
      for (int64_t i = 0; i < hw; i++) dst[i] = src[i * c] * s;
    } else {
      for (int64_t i = 0; i < hw; i++) {
        const uint8_t *p = src + i * c;
        dst[i] = (LUMA_R * p[0] + LUMA_G * p[1] + LUMA_B * p[2]) * s;
      }
    }
  } else { /* oc == 3 */
    if (c <= 2) {
      for (int64_t i = 0; i < hw; i++) dst[i] = dst[hw + i] = dst[2 * hw + i] = src[i * c] * s;
    } else {
      for (int64_t i = 0; i < hw; i++)
        for (int k = 0; k < 3; k++) dst[k * hw + i] = src[i * c + k] * s;
    }
  }
  return 0;
}

int ac_image_f32hwc_to_chw(const float *src, int h, int w, int c, int oc, float *dst) {
  if (c < 1 || c > 4) return ac_fail("image: source has %d channels (1..4 supported)", c);
  if (!(oc == c || oc == 1 || oc == 3)) return ac_fail("image: cannot convert %d channels to %d", c, oc);
  const int64_t hw = (int64_t)h * w;
  for (int64_t i = 0; i < hw; i++) {
    const float *p = src + i * c;
    if (oc == c) {
      for (int k = 0; k < c; k++) dst[k * hw + i] = p[k];
    } else if (oc == 1) {
      dst[i] = c <= 2 ? p[0] : LUMA_R * p[0] + LUMA_G * p[1] + LUMA_B * p[2];
    } else {
      for (int k = 0; k < 3; k++) dst[k * hw + i] = c <= 2 ? p[0] : p[k];
    }
  }
  return 0;
}

void ac_image_rgb_to_grey(const float *src, int h, int w, float *dst) {
  const int64_t hw = (int64_t)h * w;
  for (int64_t i = 0; i < hw; i++) dst[i] = LUMA_R * src[i] + LUMA_G * src[hw + i] + LUMA_B * src[2 * hw + i];
}

void ac_image_grey_to_rgb(const float *src, int h, int w, float *dst) {
  const int64_t hw = (int64_t)h * w;
  memmove(dst, src, sizeof(float) * hw);
  memcpy(dst + hw, dst, sizeof(float) * hw);
  memcpy(dst + 2 * hw, dst, sizeof(float) * hw);
}

int ac_image_normalize(float *img, int64_t n, int c, int64_t hw, const float *mean, const float *std) {
  for (int k = 0; k < c; k++)
    if (!(std[k] != 0.0f) || !isfinite(std[k]))
      return ac_fail("normalize: std[%d] = %g must be finite and non-zero", k + 1, (double)std[k]);
  for (int64_t b = 0; b < n; b++)
    for (int k = 0; k < c; k++) {
      float *p = img + (b * c + k) * hw;
      const float m = mean[k], is = 1.0f / std[k];
      for (int64_t i = 0; i < hw; i++) p[i] = (p[i] - m) * is;
    }
  return 0;
}

/* ======================================================================== */
/* encode                                                                   */
/* ======================================================================== */

/* stb_image_write callback: appends to the atomic file (errors are kept in it) */
static void write_to_file(void *ctx, void *data, int size) {
  ac_atomic_file *af = ctx;
  if (size > 0) (void)ac_atomic_write(af, data, (size_t)size);
}

int ac_image_save(const char *path, const char *format, const float *img, int c, int h, int w, int quality) {
  int png = strcmp(format, "png") == 0;
  int jpg = strcmp(format, "jpg") == 0 || strcmp(format, "jpeg") == 0;
  if (!png && !jpg) return ac_fail("%s: unknown image format '%s' (png or jpg)", path, format);
  if (!(c == 1 || c == 3 || c == 4)) return ac_fail("%s: cannot save an image with %d channels (1, 3 or 4)", path, c);
  if (h <= 0 || w <= 0) return ac_fail("%s: cannot save an empty image (%d x %d)", path, h, w);
  if (quality < 1 || quality > 100) return ac_fail("%s: JPEG quality must be 1..100, got %d", path, quality);
  const int64_t hw = (int64_t)h * w;
  uint8_t *px = malloc((size_t)(hw * c));
  if (!px) return ac_fail("%s: out of memory", path);
  for (int64_t i = 0; i < hw; i++)
    for (int k = 0; k < c; k++) {
      float v = img[k * hw + i];
      v = v != v ? 0.0f : v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
      px[i * c + k] = (uint8_t)(v * 255.0f + 0.5f);
    }
  ac_atomic_file af;
  if (ac_atomic_open(&af, path)) {
    free(px);
    return ac_fail("%s: cannot write image (%s)", path, strerror(af.err));
  }
  int ok = png ? stbi_write_png_to_func(write_to_file, &af, w, h, c, px, w * c)
               : stbi_write_jpg_to_func(write_to_file, &af, w, h, c, px, quality);
  free(px);
  if (!ok && !af.failed) af.failed = ENOMEM; /* stb's own allocation failed */
  if (ac_atomic_commit(&af)) return ac_fail("%s: cannot write image (%s)", path, strerror(af.err));
  return 0;
}

/* ======================================================================== */
/* resize                                                                    */
/* ======================================================================== */

/* Per-axis resampling weights: output o reads cnt[o] source pixels starting
 * at first[o], with weights wt[off[o] ...]. */
typedef struct {
  int *first, *cnt, *off;
  float *wt;
} axis_weights;

static void axis_free(axis_weights *a) {
  free(a->first);
  free(a->cnt);
  free(a->off);
  free(a->wt);
}

static int axis_build(axis_weights *a, int n, int on) {
  const double scale = (double)n / on;
  const int maxk = scale > 1.0 ? (int)ceil(scale) + 2 : 2;
  a->first = malloc(sizeof(int) * on);
  a->cnt = malloc(sizeof(int) * on);
  a->off = malloc(sizeof(int) * on);
  a->wt = malloc(sizeof(float) * (size_t)on * maxk);
  if (!a->first || !a->cnt || !a->off || !a->wt) {
    axis_free(a);
    return ac_fail("resize: out of memory");
  }
  int pos = 0;
  for (int o = 0; o < on; o++) {
    a->off[o] = pos;
    if (scale <= 1.0) { /* bilinear, half-pixel centres */
      double s = (o + 0.5) * scale - 0.5;
      if (s < 0) s = 0;
      int i0 = (int)s;
      if (i0 > n - 1) i0 = n - 1;
      double l = s - i0;
      a->first[o] = i0;
      if (i0 < n - 1 && l > 0) {
        a->cnt[o] = 2;
        a->wt[pos++] = (float)(1.0 - l);
        a->wt[pos++] = (float)l;
      } else {
        a->cnt[o] = 1;
        a->wt[pos++] = 1.0f;
      }
    } else { /* area: output o covers [o*scale, (o+1)*scale) */
      double lo = o * scale, hi = (o + 1) * scale;
      int i0 = (int)floor(lo), i1 = (int)ceil(hi);
      if (i1 > n) i1 = n;
      if (i0 >= i1) i0 = i1 - 1;
      a->first[o] = i0;
      a->cnt[o] = 0;
      for (int i = i0; i < i1; i++) {
        double ov = fmin(hi, i + 1.0) - fmax(lo, (double)i);
        if (ov <= 0) ov = 0;
        a->wt[pos++] = (float)(ov / scale);
        a->cnt[o]++;
      }
    }
  }
  return 0;
}

int ac_image_resize(const float *src, int c, int h, int w, float *dst, int oh, int ow) {
  if (c <= 0 || h <= 0 || w <= 0) return ac_fail("resize: empty source (%d x %d x %d)", c, h, w);
  if (oh <= 0 || ow <= 0) return ac_fail("resize: target size must be positive, got %d x %d", oh, ow);
  if (oh == h && ow == w) {
    memcpy(dst, src, sizeof(float) * (size_t)c * h * w);
    return 0;
  }
  axis_weights ax = {0}, ay = {0};
  if (axis_build(&ax, w, ow)) return -1;
  if (axis_build(&ay, h, oh)) { axis_free(&ax); return -1; }
  float *tmp = malloc(sizeof(float) * (size_t)c * h * ow);
  if (!tmp) {
    axis_free(&ax);
    axis_free(&ay);
    return ac_fail("resize: out of memory (%d x %d x %d)", c, h, ow);
  }
  /* horizontal pass: c*h rows of w -> c*h rows of ow */
  for (int64_t r = 0; r < (int64_t)c * h; r++) {
    const float *s = src + r * w;
    float *t = tmp + r * ow;
    for (int o = 0; o < ow; o++) {
      const float *wt = ax.wt + ax.off[o];
      const float *p = s + ax.first[o];
      float acc = 0;
      for (int k = 0; k < ax.cnt[o]; k++) acc += wt[k] * p[k];
      t[o] = acc;
    }
  }
  /* vertical pass: per plane, oh rows each a weighted sum of source rows */
  for (int k = 0; k < c; k++) {
    const float *tp = tmp + (int64_t)k * h * ow;
    float *dp = dst + (int64_t)k * oh * ow;
    for (int o = 0; o < oh; o++) {
      float *d = dp + (int64_t)o * ow;
      const float *wt = ay.wt + ay.off[o];
      const float *r0 = tp + (int64_t)ay.first[o] * ow;
      for (int x = 0; x < ow; x++) d[x] = wt[0] * r0[x];
      for (int j = 1; j < ay.cnt[o]; j++) {
        const float *rj = r0 + (int64_t)j * ow;
        const float wj = wt[j];
        for (int x = 0; x < ow; x++) d[x] += wj * rj[x];
      }
    }
  }
  free(tmp);
  axis_free(&ax);
  axis_free(&ay);
  return 0;
}

/* ======================================================================== */
/* crop / pad                                                                */
/* ======================================================================== */

int ac_image_crop(const float *src, int c, int h, int w, int y, int x, int ch, int cw, float fill, float *dst) {
  if (ch <= 0 || cw <= 0) return ac_fail("crop: size must be positive, got %d x %d", ch, cw);
  for (int k = 0; k < c; k++)
    for (int r = 0; r < ch; r++) {
      float *d = dst + ((int64_t)k * ch + r) * cw;
      int sy = y + r;
      if (sy < 0 || sy >= h) {
        for (int q = 0; q < cw; q++) d[q] = fill;
        continue;
      }
      const float *s = src + ((int64_t)k * h + sy) * w;
      for (int q = 0; q < cw; q++) {
        int sx = x + q;
        d[q] = (sx >= 0 && sx < w) ? s[sx] : fill;
      }
    }
  return 0;
}

int ac_border_index(int i, int n, int mode) {
  if (i >= 0 && i < n) return i;
  if (mode == AC_BORDER_CONSTANT) return -1;
  if (mode == AC_BORDER_REPLICATE) return i < 0 ? 0 : n - 1;
  /* reflect without repeating the edge pixel: -1 -> 1, n -> n-2 */
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

int ac_image_pad(const float *src, int c, int h, int w, int top, int bottom, int left, int right, int mode,
                 float fill, float *dst) {
  if (top < 0 || bottom < 0 || left < 0 || right < 0)
    return ac_fail("pad: amounts must be >= 0, got top %d bottom %d left %d right %d", top, bottom, left, right);
  if (mode < 0 || mode > 2) return ac_fail("pad: unknown border mode %d", mode);
  const int oh = h + top + bottom, ow = w + left + right;
  for (int k = 0; k < c; k++)
    for (int r = 0; r < oh; r++) {
      float *d = dst + ((int64_t)k * oh + r) * ow;
      int sy = ac_border_index(r - top, h, mode);
      if (sy < 0) {
        for (int q = 0; q < ow; q++) d[q] = fill;
        continue;
      }
      const float *s = src + ((int64_t)k * h + sy) * w;
      for (int q = 0; q < ow; q++) {
        int sx = ac_border_index(q - left, w, mode);
        d[q] = sx < 0 ? fill : s[sx];
      }
    }
  return 0;
}
