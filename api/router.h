/* SPDX-License-Identifier: Apache-2.0 */
/*
 * router: the parts of api/http.c that do not touch libwebsockets: URL
 * decoding, rebuilding the raw query string, route matching, and the pool of
 * handler threads with its pending and completed queues.
 */
#ifndef NOVAMON_ROUTER_H
#define NOVAMON_ROUTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/*
 * Decode %XX escapes of s in place (and '+' as a space when form is true).
 * Returns the decoded length, or -EINVAL for a bad escape or an encoded NUL.
 */
int router_url_decode(char *s, bool form);

/*
 * Append one decoded query argument ("name=value", "name" or "name=") to the
 * raw query string *q of *len bytes, percent-encoding name and value so that
 * http_param() gets them back exactly, '&'-separated. *q is malloc'd and
 * grown. Returns 0 or -ENOMEM.
 */
int router_query_append(char **q, size_t *len, const char *arg);

/*
 * Find the route for method and path: an exact path first, else the longest
 * prefix route (path ending in '/', but "/" alone is exact); a NULL route
 * method accepts any.
 * Returns the route, or NULL: then allow holds the methods the path accepts
 * ("GET, POST": a 405) or "" (a 404).
 */
const struct http_route *router_match(const struct http_route *routes, size_t n, const char *method,
				      const char *path, char *allow, size_t allowlen);

/*
 * One request travelling from the network thread to a handler thread and
 * back. The strings of req point into job-owned memory.
 */
struct router_job {
	struct router_job *next;
	const struct http_route *route;
	struct http_request req;
	struct http_response resp;
	char *strings; /* method, path, query, headers, peer: one block */
	char *body;
	size_t body_cap;
	atomic_bool cancelled; /* the client went away: skip the handler */
	void *owner; /* network thread only: the session waiting, NULL once gone */
};

/* Free a job and everything it holds; NULL is fine. Returns NULL. */
struct router_job *router_job__free(struct router_job *job);
/*
 * Append len bytes to the job's body, keeping it NUL-terminated. Returns 0,
 * -E2BIG when the body would exceed max bytes, or -ENOMEM.
 */
int router_job__add_body(struct router_job *job, const void *data, size_t len, size_t max);

struct router_pool;

/*
 * Start nthreads handler threads. notify(ctx) is called by a handler thread
 * after it put a finished job on the completed queue (the server wakes its
 * network loop with it). Returns NULL with errno set.
 */
struct router_pool *router_pool__new(unsigned int nthreads, void (*notify)(void *), void *ctx);
/* Queue a job for a handler thread; the pool owns it from here. Returns 0 or -ESHUTDOWN. */
int router_pool__submit(struct router_pool *p, struct router_job *job);
/* Take the completed jobs, oldest first, as a list through ->next (NULL: none). */
struct router_job *router_pool__take_done(struct router_pool *p);
/* Stop the threads after their current job; pending jobs stay queued. NULL is fine. */
void router_pool__stop(struct router_pool *p);
/* Stop, then free every job still queued or completed, and the pool. NULL is fine. */
void router_pool__free(struct router_pool *p);

#endif /* NOVAMON_ROUTER_H */
