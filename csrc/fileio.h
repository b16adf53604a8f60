/*
 * fileio.h - whole-file reads with size checks, and crash-safe writes: data
 * goes to "<path>.tmp.<pid>", is flushed and fsync'ed, then renamed over
 * path, so an interrupted or failed write never leaves a broken file and the
 * previous file survives any failure.
 */
#ifndef AC_FILEIO_H
#define AC_FILEIO_H
#include <stddef.h>

/* Reads a whole regular file into a malloc'ed buffer (*buf, *len). */
int ac_read_file(const char *path, unsigned char **buf, size_t *len);
/* Writes len bytes atomically (temp + fsync + rename). */
int ac_write_file_atomic(const char *path, const void *data, size_t len);

/* Streaming form for large files: open a temp, write pieces, then commit or abort. */
typedef struct ac_atomic_file {
  void *fp;
  char *final_path;
  char *tmp_path;
  int failed;
} ac_atomic_file;
int ac_atomic_open(ac_atomic_file *f, const char *path);
int ac_atomic_write(ac_atomic_file *f, const void *data, size_t len);
int ac_atomic_commit(ac_atomic_file *f); /* fsync + rename; on failure removes the temp */
void ac_atomic_abort(ac_atomic_file *f);

#endif
