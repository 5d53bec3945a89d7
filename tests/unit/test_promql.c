/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the PromQL engine against an in-memory select() double.
 * Data sets and expected values are ported from Prometheus' own
 * promql/testdata/<name>.test files where marked, else computed by hand.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promql/promql.h"

#define PQT_MAX_SERIES 1100
#define PQT_MAX_LABELS 8
#define MIN(x) ((int64_t)(x)*60000)
#define SEC(x) ((int64_t)(x)*1000)

struct pqt_series {
	struct tsdb_label l[PQT_MAX_LABELS];
	char names[PQT_MAX_LABELS][64];
	char values[PQT_MAX_LABELS][64];
	size_t nl;
	int64_t *t;
	double *v;
	size_t n, cap;
};

static struct pqt_series pqt_db[PQT_MAX_SERIES];
static size_t pqt_n;
static size_t pqt_selects;
static char pqt_out[16384];

static void pqt_reset(void)
{
	size_t i;

	for (i = 0; i < pqt_n; i++) {
		free(pqt_db[i].t);
		free(pqt_db[i].v);
	}
	memset(pqt_db, 0, sizeof(pqt_db));
	pqt_n = 0;
	pqt_selects = 0;
}

static double pqt_stale(void)
{
	uint64_t bits = 0x7ff0000000000002ULL;
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

static void pqt_push(struct pqt_series *s, int64_t t, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->t = realloc(s->t, s->cap * sizeof(*s->t));
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		cr_assert(s->t && s->v);
	}
	s->t[s->n] = t;
	s->v[s->n++] = v;
}

static int pqt_label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tsdb_label *)a)->name, ((const struct tsdb_label *)b)->name);
}

/* metric: name{a="b",c="d"} (name optional); returns the new series. */
static struct pqt_series *pqt_series_new(const char *metric)
{
	struct pqt_series *s = &pqt_db[pqt_n++];
	const char *p = metric;
	size_t k = 0;

	cr_assert(pqt_n <= PQT_MAX_SERIES);
	while (*p && *p != '{')
		p++;
	if (p != metric) {
		snprintf(s->names[0], 64, "__name__");
		snprintf(s->values[0], 64, "%.*s", (int)(p - metric), metric);
		k = 1;
	}
	if (*p == '{') {
		p++;
		while (*p && *p != '}') {
			const char *eq = strchr(p, '='), *q1, *q2;

			cr_assert(eq);
			q1 = strchr(eq, '"');
			q2 = strchr(q1 + 1, '"');
			snprintf(s->names[k], 64, "%.*s", (int)(eq - p), p);
			snprintf(s->values[k], 64, "%.*s", (int)(q2 - q1 - 1), q1 + 1);
			k++;
			p = q2 + 1;
			while (*p == ',' || *p == ' ')
				p++;
		}
	}
	s->nl = k;
	for (k = 0; k < s->nl; k++) {
		s->l[k].name = s->names[k];
		s->l[k].value = s->values[k];
	}
	qsort(s->l, s->nl, sizeof(s->l[0]), pqt_label_cmp);
	return s;
}

/*
 * Prometheus test "load" notation: samples every interval from t=0;
 * "a+bxN" expands to a, a+b, ... a+N*b; "_" skips one; "stale" is a
 * staleness marker.
 */
static void pqt_load(int64_t interval, const char *metric, const char *values)
{
	struct pqt_series *s = pqt_series_new(metric);
	char buf[1024], *tok, *save = NULL;
	int64_t t = 0;

	snprintf(buf, sizeof(buf), "%s", values);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *x = strchr(tok, 'x');
		double a, b;
		long n, i;

		if (!strcmp(tok, "_")) {
			t += interval;
			continue;
		}
		if (!strcmp(tok, "stale")) {
			pqt_push(s, t, pqt_stale());
			t += interval;
			continue;
		}
		if (x) {
			char *op = strpbrk(tok + 1, "+-");

			a = strtod(tok, NULL);
			b = strtod(op + 1, NULL) * (*op == '-' ? -1 : 1);
			n = strtol(x + 1, NULL, 10);
			for (i = 0; i <= n; i++) {
				pqt_push(s, t, a + (double)i * b);
				t += interval;
			}
			continue;
		}
		pqt_push(s, t, strtod(tok, NULL));
		t += interval;
	}
}

static bool pqt_match(const struct pqt_series *s, const struct tsdb_matcher *m)
{
	const char *v = "";
	size_t i;
	bool ok;

	for (i = 0; i < s->nl; i++)
		if (!strcmp(s->l[i].name, m->name))
			v = s->l[i].value;
	switch (m->type) {
	case TSDB_MATCH_EQ:
		return !strcmp(v, m->value);
	case TSDB_MATCH_NEQ:
		return strcmp(v, m->value) != 0;
	default: {
		char re[512];
		regex_t rx;

		snprintf(re, sizeof(re), "^(%s)$", m->value);
		cr_assert_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
		ok = regexec(&rx, v, 0, NULL, 0) == 0;
		regfree(&rx);
		return m->type == TSDB_MATCH_RE ? ok : !ok;
	}
	}
}

static int pqt_series_cmp(const void *pa, const void *pb)
{
	const struct tsdb_series_data *a = pa, *b = pb;
	size_t i, n = a->nlabels < b->nlabels ? a->nlabels : b->nlabels;
	int c;

	for (i = 0; i < n; i++) {
		c = strcmp(a->labels[i].name, b->labels[i].name);
		if (!c)
			c = strcmp(a->labels[i].value, b->labels[i].value);
		if (c)
			return c;
	}
	return (int)a->nlabels - (int)b->nlabels;
}

/* The select double: same layout tsdb_result__free() releases. */
static int pqt_select(void *ctx, const struct tsdb_matcher *m, size_t nm, int64_t mint,
		      int64_t maxt, struct tsdb_result **out)
{
	struct tsdb_result *r = calloc(1, sizeof(*r));
	size_t i, j, k;

	(void)ctx;
	pqt_selects++;
	cr_assert(r);
	r->series = calloc(pqt_n + 1, sizeof(*r->series));
	cr_assert(r->series);
	for (i = 0; i < pqt_n; i++) {
		const struct pqt_series *s = &pqt_db[i];
		struct tsdb_series_data *d;
		size_t cnt = 0, sz = s->nl * sizeof(struct tsdb_label);
		char *p;

		for (j = 0; j < nm; j++)
			if (!pqt_match(s, &m[j]))
				break;
		if (j < nm)
			continue;
		for (j = 0; j < s->n; j++)
			cnt += s->t[j] >= mint && s->t[j] <= maxt;
		if (!cnt && mint <= maxt)
			continue;
		d = &r->series[r->n++];
		for (k = 0; k < s->nl; k++)
			sz += strlen(s->l[k].name) + strlen(s->l[k].value) + 2;
		d->labels = malloc(sz);
		cr_assert(d->labels);
		p = (char *)(d->labels + s->nl);
		for (k = 0; k < s->nl; k++) {
			d->labels[k].name = strcpy(p, s->l[k].name);
			p += strlen(p) + 1;
			d->labels[k].value = strcpy(p, s->l[k].value);
			p += strlen(p) + 1;
		}
		d->nlabels = s->nl;
		d->t = malloc((cnt + 1) * sizeof(*d->t));
		d->v = malloc((cnt + 1) * sizeof(*d->v));
		cr_assert(d->t && d->v);
		for (j = 0; j < s->n; j++) {
			if (s->t[j] < mint || s->t[j] > maxt)
				continue;
			d->t[d->n] = s->t[j];
			d->v[d->n++] = s->v[j];
		}
	}
	qsort(r->series, r->n, sizeof(*r->series), pqt_series_cmp);
	*out = r;
	return 0;
}

static const struct promql_engine pqt_eng = { .select = pqt_select };

static void pqt_labels(const struct promql_series *s, char *buf, size_t len)
{
	size_t i, o = 0;

	o += (size_t)snprintf(buf, len, "{");
	for (i = 0; i < s->nlabels; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s=\"%s\"", i ? ", " : "",
				      s->labels[i].name, s->labels[i].value);
	snprintf(buf + o, len - o, "}");
}

/* One line per series: "{labels} value" (vector) or "{labels} v@s v@s" (matrix). */
static void pqt_render(const struct promql_result *r)
{
	char v[64], l[1024];
	size_t i, j, o = 0;

	pqt_out[0] = '\0';
	switch (r->type) {
	case PROMQL_SCALAR:
		promql_format_value(r->scalar, v, sizeof(v));
		snprintf(pqt_out, sizeof(pqt_out), "scalar %s", v);
		return;
	case PROMQL_STRING:
		snprintf(pqt_out, sizeof(pqt_out), "string %s", r->string);
		return;
	default:
		break;
	}
	for (i = 0; i < r->nseries; i++) {
		const struct promql_series *s = &r->series[i];

		pqt_labels(s, l, sizeof(l));
		o += (size_t)snprintf(pqt_out + o, sizeof(pqt_out) - o, "%s%s", i ? "\n" : "", l);
		for (j = 0; j < s->n; j++) {
			promql_format_value(s->v[j], v, sizeof(v));
			if (r->type == PROMQL_VECTOR)
				o += (size_t)snprintf(pqt_out + o, sizeof(pqt_out) - o, " %s", v);
			else
				o += (size_t)snprintf(pqt_out + o, sizeof(pqt_out) - o, " %s@%g", v,
						      (double)s->t[j] / 1000);
		}
	}
}

/* Evaluate q at t; the rendered result or "error: ..." */
static const char *pqt_q(const char *q, int64_t t)
{
	char err[512];
	struct promql_expr *e = promql_parse(q, err, sizeof(err));
	struct promql_result *r = NULL;
	int rc;

	if (!e) {
		snprintf(pqt_out, sizeof(pqt_out), "error: %s", err);
		return pqt_out;
	}
	rc = promql_eval_instant(&pqt_eng, e, t, &r, err, sizeof(err));
	promql_expr__free(e);
	if (rc) {
		cr_assert_null(r);
		snprintf(pqt_out, sizeof(pqt_out), "error: %s", err);
		return pqt_out;
	}
	if (r->type == PROMQL_VECTOR) {
		size_t i;

		for (i = 0; i < r->nseries; i++) {
			cr_assert_eq(r->series[i].n, 1);
			cr_assert_eq(r->series[i].t[0], t);
		}
	}
	pqt_render(r);
	promql_result__free(r);
	return pqt_out;
}

static const char *pqt_range(const char *q, int64_t start, int64_t end, int64_t step)
{
	char err[512];
	struct promql_expr *e = promql_parse(q, err, sizeof(err));
	struct promql_result *r = NULL;
	int rc;

	if (!e) {
		snprintf(pqt_out, sizeof(pqt_out), "error: %s", err);
		return pqt_out;
	}
	rc = promql_eval_range(&pqt_eng, e, start, end, step, &r, err, sizeof(err));
	promql_expr__free(e);
	if (rc) {
		snprintf(pqt_out, sizeof(pqt_out), "error: %s", err);
		return pqt_out;
	}
	cr_assert_eq(r->type, PROMQL_MATRIX);
	pqt_render(r);
	promql_result__free(r);
	return pqt_out;
}

static int pqt_line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pqt_q() with lines sorted: for results whose order Prometheus leaves open. */
static const char *pqt_q_sorted(const char *q, int64_t t)
{
	char copy[16384], *lines[256], *p, *save = NULL;
	size_t n = 0, i, o = 0;

	snprintf(copy, sizeof(copy), "%s", pqt_q(q, t));
	for (p = strtok_r(copy, "\n", &save); p && n < 256; p = strtok_r(NULL, "\n", &save))
		lines[n++] = p;
	qsort(lines, n, sizeof(*lines), pqt_line_cmp);
	pqt_out[0] = '\0';
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(pqt_out + o, sizeof(pqt_out) - o, "%s%s", i ? "\n" : "",
				      lines[i]);
	return pqt_out;
}

static double pqt_scalar(const char *q, int64_t t)
{
	const char *s = pqt_q(q, t);

	cr_assert(!strncmp(s, "scalar ", 7), "%s: %s", q, s);
	return strtod(s + 7, NULL);
}

/* The single value of a one-element vector result. */
static double pqt_one(const char *q, int64_t t)
{
	const char *s = pqt_q(q, t), *sp = strrchr(s, ' ');

	cr_assert(sp && !strchr(s, '\n') && strncmp(s, "error", 5), "%s: %s", q, s);
	return strtod(sp + 1, NULL);
}

#define EXPECT(q, t, want) cr_expect_str_eq(pqt_q(q, t), want, "%s: got \"%s\"", q, pqt_out)
#define EXPECT_SORTED(q, t, want) \
	cr_expect_str_eq(pqt_q_sorted(q, t), want, "%s: got \"%s\"", q, pqt_out)
#define EXPECT_ERR(q, want)                                                                      \
	do {                                                                                     \
		const char *_s = pqt_q(q, 0);                                                    \
		cr_expect(strstr(_s, want) != NULL, "%s: got \"%s\", want \"%s\"", q, _s, want); \
	} while (0)
#define EXPECT_NEAR(got, want)                                                                  \
	do {                                                                                    \
		double _g = (got), _w = (want);                                                 \
		cr_expect(fabs(_g - _w) <= 1e-9 * fmax(1, fabs(_w)), "%.17g != %.17g", _g, _w); \
	} while (0)

/*
 * got and want equal line by line, values within 1e-12 relative: the
 * tolerance Prometheus' own test framework applies (float summation order).
 */
static bool pqt_approx_eq(const char *got, const char *want)
{
	while (*got || *want) {
		const char *ge = strchr(got, '\n'), *we = strchr(want, '\n');
		const char *gs, *ws;
		size_t gl = ge ? (size_t)(ge - got) : strlen(got);
		size_t wl = we ? (size_t)(we - want) : strlen(want);
		double g, w;

		gs = memrchr(got, ' ', gl);
		ws = memrchr(want, ' ', wl);
		if (!gs || !ws || gs - got != ws - want || strncmp(got, want, (size_t)(gs - got)))
			return false;
		g = strtod(gs + 1, NULL);
		w = strtod(ws + 1, NULL);
		if (!(g == w || (isnan(g) && isnan(w)) || fabs(g - w) <= 1e-12 * fabs(w)))
			return false;
		got += gl + (ge ? 1 : 0);
		want += wl + (we ? 1 : 0);
	}
	return true;
}

#define EXPECT_APPROX(q, t, want) \
	cr_expect(pqt_approx_eq(pqt_q(q, t), want), "%s: got \"%s\"", q, pqt_out)
#define EXPECT_SORTED_APPROX(q, t, want) \
	cr_expect(pqt_approx_eq(pqt_q_sorted(q, t), want), "%s: got \"%s\"", q, pqt_out)

TestSuite(promql_parse, .init = pqt_reset, .fini = pqt_reset);
TestSuite(promql_eval, .init = pqt_reset, .fini = pqt_reset);
TestSuite(promql_agg, .init = pqt_reset, .fini = pqt_reset);
TestSuite(promql_binop, .init = pqt_reset, .fini = pqt_reset);
TestSuite(promql_func, .init = pqt_reset, .fini = pqt_reset);
TestSuite(promql_range, .init = pqt_reset, .fini = pqt_reset);

/* ---------------- parser ---------------- */

Test(promql_parse, precedence_and_associativity)
{
	cr_expect_eq(pqt_scalar("1 + 2 * 3", 0), 7);
	cr_expect_eq(pqt_scalar("(1 + 2) * 3", 0), 9);
	cr_expect_eq(pqt_scalar("10 - 2 - 3", 0), 5);
	cr_expect_eq(pqt_scalar("2 ^ 3 ^ 2", 0), 512);
	cr_expect_eq(pqt_scalar("-2 ^ 2", 0), -4);
	cr_expect_eq(pqt_scalar("2 * 3 % 4", 0), 2);
	cr_expect_eq(pqt_scalar("100 / 10 / 2", 0), 5);
	cr_expect_eq(pqt_scalar("1 + 2 > bool 2", 0), 1);
	cr_expect_eq(pqt_scalar("1 + 2 == bool 2 + 1", 0), 1);
	cr_expect_eq(pqt_scalar("- - 3", 0), 3);
	cr_expect_eq(pqt_scalar("-(1 + 2) * 2", 0), -6);
	cr_expect_eq(pqt_scalar("+5", 0), 5);
	cr_expect_eq(pqt_scalar("7 % 4 * 2", 0), 6);
}

Test(promql_parse, number_literals)
{
	cr_expect_eq(pqt_scalar("0x1F", 0), 31);
	cr_expect_eq(pqt_scalar("1e3", 0), 1000);
	cr_expect_eq(pqt_scalar("1.5E-1", 0), 0.15);
	cr_expect_eq(pqt_scalar(".5", 0), 0.5);
	cr_expect_eq(pqt_scalar("010", 0), 8); /* strconv.ParseInt base 0 */
	EXPECT("Inf", 0, "scalar +Inf");
	EXPECT("-inf", 0, "scalar -Inf");
	EXPECT("NaN", 0, "scalar NaN");
	EXPECT("nan + 1", 0, "scalar NaN");
}

Test(promql_parse, string_literals_and_comments)
{
	EXPECT("\"a\\tb\\\"c\"", 0, "string a\tb\"c");
	EXPECT("'it\\'s'", 0, "string it's");
	EXPECT("`raw\\n`", 0, "string raw\\n");
	EXPECT("\"\\u00e9\\x41\"", 0,
	       "string \xc3\xa9"
	       "A");
	cr_expect_eq(pqt_scalar("1 + # the answer is near\n 2", 0), 3);
	EXPECT_ERR("\"open", "1:1: unterminated quoted string");
}

Test(promql_parse, keywords_case_insensitive)
{
	pqt_load(MIN(1), "m{job=\"a\"}", "1 2");
	pqt_load(MIN(1), "m{job=\"b\"}", "3 4");
	EXPECT("SUM BY (job) (m)", MIN(1), "{job=\"a\"} 2\n{job=\"b\"} 4");
	EXPECT("Sum(m) WITHOUT (job)", MIN(1), "{} 6");
	EXPECT("m{job=\"a\"} AND m", MIN(1), "{__name__=\"m\", job=\"a\"} 2");
	/* function names are case-sensitive, as in Prometheus */
	EXPECT_ERR("RATE(m[1m])", "unknown function with name \"RATE\"");
}

Test(promql_parse, durations)
{
	pqt_load(MIN(10), "m", "0+1x12");
	EXPECT("count_over_time(m[1h30m])", MIN(120), "{} 10");
	EXPECT("count_over_time(m[1h])", MIN(120), "{} 7");
	EXPECT("count_over_time(m[3600s])", MIN(120), "{} 7");
	EXPECT("count_over_time(m[3600000ms])", MIN(120), "{} 7");
	EXPECT("count_over_time(m[1d])", MIN(120), "{} 13");
	EXPECT("count_over_time(m[1w])", MIN(120), "{} 13");
	EXPECT("count_over_time(m[1y])", MIN(120), "{} 13");
	EXPECT_ERR("m[5m1h]", "1:3: not a valid duration string");
	EXPECT_ERR("m[1.5m]", "bad number or duration syntax");
	EXPECT_ERR("m[5]", "unexpected number \"5\" in range selector");
}

Test(promql_parse, errors_with_positions)
{
	EXPECT_ERR("foo{", "1:5: unexpected end of input");
	EXPECT_ERR("1 +", "1:4: unexpected end of input");
	EXPECT_ERR("sum(foo) by", "1:12: unexpected end of input");
	EXPECT_ERR("foo )", "1:5: unexpected \")\"");
	EXPECT_ERR("foo{a=\"b\" c=\"d\"}", "1:11: unexpected identifier \"c\"");
	EXPECT_ERR(
		"rate(foo)",
		"1:6: expected type range vector in call to function \"rate\", got instant vector");
	EXPECT_ERR("abs(foo[5m])",
		   "expected type instant vector in call to function \"abs\", got range vector");
	EXPECT_ERR("rate(foo[5m], 1)", "expected 1 argument(s) in call to \"rate\", got 2");
	EXPECT_ERR("round(foo, 1, 2)",
		   "expected at most 2 argument(s) in call to \"round\", got 3");
	EXPECT_ERR("1 > 2", "1:3: comparisons between scalars must use BOOL modifier");
	EXPECT_ERR("foo + bool foo", "bool modifier can only be used on comparison operators");
	EXPECT_ERR("foo and 1", "set operator \"and\" not allowed in binary scalar expression");
	EXPECT_ERR("foo and on(a) group_left bar", "no grouping allowed for \"and\" operation");
	EXPECT_ERR("1 + on(a) foo", "vector matching only allowed between instant vectors");
	EXPECT_ERR("foo * on(a) group_left(a) bar",
		   "label \"a\" must not occur in ON and GROUP clause at once");
	EXPECT_ERR("{}", "1:1: vector selector must contain at least one non-empty matcher");
	EXPECT_ERR("{a=~\".*\"}", "vector selector must contain at least one non-empty matcher");
	EXPECT_ERR("foo{__name__=\"bar\"}", "metric name must not be set twice");
	EXPECT_ERR("foo{a=~\"(\"}", "invalid regular expression");
	EXPECT_ERR("foo offset 5m offset 1m", "offset may not be set multiple times");
	EXPECT_ERR("(foo) offset 5m",
		   "offset modifier must be preceded by an instant vector selector");
	EXPECT_ERR("sum(foo)[5m]", "ranges only allowed for vector selectors");
	EXPECT_ERR("foo[5m] + 1",
		   "binary expression must contain only scalar and instant vector types");
	EXPECT_ERR(
		"topk(foo)",
		"wrong number of arguments for aggregate expression provided, expected 2, got 1");
	EXPECT_ERR("sum(1)", "expected type instant vector in aggregation expression, got scalar");
	EXPECT_ERR("", "no expression found in input");
	EXPECT_ERR("foo $", "1:5: unexpected character: '$'");
	EXPECT_ERR("1 +\n  )", "2:3: unexpected \")\"");
	EXPECT_ERR("-\"x\"",
		   "unary expression only allowed on expressions of type scalar or instant vector");
}

Test(promql_parse, unsupported_constructs_are_named)
{
	EXPECT_ERR("rate(foo[5m:1m])", "1:9: subqueries are not supported");
	EXPECT_ERR("foo[5m:]", "subqueries are not supported");
	EXPECT_ERR("sum(foo)[5m:1m]", "subqueries are not supported");
	EXPECT_ERR("foo @ 100", "1:5: the @ modifier is not supported");
	EXPECT_ERR("foo[5m] @ end()", "the @ modifier is not supported");
	EXPECT_ERR("sqrt(foo)", "1:1: function \"sqrt\" is not supported");
	EXPECT_ERR("predict_linear(foo[5m], 60)", "function \"predict_linear\" is not supported");
	EXPECT_ERR("no_such_function(foo)", "unknown function with name \"no_such_function\"");
	EXPECT_ERR("count_values(\"v\", foo)", "aggregation \"count_values\" is not supported");
	EXPECT_ERR("foo atan2 bar", "operator \"atan2\" is not supported");
}

Test(promql_parse, selector_for_series_api)
{
	struct tsdb_matcher m[4];
	struct promql_expr *e = NULL;
	char err[256];
	int n;

	n = promql_parse_selector("up{job=~\"a.*\", env!=\"dev\"}", &e, m, 4, err, sizeof(err));
	cr_assert_eq(n, 3, "%s", err);
	cr_expect_str_eq(m[0].name, "__name__");
	cr_expect_str_eq(m[0].value, "up");
	cr_expect_eq(m[1].type, TSDB_MATCH_RE);
	cr_expect_str_eq(m[1].value, "a.*");
	cr_expect_eq(m[2].type, TSDB_MATCH_NEQ);
	promql_expr__free(e);
	cr_expect_eq(promql_parse_selector("sum(up)", &e, m, 4, err, sizeof(err)), -EINVAL);
	cr_expect_null(e);
	cr_expect_eq(promql_parse_selector("up{a=\"1\",b=\"2\"}", &e, m, 2, err, sizeof(err)),
		     -EINVAL);
	cr_expect_null(e);
}

Test(promql_parse, format_value)
{
	static const struct {
		double v;
		const char *s;
	} c[] = {
		{ 1.5, "1.5" },
		{ 0, "0" },
		{ -2, "-2" },
		{ 1e100, "1e+100" },
		{ 1e21, "1e+21" },
		{ 1e20, "100000000000000000000" },
		{ 1e-6, "0.000001" },
		{ 1e-7, "1e-07" },
		{ 0.1, "0.1" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 123456.789, "123456.789" },
		{ -1.25e-9, "-1.25e-09" },
		/* Go's strconv 'e', -1 output for these: shortest digits */
		{ 5e-324, "5e-324" },
		{ -2.417872577127e-310, "-2.417872577127e-310" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 9007199254740993.5, "9007199254740994" },
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		promql_format_value(c[i].v, buf, sizeof(buf));
		cr_expect_str_eq(buf, c[i].s);
	}
	promql_format_value(NAN, buf, sizeof(buf));
	cr_expect_str_eq(buf, "NaN");
	promql_format_value(INFINITY, buf, sizeof(buf));
	cr_expect_str_eq(buf, "+Inf");
	promql_format_value(-INFINITY, buf, sizeof(buf));
	cr_expect_str_eq(buf, "-Inf");
}

/* Significant digits of a plain decimal ("0.00125" -> 3, "120.5" -> 4). */
static int sig_digits(const char *s)
{
	int n = 0, lead = 1, zeros = 0;

	for (; *s && *s != 'e'; s++) {
		if (*s < '0' || *s > '9')
			continue;
		if (*s == '0' && lead)
			continue;
		lead = 0;
		if (*s == '0') {
			zeros++;
		} else {
			n += zeros + 1;
			zeros = 0;
		}
	}
	return n;
}

/*
 * Values with few decimals take a fast path: it must print what the digit
 * search prints, the shortest decimal that reads back as the same double.
 */
Test(promql_parse, format_value_short_decimals_are_shortest)
{
	static const double scales[] = { 1e1, 1e2, 1e3, 1e4, 1e6, 1e7, 3, 7 };
	uint64_t x = 88172645463325252ull;
	char buf[64], ref[64];
	int i, p;

	for (i = 0; i < 200000; i++) {
		double scale, v;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		scale = scales[x % 8];
		v = (double)(x >> (11 + x % 40)) / scale * ((x >> 8) & 1 ? -1 : 1);
		if (v == 0)
			continue;
		promql_format_value(v, buf, sizeof(buf));
		cr_assert_eq(strtod(buf, NULL), v, "%s reads back as %.17g", buf, v);
		if (strchr(buf, '.') && !strchr(buf, 'e'))
			cr_assert(buf[strlen(buf) - 1] != '0' && buf[strlen(buf) - 1] != '.',
				  "%s: no trailing zero or point", buf);
		for (p = 1; p <= 17; p++) {
			snprintf(ref, sizeof(ref), "%.*e", p - 1, v);
			if (strtod(ref, NULL) == v)
				break;
		}
		cr_assert_eq(sig_digits(buf), p, "%.17g: %s has %d digits, shortest %d (%s)", v,
			     buf, sig_digits(buf), p, ref);
	}
}

/* The returned length, in place (len >= 40) and through the bounce buffer (smaller len). */
Test(promql_parse, format_value_length_and_truncation)
{
	static const double v[] = { 1.5,
				    -2,
				    18446744073709551616.0,
				    9007199254740991.0,
				    1e-7,
				    -1.25e-9,
				    1.7976931348623157e308,
				    0.1 + 0.2,
				    123.25,
				    NAN,
				    -INFINITY,
				    0 };
	char big[64], small[8], ref[64];
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = promql_format_value(v[i], big, sizeof(big));
		cr_expect_eq(n, strlen(big), "length of %s", big);
		strcpy(ref, big);
		n = promql_format_value(v[i], small, sizeof(small));
		cr_expect_eq(n, strlen(small));
		cr_expect_eq(n, strlen(ref) < sizeof(small) ? strlen(ref) : sizeof(small) - 1);
		cr_expect_eq(strncmp(small, ref, n), 0, "%s is a prefix of %s", small, ref);
	}
	cr_expect_eq(promql_format_value(1, big, 0), 0);
}

/* ---------------- selectors, lookback, staleness, offset ---------------- */

Test(promql_eval, staleness_ported)
{
	/* promql/testdata/staleness.test, with 2.x's inclusive lookback */
	pqt_load(SEC(10), "metric", "0 1 stale 2");
	EXPECT("metric", SEC(10), "{__name__=\"metric\"} 1");
	EXPECT("metric", SEC(20), "");
	EXPECT("metric", SEC(30), "{__name__=\"metric\"} 2");
	EXPECT("metric", SEC(40), "{__name__=\"metric\"} 2");
	EXPECT("metric", SEC(329), "{__name__=\"metric\"} 2");
	EXPECT("metric", SEC(330), "{__name__=\"metric\"} 2");
	EXPECT("metric", SEC(331), "");
	/* range vectors ignore stale samples */
	EXPECT("count_over_time(metric[1m])", SEC(60), "{} 3");
	EXPECT("metric[1m]", SEC(40), "{__name__=\"metric\"} 0@0 1@10 2@30");
}

Test(promql_eval, lookback_and_offset)
{
	pqt_load(MIN(1), "m{a=\"x\"}", "1 2 3 _ _ _ _ _ _ _ 10");
	EXPECT("m", MIN(2), "{__name__=\"m\", a=\"x\"} 3");
	EXPECT("m", MIN(7), "{__name__=\"m\", a=\"x\"} 3");
	EXPECT("m", MIN(7) + 1, "");
	EXPECT("m offset 1m", MIN(2), "{__name__=\"m\", a=\"x\"} 2");
	EXPECT("m offset -1m", MIN(1), "{__name__=\"m\", a=\"x\"} 3");
	EXPECT("m offset 2m", MIN(0), "");
	EXPECT("sum_over_time(m[1m] offset 1m)", MIN(2), "{a=\"x\"} 3");
	EXPECT("m[2m] offset 1m", MIN(3), "{__name__=\"m\", a=\"x\"} 1@0 2@60 3@120");
	EXPECT("m[1m]", MIN(1) + 30000, "{__name__=\"m\", a=\"x\"} 2@60");
	EXPECT("timestamp(m)", MIN(5), "{a=\"x\"} 120");
	EXPECT("timestamp(m offset 1m)", MIN(2), "{a=\"x\"} 60");
	EXPECT("timestamp(m + 1)", MIN(5), "{a=\"x\"} 300");
	EXPECT("timestamp(m)", MIN(10) + 500, "{a=\"x\"} 600");
}

Test(promql_eval, matchers)
{
	pqt_load(MIN(1), "m{job=\"api\", env=\"prod\"}", "1");
	pqt_load(MIN(1), "m{job=\"api\", env=\"dev\"}", "2");
	pqt_load(MIN(1), "m{job=\"web\"}", "3");
	pqt_load(MIN(1), "n{job=\"api\"}", "4");
	EXPECT("m{env=\"prod\"}", 0, "{__name__=\"m\", env=\"prod\", job=\"api\"} 1");
	EXPECT("m{env!=\"prod\"}", 0,
	       "{__name__=\"m\", env=\"dev\", job=\"api\"} 2\n{__name__=\"m\", job=\"web\"} 3");
	EXPECT("m{job=~\"a.*\", env=~\"d.v|x\"}", 0,
	       "{__name__=\"m\", env=\"dev\", job=\"api\"} 2");
	EXPECT("m{job!~\"a.*\"}", 0, "{__name__=\"m\", job=\"web\"} 3");
	EXPECT("{__name__=~\"m|n\", job=\"api\", env=\"\"}", 0, "{__name__=\"n\", job=\"api\"} 4");
	EXPECT("{job=\"web\",}", 0, "{__name__=\"m\", job=\"web\"} 3");
	EXPECT("nothing", 0, "");
}

Test(promql_eval, string_and_scalar_results)
{
	EXPECT("\"hello\"", 0, "string hello");
	EXPECT("time()", SEC(90), "scalar 90");
	EXPECT("time() + 1", SEC(90), "scalar 91");
}

Test(promql_eval, max_samples_is_an_error)
{
	struct promql_engine eng = { .select = pqt_select, .max_samples = 5 };
	struct promql_result *r = NULL;
	struct promql_expr *e;
	char err[256];

	pqt_load(SEC(1), "m{a=\"1\"}", "0+1x20");
	e = promql_parse("m", err, sizeof(err));
	cr_assert(e);
	cr_expect_eq(promql_eval_range(&eng, e, 0, SEC(20), SEC(1), &r, err, sizeof(err)), -E2BIG);
	cr_expect_null(r);
	cr_expect(strstr(err, "too many samples"), "%s", err);
	cr_expect_eq(promql_eval_instant(&eng, e, SEC(20), &r, err, sizeof(err)), 0);
	promql_result__free(r);
	promql_expr__free(e);
}

/* ---------------- range functions ---------------- */

Test(promql_func, rate_increase_ported)
{
	/* promql/testdata/functions.test */
	pqt_load(MIN(5), "http_requests{path=\"/foo\"}", "0+10x10");
	pqt_load(MIN(5), "http_requests{path=\"/bar\"}", "0+10x5 0+10x5");
	EXPECT("increase(http_requests[50m])", MIN(50), "{path=\"/bar\"} 90\n{path=\"/foo\"} 100");
	EXPECT("irate(http_requests[50m])", MIN(50),
	       "{path=\"/bar\"} 0.03333333333333333\n{path=\"/foo\"} 0.03333333333333333");
	EXPECT("irate(http_requests[50m])", MIN(30),
	       "{path=\"/bar\"} 0\n{path=\"/foo\"} 0.03333333333333333");
	EXPECT("rate(http_requests{path=\"/foo\"}[50m])", MIN(50),
	       "{path=\"/foo\"} 0.03333333333333333");
}

Test(promql_func, rate_extrapolation_by_hand)
{
	/* samples every 5m from 0: 10, 20, ... */
	pqt_load(MIN(5), "c", "10+10x10");
	/*
	 * At 51m over [1m, 51m]: samples 5m..50m = 20..110: increase 90 over
	 * 2700 s; start gap 240 s < 1.1 * 300 s, end gap 60 s: extrapolate to
	 * 3000 s, but the zero point (2700 * 20/90 = 600 s back) is further
	 * than 240 s so it does not cut: 90 * 3000 / 2700 = 100.
	 */
	EXPECT_NEAR(pqt_one("increase(c[50m])", MIN(51)), 100);
	EXPECT_NEAR(pqt_one("rate(c[50m])", MIN(51)), 100.0 / 3000);
	/*
	 * [60m] at 50m: all 11 samples, start gap 600 s, but the zero point is
	 * 3000 * 10/100 = 300 s back (< 1.1 * 300 s): 100 * 3300 / 3000.
	 */
	EXPECT_NEAR(pqt_one("increase(c[60m])", MIN(50)), 110);
	/* zero floor: counter at 10 after 5m cannot extrapolate below zero */
	pqt_reset();
	pqt_load(MIN(1), "z", "_ _ _ 1 2 3");
	/* [5m] at 5m: samples 3m..5m (1,2,3): 2 over 120 s; start gap 180 s,
	 * the zero point 60 s back (< 66 s) wins: 2 * 180 / 120 */
	EXPECT_NEAR(pqt_one("increase(z[5m])", MIN(5)), 3);
	pqt_reset();
	pqt_load(MIN(1), "z", "_ _ _ 5 6 7");
	/* zero is 600 s back, start gap 120 s > 66 -> +30 s: 2 * 150 / 120 */
	EXPECT_NEAR(pqt_one("increase(z[5m])", MIN(5)), 2.5);
	pqt_reset();
	pqt_load(MIN(1), "z", "_ _ _ 0.5 6 7");
	/* increase 6.5, zero point 120 * 0.5/6.5 = 9.23 s back < 30 s */
	EXPECT_NEAR(pqt_one("increase(z[5m])", MIN(5)), 6.5 * (120 + 120.0 * 0.5 / 6.5) / 120);
	/* delta does not floor and does not treat drops as resets */
	pqt_reset();
	pqt_load(MIN(1), "g", "_ _ _ 10 4 7");
	EXPECT_NEAR(pqt_one("delta(g[5m])", MIN(5)), -3.0 * 150 / 120);
	/* 4 < 10 is a reset: 7 - 10 + 10 = 7; zero 171 s back > 66 s */
	EXPECT_NEAR(pqt_one("increase(g[5m])", MIN(5)), 7.0 * 150 / 120);
	EXPECT("rate(g[1m])", MIN(10), "");
}

Test(promql_func, counter_resets)
{
	/* functions.test: deriv and rate over testcounter_reset_middle */
	pqt_load(MIN(5), "testcounter_reset_middle", "0+10x4 0+10x5");
	pqt_load(MIN(5), "testcounter_reset_end", "0+10x9 0 10");
	EXPECT("rate(testcounter_reset_middle[50m])", MIN(50), "{} 0.03");
	EXPECT("rate(testcounter_reset_end[5m])", MIN(50), "{} 0");
	EXPECT("deriv(testcounter_reset_middle[100m])", MIN(50), "{} 0.010606060606060607");
	EXPECT("idelta(testcounter_reset_middle[50m])", MIN(25), "{} -40");
	EXPECT("irate(testcounter_reset_middle[50m])", MIN(25), "{} 0");
	EXPECT("increase(testcounter_reset_middle[50m])", MIN(50), "{} 90");
}

Test(promql_func, deriv_ported)
{
	pqt_load(MIN(5), "http_requests{job=\"app-server\", instance=\"1\", group=\"canary\"}",
		 "0+80x10");
	EXPECT("rate(http_requests{group=\"canary\", instance=\"1\", job=\"app-server\"}[50m])",
	       MIN(50),
	       "{group=\"canary\", instance=\"1\", job=\"app-server\"} 0.26666666666666666");
	EXPECT("deriv(http_requests{group=\"canary\", instance=\"1\", job=\"app-server\"}[50m])",
	       MIN(50),
	       "{group=\"canary\", instance=\"1\", job=\"app-server\"} 0.26666666666666666");
	EXPECT("deriv(http_requests[1m])", MIN(50), "");
	pqt_reset();
	pqt_load(MIN(1), "k", "5 5 5");
	EXPECT("deriv(k[5m])", MIN(2), "{} 0");
}

Test(promql_func, over_time)
{
	pqt_load(SEC(10), "data{type=\"numbers\"}", "2 0 3");
	pqt_load(SEC(10), "data{type=\"some_nan\"}", "2 0 NaN");
	pqt_load(SEC(10), "data{type=\"some_nan2\"}", "2 NaN 1");
	pqt_load(SEC(10), "data{type=\"some_nan3\"}", "NaN 0 1");
	pqt_load(SEC(10), "data{type=\"only_nan\"}", "NaN NaN NaN");
	/* functions.test: min/max_over_time with NaN */
	EXPECT("min_over_time(data[1m])", MIN(1),
	       "{type=\"numbers\"} 0\n{type=\"only_nan\"} NaN\n{type=\"some_nan\"} 0\n"
	       "{type=\"some_nan2\"} 1\n{type=\"some_nan3\"} 0");
	EXPECT("max_over_time(data[1m])", MIN(1),
	       "{type=\"numbers\"} 3\n{type=\"only_nan\"} NaN\n{type=\"some_nan\"} 2\n"
	       "{type=\"some_nan2\"} 2\n{type=\"some_nan3\"} 1");
	EXPECT("last_over_time(data{type=\"numbers\"}[1m])", MIN(1),
	       "{__name__=\"data\", type=\"numbers\"} 3");
	EXPECT("sum_over_time(data{type=\"numbers\"}[1m])", MIN(1), "{type=\"numbers\"} 5");
	EXPECT("avg_over_time(data{type=\"numbers\"}[1m])", MIN(1),
	       "{type=\"numbers\"} 1.6666666666666667");
	EXPECT("count_over_time(data{type=\"numbers\"}[1m])", MIN(1), "{type=\"numbers\"} 3");
	EXPECT("present_over_time(data{type=\"numbers\"}[1m])", MIN(1), "{type=\"numbers\"} 1");
	EXPECT("present_over_time(data{type=\"numbers\"}[10s])", MIN(1), "");
	/* [t - range, t] is inclusive at both ends in 2.x */
	EXPECT("count_over_time(data{type=\"numbers\"}[20s])", SEC(20), "{type=\"numbers\"} 3");
	EXPECT("count_over_time(data{type=\"numbers\"}[19s])", SEC(20), "{type=\"numbers\"} 2");
}

Test(promql_func, stddev_stdvar_quantile_over_time)
{
	/* functions.test */
	pqt_load(SEC(10), "metric", "0 8 8 2 3");
	EXPECT_APPROX("stdvar_over_time(metric[1m])", MIN(1), "{} 10.56");
	EXPECT("stddev_over_time(metric[1m])", MIN(1), "{} 3.249615361854384");
	pqt_reset();
	pqt_load(SEC(10), "metric", "1.5990505637277868 1.5990505637277868 1.5990505637277868");
	EXPECT("stdvar_over_time(metric[1m])", MIN(1), "{} 0");
	pqt_reset();
	pqt_load(SEC(10), "data{test=\"two samples\"}", "0 1");
	pqt_load(SEC(10), "data{test=\"three samples\"}", "0 1 2");
	pqt_load(SEC(10), "data{test=\"uneven samples\"}", "0 1 4");
	EXPECT("quantile_over_time(0, data[1m])", MIN(1),
	       "{test=\"three samples\"} 0\n{test=\"two samples\"} 0\n{test=\"uneven samples\"} 0");
	EXPECT("quantile_over_time(0.5, data[1m])", MIN(1),
	       "{test=\"three samples\"} 1\n{test=\"two samples\"} 0.5\n{test=\"uneven samples\"} 1");
	EXPECT("quantile_over_time(0.75, data[1m])", MIN(1),
	       "{test=\"three samples\"} 1.5\n{test=\"two samples\"} 0.75\n{test=\"uneven samples\"} 2.5");
	EXPECT_APPROX(
		"quantile_over_time(0.8, data[1m])", MIN(1),
		"{test=\"three samples\"} 1.6\n{test=\"two samples\"} 0.8\n{test=\"uneven samples\"} 2.8");
	EXPECT("quantile_over_time(-1, data{test=\"two samples\"}[1m])", MIN(1),
	       "{test=\"two samples\"} -Inf");
	EXPECT("quantile_over_time(2, data{test=\"two samples\"}[1m])", MIN(1),
	       "{test=\"two samples\"} +Inf");
}

Test(promql_func, same_labelset_after_dropping_name)
{
	pqt_load(MIN(1), "a{x=\"1\"}", "1 2");
	pqt_load(MIN(1), "b{x=\"1\"}", "1 2");
	EXPECT("rate({x=\"1\"}[5m])", MIN(1),
	       "error: vector cannot contain metrics with the same labelset");
	EXPECT_ERR("abs({x=\"1\"})", "vector cannot contain metrics with the same labelset");
	EXPECT_ERR("-{x=\"1\"}", "vector cannot contain metrics with the same labelset");
	EXPECT_ERR("{x=\"1\"} * 2", "vector cannot contain metrics with the same labelset");
	EXPECT("{x=\"1\"} > 0", MIN(1), "{__name__=\"a\", x=\"1\"} 2\n{__name__=\"b\", x=\"1\"} 2");
	EXPECT("last_over_time({x=\"1\"}[5m])", MIN(1),
	       "{__name__=\"a\", x=\"1\"} 2\n{__name__=\"b\", x=\"1\"} 2");
}

/* ---------------- instant functions ---------------- */

Test(promql_func, math_functions)
{
	pqt_load(MIN(1), "m{v=\"pos\"}", "1.5");
	pqt_load(MIN(1), "m{v=\"neg\"}", "-1.5");
	pqt_load(MIN(1), "m{v=\"half\"}", "2.5");
	pqt_load(MIN(1), "m{v=\"nan\"}", "NaN");
	EXPECT("abs(m)", 0, "{v=\"half\"} 2.5\n{v=\"nan\"} NaN\n{v=\"neg\"} 1.5\n{v=\"pos\"} 1.5");
	EXPECT("ceil(m)", 0, "{v=\"half\"} 3\n{v=\"nan\"} NaN\n{v=\"neg\"} -1\n{v=\"pos\"} 2");
	EXPECT("floor(m)", 0, "{v=\"half\"} 2\n{v=\"nan\"} NaN\n{v=\"neg\"} -2\n{v=\"pos\"} 1");
	/* round half up, towards +Inf, as Prometheus' floor(x + 0.5) */
	EXPECT("round(m)", 0, "{v=\"half\"} 3\n{v=\"nan\"} NaN\n{v=\"neg\"} -1\n{v=\"pos\"} 2");
	EXPECT("round(m, 2)", 0, "{v=\"half\"} 2\n{v=\"nan\"} NaN\n{v=\"neg\"} -2\n{v=\"pos\"} 2");
	EXPECT("round(m, 0.1)", 0,
	       "{v=\"half\"} 2.5\n{v=\"nan\"} NaN\n{v=\"neg\"} -1.5\n{v=\"pos\"} 1.5");
	/* Go's math.Max / Min: NaN wins */
	EXPECT("clamp_min(m, 0)", 0,
	       "{v=\"half\"} 2.5\n{v=\"nan\"} NaN\n{v=\"neg\"} 0\n{v=\"pos\"} 1.5");
	EXPECT("clamp_max(m, 2)", 0,
	       "{v=\"half\"} 2\n{v=\"nan\"} NaN\n{v=\"neg\"} -1.5\n{v=\"pos\"} 1.5");
	EXPECT("clamp_max(m{v=\"pos\"}, NaN)", 0, "{v=\"pos\"} NaN");
}

Test(promql_func, vector_scalar_time)
{
	pqt_load(MIN(1), "one{a=\"1\"}", "5 6");
	pqt_load(MIN(1), "two{a=\"1\"}", "1");
	pqt_load(MIN(1), "two{a=\"2\"}", "2");
	EXPECT("vector(1)", 0, "{} 1");
	EXPECT("vector(time())", MIN(60), "{} 3600"); /* functions.test */
	EXPECT("scalar(one)", MIN(1), "scalar 6");
	EXPECT("scalar(two)", 0, "scalar NaN");
	EXPECT("scalar(nothing)", 0, "scalar NaN");
	EXPECT("one + scalar(one)", MIN(1), "{a=\"1\"} 12");
	EXPECT("time() - timestamp(one)", MIN(2), "{a=\"1\"} 60");
}

Test(promql_func, label_replace_ported)
{
	/* functions.test */
	pqt_load(MIN(5), "testmetric{src=\"source-value-10\",dst=\"original-destination-value\"}",
		 "0");
	pqt_load(MIN(5), "testmetric{src=\"source-value-20\",dst=\"original-destination-value\"}",
		 "1");
	EXPECT("label_replace(testmetric, \"dst\", \"destination-value-$1\", \"src\", \"source-value-(.*)\")",
	       0,
	       "{__name__=\"testmetric\", dst=\"destination-value-10\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", dst=\"destination-value-20\", src=\"source-value-20\"} 1");
	EXPECT("label_replace(testmetric, \"dst\", \"destination-value-$1\", \"src\", \"value-(.*)\")",
	       0,
	       "{__name__=\"testmetric\", dst=\"original-destination-value\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", dst=\"original-destination-value\", src=\"source-value-20\"} 1");
	EXPECT("label_replace(testmetric, \"dst\", \"${1}-value-$2\", \"src\", \"(.*)-value-(.*)\")",
	       0,
	       "{__name__=\"testmetric\", dst=\"source-value-10\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", dst=\"source-value-20\", src=\"source-value-20\"} 1");
	EXPECT("label_replace(testmetric, \"dst\", \"value-$1\", \"nonexistent-src\", \"source-value-(.*)\")",
	       0,
	       "{__name__=\"testmetric\", dst=\"original-destination-value\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", dst=\"original-destination-value\", src=\"source-value-20\"} 1");
	EXPECT("label_replace(testmetric, \"dst\", \"value-$1\", \"nonexistent-src\", \"(.*)\")", 0,
	       "{__name__=\"testmetric\", dst=\"value-\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", dst=\"value-\", src=\"source-value-20\"} 1");
	EXPECT("label_replace(testmetric, \"dst\", \"\", \"dst\", \".*\")", 0,
	       "{__name__=\"testmetric\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", src=\"source-value-20\"} 1");
	EXPECT("label_replace(testmetric, \"new\", \"$$x$\", \"src\", \".*\")", 0,
	       "{__name__=\"testmetric\", dst=\"original-destination-value\", new=\"$x$\", src=\"source-value-10\"} 0\n"
	       "{__name__=\"testmetric\", dst=\"original-destination-value\", new=\"$x$\", src=\"source-value-20\"} 1");
	EXPECT_ERR("label_replace(testmetric, \"dst\", \"value-$1\", \"src\", \"(.*\")",
		   "invalid regular expression in label_replace(): (.*");
	EXPECT_ERR("label_replace(testmetric, \"invalid-label-name\", \"\", \"src\", \"(.*)\")",
		   "invalid destination label name in label_replace(): invalid-label-name");
	EXPECT_ERR("label_replace(testmetric, \"src\", \"\", \"\", \"\")",
		   "duplicated label set in output of label_replace()");
}

Test(promql_func, absent)
{
	pqt_load(MIN(1), "http_requests{job=\"api\"}", "1");
	EXPECT("absent(http_requests)", 0, "");
	EXPECT("absent(nonexistent)", 0, "{} 1");
	EXPECT("absent(nonexistent{job=\"testjob\", instance=\"testinstance\", method=~\".x\"})", 0,
	       "{instance=\"testinstance\", job=\"testjob\"} 1");
	EXPECT("absent(nonexistent{job=\"testjob\", job=\"testjob2\", foo=\"bar\"})", 0,
	       "{foo=\"bar\"} 1");
	EXPECT("absent(sum(nonexistent{job=\"testjob\"}))", 0, "{} 1");
	EXPECT("absent(http_requests{job=\"api\"} > 5)", 0, "{} 1");
}

Test(promql_func, histogram_quantile_ported)
{
	/* promql/testdata/histograms.test; group order is a Go map's there */
	pqt_load(MIN(5), "testhistogram_bucket{le=\"0.1\", start=\"positive\"}", "0+5x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\".2\", start=\"positive\"}", "0+7x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\"1e0\", start=\"positive\"}", "0+11x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\"+Inf\", start=\"positive\"}", "0+12x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\"-.2\", start=\"negative\"}", "0+1x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\"-0.1\", start=\"negative\"}", "0+2x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\"0.3\", start=\"negative\"}", "0+2x10");
	pqt_load(MIN(5), "testhistogram_bucket{le=\"+Inf\", start=\"negative\"}", "0+3x10");
	EXPECT_SORTED("histogram_quantile(-0.1, testhistogram_bucket)", MIN(50),
		      "{start=\"negative\"} -Inf\n{start=\"positive\"} -Inf");
	EXPECT_SORTED("histogram_quantile(1.01, testhistogram_bucket)", MIN(50),
		      "{start=\"negative\"} +Inf\n{start=\"positive\"} +Inf");
	EXPECT("histogram_quantile(0, testhistogram_bucket{start=\"positive\"})", MIN(50),
	       "{start=\"positive\"} 0");
	EXPECT("histogram_quantile(0, testhistogram_bucket{start=\"negative\"})", MIN(50),
	       "{start=\"negative\"} -0.2");
	EXPECT_SORTED("histogram_quantile(1, testhistogram_bucket)", MIN(50),
		      "{start=\"negative\"} 0.3\n{start=\"positive\"} 1");
	EXPECT_SORTED("histogram_quantile(0.2, testhistogram_bucket)", MIN(50),
		      "{start=\"negative\"} -0.2\n{start=\"positive\"} 0.048");
	EXPECT_SORTED_APPROX("histogram_quantile(0.5, testhistogram_bucket)", MIN(50),
			     "{start=\"negative\"} -0.15\n{start=\"positive\"} 0.15");
	EXPECT_SORTED("histogram_quantile(0.8, testhistogram_bucket)", MIN(50),
		      "{start=\"negative\"} 0.3\n{start=\"positive\"} 0.72");
	/* a rate of buckets, as dashboards use it */
	EXPECT_SORTED_APPROX("histogram_quantile(0.5, rate(testhistogram_bucket[10m]))", MIN(50),
			     "{start=\"negative\"} -0.15\n{start=\"positive\"} 0.15");
	/* no counts at all: NaN */
	EXPECT_SORTED_APPROX("histogram_quantile(0.5, testhistogram_bucket)", 0,
			     "{start=\"negative\"} NaN\n{start=\"positive\"} NaN");
}

Test(promql_func, histogram_quantile_edge_cases)
{
	/* no +Inf bucket: NaN; non-monotonic counts are fixed up; bad le skipped */
	pqt_load(MIN(1), "h_bucket{le=\"1\", k=\"noinf\"}", "5");
	pqt_load(MIN(1), "h_bucket{le=\"2\", k=\"noinf\"}", "10");
	pqt_load(MIN(1), "h_bucket{le=\"1\", k=\"mono\"}", "10");
	pqt_load(MIN(1), "h_bucket{le=\"2\", k=\"mono\"}", "5");
	pqt_load(MIN(1), "h_bucket{le=\"+Inf\", k=\"mono\"}", "20");
	pqt_load(MIN(1), "h_bucket{le=\"abc\", k=\"mono\"}", "1000");
	pqt_load(MIN(1), "h_bucket{k=\"mono\"}", "1000");
	pqt_load(MIN(1), "h_bucket{le=\"+Inf\", k=\"only\"}", "4");
	/* mono: counts 10, 10 (fixed), 20; q=0.75 -> rank 15 -> +Inf bucket -> 2 */
	EXPECT("histogram_quantile(0.75, h_bucket{k=\"mono\"})", 0, "{k=\"mono\"} 2");
	EXPECT("histogram_quantile(0.25, h_bucket{k=\"mono\"})", 0, "{k=\"mono\"} 0.5");
	EXPECT("histogram_quantile(0.5, h_bucket{k=\"noinf\"})", 0, "{k=\"noinf\"} NaN");
	EXPECT("histogram_quantile(0.5, h_bucket{k=\"only\"})", 0, "{k=\"only\"} NaN");
}

/* ---------------- aggregations ---------------- */

static void pqt_load_http(void)
{
	/* promql/testdata/aggregators.test */
	pqt_load(MIN(5), "http_requests{job=\"api-server\", instance=\"0\", group=\"production\"}",
		 "0+10x10");
	pqt_load(MIN(5), "http_requests{job=\"api-server\", instance=\"1\", group=\"production\"}",
		 "0+20x10");
	pqt_load(MIN(5), "http_requests{job=\"api-server\", instance=\"0\", group=\"canary\"}",
		 "0+30x10");
	pqt_load(MIN(5), "http_requests{job=\"api-server\", instance=\"1\", group=\"canary\"}",
		 "0+40x10");
	pqt_load(MIN(5), "http_requests{job=\"app-server\", instance=\"0\", group=\"production\"}",
		 "0+50x10");
	pqt_load(MIN(5), "http_requests{job=\"app-server\", instance=\"1\", group=\"production\"}",
		 "0+60x10");
	pqt_load(MIN(5), "http_requests{job=\"app-server\", instance=\"0\", group=\"canary\"}",
		 "0+70x10");
	pqt_load(MIN(5), "http_requests{job=\"app-server\", instance=\"1\", group=\"canary\"}",
		 "0+80x10");
}

Test(promql_agg, sum_avg_count_ported)
{
	pqt_load_http();
	EXPECT("SUM BY (group) (http_requests{job=\"api-server\"})", MIN(50),
	       "{group=\"canary\"} 700\n{group=\"production\"} 300");
	EXPECT("sum(http_requests{job=\"api-server\"}) by (group)", MIN(50),
	       "{group=\"canary\"} 700\n{group=\"production\"} 300");
	EXPECT("sum(http_requests)", MIN(50), "{} 3600");
	EXPECT("avg by (group) (http_requests)", MIN(50),
	       "{group=\"canary\"} 550\n{group=\"production\"} 350");
	EXPECT("count by (job) (http_requests)", MIN(50),
	       "{job=\"api-server\"} 4\n{job=\"app-server\"} 4");
	EXPECT("sum without (instance) (http_requests)", MIN(50),
	       "{group=\"canary\", job=\"api-server\"} 700\n{group=\"canary\", job=\"app-server\"} 1500\n"
	       "{group=\"production\", job=\"api-server\"} 300\n{group=\"production\", job=\"app-server\"} 1100");
	EXPECT("sum by (__name__) (http_requests)", MIN(50), "{__name__=\"http_requests\"} 3600");
	EXPECT("sum(nonexistent)", MIN(50), "");
	EXPECT("count(nonexistent)", MIN(50), "");
	EXPECT("group by (job) (http_requests)", MIN(50),
	       "{job=\"api-server\"} 1\n{job=\"app-server\"} 1");
	EXPECT("sum by (nonexistent) (http_requests{job=\"api-server\"})", MIN(50), "{} 1000");
}

Test(promql_agg, min_max_stddev_quantile)
{
	pqt_load_http();
	EXPECT("max by (job) (http_requests)", MIN(50),
	       "{job=\"api-server\"} 400\n{job=\"app-server\"} 800");
	EXPECT("min by (job) (http_requests)", MIN(50),
	       "{job=\"api-server\"} 100\n{job=\"app-server\"} 500");
	EXPECT_APPROX("stdvar(http_requests)", MIN(50), "{} 52500");
	EXPECT_APPROX(
		"stddev by (job) (http_requests)", MIN(50),
		"{job=\"api-server\"} 111.80339887498948\n{job=\"app-server\"} 111.80339887498948");
	EXPECT("quantile(0.5, http_requests)", MIN(50), "{} 450");
	EXPECT("quantile by (job) (0.25, http_requests)", MIN(50),
	       "{job=\"api-server\"} 175\n{job=\"app-server\"} 575");
	EXPECT("quantile(2, http_requests)", MIN(50), "{} +Inf");
	pqt_reset();
	pqt_load(MIN(1), "n{i=\"a\"}", "NaN");
	pqt_load(MIN(1), "n{i=\"b\"}", "1");
	pqt_load(MIN(1), "n{i=\"c\"}", "3");
	/* max/min skip a leading NaN */
	EXPECT("max(n)", 0, "{} 3");
	EXPECT("min(n)", 0, "{} 1");
	EXPECT("sum(n)", 0, "{} NaN");
	EXPECT("avg(n{i!=\"a\"})", 0, "{} 2");
}

Test(promql_agg, stddev_value_check)
{
	pqt_load_http();
	EXPECT_NEAR(pqt_one("stddev(http_requests)", MIN(50)), sqrt(52500.0));
}

Test(promql_agg, topk_bottomk_ported)
{
	pqt_load_http();
	EXPECT("topk(3, http_requests)", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"app-server\"} 800\n"
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"app-server\"} 700\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"1\", job=\"app-server\"} 600");
	EXPECT("topk by (group) (1, http_requests)", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"app-server\"} 800\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"1\", job=\"app-server\"} 600");
	EXPECT("bottomk(3, http_requests)", MIN(50),
	       "{__name__=\"http_requests\", group=\"production\", instance=\"0\", job=\"api-server\"} 100\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"1\", job=\"api-server\"} 200\n"
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"api-server\"} 300");
	EXPECT("bottomk by (group) (2, http_requests{job=\"app-server\"})", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"app-server\"} 700\n"
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"app-server\"} 800\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"0\", job=\"app-server\"} 500\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"1\", job=\"app-server\"} 600");
	EXPECT("topk(0, http_requests)", MIN(50), "");
	EXPECT("topk(1.9, http_requests{job=\"api-server\"})", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"api-server\"} 400");
	EXPECT_ERR("topk(NaN, http_requests)", "overflows int64");
	EXPECT("topk(100, http_requests{instance=\"0\", job=\"api-server\"})", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"api-server\"} 300\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"0\", job=\"api-server\"} 100");
}

Test(promql_agg, topk_nan_handling)
{
	pqt_load(MIN(1), "n{i=\"a\"}", "NaN");
	pqt_load(MIN(1), "n{i=\"b\"}", "1");
	pqt_load(MIN(1), "n{i=\"c\"}", "3");
	/* NaN is the smallest for the heap, so it is replaced first */
	EXPECT("topk(2, n)", 0, "{__name__=\"n\", i=\"c\"} 3\n{__name__=\"n\", i=\"b\"} 1");
	EXPECT("bottomk(2, n)", 0, "{__name__=\"n\", i=\"b\"} 1\n{__name__=\"n\", i=\"c\"} 3");
	EXPECT("topk(3, n)", 0,
	       "{__name__=\"n\", i=\"c\"} 3\n{__name__=\"n\", i=\"b\"} 1\n{__name__=\"n\", i=\"a\"} NaN");
}

/* ---------------- binary operators ---------------- */

Test(promql_binop, arithmetic_drops_name_ported)
{
	pqt_load_http();
	/* operators.test */
	EXPECT("SUM(http_requests) BY (job) - COUNT(http_requests) BY (job)", MIN(50),
	       "{job=\"api-server\"} 996\n{job=\"app-server\"} 2596");
	EXPECT("2 - SUM(http_requests) BY (job)", MIN(50),
	       "{job=\"api-server\"} -998\n{job=\"app-server\"} -2598");
	EXPECT("-http_requests{job=\"api-server\",instance=\"0\",group=\"production\"}", MIN(50),
	       "{group=\"production\", instance=\"0\", job=\"api-server\"} -100");
	EXPECT("+http_requests{job=\"api-server\",instance=\"0\",group=\"production\"}", MIN(50),
	       "{__name__=\"http_requests\", group=\"production\", instance=\"0\", job=\"api-server\"} 100");
	EXPECT("SUM(http_requests) BY (job) % 3", MIN(50),
	       "{job=\"api-server\"} 1\n{job=\"app-server\"} 2");
	EXPECT("SUM(http_requests) BY (job) ^ 2", MIN(50),
	       "{job=\"api-server\"} 1000000\n{job=\"app-server\"} 6760000");
	EXPECT("SUM(http_requests) BY (job) / 0", MIN(50),
	       "{job=\"api-server\"} +Inf\n{job=\"app-server\"} +Inf");
	EXPECT("-1 * SUM(http_requests) BY (job) % 0", MIN(50),
	       "{job=\"api-server\"} NaN\n{job=\"app-server\"} NaN");
	EXPECT("1 - -1", 0, "scalar 2");
}

Test(promql_binop, comparisons_keep_name)
{
	pqt_load_http();
	EXPECT("http_requests{job=\"app-server\"} > 600", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"app-server\"} 700\n"
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"app-server\"} 800");
	/* scalar on the left: the vector's value is kept */
	EXPECT("600 < http_requests{job=\"app-server\"}", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"app-server\"} 700\n"
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"app-server\"} 800");
	EXPECT("http_requests{job=\"app-server\"} > bool 600", MIN(50),
	       "{group=\"canary\", instance=\"0\", job=\"app-server\"} 1\n"
	       "{group=\"canary\", instance=\"1\", job=\"app-server\"} 1\n"
	       "{group=\"production\", instance=\"0\", job=\"app-server\"} 0\n"
	       "{group=\"production\", instance=\"1\", job=\"app-server\"} 0");
	EXPECT("http_requests{job=\"api-server\", group=\"canary\"} == bool 300", MIN(50),
	       "{group=\"canary\", instance=\"0\", job=\"api-server\"} 1\n"
	       "{group=\"canary\", instance=\"1\", job=\"api-server\"} 0");
	EXPECT("http_requests{job=\"api-server\", group=\"canary\"} != 300", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"api-server\"} 400");
	EXPECT("http_requests{job=\"api-server\", group=\"canary\"} <= 300", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"api-server\"} 300");
	EXPECT("http_requests{job=\"api-server\", group=\"canary\"} >= 400", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"api-server\"} 400");
	EXPECT("http_requests{job=\"api-server\", group=\"canary\"} < 400", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"api-server\"} 300");
	EXPECT("1 < bool 2", 0, "scalar 1");
	EXPECT("NaN == bool NaN", 0, "scalar 0");
}

Test(promql_binop, vector_matching_ported)
{
	pqt_load_http();
	/* one-to-one with ignoring: labels of the lhs minus the name */
	EXPECT("http_requests{group=\"canary\"} / ignoring(group) http_requests{group=\"production\"}",
	       MIN(50),
	       "{instance=\"0\", job=\"api-server\"} 3\n{instance=\"0\", job=\"app-server\"} 1.4\n"
	       "{instance=\"1\", job=\"api-server\"} 2\n{instance=\"1\", job=\"app-server\"} 1.3333333333333333");
	/* on() keeps only the matching labels */
	EXPECT("sum by (job, instance) (http_requests) - on(job) group_left sum by (job) (http_requests)",
	       MIN(50),
	       "{instance=\"0\", job=\"api-server\"} -600\n{instance=\"0\", job=\"app-server\"} -1400\n"
	       "{instance=\"1\", job=\"api-server\"} -400\n{instance=\"1\", job=\"app-server\"} -1200");
	EXPECT("sum by (job) (http_requests) == on(job) sum by (job, nope) (http_requests)",
	       MIN(50), "{job=\"api-server\"} 1000\n{job=\"app-server\"} 2600");
	EXPECT("http_requests{group=\"canary\"} > on(job, instance) http_requests{group=\"production\"}",
	       MIN(50),
	       "{instance=\"0\", job=\"api-server\"} 300\n{instance=\"0\", job=\"app-server\"} 700\n"
	       "{instance=\"1\", job=\"api-server\"} 400\n{instance=\"1\", job=\"app-server\"} 800");
	/* no match, no result */
	EXPECT("http_requests{job=\"api-server\"} + on(job) sum by (job) (http_requests{job=\"none\"})",
	       MIN(50), "");
}

Test(promql_binop, group_left_right)
{
	pqt_load(MIN(1), "req{job=\"api\", instance=\"0\"}", "10");
	pqt_load(MIN(1), "req{job=\"api\", instance=\"1\"}", "20");
	pqt_load(MIN(1), "req{job=\"web\", instance=\"0\"}", "30");
	pqt_load(MIN(1), "info{job=\"api\", owner=\"alice\", instance=\"x\"}", "1");
	pqt_load(MIN(1), "info{job=\"web\", owner=\"bob\", instance=\"y\"}", "2");
	EXPECT("req * on(job) group_left(owner) info", 0,
	       "{instance=\"0\", job=\"api\", owner=\"alice\"} 10\n"
	       "{instance=\"0\", job=\"web\", owner=\"bob\"} 60\n"
	       "{instance=\"1\", job=\"api\", owner=\"alice\"} 20");
	/* group_right: labels from the rhs ("many"), value order kept lhs op rhs */
	EXPECT("info - on(job) group_right(owner) req", 0,
	       "{instance=\"0\", job=\"api\", owner=\"alice\"} -9\n"
	       "{instance=\"0\", job=\"web\", owner=\"bob\"} -28\n"
	       "{instance=\"1\", job=\"api\", owner=\"alice\"} -19");
	/* comparison keeps the name of the many side and the lhs value */
	EXPECT("req > on(job) group_left info", 0,
	       "{__name__=\"req\", instance=\"0\", job=\"api\"} 10\n"
	       "{__name__=\"req\", instance=\"0\", job=\"web\"} 30\n"
	       "{__name__=\"req\", instance=\"1\", job=\"api\"} 20");
	EXPECT("req > bool on(job) group_left info", 0,
	       "{instance=\"0\", job=\"api\"} 1\n{instance=\"0\", job=\"web\"} 1\n"
	       "{instance=\"1\", job=\"api\"} 1");
	EXPECT_ERR(
		"req + on(job) req",
		"found duplicate series for the match group {job=\"api\"} on the right hand-side of the operation");
	EXPECT_ERR("info + on(job) group_right req * 0 + on(job) group_left req",
		   "found duplicate series for the match group");
	EXPECT_ERR(
		"sum by (job, instance) (req) + on(job) sum by (job) (req)",
		"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
	/* ignoring(instance) leaves owner in info's signature: no match */
	EXPECT("req + ignoring(instance) group_left info", 0, "");
	EXPECT_ERR("req + on(job) group_left(owner) (info * on(job) group_left(nope) req)",
		   "found duplicate series");
}

Test(promql_binop, set_operators)
{
	pqt_load_http();
	EXPECT("http_requests{job=\"api-server\"} and http_requests{instance=\"0\"}", MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"api-server\"} 300\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"0\", job=\"api-server\"} 100");
	EXPECT("http_requests{job=\"api-server\", group=\"canary\"} unless on(instance) http_requests{instance=\"0\"}",
	       MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"1\", job=\"api-server\"} 400");
	EXPECT("http_requests{group=\"canary\", instance=\"0\"} or http_requests{group=\"production\", instance=\"0\", job=\"api-server\"}",
	       MIN(50),
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"api-server\"} 300\n"
	       "{__name__=\"http_requests\", group=\"canary\", instance=\"0\", job=\"app-server\"} 700\n"
	       "{__name__=\"http_requests\", group=\"production\", instance=\"0\", job=\"api-server\"} 100");
	/* or matches on all labels but the name */
	EXPECT("sum by (job) (http_requests) or on(job) count by (job, group) (http_requests)",
	       MIN(50), "{job=\"api-server\"} 1000\n{job=\"app-server\"} 2600");
	EXPECT("http_requests{job=\"api-server\"} and on(group) vector(1)", MIN(50), "");
	EXPECT("vector(1) or vector(2)", 0, "{} 1");
	EXPECT("(http_requests{job=\"none\"} or vector(0)) + 1", MIN(50), "{} 1");
	/* precedence: and binds tighter than or */
	EXPECT("vector(1) and vector(2) or vector(3)", 0, "{} 1");
	EXPECT("vector(1) unless vector(2) or vector(3)", 0, "{} 3");
}

/* ---------------- range queries ---------------- */

Test(promql_range, steps_and_order)
{
	pqt_load(MIN(1), "m{b=\"2\"}", "1 2 3 4 5");
	pqt_load(MIN(1), "m{b=\"1\"}", "10 _ _ _ _ _ _ _ 20");
	pqt_load(MIN(1), "m{a=\"z\"}", "_ _ _ 7");
	cr_expect_str_eq(pqt_range("m", 0, MIN(4), MIN(2)),
			 "{__name__=\"m\", a=\"z\"} 7@240\n"
			 "{__name__=\"m\", b=\"1\"} 10@0 10@120 10@240\n"
			 "{__name__=\"m\", b=\"2\"} 1@0 3@120 5@240");
	/* steps are start + k * step, not aligned */
	cr_expect_str_eq(pqt_range("m{b=\"2\"}", SEC(30), MIN(3), MIN(1)),
			 "{__name__=\"m\", b=\"2\"} 1@30 2@90 3@150");
	/* series that vanish after the lookback and come back */
	cr_expect_str_eq(pqt_range("m{b=\"1\"}", MIN(4), MIN(8), MIN(1)),
			 "{__name__=\"m\", b=\"1\"} 10@240 10@300 20@480");
	cr_expect_str_eq(pqt_range("time()", 0, SEC(2), SEC(1)), "{} 0@0 1@1 2@2");
	cr_expect_str_eq(pqt_range("1 > bool 0", 0, SEC(1), SEC(1)), "{} 1@0 1@1");
	cr_expect(strstr(
		pqt_range("m[5m]", 0, SEC(1), SEC(1)),
		"range query needs a scalar or instant vector expression, got range vector"));
	cr_expect(strstr(pqt_range("\"s\"", 0, SEC(1), SEC(1)), "range query needs"));
	cr_expect(strstr(pqt_range("m", SEC(2), SEC(1), SEC(1)), "error"));
	cr_expect(strstr(pqt_range("m", 0, SEC(1), 0), "error"));
}

Test(promql_range, one_select_per_selector)
{
	pqt_load(SEC(15), "c{i=\"0\"}", "0+15x100");
	pqt_load(SEC(15), "c{i=\"1\"}", "0+30x100");
	pqt_selects = 0;
	cr_expect_str_eq(pqt_range("sum(rate(c[1m]))", MIN(10), MIN(12), MIN(1)),
			 "{} 3@600 3@660 3@720");
	cr_expect_eq(pqt_selects, 1);
	pqt_selects = 0;
	cr_expect_str_eq(pqt_range("c{i=\"1\"} - ignoring(i) c{i=\"0\"}", MIN(10), MIN(11), MIN(1)),
			 "{} 600@600 660@660");
	cr_expect_eq(pqt_selects, 2);
}

Test(promql_range, results_match_instant_queries)
{
	static const char *const qs[] = {
		"rate(c[2m])",
		"irate(c[2m])",
		"increase(c[3m] offset 1m)",
		"deriv(c[5m])",
		"topk(1, c)",
		"sum by (i) (c) * 2",
		"histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
		"avg_over_time(c[90s]) > 100",
		"c > bool 400",
		"absent(nope)",
		"label_replace(c, \"j\", \"$1\", \"i\", \"(.*)\")",
	};
	char want[16384];
	size_t i;
	int64_t t;

	pqt_load(SEC(15), "c{i=\"0\"}", "0+15x40 0+15x40");
	pqt_load(SEC(15), "c{i=\"1\"}", "0+30x80");
	pqt_load(SEC(30), "h_bucket{le=\"0.5\"}", "0+1x40");
	pqt_load(SEC(30), "h_bucket{le=\"1\"}", "0+3x40");
	pqt_load(SEC(30), "h_bucket{le=\"+Inf\"}", "0+4x40");
	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		char one[4096];
		size_t o = 0;

		/* assemble the range result from instant queries, per series */
		snprintf(want, sizeof(want), "%s", pqt_range(qs[i], MIN(5), MIN(15), SEC(45)));
		for (t = MIN(5); t <= MIN(15); t += SEC(45)) {
			const char *r = pqt_q(qs[i], t);

			o += (size_t)snprintf(one + o, sizeof(one) - o, "%s;", r);
			if (o >= sizeof(one))
				break;
		}
		/* every instant value appears in the range result at its step */
		for (t = MIN(5); t <= MIN(15); t += SEC(45)) {
			char r[2048], *line, *save = NULL;

			snprintf(r, sizeof(r), "%s", pqt_q(qs[i], t));
			for (line = strtok_r(r, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				char *sp = strrchr(line, ' '), pt[256];

				cr_assert(sp);
				*sp = '\0';
				snprintf(pt, sizeof(pt), " %s@%g", sp + 1, (double)t / 1000);
				cr_expect(strstr(want, line) && strstr(strstr(want, line), pt),
					  "%s at %lld: %s%s missing in\n%s", qs[i], (long long)t,
					  line, pt, want);
			}
		}
	}
}

Test(promql_range, performance_1h_at_1s_over_1000_series, .timeout = 60)
{
	struct timespec a, b;
	char err[256];
	struct promql_expr *e;
	struct promql_result *r = NULL;
	double ms;
	size_t i, j;

	for (i = 0; i < 1000; i++) {
		char name[64];
		struct pqt_series *s;

		snprintf(name, sizeof(name), "load{i=\"%zu\", job=\"j%zu\"}", i, i % 10);
		s = pqt_series_new(name);
		for (j = 0; j <= 3900; j++)
			pqt_push(s, SEC(j), (double)(j * (i + 1)));
	}
	e = promql_parse("sum by (job) (rate(load[1m]))", err, sizeof(err));
	cr_assert(e, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(promql_eval_range(&pqt_eng, e, SEC(300), SEC(3900), SEC(1), &r, err,
				       sizeof(err)),
		     0, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	cr_log_info("1h at 1s over 1000 series: %.1f ms (select double included)", ms);
	cr_expect_eq(r->nseries, 10);
	cr_expect_eq(r->series[0].n, 3601);
	/* job j0: i = 0, 10, ..., 990 -> sum of (i + 1) per second */
	EXPECT_NEAR(r->series[0].v[0], 49600.0);
	/* sanitizer builds are slow; the plain build is far below a second */
	cr_expect_lt(ms, 10000.0);
	promql_result__free(r);
	promql_expr__free(e);
	e = promql_parse("load", err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(promql_eval_range(&pqt_eng, e, SEC(300), SEC(3900), SEC(1), &r, err,
				       sizeof(err)),
		     0, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	cr_log_info("raw selector 1h at 1s over 1000 series: %.1f ms", ms);
	cr_expect_eq(r->nseries, 1000);
	promql_result__free(r);
	promql_expr__free(e);
}
