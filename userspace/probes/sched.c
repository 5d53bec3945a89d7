/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scheduler probe family: loader for bpf/sched.bpf.c (vCPU run-queue delay)
 * and decoder of its events.
 */
#include <errno.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "config.h"
#include "probe.h"
#include "probes.h"
#include "rings.h"
#include "bpf/sched.h"
#include "bpf/sched.skel.h"
#include "shard.h"
#include "spans/span_ring.h"

#define FAMILY "sched"

struct sched_probe {
	struct sched_bpf *skel;
	struct bpf_link *links[PROBE_MAX_LINKS];
	int nlinks;
};

int sched_probe__open(struct probe_env *env, struct sched_probe **out)
{
	struct sched_probe *p;
	int err;

	if (!env->vmlinux_btf) {
		probe_report__add(
			env->report, FAMILY, "sched_switch", "sched_switch", false, "%s",
			"no kernel BTF (/sys/kernel/btf/vmlinux): need CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->skel = sched_bpf__open();
	if (!p->skel) {
		err = -errno;
		goto err_free;
	}
	err = rings__adopt(env->rings, p->skel->obj);
	if (err)
		goto err_free;
	p->skel->rodata->wakeup_bytes = env->cfg->wakeup_bytes;
	/* The vCPU threads to time are the ones the KVM probe saw enter KVM_RUN. */
	if (env->vcpu_of_tid_fd >= 0) {
		err = bpf_map__reuse_fd(p->skel->maps.vcpu_of_tid, env->vcpu_of_tid_fd);
		if (err)
			goto err_free;
	}
	err = sched_bpf__load(p->skel);
	if (err)
		goto err_free;
	if (env->vcpu_of_tid_fd < 0)
		env->vcpu_of_tid_fd = bpf_map__fd(p->skel->maps.vcpu_of_tid);
	p->nlinks = probe_attach_all(env, FAMILY, p->skel->obj, p->links, PROBE_MAX_LINKS);
	*out = p;
	return 0;

err_free:
	sched_probe__destroy(p);
	return err;
}

struct sched_probe *sched_probe__destroy(struct sched_probe *p)
{
	if (!p)
		return NULL;
	probe_links_destroy(p->links, p->nlinks);
	sched_bpf__destroy(p->skel);
	free(p);
	return NULL;
}

int sched_probe__handle(struct shard_table *t, const struct event_header *h, size_t size)
{
	const struct sched_delay_event *e = (const void *)h;
	struct shard_key k;
	struct shard_val *v;

	if (h->type != EV_SCHED_DELAY || size < sizeof(*e))
		return -EINVAL;
	k = (struct shard_key){ .kind = SHARD_SCHED_DELAY, .tgid = h->tgid, .tid = h->tid };
	v = shard_table__get(t, &k);
	if (v) {
		v->count++;
		v->sum += e->delay_ns;
	}
	if (t->spans && e->delay_ns >= t->spans->p.sched_delay_min_ns) {
		struct span_cand c = {
			.kind = SPAN_CAND_SCHED_DELAY,
			.tgid = h->tgid,
			.tid = h->tid,
			.vcpu = SPAN_VCPU_UNKNOWN,
			.end_ns = h->ts_ns,
			.wait = { .duration_ns = e->delay_ns },
		};

		span_ring__push(t->spans, &c);
	}
	return 0;
}
