/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * BPF-only helpers: the per-CPU ring buffers every probe family writes to.
 *
 * rings is an ARRAY_OF_MAPS indexed by CPU; userspace creates one RINGBUF per
 * CPU on that CPU's NUMA node and shares the outer map (and ring_stats) with
 * every family's object through bpf_map__reuse_fd(). A probe does:
 *
 *	struct ring_ref r;
 *	struct my_event *e = ring_reserve(&r, sizeof(*e));
 *	if (!e)
 *		return 0;	(counted as lost)
 *	... fill e ...
 *	ring_submit(&r, e);
 *
 * Wake-ups: a wake-up per event costs over a microsecond, so events are
 * submitted with BPF_RB_NO_WAKEUP and the reader is woken only when the
 * unread data crosses wakeup_bytes; readers also poll on a short timeout, so
 * a trickle of events is still delivered within that timeout.
 */
#ifndef NOVAMON_RINGBUF_BPF_H
#define NOVAMON_RINGBUF_BPF_H

#include "events.h"

struct ringbuf_inner {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* placeholder: the inner maps are created by userspace */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, NOVAMON_MAX_CPUS);
	__type(key, __u32);
	__array(values, struct ringbuf_inner);
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ring_stats);
} ring_stats SEC(".maps");

/* Bytes of unread data in a ring above which a submit wakes the reader. */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct ring_ref {
	void *ring;
	struct ring_stats *stats;
	__u64 avail;
};

static __always_inline struct ring_stats *ring_stats_this_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ring_stats, &zero);
}

/* Count a produced event and find this CPU's ring; NULL (counted lost) if none. */
static __always_inline void *ring_this_cpu(struct ring_ref *r)
{
	struct ring_stats *st = ring_stats_this_cpu();
	__u32 cpu = bpf_get_smp_processor_id();

	if (!st)
		return NULL;
	r->stats = st;
	/*
	 * Atomic even though per-CPU: an irq-context program (block_rq_complete)
	 * can interrupt a task-context one on this CPU between load and store.
	 */
	__sync_fetch_and_add(&st->produced, 1);
	r->ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!r->ring) {
		__sync_fetch_and_add(&st->lost, 1);
		return NULL;
	}
	r->avail = bpf_ringbuf_query(r->ring, BPF_RB_AVAIL_DATA);
	return r->ring;
}

/* Reservation size must be a verifier-known constant, hence a macro. */
#define ring_reserve(r, size)                                               \
	({                                                                  \
		void *__e = NULL;                                           \
		if (ring_this_cpu(r)) {                                     \
			__e = bpf_ringbuf_reserve((r)->ring, (size), 0);    \
			if (!__e)                                           \
				__sync_fetch_and_add(&(r)->stats->lost, 1); \
		}                                                           \
		__e;                                                        \
	})

static __always_inline void ring_header(struct event_header *h, __u16 type, __u16 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->size = size;
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->pad = 0;
	h->ts_ns = bpf_ktime_get_ns();
}

/* Submit, waking the reader only when this event crosses wakeup_bytes. */
static __always_inline void ring_submit(struct ring_ref *r, void *e, __u32 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (r->avail < wakeup_bytes && r->avail + size + 8 >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

#endif /* NOVAMON_RINGBUF_BPF_H */
