/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The labelled benchmark (analytics/labelled.h): the generator is seeded and
 * well-formed, the event-based evaluator counts by hand-checked rules, and
 * on the benchmark the ensemble beats every detector alone on F1.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labelled.h"

TestSuite(labelled, .timeout = 120);

Test(labelled, generator_is_seeded_and_well_formed)
{
	struct labelled_params p = { .seed = 7 };
	struct labelled_set *a = labelled_set__new(&p), *b = labelled_set__new(&p), *c;
	bool seen[LABELLED_KINDS] = { false };
	size_t j, differ = 0;
	uint32_t k, len;
	int kind;

	cr_assert(a && b);
	len = a->p.length;
	cr_assert_eq(len, 3000);
	cr_assert_eq(a->n, b->n);
	/* 8 kinds x 4 combinations, minus 2 + 1 impossible ones, plus 4 clean series */
	cr_assert_eq(a->n, 8 * 4 - 3 + 4);
	for (j = 0; j < a->n; j++) {
		const struct labelled_series *s = &a->s[j];

		cr_assert_eq(memcmp(s->x, b->s[j].x, len * sizeof(float)), 0);
		seen[s->kind] = true;
		cr_assert_eq(s->nwin, s->kind == LABELLED_NONE ? 0 : 4);
		for (k = 0; k < s->nwin; k++) {
			cr_assert_geq(s->win[k].start, a->p.warmup);
			cr_assert_leq(s->win[k].start, s->win[k].end);
			cr_assert_lt(s->win[k].end + a->p.grace, len);
			if (k)
				cr_assert_gt(s->win[k].start, s->win[k - 1].end + a->p.grace);
		}
		if (s->kind == LABELLED_SEASONALITY_BREAK)
			cr_assert(s->seasonal);
		for (k = 0; k < len; k++)
			cr_assert(isfinite(s->x[k]));
	}
	for (kind = 0; kind < LABELLED_KINDS; kind++)
		cr_assert(seen[kind], "no %s series", labelled_kind_name(kind));
	/* A clean, noiseless, flat series is exactly the level. */
	for (j = 0; j < a->n; j++)
		if (a->s[j].kind == LABELLED_NONE && !a->s[j].noise && !a->s[j].seasonal)
			cr_assert_eq(a->s[j].x[1234], 100.0f);

	p.seed = 8;
	c = labelled_set__new(&p);
	cr_assert(c);
	for (j = 0; j < a->n; j++)
		differ += memcmp(a->s[j].x, c->s[j].x, len * sizeof(float)) != 0;
	cr_assert_gt(differ, a->n / 2);
	labelled_set__free(a);
	labelled_set__free(b);
	labelled_set__free(c);

	p.length = 1000; /* 4 windows of up to 300 samples do not fit in 400 */
	cr_assert_null(labelled_set__new(&p));
	cr_assert_eq(errno, EINVAL);
	labelled_set__free(NULL);
}

Test(labelled, kinds_look_like_their_name)
{
	struct labelled_set *set = labelled_set__new(NULL);
	size_t j;

	cr_assert(set);
	for (j = 0; j < set->n; j++) {
		const struct labelled_series *s = &set->s[j];
		const struct labelled_window *w = &s->win[0];
		float before, at;

		if (s->noise || s->seasonal || s->kind == LABELLED_NONE)
			continue;
		before = s->x[w->start - 1];
		at = s->x[w->start];
		/* On a flat noiseless line the anomaly is the only change. */
		switch (s->kind) {
		case LABELLED_SPIKE:
			cr_assert_geq(at - before, 8.0f);
			cr_assert_eq(s->x[w->start + 1], before);
			break;
		case LABELLED_DIP:
			cr_assert_geq(before - at, 8.0f);
			break;
		case LABELLED_LEVEL_SHIFT:
			cr_assert_geq(fabsf(s->x[w->end] - before), 5.0f);
			cr_assert_eq(s->x[w->end], at);
			break;
		case LABELLED_TREND_CHANGE:
		case LABELLED_SLOW_DRIFT:
			cr_assert_gt(fabsf(s->x[w->end] - before), 5.9f);
			cr_assert_lt(fabsf(at - before), 0.3f);
			break;
		case LABELLED_VARIANCE_CHANGE:
			cr_assert_eq(before, 100.0f);
			cr_assert_eq(s->x[w->end + 1], 100.0f);
			break;
		default:
			break;
		}
	}
	labelled_set__free(set);
}

/* One series with windows [10, 10] and [50, 59], grace 5, 100 samples. */
static struct labelled_series labelled_test_series(void)
{
	struct labelled_series s = { .kind = LABELLED_LEVEL_SHIFT, .nwin = 2 };

	s.win[0] = (struct labelled_window){ 10, 10 };
	s.win[1] = (struct labelled_window){ 50, 59 };
	return s;
}

static void labelled_test_set(bool *v, uint32_t a, uint32_t b)
{
	for (; a <= b; a++)
		v[a] = true;
}

Test(labelled, evaluator_counts_events)
{
	struct labelled_series s = labelled_test_series();
	struct labelled_eval ev;
	const struct labelled_score *sc;
	bool v[100] = { false };

	labelled_test_set(v, 3, 4); /* false alarm */
	labelled_test_set(v, 13, 14); /* within grace of [10, 10]: detected, delay 3 */
	labelled_test_set(v, 45, 52); /* starts before [50, 59]: detected at 50, delay 0 */
	labelled_test_set(v, 55, 56); /* duplicate inside the same window: neither */
	labelled_test_set(v, 62, 62); /* in the grace: a duplicate too */
	labelled_test_set(v, 65, 70); /* after the grace (ends at 64): false */
	memset(&ev, 0, sizeof(ev));
	labelled_eval__add(&ev, &s, v, 100, 5);
	labelled_eval__finish(&ev);
	sc = &ev.kind[LABELLED_LEVEL_SHIFT];
	cr_assert_eq(sc->windows, 2);
	cr_assert_eq(sc->detected, 2);
	cr_assert_eq(sc->true_alarms, 2);
	cr_assert_eq(sc->false_alarms, 2);
	cr_assert_float_eq(sc->precision, 0.5, 1e-12);
	cr_assert_float_eq(sc->recall, 1.0, 1e-12);
	cr_assert_float_eq(sc->f1, 2.0 / 3.0, 1e-12);
	cr_assert_float_eq(sc->mean_delay, 1.5, 1e-12);
	cr_assert_eq(ev.all.false_alarms, 2);
	cr_assert_eq(ev.kind[LABELLED_SPIKE].windows, 0);

	/* Nothing flagged: recall 0, precision undefined, F1 0. */
	memset(v, 0, sizeof(v));
	memset(&ev, 0, sizeof(ev));
	labelled_eval__add(&ev, &s, v, 100, 5);
	labelled_eval__finish(&ev);
	cr_assert_eq(ev.all.detected, 0);
	cr_assert(isnan(ev.all.precision));
	cr_assert_eq(ev.all.f1, 0.0);
	cr_assert(isnan(ev.all.mean_delay));

	/* Flagged just after the grace: missed, and a false alarm. */
	v[16] = true;
	memset(&ev, 0, sizeof(ev));
	labelled_eval__add(&ev, &s, v, 100, 5);
	labelled_eval__finish(&ev);
	cr_assert_eq(ev.all.detected, 0);
	cr_assert_eq(ev.all.false_alarms, 1);
}

static void labelled_print(const struct labelled_report *r)
{
	int src, k;

	fprintf(stderr, "labelled benchmark: %llu samples in %.1f s\n",
		(unsigned long long)r->samples, r->seconds);
	fprintf(stderr, "%-18s %6s %6s %6s %6s %5s %5s\n", "source", "P", "R", "F1", "delay", "TP",
		"FP");
	for (src = 0; src < LABELLED_SOURCES; src++) {
		const struct labelled_score *a = &r->src[src].all;

		fprintf(stderr, "%-18s %6.3f %6.3f %6.3f %6.1f %5llu %5llu  recall/kind:",
			labelled_source_name(src), a->precision, a->recall, a->f1, a->mean_delay,
			(unsigned long long)a->true_alarms, (unsigned long long)a->false_alarms);
		for (k = 1; k < LABELLED_KINDS; k++)
			fprintf(stderr, " %.2f", r->src[src].kind[k].recall);
		fprintf(stderr, "\n");
	}
}

/*
 * The issue's requirement: on the benchmark, the ensemble's F1 is above
 * every single detector's (each judged by its own cut, score >= 0.5).
 */
Test(labelled, ensemble_beats_every_detector)
{
#ifdef __SANITIZE_ADDRESS__
	/*
	 * Under ASan (-O0) the full benchmark takes minutes, mostly GRU
	 * training: run a short one for the memory checks; the F1 claim is
	 * checked by the optimised build of the same test.
	 */
	struct labelled_set *set = labelled_set__new(
		&(struct labelled_params){ .seed = 1, .length = 1200, .windows = 1 });
	struct labelled_report *r = calloc(1, sizeof(*r));

	cr_assert(set && r);
	cr_assert_eq(labelled_run(set, NULL, 0, r), 0);
	labelled_print(r);
	free(r);
	labelled_set__free(set);
#else
	struct labelled_set *set = labelled_set__new(&(struct labelled_params){ .seed = 1 });
	struct labelled_report *r = calloc(1, sizeof(*r));
	double ens;
	int d;

	cr_assert(set && r);
	cr_assert_eq(labelled_run(set, NULL, 0, r), 0);
	labelled_print(r);
	ens = r->src[LABELLED_SRC_ENSEMBLE].all.f1;
	for (d = 0; d < DETECTOR_COUNT; d++)
		cr_expect_gt(ens, r->src[LABELLED_SRC_RAW(d)].all.f1,
			     "ensemble F1 %.3f not above %s's %.3f", ens, detector_name(d),
			     r->src[LABELLED_SRC_RAW(d)].all.f1);
	/* Every detector finds something: none is dead weight in the ensemble. */
	for (d = 0; d < DETECTOR_COUNT; d++)
		cr_expect_gt(r->src[LABELLED_SRC_RAW(d)].all.detected, 0, "%s found nothing",
			     detector_name(d));
	free(r);
	labelled_set__free(set);
#endif
}
