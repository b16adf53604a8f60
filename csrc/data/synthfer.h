/*
 * synthfer.h - synthfer, a procedural facial-expression data set: 48x48 grey
 * faces of the 7 canonical classes (1 Neutral, 2 Happy, 3 Sad, 4 Surprise,
 * 5 Fear, 6 Disgust, 7 Anger), so that training runs on a machine with no
 * downloaded data.
 *
 * Every face is drawn from facial-action parameters (mouth curvature, opening
 * and width, lip thickness and upper-lip raise, brow height, slant and
 * closeness, eye opening and lower-lid raise, nose wrinkle, cheek raise,
 * smile and disgust folds). A class fixes a prototype of those parameters;
 * each sample has a random expression intensity, a random admixture of the
 * class that real data confuses it with (Fear/Surprise, Disgust/Anger,
 * Sad/Neutral) and per-parameter jitter. Identity (face shape, skin tone,
 * hair style and shade, eye spacing and size, mouth size), pose (in-plane
 * rotation, scale, shift), lighting (linear gradient, contrast, gamma),
 * background, occluders (hand, bar, sunglasses, mask), blur and noise vary.
 * Shapes are rendered with analytic distance-based coverage (anti-aliased).
 *
 * Determinism: sample i of the set with seed s (its label and its pixels) is
 * a pure function of (s, i, options): it does not depend on which thread
 * draws it, on how many samples are drawn at once or on the global generator.
 * Labels are exactly balanced: every block of 7 consecutive indices
 * (7b .. 7b+6) holds each class once, in a seeded order.
 *
 *   ac_synthfer_opts o; ac_synthfer_defaults(&o);
 *   float img[48 * 48]; int label;
 *   label = ac_synthfer_label(1234, 17);
 *   ac_synthfer_render(1234, 17, label, &o, img);      // values in [0, 1]
 *   ac_synthfer_generate(1234, 0, 1000, &o, imgs, labels); // threaded
 */
#ifndef AC_SYNTHFER_H
#define AC_SYNTHFER_H
#include <stdint.h>

#define AC_SYNTHFER_SIZE 48
#define AC_SYNTHFER_PIXELS (AC_SYNTHFER_SIZE * AC_SYNTHFER_SIZE)
#define AC_SYNTHFER_CLASSES 7

typedef struct ac_synthfer_opts {
  float difficulty;   /* expression ambiguity: 0 = pure prototypes, 1 = default, up to 3 */
  float max_rotation; /* degrees of in-plane rotation, uniform in +-max (default 20) */
  float occlusion;    /* probability of an occluder (default 0.25) */
  float noise;        /* maximal Gaussian noise sigma, in [0,1] grey units (default 0.04) */
  float blur;         /* probability of a Gaussian blur (default 0.3) */
} ac_synthfer_opts;

/* Canonical class names, index 0..6 = class 1..7. */
extern const char *const ac_synthfer_class_names[AC_SYNTHFER_CLASSES];

void ac_synthfer_defaults(ac_synthfer_opts *o);
/* 0, or -1 + ac_fail naming the field out of range. */
int ac_synthfer_check_opts(const ac_synthfer_opts *o);

/* The class (1..7) of sample `index` of the set with this seed. */
int ac_synthfer_label(uint64_t seed, int64_t index);

/* Renders sample `index` as class `label` (1..7) into out[48*48] (row-major,
 * values in [0, 1]). Returns 0, or -1 + ac_fail on a bad label/options. */
int ac_synthfer_render(uint64_t seed, int64_t index, int label,
                       const ac_synthfer_opts *o, float *out);

/* Samples start .. start+n-1: images [n, 48*48] float (or NULL) and
 * labels [n] (class 1..7, or NULL), in parallel with ac_parallel_for. */
int ac_synthfer_generate(uint64_t seed, int64_t start, int64_t n,
                         const ac_synthfer_opts *o, float *images, int64_t *labels);
/* The same with images quantised to uint8 (round(v * 255)). */
int ac_synthfer_generate_u8(uint64_t seed, int64_t start, int64_t n,
                            const ac_synthfer_opts *o, uint8_t *images, int64_t *labels);

/* FER-2013 emotion code (0 Angry .. 6 Neutral) of canonical class 1..7; -1 if out of range. */
int ac_synthfer_fer_code(int label);

/* Writes a fer2013.csv (header "emotion,pixels,Usage"): row r has the FER
 * code of labels[r] (canonical 1..7), the 2304 grey values pixels[r*2304..]
 * and the usage usage[r] (0 Training, 1 PublicTest, 2 PrivateTest). Written
 * to a temporary name beside `path`, then renamed. */
int ac_synthfer_write_csv(const char *path, const uint8_t *pixels, const int64_t *labels,
                          const uint8_t *usage, int64_t n);

/* Writes n grey images of h x w floats in [0,1] as a PNG grid with `cols`
 * columns and a 2-pixel white border (temporary name, then rename). */
int ac_synthfer_write_grid_png(const char *path, const float *images, int64_t n,
                               int h, int w, int cols);

#endif
