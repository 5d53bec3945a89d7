/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/http.c: a real server on loopback and a plain-socket
 * HTTP/1.1 client, checking status lines, headers, bodies, keep-alive,
 * chunked writing of a large body, and a port conflict.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
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
static int test_http_request(int fd, const char *method, const char *path, struct test_http_resp *r)
{
	char req[256], val[64];
	size_t hlen = 0, got = 0, want;
	ssize_t n;
	char *end = NULL;

	memset(r, 0, sizeof(*r));
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n",
		 method, path);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return -1;

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
	cr_assert_str_eq(val, "GET");
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
