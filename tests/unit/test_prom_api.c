/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/prom_api.c that need neither the store nor the engine:
 * time and duration parsing, timestamps, parameters from the query string
 * and form bodies, JSON rendering of hand-built results, and the request
 * errors the query handlers answer before evaluating anything.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prom_api.h"
#include "tsdb/tsdb.h"

Test(prom_api, parse_time)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{ "0", 0 },
		{ "1.5", 1500 },
		{ "1700000000", 1700000000000LL },
		{ "1435781451.781", 1435781451781LL },
		{ "-0.25", -250 },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2015-07-01T20:10:51.781Z", 1435781451781LL },
		{ "2015-07-01T22:10:51.781+02:00", 1435781451781LL },
		{ "2015-07-01T18:10:51-02:00", 1435781451000LL },
		{ "2026-11-22T08:00:00Z", 1795334400000LL },
	};
	static const char *const bad[] = {
		"",
		"x",
		"1s",
		"2015-07-01",
		"2015-07-01T20:10:51",
		"2015-07-01T20:10:51.Z",
		"2015-13-01T20:10:51Z",
		"2015-07-01T20:10:51+0200",
		"NaN",
		"Inf",
		"1e300",
	};
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(prom_api_parse_time(ok[i].s, &ms), 0, "%s", ok[i].s);
		cr_assert_eq(ms, ok[i].ms, "%s: %lld", ok[i].s, (long long)ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(prom_api_parse_time(bad[i], &ms), -EINVAL, "%s", bad[i]);
}

Test(prom_api, parse_duration)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{ "15", 15000 },	  { "0.5", 500 },      { "15s", 15000 },
		{ "1m30s", 90000 },	  { "500ms", 500 },    { "1h", 3600000 },
		{ "2d", 172800000 },	  { "1w", 604800000 }, { "1y", 31536000000LL },
		{ "1h2m3s4ms", 3723004 }, { "0s", 0 },
	};
	static const char *const bad[] = { "", "s", "1x", "1s1m", "-1", "1m1m", "1.5s", "m", "1 s" };
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(prom_api_parse_duration(ok[i].s, &ms), 0, "%s", ok[i].s);
		cr_assert_eq(ms, ok[i].ms, "%s: %lld", ok[i].s, (long long)ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(prom_api_parse_duration(bad[i], &ms), -EINVAL, "%s", bad[i]);
}

Test(prom_api, format_time)
{
	char buf[32];

	prom_api_format_time(1500, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1.5");
	prom_api_format_time(1000, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1");
	prom_api_format_time(5, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0.005");
	prom_api_format_time(-250, buf, sizeof(buf));
	cr_assert_str_eq(buf, "-0.25");
	prom_api_format_time(1435781451781LL, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1435781451.781");
	prom_api_format_time(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0");
	cr_assert_eq(prom_api_format_time(1050, buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, "1.05");
	cr_assert_eq(prom_api_format_time(INT64_MIN, buf, sizeof(buf)), 21);
	cr_assert_str_eq(buf, "-9223372036854775.808");
	cr_assert_eq(prom_api_format_time(INT64_MAX, buf, sizeof(buf)), 20);
	cr_assert_str_eq(buf, "9223372036854775.807");
	/* a small buffer truncates, NUL-terminated, and says how much it wrote */
	{
		char small[6];

		cr_assert_eq(prom_api_format_time(1435781451781LL, small, sizeof(small)), 5);
		cr_assert_str_eq(small, "14357");
		cr_assert_eq(prom_api_format_time(1, small, 0), 0);
	}
}

static void test_render(const struct promql_result *r, int64_t t, const char *want)
{
	char *out = NULL;
	size_t len = 0;

	cr_assert_eq(prom_api_render_result(r, t, &out, &len), 0);
	cr_assert_eq(len, strlen(out));
	cr_assert_str_eq(out, want);
	free(out);
}

Test(prom_api, render_scalar_and_string)
{
	struct promql_result r = { .type = PROMQL_SCALAR,
				   .scalar = 1.5,
				   .scalar_t = 1700000000500LL };

	test_render(&r, 0,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
		    "\"result\":[1700000000.5,\"1.5\"]}}\n");
	r.scalar = NAN;
	test_render(&r, 0,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
		    "\"result\":[1700000000.5,\"NaN\"]}}\n");
	r.type = PROMQL_STRING;
	r.string = "a \"b\"\n\\c";
	test_render(&r, 2000,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"string\","
		    "\"result\":[2,\"a \\\"b\\\"\\n\\\\c\"]}}\n");
}

Test(prom_api, render_vector_and_matrix)
{
	struct tsdb_label l1[] = { { "__name__", "up" },
				   { "job", "a\"b" },
				   { "z", "\xc3\xa9\x01" } };
	struct tsdb_label l2[] = { { "job", "x" } };
	int64_t t1[] = { 1000 }, t2[] = { 1000, 16000, 31500 };
	double v1[] = { 1 }, v2[] = { INFINITY, -3, 0.25 };
	struct promql_series s[] = {
		{ .labels = l1, .nlabels = 3, .t = t1, .v = v1, .n = 1 },
		{ .labels = l2, .nlabels = 1, .t = t2, .v = v2, .n = 3 },
	};
	struct promql_result r = { .type = PROMQL_VECTOR, .series = s, .nseries = 1 };

	test_render(
		&r, 1000,
		"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
		"{\"metric\":{\"__name__\":\"up\",\"job\":\"a\\\"b\",\"z\":\"\xc3\xa9\\u0001\"},"
		"\"value\":[1,\"1\"]}]}}\n");
	r.nseries = 0;
	test_render(
		&r, 1000,
		"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}\n");
	r.type = PROMQL_MATRIX;
	r.series = s + 1;
	r.nseries = 1;
	test_render(&r, 0,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
		    "{\"metric\":{\"job\":\"x\"},\"values\":[[1,\"+Inf\"],[16,\"-3\"],"
		    "[31.5,\"0.25\"]]}]}}\n");
	s[1].nlabels = 0;
	test_render(&r, 0,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
		    "{\"metric\":{},\"values\":[[1,\"+Inf\"],[16,\"-3\"],[31.5,\"0.25\"]]}]}}\n");
}

Test(prom_api, params_query_and_form)
{
	struct http_request req = {
		.method = "POST",
		.path = "/api/v1/series",
		.query = "match[]=up&match%5B%5D=x%7Ba%3D%22%26%22%7D&start=1",
		.body = "start=2&end=3",
		.body_len = 13,
		.content_type = "application/x-www-form-urlencoded",
	};
	char buf[64];

	cr_assert_eq(prom_api_param(&req, "match[]", 0, buf, sizeof(buf)), 2);
	cr_assert_str_eq(buf, "up");
	cr_assert_gt(prom_api_param(&req, "match[]", 1, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "x{a=\"&\"}");
	cr_assert_eq(prom_api_param(&req, "match[]", 2, buf, sizeof(buf)), -ENOENT);
	/* the body wins over the query string */
	cr_assert_eq(prom_api_param(&req, "start", 0, buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "2");
	cr_assert_eq(prom_api_param(&req, "end", 0, buf, sizeof(buf)), 1);
	cr_assert_eq(prom_api_param(&req, "match[]", 0, buf, 2), -E2BIG);
	/* a body of another type is not form data */
	req.content_type = "application/json";
	cr_assert_eq(prom_api_param(&req, "start", 0, buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "1");
	cr_assert_eq(prom_api_param(&req, "end", 0, buf, sizeof(buf)), -ENOENT);
}

static struct prom_api test_api;
static struct http_route test_routes[PROM_API_NROUTES];

static const struct http_route *test_route(const char *method, const char *path)
{
	size_t i;

	for (i = 0; i < PROM_API_NROUTES; i++)
		if (!strcmp(test_routes[i].method, method) && !strcmp(test_routes[i].path, path))
			return &test_routes[i];
	cr_assert_fail("no route %s %s", method, path);
	return NULL;
}

/* Run a GET handler on query; returns the status, body in *body (free it). */
static int test_call(const char *path, const char *query, char **body)
{
	const struct http_route *r = test_route("GET", path);
	struct http_request req = {
		.method = "GET",
		.path = path,
		.query = query,
		.body = "",
		.content_type = "",
		.content_encoding = "",
		.authorization = "",
		.remote_addr = "",
	};
	struct http_response resp = { 0 };

	cr_assert_eq(r->fn(&req, &resp, r->ctx), 0, "%s?%s", path, query);
	*body = resp.body;
	return resp.status ? resp.status : 200;
}

static struct tsdb *test_db;

/* A real, empty, in-memory store: requests that reach the engine find no data. */
static void test_api_setup(void)
{
	struct tsdb_opts opts = { 0 };
	char err[256];

	test_db = tsdb__open(&opts, err, sizeof(err));
	cr_assert_not_null(test_db, "%s", err);
	cr_assert_eq(prom_api__init(&test_api, test_db), 0);
	cr_assert_eq(prom_api__routes(&test_api, test_routes, PROM_API_NROUTES - 1), -ENOSPC);
	cr_assert_eq(prom_api__routes(&test_api, test_routes, PROM_API_NROUTES), PROM_API_NROUTES);
	cr_assert_eq(prom_api__init(&test_api, NULL), -EINVAL);
	cr_assert_eq(prom_api__init(&test_api, test_db), 0);
}

static void test_api_teardown(void)
{
	tsdb__close(test_db);
	test_db = NULL;
}

TestSuite(prom_api_req, .init = test_api_setup, .fini = test_api_teardown);

/* Request errors answered before the engine runs, with Prometheus' wording. */
Test(prom_api_req, range_errors)
{
	static const struct {
		const char *query;
		const char *needle;
	} cases[] = {
		{ "query=up&start=10&end=5&step=1", "end timestamp must not be before start time" },
		{ "query=up&start=0&end=11001&step=1",
		  "exceeded maximum resolution of 11,000 points" },
		{ "query=up&start=0&end=10&step=0", "zero or negative query resolution step" },
		{ "query=up&start=0&end=10", "invalid parameter \\\"step\\\": missing" },
		{ "query=up&start=x&end=10&step=1", "invalid parameter \\\"start\\\"" },
		{ "query=up&start=0&end=10&step=1x", "invalid parameter \\\"step\\\"" },
		{ "start=0&end=10&step=1", "invalid parameter \\\"query\\\": missing" },
		{ "query=up&end=10&step=1", "invalid parameter \\\"start\\\": missing" },
		{ "query=up&start=0&end=1&step=1&timeout=x", "invalid parameter \\\"timeout\\\"" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = NULL;

		cr_assert_eq(test_call("/api/v1/query_range", cases[i].query, &body), 400, "%s",
			     cases[i].query);
		cr_assert_not_null(strstr(body, "\"status\":\"error\",\"errorType\":\"bad_data\""));
		cr_assert_not_null(strstr(body, cases[i].needle), "%s: %s", cases[i].query, body);
		free(body);
	}
	/* exactly 11,000 steps is accepted (reaches the engine: here a parse error) */
	{
		char *body = NULL;

		cr_assert_eq(test_call("/api/v1/query_range",
				       "query=up%7B&start=0&end=11000&step=1", &body),
			     400);
		cr_assert_null(strstr(body, "maximum resolution"), "%s", body);
		free(body);
	}
}

Test(prom_api_req, instant_and_metadata_errors)
{
	char *body = NULL;

	cr_assert_eq(test_call("/api/v1/query", "time=yesterday&query=up", &body), 400);
	cr_assert_not_null(strstr(body, "invalid parameter \\\"time\\\""), "%s", body);
	free(body);
	cr_assert_eq(test_call("/api/v1/query", "query=", &body), 400);
	free(body);
	cr_assert_eq(test_call("/api/v1/series", "start=1", &body), 400);
	cr_assert_not_null(strstr(body, "no match[] parameter provided"), "%s", body);
	free(body);
	cr_assert_eq(test_call("/api/v1/series", "match[]=up&start=5&end=1", &body), 400);
	free(body);
	cr_assert_eq(test_call("/api/v1/label/", "", &body), 404);
	free(body);
	body = NULL;
	{
		const struct http_route *r = test_route("GET", "/api/v1/label/");
		struct http_request req = { .method = "GET",
					    .path = "/api/v1/label/1bad/values",
					    .query = "",
					    .body = "",
					    .content_type = "" };
		struct http_response resp = { 0 };

		cr_assert_eq(r->fn(&req, &resp, r->ctx), 0);
		cr_assert_eq(resp.status, 400);
		cr_assert_not_null(strstr(resp.body, "invalid label name"), "%s", resp.body);
		free(resp.body);
	}
	cr_assert_eq(test_call("/api/metrics/search", "limit=0", &body), 400);
	free(body);
	cr_assert_eq(test_call("/api/metrics/search", "regex=(", &body), 400);
	free(body);
}
