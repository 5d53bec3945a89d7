/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span: the records novamon's telemetry path hands to exporters: finished
 * trace spans and structured log records, in OpenTelemetry's data model
 * (ids, kinds and status codes have the OTLP numeric values). Produced by
 * userspace/spans/ (synthesis from kernel events, VM lifecycle, daemon
 * events), consumed by api/otlp.c. Plain values, no pointers, so a record
 * can be copied through a ring.
 */
#ifndef NOVAMON_SPAN_H
#define NOVAMON_SPAN_H

#include <stdbool.h>
#include <stdint.h>

#define SPAN_MAX_ATTRS 12
#define SPAN_KEY_LEN 40
#define SPAN_STR_LEN 64
#define SPAN_NAME_LEN 48

/* opentelemetry.proto.trace.v1.Span.SpanKind */
enum span_kind {
	SPAN_KIND_UNSPECIFIED = 0,
	SPAN_KIND_INTERNAL = 1,
	SPAN_KIND_SERVER = 2,
	SPAN_KIND_CLIENT = 3,
	SPAN_KIND_PRODUCER = 4,
	SPAN_KIND_CONSUMER = 5,
};

/* opentelemetry.proto.trace.v1.Status.StatusCode */
enum span_status {
	SPAN_STATUS_UNSET = 0,
	SPAN_STATUS_OK = 1,
	SPAN_STATUS_ERROR = 2,
};

enum span_attr_type {
	SPAN_ATTR_STR = 0,
	SPAN_ATTR_INT = 1,
	SPAN_ATTR_DOUBLE = 2,
	SPAN_ATTR_BOOL = 3,
};

struct span_attr {
	char key[SPAN_KEY_LEN];
	uint8_t type; /* enum span_attr_type */
	union {
		char s[SPAN_STR_LEN];
		int64_t i;
		double d;
		bool b;
	};
};

struct span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8]; /* all zero: a root span */
	char name[SPAN_NAME_LEN];
	uint8_t kind; /* enum span_kind */
	uint8_t status; /* enum span_status */
	uint16_t nattrs;
	uint64_t start_ns; /* Unix epoch, nanoseconds */
	uint64_t end_ns;
	char status_message[SPAN_STR_LEN];
	struct span_attr attrs[SPAN_MAX_ATTRS];
};

/* OTLP SeverityNumber values used by the daemon */
enum log_severity {
	LOG_SEV_DEBUG = 5,
	LOG_SEV_INFO = 9,
	LOG_SEV_WARN = 13,
	LOG_SEV_ERROR = 17,
};

#define LOG_BODY_LEN 256

struct log_record {
	uint64_t time_ns; /* Unix epoch, nanoseconds */
	uint8_t severity; /* enum log_severity */
	bool has_trace; /* trace_id/span_id are set */
	uint16_t nattrs;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	char body[LOG_BODY_LEN];
	struct span_attr attrs[SPAN_MAX_ATTRS];
};

#endif /* NOVAMON_SPAN_H */
