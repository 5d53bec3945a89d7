/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: the two write routes into the store.
 *
 *   POST /api/metrics    JSON samples (below)
 *   POST /api/v1/write   Prometheus remote-write 1.0 (snappy + protobuf)
 *
 * Both append through tsdb__append_batch() and call tsdb__commit() before
 * answering: a 2xx means every accepted sample is durable.
 *
 * POST /api/metrics takes one object or an array of objects:
 *
 *   {"name":"cpu.usage","value":75.5,"timestamp":"2026-11-22T08:00:00Z",
 *    "tags":{"host":"node-1"}}
 *
 *   name       required string, mapped to a Prometheus metric name: every
 *              character outside [a-zA-Z0-9_:] becomes '_' ("cpu.usage" ->
 *              "cpu_usage", "disk.io/s" -> "disk_io_s"), and a leading digit
 *              gets a '_' prefix ("5xx.rate" -> "_5xx_rate").
 *   value      required number; the strings "NaN", "+Inf", "Inf" and "-Inf"
 *              stand for the values JSON cannot spell.
 *   timestamp  optional (default: the time of the request). An RFC 3339 string
 *              ("2026-11-22T08:00:00Z", "2026-11-22T08:00:00.250+02:00"; the
 *              fraction is kept to the millisecond), or a number: unix seconds
 *              (fractions kept to the ms), or unix milliseconds when it is
 *              greater than 1e12 (1e12 s is the year 33658, 1e12 ms is
 *              2001-09-09, so the two ranges cannot be confused for any
 *              real clock). null is the same as absent.
 *   tags       optional object of string values, each tag a label. Keys are
 *              mapped like names but ':' also becomes '_' (label names have
 *              no ':'). An empty value means "no label" and is dropped, as in
 *              Prometheus.
 *
 * A name or tag key that maps to something starting with "__" is rejected
 * (Prometheus reserves that prefix), as are two keys mapping to the same
 * label, more than INGEST_MAX_TAGS tags, unknown fields (a misspelt "tag"
 * would otherwise silently lose labels) and strings with a NUL.
 *
 * Answers:
 *   200 {"accepted":N,"rejected":[]}
 *       everything stored (also for an empty array).
 *   200 {"accepted":N,"rejected":[{"index":i,"error":"..."},...],
 *        "rejected_total":M}
 *       a batch with some bad items: the good ones are stored, the bad ones
 *       listed (the first INGEST_MAX_REJECT_REPORT of them). 200 rather than
 *       207: 207 is WebDAV's multi-status with an XML body that no client of
 *       this route expects, and the body already says what was rejected.
 *   400 {"status":"error","errorType":"bad_data","error":"...", ...}
 *       a body that is not JSON ("invalid JSON at line 1, column 7: ..."),
 *       not an object or array, a single object that is rejected, or a batch
 *       where every item is rejected (then with "accepted" and "rejected").
 *   500 the store failed (nothing acknowledged; the client should retry).
 *
 * POST /api/v1/write follows Prometheus 2.42's receiver:
 *   204 everything appended and committed;
 *   400 a body that does not decompress (snappy block format) or decode
 *       (prometheus.WriteRequest), a decompressed size over
 *       INGEST_RW_MAX_DECODED, invalid labels (a series without __name__, a
 *       metric name outside [a-zA-Z_:][a-zA-Z0-9_:]*, a label name outside
 *       [a-zA-Z_][a-zA-Z0-9_]* or starting with "__", a repeated label name,
 *       a value that is not UTF-8), and out-of-order samples or samples
 *       with the timestamp of a stored one but another value, as Prometheus
 *       does ("Indicated an out of order sample is a bad request to prevent
 *       retries"). An exact duplicate (same timestamp and value) is accepted
 *       silently, as in Prometheus' head.
 *   415 a Content-Encoding other than snappy (none at all means snappy, as
 *       Prometheus assumes).
 *   500 a storage error, so that the sender retries.
 * Two deliberate differences: labels are validated for the whole request
 * before anything is appended, so a 400 for labels stores nothing (2.42
 * stored such series, or answered 500 for repeated names); and Prometheus
 * rolls the whole request back on the first out-of-order sample, which the
 * store cannot do, so the in-order samples of such a request are kept and
 * the 400 names the first bad sample and how many were refused. Senders do
 * not retry a 400, so in both cases nothing is duplicated. Exemplars and
 * metadata are ignored.
 */
#ifndef NOVAMON_INGEST_H
#define NOVAMON_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "tick.h"
#include "tsdb/tsdb.h"

/* Most tags per JSON sample (with __name__ it is TSDB_MAX_LABELS labels). */
#define INGEST_MAX_TAGS (TSDB_MAX_LABELS - 1)
/* How many rejected items a batch answer lists (the total is always given). */
#define INGEST_MAX_REJECT_REPORT 100
/* Largest decompressed remote-write body accepted (checked before allocating). */
#define INGEST_RW_MAX_DECODED (256u << 20)
/* How many routes ingest__routes() fills. */
#define INGEST_NROUTES 2

/*
 * Where parsed samples go: tsdb__append_batch()'s contract. errs[i] receives
 * each sample's result (0, -ERANGE out of order, -EEXIST same timestamp and
 * another value, -EINVAL bad labels, other -errno: a storage failure). The
 * label strings are valid only during the call. Returns the number stored or
 * a negative errno when nothing could be tried.
 */
typedef int (*ingest_sink_fn)(void *ctx, const struct tsdb_sample *s, size_t n, int *errs);

/* The sink for a struct tsdb *: calls tsdb__append_batch(). */
int ingest_tsdb_sink(void *db, const struct tsdb_sample *s, size_t n, int *errs);

struct ingest_reject {
	size_t index;
	char error[160];
};

/* What ingest_parse_json() found. */
struct ingest_json_result {
	bool batch; /* the body was an array */
	size_t nitems;
	size_t accepted;
	size_t nrejected; /* all of them */
	struct ingest_reject *rejected; /* the first INGEST_MAX_REJECT_REPORT, malloc'd */
	size_t nreported;
	char error[256]; /* why the whole body was refused */
};

/*
 * Parse and validate a POST /api/metrics body of len bytes (body need not be
 * NUL-terminated) and hand the valid samples to sink in one call; samples
 * without a timestamp get now_ms. Items the sink refuses (out of order, ...)
 * are rejected like invalid ones. Returns 0 (see res for what was accepted
 * and rejected), -EINVAL when the body as a whole is unusable (res->error
 * says why), -ENOMEM, or a storage failure from the sink (other -errno).
 * Free res with ingest_json_result__free() in every case.
 */
int ingest_parse_json(const char *body, size_t len, int64_t now_ms, ingest_sink_fn sink, void *ctx,
		      struct ingest_json_result *res);
void ingest_json_result__free(struct ingest_json_result *res);

/* What ingest_decode_remote_write() found. */
struct ingest_rw_result {
	size_t series;
	size_t samples; /* in the request */
	size_t accepted; /* stored, exact duplicates included */
	size_t refused; /* out of order or conflicting duplicates */
	char error[256]; /* why the request is a 400 (or the storage failure) */
};

/*
 * Decode a remote-write body (snappy block format around a
 * prometheus.WriteRequest) of len bytes whose decompressed size may not
 * exceed max_decoded (0: INGEST_RW_MAX_DECODED), validate every series' labels,
 * then hand the samples to sink. Returns 0 (all stored), -EBADMSG
 * (undecodable body, too big or bad labels: nothing stored; res->error says
 * why), -ERANGE (some samples refused as out of order or conflicting: the
 * others are stored), -ENOMEM, or a storage failure from the sink.
 */
int ingest_decode_remote_write(const void *body, size_t len, size_t max_decoded,
			       ingest_sink_fn sink, void *ctx, struct ingest_rw_result *res);

/* Map a JSON metric name to a Prometheus one (see above). Returns the length or -ENAMETOOLONG. */
int ingest_map_name(const char *in, size_t inlen, char *out, size_t outlen);
/* Map a JSON tag key to a label name (see above). Returns the length or -ENAMETOOLONG. */
int ingest_map_label(const char *in, size_t inlen, char *out, size_t outlen);
/*
 * Parse an RFC 3339 time ("2026-11-22T08:00:00.5Z", "...+02:00") into unix
 * ms (fractions below the ms truncated). Returns 0 or -EINVAL.
 */
int ingest_parse_rfc3339(const char *s, size_t len, int64_t *ms);

struct ingest_stats {
	uint64_t json_requests;
	uint64_t rw_requests;
	uint64_t samples_accepted;
	uint64_t samples_rejected;
	uint64_t bad_requests;
	uint64_t storage_errors;
};

struct ingest {
	struct tsdb *db; /* not owned */
	int64_t (*now_ms)(void); /* NULL: the wall clock (tests set it) */
	size_t rw_max_decoded; /* 0: INGEST_RW_MAX_DECODED */
	/* counters, updated atomically; read with ingest__stats() */
	uint64_t json_requests;
	uint64_t rw_requests;
	uint64_t samples_accepted;
	uint64_t samples_rejected;
	uint64_t bad_requests;
	uint64_t storage_errors;
};

/* Point the ingest routes at db (not owned; it must outlive the server). Returns 0 or -EINVAL. */
int ingest__init(struct ingest *in, struct tsdb *db);

/*
 * Fill routes[0..max) with POST /api/metrics and POST /api/v1/write, their
 * ctx being in (which must outlive the server). Returns INGEST_NROUTES or
 * -ENOSPC when max is too small.
 */
int ingest__routes(struct ingest *in, struct http_route *routes, size_t max);

/* A snapshot of the counters. */
void ingest__stats(const struct ingest *in, struct ingest_stats *st);

/* A tick sink (userspace/tick.h) that only adds the ingest counters to /metrics. */
struct tick_sink ingest__sink(struct ingest *in);

/* The handlers, exposed for tests (ctx is a struct ingest *). */
int ingest_handle_json(const struct http_request *req, struct http_response *resp, void *ctx);
int ingest_handle_remote_write(const struct http_request *req, struct http_response *resp,
			       void *ctx);

#endif /* NOVAMON_INGEST_H */
