/*
 * png.h - PNG decoding through libpng, with every integrity check on (chunk
 * CRCs, the zlib stream's Adler-32, complete image data). Returns 0, or -1
 * after ac_fail() with a message naming `name`.
 */
#ifndef AC_PNG_H
#define AC_PNG_H
#include <stddef.h>
#include <stdint.h>

/* Whether b starts with the PNG signature. */
int ac_png_is(const uint8_t *b, size_t n);
/* 8-bit interleaved pixels (*px, malloc'ed) with the stored channels (1-4;
 * palette expanded, tRNS as alpha, 16-bit reduced to the high byte); images
 * of more than max_bytes of pixels are refused before allocating. */
int ac_png_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_bytes, uint8_t **px, int *w, int *h,
                  int *c);

#endif
