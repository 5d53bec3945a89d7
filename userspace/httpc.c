/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc: the small blocking HTTP/1.1 GET client of the CLI (novamon top,
 * novamon query): connect with a timeout, send one request with
 * "Connection: close", decode Content-Length, chunked or read-to-EOF bodies.
 * Plain http only.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpc.h"

/* Find "\r\n" in [p, end); returns its start or NULL. */
static const char *httpc_crlf(const char *p, const char *end)
{
	while (p + 1 < end) {
		const char *cr = memchr(p, '\r', (size_t)(end - p - 1));

		if (!cr)
			return NULL;
		if (cr[1] == '\n')
			return cr;
		p = cr + 1;
	}
	return NULL;
}

/* Header value of line [p, eol) if it is header name, else NULL; *vlen set. */
static const char *httpc_header(const char *p, const char *eol, const char *name, size_t *vlen)
{
	size_t n = strlen(name);

	if ((size_t)(eol - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
		return NULL;
	p += n + 1;
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++;
	while (eol > p && (eol[-1] == ' ' || eol[-1] == '\t'))
		eol--;
	*vlen = (size_t)(eol - p);
	return p;
}

/*
 * Decode the chunked body at [p, end) into a malloc'd buffer. Returns 0,
 * -EAGAIN (incomplete), -EPROTO or -ENOMEM.
 */
static int httpc_dechunk(const char *p, const char *end, char **body, size_t *body_len)
{
	char *out = NULL;
	size_t len = 0;
	int err;

	for (;;) {
		const char *eol = httpc_crlf(p, end);
		unsigned long long size;
		const char *q;
		char *grown;

		if (!eol) {
			err = -EAGAIN;
			goto out_free;
		}
		size = 0;
		for (q = p; q < eol && *q != ';' && *q != ' ' && *q != '\t'; q++) {
			int dgt;

			if (*q >= '0' && *q <= '9')
				dgt = *q - '0';
			else if ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f')
				dgt = (*q | 0x20) - 'a' + 10;
			else
				break;
			if (size > (HTTPC_MAX_RESPONSE >> 4)) {
				err = -EPROTO;
				goto out_free;
			}
			size = size * 16 + (unsigned long long)dgt;
		}
		if (q == p || (q < eol && *q != ';' && *q != ' ' && *q != '\t')) {
			err = -EPROTO;
			goto out_free;
		}
		p = eol + 2;
		if (size == 0) {
			/* Trailers, then an empty line. */
			for (;;) {
				eol = httpc_crlf(p, end);
				if (!eol) {
					err = -EAGAIN;
					goto out_free;
				}
				if (eol == p)
					break;
				p = eol + 2;
			}
			break;
		}
		if ((size_t)(end - p) < size + 2) {
			err = -EAGAIN;
			goto out_free;
		}
		if (p[size] != '\r' || p[size + 1] != '\n' || len + size > HTTPC_MAX_RESPONSE) {
			err = -EPROTO;
			goto out_free;
		}
		grown = realloc(out, len + size + 1);
		if (!grown) {
			err = -ENOMEM;
			goto out_free;
		}
		out = grown;
		memcpy(out + len, p, size);
		len += size;
		p += size + 2;
	}
	if (!out) {
		out = malloc(1);
		if (!out)
			return -ENOMEM;
	}
	out[len] = '\0';
	*body = out;
	*body_len = len;
	return 0;

out_free:
	free(out);
	return err;
}

int httpc_decode(const char *buf, size_t len, int eof, int *status, char **body, size_t *body_len)
{
	const char *end = buf + len;
	const char *hdr_end, *p, *eol;
	unsigned long long clen = 0;
	int have_clen = 0, chunked = 0;
	int err;

	*body = NULL;
	*body_len = 0;
	hdr_end = NULL;
	for (p = buf; (eol = httpc_crlf(p, end)); p = eol + 2) {
		if (eol == p) {
			hdr_end = eol + 2;
			break;
		}
	}
	if (!hdr_end)
		return eof ? -EPROTO : -EAGAIN;

	/* Status line: HTTP/1.x SSS reason */
	eol = httpc_crlf(buf, end);
	if (eol - buf < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] < '1' ||
	    buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
	    (eol - buf > 12 && buf[12] != ' '))
		return -EPROTO;
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');

	for (p = eol + 2; p < hdr_end - 2; p = eol + 2) {
		const char *val;
		size_t vlen;

		eol = httpc_crlf(p, end);
		val = httpc_header(p, eol, "content-length", &vlen);
		if (val) {
			char num[24];
			char *e;

			if (!vlen || vlen >= sizeof(num) || val[0] < '0' || val[0] > '9')
				return -EPROTO;
			memcpy(num, val, vlen);
			num[vlen] = '\0';
			errno = 0;
			clen = strtoull(num, &e, 10);
			if (errno || *e || clen > HTTPC_MAX_RESPONSE)
				return -EPROTO;
			have_clen = 1;
			continue;
		}
		val = httpc_header(p, eol, "transfer-encoding", &vlen);
		if (val && vlen >= 7 && !strncasecmp(val + vlen - 7, "chunked", 7))
			chunked = 1;
	}

	if (chunked) {
		err = httpc_dechunk(hdr_end, end, body, body_len);
		if (err == -EAGAIN && eof)
			err = -EPROTO;
		return err;
	}
	if (have_clen) {
		if ((size_t)(end - hdr_end) < clen)
			return eof ? -EPROTO : -EAGAIN;
	} else if (*status == 204 || *status == 304) {
		clen = 0;
	} else {
		if (!eof)
			return -EAGAIN;
		clen = (size_t)(end - hdr_end);
	}
	*body = malloc(clen + 1);
	if (!*body)
		return -ENOMEM;
	memcpy(*body, hdr_end, clen);
	(*body)[clen] = '\0';
	*body_len = clen;
	return 0;
}

/*
 * Connect to t with a timeout. Returns the socket or a negative errno
 * (-EAI_* codes are mapped to -EHOSTUNREACH with *gai_err set).
 */
static int httpc_connect(const struct httpc_target *t, int timeout_ms, int *gai_err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	struct addrinfo *res = NULL, *ai;
	int err = -ECONNREFUSED;
	int fd = -1;
	int rc;

	*gai_err = 0;
	rc = getaddrinfo(t->host, t->port, &hints, &res);
	if (rc) {
		*gai_err = rc;
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		/* On Linux SO_SNDTIMEO also bounds connect(); SO_RCVTIMEO bounds each recv. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno == EINPROGRESS || errno == EAGAIN ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

int httpc_fetch(const struct httpc_target *t, const char *agent, const char *accept, int timeout_ms,
		int *status, char **body, size_t *body_len, int *gai_err)
{
	char req[HTTPC_MAX_REQUEST];
	char *buf = NULL;
	size_t len = 0, cap = 0, sent = 0;
	int reqlen;
	int err;
	int fd;

	*body = NULL;
	fd = httpc_connect(t, timeout_ms, gai_err);
	if (fd < 0)
		return fd;
	reqlen = snprintf(req, sizeof(req),
			  "GET %s HTTP/1.1\r\n"
			  "Host: %s\r\n"
			  "User-Agent: %s\r\n"
			  "Accept: %s\r\n"
			  "Connection: close\r\n"
			  "\r\n",
			  t->path, t->display, agent, accept);
	if (reqlen < 0 || (size_t)reqlen >= sizeof(req)) {
		err = -E2BIG;
		goto cleanup;
	}
	while (sent < (size_t)reqlen) {
		ssize_t n = send(fd, req + sent, (size_t)reqlen - sent, MSG_NOSIGNAL);

		if (n < 0) {
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto cleanup;
		}
		sent += (size_t)n;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *grown;

			cap = cap ? cap * 2 : 65536;
			if (cap > HTTPC_MAX_RESPONSE + 65536) {
				err = -EFBIG;
				goto cleanup;
			}
			grown = realloc(buf, cap);
			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = grown;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0) {
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto cleanup;
		}
		len += (size_t)n;
		err = httpc_decode(buf, len, n == 0, status, body, body_len);
		if (err != -EAGAIN)
			goto cleanup;
	}
cleanup:
	free(buf);
	close(fd);
	return err;
}

int httpc_get(const char *url, int timeout_ms, int *status, char **body, size_t *len, char *err,
	      size_t errlen)
{
	char host[256], port[8] = "80", display[272];
	const char *h, *hend, *path, *colon = NULL;
	struct httpc_target t;
	size_t hlen;
	int gai_err = 0, rc;

	*body = NULL;
	if (!url || strncasecmp(url, "http://", 7)) {
		snprintf(err, errlen, "unsupported URL '%s': only http:// is spoken",
			 url ? url : "");
		return -EINVAL;
	}
	h = url + 7;
	path = strchr(h, '/');
	if (!path)
		path = h + strlen(h);
	hend = path;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(hend - h));

		if (!close || (close + 1 < hend && close[1] != ':'))
			goto bad;
		colon = close + 1 < hend ? close + 1 : NULL;
		hlen = (size_t)(close - h - 1);
		h++;
	} else {
		colon = memchr(h, ':', (size_t)(hend - h));
		hlen = (size_t)((colon ? colon : hend) - h);
	}
	if (!hlen || hlen >= sizeof(host))
		goto bad;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon) {
		size_t plen = (size_t)(hend - colon - 1);
		char *e;
		unsigned long v;

		if (!plen || plen >= sizeof(port))
			goto bad;
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		v = strtoul(port, &e, 10);
		if (*e || !v || v > 65535 || port[0] < '0' || port[0] > '9')
			goto bad;
	}
	snprintf(display, sizeof(display), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
	t.host = host;
	t.port = port;
	t.path = *path ? path : "/";
	t.display = display;
	rc = httpc_fetch(&t, "novamon", "application/json", timeout_ms, status, body, len,
			 &gai_err);
	if (!rc)
		return 0;
	if (gai_err)
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai_err));
	else if (rc == -EPROTO || rc == -EFBIG)
		snprintf(err, errlen, "%s sent a response that is not valid HTTP (%s)", display,
			 strerror(-rc));
	else if (rc == -E2BIG)
		snprintf(err, errlen, "the request is too long");
	else
		snprintf(err, errlen, "cannot connect to %s: %s", display, strerror(-rc));
	return rc;

bad:
	snprintf(err, errlen, "bad URL '%s'", url);
	return -EINVAL;
}
