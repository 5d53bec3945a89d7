/* SPDX-License-Identifier: Apache-2.0 */
/*
 * iforest: streaming isolation forest over sliding-window features; the
 * model and the score are described in iforest.h.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "iforest.h"
#include "rng.h"

#define NF IFOREST_FEATURES
#define IFOREST_CALIB_MAX 256
#define IFOREST_MIN_SPREAD 0.02f
/* Two feature vectors closer than this in every feature are "equal" for a
 * flat leaf: features are in units of the series' own scale. */
#define IFOREST_FLAT_TOL 0.05f
/* Relative floor on every scale, so a constant series divides by
 * 1e-4 * |level| rather than by zero. */
#define IFOREST_REL_FLOOR 1e-4
#define IFOREST_ABS_FLOOR 1e-12

enum {
	IFOREST_LEAF = 0xfe, /* node.dim: leaf, path ends at depth + c(size) */
	IFOREST_FLAT = 0xff, /* node.dim: leaf whose vectors are all equal */
};

struct iforest_node {
	float split; /* internal: v[dim] < split goes left */
	float lo, hi; /* internal: range of v[dim] over the node's vectors */
	uint32_t child; /* internal: left child, right is child + 1;
			   IFOREST_FLAT: snapshot index of a member */
	uint16_t size; /* leaf: training vectors that ended here */
	uint8_t dim; /* feature, IFOREST_LEAF or IFOREST_FLAT */
};

struct iforest {
	uint32_t window, trees, sample_size, rebuild_every, warmup;
	uint32_t cap; /* reservoir vectors */
	uint32_t height; /* tree height limit */
	uint32_t max_nodes; /* per tree */
	uint64_t seen; /* finite samples taken */
	uint32_t since_build;
	bool built;

	double *win; /* the last `window` samples, ring */
	uint32_t win_n, win_pos;
	double slow_mean, slow_var; /* EWMAs, weight max(1/seen, 1/cap) */
	double sd_ref; /* EWMA of feature 2's sd, weight max(1/vectors, 1/cap) */

	float *ring; /* reservoir: cap vectors of NF */
	uint32_t ring_n, ring_pos;
	float *snap; /* the reservoir as of the last rebuild */
	uint32_t snap_n;
	uint32_t *idx; /* cap: tree sampling and partitioning */
	struct iforest_node *nodes; /* trees * max_nodes */
	float *cn; /* c(n) for n = 0..sample_size */
	float *calib; /* IFOREST_CALIB_MAX raw scores */
	float c_norm; /* c(sample_size) of the current forest */
	float q50, spread;
	struct rng rng;
};

/* Average path length of an unsuccessful BST search among n points: the
 * expected depth still to go below a leaf holding n points. */
static double iforest_c(uint32_t n)
{
	double h;

	if (n <= 1)
		return 0.0;
	if (n == 2)
		return 1.0;
	h = log((double)(n - 1)) + 0.5772156649015329;
	return 2.0 * h - 2.0 * (double)(n - 1) / (double)n;
}

struct iforest *iforest__new(const struct iforest_params *p, uint64_t seed)
{
	struct iforest_params d = { 0 };
	struct iforest *f = NULL;
	uint32_t i;

	if (p)
		d = *p;
	if (!d.window)
		d.window = 32;
	if (!d.trees)
		d.trees = 64;
	if (!d.sample_size)
		d.sample_size = 128;
	if (!d.rebuild_every)
		d.rebuild_every = 2 * d.sample_size;
	if (!d.warmup)
		d.warmup = d.window + d.sample_size;
	if (d.window < 4 || d.window > 4096 || d.trees > 1024 || d.sample_size < 16 ||
	    d.sample_size > 4096) {
		errno = EINVAL;
		return NULL;
	}

	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->window = d.window;
	f->trees = d.trees;
	f->sample_size = d.sample_size;
	f->rebuild_every = d.rebuild_every;
	f->warmup = d.warmup;
	f->cap = 4 * d.sample_size;
	f->max_nodes = 2 * d.sample_size - 1;
	while ((1u << f->height) < d.sample_size)
		f->height++;
	rng_seed(&f->rng, seed);

	f->win = calloc(f->window, sizeof(*f->win));
	f->ring = calloc((size_t)f->cap * NF, sizeof(*f->ring));
	f->snap = calloc((size_t)f->cap * NF, sizeof(*f->snap));
	f->idx = calloc(f->cap, sizeof(*f->idx));
	f->nodes = calloc((size_t)f->trees * f->max_nodes, sizeof(*f->nodes));
	f->cn = calloc(f->sample_size + 1, sizeof(*f->cn));
	f->calib = calloc(IFOREST_CALIB_MAX, sizeof(*f->calib));
	if (!f->win || !f->ring || !f->snap || !f->idx || !f->nodes || !f->cn || !f->calib) {
		iforest__free(f);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i <= f->sample_size; i++)
		f->cn[i] = (float)iforest_c(i);
	return f;
}

void iforest__free(struct iforest *f)
{
	if (!f)
		return;
	free(f->win);
	free(f->ring);
	free(f->snap);
	free(f->idx);
	free(f->nodes);
	free(f->cn);
	free(f->calib);
	free(f);
}

static double iforest_floor(double level)
{
	return IFOREST_REL_FLOOR * fabs(level) + IFOREST_ABS_FLOOR;
}

/* The feature vector of x against the window before it (see iforest.h);
 * *sdn: the sd of the window ending at x, for the slow statistics. */
static void iforest_features(const struct iforest *f, double x, float *v, double *sdn_out)
{
	uint32_t w = f->window, i;
	double sum = 0.0, m2 = 0.0, m2n = 0.0, lo = INFINITY, hi = -INFINITY;
	double oldest = f->win[f->win_pos]; /* the ring is full: next slot = oldest */
	double prev = f->win[(f->win_pos + w - 1) % w];
	double mean, meann, sd, sdn, fl, t;

	for (i = 0; i < w; i++) {
		sum += f->win[i];
		lo = f->win[i] < lo ? f->win[i] : lo;
		hi = f->win[i] > hi ? f->win[i] : hi;
	}
	mean = sum / w;
	meann = (sum - oldest + x) / w; /* window ending at x */
	for (i = 0; i < w; i++) {
		m2 += (f->win[i] - mean) * (f->win[i] - mean);
		m2n += (f->win[i] - meann) * (f->win[i] - meann);
	}
	m2n += (x - meann) * (x - meann) - (oldest - meann) * (oldest - meann);
	sd = sqrt(m2 / w);
	sdn = sqrt(fmax(m2n, 0.0) / w);
	fl = iforest_floor(mean);

	v[0] = (float)asinh((x - mean) / fmax(sd, fl));
	v[1] = (float)asinh((x - prev) / fmax(sd, fl));
	t = log((sdn + fl) / (f->sd_ref + fl));
	v[2] = (float)fmax(-20.0, fmin(20.0, t));
	v[3] = (float)asinh((2.0 * x - lo - hi) / fmax(hi - lo, fl));
	fl = iforest_floor(f->slow_mean);
	v[4] = (float)asinh((x - f->slow_mean) / (sqrt(f->slow_var) + fl));
	*sdn_out = sdn;
}

/*
 * Expected path length of v over the forest, as the raw score 2^(-E[h]/c).
 * Where v[dim] lies outside the node's range [lo, hi], v would have been cut
 * off alone at this node with probability p = distance / (range extended to
 * v) had it been in the sample; that share of the path ends at depth + 1 and
 * the rest follows the stored split. Inside the range this is the standard
 * path length; outside, a far point is isolated near the root as it would be
 * with it in the sample, instead of sinking into the extreme leaf.
 */
static float iforest_raw(const struct iforest *f, const float *v)
{
	float sum = 0.0f;
	uint32_t t, d;

	for (t = 0; t < f->trees; t++) {
		const struct iforest_node *nodes = f->nodes + (size_t)t * f->max_nodes;
		const struct iforest_node *n = nodes;
		float depth = 0.0f, h = 0.0f, reach = 1.0f, p, x;

		while (n->dim < NF) {
			x = v[n->dim];
			p = 0.0f;
			if (x < n->lo)
				p = (n->lo - x) / (n->hi - x);
			else if (x > n->hi)
				p = (x - n->hi) / (x - n->lo);
			depth += 1.0f;
			h += reach * p * depth;
			reach *= 1.0f - p;
			n = nodes + n->child + (x >= n->split);
		}
		if (n->dim == IFOREST_FLAT) {
			const float *rep = f->snap + (size_t)n->child * NF;

			for (d = 0; d < NF; d++)
				if (fabsf(v[d] - rep[d]) > IFOREST_FLAT_TOL)
					break;
			if (d < NF) {
				sum += h + reach * (depth + 1.0f);
				continue;
			}
		}
		sum += h + reach * (depth + f->cn[n->size]);
	}
	return exp2f(-(sum / (float)f->trees) / f->c_norm);
}

/* Grows node ni of a tree over the snapshot vectors idx[0..n). */
static void iforest_grow(struct iforest *f, struct iforest_node *nodes, uint32_t *next, uint32_t ni,
			 uint32_t *idx, uint32_t n, uint32_t depth)
{
	struct iforest_node *node = nodes + ni;
	float lo[NF], hi[NF], split, val;
	uint32_t cand[NF], ncand = 0, i, j, d;

	node->size = (uint16_t)n;
	node->child = idx[0];
	node->dim = IFOREST_LEAF;
	if (n <= 1)
		return;
	for (d = 0; d < NF; d++) {
		lo[d] = INFINITY;
		hi[d] = -INFINITY;
	}
	for (i = 0; i < n; i++) {
		const float *v = f->snap + (size_t)idx[i] * NF;

		for (d = 0; d < NF; d++) { /* not fminf(): a libm call */
			lo[d] = v[d] < lo[d] ? v[d] : lo[d];
			hi[d] = v[d] > hi[d] ? v[d] : hi[d];
		}
	}
	for (d = 0; d < NF; d++)
		if (hi[d] > lo[d])
			cand[ncand++] = d;
	if (!ncand) {
		node->dim = IFOREST_FLAT;
		return;
	}
	if (depth >= f->height)
		return;

	d = cand[rng_below(&f->rng, ncand)];
	split = lo[d] + (hi[d] - lo[d]) * (float)rng_uniform(&f->rng);
	if (!(split > lo[d])) /* rounding: keep both sides non-empty */
		split = hi[d];
	i = 0;
	j = n;
	while (i < j) {
		val = f->snap[(size_t)idx[i] * NF + d];
		if (val < split) {
			i++;
		} else {
			uint32_t tmp = idx[i];

			idx[i] = idx[--j];
			idx[j] = tmp;
		}
	}
	node->dim = (uint8_t)d;
	node->split = split;
	node->lo = lo[d];
	node->hi = hi[d];
	node->child = *next;
	*next += 2;
	iforest_grow(f, nodes, next, node->child, idx, i, depth + 1);
	iforest_grow(f, nodes, next, node->child + 1, idx + i, n - i, depth + 1);
}

static void iforest_sort(float *a, uint32_t n)
{
	uint32_t i, j;
	float t;

	for (i = 1; i < n; i++) {
		t = a[i];
		for (j = i; j > 0 && a[j - 1] > t; j--)
			a[j] = a[j - 1];
		a[j] = t;
	}
}

/* Rebuilds the forest from a copy of the reservoir and recalibrates. */
static void iforest_rebuild(struct iforest *f)
{
	uint32_t n = f->ring_n, ns = f->sample_size < n ? f->sample_size : n;
	uint32_t t, i, ncal;

	memcpy(f->snap, f->ring, (size_t)n * NF * sizeof(*f->snap));
	f->snap_n = n;
	for (i = 0; i < n; i++)
		f->idx[i] = i;
	for (t = 0; t < f->trees; t++) {
		uint32_t next = 1;

		for (i = 0; i < ns; i++) {
			uint32_t j = i + rng_below(&f->rng, n - i), tmp = f->idx[i];

			f->idx[i] = f->idx[j];
			f->idx[j] = tmp;
		}
		iforest_grow(f, f->nodes + (size_t)t * f->max_nodes, &next, 0, f->idx, ns, 0);
	}
	f->c_norm = f->cn[ns];

	ncal = n < IFOREST_CALIB_MAX ? n : IFOREST_CALIB_MAX;
	for (i = 0; i < ncal; i++)
		f->calib[i] = iforest_raw(f, f->snap + (size_t)((uint64_t)i * n / ncal) * NF);
	iforest_sort(f->calib, ncal);
	f->q50 = f->calib[ncal / 2];
	f->spread = fmaxf(f->calib[(ncal - 1) * 999 / 1000] - f->q50, IFOREST_MIN_SPREAD);
	f->built = true;
	f->since_build = 0;
}

/* Takes x into the window and the slow statistics; sdn < 0: none yet. */
static void iforest_learn_sample(struct iforest *f, double x, double sdn)
{
	double a, dx;

	f->seen++;
	a = 1.0 / (double)(f->seen < f->cap ? f->seen : f->cap);
	dx = x - f->slow_mean;
	f->slow_mean += a * dx;
	f->slow_var = (1.0 - a) * (f->slow_var + a * dx * dx);
	if (sdn >= 0.0) /* ring_n counts the sdn seen so far, up to cap */
		f->sd_ref += (sdn - f->sd_ref) / (double)f->ring_n;
	f->win[f->win_pos] = x;
	f->win_pos = (f->win_pos + 1) % f->window;
	if (f->win_n < f->window)
		f->win_n++;
}

float iforest__update(struct iforest *f, float xf)
{
	double x = xf, sdn;
	float v[NF], score = 0.0f, u;

	if (!isfinite(xf))
		return 0.0f;
	if (f->win_n < f->window) {
		iforest_learn_sample(f, x, -1.0);
		return 0.0f;
	}

	iforest_features(f, x, v, &sdn);
	if (f->built && f->seen >= f->warmup) {
		u = fmaxf(iforest_raw(f, v) - f->q50, 0.0f) / f->spread;
		u *= u;
		u *= u;
		score = u / (1.0f + u);
	}

	memcpy(f->ring + (size_t)f->ring_pos * NF, v, sizeof(v));
	f->ring_pos = (f->ring_pos + 1) % f->cap;
	if (f->ring_n < f->cap)
		f->ring_n++;
	iforest_learn_sample(f, x, sdn);
	f->since_build++;
	if ((!f->built && f->ring_n >= f->sample_size) ||
	    (f->built && f->since_build >= f->rebuild_every))
		iforest_rebuild(f);
	return score;
}
