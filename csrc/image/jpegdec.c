/*
 * jpegdec.c - JPEG decoding through libjpeg-turbo (jpeglib.h, -ljpeg): the
 * error manager that turns libjpeg-turbo's errors and data-damage warnings
 * into a returned message, colour handling (grey / RGB / RGBA / CMYK) and
 * DCT-scaled decoding. See jpegdec.h.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> /* before jerror.h: its codes depend on jconfig.h */
#include <jerror.h>

#include "image/jpegdec.h"

/* ======================================================================== */
/* errors                                                                    */
/* ======================================================================== */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  int truncated; /* the data ended before the end-of-image marker */
  int nomem;
  char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void err_exit(j_common_ptr ci) {
  jpeg_err *e = (jpeg_err *)ci->err;
  ci->err->format_message(ci, e->msg);
  if (ci->err->msg_code == JERR_OUT_OF_MEMORY || ci->err->msg_code == JERR_NO_BACKING_STORE) e->nomem = 1;
  longjmp(e->jb, 1);
}

/* Warnings that mean pixels are missing or invented (libjpeg-turbo goes on
 * and fills them with grey) end the decode as errors. The others
 * (extraneous bytes before a marker, an odd progression, unknown metadata)
 * leave every pixel decoded and are only counted. Trace messages
 * (level >= 0) are dropped: nothing is ever printed. */
static void err_emit(j_common_ptr ci, int level) {
  if (level >= 0) return;
  switch (ci->err->msg_code) {
  case JWRN_JPEG_EOF:
    ((jpeg_err *)ci->err)->truncated = 1;
    err_exit(ci);
    break;
  case JWRN_HIT_MARKER:
  case JWRN_HUFF_BAD_CODE:
  case JWRN_ARITH_BAD_CODE:
  case JWRN_MUST_RESYNC:
    err_exit(ci);
    break;
  default:
    ci->err->num_warnings++;
  }
}

static void err_init(struct jpeg_decompress_struct *ci, jpeg_err *e) {
  memset(e, 0, sizeof *e);
  ci->err = jpeg_std_error(&e->pub);
  e->pub.error_exit = err_exit;
  e->pub.emit_message = err_emit;
}

static void err_text(const jpeg_err *e, char *why, size_t whylen) {
  if (e->truncated) snprintf(why, whylen, "truncated or corrupt JPEG (no end-of-image marker)");
  else if (e->nomem) snprintf(why, whylen, "out of memory decoding JPEG (%s)", e->msg);
  else { /* the data-damage warnings open with "Corrupt JPEG data: ", said once already */
    const char *m = e->msg, *pre = "Corrupt JPEG data: ";
    if (strncmp(m, pre, strlen(pre)) == 0) m += strlen(pre);
    snprintf(why, whylen, "corrupt JPEG (%s)", m);
  }
}

/* ======================================================================== */
/* decode                                                                    */
/* ======================================================================== */

/* x * y / 255 rounded, as stb_image converts Adobe (inverted) CMYK */
static uint8_t mul255(unsigned x, unsigned y) {
  unsigned t = x * y + 128;
  return (uint8_t)((t + (t >> 8)) >> 8);
}

/* One row of n inverted-CMYK pixels -> `want` channels (stb_image's rules:
 * RGB = C*K, M*K, Y*K; grey = (77 R + 150 G + 29 B) >> 8; alpha 255). */
static void cmyk_row(const uint8_t *src, int n, int want, uint8_t *dst) {
  for (int x = 0; x < n; x++, src += 4, dst += want) {
    uint8_t r = mul255(src[0], src[3]), g = mul255(src[1], src[3]), b = mul255(src[2], src[3]);
    if (want <= 2) {
      dst[0] = (uint8_t)((r * 77 + g * 150 + b * 29) >> 8);
      if (want == 2) dst[1] = 255;
    } else {
      dst[0] = r;
      dst[1] = g;
      dst[2] = b;
      if (want == 4) dst[3] = 255;
    }
  }
}

/* The scale n/8 to decode at: the smallest whose output covers min_w x min_h. */
static int pick_scale(unsigned W, unsigned H, int min_w, int min_h) {
  if (min_w <= 0 && min_h <= 0) return 8;
  for (int n = 1; n < 8; n++) {
    unsigned long sw = ((unsigned long)W * n + 7) / 8, sh = ((unsigned long)H * n + 7) / 8;
    if (sw >= (unsigned long)(min_w > 0 ? min_w : 1) && sh >= (unsigned long)(min_h > 0 ? min_h : 1)) return n;
  }
  return 8;
}

int ac_jpeg_decode(const uint8_t *buf, size_t len, int req_c, int min_w, int min_h, uint8_t **px, int *w, int *h,
                   int *c, char *why, size_t whylen) {
  struct jpeg_decompress_struct ci;
  jpeg_err e;
  uint8_t *volatile out = NULL;
  err_init(&ci, &e);
  if (setjmp(e.jb)) {
    jpeg_destroy_decompress(&ci);
    free(out);
    err_text(&e, why, whylen);
    return -1;
  }
  jpeg_create_decompress(&ci);
  ci.mem->max_memory_to_use = AC_JPEG_MAX_MEMORY;
  jpeg_mem_src(&ci, buf, (unsigned long)len);
  jpeg_read_header(&ci, TRUE);

  const int want = req_c ? req_c : (ci.num_components == 1 ? 1 : 3);
  const int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
  if (cmyk) ci.out_color_space = JCS_CMYK;
  else if (want <= 2) ci.out_color_space = JCS_GRAYSCALE;
  else if (want == 3) ci.out_color_space = JCS_RGB;
  else ci.out_color_space = JCS_EXT_RGBA;
  ci.scale_num = (unsigned)pick_scale(ci.image_width, ci.image_height, min_w, min_h);
  ci.scale_denom = 8;
  jpeg_calc_output_dimensions(&ci);

  const unsigned ow = ci.output_width, oh = ci.output_height;
  const long long bytes = (long long)ow * oh * want;
  if (ow == 0 || oh == 0 || bytes > AC_IMAGE_MAX_BYTES) {
    snprintf(why, whylen, "image too large (%u x %u x %d channels is %lld bytes, more than %lld)", ow, oh, want, bytes,
             AC_IMAGE_MAX_BYTES);
    jpeg_destroy_decompress(&ci);
    return -1;
  }
  out = malloc((size_t)bytes);
  if (!out) {
    snprintf(why, whylen, "out of memory allocating %lld bytes", bytes);
    jpeg_destroy_decompress(&ci);
    return -1;
  }
  jpeg_start_decompress(&ci);
  const size_t stride = (size_t)ow * want;
  if (!cmyk && want != 2) { /* libjpeg-turbo writes the final layout itself */
    while (ci.output_scanline < oh) {
      JSAMPROW rows[16];
      unsigned k = 0;
      for (; k < 16 && ci.output_scanline + k < oh; k++) rows[k] = out + (ci.output_scanline + k) * stride;
      jpeg_read_scanlines(&ci, rows, k);
    }
  } else { /* grey + alpha, or CMYK converted row by row */
    JSAMPARRAY tmp = ci.mem->alloc_sarray((j_common_ptr)&ci, JPOOL_IMAGE, ow * (unsigned)ci.output_components, 1);
    while (ci.output_scanline < oh) {
      uint8_t *dst = out + ci.output_scanline * stride;
      jpeg_read_scanlines(&ci, tmp, 1);
      if (cmyk) cmyk_row(tmp[0], (int)ow, want, dst);
      else
        for (unsigned x = 0; x < ow; x++) {
          dst[2 * x] = tmp[0][x];
          dst[2 * x + 1] = 255;
        }
    }
  }
  jpeg_finish_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  *px = out;
  *w = (int)ow;
  *h = (int)oh;
  *c = want;
  return 0;
}

int ac_jpeg_info(const uint8_t *buf, size_t len, int *w, int *h, int *c, char *why, size_t whylen) {
  struct jpeg_decompress_struct ci;
  jpeg_err e;
  err_init(&ci, &e);
  if (setjmp(e.jb)) {
    jpeg_destroy_decompress(&ci);
    err_text(&e, why, whylen);
    return -1;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, buf, (unsigned long)len);
  jpeg_read_header(&ci, TRUE);
  *w = (int)ci.image_width;
  *h = (int)ci.image_height;
  *c = ci.num_components == 1 ? 1 : 3;
  jpeg_destroy_decompress(&ci);
  return 0;
}
