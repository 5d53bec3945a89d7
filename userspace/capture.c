/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "capture.h"
#include "config.h"
#include "log.h"
#include "probes/probes.h"
#include "rings.h"
#include "topology.h"
#include "worker.h"

/* libbpf's own messages go to our log at debug level; we report outcomes. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level == LIBBPF_DEBUG && log_get_level() < LOG_LVL_DEBUG)
		return 0;
	if (log_get_level() < LOG_LVL_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	log_debug("libbpf: %s", line);
	return 0;
}

static void family_failed(struct capture *cap, const char *family, int err)
{
	size_t i;

	/* A family whose programs already have a status line explained itself. */
	for (i = 0; i < cap->report.n; i++)
		if (!strcmp(cap->report.items[i].family, family))
			return;
	probe_report__add(&cap->report, family, "*", "*", false, "load failed: %s",
			  probe_strerror(err));
}

struct capture *capture__start(const struct config *cfg)
{
	struct capture *cap;
	int err;

	cap = calloc(1, sizeof(*cap));
	if (!cap)
		return NULL;
	cap->vcpu_map_fd = -1;
	libbpf_set_print(libbpf_print);

	cap->topo = cfg->topology[0] ? topology__parse(cfg->topology) : topology__probe();
	if (!cap->topo) {
		err = errno;
		free(cap);
		errno = err;
		return NULL;
	}
	if (!cfg->capture_enabled) {
		snprintf(cap->error, sizeof(cap->error), "capture disabled in the configuration");
		return cap;
	}
	if (geteuid() != 0)
		log_warn(
			"not running as root: capture needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)");

	probe_env__init(&cap->env);
	cap->env.cfg = cfg;
	cap->env.report = &cap->report;
	if (!cap->env.vmlinux_btf)
		log_warn(
			"no kernel BTF at /sys/kernel/btf/vmlinux: CO-RE probes cannot load (kernel needs CONFIG_DEBUG_INFO_BTF=y)");
	if (!cap->env.tracefs)
		log_warn(
			"tracefs is not available (not mounted, or not readable without root): KVM tracepoints cannot attach (as root: mount -t tracefs nodev /sys/kernel/tracing)");

	cap->rings = rings__new(cap->topo, cfg->ring_bytes);
	if (!cap->rings) {
		err = errno;
		snprintf(cap->error, sizeof(cap->error), "cannot create BPF ring buffers: %s",
			 probe_strerror(err));
		return cap;
	}
	cap->env.rings = cap->rings;

	/* kvm before sched: sched adopts the KVM probe's vCPU thread map. */
	if (cfg->probes & CONFIG_PROBE_KVM) {
		err = kvm_probe__open(&cap->env, &cap->kvm);
		if (err)
			family_failed(cap, "kvm", err);
	}
	if (cfg->probes & CONFIG_PROBE_BLOCK) {
		err = block_probe__open(&cap->env, &cap->block);
		if (err)
			family_failed(cap, "block", err);
	}
	if (cfg->probes & CONFIG_PROBE_NET) {
		err = net_probe__open(&cap->env, &cap->net);
		if (err)
			family_failed(cap, "net", err);
	}
	if (cfg->probes & CONFIG_PROBE_SCHED) {
		err = sched_probe__open(&cap->env, &cap->sched);
		if (err)
			family_failed(cap, "sched", err);
	}
	cap->vcpu_map_fd = cap->env.vcpu_of_tid_fd;

	if (!capture__running(cap)) {
		snprintf(cap->error, sizeof(cap->error), "no probe could be attached (see probes)");
		return cap;
	}
	cap->workers =
		workers__start(cap->topo, cap->rings, cfg->shard_entries, cfg->poll_interval_ms);
	if (!cap->workers)
		snprintf(cap->error, sizeof(cap->error), "cannot start capture workers: %s",
			 strerror(errno));
	return cap;
}

bool capture__running(const struct capture *cap)
{
	size_t i;

	for (i = 0; i < cap->report.n; i++)
		if (cap->report.items[i].attached)
			return true;
	return false;
}

struct capture *capture__stop(struct capture *cap)
{
	if (!cap)
		return NULL;
	/* Detach first so nothing is produced into rings nobody reads. */
	cap->sched = sched_probe__destroy(cap->sched);
	cap->net = net_probe__destroy(cap->net);
	cap->block = block_probe__destroy(cap->block);
	cap->kvm = kvm_probe__destroy(cap->kvm);
	cap->workers = workers__stop(cap->workers);
	cap->rings = rings__free(cap->rings);
	probe_env__destroy(&cap->env);
	cap->topo = topology__free(cap->topo);
	free(cap);
	return NULL;
}
