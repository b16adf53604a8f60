/*
 * cascade_avx2.c - the stages of a Haar stump cascade for eight neighbouring
 * windows at once, until every one of them has been rejected. Corners of the
 * eight windows are eight consecutive integral entries (every pixel) or
 * every other of sixteen (every 2 pixels), so they are loaded, not gathered.
 */
#include <immintrin.h>

#include "face/cascade_simd.h"

__attribute__((target("avx2"))) static inline __m256i load8(const uint32_t *p, int step) {
  if (step == 1) return _mm256_loadu_si256((const __m256i *)p);
  __m256 lo = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)p));
  __m256 hi = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(p + 8)));
  __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); /* lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 */
  return _mm256_permute4x64_epi64(_mm256_castps_si256(ev), _MM_SHUFFLE(3, 1, 2, 0));
}

/* (float) of the rectangle sums (exact in 32-bit wrap-around arithmetic). */
__attribute__((target("avx2"))) static inline __m256 rect8(const uint32_t *p, const int *o, int step) {
  __m256i s = _mm256_sub_epi32(load8(p + o[0], step), load8(p + o[1], step));
  s = _mm256_add_epi32(_mm256_sub_epi32(s, load8(p + o[2], step)), load8(p + o[3], step));
  return _mm256_cvtepi32_ps(s);
}

__attribute__((target("avx2"))) int ac_haar_stages_avx2(const ac_haar_stump *st, const int *ntrees,
                                                        const float *thr, int first, int last, const uint32_t *p,
                                                        int step, const float *vnf, int active) {
  __m256 nf = _mm256_loadu_ps(vnf);
  for (int si = first; si < last && active; si++) {
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    for (int k = ntrees[si]; k > 0; k--, st++) {
      /* v = w0 * s0 + w1 * s1 (+ w2 * s2), in the scalar loop's order; no FMA */
      __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(st->w[0]), rect8(p, st->ofs[0], step)),
                               _mm256_mul_ps(_mm256_set1_ps(st->w[1]), rect8(p, st->ofs[1], step)));
      if (st->w[2] != 0.0f)
        v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(st->w[2]), rect8(p, st->ofs[2], step)));
      __m256 left = _mm256_cmp_ps(_mm256_mul_ps(v, nf), _mm256_set1_ps(st->thr), _CMP_LT_OQ);
      __m256 leaf = _mm256_blendv_ps(_mm256_set1_ps(st->right), _mm256_set1_ps(st->left), left);
      sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(leaf)));
      sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(leaf, 1)));
    }
    __m256d t = _mm256_set1_pd((double)thr[si]);
    int fail = _mm256_movemask_pd(_mm256_cmp_pd(sum_lo, t, _CMP_LT_OQ)) |
               _mm256_movemask_pd(_mm256_cmp_pd(sum_hi, t, _CMP_LT_OQ)) << 4;
    active &= ~fail;
  }
  return active & 0xFF;
}

/* A tree whose leaf can be chosen with blends: a stump, or two nodes with
 * node 1 on one side of the root. */
static int simple_tree(const ac_haar_node *nd, int n) {
  if (n == 1) return 1;
  return n == 2 && (nd[0].left == 1) != (nd[0].right == 1) && nd[1].left <= 0 && nd[1].right <= 0;
}

/* The mask of lanes for which a node's test goes left. */
__attribute__((target("avx2"))) static inline __m256 node_left(const ac_haar_node *nd, const uint32_t *p, int step,
                                                               __m256 nf) {
  __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(nd->w[0]), rect8(p, nd->ofs[0], step)),
                           _mm256_mul_ps(_mm256_set1_ps(nd->w[1]), rect8(p, nd->ofs[1], step)));
  if (nd->w[2] != 0.0f) v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(nd->w[2]), rect8(p, nd->ofs[2], step)));
  return _mm256_cmp_ps(_mm256_mul_ps(v, nf), _mm256_set1_ps(nd->thr), _CMP_LT_OQ);
}

__attribute__((target("avx2"))) int ac_haar_tree_stages_avx2(const ac_haar_node *nodes, const int *tree_nodes,
                                                             const float *leaves, const int *ntrees,
                                                             const float *thr, int first, int last, ac_tree_pos at,
                                                             const uint32_t *p, int step, const float *vnf,
                                                             int active) {
  __m256 nf = _mm256_loadu_ps(vnf);
  int node = at.node, leaf = at.leaf, tree = at.tree;
  for (int si = first; si < last && active; si++) {
    int simple = 1;
    for (int t = 0, nd = node; t < ntrees[si]; nd += tree_nodes[tree + t], t++)
      if (!simple_tree(&nodes[nd], tree_nodes[tree + t])) simple = 0;
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (simple) {
      __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
      for (int t = ntrees[si]; t > 0; t--, tree++) {
        int n = tree_nodes[tree];
        const ac_haar_node *r0 = &nodes[node];
        __m256 m0 = node_left(r0, p, step, nf), leafv;
        if (n == 1) {
          leafv = _mm256_blendv_ps(_mm256_set1_ps(leaves[leaf - r0->right]), _mm256_set1_ps(leaves[leaf - r0->left]), m0);
        } else {
          const ac_haar_node *r1 = r0 + 1;
          __m256 v1 = _mm256_blendv_ps(_mm256_set1_ps(leaves[leaf - r1->right]),
                                       _mm256_set1_ps(leaves[leaf - r1->left]), node_left(r1, p, step, nf));
          __m256 v0 = _mm256_set1_ps(leaves[leaf - (r0->left == 1 ? r0->right : r0->left)]);
          __m256 to1 = r0->left == 1 ? m0 : _mm256_xor_ps(m0, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
          leafv = _mm256_blendv_ps(v0, v1, to1);
        }
        sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(leafv)));
        sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(leafv, 1)));
        node += n;
        leaf += n + 1;
      }
      _mm256_storeu_pd(lane, sum_lo);
      _mm256_storeu_pd(lane + 4, sum_hi);
    } else { /* other shapes: every node for all lanes, then a walk per lane */
      for (int t = ntrees[si]; t > 0; t--, tree++) {
        int n = tree_nodes[tree];
        unsigned m[64];
        for (int j = 0; j < n && j < 64; j++) m[j] = (unsigned)_mm256_movemask_ps(node_left(&nodes[node + j], p, step, nf));
        for (int k = 0; k < 8; k++) {
          if (!(active >> k & 1)) continue;
          int idx = 0;
          do {
            const ac_haar_node *nd = &nodes[node + idx];
            idx = (m[idx] >> k & 1) ? nd->left : nd->right;
          } while (idx > 0);
          lane[k] += leaves[leaf - idx];
        }
        node += n;
        leaf += n + 1;
      }
    }
    for (int k = 0; k < 8; k++)
      if (lane[k] < thr[si]) active &= ~(1 << k);
  }
  return active & 0xFF;
}

/* Bit of the LBP code when block (a, b, c, d corners) >= the centre block. */
__attribute__((target("avx2"))) static inline __m256i lbp_bit(const __m256i *q, int a, int b, int c, int d,
                                                              __m256i centre, int bit) {
  __m256i s = _mm256_add_epi32(_mm256_sub_epi32(_mm256_sub_epi32(q[a], q[b]), q[c]), q[d]);
  __m256i lt = _mm256_cmpgt_epi32(centre, s); /* s < centre */
  return _mm256_andnot_si256(lt, _mm256_set1_epi32(bit));
}

__attribute__((target("avx2"))) int ac_lbp_stages_avx2(const ac_lbp_stump *st, const int *ntrees, const float *thr,
                                                       int first, int last, const uint32_t *p, int step, int active) {
  for (int si = first; si < last && active; si++) {
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    for (int k = ntrees[si]; k > 0; k--, st++) {
      __m256i q[16];
      for (int j = 0; j < 16; j++) q[j] = load8(p + st->ofs[j], step);
      __m256i c = _mm256_add_epi32(_mm256_sub_epi32(_mm256_sub_epi32(q[5], q[6]), q[9]), q[10]);
      __m256i code = _mm256_or_si256(
          _mm256_or_si256(_mm256_or_si256(lbp_bit(q, 0, 1, 4, 5, c, 128), lbp_bit(q, 1, 2, 5, 6, c, 64)),
                          _mm256_or_si256(lbp_bit(q, 2, 3, 6, 7, c, 32), lbp_bit(q, 6, 7, 10, 11, c, 16))),
          _mm256_or_si256(_mm256_or_si256(lbp_bit(q, 10, 11, 14, 15, c, 8), lbp_bit(q, 9, 10, 13, 14, c, 4)),
                          _mm256_or_si256(lbp_bit(q, 8, 9, 12, 13, c, 2), lbp_bit(q, 4, 5, 8, 9, c, 1))));
      __m256i words = _mm256_loadu_si256((const __m256i *)st->subset);
      __m256i word = _mm256_permutevar8x32_epi32(words, _mm256_srli_epi32(code, 5));
      __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(word, _mm256_and_si256(code, _mm256_set1_epi32(31))),
                                     _mm256_set1_epi32(1));
      __m256 left = _mm256_castsi256_ps(_mm256_cmpeq_epi32(bit, _mm256_set1_epi32(1)));
      __m256 leaf = _mm256_blendv_ps(_mm256_set1_ps(st->right), _mm256_set1_ps(st->left), left);
      sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(leaf)));
      sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(leaf, 1)));
    }
    __m256d t = _mm256_set1_pd((double)thr[si]);
    int fail = _mm256_movemask_pd(_mm256_cmp_pd(sum_lo, t, _CMP_LT_OQ)) |
               _mm256_movemask_pd(_mm256_cmp_pd(sum_hi, t, _CMP_LT_OQ)) << 4;
    active &= ~fail;
  }
  return active & 0xFF;
}
