/*
 * augment.h - data augmentation kernels on float C x H x W images and
 * [N, C, H, W] batches. A pipeline is a short list of operations, each with
 * a probability and its parameter ranges; every sample draws its parameters
 * from its own generator forked from (seed, key), so a batch comes out the
 * same whatever the number of threads that computes it.
 *
 *   ac_aug_pipeline pl = {0};
 *   pl.op[pl.n++] = (ac_aug_op){.kind = AC_AUG_HFLIP, .p = 0.5f};
 *   pl.op[pl.n++] = (ac_aug_op){.kind = AC_AUG_AFFINE, .p = 1, .rotate = 10,
 *                               .scale_lo = 0.9f, .scale_hi = 1.1f};
 *   if (ac_aug_validate(&pl) || ac_aug_batch(&pl, x, n, c, h, w, seed, 0)) puts(ac_error());
 *
 * Value ranges: for inputs in [0, 1] (and fill values in [0, 1]) every
 * operation's output stays in [0, 1] (interpolation is convex, jitter and
 * noise clamp).
 */
#ifndef AC_AUGMENT_H
#define AC_AUGMENT_H
#include <stdint.h>
#include "core/random.h"

typedef enum {
  AC_AUG_HFLIP = 1,        /* mirror left-right */
  AC_AUG_AFFINE = 2,       /* rotation, scale, translation, shear about the centre */
  AC_AUG_RESIZED_CROP = 3, /* random window (area, aspect) resized back to H x W */
  AC_AUG_JITTER = 4,       /* brightness, contrast, gamma */
  AC_AUG_NOISE = 5,        /* additive Gaussian noise, clamped */
  AC_AUG_BLUR = 6,         /* Gaussian blur with a random sigma */
  AC_AUG_ERASE = 7         /* random erasing of one rectangle */
} ac_aug_kind;

typedef struct ac_aug_op {
  int kind;
  float p; /* probability that the op is applied to a sample */
  /* AFFINE: angle ~ U(-rotate, rotate) degrees, scale ~ U(scale_lo, scale_hi),
   * shift ~ U(-translate_x, translate_x) * W (same for y with H),
   * x-shear ~ U(-shear, shear) degrees; pixels from outside by `border`. */
  float rotate, scale_lo, scale_hi, translate_x, translate_y, shear;
  int border; /* AC_BORDER_* from image.h */
  float fill; /* constant border / erase value */
  /* RESIZED_CROP and ERASE: area fraction ~ U(area_lo, area_hi), aspect ratio
   * log-uniform in [ratio_lo, ratio_hi]. */
  float area_lo, area_hi, ratio_lo, ratio_hi;
  int random_fill; /* ERASE: fill with U(0,1) noise instead of `fill` */
  /* JITTER: factors ~ U(1-b, 1+b), U(1-c, 1+c); gamma exponent
   * log-uniform in [1/(1+g), 1+g]. */
  float brightness, contrast, gamma;
  float std;                /* NOISE */
  float sigma_lo, sigma_hi; /* BLUR */
} ac_aug_op;

#define AC_AUG_MAXOPS 16
typedef struct ac_aug_pipeline {
  int n;
  ac_aug_op op[AC_AUG_MAXOPS];
} ac_aug_pipeline;

/* Checks every op's parameters; an error names the op and the value. */
int ac_aug_validate(const ac_aug_pipeline *pl);
const char *ac_aug_kind_name(int kind);

/* Applies the pipeline to one image in place, drawing from rng. */
int ac_aug_sample(const ac_aug_pipeline *pl, float *img, int c, int h, int w, ac_rng *rng);
/* The same with caller-provided scratch memory of 2 * c * h * w floats. */
int ac_aug_sample_with(const ac_aug_pipeline *pl, float *img, int c, int h, int w, ac_rng *rng, float *scratch);

/* Applies the pipeline to a contiguous [n, c, h, w] batch in place with the
 * library's thread pool. Sample i uses the stream fork(seed, key0 + i). */
int ac_aug_batch(const ac_aug_pipeline *pl, float *x, int64_t n, int c, int h, int w, uint64_t seed,
                 uint64_t key0);

/* ---- single kernels (deterministic; used by the ops and by tests) -------- */
void ac_aug_hflip(float *img, int c, int h, int w);
/* dst = src sampled through the inverse map src_xy = A (dst_xy - centre - t) + centre,
 * A = {a00, a01, a10, a11} with t = {tx, ty}; bilinear, border by mode. */
void ac_aug_warp(const float *src, float *dst, int c, int h, int w, const double A[4], const double t[2],
                 int border, float fill);
/* Gaussian blur in place (separable, reflecting border); scratch holds c*h*w floats. */
int ac_aug_gaussian_blur(float *img, int c, int h, int w, double sigma, float *scratch);

#endif
