/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe: what every probe family's loader shares: the environment it loads
 * into (rings, settings, kernel facts) and the report of which programs got
 * attached, and why the others did not. Each family lives in
 * userspace/probes/<family>.c next to its BPF side bpf/<family>.bpf.c.
 */
#ifndef NOVAMON_PROBE_H
#define NOVAMON_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_object;
struct bpf_link;
struct bpf_program;
struct btf;
struct config;
struct rings;
struct shard_table;
struct event_header;

#define PROBE_MAX_STATUS 48

struct probe_status {
	char family[8];
	char program[32];
	char tracepoint[48];
	bool attached;
	char reason[192]; /* why it is not attached; "" when attached */
};

struct probe_report {
	struct probe_status items[PROBE_MAX_STATUS];
	size_t n;
};

struct probe_env {
	const struct rings *rings;
	const struct config *cfg;
	struct btf *vmlinux_btf; /* NULL when /sys/kernel/btf/vmlinux is missing */
	const char *tracefs; /* events dir of a mounted tracefs, NULL if none */
	struct probe_report *report;
	int vcpu_of_tid_fd; /* set by the KVM loader, adopted by sched; -1 until then */
};

/*
 * Fill env's kernel facts: vmlinux BTF, and a tracefs mount (mounting
 * tracefs at /sys/kernel/tracing when it is not mounted and we may).
 * Returns 0; problems are left for the loaders to report per program.
 */
int probe_env__init(struct probe_env *env);
void probe_env__destroy(struct probe_env *env);

/* Record a status line. Returns it (or NULL when the report is full). */
struct probe_status *probe_report__add(struct probe_report *rep, const char *family,
				       const char *program, const char *tracepoint, bool attached,
				       const char *reason_fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Whether the kernel has the tracepoint category/name (tracefs, else BTF). */
bool probe_tracepoint_exists(const struct probe_env *env, const char *category, const char *name);
/* Whether vmlinux BTF has a function or type of that name and kind. */
bool probe_btf_has(const struct probe_env *env, const char *name, int kind);
/* Number of arguments of tracepoint name's BTF prototype (btf_trace_<name>), or -1. */
int probe_btf_tp_nargs(const struct probe_env *env, const char *name);

/*
 * Disable autoload of prog and record it as not attached with reason.
 */
void probe_skip(struct probe_env *env, const char *family, struct bpf_program *prog,
		const char *reason);

/*
 * Attach every program of obj that is set to autoload, one by one, so one
 * missing tracepoint does not take the family down; record each outcome and
 * keep the links in links[max_links]. Returns the number attached.
 */
int probe_attach_all(struct probe_env *env, const char *family, struct bpf_object *obj,
		     struct bpf_link **links, int max_links);
/* Detach links[0..n). */
void probe_links_destroy(struct bpf_link **links, int n);

#define PROBE_MAX_LINKS 16

/* A human explanation of a load/attach errno (EPERM: need root/CAP_BPF, ...). */
const char *probe_strerror(int err);

#endif /* NOVAMON_PROBE_H */
