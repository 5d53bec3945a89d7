/* SPDX-License-Identifier: Apache-2.0 */
/*
 * labelled: a labelled anomaly benchmark of our own. A seeded generator of
 * series with injected anomalies of every kind an operator meets, and an
 * event-based evaluator of verdicts against the labels.
 *
 * Series. Level 100, plus (when seasonal) a daily-like profile of `period`
 * samples (amplitude 8 and a second harmonic of 3), plus (when noisy)
 * Gaussian noise of sd 1. Every kind comes in the four combinations of
 * noise and seasonality, except where the anomaly cannot exist: a
 * seasonality break needs a season, a stuck value needs something that
 * moves. `replicas` series per combination, and per noise/seasonality
 * combination `replicas` clean series (kind none: any alarm is false).
 * Each anomalous series holds `windows` anomalies of its kind, after
 * `warmup` samples, one per equal stretch at a random offset. Sizes are in
 * units u = 1 (the noise sd), drawn per anomaly, sign random:
 *
 *   spike            one sample +8..12 u                       window 1
 *   dip              one sample -8..12 u                       window 1
 *   level_shift      +-5..8 u from then on                     window 30
 *   trend_change     slope +-0.1..0.2 u/sample for 60 samples,  window 60
 *                    then the level stays
 *   variance_change  noise sd x4 (3 u without noise)           window 60
 *   seasonality_break  the profile half a period out of phase  window 2 periods
 *   stuck            the value frozen                          window 60
 *   slow_drift       +-6..8 u reached linearly over 300        window 300
 *                    samples, then the level stays
 *
 * Evaluation (per series, then summed per kind and overall), for a verdict
 * sequence v[0..n): an alarm is a maximal run of anomalous samples. A window
 * [start, end] is detected at the first anomalous sample in
 * [start, end + grace]; the delay is that sample - start. An alarm
 * overlapping a window's [start, end + grace] is a true alarm for the first
 * such window not yet credited with one, and otherwise a duplicate, which
 * counts neither way (so that flickering inside a window earns nothing); an
 * alarm overlapping no window is a false alarm.
 * precision = true / (true + false alarms), recall = detected / windows,
 * F1 their harmonic mean (0 when both are 0).
 */
#ifndef NOVAMON_ANALYTICS_LABELLED_H
#define NOVAMON_ANALYTICS_LABELLED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detector.h"
#include "engine.h"

enum labelled_kind {
	LABELLED_NONE, /* clean series: false alarms only */
	LABELLED_SPIKE,
	LABELLED_DIP,
	LABELLED_LEVEL_SHIFT,
	LABELLED_TREND_CHANGE,
	LABELLED_VARIANCE_CHANGE,
	LABELLED_SEASONALITY_BREAK,
	LABELLED_STUCK,
	LABELLED_SLOW_DRIFT,
	LABELLED_KINDS,
};

#define LABELLED_MAX_WINDOWS 16

struct labelled_window {
	uint32_t start; /* first anomalous sample */
	uint32_t end; /* last one (inclusive) */
};

struct labelled_series {
	enum labelled_kind kind;
	bool noise;
	bool seasonal;
	uint32_t nwin;
	struct labelled_window win[LABELLED_MAX_WINDOWS];
	float *x; /* length samples, 1 s apart */
};

/* Any field 0: its default. */
struct labelled_params {
	uint64_t seed;
	uint32_t length; /* samples per series; default 3000 */
	uint32_t windows; /* anomalies per series; default 4 */
	uint32_t warmup; /* samples before the first anomaly; default 600 */
	uint32_t period; /* of the seasonal series; default 48 */
	uint32_t replicas; /* series per (kind, noise, seasonality); default 1 */
	uint32_t grace; /* samples after a window a detection still counts; default 10 */
};

struct labelled_set {
	struct labelled_params p; /* with the defaults filled in */
	size_t n;
	struct labelled_series *s;
};

const char *labelled_kind_name(enum labelled_kind k); /* "spike", ..., "none" */

/*
 * Generate the benchmark: the same params (seed included) give the same set.
 * NULL with errno EINVAL (windows do not fit in length) or ENOMEM.
 */
struct labelled_set *labelled_set__new(const struct labelled_params *p);
void labelled_set__free(struct labelled_set *set);

/* Event counts and the figures derived from them. */
struct labelled_score {
	uint64_t windows;
	uint64_t detected;
	uint64_t true_alarms;
	uint64_t false_alarms;
	double delay_sum; /* samples, over detected windows */
	double precision; /* NaN without alarms */
	double recall; /* NaN without windows */
	double f1;
	double mean_delay; /* NaN without detections */
};

struct labelled_eval {
	struct labelled_score kind[LABELLED_KINDS];
	struct labelled_score all;
};

/* Add series s with verdicts v[0..length) to ev (ev zeroed first). */
void labelled_eval__add(struct labelled_eval *ev, const struct labelled_series *s, const bool *v,
			uint32_t length, uint32_t grace);
/* Compute precision, recall, F1 and mean delay from the counts. */
void labelled_eval__finish(struct labelled_eval *ev);

/*
 * The verdict sources of one run: each detector alone by its own cut
 * (score >= 0.5), each detector by the ensemble's adaptive threshold of its
 * scores on the series (its vote, without agreement or persistence), and
 * the ensemble.
 */
enum labelled_source_kind { LABELLED_RAW, LABELLED_ADAPTIVE };
#define LABELLED_SOURCES (2 * DETECTOR_COUNT + 1)
#define LABELLED_SRC_RAW(d) (d)
#define LABELLED_SRC_ADAPTIVE(d) (DETECTOR_COUNT + (d))
#define LABELLED_SRC_ENSEMBLE (2 * DETECTOR_COUNT)

/* "stat", ..., "stat/adaptive", ..., "ensemble". */
const char *labelled_source_name(int src);

struct labelled_report {
	struct labelled_eval src[LABELLED_SOURCES];
	double seconds; /* wall time of the run */
	uint64_t samples; /* series x length */
};

#define LABELLED_MAX_THREADS 64

/*
 * Run every series of the set through its own engine of one slot, exactly as
 * `novamon detect` scores a file (every detector on every sample, GRUs
 * trained synchronously: deterministic, and independent of the threads), with
 * params p (NULL: engine_params_init(); slots, detectors, heavy_budget and
 * sync_train are overridden), on `threads` threads (0: one per online CPU),
 * and evaluate every source. 0, or a negative errno from engine__new().
 */
int labelled_run(const struct labelled_set *set, const struct engine_params *p, unsigned threads,
		 struct labelled_report *out);

#endif /* NOVAMON_ANALYTICS_LABELLED_H */
