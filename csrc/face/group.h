/*
 * group.h - grouping of raw sliding-window detections into objects, as
 * OpenCV's groupRectangles does for CascadeClassifier::detectMultiScale:
 *   - two boxes are similar when each of their four edges differs by at
 *     most eps * (min(w1, w2) + min(h1, h2)) / 2; classes are the connected
 *     groups of that relation;
 *   - a class becomes the mean of its boxes (rounded), scored by its size
 *     (the number of neighbours);
 *   - classes of at most min_neighbors boxes are dropped, and so is a class
 *     lying inside another, larger one (within eps of its size) that has
 *     more neighbours than max(3, its own), or any when it has fewer than 3.
 * min_neighbors <= 0 keeps the raw boxes (score 1).
 */
#ifndef AC_FACE_GROUP_H
#define AC_FACE_GROUP_H
#include "face/cascade.h"

/* Replaces r's boxes by the groups, in the order of each group's first box. */
int ac_rects_group(ac_rects *r, int min_neighbors, double eps);

/* Keeps the part of each box inside [0, w) x [0, h); drops empty ones. */
void ac_rects_clip(ac_rects *r, int w, int h);

#endif
