/*
 * safetensors.c - safetensors reader (with every structural check listed in
 * safetensors.h) and crash-safe writer (temporary file, fsync, rename).
 * Sections: dtypes, UTF-8, a small JSON parser for the header, the reader,
 * the writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/fileio.h"
#include "io/safetensors.h"

/* ======================================================================
 * dtypes
 * ====================================================================== */

static const char *const st_names[AC_ST_NDTYPES] = {
  "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
  "I32", "U32", "F32", "F64", "I64", "U64"};
static const int st_sizes[AC_ST_NDTYPES] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};

const char *ac_st_dtype_name(ac_st_dtype d) {
  return (d >= 0 && d < AC_ST_NDTYPES) ? st_names[d] : "?";
}
int ac_st_dtype_size(ac_st_dtype d) { return (d >= 0 && d < AC_ST_NDTYPES) ? st_sizes[d] : 0; }

ac_dtype ac_st_native(ac_st_dtype d) {
  switch (d) {
    case AC_ST_BOOL: case AC_ST_U8: return AC_U8;
    case AC_ST_I8: case AC_ST_I16: case AC_ST_U16: case AC_ST_I32: case AC_ST_U32:
    case AC_ST_I64: case AC_ST_U64: return AC_I64;
    default: return AC_F32;
  }
}

static int st_dtype_from_name(const char *s) {
  for (int i = 0; i < AC_ST_NDTYPES; i++)
    if (strcmp(s, st_names[i]) == 0) return i;
  return -1;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { /* subnormal: renormalise */
      int e = -1;
      do { e++; man <<= 1; } while (!(man & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static float fp8_to_float(uint8_t b, int e5m2) {
  /* E5M2 is the top byte of an IEEE half; E4M3 (fn) has bias 7, no infinities. */
  if (e5m2) return half_to_float((uint16_t)(b << 8));
  uint32_t sign = (uint32_t)(b >> 7), exp = (b >> 3) & 0xf, man = b & 7;
  float v;
  if (exp == 15 && man == 7) v = NAN;
  else if (exp == 0) v = ldexpf((float)man, -9);
  else v = ldexpf((float)(8 + man), (int)exp - 10);
  return sign ? -v : v;
}

/* ======================================================================
 * UTF-8
 * ====================================================================== */

int ac_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    if (c < 0x80) { i++; continue; }
    int n;
    unsigned cp, min;
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n >= len - i) return 0; /* needs bytes i+1 .. i+n */
    for (int k = 1; k <= n; k++) {
      unsigned cc = s[i + (size_t)k];
      if ((cc & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += (size_t)n + 1;
  }
  return 1;
}

/* ======================================================================
 * JSON (just what a safetensors header needs; values are validated fully)
 * ====================================================================== */

typedef struct {
  const char *s;
  size_t n, i;
  char err[200];
} jp;

static int jp_fail(jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jp_fail(jp *p, const char *fmt, ...) {
  if (p->err[0]) return -1;
  va_list ap;
  va_start(ap, fmt);
  char msg[150];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(p->err, sizeof p->err, "%s at header byte %zu", msg, p->i);
  return -1;
}

static void jp_ws(jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

static int jp_expect(jp *p, char c) {
  jp_ws(p);
  if (p->i >= p->n || p->s[p->i] != c) {
    if (p->i >= p->n) return jp_fail(p, "invalid JSON: expected '%c', got end of header", c);
    return jp_fail(p, "invalid JSON: expected '%c', got '%c'", c, p->s[p->i]);
  }
  p->i++;
  return 0;
}

static int jp_hex4(jp *p, unsigned *out) {
  if (p->i + 4 > p->n) return jp_fail(p, "invalid JSON: truncated \\u escape");
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p->s[p->i++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return jp_fail(p, "invalid JSON: bad \\u escape");
  }
  *out = v;
  return 0;
}

/* Parses a string into a new malloc'd, NUL-terminated buffer (*out). */
static int jp_string(jp *p, char **out) {
  *out = NULL;
  if (jp_expect(p, '"')) return -1;
  size_t cap = 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) return jp_fail(p, "out of memory");
  for (;;) {
    if (p->i >= p->n) { free(buf); return jp_fail(p, "invalid JSON: unterminated string"); }
    unsigned char c = (unsigned char)p->s[p->i++];
    char tmp[4];
    int tn = 0;
    if (c == '"') break;
    if (c < 0x20) { free(buf); return jp_fail(p, "invalid JSON: control character in string"); }
    if (c == '\\') {
      if (p->i >= p->n) { free(buf); return jp_fail(p, "invalid JSON: unterminated string"); }
      char e = p->s[p->i++];
      unsigned cp;
      switch (e) {
        case '"': tmp[tn++] = '"'; break;
        case '\\': tmp[tn++] = '\\'; break;
        case '/': tmp[tn++] = '/'; break;
        case 'b': tmp[tn++] = '\b'; break;
        case 'f': tmp[tn++] = '\f'; break;
        case 'n': tmp[tn++] = '\n'; break;
        case 'r': tmp[tn++] = '\r'; break;
        case 't': tmp[tn++] = '\t'; break;
        case 'u':
          if (jp_hex4(p, &cp)) { free(buf); return -1; }
          if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;
            if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
              free(buf);
              return jp_fail(p, "invalid JSON: unpaired surrogate");
            }
            p->i += 2;
            if (jp_hex4(p, &lo)) { free(buf); return -1; }
            if (lo < 0xdc00 || lo > 0xdfff) { free(buf); return jp_fail(p, "invalid JSON: unpaired surrogate"); }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(buf);
            return jp_fail(p, "invalid JSON: unpaired surrogate");
          }
          if (cp < 0x80) tmp[tn++] = (char)cp;
          else if (cp < 0x800) { tmp[tn++] = (char)(0xc0 | (cp >> 6)); tmp[tn++] = (char)(0x80 | (cp & 0x3f)); }
          else if (cp < 0x10000) {
            tmp[tn++] = (char)(0xe0 | (cp >> 12)); tmp[tn++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            tmp[tn++] = (char)(0x80 | (cp & 0x3f));
          } else {
            tmp[tn++] = (char)(0xf0 | (cp >> 18)); tmp[tn++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            tmp[tn++] = (char)(0x80 | ((cp >> 6) & 0x3f)); tmp[tn++] = (char)(0x80 | (cp & 0x3f));
          }
          break;
        default: free(buf); return jp_fail(p, "invalid JSON: bad escape '\\%c'", e);
      }
    } else {
      tmp[tn++] = (char)c;
    }
    if (len + (size_t)tn + 1 > cap) {
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) { free(buf); return jp_fail(p, "out of memory"); }
      buf = nb;
    }
    memcpy(buf + len, tmp, (size_t)tn);
    len += (size_t)tn;
  }
  buf[len] = '\0';
  if (strlen(buf) != len) { free(buf); return jp_fail(p, "string contains a NUL character"); }
  *out = buf;
  return 0;
}

/* A non-negative JSON integer (no sign, fraction or exponent) that fits in uint64. */
static int jp_uint(jp *p, uint64_t *out, const char *what) {
  jp_ws(p);
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
    return jp_fail(p, "%s must be a non-negative integer", what);
  if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
    return jp_fail(p, "invalid JSON: leading zero in %s", what);
  uint64_t v = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    unsigned d = (unsigned)(p->s[p->i] - '0');
    if (v > (UINT64_MAX - d) / 10) return jp_fail(p, "%s is too large", what);
    v = v * 10 + d;
    p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
    return jp_fail(p, "%s must be an integer", what);
  *out = v;
  return 0;
}

/* Skips any JSON value (for unknown keys), with a depth limit. */
static int jp_skip(jp *p, int depth) {
  if (depth > 64) return jp_fail(p, "JSON nested too deeply");
  jp_ws(p);
  if (p->i >= p->n) return jp_fail(p, "invalid JSON: unexpected end of header");
  char c = p->s[p->i];
  if (c == '"') { char *s; if (jp_string(p, &s)) return -1; free(s); return 0; }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    p->i++;
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
    for (;;) {
      if (c == '{') {
        char *k;
        if (jp_string(p, &k)) return -1;
        free(k);
        if (jp_expect(p, ':')) return -1;
      }
      if (jp_skip(p, depth + 1)) return -1;
      jp_ws(p);
      if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
      return jp_expect(p, close);
    }
  }
  const char *lits[3] = {"true", "false", "null"};
  for (int k = 0; k < 3; k++) {
    size_t L = strlen(lits[k]);
    if (p->i + L <= p->n && memcmp(p->s + p->i, lits[k], L) == 0) { p->i += L; return 0; }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    size_t st = p->i;
    if (p->s[p->i] == '-') p->i++;
    while (p->i < p->n && strchr("0123456789.eE+-", p->s[p->i])) p->i++;
    if (p->i == st + (c == '-')) return jp_fail(p, "invalid JSON number");
    return 0;
  }
  return jp_fail(p, "invalid JSON: unexpected character '%c'", c);
}

/* ======================================================================
 * reader
 * ====================================================================== */

static void st_free_parsed(ac_st_file *f) {
  for (int i = 0; i < f->n; i++) free(f->entries[i].name);
  free(f->entries);
  for (int i = 0; i < f->nmeta; i++) { free(f->meta_key[i]); free(f->meta_val[i]); }
  free(f->meta_key);
  free(f->meta_val);
  free(f->path);
  f->entries = NULL; f->meta_key = f->meta_val = NULL; f->path = NULL;
  f->n = f->nmeta = 0;
}

void ac_st_close(ac_st_file *f) {
  if (!f) return;
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  st_free_parsed(f);
}

static int st_parse_meta(jp *p, ac_st_file *f) {
  if (f->meta_key) return jp_fail(p, "duplicate \"__metadata__\"");
  if (jp_expect(p, '{')) return -1;
  int cap = 0;
  jp_ws(p);
  if (p->i < p->n && p->s[p->i] == '}') { p->i++; return 0; }
  for (;;) {
    char *k = NULL, *v = NULL;
    if (jp_string(p, &k)) return -1;
    if (jp_expect(p, ':')) { free(k); return -1; }
    jp_ws(p);
    if (p->i >= p->n || p->s[p->i] != '"') {
      jp_fail(p, "__metadata__ value of \"%.60s\" must be a string", k);
      free(k);
      return -1;
    }
    if (jp_string(p, &v)) { free(k); return -1; }
    if (f->nmeta == cap) {
      cap = cap ? 2 * cap : 8;
      char **nk = realloc(f->meta_key, (size_t)cap * sizeof *nk);
      if (nk) f->meta_key = nk;
      char **nv = nk ? realloc(f->meta_val, (size_t)cap * sizeof *nv) : NULL;
      if (nv) f->meta_val = nv;
      if (!nk || !nv) { free(k); free(v); return jp_fail(p, "out of memory"); }
    }
    f->meta_key[f->nmeta] = k;
    f->meta_val[f->nmeta] = v;
    f->nmeta++;
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
    return jp_expect(p, '}');
  }
}

static int st_parse_entry(jp *p, ac_st_entry *e) {
  int have_dtype = 0, have_shape = 0, have_off = 0;
  if (jp_expect(p, '{')) return -1;
  jp_ws(p);
  if (p->i < p->n && p->s[p->i] == '}') { p->i++; goto check; }
  for (;;) {
    char *k;
    if (jp_string(p, &k)) return -1;
    if (jp_expect(p, ':')) { free(k); return -1; }
    if (strcmp(k, "dtype") == 0) {
      char *d;
      free(k);
      if (have_dtype) return jp_fail(p, "tensor \"%.60s\": duplicate \"dtype\"", e->name);
      jp_ws(p);
      if (p->i >= p->n || p->s[p->i] != '"') return jp_fail(p, "tensor \"%.60s\": \"dtype\" must be a string", e->name);
      if (jp_string(p, &d)) return -1;
      int dt = st_dtype_from_name(d);
      if (dt < 0) { jp_fail(p, "tensor \"%.60s\": unknown dtype \"%.20s\"", e->name, d); free(d); return -1; }
      free(d);
      e->dtype = (ac_st_dtype)dt;
      have_dtype = 1;
    } else if (strcmp(k, "shape") == 0) {
      free(k);
      if (have_shape) return jp_fail(p, "tensor \"%.60s\": duplicate \"shape\"", e->name);
      if (jp_expect(p, '[')) return -1;
      e->ndim = 0;
      jp_ws(p);
      if (p->i < p->n && p->s[p->i] == ']') p->i++;
      else for (;;) {
        uint64_t d;
        if (e->ndim >= AC_MAXDIM) return jp_fail(p, "tensor \"%.60s\": more than %d dimensions", e->name, AC_MAXDIM);
        if (jp_uint(p, &d, "a shape entry")) return -1;
        if (d > (uint64_t)INT64_MAX) return jp_fail(p, "tensor \"%.60s\": dimension too large", e->name);
        e->shape[e->ndim++] = (int64_t)d;
        jp_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (jp_expect(p, ']')) return -1;
        break;
      }
      have_shape = 1;
    } else if (strcmp(k, "data_offsets") == 0) {
      free(k);
      if (have_off) return jp_fail(p, "tensor \"%.60s\": duplicate \"data_offsets\"", e->name);
      if (jp_expect(p, '[')) return -1;
      if (jp_uint(p, &e->begin, "a data offset")) return -1;
      if (jp_expect(p, ',')) return -1;
      if (jp_uint(p, &e->end, "a data offset")) return -1;
      jp_ws(p);
      if (p->i < p->n && p->s[p->i] == ',')
        return jp_fail(p, "tensor \"%.60s\": \"data_offsets\" must have exactly 2 entries", e->name);
      if (jp_expect(p, ']')) return -1;
      have_off = 1;
    } else {
      free(k);
      if (jp_skip(p, 1)) return -1;
    }
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
    if (jp_expect(p, '}')) return -1;
    break;
  }
check:
  if (!have_dtype || !have_shape || !have_off)
    return jp_fail(p, "tensor \"%.60s\" lacks \"%s\"", e->name,
                   !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
  return 0;
}

static int st_cmp_begin(const void *a, const void *b) {
  const ac_st_entry *x = *(const ac_st_entry *const *)a, *y = *(const ac_st_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static int st_cmp_name(const void *a, const void *b) {
  return strcmp((*(const ac_st_entry *const *)a)->name, (*(const ac_st_entry *const *)b)->name);
}

/* Checks sizes and the contiguous coverage of the data section. */
static int st_check_layout(ac_st_file *f) {
  uint64_t data_len = f->file_size - 8 - f->header_len;
  for (int i = 0; i < f->n; i++) {
    ac_st_entry *e = &f->entries[i];
    uint64_t bytes = (uint64_t)st_sizes[e->dtype];
    for (int d = 0; d < e->ndim; d++) {
      uint64_t s = (uint64_t)e->shape[d];
      if (s != 0 && bytes > UINT64_MAX / s)
        return ac_fail("%s: tensor \"%s\": shape product overflows", f->path, e->name);
      bytes *= s;
    }
    if (e->end < e->begin)
      return ac_fail("%s: tensor \"%s\": data_offsets [%llu, %llu] end before begin", f->path, e->name,
                     (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != bytes) {
      char buf[160];
      size_t o = 0;
      o += (size_t)snprintf(buf + o, sizeof buf - o, "[");
      for (int d = 0; d < e->ndim && o < sizeof buf; d++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, d ? ", %lld" : "%lld", (long long)e->shape[d]);
      if (o < sizeof buf) snprintf(buf + o, sizeof buf - o, "]");
      return ac_fail("%s: tensor \"%s\": shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                     f->path, e->name, buf, st_names[e->dtype], (unsigned long long)bytes,
                     (unsigned long long)e->begin, (unsigned long long)e->end,
                     (unsigned long long)(e->end - e->begin));
    }
  }
  if (f->n <= 0) {
    if (data_len != 0)
      return ac_fail("%s: no tensors but %llu data bytes after the header", f->path, (unsigned long long)data_len);
    return 0;
  }
  ac_st_entry **order = malloc((size_t)f->n * sizeof *order);
  if (!order) return ac_fail("%s: out of memory", f->path);
  for (int i = 0; i < f->n; i++) order[i] = &f->entries[i];
  qsort(order, (size_t)f->n, sizeof *order, st_cmp_name);
  for (int i = 1; i < f->n; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
      int r = ac_fail("%s: duplicate tensor name \"%s\" in the header", f->path, order[i]->name);
      free(order);
      return r;
    }
  qsort(order, (size_t)f->n, sizeof *order, st_cmp_begin);
  uint64_t pos = 0;
  int rc = 0;
  for (int i = 0; i < f->n && rc == 0; i++) {
    ac_st_entry *e = order[i];
    if (e->begin > pos)
      rc = ac_fail("%s: data has a hole: bytes [%llu, %llu) belong to no tensor (next is \"%s\")", f->path,
                   (unsigned long long)pos, (unsigned long long)e->begin, e->name);
    else if (e->begin < pos)
      rc = ac_fail("%s: tensor \"%s\" (data_offsets [%llu, %llu]) overlaps the previous tensor (ending at %llu)",
                   f->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                   (unsigned long long)pos);
    pos = e->end;
  }
  free(order);
  if (rc) return rc;
  if (pos != data_len) {
    if (pos > data_len)
      return ac_fail("%s: truncated file: tensors need %llu data bytes, the file has %llu after the header "
                     "(file size %llu)", f->path, (unsigned long long)pos, (unsigned long long)data_len,
                     (unsigned long long)f->file_size);
    return ac_fail("%s: %llu trailing bytes after the last tensor (data ends at %llu, file has %llu)", f->path,
                   (unsigned long long)(data_len - pos), (unsigned long long)pos, (unsigned long long)data_len);
  }
  return 0;
}

static int st_read_full(int fd, void *buf, size_t n, uint64_t off) {
  char *b = buf;
  while (n > 0) {
    ssize_t r = pread(fd, b, n, (off_t)off);
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    if (r == 0) { errno = EIO; return -2; }
    b += r; n -= (size_t)r; off += (uint64_t)r;
  }
  return 0;
}

int ac_st_open(ac_st_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  struct stat st;
  int fd = ac_open_regular(path, &st);
  if (fd < 0) {
    if (errno == EINVAL || errno == EISDIR) return -1; /* the kind is named */
    return ac_fail("%s: cannot open: %s", path, strerror(errno));
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size < 8) {
    close(fd);
    return ac_fail("%s: not a safetensors file: %llu bytes, shorter than the 8-byte header length",
                   path, (unsigned long long)size);
  }
  unsigned char lenb[8];
  if (st_read_full(fd, lenb, 8, 0)) { int e = errno; close(fd); return ac_fail("%s: read error: %s", path, strerror(e)); }
  uint64_t N = 0;
  for (int k = 7; k >= 0; k--) N = (N << 8) | lenb[k];
  if (N > AC_ST_MAX_HEADER) {
    close(fd);
    return ac_fail("%s: not a safetensors file: header length %llu exceeds the limit of %llu", path,
                   (unsigned long long)N, (unsigned long long)AC_ST_MAX_HEADER);
  }
  if (8 + N > size) {
    close(fd);
    return ac_fail("%s: truncated file: header length %llu but only %llu bytes follow the length field", path,
                   (unsigned long long)N, (unsigned long long)(size - 8));
  }
  if (N < 2) { close(fd); return ac_fail("%s: not a safetensors file: header of %llu bytes", path, (unsigned long long)N); }
  char *hdr = malloc((size_t)N);
  if (!hdr) { close(fd); return ac_fail("%s: out of memory for a %llu-byte header", path, (unsigned long long)N); }
  if (st_read_full(fd, hdr, (size_t)N, 8)) {
    int e = errno; free(hdr); close(fd);
    return ac_fail("%s: read error: %s", path, strerror(e));
  }
  f->fd = fd;
  f->path = strdup(path);
  f->header_len = N;
  f->file_size = size;
  if (!f->path) { free(hdr); ac_st_close(f); return ac_fail("out of memory"); }
  if (!ac_utf8_valid(hdr, (size_t)N)) {
    free(hdr); ac_st_close(f);
    return ac_fail("%s: not a safetensors file: the header is not valid UTF-8", path);
  }
  jp p = {hdr, (size_t)N, 0, {0}};
  int cap = 0;
  jp_ws(&p);
  if (p.i >= p.n || p.s[p.i] != '{') {
    free(hdr); ac_st_close(f);
    return ac_fail("%s: not a safetensors file: the header does not start with a JSON object", path);
  }
  p.i++;
  jp_ws(&p);
  if (p.i < p.n && p.s[p.i] == '}') {
    p.i++;
    jp_ws(&p);
    if (p.i != p.n) jp_fail(&p, "invalid JSON: trailing characters after the header object");
  } else for (;;) {
    char *name;
    if (jp_string(&p, &name)) break;
    if (jp_expect(&p, ':')) { free(name); break; }
    if (strcmp(name, "__metadata__") == 0) {
      free(name);
      if (st_parse_meta(&p, f)) break;
    } else {
      if (name[0] == '\0') { free(name); jp_fail(&p, "empty tensor name"); break; }
      if (f->n == cap) {
        cap = cap ? cap * 2 : 64;
        ac_st_entry *ne = realloc(f->entries, (size_t)cap * sizeof *ne);
        if (!ne) { free(name); jp_fail(&p, "out of memory"); break; }
        f->entries = ne;
      }
      ac_st_entry *e = &f->entries[f->n++];
      memset(e, 0, sizeof *e);
      e->name = name;
      if (st_parse_entry(&p, e)) break;
    }
    jp_ws(&p);
    if (p.i < p.n && p.s[p.i] == ',') { p.i++; continue; }
    if (jp_expect(&p, '}')) break;
    jp_ws(&p);
    if (p.i != p.n) jp_fail(&p, "invalid JSON: trailing characters after the header object");
    break;
  }
  free(hdr);
  if (p.err[0]) {
    char msg[260];
    snprintf(msg, sizeof msg, "%s", p.err);
    ac_st_close(f);
    return ac_fail("%s: bad safetensors header: %s", path, msg);
  }
  if (st_check_layout(f)) { ac_st_close(f); return -1; }
  return 0;
}

int ac_st_find(const ac_st_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->entries[i].name, name) == 0) return i;
  return -1;
}

static int64_t st_numel(const ac_st_entry *e) {
  int64_t n = 1;
  for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
  return n;
}

int ac_st_read(ac_st_file *f, int i, ac_tensor *dst) {
  if (i < 0 || i >= f->n) return ac_fail("%s: no tensor number %d", f->path, i);
  const ac_st_entry *e = &f->entries[i];
  ac_dtype nat = ac_st_native(e->dtype);
  int64_t n = st_numel(e);
  if (dst->dtype != nat || ac_numel(dst) != n || !ac_is_contiguous(dst))
    return ac_fail("%s: tensor \"%s\": destination must be a contiguous %s tensor of %lld elements",
                   f->path, e->name, ac_dtype_name(nat), (long long)n);
  size_t bytes = (size_t)(e->end - e->begin);
  uint64_t off = 8 + f->header_len + e->begin;
  int direct = (e->dtype == AC_ST_F32 || e->dtype == AC_ST_I64 || e->dtype == AC_ST_U8 || e->dtype == AC_ST_BOOL);
  if (bytes == 0) return 0;
  void *buf = direct ? ac_data(dst) : malloc(bytes);
  if (!buf) return ac_fail("%s: out of memory reading \"%s\"", f->path, e->name);
  int r = st_read_full(f->fd, buf, bytes, off);
  if (r) {
    int err = errno;
    if (!direct) free(buf);
    return ac_fail("%s: reading tensor \"%s\": %s", f->path, e->name,
                   r == -2 ? "file shrank while reading (truncated)" : strerror(err));
  }
  if (e->dtype == AC_ST_BOOL) {
    uint8_t *u = ac_u8(dst);
    for (int64_t k = 0; k < n; k++) u[k] = u[k] != 0;
  }
  if (direct) return 0;
  const unsigned char *s = buf;
  if (nat == AC_F32) {
    float *o = ac_f32(dst);
    for (int64_t k = 0; k < n; k++) {
      switch (e->dtype) {
        case AC_ST_F64: { double d; memcpy(&d, s + 8 * k, 8); o[k] = (float)d; break; }
        case AC_ST_F16: { uint16_t h; memcpy(&h, s + 2 * k, 2); o[k] = half_to_float(h); break; }
        case AC_ST_BF16: { uint16_t h; memcpy(&h, s + 2 * k, 2); uint32_t b = (uint32_t)h << 16; memcpy(&o[k], &b, 4); break; }
        case AC_ST_F8_E5M2: o[k] = fp8_to_float(s[k], 1); break;
        default: o[k] = fp8_to_float(s[k], 0); break;
      }
    }
  } else {
    int64_t *o = ac_i64(dst);
    int overflow = 0;
    for (int64_t k = 0; k < n; k++) {
      switch (e->dtype) {
        case AC_ST_I8: o[k] = (int8_t)s[k]; break;
        case AC_ST_I16: { int16_t v; memcpy(&v, s + 2 * k, 2); o[k] = v; break; }
        case AC_ST_U16: { uint16_t v; memcpy(&v, s + 2 * k, 2); o[k] = v; break; }
        case AC_ST_I32: { int32_t v; memcpy(&v, s + 4 * k, 4); o[k] = v; break; }
        case AC_ST_U32: { uint32_t v; memcpy(&v, s + 4 * k, 4); o[k] = v; break; }
        default: { uint64_t v; memcpy(&v, s + 8 * k, 8); if (v > (uint64_t)INT64_MAX) overflow = 1; o[k] = (int64_t)v; break; }
      }
    }
    if (overflow) { free(buf); return ac_fail("%s: tensor \"%s\": U64 value does not fit in int64", f->path, e->name); }
  }
  free(buf);
  return 0;
}

/* ======================================================================
 * writer
 * ====================================================================== */

typedef struct { char *b; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *s, const char *p, size_t n) {
  if (s->oom) return;
  if (s->n + n + 1 > s->cap) {
    size_t nc = s->cap ? s->cap : 4096;
    while (s->n + n + 1 > nc) nc *= 2;
    char *nb = realloc(s->b, nc);
    if (!nb) { s->oom = 1; return; }
    s->b = nb; s->cap = nc;
  }
  memcpy(s->b + s->n, p, n);
  s->n += n;
  s->b[s->n] = '\0';
}
static void sb_str(sbuf *s, const char *p) { sb_put(s, p, strlen(p)); }
static void sb_fmt(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *s, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k > 0) sb_put(s, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}
static void sb_json_string(sbuf *s, const char *p) {
  sb_put(s, "\"", 1);
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') sb_str(s, "\\\"");
    else if (c == '\\') sb_str(s, "\\\\");
    else if (c == '\n') sb_str(s, "\\n");
    else if (c == '\r') sb_str(s, "\\r");
    else if (c == '\t') sb_str(s, "\\t");
    else if (c < 0x20) sb_fmt(s, "\\u%04x", c);
    else sb_put(s, (const char *)&c, 1);
  }
  sb_put(s, "\"", 1);
}

static const char *st_name_of(ac_dtype d) {
  return d == AC_F32 ? "F32" : d == AC_I64 ? "I64" : d == AC_U8 ? "U8" : NULL;
}

int ac_st_write(const char *path, int n, const char *const *names,
                const ac_tensor *const *tensors, int nmeta,
                const char *const *keys, const char *const *vals) {
  /* ---- validate everything before touching the file system ---- */
  if (n < 0 || nmeta < 0) return ac_fail("%s: negative count", path);
  for (int i = 0; i < n; i++) {
    const char *nm = names[i];
    const ac_tensor *t = tensors[i];
    if (!nm || !nm[0]) return ac_fail("%s: tensor %d has an empty name", path, i + 1);
    if (!ac_utf8_valid(nm, strlen(nm))) return ac_fail("%s: tensor name %d is not valid UTF-8", path, i + 1);
    if (strcmp(nm, "__metadata__") == 0) return ac_fail("%s: \"__metadata__\" cannot name a tensor", path);
    if (!t || !t->storage) return ac_fail("%s: tensor \"%s\" is empty (released)", path, nm);
    if (!st_name_of(t->dtype)) return ac_fail("%s: tensor \"%s\" has an unsupported dtype", path, nm);
    if (!ac_is_contiguous(t)) return ac_fail("%s: tensor \"%s\" must be contiguous", path, nm);
    for (int j = 0; j < i; j++)
      if (strcmp(names[j], nm) == 0) return ac_fail("%s: duplicate tensor name \"%s\"", path, nm);
  }
  for (int i = 0; i < nmeta; i++) {
    if (!keys[i] || !vals[i]) return ac_fail("%s: metadata entry %d is missing", path, i + 1);
    if (!ac_utf8_valid(keys[i], strlen(keys[i])) || !ac_utf8_valid(vals[i], strlen(vals[i])))
      return ac_fail("%s: metadata \"%.60s\" is not valid UTF-8", path, keys[i]);
  }
  /* ---- header ---- */
  sbuf h = {0};
  sb_str(&h, "{");
  int first = 1;
  if (nmeta > 0) {
    sb_str(&h, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sb_str(&h, ",");
      sb_json_string(&h, keys[i]);
      sb_str(&h, ":");
      sb_json_string(&h, vals[i]);
    }
    sb_str(&h, "}");
    first = 0;
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    const ac_tensor *t = tensors[i];
    uint64_t bytes = (uint64_t)ac_numel(t) * ac_dtype_size(t->dtype);
    if (!first) sb_str(&h, ",");
    first = 0;
    sb_json_string(&h, names[i]);
    sb_fmt(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_name_of(t->dtype));
    for (int d = 0; d < t->ndim; d++) sb_fmt(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    sb_fmt(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes));
    off += bytes;
  }
  sb_str(&h, "}");
  while (!h.oom && h.n % 8 != 0) sb_str(&h, " ");
  if (h.oom) { free(h.b); return ac_fail("%s: out of memory building the header", path); }
  if (h.n > AC_ST_MAX_HEADER) { free(h.b); return ac_fail("%s: header of %zu bytes is too large", path, h.n); }

  /* ---- target: in place for devices / FIFOs, else temp + fsync + rename ---- */
  ac_atomic_file af;
  if (ac_atomic_open(&af, path)) {
    free(h.b);
    if (af.err == EISDIR) return ac_fail("%s: is a directory", path);
    if (af.in_place) return ac_fail("%s: cannot open for writing: %s", path, strerror(af.err));
    return ac_fail("%s: cannot create a temporary file beside it: %s", path, strerror(af.err));
  }
  unsigned char lenb[8];
  uint64_t N = h.n;
  for (int k = 0; k < 8; k++) lenb[k] = (unsigned char)(N >> (8 * k));
  int rc = ac_atomic_write(&af, lenb, 8);
  if (!rc) rc = ac_atomic_write(&af, h.b, h.n);
  for (int i = 0; i < n && !rc; i++) {
    const ac_tensor *t = tensors[i];
    size_t bytes = (size_t)ac_numel(t) * ac_dtype_size(t->dtype);
    if (bytes) rc = ac_atomic_write(&af, ac_data(t), bytes);
  }
  free(h.b);
  if (ac_atomic_commit(&af)) { /* also after a failed write: reports it and removes the temp */
    if (af.in_place) return ac_fail("%s: write failed: %s", path, strerror(af.err));
    return ac_fail("%s: write failed (%s); any existing file is unchanged", path, strerror(af.err));
  }
  return 0;
}
