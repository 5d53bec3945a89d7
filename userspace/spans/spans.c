/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The span synthesizer (see spans.h for the contract).
 *
 * Spans (kind INTERNAL unless said; every kernel span also has process.pid,
 * thread.id and novamon.sample_rate, and novamon.vm when its process is a VM):
 *
 *   "block <op>"            one block request, insert (or issue) to completion:
 *                           system.device, disk.io.direction (read/write),
 *                           novamon.block.{op,sector,bytes,queue_ns,service_ns};
 *                           status ERROR and error.type when it failed
 *   "kvm exit_storm"        novamon.vcpu, novamon.kvm.{exit_reason,exit_class,
 *                           exits,baseline,window_ms}
 *   "kvm halt"              novamon.vcpu, novamon.kvm.halt_ns, novamon.kvm.halt_blocked
 *   "sched runqueue_delay"  novamon.vcpu, novamon.sched.delay_ns
 *   "vm activity"           the parent of the above for one VM and period:
 *                           novamon.vm, novamon.vm.uuid, process.pid,
 *                           novamon.vm.period_seconds, novamon.spans.candidates,
 *                           novamon.spans.children, novamon.block.requests,
 *                           novamon.block.bytes
 *   "vm start", "vm shutdown", "vm define", "vm pause", "vm resume",
 *   "vm destroy", "vm crash", "vm undefine", "vm pmsuspend"
 *                           novamon.vm, novamon.vm.uuid, process.pid,
 *                           novamon.vm.source ("libvirt" or "process")
 *   "vm migrate" (and its phases), "vm save", "vm restore", "vm dump", ...
 *                           libvirt jobs, from its job info: see vmjob.c
 *
 * novamon.vcpu is -1 when the vCPU index is not known.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "config.h"
#include "logq.h"
#include "metrics.h"
#include "probes/probe.h"
#include "probes/probes.h"
#include "registry.h"
#include "spans.h"
#include "vmjob.h"
#include "vmtrace.h"
#include "worker.h"

#define SPANS_BATCH 16384 /* candidates; a round of up to 330K/s at 50 ms is one batch */
/*
 * qemu reads its disks (alignment probes, format headers) before it creates
 * its VM: the candidates of a process new since the first refresh and not
 * (yet) a VM wait up to SPANS_DEFER_MS of its life, so that they are its
 * VM's if it turns into one, as /metrics, which attributes at the tick,
 * counts them. At most SPANS_DEFER_MAX wait; beyond, they go as they are.
 */
#define SPANS_DEFER_MS 1000
#define SPANS_DEFER_MAX 4096
#define SPANS_DEV_CACHE 256 /* power of two */
#define SPANS_BASELINES 1024 /* power of two */
#define SPANS_VMS 4096 /* power of two */
#define SPANS_LIFE_MAX 1024
#define SPANS_LOG_BATCH 64
#define SPANS_REFRESH_NS 1000000000ull
/* How long after its end a VM period waits for late children. */
#define SPANS_PERIOD_GRACE_NS 1000000000ull
/* Samples before a baseline decides what is slow, and its EWMA weight after. */
#define SPANS_BASELINE_WARMUP 32
#define SPANS_BASELINE_ALPHA (1.0 / 32)
#define NS_PER_S 1000000000ull

static const char *const kind_names[SPANS_KIND_MAX] = {
	[SPANS_KIND_BLOCK] = "block",
	[SPANS_KIND_KVM_STORM] = "kvm_exit_storm",
	[SPANS_KIND_KVM_HALT] = "kvm_halt",
	[SPANS_KIND_SCHED_DELAY] = "sched_runqueue_delay",
	[SPANS_KIND_VM_ACTIVITY] = "vm_activity",
	[SPANS_KIND_VM_LIFECYCLE] = "vm_lifecycle",
};

/* The spans kind of each candidate kind. */
static const uint8_t cand_kind[SPAN_CAND_KIND_MAX] = {
	[SPAN_CAND_BLOCK] = SPANS_KIND_BLOCK,
	[SPAN_CAND_KVM_STORM] = SPANS_KIND_KVM_STORM,
	[SPAN_CAND_KVM_HALT] = SPANS_KIND_KVM_HALT,
	[SPAN_CAND_SCHED_DELAY] = SPANS_KIND_SCHED_DELAY,
};

struct spans_dev {
	uint32_t key; /* major << 20 | minor, + 1 so that 0 is free */
	char name[32];
};

struct spans_baseline {
	uint64_t key; /* 0 = free */
	double mean;
	uint64_t n;
};

struct spans_vm {
	uint32_t tgid;
	uint8_t used;
	uint8_t is_vm;
	uint32_t gen; /* registry generation it was resolved at */
	uint64_t resolved_ms; /* CLOCK_MONOTONIC: a "no VM" answer is asked again after a while */
	uint64_t first_ms; /* CLOCK_MONOTONIC, first seen; 0: before the first refresh, not young */
	char name[SPAN_STR_LEN];
	char uuid[40];
	/* the open period: its index (start / period) + 1; 0 when none */
	uint64_t period;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint64_t candidates, children, block_requests, block_bytes, last_end;
	/* the one before, for late children */
	uint64_t prev_period;
	uint8_t prev_trace_id[16];
	uint8_t prev_span_id[8];
};

/* libvirt lifecycle events, in the order one refresh's events are applied. */
enum spans_lc_event {
	LC_DEFINED,
	LC_STARTED,
	LC_SUSPENDED,
	LC_RESUMED,
	LC_PMSUSPENDED,
	LC_SHUTDOWN,
	LC_STOPPED,
	LC_CRASHED,
	LC_UNDEFINED,
	LC_MAX,
};

static const char *const lc_names[LC_MAX] = {
	[LC_DEFINED] = "defined", [LC_STARTED] = "started",	    [LC_SUSPENDED] = "suspended",
	[LC_RESUMED] = "resumed", [LC_PMSUSPENDED] = "pmsuspended", [LC_SHUTDOWN] = "shutdown",
	[LC_STOPPED] = "stopped", [LC_CRASHED] = "crashed",	    [LC_UNDEFINED] = "undefined",
};

/* A VM known to lifecycle tracking: a live KVM process, or a libvirt domain. */
struct spans_life {
	char name[128];
	char uuid[40];
	uint32_t tgid; /* 0: no live process known */
	uint32_t gen; /* last refresh that saw the process */
	uint32_t sightings; /* refreshes that saw it */
	bool libvirt; /* libvirt reported events for it: it owns the lifecycle spans */
	bool announced; /* vm.appeared logged */
	uint64_t first_real; /* first seen (Unix ns) */
	uint64_t alive_real; /* last seen alive */
	uint64_t proc_start_real; /* the process's start, 0 unknown */
	uint64_t counts[LC_MAX]; /* libvirt's cumulative counts */
	uint64_t pending[LC_MAX]; /* new this refresh */
	uint64_t shutdown_real; /* a guest shutdown began; 0 none */
	/* the lifecycle operation running, its IDs given out early (vmtrace) */
	char op_name[SPAN_NAME_LEN]; /* "": none */
	uint64_t op_start;
	uint8_t op_trace_id[16];
	uint8_t op_span_id[8];
};

struct spans {
	struct spans_opts o;
	struct span_ring *rings[SPANS_MAX_RINGS];
	size_t nrings;
	struct registry *reg;
	uint32_t reg_gen;
	uint64_t last_refresh_mono;
	int proc_fd;
	uint64_t rng[4]; /* xoshiro256** */

	/* this round */
	uint64_t mono_to_real; /* real = mono + offset (mod 2^64) */
	uint64_t now_real;
	double tokens; /* sampling budget left, in spans */
	uint64_t round_left; /* candidates of this round not processed yet (estimate) */
	uint64_t last_poll_mono;

	struct span_cand *batch;
	struct spans_vm **batch_vm;
	uint8_t *batch_keep;
	struct span_cand *deferred; /* SPANS_DEFER_MAX of them */
	size_t ndeferred;
	bool no_defer; /* processing the deferred ones */
	struct span span; /* the one being built */

	struct spans_dev devs[SPANS_DEV_CACHE];
	struct spans_baseline *baselines;
	struct spans_vm *vms;
	uint32_t vms_used;
	uint32_t open_periods;

	struct spans_life *life;
	size_t nlife;
	struct vmjob *jobs; /* libvirt jobs in progress; NULL with no_lifecycle */
	bool refreshed_once;

	struct log_record *logs;

	/* counters, written by the synthesizer, read by the tick (relaxed) */
	uint64_t synthesized[SPANS_KIND_MAX];
	uint64_t sampled_out[SPANS_KIND_MAX];
	double probability[SPANS_KIND_MAX];
	uint64_t logs_exported;

	pthread_t thread;
	bool ready; /* fully set up: spans__free() does a last round */
	bool started;
	volatile bool quit;
};

#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static inline void store_double(double *p, double v)
{
	__atomic_store(p, &v, __ATOMIC_RELAXED);
}

static inline double load_double(const double *p)
{
	double v;

	__atomic_load(p, &v, __ATOMIC_RELAXED);
	return v;
}

const char *spans_kind_name(enum spans_kind k)
{
	return k < SPANS_KIND_MAX ? kind_names[k] : "unknown";
}

/* ---- IDs: xoshiro256** seeded from getrandom() ---- */

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static void rng_seed(uint64_t *s)
{
	struct timespec ts;
	int i;

	if (getrandom(s, 4 * sizeof(*s), 0) != (ssize_t)(4 * sizeof(*s))) {
		/* No entropy source: splitmix64 of the clock and our address, unique enough. */
		uint64_t z;

		clock_gettime(CLOCK_REALTIME, &ts);
		z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)s;
		for (i = 0; i < 4; i++) {
			z += 0x9e3779b97f4a7c15ull;
			s[i] = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
			s[i] = (s[i] ^ (s[i] >> 27)) * 0x94d049bb133111ebull;
			s[i] ^= s[i] >> 31;
		}
	}
	if (!(s[0] | s[1] | s[2] | s[3]))
		s[0] = 1; /* the one state xoshiro cannot leave */
}

/* Fill n (8 or 16) bytes of a new ID; never all zero (OTLP's "invalid"). */
static void new_id(struct spans *s, uint8_t *id, size_t n)
{
	uint64_t a, b;

	do {
		a = rng_next(s->rng);
		b = n > 8 ? rng_next(s->rng) : 0;
	} while (!a && !b);
	memcpy(id, &a, 8);
	if (n > 8)
		memcpy(id + 8, &b, 8);
}

/* A uniform double in [0, 1). */
static inline double rng_unit(struct spans *s)
{
	return (double)(rng_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- building spans ---- */

static inline struct span_attr *attr_next(struct span *sp, const char *key, size_t keylen)
{
	struct span_attr *a;

	if (sp->nattrs >= SPAN_MAX_ATTRS)
		return NULL;
	a = &sp->attrs[sp->nattrs++];
	memcpy(a->key, key, keylen < SPAN_KEY_LEN ? keylen : SPAN_KEY_LEN - 1);
	a->key[keylen < SPAN_KEY_LEN ? keylen : SPAN_KEY_LEN - 1] = '\0';
	return a;
}

/* key must be a string literal (its length is taken with sizeof). */
#define ATTR_INT(sp, key, v) attr_int((sp), (key), sizeof(key) - 1, (v))
#define ATTR_STR(sp, key, v) attr_str((sp), (key), sizeof(key) - 1, (v))
#define ATTR_DOUBLE(sp, key, v) attr_double((sp), (key), sizeof(key) - 1, (v))
#define ATTR_BOOL(sp, key, v) attr_bool((sp), (key), sizeof(key) - 1, (v))

static inline void attr_int(struct span *sp, const char *key, size_t keylen, int64_t v)
{
	struct span_attr *a = attr_next(sp, key, keylen);

	if (a) {
		a->type = SPAN_ATTR_INT;
		a->i = v;
	}
}

/* Copy src into dst[len], truncated, NUL-terminated. */
static inline void copy_str(char *dst, size_t len, const char *src)
{
	size_t n;

	for (n = 0; n + 1 < len && src[n]; n++)
		dst[n] = src[n];
	dst[n] = '\0';
}

static inline void attr_str(struct span *sp, const char *key, size_t keylen, const char *v)
{
	struct span_attr *a = attr_next(sp, key, keylen);

	if (!a)
		return;
	a->type = SPAN_ATTR_STR;
	copy_str(a->s, sizeof(a->s), v);
}

static inline void attr_double(struct span *sp, const char *key, size_t keylen, double v)
{
	struct span_attr *a = attr_next(sp, key, keylen);

	if (a) {
		a->type = SPAN_ATTR_DOUBLE;
		a->d = v;
	}
}

static inline void attr_bool(struct span *sp, const char *key, size_t keylen, bool v)
{
	struct span_attr *a = attr_next(sp, key, keylen);

	if (a) {
		a->type = SPAN_ATTR_BOOL;
		a->b = v;
	}
}

static inline void span_name(struct span *sp, const char *name)
{
	copy_str(sp->name, sizeof(sp->name), name);
}

/* Start building s->span: new span ID, the given trace (NULL: a new one) and parent. */
static struct span *span_begin(struct spans *s, const char *name, const uint8_t *trace_id,
			       const uint8_t *parent_id, uint64_t start_ns, uint64_t end_ns)
{
	struct span *sp = &s->span;

	if (trace_id)
		memcpy(sp->trace_id, trace_id, 16);
	else
		new_id(s, sp->trace_id, 16);
	new_id(s, sp->span_id, 8);
	if (parent_id)
		memcpy(sp->parent_span_id, parent_id, 8);
	else
		memset(sp->parent_span_id, 0, 8);
	span_name(sp, name);
	sp->kind = SPAN_KIND_INTERNAL;
	sp->status = SPAN_STATUS_UNSET;
	sp->status_message[0] = '\0';
	sp->nattrs = 0;
	sp->start_ns = start_ns;
	sp->end_ns = end_ns > start_ns ? end_ns : start_ns;
	return sp;
}

static void span_emit(struct spans *s, enum spans_kind kind)
{
	size_t i;

	for (i = 0; i < s->o.nsinks; i++)
		if (s->o.sinks[i].span)
			s->o.sinks[i].span(s->o.sinks[i].ctx, &s->span);
	store_relaxed(&s->synthesized[kind], s->synthesized[kind] + 1);
}

/* ---- devices and baselines ---- */

/* "loop3" for 7:3 from <sys>/dev/block/7:3/uevent DEVNAME, else "7:3"; cached. */
static const char *device_name(struct spans *s, uint32_t major, uint32_t minor)
{
	uint32_t key = ((major << 20) | (minor & 0xfffff)) + 1;
	uint32_t i = (key * 2654435761u) & (SPANS_DEV_CACHE - 1), probes;
	struct spans_dev *d = NULL;
	char path[320], buf[512], *p, *nl;
	ssize_t n;
	int fd;

	for (probes = 0; probes < SPANS_DEV_CACHE; probes++, i = (i + 1) & (SPANS_DEV_CACHE - 1)) {
		d = &s->devs[i];
		if (d->key == key)
			return d->name;
		if (!d->key)
			break;
	}
	if (probes == SPANS_DEV_CACHE)
		d = &s->devs[key & (SPANS_DEV_CACHE - 1)]; /* full: replace one */
	d->key = key;
	snprintf(d->name, sizeof(d->name), "%u:%u", major, minor);
	snprintf(path, sizeof(path), "%s/dev/block/%u:%u/uevent",
		 s->o.sys_root ? s->o.sys_root : "/sys", major, minor);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return d->name;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return d->name;
	buf[n] = '\0';
	for (p = buf; p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (!strncmp(p, "DEVNAME=", 8) && p[8] && strlen(p + 8) < sizeof(d->name)) {
			memcpy(d->name, p + 8, strlen(p + 8) + 1);
			break;
		}
	}
	return d->name;
}

/*
 * Observe value under key; returns whether it is slow: above slow_factor x
 * the baseline once the baseline has SPANS_BASELINE_WARMUP samples.
 */
static bool baseline_observe(struct spans *s, uint64_t key, double value)
{
	uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 40) & (SPANS_BASELINES - 1);
	struct spans_baseline *b;
	uint32_t probes;
	bool slow;

	key |= 1ull << 63; /* never 0 */
	for (probes = 0; probes < SPANS_BASELINES; probes++, i = (i + 1) & (SPANS_BASELINES - 1)) {
		b = &s->baselines[i];
		if (b->key == key)
			break;
		if (!b->key) {
			b->key = key;
			break;
		}
	}
	if (probes == SPANS_BASELINES)
		return false; /* full: nothing is slow without a baseline */
	slow = b->n >= SPANS_BASELINE_WARMUP && value > b->mean * s->o.slow_factor;
	b->n++;
	if (b->n <= SPANS_BASELINE_WARMUP)
		b->mean += (value - b->mean) / (double)b->n;
	else
		b->mean += SPANS_BASELINE_ALPHA * (value - b->mean);
	return slow;
}

/* ---- VMs and their periods ---- */

static uint32_t vm_slot(uint32_t tgid)
{
	return (tgid * 2654435761u) & (SPANS_VMS - 1);
}

/* Forget resolved processes with no open period (the table is nearly full). */
static void vms_compact(struct spans *s)
{
	struct spans_vm *old = s->vms, *e;
	uint32_t i, j;

	s->vms = calloc(SPANS_VMS, sizeof(*s->vms));
	if (!s->vms) {
		s->vms = old; /* keep the full table; new processes go unattributed */
		return;
	}
	s->vms_used = 0;
	for (i = 0; i < SPANS_VMS; i++) {
		if (!old[i].used || !old[i].period)
			continue;
		for (j = vm_slot(old[i].tgid); s->vms[j].used; j = (j + 1) & (SPANS_VMS - 1))
			;
		e = &s->vms[j];
		*e = old[i];
		s->vms_used++;
	}
	free(old);
}

/* The (resolved) entry of tgid, NULL when the table is full. */
static struct spans_vm *vm_get(struct spans *s, uint32_t tgid)
{
	uint64_t now_ms = s->last_poll_mono / 1000000;
	const struct vm_info *info;
	struct spans_vm *e;
	uint32_t i;

	for (i = vm_slot(tgid);; i = (i + 1) & (SPANS_VMS - 1)) {
		e = &s->vms[i];
		if (!e->used)
			break;
		if (e->tgid == tgid) {
			/* qemu's events from before it created its VM must not label it "no VM" for long */
			if (e->gen == s->reg_gen &&
			    (e->is_vm || now_ms < e->resolved_ms + REGISTRY_RECHECK_MS))
				return e;
			goto resolve;
		}
	}
	if (s->vms_used >= SPANS_VMS - SPANS_VMS / 4)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->tgid = tgid;
	e->first_ms = s->reg_gen > 1 ? now_ms : 0;
	s->vms_used++;
resolve:
	e->gen = s->reg_gen;
	e->resolved_ms = now_ms;
	info = registry__vm_at(s->reg, tgid, now_ms);
	e->is_vm = info && info->is_kvm;
	if (info) {
		copy_str(e->name, sizeof(e->name), info->name);
		copy_str(e->uuid, sizeof(e->uuid), info->uuid);
	} else {
		snprintf(e->name, sizeof(e->name), "pid-%u", tgid);
		e->uuid[0] = '\0';
	}
	return e;
}

static uint64_t period_ns(const struct spans *s)
{
	return (uint64_t)s->o.vm_period_seconds * NS_PER_S;
}

/* Emit e's open "vm activity" span and keep its IDs for late children. */
static void period_close(struct spans *s, struct spans_vm *e)
{
	uint64_t start = (e->period - 1) * period_ns(s), end = start + period_ns(s);
	struct span *sp;

	if (e->last_end > end)
		end = e->last_end;
	sp = &s->span;
	span_begin(s, "vm activity", e->trace_id, NULL, start, end);
	memcpy(sp->span_id, e->span_id, 8);
	ATTR_STR(sp, "novamon.vm", e->name);
	if (e->uuid[0])
		ATTR_STR(sp, "novamon.vm.uuid", e->uuid);
	ATTR_INT(sp, "process.pid", e->tgid);
	ATTR_INT(sp, "novamon.vm.period_seconds", s->o.vm_period_seconds);
	ATTR_INT(sp, "novamon.spans.candidates", (int64_t)e->candidates);
	ATTR_INT(sp, "novamon.spans.children", (int64_t)e->children);
	ATTR_INT(sp, "novamon.block.requests", (int64_t)e->block_requests);
	ATTR_INT(sp, "novamon.block.bytes", (int64_t)e->block_bytes);
	ATTR_DOUBLE(sp, "novamon.sample_rate", 1.0);
	span_emit(s, SPANS_KIND_VM_ACTIVITY);
	e->prev_period = e->period;
	memcpy(e->prev_trace_id, e->trace_id, 16);
	memcpy(e->prev_span_id, e->span_id, 8);
	e->period = 0;
	s->open_periods--;
}

static void period_open(struct spans *s, struct spans_vm *e, uint64_t idx)
{
	e->period = idx;
	new_id(s, e->trace_id, 16);
	new_id(s, e->span_id, 8);
	e->candidates = e->children = e->block_requests = e->block_bytes = e->last_end = 0;
	s->open_periods++;
	if (e->is_vm)
		vmtrace__set_period(s->o.vmtrace, e->tgid, e->trace_id, e->span_id,
				    (idx - 1) * period_ns(s), idx * period_ns(s));
}

/*
 * The parent of a span of VM e starting at start_ns: its open period's
 * "vm activity" span (opening or moving on to the period of start_ns), or
 * the previous one for a late child. Sets *trace and *parent.
 */
static void period_parent(struct spans *s, struct spans_vm *e, uint64_t start_ns,
			  const uint8_t **trace, const uint8_t **parent)
{
	uint64_t idx = start_ns / period_ns(s) + 1;

	if (e->period && idx < e->period && e->prev_period) {
		*trace = e->prev_trace_id;
		*parent = e->prev_span_id;
		return;
	}
	if (e->period && idx > e->period)
		period_close(s, e);
	if (!e->period)
		period_open(s, e, idx);
	*trace = e->trace_id;
	*parent = e->span_id;
}

/* Close the periods over for good (their end + grace has passed), or all. */
static void periods_expire(struct spans *s, bool all)
{
	uint32_t i;

	for (i = 0; i < SPANS_VMS && s->open_periods; i++) {
		struct spans_vm *e = &s->vms[i];

		if (!e->used || !e->period)
			continue;
		if (all || e->period * period_ns(s) + SPANS_PERIOD_GRACE_NS <= s->now_real)
			period_close(s, e);
	}
}

/* ---- kernel candidates to spans ---- */

static uint64_t cand_duration(const struct span_cand *c)
{
	switch (c->kind) {
	case SPAN_CAND_BLOCK:
		return c->block.queue_ns + c->block.service_ns;
	case SPAN_CAND_KVM_STORM:
		return c->storm.duration_ns;
	default:
		return c->wait.duration_ns;
	}
}

/* Whether c must be kept whatever the budget: an error, a storm, or slow. */
static bool cand_keep(struct spans *s, const struct span_cand *c)
{
	uint64_t key;

	switch (c->kind) {
	case SPAN_CAND_BLOCK:
		key = (uint64_t)SPAN_CAND_BLOCK << 56 | (uint64_t)c->block.major << 36 |
		      (uint64_t)(c->block.minor & 0xfffff) << 16 | c->block.op;
		/* Errors feed no baseline: a failing device answers fast. */
		if (c->block.error)
			return true;
		return baseline_observe(s, key, (double)cand_duration(c));
	case SPAN_CAND_KVM_STORM:
		return true; /* above its baseline by construction */
	default:
		return baseline_observe(s, (uint64_t)c->kind << 56, (double)c->wait.duration_ns);
	}
}

static int64_t cand_vcpu(struct spans *s, const struct span_cand *c, const struct spans_vm *e)
{
	uint32_t id;

	if (c->vcpu != SPAN_VCPU_UNKNOWN)
		return c->vcpu;
	if (s->o.vcpu_map_fd >= 0 && !bpf_map_lookup_elem(s->o.vcpu_map_fd, &c->tid, &id))
		return id;
	if (e && e->is_vm)
		return registry__vcpu(s->reg, c->tgid, c->tid);
	return -1;
}

/* blk_status_t names (include/linux/blk_types.h), error.type of failed requests. */
static const char *blk_status_name(int status, char *buf, size_t len)
{
	static const char *const names[] = {
		[1] = "notsupp",
		[2] = "timeout",
		[3] = "nospc",
		[4] = "transport",
		[5] = "target",
		[6] = "resv_conflict",
		[7] = "medium",
		[8] = "protection",
		[9] = "resource",
		[10] = "ioerr",
		[11] = "dm_requeue",
		[12] = "again",
		[13] = "dev_resource",
		[14] = "zone_open_resource",
		[15] = "zone_active_resource",
		[16] = "offline",
		[17] = "duration_limit",
	};

	if (status > 0 && (size_t)status < sizeof(names) / sizeof(names[0]) && names[status])
		return names[status];
	snprintf(buf, len, "blk_status_%d", status);
	return buf;
}

static void build_block(struct spans *s, const struct span_cand *c, uint64_t start, uint64_t end,
			const uint8_t *trace, const uint8_t *parent)
{
	static const char *const names[] = { "block read", "block write", "block flush",
					     "block discard" };
	char name[SPAN_NAME_LEN], opbuf[24];
	const char *op = block_op_name(c->block.op, opbuf, sizeof(opbuf));
	struct span *sp;

	if (c->block.op < sizeof(names) / sizeof(names[0])) {
		sp = span_begin(s, names[c->block.op], trace, parent, start, end);
	} else {
		snprintf(name, sizeof(name), "block %s", op);
		sp = span_begin(s, name, trace, parent, start, end);
	}
	ATTR_STR(sp, "system.device", device_name(s, c->block.major, c->block.minor));
	if (c->block.op <= 1)
		ATTR_STR(sp, "disk.io.direction", c->block.op ? "write" : "read");
	ATTR_STR(sp, "novamon.block.op", op);
	ATTR_INT(sp, "novamon.block.sector", (int64_t)c->block.sector);
	ATTR_INT(sp, "novamon.block.bytes", c->block.bytes);
	ATTR_INT(sp, "novamon.block.queue_ns", (int64_t)c->block.queue_ns);
	ATTR_INT(sp, "novamon.block.service_ns", (int64_t)c->block.service_ns);
	if (c->block.error) {
		char buf[24];
		const char *what = blk_status_name(c->block.error, buf, sizeof(buf));

		sp->status = SPAN_STATUS_ERROR;
		snprintf(sp->status_message, sizeof(sp->status_message),
			 "block request failed: %.20s (status %d)", what, c->block.error);
		ATTR_STR(sp, "error.type", what);
	}
}

static const char *exit_class_name(uint32_t cls)
{
	return cls == SPAN_EXIT_VMX ? "vmx" : cls == SPAN_EXIT_SVM ? "svm" : "userspace";
}

static void build_kvm(struct spans *s, const struct span_cand *c, uint64_t start, uint64_t end,
		      const uint8_t *trace, const uint8_t *parent, const struct spans_vm *e)
{
	struct span *sp;
	char buf[32];

	switch (c->kind) {
	case SPAN_CAND_KVM_STORM:
		sp = span_begin(s, "kvm exit_storm", trace, parent, start, end);
		ATTR_INT(sp, "novamon.vcpu", cand_vcpu(s, c, e));
		ATTR_STR(sp, "novamon.kvm.exit_reason",
			 c->storm.exit_class == SPAN_EXIT_USERSPACE ?
				 kvm_userspace_exit_reason(c->storm.reason, buf, sizeof(buf)) :
				 kvm_exit_reason(c->storm.exit_class, c->storm.reason, buf,
						 sizeof(buf)));
		ATTR_STR(sp, "novamon.kvm.exit_class", exit_class_name(c->storm.exit_class));
		ATTR_INT(sp, "novamon.kvm.exits", c->storm.exits);
		ATTR_INT(sp, "novamon.kvm.baseline", c->storm.baseline);
		ATTR_INT(sp, "novamon.kvm.window_ms", c->storm.window_ms);
		break;
	case SPAN_CAND_KVM_HALT:
		sp = span_begin(s, "kvm halt", trace, parent, start, end);
		ATTR_INT(sp, "novamon.vcpu", cand_vcpu(s, c, e));
		ATTR_INT(sp, "novamon.kvm.halt_ns", (int64_t)c->wait.duration_ns);
		ATTR_BOOL(sp, "novamon.kvm.halt_blocked", c->wait.waited != 0);
		break;
	default:
		sp = span_begin(s, "sched runqueue_delay", trace, parent, start, end);
		ATTR_INT(sp, "novamon.vcpu", cand_vcpu(s, c, e));
		ATTR_INT(sp, "novamon.sched.delay_ns", (int64_t)c->wait.duration_ns);
		break;
	}
}

/* Count c (emitted or not) in the period of VM e it belongs to, rolling periods on. */
static void period_account(struct spans *s, struct spans_vm *e, const struct span_cand *c)
{
	uint64_t end = c->end_ns + s->mono_to_real, start = end - cand_duration(c);
	const uint8_t *trace, *parent;

	period_parent(s, e, start, &trace, &parent);
	if (parent != e->span_id)
		return; /* a late child of a closed period */
	e->candidates++;
	if (c->kind == SPAN_CAND_BLOCK) {
		e->block_requests++;
		e->block_bytes += c->block.bytes;
	}
	if (end > e->last_end)
		e->last_end = end;
}

static void emit_cand(struct spans *s, const struct span_cand *c, struct spans_vm *e, double rate)
{
	uint64_t end = c->end_ns + s->mono_to_real, start = end - cand_duration(c);
	const uint8_t *trace = NULL, *parent = NULL;
	struct span *sp = &s->span;

	if (e && e->is_vm) {
		period_parent(s, e, start, &trace, &parent);
		if (parent == e->span_id)
			e->children++;
	}
	if (c->kind == SPAN_CAND_BLOCK)
		build_block(s, c, start, end, trace, parent);
	else
		build_kvm(s, c, start, end, trace, parent, e);
	if (e && (e->is_vm || c->kind != SPAN_CAND_BLOCK))
		ATTR_STR(sp, "novamon.vm", e->name);
	ATTR_INT(sp, "process.pid", c->tgid);
	ATTR_INT(sp, "thread.id", c->tid);
	ATTR_DOUBLE(sp, "novamon.sample_rate", rate);
	span_emit(s, cand_kind[c->kind]);
}

/*
 * Split the round's budget between kinds fairly (max-min: a kind asking
 * less than an equal share gets all it asks, the rest is shared by the
 * others) and return each kind's sampling probability.
 */
static void share_budget(struct spans *s, size_t batch, const uint64_t *n, double *p)
{
	double quota[SPAN_CAND_KIND_MAX] = { 0 }, used = 0, avail;
	bool done[SPAN_CAND_KIND_MAX] = { false };
	int k, left = 0, best;

	/* This batch's part of the round's budget: the round's batches share it evenly. */
	avail = s->tokens * (double)batch / (double)(s->round_left > batch ? s->round_left : batch);
	if (avail < 0)
		avail = 0;
	s->round_left = s->round_left > batch ? s->round_left - batch : 0;
	for (k = 1; k < SPAN_CAND_KIND_MAX; k++) {
		p[k] = 1.0;
		if (n[k])
			left++;
		else
			done[k] = true;
	}
	while (left) {
		/* The smallest remaining demand first. */
		best = -1;
		for (k = 1; k < SPAN_CAND_KIND_MAX; k++)
			if (!done[k] && (best < 0 || n[k] < n[best]))
				best = k;
		quota[best] = (double)n[best] < avail / left ? (double)n[best] : avail / left;
		/*
		 * At least one span per kind and batch, on credit: a probability
		 * of 0 would drop candidates that no kept span stands for, and
		 * the re-weighted counts (sum of novamon.sample_rate) would
		 * fall short of the truth. The debt is paid from later refills.
		 */
		if (quota[best] < 1)
			quota[best] = 1;
		avail = avail > quota[best] ? avail - quota[best] : 0;
		used += quota[best];
		done[best] = true;
		left--;
		p[best] = quota[best] / (double)n[best];
	}
	s->tokens -= used;
	/* a debt of at most one second's budget */
	if (s->tokens < -(double)s->o.budget_per_second)
		s->tokens = -(double)s->o.budget_per_second;
}

/* Whether e's process is young and no VM, so that its candidates wait (SPANS_DEFER_MS). */
static bool vm_pending(const struct spans *s, const struct spans_vm *e)
{
	return e && !e->is_vm && e->first_ms &&
	       s->last_poll_mono / 1000000 < e->first_ms + SPANS_DEFER_MS;
}

/* Keep c for later when its process may yet turn into a VM. */
static bool cand_defer(struct spans *s, const struct span_cand *c, struct spans_vm *e)
{
	/* its age counts from its first event, not from when we got to it */
	if (e && e->first_ms && c->end_ns / 1000000 < e->first_ms)
		e->first_ms = c->end_ns / 1000000 ? c->end_ns / 1000000 : 1;
	if (s->no_defer || !vm_pending(s, e) || s->ndeferred == SPANS_DEFER_MAX)
		return false;
	s->deferred[s->ndeferred++] = *c;
	return true;
}

static size_t process_batch(struct spans *s, size_t n);

/*
 * Process the deferred candidates whose process is now a VM or old enough
 * (all of them with force). Returns spans emitted.
 */
static size_t process_deferred(struct spans *s, bool force)
{
	size_t i, n = 0, keep = 0, emitted;

	for (i = 0; i < s->ndeferred; i++) {
		const struct span_cand *c = &s->deferred[i];

		if (!force && vm_pending(s, vm_get(s, c->tgid)))
			s->deferred[keep++] = *c;
		else
			s->batch[n++] = *c;
	}
	s->ndeferred = keep;
	if (!n)
		return 0;
	s->no_defer = true;
	emitted = process_batch(s, n);
	s->no_defer = false;
	return emitted;
}

/* Attribute, sample and emit n candidates of s->batch. Returns spans emitted. */
static size_t process_batch(struct spans *s, size_t n)
{
	uint64_t rest[SPAN_CAND_KIND_MAX] = { 0 };
	double p[SPAN_CAND_KIND_MAX], acc[SPAN_CAND_KIND_MAX];
	size_t i, emitted = 0;

	if (s->vms_used + n >= SPANS_VMS - SPANS_VMS / 4)
		vms_compact(s);
	for (i = 0; i < n; i++) {
		const struct span_cand *c = &s->batch[i];

		if (!c->kind || c->kind >= SPAN_CAND_KIND_MAX) {
			s->batch_keep[i] = 2; /* malformed: skipped */
			continue;
		}
		s->batch_vm[i] = vm_get(s, c->tgid);
		if (cand_defer(s, c, s->batch_vm[i])) {
			s->batch_keep[i] = 2; /* later, from s->deferred */
			continue;
		}
		s->batch_keep[i] = cand_keep(s, c);
		if (!s->batch_keep[i])
			rest[c->kind]++;
	}
	share_budget(s, n, rest, p);
	for (i = 1; i < SPAN_CAND_KIND_MAX; i++) {
		store_double(&s->probability[cand_kind[i]], p[i]);
		acc[i] = rng_unit(s);
	}
	for (i = 0; i < n; i++) {
		const struct span_cand *c = &s->batch[i];
		struct spans_vm *e = s->batch_vm[i];
		double rate = 1.0;

		if (s->batch_keep[i] == 2)
			continue;
		if (e && e->is_vm)
			period_account(s, e, c);
		if (!s->batch_keep[i]) {
			double pk = p[c->kind];

			/*
			 * Systematic sampling from a random start: each candidate
			 * is kept with probability pk, as with a coin per
			 * candidate, but a batch keeps floor or ceil of n x pk of
			 * them, never none of many: the re-weighted count (sum of
			 * 1/pk) is then within one weight of the truth instead of
			 * missing a whole batch about a third of the time when
			 * the budget allows one span.
			 */
			acc[c->kind] += pk;
			if (pk < 1.0 && acc[c->kind] < 1.0) {
				uint8_t k = cand_kind[c->kind];

				store_relaxed(&s->sampled_out[k], s->sampled_out[k] + 1);
				continue;
			}
			acc[c->kind] -= 1.0;
			rate = 1.0 / pk;
		}
		emit_cand(s, c, s->batch_vm[i], rate);
		emitted++;
	}
	return emitted;
}

/* ---- VM lifecycle ---- */

static struct spans_life *life_find(struct spans *s, const char *name, uint32_t tgid)
{
	size_t i;

	for (i = 0; i < s->nlife; i++)
		if ((tgid && s->life[i].tgid == tgid) || (name && !strcmp(s->life[i].name, name)))
			return &s->life[i];
	return NULL;
}

static struct spans_life *life_add(struct spans *s, const char *name)
{
	struct spans_life *l;

	if (s->nlife >= SPANS_LIFE_MAX)
		return NULL;
	l = &s->life[s->nlife++];
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->first_real = s->now_real;
	return l;
}

static void life_remove(struct spans *s, struct spans_life *l)
{
	*l = s->life[--s->nlife];
}

/* The start of process tgid (Unix ns) from <proc>/<tgid>/stat, or 0. */
static uint64_t proc_start_real(struct spans *s, uint32_t tgid)
{
	char path[32], buf[1024], *p;
	unsigned long long ticks;
	struct timespec boot;
	uint64_t boot_real;
	long hz = sysconf(_SC_CLK_TCK);
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "%u/stat", tgid);
	fd = openat(s->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold anything */
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1 || hz <= 0)
		return 0;
	clock_gettime(CLOCK_BOOTTIME, &boot);
	boot_real = s->now_real - ((uint64_t)boot.tv_sec * NS_PER_S + (uint64_t)boot.tv_nsec);
	return boot_real + ticks * (NS_PER_S / (uint64_t)hz);
}

/*
 * Operation name of l begins at start: its span's IDs are drawn now and
 * published on the vmtrace board, so that the VM's samples while it runs
 * point at it; life_span() of the same name emits the span with them.
 */
static void life_op_begin(struct spans *s, struct spans_life *l, const char *name, uint64_t start)
{
	copy_str(l->op_name, sizeof(l->op_name), name);
	l->op_start = start;
	new_id(s, l->op_trace_id, 16);
	new_id(s, l->op_span_id, 8);
	vmtrace__begin_op(s->o.vmtrace, l->tgid, l->op_trace_id, l->op_span_id, start);
}

/* The span being built is l's running operation name: give it the published IDs. */
static void life_op_end(struct spans *s, struct spans_life *l, const char *name, struct span *sp)
{
	if (!l->op_name[0] || strcmp(l->op_name, name))
		return;
	memcpy(sp->trace_id, l->op_trace_id, 16);
	memcpy(sp->span_id, l->op_span_id, 8);
	l->op_name[0] = '\0';
	vmtrace__end_op(s->o.vmtrace, l->tgid);
}

static void life_span(struct spans *s, const char *name, struct spans_life *l, const char *source,
		      uint64_t start, uint64_t end, bool error)
{
	struct span *sp = span_begin(s, name, NULL, NULL, start, end);

	life_op_end(s, l, name, sp);

	ATTR_STR(sp, "novamon.vm", l->name);
	if (l->uuid[0])
		ATTR_STR(sp, "novamon.vm.uuid", l->uuid);
	if (l->tgid)
		ATTR_INT(sp, "process.pid", l->tgid);
	ATTR_STR(sp, "novamon.vm.source", source);
	if (error) {
		sp->status = SPAN_STATUS_ERROR;
		snprintf(sp->status_message, sizeof(sp->status_message), "%s", "the guest crashed");
	}
	span_emit(s, SPANS_KIND_VM_LIFECYCLE);
}

static void life_log(struct spans *s, const char *event, const struct spans_life *l, bool with_span,
		     const char *what)
{
	struct logq_attr attrs[3];
	size_t n = 0;

	attrs[n++] = LOGQ_STR("novamon.vm", l->name);
	if (l->uuid[0])
		attrs[n++] = LOGQ_STR("novamon.vm.uuid", l->uuid);
	if (l->tgid)
		attrs[n++] = LOGQ_INT("process.pid", l->tgid);
	logq__emit(s->o.logq, LOG_SEV_INFO, event, with_span ? s->span.trace_id : NULL,
		   with_span ? s->span.span_id : NULL, attrs, n, "VM %s %s", l->name, what);
}

static int life_lc_one(const char *vm, const char *event, uint64_t count, void *ctx)
{
	struct spans *s = ctx;
	struct spans_life *l;
	int ev;

	for (ev = 0; ev < LC_MAX; ev++)
		if (!strcmp(event, lc_names[ev]))
			break;
	if (ev == LC_MAX)
		return 0;
	l = life_find(s, vm, 0);
	if (!l)
		l = life_add(s, vm);
	if (!l)
		return 0;
	l->libvirt = true;
	if (count > l->counts[ev]) {
		l->pending[ev] += count - l->counts[ev];
		l->counts[ev] = count;
	}
	return 0;
}

/* Apply one refresh's libvirt events of l in a fixed order (one span per kind). */
static void life_apply_libvirt(struct spans *s, struct spans_life *l)
{
	uint64_t now = s->now_real, start;
	int ev;

	for (ev = 0; ev < LC_MAX; ev++) {
		if (!l->pending[ev])
			continue;
		l->pending[ev] = 0;
		switch (ev) {
		case LC_DEFINED:
			life_span(s, "vm define", l, "libvirt", now, now, false);
			break;
		case LC_STARTED:
			start = l->proc_start_real && l->proc_start_real < now ?
					l->proc_start_real :
					now;
			life_span(s, "vm start", l, "libvirt", start, now, false);
			life_log(s, LOGQ_EVENT_VM_APPEARED, l, true, "started (libvirt)");
			l->announced = true;
			break;
		case LC_SUSPENDED:
			life_span(s, "vm pause", l, "libvirt", now, now, false);
			break;
		case LC_RESUMED:
			life_span(s, "vm resume", l, "libvirt", now, now, false);
			break;
		case LC_PMSUSPENDED:
			life_span(s, "vm pmsuspend", l, "libvirt", now, now, false);
			break;
		case LC_SHUTDOWN:
			l->shutdown_real = now;
			life_op_begin(s, l, "vm shutdown", now);
			break;
		case LC_STOPPED:
			if (l->shutdown_real)
				life_span(s, "vm shutdown", l, "libvirt", l->shutdown_real, now,
					  false);
			else
				life_span(s, "vm destroy", l, "libvirt", now, now, false);
			life_log(s, LOGQ_EVENT_VM_DISAPPEARED, l, true, "stopped (libvirt)");
			l->shutdown_real = 0;
			l->announced = false;
			break;
		case LC_CRASHED:
			life_span(s, "vm crash", l, "libvirt", now, now, true);
			break;
		case LC_UNDEFINED:
			life_span(s, "vm undefine", l, "libvirt", now, now, false);
			break;
		}
	}
}

static int life_vm_one(const struct vm_info *vm, void *ctx)
{
	struct spans *s = ctx;
	struct spans_life *l = life_find(s, NULL, vm->tgid);

	if (l && strcmp(l->name, vm->name) && !l->libvirt)
		snprintf(l->name, sizeof(l->name), "%s", vm->name); /* named late (libvirt) */
	if (!l) {
		l = life_find(s, vm->name, 0);
		if (l && l->tgid && l->tgid != vm->tgid)
			l = NULL; /* the same name twice: two processes */
	}
	if (!l) {
		l = life_add(s, vm->name);
		if (!l)
			return 0;
	}
	if (l->tgid != vm->tgid) {
		l->tgid = vm->tgid;
		l->sightings = 0;
		l->proc_start_real = proc_start_real(s, vm->tgid);
		l->first_real = s->now_real;
	}
	snprintf(l->uuid, sizeof(l->uuid), "%s", vm->uuid);
	l->gen = s->reg_gen;
	l->sightings++;
	l->alive_real = s->now_real;
	return 0;
}

/*
 * One registry refresh's lifecycle: libvirt's events, then processes. A
 * process-only VM gets "vm start" at its second sighting, so that libvirt's
 * "started" (which may come a refresh later) owns the VMs libvirt runs.
 */
static void life_refresh(struct spans *s, uint64_t prev_real)
{
	struct spans_life *l;
	size_t i;

	registry__for_each_lifecycle(s->reg, life_lc_one, s);
	registry__for_each_vm(s->reg, life_vm_one, s);
	for (i = 0; i < s->nlife; i++) {
		l = &s->life[i];
		life_apply_libvirt(s, l);
		if (l->tgid && l->gen != s->reg_gen) {
			/* The process is gone. */
			if (!l->libvirt) {
				if (!l->announced && !strcmp(l->op_name, "vm start")) {
					/*
					 * Started and gone between two refreshes: its start
					 * was given out (exemplars), so it is emitted.
					 */
					life_span(s, "vm start", l, "process", l->op_start,
						  l->first_real, false);
					life_log(s, LOGQ_EVENT_VM_APPEARED, l, true, "started");
				}
				life_span(s, "vm shutdown", l, "process", prev_real, s->now_real,
					  false);
				life_log(s, LOGQ_EVENT_VM_DISAPPEARED, l, true, "process exited");
				vmtrace__forget(s->o.vmtrace, l->tgid);
				life_remove(s, l);
				i--;
				continue;
			}
			vmtrace__forget(s->o.vmtrace, l->tgid);
			l->tgid = 0;
			continue;
		}
		if (!l->tgid || l->announced || l->libvirt)
			continue;
		if (!s->refreshed_once) {
			/* Running before we started: no start to show. */
			life_log(s, LOGQ_EVENT_VM_APPEARED, l, false, "running");
			l->announced = true;
		} else if (l->sightings == 1) {
			/* Starting: "vm start" is emitted at the next sighting. */
			life_op_begin(s, l, "vm start",
				      l->proc_start_real && l->proc_start_real < l->first_real ?
					      l->proc_start_real :
					      l->first_real);
		} else if (l->sightings >= 2) {
			uint64_t start = l->proc_start_real && l->proc_start_real < l->first_real ?
						 l->proc_start_real :
						 l->first_real;

			life_span(s, "vm start", l, "process", start, l->first_real, false);
			life_log(s, LOGQ_EVENT_VM_APPEARED, l, true, "started");
			l->announced = true;
		}
	}
	/* libvirt domains with no process and nothing pending are kept for their counts. */
	s->refreshed_once = true;
}

/* vmjob's ops: IDs from our generator, spans straight to the sinks. */
static void job_new_id(void *ctx, uint8_t *id, size_t n)
{
	new_id(ctx, id, n);
}

static void job_emit(void *ctx, const struct span *sp)
{
	struct spans *s = ctx;
	size_t i;

	for (i = 0; i < s->o.nsinks; i++)
		if (s->o.sinks[i].span)
			s->o.sinks[i].span(s->o.sinks[i].ctx, sp);
	store_relaxed(&s->synthesized[SPANS_KIND_VM_LIFECYCLE],
		      s->synthesized[SPANS_KIND_VM_LIFECYCLE] + 1);
}

/* A job's span covers its VM meanwhile: its IDs go on the VM's samples (vmtrace). */
static void job_begin(void *ctx, const char *name, const uint8_t *trace_id, const uint8_t *span_id,
		      uint64_t start_ns)
{
	struct spans *s = ctx;
	struct spans_life *l = life_find(s, name, 0);

	if (l && l->tgid)
		vmtrace__begin_op(s->o.vmtrace, l->tgid, trace_id, span_id, start_ns);
}

static void job_end(void *ctx, const char *name)
{
	struct spans *s = ctx;
	struct spans_life *l = life_find(s, name, 0);

	if (l && l->tgid)
		vmtrace__end_op(s->o.vmtrace, l->tgid);
}

static int job_obs_one(const struct vm_job_obs *o, void *ctx)
{
	struct spans *s = ctx;

	vmjob__observe(s->jobs, o, s->mono_to_real);
	return 0;
}

static void refresh(struct spans *s, uint64_t mono_ns)
{
	uint64_t prev_real = s->reg_gen ? s->last_refresh_mono + s->mono_to_real : s->now_real;

	if (s->reg_gen && mono_ns - s->last_refresh_mono < SPANS_REFRESH_NS)
		return;
	s->last_refresh_mono = mono_ns;
	registry__refresh(s->reg, mono_ns / 1000000);
	s->reg_gen++;
	if (!s->o.no_lifecycle)
		life_refresh(s, prev_real);
	if (s->jobs) {
		registry__for_each_job(s->reg, job_obs_one, s);
		vmjob__expire(s->jobs, s->now_real);
	}
}

/* ---- the round ---- */

static void drain_logs(struct spans *s)
{
	size_t n, i, k;

	if (!s->o.logq)
		return;
	while ((n = logq__drain(s->o.logq, s->logs, SPANS_LOG_BATCH))) {
		for (i = 0; i < n; i++)
			for (k = 0; k < s->o.nsinks; k++)
				if (s->o.sinks[k].log)
					s->o.sinks[k].log(s->o.sinks[k].ctx, &s->logs[i]);
		store_relaxed(&s->logs_exported, s->logs_exported + n);
	}
}

size_t spans__poll(struct spans *s, uint64_t mono_ns, uint64_t real_ns)
{
	size_t r, n, emitted = 0, k;
	double dt;

	s->mono_to_real = real_ns - mono_ns;
	s->now_real = real_ns;
	dt = s->last_poll_mono ? (double)(mono_ns - s->last_poll_mono) / 1e9 : 0.0;
	s->last_poll_mono = mono_ns;
	s->tokens += dt * s->o.budget_per_second;
	if (s->tokens > s->o.budget_per_second)
		s->tokens = s->o.budget_per_second; /* at most one second's burst */
	refresh(s, mono_ns);

	s->round_left = 0;
	for (r = 0; r < s->nrings; r++)
		s->round_left +=
			__atomic_load_n(&s->rings[r]->head, __ATOMIC_ACQUIRE) - s->rings[r]->tail;
	if (s->ndeferred)
		emitted += process_deferred(s, false);
	for (r = 0; r < s->nrings; r++) {
		while ((n = span_ring__pop_burst(s->rings[r], s->batch, SPANS_BATCH))) {
			emitted += process_batch(s, n);
			if (n < SPANS_BATCH)
				break;
		}
	}
	if (s->open_periods)
		periods_expire(s, false);
	drain_logs(s);
	for (k = 0; k < s->o.nsinks; k++)
		if (s->o.sinks[k].flush)
			s->o.sinks[k].flush(s->o.sinks[k].ctx);
	return emitted;
}

static void clocks(uint64_t *mono, uint64_t *real)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	*mono = (uint64_t)m.tv_sec * NS_PER_S + (uint64_t)m.tv_nsec;
	*real = (uint64_t)r.tv_sec * NS_PER_S + (uint64_t)r.tv_nsec;
}

static void *spans_main(void *arg)
{
	struct spans *s = arg;
	struct timespec ts = {
		.tv_sec = s->o.interval_ms / 1000,
		.tv_nsec = (long)(s->o.interval_ms % 1000) * 1000000L,
	};
	uint64_t mono, real;

	pthread_setname_np(pthread_self(), "novamon-spans");
	while (!s->quit) {
		nanosleep(&ts, NULL);
		clocks(&mono, &real);
		spans__poll(s, mono, real);
	}
	return NULL;
}

/* ---- life cycle of the synthesizer ---- */

void spans_opts__init(struct spans_opts *o, const struct config *cfg)
{
	memset(o, 0, sizeof(*o));
	o->vcpu_map_fd = -1;
	if (cfg) {
		o->budget_per_second = cfg->spans_budget_per_second;
		o->slow_factor = cfg->spans_slow_factor;
		o->vm_period_seconds = cfg->spans_vm_period_seconds;
	}
}

struct spans *spans__new(const struct spans_opts *o)
{
	struct spans *s;
	size_t i;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->o = *o;
	s->proc_fd = -1;
	if (s->o.nsinks > SPANS_MAX_SINKS) {
		err = -EINVAL;
		goto err_free;
	}
	if (!s->o.budget_per_second)
		s->o.budget_per_second = 1000;
	if (!s->o.slow_factor)
		s->o.slow_factor = 4;
	if (!s->o.vm_period_seconds)
		s->o.vm_period_seconds = 10;
	if (!s->o.interval_ms)
		s->o.interval_ms = 50;
	if (!s->o.ring.storm_factor)
		s->o.ring.storm_factor = s->o.slow_factor;
	if (!s->o.proc_root)
		s->o.proc_root = "/proc";
	for (i = 0; i < SPANS_KIND_MAX; i++)
		s->probability[i] = 1.0;
	rng_seed(s->rng);

	s->batch = calloc(SPANS_BATCH, sizeof(*s->batch));
	s->batch_vm = calloc(SPANS_BATCH, sizeof(*s->batch_vm));
	s->batch_keep = calloc(SPANS_BATCH, sizeof(*s->batch_keep));
	s->deferred = calloc(SPANS_DEFER_MAX, sizeof(*s->deferred));
	s->baselines = calloc(SPANS_BASELINES, sizeof(*s->baselines));
	s->vms = calloc(SPANS_VMS, sizeof(*s->vms));
	s->life = calloc(SPANS_LIFE_MAX, sizeof(*s->life));
	s->logs = calloc(SPANS_LOG_BATCH, sizeof(*s->logs));
	if (!s->batch || !s->batch_vm || !s->batch_keep || !s->deferred || !s->baselines ||
	    !s->vms || !s->life || !s->logs) {
		err = -ENOMEM;
		goto err_free;
	}
	s->proc_fd = open(s->o.proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->reg = registry__new(s->o.proc_root);
	if (!s->reg || s->proc_fd < 0) {
		err = -errno;
		goto err_free;
	}
	if (s->o.libvirt_uri) {
		err = registry__set_libvirt_uri(s->reg, s->o.libvirt_uri);
		if (err && err != -EOPNOTSUPP)
			goto err_free;
	}
	if (!s->o.no_lifecycle) {
		struct vmjob_ops ops = { .new_id = job_new_id,
					 .emit = job_emit,
					 .begin = job_begin,
					 .end = job_end,
					 .ctx = s };

		s->jobs = vmjob__new(&ops);
		if (!s->jobs) {
			err = -errno;
			goto err_free;
		}
		registry__track_jobs(s->reg, true);
	}
	for (i = 0; s->o.workers && i < s->o.workers->n; i++) {
		struct span_ring *r = worker__enable_spans(s->o.workers->w[i], &s->o.ring);

		if (!r) {
			err = -errno;
			goto err_free;
		}
		err = spans__add_ring(s, r);
		if (err)
			goto err_free;
	}
	s->tokens = s->o.budget_per_second;
	s->ready = true;
	return s;

err_free:
	spans__free(s);
	errno = -err;
	return NULL;
}

int spans__add_ring(struct spans *s, struct span_ring *r)
{
	if (s->nrings >= SPANS_MAX_RINGS)
		return -ENOSPC;
	s->rings[s->nrings++] = r;
	return 0;
}

int spans__start(struct spans *s)
{
	int err;

	if (s->started)
		return -EALREADY;
	err = pthread_create(&s->thread, NULL, spans_main, s);
	if (err)
		return -err;
	s->started = true;
	return 0;
}

struct spans *spans__free(struct spans *s)
{
	uint64_t mono, real;
	size_t k;

	if (!s)
		return NULL;
	if (s->started) {
		s->quit = true;
		pthread_join(s->thread, NULL);
		s->started = false;
	}
	if (s->ready) {
		clocks(&mono, &real);
		spans__poll(s, mono, real);
		process_deferred(s, true);
		periods_expire(s, true);
		for (k = 0; k < s->o.nsinks; k++)
			if (s->o.sinks[k].flush)
				s->o.sinks[k].flush(s->o.sinks[k].ctx);
	}
	registry__free(s->reg);
	vmjob__free(s->jobs);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	free(s->batch);
	free(s->batch_vm);
	free(s->batch_keep);
	free(s->deferred);
	free(s->baselines);
	free(s->vms);
	free(s->life);
	free(s->logs);
	free(s);
	return NULL;
}

void spans_log_capture(struct logq *q, const struct probe_report *rep, bool attached)
{
	size_t i;

	for (i = 0; q && i < rep->n; i++) {
		const struct probe_status *ps = &rep->items[i];
		struct logq_attr attrs[] = {
			LOGQ_STR("novamon.probe.family", ps->family),
			LOGQ_STR("novamon.probe.program", ps->program),
			LOGQ_STR("novamon.probe.tracepoint", ps->tracepoint),
		};

		if (ps->attached)
			logq__emit(q, LOG_SEV_INFO,
				   attached ? LOGQ_EVENT_CAPTURE_ATTACH : LOGQ_EVENT_CAPTURE_DETACH,
				   NULL, NULL, attrs, 3, "probe %s/%s %s %s", ps->family,
				   ps->program, attached ? "attached to" : "detached from",
				   ps->tracepoint);
		else if (attached)
			logq__emit(q, LOG_SEV_WARN, LOGQ_EVENT_CAPTURE_DETACH, NULL, NULL, attrs, 3,
				   "probe %s/%s (%s) not attached: %s", ps->family, ps->program,
				   ps->tracepoint, ps->reason);
	}
}

void spans__stats(const struct spans *s, struct spans_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < SPANS_KIND_MAX; i++) {
		st->synthesized[i] = load_relaxed(&s->synthesized[i]);
		st->sampled_out[i] = load_relaxed(&s->sampled_out[i]);
	}
	for (i = 0; i < s->nrings; i++) {
		st->ring_dropped += span_ring__dropped(s->rings[i]);
		st->storm_untracked += load_relaxed(&s->rings[i]->storm_untracked);
	}
	st->logs_exported = load_relaxed(&s->logs_exported);
	st->logs_dropped = logq__dropped(s->o.logq);
}

static int spans_describe(void *ctx, struct metric_set *set)
{
	struct spans *s = ctx;
	struct metric_labels l;
	struct spans_stats st;
	size_t k;

	spans__stats(s, &st);
	for (k = 0; k < SPANS_KIND_MAX; k++) {
		metric_labels__init(&l);
		metric_labels__add(&l, "kind", kind_names[k]);
		metric_set__add_value(set, "novamon_spans_synthesized_total",
				      "Spans synthesized and handed to the exporters, by kind.",
				      METRIC_COUNTER, &l, st.synthesized[k]);
		if (k >= SPANS_KIND_VM_ACTIVITY)
			continue; /* never sampled */
		metric_set__add_value(set, "novamon_spans_sampled_out_total",
				      "Span candidates left out by sampling (the kept ones carry "
				      "novamon.sample_rate), by kind.",
				      METRIC_COUNTER, &l, st.sampled_out[k]);
		metric_set__add_value(set, "novamon_spans_sample_probability",
				      "Probability a span candidate that is neither an error nor "
				      "slow was kept in the last round, by kind.",
				      METRIC_GAUGE, &l, load_double(&s->probability[k]));
	}
	metric_labels__init(&l);
	metric_labels__add(&l, "reason", "ring_full");
	metric_set__add_value(set, "novamon_spans_dropped_total",
			      "Span candidates lost before synthesis, by reason.", METRIC_COUNTER,
			      &l, st.ring_dropped);
	metric_set__add_value(set, "novamon_spans_storm_untracked_exits_total",
			      "KVM exits not checked for storms: the storm table was full.",
			      METRIC_COUNTER, NULL, st.storm_untracked);
	metric_set__add_value(set, "novamon_logs_exported_total",
			      "Structured log records handed to the exporters.", METRIC_COUNTER,
			      NULL, st.logs_exported);
	metric_set__add_value(set, "novamon_logs_dropped_total",
			      "Structured log records dropped: the log queue was full.",
			      METRIC_COUNTER, NULL, st.logs_dropped);
	return 0;
}

struct tick_sink spans__tick_sink(struct spans *s)
{
	return (struct tick_sink){
		.name = "spans",
		.describe = spans_describe,
		.ctx = s,
	};
}
