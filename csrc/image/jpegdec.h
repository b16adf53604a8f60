/*
 * jpegdec.h - JPEG decoding with libjpeg-turbo into 8-bit HWC pixels (the
 * layout of image.h), for csrc/image.c. Grey, YCbCr, RGB, CMYK and YCCK
 * files; 1..4 output channels as stb_image gave them; optional DCT scaling
 * (n/8) for callers that shrink the image afterwards.
 *
 * Errors are returned, never raised: libjpeg-turbo's error_exit jumps back
 * (setjmp/longjmp) into the call, which frees everything it allocated. A
 * file that ends early, or whose entropy-coded data is damaged (bad Huffman
 * code, a marker in the middle of the data), is an error: libjpeg-turbo
 * would only warn and fill the missing pixels with grey.
 */
#ifndef AC_JPEGDEC_H
#define AC_JPEGDEC_H
#include <stddef.h>
#include <stdint.h>

/* Decodes buf[0..len) (starting at the SOI marker) into malloc'ed pixels with
 * req_c channels (0 = as stored: 1 for grey, 3 otherwise). With min_w or
 * min_h > 0 the image is decoded at the smallest scale n/8 (n = 1..8) whose
 * output is at least min_w x min_h (full size when none is). 0 on success;
 * -1 with the reason in why[0..whylen) ("corrupt JPEG (...)", "truncated or
 * corrupt JPEG (...)", "image too large (...)", "out of memory ..."). */
int ac_jpeg_decode(const uint8_t *buf, size_t len, int req_c, int min_w, int min_h, uint8_t **px, int *w, int *h,
                   int *c, char *why, size_t whylen);
/* Width, height and stored channels (1 or 3) from the header. */
int ac_jpeg_info(const uint8_t *buf, size_t len, int *w, int *h, int *c, char *why, size_t whylen);

/* Largest decoded image accepted, in bytes (width x height x channels), and
 * the memory libjpeg-turbo may use for its own buffers (progressive files
 * keep every coefficient of the image). */
#define AC_IMAGE_MAX_BYTES 2147483647LL
#define AC_JPEG_MAX_MEMORY (1024L * 1024L * 1024L)

#endif
