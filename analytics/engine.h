/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine: anomaly detection over many series (slots) at one tick rate.
 *
 * Each engine__tick() takes one sample per slot. The cheap detectors (statdet,
 * seasonal) run over every slot, vectorised (structure of arrays). The costly
 * ones (iforest, gru; one model per slot, created when a slot first needs it)
 * run on the slots the cheap ones flag (score >= heavy_trigger) and then on a
 * rotating subset, at most heavy_budget slot updates per tick (0: every slot
 * every tick, for single-series and offline use). GRUs are retrained when due
 * (gru.h: every retrain_every samples) on a background thread, or inside the
 * tick with sync_train (deterministic, for the offline scorer and tests).
 * The ensemble (ensemble.h) turns the per-detector scores into one verdict
 * with its reason, and modelperf (modelperf.h) keeps score per detector.
 *
 * Threads: engine__add(), engine__remove() and engine__tick() from one thread
 * (the tick's); engine__label() and engine__performance() from any thread.
 */
#ifndef NOVAMON_ANALYTICS_ENGINE_H
#define NOVAMON_ANALYTICS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detector.h"
#include "ensemble.h"
#include "gru.h"
#include "iforest.h"
#include "modelperf.h"
#include "seasonal.h"
#include "statdet.h"

/* The single-detector mode: params.detectors = ENGINE_ONLY(DETECTOR_GRU). */
#define ENGINE_ONLY(id) (1u << (id))

struct engine_params {
	size_t slots; /* capacity: series at once (required) */
	/*
	 * Mask of the detectors to run, (1u << id); 0: all (DETECTOR_ALL). With
	 * two or more the verdict is the ensemble's; with exactly one (see
	 * ENGINE_ONLY()) it is that detector's own: score = its score,
	 * anomalous = score >= 0.5 (`novamon detect --detector NAME`).
	 */
	unsigned detectors;
	uint32_t heavy_budget; /* iforest/gru slot updates per tick; 0: all slots */
	float heavy_trigger; /* cheap score that sends a slot to them; 0: 0.3 */
	/*
	 * Slots that may hold iforest/gru models (memory: ~350 KB each with
	 * the defaults, the forest's reservoir and trees); 0: all. Models are created on a slot's first turn;
	 * once max_heavy slots hold them, the others get none until a slot
	 * holding models is removed.
	 */
	uint32_t max_heavy;
	bool sync_train; /* train GRUs inside engine__tick() instead of a thread */
	uint32_t train_queue; /* GRUs waiting for the trainer, at most; 0: 1024 */
	uint64_t seed; /* of every model (with the slot and its reuse count) */
	size_t log_capacity; /* alarm episodes kept for engine__label(); 0: 65536 */
	/*
	 * Parameters of each part (fields 0: their defaults). Mind that isa 0
	 * is SIMD_SCALAR: engine_params_init() sets SIMD_AUTO.
	 */
	struct statdet_params stat;
	struct seasonal_params seasonal;
	struct iforest_params iforest;
	struct gru_params gru; /* sync_train is ignored: see above */
	struct ensemble_params ensemble;
};

/* What the engine concluded about one slot's sample, and why. */
struct engine_verdict {
	float score; /* [0, 1]: the ensemble's (or the single detector's) */
	float scores[DETECTOR_COUNT]; /* each detector's own score; 0 if not run */
	float expected; /* what the model expected; NaN: no model yet */
	float actual; /* the sample; NaN: none this tick */
	float spread; /* usual deviation around expected (robust sigma); NaN: unknown */
	float deviation; /* (actual - expected) / spread, signed; 0 when unknown */
	uint8_t detectors; /* mask of detectors above their adaptive threshold */
	uint8_t ran; /* mask of detectors that scored this sample */
	int8_t expected_by; /* detector id behind expected/spread; -1: none */
	bool anomalous; /* score >= 0.5 */
};

struct engine;

/* Zero p, then set what zero does not mean by default (isa = SIMD_AUTO). */
void engine_params_init(struct engine_params *p);

/*
 * NULL with errno EINVAL (no slots, bad params, a part refusing its
 * params), ENOTSUP (isa above the CPU's), ENOMEM, or an errno of
 * pthread_create().
 */
struct engine *engine__new(const struct engine_params *p);
/* Stops the trainer thread and frees everything; NULL is fine. */
void engine__free(struct engine *e);

/* A free slot for a new series (its models start empty), or -ENOSPC. */
int engine__add(struct engine *e);
/* Release slot (its models are freed); 0, or -EINVAL if it is not in use. */
int engine__remove(struct engine *e, int slot);
bool engine__in_use(const struct engine *e, int slot);
size_t engine__slots(const struct engine *e);

/*
 * One tick at time t_ms: x[slot] for every slot (params.slots of them; NaN
 * or +-Inf: no sample this tick, like free slots, whose x is ignored);
 * out[slot] gets every slot's verdict (free slots: zeroed, actual NaN).
 * Each score uses only the samples up to this tick.
 */
void engine__tick(struct engine *e, int64_t t_ms, const float *x, struct engine_verdict *out);

/*
 * Acknowledge [t_start_ms, t_end_ms] of a slot as a true anomaly or a false
 * positive (modelperf__label()). Also re-weights the detectors in the
 * ensemble once they have 10 acknowledged alarms: weight = max(0.25,
 * precision). Returns the number of alarm episodes it matched, or -EINVAL.
 */
int engine__label(struct engine *e, int slot, int64_t t_start_ms, int64_t t_end_ms,
		  bool true_positive);
void engine__performance(struct engine *e, struct modelperf_report *out);

/* Block until the background trainer has nothing queued or running (tests, shutdown). */
void engine__train_wait(struct engine *e);

#endif /* NOVAMON_ANALYTICS_ENGINE_H */
