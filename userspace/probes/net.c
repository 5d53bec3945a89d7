/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network probe family: loader for bpf/net.bpf.c and reader of its per-CPU
 * per-interface counters (no ring events; see bpf/net.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "config.h"
#include "bpf/net.h"
#include "bpf/net.skel.h"
#include "probe.h"
#include "probes.h"

#define FAMILY "net"

struct net_probe {
	struct net_bpf *skel;
	struct bpf_link *links[PROBE_MAX_LINKS];
	int nlinks;
	int nr_cpus;
	struct net_counts *vals; /* [nr_cpus] scratch for lookups */
};

int net_probe__open(struct probe_env *env, struct net_probe **out)
{
	struct net_probe *p;
	int err;

	if (!env->vmlinux_btf) {
		probe_report__add(
			env->report, FAMILY, "net_dev_xmit", "net_dev_xmit", false, "%s",
			"no kernel BTF (/sys/kernel/btf/vmlinux): need CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->nr_cpus = libbpf_num_possible_cpus();
	p->vals = calloc(p->nr_cpus > 0 ? p->nr_cpus : 1, sizeof(*p->vals));
	if (!p->vals) {
		err = -ENOMEM;
		goto err_free;
	}
	p->skel = net_bpf__open();
	if (!p->skel) {
		err = -errno;
		goto err_free;
	}
	err = bpf_map__set_max_entries(p->skel->maps.net_counts, env->cfg->net_max_interfaces);
	if (err)
		goto err_free;
	err = net_bpf__load(p->skel);
	if (err)
		goto err_free;
	p->nlinks = probe_attach_all(env, FAMILY, p->skel->obj, p->links, PROBE_MAX_LINKS);
	*out = p;
	return 0;

err_free:
	net_probe__destroy(p);
	return err;
}

struct net_probe *net_probe__destroy(struct net_probe *p)
{
	if (!p)
		return NULL;
	probe_links_destroy(p->links, p->nlinks);
	net_bpf__destroy(p->skel);
	free(p->vals);
	free(p);
	return NULL;
}

int net_probe__read(struct net_probe *p,
		    void (*fn)(const struct net_key *key, const char *name, uint64_t packets,
			       uint64_t bytes, void *ctx),
		    void *ctx, uint64_t *overflow)
{
	int fd = bpf_map__fd(p->skel->maps.net_counts);
	struct net_key key, next, *prev = NULL;
	uint64_t ovf[p->nr_cpus];
	__u32 zero = 0;
	int cpu;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		uint64_t packets = 0, bytes = 0;
		char name[NET_IFNAMSIZ + 1] = "";

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, p->vals))
			continue; /* deleted meanwhile */
		for (cpu = 0; cpu < p->nr_cpus; cpu++) {
			packets += p->vals[cpu].packets;
			bytes += p->vals[cpu].bytes;
			if (!name[0] && p->vals[cpu].name[0])
				memcpy(name, p->vals[cpu].name, NET_IFNAMSIZ);
		}
		fn(&key, name, packets, bytes, ctx);
	}
	*overflow = 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.net_overflow), &zero, ovf))
		for (cpu = 0; cpu < p->nr_cpus; cpu++)
			*overflow += ovf[cpu];
	return 0;
}

int net_probe__forget(struct net_probe *p, const struct net_key *key)
{
	return bpf_map_delete_elem(bpf_map__fd(p->skel->maps.net_counts), key) ? -errno : 0;
}
