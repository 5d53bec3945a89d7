/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <numa.h>
#include <stdlib.h>
#include <string.h>

#include "span_ring.h"

#define SPAN_RING_DEFAULT_ENTRIES 65536
#define SPAN_STORM_DEFAULT_ENTRIES 4096
#define SPAN_STORM_IDLE_NS (60ull * 1000000000ull)
/* Baseline EWMA weight per window, and during a storm (8x slower). */
#define SPAN_STORM_ALPHA (1.0f / 16)
#define SPAN_STORM_ALPHA_STORMING (1.0f / 128)
/* Empty windows applied one by one at most; beyond this the baseline is ~0. */
#define SPAN_STORM_MAX_DECAY 128

struct span_storm_entry {
	/* key */
	uint32_t tgid;
	uint32_t tid;
	uint32_t reason;
	uint16_t exit_class;
	uint16_t used;
	/* state */
	uint32_t vcpu;
	uint32_t count; /* exits in the open window */
	uint32_t windows; /* windows closed */
	float baseline; /* EWMA of exits per window */
	uint64_t win_start;
	uint64_t last_ns;
	/* the storm in progress, storm_exits == 0 when none */
	uint64_t storm_start;
	uint64_t storm_exits;
	uint32_t storm_windows;
	float storm_baseline;
};

static void *alloc_on(size_t bytes, int node, int *got_node)
{
	void *p = NULL;

	*got_node = -1;
	if (node >= 0 && numa_available() >= 0) {
		p = numa_alloc_onnode(bytes, node);
		if (p) {
			memset(p, 0, bytes); /* first touch, on the node */
			*got_node = node;
			return p;
		}
	}
	p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (p)
		memset(p, 0, bytes);
	return p;
}

static void free_on(void *p, size_t bytes, int node)
{
	if (!p)
		return;
	if (node >= 0)
		numa_free(p, bytes);
	else
		free(p);
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

struct span_ring *span_ring__new(const struct span_ring_params *p, int node)
{
	struct span_ring *r;
	int got, err;

	r = alloc_on(sizeof(*r), node, &got);
	if (!r)
		return NULL;
	r->node = got;
	if (p)
		r->p = *p;
	if (!r->p.entries)
		r->p.entries = SPAN_RING_DEFAULT_ENTRIES;
	if (!r->p.halt_min_ns)
		r->p.halt_min_ns = 10 * 1000000ull;
	if (!r->p.sched_delay_min_ns)
		r->p.sched_delay_min_ns = 1000000ull;
	if (!r->p.storm_window_ns)
		r->p.storm_window_ns = 100 * 1000000ull;
	if (!r->p.storm_factor)
		r->p.storm_factor = 4;
	if (!r->p.storm_min_exits)
		r->p.storm_min_exits = 1000;
	if (!r->p.storm_warmup)
		r->p.storm_warmup = 10;
	if (!r->p.storm_entries)
		r->p.storm_entries = SPAN_STORM_DEFAULT_ENTRIES;
	if (!is_pow2(r->p.entries) || !is_pow2(r->p.storm_entries)) {
		err = EINVAL;
		goto err_free;
	}
	r->mask = r->p.entries - 1;
	r->storm_mask = r->p.storm_entries - 1;
	/* Both arrays on the ring's node (or both malloc'd): one free path. */
	r->slots = alloc_on((size_t)r->p.entries * sizeof(*r->slots), r->node, &got);
	if (r->slots && got != r->node) {
		free_on(r->slots, (size_t)r->p.entries * sizeof(*r->slots), got);
		r->slots = NULL;
	}
	r->storms = alloc_on((size_t)r->p.storm_entries * sizeof(*r->storms), r->node, &got);
	if (r->storms && got != r->node) {
		free_on(r->storms, (size_t)r->p.storm_entries * sizeof(*r->storms), got);
		r->storms = NULL;
	}
	if (!r->slots || !r->storms) {
		err = ENOMEM;
		goto err_free;
	}
	return r;

err_free:
	span_ring__free(r);
	errno = err;
	return NULL;
}

struct span_ring *span_ring__free(struct span_ring *r)
{
	if (!r)
		return NULL;
	free_on(r->slots, (size_t)r->p.entries * sizeof(*r->slots), r->node);
	free_on(r->storms, (size_t)r->p.storm_entries * sizeof(*r->storms), r->node);
	free_on(r, sizeof(*r), r->node);
	return NULL;
}

size_t span_ring__pop_burst(struct span_ring *r, struct span_cand *out, size_t max)
{
	uint64_t tail = r->tail, head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	size_t n = head - tail, i;

	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = r->slots[(tail + i) & r->mask];
	__atomic_store_n(&r->tail, tail + n, __ATOMIC_RELEASE);
	return n;
}

uint64_t span_ring__dropped(const struct span_ring *r)
{
	uint64_t sum = 0;
	int k;

	for (k = 0; k < SPAN_CAND_KIND_MAX; k++)
		sum += __atomic_load_n(&r->dropped[k], __ATOMIC_RELAXED);
	return sum;
}

static uint32_t storm_hash(uint32_t tgid, uint32_t tid, uint32_t exit_class, uint32_t reason)
{
	uint64_t h = ((uint64_t)tgid << 32 | tid) * 0x9e3779b97f4a7c15ull;

	h ^= ((uint64_t)exit_class << 32 | reason) * 0xc2b2ae3d27d4eb4full;
	h ^= h >> 29;
	return (uint32_t)h;
}

static void storm_push(struct span_ring *r, struct span_storm_entry *e, uint64_t end_ns)
{
	struct span_cand c = {
		.kind = SPAN_CAND_KVM_STORM,
		.tgid = e->tgid,
		.tid = e->tid,
		.vcpu = e->vcpu,
		.end_ns = end_ns,
	};

	c.storm.duration_ns = end_ns - e->storm_start;
	c.storm.exits = e->storm_exits > UINT32_MAX ? UINT32_MAX : (uint32_t)e->storm_exits;
	c.storm.baseline = (uint32_t)(e->storm_baseline + 0.5f);
	c.storm.reason = e->reason;
	c.storm.exit_class = e->exit_class;
	c.storm.window_ms = (uint32_t)(r->p.storm_window_ns / 1000000);
	c.storm.windows = e->storm_windows;
	span_ring__push(r, &c);
	e->storm_exits = 0;
	e->storm_windows = 0;
}

/* Close the window [win_start, win_start + W) that held count exits. */
static void storm_close_window(struct span_ring *r, struct span_storm_entry *e, uint32_t count)
{
	uint64_t w = r->p.storm_window_ns, end = e->win_start + w;
	float thr = e->baseline * (float)r->p.storm_factor;

	if (thr < (float)r->p.storm_min_exits)
		thr = (float)r->p.storm_min_exits;
	if (e->windows >= r->p.storm_warmup && (float)count >= thr) {
		if (!e->storm_exits) {
			e->storm_start = e->win_start;
			e->storm_baseline = e->baseline;
		}
		e->storm_exits += count;
		e->storm_windows++;
		e->baseline += SPAN_STORM_ALPHA_STORMING * ((float)count - e->baseline);
	} else {
		if (e->storm_exits)
			storm_push(r, e, e->win_start);
		if (!e->windows)
			e->baseline = (float)count;
		else
			e->baseline += SPAN_STORM_ALPHA * ((float)count - e->baseline);
	}
	e->windows++;
	e->win_start = end;
}

/* Close every window of e that ended by now_ns (the open one holds e->count). */
static void storm_advance(struct span_ring *r, struct span_storm_entry *e, uint64_t now_ns)
{
	uint64_t w = r->p.storm_window_ns, n, i;

	if (now_ns < e->win_start + w)
		return;
	n = (now_ns - e->win_start) / w;
	storm_close_window(r, e, e->count);
	e->count = 0;
	/* The empty windows between: the first ends a storm, the rest decay the baseline. */
	for (i = 1; i < n && i <= SPAN_STORM_MAX_DECAY; i++)
		storm_close_window(r, e, 0);
	if (n > SPAN_STORM_MAX_DECAY) {
		e->baseline = 0;
		e->windows += (uint32_t)(n - 1 - SPAN_STORM_MAX_DECAY);
	}
	e->win_start += (n - i) * w; /* the windows not applied one by one */
}

void span_ring__count_exit(struct span_ring *r, uint32_t tgid, uint32_t tid, uint32_t vcpu,
			   uint32_t exit_class, uint32_t reason, uint64_t ts_ns)
{
	uint32_t i = storm_hash(tgid, tid, exit_class, reason) & r->storm_mask;
	struct span_storm_entry *e;

	for (;;) {
		e = &r->storms[i];
		if (!e->used)
			break;
		if (e->tgid == tgid && e->tid == tid && e->reason == reason &&
		    e->exit_class == exit_class)
			goto found;
		i = (i + 1) & r->storm_mask;
	}
	if (r->storm_used >= r->storm_mask - r->storm_mask / 4) {
		__atomic_store_n(&r->storm_untracked, r->storm_untracked + 1, __ATOMIC_RELAXED);
		return;
	}
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->tgid = tgid;
	e->tid = tid;
	e->reason = reason;
	e->exit_class = (uint16_t)exit_class;
	e->win_start = ts_ns;
	e->vcpu = SPAN_VCPU_UNKNOWN;
	r->storm_used++;
found:
	if (vcpu != SPAN_VCPU_UNKNOWN)
		e->vcpu = vcpu;
	/* Events of one worker come from several CPU rings: tolerate slight disorder. */
	if (ts_ns > e->win_start)
		storm_advance(r, e, ts_ns);
	e->count++;
	if (ts_ns > e->last_ns)
		e->last_ns = ts_ns;
}

/* Remove slot i of the linear-probing table, shifting back its followers. */
static void storm_delete(struct span_ring *r, uint32_t i)
{
	uint32_t j = i, k;

	for (;;) {
		r->storms[i].used = 0;
		for (;;) {
			j = (j + 1) & r->storm_mask;
			if (!r->storms[j].used) {
				r->storm_used--;
				return;
			}
			k = storm_hash(r->storms[j].tgid, r->storms[j].tid, r->storms[j].exit_class,
				       r->storms[j].reason) &
			    r->storm_mask;
			/* Stay if k lies cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		r->storms[i] = r->storms[j];
		i = j;
	}
}

void span_ring__sweep(struct span_ring *r, uint64_t now_ns)
{
	struct span_storm_entry *e;
	uint32_t i;

	if (now_ns - r->last_sweep_ns < r->p.storm_window_ns)
		return;
	r->last_sweep_ns = now_ns;
	for (i = 0; i <= r->storm_mask; i++) {
		e = &r->storms[i];
		if (!e->used)
			continue;
		storm_advance(r, e, now_ns);
		if (!e->storm_exits && now_ns > e->last_ns + SPAN_STORM_IDLE_NS) {
			storm_delete(r, i);
			i--; /* a follower may have moved into slot i */
		}
	}
}
