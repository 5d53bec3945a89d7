// SPDX-License-Identifier: Apache-2.0
/*
 * bench_ws: N concurrent WebSocket clients on loopback, each subscribed to a
 * dashboard-like set of queries at 1 Hz: delivery latency from the sample's
 * tick to the client, the daemon's CPU, and its memory per idle connection.
 *
 * For each N of --clients (default 100,1000,5000,10000) the benchmark starts
 * a fresh daemon ($NOVAMON_BIN run --no-capture --listen 127.0.0.1:P
 * --state-dir D --config D/novamon.yaml --log-level warn, ready when GET
 * /health answers), with RLIMIT_NOFILE raised to its hard limit for both.
 * A feeder thread POSTs 10 VMs' samples (cpu, memory, disk, a network
 * counter) to /api/metrics every second, so every query changes each tick.
 *
 *   1. idle memory: VmRSS of the daemon before and 2 s after N clients
 *      completed the upgrade of /ws/metrics (no subscription yet), with
 *      the feeder paused from 1.2 s before to the end (what the store and
 *      ingest grow by in those seconds, ~90 KB, is not the connections':
 *      a quarter of the figure at 100 clients); bytes_per_idle_conn = the
 *      difference / N;
 *   2. every client subscribes to the same 6 queries (what a dashboard's
 *      widgets ask: a gauge per VM, a rate, a top 3, two aggregates, a
 *      count), with the JSON encoding; once every subscription had its
 *      first (full) message and --warmup seconds more, for
 *      --duration seconds, each data message that is a delta (not the
 *      first, full one) gives latency = receive time - its "t" (the tick's
 *      whole second, CLOCK_REALTIME on both sides of the same host);
 *      p50/p99 of those, and the daemon's CPU (utime + stime of
 *      /proc/PID/stat) over the window in cores.
 *
 * The load generator is one thread with raw sockets and epoll (an lws
 * client would not scale to 10,000 connections in one process) that reads
 * in batches, napping 0.1 ms when nothing is ready (pump()); it shares
 * the machine with the daemon, so on few cores its own CPU is printed too.
 * With two CPUs or more the load generator is pinned to the last CPU and
 * the daemon may run on all of them, as it does when installed (its feed
 * writers pin themselves one per CPU and share each round out in chunks;
 * on a small host one of them shares its CPU with the load generator, and
 * with it the readers' TCP input, which remote clients would not put on
 * the daemon's host). --daemon-cpus K pins the daemon to CPUs 0..K-1
 * instead (--daemon-cpus 1: what one core gives, the figure of earlier
 * runs); --no-pin pins neither.
 *
 * Output: `bench ws_<N>_p50_ms`, `_p99_ms`, `_daemon_cores`,
 * `_bytes_per_idle_conn` lines (with the unit), and a summary table.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_proc.h"

#define SKIP 77
#define MAX_SIZES 8
#define NVMS 10
#define CONNECT_BATCH 256
/* the load generator's nap when nothing is ready (pump()) */
#define NAP_US 100

/* clang-format off */
static const char *const queries[] = {
	"bench_vm_cpu_percent",
	"rate(bench_vm_net_bytes_total[10s])",
	"topk(3, bench_vm_cpu_percent)",
	"sum(bench_vm_memory_bytes)",
	"avg(bench_vm_disk_util)",
	"count(bench_vm_cpu_percent > 50)",
};
/* clang-format on */
#define NQUERIES (sizeof(queries) / sizeof(queries[0]))

static struct {
	int sizes[MAX_SIZES];
	int nsizes;
	double warmup, duration;
	bool keep, no_pin;
	int daemon_cpus;
	const char *novamon;
} opt = {
	.sizes = { 100, 1000, 5000, 10000 },
	.nsizes = 4,
	.warmup = 3,
	.duration = 10,
	.daemon_cpus = 0, /* all */
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* VmRSS of a process in bytes; -1 when unreadable */
static long long proc_rss(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* ------------------------------------------------------------------------ */
/* the daemon */

struct server {
	pid_t pid;
	int port;
	char dir[256];
};

static struct server *live_server;

static int tcp_connect(int port, bool nonblock)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One blocking HTTP/1.1 request; returns the status, 0 on a connection error. */
static int http_request(int port, const char *method, const char *path, const char *body)
{
	char head[512], resp[512];
	size_t blen = body ? strlen(body) : 0;
	struct timeval tv = { .tv_sec = 5 };
	int fd = tcp_connect(port, false), n, status = 0;

	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     method, path, blen);
	if (write(fd, head, (size_t)n) != n || (blen && write(fd, body, blen) != (ssize_t)blen))
		goto out;
	n = (int)read(fd, resp, sizeof(resp) - 1);
	if (n > 12) {
		resp[n] = 0;
		sscanf(resp, "HTTP/1.%*d %d", &status);
	}
out:
	close(fd);
	return status;
}

static void server_stop(struct server *s)
{
	int st;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		for (int i = 0; i < 200; i++) {
			if (waitpid(s->pid, &st, WNOHANG) == s->pid)
				goto reaped;
			usleep(50000);
		}
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &st, 0);
reaped:
		s->pid = 0;
	}
	live_server = NULL;
	if (s->dir[0] && !opt.keep)
		bench_rm_rf(s->dir);
	else if (s->dir[0])
		fprintf(stderr, "kept %s\n", s->dir);
	s->dir[0] = 0;
}

static void on_signal(int sig)
{
	if (live_server && live_server->pid > 0)
		kill(live_server->pid, SIGKILL);
	_exit(128 + sig);
}

static int server_start(struct server *s)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char listen[64], state[300], cfg[300], logp[300];
	double t0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/novamon-bench-ws-XXXXXX", tmp);
	if (!mkdtemp(s->dir)) {
		perror("mkdtemp");
		return -1;
	}
	s->port = bench_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	snprintf(state, sizeof(state), "%s/state", s->dir);
	snprintf(cfg, sizeof(cfg), "%s/novamon.yaml", s->dir);
	snprintf(logp, sizeof(logp), "%s/server.log", s->dir);
	mkdir(state, 0700);
	f = fopen(cfg, "w");
	if (!f) {
		perror(cfg);
		return -1;
	}
	fclose(f);
	s->pid = fork();
	if (s->pid < 0) {
		perror("fork");
		return -1;
	}
	if (s->pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (!opt.no_pin && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
			long k = opt.daemon_cpus ? opt.daemon_cpus : sysconf(_SC_NPROCESSORS_ONLN);
			cpu_set_t set;

			/* not the load generator's pinning, inherited */
			CPU_ZERO(&set);
			for (int i = 0; i < k; i++)
				CPU_SET(i, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		execl(opt.novamon, opt.novamon, "run", "--no-capture", "--listen", listen,
		      "--state-dir", state, "--config", cfg, "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	live_server = s;
	t0 = mono_s();
	while (mono_s() - t0 < 60) {
		int st;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			fprintf(stderr, "novamon exited at start-up, see %s\n", logp);
			s->pid = 0;
			return -1;
		}
		if (http_request(s->port, "GET", "/health", NULL) > 0)
			return 0;
		usleep(100000);
	}
	fprintf(stderr, "novamon not ready after 60 s\n");
	return -1;
}

/* ------------------------------------------------------------------------ */
/* the feeder: 10 VMs' samples every second */

static atomic_bool feeder_quit;
/* no POSTs meanwhile: the idle-memory phase measures connections, not the store */
static atomic_bool feeder_paused;

static void *feeder(void *arg)
{
	int port = *(int *)arg;
	double net = 0;
	char body[16384];

	while (!atomic_load(&feeder_quit)) {
		double now = wall_ms();
		size_t n = 0;

		n += (size_t)snprintf(body + n, sizeof(body) - n, "[");
		for (int vm = 0; vm < NVMS; vm++) {
			double phase = now / 1000.0 + vm;

			net += 1000 + vm;
			n += (size_t)snprintf(
				body + n, sizeof(body) - n,
				"%s{\"name\":\"bench_vm_cpu_percent\",\"value\":%.3f,\"timestamp\":%.0f,"
				"\"tags\":{\"vm\":\"vm-%02d\",\"host\":\"node-1\"}},"
				"{\"name\":\"bench_vm_memory_bytes\",\"value\":%.0f,\"timestamp\":%.0f,"
				"\"tags\":{\"vm\":\"vm-%02d\",\"host\":\"node-1\"}},"
				"{\"name\":\"bench_vm_disk_util\",\"value\":%.3f,\"timestamp\":%.0f,"
				"\"tags\":{\"vm\":\"vm-%02d\",\"host\":\"node-1\"}},"
				"{\"name\":\"bench_vm_net_bytes_total\",\"value\":%.0f,\"timestamp\":%.0f,"
				"\"tags\":{\"vm\":\"vm-%02d\",\"host\":\"node-1\"}}",
				vm ? "," : "", 50 + 45 * __builtin_sin(phase), now, vm,
				1e9 + 1e6 * (double)((long long)phase % 977), now, vm,
				0.5 + 0.4 * __builtin_cos(phase), now, vm, net * (vm + 1), now, vm);
		}
		snprintf(body + n, sizeof(body) - n, "]");
		if (!atomic_load(&feeder_paused))
			http_request(port, "POST", "/api/metrics", body);
		/* half way between ticks, so each tick sees a new value */
		usleep((useconds_t)(1000 - ((long long)wall_ms() + 500) % 1000) * 1000);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* the clients */

enum { C_CONNECTING, C_UPGRADING, C_OPEN, C_DEAD };

struct client {
	int fd;
	int state;
	char *buf;
	size_t len, cap;
	unsigned char pong[140]; /* the answer to the newest ping, not sent yet */
	size_t pong_len;
};

/*
 * Clients with a pong to send. Pongs wait until the load generator has
 * nothing to read (pongs_flush()): sent at once, each a write() whose TCP
 * input on loopback also runs on this CPU, they came in the middle of the
 * round they arrived in, on the CPU of one of the daemon's writers. A
 * client answers only the newest ping it has (RFC 6455 5.5.3 allows it);
 * the daemon waits 10 s for a pong.
 */
static struct client **pongs; /* room for every client: each is in it once at most */
static size_t npongs;

struct lat {
	float *v;
	size_t n, cap;
	bool on;
	uint64_t data, full, errors, closes;
};

static void lat_add(struct lat *l, double ms)
{
	if (!l->on)
		return;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 1 << 16;
		float *p = realloc(l->v, nc * sizeof(*p));

		if (!p)
			return;
		l->v = p;
		l->cap = nc;
	}
	l->v[l->n++] = (float)ms;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* A masked client frame of len bytes (len < 65536). */
static size_t ws_frame(unsigned char *out, int opcode, const void *p, size_t len)
{
	static const unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	size_t h = 2;

	out[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		out[1] = (unsigned char)(0x80 | len);
	} else {
		out[1] = 0x80 | 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		h = 4;
	}
	memcpy(out + h, mask, 4);
	for (size_t i = 0; i < len; i++)
		out[h + 4 + i] = ((const unsigned char *)p)[i] ^ mask[i % 4];
	return h + 4 + len;
}

static void client_close(struct client *c, int ep)
{
	c->pong_len = 0; /* pongs_flush() skips it */
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_DEAD;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/*
 * One text message from the server. A data message starts with
 * {"type":"data","id":..,"seq":..,"t":<ms>,"full":<bool>: a fixed prefix,
 * then "t" and "full" within its first 128 bytes. Parsed by hand, not with
 * strstr()/strtod() over a copy: the load generator shares a CPU with the
 * daemon's writers, and every cycle it spends is one they do not get.
 */
static void on_message(struct lat *l, const char *p, size_t len, double now)
{
	static const char head[] = "{\"type\":\"data\"";
	size_t n = len < 128 ? len : 128;
	const char *t, *end = p + n;
	long long ms = 0;

	if (len < sizeof(head) - 1 || memcmp(p, head, sizeof(head) - 1)) {
		l->errors++;
		return;
	}
	l->data++;
	t = memmem(p, n, ",\"t\":", 5);
	if (!t)
		return;
	for (t += 5; t < end && *t >= '0' && *t <= '9'; t++)
		ms = ms * 10 + (*t - '0');
	if (end - t >= 12 && !memcmp(t, ",\"full\":true", 12)) {
		l->full++;
		return;
	}
	lat_add(l, now - (double)ms);
}

/* Consume whole frames in c->buf. Returns -1 when the connection is done. */
static int parse_frames(struct client *c, struct lat *l, double now)
{
	size_t off = 0;

	while (c->len - off >= 2) {
		unsigned char *b = (unsigned char *)c->buf + off;
		uint64_t n = b[1] & 0x7f;
		size_t h = 2;
		int op = b[0] & 0x0f;

		if (n == 126) {
			if (c->len - off < 4)
				break;
			n = (uint64_t)b[2] << 8 | b[3];
			h = 4;
		} else if (n == 127) {
			if (c->len - off < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | b[2 + i];
			h = 10;
		}
		if (c->len - off < h + n)
			break;
		if (op == 1) {
			on_message(l, (char *)b + h, (size_t)n, now);
		} else if (op == 9 && n < 126) {
			if (!c->pong_len)
				pongs[npongs++] = c;
			c->pong_len = ws_frame(c->pong, 10, b + h, (size_t)n);
		} else if (op == 8) {
			l->closes++;
			return -1;
		}
		off += h + (size_t)n;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return 0;
}

static int client_read(struct client *c, struct lat *l)
{
	for (;;) {
		ssize_t n;

		if (c->cap - c->len < 4096) {
			size_t nc = c->cap ? c->cap * 2 : 8192;
			char *p = realloc(c->buf, nc);

			if (!p)
				return -1;
			c->buf = p;
			c->cap = nc;
		}
		size_t room = c->cap - c->len;

		n = read(c->fd, c->buf + c->len, room);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (!n)
			return -1;
		c->len += (size_t)n;
		if (c->state == C_UPGRADING) {
			char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);

			if (!end)
				continue;
			if (c->len < 12 || memcmp(c->buf + 9, "101", 3))
				return -1;
			end += 4;
			c->len -= (size_t)(end - c->buf);
			memmove(c->buf, end, c->len);
			c->state = C_OPEN;
		}
		if (c->state == C_OPEN && parse_frames(c, l, wall_ms()))
			return -1;
		/*
		 * A short read drained the socket: bytes that come after it
		 * are a new edge for epoll. No read() for EAGAIN, which would
		 * cost the CPU the daemon's writer shares.
		 */
		if ((size_t)n < room)
			return 0;
	}
}

static int client_upgrade(struct client *c, int port)
{
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET /ws/metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 port);

	if (write(c->fd, req, (size_t)n) != n)
		return -1;
	c->state = C_UPGRADING;
	return 0;
}

/* Send the pongs that wait. */
static void pongs_flush(void)
{
	for (size_t i = 0; i < npongs; i++) {
		struct client *c = pongs[i];

		if (c->pong_len && c->fd >= 0) {
			/* when it fails, the daemon closed it: the next read sees that */
			ssize_t w = write(c->fd, c->pong, c->pong_len);

			(void)w;
		}
		c->pong_len = 0;
	}
	npongs = 0;
}

/*
 * Serve events for up to secs seconds (or until done() holds). When nothing
 * is ready the load generator naps NAP_US before it blocks, and so reads a
 * round in batches: waking for each message, a switch in and out of this
 * thread per read, cost the daemon's writer that shares its CPU more than
 * the reads did (p99 at 5,000 clients 18.8-19.3 ms, with the nap
 * 16.3-16.7 ms, three runs each, interleaved). A message that comes during
 * a nap is read up to NAP_US later: counted in its latency.
 */
static void pump(int ep, struct client *cl, struct lat *l, double secs, int port,
		 bool (*done)(void *), void *arg)
{
	static const struct timespec nap = { 0, NAP_US * 1000 };
	struct epoll_event ev[512];
	double end = mono_s() + secs;

	while (mono_s() < end && !(done && done(arg))) {
		int n = epoll_wait(ep, ev, 512, 0);

		if (n == 0) {
			nanosleep(&nap, NULL);
			n = epoll_wait(ep, ev, 512, 0);
		}
		if (n == 0) {
			pongs_flush();
			n = epoll_wait(ep, ev, 512, 50);
		}

		for (int i = 0; i < n; i++) {
			struct client *c = &cl[ev[i].data.u32];

			if (c->state == C_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || client_upgrade(c, port)) {
					client_close(c, ep);
					continue;
				}
				/* edge-triggered: a read message is not polled again */
				struct epoll_event e = { .events = EPOLLIN | EPOLLET,
							 .data.u32 = ev[i].data.u32 };

				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
				continue;
			}
			if (client_read(c, l))
				client_close(c, ep);
		}
	}
}

struct count_arg {
	struct client *cl;
	int n, want;
};

static bool all_open(void *arg)
{
	struct count_arg *a = arg;
	int open = 0, pending = 0;

	for (int i = 0; i < a->n; i++) {
		open += a->cl[i].state == C_OPEN;
		pending += a->cl[i].state == C_CONNECTING || a->cl[i].state == C_UPGRADING;
	}
	return open >= a->want || !pending;
}

struct full_arg {
	struct lat *l;
	uint64_t want;
};

static bool all_full(void *arg)
{
	struct full_arg *a = arg;

	return a->l->full >= a->want;
}

static int count_state(struct client *cl, int n, int state)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += cl[i].state == state;
	return k;
}

struct result {
	int n, open;
	double p50, p99, max, cores, client_cores;
	long long bytes_per_conn;
	uint64_t samples, full, errors, closes;
};

static int run_size(int n, struct result *r)
{
	struct server srv;
	struct lat l = { 0 };
	struct client *cl = NULL;
	unsigned char subs[NQUERIES * 200];
	size_t subs_len = 0;
	pthread_t feed;
	long long rss0, rss1;
	double cpu0, cpu1, scpu0, scpu1, t0;
	uint64_t full0;
	int ep = -1, ret = -1, started = 0;

	memset(r, 0, sizeof(*r));
	r->n = n;
	if (server_start(&srv))
		goto out;
	atomic_store(&feeder_quit, false);
	if (pthread_create(&feed, NULL, feeder, &srv.port))
		goto out;
	started = 1;
	sleep(3); /* samples in the store, the daemon settled */
	atomic_store(&feeder_paused, true);
	usleep(1200 * 1000); /* a POST in flight, and the tick that takes it in */

	ep = epoll_create1(EPOLL_CLOEXEC);
	cl = calloc((size_t)n, sizeof(*cl));
	npongs = 0;
	pongs = calloc((size_t)n, sizeof(*pongs));
	if (ep < 0 || !cl || !pongs)
		goto out;
	rss0 = proc_rss(srv.pid);
	for (int i = 0; i < n; i++) {
		struct count_arg a = { cl, i, i };

		cl[i].fd = tcp_connect(srv.port, true);
		if (cl[i].fd < 0) {
			cl[i].state = C_DEAD;
			continue;
		}
		struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (uint32_t)i };

		epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &e);
		/* at most CONNECT_BATCH upgrades in flight */
		if (i % CONNECT_BATCH == CONNECT_BATCH - 1) {
			a.want = i + 1;
			a.n = i + 1;
			pump(ep, cl, &l, 30, srv.port, all_open, &a);
		}
	}
	{
		struct count_arg a = { cl, n, n };

		pump(ep, cl, &l, 60, srv.port, all_open, &a);
	}
	r->open = count_state(cl, n, C_OPEN);
	pump(ep, cl, &l, 2, srv.port, NULL, NULL);
	rss1 = proc_rss(srv.pid);
	atomic_store(&feeder_paused, false);
	r->bytes_per_conn = r->open ? (rss1 - rss0) / r->open : -1;
	printf("# N=%d: %d upgraded, daemon RSS %.1f -> %.1f MiB\n", n, r->open, rss0 / 1048576.0,
	       rss1 / 1048576.0);
	fflush(stdout);

	for (size_t q = 0; q < NQUERIES; q++) {
		char msg[200];
		int k = snprintf(msg, sizeof(msg),
				 "{\"type\":\"subscribe\",\"id\":\"w%zu\",\"query\":\"%s\"}", q,
				 queries[q]);

		subs_len += ws_frame(subs + subs_len, 1, msg, (size_t)k);
	}
	for (int i = 0; i < n; i++)
		if (cl[i].state == C_OPEN && write(cl[i].fd, subs, subs_len) != (ssize_t)subs_len)
			client_close(&cl[i], ep);
	/* every subscription's first (full) message, then the warm-up */
	{
		struct full_arg a = { &l, (uint64_t)r->open * NQUERIES };

		t0 = mono_s();
		pump(ep, cl, &l, 120, srv.port, all_full, &a);
		printf("# N=%d: %llu of %llu subscriptions had their full state after %.1f s\n", n,
		       (unsigned long long)l.full, (unsigned long long)a.want, mono_s() - t0);
	}
	pump(ep, cl, &l, opt.warmup, srv.port, NULL, NULL);

	l.on = true;
	full0 = l.full;
	cpu0 = bench_proc_cpu_s(srv.pid);
	scpu0 = bench_self_cpu_s();
	t0 = mono_s();
	pump(ep, cl, &l, opt.duration, srv.port, NULL, NULL);
	cpu1 = bench_proc_cpu_s(srv.pid);
	scpu1 = bench_self_cpu_s();
	r->cores = (cpu1 - cpu0) / (mono_s() - t0);
	r->client_cores = (scpu1 - scpu0) / (mono_s() - t0);
	l.on = false;

	if (l.n) {
		qsort(l.v, l.n, sizeof(*l.v), cmp_float);
		r->p50 = l.v[l.n / 2];
		r->p99 = l.v[(size_t)(l.n * 0.99)];
		r->max = l.v[l.n - 1];
	}
	r->samples = l.n;
	r->full = l.full - full0; /* full states while measuring: a client fell behind */
	r->errors = l.errors;
	r->closes = l.closes;
	ret = 0;
out:
	if (started) {
		atomic_store(&feeder_quit, true);
		pthread_join(feed, NULL);
	}
	for (int i = 0; cl && i < n; i++)
		client_close(&cl[i], ep);
	free(cl);
	free(pongs);
	pongs = NULL;
	free(l.v);
	if (ep >= 0)
		close(ep);
	server_stop(&srv);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench_ws [--clients N,N,...] [--warmup S] [--duration S] [--keep] [--no-pin]\n"
		"                [--daemon-cpus K]\n"
		"  --clients      connection counts, one fresh daemon each (100,1000,5000,10000)\n"
		"  --warmup S     seconds between the first full states and the measure (3)\n"
		"  --duration S   seconds measured per count (10)\n"
		"  --keep         keep the state directory and the daemon's log\n"
		"  --daemon-cpus K  pin the daemon to CPUs 0..K-1 (default: all; the load\n"
		"                 generator is pinned to the last CPU either way)\n"
		"  --no-pin       pin neither\n"
		"  NOVAMON_BIN: the daemon (default build/novamon)\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "clients", required_argument, NULL, 'c' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-pin", no_argument, NULL, 'p' },
		{ "daemon-cpus", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct result res[MAX_SIZES];
	struct rlimit rl;
	int c, fail = 0;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'c': {
			char *s = optarg, *tok;

			opt.nsizes = 0;
			while ((tok = strsep(&s, ",")) && opt.nsizes < MAX_SIZES)
				opt.sizes[opt.nsizes++] = atoi(tok);
			break;
		}
		case 'w':
			opt.warmup = atof(optarg);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case 'k':
			opt.keep = true;
			break;
		case 'p':
			opt.no_pin = true;
			break;
		case 'C':
			opt.daemon_cpus = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	opt.novamon = getenv("NOVAMON_BIN") ? getenv("NOVAMON_BIN") : "build/novamon";
	if (access(opt.novamon, X_OK)) {
		fprintf(stderr, "novamon not found at %s (set NOVAMON_BIN)\n", opt.novamon);
		return 1;
	}
	if (!opt.no_pin && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
		long last = sysconf(_SC_NPROCESSORS_ONLN) - 1;
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET((int)last, &set);
		if (opt.daemon_cpus < 0 || opt.daemon_cpus > last + 1)
			opt.daemon_cpus = 0;
		if (!sched_setaffinity(0, sizeof(set), &set))
			printf("# daemon on CPU 0..%ld, load generator pinned to CPU %ld\n",
			       opt.daemon_cpus ? opt.daemon_cpus - 1 : last, last);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* both the daemon (inherited) and this process hold one fd per client */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		printf("# RLIMIT_NOFILE %llu\n", (unsigned long long)rl.rlim_cur);
	}
	printf("# %d queries per client, %d VMs fed each second, warm-up %.0f s, measured %.0f s\n",
	       (int)NQUERIES, NVMS, opt.warmup, opt.duration);

	for (int i = 0; i < opt.nsizes; i++) {
		struct result *r = &res[i];
		int n = opt.sizes[i];

		if (n <= 0 || (rlim_t)n + 64 > rl.rlim_cur) {
			fprintf(stderr, "N=%d: RLIMIT_NOFILE %llu is too low, skipped\n", n,
				(unsigned long long)rl.rlim_cur);
			r->n = -n;
			continue;
		}
		if (run_size(n, r)) {
			fprintf(stderr, "N=%d: the run failed\n", n);
			fail = 1;
			r->n = -n;
			continue;
		}
		printf("bench ws_%d_p50_ms %.2f ms\n", n, r->p50);
		printf("bench ws_%d_p99_ms %.2f ms\n", n, r->p99);
		printf("bench ws_%d_daemon_cores %.3f cores\n", n, r->cores);
		printf("bench ws_%d_bytes_per_idle_conn %lld bytes\n", n, r->bytes_per_conn);
		printf("# N=%d: %d open, %llu deltas measured (%llu full states, %llu other messages), max %.1f ms, "
		       "closes %llu, load generator %.2f cores\n",
		       n, r->open, (unsigned long long)r->samples, (unsigned long long)r->full,
		       (unsigned long long)r->errors, r->max, (unsigned long long)r->closes,
		       r->client_cores);
		fflush(stdout);
	}

	printf("\n%8s %8s %9s %9s %9s %8s %12s\n", "clients", "open", "p50 ms", "p99 ms", "max ms",
	       "cores", "B/idle conn");
	for (int i = 0; i < opt.nsizes; i++) {
		const struct result *r = &res[i];

		if (r->n <= 0)
			continue;
		printf("%8d %8d %9.2f %9.2f %9.1f %8.3f %12lld\n", r->n, r->open, r->p50, r->p99,
		       r->max, r->cores, r->bytes_per_conn);
	}
	printf("targets: 5000 clients p99 < 20 ms under 1 core; <= 8192 B per idle connection\n");
	return fail;
}
