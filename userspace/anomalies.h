/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anomalies: every stored series scored once a second by the analytics
 * ensemble (analytics/engine.h), and the anomalies it finds kept with their
 * start, end, score, reason and acknowledgement state.
 *
 *   tick (after the store committed) --> tsdb__each_latest(): newest sample
 *   of every series updated since the last tick --> one engine slot per
 *   series: counters (_total, _count, _sum) scored as per-second rates,
 *   gauges as they are, histogram buckets skipped --> engine__tick() -->
 *   records + novamon_anomaly_score{metric="<name>", <labels>} series.
 *
 * Records: an anomaly opens on the first anomalous verdict of a series,
 * grows while verdicts stay anomalous, and closes after close_after_ticks
 * normal ones. The newest max_records are kept in memory (they are also
 * in the store as score series). Acknowledging one tells the engine whether
 * it was real (model performance, ensemble weights).
 *
 * Threads: anomalies__tick() runs on the tick thread; list, acknowledge and
 * performance may be called from the HTTP handler threads.
 */
#ifndef NOVAMON_ANOMALIES_H
#define NOVAMON_ANOMALIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tick.h"
#include "tsdb/tsdb.h"

struct modelperf_report;

#define ANOMALIES_SCORE_METRIC "novamon_anomaly_score"
#define ANOMALY_LABELS_LEN 1024

struct anomalies_opts {
	size_t max_series; /* engine slots; 0: 65536 */
	size_t max_records; /* kept in memory; 0: 10000 */
	uint32_t close_after_ticks; /* normal verdicts that end an anomaly; 0: 10 */
	uint32_t forget_after_seconds; /* a series idle this long frees its slot; 0: 600 */
	uint32_t seasonal_period_seconds; /* 0: 86400 (daily) */
	uint32_t heavy_budget; /* iforest/gru updates per tick; 0: 256 (2x as many models) */
	bool no_score_series; /* do not write novamon_anomaly_score */
};

struct anomaly_record {
	uint64_t id; /* 1, 2, ...: increasing */
	uint32_t series_id; /* in the store */
	char metric[128];
	/* labels of the scored series, __name__ included: "name\0value\0..." */
	char labels[ANOMALY_LABELS_LEN];
	size_t nlabels;
	int64_t start_ms;
	int64_t end_ms; /* last anomalous tick */
	bool open; /* still anomalous or within close_after_ticks */
	float peak_score;
	float score; /* at the peak */
	float expected; /* at the peak; NaN: unknown */
	float actual;
	float spread;
	float deviation;
	uint8_t detectors; /* mask of detectors that agreed (analytics/detector.h) */
	bool rate; /* the value scored was a per-second rate of a counter */
	bool acknowledged;
	bool false_positive;
	char ack_by[64];
	int64_t ack_ms;
};

/* What anomalies__list() returns; a field 0/NULL/"" does not filter. */
struct anomalies_filter {
	int64_t start_ms; /* overlapping [start_ms, end_ms] */
	int64_t end_ms;
	const char *metric; /* exact metric name */
	const char *vm; /* the series' vm label equals this */
	const char *tenant; /* the series' tenant label equals this */
	const char *state; /* "open", "closed", "acknowledged", "unacknowledged" */
	size_t limit; /* 0: all */
};

struct anomalies;

/* NULL with errno set. db must outlive the object. */
struct anomalies *anomalies__new(struct tsdb *db, const struct anomalies_opts *opts);
void anomalies__free(struct anomalies *a);

/*
 * Raise an "anomaly.raised" log record (spans/logq.h) for every new anomaly
 * from now on; NULL stops it. q must outlive the use.
 */
struct logq;
void anomalies__set_logq(struct anomalies *a, struct logq *q);

/* Score the series updated since the last call; now_ms is the tick's time. */
int anomalies__tick(struct anomalies *a, int64_t now_ms);

/*
 * Score on a thread of its own from now on: the tick sink's flush then only
 * wakes it (a tick arriving while one is scored is skipped and counted), so
 * scoring never delays the tick nor the sinks after it. Returns 0 or a
 * negative errno. Without it the flush scores in line.
 */
int anomalies__start(struct anomalies *a);

/* A tick sink whose flush runs anomalies__tick() and that describes its own metrics. */
struct tick_sink anomalies__sink(struct anomalies *a);

/*
 * Copy the records matching f, newest first, into a malloc'd array (*out,
 * *n). Returns 0 or -ENOMEM.
 */
int anomalies__list(struct anomalies *a, const struct anomalies_filter *f,
		    struct anomaly_record **out, size_t *n);

/*
 * Acknowledge record id, as a real anomaly or a false positive, by who.
 * Returns 0, -ENOENT (no such record, or no longer kept), -EALREADY.
 */
int anomalies__acknowledge(struct anomalies *a, uint64_t id, bool false_positive, const char *who,
			   int64_t now_ms);

/* Model performance per detector (analytics/modelperf.h). */
void anomalies__performance(struct anomalies *a, struct modelperf_report *out);

/* Walk the labels of a record: returns the next name (NULL at the end), *value its value. */
const char *anomaly_record_label(const struct anomaly_record *r, size_t i, const char **value);

#endif /* NOVAMON_ANOMALIES_H */
