/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "modelperf.h"

#define MODELPERF_DEF_LOG 65536
#define MODELPERF_ALPHA_SHORT (1.0 / 60)
#define MODELPERF_ALPHA_LONG (1.0 / 3600)
#define MODELPERF_PSI_EPS 1e-4

enum modelperf_label_state { MODELPERF_UNLABELLED, MODELPERF_TRUE, MODELPERF_FALSE };

/* One alarm episode of one series. */
struct modelperf_episode {
	uint32_t seq; /* the cursor value that owns this entry; 0: free */
	uint32_t slot;
	int64_t t_start;
	int64_t t_end;
	uint8_t mask; /* detectors (and the ensemble) that flagged during it */
	uint8_t label; /* enum modelperf_label_state */
};

struct modelperf_hist {
	double s[MODELPERF_BINS];
	double l[MODELPERF_BINS];
	double mean_s;
	double mean_l;
	bool seen;
};

struct modelperf {
	pthread_mutex_t lock;
	struct modelperf_episode *log;
	uint32_t mask; /* log size - 1 */
	uint32_t next_seq; /* never 0 */
	struct modelperf_report r;
	struct modelperf_hist hist[MODELPERF_N];
};

struct modelperf *modelperf__new(size_t log_capacity)
{
	struct modelperf *m;
	size_t cap = 1;
	int i;

	if (!log_capacity)
		log_capacity = MODELPERF_DEF_LOG;
	if (log_capacity > (1u << 30)) {
		errno = EINVAL;
		return NULL;
	}
	while (cap < log_capacity)
		cap <<= 1;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->log = calloc(cap, sizeof(*m->log));
	if (!m->log) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->mask = cap - 1;
	m->next_seq = 1;
	for (i = 0; i < MODELPERF_N; i++)
		m->r.det[i].last_train_ms = -1;
	return m;
}

void modelperf__free(struct modelperf *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->log);
	free(m);
}

void modelperf__lock(struct modelperf *m)
{
	pthread_mutex_lock(&m->lock);
}

void modelperf__unlock(struct modelperf *m)
{
	pthread_mutex_unlock(&m->lock);
}

static struct modelperf_episode *modelperf_episode(struct modelperf *m, uint32_t seq, uint32_t slot)
{
	struct modelperf_episode *ep;

	if (!seq)
		return NULL;
	ep = &m->log[seq & m->mask];
	return ep->seq == seq && ep->slot == slot ? ep : NULL;
}

void modelperf__flag(struct modelperf *m, uint32_t slot, int64_t t_ms, unsigned prev, unsigned mask,
		     uint32_t *episode)
{
	struct modelperf_episode *ep;
	unsigned onset = mask & ~prev;
	int d;

	for (d = 0; onset && d < MODELPERF_N; d++)
		if (onset & (1u << d))
			m->r.det[d].alarms++;
	if (!mask)
		return;
	ep = prev ? modelperf_episode(m, *episode, slot) : NULL;
	if (!ep) {
		uint32_t seq = m->next_seq++;

		if (!m->next_seq)
			m->next_seq = 1;
		ep = &m->log[seq & m->mask];
		*ep = (struct modelperf_episode){ .seq = seq, .slot = slot, .t_start = t_ms };
		*episode = seq;
		m->r.episodes++;
	}
	ep->t_end = t_ms;
	ep->mask |= mask;
}

void modelperf__scores(struct modelperf *m, int id, const uint32_t *bins, double sum)
{
	struct modelperf_hist *h;
	uint64_t total = 0;
	int b;

	if (id < 0 || id >= MODELPERF_N)
		return;
	h = &m->hist[id];
	for (b = 0; b < MODELPERF_BINS; b++)
		total += bins[b];
	if (!total)
		return;
	for (b = 0; b < MODELPERF_BINS; b++) {
		double p = (double)bins[b] / total;

		if (!h->seen) {
			h->s[b] = p;
			h->l[b] = p;
		} else {
			h->s[b] += MODELPERF_ALPHA_SHORT * (p - h->s[b]);
			h->l[b] += MODELPERF_ALPHA_LONG * (p - h->l[b]);
		}
	}
	if (!h->seen) {
		h->mean_s = sum / total;
		h->mean_l = sum / total;
	} else {
		h->mean_s += MODELPERF_ALPHA_SHORT * (sum / total - h->mean_s);
		h->mean_l += MODELPERF_ALPHA_LONG * (sum / total - h->mean_l);
	}
	h->seen = true;
}

void modelperf__trained(struct modelperf *m, int id, int64_t t_ms, double seconds, uint64_t count)
{
	struct modelperf_detector *d;

	if (id < 0 || id >= MODELPERF_N || !count)
		return;
	d = &m->r.det[id];
	d->trainings += count;
	d->last_train_ms = t_ms;
	d->last_train_seconds = seconds;
	d->train_seconds_total += seconds;
}

void modelperf__forget(struct modelperf *m, uint32_t slot)
{
	uint32_t i;

	for (i = 0; i <= m->mask; i++)
		if (m->log[i].seq && m->log[i].slot == slot)
			m->log[i].seq = 0;
}

static void modelperf_count(struct modelperf *m, unsigned mask, uint8_t label, int sign)
{
	int d;

	for (d = 0; d < MODELPERF_N; d++) {
		if (!(mask & (1u << d)))
			continue;
		if (label == MODELPERF_TRUE)
			m->r.det[d].confirmed += sign;
		else if (label == MODELPERF_FALSE)
			m->r.det[d].rejected += sign;
	}
}

int modelperf__label(struct modelperf *m, uint32_t slot, int64_t t_start_ms, int64_t t_end_ms,
		     bool true_positive)
{
	uint8_t label = true_positive ? MODELPERF_TRUE : MODELPERF_FALSE;
	unsigned flagged = 0;
	int found = 0, d;
	uint32_t i;

	if (t_end_ms < t_start_ms)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i <= m->mask; i++) {
		struct modelperf_episode *ep = &m->log[i];

		if (!ep->seq || ep->slot != slot || ep->t_end < t_start_ms ||
		    ep->t_start > t_end_ms)
			continue;
		found++;
		flagged |= ep->mask;
		if (ep->label == label)
			continue;
		modelperf_count(m, ep->mask, ep->label, -1);
		modelperf_count(m, ep->mask, label, 1);
		ep->label = label;
	}
	m->r.labels++;
	if (true_positive) {
		m->r.anomalies_confirmed++;
		for (d = 0; d < MODELPERF_N; d++)
			if (flagged & (1u << d))
				m->r.det[d].anomalies_flagged++;
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

void modelperf__report(struct modelperf *m, struct modelperf_report *out)
{
	int d, b;

	pthread_mutex_lock(&m->lock);
	*out = m->r;
	for (d = 0; d < MODELPERF_N; d++) {
		struct modelperf_detector *o = &out->det[d];
		const struct modelperf_hist *h = &m->hist[d];
		uint64_t acked = o->confirmed + o->rejected;
		double psi = 0.0;

		o->precision = acked ? (double)o->confirmed / acked : NAN;
		o->recall = out->anomalies_confirmed ?
				    (double)o->anomalies_flagged / out->anomalies_confirmed :
				    NAN;
		if (!h->seen)
			continue;
		for (b = 0; b < MODELPERF_BINS; b++) {
			double s = h->s[b] + MODELPERF_PSI_EPS, l = h->l[b] + MODELPERF_PSI_EPS;

			psi += (s - l) * log(s / l);
		}
		o->drift = psi;
		o->score_mean_short = h->mean_s;
		o->score_mean_long = h->mean_l;
	}
	pthread_mutex_unlock(&m->lock);
}
