/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmtrace: the board of the trace covering each VM (see vmtrace.h).
 *
 * An open-addressing table keyed by tgid under one mutex: the synthesizer
 * writes a few times per VM and period, the tick reads once per VM series
 * and second, so the lock is never contended for long. Forgotten VMs stay
 * as tombstones until the table is three quarters full, then it is rebuilt
 * without them.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"

#define VMTRACE_SLOTS 4096 /* power of two; VMs per host are far fewer */

struct vmtrace_span {
	struct vmtrace_ref ref;
	uint64_t start_ns;
	uint64_t end_ns; /* UINT64_MAX: still running */
	bool set;
};

struct vmtrace_entry {
	uint32_t tgid; /* 0: free */
	bool dead; /* forgotten: a tombstone */
	struct vmtrace_span op;
	struct vmtrace_span period[2]; /* [0] the latest, [1] the one before */
};

struct vmtrace {
	pthread_mutex_t lock;
	struct vmtrace_entry *slots;
	unsigned int used; /* live entries and tombstones */
	unsigned int live;
};

static unsigned int vmtrace_slot(uint32_t tgid)
{
	return (tgid * 2654435761u) & (VMTRACE_SLOTS - 1);
}

struct vmtrace *vmtrace__new(void)
{
	struct vmtrace *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->slots = calloc(VMTRACE_SLOTS, sizeof(*b->slots));
	if (!b->slots) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

struct vmtrace *vmtrace__free(struct vmtrace *b)
{
	if (!b)
		return NULL;
	pthread_mutex_destroy(&b->lock);
	free(b->slots);
	free(b);
	return NULL;
}

/* The entry of tgid, or NULL. Lock held. */
static struct vmtrace_entry *vmtrace_find(struct vmtrace *b, uint32_t tgid)
{
	unsigned int i;

	for (i = vmtrace_slot(tgid); b->slots[i].tgid; i = (i + 1) & (VMTRACE_SLOTS - 1))
		if (b->slots[i].tgid == tgid)
			return &b->slots[i];
	return NULL;
}

/* Drop the tombstones. Lock held; on ENOMEM the table stays as it was. */
static void vmtrace_compact(struct vmtrace *b)
{
	struct vmtrace_entry *old = b->slots;
	unsigned int i, j;

	b->slots = calloc(VMTRACE_SLOTS, sizeof(*b->slots));
	if (!b->slots) {
		b->slots = old;
		return;
	}
	b->used = 0;
	for (i = 0; i < VMTRACE_SLOTS; i++) {
		if (!old[i].tgid || old[i].dead)
			continue;
		for (j = vmtrace_slot(old[i].tgid); b->slots[j].tgid;
		     j = (j + 1) & (VMTRACE_SLOTS - 1))
			;
		b->slots[j] = old[i];
		b->used++;
	}
	free(old);
}

/* The entry of tgid, created (or revived) if absent; NULL when full. Lock held. */
static struct vmtrace_entry *vmtrace_get(struct vmtrace *b, uint32_t tgid)
{
	struct vmtrace_entry *e = vmtrace_find(b, tgid);
	unsigned int i;

	if (e) {
		if (e->dead) {
			memset(e, 0, sizeof(*e));
			e->tgid = tgid;
			b->live++;
		}
		return e;
	}
	if (b->used >= VMTRACE_SLOTS - VMTRACE_SLOTS / 4)
		vmtrace_compact(b);
	if (b->used >= VMTRACE_SLOTS - VMTRACE_SLOTS / 4)
		return NULL;
	for (i = vmtrace_slot(tgid); b->slots[i].tgid; i = (i + 1) & (VMTRACE_SLOTS - 1))
		;
	e = &b->slots[i];
	memset(e, 0, sizeof(*e));
	e->tgid = tgid;
	b->used++;
	b->live++;
	return e;
}

static void vmtrace_span_set(struct vmtrace_span *sp, const uint8_t *trace_id,
			     const uint8_t *span_id, uint64_t start_ns, uint64_t end_ns)
{
	memcpy(sp->ref.trace_id, trace_id, sizeof(sp->ref.trace_id));
	memcpy(sp->ref.span_id, span_id, sizeof(sp->ref.span_id));
	sp->start_ns = start_ns;
	sp->end_ns = end_ns;
	sp->set = true;
}

void vmtrace__set_period(struct vmtrace *b, uint32_t tgid, const uint8_t *trace_id,
			 const uint8_t *span_id, uint64_t start_ns, uint64_t end_ns)
{
	struct vmtrace_entry *e;

	if (!b || !tgid)
		return;
	pthread_mutex_lock(&b->lock);
	e = vmtrace_get(b, tgid);
	if (e) {
		if (e->period[0].set && e->period[0].start_ns != start_ns)
			e->period[1] = e->period[0];
		vmtrace_span_set(&e->period[0], trace_id, span_id, start_ns, end_ns);
	}
	pthread_mutex_unlock(&b->lock);
}

void vmtrace__begin_op(struct vmtrace *b, uint32_t tgid, const uint8_t *trace_id,
		       const uint8_t *span_id, uint64_t start_ns)
{
	struct vmtrace_entry *e;

	if (!b || !tgid)
		return;
	pthread_mutex_lock(&b->lock);
	e = vmtrace_get(b, tgid);
	if (e)
		vmtrace_span_set(&e->op, trace_id, span_id, start_ns, UINT64_MAX);
	pthread_mutex_unlock(&b->lock);
}

void vmtrace__end_op(struct vmtrace *b, uint32_t tgid)
{
	struct vmtrace_entry *e;

	if (!b || !tgid)
		return;
	pthread_mutex_lock(&b->lock);
	e = vmtrace_find(b, tgid);
	if (e)
		e->op.set = false;
	pthread_mutex_unlock(&b->lock);
}

void vmtrace__forget(struct vmtrace *b, uint32_t tgid)
{
	struct vmtrace_entry *e;

	if (!b || !tgid)
		return;
	pthread_mutex_lock(&b->lock);
	e = vmtrace_find(b, tgid);
	if (e && !e->dead) {
		memset(&e->op, 0, sizeof(*e) - offsetof(struct vmtrace_entry, op));
		e->dead = true;
		b->live--;
	}
	pthread_mutex_unlock(&b->lock);
}

static bool vmtrace_span_covers(const struct vmtrace_span *sp, uint64_t at_ns)
{
	return sp->set && sp->start_ns <= at_ns && at_ns < sp->end_ns;
}

bool vmtrace__covering(struct vmtrace *b, uint32_t tgid, uint64_t at_ns, struct vmtrace_ref *out)
{
	const struct vmtrace_span *hit = NULL;
	struct vmtrace_entry *e;
	int i;

	if (!b || !tgid)
		return false;
	pthread_mutex_lock(&b->lock);
	e = vmtrace_find(b, tgid);
	if (e && !e->dead) {
		if (vmtrace_span_covers(&e->op, at_ns))
			hit = &e->op;
		for (i = 0; !hit && i < 2; i++)
			if (vmtrace_span_covers(&e->period[i], at_ns))
				hit = &e->period[i];
		if (hit)
			*out = hit->ref;
	}
	pthread_mutex_unlock(&b->lock);
	return hit != NULL;
}

unsigned int vmtrace__count(struct vmtrace *b)
{
	unsigned int n;

	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	n = b->live;
	pthread_mutex_unlock(&b->lock);
	return n;
}
