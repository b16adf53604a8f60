/*
 * group.c - partition of similar boxes (union-find) and the averaging and
 * filtering of the classes (see group.h).
 */
#include "face/group.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

static int similar(const int *a, const int *b, double eps) {
  double d = eps * ((a[2] < b[2] ? a[2] : b[2]) + (a[3] < b[3] ? a[3] : b[3])) * 0.5;
  return abs(a[0] - b[0]) <= d && abs(a[1] - b[1]) <= d && abs(a[0] + a[2] - b[0] - b[2]) <= d &&
         abs(a[1] + a[3] - b[1] - b[3]) <= d;
}

static int find(int *parent, int i) {
  int r = i;
  while (parent[r] >= 0) r = parent[r];
  while (parent[i] >= 0) { /* path compression */
    int next = parent[i];
    parent[i] = r;
    i = next;
  }
  return r;
}

int ac_rects_group(ac_rects *r, int min_neighbors, double eps) {
  int n = r->n;
  if (min_neighbors <= 0 || n == 0) {
    for (int i = 0; i < n; i++) r->score[i] = 1;
    return 0;
  }
  int *parent = malloc(sizeof(int) * (size_t)n);
  int *label = malloc(sizeof(int) * (size_t)n);
  long long *acc = calloc((size_t)n * 4, sizeof(long long));
  int *count = calloc((size_t)n, sizeof(int));
  int *avg = malloc(sizeof(int) * 4 * (size_t)n);
  if (!parent || !label || !acc || !count || !avg) {
    free(parent), free(label), free(acc), free(count), free(avg);
    return ac_fail("out of memory grouping %d boxes", n);
  }
  for (int i = 0; i < n; i++) parent[i] = -1;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      if (!similar(r->xywh + 4 * (size_t)i, r->xywh + 4 * (size_t)j, eps)) continue;
      int a = find(parent, i), b = find(parent, j);
      if (a != b) parent[b] = a;
    }
  /* classes numbered in the order of their first box */
  int nclasses = 0;
  for (int i = 0; i < n; i++) label[i] = -1;
  int *root_label = malloc(sizeof(int) * (size_t)n);
  if (!root_label) {
    free(parent), free(label), free(acc), free(count), free(avg);
    return ac_fail("out of memory grouping %d boxes", n);
  }
  for (int i = 0; i < n; i++) root_label[i] = -1;
  for (int i = 0; i < n; i++) {
    int root = find(parent, i);
    if (root_label[root] < 0) root_label[root] = nclasses++;
    label[i] = root_label[root];
  }
  for (int i = 0; i < n; i++) {
    int c = label[i];
    for (int k = 0; k < 4; k++) acc[4 * (size_t)c + k] += r->xywh[4 * (size_t)i + k];
    count[c]++;
  }
  for (int c = 0; c < nclasses; c++) {
    float s = 1.0f / (float)count[c];
    for (int k = 0; k < 4; k++) avg[4 * c + k] = (int)lrintf((float)acc[4 * (size_t)c + k] * s);
  }
  r->n = 0;
  for (int i = 0; i < nclasses; i++) {
    const int *r1 = avg + 4 * i;
    int n1 = count[i], j;
    if (n1 <= min_neighbors) continue;
    for (j = 0; j < nclasses; j++) {
      int n2 = count[j];
      if (j == i || n2 <= min_neighbors) continue;
      const int *r2 = avg + 4 * j;
      int dx = (int)lrint(r2[2] * eps), dy = (int)lrint(r2[3] * eps);
      if (r1[0] >= r2[0] - dx && r1[1] >= r2[1] - dy && r1[0] + r1[2] <= r2[0] + r2[2] + dx &&
          r1[1] + r1[3] <= r2[1] + r2[3] + dy && (n2 > (n1 > 3 ? n1 : 3) || n1 < 3))
        break;
    }
    if (j == nclasses) {
      memcpy(r->xywh + 4 * (size_t)r->n, r1, sizeof(int) * 4); /* r->n <= i: no overlap with unread classes */
      r->score[r->n++] = n1;
    }
  }
  free(root_label);
  free(parent), free(label), free(acc), free(count), free(avg);
  return 0;
}

void ac_rects_clip(ac_rects *r, int w, int h) {
  int m = 0;
  for (int i = 0; i < r->n; i++) {
    int *p = r->xywh + 4 * (size_t)i;
    int x0 = p[0] > 0 ? p[0] : 0, y0 = p[1] > 0 ? p[1] : 0;
    int x1 = p[0] + p[2] < w ? p[0] + p[2] : w, y1 = p[1] + p[3] < h ? p[1] + p[3] : h;
    if (x1 <= x0 || y1 <= y0) continue;
    int *q = r->xywh + 4 * (size_t)m;
    q[0] = x0, q[1] = y0, q[2] = x1 - x0, q[3] = y1 - y0;
    r->score[m++] = r->score[i];
  }
  r->n = m;
}
