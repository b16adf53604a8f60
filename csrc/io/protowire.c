/*
 * protowire.c - Protocol Buffers wire-format writer and bounded reader
 * (see protowire.h).
 */
#include "io/protowire.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

/* ======================================================================== */
/* writer                                                                   */
/* ======================================================================== */

void pw_init(pw_writer *w) { memset(w, 0, sizeof *w); }

void pw_free(pw_writer *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
}

static int pw_reserve(pw_writer *w, size_t n) {
  if (w->failed) return -1;
  if (n <= w->cap - w->len) return 0;
  size_t need = w->len + n;
  if (need < w->len) { w->failed = 1; return -1; }
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) { cap = need; break; }
    cap *= 2;
  }
  uint8_t *nb = realloc(w->buf, cap);
  if (!nb) { w->failed = 1; return -1; }
  w->buf = nb;
  w->cap = cap;
  return 0;
}

void pw_raw(pw_writer *w, const void *data, size_t n) {
  if (n == 0 || pw_reserve(w, n)) return;
  memcpy(w->buf + w->len, data, n);
  w->len += n;
}

static size_t varint_encode(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

void pw_varint(pw_writer *w, uint64_t v) {
  uint8_t tmp[10];
  pw_raw(w, tmp, varint_encode(tmp, v));
}

void pw_key(pw_writer *w, uint32_t field, int wiretype) {
  pw_varint(w, ((uint64_t)field << 3) | (uint64_t)wiretype);
}

void pw_varint_field(pw_writer *w, uint32_t field, uint64_t v) {
  pw_key(w, field, PW_VARINT);
  pw_varint(w, v);
}

static void put_le32(uint8_t *p, uint32_t u) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

void pw_float_field(pw_writer *w, uint32_t field, float v) {
  uint32_t u;
  uint8_t b[4];
  memcpy(&u, &v, 4);
  put_le32(b, u);
  pw_key(w, field, PW_I32);
  pw_raw(w, b, 4);
}

void pw_bytes_field(pw_writer *w, uint32_t field, const void *data, size_t n) {
  pw_key(w, field, PW_LEN);
  pw_varint(w, n);
  pw_raw(w, data, n);
}

void pw_string_field(pw_writer *w, uint32_t field, const char *s) {
  pw_bytes_field(w, field, s, strlen(s));
}

/* The body starts right after the key; its length is inserted at pw_end. */
size_t pw_begin(pw_writer *w, uint32_t field) {
  pw_key(w, field, PW_LEN);
  return w->len;
}

void pw_end(pw_writer *w, size_t mark) {
  if (w->failed || mark > w->len) return;
  uint8_t tmp[10];
  size_t body = w->len - mark;
  size_t n = varint_encode(tmp, body);
  if (pw_reserve(w, n)) return;
  memmove(w->buf + mark + n, w->buf + mark, body);
  memcpy(w->buf + mark, tmp, n);
  w->len += n;
}

int pw_finish(pw_writer *w) {
  if (w->failed) return ac_fail("out of memory while encoding (%zu bytes so far)", w->len);
  return 0;
}

/* ======================================================================== */
/* reader                                                                   */
/* ======================================================================== */

void pw_reader_init(pw_reader *r, const uint8_t *base, const uint8_t *p, size_t n) {
  r->base = base;
  r->p = p;
  r->end = p ? p + n : p;
}

size_t pw_decode_varint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < 10 && p + i < end; i++) {
    uint64_t b = p[i];
    x |= (b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = x;
      return i + 1;
    }
  }
  return 0;
}

float pw_float_of(uint64_t u) {
  uint32_t b = (uint32_t)u;
  float f;
  memcpy(&f, &b, 4);
  return f;
}

int pw_next(pw_reader *r, pw_field *f, const char *what) {
  if (r->p >= r->end) return 0;
  size_t off = (size_t)(r->p - r->base);
  uint64_t key;
  size_t n = pw_decode_varint(r->p, r->end, &key);
  if (!n) return ac_fail("%s: truncated field key at byte %zu", what, off);
  r->p += n;
  memset(f, 0, sizeof *f);
  f->offset = off;
  f->type = (int)(key & 7);
  if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
    return ac_fail("%s: invalid field number %llu at byte %zu", what, (unsigned long long)(key >> 3), off);
  f->num = (uint32_t)(key >> 3);
  size_t left = (size_t)(r->end - r->p);
  switch (f->type) {
  case PW_VARINT:
    n = pw_decode_varint(r->p, r->end, &f->u);
    if (!n) return ac_fail("%s: truncated varint (field %u) at byte %zu", what, f->num, off);
    r->p += n;
    return 1;
  case PW_I64:
  case PW_I32: {
    size_t w = f->type == PW_I64 ? 8 : 4;
    if (left < w) return ac_fail("%s: truncated %zu-byte value (field %u) at byte %zu", what, w, f->num, off);
    uint64_t u = 0;
    for (size_t i = 0; i < w; i++) u |= (uint64_t)r->p[i] << (8 * i);
    f->u = u;
    r->p += w;
    return 1;
  }
  case PW_LEN: {
    uint64_t len;
    n = pw_decode_varint(r->p, r->end, &len);
    if (!n) return ac_fail("%s: truncated length (field %u) at byte %zu", what, f->num, off);
    r->p += n;
    left -= n;
    if (len > left)
      return ac_fail("%s: field %u at byte %zu claims %llu bytes, only %zu remain (truncated file?)", what,
                     f->num, off, (unsigned long long)len, left);
    f->data = r->p;
    f->len = (size_t)len;
    r->p += len;
    return 1;
  }
  default:
    return ac_fail("%s: unsupported wire type %d (field %u) at byte %zu", what, f->type, f->num, off);
  }
}

void pw_sub(const pw_reader *r, const pw_field *f, pw_reader *sub) {
  pw_reader_init(sub, r->base, f->data, f->len);
}
