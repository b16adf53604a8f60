/*
 * fileio.c - whole-file reads and atomic (temp + fsync + rename) writes.
 */
#include "fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor.h"

int ac_read_file(const char *path, unsigned char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  struct stat st;
  if (stat(path, &st) != 0) return ac_fail("cannot open %s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return ac_fail("%s is a directory, expected a file", path);
  FILE *f = fopen(path, "rb");
  if (!f) return ac_fail("cannot open %s: %s", path, strerror(errno));
  size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : 1 << 16, n = 0;
  unsigned char *b = malloc(cap + 1);
  if (!b) {
    fclose(f);
    return ac_fail("out of memory reading %s (%zu bytes)", path, cap);
  }
  for (;;) {
    size_t r = fread(b + n, 1, cap - n, f);
    n += r;
    if (n < cap) {
      if (ferror(f)) {
        free(b);
        fclose(f);
        return ac_fail("error reading %s: %s", path, strerror(errno));
      }
      break;
    }
    /* grow (file larger than stat said, or not a regular file) */
    int c = fgetc(f);
    if (c == EOF) break;
    size_t ncap = cap * 2 + 1;
    unsigned char *nb = realloc(b, ncap + 1);
    if (!nb) {
      free(b);
      fclose(f);
      return ac_fail("out of memory reading %s", path);
    }
    b = nb;
    cap = ncap;
    b[n++] = (unsigned char)c;
  }
  fclose(f);
  b[n] = 0;
  *buf = b;
  *len = n;
  return 0;
}

int ac_atomic_open(ac_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  size_t n = strlen(path);
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    /* a device or pipe (e.g. /dev/stdout, /dev/full): write in place, never rename over it */
    if (S_ISDIR(st.st_mode)) return ac_fail("cannot write %s: it is a directory", path);
    f->final_path = malloc(n + 1);
    if (!f->final_path) return ac_fail("out of memory");
    memcpy(f->final_path, path, n + 1);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
      int e = errno;
      free(f->final_path);
      f->final_path = NULL;
      return ac_fail("cannot write %s: %s", path, strerror(e));
    }
    f->fp = fp;
    return 0;
  }
  f->final_path = malloc(n + 1);
  f->tmp_path = malloc(n + 32);
  if (!f->final_path || !f->tmp_path) {
    free(f->final_path);
    free(f->tmp_path);
    return ac_fail("out of memory");
  }
  memcpy(f->final_path, path, n + 1);
  snprintf(f->tmp_path, n + 32, "%s.tmp.%ld", path, (long)getpid());
  FILE *fp = fopen(f->tmp_path, "wb");
  if (!fp) {
    int e = errno;
    free(f->final_path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
    return ac_fail("cannot write %s: %s", path, strerror(e));
  }
  f->fp = fp;
  return 0;
}

int ac_atomic_write(ac_atomic_file *f, const void *data, size_t len) {
  if (f->failed) return -1;
  if (len && fwrite(data, 1, len, (FILE *)f->fp) != len) {
    f->failed = errno ? errno : EIO;
    return ac_fail("cannot write %s: %s", f->final_path, strerror(f->failed));
  }
  return 0;
}

void ac_atomic_abort(ac_atomic_file *f) {
  if (f->fp) fclose((FILE *)f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  free(f->final_path);
  free(f->tmp_path);
  memset(f, 0, sizeof *f);
}

int ac_atomic_commit(ac_atomic_file *f) {
  FILE *fp = f->fp;
  int e = 0;
  if (f->failed) e = f->failed;
  else if (fflush(fp) != 0) e = errno;
  else if (f->tmp_path && fsync(fileno(fp)) != 0 && errno != EINVAL && errno != EROFS) e = errno;
  if (fclose(fp) != 0 && !e) e = errno;
  f->fp = NULL;
  if (!e && f->tmp_path && rename(f->tmp_path, f->final_path) != 0) e = errno;
  if (e) {
    char msg[600];
    snprintf(msg, sizeof msg, "cannot write %s: %s", f->final_path, strerror(e));
    ac_atomic_abort(f);
    return ac_fail("%s", msg);
  }
  free(f->final_path);
  free(f->tmp_path);
  memset(f, 0, sizeof *f);
  return 0;
}

int ac_write_file_atomic(const char *path, const void *data, size_t len) {
  ac_atomic_file f;
  if (ac_atomic_open(&f, path)) return -1;
  if (ac_atomic_write(&f, data, len)) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", ac_error());
    ac_atomic_abort(&f);
    return ac_fail("%s", msg);
  }
  return ac_atomic_commit(&f);
}
