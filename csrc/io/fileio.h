/*
 * fileio.h - whole-file reads with size checks, and crash-safe writes: data
 * goes to a new "<path>.tmp.<pid>.<n>", is flushed and fsync'ed, then renamed over
 * path, so an interrupted or failed write never leaves a broken file and the
 * previous file survives any failure.
 */
#ifndef AC_FILEIO_H
#define AC_FILEIO_H
#include <stddef.h>
#include <sys/stat.h>

/* Opens path for reading only if it is a regular file: open() with
 * O_NONBLOCK (a FIFO with no writer would block a plain open forever), then
 * fstat() on the descriptor (no race with a rename in between). A FIFO, a
 * device (/dev/zero would read forever), a socket or a folder is refused with
 * ac_fail("<path>: is a <kind>, expected a regular file"); a missing or
 * unreadable file with ac_fail("cannot open <path>: <reason>"). On success
 * the descriptor is blocking again, *st holds its fstat (may be NULL).
 * Every reader of outside files goes through this. */
int ac_open_regular(const char *path, struct stat *st);
/* The kind of a file mode in words: "regular file", "folder", "FIFO",
 * "character device", "block device", "socket", "symbolic link". */
const char *ac_file_kind(unsigned mode);

/* Reads a whole file into a malloc'ed buffer (*buf, *len; a NUL follows the
 * data). Only regular files (ac_open_regular). On failure errno tells why
 * (ENOENT, EACCES, EISDIR, EINVAL for other special files, ENOMEM, EIO, ...). */
int ac_read_file(const char *path, unsigned char **buf, size_t *len);
/* Writes len bytes atomically (temp + fsync + rename). */
int ac_write_file_atomic(const char *path, const void *data, size_t len);

/* Streaming form for large files: open a temp, write pieces, then commit or abort.
 * The temp is "<path>.tmp.<pid>.<n>", created exclusively (never another
 * writer's), with the mode of the file it replaces (else 0666 less the umask).
 * Devices, FIFOs and other non-regular files (/dev/stdout, /dev/full) are
 * written in place, never renamed over. Every function reports failure with
 * ac_fail("cannot write <path>: <reason>"); `err` (the errno) and `in_place`
 * stay readable after a failed open, write, commit or abort so that a caller
 * can word its own message. */
typedef struct ac_atomic_file {
  void *fp;
  char *final_path;
  char *tmp_path; /* NULL when writing in place */
  int failed;     /* errno of the first failed write (0: none) */
  int err;        /* errno of the failure, kept after abort/commit */
  int in_place;   /* the target is not a regular file: written in place */
} ac_atomic_file;
int ac_atomic_open(ac_atomic_file *f, const char *path);
int ac_atomic_write(ac_atomic_file *f, const void *data, size_t len);
/* flush + fsync + rename + fsync of the folder; on failure removes the temp */
int ac_atomic_commit(ac_atomic_file *f);
void ac_atomic_abort(ac_atomic_file *f);

#endif
