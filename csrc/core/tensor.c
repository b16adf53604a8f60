/*
 * tensor.c - storages, strided views and element copies for the adcorre
 * tensor core (see tensor.h). No Lua here.
 */
#include "core/tensor.h"
#include "core/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===================================================================== */
/* errors                                                                  */
/* ===================================================================== */

static _Thread_local char ac_errbuf[1024]; /* as long as acL_error's */

int ac_fail(const char *fmt, ...) {
  /* format into a scratch buffer first: the arguments may point into ac_errbuf
   * (ac_fail("context: %s", ac_error()) is the usual way to add context) */
  char tmp[sizeof ac_errbuf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  memcpy(ac_errbuf, tmp, sizeof tmp);
  return -1;
}

const char *ac_error(void) { return ac_errbuf[0] ? ac_errbuf : "unknown error"; }

/* ===================================================================== */
/* dtypes and storage                                                      */
/* ===================================================================== */

size_t ac_dtype_size(ac_dtype d) {
  switch (d) {
  case AC_F32: return 4;
  case AC_I64: return 8;
  case AC_U8: return 1;
  }
  return 1;
}

const char *ac_dtype_name(ac_dtype d) {
  switch (d) {
  case AC_F32: return "float32";
  case AC_I64: return "int64";
  case AC_U8: return "uint8";
  }
  return "?";
}

static _Thread_local int64_t budget_left = -1;
static _Thread_local char budget_why[96];

int64_t ac_alloc_budget(int64_t bytes, const char *why) {
  const int64_t was = budget_left;
  budget_left = bytes < 0 ? -1 : bytes;
  snprintf(budget_why, sizeof budget_why, "%s", why ? why : "");
  return was;
}

/* Charges nbytes to the thread's budget; -1 after ac_fail when it does not fit. */
static int budget_charge(size_t nbytes) {
  if (budget_left < 0) return 0;
  if ((uint64_t)nbytes > (uint64_t)budget_left)
    return ac_fail("allocating %zu bytes exceeds the budget of %lld bytes (%s)", nbytes, (long long)budget_left,
                   budget_why);
  budget_left -= (int64_t)nbytes;
  return 0;
}

ac_storage *ac_storage_new(size_t nbytes) {
  if (budget_charge(nbytes)) return NULL;
  ac_storage *s = malloc(sizeof *s);
  if (!s) { ac_fail("out of memory allocating a storage"); return NULL; }
  size_t alloc = (nbytes + AC_ALIGN - 1) / AC_ALIGN * AC_ALIGN;
  if (alloc == 0) alloc = AC_ALIGN;
  s->data = aligned_alloc(AC_ALIGN, alloc);
  if (!s->data) {
    free(s);
    ac_fail("out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  memset(s->data, 0, alloc);
  s->nbytes = nbytes;
  s->refcount = 1;
  s->external = 0;
  s->arena = NULL;
  s->arena_held = 0;
  return s;
}

ac_storage *ac_storage_new_arena(size_t nbytes) {
  if (budget_charge(nbytes)) return NULL;
  ac_storage *s = calloc(1, sizeof *s);
  if (!s) { ac_fail("out of memory allocating a storage"); return NULL; }
  void *owner = NULL;
  s->data = ac_arena_alloc(nbytes, &owner);
  if (!s->data) {
    free(s);
    ac_fail("out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->external = 1;
  s->arena = owner;
  s->arena_held = 1;
  return s;
}

void ac_storage_arena_release(ac_storage *s) {
  if (!s || !s->arena || !s->arena_held) return;
  ac_arena_free(s->data, s->nbytes);
  s->arena_held = 0;
}

void ac_storage_retain(ac_storage *s) {
  if (s) __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
}

void ac_storage_release(ac_storage *s) {
  if (!s) return;
  if (__atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
    if (s->arena) {
      if (s->arena_held) ac_arena_free(s->data, s->nbytes);
      ac_arena_unref(s->arena);
    } else if (!s->external) {
      free(s->data);
    }
    free(s);
  }
}

/* ===================================================================== */
/* construction                                                            */
/* ===================================================================== */

void ac_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

int ac_tensor_new(ac_tensor *t, ac_dtype dtype, int ndim, const int64_t *shape) {
  memset(t, 0, sizeof *t);
  if (ndim < 0 || ndim > AC_MAXDIM)
    return ac_fail("a tensor has 0 to %d dimensions, got %d", AC_MAXDIM, ndim);
  size_t n = 1, esz = ac_dtype_size(dtype);
  int64_t span = 1; /* product with empty dims counted as 1: the strides must fit */
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return ac_fail("dimension %d has negative size %lld", i + 1, (long long)shape[i]);
    if (shape[i] > 0 && n > (SIZE_MAX / esz) / (size_t)shape[i])
      return ac_fail("tensor of that shape is too large");
    n *= (size_t)shape[i];
    if (shape[i] > 0 && span > INT64_MAX / shape[i]) return ac_fail("tensor of that shape is too large");
    span *= shape[i] > 0 ? shape[i] : 1;
  }
  ac_storage *s = ac_storage_new(n * esz);
  if (!s) return -1;
  t->storage = s;
  t->offset = 0;
  t->ndim = ndim;
  t->dtype = dtype;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  ac_contiguous_strides(ndim, shape, t->stride);
  return 0;
}

int ac_tensor_new_like(ac_tensor *t, const ac_tensor *src) {
  return ac_tensor_new(t, src->dtype, src->ndim, src->shape);
}

void ac_tensor_view_of(ac_tensor *dst, const ac_tensor *src) {
  *dst = *src;
  ac_storage_retain(dst->storage);
}

void ac_tensor_release(ac_tensor *t) {
  if (t->storage) ac_storage_release(t->storage);
  t->storage = NULL;
}

/* ===================================================================== */
/* queries                                                                 */
/* ===================================================================== */

int64_t ac_numel(const ac_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

int ac_is_contiguous(const ac_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

void *ac_data(const ac_tensor *t) {
  if (!t->storage) return NULL;
  return (char *)t->storage->data + (size_t)t->offset * ac_dtype_size(t->dtype);
}

char *ac_shape_str(const ac_tensor *t, char *buf, size_t n) {
  size_t len = 0;
  len += (size_t)snprintf(buf + len, n - len, "[");
  for (int i = 0; i < t->ndim && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (len < n) snprintf(buf + len, n - len, "]");
  return buf;
}

int ac_same_shape(const ac_tensor *a, const ac_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

/* ===================================================================== */
/* views                                                                   */
/* ===================================================================== */

static int check_dim(const ac_tensor *t, int dim, const char *what) {
  if (dim < 0 || dim >= t->ndim)
    return ac_fail("%s: dimension %d out of range for a %d-d tensor", what, dim + 1, t->ndim);
  return 0;
}

int ac_view_reshape(ac_tensor *t, int ndim, const int64_t *shape_in) {
  char buf[128];
  if (ndim < 0 || ndim > AC_MAXDIM) return ac_fail("view: at most %d dimensions", AC_MAXDIM);
  int64_t shape[AC_MAXDIM], known = 1, numel = ac_numel(t);
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    shape[i] = shape_in[i];
    if (shape[i] == -1) {
      if (infer >= 0) return ac_fail("view: only one dimension can be -1");
      infer = i;
    } else if (shape[i] < 0) {
      return ac_fail("view: invalid size %lld", (long long)shape[i]);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known)
      return ac_fail("view: cannot infer size for %s with %lld elements", ac_shape_str(t, buf, sizeof buf), (long long)numel);
    shape[infer] = numel / known;
    known *= shape[infer];
  }
  if (known != numel)
    return ac_fail("view: shape has %lld elements but the tensor %s has %lld", (long long)known,
                   ac_shape_str(t, buf, sizeof buf), (long long)numel);
  /* Compute strides for the new shape over the old layout (as torch's
   * computeStride): group old dims into chunks that are contiguous. */
  int64_t nstride[AC_MAXDIM];
  if (numel == 0 || ac_is_contiguous(t)) {
    ac_contiguous_strides(ndim, shape, nstride);
  } else {
    int view_d = ndim - 1;
    int64_t chunk_base_stride = t->ndim ? t->stride[t->ndim - 1] : 1;
    int64_t tensor_numel = 1, view_numel = 1;
    for (int td = t->ndim - 1; td >= 0; td--) {
      tensor_numel *= t->shape[td];
      if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * chunk_base_stride)) {
        while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
          nstride[view_d] = view_numel * chunk_base_stride;
          view_numel *= shape[view_d];
          view_d--;
        }
        if (view_numel != tensor_numel)
          return ac_fail("view: the layout of %s (non-contiguous) cannot be viewed with that shape; use reshape or contiguous()",
                         ac_shape_str(t, buf, sizeof buf));
        if (td > 0) {
          chunk_base_stride = t->stride[td - 1];
          tensor_numel = 1;
          view_numel = 1;
        }
      }
    }
    if (view_d != -1)
      return ac_fail("view: the layout of %s (non-contiguous) cannot be viewed with that shape", ac_shape_str(t, buf, sizeof buf));
  }
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->stride[i] = nstride[i];
  }
  return 0;
}

int ac_view_transpose(ac_tensor *t, int d0, int d1) {
  if (check_dim(t, d0, "transpose") || check_dim(t, d1, "transpose")) return -1;
  int64_t s = t->shape[d0], st = t->stride[d0];
  t->shape[d0] = t->shape[d1];
  t->stride[d0] = t->stride[d1];
  t->shape[d1] = s;
  t->stride[d1] = st;
  return 0;
}

int ac_view_permute(ac_tensor *t, const int *perm) {
  int seen[AC_MAXDIM] = {0};
  int64_t sh[AC_MAXDIM], st[AC_MAXDIM];
  for (int i = 0; i < t->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]])
      return ac_fail("permute: not a permutation of %d dimensions", t->ndim);
    seen[perm[i]] = 1;
    sh[i] = t->shape[perm[i]];
    st[i] = t->stride[perm[i]];
  }
  memcpy(t->shape, sh, sizeof(int64_t) * (size_t)t->ndim);
  memcpy(t->stride, st, sizeof(int64_t) * (size_t)t->ndim);
  return 0;
}

int ac_view_narrow(ac_tensor *t, int dim, int64_t start, int64_t len) {
  if (check_dim(t, dim, "narrow")) return -1;
  if (start < 0 || len < 0 || start + len > t->shape[dim])
    return ac_fail("narrow: range %lld..%lld is outside dimension %d of size %lld", (long long)start + 1,
                   (long long)(start + len), dim + 1, (long long)t->shape[dim]);
  t->offset += start * t->stride[dim];
  t->shape[dim] = len;
  return 0;
}

int ac_view_select(ac_tensor *t, int dim, int64_t index) {
  if (check_dim(t, dim, "select")) return -1;
  if (index < 0 || index >= t->shape[dim])
    return ac_fail("select: index %lld is outside dimension %d of size %lld", (long long)index + 1, dim + 1,
                   (long long)t->shape[dim]);
  t->offset += index * t->stride[dim];
  for (int i = dim; i < t->ndim - 1; i++) {
    t->shape[i] = t->shape[i + 1];
    t->stride[i] = t->stride[i + 1];
  }
  t->ndim--;
  return 0;
}

int ac_view_expand(ac_tensor *t, int ndim, const int64_t *shape) {
  char buf[128];
  if (ndim < t->ndim || ndim > AC_MAXDIM)
    return ac_fail("expand: cannot expand %s to %d dimensions", ac_shape_str(t, buf, sizeof buf), ndim);
  int64_t sh[AC_MAXDIM], st[AC_MAXDIM];
  int lead = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    int64_t want = shape[i];
    if (i < lead) {
      if (want < 0) return ac_fail("expand: size -1 not allowed for a new dimension");
      sh[i] = want;
      st[i] = 0;
    } else {
      int64_t have = t->shape[i - lead];
      if (want == -1) want = have;
      if (have == want) {
        sh[i] = have;
        st[i] = t->stride[i - lead];
      } else if (have == 1) {
        sh[i] = want;
        st[i] = 0;
      } else {
        return ac_fail("expand: dimension %d of %s has size %lld, cannot expand to %lld", i - lead + 1,
                       ac_shape_str(t, buf, sizeof buf), (long long)have, (long long)want);
      }
    }
  }
  t->ndim = ndim;
  memcpy(t->shape, sh, sizeof(int64_t) * (size_t)ndim);
  memcpy(t->stride, st, sizeof(int64_t) * (size_t)ndim);
  return 0;
}

int ac_view_unsqueeze(ac_tensor *t, int dim) {
  if (dim < 0 || dim > t->ndim) return ac_fail("unsqueeze: dimension %d out of range", dim + 1);
  if (t->ndim >= AC_MAXDIM) return ac_fail("unsqueeze: at most %d dimensions", AC_MAXDIM);
  for (int i = t->ndim; i > dim; i--) {
    t->shape[i] = t->shape[i - 1];
    t->stride[i] = t->stride[i - 1];
  }
  t->shape[dim] = 1;
  t->stride[dim] = dim + 1 < t->ndim + 1 && dim < t->ndim ? t->shape[dim + 1] * t->stride[dim + 1] : 1;
  t->ndim++;
  return 0;
}

int ac_view_squeeze(ac_tensor *t, int dim) {
  if (dim >= 0) {
    if (check_dim(t, dim, "squeeze")) return -1;
    if (t->shape[dim] != 1) return 0;
    return ac_view_select(t, dim, 0);
  }
  int j = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] == 1) continue;
    t->shape[j] = t->shape[i];
    t->stride[j] = t->stride[i];
    j++;
  }
  t->ndim = j;
  return 0;
}

/* ===================================================================== */
/* iteration                                                               */
/* ===================================================================== */

void ac_iter_init(ac_iter *it, int ndim, const int64_t *shape) {
  memset(it, 0, sizeof *it);
  it->ndim = ndim;
  it->total = 1;
  for (int i = 0; i < ndim; i++) {
    it->shape[i] = shape[i];
    it->total *= shape[i];
  }
}

void ac_iter_add_strides(ac_iter *it, int64_t offset, const int64_t *stride) {
  int k = it->n++;
  it->off[k] = offset;
  for (int i = 0; i < it->ndim; i++) it->stride[k][i] = stride[i];
}

void ac_iter_add(ac_iter *it, const ac_tensor *t) { ac_iter_add_strides(it, 0, t->stride); }

int ac_iter_next(ac_iter *it) {
  if (++it->count >= it->total) return 0;
  for (int d = it->ndim - 1; d >= 0; d--) {
    if (++it->idx[d] < it->shape[d]) {
      for (int k = 0; k < it->n; k++) it->off[k] += it->stride[k][d];
      return 1;
    }
    it->idx[d] = 0;
    for (int k = 0; k < it->n; k++) it->off[k] -= it->stride[k][d] * (it->shape[d] - 1);
  }
  return 0;
}

/* ===================================================================== */
/* copies                                                                  */
/* ===================================================================== */

static inline double load_as_double(const void *base, ac_dtype d, int64_t i) {
  switch (d) {
  case AC_F32: return ((const float *)base)[i];
  case AC_I64: return (double)((const int64_t *)base)[i];
  case AC_U8: return ((const uint8_t *)base)[i];
  }
  return 0;
}

static inline void store_double(void *base, ac_dtype d, int64_t i, double v) {
  switch (d) {
  case AC_F32: ((float *)base)[i] = (float)v; break;
  case AC_I64: /* saturating: NaN -> 0, beyond the int64 range -> its ends */
    ((int64_t *)base)[i] = v != v ? 0 : v >= 9223372036854775807.0 ? INT64_MAX : v <= -9223372036854775808.0 ? INT64_MIN
                                                                                                           : (int64_t)v;
    break;
  case AC_U8: ((uint8_t *)base)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
  }
}

double ac_get_flat(const ac_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return load_as_double(ac_data(t), t->dtype, off);
}

void ac_set_flat(ac_tensor *t, int64_t i, double v) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  store_double(ac_data(t), t->dtype, off, v);
}

/* One element from src to dst: exact between equal dtypes (int64 values
 * beyond 2^53 do not survive a trip through double), converted otherwise. */
static inline void copy_elem(void *dp, ac_dtype dd, int64_t doff, const void *sp, ac_dtype sd, int64_t soff) {
  if (dd == sd && dd == AC_I64) ((int64_t *)dp)[doff] = ((const int64_t *)sp)[soff];
  else if (dd == sd && dd == AC_U8) ((uint8_t *)dp)[doff] = ((const uint8_t *)sp)[soff];
  else store_double(dp, dd, doff, load_as_double(sp, sd, soff));
}

/* Same dtype and shape: the dimensions are merged where both tensors are
 * laid out contiguously across them and size-1 dimensions dropped; when the
 * last merged dimension has unit stride in both, every run of it is one
 * memcpy (a narrow along a later dimension, as JoinTable writes, becomes
 * rows of memcpy instead of an element walk). Returns 0 when the layout
 * does not allow it (nothing copied). */
static int copy_rows(ac_tensor *dst, const ac_tensor *src) {
  int64_t shape[AC_MAXDIM], ds[AC_MAXDIM], ss[AC_MAXDIM];
  int nd = 0;
  for (int i = 0; i < dst->ndim; i++) {
    if (dst->shape[i] == 1) continue;
    if (nd > 0 && ds[nd - 1] == dst->stride[i] * dst->shape[i] &&
        ss[nd - 1] == src->stride[i] * dst->shape[i]) {
      shape[nd - 1] *= dst->shape[i];
      ds[nd - 1] = dst->stride[i];
      ss[nd - 1] = src->stride[i];
      continue;
    }
    shape[nd] = dst->shape[i];
    ds[nd] = dst->stride[i];
    ss[nd] = src->stride[i];
    nd++;
  }
  if (nd == 0 || ds[nd - 1] != 1 || ss[nd - 1] != 1) return 0;
  size_t es = ac_dtype_size(dst->dtype), row = (size_t)shape[nd - 1] * es;
  char *dp = ac_data(dst);
  const char *sp = ac_data(src);
  if (nd == 1) {
    memmove(dp, sp, row);
    return 1;
  }
  ac_iter it;
  ac_iter_init(&it, nd - 1, shape);
  ac_iter_add_strides(&it, 0, ds);
  ac_iter_add_strides(&it, 0, ss);
  do { memmove(dp + it.off[0] * (int64_t)es, sp + it.off[1] * (int64_t)es, row); } while (ac_iter_next(&it));
  return 1;
}

int ac_copy(ac_tensor *dst, const ac_tensor *src) {
  char b1[128], b2[128];
  int64_t n = ac_numel(dst);
  if (n != ac_numel(src))
    return ac_fail("copy: destination %s has %lld elements, source %s has %lld", ac_shape_str(dst, b1, sizeof b1),
                   (long long)n, ac_shape_str(src, b2, sizeof b2), (long long)ac_numel(src));
  if (n == 0) return 0;
  if (dst->dtype == src->dtype && ac_is_contiguous(dst) && ac_is_contiguous(src)) {
    memmove(ac_data(dst), ac_data(src), (size_t)n * ac_dtype_size(dst->dtype));
    return 0;
  }
  /* Iterate both in row-major order of their own shapes. When the shapes are
   * equal, a single iterator drives both; otherwise, go through flat indices. */
  void *dp = ac_data(dst);
  const void *sp = ac_data(src);
  if (dst->dtype == src->dtype && ac_same_shape(dst, src) && copy_rows(dst, src)) return 0;
  if (ac_same_shape(dst, src)) {
    ac_iter it;
    ac_iter_init(&it, dst->ndim, dst->shape);
    ac_iter_add(&it, dst);
    ac_iter_add(&it, src);
    if (dst->dtype == AC_F32 && src->dtype == AC_F32) {
      float *d = dp;
      const float *s = sp;
      do { d[it.off[0]] = s[it.off[1]]; } while (ac_iter_next(&it));
    } else {
      do { copy_elem(dp, dst->dtype, it.off[0], sp, src->dtype, it.off[1]); } while (ac_iter_next(&it));
    }
    return 0;
  }
  ac_iter id, is;
  ac_iter_init(&id, dst->ndim, dst->shape);
  ac_iter_add(&id, dst);
  ac_iter_init(&is, src->ndim, src->shape);
  ac_iter_add(&is, src);
  do {
    copy_elem(dp, dst->dtype, id.off[0], sp, src->dtype, is.off[0]);
    ac_iter_next(&is);
  } while (ac_iter_next(&id));
  return 0;
}

int ac_fill(ac_tensor *t, double v) {
  int64_t n = ac_numel(t);
  if (n == 0) return 0;
  void *p = ac_data(t);
  ac_iter it;
  ac_iter_init(&it, t->ndim, t->shape);
  ac_iter_add(&it, t);
  if (t->dtype == AC_F32) {
    float f = (float)v, *d = p;
    if (ac_is_contiguous(t)) {
      for (int64_t i = 0; i < n; i++) d[i] = f;
    } else {
      do { d[it.off[0]] = f; } while (ac_iter_next(&it));
    }
  } else {
    do { store_double(p, t->dtype, it.off[0], v); } while (ac_iter_next(&it));
  }
  return 0;
}

int ac_contiguous(ac_tensor *dst, const ac_tensor *src) {
  if (ac_is_contiguous(src)) {
    ac_tensor_view_of(dst, src);
    return 0;
  }
  if (ac_tensor_new(dst, src->dtype, src->ndim, src->shape)) return -1;
  if (ac_copy(dst, src)) {
    ac_tensor_release(dst);
    return -1;
  }
  return 0;
}
