/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The analytics kernels give the same answers on every ISA: the same input
 * (random and realistic: noise at many scales, stuck values, spikes, NaN
 * gaps and bursts, +-Inf, huge values, sines, random walks, level shifts)
 * through the scalar reference and through AVX2 and AVX-512 (each skipped
 * when the CPU lacks it). Required: |score difference| <= 1e-4 and the same
 * verdict (score > 0.5) on every sample, the same expected values and the
 * same detected periods. The kernels are written to round identically
 * (no FMA, -ffp-contract=off, the same operation order), so in practice the
 * difference is 0: the tests also count bit-different scores and require
 * none, so that an accidental FMA or reordering shows up here first.
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

#define SIMD_TOL 1e-4f

TestSuite(analytics_simd);

static uint64_t simd_rng = 0x9e3779b97f4a7c15ull;

static uint64_t simd_next(void)
{
	uint64_t z = (simd_rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double simd_unif(void)
{
	return (double)(simd_next() >> 11) / 9007199254740992.0;
}

static double simd_gauss(void)
{
	double u = simd_unif(), v = simd_unif();

	return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

/* Series i's sample at tick t: a mix of every shape the daemon sees. */
static float simd_sample(size_t i, size_t t, double *walk)
{
	double lvl = pow(10.0, (double)(i % 7) - 2.0), sd = lvl * 0.05 * (1 + i % 3);
	double v;

	if (simd_unif() < 0.03)
		return NAN;
	switch (i % 12) {
	case 0: /* noise */
		v = lvl + sd * simd_gauss();
		break;
	case 1: /* stuck, moving now and then */
		v = simd_unif() < 0.01 ? lvl * 1.01 : lvl;
		break;
	case 2: /* noise with spikes */
		v = lvl + sd * simd_gauss() + (simd_unif() < 0.01 ? 20 * sd : 0);
		break;
	case 3: /* sine, period 24 + i % 40 */
		v = lvl + 5 * sd * sin(2 * M_PI * (double)t / (24 + i % 40)) + sd * simd_gauss();
		break;
	case 4: /* random walk */
		walk[i] += sd * simd_gauss();
		v = walk[i];
		break;
	case 5: /* level shift at t = 700 */
		v = (t < 700 ? lvl : 3 * lvl) + sd * simd_gauss();
		break;
	case 6: /* NaN bursts */
		if (t % 200 < 30)
			return NAN;
		v = lvl + sd * simd_gauss();
		break;
	case 7: /* +-Inf and huge values now and then, else noise */
		if (simd_unif() < 0.02)
			return simd_unif() < 0.5 ? INFINITY : -INFINITY;
		if (simd_unif() < 0.02)
			return (float)(simd_unif() < 0.5 ? 1e30 : 9e17);
		v = lvl + sd * simd_gauss();
		break;
	case 8: /* exactly zero, rarely one */
		v = simd_unif() < 0.005 ? 1.0 : 0.0;
		break;
	case 9: /* integers (counter rates) */
		v = floor(lvl * 100 + 10 * simd_gauss());
		break;
	case 10: /* negative values, phase flip at t = 900 */
		v = -lvl + 5 * sd * sin(2 * M_PI * (double)t / 60 + (t < 900 ? 0 : M_PI)) +
		    sd * simd_gauss();
		break;
	default: /* heavy tails */
		v = lvl + sd * simd_gauss() / (simd_unif() + 0.05);
		break;
	}
	return (float)v;
}

/* x[t * n + i] for ticks 0..ticks-1. */
static float *simd_input(size_t n, size_t ticks)
{
	float *x = malloc(n * ticks * sizeof(*x));
	double *walk = calloc(n, sizeof(*walk));
	size_t i, t;

	cr_assert(x && walk);
	simd_rng = 0x243f6a8885a308d3ull;
	for (t = 0; t < ticks; t++)
		for (i = 0; i < n; i++)
			x[t * n + i] = simd_sample(i, t, walk);
	free(walk);
	return x;
}

struct simd_cmp {
	float max_diff;
	size_t bit_diff, verdict_diff, scored, flagged;
};

static void simd_compare(struct simd_cmp *c, const float *a, const float *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		cr_assert(a[i] >= 0.0f && a[i] <= 1.0f, "score %g out of [0, 1]", a[i]);
		cr_assert(b[i] >= 0.0f && b[i] <= 1.0f, "score %g out of [0, 1]", b[i]);
		if (fabsf(a[i] - b[i]) > c->max_diff)
			c->max_diff = fabsf(a[i] - b[i]);
		c->bit_diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
		c->verdict_diff += (a[i] > 0.5f) != (b[i] > 0.5f);
		c->scored += a[i] > 0.0f;
		c->flagged += a[i] > 0.5f;
	}
}

static void simd_check(const struct simd_cmp *c, const char *what, int isa)
{
	cr_log_info("%s %s vs scalar: max |diff| %g, %zu bit-different, %zu verdicts differ "
		    "(%zu non-zero, %zu flagged)",
		    what, simd_isa_name(isa), c->max_diff, c->bit_diff, c->verdict_diff, c->scored,
		    c->flagged);
	cr_assert_leq(c->max_diff, SIMD_TOL, "%s %s: max |diff| %g", what, simd_isa_name(isa),
		      c->max_diff);
	cr_assert_eq(c->verdict_diff, 0, "%s %s: %zu verdicts differ", what, simd_isa_name(isa),
		     c->verdict_diff);
	cr_assert_eq(c->bit_diff, 0, "%s %s: %zu scores not bit-identical", what,
		     simd_isa_name(isa), c->bit_diff);
	/* The input must exercise the scoring, not only zeros. */
	cr_assert_gt(c->flagged, 0);
}

static void simd_skip_unless(int isa)
{
	if (isa > (int)simd_isa_max())
		cr_skip_test("this CPU has no %s", simd_isa_name(isa));
}

#define SIMD_N 1003 /* not a multiple of 16: the tail path too */
#define SIMD_TICKS 1500

static void simd_statdet_vs_scalar(int isa)
{
	struct statdet_params p = { .ewma_alpha = 0, .warmup = 20, .isa = SIMD_SCALAR };
	struct statdet *ref, *d;
	float *x = simd_input(SIMD_N, SIMD_TICKS), sa[SIMD_N], sb[SIMD_N];
	float ca, cb, spa, spb;
	struct simd_cmp c = { 0 };
	size_t t, i;

	simd_skip_unless(isa);
	ref = statdet__new(SIMD_N, &p);
	p.isa = isa;
	d = statdet__new(SIMD_N, &p);
	cr_assert(ref && d);
	for (t = 0; t < SIMD_TICKS; t++) {
		if (t == 1000) /* slot reuse mid-stream */
			for (i = 0; i < SIMD_N; i += 97) {
				statdet__reset(ref, i);
				statdet__reset(d, i);
			}
		statdet__update(ref, x + t * SIMD_N, sa);
		statdet__update(d, x + t * SIMD_N, sb);
		simd_compare(&c, sa, sb, SIMD_N);
	}
	for (i = 0; i < SIMD_N; i++) {
		statdet__expected(ref, i, &ca, &spa);
		statdet__expected(d, i, &cb, &spb);
		cr_assert(ca == cb && spa == spb, "series %zu: expected %g/%g vs %g/%g", i, ca, spa,
			  cb, spb);
	}
	simd_check(&c, "statdet", isa);
	statdet__free(ref);
	statdet__free(d);
	free(x);
}

static void simd_seasonal_vs_scalar(int isa, const struct seasonal_params *params)
{
	struct seasonal_params p = *params;
	struct seasonal *ref, *s;
	float *x = simd_input(SIMD_N, SIMD_TICKS), sa[SIMD_N], sb[SIMD_N];
	float ca, cb, spa, spb;
	struct simd_cmp c = { 0 };
	size_t t, i, periods = 0;

	simd_skip_unless(isa);
	p.isa = SIMD_SCALAR;
	ref = seasonal__new(SIMD_N, &p);
	p.isa = isa;
	s = seasonal__new(SIMD_N, &p);
	cr_assert(ref && s);
	for (t = 0; t < SIMD_TICKS; t++) {
		if (t == 1100)
			for (i = 0; i < SIMD_N; i += 89) {
				seasonal__reset(ref, i);
				seasonal__reset(s, i);
			}
		seasonal__update(ref, x + t * SIMD_N, sa);
		seasonal__update(s, x + t * SIMD_N, sb);
		simd_compare(&c, sa, sb, SIMD_N);
		if (t % 100 == 99)
			for (i = 0; i < SIMD_N; i++)
				cr_assert_eq(seasonal__period(ref, i), seasonal__period(s, i),
					     "tick %zu series %zu", t, i);
	}
	for (i = 0; i < SIMD_N; i++) {
		seasonal__expected(ref, i, &ca, &spa);
		seasonal__expected(s, i, &cb, &spb);
		cr_assert(ca == cb && spa == spb, "series %zu: expected %g/%g vs %g/%g", i, ca, spa,
			  cb, spb);
		periods += seasonal__period(ref, i) != 0;
	}
	if (!params->period) /* the sines must have been found */
		cr_assert_gt(periods, SIMD_N / 12 / 2, "only %zu periods found", periods);
	simd_check(&c, params->period ? "seasonal(fixed)" : "seasonal(detect)", isa);
	seasonal__free(ref);
	seasonal__free(s);
	free(x);
}

static const struct seasonal_params simd_fixed = { .period = 60 };
static const struct seasonal_params simd_buckets = { .period = 300, .buckets = 20 };
static const struct seasonal_params simd_detect = { .period = 0, .max_period = 64 };

Test(analytics_simd, statdet_avx2)
{
	simd_statdet_vs_scalar(SIMD_AVX2);
}

Test(analytics_simd, statdet_avx512)
{
	simd_statdet_vs_scalar(SIMD_AVX512);
}

Test(analytics_simd, seasonal_fixed_avx2)
{
	simd_seasonal_vs_scalar(SIMD_AVX2, &simd_fixed);
}

Test(analytics_simd, seasonal_fixed_avx512)
{
	simd_seasonal_vs_scalar(SIMD_AVX512, &simd_fixed);
}

Test(analytics_simd, seasonal_buckets_avx512)
{
	simd_seasonal_vs_scalar(SIMD_AVX512, &simd_buckets);
}

Test(analytics_simd, seasonal_detect_avx2)
{
	simd_seasonal_vs_scalar(SIMD_AVX2, &simd_detect);
}

Test(analytics_simd, seasonal_detect_avx512)
{
	simd_seasonal_vs_scalar(SIMD_AVX512, &simd_detect);
}

Test(analytics_simd, names_and_parse)
{
	int isa;

	for (isa = SIMD_SCALAR; isa <= SIMD_AVX512; isa++)
		cr_assert_eq(simd_isa_parse(simd_isa_name(isa)), isa);
	cr_assert_eq(simd_isa_parse("sse"), -EINVAL);
	cr_assert_eq(simd_isa_parse(NULL), -EINVAL);
	cr_assert_str_eq(simd_isa_name(7), "?");
	cr_assert_eq(simd_isa_resolve(SIMD_AUTO), (int)simd_isa());
	cr_assert_eq(simd_isa_resolve(SIMD_SCALAR), SIMD_SCALAR);
	cr_assert_eq(simd_isa_resolve(3), -EINVAL);
	cr_assert_eq(simd_isa_resolve(-2), -EINVAL);
	if (simd_isa_max() < SIMD_AVX512)
		cr_assert_eq(simd_isa_resolve(SIMD_AVX512), -ENOTSUP);
	cr_assert_leq(simd_isa(), simd_isa_max());
}

/* Criterion runs each test in its own process, so simd_isa() is decided here. */
Test(analytics_simd, env_caps_isa)
{
	struct statdet *d;

	setenv("NOVAMON_SIMD", "scalar", 1);
	cr_assert_eq(simd_isa(), SIMD_SCALAR);
	cr_assert_eq(simd_isa_resolve(SIMD_AUTO), SIMD_SCALAR);
	/* An explicit ISA is not capped by the environment. */
	cr_assert_eq(simd_isa_resolve(simd_isa_max()), (int)simd_isa_max());
	d = statdet__new(3, NULL);
	cr_assert_not_null(d);
	statdet__free(d);
}

Test(analytics_simd, bad_isa_param)
{
	struct statdet_params p = { .isa = 9 };
	struct seasonal_params q = { .isa = -5 };

	errno = 0;
	cr_assert_null(statdet__new(4, &p));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(seasonal__new(4, &q));
	cr_assert_eq(errno, EINVAL);
	if (simd_isa_max() < SIMD_AVX512) {
		p.isa = SIMD_AVX512;
		errno = 0;
		cr_assert_null(statdet__new(4, &p));
		cr_assert_eq(errno, ENOTSUP);
	}
}
