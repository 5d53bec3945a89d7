/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI between bpf/block.bpf.c and userspace/probes/block.c. */
#ifndef NOVAMON_BPF_BLOCK_H
#define NOVAMON_BPF_BLOCK_H

#include "events.h"

/*
 * EV_BLOCK_RQ: one completed request. The header's tgid/tid are those of the
 * task that queued it (block_rq_insert) or, for a request that skipped the
 * I/O scheduler, issued it (block_rq_issue); never the completion context.
 * The request's life is insert -> issue -> complete:
 *   queue_ns   = issue - insert (0 when it was never inserted),
 *   latency_ns = complete - issue (the device's service time).
 */
struct block_rq_event {
	struct event_header h;
	__u32 major;
	__u32 minor;
	__u32 op; /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, ... */
	__u32 bytes; /* completed bytes */
	__u64 latency_ns; /* block_rq_issue to block_rq_complete */
	__s32 error; /* blk_status_t, 0 = ok */
	__u32 pad;
	__u64 sector; /* first 512-byte sector */
	__u64 queue_ns; /* block_rq_insert to block_rq_issue, 0 if not inserted */
};

#endif /* NOVAMON_BPF_BLOCK_H */
