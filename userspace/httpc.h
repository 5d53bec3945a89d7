/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc: a small blocking HTTP/1.1 GET client for the CLI subcommands
 * (novamon top, novamon query). Plain http only.
 */
#ifndef NOVAMON_HTTPC_H
#define NOVAMON_HTTPC_H

#include <stddef.h>

#define HTTPC_MAX_RESPONSE (256u << 20)
/* Request line and headers: room for a long PromQL query in the URL. */
#define HTTPC_MAX_REQUEST (32u << 10)

struct httpc_target {
	const char *host;
	const char *port;
	const char *path; /* with the query string */
	const char *display; /* "host:port" or "[v6]:port", for messages and Host: */
};

/*
 * Decode an HTTP/1.1 response held in buf[0..len). eof says the peer has
 * closed. On success returns 0 with *status and a malloc'd, NUL-terminated
 * *body of *body_len bytes (Content-Length, chunked, or up to EOF).
 * Returns -EAGAIN when more data is needed (only when !eof), -EPROTO for a
 * malformed or truncated response, or -ENOMEM.
 */
int httpc_decode(const char *buf, size_t len, int eof, int *status, char **body, size_t *body_len);

/*
 * GET t->path with User-Agent agent and Accept accept, timeout_ms bounding
 * the connect and each receive. Returns 0 with *status and a malloc'd *body,
 * or a negative errno: connection errors as they come (-ECONNREFUSED,
 * -ETIMEDOUT, ...; -EHOSTUNREACH with *gai_err set when the name does not
 * resolve), -EPROTO for a bad response, -EFBIG, -E2BIG for a path too long.
 */
int httpc_fetch(const struct httpc_target *t, const char *agent, const char *accept, int timeout_ms,
		int *status, char **body, size_t *body_len, int *gai_err);

/*
 * GET url ("http://HOST[:PORT]/PATH?QUERY", port 80 by default; "[V6]" hosts).
 * Returns 0 with *status and a malloc'd NUL-terminated *body, or a negative
 * errno with a sentence for the user in err ("cannot connect to
 * 127.0.0.1:9477: Connection refused"). -EINVAL: not an http:// URL.
 */
int httpc_get(const char *url, int timeout_ms, int *status, char **body, size_t *len, char *err,
	      size_t errlen);

#endif /* NOVAMON_HTTPC_H */
