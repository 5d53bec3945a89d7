/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statdet behaviour on the ISA simd_isa() picks (tests/unit/test_simd.c shows
 * every ISA gives the same scores): warm-up, noise, spikes, NaN as no
 * sample, reset, stuck values, level shifts, the expected centre/spread.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"
#include "statdet.h"

TestSuite(analytics_statdet);

static uint64_t sd_rng = 0x2545f4914f6cdd1dull;

static double sd_unif(void)
{
	sd_rng ^= sd_rng << 13;
	sd_rng ^= sd_rng >> 7;
	sd_rng ^= sd_rng << 17;
	return (double)(sd_rng >> 11) / 9007199254740992.0;
}

static float sd_gauss(double mean, double sd)
{
	return (float)(mean +
		       sd * sqrt(-2.0 * log(sd_unif() + 1e-300)) * cos(2.0 * M_PI * sd_unif()));
}

static struct statdet *sd_new(size_t n, uint32_t warmup)
{
	struct statdet_params p = { .warmup = warmup, .isa = SIMD_AUTO };
	struct statdet *d = statdet__new(n, &p);

	cr_assert_not_null(d);
	return d;
}

/* Feed `ticks` samples of N(mean, sd) to all n series. */
static void sd_feed(struct statdet *d, size_t n, size_t ticks, double mean, double sd)
{
	float x[64], s[64];
	size_t t, i;

	cr_assert_leq(n, 64);
	for (t = 0; t < ticks; t++) {
		for (i = 0; i < n; i++)
			x[i] = sd_gauss(mean, sd);
		statdet__update(d, x, s);
	}
}

Test(analytics_statdet, params)
{
	struct statdet_params p = { .ewma_alpha = 1.5f, .isa = SIMD_AUTO };
	struct statdet *d;

	errno = 0;
	cr_assert_null(statdet__new(0, NULL));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(statdet__new(4, &p));
	cr_assert_eq(errno, EINVAL);
	p.ewma_alpha = -0.1f;
	cr_assert_null(statdet__new(4, &p));
	p.ewma_alpha = NAN;
	cr_assert_null(statdet__new(4, &p));
	d = statdet__new(1, NULL);
	cr_assert_not_null(d);
	statdet__free(d);
	statdet__free(NULL);
}

Test(analytics_statdet, warmup_scores_zero)
{
	enum { N = 16 };
	struct statdet *d = sd_new(N, 0), *d10 = sd_new(N, 10);
	float x[N], s[N], s10[N];
	size_t t, i;

	for (t = 0; t < STATDET_DEFAULT_WARMUP; t++) {
		/* wild input: noise, spikes, jumps */
		for (i = 0; i < N; i++)
			x[i] = t % 7 == 3 ? 1e9f : sd_gauss(10.0 * (double)i, 1 + t);
		statdet__update(d, x, s);
		statdet__update(d10, x, s10);
		for (i = 0; i < N; i++) {
			cr_assert_eq(s[i], 0.0f, "tick %zu series %zu scored %g in warm-up", t, i,
				     s[i]);
			if (t < 10)
				cr_assert_eq(s10[i], 0.0f);
		}
	}
	statdet__free(d);
	statdet__free(d10);
}

Test(analytics_statdet, noise_scores_low)
{
	enum { N = 64, T = 5000 };
	struct statdet *d = sd_new(N, 0);
	float x[N], s[N];
	size_t t, i, above = 0, total = 0;

	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = sd_gauss(100.0 + (double)i, 5.0);
		statdet__update(d, x, s);
		for (i = 0; i < N; i++) {
			cr_assert(s[i] >= 0.0f && s[i] <= 1.0f);
			total++;
			above += s[i] > 0.5f;
		}
	}
	cr_log_info("gaussian noise: %.4f %% of scores above 0.5", 100.0 * above / total);
	cr_assert_lt((double)above / total, 0.01, "%zu of %zu above 0.5", above, total);
	statdet__free(d);
}

Test(analytics_statdet, spike_scores_high)
{
	enum { N = 32 };
	struct statdet *d = sd_new(N, 0);
	float x[N], s[N];
	size_t i, k;

	sd_feed(d, N, 500, 100.0, 5.0);
	for (k = 0; k < 4; k++) {
		for (i = 0; i < N; i++)
			x[i] = sd_gauss(100.0, 5.0);
		x[k] = 100.0f + 10 * 5.0f; /* 10 sigma up */
		x[N - 1 - k] = 100.0f - 8 * 5.0f; /* 8 sigma down */
		statdet__update(d, x, s);
		cr_assert_gt(s[k], 0.9f, "10-sigma spike scored %g", s[k]);
		cr_assert_gt(s[N - 1 - k], 0.9f, "8-sigma dip scored %g", s[N - 1 - k]);
		sd_feed(d, N, 3, 100.0, 5.0);
	}
	/* A second equal spike right after the first is still flagged. */
	for (k = 0; k < 2; k++) {
		for (i = 0; i < N; i++)
			x[i] = sd_gauss(100.0, 5.0);
		x[10] = 150.0f;
		statdet__update(d, x, s);
		cr_assert_gt(s[10], 0.9f, "repeated spike %zu scored %g", k, s[10]);
	}
	statdet__free(d);
}

/* A NaN, +-Inf or out-of-range sample is no sample: score 0, state as if it
 * never came (the scores after it equal those of a detector that never saw
 * it). */
Test(analytics_statdet, nan_is_no_sample)
{
	enum { N = 5, T = 2000 };
	static const float bad[] = { NAN, INFINITY, -INFINITY, 1e30f, -2e18f };
	struct statdet *d = sd_new(N, 20), *ref[N];
	float x[N], s[N], rs, c, sp, rc, rsp;
	size_t t, i, gaps = 0;

	for (i = 0; i < N; i++)
		ref[i] = sd_new(1, 20);
	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = sd_unif() < 0.1 * (double)(i + 1) ? bad[(t + i) % 5] :
			       t % 100 == 50			 ? 300.0f :
								   sd_gauss(100.0, 5.0);
		statdet__update(d, x, s);
		for (i = 0; i < N; i++) {
			if (!(fabsf(x[i]) <= STATDET_XMAX)) {
				cr_assert_eq(s[i], 0.0f);
				gaps++;
				continue;
			}
			statdet__update(ref[i], &x[i], &rs);
			cr_assert_eq(s[i], rs, "tick %zu series %zu: %g vs %g", t, i, s[i], rs);
		}
	}
	for (i = 0; i < N; i++) {
		statdet__expected(d, i, &c, &sp);
		statdet__expected(ref[i], 0, &rc, &rsp);
		cr_assert(c == rc && sp == rsp);
		statdet__free(ref[i]);
	}
	cr_assert_gt(gaps, T);
	statdet__free(d);
}

Test(analytics_statdet, reset_forgets_one_series)
{
	enum { N = 3, T = 300 };
	struct statdet *d = sd_new(N, 0), *fresh = sd_new(N, 0), *same = sd_new(N, 0);
	float x[N], s[N], fs[N], ss[N];
	size_t t, i;

	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = sd_gauss(1000.0 * (double)(i + 1), 50.0);
		statdet__update(d, x, s);
		statdet__update(same, x, ss);
	}
	statdet__reset(d, 1);
	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = sd_gauss(5.0, 1.0);
		statdet__update(d, x, s);
		statdet__update(fresh, x, fs);
		statdet__update(same, x, ss);
		if (t < STATDET_DEFAULT_WARMUP)
			cr_assert_eq(s[1], 0.0f);
		cr_assert_eq(s[1], fs[1], "reset series differs from a new one at %zu", t);
		cr_assert_eq(s[0], ss[0]);
		cr_assert_eq(s[2], ss[2]);
	}
	statdet__free(d);
	statdet__free(fresh);
	statdet__free(same);
}

Test(analytics_statdet, stuck_values)
{
	enum { N = 3 };
	struct statdet *d = sd_new(N, 0);
	float x[N], s[N];
	size_t t;

	for (t = 0; t < 500; t++) {
		x[0] = 100.0f;
		x[1] = 0.0f;
		x[2] = t % 50 == 7 ? 4097.0f : 4096.0f; /* stuck, moving now and then */
		statdet__update(d, x, s);
		if (t > 200)
			cr_assert_lt(s[2], 0.5f, "a usual move of a mostly stuck series: %g", s[2]);
	}
	/* tiny changes: not anomalies */
	x[0] = 100.1f;
	x[1] = 1e-7f;
	x[2] = 4096.5f;
	statdet__update(d, x, s);
	cr_assert_lt(s[0], 0.5f, "0.1 %% change of a stuck value scored %g", s[0]);
	cr_assert_lt(s[1], 0.5f, "1e-7 change of a stuck zero scored %g", s[1]);
	cr_assert_lt(s[2], 0.5f);
	/* real changes: anomalies */
	x[0] = 150.0f;
	x[1] = 1.0f;
	x[2] = 8192.0f;
	statdet__update(d, x, s);
	cr_assert_gt(s[0], 0.9f);
	cr_assert_gt(s[1], 0.9f);
	cr_assert_gt(s[2], 0.9f);
	statdet__free(d);
}

Test(analytics_statdet, level_shift_adapts)
{
	enum { N = 16, T = 500 };
	struct statdet *d = sd_new(N, 0);
	float x[N], s[N], c, sp;
	size_t t, i, first_low = 0, late_high = 0;

	sd_feed(d, N, T, 100.0, 5.0);
	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = sd_gauss(200.0, 5.0);
		statdet__update(d, x, s);
		for (i = 0; i < N; i++) {
			if (t == 0)
				cr_assert_gt(s[i], 0.9f, "20-sigma shift scored %g", s[i]);
			if (t == 40 && s[i] < 0.5f)
				first_low++;
			if (t >= 50)
				late_high += s[i] > 0.5f;
		}
	}
	cr_assert_eq(first_low, N, "still flagging the new level after 40 samples");
	cr_assert_lt(late_high, N * (T - 50) / 100);
	statdet__expected(d, 0, &c, &sp);
	cr_assert(fabsf(c - 200.0f) < 3.0f && sp > 2.5f && sp < 10.0f, "centre %g spread %g", c,
		  sp);
	statdet__free(d);
}

Test(analytics_statdet, expected_is_median_and_sigma)
{
	enum { N = 8 };
	struct statdet *d = sd_new(N, 0);
	float c, sp;
	size_t i;

	statdet__expected(d, 0, &c, &sp);
	cr_assert(c == 0.0f && sp > 0.0f);
	sd_feed(d, N, 2000, 100.0, 5.0);
	for (i = 0; i < N; i++) {
		statdet__expected(d, i, &c, &sp);
		cr_assert(fabsf(c - 100.0f) < 2.0f, "centre %g", c);
		cr_assert(sp > 3.5f && sp < 7.0f, "spread %g for sigma 5", sp);
	}
	statdet__expected(d, N, &c, NULL); /* out of range: zero, no crash */
	cr_assert_eq(c, 0.0f);
	statdet__free(d);
}
