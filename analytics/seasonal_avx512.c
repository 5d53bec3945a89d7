/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seasonal_avx512: the AVX-512 kernels of seasonal (16 series, one block of
 * the detection layout, per instruction; AVX-512F only). Build with
 * -mavx512f -ffp-contract=off (AVX-512F implies FMA: without the flag GCC
 * fuses mul/add and the paths stop being bit-identical). Each function
 * mirrors its scalar reference in seasonal.c operation for operation.
 */
#include <immintrin.h>

#include "seasonal_impl.h"

/* seasonal_step_scalar() for series i..i+15: sold is 0 in lanes without a
 * period (not in has); lanes not in valid keep their state and score 0. */
static inline __m512 seasonal_step_avx512(const struct seasonal *s, size_t i, __m512 x, __m512 sold,
					  __mmask16 has, __mmask16 valid, __m512 *snew,
					  __m512 *eout)
{
	const struct statdet_core_cfg cfg = seasonal_cfg(s);
	const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
	__m512 lvl = _mm512_load_ps(s->level + i), qs = _mm512_load_ps(s->qs + i);
	__m512 ql = _mm512_load_ps(s->ql + i), cnt = _mm512_load_ps(s->core.cnt + i);
	__mmask16 first = _mm512_cmp_ps_mask(cnt, zero, _CMP_EQ_OQ);
	__mmask16 warm = _mm512_cmp_ps_mask(cnt, _mm512_set1_ps(s->warmup), _CMP_GE_OQ);
	__m512 es = _mm512_add_ps(lvl, sold);
	__mmask16 use = has & _mm512_cmp_ps_mask(qs, ql, _CMP_LE_OQ);
	__m512 e = _mm512_mask_blend_ps(use, lvl, es);
	__m512 rs = _mm512_sub_ps(x, es), rl = _mm512_sub_ps(x, lvl);
	__m512 r = _mm512_mask_blend_ps(use, rl, rs);
	__m512 score, qs2, ql2, l2, s2, sp, dl, lim, as;

	*eout = e;
	e = _mm512_mask_mov_ps(e, first, x);
	r = _mm512_mask_mov_ps(r, first, zero);
	score = statdet_core_avx512(&s->core, i, r, e, &cfg, valid, &sp);

	qs2 = _mm512_add_ps(qs, _mm512_mul_ps(_mm512_set1_ps(s->a_gate),
					      _mm512_sub_ps(_mm512_mul_ps(rs, rs), qs)));
	ql2 = _mm512_add_ps(ql, _mm512_mul_ps(_mm512_set1_ps(s->a_gate),
					      _mm512_sub_ps(_mm512_mul_ps(rl, rl), ql)));
	dl = _mm512_sub_ps(_mm512_sub_ps(x, sold), lvl);
	lim = _mm512_mul_ps(_mm512_set1_ps(SEASONAL_K_LEVEL), sp);
	dl = _mm512_mask_max_ps(dl, warm, _mm512_min_ps(dl, lim), _mm512_sub_ps(zero, lim));
	l2 = _mm512_add_ps(lvl, _mm512_mul_ps(_mm512_set1_ps(s->a_level), dl));
	as = _mm512_div_ps(
		_mm512_set1_ps(s->a_init),
		_mm512_add_ps(_mm512_floor_ps(_mm512_mul_ps(cnt, _mm512_set1_ps(s->inv_period))),
			      one));
	as = _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(s->a_season), as), _mm512_set1_ps(s->bp));
	s2 = _mm512_add_ps(sold, _mm512_mul_ps(as, _mm512_sub_ps(_mm512_sub_ps(x, l2), sold)));
	*snew = _mm512_mask_blend_ps(has & ~first & valid, sold, s2);
	qs2 = _mm512_mask_mov_ps(qs2, first, zero);
	ql2 = _mm512_mask_mov_ps(ql2, first, zero);
	l2 = _mm512_mask_mov_ps(l2, first, x);
	_mm512_mask_store_ps(s->qs + i, valid, qs2);
	_mm512_mask_store_ps(s->ql + i, valid, ql2);
	_mm512_mask_store_ps(s->level + i, valid, l2);
	return score;
}

void seasonal_kernel_fixed_avx512(const struct seasonal *s, size_t off, size_t cnt, const float *x,
				  float *score, float *srow)
{
	__m512 xv, snew, e;
	size_t i;

	for (i = 0; i < cnt; i += 16) {
		xv = _mm512_loadu_ps(x + i);
		_mm512_storeu_ps(score + i, seasonal_step_avx512(
						    s, off + i, xv, _mm512_load_ps(srow + off + i),
						    0xffff, statdet_valid_avx512(xv), &snew, &e));
		_mm512_store_ps(srow + off + i, snew);
	}
}

void seasonal_kernel_detect_avx512(const struct seasonal *s, size_t off, size_t cnt, const float *x,
				   float *score, uint32_t tr, uint32_t th)
{
	const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
	const __m512i lanes =
		_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m512i trv = _mm512_set1_epi32((int)tr), rlen = _mm512_set1_epi32((int)s->rlen);
	__m512 xv, p, sold, snew, e, age;
	__mmask16 has, valid, started;
	__m512i slot, idx;
	size_t i, g;
	float *sr, *hb;

	for (i = 0; i < cnt; i += 16) {
		g = off + i;
		sr = s->sring + g / SIMD_LANES * s->rlen * SIMD_LANES;
		hb = s->hist + g / SIMD_LANES * s->hlen * SIMD_LANES;
		p = _mm512_load_ps(s->per + g);
		has = _mm512_cmp_ps_mask(p, zero, _CMP_GT_OQ);
		slot = _mm512_sub_epi32(trv, _mm512_cvttps_epi32(_mm512_max_ps(p, one)));
		slot = _mm512_mask_add_epi32(
			slot, _mm512_cmplt_epi32_mask(slot, _mm512_setzero_si512()), slot, rlen);
		idx = _mm512_add_epi32(_mm512_slli_epi32(slot, 4), lanes);
		sold = _mm512_mask_i32gather_ps(zero, has, idx, sr, 4);
		xv = _mm512_loadu_ps(x + i);
		valid = statdet_valid_avx512(xv);
		started = valid |
			  _mm512_cmp_ps_mask(_mm512_load_ps(s->core.cnt + g), zero, _CMP_GT_OQ);
		age = _mm512_load_ps(s->age + g);
		_mm512_storeu_ps(score + i,
				 seasonal_step_avx512(s, g, xv, sold, has, valid, &snew, &e));
		_mm512_store_ps(sr + tr * SIMD_LANES, snew);
		_mm512_store_ps(hb + th * SIMD_LANES,
				_mm512_mask_blend_ps(valid, _mm512_maskz_mov_ps(started, e), xv));
		_mm512_store_ps(s->age + g,
				_mm512_maskz_mov_ps(
					started, _mm512_min_ps(_mm512_add_ps(age, one),
							       _mm512_set1_ps(SEASONAL_AGE_MAX))));
	}
}

void seasonal_acf_avx512(const float *hb, uint32_t hlen, uint32_t start, uint32_t nlag, float *tmp,
			 float *acf)
{
	const __m512 zero = _mm512_setzero_ps();
	size_t pad = nlag - 1, t, k;
	float *c = tmp + pad * SIMD_LANES;
	__m512 sum, mu, v, a0, a1, a2, a3;
	const float *ct;

	sum = zero;
	for (t = start; t < hlen; t++)
		sum = _mm512_add_ps(sum, _mm512_load_ps(hb + t * SIMD_LANES));
	for (t = 0; t < start; t++)
		sum = _mm512_add_ps(sum, _mm512_load_ps(hb + t * SIMD_LANES));
	mu = _mm512_div_ps(sum, _mm512_set1_ps((float)hlen));
	for (t = 0; t < pad; t++)
		_mm512_store_ps(tmp + t * SIMD_LANES, zero);
	for (t = 0; t < hlen; t++)
		_mm512_store_ps(c + t * SIMD_LANES,
				_mm512_sub_ps(_mm512_load_ps(hb + (start + t) % hlen * SIMD_LANES),
					      mu));
	/* Four lags at a time for independent add chains; each lag still sums
	 * its terms in time order, like the scalar reference. */
	for (k = 0; k + 4 <= nlag; k += 4) {
		a0 = a1 = a2 = a3 = zero;
		for (t = 0; t < hlen; t++) {
			ct = c + t * SIMD_LANES;
			v = _mm512_load_ps(ct);
			a0 = _mm512_add_ps(a0,
					   _mm512_mul_ps(v, _mm512_load_ps(ct - k * SIMD_LANES)));
			a1 = _mm512_add_ps(
				a1, _mm512_mul_ps(v, _mm512_load_ps(ct - (k + 1) * SIMD_LANES)));
			a2 = _mm512_add_ps(
				a2, _mm512_mul_ps(v, _mm512_load_ps(ct - (k + 2) * SIMD_LANES)));
			a3 = _mm512_add_ps(
				a3, _mm512_mul_ps(v, _mm512_load_ps(ct - (k + 3) * SIMD_LANES)));
		}
		_mm512_store_ps(acf + k * SIMD_LANES, a0);
		_mm512_store_ps(acf + (k + 1) * SIMD_LANES, a1);
		_mm512_store_ps(acf + (k + 2) * SIMD_LANES, a2);
		_mm512_store_ps(acf + (k + 3) * SIMD_LANES, a3);
	}
	for (; k < nlag; k++) {
		a0 = zero;
		for (t = 0; t < hlen; t++) {
			ct = c + t * SIMD_LANES;
			a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_load_ps(ct),
							     _mm512_load_ps(ct - k * SIMD_LANES)));
		}
		_mm512_store_ps(acf + k * SIMD_LANES, a0);
	}
}
