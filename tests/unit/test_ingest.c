/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: the JSON parser and the remote-write decoder against a recording
 * sink, and both handlers against the real in-memory store.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "remote.pb-c.h"

#define TI_MAX 64

/* A sink that records what it is handed; fail_at makes one sample -ERANGE. */
struct ti_sink {
	size_t n;
	char name[TI_MAX][64];
	char labels[TI_MAX][256]; /* "a=b,c=d" in the order given */
	int64_t t[TI_MAX];
	double v[TI_MAX];
	long fail_at;
	int fatal;
	size_t calls;
};

static int ti_sink_fn(void *ctx, const struct tsdb_sample *s, size_t n, int *errs)
{
	struct ti_sink *k = ctx;
	size_t i, j;
	int ok = 0;

	k->calls++;
	if (k->fatal)
		return k->fatal;
	for (i = 0; i < n; i++) {
		if ((long)k->n == k->fail_at) {
			errs[i] = -ERANGE;
			k->fail_at = -1;
			continue;
		}
		errs[i] = 0;
		ok++;
		if (k->n >= TI_MAX)
			continue;
		k->labels[k->n][0] = '\0';
		for (j = 0; j < s[i].nlabels; j++) {
			if (!strcmp(s[i].labels[j].name, "__name__")) {
				snprintf(k->name[k->n], sizeof(k->name[0]), "%s",
					 s[i].labels[j].value);
				continue;
			}
			size_t o = strlen(k->labels[k->n]);
			snprintf(k->labels[k->n] + o, sizeof(k->labels[0]) - o, "%s%s=%s",
				 o ? "," : "", s[i].labels[j].name, s[i].labels[j].value);
		}
		k->t[k->n] = s[i].t_ms;
		k->v[k->n] = s[i].v;
		k->n++;
	}
	return ok;
}

static int ti_json(const char *body, struct ti_sink *k, struct ingest_json_result *res)
{
	memset(k, 0, sizeof(*k));
	k->fail_at = -1;
	return ingest_parse_json(body, strlen(body), 1000, ti_sink_fn, k, res);
}

TestSuite(ingest_json);

Test(ingest_json, single_object)
{
	struct ingest_json_result res;
	struct ti_sink k;

	cr_assert_eq(
		ti_json("{\"name\":\"cpu.usage\",\"value\":75.5,"
			"\"timestamp\":\"2026-11-22T08:00:00Z\",\"tags\":{\"host\":\"node-1\"}}",
			&k, &res),
		0, "%s", res.error);
	cr_assert_eq(res.accepted, 1);
	cr_assert_eq(res.nrejected, 0);
	cr_assert_not(res.batch);
	cr_assert_eq(k.n, 1);
	cr_assert_str_eq(k.name[0], "cpu_usage");
	cr_assert_str_eq(k.labels[0], "host=node-1");
	cr_assert_eq(k.t[0], 1795334400000LL);
	cr_assert_eq(k.v[0], 75.5);
	ingest_json_result__free(&res);
}

Test(ingest_json, array_and_default_time)
{
	struct ingest_json_result res;
	struct ti_sink k;

	cr_assert_eq(ti_json("[{\"name\":\"a\",\"value\":1},{\"name\":\"b\",\"value\":2,"
			     "\"timestamp\":null},{\"name\":\"c\",\"value\":\"NaN\"},"
			     "{\"name\":\"d\",\"value\":\"-Inf\",\"tags\":{\"x\":\"\"}}]",
			     &k, &res),
		     0);
	cr_assert(res.batch);
	cr_assert_eq(res.accepted, 4);
	cr_assert_eq(k.t[0], 1000);
	cr_assert_eq(k.t[1], 1000);
	cr_assert(isnan(k.v[2]));
	cr_assert(isinf(k.v[3]) && k.v[3] < 0);
	/* one sink call for the whole batch */
	cr_assert_eq(k.calls, 1);
	ingest_json_result__free(&res);
}

Test(ingest_json, empty_array)
{
	struct ingest_json_result res;
	struct ti_sink k;

	cr_assert_eq(ti_json("[]", &k, &res), 0);
	cr_assert_eq(res.accepted, 0);
	cr_assert_eq(res.nrejected, 0);
	ingest_json_result__free(&res);
}

Test(ingest_json, syntax_error_has_position)
{
	struct ingest_json_result res;
	struct ti_sink k;

	cr_assert_eq(ti_json("{\"name\":\"a\",\n \"value\": 1,,}", &k, &res), -EINVAL);
	cr_assert(strstr(res.error, "invalid JSON at line 2, column"), "%s", res.error);
	ingest_json_result__free(&res);
	cr_assert_eq(ti_json("", &k, &res), -EINVAL);
	ingest_json_result__free(&res);
	cr_assert_eq(ti_json("42", &k, &res), -EINVAL);
	cr_assert(strstr(res.error, "object or an array"), "%s", res.error);
	ingest_json_result__free(&res);
	cr_assert_eq(ti_json("{\"name\":\"a\",\"name\":\"b\",\"value\":1}", &k, &res), -EINVAL);
	ingest_json_result__free(&res);
	cr_assert_eq(k.n, 0);
}

static void ti_expect_single_error(const char *body, const char *needle)
{
	struct ingest_json_result res;
	struct ti_sink k;

	cr_expect_eq(ti_json(body, &k, &res), -EINVAL, "%s", body);
	cr_expect(strstr(res.error, needle), "%s: \"%s\" lacks \"%s\"", body, res.error, needle);
	cr_expect_eq(k.n, 0);
	ingest_json_result__free(&res);
}

Test(ingest_json, each_error)
{
	ti_expect_single_error("{\"value\":1}", "\"name\" is missing");
	ti_expect_single_error("{\"name\":5,\"value\":1}", "\"name\" must be a string");
	ti_expect_single_error("{\"name\":\"\",\"value\":1}", "\"name\" is empty");
	ti_expect_single_error("{\"name\":\"a\"}", "\"value\" is missing");
	ti_expect_single_error("{\"name\":\"a\",\"value\":true}", "\"value\" must be a number");
	ti_expect_single_error("{\"name\":\"a\",\"value\":\"1\"}", "\"value\" must be a number");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"timestamp\":\"yesterday\"}",
			       "is not RFC 3339");
	ti_expect_single_error(
		"{\"name\":\"a\",\"value\":1,\"timestamp\":\"2026-02-30T00:00:00Z\"}",
		"is not RFC 3339");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"timestamp\":1e300}", "out of range");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"timestamp\":true}",
			       "\"timestamp\" must be");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"tags\":[]}", "\"tags\" must be");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"tags\":{\"h\":1}}",
			       "tag \"h\" must have a string value");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"tag\":{}}", "unknown field \"tag\"");
	ti_expect_single_error("{\"name\":\"__a\",\"value\":1}", "prefix is reserved");
	ti_expect_single_error("{\"name\":\"..a\",\"value\":1}", "prefix is reserved");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"tags\":{\"__x\":\"y\"}}",
			       "prefix is reserved");
	ti_expect_single_error("{\"name\":\"a\",\"value\":1,\"tags\":{\"\":\"y\"}}",
			       "tag key is empty");
	ti_expect_single_error(
		"{\"name\":\"a\",\"value\":1,\"tags\":{\"a.b\":\"1\",\"a_b\":\"2\"}}",
		"two tags map to the label \"a_b\"");
	ti_expect_single_error("{\"name\":\"a\\u0000b\",\"value\":1}", "NUL");
}

Test(ingest_json, partial_batch)
{
	struct ingest_json_result res;
	struct ti_sink k;

	cr_assert_eq(ti_json("[{\"name\":\"a\",\"value\":1},{\"name\":\"b\"},7,"
			     "{\"name\":\"c\",\"value\":3}]",
			     &k, &res),
		     0);
	cr_assert_eq(res.accepted, 2);
	cr_assert_eq(res.nrejected, 2);
	cr_assert_eq(res.nreported, 2);
	cr_assert_eq(res.rejected[0].index, 1);
	cr_assert(strstr(res.rejected[0].error, "\"value\" is missing"));
	cr_assert_eq(res.rejected[1].index, 2);
	cr_assert_str_eq(res.rejected[1].error, "item is not an object");
	cr_assert_str_eq(k.name[0], "a");
	cr_assert_str_eq(k.name[1], "c");
	ingest_json_result__free(&res);
}

Test(ingest_json, sink_rejects_and_fatal)
{
	struct ingest_json_result res;
	struct ti_sink k;
	const char *b = "[{\"name\":\"a\",\"value\":1},{\"name\":\"a\",\"value\":2}]";

	memset(&k, 0, sizeof(k));
	k.fail_at = 0;
	cr_assert_eq(ingest_parse_json(b, strlen(b), 0, ti_sink_fn, &k, &res), 0);
	cr_assert_eq(res.accepted, 1);
	cr_assert_eq(res.nrejected, 1);
	cr_assert_eq(res.rejected[0].index, 0);
	cr_assert(strstr(res.rejected[0].error, "out of order"));
	ingest_json_result__free(&res);

	memset(&k, 0, sizeof(k));
	k.fail_at = -1;
	k.fatal = -EIO;
	cr_assert_eq(ingest_parse_json(b, strlen(b), 0, ti_sink_fn, &k, &res), -EIO);
	ingest_json_result__free(&res);
}

Test(ingest_json, many_rejects_are_capped)
{
	struct ingest_json_result res;
	struct ti_sink k;
	size_t i, n = 3 * INGEST_MAX_REJECT_REPORT;
	char *b = malloc(n * 3 + 8), *p = b;

	*p++ = '[';
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s1", i ? "," : "");
	strcpy(p, "]");
	cr_assert_eq(ti_json(b, &k, &res), 0);
	cr_assert_eq(res.nrejected, n);
	cr_assert_eq(res.nreported, INGEST_MAX_REJECT_REPORT);
	ingest_json_result__free(&res);
	free(b);
}

Test(ingest_json, name_mapping)
{
	static const struct {
		const char *in, *name, *label;
	} c[] = {
		{ "cpu.usage", "cpu_usage", "cpu_usage" },
		{ "disk.io/s", "disk_io_s", "disk_io_s" },
		{ "5xx.rate", "_5xx_rate", "_5xx_rate" },
		{ "job:rate5m", "job:rate5m", "job_rate5m" },
		{ "temp\xc3\xa9rature", "temp_rature", "temp_rature" },
		{ "a-b c", "a_b_c", "a_b_c" },
		{ "OK_9", "OK_9", "OK_9" },
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		cr_expect_eq(ingest_map_name(c[i].in, strlen(c[i].in), out, sizeof(out)),
			     (int)strlen(c[i].name));
		cr_expect_str_eq(out, c[i].name);
		ingest_map_label(c[i].in, strlen(c[i].in), out, sizeof(out));
		cr_expect_str_eq(out, c[i].label);
	}
	cr_expect_eq(ingest_map_name("abcdef", 6, out, 7), -ENAMETOOLONG);
}

Test(ingest_json, timestamps)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-11-22T08:00:00Z", 1795334400000LL },
		{ "2026-11-22T08:00:00.5Z", 1795334400500LL },
		{ "2026-11-22T08:00:00.123456789z", 1795334400123LL },
		{ "2026-11-22T10:00:00+02:00", 1795334400000LL },
		{ "2026-11-22t07:30:00.25-00:30", 1795334400250LL },
		{ "2024-02-29T00:00:00Z", 1709164800000LL },
		{ "1969-12-31T23:59:59Z", -1000 },
	};
	static const char *const bad[] = {
		"2026-11-22",
		"2026-11-22T08:00:00",
		"2026-13-01T00:00:00Z",
		"2025-02-29T00:00:00Z",
		"2026-11-22T24:00:00Z",
		"2026-11-22T08:00:00.Z",
		"2026-11-22T08:00:00+0200",
		"2026-11-22T08:00:00Zjunk",
		"0000-01-01T00:00:00Z",
	};
	struct ingest_json_result res;
	struct ti_sink k;
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_eq(ingest_parse_rfc3339(ok[i].s, strlen(ok[i].s), &ms), 0, "%s", ok[i].s);
		cr_expect_eq(ms, ok[i].ms, "%s: %lld", ok[i].s, (long long)ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ingest_parse_rfc3339(bad[i], strlen(bad[i]), &ms), -EINVAL, "%s",
			     bad[i]);

	/* numbers: seconds (with a fraction), or ms above 1e12 */
	cr_assert_eq(ti_json("[{\"name\":\"a\",\"value\":1,\"timestamp\":1795334400},"
			     "{\"name\":\"a\",\"value\":1,\"timestamp\":1795334400.25},"
			     "{\"name\":\"a\",\"value\":1,\"timestamp\":1795334400123},"
			     "{\"name\":\"a\",\"value\":1,\"timestamp\":1000000000000.0},"
			     "{\"name\":\"a\",\"value\":1,\"timestamp\":1000000000001}]",
			     &k, &res),
		     0);
	cr_assert_eq(k.n, 4, "%s", res.nreported ? res.rejected[0].error : "");
	cr_expect_eq(k.t[0], 1795334400000LL);
	cr_expect_eq(k.t[1], 1795334400250LL);
	cr_expect_eq(k.t[2], 1795334400123LL);
	cr_expect_eq(k.t[3], 1000000000001LL);
	cr_expect_eq(res.nrejected, 1); /* 1e12 itself is seconds: the year 33658 */
	ingest_json_result__free(&res);
}

/* ------------------------------------------------------------------ */

/* Encode series (name, n samples each) as a snappy WriteRequest. */
static char *ti_rw_body(const char *const *names, size_t nseries, size_t nsamples,
			const char *extra_label, size_t *len)
{
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries *ts = calloc(nseries, sizeof(*ts)),
			       **tsp = calloc(nseries, sizeof(*tsp));
	Prometheus__Label *lab = calloc(nseries * 2, sizeof(*lab)),
			  **labp = calloc(nseries * 2, sizeof(*labp));
	Prometheus__Sample *smp = calloc(nseries * nsamples, sizeof(*smp)),
			   **smpp = calloc(nseries * nsamples, sizeof(*smpp));
	size_t i, k, plen, clen;
	uint8_t *packed;
	char *out;

	for (i = 0; i < nseries; i++) {
		prometheus__time_series__init(&ts[i]);
		tsp[i] = &ts[i];
		prometheus__label__init(&lab[2 * i]);
		lab[2 * i].name = "__name__";
		lab[2 * i].value = (char *)names[i];
		labp[2 * i] = &lab[2 * i];
		ts[i].labels = &labp[2 * i];
		ts[i].n_labels = 1;
		if (extra_label) {
			prometheus__label__init(&lab[2 * i + 1]);
			lab[2 * i + 1].name = (char *)extra_label;
			lab[2 * i + 1].value = "v";
			labp[2 * i + 1] = &lab[2 * i + 1];
			ts[i].n_labels = 2;
		}
		for (k = 0; k < nsamples; k++) {
			Prometheus__Sample *s = &smp[i * nsamples + k];

			prometheus__sample__init(s);
			s->timestamp = 1000 * (int64_t)(k + 1);
			s->value = (double)(i * 1000 + k);
			smpp[i * nsamples + k] = s;
		}
		ts[i].samples = &smpp[i * nsamples];
		ts[i].n_samples = nsamples;
	}
	wr.timeseries = tsp;
	wr.n_timeseries = nseries;
	plen = prometheus__write_request__get_packed_size(&wr);
	packed = malloc(plen + 1);
	prometheus__write_request__pack(&wr, packed);
	clen = snappy_max_compressed_length(plen);
	out = malloc(clen);
	cr_assert_eq(snappy_compress((char *)packed, plen, out, &clen), SNAPPY_OK);
	*len = clen;
	free(packed);
	free(ts);
	free(tsp);
	free(lab);
	free(labp);
	free(smp);
	free(smpp);
	return out;
}

TestSuite(ingest_rw);

Test(ingest_rw, decodes_samples)
{
	static const char *const names[] = { "up", "node_cpu_seconds_total" };
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = -1 };
	size_t len;
	char *body = ti_rw_body(names, 2, 3, "job", &len);

	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), 0, "%s",
		     res.error);
	cr_assert_eq(res.series, 2);
	cr_assert_eq(res.samples, 6);
	cr_assert_eq(res.accepted, 6);
	cr_assert_eq(k.n, 6);
	cr_assert_str_eq(k.name[0], "up");
	cr_assert_str_eq(k.labels[0], "job=v");
	cr_assert_str_eq(k.name[5], "node_cpu_seconds_total");
	cr_assert_eq(k.t[5], 3000);
	cr_assert_eq(k.v[5], 1002);
	free(body);
}

Test(ingest_rw, empty_request)
{
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = -1 };
	size_t len;
	char *body = ti_rw_body(NULL, 0, 0, NULL, &len);

	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), 0);
	cr_assert_eq(res.samples, 0);
	free(body);
}

Test(ingest_rw, garbage_and_truncated)
{
	static const char *const names[] = { "up" };
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = -1 };
	char garbage[64], raw[] = "\x0a\x05\x0a\x03"; /* truncated protobuf, snappy-wrapped below */
	char comp[64];
	size_t len, i, clen = sizeof(comp);
	char *body = ti_rw_body(names, 1, 10, NULL, &len);

	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 37 + 11);
	cr_assert_eq(ingest_decode_remote_write(garbage, sizeof(garbage), 0, ti_sink_fn, &k, &res),
		     -EBADMSG);
	cr_assert(strstr(res.error, "snappy"), "%s", res.error);
	cr_assert_eq(ingest_decode_remote_write("", 0, 0, ti_sink_fn, &k, &res), -EBADMSG);
	for (i = 1; i < len; i++)
		cr_assert_eq(ingest_decode_remote_write(body, i, 0, ti_sink_fn, &k, &res), -EBADMSG,
			     "prefix %zu", i);
	cr_assert_eq(snappy_compress(raw, 4, comp, &clen), SNAPPY_OK);
	cr_assert_eq(ingest_decode_remote_write(comp, clen, 0, ti_sink_fn, &k, &res), -EBADMSG);
	cr_assert(strstr(res.error, "protobuf"), "%s", res.error);
	cr_assert_eq(k.n, 0);
	free(body);
}

Test(ingest_rw, size_cap_before_allocating)
{
	/* a snappy header claiming 1 GiB: refused from the varint alone */
	const char claim[] = { (char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x04, 0x00 };
	static const char *const names[] = { "up" };
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = -1 };
	size_t len;
	char *body;

	cr_assert_eq(ingest_decode_remote_write(claim, sizeof(claim), 0, ti_sink_fn, &k, &res),
		     -EBADMSG);
	cr_assert(strstr(res.error, "exceeds the limit"), "%s", res.error);
	body = ti_rw_body(names, 1, 100, NULL, &len);
	cr_assert_eq(ingest_decode_remote_write(body, len, 64, ti_sink_fn, &k, &res), -EBADMSG);
	free(body);
}

Test(ingest_rw, invalid_labels_store_nothing)
{
	static const char *const good_bad[] = { "up", "bad-name" };
	static const char *const good[] = { "up" };
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = -1 };
	size_t len;
	char *body;

	body = ti_rw_body(good_bad, 2, 2, NULL, &len);
	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), -EBADMSG);
	cr_assert(strstr(res.error, "invalid metric name \"bad-name\""), "%s", res.error);
	cr_assert_eq(k.calls, 0);
	free(body);

	body = ti_rw_body(good, 1, 2, "__reserved", &len);
	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), -EBADMSG);
	cr_assert(strstr(res.error, "invalid label name"), "%s", res.error);
	free(body);

	body = ti_rw_body(good, 1, 2, "__name__", &len);
	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), -EBADMSG);
	cr_assert(strstr(res.error, "not unique"), "%s", res.error);
	free(body);

	body = ti_rw_body(good, 1, 2, "1abc", &len);
	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), -EBADMSG);
	free(body);
	cr_assert_eq(k.calls, 0);
}

Test(ingest_rw, out_of_order_reported)
{
	static const char *const names[] = { "up", "down" };
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = 4 };
	size_t len;
	char *body = ti_rw_body(names, 2, 3, NULL, &len);

	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), -ERANGE);
	cr_assert_eq(res.accepted, 5);
	cr_assert_eq(res.refused, 1);
	cr_assert(strstr(res.error,
			 "out of order sample for series {__name__=\"down\"} at timestamp 2000"),
		  "%s", res.error);
	free(body);
}

Test(ingest_rw, big_body_in_chunks)
{
	static const char *const names[] = { "a", "b", "c" };
	struct ingest_rw_result res;
	struct ti_sink k = { .fail_at = -1 };
	size_t len, n = 5000;
	char *body = ti_rw_body(names, 3, n, "job", &len);

	cr_assert_eq(ingest_decode_remote_write(body, len, 0, ti_sink_fn, &k, &res), 0);
	cr_assert_eq(res.accepted, 3 * n);
	cr_assert_geq(k.calls, 3);
	free(body);
}

/* ------------------------------------------------------------------ */

static struct tsdb *ti_db;
static struct ingest ti_in;

static int64_t ti_now(void)
{
	return 1795334400000LL;
}

static void ti_http_init(void)
{
	char err[256];

	ti_db = tsdb__open(&(struct tsdb_opts){ 0 }, err, sizeof(err));
	cr_assert(ti_db, "%s", err);
	cr_assert_eq(ingest__init(&ti_in, ti_db), 0);
	ti_in.now_ms = ti_now;
}

static void ti_http_fini(void)
{
	tsdb__close(ti_db);
	ti_db = NULL;
}

TestSuite(ingest_http, .init = ti_http_init, .fini = ti_http_fini);

static int ti_post(http_handler_fn fn, const char *body, size_t len, const char *enc,
		   struct http_response *resp)
{
	struct http_request req = {
		.method = "POST",
		.path = "",
		.query = "",
		.body = body,
		.body_len = len,
		.content_type = "",
		.content_encoding = enc ? enc : "",
		.authorization = "",
		.remote_addr = "",
	};

	memset(resp, 0, sizeof(*resp));
	return fn(&req, resp, &ti_in);
}

static size_t ti_count(const char *name)
{
	struct tsdb_matcher m = { TSDB_MATCH_EQ, "__name__", name };
	struct tsdb_result *r = NULL;
	size_t i, n = 0;

	cr_assert_eq(tsdb__select(ti_db, &m, 1, INT64_MIN / 4, INT64_MAX / 4, &r), 0);
	for (i = 0; i < r->n; i++)
		n += r->series[i].n;
	tsdb_result__free(r);
	return n;
}

Test(ingest_http, routes)
{
	struct http_route r[INGEST_NROUTES];

	cr_assert_eq(ingest__routes(&ti_in, r, 1), -ENOSPC);
	cr_assert_eq(ingest__routes(&ti_in, r, INGEST_NROUTES), INGEST_NROUTES);
	cr_assert_str_eq(r[0].path, "/api/metrics");
	cr_assert_str_eq(r[1].path, "/api/v1/write");
	cr_assert_str_eq(r[1].method, "POST");
}

Test(ingest_http, json_statuses)
{
	struct http_response resp;
	const char *b;

	b = "{\"name\":\"cpu.usage\",\"value\":75.5,\"tags\":{\"host\":\"node-1\"}}";
	cr_assert_eq(ti_post(ingest_handle_json, b, strlen(b), NULL, &resp), 0);
	cr_assert_eq(resp.status, 200);
	cr_assert_str_eq(resp.body, "{\"accepted\":1,\"rejected\":[]}");
	free(resp.body);
	cr_assert_eq(ti_count("cpu_usage"), 1);

	b = "[{\"name\":\"m\",\"value\":1,\"timestamp\":10},{\"name\":\"m\",\"value\":2,"
	    "\"timestamp\":5},{\"nam\":1}]";
	cr_assert_eq(ti_post(ingest_handle_json, b, strlen(b), NULL, &resp), 0);
	cr_assert_eq(resp.status, 200);
	cr_assert(strstr(resp.body, "\"accepted\":1"), "%s", resp.body);
	cr_assert(strstr(resp.body, "{\"index\":1,\"error\":\"out of order"), "%s", resp.body);
	cr_assert(strstr(resp.body, "{\"index\":2,\"error\":\"unknown field"), "%s", resp.body);
	cr_assert(strstr(resp.body, "\"rejected_total\":2"), "%s", resp.body);
	free(resp.body);

	b = "[{\"name\":\"m\"}]";
	cr_assert_eq(ti_post(ingest_handle_json, b, strlen(b), NULL, &resp), 0);
	cr_assert_eq(resp.status, 400);
	cr_assert(strstr(resp.body, "all 1 items rejected"), "%s", resp.body);
	free(resp.body);

	b = "{\"name\":";
	cr_assert_eq(ti_post(ingest_handle_json, b, strlen(b), NULL, &resp), 0);
	cr_assert_eq(resp.status, 400);
	cr_assert(strstr(resp.body, "invalid JSON at line 1"), "%s", resp.body);
	free(resp.body);
	cr_assert_eq(ti_count("m"), 1);
}

Test(ingest_http, remote_write_statuses)
{
	static const char *const names[] = { "rw_metric" };
	struct http_response resp;
	size_t len;
	char *body = ti_rw_body(names, 1, 1, "job", &len);

	cr_assert_eq(ti_post(ingest_handle_remote_write, body, len, "snappy", &resp), 0);
	cr_assert_eq(resp.status, 204);
	cr_assert_null(resp.body);
	cr_assert_eq(ti_count("rw_metric"), 1);
	/* the same sample again: an exact duplicate is accepted, as in Prometheus */
	cr_assert_eq(ti_post(ingest_handle_remote_write, body, len, "", &resp), 0);
	cr_assert_eq(resp.status, 204);
	free(body);

	/* t = 1 s (a duplicate) and 2..4 s (new) */
	body = ti_rw_body(names, 1, 4, "job", &len);
	cr_assert_eq(ti_post(ingest_handle_remote_write, body, len, NULL, &resp), 0);
	cr_assert_eq(resp.status, 204);
	cr_assert_eq(ti_count("rw_metric"), 4);
	/* resending it all: 1..3 s are now out of order, a 400 that senders do not retry */
	cr_assert_eq(ti_post(ingest_handle_remote_write, body, len, NULL, &resp), 0);
	cr_assert_eq(resp.status, 400);
	cr_assert(strstr(resp.body, "3 of 4 samples refused"), "%s", resp.body);
	free(resp.body);
	free(body);
	cr_assert_eq(ti_count("rw_metric"), 4);

	cr_assert_eq(ti_post(ingest_handle_remote_write, "xx", 2, "snappy", &resp), 0);
	cr_assert_eq(resp.status, 400);
	free(resp.body);
	cr_assert_eq(ti_post(ingest_handle_remote_write, "xx", 2, "gzip", &resp), 0);
	cr_assert_eq(resp.status, 415);
	free(resp.body);
}

Test(ingest_http, remote_write_out_of_order_is_400)
{
	static const char *const names[] = { "ooo" };
	struct http_response resp;
	const char *b = "{\"name\":\"ooo\",\"value\":1,\"timestamp\":100000}";
	size_t len;
	char *body;

	cr_assert_eq(ti_post(ingest_handle_json, b, strlen(b), NULL, &resp), 0);
	cr_assert_eq(resp.status, 200);
	free(resp.body);
	body = ti_rw_body(names, 1, 3, NULL, &len); /* t = 1..3 s: all older */
	cr_assert_eq(ti_post(ingest_handle_remote_write, body, len, "snappy", &resp), 0);
	cr_assert_eq(resp.status, 400);
	cr_assert(strstr(resp.body, "out of order sample"), "%s", resp.body);
	cr_assert(strstr(resp.body, "3 of 3 samples refused"), "%s", resp.body);
	free(resp.body);
	free(body);
}
