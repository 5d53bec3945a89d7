/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span_ring: a capture worker's single-producer, single-consumer ring of
 * span candidates: compact records of what may become a span (a completed
 * block request, a long vCPU halt, a long run-queue delay, a KVM exit storm).
 * The worker's probe decoders push; the span synthesizer (spans.h) pops.
 *
 * The push is the per-event path: no lock, no allocation, no syscall. The
 * ring and its storm table are allocated once, on the worker's NUMA node.
 * A push into a full ring is counted per candidate kind (dropped[]), never
 * silent.
 *
 * Exit storms are found here, on the producer side, so that the ring
 * carries one candidate per storm instead of one per exit: exits are counted
 * per (process, thread, exit class, reason) in windows of storm_window_ns;
 * each closed window is compared with that key's baseline (an EWMA of exits
 * per window). A run of windows at or above max(storm_factor x baseline,
 * storm_min_exits), after storm_warmup windows, is one storm, pushed when the
 * first window below it closes (or when span_ring__sweep() sees the key go
 * quiet). The baseline keeps adapting during a storm, eight times slower, so
 * a lasting new level stops being a storm.
 */
#ifndef NOVAMON_SPAN_RING_H
#define NOVAMON_SPAN_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum span_cand_kind {
	SPAN_CAND_BLOCK = 1,
	SPAN_CAND_KVM_STORM,
	SPAN_CAND_KVM_HALT,
	SPAN_CAND_SCHED_DELAY,
	SPAN_CAND_KIND_MAX,
};

/* The class of a counted exit: which namespace its reason number is in. */
enum span_exit_class {
	SPAN_EXIT_USERSPACE = 0, /* KVM_EXIT_* (kvm_userspace_exit) */
	SPAN_EXIT_VMX = 1, /* VMX basic exit reason (kvm_exit, KVM_ISA_VMX) */
	SPAN_EXIT_SVM = 2, /* SVM exit code (kvm_exit, KVM_ISA_SVM) */
};

#define SPAN_VCPU_UNKNOWN 0xffffffffu

/* One candidate: 64 bytes. Times are CLOCK_MONOTONIC ns (bpf_ktime_get_ns()). */
struct span_cand {
	uint16_t kind; /* enum span_cand_kind */
	uint16_t pad;
	uint32_t tgid;
	uint32_t tid;
	uint32_t vcpu; /* KVM kinds: vCPU id, SPAN_VCPU_UNKNOWN when not learnt */
	uint64_t end_ns;
	union {
		struct {
			uint64_t sector;
			uint64_t queue_ns;
			uint64_t service_ns;
			uint32_t bytes;
			uint32_t major;
			uint32_t minor;
			uint16_t op; /* REQ_OP_* */
			int16_t error; /* blk_status_t */
		} block;
		struct {
			uint64_t duration_ns; /* first storm window's start to last one's end */
			uint32_t exits;
			uint32_t baseline; /* exits per window before the storm */
			uint32_t reason;
			uint32_t exit_class; /* enum span_exit_class */
			uint32_t window_ms;
			uint32_t windows; /* storm windows */
		} storm;
		struct {
			uint64_t duration_ns; /* halted, or waiting runnable */
			uint32_t waited; /* halt: 1 blocked, 0 woken while polling */
			uint32_t pad;
		} wait;
	};
};

_Static_assert(sizeof(struct span_cand) == 64, "span candidates are one cache line");

struct span_ring_params {
	uint32_t entries; /* ring slots, a power of two; 0: 65536 */
	uint64_t halt_min_ns; /* shortest halt pushed; 0: 10 ms */
	uint64_t sched_delay_min_ns; /* shortest run-queue delay pushed; 0: 1 ms */
	uint64_t storm_window_ns; /* 0: 100 ms */
	uint32_t storm_factor; /* windows at >= factor x baseline storm; 0: 4 */
	uint32_t storm_min_exits; /* and at least this many exits; 0: 1000 */
	uint32_t storm_warmup; /* windows before a key may storm; 0: 10 */
	uint32_t storm_entries; /* keys tracked, a power of two; 0: 4096 */
};

struct span_storm_entry;

struct span_ring {
	/* Producer (the worker thread). */
	uint64_t head __attribute__((aligned(64))); /* next slot; published with release */
	uint64_t tail_cache; /* the last tail seen */
	uint64_t dropped[SPAN_CAND_KIND_MAX]; /* ring full; relaxed stores, read by anyone */
	uint64_t storm_untracked; /* exits of keys not tracked: storm table full */
	uint64_t last_sweep_ns;

	/* Consumer (the synthesizer). */
	uint64_t tail __attribute__((aligned(64))); /* next slot to read; published with release */

	/* Set up once. */
	struct span_cand *slots __attribute__((aligned(64)));
	uint32_t mask;
	int node; /* NUMA node of slots and storms, -1 for malloc */
	struct span_storm_entry *storms;
	uint32_t storm_mask;
	uint32_t storm_used;
	struct span_ring_params p; /* defaults filled in */
};

/*
 * A ring with params p (NULL: all defaults) on NUMA node (or malloc when
 * node < 0 or libnuma is unavailable). Returns NULL with errno set (EINVAL
 * for sizes that are not powers of two).
 */
struct span_ring *span_ring__new(const struct span_ring_params *p, int node);
/* Free r; NULL is fine. Returns NULL. */
struct span_ring *span_ring__free(struct span_ring *r);

/* Producer: append c, or count it in dropped[c->kind]. Returns false when dropped. */
static inline bool span_ring__push(struct span_ring *r, const struct span_cand *c)
{
	uint64_t head = r->head;

	if (head - r->tail_cache > r->mask) {
		r->tail_cache = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		if (head - r->tail_cache > r->mask) {
			__atomic_store_n(&r->dropped[c->kind], r->dropped[c->kind] + 1,
					 __ATOMIC_RELAXED);
			return false;
		}
	}
	r->slots[head & r->mask] = *c;
	__atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
	return true;
}

/* Consumer: move up to max candidates into out. Returns how many. */
size_t span_ring__pop_burst(struct span_ring *r, struct span_cand *out, size_t max);

/*
 * Producer: count one exit of (tgid, tid, class, reason) at ts_ns on vCPU
 * vcpu for storm detection; may push a storm candidate.
 */
void span_ring__count_exit(struct span_ring *r, uint32_t tgid, uint32_t tid, uint32_t vcpu,
			   uint32_t exit_class, uint32_t reason, uint64_t ts_ns);

/*
 * Producer: close the windows of keys that went quiet (ending their storms)
 * and forget keys idle for a minute. Does nothing when called again within
 * a storm window. now_ns is CLOCK_MONOTONIC.
 */
void span_ring__sweep(struct span_ring *r, uint64_t now_ns);

/* Sum of dropped[] (any thread). */
uint64_t span_ring__dropped(const struct span_ring *r);

#endif /* NOVAMON_SPAN_RING_H */
