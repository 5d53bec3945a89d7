/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iforest.h"
#include "rng.h"

TestSuite(iforest);

#define IFOREST_TEST_N 3000

/* Scores of n samples of N(100, 5^2) drawn with noise_seed. */
static void iforest_test_noise(struct iforest *f, uint64_t noise_seed, float *score, size_t n)
{
	struct rng r;
	size_t i;

	rng_seed(&r, noise_seed);
	for (i = 0; i < n; i++)
		score[i] = iforest__update(f, (float)(100.0 + 5.0 * rng_normal(&r)));
}

Test(iforest, bad_params)
{
	struct iforest_params p = { .window = 2 };

	errno = 0;
	cr_assert_null(iforest__new(&p, 1));
	cr_assert_eq(errno, EINVAL);
	p = (struct iforest_params){ .sample_size = 8 };
	cr_assert_null(iforest__new(&p, 1));
	iforest__free(NULL);
}

/* On white noise at most 5% of the scores after warm-up reach 0.5 (about 2%
 * measured), and all stay in [0, 1]. */
Test(iforest, noise_scores_low)
{
	static float score[IFOREST_TEST_N];
	struct iforest *f = iforest__new(NULL, 42);
	size_t i, high = 0, n = 0;

	cr_assert_not_null(f);
	iforest_test_noise(f, 7, score, IFOREST_TEST_N);
	for (i = 0; i < IFOREST_TEST_N; i++) {
		cr_assert(score[i] >= 0.0f && score[i] <= 1.0f, "score[%zu] = %g", i, score[i]);
		if (i < 32 + 128) {
			cr_assert_eq(score[i], 0.0f, "warm-up score[%zu] = %g", i, score[i]);
			continue;
		}
		n++;
		high += score[i] >= 0.5f;
	}
	cr_assert_leq(high, n / 20, "%zu of %zu noise samples score >= 0.5", high, n);
	iforest__free(f);
}

/* A 10 sd spike after 2000 noise samples scores > 0.7, for several seeds. */
Test(iforest, spike_scores_high)
{
	static float score[2000];
	uint64_t seed;

	for (seed = 1; seed <= 4; seed++) {
		struct iforest *f = iforest__new(NULL, seed);
		float s;

		cr_assert_not_null(f);
		iforest_test_noise(f, 100 + seed, score, 2000);
		s = iforest__update(f, 150.0f);
		cr_assert_gt(s, 0.7f, "seed %llu: spike scored %g", (unsigned long long)seed, s);
		iforest__free(f);
	}
}

Test(iforest, deterministic_per_seed)
{
	static float a[IFOREST_TEST_N], b[IFOREST_TEST_N], c[IFOREST_TEST_N];
	struct iforest *fa = iforest__new(NULL, 5), *fb = iforest__new(NULL, 5);
	struct iforest *fc = iforest__new(NULL, 6);

	cr_assert(fa && fb && fc);
	iforest_test_noise(fa, 9, a, IFOREST_TEST_N);
	iforest_test_noise(fb, 9, b, IFOREST_TEST_N);
	iforest_test_noise(fc, 9, c, IFOREST_TEST_N);
	cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "same seed, different scores");
	cr_assert_neq(memcmp(a, c, sizeof(a)), 0, "different seeds, same scores");
	iforest__free(fa);
	iforest__free(fb);
	iforest__free(fc);
}

/* NaN is no sample: 0, and the scores of the other samples are exactly the
 * ones without the NaNs. */
Test(iforest, nan_is_no_sample)
{
	struct iforest *fa = iforest__new(NULL, 3), *fb = iforest__new(NULL, 3);
	struct rng r;
	float x, sa, sb;
	size_t i;

	cr_assert(fa && fb);
	rng_seed(&r, 11);
	for (i = 0; i < 1500; i++) {
		x = (float)rng_normal(&r);
		if (i % 7 == 3) {
			cr_assert_eq(iforest__update(fb, NAN), 0.0f);
			cr_assert_eq(iforest__update(fb, INFINITY), 0.0f);
		}
		sa = iforest__update(fa, x);
		sb = iforest__update(fb, x);
		cr_assert_eq(sa, sb, "sample %zu: %g != %g", i, sa, sb);
	}
	iforest__free(fa);
	iforest__free(fb);
}

/* A flat line scores 0, a small step off it scores ~1. */
Test(iforest, constant_then_step)
{
	struct iforest *f = iforest__new(NULL, 1);
	size_t i;
	float s;

	cr_assert_not_null(f);
	for (i = 0; i < 1000; i++)
		cr_assert_eq(iforest__update(f, 42.0f), 0.0f);
	s = iforest__update(f, 43.0f);
	cr_assert_gt(s, 0.9f, "step off a flat line scored %g", s);
	iforest__free(f);
}

/* The features are scale-free: a * x + b scores like x. Not bit for bit:
 * the relative floors and float rounding flip the odd partition, after which
 * the trees differ, so compare on average and on the spike. */
Test(iforest, scale_invariant)
{
	struct iforest *fa = iforest__new(NULL, 8), *fb = iforest__new(NULL, 8);
	double diff = 0.0;
	float sa, sb;
	struct rng r;
	double x;
	size_t i;

	cr_assert(fa && fb);
	rng_seed(&r, 13);
	for (i = 0; i < 2000; i++) {
		x = rng_normal(&r) + (i == 1500 ? 10.0 : 0.0);
		sa = iforest__update(fa, (float)x);
		sb = iforest__update(fb, (float)(1e6 * x + 3e6));
		diff += fabsf(sa - sb);
		if (i == 1500)
			cr_assert(sa > 0.7f && sb > 0.7f, "spike scored %g and %g", sa, sb);
	}
	cr_assert_lt(diff / 2000, 0.03, "mean score difference %g", diff / 2000);
	iforest__free(fa);
	iforest__free(fb);
}
