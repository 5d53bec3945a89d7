/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "simd.h"

#define ENGINE_DEF_TRIGGER 0.3f
#define ENGINE_DEF_QUEUE 1024
#define ENGINE_HEAVY ((1u << DETECTOR_IFOREST) | (1u << DETECTOR_GRU))
#define ENGINE_CHEAP ((1u << DETECTOR_STAT) | (1u << DETECTOR_SEASONAL))
/* Acknowledged alarms before labels re-weight a detector in the ensemble. */
#define ENGINE_WEIGHT_MIN_LABELS 10
#define ENGINE_WEIGHT_MIN 0.25

/*
 * The isolation forest's defaults (iforest.h), to know when a rebuild
 * happened inside iforest__update(): the first forest once window +
 * sample_size samples are in, then one every rebuild_every samples.
 */
#define ENGINE_IF_WINDOW 32
#define ENGINE_IF_SAMPLE 128

/* The costly models of one slot. */
struct engine_heavy {
	struct iforest *f;
	struct gru *g; /* written under e->mu: the trainer reads it */
	uint32_t f_samples; /* valid samples the forest has learnt */
	uint8_t queued; /* g is in the trainer's queue (under e->mu) */
};

struct engine_job {
	struct gru *g;
	uint32_t slot;
};

struct engine {
	struct engine_params p;
	size_t n;
	unsigned mask; /* detectors run */
	int single; /* the one detector of the single-detector mode, or -1 */
	struct statdet *stat;
	struct seasonal *seas;
	struct ensemble *ens;
	struct modelperf *perf;

	/* per slot */
	float *x; /* this tick's samples, sanitised (NaN: none) */
	float *s_stat;
	float *s_seas;
	float *s_if;
	float *s_gru;
	float *pred;
	uint8_t *used;
	uint8_t *picked; /* heavy detectors ran on it this tick: mask */
	uint8_t *prev; /* modelperf flags of its previous sample */
	uint32_t *episode; /* modelperf episode cursor */
	uint32_t *reuse; /* times the slot was handed out: model seeds */
	struct engine_heavy *hv;

	uint32_t *free_stack;
	size_t nfree;
	size_t nused;
	size_t nmodels; /* slots holding heavy models */
	size_t cursor; /* rotation over the slots for the heavy detectors */
	uint32_t *pick;
	uint32_t if_first;
	uint32_t if_every;

	/* background trainer */
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t idle;
	pthread_t thread;
	bool thread_on;
	bool quit;
	struct engine_job *q;
	uint32_t qcap;
	uint32_t qhead;
	uint32_t qlen;
	struct gru *training; /* being trained now, outside the lock */
	bool orphan; /* its slot was removed meanwhile: the trainer frees it */
	int64_t now_ms; /* __atomic: last tick time, for training timestamps */
	float new_weight[DETECTOR_COUNT]; /* from labels, applied at the next tick */
	bool weights_pending;
};

void engine_params_init(struct engine_params *p)
{
	memset(p, 0, sizeof(*p));
	p->stat.isa = SIMD_AUTO;
	p->seasonal.isa = SIMD_AUTO;
}

static double engine_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t engine_seed(const struct engine *e, size_t slot, uint64_t salt)
{
	uint64_t z = e->p.seed ^ salt ^ ((uint64_t)e->reuse[slot] << 40) ^
		     ((uint64_t)slot * 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void *engine_trainer(void *arg)
{
	struct engine *e = arg;

	pthread_mutex_lock(&e->mu);
	while (!e->quit) {
		struct engine_job job;
		double t0, dt;
		int err;

		if (!e->qlen) {
			pthread_cond_broadcast(&e->idle);
			pthread_cond_wait(&e->wake, &e->mu);
			continue;
		}
		job = e->q[e->qhead];
		e->qhead = (e->qhead + 1) % e->qcap;
		e->qlen--;
		if (e->hv[job.slot].g != job.g) /* slot removed since it was queued */
			continue;
		e->training = job.g;
		e->orphan = false;
		pthread_mutex_unlock(&e->mu);

		t0 = engine_now();
		err = gru__train(job.g);
		dt = engine_now() - t0;
		if (!err) {
			modelperf__lock(e->perf);
			modelperf__trained(e->perf, DETECTOR_GRU,
					   __atomic_load_n(&e->now_ms, __ATOMIC_RELAXED), dt, 1);
			modelperf__unlock(e->perf);
		}

		pthread_mutex_lock(&e->mu);
		if (e->orphan)
			gru__free(job.g);
		else
			e->hv[job.slot].queued = 0;
		e->training = NULL;
	}
	pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

static bool engine_params_ok(const struct engine_params *p)
{
	if (!p || !p->slots || p->slots > UINT32_MAX / 2 || (p->detectors & ~DETECTOR_ALL))
		return false;
	if (p->heavy_trigger < 0.0f || p->heavy_trigger > 1.0f || isnan(p->heavy_trigger))
		return false;
	return true;
}

struct engine *engine__new(const struct engine_params *p)
{
	struct engine *e;
	size_t n, i;
	int err = 0, d;

	if (!engine_params_ok(p)) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->wake, NULL);
	pthread_cond_init(&e->idle, NULL);
	e->p = *p;
	e->p.gru.sync_train = false; /* the engine decides where GRUs train */
	n = e->n = p->slots;
	e->mask = p->detectors ? p->detectors : DETECTOR_ALL;
	e->single = -1;
	for (d = 0; d < DETECTOR_COUNT; d++)
		if (e->mask == (1u << d))
			e->single = d;
	if (!e->p.heavy_trigger)
		e->p.heavy_trigger = ENGINE_DEF_TRIGGER;
	if (!e->p.max_heavy || e->p.max_heavy > n)
		e->p.max_heavy = n;
	e->qcap = p->train_queue ? p->train_queue : ENGINE_DEF_QUEUE;
	e->if_first = (p->iforest.window ? p->iforest.window : ENGINE_IF_WINDOW) +
		      (p->iforest.sample_size ? p->iforest.sample_size : ENGINE_IF_SAMPLE);
	e->if_every =
		p->iforest.rebuild_every ?
			p->iforest.rebuild_every :
			2 * (p->iforest.sample_size ? p->iforest.sample_size : ENGINE_IF_SAMPLE);

	e->x = malloc(n * sizeof(*e->x));
	e->s_stat = calloc(n, sizeof(*e->s_stat));
	e->s_seas = calloc(n, sizeof(*e->s_seas));
	e->used = calloc(n, sizeof(*e->used));
	e->prev = calloc(n, sizeof(*e->prev));
	e->episode = calloc(n, sizeof(*e->episode));
	e->reuse = calloc(n, sizeof(*e->reuse));
	e->free_stack = malloc(n * sizeof(*e->free_stack));
	e->perf = modelperf__new(p->log_capacity);
	if (!e->x || !e->s_stat || !e->s_seas || !e->used || !e->prev || !e->episode || !e->reuse ||
	    !e->free_stack || !e->perf) {
		err = errno ? errno : ENOMEM;
		goto err_free;
	}
	if (e->mask & ENGINE_HEAVY) {
		e->s_if = calloc(n, sizeof(*e->s_if));
		e->s_gru = calloc(n, sizeof(*e->s_gru));
		e->pred = calloc(n, sizeof(*e->pred));
		e->picked = calloc(n, sizeof(*e->picked));
		e->pick = malloc(n * sizeof(*e->pick));
		e->hv = calloc(n, sizeof(*e->hv));
		e->q = calloc(e->qcap, sizeof(*e->q));
		if (!e->s_if || !e->s_gru || !e->pred || !e->picked || !e->pick || !e->hv ||
		    !e->q) {
			err = ENOMEM;
			goto err_free;
		}
	}
	if (e->mask & (1u << DETECTOR_STAT)) {
		e->stat = statdet__new(n, &p->stat);
		if (!e->stat) {
			err = errno;
			goto err_free;
		}
	}
	if (e->mask & (1u << DETECTOR_SEASONAL)) {
		e->seas = seasonal__new(n, &p->seasonal);
		if (!e->seas) {
			err = errno;
			goto err_free;
		}
	}
	e->ens = ensemble__new(n, &p->ensemble);
	if (!e->ens) {
		err = errno;
		goto err_free;
	}
	for (i = 0; i < n; i++)
		e->free_stack[i] = (uint32_t)(n - 1 - i);
	e->nfree = n;
	if ((e->mask & (1u << DETECTOR_GRU)) && !p->sync_train) {
		err = pthread_create(&e->thread, NULL, engine_trainer, e);
		if (err)
			goto err_free;
		e->thread_on = true;
	}
	return e;

err_free:
	engine__free(e);
	errno = err ? err : ENOMEM;
	return NULL;
}

static void engine_drop_heavy(struct engine *e, size_t i)
{
	struct engine_heavy *h = &e->hv[i];

	if (h->f || h->g)
		e->nmodels--;
	iforest__free(h->f);
	pthread_mutex_lock(&e->mu);
	if (h->g && h->g == e->training)
		e->orphan = true;
	else
		gru__free(h->g);
	*h = (struct engine_heavy){ 0 };
	pthread_mutex_unlock(&e->mu);
}

void engine__free(struct engine *e)
{
	size_t i;

	if (!e)
		return;
	if (e->thread_on) {
		pthread_mutex_lock(&e->mu);
		e->quit = true;
		pthread_cond_signal(&e->wake);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
	}
	if (e->hv)
		for (i = 0; i < e->n; i++)
			if (e->hv[i].f || e->hv[i].g)
				engine_drop_heavy(e, i);
	statdet__free(e->stat);
	seasonal__free(e->seas);
	ensemble__free(e->ens);
	modelperf__free(e->perf);
	free(e->x);
	free(e->s_stat);
	free(e->s_seas);
	free(e->s_if);
	free(e->s_gru);
	free(e->pred);
	free(e->used);
	free(e->picked);
	free(e->prev);
	free(e->episode);
	free(e->reuse);
	free(e->hv);
	free(e->free_stack);
	free(e->pick);
	free(e->q);
	pthread_cond_destroy(&e->wake);
	pthread_cond_destroy(&e->idle);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

int engine__add(struct engine *e)
{
	uint32_t i;

	if (!e->nfree)
		return -ENOSPC;
	i = e->free_stack[--e->nfree];
	e->used[i] = 1;
	e->reuse[i]++;
	e->nused++;
	return (int)i;
}

bool engine__in_use(const struct engine *e, int slot)
{
	return slot >= 0 && (size_t)slot < e->n && e->used[slot];
}

size_t engine__slots(const struct engine *e)
{
	return e->n;
}

int engine__remove(struct engine *e, int slot)
{
	if (!engine__in_use(e, slot))
		return -EINVAL;
	if (e->stat)
		statdet__reset(e->stat, slot);
	if (e->seas)
		seasonal__reset(e->seas, slot);
	ensemble__reset(e->ens, slot);
	if (e->hv)
		engine_drop_heavy(e, slot);
	modelperf__lock(e->perf);
	modelperf__forget(e->perf, slot);
	modelperf__unlock(e->perf);
	e->prev[slot] = 0;
	e->episode[slot] = 0;
	e->used[slot] = 0;
	e->free_stack[e->nfree++] = slot;
	e->nused--;
	return 0;
}

/* Models for slot i on first use, within max_heavy; false if it has none. */
static bool engine_heavy_models(struct engine *e, size_t i)
{
	struct engine_heavy *h = &e->hv[i];
	struct gru *g;

	if (h->f || h->g)
		return true;
	if (e->nmodels >= e->p.max_heavy)
		return false;
	if (e->mask & (1u << DETECTOR_IFOREST)) {
		h->f = iforest__new(&e->p.iforest, engine_seed(e, i, 0x1f0e));
		if (!h->f)
			return false;
	}
	if (e->mask & (1u << DETECTOR_GRU)) {
		g = gru__new(&e->p.gru, engine_seed(e, i, 0x62a7));
		if (!g) {
			iforest__free(h->f);
			h->f = NULL;
			return false;
		}
		pthread_mutex_lock(&e->mu);
		h->g = g;
		pthread_mutex_unlock(&e->mu);
	}
	e->nmodels++;
	return true;
}

/* Slot i has a sample, is not picked yet, and has (or may get) heavy models. */
static bool engine_wanted(const struct engine *e, size_t i)
{
	if (!e->used[i] || isnan(e->x[i]) || e->picked[i])
		return false;
	return e->nmodels < e->p.max_heavy || e->hv[i].f || e->hv[i].g;
}

/*
 * Choose this tick's slots for iforest/gru into e->pick: every slot when the
 * budget allows, else the flagged ones (from the rotation point on, so that
 * an overflow of flags is served in turn) and then the rotation.
 */
static size_t engine_pick(struct engine *e)
{
	size_t budget = e->p.heavy_budget ? e->p.heavy_budget : e->n;
	size_t n = e->n, npick = 0, k, i;
	float trig = e->p.heavy_trigger;

	if (budget >= e->nused) {
		for (i = 0; i < n; i++)
			if (engine_wanted(e, i))
				e->pick[npick++] = (uint32_t)i;
		return npick;
	}
	if (e->mask & ENGINE_CHEAP) {
		for (k = 0, i = e->cursor; k < n && npick < budget;
		     k++, i = i + 1 < n ? i + 1 : 0) {
			float s =
				fmaxf(e->stat ? e->s_stat[i] : 0.0f, e->seas ? e->s_seas[i] : 0.0f);

			if (s >= trig && engine_wanted(e, i)) {
				e->picked[i] = 1;
				e->pick[npick++] = (uint32_t)i;
			}
		}
	}
	for (k = 0, i = e->cursor; k < n && npick < budget; k++, i = i + 1 < n ? i + 1 : 0) {
		if (engine_wanted(e, i)) {
			e->picked[i] = 1;
			e->pick[npick++] = (uint32_t)i;
		}
	}
	e->cursor = i;
	for (k = 0; k < npick; k++)
		e->picked[e->pick[k]] = 0;
	return npick;
}

static void engine_queue_training(struct engine *e, size_t i)
{
	struct engine_heavy *h = &e->hv[i];

	pthread_mutex_lock(&e->mu);
	if (!h->queued && e->qlen < e->qcap) {
		e->q[(e->qhead + e->qlen) % e->qcap] = (struct engine_job){ h->g, (uint32_t)i };
		e->qlen++;
		h->queued = 1;
		pthread_cond_signal(&e->wake);
	}
	pthread_mutex_unlock(&e->mu);
}

/* iforest and gru on the picked slots; sets e->picked[i] to what ran. */
static void engine_heavy_run(struct engine *e, int64_t t_ms, size_t npick)
{
	size_t k;

	for (k = 0; k < npick; k++) {
		size_t i = e->pick[k];
		struct engine_heavy *h = &e->hv[i];
		float x = e->x[i];
		uint8_t ran = 0;

		if (!engine_heavy_models(e, i))
			continue;
		if (h->f) {
			uint32_t s = ++h->f_samples;
			bool rebuild = s == e->if_first ||
				       (s > e->if_first && (s - e->if_first) % e->if_every == 0);
			double t0 = rebuild ? engine_now() : 0.0;

			e->s_if[i] = iforest__update(h->f, x);
			ran |= 1u << DETECTOR_IFOREST;
			if (rebuild) {
				double dt = engine_now() - t0;

				modelperf__lock(e->perf);
				modelperf__trained(e->perf, DETECTOR_IFOREST, t_ms, dt, 1);
				modelperf__unlock(e->perf);
			}
		}
		if (h->g) {
			e->s_gru[i] = gru__update(h->g, x, &e->pred[i]);
			ran |= 1u << DETECTOR_GRU;
			if (gru__training_due(h->g)) {
				if (e->p.sync_train) {
					double t0 = engine_now(), dt;

					if (!gru__train(h->g)) {
						dt = engine_now() - t0;
						modelperf__lock(e->perf);
						modelperf__trained(e->perf, DETECTOR_GRU, t_ms, dt,
								   1);
						modelperf__unlock(e->perf);
					}
				} else {
					engine_queue_training(e, i);
				}
			}
		}
		e->picked[i] = ran;
	}
}

/* expected/spread for the verdict: the seasonal profile once it has a period,
 * else the robust centre, else the GRU's forecast. */
static void engine_explain(const struct engine *e, size_t i, uint8_t ran, struct engine_verdict *v)
{
	float c = NAN, s = NAN;

	v->expected_by = -1;
	if (e->seas && seasonal__period(e->seas, i)) {
		seasonal__expected(e->seas, i, &c, &s);
		v->expected_by = DETECTOR_SEASONAL;
	} else if (e->stat) {
		statdet__expected(e->stat, i, &c, &s);
		v->expected_by = DETECTOR_STAT;
	} else if ((ran & (1u << DETECTOR_GRU)) && isfinite(e->pred[i])) {
		c = e->pred[i];
		v->expected_by = DETECTOR_GRU;
	}
	v->expected = c;
	v->spread = s;
	v->deviation = 0.0f;
	if (isfinite(c) && isfinite(s) && s > 0.0f && isfinite(v->actual))
		v->deviation = (v->actual - c) / s;
}

void engine__tick(struct engine *e, int64_t t_ms, const float *x, struct engine_verdict *out)
{
	uint32_t bins[MODELPERF_N][MODELPERF_BINS];
	double sums[MODELPERF_N];
	unsigned cheap = e->mask & ENGINE_CHEAP;
	size_t n = e->n, npick = 0, i;
	int d;

	__atomic_store_n(&e->now_ms, t_ms, __ATOMIC_RELAXED);
	pthread_mutex_lock(&e->mu);
	if (e->weights_pending) {
		for (d = 0; d < DETECTOR_COUNT; d++)
			ensemble__set_weight(e->ens, d, e->new_weight[d]);
		e->weights_pending = false;
	}
	pthread_mutex_unlock(&e->mu);

	for (i = 0; i < n; i++)
		e->x[i] = e->used[i] && isfinite(x[i]) ? x[i] : NAN;
	if (e->stat)
		statdet__update(e->stat, e->x, e->s_stat);
	if (e->seas)
		seasonal__update(e->seas, e->x, e->s_seas);
	if (e->hv) {
		npick = engine_pick(e);
		engine_heavy_run(e, t_ms, npick);
	}

	memset(bins, 0, sizeof(bins));
	memset(sums, 0, sizeof(sums));
	modelperf__lock(e->perf);
	for (i = 0; i < n; i++) {
		struct engine_verdict *v = &out[i];
		float sc[DETECTOR_COUNT];
		unsigned ran, votes = 0, own = 0;

		memset(v, 0, sizeof(*v));
		v->actual = e->x[i];
		if (!e->used[i]) {
			v->expected = v->spread = NAN;
			v->expected_by = -1;
			continue;
		}
		if (isnan(e->x[i])) {
			engine_explain(e, i, 0, v);
			continue;
		}
		sc[DETECTOR_STAT] = e->stat ? e->s_stat[i] : 0.0f;
		sc[DETECTOR_SEASONAL] = e->seas ? e->s_seas[i] : 0.0f;
		ran = cheap;
		if (e->picked && e->picked[i]) {
			ran |= e->picked[i];
			sc[DETECTOR_IFOREST] = e->s_if[i];
			sc[DETECTOR_GRU] = e->s_gru[i];
			e->picked[i] = 0;
		} else {
			sc[DETECTOR_IFOREST] = sc[DETECTOR_GRU] = 0.0f;
		}
		for (d = 0; d < DETECTOR_COUNT; d++) {
			if (!(ran & (1u << d))) {
				sc[d] = 0.0f;
				continue;
			}
			if (sc[d] >= 0.5f)
				own |= 1u << d;
			bins[d][modelperf_bin(sc[d])]++;
			sums[d] += sc[d];
			v->scores[d] = sc[d];
		}
		if (e->single >= 0) {
			v->score = sc[e->single];
			votes = own;
		} else {
			v->score = ensemble__combine(e->ens, i, sc, ran, &votes, NULL);
		}
		v->anomalous = v->score >= 0.5f;
		v->detectors = (uint8_t)votes;
		v->ran = (uint8_t)ran;
		engine_explain(e, i, ran, v);
		if (v->anomalous)
			own |= 1u << MODELPERF_ENSEMBLE;
		bins[MODELPERF_ENSEMBLE][modelperf_bin(v->score)]++;
		sums[MODELPERF_ENSEMBLE] += v->score;
		modelperf__flag(e->perf, (uint32_t)i, t_ms, e->prev[i], own, &e->episode[i]);
		e->prev[i] = (uint8_t)own;
	}
	for (d = 0; d < MODELPERF_N; d++)
		modelperf__scores(e->perf, d, bins[d], sums[d]);
	modelperf__unlock(e->perf);
}

int engine__label(struct engine *e, int slot, int64_t t_start_ms, int64_t t_end_ms,
		  bool true_positive)
{
	struct modelperf_report r;
	int found, d;

	if (slot < 0 || (size_t)slot >= e->n)
		return -EINVAL;
	found = modelperf__label(e->perf, (uint32_t)slot, t_start_ms, t_end_ms, true_positive);
	if (found < 0)
		return found;
	modelperf__report(e->perf, &r);
	pthread_mutex_lock(&e->mu);
	for (d = 0; d < DETECTOR_COUNT; d++) {
		const struct modelperf_detector *m = &r.det[d];

		e->new_weight[d] = 1.0f;
		if (m->confirmed + m->rejected >= ENGINE_WEIGHT_MIN_LABELS)
			e->new_weight[d] = (float)fmax(ENGINE_WEIGHT_MIN, m->precision);
	}
	e->weights_pending = true;
	pthread_mutex_unlock(&e->mu);
	return found;
}

void engine__performance(struct engine *e, struct modelperf_report *out)
{
	modelperf__report(e->perf, out);
}

void engine__train_wait(struct engine *e)
{
	pthread_mutex_lock(&e->mu);
	while (e->thread_on && (e->qlen || e->training))
		pthread_cond_wait(&e->idle, &e->mu);
	pthread_mutex_unlock(&e->mu);
}
