/*
 * random.h - the library's seeded generator (xoshiro256**, seeded through
 * splitmix64). ac_manual_seed reseeds the global generator; every random
 * source of the library (initialisation, shuffling, dropout, augmentation,
 * synthetic data) draws from it or from generators forked from it, so one
 * seed fixes a whole run. Forked streams make per-sample randomness
 * independent of the thread that computes it.
 */
#ifndef AC_RANDOM_H
#define AC_RANDOM_H
#include <stdint.h>

typedef struct ac_rng { uint64_t s[4]; } ac_rng;

ac_rng *ac_global_rng(void);
void ac_manual_seed(uint64_t seed);
void ac_rng_seed(ac_rng *r, uint64_t seed);
/* A generator for stream `id` derived from r's current state (r is not advanced). */
void ac_rng_fork(const ac_rng *r, uint64_t id, ac_rng *out);
uint64_t ac_rng_next(ac_rng *r);
double ac_rng_uniform(ac_rng *r);           /* [0, 1) */
double ac_rng_normal(ac_rng *r);            /* N(0, 1) */
uint64_t ac_rng_below(ac_rng *r, uint64_t n); /* uniform in [0, n), unbiased */

#endif
