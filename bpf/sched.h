/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI between bpf/sched.bpf.c and userspace/probes/sched.c. */
#ifndef NOVAMON_BPF_SCHED_H
#define NOVAMON_BPF_SCHED_H

#include "events.h"

/*
 * EV_SCHED_DELAY: a vCPU thread got a CPU after waiting runnable for
 * delay_ns (host-side steal as the guest sees it). The header's tgid/tid are
 * the vCPU thread's, not the task that switched it in.
 */
struct sched_delay_event {
	struct event_header h;
	__u64 delay_ns;
};

#endif /* NOVAMON_BPF_SCHED_H */
