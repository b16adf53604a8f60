/*
 * make_jpeg_fixtures.c - writes the small JPEGs of spec/fixtures/jpeg/ that
 * stb_image_write cannot make (it writes YCbCr only): a grey file and Adobe
 * CMYK and YCCK files (values stored inverted, as Photoshop does).
 *
 *   cc -o /tmp/mjf tools/make_jpeg_fixtures.c -ljpeg && /tmp/mjf spec/fixtures/jpeg
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static void write_jpeg(const char *dir, const char *name, int comps, J_COLOR_SPACE in, J_COLOR_SPACE stored,
                       const unsigned char *px, int w, int h) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  struct jpeg_compress_struct ci;
  struct jpeg_error_mgr err;
  ci.err = jpeg_std_error(&err);
  jpeg_create_compress(&ci);
  jpeg_stdio_dest(&ci, f);
  ci.image_width = (JDIMENSION)w;
  ci.image_height = (JDIMENSION)h;
  ci.input_components = comps;
  ci.in_color_space = in;
  jpeg_set_defaults(&ci);
  jpeg_set_colorspace(&ci, stored);
  jpeg_set_quality(&ci, 100, TRUE);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * w * comps);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  fclose(f);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  enum { W = 16, H = 8 };
  unsigned char grey[W * H], cmyk[W * H * 4];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) grey[y * W + x] = (unsigned char)(x * 16); /* columns 0, 16, ..., 240 */
  /* left half red, right half blue, in inverted CMYK (255 = no ink) */
  for (int i = 0; i < W * H; i++) {
    unsigned char *p = cmyk + 4 * i;
    int left = (i % W) < W / 2;
    p[0] = left ? 255 : 0;   /* C */
    p[1] = 0;                /* M */
    p[2] = left ? 0 : 255;   /* Y */
    p[3] = 255;              /* K */
  }
  write_jpeg(dir, "grey_16x8.jpg", 1, JCS_GRAYSCALE, JCS_GRAYSCALE, grey, W, H);
  write_jpeg(dir, "adobe_cmyk_16x8.jpg", 4, JCS_CMYK, JCS_CMYK, cmyk, W, H);
  write_jpeg(dir, "adobe_ycck_16x8.jpg", 4, JCS_CMYK, JCS_YCCK, cmyk, W, H);
  return 0;
}
