/*
 * cpu.c - CPU feature detection and the dispatch level (see cpu.h).
 * Detection runs once, on first use; the limit is a plain int written by
 * tests between calls (never while kernels run).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
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

int ac_cpu_is_amd(void) {
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") ? 1 : 0;
}

/* Size of the cache of `level` (1: data, 2: unified) of cpu0 from sysfs, or 0. */
static long sysfs_cache(int level) {
  char path[96], type[32];
  for (int i = 0; i < 8; i++) {
    int lv = 0;
    long kb = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE *f = fopen(path, "r");
    if (!f) break;
    int ok = fscanf(f, "%d", &lv) == 1;
    fclose(f);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    f = fopen(path, "r");
    if (!f) continue;
    ok = ok && fscanf(f, "%31s", type) == 1;
    fclose(f);
    if (!ok || lv != level || !strcmp(type, "Instruction")) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    f = fopen(path, "r");
    if (!f) continue;
    ok = fscanf(f, "%ldK", &kb) == 1;
    fclose(f);
    if (ok && kb > 0) return kb * 1024;
  }
  return 0;
}

static long cache_bytes(int level, long fallback) {
#ifdef _SC_LEVEL1_DCACHE_SIZE
  long v = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
  if (v > 0) return v;
#endif
  long s = sysfs_cache(level);
  return s > 0 ? s : fallback;
}

long ac_cpu_l1d_bytes(void) {
  static long v = 0;
  if (!v) v = cache_bytes(1, 32768);
  return v;
}

long ac_cpu_l2_bytes(void) {
  static long v = 0;
  if (!v) v = cache_bytes(2, 1048576);
  return v;
}

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
