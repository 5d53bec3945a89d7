/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otlp: ship traces, metrics and logs to an OpenTelemetry backend (an
 * OpenTelemetry Collector, Jaeger, Tempo, any OTLP receiver) with OTLP/HTTP
 * and protobuf bodies: POST <endpoint>/v1/traces, /v1/metrics, /v1/logs.
 *
 * otlp__add_span() and otlp__add_log() copy the record into its signal's
 * current batch under a mutex and do no I/O. A writer thread turns every
 * batch of batch_max_items records, or older than batch_max_delay_ms, into
 * one Export{Trace,Logs}ServiceRequest, gzips it (unless compression is
 * off) and pushes it to that signal's spool (spool.h): a bounded on-disk
 * queue under <queue_dir>/<signal> whose sender POSTs the oldest request
 * first. So a backend outage, or a stop and start, loses nothing while a
 * signal's queue holds less than queue_max_bytes; beyond that its oldest
 * requests are dropped (counted).
 *
 * Metrics come from the 1 Hz tick through otlp__metrics_sink(): each
 * published set is encoded on the calling thread into requests of at most
 * batch_max_items data points, with the names, descriptions and labels of
 * /metrics: counters as cumulative monotonic Sums starting at start_ms,
 * gauges as Gauges, histograms as explicit-bucket Histograms (bounds,
 * per-bucket counts, sum, count). The writer compresses and queues them.
 *
 * Failures follow the OTLP/HTTP specification: 429, 502, 503, 504 and
 * transport errors are retried with exponential backoff and jitter,
 * honouring Retry-After (capped at backoff_max_ms); any other 4xx or 5xx
 * drops the request (counted, logged at most once a minute per signal).
 * A 2xx whose body carries a partial_success is logged once per response
 * with the count rejected, which is counted.
 *
 * Every request carries the resource service.name=novamon, service.version,
 * host.name and service.instance.id (by default a UUIDv5 of the host's
 * machine-id, so it survives restarts) and the scope "novamon".
 */
#ifndef NOVAMON_OTLP_H
#define NOVAMON_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spans/span.h"
#include "tick.h"

#define OTLP_QUEUE_MAX_BYTES (128ull << 20) /* per signal */
#define OTLP_BATCH_MAX_ITEMS 512
#define OTLP_BATCH_MAX_DELAY_MS 1000
#define OTLP_TIMEOUT_MS 10000
#define OTLP_BACKOFF_MIN_MS 500
#define OTLP_BACKOFF_MAX_MS 30000
/*
 * Items per signal waiting for the writer in full batches before records are
 * refused: this many batches' worth, and at least OTLP_MIN_PENDING_ITEMS.
 */
#define OTLP_MAX_PENDING_BATCHES 16
#define OTLP_MIN_PENDING_ITEMS 8192

enum otlp_signal {
	OTLP_TRACES,
	OTLP_METRICS,
	OTLP_LOGS,
	OTLP_SIGNALS,
};

enum otlp_compression {
	OTLP_COMPRESSION_GZIP, /* the default: Content-Encoding: gzip */
	OTLP_COMPRESSION_NONE,
};

/* Why items were not delivered: the reason label of novamon_otlp_dropped_items_total. */
enum otlp_drop {
	OTLP_DROP_BACKLOG, /* "backlog": the writer was OTLP_MAX_PENDING_BATCHES behind (or more) */
	OTLP_DROP_QUEUE_FULL, /* "queue_full": oldest requests dropped to bound the queue */
	OTLP_DROP_NON_RETRYABLE, /* "non_retryable": an answer the spec says not to retry */
	OTLP_DROP_ERROR, /* "error": encoding, compression or queue file I/O failed */
	OTLP_DROP_MAX,
};

struct otlp_opts {
	const char *endpoint; /* required: http:// or https:// base URL, e.g. http://collector:4318 */
	const char *queue_dir; /* required: created if missing; a directory per signal inside */
	const char *const *headers; /* "Name: value" each (e.g. "Authorization: Bearer x") */
	size_t nheaders;
	enum otlp_compression compression;
	bool tls_skip_verify; /* true: do not verify the server's certificate and name */
	const char *ca_file; /* PEM bundle to verify the server with; NULL or "": the system's */
	uint64_t queue_max_bytes; /* per signal; 0: OTLP_QUEUE_MAX_BYTES */
	size_t batch_max_items; /* spans, log records or data points per request; 0: default */
	int64_t batch_max_delay_ms; /* 0: OTLP_BATCH_MAX_DELAY_MS */
	int64_t timeout_ms; /* per request; 0: OTLP_TIMEOUT_MS */
	int64_t backoff_min_ms; /* 0: OTLP_BACKOFF_MIN_MS */
	int64_t backoff_max_ms; /* 0: OTLP_BACKOFF_MAX_MS */
	int64_t start_ms; /* wall clock start of cumulative sums (the daemon's start); 0: now */
	const char *host_name; /* NULL: gethostname() */
	const char *instance_id; /* NULL: UUIDv5 of /etc/machine-id, or a random UUID */
};

struct otlp_signal_stats {
	uint64_t pending_items; /* in memory, not yet in the queue */
	uint64_t queued_bytes; /* in queue files on disk */
	uint64_t queued_files;
	uint64_t queued_items;
	uint64_t sent_items; /* acknowledged with a 2xx, less the partial-success rejections */
	uint64_t sent_requests;
	uint64_t rejected_items; /* rejected by partial_success responses */
	uint64_t partial_responses; /* 2xx responses with a partial_success */
	uint64_t failed_requests; /* answers other than 2xx, and transport errors */
	uint64_t retries;
	uint64_t dropped_items[OTLP_DROP_MAX];
	int last_status; /* of the last answer, 0 for a transport error or none yet */
};

struct otlp_stats {
	struct otlp_signal_stats signal[OTLP_SIGNALS];
};

struct otlp;

/* "traces", "metrics", "logs" (the URL path and the signal label); NULL when out of range. */
const char *otlp_signal_name(enum otlp_signal signal);
/* "backlog", "queue_full", "non_retryable", "error"; NULL when out of range. */
const char *otlp_drop_name(enum otlp_drop reason);

/*
 * Open the three queues (the requests already there are sent first) and
 * start the writer and the senders. Returns the exporter or NULL with errno
 * set: EINVAL for a missing or non-http(s) endpoint, a missing queue_dir or
 * a header without ':'; the error of reading ca_file; else that of creating
 * the directories or the threads.
 */
struct otlp *otlp__start(const struct otlp_opts *opts);

/*
 * Queue one finished span (copied). Thread-safe, no I/O. Attributes past
 * SPAN_MAX_ATTRS, or with an empty key or unknown type, are sent as
 * dropped_attributes_count. Returns 0, -EINVAL for NULL arguments, -ENOBUFS
 * when the writer's backlog is full (OTLP_MAX_PENDING_BATCHES; the span is
 * dropped and counted), -ENOMEM.
 */
int otlp__add_span(struct otlp *o, const struct span *span);

/* Queue one log record (copied), observed now; as otlp__add_span(). */
int otlp__add_log(struct otlp *o, const struct log_record *rec);

/*
 * Queue the metrics of set (not kept after the call) as of t_ms (wall
 * clock). Returns the number of data points that could not be queued
 * (unparsable labels, backlog full, out of memory), or -EINVAL.
 */
int otlp__add_metrics(struct otlp *o, const struct metric_set *set, int64_t t_ms);

/* Write the current span and log batches to the queues now (on the writer thread). */
void otlp__flush(struct otlp *o);

/* A snapshot of the counters. */
void otlp__stats(struct otlp *o, struct otlp_stats *st);

/*
 * Write what is in memory to the queues, abort the requests in flight, stop
 * every thread and free. The queue files stay for the next start. NULL is
 * fine.
 */
void otlp__stop(struct otlp *o);

/*
 * A tick sink (userspace/tick.h): every published set to otlp__add_metrics(),
 * and the exporter's own counters into /metrics: novamon_otlp_queue_bytes,
 * novamon_otlp_sent_items_total, novamon_otlp_rejected_items_total,
 * novamon_otlp_retries_total (by signal) and
 * novamon_otlp_dropped_items_total (by signal and reason).
 */
struct tick_sink otlp__metrics_sink(struct otlp *o);

#endif /* NOVAMON_OTLP_H */
