/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool: a durable, bounded on-disk queue of HTTP request bodies and the
 * thread that POSTs them, oldest first. The remote-write and OTLP exporters
 * batch and encode; the spool keeps and delivers.
 *
 * spool__push() writes one body, exactly as it will be sent, to
 * <dir>/<seq>-<items>.<ext> through a temporary name, fsync and rename, so a
 * crash leaves either the whole file or none. The sender thread POSTs the
 * oldest file and deletes it after a 2xx, or after an answer the retry
 * policy says will never succeed (counted as dropped). Anything else (the
 * policy's retryable statuses, transport errors) is retried forever with
 * exponential backoff from backoff_min_ms doubling to backoff_max_ms, each
 * wait uniform in [d/2, d] (jitter); a Retry-After header (seconds or an
 * HTTP date) on a retryable answer is honoured instead, capped at
 * backoff_max_ms. Files left by a previous run are sent first.
 *
 * The queue holds at most max_bytes: a push that does not fit drops the
 * oldest files first (counted), never the one being sent. Delivery is at
 * least once: a crash between the server's 2xx and the delete resends that
 * file.
 *
 * Each file's suffix names its content encoding (struct spool_encoding), so
 * a queue written with one setting (say gzip) is still sent with the right
 * Content-Encoding after a restart with another.
 */
#ifndef NOVAMON_SPOOL_H
#define NOVAMON_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_TIMEOUT_MS 30000
#define SPOOL_BACKOFF_MIN_MS 30
#define SPOOL_BACKOFF_MAX_MS 30000
#define SPOOL_MAX_ENCODINGS 4
/* Bytes of an answer's body kept for spool_opts.on_reply; the rest is read and discarded. */
#define SPOOL_REPLY_MAX (64u << 10)

/* Why items left the queue unsent. */
enum spool_drop {
	SPOOL_DROP_REFUSED, /* an answer the retry policy says will never succeed */
	SPOOL_DROP_OVERFLOW, /* the oldest files, dropped to stay within max_bytes */
	SPOOL_DROP_IO, /* a file that could not be written, or read back */
	SPOOL_DROP_MAX,
};

/* A content encoding: the suffix of its files and the header they are sent with. */
struct spool_encoding {
	const char *ext; /* letters and digits, e.g. "rw", "gz", "pb" */
	const char *header; /* e.g. "Content-Encoding: gzip"; NULL: none */
};

/* One answer (or transport error) to a POST of one queue file. */
struct spool_reply {
	long status; /* HTTP status; 0 for a transport error */
	int64_t retry_after_ms; /* -1: no Retry-After */
	const char *body; /* the first SPOOL_REPLY_MAX bytes of the body, not NUL-terminated */
	size_t body_len;
	uint64_t items; /* what the file holds, as given to spool__push() */
};

/* The retry policy: true when a non-2xx status is worth repeating the request for. */
typedef bool (*spool_retry_fn)(long status);

/* Prometheus remote-write 1.0: retry 5xx and 429, drop any other 4xx. */
bool spool_retry_remote_write(long status);
/* OTLP/HTTP: retry 429, 502, 503 and 504 only; any other 4xx or 5xx is dropped. */
bool spool_retry_otlp(long status);

struct spool_opts {
	const char *url; /* required: http:// or https:// */
	const char *dir; /* required: created if missing (not its parents); one spool per directory */
	/* required, 1..SPOOL_MAX_ENCODINGS: encodings[0] for new files, all of them for old ones */
	const struct spool_encoding *encodings;
	size_t nencodings;
	const char *const *headers; /* sent with every request, "Name: value" each */
	size_t nheaders;
	uint64_t max_bytes; /* required, > 0 */
	int64_t timeout_ms; /* per request; <= 0: SPOOL_TIMEOUT_MS */
	int64_t backoff_min_ms; /* <= 0: SPOOL_BACKOFF_MIN_MS */
	int64_t backoff_max_ms; /* <= 0: SPOOL_BACKOFF_MAX_MS */
	bool tls_skip_verify; /* do not verify the server's certificate and name */
	const char *ca_file; /* PEM bundle to verify the server with; NULL: the system's */
	spool_retry_fn retryable; /* NULL: spool_retry_remote_write; transport errors always retry */
	/*
	 * Called on the sender thread after every attempt, before the file is
	 * deleted or retried (e.g. to read an OTLP partial_success). NULL: none.
	 */
	void (*on_reply)(void *ctx, const struct spool_reply *reply);
	void *ctx;
};

struct spool_stats {
	uint64_t queued_bytes; /* in queue files on disk */
	uint64_t queued_files;
	uint64_t queued_items;
	uint64_t sent_items; /* acknowledged with a 2xx */
	uint64_t sent_files;
	uint64_t failed_requests; /* answers other than 2xx, and transport errors */
	uint64_t retries; /* requests repeated after a retryable failure */
	uint64_t dropped_items[SPOOL_DROP_MAX];
	uint64_t dropped_files[SPOOL_DROP_MAX];
	int last_status; /* of the last answer, 0 for a transport error or none yet */
};

struct spool;

/*
 * Open (create) the queue directory, index the files a previous run left
 * (removing half-written ones) and start the sender thread. Returns the
 * spool or NULL with errno set: EINVAL for missing or bad options, else the
 * error of creating the directory, reading it, or starting the thread.
 */
struct spool *spool__start(const struct spool_opts *opts);

/*
 * Queue one request body (copied to disk, not kept) holding items items,
 * with encodings[0]. Blocks for the write and fsyncs; call it from a
 * writer thread, not a latency-sensitive one. Thread-safe. Returns 0, or
 * -EINVAL (len 0), -E2BIG (larger than max_bytes), -ENOSPC (only the file
 * in flight is left and the body still does not fit) or the write's
 * errno; on every error the items are counted as dropped by the spool,
 * so the caller must not count them again.
 */
int spool__push(struct spool *sp, const void *body, size_t len, uint64_t items);

/* A snapshot of the counters. */
void spool__stats(struct spool *sp, struct spool_stats *st);

/*
 * Abort a request in flight, stop the sender and free. Queue files stay
 * for the next start. NULL is fine.
 */
void spool__stop(struct spool *sp);

#endif /* NOVAMON_SPOOL_H */
