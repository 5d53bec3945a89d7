/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/events.h"
#include "rings.h"
#include "topology.h"

static int create_ring(uint64_t bytes, int node)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NUMA_NODE, .numa_node = node);

	return bpf_map_create(BPF_MAP_TYPE_RINGBUF, NULL, 0, 0, bytes, &opts);
}

struct rings *rings__new(const struct topology *topo, uint64_t ring_bytes)
{
	LIBBPF_OPTS(bpf_map_create_opts, outer_opts);
	struct rings *r;
	int template_fd = -1, err, cpu;
	size_t n, c;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->outer_fd = -1;
	r->stats_fd = -1;
	r->ring_bytes = ring_bytes;
	r->nr_cpus = libbpf_num_possible_cpus();
	if (r->nr_cpus <= 0 || r->nr_cpus > NOVAMON_MAX_CPUS) {
		err = r->nr_cpus <= 0 ? r->nr_cpus : -E2BIG;
		goto err_free;
	}
	r->ring_fd = malloc(sizeof(int) * r->nr_cpus);
	r->ring_node = malloc(sizeof(int) * r->nr_cpus);
	if (!r->ring_fd || !r->ring_node) {
		err = -ENOMEM;
		goto err_free;
	}
	for (cpu = 0; cpu < r->nr_cpus; cpu++) {
		r->ring_fd[cpu] = -1;
		r->ring_node[cpu] = -1;
	}

	/*
	 * The outer map's inner template must match the inner maps in type,
	 * size and flags (bpf_map_meta_equal), BPF_F_NUMA_NODE included.
	 */
	template_fd = create_ring(ring_bytes, 0);
	if (template_fd < 0) {
		err = template_fd;
		goto err_free;
	}
	outer_opts.inner_map_fd = template_fd;
	r->outer_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "rings", sizeof(__u32),
				     sizeof(__u32), r->nr_cpus, &outer_opts);
	if (r->outer_fd < 0) {
		err = r->outer_fd;
		goto err_free;
	}
	r->stats_fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "ring_stats", sizeof(__u32),
				     sizeof(struct ring_stats), 1, NULL);
	if (r->stats_fd < 0) {
		err = r->stats_fd;
		goto err_free;
	}
	for (n = 0; n < topo->nnodes; n++) {
		for (c = 0; c < topo->nodes[n].ncpus; c++) {
			__u32 key;

			cpu = topo->nodes[n].cpus[c];
			if (cpu < 0 || cpu >= r->nr_cpus)
				continue;
			r->ring_fd[cpu] = create_ring(ring_bytes, topo->nodes[n].node);
			if (r->ring_fd[cpu] < 0) {
				err = r->ring_fd[cpu];
				r->ring_fd[cpu] = -1;
				goto err_free;
			}
			r->ring_node[cpu] = topo->nodes[n].node;
			key = cpu;
			err = bpf_map_update_elem(r->outer_fd, &key, &r->ring_fd[cpu], BPF_ANY);
			if (err)
				goto err_free;
		}
	}
	close(template_fd);
	return r;

err_free:
	if (template_fd >= 0)
		close(template_fd);
	rings__free(r);
	errno = -err;
	return NULL;
}

struct rings *rings__free(struct rings *r)
{
	int cpu;

	if (!r)
		return NULL;
	if (r->ring_fd) {
		for (cpu = 0; cpu < r->nr_cpus; cpu++)
			if (r->ring_fd[cpu] >= 0)
				close(r->ring_fd[cpu]);
	}
	if (r->outer_fd >= 0)
		close(r->outer_fd);
	if (r->stats_fd >= 0)
		close(r->stats_fd);
	free(r->ring_fd);
	free(r->ring_node);
	free(r);
	return NULL;
}

int rings__adopt(const struct rings *r, struct bpf_object *obj)
{
	struct bpf_map *outer = bpf_object__find_map_by_name(obj, "rings");
	struct bpf_map *stats = bpf_object__find_map_by_name(obj, "ring_stats");
	int err;

	if (!outer || !stats)
		return -ENOENT;
	err = bpf_map__reuse_fd(outer, r->outer_fd);
	if (err)
		return err;
	return bpf_map__reuse_fd(stats, r->stats_fd);
}

int rings__read_stats(const struct rings *r, uint64_t *produced, uint64_t *lost)
{
	struct ring_stats *vals;
	__u32 zero = 0;
	int err, cpu;

	vals = calloc(r->nr_cpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = bpf_map_lookup_elem(r->stats_fd, &zero, vals);
	if (err) {
		err = -errno;
		goto out;
	}
	for (cpu = 0; cpu < r->nr_cpus; cpu++) {
		produced[cpu] = vals[cpu].produced;
		lost[cpu] = vals[cpu].lost;
	}
out:
	free(vals);
	return err;
}
