/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI between bpf/kvm.bpf.c and userspace/probes/kvm.c. */
#ifndef NOVAMON_BPF_KVM_H
#define NOVAMON_BPF_KVM_H

#include "events.h"

#define KVM_VCPU_UNKNOWN 0xffffffffu
#define KVM_EXIT_UNTIMED 0xffffffffffffffffull

/* EV_KVM_USERSPACE_EXIT: KVM_RUN returned to userspace (KVM_EXIT_* reason). */
struct kvm_userspace_exit_event {
	struct event_header h;
	__u32 vcpu_id; /* KVM_VCPU_UNKNOWN when not learnt yet */
	__u32 reason; /* KVM_EXIT_IO = 2, KVM_EXIT_HLT = 5, KVM_EXIT_MMIO = 6, ... */
	__s32 err; /* KVM_RUN's return value when negative */
	__u32 pad;
};

/* EV_KVM_PIO: an emulated port I/O access. */
struct kvm_pio_event {
	struct event_header h;
	__u32 vcpu_id;
	__u32 rw; /* 0 in, 1 out */
	__u32 port;
	__u32 size; /* bytes per access */
	__u32 count;
	__u32 pad;
};

/* EV_KVM_MMIO: an emulated MMIO access. */
struct kvm_mmio_event {
	struct event_header h;
	__u32 vcpu_id;
	__u32 type; /* 0 unsatisfied read, 1 read, 2 write (KVM_TRACE_MMIO_*) */
	__u32 len;
	__u32 pad;
	__u64 gpa;
};

/* EV_KVM_EXIT: a hardware exit, emitted at the next entry with its handling time. */
struct kvm_exit_event {
	struct event_header h;
	__u32 vcpu_id;
	__u32 reason; /* VMX basic exit reason or SVM exit code */
	__u32 isa; /* 1 VMX, 2 SVM (KVM_ISA_*) */
	__u32 pad;
	__u64 duration_ns; /* kvm_exit to the next kvm_entry on that thread */
};

/* EV_KVM_EMULATE: an instruction emulated by KVM. */
struct kvm_emulate_event {
	struct event_header h;
	__u32 vcpu_id;
	__u32 failed;
};

/* EV_KVM_WAKEUP: a halted vCPU woke up (after polling or blocking). */
struct kvm_wakeup_event {
	struct event_header h;
	__u32 vcpu_id;
	__u32 waited; /* 1 blocked, 0 woken while halt-polling */
	__u32 valid; /* 0: the poll ended without a runnable vCPU */
	__u32 pad;
	__u64 ns; /* time halted */
};

#endif /* NOVAMON_BPF_KVM_H */
