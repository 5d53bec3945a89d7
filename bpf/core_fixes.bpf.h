/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel drift, in one place. CO-RE flavours (struct foo___x) with
 * bpf_core_field_exists() choose the layout at load time; never a kernel
 * version check.
 */
#ifndef NOVAMON_CORE_FIXES_BPF_H
#define NOVAMON_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/*
 * struct request lost rq_disk in favour of rq->q->disk in v5.17
 * (commit f3fa33acca9f "block: remove the ->rq_disk field in struct request").
 */
struct request___x {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *request_disk(struct request *rq)
{
	struct request___x *rqx = (void *)rq;

	if (bpf_core_field_exists(rqx->rq_disk))
		return BPF_CORE_READ(rqx, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

/*
 * task_struct::state became __state in v5.14
 * (commit 2f064a59a11f "sched: Change task_struct::state").
 */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	struct task_struct___o *to = (void *)t;

	if (bpf_core_field_exists(to->state))
		return BPF_CORE_READ(to, state);
	return BPF_CORE_READ(t, __state);
}

#endif /* NOVAMON_CORE_FIXES_BPF_H */
