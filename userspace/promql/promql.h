/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql: a PromQL engine for the subset dashboards and alert rules use,
 * with Prometheus 2.x semantics (lookback delta 5 m, extrapolated rate /
 * increase / delta, staleness by lookback only, result ordering and label
 * handling as Prometheus does).
 *
 * Supported: number and string literals; instant and range vector selectors
 * with =, !=, =~, !~ and offset; rate, irate, increase, delta, idelta, deriv,
 * avg/min/max/sum/count/last/stddev/stdvar/quantile/present_over_time,
 * histogram_quantile, abs, ceil, floor, round, clamp_min, clamp_max, time,
 * vector, scalar, timestamp, label_replace, absent; sum, avg, min, max,
 * count, topk, bottomk, stddev, stdvar, quantile, group with by/without;
 * + - * / % ^ == != > < >= <= (with bool) and, or, unless between scalars and
 * vectors with on/ignoring and group_left/group_right; parentheses, unary
 * minus. Anything else (subqueries, @ modifier, other functions) is a parse
 * error that names the unsupported construct: never a wrong answer.
 *
 * The engine reads data through a select function with tsdb__select()'s
 * contract, so it runs against the store or a test double alike.
 */
#ifndef NOVAMON_PROMQL_H
#define NOVAMON_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

#define PROMQL_LOOKBACK_MS (5 * 60 * 1000)

struct promql_expr;

/* Parse q. Returns the AST or NULL with a message in err ("1:14: unexpected ..."). */
struct promql_expr *promql_parse(const char *q, char *err, size_t errlen);
void promql_expr__free(struct promql_expr *e);

enum promql_type {
	PROMQL_SCALAR,
	PROMQL_VECTOR,
	PROMQL_MATRIX,
	PROMQL_STRING,
};

/* One series of a result: labels sorted by name (no __name__ after most functions). */
struct promql_series {
	struct tsdb_label *labels; /* strings owned by the result */
	size_t nlabels;
	int64_t *t; /* ms */
	double *v;
	size_t n;   /* 1 for instant vectors */
};

struct promql_result {
	enum promql_type type;
	double scalar;          /* PROMQL_SCALAR */
	int64_t scalar_t;
	char *string;           /* PROMQL_STRING */
	struct promql_series *series; /* VECTOR (n == 1 each) or MATRIX, Prometheus' order */
	size_t nseries;
};

void promql_result__free(struct promql_result *r);

typedef int (*promql_select_fn)(void *ctx, const struct tsdb_matcher *m, size_t nm, int64_t mint,
				int64_t maxt, struct tsdb_result **out);

struct promql_engine {
	promql_select_fn select;
	void *ctx;
	int64_t lookback_ms;   /* 0: PROMQL_LOOKBACK_MS */
	size_t max_samples;    /* 0: 50M; exceeding it is an error, not a truncation */
};

/*
 * Evaluate e at time t_ms (an instant query: scalar, vector, string, or a
 * matrix for a range selector). Returns 0 or -errno with a message in err.
 */
int promql_eval_instant(const struct promql_engine *eng, const struct promql_expr *e, int64_t t_ms,
			struct promql_result **out, char *err, size_t errlen);
/*
 * Evaluate e at start, start+step, ..., <= end (a range query): a MATRIX
 * (scalar results become a series with no labels). e must be a scalar or
 * instant-vector expression (else -EINVAL: "range query needs ...").
 */
int promql_eval_range(const struct promql_engine *eng, const struct promql_expr *e,
		      int64_t start_ms, int64_t end_ms, int64_t step_ms, struct promql_result **out,
		      char *err, size_t errlen);

/*
 * Parse a series selector alone (for /api/v1/series match[]): fills up to
 * max matchers (strings owned by *expr, free it after use). Returns the
 * count or -EINVAL with err.
 */
int promql_parse_selector(const char *s, struct promql_expr **expr, struct tsdb_matcher *m,
			  size_t max, char *err, size_t errlen);

/*
 * Restrict e (a root from promql_parse() or promql_parse_selector()) to the
 * series whose label name equals value: every vector selector in it, also
 * inside range selectors, functions, aggregations and binary operations,
 * gets the matcher name="value" ANDed with its own, which no matcher of the
 * query can undo (userspace/promql/tenant.c; the tenant scoping of the
 * query API). Strings are copied into e. Returns 0, -EINVAL (NULL e, empty
 * name or value) or -ENOMEM (e is then partly restricted: do not run it).
 */
int promql_restrict(struct promql_expr *e, const char *name, const char *value);

typedef int (*promql_selector_fn)(void *ctx, const struct tsdb_matcher *m, size_t n);

/*
 * Call fn for every vector selector of e (also inside range selectors,
 * functions, aggregations and binary operations) with its matchers, in
 * the expression's order (userspace/promql/selectors.c; query_exemplars).
 * Returns 0 or fn's first non-zero return, which stops the walk.
 */
int promql_for_each_selector(const struct promql_expr *e, promql_selector_fn fn, void *ctx);

/*
 * Format v as Prometheus does in JSON ("1.5", "NaN", "+Inf", "-Inf", "1e+100")
 * into buf (len > 0 bytes, NUL-terminated, truncated to fit). Returns the
 * length written, without the NUL: callers that append need no strlen().
 */
size_t promql_format_value(double v, char *buf, size_t len);

#endif /* NOVAMON_PROMQL_H */
