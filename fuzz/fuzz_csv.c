/*
 * fuzz_csv.c - libFuzzer harness for the text readers of csrc/csvparse.h:
 * the record reader with each delimiter (fields, header lookup, integer and
 * number parsing) and the fer2013.csv parser. The first input byte picks
 * the mode; the rest is the file.
 */
#include "fuzz_util.h"

#include "io/csvparse.h"
#include "core/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_records(const char *path, char delim) {
  ac_csv r;
  if (ac_csv_open(&r, path, delim)) return;
  int rc;
  int64_t lastline = 0;
  while ((rc = ac_csv_next(&r)) == 1) {
    if (r.line < lastline || r.nfields < 1) __builtin_trap();
    lastline = r.line;
    for (int i = 0; i < r.nfields; i++) {
      int64_t iv;
      double dv;
      size_t l = strlen(r.field[i]); /* each field is NUL-terminated inside the buffer */
      if (r.field[i] < r.buf || r.field[i] + l > r.buf + r.len) __builtin_trap();
      (void)ac_parse_int(r.field[i], &iv);
      (void)ac_parse_double(r.field[i], &dv);
    }
    (void)ac_csv_find(&r, "emotion");
    (void)ac_csv_find(&r, "");
  }
  if (rc < 0 && !*ac_error()) __builtin_trap();
  ac_csv_close(&r);
}

static void read_fer(const char *path, int side, int skip_bad) {
  static const int fer_map[7] = {7, 6, 5, 2, 3, 4, 1};
  ac_fer_rows rows;
  if (ac_fer2013_read(path, side, fer_map, 7, skip_bad, &rows) == 0) {
    int64_t np = (int64_t)side * side;
    volatile unsigned sink = 0;
    for (int64_t i = 0; i < rows.n; i++) {
      if (rows.label[i] < 1 || rows.label[i] > 7 || rows.usage[i] > 2) __builtin_trap();
      sink += rows.pixels[i * np + np - 1];
    }
    (void)sink;
    ac_fer_free(&rows);
  } else if (!*ac_error()) {
    __builtin_trap();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = data[0];
  char path[64];
  int fd = fuzz_memfile(data + 1, size - 1, path, sizeof path);
  if (fd < 0) return 0;
  switch (mode & 7) {
  case 0: read_records(path, ','); break;
  case 1: read_records(path, ';'); break;
  case 2: read_records(path, '\t'); break;
  case 3: read_records(path, ' '); break;
  default: /* fer2013.csv with small image sides so short inputs can hold whole rows */
    read_fer(path, 1 + ((mode >> 3) & 3), (mode >> 5) & 1);
    break;
  }
  close(fd);
  return 0;
}
