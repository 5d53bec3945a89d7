/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tick: once per second, fold what capture saw into exported series and
 * publish a new metric set and health report.
 *
 *   workers' shard tables (deltas) --resolve tgid/tid via registry--> series
 *   net per-CPU counters (cumulative, deltas taken here)            --> series
 *   ring counters, worker counters, kvm debugfs, own CPU/RSS        --> set
 *   series + the above --> struct metric_set --> metric_store (HTTP reads it)
 *
 * Runs on one thread (the daemon's main loop); nothing here is on the
 * per-event path.
 */
#ifndef NOVAMON_TICK_H
#define NOVAMON_TICK_H

#include <stdint.h>

struct capture;
struct config;
struct metric_store;
struct registry;

struct tick;

/*
 * cap may have nothing running (the API is served without capture).
 * Returns NULL with errno set.
 */
struct tick *tick__new(const struct config *cfg, struct capture *cap, struct registry *reg,
		       struct metric_store *store);
void tick__free(struct tick *t);

/* Do one tick at wall-clock now_ms. Returns 0 or a negative errno. */
int tick__run(struct tick *t, uint64_t now_ms);

#endif /* NOVAMON_TICK_H */
