/* SPDX-License-Identifier: Apache-2.0 */
/* http_stub: see http_stub.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "http_stub.h"

#define HTTP_STUB_SCRIPT_MAX 64

struct http_stub_answer {
	int status;
	int retry_after;
	uint8_t *body;
	size_t len;
};

struct http_stub {
	int fd;
	int port;
	pthread_t thr;
	atomic_bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct http_stub_answer script[HTTP_STUB_SCRIPT_MAX];
	size_t nscript;
	struct http_stub_answer dflt;
	struct http_stub_request req[HTTP_STUB_MAX_REQUESTS];
	size_t nreq;
};

static int64_t http_stub_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Inflate a gzip body; false when it is not one. */
static bool http_stub_gunzip(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream z = { 0 };
	size_t cap = len * 4 + 64;
	uint8_t *buf = malloc(cap);
	int ret;

	if (!buf || inflateInit2(&z, 15 + 16) != Z_OK) {
		free(buf);
		return false;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	for (;;) {
		z.next_out = buf + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		ret = inflate(&z, Z_NO_FLUSH);
		if (ret == Z_STREAM_END)
			break;
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			goto fail;
		if (z.avail_out) /* no progress possible: truncated input */
			goto fail;
		cap *= 2;
		buf = realloc(buf, cap);
		if (!buf)
			goto fail;
	}
	*out = buf;
	*outlen = z.total_out;
	inflateEnd(&z);
	return true;
fail:
	inflateEnd(&z);
	free(buf);
	return false;
}

bool http_stub__header(const struct http_stub_request *r, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = r->headers;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);

		if (ll > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t vl;

			while (*v == ' ')
				v++;
			vl = ll - (size_t)(v - p);
			snprintf(buf, len, "%.*s", (int)vl, v);
			return true;
		}
		p = eol ? eol + 2 : NULL;
	}
	return false;
}

static void http_stub_serve(struct http_stub *s, int c)
{
	char hdr[16384], *end = NULL, out[512], val[64];
	struct http_stub_request r = { 0 };
	struct http_stub_answer a;
	size_t got = 0, clen = 0, have;
	uint8_t *raw = NULL;
	ssize_t n;

	while (got < sizeof(hdr) - 1) {
		n = read(c, hdr + got, sizeof(hdr) - 1 - got);
		if (n <= 0)
			return;
		got += (size_t)n;
		hdr[got] = '\0';
		end = strstr(hdr, "\r\n\r\n");
		if (end)
			break;
	}
	if (!end)
		return;
	*end = '\0';
	sscanf(hdr, "POST %127s", r.path);
	r.headers = strdup(strstr(hdr, "\r\n") ? strstr(hdr, "\r\n") + 2 : "");
	if (http_stub__header(&r, "Content-Length", val, sizeof(val)))
		clen = strtoul(val, NULL, 10);
	raw = malloc(clen + 1);
	have = got - (size_t)(end + 4 - hdr);
	memcpy(raw, end + 4, have);
	while (have < clen) {
		n = read(c, raw + have, clen - have);
		if (n <= 0) {
			free(raw);
			free(r.headers);
			return;
		}
		have += (size_t)n;
	}
	if (http_stub__header(&r, "Content-Encoding", val, sizeof(val)) && !strcmp(val, "gzip")) {
		r.gzip = http_stub_gunzip(raw, clen, &r.body, &r.len);
		r.bad_gzip = !r.gzip;
		free(raw);
	} else {
		r.body = raw;
		r.len = clen;
	}
	r.at_ms = http_stub_mono_ms();

	pthread_mutex_lock(&s->lock);
	if (s->nscript) {
		a = s->script[0];
		memmove(&s->script[0], &s->script[1], (s->nscript - 1) * sizeof(s->script[0]));
		s->nscript--;
	} else {
		a = s->dflt;
		a.body = NULL;
		a.len = 0;
	}
	r.status = a.status;
	if (s->nreq < HTTP_STUB_MAX_REQUESTS) {
		s->req[s->nreq++] = r;
	} else {
		free(r.headers);
		free(r.body);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);

	if (a.retry_after >= 0)
		snprintf(val, sizeof(val), "Retry-After: %d\r\n", a.retry_after);
	else
		val[0] = '\0';
	snprintf(out, sizeof(out),
		 "HTTP/1.1 %d X\r\n%sContent-Type: application/x-protobuf\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 a.status, val, a.len);
	(void)!write(c, out, strlen(out));
	if (a.len)
		(void)!write(c, a.body, a.len);
	free(a.body);
}

static void *http_stub_main(void *arg)
{
	struct http_stub *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		int c;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		http_stub_serve(s, c);
		close(c);
	}
	return NULL;
}

struct http_stub *http_stub__start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct http_stub *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->dflt.status = 200;
	s->dflt.retry_after = -1;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 64) ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) ||
	    pthread_create(&s->thr, NULL, http_stub_main, s)) {
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return NULL;
	}
	s->port = ntohs(a.sin_port);
	return s;
}

int http_stub__port(const struct http_stub *s)
{
	return s->port;
}

void http_stub__script(struct http_stub *s, int status, int retry_after, const void *body,
		       size_t len)
{
	struct http_stub_answer a = { .status = status, .retry_after = retry_after };

	if (body && len) {
		a.body = malloc(len);
		memcpy(a.body, body, len);
		a.len = len;
	}
	pthread_mutex_lock(&s->lock);
	if (s->nscript < HTTP_STUB_SCRIPT_MAX)
		s->script[s->nscript++] = a;
	else
		free(a.body);
	pthread_mutex_unlock(&s->lock);
}

void http_stub__set_default(struct http_stub *s, int status, int retry_after)
{
	pthread_mutex_lock(&s->lock);
	s->dflt.status = status;
	s->dflt.retry_after = retry_after;
	pthread_mutex_unlock(&s->lock);
}

size_t http_stub__count(struct http_stub *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nreq;
	pthread_mutex_unlock(&s->lock);
	return n;
}

bool http_stub__wait(struct http_stub *s, size_t n, int timeout_ms)
{
	int64_t deadline = http_stub_mono_ms() + timeout_ms;
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000 };
	bool ok;

	pthread_mutex_lock(&s->lock);
	while (s->nreq < n && http_stub_mono_ms() < deadline)
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	ok = s->nreq >= n;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

const struct http_stub_request *http_stub__get(struct http_stub *s, size_t i)
{
	const struct http_stub_request *r;

	pthread_mutex_lock(&s->lock);
	r = i < s->nreq ? &s->req[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void http_stub__reset(struct http_stub *s)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nreq; i++) {
		free(s->req[i].headers);
		free(s->req[i].body);
	}
	s->nreq = 0;
	for (i = 0; i < s->nscript; i++)
		free(s->script[i].body);
	s->nscript = 0;
	pthread_mutex_unlock(&s->lock);
}

void http_stub__stop(struct http_stub *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thr, NULL);
	close(s->fd);
	http_stub__reset(s);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
