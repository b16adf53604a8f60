/*
 * stb_impl.c - the one file that compiles stb_image's implementation (the
 * header of Debian's libstb-dev, stb_image 2.27) into the library, static,
 * instead of calling the copy in libstb.so:
 *
 * - JPEG is left out (STBI_NO_JPEG): stb_image 2.27's JPEG decoder writes
 *   past its Huffman arrays and reads outside them on damaged files, and its
 *   STBI_ASSERT there aborts the process. JPEG goes to libjpeg-turbo.
 * - PSD, HDR and PIC are left out: no data set uses them, and every format
 *   left out is code a hostile file cannot reach.
 * - STBI_ASSERT never aborts: a failed internal check is recorded and the
 *   call returns an error (csrc/image.c also keeps inputs away from the
 *   known ones).
 * - Allocations are zero-filled, so a decoder that does not notice missing
 *   data (truncated TGA, BMP, ...) yields zeros, never old heap contents.
 * - Failure reasons are per thread, reset on every call, and always
 *   constant text (see reason() below); a failed allocation is reported as
 *   "out of memory".
 * - Dimensions are capped (STBI_MAX_DIMENSIONS) at 65535 per side.
 *
 * stb_image_write still comes from libstb.so: it only encodes the
 * library's own pixels.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/stb_impl.h"

static __thread int stb_assert_failed;
static void stb_assert_fail(void) { stb_assert_failed = 1; }

/* Some of stb_image's paths drop the reason when an allocation fails (a
 * huge PNG's zlib buffer): a failed allocation is recorded here, so the
 * error says "out of memory" instead of "corrupt". */
static __thread int stb_alloc_failed;

static void *stb_calloc(size_t n) {
  void *p = calloc(1, n);
  if (!p) stb_alloc_failed = 1;
  return p;
}

/* realloc whose new tail is zero-filled, like the fresh allocations */
static void *stb_realloc_zero(void *p, size_t old, size_t n) {
  void *q = realloc(p, n);
  if (!q) stb_alloc_failed = 1;
  if (q && n > old) memset((char *)q + old, 0, n - old);
  return q;
}

#define STBI_ASSERT(x) ((x) ? (void)0 : stb_assert_fail())
#define STBI_MALLOC(sz) stb_calloc(sz)
#define STBI_REALLOC_SIZED(p, oldsz, newsz) stb_realloc_zero((p), (oldsz), (newsz))
#define STBI_FREE(p) free(p)
#define STBI_MAX_DIMENSIONS 65535
#define STBI_NO_JPEG
#define STBI_NO_PSD
#define STBI_NO_HDR
#define STBI_NO_PIC
#define STBI_NO_LINEAR
#define STBI_NO_STDIO
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
/* stb_image declares functions it never defines when STB_IMAGE_STATIC */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
#pragma GCC diagnostic pop

/* One failure reason of stb_image 2.27 is not a constant string: an unknown
 * critical PNG chunk is reported through a static buffer holding the
 * chunk's four type bytes from the file (any bytes, shared by all threads).
 * Its address is learned once from a tiny PNG with such a chunk, and that
 * reason is replaced by a constant text without ever reading the buffer. */
static const char *png_chunk_buffer;
static pthread_once_t png_chunk_once = PTHREAD_ONCE_INIT;
static void find_png_chunk_buffer(void) {
  static const uint8_t probe[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n',
                                  0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 'Q', 'Q', 'Q', 'Q', 0, 0, 0, 0};
  int w, h, c;
  stbi__g_failure_reason = NULL;
  uint8_t *p = stbi_load_from_memory(probe, (int)sizeof probe, &w, &h, &c, 0);
  if (p) free(p);
  else png_chunk_buffer = stbi__g_failure_reason;
}

static const char *reason(void) {
  if (stb_alloc_failed) return "out of memory";
  if (stb_assert_failed) return "stb_image internal check failed (corrupt file)";
  if (stbi__g_failure_reason && stbi__g_failure_reason == png_chunk_buffer) return "unknown critical PNG chunk";
  return stbi__g_failure_reason;
}

/* Every call starts with no failure recorded. */
static void begin_call(void) {
  pthread_once(&png_chunk_once, find_png_chunk_buffer);
  stbi__g_failure_reason = NULL;
  stb_assert_failed = 0;
  stb_alloc_failed = 0;
}

uint8_t *ac_stb_load(const uint8_t *buf, int len, int req_c, int *w, int *h, int *c, const char **why) {
  begin_call();
  uint8_t *p = stbi_load_from_memory(buf, len, w, h, c, req_c);
  if (p && stb_assert_failed) {
    free(p);
    p = NULL;
  }
  if (!p) *why = reason();
  return p;
}

int ac_stb_info(const uint8_t *buf, int len, int *w, int *h, int *c, const char **why) {
  begin_call();
  if (stbi_info_from_memory(buf, len, w, h, c) && !stb_assert_failed) return 0;
  *why = reason();
  return -1;
}
