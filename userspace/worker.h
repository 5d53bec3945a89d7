/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker: one capture thread per NUMA node, pinned to that node's CPUs,
 * with its memory on the node, consuming the rings of the node's CPUs from
 * one epoll loop and folding events into its private shard tables.
 *
 * Reading: each ring's fd is in the worker's epoll edge-triggered, so the
 * worker wakes only when a producer crosses the ring's wake-up threshold,
 * and otherwise every poll_ms. A pass drains every ring, at most
 * WORKER_RING_BUDGET events from each, starting with a different ring each
 * time; a ring left non-empty makes the next pass start at once. No ring
 * starves another, and a flip or quit is seen within one budget.
 *
 * Hand-off to the 1 Hz tick, without a lock on the event path: a worker owns
 * two shard tables and writes the one selected by epoch (epoch & 1). The
 * tick bumps epoch, wakes the worker, and waits until the worker reports
 * (seen_epoch) that it has switched; from then on the previous table is the
 * tick's to read and clear. A worker busy for longer than the wait is merged
 * on a later tick: counts are delayed, never lost or doubled.
 */
#ifndef NOVAMON_WORKER_H
#define NOVAMON_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/events.h"
#include "shard.h"

struct ring_buffer;
struct rings;
struct span_ring;
struct span_ring_params;
struct topology;
struct worker;

#define WORKER_RING_BUDGET 8192

/* One consumed ring: its libbpf reader and this pass's event count. */
struct worker_ring {
	struct worker *w;
	struct ring_buffer *rb;
	int cpu;
	uint32_t n;
};

struct worker {
	/* Written by the worker thread, read by the tick (relaxed atomics). */
	uint64_t consumed[SOURCE_MAX]; /* events decoded, per source */
	uint64_t decode_errors; /* events of a wrong size or unknown type */
	uint64_t seen_epoch; /* the epoch whose table the worker writes */
	uint64_t wakeups; /* loop iterations */

	/* Written by the tick. */
	uint64_t epoch __attribute__((aligned(64)));
	uint64_t merge_pending; /* epoch whose previous table still awaits merging, 0 if none */

	/* Set up once. */
	int id;
	int node;
	int *cpus; /* CPUs the thread is pinned to */
	size_t ncpus;
	struct worker_ring *rings; /* the rings of the node's CPUs */
	size_t nrings;
	size_t next_ring; /* where the next pass starts */
	int epfd;
	int wake_fd; /* eventfd: flips and quit */
	int poll_ms;
	struct shard_table tables[2];
	struct shard_table *cur; /* worker-private: the table of seen_epoch */
	pthread_t thread;
	bool started;
	const volatile bool *quit;
	/*
	 * Span candidates (worker__enable_spans), NULL until enabled; owned by
	 * the worker, freed with it. Published with release; the worker
	 * hands it to its decoders through cur->spans at each pass.
	 */
	struct span_ring *span_ring;
} __attribute__((aligned(128)));

struct workers {
	struct worker **w; /* each allocated on its node */
	size_t n;
	volatile bool quit;
};

/*
 * Start one worker per node of topo that has rings. shard_entries sizes each
 * shard table; poll_ms bounds how long an event may wait in a ring.
 * Returns NULL with errno set.
 */
struct workers *workers__start(const struct topology *topo, const struct rings *rings,
			       uint32_t shard_entries, int poll_ms);
/* Stop and join every worker, free everything; NULL is fine. Returns NULL. */
struct workers *workers__stop(struct workers *ws);

/*
 * Tick side: hand over worker i's current table. Returns the table to read
 * and clear (with shard_table__clear) before the next call, or NULL when the
 * worker has not switched within wait_ms (try again next tick).
 */
struct shard_table *worker__flip(struct worker *w, int wait_ms);

/*
 * Give worker w a span candidate ring (span_ring.h) with params p (NULL:
 * defaults), allocated on the worker's node; its decoders push to it from
 * their next pass on. Any thread may call this once the worker is started.
 * Returns the ring (the worker keeps owning it; it lives until
 * workers__stop()), the one already enabled, or NULL with errno set.
 */
struct span_ring *worker__enable_spans(struct worker *w, const struct span_ring_params *p);

/* Decode one ring event into t (the ring_buffer callback body, exposed for tests and benches). */
int worker_dispatch(struct worker *w, struct shard_table *t, const void *data, size_t size);

#endif /* NOVAMON_WORKER_H */
