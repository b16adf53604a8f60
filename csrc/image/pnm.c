/*
 * pnm.c - the netpbm formats, decoded as their specification says: PBM
 * (P1 plain, P4 raw), PGM (P2 plain, P5 raw) and PPM (P3 plain, P6 raw).
 * Any maximum value from 1 to 65535; above 255 the raw samples are two bytes,
 * big-endian. Every sample is scaled to 8 bits as round(v * 255 / maxval),
 * so a 4-bit (maxval 15) or 16-bit image reads with its full range and never
 * as the low byte. PBM's 1 is black (0), 0 white (255). A sample above the
 * maximum value, a short raster or a malformed header is an error that
 * names the file and what was wrong. Only the first image of a multi-image
 * file is read.
 */
#include "image/pnm.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

typedef struct {
  const uint8_t *b;
  size_t n, pos;
} pnm_in;

static int is_space(int ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r'; }

/* Skips whitespace and '#' comments (to the end of the line). */
static void skip_blank(pnm_in *in) {
  while (in->pos < in->n) {
    const int ch = in->b[in->pos];
    if (is_space(ch)) {
      in->pos++;
    } else if (ch == '#') {
      while (in->pos < in->n && in->b[in->pos] != '\n' && in->b[in->pos] != '\r') in->pos++;
    } else {
      break;
    }
  }
}

/* Reads an unsigned decimal after blanks; limit bounds it. 0 on success,
 * 1 at the end of the data, 2 when not a number, 3 when above limit. */
static int read_uint(pnm_in *in, long long limit, long long *v) {
  skip_blank(in);
  if (in->pos >= in->n) return 1;
  if (in->b[in->pos] < '0' || in->b[in->pos] > '9') return 2;
  long long x = 0;
  while (in->pos < in->n && in->b[in->pos] >= '0' && in->b[in->pos] <= '9') {
    x = x * 10 + (in->b[in->pos] - '0');
    if (x > limit) return 3;
    in->pos++;
  }
  *v = x;
  return 0;
}

int ac_pnm_is(const uint8_t *b, size_t n) { return n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6'; }

static int pnm_header(const char *name, pnm_in *in, ac_pnm_header *hd) {
  static const char *const what[3] = {"width", "height", "maximum value"};
  const int kind = in->b[1] - '0';
  hd->plain = kind <= 3;
  hd->bitmap = kind == 1 || kind == 4;
  hd->channels = (kind == 3 || kind == 6) ? 3 : 1;
  in->pos = 2; /* like Pillow and stb_image, a number may follow the magic directly */
  long long v[3] = {0, 0, 1};
  const int fields = hd->bitmap ? 2 : 3;
  for (int k = 0; k < fields; k++) {
    const int r = read_uint(in, 65535, &v[k]);
    if (r == 1) return ac_fail("%s: truncated PNM: the header ends before its %s", name, what[k]);
    if (r == 2) return ac_fail("%s: cannot decode image (PNM %s is not a number)", name, what[k]);
    if (r == 3) return ac_fail("%s: cannot decode image (PNM %s larger than 65535)", name, what[k]);
  }
  if (v[0] < 1 || v[1] < 1) return ac_fail("%s: image has no pixels (%lld x %lld)", name, v[0], v[1]);
  if (v[2] < 1) return ac_fail("%s: cannot decode image (PNM maximum value 0; it must be 1..65535)", name);
  hd->w = (int)v[0];
  hd->h = (int)v[1];
  hd->maxval = (int)v[2];
  /* Raw formats: exactly one whitespace character ends the header. */
  if (!hd->plain) {
    if (in->pos >= in->n) return ac_fail("%s: truncated PNM: no pixel data after the header", name);
    if (!is_space(in->b[in->pos]))
      return ac_fail("%s: cannot decode image (PNM header must end with one whitespace character)", name);
    in->pos++;
  }
  hd->data_offset = in->pos;
  return 0;
}

/* The raw raster's size in bytes. */
static long long raw_bytes(const ac_pnm_header *hd) {
  if (hd->bitmap) return ((long long)hd->w + 7) / 8 * hd->h;
  return (long long)hd->w * hd->h * hd->channels * (hd->maxval > 255 ? 2 : 1);
}

static int raw_short(const char *name, const ac_pnm_header *hd, long long have) {
  if (hd->bitmap)
    return ac_fail("%s: truncated PNM: header says %d x %d bitmap, needs %lld bytes of pixels, file has %lld", name,
                   hd->w, hd->h, raw_bytes(hd), have);
  return ac_fail("%s: truncated PNM: header says %d x %d, %d channel%s of %d bits, needs %lld bytes of pixels, "
                 "file has %lld",
                 name, hd->w, hd->h, hd->channels, hd->channels > 1 ? "s" : "", hd->maxval > 255 ? 16 : 8,
                 raw_bytes(hd), have);
}

int ac_pnm_info(const char *name, const uint8_t *b, size_t n, ac_pnm_header *hd) {
  if (!ac_pnm_is(b, n)) return ac_fail("%s: not a PNM file", name);
  pnm_in in = {b, n, 0};
  if (pnm_header(name, &in, hd)) return -1;
  const long long have = (long long)(n - hd->data_offset);
  if (!hd->plain && raw_bytes(hd) > have) return raw_short(name, hd, have);
  return 0;
}

/* The raw raster: need bytes present, samples <= maxval, scaled. */
static int decode_raw(const char *name, const pnm_in *in, const ac_pnm_header *hd, uint8_t *px) {
  const long long w = hd->w, h = hd->h, c = hd->channels;
  const uint8_t *p = in->b + hd->data_offset;
  const long long have = (long long)(in->n - hd->data_offset);
  if (raw_bytes(hd) > have) return raw_short(name, hd, have);
  if (hd->bitmap) {
    const long long row = (w + 7) / 8;
    for (long long y = 0; y < h; y++)
      for (long long x = 0; x < w; x++) px[y * w + x] = (p[y * row + x / 8] >> (7 - x % 8)) & 1 ? 0 : 255;
    return 0;
  }
  const int bytes = hd->maxval > 255 ? 2 : 1;
  const long long count = w * h * c;
  const unsigned mv = (unsigned)hd->maxval;
  for (long long i = 0; i < count; i++) {
    const unsigned v = bytes == 2 ? (unsigned)p[2 * i] << 8 | p[2 * i + 1] : p[i];
    if (v > mv)
      return ac_fail("%s: cannot decode image (PNM sample %lld is %u, above the maximum value %u)", name, i, v, mv);
    px[i] = mv == 255 ? (uint8_t)v : (uint8_t)((v * 255u + mv / 2) / mv);
  }
  return 0;
}

/* The plain (ASCII) raster: decimal samples between blanks and comments;
 * a plain PBM's samples are single '0' / '1' characters that need no blank
 * between them. */
static int decode_plain(const char *name, pnm_in *in, const ac_pnm_header *hd, uint8_t *px) {
  const long long count = (long long)hd->w * hd->h * hd->channels;
  const unsigned mv = (unsigned)hd->maxval;
  for (long long i = 0; i < count; i++) {
    if (hd->bitmap) {
      skip_blank(in);
      if (in->pos >= in->n) goto short_data;
      const int ch = in->b[in->pos++];
      if (ch != '0' && ch != '1')
        return ac_fail("%s: cannot decode image (plain PBM pixel %lld is '%c', expected 0 or 1)", name, i,
                       ch >= 32 && ch < 127 ? ch : '?');
      px[i] = ch == '1' ? 0 : 255;
      continue;
    }
    long long v = 0;
    const int r = read_uint(in, 65535, &v);
    if (r == 1) goto short_data;
    if (r == 2) return ac_fail("%s: cannot decode image (plain PNM sample %lld is not a number)", name, i);
    if (r == 3 || v > (long long)mv)
      return ac_fail("%s: cannot decode image (PNM sample %lld is above the maximum value %u)", name, i, mv);
    px[i] = mv == 255 ? (uint8_t)v : (uint8_t)(((unsigned)v * 255u + mv / 2) / mv);
  }
  return 0;
short_data:
  return ac_fail("%s: truncated PNM: header says %d x %d with %d channel%s, the data holds fewer than %lld samples",
                 name, hd->w, hd->h, hd->channels, hd->channels > 1 ? "s" : "", count);
}

int ac_pnm_decode(const char *name, const uint8_t *b, size_t n, uint8_t **px, int *w, int *h, int *c) {
  *px = NULL;
  ac_pnm_header hd;
  if (ac_pnm_info(name, b, n, &hd)) return -1;
  const long long count = (long long)hd.w * hd.h * hd.channels;
  if (count > AC_PNM_MAX_SAMPLES)
    return ac_fail("%s: image too large (%d x %d x %d)", name, hd.w, hd.h, hd.channels);
  uint8_t *out = malloc((size_t)count);
  if (!out) return ac_fail("%s: out of memory allocating %lld bytes", name, count);
  pnm_in in = {b, n, hd.data_offset};
  if (hd.plain ? decode_plain(name, &in, &hd, out) : decode_raw(name, &in, &hd, out)) {
    free(out);
    return -1;
  }
  *px = out;
  *w = hd.w;
  *h = hd.h;
  *c = hd.channels;
  return 0;
}
