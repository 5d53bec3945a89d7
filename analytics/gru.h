/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gru: a small GRU forecaster of one series, trained on the series' own
 * history and scored on its one-step prediction error.
 *
 * Model. One GRU layer (Cho et al. 2014: n = tanh(Wn x + Un (r * h) + bn))
 * of `hidden` units reads the last `window` samples, oldest first, from a
 * zero state; a linear head on the final state predicts the change from the
 * last sample to the next one. Samples are normalised by the mean and sd of
 * the history snapshot the weights were trained on (stored with the weights)
 * and clipped to +-8 sd as inputs.
 *
 * Training (gru__train()). A snapshot of the history ring (the last `history`
 * samples) is normalised; every position with `window` samples before it is
 * one example; `epochs` passes in a seeded shuffled order, minibatches of 16,
 * backpropagation through the `window` steps (truncated BPTT), Huber loss
 * (delta 1 sd) so spikes in the history do not dominate, gradient norm
 * clipped to 1, Adam (lr `lr`). Training starts from the live weights (the
 * first time from a seeded uniform +-1/sqrt(hidden) initialisation) and the
 * result, with its normalisation and its mean absolute error on the most
 * recent examples, replaces the live model at once under the object's mutex.
 * gru__train() may run on another thread while gru__update() runs; the
 * mutex is held only to copy the history out and the model in.
 *
 * Score. e = |x - predicted|; s = a running scale of e: set to the training
 * error at each swap, then an EWMA (weight 1/64) of e clipped at 4 s, floored
 * at 1% of the model's sd. With u = e / s the score is
 * 1 - exp(-max(0, u - 3) / 4): errors within 3 typical errors score 0, 6
 * score 0.53, 12 score 0.89. 0 before the first training.
 *
 * Cost: gru__update() is O(window * hidden^2) and allocates nothing (about
 * 4 us with the defaults); training costs about 3x that per example and
 * epoch (1024 samples, 8 epochs: ~120 ms) and allocates nothing either.
 */
#ifndef NOVAMON_ANALYTICS_GRU_H
#define NOVAMON_ANALYTICS_GRU_H

#include <stdbool.h>
#include <stdint.h>

/* Any field 0: its default. */
struct gru_params {
	uint32_t hidden; /* units; default 12, 1..64 */
	uint32_t window; /* input samples per prediction; default 16, 2..256 */
	uint32_t history; /* samples kept for training; default 1024, >= window + 16 */
	uint32_t retrain_every; /* samples between trainings; default history / 2 */
	uint32_t epochs; /* passes per training; default 8, <= 1000 */
	uint32_t warmup; /* samples before the first training; default 256,
			    at least window + 16 */
	float lr; /* Adam step size; default 0.01 */
	bool sync_train; /* true: train inside gru__update when due (offline scorer) */
};

struct gru;

/* NULL with errno EINVAL (a parameter out of range) or ENOMEM. */
struct gru *gru__new(const struct gru_params *p, uint64_t seed);
/* No gru__train() or gru__update() may be running on g. */
void gru__free(struct gru *g);

/*
 * Scores x against the live model's forecast from the samples before x,
 * then appends x to the history. *predicted (if not NULL) gets that forecast,
 * NAN before the first training. With sync_train, trains before returning
 * when due. Returns a score in [0, 1]. A NaN (or infinite) x is no sample:
 * 0, *predicted = NAN, state unchanged.
 */
float gru__update(struct gru *g, float x, float *predicted);

/* True when `warmup` samples are there and no model yet, or retrain_every
 * samples arrived since the last training began. */
bool gru__training_due(const struct gru *g);

/*
 * Trains on a snapshot of the history and swaps the weights in; safe to call
 * from another thread concurrently with gru__update() on the same object
 * (concurrent gru__train() calls run one after the other). Deterministic for
 * a given seed and call sequence. 0, or -ENODATA when fewer than
 * window + 16 samples are in the history.
 */
int gru__train(struct gru *g);

#endif /* NOVAMON_ANALYTICS_GRU_H */
