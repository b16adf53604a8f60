/*
 * hdf5.c - read-only access to HDF5 files (see hdf5.h) on the HDF5 C
 * library. HDF5 prints its error stack to stderr by default; that is turned
 * off here, and the innermost entry of the stack becomes part of our own
 * message instead, after the file and the object.
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/fileio.h"
#include "io/hdf5.h"

struct ac_h5file {
  hid_t fid;
  char *path;
};

/* ------------------------------------------------------------------------ */
/* errors                                                                    */
/* ------------------------------------------------------------------------ */

static herr_t first_reason(unsigned n, const H5E_error2_t *e, void *data) {
  char *buf = data;
  if (n == 0 && e->desc && e->desc[0]) snprintf(buf, 256, "%s", e->desc);
  return 0;
}

/* The innermost reason on HDF5's error stack ("" when empty), then clears it. */
static const char *h5_reason(void) {
  static char buf[256];
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_reason, buf);
  H5Eclear2(H5E_DEFAULT);
  return buf;
}

/* "<file>: <what> '<obj>'[: <hdf5 reason>]" */
static int h5_fail(const ac_h5file *f, const char *what, const char *obj) {
  const char *r = h5_reason();
  return ac_fail("%s: %s '%s'%s%s", f->path, what, obj, r[0] ? ": " : "", r);
}

static void quiet(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* files and objects                                                         */
/* ------------------------------------------------------------------------ */

int ac_h5_open(const char *path, ac_h5file **out) {
  *out = NULL;
  quiet();
  /* missing files, folders, FIFOs and devices get the readers' usual words */
  struct stat st;
  int fd = ac_open_regular(path, &st);
  if (fd < 0) return -1;
  close(fd);
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    h5_reason();
    return ac_fail("%s: not an HDF5 file (%lld bytes, no HDF5 signature)", path, (long long)st.st_size);
  }
  hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fid < 0) {
    const char *r = h5_reason();
    return ac_fail("%s: cannot open the HDF5 file (damaged or truncated?)%s%s", path, r[0] ? ": " : "", r);
  }
  ac_h5file *f = calloc(1, sizeof *f);
  char *p = f ? strdup(path) : NULL;
  if (!p) {
    free(f);
    H5Fclose(fid);
    return ac_fail("%s: out of memory", path);
  }
  f->fid = fid;
  f->path = p;
  *out = f;
  return 0;
}

void ac_h5_close(ac_h5file *f) {
  if (!f) return;
  if (f->fid >= 0) H5Fclose(f->fid);
  free(f->path);
  free(f);
}

const char *ac_h5_path(const ac_h5file *f) { return f->path; }

/* 1 when every link on the way to path exists (H5Lexists wants the parents
 * to exist), 0 otherwise. */
static int link_exists(ac_h5file *f, const char *path) {
  if (!path[0] || strcmp(path, "/") == 0) return 1;
  size_t n = strlen(path);
  char *buf = malloc(n + 1);
  if (!buf) return 0;
  memcpy(buf, path, n + 1);
  int ok = 1;
  for (size_t i = 1; i <= n && ok; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (!(i == 1 && buf[0] == '/')) ok = H5Lexists(f->fid, buf, H5P_DEFAULT) > 0;
      buf[i] = c;
    }
  }
  free(buf);
  H5Eclear2(H5E_DEFAULT);
  return ok;
}

int ac_h5_kind(ac_h5file *f, const char *path) {
  if (!link_exists(f, path)) return 0;
  hid_t o = H5Oopen(f->fid, path[0] ? path : "/", H5P_DEFAULT);
  if (o < 0) return h5_fail(f, "cannot open object", path);
  H5I_type_t t = H5Iget_type(o);
  H5Oclose(o);
  return t == H5I_GROUP ? 1 : t == H5I_DATASET ? 2 : 3;
}

int ac_h5_exists(ac_h5file *f, const char *path) { return ac_h5_kind(f, path) > 0; }

int ac_h5_has_attr(ac_h5file *f, const char *obj, const char *attr) {
  if (!link_exists(f, obj)) return ac_fail("%s: no object '%s'", f->path, obj);
  htri_t r = H5Aexists_by_name(f->fid, obj[0] ? obj : "/", attr, H5P_DEFAULT);
  if (r < 0) return h5_fail(f, "cannot read the attributes of", obj);
  return r > 0;
}

/* ------------------------------------------------------------------------ */
/* string attributes                                                         */
/* ------------------------------------------------------------------------ */

void ac_h5_strings_free(char **v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* A copy of s[0..len) without the trailing padding. */
static char *trimmed(const char *s, size_t len) {
  size_t n = 0;
  while (n < len && s[n]) n++;
  while (n > 0 && s[n - 1] == ' ') n--;
  char *r = malloc(n + 1);
  if (r) {
    memcpy(r, s, n);
    r[n] = 0;
  }
  return r;
}

/* Reads the strings of attribute a (count elements of type t). */
static int read_strings(ac_h5file *f, hid_t a, hid_t t, hsize_t count, const char *where, char **v) {
  if (H5Tis_variable_str(t) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    char **raw = calloc(count ? count : 1, sizeof *raw);
    if (!raw) {
      H5Tclose(mt);
      return ac_fail("%s: out of memory reading %s", f->path, where);
    }
    herr_t r = H5Aread(a, mt, raw);
    if (r < 0) {
      free(raw);
      H5Tclose(mt);
      return h5_fail(f, "cannot read attribute", where);
    }
    int bad = 0;
    for (hsize_t i = 0; i < count; i++) {
      v[i] = raw[i] ? trimmed(raw[i], strlen(raw[i])) : trimmed("", 0);
      if (!v[i]) bad = 1;
    }
    hid_t sp = H5Aget_space(a);
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
    H5Sclose(sp);
    H5Tclose(mt);
    free(raw);
    return bad ? ac_fail("%s: out of memory reading %s", f->path, where) : 0;
  }
  size_t sz = H5Tget_size(t);
  if (sz == 0 || count > SIZE_MAX / sz) return ac_fail("%s: attribute %s has a bad size", f->path, where);
  char *buf = malloc(sz * count + 1);
  if (!buf) return ac_fail("%s: out of memory reading %s (%zu bytes)", f->path, where, sz * (size_t)count);
  hid_t mt = H5Tcopy(t);
  herr_t r = H5Aread(a, mt, buf);
  H5Tclose(mt);
  if (r < 0) {
    free(buf);
    return h5_fail(f, "cannot read attribute", where);
  }
  int bad = 0;
  for (hsize_t i = 0; i < count; i++) {
    v[i] = trimmed(buf + i * sz, sz);
    if (!v[i]) bad = 1;
  }
  free(buf);
  return bad ? ac_fail("%s: out of memory reading %s", f->path, where) : 0;
}

int ac_h5_attr_strings(ac_h5file *f, const char *obj, const char *attr, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  char where[512];
  snprintf(where, sizeof where, "%s of '%s'", attr, obj[0] ? obj : "/");
  int has = ac_h5_has_attr(f, obj, attr);
  if (has < 0) return -1;
  if (!has) return ac_fail("%s: no attribute %s", f->path, where);
  hid_t a = H5Aopen_by_name(f->fid, obj[0] ? obj : "/", attr, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return h5_fail(f, "cannot open attribute", where);
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  int rc = -1;
  if (t < 0 || sp < 0) {
    h5_fail(f, "cannot read the type of attribute", where);
    goto done;
  }
  int nd = H5Sget_simple_extent_ndims(sp);
  hssize_t count = H5Sget_simple_extent_npoints(sp);
  if (nd < 0 || nd > 1 || count < 0) {
    ac_fail("%s: attribute %s is not a scalar or a list (%d dimensions)", f->path, where, nd);
    goto done;
  }
  if (H5Tget_class(t) != H5T_STRING) {
    if (count == 0) rc = 0; /* h5py's empty list: a float64 array of length 0 */
    else ac_fail("%s: attribute %s is not a string", f->path, where);
    goto done;
  }
  char **v = calloc(count ? (size_t)count : 1, sizeof *v);
  if (!v) {
    ac_fail("%s: out of memory reading %s", f->path, where);
    goto done;
  }
  if (count > 0 && read_strings(f, a, t, (hsize_t)count, where, v) != 0) {
    ac_h5_strings_free(v, (size_t)count);
    goto done;
  }
  *out = v;
  *n = (size_t)count;
  rc = 0;
done:
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  H5Aclose(a);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* groups and datasets                                                       */
/* ------------------------------------------------------------------------ */

int ac_h5_members(ac_h5file *f, const char *group, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  int k = ac_h5_kind(f, group);
  if (k < 0) return -1;
  if (k != 1) return ac_fail("%s: no group '%s'", f->path, group);
  hid_t g = H5Gopen2(f->fid, group[0] ? group : "/", H5P_DEFAULT);
  if (g < 0) return h5_fail(f, "cannot open group", group);
  H5G_info_t gi;
  if (H5Gget_info(g, &gi) < 0) {
    H5Gclose(g);
    return h5_fail(f, "cannot list group", group);
  }
  char **v = calloc(gi.nlinks ? gi.nlinks : 1, sizeof *v);
  if (!v) {
    H5Gclose(g);
    return ac_fail("%s: out of memory listing '%s'", f->path, group);
  }
  for (hsize_t i = 0; i < gi.nlinks; i++) {
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
    if (len < 0 || !(v[i] = malloc((size_t)len + 1)) ||
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, v[i], (size_t)len + 1, H5P_DEFAULT) < 0) {
      ac_h5_strings_free(v, gi.nlinks);
      H5Gclose(g);
      return h5_fail(f, "cannot list group", group);
    }
  }
  H5Gclose(g);
  *out = v;
  *n = gi.nlinks;
  return 0;
}

/* Opens a numeric dataset and reads its shape. */
static hid_t open_numeric(ac_h5file *f, const char *path, int *ndim, int64_t *shape) {
  int k = ac_h5_kind(f, path);
  if (k < 0) return -1;
  if (k != 2) {
    ac_fail("%s: no dataset '%s'%s", f->path, path, k == 1 ? " (it is a group)" : "");
    return -1;
  }
  hid_t d = H5Dopen2(f->fid, path, H5P_DEFAULT);
  if (d < 0) {
    h5_fail(f, "cannot open dataset", path);
    return -1;
  }
  hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  hsize_t dims[H5S_MAX_RANK];
  if (nd >= 0 && nd <= H5S_MAX_RANK) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    H5Dclose(d);
    ac_fail("%s: dataset '%s' is not numeric", f->path, path);
    return -1;
  }
  if (nd < 0 || nd > AC_MAXDIM) {
    H5Dclose(d);
    ac_fail("%s: dataset '%s' has %d dimensions (at most %d)", f->path, path, nd, AC_MAXDIM);
    return -1;
  }
  int64_t total = 1;
  for (int i = 0; i < nd; i++) {
    if (dims[i] > (hsize_t)INT64_MAX || (dims[i] && total > INT64_MAX / 4 / (int64_t)dims[i])) {
      H5Dclose(d);
      ac_fail("%s: dataset '%s' is too large", f->path, path);
      return -1;
    }
    shape[i] = (int64_t)dims[i];
    total *= shape[i];
  }
  *ndim = nd;
  return d;
}

int ac_h5_shape(ac_h5file *f, const char *path, int *ndim, int64_t *shape) {
  hid_t d = open_numeric(f, path, ndim, shape);
  if (d < 0) return -1;
  H5Dclose(d);
  return 0;
}

int ac_h5_read_f32(ac_h5file *f, const char *path, ac_tensor *out) {
  int nd;
  int64_t shape[AC_MAXDIM];
  hid_t d = open_numeric(f, path, &nd, shape);
  if (d < 0) return -1;
  if (ac_tensor_new(out, AC_F32, nd, shape) != 0) {
    H5Dclose(d);
    return -1;
  }
  if (ac_numel(out) > 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ac_f32(out)) < 0) {
    H5Dclose(d);
    ac_tensor_release(out);
    return h5_fail(f, "cannot read dataset (truncated or damaged file?)", path);
  }
  H5Dclose(d);
  return 0;
}
