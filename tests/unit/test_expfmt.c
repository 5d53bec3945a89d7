/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expfmt: the Prometheus text exposition reader, on fixture text and on a
 * round trip through api/exposition.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "exposition.h"
#include "expfmt.h"
#include "metrics.h"

#define MAX_SAMPLES 64

struct parsed {
	int rc[MAX_SAMPLES]; /* return of each next() that was not 0 */
	unsigned int line[MAX_SAMPLES];
	char name[MAX_SAMPLES][128];
	char labels[MAX_SAMPLES][512]; /* "a=v|b=w" */
	double value[MAX_SAMPLES];
	int has_ts[MAX_SAMPLES];
	long long ts[MAX_SAMPLES];
	int n;
};

/* Parse all of text, recording every sample and every error. */
static void parse_all(const char *text, struct parsed *out)
{
	struct expfmt_parser p;
	struct expfmt_sample s;
	int r;

	memset(out, 0, sizeof(*out));
	expfmt_parser__init(&p, text, strlen(text));
	while ((r = expfmt_parser__next(&p, &s)) != 0) {
		int i = out->n++;
		unsigned int k;
		size_t len = 0;

		cr_assert_lt(i, MAX_SAMPLES);
		out->rc[i] = r;
		out->line[i] = p.line;
		if (r < 0)
			continue;
		snprintf(out->name[i], sizeof(out->name[i]), "%s", s.name);
		for (k = 0; k < s.nlabels; k++)
			len += (size_t)snprintf(out->labels[i] + len, sizeof(out->labels[i]) - len,
						"%s%s=%s", k ? "|" : "", s.labels[k].name,
						s.labels[k].value);
		out->value[i] = s.value;
		out->has_ts[i] = s.has_timestamp;
		out->ts[i] = (long long)s.timestamp_ms;
	}
	expfmt_parser__release(&p);
}

Test(expfmt, empty_and_comments)
{
	struct parsed r;

	parse_all("", &r);
	cr_assert_eq(r.n, 0);
	parse_all("\n\n# HELP x y\n# TYPE x counter\n   \n#\n", &r);
	cr_assert_eq(r.n, 0);
}

Test(expfmt, plain_samples)
{
	static const char text[] = "# HELP novamon_events_total Events.\n"
				   "# TYPE novamon_events_total counter\n"
				   "novamon_events_total 42\n"
				   "novamon_up 1 1700000000123\n"
				   "a:b:c_d 1.5e3\n"
				   "no_newline_at_end -7";
	struct parsed r;

	parse_all(text, &r);
	cr_assert_eq(r.n, 4);
	cr_assert_eq(r.rc[0], 1);
	cr_assert_str_eq(r.name[0], "novamon_events_total");
	cr_assert_str_eq(r.labels[0], "");
	cr_assert_float_eq(r.value[0], 42.0, 1e-12);
	cr_assert_eq(r.has_ts[0], 0);
	cr_assert_eq(r.line[0], 3);
	cr_assert_str_eq(r.name[1], "novamon_up");
	cr_assert_eq(r.has_ts[1], 1);
	cr_assert_eq(r.ts[1], 1700000000123LL);
	cr_assert_str_eq(r.name[2], "a:b:c_d");
	cr_assert_float_eq(r.value[2], 1500.0, 1e-12);
	cr_assert_float_eq(r.value[3], -7.0, 1e-12);
	cr_assert_eq(r.line[3], 6);
}

Test(expfmt, labels)
{
	static const char text[] =
		"novamon_kvm_exits_total{vm=\"web-1\",vcpu=\"0\",reason=\"io\"} 123\n"
		"x{ a = \"1\" , b=\"2\", } 5\n"
		"y{} 6\n"
		"z{a=\"\"}7\n"
		"\tw { a=\"sp ace\" }   8   -9  \r\n";
	struct parsed r;

	parse_all(text, &r);
	cr_assert_eq(r.n, 5);
	cr_assert_str_eq(r.labels[0], "vm=web-1|vcpu=0|reason=io");
	cr_assert_float_eq(r.value[0], 123.0, 1e-12);
	cr_assert_str_eq(r.labels[1], "a=1|b=2");
	cr_assert_str_eq(r.name[2], "y");
	cr_assert_str_eq(r.labels[2], "");
	cr_assert_str_eq(r.labels[3], "a=");
	cr_assert_float_eq(r.value[3], 7.0, 1e-12);
	cr_assert_str_eq(r.name[4], "w");
	cr_assert_str_eq(r.labels[4], "a=sp ace");
	cr_assert_eq(r.has_ts[4], 1);
	cr_assert_eq(r.ts[4], -9);
}

Test(expfmt, label_escapes)
{
	static const char text[] = "m{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\","
				   "d=\"keep\\tthis\",e=\"}{,=\"} 1\n";
	struct expfmt_parser p;
	struct expfmt_sample s;

	expfmt_parser__init(&p, text, strlen(text));
	cr_assert_eq(expfmt_parser__next(&p, &s), 1);
	cr_assert_eq(s.nlabels, 5);
	cr_assert_str_eq(expfmt_sample__label(&s, "a"), "q\"uote");
	cr_assert_str_eq(expfmt_sample__label(&s, "b"), "back\\slash");
	cr_assert_str_eq(expfmt_sample__label(&s, "c"), "new\nline");
	cr_assert_str_eq(expfmt_sample__label(&s, "d"), "keep\\tthis");
	cr_assert_str_eq(expfmt_sample__label(&s, "e"), "}{,=");
	cr_assert_null(expfmt_sample__label(&s, "f"));
	cr_assert_eq(expfmt_parser__next(&p, &s), 0);
	expfmt_parser__release(&p);
}

Test(expfmt, special_values)
{
	static const char text[] = "a NaN\nb +Inf\nc -Inf\nd 0x10\ne 1e-9\nf -0\n";
	struct parsed r;

	parse_all(text, &r);
	cr_assert_eq(r.n, 6);
	cr_assert(isnan(r.value[0]));
	cr_assert(isinf(r.value[1]) && r.value[1] > 0);
	cr_assert(isinf(r.value[2]) && r.value[2] < 0);
	cr_assert_float_eq(r.value[3], 16.0, 1e-12);
	cr_assert_float_eq(r.value[4], 1e-9, 1e-20);
	cr_assert_float_eq(r.value[5], 0.0, 1e-12);
}

Test(expfmt, errors_and_recovery)
{
	static const char text[] = "good 1\n" /* 1 */
				   "no_value\n" /* 2 */
				   "x{a=\"unterminated} 1\n" /* 3 */
				   "x{a=\"1\" b=\"2\"} 1\n" /* 4: missing comma */
				   "x{1a=\"1\"} 1\n" /* 5: bad label name */
				   "9bad 1\n" /* 6: bad metric name */
				   "x 1 2 3\n" /* 7: junk after timestamp */
				   "x one\n" /* 8: bad value */
				   "x 1 1.5\n" /* 9: timestamp not an integer */
				   "x{a=1} 1\n" /* 10: unquoted value */
				   "x-y 1\n" /* 11: name runs into junk */
				   "x{a=\"1\" 1\n" /* 12: no closing brace */
				   "good 2\n"; /* 13 */
	struct parsed r;
	int i;

	parse_all(text, &r);
	cr_assert_eq(r.n, 13);
	cr_assert_eq(r.rc[0], 1);
	cr_assert_float_eq(r.value[0], 1.0, 1e-12);
	for (i = 1; i < 12; i++) {
		cr_assert_eq(r.rc[i], -EINVAL, "line %d: rc %d", i + 1, r.rc[i]);
		cr_assert_eq(r.line[i], (unsigned int)i + 1);
	}
	cr_assert_eq(r.rc[12], 1);
	cr_assert_float_eq(r.value[12], 2.0, 1e-12);
	cr_assert_eq(r.line[12], 13);
}

Test(expfmt, too_many_labels)
{
	char text[2048];
	size_t len = 0;
	struct parsed r;
	int i;

	len += (size_t)snprintf(text + len, sizeof(text) - len, "m{");
	for (i = 0; i <= EXPFMT_MAX_LABELS; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "l%d=\"%d\",", i, i);
	snprintf(text + len, sizeof(text) - len, "} 1\nok 2\n");
	parse_all(text, &r);
	cr_assert_eq(r.n, 2);
	cr_assert_eq(r.rc[0], -E2BIG);
	cr_assert_eq(r.rc[1], 1);
}

Test(expfmt, long_line_grows_scratch)
{
	size_t n = 100000;
	char *text = malloc(n + 64);
	struct expfmt_parser p;
	struct expfmt_sample s;
	size_t len;

	cr_assert_not_null(text);
	len = (size_t)sprintf(text, "m{a=\"");
	memset(text + len, 'v', n);
	len += n;
	len += (size_t)sprintf(text + len, "\"} 3\nshort 4\n");
	expfmt_parser__init(&p, text, len);
	cr_assert_eq(expfmt_parser__next(&p, &s), 1);
	cr_assert_eq(strlen(expfmt_sample__label(&s, "a")), n);
	cr_assert_float_eq(s.value, 3.0, 1e-12);
	cr_assert_eq(expfmt_parser__next(&p, &s), 1);
	cr_assert_str_eq(s.name, "short");
	cr_assert_eq(expfmt_parser__next(&p, &s), 0);
	cr_assert_eq(expfmt_parser__next(&p, &s), 0, "end stays the end");
	expfmt_parser__release(&p);
	free(text);
}

Test(expfmt, not_nul_terminated)
{
	/* The parser must stop at len, not at a NUL. */
	static const char text[] = "a 1\nb 2\nc 3";
	struct expfmt_parser p;
	struct expfmt_sample s;

	expfmt_parser__init(&p, text, 7); /* "a 1\nb 2" */
	cr_assert_eq(expfmt_parser__next(&p, &s), 1);
	cr_assert_eq(expfmt_parser__next(&p, &s), 1);
	cr_assert_str_eq(s.name, "b");
	cr_assert_float_eq(s.value, 2.0, 1e-12);
	cr_assert_eq(expfmt_parser__next(&p, &s), 0);
	expfmt_parser__release(&p);

	expfmt_parser__init(&p, NULL, 0);
	cr_assert_eq(expfmt_parser__next(&p, &s), 0);
	expfmt_parser__release(&p);
}

Test(expfmt, round_trip_through_exposition)
{
	static const double bounds[] = { 0.001, 0.01 };
	static const uint64_t buckets[] = { 1, 2, 3 };
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;
	struct expfmt_parser p;
	struct expfmt_sample s;
	char *out = NULL;
	size_t len = 0;
	int seen_counter = 0, seen_inf = 0, seen_count = 0;
	int r;

	cr_assert_not_null(set);
	fam = metric_set__family(set, "novamon_test_total", "A test.", METRIC_COUNTER, NULL, 0);
	cr_assert_not_null(fam);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "we\"ird\\vm\nname");
	metric_labels__add(&l, "vcpu", "3");
	cr_assert_eq(metric_family__add_value(fam, &l, 12345.5), 0);
	fam = metric_set__family(set, "novamon_test_seconds", "A histogram.", METRIC_HISTOGRAM,
				 bounds, 2);
	cr_assert_not_null(fam);
	metric_labels__init(&l);
	metric_labels__add(&l, "device", "vda");
	cr_assert_eq(metric_family__add_histogram(fam, &l, buckets, 0.25), 0);
	cr_assert_eq(exposition_render(set, &out, &len), 0);

	expfmt_parser__init(&p, out, len);
	while ((r = expfmt_parser__next(&p, &s)) != 0) {
		cr_assert_eq(r, 1, "line %u of:\n%s", p.line, out);
		if (!strcmp(s.name, "novamon_test_total")) {
			seen_counter = 1;
			cr_assert_str_eq(expfmt_sample__label(&s, "vm"), "we\"ird\\vm\nname");
			cr_assert_str_eq(expfmt_sample__label(&s, "vcpu"), "3");
			cr_assert_float_eq(s.value, 12345.5, 1e-9);
		} else if (!strcmp(s.name, "novamon_test_seconds_bucket") &&
			   !strcmp(expfmt_sample__label(&s, "le"), "+Inf")) {
			seen_inf = 1;
			cr_assert_float_eq(s.value, 6.0, 1e-9);
		} else if (!strcmp(s.name, "novamon_test_seconds_count")) {
			seen_count = 1;
			cr_assert_str_eq(expfmt_sample__label(&s, "device"), "vda");
			cr_assert_float_eq(s.value, 6.0, 1e-9);
		}
	}
	cr_assert(seen_counter && seen_inf && seen_count, "in:\n%s", out);
	expfmt_parser__release(&p);
	free(out);
	metric_set__free(set);
}
