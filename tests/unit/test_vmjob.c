/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmjob: libvirt jobs as spans, from job observations recorded against two
 * real libvirt 9.0 daemons (tests/integration/test_migrate.py): a live
 * migration out (polled stats, iteration events, pause, a poll finding no
 * job before the job-completed event), a migration in (no stats until it
 * is over), a migration cancelled with domjobabort (libvirt then returns
 * the previous job's statistics), a save, a job seen only through its
 * job-completed event; phases, attributes, status and one span per job.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "spans/vmjob.h"
#include "span_attrs.h"

#define OFF 1000000000000000000ull /* mono -> real */
#define MS 1000000ull
#define MAX_SPANS 32

static struct span got[MAX_SPANS];
static size_t ngot;
static uint8_t next_id;

static void fake_id(void *ctx, uint8_t *id, size_t n)
{
	(void)ctx;
	memset(id, 0, n);
	id[0] = ++next_id;
}

static void take(void *ctx, const struct span *sp)
{
	(void)ctx;
	cr_assert_lt(ngot, MAX_SPANS);
	got[ngot++] = *sp;
}

static struct vmjob *jobs;

static void setup(void)
{
	struct vmjob_ops ops = { .new_id = fake_id, .emit = take };

	ngot = 0;
	next_id = 0;
	jobs = vmjob__new(&ops);
	cr_assert_not_null(jobs);
}

static void teardown(void)
{
	jobs = vmjob__free(jobs);
}

TestSuite(vmjob, .init = setup, .fini = teardown);

static void obs(uint8_t kind, uint64_t ms, const struct vm_job_stats *st, uint8_t lc,
		uint64_t iteration)
{
	struct vm_job_obs o;

	memset(&o, 0, sizeof(o));
	snprintf(o.name, sizeof(o.name), "%s", "nmig");
	snprintf(o.uuid, sizeof(o.uuid), "%s", "d0638adf-4f68-4642-880e-158e9a409396");
	o.kind = kind;
	o.ts_ms = ms;
	o.lc = lc;
	o.iteration = iteration;
	if (st)
		o.stats = *st;
	vmjob__observe(jobs, &o, OFF);
}

static const struct span *find(const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < ngot; i++)
		if (!strcmp(got[i].name, name) && !nth--)
			return &got[i];
	return NULL;
}

static size_t count(const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < ngot; i++)
		n += !strcmp(got[i].name, name);
	return n;
}

/* A running migration's stats as libvirt reported them 2 s into it. */
static struct vm_job_stats running_out(void)
{
	struct vm_job_stats st = {
		.have = VM_JOB_HAVE_ELAPSED | VM_JOB_HAVE_SETUP | VM_JOB_HAVE_DOWNTIME |
			VM_JOB_HAVE_DATA | VM_JOB_HAVE_MEMORY | VM_JOB_HAVE_DIRTY_RATE |
			VM_JOB_HAVE_ITERATION | VM_JOB_HAVE_PAGE_SIZE,
		.op = VM_JOB_OP_MIGRATION_OUT,
		.result = VM_JOB_RUNNING,
		.elapsed_ms = 2000,
		.setup_ms = 1,
		.downtime_ms = 300, /* the expected one while running */
		.data_total = 268828672,
		.data_processed = 105615360,
		.data_remaining = 163213312,
		.mem_total = 268828672,
		.mem_processed = 105615360,
		.mem_remaining = 163213312,
		.dirty_rate = 0,
		.page_size = 4096,
		.iteration = 1,
	};
	return st;
}

static struct vm_job_stats completed(uint8_t op, uint64_t elapsed_ms, uint64_t downtime_ms)
{
	struct vm_job_stats st = {
		.have = VM_JOB_HAVE_ELAPSED | VM_JOB_HAVE_SETUP | VM_JOB_HAVE_DOWNTIME |
			VM_JOB_HAVE_DATA | VM_JOB_HAVE_MEMORY | VM_JOB_HAVE_ITERATION |
			VM_JOB_HAVE_PAGE_SIZE,
		.op = op,
		.result = VM_JOB_COMPLETED,
		.elapsed_ms = elapsed_ms,
		.setup_ms = 1,
		.downtime_ms = downtime_ms,
		.data_total = 268828672,
		.data_processed = 219112371,
		.data_remaining = 0,
		.mem_total = 268828672,
		.mem_processed = 219112371,
		.mem_remaining = 0,
		.page_size = 4096,
		.iteration = 3,
	};
	return st;
}

static void assert_child(const struct span *c, const struct span *parent)
{
	cr_assert_not_null(c);
	cr_assert_eq(memcmp(c->trace_id, parent->trace_id, 16), 0, "%s not in the trace", c->name);
	cr_assert_eq(memcmp(c->parent_span_id, parent->span_id, 8), 0, "%s not a child", c->name);
	cr_assert_geq(c->start_ns, parent->start_ns, "%s starts before its job", c->name);
	cr_assert_leq(c->end_ns, parent->end_ns, "%s ends after its job", c->name);
}

Test(vmjob, migration_out_phases_and_bytes)
{
	struct vm_job_stats run = running_out(),
			    done = completed(VM_JOB_OP_MIGRATION_OUT, 2265, 33);
	const struct span *m, *sp;
	static const uint8_t zero[8];

	obs(VM_JOB_OBS_STATS, 10000, &run, 0, 0);
	obs(VM_JOB_OBS_ITERATION, 11100, NULL, 0, 2);
	obs(VM_JOB_OBS_LIFECYCLE, 11102, NULL, VM_JOB_LC_PAUSED, 0);
	obs(VM_JOB_OBS_ITERATION, 11103, NULL, 0, 3);
	cr_assert_eq(vmjob__active(jobs), 1);
	/* The source reports no job while it confirms with the destination... */
	obs(VM_JOB_OBS_GONE, 11500, &(struct vm_job_stats){ .result = VM_JOB_UNKNOWN }, 0, 0);
	obs(VM_JOB_OBS_LIFECYCLE, 11600, NULL, VM_JOB_LC_STOPPED, 0);
	vmjob__expire(jobs, OFF + 12000 * MS);
	cr_assert_eq(ngot, 0, "ended before libvirt's job-completed event");
	/* ... and sends its job-completed event after. */
	obs(VM_JOB_OBS_COMPLETED, 13000, &done, 0, 0);
	cr_assert_eq(vmjob__active(jobs), 0);
	cr_assert_eq(ngot, 7, "%zu spans", ngot);

	m = find("vm migrate", 0);
	cr_assert_not_null(m);
	cr_assert_eq(memcmp(m->parent_span_id, zero, 8), 0);
	cr_assert_eq(m->start_ns, OFF + 8000 * MS, "start = first poll - elapsed");
	cr_assert_eq(m->end_ns, OFF + 13000 * MS);
	cr_assert_eq(m->status, SPAN_STATUS_OK);
	cr_assert_str_eq(attr_s(m, "novamon.vm"), "nmig");
	cr_assert_str_eq(attr_s(m, "novamon.job.direction"), "out");
	cr_assert_str_eq(attr_s(m, "novamon.job.status"), "completed");
	cr_assert_eq(attr_i(m, "novamon.job.data.total_bytes"), 268828672);
	cr_assert_eq(attr_i(m, "novamon.job.data.processed_bytes"), 219112371);
	cr_assert_eq(attr_i(m, "novamon.job.data.remaining_bytes"), 0);
	cr_assert_eq(attr_i(m, "novamon.job.memory.total_bytes"), 268828672);
	cr_assert_eq(attr_i(m, "novamon.job.memory.dirty_rate"), 0);
	cr_assert_eq(attr_i(m, "novamon.job.iterations"), 3);
	cr_assert_eq(attr_i(m, "novamon.job.downtime_ms"), 33);
	cr_assert_null(attr(m->attrs, m->nattrs, "error.type"));

	sp = find("vm migrate setup", 0);
	assert_child(sp, m);
	cr_assert_eq(sp->end_ns - sp->start_ns, 1 * MS);

	cr_assert_eq(count("vm migrate iteration"), 3);
	sp = find("vm migrate iteration", 0);
	assert_child(sp, m);
	cr_assert_eq(attr_i(sp, "novamon.job.iteration"), 1);
	cr_assert_eq(sp->start_ns, OFF + 8001 * MS, "the first pass follows the setup");
	cr_assert_eq(sp->end_ns, OFF + 11100 * MS, "until the second pass's event");
	cr_assert_eq(attr_i(sp, "novamon.job.memory.remaining_bytes"), 163213312);
	cr_assert_eq(attr_i(sp, "novamon.job.memory.dirty_pages"), 163213312 / 4096);
	sp = find("vm migrate iteration", 1);
	assert_child(sp, m);
	cr_assert_eq(attr_i(sp, "novamon.job.iteration"), 2);
	cr_assert_eq(sp->start_ns, OFF + 11100 * MS);
	cr_assert_null(attr(sp->attrs, sp->nattrs, "novamon.job.memory.remaining_bytes"),
		       "no poll during it");

	sp = find("vm migrate stop_and_copy", 0);
	assert_child(sp, m);
	cr_assert_eq(sp->start_ns, OFF + 11102 * MS, "from the migration pause");
	cr_assert_eq(sp->end_ns, OFF + (11102 + 33) * MS, "for the downtime");
	cr_assert_eq(attr_i(sp, "novamon.job.downtime_ms"), 33);

	sp = find("vm migrate completion", 0);
	assert_child(sp, m);
	cr_assert_eq(sp->start_ns, OFF + (11102 + 33) * MS);
	cr_assert_eq(sp->end_ns, OFF + 13000 * MS);
}

Test(vmjob, completed_stats_at_a_poll_then_the_event_is_one_span)
{
	struct vm_job_stats run = running_out(),
			    done = completed(VM_JOB_OP_MIGRATION_OUT, 2265, 33);

	obs(VM_JOB_OBS_STATS, 10000, &run, 0, 0);
	obs(VM_JOB_OBS_LIFECYCLE, 11102, NULL, VM_JOB_LC_PAUSED, 0);
	obs(VM_JOB_OBS_LIFECYCLE, 11600, NULL, VM_JOB_LC_STOPPED, 0);
	obs(VM_JOB_OBS_GONE, 12000, &done, 0, 0);
	cr_assert_eq(count("vm migrate"), 1);
	cr_assert_eq(find("vm migrate", 0)->end_ns, OFF + 11600 * MS, "ends at the stop event");
	obs(VM_JOB_OBS_COMPLETED, 12100, &done, 0, 0);
	cr_assert_eq(count("vm migrate"), 1, "the late event is the same job's");
}

Test(vmjob, migration_in)
{
	struct vm_job_stats done = completed(VM_JOB_OP_MIGRATION_IN, 2389, 32);
	const struct span *m, *sp;

	obs(VM_JOB_OBS_LIFECYCLE, 10000, NULL, VM_JOB_LC_INCOMING, 0);
	obs(VM_JOB_OBS_LIFECYCLE, 12300, NULL, VM_JOB_LC_RESUMED, 0);
	obs(VM_JOB_OBS_GONE, 12800, &done, 0, 0);
	m = find("vm migrate", 0);
	cr_assert_not_null(m);
	cr_assert_eq(m->status, SPAN_STATUS_OK);
	cr_assert_str_eq(attr_s(m, "novamon.job.direction"), "in");
	cr_assert_eq(m->end_ns, OFF + 12300 * MS, "ends at the resume, not the poll");
	cr_assert_eq(m->start_ns, OFF + (12300 - 2389) * MS);
	cr_assert_eq(attr_i(m, "novamon.job.iterations"), 3);
	sp = find("vm migrate stop_and_copy", 0);
	assert_child(sp, m);
	cr_assert_eq(sp->end_ns, OFF + 12300 * MS, "the downtime ends at the resume");
	cr_assert_eq(sp->start_ns, OFF + (12300 - 32) * MS);
	cr_assert_eq(count("vm migrate iteration"), 0, "a destination sees no pass");
}

Test(vmjob, cancelled_migration_is_an_error)
{
	struct vm_job_stats run = running_out();
	/* After domjobabort libvirt 9.0 returns the previous (incoming) job's statistics. */
	struct vm_job_stats stale = completed(VM_JOB_OP_MIGRATION_IN, 2389, 32);
	const struct span *m;

	run.elapsed_ms = 1000;
	obs(VM_JOB_OBS_STATS, 10000, &run, 0, 0);
	obs(VM_JOB_OBS_GONE, 12000, &stale, 0, 0);
	vmjob__expire(jobs, OFF + 16000 * MS);
	cr_assert_eq(ngot, 0, "waits for a late job-completed event");
	vmjob__expire(jobs, OFF + 17000 * MS);
	m = find("vm migrate", 0);
	cr_assert_not_null(m);
	cr_assert_eq(m->status, SPAN_STATUS_ERROR);
	cr_assert(strstr(m->status_message, "failed"), "%s", m->status_message);
	cr_assert_str_eq(attr_s(m, "novamon.job.status"), "failed");
	cr_assert_str_eq(attr_s(m, "error.type"), "failed");
	cr_assert_str_eq(attr_s(m, "novamon.job.direction"), "out");
	cr_assert_eq(attr_i(m, "novamon.job.data.processed_bytes"), 105615360, "how far it got");
	cr_assert_null(attr(m->attrs, m->nattrs, "novamon.job.downtime_ms"), "never paused");
	cr_assert_eq(m->start_ns, OFF + 9000 * MS);
	cr_assert_eq(m->end_ns, OFF + 12000 * MS);
	cr_assert_null(find("vm migrate stop_and_copy", 0));
	cr_assert_null(find("vm migrate completion", 0));
	cr_assert_not_null(find("vm migrate iteration", 0));
}

Test(vmjob, failed_migration_with_libvirt_message)
{
	struct vm_job_stats run = running_out(), fail = run;

	fail.result = VM_JOB_FAILED;
	fail.elapsed_ms = 2500;
	snprintf(fail.errmsg, sizeof(fail.errmsg), "%s", "connection reset");
	obs(VM_JOB_OBS_STATS, 10000, &run, 0, 0);
	obs(VM_JOB_OBS_GONE, 10600, &fail, 0, 0);
	cr_assert_eq(ngot, 3, "setup, one pass, the job");
	cr_assert_eq(find("vm migrate", 0)->status, SPAN_STATUS_ERROR);
	cr_assert_str_eq(find("vm migrate", 0)->status_message, "migrate failed: connection reset");
}

Test(vmjob, save_has_no_migration_phases)
{
	struct vm_job_stats run = running_out(), done = completed(VM_JOB_OP_SAVE, 900, 216);
	const struct span *m;

	run.op = VM_JOB_OP_SAVE;
	run.elapsed_ms = 500;
	obs(VM_JOB_OBS_STATS, 10000, &run, 0, 0);
	obs(VM_JOB_OBS_LIFECYCLE, 10400, NULL, VM_JOB_LC_STOPPED, 0);
	obs(VM_JOB_OBS_GONE, 11000, &done, 0, 0);
	cr_assert_eq(ngot, 1);
	m = find("vm save", 0);
	cr_assert_not_null(m);
	cr_assert_eq(m->status, SPAN_STATUS_OK);
	cr_assert_null(attr(m->attrs, m->nattrs, "novamon.job.direction"));
	cr_assert_eq(m->start_ns, OFF + 9500 * MS);
	cr_assert_eq(m->end_ns, OFF + 10400 * MS);
}

Test(vmjob, job_completed_event_alone)
{
	struct vm_job_stats done = completed(VM_JOB_OP_MIGRATION_OUT, 700, 20);
	const struct span *m;

	obs(VM_JOB_OBS_COMPLETED, 10000, &done, 0, 0);
	m = find("vm migrate", 0);
	cr_assert_not_null(m);
	cr_assert_eq(m->start_ns, OFF + 9300 * MS);
	cr_assert_eq(m->status, SPAN_STATUS_OK);
	cr_assert_not_null(find("vm migrate setup", 0));
	cr_assert_not_null(find("vm migrate stop_and_copy", 0));
}

Test(vmjob, domain_start_job_and_unknown_jobs_give_no_span)
{
	struct vm_job_stats st = { .op = VM_JOB_OP_OTHER, .result = VM_JOB_RUNNING };

	obs(VM_JOB_OBS_STATS, 10000, &st, 0, 0);
	cr_assert_eq(vmjob__active(jobs), 0);
	obs(VM_JOB_OBS_GONE, 10500, &(struct vm_job_stats){ .result = VM_JOB_UNKNOWN }, 0, 0);
	obs(VM_JOB_OBS_LIFECYCLE, 11000, NULL, VM_JOB_LC_STOPPED, 0);
	vmjob__expire(jobs, OFF + 60000 * MS);
	cr_assert_eq(ngot, 0);
}

/* The job's IDs are given out when it begins (exemplars) and are the emitted span's. */
static uint8_t began_trace[16], began_span[8];
static int nbegin, nend;
static size_t ngot_at_begin;

static void on_begin(void *ctx, const char *name, const uint8_t *trace_id, const uint8_t *span_id,
		     uint64_t start_ns)
{
	(void)ctx;
	(void)start_ns;
	cr_assert_str_eq(name, "nmig");
	memcpy(began_trace, trace_id, sizeof(began_trace));
	memcpy(began_span, span_id, sizeof(began_span));
	ngot_at_begin = ngot;
	nbegin++;
}

static void on_end(void *ctx, const char *name)
{
	(void)ctx;
	cr_assert_str_eq(name, "nmig");
	nend++;
}

Test(vmjob, ids_given_out_at_the_start_are_the_spans)
{
	struct vmjob_ops ops = { .new_id = fake_id, .emit = take, .begin = on_begin, .end = on_end };
	struct vm_job_stats run = running_out(),
			    done = completed(VM_JOB_OP_MIGRATION_OUT, 4000, 21);
	const struct span *m;

	jobs = vmjob__free(jobs);
	jobs = vmjob__new(&ops);
	nbegin = nend = 0;
	obs(VM_JOB_OBS_STATS, 10000, &run, 0, 0);
	cr_assert_eq(nbegin, 1);
	cr_assert_eq(ngot_at_begin, 0, "given out before any span is emitted");
	cr_assert_eq(nend, 0);
	obs(VM_JOB_OBS_STATS, 11000, &run, 0, 0);
	obs(VM_JOB_OBS_COMPLETED, 12000, &done, 0, 0);
	cr_assert_eq(nbegin, 1);
	cr_assert_eq(nend, 1);
	m = find("vm migrate", 0);
	cr_assert_not_null(m);
	cr_assert_eq(memcmp(m->trace_id, began_trace, 16), 0);
	cr_assert_eq(memcmp(m->span_id, began_span, 8), 0);
	cr_assert_eq(memcmp(find("vm migrate setup", 0)->trace_id, began_trace, 16), 0);
}
