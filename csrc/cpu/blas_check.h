/*
 * blas_check.h - does OpenBLAS run kernels as new as this CPU?
 *
 * Debian's OpenBLAS picks its kernels at load time from the CPU model it
 * knows; on a newer model it falls back to an older core (often "Prescott",
 * SSE3), several times slower, unless OPENBLAS_CORETYPE names one. The
 * library's hot paths use its own GEMM (cpu/gemm.h) and do not depend on
 * this; LAPACK (linalg) and float64 products still run on OpenBLAS.
 *
 *   char msg[256];
 *   if (ac_blas_advice(ac_blas_corename(), ac_cpu_isa(), ac_cpu_is_amd(), msg, sizeof msg))
 *     fputs(msg, stderr);
 */
#ifndef AC_BLAS_CHECK_H
#define AC_BLAS_CHECK_H
#include <stddef.h>
#include "cpu/cpu.h"

/* The core OpenBLAS runs (openblas_get_corename()), e.g. "SkylakeX". */
const char *ac_blas_corename(void);
/* The instruction level of an OpenBLAS core name: AC_ISA_AVX512 for
 * SkylakeX, Cooperlake, SapphireRapids; AC_ISA_AVX2 for Haswell, Zen,
 * Excavator; AC_ISA_GENERIC for every older one (and unknown names). */
ac_isa ac_blas_core_isa(const char *core);
/* 1 (and a message in msg) when `core` is older than a CPU of level `isa`:
 * the message names the variable to set, OPENBLAS_CORETYPE=SkylakeX for
 * AVX-512, Haswell (Intel) or Zen (AMD) for AVX2. 0 (msg empty) otherwise. */
int ac_blas_advice(const char *core, ac_isa isa, int amd, char *msg, size_t n);

#endif
