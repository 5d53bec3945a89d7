/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anomalies: per-second scoring of every stored series and the anomaly
 * records (see anomalies.h).
 *
 * Series ids of the store are dense and never reused, so slot_of[] maps an
 * id straight to its engine slot (or says the series is not scored). One
 * mutex guards slots and records: the tick holds it for its pass, the HTTP
 * handlers for a copy.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalies.h"
#include "engine.h"
#include "metrics.h"
#include "spans/logq.h"

#define SLOT_UNKNOWN (-1) /* not seen yet */
#define SLOT_IGNORED (-2) /* never scored: buckets, our own score series */
#define SLOT_FULL (-3) /* no free slot when it came: retried every minute */

enum series_kind {
	KIND_GAUGE,
	KIND_COUNTER, /* scored as a per-second rate */
};

struct slot {
	uint32_t series_id;
	uint8_t kind;
	bool has_prev;
	double prev_v;
	int64_t prev_t; /* of the newest sample seen */
	int64_t last_seen_ms; /* tick time when a new sample came */
	int64_t score_ref; /* tsdb ref of its score series; -1: none yet */
	uint64_t open_record; /* 0: none */
	uint32_t normal_run; /* normal verdicts since the last anomalous one */
	char *labels; /* "name\0value\0...", __name__ included */
	size_t labels_len;
	size_t nlabels;
};

/* One newest sample collected under the store's read lock. */
struct pending {
	uint32_t id;
	int64_t t;
	double v;
};

struct anomalies {
	struct tsdb *db;
	struct anomalies_opts o;
	struct engine *eng;
	pthread_mutex_t lock;

	int32_t *slot_of; /* by series id */
	size_t slot_of_cap;
	struct slot *slots; /* by engine slot */
	size_t nslots;
	float *x;
	struct engine_verdict *verdicts;
	int64_t full_retry_ms;

	struct pending *pend;
	size_t npend, pend_cap;
	/* labels of series first seen during the scan, copied for after it */
	char *newlab;
	size_t newlab_len, newlab_cap;
	int err; /* out of memory during the scan */

	struct anomaly_record *rec; /* ring of max_records */
	uint64_t next_id;

	struct logq *logq;

	/* the scoring thread (anomalies__start()): the tick only rings the bell */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t bell_lock;
	pthread_cond_t bell;
	bool pending, stopping;
	int64_t pending_ms;
	uint64_t skipped_ticks; /* a tick came while the previous one was being scored */

	uint64_t opened_total;
	uint64_t scored_total;
	uint64_t unscored; /* series without a slot */
	size_t used;
};

const char *anomaly_record_label(const struct anomaly_record *r, size_t i, const char **value)
{
	const char *p = r->labels;
	size_t k;

	if (i >= r->nlabels)
		return NULL;
	for (k = 0; k < i; k++) {
		p += strlen(p) + 1;
		p += strlen(p) + 1;
	}
	*value = p + strlen(p) + 1;
	return p;
}

static const char *label_get(const struct tsdb_label *l, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			return l[i].value;
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !memcmp(s + n - m, suffix, m);
}

static int slot_of_reserve(struct anomalies *a, uint32_t id)
{
	size_t cap = a->slot_of_cap ? a->slot_of_cap : 1024, i;
	int32_t *n;

	if (id < a->slot_of_cap)
		return 0;
	while (cap <= id)
		cap *= 2;
	n = realloc(a->slot_of, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (i = a->slot_of_cap; i < cap; i++)
		n[i] = SLOT_UNKNOWN;
	a->slot_of = n;
	a->slot_of_cap = cap;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the scan (store read lock held: no store calls, quick) */

static void scan_cb(void *ctx, uint32_t id, const struct tsdb_label *labels, size_t nlabels,
		    int64_t t_ms, double v)
{
	struct anomalies *a = ctx;
	int32_t s = id < a->slot_of_cap ? a->slot_of[id] : SLOT_UNKNOWN;
	struct pending *p;
	size_t i, need;

	if (a->err || s == SLOT_IGNORED)
		return;
	if (s >= 0 && t_ms <= a->slots[s].prev_t)
		return; /* nothing new */
	if (a->npend == a->pend_cap) {
		size_t cap = a->pend_cap ? a->pend_cap * 2 : 1024;
		struct pending *np = realloc(a->pend, cap * sizeof(*np));

		if (!np) {
			a->err = -ENOMEM;
			return;
		}
		a->pend = np;
		a->pend_cap = cap;
	}
	p = &a->pend[a->npend++];
	p->id = id;
	p->t = t_ms;
	p->v = v;
	if (s >= 0 || (s == SLOT_FULL && a->full_retry_ms))
		return;
	/* first sight (or a retry for a slot): keep its labels for after the scan */
	for (i = 0, need = sizeof(uint32_t) * 2; i < nlabels; i++)
		need += strlen(labels[i].name) + strlen(labels[i].value) + 2;
	if (a->newlab_len + need > a->newlab_cap) {
		size_t cap = a->newlab_cap ? a->newlab_cap : 4096;
		char *nl;

		while (cap < a->newlab_len + need)
			cap *= 2;
		nl = realloc(a->newlab, cap);
		if (!nl) {
			a->err = -ENOMEM;
			return;
		}
		a->newlab = nl;
		a->newlab_cap = cap;
	}
	{
		char *o = a->newlab + a->newlab_len;
		uint32_t hdr[2] = { id, (uint32_t)nlabels };

		memcpy(o, hdr, sizeof(hdr));
		o += sizeof(hdr);
		for (i = 0; i < nlabels; i++) {
			size_t ln = strlen(labels[i].name) + 1, lv = strlen(labels[i].value) + 1;

			memcpy(o, labels[i].name, ln);
			o += ln;
			memcpy(o, labels[i].value, lv);
			o += lv;
		}
		a->newlab_len = (size_t)(o - a->newlab);
	}
}

/* ------------------------------------------------------------------ */
/* slots */

/* Give the series of a newlab entry a slot (or mark it not scored). Returns the entry's size. */
static size_t slot_adopt(struct anomalies *a, const char *entry)
{
	uint32_t hdr[2];
	const char *p = entry + sizeof(hdr), *name = NULL, *start;
	struct tsdb_label l[TSDB_MAX_LABELS];
	struct slot *s;
	size_t i, n;
	int slot;

	memcpy(hdr, entry, sizeof(hdr));
	n = hdr[1] < TSDB_MAX_LABELS ? hdr[1] : TSDB_MAX_LABELS;
	start = p;
	for (i = 0; i < hdr[1]; i++) {
		const char *ln = p, *lv = p + strlen(p) + 1;

		p = lv + strlen(lv) + 1;
		if (i < n)
			l[i] = (struct tsdb_label){ ln, lv };
	}
	name = label_get(l, n, TSDB_NAME_LABEL);
	if (slot_of_reserve(a, hdr[0]))
		return (size_t)(p - entry);
	if (!name || !strcmp(name, ANOMALIES_SCORE_METRIC) || ends_with(name, "_bucket")) {
		a->slot_of[hdr[0]] = SLOT_IGNORED;
		return (size_t)(p - entry);
	}
	slot = engine__add(a->eng);
	if (slot < 0) {
		if (a->slot_of[hdr[0]] != SLOT_FULL)
			a->unscored++;
		a->slot_of[hdr[0]] = SLOT_FULL;
		return (size_t)(p - entry);
	}
	s = &a->slots[slot];
	memset(s, 0, sizeof(*s));
	s->labels = malloc((size_t)(p - start));
	if (!s->labels) {
		engine__remove(a->eng, slot);
		return (size_t)(p - entry);
	}
	memcpy(s->labels, start, (size_t)(p - start));
	s->labels_len = (size_t)(p - start);
	s->nlabels = hdr[1];
	s->series_id = hdr[0];
	s->score_ref = -1;
	s->prev_t = INT64_MIN;
	s->kind = ends_with(name, "_total") || ends_with(name, "_count") || ends_with(name, "_sum") ?
			  KIND_COUNTER :
			  KIND_GAUGE;
	if (a->slot_of[hdr[0]] == SLOT_FULL && a->unscored)
		a->unscored--;
	a->slot_of[hdr[0]] = slot;
	a->used++;
	return (size_t)(p - entry);
}

static void slot_release(struct anomalies *a, int slot)
{
	struct slot *s = &a->slots[slot];

	if (s->series_id < a->slot_of_cap)
		a->slot_of[s->series_id] = SLOT_UNKNOWN;
	free(s->labels);
	memset(s, 0, sizeof(*s));
	engine__remove(a->eng, slot);
	a->used--;
}

/* The value to score for a new sample of slot s: NaN when there is none (yet). */
static float slot_value(struct slot *s, int64_t t, double v)
{
	double x = NAN;

	if (s->kind == KIND_GAUGE)
		x = v;
	else if (s->has_prev && t > s->prev_t && v >= s->prev_v && isfinite(v))
		x = (v - s->prev_v) / ((double)(t - s->prev_t) / 1000.0);
	/* a counter reset (v < prev) scores nothing this tick */
	s->has_prev = true;
	s->prev_v = v;
	s->prev_t = t;
	return isfinite(x) ? (float)x : NAN;
}

/* ------------------------------------------------------------------ */
/* records */

static struct anomaly_record *record_get(struct anomalies *a, uint64_t id)
{
	struct anomaly_record *r;

	if (!id || id >= a->next_id || a->next_id - id > a->o.max_records)
		return NULL;
	r = &a->rec[(id - 1) % a->o.max_records];
	return r->id == id ? r : NULL;
}

static void record_peak(struct anomaly_record *r, const struct engine_verdict *v)
{
	if (v->score < r->peak_score)
		return;
	r->peak_score = v->score;
	r->score = v->score;
	r->expected = v->expected;
	r->actual = v->actual;
	r->spread = v->spread;
	r->deviation = v->deviation;
	r->detectors = v->detectors;
}

/* The "anomaly.raised" log record: metric, vm when the series has one, score, why. */
static void anomaly_log(struct anomalies *a, const struct anomaly_record *r)
{
	struct logq_attr attrs[6];
	const char *name, *value, *vm = NULL;
	size_t i, n = 0;

	if (!a->logq)
		return;
	for (i = 0; (name = anomaly_record_label(r, i, &value)); i++)
		if (!strcmp(name, "vm"))
			vm = value;
	attrs[n++] = LOGQ_STR("novamon.metric", r->metric);
	if (vm)
		attrs[n++] = LOGQ_STR("novamon.vm", vm);
	attrs[n++] = LOGQ_INT("novamon.anomaly.id", (int64_t)r->id);
	attrs[n++] = LOGQ_DOUBLE("novamon.anomaly.score", r->peak_score);
	attrs[n++] = LOGQ_DOUBLE("novamon.anomaly.actual", r->actual);
	attrs[n++] = LOGQ_DOUBLE("novamon.anomaly.expected", r->expected);
	logq__emit(a->logq, LOG_SEV_WARN, LOGQ_EVENT_ANOMALY_RAISED, NULL, NULL, attrs, n,
		   "anomaly in %s%s%s: %g where %g was expected", r->metric, vm ? " of vm " : "",
		   vm ? vm : "", r->actual, r->expected);
}

static void record_open(struct anomalies *a, struct slot *s, int64_t t,
			const struct engine_verdict *v)
{
	struct anomaly_record *r = &a->rec[(a->next_id - 1) % a->o.max_records];
	const char *name = NULL, *p = s->labels;
	size_t i, len = s->labels_len < sizeof(r->labels) ? s->labels_len : 0;

	memset(r, 0, sizeof(*r));
	r->id = a->next_id++;
	for (i = 0; i < s->nlabels; i++) {
		const char *lv = p + strlen(p) + 1;

		if (!strcmp(p, TSDB_NAME_LABEL))
			name = lv;
		p = lv + strlen(lv) + 1;
	}
	snprintf(r->metric, sizeof(r->metric), "%s", name ? name : "");
	/* a label set too long for the record keeps only the metric name */
	if (len) {
		memcpy(r->labels, s->labels, len);
		r->nlabels = s->nlabels;
	} else if (name) {
		len = snprintf(r->labels, sizeof(r->labels), "%s", TSDB_NAME_LABEL) + 1;
		snprintf(r->labels + len, sizeof(r->labels) - len, "%s", r->metric);
		r->nlabels = 1;
	}
	r->series_id = s->series_id;
	r->start_ms = t;
	r->end_ms = t;
	r->open = true;
	r->rate = s->kind == KIND_COUNTER;
	r->peak_score = -1;
	record_peak(r, v);
	s->open_record = r->id;
	a->opened_total++;
	anomaly_log(a, r);
}

static void slot_verdict(struct anomalies *a, struct slot *s, int64_t t,
			 const struct engine_verdict *v)
{
	struct anomaly_record *r = record_get(a, s->open_record);

	if (!r)
		s->open_record = 0;
	if (v->anomalous) {
		s->normal_run = 0;
		if (!r) {
			record_open(a, s, t, v);
			return;
		}
		r->end_ms = t;
		record_peak(r, v);
		return;
	}
	if (r && ++s->normal_run >= a->o.close_after_ticks) {
		r->open = false;
		s->open_record = 0;
	}
}

/* novamon_anomaly_score{metric="<name>", <labels but __name__>} = score at t */
static void slot_write_score(struct anomalies *a, struct slot *s, int64_t t, float score)
{
	struct tsdb_label l[TSDB_MAX_LABELS + 1];
	const char *p = s->labels;
	size_t i, n = 0;
	int64_t ref;

	if (s->score_ref < 0) {
		l[n++] = (struct tsdb_label){ TSDB_NAME_LABEL, ANOMALIES_SCORE_METRIC };
		for (i = 0; i < s->nlabels && n < TSDB_MAX_LABELS; i++) {
			const char *lv = p + strlen(p) + 1;

			/* an own "metric" label would clash: the name wins */
			if (!strcmp(p, TSDB_NAME_LABEL))
				l[n++] = (struct tsdb_label){ "metric", lv };
			else if (strcmp(p, "metric"))
				l[n++] = (struct tsdb_label){ p, lv };
			p = lv + strlen(lv) + 1;
		}
		ref = tsdb__ref(a->db, l, n);
		if (ref < 0)
			return;
		s->score_ref = ref;
	}
	if (tsdb__append_ref(a->db, (uint32_t)s->score_ref, t, score) == -ENOENT)
		s->score_ref = -1; /* the score series expired: made again next time */
}

/* ------------------------------------------------------------------ */
/* API */

struct anomalies *anomalies__new(struct tsdb *db, const struct anomalies_opts *opts)
{
	struct anomalies *a = NULL;
	struct engine_params p;

	if (!db) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	if (opts)
		a->o = *opts;
	if (!a->o.max_series)
		a->o.max_series = 65536;
	if (!a->o.max_records)
		a->o.max_records = 10000;
	if (!a->o.close_after_ticks)
		a->o.close_after_ticks = 10;
	if (!a->o.forget_after_seconds)
		a->o.forget_after_seconds = 600;
	if (!a->o.seasonal_period_seconds)
		a->o.seasonal_period_seconds = 86400;
	if (!a->o.heavy_budget)
		a->o.heavy_budget = 256;
	a->db = db;
	a->next_id = 1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->bell_lock, NULL);
	pthread_cond_init(&a->bell, NULL);

	engine_params_init(&p);
	p.slots = a->o.max_series;
	/*
	 * The heavy models cost ~100 KB each (forest nodes, GRU history): a few
	 * hundred series hold them at a time, flagged ones first, the rest in
	 * rotation; creating them is what made a tick with thousands of new
	 * series take seconds.
	 */
	p.heavy_budget = a->o.heavy_budget;
	p.max_heavy = a->o.heavy_budget * 2;
	p.iforest.trees = 32;
	p.iforest.sample_size = 64;
	p.seasonal.period = a->o.seasonal_period_seconds; /* one sample per second */
	/* a spike stays in the forest's window features for `window` ticks: keep
	 * it short so an anomaly ends seconds, not half a minute, after it */
	p.iforest.window = 8;
	a->eng = engine__new(&p);
	a->slots = calloc(a->o.max_series, sizeof(*a->slots));
	a->x = malloc(a->o.max_series * sizeof(*a->x));
	a->verdicts = malloc(a->o.max_series * sizeof(*a->verdicts));
	a->rec = calloc(a->o.max_records, sizeof(*a->rec));
	if (!a->eng || !a->slots || !a->x || !a->verdicts || !a->rec) {
		int e = errno ? errno : ENOMEM;

		anomalies__free(a);
		errno = e;
		return NULL;
	}
	return a;
}

void anomalies__free(struct anomalies *a)
{
	size_t i;

	if (!a)
		return;
	if (a->thread_started) {
		pthread_mutex_lock(&a->bell_lock);
		a->stopping = true;
		pthread_cond_signal(&a->bell);
		pthread_mutex_unlock(&a->bell_lock);
		pthread_join(a->thread, NULL);
	}
	engine__free(a->eng);
	if (a->slots)
		for (i = 0; i < a->o.max_series; i++)
			free(a->slots[i].labels);
	free(a->slots);
	free(a->x);
	free(a->verdicts);
	free(a->rec);
	free(a->slot_of);
	free(a->pend);
	free(a->newlab);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->bell_lock);
	pthread_cond_destroy(&a->bell);
	free(a);
}

static void *anomalies_main(void *arg)
{
	struct anomalies *a = arg;
	int64_t t;

	pthread_mutex_lock(&a->bell_lock);
	for (;;) {
		while (!a->pending && !a->stopping)
			pthread_cond_wait(&a->bell, &a->bell_lock);
		if (a->stopping)
			break;
		a->pending = false;
		t = a->pending_ms;
		pthread_mutex_unlock(&a->bell_lock);
		anomalies__tick(a, t);
		pthread_mutex_lock(&a->bell_lock);
	}
	pthread_mutex_unlock(&a->bell_lock);
	return NULL;
}

int anomalies__start(struct anomalies *a)
{
	int err;

	if (!a || a->thread_started)
		return -EINVAL;
	err = -pthread_create(&a->thread, NULL, anomalies_main, a);
	if (!err)
		a->thread_started = true;
	return err;
}

void anomalies__set_logq(struct anomalies *a, struct logq *q)
{
	pthread_mutex_lock(&a->lock);
	a->logq = q;
	pthread_mutex_unlock(&a->lock);
}

int anomalies__tick(struct anomalies *a, int64_t now_ms)
{
	size_t i, off;
	int err;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	a->npend = 0;
	a->newlab_len = 0;
	a->err = 0;
	/* the full-slot series get another chance once a minute */
	a->full_retry_ms = now_ms - a->full_retry_ms >= 60000 ? now_ms : 0;
	tsdb__each_latest(a->db, INT64_MIN, scan_cb, a);
	err = a->err;
	for (off = 0; off < a->newlab_len;)
		off += slot_adopt(a, a->newlab + off);

	for (i = 0; i < a->o.max_series; i++)
		a->x[i] = NAN;
	for (i = 0; i < a->npend; i++) {
		const struct pending *p = &a->pend[i];
		int32_t s = p->id < a->slot_of_cap ? a->slot_of[p->id] : SLOT_UNKNOWN;

		if (s < 0)
			continue;
		a->slots[s].last_seen_ms = now_ms;
		a->x[s] = slot_value(&a->slots[s], p->t, p->v);
	}
	engine__tick(a->eng, now_ms, a->x, a->verdicts);
	for (i = 0; i < a->o.max_series; i++) {
		struct slot *s = &a->slots[i];

		if (!s->labels)
			continue;
		if (isnan(a->x[i])) {
			if (now_ms - s->last_seen_ms > (int64_t)a->o.forget_after_seconds * 1000)
				slot_release(a, (int)i);
			continue;
		}
		a->scored_total++;
		slot_verdict(a, s, s->prev_t, &a->verdicts[i]);
		if (!a->o.no_score_series)
			slot_write_score(a, s, s->prev_t, a->verdicts[i].score);
	}
	pthread_mutex_unlock(&a->lock);
	return err;
}

static bool record_has_label(const struct anomaly_record *r, const char *name, const char *value)
{
	const char *n, *v;
	size_t i;

	for (i = 0; (n = anomaly_record_label(r, i, &v)); i++)
		if (!strcmp(n, name))
			return !strcmp(v, value);
	return false;
}

static bool record_matches(const struct anomaly_record *r, const struct anomalies_filter *f)
{

	if (f->start_ms && r->end_ms < f->start_ms)
		return false;
	if (f->end_ms && r->start_ms > f->end_ms)
		return false;
	if (f->metric && f->metric[0] && strcmp(f->metric, r->metric))
		return false;
	if (f->vm && !record_has_label(r, "vm", f->vm))
		return false;
	if (f->tenant && !record_has_label(r, "tenant", f->tenant))
		return false;
	if (f->state && f->state[0]) {
		if (!strcmp(f->state, "open") && !r->open)
			return false;
		if (!strcmp(f->state, "closed") && r->open)
			return false;
		if (!strcmp(f->state, "acknowledged") && !r->acknowledged)
			return false;
		if (!strcmp(f->state, "unacknowledged") && r->acknowledged)
			return false;
	}
	return true;
}

int anomalies__list(struct anomalies *a, const struct anomalies_filter *f,
		    struct anomaly_record **out, size_t *n)
{
	struct anomaly_record *res = NULL;
	size_t cap = 0, k = 0;
	uint64_t id;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&a->lock);
	for (id = a->next_id - 1; id >= 1 && a->next_id - id <= a->o.max_records; id--) {
		const struct anomaly_record *r = record_get(a, id);

		if (!r || (f && !record_matches(r, f)))
			continue;
		if (k == cap) {
			struct anomaly_record *g;

			cap = cap ? cap * 2 : 16;
			g = realloc(res, cap * sizeof(*g));
			if (!g) {
				pthread_mutex_unlock(&a->lock);
				free(res);
				return -ENOMEM;
			}
			res = g;
		}
		res[k++] = *r;
		if (f && f->limit && k == f->limit)
			break;
	}
	pthread_mutex_unlock(&a->lock);
	*out = res;
	*n = k;
	return 0;
}

int anomalies__acknowledge(struct anomalies *a, uint64_t id, bool false_positive, const char *who,
			   int64_t now_ms)
{
	struct anomaly_record *r;
	int err = 0;

	pthread_mutex_lock(&a->lock);
	r = record_get(a, id);
	if (!r) {
		err = -ENOENT;
		goto out;
	}
	if (r->acknowledged) {
		err = -EALREADY;
		goto out;
	}
	r->acknowledged = true;
	r->false_positive = false_positive;
	r->ack_ms = now_ms;
	snprintf(r->ack_by, sizeof(r->ack_by), "%s", who && who[0] ? who : "anonymous");
	/* tell the models, if the series still has its slot */
	if (r->series_id < a->slot_of_cap && a->slot_of[r->series_id] >= 0)
		engine__label(a->eng, a->slot_of[r->series_id], r->start_ms, r->end_ms,
			      !false_positive);
out:
	pthread_mutex_unlock(&a->lock);
	return err;
}

void anomalies__performance(struct anomalies *a, struct modelperf_report *out)
{
	engine__performance(a->eng, out);
}

/* ------------------------------------------------------------------ */
/* tick sink */

static int anomalies_sink_flush(void *ctx, int64_t now_ms)
{
	struct anomalies *a = ctx;

	if (!a->thread_started)
		return anomalies__tick(a, now_ms);
	pthread_mutex_lock(&a->bell_lock);
	if (a->pending)
		a->skipped_ticks++; /* still scoring: the newest samples wait a second */
	a->pending = true;
	a->pending_ms = now_ms;
	pthread_cond_signal(&a->bell);
	pthread_mutex_unlock(&a->bell_lock);
	return 0;
}

static int anomalies_sink_describe(void *ctx, struct metric_set *set)
{
	struct anomalies *a = ctx;
	uint64_t opened, scored, unscored, used, open = 0, id;

	pthread_mutex_lock(&a->lock);
	opened = a->opened_total;
	scored = a->scored_total;
	unscored = a->unscored;
	used = a->used;
	for (id = a->next_id - 1; id >= 1 && a->next_id - id <= a->o.max_records; id--) {
		const struct anomaly_record *r = record_get(a, id);

		if (r && r->open)
			open++;
	}
	pthread_mutex_unlock(&a->lock);
	metric_set__add_value(set, "novamon_anomalies_open", "Anomalies in progress.", METRIC_GAUGE,
			      NULL, (double)open);
	metric_set__add_value(set, "novamon_anomalies_total", "Anomalies detected.",
			      METRIC_COUNTER, NULL, (double)opened);
	metric_set__add_value(set, "novamon_anomaly_series",
			      "Series scored by the anomaly detectors.", METRIC_GAUGE, NULL,
			      (double)used);
	metric_set__add_value(set, "novamon_anomaly_series_unscored",
			      "Series not scored: every detector slot was taken.", METRIC_GAUGE,
			      NULL, (double)unscored);
	pthread_mutex_lock(&a->bell_lock);
	metric_set__add_value(set, "novamon_anomaly_ticks_skipped_total",
			      "Ticks not scored because the previous one was still being scored.",
			      METRIC_COUNTER, NULL, (double)a->skipped_ticks);
	pthread_mutex_unlock(&a->bell_lock);
	metric_set__add_value(set, "novamon_anomaly_samples_scored_total",
			      "Samples scored by the anomaly detectors.", METRIC_COUNTER, NULL,
			      (double)scored);
	return 0;
}

struct tick_sink anomalies__sink(struct anomalies *a)
{
	return (struct tick_sink){
		.name = "anomalies",
		.flush = anomalies_sink_flush,
		.describe = anomalies_sink_describe,
		.ctx = a,
	};
}
