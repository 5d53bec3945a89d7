/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exposition: Prometheus text format 0.0.4 for a struct metric_set.
 *
 * The output is sized up front from the set (so a typical render is one
 * allocation) and grows by doubling if the estimate was short. Families are
 * written in the order they were added, series in the order they were added.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exposition.h"
#include "metrics.h"

/* Longest number we print: "-1.2345678901234567e-308" plus slack. */
#define EXPO_NUM_MAX 40

struct expo_buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
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

/* HELP text escaping: only \ and newline (quotes are literal there). */
static void expo_put_help(struct expo_buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		if (*s != '\\' && *s != '\n')
			continue;
		expo_put(b, run, (size_t)(s - run));
		expo_puts(b, *s == '\\' ? "\\\\" : "\\n");
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

static void expo_put_family(struct expo_buf *b, const struct metric_family *fam)
{
	size_t i;

	expo_puts(b, "# HELP ");
	expo_puts(b, fam->name);
	expo_puts(b, " ");
	expo_put_help(b, fam->help ? fam->help : "");
	expo_puts(b, "\n# TYPE ");
	expo_puts(b, fam->name);
	expo_puts(b, " ");
	expo_puts(b, expo_type_name(fam->type));
	expo_puts(b, "\n");

	for (i = 0; i < fam->nseries; i++) {
		const struct metric_series *s = &fam->series[i];

		if (fam->type == METRIC_HISTOGRAM) {
			expo_put_histogram(b, fam, s);
			continue;
		}
		expo_put_series_name(b, fam->name, "", s->labels);
		expo_put_double(b, s->value);
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
			total += lines * (name + strlen(fam->series[j].labels) + 64);
	}
	return total;
}

int exposition_render(const struct metric_set *set, char **out, size_t *len)
{
	struct expo_buf b = { 0 };
	size_t i;

	*out = NULL;
	*len = 0;
	if (expo_reserve(&b, set ? expo_estimate(set) : 0))
		return b.err;
	b.p[0] = '\0';
	for (i = 0; set && i < set->nfamilies; i++)
		expo_put_family(&b, &set->families[i]);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
