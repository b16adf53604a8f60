/*
 * tensor.h - the adcorre tensor core: reference-counted storages and strided
 * views over them. Kernels in csrc/ use these plain C structs; nothing here
 * knows about Lua.
 *
 * A tensor is (storage, offset, ndim, shape[], stride[], dtype). Offsets and
 * strides count ELEMENTS, not bytes. A view shares its storage and holds one
 * reference to it; ac_tensor_release drops that reference.
 *
 * Errors: functions that can fail return 0 on success and -1 on failure, after
 * writing a message with ac_fail(); ac_error() returns the message of the
 * calling thread's last failure. Nothing here aborts or exits.
 *
 *   ac_tensor t;
 *   int64_t shape[2] = {2, 3};
 *   if (ac_tensor_new(&t, AC_F32, 2, shape)) puts(ac_error());
 *   float *p = ac_f32(&t);            // contiguous, zero-filled
 *   ac_tensor_release(&t);
 */
#ifndef AC_TENSOR_H
#define AC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define AC_MAXDIM 8
#define AC_ALIGN 64

typedef enum { AC_F32 = 0, AC_I64 = 1, AC_U8 = 2 } ac_dtype;

typedef struct ac_storage {
  void *data;
  size_t nbytes;
  int refcount; /* atomic (__atomic builtins) */
  int external; /* 1: data is not ours to free */
  void *arena;  /* non-NULL: data is a range of the arena (arena.h), this its chunk */
  int arena_held; /* 1 while the range is this storage's (0 once handed back) */
} ac_storage;

typedef struct ac_tensor {
  ac_storage *storage; /* NULL for an empty (released) tensor */
  int64_t offset;      /* in elements */
  int ndim;
  int64_t shape[AC_MAXDIM];
  int64_t stride[AC_MAXDIM]; /* in elements */
  ac_dtype dtype;
} ac_tensor;

/* ---- errors ---------------------------------------------------------- */
int ac_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* returns -1 */
const char *ac_error(void);

/* ---- dtypes ---------------------------------------------------------- */
size_t ac_dtype_size(ac_dtype d);
const char *ac_dtype_name(ac_dtype d); /* "float32", "int64", "uint8" */

/* ---- storage --------------------------------------------------------- */
/* An allocation budget for the calling thread. While one is set (>= 0),
 * every new storage is charged against it, and one that does not fit fails
 * before anything is allocated, with ac_fail("allocating N bytes exceeds
 * the budget of M bytes (<why>)"). Importers set it to what a file can
 * justify while they rebuild a model from the file's metadata, so that an
 * architecture asking for absurd sizes is refused before it takes memory.
 * bytes < 0 removes it. Returns the bytes that were left (-1: none). */
int64_t ac_alloc_budget(int64_t bytes, const char *why);
ac_storage *ac_storage_new(size_t nbytes); /* zero-filled, 64-byte aligned; NULL + ac_fail on OOM */
/* a storage whose data is an arena range, contents unspecified (layer buffers) */
ac_storage *ac_storage_new_arena(size_t nbytes);
/* hands s's arena range back now (views of s must not be used afterwards:
 * their memory goes to the next buffer); no-op for other storages */
void ac_storage_arena_release(ac_storage *s);
void ac_storage_retain(ac_storage *s);
void ac_storage_release(ac_storage *s);

/* ---- construction / release ------------------------------------------ */
/* A new contiguous, zero-filled tensor. ndim 0 is a scalar (one element). */
int ac_tensor_new(ac_tensor *t, ac_dtype dtype, int ndim, const int64_t *shape);
/* Same shape and dtype as src, contiguous, zero-filled. */
int ac_tensor_new_like(ac_tensor *t, const ac_tensor *src);
/* Make dst a view of src (retains src's storage). dst must be empty. */
void ac_tensor_view_of(ac_tensor *dst, const ac_tensor *src);
void ac_tensor_release(ac_tensor *t);

/* ---- queries ---------------------------------------------------------- */
int64_t ac_numel(const ac_tensor *t);
int ac_is_contiguous(const ac_tensor *t);
void *ac_data(const ac_tensor *t);         /* pointer to element 0 of the view */
static inline float *ac_f32(const ac_tensor *t) { return (float *)ac_data(t); }
static inline int64_t *ac_i64(const ac_tensor *t) { return (int64_t *)ac_data(t); }
static inline uint8_t *ac_u8(const ac_tensor *t) { return (uint8_t *)ac_data(t); }
/* "[2, 3]" into buf; returns buf. */
char *ac_shape_str(const ac_tensor *t, char *buf, size_t n);
int ac_same_shape(const ac_tensor *a, const ac_tensor *b);
void ac_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);

/* ---- views (in place on a view struct; no data is copied) -------------- */
/* All dims 0-based. These edit *t; use ac_tensor_view_of first for a new view. */
int ac_view_reshape(ac_tensor *t, int ndim, const int64_t *shape); /* needs a compatible layout; one -1 allowed */
int ac_view_transpose(ac_tensor *t, int d0, int d1);
int ac_view_permute(ac_tensor *t, const int *perm);
int ac_view_narrow(ac_tensor *t, int dim, int64_t start, int64_t len);
int ac_view_select(ac_tensor *t, int dim, int64_t index); /* removes dim */
int ac_view_expand(ac_tensor *t, int ndim, const int64_t *shape); /* size-1 dims get stride 0 */
int ac_view_unsqueeze(ac_tensor *t, int dim);
int ac_view_squeeze(ac_tensor *t, int dim); /* dim < 0: all size-1 dims */

/* ---- data movement ------------------------------------------------------ */
/* Copies src into dst element by element in row-major order; same numel;
 * converts dtypes. dst and src may have any strides. */
int ac_copy(ac_tensor *dst, const ac_tensor *src);
int ac_fill(ac_tensor *t, double v);
/* dst = contiguous copy of src (new storage), or a view when already contiguous. */
int ac_contiguous(ac_tensor *dst, const ac_tensor *src);

/* Read/write one element at a flat row-major index of the view, as double. */
double ac_get_flat(const ac_tensor *t, int64_t i);
void ac_set_flat(ac_tensor *t, int64_t i, double v);

/* ---- strided iteration --------------------------------------------------- */
/* Iterates the multi-index of a shape in row-major order, keeping up to 3
 * element offsets (for ternary kernels). Usage:
 *   ac_iter it; ac_iter_init(&it, ndim, shape);
 *   ac_iter_add(&it, a); ac_iter_add(&it, b);
 *   do { ... it.off[0], it.off[1] ... } while (ac_iter_next(&it));
 * The last dimension is usually run in an inner loop by the caller via
 * ac_iter_init_outer (iterates all but the last dim). */
typedef struct ac_iter {
  int ndim, n;
  int64_t shape[AC_MAXDIM];
  int64_t idx[AC_MAXDIM];
  int64_t stride[3][AC_MAXDIM];
  int64_t off[3];
  int64_t count, total;
} ac_iter;
void ac_iter_init(ac_iter *it, int ndim, const int64_t *shape);
void ac_iter_add(ac_iter *it, const ac_tensor *t); /* t's offset and strides (shape must match it->shape) */
void ac_iter_add_strides(ac_iter *it, int64_t offset, const int64_t *stride);
int ac_iter_next(ac_iter *it);

#endif
