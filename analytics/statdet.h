/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statdet: a robust streaming statistical anomaly detector over n series at
 * once, structure of arrays (one vector instruction updates 8 or 16 series).
 *
 * statdet__update() takes one sample per series (the 1 Hz tick), scores it
 * against the state learnt from the earlier samples only, then learns it.
 * O(1) work and no allocation per sample; nothing looks ahead. Per series:
 *
 *   med, mad   streaming median and median absolute deviation (from med) by
 *              stochastic approximation: each sample moves the estimate
 *              towards it by STATDET_ETA * spread * run, never past the
 *              sample, where run counts consecutive moves in the same
 *              direction (1, 2, ... STATDET_RUN_MAX, STATDET_RUN_MAX_MAD for
 *              the MAD; back to 1 on a change of direction): the step
 *              follows the data's scale and grows while the median lags a
 *              level shift (the frugal-2U idea). A larger step
 *              (STATDET_ETA_WARMUP) during warm-up converges by its end.
 *   mean, var  EWMA mean and variance, weight max(alpha, 1/count) (the exact
 *              running mean/variance for the first 1/alpha samples); after
 *              warm-up the squared deviation fed to var is clipped at
 *              (STATDET_K_CLIP * spread)^2, so one spike cannot blind the
 *              detector to the next.
 *
 * Score of x (pre-update state), with se = sqrt(var):
 *
 *   floor  = max(STATDET_FLOOR_REL * |med|, STATDET_FLOOR_ABS)
 *   spread = max(1.4826 * mad, STATDET_K_EWMA * se, floor)   (robust sigma)
 *   z_rob  = |x - med| / spread
 *   z_ewma = |x - mean| / max(se, floor)
 *   z      = sqrt(z_rob * z_ewma)       (each capped at STATDET_ZCAP)
 *   u      = max(z - 2.5, 0) / 1.5,   score = u^4 / (1 + u^4)
 *
 * so z <= 2.5 scores 0, z = 3.5 0.17, z = 4 0.5, z = 5 0.89, z = 6 0.97:
 * smooth, monotonic, saturating at 1. The geometric mean asks both views to
 * agree: the robust one (not dragged by earlier outliers, slow to accept a
 * new level) and the EWMA one (follows a new level within ~1/alpha samples):
 * with the defaults a sustained 20-sigma level shift scores > 0.9 for about
 * 14 samples and < 0.5 after about 18, i.e. it becomes the new normal. On
 * N(0, 1) noise about 0.03 % of samples score above 0.5; the spread is
 * within +-10 % (one sd) of sigma. The floors keep a
 * stuck series (mad = 0, var -> 0) from turning every tiny change into a 1:
 * a change must exceed ~0.4 % of the level (z = 4 at STATDET_FLOOR_REL) to
 * reach 0.5, and a series that is stuck most of the time but moves now and
 * then gets its robust spread floored by half its EWMA sd.
 *
 * The first `warmup` valid samples of a series score 0. A sample that is NaN,
 * +-Inf or beyond +-STATDET_XMAX (float state would overflow) is no sample:
 * score 0, state unchanged. Scores are in [0, 1], never NaN.
 *
 * The kernel (scalar, AVX2, AVX-512; simd.h) is fixed at __new time and all
 * three give bit-identical scores. Not thread safe: one caller per object.
 *
 *   statdet__new()       n series (n > 0), params may be NULL (defaults).
 *                        NULL with errno EINVAL (n == 0, alpha outside
 *                        [0, 1), bad isa), ENOTSUP (isa above simd_isa_max()),
 *                        ENOMEM.
 *   statdet__free()      NULL-safe.
 *   statdet__reset()     forget series i (its slot is reused); i < n.
 *   statdet__update()    x[n] -> score[n] (may not overlap x).
 *   statdet__expected()  the robust centre (med) and spread of series i.
 */
#ifndef NOVAMON_ANALYTICS_STATDET_H
#define NOVAMON_ANALYTICS_STATDET_H

#include <stddef.h>
#include <stdint.h>

#define STATDET_DEFAULT_ALPHA 0.05f
#define STATDET_DEFAULT_WARMUP 60

/* Tuning shared by statdet and seasonal (same order of operations in every
 * kernel: change them here only). */
#define STATDET_ETA 0.005f /* median/MAD step per unit of spread and run */
#define STATDET_ETA_WARMUP 0.04f /* ... during warm-up, to converge in it */
#define STATDET_RUN_MAX 32.0f /* cap of the median's run multiplier */
#define STATDET_RUN_MAX_MAD 2.0f /* ... and of the MAD's (a stabler scale) */
#define STATDET_K_MAD 1.4826f /* MAD -> sigma for a normal distribution */
#define STATDET_K_EWMA 0.5f /* robust spread >= this * EWMA sd */
#define STATDET_K_CLIP 4.0f /* after warm-up, var learns deviations clipped here * spread */
#define STATDET_FLOOR_REL 1e-3f /* spread >= this * |level| */
#define STATDET_FLOOR_ABS 1e-6f /* spread >= this */
#define STATDET_Z0 2.5f /* z at which the score starts rising */
#define STATDET_ZW_INV (1.0f / 1.5f) /* 1 / width of the rise */
#define STATDET_ZCAP 1e4f /* z is capped here before u^4 */
#define STATDET_XMAX 1e18f /* |x| above this is no sample */
#define STATDET_CNT_MAX 1e7f /* the sample count saturates here */

struct statdet_params {
	float ewma_alpha; /* EWMA mean/variance weight; 0: default */
	uint32_t warmup; /* samples per series before non-zero scores; 0: default */
	int isa; /* SIMD_AUTO or an enum simd_isa (<= simd_isa_max()); 0 is SIMD_SCALAR */
};

struct statdet;

struct statdet *statdet__new(size_t n, const struct statdet_params *p);
void statdet__free(struct statdet *d);
void statdet__reset(struct statdet *d, size_t i);
void statdet__update(struct statdet *d, const float *x, float *score);
void statdet__expected(const struct statdet *d, size_t i, float *center, float *spread);

#endif /* NOVAMON_ANALYTICS_STATDET_H */
