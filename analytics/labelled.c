/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "labelled.h"
#include "rng.h"

#define LABELLED_LEVEL 100.0
#define LABELLED_AMP1 8.0
#define LABELLED_AMP2 3.0
#define LABELLED_PI2 6.283185307179586

static const char *const labelled_kind_names[LABELLED_KINDS] = {
	[LABELLED_NONE] = "none",
	[LABELLED_SPIKE] = "spike",
	[LABELLED_DIP] = "dip",
	[LABELLED_LEVEL_SHIFT] = "level_shift",
	[LABELLED_TREND_CHANGE] = "trend_change",
	[LABELLED_VARIANCE_CHANGE] = "variance_change",
	[LABELLED_SEASONALITY_BREAK] = "seasonality_break",
	[LABELLED_STUCK] = "stuck",
	[LABELLED_SLOW_DRIFT] = "slow_drift",
};

const char *labelled_kind_name(enum labelled_kind k)
{
	return (unsigned)k < LABELLED_KINDS ? labelled_kind_names[k] : NULL;
}

/* Samples an anomaly of kind k lasts (the labelled window). */
static uint32_t labelled_duration(enum labelled_kind k, uint32_t period)
{
	switch (k) {
	case LABELLED_SPIKE:
	case LABELLED_DIP:
		return 1;
	case LABELLED_LEVEL_SHIFT:
		return 30;
	case LABELLED_SEASONALITY_BREAK:
		return 2 * period;
	case LABELLED_SLOW_DRIFT:
		return 300;
	default:
		return 60;
	}
}

/* Whether the anomaly can exist at all in that kind of series. */
static bool labelled_possible(enum labelled_kind k, bool noise, bool seasonal)
{
	if (k == LABELLED_SEASONALITY_BREAK)
		return seasonal;
	if (k == LABELLED_STUCK)
		return noise || seasonal;
	return true;
}

static double labelled_sign(struct rng *r)
{
	return rng_below(r, 2) ? 1.0 : -1.0;
}

static double labelled_range(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_uniform(r);
}

static double labelled_season(uint32_t period, double i)
{
	double ph = LABELLED_PI2 * i / period;

	return LABELLED_AMP1 * sin(ph) + LABELLED_AMP2 * sin(2.0 * ph + 1.0);
}

/* Fill s->x (and s->win) for one series; scratch holds 3 * length doubles. */
static void labelled_make(const struct labelled_params *p, struct labelled_series *s, uint64_t seed,
			  double *scratch)
{
	uint32_t n = p->length, dur = labelled_duration(s->kind, p->period);
	uint32_t stretch = (n - p->warmup) / p->windows, i, k;
	double *lvl = scratch, *sd = scratch + n, *add = scratch + 2 * n;
	struct rng r;

	rng_seed(&r, seed);
	for (i = 0; i < n; i++) {
		lvl[i] = LABELLED_LEVEL;
		sd[i] = s->noise ? 1.0 : 0.0;
		add[i] = 0.0;
	}
	s->nwin = s->kind == LABELLED_NONE ? 0 : p->windows;
	for (k = 0; k < s->nwin; k++) {
		uint32_t room = stretch - dur - p->grace - 20;
		uint32_t start = p->warmup + k * stretch + 10 + rng_below(&r, room);
		double a, slope;

		s->win[k] = (struct labelled_window){ start, start + dur - 1 };
		switch (s->kind) {
		case LABELLED_SPIKE:
			add[start] += labelled_range(&r, 8.0, 12.0);
			break;
		case LABELLED_DIP:
			add[start] -= labelled_range(&r, 8.0, 12.0);
			break;
		case LABELLED_LEVEL_SHIFT:
			a = labelled_sign(&r) * labelled_range(&r, 5.0, 8.0);
			for (i = start; i < n; i++)
				lvl[i] += a;
			break;
		case LABELLED_TREND_CHANGE:
		case LABELLED_SLOW_DRIFT:
			if (s->kind == LABELLED_TREND_CHANGE)
				slope = labelled_range(&r, 0.1, 0.2);
			else
				slope = labelled_range(&r, 6.0, 8.0) / dur;
			slope *= labelled_sign(&r);
			for (i = start; i < n; i++)
				lvl[i] += slope * (i - start + 1 < dur ? i - start + 1 : dur);
			break;
		case LABELLED_VARIANCE_CHANGE:
			for (i = start; i < start + dur; i++)
				sd[i] = s->noise ? 4.0 : 3.0;
			break;
		default: /* seasonality break, stuck: applied below */
			break;
		}
	}
	for (i = 0; i < n; i++) {
		double v = lvl[i], z = rng_normal(&r);
		double shift = 0.0;

		for (k = 0; s->kind == LABELLED_SEASONALITY_BREAK && k < s->nwin; k++)
			if (i >= s->win[k].start && i <= s->win[k].end)
				shift = p->period / 2.0;
		if (s->seasonal)
			v += labelled_season(p->period, i + shift);
		s->x[i] = (float)(v + sd[i] * z + add[i]);
	}
	for (k = 0; s->kind == LABELLED_STUCK && k < s->nwin; k++)
		for (i = s->win[k].start; i <= s->win[k].end; i++)
			s->x[i] = s->x[s->win[k].start - 1];
}

struct labelled_set *labelled_set__new(const struct labelled_params *params)
{
	struct labelled_params p = { 0 };
	struct labelled_set *set = NULL;
	double *scratch = NULL;
	size_t n = 0, j = 0;
	int kind, noise, seas;
	uint32_t rep, stretch;

	if (params)
		p = *params;
	if (!p.length)
		p.length = 3000;
	if (!p.windows)
		p.windows = 4;
	if (!p.warmup)
		p.warmup = 600;
	if (!p.period)
		p.period = 48;
	if (!p.replicas)
		p.replicas = 1;
	if (!p.grace)
		p.grace = 10;
	stretch = p.length > p.warmup ? (p.length - p.warmup) / p.windows : 0;
	if (p.windows > LABELLED_MAX_WINDOWS || p.period < 4 ||
	    stretch < 2 * p.period + 300 + p.grace + 40) {
		errno = EINVAL;
		return NULL;
	}
	for (kind = 0; kind < LABELLED_KINDS; kind++)
		for (noise = 0; noise < 2; noise++)
			for (seas = 0; seas < 2; seas++)
				if (labelled_possible(kind, noise, seas))
					n += p.replicas;
	set = calloc(1, sizeof(*set));
	scratch = malloc(3 * sizeof(*scratch) * p.length);
	if (!set || !scratch)
		goto err_nomem;
	set->p = p;
	set->s = calloc(n, sizeof(*set->s));
	if (!set->s)
		goto err_nomem;
	set->n = n;
	/* Anomalous kinds first, the clean series last. */
	for (kind = 1; kind <= LABELLED_KINDS; kind++) {
		enum labelled_kind k = kind % LABELLED_KINDS;

		for (noise = 0; noise < 2; noise++)
			for (seas = 0; seas < 2; seas++)
				for (rep = 0; rep < p.replicas && labelled_possible(k, noise, seas);
				     rep++) {
					struct labelled_series *s = &set->s[j];

					s->kind = k;
					s->noise = noise;
					s->seasonal = seas;
					s->x = malloc(sizeof(*s->x) * p.length);
					if (!s->x)
						goto err_nomem;
					labelled_make(&p, s, p.seed * 0x9e3779b97f4a7c15ULL + j + 1,
						      scratch);
					j++;
				}
	}
	free(scratch);
	return set;

err_nomem:
	free(scratch);
	labelled_set__free(set);
	errno = ENOMEM;
	return NULL;
}

void labelled_set__free(struct labelled_set *set)
{
	size_t j;

	if (!set)
		return;
	for (j = 0; set->s && j < set->n; j++)
		free(set->s[j].x);
	free(set->s);
	free(set);
}

static void labelled_score_add(struct labelled_score *to, const struct labelled_score *from)
{
	to->windows += from->windows;
	to->detected += from->detected;
	to->true_alarms += from->true_alarms;
	to->false_alarms += from->false_alarms;
	to->delay_sum += from->delay_sum;
}

void labelled_eval__add(struct labelled_eval *ev, const struct labelled_series *s, const bool *v,
			uint32_t length, uint32_t grace)
{
	struct labelled_score sc = { .windows = s->nwin };
	bool credited[LABELLED_MAX_WINDOWS] = { false };
	uint32_t i, k;

	for (k = 0; k < s->nwin; k++) {
		uint32_t end = s->win[k].end + grace;

		for (i = s->win[k].start; i <= end && i < length; i++) {
			if (v[i]) {
				sc.detected++;
				sc.delay_sum += i - s->win[k].start;
				break;
			}
		}
	}
	for (i = 0; i < length;) {
		uint32_t a, b;
		bool hit = false, overlaps = false;

		if (!v[i]) {
			i++;
			continue;
		}
		a = i;
		while (i < length && v[i])
			i++;
		b = i - 1;
		for (k = 0; k < s->nwin && !hit; k++) {
			if (b < s->win[k].start || a > s->win[k].end + grace)
				continue;
			overlaps = true;
			if (!credited[k]) {
				credited[k] = true;
				hit = true;
			}
		}
		if (hit)
			sc.true_alarms++;
		else if (!overlaps)
			sc.false_alarms++;
	}
	labelled_score_add(&ev->kind[s->kind], &sc);
	labelled_score_add(&ev->all, &sc);
}

static void labelled_score_finish(struct labelled_score *s)
{
	uint64_t alarms = s->true_alarms + s->false_alarms;
	double p, r;

	s->precision = alarms ? (double)s->true_alarms / alarms : NAN;
	s->recall = s->windows ? (double)s->detected / s->windows : NAN;
	s->mean_delay = s->detected ? s->delay_sum / s->detected : NAN;
	p = isnan(s->precision) ? 0.0 : s->precision;
	r = isnan(s->recall) ? 0.0 : s->recall;
	s->f1 = p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
}

void labelled_eval__finish(struct labelled_eval *ev)
{
	int k;

	for (k = 0; k < LABELLED_KINDS; k++)
		labelled_score_finish(&ev->kind[k]);
	labelled_score_finish(&ev->all);
}

const char *labelled_source_name(int src)
{
	static const char *const adaptive[DETECTOR_COUNT] = {
		"stat/adaptive",
		"seasonal/adaptive",
		"iforest/adaptive",
		"gru/adaptive",
	};

	if (src >= 0 && src < DETECTOR_COUNT)
		return detector_name(src);
	if (src >= DETECTOR_COUNT && src < 2 * DETECTOR_COUNT)
		return adaptive[src - DETECTOR_COUNT];
	if (src == LABELLED_SRC_ENSEMBLE)
		return "ensemble";
	return NULL;
}

static double labelled_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct labelled_job {
	const struct labelled_set *set;
	struct engine_params p;
	bool *verdicts; /* [source][series][sample] */
	size_t next; /* __atomic: the next series to run */
	int err; /* __atomic: the first error */
};

/* Series j alone in an engine of one slot, as `novamon detect` scores a file. */
static int labelled_series_run(struct labelled_job *job, size_t j)
{
	const struct labelled_set *set = job->set;
	size_t n = set->n, len = set->p.length, t;
	struct engine_verdict v;
	struct engine *e;
	int d;

	e = engine__new(&job->p);
	if (!e)
		return -errno;
	engine__add(e);
	for (t = 0; t < len; t++) {
		engine__tick(e, (int64_t)t * 1000, &set->s[j].x[t], &v);
		for (d = 0; d < DETECTOR_COUNT; d++) {
			job->verdicts[((size_t)LABELLED_SRC_RAW(d) * n + j) * len + t] =
				v.scores[d] >= 0.5f;
			job->verdicts[((size_t)LABELLED_SRC_ADAPTIVE(d) * n + j) * len + t] =
				v.detectors & (1u << d);
		}
		job->verdicts[((size_t)LABELLED_SRC_ENSEMBLE * n + j) * len + t] = v.anomalous;
	}
	engine__free(e);
	return 0;
}

static void *labelled_worker(void *arg)
{
	struct labelled_job *job = arg;
	size_t j;
	int err;

	while ((j = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED)) < job->set->n) {
		err = labelled_series_run(job, j);
		if (err) {
			__atomic_store_n(&job->err, err, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

int labelled_run(const struct labelled_set *set, const struct engine_params *params,
		 unsigned threads, struct labelled_report *out)
{
	struct labelled_job job = { .set = set };
	size_t n = set->n, len = set->p.length, j;
	pthread_t tid[LABELLED_MAX_THREADS];
	unsigned started = 0, k;
	double t0;
	int src;

	if (params)
		job.p = *params;
	else
		engine_params_init(&job.p);
	job.p.slots = 1;
	job.p.detectors = DETECTOR_ALL;
	job.p.heavy_budget = 0;
	job.p.sync_train = true;
	memset(out, 0, sizeof(*out));
	if (!threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		threads = cpus > 0 ? (unsigned)cpus : 1;
	}
	if (threads > LABELLED_MAX_THREADS)
		threads = LABELLED_MAX_THREADS;
	job.verdicts = malloc((size_t)LABELLED_SOURCES * n * len * sizeof(*job.verdicts));
	if (!job.verdicts)
		return -ENOMEM;
	t0 = labelled_now();
	for (k = 1; k < threads; k++) {
		if (pthread_create(&tid[started], NULL, labelled_worker, &job))
			break; /* fewer threads: the rest still runs below */
		started++;
	}
	labelled_worker(&job);
	for (k = 0; k < started; k++)
		pthread_join(tid[k], NULL);
	out->seconds = labelled_now() - t0;
	out->samples = (uint64_t)n * len;
	if (job.err) {
		free(job.verdicts);
		return job.err;
	}
	for (src = 0; src < LABELLED_SOURCES; src++) {
		for (j = 0; j < n; j++)
			labelled_eval__add(&out->src[src], &set->s[j],
					   &job.verdicts[((size_t)src * n + j) * len], len,
					   set->p.grace);
		labelled_eval__finish(&out->src[src]);
	}
	free(job.verdicts);
	return 0;
}
