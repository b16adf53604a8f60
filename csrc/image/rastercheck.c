/*
 * rastercheck.c - is a BMP or TGA file long enough for the pixels its
 * header declares? (see rastercheck.h)
 */
#include "image/rastercheck.h"

#include "core/tensor.h"

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* ---- BMP ------------------------------------------------------------------ */

int ac_bmp_check(const char *name, const uint8_t *b, size_t n) {
  if (n < 2 || b[0] != 'B' || b[1] != 'M') return 0;
  if (n < 18) return ac_fail("%s: truncated BMP: %zu bytes, shorter than its headers", name, n);
  const uint32_t offset = le32(b + 10), hsz = le32(b + 14);
  long long w, h;
  unsigned bpp, comp = 0;
  if (hsz == 12) {
    if (n < 26) return ac_fail("%s: truncated BMP: %zu bytes, shorter than its headers", name, n);
    w = le16(b + 18);
    h = le16(b + 20);
    bpp = le16(b + 24);
  } else if (hsz == 40 || hsz == 52 || hsz == 56 || hsz == 108 || hsz == 124) {
    if (n < 34) return ac_fail("%s: truncated BMP: %zu bytes, shorter than its headers", name, n);
    w = (int32_t)le32(b + 18);
    h = (int32_t)le32(b + 22);
    bpp = le16(b + 28);
    comp = le32(b + 30);
  } else {
    return 0; /* stb_image refuses it with its own reason */
  }
  if (h < 0) h = -h;
  /* RLE (1, 2) is refused by stb_image; JPEG/PNG inside (4, 5) too. */
  if (w <= 0 || h <= 0 || (comp != 0 && comp != 3 && comp != 6)) return 0;
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) return 0;
  const long long row = ((long long)bpp * w + 31) / 32 * 4;
  /* stb_image does not need the padding after the last row */
  const long long last = ((long long)bpp * w + 7) / 8;
  const long long need = (long long)offset + row * (h - 1) + last;
  if (need > (long long)n)
    return ac_fail("%s: truncated BMP: header says %lld x %lld at %u bits per pixel, pixels from byte %u need %lld "
                   "bytes, the file has %zu",
                   name, w, h, bpp, offset, need, n);
  return 0;
}

/* ---- TGA ------------------------------------------------------------------ */

/* Whether the header is one stb_image takes for a TGA (stbi__tga_test). */
static int tga_like(const uint8_t *b, size_t n) {
  if (n < 18) return 0;
  const unsigned cmap = b[1], type = b[2];
  if (cmap > 1) return 0;
  if (cmap == 1) {
    if (type != 1 && type != 9) return 0;
    const unsigned sz = b[7];
    if (sz != 8 && sz != 15 && sz != 16 && sz != 24 && sz != 32) return 0;
  } else if (type != 2 && type != 3 && type != 10 && type != 11) {
    return 0;
  }
  if (le16(b + 12) < 1 || le16(b + 14) < 1) return 0;
  const unsigned bpp = b[16];
  if (cmap == 1 && bpp != 8 && bpp != 16) return 0;
  if (bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32) return 0;
  return 1;
}

int ac_tga_check(const char *name, const uint8_t *b, size_t n) {
  if (!tga_like(b, n)) return 0;
  const unsigned idlen = b[0], cmap = b[1], type = b[2];
  const unsigned cmap_len = le16(b + 5), cmap_bits = b[7];
  const long long w = le16(b + 12), h = le16(b + 14);
  const unsigned bpp = b[16], px_bytes = (bpp + 7) / 8;
  const long long start = 18 + (long long)idlen + (cmap ? (long long)cmap_len * ((cmap_bits + 7) / 8) : 0);
  const long long pixels = w * h;
  if (start > (long long)n)
    return ac_fail("%s: truncated TGA: the header and colour map need %lld bytes, the file has %zu", name, start, n);
  if (type < 9) {
    const long long need = start + pixels * px_bytes;
    if (need > (long long)n)
      return ac_fail("%s: truncated TGA: header says %lld x %lld at %u bits per pixel, needs %lld bytes, the file "
                     "has %zu",
                     name, w, h, bpp, need, n);
    return 0;
  }
  /* RLE: packets of a count byte then one pixel (run) or count pixels (raw). */
  long long pos = start, done = 0;
  while (done < pixels) {
    if (pos >= (long long)n) break;
    const unsigned head = b[pos++];
    const long long count = (head & 0x7f) + 1;
    pos += (head & 0x80) ? px_bytes : count * px_bytes;
    if (pos > (long long)n) break;
    done += count;
  }
  if (done < pixels)
    return ac_fail("%s: truncated TGA: the run-length data ends after %lld of its %lld x %lld pixels", name,
                   done < pixels ? done : pixels, w, h);
  return 0;
}
