/*
 * fuzz_image.c - libFuzzer harness for the image decode path: the library's
 * wrapper ac_image_decode_mem (csrc/image.h: format detection, the PNM
 * checks, libjpeg-turbo for JPEG through csrc/jpegdec.c, the stb_image
 * built into the library by csrc/stb_impl.c for the rest) followed by the
 * HWC u8 -> CHW float conversion the loaders apply. stb_image and the
 * wrapper are instrumented (they are compiled with the kernels);
 * libjpeg-turbo is Debian's shared library. The first input byte picks the
 * requested channel count; every few inputs a JPEG is also decoded at a DCT
 * scale (ac_image_decode_named with a minimum size).
 */
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"
#include "core/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs announcing more pixels than this are skipped: decoding them is
 * allowed to need the memory they ask for, which is not a bug. */
#define MAX_PIXELS (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0];
  const int req = mode % 5; /* 0 = as stored, 1..4 */
  data++;
  size--;
  int iw, ih, ic;
  if (ac_image_info_named("<fuzz>", data, size, &iw, &ih, &ic) == 0 && (int64_t)iw * ih > MAX_PIXELS) return 0;
  uint8_t *px = NULL;
  int w = 0, h = 0, c = 0;
  /* mode bits 3..4: 0 full size; otherwise at least (iw, ih) / 2^bits */
  const int shrink = (mode >> 3) & 3;
  const int mw = shrink && iw > 0 ? (iw >> shrink) + 1 : 0, mh = shrink && ih > 0 ? (ih >> shrink) + 1 : 0;
  if (ac_image_decode_named("<fuzz>", data, size, req, mw, mh, &px, &w, &h, &c) != 0) {
    if (!*ac_error()) __builtin_trap();
    for (const char *e = ac_error(); *e; e++)
      if (*e < 0x20 || *e > 0x7E) __builtin_trap(); /* messages are printable text */
    return 0;
  }
  if (w <= 0 || h <= 0 || c < 1 || c > 4 || (req && c != req)) __builtin_trap();
  if (mw && (w < (mw < iw ? mw : iw) || h < (mh < ih ? mh : ih) || w > iw || h > ih)) __builtin_trap();
  int oc = (c == 1 || c == 2) ? 1 : 3;
  float *img = malloc(sizeof(float) * (size_t)oc * (size_t)w * (size_t)h);
  if (img) {
    if (ac_image_u8hwc_to_chw(px, h, w, c, oc, img) != 0) __builtin_trap();
    free(img);
  }
  ac_image_free(px);
  return 0;
}
