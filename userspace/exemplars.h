/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exemplars: a bounded, in-memory store of the exemplars the tick put on
 * its samples, for /api/v1/query_exemplars (api/prom_api.c). Like
 * Prometheus' circular exemplar storage: one ring of a fixed number of
 * exemplars, the oldest overwritten first, nothing on disk.
 *
 * Each exemplar is kept under the series Prometheus would store it on when
 * scraping /metrics as OpenMetrics: a counter's own series, a histogram's
 * `_bucket` series whose `le` holds the exemplar's value.
 *
 * Fed by its tick sink on the tick thread, queried from HTTP threads: one
 * mutex, held for a whole query (a query is a scan of the ring).
 */
#ifndef NOVAMON_EXEMPLARS_H
#define NOVAMON_EXEMPLARS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "tick.h"
#include "tsdb/tsdb.h"

/* Prometheus' default for --storage.exemplars.max-exemplars (config: spans.max_exemplars) */
#define EXEMPLARS_DEFAULT_MAX 100000

struct exemplars;

/* A ring of max exemplars (0: EXEMPLARS_DEFAULT_MAX). NULL with errno set. */
struct exemplars *exemplars__new(size_t max);
/* NULL is fine; returns NULL. */
struct exemplars *exemplars__free(struct exemplars *x);

/*
 * Keep ex for the series name{labels} (labels rendered as metric_labels__add
 * writes them, without braces). Returns 0, -EINVAL or -ENOMEM.
 */
int exemplars__add(struct exemplars *x, const char *name, const char *labels,
		   const struct metric_exemplar *ex);

/*
 * The tick sink keeping the exemplars new in each published set (stamped at
 * the set's time: the older ones a series repeats are already kept).
 */
struct tick_sink exemplars__tick_sink(struct exemplars *x);

/* One vector selector: its matchers, ANDed (a label absent matches as ""). */
struct exemplars_selector {
	const struct tsdb_matcher *m;
	size_t n;
};

/*
 * Called once per series with exemplars in range: its labels (with
 * __name__ first) and its exemplars, oldest first. A non-zero
 * return stops the query and is returned.
 */
typedef int (*exemplars_series_fn)(void *ctx, const struct tsdb_label *labels, size_t nlabels,
				   const struct metric_exemplar *const *ex, size_t nex);

/*
 * The exemplars with start_ms <= timestamp <= end_ms of the series that
 * match any of the nsel selectors, grouped by series (series in label
 * order). Returns 0, -EINVAL (a bad regular expression), -ENOMEM, or what
 * fn returned.
 */
int exemplars__query(struct exemplars *x, const struct exemplars_selector *sel, size_t nsel,
		     int64_t start_ms, int64_t end_ms, exemplars_series_fn fn, void *ctx);

struct exemplars_stats {
	uint64_t appended; /* exemplars kept so far */
	uint64_t in_storage; /* held now (<= max) */
	uint64_t max;
};

void exemplars__stats(struct exemplars *x, struct exemplars_stats *st);

#endif /* NOVAMON_EXEMPLARS_H */
