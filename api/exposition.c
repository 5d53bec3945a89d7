/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exposition: Prometheus text format 0.0.4, or OpenMetrics 1.0.0 text, for a
 * struct metric_set.
 *
 * The output is sized up front from the set (so a typical render is one
 * allocation) and grows by doubling if the estimate was short. Families are
 * written in the order they were added, series in the order they were added.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exposition.h"
#include "metrics.h"

/* Longest number we print: "-1.2345678901234567e-308" plus slack. */
#define EXPO_NUM_MAX 40

struct expo_buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
	bool om; /* OpenMetrics */
};

/* Make room for n more bytes plus a NUL. Sticky error; returns 0 or -ENOMEM. */
static int expo_reserve(struct expo_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return b->err;
	if (b->len + n + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
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

static void expo_put(struct expo_buf *b, const char *s, size_t n)
{
	if (expo_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void expo_puts(struct expo_buf *b, const char *s)
{
	expo_put(b, s, strlen(s));
}

/*
 * HELP text escaping: \ and newline; in OpenMetrics also " (its HELP is an
 * escaped string like label values; the classic format keeps quotes literal).
 */
static void expo_put_help(struct expo_buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		if (*s != '\\' && *s != '\n' && (*s != '"' || !b->om))
			continue;
		expo_put(b, run, (size_t)(s - run));
		expo_puts(b, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
		run = s + 1;
	}
	expo_put(b, run, (size_t)(s - run));
}

/* The one float formatting the exposition and the store's `le` labels share. */
static int expo_format_double(char *buf, double v)
{
	return metric_format_double(buf, EXPO_NUM_MAX, v);
}

static void expo_put_double(struct expo_buf *b, double v)
{
	char num[EXPO_NUM_MAX];

	expo_put(b, num, (size_t)expo_format_double(num, v));
}

static void expo_put_u64(struct expo_buf *b, uint64_t v)
{
	char num[EXPO_NUM_MAX];

	expo_put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, v));
}

static void expo_put_hex(struct expo_buf *b, const uint8_t *id, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char buf[64];
	size_t i;

	for (i = 0; i < n && 2 * i + 1 < sizeof(buf); i++) {
		buf[2 * i] = hex[id[i] >> 4];
		buf[2 * i + 1] = hex[id[i] & 15];
	}
	expo_put(b, buf, 2 * i);
}

/*
 * ` # {trace_id="...",span_id="..."} value timestamp` (OpenMetrics only).
 * The label set is 7 + 32 + 7 + 16 = 62 characters, within the spec's 128.
 */
static void expo_put_exemplar(struct expo_buf *b, const struct metric_exemplar *ex)
{
	char num[EXPO_NUM_MAX];

	expo_puts(b, " # {trace_id=\"");
	expo_put_hex(b, ex->trace_id, sizeof(ex->trace_id));
	expo_puts(b, "\",span_id=\"");
	expo_put_hex(b, ex->span_id, sizeof(ex->span_id));
	expo_puts(b, "\"} ");
	expo_put_double(b, ex->value);
	expo_put(b, num,
		 (size_t)snprintf(num, sizeof(num), " %" PRId64 ".%03" PRId64,
				  ex->timestamp_ms / 1000, ex->timestamp_ms % 1000));
}

/* `name{labels}` or bare `name` for a series without labels, then a space. */
static void expo_put_series_name(struct expo_buf *b, const char *name, const char *suffix,
				 const char *labels)
{
	expo_puts(b, name);
	expo_puts(b, suffix);
	if (labels[0]) {
		expo_puts(b, "{");
		expo_puts(b, labels);
		expo_puts(b, "}");
	}
	expo_puts(b, " ");
}

static void expo_put_histogram(struct expo_buf *b, const struct metric_family *fam,
			       const struct metric_series *s)
{
	bool ex = b->om && s->has_exemplar;
	uint64_t cumulative = 0;
	unsigned int i;

	for (i = 0; i <= fam->nbounds; i++) {
		cumulative += s->buckets[i];
		expo_puts(b, fam->name);
		expo_puts(b, "_bucket{");
		if (s->labels[0]) {
			expo_puts(b, s->labels);
			expo_puts(b, ",");
		}
		expo_puts(b, "le=\"");
		if (i < fam->nbounds)
			expo_put_double(b, fam->bounds[i]);
		else
			expo_puts(b, "+Inf");
		expo_puts(b, "\"} ");
		expo_put_u64(b, cumulative);
		if (ex && (i == fam->nbounds || s->exemplar.value <= fam->bounds[i])) {
			expo_put_exemplar(b, &s->exemplar); /* on the bucket holding its value */
			ex = false;
		}
		expo_puts(b, "\n");
	}
	expo_put_series_name(b, fam->name, "_sum", s->labels);
	expo_put_double(b, s->sum);
	expo_puts(b, "\n");
	expo_put_series_name(b, fam->name, "_count", s->labels);
	expo_put_u64(b, s->count);
	expo_puts(b, "\n");
}

static const char *expo_type_name(enum metric_type type)
{
	switch (type) {
	case METRIC_COUNTER:
		return "counter";
	case METRIC_GAUGE:
		return "gauge";
	case METRIC_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

static bool expo_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && !strcmp(s + n - k, suffix);
}

static void expo_put_family(struct expo_buf *b, const struct metric_family *fam)
{
	const char *type = expo_type_name(fam->type);
	size_t i, name_len = strlen(fam->name);

	if (b->om && fam->type == METRIC_COUNTER) {
		/* OpenMetrics: counter family foo, samples foo_total */
		if (expo_has_suffix(fam->name, "_total"))
			name_len -= strlen("_total");
		else
			type = "unknown";
	}
	expo_puts(b, "# HELP ");
	expo_put(b, fam->name, name_len);
	expo_puts(b, " ");
	expo_put_help(b, fam->help ? fam->help : "");
	expo_puts(b, "\n# TYPE ");
	expo_put(b, fam->name, name_len);
	expo_puts(b, " ");
	expo_puts(b, type);
	expo_puts(b, "\n");

	for (i = 0; i < fam->nseries; i++) {
		const struct metric_series *s = &fam->series[i];

		if (fam->type == METRIC_HISTOGRAM) {
			expo_put_histogram(b, fam, s);
			continue;
		}
		expo_put_series_name(b, fam->name, "", s->labels);
		expo_put_double(b, s->value);
		if (b->om && s->has_exemplar && name_len < strlen(fam->name))
			expo_put_exemplar(b, &s->exemplar);
		expo_puts(b, "\n");
	}
}

/* A generous guess of the rendered size, so most renders allocate once. */
static size_t expo_estimate(const struct metric_set *set)
{
	size_t total = 1, i, j;

	for (i = 0; i < set->nfamilies; i++) {
		const struct metric_family *fam = &set->families[i];
		size_t name = strlen(fam->name);
		size_t lines = fam->type == METRIC_HISTOGRAM ? fam->nbounds + 3 : 1;

		total += 2 * name + 2 * strlen(fam->help ? fam->help : "") + 32;
		for (j = 0; j < fam->nseries; j++)
			total += lines * (name + strlen(fam->series[j].labels) + 64) +
				 (fam->series[j].has_exemplar ? 128 : 0);
	}
	return total;
}

int exposition_render(const struct metric_set *set, char **out, size_t *len)
{
	return exposition_render_format(set, EXPOSITION_TEXT, out, len);
}

int exposition_render_format(const struct metric_set *set, enum exposition_format f, char **out,
			     size_t *len)
{
	struct expo_buf b = { .om = f == EXPOSITION_OPENMETRICS };
	size_t i;

	*out = NULL;
	*len = 0;
	if (expo_reserve(&b, set ? expo_estimate(set) : 0))
		return b.err;
	b.p[0] = '\0';
	for (i = 0; set && i < set->nfamilies; i++)
		expo_put_family(&b, &set->families[i]);
	if (b.om)
		expo_puts(&b, "# EOF\n");
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

const char *exposition_content_type(enum exposition_format f)
{
	return f == EXPOSITION_OPENMETRICS ? EXPOSITION_OPENMETRICS_CONTENT_TYPE :
					     EXPOSITION_CONTENT_TYPE;
}

/* The first c in [p, end), or NULL. */
static const char *expo_find(const char *p, const char *end, char c)
{
	for (; p < end; p++)
		if (*p == c)
			return p;
	return NULL;
}

/* Case-insensitive prefix test of [p, end) against word; true on a match. */
static bool expo_token_is(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(end - p) == n && !strncasecmp(p, word, n);
}

/*
 * One media range of an Accept header, [p, end): its q (0..1, 1 when not
 * given; -1 when malformed) and whether it is OpenMetrics text (1), text
 * (plain or wildcard, 0) or something else (-1).
 */
static int expo_media_range(const char *p, const char *end, double *q)
{
	const char *semi, *type_end;
	bool version_ok = true;
	int kind;

	*q = 1.0;
	while (p < end && isspace((unsigned char)*p))
		p++;
	semi = expo_find(p, end, ';');
	type_end = semi ? semi : end;
	while (type_end > p && isspace((unsigned char)type_end[-1]))
		type_end--;
	if (expo_token_is(p, type_end, "application/openmetrics-text"))
		kind = 1;
	else if (expo_token_is(p, type_end, "text/plain") || expo_token_is(p, type_end, "*/*") ||
		 expo_token_is(p, type_end, "text/*"))
		kind = 0;
	else
		kind = -1;
	while (semi) {
		const char *param = semi + 1, *eq, *pend, *v;

		semi = expo_find(param, end, ';');
		pend = semi ? semi : end;
		while (param < pend && isspace((unsigned char)*param))
			param++;
		eq = expo_find(param, pend, '=');
		if (!eq)
			continue;
		v = eq + 1;
		while (pend > v && isspace((unsigned char)pend[-1]))
			pend--;
		if (expo_token_is(param, eq, "q")) {
			char num[16];
			char *stop;

			if ((size_t)(pend - v) >= sizeof(num))
				return *q = -1, kind;
			memcpy(num, v, (size_t)(pend - v));
			num[pend - v] = '\0';
			*q = strtod(num, &stop);
			if (stop == num || *stop || !(*q >= 0 && *q <= 1))
				*q = -1;
		} else if (expo_token_is(param, eq, "version") && kind == 1) {
			version_ok = expo_token_is(v, pend, "1.0.0") ||
				     expo_token_is(v, pend, "0.0.1");
		}
	}
	return kind == 1 && !version_ok ? -1 : kind;
}

enum exposition_format exposition_negotiate(const char *accept)
{
	double best_om = -1, best_text = -1, q;
	const char *p = accept, *comma, *end;
	int kind;

	if (!accept)
		return EXPOSITION_TEXT;
	end = accept + strlen(accept);
	for (; p < end; p = comma + 1) {
		comma = expo_find(p, end, ',');
		if (!comma)
			comma = end;
		kind = expo_media_range(p, comma, &q);
		if (kind == 1 && q > best_om)
			best_om = q;
		else if (kind == 0 && q > best_text)
			best_text = q;
	}
	return best_om > 0 && best_om > best_text ? EXPOSITION_OPENMETRICS : EXPOSITION_TEXT;
}
