/* SPDX-License-Identifier: Apache-2.0 */
/*
 * system_status: /api/system/metrics and /api/components/status (see
 * system_status.h). Only reads: the latest published metric set and health
 * JSON, and instant queries on the local store for recent rates.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "metrics.h"
#include "system_status.h"

enum ss_state {
	SS_UP,
	SS_DEGRADED,
	SS_DOWN,
};

static const char *const ss_state_names[] = { "up", "degraded", "down" };

static int64_t ss_now(const struct system_status *s)
{
	struct timespec ts;

	if (s->now_ms)
		return s->now_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The sum of family name's series whose label string is labels (NULL: every
 * series). NAN when the set has no such family.
 */
static double ss_sum(const struct metric_set *set, const char *name, const char *labels)
{
	const struct metric_family *f = set ? metric_set__find(set, name) : NULL;
	double sum = 0;
	size_t i;

	if (!f)
		return NAN;
	for (i = 0; i < f->nseries; i++)
		if (!labels || !strcmp(f->series[i].labels, labels))
			sum += f->type == METRIC_HISTOGRAM ? (double)f->series[i].count :
							     f->series[i].value;
	return sum;
}

static bool ss_has(const struct metric_set *set, const char *name)
{
	return set && metric_set__find(set, name);
}

/* The sum of an instant query's values at now; NAN without a store, an answer or a value. */
static double ss_query(const struct system_status *s, const char *q, int64_t now_ms)
{
	struct promql_result *r = NULL;
	struct promql_expr *e;
	char err[256];
	double sum = NAN;
	size_t i;

	if (!s->eng)
		return NAN;
	e = promql_parse(q, err, sizeof(err));
	if (!e)
		return NAN;
	if (!promql_eval_instant(s->eng, e, now_ms, &r, err, sizeof(err))) {
		if (r->type == PROMQL_SCALAR)
			sum = r->scalar;
		else if (r->type == PROMQL_VECTOR)
			for (i = 0; i < r->nseries; i++)
				if (r->series[i].n)
					sum = (isnan(sum) ? 0 : sum) + r->series[i].v[0];
	}
	promql_result__free(r);
	promql_expr__free(e);
	return sum;
}

/* A number, or null for NAN. */
static json_t *ss_num(double v)
{
	if (!isfinite(v))
		return json_null();
	if (v == floor(v) && fabs(v) < 9e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

json_t *system_status_metrics(const struct system_status *s, const struct metric_set *set,
			      const char *health, int64_t now_ms)
{
	double cpu_total = ss_sum(set, "novamon_process_cpu_seconds_total", NULL);
	double start = ss_sum(set, "novamon_process_start_time_seconds", NULL);
	double uptime = isnan(start) ? NAN : now_ms / 1000.0 - start;
	double cores = ss_query(s, "rate(novamon_process_cpu_seconds_total[1m])", now_ms);
	double produced = ss_sum(set, "novamon_events_produced_total", NULL);
	double lost = ss_sum(set, "novamon_events_lost_total", NULL);
	double eps = NAN;
	int window = 60;
	json_t *h = health ? json_loads(health, 0, NULL) : NULL, *out;

	if (isnan(cores)) {
		window = 0;
		cores = uptime > 0 ? cpu_total / uptime : NAN;
	}
	if (h)
		eps = json_number_value(
			json_object_get(json_object_get(h, "capture"), "events_per_second"));
	json_decref(h);
	out = json_pack(
		"{s:o,s:o,s:{s:o,s:i,s:o},s:{s:o},s:o,s:o,s:{s:o,s:o,s:o,s:o,s:o},s:{s:o,s:o},s:{s:o,s:o,s:o}}",
		"timestamp", json_real(now_ms / 1000.0), "uptime_seconds", ss_num(uptime), "cpu",
		"cores", ss_num(cores), "window_seconds", window, "seconds_total",
		ss_num(cpu_total), "memory", "resident_bytes",
		ss_num(ss_sum(set, "novamon_process_resident_memory_bytes", NULL)), "open_fds",
		ss_num(ss_sum(set, "novamon_process_open_fds", NULL)), "threads",
		ss_num(ss_sum(set, "novamon_process_threads", NULL)), "ring", "events_total",
		ss_num(ss_sum(set, "novamon_events_total", NULL)), "events_per_second", ss_num(eps),
		"produced_total", ss_num(produced), "lost_total", ss_num(lost), "loss_ratio",
		ss_num(produced > 0 ? lost / produced : NAN), "tick", "duration_seconds",
		ss_num(ss_sum(set, "novamon_tick_duration_seconds", NULL)), "lag_seconds",
		ss_num(set ? (now_ms - set->timestamp_ms) / 1000.0 : NAN), "series", "active",
		ss_num(ss_sum(set, "novamon_series_active", NULL)), "expired_total",
		ss_num(ss_sum(set, "novamon_series_expired_total", NULL)), "store",
		ss_num(ss_sum(set, "novamon_tsdb_series", NULL)));
	return out;
}

/* One component's verdict. */
struct ss_comp {
	const char *name;
	bool enabled;
	enum ss_state state;
	char reason[384];
};

/*
 * How much counter name (with labels, or all series) grew recently: over
 * SYSTEM_STATUS_RECENT from the store, else its total since start. *window
 * says which ("in the last 5m" / "since start").
 */
static double ss_recent(const struct system_status *s, const struct metric_set *set,
			const char *name, const char *selector, const char *labels, int64_t now_ms,
			const char **window)
{
	char q[256];
	double v;

	snprintf(q, sizeof(q), "sum(increase(%s%s[" SYSTEM_STATUS_RECENT "]))", name,
		 selector ? selector : "");
	v = ss_query(s, q, now_ms);
	if (!isnan(v)) {
		*window = "in the last " SYSTEM_STATUS_RECENT;
		return v;
	}
	*window = "since start";
	v = ss_sum(set, name, labels);
	return isnan(v) ? 0 : v;
}

static void ss_capture(const struct system_status *s, const struct metric_set *set, const json_t *h,
		       int64_t now_ms, struct ss_comp *c)
{
	const json_t *cap = json_object_get(h, "capture"), *probes, *p;
	const char *err = json_string_value(json_object_get(cap, "error"));
	size_t i, down = 0, n;
	const char *first = NULL, *why = NULL, *window;
	double lost;

	c->enabled = true;
	if (!h) {
		c->state = SS_DOWN;
		snprintf(c->reason, sizeof(c->reason), "no health report yet (first tick pending)");
		return;
	}
	if (!json_is_true(json_object_get(cap, "running"))) {
		c->state = SS_DOWN;
		c->enabled = !(err && strstr(err, "disabled"));
		snprintf(c->reason, sizeof(c->reason), "%s",
			 err && err[0] ? err : "capture is not running");
		return;
	}
	probes = json_object_get(cap, "probes");
	n = json_array_size(probes);
	json_array_foreach(probes, i, p)
	{
		if (json_is_true(json_object_get(p, "attached")))
			continue;
		if (!down++) {
			first = json_string_value(json_object_get(p, "program"));
			why = json_string_value(json_object_get(p, "reason"));
		}
	}
	lost = ss_recent(s, set, "novamon_events_lost_total", NULL, NULL, now_ms, &window);
	if (down) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "%zu of %zu probes not attached (%s: %s)",
			 down, n, first ? first : "?", why ? why : "");
	} else if (lost > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason),
			 "%.0f events lost %s: a ring buffer was full (raise capture.ring_bytes)",
			 lost, window);
	} else {
		c->state = SS_UP;
		snprintf(c->reason, sizeof(c->reason), "%zu probes attached, %.0f events/s", n,
			 json_number_value(json_object_get(cap, "events_per_second")));
	}
}

static void ss_store(const struct system_status *s, const struct metric_set *set, int64_t now_ms,
		     struct ss_comp *c)
{
	const char *w1, *w2;
	double failed, corrupt;

	c->enabled = ss_has(set, "novamon_tsdb_series");
	if (!c->enabled) {
		c->state = SS_DOWN;
		snprintf(c->reason, sizeof(c->reason),
			 set ? "not running (store.enabled: false)" : "no tick yet");
		return;
	}
	failed = ss_recent(s, set, "novamon_sink_failed_samples_total", "{sink=\"store\"}",
			   "sink=\"store\"", now_ms, &w1);
	corrupt = ss_recent(s, set, "novamon_tsdb_wal_corruptions_total", NULL, NULL, now_ms, &w2);
	if (failed > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "%.0f samples refused %s", failed, w1);
	} else if (corrupt > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "%.0f corrupt WAL frames skipped %s",
			 corrupt, w2);
	} else {
		c->state = SS_UP;
		snprintf(c->reason, sizeof(c->reason), "%.0f series, %.0f WAL bytes",
			 ss_sum(set, "novamon_tsdb_series", NULL),
			 ss_sum(set, "novamon_tsdb_wal_bytes", NULL));
	}
}

static void ss_remote_write(const struct system_status *s, const struct metric_set *set,
			    int64_t now_ms, struct ss_comp *c)
{
	const char *w1, *w2;
	double failed, dropped;

	c->enabled = ss_has(set, "novamon_remote_write_sent_samples_total");
	if (!c->enabled) {
		c->state = SS_DOWN;
		snprintf(c->reason, sizeof(c->reason),
			 "not configured (remote_write.url is empty)");
		return;
	}
	failed = ss_recent(s, set, "novamon_remote_write_failed_requests_total", NULL, NULL, now_ms,
			   &w1);
	dropped = ss_recent(s, set, "novamon_remote_write_dropped_samples_total", NULL, NULL,
			    now_ms, &w2);
	if (dropped > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "%.0f samples dropped %s", dropped, w2);
	} else if (failed > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason),
			 "%.0f requests failed %s; %.0f bytes queued for retry", failed, w1,
			 ss_sum(set, "novamon_remote_write_queue_bytes", NULL));
	} else {
		c->state = SS_UP;
		snprintf(c->reason, sizeof(c->reason), "%.0f samples sent",
			 ss_sum(set, "novamon_remote_write_sent_samples_total", NULL));
	}
}

static void ss_otlp(const struct system_status *s, const struct metric_set *set, int64_t now_ms,
		    struct ss_comp *c)
{
	const char *w1, *w2;
	double dropped, rejected;

	c->enabled = ss_has(set, "novamon_otlp_sent_items_total");
	if (!c->enabled) {
		c->state = SS_DOWN;
		snprintf(c->reason, sizeof(c->reason), "not configured (otlp.endpoint is empty)");
		return;
	}
	dropped = ss_recent(s, set, "novamon_otlp_dropped_items_total", NULL, NULL, now_ms, &w1);
	rejected = ss_recent(s, set, "novamon_otlp_rejected_items_total", NULL, NULL, now_ms, &w2);
	if (dropped > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "%.0f items dropped %s", dropped, w1);
	} else if (rejected > 0) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "%.0f items rejected by the collector %s",
			 rejected, w2);
	} else {
		c->state = SS_UP;
		snprintf(c->reason, sizeof(c->reason), "%.0f items sent",
			 ss_sum(set, "novamon_otlp_sent_items_total", NULL));
	}
}

static void ss_tick(const struct metric_set *set, int64_t now_ms, struct ss_comp *c)
{
	double lag = set ? (now_ms - set->timestamp_ms) / 1000.0 : NAN;

	c->enabled = true;
	if (!set) {
		c->state = SS_DOWN;
		snprintf(c->reason, sizeof(c->reason), "no tick yet");
	} else if (lag > 30) {
		c->state = SS_DOWN;
		snprintf(c->reason, sizeof(c->reason), "the last tick was %.0f s ago", lag);
	} else if (lag > 3) {
		c->state = SS_DEGRADED;
		snprintf(c->reason, sizeof(c->reason), "the last tick was %.1f s ago (every 1 s)",
			 lag);
	} else {
		c->state = SS_UP;
		snprintf(c->reason, sizeof(c->reason), "last tick %.1f s ago, took %.3f s", lag,
			 ss_sum(set, "novamon_tick_duration_seconds", NULL));
	}
}

json_t *system_status_components(const struct system_status *s, const struct metric_set *set,
				 const char *health, int64_t now_ms)
{
	struct ss_comp c[6] = {
		{ .name = "capture" }, { .name = "store" }, { .name = "remote_write" },
		{ .name = "otlp" },    { .name = "http" },  { .name = "tick" },
	};
	json_t *h = health ? json_loads(health, 0, NULL) : NULL, *arr = json_array(), *out = NULL;
	enum ss_state worst = SS_UP;
	size_t i;

	ss_capture(s, set, h, now_ms, &c[0]);
	ss_store(s, set, now_ms, &c[1]);
	ss_remote_write(s, set, now_ms, &c[2]);
	ss_otlp(s, set, now_ms, &c[3]);
	/* this answer went through it */
	c[4].enabled = true;
	c[4].state = SS_UP;
	snprintf(c[4].reason, sizeof(c[4].reason), "serving");
	ss_tick(set, now_ms, &c[5]);
	json_decref(h);
	for (i = 0; arr && i < sizeof(c) / sizeof(c[0]); i++) {
		if (c[i].enabled && c[i].state > worst)
			worst = c[i].state;
		if (json_array_append_new(arr,
					  json_pack("{s:s,s:s,s:b,s:s}", "name", c[i].name,
						    "status", ss_state_names[c[i].state], "enabled",
						    c[i].enabled, "reason", c[i].reason))) {
			json_decref(arr);
			return NULL;
		}
	}
	if (arr)
		out = json_pack("{s:s,s:o}", "status", ss_state_names[worst], "components", arr);
	return out;
}

static int ss_reply(struct http_response *resp, json_t *j)
{
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!body)
		return -ENOMEM;
	resp->status = 200;
	resp->content_type = "application/json";
	resp->body = body;
	resp->body_len = strlen(body);
	return 0;
}

static int ss_h(const struct http_request *req, struct http_response *resp, void *ctx,
		bool components)
{
	struct system_status *s = ctx;
	char *health = NULL;
	struct metric_set *set;
	int64_t now = ss_now(s);
	json_t *j;

	/* host-wide figures: not for a principal limited to one tenant */
	if (req->principal && req->principal->tenant[0])
		return http_error(resp, 403, "forbidden",
				  "the daemon's own status is not shown to a tenant's principal");
	set = metric_store__get(s->metrics, &health);
	j = components ? system_status_components(s, set, health, now) :
			 system_status_metrics(s, set, health, now);
	metric_store__put(s->metrics, set);
	free(health);
	return ss_reply(resp, j);
}

static int ss_h_metrics(const struct http_request *req, struct http_response *resp, void *ctx)
{
	return ss_h(req, resp, ctx, false);
}

static int ss_h_components(const struct http_request *req, struct http_response *resp, void *ctx)
{
	return ss_h(req, resp, ctx, true);
}

int system_status__init(struct system_status *s, struct metric_store *metrics,
			const struct promql_engine *eng)
{
	if (!s || !metrics)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->metrics = metrics;
	s->eng = eng;
	return 0;
}

int system_status__routes(struct system_status *s, struct http_route *routes, size_t max)
{
	const struct http_route all[SYSTEM_STATUS_NROUTES] = {
		{ "GET", "/api/system/metrics", ss_h_metrics, s },
		{ "GET", "/api/components/status", ss_h_components, s },
	};

	if (!s || !routes)
		return -EINVAL;
	if (max < SYSTEM_STATUS_NROUTES)
		return -ENOSPC;
	memcpy(routes, all, sizeof(all));
	return SYSTEM_STATUS_NROUTES;
}
