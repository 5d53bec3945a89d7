/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: metric set builder, label builder and the store that publishes the
 * latest set to readers. See metrics.h for the contracts.
 *
 * A set is built by one thread at 1 Hz and is read-only once published, so
 * the builder needs no locking. Families are few (tens to a few hundred) and
 * are looked up by a linear scan; series are appended to a doubling array.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define METRICS_INITIAL_FAMILIES 32
#define METRICS_INITIAL_SERIES 8

struct metric_store {
	pthread_mutex_t lock;
	struct metric_set *set; /* holds one reference; NULL before the first publish */
	char *health_json;
};

void metric_labels__init(struct metric_labels *l)
{
	l->buf[0] = '\0';
	l->len = 0;
	l->truncated = 0;
}

/*
 * Append `name="value"` (with a leading comma unless first) at the end of l,
 * escaping \, " and newline in value. All or nothing: when the pair does not
 * fit, l keeps its earlier pairs and is marked truncated.
 */
void metric_labels__add(struct metric_labels *l, const char *name, const char *value)
{
	size_t cap = sizeof(l->buf) - 1; /* room for the NUL */
	size_t pos = l->len;
	size_t nlen;
	const char *v;

	if (l->truncated)
		return;
	if (!value)
		value = "";

	nlen = strlen(name);
	/* separator + name + =" ; the closing quote is checked at the end */
	if (pos + (pos ? 1 : 0) + nlen + 2 > cap)
		goto truncated;
	if (pos)
		l->buf[pos++] = ',';
	memcpy(l->buf + pos, name, nlen);
	pos += nlen;
	l->buf[pos++] = '=';
	l->buf[pos++] = '"';

	for (v = value; *v; v++) {
		char esc = 0;

		if (*v == '\\')
			esc = '\\';
		else if (*v == '"')
			esc = '"';
		else if (*v == '\n')
			esc = 'n';

		if (pos + (esc ? 2 : 1) > cap)
			goto truncated;
		if (esc) {
			l->buf[pos++] = '\\';
			l->buf[pos++] = esc;
		} else {
			l->buf[pos++] = *v;
		}
	}
	if (pos + 1 > cap)
		goto truncated;
	l->buf[pos++] = '"';
	l->buf[pos] = '\0';
	l->len = pos;
	return;

truncated:
	l->buf[l->len] = '\0';
	l->truncated = 1;
}

void metric_labels__addf(struct metric_labels *l, const char *name, const char *fmt, ...)
{
	char value[sizeof(l->buf)];
	va_list ap;
	int n;

	if (l->truncated)
		return;
	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value)) {
		/* could never fit in the label buffer anyway */
		l->truncated = 1;
		return;
	}
	metric_labels__add(l, name, value);
}

struct metric_set *metric_set__new(int64_t timestamp_ms)
{
	struct metric_set *set;

	set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	set->timestamp_ms = timestamp_ms;
	set->refcount = 1;
	return set;
}

static void metric_family_release(struct metric_family *fam)
{
	size_t i;

	for (i = 0; i < fam->nseries; i++) {
		free(fam->series[i].labels);
		free(fam->series[i].buckets);
	}
	free(fam->series);
	free(fam->name);
	free(fam->help);
}

struct metric_set *metric_set__free(struct metric_set *set)
{
	size_t i;

	if (!set)
		return NULL;
	for (i = 0; i < set->nfamilies; i++)
		metric_family_release(&set->families[i]);
	free(set->families);
	free(set);
	return NULL;
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static int metric_name_valid(const char *name)
{
	const char *c;

	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return 0;
	for (c = name; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == ':'))
			return 0;
	}
	return 1;
}

/* Histogram bounds must be finite and strictly ascending; +Inf is implied. */
static int metric_bounds_valid(const double *bounds, unsigned int nbounds)
{
	unsigned int i;

	if (nbounds && !bounds)
		return 0;
	for (i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]))
			return 0;
		if (i && !(bounds[i] > bounds[i - 1]))
			return 0;
	}
	return 1;
}

/*
 * Lookup is a linear scan by name: families are few and this runs once per
 * family per tick. Adding may move set->families, which is why metrics.h asks
 * callers not to hold a family pointer across metric_set__family() calls.
 */
struct metric_family *metric_set__family(struct metric_set *set, const char *name, const char *help,
					 enum metric_type type, const double *bounds,
					 unsigned int nbounds)
{
	struct metric_family *fam;
	size_t i;

	if (!set || !metric_name_valid(name) || !help || !*help ||
	    (type != METRIC_COUNTER && type != METRIC_GAUGE && type != METRIC_HISTOGRAM)) {
		errno = EINVAL;
		return NULL;
	}
	if (type != METRIC_HISTOGRAM) {
		bounds = NULL;
		nbounds = 0;
	} else if (!metric_bounds_valid(bounds, nbounds)) {
		errno = EINVAL;
		return NULL;
	}

	for (i = 0; i < set->nfamilies; i++) {
		fam = &set->families[i];
		if (strcmp(fam->name, name))
			continue;
		if (fam->type != type || fam->nbounds != nbounds ||
		    (nbounds && memcmp(fam->bounds, bounds, nbounds * sizeof(*bounds)))) {
			errno = EINVAL;
			return NULL;
		}
		return fam;
	}

	if (set->nfamilies == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : METRICS_INITIAL_FAMILIES;
		struct metric_family *n;

		n = reallocarray(set->families, cap, sizeof(*n));
		if (!n) {
			errno = ENOMEM;
			return NULL;
		}
		set->families = n;
		set->cap = cap;
	}

	fam = &set->families[set->nfamilies];
	memset(fam, 0, sizeof(*fam));
	fam->name = strdup(name);
	fam->help = strdup(help);
	if (!fam->name || !fam->help) {
		free(fam->name);
		free(fam->help);
		errno = ENOMEM;
		return NULL;
	}
	fam->type = type;
	fam->bounds = bounds;
	fam->nbounds = nbounds;
	set->nfamilies++;
	return fam;
}

/* Reserve and label the next series of fam; returns it or NULL with *err set. */
static struct metric_series *metric_family_append(struct metric_family *fam,
						  const struct metric_labels *labels, int *err)
{
	struct metric_series *s;
	char *l;

	if (labels && labels->truncated) {
		*err = -E2BIG;
		return NULL;
	}
	if (fam->nseries == fam->cap) {
		size_t cap = fam->cap ? fam->cap * 2 : METRICS_INITIAL_SERIES;
		struct metric_series *n;

		n = reallocarray(fam->series, cap, sizeof(*n));
		if (!n) {
			*err = -ENOMEM;
			return NULL;
		}
		fam->series = n;
		fam->cap = cap;
	}
	l = strdup(labels ? labels->buf : "");
	if (!l) {
		*err = -ENOMEM;
		return NULL;
	}
	s = &fam->series[fam->nseries];
	memset(s, 0, sizeof(*s));
	s->labels = l;
	return s;
}

int metric_family__add_value(struct metric_family *fam, const struct metric_labels *labels,
			     double value)
{
	struct metric_series *s;
	int err = 0;

	if (!fam || fam->type == METRIC_HISTOGRAM)
		return -EINVAL;
	s = metric_family_append(fam, labels, &err);
	if (!s)
		return err;
	s->value = value;
	fam->nseries++;
	return 0;
}

int metric_family__add_histogram(struct metric_family *fam, const struct metric_labels *labels,
				 const uint64_t *buckets, double sum)
{
	struct metric_series *s;
	size_t nb, i;
	uint64_t count = 0;
	int err = 0;

	if (!fam || fam->type != METRIC_HISTOGRAM || !buckets)
		return -EINVAL;
	nb = (size_t)fam->nbounds + 1;
	s = metric_family_append(fam, labels, &err);
	if (!s)
		return err;
	s->buckets = malloc(nb * sizeof(*s->buckets));
	if (!s->buckets) {
		free(s->labels);
		s->labels = NULL;
		return -ENOMEM;
	}
	memcpy(s->buckets, buckets, nb * sizeof(*s->buckets));
	for (i = 0; i < nb; i++)
		count += buckets[i];
	s->sum = sum;
	s->count = count;
	fam->nseries++;
	return 0;
}

const struct metric_family *metric_set__find(const struct metric_set *set, const char *name)
{
	size_t i;

	if (!set || !name)
		return NULL;
	for (i = 0; i < set->nfamilies; i++) {
		if (!strcmp(set->families[i].name, name))
			return &set->families[i];
	}
	return NULL;
}

struct metric_store *metric_store__new(void)
{
	struct metric_store *store;
	int err;

	store = calloc(1, sizeof(*store));
	if (!store)
		return NULL;
	err = pthread_mutex_init(&store->lock, NULL);
	if (err) {
		free(store);
		errno = err;
		return NULL;
	}
	return store;
}

/*
 * Drop one reference to set. The count only changes under store->lock; the
 * set itself is freed outside it.
 */
static void metric_store_unref(struct metric_store *store, struct metric_set *set)
{
	int last;

	if (!set)
		return;
	pthread_mutex_lock(&store->lock);
	last = --set->refcount == 0;
	pthread_mutex_unlock(&store->lock);
	if (last)
		metric_set__free(set);
}

/* All references taken with metric_store__get() must have been put. */
void metric_store__free(struct metric_store *store)
{
	if (!store)
		return;
	metric_store_unref(store, store->set);
	free(store->health_json);
	pthread_mutex_destroy(&store->lock);
	free(store);
}

/*
 * Replace the latest set and health JSON. The store takes over the set's
 * initial reference; the previous set is freed once its last reader puts it.
 */
void metric_store__publish(struct metric_store *store, struct metric_set *set, char *health_json)
{
	struct metric_set *old;
	char *old_health;

	pthread_mutex_lock(&store->lock);
	old = store->set;
	old_health = store->health_json;
	store->set = set;
	store->health_json = health_json;
	pthread_mutex_unlock(&store->lock);

	free(old_health);
	metric_store_unref(store, old);
}

struct metric_set *metric_store__get(struct metric_store *store, char **health_json)
{
	struct metric_set *set;
	char *health = NULL;

	pthread_mutex_lock(&store->lock);
	set = store->set;
	if (set)
		set->refcount++;
	if (health_json && store->health_json)
		health = strdup(store->health_json);
	pthread_mutex_unlock(&store->lock);

	if (health_json)
		*health_json = health;
	return set;
}

void metric_store__put(struct metric_store *store, struct metric_set *set)
{
	metric_store_unref(store, set);
}

/*
 * Format v so that Prometheus (Go strconv.ParseFloat) reads back exactly v:
 * NaN, +Inf, -Inf; integral values up to 2^53 without exponent or fraction;
 * everything else in the shortest of %.15g/%.16g/%.17g that round-trips.
 * Returns the length written into buf (at least len bytes).
 */
int metric_format_double(char *buf, size_t len, double v)
{
	int prec, n = 0;

	if (isnan(v))
		return snprintf(buf, len, "NaN");
	if (isinf(v))
		return snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	if (v == 0)
		return snprintf(buf, len, "0"); /* also -0 */
	/* the cast is exact in this range, and keeps libm out of the link */
	if (fabs(v) <= 9007199254740992.0 && v == (double)(int64_t)v)
		return snprintf(buf, len, "%.0f", v);
	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return n;
}

int metric_family__set_exemplar(struct metric_family *fam, const struct metric_exemplar *ex)
{
	static const uint8_t zero[16];

	if (!fam->nseries)
		return -ENOENT;
	if (fam->type == METRIC_GAUGE || !memcmp(ex->trace_id, zero, sizeof(zero)))
		return -EINVAL;
	fam->series[fam->nseries - 1].exemplar = *ex;
	fam->series[fam->nseries - 1].has_exemplar = true;
	return 0;
}

int metric_set__add_value(struct metric_set *set, const char *name, const char *help,
			  enum metric_type type, const struct metric_labels *labels, double v)
{
	struct metric_family *fam = metric_set__family(set, name, help, type, NULL, 0);
	struct metric_labels none;

	if (!fam)
		return -errno;
	if (!labels) {
		metric_labels__init(&none);
		labels = &none;
	}
	return metric_family__add_value(fam, labels, v);
}
