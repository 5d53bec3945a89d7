/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/http.c: a real server on loopback and a plain-socket
 * HTTP/1.1 client, checking status lines, headers, bodies, keep-alive,
 * chunked writing of a large body, and a port conflict; then routed requests:
 * POST bodies, 413, 405 with Allow, query parameters, handlers on their own
 * threads, and a client that leaves while its handler still runs.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "exposition.h"
#include "http.h"
#include "metrics.h"

static const double test_http_bounds[] = { 0.0001, 0.001, 0.01, 0.1, 1 };

struct test_http_resp {
	int status;
	char head[4096]; /* status line and headers, NUL-terminated */
	char *body;
	size_t body_len;
};

static struct metric_store *test_store;
static struct http_server *test_srv;
static int test_port;
static char test_listen[64];

/* Ports vary with the pid so that parallel runs rarely collide. */
static void test_http_setup(void)
{
	struct http_server_opts opts = { 0 };
	int i;

	test_store = metric_store__new();
	cr_assert_not_null(test_store);
	for (i = 0; i < 20; i++) {
		test_port = 19477 + (getpid() + i * 7) % 1000;
		snprintf(test_listen, sizeof(test_listen), "127.0.0.1:%d", test_port);
		opts.listen = test_listen;
		opts.store = test_store;
		test_srv = http_server__start(&opts);
		if (test_srv || errno != EADDRINUSE)
			break;
	}
	cr_assert_not_null(test_srv, "http_server__start(%s): %s", test_listen, strerror(errno));
}

static void test_http_teardown(void)
{
	http_server__stop(test_srv);
	test_srv = NULL;
	metric_store__free(test_store);
	test_store = NULL;
}

TestSuite(http, .init = test_http_setup, .fini = test_http_teardown, .timeout = 60);

static int test_http_connect(int family, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval tv = { .tv_sec = 10 };
	socklen_t len;
	int fd;

	fd = socket(family, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Case-insensitive header lookup in r->head; copies the value into val. */
static int test_http_header(const struct test_http_resp *r, const char *name, char *val,
			    size_t vlen)
{
	const char *line = strstr(r->head, "\r\n");
	size_t nlen = strlen(name);

	while (line && line[2]) {
		const char *next;

		line += 2;
		next = strstr(line, "\r\n");
		if (!next)
			break;
		if (!strncasecmp(line, name, nlen) && line[nlen] == ':') {
			const char *v = line + nlen + 1;

			while (*v == ' ')
				v++;
			snprintf(val, vlen, "%.*s", (int)(next - v), v);
			return 1;
		}
		line = next;
	}
	return 0;
}

/*
 * Send one request on fd and read one response framed by Content-Length.
 * Returns 0, or -1 if the peer closed or timed out first.
 */
static int test_http_read(int fd, struct test_http_resp *r)
{
	char val[64];
	size_t hlen = 0, got = 0, want;
	ssize_t n;
	char *end = NULL;

	memset(r, 0, sizeof(*r));
	/* read byte-wise up to the blank line so no body bytes are consumed */
	while (!end) {
		if (hlen + 1 >= sizeof(r->head))
			return -1;
		n = recv(fd, r->head + hlen, 1, 0);
		if (n <= 0)
			return -1;
		hlen++;
		r->head[hlen] = '\0';
		end = strstr(r->head, "\r\n\r\n");
	}
	if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
		return -1;
	if (!test_http_header(r, "content-length", val, sizeof(val)))
		return -1;
	want = strtoull(val, NULL, 10);
	r->body = malloc(want + 1);
	if (!r->body)
		return -1;
	while (got < want) {
		n = recv(fd, r->body + got, want - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return 0;
}

/*
 * Send one request on fd and read one response framed by Content-Length.
 * Returns 0, or -1 if the peer closed or timed out first.
 */
static int test_http_request(int fd, const char *method, const char *path, struct test_http_resp *r)
{
	char req[1024];

	memset(r, 0, sizeof(*r));
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n",
		 method, path);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return -1;
	return test_http_read(fd, r);
}

static void test_http_resp_free(struct test_http_resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* One request on a fresh connection. */
static void test_http_get(const char *method, const char *path, struct test_http_resp *r)
{
	int fd = test_http_connect(AF_INET, test_port);

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(test_http_request(fd, method, path, r), 0, "%s %s failed", method, path);
	close(fd);
}

/* A set that follows Prometheus naming rules, so promtool's linter passes. */
static struct metric_set *test_http_build_set(int nvms)
{
	struct metric_set *set = metric_set__new(1700000000000);
	const uint64_t buckets[6] = { 5, 4, 3, 2, 1, 0 };
	struct metric_family *fam;
	struct metric_labels l;
	int vm, vcpu;

	fam = metric_set__family(set, "novamon_vm_exits_total", "VM exits by reason.",
				 METRIC_COUNTER, NULL, 0);
	for (vm = 0; vm < nvms; vm++) {
		for (vcpu = 0; vcpu < 4; vcpu++) {
			metric_labels__init(&l);
			metric_labels__addf(&l, "vm", "vm-%d \"x\"", vm);
			metric_labels__addf(&l, "vcpu", "%d", vcpu);
			metric_labels__add(&l, "reason", "io");
			cr_assert_eq(metric_family__add_value(fam, &l, vm * 1000.0 + vcpu), 0);
		}
	}
	fam = metric_set__family(set, "novamon_vms", "Running VMs.", METRIC_GAUGE, NULL, 0);
	metric_family__add_value(fam, NULL, nvms);
	fam = metric_set__family(set, "novamon_exit_latency_seconds", "VM exit handling latency.",
				 METRIC_HISTOGRAM, test_http_bounds, 5);
	for (vm = 0; vm < nvms; vm++) {
		metric_labels__init(&l);
		metric_labels__addf(&l, "vm", "vm-%d \"x\"", vm);
		cr_assert_eq(metric_family__add_histogram(fam, &l, buckets, 0.0123), 0);
	}
	return set;
}

static void test_http_publish(int nvms)
{
	metric_store__publish(test_store, test_http_build_set(nvms),
			      strdup("{\"status\":\"ok\",\"vms\":2}"));
}

Test(http, health_before_publish)
{
	struct test_http_resp r;
	char val[128];

	test_http_get("GET", "/health", &r);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert(test_http_header(&r, "content-type", val, sizeof(val)));
	cr_assert_str_eq(val, "application/json");
	cr_assert_str_eq(r.body, "{\"status\":\"starting\"}\n");
	test_http_resp_free(&r);

	test_http_get("GET", "/metrics", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 0);
	test_http_resp_free(&r);
}

Test(http, health_and_metrics)
{
	struct test_http_resp r;
	struct metric_set *set;
	char val[128], *want = NULL;
	size_t want_len = 0;

	test_http_publish(2);

	test_http_get("GET", "/health", &r);
	cr_assert_eq(r.status, 200);
	cr_assert(test_http_header(&r, "content-type", val, sizeof(val)));
	cr_assert_str_eq(val, "application/json");
	cr_assert_str_eq(r.body, "{\"status\":\"ok\",\"vms\":2}");
	test_http_resp_free(&r);

	test_http_get("GET", "/metrics?x=1", &r);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert(test_http_header(&r, "content-type", val, sizeof(val)));
	cr_assert_str_eq(val, EXPOSITION_CONTENT_TYPE);
	set = metric_store__get(test_store, NULL);
	cr_assert_eq(exposition_render(set, &want, &want_len), 0);
	metric_store__put(test_store, set);
	cr_assert_eq(r.body_len, want_len);
	cr_assert_str_eq(r.body, want);
	cr_assert_not_null(strstr(r.body, "novamon_vm_exits_total{vm=\"vm-1 \\\"x\\\"\",vcpu=\"3\","
					  "reason=\"io\"} 1003\n"));
	free(want);
	test_http_resp_free(&r);
}

Test(http, not_found_and_method_not_allowed)
{
	struct test_http_resp r;
	char val[128];

	test_http_get("GET", "/nope", &r);
	cr_assert_eq(r.status, 404);
	cr_assert(test_http_header(&r, "content-type", val, sizeof(val)));
	cr_assert_str_eq(val, "application/json");
	cr_assert_str_eq(r.body, "{\"error\":\"not found\"}\n");
	test_http_resp_free(&r);

	test_http_get("GET", "/", &r);
	cr_assert_eq(r.status, 404);
	test_http_resp_free(&r);

	test_http_get("POST", "/metrics", &r);
	cr_assert_eq(r.status, 405, "%s", r.head);
	cr_assert(test_http_header(&r, "allow", val, sizeof(val)));
	cr_assert_str_eq(val, "GET, HEAD");
	cr_assert_str_eq(r.body, "{\"error\":\"method not allowed\"}\n");
	test_http_resp_free(&r);

	test_http_get("DELETE", "/health", &r);
	cr_assert_eq(r.status, 405);
	test_http_resp_free(&r);

	test_http_get("PUT", "/elsewhere", &r);
	cr_assert_eq(r.status, 404);
	test_http_resp_free(&r);
}

Test(http, keep_alive)
{
	struct test_http_resp r;
	int fd, i;

	test_http_publish(3);
	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	for (i = 0; i < 5; i++) {
		cr_assert_eq(test_http_request(fd, "GET", i % 2 ? "/health" : "/metrics", &r), 0,
			     "request %d on one connection failed", i);
		cr_assert_eq(r.status, 200);
		test_http_resp_free(&r);
	}
	cr_assert_eq(test_http_request(fd, "GET", "/missing", &r), 0);
	cr_assert_eq(r.status, 404);
	test_http_resp_free(&r);
	cr_assert_eq(test_http_request(fd, "GET", "/health", &r), 0);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	close(fd);
}

/* A body of several MB goes out in chunks and arrives intact. */
Test(http, large_body)
{
	struct test_http_resp r;
	struct metric_set *set;
	char *want = NULL;
	size_t want_len = 0;
	int fd;

	test_http_publish(20000);
	set = metric_store__get(test_store, NULL);
	cr_assert_eq(exposition_render(set, &want, &want_len), 0);
	metric_store__put(test_store, set);
	cr_assert_gt(want_len, 4u << 20);

	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_request(fd, "GET", "/metrics", &r), 0);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, want_len);
	cr_assert(!memcmp(r.body, want, want_len));
	test_http_resp_free(&r);
	/* and the connection is still usable */
	cr_assert_eq(test_http_request(fd, "GET", "/health", &r), 0);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	close(fd);
	free(want);
}

Test(http, port_in_use)
{
	struct http_server_opts opts = { .listen = test_listen, .store = test_store };
	struct test_http_resp r;
	struct http_server *srv;

	errno = 0;
	srv = http_server__start(&opts);
	cr_assert_null(srv);
	cr_assert_eq(errno, EADDRINUSE, "errno %d (%s)", errno, strerror(errno));

	/* the first server is unaffected */
	test_http_get("GET", "/health", &r);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
}

Test(http, bad_listen_and_store)
{
	struct http_server_opts opts = { .listen = "nonsense", .store = test_store };

	errno = 0;
	cr_assert_null(http_server__start(&opts));
	cr_assert_eq(errno, EINVAL);
	opts.listen = "127.0.0.1:0";
	cr_assert_null(http_server__start(&opts));
	cr_assert_eq(errno, EINVAL);
	opts.listen = test_listen;
	opts.store = NULL;
	cr_assert_null(http_server__start(&opts));
	cr_assert_eq(errno, EINVAL);
	/* an address that is not ours: bind fails, no silent retrying vhost */
	opts.listen = "192.0.2.1:19999";
	opts.store = test_store;
	cr_assert_null(http_server__start(&opts));
	cr_assert_eq(errno, EADDRNOTAVAIL, "errno %d (%s)", errno, strerror(errno));
	http_server__stop(NULL);
}

Test(http, ipv6_and_wildcard)
{
	struct http_server_opts opts = { .store = test_store };
	struct http_server *srv;
	struct test_http_resp r;
	char listen[64];
	int fd, port = test_port + 1000;

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		cr_skip_test("no IPv6");
	close(fd);

	snprintf(listen, sizeof(listen), "[::1]:%d", port);
	opts.listen = listen;
	srv = http_server__start(&opts);
	if (!srv && errno == EADDRNOTAVAIL)
		cr_skip_test("no ::1 on this host");
	cr_assert_not_null(srv, "%s: %s", listen, strerror(errno));
	fd = test_http_connect(AF_INET6, port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_request(fd, "GET", "/health", &r), 0);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	close(fd);
	http_server__stop(srv);

	/* ":PORT" listens on every address, IPv4 and IPv6 */
	snprintf(listen, sizeof(listen), ":%d", port);
	srv = http_server__start(&opts);
	cr_assert_not_null(srv, "%s: %s", listen, strerror(errno));
	fd = test_http_connect(AF_INET, port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_request(fd, "GET", "/health", &r), 0);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	close(fd);
	fd = test_http_connect(AF_INET6, port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_request(fd, "GET", "/health", &r), 0);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	close(fd);
	http_server__stop(srv);
}

Test(http, promtool_accepts_metrics)
{
	struct test_http_resp r;
	char path[] = "/tmp/novamon-http-XXXXXX";
	char cmd[128];
	int fd;

	if (access("/usr/bin/promtool", X_OK))
		cr_skip_test("promtool not installed");
	test_http_publish(5);
	test_http_get("GET", "/metrics", &r);
	cr_assert_eq(r.status, 200);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, r.body, r.body_len), (ssize_t)r.body_len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
	cr_expect_eq(system(cmd), 0, "promtool rejected /metrics:\n%s", r.body);
	unlink(path);
	test_http_resp_free(&r);
}

Test(http_parse, forms)
{
	char host[64];
	int port = 0;

	cr_assert_eq(http_parse_listen("127.0.0.1:9477", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 9477);
	cr_assert_eq(http_parse_listen("[::1]:80", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 80);
	cr_assert_eq(http_parse_listen(":65535", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "");
	cr_assert_eq(port, 65535);
	cr_assert_eq(http_parse_listen("localhost:1", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "localhost");
	cr_assert_eq(port, 1);
	cr_assert_eq(http_parse_listen("[fe80::1]:9477", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "fe80::1");
}

Test(http_parse, rejects)
{
	static const char *const bad[] = {
		"",	  "9477",    "127.0.0.1", "127.0.0.1:",	      "127.0.0.1:0",
		":65536", ":-1",     ":12a",	  "::1:9477",	      "[::1]9477",
		"[::1]",  "[]:9477", "[::1:9477", "host:99999999999", ":+80",
	};
	char host[64], tiny[4];
	int port;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(http_parse_listen(bad[i], host, sizeof(host), &port), -EINVAL, "%s",
			     bad[i]);
	cr_assert_eq(http_parse_listen(NULL, host, sizeof(host), &port), -EINVAL);
	cr_assert_eq(http_parse_listen("1.2.3.4:5", tiny, sizeof(tiny), &port), -EINVAL);
	cr_assert_eq(http_parse_listen("abc:5", tiny, sizeof(tiny), &port), 0);
	cr_assert_str_eq(tiny, "abc");
}

/* ------------------------------------------------------------------ */
/* Routed requests */

static atomic_int test_slow_release; /* the test lets /slow finish */
static atomic_int test_slow_done; /* /slow returned */

static double test_http_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answers "METHOD|QUERY|CTYPE|PEER|BODYLEN|BODY". */
static int test_echo(const struct http_request *req, struct http_response *resp, void *ctx)
{
	size_t n = strlen(req->method) + strlen(req->query) + strlen(req->content_type) +
		   strlen(req->remote_addr) + req->body_len + 64;

	(void)ctx;
	resp->body = malloc(n);
	if (!resp->body)
		return -ENOMEM;
	resp->body_len = (size_t)snprintf(resp->body, n, "%s|%s|%s|%s|%zu|", req->method,
					  req->query, req->content_type, req->remote_addr,
					  req->body_len);
	memcpy(resp->body + resp->body_len, req->body, req->body_len);
	resp->body_len += req->body_len;
	resp->content_type = "text/plain";
	return 0;
}

/* Answers the decoded parameters: match[] 0 and 1, q, and the path. */
static int test_params(const struct http_request *req, struct http_response *resp, void *ctx)
{
	char m0[64] = "-", m1[64] = "-", q[64] = "-", b[64] = "-";
	const char *src = req->body_len ? req->body : req->query;

	(void)ctx;
	http_param(src, "match[]", 0, m0, sizeof(m0));
	http_param(src, "match[]", 1, m1, sizeof(m1));
	http_param(src, "q", 0, q, sizeof(q));
	http_param(src, "b", 0, b, sizeof(b));
	resp->body = malloc(512);
	if (!resp->body)
		return -ENOMEM;
	resp->body_len =
		(size_t)snprintf(resp->body, 512, "%s|%s|%s|%s|%s", req->path, m0, m1, q, b);
	return 0;
}

static int test_slow(const struct http_request *req, struct http_response *resp, void *ctx)
{
	double end = test_http_now() + 10;

	(void)req;
	(void)ctx;
	while (!atomic_load(&test_slow_release) && test_http_now() < end)
		usleep(10000);
	resp->body = strdup("slow");
	resp->body_len = 4;
	atomic_store(&test_slow_done, 1);
	return 0;
}

static int test_fail(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	resp->body = strdup("dropped"); /* the server frees it */
	return -EIO;
}

static int test_busy(const struct http_request *req, struct http_response *resp, void *ctx)
{
	int err = http_error(resp, 503, "timeout", "busy \"now\"");

	(void)req;
	(void)ctx;
	resp->retry_after_s = 7;
	resp->content_encoding = "identity"; /* after http_error(), which clears it */
	return err;
}

static atomic_int test_nobody_calls, test_nobody_bad; /* /nobody: calls, wrong bodies */

/* Answers 204 with no body, as the remote-write receiver does; checks the body it got. */
static int test_nobody(const struct http_request *req, struct http_response *resp, void *ctx)
{
	size_t i;

	(void)ctx;
	atomic_fetch_add(&test_nobody_calls, 1);
	for (i = 0; i < req->body_len; i++)
		if (req->body[i] != 'b')
			break;
	if (req->body_len != 60000 || i != req->body_len)
		atomic_fetch_add(&test_nobody_bad, 1);
	resp->status = 204;
	return 0;
}

static const struct http_route test_routes[] = {
	{ "POST", "/nobody", test_nobody, NULL }, { "POST", "/echo", test_echo, NULL },
	{ "GET", "/echo", test_echo, NULL },	  { NULL, "/params", test_params, NULL },
	{ "GET", "/p/", test_params, NULL },	  { "GET", "/slow", test_slow, NULL },
	{ "GET", "/fail", test_fail, NULL },	  { "GET", "/busy", test_busy, NULL },
};

#define TEST_MAX_BODY (2u << 20)

static void test_routes_setup(void)
{
	struct http_server_opts opts = {
		.routes = test_routes,
		.nroutes = sizeof(test_routes) / sizeof(test_routes[0]),
		.max_body_bytes = TEST_MAX_BODY,
		.handler_threads = 2,
	};
	int i;

	atomic_store(&test_slow_release, 0);
	atomic_store(&test_slow_done, 0);
	test_store = metric_store__new();
	cr_assert_not_null(test_store);
	for (i = 0; i < 20; i++) {
		test_port = 21477 + (getpid() + i * 7) % 1000;
		snprintf(test_listen, sizeof(test_listen), "127.0.0.1:%d", test_port);
		opts.listen = test_listen;
		opts.store = test_store;
		test_srv = http_server__start(&opts);
		if (test_srv || errno != EADDRINUSE)
			break;
	}
	cr_assert_not_null(test_srv, "http_server__start(%s): %s", test_listen, strerror(errno));
}

static void test_routes_teardown(void)
{
	atomic_store(&test_slow_release, 1);
	test_http_teardown();
}

TestSuite(http_routes, .init = test_routes_setup, .fini = test_routes_teardown, .timeout = 60);

/* Send raw bytes (a full request) and read one response. */
static int test_http_raw(int fd, const char *raw, size_t len, struct test_http_resp *r)
{
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(fd, raw + sent, len - sent, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		sent += (size_t)n;
	}
	return test_http_read(fd, r);
}

static int test_http_post(int fd, const char *path, const char *ctype, const char *body, size_t len,
			  struct test_http_resp *r)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n\r\n",
		     path, ctype, len);
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	return test_http_raw(fd, body, len, r);
}

Test(http_routes, post_body_and_keep_alive)
{
	const char *body = "query=up%7Bjob%3D%22a%26b%22%7D&time=1.5";
	struct test_http_resp r;
	char want[256];
	int fd;

	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_post(fd, "/echo?x=1", "application/x-www-form-urlencoded", body,
				    strlen(body), &r),
		     0);
	cr_assert_eq(r.status, 200, "%s", r.head);
	snprintf(want, sizeof(want), "POST|x=1|application/x-www-form-urlencoded|127.0.0.1|%zu|%s",
		 strlen(body), body);
	cr_assert_str_eq(r.body, want);
	test_http_resp_free(&r);

	/* an empty body with Content-Length: 0, on the same connection */
	cr_assert_eq(test_http_post(fd, "/echo", "text/plain", "", 0, &r), 0);
	cr_assert_str_eq(r.body, "POST||text/plain|127.0.0.1|0|");
	test_http_resp_free(&r);

	/* and a GET after it */
	cr_assert_eq(test_http_request(fd, "GET", "/echo?a=b", &r), 0);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "GET|a=b||127.0.0.1|0|");
	test_http_resp_free(&r);
	cr_assert_eq(test_http_request(fd, "GET", "/health", &r), 0);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	close(fd);
}

/*
 * A 204 without a body on a keep-alive connection, then the next request at
 * once (as Prometheus' remote-write sender does): each request must reach
 * its handler with exactly its own body.
 */
Test(http_routes, no_body_answers_then_next_request)
{
	char body[60000], req[60200];
	struct test_http_resp r;
	int fd, i, n;

	memset(body, 'b', sizeof(body));
	n = snprintf(req, sizeof(req),
		     "POST /nobody HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n",
		     sizeof(body));
	memcpy(req + n, body, sizeof(body));
	n += (int)sizeof(body);
	atomic_store(&test_nobody_calls, 0);
	atomic_store(&test_nobody_bad, 0);
	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	for (i = 0; i < 50; i++) {
		cr_assert_eq(test_http_raw(fd, req, (size_t)n, &r), 0, "request %d", i);
		cr_assert_eq(r.status, 204, "request %d: %s", i, r.head);
		test_http_resp_free(&r);
	}
	close(fd);
	cr_assert_eq(atomic_load(&test_nobody_calls), 50);
	cr_assert_eq(atomic_load(&test_nobody_bad), 0);
}

Test(http_routes, big_body)
{
	size_t len = TEST_MAX_BODY, i;
	struct test_http_resp r;
	char *body, *bar;
	int fd;

	body = malloc(len);
	cr_assert_not_null(body);
	for (i = 0; i < len; i++)
		body[i] = (char)('a' + i % 26);
	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_post(fd, "/echo", "text/plain", body, len, &r), 0);
	cr_assert_eq(r.status, 200);
	bar = strrchr(r.body, '|');
	cr_assert_not_null(bar);
	cr_assert_eq(r.body_len - (size_t)(bar + 1 - r.body), len);
	cr_assert(!memcmp(bar + 1, body, len));
	test_http_resp_free(&r);
	close(fd);
	free(body);
}

/* 413 from the Content-Length alone: the server does not wait for the body. */
Test(http_routes, too_large)
{
	const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
			  "some of it";
	struct test_http_resp r;
	char val[64];
	double t0 = test_http_now();
	int fd;

	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_raw(fd, req, strlen(req), &r), 0);
	cr_assert_eq(r.status, 413, "%s", r.head);
	cr_assert(test_http_header(&r, "connection", val, sizeof(val)));
	cr_assert_str_eq(val, "close");
	cr_assert_not_null(strstr(r.body, "\"errorType\":\"bad_data\""));
	cr_assert_lt(test_http_now() - t0, 5.0);
	test_http_resp_free(&r);
	close(fd);

	/* one byte over the limit */
	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	snprintf(val, sizeof(val), "%u", TEST_MAX_BODY + 1);
	{
		char head[256];

		snprintf(head, sizeof(head),
			 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n", val);
		cr_assert_eq(test_http_raw(fd, head, strlen(head), &r), 0);
	}
	cr_assert_eq(r.status, 413);
	test_http_resp_free(&r);
	close(fd);

	/* a chunked body is refused with 411 */
	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	cr_assert_eq(test_http_raw(fd, req, strlen(req), &r), 0);
	cr_assert_eq(r.status, 411, "%s", r.head);
	test_http_resp_free(&r);
	close(fd);
}

Test(http_routes, method_not_allowed_and_errors)
{
	struct test_http_resp r;
	char val[128];

	test_http_get("DELETE", "/echo", &r);
	cr_assert_eq(r.status, 405, "%s", r.head);
	cr_assert(test_http_header(&r, "allow", val, sizeof(val)));
	cr_assert_str_eq(val, "POST, GET");
	test_http_resp_free(&r);

	test_http_get("POST", "/p/x", &r);
	cr_assert_eq(r.status, 405);
	test_http_resp_free(&r);

	test_http_get("GET", "/nowhere", &r);
	cr_assert_eq(r.status, 404);
	test_http_resp_free(&r);

	test_http_get("GET", "/fail", &r);
	cr_assert_eq(r.status, 500);
	cr_assert_not_null(strstr(r.body, "\"status\":\"error\""), "%s", r.body);
	test_http_resp_free(&r);

	test_http_get("GET", "/busy", &r);
	cr_assert_eq(r.status, 503);
	cr_assert(test_http_header(&r, "retry-after", val, sizeof(val)));
	cr_assert_str_eq(val, "7");
	cr_assert(test_http_header(&r, "content-encoding", val, sizeof(val)));
	cr_assert_str_eq(val, "identity");
	cr_assert_str_eq(r.body, "{\"status\":\"error\",\"errorType\":\"timeout\","
				 "\"error\":\"busy \\\"now\\\"\"}\n");
	test_http_resp_free(&r);
}

Test(http_routes, params)
{
	const char *body = "match%5B%5D=a%3Db&match[]=c+d&q=%E2%82%AC";
	struct test_http_resp r;
	int fd;

	test_http_get("GET", "/params?match[]=up%26x&match%5B%5D=y%7B%7D&q=a+b%2Bc&b=", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "/params|up&x|y{}|a b+c|");
	test_http_resp_free(&r);

	/* a prefix route sees the decoded path */
	test_http_get("GET", "/p/label%20x/values?q=%C3%A9", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "/p/label x/values|-|-|\xc3\xa9|-");
	test_http_resp_free(&r);

	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(test_http_post(fd, "/params", "application/x-www-form-urlencoded", body,
				    strlen(body), &r),
		     0);
	cr_assert_str_eq(r.body, "/params|a=b|c d|\xe2\x82\xac|-");
	test_http_resp_free(&r);
	close(fd);
}

static void *test_slow_client(void *arg)
{
	struct test_http_resp *r = arg;
	int fd = test_http_connect(AF_INET, test_port);

	if (fd < 0 || test_http_request(fd, "GET", "/slow", r))
		r->status = -1;
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* A slow handler holds only its own response: /metrics and /echo still answer. */
Test(http_routes, slow_handler_does_not_block)
{
	struct test_http_resp slow = { 0 }, r;
	pthread_t t;
	double t0;

	test_http_publish(2);
	cr_assert_eq(pthread_create(&t, NULL, test_slow_client, &slow), 0);
	usleep(100000);
	t0 = test_http_now();
	test_http_get("GET", "/metrics", &r);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	test_http_get("GET", "/echo", &r);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);
	cr_assert_lt(test_http_now() - t0, 2.0);
	cr_assert_eq(atomic_load(&test_slow_done), 0);
	atomic_store(&test_slow_release, 1);
	pthread_join(t, NULL);
	cr_assert_eq(slow.status, 200);
	cr_assert_str_eq(slow.body, "slow");
	test_http_resp_free(&slow);
}

/* The client leaves while its handler runs: the response is dropped, the server lives. */
Test(http_routes, disconnect_during_slow_handler)
{
	const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
	struct test_http_resp r;
	double end;
	int fd;

	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	usleep(200000);
	close(fd);
	usleep(100000);
	atomic_store(&test_slow_release, 1);
	end = test_http_now() + 5;
	while (!atomic_load(&test_slow_done) && test_http_now() < end)
		usleep(10000);
	cr_assert_eq(atomic_load(&test_slow_done), 1);
	usleep(100000);
	test_http_get("GET", "/health", &r);
	cr_assert_eq(r.status, 200);
	test_http_resp_free(&r);

	/* and a request queued behind the handlers is dropped on stop without a leak */
	atomic_store(&test_slow_release, 0);
	atomic_store(&test_slow_done, 0);
	fd = test_http_connect(AF_INET, test_port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	usleep(100000);
	close(fd);
	/* teardown releases /slow and stops the server */
}
