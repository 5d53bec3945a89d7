/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seasonal_avx2: the AVX2 kernels of seasonal (8 series per instruction; a
 * 16-series block of the detection layout is two halves). Build with -mavx2
 * -ffp-contract=off. Each function mirrors its scalar reference in
 * seasonal.c operation for operation.
 */
#include <immintrin.h>

#include "seasonal_impl.h"

/* seasonal_step_scalar() for series i..i+7: sold is 0 in lanes without a
 * period (has clear); lanes not in valid keep their state and score 0. */
static inline __m256 seasonal_step_avx2(const struct seasonal *s, size_t i, __m256 x, __m256 sold,
					__m256 has, __m256 valid, __m256 *snew, __m256 *eout)
{
	const struct statdet_core_cfg cfg = seasonal_cfg(s);
	const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
	__m256 lvl = _mm256_load_ps(s->level + i), qs = _mm256_load_ps(s->qs + i);
	__m256 ql = _mm256_load_ps(s->ql + i), cnt = _mm256_load_ps(s->core.cnt + i);
	__m256 first = _mm256_cmp_ps(cnt, zero, _CMP_EQ_OQ);
	__m256 warm = _mm256_cmp_ps(cnt, _mm256_set1_ps(s->warmup), _CMP_GE_OQ);
	__m256 es = _mm256_add_ps(lvl, sold);
	__m256 use = _mm256_and_ps(has, _mm256_cmp_ps(qs, ql, _CMP_LE_OQ));
	__m256 e = _mm256_blendv_ps(lvl, es, use);
	__m256 rs = _mm256_sub_ps(x, es), rl = _mm256_sub_ps(x, lvl);
	__m256 r = _mm256_blendv_ps(rl, rs, use);
	__m256 score, qs2, ql2, l2, s2, learn, sp, dl, lim, as;

	*eout = e;
	e = _mm256_blendv_ps(e, x, first);
	r = _mm256_andnot_ps(first, r);
	score = statdet_core_avx2(&s->core, i, r, e, &cfg, valid, &sp);

	qs2 = _mm256_add_ps(qs, _mm256_mul_ps(_mm256_set1_ps(s->a_gate),
					      _mm256_sub_ps(_mm256_mul_ps(rs, rs), qs)));
	ql2 = _mm256_add_ps(ql, _mm256_mul_ps(_mm256_set1_ps(s->a_gate),
					      _mm256_sub_ps(_mm256_mul_ps(rl, rl), ql)));
	dl = _mm256_sub_ps(_mm256_sub_ps(x, sold), lvl);
	lim = _mm256_mul_ps(_mm256_set1_ps(SEASONAL_K_LEVEL), sp);
	dl = _mm256_blendv_ps(dl,
			      _mm256_max_ps(_mm256_min_ps(dl, lim),
					    _mm256_xor_ps(lim, _mm256_set1_ps(-0.0f))),
			      warm);
	l2 = _mm256_add_ps(lvl, _mm256_mul_ps(_mm256_set1_ps(s->a_level), dl));
	as = _mm256_div_ps(
		_mm256_set1_ps(s->a_init),
		_mm256_add_ps(_mm256_floor_ps(_mm256_mul_ps(cnt, _mm256_set1_ps(s->inv_period))),
			      one));
	as = _mm256_mul_ps(_mm256_max_ps(_mm256_set1_ps(s->a_season), as), _mm256_set1_ps(s->bp));
	s2 = _mm256_add_ps(sold, _mm256_mul_ps(as, _mm256_sub_ps(_mm256_sub_ps(x, l2), sold)));
	learn = _mm256_and_ps(_mm256_andnot_ps(first, has), valid);
	*snew = _mm256_blendv_ps(sold, s2, learn);
	qs2 = _mm256_andnot_ps(first, qs2);
	ql2 = _mm256_andnot_ps(first, ql2);
	l2 = _mm256_blendv_ps(l2, x, first);
	_mm256_store_ps(s->qs + i, _mm256_blendv_ps(qs, qs2, valid));
	_mm256_store_ps(s->ql + i, _mm256_blendv_ps(ql, ql2, valid));
	_mm256_store_ps(s->level + i, _mm256_blendv_ps(lvl, l2, valid));
	return score;
}

void seasonal_kernel_fixed_avx2(const struct seasonal *s, size_t off, size_t cnt, const float *x,
				float *score, float *srow)
{
	const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
	__m256 xv, snew, e;
	size_t i;

	for (i = 0; i < cnt; i += 8) {
		xv = _mm256_loadu_ps(x + i);
		_mm256_storeu_ps(score + i,
				 seasonal_step_avx2(s, off + i, xv, _mm256_load_ps(srow + off + i),
						    all, statdet_valid_avx2(xv), &snew, &e));
		_mm256_store_ps(srow + off + i, snew);
	}
}

void seasonal_kernel_detect_avx2(const struct seasonal *s, size_t off, size_t cnt, const float *x,
				 float *score, uint32_t tr, uint32_t th)
{
	const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
	const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const __m256i trv = _mm256_set1_epi32((int)tr), rlen = _mm256_set1_epi32((int)s->rlen);
	__m256 xv, p, has, sold, valid, started, snew, e, age;
	__m256i slot, idx;
	size_t i, g, half;
	float *sr, *hb;

	for (i = 0; i < cnt; i += 8) {
		g = off + i;
		half = g % SIMD_LANES;
		sr = s->sring + g / SIMD_LANES * s->rlen * SIMD_LANES;
		hb = s->hist + g / SIMD_LANES * s->hlen * SIMD_LANES;
		p = _mm256_load_ps(s->per + g);
		has = _mm256_cmp_ps(p, zero, _CMP_GT_OQ);
		slot = _mm256_sub_epi32(trv, _mm256_cvttps_epi32(_mm256_max_ps(p, one)));
		slot = _mm256_add_epi32(
			slot,
			_mm256_and_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), slot), rlen));
		idx = _mm256_add_epi32(_mm256_slli_epi32(slot, 4),
				       _mm256_add_epi32(lanes, _mm256_set1_epi32((int)half)));
		sold = _mm256_mask_i32gather_ps(zero, sr, idx, has, 4);
		xv = _mm256_loadu_ps(x + i);
		valid = statdet_valid_avx2(xv);
		started = _mm256_or_ps(valid, _mm256_cmp_ps(_mm256_load_ps(s->core.cnt + g), zero,
							    _CMP_GT_OQ));
		age = _mm256_load_ps(s->age + g);
		_mm256_storeu_ps(score + i,
				 seasonal_step_avx2(s, g, xv, sold, has, valid, &snew, &e));
		_mm256_store_ps(sr + tr * SIMD_LANES + half, snew);
		_mm256_store_ps(hb + th * SIMD_LANES + half,
				_mm256_blendv_ps(_mm256_and_ps(e, started), xv, valid));
		_mm256_store_ps(s->age + g,
				_mm256_and_ps(_mm256_min_ps(_mm256_add_ps(age, one),
							    _mm256_set1_ps(SEASONAL_AGE_MAX)),
					      started));
	}
}

void seasonal_acf_avx2(const float *hb, uint32_t hlen, uint32_t start, uint32_t nlag, float *tmp,
		       float *acf)
{
	const __m256 zero = _mm256_setzero_ps();
	size_t pad = nlag - 1, h, t, k;
	float *c = tmp + pad * SIMD_LANES;
	__m256 sum, mu, v, a0, a1, a2, a3;
	const float *ct;

	for (h = 0; h < SIMD_LANES; h += 8) {
		sum = zero;
		for (t = start; t < hlen; t++)
			sum = _mm256_add_ps(sum, _mm256_load_ps(hb + t * SIMD_LANES + h));
		for (t = 0; t < start; t++)
			sum = _mm256_add_ps(sum, _mm256_load_ps(hb + t * SIMD_LANES + h));
		mu = _mm256_div_ps(sum, _mm256_set1_ps((float)hlen));
		for (t = 0; t < pad; t++)
			_mm256_store_ps(tmp + t * SIMD_LANES + h, zero);
		for (t = 0; t < hlen; t++)
			_mm256_store_ps(
				c + t * SIMD_LANES + h,
				_mm256_sub_ps(
					_mm256_load_ps(hb + (start + t) % hlen * SIMD_LANES + h),
					mu));
		/* Four lags at a time for independent add chains; each lag still
		 * sums its terms in time order, like the scalar reference. */
		for (k = 0; k + 4 <= nlag; k += 4) {
			a0 = a1 = a2 = a3 = zero;
			for (t = 0; t < hlen; t++) {
				ct = c + t * SIMD_LANES + h;
				v = _mm256_load_ps(ct);
				a0 = _mm256_add_ps(
					a0, _mm256_mul_ps(v, _mm256_load_ps(ct - k * SIMD_LANES)));
				a1 = _mm256_add_ps(
					a1, _mm256_mul_ps(
						    v, _mm256_load_ps(ct - (k + 1) * SIMD_LANES)));
				a2 = _mm256_add_ps(
					a2, _mm256_mul_ps(
						    v, _mm256_load_ps(ct - (k + 2) * SIMD_LANES)));
				a3 = _mm256_add_ps(
					a3, _mm256_mul_ps(
						    v, _mm256_load_ps(ct - (k + 3) * SIMD_LANES)));
			}
			_mm256_store_ps(acf + k * SIMD_LANES + h, a0);
			_mm256_store_ps(acf + (k + 1) * SIMD_LANES + h, a1);
			_mm256_store_ps(acf + (k + 2) * SIMD_LANES + h, a2);
			_mm256_store_ps(acf + (k + 3) * SIMD_LANES + h, a3);
		}
		for (; k < nlag; k++) {
			a0 = zero;
			for (t = 0; t < hlen; t++) {
				ct = c + t * SIMD_LANES + h;
				a0 = _mm256_add_ps(
					a0, _mm256_mul_ps(_mm256_load_ps(ct),
							  _mm256_load_ps(ct - k * SIMD_LANES)));
			}
			_mm256_store_ps(acf + k * SIMD_LANES + h, a0);
		}
	}
}
