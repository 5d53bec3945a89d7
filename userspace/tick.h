/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tick: once per second, fold what capture saw into exported series and
 * publish a new metric set and health report.
 *
 *   workers' shard tables (deltas) --resolve tgid/tid via registry--> series
 *   net per-CPU counters (cumulative, deltas taken here)            --> series
 *   ring counters, worker counters, kvm debugfs, own CPU/RSS        --> set
 *   series + the above --> struct metric_set --> metric_store (HTTP reads it)
 *                                            \--> sinks (store, remote-write)
 *
 * Runs on one thread (the daemon's main loop); nothing here is on the
 * per-event path.
 */
#ifndef NOVAMON_TICK_H
#define NOVAMON_TICK_H

#include <stddef.h>
#include <stdint.h>

#include "feed.h"

struct capture;
struct config;
struct metric_store;
struct registry;

struct tick;

/*
 * Where each tick's samples go besides /metrics (the local store, the
 * remote-write and OTLP exporters), given by the daemon's composition root.
 * Each hook may be NULL.
 *
 * set receives the whole published set once per tick, stamped at t_ms (the
 * tick's whole second), for sinks that need each family's type (OTLP sums,
 * gauges, histograms) rather than flat samples. It returns the number of
 * series it could not take (counted like refused samples) or a negative
 * errno; the set must not be kept after the call.
 *
 * flush runs once every sink has had the tick's samples and set, in the
 * reverse order of sinks[]: put the store first, so that it has appended
 * before any flush and commits (fdatasync) after the others' flushes.
 */
struct tick_sink {
	const char *name;
	feed_sample_fn sample; /* every sample of the set */
	int (*set)(void *ctx, const struct metric_set *set, int64_t t_ms); /* the whole set */
	int (*flush)(void *ctx, int64_t now_ms); /* after every sink's set, last added first */
	int (*describe)(void *ctx, struct metric_set *set); /* add the sink's own metrics */
	void *ctx;
};

/*
 * cap may have nothing running (the API is served without capture).
 * sinks (copied) may be empty; more than 16 is E2BIG. Returns NULL with
 * errno set.
 */
struct tick *tick__new(const struct config *cfg, struct capture *cap, struct registry *reg,
		       struct metric_store *store, const struct tick_sink *sinks, size_t nsinks);
void tick__free(struct tick *t);

struct vmtrace;

/*
 * Read the trace covering each VM from traces (the span synthesizer's
 * board, spans/vmtrace.h) to put exemplars on the VM's counter and
 * histogram samples. NULL (the default) puts none. traces must outlive t.
 */
void tick__set_traces(struct tick *t, struct vmtrace *traces);

/*
 * The part of the next tick that needs nothing of its second: the VM
 * registry's /proc scan (0.6 ms on a quiet host, more with many processes).
 * Called shortly before the second, it takes that off the path from the
 * second to its samples in the store and the live feeds. Optional: a tick
 * not prepared refreshes the registry itself. A process that starts in
 * between is looked up when its events are merged, as any unknown one.
 */
void tick__prepare(struct tick *t, uint64_t now_ms);

/* Do one tick at wall-clock now_ms. Returns 0 or a negative errno. */
int tick__run(struct tick *t, uint64_t now_ms);

#endif /* NOVAMON_TICK_H */
