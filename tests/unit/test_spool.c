/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool: the on-disk queue and sender against a scripted HTTP server
 * (http_stub.h): delivery order and headers, the two retry policies status
 * by status, Retry-After, a restart with files of two encodings, the bound
 * that drops the oldest files, and the push errors.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_stub.h"
#include "spool.h"

static struct http_stub *tsp_srv;
static char tsp_dir[64];
static char tsp_url[96];

static const struct spool_encoding tsp_enc[] = {
	{ "ta", "Content-Encoding: x-a" },
	{ "tb", NULL },
};
static const struct spool_encoding tsp_enc_swapped[] = {
	{ "tb", NULL },
	{ "ta", "Content-Encoding: x-a" },
};

static void tsp_init(void)
{
	tsp_srv = http_stub__start();
	cr_assert(tsp_srv);
	snprintf(tsp_url, sizeof(tsp_url), "http://127.0.0.1:%d/in", http_stub__port(tsp_srv));
	snprintf(tsp_dir, sizeof(tsp_dir), "/tmp/novamon-spool.XXXXXX");
	cr_assert(mkdtemp(tsp_dir));
}

static void tsp_fini(void)
{
	char cmd[128];

	http_stub__stop(tsp_srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tsp_dir);
	(void)!system(cmd);
}

TestSuite(spool, .init = tsp_init, .fini = tsp_fini, .timeout = 30);

static struct spool *tsp_start(const char *url, spool_retry_fn retry, uint64_t max_bytes,
			       const struct spool_encoding *enc, int64_t backoff_min_ms)
{
	static const char *const hdrs[] = { "X-Api-Key: k3y", "Content-Type: text/x-test" };
	struct spool *sp = spool__start(&(struct spool_opts){
		.url = url,
		.dir = tsp_dir,
		.encodings = enc,
		.nencodings = 2,
		.headers = hdrs,
		.nheaders = 2,
		.max_bytes = max_bytes,
		.timeout_ms = 5000,
		.backoff_min_ms = backoff_min_ms,
		.backoff_max_ms = 3000,
		.retryable = retry,
	});

	cr_assert(sp, "%s", strerror(errno));
	return sp;
}

/* Wait until pred holds on the stats (10 s at most). */
#define TSP_WAIT(sp, st, pred)                                   \
	do {                                                     \
		int _i;                                          \
		for (_i = 0; _i < 1000; _i++) {                  \
			spool__stats(sp, &st);                   \
			if (pred)                                \
				break;                           \
			usleep(10000);                           \
		}                                                \
		cr_assert(pred, "timed out waiting for " #pred); \
	} while (0)

static void tsp_push(struct spool *sp, const char *body, uint64_t items)
{
	cr_assert_eq(spool__push(sp, body, strlen(body), items), 0);
}

static void tsp_expect_body(size_t i, const char *body)
{
	const struct http_stub_request *r = http_stub__get(tsp_srv, i);

	cr_assert(r, "no request %zu", i);
	cr_expect_eq(r->len, strlen(body));
	cr_expect(!memcmp(r->body, body, r->len), "request %zu: %.*s, expected %s", i, (int)r->len,
		  (const char *)r->body, body);
}

Test(spool, delivers_oldest_first_with_headers)
{
	struct spool_stats st;
	struct spool *sp = tsp_start(tsp_url, spool_retry_otlp, 1 << 20, tsp_enc, 10);
	char val[64], body[16];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(body, sizeof(body), "body-%d", i);
		tsp_push(sp, body, (uint64_t)i + 1);
	}
	TSP_WAIT(sp, st, st.sent_files == 5 && st.queued_files == 0);
	cr_expect_eq(st.sent_items, 15);
	cr_expect_eq(st.queued_bytes, 0);
	cr_expect_eq(st.last_status, 200);
	for (i = 0; i < 5; i++) {
		const struct http_stub_request *r = http_stub__get(tsp_srv, (size_t)i);

		snprintf(body, sizeof(body), "body-%d", i);
		tsp_expect_body((size_t)i, body);
		cr_expect_str_eq(r->path, "/in");
		cr_expect(http_stub__header(r, "X-Api-Key", val, sizeof(val)));
		cr_expect_str_eq(val, "k3y");
		cr_expect(http_stub__header(r, "Content-Type", val, sizeof(val)));
		cr_expect_str_eq(val, "text/x-test");
		cr_expect(http_stub__header(r, "Content-Encoding", val, sizeof(val)));
		cr_expect_str_eq(val, "x-a");
		cr_expect(!http_stub__header(r, "Expect", val, sizeof(val)));
	}
	spool__stop(sp);
}

/* Run one request against a scripted status, then 200; say whether it was retried. */
static void tsp_policy_case(spool_retry_fn retry, int status, bool retried)
{
	struct spool_stats st;
	struct spool *sp;

	http_stub__reset(tsp_srv);
	http_stub__script(tsp_srv, status, 0, NULL, 0);
	sp = tsp_start(tsp_url, retry, 1 << 20, tsp_enc, 5);
	tsp_push(sp, "x", 7);
	if (retried) {
		TSP_WAIT(sp, st, st.sent_files == 1);
		cr_expect_eq(st.retries, 1, "status %d: %llu retries", status,
			     (unsigned long long)st.retries);
		cr_expect_eq(http_stub__count(tsp_srv), 2, "status %d", status);
		cr_expect_eq(st.dropped_items[SPOOL_DROP_REFUSED], 0, "status %d", status);
	} else {
		TSP_WAIT(sp, st, st.dropped_files[SPOOL_DROP_REFUSED] == 1);
		cr_expect_eq(st.dropped_items[SPOOL_DROP_REFUSED], 7, "status %d", status);
		cr_expect_eq(st.retries, 0, "status %d", status);
		cr_expect_eq(st.sent_files, 0, "status %d", status);
		cr_expect_eq(http_stub__count(tsp_srv), 1, "status %d", status);
	}
	cr_expect_eq(st.queued_files, 0, "status %d", status);
	cr_expect_eq(st.failed_requests, 1, "status %d", status);
	spool__stop(sp);
}

Test(spool, otlp_policy_table)
{
	static const int retry[] = { 429, 502, 503, 504 };
	static const int drop[] = { 400, 401, 403, 404, 413, 500, 501 };
	size_t i;

	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
		cr_expect(spool_retry_otlp(retry[i]));
		tsp_policy_case(spool_retry_otlp, retry[i], true);
	}
	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		cr_expect(!spool_retry_otlp(drop[i]));
		tsp_policy_case(spool_retry_otlp, drop[i], false);
	}
}

Test(spool, remote_write_policy_table)
{
	static const int retry[] = { 429, 500, 501, 503 };
	static const int drop[] = { 400, 401, 404 };
	size_t i;

	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		tsp_policy_case(spool_retry_remote_write, retry[i], true);
	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		tsp_policy_case(spool_retry_remote_write, drop[i], false);
}

Test(spool, honours_retry_after)
{
	const struct http_stub_request *a, *b;
	struct spool_stats st;
	struct spool *sp;

	/* Retry-After: 1 against a 5 ms backoff: the retry waits a second */
	http_stub__script(tsp_srv, 503, 1, NULL, 0);
	/* no Retry-After: the backoff (5 ms, doubling, jittered) */
	http_stub__script(tsp_srv, 503, -1, NULL, 0);
	sp = tsp_start(tsp_url, spool_retry_otlp, 1 << 20, tsp_enc, 5);
	tsp_push(sp, "y", 1);
	TSP_WAIT(sp, st, st.sent_files == 1);
	cr_expect_eq(st.retries, 2);
	a = http_stub__get(tsp_srv, 0);
	b = http_stub__get(tsp_srv, 1);
	cr_assert(a && b);
	cr_expect_geq(b->at_ms - a->at_ms, 950, "retried after %lld ms",
		      (long long)(b->at_ms - a->at_ms));
	a = http_stub__get(tsp_srv, 2);
	cr_assert(a);
	cr_expect_lt(a->at_ms - b->at_ms, 500, "retried after %lld ms",
		     (long long)(a->at_ms - b->at_ms));
	spool__stop(sp);
}

Test(spool, survives_a_restart_with_both_encodings)
{
	struct spool_stats st;
	struct spool *sp;
	char val[64];

	/* backend down: the files stay */
	http_stub__set_default(tsp_srv, 503, -1);
	sp = tsp_start(tsp_url, spool_retry_otlp, 1 << 20, tsp_enc, 2000);
	tsp_push(sp, "first", 1);
	tsp_push(sp, "second", 2);
	spool__stop(sp);

	/* restarted with the other encoding first: old files keep theirs */
	http_stub__reset(tsp_srv);
	http_stub__set_default(tsp_srv, 503, -1);
	sp = tsp_start(tsp_url, spool_retry_otlp, 1 << 20, tsp_enc_swapped, 2000);
	spool__stats(sp, &st);
	cr_expect_eq(st.queued_files, 2);
	cr_expect_eq(st.queued_items, 3);
	tsp_push(sp, "third", 4);
	spool__stop(sp);

	http_stub__reset(tsp_srv);
	http_stub__set_default(tsp_srv, 200, -1);
	sp = tsp_start(tsp_url, spool_retry_otlp, 1 << 20, tsp_enc, 10);
	TSP_WAIT(sp, st, st.sent_files == 3);
	cr_expect_eq(st.sent_items, 7);
	tsp_expect_body(0, "first");
	tsp_expect_body(1, "second");
	tsp_expect_body(2, "third");
	cr_expect(http_stub__header(http_stub__get(tsp_srv, 0), "Content-Encoding", val,
				    sizeof(val)));
	cr_expect(!http_stub__header(http_stub__get(tsp_srv, 2), "Content-Encoding", val,
				     sizeof(val)));
	spool__stop(sp);
}

Test(spool, bound_drops_the_oldest)
{
	static const char *const bodies[] = {
		"0123456789-0", "0123456789-1", "0123456789-2", "0123456789-3", "0123456789-4",
		"0123456789-5", "0123456789-6", "0123456789-7", "0123456789-8", "0123456789-9",
	};
	struct spool_stats st;
	struct spool *sp;
	char big[41];
	size_t i;

	/* nobody listens on port 1: every attempt is a transport error, backoff 1-2 s */
	sp = tsp_start("http://127.0.0.1:1/in", spool_retry_otlp, 40, tsp_enc, 2000);
	tsp_push(sp, bodies[0], 1);
	TSP_WAIT(sp, st, st.failed_requests == 1); /* the sender now sleeps: nothing in flight */
	for (i = 1; i < 10; i++)
		tsp_push(sp, bodies[i], 1);
	spool__stats(sp, &st);
	cr_expect_eq(st.queued_files, 3); /* 3 x 12 bytes <= 40 */
	cr_expect_leq(st.queued_bytes, 40);
	cr_expect_eq(st.dropped_items[SPOOL_DROP_OVERFLOW], 7);
	cr_expect_eq(st.dropped_files[SPOOL_DROP_OVERFLOW], 7);
	memset(big, 'x', sizeof(big));
	cr_expect_eq(spool__push(sp, big, sizeof(big), 5), -E2BIG); /* larger than the bound */
	spool__stats(sp, &st);
	cr_expect_eq(st.dropped_items[SPOOL_DROP_OVERFLOW], 12);
	cr_expect_eq(spool__push(sp, "", 0, 1), -EINVAL);
	spool__stop(sp);

	/* what is left is the newest, delivered oldest first */
	sp = tsp_start(tsp_url, spool_retry_otlp, 40, tsp_enc, 10);
	TSP_WAIT(sp, st, st.sent_files == 3);
	tsp_expect_body(0, bodies[7]);
	tsp_expect_body(1, bodies[8]);
	tsp_expect_body(2, bodies[9]);
	spool__stop(sp);
}

Test(spool, refuses_bad_options)
{
	static const struct spool_encoding bad[] = { { "../x", NULL } };
	struct spool_opts o = {
		.url = tsp_url,
		.dir = tsp_dir,
		.encodings = tsp_enc,
		.nencodings = 2,
		.max_bytes = 100,
	};
	struct spool *sp = spool__start(&o);

	cr_expect_not_null(sp);
	spool__stop(sp);
	o.max_bytes = 0;
	cr_expect_null(spool__start(&o));
	cr_expect_eq(errno, EINVAL);
	o.max_bytes = 100;
	o.encodings = bad;
	o.nencodings = 1;
	cr_expect_null(spool__start(&o));
	o.encodings = tsp_enc;
	o.nencodings = 0;
	cr_expect_null(spool__start(&o));
	o.nencodings = 2;
	o.url = NULL;
	cr_expect_null(spool__start(&o));
	spool__stop(NULL);
}
