/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dashboard API without a server: document validation and its messages,
 * the four templates (valid documents whose queries all parse), access
 * decisions (roles, tenants, dashboard and widget ACLs), and the routes
 * called in-process over a SQLite store in a temporary directory and an
 * in-memory tsdb: CRUD with 409 on a stale version, tenant isolation,
 * /data with real series, JSON export re-imported identically, PNG and PDF.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "auth.h"
#include "dashboard_export.h"
#include "dashboard_templates.h"
#include "dashboards.h"
#include "dashstore.h"
#include "prom_api.h"
#include "router.h"
#include "tsdb/tsdb.h"

/* ------------------------------------------------------------------ */
/* Validation */

TestSuite(dashboards);

/* Validate text; returns the normalized document or NULL with the message in err. */
static json_t *validate(const char *text, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *in = json_loads(text, 0, &jerr), *out;

	cr_assert_not_null(in, "test JSON: %s: %s", text, jerr.text);
	out = dashboards_validate(in, err, errlen);
	json_decref(in);
	return out;
}

static void expect_error(const char *text, const char *msg)
{
	char err[512] = "";
	json_t *out = validate(text, err, sizeof(err));

	cr_assert_null(out, "accepted: %s", text);
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(err, msg), "for %s\n  want: %s\n  got:  %s", text, msg, err);
}

#define W(x) "{\"name\":\"d\",\"widgets\":[" x "]}"
#define OK_W "{\"type\":\"line\",\"query\":\"up\"}"

Test(dashboards, validation_messages)
{
	expect_error("[]", "body: must be a JSON object, not an array");
	expect_error("{\"widgets\":[]}", "name: missing");
	expect_error("{\"name\":\"\",\"widgets\":[]}", "name: must not be empty");
	expect_error("{\"name\":3,\"widgets\":[]}", "name: must be a string, not a number");
	expect_error("{\"name\":\"d\"}", "widgets: missing");
	expect_error("{\"name\":\"d\",\"widgets\":{}}", "widgets: must be an array, not an object");
	expect_error("{\"name\":\"d\",\"widgets\":[],\"colour\":1}", "colour: unknown field");
	expect_error("{\"name\":\"d\",\"widgets\":[],\"tenant\":\"a b\"}",
		     "tenant: \"a b\" is not a tenant name");
	expect_error("{\"name\":\"d\",\"widgets\":[],\"id\":\"../x\"}",
		     "id: \"../x\" is not an id");
	expect_error(
		W(OK_W "," OK_W "," OK_W ",{\"type\":\"pie\",\"query\":\"up\"}"),
		"widgets[3].type: unknown type \"pie\" (one of line, area, bar, heatmap, gauge, status, progress, alert_list, table, log_stream, topology, stat)");
	expect_error(W("{\"query\":\"up\"}"), "widgets[0].type: missing");
	expect_error(W("{\"type\":\"gauge\"}"), "widgets[0].query: missing");
	expect_error(W("{\"type\":\"gauge\",\"query\":\"rate(up[5m]\"}"), "widgets[0].query: ");
	expect_error(W("{\"type\":\"gauge\",\"query\":\"up\",\"refresh_seconds\":0}"),
		     "widgets[0].refresh_seconds: 0 is out of range [1, 86400]");
	expect_error(W("{\"type\":\"gauge\",\"query\":\"up\",\"refresh_seconds\":1.5}"),
		     "widgets[0].refresh_seconds: must be an integer, not a number");
	expect_error(W("{\"type\":\"gauge\",\"query\":\"up\",\"options\":{\"stacked\":true}}"),
		     "widgets[0].options.stacked: unknown option for type \"gauge\"");
	expect_error(W("{\"type\":\"gauge\",\"query\":\"up\",\"options\":{\"min\":5,\"max\":1}}"),
		     "widgets[0].options.max: 1 must be above min (5)");
	expect_error(
		W("{\"type\":\"bar\",\"query\":\"up\",\"options\":{\"orientation\":\"up\"}}"),
		"widgets[0].options.orientation: unknown value \"up\" (one of vertical, horizontal)");
	expect_error(W("{\"type\":\"table\",\"query\":\"up\",\"options\":{\"page_size\":0}}"),
		     "widgets[0].options.page_size: 0 is out of range [1, 1000]");
	expect_error(
		W("{\"type\":\"topology\",\"query\":\"up\",\"options\":{\"levels\":[\"vm\",\"rack\"]}}"),
		"widgets[0].options.levels[1]: unknown value \"rack\"");
	expect_error(
		W("{\"type\":\"line\",\"query\":\"up\",\"thresholds\":[{\"value\":80,\"color\":\"red\"},{\"value\":50,\"color\":\"green\"}]}"),
		"widgets[0].thresholds[1].value: 50 is not above the previous threshold (80)");
	expect_error(
		W("{\"type\":\"line\",\"query\":\"up\",\"thresholds\":[{\"value\":1,\"color\":\"mauve\"}]}"),
		"widgets[0].thresholds[0].color: \"mauve\" is not a colour");
	expect_error(W("{\"type\":\"line\",\"query\":\"up\",\"thresholds\":[{\"color\":\"red\"}]}"),
		     "widgets[0].thresholds[0].value: missing");
	expect_error(W("{\"type\":\"line\",\"query\":\"up\",\"position\":{\"x\":8,\"w\":6}}"),
		     "widgets[0].position.w: x + w = 14 is wider than the 12-column grid");
	expect_error(W("{\"type\":\"line\",\"query\":\"up\",\"acl\":{\"editors\":[]}}"),
		     "widgets[0].acl.editors: unknown field");
	expect_error(
		W("{\"type\":\"line\",\"query\":\"up\",\"acl\":{\"viewers\":[\"role:boss\"]}}"),
		"widgets[0].acl.viewers[0]: unknown role \"boss\"");
	expect_error(
		W("{\"id\":\"a\",\"type\":\"line\",\"query\":\"up\"},{\"id\":\"a\",\"type\":\"line\",\"query\":\"up\"}"),
		"widgets[1].id: \"a\" is used by widgets[0] too");
	expect_error(
		W("{\"type\":\"line\",\"query\":\"up\",\"drilldown\":[{\"label\":\"1vm\",\"query\":\"up\"}]}"),
		"widgets[0].drilldown[0].label: \"1vm\" is not a label name");
	expect_error(W("{\"type\":\"line\",\"query\":\"up\",\"foo\":1}"),
		     "widgets[0].foo: unknown field");
	expect_error("{\"name\":\"d\",\"widgets\":[],\"acl\":{\"viewers\":[\"a\",\"a\"]}}",
		     "acl.viewers[1]: \"a\" is listed twice");
}

Test(dashboards, validation_normalizes)
{
	char err[512];
	json_t *out = validate(
		"{\"name\":\"n\",\"owner\":\"ignored\",\"version\":9,\"widgets\":["
		"{\"type\":\"stat\",\"query\":\"sum(up)\"},"
		"{\"id\":\"w1\",\"type\":\"gauge\",\"query\":\"up\",\"options\":{\"min\":0,\"max\":1.5}},"
		"{\"type\":\"area\",\"query\":\"up\",\"position\":{\"x\":6,\"y\":2,\"w\":6,\"h\":3}}]}",
		err, sizeof(err));
	json_t *w, *again;
	char *a, *b;

	cr_assert_not_null(out, "%s", err);
	cr_assert_null(json_object_get(out, "owner"), "server fields are dropped");
	cr_assert_null(json_object_get(out, "version"));
	cr_assert_str_eq(json_string_value(json_object_get(out, "tenant")), "");
	cr_assert_eq(json_integer_value(json_object_get(out, "time_range_seconds")), 3600);
	w = json_object_get(out, "widgets");
	cr_assert_eq(json_array_size(w), 3);
	/* ids: the given one kept, the others the first free "wN" */
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 0), "id")), "w2");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 1), "id")), "w1");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 2), "id")), "w3");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(w, 0), "refresh_seconds")),
		     10);
	cr_assert_eq(json_integer_value(json_object_get(
			     json_object_get(json_array_get(w, 2), "position"), "y")),
		     2);
	/* normalizing is idempotent: what GET shows POSTs back unchanged */
	again = dashboards_validate(out, err, sizeof(err));
	cr_assert_not_null(again, "%s", err);
	a = json_dumps(out, JSON_COMPACT);
	b = json_dumps(again, JSON_COMPACT);
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
	json_decref(again);
	json_decref(out);
}

/* Every query and drill-down query in doc parses. */
static void assert_queries_parse(const char *tmpl, const json_t *doc)
{
	const json_t *w, *dd;
	size_t i, k;
	char err[256];

	json_array_foreach(json_object_get(doc, "widgets"), i, w)
	{
		const char *q = json_string_value(json_object_get(w, "query"));
		struct promql_expr *e = promql_parse(q, err, sizeof(err));

		cr_assert_not_null(e, "%s widgets[%zu]: %s: %s", tmpl, i, q, err);
		promql_expr__free(e);
		json_array_foreach(json_object_get(w, "drilldown"), k, dd)
		{
			q = json_string_value(json_object_get(dd, "query"));
			e = promql_parse(q, err, sizeof(err));
			cr_assert_not_null(e, "%s widgets[%zu] drilldown: %s: %s", tmpl, i, q, err);
			promql_expr__free(e);
		}
	}
}

Test(dashboards, templates)
{
	static const char *const must_have[] = { "line",  "area",	"bar",	    "heatmap",
						 "gauge", "status",	"progress", "alert_list",
						 "table", "log_stream", "topology", "stat" };
	bool seen[sizeof(must_have) / sizeof(must_have[0])] = { false };
	char err[512];
	size_t i, k;

	cr_assert_eq(DASHBOARD_TEMPLATES_N, 4);
	for (i = 0; i < DASHBOARD_TEMPLATES_N; i++) {
		const char *name = dashboard_templates_name(i);
		json_t *t = dashboard_templates_build(name, "acme");
		json_t *doc, *w;
		size_t j;

		cr_assert_not_null(t, "%s", name);
		cr_assert_not_null(dashboard_templates_description(i));
		doc = dashboards_validate(t, err, sizeof(err));
		cr_assert_not_null(doc, "template %s: %s", name, err);
		cr_assert_gt(json_array_size(json_object_get(doc, "widgets")), 3, "%s", name);
		assert_queries_parse(name, doc);
		json_array_foreach(json_object_get(doc, "widgets"), j, w)
		{
			for (k = 0; k < sizeof(must_have) / sizeof(must_have[0]); k++)
				if (!strcmp(must_have[k],
					    json_string_value(json_object_get(w, "type"))))
					seen[k] = true;
		}
		json_decref(doc);
		json_decref(t);
	}
	for (k = 0; k < sizeof(must_have) / sizeof(must_have[0]); k++)
		cr_assert(seen[k], "no template uses widget type %s", must_have[k]);

	/* the tenant template is the tenant's: every query names it */
	{
		json_t *t = dashboard_templates_build("tenant", "acme"), *w;

		cr_assert_str_eq(json_string_value(json_object_get(t, "tenant")), "acme");
		json_array_foreach(json_object_get(t, "widgets"), i, w)
		{
			const char *q = json_string_value(json_object_get(w, "query"));

			cr_assert(strstr(q, "novamon_vm_info{tenant=\"acme\"}"), "%s", q);
			cr_assert_null(strstr(q, "$TENANT"));
		}
		json_decref(t);
	}
	errno = 0;
	cr_assert_null(dashboard_templates_build("tenant", NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(dashboard_templates_build("tenant", "a\"}or{x"));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(dashboard_templates_build("pie", NULL));
	cr_assert_eq(errno, ENOENT);
	/* the operations template has drill-down to VM and vCPU */
	{
		json_t *t = dashboard_templates_build("operations", NULL), *w;
		bool vm = false, vcpu = false;
		const json_t *dd;

		json_array_foreach(json_object_get(t, "widgets"), i, w)
		{
			json_array_foreach(json_object_get(w, "drilldown"), k, dd)
			{
				const char *l = json_string_value(json_object_get(dd, "label"));

				vm |= !strcmp(l, "vm");
				vcpu |= !strcmp(l, "vcpu");
			}
		}
		cr_assert(vm && vcpu);
		json_decref(t);
	}
}

/* ------------------------------------------------------------------ */
/* Access */

static struct auth_principal principal(const char *subject, enum auth_role role, const char *tenant)
{
	struct auth_principal p = { .role = role };

	snprintf(p.subject, sizeof(p.subject), "%s", subject);
	snprintf(p.tenant, sizeof(p.tenant), "%s", tenant);
	return p;
}

Test(dashboards, access)
{
	struct auth_principal admin = principal("root", AUTH_ROLE_ADMIN, "");
	struct auth_principal op = principal("olga", AUTH_ROLE_OPERATOR, "");
	struct auth_principal viewer = principal("vic", AUTH_ROLE_VIEWER, "");
	struct auth_principal acme_op = principal("ann", AUTH_ROLE_OPERATOR, "acme");
	struct auth_principal acme_v = principal("avi", AUTH_ROLE_VIEWER, "acme");
	struct auth_principal globex = principal("gus", AUTH_ROLE_OPERATOR, "globex");
	json_t *open = json_loads("{\"viewers\":[],\"editors\":[]}", 0, NULL);
	json_t *named = json_loads("{\"viewers\":[\"vic\",\"tenant:acme\"],\"editors\":[\"olga\"]}",
				   0, NULL);
	json_t *roles = json_loads("{\"viewers\":[\"role:operator\"],\"editors\":[]}", 0, NULL);
	json_t *w_open = json_loads("{\"acl\":{\"viewers\":[]}}", 0, NULL);
	json_t *w_hidden = json_loads("{\"acl\":{\"viewers\":[\"role:admin\",\"avi\"]}}", 0, NULL);

	/* auth off and admins: everything */
	cr_assert(dashboards_allowed(NULL, "x", "acme", named, DASHBOARDS_WRITE));
	cr_assert(dashboards_allowed(&admin, "x", "globex", named, DASHBOARDS_WRITE));
	/* no ACL: viewers read, operators write */
	cr_assert(dashboards_allowed(&viewer, "", "", open, DASHBOARDS_READ));
	cr_assert_not(dashboards_allowed(&viewer, "", "", open, DASHBOARDS_WRITE));
	cr_assert_not(dashboards_allowed(&viewer, "vic", "", open, DASHBOARDS_WRITE),
		      "a viewer never writes, not even its own");
	cr_assert(dashboards_allowed(&op, "", "", open, DASHBOARDS_WRITE));
	/* tenants: a tenant's dashboard is that tenant's (and every-tenant principals') */
	cr_assert(dashboards_allowed(&acme_v, "", "acme", open, DASHBOARDS_READ));
	cr_assert(dashboards_allowed(&acme_op, "", "acme", open, DASHBOARDS_WRITE));
	cr_assert_not(dashboards_allowed(&globex, "", "acme", open, DASHBOARDS_READ));
	cr_assert_not(dashboards_allowed(&globex, "gus", "acme", open, DASHBOARDS_READ),
		      "owning it does not cross tenants");
	cr_assert(dashboards_allowed(&op, "", "acme", open, DASHBOARDS_READ));
	/* a dashboard of no tenant: a tenant's principal only when named */
	cr_assert_not(dashboards_allowed(&acme_v, "", "", open, DASHBOARDS_READ));
	cr_assert(dashboards_allowed(&acme_v, "", "", named, DASHBOARDS_READ));
	cr_assert_not(dashboards_allowed(&acme_op, "", "", named, DASHBOARDS_WRITE));
	/* ACL lists */
	cr_assert(dashboards_allowed(&viewer, "", "", named, DASHBOARDS_READ));
	cr_assert(dashboards_allowed(&op, "", "", named, DASHBOARDS_WRITE));
	cr_assert(dashboards_allowed(&op, "", "", named, DASHBOARDS_READ), "editors read");
	{
		struct auth_principal other = principal("oscar", AUTH_ROLE_OPERATOR, "");

		cr_assert_not(dashboards_allowed(&other, "", "", named, DASHBOARDS_READ));
		cr_assert_not(dashboards_allowed(&other, "", "", named, DASHBOARDS_WRITE));
		cr_assert(dashboards_allowed(&other, "oscar", "", named, DASHBOARDS_WRITE),
			  "the owner always may");
		cr_assert(dashboards_allowed(&other, "", "", roles, DASHBOARDS_READ));
		cr_assert(dashboards_allowed(&other, "", "", roles, DASHBOARDS_WRITE),
			  "no editors list: every operator writes");
	}
	cr_assert_not(dashboards_allowed(&viewer, "", "", roles, DASHBOARDS_READ),
		      "role:operator is operators and above");
	/* widgets */
	cr_assert(dashboards_widget_visible(&viewer, "", w_open));
	cr_assert_not(dashboards_widget_visible(&viewer, "", w_hidden));
	cr_assert_not(dashboards_widget_visible(&viewer, "vic", w_hidden),
		      "owning the dashboard does not show a widget");
	cr_assert(dashboards_widget_visible(&acme_v, "", w_hidden));
	cr_assert(dashboards_widget_visible(&admin, "", w_hidden));
	cr_assert(dashboards_widget_visible(NULL, "", w_hidden));
	cr_assert_not(dashboards_widget_visible(&op, "", w_hidden));

	json_decref(open);
	json_decref(named);
	json_decref(roles);
	json_decref(w_open);
	json_decref(w_hidden);
}

/* ------------------------------------------------------------------ */
/* Routes, in-process */

static char api_dir[64];
static char api_path[PATH_MAX];
static struct dashstore *api_store;
static struct tsdb *api_db;
static struct prom_api api_prom;
static struct dashboards api_dash;
static struct http_route api_routes[DASHBOARDS_NROUTES];
#define API_NOW 1700000000000LL

static int64_t api_now(void)
{
	return API_NOW;
}

static void api_setup(void)
{
	struct tsdb_opts opts = { 0 };
	char err[256] = "", url[PATH_MAX + 8];
	int64_t t;

	snprintf(api_dir, sizeof(api_dir), "/tmp/novamon-dashapi-XXXXXX");
	cr_assert_not_null(mkdtemp(api_dir));
	snprintf(api_path, sizeof(api_path), "%s/d.db", api_dir);
	snprintf(url, sizeof(url), "sqlite:%s", api_path);
	api_store = dashstore__open(url, err, sizeof(err));
	cr_assert_not_null(api_store, "%s", err);
	api_db = tsdb__open(&opts, err, sizeof(err));
	cr_assert_not_null(api_db, "%s", err);
	/* an hour of two counters and a gauge, one sample per second */
	for (t = API_NOW - 3600 * 1000; t <= API_NOW; t += 1000) {
		struct tsdb_label a[] = { { "__name__", "novamon_kvm_exits_total" },
					  { "vm", "web" },
					  { "vcpu", "0" },
					  { "tenant", "acme" } };
		struct tsdb_label b[] = { { "__name__", "novamon_kvm_exits_total" },
					  { "vm", "db" },
					  { "vcpu", "0" },
					  { "tenant", "globex" } };
		struct tsdb_label g[] = { { "__name__", "novamon_tick_duration_seconds" } };
		double s = (double)(t - (API_NOW - 3600 * 1000)) / 1000;

		cr_assert_eq(tsdb__append(api_db, a, 4, t, s * 10), 0);
		cr_assert_eq(tsdb__append(api_db, b, 4, t, s * 2), 0);
		cr_assert_eq(tsdb__append(api_db, g, 1, t, 0.25), 0);
	}
	cr_assert_eq(prom_api__init(&api_prom, api_db), 0);
	cr_assert_eq(dashboards__init(&api_dash, api_store, &api_prom.eng), 0);
	api_dash.now_ms = api_now;
	cr_assert_eq(dashboards__routes(&api_dash, api_routes, DASHBOARDS_NROUTES),
		     DASHBOARDS_NROUTES);
}

static void api_teardown(void)
{
	char p[PATH_MAX + 16];

	dashboard_export_release_caches();
	dashstore__close(api_store);
	tsdb__close(api_db);
	unlink(api_path);
	snprintf(p, sizeof(p), "%s-wal", api_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", api_path);
	unlink(p);
	rmdir(api_dir);
}

TestSuite(dashboards_api, .init = api_setup, .fini = api_teardown, .timeout = 60);

struct api_answer {
	int status;
	const char *ctype;
	char *body;
	size_t len;
	json_t *json; /* the body parsed, when it is JSON */
};

static void answer_free(struct api_answer *a)
{
	free(a->body);
	json_decref(a->json);
	memset(a, 0, sizeof(*a));
}

/* Call the route for method and target ("/path?query") as p with body. */
static struct api_answer call(const struct auth_principal *p, const char *method,
			      const char *target, const char *body)
{
	struct http_request req = { 0 };
	struct http_response resp = { 0 };
	struct api_answer a = { 0 };
	const struct http_route *r = NULL;
	char path[512], allow[64];
	const char *q = strchr(target, '?');
	int rc;

	snprintf(path, sizeof(path), "%.*s", (int)(q ? q - target : (long)strlen(target)), target);
	r = router_match(api_routes, DASHBOARDS_NROUTES, method, path, allow, sizeof(allow));
	cr_assert_not_null(r, "no route for %s %s", method, path);
	req.method = method;
	req.path = path;
	req.query = q ? q + 1 : "";
	req.body = body ? body : "";
	req.body_len = body ? strlen(body) : 0;
	req.content_type = "application/json";
	req.content_encoding = "";
	req.authorization = "";
	req.remote_addr = "127.0.0.1";
	req.principal = p;
	rc = r->fn(&req, &resp, r->ctx);
	cr_assert_eq(rc, 0, "%s %s: handler returned %d", method, target, rc);
	a.status = resp.status ? resp.status : 200;
	a.ctype = resp.content_type;
	a.body = resp.body;
	a.len = resp.body_len;
	if (a.body && (!a.ctype || !strcmp(a.ctype, "application/json")))
		a.json = json_loadb(a.body, a.len, 0, NULL);
	return a;
}

/* The error message of an error answer. */
static const char *errmsg(const struct api_answer *a)
{
	return json_string_value(json_object_get(a->json, "error"));
}

Test(dashboards_api, crud_conflict_and_seed)
{
	struct auth_principal op = principal("olga", AUTH_ROLE_OPERATOR, "");
	struct auth_principal viewer = principal("vic", AUTH_ROLE_VIEWER, "");
	struct api_answer a, b;
	char target[256], *body;
	const char *id;

	/* a fresh store gets the operations dashboard once */
	cr_assert_eq(dashboards__seed(&api_dash), 1);
	a = call(NULL, "GET", "/api/dashboards/" DASHBOARDS_SEED_ID, NULL);
	cr_assert_eq(a.status, 200, "%s", a.body);
	cr_assert_str_eq(json_string_value(json_object_get(a.json, "name")), "Operations");
	answer_free(&a);
	a = call(NULL, "DELETE", "/api/dashboards/" DASHBOARDS_SEED_ID, NULL);
	cr_assert_eq(a.status, 204);
	answer_free(&a);
	cr_assert_eq(dashboards__seed(&api_dash), 0, "a deleted seed stays deleted");

	a = call(&viewer, "POST", "/api/dashboards", "{\"name\":\"x\",\"widgets\":[]}");
	cr_assert_eq(a.status, 403);
	answer_free(&a);
	a = call(&op, "POST", "/api/dashboards",
		 "{\"name\":\"x\",\"widgets\":[{\"type\":\"pie\",\"query\":\"up\"}]}");
	cr_assert_eq(a.status, 400);
	cr_assert(strstr(errmsg(&a), "widgets[0].type: unknown type \"pie\""), "%s", a.body);
	answer_free(&a);

	a = call(&op, "POST", "/api/dashboards",
		 "{\"name\":\"Mine\",\"widgets\":[{\"type\":\"line\",\"query\":\"up\"}]}");
	cr_assert_eq(a.status, 201, "%s", a.body);
	id = json_string_value(json_object_get(a.json, "id"));
	cr_assert_eq(strlen(id), 32);
	cr_assert_str_eq(json_string_value(json_object_get(a.json, "owner")), "olga");
	cr_assert_eq(json_integer_value(json_object_get(a.json, "version")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(a.json, "created")),
			 "2023-11-14T22:13:20.000Z");
	snprintf(target, sizeof(target), "/api/dashboards/%s", id);

	/* update with the version read: 200 and version 2; again with 1: 409 */
	json_object_set_new(a.json, "name", json_string("Renamed"));
	body = json_dumps(a.json, 0);
	b = call(&op, "PUT", target, body);
	cr_assert_eq(b.status, 200, "%s", b.body);
	cr_assert_eq(json_integer_value(json_object_get(b.json, "version")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(b.json, "name")), "Renamed");
	answer_free(&b);
	b = call(&op, "PUT", target, body);
	cr_assert_eq(b.status, 409, "%s", b.body);
	cr_assert(strstr(errmsg(&b), "changed by someone else"), "%s", b.body);
	answer_free(&b);
	b = call(&viewer, "PUT", target, body);
	cr_assert_eq(b.status, 403, "%s", b.body);
	answer_free(&b);
	free(body);

	b = call(&viewer, "GET", "/api/dashboards", NULL);
	cr_assert_eq(b.status, 200);
	cr_assert_eq(json_array_size(json_object_get(b.json, "dashboards")), 1);
	cr_assert_eq(json_integer_value(json_object_get(
			     json_array_get(json_object_get(b.json, "dashboards"), 0), "widgets")),
		     1);
	answer_free(&b);

	snprintf(target, sizeof(target), "/api/dashboards/%s?version=1", id);
	b = call(&op, "DELETE", target, NULL);
	cr_assert_eq(b.status, 409);
	answer_free(&b);
	snprintf(target, sizeof(target), "/api/dashboards/%s?version=2", id);
	b = call(&op, "DELETE", target, NULL);
	cr_assert_eq(b.status, 204);
	answer_free(&b);
	b = call(&op, "GET", target, NULL);
	cr_assert_eq(b.status, 404);
	answer_free(&b);
	answer_free(&a);
}

Test(dashboards_api, tenants_and_widget_acl)
{
	struct auth_principal admin = principal("root", AUTH_ROLE_ADMIN, "");
	struct auth_principal acme = principal("ann", AUTH_ROLE_OPERATOR, "acme");
	struct auth_principal globex = principal("gus", AUTH_ROLE_OPERATOR, "globex");
	struct api_answer a, b;
	char target[256], *body;
	const char *id;

	/* a tenant's principal gets its tenant on what it creates, and cannot pick another */
	a = call(&acme, "POST", "/api/dashboards", "{\"template\":\"tenant\"}");
	cr_assert_eq(a.status, 201, "%s", a.body);
	cr_assert_str_eq(json_string_value(json_object_get(a.json, "tenant")), "acme");
	id = json_string_value(json_object_get(a.json, "id"));
	snprintf(target, sizeof(target), "/api/dashboards/%s", id);
	b = call(&acme, "POST", "/api/dashboards",
		 "{\"name\":\"x\",\"tenant\":\"globex\",\"widgets\":[]}");
	cr_assert_eq(b.status, 403, "%s", b.body);
	answer_free(&b);

	/* another tenant sees nothing of it: 404, not listed */
	b = call(&globex, "GET", target, NULL);
	cr_assert_eq(b.status, 404);
	answer_free(&b);
	b = call(&globex, "GET", "/api/dashboards", NULL);
	cr_assert_eq(json_array_size(json_object_get(b.json, "dashboards")), 0, "%s", b.body);
	answer_free(&b);

	/* a widget for admins only: the tenant does not see it, and its PUT keeps it */
	json_array_append_new(json_object_get(a.json, "widgets"),
			      json_pack("{s:s,s:s,s:s,s:{s:[s]}}", "id", "secret", "type", "stat",
					"query", "novamon_tick_duration_seconds", "acl", "viewers",
					"role:admin"));
	body = json_dumps(a.json, 0);
	b = call(&admin, "PUT", target, body);
	cr_assert_eq(b.status, 200, "%s", b.body);
	free(body);
	answer_free(&b);
	b = call(&acme, "GET", target, NULL);
	cr_assert_eq(b.status, 200);
	{
		json_t *w;
		size_t i;

		json_array_foreach(json_object_get(b.json, "widgets"), i, w)
		{
			cr_assert_str_neq(json_string_value(json_object_get(w, "id")), "secret");
		}
	}
	json_object_set_new(b.json, "description", json_string("edited by ann"));
	body = json_dumps(b.json, 0);
	answer_free(&b);
	b = call(&acme, "PUT", target, body);
	cr_assert_eq(b.status, 200, "%s", b.body);
	free(body);
	answer_free(&b);
	b = call(&admin, "GET", target, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(b.json, "description")),
			 "edited by ann");
	{
		json_t *w = json_object_get(b.json, "widgets");

		cr_assert_str_eq(json_string_value(json_object_get(
					 json_array_get(w, json_array_size(w) - 1), "id")),
				 "secret", "the hidden widget survived the tenant's PUT");
	}
	answer_free(&b);

	/* /data for the tenant: its queries are restricted to its series */
	snprintf(target, sizeof(target), "/api/dashboards/%s/data", id);
	b = call(&acme, "GET", target, NULL);
	cr_assert_eq(b.status, 200, "%s", b.body);
	answer_free(&b);
	answer_free(&a);
}

Test(dashboards_api, data_and_exports)
{
	struct api_answer a, b, c;
	char target[256], *body;
	const char *id;
	json_t *w, *res, *exp1, *exp2;

	a = call(
		NULL, "POST", "/api/dashboards",
		"{\"name\":\"Data\",\"time_range_seconds\":600,\"widgets\":["
		"{\"id\":\"rate\",\"type\":\"line\",\"query\":\"sum by (vm) (rate(novamon_kvm_exits_total[1m]))\",\"unit\":\"exits/s\"},"
		"{\"id\":\"tick\",\"type\":\"gauge\",\"query\":\"novamon_tick_duration_seconds\",\"unit\":\"seconds\",\"options\":{\"min\":0,\"max\":1}},"
		"{\"id\":\"bad\",\"type\":\"stat\",\"query\":\"novamon_kvm_exits_total + on () novamon_kvm_exits_total\"},"
		"{\"id\":\"heat\",\"type\":\"heatmap\",\"query\":\"novamon_kvm_exits_total\"},"
		"{\"id\":\"tab\",\"type\":\"table\",\"query\":\"novamon_kvm_exits_total\"}]}");
	cr_assert_eq(a.status, 201, "%s", a.body);
	id = json_string_value(json_object_get(a.json, "id"));

	snprintf(target, sizeof(target), "/api/dashboards/%s/data?step=60", id);
	b = call(NULL, "GET", target, NULL);
	cr_assert_eq(b.status, 200, "%s", b.body);
	cr_assert_not_null(b.json, "%s", b.body);
	cr_assert_eq(json_number_value(json_object_get(b.json, "end")), API_NOW / 1000);
	cr_assert_eq(json_number_value(json_object_get(b.json, "start")), API_NOW / 1000 - 600);
	w = json_object_get(b.json, "widgets");
	cr_assert_eq(json_array_size(w), 5);
	res = json_object_get(json_array_get(w, 0), "result");
	cr_assert_str_eq(json_string_value(json_object_get(res, "resultType")), "matrix");
	cr_assert_eq(json_array_size(json_object_get(res, "result")), 2, "%s", b.body);
	{
		/* vm="web" grows 10 per second: rate 10 at every point */
		json_t *s0 = json_array_get(json_object_get(res, "result"), 1);
		json_t *vals = json_object_get(s0, "values");

		cr_assert_str_eq(
			json_string_value(json_object_get(json_object_get(s0, "metric"), "vm")),
			"web");
		cr_assert_eq(json_array_size(vals), 11);
		cr_assert_str_eq(json_string_value(json_array_get(json_array_get(vals, 3), 1)),
				 "10");
	}
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 1), "type")), "gauge");
	cr_assert_not_null(json_object_get(json_array_get(w, 2), "error"),
			   "a widget whose query fails carries its error: %s", b.body);
	answer_free(&b);

	snprintf(target, sizeof(target), "/api/dashboards/%s/data?start=10&end=5", id);
	b = call(NULL, "GET", target, NULL);
	cr_assert_eq(b.status, 400);
	answer_free(&b);

	/* JSON export: POSTed back without its id, then exported, it is the same */
	snprintf(target, sizeof(target), "/api/dashboards/%s/export", id);
	b = call(NULL, "GET", target, NULL);
	cr_assert_eq(b.status, 200);
	exp1 = json_loadb(b.body, b.len, 0, NULL);
	cr_assert_not_null(exp1);
	cr_assert_null(json_object_get(exp1, "version"), "no server fields in an export");
	c = call(NULL, "POST", "/api/dashboards", b.body);
	cr_assert_eq(c.status, 409, "the same id is taken: %s", c.body);
	answer_free(&c);
	json_object_del(exp1, "id");
	body = json_dumps(exp1, 0);
	c = call(NULL, "POST", "/api/dashboards", body);
	free(body);
	cr_assert_eq(c.status, 201, "%s", c.body);
	snprintf(target, sizeof(target), "/api/dashboards/%s/export?format=json",
		 json_string_value(json_object_get(c.json, "id")));
	answer_free(&b);
	b = call(NULL, "GET", target, NULL);
	exp2 = json_loadb(b.body, b.len, 0, NULL);
	json_object_del(exp2, "id");
	cr_assert(json_equal(exp1, exp2), "re-import differs:\n%s", b.body);
	json_decref(exp1);
	json_decref(exp2);
	answer_free(&b);
	answer_free(&c);

	/* PNG: the signature and the size asked for, in IHDR */
	snprintf(target, sizeof(target),
		 "/api/dashboards/%s/export?format=png&width=640&height=480", id);
	b = call(NULL, "GET", target, NULL);
	cr_assert_eq(b.status, 200, "%s", b.body);
	cr_assert_str_eq(b.ctype, "image/png");
	cr_assert_gt(b.len, 33);
	cr_assert_eq(memcmp(b.body, "\x89PNG\r\n\x1a\n", 8), 0);
	cr_assert_eq(memcmp(b.body + 12, "IHDR", 4), 0);
	cr_assert_eq(((unsigned char)b.body[16] << 24 | (unsigned char)b.body[17] << 16 |
		      (unsigned char)b.body[18] << 8 | (unsigned char)b.body[19]),
		     640);
	cr_assert_eq(((unsigned char)b.body[20] << 24 | (unsigned char)b.body[21] << 16 |
		      (unsigned char)b.body[22] << 8 | (unsigned char)b.body[23]),
		     480);
	answer_free(&b);
	snprintf(target, sizeof(target), "/api/dashboards/%s/export?format=pdf", id);
	b = call(NULL, "GET", target, NULL);
	cr_assert_eq(b.status, 200);
	cr_assert_str_eq(b.ctype, "application/pdf");
	cr_assert_eq(memcmp(b.body, "%PDF-", 5), 0);
	cr_assert(memmem(b.body, b.len, "/Type /Page", 11), "a PDF with a page");
	answer_free(&b);
	snprintf(target, sizeof(target), "/api/dashboards/%s/export?format=svg", id);
	b = call(NULL, "GET", target, NULL);
	cr_assert_eq(b.status, 400);
	answer_free(&b);
	answer_free(&a);
}

Test(dashboards_api, templates_and_routes)
{
	struct api_answer a;

	a = call(NULL, "GET", "/api/dashboards/templates", NULL);
	cr_assert_eq(a.status, 200);
	cr_assert_eq(json_array_size(json_object_get(a.json, "templates")), 4);
	answer_free(&a);
	a = call(NULL, "POST", "/api/dashboards?template=executive", NULL);
	cr_assert_eq(a.status, 201, "%s", a.body);
	cr_assert_str_eq(json_string_value(json_object_get(a.json, "name")), "Executive overview");
	answer_free(&a);
	a = call(NULL, "POST", "/api/dashboards", "{\"template\":\"developer\",\"name\":\"Dev\"}");
	cr_assert_eq(a.status, 201, "%s", a.body);
	cr_assert_str_eq(json_string_value(json_object_get(a.json, "name")), "Dev");
	answer_free(&a);
	a = call(NULL, "POST", "/api/dashboards", "{\"template\":\"tenant\"}");
	cr_assert_eq(a.status, 400, "the tenant template needs a tenant");
	answer_free(&a);
	a = call(NULL, "POST", "/api/dashboards", "{\"template\":\"nope\"}");
	cr_assert_eq(a.status, 400);
	cr_assert(strstr(errmsg(&a), "unknown template"), "%s", a.body);
	answer_free(&a);
	a = call(NULL, "POST", "/api/dashboards", "{\"template\":\"developer\",\"widgets\":[]}");
	cr_assert_eq(a.status, 400);
	answer_free(&a);
	a = call(NULL, "POST", "/api/dashboards", "{nope");
	cr_assert_eq(a.status, 400);
	cr_assert(strstr(errmsg(&a), "body: invalid JSON"), "%s", a.body);
	answer_free(&a);
	a = call(NULL, "GET", "/api/dashboards/x/y", NULL);
	cr_assert_eq(a.status, 404);
	answer_free(&a);
	a = call(NULL, "PUT", "/api/dashboards/x", "{\"name\":\"x\",\"widgets\":[]}");
	cr_assert_eq(a.status, 400);
	cr_assert(strstr(errmsg(&a), "version: missing"), "%s", a.body);
	answer_free(&a);
}

Test(dashboards, export_render_direct)
{
	struct dashboard_export_opts o = {
		.format = DASHBOARD_EXPORT_PNG,
		.title = "t",
		.start_ms = 0,
		.end_ms = 60000,
		.step_ms = 1000,
		.width = 300,
	};
	struct dashboard_export_panel p = { 0 };
	json_t *w = json_pack("{s:s,s:s,s:s,s:{s:i,s:i,s:i,s:i}}", "id", "w", "type", "line",
			      "query", "up", "position", "x", 0, "y", 0, "w", 12, "h", 2);
	char *out = NULL;
	size_t len = 0;

	p.widget = w;
	snprintf(p.error, sizeof(p.error), "no data here");
	cr_assert_eq(dashboard_export_render(&o, &p, 1, &out, &len), 0);
	/* height from the grid: title + 2 rows */
	cr_assert_eq((unsigned char)out[22] << 8 | (unsigned char)out[23],
		     DASHBOARD_EXPORT_TITLE_PX + 2 * DASHBOARD_EXPORT_ROW_PX + 12);
	free(out);
	o.width = 10;
	cr_assert_eq(dashboard_export_render(&o, &p, 1, &out, &len), -EINVAL);
	json_decref(w);
	dashboard_export_release_caches();
}
