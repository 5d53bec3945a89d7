/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anomaly_api: the analytics routes.
 *
 *   GET  /api/anomalies                 records, newest first; filters start, end
 *                                       (RFC 3339 or unix seconds), metric, vm,
 *                                       tenant, state (open | closed |
 *                                       acknowledged | unacknowledged), limit
 *   POST /api/anomalies/{id}/acknowledge  body optional: {"false_positive": true,
 *                                       "comment": "..."}; 404 unknown id, 409 twice
 *   GET  /api/predictions/{metric}      Holt-Winters forecast per series of the
 *                                       metric: horizon, step, history (durations),
 *                                       threshold (time-to-threshold), level (interval
 *                                       confidence, default 0.95), limit; any other
 *                                       parameter is a label filter (vm=web-1)
 *   GET  /api/models/performance        per detector: alarms, precision, recall,
 *                                       drift, trainings (analytics/modelperf.h)
 *
 * JSON answers are {"status":"success","data":...} or the Prometheus-style
 * error object, as the rest of the API.
 */
#ifndef NOVAMON_ANOMALY_API_H
#define NOVAMON_ANOMALY_API_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "prom_api.h"

struct anomalies;

#define ANOMALY_API_NROUTES 4

struct anomaly_api {
	struct anomalies *an; /* not owned */
	struct prom_api *prom; /* its engine evaluates the prediction history */
	int64_t (*now_ms)(void); /* NULL: the wall clock */
};

/* Fill routes (at least ANOMALY_API_NROUTES). Returns the count or -ENOSPC/-EINVAL. */
int anomaly_api__routes(struct anomaly_api *api, struct http_route *routes, size_t max);

#endif /* NOVAMON_ANOMALY_API_H */
