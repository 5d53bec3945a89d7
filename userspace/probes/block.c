/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Block probe family: loader for bpf/block.bpf.c and decoder of its events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "bpf/block.h"
#include "bpf/block.skel.h"
#include "config.h"
#include "probe.h"
#include "probes.h"
#include "rings.h"
#include "shard.h"
#include "spans/span_ring.h"

#define FAMILY "block"

struct block_probe {
	struct block_bpf *skel;
	struct bpf_link *links[PROBE_MAX_LINKS];
	int nlinks;
};

/*
 * Keep exactly one of a tracepoint's two programs (the v5.11 prototype and
 * the legacy one, see block.bpf.c), or neither when the kernel lacks it
 * (optional: block_rq_insert and block_rq_merge only refine the spans).
 */
static void choose_prototype(struct probe_env *env, const char *tp, struct bpf_program *prog,
			     struct bpf_program *legacy, bool optional)
{
	int nargs = probe_btf_tp_nargs(env, tp);

	if (optional && nargs < 0) {
		probe_skip(env, FAMILY, prog, "tracepoint not in kernel BTF");
		bpf_program__set_autoload(legacy, false);
	} else if (nargs == 2) {
		probe_skip(env, FAMILY, prog, "kernel before 5.11: the legacy prototype is used");
	} else {
		bpf_program__set_autoload(legacy, false);
	}
}

int block_probe__open(struct probe_env *env, struct block_probe **out)
{
	struct block_probe *p;
	int err;

	if (!env->vmlinux_btf) {
		probe_report__add(
			env->report, FAMILY, "block_rq_issue", "block_rq_issue", false, "%s",
			"no kernel BTF (/sys/kernel/btf/vmlinux): need CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->skel = block_bpf__open();
	if (!p->skel) {
		err = -errno;
		goto err_free;
	}
	err = rings__adopt(env->rings, p->skel->obj);
	if (err)
		goto err_free;
	p->skel->rodata->wakeup_bytes = env->cfg->wakeup_bytes;

	choose_prototype(env, "block_rq_issue", p->skel->progs.block_rq_issue,
			 p->skel->progs.block_rq_issue_legacy, false);
	choose_prototype(env, "block_rq_insert", p->skel->progs.block_rq_insert,
			 p->skel->progs.block_rq_insert_legacy, true);
	choose_prototype(env, "block_rq_merge", p->skel->progs.block_rq_merge,
			 p->skel->progs.block_rq_merge_legacy, true);

	err = block_bpf__load(p->skel);
	if (err)
		goto err_free;
	p->nlinks = probe_attach_all(env, FAMILY, p->skel->obj, p->links, PROBE_MAX_LINKS);
	*out = p;
	return 0;

err_free:
	block_probe__destroy(p);
	return err;
}

struct block_probe *block_probe__destroy(struct block_probe *p)
{
	if (!p)
		return NULL;
	probe_links_destroy(p->links, p->nlinks);
	block_bpf__destroy(p->skel);
	free(p);
	return NULL;
}

int block_probe__handle(struct shard_table *t, const struct event_header *h, size_t size)
{
	const struct block_rq_event *e = (const void *)h;
	struct shard_key k;
	struct shard_val *v;

	if (h->type != EV_BLOCK_RQ || size < sizeof(*e))
		return -EINVAL;
	/* Keyed by issuing process (for per-VM I/O), not thread. */
	k = (struct shard_key){
		.kind = SHARD_BLOCK,
		.tgid = h->tgid,
		.a = e->major,
		.b = e->minor,
		.c = e->op,
	};
	v = shard_table__get(t, &k);
	if (v) {
		v->count++;
		v->sum += e->bytes;
		shard_val__observe(v, e->latency_ns);
	}
	if (t->spans) {
		struct span_cand c = {
			.kind = SPAN_CAND_BLOCK,
			.tgid = h->tgid,
			.tid = h->tid,
			.vcpu = SPAN_VCPU_UNKNOWN,
			.end_ns = h->ts_ns,
			.block = {
				.sector = e->sector,
				.queue_ns = e->queue_ns,
				.service_ns = e->latency_ns,
				.bytes = e->bytes,
				.major = e->major,
				.minor = e->minor,
				.op = (uint16_t)e->op,
				.error = (int16_t)e->error,
			},
		};

		span_ring__push(t->spans, &c);
	}
	return 0;
}

/* REQ_OP_* from include/linux/blk_types.h. */
const char *block_op_name(uint32_t op, char *buf, size_t len)
{
	switch (op) {
	case 0:
		return "read";
	case 1:
		return "write";
	case 2:
		return "flush";
	case 3:
		return "discard";
	case 5:
		return "secure_erase";
	case 7:
		return "zone_append";
	case 9:
		return "write_zeroes";
	case 10:
		return "zone_open";
	case 11:
		return "zone_close";
	case 12:
		return "zone_finish";
	case 13:
		return "zone_reset";
	case 15:
		return "zone_reset_all";
	case 34:
		return "drv_in";
	case 35:
		return "drv_out";
	default:
		snprintf(buf, len, "op_%u", op);
		return buf;
	}
}
