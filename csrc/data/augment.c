/*
 * augment.c - augmentation kernels (flip, affine warp, random resized crop,
 * colour jitter, noise, blur, random erasing) and the pipeline driver that
 * applies a list of them to one image or to a batch, each sample drawing its
 * parameters from its own forked generator.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "image/image.h"
#include "core/parallel.h"
#include "core/tensor.h"

#define DEG2RAD 0.017453292519943295

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }
static inline double urange(ac_rng *r, double lo, double hi) { return lo + (hi - lo) * ac_rng_uniform(r); }

const char *ac_aug_kind_name(int kind) {
  switch (kind) {
  case AC_AUG_HFLIP: return "HFlip";
  case AC_AUG_AFFINE: return "Affine";
  case AC_AUG_RESIZED_CROP: return "RandomResizedCrop";
  case AC_AUG_JITTER: return "ColorJitter";
  case AC_AUG_NOISE: return "GaussianNoise";
  case AC_AUG_BLUR: return "GaussianBlur";
  case AC_AUG_ERASE: return "RandomErasing";
  default: return "unknown";
  }
}

/* ======================================================================== */
/* validation                                                                */
/* ======================================================================== */

#define BAD(cond, ...) do { if (cond) return ac_fail(__VA_ARGS__); } while (0)

static int validate_op(const ac_aug_op *o, int i) {
  const char *nm = ac_aug_kind_name(o->kind);
  BAD(!strcmp(nm, "unknown"), "augment: op %d has unknown kind %d", i + 1, o->kind);
  BAD(!(o->p >= 0.0f && o->p <= 1.0f), "%s: p must be in [0, 1], got %g", nm, (double)o->p);
  switch (o->kind) {
  case AC_AUG_AFFINE:
    BAD(!(o->rotate >= 0 && o->rotate <= 180), "%s: rotate must be in [0, 180] degrees, got %g", nm, (double)o->rotate);
    BAD(!(o->scale_lo > 0 && o->scale_lo <= o->scale_hi && o->scale_hi < 100), "%s: scale range must be 0 < lo <= hi, got [%g, %g]",
        nm, (double)o->scale_lo, (double)o->scale_hi);
    BAD(!(o->translate_x >= 0 && o->translate_x <= 1 && o->translate_y >= 0 && o->translate_y <= 1),
        "%s: translate fractions must be in [0, 1], got %g, %g", nm, (double)o->translate_x, (double)o->translate_y);
    BAD(!(o->shear >= 0 && o->shear < 90), "%s: shear must be in [0, 90) degrees, got %g", nm, (double)o->shear);
    BAD(o->border < 0 || o->border > 2, "%s: unknown border mode %d", nm, o->border);
    BAD(!isfinite(o->fill), "%s: fill must be finite", nm);
    break;
  case AC_AUG_RESIZED_CROP:
  case AC_AUG_ERASE:
    BAD(!(o->area_lo > 0 && o->area_lo <= o->area_hi && o->area_hi <= 1), "%s: area range must be 0 < lo <= hi <= 1, got [%g, %g]",
        nm, (double)o->area_lo, (double)o->area_hi);
    BAD(!(o->ratio_lo > 0 && o->ratio_lo <= o->ratio_hi && isfinite(o->ratio_hi)), "%s: ratio range must be 0 < lo <= hi, got [%g, %g]",
        nm, (double)o->ratio_lo, (double)o->ratio_hi);
    BAD(!isfinite(o->fill), "%s: fill must be finite", nm);
    break;
  case AC_AUG_JITTER:
    BAD(!(o->brightness >= 0 && o->brightness <= 1), "%s: brightness must be in [0, 1], got %g", nm, (double)o->brightness);
    BAD(!(o->contrast >= 0 && o->contrast <= 1), "%s: contrast must be in [0, 1], got %g", nm, (double)o->contrast);
    BAD(!(o->gamma >= 0 && o->gamma <= 10), "%s: gamma must be in [0, 10], got %g", nm, (double)o->gamma);
    break;
  case AC_AUG_NOISE:
    BAD(!(o->std >= 0 && o->std <= 10), "%s: std must be in [0, 10], got %g", nm, (double)o->std);
    break;
  case AC_AUG_BLUR:
    BAD(!(o->sigma_lo >= 0 && o->sigma_lo <= o->sigma_hi && o->sigma_hi <= 50), "%s: sigma range must be 0 <= lo <= hi <= 50, got [%g, %g]",
        nm, (double)o->sigma_lo, (double)o->sigma_hi);
    break;
  default: break;
  }
  return 0;
}

int ac_aug_validate(const ac_aug_pipeline *pl) {
  BAD(pl->n < 0 || pl->n > AC_AUG_MAXOPS, "augment: a pipeline holds 0..%d ops, got %d", AC_AUG_MAXOPS, pl->n);
  for (int i = 0; i < pl->n; i++)
    if (validate_op(&pl->op[i], i)) return -1;
  return 0;
}

/* ======================================================================== */
/* kernels                                                                   */
/* ======================================================================== */

void ac_aug_hflip(float *img, int c, int h, int w) {
  for (int64_t r = 0; r < (int64_t)c * h; r++) {
    float *p = img + r * w;
    for (int i = 0, j = w - 1; i < j; i++, j--) {
      float t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
  }
}

/* Bilinear sample of all c planes at (sx, sy) with the border rule; the
 * result is kept inside the range of the neighbours that carry weight. */
static inline void warp_slow(const float *src, float *dst, int c, int h, int w, int64_t hw, int64_t o, double sx,
                             double sy, int border, float fill) {
  if (!(sx > -2.0 && sx < w + 1.0 && sy > -2.0 && sy < h + 1.0) && border == AC_BORDER_CONSTANT) {
    for (int k = 0; k < c; k++) dst[k * hw + o] = fill;
    return;
  }
  double fx = floor(sx), fy = floor(sy);
  const float ax = (float)(sx - fx), ay = (float)(sy - fy);
  long lx = (long)fmax(fmin(fx, 1e8), -1e8), ly = (long)fmax(fmin(fy, 1e8), -1e8);
  int x0 = ac_border_index((int)lx, w, border), x1 = ac_border_index((int)lx + 1, w, border);
  int y0 = ac_border_index((int)ly, h, border), y1 = ac_border_index((int)ly + 1, h, border);
  const float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
  for (int k = 0; k < c; k++) {
    const float *p = src + k * hw;
    float v00 = (y0 >= 0 && x0 >= 0) ? p[(int64_t)y0 * w + x0] : fill;
    float v01 = (y0 >= 0 && x1 >= 0) ? p[(int64_t)y0 * w + x1] : fill;
    float v10 = (y1 >= 0 && x0 >= 0) ? p[(int64_t)y1 * w + x0] : fill;
    float v11 = (y1 >= 0 && x1 >= 0) ? p[(int64_t)y1 * w + x1] : fill;
    /* skip zero-weight neighbours so an exact grid hit returns the pixel itself */
    float v = w00 * v00, lo = v00, hi = v00;
    if (w01 != 0.0f) { v += w01 * v01; lo = fminf(lo, v01); hi = fmaxf(hi, v01); }
    if (w10 != 0.0f) { v += w10 * v10; lo = fminf(lo, v10); hi = fmaxf(hi, v10); }
    if (w11 != 0.0f) { v += w11 * v11; lo = fminf(lo, v11); hi = fmaxf(hi, v11); }
    dst[k * hw + o] = v < lo ? lo : v > hi ? hi : v;
  }
}

void ac_aug_warp(const float *src, float *dst, int c, int h, int w, const double A[4], const double t[2], int border,
                 float fill) {
  const double cx = (w - 1) * 0.5, cy = (h - 1) * 0.5;
  const int64_t hw = (int64_t)h * w;
  for (int y = 0; y < h; y++) {
    const double dy = y - cy - t[1];
    const double bx = A[1] * dy + cx, by = A[3] * dy + cy;
    for (int x = 0; x < w; x++) {
      const double dx = x - cx - t[0];
      const double sx = A[0] * dx + bx, sy = A[2] * dx + by;
      const int64_t o = (int64_t)y * w + x;
      if (sx >= 0.0 && sy >= 0.0 && sx < w - 1 && sy < h - 1) {
        /* interior: all four neighbours inside the image */
        const int x0 = (int)sx, y0 = (int)sy;
        const float ax = (float)(sx - x0), ay = (float)(sy - y0);
        const float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
        const float *p = src + (int64_t)y0 * w + x0;
        for (int k = 0; k < c; k++, p += hw) {
          const float a = p[0], b = p[1], cc = p[w], d = p[w + 1];
          float v = w00 * a + w01 * b + w10 * cc + w11 * d;
          const float lo = fminf(fminf(a, b), fminf(cc, d)), hi = fmaxf(fmaxf(a, b), fmaxf(cc, d));
          dst[k * hw + o] = v < lo ? lo : v > hi ? hi : v;
        }
      } else {
        warp_slow(src, dst, c, h, w, hw, o, sx, sy, border, fill);
      }
    }
  }
}

/* Adds N(0, std^2) draws to img[0..n) and clamps to [0, 1]:
 * Box-Muller in float, two normals per pair of 32-bit uniforms. */
static void add_noise(float *img, int64_t n, float std, ac_rng *rng) {
  int64_t i = 0;
  while (i < n) {
    uint64_t bits = ac_rng_next(rng);
    float u1 = ((uint32_t)(bits >> 40) + 1) * (1.0f / 16777217.0f); /* (0, 1] */
    float u2 = (uint32_t)((bits >> 8) & 0xFFFFFF) * (1.0f / 16777216.0f);
    float r = sqrtf(-2.0f * logf(u1)) * std;
    const float sn = sinf(6.2831853f * u2), cs = cosf(6.2831853f * u2);
    img[i] = clamp01(img[i] + r * cs);
    if (++i < n) img[i] = clamp01(img[i] + r * sn);
    i++;
  }
}

int ac_aug_gaussian_blur(float *img, int c, int h, int w, double sigma, float *scratch) {
  if (sigma <= 0) return 0;
  int r = (int)ceil(3.0 * sigma);
  int maxr = (h < w ? h : w) - 1;
  if (r > maxr) r = maxr;
  if (r < 1) return 0;
  float kern[2 * 150 + 1];
  if (r > 150) r = 150;
  double sum = 0;
  for (int i = -r; i <= r; i++) sum += exp(-0.5 * i * i / (sigma * sigma));
  for (int i = -r; i <= r; i++) kern[i + r] = (float)(exp(-0.5 * i * i / (sigma * sigma)) / sum);
  /* horizontal: img -> scratch */
  for (int64_t row = 0; row < (int64_t)c * h; row++) {
    const float *s = img + row * w;
    float *d = scratch + row * w;
    for (int x = 0; x < w; x++) {
      float acc = 0;
      if (x >= r && x + r < w) {
        for (int i = -r; i <= r; i++) acc += kern[i + r] * s[x + i];
      } else {
        for (int i = -r; i <= r; i++) acc += kern[i + r] * s[ac_border_index(x + i, w, AC_BORDER_REFLECT)];
      }
      d[x] = acc;
    }
  }
  /* vertical: scratch -> img */
  for (int k = 0; k < c; k++) {
    const float *s = scratch + (int64_t)k * h * w;
    float *d = img + (int64_t)k * h * w;
    for (int y = 0; y < h; y++) {
      float *drow = d + (int64_t)y * w;
      for (int x = 0; x < w; x++) drow[x] = 0;
      for (int i = -r; i <= r; i++) {
        const float *srow = s + (int64_t)ac_border_index(y + i, h, AC_BORDER_REFLECT) * w;
        const float kv = kern[i + r];
        for (int x = 0; x < w; x++) drow[x] += kv * srow[x];
      }
    }
  }
  /* the kernel sums to 1 in double; keep float rounding from leaving [0,1] */
  for (int64_t i = 0; i < (int64_t)c * h * w; i++) img[i] = clamp01(img[i]);
  return 0;
}

/* Draws a window of area fraction in [lo, hi] and log-uniform aspect w/h in
 * [rlo, rhi] (torchvision's rule: 10 tries, then the largest centred window
 * with a clamped aspect). Returns 0 when no window fits. */
static int draw_window(ac_rng *rng, int h, int w, double lo, double hi, double rlo, double rhi, int strict, int *wy,
                       int *wx, int *wh, int *ww) {
  const double area = (double)h * w;
  for (int attempt = 0; attempt < 10; attempt++) {
    double ta = area * urange(rng, lo, hi);
    double ar = exp(urange(rng, log(rlo), log(rhi)));
    int cw = (int)lround(sqrt(ta * ar)), ch = (int)lround(sqrt(ta / ar));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h && (!strict || (cw < w && ch < h))) {
      *wy = (int)ac_rng_below(rng, (uint64_t)(h - ch + 1));
      *wx = (int)ac_rng_below(rng, (uint64_t)(w - cw + 1));
      *wh = ch;
      *ww = cw;
      return 1;
    }
  }
  if (strict) return 0;
  double in_ratio = (double)w / h;
  int cw, ch;
  if (in_ratio < rlo) {
    cw = w;
    ch = (int)lround(w / rlo);
  } else if (in_ratio > rhi) {
    ch = h;
    cw = (int)lround(h * rhi);
  } else {
    cw = w;
    ch = h;
  }
  if (ch < 1) ch = 1;
  if (cw < 1) cw = 1;
  if (ch > h) ch = h;
  if (cw > w) cw = w;
  *wy = (h - ch) / 2;
  *wx = (w - cw) / 2;
  *wh = ch;
  *ww = cw;
  return 1;
}

/* ======================================================================== */
/* pipeline                                                                  */
/* ======================================================================== */

/* scratch: 2 * c*h*w floats */
static int apply_op(const ac_aug_op *o, float *img, int c, int h, int w, ac_rng *rng, float *scratch) {
  const int64_t n = (int64_t)c * h * w;
  if (o->p < 1.0f && !(ac_rng_uniform(rng) < o->p)) return 0;
  switch (o->kind) {
  case AC_AUG_HFLIP: ac_aug_hflip(img, c, h, w); return 0;
  case AC_AUG_AFFINE: {
    double ang = urange(rng, -o->rotate, o->rotate) * DEG2RAD;
    double sc = urange(rng, o->scale_lo, o->scale_hi);
    double tx = urange(rng, -o->translate_x, o->translate_x) * w;
    double ty = urange(rng, -o->translate_y, o->translate_y) * h;
    double sh = urange(rng, -o->shear, o->shear) * DEG2RAD;
    /* forward map F = R(ang) * [[1, tan(sh)], [0, 1]] * sc; we need F^-1 */
    double ca = cos(ang), sa = sin(ang), ts = tan(sh);
    double F[4] = {ca * sc, (ca * ts - sa) * sc, sa * sc, (sa * ts + ca) * sc};
    double det = F[0] * F[3] - F[1] * F[2];
    double A[4] = {F[3] / det, -F[1] / det, -F[2] / det, F[0] / det};
    double t[2] = {tx, ty};
    ac_aug_warp(img, scratch, c, h, w, A, t, o->border, o->fill);
    memcpy(img, scratch, sizeof(float) * n);
    return 0;
  }
  case AC_AUG_RESIZED_CROP: {
    int wy, wx, wh, ww;
    draw_window(rng, h, w, o->area_lo, o->area_hi, o->ratio_lo, o->ratio_hi, 0, &wy, &wx, &wh, &ww);
    if (ac_image_crop(img, c, h, w, wy, wx, wh, ww, 0.0f, scratch)) return -1;
    return ac_image_resize(scratch, c, wh, ww, img, h, w);
  }
  case AC_AUG_JITTER: {
    double b = urange(rng, fmax(0.0, 1.0 - o->brightness), 1.0 + o->brightness);
    double ct = urange(rng, fmax(0.0, 1.0 - o->contrast), 1.0 + o->contrast);
    double lg = log(1.0 + o->gamma);
    double g = exp(urange(rng, -lg, lg));
    /* pass 1: brightness, and the mean the contrast pivots on */
    double m = 0;
    const float fb = o->brightness > 0 ? (float)b : 1.0f;
    for (int64_t i = 0; i < n; i++) {
      float v = clamp01(img[i] * fb);
      img[i] = v;
      m += v;
    }
    m /= (double)n;
    const float fc = o->contrast > 0 ? (float)ct : 1.0f, fm = (float)m;
    if (o->gamma <= 0) {
      if (o->contrast > 0)
        for (int64_t i = 0; i < n; i++) img[i] = clamp01((img[i] - fm) * fc + fm);
      return 0;
    }
    /* pass 2: contrast, then x^g through a 4096-step table with linear
     * interpolation (exact at the table points, ~1e-4 off elsewhere) */
    enum { LUT = 4096 };
    float lut[LUT + 2];
    for (int k = 0; k <= LUT; k++) lut[k] = powf((float)k / LUT, (float)g);
    lut[LUT + 1] = 1.0f;
    for (int64_t i = 0; i < n; i++) {
      float v = clamp01((img[i] - fm) * fc + fm) * LUT;
      int k = (int)v;
      float f = v - k;
      img[i] = clamp01(lut[k] + f * (lut[k + 1] - lut[k]));
    }
    return 0;
  }
  case AC_AUG_NOISE:
    add_noise(img, n, o->std, rng);
    return 0;
  case AC_AUG_BLUR: return ac_aug_gaussian_blur(img, c, h, w, urange(rng, o->sigma_lo, o->sigma_hi), scratch);
  case AC_AUG_ERASE: {
    int wy, wx, wh, ww;
    if (!draw_window(rng, h, w, o->area_lo, o->area_hi, o->ratio_lo, o->ratio_hi, 1, &wy, &wx, &wh, &ww)) return 0;
    for (int k = 0; k < c; k++)
      for (int y = wy; y < wy + wh; y++) {
        float *p = img + ((int64_t)k * h + y) * w;
        for (int x = wx; x < wx + ww; x++) p[x] = o->random_fill ? (float)ac_rng_uniform(rng) : o->fill;
      }
    return 0;
  }
  default: return ac_fail("augment: unknown op kind %d", o->kind);
  }
}

int ac_aug_sample_with(const ac_aug_pipeline *pl, float *img, int c, int h, int w, ac_rng *rng, float *scratch) {
  if (c <= 0 || h <= 0 || w <= 0) return ac_fail("augment: empty image (%d x %d x %d)", c, h, w);
  int rc = 0;
  for (int i = 0; i < pl->n && rc == 0; i++) rc = apply_op(&pl->op[i], img, c, h, w, rng, scratch);
  return rc;
}

int ac_aug_sample(const ac_aug_pipeline *pl, float *img, int c, int h, int w, ac_rng *rng) {
  if (pl->n == 0) return 0;
  if (c <= 0 || h <= 0 || w <= 0) return ac_fail("augment: empty image (%d x %d x %d)", c, h, w);
  float *scratch = malloc(sizeof(float) * 2 * (size_t)c * h * w);
  if (!scratch) return ac_fail("augment: out of memory for a %d x %d x %d image", c, h, w);
  int rc = ac_aug_sample_with(pl, img, c, h, w, rng, scratch);
  free(scratch);
  return rc;
}

typedef struct {
  const ac_aug_pipeline *pl;
  float *x;
  int c, h, w;
  ac_rng base;
  uint64_t key0;
  int failed;
  char msg[256];
} batch_ctx;

static void batch_task(void *vctx, int64_t begin, int64_t end, int tid) {
  batch_ctx *b = vctx;
  const int64_t per = (int64_t)b->c * b->h * b->w;
  float *scratch = malloc(sizeof(float) * 2 * (size_t)per);
  int rc = scratch ? 0 : ac_fail("augment: out of memory for a %d x %d x %d image", b->c, b->h, b->w);
  for (int64_t i = begin; i < end && rc == 0; i++) {
    ac_rng r;
    ac_rng_fork(&b->base, b->key0 + (uint64_t)i, &r);
    rc = ac_aug_sample_with(b->pl, b->x + i * per, b->c, b->h, b->w, &r, scratch);
  }
  free(scratch);
  if (rc && !__atomic_exchange_n(&b->failed, 1, __ATOMIC_ACQ_REL)) {
    strncpy(b->msg, ac_error(), sizeof b->msg - 1);
    b->msg[sizeof b->msg - 1] = 0;
  }
}

int ac_aug_batch(const ac_aug_pipeline *pl, float *x, int64_t n, int c, int h, int w, uint64_t seed, uint64_t key0) {
  if (ac_aug_validate(pl)) return -1;
  if (n <= 0 || pl->n == 0) return 0;
  batch_ctx b = {.pl = pl, .x = x, .c = c, .h = h, .w = w, .key0 = key0, .failed = 0};
  ac_rng_seed(&b.base, seed);
  int64_t per = (int64_t)c * h * w;
  int64_t grain = per >= 16384 ? 1 : 16384 / (per > 0 ? per : 1);
  ac_parallel_for(n, grain, batch_task, &b);
  if (b.failed) return ac_fail("%s", b.msg);
  return 0;
}
