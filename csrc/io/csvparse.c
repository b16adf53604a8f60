/*
 * csvparse.c - the CSV / list-file record reader and the fer2013.csv parser
 * of csvparse.h. The whole file is read once into memory and fields are
 * terminated and unquoted in place, so a 300 MB fer2013.csv parses without a
 * string per pixel.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/csvparse.h"
#include "io/fileio.h"
#include "core/tensor.h"

/* ======================================================================== */
/* record reader                                                             */
/* ======================================================================== */

int ac_csv_open(ac_csv *r, const char *path, char delim) {
  memset(r, 0, sizeof *r);
  if (!(delim == ',' || delim == ';' || delim == '\t' || delim == ' '))
    return ac_fail("%s: unsupported delimiter '%c'", path, delim);
  unsigned char *buf;
  size_t n;
  if (ac_read_file(path, &buf, &n)) {
    if (errno == EINVAL) return -1; /* a special file: ac_open_regular named its kind */
    return ac_fail("%s: cannot open (%s)", path, strerror(errno));
  }
  r->buf = (char *)buf; /* NUL-terminated */
  r->path = strdup(path);
  r->cap = 16;
  r->field = malloc(sizeof(char *) * r->cap);
  if (!r->path || !r->field) {
    ac_csv_close(r);
    return ac_fail("%s: out of memory", path);
  }
  r->len = n;
  r->delim = delim;
  r->nextline = 1;
  if (n >= 3 && (uint8_t)r->buf[0] == 0xEF && (uint8_t)r->buf[1] == 0xBB && (uint8_t)r->buf[2] == 0xBF) r->pos = 3;
  return 0;
}

void ac_csv_close(ac_csv *r) {
  free(r->buf);
  free(r->path);
  free(r->field);
  memset(r, 0, sizeof *r);
}

static int push_field(ac_csv *r, char *s) {
  if (r->nfields == r->cap) {
    int nc = r->cap * 2;
    char **nf = realloc(r->field, sizeof(char *) * nc);
    if (!nf) return ac_fail("%s:%lld: out of memory", r->path, (long long)r->line);
    r->field = nf;
    r->cap = nc;
  }
  r->field[r->nfields++] = s;
  return 0;
}

static inline int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

int ac_csv_next(ac_csv *r) {
  char *b = r->buf;
  const size_t len = r->len;
  if (!b) return 0;
  for (;;) { /* skip blank lines */
    if (r->pos >= len) return 0;
    size_t q = r->pos;
    while (q < len && is_blank(b[q])) q++;
    if (q >= len) { r->pos = len; return 0; }
    if (b[q] != '\n') break;
    r->pos = q + 1;
    r->nextline++;
  }
  r->line = r->nextline;
  r->nfields = 0;
  size_t p = r->pos;
  if (r->delim == ' ') {
    for (;;) {
      while (p < len && is_blank(b[p])) p++;
      if (p >= len || b[p] == '\n') break;
      size_t s = p;
      while (p < len && !is_blank(b[p]) && b[p] != '\n') p++;
      char term = p < len ? b[p] : '\n';
      b[p] = 0;
      if (push_field(r, b + s)) return -1;
      if (term == '\n') break;
      p++;
    }
    if (p < len) p++;
    r->nextline++;
    r->pos = p;
    return 1;
  }
  const char d = r->delim;
  for (;;) {
    char term;
    if (b[p] == '"') {
      size_t w = ++p, s = p;
      for (;;) {
        if (p >= len) return ac_fail("%s:%lld: unterminated quoted field", r->path, (long long)r->line);
        if (b[p] == '"') {
          if (p + 1 < len && b[p + 1] == '"') { b[w++] = '"'; p += 2; continue; }
          p++;
          break;
        }
        if (b[p] == '\n') r->nextline++;
        b[w++] = b[p++];
      }
      while (p < len && is_blank(b[p])) p++;
      term = p < len ? b[p] : '\n';
      if (term != d && term != '\n')
        return ac_fail("%s:%lld: unexpected character '%c' after a quoted field", r->path, (long long)r->line, term);
      b[w] = 0;
      if (push_field(r, b + s)) return -1;
    } else {
      size_t s = p;
      while (p < len && b[p] != d && b[p] != '\n') p++;
      term = p < len ? b[p] : '\n';
      size_t e = p;
      if (term == '\n' && e > s && b[e - 1] == '\r') e--;
      b[e] = 0;
      if (push_field(r, b + s)) return -1;
    }
    if (term == '\n') {
      if (p < len) p++;
      r->nextline++;
      break;
    }
    p++;
  }
  r->pos = p;
  return 1;
}

int ac_csv_find(const ac_csv *r, const char *name) {
  size_t nl = strlen(name);
  for (int i = 0; i < r->nfields; i++) {
    const char *f = r->field[i];
    while (*f == ' ') f++;
    size_t fl = strlen(f);
    while (fl > 0 && f[fl - 1] == ' ') fl--;
    if (fl == nl && strncasecmp(f, name, nl) == 0) return i;
  }
  return -1;
}

int ac_parse_int(const char *s, int64_t *v) {
  while (*s == ' ' || *s == '\t') s++;
  if (!*s) return -1;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s) return -1;
  while (*end == ' ' || *end == '\t') end++;
  if (*end) return -1;
  *v = x;
  return 0;
}

int ac_parse_double(const char *s, double *v) {
  while (*s == ' ' || *s == '\t') s++;
  if (!*s) return -1;
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (errno == ERANGE || end == s) return -1;
  while (*end == ' ' || *end == '\t') end++;
  if (*end) return -1;
  *v = x;
  return 0;
}

/* ======================================================================== */
/* fer2013.csv                                                               */
/* ======================================================================== */

void ac_fer_free(ac_fer_rows *r) {
  free(r->pixels);
  free(r->label);
  free(r->usage);
  free(r->row);
  r->pixels = NULL;
  r->label = NULL;
  r->usage = NULL;
  r->row = NULL;
  r->n = 0;
}

/* Parses "v v v ..." (spaces or tabs) into exactly npix bytes; returns the
 * number of values found (stops counting after npix + 1), or -1 with a
 * message in err for a bad token. */
static int64_t parse_pixels(const char *s, uint8_t *dst, int64_t npix, char *err, size_t errn) {
  int64_t k = 0;
  const unsigned char *p = (const unsigned char *)s;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) break;
    if (*p < '0' || *p > '9') {
      snprintf(err, errn, "pixel %lld is not an integer ('%.12s')", (long long)k + 1, (const char *)p);
      return -1;
    }
    /* Leading zeros are allowed ("0007" is 7); only significant digits
     * count toward the range. */
    const unsigned char *tok = p;
    unsigned v = 0;
    int sig = 0;
    while (*p >= '0' && *p <= '9') {
      if (sig > 0 || *p != '0') {
        if (sig < 6) v = v * 10 + (*p - '0');
        sig++;
      }
      p++;
    }
    if (*p && *p != ' ' && *p != '\t') {
      snprintf(err, errn, "pixel %lld is not an integer (bad character '%c')", (long long)k + 1, *p);
      return -1;
    }
    if (v > 255 || sig > 3) {
      snprintf(err, errn, "pixel %lld = %.*s is outside 0..255", (long long)k + 1, (int)(p - tok > 12 ? 12 : p - tok),
               (const char *)tok);
      return -1;
    }
    if (k < npix) dst[k] = (uint8_t)v;
    k++;
    if (k > npix) return k; /* too many: no need to count further */
  }
  return k;
}

static int grow_rows(ac_fer_rows *o, int64_t *cap, int64_t npix) {
  int64_t nc = *cap ? *cap * 2 : 1024;
  uint8_t *px = realloc(o->pixels, (size_t)(nc * npix));
  if (px) o->pixels = px;
  int64_t *lb = realloc(o->label, sizeof(int64_t) * nc);
  if (lb) o->label = lb;
  uint8_t *us = realloc(o->usage, (size_t)nc);
  if (us) o->usage = us;
  int64_t *rw = realloc(o->row, sizeof(int64_t) * nc);
  if (rw) o->row = rw;
  if (!px || !lb || !us || !rw) return ac_fail("fer2013: out of memory for %lld rows", (long long)nc);
  *cap = nc;
  return 0;
}

int ac_fer2013_read(const char *path, int side, const int *labelmap, int nmap, int skip_bad, ac_fer_rows *out) {
  memset(out, 0, sizeof *out);
  if (side <= 0 || side > 4096) return ac_fail("%s: image side must be 1..4096, got %d", path, side);
  const int64_t npix = (int64_t)side * side;
  ac_csv r;
  if (ac_csv_open(&r, path, ',')) return -1;
  int rc = ac_csv_next(&r);
  if (rc <= 0) {
    ac_csv_close(&r);
    return rc < 0 ? -1 : ac_fail("%s: empty file (expected a header 'emotion,pixels,Usage')", path);
  }
  const int ce = ac_csv_find(&r, "emotion"), cp = ac_csv_find(&r, "pixels"), cu = ac_csv_find(&r, "usage");
  const int nhead = r.nfields;
  if (ce < 0 || cp < 0) {
    ac_csv_close(&r);
    return ac_fail("%s:1: header must name the columns 'emotion' and 'pixels' (and optionally 'Usage')", path);
  }
  out->side = side;
  int64_t cap = 0, row = -1;
  char why[200];
  while ((rc = ac_csv_next(&r)) == 1) {
    row++;
    if (out->n == cap && grow_rows(out, &cap, npix)) goto fail;
    why[0] = 0;
    int64_t code = -1, lab = 0, usage = 0;
    if (r.nfields != nhead) {
      snprintf(why, sizeof why, "expected %d fields, got %d", nhead, r.nfields);
    } else if (ac_parse_int(r.field[ce], &code) != 0) {
      snprintf(why, sizeof why, "emotion '%.20s' is not an integer", r.field[ce]);
    } else if (code < 0 || code >= nmap || (lab = labelmap[code]) <= 0) {
      snprintf(why, sizeof why, "unknown emotion label %lld (expected 0..%d)", (long long)code, nmap - 1);
    } else {
      if (cu >= 0) {
        char *u = r.field[cu];
        while (*u == ' ') u++;
        size_t ul = strlen(u);
        while (ul > 0 && u[ul - 1] == ' ') u[--ul] = 0;
        if (!strcasecmp(u, "Training")) usage = 0;
        else if (!strcasecmp(u, "PublicTest")) usage = 1;
        else if (!strcasecmp(u, "PrivateTest")) usage = 2;
        else snprintf(why, sizeof why, "unknown Usage '%.20s' (Training, PublicTest or PrivateTest)", u);
      }
      if (!why[0]) {
        char perr[120];
        int64_t k = parse_pixels(r.field[cp], out->pixels + out->n * npix, npix, perr, sizeof perr);
        if (k < 0) snprintf(why, sizeof why, "%s", perr);
        else if (k != npix)
          snprintf(why, sizeof why, "expected %lld pixels (%dx%d), got %s%lld", (long long)npix, side, side,
                   k > npix ? "more than " : "", (long long)(k > npix ? npix : k));
      }
    }
    if (why[0]) {
      if (!skip_bad) {
        ac_fail("%s:%lld: %s", path, (long long)r.line, why);
        goto fail;
      }
      if (out->skipped++ == 0) snprintf(out->first_bad, sizeof out->first_bad, "%s:%lld: %s", path, (long long)r.line, why);
      continue;
    }
    out->label[out->n] = lab;
    out->usage[out->n] = (uint8_t)usage;
    out->row[out->n] = row;
    out->n++;
  }
  if (rc < 0) goto fail;
  ac_csv_close(&r);
  return 0;
fail:
  ac_csv_close(&r);
  ac_fer_free(out);
  return -1;
}

/* ======================================================================== */
/* chosen columns                                                            */
/* ======================================================================== */

int ac_csv_cols_begin(ac_csv_cols *s, int ncol, int header) {
  memset(s, 0, sizeof *s);
  if (ncol < 1 || ncol > AC_CSV_MAXCOL) return ac_fail("csv: 1..%d columns, got %d", AC_CSV_MAXCOL, ncol);
  s->ncol = ncol;
  s->header = header;
  s->nhead = -1;
  return 0;
}

int ac_csv_cols_header(ac_csv_cols *s, ac_csv *r) {
  if (s->header) {
    int rc = ac_csv_next(r);
    if (rc < 0) return -1;
    if (rc == 0) return ac_fail("%s: empty file (expected a header line)", r->path);
    s->nhead = r->nfields;
  }
  return 0;
}

int ac_csv_cols_set(ac_csv_cols *s, const ac_csv *r, int j, int64_t index1, const char *name, const char *type) {
  if (!name) {
    s->col[j] = (int)index1 - 1;
    if (s->col[j] < 0) return ac_fail("csv: column index must be >= 1");
    s->name[j] = NULL;
  } else {
    s->name[j] = name;
    if (!s->header) return ac_fail("csv: column '%s' named but the file has no header", name);
    s->col[j] = ac_csv_find(r, name);
    if (s->col[j] < 0) {
      char list[1024];
      size_t len = 0;
      list[0] = 0;
      for (int i = 0; i < s->nhead && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", r->field[i]);
      return ac_fail("%s:%d: no column '%s' in the header (%s)", r->path, (int)r->line, name, list);
    }
  }
  s->type[j] = AC_CSV_STRING;
  if (type && !strcmp(type, "number")) s->type[j] = AC_CSV_NUMBER;
  else if (type && !strcmp(type, "integer")) s->type[j] = AC_CSV_INTEGER;
  else if (type && strcmp(type, "string")) return ac_fail("csv: unknown column type '%s'", type);
  if (s->col[j] + 1 > s->need) s->need = s->col[j] + 1;
  return 0;
}

int ac_csv_cols_row(const ac_csv_cols *s, const ac_csv *r, double *num) {
  if (s->header && r->nfields != s->nhead) return ac_fail("expected %d fields, got %d", s->nhead, r->nfields);
  if (r->nfields < s->need) return ac_fail("expected at least %d fields, got %d", s->need, r->nfields);
  for (int j = 0; j < s->ncol; j++) {
    const char *f = r->field[s->col[j]];
    const char *nm = s->name[j] ? s->name[j] : "";
    if (s->type[j] == AC_CSV_NUMBER && ac_parse_double(f, &num[j]))
      return ac_fail("column %d ('%.40s'): '%.40s' is not a number", s->col[j] + 1, nm, f);
    if (s->type[j] == AC_CSV_INTEGER) {
      int64_t v = 0;
      if (ac_parse_int(f, &v)) return ac_fail("column %d ('%.40s'): '%.40s' is not an integer", s->col[j] + 1, nm, f);
      num[j] = (double)v;
    }
  }
  return 0;
}
