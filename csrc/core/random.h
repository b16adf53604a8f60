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
/* One xoshiro256** step on a state held in local variables (what
 * ac_rng_next does, inlinable into a kernel's loop: the same numbers). */
static inline uint64_t ac_rng_step(uint64_t s[4]) {
  uint64_t x = s[1] * 5;
  uint64_t result = ((x << 7) | (x >> 57)) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 45) | (s[3] >> 19);
  return result;
}
/* [0, 1) from one step, as ac_rng_uniform */
static inline double ac_rng_step_uniform(uint64_t s[4]) {
  return (double)(ac_rng_step(s) >> 11) * (1.0 / 9007199254740992.0);
}
double ac_rng_uniform(ac_rng *r);           /* [0, 1) */
double ac_rng_normal(ac_rng *r);            /* N(0, 1) */
uint64_t ac_rng_below(ac_rng *r, uint64_t n); /* uniform in [0, n), unbiased */

#endif
