/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashboards: the dashboard API over a dashstore and the PromQL engine.
 *
 *   GET    /api/dashboards                 the dashboards the caller may read:
 *                                          {"dashboards":[{id, name, description, tenant,
 *                                          tags, owner, version, created, updated,
 *                                          widgets: COUNT}, ...]}; ?tenant=T narrows
 *   POST   /api/dashboards                 create from a dashboard document, or from a
 *                                          template: {"template":"operations"[,"name":..]
 *                                          [,"tenant":..]} or ?template=NAME; 201 + document
 *   GET    /api/dashboards/templates       {"templates":[{"name","description"}, ...]}
 *   GET    /api/dashboards/{id}            the document (widgets hidden from the caller left out)
 *   PUT    /api/dashboards/{id}            replace; the body's "version" must be the stored
 *                                          one (else 409); answers the new document
 *   DELETE /api/dashboards/{id}[?version=N] 204
 *   GET    /api/dashboards/{id}/data       ?start=&end=&step= (defaults: the dashboard's
 *                                          time_range_seconds up to now, ~250 points):
 *                                          {"start","end","step","widgets":[{"id","type",
 *                                          "result":{resultType, result}} | {"id","type",
 *                                          "error":MSG}, ...]}, result as /api/v1/query_range's data
 *   GET    /api/dashboards/{id}/export     ?format=json (default; POST it back to
 *                                          re-import) | png | pdf (&width=&height=, the
 *                                          time range as /data)
 *
 * Document (what POST takes and GET gives; server fields in brackets):
 *   {[id], name, description, tenant, tags:[..], acl:{viewers:[..], editors:[..]},
 *    time_range_seconds, widgets:[W, ...], [owner, version, created, updated]}
 *   W = {id, type, title, query, unit, refresh_seconds, thresholds:[{value, color[,
 *        label]}, ...] (ascending), position:{x, y, w, h} (12-column grid),
 *        options:{type-specific}, acl:{viewers:[..]}[, drilldown:[{label, query}]]}
 * Widget types: line, area (stacked), bar, heatmap, gauge, status (indicator),
 * progress (bar), alert_list, table (sort, filter, paginate), log_stream,
 * topology, stat (statistics/KPI). Every widget has a PromQL query; see
 * dashboards.c for each type's options. An id in a POST body is kept when it
 * is free (re-import) and answered 409 when taken; server fields are ignored.
 * Bad documents get 400 naming the field: `widgets[3].type: unknown type "pie"`.
 *
 * Access (struct auth_principal from api/auth.h; none when auth is off, then
 * everything is allowed): admins may do anything; viewers read, operators
 * write. A dashboard with a tenant is seen only by that tenant's principals,
 * principals of every tenant (tenant "") and admins; a dashboard without a
 * tenant is seen by a tenant's principal only when its ACL names it. The ACL
 * lists hold subjects, "tenant:T" or "role:viewer|operator|admin" (that role
 * or above); empty lists put no limit, and the owner is always allowed. A
 * widget whose acl.viewers is not empty is hidden from everyone else but
 * admins, the owner included (PUT keeps the widgets its caller cannot see).
 * Only the owner or an admin may change a dashboard's tenant or ACL. A
 * tenant's principal runs every widget query restricted to its tenant
 * (promql_restrict(), as on /api/v1/query).
 */
#ifndef NOVAMON_DASHBOARDS_H
#define NOVAMON_DASHBOARDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "promql/promql.h"

struct auth_principal;
struct dashstore;

/* How many routes dashboards__routes() fills. */
#define DASHBOARDS_NROUTES 5
#define DASHBOARDS_MAX_WIDGETS 200
/* The id of the dashboard a fresh install has. */
#define DASHBOARDS_SEED_ID "operations"

enum dashboards_widget_type {
	DASHBOARDS_LINE,
	DASHBOARDS_AREA,
	DASHBOARDS_BAR,
	DASHBOARDS_HEATMAP,
	DASHBOARDS_GAUGE,
	DASHBOARDS_STATUS,
	DASHBOARDS_PROGRESS,
	DASHBOARDS_ALERT_LIST,
	DASHBOARDS_TABLE,
	DASHBOARDS_LOG_STREAM,
	DASHBOARDS_TOPOLOGY,
	DASHBOARDS_STAT,
	DASHBOARDS_TYPE_MAX,
};

struct dashboards {
	struct dashstore *store;
	const struct promql_engine *eng; /* NULL: no local store, /data and exports answer 503 */
	int64_t (*now_ms)(void); /* NULL: the wall clock (tests set it) */
};

/*
 * Point the API at store and eng (neither owned; both must outlive the HTTP
 * server; eng may be NULL). Returns 0 or -EINVAL.
 */
int dashboards__init(struct dashboards *d, struct dashstore *store,
		     const struct promql_engine *eng);
/*
 * First run: create the operations dashboard (id DASHBOARDS_SEED_ID) unless
 * this store was seeded before (a deleted seed stays deleted). Returns 1 when
 * it created it, 0 when there was nothing to do, or a negative errno.
 */
int dashboards__seed(struct dashboards *d);
/*
 * Fill routes[0..max) with the API's routes, their ctx being d (which must
 * outlive the server). Returns DASHBOARDS_NROUTES or -ENOSPC.
 */
int dashboards__routes(struct dashboards *d, struct http_route *routes, size_t max);

/*
 * Internals, exposed for tests/unit/test_dashboards.c and the exporter.
 */

/* "line", "area", ...; NULL out of range. */
const char *dashboards_type_name(enum dashboards_widget_type t);
/* The type called name, or -1. */
int dashboards_type_parse(const char *name);

/*
 * Check a dashboard document and return its normalized form (defaults filled
 * in, server fields dropped, widget ids assigned), or NULL with the first
 * problem in err ("widgets[3].type: unknown type \"pie\" ...") and errno
 * EINVAL (ENOMEM when out of memory).
 */
json_t *dashboards_validate(const json_t *in, char *err, size_t errlen);

enum dashboards_access {
	DASHBOARDS_READ,
	DASHBOARDS_WRITE,
};

/* May p (NULL: auth off) read or write a dashboard of owner, tenant and acl (may be NULL)? */
bool dashboards_allowed(const struct auth_principal *p, const char *owner, const char *tenant,
			const json_t *acl, enum dashboards_access a);
/* Does p see widget w of a dashboard whose owner is owner? */
bool dashboards_widget_visible(const struct auth_principal *p, const char *owner, const json_t *w);

#endif /* NOVAMON_DASHBOARDS_H */
