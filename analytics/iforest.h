/* SPDX-License-Identifier: Apache-2.0 */
/*
 * iforest: a streaming isolation forest (Liu, Ting and Zhou, ICDM 2008) over
 * sliding-window features of one series.
 *
 * Features. Each sample x is turned into IFOREST_FEATURES numbers computed
 * from x and the `window` samples before it; all are divided by a scale of
 * the series itself and compressed with asinh(), so the series' unit and
 * magnitude do not matter:
 *
 *   0  deviation of x from the window mean, in window sd
 *   1  first difference x - x[-1], in window sd
 *   2  log of the sd of the window ending at x over its slow (EWMA) average
 *   3  position of x in the window's [min, max] (-1 .. 1 inside the range)
 *   4  level of x against the slow EWMA mean and sd of the series
 *
 * Model. The last 4 * sample_size feature vectors are kept in a ring (the
 * reservoir). Once sample_size vectors are there, and then every
 * rebuild_every samples, the forest is rebuilt from a copy of the ring:
 * `trees` trees, each grown on sample_size vectors drawn without replacement,
 * height limit ceil(log2(sample_size)). Everything is drawn from one
 * xoshiro256** stream seeded with `seed`, so equal seeds and inputs give
 * bit-identical scores. A leaf whose vectors are all equal (a constant
 * series) keeps one of them: a query that differs from it is isolated one
 * level below the leaf instead of sharing the leaf's expected depth, so a
 * spike on a flat line is still found.
 *
 * Score. The standard raw score is s = 2^(-E[h] / c(sample_size)), about 0.5
 * for ordinary points and towards 1 for isolated ones. Where a query lies
 * outside a node's range in the split feature, the share of the path that
 * would have been cut off there, had the query been in the sample, ends at
 * that node (see iforest_raw()), so far-out points score near the top rather
 * than in the extreme leaf. Because where "ordinary" sits depends on the
 * data, s is rescaled against the raw scores of (up to 256 evenly spaced)
 * reservoir vectors computed at each rebuild: with q50 and q999 their median
 * and 99.9th percentile, u = max(0, s - q50) / max(q999 - q50, 0.02) and the
 * score is u^4 / (1 + u^4). A typical point scores ~0, the reservoir's 99.9th
 * percentile 0.5, a point 1.5 (2) times as far above the median 0.84 (0.94).
 * (The 99th percentile alarmed on ~1% of normal samples: 1,017 false alarms
 * on the labelled benchmark, 648 with this one.) On white noise about 1% of
 * the samples score >= 0.5 and a 10 sd spike
 * scores > 0.9. The score is 0 until `warmup` samples have been seen and the
 * first forest is built.
 *
 * Cost: iforest__update() is O(trees * height + window) and allocates nothing;
 * a rebuild (every rebuild_every samples, inside iforest__update) costs about
 * trees * sample_size * height plus the calibration pass. Memory is about
 * trees * sample_size * 40 bytes (330 KiB with the defaults).
 * Not thread safe: one caller per object.
 */
#ifndef NOVAMON_ANALYTICS_IFOREST_H
#define NOVAMON_ANALYTICS_IFOREST_H

#include <stdint.h>

#define IFOREST_FEATURES 5

/* Any field 0: its default. */
struct iforest_params {
	uint32_t window; /* samples behind the feature statistics; default 32, 4..4096 */
	uint32_t trees; /* default 64, 1..1024 */
	uint32_t sample_size; /* vectors per tree; default 128, 16..4096 */
	uint32_t rebuild_every; /* samples between rebuilds; default 2 * sample_size */
	uint32_t warmup; /* samples before non-zero scores; default window + sample_size */
};

struct iforest;

/*
 * Allocates everything the forest will ever need. NULL with errno EINVAL
 * (a parameter out of range) or ENOMEM.
 */
struct iforest *iforest__new(const struct iforest_params *p, uint64_t seed);
void iforest__free(struct iforest *f);

/*
 * Scores x against the current forest (samples before x only), then adds
 * x's feature vector to the reservoir and rebuilds the forest when due.
 * Returns a score in [0, 1]. A NaN (or infinite) x is no sample: 0, state
 * unchanged.
 */
float iforest__update(struct iforest *f, float x);

#endif /* NOVAMON_ANALYTICS_IFOREST_H */
