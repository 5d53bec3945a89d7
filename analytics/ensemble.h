/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ensemble: combines the scores of several detectors on one series into one
 * verdict with fewer false alarms than any of them alone, and says why.
 *
 * Per series and detector it learns, from that detector's own past scores on
 * that series (never from the current one):
 *
 *  - an adaptive threshold: thr = max(floor, 1 - (1 - q) * (1 - margin)),
 *    q a streaming `quantile` (p99.5) of the scores, learnt with the
 *    stochastic step q += step * (quantile - [s <= q]). A detector often
 *    high on a series (the series does not fit its model) must go higher
 *    than its usual there to vote; margin works on 1 - q so that the
 *    threshold still separates scores that saturate near 1.
 *  - its vote rate r: how often it votes on this series, a decayed count
 *    r = (votes + prior_votes) / (samples + prior_samples), decay
 *    1 - 1 / rate_window per sample. A vote is worth log2(1 / r) bits of
 *    evidence (at most max_bits): a detector that is noisy on this series
 *    counts less, a quiet one more. That is the per-series reliability.
 *
 * Agreement and persistence. The bits of this sample's voters add up
 * (weighted by how far above the threshold they are: half at the threshold,
 * all at 1), and so do consecutive samples with votes: acc = decay * acc +
 * bits, reset to 0 by a sample without votes. The series is anomalous when
 * acc >= threshold_bits (about one chance in 2^threshold_bits that noise
 * did it), and stays anomalous while some detector still votes (one alarm
 * per episode, not a flicker). So a reliable detector far above its usual
 * suffices alone, an unreliable one needs others to agree or its deviation
 * to persist, and with decay < 1 a detector that cannot reach
 * threshold_bits * (1 - decay) alone never alarms alone.
 *
 * score = min(1, 0.5 * acc / threshold_bits), at least 0.5 while anomalous:
 * >= 0.5 exactly when the verdict is anomalous.
 *
 * Detectors also have a global weight in [0, 1] (default 1; the engine
 * sets it from acknowledged precision), multiplying their bits; weight 0
 * removes a detector from the vote.
 *
 * State: 40 bytes per series. Not thread safe (one caller, the engine).
 */
#ifndef NOVAMON_ANALYTICS_ENSEMBLE_H
#define NOVAMON_ANALYTICS_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "detector.h"

/* Any field 0: its default. */
struct ensemble_params {
	float quantile; /* of each detector's score history; default 0.995 */
	float quantile_step; /* learning step of that quantile; default 0.002 */
	float floor; /* lowest threshold; default 0.5 (a detector's own cut) */
	float margin; /* share of 1 - q added to q; default 0.5 */
	float rate_window; /* samples over which vote rates are counted; default 16384 */
	float prior_votes; /* prior of the vote rate: votes ... ; default 1 */
	float prior_samples; /* ... in samples; default 256 */
	float max_bits; /* evidence of one vote, at most; default 16 */
	float threshold_bits; /* evidence that makes an anomaly; default 11 */
	float decay; /* of the evidence over consecutive voting samples; default 0.5 */
};

struct ensemble;

/* State for n series. NULL with errno EINVAL (n == 0, bad params) or ENOMEM. */
struct ensemble *ensemble__new(size_t n, const struct ensemble_params *p);
void ensemble__free(struct ensemble *e);

/* Forget series i (its slot is reused for another series). */
void ensemble__reset(struct ensemble *e, size_t i);

/* Weight of detector id in [0, 1] for every series; returns 0 or -EINVAL. */
int ensemble__set_weight(struct ensemble *e, enum detector_id id, float w);
float ensemble__weight(const struct ensemble *e, enum detector_id id);

/*
 * One sample of series i: score[d] is detector d's score in [0, 1], used
 * only for the detectors in the mask ran (1u << d); the others did not see
 * this sample and neither vote nor learn. Returns the ensemble score in
 * [0, 1] (>= 0.5: anomalous) and sets *votes to the mask of the detectors
 * above their threshold (may be NULL). bits may be NULL, or receive each
 * detector's evidence for this sample (0 for non-voters).
 */
float ensemble__combine(struct ensemble *e, size_t i, const float *score, unsigned ran,
			unsigned *votes, float *bits);

/* Detector id's current threshold on series i, and its vote rate there. */
float ensemble__threshold(const struct ensemble *e, size_t i, enum detector_id id);
float ensemble__rate(const struct ensemble *e, size_t i, enum detector_id id);

#endif /* NOVAMON_ANALYTICS_ENSEMBLE_H */
