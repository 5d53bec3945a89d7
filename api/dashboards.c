/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashboards: the dashboard API (see dashboards.h): document validation,
 * access decisions, the routes, and the evaluation of every widget's query
 * for /data and the PNG/PDF exports.
 *
 * A stored document is the validated, normalized JSON without the server
 * fields; the row's columns (id, owner, tenant, acl, times, version) are the
 * truth for those and are merged back into every answer, so GET, export and
 * a re-import by POST agree field for field.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "dashboard_export.h"
#include "dashboard_templates.h"
#include "dashboards.h"
#include "dashstore.h"
#include "prom_api.h"

#define DASH_PRINCIPAL(req) ((req)->principal)
#define DASH_TENANT_LABEL "tenant"

#define DASH_JSON "application/json"
/* 15 digits: 0.99 stays "0.99", and what is dumped parses back to the same dump */
#define DASH_DUMP (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define DASH_PREFIX "/api/dashboards/"
#define DASH_MAX_STR 200 /* names, titles, descriptions are at most this long */
#define DASH_MAX_QUERY 8192
#define DASH_MAX_LIST 256 /* tags, acl entries, table columns */
#define DASH_MAX_THRESHOLDS 16
#define DASH_MAX_DRILLDOWN 4
#define DASH_GRID_COLUMNS 12
#define DASH_DEFAULT_RANGE_S 3600
#define DASH_DEFAULT_REFRESH_S 10
#define DASH_DEFAULT_POINTS 250

/* ------------------------------------------------------------------ */
/* Widget types and their options */

static const char *const dash_type_names[DASHBOARDS_TYPE_MAX] = {
	[DASHBOARDS_LINE] = "line",	    [DASHBOARDS_AREA] = "area",
	[DASHBOARDS_BAR] = "bar",	    [DASHBOARDS_HEATMAP] = "heatmap",
	[DASHBOARDS_GAUGE] = "gauge",	    [DASHBOARDS_STATUS] = "status",
	[DASHBOARDS_PROGRESS] = "progress", [DASHBOARDS_ALERT_LIST] = "alert_list",
	[DASHBOARDS_TABLE] = "table",	    [DASHBOARDS_LOG_STREAM] = "log_stream",
	[DASHBOARDS_TOPOLOGY] = "topology", [DASHBOARDS_STAT] = "stat",
};

const char *dashboards_type_name(enum dashboards_widget_type t)
{
	return (unsigned int)t < DASHBOARDS_TYPE_MAX ? dash_type_names[t] : NULL;
}

int dashboards_type_parse(const char *name)
{
	int i;

	for (i = 0; name && i < DASHBOARDS_TYPE_MAX; i++)
		if (!strcmp(dash_type_names[i], name))
			return i;
	return -1;
}

enum dash_opt_kind {
	DO_BOOL,
	DO_NUM,
	DO_INT,
	DO_STR,
	DO_ENUM, /* a string, one of choices */
	DO_ENUMLIST, /* an array of distinct strings, each one of choices */
	DO_STRLIST,
};

struct dash_opt {
	const char *name;
	enum dash_opt_kind kind;
	double min, max; /* DO_NUM, DO_INT */
	const char *choices; /* DO_ENUM, DO_ENUMLIST: "a|b|c" */
};

#define DASH_HUGE 1e300 /* numbers without a bound of their own */

static const struct dash_opt dash_opts_line[] = {
	{ "legend", DO_BOOL },
	{ "y_min", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "y_max", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "fill", DO_BOOL },
	{ "log_scale", DO_BOOL },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};
static const struct dash_opt dash_opts_area[] = {
	{ "legend", DO_BOOL },
	{ "y_min", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "y_max", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "stacked", DO_BOOL },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};
static const struct dash_opt dash_opts_bar[] = {
	{ "legend", DO_BOOL },
	{ "orientation", DO_ENUM, 0, 0, "vertical|horizontal" },
	{ "stacked", DO_BOOL },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};
static const struct dash_opt dash_opts_heatmap[] = {
	{ "color_scheme", DO_ENUM, 0, 0, "blues|greens|reds|viridis" },
	{ "bucket_label", DO_STR },
	{ NULL },
};
static const struct dash_opt dash_opts_gauge[] = {
	{ "min", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "max", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};
static const struct dash_opt dash_opts_status[] = {
	{ "ok_text", DO_STR },
	{ "bad_text", DO_STR },
	{ NULL },
};
static const struct dash_opt dash_opts_progress[] = {
	{ "min", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "max", DO_NUM, -DASH_HUGE, DASH_HUGE },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};
static const struct dash_opt dash_opts_alert_list[] = {
	{ "max_items", DO_INT, 1, 1000 },
	{ "severity_label", DO_STR },
	{ "show_resolved", DO_BOOL },
	{ NULL },
};
static const struct dash_opt dash_opts_table[] = {
	{ "columns", DO_STRLIST },
	{ "sort_by", DO_STR },
	{ "sort_desc", DO_BOOL },
	{ "filter", DO_STR },
	{ "page_size", DO_INT, 1, 1000 },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};
static const struct dash_opt dash_opts_log_stream[] = {
	{ "source", DO_ENUM, 0, 0, "logs|spans" },
	{ "filter", DO_STR },
	{ "max_lines", DO_INT, 1, 10000 },
	{ NULL },
};
static const struct dash_opt dash_opts_topology[] = {
	{ "levels", DO_ENUMLIST, 0, 0, "host|vm|vcpu|device|interface" },
	{ "root", DO_STR },
	{ NULL },
};
static const struct dash_opt dash_opts_stat[] = {
	{ "reduce", DO_ENUM, 0, 0, "last|mean|min|max|sum" },
	{ "sparkline", DO_BOOL },
	{ "decimals", DO_INT, 0, 10 },
	{ NULL },
};

static const struct dash_opt *const dash_type_opts[DASHBOARDS_TYPE_MAX] = {
	[DASHBOARDS_LINE] = dash_opts_line,	    [DASHBOARDS_AREA] = dash_opts_area,
	[DASHBOARDS_BAR] = dash_opts_bar,	    [DASHBOARDS_HEATMAP] = dash_opts_heatmap,
	[DASHBOARDS_GAUGE] = dash_opts_gauge,	    [DASHBOARDS_STATUS] = dash_opts_status,
	[DASHBOARDS_PROGRESS] = dash_opts_progress, [DASHBOARDS_ALERT_LIST] = dash_opts_alert_list,
	[DASHBOARDS_TABLE] = dash_opts_table,	    [DASHBOARDS_LOG_STREAM] = dash_opts_log_stream,
	[DASHBOARDS_TOPOLOGY] = dash_opts_topology, [DASHBOARDS_STAT] = dash_opts_stat,
};

/* ------------------------------------------------------------------ */
/* Validation */

struct dash_val {
	char *err;
	size_t errlen;
};

static int dash_fail(struct dash_val *v, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write "path: message" and return -EINVAL. */
static int dash_fail(struct dash_val *v, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (v->err && v->errlen) {
		n = snprintf(v->err, v->errlen, "%s: ", path);
		if (n >= 0 && (size_t)n < v->errlen) {
			va_start(ap, fmt);
			vsnprintf(v->err + n, v->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

static const char *dash_json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* A string of at most max bytes, no control characters. */
static int dash_str(struct dash_val *v, const char *path, const json_t *j, size_t max,
		    bool allow_empty, const char **out)
{
	const char *s;
	size_t i, n;

	if (!json_is_string(j))
		return dash_fail(v, path, "must be a string, not %s", dash_json_kind(j));
	s = json_string_value(j);
	n = json_string_length(j);
	if (strlen(s) != n)
		return dash_fail(v, path, "must not contain a NUL character");
	if (!n && !allow_empty)
		return dash_fail(v, path, "must not be empty");
	if (n > max)
		return dash_fail(v, path, "is %zu bytes long, the limit is %zu", n, max);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return dash_fail(v, path, "must not contain control characters");
	*out = s;
	return 0;
}

static int dash_int(struct dash_val *v, const char *path, const json_t *j, json_int_t min,
		    json_int_t max, json_int_t *out)
{
	if (!json_is_integer(j))
		return dash_fail(v, path, "must be an integer, not %s", dash_json_kind(j));
	*out = json_integer_value(j);
	if (*out < min || *out > max)
		return dash_fail(v, path,
				 "%" JSON_INTEGER_FORMAT " is out of range [%" JSON_INTEGER_FORMAT
				 ", %" JSON_INTEGER_FORMAT "]",
				 *out, min, max);
	return 0;
}

static int dash_num(struct dash_val *v, const char *path, const json_t *j, double *out)
{
	if (!json_is_number(j))
		return dash_fail(v, path, "must be a number, not %s", dash_json_kind(j));
	*out = json_number_value(j);
	if (!isfinite(*out))
		return dash_fail(v, path, "must be finite");
	return 0;
}

/* Is s one of the '|'-separated choices? */
static bool dash_choice(const char *choices, const char *s)
{
	size_t n = strlen(s);
	const char *p = choices;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && !strncmp(p, s, n))
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

/* "a|b|c" -> "a, b, c" for messages. */
static const char *dash_choices_text(const char *choices, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; choices[i] && o + 3 < len; i++) {
		if (choices[i] == '|') {
			buf[o++] = ',';
			buf[o++] = ' ';
		} else {
			buf[o++] = choices[i];
		}
	}
	buf[o] = '\0';
	return buf;
}

/* Check that every key of obj is one of the NULL-terminated names. */
static int dash_known_keys(struct dash_val *v, const char *path, const json_t *obj,
			   const char *const *names)
{
	const char *key;
	json_t *val;
	char sub[256];

	json_object_foreach((json_t *)obj, key, val)
	{
		const char *const *n;

		for (n = names; *n && strcmp(*n, key); n++)
			;
		if (!*n) {
			snprintf(sub, sizeof(sub), "%s%s%.100s", path, path[0] ? "." : "", key);
			return dash_fail(v, sub, "unknown field");
		}
	}
	return 0;
}

/* An array of at most max distinct strings (each checked by dash_str), copied. */
static int dash_strlist(struct dash_val *v, const char *path, const json_t *j, size_t max,
			const char *choices, json_t **out)
{
	char sub[256], buf[256];
	size_t i, k;
	json_t *e;

	*out = NULL;
	if (!json_is_array(j))
		return dash_fail(v, path, "must be an array of strings, not %s", dash_json_kind(j));
	if (json_array_size(j) > max)
		return dash_fail(v, path, "has %zu entries, the limit is %zu", json_array_size(j),
				 max);
	json_array_foreach(j, i, e)
	{
		const char *s;

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (dash_str(v, sub, e, DASH_MAX_STR, false, &s))
			return -EINVAL;
		if (choices && !dash_choice(choices, s))
			return dash_fail(v, sub, "unknown value \"%s\" (one of %s)", s,
					 dash_choices_text(choices, buf, sizeof(buf)));
		for (k = 0; k < i; k++)
			if (!strcmp(json_string_value(json_array_get(j, k)), s))
				return dash_fail(v, sub, "\"%s\" is listed twice", s);
	}
	*out = json_deep_copy(j);
	return *out ? 0 : -ENOMEM;
}

/* An ACL entry: a subject, "tenant:T" or "role:viewer|operator|admin". */
static int dash_acl_entry(struct dash_val *v, const char *path, const char *s)
{
	if (!strncmp(s, "role:", 5) && !dash_choice("viewer|operator|admin", s + 5))
		return dash_fail(v, path,
				 "unknown role \"%s\" (role:viewer, role:operator or role:admin)",
				 s + 5);
	if (!strncmp(s, "tenant:", 7) && !dashboard_templates_tenant_ok(s + 7))
		return dash_fail(v, path, "\"%s\" is not a valid tenant name", s + 7);
	if (strlen(s) > 63 + 7)
		return dash_fail(v, path, "is longer than a subject can be");
	return 0;
}

/* acl: {viewers:[...], editors:[...]} (editors only when with_editors). */
static int dash_acl(struct dash_val *v, const char *path, const json_t *j, bool with_editors,
		    json_t **out)
{
	static const char *const both[] = { "viewers", "editors", NULL };
	static const char *const viewers_only[] = { "viewers", NULL };
	const char *const *names = with_editors ? both : viewers_only;
	json_t *acl = json_object();
	char sub[256];
	size_t i, k;
	int err = -EINVAL;

	*out = NULL;
	if (!acl)
		return -ENOMEM;
	if (j && !json_is_object(j)) {
		dash_fail(v, path, "must be an object, not %s", dash_json_kind(j));
		goto fail;
	}
	if (j && dash_known_keys(v, path, j, names))
		goto fail;
	for (k = 0; names[k]; k++) {
		const json_t *lj = j ? json_object_get(j, names[k]) : NULL;
		json_t *list = NULL, *e;

		snprintf(sub, sizeof(sub), "%s.%s", path, names[k]);
		if (!lj) {
			list = json_array();
		} else if (dash_strlist(v, sub, lj, DASH_MAX_LIST, NULL, &list)) {
			goto fail;
		}
		if (!list || json_object_set_new(acl, names[k], list)) {
			err = -ENOMEM;
			goto fail;
		}
		json_array_foreach(list, i, e)
		{
			char esub[300];

			snprintf(esub, sizeof(esub), "%s[%zu]", sub, i);
			if (dash_acl_entry(v, esub, json_string_value(e)))
				goto fail;
		}
	}
	*out = acl;
	return 0;

fail:
	json_decref(acl);
	return err;
}

/* A PromQL query that parses. */
static int dash_query(struct dash_val *v, const char *path, const json_t *j, const char **out)
{
	struct promql_expr *e;
	char perr[256];

	if (dash_str(v, path, j, DASH_MAX_QUERY, false, out))
		return -EINVAL;
	e = promql_parse(*out, perr, sizeof(perr));
	if (!e)
		return dash_fail(v, path, "%s", perr);
	promql_expr__free(e);
	return 0;
}

/* A colour: one of a few names or #rgb / #rrggbb. */
static bool dash_color_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (dash_choice("green|yellow|orange|red|blue|purple|grey|black|white", s))
		return true;
	if (s[0] != '#' || (n != 4 && n != 7))
		return false;
	for (i = 1; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static int dash_thresholds(struct dash_val *v, const char *path, const json_t *j, json_t **out)
{
	static const char *const names[] = { "value", "color", "label", NULL };
	json_t *arr = json_array(), *e;
	char sub[256], fsub[300];
	double prev = -INFINITY;
	size_t i;
	int err = -EINVAL;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	if (j && !json_is_array(j)) {
		dash_fail(v, path, "must be an array, not %s", dash_json_kind(j));
		goto fail;
	}
	if (j && json_array_size(j) > DASH_MAX_THRESHOLDS) {
		dash_fail(v, path, "has %zu entries, the limit is %d", json_array_size(j),
			  DASH_MAX_THRESHOLDS);
		goto fail;
	}
	json_array_foreach(j, i, e)
	{
		const char *color, *label = NULL;
		double value;
		json_t *t;

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!json_is_object(e)) {
			dash_fail(v, sub, "must be an object {value, color[, label]}, not %s",
				  dash_json_kind(e));
			goto fail;
		}
		if (dash_known_keys(v, sub, e, names))
			goto fail;
		snprintf(fsub, sizeof(fsub), "%s.value", sub);
		if (!json_object_get(e, "value")) {
			dash_fail(v, fsub, "missing");
			goto fail;
		}
		if (dash_num(v, fsub, json_object_get(e, "value"), &value))
			goto fail;
		if (value <= prev) {
			dash_fail(v, fsub, "%g is not above the previous threshold (%g)", value,
				  prev);
			goto fail;
		}
		prev = value;
		snprintf(fsub, sizeof(fsub), "%s.color", sub);
		if (!json_object_get(e, "color")) {
			dash_fail(v, fsub, "missing");
			goto fail;
		}
		if (dash_str(v, fsub, json_object_get(e, "color"), 16, false, &color))
			goto fail;
		if (!dash_color_ok(color)) {
			dash_fail(v, fsub,
				  "\"%s\" is not a colour (#rgb, #rrggbb or a name such as red)",
				  color);
			goto fail;
		}
		snprintf(fsub, sizeof(fsub), "%s.label", sub);
		if (json_object_get(e, "label") &&
		    dash_str(v, fsub, json_object_get(e, "label"), DASH_MAX_STR, true, &label))
			goto fail;
		t = json_pack(
			"{s:o,s:s}", "value",
			json_is_integer(json_object_get(e, "value")) ?
				json_integer(json_integer_value(json_object_get(e, "value"))) :
				json_real(value),
			"color", color);
		if (t && label && json_object_set_new(t, "label", json_string(label))) {
			json_decref(t);
			t = NULL;
		}
		if (!t || json_array_append_new(arr, t)) {
			err = -ENOMEM;
			goto fail;
		}
	}
	*out = arr;
	return 0;

fail:
	json_decref(arr);
	return err;
}

/* The options of a widget of type t, copied after checking each. */
static int dash_options(struct dash_val *v, const char *path, int t, const json_t *j, json_t **out)
{
	const struct dash_opt *o;
	json_t *opts = json_object(), *val;
	const char *key;
	char sub[256], buf[256];
	int err = -EINVAL;

	*out = NULL;
	if (!opts)
		return -ENOMEM;
	if (j && !json_is_object(j)) {
		dash_fail(v, path, "must be an object, not %s", dash_json_kind(j));
		goto fail;
	}
	json_object_foreach((json_t *)j, key, val)
	{
		json_t *copy = NULL;
		json_int_t iv;
		const char *s;
		double d;

		snprintf(sub, sizeof(sub), "%s.%.100s", path, key);
		for (o = dash_type_opts[t]; o->name && strcmp(o->name, key); o++)
			;
		if (!o->name) {
			dash_fail(v, sub, "unknown option for type \"%s\"", dash_type_names[t]);
			goto fail;
		}
		switch (o->kind) {
		case DO_BOOL:
			if (!json_is_boolean(val)) {
				dash_fail(v, sub, "must be true or false, not %s",
					  dash_json_kind(val));
				goto fail;
			}
			copy = json_boolean(json_is_true(val));
			break;
		case DO_NUM:
			if (dash_num(v, sub, val, &d))
				goto fail;
			copy = json_is_integer(val) ? json_integer(json_integer_value(val)) :
						      json_real(d);
			break;
		case DO_INT:
			if (dash_int(v, sub, val, (json_int_t)o->min, (json_int_t)o->max, &iv))
				goto fail;
			copy = json_integer(iv);
			break;
		case DO_STR:
			if (dash_str(v, sub, val, DASH_MAX_STR, true, &s))
				goto fail;
			copy = json_string(s);
			break;
		case DO_ENUM:
			if (dash_str(v, sub, val, DASH_MAX_STR, false, &s))
				goto fail;
			if (!dash_choice(o->choices, s)) {
				dash_fail(v, sub, "unknown value \"%s\" (one of %s)", s,
					  dash_choices_text(o->choices, buf, sizeof(buf)));
				goto fail;
			}
			copy = json_string(s);
			break;
		case DO_ENUMLIST:
		case DO_STRLIST:
			if (dash_strlist(v, sub, val, DASH_MAX_LIST,
					 o->kind == DO_ENUMLIST ? o->choices : NULL, &copy))
				goto fail;
			break;
		}
		if (!copy || json_object_set_new(opts, key, copy)) {
			err = -ENOMEM;
			goto fail;
		}
	}
	/* ranges given as a pair must be a range */
	{
		static const char *const pairs[][2] = { { "min", "max" }, { "y_min", "y_max" } };
		size_t i;

		for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
			json_t *lo = json_object_get(opts, pairs[i][0]);
			json_t *hi = json_object_get(opts, pairs[i][1]);

			if (lo && hi && json_number_value(lo) >= json_number_value(hi)) {
				snprintf(sub, sizeof(sub), "%s.%s", path, pairs[i][1]);
				dash_fail(v, sub, "%g must be above %s (%g)", json_number_value(hi),
					  pairs[i][0], json_number_value(lo));
				goto fail;
			}
		}
	}
	*out = opts;
	return 0;

fail:
	json_decref(opts);
	return err;
}

static int dash_position(struct dash_val *v, const char *path, const json_t *j, size_t index,
			 json_t **out)
{
	static const char *const names[] = { "x", "y", "w", "h", NULL };
	json_int_t x = (json_int_t)(index % 2) * 6, y = (json_int_t)(index / 2) * 4, w = 6, h = 4;
	char sub[256];

	*out = NULL;
	if (j) {
		if (!json_is_object(j))
			return dash_fail(v, path, "must be an object {x, y, w, h}, not %s",
					 dash_json_kind(j));
		if (dash_known_keys(v, path, j, names))
			return -EINVAL;
#define DASH_POS(field, lo, hi)                                 \
	do {                                                    \
		const json_t *f = json_object_get(j, #field);   \
		snprintf(sub, sizeof(sub), "%s." #field, path); \
		if (f && dash_int(v, sub, f, lo, hi, &field))   \
			return -EINVAL;                         \
	} while (0)
		DASH_POS(w, 1, DASH_GRID_COLUMNS);
		DASH_POS(h, 1, 100);
		DASH_POS(x, 0, DASH_GRID_COLUMNS - 1);
		DASH_POS(y, 0, 100000);
#undef DASH_POS
		if (x + w > DASH_GRID_COLUMNS) {
			snprintf(sub, sizeof(sub), "%s.w", path);
			return dash_fail(v, sub,
					 "x + w = %" JSON_INTEGER_FORMAT
					 " is wider than the %d-column grid",
					 x + w, DASH_GRID_COLUMNS);
		}
	}
	*out = json_pack("{s:I,s:I,s:I,s:I}", "x", x, "y", y, "w", w, "h", h);
	return *out ? 0 : -ENOMEM;
}

static int dash_drilldown(struct dash_val *v, const char *path, const json_t *j, json_t **out)
{
	static const char *const names[] = { "label", "query", NULL };
	json_t *arr = json_array(), *e;
	char sub[256], fsub[300];
	size_t i;
	int err = -EINVAL;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	if (!json_is_array(j)) {
		dash_fail(v, path, "must be an array of {label, query}, not %s", dash_json_kind(j));
		goto fail;
	}
	if (json_array_size(j) > DASH_MAX_DRILLDOWN) {
		dash_fail(v, path, "has %zu levels, the limit is %d", json_array_size(j),
			  DASH_MAX_DRILLDOWN);
		goto fail;
	}
	json_array_foreach(j, i, e)
	{
		const char *label, *query;
		size_t k;
		json_t *t;

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!json_is_object(e)) {
			dash_fail(v, sub, "must be an object {label, query}, not %s",
				  dash_json_kind(e));
			goto fail;
		}
		if (dash_known_keys(v, sub, e, names))
			goto fail;
		snprintf(fsub, sizeof(fsub), "%s.label", sub);
		if (dash_str(v, fsub, json_object_get(e, "label"), 100, false, &label))
			goto fail;
		for (k = 0; label[k]; k++)
			if (!((label[k] >= 'a' && label[k] <= 'z') ||
			      (label[k] >= 'A' && label[k] <= 'Z') || label[k] == '_' ||
			      (k && label[k] >= '0' && label[k] <= '9'))) {
				dash_fail(v, fsub, "\"%s\" is not a label name", label);
				goto fail;
			}
		/* "$vm" placeholders sit inside label matcher strings: the query parses as is */
		snprintf(fsub, sizeof(fsub), "%s.query", sub);
		if (dash_query(v, fsub, json_object_get(e, "query"), &query))
			goto fail;
		t = json_pack("{s:s,s:s}", "label", label, "query", query);
		if (!t || json_array_append_new(arr, t)) {
			err = -ENOMEM;
			goto fail;
		}
	}
	*out = arr;
	return 0;

fail:
	json_decref(arr);
	return err;
}

/* Put key = val (a new reference, NULL meaning out of memory) into o. */
static int dash_set(json_t *o, const char *key, json_t *val)
{
	return val && !json_object_set_new(o, key, val) ? 0 : -ENOMEM;
}

static int dash_widget(struct dash_val *v, const json_t *in, size_t index, json_t *out)
{
	static const char *const names[] = { "id",	   "type",	"title",
					     "query",	   "unit",	"refresh_seconds",
					     "thresholds", "position",	"options",
					     "acl",	   "drilldown", NULL };
	char path[64], sub[128], buf[256];
	const char *s, *query;
	json_t *sub_out = NULL;
	json_int_t refresh = DASH_DEFAULT_REFRESH_S;
	const json_t *j;
	int type, err;

	snprintf(path, sizeof(path), "widgets[%zu]", index);
	if (!json_is_object(in))
		return dash_fail(v, path, "must be an object, not %s", dash_json_kind(in));
	if (dash_known_keys(v, path, in, names))
		return -EINVAL;

	snprintf(sub, sizeof(sub), "%s.type", path);
	j = json_object_get(in, "type");
	if (!j)
		return dash_fail(v, sub, "missing");
	if (dash_str(v, sub, j, 64, false, &s))
		return -EINVAL;
	type = dashboards_type_parse(s);
	if (type < 0) {
		size_t i, o = 0;

		for (i = 0; i < DASHBOARDS_TYPE_MAX && o < sizeof(buf); i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ", " : "",
					      dash_type_names[i]);
		return dash_fail(v, sub, "unknown type \"%s\" (one of %s)", s, buf);
	}
	if (dash_set(out, "type", json_string(s)))
		return -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.title", path);
	s = "";
	j = json_object_get(in, "title");
	if (j && dash_str(v, sub, j, DASH_MAX_STR, true, &s))
		return -EINVAL;
	if (dash_set(out, "title", json_string(s)))
		return -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.query", path);
	j = json_object_get(in, "query");
	if (!j)
		return dash_fail(v, sub, "missing (every widget has a PromQL query)");
	if (dash_query(v, sub, j, &query))
		return -EINVAL;
	if (dash_set(out, "query", json_string(query)))
		return -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.unit", path);
	s = "";
	j = json_object_get(in, "unit");
	if (j && dash_str(v, sub, j, 32, true, &s))
		return -EINVAL;
	if (dash_set(out, "unit", json_string(s)))
		return -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.refresh_seconds", path);
	j = json_object_get(in, "refresh_seconds");
	if (j && dash_int(v, sub, j, 1, 86400, &refresh))
		return -EINVAL;
	if (dash_set(out, "refresh_seconds", json_integer(refresh)))
		return -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.thresholds", path);
	err = dash_thresholds(v, sub, json_object_get(in, "thresholds"), &sub_out);
	if (err || dash_set(out, "thresholds", sub_out))
		return err ? err : -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.position", path);
	err = dash_position(v, sub, json_object_get(in, "position"), index, &sub_out);
	if (err || dash_set(out, "position", sub_out))
		return err ? err : -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.options", path);
	err = dash_options(v, sub, type, json_object_get(in, "options"), &sub_out);
	if (err || dash_set(out, "options", sub_out))
		return err ? err : -ENOMEM;

	snprintf(sub, sizeof(sub), "%s.acl", path);
	err = dash_acl(v, sub, json_object_get(in, "acl"), false, &sub_out);
	if (err || dash_set(out, "acl", sub_out))
		return err ? err : -ENOMEM;

	j = json_object_get(in, "drilldown");
	if (j) {
		snprintf(sub, sizeof(sub), "%s.drilldown", path);
		err = dash_drilldown(v, sub, j, &sub_out);
		if (err || dash_set(out, "drilldown", sub_out))
			return err ? err : -ENOMEM;
	}
	return 0;
}

/* Widget ids: given ones checked and unique; missing ones "w1", "w2"... not taken. */
static int dash_widget_ids(struct dash_val *v, const json_t *in, json_t *out)
{
	size_t i, k, next = 1;
	json_t *w;
	char path[64], id[32];

	json_array_foreach(in, i, w)
	{
		const json_t *j = json_is_object(w) ? json_object_get(w, "id") : NULL;
		const char *s;

		if (!j)
			continue;
		snprintf(path, sizeof(path), "widgets[%zu].id", i);
		if (dash_str(v, path, j, DASHSTORE_ID_LEN - 1, false, &s))
			return -EINVAL;
		if (!dashstore_id_ok(s))
			return dash_fail(v, path, "\"%s\" is not an id (letters, digits, _ and -)",
					 s);
		for (k = 0; k < i; k++) {
			const json_t *o = json_object_get(json_array_get(in, k), "id");

			if (o && !strcmp(json_string_value(o), s))
				return dash_fail(v, path, "\"%s\" is used by widgets[%zu] too", s,
						 k);
		}
	}
	json_array_foreach(out, i, w)
	{
		const json_t *given = json_object_get(json_array_get(in, i), "id");

		if (given) {
			if (dash_set(w, "id", json_string(json_string_value(given))))
				return -ENOMEM;
			continue;
		}
		for (;; next++) {
			bool taken = false;

			snprintf(id, sizeof(id), "w%zu", next);
			for (k = 0; k < json_array_size(in) && !taken; k++) {
				const json_t *o = json_object_get(json_array_get(in, k), "id");

				taken = o && !strcmp(json_string_value(o), id);
			}
			if (!taken)
				break;
		}
		next++;
		if (dash_set(w, "id", json_string(id)))
			return -ENOMEM;
	}
	return 0;
}

/* The widget objects in a fixed key order: id first. */
static json_t *dash_widget_ordered(const json_t *w)
{
	static const char *const order[] = { "id",	   "type",	"title",
					     "query",	   "unit",	"refresh_seconds",
					     "thresholds", "position",	"options",
					     "acl",	   "drilldown", NULL };
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && order[i]; i++) {
		json_t *val = json_object_get(w, order[i]);

		if (val && json_object_set(o, order[i], val)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *dashboards_validate(const json_t *in, char *err, size_t errlen)
{
	static const char *const names[] = { "id",
					     "name",
					     "description",
					     "tenant",
					     "tags",
					     "acl",
					     "time_range_seconds",
					     "widgets",
					     "owner",
					     "version",
					     "created",
					     "updated",
					     NULL };
	struct dash_val v = { err, errlen };
	json_t *out = json_object(), *widgets = json_array(), *sub = NULL, *w;
	json_int_t range = DASH_DEFAULT_RANGE_S;
	const json_t *j;
	const char *s;
	size_t i;
	int rc = -ENOMEM;

	if (err && errlen)
		err[0] = '\0';
	if (!out || !widgets)
		goto fail;
	rc = -EINVAL;
	if (!json_is_object(in)) {
		dash_fail(&v, "body", "must be a JSON object, not %s", dash_json_kind(in));
		goto fail;
	}
	if (dash_known_keys(&v, "", in, names))
		goto fail;

	j = json_object_get(in, "id");
	if (j) {
		if (dash_str(&v, "id", j, DASHSTORE_ID_LEN - 1, false, &s))
			goto fail;
		if (!dashstore_id_ok(s)) {
			dash_fail(&v, "id", "\"%s\" is not an id (letters, digits, _ and -)", s);
			goto fail;
		}
		if (dash_set(out, "id", json_string(s)))
			goto nomem;
	}
	j = json_object_get(in, "name");
	if (!j) {
		dash_fail(&v, "name", "missing");
		goto fail;
	}
	if (dash_str(&v, "name", j, DASH_MAX_STR, false, &s))
		goto fail;
	if (dash_set(out, "name", json_string(s)))
		goto nomem;
	s = "";
	j = json_object_get(in, "description");
	if (j && dash_str(&v, "description", j, 4 * DASH_MAX_STR, true, &s))
		goto fail;
	if (dash_set(out, "description", json_string(s)))
		goto nomem;
	s = "";
	j = json_object_get(in, "tenant");
	if (j && dash_str(&v, "tenant", j, 63, true, &s))
		goto fail;
	if (s[0] && !dashboard_templates_tenant_ok(s)) {
		dash_fail(&v, "tenant", "\"%s\" is not a tenant name (letters, digits, _ . : -)",
			  s);
		goto fail;
	}
	if (dash_set(out, "tenant", json_string(s)))
		goto nomem;
	j = json_object_get(in, "tags");
	if (j) {
		rc = dash_strlist(&v, "tags", j, 32, NULL, &sub);
		if (rc)
			goto fail;
	} else {
		sub = json_array();
	}
	if (dash_set(out, "tags", sub))
		goto nomem;
	rc = dash_acl(&v, "acl", json_object_get(in, "acl"), true, &sub);
	if (rc)
		goto fail;
	if (dash_set(out, "acl", sub))
		goto nomem;
	rc = -EINVAL;
	j = json_object_get(in, "time_range_seconds");
	if (j && dash_int(&v, "time_range_seconds", j, 1, 400LL * 86400, &range))
		goto fail;
	if (dash_set(out, "time_range_seconds", json_integer(range)))
		goto nomem;

	j = json_object_get(in, "widgets");
	if (!j) {
		dash_fail(&v, "widgets", "missing (an array, may be empty)");
		goto fail;
	}
	if (!json_is_array(j)) {
		dash_fail(&v, "widgets", "must be an array, not %s", dash_json_kind(j));
		goto fail;
	}
	if (json_array_size(j) > DASHBOARDS_MAX_WIDGETS) {
		dash_fail(&v, "widgets", "has %zu widgets, the limit is %d", json_array_size(j),
			  DASHBOARDS_MAX_WIDGETS);
		goto fail;
	}
	json_array_foreach(j, i, w)
	{
		json_t *wo = json_object();

		if (!wo || json_array_append_new(widgets, wo))
			goto nomem;
		rc = dash_widget(&v, w, i, wo);
		if (rc)
			goto fail;
	}
	rc = dash_widget_ids(&v, j, widgets);
	if (rc)
		goto fail;
	sub = json_array();
	if (!sub)
		goto nomem;
	json_array_foreach(widgets, i, w)
	{
		if (json_array_append_new(sub, dash_widget_ordered(w)))
			goto nomem_sub;
	}
	if (dash_set(out, "widgets", sub))
		goto nomem;
	json_decref(widgets);
	return out;

nomem_sub:
	json_decref(sub);
nomem:
	rc = -ENOMEM;
fail:
	json_decref(widgets);
	json_decref(out);
	if (rc == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	errno = -rc;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Access */

static int dash_role_parse(const char *s)
{
	if (!strcmp(s, "viewer"))
		return AUTH_ROLE_VIEWER;
	if (!strcmp(s, "operator"))
		return AUTH_ROLE_OPERATOR;
	if (!strcmp(s, "admin"))
		return AUTH_ROLE_ADMIN;
	return -1;
}

static bool dash_entry_match(const struct auth_principal *p, const char *e)
{
	int role;

	if (!strncmp(e, "tenant:", 7))
		return p->tenant[0] && !strcmp(p->tenant, e + 7);
	if (!strncmp(e, "role:", 5)) {
		role = dash_role_parse(e + 5);
		return role >= 0 && (int)p->role >= role;
	}
	return !strcmp(e, p->subject);
}

/* Does any entry of acl's list name (NULL list: no) match p? */
static bool dash_list_match(const struct auth_principal *p, const json_t *list)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
	{
		if (json_is_string(e) && dash_entry_match(p, json_string_value(e)))
			return true;
	}
	return false;
}

bool dashboards_allowed(const struct auth_principal *p, const char *owner, const char *tenant,
			const json_t *acl, enum dashboards_access a)
{
	const json_t *viewers = acl ? json_object_get(acl, "viewers") : NULL;
	const json_t *editors = acl ? json_object_get(acl, "editors") : NULL;
	size_t nv = json_array_size(viewers), ne = json_array_size(editors);
	bool explicit;

	if (!p || p->role >= AUTH_ROLE_ADMIN)
		return true;
	if (a == DASHBOARDS_WRITE && p->role < AUTH_ROLE_OPERATOR)
		return false;
	if (tenant && tenant[0] && p->tenant[0] && strcmp(tenant, p->tenant))
		return false;
	explicit = dash_list_match(p, editors) ||
		   (a == DASHBOARDS_READ && dash_list_match(p, viewers));
	/* a tenant's principal sees a dashboard of no tenant only when it is named */
	if ((!tenant || !tenant[0]) && p->tenant[0])
		return explicit;
	if (owner && owner[0] && !strcmp(owner, p->subject))
		return true;
	if (a == DASHBOARDS_WRITE)
		return !ne || explicit;
	return (!nv && !ne) || explicit;
}

bool dashboards_widget_visible(const struct auth_principal *p, const char *owner, const json_t *w)
{
	const json_t *acl = json_object_get(w, "acl");
	const json_t *viewers = acl ? json_object_get(acl, "viewers") : NULL;

	/* owner is not an exception: a widget's list is the whole truth */
	(void)owner;
	if (!p || p->role >= AUTH_ROLE_ADMIN || !json_array_size(viewers))
		return true;
	return dash_list_match(p, viewers);
}

/* ------------------------------------------------------------------ */
/* Documents: stored row <-> answer */

static int64_t dash_now(const struct dashboards *d)
{
	struct timespec ts;

	if (d->now_ms)
		return d->now_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC with milliseconds. */
static json_t *dash_time_json(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[96];

	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(buf);
}

/*
 * The answer for row r as p sees it: the stored document with the row's
 * fields merged in and the widgets p may not see left out. server: with
 * owner, version and times (GET), or without (export). NULL on a corrupt row
 * or out of memory.
 */
static json_t *dash_row_json(const struct dashstore_doc *r, const struct auth_principal *p,
			     bool server)
{
	json_t *doc = json_loads(r->doc, JSON_REJECT_DUPLICATES, NULL);
	json_t *acl = json_loads(r->acl ? r->acl : "{}", 0, NULL);
	json_t *out = json_object(), *widgets = json_array(), *w;
	static const char *const keys[] = { "description", "tags", "time_range_seconds", NULL };
	size_t i;

	if (!doc || !acl || !out || !widgets)
		goto fail;
	if (dash_set(out, "id", json_string(r->id)) || dash_set(out, "name", json_string(r->name)))
		goto fail;
	for (i = 0; keys[i]; i++)
		if (json_object_get(doc, keys[i]) &&
		    json_object_set(out, keys[i], json_object_get(doc, keys[i])))
			goto fail;
	if (dash_set(out, "tenant", json_string(r->tenant)) || json_object_set(out, "acl", acl))
		goto fail;
	if (server && (dash_set(out, "owner", json_string(r->owner)) ||
		       dash_set(out, "version", json_integer(r->version)) ||
		       dash_set(out, "created", dash_time_json(r->created_ms)) ||
		       dash_set(out, "updated", dash_time_json(r->updated_ms))))
		goto fail;
	json_array_foreach(json_object_get(doc, "widgets"), i, w)
	{
		if (dashboards_widget_visible(p, r->owner, w) && json_array_append(widgets, w))
			goto fail;
	}
	if (json_object_set(out, "widgets", widgets))
		goto fail;
	json_decref(widgets);
	json_decref(acl);
	json_decref(doc);
	return out;

fail:
	json_decref(widgets);
	json_decref(out);
	json_decref(acl);
	json_decref(doc);
	return NULL;
}

/*
 * Fill row r from a validated document: name, tenant, acl, and the document
 * without the fields the row keeps. Returns 0 or -ENOMEM.
 */
static int dash_doc_to_row(const json_t *doc, struct dashstore_doc *r)
{
	json_t *copy = json_copy((json_t *)doc);
	char *text = NULL, *acl = NULL;

	if (!copy)
		return -ENOMEM;
	json_object_del(copy, "id");
	text = json_dumps(copy, DASH_DUMP);
	acl = json_dumps(json_object_get(doc, "acl"), DASH_DUMP);
	json_decref(copy);
	if (!text || !acl) {
		free(text);
		free(acl);
		return -ENOMEM;
	}
	snprintf(r->name, sizeof(r->name), "%s", json_string_value(json_object_get(doc, "name")));
	snprintf(r->tenant, sizeof(r->tenant), "%s",
		 json_string_value(json_object_get(doc, "tenant")));
	free(r->doc);
	free(r->acl);
	r->doc = text;
	r->acl = acl;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Answers */

/* Answer j (a reference taken over) as JSON with status. */
static int dash_reply(struct http_response *resp, int status, json_t *j)
{
	char *s;

	if (!j)
		return -ENOMEM;
	s = json_dumps(j, DASH_DUMP);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	resp->status = status;
	resp->content_type = DASH_JSON;
	resp->body = s;
	resp->body_len = strlen(s);
	return 0;
}

static int dash_store_error(struct http_response *resp, int err, const char *id)
{
	switch (err) {
	case -ENOENT:
		return http_error(resp, 404, "not_found", "dashboard \"%.100s\" not found", id);
	case -EEXIST:
		return http_error(resp, 409, "conflict", "dashboard id \"%.100s\" is taken", id);
	case -ESTALE:
		return http_error(
			resp, 409, "conflict",
			"dashboard \"%.100s\" was changed by someone else: read it again and re-apply your change",
			id);
	case -ENOMEM:
		return err;
	default:
		return http_error(resp, 503, "unavailable", "dashboard store: %s", strerror(-err));
	}
}

static int dash_forbidden(struct http_response *resp, const char *what)
{
	return http_error(resp, 403, "forbidden", "%s", what);
}

/* Parse the request body as a JSON object; NULL after a 400 answer. */
static json_t *dash_body(const struct http_request *req, struct http_response *resp)
{
	json_error_t jerr;
	json_t *j;

	if (!req->body_len) {
		http_error(resp, 400, "bad_data", "body: missing (a JSON object)");
		return NULL;
	}
	j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		http_error(resp, 400, "bad_data", "body: invalid JSON at line %d column %d: %s",
			   jerr.line, jerr.column, jerr.text);
	return j;
}

/* ------------------------------------------------------------------ */
/* Routes */

static int dash_h_list(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct auth_principal *p = DASH_PRINCIPAL(req);
	struct dashboards *d = ctx;
	struct dashstore_list l = { 0 };
	json_t *arr = json_array(), *out;
	char tenant[64];
	bool have_tenant;
	size_t i;
	int err;

	if (!arr)
		return -ENOMEM;
	have_tenant = http_param(req->query, "tenant", 0, tenant, sizeof(tenant)) >= 0;
	err = dashstore__list(d->store, have_tenant ? tenant : NULL, &l);
	if (err) {
		json_decref(arr);
		return dash_store_error(resp, err, "");
	}
	for (i = 0; i < l.n; i++) {
		const struct dashstore_doc *r = &l.items[i];
		json_t *acl = json_loads(r->acl, 0, NULL), *widgets, *full, *item;
		bool ok = dashboards_allowed(p, r->owner, r->tenant, acl, DASHBOARDS_READ);

		json_decref(acl);
		if (!ok)
			continue;
		full = dash_row_json(r, p, true);
		widgets = full ? json_object_get(full, "widgets") : NULL;
		item = full ? json_copy(full) : NULL;
		if (!item ||
		    json_object_set_new(item, "widgets",
					json_integer((json_int_t)json_array_size(widgets))) ||
		    json_array_append_new(arr, item)) {
			json_decref(full);
			json_decref(arr);
			dashstore_list__free(&l);
			return -ENOMEM;
		}
		json_object_del(item, "acl");
		json_decref(full);
	}
	dashstore_list__free(&l);
	out = json_object();
	if (!out || json_object_set_new(out, "dashboards", arr)) {
		json_decref(out);
		return -ENOMEM;
	}
	return dash_reply(resp, 200, out);
}

/* Check doc (validated) can be stored by p as a new or updated dashboard. */
static bool dash_tenant_ok_for(const struct auth_principal *p, const json_t *doc)
{
	const char *t = json_string_value(json_object_get(doc, "tenant"));

	return !p || !p->tenant[0] || !strcmp(t, p->tenant);
}

/* POST /api/dashboards: a document, or {"template": NAME, ...}. */
static int dash_h_create(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct auth_principal *p = DASH_PRINCIPAL(req);
	struct dashboards *d = ctx;
	struct dashstore_doc row = { 0 };
	json_t *body = NULL, *doc = NULL, *out;
	char tmpl[64] = "", err[512];
	int rc;

	if (p && p->role < AUTH_ROLE_OPERATOR)
		return dash_forbidden(resp, "viewers may not create dashboards");
	if (http_param(req->query, "template", 0, tmpl, sizeof(tmpl)) < 0 || !tmpl[0]) {
		body = dash_body(req, resp);
		if (!body)
			return 0;
		if (json_is_string(json_object_get(body, "template")))
			snprintf(tmpl, sizeof(tmpl), "%s",
				 json_string_value(json_object_get(body, "template")));
	} else if (req->body_len) {
		body = dash_body(req, resp);
		if (!body)
			return 0;
	}
	if (tmpl[0]) {
		static const char *const names[] = { "template", "name", "tenant", NULL };
		struct dash_val v = { err, sizeof(err) };
		const char *tenant = json_string_value(json_object_get(body, "tenant"));
		const char *name = json_string_value(json_object_get(body, "name"));
		json_t *built;

		if (body && dash_known_keys(&v, "", body, names)) {
			rc = http_error(resp, 400, "bad_data", "%s (with a template: name, tenant)",
					err);
			goto out;
		}
		if (!tenant && p && p->tenant[0])
			tenant = p->tenant;
		built = dashboard_templates_build(tmpl, tenant);
		if (!built) {
			rc = errno == ENOENT ?
				     http_error(
					     resp, 400, "bad_data",
					     "template: unknown template \"%.64s\" (executive, operations, developer, tenant)",
					     tmpl) :
			     errno == EINVAL ?
				     http_error(
					     resp, 400, "bad_data",
					     "tenant: the tenant template needs a valid tenant name") :
				     -ENOMEM;
			goto out;
		}
		if (name && json_object_set_new(built, "name", json_string(name))) {
			json_decref(built);
			rc = -ENOMEM;
			goto out;
		}
		json_decref(body);
		body = built;
	}
	doc = dashboards_validate(body, err, sizeof(err));
	if (!doc) {
		rc = errno == ENOMEM ? -ENOMEM : http_error(resp, 400, "bad_data", "%s", err);
		goto out;
	}
	if (p && p->tenant[0] && !json_string_value(json_object_get(doc, "tenant"))[0] &&
	    json_object_set_new(doc, "tenant", json_string(p->tenant))) {
		rc = -ENOMEM;
		goto out;
	}
	if (!dash_tenant_ok_for(p, doc)) {
		rc = dash_forbidden(resp, "tenant: you may only create dashboards of your tenant");
		goto out;
	}
	if (json_object_get(doc, "id")) {
		snprintf(row.id, sizeof(row.id), "%s",
			 json_string_value(json_object_get(doc, "id")));
	} else if ((rc = dashstore_new_id(row.id))) {
		goto out;
	}
	snprintf(row.owner, sizeof(row.owner), "%s", p ? p->subject : "");
	rc = dash_doc_to_row(doc, &row);
	if (rc)
		goto out;
	rc = dashstore__create(d->store, &row, dash_now(d));
	if (rc) {
		rc = dash_store_error(resp, rc, row.id);
		goto out;
	}
	out = dash_row_json(&row, p, true);
	rc = dash_reply(resp, 201, out);
out:
	dashstore_doc__clear(&row);
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* Read id and check p may access it as a; 1 when *row is filled, else 0 after an answer. */
static int dash_load(struct dashboards *d, const struct auth_principal *p, const char *id,
		     enum dashboards_access a, struct dashstore_doc *row,
		     struct http_response *resp, int *rc)
{
	json_t *acl;
	bool ok;
	int err;

	err = dashstore__get(d->store, id, row);
	if (err) {
		*rc = dash_store_error(resp, err, id);
		return 0;
	}
	acl = json_loads(row->acl, 0, NULL);
	ok = dashboards_allowed(p, row->owner, row->tenant, acl, DASHBOARDS_READ);
	if (ok && a == DASHBOARDS_WRITE &&
	    !dashboards_allowed(p, row->owner, row->tenant, acl, DASHBOARDS_WRITE)) {
		json_decref(acl);
		dashstore_doc__clear(row);
		*rc = dash_forbidden(resp, "you may read this dashboard but not change it");
		return 0;
	}
	json_decref(acl);
	if (!ok) {
		/* as if it did not exist: its id tells nothing */
		dashstore_doc__clear(row);
		*rc = dash_store_error(resp, -ENOENT, id);
		return 0;
	}
	return 1;
}

/* Query parameter name as a time (def when absent). 0, or -EINVAL after a 400. */
static int dash_time_param(const struct http_request *req, struct http_response *resp,
			   const char *name, int64_t def, int64_t *ms)
{
	char buf[64];
	int rc = http_param(req->query, name, 0, buf, sizeof(buf));

	*ms = def;
	if (rc == -ENOENT || (rc >= 0 && !buf[0]))
		return 0;
	if (rc < 0 || prom_api_parse_time(buf, ms)) {
		http_error(resp, 400, "bad_data",
			   "invalid parameter \"%s\": cannot parse \"%.60s\" to a valid timestamp",
			   name, rc < 0 ? "" : buf);
		return -EINVAL;
	}
	return 0;
}

/* start, end, step for /data and exports. 0, or -EINVAL after a 400. */
static int dash_range(struct dashboards *d, const struct http_request *req,
		      struct http_response *resp, const json_t *doc, int64_t *start, int64_t *end,
		      int64_t *step)
{
	json_int_t range_s = json_integer_value(json_object_get(doc, "time_range_seconds"));
	char buf[64];
	int rc;

	if (range_s <= 0)
		range_s = DASH_DEFAULT_RANGE_S;
	if (dash_time_param(req, resp, "end", dash_now(d), end) ||
	    dash_time_param(req, resp, "start", *end - (int64_t)range_s * 1000, start))
		return -EINVAL;
	if (*end < *start) {
		http_error(
			resp, 400, "bad_data",
			"invalid parameter \"end\": end timestamp must not be before start time");
		return -EINVAL;
	}
	rc = http_param(req->query, "step", 0, buf, sizeof(buf));
	if (rc >= 0 && buf[0]) {
		if (prom_api_parse_duration(buf, step) || *step <= 0) {
			http_error(
				resp, 400, "bad_data",
				"invalid parameter \"step\": \"%.60s\" is not a positive duration",
				buf);
			return -EINVAL;
		}
	} else {
		*step = (*end - *start) / DASH_DEFAULT_POINTS / 1000 * 1000;
		if (*step < 1000)
			*step = 1000;
	}
	if ((*end - *start) / *step > PROM_API_MAX_POINTS) {
		http_error(
			resp, 400, "bad_data",
			"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)");
		return -EINVAL;
	}
	return 0;
}

/* Evaluate every widget of doc over [start, end] by step into panels[] (results owned). */
static void dash_eval(struct dashboards *d, const struct auth_principal *p, const json_t *widgets,
		      int64_t start, int64_t end, int64_t step,
		      struct dashboard_export_panel *panels)
{
	size_t i;
	json_t *w;

	json_array_foreach(widgets, i, w)
	{
		struct dashboard_export_panel *pn = &panels[i];
		struct promql_expr *e;

		pn->widget = w;
		pn->result = NULL;
		pn->error[0] = '\0';
		e = promql_parse(json_string_value(json_object_get(w, "query")), pn->error,
				 sizeof(pn->error));
		if (!e)
			continue;
		/* a tenant's principal sees only its tenant's series, as on /api/v1/query */
		if (p && p->tenant[0] && promql_restrict(e, DASH_TENANT_LABEL, p->tenant)) {
			snprintf(pn->error, sizeof(pn->error), "out of memory");
		} else if (promql_eval_range(d->eng, e, start, end, step, &pn->result, pn->error,
					     sizeof(pn->error))) {
			promql_result__free(pn->result);
			pn->result = NULL;
			if (!pn->error[0])
				snprintf(pn->error, sizeof(pn->error), "evaluation failed");
		}
		promql_expr__free(e);
	}
}

static void dash_panels_free(struct dashboard_export_panel *panels, size_t n)
{
	size_t i;

	for (i = 0; panels && i < n; i++)
		promql_result__free(panels[i].result);
	free(panels);
}

/* GET /api/dashboards/{id}/data */
static int dash_data(struct dashboards *d, const struct http_request *req,
		     struct http_response *resp, const json_t *doc)
{
	const json_t *widgets = json_object_get(doc, "widgets");
	size_t n = json_array_size(widgets), i;
	struct dashboard_export_panel *panels = NULL;
	int64_t start, end, step;
	char *buf = NULL, ts[32];
	size_t len = 0;
	FILE *f = NULL;
	int rc = 0;

	if (!d->eng)
		return http_error(resp, 503, "unavailable",
				  "no local store (store.enabled: false): widget data needs it");
	if (dash_range(d, req, resp, doc, &start, &end, &step))
		return 0;
	panels = calloc(n ? n : 1, sizeof(*panels));
	if (!panels)
		return -ENOMEM;
	dash_eval(d, DASH_PRINCIPAL(req), widgets, start, end, step, panels);

	f = open_memstream(&buf, &len);
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	prom_api_format_time(start, ts, sizeof(ts));
	fprintf(f, "{\"start\":%s", ts);
	prom_api_format_time(end, ts, sizeof(ts));
	fprintf(f, ",\"end\":%s", ts);
	prom_api_format_time(step, ts, sizeof(ts));
	fprintf(f, ",\"step\":%s,\"widgets\":[", ts);
	for (i = 0; i < n; i++) {
		const json_t *w = panels[i].widget;
		json_t *head = json_pack("{s:O,s:O}", "id", json_object_get(w, "id"), "type",
					 json_object_get(w, "type"));
		char *hs = head ? json_dumps(head, DASH_DUMP) : NULL;

		json_decref(head);
		if (!hs) {
			rc = -ENOMEM;
			goto out;
		}
		/* {"id":..,"type":..} then the result or the error before the closing brace */
		fprintf(f, "%s%.*s", i ? "," : "", (int)strlen(hs) - 1, hs);
		free(hs);
		if (panels[i].result) {
			static const char env[] = "{\"status\":\"success\",\"data\":";
			char *r = NULL;
			size_t rlen = 0;

			rc = prom_api_render_result(panels[i].result, end, &r, &rlen);
			if (rc)
				goto out;
			/* keep the data object of prom_api's envelope {"status":..,"data":X}\n */
			if (rlen < sizeof(env) + 1 || memcmp(r, env, sizeof(env) - 1)) {
				free(r);
				rc = -EPROTO;
				goto out;
			}
			fprintf(f, ",\"result\":%.*s}", (int)(rlen - (sizeof(env) - 1) - 2),
				r + sizeof(env) - 1);
			free(r);
		} else {
			json_t *e = json_string(panels[i].error);
			char *es = e ? json_dumps(e, JSON_ENCODE_ANY) : NULL;

			json_decref(e);
			if (!es) {
				rc = -ENOMEM;
				goto out;
			}
			fprintf(f, ",\"error\":%s}", es);
			free(es);
		}
	}
	fprintf(f, "]}\n");
	if (fclose(f)) {
		f = NULL;
		rc = -ENOMEM;
		goto out;
	}
	f = NULL;
	resp->status = 200;
	resp->content_type = DASH_JSON;
	resp->body = buf;
	resp->body_len = len;
	buf = NULL;
out:
	if (f)
		fclose(f);
	free(buf);
	dash_panels_free(panels, n);
	return rc;
}

/* GET /api/dashboards/{id}/export?format=json|png|pdf */
static int dash_export(struct dashboards *d, const struct http_request *req,
		       struct http_response *resp, json_t *doc)
{
	const json_t *widgets = json_object_get(doc, "widgets");
	size_t n = json_array_size(widgets);
	struct dashboard_export_panel *panels = NULL;
	struct dashboard_export_opts o = { 0 };
	char fmt[16] = "json", buf[32];
	char *out = NULL;
	size_t len = 0;
	long px;
	int rc;

	if (http_param(req->query, "format", 0, fmt, sizeof(fmt)) == -E2BIG ||
	    (strcmp(fmt, "json") && strcmp(fmt, "png") && strcmp(fmt, "pdf")))
		return http_error(resp, 400, "bad_data",
				  "invalid parameter \"format\": json, png or pdf");
	if (!strcmp(fmt, "json")) {
		rc = dashboard_export_json(doc, &out, &len);
		if (rc)
			return rc;
		resp->status = 200;
		resp->content_type = DASH_JSON;
		resp->body = out;
		resp->body_len = len;
		return 0;
	}
	if (!d->eng)
		return http_error(resp, 503, "unavailable",
				  "no local store (store.enabled: false): rendering needs it");
	o.width = DASHBOARD_EXPORT_WIDTH;
	o.height = 0;
	if (http_param(req->query, "width", 0, buf, sizeof(buf)) >= 0) {
		px = strtol(buf, NULL, 10);
		if (px < 200 || px > DASHBOARD_EXPORT_MAX_PX)
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"width\": 200 to %d pixels",
					  DASHBOARD_EXPORT_MAX_PX);
		o.width = (int)px;
	}
	if (http_param(req->query, "height", 0, buf, sizeof(buf)) >= 0) {
		px = strtol(buf, NULL, 10);
		if (px < 200 || px > DASHBOARD_EXPORT_MAX_PX)
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"height\": 200 to %d pixels",
					  DASHBOARD_EXPORT_MAX_PX);
		o.height = (int)px;
	}
	if (dash_range(d, req, resp, doc, &o.start_ms, &o.end_ms, &o.step_ms))
		return 0;
	panels = calloc(n ? n : 1, sizeof(*panels));
	if (!panels)
		return -ENOMEM;
	dash_eval(d, DASH_PRINCIPAL(req), widgets, o.start_ms, o.end_ms, o.step_ms, panels);
	o.title = json_string_value(json_object_get(doc, "name"));
	o.format = !strcmp(fmt, "png") ? DASHBOARD_EXPORT_PNG : DASHBOARD_EXPORT_PDF;
	rc = dashboard_export_render(&o, panels, n, &out, &len);
	dash_panels_free(panels, n);
	if (rc)
		return rc == -ENOMEM ? rc :
				       http_error(resp, 500, "internal", "rendering failed: %s",
						  strerror(-rc));
	resp->status = 200;
	resp->content_type = o.format == DASHBOARD_EXPORT_PNG ? "image/png" : "application/pdf";
	resp->body = out;
	resp->body_len = len;
	return 0;
}

static int dash_templates(struct http_response *resp)
{
	json_t *arr = json_array(), *out;
	size_t i;

	for (i = 0; arr && i < DASHBOARD_TEMPLATES_N; i++)
		if (json_array_append_new(arr, json_pack("{s:s,s:s}", "name",
							 dashboard_templates_name(i), "description",
							 dashboard_templates_description(i)))) {
			json_decref(arr);
			return -ENOMEM;
		}
	out = arr ? json_pack("{s:o}", "templates", arr) : NULL;
	return dash_reply(resp, 200, out);
}

/*
 * Split the path after DASH_PREFIX into id and what follows ("", "data",
 * "export"). Returns 0, or -ENOENT for a path of no route.
 */
static int dash_split(const char *path, char *id, size_t idlen, const char **rest)
{
	const char *p = path + sizeof(DASH_PREFIX) - 1, *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);

	if (!n || n >= idlen)
		return -ENOENT;
	memcpy(id, p, n);
	id[n] = '\0';
	*rest = slash ? slash + 1 : "";
	if (strcmp(*rest, "") && strcmp(*rest, "data") && strcmp(*rest, "export"))
		return -ENOENT;
	return 0;
}

/* GET /api/dashboards/{id}[/data|/export], /api/dashboards/templates */
static int dash_h_get(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct auth_principal *p = DASH_PRINCIPAL(req);
	struct dashboards *d = ctx;
	struct dashstore_doc row = { 0 };
	const char *rest;
	char id[DASHSTORE_ID_LEN];
	json_t *doc;
	int rc = 0;

	if (!strcmp(req->path, DASH_PREFIX "templates"))
		return dash_templates(resp);
	if (dash_split(req->path, id, sizeof(id), &rest))
		return http_error(resp, 404, "not_found", "no such route: %.200s", req->path);
	if (!dash_load(d, p, id, DASHBOARDS_READ, &row, resp, &rc))
		return rc;
	doc = dash_row_json(&row, p, !!strcmp(rest, "export"));
	if (!doc) {
		rc = http_error(resp, 500, "internal", "dashboard \"%s\" is stored corrupt", id);
	} else if (!strcmp(rest, "data")) {
		rc = dash_data(d, req, resp, doc);
		json_decref(doc);
	} else if (!strcmp(rest, "export")) {
		rc = dash_export(d, req, resp, doc);
		json_decref(doc);
	} else {
		rc = dash_reply(resp, 200, doc);
	}
	dashstore_doc__clear(&row);
	return rc;
}

/*
 * Append to new_doc's widgets the widgets of old_doc that p cannot see (so an
 * editor's PUT does not drop what it was never shown). Returns 0, -EEXIST
 * when new_doc reuses one of their ids, -ENOMEM.
 */
static int dash_keep_hidden(const struct auth_principal *p, const char *owner,
			    const json_t *old_doc, json_t *new_doc)
{
	json_t *nw = json_object_get(new_doc, "widgets"), *w, *x;
	size_t i, k;

	json_array_foreach(json_object_get(old_doc, "widgets"), i, w)
	{
		const char *id = json_string_value(json_object_get(w, "id"));

		if (dashboards_widget_visible(p, owner, w))
			continue;
		json_array_foreach(nw, k, x)
		{
			if (!strcmp(json_string_value(json_object_get(x, "id")), id))
				return -EEXIST;
		}
		if (json_array_append(nw, w))
			return -ENOMEM;
	}
	return 0;
}

/* PUT /api/dashboards/{id} */
static int dash_h_put(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct auth_principal *p = DASH_PRINCIPAL(req);
	struct dashboards *d = ctx;
	struct dashstore_doc row = { 0 };
	json_t *body = NULL, *doc = NULL, *old = NULL, *oldacl = NULL, *ver;
	const char *rest, *bid;
	char id[DASHSTORE_ID_LEN], err[512];
	int rc = 0;

	if (dash_split(req->path, id, sizeof(id), &rest) || rest[0])
		return http_error(resp, 404, "not_found", "no such route: %.200s", req->path);
	body = dash_body(req, resp);
	if (!body)
		return 0;
	ver = json_object_get(body, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
		rc = http_error(resp, 400, "bad_data",
				"version: %s (the version you read, for optimistic concurrency)",
				ver ? "must be a positive integer" : "missing");
		goto out;
	}
	bid = json_string_value(json_object_get(body, "id"));
	if (bid && strcmp(bid, id)) {
		rc = http_error(resp, 400, "bad_data", "id: \"%.64s\" is not this dashboard's id",
				bid);
		goto out;
	}
	doc = dashboards_validate(body, err, sizeof(err));
	if (!doc) {
		rc = errno == ENOMEM ? -ENOMEM : http_error(resp, 400, "bad_data", "%s", err);
		goto out;
	}
	if (!dash_load(d, p, id, DASHBOARDS_WRITE, &row, resp, &rc))
		goto out;
	old = json_loads(row.doc, 0, NULL);
	oldacl = json_loads(row.acl, 0, NULL);
	if (!old || !oldacl) {
		rc = http_error(resp, 500, "internal", "dashboard \"%s\" is stored corrupt", id);
		goto out;
	}
	/* only the owner or an admin changes who may see it */
	if (p && p->role < AUTH_ROLE_ADMIN && strcmp(row.owner, p->subject) &&
	    (!json_equal(oldacl, json_object_get(doc, "acl")) ||
	     strcmp(row.tenant, json_string_value(json_object_get(doc, "tenant"))))) {
		rc = dash_forbidden(resp,
				    "acl, tenant: only the owner or an admin may change them");
		goto out;
	}
	if (!dash_tenant_ok_for(p, doc)) {
		rc = dash_forbidden(resp, "tenant: you may only store dashboards of your tenant");
		goto out;
	}
	rc = dash_keep_hidden(p, row.owner, old, doc);
	if (rc == -EEXIST) {
		rc = http_error(resp, 409, "conflict",
				"widgets: an id you used belongs to a widget you cannot see");
		goto out;
	}
	if (rc)
		goto out;
	rc = dash_doc_to_row(doc, &row);
	if (rc)
		goto out;
	row.version = json_integer_value(ver);
	rc = dashstore__update(d->store, &row, dash_now(d));
	if (rc) {
		rc = dash_store_error(resp, rc, id);
		goto out;
	}
	rc = dash_reply(resp, 200, dash_row_json(&row, p, true));
out:
	dashstore_doc__clear(&row);
	json_decref(oldacl);
	json_decref(old);
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* DELETE /api/dashboards/{id}[?version=N] */
static int dash_h_delete(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct auth_principal *p = DASH_PRINCIPAL(req);
	struct dashboards *d = ctx;
	struct dashstore_doc row = { 0 };
	const char *rest;
	char id[DASHSTORE_ID_LEN], buf[32];
	long long version = 0;
	int rc = 0;

	if (dash_split(req->path, id, sizeof(id), &rest) || rest[0])
		return http_error(resp, 404, "not_found", "no such route: %.200s", req->path);
	if (http_param(req->query, "version", 0, buf, sizeof(buf)) >= 0) {
		char *end;

		version = strtoll(buf, &end, 10);
		if (*end || version < 1)
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"version\": a positive integer");
	}
	if (!dash_load(d, p, id, DASHBOARDS_WRITE, &row, resp, &rc))
		return rc;
	dashstore_doc__clear(&row);
	rc = dashstore__delete(d->store, id, version);
	if (rc)
		return dash_store_error(resp, rc, id);
	resp->status = 204;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Set-up */

int dashboards__init(struct dashboards *d, struct dashstore *store, const struct promql_engine *eng)
{
	if (!d || !store)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->store = store;
	d->eng = eng;
	return 0;
}

int dashboards__seed(struct dashboards *d)
{
	static const char flag[] = "seeded." DASHBOARDS_SEED_ID;
	struct dashstore_doc row = { 0 };
	char err[256];
	json_t *t, *doc;
	int rc;

	rc = dashstore__flag_test(d->store, flag);
	if (rc)
		return rc < 0 ? rc : 0;
	t = dashboard_templates_build("operations", NULL);
	doc = t ? dashboards_validate(t, err, sizeof(err)) : NULL;
	json_decref(t);
	if (!doc)
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	snprintf(row.id, sizeof(row.id), "%s", DASHBOARDS_SEED_ID);
	rc = dash_doc_to_row(doc, &row);
	json_decref(doc);
	if (!rc)
		rc = dashstore__create(d->store, &row, dash_now(d));
	dashstore_doc__clear(&row);
	if (rc && rc != -EEXIST)
		return rc;
	/* created (or there already): never again, even once it is deleted */
	rc = dashstore__flag_set(d->store, flag, dash_now(d));
	return rc ? rc : 1;
}

int dashboards__routes(struct dashboards *d, struct http_route *routes, size_t max)
{
	const struct http_route all[DASHBOARDS_NROUTES] = {
		{ "GET", "/api/dashboards", dash_h_list, d, AUTH_ROLE_VIEWER },
		{ "POST", "/api/dashboards", dash_h_create, d, AUTH_ROLE_OPERATOR },
		{ "GET", DASH_PREFIX, dash_h_get, d, AUTH_ROLE_VIEWER },
		{ "PUT", DASH_PREFIX, dash_h_put, d, AUTH_ROLE_OPERATOR },
		{ "DELETE", DASH_PREFIX, dash_h_delete, d, AUTH_ROLE_OPERATOR },
	};

	if (!d || !routes)
		return -EINVAL;
	if (max < DASHBOARDS_NROUTES)
		return -ENOSPC;
	memcpy(routes, all, sizeof(all));
	return DASHBOARDS_NROUTES;
}
