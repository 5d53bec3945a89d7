/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/audit.c: appending and verifying the hash chain, the
 * record format pinned by an independent SHA-256, tamper detection (a
 * changed byte, a deleted line, swapped lines, a torn last line), a broken
 * log moved aside and continued in a new segment, concurrent appends, the
 * HTTP hook, and GET /api/audit.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"

static char tu_dir[64];
static char tu_path[128];

static void tu_setup(void)
{
	snprintf(tu_dir, sizeof(tu_dir), "/tmp/novamon-test-audit-XXXXXX");
	cr_assert_not_null(mkdtemp(tu_dir));
	snprintf(tu_path, sizeof(tu_path), "%s/%s", tu_dir, AUDIT_FILE);
}

static void tu_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tu_dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(audit, .init = tu_setup, .fini = tu_teardown);

static struct audit *tu_open(struct audit_open_report *rep)
{
	char err[600];
	struct audit *a = audit__open(tu_dir, rep, err, sizeof(err));

	cr_assert_not_null(a, "%s", err);
	return a;
}

/* Append n records "POST /api/thing/<i>" by alice. */
static void tu_append(struct audit *a, int from, int n)
{
	char action[64];
	int i;

	for (i = from; i < from + n; i++) {
		struct audit_entry e = {
			.subject = "alice",
			.role = "admin",
			.tenant = "",
			.remote_addr = "10.0.0.5",
			.action = action,
			.target = "/api/thing",
			.result = 200,
			.time_ms = 1800000000000LL + i,
		};

		snprintf(action, sizeof(action), "POST /api/thing/%d", i);
		cr_assert_eq(audit__append(a, &e), 0);
	}
}

/* The file's lines (malloc'd, NULL-terminated; *n of them). */
static char **tu_lines(size_t *n)
{
	char **v = calloc(1024, sizeof(*v));
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(tu_path, "r");

	cr_assert(v && f);
	*n = 0;
	while (getline(&line, &cap, f) > 0 && *n < 1023)
		v[(*n)++] = strdup(line);
	free(line);
	fclose(f);
	return v;
}

static void tu_write_lines(char **v, size_t n)
{
	FILE *f = fopen(tu_path, "w");
	size_t i;

	cr_assert_not_null(f);
	for (i = 0; i < n; i++)
		fputs(v[i], f);
	fclose(f);
}

static void tu_free_lines(char **v)
{
	size_t i;

	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static int tu_verify(uint64_t *bad)
{
	return audit__verify(tu_path, bad, NULL, NULL);
}

Test(audit, append_and_verify)
{
	struct audit_open_report rep;
	struct audit *a = tu_open(&rep);
	char hash[65], head[65];
	uint64_t bad = 99, last = 0, seq;
	struct stat st;

	cr_expect_eq(rep.last_seq, 0);
	cr_expect(!rep.broken);
	cr_expect_eq(tu_verify(&bad), 0, "an empty log verifies");
	tu_append(a, 1, 5);
	cr_expect_eq(audit__verify(tu_path, &bad, &last, hash), 0);
	cr_expect_eq(bad, 0);
	cr_expect_eq(last, 5);
	audit__head(a, &seq, head);
	cr_expect_eq(seq, 5);
	cr_expect_str_eq(head, hash);
	cr_assert_eq(stat(tu_path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	audit__close(a);

	/* reopened, the chain carries on */
	a = tu_open(&rep);
	cr_expect_eq(rep.last_seq, 5);
	tu_append(a, 6, 2);
	cr_expect_eq(audit__verify(tu_path, &bad, &last, NULL), 0);
	cr_expect_eq(last, 7);
	audit__close(a);
	cr_expect_eq(audit__verify("/nonexistent/audit.log", &bad, &last, NULL), 0);
}

/* hash = SHA-256(prev_hash hex || the line without its hash member, closed by "}") */
Test(audit, record_format)
{
	static const char zeros[] =
		"0000000000000000000000000000000000000000000000000000000000000000";
	struct audit *a = tu_open(NULL);
	unsigned char md[32];
	unsigned int mdlen;
	char want[65], *body, *cut;
	size_t n, i;
	char **v;
	EVP_MD_CTX *ctx;

	tu_append(a, 1, 1);
	audit__close(a);
	v = tu_lines(&n);
	cr_assert_eq(n, 1);
	cr_expect_eq(
		strncmp(v[0],
			"{\"seq\":1,\"time\":\"2027-01-15T08:00:00.001Z\",\"actor\":{\"subject\":"
			"\"alice\",\"role\":\"admin\",\"tenant\":\"\"},\"remote_addr\":"
			"\"10.0.0.5\",\"action\":\"POST /api/thing/1\",\"target\":\"/api/thing\","
			"\"result\":200,\"prev_hash\":\"0000000000000000000000000000000000000000"
			"000000000000000000000000\",\"hash\":\"",
			274),
		0, "%s", v[0]);
	cr_expect_eq(strlen(v[0]), 274 + 64 + 3, "%s", v[0]);
	body = strdup(v[0]);
	cut = strstr(body, ",\"hash\":\"");
	cr_assert_not_null(cut);
	strcpy(cut, "}");
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, zeros, 64);
	EVP_DigestUpdate(ctx, body, strlen(body));
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	cr_expect(strstr(v[0], want), "hash %s not in %s", want, v[0]);
	free(body);
	tu_free_lines(v);
}

Test(audit, strings_are_escaped)
{
	struct audit *a = tu_open(NULL);
	struct audit_entry e = {
		.subject = "eve\"},\"role\":\"admin",
		.role = "viewer",
		.tenant = "t\n1\\",
		.remote_addr = "::1",
		.action = "DELETE /api/d\xc3\xa9j\xe0",
		.target = NULL,
		.result = 204,
	};
	uint64_t bad;
	size_t n;
	char **v;

	cr_assert_eq(audit__append(a, &e), 0);
	audit__close(a);
	cr_expect_eq(tu_verify(&bad), 0);
	v = tu_lines(&n);
	cr_assert_eq(n, 1);
	cr_expect(strstr(v[0], "\"subject\":\"eve\\\"},\\\"role\\\":\\\"admin\""), "%s", v[0]);
	cr_expect(strstr(v[0], "\"tenant\":\"t\\u000a1\\\\\""), "%s", v[0]);
	cr_expect(strstr(v[0], "d\\u00c3\\u00a9j\\u00e0"), "%s", v[0]);
	cr_expect(strstr(v[0], "\"target\":\"\""), "%s", v[0]);
	tu_free_lines(v);
}

Test(audit, tamper_changed_byte)
{
	struct audit *a = tu_open(NULL);
	uint64_t bad = 0;
	size_t n;
	char **v, *p;

	tu_append(a, 1, 4);
	audit__close(a);
	v = tu_lines(&n);
	p = strstr(v[2], "\"result\":200");
	cr_assert_not_null(p);
	p[11] = '1'; /* 200 -> 201 */
	tu_write_lines(v, n);
	cr_expect_eq(tu_verify(&bad), -EBADMSG);
	cr_expect_eq(bad, 3);
	/* also a changed hash */
	p[11] = '0';
	p = strstr(v[1], "\"hash\":\"") + 8;
	*p = *p == 'a' ? 'b' : 'a';
	tu_write_lines(v, n);
	cr_expect_eq(tu_verify(&bad), -EBADMSG);
	cr_expect_eq(bad, 2);
	tu_free_lines(v);
}

Test(audit, tamper_deleted_line)
{
	struct audit *a = tu_open(NULL);
	uint64_t bad = 0;
	size_t n;
	char **v;

	tu_append(a, 1, 4);
	audit__close(a);
	v = tu_lines(&n);
	free(v[1]);
	memmove(&v[1], &v[2], (n - 1) * sizeof(*v)); /* moves the NULL too */
	tu_write_lines(v, n - 1);
	cr_expect_eq(tu_verify(&bad), -EBADMSG);
	cr_expect_eq(bad, 2);
	/* deleting the first line: the chain no longer starts at 1 */
	tu_write_lines(v + 1, n - 2);
	cr_expect_eq(tu_verify(&bad), -EBADMSG);
	cr_expect_eq(bad, 1);
	tu_free_lines(v);
}

Test(audit, tamper_swapped_lines)
{
	struct audit *a = tu_open(NULL);
	uint64_t bad = 0;
	size_t n;
	char **v, *t;

	tu_append(a, 1, 4);
	audit__close(a);
	v = tu_lines(&n);
	t = v[1];
	v[1] = v[2];
	v[2] = t;
	tu_write_lines(v, n);
	cr_expect_eq(tu_verify(&bad), -EBADMSG);
	cr_expect_eq(bad, 2);
	tu_free_lines(v);
}

Test(audit, torn_last_line)
{
	struct audit *a = tu_open(NULL);
	uint64_t bad = 0;
	struct stat st;

	tu_append(a, 1, 3);
	audit__close(a);
	cr_assert_eq(stat(tu_path, &st), 0);
	cr_assert_eq(truncate(tu_path, st.st_size - 10), 0);
	cr_expect_eq(tu_verify(&bad), -EBADMSG);
	cr_expect_eq(bad, 3);
}

/* A log that does not verify is kept aside and a new segment carries on from its good part. */
Test(audit, broken_log_starts_a_segment)
{
	struct audit_open_report rep;
	struct audit *a = tu_open(NULL);
	char good_hash[65], moved[600];
	uint64_t bad = 0, last = 0;
	size_t n;
	char **v, *p;
	FILE *f;

	tu_append(a, 1, 4);
	audit__close(a);
	v = tu_lines(&n);
	/* the hash of record 2, the last good one once record 3 is edited */
	p = strstr(v[1], "\"hash\":\"") + 8;
	memcpy(good_hash, p, 64);
	good_hash[64] = '\0';
	p = strstr(v[2], "alice");
	p[0] = 'm';
	tu_write_lines(v, n);
	tu_free_lines(v);

	a = tu_open(&rep);
	cr_expect(rep.broken);
	cr_expect_eq(rep.bad_seq, 3);
	snprintf(moved, sizeof(moved), "%s", rep.moved_to);
	cr_expect(strstr(moved, "/audit-broken-"), "%s", moved);
	cr_expect_eq(access(moved, F_OK), 0, "the evidence is kept");
	f = fopen(moved, "r");
	cr_assert_not_null(f);
	fclose(f);
	tu_append(a, 5, 1);
	audit__close(a);

	cr_expect_eq(audit__verify(tu_path, &bad, &last, NULL), 0);
	cr_expect_eq(last, 4);
	v = tu_lines(&n);
	cr_assert_eq(n, 2);
	cr_expect(strstr(v[0], "\"seq\":3,"), "%s", v[0]);
	cr_expect(strstr(v[0], "\"action\":\"audit.segment\""), "%s", v[0]);
	cr_expect(strstr(v[0], "broke at seq 3"), "%s", v[0]);
	cr_expect(strstr(v[0], good_hash), "carries on from record 2: %s", v[0]);
	tu_free_lines(v);
	/* the broken file still fails */
	cr_expect_eq(audit__verify(moved, &bad, NULL, NULL), -EBADMSG);
}

struct tu_thread {
	struct audit *a;
	int base;
};

static void *tu_appender(void *arg)
{
	struct tu_thread *t = arg;

	tu_append(t->a, t->base, 50);
	return NULL;
}

Test(audit, concurrent_appends)
{
	struct audit *a = tu_open(NULL);
	struct tu_thread t[4];
	pthread_t th[4];
	uint64_t bad, last;
	int i;

	for (i = 0; i < 4; i++) {
		t[i] = (struct tu_thread){ a, i * 100 };
		cr_assert_eq(pthread_create(&th[i], NULL, tu_appender, &t[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	audit__close(a);
	cr_expect_eq(audit__verify(tu_path, &bad, &last, NULL), 0);
	cr_expect_eq(last, 200);
}

/* GET /api/audit through its route; returns the status and the body. */
static int tu_get(struct audit *a, const char *query, char **body)
{
	struct http_route r[AUDIT_NROUTES];
	struct http_request req = {
		.method = "GET",
		.path = "/api/audit",
		.query = query,
		.body = "",
		.content_type = "",
		.content_encoding = "",
		.authorization = "",
		.remote_addr = "",
	};
	struct http_response resp = { 0 };

	cr_assert_eq(audit__routes(a, r, AUDIT_NROUTES), AUDIT_NROUTES);
	cr_assert_eq(r[0].min_role, AUTH_ROLE_ADMIN, "admins only");
	cr_assert_str_eq(r[0].path, "/api/audit");
	cr_assert_eq(r[0].fn(&req, &resp, r[0].ctx), 0);
	*body = resp.body;
	return resp.status ? resp.status : 200;
}

Test(audit, http_hook_and_get)
{
	struct audit *a = tu_open(NULL);
	struct auth_principal p = { "bob", AUTH_ROLE_OPERATOR, "acme" };
	struct http_request req = {
		.method = "PUT",
		.path = "/api/dashboards/7",
		.query = "access_token=secret",
		.remote_addr = "192.0.2.1",
		.principal = &p,
	};
	char *body = NULL;

	audit__http_hook(a, &req, 204);
	req.principal = NULL;
	req.method = "DELETE";
	audit__http_hook(a, &req, 403);
	tu_append(a, 3, 3);

	cr_assert_eq(tu_get(a, "", &body), 200);
	cr_expect(strstr(body, "\"verified\":true"), "%s", body);
	cr_expect(strstr(body, "\"head\":{\"seq\":5,"), "%s", body);
	cr_expect(strstr(body, "\"action\":\"PUT /api/dashboards/7\""), "%s", body);
	cr_expect(strstr(body, "\"subject\":\"bob\",\"role\":\"operator\",\"tenant\":\"acme\""),
		  "%s", body);
	cr_expect(strstr(body, "\"remote_addr\":\"192.0.2.1\""), "%s", body);
	cr_expect(strstr(body, "\"result\":403"), "%s", body);
	cr_expect_null(strstr(body, "secret"), "the query string is never recorded");
	free(body);

	cr_assert_eq(tu_get(a, "limit=2", &body), 200);
	cr_expect(strstr(body, "\"truncated\":true"), "%s", body);
	cr_expect_null(strstr(body, "\"seq\":3,"), "%s", body);
	free(body);
	cr_assert_eq(tu_get(a, "after_seq=4", &body), 200);
	cr_expect(strstr(body, "\"seq\":5,") && !strstr(body, "\"seq\":4,"), "%s", body);
	free(body);
	cr_assert_eq(tu_get(a, "since=2027-01-15T08:00:00.004Z", &body), 200);
	cr_expect(strstr(body, "\"seq\":4,") && !strstr(body, "\"seq\":3,"), "%s", body);
	free(body);
	cr_assert_eq(tu_get(a, "limit=0", &body), 400);
	free(body);
	cr_assert_eq(tu_get(a, "since=yesterday", &body), 400);
	free(body);

	/* an edited log says so */
	{
		size_t n;
		char **v = tu_lines(&n);

		strstr(v[3], "alice")[0] = 'A';
		tu_write_lines(v, n);
		tu_free_lines(v);
	}
	cr_assert_eq(tu_get(a, "", &body), 200);
	cr_expect(strstr(body, "\"verified\":false,\"broken_at\":4"), "%s", body);
	free(body);
	audit__close(a);
}
