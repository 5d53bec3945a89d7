/* SPDX-License-Identifier: Apache-2.0 */
/*
 * holtwinters: additive Holt-Winters forecasting; the model, fit and
 * intervals are described in holtwinters.h.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "holtwinters.h"

#define HW_INIT_SEASONS 4
#define HW_INIT_POINTS 10 /* without season: at least, and before a self fit */
#define HW_VAR_MEMORY 1000 /* samples behind the running residual variance */
#define HW_LANES 4 /* weight sets per pass in the fit */

/* The filter state: what a pass over data changes. */
struct hw_state {
	double level, trend;
	double *season; /* m slots; unused without season */
	uint32_t pos; /* slot of the next sample */
};

struct holtwinters {
	uint32_t m; /* period, 0: none */
	double alpha, beta, gamma; /* 0: fitted */
	bool ready;
	struct hw_state st;
	double a, b, g; /* weights in use */
	double sigma2; /* one-step residual variance */
	uint64_t nres; /* residuals behind sigma2 */

	double *init_season; /* fit: initial seasonal terms */
	double *trial_season; /* fit: HW_LANES passes' seasonal terms */
	double *buf; /* samples before the first (self) fit */
	uint32_t buf_n, buf_cap;
};

static bool hw_weight_ok(double v)
{
	return v >= 0.0 && v <= 1.0; /* false for NaN */
}

struct holtwinters *holtwinters__new(const struct holtwinters_params *p)
{
	static const struct holtwinters_params defaults = { 0 };
	struct holtwinters *h = NULL;
	size_t slots;

	if (!p)
		p = &defaults;
	if ((p->period == 1 || p->period > (1u << 24)) || !hw_weight_ok(p->alpha) ||
	    !hw_weight_ok(p->beta) || !hw_weight_ok(p->gamma)) {
		errno = EINVAL;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->m = p->period;
	h->alpha = p->alpha;
	h->beta = p->beta;
	h->gamma = p->gamma;
	h->buf_cap = h->m ? 2 * h->m : HW_INIT_POINTS;
	slots = h->m ? h->m : 1;
	h->st.season = calloc(slots, sizeof(double));
	h->init_season = calloc(slots, sizeof(double));
	h->trial_season = calloc(slots * HW_LANES, sizeof(double));
	h->buf = calloc(h->buf_cap, sizeof(double));
	if (!h->st.season || !h->init_season || !h->trial_season || !h->buf) {
		holtwinters__free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

void holtwinters__free(struct holtwinters *h)
{
	if (!h)
		return;
	free(h->st.season);
	free(h->init_season);
	free(h->trial_season);
	free(h->buf);
	free(h);
}

/* One step of the filter; returns the squared error, or NaN for no sample. */
static inline double hw_step(const struct holtwinters *h, struct hw_state *s, double a, double b,
			     double g, double x)
{
	double f, e;

	if (!h->m) {
		if (!isfinite(x)) {
			s->level += s->trend;
			return NAN;
		}
		e = x - (s->level + s->trend);
		s->level += s->trend + a * e;
		s->trend += a * b * e;
		return e * e;
	}
	f = s->level + s->trend + s->season[s->pos];
	if (isfinite(x)) {
		e = x - f;
		s->level += s->trend + a * e;
		s->trend += a * b * e;
		s->season[s->pos] += g * e;
		e *= e;
	} else {
		s->level += s->trend;
		e = NAN;
	}
	if (++s->pos == h->m)
		s->pos = 0;
	return e;
}

/*
 * Runs the filter with weights (a, b, g) over x from the initial state
 * (level0, trend0, init_season) into *s; returns the sum of squared one-step
 * errors, *count the finite samples.
 */
static double hw_pass(const struct holtwinters *h, double level0, double trend0, double a, double b,
		      double g, const double *x, size_t n, struct hw_state *s, uint64_t *count)
{
	double sse = 0.0, e;
	uint64_t c = 0;
	size_t i;

	s->level = level0;
	s->trend = trend0;
	s->pos = 0;
	if (h->m)
		memcpy(s->season, h->init_season, h->m * sizeof(double));
	for (i = 0; i < n; i++) {
		e = hw_step(h, s, a, b, g, x[i]);
		if (e == e) {
			sse += e;
			c++;
		}
	}
	if (count)
		*count = c;
	return sse;
}

/* Initial level (before x[0]), trend and seasonal terms; 0 or -EINVAL. */
static int hw_init(struct holtwinters *h, const double *x, size_t n, double *level, double *trend)
{
	double sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0, mean[HW_INIT_SEASONS], v, sum;
	uint32_t m = h->m, L, j, i, c;
	size_t k;

	if (!m) {
		size_t np = n / 10 > HW_INIT_POINTS ? n / 10 : HW_INIT_POINTS;

		c = 0;
		for (k = 0; k < n && k < np; k++) {
			if (!isfinite(x[k]))
				continue;
			sx += (double)k;
			sy += x[k];
			sxx += (double)k * k;
			sxy += (double)k * x[k];
			c++;
		}
		if (c < 2)
			return -EINVAL;
		*trend = (c * sxy - sx * sy) / (c * sxx - sx * sx);
		*level = (sy - *trend * sx) / c - *trend; /* the line at t = -1 */
		return 0;
	}

	L = (uint32_t)(n / m < HW_INIT_SEASONS ? n / m : HW_INIT_SEASONS);
	for (j = 0; j < L; j++) {
		sum = 0.0;
		c = 0;
		for (i = 0; i < m; i++) {
			v = x[(size_t)j * m + i];
			if (isfinite(v)) {
				sum += v;
				c++;
			}
		}
		if (!c)
			return -EINVAL;
		mean[j] = sum / c;
	}
	/* The line through the season means, each at its season's centre. */
	*trend = (mean[L - 1] - mean[0]) / ((double)(L - 1) * m);
	sum = 0.0;
	for (i = 0; i < m; i++) {
		double si = 0.0;

		c = 0;
		for (j = 0; j < L; j++) {
			k = (size_t)j * m + i;
			if (isfinite(x[k])) {
				si += x[k] - (mean[0] + *trend * ((double)k - (m - 1) / 2.0));
				c++;
			}
		}
		h->init_season[i] = c ? si / c : 0.0;
		sum += h->init_season[i];
	}
	for (i = 0; i < m; i++)
		h->init_season[i] -= sum / m;
	*level = mean[0] + *trend * (-1.0 - (m - 1) / 2.0);
	return 0;
}

struct hw_weights {
	double a, b, g;
};

/*
 * One-step SSE of HW_LANES weight sets over x from the initial state, in
 * one loop: the filter is a serial recurrence bound by FP latency, so
 * independent lanes run nearly for free. Without season the lanes run with
 * one zero slot and gamma 0. The lanes' seasonal terms are interleaved in
 * trial_season ([slot][lane]).
 */
static void hw_sse_lanes(const struct holtwinters *h, double level0, double trend0,
			 const struct hw_weights *w, const double *x, size_t n, double *sse)
{
	double l[HW_LANES], b[HW_LANES], a[HW_LANES], ab[HW_LANES], g[HW_LANES], e, xv;
	uint32_t m = h->m ? h->m : 1, pos = 0, i, k;
	double *s = h->trial_season;
	size_t t;

	for (k = 0; k < HW_LANES; k++) {
		l[k] = level0;
		b[k] = trend0;
		a[k] = w[k].a;
		ab[k] = w[k].a * w[k].b;
		g[k] = w[k].g;
		sse[k] = 0.0;
	}
	for (i = 0; i < m; i++)
		for (k = 0; k < HW_LANES; k++)
			s[i * HW_LANES + k] = h->m ? h->init_season[i] : 0.0;
	for (t = 0; t < n; t++) {
		xv = x[t];
		if (isfinite(xv)) {
			for (k = 0; k < HW_LANES; k++) {
				e = xv - (l[k] + b[k] + s[pos * HW_LANES + k]);
				l[k] += b[k] + a[k] * e;
				b[k] += ab[k] * e;
				s[pos * HW_LANES + k] += g[k] * e;
				sse[k] += e * e;
			}
		} else {
			for (k = 0; k < HW_LANES; k++)
				l[k] += b[k];
		}
		if (++pos == m)
			pos = 0;
	}
}

/* Evaluates nw weight sets, keeping the best (lowest SSE) in *best. */
static void hw_search(const struct holtwinters *h, double level0, double trend0,
		      const struct hw_weights *w, size_t nw, const double *x, size_t n,
		      double *best_sse, struct hw_weights *best)
{
	struct hw_weights lane[HW_LANES];
	double sse[HW_LANES];
	size_t i, k;

	for (i = 0; i < nw; i += HW_LANES) {
		for (k = 0; k < HW_LANES; k++) /* pad the last group with repeats */
			lane[k] = w[i + k < nw ? i + k : i];
		hw_sse_lanes(h, level0, trend0, lane, x, n, sse);
		for (k = 0; k < HW_LANES && i + k < nw; k++) {
			if (sse[k] < *best_sse) {
				*best_sse = sse[k];
				*best = lane[k];
			}
		}
	}
}

int holtwinters__fit(struct holtwinters *h, const double *x, size_t n)
{
	static const double ga[] = { 0.01, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 0.95 };
	static const double gb[] = { 0.005, 0.02, 0.05, 0.1, 0.2, 0.4 };
	static const double refine[2][3] = { { 1.0, 0.6, 1.6 }, { 1.0, 0.8, 1.25 } };
	struct hw_weights grid[9 * 6 * 6], best = { 0 }, c;
	size_t na, nb, ng, nw, i, j, k, r;
	double level0, trend0, best_sse = INFINITY, sse;
	uint64_t count;
	int err;

	if (n < (h->m ? 2 * (size_t)h->m : 3))
		return -EINVAL;
	err = hw_init(h, x, n, &level0, &trend0);
	if (err)
		return err;

	/* The grid: a fixed weight is a one-value axis. */
	na = h->alpha > 0.0 ? 1 : sizeof(ga) / sizeof(ga[0]);
	nb = h->beta > 0.0 ? 1 : sizeof(gb) / sizeof(gb[0]);
	ng = !h->m || h->gamma > 0.0 ? 1 : sizeof(gb) / sizeof(gb[0]);
	nw = 0;
	for (i = 0; i < na; i++) {
		for (j = 0; j < nb; j++) {
			for (k = 0; k < ng; k++) {
				c.a = h->alpha > 0.0 ? h->alpha : ga[i];
				c.b = h->beta > 0.0 ? h->beta : gb[j];
				c.g = !h->m ? 0.0 : h->gamma > 0.0 ? h->gamma : gb[k];
				if (h->gamma == 0.0 && c.g > 1.0 - c.a)
					continue;
				grid[nw++] = c;
			}
		}
	}
	hw_search(h, level0, trend0, grid, nw, x, n, &best_sse, &best);

	/* Refine each fitted weight by factors around the best point. */
	for (r = 0; r < 2; r++) {
		struct hw_weights centre = best;

		nw = 0;
		for (i = 0; i < (h->alpha > 0.0 ? 1u : 3u); i++) {
			for (j = 0; j < (h->beta > 0.0 ? 1u : 3u); j++) {
				for (k = 0; k < (!h->m || h->gamma > 0.0 ? 1u : 3u); k++) {
					c.a = fmin(centre.a * refine[r][i], 1.0);
					c.b = fmin(centre.b * refine[r][j], 1.0);
					c.g = fmin(centre.g * refine[r][k], 1.0);
					if ((i | j | k) == 0 ||
					    (h->gamma == 0.0 && c.g > 1.0 - c.a))
						continue;
					grid[nw++] = c;
				}
			}
		}
		hw_search(h, level0, trend0, grid, nw, x, n, &best_sse, &best);
	}

	h->a = best.a;
	h->b = best.b;
	h->g = best.g;
	sse = hw_pass(h, level0, trend0, best.a, best.b, best.g, x, n, &h->st, &count);
	h->nres = count;
	h->sigma2 = count ? sse / count : 0.0;
	h->ready = true;
	h->buf_n = 0;
	return 0;
}

void holtwinters__update(struct holtwinters *h, double x)
{
	double e2, w;

	if (!h->ready) {
		h->buf[h->buf_n++] = x;
		if (h->buf_n == h->buf_cap && holtwinters__fit(h, h->buf, h->buf_n))
			h->buf_n = 0; /* no usable start in there: collect afresh */
		return;
	}
	e2 = hw_step(h, &h->st, h->a, h->b, h->g, x);
	if (e2 != e2)
		return;
	h->nres++;
	w = 1.0 / (double)(h->nres < HW_VAR_MEMORY ? h->nres : HW_VAR_MEMORY);
	h->sigma2 += w * (e2 - h->sigma2);
}

/* Normal quantile function (Acklam's rational approximation, relative
 * error below 1.2e-9), p in (0, 1). */
static double hw_probit(double p)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
				    -2.759285104469687e+02, 1.383577518672690e+02,
				    -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
				    -1.556989798598866e+02, 6.680131188771972e+01,
				    -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
				    -2.400758277161838e+00, -2.549732539343734e+00,
				    4.374664141464968e+00,  2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01,
				    2.445134137142996e+00, 3.754408661907416e+00 };
	double q, r;

	if (p < 0.02425) {
		q = sqrt(-2.0 * log(p));
		return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		       ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
	}
	if (p > 1.0 - 0.02425)
		return -hw_probit(1.0 - p);
	q = p - 0.5;
	r = q * q;
	return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
	       (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* Mean forecast `steps` ahead. */
static double hw_mean(const struct holtwinters *h, size_t steps)
{
	double f = h->st.level + (double)steps * h->st.trend;

	if (h->m)
		f += h->st.season[(h->st.pos + (steps - 1) % h->m) % h->m];
	return f;
}

int holtwinters__forecast(const struct holtwinters *h, size_t steps, double level, double *mean,
			  double *lo, double *hi)
{
	double f, hh, a = h->a, bb = h->a * h->b, g = h->g, k, v, z;

	if (!steps || !(level > 0.0 && level < 1.0))
		return -EINVAL;
	if (!h->ready)
		return -ENODATA;
	f = hw_mean(h, steps);
	hh = (double)steps;
	v = 1.0 + (hh - 1.0) * (a * a + a * bb * hh + bb * bb * hh * (2.0 * hh - 1.0) / 6.0);
	if (h->m) {
		k = (double)((steps - 1) / h->m);
		v += g * k * (2.0 * a + g + bb * h->m * (k + 1.0));
	}
	z = hw_probit(0.5 + level / 2.0) * sqrt(h->sigma2 * v);
	if (mean)
		*mean = f;
	if (lo)
		*lo = f - z;
	if (hi)
		*hi = f + z;
	return 0;
}

long holtwinters__time_to_threshold(const struct holtwinters *h, double threshold, size_t horizon)
{
	uint32_t period = h->m ? h->m : 1, j;
	double b = h->st.trend, base, kd;
	bool up = h->st.level < threshold;
	size_t best = 0, h0, hs;

	if (!h->ready || !isfinite(threshold) || !horizon)
		return -1;
	/* The steps h0, h0 + m, h0 + 2m, ... share one seasonal term: on them
	 * the mean is the line base + h b, solved for h in closed form. */
	for (j = 0; j < period && j < horizon; j++) {
		h0 = j + 1;
		base = h->st.level + (h->m ? h->st.season[(h->st.pos + j) % h->m] : 0.0);
		if (up ? base + h0 * b >= threshold : base + h0 * b <= threshold) {
			hs = h0;
		} else {
			if (up ? b <= 0.0 : b >= 0.0)
				continue;
			kd = ceil((threshold - base - h0 * b) / (period * b));
			if (!(kd * period + h0 <= (double)horizon))
				continue;
			hs = h0 + (size_t)kd * period;
			/* rounding in the division: settle on the first step */
			while (hs > h0 && (up ? base + (hs - period) * b >= threshold :
						base + (hs - period) * b <= threshold))
				hs -= period;
			while (hs <= horizon &&
			       (up ? base + hs * b < threshold : base + hs * b > threshold))
				hs += period;
		}
		if (hs <= horizon && (!best || hs < best))
			best = hs;
	}
	return best ? (long)best : -1;
}
