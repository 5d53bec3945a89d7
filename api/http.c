/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the daemon's HTTP port on libwebsockets (4.1), one context with one
 * explicit vhost, served by its own thread.
 *
 * Each request is answered in full from LWS_CALLBACK_HTTP: the body is built
 * (rendered exposition or health JSON) into a malloc'd buffer owned by the
 * session, the headers (with Content-Length) are written, and the body then
 * goes out in HTTP_CHUNK pieces from LWS_CALLBACK_HTTP_WRITEABLE, so a body of
 * tens of MB never sits in one lws_write(). The buffer is freed when the
 * transaction completes or the connection closes. GET transactions keep the
 * connection alive; other methods get their answer and a close, because a
 * request body we do not read would otherwise be parsed as the next request.
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

#define HTTP_DEFAULT_LISTEN "127.0.0.1:9477"
#define HTTP_CHUNK (64 * 1024)
/* Long enough that Prometheus (15 s .. 60 s intervals) reuses its connection. */
#define HTTP_KEEPALIVE_SECS 120

#define HTTP_JSON "application/json"
#define HTTP_BODY_STARTING "{\"status\":\"starting\"}\n"
#define HTTP_BODY_OK "{\"status\":\"ok\"}\n"
#define HTTP_BODY_NOT_FOUND "{\"error\":\"not found\"}\n"
#define HTTP_BODY_NOT_ALLOWED "{\"error\":\"method not allowed\"}\n"
#define HTTP_BODY_NO_MEMORY "{\"error\":\"out of memory\"}\n"

struct http_server {
	struct lws_context *ctx;
	struct metric_store *store;
	pthread_t thread;
	int thread_started;
	atomic_int quit; /* set by __stop(), read by the service thread */
	char iface[INET6_ADDRSTRLEN];
	/* Chunk staging with LWS_PRE headroom; only the service thread uses it. */
	unsigned char wbuf[LWS_PRE + HTTP_CHUNK];
};

/* Per connection; lws zeroes it and keeps it across keep-alive requests. */
struct http_session {
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

static void http_session_reset(struct http_session *s)
{
	free(s->owned);
	memset(s, 0, sizeof(*s));
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

/*
 * Route the request, build its body and write the status line and headers.
 * The body follows from LWS_CALLBACK_HTTP_WRITEABLE. Returns 0, or -1 to
 * close the connection.
 */
static int http_begin(struct lws *wsi, struct http_server *srv, struct http_session *s,
		      const char *path)
{
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	const char *ctype = HTTP_JSON;
	unsigned int status = HTTP_STATUS_OK;
	int is_health, is_metrics, method, uri_len, err = 0;
	char *uri;

	http_session_reset(s);
	method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
	is_health = path && !strcmp(path, "/health");
	is_metrics = path && !strcmp(path, "/metrics");
	s->close_after = method != LWSHUMETH_GET;

	if (!is_health && !is_metrics) {
		status = HTTP_STATUS_NOT_FOUND;
		http_session_set_const(s, HTTP_BODY_NOT_FOUND);
	} else if (method != LWSHUMETH_GET) {
		status = HTTP_STATUS_METHOD_NOT_ALLOWED;
		http_session_set_const(s, HTTP_BODY_NOT_ALLOWED);
	} else if (is_health) {
		http_build_health(srv, s);
	} else {
		ctype = EXPOSITION_CONTENT_TYPE;
		err = http_build_metrics(srv, s);
	}
	if (err) {
		http_session_reset(s);
		s->close_after = 1;
		status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
		ctype = HTTP_JSON;
		http_session_set_const(s, HTTP_BODY_NO_MEMORY);
	}
	s->active = 1;

	if (lws_add_http_common_headers(wsi, status, ctype, s->len, &p, end))
		return -1;
	if (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
	    lws_add_http_header_by_name(
		    wsi, (const unsigned char *)"allow:", (const unsigned char *)"GET", 3, &p, end))
		return -1;
	if (s->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					 5, &p, end))
		return -1;
	if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
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
		return http_begin(wsi, srv, s, in);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!s || !s->active)
			return 0;
		return http_write_body(wsi, srv, s);
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		/* request bodies are ignored; such requests are answered and closed */
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

struct http_server *http_server__start(const struct http_server_opts *opts)
{
	struct lws_context_creation_info info;
	struct http_listen_addr la;
	struct http_server *srv = NULL;
	uint64_t ipv6_opt;
	int err;

	if (!opts || !opts->store) {
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
	atomic_init(&srv->quit, 0);
	snprintf(srv->iface, sizeof(srv->iface), "%s", la.host);
	/* an IPv4 address gets a plain AF_INET socket, not a v4-mapped AF_INET6 one */
	ipv6_opt = la.sa.ss_family == AF_INET ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0;

	lws_set_log_level(LLL_ERR | LLL_WARN, http_lws_log);

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | ipv6_opt;
	info.user = srv;
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

void http_server__stop(struct http_server *srv)
{
	if (!srv)
		return;
	if (srv->thread_started) {
		atomic_store(&srv->quit, 1);
		lws_cancel_service(srv->ctx);
		pthread_join(srv->thread, NULL);
	}
	if (srv->ctx)
		lws_context_destroy(srv->ctx);
	free(srv);
}
