/*
 * npy.c - NumPy .npy reader and writer (see npy.h). The header is a Python
 * dict literal; it is parsed for 'descr', 'fortran_order' and 'shape' in any
 * key order, and every size is checked against the file length before any
 * data is read.
 */
#include "io/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/fileio.h"

/* ===================================================================== */
/* header parsing                                                          */
/* ===================================================================== */

typedef struct {
  char kind;      /* 'f' 'i' 'u' 'b' */
  int size;       /* bytes per element */
  int big_endian; /* 1 for '>' */
  int fortran;
  int ndim;
  int64_t shape[AC_MAXDIM];
} npy_header;

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* finds 'key' (quoted with ' or ") and returns a pointer after the colon */
static const char *find_key(const char *h, const char *end, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = h; p + kl + 2 < end; p++) {
    if ((*p == '\'' || *p == '"') && p[kl + 1] == *p && !memcmp(p + 1, key, kl)) {
      const char *q = skip_ws(p + kl + 2, end);
      if (q < end && *q == ':') return skip_ws(q + 1, end);
    }
  }
  return NULL;
}

static int parse_header(const char *h, size_t hlen, const char *name, npy_header *out) {
  const char *end = h + hlen;
  memset(out, 0, sizeof *out);
  const char *p = find_key(h, end, "descr");
  if (!p || p >= end || (*p != '\'' && *p != '"')) return ac_fail("load_npy: %s: header has no 'descr'", name);
  char q = *p++;
  const char *e = memchr(p, q, (size_t)(end - p));
  if (!e || e - p < 2 || e - p > 8) return ac_fail("load_npy: %s: malformed 'descr'", name);
  char order = p[0];
  out->kind = p[1];
  out->size = atoi(p + 2) > 0 && e - p > 2 ? atoi(p + 2) : 0;
  if (e - p == 2) out->size = 0;
  for (const char *c = p + 2; c < e; c++)
    if (*c < '0' || *c > '9') return ac_fail("load_npy: %s: unsupported descr '%.*s'", name, (int)(e - p), p);
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return ac_fail("load_npy: %s: unsupported descr '%.*s'", name, (int)(e - p), p);
  out->big_endian = order == '>';
  int ok = (out->kind == 'f' && (out->size == 2 || out->size == 4 || out->size == 8)) ||
           (out->kind == 'i' && (out->size == 1 || out->size == 2 || out->size == 4 || out->size == 8)) ||
           (out->kind == 'u' && (out->size == 1 || out->size == 2 || out->size == 4 || out->size == 8)) ||
           (out->kind == 'b' && out->size == 1);
  if (!ok) return ac_fail("load_npy: %s: unsupported dtype '%.*s' (float, int, uint, bool are read)", name, (int)(e - p), p);

  p = find_key(h, end, "fortran_order");
  if (!p) return ac_fail("load_npy: %s: header has no 'fortran_order'", name);
  if (end - p >= 4 && !memcmp(p, "True", 4)) out->fortran = 1;
  else if (end - p >= 5 && !memcmp(p, "False", 5)) out->fortran = 0;
  else return ac_fail("load_npy: %s: malformed 'fortran_order'", name);

  p = find_key(h, end, "shape");
  if (!p || p >= end || *p != '(') return ac_fail("load_npy: %s: header has no 'shape' tuple", name);
  p++;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end) return ac_fail("load_npy: %s: unterminated 'shape'", name);
    if (*p == ')') break;
    if (*p < '0' || *p > '9') return ac_fail("load_npy: %s: malformed 'shape'", name);
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
      if (v > (INT64_C(1) << 50)) return ac_fail("load_npy: %s: dimension too large", name);
      v = v * 10 + (*p++ - '0');
    }
    if (p < end && *p == 'L') p++;
    if (out->ndim >= AC_MAXDIM) return ac_fail("load_npy: %s: more than %d dimensions", name, AC_MAXDIM);
    out->shape[out->ndim++] = v;
    p = skip_ws(p, end);
    if (p < end && *p == ',') p++;
  }
  return 0;
}

/* ===================================================================== */
/* element conversion                                                      */
/* ===================================================================== */

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, f;
  if (exp == 0) {
    if (man == 0) f = sign;
    else {
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; exp--; }
      man &= 0x3ff;
      f = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    f = sign | 0x7f800000u | (man << 13);
  } else {
    f = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float r;
  memcpy(&r, &f, 4);
  return r;
}

static void read_elem(const unsigned char *src, const npy_header *h, double *out) {
  unsigned char b[8];
  int n = h->size;
  for (int i = 0; i < n; i++) b[i] = h->big_endian ? src[n - 1 - i] : src[i];
  switch (h->kind) {
  case 'f':
    if (n == 2) { uint16_t x; memcpy(&x, b, 2); *out = half_to_float(x); }
    else if (n == 4) { float x; memcpy(&x, b, 4); *out = x; }
    else { double x; memcpy(&x, b, 8); *out = x; }
    break;
  case 'i':
    if (n == 1) *out = (int8_t)b[0];
    else if (n == 2) { int16_t x; memcpy(&x, b, 2); *out = x; }
    else if (n == 4) { int32_t x; memcpy(&x, b, 4); *out = x; }
    else { int64_t x; memcpy(&x, b, 8); *out = (double)x; }
    break;
  case 'u':
    if (n == 1) *out = b[0];
    else if (n == 2) { uint16_t x; memcpy(&x, b, 2); *out = x; }
    else if (n == 4) { uint32_t x; memcpy(&x, b, 4); *out = x; }
    else { uint64_t x; memcpy(&x, b, 8); *out = (double)x; }
    break;
  default: *out = b[0] != 0; break;
  }
}

/* Integer elements exactly (no round trip through double); -1 for a uint64
 * above INT64_MAX. */
static int read_int(const unsigned char *src, const npy_header *h, int64_t *out) {
  unsigned char b[8];
  int n = h->size;
  for (int i = 0; i < n; i++) b[i] = h->big_endian ? src[n - 1 - i] : src[i];
  if (n != 8) {
    double v;
    read_elem(src, h, &v);
    *out = (int64_t)v;
    return 0;
  }
  uint64_t x;
  memcpy(&x, b, 8);
  if (h->kind == 'u' && x > (uint64_t)INT64_MAX) return -1;
  *out = (int64_t)x;
  return 0;
}

int ac_npy_parse(const unsigned char *buf, size_t len, const char *name, ac_tensor *out) {
  memset(out, 0, sizeof *out);
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return ac_fail("load_npy: %s: not an .npy file (bad magic)", name);
  int major = buf[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) return ac_fail("load_npy: %s: truncated header", name);
    hlen = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
    hstart = 12;
  } else {
    return ac_fail("load_npy: %s: unsupported format version %d", name, major);
  }
  if (hlen > len - hstart) return ac_fail("load_npy: %s: truncated header (%zu bytes announced, %zu present)", name, hlen, len - hstart);
  npy_header h;
  if (parse_header((const char *)buf + hstart, hlen, name, &h)) return -1;
  size_t data_off = hstart + hlen;
  /* element count without overflow */
  uint64_t count = 1;
  for (int i = 0; i < h.ndim; i++) {
    if (h.shape[i] != 0 && count > UINT64_MAX / (uint64_t)h.shape[i]) return ac_fail("load_npy: %s: shape overflows", name);
    count *= (uint64_t)h.shape[i];
  }
  if (count > (len - data_off) / (size_t)h.size)
    return ac_fail("load_npy: %s: truncated data: shape needs %llu bytes, file has %zu", name,
                   (unsigned long long)(count * (uint64_t)h.size), len - data_off);
  ac_dtype dt = h.kind == 'f' ? AC_F32 : ((h.kind == 'u' && h.size == 1) || h.kind == 'b') ? AC_U8 : AC_I64;
  int64_t shape[AC_MAXDIM];
  for (int i = 0; i < h.ndim; i++) shape[i] = h.fortran ? h.shape[h.ndim - 1 - i] : h.shape[i];
  if (ac_tensor_new(out, dt, h.ndim, shape)) return ac_fail("load_npy: %s: %s", name, ac_error());
  const unsigned char *src = buf + data_off;
  int64_t n = (int64_t)count;
  if (dt == AC_F32 && h.kind == 'f' && h.size == 4 && !h.big_endian) {
    memcpy(ac_f32(out), src, (size_t)n * 4);
  } else if (dt == AC_U8 && h.size == 1) {
    if (h.kind == 'b') for (int64_t i = 0; i < n; i++) ac_u8(out)[i] = src[i] != 0;
    else memcpy(ac_u8(out), src, (size_t)n);
  } else if (dt == AC_I64 && h.size == 8 && h.kind == 'i' && !h.big_endian) {
    memcpy(ac_i64(out), src, (size_t)n * 8);
  } else {
    for (int64_t i = 0; i < n; i++) {
      double v;
      if (dt == AC_I64) {
        if (read_int(src + (size_t)i * (size_t)h.size, &h, &ac_i64(out)[i])) {
          ac_tensor_release(out);
          return ac_fail("load_npy: %s: uint64 element %lld does not fit in int64", name, (long long)i);
        }
        continue;
      }
      read_elem(src + (size_t)i * (size_t)h.size, &h, &v);
      if (dt == AC_F32) ac_f32(out)[i] = (float)v;
      else ac_u8(out)[i] = (uint8_t)v;
    }
  }
  if (h.fortran && h.ndim > 1) {
    /* the data is the transpose of the shape we allocated: reverse the dims back */
    int perm[AC_MAXDIM];
    for (int i = 0; i < h.ndim; i++) perm[i] = h.ndim - 1 - i;
    ac_tensor view = *out, c;
    ac_view_permute(&view, perm);
    if (ac_contiguous(&c, &view)) { ac_tensor_release(out); return -1; }
    ac_tensor_release(out);
    *out = c;
  }
  return 0;
}

int ac_npy_load(const char *path, ac_tensor *out) {
  unsigned char *buf;
  size_t len;
  memset(out, 0, sizeof *out);
  if (ac_read_file(path, &buf, &len)) return ac_fail("load_npy: %s", ac_error());
  int rc = ac_npy_parse(buf, len, path, out);
  free(buf);
  return rc;
}

/* ===================================================================== */
/* writing                                                                 */
/* ===================================================================== */

int ac_npy_save(const char *path, const ac_tensor *t, int as_int32) {
  const char *descr;
  int esz;
  switch (t->dtype) {
  case AC_F32: descr = "<f4"; esz = 4; break;
  case AC_I64: descr = as_int32 ? "<i4" : "<i8"; esz = as_int32 ? 4 : 8; break;
  default: descr = "|u1"; esz = 1; break;
  }
  /* the shape as a Python tuple: (), (5,), (2, 3) */
  char tup[256];
  int tl = snprintf(tup, sizeof tup, "(");
  for (int i = 0; i < t->ndim; i++)
    tl += snprintf(tup + tl, sizeof tup - (size_t)tl, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  snprintf(tup + tl, sizeof tup - (size_t)tl, t->ndim == 1 ? ",)" : ")");
  char dict[384];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tup);
  /* pad so that magic + length + header is a multiple of 64, ending in '\n' */
  int pad = (64 - (10 + len + 1) % 64) % 64;
  int hlen = len + pad + 1;
  size_t n = (size_t)ac_numel(t);
  ac_tensor c;
  if (ac_contiguous(&c, t)) return ac_fail("save_npy: %s", ac_error());
  size_t nbytes = 10 + (size_t)hlen + n * (size_t)esz;
  unsigned char *buf = malloc(nbytes);
  if (!buf) {
    ac_tensor_release(&c);
    return ac_fail("save_npy: out of memory (%zu bytes)", nbytes);
  }
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hlen & 0xff);
  buf[9] = (unsigned char)(hlen >> 8);
  memcpy(buf + 10, dict, (size_t)len);
  memset(buf + 10 + len, ' ', (size_t)pad);
  buf[10 + len + pad] = '\n';
  unsigned char *d = buf + 10 + hlen;
  if (t->dtype == AC_I64 && as_int32) {
    for (size_t i = 0; i < n; i++) {
      int32_t x = (int32_t)ac_i64(&c)[i];
      memcpy(d + i * 4, &x, 4);
    }
  } else if (n) {
    memcpy(d, ac_data(&c), n * (size_t)esz);
  }
  ac_tensor_release(&c);
  int rc = ac_write_file_atomic(path, buf, nbytes);
  free(buf);
  if (rc) return ac_fail("save_npy: %s", ac_error());
  return 0;
}
