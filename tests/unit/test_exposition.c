/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/exposition.c: exact Prometheus text for counters,
 * gauges and histograms, escaping, and float formatting.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exposition.h"
#include "metrics.h"

static const double test_expo_bounds[] = { 0.001, 0.01, 0.1, 1 };

/* Render set and compare with want; frees the set. */
static void test_expo_check(struct metric_set *set, const char *want)
{
	char *out = NULL;
	size_t len = 0;

	cr_assert_eq(exposition_render(set, &out, &len), 0);
	cr_assert_not_null(out);
	cr_assert_eq(len, strlen(out));
	cr_assert_str_eq(out, want);
	free(out);
	metric_set__free(set);
}

/* Render a one-series gauge with value v and return the value text (static). */
static const char *test_expo_value(double v)
{
	static char text[64];
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	const char *prefix = "# HELP g g\n# TYPE g gauge\ng ";
	char *out = NULL;
	size_t len = 0;

	fam = metric_set__family(set, "g", "g", METRIC_GAUGE, NULL, 0);
	cr_assert_eq(metric_family__add_value(fam, NULL, v), 0);
	cr_assert_eq(exposition_render(set, &out, &len), 0);
	cr_assert_eq(strncmp(out, prefix, strlen(prefix)), 0);
	cr_assert_eq(out[len - 1], '\n');
	out[len - 1] = '\0';
	snprintf(text, sizeof(text), "%s", out + strlen(prefix));
	free(out);
	metric_set__free(set);
	return text;
}

Test(exposition, empty_and_null)
{
	char *out = NULL;
	size_t len = 1;

	cr_assert_eq(exposition_render(NULL, &out, &len), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(len, 0);
	free(out);
	test_expo_check(metric_set__new(0), "");
}

Test(exposition, counter_with_labels)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;

	fam = metric_set__family(set, "novamon_vm_exits_total", "Total VM exits.", METRIC_COUNTER,
				 NULL, 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "web-1");
	metric_labels__add(&l, "reason", "io");
	metric_family__add_value(fam, &l, 42);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "db\"1\\x\ny");
	metric_labels__add(&l, "reason", "hlt");
	metric_family__add_value(fam, &l, 18446744073709551615.0);

	test_expo_check(set, "# HELP novamon_vm_exits_total Total VM exits.\n"
			     "# TYPE novamon_vm_exits_total counter\n"
			     "novamon_vm_exits_total{vm=\"web-1\",reason=\"io\"} 42\n"
			     "novamon_vm_exits_total{vm=\"db\\\"1\\\\x\\ny\",reason=\"hlt\"} "
			     "1.8446744073709552e+19\n");
}

Test(exposition, gauge_and_family_order)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;

	fam = metric_set__family(set, "novamon_vcpus", "vCPUs per VM.", METRIC_GAUGE, NULL, 0);
	metric_family__add_value(fam, NULL, 4);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "a");
	metric_family__add_value(fam, &l, 0.5);
	metric_family__add_value(fam, NULL, -3);
	metric_set__family(set, "novamon_empty", "No series yet.", METRIC_GAUGE, NULL, 0);
	fam = metric_set__family(set, "novamon_a", "Added last.", METRIC_GAUGE, NULL, 0);
	metric_family__add_value(fam, NULL, 1e-9);

	test_expo_check(set, "# HELP novamon_vcpus vCPUs per VM.\n"
			     "# TYPE novamon_vcpus gauge\n"
			     "novamon_vcpus 4\n"
			     "novamon_vcpus{vm=\"a\"} 0.5\n"
			     "novamon_vcpus -3\n"
			     "# HELP novamon_empty No series yet.\n"
			     "# TYPE novamon_empty gauge\n"
			     "# HELP novamon_a Added last.\n"
			     "# TYPE novamon_a gauge\n"
			     "novamon_a 1e-09\n");
}

Test(exposition, histogram_with_and_without_labels)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;
	const uint64_t b1[5] = { 1, 2, 3, 4, 5 };
	const uint64_t b2[5] = { 0, 0, 0, 0, 0 };

	fam = metric_set__family(set, "novamon_exit_latency_seconds", "Exit latency.",
				 METRIC_HISTOGRAM, test_expo_bounds, 4);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "web-1");
	cr_assert_eq(metric_family__add_histogram(fam, &l, b1, 1.25), 0);
	cr_assert_eq(metric_family__add_histogram(fam, NULL, b2, 0), 0);

	test_expo_check(set, "# HELP novamon_exit_latency_seconds Exit latency.\n"
			     "# TYPE novamon_exit_latency_seconds histogram\n"
			     "novamon_exit_latency_seconds_bucket{vm=\"web-1\",le=\"0.001\"} 1\n"
			     "novamon_exit_latency_seconds_bucket{vm=\"web-1\",le=\"0.01\"} 3\n"
			     "novamon_exit_latency_seconds_bucket{vm=\"web-1\",le=\"0.1\"} 6\n"
			     "novamon_exit_latency_seconds_bucket{vm=\"web-1\",le=\"1\"} 10\n"
			     "novamon_exit_latency_seconds_bucket{vm=\"web-1\",le=\"+Inf\"} 15\n"
			     "novamon_exit_latency_seconds_sum{vm=\"web-1\"} 1.25\n"
			     "novamon_exit_latency_seconds_count{vm=\"web-1\"} 15\n"
			     "novamon_exit_latency_seconds_bucket{le=\"0.001\"} 0\n"
			     "novamon_exit_latency_seconds_bucket{le=\"0.01\"} 0\n"
			     "novamon_exit_latency_seconds_bucket{le=\"0.1\"} 0\n"
			     "novamon_exit_latency_seconds_bucket{le=\"1\"} 0\n"
			     "novamon_exit_latency_seconds_bucket{le=\"+Inf\"} 0\n"
			     "novamon_exit_latency_seconds_sum 0\n"
			     "novamon_exit_latency_seconds_count 0\n");
}

Test(exposition, histogram_without_bounds)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	const uint64_t b[1] = { 7 };

	fam = metric_set__family(set, "novamon_h", "H.", METRIC_HISTOGRAM, NULL, 0);
	cr_assert_eq(metric_family__add_histogram(fam, NULL, b, 3.5), 0);
	test_expo_check(set, "# HELP novamon_h H.\n"
			     "# TYPE novamon_h histogram\n"
			     "novamon_h_bucket{le=\"+Inf\"} 7\n"
			     "novamon_h_sum 3.5\n"
			     "novamon_h_count 7\n");
}

Test(exposition, help_escaping)
{
	struct metric_set *set = metric_set__new(0);

	metric_set__family(set, "novamon_x", "Line one\nback\\slash \"quoted\"", METRIC_COUNTER,
			   NULL, 0);
	test_expo_check(set, "# HELP novamon_x Line one\\nback\\\\slash \"quoted\"\n"
			     "# TYPE novamon_x counter\n");
}

Test(exposition, special_and_exact_floats)
{
	static const double round_trip[] = {
		0.1,
		1.0 / 3,
		2.0 / 3,
		1e300,
		-1e-300,
		4.9e-324,
		1.7976931348623157e308,
		9007199254740993.0,
		123456.789,
		0.30000000000000004,
	};
	size_t i;

	cr_assert_str_eq(test_expo_value(NAN), "NaN");
	cr_assert_str_eq(test_expo_value(INFINITY), "+Inf");
	cr_assert_str_eq(test_expo_value(-INFINITY), "-Inf");
	cr_assert_str_eq(test_expo_value(0.0), "0");
	cr_assert_str_eq(test_expo_value(-0.0), "0");
	cr_assert_str_eq(test_expo_value(1), "1");
	cr_assert_str_eq(test_expo_value(-17), "-17");
	cr_assert_str_eq(test_expo_value(123456789), "123456789");
	cr_assert_str_eq(test_expo_value(9007199254740991.0), "9007199254740991");
	cr_assert_str_eq(test_expo_value(9007199254740992.0), "9007199254740992");
	cr_assert_str_eq(test_expo_value(0.1), "0.1");
	cr_assert_str_eq(test_expo_value(2.5), "2.5");
	cr_assert_str_eq(test_expo_value(1e300), "1e+300");
	cr_assert_str_eq(test_expo_value(0.30000000000000004), "0.30000000000000004");

	for (i = 0; i < sizeof(round_trip) / sizeof(round_trip[0]); i++) {
		const char *text = test_expo_value(round_trip[i]);

		cr_assert_eq(strtod(text, NULL), round_trip[i], "%s does not round-trip", text);
		cr_assert_leq(strlen(text), 24);
	}
}

/* promtool, when installed, must accept what we render, special values included. */
Test(exposition, promtool_accepts)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;
	const uint64_t b[5] = { 1, 0, 2, 0, 1 };
	char path[] = "/tmp/novamon-expo-XXXXXX";
	char cmd[128];
	char *out = NULL;
	size_t len = 0;
	int fd;

	if (access("/usr/bin/promtool", X_OK))
		cr_skip_test("promtool not installed");

	fam = metric_set__family(set, "novamon_vm_exits_total", "Exits.\nSecond \\ line.",
				 METRIC_COUNTER, NULL, 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "q\"uote\\back\nnl");
	metric_family__add_value(fam, &l, 1e20);
	fam = metric_set__family(set, "novamon_ratio", "Ratio.", METRIC_GAUGE, NULL, 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "a");
	metric_family__add_value(fam, &l, NAN);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "b");
	metric_family__add_value(fam, &l, -INFINITY);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "c");
	metric_family__add_value(fam, &l, 1.0 / 3);
	metric_set__family(set, "novamon_unused", "Nothing yet.", METRIC_GAUGE, NULL, 0);
	fam = metric_set__family(set, "novamon_io_latency_seconds", "I/O latency.",
				 METRIC_HISTOGRAM, test_expo_bounds, 4);
	metric_labels__init(&l);
	metric_labels__add(&l, "device", "vda");
	metric_family__add_histogram(fam, &l, b, 0.75);

	cr_assert_eq(exposition_render(set, &out, &len), 0);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, out, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
	cr_expect_eq(system(cmd), 0, "promtool rejected:\n%s", out);
	unlink(path);
	free(out);
	metric_set__free(set);
}

/* OpenMetrics rendering of set (freed), compared with want. */
static void test_expo_check_om(struct metric_set *set, const char *want)
{
	char *out = NULL;
	size_t len = 0;

	cr_assert_eq(exposition_render_format(set, EXPOSITION_OPENMETRICS, &out, &len), 0);
	cr_assert_eq(len, strlen(out));
	cr_assert_str_eq(out, want);
	free(out);
	metric_set__free(set);
}

static const struct metric_exemplar test_expo_ex = {
	.trace_id = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e,
		      0x0e, 0x47, 0x36 },
	.span_id = { 0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 },
	.value = 3,
	.timestamp_ms = 1700000000123,
};

Test(exposition, openmetrics_counter_total_and_exemplar)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;

	fam = metric_set__family(set, "novamon_vm_block_requests_total", "Say \"hi\"\\",
				 METRIC_COUNTER, NULL, 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "web-1");
	cr_assert_eq(metric_family__add_value(fam, &l, 12), 0);
	cr_assert_eq(metric_family__set_exemplar(fam, &test_expo_ex), 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "db");
	cr_assert_eq(metric_family__add_value(fam, &l, 0), 0);
	/* a counter not named *_total keeps its name: typed unknown */
	fam = metric_set__family(set, "odd_counter", "odd", METRIC_COUNTER, NULL, 0);
	cr_assert_eq(metric_family__add_value(fam, NULL, 1), 0);
	fam = metric_set__family(set, "g", "g", METRIC_GAUGE, NULL, 0);
	cr_assert_eq(metric_family__add_value(fam, NULL, 2), 0);
	cr_assert_eq(metric_family__set_exemplar(fam, &test_expo_ex), -EINVAL);
	test_expo_check_om(
		set,
		"# HELP novamon_vm_block_requests Say \\\"hi\\\"\\\\\n"
		"# TYPE novamon_vm_block_requests counter\n"
		"novamon_vm_block_requests_total{vm=\"web-1\"} 12 # "
		"{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 3 "
		"1700000000.123\n"
		"novamon_vm_block_requests_total{vm=\"db\"} 0\n"
		"# HELP odd_counter odd\n# TYPE odd_counter unknown\nodd_counter 1\n"
		"# HELP g g\n# TYPE g gauge\ng 2\n"
		"# EOF\n");
}

Test(exposition, openmetrics_histogram_exemplar_on_its_bucket)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_exemplar ex = test_expo_ex;
	struct metric_labels l;
	uint64_t buckets[] = { 1, 0, 2, 0, 1 };

	fam = metric_set__family(set, "d_seconds", "d", METRIC_HISTOGRAM, test_expo_bounds, 4);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "a");
	cr_assert_eq(metric_family__add_histogram(fam, &l, buckets, 1.5), 0);
	ex.value = 0.05;
	cr_assert_eq(metric_family__set_exemplar(fam, &ex), 0);
	test_expo_check_om(
		set,
		"# HELP d_seconds d\n# TYPE d_seconds histogram\n"
		"d_seconds_bucket{vm=\"a\",le=\"0.001\"} 1\n"
		"d_seconds_bucket{vm=\"a\",le=\"0.01\"} 1\n"
		"d_seconds_bucket{vm=\"a\",le=\"0.1\"} 3 # "
		"{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.05 "
		"1700000000.123\n"
		"d_seconds_bucket{vm=\"a\",le=\"1\"} 3\n"
		"d_seconds_bucket{vm=\"a\",le=\"+Inf\"} 4\n"
		"d_seconds_sum{vm=\"a\"} 1.5\n"
		"d_seconds_count{vm=\"a\"} 4\n"
		"# EOF\n");
}

Test(exposition, classic_text_has_no_exemplars)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;

	fam = metric_set__family(set, "c_total", "c", METRIC_COUNTER, NULL, 0);
	cr_assert_eq(metric_family__add_value(fam, NULL, 5), 0);
	cr_assert_eq(metric_family__set_exemplar(fam, &test_expo_ex), 0);
	test_expo_check(set, "# HELP c_total c\n# TYPE c_total counter\nc_total 5\n");
}

Test(exposition, negotiate)
{
	/* Prometheus 2.42's scrape Accept header */
	cr_assert_eq(exposition_negotiate("application/openmetrics-text;version=1.0.0,"
					  "application/openmetrics-text;version=0.0.1;q=0.75,"
					  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
		     EXPOSITION_OPENMETRICS);
	cr_assert_eq(exposition_negotiate(NULL), EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate(""), EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate("*/*"), EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate("text/plain;version=0.0.4"), EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate("application/openmetrics-text"), EXPOSITION_OPENMETRICS);
	cr_assert_eq(exposition_negotiate("Application/OpenMetrics-Text; version=1.0.0; q=0.9, "
					  "text/plain; q=0.5"),
		     EXPOSITION_OPENMETRICS);
	/* text preferred, an unknown version, q=0, junk */
	cr_assert_eq(exposition_negotiate("application/openmetrics-text;q=0.4,text/plain"),
		     EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate("application/openmetrics-text;version=2.0.0"),
		     EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate("application/openmetrics-text;q=0"), EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate("application/openmetrics-text;q=abc"), EXPOSITION_TEXT);
	cr_assert_eq(exposition_negotiate(",,;;=,application/openmetrics-text;=;q"),
		     EXPOSITION_OPENMETRICS);
}
