/*
 * fuzz_util.h - helpers shared by the libFuzzer harnesses: an anonymous
 * in-memory file (memfd) holding the fuzz input, for readers whose entry
 * point takes a path.
 */
#ifndef AC_FUZZ_UTIL_H
#define AC_FUZZ_UTIL_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data into a fresh memfd and puts "/proc/self/fd/N" in path.
 * Returns the descriptor (close it when done) or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathn) {
  int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < size) {
    ssize_t w = write(fd, data + off, size - off);
    if (w <= 0) { close(fd); return -1; }
    off += (size_t)w;
  }
  snprintf(path, pathn, "/proc/self/fd/%d", fd);
  return fd;
}

#endif
