/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KVM probe family: loader for bpf/kvm.bpf.c and decoder of its events.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf/kvm.h"
#include "bpf/kvm.skel.h"
#include "probe.h"
#include "probes.h"
#include "rings.h"
#include "config.h"
#include "shard.h"
#include "spans/span_ring.h"

#define FAMILY "kvm"

struct kvm_probe {
	struct kvm_bpf *skel;
	struct bpf_link *links[PROBE_MAX_LINKS];
	int nlinks;
};

/* Programs on classic tracepoints, and the tracepoint each needs. */
static const struct {
	const char *prog;
	const char *event;
} kvm_tracepoints[] = {
	{ "kvm_userspace_exit", "kvm_userspace_exit" },
	{ "kvm_pio", "kvm_pio" },
	{ "kvm_mmio", "kvm_mmio" },
	{ "kvm_emulate_insn", "kvm_emulate_insn" },
	{ "kvm_vcpu_wakeup", "kvm_vcpu_wakeup" },
	{ "kvm_exit", "kvm_exit" },
	{ "kvm_entry", "kvm_entry" },
};

/* Open the skeleton and decide which programs can load here. */
static int kvm_open_skel(struct probe_env *env, struct kvm_probe *p, bool with_fentry)
{
	struct bpf_program *prog;
	size_t i;
	int err;

	p->skel = kvm_bpf__open();
	if (!p->skel)
		return -errno;
	err = rings__adopt(env->rings, p->skel->obj);
	if (err)
		return err;
	p->skel->rodata->wakeup_bytes = env->cfg->wakeup_bytes;

	for (i = 0; i < sizeof(kvm_tracepoints) / sizeof(kvm_tracepoints[0]); i++) {
		prog = bpf_object__find_program_by_name(p->skel->obj, kvm_tracepoints[i].prog);
		if (!prog)
			continue;
		if (!env->tracefs)
			probe_skip(
				env, FAMILY, prog,
				"tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing");
		else if (!probe_tracepoint_exists(env, "kvm", kvm_tracepoints[i].event))
			probe_skip(
				env, FAMILY, prog,
				"tracepoint absent: KVM is not built in or loaded (modprobe kvm)");
	}
	if (!with_fentry)
		probe_skip(
			env, FAMILY, p->skel->progs.kvm_vcpu_run,
			"no BPF trampoline (fentry) on this kernel: vCPU ids come from kvm_entry or qemu thread names");
	else if (!probe_btf_has(env, "kvm_arch_vcpu_ioctl_run", BTF_KIND_FUNC))
		probe_skip(
			env, FAMILY, p->skel->progs.kvm_vcpu_run,
			"kvm_arch_vcpu_ioctl_run not in kernel BTF: vCPU ids come from kvm_entry or qemu thread names");
	return 0;
}

int kvm_probe__open(struct probe_env *env, struct kvm_probe **out)
{
	size_t report_mark = env->report->n;
	struct kvm_probe *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	err = kvm_open_skel(env, p, true);
	if (!err)
		err = kvm_bpf__load(p->skel);
	if (err && bpf_program__autoload(p->skel->progs.kvm_vcpu_run)) {
		/*
		 * fentry needs BPF trampolines, which some kernels lack (no
		 * CONFIG_FUNCTION_TRACER, or a paravirtual host): try without.
		 */
		kvm_bpf__destroy(p->skel);
		env->report->n = report_mark;
		err = kvm_open_skel(env, p, false);
		if (!err)
			err = kvm_bpf__load(p->skel);
	}
	if (err)
		goto err_free;
	p->nlinks = probe_attach_all(env, FAMILY, p->skel->obj, p->links, PROBE_MAX_LINKS);
	env->vcpu_of_tid_fd = bpf_map__fd(p->skel->maps.vcpu_of_tid);
	*out = p;
	return 0;

err_free:
	kvm_probe__destroy(p);
	return err;
}

struct kvm_probe *kvm_probe__destroy(struct kvm_probe *p)
{
	if (!p)
		return NULL;
	probe_links_destroy(p->links, p->nlinks);
	kvm_bpf__destroy(p->skel);
	free(p);
	return NULL;
}

int kvm_probe__vcpu_map_fd(const struct kvm_probe *p)
{
	return p ? bpf_map__fd(p->skel->maps.vcpu_of_tid) : -1;
}

static inline struct shard_val *lookup(struct shard_table *t, const struct event_header *h,
				       uint32_t kind, uint32_t a, uint32_t b, uint32_t vcpu)
{
	struct shard_key k = {
		.kind = kind,
		.tgid = h->tgid,
		.tid = h->tid,
		.a = a,
		.b = b,
		.c = vcpu,
	};

	return shard_table__get(t, &k);
}

int kvm_probe__handle(struct shard_table *t, const struct event_header *h, size_t size)
{
	struct shard_val *v;

	switch (h->type) {
	case EV_KVM_USERSPACE_EXIT: {
		const struct kvm_userspace_exit_event *e = (const void *)h;

		if (size < sizeof(*e))
			return -EINVAL;
		v = lookup(t, h, SHARD_KVM_USERSPACE_EXIT, e->reason, 0, e->vcpu_id);
		if (v)
			v->count++;
		if (t->spans)
			span_ring__count_exit(t->spans, h->tgid, h->tid, e->vcpu_id,
					      SPAN_EXIT_USERSPACE, e->reason, h->ts_ns);
		return 0;
	}
	case EV_KVM_PIO: {
		const struct kvm_pio_event *e = (const void *)h;

		if (size < sizeof(*e))
			return -EINVAL;
		v = lookup(t, h, SHARD_KVM_PIO, e->port, e->rw, e->vcpu_id);
		if (v)
			v->count++; /* one exit, whatever the rep count */
		return 0;
	}
	case EV_KVM_MMIO: {
		const struct kvm_mmio_event *e = (const void *)h;

		if (size < sizeof(*e))
			return -EINVAL;
		v = lookup(t, h, SHARD_KVM_MMIO, e->type, 0, e->vcpu_id);
		if (v)
			v->count++;
		return 0;
	}
	case EV_KVM_EXIT: {
		const struct kvm_exit_event *e = (const void *)h;

		if (size < sizeof(*e))
			return -EINVAL;
		v = lookup(t, h, SHARD_KVM_EXIT, e->reason, e->isa, e->vcpu_id);
		if (v) {
			v->count++;
			if (e->duration_ns != KVM_EXIT_UNTIMED)
				shard_val__observe(v, e->duration_ns);
		}
		/* KVM_ISA_VMX = 1, KVM_ISA_SVM = 2: the span_exit_class values. */
		if (t->spans && (e->isa == SPAN_EXIT_VMX || e->isa == SPAN_EXIT_SVM))
			span_ring__count_exit(t->spans, h->tgid, h->tid, e->vcpu_id, e->isa,
					      e->reason, h->ts_ns);
		return 0;
	}
	case EV_KVM_EMULATE: {
		const struct kvm_emulate_event *e = (const void *)h;

		if (size < sizeof(*e))
			return -EINVAL;
		v = lookup(t, h, SHARD_KVM_EMULATE, e->failed ? 1 : 0, 0, e->vcpu_id);
		if (v)
			v->count++;
		return 0;
	}
	case EV_KVM_WAKEUP: {
		const struct kvm_wakeup_event *e = (const void *)h;

		if (size < sizeof(*e))
			return -EINVAL;
		v = lookup(t, h, SHARD_KVM_WAKEUP, e->waited ? 1 : 0, e->valid ? 1 : 0, e->vcpu_id);
		if (v) {
			v->count++;
			v->sum += e->ns;
		}
		if (t->spans && e->ns >= t->spans->p.halt_min_ns) {
			struct span_cand c = {
				.kind = SPAN_CAND_KVM_HALT,
				.tgid = h->tgid,
				.tid = h->tid,
				.vcpu = e->vcpu_id,
				.end_ns = h->ts_ns,
				.wait = { .duration_ns = e->ns, .waited = e->waited ? 1 : 0 },
			};

			span_ring__push(t->spans, &c);
		}
		return 0;
	}
	default:
		return -EINVAL;
	}
}

/* KVM_EXIT_* from include/uapi/linux/kvm.h. */
/* clang-format off */
static const char *const userspace_exit_names[] = {
	"unknown", "exception", "io", "hypercall", "debug", "hlt", "mmio",
	"irq_window_open", "shutdown", "fail_entry", "intr", "set_tpr", "tpr_access",
	"s390_sieic", "s390_reset", "dcr", "nmi", "internal_error", "osi", "papr_hcall",
	"s390_ucontrol", "watchdog", "s390_tsch", "epr", "system_event", "s390_stsi",
	"ioapic_eoi", "hyperv", "arm_nisv", "x86_rdmsr", "x86_wrmsr", "dirty_ring_full",
	"ap_reset_hold", "x86_bus_lock", "xen", "riscv_sbi", "riscv_csr", "notify",
	"loongarch_iocsr", "memory_fault",
};
/* clang-format on */

const char *kvm_userspace_exit_reason(uint32_t reason, char *buf, size_t len)
{
	if (reason < sizeof(userspace_exit_names) / sizeof(userspace_exit_names[0]))
		return userspace_exit_names[reason];
	snprintf(buf, len, "unknown_%u", reason);
	return buf;
}

/* VMX basic exit reasons (arch/x86/include/uapi/asm/vmx.h), as kvm_stat names them. */
/* clang-format off */
static const char *const vmx_exit_names[] = {
	[0] = "exception_nmi", [1] = "external_interrupt", [2] = "triple_fault",
	[3] = "init_signal", [4] = "sipi_signal", [7] = "interrupt_window",
	[8] = "nmi_window", [9] = "task_switch", [10] = "cpuid", [12] = "hlt",
	[13] = "invd", [14] = "invlpg", [15] = "rdpmc", [16] = "rdtsc", [18] = "vmcall",
	[19] = "vmclear", [20] = "vmlaunch", [21] = "vmptrld", [22] = "vmptrst",
	[23] = "vmread", [24] = "vmresume", [25] = "vmwrite", [26] = "vmoff", [27] = "vmon",
	[28] = "cr_access", [29] = "dr_access", [30] = "io_instruction", [31] = "msr_read",
	[32] = "msr_write", [33] = "invalid_state", [34] = "msr_load_fail",
	[36] = "mwait_instruction", [37] = "monitor_trap_flag", [39] = "monitor_instruction",
	[40] = "pause_instruction", [41] = "mce_during_vmentry", [43] = "tpr_below_threshold",
	[44] = "apic_access", [45] = "eoi_induced", [46] = "gdtr_idtr", [47] = "ldtr_tr",
	[48] = "ept_violation", [49] = "ept_misconfig", [50] = "invept", [51] = "rdtscp",
	[52] = "preemption_timer", [53] = "invvpid", [54] = "wbinvd", [55] = "xsetbv",
	[56] = "apic_write", [57] = "rdrand", [58] = "invpcid", [59] = "vmfunc",
	[60] = "encls", [61] = "rdseed", [62] = "pml_full", [63] = "xsaves",
	[64] = "xrstors", [67] = "umwait", [68] = "tpause", [74] = "bus_lock",
	[75] = "notify",
};
/* clang-format on */

/* SVM exit codes (arch/x86/include/uapi/asm/svm.h) from 0x060. */
/* clang-format off */
static const char *const svm_exit_names[] = {
	[0x00] = "intr", [0x01] = "nmi", [0x02] = "smi", [0x03] = "init", [0x04] = "vintr",
	[0x05] = "cr0_sel_write", [0x12] = "cpuid", [0x13] = "rsm", [0x14] = "iret",
	[0x15] = "swint", [0x16] = "invd", [0x17] = "pause", [0x18] = "hlt",
	[0x19] = "invlpg", [0x1a] = "invlpga", [0x1b] = "ioio", [0x1c] = "msr",
	[0x1d] = "task_switch", [0x1e] = "ferr_freeze", [0x1f] = "shutdown",
	[0x20] = "vmrun", [0x21] = "vmmcall", [0x22] = "vmload", [0x23] = "vmsave",
	[0x24] = "stgi", [0x25] = "clgi", [0x26] = "skinit", [0x27] = "rdtscp",
	[0x28] = "icebp", [0x29] = "wbinvd", [0x2a] = "monitor", [0x2b] = "mwait",
	[0x2c] = "mwait_cond", [0x2d] = "xsetbv", [0x2e] = "rdpru",
};
/* clang-format on */

#define KVM_ISA_VMX 1
#define KVM_ISA_SVM 2

const char *kvm_exit_reason(uint32_t isa, uint32_t reason, char *buf, size_t len)
{
	const char *name = NULL;

	if (isa == KVM_ISA_VMX) {
		reason &= 0xffff; /* the basic exit reason */
		if (reason < sizeof(vmx_exit_names) / sizeof(vmx_exit_names[0]))
			name = vmx_exit_names[reason];
	} else if (isa == KVM_ISA_SVM) {
		if (reason < 0x10)
			snprintf(buf, len, "read_cr%u", reason);
		else if (reason < 0x20)
			snprintf(buf, len, "write_cr%u", reason - 0x10);
		else if (reason < 0x30)
			snprintf(buf, len, "read_dr%u", reason - 0x20);
		else if (reason < 0x40)
			snprintf(buf, len, "write_dr%u", reason - 0x30);
		else if (reason < 0x60)
			snprintf(buf, len, "exception_%u", reason - 0x40);
		else if (reason - 0x60 < sizeof(svm_exit_names) / sizeof(svm_exit_names[0]))
			name = svm_exit_names[reason - 0x60];
		else if (reason == 0x400)
			name = "npf";
		if (reason < 0x60)
			return buf;
	}
	if (name)
		return name;
	snprintf(buf, len, "unknown_%u", reason);
	return buf;
}

const char *kvm_mmio_direction(uint32_t type)
{
	switch (type) {
	case 0:
		return "unsatisfied_read";
	case 1:
		return "read";
	case 2:
		return "write";
	default:
		return "unknown";
	}
}
