/*
 * cpu.c - CPU feature detection and the dispatch level (see cpu.h).
 * Detection runs once, on first use; the limit is a plain int written by
 * tests between calls (never while kernels run).
 */
#include <string.h>
#include "cpu/cpu.h"

static int detected = -1; /* best level of this CPU, -1 before detection */
static ac_isa limit = AC_ISA_AVX512;

static int detect(void) {
  if (detected < 0) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
      detected = AC_ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      detected = AC_ISA_AVX2;
    else
      detected = AC_ISA_GENERIC;
  }
  return detected;
}

int ac_cpu_has_avx512f(void) { return detect() >= AC_ISA_AVX512; }
/* every AVX-512 CPU has AVX2 and FMA */
int ac_cpu_has_avx2(void) { return detect() >= AC_ISA_AVX2; }

ac_isa ac_cpu_isa(void) {
  int d = detect();
  return (ac_isa)(d < (int)limit ? d : (int)limit);
}

int ac_cpu_use_avx512(void) { return ac_cpu_isa() >= AC_ISA_AVX512; }

void ac_cpu_limit(ac_isa max) {
  limit = max < AC_ISA_GENERIC ? AC_ISA_GENERIC : max > AC_ISA_AVX512 ? AC_ISA_AVX512 : max;
}

const char *ac_isa_name(ac_isa isa) {
  return isa >= AC_ISA_AVX512 ? "avx512" : isa == AC_ISA_AVX2 ? "avx2" : "generic";
}

int ac_isa_parse(const char *s) {
  if (!strcmp(s, "generic")) return AC_ISA_GENERIC;
  if (!strcmp(s, "avx2")) return AC_ISA_AVX2;
  if (!strcmp(s, "avx512")) return AC_ISA_AVX512;
  return -1;
}
