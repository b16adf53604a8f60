/*
 * fuzz_npy.c - libFuzzer harness for the .npy parser (ac_npy_parse in
 * csrc/npy.h): any byte string must either parse into a tensor whose
 * elements can all be read, or fail with a message; never crash.
 */
#include <stdint.h>
#include <string.h>

#include "io/npy.h"
#include "core/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ac_tensor t;
  memset(&t, 0, sizeof t);
  if (ac_npy_parse(data, size, "fuzz.npy", &t) != 0) {
    const char *msg = ac_error();
    if (!msg || !*msg) __builtin_trap(); /* a failure must say why */
    return 0;
  }
  /* Touch every element so a tensor claiming more data than it owns shows up. */
  int64_t n = ac_numel(&t);
  size_t es = ac_dtype_size(t.dtype);
  volatile uint8_t sink = 0;
  const uint8_t *p = ac_data(&t);
  if (n > 0 && ac_is_contiguous(&t))
    for (int64_t i = 0; i < n * (int64_t)es; i++) sink ^= p[i];
  (void)sink;
  ac_tensor_release(&t);
  return 0;
}
