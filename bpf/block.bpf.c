// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block request latency: block_rq_issue records the start, block_rq_complete
 * emits one event per request with its latency, size, op and device.
 * tp_btf (BTF-enabled raw tracepoints): a few ns per event, no tracefs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "block.h"
#include "core_fixes.bpf.h"
#include "ringbuf.bpf.h"

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)

struct issue {
	__u64 ts_ns;
	__u32 tgid;
	__u32 tid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct request * */
	__type(value, struct issue);
} in_flight SEC(".maps");

static __always_inline int on_issue(struct request *rq)
{
	__u64 key = (__u64)rq, id = bpf_get_current_pid_tgid();
	struct issue v = {
		.ts_ns = bpf_ktime_get_ns(),
		.tgid = id >> 32,
		.tid = (__u32)id,
	};

	bpf_map_update_elem(&in_flight, &key, &v, BPF_ANY);
	return 0;
}

static __always_inline int on_complete(struct request *rq, int error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct issue *start = bpf_map_lookup_elem(&in_flight, &key);
	struct block_rq_event *e;
	struct gendisk *disk;
	struct ring_ref r;

	/* Issued before we attached, or a second partial completion: skip. */
	if (!start)
		return 0;
	e = ring_reserve(&r, sizeof(*e));
	if (!e)
		goto out;
	ring_header(&e->h, EV_BLOCK_RQ, sizeof(*e));
	e->h.tgid = start->tgid;
	e->h.tid = start->tid;
	disk = request_disk(rq);
	e->major = BPF_CORE_READ(disk, major);
	e->minor = BPF_CORE_READ(disk, first_minor);
	e->op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	e->bytes = nr_bytes;
	e->latency_ns = e->h.ts_ns - start->ts_ns;
	e->error = error;
	e->pad = 0;
	ring_submit(&r, e, sizeof(*e));
out:
	bpf_map_delete_elem(&in_flight, &key);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	return on_issue(rq);
}

/*
 * Before v5.11 (commit a54895fa057c "block: remove the request_queue to
 * argument request based tracepoints") the request was the second argument.
 * Userspace loads exactly one of the two, from the prototype in BTF.
 */
SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue_legacy, struct request_queue *q, struct request *rq)
{
	return on_issue(rq);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
