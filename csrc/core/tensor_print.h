/*
 * tensor_print.h - the text form of a tensor (what tostring(t) and print(t)
 * show in Lua), Torch-style: one number format chosen from the range of the
 * values, vectors as a column, matrices as rows, higher ranks as "(i,j,.,.)"
 * slices, a summary with "..." above 1000 elements, and a closing line
 * "[adcorre.Tensor float32 of size 2x3]".
 *
 *   size_t n = ac_tensor_format(&t, NULL, 0);     // length, as snprintf
 *   char *s = malloc(n + 1);
 *   ac_tensor_format(&t, s, n + 1);
 */
#ifndef AC_TENSOR_PRINT_H
#define AC_TENSOR_PRINT_H
#include <stddef.h>
#include "core/tensor.h"

/* Writes at most cap bytes of the text (NUL-terminated when cap > 0) and
 * returns its full length, as snprintf does. A released tensor (storage
 * NULL) prints as "[adcorre.Tensor (closed)]". */
size_t ac_tensor_format(const ac_tensor *t, char *buf, size_t cap);

#endif
