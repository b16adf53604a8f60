/*
 * exif.h - EXIF orientation of JPEG files: the Orientation tag (0x0112) of
 * the APP1 "Exif" segment's first image directory, and the transposition
 * that makes the decoded pixels upright, as Pillow's ImageOps.exif_transpose
 * and OpenCV's imread do:
 *   1 as stored          2 mirrored left-right   3 rotated 180
 *   4 mirrored top-down  5 transposed            6 rotated 90 clockwise
 *   7 transversed        8 rotated 90 counter-clockwise
 * (5 to 8 swap width and height).
 */
#ifndef AC_IMAGE_EXIF_H
#define AC_IMAGE_EXIF_H
#include <stddef.h>
#include <stdint.h>

/* 1..8 from the file's EXIF data; 1 when there is none, it is not a JPEG,
 * or the tag is malformed or out of range (never an error). */
int ac_exif_orientation(const uint8_t *buf, size_t len);

/* Replaces *px (HWC, c channels, w x h) by its upright version for
 * `orientation`; *w and *h are swapped for 5..8. 0, or -1 (ac_fail) when
 * out of memory (then *px is unchanged). */
int ac_image_orient(uint8_t **px, int *w, int *h, int c, int orientation);

/* ac_image_decode_file / _mem (image.h) followed by ac_image_orient with
 * the file's orientation when `exif` is non-zero. */
int ac_image_decode_file_exif(const char *path, int req_c, int exif, uint8_t **px, int *w, int *h, int *c);
int ac_image_decode_mem_exif(const uint8_t *buf, size_t len, int req_c, int exif, uint8_t **px, int *w, int *h,
                             int *c);

#endif
