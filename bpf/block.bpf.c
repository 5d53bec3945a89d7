// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block request latency: block_rq_insert (a request queued to the I/O
 * scheduler) and block_rq_issue (sent to the driver) record the start of
 * each phase, block_rq_complete emits one event per request with its queue
 * and service times, size, sector, op and device. Requests that skip the
 * scheduler (no elevator, or issued directly) have no insert: queue time 0.
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
	__u64 ts_ns; /* block_rq_issue; 0 while only inserted */
	__u64 insert_ns; /* block_rq_insert; 0 when never inserted */
	__u32 tgid; /* the task that inserted, else the one that issued */
	__u32 tid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct request * */
	__type(value, struct issue);
} in_flight SEC(".maps");

/*
 * A request inserted into the scheduler queue (again, when requeued: its
 * queue time then counts from the last insert).
 */
static __always_inline int on_insert(struct request *rq)
{
	__u64 key = (__u64)rq, id = bpf_get_current_pid_tgid();
	struct issue v = {
		.insert_ns = bpf_ktime_get_ns(),
		.tgid = id >> 32,
		.tid = (__u32)id,
	};

	bpf_map_update_elem(&in_flight, &key, &v, BPF_ANY);
	return 0;
}

/*
 * Dispatch to the driver. An inserted request is often dispatched from
 * kblockd or another submitter's context: the inserting task stays the owner.
 */
static __always_inline int on_issue(struct request *rq)
{
	__u64 key = (__u64)rq, id = bpf_get_current_pid_tgid();
	struct issue *cur = bpf_map_lookup_elem(&in_flight, &key);
	struct issue v = {
		.ts_ns = bpf_ktime_get_ns(),
		.tgid = id >> 32,
		.tid = (__u32)id,
	};

	if (cur && cur->insert_ns) {
		cur->ts_ns = v.ts_ns;
		return 0;
	}
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

	/*
	 * Issued before we attached, a second partial completion, or completed
	 * without an issue (inserted, then failed in the queue): skip.
	 */
	if (!start || !start->ts_ns)
		goto out;
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
	e->sector = BPF_CORE_READ(rq, __sector);
	e->queue_ns = start->insert_ns ? start->ts_ns - start->insert_ns : 0;
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

SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert, struct request *rq)
{
	return on_insert(rq);
}

/* The same prototype change as block_rq_issue (commit a54895fa057c). */
SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert_legacy, struct request_queue *q, struct request *rq)
{
	return on_insert(rq);
}

/*
 * A queued request merged into another is freed without a completion: forget
 * it, or a later request at the same address would inherit its insert time.
 */
static __always_inline int on_merge(struct request *rq)
{
	__u64 key = (__u64)rq;

	bpf_map_delete_elem(&in_flight, &key);
	return 0;
}

SEC("tp_btf/block_rq_merge")
int BPF_PROG(block_rq_merge, struct request *rq)
{
	return on_merge(rq);
}

SEC("tp_btf/block_rq_merge")
int BPF_PROG(block_rq_merge_legacy, struct request_queue *q, struct request *rq)
{
	return on_merge(rq);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
