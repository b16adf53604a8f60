/*
 * cascade.h - boosted cascades of Haar or LBP features (the trained face
 * detectors of OpenCV's opencv-data, read from their XML by
 * lua/adcorre/face/cascade_xml.lua) and the multi-scale sliding-window
 * detector that evaluates them. The arithmetic follows OpenCV's
 * CascadeClassifier::detectMultiScale so that the same cascade, scale factor
 * and sizes find the same windows:
 *
 *   - the image pyramid holds factors 1, s, s^2, ... while the window
 *     (round(win * f)) fits the image and max_size; levels whose window is
 *     smaller than min_size are skipped;
 *   - each level is the grey image resized to round(W / f) x round(H / f)
 *     (bilinear, integral.h), with its integral, squared and (for cascades
 *     with tilted features) tilted integral images;
 *   - windows are visited every 2 pixels (every pixel once f >= 2), and one
 *     more step is skipped after a window rejected by the first stage;
 *   - Haar windows are normalised by the standard deviation of the window
 *     inset by one pixel, and windows of almost no contrast are rejected;
 *   - a stage passes when its sum of leaf values reaches its threshold
 *     (less 1e-5); a window passing every stage is a raw detection at
 *     (round(x f), round(y f)) of size round(win f).
 *
 * Raw detections are then grouped (group.h).
 *
 *   ac_cascade *c; ac_cascade_new(&spec, &c);
 *   ac_rects raw = {0};
 *   ac_cascade_detect(c, grey, w, h, 1.1, 30, 30, 0, 0, &raw);
 *   ac_rects_group(&raw, 5, 0.2);      // raw becomes the grouped boxes
 *   ac_rects_free(&raw); ac_cascade_free(c);
 *
 * All functions return 0 on success and -1 after ac_fail() on bad input.
 */
#ifndef AC_FACE_CASCADE_H
#define AC_FACE_CASCADE_H
#include <stdint.h>

enum { AC_CASCADE_HAAR = 0, AC_CASCADE_LBP = 1 };

/* The cascade as flat arrays, as its XML lists them (all counts >= 1).
 *   stage_threshold[nstages], stage_ntrees[nstages]: trees of stage s follow
 *     those of stage s-1;
 *   tree_nodes[ntrees]: nodes per tree; nodes of tree t follow tree t-1's;
 *   node_left/right[nnodes]: > 0 a node of the same tree (relative index),
 *     <= 0 the leaf -value of the tree; node_feature[nnodes];
 *   node_threshold[nnodes] (Haar) or node_subset[nnodes * 8] (LBP: the
 *     256-bit set of LBP codes that go left);
 *   leaves[ntrees + nnodes]: tree t owns nodes(t) + 1 consecutive leaves;
 *   Haar features: rects[nfeatures * 15] as x, y, w, h, weight for up to
 *     three rectangles (weight 0 when unused), tilted[nfeatures];
 *   LBP features: rects[nfeatures * 4] as x, y, w, h of one of the 3 x 3
 *     blocks' cell. */
typedef struct ac_cascade_spec {
  int type, win_w, win_h;
  int nstages, ntrees, nnodes, nfeatures;
  const double *stage_threshold;
  const int *stage_ntrees, *tree_nodes;
  const int *node_left, *node_right, *node_feature;
  const double *node_threshold;
  const int32_t *node_subset;
  const double *leaves;
  const double *rects;
  const int *tilted;
} ac_cascade_spec;

typedef struct ac_cascade ac_cascade;

/* Checks every index and rectangle against the window, then copies. */
int ac_cascade_new(const ac_cascade_spec *spec, ac_cascade **out);
void ac_cascade_free(ac_cascade *c);
/* Window size, type, number of stages, whether tilted features are used. */
void ac_cascade_info(const ac_cascade *c, int *type, int *win_w, int *win_h, int *nstages, int *has_tilted);

/* A growable list of boxes with a score each (neighbour count once grouped). */
typedef struct ac_rects {
  int n, cap;
  int *xywh;   /* 4 per box */
  int *score;
} ac_rects;
int ac_rects_push(ac_rects *r, int x, int y, int w, int h, int score);
void ac_rects_free(ac_rects *r);

/* Raw detections of the cascade in a grey image grey[h * w] (row stride w).
 * scale > 1; min / max sizes in pixels (max 0 = the image size). Appends to
 * out in the order of a serial scan (level, row, column). Pyramid levels are
 * shared among the library's threads (ac_set_num_threads). */
int ac_cascade_detect(const ac_cascade *c, const uint8_t *grey, int w, int h, double scale, int min_w,
                      int min_h, int max_w, int max_h, ac_rects *out);

#endif
