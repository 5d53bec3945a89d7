/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detector names, the ensemble's rules (adaptive thresholds, per-series
 * reliability, agreement, persistence, one alarm per episode) and the
 * model-performance bookkeeping, on hand-made detector scores.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "detector.h"
#include "ensemble.h"
#include "modelperf.h"
#include "rng.h"

#define ALL4 DETECTOR_ALL

TestSuite(ensemble);

Test(ensemble, detector_names)
{
	int d;

	for (d = 0; d <= DETECTOR_COUNT; d++)
		cr_assert_eq(detector_parse(detector_name(d)), d);
	cr_assert_str_eq(detector_name(DETECTOR_GRU), "gru");
	cr_assert_eq(detector_parse("lstm"), DETECTOR_GRU);
	cr_assert_eq(detector_parse("ensemble"), DETECTOR_COUNT);
	cr_assert_eq(detector_parse("prophet"), -EINVAL);
	cr_assert_eq(detector_parse(""), -EINVAL);
	cr_assert_eq(detector_parse(NULL), -EINVAL);
	cr_assert_null(detector_name(DETECTOR_COUNT + 1));
	cr_assert_null(detector_name(-1));
}

Test(ensemble, bad_params)
{
	cr_assert_null(ensemble__new(0, NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(ensemble__new(1, &(struct ensemble_params){ .quantile = 1.5f }));
	cr_assert_null(ensemble__new(1, &(struct ensemble_params){ .decay = 2.0f }));
	cr_assert_null(ensemble__new(1, &(struct ensemble_params){ .margin = NAN }));
	ensemble__free(NULL);
}

/* Feed n samples of the same four scores to series i; returns the last score. */
static float feed(struct ensemble *e, size_t i, int n, float s0, float s1, float s2, float s3,
		  unsigned *votes)
{
	const float s[DETECTOR_COUNT] = { s0, s1, s2, s3 };
	float out = 0.0f;

	while (n-- > 0)
		out = ensemble__combine(e, i, s, ALL4, votes, NULL);
	return out;
}

Test(ensemble, quiet_detectors_say_nothing)
{
	struct ensemble *e = ensemble__new(1, NULL);
	unsigned votes = 99;

	cr_assert(e);
	cr_assert_eq(feed(e, 0, 1000, 0.0f, 0.1f, 0.2f, 0.3f, &votes), 0.5f * 0.0f);
	cr_assert_eq(votes, 0);
	/* Below every threshold: a score that says how close, under 0.5. */
	cr_assert_lt(feed(e, 0, 1, 0.49f, 0.0f, 0.0f, 0.0f, &votes), 0.5f);
	ensemble__free(e);
}

Test(ensemble, a_reliable_detector_alone_suffices_when_far_off)
{
	struct ensemble *e = ensemble__new(1, NULL);
	unsigned votes;
	float bits[DETECTOR_COUNT];
	const float s[DETECTOR_COUNT] = { 1.0f, 0.0f, 0.0f, 0.0f };

	feed(e, 0, 3000, 0.0f, 0.0f, 0.0f, 0.0f, NULL);
	cr_assert_lt(ensemble__rate(e, 0, DETECTOR_STAT), 1.0f / 2000);
	cr_assert_geq(ensemble__combine(e, 0, s, ALL4, &votes, bits), 0.5f);
	cr_assert_eq(votes, 1u << DETECTOR_STAT);
	cr_assert_gt(bits[DETECTOR_STAT], 10.0f);
	cr_assert_eq(bits[DETECTOR_GRU], 0.0f);
	ensemble__free(e);
}

/*
 * A detector that fires on ~2 % of this series' samples counts little
 * there: alone it never alarms, however long it has been running; with a
 * reliable detector agreeing, it does at once.
 */
Test(ensemble, a_noisy_detector_needs_agreement)
{
	struct ensemble *e = ensemble__new(2, NULL);
	struct rng r;
	unsigned votes;
	int t, alarms = 0;

	rng_seed(&r, 1);
	for (t = 0; t < 20000; t++) {
		float noisy = rng_uniform(&r) < 0.02 ? 1.0f : 0.0f;

		alarms += feed(e, 0, 1, 0.0f, 0.0f, noisy, 0.0f, NULL) >= 0.5f;
		feed(e, 1, 1, 0.0f, 0.0f, 0.0f, 0.0f, NULL);
	}
	cr_assert_lt(alarms, 20, "%d alarms from a 2 %% noisy detector alone", alarms);
	cr_assert_gt(ensemble__threshold(e, 0, DETECTOR_IFOREST), 0.7f,
		     "the noisy detector's threshold did not adapt");
	cr_assert_eq(ensemble__threshold(e, 1, DETECTOR_IFOREST), 0.5f);
	feed(e, 0, 50, 0.0f, 0.0f, 0.0f, 0.0f, NULL);
	cr_assert_geq(feed(e, 0, 1, 0.0f, 0.9f, 1.0f, 0.0f, &votes), 0.5f);
	cr_assert_eq(votes, (1u << DETECTOR_SEASONAL) | (1u << DETECTOR_IFOREST));
	/* Per series: on series 1 the same detector is quiet, hence trusted. */
	cr_assert_gt(ensemble__rate(e, 0, DETECTOR_IFOREST),
		     20 * ensemble__rate(e, 1, DETECTOR_IFOREST));
	ensemble__free(e);
}

/* A moderately reliable detector: one vote is not enough, a few in a row are. */
Test(ensemble, persistence)
{
	struct ensemble *e = ensemble__new(1, &(struct ensemble_params){ .decay = 0.8f });
	int t, first = -1;

	feed(e, 0, 400, 0.0f, 0.0f, 0.0f, 0.0f, NULL);
	for (t = 0; t < 10 && first < 0; t++)
		if (feed(e, 0, 1, 0.6f, 0.0f, 0.0f, 0.0f, NULL) >= 0.5f)
			first = t;
	cr_assert_gt(first, 0, "a lone moderate vote alarmed at once");
	cr_assert_lt(first, 6, "persistence never alarmed");
	ensemble__free(e);
}

/* Once anomalous, a series stays so while a detector votes: one alarm per episode. */
Test(ensemble, one_alarm_per_episode)
{
	struct ensemble *e = ensemble__new(1, NULL);

	feed(e, 0, 2000, 0.0f, 0.0f, 0.0f, 0.0f, NULL);
	cr_assert_geq(feed(e, 0, 1, 1.0f, 1.0f, 0.0f, 0.0f, NULL), 0.5f);
	cr_assert_geq(feed(e, 0, 1, 0.0f, 0.0f, 0.6f, 0.0f, NULL), 0.5f);
	cr_assert_geq(feed(e, 0, 1, 0.0f, 0.0f, 0.0f, 0.7f, NULL), 0.5f);
	cr_assert_lt(feed(e, 0, 1, 0.0f, 0.0f, 0.0f, 0.0f, NULL), 0.5f);
	cr_assert_lt(feed(e, 0, 1, 0.0f, 0.0f, 0.6f, 0.0f, NULL), 0.5f);
	ensemble__free(e);
}

Test(ensemble, score_is_half_exactly_at_the_verdict)
{
	struct ensemble *e = ensemble__new(4, NULL);
	struct rng r;
	int t, i, d, hi = 0;

	rng_seed(&r, 2);
	for (t = 0; t < 20000; t++) {
		for (i = 0; i < 4; i++) {
			float s[DETECTOR_COUNT], bits[DETECTOR_COUNT], out;
			unsigned votes, ran = (unsigned)rng_below(&r, 16);

			for (d = 0; d < DETECTOR_COUNT; d++)
				s[d] = rng_uniform(&r) < 0.9 ? (float)rng_uniform(&r) * 0.3f :
							       (float)rng_uniform(&r);
			out = ensemble__combine(e, i, s, ran, &votes, bits);
			cr_assert(out >= 0.0f && out <= 1.0f);
			cr_assert_eq(votes & ~ran, 0, "a detector that did not run voted");
			for (d = 0; d < DETECTOR_COUNT; d++)
				cr_assert_eq(bits[d] > 0.0f, (votes >> d) & 1);
			hi += out >= 0.5f;
		}
	}
	cr_assert_gt(hi, 0);
	ensemble__free(e);
}

Test(ensemble, weights_and_reset)
{
	struct ensemble *e = ensemble__new(1, NULL);
	unsigned votes;

	cr_assert_eq(ensemble__set_weight(e, DETECTOR_STAT, 1.5f), -EINVAL);
	cr_assert_eq(ensemble__set_weight(e, DETECTOR_COUNT, 0.5f), -EINVAL);
	cr_assert_eq(ensemble__set_weight(e, DETECTOR_STAT, 0.0f), 0);
	cr_assert_eq(ensemble__weight(e, DETECTOR_STAT), 0.0f);
	feed(e, 0, 3000, 0.0f, 0.0f, 0.0f, 0.0f, NULL);
	cr_assert_lt(feed(e, 0, 1, 1.0f, 0.0f, 0.0f, 0.0f, &votes), 0.5f);
	cr_assert_eq(votes, 0, "a detector of weight 0 voted");
	cr_assert_eq(ensemble__set_weight(e, DETECTOR_STAT, 1.0f), 0);
	/* After a reset the series is new: nothing learnt, the prior rate again. */
	feed(e, 0, 100, 0.9f, 0.0f, 0.0f, 0.0f, NULL);
	ensemble__reset(e, 0);
	cr_assert_eq(ensemble__threshold(e, 0, DETECTOR_STAT), 0.5f);
	cr_assert_float_eq(ensemble__rate(e, 0, DETECTOR_STAT), 1.0f / 256, 1e-6);
	ensemble__free(e);
}

/* modelperf: alarms, acknowledgements, precision, recall, drift, trainings. */
Test(ensemble, modelperf_bookkeeping)
{
	struct modelperf *m = modelperf__new(16);
	const unsigned ens = 1u << MODELPERF_ENSEMBLE, st = 1u << DETECTOR_STAT,
		       gr = 1u << DETECTOR_GRU;
	struct modelperf_report r;
	uint32_t ep0 = 0, ep1 = 0, bins[MODELPERF_BINS] = { 0 };
	int t;

	cr_assert(m);
	modelperf__lock(m);
	/* series 0: stat + ensemble flag [10, 12], stat alone at 50 */
	modelperf__flag(m, 0, 10, 0, st | ens, &ep0);
	modelperf__flag(m, 0, 11, st | ens, st | ens | gr, &ep0);
	modelperf__flag(m, 0, 12, st | ens | gr, ens, &ep0);
	modelperf__flag(m, 0, 13, ens, 0, &ep0);
	modelperf__flag(m, 0, 50, 0, st, &ep0);
	modelperf__flag(m, 0, 51, st, 0, &ep0);
	/* series 1: gru at 20 */
	modelperf__flag(m, 1, 20, 0, gr, &ep1);
	modelperf__unlock(m);

	modelperf__report(m, &r);
	cr_assert_eq(r.det[DETECTOR_STAT].alarms, 2);
	cr_assert_eq(r.det[DETECTOR_GRU].alarms, 2);
	cr_assert_eq(r.det[MODELPERF_ENSEMBLE].alarms, 1);
	cr_assert_eq(r.episodes, 3);
	cr_assert(isnan(r.det[DETECTOR_STAT].precision));
	cr_assert(isnan(r.det[DETECTOR_STAT].recall));

	cr_assert_eq(modelperf__label(m, 0, 9, 11, true), 1);
	cr_assert_eq(modelperf__label(m, 0, 45, 55, false), 1);
	cr_assert_eq(modelperf__label(m, 1, 100, 200, true), 0); /* missed by all */
	cr_assert_eq(modelperf__label(m, 0, 5, 4, true), -EINVAL);
	modelperf__report(m, &r);
	cr_assert_eq(r.anomalies_confirmed, 2);
	cr_assert_eq(r.det[DETECTOR_STAT].confirmed, 1);
	cr_assert_eq(r.det[DETECTOR_STAT].rejected, 1);
	cr_assert_float_eq(r.det[DETECTOR_STAT].precision, 0.5, 1e-12);
	cr_assert_float_eq(r.det[DETECTOR_STAT].recall, 0.5, 1e-12);
	cr_assert_float_eq(r.det[MODELPERF_ENSEMBLE].precision, 1.0, 1e-12);
	cr_assert_float_eq(r.det[DETECTOR_GRU].recall, 0.5, 1e-12);
	cr_assert_eq(r.det[DETECTOR_SEASONAL].recall, 0.0);

	/* Relabelling an episode replaces its label. */
	modelperf__label(m, 0, 50, 50, true);
	modelperf__report(m, &r);
	cr_assert_eq(r.det[DETECTOR_STAT].confirmed, 2);
	cr_assert_eq(r.det[DETECTOR_STAT].rejected, 0);

	/* A forgotten series' episodes are gone. */
	modelperf__lock(m);
	modelperf__forget(m, 0);
	modelperf__unlock(m);
	cr_assert_eq(modelperf__label(m, 0, 0, 100, true), 0);

	/* Drift: the same scores for long, then a different distribution. */
	modelperf__lock(m);
	bins[0] = 100;
	for (t = 0; t < 2000; t++)
		modelperf__scores(m, DETECTOR_STAT, bins, 100 * 0.05);
	modelperf__unlock(m);
	modelperf__report(m, &r);
	cr_assert_lt(r.det[DETECTOR_STAT].drift, 0.01);
	cr_assert_float_eq(r.det[DETECTOR_STAT].score_mean_short, 0.05, 1e-9);
	modelperf__lock(m);
	bins[0] = 40;
	bins[5] = 60;
	for (t = 0; t < 200; t++)
		modelperf__scores(m, DETECTOR_STAT, bins, 40 * 0.05 + 60 * 0.55);
	modelperf__trained(m, DETECTOR_GRU, 1234, 0.5, 1);
	modelperf__trained(m, DETECTOR_GRU, 2345, 0.25, 1);
	modelperf__unlock(m);
	modelperf__report(m, &r);
	cr_assert_gt(r.det[DETECTOR_STAT].drift, 0.25);
	cr_assert_gt(r.det[DETECTOR_STAT].score_mean_short, r.det[DETECTOR_STAT].score_mean_long);
	cr_assert_eq(r.det[DETECTOR_GRU].trainings, 2);
	cr_assert_eq(r.det[DETECTOR_GRU].last_train_ms, 2345);
	cr_assert_float_eq(r.det[DETECTOR_GRU].train_seconds_total, 0.75, 1e-12);
	cr_assert_eq(r.det[DETECTOR_IFOREST].last_train_ms, -1);
	modelperf__free(m);
	modelperf__free(NULL);
}

/* The episode log is a ring: old episodes fall out, the live ones are not mixed up. */
Test(ensemble, modelperf_log_wraps)
{
	struct modelperf *m = modelperf__new(4);
	uint32_t ep[10] = { 0 };
	struct modelperf_report r;
	int i;

	modelperf__lock(m);
	for (i = 0; i < 10; i++)
		modelperf__flag(m, i, 100 + i, 0, 1u << DETECTOR_STAT, &ep[i]);
	/* series 0's episode was overwritten: a new one starts, not a corrupt update */
	modelperf__flag(m, 0, 200, 1u << DETECTOR_STAT, 1u << DETECTOR_STAT, &ep[0]);
	modelperf__unlock(m);
	cr_assert_eq(modelperf__label(m, 1, 0, 1000, true), 0);
	cr_assert_eq(modelperf__label(m, 9, 0, 1000, true), 1);
	cr_assert_eq(modelperf__label(m, 0, 150, 250, true), 1);
	modelperf__report(m, &r);
	cr_assert_eq(r.episodes, 11);
	modelperf__free(m);
}
