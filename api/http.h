/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the daemon's one HTTP port (libwebsockets), serving
 *   GET /health   the latest health JSON published by the tick
 *   GET /metrics  Prometheus text exposition 0.0.4 of the latest metric set
 * plus the routes the daemon registers (query and ingest APIs). It runs its
 * own network thread and a small pool of handler threads; it only reads from
 * struct metric_store.
 */
#ifndef NOVAMON_HTTP_H
#define NOVAMON_HTTP_H

#include <stddef.h>

struct metric_store;

/* A request as handlers see it; every string is NUL-terminated, "" when absent. */
struct http_request {
	const char *method;           /* "GET", "POST", ... */
	const char *path;             /* decoded path, no query string */
	const char *query;            /* raw query string after '?', "" if none */
	const char *body;             /* request body (NUL-terminated), "" if none */
	size_t body_len;
	const char *content_type;
	const char *content_encoding;
	const char *authorization;
	const char *remote_addr;
};

/* What a handler fills in. body is malloc'd and owned by the server after return. */
struct http_response {
	int status;               /* 200 if left 0 */
	const char *content_type; /* static string; "application/json" if NULL */
	const char *content_encoding; /* static string or NULL */
	char *body;
	size_t body_len;
	int retry_after_s;        /* > 0: a Retry-After header */
};

/*
 * A route handler. Runs on one of the server's handler threads (never the
 * network loop), so a slow query delays only its own response. Returns 0
 * (response filled) or a negative errno (500 with a JSON error).
 */
typedef int (*http_handler_fn)(const struct http_request *req, struct http_response *resp,
			       void *ctx);

struct http_route {
	const char *method; /* "GET", "POST", or NULL for any */
	const char *path;   /* exact path, or a prefix when it ends with '/' */
	http_handler_fn fn;
	void *ctx;
};

struct http_server_opts {
	const char *listen; /* "HOST:PORT", "[V6ADDR]:PORT" or ":PORT"; default 127.0.0.1:9477 */
	struct metric_store *store;
	const struct http_route *routes; /* checked in order, after /health and /metrics */
	size_t nroutes;
	size_t max_body_bytes; /* 0: 32 MiB; larger bodies get 413 */
	unsigned int handler_threads; /* 0: 4 */
};

struct http_server;

/*
 * Bind, listen and start serving. Returns the server or NULL with errno set
 * (EADDRINUSE, EACCES, EINVAL for an unparsable listen address, ...).
 */
struct http_server *http_server__start(const struct http_server_opts *opts);
/* Stop serving and free; NULL is fine. */
void http_server__stop(struct http_server *srv);

/*
 * Find parameter name in a query string or application/x-www-form-urlencoded
 * body, URL-decoded into buf. With index n, the n-th occurrence (for repeated
 * parameters such as match[]). Returns the decoded length, or -ENOENT, or
 * -E2BIG when it does not fit.
 */
int http_param(const char *query, const char *name, unsigned int n, char *buf, size_t len);

/* Send a JSON error body {"status":"error","errorType":type,"error":msg} with status. */
int http_error(struct http_response *resp, int status, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Parse "HOST:PORT" forms as above. Returns 0 or -EINVAL. host gets "" for ":PORT". */
int http_parse_listen(const char *listen, char *host, unsigned long hostlen, int *port);

#endif /* NOVAMON_HTTP_H */
