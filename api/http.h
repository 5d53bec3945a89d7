/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the daemon's one HTTP port (libwebsockets), serving
 *   GET /health   the latest health JSON published by the tick
 *   GET /metrics  Prometheus text exposition 0.0.4 of the latest metric set
 * plus the routes the daemon registers (query and ingest APIs). It runs its
 * own network thread and a small pool of handler threads; it only reads from
 * struct metric_store. Optionally it checks bearer tokens (api/auth.h) and
 * each route's role, records administrative requests (api/audit.h) and
 * speaks TLS: see struct http_server_opts.
 */
#ifndef NOVAMON_HTTP_H
#define NOVAMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct auth_principal;
struct lws_protocols;
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
	const char *if_none_match;      /* If-None-Match, for conditional GETs */
	const struct auth_principal *principal; /* NULL when auth is off */
};

/* What a handler fills in. body is malloc'd and owned by the server after return. */
struct http_response {
	int status;               /* 200 if left 0 */
	const char *content_type; /* static string; "application/json" if NULL */
	const char *content_encoding; /* static string or NULL */
	char *body;
	size_t body_len;
	int retry_after_s;        /* > 0: a Retry-After header */
	const char *etag;          /* static string or NULL: an ETag header */
	const char *cache_control; /* static string; "no-store" if NULL */
};

/*
 * A route handler. Runs on one of the server's handler threads (never the
 * network loop), so a slow query delays only its own response. Returns 0
 * (response filled) or a negative errno (500 with a JSON error).
 */
typedef int (*http_handler_fn)(const struct http_request *req, struct http_response *resp,
			       void *ctx);

/* http_route.flags */
#define HTTP_ROUTE_NO_AUDIT 1u /* bulk data (remote-write): never audited */
/*
 * The route reads or writes every tenant's data without a tenant filter of
 * its own (the ingest routes): a token limited to one tenant gets 403.
 */
#define HTTP_ROUTE_ALL_TENANTS 2u

struct http_route {
	const char *method; /* "GET", "POST", or NULL for any */
	const char *path;   /* exact path, or a prefix when it ends with '/' ("/" alone is exact) */
	http_handler_fn fn;
	void *ctx;
	/*
	 * The weakest enum auth_role admitted (0: viewer) when auth is on;
	 * weaker tokens get 403. A route above viewer changes state: its
	 * requests other than GET and HEAD go to the audit hook.
	 */
	int min_role;
	unsigned int flags; /* HTTP_ROUTE_* */
};

/*
 * Authenticate a request (api/auth.h: auth__http_authenticate): 0 with
 * *out filled, or a negative errno (the request gets 401) with a short
 * reason in why that is safe to send back. Called on the network thread,
 * before the body is read.
 */
typedef int (*http_auth_fn)(void *ctx, const struct http_request *req, struct auth_principal *out,
			    char *why, size_t whylen);
/*
 * Record an administrative request (api/audit.h: audit__http_hook) with its
 * final status: allowed (the handler's status, 500 when it failed) or
 * refused for its role (403). Called on a handler thread; may block.
 */
typedef void (*http_audit_fn)(void *ctx, const struct http_request *req, int status);

struct http_server_opts {
	const char *listen; /* "HOST:PORT", "[V6ADDR]:PORT" or ":PORT"; default 127.0.0.1:9477 */
	struct metric_store *store;
	const struct http_route *routes; /* checked in order, after /health and /metrics */
	size_t nroutes;
	size_t max_body_bytes; /* 0: 32 MiB; larger bodies get 413 */
	unsigned int handler_threads; /* 0: 4 */
	/*
	 * Tokens: NULL authenticate serves every route to anyone (principal
	 * NULL). Otherwise every request needs a token except GET /health and
	 * the public paths (exact, or a prefix when one ends with '/' but is not "/", e.g.
	 * "/metrics" for a plain Prometheus scrape): 401 with
	 * WWW-Authenticate: Bearer ... when it has none or a bad one, 403
	 * when its role is below the route's min_role.
	 */
	http_auth_fn authenticate;
	void *auth_ctx;
	const char *const *public_paths;
	size_t npublic_paths;
	http_audit_fn audit; /* NULL: none */
	void *audit_ctx;
	/* TLS: with both PEM files set the port speaks only HTTPS (and WSS) */
	const char *tls_cert_file;
	const char *tls_key_file;
	/*
	 * The WebSocket feeds (api/ws.h: ws__protocol()), served on the same
	 * vhost: an upgrade that names no subprotocol (or this one) goes to
	 * it, which answers authentication and the /ws/ paths itself. NULL:
	 * every upgrade is refused.
	 */
	const struct lws_protocols *ws_protocol;
};

struct http_server;

/*
 * Bind, listen and start serving. Returns the server or NULL with errno set
 * (EADDRINUSE, EACCES, EINVAL for an unparsable listen address or an unusable
 * TLS certificate or key, ENOENT for a missing one, ...).
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
