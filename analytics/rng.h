/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rng: a small deterministic PRNG for the analytics models (tree building,
 * weight initialisation, shuffling). xoshiro256** (Blackman and Vigna,
 * https://prng.di.unimi.it/xoshiro256starstar.c) seeded through splitmix64,
 * so any 64-bit seed, 0 included, gives a well-mixed state. Not for
 * cryptography. One state per user; not thread safe.
 */
#ifndef NOVAMON_ANALYTICS_RNG_H
#define NOVAMON_ANALYTICS_RNG_H

#include <math.h>
#include <stdint.h>

struct rng {
	uint64_t s[4];
};

static inline uint64_t rng_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = rng_splitmix64(&seed);
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return result;
}

/* Uniform double in [0, 1), 53 random bits. */
static inline double rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is
 * below 2^-32 for the n used here, which does not matter for models). */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal deviate (Box-Muller, one of the pair is discarded). */
static inline double rng_normal(struct rng *r)
{
	double u = 1.0 - rng_uniform(r); /* (0, 1]: log() stays finite */
	double v = rng_uniform(r);

	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif /* NOVAMON_ANALYTICS_RNG_H */
