/*
 * exif.c - reads the EXIF Orientation tag of a JPEG and turns decoded
 * pixels upright (see exif.h). Every offset read from the file is checked
 * against the segment it lies in.
 */
#include "image/exif.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "image/image.h"

static unsigned rd16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The orientation in a TIFF structure t[0..n) (the EXIF payload). */
static int tiff_orientation(const uint8_t *t, size_t n) {
  if (n < 8) return 1;
  int le;
  if (t[0] == 'I' && t[1] == 'I') le = 1;
  else if (t[0] == 'M' && t[1] == 'M') le = 0;
  else return 1;
  if (rd16(t + 2, le) != 42) return 1;
  uint32_t ifd = rd32(t + 4, le);
  if (ifd > n - 2 || ifd < 8) return 1;
  unsigned count = rd16(t + ifd, le);
  for (unsigned i = 0; i < count; i++) {
    size_t e = (size_t)ifd + 2 + 12 * (size_t)i;
    if (e + 12 > n) return 1;
    if (rd16(t + e, le) != 0x0112) continue;
    unsigned type = rd16(t + e + 2, le);
    uint32_t cnt = rd32(t + e + 4, le);
    unsigned v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? (unsigned)rd32(t + e + 8, le) : 0;
    if (cnt < 1 || v < 1 || v > 8) return 1;
    return (int)v;
  }
  return 1;
}

int ac_exif_orientation(const uint8_t *buf, size_t len) {
  size_t i = 0;
  while (i + 1 < len && !(buf[i] == 0xFF && buf[i + 1] == 0xD8)) i++; /* SOI */
  if (i + 1 >= len) return 1;
  i += 2;
  while (i + 4 <= len) {
    if (buf[i] != 0xFF) return 1;
    unsigned marker = buf[i + 1];
    if (marker == 0xFF) { /* fill byte */
      i++;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) return 1; /* end of image / start of scan: no EXIF before */
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;
      continue;
    }
    size_t seg = (size_t)buf[i + 2] << 8 | buf[i + 3];
    if (seg < 2 || i + 2 + seg > len) return 1;
    const uint8_t *p = buf + i + 4;
    size_t n = seg - 2;
    if (marker == 0xE1 && n >= 6 && memcmp(p, "Exif\0\0", 6) == 0) return tiff_orientation(p + 6, n - 6);
    i += 2 + seg;
  }
  return 1;
}

int ac_image_orient(uint8_t **px, int *w, int *h, int c, int o) {
  if (o <= 1 || o > 8) return 0;
  int W = *w, H = *h;
  int ow = o >= 5 ? H : W, oh = o >= 5 ? W : H;
  uint8_t *src = *px, *dst = malloc((size_t)W * (size_t)H * (size_t)c);
  if (!dst) return ac_fail("out of memory turning a %dx%d image upright", W, H);
  for (int y = 0; y < oh; y++) {
    for (int x = 0; x < ow; x++) {
      int sx, sy; /* source pixel of output (x, y) */
      switch (o) {
      case 2: sx = W - 1 - x, sy = y; break;
      case 3: sx = W - 1 - x, sy = H - 1 - y; break;
      case 4: sx = x, sy = H - 1 - y; break;
      case 5: sx = y, sy = x; break;
      case 6: sx = y, sy = H - 1 - x; break;
      case 7: sx = W - 1 - y, sy = H - 1 - x; break;
      default: sx = W - 1 - y, sy = x; break; /* 8 */
      }
      memcpy(dst + ((size_t)y * ow + x) * c, src + ((size_t)sy * W + sx) * c, (size_t)c);
    }
  }
  ac_image_free(src);
  *px = dst;
  *w = ow;
  *h = oh;
  return 0;
}

int ac_image_decode_mem_exif(const uint8_t *buf, size_t len, int req_c, int exif, uint8_t **px, int *w, int *h,
                             int *c) {
  if (ac_image_decode_mem(buf, len, req_c, px, w, h, c)) return -1;
  if (exif && ac_image_orient(px, w, h, *c, ac_exif_orientation(buf, len))) {
    ac_image_free(*px);
    *px = NULL;
    return -1;
  }
  return 0;
}

int ac_image_decode_file_exif(const char *path, int req_c, int exif, uint8_t **px, int *w, int *h, int *c) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (ac_image_read_file(path, &buf, &len)) return -1;
  int rc = ac_image_decode_named(path, buf, len, req_c, 0, 0, px, w, h, c);
  if (rc == 0 && exif && ac_image_orient(px, w, h, *c, ac_exif_orientation(buf, len))) {
    ac_image_free(*px);
    *px = NULL;
    rc = -1;
  }
  free(buf);
  return rc;
}
