/* SPDX-License-Identifier: Apache-2.0 */
/*
 * novamon top: target parsing, the HTTP response decoder, rates and tables
 * from two fixture expositions, and the whole command in batch mode against
 * a loopback HTTP server thread (Content-Length, then chunked), plus the
 * message when nothing listens.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cli.h"

/* Two fetches 2 s apart (sample timestamps 1000000 and 1002000 ms). */
static const char fixture_a[] =
	"# HELP novamon_kvm_userspace_exits_total KVM_RUN returns to userspace.\n"
	"# TYPE novamon_kvm_userspace_exits_total counter\n"
	"novamon_kvm_userspace_exits_total{vm=\"web-1\",vcpu=\"0\",reason=\"io\"} 1000 1000000\n"
	"novamon_kvm_userspace_exits_total{vm=\"web-1\",vcpu=\"0\",reason=\"hlt\"} 10 1000000\n"
	"novamon_kvm_userspace_exits_total{vm=\"web-1\",vcpu=\"1\",reason=\"io\"} 500 1000000\n"
	"novamon_kvm_userspace_exits_total{vm=\"db\",vcpu=\"0\",reason=\"io\"} 5000 1000000\n"
	"novamon_kvm_exits_total{vm=\"web-1\",vcpu=\"1\",reason=\"EPT_VIOLATION\"} 100 1000000\n"
	"novamon_kvm_pio_total{vm=\"web-1\",vcpu=\"0\"} 900 1000000\n"
	"novamon_kvm_mmio_total{vm=\"web-1\",vcpu=\"1\"} 50 1000000\n"
	"novamon_kvm_emulated_instructions_total{vm=\"web-1\",vcpu=\"1\"} 70 1000000\n"
	"novamon_vcpu_run_delay_seconds_total{vm=\"web-1\",vcpu=\"0\"} 0.5 1000000\n"
	"novamon_block_request_duration_seconds_bucket{device=\"vda\",op=\"read\",le=\"+Inf\"} 10 "
	"1000000\n"
	"novamon_block_request_duration_seconds_sum{device=\"vda\",op=\"read\"} 0.010 1000000\n"
	"novamon_block_request_duration_seconds_count{device=\"vda\",op=\"read\"} 10 1000000\n"
	"novamon_block_request_duration_seconds_sum{device=\"vda\",op=\"write\"} 0.020 1000000\n"
	"novamon_block_request_duration_seconds_count{device=\"vda\",op=\"write\"} 10 1000000\n"
	"novamon_block_request_duration_seconds_sum{device=\"vdb\",op=\"read\"} 1 1000000\n"
	"novamon_block_request_duration_seconds_count{device=\"vdb\",op=\"read\"} 5 1000000\n"
	"novamon_block_bytes_total{device=\"vda\",op=\"read\"} 4096000 1000000\n"
	"novamon_net_packets_total{interface=\"tap0\",direction=\"rx\"} 100 1000000\n"
	"novamon_net_packets_total{interface=\"tap0\",direction=\"tx\"} 200 1000000\n"
	"novamon_net_bytes_total{interface=\"tap0\",direction=\"rx\"} 150000 1000000\n"
	"novamon_net_bytes_total{interface=\"tap0\",direction=\"tx\"} 300000 1000000\n"
	"novamon_net_packets_total{interface=\"eth1\",direction=\"rx\"} 0 1000000\n"
	"novamon_net_packets_total{interface=\"eth1\",direction=\"sideways\"} 0 1000000\n"
	"novamon_events_total{source=\"kvm\"} 10000 1000000\n"
	"novamon_events_total{source=\"block\"} 100 1000000\n"
	"novamon_events_lost_total{cpu=\"0\"} 0 1000000\n"
	"novamon_something_else 5 1000000\n"
	"this line is not exposition\n";

static const char fixture_b[] =
	"novamon_kvm_userspace_exits_total{vm=\"web-1\",vcpu=\"0\",reason=\"io\"} 3000 1002000\n"
	"novamon_kvm_userspace_exits_total{vm=\"web-1\",vcpu=\"0\",reason=\"hlt\"} 12 1002000\n"
	"novamon_kvm_userspace_exits_total{vm=\"web-1\",vcpu=\"1\",reason=\"io\"} 700 1002000\n"
	"novamon_kvm_userspace_exits_total{vm=\"db\",vcpu=\"0\",reason=\"io\"} 100 1002000\n"
	"novamon_kvm_userspace_exits_total{vm=\"new\",vcpu=\"0\",reason=\"io\"} 999 1002000\n"
	"novamon_kvm_exits_total{vm=\"web-1\",vcpu=\"1\",reason=\"EPT_VIOLATION\"} 300 1002000\n"
	"novamon_kvm_pio_total{vm=\"web-1\",vcpu=\"0\"} 2900 1002000\n"
	"novamon_kvm_mmio_total{vm=\"web-1\",vcpu=\"1\"} 250 1002000\n"
	"novamon_kvm_emulated_instructions_total{vm=\"web-1\",vcpu=\"1\"} 270 1002000\n"
	"novamon_vcpu_run_delay_seconds_total{vm=\"web-1\",vcpu=\"0\"} 0.7 1002000\n"
	"novamon_block_request_duration_seconds_sum{device=\"vda\",op=\"read\"} 0.030 1002000\n"
	"novamon_block_request_duration_seconds_count{device=\"vda\",op=\"read\"} 30 1002000\n"
	"novamon_block_request_duration_seconds_sum{device=\"vda\",op=\"write\"} 0.070 1002000\n"
	"novamon_block_request_duration_seconds_count{device=\"vda\",op=\"write\"} 20 1002000\n"
	"novamon_block_request_duration_seconds_sum{device=\"vdb\",op=\"read\"} 1 1002000\n"
	"novamon_block_request_duration_seconds_count{device=\"vdb\",op=\"read\"} 5 1002000\n"
	"novamon_block_bytes_total{device=\"vda\",op=\"read\"} 8192000 1002000\n"
	"novamon_net_packets_total{interface=\"tap0\",direction=\"rx\"} 300 1002000\n"
	"novamon_net_packets_total{interface=\"tap0\",direction=\"tx\"} 600 1002000\n"
	"novamon_net_bytes_total{interface=\"tap0\",direction=\"rx\"} 450000 1002000\n"
	"novamon_net_bytes_total{interface=\"tap0\",direction=\"tx\"} 900000 1002000\n"
	"novamon_net_packets_total{interface=\"eth1\",direction=\"rx\"} 2000 1002000\n"
	"novamon_events_total{source=\"kvm\"} 30000 1002000\n"
	"novamon_events_total{source=\"block\"} 300 1002000\n"
	"novamon_events_lost_total{cpu=\"0\"} 4 1002000\n";

#define EPS 1e-9

static void build_fixture_view(struct cli_top_view *v)
{
	struct cli_top_snapshot *a, *b;

	a = cli_top_snapshot__parse(fixture_a, strlen(fixture_a), 1.0);
	b = cli_top_snapshot__parse(fixture_b, strlen(fixture_b), 2.0);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_eq(cli_top_view__build(v, a, b), 0);
	cli_top_snapshot__free(a);
	cli_top_snapshot__free(b);
}

Test(cli_top, rates_from_fixtures)
{
	struct cli_top_view v;

	build_fixture_view(&v);
	cr_assert_float_eq(v.interval, 2.0, EPS, "sample timestamps win over fetch times");
	cr_assert_float_eq(v.events, 10100.0, EPS);
	cr_assert_float_eq(v.lost, 2.0, EPS);

	/* vCPUs, busiest first; the new VM has a row but no rate yet. */
	cr_assert_eq(v.nvcpus, 4);
	cr_assert_str_eq(v.vcpus[0].vm, "web-1");
	cr_assert_str_eq(v.vcpus[0].vcpu, "0");
	cr_assert_float_eq(v.vcpus[0].exits, 1001.0, EPS);
	cr_assert_float_eq(v.vcpus[0].pio, 1000.0, EPS);
	cr_assert_float_eq(v.vcpus[0].mmio, 0.0, EPS);
	cr_assert_float_eq(v.vcpus[0].run_delay_ms, 100.0, 1e-6);
	cr_assert_str_eq(v.vcpus[1].vm, "web-1");
	cr_assert_str_eq(v.vcpus[1].vcpu, "1");
	cr_assert_float_eq(v.vcpus[1].exits, 200.0, EPS, "userspace + hardware exits");
	cr_assert_float_eq(v.vcpus[1].mmio, 100.0, EPS);
	cr_assert_float_eq(v.vcpus[1].emulated, 100.0, EPS);
	cr_assert_str_eq(v.vcpus[2].vm, "db");
	cr_assert_float_eq(v.vcpus[2].exits, 50.0, EPS, "a reset counts from zero");
	cr_assert_str_eq(v.vcpus[3].vm, "new");
	cr_assert_float_eq(v.vcpus[3].exits, 0.0, EPS);

	/* Block devices: ops summed; latency from the _sum/_count deltas. */
	cr_assert_eq(v.ndevs, 2);
	cr_assert_str_eq(v.devs[0].device, "vda");
	cr_assert_float_eq(v.devs[0].iops, 15.0, EPS);
	cr_assert_float_eq(v.devs[0].mbps, 2.048, EPS);
	cr_assert(v.devs[0].has_lat);
	cr_assert_float_eq(v.devs[0].lat_ms, 70.0 / 30.0, 1e-9);
	cr_assert_str_eq(v.devs[1].device, "vdb");
	cr_assert_float_eq(v.devs[1].iops, 0.0, EPS);
	cr_assert_not(v.devs[1].has_lat);

	/* Interfaces, by packets per second; unknown directions are ignored. */
	cr_assert_eq(v.nifs, 2);
	cr_assert_str_eq(v.ifs[0].iface, "eth1");
	cr_assert_float_eq(v.ifs[0].rx_pps, 1000.0, EPS);
	cr_assert_str_eq(v.ifs[1].iface, "tap0");
	cr_assert_float_eq(v.ifs[1].rx_pps, 100.0, EPS);
	cr_assert_float_eq(v.ifs[1].tx_pps, 200.0, EPS);
	cr_assert_float_eq(v.ifs[1].rx_mbps, 0.15, EPS);
	cr_assert_float_eq(v.ifs[1].tx_mbps, 0.3, EPS);

	cli_top_view__release(&v);
}

Test(cli_top, fetch_times_without_timestamps)
{
	static const char a[] = "novamon_events_total 100\n";
	static const char b[] = "novamon_events_total 400\n";
	struct cli_top_snapshot *sa, *sb;
	struct cli_top_view v;

	sa = cli_top_snapshot__parse(a, strlen(a), 10.0);
	sb = cli_top_snapshot__parse(b, strlen(b), 13.0);
	cr_assert_eq(cli_top_view__build(&v, sa, sb), 0);
	cr_assert_float_eq(v.interval, 3.0, EPS);
	cr_assert_float_eq(v.events, 100.0, EPS);
	cr_assert_eq(v.nvcpus + v.ndevs + v.nifs, 0);
	cli_top_view__release(&v);

	/* Same time (nothing new published): no view. */
	cr_assert_eq(cli_top_view__build(&v, sb, sb), -EAGAIN);
	cli_top_view__release(&v);
	cr_assert_eq(cli_top_view__build(&v, sb, sa), -EAGAIN);
	cli_top_view__release(&v);
	cr_assert_eq(cli_top_view__build(&v, NULL, sa), -EINVAL);
	cli_top_view__release(&v);
	cli_top_snapshot__free(sa);
	cli_top_snapshot__free(sb);
}

Test(cli_top, empty_snapshots)
{
	struct cli_top_snapshot *a = cli_top_snapshot__parse("", 0, 1.0);
	struct cli_top_snapshot *b = cli_top_snapshot__parse(NULL, 0, 2.0);
	struct cli_top_view v;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_eq(cli_top_view__build(&v, a, b), 0);
	f = open_memstream(&out, &len);
	cr_assert_not_null(f);
	cli_top_view__render(&v, f, NULL, 0, 0);
	fclose(f);
	cr_assert_not_null(strstr(out, "(no vCPU counters yet)"));
	cr_assert_not_null(strstr(out, "(no block counters yet)"));
	cr_assert_not_null(strstr(out, "(no interface counters yet)"));
	free(out);
	cli_top_view__release(&v);
	cli_top_snapshot__free(a);
	cli_top_snapshot__free(b);
	cr_assert_null(cli_top_snapshot__free(NULL));
}

Test(cli_top, render_tables)
{
	struct cli_top_view v;
	char *out = NULL;
	size_t len = 0;
	const char *web0, *web1, *db;
	FILE *f;

	build_fixture_view(&v);
	f = open_memstream(&out, &len);
	cr_assert_not_null(f);
	cli_top_view__render(&v, f, "TITLE", 0, 0);
	fclose(f);
	cr_assert_eq(strncmp(out, "TITLE\nevents 10100.0/s  lost 2.0/s  interval 2.00 s\n", 52), 0,
		     "%s", out);
	cr_assert_not_null(strstr(out, "EXITS/s"), "%s", out);
	web0 = strstr(out,
		      "web-1        0       1001.0     1000.0        0.0        0.0        100.0");
	web1 = strstr(out, "web-1        1        200.0");
	db = strstr(out, "db           0         50.0");
	cr_assert(web0 && web1 && db && web0 < web1 && web1 < db, "%s", out);
	cr_assert_not_null(strstr(out, "vda            15.0       2.05      2.333\n"), "%s", out);
	cr_assert_not_null(strstr(out, "vdb             0.0       0.00          -\n"), "%s", out);
	cr_assert_not_null(strstr(out, "tap0           100.0      200.0       0.15       0.30\n"),
			   "%s", out);
	free(out);

	/* Capped tables say how much was cut. */
	out = NULL;
	f = open_memstream(&out, &len);
	cli_top_view__render(&v, f, "T", 2, 1);
	fclose(f);
	cr_assert_not_null(strstr(out, "  ... 2 more vCPUs\n"), "%s", out);
	cr_assert_not_null(strstr(out, "  ... 1 more devices\n"), "%s", out);
	cr_assert_not_null(strstr(out, "  ... 1 more interfaces\n"), "%s", out);
	cr_assert_null(strstr(out, "db "), "%s", out);
	free(out);
	cli_top_view__release(&v);
}

Test(cli_top, target_parse)
{
	struct cli_top_target t;

	cr_assert_eq(cli_top_target__parse(&t, "127.0.0.1:9477"), 0);
	cr_assert_str_eq(t.host, "127.0.0.1");
	cr_assert_str_eq(t.port, "9477");
	cr_assert_str_eq(t.path, "/metrics");
	cr_assert_str_eq(t.display, "127.0.0.1:9477");

	cr_assert_eq(cli_top_target__parse(&t, "http://mon.example:8080/x/metrics?a=b"), 0);
	cr_assert_str_eq(t.host, "mon.example");
	cr_assert_str_eq(t.port, "8080");
	cr_assert_str_eq(t.path, "/x/metrics?a=b");

	cr_assert_eq(cli_top_target__parse(&t, "http://localhost"), 0);
	cr_assert_str_eq(t.port, "80");
	cr_assert_str_eq(t.path, "/metrics");

	cr_assert_eq(cli_top_target__parse(&t, "HTTP://[::1]:9000/"), 0);
	cr_assert_str_eq(t.host, "::1");
	cr_assert_str_eq(t.port, "9000");
	cr_assert_str_eq(t.path, "/metrics");
	cr_assert_str_eq(t.display, "[::1]:9000");

	cr_assert_eq(cli_top_target__parse(&t, ":9999"), 0);
	cr_assert_str_eq(t.host, "127.0.0.1");
	cr_assert_str_eq(t.port, "9999");

	cr_assert_eq(cli_top_target__parse(&t, "somehost"), 0);
	cr_assert_str_eq(t.port, "9477");

	cr_assert_eq(cli_top_target__parse(&t, "https://h:1/metrics"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "h:0"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "h:65536"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "h:12x"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "h:"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "[::1"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "[::1]x"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, "h:1/a b"), -EINVAL);
	cr_assert_eq(cli_top_target__parse(&t, ""), -EINVAL);
}

/* Decode s as a complete response (eof given) and check body/status. */
static void decode_ok(const char *s, int eof, int want_status, const char *want_body)
{
	char *body = NULL;
	size_t len = 0;
	int status = 0;

	cr_assert_eq(cli_top_http_decode(s, strlen(s), eof, &status, &body, &len), 0, "%s", s);
	cr_assert_eq(status, want_status);
	cr_assert_eq(len, strlen(want_body));
	cr_assert_str_eq(body, want_body);
	free(body);
}

static int decode_rc(const char *s, int eof)
{
	char *body = NULL;
	size_t len = 0;
	int status = 0;
	int rc = cli_top_http_decode(s, strlen(s), eof, &status, &body, &len);

	cr_assert_null(body);
	return rc;
}

Test(cli_top, http_content_length)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\n"
				   "Content-Type: text/plain\r\n"
				   "content-length:  5 \r\n"
				   "\r\n"
				   "a 1\n\nEXTRA";
	char partial[256];

	decode_ok(resp, 0, 200, "a 1\n\n");
	decode_ok("HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n", 1, 404, "no\n");
	decode_ok("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, 200, "");
	/* Every prefix is incomplete, not an error. */
	for (size_t n = 0; n < strlen(resp) - 5; n++) {
		memcpy(partial, resp, n);
		partial[n] = '\0';
		cr_assert_eq(decode_rc(partial, 0), -EAGAIN, "prefix %zu", n);
	}
	cr_assert_eq(decode_rc("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 1), -EPROTO);
}

Test(cli_top, http_until_eof)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until eof";

	cr_assert_eq(decode_rc(resp, 0), -EAGAIN);
	decode_ok(resp, 1, 200, "body until eof");
}

Test(cli_top, http_chunked)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\n"
				   "Transfer-Encoding: chunked\r\n"
				   "\r\n"
				   "4\r\nabcd\r\n"
				   "A;ext=1\r\n0123456789\r\n"
				   "1\r\n\n\r\n"
				   "0\r\n"
				   "X-Trailer: yes\r\n"
				   "\r\n";
	char partial[256];

	decode_ok(resp, 0, 200, "abcd0123456789\n");
	for (size_t n = 0; n < strlen(resp); n++) {
		memcpy(partial, resp, n);
		partial[n] = '\0';
		cr_assert_eq(decode_rc(partial, 0), -EAGAIN, "prefix %zu", n);
		cr_assert_eq(decode_rc(partial, 1), -EPROTO, "prefix %zu at eof", n);
	}
	decode_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 200, "");
	cr_assert_eq(decode_rc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "zz\r\nab\r\n0\r\n\r\n",
			       0),
		     -EPROTO);
	cr_assert_eq(decode_rc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "2\r\nabc\r\n0\r\n\r\n",
			       0),
		     -EPROTO);
	cr_assert_eq(decode_rc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "fffffffffffffffff\r\n",
			       0),
		     -EPROTO);
}

Test(cli_top, http_bad_status_line)
{
	cr_assert_eq(decode_rc("SSH-2.0-OpenSSH\r\n\r\n", 1), -EPROTO);
	cr_assert_eq(decode_rc("HTTP/1.1 2x0 OK\r\n\r\n", 1), -EPROTO);
	cr_assert_eq(decode_rc("HTTP/1.1 200OK\r\n\r\n", 1), -EPROTO);
	cr_assert_eq(decode_rc("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 1), -EPROTO);
	cr_assert_eq(decode_rc("garbage without headers end", 1), -EPROTO);
}

/* A loopback HTTP server answering each connection with the next response. */
struct fake_server {
	int fd;
	int port;
	const char *responses[4];
	int nresponses;
	pthread_t thread;
};

static void *fake_server_main(void *arg)
{
	struct fake_server *srv = arg;
	int i;

	for (i = 0; i < srv->nresponses; i++) {
		char req[4096];
		size_t len = 0;
		const char *r = srv->responses[i];
		int c = accept(srv->fd, NULL, NULL);

		if (c < 0)
			break;
		while (len < sizeof(req) - 1) {
			ssize_t n = recv(c, req + len, sizeof(req) - 1 - len, 0);

			if (n <= 0)
				break;
			len += (size_t)n;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		if (send(c, r, strlen(r), MSG_NOSIGNAL) < 0)
			perror("fake server send");
		close(c);
	}
	return NULL;
}

static void fake_server_start(struct fake_server *srv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sa);

	srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(srv->fd >= 0);
	cr_assert_eq(bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(srv->fd, 8), 0);
	cr_assert_eq(getsockname(srv->fd, (struct sockaddr *)&sa, &slen), 0);
	srv->port = ntohs(sa.sin_port);
	cr_assert_eq(pthread_create(&srv->thread, NULL, fake_server_main, srv), 0);
}

/* Run cli_top with stdout and stderr in temporary files; returns its status. */
static int run_top(char **argv, int argc, char **out, char **err)
{
	char opath[] = "/tmp/novamon-top-out-XXXXXX";
	char epath[] = "/tmp/novamon-top-err-XXXXXX";
	int ofd = mkstemp(opath), efd = mkstemp(epath);
	int saved_out, saved_err, rc;
	FILE *f;
	long n;

	cr_assert(ofd >= 0 && efd >= 0);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(STDOUT_FILENO);
	saved_err = dup(STDERR_FILENO);
	dup2(ofd, STDOUT_FILENO);
	dup2(efd, STDERR_FILENO);
	rc = cli_top(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);

	f = fdopen(ofd, "r");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*out = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(*out, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	f = fdopen(efd, "r");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*err = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(*err, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(opath);
	unlink(epath);
	return rc;
}

Test(cli_top, batch_against_loopback_server)
{
	struct fake_server srv = { 0 };
	char *resp_a = NULL, *resp_b = NULL, *out = NULL, *err = NULL;
	char listen_arg[64];
	char *argv[] = { "top", "--batch",  "-n",	"1", "--interval",
			 "0.1", "--listen", listen_arg, NULL };
	size_t len_b = strlen(fixture_b), off = 0;
	int rc;

	cr_assert(asprintf(&resp_a, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
			   strlen(fixture_a), fixture_a) > 0);
	/* The second answer is chunked, in chunks of 100 bytes. */
	resp_b = malloc(len_b * 2 + 256);
	cr_assert_not_null(resp_b);
	off = (size_t)sprintf(resp_b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (size_t i = 0; i < len_b; i += 100) {
		size_t n = len_b - i < 100 ? len_b - i : 100;

		off += (size_t)sprintf(resp_b + off, "%zx\r\n%.*s\r\n", n, (int)n, fixture_b + i);
	}
	sprintf(resp_b + off, "0\r\n\r\n");

	srv.responses[0] = resp_a;
	srv.responses[1] = resp_b;
	srv.nresponses = 2;
	fake_server_start(&srv);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", srv.port);

	rc = run_top(argv, 8, &out, &err);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	cr_assert_eq(rc, 0, "stderr: %s", err);
	cr_assert_not_null(strstr(out, "novamon top - 127.0.0.1:"), "%s", out);
	cr_assert_not_null(strstr(out, "events 10100.0/s  lost 2.0/s  interval 2.00 s"), "%s", out);
	cr_assert_not_null(strstr(out, "1001.0"), "%s", out);
	cr_assert_null(strstr(out, "\033"), "no escapes in batch mode");
	free(out);
	free(err);
	free(resp_a);
	free(resp_b);
}

Test(cli_top, unreachable_daemon)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sa);
	char listen_arg[64], want[160];
	char *argv[] = { "top", "--batch", "--listen", listen_arg, NULL };
	char *out = NULL, *err = NULL;
	int fd, rc;

	/* A port that was free a moment ago and has no listener. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	close(fd);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", ntohs(sa.sin_port));

	rc = run_top(argv, 4, &out, &err);
	cr_assert_eq(rc, 1);
	snprintf(want, sizeof(want),
		 "cannot reach novamon at 127.0.0.1:%d: Connection refused; is `novamon run` "
		 "running?\n",
		 ntohs(sa.sin_port));
	cr_assert_str_eq(err, want);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
}

Test(cli_top, http_error_status)
{
	struct fake_server srv = { 0 };
	char listen_arg[64];
	char *argv[] = { "top", "-b", "-l", listen_arg, NULL };
	char *out = NULL, *err = NULL;
	int rc;

	srv.responses[0] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	srv.nresponses = 1;
	fake_server_start(&srv);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", srv.port);
	rc = run_top(argv, 4, &out, &err);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	cr_assert_eq(rc, 1);
	cr_assert_not_null(strstr(err, "answered HTTP 404 for /metrics"), "%s", err);
	free(out);
	free(err);
}

Test(cli_top, usage)
{
	char *help[] = { "top", "--help", NULL };
	char *bad[] = { "top", "--interval", "0", NULL };
	char *extra[] = { "top", "stray", NULL };
	char *out = NULL, *err = NULL;

	cr_assert_eq(run_top(help, 2, &out, &err), 0);
	cr_assert_not_null(strstr(out, "Usage: novamon top"));
	free(out);
	free(err);
	cr_assert_eq(run_top(bad, 3, &out, &err), 2);
	cr_assert_not_null(strstr(err, "bad --interval"));
	free(out);
	free(err);
	cr_assert_eq(run_top(extra, 2, &out, &err), 2);
	free(out);
	free(err);
}
