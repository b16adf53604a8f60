/*
 * pnm.h - netpbm (PBM, PGM, PPM; plain and raw) decoding into 8-bit
 * interleaved pixels, samples scaled from 0..maxval to 0..255.
 * Functions return 0, or -1 after ac_fail() with a message naming `name`.
 */
#ifndef AC_PNM_H
#define AC_PNM_H
#include <stddef.h>
#include <stdint.h>

/* Refused before allocating: more samples than this (2 GiB). */
#define AC_PNM_MAX_SAMPLES (2LL << 30)

typedef struct {
  int w, h, channels; /* channels: 1 (PBM, PGM) or 3 (PPM) */
  int maxval;         /* 1..65535 (1 for PBM) */
  int plain, bitmap;  /* P1-P3 / PBM */
  size_t data_offset; /* first byte of the raster */
} ac_pnm_header;

/* Whether b starts with a netpbm magic number, P1 to P6. */
int ac_pnm_is(const uint8_t *b, size_t n);
/* The header only. */
int ac_pnm_info(const char *name, const uint8_t *b, size_t n, ac_pnm_header *hd);
/* The first image: *px (malloc'ed, w * h * c bytes), its size and channels. */
int ac_pnm_decode(const char *name, const uint8_t *b, size_t n, uint8_t **px, int *w, int *h, int *c);

#endif
