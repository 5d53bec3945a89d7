// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * KVM probes. Classic tracepoints are used here, not tp_btf: the KVM
 * tracepoints decode what we need (exit reason, port, direction) in their
 * TP_fast_assign, and their raw arguments (struct kvm_vcpu internals) differ
 * between VMX and SVM and across kernels. CO-RE on trace_event_raw_kvm_*
 * keeps one object valid on every kernel. Their rate (one per exit) is far
 * below the block/net/sched hot paths, which use tp_btf.
 *
 * Every program is attached only when its tracepoint exists; userspace
 * disables autoload for the others (kvm_exit/kvm_entry only fire on VMX/SVM
 * hosts, for instance).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kvm.h"
#include "ringbuf.bpf.h"

/* tid -> vCPU id, learnt when a thread enters KVM_RUN. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} vcpu_of_tid SEC(".maps");

/*
 * The last kvm_exit seen on each CPU. Exit handling runs with the vCPU thread
 * on this CPU until kvm_entry (a migration in between makes the tid differ,
 * and the pair is not timed), so a per-CPU slot avoids a hash update per exit.
 */
struct pending_exit {
	__u64 ts_ns;
	__u32 tgid;
	__u32 tid;
	__u32 reason;
	__u32 isa;
	__u32 vcpu_id;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending_exit);
} pending_exits SEC(".maps");

static __always_inline __u32 current_vcpu_id(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 *id = bpf_map_lookup_elem(&vcpu_of_tid, &tid);

	return id ? *id : KVM_VCPU_UNKNOWN;
}

static __always_inline void learn_vcpu(__u32 id)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 *known = bpf_map_lookup_elem(&vcpu_of_tid, &tid);

	if (!known || *known != id)
		bpf_map_update_elem(&vcpu_of_tid, &tid, &id, BPF_ANY);
}

/*
 * Where the kernel has BPF trampolines, learn each vCPU thread's id when it
 * enters KVM_RUN. Elsewhere kvm_entry (VMX/SVM hosts) teaches the same, and
 * userspace falls back to qemu's "CPU n/KVM" thread names.
 */
SEC("fentry/kvm_arch_vcpu_ioctl_run")
int BPF_PROG(kvm_vcpu_run, struct kvm_vcpu *vcpu)
{
	learn_vcpu(BPF_CORE_READ(vcpu, vcpu_id));
	return 0;
}

SEC("tracepoint/kvm/kvm_userspace_exit")
int kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit *ctx)
{
	struct kvm_userspace_exit_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return 0;
	ring_header(&e->h, EV_KVM_USERSPACE_EXIT, sizeof(*e));
	e->vcpu_id = current_vcpu_id();
	e->reason = BPF_CORE_READ(ctx, reason);
	e->err = BPF_CORE_READ(ctx, errno);
	e->pad = 0;
	ring_submit(&r, e, sizeof(*e));
	return 0;
}

SEC("tracepoint/kvm/kvm_pio")
int kvm_pio(struct trace_event_raw_kvm_pio *ctx)
{
	struct kvm_pio_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return 0;
	ring_header(&e->h, EV_KVM_PIO, sizeof(*e));
	e->vcpu_id = current_vcpu_id();
	e->rw = BPF_CORE_READ(ctx, rw);
	e->port = BPF_CORE_READ(ctx, port);
	e->size = BPF_CORE_READ(ctx, size);
	e->count = BPF_CORE_READ(ctx, count);
	e->pad = 0;
	ring_submit(&r, e, sizeof(*e));
	return 0;
}

SEC("tracepoint/kvm/kvm_mmio")
int kvm_mmio(struct trace_event_raw_kvm_mmio *ctx)
{
	struct kvm_mmio_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return 0;
	ring_header(&e->h, EV_KVM_MMIO, sizeof(*e));
	e->vcpu_id = current_vcpu_id();
	e->type = BPF_CORE_READ(ctx, type);
	e->len = BPF_CORE_READ(ctx, len);
	e->pad = 0;
	e->gpa = BPF_CORE_READ(ctx, gpa);
	ring_submit(&r, e, sizeof(*e));
	return 0;
}

SEC("tracepoint/kvm/kvm_emulate_insn")
int kvm_emulate_insn(struct trace_event_raw_kvm_emulate_insn *ctx)
{
	struct kvm_emulate_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return 0;
	ring_header(&e->h, EV_KVM_EMULATE, sizeof(*e));
	e->vcpu_id = current_vcpu_id();
	e->failed = BPF_CORE_READ(ctx, failed);
	ring_submit(&r, e, sizeof(*e));
	return 0;
}

SEC("tracepoint/kvm/kvm_vcpu_wakeup")
int kvm_vcpu_wakeup(struct trace_event_raw_kvm_vcpu_wakeup *ctx)
{
	struct kvm_wakeup_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return 0;
	ring_header(&e->h, EV_KVM_WAKEUP, sizeof(*e));
	e->vcpu_id = current_vcpu_id();
	e->waited = BPF_CORE_READ(ctx, waited);
	e->valid = BPF_CORE_READ(ctx, valid);
	e->pad = 0;
	e->ns = BPF_CORE_READ(ctx, ns);
	ring_submit(&r, e, sizeof(*e));
	return 0;
}

/*
 * Emit a pending exit. duration_ns is KVM_EXIT_UNTIMED when the exit was not
 * followed by an entry on the same CPU and thread (a return to userspace or a
 * migration): it is still counted, so exit totals stay exact.
 */
static __always_inline void emit_exit(struct pending_exit *p, __u64 duration_ns)
{
	struct kvm_exit_event *e;
	struct ring_ref r;

	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		return;
	ring_header(&e->h, EV_KVM_EXIT, sizeof(*e));
	e->h.tid = p->tid;
	e->h.tgid = p->tgid;
	e->vcpu_id = p->vcpu_id;
	e->reason = p->reason;
	e->isa = p->isa;
	e->pad = 0;
	e->duration_ns = duration_ns;
	ring_submit(&r, e, sizeof(*e));
}

SEC("tracepoint/kvm/kvm_exit")
int kvm_exit(struct trace_event_raw_kvm_exit *ctx)
{
	__u32 zero = 0;
	struct pending_exit *p = bpf_map_lookup_elem(&pending_exits, &zero);

	if (!p)
		return 0;
	if (p->ts_ns)
		emit_exit(p, KVM_EXIT_UNTIMED);
	p->ts_ns = bpf_ktime_get_ns();
	p->tid = (__u32)bpf_get_current_pid_tgid();
	p->tgid = bpf_get_current_pid_tgid() >> 32;
	p->reason = BPF_CORE_READ(ctx, exit_reason);
	p->isa = BPF_CORE_READ(ctx, isa);
	p->vcpu_id = BPF_CORE_READ(ctx, vcpu_id);
	return 0;
}

SEC("tracepoint/kvm/kvm_entry")
int kvm_entry(struct trace_event_raw_kvm_entry *ctx)
{
	__u32 zero = 0, tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_exit *p = bpf_map_lookup_elem(&pending_exits, &zero);

	learn_vcpu(BPF_CORE_READ(ctx, vcpu_id));
	/* The first entry of a vCPU, or another thread's exit: nothing to time here. */
	if (!p || !p->ts_ns || p->tid != tid)
		return 0;
	emit_exit(p, bpf_ktime_get_ns() - p->ts_ns);
	p->ts_ns = 0;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
