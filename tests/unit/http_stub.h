/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_stub: a scripted HTTP/1.1 server for the exporter tests (spool,
 * OTLP). One thread, one request per connection on 127.0.0.1, every
 * request recorded (path, headers, body gunzipped when it says gzip) and
 * answered from a script of responses, then with a default one.
 */
#ifndef NOVAMON_TEST_HTTP_STUB_H
#define NOVAMON_TEST_HTTP_STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_STUB_MAX_REQUESTS 512

struct http_stub_request {
	char path[128];
	char *headers; /* the raw header block, NUL-terminated */
	uint8_t *body; /* decoded (gunzipped when Content-Encoding: gzip) */
	size_t len;
	bool gzip; /* Content-Encoding: gzip, and the body inflated cleanly */
	bool bad_gzip; /* said gzip but did not inflate */
	int64_t at_ms; /* monotonic arrival time */
	int status; /* answered with */
};

struct http_stub;

/* Listen on an ephemeral port of 127.0.0.1. NULL on failure. */
struct http_stub *http_stub__start(void);
int http_stub__port(const struct http_stub *s);

/*
 * Answer the next request not yet scripted with status, a Retry-After of
 * retry_after seconds (< 0: none) and body (copied; NULL: empty).
 */
void http_stub__script(struct http_stub *s, int status, int retry_after, const void *body,
		       size_t len);
/* What unscripted requests get (200 with an empty body at start). */
void http_stub__set_default(struct http_stub *s, int status, int retry_after);

/* Requests recorded so far. */
size_t http_stub__count(struct http_stub *s);
/* Wait until n requests have been recorded; false after timeout_ms. */
bool http_stub__wait(struct http_stub *s, size_t n, int timeout_ms);
/* The i-th request; stays valid until http_stub__reset() or stop. */
const struct http_stub_request *http_stub__get(struct http_stub *s, size_t i);
/* The value of header name of request r (case-insensitive), copied to buf; false if absent. */
bool http_stub__header(const struct http_stub_request *r, const char *name, char *buf, size_t len);
/* Forget recorded requests and the script; the default answer stays. */
void http_stub__reset(struct http_stub *s);

void http_stub__stop(struct http_stub *s);

#endif /* NOVAMON_TEST_HTTP_STUB_H */
