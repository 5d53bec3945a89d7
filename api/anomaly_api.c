/* SPDX-License-Identifier: Apache-2.0 */
/* anomaly_api: the analytics routes (see anomaly_api.h). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalies.h"
#include "anomaly_api.h"
#include "auth.h"
#include "detector.h"
#include "holtwinters.h"
#include "modelperf.h"

#define PRED_MAX_STEPS 10000 /* forecast points per series */
#define PRED_MAX_HISTORY 11000 /* history points (the query API's limit) */
#define PRED_DEFAULT_LIMIT 20

static int64_t aa_now(const struct anomaly_api *api)
{
	struct timespec ts;

	if (api->now_ms)
		return api->now_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC with milliseconds, as the ingest API accepts it. */
static json_t *aa_time(int64_t ms)
{
	char buf[96];
	time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)s * 1000);
	struct tm tm;

	if (!gmtime_r(&s, &tm))
		return json_null();
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	return json_string(buf);
}

/* A float as JSON; NaN/Inf (unknown) as null. */
static json_t *aa_num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static int aa_send(struct http_response *resp, int status, json_t *data)
{
	json_t *root = json_pack("{s:s,s:o}", "status", "success", "data", data);

	if (!root)
		return -ENOMEM;
	resp->status = status;
	resp->body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!resp->body)
		return -ENOMEM;
	resp->body_len = strlen(resp->body);
	return 0;
}

static json_t *aa_record(const struct anomaly_record *r)
{
	json_t *labels = json_object(), *dets = json_array(), *o;
	const char *name, *value;
	char reason[512];
	size_t i, n = 0;
	int d;

	for (i = 0; (name = anomaly_record_label(r, i, &value)); i++)
		json_object_set_new(labels, name, json_string(value));
	n = (size_t)snprintf(reason, sizeof(reason), "%s%s", r->metric,
			     r->rate ? " (per-second rate)" : "");
	for (d = 0; d < DETECTOR_COUNT; d++) {
		if (!(r->detectors & (1u << d)))
			continue;
		json_array_append_new(dets, json_string(detector_name(d)));
	}
	if (isfinite(r->expected) && n < sizeof(reason))
		n += (size_t)snprintf(reason + n, sizeof(reason) - n,
				      ": %.6g where %.6g was expected (%+.1f sigma)", r->actual,
				      r->expected, r->deviation);
	else if (n < sizeof(reason))
		n += (size_t)snprintf(reason + n, sizeof(reason) - n, ": %.6g", r->actual);
	if (json_array_size(dets) && n < sizeof(reason)) {
		n += (size_t)snprintf(reason + n, sizeof(reason) - n, "; flagged by");
		for (d = 0; d < DETECTOR_COUNT && n < sizeof(reason); d++)
			if (r->detectors & (1u << d))
				n += (size_t)snprintf(reason + n, sizeof(reason) - n, " %s",
						      detector_name(d));
	}
	o = json_object();
	json_object_set_new(o, "id", json_integer((json_int_t)r->id));
	json_object_set_new(o, "metric", json_string(r->metric));
	json_object_set_new(o, "labels", labels);
	json_object_set_new(o, "start", aa_time(r->start_ms));
	json_object_set_new(o, "end", aa_time(r->end_ms));
	json_object_set_new(o, "start_ms", json_integer(r->start_ms));
	json_object_set_new(o, "end_ms", json_integer(r->end_ms));
	json_object_set_new(o, "state", json_string(r->open ? "open" : "closed"));
	json_object_set_new(o, "score", aa_num(r->peak_score));
	json_object_set_new(o, "actual", aa_num(r->actual));
	json_object_set_new(o, "expected", aa_num(r->expected));
	json_object_set_new(o, "spread", aa_num(r->spread));
	json_object_set_new(o, "deviation", aa_num(r->deviation));
	json_object_set_new(o, "rate", json_boolean(r->rate));
	json_object_set_new(o, "detectors", dets);
	json_object_set_new(o, "reason", json_string(reason));
	json_object_set_new(o, "acknowledged", json_boolean(r->acknowledged));
	if (r->acknowledged) {
		json_object_set_new(o, "false_positive", json_boolean(r->false_positive));
		json_object_set_new(o, "acknowledged_by", json_string(r->ack_by));
		json_object_set_new(o, "acknowledged_at", aa_time(r->ack_ms));
	}
	return o;
}

/* A time parameter into *ms; absent leaves it. Returns 0 or an error sent. */
static int aa_time_param(const struct http_request *req, struct http_response *resp,
			 const char *name, int64_t *ms, bool *bad)
{
	char buf[64];

	*bad = false;
	if (prom_api_param(req, name, 0, buf, sizeof(buf)) < 0)
		return 0;
	if (prom_api_parse_time(buf, ms)) {
		*bad = true;
		return http_error(resp, 400, "bad_data", "invalid parameter \"%s\": \"%s\" is not "
				  "an RFC 3339 time or unix seconds", name, buf);
	}
	return 0;
}

static int aa_h_list(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct anomaly_api *api = ctx;
	struct anomalies_filter f = { 0 };
	char metric[256], vm[256], tenant[256], state[32], limit[32];
	struct anomaly_record *recs = NULL;
	json_t *arr;
	size_t n, i;
	bool bad;
	int err;

	if ((err = aa_time_param(req, resp, "start", &f.start_ms, &bad)) || bad)
		return err;
	if ((err = aa_time_param(req, resp, "end", &f.end_ms, &bad)) || bad)
		return err;
	if (prom_api_param(req, "metric", 0, metric, sizeof(metric)) >= 0)
		f.metric = metric;
	if (prom_api_param(req, "vm", 0, vm, sizeof(vm)) >= 0)
		f.vm = vm;
	if (prom_api_param(req, "tenant", 0, tenant, sizeof(tenant)) >= 0)
		f.tenant = tenant;
	/* a tenant's user sees its own series' anomalies only */
	if (req->principal && req->principal->tenant[0])
		f.tenant = req->principal->tenant;
	if (prom_api_param(req, "state", 0, state, sizeof(state)) >= 0) {
		if (strcmp(state, "open") && strcmp(state, "closed") &&
		    strcmp(state, "acknowledged") && strcmp(state, "unacknowledged"))
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"state\": \"%s\" (known: open, "
					  "closed, acknowledged, unacknowledged)",
					  state);
		f.state = state;
	}
	if (prom_api_param(req, "limit", 0, limit, sizeof(limit)) >= 0) {
		char *end;
		unsigned long long l = strtoull(limit, &end, 10);

		if (!limit[0] || *end || limit[0] == '-' || l > 1000000)
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"limit\": \"%s\" is not an integer "
					  "in [0, 1000000]",
					  limit);
		f.limit = (size_t)l;
	}
	err = anomalies__list(api->an, &f, &recs, &n);
	if (err)
		return err;
	arr = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(arr, aa_record(&recs[i]));
	free(recs);
	return aa_send(resp, 200, json_pack("{s:o}", "anomalies", arr));
}

/* Whether record id belongs to a series of tenant (its "tenant" label). */
static bool aa_visible(struct anomaly_api *api, unsigned long long id, const char *tenant)
{
	struct anomalies_filter f = { .tenant = tenant };
	struct anomaly_record *recs = NULL;
	size_t n, i;
	bool found = false;

	if (anomalies__list(api->an, &f, &recs, &n))
		return false;
	for (i = 0; i < n && !found; i++)
		found = recs[i].id == id;
	free(recs);
	return found;
}

/* POST /api/anomalies/{id}/acknowledge */
static int aa_h_ack(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct anomaly_api *api = ctx;
	const char *p = req->path + strlen("/api/anomalies/");
	struct anomaly_record *recs = NULL;
	struct anomalies_filter f = { .limit = 0 };
	bool false_positive = false;
	const char *who = "anonymous";
	unsigned long long id;
	json_t *body = NULL;
	char *end;
	size_t n, i;
	int err;

	id = strtoull(p, &end, 10);
	if (p[0] < '1' || p[0] > '9' || strcmp(end, "/acknowledge"))
		return http_error(resp, 404, "not_found",
				  "no such route: use POST /api/anomalies/{id}/acknowledge");
	if (req->body_len) {
		json_error_t je;
		json_t *fp;

		body = json_loadb(req->body, req->body_len, 0, &je);
		if (!body || !json_is_object(body)) {
			json_decref(body);
			return http_error(resp, 400, "bad_data",
					  "body: expected a JSON object such as "
					  "{\"false_positive\": true}");
		}
		fp = json_object_get(body, "false_positive");
		if (fp && !json_is_boolean(fp)) {
			json_decref(body);
			return http_error(resp, 400, "bad_data",
					  "body: false_positive must be true or false");
		}
		false_positive = fp && json_is_true(fp);
	}
	json_decref(body);
	if (req->principal) {
		who = req->principal->subject;
		if (req->principal->tenant[0] && !aa_visible(api, id, req->principal->tenant))
			return http_error(resp, 404, "not_found",
					  "no anomaly %llu (unknown or expired)", id);
	}
	err = anomalies__acknowledge(api->an, id, false_positive, who, aa_now(api));
	if (err == -ENOENT)
		return http_error(resp, 404, "not_found", "no anomaly %llu (unknown or expired)",
				  id);
	if (err == -EALREADY)
		return http_error(resp, 409, "conflict", "anomaly %llu is already acknowledged",
				  id);
	if (err)
		return err;
	err = anomalies__list(api->an, &f, &recs, &n);
	if (err)
		return err;
	for (i = 0; i < n && recs[i].id != id; i++)
		;
	if (i == n) {
		free(recs);
		return http_error(resp, 404, "not_found", "anomaly %llu expired", id);
	}
	body = aa_record(&recs[i]);
	free(recs);
	return aa_send(resp, 200, body);
}

static json_t *aa_detector_json(const struct modelperf_detector *d)
{
	json_t *o = json_object();

	json_object_set_new(o, "alarms", json_integer((json_int_t)d->alarms));
	json_object_set_new(o, "confirmed", json_integer((json_int_t)d->confirmed));
	json_object_set_new(o, "rejected", json_integer((json_int_t)d->rejected));
	json_object_set_new(o, "precision", aa_num(d->precision));
	json_object_set_new(o, "anomalies_flagged", json_integer((json_int_t)d->anomalies_flagged));
	json_object_set_new(o, "recall", aa_num(d->recall));
	json_object_set_new(o, "score_mean_recent", aa_num(d->score_mean_short));
	json_object_set_new(o, "score_mean_long_run", aa_num(d->score_mean_long));
	json_object_set_new(o, "drift_psi", aa_num(d->drift));
	json_object_set_new(o, "trainings", json_integer((json_int_t)d->trainings));
	json_object_set_new(o, "last_training", d->last_train_ms >= 0 ? aa_time(d->last_train_ms) :
									   json_null());
	json_object_set_new(o, "last_training_seconds", aa_num(d->last_train_seconds));
	json_object_set_new(o, "training_seconds_total", aa_num(d->train_seconds_total));
	return o;
}

static int aa_h_performance(const struct http_request *req, struct http_response *resp,
			    void *ctx)
{
	struct anomaly_api *api = ctx;
	struct modelperf_report rep;
	json_t *dets = json_object();
	int d;

	(void)req;
	anomalies__performance(api->an, &rep);
	for (d = 0; d < MODELPERF_N; d++)
		json_object_set_new(dets, detector_name(d), aa_detector_json(&rep.det[d]));
	return aa_send(resp, 200,
		       json_pack("{s:o,s:I,s:I,s:I}", "detectors", dets, "anomalies_confirmed",
				 (json_int_t)rep.anomalies_confirmed, "acknowledgements",
				 (json_int_t)rep.labels, "alarm_episodes",
				 (json_int_t)rep.episodes));
}

/* ------------------------------------------------------------------ */
/* predictions */

static bool aa_is_metric_name(const char *s)
{
	size_t i;

	if (!s[0])
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static bool aa_is_label_name(const char *s)
{
	return aa_is_metric_name(s) && !strchr(s, ':') && strncmp(s, "__", 2);
}

static bool aa_reserved(const char *name)
{
	static const char *const r[] = { "horizon", "step", "history", "threshold", "level",
					 "limit" };
	size_t i;

	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (!strcmp(name, r[i]))
			return true;
	return false;
}

/* Append s to the PromQL string literal being built in q, escaped. */
static void aa_quote(char *q, size_t len, const char *s)
{
	size_t n = strlen(q);

	for (; *s && n + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			q[n++] = '\\';
		q[n++] = *s;
	}
	q[n] = '\0';
}

/*
 * Build the history expression: gauges averaged over each step, counters as
 * their per-second rate. The selector gets the label filters of the query
 * string (every parameter that is not one of the options).
 */
static int aa_pred_expr(const struct http_request *req, struct http_response *resp,
			const char *metric, bool counter, int64_t step_ms, char *q, size_t len)
{
	const char *p = req->query;
	size_t n;
	int k = 0;

	snprintf(q, len, "%s(%s{", counter ? "rate" : "avg_over_time", metric);
	while (p && *p) {
		const char *amp = strchr(p, '&'), *eq = strchr(p, '=');
		size_t plen = amp ? (size_t)(amp - p) : strlen(p);
		char name[128], value[512];

		if (eq && eq < p + plen && (size_t)(eq - p) < sizeof(name)) {
			memcpy(name, p, (size_t)(eq - p));
			name[eq - p] = '\0';
			if (!aa_reserved(name)) {
				if (!aa_is_label_name(name))
					return http_error(resp, 400, "bad_data",
							  "invalid parameter \"%s\": not an option "
							  "(horizon, step, history, threshold, level, "
							  "limit) nor a label name",
							  name);
				if (prom_api_param(req, name, 0, value, sizeof(value)) < 0)
					return http_error(resp, 400, "bad_data",
							  "label filter %s is too long", name);
				n = strlen(q);
				snprintf(q + n, len - n, "%s%s=\"", k++ ? "," : "", name);
				aa_quote(q, len, value);
				n = strlen(q);
				snprintf(q + n, len - n, "\"");
			}
		}
		p = amp ? amp + 1 : NULL;
	}
	n = strlen(q);
	/* a rate needs two samples in its window */
	snprintf(q + n, len - n, "}[%llds])",
		 (long long)((counter && step_ms < 120000 ? 120000 : step_ms) / 1000));
	return 0;
}

static int aa_duration_param(const struct http_request *req, struct http_response *resp,
			     const char *name, int64_t def, int64_t min, int64_t *out, bool *bad)
{
	char buf[64];

	*bad = false;
	*out = def;
	if (prom_api_param(req, name, 0, buf, sizeof(buf)) < 0)
		return 0;
	if (prom_api_parse_duration(buf, out) || *out < min) {
		*bad = true;
		return http_error(resp, 400, "bad_data",
				  "invalid parameter \"%s\": \"%s\" is not a duration >= %llds", name,
				  buf, (long long)(min / 1000));
	}
	return 0;
}

static json_t *aa_forecast_series(const struct promql_series *s, const char *metric,
				  int64_t start_ms, int64_t step_ms, size_t nhist, size_t nsteps,
				  double level, bool have_threshold, double threshold)
{
	double *x = NULL, *mean = NULL, *lo = NULL, *hi = NULL;
	struct holtwinters_params hp = { 0 };
	struct holtwinters *hw = NULL;
	json_t *o = json_object(), *labels = json_object(), *pts = json_array();
	size_t i, j, first = SIZE_MAX;
	int64_t day_steps = 86400000 / step_ms;
	long ttt;

	for (i = 0; i < s->nlabels; i++)
		json_object_set_new(labels, s->labels[i].name, json_string(s->labels[i].value));
	json_object_set_new(labels, "__name__", json_string(metric));
	json_object_set_new(o, "labels", labels);
	x = malloc(nhist * sizeof(*x));
	mean = malloc(nsteps * sizeof(*mean));
	lo = malloc(nsteps * sizeof(*lo));
	hi = malloc(nsteps * sizeof(*hi));
	if (!x || !mean || !lo || !hi)
		goto fail;
	for (i = 0; i < nhist; i++)
		x[i] = NAN;
	for (j = 0; j < s->n; j++) {
		i = (size_t)((s->t[j] - start_ms) / step_ms);
		if (i < nhist) {
			x[i] = s->v[j];
			if (first == SIZE_MAX || i < first)
				first = i;
		}
	}
	if (first == SIZE_MAX) {
		json_object_set_new(o, "error", json_string("no samples in the history window"));
		goto out;
	}
	/* a daily season once two days of history are there */
	if (86400000 % step_ms == 0 && (int64_t)(nhist - first) >= 2 * day_steps &&
	    day_steps >= 2)
		hp.period = (uint32_t)day_steps;
	hw = holtwinters__new(&hp);
	if (!hw || holtwinters__fit(hw, x + first, nhist - first) ||
	    holtwinters__forecast(hw, 1, level, NULL, NULL, NULL)) {
		json_object_set_new(o, "error",
				    json_string("too few samples in the history window to fit"));
		goto out;
	}
	for (j = 0; j < nsteps; j++) {
		holtwinters__forecast(hw, j + 1, level, &mean[j], &lo[j], &hi[j]);
		json_array_append_new(pts, json_pack("[f,o,o,o]",
						     (double)(start_ms + (int64_t)(nhist + j) *
									       step_ms) /
							     1000.0,
						     aa_num(mean[j]), aa_num(lo[j]), aa_num(hi[j])));
	}
	json_object_set_new(o, "season_steps", json_integer(hp.period));
	if (have_threshold) {
		ttt = holtwinters__time_to_threshold(hw, threshold, nsteps);
		json_object_set_new(o, "time_to_threshold_seconds",
				    ttt > 0 ? json_integer((json_int_t)ttt * step_ms / 1000) :
					      json_null());
		json_object_set_new(o, "threshold_reached_at",
				    ttt > 0 ? aa_time(start_ms + (int64_t)(nhist - 1 + (size_t)ttt) *
								 step_ms) :
					      json_null());
	}
out:
	json_object_set_new(o, "forecast", pts);
	holtwinters__free(hw);
	free(x);
	free(mean);
	free(lo);
	free(hi);
	return o;
fail:
	json_decref(pts);
	pts = json_array();
	json_object_set_new(o, "error", json_string("out of memory"));
	goto out;
}

static int aa_h_predictions(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct anomaly_api *api = ctx;
	const char *metric = req->path + strlen("/api/predictions/");
	int64_t horizon, step, history, now, start, end;
	struct promql_result *res = NULL;
	struct promql_expr *e = NULL;
	char q[2048], buf[64], perr[256];
	double threshold = 0, level = 0.95;
	bool have_threshold = false, bad, counter;
	size_t limit = PRED_DEFAULT_LIMIT, i, nhist, nsteps;
	json_t *series;
	int err;

	if (!aa_is_metric_name(metric))
		return http_error(resp, 400, "bad_data",
				  "\"%s\" is not a metric name: GET /api/predictions/{metric}",
				  metric);
	if ((err = aa_duration_param(req, resp, "step", 60000, 1000, &step, &bad)) || bad)
		return err;
	if ((err = aa_duration_param(req, resp, "horizon", 3600000, step, &horizon, &bad)) || bad)
		return err;
	if ((err = aa_duration_param(req, resp, "history", 6 * 3600000LL, 10 * step, &history,
				     &bad)) ||
	    bad)
		return err;
	if (prom_api_param(req, "threshold", 0, buf, sizeof(buf)) >= 0) {
		char *endp;

		threshold = strtod(buf, &endp);
		if (!buf[0] || *endp || !isfinite(threshold))
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"threshold\": \"%s\" is not a number",
					  buf);
		have_threshold = true;
	}
	if (prom_api_param(req, "level", 0, buf, sizeof(buf)) >= 0) {
		char *endp;

		level = strtod(buf, &endp);
		if (!buf[0] || *endp || !(level > 0 && level < 1))
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"level\": \"%s\" is not in (0, 1)",
					  buf);
	}
	if (prom_api_param(req, "limit", 0, buf, sizeof(buf)) >= 0) {
		char *endp;
		unsigned long l = strtoul(buf, &endp, 10);

		if (!buf[0] || *endp || buf[0] == '-' || !l || l > 1000)
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"limit\": \"%s\" is not in [1, 1000]",
					  buf);
		limit = l;
	}
	nhist = (size_t)(history / step);
	nsteps = (size_t)(horizon / step);
	if (nhist > PRED_MAX_HISTORY || nsteps > PRED_MAX_STEPS)
		return http_error(resp, 400, "bad_data",
				  "history/step is %zu and horizon/step %zu points: at most %d and "
				  "%d; use a larger step",
				  nhist, nsteps, PRED_MAX_HISTORY, PRED_MAX_STEPS);
	counter = strlen(metric) > 6 &&
		  (!strcmp(metric + strlen(metric) - 6, "_total") ||
		   !strcmp(metric + strlen(metric) - 6, "_count") ||
		   !strcmp(metric + strlen(metric) - 4, "_sum"));
	err = aa_pred_expr(req, resp, metric, counter, step, q, sizeof(q));
	if (err || resp->status)
		return err;
	now = aa_now(api);
	end = now / step * step;
	start = end - (int64_t)(nhist - 1) * step;
	e = promql_parse(q, perr, sizeof(perr));
	if (!e)
		return http_error(resp, 400, "bad_data", "%s", perr);
	if (req->principal && req->principal->tenant[0] &&
	    promql_restrict(e, "tenant", req->principal->tenant)) {
		promql_expr__free(e);
		return -ENOMEM;
	}
	err = promql_eval_range(&api->prom->eng, e, start, end, step, &res, perr, sizeof(perr));
	promql_expr__free(e);
	if (err)
		return http_error(resp, err == -E2BIG ? 422 : 400, "execution", "%s", perr);
	series = json_array();
	for (i = 0; i < res->nseries && i < limit; i++)
		json_array_append_new(series, aa_forecast_series(&res->series[i], metric, start,
								 step, nhist, nsteps, level,
								 have_threshold, threshold));
	err = aa_send(resp, 200,
		      json_pack("{s:s,s:s,s:s,s:f,s:f,s:f,s:o,s:b}", "metric", metric, "history",
				q, "model", "holt-winters (additive)", "step_seconds",
				(double)step / 1000, "horizon_seconds", (double)horizon / 1000,
				"level", level, "series", series, "truncated",
				res->nseries > limit));
	promql_result__free(res);
	return err;
}

int anomaly_api__routes(struct anomaly_api *api, struct http_route *routes, size_t max)
{
	const struct http_route all[ANOMALY_API_NROUTES] = {
		{ "GET", "/api/anomalies", aa_h_list, api },
		{ "POST", "/api/anomalies/", aa_h_ack, api, .min_role = AUTH_ROLE_OPERATOR },
		{ "GET", "/api/predictions/", aa_h_predictions, api },
		{ "GET", "/api/models/performance", aa_h_performance, api },
	};

	if (!api || !api->an || !api->prom || !routes)
		return -EINVAL;
	if (max < ANOMALY_API_NROUTES)
		return -ENOSPC;
	memcpy(routes, all, sizeof(all));
	return ANOMALY_API_NROUTES;
}
