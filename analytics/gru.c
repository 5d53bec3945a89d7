/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gru: small GRU forecaster scored on its prediction error; the model,
 * training and score are described in gru.h.
 *
 * Locking: `lock` guards the live part (history ring, live weights and
 * normalisation, error scale, counters); gru__update() holds it for one
 * forward pass. `train_lock` serialises trainers and guards the trainer's
 * part (working weights, Adam state, snapshot, rng); gru__train() takes
 * `lock` only to copy the history out and the model in, never while it
 * computes.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gru.h"
#include "rng.h"

#define GRU_BATCH 16
#define GRU_MIN_EXAMPLES 16
#define GRU_CLIP_IN 8.0f /* normalised inputs, in sd */
#define GRU_HUBER 1.0f /* loss delta, in sd */
#define GRU_GRAD_NORM 1.0f
#define GRU_MAE_EXAMPLES 512 /* most recent examples behind the training error */
#define GRU_ERR_WEIGHT (1.0 / 64)
#define GRU_ERR_CLIP 4.0 /* errors enter the running scale clipped at 4 scales */
#define GRU_ADAM_B1 0.9f
#define GRU_ADAM_B2 0.999f
#define GRU_ADAM_EPS 1e-8f

/* Offsets of the parameter blocks in the flat weight vector. */
struct gru_layout {
	uint32_t wz, wr, wn; /* input weights, hidden each */
	uint32_t uz, ur, un; /* recurrent weights, hidden x hidden, row i = unit i */
	uint32_t bz, br, bn; /* biases */
	uint32_t wy, by; /* output head */
	uint32_t n; /* total */
};

struct gru {
	uint32_t hidden, window, history, retrain_every, epochs, warmup;
	float lr;
	bool sync_train;
	struct gru_layout l;
	uint32_t cache_len; /* floats in a forward cache */

	pthread_mutex_t lock;
	float *hist; /* ring of the last `history` samples */
	uint32_t hist_n, hist_pos;
	uint64_t since_train; /* samples since the last snapshot */
	bool trained, busy;
	float *w; /* live weights */
	float mu, sigma; /* live normalisation */
	double err_scale; /* running scale of |error| */
	float *fwd; /* inference cache */
	float *fwd_in; /* inference inputs, window */

	pthread_mutex_t train_lock;
	struct rng rng;
	float *tw, *grad, *am, *av; /* working weights, gradient, Adam moments */
	uint64_t adam_t;
	float *snap; /* normalised history snapshot */
	uint32_t *order; /* example order */
	float *cache; /* training forward cache */
	float *bwd; /* 6 * hidden */
	float *in; /* example inputs, window */
};

static void gru_layout(struct gru_layout *l, uint32_t h)
{
	l->wz = 0;
	l->wr = h;
	l->wn = 2 * h;
	l->uz = 3 * h;
	l->ur = l->uz + h * h;
	l->un = l->ur + h * h;
	l->bz = l->un + h * h;
	l->br = l->bz + h;
	l->bn = l->br + h;
	l->wy = l->bn + h;
	l->by = l->wy + h;
	l->n = l->by + 1;
}

static inline float gru_sigmoid(float a)
{
	return 1.0f / (1.0f + expf(-a));
}

static inline float gru_tanh(float a)
{
	return 2.0f / (1.0f + expf(-2.0f * a)) - 1.0f;
}

static inline float gru_clip(float v, float lim)
{
	return v > lim ? lim : v < -lim ? -lim : v;
}

/*
 * Runs the GRU over in[0..T) from a zero state and returns the head's output
 * (the predicted change from in[T - 1]). cache holds the states h_0..h_T,
 * then the gates z, r and candidates n of each step, for gru_backward().
 */
static float gru_forward(const struct gru *g, const float *w, const float *in, float *cache)
{
	const struct gru_layout *l = &g->l;
	uint32_t H = g->hidden, T = g->window, t, i, j;
	float *hs = cache, *zs = hs + (T + 1) * H, *rs = zs + T * H, *ns = rs + T * H;
	float y;

	memset(hs, 0, H * sizeof(*hs));
	for (t = 0; t < T; t++) {
		const float *hp = hs + t * H;
		float *h = hs + (t + 1) * H, *z = zs + t * H, *r = rs + t * H, *n = ns + t * H;
		float x = in[t];

		for (i = 0; i < H; i++) {
			const float *uz = w + l->uz + i * H, *ur = w + l->ur + i * H;
			float az = w[l->wz + i] * x + w[l->bz + i];
			float ar = w[l->wr + i] * x + w[l->br + i];

			for (j = 0; j < H; j++) {
				az += uz[j] * hp[j];
				ar += ur[j] * hp[j];
			}
			z[i] = gru_sigmoid(az);
			r[i] = gru_sigmoid(ar);
		}
		for (j = 0; j < H; j++) /* h is scratch for r * h_prev until the end */
			h[j] = r[j] * hp[j];
		for (i = 0; i < H; i++) {
			const float *un = w + l->un + i * H;
			float an = w[l->wn + i] * x + w[l->bn + i];

			for (j = 0; j < H; j++)
				an += un[j] * h[j];
			n[i] = gru_tanh(an);
		}
		for (i = 0; i < H; i++)
			h[i] = (1.0f - z[i]) * n[i] + z[i] * hp[i];
	}
	y = w[l->by];
	for (i = 0; i < H; i++)
		y += w[l->wy + i] * hs[T * H + i];
	return y;
}

/* Adds to grad the gradient of the loss given dy = dloss/doutput, through
 * the T steps of the forward pass cached in cache. */
static void gru_backward(const struct gru *g, const float *w, const float *in, const float *cache,
			 float dy, float *grad, float *bwd)
{
	const struct gru_layout *l = &g->l;
	uint32_t H = g->hidden, T = g->window, i, j, t;
	const float *hs = cache, *zs = hs + (T + 1) * H, *rs = zs + T * H, *ns = rs + T * H;
	float *dh = bwd, *dhp = dh + H, *dan = dhp + H, *dar = dan + H, *daz = dar + H;
	float *rh = daz + H;

	grad[l->by] += dy;
	for (i = 0; i < H; i++) {
		grad[l->wy + i] += dy * hs[T * H + i];
		dh[i] = dy * w[l->wy + i];
	}
	for (t = T; t-- > 0;) {
		const float *hp = hs + t * H, *z = zs + t * H, *r = rs + t * H, *n = ns + t * H;
		float x = in[t];

		for (i = 0; i < H; i++) {
			float dn = dh[i] * (1.0f - z[i]), dz = dh[i] * (hp[i] - n[i]);

			dhp[i] = dh[i] * z[i];
			dan[i] = dn * (1.0f - n[i] * n[i]);
			daz[i] = dz * z[i] * (1.0f - z[i]);
			rh[i] = r[i] * hp[i];
			dar[i] = 0.0f;
		}
		/* candidate: weights, then d(r * h_prev) into dar */
		for (i = 0; i < H; i++) {
			const float *un = w + l->un + i * H;
			float *gun = grad + l->un + i * H;

			grad[l->wn + i] += dan[i] * x;
			grad[l->bn + i] += dan[i];
			for (j = 0; j < H; j++) {
				gun[j] += dan[i] * rh[j];
				dar[j] += un[j] * dan[i];
			}
		}
		for (j = 0; j < H; j++) {
			float drh = dar[j];

			dhp[j] += drh * r[j];
			dar[j] = drh * hp[j] * r[j] * (1.0f - r[j]);
		}
		/* gates */
		for (i = 0; i < H; i++) {
			const float *ur = w + l->ur + i * H, *uz = w + l->uz + i * H;
			float *gur = grad + l->ur + i * H, *guz = grad + l->uz + i * H;

			grad[l->wr + i] += dar[i] * x;
			grad[l->br + i] += dar[i];
			grad[l->wz + i] += daz[i] * x;
			grad[l->bz + i] += daz[i];
			for (j = 0; j < H; j++) {
				gur[j] += dar[i] * hp[j];
				guz[j] += daz[i] * hp[j];
				dhp[j] += ur[j] * dar[i] + uz[j] * daz[i];
			}
		}
		memcpy(dh, dhp, H * sizeof(*dh));
	}
}

struct gru *gru__new(const struct gru_params *p, uint64_t seed)
{
	struct gru_params d = { 0 };
	struct gru *g = NULL;
	uint32_t H, i, np;
	float a;

	if (p)
		d = *p;
	if (!d.hidden)
		d.hidden = 12;
	if (!d.window)
		d.window = 16;
	if (!d.history)
		d.history = 1024;
	if (!d.retrain_every)
		d.retrain_every = d.history / 2;
	if (!d.epochs)
		d.epochs = 8;
	if (!d.warmup)
		d.warmup = 256;
	if (d.lr == 0.0f)
		d.lr = 0.01f;
	if (d.hidden > 64 || d.window < 2 || d.window > 256 || d.history > (1u << 24) ||
	    d.history < d.window + GRU_MIN_EXAMPLES || d.epochs > 1000 || !(d.lr > 0.0f) ||
	    !(d.lr < 1.0f)) {
		errno = EINVAL;
		return NULL;
	}
	if (d.warmup < d.window + GRU_MIN_EXAMPLES)
		d.warmup = d.window + GRU_MIN_EXAMPLES;
	if (d.warmup > d.history)
		d.warmup = d.history;

	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->hidden = H = d.hidden;
	g->window = d.window;
	g->history = d.history;
	g->retrain_every = d.retrain_every;
	g->epochs = d.epochs;
	g->warmup = d.warmup;
	g->lr = d.lr;
	g->sync_train = d.sync_train;
	gru_layout(&g->l, H);
	np = g->l.n;
	g->cache_len = (g->window + 1) * H + 3 * g->window * H;
	g->sigma = 1.0f;
	rng_seed(&g->rng, seed);

	g->hist = calloc(g->history, sizeof(*g->hist));
	g->w = calloc(np, sizeof(*g->w));
	g->fwd = calloc(g->cache_len, sizeof(*g->fwd));
	g->fwd_in = calloc(g->window, sizeof(*g->fwd_in));
	g->tw = calloc(np, sizeof(*g->tw));
	g->grad = calloc(np, sizeof(*g->grad));
	g->am = calloc(np, sizeof(*g->am));
	g->av = calloc(np, sizeof(*g->av));
	g->snap = calloc(g->history, sizeof(*g->snap));
	g->order = calloc(g->history, sizeof(*g->order));
	g->cache = calloc(g->cache_len, sizeof(*g->cache));
	g->bwd = calloc(6 * H, sizeof(*g->bwd));
	g->in = calloc(g->window, sizeof(*g->in));
	if (!g->hist || !g->w || !g->fwd || !g->fwd_in || !g->tw || !g->grad || !g->am || !g->av ||
	    !g->snap || !g->order || !g->cache || !g->bwd || !g->in)
		goto err_free;
	if (pthread_mutex_init(&g->lock, NULL))
		goto err_free;
	if (pthread_mutex_init(&g->train_lock, NULL)) {
		pthread_mutex_destroy(&g->lock);
		goto err_free;
	}

	/* Weights and head uniform in +-1/sqrt(H), biases 0 (PyTorch's GRU
	 * initialisation without the bias noise). */
	a = 1.0f / sqrtf((float)H);
	for (i = 0; i < g->l.bz; i++)
		g->tw[i] = a * (2.0f * (float)rng_uniform(&g->rng) - 1.0f);
	for (i = 0; i < H; i++)
		g->tw[g->l.wy + i] = a * (2.0f * (float)rng_uniform(&g->rng) - 1.0f);
	return g;

err_free:
	free(g->hist);
	free(g->w);
	free(g->fwd);
	free(g->fwd_in);
	free(g->tw);
	free(g->grad);
	free(g->am);
	free(g->av);
	free(g->snap);
	free(g->order);
	free(g->cache);
	free(g->bwd);
	free(g->in);
	free(g);
	errno = ENOMEM;
	return NULL;
}

void gru__free(struct gru *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->train_lock);
	pthread_mutex_destroy(&g->lock);
	free(g->hist);
	free(g->w);
	free(g->fwd);
	free(g->fwd_in);
	free(g->tw);
	free(g->grad);
	free(g->am);
	free(g->av);
	free(g->snap);
	free(g->order);
	free(g->cache);
	free(g->bwd);
	free(g->in);
	free(g);
}

static bool gru_due_locked(const struct gru *g)
{
	if (g->busy)
		return false;
	if (!g->trained)
		return g->hist_n >= g->warmup;
	return g->since_train >= g->retrain_every;
}

bool gru__training_due(const struct gru *g)
{
	/* The mutex is internal state: locking it does not change the
	 * object's observable value. */
	struct gru *mg = (struct gru *)g;
	bool due;

	pthread_mutex_lock(&mg->lock);
	due = gru_due_locked(g);
	pthread_mutex_unlock(&mg->lock);
	return due;
}

float gru__update(struct gru *g, float x, float *predicted)
{
	uint32_t T = g->window, j;
	float pred = NAN, score = 0.0f;
	double e, scale, u;
	bool due;

	if (!isfinite(x)) {
		if (predicted)
			*predicted = NAN;
		return 0.0f;
	}

	pthread_mutex_lock(&g->lock);
	if (g->trained && g->hist_n >= T) {
		for (j = 0; j < T; j++) {
			float v = g->hist[(g->hist_pos + g->history - T + j) % g->history];

			g->fwd_in[j] = gru_clip((v - g->mu) / g->sigma, GRU_CLIP_IN);
		}
		pred = g->mu +
		       g->sigma * (g->fwd_in[T - 1] + gru_forward(g, g->w, g->fwd_in, g->fwd));
		e = fabs((double)x - pred);
		scale = fmax(g->err_scale, 0.01 * g->sigma);
		u = e / scale;
		if (u > 3.0)
			score = (float)(1.0 - exp(-(u - 3.0) / 4.0));
		g->err_scale += GRU_ERR_WEIGHT * (fmin(e, GRU_ERR_CLIP * scale) - g->err_scale);
	}
	g->hist[g->hist_pos] = x;
	g->hist_pos = (g->hist_pos + 1) % g->history;
	if (g->hist_n < g->history)
		g->hist_n++;
	g->since_train++;
	due = g->sync_train && gru_due_locked(g);
	pthread_mutex_unlock(&g->lock);

	if (due)
		gru__train(g); /* cannot fail: the history is past warmup */
	if (predicted)
		*predicted = pred;
	return score;
}

/* One Adam step of the working weights along the gradient (averaged over
 * nb examples, norm clipped). */
static void gru_adam(struct gru *g, uint32_t nb)
{
	uint32_t np = g->l.n, i;
	float norm = 0.0f, k = 1.0f / (float)nb, b1t, b2t, m, v;

	for (i = 0; i < np; i++)
		norm += g->grad[i] * g->grad[i];
	norm = sqrtf(norm) * k;
	if (norm > GRU_GRAD_NORM)
		k *= GRU_GRAD_NORM / norm;
	g->adam_t++;
	b1t = 1.0f - powf(GRU_ADAM_B1, (float)g->adam_t);
	b2t = 1.0f - powf(GRU_ADAM_B2, (float)g->adam_t);
	for (i = 0; i < np; i++) {
		float gr = g->grad[i] * k;

		g->am[i] = GRU_ADAM_B1 * g->am[i] + (1.0f - GRU_ADAM_B1) * gr;
		g->av[i] = GRU_ADAM_B2 * g->av[i] + (1.0f - GRU_ADAM_B2) * gr * gr;
		m = g->am[i] / b1t;
		v = g->av[i] / b2t;
		g->tw[i] -= g->lr * m / (sqrtf(v) + GRU_ADAM_EPS);
	}
}

/* Fills g->in with example k's inputs (snapshot positions k .. k + T - 1)
 * and returns its target, the change from the last input, in sd. */
static float gru_example(struct gru *g, uint32_t k)
{
	uint32_t T = g->window, j;

	for (j = 0; j < T; j++)
		g->in[j] = gru_clip(g->snap[k + j], GRU_CLIP_IN);
	return g->snap[k + T] - g->in[T - 1];
}

int gru__train(struct gru *g)
{
	uint32_t T = g->window, n, nex, start, i, e, b, nb, k, tmp;
	double sum = 0.0, m2 = 0.0, mae = 0.0, mean, sd;
	float mu, sigma, y, target, err;

	pthread_mutex_lock(&g->train_lock);
	pthread_mutex_lock(&g->lock);
	n = g->hist_n;
	if (n < T + GRU_MIN_EXAMPLES) {
		pthread_mutex_unlock(&g->lock);
		pthread_mutex_unlock(&g->train_lock);
		return -ENODATA;
	}
	start = (g->hist_pos + g->history - n) % g->history;
	for (i = 0; i < n; i++)
		g->snap[i] = g->hist[(start + i) % g->history];
	g->since_train = 0;
	g->busy = true;
	pthread_mutex_unlock(&g->lock);

	for (i = 0; i < n; i++)
		sum += g->snap[i];
	mean = sum / n;
	for (i = 0; i < n; i++)
		m2 += (g->snap[i] - mean) * (g->snap[i] - mean);
	sd = fmax(sqrt(m2 / n), 1e-4 * fabs(mean) + 1e-12);
	mu = (float)mean;
	sigma = (float)sd;
	for (i = 0; i < n; i++)
		g->snap[i] = (float)((g->snap[i] - mean) / sd);

	nex = n - T;
	for (i = 0; i < nex; i++)
		g->order[i] = i;
	memset(g->am, 0, g->l.n * sizeof(*g->am));
	memset(g->av, 0, g->l.n * sizeof(*g->av));
	g->adam_t = 0;
	for (e = 0; e < g->epochs; e++) {
		for (i = nex - 1; i > 0; i--) {
			k = rng_below(&g->rng, i + 1);
			tmp = g->order[i];
			g->order[i] = g->order[k];
			g->order[k] = tmp;
		}
		for (b = 0; b < nex; b += nb) {
			nb = nex - b < GRU_BATCH ? nex - b : GRU_BATCH;
			memset(g->grad, 0, g->l.n * sizeof(*g->grad));
			for (i = b; i < b + nb; i++) {
				target = gru_example(g, g->order[i]);
				y = gru_forward(g, g->tw, g->in, g->cache);
				err = gru_clip(y - target, GRU_HUBER);
				gru_backward(g, g->tw, g->in, g->cache, err, g->grad, g->bwd);
			}
			gru_adam(g, nb);
		}
	}

	/* The typical error of the new model on the most recent examples. */
	k = nex > GRU_MAE_EXAMPLES ? nex - GRU_MAE_EXAMPLES : 0;
	for (i = k; i < nex; i++) {
		target = gru_example(g, i);
		mae += fabsf(gru_forward(g, g->tw, g->in, g->cache) - target);
	}
	mae = mae / (nex - k) * sd;

	pthread_mutex_lock(&g->lock);
	memcpy(g->w, g->tw, g->l.n * sizeof(*g->w));
	g->mu = mu;
	g->sigma = sigma;
	g->err_scale = mae;
	g->trained = true;
	g->busy = false;
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_unlock(&g->train_lock);
	return 0;
}
