/*
 * gather.c - rows of a data array by index (see gather.h). Every index is
 * checked before any row is copied.
 */
#include "data/gather.h"

#include <string.h>

int ac_gather_rows(ac_tensor *out, const ac_tensor *src, const int64_t *idx, int64_t k) {
  if (src->ndim < 1) return ac_fail("source must have at least 1 dimension");
  int64_t n = src->shape[0];
  for (int64_t i = 0; i < k; i++)
    if (idx[i] < 1 || idx[i] > n) return ac_fail("index %lld out of range 1..%lld", (long long)idx[i], (long long)n);
  size_t row = ac_dtype_size(src->dtype);
  for (int d = 1; d < src->ndim; d++) row *= (size_t)src->shape[d];
  const char *s = ac_data(src);
  char *dst = ac_data(out);
  for (int64_t i = 0; i < k; i++) memcpy(dst + i * row, s + (idx[i] - 1) * row, row);
  return 0;
}
