/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write: the client against a tiny HTTP server run in the test (a
 * thread and a socket) that decodes each request with the same protobuf-c
 * code and can answer 503 with Retry-After, 400, or 204.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "remote.pb-c.h"
#include "remote_write.h"

#define TRW_MAX_V 4096

struct trw_server {
	int fd;
	int port;
	pthread_t thr;
	atomic_bool stop;
	atomic_int fail_503; /* answer this many requests with 503 + Retry-After: 1 */
	atomic_int status; /* else this status (204 when 0) */
	atomic_int requests;
	atomic_int bad_headers;
	pthread_mutex_t lock;
	int seen[TRW_MAX_V]; /* times each value was stored */
};

static struct trw_server trw_srv;
static char trw_dir[64];

static void trw_record(struct trw_server *s, const char *body, size_t len)
{
	Prometheus__WriteRequest *wr;
	size_t dlen, i, k;
	char *buf;

	cr_assert_eq(snappy_uncompressed_length(body, len, &dlen), SNAPPY_OK);
	buf = malloc(dlen + 1);
	cr_assert_eq(snappy_uncompress(body, len, buf, &dlen), SNAPPY_OK);
	wr = prometheus__write_request__unpack(NULL, dlen, (uint8_t *)buf);
	cr_assert(wr);
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < wr->n_timeseries; i++) {
		Prometheus__TimeSeries *ts = wr->timeseries[i];

		cr_assert_str_eq(ts->labels[0]->name, "__name__");
		for (k = 0; k < ts->n_samples; k++) {
			int v = (int)ts->samples[k]->value;

			if (v >= 0 && v < TRW_MAX_V)
				s->seen[v]++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	prometheus__write_request__free_unpacked(wr, NULL);
	free(buf);
}

static void trw_serve_one(struct trw_server *s, int c)
{
	char hdr[8192], *end, *body = NULL, *p;
	size_t got = 0, clen = 0, have;
	const char *reply;
	char out[256];
	ssize_t r;
	int st;

	while (got < sizeof(hdr) - 1) {
		r = read(c, hdr + got, sizeof(hdr) - 1 - got);
		if (r <= 0)
			return;
		got += (size_t)r;
		hdr[got] = '\0';
		if ((end = strstr(hdr, "\r\n\r\n")))
			break;
	}
	if (!end)
		return;
	for (p = hdr; p < end; p = strstr(p, "\r\n") + 2) {
		if (!strncasecmp(p, "Content-Length:", 15))
			clen = strtoul(p + 15, NULL, 10);
	}
	if (!strcasestr(hdr, "Content-Encoding: snappy") ||
	    !strcasestr(hdr, "Content-Type: application/x-protobuf") ||
	    !strcasestr(hdr, "X-Prometheus-Remote-Write-Version: 0.1.0") ||
	    !strcasestr(hdr, "Authorization: Bearer t0k3n"))
		atomic_fetch_add(&s->bad_headers, 1);
	body = malloc(clen + 1);
	have = got - (size_t)(end + 4 - hdr);
	memcpy(body, end + 4, have);
	while (have < clen) {
		r = read(c, body + have, clen - have);
		if (r <= 0)
			goto out;
		have += (size_t)r;
	}
	atomic_fetch_add(&s->requests, 1);
	if (atomic_load(&s->fail_503) > 0) {
		atomic_fetch_sub(&s->fail_503, 1);
		reply = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
			"Content-Length: 0\r\nConnection: close\r\n\r\n";
		(void)!write(c, reply, strlen(reply));
		goto out;
	}
	st = atomic_load(&s->status);
	if (!st || (st >= 200 && st < 300))
		trw_record(s, body, clen);
	snprintf(out, sizeof(out),
		 "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", st ? st : 204);
	(void)!write(c, out, strlen(out));
out:
	free(body);
}

static void *trw_server_main(void *arg)
{
	struct trw_server *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		int c;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		trw_serve_one(s, c);
		close(c);
	}
	return NULL;
}

static void trw_init(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct trw_server *s = &trw_srv;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s->fd, 0);
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->fd, 16), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->thr, NULL, trw_server_main, s), 0);
	snprintf(trw_dir, sizeof(trw_dir), "/tmp/novamon-rwq.XXXXXX");
	cr_assert(mkdtemp(trw_dir));
}

static void trw_fini(void)
{
	char cmd[128];

	atomic_store(&trw_srv.stop, true);
	pthread_join(trw_srv.thr, NULL);
	close(trw_srv.fd);
	pthread_mutex_destroy(&trw_srv.lock);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", trw_dir);
	(void)!system(cmd);
}

TestSuite(remote_write, .init = trw_init, .fini = trw_fini, .timeout = 60);

static struct remote_write *trw_start(uint64_t queue_max)
{
	static const char *const hdrs[] = { "Authorization: Bearer t0k3n" };
	static char url[64];
	struct remote_write *rw;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", trw_srv.port);
	rw = remote_write__start(&(struct remote_write_opts){
		.url = url,
		.queue_dir = trw_dir,
		.queue_max_bytes = queue_max,
		.batch_max_samples = 100,
		.batch_max_delay_ms = 50,
		.headers = hdrs,
		.nheaders = 1,
		.timeout_ms = 5000,
		.backoff_min_ms = 10,
		.backoff_max_ms = 2000,
	});
	cr_assert(rw, "%s", strerror(errno));
	return rw;
}

static void trw_enqueue(struct remote_write *rw, int from, int to)
{
	char inst[16];
	int i;

	for (i = from; i < to; i++) {
		struct tsdb_label l[] = { { "job", "node" }, { "__name__", "m" }, { "i", inst } };

		snprintf(inst, sizeof(inst), "%d", i % 7);
		cr_assert_eq(remote_write__enqueue(rw, l, 3, 1000 + i, (double)i), 0);
	}
}

/* Wait until pred holds on the stats (10 s at most). */
#define TRW_WAIT(rw, st, pred)                                   \
	do {                                                     \
		int _i;                                          \
		for (_i = 0; _i < 1000; _i++) {                  \
			remote_write__stats(rw, &st);            \
			if (pred)                                \
				break;                           \
			usleep(10000);                           \
		}                                                \
		cr_assert(pred, "timed out waiting for " #pred); \
	} while (0)

static void trw_expect_each_once(int n)
{
	int i;

	pthread_mutex_lock(&trw_srv.lock);
	for (i = 0; i < n; i++)
		cr_expect_eq(trw_srv.seen[i], 1, "value %d seen %d times", i, trw_srv.seen[i]);
	pthread_mutex_unlock(&trw_srv.lock);
}

Test(remote_write, sends_everything_once)
{
	struct remote_write_stats st;
	struct remote_write *rw = trw_start(0);

	cr_assert_eq(remote_write__enqueue(rw, NULL, 0, 0, 0), -EINVAL);
	trw_enqueue(rw, 0, 1050);
	TRW_WAIT(rw, st, st.sent_samples == 1050 && st.queued_files == 0);
	cr_expect_eq(st.sent_batches, 11);
	cr_expect_eq(st.dropped_samples, 0);
	cr_expect_eq(st.last_status, 204);
	cr_expect_eq(atomic_load(&trw_srv.bad_headers), 0);
	trw_expect_each_once(1050);
	remote_write__stop(rw);
}

Test(remote_write, survives_an_outage)
{
	struct remote_write_stats st;
	struct remote_write *rw;

	atomic_store(&trw_srv.fail_503, 2);
	rw = trw_start(0);
	trw_enqueue(rw, 0, 500);
	TRW_WAIT(rw, st, st.sent_samples == 500 && st.queued_files == 0);
	cr_expect_eq(st.retries, 2);
	cr_expect_eq(st.failed_requests, 2);
	cr_expect_eq(st.dropped_samples, 0);
	trw_expect_each_once(500);
	remote_write__stop(rw);
}

Test(remote_write, survives_a_restart)
{
	struct remote_write_stats st;
	struct remote_write *rw;

	/* backend down: everything lands in the queue */
	atomic_store(&trw_srv.fail_503, 1000000);
	rw = trw_start(0);
	trw_enqueue(rw, 0, 730);
	remote_write__flush(rw);
	TRW_WAIT(rw, st, st.pending_samples == 0 && st.queued_files == 8);
	remote_write__stop(rw);
	cr_expect_eq(trw_srv.seen[0], 0);

	/* backend back, client restarted on the same queue */
	atomic_store(&trw_srv.fail_503, 0);
	rw = trw_start(0);
	remote_write__stats(rw, &st);
	cr_expect_geq(st.queued_files, 1);
	trw_enqueue(rw, 730, 800);
	TRW_WAIT(rw, st, st.sent_samples == 800 && st.queued_files == 0);
	trw_expect_each_once(800);
	remote_write__stop(rw);
}

Test(remote_write, drops_on_4xx)
{
	struct remote_write_stats st;
	struct remote_write *rw;

	atomic_store(&trw_srv.status, 400);
	rw = trw_start(0);
	trw_enqueue(rw, 0, 200);
	TRW_WAIT(rw, st, st.dropped_samples == 200 && st.queued_files == 0);
	cr_expect_eq(st.sent_samples, 0);
	cr_expect_eq(st.retries, 0);
	cr_expect_eq(st.last_status, 400);
	remote_write__stop(rw);
}

Test(remote_write, queue_is_bounded)
{
	struct remote_write_stats st;
	struct remote_write *rw;

	atomic_store(&trw_srv.fail_503, 1000000);
	rw = trw_start(2048);
	trw_enqueue(rw, 0, 2000);
	remote_write__flush(rw);
	TRW_WAIT(rw, st, st.pending_samples == 0 && st.dropped_samples > 0);
	cr_expect_leq(st.queued_bytes, 2048);
	remote_write__stop(rw);
}
