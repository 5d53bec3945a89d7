/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statdet_impl: internal to analytics/. The structure-of-arrays state of the
 * statistical detector and its per-sample step (the "core", which seasonal
 * reuses on its residuals), once per ISA: scalar, then AVX2 (#ifdef
 * __AVX2__) and AVX-512 (#ifdef __AVX512F__), compiled in whichever of
 * statdet*.c / seasonal*.c includes this with its -m flags.
 *
 * The three versions must compute the same expressions in the same order
 * (statdet.h has the formulas): min(a, b) is `a < b ? a : b` and max(a, b)
 * `a > b ? a : b` in C, which is what MINPS/MAXPS(a, b) do; no FMA (build
 * with -ffp-contract=off); no approximate reciprocals. Then every path
 * rounds identically and gives bit-identical state and scores.
 */
#ifndef NOVAMON_ANALYTICS_STATDET_IMPL_H
#define NOVAMON_ANALYTICS_STATDET_IMPL_H

#include <math.h>
#include <stddef.h>

#include "simd.h"
#include "statdet.h"

/* The core's rows: each npad floats (npad = n rounded up to SIMD_LANES),
 * SIMD_ALIGN-aligned, so the lanes of series off..off+15 are one vector. */
struct statdet_core {
	float *cnt; /* valid samples seen, saturating at STATDET_CNT_MAX */
	float *med; /* streaming median */
	float *mad; /* streaming median absolute deviation from med */
	float *rmed; /* signed run of median steps: +k up k times, -k down */
	float *rmad; /* the same for mad */
	float *mean; /* EWMA mean */
	float *var; /* EWMA variance */
};

#define STATDET_CORE_ROWS 7

/* How a user of the core tunes it (constant per detector). */
struct statdet_core_cfg {
	float alpha; /* EWMA weight */
	float warm; /* samples before non-zero scores */
	float rmax_med; /* run cap of the median's steps */
	float rmax_mad; /* run cap of the MAD's steps */
	int ewma_z; /* z = sqrt(z_rob * z_ewma) (statdet), else z_rob alone */
};

/* Point the core's rows into mem (STATDET_CORE_ROWS * npad floats). */
static inline void statdet_core_init(struct statdet_core *c, float *mem, size_t npad)
{
	c->cnt = mem;
	c->med = mem + npad;
	c->mad = mem + 2 * npad;
	c->rmed = mem + 3 * npad;
	c->rmad = mem + 4 * npad;
	c->mean = mem + 5 * npad;
	c->var = mem + 6 * npad;
}

static inline void statdet_core_reset(const struct statdet_core *c, size_t i)
{
	c->cnt[i] = c->med[i] = c->mad[i] = 0.0f;
	c->rmed[i] = c->rmad[i] = c->mean[i] = c->var[i] = 0.0f;
}

/* The detector: the core over npad series plus what __new fixed. */
struct statdet {
	size_t n; /* series */
	size_t npad; /* n rounded up to SIMD_LANES */
	float alpha; /* EWMA weight */
	float warmup; /* samples before non-zero scores */
	enum simd_isa isa;
	/* Update series off..off+cnt-1 (off, cnt multiples of SIMD_LANES) with
	 * x[0..cnt-1], scores to score[0..cnt-1]. */
	void (*kernel)(const struct statdet *d, size_t off, size_t cnt, const float *x,
		       float *score);
	struct statdet_core core;
	float *mem; /* the rows, one allocation */
};

static inline struct statdet_core_cfg statdet_cfg(const struct statdet *d)
{
	return (struct statdet_core_cfg){
		.alpha = d->alpha,
		.warm = d->warmup,
		.rmax_med = STATDET_RUN_MAX,
		.rmax_mad = STATDET_RUN_MAX_MAD,
		.ewma_z = 1,
	};
}

void statdet_kernel_scalar(const struct statdet *d, size_t off, size_t cnt, const float *x,
			   float *score);
void statdet_kernel_avx2(const struct statdet *d, size_t off, size_t cnt, const float *x,
			 float *score);
void statdet_kernel_avx512(const struct statdet *d, size_t off, size_t cnt, const float *x,
			   float *score);

/* A sample, not a gap: finite and within +-STATDET_XMAX (false for NaN). */
static inline int statdet_valid(float x)
{
	return fabsf(x) <= STATDET_XMAX;
}

static inline float statdet_fmin(float a, float b)
{
	return a < b ? a : b;
}

static inline float statdet_fmax(float a, float b)
{
	return a > b ? a : b;
}

/* The robust spread of series i given the level its floor is relative to. */
static inline float statdet_core_spread(const struct statdet_core *c, size_t i, float lvl)
{
	float fl = statdet_fmax(STATDET_FLOOR_REL * fabsf(lvl), STATDET_FLOOR_ABS);
	float se = sqrtf(c->var[i]);

	return statdet_fmax(statdet_fmax(STATDET_K_MAD * c->mad[i], STATDET_K_EWMA * se), fl);
}

/*
 * Score x for series i against its state, then learn x: the scalar
 * reference. lvl is the level the spread floor is relative to (statdet: the
 * median; seasonal: the expected value). x must be a valid sample (the
 * caller tests statdet_valid()). Returns the score.
 */
static inline float statdet_core_scalar(const struct statdet_core *c, size_t i, float x, float lvl,
					const struct statdet_core_cfg *cfg, float *spread)
{
	const float alpha = cfg->alpha, warm = cfg->warm;
	float cnt = c->cnt[i], med = c->med[i], mad = c->mad[i], rm = c->rmed[i];
	float rd = c->rmad[i], mean = c->mean[i], var = c->var[i];
	float dx, ad, dd, se, fl, sp, zr, ze, z, u, score, st, cn, a, d, lim;

	dx = x - med;
	ad = fabsf(dx);
	se = sqrtf(var);
	fl = statdet_fmax(STATDET_FLOOR_REL * fabsf(lvl), STATDET_FLOOR_ABS);
	sp = statdet_fmax(statdet_fmax(STATDET_K_MAD * mad, STATDET_K_EWMA * se), fl);
	*spread = sp;
	zr = ad / sp;
	ze = fabsf(x - mean) / statdet_fmax(se, fl);
	if (cfg->ewma_z)
		z = sqrtf(statdet_fmin(zr, STATDET_ZCAP) * statdet_fmin(ze, STATDET_ZCAP));
	else
		z = statdet_fmin(zr, STATDET_ZCAP);
	u = statdet_fmax(z - STATDET_Z0, 0.0f) * STATDET_ZW_INV;
	u = u * u;
	u = u * u;
	score = cnt >= warm ? u / (1.0f + u) : 0.0f;

	st = (cnt < warm ? STATDET_ETA_WARMUP : STATDET_ETA) * sp;
	if (dx > 0.0f) {
		rm = statdet_fmin(statdet_fmax(rm, 0.0f) + 1.0f, cfg->rmax_med);
		med = statdet_fmin(med + st * rm, x);
	} else if (dx < 0.0f) {
		rm = statdet_fmax(statdet_fmin(rm, 0.0f) - 1.0f, -cfg->rmax_med);
		med = statdet_fmax(med + st * rm, x);
	}
	dd = ad - mad;
	if (dd > 0.0f) {
		rd = statdet_fmin(statdet_fmax(rd, 0.0f) + 1.0f, cfg->rmax_mad);
		mad = statdet_fmin(mad + st * rd, ad);
	} else if (dd < 0.0f) {
		rd = statdet_fmax(statdet_fmin(rd, 0.0f) - 1.0f, -cfg->rmax_mad);
		mad = statdet_fmax(mad + st * rd, ad);
	}
	cn = statdet_fmin(cnt + 1.0f, STATDET_CNT_MAX);
	a = statdet_fmax(alpha, 1.0f / cn);
	d = x - mean;
	mean = mean + a * d;
	dd = d * d;
	lim = STATDET_K_CLIP * sp;
	if (cnt >= warm)
		dd = statdet_fmin(dd, lim * lim);
	var = (1.0f - a) * (var + a * dd);
	if (cnt == 0.0f) {
		med = x;
		mean = x;
		mad = rm = rd = var = 0.0f;
	}
	c->cnt[i] = cn;
	c->med[i] = med;
	c->mad[i] = mad;
	c->rmed[i] = rm;
	c->rmad[i] = rd;
	c->mean[i] = mean;
	c->var[i] = var;
	return score;
}

#if defined(__AVX2__)
#include <immintrin.h>

/* All-ones in the lanes where x is a sample (statdet_valid()). */
static inline __m256 statdet_valid_avx2(__m256 x)
{
	return _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x),
			     _mm256_set1_ps(STATDET_XMAX), _CMP_LE_OQ);
}

/* statdet_core_scalar() for the 8 series i..i+7 (i a multiple of 8), in the
 * lanes set in valid; the others keep their state and score 0. */
static inline __m256 statdet_core_avx2(const struct statdet_core *c, size_t i, __m256 x, __m256 lvl,
				       const struct statdet_core_cfg *cfg, __m256 valid,
				       __m256 *spread)
{
	const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
	const __m256 one = _mm256_set1_ps(1.0f), zcap = _mm256_set1_ps(STATDET_ZCAP);
	const __m256 alpha = _mm256_set1_ps(cfg->alpha), warm = _mm256_set1_ps(cfg->warm);
	const __m256 rmax = _mm256_set1_ps(cfg->rmax_med), nrmax = _mm256_set1_ps(-cfg->rmax_med);
	const __m256 dmax = _mm256_set1_ps(cfg->rmax_mad), ndmax = _mm256_set1_ps(-cfg->rmax_mad);
	__m256 cnt = _mm256_load_ps(c->cnt + i), med = _mm256_load_ps(c->med + i);
	__m256 mad = _mm256_load_ps(c->mad + i), rm = _mm256_load_ps(c->rmed + i);
	__m256 rd = _mm256_load_ps(c->rmad + i), mean = _mm256_load_ps(c->mean + i);
	__m256 var = _mm256_load_ps(c->var + i);
	__m256 first, dx, ad, dd, se, fl, sp, zr, ze, z, u, score, st, cn, a, d, lim;
	__m256 gt, lt, up, dn, r2, mn, med2, mad2, mean2, var2;

	first = _mm256_cmp_ps(cnt, zero, _CMP_EQ_OQ);

	dx = _mm256_sub_ps(x, med);
	ad = _mm256_andnot_ps(sign, dx);
	se = _mm256_sqrt_ps(var);
	fl = _mm256_max_ps(_mm256_mul_ps(_mm256_set1_ps(STATDET_FLOOR_REL),
					 _mm256_andnot_ps(sign, lvl)),
			   _mm256_set1_ps(STATDET_FLOOR_ABS));
	sp = _mm256_max_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_set1_ps(STATDET_K_MAD), mad),
					 _mm256_mul_ps(_mm256_set1_ps(STATDET_K_EWMA), se)),
			   fl);
	*spread = sp;
	zr = _mm256_div_ps(ad, sp);
	if (cfg->ewma_z) {
		ze = _mm256_div_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(x, mean)),
				   _mm256_max_ps(se, fl));
		z = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_min_ps(zr, zcap), _mm256_min_ps(ze, zcap)));
	} else {
		z = _mm256_min_ps(zr, zcap);
	}
	u = _mm256_mul_ps(_mm256_max_ps(_mm256_sub_ps(z, _mm256_set1_ps(STATDET_Z0)), zero),
			  _mm256_set1_ps(STATDET_ZW_INV));
	u = _mm256_mul_ps(u, u);
	u = _mm256_mul_ps(u, u);
	score = _mm256_div_ps(u, _mm256_add_ps(one, u));
	score = _mm256_and_ps(score, _mm256_and_ps(valid, _mm256_cmp_ps(cnt, warm, _CMP_GE_OQ)));

	st = _mm256_mul_ps(_mm256_blendv_ps(_mm256_set1_ps(STATDET_ETA_WARMUP),
					    _mm256_set1_ps(STATDET_ETA),
					    _mm256_cmp_ps(cnt, warm, _CMP_GE_OQ)),
			   sp);
	gt = _mm256_cmp_ps(dx, zero, _CMP_GT_OQ);
	lt = _mm256_cmp_ps(dx, zero, _CMP_LT_OQ);
	up = _mm256_min_ps(_mm256_add_ps(_mm256_max_ps(rm, zero), one), rmax);
	dn = _mm256_max_ps(_mm256_sub_ps(_mm256_min_ps(rm, zero), one), nrmax);
	r2 = _mm256_blendv_ps(_mm256_blendv_ps(rm, dn, lt), up, gt);
	mn = _mm256_add_ps(med, _mm256_mul_ps(st, r2));
	med2 = _mm256_blendv_ps(_mm256_blendv_ps(med, _mm256_max_ps(mn, x), lt),
				_mm256_min_ps(mn, x), gt);
	rm = r2;

	dd = _mm256_sub_ps(ad, mad);
	gt = _mm256_cmp_ps(dd, zero, _CMP_GT_OQ);
	lt = _mm256_cmp_ps(dd, zero, _CMP_LT_OQ);
	up = _mm256_min_ps(_mm256_add_ps(_mm256_max_ps(rd, zero), one), dmax);
	dn = _mm256_max_ps(_mm256_sub_ps(_mm256_min_ps(rd, zero), one), ndmax);
	r2 = _mm256_blendv_ps(_mm256_blendv_ps(rd, dn, lt), up, gt);
	mn = _mm256_add_ps(mad, _mm256_mul_ps(st, r2));
	mad2 = _mm256_blendv_ps(_mm256_blendv_ps(mad, _mm256_max_ps(mn, ad), lt),
				_mm256_min_ps(mn, ad), gt);
	rd = r2;

	cn = _mm256_min_ps(_mm256_add_ps(cnt, one), _mm256_set1_ps(STATDET_CNT_MAX));
	a = _mm256_max_ps(alpha, _mm256_div_ps(one, cn));
	d = _mm256_sub_ps(x, mean);
	mean2 = _mm256_add_ps(mean, _mm256_mul_ps(a, d));
	dd = _mm256_mul_ps(d, d);
	lim = _mm256_mul_ps(_mm256_set1_ps(STATDET_K_CLIP), sp);
	dd = _mm256_blendv_ps(dd, _mm256_min_ps(dd, _mm256_mul_ps(lim, lim)),
			      _mm256_cmp_ps(cnt, warm, _CMP_GE_OQ));
	var2 = _mm256_mul_ps(_mm256_sub_ps(one, a), _mm256_add_ps(var, _mm256_mul_ps(a, dd)));

	med2 = _mm256_blendv_ps(med2, x, first);
	mean2 = _mm256_blendv_ps(mean2, x, first);
	mad2 = _mm256_andnot_ps(first, mad2);
	rm = _mm256_andnot_ps(first, rm);
	rd = _mm256_andnot_ps(first, rd);
	var2 = _mm256_andnot_ps(first, var2);

	_mm256_store_ps(c->cnt + i, _mm256_blendv_ps(cnt, cn, valid));
	_mm256_store_ps(c->med + i, _mm256_blendv_ps(med, med2, valid));
	_mm256_store_ps(c->mad + i, _mm256_blendv_ps(mad, mad2, valid));
	_mm256_store_ps(c->rmed + i, _mm256_blendv_ps(_mm256_load_ps(c->rmed + i), rm, valid));
	_mm256_store_ps(c->rmad + i, _mm256_blendv_ps(_mm256_load_ps(c->rmad + i), rd, valid));
	_mm256_store_ps(c->mean + i, _mm256_blendv_ps(mean, mean2, valid));
	_mm256_store_ps(c->var + i, _mm256_blendv_ps(var, var2, valid));
	return score;
}
#endif /* __AVX2__ */

#if defined(__AVX512F__)
#include <immintrin.h>

/* The lanes where x is a sample (statdet_valid()). */
static inline __mmask16 statdet_valid_avx512(__m512 x)
{
	return _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(STATDET_XMAX), _CMP_LE_OQ);
}

/* statdet_core_scalar() for the 16 series i..i+15 (i a multiple of 16), in
 * the lanes set in valid; the others keep their state and score 0. */
static inline __m512 statdet_core_avx512(const struct statdet_core *c, size_t i, __m512 x,
					 __m512 lvl, const struct statdet_core_cfg *cfg,
					 __mmask16 valid, __m512 *spread)
{
	const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
	const __m512 zcap = _mm512_set1_ps(STATDET_ZCAP);
	const __m512 alpha = _mm512_set1_ps(cfg->alpha), warm = _mm512_set1_ps(cfg->warm);
	const __m512 rmax = _mm512_set1_ps(cfg->rmax_med), nrmax = _mm512_set1_ps(-cfg->rmax_med);
	const __m512 dmax = _mm512_set1_ps(cfg->rmax_mad), ndmax = _mm512_set1_ps(-cfg->rmax_mad);
	__m512 cnt = _mm512_load_ps(c->cnt + i), med = _mm512_load_ps(c->med + i);
	__m512 mad = _mm512_load_ps(c->mad + i), rm = _mm512_load_ps(c->rmed + i);
	__m512 rd = _mm512_load_ps(c->rmad + i), mean = _mm512_load_ps(c->mean + i);
	__m512 var = _mm512_load_ps(c->var + i);
	__m512 dx, ad, dd, se, fl, sp, zr, ze, z, u, score, st, cn, a, d, r2, mn, lim;
	__m512 med2, mad2, mean2, var2, rm2, rd2;
	__mmask16 first, gt, lt, ok;

	first = _mm512_cmp_ps_mask(cnt, zero, _CMP_EQ_OQ);

	dx = _mm512_sub_ps(x, med);
	ad = _mm512_abs_ps(dx);
	se = _mm512_sqrt_ps(var);
	fl = _mm512_max_ps(_mm512_mul_ps(_mm512_set1_ps(STATDET_FLOOR_REL), _mm512_abs_ps(lvl)),
			   _mm512_set1_ps(STATDET_FLOOR_ABS));
	sp = _mm512_max_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_set1_ps(STATDET_K_MAD), mad),
					 _mm512_mul_ps(_mm512_set1_ps(STATDET_K_EWMA), se)),
			   fl);
	*spread = sp;
	zr = _mm512_div_ps(ad, sp);
	if (cfg->ewma_z) {
		ze = _mm512_div_ps(_mm512_abs_ps(_mm512_sub_ps(x, mean)), _mm512_max_ps(se, fl));
		z = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_min_ps(zr, zcap), _mm512_min_ps(ze, zcap)));
	} else {
		z = _mm512_min_ps(zr, zcap);
	}
	u = _mm512_mul_ps(_mm512_max_ps(_mm512_sub_ps(z, _mm512_set1_ps(STATDET_Z0)), zero),
			  _mm512_set1_ps(STATDET_ZW_INV));
	u = _mm512_mul_ps(u, u);
	u = _mm512_mul_ps(u, u);
	score = _mm512_div_ps(u, _mm512_add_ps(one, u));
	ok = valid & _mm512_cmp_ps_mask(cnt, warm, _CMP_GE_OQ);
	score = _mm512_maskz_mov_ps(ok, score);

	st = _mm512_mul_ps(_mm512_mask_blend_ps(_mm512_cmp_ps_mask(cnt, warm, _CMP_GE_OQ),
						_mm512_set1_ps(STATDET_ETA_WARMUP),
						_mm512_set1_ps(STATDET_ETA)),
			   sp);
	gt = _mm512_cmp_ps_mask(dx, zero, _CMP_GT_OQ);
	lt = _mm512_cmp_ps_mask(dx, zero, _CMP_LT_OQ);
	r2 = _mm512_mask_blend_ps(
		gt,
		_mm512_mask_blend_ps(
			lt, rm, _mm512_max_ps(_mm512_sub_ps(_mm512_min_ps(rm, zero), one), nrmax)),
		_mm512_min_ps(_mm512_add_ps(_mm512_max_ps(rm, zero), one), rmax));
	mn = _mm512_add_ps(med, _mm512_mul_ps(st, r2));
	med2 = _mm512_mask_blend_ps(gt, _mm512_mask_blend_ps(lt, med, _mm512_max_ps(mn, x)),
				    _mm512_min_ps(mn, x));
	rm2 = r2;

	dd = _mm512_sub_ps(ad, mad);
	gt = _mm512_cmp_ps_mask(dd, zero, _CMP_GT_OQ);
	lt = _mm512_cmp_ps_mask(dd, zero, _CMP_LT_OQ);
	r2 = _mm512_mask_blend_ps(
		gt,
		_mm512_mask_blend_ps(
			lt, rd, _mm512_max_ps(_mm512_sub_ps(_mm512_min_ps(rd, zero), one), ndmax)),
		_mm512_min_ps(_mm512_add_ps(_mm512_max_ps(rd, zero), one), dmax));
	mn = _mm512_add_ps(mad, _mm512_mul_ps(st, r2));
	mad2 = _mm512_mask_blend_ps(gt, _mm512_mask_blend_ps(lt, mad, _mm512_max_ps(mn, ad)),
				    _mm512_min_ps(mn, ad));
	rd2 = r2;

	cn = _mm512_min_ps(_mm512_add_ps(cnt, one), _mm512_set1_ps(STATDET_CNT_MAX));
	a = _mm512_max_ps(alpha, _mm512_div_ps(one, cn));
	d = _mm512_sub_ps(x, mean);
	mean2 = _mm512_add_ps(mean, _mm512_mul_ps(a, d));
	dd = _mm512_mul_ps(d, d);
	lim = _mm512_mul_ps(_mm512_set1_ps(STATDET_K_CLIP), sp);
	dd = _mm512_mask_min_ps(dd, _mm512_cmp_ps_mask(cnt, warm, _CMP_GE_OQ), dd,
				_mm512_mul_ps(lim, lim));
	var2 = _mm512_mul_ps(_mm512_sub_ps(one, a), _mm512_add_ps(var, _mm512_mul_ps(a, dd)));

	med2 = _mm512_mask_mov_ps(med2, first, x);
	mean2 = _mm512_mask_mov_ps(mean2, first, x);
	mad2 = _mm512_mask_mov_ps(mad2, first, zero);
	rm2 = _mm512_mask_mov_ps(rm2, first, zero);
	rd2 = _mm512_mask_mov_ps(rd2, first, zero);
	var2 = _mm512_mask_mov_ps(var2, first, zero);

	/* Invalid lanes keep their state: store only the valid ones. */
	_mm512_mask_store_ps(c->cnt + i, valid, cn);
	_mm512_mask_store_ps(c->med + i, valid, med2);
	_mm512_mask_store_ps(c->mad + i, valid, mad2);
	_mm512_mask_store_ps(c->rmed + i, valid, rm2);
	_mm512_mask_store_ps(c->rmad + i, valid, rd2);
	_mm512_mask_store_ps(c->mean + i, valid, mean2);
	_mm512_mask_store_ps(c->var + i, valid, var2);
	return score;
}
#endif /* __AVX512F__ */

#endif /* NOVAMON_ANALYTICS_STATDET_IMPL_H */
