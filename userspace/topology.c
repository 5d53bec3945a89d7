/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topology: online CPUs grouped by NUMA node. See topology.h for the
 * contracts.
 *
 * Both constructors reduce their input to (node, cpu) pairs and hand them to
 * topology_build(), so the probed and the injected layouts have the same
 * shape: nodes sorted by id, each with its CPUs ascending, no CPU twice.
 */
#include <errno.h>
#include <numa.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topology.h"

#define TOPOLOGY_ONLINE_PATH "/sys/devices/system/cpu/online"

struct topology_pair {
	int node;
	int cpu;
};

/*
 * Parse a decimal number of at most max (inclusive) at *s; digits only, no
 * sign, no blanks. Advances *s past the digits. Returns 0 or -EINVAL.
 */
static int topology_parse_num(const char **s, int max, int *out)
{
	const char *p = *s;
	long v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > max)
			return -EINVAL;
		p++;
	}
	*s = p;
	*out = (int)v;
	return 0;
}

/*
 * Parse the CPU list that starts at list and ends at end (exclusive, so a
 * caller can parse a slice of a larger string) into a sorted, malloc'd array.
 * Returns the count, or -EINVAL/-ENOMEM.
 */
static int topology_parse_cpulist_range(const char *list, const char *end, int **cpus)
{
	uint64_t seen[TOPOLOGY_MAX_CPUS / 64] = { 0 };
	const char *p = list;
	int *out = NULL;
	int count = 0;
	int i, n;

	*cpus = NULL;
	if (p == end)
		return 0;

	for (;;) {
		int lo, hi;

		if (topology_parse_num(&p, TOPOLOGY_MAX_CPUS - 1, &lo) || p > end)
			return -EINVAL;
		hi = lo;
		if (p < end && *p == '-') {
			p++;
			if (topology_parse_num(&p, TOPOLOGY_MAX_CPUS - 1, &hi) || p > end)
				return -EINVAL;
			if (hi < lo)
				return -EINVAL;
		}
		for (i = lo; i <= hi; i++) {
			if (seen[i / 64] & (1ULL << (i % 64)))
				return -EINVAL;
			seen[i / 64] |= 1ULL << (i % 64);
			count++;
		}
		if (p == end)
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}

	out = malloc(sizeof(*out) * count);
	if (!out)
		return -ENOMEM;
	for (i = 0, n = 0; i < TOPOLOGY_MAX_CPUS && n < count; i++)
		if (seen[i / 64] & (1ULL << (i % 64)))
			out[n++] = i;
	*cpus = out;
	return count;
}

int topology_parse_cpulist(const char *list, int **cpus)
{
	if (!list || !cpus)
		return -EINVAL;
	return topology_parse_cpulist_range(list, list + strlen(list), cpus);
}

static int topology_pair_cmp(const void *a, const void *b)
{
	const struct topology_pair *x = a, *y = b;

	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	if (x->cpu != y->cpu)
		return x->cpu < y->cpu ? -1 : 1;
	return 0;
}

static int topology_int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * Build a topology from n (node, cpu) pairs; sorts pairs in place. A CPU in
 * two pairs, or outside [0, TOPOLOGY_MAX_CPUS), is -EINVAL. Returns NULL with errno set on failure.
 */
static struct topology *topology_build(struct topology_pair *pairs, size_t n)
{
	uint64_t seen[TOPOLOGY_MAX_CPUS / 64] = { 0 };
	struct topology *t = NULL;
	size_t i, start, k;
	int err;

	if (n == 0) {
		err = -EINVAL;
		goto cleanup;
	}
	qsort(pairs, n, sizeof(*pairs), topology_pair_cmp);

	t = calloc(1, sizeof(*t));
	if (!t) {
		err = -ENOMEM;
		goto cleanup;
	}
	t->max_cpu = -1;
	for (i = 0; i < n; i++) {
		int cpu = pairs[i].cpu;

		/* Each CPU list is duplicate-free; this catches a CPU on two nodes. */
		if (cpu < 0 || cpu >= TOPOLOGY_MAX_CPUS ||
		    (seen[cpu / 64] & (1ULL << (cpu % 64)))) {
			err = -EINVAL;
			goto cleanup;
		}
		seen[cpu / 64] |= 1ULL << (cpu % 64);
		if (i == 0 || pairs[i].node != pairs[i - 1].node)
			t->nnodes++;
		if (pairs[i].cpu > t->max_cpu)
			t->max_cpu = pairs[i].cpu;
	}
	t->nodes = calloc(t->nnodes, sizeof(*t->nodes));
	if (!t->nodes) {
		err = -ENOMEM;
		goto cleanup;
	}

	for (start = 0, k = 0; start < n; k++) {
		struct topology_node *node = &t->nodes[k];
		size_t end = start;

		while (end < n && pairs[end].node == pairs[start].node)
			end++;
		node->node = pairs[start].node;
		node->cpus = malloc(sizeof(*node->cpus) * (end - start));
		if (!node->cpus) {
			err = -ENOMEM;
			goto cleanup;
		}
		for (i = start; i < end; i++)
			node->cpus[node->ncpus++] = pairs[i].cpu;
		start = end;
	}

	return t;

cleanup:
	topology__free(t);
	errno = -err;
	return NULL;
}

struct topology *topology__parse(const char *spec)
{
	struct topology_pair *pairs = NULL;
	size_t npairs = 0, cap = 0;
	struct topology *t = NULL;
	const char *p = spec;
	int *cpus = NULL;
	size_t j;
	int err;

	if (!spec) {
		err = -EINVAL;
		goto cleanup;
	}

	for (;;) {
		const char *end;
		int node, n, i;

		if (topology_parse_num(&p, TOPOLOGY_MAX_NODES - 1, &node) || *p != ':') {
			err = -EINVAL;
			goto cleanup;
		}
		p++;
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		n = topology_parse_cpulist_range(p, end, &cpus);
		if (n < 0) {
			err = n;
			goto cleanup;
		}
		if (n == 0) {
			err = -EINVAL; /* "0:" or "0:;1:2" */
			goto cleanup;
		}
		/* A node named twice is ambiguous; reject rather than merge. */
		for (j = 0; j < npairs; j++) {
			if (pairs[j].node == node) {
				err = -EINVAL;
				goto cleanup;
			}
		}
		if (npairs + n > cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct topology_pair *np;

			while (ncap < npairs + n)
				ncap *= 2;
			np = realloc(pairs, ncap * sizeof(*pairs));
			if (!np) {
				err = -ENOMEM;
				goto cleanup;
			}
			pairs = np;
			cap = ncap;
		}
		for (i = 0; i < n; i++) {
			pairs[npairs].node = node;
			pairs[npairs].cpu = cpus[i];
			npairs++;
		}
		free(cpus);
		cpus = NULL;

		if (*end == '\0')
			break;
		p = end + 1; /* a trailing ';' fails the node number next */
	}

	t = topology_build(pairs, npairs);
	err = t ? 0 : -errno;

cleanup:
	free(cpus);
	free(pairs);
	if (err) {
		errno = -err;
		return NULL;
	}
	return t;
}

/* Read the online CPU list from sysfs into a sorted array; count or negative errno. */
static int topology_read_online(int **cpus)
{
	char buf[16384];
	FILE *f = NULL;
	size_t len;
	int err;

	*cpus = NULL;
	f = fopen(TOPOLOGY_ONLINE_PATH, "re");
	if (!f)
		return -errno;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f)) {
		err = -EIO;
		goto cleanup;
	}
	if (!feof(f)) {
		err = -E2BIG;
		goto cleanup;
	}
	buf[len] = '\0';
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	err = topology_parse_cpulist(buf, cpus);
	if (err == 0)
		err = -ENOENT; /* no online CPU: sysfs is not what we think */

cleanup:
	fclose(f);
	return err;
}

struct topology *topology__probe(void)
{
	struct topology_pair *pairs = NULL;
	struct topology *t = NULL;
	bool numa;
	int *cpus = NULL;
	int n, i, err;

	n = topology_read_online(&cpus);
	if (n < 0) {
		err = n;
		goto cleanup;
	}
	pairs = calloc(n, sizeof(*pairs));
	if (!pairs) {
		err = -ENOMEM;
		goto cleanup;
	}

	numa = numa_available() >= 0;
	for (i = 0; i < n; i++) {
		int node = numa ? numa_node_of_cpu(cpus[i]) : 0;

		/*
		 * libnuma snapshots the CPU-to-node map when it initialises, so
		 * a CPU onlined after that is unknown to it. The grouping only
		 * steers memory placement: put such a CPU on node 0.
		 */
		if (node < 0) {
			log_debug("topology: no NUMA node for cpu %d, using node 0", cpus[i]);
			node = 0;
		}
		pairs[i].node = node;
		pairs[i].cpu = cpus[i];
	}

	t = topology_build(pairs, n);
	err = t ? 0 : -errno;

cleanup:
	free(pairs);
	free(cpus);
	if (err) {
		errno = -err;
		return NULL;
	}
	return t;
}

struct topology *topology__free(struct topology *t)
{
	size_t i;

	if (!t)
		return NULL;
	for (i = 0; t->nodes && i < t->nnodes; i++)
		free(t->nodes[i].cpus);
	free(t->nodes);
	free(t);
	return NULL;
}

int topology__node_of_cpu(const struct topology *t, int cpu)
{
	size_t i;

	if (!t || cpu < 0)
		return -1;
	for (i = 0; i < t->nnodes; i++) {
		const struct topology_node *node = &t->nodes[i];

		if (bsearch(&cpu, node->cpus, node->ncpus, sizeof(int), topology_int_cmp))
			return node->node;
	}
	return -1;
}
