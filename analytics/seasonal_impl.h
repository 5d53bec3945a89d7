/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seasonal_impl: internal to analytics/. The seasonal detector's state and
 * its kernels' prototypes, shared by seasonal.c (API, detection, scalar
 * reference) and seasonal_avx2.c / seasonal_avx512.c. Same rules as
 * statdet_impl.h: identical operations in identical order in every ISA.
 *
 * Layout. Per-series scalars are rows of npad floats (SoA). The fixed-period
 * profile is `buckets` such rows (one bucket, shared by all series at a given
 * tick, is one contiguous row). When detecting, the history and the seasonal
 * ring are blocked by 16 series (AoSoA: [block][slot][16 lanes]) so that a
 * slot of one block is one AVX-512 vector and a per-series slot is a gather
 * within 1 KB-4 KB of its block:
 *
 *   hist[b][t % hlen][lane]   the last hlen = 4 * max_period samples (the
 *                             expected value for a missing one)
 *   sring[b][t % rlen][lane]  the seasonal value S learnt at tick t
 *                             (rlen = max_period); the value for the phase
 *                             of tick t is the one written at t - period,
 *                             read by a gather, and the new one is written
 *                             at t % rlen, the same slot for every series
 */
#ifndef NOVAMON_ANALYTICS_SEASONAL_IMPL_H
#define NOVAMON_ANALYTICS_SEASONAL_IMPL_H

#include <stdint.h>

#include "seasonal.h"
#include "statdet_impl.h"

#define SEASONAL_LEVEL_A 0.05f /* level EWMA weight per sample (at most) */
#define SEASONAL_SEASON_A 0.1f /* profile EWMA weight per period */
#define SEASONAL_GATE_A 0.02f /* weight of the squared-residual EWMAs */
#define SEASONAL_K_LEVEL 3.0f /* level steps are clipped at this * spread */
#define SEASONAL_RUN_MAX 4.0f /* run cap of the residual median's steps */
#define SEASONAL_RUN_MAX_MAD 1.0f /* ... and of its MAD's: scale adapts over ~a period */
#define SEASONAL_AGE_MAX 1e7f /* the age counter saturates here */
#define SEASONAL_SWITCH 1.02f /* a new period must explain 2 % more to replace one */

struct seasonal {
	size_t n; /* series */
	size_t npad; /* n rounded up to SIMD_LANES */
	size_t nblk; /* npad / SIMD_LANES */
	uint32_t period; /* configured period, 0: detect */
	uint32_t buckets; /* fixed period: profile slots */
	uint32_t max_period; /* detecting: largest lag tried */
	uint32_t hlen; /* detecting: history slots, 4 * max_period */
	uint32_t rlen; /* detecting: seasonal ring slots, max_period */
	uint32_t nlag; /* detecting: autocorrelation lags 0..max_period + 1 */
	float warmup; /* valid samples before non-zero scores */
	float alpha; /* the residual core's EWMA weight */
	float a_level, a_gate; /* per sample */
	float a_season; /* per period */
	float bp; /* buckets / period (fixed), 1 (detecting) */
	float inv_period; /* 1 / period (fixed), 0 (detecting) */
	float a_init; /* 1 (fixed: running mean first), 0 (detecting: profile seeded) */
	uint64_t tick; /* __update calls so far: the clock */
	enum simd_isa isa;
	/* Series off..off+cnt-1 (multiples of SIMD_LANES), x and score relative
	 * to off. Fixed period: srow is the current bucket's row. */
	void (*kernel_fixed)(const struct seasonal *s, size_t off, size_t cnt, const float *x,
			     float *score, float *srow);
	/* Detecting: tr = tick % rlen, th = tick % hlen. */
	void (*kernel_detect)(const struct seasonal *s, size_t off, size_t cnt, const float *x,
			      float *score, uint32_t tr, uint32_t th);
	/* Autocorrelation sums of one block's history (oldest slot `start`):
	 * acf[k][lane] = sum over t of c[t] * c[t - k], c the history minus its
	 * mean in time order, c[t < 0] = 0, for k < nlag; tmp holds
	 * (nlag - 1 + hlen) * 16 floats. */
	void (*acf)(const float *hb, uint32_t hlen, uint32_t start, uint32_t nlag, float *tmp,
		    float *acf);
	struct statdet_core core; /* over the residuals */
	float *level; /* L */
	float *qs; /* EWMA of the squared residual with the profile */
	float *ql; /* ... and without (level only) */
	float *per; /* detecting: period in samples, 0: none */
	float *age; /* detecting: ticks since the first valid sample */
	float *cand; /* detecting: the period the last detection proposed */
	float *prof; /* fixed period: [buckets][npad] */
	float *hist; /* detecting: [nblk][hlen][16] */
	float *sring; /* detecting: [nblk][rlen][16] */
	float *tmp; /* detecting: acf scratch, (nlag - 1 + hlen) * 16 */
	float *acfbuf; /* detecting: nlag * 16 */
	float *psum; /* detecting: 2 * max_period, per-phase sums and counts */
	double *prefix; /* detecting: hlen + 1, prefix sums of one lane's history */
	float *mem; /* all the rows above up to sring, one allocation */
};

static inline struct statdet_core_cfg seasonal_cfg(const struct seasonal *s)
{
	return (struct statdet_core_cfg){
		.alpha = s->alpha,
		.warm = s->warmup,
		.rmax_med = SEASONAL_RUN_MAX,
		.rmax_mad = SEASONAL_RUN_MAX_MAD,
		.ewma_z = 0,
	};
}

#define SEASONAL_KERNELS(isa)                                                                      \
	void seasonal_kernel_fixed_##isa(const struct seasonal *s, size_t off, size_t cnt,         \
					 const float *x, float *score, float *srow);               \
	void seasonal_kernel_detect_##isa(const struct seasonal *s, size_t off, size_t cnt,        \
					  const float *x, float *score, uint32_t tr, uint32_t th); \
	void seasonal_acf_##isa(const float *hb, uint32_t hlen, uint32_t start, uint32_t nlag,     \
				float *tmp, float *acf)

SEASONAL_KERNELS(scalar);
SEASONAL_KERNELS(avx2);
SEASONAL_KERNELS(avx512);

#endif /* NOVAMON_ANALYTICS_SEASONAL_IMPL_H */
