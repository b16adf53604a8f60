/*
 * safetensors.h - reading and writing the safetensors format
 * (https://github.com/huggingface/safetensors):
 *
 *   u64 little-endian N | N bytes of UTF-8 JSON header | data
 *   header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
 *            ..., "__metadata__": {"key": "value", ...}}
 *   offsets are relative to the start of the data, row-major, little-endian.
 *
 * The reader checks everything a hostile file could get wrong and says what:
 * N <= 100,000,000 and 8 + N <= file size; the header is valid UTF-8 JSON of
 * the expected form; no duplicate names; known dtypes; at most AC_MAXDIM
 * dimensions; each tensor's byte size (shape product x dtype size, computed
 * with overflow checks) equals end - begin; the offsets, sorted, cover the data
 * contiguously from 0 with no holes or overlaps; and the last end + 8 + N
 * equals the file size.
 *
 *   ac_st_file f;
 *   if (ac_st_open(&f, "model.safetensors")) puts(ac_error());
 *   int i = ac_st_find(&f, "fc.weight");          // -1 when absent
 *   ac_tensor t;  // allocate with ac_st_native(f.entries[i].dtype) and the shape
 *   ac_st_read(&f, i, &t);                        // converts F64/F16/BF16 -> F32, ints -> I64
 *   ac_st_close(&f);
 *
 * The writer pads the header with spaces to a multiple of 8 bytes, writes to
 * a temporary file in the target's directory, fsyncs it and renames it over
 * the target, so a failed write (disk full, no permission, ...) leaves an
 * existing file untouched. A target that exists and is not a regular file
 * (a device such as /dev/null, a FIFO) is written in place.
 */
#ifndef AC_SAFETENSORS_H
#define AC_SAFETENSORS_H
#include <stdint.h>
#include "core/tensor.h"

#define AC_ST_MAX_HEADER 100000000ULL

typedef enum {
  AC_ST_BOOL, AC_ST_U8, AC_ST_I8, AC_ST_F8_E5M2, AC_ST_F8_E4M3,
  AC_ST_I16, AC_ST_U16, AC_ST_F16, AC_ST_BF16,
  AC_ST_I32, AC_ST_U32, AC_ST_F32,
  AC_ST_F64, AC_ST_I64, AC_ST_U64,
  AC_ST_NDTYPES
} ac_st_dtype;

typedef struct ac_st_entry {
  char *name;
  ac_st_dtype dtype;
  int ndim;
  int64_t shape[AC_MAXDIM];
  uint64_t begin, end; /* byte offsets in the data section */
} ac_st_entry;

typedef struct ac_st_file {
  int fd;
  char *path;
  uint64_t header_len, file_size;
  int n;                 /* tensors, in header order */
  ac_st_entry *entries;
  int nmeta;             /* __metadata__ pairs, in header order */
  char **meta_key, **meta_val;
} ac_st_file;

const char *ac_st_dtype_name(ac_st_dtype d);  /* "F32" ... */
int ac_st_dtype_size(ac_st_dtype d);          /* bytes per element */
/* The adcorre dtype a safetensors dtype loads as: F32 for floats, I64 for
 * signed/unsigned integers of 8..64 bits except U8, U8 for U8 and BOOL. */
ac_dtype ac_st_native(ac_st_dtype d);

/* Opens and validates path. On failure f holds nothing to close. */
int ac_st_open(ac_st_file *f, const char *path);
void ac_st_close(ac_st_file *f);
int ac_st_find(const ac_st_file *f, const char *name);
/* Reads entry i into dst: a contiguous tensor of dtype ac_st_native(...) with
 * the entry's number of elements. */
int ac_st_read(ac_st_file *f, int i, ac_tensor *dst);

/* Writes n contiguous tensors (float32, int64 or uint8) under the given
 * names, plus nmeta metadata string pairs. Names must be unique, non-empty,
 * valid UTF-8 and not "__metadata__". */
int ac_st_write(const char *path, int n, const char *const *names,
                const ac_tensor *const *tensors, int nmeta,
                const char *const *keys, const char *const *vals);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ac_utf8_valid(const char *s, size_t len);

#endif
