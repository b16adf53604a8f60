/*
 * blas_check.c - OpenBLAS's core against the CPU's features (see
 * blas_check.h). Pure string logic besides openblas_get_corename(), so the
 * advice can be tested with any core name.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cpu/blas_check.h"

char *openblas_get_corename(void);

const char *ac_blas_corename(void) {
  const char *s = openblas_get_corename();
  return s ? s : "unknown";
}

ac_isa ac_blas_core_isa(const char *core) {
  static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
  static const char *const avx2[] = {"Haswell", "Zen", "Excavator", NULL};
  for (int i = 0; avx512[i]; i++)
    if (!strcasecmp(core, avx512[i])) return AC_ISA_AVX512;
  for (int i = 0; avx2[i]; i++)
    if (!strcasecmp(core, avx2[i])) return AC_ISA_AVX2;
  return AC_ISA_GENERIC;
}

int ac_blas_advice(const char *core, ac_isa isa, int amd, char *msg, size_t n) {
  if (n) msg[0] = '\0';
  if (isa == AC_ISA_GENERIC || ac_blas_core_isa(core) >= isa) return 0;
  const char *want = isa >= AC_ISA_AVX512 ? "SkylakeX" : amd ? "Zen" : "Haswell";
  snprintf(msg, n,
           "OpenBLAS runs its %s kernels on a CPU with %s; set OPENBLAS_CORETYPE=%s "
           "before starting Lua for full speed of linalg and float64 products (the "
           "library's float32 kernels do not depend on it)",
           core, isa >= AC_ISA_AVX512 ? "AVX-512" : "AVX2", want);
  return 1;
}
