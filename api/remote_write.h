/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write: ship samples to a Prometheus-compatible backend (Prometheus
 * with --web.enable-remote-write-receiver, Mimir, VictoriaMetrics) with the
 * remote-write 1.0 protocol.
 *
 * remote_write__enqueue() appends to an in-memory batch under a mutex and
 * never does I/O. A writer thread turns every full batch (batch_max_samples)
 * or batch older than batch_max_delay_ms into one queue file
 * <queue_dir>/<seq>-<samples>.rw holding the request body exactly as sent
 * (a snappy-compressed prometheus.WriteRequest), written to a temporary name,
 * fsync'd and renamed. A sender thread POSTs the oldest file with
 * Content-Encoding: snappy, Content-Type: application/x-protobuf and
 * X-Prometheus-Remote-Write-Version: 0.1.0 and deletes it only after a 2xx.
 * So a backend outage, or a stop and start, loses nothing while the queue
 * holds less than queue_max_bytes; beyond that the oldest files are dropped
 * (counted). Delivery is at least once: a crash between the backend's 2xx
 * and the delete resends that batch (receivers accept exact duplicates).
 *
 * Retries: 5xx, 429 and network errors are retried forever with exponential
 * backoff from backoff_min_ms doubling to backoff_max_ms, with jitter (each
 * wait is uniform in [d/2, d]); a Retry-After header (seconds or an HTTP
 * date) on a 429/5xx is honoured instead, capped at backoff_max_ms. Any
 * other 4xx drops the batch (counted): the backend will never take it.
 * The queue and the sender thread are the spool's (spool.h).
 */
#ifndef NOVAMON_REMOTE_WRITE_H
#define NOVAMON_REMOTE_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tick.h"
#include "tsdb/tsdb.h"

#define REMOTE_WRITE_QUEUE_MAX_BYTES (512ull << 20)
#define REMOTE_WRITE_BATCH_MAX_SAMPLES 2000
#define REMOTE_WRITE_BATCH_MAX_DELAY_MS 1000
#define REMOTE_WRITE_TIMEOUT_MS 30000
#define REMOTE_WRITE_BACKOFF_MIN_MS 30
#define REMOTE_WRITE_BACKOFF_MAX_MS 30000
/* Full batches waiting for the writer thread before enqueue refuses samples. */
#define REMOTE_WRITE_MAX_PENDING_BATCHES 64

struct remote_write_opts {
	const char *url; /* required: http:// or https:// */
	const char *queue_dir; /* required: created if missing; one client per directory */
	uint64_t queue_max_bytes; /* 0: REMOTE_WRITE_QUEUE_MAX_BYTES */
	size_t batch_max_samples; /* 0: REMOTE_WRITE_BATCH_MAX_SAMPLES */
	int64_t batch_max_delay_ms; /* 0: REMOTE_WRITE_BATCH_MAX_DELAY_MS */
	const char *const *headers; /* "Name: value" each (e.g. "Authorization: Bearer x") */
	size_t nheaders;
	bool tls_skip_verify; /* true: do not verify the server's certificate and name */
	int64_t timeout_ms; /* per request; 0: REMOTE_WRITE_TIMEOUT_MS */
	int64_t backoff_min_ms; /* 0: REMOTE_WRITE_BACKOFF_MIN_MS */
	int64_t backoff_max_ms; /* 0: REMOTE_WRITE_BACKOFF_MAX_MS */
};

struct remote_write_stats {
	uint64_t queued_bytes; /* in queue files on disk */
	uint64_t queued_files;
	uint64_t pending_samples; /* in memory, not yet in a queue file */
	uint64_t sent_samples; /* acknowledged with a 2xx */
	uint64_t sent_batches;
	uint64_t failed_requests; /* answers other than 2xx and transport errors */
	uint64_t retries; /* requests repeated after a retryable failure */
	uint64_t dropped_samples; /* 4xx answers, queue overflow, refused enqueues */
	uint64_t dropped_batches;
	int last_status; /* HTTP status of the last answer, 0 for a transport error */
};

struct remote_write;

/*
 * Open the queue directory (the files already there are sent first, oldest
 * first), and start the writer and sender threads. Returns the client or
 * NULL with errno set (EINVAL for missing url/queue_dir, or the error of
 * creating the directory or the threads).
 */
struct remote_write *remote_write__start(const struct remote_write_opts *opts);

/*
 * Add one sample (labels need __name__; copied, need not be sorted) to the
 * current batch. Thread-safe, no I/O. Returns 0, -EINVAL for bad arguments,
 * -ENOBUFS when the writer thread is REMOTE_WRITE_MAX_PENDING_BATCHES behind
 * (the sample is dropped and counted), -ENOMEM.
 */
int remote_write__enqueue(struct remote_write *rw, const struct tsdb_label *labels, size_t nlabels,
			  int64_t t_ms, double v);

/* Write the current batch to the queue now (asynchronously, on the writer thread). */
void remote_write__flush(struct remote_write *rw);

/* A snapshot of the counters. */
void remote_write__stats(struct remote_write *rw, struct remote_write_stats *st);

/*
 * Write what is in memory to the queue, abort a request in flight, stop both
 * threads and free. The queue files stay for the next start. NULL is fine.
 */
void remote_write__stop(struct remote_write *rw);

/* A tick sink (userspace/tick.h) shipping every tick sample through rw, with its counters. */
struct tick_sink remote_write__sink(struct remote_write *rw);

#endif /* NOVAMON_REMOTE_WRITE_H */
