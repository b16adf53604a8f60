/*
 * fileio.c - whole-file reads and atomic (temp + fsync + rename) writes.
 */
#include "io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tensor.h"

/* rc (an ac_fail result) with errno set to e, the reason for the caller */
static int with_errno(int e, int rc) {
  errno = e;
  return rc;
}

const char *ac_file_kind(unsigned mode) {
  if (S_ISREG(mode)) return "regular file";
  if (S_ISDIR(mode)) return "folder";
  if (S_ISFIFO(mode)) return "FIFO";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISLNK(mode)) return "symbolic link";
  return "special file";
}

int ac_open_regular(const char *path, struct stat *st_out) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENXIO) return with_errno(EINVAL, ac_fail("%s: is a socket, expected a regular file", path));
    return with_errno(e, ac_fail("cannot open %s: %s", path, strerror(e)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return with_errno(e, ac_fail("cannot open %s: %s", path, strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    if (S_ISDIR(st.st_mode)) return with_errno(EISDIR, ac_fail("%s is a directory, expected a file", path));
    return with_errno(EINVAL, ac_fail("%s: is a %s, expected a regular file", path, ac_file_kind(st.st_mode)));
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    int e = errno;
    close(fd);
    return with_errno(e, ac_fail("cannot open %s: %s", path, strerror(e)));
  }
  if (st_out) *st_out = st;
  return fd;
}

int ac_read_file(const char *path, unsigned char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  struct stat st;
  int fd = ac_open_regular(path, &st);
  if (fd < 0) return -1;
  /* A regular file: its size is known, read exactly that (a file that grows
   * meanwhile is read as it was when opened). */
  size_t cap = (size_t)st.st_size, n = 0;
  unsigned char *b = malloc(cap + 1);
  if (!b) {
    close(fd);
    return with_errno(ENOMEM, ac_fail("out of memory reading %s (%zu bytes)", path, cap));
  }
  while (n < cap) {
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno ? errno : EIO;
      free(b);
      close(fd);
      return with_errno(e, ac_fail("error reading %s: %s", path, strerror(e)));
    }
    if (r == 0) break; /* shrank meanwhile: what is there */
    n += (size_t)r;
  }
  close(fd);
  b[n] = 0;
  *buf = b;
  *len = n;
  return 0;
}

/* Ends f (closes and removes what is open) keeping err and in_place. */
static void atomic_end(ac_atomic_file *f) {
  int err = f->err, in_place = f->in_place;
  if (f->fp) fclose((FILE *)f->fp);
  if (f->tmp_path) unlink(f->tmp_path);
  free(f->final_path);
  free(f->tmp_path);
  memset(f, 0, sizeof *f);
  f->err = err;
  f->in_place = in_place;
}

static int atomic_open_fail(ac_atomic_file *f, int e, const char *path) {
  f->err = e;
  atomic_end(f);
  if (e == EISDIR) return ac_fail("cannot write %s: it is a directory", path);
  return ac_fail("cannot write %s: %s", path, strerror(e));
}

/* Creates a new temp file beside path (never an existing one). */
static int open_temp(ac_atomic_file *f, size_t n, const struct stat *old) {
  static unsigned counter = 0;
  for (int tries = 0; tries < 100; tries++) {
    unsigned id = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    snprintf(f->tmp_path, n + 48, "%s.tmp.%ld.%u", f->final_path, (long)getpid(), id);
    int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd >= 0 && old) (void)fchmod(fd, old->st_mode & 07777); /* not fatal: keep the default mode */
    return fd;
  }
  errno = EEXIST;
  return -1;
}

int ac_atomic_open(ac_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  size_t n = strlen(path);
  struct stat st;
  int exists = stat(path, &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return atomic_open_fail(f, EISDIR, path);
  f->in_place = exists && !S_ISREG(st.st_mode);
  f->final_path = malloc(n + 1);
  if (!f->final_path) return atomic_open_fail(f, ENOMEM, path);
  memcpy(f->final_path, path, n + 1);
  int fd;
  if (f->in_place) {
    /* a device or pipe (e.g. /dev/stdout, /dev/full): write in place, never rename over it */
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  } else {
    f->tmp_path = malloc(n + 48);
    if (!f->tmp_path) return atomic_open_fail(f, ENOMEM, path);
    fd = open_temp(f, n, exists ? &st : NULL);
    if (fd < 0) {
      int e = errno;
      free(f->tmp_path); /* nothing to remove */
      f->tmp_path = NULL;
      return atomic_open_fail(f, e, path);
    }
  }
  if (fd < 0) return atomic_open_fail(f, errno, path);
  FILE *fp = fdopen(fd, "wb");
  if (!fp) {
    int e = errno;
    close(fd);
    return atomic_open_fail(f, e, path);
  }
  f->fp = fp;
  return 0;
}

int ac_atomic_write(ac_atomic_file *f, const void *data, size_t len) {
  if (f->failed) return -1;
  if (len && fwrite(data, 1, len, (FILE *)f->fp) != len) {
    f->failed = f->err = errno ? errno : EIO;
    return ac_fail("cannot write %s: %s", f->final_path, strerror(f->failed));
  }
  return 0;
}

void ac_atomic_abort(ac_atomic_file *f) { atomic_end(f); }

/* Makes a rename into the folder of path durable (best effort). */
static void fsync_folder(const char *path) {
  char *dir = strdup(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  const char *d = ".";
  if (slash == dir) d = "/";
  else if (slash) {
    *slash = '\0';
    d = dir;
  }
  int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  free(dir);
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
    f->err = e;
    atomic_end(f);
    return ac_fail("%s", msg);
  }
  if (f->tmp_path) fsync_folder(f->final_path);
  free(f->tmp_path);
  f->tmp_path = NULL; /* renamed: nothing to remove */
  atomic_end(f);
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
