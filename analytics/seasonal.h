/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seasonal: streaming seasonal decomposition of n series at once (structure
 * of arrays), scoring the residual robustly. Catches what statdet cannot: a
 * value that is normal for the series but not for this point of its season
 * (a daily peak at night, a periodic job that skipped or flipped phase).
 *
 * Model per series, Holt-Winters additive without trend, updated by EWMA:
 *
 *   expected  e = L + S[phase]     (L: level, S: seasonal profile)
 *   residual  r = x - e, scored by the statdet core (statdet.h) on its
 *             robust z alone: |r - median(r)| / spread(r), the spread
 *             floored by half the residual's EWMA sd and 0.1 % of |e|, same
 *             score mapping; the residual's median and MAD adapt more
 *             slowly than statdet's (SEASONAL_RUN_MAX, SEASONAL_RUN_MAX_MAD)
 *             so a break of the season stays visible for part of a period
 *   learn     L += a_level * clip(x - S[phase] - L, +-3 spread)  (Huber:
 *             an outlier moves the level little; a real shift wins within
 *             a few periods)
 *             S[phase] += a_season * (x - L - S[phase])
 *
 * A series with no seasonality is not penalised: the detector also tracks
 * the EWMA of the squared residual with and without S and uses S only while
 * it lowers it (e = L otherwise, a level-only residual). The same switch
 * takes over when the season breaks (a phase flip) until S has relearnt it.
 *
 * Two modes:
 *
 *   period > 0  every series has this period (samples). The profile has
 *               `buckets` slots (default min(period, 96)); the phase is the
 *               detector's clock (the number of __update calls) modulo the
 *               period, shared by all series, so a bucket is one contiguous
 *               row. a_level = min(0.05, 2 * buckets / period) per sample;
 *               the profile is the running mean of the first periods, then
 *               an EWMA with a_season = 0.1 per period. Memory: (10 +
 *               buckets) floats per series.
 *   period = 0  detected per series from a history of the last
 *               4 * max_period samples (default max_period 128): the best
 *               lag in [2, max_period] that is a local maximum of the
 *               autocorrelation, at least SEASONAL_RHO_MIN and rising at
 *               least SEASONAL_PROMINENCE above the lowest autocorrelation
 *               at a shorter lag (this rejects trends and random walks, whose
 *               autocorrelation decays without a peak), then refined to +-2
 *               samples by folding the detrended history (the period whose
 *               phase means explain the most variance). Series are
 *               re-detected in blocks of 16, each block every max_period
 *               samples, staggered so that every update does the same work:
 *               amortised ~4 * max_period multiply-adds per sample for the
 *               autocorrelation (vectorised across the 16 series) plus
 *               ~60 scalar operations for the folds. A new period
 *               seeds the profile from the history's phase means. A found
 *               period is kept while the autocorrelation still supports it
 *               (>= SEASONAL_RHO_KEEP) unless another explains 2 % more, and
 *               a change needs two detections in a row (a level shift near
 *               the end of the history skews one). Until a period is found (at
 *               the earliest after 4 * max_period samples) the series is
 *               scored level-only. Memory: (5 * max_period + 13) floats per
 *               series: 2.6 KB at the default, so for a million series
 *               configure the period instead.
 *
 * Warm-up: the first warmup_periods * period (max_period when detecting)
 * valid samples of a series score 0. Missing samples (NaN, +-Inf, beyond
 * +-STATDET_XMAX) score 0 and leave the learnt state unchanged, but the
 * clock still advances (seasons are wall-clock), and when detecting the
 * history records the expected value in their place.
 *
 * The kernel (scalar, AVX2, AVX-512; simd.h) is fixed at __new time and all
 * three give bit-identical scores and periods. Not thread safe.
 *
 *   seasonal__new()     n series (n > 0), params may be NULL (detect,
 *                       defaults). NULL with errno EINVAL (n == 0,
 *                       period 1, buckets > period, max_period outside
 *                       [2, SEASONAL_MAX_PERIOD_LIMIT], bad isa), ENOTSUP
 *                       (isa above simd_isa_max()), ENOMEM.
 *   seasonal__free()    NULL-safe.
 *   seasonal__reset()   forget series i (slot reuse).
 *   seasonal__update()  x[n] -> score[n], one clock tick.
 *   seasonal__expected() the value expected for series i at the next tick
 *                       (e plus the residuals' median) and the residual's
 *                       robust spread.
 *   seasonal__period()  series i's period in samples: the configured one, or
 *                       the detected one (0 while none is found).
 */
#ifndef NOVAMON_ANALYTICS_SEASONAL_H
#define NOVAMON_ANALYTICS_SEASONAL_H

#include <stddef.h>
#include <stdint.h>

#define SEASONAL_DEFAULT_BUCKETS 96
#define SEASONAL_DEFAULT_MAX_PERIOD 128
#define SEASONAL_MAX_PERIOD_LIMIT 4096
#define SEASONAL_DEFAULT_WARMUP_PERIODS 2
#define SEASONAL_RHO_MIN 0.3f
#define SEASONAL_RHO_KEEP 0.2f
#define SEASONAL_PROMINENCE 0.2f

struct seasonal_params {
	uint32_t period; /* samples per season (e.g. 86400 at 1 Hz); 0: detect per series */
	uint32_t buckets; /* profile slots per period; 0: default (min(period, 96)) */
	uint32_t max_period; /* detection: largest period tried; 0: default */
	uint32_t warmup_periods; /* 0: default 2 */
	int isa; /* SIMD_AUTO or an enum simd_isa; note 0 is SIMD_SCALAR */
};

struct seasonal;

struct seasonal *seasonal__new(size_t n, const struct seasonal_params *p);
void seasonal__free(struct seasonal *s);
void seasonal__reset(struct seasonal *s, size_t i);
void seasonal__update(struct seasonal *s, const float *x, float *score);
void seasonal__expected(const struct seasonal *s, size_t i, float *center, float *spread);
uint32_t seasonal__period(const struct seasonal *s, size_t i);

#endif /* NOVAMON_ANALYTICS_SEASONAL_H */
