/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seasonal behaviour on the ISA simd_isa() picks (test_simd.c covers the
 * others): period detection, a seasonality break that only the seasonal
 * detector sees, level shifts, no penalty without seasonality, buckets,
 * warm-up, NaN, reset, parameters.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seasonal.h"
#include "simd.h"
#include "statdet.h"

TestSuite(analytics_seasonal);

static uint64_t ss_rng = 0xda942042e4dd58b5ull;

static double ss_unif(void)
{
	ss_rng ^= ss_rng << 13;
	ss_rng ^= ss_rng >> 7;
	ss_rng ^= ss_rng << 17;
	return (double)(ss_rng >> 11) / 9007199254740992.0;
}

static double ss_gauss(void)
{
	return sqrt(-2.0 * log(ss_unif() + 1e-300)) * cos(2.0 * M_PI * ss_unif());
}

static struct seasonal *ss_new(size_t n, uint32_t period, uint32_t buckets)
{
	struct seasonal_params p = { .period = period, .buckets = buckets, .isa = SIMD_AUTO };
	struct seasonal *s = seasonal__new(n, &p);

	cr_assert_not_null(s);
	return s;
}

/* Sine of period 60, amplitude 10, noise sd 1, phase per series; flipped by
 * half a period when flip is set; plus shift. */
static float ss_sine(size_t t, size_t i, bool flip, double shift)
{
	return (float)(100.0 + shift +
		       10.0 * sin(2 * M_PI * (double)t / 60.0 + (double)i + (flip ? M_PI : 0.0)) +
		       ss_gauss());
}

Test(analytics_seasonal, params)
{
	static const struct seasonal_params bad[] = {
		{ .period = 1, .isa = SIMD_AUTO },
		{ .period = 10, .buckets = 11, .isa = SIMD_AUTO },
		{ .period = 0, .max_period = 1, .isa = SIMD_AUTO },
		{ .period = 0, .max_period = SEASONAL_MAX_PERIOD_LIMIT + 1, .isa = SIMD_AUTO },
	};
	struct seasonal *s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert_null(seasonal__new(4, &bad[i]), "params %zu accepted", i);
		cr_assert_eq(errno, EINVAL);
	}
	errno = 0;
	cr_assert_null(seasonal__new(0, NULL));
	cr_assert_eq(errno, EINVAL);
	s = seasonal__new(3, NULL); /* defaults: detect */
	cr_assert_not_null(s);
	cr_assert_eq(seasonal__period(s, 0), 0);
	seasonal__free(s);
	s = ss_new(3, 86400, 0);
	cr_assert_eq(seasonal__period(s, 2), 86400);
	seasonal__free(s);
	seasonal__free(NULL);
}

/* Sines of period 60 are found (60 +- 1); noise and a random walk get none. */
Test(analytics_seasonal, detects_period_60)
{
	enum { N = 12, T = 1500 };
	struct seasonal *s = ss_new(N, 0, 0);
	float x[N], sc[N];
	double walk = 0;
	size_t t, i;
	uint32_t p;

	for (t = 0; t < T; t++) {
		walk += ss_gauss();
		for (i = 0; i < N; i++)
			x[i] = i < 8  ? ss_sine(t, i, false, 0) :
			       i < 11 ? (float)(50.0 + ss_gauss()) :
					(float)walk;
		seasonal__update(s, x, sc);
	}
	for (i = 0; i < N; i++) {
		p = seasonal__period(s, i);
		if (i < 8)
			cr_assert(p >= 59 && p <= 61, "series %zu: period %u", i, p);
		else
			cr_assert_eq(p, 0, "series %zu (no season): period %u", i, p);
	}
	seasonal__free(s);
}

/*
 * Why the seasonal detector exists: after a phase flip every value is still
 * within the series' usual range, so statdet sees nothing, but each one is
 * wrong for its point of the season.
 */
static void ss_phase_flip(uint32_t period)
{
	enum { N = 8, LEARN = 1500 };
	struct statdet_params sp = { .isa = SIMD_AUTO };
	struct seasonal *s = ss_new(N, period, 0);
	struct statdet *d = statdet__new(N, &sp);
	float x[N], sc[N], sd[N], max_s[N] = { 0 }, max_d = 0;
	size_t t, i;

	cr_assert_not_null(d);
	for (t = 0; t < LEARN; t++) {
		for (i = 0; i < N; i++)
			x[i] = ss_sine(t, i, false, 0);
		seasonal__update(s, x, sc);
		statdet__update(d, x, sd);
	}
	for (; t < LEARN + 60; t++) {
		for (i = 0; i < N; i++)
			x[i] = ss_sine(t, i, true, 0);
		seasonal__update(s, x, sc);
		statdet__update(d, x, sd);
		for (i = 0; i < N; i++) {
			max_s[i] = fmaxf(max_s[i], sc[i]);
			max_d = fmaxf(max_d, sd[i]);
		}
	}
	for (i = 0; i < N; i++)
		cr_assert_gt(max_s[i], 0.9f, "series %zu: the flip scored at most %g", i, max_s[i]);
	cr_assert_lt(max_d, 0.5f, "statdet scored the flip %g", max_d);
	statdet__free(d);
	seasonal__free(s);
}

Test(analytics_seasonal, phase_flip_fixed_period)
{
	ss_phase_flip(60);
}

Test(analytics_seasonal, phase_flip_detected_period)
{
	ss_phase_flip(0);
}

Test(analytics_seasonal, level_shift_adapts)
{
	enum { N = 8, LEARN = 1500 };
	struct seasonal *s = ss_new(N, 0, 0);
	float x[N], sc[N], c, sp;
	size_t t, i, late_high = 0;

	for (t = 0; t < LEARN; t++) {
		for (i = 0; i < N; i++)
			x[i] = ss_sine(t, i, false, 0);
		seasonal__update(s, x, sc);
	}
	for (; t < LEARN + 6 * 60; t++) {
		for (i = 0; i < N; i++)
			x[i] = ss_sine(t, i, false, 30);
		seasonal__update(s, x, sc);
		for (i = 0; i < N; i++) {
			if (t == LEARN)
				cr_assert_gt(sc[i], 0.9f, "shift scored %g", sc[i]);
			if (t >= LEARN + 3 * 60)
				late_high += sc[i] > 0.5f;
		}
	}
	cr_assert_lt(late_high, N * 3 * 60 / 50, "%zu high scores 3 periods after the shift",
		     late_high);
	for (i = 0; i < N; i++) {
		cr_assert_eq(seasonal__period(s, i), 60);
		seasonal__expected(s, i, &c, &sp);
		cr_assert(fabsf(c - (float)(130.0 + 10.0 * sin(2 * M_PI * (double)t / 60.0 +
							       (double)i))) < 3.0f,
			  "series %zu expected %g", i, c);
		cr_assert(sp > 0.5f && sp < 3.0f, "series %zu spread %g (noise sd 1)", i, sp);
	}
	seasonal__free(s);
}

/* Without seasonality the seasonal detector scores like a level detector:
 * low on noise, high on spikes, whether the period is configured or not. */
static void ss_no_season(uint32_t period)
{
	enum { N = 32, T = 3000 };
	struct seasonal *s = ss_new(N, period, 0);
	float x[N], sc[N];
	size_t t, i, above = 0, total = 0;

	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = (float)(50.0 + 2.0 * ss_gauss());
		seasonal__update(s, x, sc);
		for (i = 0; i < N && t >= 600; i++) {
			total++;
			above += sc[i] > 0.5f;
		}
	}
	cr_log_info("period %u, noise: %.4f %% above 0.5", period, 100.0 * above / total);
	cr_assert_lt((double)above / total, 0.01);
	for (i = 0; i < N; i++)
		x[i] = (float)(50.0 + (i % 2 ? 20.0 : -20.0)); /* 10 sigma */
	seasonal__update(s, x, sc);
	for (i = 0; i < N; i++) {
		cr_assert_gt(sc[i], 0.9f, "10-sigma spike scored %g", sc[i]);
		if (!period)
			cr_assert_eq(seasonal__period(s, i), 0);
	}
	seasonal__free(s);
}

Test(analytics_seasonal, no_season_not_penalised_fixed)
{
	ss_no_season(60);
}

Test(analytics_seasonal, no_season_not_penalised_detect)
{
	ss_no_season(0);
}

/* A long period with few buckets (a day in 96 buckets, scaled down). */
Test(analytics_seasonal, buckets)
{
	enum { N = 4, P = 600 };
	struct seasonal *s = ss_new(N, P, 30);
	float x[N], sc[N], max_s = 0;
	size_t t, i, above = 0;

	for (t = 0; t < 8 * P; t++) {
		for (i = 0; i < N; i++)
			x[i] = (float)(100.0 + 10.0 * sin(2 * M_PI * (double)t / P + (double)i) +
				       ss_gauss());
		seasonal__update(s, x, sc);
		for (i = 0; i < N && t >= 6 * P; i++)
			above += sc[i] > 0.5f;
	}
	cr_assert_lt(above, 2 * P * N / 100);
	/* the opposite of the season for a bucket's time (series 1: phase 1
	 * rad, far from a zero crossing) */
	for (; t < 8 * P + 20; t++) {
		for (i = 0; i < N; i++)
			x[i] = (float)(100.0 - 10.0 * sin(2 * M_PI * (double)t / P + (double)i) +
				       ss_gauss());
		seasonal__update(s, x, sc);
		max_s = fmaxf(max_s, sc[1]);
	}
	cr_log_info("buckets: %zu high in 2 learnt periods, flip max %g", above, max_s);
	cr_assert_gt(max_s, 0.9f);
	seasonal__free(s);
}

Test(analytics_seasonal, warmup_scores_zero)
{
	enum { N = 3, P = 30 };
	struct seasonal_params p = { .period = P, .warmup_periods = 3, .isa = SIMD_AUTO };
	struct seasonal *s = seasonal__new(N, &p);
	float x[N], sc[N];
	size_t t, i, valid = 0;

	cr_assert_not_null(s);
	for (t = 0; valid < 3 * P; t++) {
		for (i = 0; i < N; i++)
			x[i] = t % 4 == 1 ? NAN : t % 9 == 0 ? 1e6f : (float)ss_gauss();
		valid += x[0] == x[0];
		seasonal__update(s, x, sc);
		for (i = 0; i < N; i++)
			cr_assert_eq(sc[i], 0.0f, "tick %zu scored %g in warm-up", t, sc[i]);
	}
	for (i = 0; i < N; i++)
		x[i] = 1e6f;
	seasonal__update(s, x, sc);
	cr_assert_gt(sc[0], 0.5f);
	seasonal__free(s);
}

/* NaN is no sample (score 0); gaps do not stop the detection, nor poison
 * the state. */
Test(analytics_seasonal, nan_gaps)
{
	enum { N = 4, T = 2000 };
	struct seasonal *s = ss_new(N, 0, 0);
	float x[N], sc[N], c, sp;
	size_t t, i, above = 0;

	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++) {
			x[i] = ss_sine(t, i, false, 0);
			if (ss_unif() < 0.05 || (i == 3 && t % 300 < 40))
				x[i] = i == 2 ? INFINITY : NAN;
		}
		seasonal__update(s, x, sc);
		for (i = 0; i < N; i++) {
			cr_assert(sc[i] >= 0.0f && sc[i] <= 1.0f);
			if (!(fabsf(x[i]) <= STATDET_XMAX))
				cr_assert_eq(sc[i], 0.0f);
			if (t > 1000)
				above += sc[i] > 0.5f;
		}
	}
	cr_assert_lt(above, N * (T - 1000) / 100);
	for (i = 0; i < N; i++) {
		cr_assert(seasonal__period(s, i) >= 59 && seasonal__period(s, i) <= 61,
			  "series %zu period %u", i, seasonal__period(s, i));
		seasonal__expected(s, i, &c, &sp);
		cr_assert(isfinite(c) && isfinite(sp));
	}
	seasonal__free(s);
}

Test(analytics_seasonal, reset_forgets_one_series)
{
	enum { N = 2, T = 1200 };
	struct seasonal *s = ss_new(N, 0, 0);
	float x[N], sc[N];
	size_t t, i;

	for (t = 0; t < T; t++) {
		for (i = 0; i < N; i++)
			x[i] = ss_sine(t, i, false, 0);
		seasonal__update(s, x, sc);
	}
	cr_assert_eq(seasonal__period(s, 0), 60);
	seasonal__reset(s, 0);
	cr_assert_eq(seasonal__period(s, 0), 0);
	for (t = 0; t < 2 * SEASONAL_DEFAULT_MAX_PERIOD; t++) {
		for (i = 0; i < N; i++)
			x[i] = ss_sine(t, i, false, 500);
		seasonal__update(s, x, sc);
		cr_assert_eq(sc[0], 0.0f, "reset series scored %g in warm-up", sc[0]);
	}
	/* the other series saw a shift of 500: flagged */
	cr_assert_eq(seasonal__period(s, 1), 60);
	seasonal__free(s);
}
