// SPDX-License-Identifier: Apache-2.0
/*
 * bench_ingest_query: remote-write ingest throughput over HTTP and query_range
 * latency, novamon against Debian's Prometheus in the same run.
 *
 * The benchmark starts and stops both servers itself, each on a free 127.0.0.1
 * port with a temporary storage directory, one at a time (the machine has few
 * cores: the other server must not steal them):
 *
 *   novamon:    $NOVAMON_BIN run --no-capture --listen 127.0.0.1:P --state-dir D
 *               --config D/novamon.yaml (empty) --log-level warn;  ready: GET /health answers
 *   prometheus: $PROMETHEUS_BIN (or prometheus on PATH) --web.enable-remote-write-receiver
 *               --storage.tsdb.path D/data ...;  ready: GET /-/ready is 200
 *
 * Phase 1, ingest (a fresh instance of each server): remote-write 1.0 requests
 * (protobuf-c + snappy, the generated prompb code of api/) are encoded before the
 * clock starts. Each of --connections connections owns a disjoint slice of the
 * --series series and sends its requests one after the other, so every series'
 * samples arrive in timestamp order; a request holds --samples-per-request
 * samples: a chunk of the slice's series times consecutive 1-s timestamps. The
 * timestamps start one hour in the past (Prometheus' head accepts anything
 * within an hour of its newest sample, and the run stays in order) and advance
 * 1 s per round. The connections send for --duration seconds (or until the
 * pre-encoded pool, sized for --max-rate samples/s, runs out); only samples of
 * 2xx-acknowledged requests count. The server's CPU seconds (utime + stime of
 * /proc/PID/stat) over the run give the rate per core; the client's own CPU
 * seconds are printed too, to show it is not the limit.
 *
 * Phase 2, query (a fresh instance of each server): 1 h at 1 s of 1,000 series
 * of the metric bench_q (counters), loaded through remote-write with timestamps
 * [now - 1 h, now) in order, faster than real time; then query_range over that
 * hour at step 1 s: sum(rate), the raw selector, avg_over_time, topk; one
 * warm-up then --reps repetitions each; median and p90 of the time to the last
 * byte of the answer.
 *
 * Output: `bench <name> <value> <unit>` lines and a summary table. Exit 77
 * (skipped) when prometheus is not installed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_proc.h"
#include "remote.pb-c.h"
#include "types.pb-c.h"

#define SKIP 77
#define MAX_CONNS 64
#define QUERY_SERIES 1000
#define QUERY_SECONDS 3600

static struct {
	double duration;
	int series;
	int conns;
	int spr;
	int reps;
	double max_rate;
	double query_budget;
	int query_series;
	bool no_query, no_ingest, keep;
	const char *novamon, *prometheus;
} opt = {
	.duration = 10,
	.series = 10000,
	.conns = 4,
	.spr = 5000,
	.reps = 5,
	.max_rate = 4e6,
	.query_budget = 15,
	.query_series = QUERY_SERIES,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* servers */

enum kind { NOVAMON, PROMETHEUS };
static const char *kind_name[] = { "novamon", "prometheus" };

struct server {
	enum kind kind;
	pid_t pid;
	int port;
	char dir[256];
	char url[64];
};

static struct server *live_server;

static size_t discard_cb(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static long http_get_status(const char *url, double timeout)
{
	CURL *c = curl_easy_init();
	long code = 0;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return code;
}

static void log_tail(const struct server *s)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "tail -n 20 %s/server.log >&2", s->dir);
	if (system(cmd) < 0)
		perror("system");
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

static int server_start(struct server *s, enum kind kind)
{
	char a[6][512], cfg[300], logp[300];
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int fd;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	snprintf(s->dir, sizeof(s->dir), "%s/novamon-bench-%s-XXXXXX", tmp, kind_name[kind]);
	if (!mkdtemp(s->dir)) {
		perror("mkdtemp");
		return -1;
	}
	s->port = bench_free_port();
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	snprintf(logp, sizeof(logp), "%s/server.log", s->dir);
	if (kind == NOVAMON) {
		snprintf(cfg, sizeof(cfg), "%s/novamon.yaml", s->dir);
		snprintf(a[0], sizeof(a[0]), "127.0.0.1:%d", s->port);
		snprintf(a[1], sizeof(a[1]), "%s/state", s->dir);
	} else {
		snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", s->dir);
		snprintf(a[0], sizeof(a[0]), "--config.file=%s", cfg);
		snprintf(a[1], sizeof(a[1]), "--storage.tsdb.path=%s/data", s->dir);
		snprintf(a[2], sizeof(a[2]), "--web.listen-address=127.0.0.1:%d", s->port);
	}
	f = fopen(cfg, "w");
	if (!f) {
		perror(cfg);
		return -1;
	}
	if (kind == PROMETHEUS)
		fputs("global:\n  scrape_interval: 15s\nscrape_configs: []\n", f);
	fclose(f);
	if (kind == NOVAMON)
		mkdir(a[1], 0700);

	s->pid = fork();
	if (s->pid < 0) {
		perror("fork");
		return -1;
	}
	if (s->pid == 0) {
		fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (chdir(s->dir))
			_exit(127);
		if (kind == NOVAMON)
			execl(opt.novamon, opt.novamon, "run", "--no-capture", "--listen", a[0],
			      "--state-dir", a[1], "--config", cfg, "--log-level", "warn",
			      (char *)NULL);
		else
			execl(opt.prometheus, opt.prometheus, a[0], a[1], a[2],
			      "--web.enable-remote-write-receiver", "--log.level=warn",
			      (char *)NULL);
		perror("exec");
		_exit(127);
	}
	live_server = s;

	char url[128];
	double t0 = now_s();

	snprintf(url, sizeof(url), "%s%s", s->url, kind == NOVAMON ? "/health" : "/-/ready");
	while (now_s() - t0 < 60) {
		int st;
		long code;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			fprintf(stderr, "%s exited at start-up:\n", kind_name[kind]);
			s->pid = 0;
			log_tail(s);
			return -1;
		}
		code = http_get_status(url, 1.0);
		if ((kind == NOVAMON && code > 0) || code == 200) {
			printf("# %s ready on %s (pid %d) after %.2f s\n", kind_name[kind], s->url,
			       (int)s->pid, now_s() - t0);
			fflush(stdout);
			return 0;
		}
		usleep(100000);
	}
	fprintf(stderr, "%s not ready after 60 s\n", kind_name[kind]);
	log_tail(s);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* request encoding */

struct body {
	char *buf;
	size_t len;
	uint32_t nsamples;
};

struct conn {
	/* encoding input */
	const char *metric;
	int first_series, nseries; /* this connection's slice */
	int64_t t0_ms;
	size_t max_requests;
	double *value; /* running counter per series of the slice */
	/* encoded pool */
	struct body *bodies;
	size_t nbodies;
	/* results */
	const char *url;
	double deadline; /* 0: send the whole pool */
	uint64_t acked, failed_samples, requests, failed_requests, retried;
	int retries_left; /* resends allowed (query data load only) */
	double t_last;
	long first_bad_code;
	char first_bad_body[256];
	size_t err_len;
};

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352d;
	x ^= x >> 15;
	x *= 0x846ca68b;
	x ^= x >> 16;
	return x;
}

/* Encode c->max_requests requests of the slice, rounds of chunk x k timestamps. */
static void *encode_conn(void *arg)
{
	struct conn *c = arg;
	int chunk = c->nseries < opt.spr ? c->nseries : opt.spr;
	int k = opt.spr / chunk > 0 ? opt.spr / chunk : 1;
	int nchunks = (c->nseries + chunk - 1) / chunk;
	Prometheus__TimeSeries *ts = calloc(chunk, sizeof(*ts));
	Prometheus__TimeSeries **tsp = calloc(chunk, sizeof(*tsp));
	Prometheus__Label *lab = calloc((size_t)chunk * 4, sizeof(*lab));
	Prometheus__Label **labp = calloc((size_t)chunk * 4, sizeof(*labp));
	Prometheus__Sample *sm = calloc((size_t)chunk * k, sizeof(*sm));
	Prometheus__Sample **smp = calloc((size_t)chunk * k, sizeof(*smp));
	char(*inst)[24] = calloc(chunk, 24);
	char(*region)[8] = calloc(chunk, 8);
	size_t rawcap = 0;
	uint8_t *raw = NULL;
	int64_t t = c->t0_ms;

	c->bodies = calloc(c->max_requests, sizeof(*c->bodies));
	c->value = calloc(c->nseries, sizeof(double));
	for (int i = 0; i < c->nseries; i++)
		c->value[i] = hash32(c->first_series + i) % 1000;
	for (size_t r = 0; r < c->max_requests;) {
		for (int ch = 0; ch < nchunks && r < c->max_requests; ch++, r++) {
			int s0 = ch * chunk, n = c->nseries - s0 < chunk ? c->nseries - s0 : chunk;
			Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
			size_t ns = 0;

			for (int i = 0; i < n; i++) {
				int sid = c->first_series + s0 + i;
				Prometheus__Label *l = &lab[i * 4];

				snprintf(inst[i], sizeof(inst[i]), "host-%05d:9100", sid);
				snprintf(region[i], sizeof(region[i]), "r%d", sid % 8);
				for (int j = 0; j < 4; j++) {
					prometheus__label__init(&l[j]);
					labp[i * 4 + j] = &l[j];
				}
				l[0].name = "__name__", l[0].value = (char *)c->metric;
				l[1].name = "instance", l[1].value = inst[i];
				l[2].name = "job", l[2].value = "node";
				l[3].name = "region", l[3].value = region[i];
				prometheus__time_series__init(&ts[i]);
				ts[i].n_labels = 4;
				ts[i].labels = &labp[i * 4];
				ts[i].samples = &smp[ns];
				for (int j = 0; j < k; j++, ns++) {
					double *v = &c->value[s0 + i];

					/* a counter with irregular increments, mostly integers */
					*v += (hash32((uint32_t)(sid * 7919) ^
						      (uint32_t)((t / 1000) + j)) %
					       64) *
					      ((sid & 1) ? 1.0 : 0.25);
					prometheus__sample__init(&sm[ns]);
					sm[ns].timestamp = t + (int64_t)j * 1000;
					sm[ns].value = *v;
					smp[ns] = &sm[ns];
				}
				ts[i].n_samples = k;
				tsp[i] = &ts[i];
			}
			wr.n_timeseries = n;
			wr.timeseries = tsp;

			size_t plen = prometheus__write_request__get_packed_size(&wr);
			if (plen > rawcap) {
				rawcap = plen * 2;
				raw = realloc(raw, rawcap);
			}
			prometheus__write_request__pack(&wr, raw);
			size_t clen = snappy_max_compressed_length(plen);
			struct body *b = &c->bodies[r];

			b->buf = malloc(clen);
			if (snappy_compress((char *)raw, plen, b->buf, &clen) != SNAPPY_OK) {
				fprintf(stderr, "snappy_compress failed\n");
				exit(1);
			}
			b->buf = realloc(b->buf, clen);
			b->len = clen;
			b->nsamples = ns;
			c->nbodies = r + 1;
		}
		t += (int64_t)k * 1000;
	}
	free(raw), free(ts), free(tsp), free(lab), free(labp), free(sm), free(smp), free(inst),
		free(region), free(c->value);
	c->value = NULL;
	return NULL;
}

static size_t err_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct conn *c = ud;
	size_t len = sz * n, room = sizeof(c->first_bad_body) - 1 - c->err_len;

	if (room > len)
		room = len;
	memcpy(c->first_bad_body + c->err_len, p, room);
	c->err_len += room;
	c->first_bad_body[c->err_len] = 0;
	return len;
}

static void *send_conn(void *arg)
{
	struct conn *c = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hd = NULL;
	char url[128];

	snprintf(url, sizeof(url), "%s/api/v1/write", c->url);
	hd = curl_slist_append(hd, "Content-Encoding: snappy");
	hd = curl_slist_append(hd, "Content-Type: application/x-protobuf");
	hd = curl_slist_append(hd, "X-Prometheus-Remote-Write-Version: 0.1.0");
	hd = curl_slist_append(hd, "User-Agent: novamon-bench");
	hd = curl_slist_append(hd, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, err_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	for (size_t i = 0; i < c->nbodies; i++) {
		long code = 0;
		CURLcode rc;

		if (c->deadline && now_s() >= c->deadline)
			break;
		c->err_len = 0;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->bodies[i].buf);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->bodies[i].len);
		rc = curl_easy_perform(h);
		if (rc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		c->requests++;
		/* loading (not timed as throughput): resend a refused request, so both
		 * servers hold the same data; it stored nothing when it was a 400 for a
		 * corrupt body */
		if ((code < 200 || code >= 300) && c->retries_left > 0) {
			c->retries_left--;
			c->retried++;
			if (!c->first_bad_code) {
				c->first_bad_code = code ? code : -(long)rc;
				if (!code)
					snprintf(c->first_bad_body, sizeof(c->first_bad_body), "%s",
						 curl_easy_strerror(rc));
			}
			i--;
			continue;
		}
		c->t_last = now_s();
		if (code >= 200 && code < 300) {
			c->acked += c->bodies[i].nsamples;
		} else {
			c->failed_requests++;
			c->failed_samples += c->bodies[i].nsamples;
			if (getenv("BENCH_DEBUG")) {
				char fn[128];
				FILE *df;

				snprintf(fn, sizeof(fn), "/tmp/bench-failed-%zu.bin", i);
				df = fopen(fn, "w");
				if (df) {
					fwrite(c->bodies[i].buf, 1, c->bodies[i].len, df);
					fclose(df);
				}
				fprintf(stderr, "# failed request %zu: %zu bytes, code %ld\n", i,
					c->bodies[i].len, code);
			}
			if (!c->first_bad_code) {
				c->first_bad_code = code ? code : -(long)rc;
				if (!code)
					snprintf(c->first_bad_body, sizeof(c->first_bad_body), "%s",
						 curl_easy_strerror(rc));
			}
		}
	}
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return NULL;
}

struct load_result {
	uint64_t acked, failed, requests, failed_requests, retried, pool_samples;
	double elapsed, server_cpu, client_cpu, bytes;
	bool pool_exhausted;
};

/*
 * Encode (untimed) then send: nseries series of `metric` split across the
 * connections, `rounds` 1-s timestamps from t0_ms, for `duration` s (0: all).
 */
static int run_load(const struct server *s, const char *metric, int nseries, int64_t t0_ms,
		    uint64_t max_samples, double duration, struct load_result *res)
{
	struct conn cs[MAX_CONNS];
	pthread_t th[MAX_CONNS];
	int nc = opt.conns < nseries ? opt.conns : nseries;
	double t_start, cpu0, scpu0;

	memset(cs, 0, sizeof(cs));
	memset(res, 0, sizeof(*res));
	for (int i = 0; i < nc; i++) {
		struct conn *c = &cs[i];
		int per = nseries / nc, extra = nseries % nc;
		int chunk;

		c->metric = metric;
		c->first_series = i * per + (i < extra ? i : extra);
		c->nseries = per + (i < extra);
		chunk = c->nseries < opt.spr ? c->nseries : opt.spr;
		c->t0_ms = t0_ms;
		/* samples per request = chunk * k; requests to reach this slice's share */
		{
			int k = opt.spr / chunk > 0 ? opt.spr / chunk : 1;
			uint64_t share = max_samples * c->nseries / nseries;
			uint64_t per_req = (uint64_t)chunk * k;

			c->max_requests = (share + per_req - 1) / per_req;
		}
		c->url = s->url;
		c->retries_left = duration > 0 ? 0 : 1000;
		pthread_create(&th[i], NULL, encode_conn, c);
	}
	for (int i = 0; i < nc; i++) {
		pthread_join(th[i], NULL);
		for (size_t j = 0; j < cs[i].nbodies; j++) {
			res->bytes += cs[i].bodies[j].len;
			res->pool_samples += cs[i].bodies[j].nsamples;
		}
	}

	cpu0 = bench_self_cpu_s();
	scpu0 = bench_proc_cpu_s(s->pid);
	t_start = now_s();
	for (int i = 0; i < nc; i++) {
		cs[i].deadline = duration > 0 ? t_start + duration : 0;
		pthread_create(&th[i], NULL, send_conn, &cs[i]);
	}
	double t_end = t_start;
	for (int i = 0; i < nc; i++) {
		pthread_join(th[i], NULL);
		if (cs[i].t_last > t_end)
			t_end = cs[i].t_last;
	}
	res->server_cpu = bench_proc_cpu_s(s->pid) - scpu0;
	res->client_cpu = bench_self_cpu_s() - cpu0;
	res->elapsed = t_end - t_start;
	for (int i = 0; i < nc; i++) {
		struct conn *c = &cs[i];

		res->acked += c->acked;
		res->failed += c->failed_samples;
		res->requests += c->requests;
		res->failed_requests += c->failed_requests;
		res->retried += c->retried;
		if (c->requests == c->nbodies && duration > 0)
			res->pool_exhausted = true;
		if (c->first_bad_code)
			fprintf(stderr, "# %s conn %d: first failed request: %ld %s\n",
				kind_name[s->kind], i, c->first_bad_code, c->first_bad_body);
		for (size_t j = 0; j < c->nbodies; j++)
			free(c->bodies[j].buf);
		free(c->bodies);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* queries */

struct qbody {
	size_t bytes;
	size_t nmetric;
	char head[128];
	size_t head_len;
	char carry[16];
	size_t carry_len;
};

static size_t q_cb(char *p, size_t sz, size_t n, void *ud)
{
	static const char pat[] = "\"metric\":";
	struct qbody *q = ud;
	size_t len = sz * n;

	if (q->head_len < sizeof(q->head) - 1) {
		size_t room = sizeof(q->head) - 1 - q->head_len;

		if (room > len)
			room = len;
		memcpy(q->head + q->head_len, p, room);
		q->head_len += room;
		q->head[q->head_len] = 0;
	}
	/* count "metric": across chunk boundaries */
	char tmp[32];
	size_t pl = sizeof(pat) - 1, tl = q->carry_len;
	memcpy(tmp, q->carry, tl);
	memcpy(tmp + tl, p, len < pl - 1 ? len : pl - 1);
	tl += len < pl - 1 ? len : pl - 1;
	if (memmem(tmp, tl, pat, pl))
		q->nmetric++;
	for (const char *s = p, *e = p + len; (s = memmem(s, e - s, pat, pl)); s += pl)
		q->nmetric++;
	q->carry_len = len >= pl - 1 ? pl - 1 : len;
	memcpy(q->carry, p + len - q->carry_len, q->carry_len);
	q->bytes += len;
	return len;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct qstat {
	double median, p90, min;
	size_t bytes, nseries;
	int reps;
	bool ok;
};

static void run_query(const struct server *s, const char *expr, int64_t start_ms, int64_t end_ms,
		      struct qstat *out)
{
	CURL *h = curl_easy_init();
	char *esc = curl_easy_escape(h, expr, 0), url[1024];
	double *lat = calloc(opt.reps, sizeof(double));

	snprintf(url, sizeof(url), "%s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=1",
		 s->url, esc, start_ms / 1e3, end_ms / 1e3);
	curl_free(esc);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, q_cb);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL); /* no gzip: the same bytes from both */
	memset(out, 0, sizeof(*out));
	out->ok = true;
	double t_begin = now_s();
	int done = 0;

	for (int r = -1; r < opt.reps; r++) { /* r = -1: warm-up */
		struct qbody q = { 0 };

		/* a slow query: at least 3 timed repetitions, then stop at the budget */
		if (r >= 3 && now_s() - t_begin > opt.query_budget)
			break;
		long code = 0;
		double t0 = now_s();

		curl_easy_setopt(h, CURLOPT_WRITEDATA, &q);
		if (curl_easy_perform(h) == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		double dt = now_s() - t0;
		if (code != 200 || !strstr(q.head, "\"success\"")) {
			fprintf(stderr, "# %s: query %s failed: %ld %s\n", kind_name[s->kind], expr,
				code, q.head);
			out->ok = false;
			break;
		}
		/* a warm-up of over 5 s counts as the first repetition: nothing is cached
		 * across requests in either server, and it keeps the run short */
		if (r >= 0 || dt > 5.0)
			lat[done++] = dt;
		if (r < 0 && dt > 5.0)
			r++;
		out->bytes = q.bytes;
		out->nseries = q.nmetric;
	}
	out->reps = done;
	if (out->ok && done > 0) {
		qsort(lat, done, sizeof(double), cmp_double);
		out->min = lat[0];
		out->median = done % 2 ? lat[done / 2] : (lat[done / 2 - 1] + lat[done / 2]) / 2;
		out->p90 = lat[(int)ceil(0.9 * done) - 1];
	}
	free(lat);
	curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------------ */

static const struct {
	const char *name, *expr;
} queries[] = {
	{ "sum_rate", "sum(rate(bench_q[1m]))" },
	{ "raw", "bench_q{job=\"node\"}" },
	{ "avg_over_time", "avg_over_time(bench_q{job=\"node\"}[1m])" },
	{ "topk5", "topk(5, rate(bench_q[1m]))" },
};
#define NQ (sizeof(queries) / sizeof(queries[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench_ingest_query [OPTIONS]\n"
		"\n"
		"Remote-write ingest throughput over HTTP and query_range latency of novamon and of\n"
		"Prometheus (started by the benchmark, one at a time, on free 127.0.0.1 ports with\n"
		"temporary storage). Prints `bench <name> <value> <unit>` lines and a summary.\n"
		"\n"
		"Options:\n"
		"  -d, --duration S          ingest: seconds of sending per server (default %.0f)\n"
		"  -s, --series N            ingest: number of series (default %d)\n"
		"  -c, --connections N       concurrent HTTP connections (default %d, max %d)\n"
		"  -b, --samples-per-request N  samples per remote-write request (default %d)\n"
		"      --max-rate R          ingest: the pre-encoded pool holds duration x R samples\n"
		"                            (default %.0f); the run stops early if it runs out\n"
		"  -r, --reps N              query: timed repetitions per query, after 1 warm-up (default %d)\n"
		"      --query-budget S      query: stop repeating a query after S seconds once 3\n"
		"                            repetitions are done (default %.0f)\n"
		"      --query-series N      query: series loaded (1 h at 1 s each, default %d)\n"
		"      --no-ingest           skip the ingest phase\n"
		"      --no-query            skip the query phase\n"
		"      --keep                keep the servers' temporary directories (logs)\n"
		"  -h, --help                this help\n"
		"\n"
		"Environment: NOVAMON_BIN (default build/novamon), PROMETHEUS_BIN (default prometheus\n"
		"on PATH). Exit 77 (skipped) when prometheus is not installed.\n",
		opt.duration, opt.series, opt.conns, MAX_CONNS, opt.spr, opt.max_rate, opt.reps,
		opt.query_budget, opt.query_series);
}

static const char *find_prometheus(void)
{
	static char buf[4096];
	const char *e = getenv("PROMETHEUS_BIN"), *path = getenv("PATH");

	if (e && *e)
		return access(e, X_OK) ? NULL : e;
	if (!path)
		path = "/usr/bin:/bin";
	for (const char *p = path; *p;) {
		const char *q = strchr(p, ':');
		size_t n = q ? (size_t)(q - p) : strlen(p);

		snprintf(buf, sizeof(buf), "%.*s/prometheus", (int)n, p);
		if (n && !access(buf, X_OK))
			return buf;
		p += n + (q ? 1 : 0);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, 0, 'd' },
		{ "series", required_argument, 0, 's' },
		{ "connections", required_argument, 0, 'c' },
		{ "samples-per-request", required_argument, 0, 'b' },
		{ "max-rate", required_argument, 0, 'M' },
		{ "reps", required_argument, 0, 'r' },
		{ "query-budget", required_argument, 0, 'B' },
		{ "query-series", required_argument, 0, 'Q' },
		{ "no-ingest", no_argument, 0, 'I' },
		{ "no-query", no_argument, 0, 'N' },
		{ "keep", no_argument, 0, 'K' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	struct load_result ing[2] = { 0 }, ld[2] = { 0 };
	struct qstat qs[2][NQ];
	bool have_ing[2] = { 0 }, have_q[2] = { 0 };
	int o;

	memset(qs, 0, sizeof(qs));
	while ((o = getopt_long(argc, argv, "d:s:c:b:r:h", lo, NULL)) != -1) {
		switch (o) {
		case 'd':
			opt.duration = atof(optarg);
			break;
		case 's':
			opt.series = atoi(optarg);
			break;
		case 'c':
			opt.conns = atoi(optarg);
			break;
		case 'b':
			opt.spr = atoi(optarg);
			break;
		case 'M':
			opt.max_rate = atof(optarg);
			break;
		case 'r':
			opt.reps = atoi(optarg);
			break;
		case 'B':
			opt.query_budget = atof(optarg);
			break;
		case 'Q':
			opt.query_series = atoi(optarg);
			break;
		case 'I':
			opt.no_ingest = true;
			break;
		case 'N':
			opt.no_query = true;
			break;
		case 'K':
			opt.keep = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (opt.duration <= 0 || opt.series < 1 || opt.conns < 1 || opt.conns > MAX_CONNS ||
	    opt.spr < 1 || opt.reps < 1 || opt.query_series < 1 || opt.max_rate <= 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	opt.prometheus = find_prometheus();
	if (opt.prometheus)
		opt.prometheus = realpath(opt.prometheus, NULL);
	if (!opt.prometheus) {
		printf("SKIP: prometheus is not installed (Debian package `prometheus`, or set PROMETHEUS_BIN)\n");
		return SKIP;
	}
	opt.novamon = getenv("NOVAMON_BIN") ? getenv("NOVAMON_BIN") : "build/novamon";
	if (access(opt.novamon, X_OK) || !(opt.novamon = realpath(opt.novamon, NULL))) {
		fprintf(stderr, "novamon binary not found at %s (set NOVAMON_BIN)\n", opt.novamon);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	printf("# bench_ingest_query: %ld CPUs online; novamon %s, prometheus %s\n", ncpu,
	       opt.novamon, opt.prometheus);
	printf("# ingest: %d series, %d connections, %d samples/request, %.0f s per server\n",
	       opt.series, opt.conns, opt.spr, opt.duration);

	for (int k = 0; k < 2 && !opt.no_ingest; k++) {
		struct server s;
		/* whole seconds, one hour back: the run advances 1 s per round from there */
		int64_t t0 = (wall_ms() / 1000 - 3600) * 1000;
		uint64_t max_samples = (uint64_t)(opt.duration * opt.max_rate);
		uint64_t max_rounds = max_samples / opt.series;

		if (max_rounds > 3500) { /* stay within the hour before now (Prometheus' window) */
			max_rounds = 3500;
			max_samples = max_rounds * opt.series;
		}
		if (server_start(&s, k)) {
			server_stop(&s);
			return 1;
		}
		run_load(&s, "bench_ingest", opt.series, t0, max_samples, opt.duration, &ing[k]);
		server_stop(&s);
		have_ing[k] = true;
		struct load_result *r = &ing[k];
		printf("# %s ingest: %llu samples acked in %.2f s (%llu requests, %llu failed, %llu samples "
		       "not acked); pool %.1f bytes/sample%s; server CPU %.2f s, client CPU %.2f s\n",
		       kind_name[k], (unsigned long long)r->acked, r->elapsed,
		       (unsigned long long)r->requests, (unsigned long long)r->failed_requests,
		       (unsigned long long)r->failed, r->bytes / r->pool_samples,
		       r->pool_exhausted ? " (POOL EXHAUSTED: raise --max-rate)" : "",
		       r->server_cpu, r->client_cpu);
		printf("bench ingest_rw_%s %.0f samples/s\n", kind_name[k], r->acked / r->elapsed);
		printf("bench ingest_rw_%s_server_cpu %.2f s\n", kind_name[k], r->server_cpu);
		printf("bench ingest_rw_%s_server_cores %.2f cores\n", kind_name[k],
		       r->server_cpu / r->elapsed);
		printf("bench ingest_rw_%s_per_core %.0f samples/s/core\n", kind_name[k],
		       r->server_cpu > 0 ? r->acked / r->server_cpu : 0);
		printf("bench ingest_rw_%s_client_cpu %.2f s\n", kind_name[k], r->client_cpu);
		if (r->failed_requests)
			printf("bench ingest_rw_%s_failed_requests %llu requests\n", kind_name[k],
			       (unsigned long long)r->failed_requests);
	}

	int64_t q_start = 0, q_end = 0;
	for (int k = 0; k < 2 && !opt.no_query; k++) {
		struct server s;
		int64_t t0 = (wall_ms() / 1000 - QUERY_SECONDS) * 1000;

		if (server_start(&s, k)) {
			server_stop(&s);
			return 1;
		}
		run_load(&s, "bench_q", opt.query_series, t0,
			 (uint64_t)opt.query_series * QUERY_SECONDS, 0, &ld[k]);
		printf("# %s query data: %llu of %llu samples acked in %.2f s (%.0f samples/s, "
		       "server CPU %.2f s; %llu of %llu requests refused and resent)\n",
		       kind_name[k], (unsigned long long)ld[k].acked,
		       (unsigned long long)ld[k].pool_samples, ld[k].elapsed,
		       ld[k].acked / ld[k].elapsed, ld[k].server_cpu,
		       (unsigned long long)ld[k].retried, (unsigned long long)ld[k].requests);
		if (ld[k].retried)
			printf("bench load_1h_%s_resent %llu requests\n", kind_name[k],
			       (unsigned long long)ld[k].retried);
		if (ld[k].acked != ld[k].pool_samples)
			printf("# WARNING: %s holds only %llu of %llu samples: its query figures are over "
			       "less data\n",
			       kind_name[k], (unsigned long long)ld[k].acked,
			       (unsigned long long)ld[k].pool_samples);
		printf("bench load_1h_%s %.0f samples/s\n", kind_name[k],
		       ld[k].acked / ld[k].elapsed);
		q_start = t0;
		q_end = t0 + (QUERY_SECONDS - 1) * 1000;
		for (size_t i = 0; i < NQ; i++) {
			struct qstat *q = &qs[k][i];

			run_query(&s, queries[i].expr, q_start, q_end, q);
			if (!q->ok)
				continue;
			printf("# %s %-14s %s: %zu series, %zu bytes, %d reps\n", kind_name[k],
			       queries[i].name, queries[i].expr, q->nseries, q->bytes, q->reps);
			printf("bench query_%s_%s_median %.2f ms\n", queries[i].name, kind_name[k],
			       q->median * 1e3);
			printf("bench query_%s_%s_p90 %.2f ms\n", queries[i].name, kind_name[k],
			       q->p90 * 1e3);
		}
		server_stop(&s);
		have_q[k] = true;
		/* the next server gets the same window relative to its own load */
	}

	if (have_ing[0] && have_ing[1]) {
		double a = ing[0].acked / ing[0].elapsed, b = ing[1].acked / ing[1].elapsed;
		double ac = ing[0].acked / ing[0].server_cpu, bc = ing[1].acked / ing[1].server_cpu;

		printf("bench ingest_rw_ratio_novamon_vs_prometheus %.3f x\n", a / b);
		printf("bench ingest_rw_per_core_ratio_novamon_vs_prometheus %.3f x\n", ac / bc);
	}
	if (have_q[0] && have_q[1]) {
		for (size_t i = 0; i < NQ; i++)
			if (qs[0][i].ok && qs[1][i].ok)
				printf("bench query_%s_ratio_novamon_vs_prometheus %.3f x\n",
				       queries[i].name, qs[0][i].median / qs[1][i].median);
	}

	printf("\nsummary (%ld CPUs; ingest %d series x %d conns x %d samples/req, %.0f s; "
	       "query 1 h at 1 s over %d series, %d reps)\n",
	       ncpu, opt.series, opt.conns, opt.spr, opt.duration, opt.query_series, opt.reps);
	printf("%-30s %14s %14s %12s\n", "measure", "novamon", "prometheus", "nm/prom");
	if (have_ing[0] && have_ing[1]) {
		double a = ing[0].acked / ing[0].elapsed, b = ing[1].acked / ing[1].elapsed;
		double ac = ing[0].acked / ing[0].server_cpu, bc = ing[1].acked / ing[1].server_cpu;

		printf("%-30s %14.0f %14.0f %12.3f\n", "ingest samples/s", a, b, a / b);
		printf("%-30s %14.2f %14.2f %12.3f\n", "ingest server cores busy",
		       ing[0].server_cpu / ing[0].elapsed, ing[1].server_cpu / ing[1].elapsed,
		       (ing[0].server_cpu / ing[0].elapsed) / (ing[1].server_cpu / ing[1].elapsed));
		printf("%-30s %14.0f %14.0f %12.3f\n", "ingest samples/s/core", ac, bc, ac / bc);
		printf("%-30s %14.2f %14.2f %12s\n", "ingest client CPU s", ing[0].client_cpu,
		       ing[1].client_cpu, "");
	}
	if (have_q[0] && have_q[1]) {
		printf("%-30s %14.0f %14.0f %12.3f\n", "load 1h x series samples/s",
		       ld[0].acked / ld[0].elapsed, ld[1].acked / ld[1].elapsed,
		       (ld[0].acked / ld[0].elapsed) / (ld[1].acked / ld[1].elapsed));
		for (size_t i = 0; i < NQ; i++) {
			char n1[64], n2[64];

			if (!qs[0][i].ok || !qs[1][i].ok)
				continue;
			snprintf(n1, sizeof(n1), "%s median ms", queries[i].name);
			snprintf(n2, sizeof(n2), "%s p90 ms", queries[i].name);
			printf("%-30s %14.2f %14.2f %12.3f\n", n1, qs[0][i].median * 1e3,
			       qs[1][i].median * 1e3, qs[0][i].median / qs[1][i].median);
			printf("%-30s %14.2f %14.2f %12.3f\n", n2, qs[0][i].p90 * 1e3,
			       qs[1][i].p90 * 1e3, qs[0][i].p90 / qs[1][i].p90);
			if (qs[0][i].nseries != qs[1][i].nseries)
				printf("# WARNING: %s: novamon answered %zu series, prometheus %zu\n",
				       queries[i].name, qs[0][i].nseries, qs[1][i].nseries);
		}
	}
	(void)q_start;
	(void)q_end;
	curl_global_cleanup();
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < NQ && have_q[k]; i++)
			if (!qs[k][i].ok)
				return 1;
	for (int k = 0; k < 2; k++)
		if (have_ing[k] && !ing[k].acked)
			return 1;
	return 0;
}
