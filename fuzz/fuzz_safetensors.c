/*
 * fuzz_safetensors.c - libFuzzer harness for the safetensors reader
 * (csrc/safetensors.h): the input is served as a file; every entry the
 * reader accepts is then read and converted to its native dtype.
 */
#include "fuzz_util.h"

#include "io/safetensors.h"
#include "core/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = fuzz_memfile(data, size, path, sizeof path);
  if (fd < 0) return 0;
  ac_st_file f;
  if (ac_st_open(&f, path) == 0) {
    for (int i = 0; i < f.n; i++) {
      const ac_st_entry *e = &f.entries[i];
      if (ac_st_find(&f, e->name) < 0) __builtin_trap(); /* every accepted name is findable */
      ac_tensor t;
      if (ac_tensor_new(&t, ac_st_native(e->dtype), e->ndim, e->shape) != 0) continue;
      (void)ac_st_read(&f, i, &t);
      ac_tensor_release(&t);
    }
    for (int i = 0; i < f.nmeta; i++)
      if (!f.meta_key[i] || !f.meta_val[i]) __builtin_trap();
    ac_st_close(&f);
  } else if (!*ac_error()) {
    __builtin_trap();
  }
  close(fd);
  return 0;
}
