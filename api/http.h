/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the daemon's one HTTP port (libwebsockets), serving
 *   GET /health   the latest health JSON published by the tick
 *   GET /metrics  Prometheus text exposition 0.0.4 of the latest metric set
 * It runs its own service thread and only reads from struct metric_store.
 */
#ifndef NOVAMON_HTTP_H
#define NOVAMON_HTTP_H

struct metric_store;

struct http_server_opts {
	const char *listen; /* "HOST:PORT", "[V6ADDR]:PORT" or ":PORT"; default 127.0.0.1:9477 */
	struct metric_store *store;
};

struct http_server;

/*
 * Bind, listen and start serving. Returns the server or NULL with errno set
 * (EADDRINUSE, EACCES, EINVAL for an unparsable listen address, ...).
 */
struct http_server *http_server__start(const struct http_server_opts *opts);
/* Stop serving and free; NULL is fine. */
void http_server__stop(struct http_server *srv);

/* Parse "HOST:PORT" forms as above. Returns 0 or -EINVAL. host gets "" for ":PORT". */
int http_parse_listen(const char *listen, char *host, unsigned long hostlen, int *port);

#endif /* NOVAMON_HTTP_H */
