// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Run-queue delay of vCPU threads, as runqlat measures it: from wakeup (or
 * preemption while runnable) to the switch that gives the thread a CPU.
 * Only threads in vcpu_of_tid (filled by the KVM probe when a thread enters
 * KVM_RUN, and by userspace from qemu's "CPU n/KVM" thread names) are timed,
 * so sched_switch costs one or two hash lookups for every other task.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sched.h"
#include "core_fixes.bpf.h"
#include "ringbuf.bpf.h"

#define TASK_RUNNING 0

/* Shared with the KVM object (same definition, fd reused). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} vcpu_of_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} runnable_since SEC(".maps");

static __always_inline void mark_runnable(__u32 tid)
{
	__u64 ts;

	if (!bpf_map_lookup_elem(&vcpu_of_tid, &tid))
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&runnable_since, &tid, &ts, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tid = BPF_CORE_READ(next, pid);
	struct sched_delay_event *e;
	struct ring_ref r;
	__u64 *since, now;

	/* Preempted while runnable: it waits on the run queue from now. */
	if (task_state(prev) == TASK_RUNNING)
		mark_runnable(BPF_CORE_READ(prev, pid));

	since = bpf_map_lookup_elem(&runnable_since, &tid);
	if (!since)
		return 0;
	now = bpf_ktime_get_ns();
	e = ring_reserve(&r, sizeof(*e));
	if (e) {
		ring_header(&e->h, EV_SCHED_DELAY, sizeof(*e));
		e->h.tgid = BPF_CORE_READ(next, tgid);
		e->h.tid = tid;
		e->h.ts_ns = now;
		e->delay_ns = now - *since;
		ring_submit(&r, e, sizeof(*e));
	}
	bpf_map_delete_elem(&runnable_since, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
