/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ensemble.h"

#define ENSEMBLE_DEF_QUANTILE 0.995f
#define ENSEMBLE_DEF_STEP 0.002f
#define ENSEMBLE_DEF_FLOOR 0.5f
#define ENSEMBLE_DEF_MARGIN 0.5f
#define ENSEMBLE_DEF_WINDOW 16384.0f
#define ENSEMBLE_DEF_PRIOR_VOTES 1.0f
#define ENSEMBLE_DEF_PRIOR_SAMPLES 256.0f
#define ENSEMBLE_DEF_MAX_BITS 16.0f
#define ENSEMBLE_DEF_THRESHOLD_BITS 11.0f
#define ENSEMBLE_DEF_DECAY 0.5f

/* Everything one combine touches for one series, in one place. */
struct ensemble_slot {
	float q[DETECTOR_COUNT]; /* streaming quantile of each detector's scores */
	float votes[DETECTOR_COUNT]; /* decayed vote count (prior excluded) */
	float samples; /* decayed sample count, shared: all detectors see the same */
	float acc; /* evidence of the current run of voting samples, bits */
	uint8_t alarmed; /* the previous verdict was anomalous */
	uint8_t pad[3];
};

struct ensemble {
	size_t n;
	struct ensemble_params p;
	float keep; /* 1 - 1 / rate_window */
	float weight[DETECTOR_COUNT];
	struct ensemble_slot *slot;
};

static bool ensemble_in(float v, float lo, float hi)
{
	return isfinite(v) && v >= lo && v <= hi;
}

static void ensemble_default(float *v, float def)
{
	if (!*v)
		*v = def;
}

struct ensemble *ensemble__new(size_t n, const struct ensemble_params *params)
{
	struct ensemble_params p = { 0 };
	struct ensemble *e;
	int d;

	if (params)
		p = *params;
	ensemble_default(&p.quantile, ENSEMBLE_DEF_QUANTILE);
	ensemble_default(&p.quantile_step, ENSEMBLE_DEF_STEP);
	ensemble_default(&p.floor, ENSEMBLE_DEF_FLOOR);
	ensemble_default(&p.margin, ENSEMBLE_DEF_MARGIN);
	ensemble_default(&p.rate_window, ENSEMBLE_DEF_WINDOW);
	ensemble_default(&p.prior_votes, ENSEMBLE_DEF_PRIOR_VOTES);
	ensemble_default(&p.prior_samples, ENSEMBLE_DEF_PRIOR_SAMPLES);
	ensemble_default(&p.max_bits, ENSEMBLE_DEF_MAX_BITS);
	ensemble_default(&p.threshold_bits, ENSEMBLE_DEF_THRESHOLD_BITS);
	ensemble_default(&p.decay, ENSEMBLE_DEF_DECAY);
	if (!n || !ensemble_in(p.quantile, 0.5f, 0.99999f) ||
	    !ensemble_in(p.quantile_step, 0.0f, 0.5f) || !ensemble_in(p.floor, 0.0f, 0.999f) ||
	    !ensemble_in(p.margin, 0.0f, 1.0f) || !ensemble_in(p.rate_window, 1.0f, 1e9f) ||
	    !ensemble_in(p.prior_votes, 1e-6f, 1e9f) ||
	    !ensemble_in(p.prior_samples, p.prior_votes, 1e9f) ||
	    !ensemble_in(p.max_bits, 0.0f, 64.0f) || !ensemble_in(p.threshold_bits, 0.0f, 1e6f) ||
	    !ensemble_in(p.decay, 0.0f, 1.0f)) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->slot = calloc(n, sizeof(*e->slot));
	if (!e->slot) {
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	e->n = n;
	e->p = p;
	e->keep = 1.0f - 1.0f / p.rate_window;
	for (d = 0; d < DETECTOR_COUNT; d++)
		e->weight[d] = 1.0f;
	return e;
}

void ensemble__free(struct ensemble *e)
{
	if (!e)
		return;
	free(e->slot);
	free(e);
}

void ensemble__reset(struct ensemble *e, size_t i)
{
	if (i < e->n)
		e->slot[i] = (struct ensemble_slot){ 0 };
}

int ensemble__set_weight(struct ensemble *e, enum detector_id id, float w)
{
	if ((unsigned)id >= DETECTOR_COUNT || !ensemble_in(w, 0.0f, 1.0f))
		return -EINVAL;
	e->weight[id] = w;
	return 0;
}

float ensemble__weight(const struct ensemble *e, enum detector_id id)
{
	return (unsigned)id < DETECTOR_COUNT ? e->weight[id] : 0.0f;
}

static float ensemble_thr(const struct ensemble *e, const struct ensemble_slot *s, int d)
{
	return fmaxf(e->p.floor, 1.0f - (1.0f - s->q[d]) * (1.0f - e->p.margin));
}

static float ensemble_rate(const struct ensemble *e, const struct ensemble_slot *s, int d)
{
	return (s->votes[d] + e->p.prior_votes) / (s->samples + e->p.prior_samples);
}

float ensemble__threshold(const struct ensemble *e, size_t i, enum detector_id id)
{
	if (i >= e->n || (unsigned)id >= DETECTOR_COUNT)
		return NAN;
	return ensemble_thr(e, &e->slot[i], id);
}

float ensemble__rate(const struct ensemble *e, size_t i, enum detector_id id)
{
	if (i >= e->n || (unsigned)id >= DETECTOR_COUNT)
		return NAN;
	return ensemble_rate(e, &e->slot[i], id);
}

float ensemble__combine(struct ensemble *e, size_t i, const float *score, unsigned ran,
			unsigned *votes, float *bits)
{
	struct ensemble_slot *s = &e->slot[i];
	float tau = e->p.quantile, step = e->p.quantile_step, tb = e->p.threshold_bits;
	float sum = 0.0f, out;
	unsigned v = 0;
	bool anomalous;
	int d;

	for (d = 0; d < DETECTOR_COUNT; d++) {
		float sd, thr, b = 0.0f;

		if (!(ran & (1u << d))) {
			if (bits)
				bits[d] = 0.0f;
			continue;
		}
		sd = score[d];
		if (!(sd >= 0.0f)) /* NaN from a broken detector: no vote, no learning */
			sd = 0.0f;
		else if (sd > 1.0f)
			sd = 1.0f;
		thr = ensemble_thr(e, s, d);
		if (sd >= thr && e->weight[d] > 0.0f) {
			float excess = thr < 1.0f ? (sd - thr) / (1.0f - thr) : 1.0f;

			b = fminf(-log2f(ensemble_rate(e, s, d)), e->p.max_bits);
			b *= e->weight[d] * (0.5f + 0.5f * excess);
			v |= 1u << d;
			sum += b;
		}
		if (bits)
			bits[d] = b;
		/* Learn from this sample only after it has been judged. */
		s->q[d] += step * (sd > s->q[d] ? tau : tau - 1.0f);
		if (s->q[d] < 0.0f)
			s->q[d] = 0.0f;
		s->votes[d] = s->votes[d] * e->keep + (sd >= thr ? 1.0f : 0.0f);
	}
	if (ran)
		s->samples = s->samples * e->keep + 1.0f;
	s->acc = v ? s->acc * e->p.decay + sum : 0.0f;
	anomalous = s->acc >= tb || (v && s->alarmed);
	s->alarmed = anomalous;
	if (votes)
		*votes = v;
	out = tb > 0.0f ? 0.5f * s->acc / tb : (s->acc > 0.0f ? 1.0f : 0.0f);
	if (anomalous)
		out = fmaxf(out, 0.5f);
	else
		out = fminf(out, 0.499f);
	return fminf(out, 1.0f);
}
