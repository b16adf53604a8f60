/*
 * cpu.h - what the processor can run, detected once (cpuid through the
 * compiler's __builtin_cpu_supports), and the one switch every dispatcher
 * reads: GEMM, convolution, pooling, batch norm and the loss all ask
 * ac_cpu_isa() which code path to take.
 *
 *   ac_cpu_isa() >= AC_ISA_AVX512   run the AVX-512 kernels
 *   ac_cpu_isa() >= AC_ISA_AVX2     run the AVX2 + FMA kernels (where one exists)
 *   otherwise                       the portable loops
 *
 * ac_cpu_limit() caps the level (tests force each path and compare them);
 * it never raises it above what the CPU has. The level is read at every
 * dispatch, so a limit applies to the next call; configurations set up
 * before it (a convolution's workspace size) stay valid because every
 * workspace is sized for the largest need of all paths.
 */
#ifndef AC_CPU_H
#define AC_CPU_H

typedef enum { AC_ISA_GENERIC = 0, AC_ISA_AVX2 = 1, AC_ISA_AVX512 = 2 } ac_isa;

/* What the CPU has (independent of the limit). AVX2 counts only with FMA. */
int ac_cpu_has_avx2(void);
int ac_cpu_has_avx512f(void);
/* 1 on an AMD processor, 0 otherwise (for advice naming a core type). */
int ac_cpu_is_amd(void);
/* Bytes of the level-1 data cache and of the level-2 cache of one core,
 * read once from the system (sysconf, else sysfs); 32 KiB and 1 MiB when
 * the system does not say. Blocking parameters are derived from them. */
long ac_cpu_l1d_bytes(void);
long ac_cpu_l2_bytes(void);
/* The level the dispatchers use: the best the CPU has, at most the limit. */
ac_isa ac_cpu_isa(void);
/* 1 when the AVX-512 kernels run (ac_cpu_isa() >= AC_ISA_AVX512). */
int ac_cpu_use_avx512(void);
/* Caps the level (AC_ISA_AVX512 restores the automatic choice). */
void ac_cpu_limit(ac_isa max);
/* "generic", "avx2" or "avx512". */
const char *ac_isa_name(ac_isa isa);
/* The level named by s ("generic", "avx2", "avx512"), or -1. */
int ac_isa_parse(const char *s);

#endif
