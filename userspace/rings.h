/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rings: the per-CPU BPF ring buffers shared by every probe family.
 *
 * One BPF_MAP_TYPE_RINGBUF per online CPU, created on that CPU's NUMA node
 * (BPF_F_NUMA_NODE), stored in an ARRAY_OF_MAPS indexed by CPU, plus the
 * per-CPU produced/lost counters. Probe objects adopt both maps with
 * rings__adopt() before they are loaded.
 */
#ifndef NOVAMON_RINGS_H
#define NOVAMON_RINGS_H

#include <stddef.h>
#include <stdint.h>

struct bpf_object;
struct topology;

struct rings {
	int outer_fd; /* ARRAY_OF_MAPS, key = CPU */
	int stats_fd; /* PERCPU_ARRAY of struct ring_stats */
	int nr_cpus; /* possible CPUs (outer size, per-CPU value count) */
	int *ring_fd; /* [nr_cpus], -1 for CPUs without a ring (offline) */
	int *ring_node; /* [nr_cpus], NUMA node of each ring */
	uint64_t ring_bytes;
};

/*
 * Create the rings for the online CPUs of topo, ring_bytes each (a power of
 * two, at least the page size). Returns NULL with errno set; EPERM means no
 * CAP_BPF/CAP_SYS_ADMIN.
 */
struct rings *rings__new(const struct topology *topo, uint64_t ring_bytes);
/* Close every fd and free; NULL is fine. Returns NULL. */
struct rings *rings__free(struct rings *r);

/*
 * Make obj use the shared "rings" and "ring_stats" maps (bpf_map__reuse_fd)
 * Call between __open() and __load(). Returns 0 or a negative errno.
 */
int rings__adopt(const struct rings *r, struct bpf_object *obj);

/*
 * Read the per-CPU produced and lost counters into produced[nr_cpus] and
 * lost[nr_cpus]. Returns 0 or a negative errno.
 */
int rings__read_stats(const struct rings *r, uint64_t *produced, uint64_t *lost);

#endif /* NOVAMON_RINGS_H */
