/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detector: the names and ids of the anomaly detectors the engine runs, for
 * bitmasks (1u << id), per-detector arrays and the command line.
 */
#ifndef NOVAMON_ANALYTICS_DETECTOR_H
#define NOVAMON_ANALYTICS_DETECTOR_H

enum detector_id {
	DETECTOR_STAT, /* statdet: robust EWMA statistics, all series, SIMD */
	DETECTOR_SEASONAL, /* seasonal: profile per period, residual scored, SIMD */
	DETECTOR_IFOREST, /* iforest: isolation forest over window features */
	DETECTOR_GRU, /* gru: recurrent forecaster, scored on prediction error */
	DETECTOR_COUNT,
};

/* Every detector: the mask the engine runs by default. */
#define DETECTOR_ALL ((1u << DETECTOR_COUNT) - 1)

/* "stat", "seasonal", "iforest", "gru"; "ensemble" for DETECTOR_COUNT; NULL otherwise. */
const char *detector_name(enum detector_id id);

/*
 * The id of a detector name ("lstm" is an alias of "gru"), DETECTOR_COUNT
 * for "ensemble", or -EINVAL for anything else (NULL included).
 */
int detector_parse(const char *name);

#endif /* NOVAMON_ANALYTICS_DETECTOR_H */
