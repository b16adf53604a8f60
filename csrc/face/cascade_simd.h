/*
 * cascade_simd.h - what cascade.c shares with its vector kernels: a Haar
 * stump with its feature's corner offsets into one level's integral image,
 * and the stages evaluated for eight windows at once.
 */
#ifndef AC_FACE_CASCADE_SIMD_H
#define AC_FACE_CASCADE_SIMD_H
#include <stdint.h>

typedef struct {
  int ofs[3][4];
  float w[3];
  float thr, left, right;
} ac_haar_stump;

/* Stages [first, last) (ntrees[s] stumps and threshold thr[s] each; st
 * points at stage first's first stump) for the windows whose top-left
 * integral entries are p + k * step, k = 0..7 (step 1 or 2), normalised by
 * vnf[k], for the lanes set in `active`. Returns the lanes that pass every
 * one of those stages. Each lane's arithmetic is that of the scalar loop
 * (float feature values, double sums), so the results are identical.
 * Reads up to 16 entries past the last window's corners: the integral
 * buffer carries that padding. AVX2; call only when
 * ac_cpu_isa() >= AC_ISA_AVX2. */
int ac_haar_stages_avx2(const ac_haar_stump *st, const int *ntrees, const float *thr, int first, int last,
                        const uint32_t *p, int step, const float *vnf, int active);

/* A node of a Haar tree cascade with its feature. */
typedef struct {
  int ofs[3][4];
  float w[3];
  float thr;
  int left, right;
} ac_haar_node;

/* Where stage `first` starts in a tree cascade's arrays. */
typedef struct {
  int node, leaf, tree;
} ac_tree_pos;

/* The same for tree cascades: every node of a tree is evaluated for the
 * eight windows, then each lane walks its tree. tree_nodes[t] nodes per
 * tree, leaves as in cascade.h, `at` the position of stage first. */
int ac_haar_tree_stages_avx2(const ac_haar_node *nodes, const int *tree_nodes, const float *leaves, const int *ntrees,
                             const float *thr, int first, int last, ac_tree_pos at, const uint32_t *p, int step,
                             const float *vnf, int active);

/* An LBP stump: the 4 x 4 corner offsets of its 3 x 3 blocks, the 256-bit
 * set of codes that go left, and the two leaves. */
typedef struct {
  int ofs[16];
  int32_t subset[8];
  float left, right;
} ac_lbp_stump;

/* ac_haar_stages_avx2 for LBP stump cascades (no normalisation). */
int ac_lbp_stages_avx2(const ac_lbp_stump *st, const int *ntrees, const float *thr, int first, int last,
                       const uint32_t *p, int step, int active);

#endif
