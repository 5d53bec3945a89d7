/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the daemon's HTTP port on libwebsockets (4.1), one context with one
 * explicit vhost, served by its own thread.
 *
 * /health and /metrics are answered in full from LWS_CALLBACK_HTTP: the body
 * is built (rendered exposition or health JSON) into a malloc'd buffer owned
 * by the session, the headers (with Content-Length) are written, and the body
 * then goes out in HTTP_CHUNK pieces from LWS_CALLBACK_HTTP_WRITEABLE, so a
 * body of tens of MB never sits in one lws_write(). The buffer is freed when
 * the transaction completes or the connection closes.
 *
 * Registered routes run on a pool of handler threads (api/router.c). The
 * network thread copies the request into a router_job (method, decoded path,
 * the raw query string rebuilt from lws' decoded arguments, a few headers,
 * the peer, and for POST/PUT/PATCH the body up to max_body_bytes as it
 * arrives in LWS_CALLBACK_HTTP_BODY) and queues it. A handler thread runs the
 * handler, puts the job on the completed queue and wakes the network thread
 * with lws_cancel_service(); LWS_CALLBACK_EVENT_WAIT_CANCELLED takes the
 * completed jobs and starts writing each response as above. A client that
 * disconnects first leaves its job orphaned (owner NULL, cancelled set): the
 * handler is skipped if it has not started and the response is dropped.
 *
 * A body larger than max_body_bytes (by its Content-Length, so we never read
 * it) gets 413 and a close; a chunked request body gets 411 (lws 4.1 does not
 * de-chunk request bodies). Requests whose body we did not read are answered
 * and closed, because that body would otherwise be parsed as the next
 * request; everything else keeps the connection alive.
 *
 * lws is not thread safe: the context is created and destroyed by the caller
 * of http_server__start()/__stop() while the service thread is not running,
 * and the only cross-thread call is lws_cancel_service().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exposition.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "router.h"

#define HTTP_DEFAULT_LISTEN "127.0.0.1:9477"
#define HTTP_CHUNK (64 * 1024)
/* Long enough that Prometheus (15 s .. 60 s intervals) reuses its connection. */
#define HTTP_KEEPALIVE_SECS 120
#define HTTP_DEFAULT_MAX_BODY (32u << 20)
#define HTTP_DEFAULT_THREADS 4
/* Room for the request line and headers: PromQL in a GET query string is long. */
#define HTTP_MAX_HEADER_DATA 16384

#define HTTP_JSON "application/json"
#define HTTP_BODY_STARTING "{\"status\":\"starting\"}\n"
#define HTTP_BODY_OK "{\"status\":\"ok\"}\n"
#define HTTP_BODY_NOT_FOUND "{\"error\":\"not found\"}\n"
#define HTTP_BODY_NOT_ALLOWED "{\"error\":\"method not allowed\"}\n"
#define HTTP_BODY_NO_MEMORY "{\"error\":\"out of memory\"}\n"
#define HTTP_BODY_TOO_LARGE \
	"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"request body too large\"}\n"
#define HTTP_BODY_NEED_LENGTH \
	"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"a request body needs Content-Length\"}\n"

struct http_server {
	struct lws_context *ctx;
	struct metric_store *store;
	struct http_route *routes; /* a copy of opts->routes */
	size_t nroutes;
	size_t max_body;
	struct router_pool *pool;
	pthread_t thread;
	int thread_started;
	atomic_int quit; /* set by __stop(), read by the service thread */
	char iface[INET6_ADDRSTRLEN];
	/* Chunk staging with LWS_PRE headroom; only the service thread uses it. */
	unsigned char wbuf[LWS_PRE + HTTP_CHUNK];
};

/* Per connection; lws zeroes it and keeps it across keep-alive requests. */
struct http_session {
	struct lws *wsi;
	struct router_job *job; /* reading its body, or queued (job->owner == this) */
	int reading_body;
	const char *data; /* the body: owned, or a string constant */
	char *owned; /* malloc'd body, freed when the response is done */
	size_t len;
	size_t off;
	int active; /* a response is being written */
	int close_after; /* close instead of keep-alive once the body is out */
};

/* The resolved listen address; iface NULL means all addresses. */
struct http_listen_addr {
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[INET6_ADDRSTRLEN];
	int port;
	int any;
};

int http_parse_listen(const char *listen, char *host, unsigned long hostlen, int *port)
{
	const char *colon, *h, *h_end;
	unsigned long len, p = 0;
	const char *c;

	if (!listen || !host || !port || !hostlen)
		return -EINVAL;

	if (listen[0] == '[') {
		h = listen + 1;
		h_end = strchr(h, ']');
		if (!h_end || h_end == h || h_end[1] != ':')
			return -EINVAL;
		colon = h_end + 1;
	} else {
		h = listen;
		colon = strrchr(listen, ':');
		if (!colon)
			return -EINVAL;
		h_end = colon;
		/* a bare IPv6 address must be bracketed: the port is ambiguous */
		if (memchr(h, ':', (size_t)(h_end - h)))
			return -EINVAL;
	}

	c = colon + 1;
	if (!*c)
		return -EINVAL;
	for (; *c; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		p = p * 10 + (unsigned long)(*c - '0');
		if (p > 65535)
			return -EINVAL;
	}
	if (!p)
		return -EINVAL;

	len = (unsigned long)(h_end - h);
	if (len + 1 > hostlen)
		return -EINVAL;
	memcpy(host, h, len);
	host[len] = '\0';
	*port = (int)p;
	return 0;
}

/*
 * Turn the listen string into a numeric address lws can bind without a
 * name lookup or an interface-name match (lws treats an iface that is not a
 * numeric address as an interface name). ":PORT" is the IPv6 wildcard, which
 * is dual-stack on Linux, or the IPv4 wildcard when the host has no IPv6.
 */
static int http_resolve_listen(const char *listen, struct http_listen_addr *la)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&la->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&la->sa;
	struct addrinfo hints = { 0 }, *res = NULL;
	char host[256];
	int err, fd;

	memset(la, 0, sizeof(*la));
	err = http_parse_listen(listen, host, sizeof(host), &la->port);
	if (err)
		return err;

	if (!host[0]) {
		la->any = 1;
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			close(fd);
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = in6addr_any;
			sin6->sin6_port = htons((uint16_t)la->port);
			la->salen = sizeof(*sin6);
		} else {
			sin->sin_family = AF_INET;
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
			sin->sin_port = htons((uint16_t)la->port);
			la->salen = sizeof(*sin);
		}
		return 0;
	}

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	err = getaddrinfo(host, NULL, &hints, &res);
	if (err || !res)
		return err == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;
	if (res->ai_addrlen > sizeof(la->sa) ||
	    (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
		freeaddrinfo(res);
		return -EAFNOSUPPORT;
	}
	memcpy(&la->sa, res->ai_addr, res->ai_addrlen);
	la->salen = res->ai_addrlen;
	freeaddrinfo(res);

	if (la->sa.ss_family == AF_INET) {
		sin->sin_port = htons((uint16_t)la->port);
		inet_ntop(AF_INET, &sin->sin_addr, la->host, sizeof(la->host));
	} else {
		sin6->sin6_port = htons((uint16_t)la->port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, la->host, sizeof(la->host));
	}
	return 0;
}

/*
 * lws reports a failed bind only as a NULL vhost, with errno clobbered by
 * its cleanup. Bind the same address the way lws does (SO_REUSEADDR, v6
 * wildcard dual-stack) to learn why. Returns 0 if the bind works now.
 */
static int http_probe_bind(const struct http_listen_addr *la)
{
	int fd, one = 1, zero = 0, err = 0;

	fd = socket(la->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (la->sa.ss_family == AF_INET6 && la->any)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (const struct sockaddr *)&la->sa, la->salen))
		err = -errno;
	close(fd);
	return err;
}

/* lws's own error/warning lines; library code logs at debug only. */
static void http_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_debug("lws %s: %.*s", level & LLL_ERR ? "error" : "warning", (int)n, line);
}

/* Escape s as the inside of a JSON string into out (cap bytes, NUL-terminated). */
static void http_json_escape(char *out, size_t cap, const char *s)
{
	size_t w = 0;

	for (; *s && w + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[w++] = '\\';
			out[w++] = (char)c;
		} else if (c == '\n') {
			out[w++] = '\\';
			out[w++] = 'n';
		} else if (c < 0x20) {
			w += (size_t)snprintf(out + w, cap - w, "\\u%04x", c);
		} else {
			out[w++] = (char)c;
		}
	}
	out[w] = '\0';
}

int http_error(struct http_response *resp, int status, const char *type, const char *fmt, ...)
{
	char msg[1024], esc[3 * sizeof(msg)];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_json_escape(esc, sizeof(esc), msg);
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = status;
	resp->content_type = HTTP_JSON;
	resp->content_encoding = NULL;
	n = snprintf(NULL, 0, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"%s\"}\n",
		     type, esc);
	resp->body = malloc((size_t)n + 1);
	if (!resp->body)
		return -ENOMEM;
	snprintf(resp->body, (size_t)n + 1,
		 "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"%s\"}\n", type, esc);
	resp->body_len = (size_t)n;
	return 0;
}

int http_param(const char *query, const char *name, unsigned int n, char *buf, size_t len)
{
	size_t nlen = strlen(name);
	const char *p = query;

	if (!query || !buf || !len)
		return -ENOENT;
	while (*p) {
		const char *end = strchr(p, '&'), *eq;
		size_t alen = end ? (size_t)(end - p) : strlen(p);
		char key[256];
		int klen;

		eq = memchr(p, '=', alen);
		klen = (int)(eq ? (size_t)(eq - p) : alen);
		if ((size_t)klen < sizeof(key)) {
			memcpy(key, p, (size_t)klen);
			key[klen] = '\0';
			if (router_url_decode(key, true) == (int)nlen && !memcmp(key, name, nlen) &&
			    n-- == 0) {
				size_t vlen = eq ? alen - (size_t)klen - 1 : 0;
				int d;

				if (vlen >= len)
					return -E2BIG;
				memcpy(buf, eq ? eq + 1 : "", vlen);
				buf[vlen] = '\0';
				d = router_url_decode(buf, true);
				return d < 0 ? -EINVAL : d;
			}
		}
		p += alen;
		if (*p == '&')
			p++;
	}
	return -ENOENT;
}

/* Drop what the session holds; a queued job is orphaned, not freed (the pool owns it). */
static void http_session_reset(struct http_session *s)
{
	struct lws *wsi = s->wsi;

	if (s->job) {
		if (s->reading_body) {
			router_job__free(s->job);
		} else {
			s->job->owner = NULL;
			atomic_store(&s->job->cancelled, true);
		}
	}
	free(s->owned);
	memset(s, 0, sizeof(*s));
	s->wsi = wsi;
}

static void http_session_set_const(struct http_session *s, const char *body)
{
	s->data = body;
	s->len = strlen(body);
}

/* Hand a malloc'd body of len bytes to the session. */
static void http_session_set_owned(struct http_session *s, char *body, size_t len)
{
	s->owned = body;
	s->data = body;
	s->len = len;
}

static void http_build_health(struct http_server *srv, struct http_session *s)
{
	struct metric_set *set;
	char *health = NULL;
	int published;

	set = metric_store__get(srv->store, &health);
	published = set != NULL;
	metric_store__put(srv->store, set);
	if (health)
		http_session_set_owned(s, health, strlen(health));
	else
		http_session_set_const(s, published ? HTTP_BODY_OK : HTTP_BODY_STARTING);
}

static int http_build_metrics(struct http_server *srv, struct http_session *s)
{
	struct metric_set *set;
	char *body = NULL;
	size_t len = 0;
	int err;

	set = metric_store__get(srv->store, NULL);
	err = exposition_render(set, &body, &len);
	metric_store__put(srv->store, set);
	if (err)
		return err;
	http_session_set_owned(s, body, len);
	return 0;
}

/* The response head beyond the status line; strings may be NULL. */
struct http_head {
	unsigned int status;
	const char *ctype;
	const char *cenc;
	const char *allow;
	int retry_after_s;
};

static int http_add_header(struct lws *wsi, const char *name, const char *val, unsigned char **p,
			   unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)val, (int)strlen(val), p, end);
}

/*
 * Write the status line and headers for the body the session holds, then ask
 * for WRITEABLE to send the body. Returns 0, or -1 to close the connection.
 */
static int http_send_head(struct lws *wsi, struct http_session *s, const struct http_head *h)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	char num[16];

	s->active = 1;
	if (lws_add_http_common_headers(wsi, h->status, h->ctype ? h->ctype : HTTP_JSON, s->len, &p,
					end))
		return -1;
	if (h->allow && h->allow[0] && http_add_header(wsi, "allow:", h->allow, &p, end))
		return -1;
	if (h->cenc && h->cenc[0] && http_add_header(wsi, "content-encoding:", h->cenc, &p, end))
		return -1;
	if (h->retry_after_s > 0) {
		snprintf(num, sizeof(num), "%d", h->retry_after_s);
		if (http_add_header(wsi, "retry-after:", num, &p, end))
			return -1;
	}
	if (s->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					 5, &p, end))
		return -1;
	if (http_add_header(wsi, "cache-control:", "no-store", &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (!s->len) {
		/*
		 * No body (204 and friends): the client holds the whole answer
		 * now and may send its next request at once on this keep-alive
		 * connection. End the transaction before lws reads again, or it
		 * takes that request for more of this one's body.
		 */
		int close_after = s->close_after;

		http_session_reset(s);
		return close_after || lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* Answer with a constant body. */
static int http_send_const(struct lws *wsi, struct http_session *s, unsigned int status,
			   const char *body, const char *allow)
{
	struct http_head h = { .status = status, .allow = allow };

	http_session_set_const(s, body);
	return http_send_head(wsi, s, &h);
}

/* GET /health and /metrics, answered on the network thread. */
static int http_builtin(struct lws *wsi, struct http_server *srv, struct http_session *s,
			int method, int is_health)
{
	struct http_head h = { .status = HTTP_STATUS_OK, .ctype = HTTP_JSON };
	int err = 0;

	if (method != LWSHUMETH_GET)
		return http_send_const(wsi, s, HTTP_STATUS_METHOD_NOT_ALLOWED,
				       HTTP_BODY_NOT_ALLOWED, "GET");
	if (is_health) {
		http_build_health(srv, s);
	} else {
		h.ctype = EXPOSITION_CONTENT_TYPE;
		err = http_build_metrics(srv, s);
	}
	if (err) {
		s->close_after = 1;
		return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				       HTTP_BODY_NO_MEMORY, NULL);
	}
	return http_send_head(wsi, s, &h);
}

/* Length of header token tok plus its NUL, 1 when absent. */
static size_t http_hdr_size(struct lws *wsi, enum lws_token_indexes tok)
{
	int n = lws_hdr_total_length(wsi, tok);

	return n > 0 ? (size_t)n + 1 : 1;
}

/* Copy header tok to *w (sized by http_hdr_size()); returns the copy. */
static const char *http_hdr_take(struct lws *wsi, enum lws_token_indexes tok, char **w)
{
	size_t size = http_hdr_size(wsi, tok);
	char *dst = *w;

	dst[0] = '\0';
	if (size > 1 && lws_hdr_copy(wsi, dst, (int)size, tok) < 0)
		dst[0] = '\0';
	*w += size;
	return dst;
}

/*
 * The job for a routed request: method, decoded path, the query string
 * rebuilt from lws' decoded arguments, headers and peer, in one block.
 * Returns NULL on ENOMEM.
 */
static struct router_job *http_job_new(struct lws *wsi, const struct http_route *route,
				       const char *method, const char *path)
{
	static const enum lws_token_indexes toks[] = {
		WSI_TOKEN_HTTP_CONTENT_TYPE,
		WSI_TOKEN_HTTP_CONTENT_ENCODING,
		WSI_TOKEN_HTTP_AUTHORIZATION,
	};
	struct router_job *job;
	char arg[HTTP_MAX_HEADER_DATA];
	char *query = NULL, *w;
	size_t qlen = 0, size, i;
	int n;

	job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	atomic_init(&job->cancelled, false);
	job->route = route;
	/* lws hands over the arguments one by one, decoded ('+' too) and without '&' */
	for (n = 0; lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, n) >= 0;
	     n++) {
		if (router_query_append(&query, &qlen, arg))
			goto fail;
	}
	size = strlen(method) + 1 + strlen(path) + 1 + qlen + 1 + INET6_ADDRSTRLEN + 1;
	for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
		size += http_hdr_size(wsi, toks[i]);
	job->strings = malloc(size);
	if (!job->strings)
		goto fail;
	w = job->strings;
	job->req.method = strcpy(w, method);
	w += strlen(method) + 1;
	job->req.path = strcpy(w, path);
	w += strlen(path) + 1;
	job->req.query = w;
	memcpy(w, query ? query : "", qlen + 1);
	w += qlen + 1;
	job->req.content_type = http_hdr_take(wsi, toks[0], &w);
	job->req.content_encoding = http_hdr_take(wsi, toks[1], &w);
	job->req.authorization = http_hdr_take(wsi, toks[2], &w);
	job->req.remote_addr = w;
	w[0] = '\0';
	lws_get_peer_simple(wsi, w, INET6_ADDRSTRLEN + 1);
	job->req.body = "";
	free(query);
	return job;

fail:
	free(query);
	return router_job__free(job);
}

/* Queue the job; the session waits for it. Returns 0 or -1 to close. */
static int http_submit(struct lws *wsi, struct http_server *srv, struct http_session *s)
{
	struct router_job *job = s->job;

	s->reading_body = 0;
	job->owner = s;
	if (router_pool__submit(srv->pool, job)) {
		s->job = NULL;
		router_job__free(job);
		return -1;
	}
	/* a slow query must not be cut by lws' pending-transaction timeouts */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	return 0;
}

static const char *const http_method_names[] = {
	[LWSHUMETH_GET] = "GET",	 [LWSHUMETH_POST] = "POST",
	[LWSHUMETH_OPTIONS] = "OPTIONS", [LWSHUMETH_PUT] = "PUT",
	[LWSHUMETH_PATCH] = "PATCH",	 [LWSHUMETH_DELETE] = "DELETE",
	[LWSHUMETH_CONNECT] = "CONNECT", [LWSHUMETH_HEAD] = "HEAD",
};

/*
 * A new request (LWS_CALLBACK_HTTP): answer built-ins and errors at once,
 * otherwise make a job and queue it, or wait for its body first.
 * Returns 0, or -1 to close the connection.
 */
static int http_on_request(struct lws *wsi, struct http_server *srv, struct http_session *s,
			   const char *path)
{
	const struct http_route *route;
	const char *mname = "?";
	char allow[128], clen[32];
	unsigned long long want = 0;
	int method, uri_len, has_len, body_method;
	char *uri;

	http_session_reset(s);
	s->wsi = wsi;
	if (!path)
		path = "";
	method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
	if (method >= 0 &&
	    method < (int)(sizeof(http_method_names) / sizeof(http_method_names[0])) &&
	    http_method_names[method])
		mname = http_method_names[method];
	body_method = method == LWSHUMETH_POST || method == LWSHUMETH_PUT ||
		      method == LWSHUMETH_PATCH;
	/* GET answers keep the connection; others close unless we read their body */
	s->close_after = method != LWSHUMETH_GET;

	if (!strcmp(path, "/health") || !strcmp(path, "/metrics"))
		return http_builtin(wsi, srv, s, method, !strcmp(path, "/health"));

	route = router_match(srv->routes, srv->nroutes, mname, path, allow, sizeof(allow));
	if (!route)
		return http_send_const(
			wsi, s, allow[0] ? HTTP_STATUS_METHOD_NOT_ALLOWED : HTTP_STATUS_NOT_FOUND,
			allow[0] ? HTTP_BODY_NOT_ALLOWED : HTTP_BODY_NOT_FOUND, allow);

	if (body_method && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
		return http_send_const(wsi, s, HTTP_STATUS_LENGTH_REQUIRED, HTTP_BODY_NEED_LENGTH,
				       NULL);
	has_len = body_method &&
		  lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
	if (has_len) {
		want = strtoull(clen, NULL, 10);
		if (want > srv->max_body)
			return http_send_const(wsi, s, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
					       HTTP_BODY_TOO_LARGE, NULL);
	}

	s->job = http_job_new(wsi, route, mname, path);
	if (!s->job) {
		s->close_after = 1;
		return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				       HTTP_BODY_NO_MEMORY, NULL);
	}
	if (has_len) {
		/* lws calls HTTP_BODY (maybe never for 0 bytes), then BODY_COMPLETION */
		s->reading_body = 1;
		s->close_after = 0;
		return 0;
	}
	return http_submit(wsi, srv, s);
}

/* A chunk of the request body. Returns 0, or -1 to close. */
static int http_on_body(struct lws *wsi, struct http_server *srv, struct http_session *s,
			const void *in, size_t len)
{
	int err;

	if (!s->job || !s->reading_body)
		return 0; /* an answered request (413 ...): its body is dropped */
	err = router_job__add_body(s->job, in, len, srv->max_body);
	if (!err)
		return 0;
	router_job__free(s->job);
	s->job = NULL;
	s->reading_body = 0;
	s->close_after = 1;
	if (err == -E2BIG)
		return http_send_const(wsi, s, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
				       HTTP_BODY_TOO_LARGE, NULL);
	return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR, HTTP_BODY_NO_MEMORY,
			       NULL);
}

/* Start writing a finished job's response; the job is freed. */
static int http_answer_job(struct http_session *s, struct router_job *job)
{
	const struct http_response *r = &job->resp;
	struct http_head h = {
		.status = r->status > 0 ? (unsigned int)r->status : HTTP_STATUS_OK,
		.ctype = r->content_type,
		.cenc = r->content_encoding,
		.retry_after_s = r->retry_after_s,
	};

	s->job = NULL;
	if (job->resp.body) {
		http_session_set_owned(s, job->resp.body, job->resp.body_len);
		job->resp.body = NULL;
	} else {
		http_session_set_const(s, "");
	}
	router_job__free(job);
	return http_send_head(s->wsi, s, &h);
}

/* The network loop was woken: hand completed jobs to their sessions. */
static void http_drain_done(struct http_server *srv)
{
	struct router_job *job = router_pool__take_done(srv->pool);

	while (job) {
		struct router_job *next = job->next;
		struct http_session *s = job->owner;

		if (!s)
			router_job__free(job); /* the client has gone */
		else if (http_answer_job(s, job))
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		job = next;
	}
}

/* Write the next chunk of the body; finish the transaction after the last. */
static int http_write_body(struct lws *wsi, struct http_server *srv, struct http_session *s)
{
	size_t n = s->len - s->off;
	enum lws_write_protocol wp = LWS_WRITE_HTTP_FINAL;
	int close_after;

	if (n > HTTP_CHUNK) {
		n = HTTP_CHUNK;
		wp = LWS_WRITE_HTTP;
	}
	if (n) {
		memcpy(srv->wbuf + LWS_PRE, s->data + s->off, n);
		if (lws_write(wsi, srv->wbuf + LWS_PRE, n, wp) != (int)n)
			return -1;
		s->off += n;
	}
	if (s->off < s->len) {
		lws_callback_on_writable(wsi);
		return 0;
	}

	close_after = s->close_after;
	http_session_reset(s);
	if (close_after || lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_server *srv = lws_context_user(lws_get_context(wsi));
	struct http_session *s = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (!s)
			return -1;
		return http_on_request(wsi, srv, s, in);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!s || !s->active)
			return 0;
		return http_write_body(wsi, srv, s);
	case LWS_CALLBACK_HTTP_BODY:
		if (!s)
			return -1;
		return http_on_body(wsi, srv, s, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!s || !s->job || !s->reading_body)
			return 0;
		return http_submit(wsi, srv, s);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (srv && srv->pool)
			http_drain_done(srv);
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (s)
			http_session_reset(s);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols http_protocols[] = {
	{
		.name = "http",
		.callback = http_callback,
		.per_session_data_size = sizeof(struct http_session),
	},
	{ 0 },
};

static void *http_service_thread(void *arg)
{
	struct http_server *srv = arg;

	while (!atomic_load(&srv->quit)) {
		if (lws_service(srv->ctx, 0) < 0)
			break;
	}
	return NULL;
}

/* Called by a handler thread after it completed a job. */
static void http_wake(void *arg)
{
	struct http_server *srv = arg;

	lws_cancel_service(srv->ctx);
}

struct http_server *http_server__start(const struct http_server_opts *opts)
{
	struct lws_context_creation_info info;
	struct http_listen_addr la;
	struct http_server *srv = NULL;
	uint64_t ipv6_opt;
	int err;

	if (!opts || !opts->store || (opts->nroutes && !opts->routes)) {
		err = -EINVAL;
		goto fail;
	}
	err = http_resolve_listen(
		opts->listen && opts->listen[0] ? opts->listen : HTTP_DEFAULT_LISTEN, &la);
	if (err)
		goto fail;

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		err = -ENOMEM;
		goto fail;
	}
	srv->store = opts->store;
	srv->max_body = opts->max_body_bytes ? opts->max_body_bytes : HTTP_DEFAULT_MAX_BODY;
	if (opts->nroutes) {
		srv->routes = calloc(opts->nroutes, sizeof(*srv->routes));
		if (!srv->routes) {
			err = -ENOMEM;
			goto fail;
		}
		memcpy(srv->routes, opts->routes, opts->nroutes * sizeof(*srv->routes));
		srv->nroutes = opts->nroutes;
	}
	atomic_init(&srv->quit, 0);
	snprintf(srv->iface, sizeof(srv->iface), "%s", la.host);
	/* an IPv4 address gets a plain AF_INET socket, not a v4-mapped AF_INET6 one */
	ipv6_opt = la.sa.ss_family == AF_INET ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0;

	lws_set_log_level(LLL_ERR | LLL_WARN, http_lws_log);

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | ipv6_opt;
	info.user = srv;
	info.max_http_header_data = HTTP_MAX_HEADER_DATA;
	srv->ctx = lws_create_context(&info);
	if (!srv->ctx) {
		err = -ENOMEM;
		goto fail;
	}

	memset(&info, 0, sizeof(info));
	info.vhost_name = "novamon";
	info.port = la.port;
	info.iface = la.any ? NULL : srv->iface;
	info.protocols = http_protocols;
	info.keepalive_timeout = HTTP_KEEPALIVE_SECS;
	/* without this, lws 4.1 keeps a vhost that could not bind and retries */
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | ipv6_opt;
	if (!lws_create_vhost(srv->ctx, &info)) {
		err = http_probe_bind(&la);
		if (!err)
			err = -EADDRINUSE; /* lost a race with whoever holds it */
		goto fail;
	}

	srv->pool = router_pool__new(opts->handler_threads ? opts->handler_threads :
							     HTTP_DEFAULT_THREADS,
				     http_wake, srv);
	if (!srv->pool) {
		err = -errno;
		goto fail;
	}

	err = -pthread_create(&srv->thread, NULL, http_service_thread, srv);
	if (err)
		goto fail;
	srv->thread_started = 1;
	return srv;

fail:
	http_server__stop(srv);
	errno = -err;
	return NULL;
}

/*
 * Order matters: the network thread stops first, then the handler threads
 * (a job finishing now wakes a context that still exists), then the context,
 * whose CLOSED_HTTP callbacks orphan the jobs still queued, then the jobs.
 */
void http_server__stop(struct http_server *srv)
{
	if (!srv)
		return;
	if (srv->thread_started) {
		atomic_store(&srv->quit, 1);
		lws_cancel_service(srv->ctx);
		pthread_join(srv->thread, NULL);
	}
	router_pool__stop(srv->pool);
	if (srv->ctx)
		lws_context_destroy(srv->ctx);
	router_pool__free(srv->pool);
	free(srv->routes);
	free(srv);
}
