/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for tenant scoping: promql_restrict() (userspace/promql/
 * tenant.c) rewrites every selector of nested expressions, and no query
 * escapes it; and the query API (api/prom_api.c) applies it on every route
 * for a principal with a tenant, against a real in-memory store holding
 * series of tenants A and B and one without a tenant.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "exemplars.h"
#include "prom_api.h"
#include "promql/ast.h"
#include "tsdb/tsdb.h"

#define TT_T0 1700000000000LL

/* Count the selectors under e, and those holding tenant="A" as an equality matcher. */
static void tt_walk(const struct promql_expr *e, size_t *sel, size_t *scoped)
{
	size_t i;

	if (!e)
		return;
	if (e->kind == PQ_VSEL) {
		(*sel)++;
		for (i = 0; i < e->nmatchers; i++) {
			if (e->matchers[i].type == TSDB_MATCH_EQ &&
			    !strcmp(e->matchers[i].name, "tenant") &&
			    !strcmp(e->matchers[i].value, "A")) {
				(*scoped)++;
				break;
			}
		}
		return;
	}
	for (i = 0; i < e->nargs; i++)
		tt_walk(e->args[i], sel, scoped);
	tt_walk(e->param, sel, scoped);
	tt_walk(e->lhs, sel, scoped);
	tt_walk(e->rhs, sel, scoped);
	tt_walk(e->sub, sel, scoped);
}

Test(promql_tenant, rewrites_every_selector)
{
	static const struct {
		const char *q;
		size_t selectors;
	} cases[] = {
		{ "up", 1 },
		{ "{__name__=~\".+\"}", 1 },
		{ "rate(x_total[5m])", 1 },
		{ "sum by (vm) (rate(x_total[1m])) / ignoring(vm) group_left sum(y)", 2 },
		{ "topk(3, -(a offset 1m) + on(vm) b) or absent(c{tenant=\"B\"})", 3 },
		{ "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))", 1 },
		{ "label_replace(up, \"tenant\", \"B\", \"\", \"\")", 1 },
		{ "quantile(scalar(a), b) > bool 1", 2 },
		{ "((((a))))", 1 },
		{ "count without (vm) (a) unless on() vector(1)", 1 },
		{ "1 + 2", 0 },
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct promql_expr *e = promql_parse(cases[i].q, err, sizeof(err));
		size_t sel = 0, scoped = 0;

		cr_assert_not_null(e, "%s: %s", cases[i].q, err);
		cr_assert_eq(promql_restrict(e, "tenant", "A"), 0);
		tt_walk(e, &sel, &scoped);
		cr_expect_eq(sel, cases[i].selectors, "%s: %zu selectors", cases[i].q, sel);
		cr_expect_eq(scoped, sel, "%s: %zu of %zu scoped", cases[i].q, scoped, sel);
		promql_expr__free(e);
	}
}

Test(promql_tenant, bad_arguments)
{
	struct promql_expr *e = promql_parse("up", NULL, 0);

	cr_assert_not_null(e);
	cr_expect_eq(promql_restrict(NULL, "tenant", "A"), -EINVAL);
	cr_expect_eq(promql_restrict(e, "tenant", ""), -EINVAL);
	cr_expect_eq(promql_restrict(e, "", "A"), -EINVAL);
	cr_expect_eq(promql_restrict(e, "tenant", NULL), -EINVAL);
	promql_expr__free(e);
}

/* Subqueries are not in the engine: a parse error, so nothing runs unscoped. */
Test(promql_tenant, subqueries_do_not_parse)
{
	char err[256];

	cr_expect_null(promql_parse("max_over_time(rate(x[1m])[5m:1m])", err, sizeof(err)));
	cr_expect(strstr(err, "subqueries are not supported"), "%s", err);
}

/* ---------------- the query API with a tenant's principal ---------------- */

static struct tsdb *tt_db;
static struct exemplars *tt_ex;
static struct prom_api tt_api;
static struct http_route tt_routes[PROM_API_NROUTES];

static int64_t tt_now(void)
{
	return TT_T0 + 30000;
}

static void tt_add(const char *name, const char *tenant, const char *vm, double v)
{
	struct tsdb_label l[3] = {
		{ TSDB_NAME_LABEL, name },
		{ "tenant", tenant },
		{ "vm", vm },
	};
	int64_t t;

	/* tenant "" leaves the label out */
	if (!tenant[0])
		l[1] = l[2];
	for (t = 0; t <= 30000; t += 1000)
		cr_assert_eq(tsdb__append(tt_db, l, tenant[0] ? 3 : 2, TT_T0 + t, v), 0);
}

static const struct metric_exemplar tt_exemplar = {
	.trace_id = { 0xaa, 1 },
	.span_id = { 0xbb, 2 },
	.value = 1,
	.timestamp_ms = TT_T0 + 1000,
};

static void tt_setup(void)
{
	struct tsdb_opts opts = { 0 };
	char err[256];

	tt_db = tsdb__open(&opts, err, sizeof(err));
	cr_assert_not_null(tt_db, "%s", err);
	cr_assert_eq(prom_api__init(&tt_api, tt_db), 0);
	tt_api.now_ms = tt_now;
	cr_assert_eq(prom_api__routes(&tt_api, tt_routes, PROM_API_NROUTES), PROM_API_NROUTES);
	tt_add("cpu_seconds_total", "A", "a1", 1);
	tt_add("cpu_seconds_total", "A", "a2", 2);
	tt_add("cpu_seconds_total", "B", "b1", 40);
	tt_add("secret_b_only", "B", "b1", 7);
	tt_add("host_load", "", "host", 3);
	/* an exemplar on a series of each tenant and on the host's */
	tt_ex = exemplars__new(16);
	cr_assert_not_null(tt_ex);
	tt_api.exemplars = tt_ex;
	cr_assert_eq(exemplars__add(tt_ex, "cpu_seconds_total", "tenant=\"A\",vm=\"a1\"",
				    &tt_exemplar),
		     0);
	cr_assert_eq(exemplars__add(tt_ex, "cpu_seconds_total", "tenant=\"B\",vm=\"b1\"",
				    &tt_exemplar),
		     0);
	cr_assert_eq(exemplars__add(tt_ex, "host_load", "vm=\"host\"", &tt_exemplar), 0);
}

static void tt_teardown(void)
{
	tsdb__close(tt_db);
	tt_db = NULL;
	tt_ex = exemplars__free(tt_ex);
}

TestSuite(promql_tenant_api, .init = tt_setup, .fini = tt_teardown);

/* GET path?query as principal p (NULL: auth off); returns the status and *body. */
static int tt_get(const struct auth_principal *p, const char *path, const char *query, char **body)
{
	struct http_request req = {
		.method = "GET",
		.path = path,
		.query = query,
		.body = "",
		.content_type = "",
		.content_encoding = "",
		.authorization = "",
		.remote_addr = "",
		.principal = p,
	};
	struct http_response resp = { 0 };
	const struct http_route *r = NULL;
	size_t i, best = 0;

	for (i = 0; i < PROM_API_NROUTES; i++) {
		size_t n = strlen(tt_routes[i].path);

		if (strcmp(tt_routes[i].method, "GET"))
			continue;
		if (!strcmp(tt_routes[i].path, path) ||
		    (tt_routes[i].path[n - 1] == '/' && !strncmp(tt_routes[i].path, path, n) &&
		     n > best)) {
			r = &tt_routes[i];
			best = n;
		}
	}
	cr_assert_not_null(r, "no route %s", path);
	cr_assert_eq(r->fn(&req, &resp, r->ctx), 0, "%s?%s", path, query);
	*body = resp.body;
	return resp.status ? resp.status : 200;
}

static const struct auth_principal tt_alice = { "alice", AUTH_ROLE_VIEWER, "A" };
static const struct auth_principal tt_root = { "root", AUTH_ROLE_ADMIN, "" };

/* Every way of asking must leave no trace of tenant B or of the host-wide series. */
Test(promql_tenant_api, a_tenant_sees_only_its_series)
{
	static const struct {
		const char *path, *query;
	} asks[] = {
		{ "/api/v1/query", "query=%7B__name__%3D~%22.%2B%22%7D" },
		{ "/api/v1/query", "query=cpu_seconds_total%7Btenant%3D%22B%22%7D" },
		{ "/api/v1/query", "query=cpu_seconds_total%7Btenant%21%3D%22A%22%7D" },
		{ "/api/v1/query", "query=cpu_seconds_total%7Btenant%3D~%22.*%22%7D" },
		{ "/api/v1/query", "query=sum(cpu_seconds_total)" },
		{ "/api/v1/query", "query=secret_b_only%20or%20host_load" },
		{ "/api/v1/query",
		  "query=label_replace(cpu_seconds_total%2C%22tenant%22%2C%22A%22%2C%22%22%2C%22%22)" },
		{ "/api/v1/query_range",
		  "query=cpu_seconds_total&start=1700000000&end=1700000030&step=10" },
		{ "/api/metrics/query", "query=%7Bvm%3D~%22.%2B%22%7D" },
		{ "/api/v1/series", "match[]=%7B__name__%3D~%22.%2B%22%7D" },
		{ "/api/v1/series", "match[]=secret_b_only&match[]=host_load" },
		{ "/api/v1/labels", "" },
		{ "/api/v1/label/vm/values", "" },
		{ "/api/v1/label/__name__/values", "" },
		{ "/api/v1/label/tenant/values", "match[]=%7Btenant%3D%22B%22%7D" },
		{ "/api/metrics/search", "" },
		{ "/api/metrics/search", "regex=secret.*" },
		{ "/api/v1/query_exemplars", "query=%7B__name__%3D~%22.%2B%22%7D" },
		{ "/api/v1/query_exemplars", "query=cpu_seconds_total%7Btenant%3D%22B%22%7D" },
		{ "/api/v1/query_exemplars",
		  "query=rate(cpu_seconds_total%5B1m%5D)%20or%20host_load" },
	};
	size_t i;

	for (i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		char *body = NULL;
		int st = tt_get(&tt_alice, asks[i].path, asks[i].query, &body);

		cr_expect_eq(st, 200, "%s?%s: %d %s", asks[i].path, asks[i].query, st, body);
		cr_expect_null(strstr(body, "\"B\""), "%s?%s leaks tenant B: %s", asks[i].path,
			       asks[i].query, body);
		cr_expect_null(strstr(body, "b1"), "%s?%s leaks vm b1: %s", asks[i].path,
			       asks[i].query, body);
		cr_expect_null(strstr(body, "secret_b_only"), "%s?%s: %s", asks[i].path,
			       asks[i].query, body);
		cr_expect_null(strstr(body, "host"), "%s?%s leaks the host: %s", asks[i].path,
			       asks[i].query, body);
		free(body);
	}
}

Test(promql_tenant_api, results_are_the_tenants)
{
	char *body = NULL;

	cr_assert_eq(tt_get(&tt_alice, "/api/v1/query", "query=sum(cpu_seconds_total)", &body),
		     200);
	cr_expect(strstr(body, "\"3\""), "sum over A's vms is 3: %s", body);
	free(body);
	cr_assert_eq(tt_get(&tt_alice, "/api/v1/label/vm/values", "", &body), 200);
	cr_expect_str_eq(body, "{\"status\":\"success\",\"data\":[\"a1\",\"a2\"]}\n");
	free(body);
	cr_assert_eq(tt_get(&tt_alice, "/api/metrics/search", "", &body), 200);
	cr_expect(strstr(body, "cpu_seconds_total") && strstr(body, "a2"), "%s", body);
	free(body);
	cr_assert_eq(tt_get(&tt_alice, "/api/v1/query_exemplars",
			    "query=%7B__name__%3D~%22.%2B%22%7D", &body),
		     200);
	cr_expect_str_eq(
		body,
		"{\"status\":\"success\",\"data\":[{\"seriesLabels\":{\"__name__\":\"cpu_seconds_total\","
		"\"tenant\":\"A\",\"vm\":\"a1\"},\"exemplars\":[{\"labels\":{\"trace_id\":"
		"\"aa010000000000000000000000000000\",\"span_id\":\"bb02000000000000\"},\"value\":\"1\","
		"\"timestamp\":1700000001}]}]}");
	free(body);
}

/* Admins and requests without auth see everything. */
Test(promql_tenant_api, admin_and_no_auth_see_all)
{
	char *xbody = NULL;

	cr_assert_eq(tt_get(&tt_root, "/api/v1/query_exemplars", "query=%7Bvm%3D~%22.%2B%22%7D",
			    &xbody),
		     200);
	cr_expect(strstr(xbody, "\"b1\"") && strstr(xbody, "\"a1\"") && strstr(xbody, "host_load"),
		  "%s", xbody);
	free(xbody);

	char *body = NULL;

	cr_assert_eq(tt_get(&tt_root, "/api/v1/query", "query=sum(cpu_seconds_total)", &body), 200);
	cr_expect(strstr(body, "\"43\""), "%s", body);
	free(body);
	cr_assert_eq(tt_get(NULL, "/api/v1/label/vm/values", "", &body), 200);
	cr_expect_str_eq(body,
			 "{\"status\":\"success\",\"data\":[\"a1\",\"a2\",\"b1\",\"host\"]}\n");
	free(body);
}
