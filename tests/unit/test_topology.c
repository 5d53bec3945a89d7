/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topology: the CPU-list and layout parsers (good and malformed input), the
 * probe of this machine (one NUMA node here), and topology__node_of_cpu.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "topology.h"

static void assert_cpulist(const char *list, const int *want, int nwant)
{
	int *cpus = NULL;
	int n, i;

	n = topology_parse_cpulist(list, &cpus);
	cr_assert_eq(n, nwant, "\"%s\": got %d cpus, want %d", list, n, nwant);
	for (i = 0; i < n; i++)
		cr_assert_eq(cpus[i], want[i], "\"%s\": cpus[%d] = %d, want %d", list, i, cpus[i],
			     want[i]);
	free(cpus);
}

static void assert_bad_cpulist(const char *list)
{
	int *cpus = (int *)&cpus; /* must come back NULL */
	int n;

	n = topology_parse_cpulist(list, &cpus);
	cr_assert_eq(n, -EINVAL, "\"%s\" accepted (%d)", list, n);
	cr_assert_null(cpus);
}

static void assert_bad_spec(const char *spec)
{
	struct topology *t;

	errno = 0;
	t = topology__parse(spec);
	cr_assert_null(t, "\"%s\" accepted", spec);
	cr_assert_eq(errno, EINVAL, "\"%s\": errno %d", spec, errno);
}

Test(topology, cpulist_good)
{
	assert_cpulist("0", (int[]){ 0 }, 1);
	assert_cpulist("0-3", (int[]){ 0, 1, 2, 3 }, 4);
	assert_cpulist("0-3,8,10-11", (int[]){ 0, 1, 2, 3, 8, 10, 11 }, 7);
	assert_cpulist("10-11,0,5-5", (int[]){ 0, 5, 10, 11 }, 4); /* sorted on output */
	assert_cpulist("4095", (int[]){ 4095 }, 1);
	assert_cpulist("", NULL, 0);
}

Test(topology, cpulist_full_range)
{
	int *cpus = NULL;
	int n, i;

	n = topology_parse_cpulist("0-4095", &cpus);
	cr_assert_eq(n, TOPOLOGY_MAX_CPUS);
	for (i = 0; i < n; i++)
		cr_assert_eq(cpus[i], i);
	free(cpus);
}

Test(topology, cpulist_bad)
{
	assert_bad_cpulist("0-3\n"); /* callers strip sysfs's newline */
	assert_bad_cpulist("-1");
	assert_bad_cpulist("0,-1");
	assert_bad_cpulist("3-1");
	assert_bad_cpulist("0-3,2");
	assert_bad_cpulist("1,1");
	assert_bad_cpulist("0,");
	assert_bad_cpulist(",0");
	assert_bad_cpulist("0,,1");
	assert_bad_cpulist("0-");
	assert_bad_cpulist("-");
	assert_bad_cpulist("0 ,1");
	assert_bad_cpulist(" 0");
	assert_bad_cpulist("+1");
	assert_bad_cpulist("0x1");
	assert_bad_cpulist("a");
	assert_bad_cpulist("4096");
	assert_bad_cpulist("0-99999999999999999999");
	assert_bad_cpulist("0-7:2/4"); /* kernel stride syntax: not supported */
	cr_assert_eq(topology_parse_cpulist(NULL, NULL), -EINVAL);
}

Test(topology, parse_two_nodes_sorted)
{
	struct topology *t;

	t = topology__parse("1:4-7,12;0:3,0-2");
	cr_assert_not_null(t);
	cr_assert_eq(t->nnodes, 2);
	cr_assert_eq(t->max_cpu, 12);
	cr_assert_eq(t->nodes[0].node, 0);
	cr_assert_eq(t->nodes[0].ncpus, 4);
	cr_assert_arr_eq(t->nodes[0].cpus, ((int[]){ 0, 1, 2, 3 }), 4 * sizeof(int));
	cr_assert_eq(t->nodes[1].node, 1);
	cr_assert_eq(t->nodes[1].ncpus, 5);
	cr_assert_arr_eq(t->nodes[1].cpus, ((int[]){ 4, 5, 6, 7, 12 }), 5 * sizeof(int));

	cr_assert_eq(topology__node_of_cpu(t, 0), 0);
	cr_assert_eq(topology__node_of_cpu(t, 3), 0);
	cr_assert_eq(topology__node_of_cpu(t, 4), 1);
	cr_assert_eq(topology__node_of_cpu(t, 12), 1);
	cr_assert_eq(topology__node_of_cpu(t, 8), -1);
	cr_assert_eq(topology__node_of_cpu(t, 13), -1);
	cr_assert_eq(topology__node_of_cpu(t, -1), -1);
	cr_assert_null(topology__free(t));
}

Test(topology, parse_sparse_nodes)
{
	struct topology *t;

	t = topology__parse("3:1;0:0");
	cr_assert_not_null(t);
	cr_assert_eq(t->nnodes, 2);
	cr_assert_eq(t->nodes[0].node, 0);
	cr_assert_eq(t->nodes[1].node, 3);
	cr_assert_eq(topology__node_of_cpu(t, 1), 3);
	topology__free(t);

	t = topology__parse("0:0");
	cr_assert_not_null(t);
	cr_assert_eq(t->nnodes, 1);
	cr_assert_eq(t->max_cpu, 0);
	topology__free(t);
}

Test(topology, parse_bad)
{
	assert_bad_spec("");
	assert_bad_spec("0");
	assert_bad_spec("0:"); /* empty node */
	assert_bad_spec("0:0-3;"); /* trailing separator */
	assert_bad_spec(";0:0");
	assert_bad_spec("0:0-3;1:"); /* empty node */
	assert_bad_spec("0:0-3;1:3"); /* CPU on two nodes */
	assert_bad_spec("0:0-3;1:4,4");
	assert_bad_spec("0:0;0:1"); /* node twice */
	assert_bad_spec("-1:0");
	assert_bad_spec("0:-1");
	assert_bad_spec("0:0-3 ");
	assert_bad_spec("0:0-3x");
	assert_bad_spec(" 0:0");
	assert_bad_spec("0 :0");
	assert_bad_spec("0::0");
	assert_bad_spec("a:0");
	assert_bad_spec("1024:0");
	assert_bad_spec("0:4096");
	assert_bad_spec("0:0,1;;1:2");
	assert_bad_spec(NULL);
}

Test(topology, free_null)
{
	cr_assert_null(topology__free(NULL));
	cr_assert_eq(topology__node_of_cpu(NULL, 0), -1);
}

Test(topology, probe_this_machine)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	struct topology *t;
	size_t i, total = 0;
	int cpu;

	t = topology__probe();
	cr_assert_not_null(t, "topology__probe: errno %d", errno);
	/* Facts of this machine kind (ENVIRONMENT.md): one NUMA node. */
	cr_assert_eq(t->nnodes, 1);
	cr_assert_eq(t->nodes[0].node, 0);
	cr_assert_geq(t->nodes[0].ncpus, 1);
	for (i = 0; i < t->nnodes; i++) {
		total += t->nodes[i].ncpus;
		for (size_t j = 1; j < t->nodes[i].ncpus; j++)
			cr_assert_lt(t->nodes[i].cpus[j - 1], t->nodes[i].cpus[j]);
	}
	cr_assert_eq((long)total, online);
	cr_assert_geq(t->max_cpu, (int)total - 1);
	cr_assert_eq(topology__node_of_cpu(t, t->nodes[0].cpus[0]), 0);
	cr_assert_eq(topology__node_of_cpu(t, t->max_cpu), 0);
	cr_assert_eq(topology__node_of_cpu(t, t->max_cpu + 1), -1);

	cpu = sched_getcpu();
	cr_assert_geq(cpu, 0);
	cr_assert_eq(topology__node_of_cpu(t, cpu), 0);
	topology__free(t);
}
