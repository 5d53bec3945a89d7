/* SPDX-License-Identifier: Apache-2.0 */
/*
 * router: URL helpers, route matching and the handler thread pool of the
 * HTTP server (see router.h). Nothing here calls libwebsockets.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static int router_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int router_url_decode(char *s, bool form)
{
	char *w = s;
	const char *r = s;

	while (*r) {
		if (*r == '%') {
			int hi = router_hex((unsigned char)r[1]);
			int lo = hi < 0 ? -1 : router_hex((unsigned char)r[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else if (form && *r == '+') {
			*w++ = ' ';
			r++;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (int)(w - s);
}

static bool router_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* Percent-encode [s, s + n) at out; returns the bytes written (at most 3n). */
static size_t router_encode(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, w = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (router_unreserved(c)) {
			out[w++] = (char)c;
		} else {
			out[w++] = '%';
			out[w++] = hex[c >> 4];
			out[w++] = hex[c & 15];
		}
	}
	return w;
}

int router_query_append(char **q, size_t *len, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t alen = strlen(arg), nlen = eq ? (size_t)(eq - arg) : alen;
	char *grown;
	size_t w;

	/* '&' + each byte tripled + '=' + NUL */
	grown = realloc(*q, *len + 3 * alen + 3);
	if (!grown)
		return -ENOMEM;
	*q = grown;
	w = *len;
	if (w)
		grown[w++] = '&';
	w += router_encode(grown + w, arg, nlen);
	if (eq) {
		grown[w++] = '=';
		w += router_encode(grown + w, eq + 1, alen - nlen - 1);
	}
	grown[w] = '\0';
	*len = w;
	return 0;
}

static bool router_path_matches(const struct http_route *r, const char *path, size_t *plen)
{
	size_t n = strlen(r->path);

	*plen = n;
	if (n > 1 && r->path[n - 1] == '/') /* "/" alone is exact */
		return !strncmp(path, r->path, n);
	return !strcmp(path, r->path);
}

const struct http_route *router_match(const struct http_route *routes, size_t n, const char *method,
				      const char *path, char *allow, size_t allowlen)
{
	const struct http_route *best = NULL;
	size_t i, best_len = 0, used = 0;

	if (allowlen)
		allow[0] = '\0';
	for (i = 0; i < n; i++) {
		const struct http_route *r = &routes[i];
		bool prefix;
		size_t plen;

		if (!r->path || !r->fn || !router_path_matches(r, path, &plen))
			continue;
		prefix = plen > 1 && r->path[plen - 1] == '/';
		if (!r->method || !strcmp(r->method, method)) {
			if (!prefix) {
				best = r;
				break;
			}
			if (!best || plen > best_len) {
				best = r;
				best_len = plen;
			}
		} else if (allowlen && !strstr(allow, r->method) &&
			   used + strlen(r->method) + 3 < allowlen) {
			used += (size_t)snprintf(allow + used, allowlen - used, "%s%s",
						 used ? ", " : "", r->method);
		}
	}
	if (best && allowlen)
		allow[0] = '\0';
	return best;
}

struct router_job *router_job__free(struct router_job *job)
{
	if (!job)
		return NULL;
	free(job->strings);
	free(job->body);
	free(job->resp.body);
	free(job);
	return NULL;
}

int router_job__add_body(struct router_job *job, const void *data, size_t len, size_t max)
{
	size_t have = job->req.body_len;

	if (len > max || have > max - len)
		return -E2BIG;
	if (have + len + 1 > job->body_cap) {
		size_t cap = job->body_cap ? job->body_cap : 4096;
		char *grown;

		while (cap < have + len + 1)
			cap *= 2;
		grown = realloc(job->body, cap);
		if (!grown)
			return -ENOMEM;
		job->body = grown;
		job->body_cap = cap;
	}
	if (len)
		memcpy(job->body + have, data, len);
	job->body[have + len] = '\0';
	job->req.body = job->body;
	job->req.body_len = have + len;
	return 0;
}

struct router_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct router_job *pending, **pending_tail;
	struct router_job *done, **done_tail;
	bool quit;
	void (*notify)(void *);
	void *ctx;
	pthread_t *threads;
	unsigned int nthreads; /* started */
};

/* Run one job's handler; a failing handler gets a 500 JSON error. */
static void router_run(struct router_job *job)
{
	int err;

	if (atomic_load(&job->cancelled))
		return;
	err = job->route->fn(&job->req, &job->resp, job->route->ctx);
	if (err < 0) {
		free(job->resp.body);
		memset(&job->resp, 0, sizeof(job->resp));
		http_error(&job->resp, 500, "internal", "%s", strerror(-err));
	}
}

static void *router_worker(void *arg)
{
	struct router_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct router_job *job;

		while (!p->quit && !p->pending)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->quit)
			break;
		job = p->pending;
		p->pending = job->next;
		if (!p->pending)
			p->pending_tail = &p->pending;
		job->next = NULL;
		pthread_mutex_unlock(&p->lock);

		router_run(job);

		pthread_mutex_lock(&p->lock);
		*p->done_tail = job;
		p->done_tail = &job->next;
		pthread_mutex_unlock(&p->lock);
		p->notify(p->ctx);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct router_pool *router_pool__new(unsigned int nthreads, void (*notify)(void *), void *ctx)
{
	struct router_pool *p;
	int err;

	if (!nthreads || !notify) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (!p->threads) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->pending_tail = &p->pending;
	p->done_tail = &p->done;
	p->notify = notify;
	p->ctx = ctx;
	for (; p->nthreads < nthreads; p->nthreads++) {
		err = pthread_create(&p->threads[p->nthreads], NULL, router_worker, p);
		if (err) {
			router_pool__free(p);
			errno = err;
			return NULL;
		}
	}
	return p;
}

int router_pool__submit(struct router_pool *p, struct router_job *job)
{
	int err = 0;

	pthread_mutex_lock(&p->lock);
	if (p->quit) {
		err = -ESHUTDOWN;
	} else {
		job->next = NULL;
		*p->pending_tail = job;
		p->pending_tail = &job->next;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

struct router_job *router_pool__take_done(struct router_pool *p)
{
	struct router_job *list;

	pthread_mutex_lock(&p->lock);
	list = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->lock);
	return list;
}

void router_pool__stop(struct router_pool *p)
{
	unsigned int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

static void router_free_list(struct router_job *j)
{
	while (j) {
		struct router_job *next = j->next;

		router_job__free(j);
		j = next;
	}
}

void router_pool__free(struct router_pool *p)
{
	if (!p)
		return;
	router_pool__stop(p);
	router_free_list(p->pending);
	router_free_list(p->done);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
