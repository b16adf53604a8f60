/*
 * png.c - PNG decoding through libpng, which checks what stb_image 2.27
 * skips: every chunk's CRC and the zlib stream's Adler-32, and that the
 * image data is complete. A damaged file is an error that names it and
 * libpng's reason, never damaged pixels.
 *
 * The pixels are what stb_image gave for the same file, so that changing
 * decoders changes no result: palette and low-bit grey expanded to 8 bits,
 * a tRNS chunk turned into an alpha channel, 16-bit samples reduced to their
 * high byte, interlaced images de-interlaced, no gamma or colour correction.
 * Channels are as stored (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA); image.c
 * converts them to what the caller asked for.
 *
 * libpng reports errors by longjmp out of its error callback; every
 * allocation that must survive one is made before setjmp or is reachable
 * from the state freed after it.
 */
#include "image/png.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

typedef struct {
  const uint8_t *buf;
  size_t len, pos;
  int after_image; /* the pixels are complete: running out of data now is no error */
  int ended;       /* ran out of data after the pixels */
  char why[160];
} png_src;

static void on_error(png_structp png, png_const_charp msg) {
  png_src *src = png_get_error_ptr(png);
  snprintf(src->why, sizeof src->why, "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* ancillary-chunk damage: libpng drops the chunk and goes on */
}

static void on_read(png_structp png, png_bytep out, size_t n) {
  png_src *src = png_get_io_ptr(png);
  if (n > src->len - src->pos) {
    if (src->after_image) {
      src->ended = 1;
      png_longjmp(png, 1);
    }
    png_error(png, "truncated file: the data ends inside a chunk");
  }
  memcpy(out, src->buf + src->pos, n);
  src->pos += n;
}

/* Reasons in the words a user reads; libpng's own for the rest. */
static const char *explain(const char *why) {
  if (strstr(why, "CRC error")) return "broken data stream: a chunk's CRC does not match its data";
  if (strstr(why, "incorrect data check")) return "broken data stream: the image data's Adler-32 checksum does not match";
  if (strstr(why, "Not enough image data") || strstr(why, "truncated"))
    return "truncated file: the image data ends before the last row";
  return NULL;
}

int ac_png_is(const uint8_t *b, size_t n) { return n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0; }

int ac_png_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_bytes, uint8_t **px, int *w, int *h,
                  int *c) {
  *px = NULL;
  if (len < 16 || memcmp(buf + 12, "IHDR", 4) != 0) return ac_fail("%s: cannot decode image (first not IHDR)", name);
  png_src src = {buf, len, 0, 0, 0, {0}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
  if (!png) return ac_fail("%s: out of memory starting the PNG decoder", name);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return ac_fail("%s: out of memory starting the PNG decoder", name);
  }
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  volatile png_uint_32 iw = 0, ih = 0;
  volatile int ch = 0;
  if (setjmp(png_jmpbuf(png))) {
    if (src.ended) goto done; /* chunks after the image data cut off: the image is whole */
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    const char *e = explain(src.why);
    if (strstr(src.why, "out of memory") || strstr(src.why, "Insufficient memory"))
      return ac_fail("%s: out of memory decoding the PNG", name);
    return ac_fail("%s: cannot decode image (PNG: %s)", name, e ? e : src.why);
  }
  png_set_read_fn(png, &src, on_read);
  /* A critical chunk's bad CRC is an error (libpng's default); so is one in
   * an ancillary chunk, which libpng would otherwise drop with a warning. */
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, info);
  iw = png_get_image_width(png, info);
  ih = png_get_image_height(png, info);
  const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  ch = png_get_channels(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (ch < 1 || ch > 4 || rowbytes != (size_t)iw * (size_t)ch) {
    snprintf(src.why, sizeof src.why, "unsupported pixel layout (%d channels, %zu bytes a row)", ch, rowbytes);
    png_longjmp(png, 1);
  }
  const int64_t total = (int64_t)iw * ih * ch;
  if (total > max_bytes) {
    png_destroy_read_struct(&png, &info, NULL);
    return ac_fail("%s: image too large (%u x %u x %d bytes, more than %lld)", name, (unsigned)iw, (unsigned)ih, ch,
                   (long long)max_bytes);
  }
  pixels = malloc((size_t)total);
  rows = malloc(sizeof(png_bytep) * ih);
  if (!pixels || !rows) {
    snprintf(src.why, sizeof src.why, "out of memory");
    png_longjmp(png, 1);
  }
  for (png_uint_32 y = 0; y < ih; y++) rows[y] = pixels + (size_t)y * rowbytes;
  png_read_image(png, rows);
  /* The chunks after the image data: their CRCs too, up to IEND. */
  src.after_image = 1;
  png_read_end(png, NULL);
done:
  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  *px = pixels;
  *w = (int)iw;
  *h = (int)ih;
  *c = ch;
  return 0;
}
