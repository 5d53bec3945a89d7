/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logq: the daemon's structured log records on their way out (OTLP logs,
 * the spans file): a bounded multi-producer, single-consumer queue of
 * struct log_record (span.h). Any thread calls logq__emit() for a daemon
 * event (capture attach/detach, VM appeared/disappeared, anomaly raised);
 * the span synthesizer drains the queue with logq__drain() and hands the
 * records to its sinks.
 *
 * Lock-free (Vyukov's bounded queue: a sequence number per cell), so an
 * emit never waits for the consumer; a full queue drops the record and
 * counts it (logq__dropped()). Each record carries the attribute
 * novamon.event = event, and the trace and span IDs of the operation it
 * belongs to when the caller gives them.
 *
 * Masking (logq__new(..., mask = true)): before a record is queued, IPv4
 * and IPv6 addresses in its body and string attributes become "ip-<hash>",
 * and user names (the values of attributes named user, user.name,
 * user.id, enduser.id or username, and of "user=" / "username=" in the
 * body) become "user-<hash>". The hash is keyed with a random salt per
 * queue, so one value masks the same way within a run (records can still
 * be correlated) and cannot be looked up in a table.
 */
#ifndef NOVAMON_LOGQ_H
#define NOVAMON_LOGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "span.h"

/* The novamon.event values of the daemon's own events. */
#define LOGQ_EVENT_CAPTURE_ATTACH "capture.attach"
#define LOGQ_EVENT_CAPTURE_DETACH "capture.detach"
#define LOGQ_EVENT_VM_APPEARED "vm.appeared"
#define LOGQ_EVENT_VM_DISAPPEARED "vm.disappeared"
#define LOGQ_EVENT_ANOMALY_RAISED "anomaly.raised"

/* One attribute given to logq__emit(); build with LOGQ_STR/LOGQ_INT/LOGQ_DOUBLE. */
struct logq_attr {
	const char *key;
	uint8_t type; /* enum span_attr_type */
	const char *s;
	int64_t i;
	double d;
};

#define LOGQ_STR(k, v) ((struct logq_attr){ .key = (k), .type = SPAN_ATTR_STR, .s = (v) })
#define LOGQ_INT(k, v) ((struct logq_attr){ .key = (k), .type = SPAN_ATTR_INT, .i = (v) })
#define LOGQ_DOUBLE(k, v) ((struct logq_attr){ .key = (k), .type = SPAN_ATTR_DOUBLE, .d = (v) })

struct logq;

/*
 * A queue of cap records (a power of two >= 2) masking personal data when
 * mask is true. Returns NULL with errno set (EINVAL for a bad cap).
 */
struct logq *logq__new(uint32_t cap, bool mask);
/* Free q (no producer may still use it); NULL is fine. Returns NULL. */
struct logq *logq__free(struct logq *q);

/*
 * Queue a record: severity (enum log_severity), event (the novamon.event
 * value, required), trace_id/span_id of the span it belongs to (both NULL
 * when none; all-zero IDs count as none), attrs[nattrs] (at most
 * SPAN_MAX_ATTRS - 1 are kept; longer keys and strings are truncated), and
 * a printf-style body. Thread safe. q NULL is a no-op returning 0 (logs
 * off). Returns 0, or -ENOSPC when the queue is full (counted as dropped).
 */
int logq__emit(struct logq *q, uint8_t severity, const char *event, const uint8_t *trace_id,
	       const uint8_t *span_id, const struct logq_attr *attrs, size_t nattrs,
	       const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* Consumer (one thread): move up to max records into out. Returns how many. */
size_t logq__drain(struct logq *q, struct log_record *out, size_t max);

/* Records queued and dropped so far (any thread). */
uint64_t logq__emitted(const struct logq *q);
uint64_t logq__dropped(const struct logq *q);

/*
 * Mask personal data in the string in (see above) into out[outlen] with
 * salt; is_user says the whole string is a user name. Exposed for tests.
 */
void logq_mask(const char *in, bool is_user, uint64_t salt, char *out, size_t outlen);

#endif /* NOVAMON_LOGQ_H */
