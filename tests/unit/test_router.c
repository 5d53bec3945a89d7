/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/router.c: URL decoding, the query string rebuilt from
 * decoded arguments, http_param() on it, route matching, and the handler
 * pool (ordering, cancellation, and freeing what is still queued).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router.h"

Test(router, url_decode)
{
	char s[64];

	strcpy(s, "a%20b+c%2B%e2%82%ac");
	cr_assert_eq(router_url_decode(s, true), 9);
	cr_assert_str_eq(s, "a b c+\xe2\x82\xac");
	strcpy(s, "a+b");
	cr_assert_eq(router_url_decode(s, false), 3);
	cr_assert_str_eq(s, "a+b");
	strcpy(s, "bad%2");
	cr_assert_eq(router_url_decode(s, true), -EINVAL);
	strcpy(s, "bad%zz");
	cr_assert_eq(router_url_decode(s, true), -EINVAL);
	strcpy(s, "nul%00");
	cr_assert_eq(router_url_decode(s, true), -EINVAL);
}

/* What lws hands over (decoded name=value pieces) comes back through http_param(). */
Test(router, query_round_trip)
{
	static const char *const args[] = {
		"match[]=up{a=\"&\"}", "match[]=b c+d", "flag", "e=", "q=x=y", "u=\xc3\xa9%"
	};
	char *q = NULL, buf[64];
	size_t len = 0, i;

	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		cr_assert_eq(router_query_append(&q, &len, args[i]), 0);
	cr_assert_eq(strlen(q), len);
	cr_assert_eq(http_param(q, "match[]", 0, buf, sizeof(buf)), 9);
	cr_assert_str_eq(buf, "up{a=\"&\"}");
	cr_assert_gt(http_param(q, "match[]", 1, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "b c+d");
	cr_assert_eq(http_param(q, "match[]", 2, buf, sizeof(buf)), -ENOENT);
	cr_assert_eq(http_param(q, "flag", 0, buf, sizeof(buf)), 0);
	cr_assert_eq(http_param(q, "e", 0, buf, sizeof(buf)), 0);
	cr_assert_gt(http_param(q, "q", 0, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "x=y");
	cr_assert_gt(http_param(q, "u", 0, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "\xc3\xa9%");
	cr_assert_eq(http_param(q, "nope", 0, buf, sizeof(buf)), -ENOENT);
	cr_assert_eq(http_param(q, "q", 0, buf, 3), -E2BIG);
	free(q);

	cr_assert_eq(http_param("a=%zz", "a", 0, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(http_param("", "a", 0, buf, sizeof(buf)), -ENOENT);
}

static int test_nop(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)resp;
	(void)ctx;
	return 0;
}

Test(router, match)
{
	static const struct http_route routes[] = {
		{ "GET", "/api/v1/query", test_nop, NULL },
		{ "POST", "/api/v1/query", test_nop, NULL },
		{ "GET", "/api/v1/label/", test_nop, NULL },
		{ "GET", "/api/", test_nop, NULL },
		{ NULL, "/any", test_nop, NULL },
		{ "PUT", "/api/v1/label/x/values", test_nop, NULL },
	};
	size_t n = sizeof(routes) / sizeof(routes[0]);
	char allow[64];

	cr_assert_eq(router_match(routes, n, "GET", "/api/v1/query", allow, sizeof(allow)),
		     &routes[0]);
	cr_assert_eq(router_match(routes, n, "POST", "/api/v1/query", allow, sizeof(allow)),
		     &routes[1]);
	cr_assert_null(router_match(routes, n, "DELETE", "/api/v1/query", allow, sizeof(allow)));
	cr_assert_str_eq(allow, "GET, POST");
	/* the longest prefix wins; an exact route beats prefixes */
	cr_assert_eq(router_match(routes, n, "GET", "/api/v1/label/x/values", allow, sizeof(allow)),
		     &routes[2]);
	cr_assert_eq(router_match(routes, n, "PUT", "/api/v1/label/x/values", allow, sizeof(allow)),
		     &routes[5]);
	cr_assert_eq(router_match(routes, n, "GET", "/api/other", allow, sizeof(allow)),
		     &routes[3]);
	cr_assert_eq(router_match(routes, n, "PATCH", "/any", allow, sizeof(allow)), &routes[4]);
	cr_assert_null(router_match(routes, n, "GET", "/anything", allow, sizeof(allow)));
	cr_assert_str_eq(allow, "");
	cr_assert_null(router_match(routes, n, "GET", "/api", allow, sizeof(allow)));
	cr_assert_str_eq(allow, "");
	cr_assert_null(router_match(routes, 0, "GET", "/", allow, sizeof(allow)));
}

struct test_pool_ctx {
	atomic_int notified;
	atomic_int ran;
	atomic_int gate; /* handlers wait for it */
};

static void test_notify(void *arg)
{
	struct test_pool_ctx *c = arg;

	atomic_fetch_add(&c->notified, 1);
}

static int test_count(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct test_pool_ctx *c = ctx;
	int i, mine;

	(void)req;
	for (i = 0; i < 500 && !atomic_load(&c->gate); i++)
		usleep(10000);
	/* Exactly one handler fails: the second to finish (decided atomically). */
	mine = atomic_fetch_add(&c->ran, 1) + 1;
	resp->body = strdup("x");
	resp->body_len = 1;
	return mine == 2 ? -EIO : 0;
}

static struct router_job *test_job(const struct http_route *route)
{
	struct router_job *job = calloc(1, sizeof(*job));

	cr_assert_not_null(job);
	job->route = route;
	atomic_init(&job->cancelled, false);
	return job;
}

Test(router, pool)
{
	struct test_pool_ctx c = { 0 };
	struct http_route route = { "GET", "/", test_count, &c };
	struct router_pool *p;
	struct router_job *jobs[4], *done = NULL, *j;
	int i, n = 0, errors = 0;

	p = router_pool__new(2, test_notify, &c);
	cr_assert_not_null(p);
	for (i = 0; i < 4; i++) {
		jobs[i] = test_job(&route);
		cr_assert_eq(router_job__add_body(jobs[i], "abc", 3, 4), 0);
		cr_assert_eq(router_job__add_body(jobs[i], "de", 2, 4), -E2BIG);
		cr_assert_str_eq(jobs[i]->req.body, "abc");
	}
	atomic_store(&jobs[3]->cancelled, true);
	for (i = 0; i < 4; i++)
		cr_assert_eq(router_pool__submit(p, jobs[i]), 0);
	atomic_store(&c.gate, 1);
	for (i = 0; i < 500 && atomic_load(&c.notified) < 4; i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&c.notified), 4);
	cr_assert_eq(atomic_load(&c.ran), 3); /* the cancelled one skipped */
	done = router_pool__take_done(p);
	for (j = done; j; j = j->next, n++)
		errors += j->resp.status == 500;
	cr_assert_eq(n, 4);
	cr_assert_eq(errors, 1);
	cr_assert_null(router_pool__take_done(p));
	while (done) {
		j = done->next;
		router_job__free(done);
		done = j;
	}

	/* jobs left queued at shutdown are freed by the pool */
	atomic_store(&c.gate, 0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(router_pool__submit(p, test_job(&route)), 0);
	router_pool__stop(p);
	j = test_job(&route);
	cr_assert_eq(router_pool__submit(p, j), -ESHUTDOWN);
	router_job__free(j);
	router_pool__free(p);
	router_pool__free(NULL);
	cr_assert_null(router_job__free(NULL));
}
