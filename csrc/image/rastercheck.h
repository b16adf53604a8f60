/*
 * rastercheck.h - completeness checks for the formats stb_image decodes
 * (BMP, TGA): stb_image reads past the end of a short file as zeros, so a
 * truncated BMP or TGA decoded to black rows without a word. These parse the
 * header as stb_image does, compute how many bytes the pixels need (walking
 * the packets of an RLE TGA) and refuse a file that holds fewer.
 * Each returns 0 when the buffer is not of its format or is complete, and -1
 * after ac_fail("<name>: truncated BMP: ...") otherwise.
 */
#ifndef AC_RASTERCHECK_H
#define AC_RASTERCHECK_H
#include <stddef.h>
#include <stdint.h>

int ac_bmp_check(const char *name, const uint8_t *b, size_t n);
int ac_tga_check(const char *name, const uint8_t *b, size_t n);

#endif
