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
 * Authentication (when opts->authenticate is set) runs on the network thread
 * as soon as the headers are in, before any body is read: every path but
 * /health and the public paths needs a token (401 with WWW-Authenticate
 * otherwise). The principal travels with the job to the handler. A route is
 * run through a wrapper (struct http_wrap) on the handler thread, which
 * refuses a role below the route's min_role (403) and hands administrative
 * requests, allowed or refused, to the audit hook with their status: the
 * hook may fsync, and the network thread must never wait for a disk.
 *
 * With a certificate and key the vhost speaks TLS only (ALPN http/1.1).
 *
 * lws is not thread safe: the context is created and destroyed by the caller
 * of http_server__start()/__stop() while the service thread is not running,
 * and the only cross-thread call is lws_cancel_service().
 *
 * The service thread runs a libev loop (epoll) that lws uses as a foreign
 * loop, through Debian's libwebsockets-evlib-ev plugin: lws' own loop is a
 * poll() over every socket at each wake-up, which with thousands of live
 * WebSocket feeds cost more than a millisecond each time the feeds were
 * woken to write. Foreign, so lws adds no SIGINT watcher of its own. Where
 * the plugin cannot be loaded the server falls back to lws' poll() loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "exposition.h"
#include "http.h"
#include "log.h"
#include "lws_alloc.h"
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
#define HTTP_REALM "novamon"

struct http_server;

/*
 * How the handler thread runs a route: run calls the route's handler, deny
 * answers 403 without it; both then give administrative requests to the
 * audit hook.
 */
struct http_wrap {
	struct http_route run;
	struct http_route deny;
	const struct http_route *orig;
	struct http_server *srv;
};

/* The vhost's protocols with the WebSocket feeds: http, ws, end. */
struct http_ws_protocols {
	struct lws_protocols list[3];
	struct lws_protocol_vhost_options pvo;
	struct lws_protocol_vhost_options pvo_default;
};

struct http_server {
	struct lws_context *ctx;
	struct metric_store *store;
	struct http_route *routes; /* a copy of opts->routes */
	struct http_wrap *wraps; /* wraps[i] runs routes[i] */
	size_t nroutes;
	http_auth_fn authenticate;
	void *auth_ctx;
	char **public_paths;
	size_t npublic;
	http_audit_fn audit;
	void *audit_ctx;
	char tls_cert[512];
	char tls_key[512];
	size_t max_body;
	struct router_pool *pool;
	pthread_t thread;
	int thread_started;
	atomic_int quit; /* set by __stop(), read by the service thread */
	struct ev_loop *loop; /* NULL: lws' own poll() loop */
	ev_async stop_w; /* __stop() breaks the loop with it */
	struct http_ws_protocols ws; /* when opts->ws_protocol is set */
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
	int head_only; /* HEAD: the headers of the GET answer, no body */
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

static int http_build_metrics(struct http_server *srv, struct http_session *s,
			      enum exposition_format f)
{
	struct metric_set *set;
	char *body = NULL;
	size_t len = 0;
	int err;

	set = metric_store__get(srv->store, NULL);
	err = exposition_render_format(set, f, &body, &len);
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
	const char *www_auth;
	int retry_after_s;
	const char *etag;
	const char *cache_control; /* NULL: no-store */
	const char *vary; /* the request headers the answer depends on; NULL: none */
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
	if (h->status == HTTP_STATUS_NOT_MODIFIED) {
		/* RFC 9110 15.4.5: no content, so neither Content-Type nor Content-Length */
		s->len = 0;
		if (lws_add_http_header_status(wsi, h->status, &p, end))
			return -1;
	} else if (lws_add_http_common_headers(wsi, h->status, h->ctype ? h->ctype : HTTP_JSON,
					       s->len, &p, end)) {
		return -1;
	}
	if (h->etag && h->etag[0] && http_add_header(wsi, "etag:", h->etag, &p, end))
		return -1;
	if (h->allow && h->allow[0] && http_add_header(wsi, "allow:", h->allow, &p, end))
		return -1;
	if (h->vary && h->vary[0] && http_add_header(wsi, "vary:", h->vary, &p, end))
		return -1;
	if (h->cenc && h->cenc[0] && http_add_header(wsi, "content-encoding:", h->cenc, &p, end))
		return -1;
	if (h->www_auth && h->www_auth[0] &&
	    http_add_header(wsi, "www-authenticate:", h->www_auth, &p, end))
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
	if (http_add_header(wsi, "cache-control:", h->cache_control ? h->cache_control : "no-store",
			    &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (!s->len || s->head_only) {
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

	/* HEAD as RFC 9110 9.3.2 has it: the GET answer's headers (its length too), no body */
	if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD)
		return http_send_const(wsi, s, HTTP_STATUS_METHOD_NOT_ALLOWED,
				       HTTP_BODY_NOT_ALLOWED, "GET, HEAD");
	if (is_health) {
		http_build_health(srv, s);
	} else {
		/* OpenMetrics (with exemplars) when the scraper asks for it, as Prometheus does */
		char accept[512] = "";
		enum exposition_format f;

		if (lws_hdr_copy(wsi, accept, sizeof(accept), WSI_TOKEN_HTTP_ACCEPT) < 0)
			accept[0] = '\0';
		f = exposition_negotiate(accept);
		h.ctype = exposition_content_type(f);
		h.vary = "Accept"; /* RFC 9110 12.5.5: the format was negotiated */
		err = http_build_metrics(srv, s, f);
	}
	if (err) {
		s->close_after = 1;
		return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				       HTTP_BODY_NO_MEMORY, NULL);
	}
	s->head_only = method == LWSHUMETH_HEAD;
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
 * The job for a routed request: the principal's room, method, decoded path,
 * the query string rebuilt from lws' decoded arguments, headers and peer,
 * in one block (router_job has no principal field: it lives at the start of
 * job->strings, which malloc aligns). Returns NULL on ENOMEM.
 */
static struct router_job *http_job_new(struct lws *wsi, const struct http_route *route,
				       const char *method, const char *path)
{
	static const enum lws_token_indexes toks[] = {
		WSI_TOKEN_HTTP_CONTENT_TYPE,
		WSI_TOKEN_HTTP_CONTENT_ENCODING,
		WSI_TOKEN_HTTP_AUTHORIZATION,
		WSI_TOKEN_HTTP_IF_NONE_MATCH,
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
	size = sizeof(struct auth_principal) + strlen(method) + 1 + strlen(path) + 1 + qlen + 1 +
	       INET6_ADDRSTRLEN + 1;
	for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
		size += http_hdr_size(wsi, toks[i]);
	job->strings = malloc(size);
	if (!job->strings)
		goto fail;
	memset(job->strings, 0, sizeof(struct auth_principal));
	w = job->strings + sizeof(struct auth_principal);
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
	job->req.if_none_match = http_hdr_take(wsi, toks[3], &w);
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

/* The principal's room in a job made by http_job_new(). */
static struct auth_principal *http_job_principal(struct router_job *job)
{
	return (struct auth_principal *)(void *)job->strings;
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

/* Whether path is served without a token (besides /health). */
static bool http_is_public(const struct http_server *srv, const char *path)
{
	size_t i;

	for (i = 0; i < srv->npublic; i++) {
		const char *p = srv->public_paths[i];
		size_t n = strlen(p);

		if (n > 1 && p[n - 1] == '/' ? !strncmp(path, p, n) : !strcmp(path, p))
			return true;
	}
	return false;
}

/*
 * 401 for a missing (rc -ENOENT) or bad token. RFC 6750 3.1: a request
 * without a token gets the challenge without an error code; a bad one gets
 * error="invalid_token" and the reason. Returns 0 or -1 to close.
 */
static int http_send_unauthorized(struct lws *wsi, struct http_session *s, int rc, const char *why)
{
	struct http_response r = { 0 };
	struct http_head h = { .status = HTTP_STATUS_UNAUTHORIZED, .ctype = HTTP_JSON };
	char desc[200], chal[320];
	size_t i;

	/* why goes inside a quoted-string: no quotes, backslashes or controls */
	snprintf(desc, sizeof(desc), "%s", why && why[0] ? why : "invalid token");
	for (i = 0; desc[i]; i++)
		if (desc[i] == '"' || desc[i] == '\\' || (unsigned char)desc[i] < 0x20 ||
		    (unsigned char)desc[i] >= 0x7f)
			desc[i] = '\'';
	if (rc == -ENOENT)
		snprintf(chal, sizeof(chal), "Bearer realm=\"%s\"", HTTP_REALM);
	else
		snprintf(chal, sizeof(chal),
			 "Bearer realm=\"%s\", error=\"invalid_token\", error_description=\"%s\"",
			 HTTP_REALM, desc);
	h.www_auth = chal;
	if (http_error(&r, HTTP_STATUS_UNAUTHORIZED, "unauthorized", "%s", desc)) {
		s->close_after = 1;
		return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				       HTTP_BODY_NO_MEMORY, NULL);
	}
	http_session_set_owned(s, r.body, r.body_len);
	return http_send_head(wsi, s, &h);
}

/* Whether a request to the route goes to the audit hook (see http.h). */
static bool http_audited(const struct http_route *r, const struct http_request *req)
{
	return r->min_role > AUTH_ROLE_VIEWER && !(r->flags & HTTP_ROUTE_NO_AUDIT) &&
	       strcmp(req->method, "GET") && strcmp(req->method, "HEAD");
}

/* The handler thread's entry for every route: run it, then audit. */
static int http_run_route(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct http_wrap *w = ctx;
	int err = w->orig->fn(req, resp, w->orig->ctx);
	int status = resp->status > 0 ? resp->status : 200;

	if (w->srv->audit && http_audited(w->orig, req))
		w->srv->audit(w->srv->audit_ctx, req, err < 0 ? 500 : status);
	return err;
}

/* A role too weak for the route, or a tenant's token on a global one: 403, audited like a run. */
static int http_deny_route(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct http_wrap *w = ctx;
	const struct auth_principal *p = req->principal;
	int err;

	if (p && (int)p->role >= w->orig->min_role)
		err = http_error(resp, HTTP_STATUS_FORBIDDEN, "forbidden",
				 "%s %s acts on every tenant; the token is limited to tenant %s",
				 req->method, req->path, p->tenant);
	else
		err = http_error(resp, HTTP_STATUS_FORBIDDEN, "forbidden",
				 "%s %s needs the %s role; the token has %s", req->method,
				 req->path, auth_role_name((enum auth_role)w->orig->min_role),
				 p ? auth_role_name(p->role) : "none");
	if (w->srv->audit && http_audited(w->orig, req))
		w->srv->audit(w->srv->audit_ctx, req, HTTP_STATUS_FORBIDDEN);
	return err;
}

static const char *const http_method_names[] = {
	[LWSHUMETH_GET] = "GET",	 [LWSHUMETH_POST] = "POST",
	[LWSHUMETH_OPTIONS] = "OPTIONS", [LWSHUMETH_PUT] = "PUT",
	[LWSHUMETH_PATCH] = "PATCH",	 [LWSHUMETH_DELETE] = "DELETE",
	[LWSHUMETH_CONNECT] = "CONNECT", [LWSHUMETH_HEAD] = "HEAD",
};

/*
 * A new request (LWS_CALLBACK_HTTP): answer built-ins and errors at once,
 * authenticate, otherwise make a job and queue it, or wait for its body
 * first. Returns 0, or -1 to close the connection.
 */
static int http_on_request(struct lws *wsi, struct http_server *srv, struct http_session *s,
			   const char *path)
{
	const struct http_route *route = NULL;
	const struct http_wrap *wrap;
	struct router_job *job = NULL;
	const char *mname = "?";
	char allow[128], clen[32], why[200];
	unsigned long long want = 0;
	int method, uri_len, has_len, body_method, is_metrics, rc;
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

	if (!strcmp(path, "/health"))
		return http_builtin(wsi, srv, s, method, 1);
	is_metrics = !strcmp(path, "/metrics");
	if (!is_metrics)
		route = router_match(srv->routes, srv->nroutes, mname, path, allow, sizeof(allow));

	/* the token first: without one, not even whether a path exists is told */
	if (srv->authenticate && !http_is_public(srv, path)) {
		job = http_job_new(wsi, route, mname, path);
		if (!job) {
			s->close_after = 1;
			return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR,
					       HTTP_BODY_NO_MEMORY, NULL);
		}
		why[0] = '\0';
		rc = srv->authenticate(srv->auth_ctx, &job->req, http_job_principal(job), why,
				       sizeof(why));
		if (rc) {
			router_job__free(job);
			return http_send_unauthorized(wsi, s, rc, why);
		}
		job->req.principal = http_job_principal(job);
	}

	if (is_metrics) {
		router_job__free(job);
		return http_builtin(wsi, srv, s, method, 0);
	}
	if (!route) {
		router_job__free(job);
		return http_send_const(
			wsi, s, allow[0] ? HTTP_STATUS_METHOD_NOT_ALLOWED : HTTP_STATUS_NOT_FOUND,
			allow[0] ? HTTP_BODY_NOT_ALLOWED : HTTP_BODY_NOT_FOUND, allow);
	}
	wrap = &srv->wraps[route - srv->routes];
	if (job && ((int)job->req.principal->role < route->min_role ||
		    ((route->flags & HTTP_ROUTE_ALL_TENANTS) && job->req.principal->tenant[0]))) {
		/* refused before its body is read: the connection closes after the 403 */
		job->route = &wrap->deny;
		s->job = job;
		return http_submit(wsi, srv, s);
	}

	if (body_method && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		router_job__free(job);
		return http_send_const(wsi, s, HTTP_STATUS_LENGTH_REQUIRED, HTTP_BODY_NEED_LENGTH,
				       NULL);
	}
	has_len = body_method &&
		  lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
	if (has_len) {
		want = strtoull(clen, NULL, 10);
		if (want > srv->max_body) {
			router_job__free(job);
			return http_send_const(wsi, s, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
					       HTTP_BODY_TOO_LARGE, NULL);
		}
	}

	if (!job)
		job = http_job_new(wsi, route, mname, path);
	if (!job) {
		s->close_after = 1;
		return http_send_const(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				       HTTP_BODY_NO_MEMORY, NULL);
	}
	job->route = &wrap->run;
	s->job = job;
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
		.etag = r->etag,
		.cache_control = r->cache_control,
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
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return -1; /* an upgrade naming "http": only the ws protocol takes them */
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

/*
 * Put the WebSocket protocol on the vhost next to ours, as its "default"
 * protocol: lws binds an upgrade that names no subprotocol to the vhost's
 * default, while it still hands every plain HTTP request to protocols[0].
 */
static void http_add_ws(struct http_server *srv, const struct lws_protocols *ws,
			struct lws_context_creation_info *info)
{
	struct http_ws_protocols *p = &srv->ws;

	memset(p, 0, sizeof(*p));
	p->list[0] = http_protocols[0];
	p->list[1] = *ws;
	p->pvo_default.name = "default";
	p->pvo_default.value = "";
	p->pvo.name = ws->name;
	p->pvo.value = "";
	p->pvo.options = &p->pvo_default;
	info->protocols = p->list;
	info->pvo = &p->pvo;
}

static void http_on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void *http_service_thread(void *arg)
{
	struct http_server *srv = arg;

	if (srv->loop) {
		ev_run(srv->loop, 0);
		return NULL;
	}
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

/* A pem_password_cb: an encrypted key cannot be used (the daemon has no terminal). */
static int http_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * Check the TLS files before lws sees them: lws only says "no vhost". A
 * missing or unreadable file is its errno, a bad PEM or a key that does not
 * match the certificate -EINVAL.
 */
static int http_check_tls(const char *cert_file, const char *key_file)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	FILE *f;
	int err = 0;

	f = fopen(cert_file, "re");
	if (!f)
		return -errno;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(key_file, "re");
	if (!f) {
		err = -errno;
		goto out;
	}
	/* never OpenSSL's default of asking a terminal for a passphrase */
	key = PEM_read_PrivateKey(f, NULL, http_no_passphrase, NULL);
	fclose(f);
	if (!cert || !key || X509_check_private_key(cert, key) != 1)
		err = -EINVAL;
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	return err;
}

/* Copy the routes, their wrappers and the public paths into srv. Returns 0 or -ENOMEM. */
static int http_copy_opts(struct http_server *srv, const struct http_server_opts *opts)
{
	size_t i;

	if (opts->nroutes) {
		srv->routes = calloc(opts->nroutes, sizeof(*srv->routes));
		srv->wraps = calloc(opts->nroutes, sizeof(*srv->wraps));
		if (!srv->routes || !srv->wraps)
			return -ENOMEM;
		memcpy(srv->routes, opts->routes, opts->nroutes * sizeof(*srv->routes));
		srv->nroutes = opts->nroutes;
	}
	for (i = 0; i < srv->nroutes; i++) {
		struct http_wrap *w = &srv->wraps[i];

		w->orig = &srv->routes[i];
		w->srv = srv;
		w->run = srv->routes[i];
		w->run.fn = http_run_route;
		w->run.ctx = w;
		w->deny = srv->routes[i];
		w->deny.fn = http_deny_route;
		w->deny.ctx = w;
	}
	if (opts->npublic_paths) {
		srv->public_paths = calloc(opts->npublic_paths, sizeof(*srv->public_paths));
		if (!srv->public_paths)
			return -ENOMEM;
		for (i = 0; i < opts->npublic_paths; i++) {
			srv->public_paths[i] = strdup(opts->public_paths[i]);
			if (!srv->public_paths[i])
				return -ENOMEM;
			srv->npublic++;
		}
	}
	srv->authenticate = opts->authenticate;
	srv->auth_ctx = opts->auth_ctx;
	srv->audit = opts->audit;
	srv->audit_ctx = opts->audit_ctx;
	return 0;
}

/*
 * The context on a libev loop of ours (see the top of the file), else on
 * lws' poll() loop with a warning: the server works either way, the poll()
 * one costs a scan of every socket per wake-up.
 */
static struct lws_context *http_create_context(struct http_server *srv,
					       struct lws_context_creation_info *info)
{
	struct lws_context *ctx;
	void *loops[1];

	srv->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (srv->loop) {
		struct lws_context_creation_info ev_info = *info;

		loops[0] = srv->loop;
		ev_info.options |= LWS_SERVER_OPTION_LIBEV;
		ev_info.foreign_loops = loops;
		ctx = lws_create_context(&ev_info);
		if (ctx) {
			ev_async_init(&srv->stop_w, http_on_stop);
			ev_async_start(srv->loop, &srv->stop_w);
			return ctx;
		}
		ev_loop_destroy(srv->loop);
		srv->loop = NULL;
	}
	log_warn("http: libwebsockets' libev plugin (Debian package libwebsockets-evlib-ev) "
		 "could not be loaded: serving with lws' poll() loop, which scans every "
		 "connection at each wake-up");
	return lws_create_context(info);
}

/*
 * No lws validity timer (its idle PING and hangup): the WebSocket feeds ping
 * and time out their clients themselves (ws.c), and an idle HTTP keep-alive
 * connection has keepalive_timeout. lws 4.1 keeps every connection's
 * validity timer in one list sorted by time, and each PONG moved one to the
 * far end of it: about 40 us per PONG with 5,000 feeds open.
 */
static const lws_retry_bo_t http_no_validity = { .secs_since_valid_hangup = 0 };

struct http_server *http_server__start(const struct http_server_opts *opts)
{
	struct lws_context_creation_info info;
	struct http_listen_addr la;
	struct http_server *srv = NULL;
	uint64_t ipv6_opt;
	bool tls;
	int err;

	if (!opts || !opts->store || (opts->nroutes && !opts->routes) ||
	    (opts->npublic_paths && !opts->public_paths)) {
		err = -EINVAL;
		goto fail;
	}
	tls = opts->tls_cert_file && opts->tls_cert_file[0];
	if (tls != (opts->tls_key_file && opts->tls_key_file[0]) ||
	    (tls && (strlen(opts->tls_cert_file) >= sizeof(srv->tls_cert) ||
		     strlen(opts->tls_key_file) >= sizeof(srv->tls_key)))) {
		err = -EINVAL; /* one without the other */
		goto fail;
	}
	if (tls) {
		err = http_check_tls(opts->tls_cert_file, opts->tls_key_file);
		if (err)
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
	err = http_copy_opts(srv, opts);
	if (err)
		goto fail;
	if (tls) {
		snprintf(srv->tls_cert, sizeof(srv->tls_cert), "%s", opts->tls_cert_file);
		snprintf(srv->tls_key, sizeof(srv->tls_key), "%s", opts->tls_key_file);
	}
	atomic_init(&srv->quit, 0);
	snprintf(srv->iface, sizeof(srv->iface), "%s", la.host);
	/* an IPv4 address gets a plain AF_INET socket, not a v4-mapped AF_INET6 one */
	ipv6_opt = la.sa.ss_family == AF_INET ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0;

	lws_set_log_level(LLL_ERR | LLL_WARN, http_lws_log);
	lws_alloc__install();

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | ipv6_opt |
		       (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
	info.user = srv;
	info.max_http_header_data = HTTP_MAX_HEADER_DATA;
	srv->ctx = http_create_context(srv, &info);
	if (!srv->ctx) {
		err = -ENOMEM;
		goto fail;
	}

	memset(&info, 0, sizeof(info));
	info.vhost_name = "novamon";
	info.port = la.port;
	info.iface = la.any ? NULL : srv->iface;
	info.protocols = http_protocols;
	if (opts->ws_protocol)
		http_add_ws(srv, opts->ws_protocol, &info);
	info.keepalive_timeout = HTTP_KEEPALIVE_SECS;
	info.retry_and_idle_policy = &http_no_validity;
	/* without this, lws 4.1 keeps a vhost that could not bind and retries */
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | ipv6_opt;
	if (tls) {
		/* lws 4.1 reads this from the vhost's info too, or serves plain HTTP */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = srv->tls_cert;
		info.ssl_private_key_filepath = srv->tls_key;
		/* the handlers are written for HTTP/1.1 transactions */
		info.alpn = "http/1.1";
	}
	if (!lws_create_vhost(srv->ctx, &info)) {
		err = http_probe_bind(&la);
		if (!err && tls)
			err = -EINVAL; /* the bind works: lws refused the TLS set-up */
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
	size_t i;

	if (!srv)
		return;
	if (srv->thread_started) {
		atomic_store(&srv->quit, 1);
		if (srv->loop)
			ev_async_send(srv->loop, &srv->stop_w);
		else
			lws_cancel_service(srv->ctx);
		pthread_join(srv->thread, NULL);
	}
	router_pool__stop(srv->pool);
	if (srv->ctx)
		lws_context_destroy(srv->ctx);
	if (srv->loop) {
		ev_async_stop(srv->loop, &srv->stop_w);
		ev_loop_destroy(srv->loop);
	}
	router_pool__free(srv->pool);
	for (i = 0; i < srv->npublic; i++)
		free(srv->public_paths[i]);
	free(srv->public_paths);
	free(srv->wraps);
	free(srv->routes);
	free(srv);
}
