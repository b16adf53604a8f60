/*
 * fuzz_image.c - libFuzzer harness for the image decode path: the library's
 * wrapper ac_image_decode_mem (csrc/image.h; format checks, truncated-JPEG
 * and bad-Huffman-table detection, stb_image) followed by the HWC u8 -> CHW
 * float conversion the loaders apply. stb_image's implementation is compiled
 * into this harness (and so instrumented); it takes precedence over the copy
 * in libstb.so. The first input byte picks the requested channel count.
 */
#include <stdint.h>
#include <stdlib.h>

#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#include "image.h"
#include "tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs announcing more pixels than this are skipped: decoding them is
 * allowed to need the memory they ask for, which is not a bug. */
#define MAX_PIXELS (1024 * 1024)

/* stb_image 2.27 (Debian's libstb) writes past its Huffman arrays on a JPEG
 * DHT segment whose 16 code counts sum to more than 256 (found by this
 * harness: spec/fixtures/fuzz/image/jpeg_dht_*.bin). Bytes past the end of
 * the file read as 0 in stb_image, so a table cut short by the end of the
 * file counts with what is there; 0xFF fill bytes may precede the SOI
 * marker. Returns 1 when a DHT segment declares
 * more than 256 codes in one table. */
static int jpeg_has_oversized_dht(const uint8_t *b, size_t n) {
  /* stb_image skips any number of 0xFF fill bytes before the SOI marker */
  size_t s = 0;
  while (s + 1 < n && b[s] == 0xFF && b[s + 1] == 0xFF) s++;
  if (n < s + 4 || b[s] != 0xFF || b[s + 1] != 0xD8) return 0;
  for (size_t i = s + 2; i + 1 < n; i++) {
    if (b[i] != 0xFF || b[i + 1] != 0xC4) continue;
    size_t L = i + 3 < n ? ((size_t)b[i + 2] << 8) | b[i + 3] : 0, p = i + 4, end = i + 2 + L;
    if (end > n) end = n;
    while (p < end) {
      unsigned total = 0;
      for (size_t k = 1; k <= 16 && p + k < n; k++) total += b[p + k];
      if (total > 256) return 1;
      p += 17 + total;
    }
  }
  return 0;
}

/* With AC_FUZZ_SKIP_KNOWN=1 in the environment, inputs that hit a recorded,
 * still open issue (see fuzz/README.md) are skipped so that a run can look
 * for other faults. */
static int skip_known(void) {
  static int v = -1;
  if (v < 0) {
    const char *e = getenv("AC_FUZZ_SKIP_KNOWN");
    v = e && *e == '1';
  }
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int req = data[0] % 5; /* 0 = as stored, 1..4 */
  data++;
  size--;
  int oversized_dht = jpeg_has_oversized_dht(data, size);
  if (oversized_dht && skip_known()) return 0;
  int iw, ih, ic;
  /* the size probe calls stb_image directly: not on the inputs it mishandles */
  if (size > 0 && size < INT32_MAX && !oversized_dht && stbi_info_from_memory(data, (int)size, &iw, &ih, &ic) &&
      (int64_t)iw * ih > MAX_PIXELS)
    return 0;
  uint8_t *px = NULL;
  int w = 0, h = 0, c = 0;
  if (ac_image_decode_mem(data, size, req, &px, &w, &h, &c) != 0) {
    if (!*ac_error()) __builtin_trap();
    return 0;
  }
  if (w <= 0 || h <= 0 || c < 1 || c > 4 || (req && c != req)) __builtin_trap();
  int oc = (c == 1 || c == 2) ? 1 : 3;
  float *img = malloc(sizeof(float) * (size_t)oc * (size_t)w * (size_t)h);
  if (img) {
    if (ac_image_u8hwc_to_chw(px, h, w, c, oc, img) != 0) __builtin_trap();
    free(img);
  }
  ac_image_free(px);
  return 0;
}
