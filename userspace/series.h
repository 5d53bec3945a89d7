/* SPDX-License-Identifier: Apache-2.0 */
/*
 * series: the tick's cumulative state, one entry per exported series
 * (family + rendered labels), holding counter totals and histogram buckets
 * since the daemon started. Workers hand over per-second deltas; the tick
 * adds them here. A series idle for longer than the expiry is dropped, so
 * memory stays bounded as VMs, devices and interfaces come and go.
 * Owned by the tick thread; not thread safe.
 */
#ifndef NOVAMON_SERIES_H
#define NOVAMON_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "shard.h"

struct series {
	struct series *hnext; /* hash chain */
	struct series *next; /* family list, in creation order */
	struct series **pprev; /* family list back link */
	uint64_t hash;
	unsigned int family;
	uint64_t last_ms; /* last time a delta was added */
	double value;
	double hist_sum; /* seconds */
	uint64_t hist[SHARD_HIST_BUCKETS];
	/* this tick's deltas (the tick resets them), for its exemplar */
	uint32_t vm_tgid; /* the VM process of a per-VM series; 0 none */
	double tick_delta;
	double tick_hist_sum;
	uint64_t tick_hist_count;
	/* the latest exemplar, kept until a newer one (as client libraries do) */
	bool has_exemplar;
	struct metric_exemplar exemplar;
	char labels[];
};

struct series_table;

/* nfamilies bounds the family index. Returns NULL with errno set. */
struct series_table *series_table__new(unsigned int nfamilies);
void series_table__free(struct series_table *t);

/*
 * The series of (family, labels), created at zero (with last_ms = now_ms) if
 * absent. Callers set last_ms when they add to it. NULL on allocation failure.
 */
struct series *series_table__get(struct series_table *t, unsigned int family, const char *labels,
				 uint64_t now_ms);

/* First series of family (creation order); follow ->next. */
struct series *series_table__first(const struct series_table *t, unsigned int family);

/* Drop series idle for more than max_idle_ms. Returns how many were dropped. */
size_t series_table__expire(struct series_table *t, uint64_t now_ms, uint64_t max_idle_ms);

/* Number of live series. */
size_t series_table__count(const struct series_table *t);

#endif /* NOVAMON_SERIES_H */
