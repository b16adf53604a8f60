/*
 * random.c - xoshiro256** generator seeded by splitmix64, normal deviates by
 * Box-Muller, and forked per-stream generators (see random.h).
 */
#include "core/random.h"

#include <math.h>

static ac_rng global_rng = {{0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 0x2545F4914F6CDD1Dull}};

ac_rng *ac_global_rng(void) { return &global_rng; }

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void ac_rng_seed(ac_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void ac_manual_seed(uint64_t seed) { ac_rng_seed(&global_rng, seed); }

void ac_rng_fork(const ac_rng *r, uint64_t id, ac_rng *out) {
  uint64_t x = r->s[0] ^ (r->s[1] * 0x9E3779B97F4A7C15ull) ^ (r->s[2] << 1) ^ (r->s[3] >> 3);
  x ^= splitmix64(&id);
  ac_rng_seed(out, x);
}

uint64_t ac_rng_next(ac_rng *r) { return ac_rng_step(r->s); }

double ac_rng_uniform(ac_rng *r) { return (double)(ac_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double ac_rng_normal(ac_rng *r) {
  double u1 = ac_rng_uniform(r), u2 = ac_rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t ac_rng_below(ac_rng *r, uint64_t n) {
  if (n <= 1) return 0;
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do { x = ac_rng_next(r); } while (x >= lim);
  return x % n;
}
