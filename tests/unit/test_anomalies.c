/* SPDX-License-Identifier: Apache-2.0 */
/* anomalies: store series scored each tick, records opened, closed, acknowledged. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalies.h"
#include "modelperf.h"
#include "tsdb/tsdb.h"

#define T0 1700000000000LL

static struct tsdb *db;
static struct anomalies *an;

static void an_setup(void)
{
	struct anomalies_opts o = { .max_series = 64, .close_after_ticks = 3 };

	db = tsdb__open(NULL, NULL, 0);
	cr_assert_not_null(db);
	an = anomalies__new(db, &o);
	cr_assert_not_null(an);
}

static void an_teardown(void)
{
	anomalies__free(an);
	tsdb__close(db);
}

TestSuite(anomalies, .init = an_setup, .fini = an_teardown);

static void put(const char *name, const char *vm, int64_t t, double v)
{
	struct tsdb_label l[] = { { "__name__", name }, { "vm", vm } };

	cr_assert_eq(tsdb__append(db, l, 2, t, v), 0);
}

/* Noise around 50 for n ticks from tick k0, one sample per tick. */
static int64_t run_noise(int k0, int n, unsigned *seed)
{
	int k;

	for (k = k0; k < k0 + n; k++) {
		put("latency_seconds", "web-1", T0 + k * 1000LL, 50 + (rand_r(seed) % 100) / 100.0);
		cr_assert_eq(anomalies__tick(an, T0 + k * 1000LL), 0);
	}
	return T0 + (k0 + n - 1) * 1000LL;
}

Test(anomalies, spike_opens_and_closes_a_record)
{
	struct anomalies_filter f = { .metric = "latency_seconds" };
	struct anomaly_record *r = NULL;
	unsigned seed = 7;
	const char *name, *value;
	size_t n, i;
	bool has_vm = false;

	run_noise(0, 300, &seed);
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 0, "%zu false alarms on noise", n);
	free(r);

	put("latency_seconds", "web-1", T0 + 300000, 500);
	cr_assert_eq(anomalies__tick(an, T0 + 300000), 0);
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert(r[0].open);
	cr_assert_eq(r[0].start_ms, T0 + 300000);
	cr_assert_float_eq(r[0].actual, 500, 1e-3);
	cr_assert(fabsf(r[0].expected - 50.5f) < 3, "expected %f", r[0].expected);
	cr_assert_gt(r[0].peak_score, 0.5);
	cr_assert_neq(r[0].detectors, 0);
	for (i = 0; (name = anomaly_record_label(&r[0], i, &value)); i++)
		if (!strcmp(name, "vm") && !strcmp(value, "web-1"))
			has_vm = true;
	cr_assert(has_vm);
	free(r);

	/* back to normal: closed after close_after_ticks normal verdicts */
	run_noise(301, 20, &seed);
	f.state = "closed";
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 1, "%zu closed (first: %lld-%lld)", n, n ? (long long)(r[0].start_ms - T0) : 0LL,
		     n ? (long long)(r[0].end_ms - T0) : 0LL);
	/* detectors may keep voting a few ticks after a spike, not for long */
	cr_assert_geq(r[0].end_ms, T0 + 300000);
	cr_assert_leq(r[0].end_ms, T0 + 312000, "ended %lld s after the spike",
		      (long long)(r[0].end_ms - T0 - 300000) / 1000);
	free(r);
	f.state = "open";
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 0);
	free(r);
}

Test(anomalies, acknowledge_and_filters)
{
	struct anomalies_filter f = { 0 };
	struct anomaly_record *r = NULL;
	struct modelperf_report rep;
	unsigned seed = 3;
	uint64_t id;
	size_t n;

	run_noise(0, 300, &seed);
	put("latency_seconds", "web-1", T0 + 300000, -400);
	cr_assert_eq(anomalies__tick(an, T0 + 300000), 0);
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 1);
	id = r[0].id;
	free(r);

	cr_assert_eq(anomalies__acknowledge(an, id + 1, false, "ops", T0), -ENOENT);
	cr_assert_eq(anomalies__acknowledge(an, id, true, "ops", T0 + 301000), 0);
	cr_assert_eq(anomalies__acknowledge(an, id, true, "ops", T0 + 302000), -EALREADY);
	f.state = "acknowledged";
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert(r[0].false_positive);
	cr_assert_str_eq(r[0].ack_by, "ops");
	free(r);
	f = (struct anomalies_filter){ .vm = "db-1" };
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 0);
	free(r);
	f = (struct anomalies_filter){ .start_ms = T0 + 400000 };
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 0);
	free(r);

	/* the false positive reached the models */
	anomalies__performance(an, &rep);
	cr_assert_eq(rep.labels, 1);
}

/* Counters are scored as rates; buckets are not scored; scores are stored as series. */
Test(anomalies, counters_rates_buckets_and_score_series)
{
	struct tsdb_matcher m = { TSDB_MATCH_EQ, "__name__", ANOMALIES_SCORE_METRIC };
	struct tsdb_label b[] = { { "__name__", "x_bucket" }, { "le", "1" } };
	struct anomalies_filter f = { .metric = "reqs_total" };
	struct anomaly_record *r = NULL;
	struct tsdb_result *res = NULL;
	double acc = 0;
	size_t n;
	int k;

	for (k = 0; k < 300; k++) {
		acc += 100 + k % 3; /* a steady ~101/s: the raw counter climbs */
		put("reqs_total", "web-1", T0 + k * 1000LL, acc);
		cr_assert_eq(tsdb__append(db, b, 2, T0 + k * 1000LL, k), 0);
		cr_assert_eq(anomalies__tick(an, T0 + k * 1000LL), 0);
	}
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 0, "a steadily rising counter is normal");
	free(r);
	acc += 5000; /* a burst */
	put("reqs_total", "web-1", T0 + 300000, acc);
	cr_assert_eq(anomalies__tick(an, T0 + 300000), 0);
	cr_assert_eq(anomalies__list(an, &f, &r, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert(r[0].rate);
	cr_assert_float_eq(r[0].actual, 5000, 1);
	free(r);

	cr_assert_eq(tsdb__select(db, &m, 1, T0, T0 + 400000, &res), 0);
	cr_assert_eq(res->n, 1, "one score series (reqs_total), none for the bucket");
	cr_assert_eq(res->series[0].n, 300, "a score from the second sample on");
	tsdb_result__free(res);
}
