/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seasonal: construction, dispatch, period detection and the scalar
 * reference kernels (see seasonal.h for the model, seasonal_impl.h for the
 * layout). Build with -fno-tree-vectorize -ffp-contract=off, like statdet.c:
 * the scalar kernels are the reference and the benchmark's baseline.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "seasonal_impl.h"

/*
 * One sample of series i against expected level + sold (has: the series has
 * a period; otherwise sold is 0), the scalar reference of the vector kernels.
 * Returns the score; *snew is the seasonal value to store for this phase
 * (sold when nothing is learnt), *eout the expected value (for the history
 * when x is missing).
 */
static inline float seasonal_step_scalar(const struct seasonal *s, size_t i, float x, float sold,
					 bool has, float *snew, float *eout)
{
	const struct statdet_core *c = &s->core;
	const struct statdet_core_cfg cfg = seasonal_cfg(s);
	float lvl = s->level[i], qs = s->qs[i], ql = s->ql[i], cnt = c->cnt[i];
	float es = lvl + sold, e, rs, rl, r, l2, score, sp, dl, lim, as;
	bool first = cnt == 0.0f, use = has && qs <= ql, warm;

	e = use ? es : lvl;
	*eout = e;
	*snew = sold;
	if (!statdet_valid(x))
		return 0.0f;
	rs = x - es;
	rl = x - lvl;
	r = use ? rs : rl;
	if (first) {
		/* The model starts at the first sample: residual 0. */
		e = x;
		r = 0.0f;
	}
	warm = cnt >= s->warmup;
	score = statdet_core_scalar(c, i, r, e, &cfg, &sp);
	if (first) {
		s->qs[i] = 0.0f;
		s->ql[i] = 0.0f;
		s->level[i] = x;
		return score;
	}
	s->qs[i] = qs + s->a_gate * (rs * rs - qs);
	s->ql[i] = ql + s->a_gate * (rl * rl - ql);
	/* Huber: after warm-up an outlier moves the level by at most
	 * a_level * SEASONAL_K_LEVEL spreads. */
	dl = (x - sold) - lvl;
	lim = SEASONAL_K_LEVEL * sp;
	if (warm)
		dl = statdet_fmax(statdet_fmin(dl, lim), -lim);
	l2 = lvl + s->a_level * dl;
	s->level[i] = l2;
	/* The profile's weight: with a fixed period a running mean over the
	 * first periods seen (1 / (k + 1) in period k), then a_season; per
	 * sample, times buckets / period. A detected profile starts seeded. */
	as = statdet_fmax(s->a_season, s->a_init / (floorf(cnt * s->inv_period) + 1.0f)) * s->bp;
	if (has)
		*snew = sold + as * ((x - l2) - sold);
	return score;
}

void seasonal_kernel_fixed_scalar(const struct seasonal *s, size_t off, size_t cnt, const float *x,
				  float *score, float *srow)
{
	float snew, e;
	size_t i;

	for (i = 0; i < cnt; i++) {
		score[i] = seasonal_step_scalar(s, off + i, x[i], srow[off + i], true, &snew, &e);
		srow[off + i] = snew;
	}
}

void seasonal_kernel_detect_scalar(const struct seasonal *s, size_t off, size_t cnt, const float *x,
				   float *score, uint32_t tr, uint32_t th)
{
	float snew, e, p, sold, age;
	size_t i, g, lane;
	float *sr, *hb;
	int32_t slot;
	bool valid, started;

	for (i = 0; i < cnt; i++) {
		g = off + i;
		lane = g % SIMD_LANES;
		sr = s->sring + g / SIMD_LANES * s->rlen * SIMD_LANES;
		hb = s->hist + g / SIMD_LANES * s->hlen * SIMD_LANES;
		p = s->per[g];
		slot = (int32_t)tr - (int32_t)statdet_fmax(p, 1.0f);
		if (slot < 0)
			slot += (int32_t)s->rlen;
		sold = p > 0.0f ? sr[(size_t)slot * SIMD_LANES + lane] : 0.0f;
		valid = statdet_valid(x[i]);
		started = valid || s->core.cnt[g] > 0.0f;
		age = s->age[g];
		score[i] = seasonal_step_scalar(s, g, x[i], sold, p > 0.0f, &snew, &e);
		hb[th * SIMD_LANES + lane] = valid ? x[i] : started ? e : 0.0f;
		sr[tr * SIMD_LANES + lane] = snew;
		s->age[g] = started ? statdet_fmin(age + 1.0f, SEASONAL_AGE_MAX) : 0.0f;
	}
}

void seasonal_acf_scalar(const float *hb, uint32_t hlen, uint32_t start, uint32_t nlag, float *tmp,
			 float *acf)
{
	size_t pad = nlag - 1, lane, t, k;
	float sum, mu, acc;
	float *c = tmp + pad * SIMD_LANES;

	for (lane = 0; lane < SIMD_LANES; lane++) {
		sum = 0.0f;
		for (t = start; t < hlen; t++)
			sum += hb[t * SIMD_LANES + lane];
		for (t = 0; t < start; t++)
			sum += hb[t * SIMD_LANES + lane];
		mu = sum / (float)hlen;
		for (t = 0; t < pad; t++)
			tmp[t * SIMD_LANES + lane] = 0.0f;
		for (t = 0; t < hlen; t++)
			c[t * SIMD_LANES + lane] = hb[(start + t) % hlen * SIMD_LANES + lane] - mu;
		for (k = 0; k < nlag; k++) {
			acc = 0.0f;
			for (t = 0; t < hlen; t++)
				acc += c[t * SIMD_LANES + lane] *
				       c[((ptrdiff_t)t - (ptrdiff_t)k) * SIMD_LANES + lane];
			acf[k * SIMD_LANES + lane] = acc;
		}
	}
}

#if defined(__x86_64__) || defined(__i386__)
#define SEASONAL_PICK(isa, name) \
	((isa) == SIMD_AVX512 ? name##_avx512 : (isa) == SIMD_AVX2 ? name##_avx2 : name##_scalar)
#else
#define SEASONAL_PICK(isa, name) name##_scalar
#endif

/* The bucket of the fixed-period profile at tick t. */
static uint32_t seasonal_bucket(const struct seasonal *s, uint64_t t)
{
	return (uint32_t)(t % s->period * s->buckets / s->period);
}

/* Series i's seasonal value for tick t when detecting (0 without a period). */
static float seasonal_ring_at(const struct seasonal *s, size_t i, uint64_t t)
{
	uint32_t p = (uint32_t)s->per[i], slot;

	if (!p)
		return 0.0f;
	slot = (uint32_t)((t % s->rlen + s->rlen - p) % s->rlen);
	return s->sring[(i / SIMD_LANES * s->rlen + slot) * SIMD_LANES + i % SIMD_LANES];
}

/*
 * The best period of one lane from its block's autocorrelation sums, per
 * seasonal.h: a local maximum in [2, max_period], >= SEASONAL_RHO_MIN and at
 * least SEASONAL_PROMINENCE above the lowest value at shorter lags; 0 if
 * none. *rho_cur gets the autocorrelation at lag cur (if cur > 0).
 */
static uint32_t seasonal_pick(const struct seasonal *s, size_t lane, uint32_t cur, float *rho_cur)
{
	const float *acf = s->acfbuf;
	float r0 = acf[lane], rk, lo, best_v = SEASONAL_RHO_MIN;
	uint32_t k, best = 0;

	*rho_cur = -1.0f;
	if (!(r0 > 0.0f))
		return 0;
#define SEASONAL_RHO(k) (acf[(size_t)(k)*SIMD_LANES + lane] / r0)
	if (cur)
		*rho_cur = SEASONAL_RHO(cur);
	lo = SEASONAL_RHO(1);
	for (k = 2; k <= s->max_period; k++) {
		rk = SEASONAL_RHO(k);
		if (rk > SEASONAL_RHO(k - 1) && rk >= SEASONAL_RHO(k + 1) &&
		    rk - lo >= SEASONAL_PROMINENCE && rk > best_v) {
			best = k;
			best_v = rk;
		}
		lo = statdet_fmin(lo, rk);
	}
#undef SEASONAL_RHO
	return best;
}

/*
 * Fold lane's history (ticks t - hlen + 1 .. t) by period p, detrended: each
 * sample minus the mean of the p samples centred on it (the moving average
 * over one period removes the season exactly and keeps level shifts and
 * trends, which would otherwise swamp the comparison). s->psum gets the
 * per-phase sums of the detrended history, s->psum + max_period the counts.
 * Returns the between-phase sum of squares, the variance a profile of
 * period p explains: a period wrong by one sample smears the phases over the
 * ~4 periods of history, so this separates p from p +- 1 far better than the
 * autocorrelation does.
 */
static float seasonal_fold(const struct seasonal *s, size_t blk, size_t lane, uint32_t p,
			   uint64_t t)
{
	const float *hb = s->hist + blk * s->hlen * SIMD_LANES + lane;
	float *sum = s->psum, *cnt = s->psum + s->max_period, ss = 0.0f, v;
	double *pre = s->prefix, inv = 1.0 / p;
	uint64_t t0 = t + 1 - s->hlen;
	uint32_t k, q, j, j0 = (uint32_t)(t0 % s->hlen), lo;

	/* j walks the ring from the oldest slot, q the phases: no division in
	 * the loops (this runs up to 7 times per detected series). */
	pre[0] = 0.0;
	for (k = 0, j = j0; k < s->hlen; k++, j = j + 1 == s->hlen ? 0 : j + 1)
		pre[k + 1] = pre[k] + hb[(size_t)j * SIMD_LANES];
	for (q = 0; q < p; q++)
		sum[q] = cnt[q] = 0.0f;
	q = (uint32_t)(t0 % p);
	for (k = 0, j = j0; k < s->hlen; k++, j = j + 1 == s->hlen ? 0 : j + 1) {
		lo = k < p / 2 ? 0 : k - p / 2;
		if (lo > s->hlen - p)
			lo = s->hlen - p;
		v = hb[(size_t)j * SIMD_LANES] - (float)((pre[lo + p] - pre[lo]) * inv);
		sum[q] += v;
		cnt[q] += 1.0f;
		q = q + 1 == p ? 0 : q + 1;
	}
	for (q = 0; q < p; q++)
		ss += sum[q] * sum[q] / cnt[q];
	return ss;
}

/* The best of p - 2 .. p + 2 (within [2, max_period]) by seasonal_fold(). */
static uint32_t seasonal_refine(const struct seasonal *s, size_t blk, size_t lane, uint32_t p,
				uint64_t t, float *fold)
{
	uint32_t q, best = p;
	float f;

	*fold = seasonal_fold(s, blk, lane, p, t);
	for (q = p > 4 ? p - 2 : 2; q <= p + 2 && q <= s->max_period; q++) {
		if (q == p)
			continue;
		f = seasonal_fold(s, blk, lane, q, t);
		if (f > *fold) {
			*fold = f;
			best = q;
		}
	}
	return best;
}

/*
 * Seed lane's seasonal ring for period p at tick t: the value for the phase
 * of each of the last p ticks is the detrended history's mean at that phase
 * (seasonal_fold()), so the profile is right from the first tick after.
 */
static void seasonal_seed(struct seasonal *s, size_t blk, size_t lane, uint32_t p, uint64_t t)
{
	float *sr = s->sring + blk * s->rlen * SIMD_LANES;
	const float *sum = s->psum, *cnt = s->psum + s->max_period;
	uint64_t tt;
	uint32_t q;

	seasonal_fold(s, blk, lane, p, t);
	for (tt = t + 1 - p; tt <= t; tt++) {
		q = (uint32_t)(tt % p);
		sr[tt % s->rlen * SIMD_LANES + lane] = sum[q] / cnt[q];
	}
}

/*
 * Re-detect the periods of block blk's series that have a full history: the
 * autocorrelation's best peak, refined to +-2 by folding. A current period
 * is kept while the autocorrelation still supports it and the new one does
 * not explain clearly more (SEASONAL_SWITCH), and a change must be proposed
 * by two detections in a row.
 */
static void seasonal_detect_block(struct seasonal *s, size_t blk, uint64_t t)
{
	float rho_cur, fold_best = 0.0f, fold_cur;
	uint32_t cur, best;
	size_t lane, g;
	bool any = false;

	for (lane = 0; lane < SIMD_LANES; lane++)
		any |= s->age[blk * SIMD_LANES + lane] >= (float)s->hlen;
	if (!any)
		return;
	s->acf(s->hist + blk * s->hlen * SIMD_LANES, s->hlen, (uint32_t)((t + 1) % s->hlen),
	       s->nlag, s->tmp, s->acfbuf);
	for (lane = 0; lane < SIMD_LANES; lane++) {
		g = blk * SIMD_LANES + lane;
		if (s->age[g] < (float)s->hlen)
			continue;
		cur = (uint32_t)s->per[g];
		best = seasonal_pick(s, lane, cur, &rho_cur);
		if (best && best != cur) /* the common case, a stable period, costs no fold */
			best = seasonal_refine(s, blk, lane, best, t, &fold_best);
		if (best != cur && cur && rho_cur >= SEASONAL_RHO_KEEP) {
			if (!best) {
				best = cur;
			} else {
				fold_cur = seasonal_fold(s, blk, lane, cur, t);
				if (fold_best <= SEASONAL_SWITCH * fold_cur)
					best = cur;
			}
		}
		/* A change of a found period must be seen twice in a row: a
		 * level shift near the end of the history skews one detection. */
		if (best != cur && cur && (uint32_t)s->cand[g] != best) {
			s->cand[g] = (float)best;
			continue;
		}
		s->cand[g] = (float)best;
		if (best == cur)
			continue;
		s->per[g] = (float)best;
		if (best)
			seasonal_seed(s, blk, lane, best, t);
	}
}

/* After tick t: the blocks whose turn it is, every max_period ticks each. */
static void seasonal_detect(struct seasonal *s, uint64_t t)
{
	uint32_t mp = s->max_period;
	size_t blk = (mp - t % mp) % mp;

	for (; blk < s->nblk; blk += mp)
		seasonal_detect_block(s, blk, t);
}

static int seasonal_alloc(struct seasonal *s)
{
	size_t rows = STATDET_CORE_ROWS + 3, floats, bytes;

	if (s->period)
		rows += s->buckets;
	else
		rows += 3 + (size_t)s->hlen + s->rlen;
	if (__builtin_mul_overflow(rows, s->npad, &floats) ||
	    __builtin_mul_overflow(floats, sizeof(float), &bytes))
		return -ENOMEM;
	s->mem = aligned_alloc(SIMD_ALIGN, bytes);
	if (!s->mem)
		return -ENOMEM;
	memset(s->mem, 0, bytes);
	statdet_core_init(&s->core, s->mem, s->npad);
	s->level = s->mem + STATDET_CORE_ROWS * s->npad;
	s->qs = s->level + s->npad;
	s->ql = s->qs + s->npad;
	if (s->period) {
		s->prof = s->ql + s->npad;
		return 0;
	}
	s->per = s->ql + s->npad;
	s->age = s->per + s->npad;
	s->cand = s->age + s->npad;
	s->hist = s->cand + s->npad;
	s->sring = s->hist + s->npad * s->hlen;
	s->tmp = aligned_alloc(SIMD_ALIGN, (s->nlag - 1 + s->hlen) * SIMD_LANES * sizeof(float));
	s->acfbuf = aligned_alloc(SIMD_ALIGN, s->nlag * SIMD_LANES * sizeof(float));
	s->psum = malloc(2 * s->max_period * sizeof(float));
	s->prefix = malloc((s->hlen + 1) * sizeof(double));
	if (!s->tmp || !s->acfbuf || !s->psum || !s->prefix)
		return -ENOMEM;
	return 0;
}

struct seasonal *seasonal__new(size_t n, const struct seasonal_params *p)
{
	struct seasonal_params d = {
		.isa = SIMD_AUTO,
	};
	struct seasonal *s = NULL;
	uint32_t wp;
	int isa, err = -EINVAL;

	if (p)
		d = *p;
	wp = d.warmup_periods ? d.warmup_periods : SEASONAL_DEFAULT_WARMUP_PERIODS;
	if (!d.max_period)
		d.max_period = SEASONAL_DEFAULT_MAX_PERIOD;
	if (!d.buckets && d.period)
		d.buckets = d.period < SEASONAL_DEFAULT_BUCKETS ? d.period :
								  SEASONAL_DEFAULT_BUCKETS;
	if (n == 0 || n > SIZE_MAX / 2 || d.period == 1 || (d.period && d.buckets > d.period) ||
	    d.max_period < 2 || d.max_period > SEASONAL_MAX_PERIOD_LIMIT)
		goto fail;
	isa = simd_isa_resolve(d.isa);
	if (isa < 0) {
		err = isa;
		goto fail;
	}

	err = -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->n = n;
	s->npad = (n + SIMD_LANES - 1) & ~(size_t)(SIMD_LANES - 1);
	s->nblk = s->npad / SIMD_LANES;
	s->period = d.period;
	s->isa = isa;
	s->alpha = STATDET_DEFAULT_ALPHA;
	s->a_gate = SEASONAL_GATE_A;
	if (d.period) {
		s->buckets = d.buckets;
		s->a_level = statdet_fmin(SEASONAL_LEVEL_A, (float)(2.0 * d.buckets / d.period));
		s->a_season = SEASONAL_SEASON_A;
		s->bp = (float)d.buckets / (float)d.period;
		s->inv_period = 1.0f / (float)d.period;
		s->a_init = 1.0f;
		s->warmup = statdet_fmin((float)((double)wp * d.period), STATDET_CNT_MAX);
	} else {
		s->max_period = d.max_period;
		s->hlen = 4 * d.max_period;
		s->rlen = d.max_period;
		s->nlag = d.max_period + 2;
		s->a_level = SEASONAL_LEVEL_A;
		s->a_season = SEASONAL_SEASON_A;
		s->bp = 1.0f;
		s->inv_period = 0.0f;
		s->a_init = 0.0f;
		s->warmup = statdet_fmin((float)((double)wp * d.max_period), STATDET_CNT_MAX);
	}
	s->kernel_fixed = SEASONAL_PICK(isa, seasonal_kernel_fixed);
	s->kernel_detect = SEASONAL_PICK(isa, seasonal_kernel_detect);
	s->acf = SEASONAL_PICK(isa, seasonal_acf);
	err = seasonal_alloc(s);
	if (err)
		goto fail;
	return s;

fail:
	seasonal__free(s);
	errno = -err;
	return NULL;
}

void seasonal__free(struct seasonal *s)
{
	if (!s)
		return;
	free(s->prefix);
	free(s->psum);
	free(s->acfbuf);
	free(s->tmp);
	free(s->mem);
	free(s);
}

void seasonal__reset(struct seasonal *s, size_t i)
{
	size_t k, blk = i / SIMD_LANES, lane = i % SIMD_LANES;

	if (i >= s->n)
		return;
	statdet_core_reset(&s->core, i);
	s->level[i] = s->qs[i] = s->ql[i] = 0.0f;
	if (s->period) {
		for (k = 0; k < s->buckets; k++)
			s->prof[k * s->npad + i] = 0.0f;
		return;
	}
	s->per[i] = s->age[i] = s->cand[i] = 0.0f;
	for (k = 0; k < s->hlen; k++)
		s->hist[(blk * s->hlen + k) * SIMD_LANES + lane] = 0.0f;
	for (k = 0; k < s->rlen; k++)
		s->sring[(blk * s->rlen + k) * SIMD_LANES + lane] = 0.0f;
}

static void seasonal_run(struct seasonal *s, size_t off, size_t cnt, const float *x, float *score,
			 uint64_t t)
{
	if (s->period)
		s->kernel_fixed(s, off, cnt, x, score,
				s->prof + (size_t)seasonal_bucket(s, t) * s->npad);
	else
		s->kernel_detect(s, off, cnt, x, score, (uint32_t)(t % s->rlen),
				 (uint32_t)(t % s->hlen));
}

void seasonal__update(struct seasonal *s, const float *x, float *score)
{
	float xt[SIMD_LANES] __attribute__((aligned(SIMD_ALIGN)));
	float st[SIMD_LANES] __attribute__((aligned(SIMD_ALIGN)));
	size_t body = s->n & ~(size_t)(SIMD_LANES - 1), i;
	uint64_t t = s->tick;

	if (body)
		seasonal_run(s, 0, body, x, score, t);
	if (body < s->n) {
		/* Padding lanes are NaN: no sample, their state stays zero. */
		for (i = 0; i < SIMD_LANES; i++)
			xt[i] = body + i < s->n ? x[body + i] : NAN;
		seasonal_run(s, body, SIMD_LANES, xt, st, t);
		memcpy(score + body, st, (s->n - body) * sizeof(*score));
	}
	if (!s->period)
		seasonal_detect(s, t);
	s->tick = t + 1;
}

void seasonal__expected(const struct seasonal *s, size_t i, float *center, float *spread)
{
	float sv, e = 0.0f, sp = 0.0f, med = 0.0f;
	bool has;

	if (i < s->n) {
		if (s->period) {
			sv = s->prof[(size_t)seasonal_bucket(s, s->tick) * s->npad + i];
			has = true;
		} else {
			sv = seasonal_ring_at(s, i, s->tick);
			has = s->per[i] > 0.0f;
		}
		e = has && s->qs[i] <= s->ql[i] ? s->level[i] + sv : s->level[i];
		med = s->core.med[i];
		sp = statdet_core_spread(&s->core, i, e);
	}
	if (center)
		*center = e + med;
	if (spread)
		*spread = sp;
}

uint32_t seasonal__period(const struct seasonal *s, size_t i)
{
	if (s->period)
		return s->period;
	return i < s->n ? (uint32_t)s->per[i] : 0;
}
