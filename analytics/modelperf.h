/* SPDX-License-Identifier: Apache-2.0 */
/*
 * modelperf: how well each detector (and the ensemble) does on the series of
 * one engine, from the operator's acknowledgements and from the scores.
 *
 *  - alarms: onsets of a detector flagging a series (normal -> flagged);
 *  - confirmed / rejected: alarms inside an acknowledged window, labelled true
 *    or false positive; precision = confirmed / (confirmed + rejected);
 *  - recall: of the anomalies acknowledged as true, the fraction this
 *    detector flagged (an anomaly nobody flagged but the operator reported
 *    counts against everyone);
 *  - drift: the population stability index (PSI) of the detector's recent
 *    score distribution (10 bins, EWMA over ~60 ticks) against its long-run
 *    one (~3600 ticks); > 0.25 is the usual "the model no longer fits" mark;
 *  - trainings: GRU trainings / isolation forest rebuilds and the last one.
 *
 * Alarms are remembered as episodes (per series: from the first sample any
 * detector flags to the last one) in a ring of `log_capacity` episodes, so
 * acknowledgements reach back that many episodes over all series.
 *
 * modelperf__label() and modelperf__report() may run on any thread
 * concurrently with the engine's tick, which calls the rest; a mutex inside
 * guards the state.
 */
#ifndef NOVAMON_ANALYTICS_MODELPERF_H
#define NOVAMON_ANALYTICS_MODELPERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detector.h"

/* Entries of a report: the detectors, then the ensemble. */
#define MODELPERF_ENSEMBLE DETECTOR_COUNT
#define MODELPERF_N (DETECTOR_COUNT + 1)
#define MODELPERF_BINS 10

struct modelperf_detector {
	uint64_t alarms;
	uint64_t confirmed;
	uint64_t rejected;
	double precision; /* NaN until one of its alarms is acknowledged */
	uint64_t anomalies_flagged; /* confirmed anomalies it flagged */
	double recall; /* NaN until an anomaly is confirmed */
	double score_mean_short; /* mean score, recent (EWMA ~60 ticks) */
	double score_mean_long; /* mean score, long run (EWMA ~3600 ticks) */
	double drift; /* PSI recent vs long run; 0 until scored */
	uint64_t trainings; /* GRU trainings / forest rebuilds */
	int64_t last_train_ms; /* tick time of the last one; -1: never */
	double last_train_seconds; /* how long the last one took */
	double train_seconds_total;
};

struct modelperf_report {
	struct modelperf_detector det[MODELPERF_N]; /* [MODELPERF_ENSEMBLE]: the ensemble */
	uint64_t anomalies_confirmed; /* acknowledged true anomalies */
	uint64_t labels; /* acknowledgements received */
	uint64_t episodes; /* alarm episodes recorded */
};

struct modelperf;

/* NULL with errno ENOMEM. log_capacity 0: 65536 episodes (rounded up to a power of 2). */
struct modelperf *modelperf__new(size_t log_capacity);
void modelperf__free(struct modelperf *m);

/*
 * Engine side, under modelperf__lock()/modelperf__unlock() (one lock per
 * tick, not per series).
 *
 * modelperf__flag(): series slot is flagged at t_ms by the detectors in
 * mask (bit MODELPERF_ENSEMBLE: the ensemble's verdict), or by none (mask 0).
 * prev is what the same series was flagged by at its previous sample, and
 * *episode the caller's per-series cursor (0 at slot creation); both are kept
 * by the caller so that the per-series state lives with the series.
 */
void modelperf__lock(struct modelperf *m);
void modelperf__unlock(struct modelperf *m);
void modelperf__flag(struct modelperf *m, uint32_t slot, int64_t t_ms, unsigned prev, unsigned mask,
		     uint32_t *episode);
/*
 * The scores of detector id over one tick: counts of MODELPERF_BINS bins of
 * [0, 1] (see modelperf_bin()) and their sum.
 */
void modelperf__scores(struct modelperf *m, int id, const uint32_t *bins, double sum);
void modelperf__trained(struct modelperf *m, int id, int64_t t_ms, double seconds, uint64_t count);
/* Forget the episodes of a removed series. */
void modelperf__forget(struct modelperf *m, uint32_t slot);

/* Score's bin of [0, 1] for modelperf__scores(). */
static inline unsigned modelperf_bin(float score)
{
	unsigned b = (unsigned)(score * MODELPERF_BINS);

	return b < MODELPERF_BINS ? b : MODELPERF_BINS - 1;
}

/*
 * Acknowledge [t_start_ms, t_end_ms] of series slot as a true anomaly or a
 * false positive. Every recorded episode of the series overlapping the window
 * counts its detectors' alarms as confirmed or rejected (a later label of the
 * same episode replaces the earlier one); a true label is also one confirmed
 * anomaly for recall. Returns the number of episodes found, or -EINVAL.
 */
int modelperf__label(struct modelperf *m, uint32_t slot, int64_t t_start_ms, int64_t t_end_ms,
		     bool true_positive);
void modelperf__report(struct modelperf *m, struct modelperf_report *out);

#endif /* NOVAMON_ANALYTICS_MODELPERF_H */
