/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws_proto: parse client messages, diff evaluations and encode data
 * messages of the WebSocket feeds. See ws_proto.h for the wire format.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_proto.h"

static void ws_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ws_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * A string member: absent -> -ENOENT; not a string, with a NUL, empty or
 * longer than max -> -EINVAL with err.
 */
static int ws_get_string(json_t *obj, const char *key, size_t max, char *out, char *err,
			 size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	if (!v)
		return -ENOENT;
	if (!json_is_string(v)) {
		ws_err(err, errlen, "\"%s\" must be a string", key);
		return -EINVAL;
	}
	len = json_string_length(v);
	if (memchr(json_string_value(v), '\0', len)) {
		ws_err(err, errlen, "\"%s\" holds a NUL character", key);
		return -EINVAL;
	}
	if (!len) {
		ws_err(err, errlen, "\"%s\" is empty", key);
		return -EINVAL;
	}
	if (len > max) {
		ws_err(err, errlen, "\"%s\" is longer than %zu bytes", key, max);
		return -EINVAL;
	}
	memcpy(out, json_string_value(v), len);
	out[len] = '\0';
	return 0;
}

/* Every member of obj must be one of the NULL-terminated allowed names. */
static int ws_check_members(json_t *obj, const char *const *allowed, const char *type, char *err,
			    size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		const char *const *a;

		(void)v;
		for (a = allowed; *a; a++)
			if (!strcmp(*a, key))
				break;
		if (!*a) {
			ws_err(err, errlen, "unknown member \"%.64s\" in a %s message", key, type);
			return -EINVAL;
		}
	}
	return 0;
}

static int ws_parse_subscribe(json_t *root, struct ws_proto_request *out, char *err, size_t errlen)
{
	static const char *const allowed[] = { "type", "id", "query", "resume_from", NULL };
	json_t *r;
	int e;

	e = ws_get_string(root, "query", WS_PROTO_MAX_QUERY, out->query, err, errlen);
	if (e == -ENOENT)
		ws_err(err, errlen, "a subscribe message needs \"query\"");
	if (e)
		return -EINVAL;
	r = json_object_get(root, "resume_from");
	if (r && !json_is_null(r)) {
		if (!json_is_integer(r) || json_integer_value(r) < 0) {
			ws_err(err, errlen, "\"resume_from\" must be a non-negative integer");
			return -EINVAL;
		}
		out->has_resume = true;
		out->resume_from = (uint64_t)json_integer_value(r);
	}
	return ws_check_members(root, allowed, "subscribe", err, errlen);
}

static int ws_parse_hello(json_t *root, struct ws_proto_request *out, char *err, size_t errlen)
{
	static const char *const allowed[] = { "type", "encoding", NULL };
	json_t *v = json_object_get(root, "encoding");
	const char *s;

	if (!v || !json_is_string(v)) {
		ws_err(err, errlen, "a hello message needs \"encoding\": \"json\" or \"binary\"");
		return -EINVAL;
	}
	s = json_string_value(v);
	if (!strcmp(s, "json") && json_string_length(v) == 4) {
		out->encoding = WS_ENC_JSON;
	} else if (!strcmp(s, "binary") && json_string_length(v) == 6) {
		out->encoding = WS_ENC_BINARY;
	} else {
		ws_err(err, errlen, "unknown encoding (\"json\" or \"binary\")");
		return -EINVAL;
	}
	return ws_check_members(root, allowed, "hello", err, errlen);
}

int ws_proto_parse_request(const char *buf, size_t len, struct ws_proto_request *out, char *err,
			   size_t errlen)
{
	static const char *const unsub_allowed[] = { "type", "id", NULL };
	json_error_t jerr;
	json_t *root, *t;
	const char *type;
	int e = -EINVAL;

	if (err && errlen)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		ws_err(err, errlen, "invalid JSON at line %d, column %d: %s", jerr.line,
		       jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		ws_err(err, errlen, "a message must be a JSON object");
		goto out;
	}
	/* the id first, so that any later error names its subscription */
	e = ws_get_string(root, "id", WS_PROTO_MAX_ID, out->id, err, errlen);
	if (e && e != -ENOENT)
		goto out;
	t = json_object_get(root, "type");
	if (!t || !json_is_string(t)) {
		ws_err(err, errlen, "a message needs \"type\" (a string)");
		e = -EINVAL;
		goto out;
	}
	type = json_string_value(t);
	if (!strcmp(type, "hello")) {
		out->type = WS_PROTO_HELLO;
		e = ws_parse_hello(root, out, err, errlen);
		goto out;
	}
	if (!strcmp(type, "subscribe"))
		out->type = WS_PROTO_SUBSCRIBE;
	else if (!strcmp(type, "unsubscribe"))
		out->type = WS_PROTO_UNSUBSCRIBE;
	else {
		ws_err(err, errlen, "unknown type \"%.32s\" (hello, subscribe, unsubscribe)", type);
		e = -EINVAL;
		goto out;
	}
	if (e == -ENOENT) {
		ws_err(err, errlen, "a %s message needs \"id\"", type);
		e = -EINVAL;
		goto out;
	}
	if (out->type == WS_PROTO_SUBSCRIBE)
		e = ws_parse_subscribe(root, out, err, errlen);
	else
		e = ws_check_members(root, unsub_allowed, "unsubscribe", err, errlen);
out:
	json_decref(root);
	return e;
}

int ws_proto_series_cmp(const struct ws_series *a, const struct ws_series *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->json, b->json, n);

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Grow b to hold extra more bytes. Returns 0 or -ENOMEM (sticky). */
static int ws_buf_reserve(struct ws_buf *b, size_t extra)
{
	size_t cap;
	char *p;

	if (b->err)
		return b->err;
	if (b->len + extra <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void ws_buf_put(struct ws_buf *b, const void *data, size_t len)
{
	if (!len || ws_buf_reserve(b, len))
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void ws_buf_puts(struct ws_buf *b, const char *s)
{
	ws_buf_put(b, s, strlen(s));
}

void ws_buf_free(struct ws_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void ws_buf_varint(struct ws_buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	ws_buf_put(b, tmp, n);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t ws_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

void ws_buf_json_string(struct ws_buf *b, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	ws_buf_put(b, "\"", 1);
	while (i < len) {
		unsigned char c = s[i];
		size_t u = c >= 0x20 && c != '"' && c != '\\' ? ws_utf8_len(s + i, len - i) : 0;
		char esc[6];

		if (u) {
			i += u;
			run += u;
			continue;
		}
		ws_buf_put(b, s + i - run, run);
		run = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			ws_buf_put(b, esc, 2);
		} else if (c == '\n') {
			ws_buf_put(b, "\\n", 2);
		} else if (c == '\t') {
			ws_buf_put(b, "\\t", 2);
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			ws_buf_put(b, esc, 6);
		} else {
			ws_buf_put(b, "\\ufffd", 6); /* not UTF-8 */
		}
		i++;
	}
	ws_buf_put(b, s + i - run, run);
	ws_buf_put(b, "\"", 1);
}

int ws_proto_labels_json(struct ws_buf *b, const char *const *names, const char *const *values,
			 size_t n)
{
	size_t i;

	ws_buf_put(b, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			ws_buf_put(b, ",", 1);
		ws_buf_json_string(b, names[i], strlen(names[i]));
		ws_buf_put(b, ":", 1);
		ws_buf_json_string(b, values[i], strlen(values[i]));
	}
	ws_buf_put(b, "}", 1);
	return b->err;
}

/* The shortest decimal that reads back as v; "NaN"/"+Inf"/"-Inf" as JSON strings. */
static void ws_buf_json_number(struct ws_buf *b, double v)
{
	char tmp[40];
	int n;

	if (isnan(v)) {
		ws_buf_puts(b, "\"NaN\"");
		return;
	}
	if (isinf(v)) {
		ws_buf_puts(b, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
		return;
	}
	n = snprintf(tmp, sizeof(tmp), "%.15g", v);
	if (strtod(tmp, NULL) != v)
		n = snprintf(tmp, sizeof(tmp), "%.17g", v);
	ws_buf_put(b, tmp, (size_t)n);
}

static void ws_buf_u64(struct ws_buf *b, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);

	ws_buf_put(b, tmp, (size_t)n);
}

static void ws_buf_f64(struct ws_buf *b, double v)
{
	unsigned char le[8];
	uint64_t bits;
	int i;

	memcpy(&bits, &v, sizeof(bits));
	for (i = 0; i < 8; i++)
		le[i] = (unsigned char)(bits >> (8 * i));
	ws_buf_put(b, le, sizeof(le));
}

static bool ws_same_value(double a, double b)
{
	return !memcmp(&a, &b, sizeof(a)) || (isnan(a) && isnan(b));
}

/*
 * Walk base and cur in order: what cur sets (new series, or a changed
 * value; with full, everything) and what base had that cur lacks. Each
 * visit gets the point and whether the series is new to the client.
 */
struct ws_diff_visit {
	void (*set)(struct ws_buf *b, const struct ws_point *p, bool defined, bool first);
	void (*del)(struct ws_buf *b, const struct ws_point *p, bool first);
};

static void ws_diff(struct ws_buf *b, bool full, const struct ws_point *base, size_t nbase,
		    const struct ws_point *cur, size_t ncur, bool sets, size_t *count,
		    const struct ws_diff_visit *v)
{
	size_t i = 0, j = 0;

	*count = 0;
	if (full) {
		nbase = 0;
		if (!sets)
			return;
	}
	while (i < nbase || j < ncur) {
		int c;

		if (i == nbase)
			c = 1;
		else if (j == ncur)
			c = -1;
		else if (base[i].s == cur[j].s)
			c = 0;
		else
			c = ws_proto_series_cmp(base[i].s, cur[j].s);
		if (c < 0) {
			if (!sets && v)
				v->del(b, &base[i], *count == 0);
			if (!sets)
				(*count)++;
			i++;
		} else if (c > 0) {
			if (sets && v)
				v->set(b, &cur[j], true, *count == 0);
			if (sets)
				(*count)++;
			j++;
		} else {
			/* same label set: interned, or an equal one from another stream */
			if (sets && !ws_same_value(base[i].v, cur[j].v)) {
				if (v)
					v->set(b, &cur[j], base[i].s != cur[j].s, *count == 0);
				(*count)++;
			}
			i++;
			j++;
		}
	}
}

static void ws_json_set(struct ws_buf *b, const struct ws_point *p, bool defined, bool first)
{
	(void)defined;
	ws_buf_puts(b, first ? "{\"labels\":" : ",{\"labels\":");
	ws_buf_put(b, p->s->json, p->s->len);
	ws_buf_puts(b, ",\"v\":");
	ws_buf_json_number(b, p->v);
	ws_buf_put(b, "}", 1);
}

static void ws_json_del(struct ws_buf *b, const struct ws_point *p, bool first)
{
	if (!first)
		ws_buf_put(b, ",", 1);
	ws_buf_put(b, p->s->json, p->s->len);
}

static void ws_bin_set(struct ws_buf *b, const struct ws_point *p, bool defined, bool first)
{
	(void)first;
	ws_buf_varint(b, (uint64_t)p->s->index << 1 | defined);
	if (defined) {
		ws_buf_varint(b, p->s->len);
		ws_buf_put(b, p->s->json, p->s->len);
	}
	ws_buf_f64(b, p->v);
}

static void ws_bin_del(struct ws_buf *b, const struct ws_point *p, bool first)
{
	(void)first;
	ws_buf_varint(b, p->s->index);
}

int ws_proto_data_tail(struct ws_buf *b, enum ws_proto_encoding enc, uint64_t seq, int64_t t_ms,
		       bool full, const struct ws_point *base, size_t nbase,
		       const struct ws_point *cur, size_t ncur)
{
	static const struct ws_diff_visit json = { ws_json_set, ws_json_del };
	static const struct ws_diff_visit bin = { ws_bin_set, ws_bin_del };
	size_t n;

	if (enc == WS_ENC_BINARY) {
		unsigned char flags = full ? WS_PROTO_BIN_FULL : 0;

		ws_buf_put(b, &flags, 1);
		ws_buf_varint(b, seq);
		ws_buf_varint(b, t_ms > 0 ? (uint64_t)t_ms : 0);
		ws_diff(b, full, base, nbase, cur, ncur, true, &n, NULL);
		ws_buf_varint(b, n);
		ws_diff(b, full, base, nbase, cur, ncur, true, &n, &bin);
		ws_diff(b, full, base, nbase, cur, ncur, false, &n, NULL);
		ws_buf_varint(b, n);
		ws_diff(b, full, base, nbase, cur, ncur, false, &n, &bin);
		return b->err;
	}
	ws_buf_puts(b, ",\"seq\":");
	ws_buf_u64(b, seq);
	ws_buf_puts(b, ",\"t\":");
	ws_buf_u64(b, t_ms > 0 ? (uint64_t)t_ms : 0);
	ws_buf_puts(b, full ? ",\"full\":true,\"set\":[" : ",\"full\":false,\"set\":[");
	ws_diff(b, full, base, nbase, cur, ncur, true, &n, &json);
	ws_buf_puts(b, "],\"del\":[");
	ws_diff(b, full, base, nbase, cur, ncur, false, &n, &json);
	ws_buf_puts(b, "]}");
	return b->err;
}

int ws_proto_data_head(struct ws_buf *b, enum ws_proto_encoding enc, const char *id, size_t idlen)
{
	if (enc == WS_ENC_BINARY) {
		unsigned char k = WS_PROTO_BIN_DATA;

		ws_buf_put(b, &k, 1);
		ws_buf_varint(b, idlen);
		ws_buf_put(b, id, idlen);
		return b->err;
	}
	ws_buf_puts(b, "{\"type\":\"data\",\"id\":");
	ws_buf_json_string(b, id, idlen);
	return b->err;
}

int ws_proto_error(struct ws_buf *b, const char *id, const char *msg)
{
	ws_buf_puts(b, "{\"type\":\"error\"");
	if (id && id[0]) {
		ws_buf_puts(b, ",\"id\":");
		ws_buf_json_string(b, id, strlen(id));
	}
	ws_buf_puts(b, ",\"error\":");
	ws_buf_json_string(b, msg, strlen(msg));
	ws_buf_put(b, "}", 1);
	return b->err;
}

int ws_proto_resync(struct ws_buf *b, const char *id, uint64_t seq)
{
	ws_buf_puts(b, "{\"type\":\"resync\",\"id\":");
	ws_buf_json_string(b, id, strlen(id));
	ws_buf_puts(b, ",\"seq\":");
	ws_buf_u64(b, seq);
	ws_buf_put(b, "}", 1);
	return b->err;
}

/* A varint at *p (before end). Returns 0 or -EBADMSG (truncated, over 64 bits). */
static int ws_get_varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	while (*p < end) {
		unsigned char c = *(*p)++;

		if (shift == 63 && c > 1)
			return -EBADMSG;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
		shift += 7;
		if (shift > 63)
			return -EBADMSG;
	}
	return -EBADMSG;
}

int ws_proto_decode_binary(const void *buf, size_t len, struct ws_proto_bin_msg *out,
			   int (*set)(void *ctx, uint64_t index, const char *labels,
				      size_t labels_len, double v),
			   int (*del)(void *ctx, uint64_t index), void *ctx)
{
	const unsigned char *p = buf, *end = p + len;
	uint64_t n, i, x, l;
	int e;

	memset(out, 0, sizeof(*out));
	if (len < 2 || p[0] != WS_PROTO_BIN_DATA)
		return -EBADMSG;
	p++;
	if (ws_get_varint(&p, end, &l) || l > (uint64_t)(end - p))
		return -EBADMSG;
	out->id = (const char *)p;
	out->idlen = (size_t)l;
	p += l;
	if (p >= end || (*p & ~WS_PROTO_BIN_FULL))
		return -EBADMSG;
	out->full = *p++ & WS_PROTO_BIN_FULL;
	if (ws_get_varint(&p, end, &out->seq) || ws_get_varint(&p, end, &out->t_ms) ||
	    ws_get_varint(&p, end, &n))
		return -EBADMSG;
	/* each set entry is at least 9 bytes: no count can promise more than that */
	if (n > (uint64_t)(end - p) / 9)
		return -EBADMSG;
	out->nset = (size_t)n;
	for (i = 0; i < n; i++) {
		const char *labels = NULL;
		uint64_t bits = 0;
		double v;
		int k;

		l = 0;
		if (ws_get_varint(&p, end, &x))
			return -EBADMSG;
		if (x & 1) {
			if (ws_get_varint(&p, end, &l) || l > (uint64_t)(end - p))
				return -EBADMSG;
			labels = (const char *)p;
			p += l;
		}
		if (end - p < 8)
			return -EBADMSG;
		for (k = 0; k < 8; k++)
			bits |= (uint64_t)p[k] << (8 * k);
		p += 8;
		memcpy(&v, &bits, sizeof(v));
		if (set) {
			e = set(ctx, x >> 1, labels, (size_t)l, v);
			if (e)
				return e;
		}
	}
	if (ws_get_varint(&p, end, &n) || n > (uint64_t)(end - p))
		return -EBADMSG;
	out->ndel = (size_t)n;
	for (i = 0; i < n; i++) {
		if (ws_get_varint(&p, end, &x))
			return -EBADMSG;
		if (del) {
			e = del(ctx, x);
			if (e)
				return e;
		}
	}
	return p == end ? 0 : -EBADMSG;
}
