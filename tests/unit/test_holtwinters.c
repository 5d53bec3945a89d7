/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "holtwinters.h"
#include "rng.h"

TestSuite(holtwinters);

#define HW_TEST_M 24
#define HW_TEST_N (HW_TEST_M * 40)

/* 50 + 0.1 t + 10 sin(2 pi t / 24): trend and season without noise. */
static double hw_test_truth(size_t t)
{
	return 50.0 + 0.1 * (double)t + 10.0 * sin(2.0 * M_PI * (double)t / HW_TEST_M);
}

Test(holtwinters, bad_params)
{
	struct holtwinters_params p = { .period = 1 };
	struct holtwinters *h;
	double x[4] = { 1, 2, 3, 4 };

	errno = 0;
	cr_assert_null(holtwinters__new(&p));
	cr_assert_eq(errno, EINVAL);
	p = (struct holtwinters_params){ .alpha = 1.5 };
	cr_assert_null(holtwinters__new(&p));
	p = (struct holtwinters_params){ .beta = NAN };
	cr_assert_null(holtwinters__new(&p));
	holtwinters__free(NULL);

	p = (struct holtwinters_params){ .period = 4 };
	h = holtwinters__new(&p);
	cr_assert_not_null(h);
	cr_assert_eq(holtwinters__fit(h, x, 4), -EINVAL); /* needs 2 seasons */
	cr_assert_eq(holtwinters__forecast(h, 1, 0.95, NULL, NULL, NULL), -ENODATA);
	cr_assert_eq(holtwinters__time_to_threshold(h, 10.0, 100), -1);
	holtwinters__free(h);
}

/* Noise-free trend + season is recovered to 1e-6; with N(0, 0.5^2) noise
 * the forecasts of the next two seasons stay within 1.0 (2 sd) of the
 * noise-free truth. */
Test(holtwinters, trend_and_season)
{
	static double x[HW_TEST_N];
	struct holtwinters_params p = { .period = HW_TEST_M };
	struct holtwinters *h = holtwinters__new(&p);
	double mean;
	struct rng r;
	size_t i, k;

	cr_assert_not_null(h);
	for (i = 0; i < HW_TEST_N; i++)
		x[i] = hw_test_truth(i);
	cr_assert_eq(holtwinters__fit(h, x, HW_TEST_N), 0);
	for (k = 1; k <= 2 * HW_TEST_M; k++) {
		cr_assert_eq(holtwinters__forecast(h, k, 0.95, &mean, NULL, NULL), 0);
		cr_assert_float_eq(mean, hw_test_truth(HW_TEST_N - 1 + k), 1e-6, "h=%zu", k);
	}

	rng_seed(&r, 1);
	for (i = 0; i < HW_TEST_N; i++)
		x[i] = hw_test_truth(i) + 0.5 * rng_normal(&r);
	cr_assert_eq(holtwinters__fit(h, x, HW_TEST_N), 0);
	for (k = 1; k <= 2 * HW_TEST_M; k++) {
		cr_assert_eq(holtwinters__forecast(h, k, 0.95, &mean, NULL, NULL), 0);
		cr_assert_float_eq(mean, hw_test_truth(HW_TEST_N - 1 + k), 1.0, "h=%zu", k);
	}
	holtwinters__free(h);
}

/* 95% intervals over 1..48 steps ahead, 30 noisy series (1440 points):
 * between 90% and 99% of the future points fall inside. */
Test(holtwinters, interval_coverage)
{
	static double x[HW_TEST_N + 2 * HW_TEST_M];
	size_t inside = 0, total = 0, i, k;
	double lo, hi;
	uint64_t seed;
	struct rng r;

	for (seed = 1; seed <= 30; seed++) {
		struct holtwinters_params p = { .period = HW_TEST_M };
		struct holtwinters *h = holtwinters__new(&p);

		cr_assert_not_null(h);
		rng_seed(&r, seed);
		for (i = 0; i < HW_TEST_N + 2 * HW_TEST_M; i++)
			x[i] = hw_test_truth(i) + 0.5 * rng_normal(&r);
		cr_assert_eq(holtwinters__fit(h, x, HW_TEST_N), 0);
		for (k = 1; k <= 2 * HW_TEST_M; k++) {
			cr_assert_eq(holtwinters__forecast(h, k, 0.95, NULL, &lo, &hi), 0);
			cr_assert_lt(lo, hi);
			inside += x[HW_TEST_N - 1 + k] >= lo && x[HW_TEST_N - 1 + k] <= hi;
			total++;
		}
		holtwinters__free(h);
	}
	cr_assert(inside >= total * 90 / 100 && inside <= total * 99 / 100,
		  "%zu of %zu inside the 95%% intervals", inside, total);
}

/* A pool filling by 2 units a sample (with noise, and with a daily wobble)
 * reaches 10000 in (10000 - 2098) / 2 = 3951 samples: within 5%. */
Test(holtwinters, time_to_threshold)
{
	static double x[1000];
	struct holtwinters_params p0 = { 0 }, p1 = { .period = HW_TEST_M };
	struct holtwinters *h0 = holtwinters__new(&p0), *h1 = holtwinters__new(&p1);
	struct rng r;
	long steps;
	size_t i;

	cr_assert(h0 && h1);
	rng_seed(&r, 3);
	for (i = 0; i < 1000; i++)
		x[i] = 100.0 + 2.0 * (double)i + 5.0 * rng_normal(&r);
	cr_assert_eq(holtwinters__fit(h0, x, 1000), 0);
	steps = holtwinters__time_to_threshold(h0, 10000.0, 100000);
	cr_assert(labs(steps - 3951) <= 3951 / 20, "steps %ld", steps);
	cr_assert_eq(holtwinters__time_to_threshold(h0, 10000.0, 1000), -1);
	/* below the level and the series rises: never */
	cr_assert_eq(holtwinters__time_to_threshold(h0, 0.0, 100000), -1);

	for (i = 0; i < 1000; i++)
		x[i] = 100.0 + 2.0 * (double)i + 30.0 * sin(2.0 * M_PI * (double)i / HW_TEST_M) +
		       5.0 * rng_normal(&r);
	cr_assert_eq(holtwinters__fit(h1, x, 1000), 0);
	steps = holtwinters__time_to_threshold(h1, 10000.0, 100000);
	cr_assert(labs(steps - 3951) <= 3951 / 20, "seasonal: steps %ld", steps);

	/* A draining series crosses downwards. */
	for (i = 0; i < 1000; i++)
		x[i] = 5000.0 - 2.0 * (double)i + 5.0 * rng_normal(&r);
	cr_assert_eq(holtwinters__fit(h0, x, 1000), 0);
	steps = holtwinters__time_to_threshold(h0, 0.0, 100000);
	cr_assert(labs(steps - 1501) <= 1501 / 20, "draining: steps %ld", steps);
	holtwinters__free(h0);
	holtwinters__free(h1);
}

/* Without holtwinters__fit the object fits itself after 2 seasons; a NaN
 * advances the clock, so the seasonal phase stays right. */
Test(holtwinters, update_only_and_nan)
{
	struct holtwinters_params p = {
		.period = HW_TEST_M, .alpha = 0.2, .beta = 0.05, .gamma = 0.1
	};
	struct holtwinters *h = holtwinters__new(&p);
	double mean;
	size_t i, k;

	cr_assert_not_null(h);
	for (i = 0; i < 2 * HW_TEST_M - 1; i++)
		holtwinters__update(h, hw_test_truth(i));
	cr_assert_eq(holtwinters__forecast(h, 1, 0.9, &mean, NULL, NULL), -ENODATA);
	for (; i < 10 * HW_TEST_M; i++)
		holtwinters__update(h, i % 17 == 5 ? NAN : hw_test_truth(i));
	for (k = 1; k <= HW_TEST_M; k++) {
		cr_assert_eq(holtwinters__forecast(h, k, 0.9, &mean, NULL, NULL), 0);
		cr_assert_float_eq(mean, hw_test_truth(i - 1 + k), 1e-6, "h=%zu", k);
	}
	holtwinters__free(h);
}
