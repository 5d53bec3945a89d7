/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmjob: libvirt domain jobs (live migration out and in, save, restore,
 * dump, snapshot) as trace spans, built from the registry's job
 * observations (struct vm_job_obs, registry.h): libvirt's job statistics
 * polled about once a second while a job is active, and its
 * migration-iteration, job-completed and lifecycle events.
 *
 * A job gives one span when it ends, "vm migrate" (direction out or in),
 * "vm save", "vm restore", "vm dump" or "vm snapshot", from the job's start
 * (the first observation minus libvirt's elapsed time) to its end (the
 * job-completed event, or the first poll that found no job). A migration
 * also gives child spans for its phases: "vm migrate setup", one "vm
 * migrate iteration" per pass over guest memory that was observed, and "vm
 * migrate stop_and_copy" (the guest paused, as long as libvirt's downtime)
 * and, when it completed, "vm migrate completion" (from there to the end).
 * A failed or cancelled job has status ERROR. See vmjob.c for attributes.
 *
 * Pure logic: no libvirt, no clock, no I/O; the caller supplies the span IDs
 * and takes the finished spans. Not thread safe: the synthesizer's thread
 * owns it.
 */
#ifndef NOVAMON_VMJOB_H
#define NOVAMON_VMJOB_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "span.h"

struct vmjob_ops {
	/* Fill id[0..n) with a random ID, never all zero. */
	void (*new_id)(void *ctx, uint8_t *id, size_t n);
	/* A finished span (children before their parent); sp is reused after. */
	void (*emit)(void *ctx, const struct span *sp);
	/*
	 * Optional (NULL: not told). A job of VM name began: its span will
	 * have these IDs, so the VM's samples meanwhile can name it
	 * (exemplars); end: that job's span was emitted.
	 */
	void (*begin)(void *ctx, const char *name, const uint8_t *trace_id, const uint8_t *span_id,
		      uint64_t start_ns);
	void (*end)(void *ctx, const char *name);
	void *ctx;
};

struct vmjob;

/* A tracker emitting through ops (copied). Returns NULL with errno set. */
struct vmjob *vmjob__new(const struct vmjob_ops *ops);

/*
 * Apply one observation; mono_to_real converts its CLOCK_MONOTONIC time to
 * Unix ns (real = mono + mono_to_real, modulo 2^64). Emits the spans of a
 * job that ended. Up to 64 jobs are tracked at once; more are ignored.
 */
void vmjob__observe(struct vmjob *j, const struct vm_job_obs *o, uint64_t mono_to_real);

/*
 * End the jobs that a poll found over more than 5 s before now_real (Unix
 * ns) and of which libvirt said nothing more since: their spans have status
 * "unknown" (or "completed" after a migrated/saved stop event).
 */
void vmjob__expire(struct vmjob *j, uint64_t now_real);

/* The number of jobs in progress. */
size_t vmjob__active(const struct vmjob *j);

/* Free j, dropping the jobs in progress (they have no end). NULL is fine. Returns NULL. */
struct vmjob *vmjob__free(struct vmjob *j);

#endif /* NOVAMON_VMJOB_H */
