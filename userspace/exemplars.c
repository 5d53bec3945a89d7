/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exemplars: the bounded exemplar store (see exemplars.h).
 *
 * A ring of entries; each owns one allocation holding its series' name and
 * rendered labels, freed when the entry is overwritten. A query scans the
 * ring under the lock, keeps the entries in range whose series match, sorts
 * them by series then age, and hands each series' run to the callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exemplars.h"
#include "feed.h"
#include "tsdb/matcher.h"

#define EXEMPLARS_MAX_LABELS 32
#define EXEMPLARS_LABEL_BUF 1024
#define EXEMPLARS_MAX_MATCHERS 64

struct exemplars_entry {
	char *series; /* "name\0labels\0" */
	uint64_t seq; /* order of arrival */
	struct metric_exemplar ex;
};

struct exemplars {
	pthread_mutex_t lock;
	struct exemplars_entry *ring;
	size_t max;
	uint64_t appended;
};

struct exemplars *exemplars__new(size_t max)
{
	struct exemplars *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->max = max ? max : EXEMPLARS_DEFAULT_MAX;
	x->ring = calloc(x->max, sizeof(*x->ring));
	if (!x->ring) {
		free(x);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&x->lock, NULL);
	return x;
}

struct exemplars *exemplars__free(struct exemplars *x)
{
	size_t i;

	if (!x)
		return NULL;
	for (i = 0; i < x->max; i++)
		free(x->ring[i].series);
	pthread_mutex_destroy(&x->lock);
	free(x->ring);
	free(x);
	return NULL;
}

int exemplars__add(struct exemplars *x, const char *name, const char *labels,
		   const struct metric_exemplar *ex)
{
	size_t nl = strlen(name), ll = strlen(labels);
	struct exemplars_entry *e;
	char *series;

	if (!x || !nl)
		return -EINVAL;
	series = malloc(nl + ll + 2);
	if (!series)
		return -ENOMEM;
	memcpy(series, name, nl + 1);
	memcpy(series + nl + 1, labels, ll + 1);
	pthread_mutex_lock(&x->lock);
	e = &x->ring[x->appended % x->max];
	free(e->series);
	e->series = series;
	e->seq = x->appended++;
	e->ex = *ex;
	pthread_mutex_unlock(&x->lock);
	return 0;
}

/* ---- the tick sink ---- */

/* The exemplar of histogram series s, kept on the _bucket series holding its value. */
static int exemplars_add_bucket(struct exemplars *x, const struct metric_family *fam,
				const struct metric_series *s)
{
	char name[256], labels[640], le[40];
	unsigned int b;

	for (b = 0; b < fam->nbounds && s->exemplar.value > fam->bounds[b]; b++)
		;
	if (b < fam->nbounds)
		metric_format_double(le, sizeof(le), fam->bounds[b]);
	else
		snprintf(le, sizeof(le), "+Inf");
	if ((size_t)snprintf(name, sizeof(name), "%s_bucket", fam->name) >= sizeof(name) ||
	    (size_t)snprintf(labels, sizeof(labels), "%s%sle=\"%s\"", s->labels,
			     s->labels[0] ? "," : "", le) >= sizeof(labels))
		return -E2BIG;
	return exemplars__add(x, name, labels, &s->exemplar);
}

static int exemplars_sink_set(void *ctx, const struct metric_set *set, int64_t t_ms)
{
	struct exemplars *x = ctx;
	int failed = 0;
	size_t f, i;

	for (f = 0; f < set->nfamilies; f++) {
		const struct metric_family *fam = &set->families[f];

		for (i = 0; i < fam->nseries; i++) {
			const struct metric_series *s = &fam->series[i];
			int err;

			/* new this tick: a series repeats its latest exemplar on later sets */
			if (!s->has_exemplar || s->exemplar.timestamp_ms != t_ms)
				continue;
			err = fam->type == METRIC_HISTOGRAM ?
				      exemplars_add_bucket(x, fam, s) :
				      exemplars__add(x, fam->name, s->labels, &s->exemplar);
			if (err)
				failed++;
		}
	}
	return failed;
}

static int exemplars_sink_describe(void *ctx, struct metric_set *set)
{
	struct exemplars_stats st;

	exemplars__stats(ctx, &st);
	metric_set__add_value(set, "novamon_exemplars_appended_total",
			      "Exemplars kept by the in-memory exemplar store (query_exemplars).",
			      METRIC_COUNTER, NULL, (double)st.appended);
	metric_set__add_value(set, "novamon_exemplars_in_storage",
			      "Exemplars the in-memory exemplar store holds now.", METRIC_GAUGE,
			      NULL, (double)st.in_storage);
	metric_set__add_value(set, "novamon_exemplars_max",
			      "Capacity of the in-memory exemplar store (spans.max_exemplars).",
			      METRIC_GAUGE, NULL, (double)st.max);
	return 0;
}

struct tick_sink exemplars__tick_sink(struct exemplars *x)
{
	return (struct tick_sink){
		.name = "exemplars",
		.set = exemplars_sink_set,
		.describe = exemplars_sink_describe,
		.ctx = x,
	};
}

void exemplars__stats(struct exemplars *x, struct exemplars_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	st->appended = x->appended;
	st->in_storage = x->appended < x->max ? x->appended : x->max;
	st->max = x->max;
	pthread_mutex_unlock(&x->lock);
}

/* ---- queries ---- */

/* Whether the series labels l[0..n) satisfy cm (a missing label is ""). */
static bool exemplars_cmatch(const struct tsdb_cmatcher *cm, const struct tsdb_label *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(l[i].name, cm->m->name))
			return tsdb_cmatcher__match(cm, l[i].value);
	return tsdb_cmatcher__match(cm, "");
}

/* The labels of an entry's series, __name__ first, values in buf. Count or < 0. */
static int exemplars_labels(const char *series, struct tsdb_label *l, char *buf)
{
	int n;

	l[0].name = "__name__";
	l[0].value = series;
	n = feed_parse_labels(series + strlen(series) + 1, l + 1, EXEMPLARS_MAX_LABELS - 1, buf,
			      EXEMPLARS_LABEL_BUF);
	return n < 0 ? n : n + 1;
}

static int exemplars_cmp_series(const void *a, const void *b, void *arg)
{
	const struct exemplars_entry *ring = arg;
	const struct exemplars_entry *ea = &ring[*(const size_t *)a];
	const struct exemplars_entry *eb = &ring[*(const size_t *)b];
	int c = strcmp(ea->series, eb->series);

	if (!c)
		c = strcmp(ea->series + strlen(ea->series) + 1,
			   eb->series + strlen(eb->series) + 1);
	if (!c)
		c = ea->seq < eb->seq ? -1 : ea->seq > eb->seq;
	return c;
}

static bool exemplars_same_series(const struct exemplars_entry *a, const struct exemplars_entry *b)
{
	size_t n = strlen(a->series);

	return !strcmp(a->series, b->series) && !strcmp(a->series + n + 1, b->series + n + 1);
}

int exemplars__query(struct exemplars *x, const struct exemplars_selector *sel, size_t nsel,
		     int64_t start_ms, int64_t end_ms, exemplars_series_fn fn, void *ctx)
{
	struct tsdb_cmatcher cm[EXEMPLARS_MAX_MATCHERS];
	const struct metric_exemplar **run = NULL;
	struct tsdb_label l[EXEMPLARS_MAX_LABELS];
	char buf[EXEMPLARS_LABEL_BUF];
	size_t ncm = 0, held, i, j, k, s, nhit = 0, *hit = NULL;
	int rc = 0, n;

	if (!x)
		return 0;
	for (s = 0; s < nsel; s++) {
		for (j = 0; j < sel[s].n; j++) {
			if (ncm == EXEMPLARS_MAX_MATCHERS) {
				rc = -E2BIG;
				goto out;
			}
			rc = tsdb_cmatcher__init(&cm[ncm], &sel[s].m[j]);
			if (rc)
				goto out;
			ncm++;
		}
	}
	pthread_mutex_lock(&x->lock);
	held = x->appended < x->max ? x->appended : x->max;
	hit = malloc((held ? held : 1) * sizeof(*hit));
	run = malloc((held ? held : 1) * sizeof(*run));
	if (!hit || !run) {
		rc = -ENOMEM;
		goto unlock;
	}
	for (i = 0; i < held; i++) {
		const struct exemplars_entry *e = &x->ring[i];
		bool any = false;

		if (e->ex.timestamp_ms < start_ms || e->ex.timestamp_ms > end_ms)
			continue;
		n = exemplars_labels(e->series, l, buf);
		if (n < 0)
			continue;
		for (s = 0, k = 0; s < nsel && !any; k += sel[s].n, s++) {
			any = true;
			for (j = 0; j < sel[s].n && any; j++)
				any = exemplars_cmatch(&cm[k + j], l, (size_t)n);
		}
		if (any)
			hit[nhit++] = i;
	}
	qsort_r(hit, nhit, sizeof(*hit), exemplars_cmp_series, x->ring);
	for (i = 0; i < nhit && !rc; i = j) {
		const struct exemplars_entry *first = &x->ring[hit[i]];

		for (j = i; j < nhit && exemplars_same_series(first, &x->ring[hit[j]]); j++)
			run[j - i] = &x->ring[hit[j]].ex;
		n = exemplars_labels(first->series, l, buf);
		if (n >= 0)
			rc = fn(ctx, l, (size_t)n, run, j - i);
	}
unlock:
	pthread_mutex_unlock(&x->lock);
out:
	for (i = 0; i < ncm; i++)
		tsdb_cmatcher__fini(&cm[i]);
	free(hit);
	free(run);
	return rc;
}
