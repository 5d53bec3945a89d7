/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prom_api: the Prometheus HTTP query API over the store (tsdb) and the
 * PromQL engine, with Prometheus' JSON shapes, status codes and parameter
 * forms, so Grafana's Prometheus data source works unchanged:
 *
 *   GET/POST /api/v1/query         query, time, timeout
 *   GET/POST /api/v1/query_range   query, start, end, step, timeout
 *   GET/POST /api/v1/series        match[] (repeated), start, end
 *   GET/POST /api/v1/labels        match[], start, end
 *   GET      /api/v1/label/<name>/values   match[], start, end
 *   GET/POST /api/v1/query_exemplars       query, start, end (the in-memory
 *                                  exemplar store, userspace/exemplars.h)
 *
 * and the simple forms over the same engine:
 *
 *   GET/POST /api/metrics/query?query=EXPR[&time=T | &start=S&end=E[&step=D]]
 *       an instant query at time (default now), or a range query when start
 *       and end are given (step defaults to (end - start) / 250, at least 1 s);
 *       answers exactly like /api/v1/query or /api/v1/query_range.
 *   GET      /api/metrics/search?match=SUBSTRING | regex=ERE [&limit=N]
 *       metric names containing SUBSTRING (or fully matching ERE), sorted,
 *       each with up to limit (default 100) of its label sets:
 *       {"status":"success","data":[{"name":"up","series":[{"__name__":"up",
 *       "job":"a"}, ...]}, ...]}; no match and no regex lists every name.
 *
 * Times are RFC 3339 ("2026-11-22T08:00:00.5Z", "...+02:00") or unix seconds
 * with a fraction; durations are seconds with a fraction or Prometheus
 * durations ("15s", "1m30s", "500ms", "2h", "1d", "1w", "1y"). Parameters are
 * read from the query string and, for POST, from an
 * application/x-www-form-urlencoded body (the body wins, as in Prometheus).
 * Errors: 400 bad_data (bad parameters, parse errors), 422 execution
 * (evaluation errors), 503 timeout, each as
 * {"status":"error","errorType":...,"error":...}. The timeout parameter is
 * validated; the engine has no cancellation hook yet, so it is not enforced.
 */
#ifndef NOVAMON_PROM_API_H
#define NOVAMON_PROM_API_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "promql/promql.h"

/* Prometheus' limit on points per series of a range query. */
#define PROM_API_MAX_POINTS 11000
/* How many routes prom_api__routes() fills. */
#define PROM_API_NROUTES 14

struct exemplars;

struct prom_api {
	struct tsdb *db;
	struct promql_engine eng; /* select = tsdb__select on db */
	int64_t (*now_ms)(void); /* NULL: the wall clock (tests set it) */
	struct exemplars *exemplars; /* query_exemplars' store; NULL: none (empty answers) */
};

/* Point the API at db (not owned; it must outlive the HTTP server). Returns 0 or -EINVAL. */
int prom_api__init(struct prom_api *api, struct tsdb *db);

/*
 * Fill routes[0..max) with the API's routes, their ctx being api (which must
 * outlive the server), for http_server_opts.routes. Returns the number of
 * routes (PROM_API_NROUTES) or -ENOSPC when max is too small.
 */
int prom_api__routes(struct prom_api *api, struct http_route *routes, size_t max);

/*
 * Internals, exposed for tests/unit/test_prom_api.c.
 */

/* Parse an RFC 3339 time or unix seconds (float) into ms. Returns 0 or -EINVAL. */
int prom_api_parse_time(const char *s, int64_t *ms);
/* Parse a duration (float seconds or "1h30m"-style) into ms (>= 0). Returns 0 or -EINVAL. */
int prom_api_parse_duration(const char *s, int64_t *ms);
/*
 * Format ms as Prometheus' JSON timestamp: seconds with up to 3 decimals ("1.5",
 * "-0.25"), NUL-terminated, truncated to len. Returns the length written.
 */
size_t prom_api_format_time(int64_t ms, char *buf, size_t len);

/*
 * Render a successful query answer: {"status":"success","data":{"resultType":
 * ...,"result":...}} for r (a string result is stamped with t_ms). *out is
 * malloc'd and NUL-terminated. Returns 0 or -ENOMEM.
 */
int prom_api_render_result(const struct promql_result *r, int64_t t_ms, char **out, size_t *len);

/*
 * Read parameter name (occurrence n) from the request: the form body of a
 * POST first, then the query string. Returns the length, -ENOENT or -E2BIG.
 */
int prom_api_param(const struct http_request *req, const char *name, unsigned int n, char *buf,
		   size_t len);

#endif /* NOVAMON_PROM_API_H */
