// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Ring pipeline benchmark producer: on sys_enter of one cheap syscall made
 * by the benchmark's own process, emit batch EV_SCHED_DELAY events into the
 * shared per-CPU rings through the same ring_reserve/ring_header/ring_submit
 * path the probe families use, so that the real worker decode and shard
 * insert consume them. Triggered like the selftests' benchmarks: a loop of
 * syscalls, filtered by tgid (see tools/testing/selftests/bpf/progs/
 * ringbuf_bench.c).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bench.h"
#include "sched.h"
#include "ringbuf.bpf.h"

/* inputs */
/* Only this process triggers. */
const volatile __u32 bench_tgid = BENCH_TGID_NONE;
/* Only this syscall number. */
const volatile __s64 bench_syscall = -1;
/* Events per trigger, at most BENCH_MAX_BATCH. */
const volatile __u32 batch = 1;
/* Submit with BPF_RB_FORCE_WAKEUP on every event instead of ring_submit(). */
const volatile bool force_wakeup = false;

static __always_inline void emit(__u32 i, __u32 cpu)
{
	struct sched_delay_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return;
	ring_header(&e->h, EV_SCHED_DELAY, sizeof(*e));
	e->h.tgid = BENCH_FAKE_TGID;
	e->h.tid = BENCH_FAKE_TID + ((i + cpu) & (BENCH_FAKE_VCPUS - 1));
	e->delay_ns = 1000 + i;
	if (force_wakeup)
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	else
		ring_submit(&r, e, sizeof(*e));
}

SEC("tp_btf/sys_enter")
int BPF_PROG(bench_sys_enter, struct pt_regs *regs, long id)
{
	__u32 i, cpu;

	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != bench_tgid)
		return 0;
	if (id != bench_syscall)
		return 0;
	cpu = bpf_get_smp_processor_id();
	for (i = 0; i < BENCH_MAX_BATCH; i++) {
		if (i >= batch)
			break;
		emit(i, cpu);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
