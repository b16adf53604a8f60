/*
 * protowire.h - the Protocol Buffers wire format
 * (https://protobuf.dev/programming-guides/encoding/), enough to write and
 * read ONNX files (onnx.h) without generated code.
 *
 * A message is a sequence of fields, each a varint key (field << 3 | wire
 * type) then a value: varint (type 0), 64-bit little-endian (1),
 * length-delimited bytes / nested message / packed repeated (2) or 32-bit
 * little-endian (5). Groups (3, 4) are obsolete and rejected.
 *
 * Writer: one growable buffer. A nested message is opened with pw_begin
 * (which remembers where its length goes) and closed with pw_end, which
 * writes the length as a minimal varint and moves the body up to it, so the
 * output is canonical. Memory errors are sticky: check w.failed (or the
 * return of pw_finish) once at the end.
 *
 *   pw_writer w; pw_init(&w);
 *   pw_varint_field(&w, 1, 8);            // ir_version = 8
 *   size_t g = pw_begin(&w, 7);            // graph { ...
 *   pw_bytes_field(&w, 2, "main", 4);      //   name = "main"
 *   pw_end(&w, g);                         // }
 *   if (pw_finish(&w)) puts(ac_error());   // w.buf, w.len
 *   pw_free(&w);
 *
 * Reader: a bounded cursor; pw_next never reads outside [p, end) and fails
 * (with a message naming the byte offset from `base`) on a truncated
 * varint, a length past the end, field number 0 or an unknown wire type.
 */
#ifndef AC_PROTOWIRE_H
#define AC_PROTOWIRE_H
#include <stddef.h>
#include <stdint.h>

enum { PW_VARINT = 0, PW_I64 = 1, PW_LEN = 2, PW_I32 = 5 };

/* ---- writer ------------------------------------------------------------- */
typedef struct pw_writer {
  uint8_t *buf;
  size_t len, cap;
  int failed; /* an allocation failed: the contents are incomplete */
} pw_writer;

void pw_init(pw_writer *w);
void pw_free(pw_writer *w);
void pw_raw(pw_writer *w, const void *data, size_t n);
void pw_varint(pw_writer *w, uint64_t v);
void pw_key(pw_writer *w, uint32_t field, int wiretype);
void pw_varint_field(pw_writer *w, uint32_t field, uint64_t v); /* int32/int64/enum: negative as 2^64 + v */
void pw_float_field(pw_writer *w, uint32_t field, float v);
void pw_bytes_field(pw_writer *w, uint32_t field, const void *data, size_t n);
void pw_string_field(pw_writer *w, uint32_t field, const char *s); /* NUL-terminated */
/* nested message: returns a mark for pw_end */
size_t pw_begin(pw_writer *w, uint32_t field);
void pw_end(pw_writer *w, size_t mark);
/* 0, or -1 with ac_fail("out of memory ...") when an allocation failed */
int pw_finish(pw_writer *w);

/* ---- reader ------------------------------------------------------------- */
typedef struct pw_reader {
  const uint8_t *p, *end;
  const uint8_t *base; /* start of the file, for offsets in messages */
} pw_reader;

typedef struct pw_field {
  uint32_t num;
  int type;
  uint64_t u;          /* VARINT, I64 and I32 values (I32 in the low 32 bits) */
  const uint8_t *data; /* LEN: the bytes */
  size_t len;
  size_t offset;       /* offset of the key from base */
} pw_field;

void pw_reader_init(pw_reader *r, const uint8_t *base, const uint8_t *p, size_t n);
/* 1: *f holds the next field; 0: end of the message; -1: malformed (ac_fail
 * "... at byte N: <what>", prefixed with `what`) */
int pw_next(pw_reader *r, pw_field *f, const char *what);
/* a reader over a LEN field's bytes */
void pw_sub(const pw_reader *r, const pw_field *f, pw_reader *sub);
/* Decodes the varint at *p (< end) into *v; returns bytes used or 0 when it
 * is truncated or longer than 10 bytes. */
size_t pw_decode_varint(const uint8_t *p, const uint8_t *end, uint64_t *v);
float pw_float_of(uint64_t u); /* an I32 field's bits as float */

#endif
