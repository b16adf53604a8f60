/*
 * npy.h - reading and writing NumPy .npy files (format versions 1-3).
 * Reads float32, float64 (as float32), float16 (as float32), int8/16/32/64,
 * uint8/16/32 and bool, either byte order; writes float32, int64, uint8
 * (and int32 on request). Fortran-ordered arrays are transposed on read.
 */
#ifndef AC_NPY_H
#define AC_NPY_H
#include "core/tensor.h"

/* Loads path into a new tensor *out (float32 for floating types, int64 for
 * integer types, uint8 for uint8 and bool). */
int ac_npy_load(const char *path, ac_tensor *out);
/* Parses an in-memory .npy image (used by the loader and the fuzz harness). */
int ac_npy_parse(const unsigned char *buf, size_t len, const char *name, ac_tensor *out);
/* Writes t to path through a temporary file and a rename. as_int32: store int64 as '<i4'. */
int ac_npy_save(const char *path, const ac_tensor *t, int as_int32);

#endif
