/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/ws_proto.c: the client message parser (good messages,
 * each kind of bad one, limits), the JSON escaping, and the data messages:
 * full states, deltas (set, changed, deleted, NaN), JSON text checked
 * byte for byte and the binary encoding through its decoder.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_proto.h"

static struct ws_proto_request req;
static char err[256];

static int parse(const char *s)
{
	return ws_proto_parse_request(s, strlen(s), &req, err, sizeof(err));
}

Test(ws_proto, parse_subscribe)
{
	cr_assert_eq(parse("{\"type\":\"subscribe\",\"id\":\"cpu\",\"query\":\"rate(x[1m])\"}"), 0);
	cr_assert_eq(req.type, WS_PROTO_SUBSCRIBE);
	cr_assert_str_eq(req.id, "cpu");
	cr_assert_str_eq(req.query, "rate(x[1m])");
	cr_assert_not(req.has_resume);

	cr_assert_eq(parse(" {\"resume_from\":1732262400,\"query\":\"up\",\"type\":\"subscribe\","
			   "\"id\":\"\\u00e9\"} \n"),
		     0);
	cr_assert(req.has_resume);
	cr_assert_eq(req.resume_from, 1732262400u);
	cr_assert_str_eq(req.id, "\xc3\xa9");

	cr_assert_eq(parse("{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"up\","
			   "\"resume_from\":null}"),
		     0);
	cr_assert_not(req.has_resume);
}

Test(ws_proto, parse_hello_unsubscribe)
{
	cr_assert_eq(parse("{\"type\":\"hello\",\"encoding\":\"binary\"}"), 0);
	cr_assert_eq(req.type, WS_PROTO_HELLO);
	cr_assert_eq(req.encoding, WS_ENC_BINARY);
	cr_assert_eq(parse("{\"type\":\"hello\",\"encoding\":\"json\"}"), 0);
	cr_assert_eq(req.encoding, WS_ENC_JSON);
	cr_assert_eq(parse("{\"type\":\"unsubscribe\",\"id\":\"cpu\"}"), 0);
	cr_assert_eq(req.type, WS_PROTO_UNSUBSCRIBE);
	cr_assert_str_eq(req.id, "cpu");
}

/* Each bad message is refused with a reason; the id is kept when it was valid. */
Test(ws_proto, parse_errors)
{
	static const struct {
		const char *msg;
		const char *why;
		const char *id;
	} bad[] = {
		{ "", "invalid JSON", "" },
		{ "{\"type\":\"subscribe\"", "invalid JSON", "" },
		{ "[1]", "JSON object", "" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\"} x", "invalid JSON", "" },
		{ "{\"id\":\"a\"}", "needs \"type\"", "a" },
		{ "{\"type\":7}", "needs \"type\"", "" },
		{ "{\"type\":\"publish\",\"id\":\"a\"}", "unknown type", "a" },
		{ "{\"type\":\"subscribe\",\"query\":\"up\"}", "needs \"id\"", "" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\"}", "needs \"query\"", "a" },
		{ "{\"type\":\"subscribe\",\"id\":\"\",\"query\":\"up\"}", "\"id\" is empty", "" },
		{ "{\"type\":\"subscribe\",\"id\":3,\"query\":\"up\"}", "must be a string", "" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\\u0000b\",\"query\":\"up\"}", "NUL", "" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"\"}", "is empty", "a" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"up\",\"resume_from\":-1}",
		  "non-negative", "a" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"up\",\"resume_from\":1.5}",
		  "non-negative", "a" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"up\",\"resume\":1}",
		  "unknown member \"resume\"", "a" },
		{ "{\"type\":\"subscribe\",\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"up\"}",
		  "invalid JSON", "" },
		{ "{\"type\":\"hello\"}", "needs \"encoding\"", "" },
		{ "{\"type\":\"hello\",\"encoding\":\"cbor\"}", "unknown encoding", "" },
		{ "{\"type\":\"unsubscribe\",\"id\":\"a\",\"query\":\"up\"}", "unknown member",
		  "a" },
		{ "{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"\xff\"}", "invalid JSON", "" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(bad[i].msg), -EINVAL, "accepted %s", bad[i].msg);
		cr_assert(strstr(err, bad[i].why), "%s: error \"%s\" lacks \"%s\"", bad[i].msg, err,
			  bad[i].why);
		cr_assert_str_eq(req.id, bad[i].id, "%s", bad[i].msg);
	}
}

Test(ws_proto, parse_limits)
{
	size_t qlen = WS_PROTO_MAX_QUERY + 1;
	char *msg = malloc(qlen + 128), id[WS_PROTO_MAX_ID + 2];

	memset(id, 'i', sizeof(id) - 1);
	id[WS_PROTO_MAX_ID] = '\0';
	sprintf(msg, "{\"type\":\"unsubscribe\",\"id\":\"%s\"}", id);
	cr_assert_eq(parse(msg), 0);
	id[WS_PROTO_MAX_ID] = 'i';
	id[WS_PROTO_MAX_ID + 1] = '\0';
	sprintf(msg, "{\"type\":\"unsubscribe\",\"id\":\"%s\"}", id);
	cr_assert_eq(parse(msg), -EINVAL);
	cr_assert(strstr(err, "longer than 64 bytes"), "%s", err);

	strcpy(msg, "{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"");
	memset(msg + strlen(msg), 'x', WS_PROTO_MAX_QUERY);
	strcpy(msg + strlen("{\"type\":\"subscribe\",\"id\":\"a\",\"query\":\"") +
		       WS_PROTO_MAX_QUERY,
	       "\"}");
	cr_assert_eq(parse(msg), 0);
	cr_assert_eq(strlen(req.query), WS_PROTO_MAX_QUERY);
	strcpy(msg + strlen(msg) - 2, "x\"}");
	cr_assert_eq(parse(msg), -EINVAL);
	free(msg);
}

/* Not NUL-terminated input: only len bytes are read. */
Test(ws_proto, parse_length_bound)
{
	const char *s = "{\"type\":\"hello\",\"encoding\":\"json\"}garbage";

	cr_assert_eq(ws_proto_parse_request(s, strlen(s) - 7, &req, err, sizeof(err)), 0);
}

static char *buf_str(struct ws_buf *b)
{
	ws_buf_put(b, "", 1);
	return b->p;
}

Test(ws_proto, json_string_escaping)
{
	static const char bad[] = "\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82";
	struct ws_buf b = { 0 };
	const char *ok = "a\"b\\c\nd\te\x01 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";

	ws_buf_json_string(&b, ok, strlen(ok));
	cr_assert_str_eq(buf_str(&b),
			 "\"a\\\"b\\\\c\\nd\\te\\u0001 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	ws_buf_free(&b);
	/* invalid UTF-8: a lone continuation, an overlong, a surrogate, a cut sequence */
	ws_buf_json_string(&b, bad, sizeof(bad) - 1);
	cr_assert_str_eq(buf_str(&b), "\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
				      "\\ufffd\\ufffd\"");
	ws_buf_free(&b);
}

/* Interned label sets for the tests, sorted as ws.c keeps them. */
static struct ws_series *series(const char *json, uint32_t index)
{
	size_t len = strlen(json);
	struct ws_series *s = calloc(1, sizeof(*s) + len + 1);

	memcpy(s->json, json, len + 1);
	s->len = (uint32_t)len;
	s->index = index;
	return s;
}

Test(ws_proto, labels_json)
{
	const char *names[] = { "__name__", "vm" }, *values[] = { "up", "a\"b" };
	struct ws_buf b = { 0 };

	cr_assert_eq(ws_proto_labels_json(&b, names, values, 2), 0);
	cr_assert_str_eq(buf_str(&b), "{\"__name__\":\"up\",\"vm\":\"a\\\"b\"}");
	ws_buf_free(&b);
	cr_assert_eq(ws_proto_labels_json(&b, NULL, NULL, 0), 0);
	cr_assert_str_eq(buf_str(&b), "{}");
	ws_buf_free(&b);
}

Test(ws_proto, json_data_full_and_delta)
{
	struct ws_series *a = series("{\"vm\":\"a\"}", 0), *b = series("{\"vm\":\"b\"}", 1),
			 *c = series("{\"vm\":\"c\"}", 2);
	struct ws_point s1[] = { { a, 1 }, { b, 2.5 } };
	struct ws_point s2[] = {
		{ a, 1 },
		{ c, NAN },
	};
	struct ws_point s3[] = { { a, 1 }, { c, NAN } };
	struct ws_point s4[] = { { a, INFINITY }, { c, -1e300 } };
	struct ws_buf m = { 0 };

	cr_assert_eq(ws_proto_data_head(&m, WS_ENC_JSON, "w\"1", 3), 0);
	cr_assert_eq(ws_proto_data_tail(&m, WS_ENC_JSON, 10, 10000, true, NULL, 0, s1, 2), 0);
	cr_assert_str_eq(
		buf_str(&m),
		"{\"type\":\"data\",\"id\":\"w\\\"1\",\"seq\":10,\"t\":10000,\"full\":true,"
		"\"set\":[{\"labels\":{\"vm\":\"a\"},\"v\":1},{\"labels\":{\"vm\":\"b\"},"
		"\"v\":2.5}],\"del\":[]}");
	ws_buf_free(&m);

	/* a unchanged, b gone, c new */
	ws_proto_data_tail(&m, WS_ENC_JSON, 11, 11000, false, s1, 2, s2, 2);
	cr_assert_str_eq(buf_str(&m), ",\"seq\":11,\"t\":11000,\"full\":false,\"set\":[{\"labels\":"
				      "{\"vm\":\"c\"},\"v\":\"NaN\"}],\"del\":[{\"vm\":\"b\"}]}");
	ws_buf_free(&m);

	/* nothing changed: NaN equals NaN */
	ws_proto_data_tail(&m, WS_ENC_JSON, 12, 12000, false, s2, 2, s3, 2);
	cr_assert_str_eq(buf_str(&m),
			 ",\"seq\":12,\"t\":12000,\"full\":false,\"set\":[],\"del\":[]}");
	ws_buf_free(&m);

	ws_proto_data_tail(&m, WS_ENC_JSON, 13, 13000, false, s3, 2, s4, 2);
	cr_assert_str_eq(buf_str(&m), ",\"seq\":13,\"t\":13000,\"full\":false,\"set\":[{\"labels\":"
				      "{\"vm\":\"a\"},\"v\":\"+Inf\"},{\"labels\":{\"vm\":\"c\"},"
				      "\"v\":-1e+300}],\"del\":[]}");
	ws_buf_free(&m);

	/* everything gone */
	ws_proto_data_tail(&m, WS_ENC_JSON, 14, 14000, false, s4, 2, NULL, 0);
	cr_assert_str_eq(buf_str(&m), ",\"seq\":14,\"t\":14000,\"full\":false,\"set\":[],\"del\":"
				      "[{\"vm\":\"a\"},{\"vm\":\"c\"}]}");
	ws_buf_free(&m);
	free(a);
	free(b);
	free(c);
}

/* Values print as the shortest decimal that reads back the same double. */
Test(ws_proto, json_numbers_round_trip)
{
	static const double vals[] = { 0.1, 1.0 / 3, 123456789012345678.0, 5e-324, -0.0, 1e21 };
	struct ws_series *a = series("{}", 0);
	struct ws_buf m = { 0 };
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct ws_point p = { a, vals[i] };
		char *v;

		ws_proto_data_tail(&m, WS_ENC_JSON, 1, 1000, true, NULL, 0, &p, 1);
		v = strstr(buf_str(&m), "\"v\":") + 4;
		cr_assert_eq(strtod(v, NULL), vals[i], "%s", v);
		ws_buf_free(&m);
	}
	free(a);
}

struct decoded {
	uint64_t idx[8];
	char labels[8][64];
	double v[8];
	size_t nset;
	uint64_t del[8];
	size_t ndel;
};

static int on_set(void *ctx, uint64_t index, const char *labels, size_t len, double v)
{
	struct decoded *d = ctx;

	d->idx[d->nset] = index;
	snprintf(d->labels[d->nset], sizeof(d->labels[0]), "%.*s", (int)len, labels ? labels : "");
	d->v[d->nset++] = v;
	return 0;
}

static int on_del(void *ctx, uint64_t index)
{
	struct decoded *d = ctx;

	d->del[d->ndel++] = index;
	return 0;
}

Test(ws_proto, binary_round_trip)
{
	struct ws_series *a = series("{\"vm\":\"a\"}", 0), *b = series("{\"vm\":\"b\"}", 300),
			 *c = series("{\"vm\":\"c\"}", 2);
	struct ws_point s1[] = { { a, 1 }, { b, 2.5 } };
	struct ws_point s2[] = { { a, 2 }, { c, -7 } };
	struct ws_proto_bin_msg msg;
	struct decoded d = { 0 };
	struct ws_buf m = { 0 };

	ws_proto_data_head(&m, WS_ENC_BINARY, "cpu", 3);
	ws_proto_data_tail(&m, WS_ENC_BINARY, 1732262400, 1732262400000, true, NULL, 0, s1, 2);
	cr_assert_eq((unsigned char)m.p[0], WS_PROTO_BIN_DATA);
	cr_assert_eq(ws_proto_decode_binary(m.p, m.len, &msg, on_set, on_del, &d), 0);
	cr_assert_eq(msg.idlen, 3);
	cr_assert_eq(memcmp(msg.id, "cpu", 3), 0);
	cr_assert(msg.full);
	cr_assert_eq(msg.seq, 1732262400u);
	cr_assert_eq(msg.t_ms, 1732262400000u);
	cr_assert_eq(d.nset, 2);
	cr_assert_eq(d.idx[1], 300);
	cr_assert_str_eq(d.labels[0], "{\"vm\":\"a\"}");
	cr_assert_str_eq(d.labels[1], "{\"vm\":\"b\"}");
	cr_assert_eq(d.v[1], 2.5);
	ws_buf_free(&m);

	/* a changed (known: no labels), c new (labels), b deleted */
	memset(&d, 0, sizeof(d));
	ws_proto_data_head(&m, WS_ENC_BINARY, "cpu", 3);
	ws_proto_data_tail(&m, WS_ENC_BINARY, 1732262401, 1732262401000, false, s1, 2, s2, 2);
	cr_assert_eq(ws_proto_decode_binary(m.p, m.len, &msg, on_set, on_del, &d), 0);
	cr_assert_not(msg.full);
	cr_assert_eq(d.nset, 2);
	cr_assert_eq(d.idx[0], 0);
	cr_assert_str_eq(d.labels[0], "");
	cr_assert_eq(d.v[0], 2);
	cr_assert_eq(d.idx[1], 2);
	cr_assert_str_eq(d.labels[1], "{\"vm\":\"c\"}");
	cr_assert_eq(d.ndel, 1);
	cr_assert_eq(d.del[0], 300);

	/* every truncation is refused, never read past the end */
	for (size_t n = 0; n < m.len; n++) {
		char *cut = malloc(n ? n : 1);

		memcpy(cut, m.p, n);
		cr_assert_eq(ws_proto_decode_binary(cut, n, &msg, NULL, NULL, NULL), -EBADMSG,
			     "cut at %zu", n);
		free(cut);
	}
	ws_buf_free(&m);
	free(a);
	free(b);
	free(c);
}

Test(ws_proto, control_messages)
{
	struct ws_buf m = { 0 };

	ws_proto_error(&m, "a", "1:5: unexpected \"}\"");
	cr_assert_str_eq(
		buf_str(&m),
		"{\"type\":\"error\",\"id\":\"a\",\"error\":\"1:5: unexpected \\\"}\\\"\"}");
	ws_buf_free(&m);
	ws_proto_error(&m, NULL, "bad");
	cr_assert_str_eq(buf_str(&m), "{\"type\":\"error\",\"error\":\"bad\"}");
	ws_buf_free(&m);
	ws_proto_resync(&m, "a", 42);
	cr_assert_str_eq(buf_str(&m), "{\"type\":\"resync\",\"id\":\"a\",\"seq\":42}");
	ws_buf_free(&m);
}
