/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "capture.h"
#include "config.h"
#include "bpf/kvm.h"
#include "kvmstat.h"
#include "metrics.h"
#include "bpf/net.h"
#include "probes/probes.h"
#include "registry.h"
#include "rings.h"
#include "selfstat.h"
#include "series.h"
#include "spans/vmtrace.h"
#include "taps.h"
#include "tick.h"
#include "topology.h"
#include "worker.h"

/* Series kept across ticks (cumulative). Names are API: never rename. */
enum family {
	F_KVM_USERSPACE_EXITS,
	F_KVM_PIO,
	F_KVM_MMIO,
	F_KVM_EXITS,
	F_KVM_EXIT_DURATION,
	F_KVM_EMULATED,
	F_KVM_EMULATION_FAILURES,
	F_KVM_HALT_WAKEUPS,
	F_KVM_HALTED,
	F_VCPU_RUN_DELAY,
	F_VCPU_RUN_DELAYS,
	F_BLOCK_REQUESTS,
	F_BLOCK_BYTES,
	F_BLOCK_DURATION,
	F_VM_BLOCK_REQUESTS,
	F_VM_BLOCK_BYTES,
	F_NET_PACKETS,
	F_NET_BYTES,
	F_EXPORTED_MAX,
	/*
	 * Internal, not exported: the last cumulative kernel count per net_key
	 * (value = packets, hist[0] = bytes), to turn them into deltas.
	 */
	F_NET_SEEN = F_EXPORTED_MAX,
	F_MAX,
};

static const struct {
	const char *name;
	const char *help;
	enum metric_type type;
} families[F_EXPORTED_MAX] = {
	[F_KVM_USERSPACE_EXITS] = { "novamon_kvm_userspace_exits_total",
				    "KVM_RUN returns to userspace, by KVM_EXIT reason.",
				    METRIC_COUNTER },
	[F_KVM_PIO] = { "novamon_kvm_pio_total", "Port I/O exits, by direction and port.",
			METRIC_COUNTER },
	[F_KVM_MMIO] = { "novamon_kvm_mmio_total", "MMIO accesses emulated by KVM, by direction.",
			 METRIC_COUNTER },
	[F_KVM_EXITS] = { "novamon_kvm_exits_total",
			  "Hardware VM exits (kvm_exit), by exit reason.", METRIC_COUNTER },
	[F_KVM_EXIT_DURATION] = { "novamon_kvm_exit_duration_seconds",
				  "Time from a VM exit to the next entry of that vCPU (exit handling in the kernel).",
				  METRIC_HISTOGRAM },
	[F_KVM_EMULATED] = { "novamon_kvm_emulated_instructions_total",
			     "Guest instructions emulated by KVM.", METRIC_COUNTER },
	[F_KVM_EMULATION_FAILURES] = { "novamon_kvm_emulation_failures_total",
				       "Guest instructions KVM failed to emulate.",
				       METRIC_COUNTER },
	[F_KVM_HALT_WAKEUPS] = { "novamon_kvm_halt_wakeups_total",
				 "Wake-ups of halted vCPUs; how=poll when halt-polling caught the event, block when the vCPU slept.",
				 METRIC_COUNTER },
	[F_KVM_HALTED] = { "novamon_kvm_halted_seconds_total",
			   "Time vCPUs spent halted before waking up.", METRIC_COUNTER },
	[F_VCPU_RUN_DELAY] = { "novamon_vcpu_run_delay_seconds_total",
			       "Time vCPU threads waited runnable for a host CPU (host-side steal).",
			       METRIC_COUNTER },
	[F_VCPU_RUN_DELAYS] = { "novamon_vcpu_run_delays_total",
				"Times a vCPU thread was switched in after waiting runnable.",
				METRIC_COUNTER },
	[F_BLOCK_REQUESTS] = { "novamon_block_requests_total", "Completed block requests.",
			       METRIC_COUNTER },
	[F_BLOCK_BYTES] = { "novamon_block_bytes_total", "Bytes of completed block requests.",
			    METRIC_COUNTER },
	[F_BLOCK_DURATION] = { "novamon_block_request_duration_seconds",
			       "Block request latency from issue to the device to completion.",
			       METRIC_HISTOGRAM },
	[F_VM_BLOCK_REQUESTS] = { "novamon_vm_block_requests_total",
				  "Completed block requests issued by a VM's process.",
				  METRIC_COUNTER },
	[F_VM_BLOCK_BYTES] = { "novamon_vm_block_bytes_total",
			       "Bytes of completed block requests issued by a VM's process.",
			       METRIC_COUNTER },
	[F_NET_PACKETS] = { "novamon_net_packets_total",
			    "Packets received (netif_receive_skb) or sent (net_dev_xmit) per interface.",
			    METRIC_COUNTER },
	[F_NET_BYTES] = { "novamon_net_bytes_total", "Bytes received or sent per interface.",
			  METRIC_COUNTER },
};

/* Histogram upper bounds in seconds: 2^(b+10) ns for the log2 shard buckets. */
static double hist_bounds[SHARD_HIST_BUCKETS - 1];

#define TICK_MAX_SINKS 16

struct tick {
	const struct config *cfg;
	struct tick_sink sinks[TICK_MAX_SINKS];
	size_t nsinks;
	uint64_t sink_failed[TICK_MAX_SINKS];
	struct capture *cap;
	struct registry *reg;
	struct metric_store *store;
	struct series_table *series;
	struct taps *taps;
	struct vmtrace *traces; /* the trace covering each VM, for exemplars; may be NULL */
	uint64_t start_ms;
	uint64_t ticks;
	uint64_t series_expired;
	uint64_t shard_overflow;
	uint64_t net_overflow;
	uint32_t init_netns;
	double last_tick_seconds;
	double prepare_seconds; /* of the tick__prepare() of the next tick; 0: none */
	bool prepared;
	uint64_t last_events;
	uint64_t last_ms;
	double events_per_second;
	uint64_t *produced; /* [nr_cpus] scratch */
	uint64_t *lost;
};

static uint32_t read_init_netns(void)
{
	struct stat st;

	/* The daemon's own network namespace is the host's: no netns label there. */
	if (stat("/proc/self/ns/net", &st))
		return 0;
	return (uint32_t)st.st_ino;
}

struct tick *tick__new(const struct config *cfg, struct capture *cap, struct registry *reg,
		       struct metric_store *store, const struct tick_sink *sinks, size_t nsinks)
{
	struct tick *t;
	int b, n;

	for (b = 0; b < SHARD_HIST_BUCKETS - 1; b++)
		hist_bounds[b] = (double)(1ull << (b + SHARD_HIST_MIN_SHIFT)) / 1e9;
	if (nsinks > TICK_MAX_SINKS) {
		errno = E2BIG; /* a sink cut off silently would be data lost silently */
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = cfg;
	t->cap = cap;
	t->reg = reg;
	t->store = store;
	memcpy(t->sinks, sinks, nsinks * sizeof(*sinks));
	t->nsinks = nsinks;
	t->init_netns = read_init_netns();
	t->series = series_table__new(F_MAX);
	t->taps = taps__new("/proc");
	n = cap && cap->rings ? cap->rings->nr_cpus : 1;
	t->produced = calloc(n, sizeof(uint64_t));
	t->lost = calloc(n, sizeof(uint64_t));
	if (!t->series || !t->taps || !t->produced || !t->lost) {
		tick__free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void tick__free(struct tick *t)
{
	if (!t)
		return;
	series_table__free(t->series);
	taps__free(t->taps);
	free(t->produced);
	free(t->lost);
	free(t);
}

/* Resolve the vCPU label of (tgid, tid) with the id the kernel gave, if any. */
static void vcpu_label(struct tick *t, struct metric_labels *l, uint32_t tgid, uint32_t tid,
		       uint32_t vcpu_id)
{
	int idx;

	if (vcpu_id == KVM_VCPU_UNKNOWN && t->cap && t->cap->vcpu_map_fd >= 0) {
		uint32_t id;

		if (!bpf_map_lookup_elem(t->cap->vcpu_map_fd, &tid, &id))
			vcpu_id = id;
	}
	if (vcpu_id != KVM_VCPU_UNKNOWN) {
		metric_labels__addf(l, "vcpu", "%u", vcpu_id);
		return;
	}
	idx = registry__vcpu(t->reg, tgid, tid);
	if (idx >= 0)
		metric_labels__addf(l, "vcpu", "%d", idx);
	else
		metric_labels__addf(l, "vcpu", "tid-%u", tid);
}

/* vm_tgid: the VM process of a per-VM series (its exemplars' trace), or 0. */
static struct series *series_at(struct tick *t, unsigned int family, const struct metric_labels *l,
				uint32_t vm_tgid, uint64_t now_ms)
{
	struct series *s;

	if (l->truncated)
		return NULL;
	s = series_table__get(t->series, family, l->buf, now_ms);
	if (s) {
		s->last_ms = now_ms;
		s->vm_tgid = vm_tgid;
	}
	return s;
}

static void add_count(struct tick *t, unsigned int family, const struct metric_labels *l,
		      uint32_t vm_tgid, double delta, uint64_t now_ms)
{
	struct series *s = series_at(t, family, l, vm_tgid, now_ms);

	if (s) {
		s->value += delta;
		s->tick_delta += delta;
	}
}

static void add_hist(struct tick *t, unsigned int family, const struct metric_labels *l,
		     uint32_t vm_tgid, const struct shard_val *v, uint64_t now_ms)
{
	struct series *s = series_at(t, family, l, vm_tgid, now_ms);
	int b;

	if (!s)
		return;
	for (b = 0; b < SHARD_HIST_BUCKETS; b++) {
		s->hist[b] += v->hist[b];
		s->tick_hist_count += v->hist[b];
	}
	s->hist_sum += v->hist_sum / 1e9;
	s->tick_hist_sum += v->hist_sum / 1e9;
}

/* "sda" for 8:0, from /sys/dev/block/M:m (a link to .../block/sda). */
static void device_name(uint32_t major, uint32_t minor, char *buf, size_t len)
{
	char path[64], target[256];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major, minor);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0) {
		snprintf(buf, len, "%u:%u", major, minor);
		return;
	}
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= len)
		snprintf(buf, len, "%u:%u", major, minor);
	else
		memcpy(buf, base, strlen(base) + 1);
}

/*
 * vm="NAME" and, when libvirt's metadata names one, tenant="T": every
 * per-VM series carries its tenant, which is what the query API's tenant
 * scoping (promql_restrict) matches on.
 */
static void add_vm_labels(struct metric_labels *l, const struct vm_info *vm)
{
	metric_labels__add(l, "vm", vm ? vm->name : "unknown");
	if (vm && vm->tenant[0])
		metric_labels__add(l, "tenant", vm->tenant);
}

static void merge_entry(struct tick *t, const struct shard_entry *e, uint64_t now_ms)
{
	const struct shard_key *k = &e->key;
	const struct shard_val *v = &e->val;
	struct metric_labels l;
	const struct vm_info *vm = NULL;
	char buf[64], dev[64];

	metric_labels__init(&l);
	if (k->kind != SHARD_BLOCK) {
		vm = registry__vm(t->reg, k->tgid);
		add_vm_labels(&l, vm);
	}

	switch (k->kind) {
	case SHARD_KVM_USERSPACE_EXIT:
		vcpu_label(t, &l, k->tgid, k->tid, k->c);
		metric_labels__add(&l, "reason", kvm_userspace_exit_reason(k->a, buf, sizeof(buf)));
		add_count(t, F_KVM_USERSPACE_EXITS, &l, k->tgid, v->count, now_ms);
		break;
	case SHARD_KVM_PIO:
		vcpu_label(t, &l, k->tgid, k->tid, k->c);
		metric_labels__add(&l, "direction", k->b ? "write" : "read");
		metric_labels__addf(&l, "port", "0x%x", k->a);
		add_count(t, F_KVM_PIO, &l, k->tgid, v->count, now_ms);
		break;
	case SHARD_KVM_MMIO:
		vcpu_label(t, &l, k->tgid, k->tid, k->c);
		metric_labels__add(&l, "direction", kvm_mmio_direction(k->a));
		add_count(t, F_KVM_MMIO, &l, k->tgid, v->count, now_ms);
		break;
	case SHARD_KVM_EXIT: {
		const char *reason = kvm_exit_reason(k->b, k->a, buf, sizeof(buf));
		struct metric_labels hl;

		vcpu_label(t, &l, k->tgid, k->tid, k->c);
		metric_labels__add(&l, "reason", reason);
		add_count(t, F_KVM_EXITS, &l, k->tgid, v->count, now_ms);
		/* The histogram is per VM and reason: per vCPU would multiply buckets. */
		metric_labels__init(&hl);
		add_vm_labels(&hl, vm);
		metric_labels__add(&hl, "reason", reason);
		add_hist(t, F_KVM_EXIT_DURATION, &hl, k->tgid, v, now_ms);
		break;
	}
	case SHARD_KVM_EMULATE:
		vcpu_label(t, &l, k->tgid, k->tid, k->c);
		add_count(t, F_KVM_EMULATED, &l, k->tgid, v->count, now_ms);
		if (k->a)
			add_count(t, F_KVM_EMULATION_FAILURES, &l, k->tgid, v->count, now_ms);
		break;
	case SHARD_KVM_WAKEUP:
		vcpu_label(t, &l, k->tgid, k->tid, k->c);
		add_count(t, F_KVM_HALTED, &l, k->tgid, v->sum / 1e9, now_ms);
		metric_labels__add(&l, "how", k->a ? "block" : "poll");
		add_count(t, F_KVM_HALT_WAKEUPS, &l, k->tgid, v->count, now_ms);
		break;
	case SHARD_SCHED_DELAY:
		vcpu_label(t, &l, k->tgid, k->tid, KVM_VCPU_UNKNOWN);
		add_count(t, F_VCPU_RUN_DELAY, &l, k->tgid, v->sum / 1e9, now_ms);
		add_count(t, F_VCPU_RUN_DELAYS, &l, k->tgid, v->count, now_ms);
		break;
	case SHARD_BLOCK: {
		const char *op = block_op_name(k->c, buf, sizeof(buf));

		device_name(k->a, k->b, dev, sizeof(dev));
		metric_labels__add(&l, "device", dev);
		metric_labels__add(&l, "op", op);
		add_count(t, F_BLOCK_REQUESTS, &l, 0, v->count, now_ms);
		add_count(t, F_BLOCK_BYTES, &l, 0, v->sum, now_ms);
		add_hist(t, F_BLOCK_DURATION, &l, 0, v, now_ms);
		vm = registry__vm(t->reg, k->tgid);
		if (vm && vm->is_kvm) {
			metric_labels__init(&l);
			add_vm_labels(&l, vm);
			metric_labels__add(&l, "device", dev);
			metric_labels__add(&l, "op", op);
			add_count(t, F_VM_BLOCK_REQUESTS, &l, k->tgid, v->count, now_ms);
			add_count(t, F_VM_BLOCK_BYTES, &l, k->tgid, v->sum, now_ms);
		}
		break;
	}
	default:
		break;
	}
}

static void merge_workers(struct tick *t, uint64_t now_ms)
{
	struct workers *ws = t->cap ? t->cap->workers : NULL;
	struct shard_table *tab;
	struct shard_entry *e;
	size_t i;

	for (i = 0; ws && i < ws->n; i++) {
		tab = worker__flip(ws->w[i], 200);
		if (!tab)
			continue; /* busy: merged on a later tick */
		shard_table__for_each(tab, e)
			merge_entry(t, e, now_ms);
		t->shard_overflow += tab->overflow;
		shard_table__clear(tab);
	}
}

struct net_ctx {
	struct tick *t;
	uint64_t now_ms;
};

static void net_one(const struct net_key *key, const char *name, uint64_t packets, uint64_t bytes,
		    void *ctx)
{
	struct net_ctx *c = ctx;
	struct tick *t = c->t;
	struct metric_labels l;
	struct series *seen;
	uint32_t owner, vm_tgid = 0;
	char id[48];

	snprintf(id, sizeof(id), "%u/%u/%u", key->netns, key->ifindex, key->dir);
	seen = series_table__get(t->series, F_NET_SEEN, id, c->now_ms);
	if (!seen)
		return;
	if (packets == (uint64_t)seen->value) {
		/* Idle past the expiry: let the kernel entry go, the interface may be gone. */
		if (c->now_ms - seen->last_ms > t->cfg->series_expire_seconds * 1000ull)
			net_probe__forget(t->cap->net, key);
		return;
	}
	/* A recreated kernel entry starts from zero: the delta is then the whole count. */
	metric_labels__init(&l);
	metric_labels__add(&l, "interface", name[0] ? name : "unknown");
	metric_labels__add(&l, "direction", key->dir == NET_DIR_TX ? "tx" : "rx");
	if (key->netns != t->init_netns)
		metric_labels__addf(&l, "netns", "%u", key->netns);
	else if (name[0] && (owner = taps__owner(t->taps, name))) {
		add_vm_labels(&l, registry__vm(t->reg, owner));
		vm_tgid = owner;
	}
	if (packets >= (uint64_t)seen->value && bytes >= seen->hist[0]) {
		add_count(t, F_NET_PACKETS, &l, vm_tgid, packets - (uint64_t)seen->value,
			  c->now_ms);
		add_count(t, F_NET_BYTES, &l, vm_tgid, bytes - seen->hist[0], c->now_ms);
	} else {
		add_count(t, F_NET_PACKETS, &l, vm_tgid, packets, c->now_ms);
		add_count(t, F_NET_BYTES, &l, vm_tgid, bytes, c->now_ms);
	}
	seen->value = packets;
	seen->hist[0] = bytes;
	seen->last_ms = c->now_ms;
}

/*
 * The exemplar of series s for the tick stamped ts_ms, if s is a VM's series
 * that moved this tick and a trace covers that VM: the trace covering the
 * last instant of the second the sample sums up (the synthesizer has long
 * seen that instant, while the new second may not have its period yet). Its
 * value is this tick's increment (counters) or the mean of this tick's
 * observations (histograms).
 */
static bool tick_exemplar(struct tick *t, const struct series *s, bool hist, int64_t ts_ms,
			  struct metric_exemplar *ex)
{
	struct vmtrace_ref ref;

	if (!t->traces || !s->vm_tgid)
		return false;
	if (hist ? !s->tick_hist_count : !(s->tick_delta > 0))
		return false;
	if (!vmtrace__covering(t->traces, s->vm_tgid, (uint64_t)(ts_ms - 1) * 1000000ull, &ref))
		return false;
	memcpy(ex->trace_id, ref.trace_id, sizeof(ex->trace_id));
	memcpy(ex->span_id, ref.span_id, sizeof(ex->span_id));
	ex->value = hist ? s->tick_hist_sum / (double)s->tick_hist_count : s->tick_delta;
	ex->timestamp_ms = ts_ms;
	return true;
}

/*
 * Build the exported families from the cumulative series, with their
 * exemplars: a series keeps its latest one (with its own timestamp) until a
 * newer one replaces it, as client libraries do, so a scraper that missed
 * the second it appeared still gets it; Prometheus drops the repeats.
 */
static int add_series_families(struct tick *t, struct metric_set *set, uint64_t now_ms)
{
	int64_t ts_ms = (int64_t)(now_ms - now_ms % 1000);
	struct metric_exemplar ex;
	struct metric_family *fam;
	struct metric_labels l;
	struct series *s;
	unsigned int f;
	int err;

	for (f = 0; f < F_EXPORTED_MAX; f++) {
		int hist = families[f].type == METRIC_HISTOGRAM;

		fam = metric_set__family(set, families[f].name, families[f].help, families[f].type,
					 hist ? hist_bounds : NULL,
					 hist ? SHARD_HIST_BUCKETS - 1 : 0);
		if (!fam)
			return -errno;
		for (s = series_table__first(t->series, f); s; s = s->next) {
			metric_labels__init(&l);
			/* Labels are already rendered: copy them as they are. */
			snprintf(l.buf, sizeof(l.buf), "%s", s->labels);
			l.len = strlen(l.buf);
			err = hist ? metric_family__add_histogram(fam, &l, s->hist, s->hist_sum) :
				     metric_family__add_value(fam, &l, s->value);
			if (err)
				return err;
			if (tick_exemplar(t, s, hist, ts_ms, &ex)) {
				s->exemplar = ex;
				s->has_exemplar = true;
			}
			/* kept on later samples, so that every scrape sees the latest one */
			if (s->has_exemplar) {
				err = metric_family__set_exemplar(fam, &s->exemplar);
				if (err)
					return err;
			}
			s->tick_delta = 0;
			s->tick_hist_sum = 0;
			s->tick_hist_count = 0;
		}
	}
	return 0;
}

void tick__set_traces(struct tick *t, struct vmtrace *traces)
{
	t->traces = traces;
}

static const char *const source_names[SOURCE_MAX] = {
	[SOURCE_KVM] = "kvm",
	[SOURCE_BLOCK] = "block",
	[SOURCE_NET] = "net",
	[SOURCE_SCHED] = "sched",
};

static int vm_info_one(const struct vm_info *vm, void *ctx)
{
	struct metric_set *set = ctx;
	struct metric_labels l;

	metric_labels__init(&l);
	metric_labels__add(&l, "vm", vm->name);
	metric_labels__add(&l, "uuid", vm->uuid);
	metric_labels__add(&l, "tenant", vm->tenant);
	metric_labels__addf(&l, "pid", "%u", vm->tgid);
	return metric_set__add_value(
		set, "novamon_vm_info",
		"A VM known on this host (a process using KVM), with its identity.", METRIC_GAUGE,
		&l, 1);
}

#define LOST_NAME "novamon_events_lost_total"
#define LOST_HELP "Events dropped in the kernel because the CPU's ring was full."
#define PRODUCED_NAME "novamon_events_produced_total"
#define PRODUCED_HELP "Events the probes emitted on each CPU (= consumed + lost + in flight)."

static int lifecycle_one(const char *vm, const char *event, uint64_t count, void *ctx)
{
	struct metric_set *set = ctx;
	struct metric_labels l;

	metric_labels__init(&l);
	metric_labels__add(&l, "vm", vm);
	metric_labels__add(&l, "event", event);
	return metric_set__add_value(
		set, "novamon_vm_lifecycle_events_total",
		"libvirt domain lifecycle events (started, stopped, suspended, ...) per VM.",
		METRIC_COUNTER, &l, count);
}

/* VM identities and libvirt lifecycle counts from the registry. */
static int add_registry_families(struct tick *t, struct metric_set *set)
{
	int err = registry__for_each_vm(t->reg, vm_info_one, set);

	/* Declared even when empty, so the family is discoverable. */
	if (!err &&
	    !metric_set__family(set, "novamon_vm_info",
				"A VM known on this host (a process using KVM), with its identity.",
				METRIC_GAUGE, NULL, 0))
		err = -errno;
	if (!err &&
	    !metric_set__family(
		    set, "novamon_vm_lifecycle_events_total",
		    "libvirt domain lifecycle events (started, stopped, suspended, ...) per VM.",
		    METRIC_COUNTER, NULL, 0))
		err = -errno;
	if (!err)
		err = registry__for_each_lifecycle(t->reg, lifecycle_one, set);
	if (!err)
		err = metric_set__add_value(
			set, "novamon_vm_lifecycle_events_dropped_total",
			"libvirt lifecycle events dropped because the registry's queue was full.",
			METRIC_COUNTER, NULL, registry__lifecycle_dropped(t->reg));
	return err;
}

/* Counters of the capture machinery itself. */
static int add_capture_families(struct tick *t, struct metric_set *set, uint64_t *events)
{
	struct capture *cap = t->cap;
	uint64_t consumed[SOURCE_MAX] = { 0 }, decode_errors = 0;
	struct metric_labels l;
	struct metric_family *fam;
	size_t i;
	int s, cpu, err = 0;

	*events = 0;
	for (i = 0; cap && cap->workers && i < cap->workers->n; i++) {
		struct worker *w = cap->workers->w[i];

		for (s = 0; s < SOURCE_MAX; s++)
			consumed[s] += __atomic_load_n(&w->consumed[s], __ATOMIC_RELAXED);
		decode_errors += __atomic_load_n(&w->decode_errors, __ATOMIC_RELAXED);
	}
	fam = metric_set__family(set, "novamon_events_total",
				 "Events consumed from the per-CPU rings, by source.",
				 METRIC_COUNTER, NULL, 0);
	if (!fam)
		return -errno;
	for (s = 1; s < SOURCE_MAX; s++) {
		if (s == SOURCE_NET)
			continue; /* aggregated in the kernel: see novamon_net_packets_total */
		metric_labels__init(&l);
		metric_labels__add(&l, "source", source_names[s]);
		err = metric_family__add_value(fam, &l, consumed[s]);
		if (err)
			return err;
		*events += consumed[s];
	}

	/* Adding a family may move the others: look both up after creating both. */
	if (!metric_set__family(set, LOST_NAME, LOST_HELP, METRIC_COUNTER, NULL, 0) ||
	    !metric_set__family(set, PRODUCED_NAME, PRODUCED_HELP, METRIC_COUNTER, NULL, 0))
		return -errno;
	fam = metric_set__family(set, LOST_NAME, LOST_HELP, METRIC_COUNTER, NULL, 0);
	struct metric_family *pfam =
		metric_set__family(set, PRODUCED_NAME, PRODUCED_HELP, METRIC_COUNTER, NULL, 0);
	if (cap && cap->rings && !rings__read_stats(cap->rings, t->produced, t->lost)) {
		for (cpu = 0; cpu < cap->rings->nr_cpus && !err; cpu++) {
			if (cap->rings->ring_fd[cpu] < 0)
				continue;
			metric_labels__init(&l);
			metric_labels__addf(&l, "cpu", "%d", cpu);
			err = metric_family__add_value(fam, &l, t->lost[cpu]);
			if (!err)
				err = metric_family__add_value(pfam, &l, t->produced[cpu]);
		}
		if (err)
			return err;
	}
	err = metric_set__add_value(set, "novamon_events_decode_errors_total",
				    "Ring events of a wrong size or unknown type (ABI mismatch).",
				    METRIC_COUNTER, NULL, decode_errors);
	if (!err)
		err = metric_set__add_value(
			set, "novamon_net_overflow_total",
			"Packets not counted because the per-interface map was full (raise capture.net_max_interfaces).",
			METRIC_COUNTER, NULL, t->net_overflow);
	if (!err)
		err = metric_set__add_value(
			set, "novamon_shard_overflow_total",
			"Events not counted because a worker's shard table was full (raise capture.shard_entries).",
			METRIC_COUNTER, NULL, t->shard_overflow);

	fam = metric_set__family(
		set, "novamon_probe_attached",
		"1 when the probe program is attached, 0 when it could not be (see /health for why).",
		METRIC_GAUGE, NULL, 0);
	if (!fam)
		return -errno;
	for (i = 0; cap && i < cap->report.n && !err; i++) {
		const struct probe_status *ps = &cap->report.items[i];

		metric_labels__init(&l);
		metric_labels__add(&l, "family", ps->family);
		metric_labels__add(&l, "program", ps->program);
		metric_labels__add(&l, "tracepoint", ps->tracepoint);
		err = metric_family__add_value(fam, &l, ps->attached ? 1 : 0);
	}
	return err;
}

static int add_self_families(struct tick *t, struct metric_set *set)
{
	struct selfstat st;
	struct metric_labels l;
	int err = 0;

	metric_labels__init(&l);
	metric_labels__add(&l, "version", NOVAMON_VERSION);
	err = metric_set__add_value(set, "novamon_build_info", "Build information; always 1.",
				    METRIC_GAUGE, &l, 1);
	if (!err && !selfstat_read("/proc", &st)) {
		err = metric_set__add_value(set, "novamon_process_cpu_seconds_total",
					    "CPU time used by the daemon (user + system).",
					    METRIC_COUNTER, NULL, st.cpu_seconds);
		if (!err)
			err = metric_set__add_value(set, "novamon_process_resident_memory_bytes",
						    "Resident memory of the daemon.", METRIC_GAUGE,
						    NULL, st.rss_bytes);
		if (!err)
			err = metric_set__add_value(set, "novamon_process_open_fds",
						    "Open file descriptors of the daemon.",
						    METRIC_GAUGE, NULL, st.open_fds);
		if (!err)
			err = metric_set__add_value(set, "novamon_process_threads",
						    "Threads of the daemon.", METRIC_GAUGE, NULL,
						    st.threads);
		if (!err)
			err = metric_set__add_value(set, "novamon_process_start_time_seconds",
						    "Start time of the daemon since the epoch.",
						    METRIC_GAUGE, NULL, st.start_time_seconds);
	}
	if (!err)
		err = metric_set__add_value(
			set, "novamon_series_active",
			"Series held by the daemon (expire after series_expire_seconds idle).",
			METRIC_GAUGE, NULL, series_table__count(t->series));
	if (!err)
		err = metric_set__add_value(
			set, "novamon_series_expired_total",
			"Series dropped after being idle (vanished VMs, devices, interfaces).",
			METRIC_COUNTER, NULL, t->series_expired);
	if (!err)
		err = metric_set__add_value(set, "novamon_tick_duration_seconds",
					    "Time the last 1 Hz tick took to merge and publish.",
					    METRIC_GAUGE, NULL, t->last_tick_seconds);
	return err;
}

/* Append s to the JSON output as a string literal. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static char *render_health(struct tick *t, uint64_t now_ms, uint64_t events, uint64_t lost)
{
	struct capture *cap = t->cap;
	char *buf = NULL;
	size_t len = 0, i, j;
	FILE *f = open_memstream(&buf, &len);
	bool running = cap && capture__running(cap) && cap->workers;

	if (!f)
		return NULL;
	fprintf(f, "{\"status\":\"%s\",\"version\":", running ? "ok" : "degraded");
	json_str(f, NOVAMON_VERSION);
	fprintf(f, ",\"uptime_seconds\":%.3f", (now_ms - t->start_ms) / 1000.0);
	fprintf(f, ",\"capture\":{\"running\":%s,\"error\":", running ? "true" : "false");
	json_str(f, cap ? cap->error : "capture not started");
	fprintf(f, ",\"events_total\":%llu,\"events_per_second\":%.1f,\"events_lost_total\":%llu",
		(unsigned long long)events, t->events_per_second, (unsigned long long)lost);
	fprintf(f, ",\"probes\":[");
	for (i = 0; cap && i < cap->report.n; i++) {
		const struct probe_status *ps = &cap->report.items[i];

		fprintf(f, "%s{\"family\":", i ? "," : "");
		json_str(f, ps->family);
		fprintf(f, ",\"program\":");
		json_str(f, ps->program);
		fprintf(f, ",\"tracepoint\":");
		json_str(f, ps->tracepoint);
		fprintf(f, ",\"attached\":%s,\"reason\":", ps->attached ? "true" : "false");
		json_str(f, ps->reason);
		fputc('}', f);
	}
	fprintf(f, "],\"workers\":[");
	for (i = 0; cap && cap->workers && i < cap->workers->n; i++) {
		const struct worker *w = cap->workers->w[i];

		fprintf(f, "%s{\"id\":%d,\"node\":%d,\"cpus\":[", i ? "," : "", w->id, w->node);
		for (j = 0; j < w->ncpus; j++)
			fprintf(f, "%s%d", j ? "," : "", w->cpus[j]);
		fprintf(f, "],\"rings\":[");
		for (j = 0; j < w->nrings; j++)
			fprintf(f, "%s%d", j ? "," : "", w->rings[j].cpu);
		fprintf(f, "],\"events_total\":%llu}",
			(unsigned long long)(__atomic_load_n(&w->consumed[SOURCE_KVM],
							     __ATOMIC_RELAXED) +
					     __atomic_load_n(&w->consumed[SOURCE_BLOCK],
							     __ATOMIC_RELAXED) +
					     __atomic_load_n(&w->consumed[SOURCE_SCHED],
							     __ATOMIC_RELAXED)));
	}
	fprintf(f, "]},\"series\":%zu}", series_table__count(t->series));
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int teach_vcpu(uint32_t tgid, uint32_t tid, int index, void *ctx)
{
	int fd = *(int *)ctx;
	uint32_t id;

	(void)tgid;
	if (bpf_map_lookup_elem(fd, &tid, &id)) {
		id = index;
		bpf_map_update_elem(fd, &tid, &id, BPF_NOEXIST);
	}
	return 0;
}

/*
 * Keep the kernel's tid -> vCPU map (which threads the scheduler probe times)
 * in step: add the vCPU threads qemu named, where the kernel could not learn
 * them (no fentry, no kvm_entry), and every VCPU_PRUNE_TICKS drop threads
 * that are gone so a reused tid is not timed as a vCPU.
 */
#define VCPU_PRUNE_TICKS 30

static void sync_vcpu_map(struct tick *t)
{
	int fd = t->cap ? t->cap->vcpu_map_fd : -1;
	uint32_t key, next, *prev = NULL, dead[256];
	size_t ndead = 0, i;
	char path[64];

	if (fd < 0)
		return;
	registry__for_each_vcpu(t->reg, teach_vcpu, &fd);
	if (t->ticks % VCPU_PRUNE_TICKS)
		return;
	while (!bpf_map_get_next_key(fd, prev, &next) && ndead < 256) {
		key = next;
		prev = &key;
		snprintf(path, sizeof(path), "/proc/%u", key);
		if (access(path, F_OK))
			dead[ndead++] = key;
	}
	for (i = 0; i < ndead; i++)
		bpf_map_delete_elem(fd, &dead[i]);
}

/* The sinks' own metrics, and how many samples each refused. */
static void add_sink_families(struct tick *t, struct metric_set *set)
{
	struct metric_labels l;
	size_t i;

	for (i = 0; i < t->nsinks; i++) {
		if (t->sinks[i].describe)
			t->sinks[i].describe(t->sinks[i].ctx, set);
		metric_labels__init(&l);
		metric_labels__add(&l, "sink", t->sinks[i].name);
		metric_set__add_value(
			set, "novamon_sink_failed_samples_total",
			"Samples of the 1 Hz tick a sink (store, remote-write) refused.",
			METRIC_COUNTER, &l, t->sink_failed[i]);
	}
}

/*
 * Hand the set to the sinks, stamped at the whole second of the tick: every
 * sink's samples and set first, then the flushes, the last registered first.
 * The store (registered first) appends before anyone flushes, so the live
 * feeds, told in their flush, evaluate the new second at once, while the
 * store's flush (its WAL fdatasync and housekeeping) runs last instead of
 * in front of them.
 */
static void feed_sinks(struct tick *t, const struct metric_set *set, uint64_t now_ms)
{
	int64_t ts = (int64_t)(now_ms - now_ms % 1000);
	size_t i;
	int n;

	for (i = 0; i < t->nsinks; i++) {
		const struct tick_sink *s = &t->sinks[i];

		if (s->sample) {
			n = feed_metric_set(set, ts, s->sample, s->ctx);
			if (n > 0)
				t->sink_failed[i] += n;
		}
		if (s->set) {
			n = s->set(s->ctx, set, ts);
			if (n > 0)
				t->sink_failed[i] += n;
		}
	}
	for (i = t->nsinks; i-- > 0;)
		if (t->sinks[i].flush)
			t->sinks[i].flush(t->sinks[i].ctx, (int64_t)now_ms);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

void tick__prepare(struct tick *t, uint64_t now_ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	registry__refresh(t->reg, now_ms);
	t->prepared = true;
	t->prepare_seconds = seconds_since(&t0);
}

int tick__run(struct tick *t, uint64_t now_ms)
{
	struct metric_set *set;
	struct timespec t0;
	uint64_t events = 0, lost = 0;
	char *health;
	size_t dropped;
	int err, cpu;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!t->start_ms)
		t->start_ms = now_ms;
	if (!t->prepared) {
		t->prepare_seconds = 0;
		registry__refresh(t->reg, now_ms);
	}
	t->prepared = false;
	merge_workers(t, now_ms);
	sync_vcpu_map(t); /* after the merge: the last events of a gone vCPU keep their label */
	if (t->cap && t->cap->net) {
		struct net_ctx nc = { .t = t, .now_ms = now_ms };

		taps__refresh(t->taps, t->reg, now_ms);
		net_probe__read(t->cap->net, net_one, &nc, &t->net_overflow);
	}
	dropped = series_table__expire(t->series, now_ms, t->cfg->series_expire_seconds * 1000ull);
	t->series_expired += dropped;

	set = metric_set__new((int64_t)now_ms);
	if (!set)
		return -ENOMEM;
	err = add_series_families(t, set, now_ms);
	if (!err)
		err = add_capture_families(t, set, &events);
	if (!err)
		err = add_registry_families(t, set);
	if (!err)
		err = add_self_families(t, set);
	if (err) {
		metric_set__free(set);
		return err;
	}
	/* KVM's own counters, where debugfs is mounted: a cross-check of ours. */
	kvmstat__collect(t->cfg->kvm_debugfs, t->reg, set);
	add_sink_families(t, set);

	if (t->cap && t->cap->rings)
		for (cpu = 0; cpu < t->cap->rings->nr_cpus; cpu++)
			lost += t->lost[cpu];
	if (t->last_ms && now_ms > t->last_ms)
		t->events_per_second = (events - t->last_events) * 1000.0 / (now_ms - t->last_ms);
	t->last_events = events;
	t->last_ms = now_ms;

	health = render_health(t, now_ms, events, lost);
	feed_sinks(t, set, now_ms);
	metric_store__publish(t->store, set, health);
	t->ticks++;
	t->last_tick_seconds = seconds_since(&t0) + t->prepare_seconds;
	return 0;
}
