/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: POST /api/metrics (JSON) and POST /api/v1/write (remote write),
 * see ingest.h for the formats and answers.
 *
 * Each route is a pure parse-and-validate function that hands samples to a
 * sink (ingest_parse_json(), ingest_decode_remote_write(): what the fuzzers
 * call) and a thin handler that points the sink at the store, commits and
 * renders the answer.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ingest.h"
#include "metrics.h"
#include "pb_arena.h"
#include "remote.pb-c.h"

/* Samples handed to the sink per call: bounds the scratch arrays. */
#define INGEST_SINK_CHUNK 4096
/* RFC 3339's range, years 0001..9999, in ms. */
#define INGEST_MIN_MS (-62135596800000LL)
#define INGEST_MAX_MS (253402300799999LL)

static int64_t ingest_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ingest_tsdb_sink(void *db, const struct tsdb_sample *s, size_t n, int *errs)
{
	return tsdb__append_batch(db, s, n, errs);
}

/* ------------------------------------------------------------------ */
/* names and times */

static int ingest_map(const char *in, size_t inlen, char *out, size_t outlen, bool colon)
{
	size_t i, o = 0;

	/* worst case: a '_' prefix, every byte kept, the NUL */
	if (outlen < inlen + 2)
		return -ENAMETOOLONG;
	if (inlen && in[0] >= '0' && in[0] <= '9')
		out[o++] = '_';
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		/* one '_' per UTF-8 character: skip continuation bytes */
		if ((c & 0xc0) == 0x80 && i > 0 && ((unsigned char)in[i - 1] & 0x80))
			continue;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || (colon && c == ':'))
			out[o++] = (char)c;
		else
			out[o++] = '_';
	}
	out[o] = '\0';
	return (int)o;
}

int ingest_map_name(const char *in, size_t inlen, char *out, size_t outlen)
{
	return ingest_map(in, inlen, out, outlen, true);
}

int ingest_map_label(const char *in, size_t inlen, char *out, size_t outlen)
{
	return ingest_map(in, inlen, out, outlen, false);
}

/* Read exactly n digits. */
static bool ingest_digits(const char *s, size_t n, int *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t ingest_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int ingest_parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh, om, frac = 0, dim;
	size_t i = 19, nf = 0;
	int64_t t, off = 0;

	/* YYYY-MM-DDTHH:MM:SS */
	if (len < 20 || !ingest_digits(s, 4, &y) || s[4] != '-' || !ingest_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !ingest_digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !ingest_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !ingest_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !ingest_digits(s + 17, 2, &sec))
		return -EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	dim = mdays[mo - 1] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
	if (d < 1 || d > dim)
		return -EINVAL;
	if (s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nf++) {
			if (nf < 3)
				frac = frac * 10 + (s[i] - '0');
		}
		if (!nf)
			return -EINVAL;
		for (; nf < 3; nf++)
			frac *= 10;
	}
	if (i == len - 1 && (s[i] == 'Z' || s[i] == 'z')) {
		off = 0;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') &&
		   ingest_digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
		   ingest_digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
		off = (int64_t)(oh * 60 + om) * 60000;
		if (s[i] == '-')
			off = -off;
	} else {
		return -EINVAL;
	}
	t = ingest_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	*ms = t * 1000 + frac - off;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON */

/* Label strings are kept as offsets into a growing arena until the end. */
struct ingest_arena {
	char *p;
	size_t len;
	size_t cap;
};

static int ingest_arena_reserve(struct ingest_arena *a, size_t n)
{
	size_t cap;
	char *p;

	if (a->len + n <= a->cap)
		return 0;
	cap = a->cap ? a->cap : 4096;
	while (cap < a->len + n)
		cap *= 2;
	p = realloc(a->p, cap);
	if (!p)
		return -ENOMEM;
	a->p = p;
	a->cap = cap;
	return 0;
}

struct ingest_label_off {
	size_t name;
	size_t value;
};

struct ingest_item {
	size_t index; /* in the body */
	size_t label0; /* first entry in the label array */
	size_t nlabels;
	int64_t t_ms;
	double v;
};

struct ingest_json_state {
	struct ingest_arena arena;
	struct ingest_label_off *labels;
	size_t nlabels;
	size_t labels_cap;
	struct ingest_item *items;
	size_t nitems;
	size_t items_cap;
};

static int ingest_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static int ingest_reject(struct ingest_json_result *res, size_t index, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int ingest_reject(struct ingest_json_result *res, size_t index, const char *fmt, ...)
{
	struct ingest_reject *r;
	va_list ap;

	res->nrejected++;
	if (res->nreported >= INGEST_MAX_REJECT_REPORT)
		return 0;
	if (!res->rejected) {
		res->rejected = calloc(INGEST_MAX_REJECT_REPORT, sizeof(*res->rejected));
		if (!res->rejected)
			return -ENOMEM;
	}
	r = &res->rejected[res->nreported++];
	r->index = index;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	return 0;
}

/* Add one label (name mapped into the arena, value copied). Returns 0, -EINVAL with err, -ENOMEM. */
static int ingest_add_label(struct ingest_json_state *st, const char *key, size_t klen,
			    const char *value, size_t vlen, char *err, size_t errlen)
{
	size_t noff, voff, room = klen + 2 + sizeof(TSDB_NAME_LABEL) + vlen + 2;
	struct ingest_label_off *l;
	char *p;
	int n;

	if (ingest_grow((void **)&st->labels, &st->labels_cap, st->nlabels + 1,
			sizeof(*st->labels)) ||
	    ingest_arena_reserve(&st->arena, room))
		return -ENOMEM;
	noff = st->arena.len;
	p = st->arena.p + noff;
	if (!key) {
		/* the metric name */
		memcpy(p, TSDB_NAME_LABEL, sizeof(TSDB_NAME_LABEL));
		voff = noff + sizeof(TSDB_NAME_LABEL);
		n = ingest_map_name(value, vlen, st->arena.p + voff, vlen + 2);
		if (n < 0)
			return n;
		if (n == 0) {
			snprintf(err, errlen, "\"name\" is empty");
			return -EINVAL;
		}
		if (!strncmp(st->arena.p + voff, "__", 2)) {
			snprintf(err, errlen,
				 "name \"%.40s\" maps to \"%.40s\": the \"__\" prefix is reserved",
				 value, st->arena.p + voff);
			return -EINVAL;
		}
		st->arena.len = voff + (size_t)n + 1;
	} else {
		n = ingest_map_label(key, klen, p, klen + 2);
		if (n < 0)
			return n;
		if (n == 0) {
			snprintf(err, errlen, "tag key is empty");
			return -EINVAL;
		}
		if (!strncmp(p, "__", 2)) {
			snprintf(err, errlen,
				 "tag \"%.40s\" maps to \"%.40s\": the \"__\" prefix is reserved",
				 key, p);
			return -EINVAL;
		}
		voff = noff + (size_t)n + 1;
		memcpy(st->arena.p + voff, value, vlen);
		st->arena.p[voff + vlen] = '\0';
		st->arena.len = voff + vlen + 1;
	}
	l = &st->labels[st->nlabels++];
	l->name = noff;
	l->value = voff;
	return 0;
}

static int ingest_json_value(json_t *j, double *v, char *err, size_t errlen)
{
	const char *s;

	if (json_is_number(j)) {
		*v = json_number_value(j);
		return 0;
	}
	if (json_is_string(j)) {
		s = json_string_value(j);
		if (!strcmp(s, "NaN")) {
			*v = NAN;
			return 0;
		}
		if (!strcmp(s, "+Inf") || !strcmp(s, "Inf")) {
			*v = INFINITY;
			return 0;
		}
		if (!strcmp(s, "-Inf")) {
			*v = -INFINITY;
			return 0;
		}
	}
	snprintf(err, errlen, "\"value\" must be a number (or \"NaN\", \"+Inf\", \"-Inf\")");
	return -EINVAL;
}

static int ingest_json_time(json_t *j, int64_t now_ms, int64_t *t, char *err, size_t errlen)
{
	double x;

	if (!j || json_is_null(j)) {
		*t = now_ms;
		return 0;
	}
	if (json_is_string(j)) {
		if (ingest_parse_rfc3339(json_string_value(j), json_string_length(j), t) ||
		    strlen(json_string_value(j)) != json_string_length(j)) {
			snprintf(err, errlen,
				 "\"timestamp\" \"%.64s\" is not RFC 3339 (2026-11-22T08:00:00Z)",
				 json_string_value(j));
			return -EINVAL;
		}
		return 0;
	}
	if (!json_is_number(j)) {
		snprintf(err, errlen,
			 "\"timestamp\" must be an RFC 3339 string or unix seconds/milliseconds");
		return -EINVAL;
	}
	x = json_number_value(j);
	if (isfinite(x) && x > 1e12)
		x = round(x);
	else if (isfinite(x) && x >= INGEST_MIN_MS / 1000.0)
		x = round(x * 1000.0);
	if (!isfinite(x) || x < (double)INGEST_MIN_MS || x > (double)INGEST_MAX_MS) {
		snprintf(err, errlen, "\"timestamp\" %g is out of range", json_number_value(j));
		return -EINVAL;
	}
	*t = (int64_t)x;
	return 0;
}

/* Validate one item into st. Returns 0, -EINVAL (err says why: the item is rejected), -ENOMEM. */
static int ingest_json_item(struct ingest_json_state *st, json_t *it, size_t index, int64_t now_ms,
			    char *err, size_t errlen)
{
	json_t *name = NULL, *value = NULL, *ts = NULL, *tags = NULL, *jv;
	size_t label0 = st->nlabels, arena0 = st->arena.len, i, j;
	struct ingest_item *item;
	const char *key;
	int64_t t;
	double v;
	int ret;

	if (!json_is_object(it)) {
		snprintf(err, errlen, "item is not an object");
		return -EINVAL;
	}
	json_object_foreach(it, key, jv)
	{
		if (!strcmp(key, "name")) {
			name = jv;
		} else if (!strcmp(key, "value")) {
			value = jv;
		} else if (!strcmp(key, "timestamp")) {
			ts = jv;
		} else if (!strcmp(key, "tags")) {
			tags = jv;
		} else {
			snprintf(err, errlen,
				 "unknown field \"%.64s\" (expected name, value, timestamp, tags)",
				 key);
			return -EINVAL;
		}
	}
	if (!name || !json_is_string(name)) {
		snprintf(err, errlen, "\"name\" %s", name ? "must be a string" : "is missing");
		return -EINVAL;
	}
	if (!value) {
		snprintf(err, errlen, "\"value\" is missing");
		return -EINVAL;
	}
	if (tags && !json_is_object(tags) && !json_is_null(tags)) {
		snprintf(err, errlen, "\"tags\" must be an object of strings");
		return -EINVAL;
	}
	if (tags && json_object_size(tags) > INGEST_MAX_TAGS) {
		snprintf(err, errlen, "%zu tags: at most %d", json_object_size(tags),
			 INGEST_MAX_TAGS);
		return -EINVAL;
	}
	ret = ingest_json_value(value, &v, err, errlen);
	if (!ret)
		ret = ingest_json_time(ts, now_ms, &t, err, errlen);
	if (ret)
		return ret;
	if (strlen(json_string_value(name)) != json_string_length(name)) {
		snprintf(err, errlen, "\"name\" contains a NUL character");
		return -EINVAL;
	}
	ret = ingest_add_label(st, NULL, 0, json_string_value(name), json_string_length(name), err,
			       errlen);
	if (ret)
		goto undo;
	json_object_foreach(tags, key, jv)
	{
		if (!json_is_string(jv)) {
			snprintf(err, errlen, "tag \"%.64s\" must have a string value", key);
			ret = -EINVAL;
			goto undo;
		}
		if (strlen(json_string_value(jv)) != json_string_length(jv)) {
			snprintf(err, errlen, "tag \"%.64s\" contains a NUL character", key);
			ret = -EINVAL;
			goto undo;
		}
		ret = ingest_add_label(st, key, strlen(key), json_string_value(jv),
				       json_string_length(jv), err, errlen);
		if (ret)
			goto undo;
	}
	/* two keys mapping to one label name ("a.b" and "a_b") */
	for (i = label0 + 1; i < st->nlabels; i++) {
		for (j = label0 + 1; j < i; j++) {
			if (strcmp(st->arena.p + st->labels[i].name,
				   st->arena.p + st->labels[j].name))
				continue;
			snprintf(err, errlen, "two tags map to the label \"%.64s\"",
				 st->arena.p + st->labels[i].name);
			ret = -EINVAL;
			goto undo;
		}
	}
	if (ingest_grow((void **)&st->items, &st->items_cap, st->nitems + 1, sizeof(*st->items))) {
		ret = -ENOMEM;
		goto undo;
	}
	item = &st->items[st->nitems++];
	item->index = index;
	item->label0 = label0;
	item->nlabels = st->nlabels - label0;
	item->t_ms = t;
	item->v = v;
	return 0;
undo:
	st->nlabels = label0;
	st->arena.len = arena0;
	return ret;
}

static const char *ingest_errno_reason(int err)
{
	switch (err) {
	case -ERANGE:
		return "out of order: older than the series' last sample";
	case -EEXIST:
		return "duplicate: the series has another value at this timestamp";
	case -EINVAL:
		return "invalid label set";
	default:
		return "not stored";
	}
}

/* Hand the collected items to the sink in chunks. */
static int ingest_json_flush(struct ingest_json_state *st, ingest_sink_fn sink, void *ctx,
			     struct ingest_json_result *res)
{
	struct tsdb_label *labels = NULL;
	struct tsdb_sample *s = NULL;
	size_t i, k, off, n;
	int *errs = NULL, ret = 0;

	labels = malloc((st->nlabels ? st->nlabels : 1) * sizeof(*labels));
	s = malloc(INGEST_SINK_CHUNK * sizeof(*s));
	errs = malloc(INGEST_SINK_CHUNK * sizeof(*errs));
	if (!labels || !s || !errs) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < st->nlabels; i++) {
		labels[i].name = st->arena.p + st->labels[i].name;
		labels[i].value = st->arena.p + st->labels[i].value;
	}
	for (off = 0; off < st->nitems; off += n) {
		n = st->nitems - off < INGEST_SINK_CHUNK ? st->nitems - off : INGEST_SINK_CHUNK;
		for (k = 0; k < n; k++) {
			struct ingest_item *it = &st->items[off + k];

			s[k].labels = labels + it->label0;
			s[k].nlabels = it->nlabels;
			s[k].t_ms = it->t_ms;
			s[k].v = it->v;
			errs[k] = 0;
		}
		ret = sink(ctx, s, n, errs);
		if (ret < 0)
			goto cleanup;
		ret = 0;
		for (k = 0; k < n; k++) {
			if (!errs[k]) {
				res->accepted++;
				continue;
			}
			if (errs[k] != -ERANGE && errs[k] != -EEXIST && errs[k] != -EINVAL) {
				/* a storage failure: the whole request fails */
				ret = errs[k];
				goto cleanup;
			}
			ret = ingest_reject(res, st->items[off + k].index, "%s",
					    ingest_errno_reason(errs[k]));
			if (ret)
				goto cleanup;
		}
	}
cleanup:
	free(labels);
	free(s);
	free(errs);
	return ret;
}

static int ingest_reject_cmp(const void *a, const void *b)
{
	const struct ingest_reject *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

int ingest_parse_json(const char *body, size_t len, int64_t now_ms, ingest_sink_fn sink, void *ctx,
		      struct ingest_json_result *res)
{
	struct ingest_json_state st = { 0 };
	json_t *root = NULL, *it;
	json_error_t jerr;
	char err[160];
	size_t i;
	int ret;

	memset(res, 0, sizeof(*res));
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
			  &jerr);
	if (!root) {
		snprintf(res->error, sizeof(res->error), "invalid JSON at line %d, column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		ret = -EINVAL;
		goto cleanup;
	}
	if (json_is_object(root)) {
		res->nitems = 1;
		ret = ingest_json_item(&st, root, 0, now_ms, err, sizeof(err));
		if (ret == -EINVAL) {
			snprintf(res->error, sizeof(res->error), "%s", err);
			res->nrejected = 1;
		}
		if (ret)
			goto cleanup;
	} else if (json_is_array(root)) {
		res->batch = true;
		res->nitems = json_array_size(root);
		json_array_foreach(root, i, it)
		{
			ret = ingest_json_item(&st, it, i, now_ms, err, sizeof(err));
			if (ret == -EINVAL)
				ret = ingest_reject(res, i, "%s", err);
			if (ret)
				goto cleanup;
		}
	} else {
		snprintf(res->error, sizeof(res->error),
			 "the body must be a JSON object or an array of objects");
		ret = -EINVAL;
		goto cleanup;
	}
	ret = ingest_json_flush(&st, sink, ctx, res);
	if (ret)
		goto cleanup;
	if (!res->batch && res->nrejected) {
		snprintf(res->error, sizeof(res->error), "%s",
			 res->rejected ? res->rejected[0].error : "rejected");
		ret = -EINVAL;
		goto cleanup;
	}
	/* validation rejects come first, storage rejects after: report in body order */
	if (res->nreported > 1)
		qsort(res->rejected, res->nreported, sizeof(*res->rejected), ingest_reject_cmp);
cleanup:
	json_decref(root);
	free(st.arena.p);
	free(st.labels);
	free(st.items);
	return ret;
}

void ingest_json_result__free(struct ingest_json_result *res)
{
	if (!res)
		return;
	free(res->rejected);
	res->rejected = NULL;
	res->nreported = 0;
}

/* ------------------------------------------------------------------ */
/* remote write */

static bool ingest_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	int n, i;

	while (*p) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			cp = *p & 0x07;
		} else {
			return false;
		}
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		p += n + 1;
	}
	return true;
}

static bool ingest_name_valid(const char *s, bool colon)
{
	size_t i;

	if (!*s)
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (colon && c == ':') || (i > 0 && c >= '0' && c <= '9'))
			continue;
		return false;
	}
	return true;
}

/* Check one series' labels as Prometheus and the store need them. Returns 0 or -EBADMSG. */
static int ingest_rw_check_series(const Prometheus__TimeSeries *ts, size_t idx, char *err,
				  size_t errlen)
{
	const char *name = NULL;
	size_t i, j;

	if (ts->n_labels > TSDB_MAX_LABELS) {
		snprintf(err, errlen, "series %zu has %zu labels: at most %d", idx, ts->n_labels,
			 TSDB_MAX_LABELS);
		return -EBADMSG;
	}
	for (i = 0; i < ts->n_labels; i++) {
		const Prometheus__Label *l = ts->labels[i];

		if (!strcmp(l->name, TSDB_NAME_LABEL)) {
			name = l->value;
		} else if (!ingest_name_valid(l->name, false) ||
			   (l->name[0] == '_' && l->name[1] == '_')) {
			snprintf(err, errlen, "series %zu: invalid label name \"%.64s\"", idx,
				 l->name);
			return -EBADMSG;
		}
		if (!ingest_utf8_valid(l->value)) {
			snprintf(err, errlen,
				 "series %zu: label \"%.64s\" has a value that is not UTF-8", idx,
				 l->name);
			return -EBADMSG;
		}
		for (j = 0; j < i; j++) {
			if (!strcmp(ts->labels[j]->name, l->name)) {
				snprintf(err, errlen,
					 "series %zu: label name \"%.64s\" is not unique", idx,
					 l->name);
				return -EBADMSG;
			}
		}
	}
	if (!name) {
		snprintf(err, errlen, "series %zu has no metric name (__name__ label)", idx);
		return -EBADMSG;
	}
	if (!ingest_name_valid(name, true)) {
		snprintf(err, errlen, "series %zu: invalid metric name \"%.64s\"", idx, name);
		return -EBADMSG;
	}
	return 0;
}

/* Render the labels of one series as {a="b", ...} for an error message. */
static void ingest_rw_series_str(const Prometheus__TimeSeries *ts, char *buf, size_t len)
{
	size_t i, o;
	int n;

	n = snprintf(buf, len, "{");
	o = n > 0 ? (size_t)n : 0;
	for (i = 0; i < ts->n_labels && o < len; i++) {
		n = snprintf(buf + o, len - o, "%s%.48s=\"%.48s\"", i ? ", " : "",
			     ts->labels[i]->name, ts->labels[i]->value);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (o < len)
		snprintf(buf + o, len - o, "}");
}

/* Scratch for handing remote-write samples to the sink in chunks. */
struct ingest_rw_chunk {
	struct tsdb_sample s[INGEST_SINK_CHUNK];
	int errs[INGEST_SINK_CHUNK];
	/* where each sample came from, for the error message */
	const Prometheus__TimeSeries *ts[INGEST_SINK_CHUNK];
	int64_t t[INGEST_SINK_CHUNK];
	size_t n;
	int first_err;
};

static int ingest_rw_flush(struct ingest_rw_chunk *c, ingest_sink_fn sink, void *ctx,
			   struct ingest_rw_result *res)
{
	char series[200];
	size_t k;
	int ret;

	if (!c->n)
		return 0;
	for (k = 0; k < c->n; k++)
		c->errs[k] = 0;
	ret = sink(ctx, c->s, c->n, c->errs);
	if (ret < 0) {
		snprintf(res->error, sizeof(res->error), "storage: %s", strerror(-ret));
		return ret;
	}
	for (k = 0; k < c->n; k++) {
		int e = c->errs[k];

		if (!e) {
			res->accepted++;
			continue;
		}
		if (e != -ERANGE && e != -EEXIST && e != -EINVAL) {
			snprintf(res->error, sizeof(res->error), "storage: %s", strerror(-e));
			return e;
		}
		res->refused++;
		if (c->first_err)
			continue;
		c->first_err = e;
		ingest_rw_series_str(c->ts[k], series, sizeof(series));
		snprintf(res->error, sizeof(res->error), "%s for series %.160s at timestamp %lld",
			 e == -ERANGE ? "out of order sample" :
			 e == -EEXIST ? "duplicate sample for timestamp" :
					"invalid sample",
			 series, (long long)c->t[k]);
	}
	c->n = 0;
	return 0;
}

int ingest_decode_remote_write(const void *body, size_t len, size_t max_decoded,
			       ingest_sink_fn sink, void *ctx, struct ingest_rw_result *res)
{
	Prometheus__WriteRequest *wr = NULL;
	struct ingest_rw_chunk *c = NULL;
	struct pb_arena arena;
	struct tsdb_label *labels = NULL, *l;
	size_t dlen = 0, i, k, nl = 0;
	char *buf = NULL;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	pb_arena__init(&arena, 0);
	if (!max_decoded)
		max_decoded = INGEST_RW_MAX_DECODED;
	if (snappy_uncompressed_length(body, len, &dlen) != SNAPPY_OK) {
		snprintf(res->error, sizeof(res->error), "snappy: corrupt input");
		return -EBADMSG;
	}
	if (dlen > max_decoded) {
		snprintf(res->error, sizeof(res->error),
			 "decompressed body of %zu bytes exceeds the limit of %zu", dlen,
			 max_decoded);
		return -EBADMSG;
	}
	buf = malloc(dlen ? dlen : 1);
	if (!buf)
		return -ENOMEM;
	if (snappy_uncompress(body, len, buf, &dlen) != SNAPPY_OK) {
		snprintf(res->error, sizeof(res->error), "snappy: corrupt input");
		ret = -EBADMSG;
		goto cleanup;
	}
	/* the unpacked messages are ~3x the wire size: one block, rarely two */
	arena.hint = dlen * 3 > arena.hint ? dlen * 3 : arena.hint;
	wr = prometheus__write_request__unpack(&arena.alloc, dlen, (const uint8_t *)buf);
	if (!wr) {
		snprintf(res->error, sizeof(res->error),
			 "protobuf: not a valid prometheus.WriteRequest");
		ret = -EBADMSG;
		goto cleanup;
	}
	res->series = wr->n_timeseries;
	/* all labels first: a 400 for labels stores nothing */
	for (i = 0; i < wr->n_timeseries; i++) {
		ret = ingest_rw_check_series(wr->timeseries[i], i, res->error, sizeof(res->error));
		if (ret)
			goto cleanup;
		res->samples += wr->timeseries[i]->n_samples;
		nl += wr->timeseries[i]->n_labels;
	}
	/* nl is bounded by the decoded size: every label costs bytes on the wire */
	labels = malloc((nl ? nl : 1) * sizeof(*labels));
	c = malloc(sizeof(*c));
	if (!labels || !c) {
		ret = -ENOMEM;
		goto cleanup;
	}
	c->n = 0;
	c->first_err = 0;
	l = labels;
	for (i = 0; i < wr->n_timeseries; i++) {
		const Prometheus__TimeSeries *ts = wr->timeseries[i];

		for (k = 0; k < ts->n_labels; k++) {
			l[k].name = ts->labels[k]->name;
			l[k].value = ts->labels[k]->value;
		}
		for (k = 0; k < ts->n_samples; k++) {
			if (c->n == INGEST_SINK_CHUNK) {
				ret = ingest_rw_flush(c, sink, ctx, res);
				if (ret)
					goto cleanup;
			}
			c->s[c->n].labels = l;
			c->s[c->n].nlabels = ts->n_labels;
			c->s[c->n].t_ms = ts->samples[k]->timestamp;
			c->s[c->n].v = ts->samples[k]->value;
			c->ts[c->n] = ts;
			c->t[c->n] = ts->samples[k]->timestamp;
			c->n++;
		}
		l += ts->n_labels;
	}
	ret = ingest_rw_flush(c, sink, ctx, res);
	if (!ret && c->first_err)
		ret = -ERANGE;
cleanup:
	pb_arena__destroy(&arena);
	free(buf);
	free(labels);
	free(c);
	return ret;
}

/* ------------------------------------------------------------------ */
/* handlers */

int ingest__init(struct ingest *in, struct tsdb *db)
{
	if (!in || !db)
		return -EINVAL;
	memset(in, 0, sizeof(*in));
	in->db = db;
	return 0;
}

int ingest__routes(struct ingest *in, struct http_route *routes, size_t max)
{
	if (max < INGEST_NROUTES)
		return -ENOSPC;
	routes[0] = (struct http_route){ "POST", "/api/metrics", ingest_handle_json, in };
	routes[1] = (struct http_route){ "POST", "/api/v1/write", ingest_handle_remote_write, in };
	return INGEST_NROUTES;
}

void ingest__stats(const struct ingest *in, struct ingest_stats *st)
{
	st->json_requests = __atomic_load_n(&in->json_requests, __ATOMIC_RELAXED);
	st->rw_requests = __atomic_load_n(&in->rw_requests, __ATOMIC_RELAXED);
	st->samples_accepted = __atomic_load_n(&in->samples_accepted, __ATOMIC_RELAXED);
	st->samples_rejected = __atomic_load_n(&in->samples_rejected, __ATOMIC_RELAXED);
	st->bad_requests = __atomic_load_n(&in->bad_requests, __ATOMIC_RELAXED);
	st->storage_errors = __atomic_load_n(&in->storage_errors, __ATOMIC_RELAXED);
}

static void ingest_count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* {"accepted":N,"rejected":[...],"rejected_total":M} plus the error fields for a 400. */
static int ingest_json_answer(const struct ingest_json_result *res, struct http_response *resp,
			      int status, const char *error)
{
	json_t *o = NULL, *arr = NULL;
	char *out = NULL;
	size_t i;
	int ret = -ENOMEM;

	o = json_object();
	arr = json_array();
	if (!o || !arr)
		goto cleanup;
	if (error && (json_object_set_new(o, "status", json_string("error")) ||
		      json_object_set_new(o, "errorType", json_string("bad_data")) ||
		      json_object_set_new(o, "error", json_string(error))))
		goto cleanup;
	for (i = 0; i < res->nreported; i++) {
		if (json_array_append_new(arr, json_pack("{s:I,s:s}", "index",
							 (json_int_t)res->rejected[i].index,
							 "error", res->rejected[i].error)))
			goto cleanup;
	}
	if (json_object_set_new(o, "accepted", json_integer((json_int_t)res->accepted)) ||
	    json_object_set(o, "rejected", arr) ||
	    (res->nrejected &&
	     json_object_set_new(o, "rejected_total", json_integer((json_int_t)res->nrejected))))
		goto cleanup;
	out = json_dumps(o, JSON_COMPACT);
	if (!out)
		goto cleanup;
	free(resp->body);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body_len = strlen(out);
	resp->body = out;
	ret = 0;
cleanup:
	json_decref(arr);
	json_decref(o);
	return ret;
}

int ingest_handle_json(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct ingest *in = ctx;
	struct ingest_json_result res;
	int64_t now = in->now_ms ? in->now_ms() : ingest_wall_ms();
	char msg[64];
	int ret;

	ingest_count(&in->json_requests, 1);
	ret = ingest_parse_json(req->body, req->body_len, now, ingest_tsdb_sink, in->db, &res);
	if (ret == -EINVAL) {
		ingest_count(&in->bad_requests, 1);
		ingest_count(&in->samples_rejected, res.nrejected);
		ret = http_error(resp, 400, "bad_data", "%s", res.error);
		goto cleanup;
	}
	if (!ret && res.accepted)
		ret = tsdb__commit(in->db);
	if (ret) {
		/* nothing is acknowledged: the client retries (exact duplicates are harmless) */
		ingest_count(&in->storage_errors, 1);
		ret = http_error(resp, 500, "internal", "storage: %s", strerror(-ret));
		goto cleanup;
	}
	ingest_count(&in->samples_accepted, res.accepted);
	ingest_count(&in->samples_rejected, res.nrejected);
	if (res.nrejected && !res.accepted) {
		ingest_count(&in->bad_requests, 1);
		snprintf(msg, sizeof(msg), "all %zu items rejected", res.nrejected);
		ret = ingest_json_answer(&res, resp, 400, msg);
	} else {
		ret = ingest_json_answer(&res, resp, 200, NULL);
	}
cleanup:
	ingest_json_result__free(&res);
	return ret;
}

int ingest_handle_remote_write(const struct http_request *req, struct http_response *resp,
			       void *ctx)
{
	struct ingest *in = ctx;
	struct ingest_rw_result res;
	int ret, cret;

	ingest_count(&in->rw_requests, 1);
	if (req->content_encoding && req->content_encoding[0] &&
	    strcasecmp(req->content_encoding, "snappy")) {
		ingest_count(&in->bad_requests, 1);
		return http_error(resp, 415, "bad_data",
				  "%s encoding (compression) is not accepted; only snappy is",
				  req->content_encoding);
	}
	ret = ingest_decode_remote_write(req->body, req->body_len, in->rw_max_decoded,
					 ingest_tsdb_sink, in->db, &res);
	if (ret == -EBADMSG) {
		ingest_count(&in->bad_requests, 1);
		return http_error(resp, 400, "bad_data", "%s", res.error);
	}
	if (ret && ret != -ERANGE) {
		ingest_count(&in->storage_errors, 1);
		return http_error(resp, 500, "internal", "%s",
				  res.error[0] ? res.error : strerror(-ret));
	}
	/* the samples that were stored are acknowledged, also with a 400 */
	cret = res.accepted ? tsdb__commit(in->db) : 0;
	if (cret) {
		ingest_count(&in->storage_errors, 1);
		return http_error(resp, 500, "internal", "storage: %s", strerror(-cret));
	}
	ingest_count(&in->samples_accepted, res.accepted);
	ingest_count(&in->samples_rejected, res.refused);
	if (ret == -ERANGE) {
		ingest_count(&in->bad_requests, 1);
		return http_error(resp, 400, "bad_data", "%s (%zu of %zu samples refused)",
				  res.error, res.refused, res.samples);
	}
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 204;
	return 0;
}

/* One ingest counter, labelled with its route when route is not NULL. */
static void ingest_counter(struct metric_set *set, const char *name, const char *help,
			   const char *route, double v)
{
	struct metric_labels l;

	metric_labels__init(&l);
	if (route)
		metric_labels__add(&l, "route", route);
	metric_set__add_value(set, name, help, METRIC_COUNTER, &l, v);
}

static int ingest_sink_describe(void *ctx, struct metric_set *set)
{
	struct ingest_stats st;

	ingest__stats(ctx, &st);
	ingest_counter(set, "novamon_ingest_requests_total", "Ingest requests received, by route.",
		       "/api/metrics", st.json_requests);
	ingest_counter(set, "novamon_ingest_requests_total", "Ingest requests received, by route.",
		       "/api/v1/write", st.rw_requests);
	ingest_counter(set, "novamon_ingest_samples_accepted_total", "Ingested samples stored.",
		       NULL, st.samples_accepted);
	ingest_counter(set, "novamon_ingest_samples_rejected_total",
		       "Ingested samples refused (invalid, out of order).", NULL,
		       st.samples_rejected);
	ingest_counter(set, "novamon_ingest_bad_requests_total",
		       "Ingest requests refused as a whole (400, 413, 415).", NULL,
		       st.bad_requests);
	ingest_counter(set, "novamon_ingest_storage_errors_total",
		       "Ingest requests that failed in the store (500).", NULL, st.storage_errors);
	return 0;
}

struct tick_sink ingest__sink(struct ingest *in)
{
	return (struct tick_sink){
		.name = "ingest",
		.describe = ingest_sink_describe,
		.ctx = in,
	};
}
