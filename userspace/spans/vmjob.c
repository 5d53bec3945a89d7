/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt domain jobs as spans (see vmjob.h for the contract).
 *
 * Spans (kind INTERNAL, all with novamon.vm and, when known, novamon.vm.uuid;
 * OpenTelemetry has no conventions for VM jobs, so the rest is novamon.*):
 *
 *   "vm migrate", "vm save", "vm restore", "vm dump", "vm snapshot", "vm job"
 *       the whole job. novamon.job.direction ("out", "in"; migrations
 *       only), novamon.job.status ("completed", "failed", "cancelled",
 *       "unknown" when libvirt kept nothing of a job that ended),
 *       novamon.job.data.{total,processed,remaining}_bytes,
 *       novamon.job.memory.total_bytes, novamon.job.memory.
 *       dirty_rate (pages/s, the last while the job ran),
 *       novamon.job.iterations (passes over guest memory),
 *       novamon.job.downtime_ms; failed or cancelled: status ERROR with
 *       libvirt's message, and error.type ("failed" or "cancelled").
 *   "vm migrate setup"           start to start + libvirt's setup time:
 *                                novamon.job.setup_ms
 *   "vm migrate iteration"       one pass over guest memory, from the
 *                                migration-iteration event (or the first
 *                                poll that saw it) to the next pass, the
 *                                pause or the end: novamon.job.iteration,
 *                                and from the polls made during it (about one
 *                                a second, so short passes have none):
 *                                novamon.job.memory.remaining_bytes and
 *                                .dirty_pages (still to send at its first
 *                                poll), .processed_bytes (sent between its
 *                                first poll and the next pass's), .dirty_rate
 *   "vm migrate stop_and_copy"   the guest paused: from the migration pause
 *                                (source) for libvirt's downtime, or the
 *                                downtime before the resume (destination):
 *                                novamon.job.downtime_ms
 *
 * Times come from the observations: libvirt's events carry the time libvirt
 * delivered them, the start is the first observation's time minus the job's
 * elapsed time. A job with no event and shorter than the registry's scan
 * interval (5 s) may not be seen at all.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmjob.h"

#define VMJOB_MAX 64
#define VMJOB_ITERS 32 /* passes recorded per job; later ones extend the last */
#define NS_PER_MS 1000000ull
/*
 * How long a job that is no longer active waits for libvirt's statistics of
 * it: a migration's source host reports no job during the confirmation with
 * the destination, and its job-completed event comes after.
 */
#define VMJOB_GONE_GRACE_NS (5000 * NS_PER_MS)
/* Clock differences tolerated between libvirt's elapsed time and ours. */
#define VMJOB_SLACK_NS (2000 * NS_PER_MS)
/* A job-completed event this soon after its job ended (at a poll) is that job's. */
#define VMJOB_DONE_KEEP_NS (30000 * NS_PER_MS)

struct vmjob_iter {
	uint64_t n;
	uint64_t start_ns;
	bool sampled; /* a poll was made during it */
	uint64_t first_processed, first_remaining, page_size;
	uint64_t dirty_rate;
	bool have_rate;
};

struct vmjob_one {
	bool used;
	bool done; /* ended at done_ns; kept to recognize a late job-completed event */
	uint64_t done_ns;
	char name[128];
	char uuid[40];
	uint8_t op; /* enum vm_job_op */
	uint8_t trace_id[16], span_id[8]; /* the job span's, given out at its start */
	bool migration; /* an iteration or migration lifecycle event was seen */
	uint64_t start_ns; /* Unix ns */
	bool start_exact; /* from libvirt's elapsed time */
	uint64_t pause_ns, resume_ns, stop_ns; /* lifecycle; 0 when not seen */
	uint64_t gone_ns; /* polled inactive, no statistics yet; 0 when not */
	bool postcopy_failed;
	struct vm_job_stats last; /* the last stats while running */
	bool have_last;
	uint64_t dirty_rate; /* the last reported while running */
	bool have_rate;
	struct vmjob_iter it[VMJOB_ITERS];
	size_t nit;
};

struct vmjob {
	struct vmjob_ops ops;
	struct vmjob_one jobs[VMJOB_MAX];
	size_t active;
	struct span span;
};

struct vmjob *vmjob__new(const struct vmjob_ops *ops)
{
	struct vmjob *j;

	if (!ops || !ops->new_id || !ops->emit) {
		errno = EINVAL;
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->ops = *ops;
	return j;
}

struct vmjob *vmjob__free(struct vmjob *j)
{
	free(j);
	return NULL;
}

size_t vmjob__active(const struct vmjob *j)
{
	return j->active;
}

static struct vmjob_one *job_find(struct vmjob *j, const char *name)
{
	size_t i;

	for (i = 0; i < VMJOB_MAX; i++)
		if (j->jobs[i].used && !j->jobs[i].done && !strcmp(j->jobs[i].name, name))
			return &j->jobs[i];
	return NULL;
}

/* Did a job of name end at a poll less than VMJOB_DONE_KEEP_NS before ts? */
static bool job_done_recently(struct vmjob *j, const char *name, uint64_t ts)
{
	size_t i;

	for (i = 0; i < VMJOB_MAX; i++) {
		struct vmjob_one *e = &j->jobs[i];

		if (e->used && e->done && !strcmp(e->name, name) && ts >= e->done_ns &&
		    ts - e->done_ns < VMJOB_DONE_KEEP_NS) {
			e->used = false; /* one event per job */
			return true;
		}
	}
	return false;
}

static struct vmjob_one *job_add(struct vmjob *j, const struct vm_job_obs *o, uint64_t ts)
{
	struct vmjob_one *e;
	size_t i, k = 0;

	for (i = 0; i < VMJOB_MAX; i++)
		if (!j->jobs[i].used || (j->jobs[i].done && !strcmp(j->jobs[i].name, o->name)))
			break;
	for (; i == VMJOB_MAX && k < VMJOB_MAX; k++)
		if (j->jobs[k].done)
			i = k;
	if (i == VMJOB_MAX)
		return NULL;
	e = &j->jobs[i];
	memset(e, 0, sizeof(*e));
	e->used = true;
	snprintf(e->name, sizeof(e->name), "%s", o->name);
	snprintf(e->uuid, sizeof(e->uuid), "%s", o->uuid);
	e->start_ns = ts;
	j->ops.new_id(j->ops.ctx, e->trace_id, sizeof(e->trace_id));
	j->ops.new_id(j->ops.ctx, e->span_id, sizeof(e->span_id));
	if (j->ops.begin)
		j->ops.begin(j->ops.ctx, e->name, e->trace_id, e->span_id, ts);
	j->active++;
	return e;
}

/* The job ended at ts; at_poll: a poll found it so, its event may come yet. */
static void job_drop(struct vmjob *j, struct vmjob_one *e, bool at_poll, uint64_t ts)
{
	if (j->ops.end)
		j->ops.end(j->ops.ctx, e->name);
	if (at_poll) {
		e->done = true;
		e->done_ns = ts;
	} else {
		e->used = false;
	}
	j->active--;
}

/* The start from libvirt's elapsed time, once: the first report is the closest. */
static void job_start_from(struct vmjob_one *e, const struct vm_job_stats *st, uint64_t ts)
{
	if (e->start_exact || !(st->have & VM_JOB_HAVE_ELAPSED))
		return;
	if (st->elapsed_ms * NS_PER_MS < ts)
		e->start_ns = ts - st->elapsed_ms * NS_PER_MS;
	e->start_exact = true;
}

static void job_op_from(struct vmjob_one *e, const struct vm_job_stats *st)
{
	if (st->op != VM_JOB_OP_UNKNOWN)
		e->op = st->op;
	if (st->op == VM_JOB_OP_MIGRATION_OUT || st->op == VM_JOB_OP_MIGRATION_IN)
		e->migration = true;
}

/* Pass n began at ts (an event, or the first poll that saw it). */
static struct vmjob_iter *job_iter(struct vmjob_one *e, uint64_t n, uint64_t ts)
{
	struct vmjob_iter *it;

	if (e->nit && e->it[e->nit - 1].n >= n)
		return e->it[e->nit - 1].n == n ? &e->it[e->nit - 1] : NULL;
	if (e->nit == VMJOB_ITERS)
		return &e->it[e->nit - 1]; /* the last record stands for the rest */
	it = &e->it[e->nit++];
	memset(it, 0, sizeof(*it));
	it->n = n;
	it->start_ns = ts;
	return it;
}

static void job_sample(struct vmjob_one *e, const struct vm_job_stats *st, uint64_t ts)
{
	struct vmjob_iter *it = NULL;

	job_start_from(e, st, ts);
	job_op_from(e, st);
	e->last = *st;
	e->have_last = true;
	if (st->have & VM_JOB_HAVE_DIRTY_RATE) {
		e->dirty_rate = st->dirty_rate;
		e->have_rate = true;
	}
	if ((st->have & VM_JOB_HAVE_ITERATION) && st->iteration) {
		e->migration = true;
		it = job_iter(e, st->iteration, ts);
	}
	if (!it)
		return;
	if (!it->sampled && (st->have & VM_JOB_HAVE_MEMORY)) {
		it->sampled = true;
		it->first_processed = st->mem_processed;
		it->first_remaining = st->mem_remaining;
		it->page_size = st->have & VM_JOB_HAVE_PAGE_SIZE ? st->page_size : 0;
	}
	if (st->have & VM_JOB_HAVE_DIRTY_RATE) {
		it->dirty_rate = st->dirty_rate;
		it->have_rate = true;
	}
}

/* Copy src into dst[len], truncated, NUL-terminated. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n;

	for (n = 0; n + 1 < len && src[n]; n++)
		dst[n] = src[n];
	dst[n] = '\0';
}

static struct span_attr *attr_next(struct span *sp, const char *key)
{
	struct span_attr *a;

	if (sp->nattrs >= SPAN_MAX_ATTRS)
		return NULL;
	a = &sp->attrs[sp->nattrs++];
	copy_str(a->key, sizeof(a->key), key);
	return a;
}

static void attr_int(struct span *sp, const char *key, uint64_t v)
{
	struct span_attr *a = attr_next(sp, key);

	if (a) {
		a->type = SPAN_ATTR_INT;
		a->i = v > INT64_MAX ? INT64_MAX : (int64_t)v;
	}
}

static void attr_str(struct span *sp, const char *key, const char *v)
{
	struct span_attr *a = attr_next(sp, key);

	if (a) {
		a->type = SPAN_ATTR_STR;
		copy_str(a->s, sizeof(a->s), v);
	}
}

/* Start j->span: a new span ID in trace (NULL: a new trace), child of parent (or root). */
static struct span *span_begin(struct vmjob *j, const struct vmjob_one *e, const char *name,
			       const uint8_t *trace_id, const uint8_t *parent_id, uint64_t start,
			       uint64_t end)
{
	struct span *sp = &j->span;

	memset(sp, 0, sizeof(*sp));
	if (trace_id)
		memcpy(sp->trace_id, trace_id, sizeof(sp->trace_id));
	else
		j->ops.new_id(j->ops.ctx, sp->trace_id, sizeof(sp->trace_id));
	j->ops.new_id(j->ops.ctx, sp->span_id, sizeof(sp->span_id));
	if (parent_id)
		memcpy(sp->parent_span_id, parent_id, sizeof(sp->parent_span_id));
	snprintf(sp->name, sizeof(sp->name), "%s", name);
	sp->kind = SPAN_KIND_INTERNAL;
	sp->start_ns = start;
	sp->end_ns = end > start ? end : start;
	attr_str(sp, "novamon.vm", e->name);
	if (e->uuid[0])
		attr_str(sp, "novamon.vm.uuid", e->uuid);
	return sp;
}

static const char *job_name(const struct vmjob_one *e)
{
	switch (e->op) {
	case VM_JOB_OP_MIGRATION_OUT:
	case VM_JOB_OP_MIGRATION_IN:
		return "vm migrate";
	case VM_JOB_OP_SAVE:
		return "vm save";
	case VM_JOB_OP_RESTORE:
		return "vm restore";
	case VM_JOB_OP_DUMP:
		return "vm dump";
	case VM_JOB_OP_SNAPSHOT:
		return "vm snapshot";
	default:
		return e->migration ? "vm migrate" : "vm job";
	}
}

/* The phases of a migration that ended at end, children of parent in trace. */
static void job_phases(struct vmjob *j, const struct vmjob_one *e, const struct vm_job_stats *st,
		       const uint8_t *trace, const uint8_t *parent, uint64_t end, bool completed)
{
	/* While it runs, libvirt's downtime is the expected one: only a completed job's counts. */
	uint64_t down_ns =
		completed && (st->have & VM_JOB_HAVE_DOWNTIME) ? st->downtime_ms * NS_PER_MS : 0;
	uint64_t setup_end = e->start_ns, pass_end, s0 = 0, s1 = 0;
	struct span *sp;
	size_t i;

	if (st->have & VM_JOB_HAVE_SETUP) {
		setup_end = e->start_ns + st->setup_ms * NS_PER_MS;
		sp = span_begin(j, e, "vm migrate setup", trace, parent, e->start_ns, setup_end);
		attr_int(sp, "novamon.job.setup_ms", st->setup_ms);
		j->ops.emit(j->ops.ctx, sp);
	}
	pass_end = e->pause_ns && e->pause_ns <= end ? e->pause_ns : end;
	for (i = 0; i < e->nit; i++) {
		const struct vmjob_iter *it = &e->it[i];
		/* The first pass follows the setup (its first poll may be late). */
		uint64_t start = it->n == 1 || it->start_ns < setup_end ? setup_end : it->start_ns;
		uint64_t stop = i + 1 < e->nit ? e->it[i + 1].start_ns : pass_end;

		sp = span_begin(j, e, "vm migrate iteration", trace, parent, start, stop);
		attr_int(sp, "novamon.job.iteration", it->n);
		if (it->sampled) {
			uint64_t next = 0;
			bool have_next = false;

			if (i + 1 < e->nit && e->it[i + 1].sampled) {
				next = e->it[i + 1].first_processed;
				have_next = true;
			} else if (i + 1 == e->nit && completed &&
				   (st->have & VM_JOB_HAVE_MEMORY)) {
				next = st->mem_processed;
				have_next = true;
			}
			attr_int(sp, "novamon.job.memory.remaining_bytes", it->first_remaining);
			if (it->page_size)
				attr_int(sp, "novamon.job.memory.dirty_pages",
					 it->first_remaining / it->page_size);
			if (have_next && next >= it->first_processed)
				attr_int(sp, "novamon.job.memory.processed_bytes",
					 next - it->first_processed);
		}
		if (it->have_rate)
			attr_int(sp, "novamon.job.memory.dirty_rate", it->dirty_rate);
		j->ops.emit(j->ops.ctx, sp);
	}
	if (e->pause_ns && e->pause_ns <= end) {
		s0 = e->pause_ns;
		s1 = down_ns && s0 + down_ns < end ? s0 + down_ns : end;
	} else if (!completed) {
		return; /* never paused */
	} else if (e->resume_ns && down_ns && e->resume_ns >= e->start_ns + down_ns) {
		s1 = e->resume_ns;
		s0 = s1 - down_ns;
	} else if (down_ns && end >= e->start_ns + down_ns) {
		s1 = end;
		s0 = end - down_ns;
	}
	if (!s1)
		return;
	sp = span_begin(j, e, "vm migrate stop_and_copy", trace, parent, s0, s1);
	if (down_ns)
		attr_int(sp, "novamon.job.downtime_ms", st->downtime_ms);
	j->ops.emit(j->ops.ctx, sp);
	if (completed && s1 < end) {
		sp = span_begin(j, e, "vm migrate completion", trace, parent, s1, end);
		j->ops.emit(j->ops.ctx, sp);
	}
}

/*
 * The job ended at ts: emit its phases and its span. final holds libvirt's
 * statistics of the ended job, or NULL when it kept none (the last running
 * ones stand in for them).
 */
static void job_end(struct vmjob *j, struct vmjob_one *e, const struct vm_job_stats *final,
		    uint64_t ts, bool at_poll)
{
	struct vm_job_stats st = final ? *final : e->last;
	uint8_t result = final ? final->result : VM_JOB_UNKNOWN;
	const uint8_t *trace = e->trace_id, *parent = e->span_id;
	const char *status;
	struct span *sp;
	bool migration;

	if (final) {
		job_start_from(e, final, ts);
		job_op_from(e, final);
		if (!(st.have & VM_JOB_HAVE_ITERATION) && e->have_last &&
		    (e->last.have & VM_JOB_HAVE_ITERATION)) {
			st.iteration = e->last.iteration;
			st.have |= VM_JOB_HAVE_ITERATION;
		}
	} else if (!e->have_last) {
		memset(&st, 0, sizeof(st));
	}
	migration = e->op == VM_JOB_OP_MIGRATION_OUT || e->op == VM_JOB_OP_MIGRATION_IN ||
		    (e->op == VM_JOB_OP_UNKNOWN && e->migration);
	if (!migration && e->op == VM_JOB_OP_UNKNOWN) {
		job_drop(j, e, at_poll, ts); /* nothing known of it: no span */
		return;
	}
	/*
	 * Over with no statistics: it completed if the domain stopped here
	 * (migrated away, saved); a migration whose domain is still running
	 * on the source, or never resumed on the destination, failed or was
	 * cancelled (libvirt 9 keeps no statistics of those).
	 */
	if (result == VM_JOB_UNKNOWN && e->stop_ns) {
		result = VM_JOB_COMPLETED;
	} else if (result == VM_JOB_UNKNOWN &&
		   (e->op == VM_JOB_OP_MIGRATION_OUT ||
		    (e->op == VM_JOB_OP_MIGRATION_IN && !e->resume_ns))) {
		result = VM_JOB_FAILED;
		snprintf(st.errmsg, sizeof(st.errmsg), "%s",
			 "no completion from libvirt: failed or cancelled");
	}
	if (e->postcopy_failed)
		result = VM_JOB_FAILED;
	switch (result) {
	case VM_JOB_COMPLETED:
		status = "completed";
		break;
	case VM_JOB_FAILED:
		status = "failed";
		break;
	case VM_JOB_CANCELLED:
		status = "cancelled";
		break;
	default:
		status = "unknown";
		break;
	}
	if (migration)
		job_phases(j, e, &st, trace, parent, ts, result == VM_JOB_COMPLETED);

	sp = span_begin(j, e, job_name(e), trace, NULL, e->start_ns, ts);
	memcpy(sp->span_id, parent, sizeof(sp->span_id));
	if (e->op == VM_JOB_OP_MIGRATION_OUT || e->op == VM_JOB_OP_MIGRATION_IN)
		attr_str(sp, "novamon.job.direction",
			 e->op == VM_JOB_OP_MIGRATION_IN ? "in" : "out");
	attr_str(sp, "novamon.job.status", status);
	if (st.have & VM_JOB_HAVE_DATA) {
		attr_int(sp, "novamon.job.data.total_bytes", st.data_total);
		attr_int(sp, "novamon.job.data.processed_bytes", st.data_processed);
		attr_int(sp, "novamon.job.data.remaining_bytes", st.data_remaining);
	}
	if (st.have & VM_JOB_HAVE_MEMORY)
		attr_int(sp, "novamon.job.memory.total_bytes", st.mem_total);
	if (e->have_rate)
		attr_int(sp, "novamon.job.memory.dirty_rate", e->dirty_rate);
	if (st.have & VM_JOB_HAVE_ITERATION)
		attr_int(sp, "novamon.job.iterations", st.iteration);
	else if (e->nit)
		attr_int(sp, "novamon.job.iterations", e->it[e->nit - 1].n);
	if ((st.have & VM_JOB_HAVE_DOWNTIME) && result == VM_JOB_COMPLETED)
		attr_int(sp, "novamon.job.downtime_ms", st.downtime_ms);
	if (result == VM_JOB_FAILED || result == VM_JOB_CANCELLED) {
		sp->status = SPAN_STATUS_ERROR;
		attr_str(sp, "error.type", status);
		char msg[sizeof(sp->status_message) + sizeof(st.errmsg)];

		snprintf(msg, sizeof(msg), "%s %s%s%s", job_name(e) + 3, status,
			 st.errmsg[0] ? ": " : "", st.errmsg);
		copy_str(sp->status_message, sizeof(sp->status_message), msg);
	} else if (result == VM_JOB_COMPLETED) {
		sp->status = SPAN_STATUS_OK;
	}
	j->ops.emit(j->ops.ctx, sp);
	job_drop(j, e, at_poll, ts);
}

/*
 * The end of a job a poll at ts found over: the lifecycle event that ended
 * it (stopped on a source, resumed on a destination) when there is one,
 * closer than the poll.
 */
static uint64_t job_gone_end(const struct vmjob_one *e, uint64_t ts)
{
	uint64_t last = e->stop_ns > e->resume_ns ? e->stop_ns : e->resume_ns;

	return last > e->start_ns && last < ts ? last : ts;
}

/*
 * Can st, statistics of a completed job read when e was found over at ts,
 * be e's? Not those of another operation, nor of a job longer than e.
 */
static bool job_stats_fit(const struct vmjob_one *e, const struct vm_job_stats *st, uint64_t ts)
{
	if (e->op != VM_JOB_OP_UNKNOWN && st->op != VM_JOB_OP_UNKNOWN && st->op != e->op)
		return false;
	return !e->start_exact || !(st->have & VM_JOB_HAVE_ELAPSED) ||
	       st->elapsed_ms * NS_PER_MS <= ts - e->start_ns + VMJOB_SLACK_NS;
}

void vmjob__observe(struct vmjob *j, const struct vm_job_obs *o, uint64_t mono_to_real)
{
	uint64_t ts = o->ts_ms * NS_PER_MS + mono_to_real;
	struct vmjob_one *e = job_find(j, o->name);

	switch (o->kind) {
	case VM_JOB_OBS_STATS:
		/* A domain's start is a job too: not one of ours. */
		if (!e && (o->stats.op == VM_JOB_OP_OTHER || o->stats.result != VM_JOB_RUNNING))
			return;
		if (!e)
			e = job_add(j, o, ts);
		if (e)
			job_sample(e, &o->stats, ts);
		return;
	case VM_JOB_OBS_ITERATION:
		if (!e)
			e = job_add(j, o, ts);
		if (!e)
			return;
		e->migration = true;
		if (o->iteration)
			job_iter(e, o->iteration, ts);
		return;
	case VM_JOB_OBS_LIFECYCLE:
		if (!e && (o->lc == VM_JOB_LC_INCOMING || o->lc == VM_JOB_LC_PAUSED))
			e = job_add(j, o, ts);
		if (!e)
			return;
		switch (o->lc) {
		case VM_JOB_LC_INCOMING:
			if (e->op == VM_JOB_OP_UNKNOWN)
				e->op = VM_JOB_OP_MIGRATION_IN;
			break;
		case VM_JOB_LC_RESTORED:
			/* The restore is over (libvirt keeps no statistics of it). */
			if (e->op == VM_JOB_OP_UNKNOWN)
				e->op = VM_JOB_OP_RESTORE;
			e->stop_ns = ts;
			break;
		case VM_JOB_LC_PAUSED:
			if (!e->pause_ns)
				e->pause_ns = ts;
			break;
		case VM_JOB_LC_RESUMED:
			e->resume_ns = ts;
			break;
		case VM_JOB_LC_STOPPED:
			e->stop_ns = ts;
			break;
		case VM_JOB_LC_POSTCOPY_FAILED:
			e->postcopy_failed = true;
			break;
		}
		return;
	case VM_JOB_OBS_COMPLETED:
		/* Even a job never seen running has its whole story in the event. */
		if (!e && job_done_recently(j, o->name, ts))
			return;
		if (!e && (o->stats.have & VM_JOB_HAVE_ELAPSED))
			e = job_add(j, o, ts);
		if (e)
			job_end(j, e, &o->stats, ts, false);
		return;
	case VM_JOB_OBS_GONE:
		if (!e)
			return;
		if (o->stats.result == VM_JOB_UNKNOWN || !job_stats_fit(e, &o->stats, ts)) {
			if (!e->gone_ns)
				e->gone_ns = ts;
			return;
		}
		job_end(j, e, &o->stats, job_gone_end(e, ts), true);
		return;
	}
}

void vmjob__expire(struct vmjob *j, uint64_t now_real)
{
	size_t i;

	for (i = 0; i < VMJOB_MAX && j->active; i++) {
		struct vmjob_one *e = &j->jobs[i];

		if (e->used && !e->done && e->gone_ns &&
		    now_real - e->gone_ns >= VMJOB_GONE_GRACE_NS)
			job_end(j, e, NULL, job_gone_end(e, e->gone_ns), true);
	}
}
