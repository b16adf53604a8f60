/*
 * synthfer.c - the synthfer generator: procedural 48x48 grey faces of the 7
 * canonical expression classes, drawn from facial-action parameters with
 * identity, pose, lighting, occlusion, blur and noise variation. See
 * synthfer.h for the contract (determinism, balance, value range).
 *
 * Rendering: each output pixel is mapped into face coordinates (the inverse
 * of the pose); every shape gives a signed distance there (negative inside)
 * and its coverage of the pixel is clamp(0.5 - d / pixel_size): analytic
 * anti-aliasing without supersampling. Shapes are composited back to front.
 * Face coordinates: x right, y down, the face is an ellipse of about
 * 0.67 x 0.85 around the origin, the image spans [-1, 1] at scale 1.
 */
#include "data/synthfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "io/fileio.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"

const char *const ac_synthfer_class_names[AC_SYNTHFER_CLASSES] = {
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger"};

/* ---- options --------------------------------------------------------- */

void ac_synthfer_defaults(ac_synthfer_opts *o) {
  o->difficulty = 1.0f;
  o->max_rotation = 20.0f;
  o->occlusion = 0.25f;
  o->noise = 0.04f;
  o->blur = 0.3f;
}

int ac_synthfer_check_opts(const ac_synthfer_opts *o) {
  if (!(o->difficulty >= 0.0f && o->difficulty <= 3.0f))
    return ac_fail("difficulty must be in [0, 3], got %g", (double)o->difficulty);
  if (!(o->max_rotation >= 0.0f && o->max_rotation <= 45.0f))
    return ac_fail("max_rotation must be in [0, 45] degrees, got %g", (double)o->max_rotation);
  if (!(o->occlusion >= 0.0f && o->occlusion <= 1.0f))
    return ac_fail("occlusion must be a probability in [0, 1], got %g", (double)o->occlusion);
  if (!(o->noise >= 0.0f && o->noise <= 0.5f))
    return ac_fail("noise must be in [0, 0.5], got %g", (double)o->noise);
  if (!(o->blur >= 0.0f && o->blur <= 1.0f))
    return ac_fail("blur must be a probability in [0, 1], got %g", (double)o->blur);
  return 0;
}

/* ---- facial actions ---------------------------------------------------- */

/* Expression parameters (face units). Order matters: the tables below
 * list values in this order. */
enum {
  P_CURV,    /* mouth corners up (+) / down (-) */
  P_OPEN,    /* mouth half opening */
  P_WIDTH,   /* mouth half width */
  P_ROUND,   /* 0 lens-shaped, 1 O-shaped opening */
  P_UPPER,   /* share of the opening above the lip line (upper-lip raise) */
  P_LIPS,    /* lip thickness factor (pressed lips < 1) */
  P_TEETH,   /* share of the opening filled by teeth */
  P_BROW_H,  /* brow height above the eye centre */
  P_SLANT,   /* inner brow end raised (+) / lowered (-) */
  P_BROW_IN, /* brows drawn together */
  P_ARCH,    /* brow arch */
  P_EYE_UP,  /* upper-lid opening (x eye half width) */
  P_EYE_LO,  /* lower-lid opening (cheek raise lowers it) */
  P_WRINKLE, /* nose wrinkle */
  P_CHEEK,   /* cheek raise */
  P_FOLD,    /* nasolabial fold depth */
  P_FROWN,   /* vertical frown lines between the brows */
  P_ASYM,    /* mouth asymmetry */
  P_JAW,     /* jaw drop (mouth moves down) */
  NPARAM
};

/* Prototypes at full intensity, class 1..7. */
static const float proto[AC_SYNTHFER_CLASSES][NPARAM] = {
    /*        curv   open  width round upper lips teeth brow_h slant  in    arch  eyeup eyelo wrink cheek fold  frown asym  jaw */
    /* Neu */ {0.00f, 0.00f, 0.22f, 0.0f, 0.50f, 1.0f, 0.0f, 0.170f, 0.00f, 0.00f, 0.02f, 0.45f, 0.36f, 0.0f, 0.0f, 0.10f, 0.0f, 0.00f, 0.00f},
    /* Hap */ {0.10f, 0.045f, 0.29f, 0.0f, 0.35f, 0.8f, 0.8f, 0.175f, 0.00f, 0.00f, 0.03f, 0.36f, 0.10f, 0.0f, 1.0f, 0.65f, 0.0f, 0.00f, 0.02f},
    /* Sad */ {-0.065f, 0.00f, 0.20f, 0.0f, 0.50f, 1.15f, 0.0f, 0.180f, 0.065f, 0.01f, -0.01f, 0.32f, 0.36f, 0.0f, 0.0f, 0.20f, 0.3f, 0.00f, 0.00f},
    /* Sur */ {0.00f, 0.13f, 0.15f, 1.0f, 0.45f, 0.8f, 0.15f, 0.290f, 0.00f, 0.00f, 0.05f, 0.78f, 0.46f, 0.0f, 0.0f, 0.05f, 0.0f, 0.00f, 0.06f},
    /* Fea */ {-0.035f, 0.065f, 0.25f, 0.25f, 0.45f, 0.8f, 0.5f, 0.250f, 0.055f, 0.03f, -0.01f, 0.72f, 0.42f, 0.0f, 0.0f, 0.20f, 0.4f, 0.00f, 0.02f},
    /* Dis */ {-0.045f, 0.03f, 0.20f, 0.0f, 0.85f, 1.0f, 0.5f, 0.120f, -0.03f, 0.02f, 0.00f, 0.30f, 0.20f, 1.0f, 0.4f, 0.80f, 0.5f, 0.03f, 0.00f},
    /* Ang */ {-0.02f, 0.00f, 0.18f, 0.0f, 0.50f, 0.5f, 0.0f, 0.100f, -0.09f, 0.04f, 0.00f, 0.50f, 0.26f, 0.3f, 0.0f, 0.30f, 1.0f, 0.00f, 0.00f},
};

/* Jitter (standard deviation at difficulty 1) of each parameter. */
static const float jitter[NPARAM] = {
    0.02f, 0.015f, 0.02f, 0.15f, 0.08f, 0.15f, 0.15f, 0.02f, 0.02f, 0.01f,
    0.01f, 0.06f, 0.05f, 0.15f, 0.15f, 0.15f, 0.15f, 0.01f, 0.015f};

/* The class real data confuses each class with (0-based). */
static const int partner[AC_SYNTHFER_CLASSES] = {2, 0, 0, 4, 3, 6, 5};

/* ---- one sample's parameters -------------------------------------------- */

typedef struct face {
  float e[NPARAM];
  /* identity */
  float rx, ry, cy, skin, hair, brow_shade, iris, es, ew, ey, my, ny;
  float brow_t, sclera, lip_shade, mouth_dark;
  int hair_style; /* 0 short, 1 fringe, 2 long, 3 bald */
  float hairline, hair_tilt;
  float gaze_x, gaze_y;
  /* scene */
  float bg, bg_gx, bg_gy, tex_amp, tex_fx, tex_fy, tex_ph, clothes, neck_w;
  float light_x, light_y, light_amp, contrast, bright, gamma;
  /* pose: face coords = R(-rot) (image - shift) / scale */
  float cosr, sinr, scale, sx, sy;
  /* occluder */
  int occ;        /* -1 none, 0 hand, 1 bar, 2 sunglasses, 3 mask */
  float oc_x, oc_y, oc_a, oc_b, oc_ang, oc_shade;
  /* degradations */
  float blur_sigma, noise_sigma;
} face;

static float unif(ac_rng *r, float a, float b) { return a + (b - a) * (float)ac_rng_uniform(r); }
static float clampf(float v, float a, float b) { return v < a ? a : (v > b ? b : v); }

/* DIFF_SCALE maps the user's difficulty 1 to the internal level that the
 * calibration (tools/synthfer_calibrate.py, doc/synthfer.md) puts at about
 * 75-80 % test accuracy for a PyTorch CE-only mini-Xception after 5 epochs
 * on 20,000 samples (about 70 % for the library's own mini-Xception). */
#define DIFF_SCALE 0.6f

static void sample_expression(ac_rng *r, int cls, const ac_synthfer_opts *o, face *f) {
  float diff = DIFF_SCALE * o->difficulty;
  /* expression: neutral + t * (mix of own and partner prototype - neutral) + jitter */
  float lo = clampf(0.8f - 0.55f * diff, 0.0f, 1.0f);
  float t = unif(r, lo, 1.0f);
  float m = unif(r, 0.0f, clampf(0.4f * diff, 0.0f, 0.6f));
  int pc = partner[cls];
  float js = diff <= 0.0f ? 0.0f : 0.5f + 0.5f * diff;
  for (int k = 0; k < NPARAM; k++) {
    float target = (1.0f - m) * proto[cls][k] + m * proto[pc][k];
    f->e[k] = proto[0][k] + t * (target - proto[0][k]) + js * jitter[k] * (float)ac_rng_normal(r);
  }
  /* anger: about a third show clenched teeth through open lips */
  float u_teeth = (float)ac_rng_uniform(r), u_closed = (float)ac_rng_uniform(r);
  if (cls == 6 && u_teeth < 0.35f) {
    f->e[P_OPEN] += t * 0.045f;
    f->e[P_TEETH] = 1.0f;
    f->e[P_WIDTH] += 0.04f;
    f->e[P_LIPS] = 0.7f;
  }
  /* happy: some smile with closed lips */
  if (cls == 1 && u_closed < 0.3f) {
    f->e[P_OPEN] *= 0.2f;
  }
  f->e[P_OPEN] = clampf(f->e[P_OPEN], 0.0f, 0.2f);
  f->e[P_WIDTH] = clampf(f->e[P_WIDTH], 0.1f, 0.34f);
  f->e[P_ROUND] = clampf(f->e[P_ROUND], 0.0f, 1.0f);
  f->e[P_UPPER] = clampf(f->e[P_UPPER], 0.1f, 0.95f);
  f->e[P_LIPS] = clampf(f->e[P_LIPS], 0.3f, 1.6f);
  f->e[P_TEETH] = clampf(f->e[P_TEETH], 0.0f, 1.0f);
  f->e[P_EYE_UP] = clampf(f->e[P_EYE_UP], 0.15f, 0.95f);
  f->e[P_EYE_LO] = clampf(f->e[P_EYE_LO], 0.05f, 0.6f);
  for (int k = P_WRINKLE; k <= P_FROWN; k++) f->e[k] = clampf(f->e[k], 0.0f, 1.3f);
}

static void sample_identity(ac_rng *r, const ac_synthfer_opts *o, face *f) {
  /* identity */
  f->rx = unif(r, 0.60f, 0.74f);
  f->ry = unif(r, 0.78f, 0.92f);
  f->cy = unif(r, -0.02f, 0.08f);
  f->skin = unif(r, 0.32f, 0.85f);
  float hr = (float)ac_rng_uniform(r);
  f->hair = hr < 0.8f ? unif(r, 0.03f, 0.45f) : unif(r, 0.6f, 0.9f);
  f->brow_shade = clampf(fminf(f->hair, f->skin * 0.55f) + unif(r, -0.05f, 0.1f), 0.02f, 0.6f);
  f->iris = unif(r, 0.05f, 0.35f);
  f->es = unif(r, 0.22f, 0.29f);
  f->ew = unif(r, 0.085f, 0.12f);
  f->ey = f->cy + unif(r, -0.20f, -0.10f);
  f->ny = f->cy + unif(r, 0.16f, 0.24f);
  f->my = f->ny + unif(r, 0.18f, 0.25f);
  f->brow_t = unif(r, 0.022f, 0.042f);
  f->sclera = clampf(f->skin + unif(r, 0.12f, 0.35f), 0.55f, 0.97f);
  f->lip_shade = unif(r, 0.62f, 0.85f);
  f->mouth_dark = unif(r, 0.04f, 0.2f);
  f->hair_style = (int)ac_rng_below(r, 4);
  f->hairline = unif(r, 0.5f, 0.7f);
  f->hair_tilt = unif(r, -0.12f, 0.12f);
  f->gaze_x = unif(r, -0.35f, 0.35f);
  f->gaze_y = unif(r, -0.12f, 0.12f);

  /* scene */
  f->bg = unif(r, 0.05f, 0.95f);
  f->bg_gx = unif(r, -0.25f, 0.25f);
  f->bg_gy = unif(r, -0.25f, 0.25f);
  f->tex_amp = unif(r, 0.0f, 0.08f);
  f->tex_fx = unif(r, -9.0f, 9.0f);
  f->tex_fy = unif(r, -9.0f, 9.0f);
  f->tex_ph = unif(r, 0.0f, 6.2832f);
  f->clothes = unif(r, 0.05f, 0.95f);
  f->neck_w = unif(r, 0.24f, 0.34f);
  float la = unif(r, 0.0f, 6.2832f);
  float ls = unif(r, 0.0f, 0.45f);
  f->light_x = ls * cosf(la);
  f->light_y = ls * sinf(la);
  f->light_amp = unif(r, 0.12f, 0.3f);
  f->contrast = unif(r, 0.7f, 1.2f);
  f->bright = unif(r, -0.1f, 0.1f);
  f->gamma = expf(unif(r, -0.3f, 0.3f));

  /* pose */
  float rot = unif(r, -o->max_rotation, o->max_rotation) * 3.14159265f / 180.0f;
  f->cosr = cosf(rot);
  f->sinr = sinf(rot);
  f->scale = unif(r, 0.85f, 1.12f);
  f->sx = unif(r, -0.08f, 0.08f);
  f->sy = unif(r, -0.08f, 0.08f);

  /* occluder (draws are unconditional: the nuisance options never shift
   * the stream, so changing one leaves everything else of a sample alone) */
  float u_occ = (float)ac_rng_uniform(r);
  int occ_kind = (int)ac_rng_below(r, 4);
  f->occ = u_occ < o->occlusion ? occ_kind : -1;
  f->oc_x = unif(r, -0.4f, 0.4f);
  f->oc_y = unif(r, -0.3f, 0.6f);
  f->oc_a = unif(r, 0.18f, 0.3f);
  f->oc_b = unif(r, 0.07f, 0.15f);
  f->oc_ang = unif(r, 0.0f, 3.14159265f);
  f->oc_shade = unif(r, 0.05f, 0.95f);

  /* degradations */
  float u_blur = (float)ac_rng_uniform(r), sigma = unif(r, 0.4f, 0.85f);
  f->blur_sigma = u_blur < o->blur ? sigma : 0.0f;
  f->noise_sigma = unif(r, 0.0f, o->noise);
}

/* The expression comes from its own stream (fork 1 of the sample's stream)
 * and always takes the same number of draws, so that one sample drawn as
 * different classes keeps its identity, pose and scene. */
static void sample_face(ac_rng *r, int cls, const ac_synthfer_opts *o, face *f) {
  ac_rng rex;
  ac_rng_fork(r, 1, &rex);
  sample_expression(&rex, cls, o, f);
  sample_identity(r, o, f);
}

/* ---- distance primitives ---------------------------------------------- */

/* Approximate signed distance to an axis-aligned ellipse. */
static inline float sd_ellipse(float x, float y, float cx, float cy, float ax, float ay) {
  float dx = x - cx, dy = y - cy;
  float k0 = sqrtf((dx * dx) / (ax * ax) + (dy * dy) / (ay * ay));
  float gx = dx / (ax * ax), gy = dy / (ay * ay);
  float k1 = sqrtf(gx * gx + gy * gy);
  if (k1 < 1e-6f) return -fminf(ax, ay);
  return k0 * (k0 - 1.0f) / k1;
}

/* Signed distance to the segment a-b thickened by radius rad. */
static inline float sd_capsule(float x, float y, float ax, float ay, float bx, float by, float rad) {
  float px = x - ax, py = y - ay, vx = bx - ax, vy = by - ay;
  float h = clampf((px * vx + py * vy) / (vx * vx + vy * vy + 1e-12f), 0.0f, 1.0f);
  float dx = px - vx * h, dy = py - vy * h;
  return sqrtf(dx * dx + dy * dy) - rad;
}

/* Coverage of a pixel of size ps by a shape at signed distance d. */
static inline float cov(float d, float ps) { return clampf(0.5f - d / ps, 0.0f, 1.0f); }

static inline void over(float *v, float c, float a) { *v += (c - *v) * a; }

/* Mouth: lip line yc(s) = my - curv s^2 - asym s for s = x / w in [-1, 1];
 * the opening spans [yc - 2 ho up, yc + 2 ho (1 - up)] with
 * ho = open * g(s), g from lens (1 - s^2) to round sqrt(1 - s^2). */
typedef struct mouth_geo { float top, bot, g, inside_x; } mouth_geo;
static inline mouth_geo mouth_at(const face *f, float x, float my) {
  mouth_geo m;
  float w = f->e[P_WIDTH];
  float s = clampf(x / w, -1.0f, 1.0f);
  float q = 1.0f - s * s;
  float g = (1.0f - f->e[P_ROUND]) * q + f->e[P_ROUND] * sqrtf(q);
  float yc = my - f->e[P_CURV] * s * s - f->e[P_ASYM] * s;
  float ho = f->e[P_OPEN] * g;
  m.top = yc - 2.0f * ho * f->e[P_UPPER];
  m.bot = yc + 2.0f * ho * (1.0f - f->e[P_UPPER]);
  m.g = g;
  m.inside_x = fabsf(x) - w;
  return m;
}

/* ---- rendering ------------------------------------------------------------ */

/* Grey value at face coordinates (x, y) over background value v. */
static float shade_face(const face *f, float x, float y, float ps, float v) {
  const float *e = f->e;
  /* shoulders and neck */
  if (y > f->cy + 0.85f) over(&v, f->clothes, cov(sd_ellipse(x, y, 0.0f, f->cy + 1.55f, 1.3f, 0.62f), ps));
  {
    float dn = fmaxf(fabsf(x) - f->neck_w, f->cy + 0.3f - y);
    over(&v, f->skin * 0.78f, cov(dn, ps) * (y < f->cy + 1.2f ? 1.0f : 0.0f));
  }
  /* long hair behind the head */
  if (f->hair_style == 2 && fabsf(x) < f->rx + 0.16f)
    over(&v, f->hair, cov(sd_ellipse(x, y, 0.0f, f->cy + 0.2f, f->rx + 0.14f, f->ry + 0.22f), ps));
  /* ears */
  if (fabsf(x) > f->rx - 0.1f && fabsf(x) < f->rx + 0.1f && fabsf(y - f->ey - 0.07f) < 0.15f)
  for (int side = -1; side <= 1; side += 2)
    over(&v, f->skin * 0.88f, cov(sd_ellipse(x, y, side * f->rx * 0.98f, f->ey + 0.07f, 0.07f, 0.13f), ps));
  /* face with rim shading and directional light */
  float fx = x / f->rx, fy = (y - f->cy) / f->ry;
  float cface = 0.0f;
  if (fabsf(x) < f->rx + ps && fabsf(y - f->cy) < f->ry + ps) {
    cface = cov(sd_ellipse(x, y, 0.0f, f->cy, f->rx, f->ry), ps);
  }
  if (cface > 0.0f) {
    float r2 = fminf(fx * fx + fy * fy, 1.0f);
    float sk = f->skin * (1.0f - 0.22f * r2 * r2 + f->light_amp * (f->light_x * fx + f->light_y * fy) * 2.0f);
    over(&v, sk, cface);
  }
  /* hair on top of the head, limited by the hairline */
  if (f->hair_style != 3 && fabsf(x) < f->rx + 0.06f && y < f->cy + 0.2f) {
    float hl = f->cy - f->ry * f->hairline + f->hair_tilt * x;
    if (f->hair_style == 1) hl = f->cy - f->ry * (f->hairline - 0.15f) + f->hair_tilt * x;
    else hl += 0.3f * fx * fx * f->ry;
    float dh = fmaxf(sd_ellipse(x, y, 0.0f, f->cy - 0.05f, f->rx + 0.05f, f->ry + 0.07f), y - hl);
    over(&v, f->hair, cov(dh, ps));
  }
  if (cface <= 0.0f) goto occluder;
  /* cheek highlight (cheek raise) */
  if (e[P_CHEEK] > 0.0f && y > f->ey && y < f->ey + 0.4f)
    for (int side = -1; side <= 1; side += 2) {
      float d = sd_ellipse(x, y, side * (f->es + 0.03f), f->ey + 0.24f - 0.05f * e[P_CHEEK], 0.12f, 0.08f);
      over(&v, fminf(1.0f, f->skin * 1.25f + 0.05f), cov(d, 0.08f) * 0.35f * e[P_CHEEK]);
    }
  /* nasolabial folds */
  if (e[P_FOLD] > 0.0f && y > f->ny - 0.1f && y < f->my + 0.15f)
    for (int side = -1; side <= 1; side += 2) {
      float w = e[P_WIDTH];
      float d = sd_capsule(x, y, side * 0.085f, f->ny - 0.03f - 0.03f * e[P_CHEEK],
                           side * (w + 0.045f), f->my + 0.02f - 0.6f * e[P_CURV], 0.004f);
      over(&v, f->skin * 0.55f, cov(d, ps * 1.6f) * 0.45f * clampf(e[P_FOLD], 0.0f, 1.0f));
    }
  /* nose: side shadow, tip shadow, nostrils, wrinkles */
  if (fabsf(x) < 0.16f && y > f->ey && y < f->ny + 0.08f) {
    float side = f->light_x > 0.0f ? -1.0f : 1.0f;
    float d = sd_capsule(x, y, side * 0.055f, f->ey + 0.05f, side * 0.07f, f->ny - 0.05f, 0.01f);
    over(&v, f->skin * 0.7f, cov(d, 0.04f) * 0.35f);
    d = sd_ellipse(x, y, 0.0f, f->ny + 0.01f, 0.09f, 0.035f);
    over(&v, f->skin * 0.75f, cov(d, 0.04f) * 0.5f);
    float flare = 1.0f + 0.35f * e[P_WRINKLE];
    for (int s2 = -1; s2 <= 1; s2 += 2) {
      d = sd_ellipse(x, y, s2 * 0.045f * flare, f->ny - 0.012f * e[P_WRINKLE], 0.026f * flare, 0.014f);
      over(&v, f->skin * 0.3f, cov(d, ps) * 0.75f);
    }
    if (e[P_WRINKLE] > 0.05f)
      for (int k = 0; k < 3; k++) {
        float yy = f->ey + 0.05f + 0.035f * k;
        d = sd_capsule(x, y, -0.055f, yy + 0.01f, 0.0f, yy, 0.006f);
        d = fminf(d, sd_capsule(x, y, 0.0f, yy, 0.055f, yy + 0.01f, 0.006f));
        over(&v, f->skin * 0.5f, cov(d, ps) * 0.6f * clampf(e[P_WRINKLE], 0.0f, 1.0f));
      }
  }
  /* eyes */
  for (int side = -1; side <= 1; side += 2) {
    float ex = side * f->es, ew = f->ew;
    float lx = (x - ex) * side; /* >0 towards the outer corner */
    if (fabsf(lx) > ew * 1.8f || fabsf(y - f->ey) > ew * 2.2f) continue;
    /* socket shadow */
    over(&v, f->skin * 0.72f, cov(sd_ellipse(lx, y, 0.0f, f->ey - 0.01f, ew * 1.45f, ew * 1.0f), 0.05f) * 0.5f);
    float s = clampf(lx / ew, -1.0f, 1.0f);
    float g = powf(fmaxf(1.0f - s * s, 0.0f), 0.55f);
    float top = f->ey - ew * e[P_EYE_UP] * g;
    float bot = f->ey + ew * e[P_EYE_LO] * g;
    float de = fmaxf(fmaxf(top - y, y - bot), fabsf(lx) - ew);
    float ce = cov(de, ps);
    if (ce > 0.0f) {
      over(&v, f->sclera, ce);
      float ir = ew * 0.5f;
      float icx = ex + side * f->gaze_x * ew * 0.35f, icy = f->ey + f->gaze_y * ew;
      float di = sd_ellipse(x, y, icx, icy, ir, ir);
      over(&v, f->iris, fminf(ce, cov(di, ps)));
      float dp = sd_ellipse(x, y, icx, icy, ir * 0.45f, ir * 0.45f);
      over(&v, f->iris * 0.3f, fminf(ce, cov(dp, ps)));
    }
    /* upper lid / lash line */
    float dl = fmaxf(fabsf(y - top) - 0.011f, fabsf(lx) - ew * 1.05f);
    over(&v, f->brow_shade * 0.5f, cov(dl, ps) * 0.85f);
    /* lower lid crease of a cheek raise */
    if (e[P_CHEEK] > 0.05f) {
      float dc = fmaxf(fabsf(y - (bot + 0.03f)) - 0.006f, fabsf(lx) - ew * 0.85f);
      over(&v, f->skin * 0.55f, cov(dc, ps) * 0.5f * clampf(e[P_CHEEK], 0.0f, 1.0f));
    }
  }
  /* brows */
  if (y < f->ey + 0.04f && y > f->ey - 0.5f)
  for (int side = -1; side <= 1; side += 2) {
    float yb = f->ey - e[P_BROW_H];
    float ix = side * (f->es - f->ew * 0.9f - e[P_BROW_IN]), iy = yb - e[P_SLANT];
    float ox = side * (f->es + f->ew * 1.2f), oy = yb + 0.35f * e[P_SLANT] + 0.02f;
    float mx = 0.5f * (ix + ox), my2 = 0.5f * (iy + oy) - e[P_ARCH] - 0.015f;
    float d = fminf(sd_capsule(x, y, ix, iy, mx, my2, f->brow_t),
                    sd_capsule(x, y, mx, my2, ox, oy, f->brow_t * 0.75f));
    over(&v, f->brow_shade, cov(d, ps) * 0.92f);
  }
  /* frown lines between the brows */
  if (e[P_FROWN] > 0.05f && fabsf(x) < 0.06f && y < f->ey + 0.04f) {
    float yb = f->ey - e[P_BROW_H];
    for (int side = -1; side <= 1; side += 2) {
      float d = sd_capsule(x, y, side * 0.035f, yb - 0.03f, side * 0.028f, yb + 0.06f, 0.006f);
      over(&v, f->skin * 0.5f, cov(d, ps) * 0.55f * clampf(e[P_FROWN], 0.0f, 1.0f));
    }
  }
  /* mouth: lips, opening, teeth */
  {
    float my = f->my + e[P_JAW];
    if (fabsf(x) < e[P_WIDTH] + 0.05f && fabsf(y - my) < 0.35f) {
      mouth_geo m = mouth_at(f, x, my);
      float gl = sqrtf(m.g);
      float tu = e[P_LIPS] * 0.028f * gl + 0.004f, tl = e[P_LIPS] * 0.04f * gl + 0.004f;
      float dlip = fmaxf(fmaxf(m.top - tu - y, y - m.bot - tl), m.inside_x - 0.008f);
      over(&v, f->skin * f->lip_shade, cov(dlip, ps) * 0.85f);
      float lw = 0.009f;
      float dint = fmaxf(fmaxf(m.top - lw - y, y - m.bot - lw), m.inside_x);
      float ci = cov(dint, ps);
      if (ci > 0.0f) {
        over(&v, f->mouth_dark, ci * 0.92f);
        float th = (m.bot - m.top) * e[P_TEETH];
        float dt = fmaxf(fmaxf(m.top - y, y - (m.top + th)), m.inside_x + 0.02f);
        over(&v, 0.88f, fminf(ci, cov(dt, ps)) * 0.9f);
      }
    }
  }
occluder:
  if (f->occ >= 0) {
    float d = 1e9f, c = f->oc_shade;
    if (f->occ == 0) { /* hand: palm and four fingers, skin coloured */
      float ca = cosf(f->oc_ang), sa = sinf(f->oc_ang);
      float lx = (x - f->oc_x) * ca + (y - f->oc_y) * sa, ly = -(x - f->oc_x) * sa + (y - f->oc_y) * ca;
      d = sd_ellipse(lx, ly, 0.0f, 0.0f, 0.17f, 0.13f);
      for (int k = 0; k < 4; k++) {
        float fxk = -0.11f + 0.075f * k;
        d = fminf(d, sd_capsule(lx, ly, fxk, 0.0f, fxk * 1.2f, -0.3f + 0.04f * fabsf(k - 1.5f), 0.032f));
      }
      c = clampf(f->skin * (0.85f + 0.3f * f->oc_shade), 0.0f, 1.0f);
    } else if (f->occ == 1) { /* bar across the face */
      float ca = cosf(f->oc_ang), sa = sinf(f->oc_ang);
      float ly = -(x - f->oc_x) * sa + (y - f->oc_y) * ca;
      d = fabsf(ly) - f->oc_b * 0.8f;
    } else if (f->occ == 2) { /* sunglasses */
      for (int side = -1; side <= 1; side += 2)
        d = fminf(d, sd_ellipse(x, y, side * f->es, f->ey + 0.01f, f->ew * 1.6f, f->ew * 1.15f));
      d = fminf(d, sd_capsule(x, y, -f->es + f->ew, f->ey - 0.02f, f->es - f->ew, f->ey - 0.02f, 0.012f));
      c = f->oc_shade * 0.25f;
    } else { /* mask over nose, mouth and chin */
      float dm = fmaxf(sd_ellipse(x, y, 0.0f, f->my, f->rx * 0.95f, 0.42f), f->ny - 0.08f - y);
      d = dm;
      c = 0.55f + 0.4f * f->oc_shade;
    }
    over(&v, c, cov(d, ps));
  }
  return v;
}

/* Separable Gaussian blur (radius 3) with clamped borders, in place. */
static void blur_image(float *img, float sigma) {
  enum { N = AC_SYNTHFER_SIZE, R = 3 };
  float k[2 * R + 1], sum = 0.0f, tmp[AC_SYNTHFER_PIXELS];
  for (int i = -R; i <= R; i++) sum += k[i + R] = expf(-0.5f * (float)(i * i) / (sigma * sigma));
  for (int i = 0; i <= 2 * R; i++) k[i] /= sum;
  for (int y = 0; y < N; y++)
    for (int x = 0; x < N; x++) {
      float a = 0.0f;
      for (int i = -R; i <= R; i++) {
        int xx = x + i < 0 ? 0 : (x + i >= N ? N - 1 : x + i);
        a += k[i + R] * img[y * N + xx];
      }
      tmp[y * N + x] = a;
    }
  for (int y = 0; y < N; y++)
    for (int x = 0; x < N; x++) {
      float a = 0.0f;
      for (int i = -R; i <= R; i++) {
        int yy = y + i < 0 ? 0 : (y + i >= N ? N - 1 : y + i);
        a += k[i + R] * tmp[yy * N + x];
      }
      img[y * N + x] = a;
    }
}

/* ---- labels and samples ---------------------------------------------- */

/* Stream ids: per-sample streams use the index; the class order of block b
 * uses a disjoint id range. */
#define LABEL_STREAM (UINT64_C(1) << 62)

int ac_synthfer_label(uint64_t seed, int64_t index) {
  ac_rng base, r;
  ac_rng_seed(&base, seed);
  int64_t block = index / AC_SYNTHFER_CLASSES;
  int pos = (int)(index % AC_SYNTHFER_CLASSES);
  ac_rng_fork(&base, LABEL_STREAM | (uint64_t)block, &r);
  int perm[AC_SYNTHFER_CLASSES];
  for (int i = 0; i < AC_SYNTHFER_CLASSES; i++) perm[i] = i;
  for (int i = AC_SYNTHFER_CLASSES - 1; i > 0; i--) {
    int j = (int)ac_rng_below(&r, (uint64_t)i + 1);
    int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
  }
  return perm[pos] + 1;
}

/* An approximately N(0,1) value from one 64-bit draw: the sum of four
 * 16-bit uniforms, centred and scaled (Irwin-Hall). */
static inline float fast_normal(ac_rng *r) {
  uint64_t b = ac_rng_next(r);
  float s = (float)(b & 0xffff) + (float)((b >> 16) & 0xffff) + (float)((b >> 32) & 0xffff) + (float)(b >> 48);
  return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

static void render_one(const ac_rng *base, int64_t index, int label,
                       const ac_synthfer_opts *o, float *out) {
  enum { N = AC_SYNTHFER_SIZE };
  ac_rng r;
  face f;
  ac_rng_fork(base, (uint64_t)index, &r);
  sample_face(&r, label - 1, o, &f);
  const float half = 0.5f * N;
  float ps = 1.0f / (half * f.scale);
  /* background texture sin(a u + b v + c) = sin(a u) cos(b v + c) + cos(a u) sin(b v + c) */
  float su[N], cu[N];
  for (int px = 0; px < N; px++) {
    float u = (px + 0.5f) / half - 1.0f;
    su[px] = sinf(f.tex_fx * u);
    cu[px] = cosf(f.tex_fx * u);
  }
  for (int py = 0; py < N; py++) {
    float v = (py + 0.5f) / half - 1.0f;
    float sv = f.tex_amp * sinf(f.tex_fy * v + f.tex_ph), cv = f.tex_amp * cosf(f.tex_fy * v + f.tex_ph);
    for (int px = 0; px < N; px++) {
      float u = (px + 0.5f) / half - 1.0f;
      float du = u - f.sx, dv = v - f.sy;
      float x = (f.cosr * du + f.sinr * dv) / f.scale;
      float y = (-f.sinr * du + f.cosr * dv) / f.scale;
      float bg = f.bg + f.bg_gx * u + f.bg_gy * v + su[px] * cv + cu[px] * sv;
      float val = shade_face(&f, x, y, ps, bg);
      /* lighting gradient across the image */
      val *= 1.0f + f.light_x * u * 0.6f + f.light_y * v * 0.6f;
      out[py * N + px] = val;
    }
  }
  if (f.blur_sigma > 0.0f) blur_image(out, f.blur_sigma);
  /* contrast, brightness and gamma through a 257-entry table */
  float lut[258];
  for (int i = 0; i <= 256; i++) lut[i] = powf((float)i / 256.0f, f.gamma);
  lut[257] = lut[256];
  for (int i = 0; i < N * N; i++) {
    float val = clampf((out[i] - 0.5f) * f.contrast + 0.5f + f.bright, 0.0f, 1.0f) * 256.0f;
    int k = (int)val;
    val = lut[k] + (val - (float)k) * (lut[k + 1] - lut[k]);
    if (f.noise_sigma > 0.0f) val += f.noise_sigma * fast_normal(&r);
    out[i] = clampf(val, 0.0f, 1.0f);
  }
}

int ac_synthfer_render(uint64_t seed, int64_t index, int label,
                       const ac_synthfer_opts *o, float *out) {
  if (label < 1 || label > AC_SYNTHFER_CLASSES)
    return ac_fail("label must be a class in 1..%d, got %d", AC_SYNTHFER_CLASSES, label);
  if (index < 0) return ac_fail("index must be >= 0, got %lld", (long long)index);
  if (ac_synthfer_check_opts(o)) return -1;
  ac_rng base;
  ac_rng_seed(&base, seed);
  render_one(&base, index, label, o, out);
  return 0;
}

typedef struct gen_ctx {
  ac_rng base;
  uint64_t seed;
  int64_t start;
  const ac_synthfer_opts *o;
  float *images;
  uint8_t *images_u8;
  int64_t *labels;
} gen_ctx;

static void gen_task(void *vctx, int64_t begin, int64_t end, int tid) {
  gen_ctx *c = vctx;
  float buf[AC_SYNTHFER_PIXELS];
  for (int64_t i = begin; i < end; i++) {
    int64_t idx = c->start + i;
    int label = ac_synthfer_label(c->seed, idx);
    if (c->labels) c->labels[i] = label;
    if (!c->images && !c->images_u8) continue;
    float *dst = c->images ? c->images + i * AC_SYNTHFER_PIXELS : buf;
    render_one(&c->base, idx, label, c->o, dst);
    if (c->images_u8) {
      uint8_t *d8 = c->images_u8 + i * AC_SYNTHFER_PIXELS;
      for (int k = 0; k < AC_SYNTHFER_PIXELS; k++) d8[k] = (uint8_t)(dst[k] * 255.0f + 0.5f);
    }
  }
}

static int generate(uint64_t seed, int64_t start, int64_t n, const ac_synthfer_opts *o,
                    float *images, uint8_t *images_u8, int64_t *labels) {
  if (n < 0) return ac_fail("n must be >= 0, got %lld", (long long)n);
  if (start < 0) return ac_fail("start must be >= 0, got %lld", (long long)start);
  if (start > INT64_MAX - n) return ac_fail("start + n overflows");
  if (ac_synthfer_check_opts(o)) return -1;
  gen_ctx c = {.seed = seed, .start = start, .o = o, .images = images,
               .images_u8 = images_u8, .labels = labels};
  ac_rng_seed(&c.base, seed);
  ac_parallel_for(n, 16, gen_task, &c);
  return 0;
}

int ac_synthfer_generate(uint64_t seed, int64_t start, int64_t n,
                         const ac_synthfer_opts *o, float *images, int64_t *labels) {
  return generate(seed, start, n, o, images, NULL, labels);
}

int ac_synthfer_generate_u8(uint64_t seed, int64_t start, int64_t n,
                            const ac_synthfer_opts *o, uint8_t *images, int64_t *labels) {
  return generate(seed, start, n, o, NULL, images, labels);
}

/* ---- writers --------------------------------------------------------------- */

int ac_synthfer_fer_code(int label) {
  /* canonical 1 Neutral, 2 Happy, 3 Sad, 4 Surprise, 5 Fear, 6 Disgust, 7 Anger
   * -> FER-2013 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral */
  static const int code[AC_SYNTHFER_CLASSES] = {6, 3, 4, 5, 2, 1, 0};
  if (label < 1 || label > AC_SYNTHFER_CLASSES) return -1;
  return code[label - 1];
}

int ac_synthfer_write_csv(const char *path, const uint8_t *pixels, const int64_t *labels,
                          const uint8_t *usage, int64_t n) {
  static const char *const usage_names[3] = {"Training", "PublicTest", "PrivateTest"};
  for (int64_t i = 0; i < n; i++) {
    if (labels[i] < 1 || labels[i] > AC_SYNTHFER_CLASSES)
      return ac_fail("row %lld: label %lld is not a class in 1..7", (long long)(i + 1), (long long)labels[i]);
    if (usage[i] > 2)
      return ac_fail("row %lld: usage %d is not 0, 1 or 2", (long long)(i + 1), usage[i]);
  }
  ac_atomic_file af;
  /* one row is at most 2 + 2304 * 4 + 12 + 2 bytes */
  char *row = malloc(AC_SYNTHFER_PIXELS * 4 + 64);
  if (!row) return ac_fail("out of memory");
  if (ac_atomic_open(&af, path)) {
    free(row);
    return -1;
  }
  static const char header[] = "emotion,pixels,Usage\n";
  int rc = ac_atomic_write(&af, header, sizeof header - 1);
  for (int64_t i = 0; i < n && rc == 0; i++) {
    char *p = row;
    *p++ = (char)('0' + ac_synthfer_fer_code((int)labels[i]));
    *p++ = ',';
    const uint8_t *px = pixels + i * AC_SYNTHFER_PIXELS;
    for (int k = 0; k < AC_SYNTHFER_PIXELS; k++) {
      unsigned v = px[k];
      if (k) *p++ = ' ';
      if (v >= 100) *p++ = (char)('0' + v / 100);
      if (v >= 10) *p++ = (char)('0' + (v / 10) % 10);
      *p++ = (char)('0' + v % 10);
    }
    *p++ = ',';
    size_t ul = strlen(usage_names[usage[i]]);
    memcpy(p, usage_names[usage[i]], ul);
    p += ul;
    *p++ = '\n';
    rc = ac_atomic_write(&af, row, (size_t)(p - row));
  }
  free(row);
  if (rc) {
    ac_atomic_abort(&af);
    return -1;
  }
  return ac_atomic_commit(&af);
}

typedef struct png_buf { unsigned char *data; size_t len, cap; int failed; } png_buf;

static void png_append(void *ctx, void *data, int size) {
  png_buf *b = ctx;
  if (b->failed || size <= 0) return;
  if (b->len + (size_t)size > b->cap) {
    size_t ncap = (b->cap + (size_t)size) * 2;
    unsigned char *nd = realloc(b->data, ncap);
    if (!nd) {
      b->failed = 1;
      return;
    }
    b->data = nd;
    b->cap = ncap;
  }
  memcpy(b->data + b->len, data, (size_t)size);
  b->len += (size_t)size;
}

int ac_synthfer_write_grid_png(const char *path, const float *images, int64_t n,
                               int h, int w, int cols) {
  if (n < 1) return ac_fail("no images to write");
  if (h < 1 || w < 1 || cols < 1) return ac_fail("bad grid geometry h=%d w=%d cols=%d", h, w, cols);
  int64_t rows = (n + cols - 1) / cols, ncols = n < cols ? n : cols;
  int64_t W = ncols * (w + 2) + 2, H = rows * (h + 2) + 2;
  if (W > 30000 || H > 30000) return ac_fail("grid of %lld x %lld pixels is too large", (long long)H, (long long)W);
  uint8_t *buf = malloc((size_t)(W * H));
  if (!buf) return ac_fail("out of memory");
  memset(buf, 255, (size_t)(W * H));
  for (int64_t i = 0; i < n; i++) {
    int64_t r0 = 2 + (i / cols) * (h + 2), c0 = 2 + (i % cols) * (w + 2);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float v = images[i * h * w + y * w + x];
        v = v != v ? 0.0f : clampf(v, 0.0f, 1.0f);
        buf[(r0 + y) * W + c0 + x] = (uint8_t)(v * 255.0f + 0.5f);
      }
  }
  png_buf pb = {0};
  int ok = stbi_write_png_to_func(png_append, &pb, (int)W, (int)H, 1, buf, (int)W);
  free(buf);
  if (!ok || pb.failed) {
    free(pb.data);
    return ac_fail("cannot encode PNG %s (out of memory)", path);
  }
  int rc = ac_write_file_atomic(path, pb.data, pb.len);
  free(pb.data);
  return rc;
}
