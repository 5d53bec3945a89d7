/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI shared by every probe family and the userspace capture path: the
 * header each ring-buffer event starts with, and the per-CPU ring counters.
 * Only fixed-width types and explicit padding (see STYLE.md rule 2).
 */
#ifndef NOVAMON_BPF_EVENTS_H
#define NOVAMON_BPF_EVENTS_H

#ifndef __VMLINUX_H__ /* userspace: BPF programs get the __u* types from vmlinux.h */
#include <linux/types.h>
#endif

/* Event types; the high byte names the source (probe family). */
enum novamon_event_type {
	EV_KVM_USERSPACE_EXIT = 0x0101,
	EV_KVM_PIO = 0x0102,
	EV_KVM_MMIO = 0x0103,
	EV_KVM_EXIT = 0x0104,
	EV_KVM_EMULATE = 0x0105,
	EV_KVM_WAKEUP = 0x0106,
	EV_BLOCK_RQ = 0x0201,
	EV_SCHED_DELAY = 0x0401,
};

enum novamon_source {
	SOURCE_KVM = 1,
	SOURCE_BLOCK = 2,
	SOURCE_NET = 3,
	SOURCE_SCHED = 4,
	SOURCE_MAX = 5,
};

#define NOVAMON_EVENT_SOURCE(type) ((type) >> 8)

/* First 24 bytes of every event in the rings. */
struct event_header {
	__u16 type; /* enum novamon_event_type */
	__u16 size; /* whole event, header included */
	__u32 tgid; /* current task's process at the tracepoint */
	__u32 tid; /* current task's thread */
	__u32 pad;
	__u64 ts_ns; /* bpf_ktime_get_ns() */
};

/*
 * Per-CPU ring counters (BPF_MAP_TYPE_PERCPU_ARRAY, one element).
 * produced counts every event a probe tried to emit; lost the ones whose
 * reservation failed (ring full or missing). produced = consumed + lost.
 */
struct ring_stats {
	__u64 produced;
	__u64 lost;
};

/* Placeholder sizes; userspace sets the real ones before load. */
#define NOVAMON_MAX_CPUS 1024

#endif /* NOVAMON_BPF_EVENTS_H */
