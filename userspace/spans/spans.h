/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spans: the span synthesizer. Turns the span candidates the capture
 * workers push (span_ring.h) into OpenTelemetry spans (span.h), and hands
 * them, with the daemon's log records (logq.h), to its sinks (the OTLP
 * exporter, the spans file).
 *
 * One thread, every interval_ms (default 50), does spans__poll():
 *   - drains every worker's ring;
 *   - attributes each candidate to its VM through a registry of its own
 *     (tgid -> VM; the daemon's registry belongs to the tick thread);
 *   - keeps every error and every slow candidate (duration above
 *     slow_factor x the baseline of its device and op, or of its kind), and
 *     samples the rest to budget_per_second, shared fairly between kinds;
 *     each span carries novamon.sample_rate = 1/p (1.0 when kept), so counts
 *     re-weight exactly;
 *   - builds the span: random 128-bit trace and 64-bit span IDs (never all
 *     zero), OpenTelemetry attribute names where they exist, novamon.* ones
 *     elsewhere. A candidate of a VM's thread is a child of that VM's
 *     "vm activity" span for the current period (vm_period_seconds, aligned
 *     to the wall clock), which is emitted once the period is over;
 *   - VM lifecycle: from libvirt's lifecycle events where libvirtd answers
 *     (vm define/start/pause/resume/shutdown/destroy/crash/undefine), from
 *     KVM processes appearing and disappearing otherwise ("vm start",
 *     "vm shutdown"), with vm.appeared / vm.disappeared log records that
 *     carry the lifecycle span's IDs;
 *   - drains the log queue to the sinks.
 *
 * Span names and attributes: see the table at the top of spans.c.
 *
 * Counters (spans__tick_sink's describe hook): novamon_spans_synthesized_total
 * {kind}, novamon_spans_sampled_out_total{kind}, novamon_spans_dropped_total
 * {reason="ring_full"}, novamon_spans_sample_probability{kind},
 * novamon_spans_storm_untracked_exits_total, novamon_logs_exported_total,
 * novamon_logs_dropped_total.
 */
#ifndef NOVAMON_SPANS_H
#define NOVAMON_SPANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "span.h"
#include "span_ring.h"
#include "tick.h"

struct config;
struct logq;
struct vmtrace;
struct workers;

/* Where finished spans and log records go. Called on the synthesizer's thread. */
struct spans_sink {
	const char *name;
	void (*span)(void *ctx, const struct span *s); /* may be NULL */
	void (*log)(void *ctx, const struct log_record *r); /* may be NULL */
	void (*flush)(void *ctx); /* after each round; may be NULL */
	void *ctx;
};

#define SPANS_MAX_SINKS 4
#define SPANS_MAX_RINGS 64

struct spans_opts {
	uint32_t budget_per_second; /* sampled spans per second; 0: 1000 */
	uint32_t slow_factor; /* slow = above factor x baseline; 0: 4 */
	uint32_t vm_period_seconds; /* "vm activity" period; 0: 10 */
	uint32_t interval_ms; /* thread's round period; 0: 50 */
	struct span_ring_params ring; /* the workers' rings; storm_factor 0: slow_factor */
	struct workers *workers; /* their rings are enabled and drained; may be NULL */
	struct logq *logq; /* drained to the sinks; may be NULL */
	struct vmtrace *vmtrace; /* told the span covering each VM now; may be NULL */
	const char *proc_root; /* NULL: "/proc" */
	const char *sys_root; /* device names under <sys_root>/dev/block; NULL: "/sys" */
	const char *libvirt_uri; /* NULL: the registry's default */
	int vcpu_map_fd; /* tid -> vCPU id BPF map (capture's), or -1 */
	bool no_lifecycle; /* no VM lifecycle spans nor vm.* logs (benchmarks) */
	struct spans_sink sinks[SPANS_MAX_SINKS];
	size_t nsinks;
};

struct spans;

/* Fill o with defaults and the config's spans: section. */
void spans_opts__init(struct spans_opts *o, const struct config *cfg);

/*
 * Create a synthesizer: its registry, tables, and one ring per worker of
 * o->workers (worker__enable_spans()). Nothing runs until spans__start();
 * spans__poll() may be called instead (tests, benchmarks). Returns NULL
 * with errno set.
 */
struct spans *spans__new(const struct spans_opts *o);

/*
 * Drain ring r too (tests, benchmarks: a ring not owned by a worker; the
 * caller frees it after spans__free()). Returns 0, or -ENOSPC beyond
 * SPANS_MAX_RINGS.
 */
int spans__add_ring(struct spans *s, struct span_ring *r);

/* Start the thread. Returns 0 or a negative errno. */
int spans__start(struct spans *s);

/*
 * One round at CLOCK_MONOTONIC mono_ns and wall clock real_ns (Unix ns):
 * drain, sample, emit, close finished VM periods, refresh the registry
 * (once a second), drain logs. Not to be called while the thread runs.
 * Returns the number of spans emitted.
 */
size_t spans__poll(struct spans *s, uint64_t mono_ns, uint64_t real_ns);

/*
 * Stop the thread, do a last round, emit the open "vm activity" spans,
 * flush the sinks and free everything. Call it before the workers are
 * stopped (capture__stop()): their rings are drained. NULL is fine.
 * Returns NULL.
 */
struct spans *spans__free(struct spans *s);

/* The tick sink exporting the counters above (describe only). */
struct tick_sink spans__tick_sink(struct spans *s);

struct spans_stats {
	uint64_t synthesized[8]; /* by enum spans_kind */
	uint64_t sampled_out[8];
	uint64_t ring_dropped;
	uint64_t storm_untracked;
	uint64_t logs_exported;
	uint64_t logs_dropped;
};

enum spans_kind {
	SPANS_KIND_BLOCK,
	SPANS_KIND_KVM_STORM,
	SPANS_KIND_KVM_HALT,
	SPANS_KIND_SCHED_DELAY,
	SPANS_KIND_VM_ACTIVITY,
	SPANS_KIND_VM_LIFECYCLE,
	SPANS_KIND_MAX,
};

/* The {kind} label value of k: "block", "kvm_exit_storm", ... */
const char *spans_kind_name(enum spans_kind k);

struct probe_report;

/*
 * Queue one log record per probe program of rep to q: capture.attach
 * (INFO) for each attached one, or, attached false, capture.detach (INFO)
 * for each attached one (at shutdown) and, attached true, a WARN
 * capture.detach for each that could not attach, with the reason.
 * Attributes novamon.probe.family, novamon.probe.program,
 * novamon.probe.tracepoint. q NULL is fine.
 */
void spans_log_capture(struct logq *q, const struct probe_report *rep, bool attached);

/* Counters so far (any thread). */
void spans__stats(const struct spans *s, struct spans_stats *st);

#endif /* NOVAMON_SPANS_H */
