/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tsdb: the local time-series store at 1-second resolution.
 *
 * Every series is keyed by its sorted label set (with __name__), hashed, and
 * found through an inverted index (label name=value -> postings). Samples are
 * held in compressed chunks (Gorilla: delta-of-delta timestamps, XOR floats).
 * Appends are written to a write-ahead log first (tsdb/wal.h) when the store
 * has a directory; tsdb__commit() makes everything appended so far durable
 * (fdatasync): an acknowledged sample survives kill -9. Periodic checkpoints
 * bound replay time. Older data is downsampled into 1-minute and 1-hour tiers
 * (min, max, sum, count) and the raw tier is trimmed to its retention.
 *
 * Thread safety: any number of threads may append, commit and query; the
 * store takes its own locks.
 */
#ifndef NOVAMON_TSDB_H
#define NOVAMON_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TSDB_MAX_LABELS 64
#define TSDB_NAME_LABEL "__name__"

struct tsdb_label {
	const char *name;
	const char *value;
};

enum tsdb_match_type {
	TSDB_MATCH_EQ, /* =  */
	TSDB_MATCH_NEQ, /* != */
	TSDB_MATCH_RE, /* =~ fully anchored POSIX ERE, as Prometheus anchors RE2 */
	TSDB_MATCH_NRE, /* !~ */
};

struct tsdb_matcher {
	enum tsdb_match_type type;
	const char *name;
	const char *value;
};

/* A retention rule: series whose metric name starts with prefix keep raw
 * samples for raw_ms, 1-minute aggregates for m1_ms, 1-hour ones for h1_ms. */
struct tsdb_retention {
	const char *prefix; /* "" matches every series */
	int64_t raw_ms;
	int64_t m1_ms;
	int64_t h1_ms;
};

struct tsdb_opts {
	const char *dir; /* NULL: in memory only, no WAL */
	const char
		*key_file; /* NULL: no encryption; else 32 raw bytes or 64 hex chars: AES-256-GCM */
	const struct tsdb_retention *retention; /* most specific (longest) prefix wins */
	size_t nretention; /* 0: raw 24 h, 1m 30 d, 1h 400 d for everything */
	int64_t checkpoint_interval_ms; /* 0: 5 min */
};

struct tsdb;

/*
 * Open (creating dir if needed) and replay the WAL on top of the last
 * checkpoint. A corrupted or truncated WAL tail is reported in err (when
 * errlen > 0) as a warning and skipped: on success err[0] != '\0' is that
 * warning (and tsdb_stats.wal_corruptions_total counts it).
 * Returns NULL with errno set and a message in err on failure.
 */
struct tsdb *tsdb__open(const struct tsdb_opts *opts, char *err, size_t errlen);
/* Checkpoint (when on disk) and free; NULL is fine. */
void tsdb__close(struct tsdb *db);

/*
 * Append one sample. labels need not be sorted; they must contain __name__,
 * names must match [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__" except
 * __name__), values be valid UTF-8 and non-empty (an empty value means "no
 * label" and is dropped, as in Prometheus). Returns 0, -EINVAL for a bad label
 * set, -ERANGE for a sample older than the series' last one (out of order;
 * an equal timestamp with the same value is accepted as a duplicate and
 * ignored, with another value -EEXIST), -ENOMEM.
 */
int tsdb__append(struct tsdb *db, const struct tsdb_label *labels, size_t nlabels, int64_t t_ms,
		 double v);
/*
 * Series references, as Prometheus's appender has them: resolve a label set
 * once with tsdb__ref() (same rules as tsdb__append(); the series is created
 * if new) and append by reference with tsdb__append_ref(), which skips the
 * hashing and label comparison. A reference stays valid until retention or
 * expiry deletes the series; ids are never reused, so a stale reference gets
 * -ENOENT (resolve again), never another series.
 */
int64_t tsdb__ref(struct tsdb *db, const struct tsdb_label *labels, size_t nlabels);
int tsdb__append_ref(struct tsdb *db, uint32_t ref, int64_t t_ms, double v);

/* Make every append so far durable (WAL fdatasync). Returns 0 or -errno. */
int tsdb__commit(struct tsdb *db);

/* One sample for tsdb__append_batch(). */
struct tsdb_sample {
	const struct tsdb_label *labels;
	size_t nlabels;
	int64_t t_ms;
	double v;
};

/*
 * Append n samples under one lock acquisition, each with tsdb__append()'s
 * rules; errs (may be NULL) receives each sample's result. Returns the count
 * stored (duplicates included) or -EINVAL.
 */
int tsdb__append_batch(struct tsdb *db, const struct tsdb_sample *s, size_t n, int *errs);

/* Write a checkpoint now (no-op in memory). Returns 0 or -errno. */
int tsdb__checkpoint(struct tsdb *db);

/* One series with its samples in the selected range, timestamps ascending. */
struct tsdb_series_data {
	struct tsdb_label *labels; /* sorted by name, __name__ included */
	size_t nlabels;
	int64_t *t;
	double *v;
	size_t n;
};

struct tsdb_result {
	struct tsdb_series_data *series; /* sorted by label set */
	size_t n;
};

/*
 * Select series matching every matcher (at least one matcher must not match
 * the empty string, as in Prometheus; else -EINVAL) with their samples in
 * [mint, maxt] (ms). Series without samples in range are omitted unless
 * mint > maxt, which asks for series metadata only (no samples). Ranges
 * older than the raw retention are served from the downsampled tiers (the
 * average per interval: sum/count). Returns 0 or -errno; *out to be freed
 * with tsdb_result__free().
 */
int tsdb__select(struct tsdb *db, const struct tsdb_matcher *m, size_t nm, int64_t mint,
		 int64_t maxt, struct tsdb_result **out);
void tsdb_result__free(struct tsdb_result *r);

/*
 * Call fn for every series whose newest sample is newer than since_ms, with
 * its id (stable for the series' life, never reused), its labels (sorted,
 * valid during the call only) and that sample. Runs under the store's read
 * lock: fn must be quick and must not call back into the store. This is how
 * once-a-second consumers (anomaly scoring) see every stored series without
 * a hook on the append path. Returns the number of calls.
 */
size_t tsdb__each_latest(struct tsdb *db, int64_t since_ms,
			 void (*fn)(void *ctx, uint32_t id, const struct tsdb_label *labels,
				    size_t nlabels, int64_t t_ms, double v),
			 void *ctx);

/*
 * Label names (or values of one label name) of the series matching m (nm may
 * be 0: all series) with samples in [mint, maxt], sorted, unique. *out is a
 * NULL-terminated malloc'd array of malloc'd strings: free with
 * tsdb_strings__free(). Returns the count or -errno.
 */
int tsdb__label_names(struct tsdb *db, const struct tsdb_matcher *m, size_t nm, int64_t mint,
		      int64_t maxt, char ***out);
int tsdb__label_values(struct tsdb *db, const char *name, const struct tsdb_matcher *m, size_t nm,
		       int64_t mint, int64_t maxt, char ***out);
void tsdb_strings__free(char **s);

struct tsdb_stats {
	uint64_t series;
	uint64_t samples; /* raw samples held */
	uint64_t chunk_bytes; /* compressed bytes of raw samples */
	uint64_t appended_total;
	uint64_t out_of_order_total;
	uint64_t wal_bytes;
	uint64_t wal_corruptions_total; /* corrupted records skipped at replay */
	uint64_t checkpoints_total;
	uint64_t memory_bytes; /* approximate heap held */
};

void tsdb__stats(struct tsdb *db, struct tsdb_stats *st);

/*
 * Housekeeping, called about once a second: cut closed chunks, downsample and
 * trim by retention, checkpoint when due. now_ms is wall-clock.
 */
int tsdb__maintain(struct tsdb *db, int64_t now_ms);

#endif /* NOVAMON_TSDB_H */
