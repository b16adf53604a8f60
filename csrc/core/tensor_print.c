/*
 * tensor_print.c - the text form of a tensor (see tensor_print.h). The text
 * is written with snprintf semantics: every piece is counted, and copied
 * while it fits, so a caller can ask for the length first and then give a
 * buffer of exactly that size.
 */
#include "core/tensor_print.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Shown around the "..." of a summarised dimension. */
#define EDGE 3
#define SUMMARY_NUMEL 1000

typedef struct {
  char *buf;
  size_t cap, len; /* len counts every byte, also those that did not fit */
  const ac_tensor *t;
  const char *fmt;
  double scale;
  int intmode;
} printer;

static void put(printer *p, const char *s, size_t n) {
  if (p->len < p->cap) {
    size_t room = p->cap - p->len;
    memcpy(p->buf + p->len, s, n < room ? n : room);
  }
  p->len += n;
}

static void puts_(printer *p, const char *s) { put(p, s, strlen(s)); }
static void putc_(printer *p, char c) { put(p, &c, 1); }

static void print_value(printer *p, int64_t off) {
  char s[64];
  double v;
  const void *d = ac_data(p->t);
  switch (p->t->dtype) {
  case AC_F32: v = ((const float *)d)[off]; break;
  case AC_I64: v = (double)((const int64_t *)d)[off]; break;
  default: v = ((const uint8_t *)d)[off]; break;
  }
  if (p->intmode) snprintf(s, sizeof s, p->fmt, v);
  else snprintf(s, sizeof s, p->fmt, v / p->scale);
  puts_(p, s);
}

static void print_row(printer *p, int64_t off, int dim, int summarize) {
  const ac_tensor *t = p->t;
  int64_t n = t->shape[dim];
  for (int64_t j = 0; j < n; j++) {
    if (summarize && n > 2 * EDGE && j == EDGE) {
      puts_(p, " ...");
      j = n - EDGE;
    }
    putc_(p, ' ');
    print_value(p, off + j * t->stride[dim]);
  }
  putc_(p, '\n');
}

static void print_matrix(printer *p, int64_t off, int summarize) {
  const ac_tensor *t = p->t;
  int d0 = t->ndim - 2;
  int64_t n = t->shape[d0];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && n > 2 * EDGE && i == EDGE) {
      puts_(p, " ...\n");
      i = n - EDGE;
    }
    print_row(p, off + i * t->stride[d0], d0 + 1, summarize);
  }
}

static void print_slices(printer *p, int dim, int64_t off, int64_t *idx, int summarize) {
  const ac_tensor *t = p->t;
  if (dim == t->ndim - 2) {
    char s[32];
    putc_(p, '(');
    for (int k = 0; k < dim; k++) {
      snprintf(s, sizeof s, "%lld,", (long long)idx[k] + 1);
      puts_(p, s);
    }
    puts_(p, ".,.) =\n");
    print_matrix(p, off, summarize);
    putc_(p, '\n');
    return;
  }
  int64_t n = t->shape[dim];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && n > 2 * 2 && i == 2) {
      puts_(p, "...\n\n");
      i = n - 2;
    }
    idx[dim] = i;
    print_slices(p, dim + 1, off + i * t->stride[dim], idx, summarize);
  }
}

/* The format of every number, from the range of the (shown) values: integers
 * padded to the widest, %11.4e for a wide range or non-finite values, else
 * %8.4f, with a common "1e+XX *" factor line when the values are large or
 * small. */
static void choose_format(printer *p, char *fmt, size_t fmtsize, int summarize) {
  const ac_tensor *t = p->t;
  int64_t n = ac_numel(t);
  double amax = 0, amin = INFINITY;
  int allint = 1, nonfinite = 0;
  int64_t step = summarize ? n / 997 + 1 : 1;
  for (int64_t i = 0; i < n; i += step) {
    double v = ac_get_flat(t, i);
    if (!isfinite(v)) {
      nonfinite = 1;
      continue;
    }
    double a = fabs(v);
    if (a > amax) amax = a;
    if (a != 0 && a < amin) amin = a;
    if (v != floor(v)) allint = 0;
  }
  if (t->dtype != AC_F32 || (allint && amax < 1e9)) {
    int w = amax < 1 ? 1 : (int)floor(log10(amax)) + 1;
    snprintf(fmt, fmtsize, "%%%d.0f", w + 1);
    p->intmode = 1;
  } else if (amax >= 1e5 || (amin < 1e-4 && amax / amin > 1e5) || nonfinite) {
    snprintf(fmt, fmtsize, "%%11.4e");
    p->intmode = 1;
  } else {
    int e = amax > 0 ? (int)floor(log10(amax)) : 0;
    if (e >= 2 || e < -3) {
      p->scale = pow(10, e);
      char s[48];
      snprintf(s, sizeof s, "1e%+03d *\n", e);
      puts_(p, s);
    }
    snprintf(fmt, fmtsize, "%%8.4f");
  }
  p->fmt = fmt;
}

size_t ac_tensor_format(const ac_tensor *t, char *buf, size_t cap) {
  printer p = {buf, cap ? cap - 1 : 0, 0, t, "%g", 1.0, 0};
  if (!t->storage) {
    puts_(&p, "[adcorre.Tensor (closed)]");
  } else {
    int64_t n = ac_numel(t);
    int summarize = n > SUMMARY_NUMEL;
    char fmt[32];
    choose_format(&p, fmt, sizeof fmt, summarize);
    if (n == 0) {
      puts_(&p, "[empty]\n");
    } else if (t->ndim == 0) {
      print_value(&p, 0);
      putc_(&p, '\n');
    } else if (t->ndim == 1) {
      /* a column, as Torch prints vectors */
      int64_t m = t->shape[0];
      for (int64_t i = 0; i < m; i++) {
        if (summarize && m > 2 * EDGE && i == EDGE) {
          puts_(&p, " ...\n");
          i = m - EDGE;
        }
        putc_(&p, ' ');
        print_value(&p, i * t->stride[0]);
        putc_(&p, '\n');
      }
    } else if (t->ndim == 2) {
      print_matrix(&p, 0, summarize);
    } else {
      int64_t idx[AC_MAXDIM] = {0};
      print_slices(&p, 0, 0, idx, summarize);
    }
    char tail[256];
    char shp[AC_MAXDIM * 21 + 8] = ""; /* room for AC_MAXDIM 20-digit sizes */
    size_t len = 0;
    for (int i = 0; i < t->ndim && len < sizeof shp; i++)
      len += (size_t)snprintf(shp + len, sizeof shp - len, i ? "x%lld" : "%lld", (long long)t->shape[i]);
    if (t->ndim == 0) snprintf(shp, sizeof shp, "scalar");
    snprintf(tail, sizeof tail, "[adcorre.Tensor %s of size %s]", ac_dtype_name(t->dtype), shp);
    puts_(&p, tail);
  }
  if (cap) buf[p.len < p.cap ? p.len : p.cap] = '\0';
  return p.len;
}
