/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shard: a worker's private table of event aggregates for the current
 * second. The per-event path does one lookup-or-insert in a preallocated
 * open-addressing table: no lock, no allocation, no syscall. When the table
 * is full the event is counted in overflow (exported), never dropped
 * silently.
 *
 * Each worker owns two tables and the tick flips between them (see worker.h);
 * the tick reads and clears the one the worker no longer writes.
 */
#ifndef NOVAMON_SHARD_H
#define NOVAMON_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Log2 latency buckets: bucket b counts values <= 2^(b + 10) ns; the last is +Inf. */
#define SHARD_HIST_BUCKETS 32
#define SHARD_HIST_MIN_SHIFT 10

enum shard_kind {
	SHARD_KVM_USERSPACE_EXIT = 1, /* a = reason, c = vcpu_id */
	SHARD_KVM_PIO, /* a = port, b = rw, c = vcpu_id */
	SHARD_KVM_MMIO, /* a = type, c = vcpu_id */
	SHARD_KVM_EXIT, /* a = reason, b = isa, c = vcpu_id; hist = duration */
	SHARD_KVM_EMULATE, /* a = failed, c = vcpu_id */
	SHARD_KVM_WAKEUP, /* a = waited, b = valid, c = vcpu_id; sum = halted ns */
	SHARD_BLOCK, /* a = major, b = minor, c = op; sum = bytes; hist = latency */
	SHARD_SCHED_DELAY, /* sum = delay ns */
	SHARD_KIND_MAX,
};

struct shard_key {
	uint32_t kind;
	uint32_t tgid;
	uint32_t tid;
	uint32_t a;
	uint32_t b;
	uint32_t c;
};

struct shard_val {
	uint64_t count;
	uint64_t sum;
	uint64_t hist_sum; /* sum of the values put in hist (ns) */
	uint32_t hist[SHARD_HIST_BUCKETS];
};

struct shard_entry {
	struct shard_key key;
	uint32_t used;
	uint32_t pad;
	struct shard_val val;
};

struct span_ring;

struct shard_table {
	struct shard_entry *entries;
	uint32_t cap; /* power of two */
	uint32_t used;
	uint64_t overflow; /* events that found the table full */
	int node; /* NUMA node the entries live on, -1 for malloc */
	/*
	 * The worker's span candidate ring (userspace/spans/span_ring.h) the
	 * decoders also push to; NULL when spans are off. Set by the worker on
	 * each pass, kept by shard_table__clear().
	 */
	struct span_ring *spans;
};

/*
 * Allocate a table of cap entries (a power of two) on NUMA node (or with
 * calloc when node < 0 or libnuma is unavailable). Returns 0 or -errno.
 */
int shard_table__init(struct shard_table *t, uint32_t cap, int node);
void shard_table__destroy(struct shard_table *t);
/* Empty the table (only the used slots are touched when few are used). */
void shard_table__clear(struct shard_table *t);

/*
 * The value for key, inserted zeroed if absent. NULL when the table is full
 * (t->overflow is incremented). The table is kept at most 3/4 full.
 */
struct shard_val *shard_table__get(struct shard_table *t, const struct shard_key *key);

/* Log2 bucket of a nanosecond value, as defined above. */
static inline unsigned int shard_hist_bucket(uint64_t ns)
{
	unsigned int b;

	if (ns <= (1ull << SHARD_HIST_MIN_SHIFT))
		return 0;
	b = 64 - __builtin_clzll(ns - 1) - SHARD_HIST_MIN_SHIFT;
	return b < SHARD_HIST_BUCKETS ? b : SHARD_HIST_BUCKETS - 1;
}

static inline void shard_val__observe(struct shard_val *v, uint64_t ns)
{
	v->hist[shard_hist_bucket(ns)]++;
	v->hist_sum += ns;
}

/* Visit every used entry (the empty if/else keeps a caller's else its own). */
#define shard_table__for_each(t, e)                                    \
	for ((e) = (t)->entries; (e) < (t)->entries + (t)->cap; (e)++) \
		if (!(e)->used) {                                      \
		} else

#endif /* NOVAMON_SHARD_H */
