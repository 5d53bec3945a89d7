/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture: the kernel side of the daemon, put together. Creates the per-CPU
 * rings, loads and attaches every enabled probe family, and starts the
 * per-node workers. Whatever fails is explained (missing BTF, privileges,
 * tracefs, absent tracepoints) in the probe report; the daemon keeps serving
 * its API with whatever capture it could get, possibly none.
 */
#ifndef NOVAMON_CAPTURE_H
#define NOVAMON_CAPTURE_H

#include <stdbool.h>

#include "probes/probe.h"

struct config;
struct topology;
struct rings;
struct workers;
struct kvm_probe;
struct block_probe;
struct net_probe;
struct sched_probe;

struct capture {
	struct topology *topo;
	struct rings *rings;
	struct workers *workers;
	struct kvm_probe *kvm;
	struct block_probe *block;
	struct net_probe *net;
	struct sched_probe *sched;
	struct probe_env env;
	struct probe_report report;
	int vcpu_map_fd; /* tid -> vCPU id, shared by kvm and sched; -1 if neither loaded */
	char error[256]; /* why capture is entirely off; "" when anything runs */
};

/*
 * Start capture as cfg says. Returns a capture (possibly with nothing
 * running and error set) or NULL with errno set on allocation failure or an
 * invalid injected topology (EINVAL).
 */
struct capture *capture__start(const struct config *cfg);
/* Stop workers, detach probes, free; NULL is fine. Returns NULL. */
struct capture *capture__stop(struct capture *cap);

/* Whether any program is attached. */
bool capture__running(const struct capture *cap);

#endif /* NOVAMON_CAPTURE_H */
