/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topology: which online CPUs belong to which NUMA node, from libnuma, or
 * injected as a string ("0:0-3;1:4-7,12") so multi-node logic can be tested
 * on a one-node machine.
 */
#ifndef NOVAMON_TOPOLOGY_H
#define NOVAMON_TOPOLOGY_H

#include <stddef.h>

#define TOPOLOGY_MAX_CPUS 4096 /* CPU ids are in [0, TOPOLOGY_MAX_CPUS) */
#define TOPOLOGY_MAX_NODES 1024 /* node ids are in [0, TOPOLOGY_MAX_NODES) */

struct topology_node {
	int node;
	int *cpus;
	size_t ncpus;
};

struct topology {
	struct topology_node *nodes; /* only nodes with at least one online CPU */
	size_t nnodes;
	int max_cpu; /* highest online CPU id */
};

/*
 * Read the running machine: online CPUs (/sys/devices/system/cpu/online)
 * grouped by numa_node_of_cpu(); everything on node 0 when libnuma says NUMA
 * is unavailable, and a CPU libnuma cannot place (onlined after it
 * initialised) on node 0 too. Returns NULL with errno set on failure.
 */
struct topology *topology__probe(void);
/*
 * Parse "NODE:CPULIST[;NODE:CPULIST...]" (CPULIST like "0-3,8,10-11").
 * Strict: decimal digits only (no sign, no blanks), no empty node, no node
 * or CPU listed twice, ids within the limits above, nothing trailing.
 * Returns NULL with errno EINVAL on a malformed string, or a CPU listed twice;
 * ENOMEM when out of memory.
 */
struct topology *topology__parse(const char *spec);
/* Free; NULL is fine. Returns NULL. */
struct topology *topology__free(struct topology *t);
/* The node of cpu, or -1 when the CPU is not in t. */
int topology__node_of_cpu(const struct topology *t, int cpu);

/*
 * Parse a kernel CPU list ("0-3,8") into a malloc'd array, ascending; the
 * caller frees it. Same strictness as topology__parse (a trailing newline is
 * junk: strip it first); a CPU listed twice is -EINVAL. The empty string is
 * an empty list: returns 0 with *cpus NULL (sysfs lists can be empty).
 * Returns count or -EINVAL/-ENOMEM.
 */
int topology_parse_cpulist(const char *list, int **cpus);

#endif /* NOVAMON_TOPOLOGY_H */
