/*
 * gather.h - picking rows of a data array by index: the subsets and
 * orderings the data sets make (a split of fer2013.csv, the FER+ rows that
 * have votes) from one parsed array.
 *
 *   int64_t idx[3] = {5, 1, 5};       // 1-based rows of src
 *   ac_gather_rows(&out, &src, idx, 3);  // out [3, ...] = src[5], src[1], src[5]
 */
#ifndef AC_GATHER_H
#define AC_GATHER_H
#include <stdint.h>
#include "core/tensor.h"

/* out [k, ...] = the rows idx[0..k-1] (1-based) of src [n, ...]; both
 * contiguous, of one dtype, out already of the right shape. -1 with a
 * message when an index is outside 1..n. */
int ac_gather_rows(ac_tensor *out, const ac_tensor *src, const int64_t *idx, int64_t k);

#endif
