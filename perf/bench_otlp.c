/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_otlp: spans exported per second end to end, from otlp__add_span()
 * through the exporter's batching, protobuf encoding, gzip, on-disk spool
 * and HTTP sender to a local OTLP receiver that decodes every request
 * (inflate + protobuf-c unpack of ExportTraceServiceRequest, into an arena) and counts the
 * spans it received.
 *
 * The spans are block I/O spans as the synthesizer makes them (name, ids,
 * 11 attributes). Producers add as fast as the exporter accepts (an
 * -ENOBUFS answer, the exporter's backlog limit, makes them yield and
 * retry: nothing is dropped); the figure is spans the receiver decoded per
 * second of wall time, with the CPU of this process (exporter and receiver
 * together) alongside.
 *
 *   bench_otlp [--spans N] [--batch N] [--no-gzip]
 *
 * Prints `bench <name> <value> <unit>` lines. No root needed.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "otlp.h"
#include "pb_arena.h"
#include "spans/span.h"
#include "trace_service.pb-c.h"

static atomic_ullong received_spans;
static atomic_ullong received_requests;
static atomic_ullong received_bytes;
static int listen_fd = -1;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Inflate a gzip body; returns the length or -1. */
static long gunzip(const unsigned char *in, size_t n, unsigned char **out, size_t *cap)
{
	z_stream z = { 0 };
	long len = -1;
	int rc;

	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -1;
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	for (;;) {
		if (z.total_out == *cap) {
			unsigned char *g = realloc(*out, *cap ? *cap * 2 : 1 << 20);

			if (!g)
				break;
			*out = g;
			*cap = *cap ? *cap * 2 : 1 << 20;
		}
		z.next_out = *out + z.total_out;
		z.avail_out = (uInt)(*cap - z.total_out);
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			len = (long)z.total_out;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			break;
	}
	inflateEnd(&z);
	return len;
}

/* One keep-alive connection: read requests, decode, count, answer 200. */
static void *conn_main(void *arg)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
				 "Content-Length: 0\r\n\r\n";
	int fd = (int)(intptr_t)arg;
	size_t cap = 1 << 20, len = 0, zcap = 0;
	unsigned char *buf = malloc(cap), *plain = NULL;

	while (buf) {
		char *end = NULL, *cl;
		size_t hdr, body = 0, i;
		bool gz;
		ssize_t r;

		/* headers */
		while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
			if (len == cap)
				goto out;
			r = read(fd, buf + len, cap - len);
			if (r <= 0)
				goto out;
			len += (size_t)r;
		}
		hdr = (size_t)(end - (char *)buf) + 4;
		buf[hdr - 1] = '\0';
		for (i = 0; i < hdr; i++)
			if (buf[i] >= 'A' && buf[i] <= 'Z')
				buf[i] = (unsigned char)(buf[i] - 'A' + 'a');
		cl = strstr((char *)buf, "content-length:");
		if (cl)
			body = strtoul(cl + 15, NULL, 10);
		gz = strstr((char *)buf, "content-encoding: gzip") != NULL;
		if (hdr + body > cap) {
			unsigned char *g = realloc(buf, hdr + body);

			if (!g)
				goto out;
			buf = g;
			cap = hdr + body;
		}
		while (len < hdr + body) {
			r = read(fd, buf + len, cap - len);
			if (r <= 0)
				goto out;
			len += (size_t)r;
		}
		{
			const unsigned char *p = buf + hdr;
			long plen = (long)body;
			Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req;
			struct pb_arena arena;

			if (gz) {
				plen = gunzip(buf + hdr, body, &plain, &zcap);
				p = plain;
			}
			/*
			 * Unpacked into an arena, as a collector's decoder would
			 * (Go's allocates from its GC heap, not a malloc per field):
			 * this receiver stands in for the backend and shares the
			 * machine with the exporter being measured.
			 */
			pb_arena__init(&arena, (size_t)(plen > 0 ? plen : 0) * 4);
			req = plen < 0 ?
				      NULL :
				      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
					      &arena.alloc, (size_t)plen, p);
			if (req) {
				size_t a, b, n = 0;

				for (a = 0; a < req->n_resource_spans; a++)
					for (b = 0; b < req->resource_spans[a]->n_scope_spans; b++)
						n += req->resource_spans[a]->scope_spans[b]->n_spans;
				atomic_fetch_add(&received_spans, n);
			}
			pb_arena__destroy(&arena);
		}
		atomic_fetch_add(&received_requests, 1);
		atomic_fetch_add(&received_bytes, body);
		if (write(fd, ok, sizeof(ok) - 1) < 0)
			goto out;
		memmove(buf, buf + hdr + body, len - hdr - body);
		len -= hdr + body;
	}
out:
	close(fd);
	free(buf);
	free(plain);
	return NULL;
}

static void *accept_main(void *arg)
{
	pthread_t t;
	int fd;

	(void)arg;
	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static void span_fill(struct span *s, uint64_t i)
{
	static const char *const keys[] = { "system.device",
					    "disk.io.direction",
					    "novamon.block.op",
					    "novamon.block.sector",
					    "novamon.block.bytes",
					    "novamon.block.queue_ns",
					    "novamon.block.service_ns",
					    "process.pid",
					    "thread.id",
					    "novamon.sample_rate",
					    "novamon.vm" };
	size_t k;

	memset(s, 0, sizeof(*s));
	for (k = 0; k < 16; k++)
		s->trace_id[k] = (uint8_t)(i * 131 + k + 1);
	for (k = 0; k < 8; k++)
		s->span_id[k] = (uint8_t)(i * 7 + k + 1);
	snprintf(s->name, sizeof(s->name), "%s", i & 1 ? "block read" : "block write");
	s->kind = SPAN_KIND_INTERNAL;
	s->start_ns = 1700000000000000000ull + i * 1000;
	s->end_ns = s->start_ns + 250000 + i % 1000;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		struct span_attr *a = &s->attrs[s->nattrs++];

		snprintf(a->key, sizeof(a->key), "%s", keys[k]);
		if (k == 0 || k == 1 || k == 2 || k == 10) {
			a->type = SPAN_ATTR_STR;
			snprintf(a->s, sizeof(a->s), "%s",
				 k == 0	 ? "nvme0n1" :
				 k == 10 ? "web-1" :
				 i & 1	 ? "read" :
					   "write");
		} else if (k == 9) {
			a->type = SPAN_ATTR_DOUBLE;
			a->d = 1.0;
		} else {
			a->type = SPAN_ATTR_INT;
			a->i = (int64_t)(i * 8 + k);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "spans", required_argument, 0, 'n' },
		{ "batch", required_argument, 0, 'b' },
		{ "no-gzip", no_argument, 0, 'z' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	uint64_t nspans = 1000000, i, retries = 0;
	size_t batch = 4096;
	bool gzip = true;
	char dir[] = "/tmp/bench-otlp-XXXXXX", url[64], cmd[96];
	struct otlp_opts o = { 0 };
	struct otlp_stats st;
	struct otlp *ot;
	struct span s;
	pthread_t acc;
	double t0, c0, t_add, dt;
	int c;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			nspans = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 10);
			break;
		case 'z':
			gzip = false;
			break;
		default:
			printf("usage: bench_otlp [--spans N] [--batch N] [--no-gzip]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(listen_fd, 64) || getsockname(listen_fd, (struct sockaddr *)&sa, &salen)) {
		perror("bench_otlp: listen");
		return 1;
	}
	pthread_create(&acc, NULL, accept_main, NULL);
	if (!mkdtemp(dir)) {
		perror("bench_otlp: mkdtemp");
		return 1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	o.endpoint = url;
	o.queue_dir = dir;
	o.compression = gzip ? OTLP_COMPRESSION_GZIP : OTLP_COMPRESSION_NONE;
	o.batch_max_items = batch;
	o.batch_max_delay_ms = 100;
	o.queue_max_bytes = 1ull << 30;
	ot = otlp__start(&o);
	if (!ot) {
		perror("bench_otlp: otlp__start");
		return 1;
	}
	t0 = now_s();
	c0 = cpu_s();
	for (i = 0; i < nspans; i++) {
		int err;

		span_fill(&s, i);
		while ((err = otlp__add_span(ot, &s)) == -ENOBUFS) {
			retries++;
			usleep(200);
		}
		if (err) {
			fprintf(stderr, "bench_otlp: otlp__add_span: %s\n", strerror(-err));
			return 1;
		}
	}
	t_add = now_s() - t0;
	otlp__flush(ot);
	while (atomic_load(&received_spans) < nspans && now_s() - t0 < 300)
		usleep(1000);
	dt = now_s() - t0;
	otlp__stats(ot, &st);
	printf("bench otlp_spans_exported %llu spans\n", (unsigned long long)received_spans);
	printf("bench otlp_export_spans_per_second %.0f spans/s\n", (double)received_spans / dt);
	printf("bench otlp_export_cpu_cores %.2f cores\n", (cpu_s() - c0) / dt);
	printf("bench otlp_export_spans_per_core %.0f spans/s\n",
	       (double)received_spans / (cpu_s() - c0));
	printf("bench otlp_add_wall_ns_per_span %.0f ns\n", t_add * 1e9 / (double)nspans);
	printf("bench otlp_requests %llu requests\n", (unsigned long long)received_requests);
	printf("bench otlp_bytes_per_span %.1f bytes\n",
	       (double)received_bytes / (double)(received_spans ? received_spans : 1));
	printf("# gzip %s, batch %zu, %llu backlog waits; the receiver's decoding is counted "
	       "in the CPU figure\n",
	       gzip ? "on" : "off", batch, (unsigned long long)retries);
	otlp__stop(ot);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	return received_spans == nspans ? 0 : 1;
}
