/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for userspace/exemplars.c (the ring, its queries, its tick
 * sink) and userspace/spans/vmtrace.c (the board of the trace covering
 * each VM).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exemplars.h"
#include "metrics.h"
#include "spans/vmtrace.h"

/* What a query handed back, flattened: "name{labels}:ts,ts;" per series. */
struct tex_out {
	char text[2048];
	size_t len;
};

static int tex_collect(void *ctx, const struct tsdb_label *l, size_t n,
		       const struct metric_exemplar *const *ex, size_t nex)
{
	struct tex_out *o = ctx;
	size_t i;

	cr_assert_gt(n, 0);
	cr_assert_str_eq(l[0].name, "__name__");
	o->len += snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s{", l[0].value);
	for (i = 1; i < n; i++)
		o->len += snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s%s=%s",
				   i > 1 ? "," : "", l[i].name, l[i].value);
	o->len += snprintf(o->text + o->len, sizeof(o->text) - o->len, "}:");
	for (i = 0; i < nex; i++)
		o->len += snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s%lld",
				   i ? "," : "", (long long)ex[i]->timestamp_ms);
	o->len += snprintf(o->text + o->len, sizeof(o->text) - o->len, ";");
	return 0;
}

static struct metric_exemplar tex_at(int64_t ts)
{
	struct metric_exemplar ex = { .trace_id = { 1 }, .span_id = { 2 }, .value = 1 };

	ex.timestamp_ms = ts;
	return ex;
}

static const char *tex_query(struct exemplars *x, const struct tsdb_matcher *m, size_t nm,
			     int64_t start, int64_t end)
{
	static struct tex_out o;
	struct exemplars_selector sel = { m, nm };

	memset(&o, 0, sizeof(o));
	cr_assert_eq(exemplars__query(x, &sel, 1, start, end, tex_collect, &o), 0);
	return o.text;
}

Test(exemplars, grouped_by_series_oldest_first_in_range)
{
	struct exemplars *x = exemplars__new(16);
	struct tsdb_matcher all = { TSDB_MATCH_RE, "__name__", ".+" };
	struct tsdb_matcher vm = { TSDB_MATCH_EQ, "vm", "a" };
	struct tsdb_matcher rx = { TSDB_MATCH_RE, "vm", "b|c" };
	struct tsdb_matcher nolabel = { TSDB_MATCH_EQ, "tenant", "" };
	struct metric_exemplar ex;
	int64_t t;

	cr_assert_not_null(x);
	for (t = 1000; t <= 3000; t += 1000) {
		ex = tex_at(t);
		cr_assert_eq(exemplars__add(x, "c_total", "vm=\"b\"", &ex), 0);
		cr_assert_eq(exemplars__add(x, "c_total", "vm=\"a\"", &ex), 0);
	}
	cr_expect_str_eq(tex_query(x, &all, 1, 0, 10000),
			 "c_total{vm=a}:1000,2000,3000;c_total{vm=b}:1000,2000,3000;");
	cr_expect_str_eq(tex_query(x, &vm, 1, 2000, 3000), "c_total{vm=a}:2000,3000;");
	cr_expect_str_eq(tex_query(x, &rx, 1, 0, 1500), "c_total{vm=b}:1000;");
	/* a label the series lacks matches as "" */
	cr_expect_str_eq(tex_query(x, &nolabel, 1, 3000, 3000),
			 "c_total{vm=a}:3000;c_total{vm=b}:3000;");
	cr_expect_str_eq(tex_query(x, &vm, 1, 4000, 5000), "");
	exemplars__free(x);
}

Test(exemplars, ring_keeps_the_newest)
{
	struct exemplars *x = exemplars__new(4);
	struct tsdb_matcher all = { TSDB_MATCH_RE, "__name__", ".+" };
	struct exemplars_stats st;
	struct metric_exemplar ex;
	int64_t t;

	for (t = 1; t <= 10; t++) {
		ex = tex_at(t);
		cr_assert_eq(exemplars__add(x, "c_total", "", &ex), 0);
	}
	cr_expect_str_eq(tex_query(x, &all, 1, 0, 100), "c_total{}:7,8,9,10;");
	exemplars__stats(x, &st);
	cr_expect_eq(st.appended, 10);
	cr_expect_eq(st.in_storage, 4);
	cr_expect_eq(st.max, 4);
	exemplars__free(x);
}

Test(exemplars, bad_regex_and_null)
{
	struct exemplars *x = exemplars__new(0);
	struct tsdb_matcher bad = { TSDB_MATCH_RE, "vm", "(" };
	struct exemplars_selector sel = { &bad, 1 };
	struct exemplars_stats st;
	struct tex_out o = { 0 };
	struct metric_exemplar ex = tex_at(1);

	exemplars__stats(x, &st);
	cr_expect_eq(st.max, EXEMPLARS_DEFAULT_MAX);
	cr_expect_eq(exemplars__query(x, &sel, 1, 0, 10, tex_collect, &o), -EINVAL);
	cr_expect_eq(exemplars__add(x, "", "", &ex), -EINVAL);
	cr_expect_eq(exemplars__query(NULL, &sel, 1, 0, 10, tex_collect, &o), 0);
	cr_expect_null(exemplars__free(x));
	cr_expect_null(exemplars__free(NULL));
}

Test(exemplars, sink_puts_histogram_exemplars_on_their_bucket)
{
	static const double bounds[] = { 0.001, 0.01 };
	static const uint64_t buckets[] = { 1, 1, 1 };
	struct exemplars *x = exemplars__new(8);
	struct metric_set *set = metric_set__new(5000);
	struct tsdb_matcher all = { TSDB_MATCH_RE, "__name__", ".+" };
	struct tick_sink sink = exemplars__tick_sink(x);
	struct metric_exemplar ex = tex_at(5000);
	struct metric_family *fam;
	struct metric_labels l;

	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "a");
	fam = metric_set__family(set, "d_seconds", "d", METRIC_HISTOGRAM, bounds, 2);
	cr_assert_eq(metric_family__add_histogram(fam, &l, buckets, 0.5), 0);
	ex.value = 0.005;
	cr_assert_eq(metric_family__set_exemplar(fam, &ex), 0);
	cr_assert_eq(metric_family__add_histogram(fam, NULL, buckets, 0.5), 0);
	ex.value = 7;
	cr_assert_eq(metric_family__set_exemplar(fam, &ex), 0);
	fam = metric_set__family(set, "c_total", "c", METRIC_COUNTER, NULL, 0);
	cr_assert_eq(metric_family__add_value(fam, &l, 3), 0);
	cr_assert_eq(metric_family__add_value(fam, NULL, 3), 0); /* no exemplar */
	ex.value = 1;
	cr_assert_eq(sink.set(sink.ctx, set, 5000), 0);
	cr_expect_str_eq(tex_query(x, &all, 1, 0, 10000),
			 "d_seconds_bucket{le=+Inf}:5000;d_seconds_bucket{vm=a,le=0.01}:5000;");
	/* the next set repeats them (a series keeps its latest): not kept twice */
	cr_assert_eq(sink.set(sink.ctx, set, 6000), 0);
	cr_expect_str_eq(tex_query(x, &all, 1, 0, 10000),
			 "d_seconds_bucket{le=+Inf}:5000;d_seconds_bucket{vm=a,le=0.01}:5000;");
	metric_set__free(set);
	exemplars__free(x);
}

/* ---- vmtrace ---- */

static const uint8_t tvt_trace[3][16] = { { 1 }, { 2 }, { 3 } };
static const uint8_t tvt_span[3][8] = { { 1 }, { 2 }, { 3 } };

static int tvt_which(struct vmtrace *b, uint32_t tgid, uint64_t at)
{
	struct vmtrace_ref r;

	if (!vmtrace__covering(b, tgid, at, &r))
		return -1;
	cr_assert_eq(r.span_id[0], r.trace_id[0]);
	return r.trace_id[0];
}

Test(vmtrace, periods_then_operations_win)
{
	struct vmtrace *b = vmtrace__new();

	cr_assert_not_null(b);
	cr_expect_eq(tvt_which(b, 42, 5), -1);
	vmtrace__set_period(b, 42, tvt_trace[0], tvt_span[0], 0, 10);
	cr_expect_eq(tvt_which(b, 42, 5), 1);
	cr_expect_eq(tvt_which(b, 42, 10), -1); /* the end is not covered */
	cr_expect_eq(tvt_which(b, 43, 5), -1);
	vmtrace__set_period(b, 42, tvt_trace[1], tvt_span[1], 10, 20);
	cr_expect_eq(tvt_which(b, 42, 9), 1); /* the one before is kept */
	cr_expect_eq(tvt_which(b, 42, 15), 2);
	vmtrace__begin_op(b, 42, tvt_trace[2], tvt_span[2], 12);
	cr_expect_eq(tvt_which(b, 42, 11), 2);
	cr_expect_eq(tvt_which(b, 42, 13), 3);
	cr_expect_eq(tvt_which(b, 42, 1000), 3); /* running */
	vmtrace__end_op(b, 42);
	cr_expect_eq(tvt_which(b, 42, 13), 2);
	cr_expect_eq(vmtrace__count(b), 1);
	vmtrace__forget(b, 42);
	cr_expect_eq(tvt_which(b, 42, 13), -1);
	cr_expect_eq(vmtrace__count(b), 0);
	vmtrace__set_period(b, 42, tvt_trace[0], tvt_span[0], 0, 10);
	cr_expect_eq(tvt_which(b, 42, 5), 1);
	cr_expect_null(vmtrace__free(b));
	/* NULL board: no exemplars, no crash */
	vmtrace__set_period(NULL, 1, tvt_trace[0], tvt_span[0], 0, 10);
	cr_expect_eq(tvt_which(NULL, 1, 5), -1);
}

Test(vmtrace, many_vms_come_and_go)
{
	struct vmtrace *b = vmtrace__new();
	uint32_t tgid;

	for (tgid = 1; tgid <= 20000; tgid++) {
		vmtrace__set_period(b, tgid, tvt_trace[tgid % 3], tvt_span[tgid % 3], 0, 10);
		cr_assert_eq(tvt_which(b, tgid, 1), (int)(tgid % 3) + 1, "tgid %u", tgid);
		vmtrace__forget(b, tgid);
	}
	cr_expect_eq(vmtrace__count(b), 0);
	vmtrace__free(b);
}
