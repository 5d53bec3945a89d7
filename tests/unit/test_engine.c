/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine: slots, verdicts and their reasons, the single-detector mode,
 * determinism and no look-ahead, the heavy-detector budget, background and
 * synchronous GRU training, and acknowledgements.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "rng.h"

TestSuite(engine, .timeout = 120);

static struct engine *engine_test_new(size_t slots, unsigned detectors, bool sync)
{
	struct engine_params p;
	struct engine *e;

	engine_params_init(&p);
	p.slots = slots;
	p.detectors = detectors;
	p.sync_train = sync;
	p.seed = 42;
	e = engine__new(&p);
	cr_assert(e, "engine__new: %s", strerror(errno));
	return e;
}

/* Gaussian noise around 100, sd 1; series j gets its own stream. */
static float engine_test_x(struct rng *r)
{
	return 100.0f + (float)rng_normal(r);
}

Test(engine, slots)
{
	struct engine *e = engine_test_new(3, DETECTOR_ALL, true);
	struct engine_params p;

	cr_assert_eq(engine__slots(e), 3);
	cr_assert_eq(engine__add(e), 0);
	cr_assert_eq(engine__add(e), 1);
	cr_assert_eq(engine__add(e), 2);
	cr_assert_eq(engine__add(e), -ENOSPC);
	cr_assert(engine__in_use(e, 1));
	cr_assert_eq(engine__remove(e, 1), 0);
	cr_assert_not(engine__in_use(e, 1));
	cr_assert_eq(engine__remove(e, 1), -EINVAL);
	cr_assert_eq(engine__remove(e, 3), -EINVAL);
	cr_assert_eq(engine__remove(e, -1), -EINVAL);
	cr_assert_eq(engine__add(e), 1);
	engine__free(e);
	engine__free(NULL);

	engine_params_init(&p);
	cr_assert_null(engine__new(&p)); /* no slots */
	cr_assert_eq(errno, EINVAL);
	p.slots = 1;
	p.detectors = 1u << 7;
	cr_assert_null(engine__new(&p));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(engine__new(NULL));
}

/*
 * A spike on a noisy series: flagged by the ensemble, with its reason
 * (which detectors, expected vs actual, how far off); a missing sample and a
 * free slot give empty verdicts.
 */
Test(engine, spike_verdict_and_reason)
{
	struct engine *e = engine_test_new(3, DETECTOR_ALL, true);
	struct engine_verdict v[3];
	float x[3];
	struct rng r;
	int t, alarms = 0;

	rng_seed(&r, 1);
	cr_assert_eq(engine__add(e), 0);
	cr_assert_eq(engine__add(e), 1);
	for (t = 0; t < 1500; t++) {
		x[0] = engine_test_x(&r);
		x[1] = t % 7 ? engine_test_x(&r) : NAN;
		x[2] = 5.0f; /* free slot: ignored */
		if (t == 1400)
			x[0] += 12.0f;
		engine__tick(e, 1000LL * t, x, v);
		cr_assert_eq(v[2].ran, 0);
		cr_assert_not(v[2].anomalous);
		cr_assert(isnan(v[2].actual));
		if (t % 7 == 0) {
			cr_assert_eq(v[1].ran, 0);
			cr_assert(isnan(v[1].actual));
			cr_assert_eq(v[1].score, 0.0f);
		}
		if (t < 1400)
			alarms += v[0].anomalous;
	}
	cr_assert_lt(alarms, 3, "%d false alarms on plain noise", alarms);
	/* replay the spike sample's verdict: run again up to it */
	engine__free(e);

	e = engine_test_new(1, DETECTOR_ALL, true);
	rng_seed(&r, 1);
	engine__add(e);
	for (t = 0; t <= 1400; t++) {
		float y = engine_test_x(&r);

		if (t % 7)
			engine_test_x(&r); /* keep the stream as above */
		if (t == 1400)
			y += 12.0f;
		engine__tick(e, 1000LL * t, &y, v);
	}
	cr_assert(v[0].anomalous, "spike not flagged (score %.3f)", v[0].score);
	cr_assert_geq(v[0].score, 0.5f);
	cr_assert_eq(v[0].ran, DETECTOR_ALL);
	cr_assert(v[0].detectors & (1u << DETECTOR_STAT), "detectors 0x%x", v[0].detectors);
	cr_assert_gt(v[0].scores[DETECTOR_STAT], 0.9f);
	cr_assert_float_eq(v[0].expected, 100.0f, 1.0f);
	cr_assert_gt(v[0].actual, 108.0f);
	cr_assert(v[0].spread > 0.5f && v[0].spread < 2.0f, "spread %f", v[0].spread);
	cr_assert_gt(v[0].deviation, 7.0f);
	cr_assert(v[0].expected_by == DETECTOR_STAT || v[0].expected_by == DETECTOR_SEASONAL);
	engine__free(e);
}

/* Single-detector mode: the verdict is that detector's own. */
Test(engine, single_detector_mode)
{
	int d;

	for (d = 0; d < DETECTOR_COUNT; d++) {
		struct engine *e = engine_test_new(1, ENGINE_ONLY(d), true);
		struct engine_verdict v;
		struct rng r;
		int t, k;

		rng_seed(&r, 3);
		engine__add(e);
		for (t = 0; t < 800; t++) {
			float x = engine_test_x(&r) + (t == 700 ? 15.0f : 0.0f);

			engine__tick(e, 1000LL * t, &x, &v);
			cr_assert_eq(v.ran, 1u << d);
			cr_assert_eq(v.score, v.scores[d]);
			cr_assert_eq(v.anomalous, v.score >= 0.5f);
			for (k = 0; k < DETECTOR_COUNT; k++)
				if (k != d)
					cr_assert_eq(v.scores[k], 0.0f);
		}
		engine__free(e);
	}
}

/* Same seed and input, same verdicts; verdicts never depend on later samples. */
Test(engine, deterministic_and_causal)
{
	enum { N = 900, CUT = 600 };
	struct engine *a = engine_test_new(2, DETECTOR_ALL, true);
	struct engine *b = engine_test_new(2, DETECTOR_ALL, true);
	struct engine_verdict va[2], vb[2];
	struct rng r;
	int t, j;

	rng_seed(&r, 4);
	for (j = 0; j < 2; j++) {
		engine__add(a);
		engine__add(b);
	}
	for (t = 0; t < N; t++) {
		float x[2] = { engine_test_x(&r), engine_test_x(&r) * 2.0f }, y[2];

		/* b sees another future after CUT */
		y[0] = t < CUT ? x[0] : x[0] + 50.0f;
		y[1] = t < CUT ? x[1] : NAN;
		engine__tick(a, 1000LL * t, x, va);
		engine__tick(b, 1000LL * t, y, vb);
		if (t < CUT)
			cr_assert_eq(memcmp(va, vb, sizeof(va)), 0, "verdicts differ at %d", t);
	}
	engine__free(a);
	engine__free(b);
}

/*
 * With a budget, iforest/gru run on the slots the cheap detectors flag and
 * on a rotation through the others, never more than the budget per tick.
 */
Test(engine, heavy_budget_and_rotation)
{
	enum { SLOTS = 10, BUDGET = 3 };
	const unsigned heavy = (1u << DETECTOR_IFOREST) | (1u << DETECTOR_GRU);
	struct engine_verdict v[SLOTS];
	struct engine_params p;
	struct engine *e;
	int runs[SLOTS] = { 0 };
	float x[SLOTS];
	struct rng r;
	int t, j;

	engine_params_init(&p);
	p.slots = SLOTS;
	p.heavy_budget = BUDGET;
	p.sync_train = true;
	e = engine__new(&p);
	cr_assert(e);
	for (j = 0; j < SLOTS; j++)
		engine__add(e);
	rng_seed(&r, 5);
	for (t = 0; t < 400; t++) {
		int ran = 0;

		for (j = 0; j < SLOTS; j++)
			x[j] = engine_test_x(&r);
		if (t == 399)
			x[7] += 30.0f; /* the cheap detectors flag it: it must get a turn */
		engine__tick(e, 1000LL * t, x, v);
		for (j = 0; j < SLOTS; j++) {
			cr_assert_eq(v[j].ran & heavy, (v[j].ran & heavy) ? heavy : 0u);
			if (v[j].ran & heavy) {
				ran++;
				runs[j]++;
			}
		}
		cr_assert_leq(ran, BUDGET);
		cr_assert_eq(ran, BUDGET);
	}
	cr_assert(v[7].ran & heavy, "the flagged slot did not get the heavy detectors");
	for (j = 0; j < SLOTS; j++)
		cr_assert_geq(runs[j], 400 * BUDGET / SLOTS - 2, "slot %d ran %d times", j,
			      runs[j]);
	engine__free(e);
}

/* GRUs train on the background thread, the forest rebuilds, both are reported. */
Test(engine, background_training)
{
	struct engine *e = engine_test_new(2, DETECTOR_ALL, false);
	struct modelperf_report r;
	struct engine_verdict v[2];
	struct rng g;
	int t;

	rng_seed(&g, 6);
	engine__add(e);
	engine__add(e);
	for (t = 0; t < 1200; t++) {
		float x[2] = { engine_test_x(&g), 50.0f + 10.0f * sinf(t * 0.3f) };

		engine__tick(e, 1000LL * t, x, v);
		if (t == 700)
			engine__remove(e, 1); /* maybe while its GRU trains: no leak, no crash */
		if (t == 701)
			cr_assert_eq(engine__add(e), 1);
	}
	engine__train_wait(e);
	engine__performance(e, &r);
	cr_assert_geq(r.det[DETECTOR_GRU].trainings, 2, "%llu GRU trainings",
		      (unsigned long long)r.det[DETECTOR_GRU].trainings);
	cr_assert_gt(r.det[DETECTOR_GRU].last_train_ms, 0);
	cr_assert_gt(r.det[DETECTOR_GRU].last_train_seconds, 0.0);
	cr_assert_geq(r.det[DETECTOR_IFOREST].trainings, 2);
	cr_assert_gt(r.det[DETECTOR_STAT].score_mean_long, -1.0);
	engine__free(e);
}

/* Acknowledgements reach the episode the engine recorded and feed precision/recall. */
Test(engine, labels_and_performance)
{
	struct engine *e = engine_test_new(1, DETECTOR_ALL, true);
	struct modelperf_report r;
	struct engine_verdict v;
	struct rng g;
	int64_t spike_ms = -1;
	int t;

	rng_seed(&g, 7);
	engine__add(e);
	for (t = 0; t < 1500; t++) {
		float x = engine_test_x(&g) + (t == 1300 ? 20.0f : 0.0f);

		engine__tick(e, 1000LL * t, &x, &v);
		if (t == 1300) {
			cr_assert(v.anomalous);
			spike_ms = 1000LL * t;
		}
	}
	cr_assert_eq(engine__label(e, 0, spike_ms - 500, spike_ms + 500, true), 1);
	cr_assert_eq(engine__label(e, 0, 10, 20, false), 0);
	cr_assert_eq(engine__label(e, 5, 10, 20, false), -EINVAL);
	engine__performance(e, &r);
	cr_assert_eq(r.anomalies_confirmed, 1);
	cr_assert_eq(r.labels, 2);
	cr_assert_geq(r.det[MODELPERF_ENSEMBLE].alarms, 1);
	cr_assert_eq(r.det[MODELPERF_ENSEMBLE].confirmed, 1);
	cr_assert_float_eq(r.det[MODELPERF_ENSEMBLE].recall, 1.0, 1e-12);
	cr_assert_float_eq(r.det[DETECTOR_STAT].recall, 1.0, 1e-12);
	cr_assert_geq(r.det[DETECTOR_STAT].precision, 0.0);
	engine__free(e);
}
