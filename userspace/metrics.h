/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: an immutable, self-contained snapshot of every series the daemon
 * exports at one instant, and the store that publishes the latest snapshot.
 *
 * The 1 Hz tick builds a new struct metric_set from scratch, then hands it to
 * metric_store__publish(). Readers (the HTTP server, `novamon top` through
 * HTTP) take a reference with metric_store__get() and render it without
 * holding any lock; the set is never modified once published. Building a set
 * allocates, which is fine at 1 Hz and keeps the per-event path free of it.
 */
#ifndef NOVAMON_METRICS_H
#define NOVAMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

/*
 * An exemplar (OpenMetrics, OTLP): one observation behind a sample and the
 * trace that covered it. For a counter, value is the increment it saw; for a
 * histogram, an observed value (exposition puts it on its bucket).
 */
struct metric_exemplar {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	double value;
	int64_t timestamp_ms; /* Unix ms */
};

/*
 * One series. labels holds the rendered, escaped label pairs without braces,
 * e.g. `vm="web-1",vcpu="0"`, or "" for a series with no labels; label values
 * are escaped by metric_labels__add().
 *
 * Counters and gauges use value. Histograms use buckets (per-bucket counts,
 * not cumulative; family->nbounds + 1 entries, the last one is +Inf), sum and
 * count.
 */
struct metric_series {
	char *labels;
	double value;
	uint64_t *buckets;
	double sum;
	uint64_t count;
	bool has_exemplar;
	struct metric_exemplar exemplar; /* when has_exemplar */
};

struct metric_family {
	char *name;
	char *help;
	enum metric_type type;
	const double *bounds; /* histogram upper bounds (le), ascending; static storage */
	unsigned int nbounds;
	struct metric_series *series;
	size_t nseries;
	size_t cap;
};

struct metric_set {
	struct metric_family *families;
	size_t nfamilies;
	size_t cap;
	int64_t timestamp_ms; /* wall clock of the tick that built the set */
	int refcount; /* owned by metric_store; 1 while unpublished */
};

/* A small builder for the label string of one series. */
struct metric_labels {
	char buf[512];
	size_t len;
	int truncated;
};

/* Start an empty label list. */
void metric_labels__init(struct metric_labels *l);
/*
 * Append name="value", escaping \, " and newline as the exposition format
 * requires. A list that would exceed the buffer is marked truncated and
 * keeps what fit; metric_family__add_*() refuse truncated lists (-E2BIG).
 */
void metric_labels__add(struct metric_labels *l, const char *name, const char *value);
void metric_labels__addf(struct metric_labels *l, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Returns a new empty set, or NULL with errno set. */
struct metric_set *metric_set__new(int64_t timestamp_ms);
/* Frees a set that was never published; returns NULL. */
struct metric_set *metric_set__free(struct metric_set *set);

/*
 * Find the family called name, or add it. help is copied. For histograms,
 * bounds/nbounds must outlive the set (use static arrays). Returns the family
 * or NULL with errno set (ENOMEM, or EINVAL when name exists with another type).
 *
 * Also EINVAL for a name that is not a valid Prometheus metric name, an empty
 * or NULL help (promtool rejects families without help text), or histogram
 * bounds that are not finite and strictly ascending (+Inf is implied), or that
 * differ from those the family was created with. Adding a family may move
 * set->families: do not keep a family pointer across calls that add one.
 * Series labels are not checked for duplicates; that is the caller's job.
 */
struct metric_family *metric_set__family(struct metric_set *set, const char *name, const char *help,
					 enum metric_type type, const double *bounds,
					 unsigned int nbounds);

/* Add a counter or gauge series. Returns 0 or a negative errno. */
int metric_family__add_value(struct metric_family *fam, const struct metric_labels *labels,
			     double value);
/*
 * Add a histogram series. buckets has fam->nbounds + 1 per-bucket counts
 * (copied). count is the sum of buckets. Returns 0 or a negative errno.
 */
int metric_family__add_histogram(struct metric_family *fam, const struct metric_labels *labels,
				 const uint64_t *buckets, double sum);

/*
 * Attach ex to the series fam added last (counters and histograms only:
 * OpenMetrics has no gauge exemplars). Returns 0, -ENOENT without a series,
 * or -EINVAL for a gauge or an all-zero trace ID.
 */
int metric_family__set_exemplar(struct metric_family *fam, const struct metric_exemplar *ex);

/*
 * Add one counter or gauge series to family name, creating the family if
 * needed; labels may be NULL for a series without labels. Returns 0 or a
 * negative errno.
 */
int metric_set__add_value(struct metric_set *set, const char *name, const char *help,
			  enum metric_type type, const struct metric_labels *labels, double v);

/* Look up a family by name; NULL if absent. */
const struct metric_family *metric_set__find(const struct metric_set *set, const char *name);

/*
 * metric_store: holds the latest published set and the latest /health JSON.
 * Both are replaced together by publish; readers get counted references.
 */
struct metric_store;

struct metric_store *metric_store__new(void);
void metric_store__free(struct metric_store *store);
/* Takes ownership of set and health_json (malloc'd). */
void metric_store__publish(struct metric_store *store, struct metric_set *set, char *health_json);
/*
 * Returns a reference to the latest set (NULL before the first publish) and,
 * if health_json is not NULL, a malloc'd copy of the latest health JSON (or
 * NULL). Release the set with metric_store__put().
 */
struct metric_set *metric_store__get(struct metric_store *store, char **health_json);
void metric_store__put(struct metric_store *store, struct metric_set *set);

/*
 * Format v so that Prometheus reads back exactly v (NaN, +Inf, -Inf,
 * integers without exponent, else the shortest round-tripping %.15-17g).
 * Returns the length written into buf (give it at least 32 bytes).
 */
int metric_format_double(char *buf, size_t len, double v);

#endif /* NOVAMON_METRICS_H */
