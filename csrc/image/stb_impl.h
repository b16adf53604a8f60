/*
 * stb_impl.h - the stb_image decoder compiled into the library (stb_impl.c)
 * behind prefixed names: BMP, TGA and GIF (first frame) are decoded by it.
 * JPEG goes to libjpeg-turbo (jpegdec.h), PNG to libpng (png.h), PNM to
 * pnm.h, though stb_image still compiles those readers (image.info of a PNG
 * uses its header parser); PSD, HDR and PIC are not compiled in.
 *
 * Buffers come from malloc (zero-filled) and are released with free(). The
 * failure reason is per thread and reset on every call; an stb_image
 * internal check (STBI_ASSERT) that fails turns the call into an error.
 */
#ifndef AC_STB_IMPL_H
#define AC_STB_IMPL_H
#include <stdint.h>

/* Decodes buf[0..len) to 8-bit HWC pixels with req_c channels (0 = as
 * stored). NULL on failure with *why set (a static string). */
uint8_t *ac_stb_load(const uint8_t *buf, int len, int req_c, int *w, int *h, int *c, const char **why);
/* Width, height and stored channels; 0 on success, -1 with *why. */
int ac_stb_info(const uint8_t *buf, int len, int *w, int *h, int *c, const char **why);

#endif
