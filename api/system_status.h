/* SPDX-License-Identifier: Apache-2.0 */
/*
 * system_status: the daemon about itself, from what the 1 Hz tick already
 * published (the metric set and the /health JSON), plus the local store for
 * rates when there is one:
 *
 *   GET /api/system/metrics
 *     {"timestamp", "uptime_seconds",
 *      "cpu": {"cores", "window_seconds", "seconds_total"},  cores: rate over
 *             the last minute (window 60), or the lifetime average (window 0)
 *             without a store
 *      "memory": {"resident_bytes"}, "open_fds", "threads",
 *      "ring": {"events_total", "events_per_second", "produced_total",
 *               "lost_total", "loss_ratio"},
 *      "tick": {"duration_seconds", "lag_seconds"},   lag: age of the latest set
 *      "series": {"active", "expired_total", "store"}}
 *     Figures the set does not hold (no capture, no store) are null.
 *
 *   GET /api/components/status
 *     {"status": worst of the enabled components,
 *      "components": [{"name", "status": "up"|"degraded"|"down",
 *                      "enabled", "reason"}, ...]}
 *     for capture, store, remote_write, otlp, http and tick. "Recent" problems
 *     (failed or dropped samples, lost events) are those of the last 5 minutes
 *     when the store can say, else since start. A component that is not
 *     configured is down with enabled false and does not count in "status".
 *
 * Both are host-wide: a principal limited to one tenant gets 403.
 */
#ifndef NOVAMON_SYSTEM_STATUS_H
#define NOVAMON_SYSTEM_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "promql/promql.h"

struct metric_set;
struct metric_store;

#define SYSTEM_STATUS_NROUTES 2
#define SYSTEM_STATUS_RECENT "5m"

struct system_status {
	struct metric_store *metrics;
	const struct promql_engine *eng; /* NULL: no store, totals since start */
	int64_t (*now_ms)(void); /* NULL: the wall clock */
};

/* Point at metrics (and eng, may be NULL); both must outlive the server. Returns 0 or -EINVAL. */
int system_status__init(struct system_status *s, struct metric_store *metrics,
			const struct promql_engine *eng);
/* Fill routes with the two routes (ctx s). Returns SYSTEM_STATUS_NROUTES or -ENOSPC. */
int system_status__routes(struct system_status *s, struct http_route *routes, size_t max);

/*
 * Internals, exposed for tests: the two answers built from a set (may be
 * NULL: before the first tick) and the health JSON (may be NULL). Returns a
 * new reference or NULL (out of memory).
 */
json_t *system_status_metrics(const struct system_status *s, const struct metric_set *set,
			      const char *health, int64_t now_ms);
json_t *system_status_components(const struct system_status *s, const struct metric_set *set,
				 const char *health, int64_t now_ms);

#endif /* NOVAMON_SYSTEM_STATUS_H */
