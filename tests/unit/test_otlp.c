/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otlp: the exporter against a scripted HTTP server (http_stub.h) that
 * decodes every request with the protobuf-c code generated from the OTLP
 * .proto subset: resource, spans, log records, metrics as sums, gauges and
 * histograms, gzip and headers, batching by size and by time, the retry
 * policy, partial success, a restart on a full queue, and the queue bound.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http_stub.h"
#include "logs_service.pb-c.h"
#include "metrics.h"
#include "metrics_service.pb-c.h"
#include "otlp.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest tot_trace_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest tot_logs_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest tot_metrics_req;
typedef Opentelemetry__Proto__Common__V1__KeyValue tot_kv;

static struct http_stub *tot_srv;
static char tot_dir[64];
static char tot_endpoint[96];

static void tot_init(void)
{
	tot_srv = http_stub__start();
	cr_assert(tot_srv);
	/* a trailing slash, as users write it: /v1/... is appended once */
	snprintf(tot_endpoint, sizeof(tot_endpoint), "http://127.0.0.1:%d/",
		 http_stub__port(tot_srv));
	snprintf(tot_dir, sizeof(tot_dir), "/tmp/novamon-otlp.XXXXXX");
	cr_assert(mkdtemp(tot_dir));
}

static void tot_fini(void)
{
	char cmd[128];

	http_stub__stop(tot_srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tot_dir);
	(void)!system(cmd);
}

TestSuite(otlp, .init = tot_init, .fini = tot_fini, .timeout = 30);

static struct otlp *tot_start_opts(struct otlp_opts *o)
{
	static const char *const hdrs[] = { "X-Api-Key: s3cret" };
	struct otlp *e;

	if (!o->endpoint)
		o->endpoint = tot_endpoint;
	o->queue_dir = tot_dir;
	o->headers = hdrs;
	o->nheaders = 1;
	o->host_name = "testhost";
	o->start_ms = 1700000000000;
	o->timeout_ms = 5000;
	if (!o->backoff_min_ms)
		o->backoff_min_ms = 5;
	o->backoff_max_ms = 2000;
	e = otlp__start(o);
	cr_assert(e, "%s", strerror(errno));
	return e;
}

static struct otlp *tot_start(size_t batch, int64_t delay_ms, enum otlp_compression c)
{
	struct otlp_opts o = {
		.batch_max_items = batch,
		.batch_max_delay_ms = delay_ms,
		.compression = c,
	};

	return tot_start_opts(&o);
}

#define TOT_WAIT(e, st, pred)                                    \
	do {                                                     \
		int _i;                                          \
		for (_i = 0; _i < 1000; _i++) {                  \
			otlp__stats(e, &st);                     \
			if (pred)                                \
				break;                           \
			usleep(10000);                           \
		}                                                \
		cr_assert(pred, "timed out waiting for " #pred); \
	} while (0)

static void tot_span(struct span *s, int i)
{
	memset(s, 0, sizeof(*s));
	memset(s->trace_id, 0xab, sizeof(s->trace_id));
	s->trace_id[15] = (uint8_t)i;
	memset(s->span_id, 0, sizeof(s->span_id));
	s->span_id[7] = (uint8_t)(i + 1);
	if (i % 2)
		s->parent_span_id[7] = 1;
	snprintf(s->name, sizeof(s->name), "span-%d", i);
	s->kind = SPAN_KIND_INTERNAL;
	s->start_ns = 1700000000000000000ull + (uint64_t)i * 1000;
	s->end_ns = s->start_ns + 500;
	s->status = i == 3 ? SPAN_STATUS_ERROR : SPAN_STATUS_UNSET;
	if (i == 3)
		snprintf(s->status_message, sizeof(s->status_message), "slow disk");
	s->nattrs = 5;
	snprintf(s->attrs[0].key, SPAN_KEY_LEN, "novamon.device");
	s->attrs[0].type = SPAN_ATTR_STR;
	snprintf(s->attrs[0].s, SPAN_STR_LEN, "vda");
	snprintf(s->attrs[1].key, SPAN_KEY_LEN, "novamon.index");
	s->attrs[1].type = SPAN_ATTR_INT;
	s->attrs[1].i = i;
	snprintf(s->attrs[2].key, SPAN_KEY_LEN, "novamon.ratio");
	s->attrs[2].type = SPAN_ATTR_DOUBLE;
	s->attrs[2].d = 0.5;
	snprintf(s->attrs[3].key, SPAN_KEY_LEN, "novamon.error");
	s->attrs[3].type = SPAN_ATTR_BOOL;
	s->attrs[3].b = true;
	snprintf(s->attrs[4].key, SPAN_KEY_LEN, "bad.type");
	s->attrs[4].type = 9; /* not a type: dropped and counted */
}

static void tot_add_spans(struct otlp *e, int from, int to)
{
	struct span s;
	int i;

	for (i = from; i < to; i++) {
		tot_span(&s, i);
		cr_assert_eq(otlp__add_span(e, &s), 0);
	}
}

static const char *tot_attr_str(tot_kv **kv, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key) && kv[i]->value &&
		    kv[i]->value->value_case ==
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			return kv[i]->value->string_value;
	return NULL;
}

/* Decode request i as traces; checks the path, headers and resource. */
static tot_trace_req *tot_traces(size_t i, bool gzip)
{
	const struct http_stub_request *r = http_stub__get(tot_srv, i);
	Opentelemetry__Proto__Resource__V1__Resource *res;
	tot_trace_req *req;
	char val[64];

	cr_assert(r, "no request %zu", i);
	cr_expect_str_eq(r->path, "/v1/traces");
	cr_expect_eq(r->gzip, gzip);
	cr_expect(!r->bad_gzip);
	cr_expect(http_stub__header(r, "Content-Type", val, sizeof(val)));
	cr_expect_str_eq(val, "application/x-protobuf");
	cr_expect(http_stub__header(r, "X-Api-Key", val, sizeof(val)));
	cr_expect_str_eq(val, "s3cret");
	req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, r->len, r->body);
	cr_assert(req, "request %zu does not decode", i);
	cr_assert_eq(req->n_resource_spans, 1);
	res = req->resource_spans[0]->resource;
	cr_assert(res);
	cr_expect_str_eq(tot_attr_str(res->attributes, res->n_attributes, "service.name"),
			 "novamon");
	cr_expect_str_eq(tot_attr_str(res->attributes, res->n_attributes, "service.version"),
			 NOVAMON_VERSION);
	cr_expect_str_eq(tot_attr_str(res->attributes, res->n_attributes, "host.name"), "testhost");
	cr_expect_eq(
		strlen(tot_attr_str(res->attributes, res->n_attributes, "service.instance.id") ?:
												 ""),
		36);
	cr_assert_eq(req->resource_spans[0]->n_scope_spans, 1);
	cr_expect_str_eq(req->resource_spans[0]->scope_spans[0]->scope->name, "novamon");
	return req;
}

static size_t tot_nspans(const tot_trace_req *req)
{
	return req->resource_spans[0]->scope_spans[0]->n_spans;
}

Test(otlp, traces_batched_by_size_gzip_and_decoded)
{
	Opentelemetry__Proto__Trace__V1__Span *sp;
	struct otlp_stats st;
	struct otlp *e = tot_start(10, 60000, OTLP_COMPRESSION_GZIP);
	tot_trace_req *req;
	size_t i;

	tot_add_spans(e, 0, 25);
	/* two full batches go at once; the last 5 wait for the (long) delay */
	cr_assert(http_stub__wait(tot_srv, 2, 5000));
	usleep(100000);
	cr_expect_eq(http_stub__count(tot_srv), 2);
	otlp__stats(e, &st);
	cr_expect_eq(st.signal[OTLP_TRACES].pending_items, 5);
	otlp__flush(e);
	TOT_WAIT(e, st, st.signal[OTLP_TRACES].sent_items == 25);
	cr_expect_eq(st.signal[OTLP_TRACES].sent_requests, 3);
	cr_expect_eq(st.signal[OTLP_TRACES].queued_files, 0);

	for (i = 0; i < 3; i++) {
		req = tot_traces(i, true);
		cr_expect_eq(tot_nspans(req), i < 2 ? 10 : 5);
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
			req, NULL);
	}
	req = tot_traces(0, true);
	sp = req->resource_spans[0]->scope_spans[0]->spans[3];
	cr_expect_str_eq(sp->name, "span-3");
	cr_expect_eq(sp->trace_id.len, 16);
	cr_expect_eq(sp->trace_id.data[0], 0xab);
	cr_expect_eq(sp->trace_id.data[15], 3);
	cr_expect_eq(sp->span_id.len, 8);
	cr_expect_eq(sp->span_id.data[7], 4);
	cr_expect_eq(sp->parent_span_id.len, 8);
	cr_expect_eq(req->resource_spans[0]->scope_spans[0]->spans[2]->parent_span_id.len, 0);
	cr_expect_eq(sp->kind,
		     OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL);
	cr_expect_eq(sp->start_time_unix_nano, 1700000000000003000ull);
	cr_expect_eq(sp->end_time_unix_nano, 1700000000000003500ull);
	cr_assert(sp->status);
	cr_expect_eq(sp->status->code,
		     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
	cr_expect_str_eq(sp->status->message, "slow disk");
	cr_expect_null(req->resource_spans[0]->scope_spans[0]->spans[2]->status);
	cr_assert_eq(sp->n_attributes, 4);
	cr_expect_eq(sp->dropped_attributes_count, 1);
	cr_expect_str_eq(sp->attributes[0]->key, "novamon.device");
	cr_expect_str_eq(sp->attributes[0]->value->string_value, "vda");
	cr_expect_eq(sp->attributes[1]->value->int_value, 3);
	cr_expect_eq(sp->attributes[2]->value->double_value, 0.5);
	cr_expect_eq(sp->attributes[3]->value->bool_value, 1);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
		req, NULL);
	otlp__stop(e);
}

Test(otlp, traces_batched_by_time)
{
	const struct http_stub_request *r;
	struct otlp *e = tot_start(1000, 200, OTLP_COMPRESSION_GZIP);
	struct timespec t0, t1;
	tot_trace_req *req;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	tot_add_spans(e, 0, 3);
	usleep(100000);
	cr_expect_eq(http_stub__count(tot_srv), 0, "sent before the delay");
	cr_assert(http_stub__wait(tot_srv, 1, 5000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_expect_geq(ms, 190, "sent after %lld ms", (long long)ms);
	r = http_stub__get(tot_srv, 0);
	cr_assert(r);
	req = tot_traces(0, true);
	cr_expect_eq(tot_nspans(req), 3);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
		req, NULL);
	otlp__stop(e);
}

Test(otlp, logs_without_gzip)
{
	Opentelemetry__Proto__Logs__V1__LogRecord *lr;
	const struct http_stub_request *r;
	struct otlp *e = tot_start(4, 60000, OTLP_COMPRESSION_NONE);
	struct log_record rec;
	struct otlp_stats st;
	tot_logs_req *req;
	char val[64];
	int i;

	for (i = 0; i < 4; i++) {
		memset(&rec, 0, sizeof(rec));
		rec.time_ns = 1700000000000000000ull + (uint64_t)i;
		rec.severity = i == 2 ? LOG_SEV_WARN : LOG_SEV_INFO;
		snprintf(rec.body, sizeof(rec.body), "VM web-%d appeared", i);
		rec.has_trace = i == 2;
		memset(rec.trace_id, 0x11, sizeof(rec.trace_id));
		memset(rec.span_id, 0x22, sizeof(rec.span_id));
		rec.nattrs = 1;
		snprintf(rec.attrs[0].key, SPAN_KEY_LEN, "vm");
		snprintf(rec.attrs[0].s, SPAN_STR_LEN, "web-%d", i);
		cr_assert_eq(otlp__add_log(e, &rec), 0);
	}
	TOT_WAIT(e, st, st.signal[OTLP_LOGS].sent_items == 4);
	r = http_stub__get(tot_srv, 0);
	cr_assert(r);
	cr_expect_str_eq(r->path, "/v1/logs");
	cr_expect(!http_stub__header(r, "Content-Encoding", val, sizeof(val)));
	req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
		NULL, r->len, r->body);
	cr_assert(req);
	cr_assert_eq(req->resource_logs[0]->scope_logs[0]->n_log_records, 4);
	lr = req->resource_logs[0]->scope_logs[0]->log_records[2];
	cr_expect_eq(lr->time_unix_nano, 1700000000000000002ull);
	cr_expect_gt(lr->observed_time_unix_nano, lr->time_unix_nano);
	cr_expect_eq(lr->severity_number,
		     OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN);
	cr_expect_str_eq(lr->severity_text, "WARN");
	cr_expect_str_eq(lr->body->string_value, "VM web-2 appeared");
	cr_expect_eq(lr->trace_id.len, 16);
	cr_expect_eq(lr->span_id.len, 8);
	cr_expect_eq(lr->span_id.data[0], 0x22);
	cr_expect_str_eq(lr->attributes[0]->value->string_value, "web-2");
	cr_expect_eq(req->resource_logs[0]->scope_logs[0]->log_records[1]->trace_id.len, 0);
	opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req,
											      NULL);
	otlp__stop(e);
}

static const struct metric_exemplar tot_exemplar = {
	.trace_id = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
	.span_id = { 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11 },
	.value = 0.25,
	.timestamp_ms = 1700000001000,
};

/* The exemplar on a data point: tot_exemplar, with its IDs as bytes. */
static void tot_expect_exemplar(Opentelemetry__Proto__Metrics__V1__Exemplar **ex, size_t n)
{
	cr_assert_eq(n, 1);
	cr_expect_eq(ex[0]->time_unix_nano, 1700000001000000000ull);
	cr_expect_eq(ex[0]->value_case,
		     OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE);
	cr_expect_eq(ex[0]->as_double, 0.25);
	cr_assert_eq(ex[0]->trace_id.len, 16);
	cr_expect_arr_eq(ex[0]->trace_id.data, tot_exemplar.trace_id, 16);
	cr_assert_eq(ex[0]->span_id.len, 8);
	cr_expect_arr_eq(ex[0]->span_id.data, tot_exemplar.span_id, 8);
}

static struct metric_set *tot_metric_set(void)
{
	static const double bounds[] = { 0.1, 1 };
	static const uint64_t buckets[] = { 1, 2, 3 };
	struct metric_set *set = metric_set__new(1700000001000);
	struct metric_family *f;
	struct metric_labels l;

	cr_assert(set);
	f = metric_set__family(set, "novamon_block_requests_total", "Completed block requests.",
			       METRIC_COUNTER, NULL, 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "device", "vda");
	metric_labels__add(&l, "op", "read \"x\"");
	cr_assert_eq(metric_family__add_value(f, &l, 42), 0);
	cr_assert_eq(metric_family__set_exemplar(f, &tot_exemplar), 0);
	metric_labels__init(&l);
	metric_labels__add(&l, "device", "vdb");
	metric_labels__add(&l, "op", "write");
	cr_assert_eq(metric_family__add_value(f, &l, 7), 0);
	cr_assert_eq(metric_set__add_value(set, "novamon_vms", "VMs seen.", METRIC_GAUGE, NULL, 3),
		     0);
	f = metric_set__family(set, "novamon_block_request_duration_seconds", "Latency.",
			       METRIC_HISTOGRAM, bounds, 2);
	metric_labels__init(&l);
	metric_labels__add(&l, "device", "vda");
	cr_assert_eq(metric_family__add_histogram(f, &l, buckets, 4.5), 0);
	cr_assert_eq(metric_family__set_exemplar(f, &tot_exemplar), 0);
	return set;
}

Test(otlp, metrics_as_sums_gauges_histograms)
{
	Opentelemetry__Proto__Metrics__V1__Metric *m;
	Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp;
	Opentelemetry__Proto__Metrics__V1__NumberDataPoint *np;
	const struct http_stub_request *r;
	struct metric_set *set = tot_metric_set();
	struct otlp *e = tot_start(0, 0, OTLP_COMPRESSION_GZIP);
	struct tick_sink sink = otlp__metrics_sink(e);
	struct otlp_stats st;
	tot_metrics_req *req;
	Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm;

	cr_assert(sink.set);
	cr_expect_eq(sink.set(sink.ctx, set, 1700000001000), 0);
	TOT_WAIT(e, st, st.signal[OTLP_METRICS].sent_items == 4);
	r = http_stub__get(tot_srv, 0);
	cr_assert(r);
	cr_expect_str_eq(r->path, "/v1/metrics");
	cr_expect(r->gzip);
	req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
		NULL, r->len, r->body);
	cr_assert(req);
	sm = req->resource_metrics[0]->scope_metrics[0];
	cr_assert_eq(sm->n_metrics, 3);

	m = sm->metrics[0];
	cr_expect_str_eq(m->name, "novamon_block_requests_total");
	cr_expect_str_eq(m->description, "Completed block requests.");
	cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
	cr_expect(m->sum->is_monotonic);
	cr_expect_eq(
		m->sum->aggregation_temporality,
		OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
	cr_assert_eq(m->sum->n_data_points, 2);
	np = m->sum->data_points[0];
	cr_expect_eq(np->as_double, 42);
	cr_expect_eq(np->start_time_unix_nano, 1700000000000000000ull);
	cr_expect_eq(np->time_unix_nano, 1700000001000000000ull);
	cr_assert_eq(np->n_attributes, 2);
	cr_expect_str_eq(np->attributes[0]->key, "device");
	cr_expect_str_eq(np->attributes[0]->value->string_value, "vda");
	cr_expect_str_eq(np->attributes[1]->value->string_value, "read \"x\"");
	tot_expect_exemplar(np->exemplars, np->n_exemplars);
	cr_expect_eq(m->sum->data_points[1]->n_exemplars, 0);

	m = sm->metrics[1];
	cr_expect_str_eq(m->name, "novamon_vms");
	cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
	cr_assert_eq(m->gauge->n_data_points, 1);
	cr_expect_eq(m->gauge->data_points[0]->as_double, 3);
	cr_expect_eq(m->gauge->data_points[0]->n_attributes, 0);

	m = sm->metrics[2];
	cr_expect_str_eq(m->name, "novamon_block_request_duration_seconds");
	cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
	cr_expect_eq(
		m->histogram->aggregation_temporality,
		OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
	hp = m->histogram->data_points[0];
	cr_expect(hp->has_count && hp->count == 6);
	cr_expect(hp->has_sum && hp->sum == 4.5);
	cr_assert_eq(hp->n_explicit_bounds, 2);
	cr_expect_eq(hp->explicit_bounds[0], 0.1);
	cr_expect_eq(hp->explicit_bounds[1], 1);
	cr_assert_eq(hp->n_bucket_counts, 3);
	cr_expect_eq(hp->bucket_counts[0], 1);
	cr_expect_eq(hp->bucket_counts[2], 3);
	cr_expect_eq(hp->start_time_unix_nano, 1700000000000000000ull);
	tot_expect_exemplar(hp->exemplars, hp->n_exemplars);
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
		req, NULL);
	metric_set__free(set);
	otlp__stop(e);
}

Test(otlp, metrics_split_by_batch_size)
{
	struct metric_set *set = tot_metric_set();
	struct otlp *e = tot_start(2, 0, OTLP_COMPRESSION_GZIP);
	struct otlp_stats st;
	size_t i, points = 0;

	cr_expect_eq(otlp__add_metrics(e, set, 1700000001000), 0);
	TOT_WAIT(e, st, st.signal[OTLP_METRICS].sent_items == 4);
	cr_expect_eq(st.signal[OTLP_METRICS].sent_requests, 2);
	for (i = 0; i < 2; i++) {
		const struct http_stub_request *r = http_stub__get(tot_srv, i);
		tot_metrics_req *req;
		size_t k;

		cr_assert(r);
		req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
			NULL, r->len, r->body);
		cr_assert(req);
		for (k = 0; k < req->resource_metrics[0]->scope_metrics[0]->n_metrics; k++) {
			Opentelemetry__Proto__Metrics__V1__Metric *m =
				req->resource_metrics[0]->scope_metrics[0]->metrics[k];

			points += m->sum   ? m->sum->n_data_points :
				  m->gauge ? m->gauge->n_data_points :
					     m->histogram->n_data_points;
		}
		opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
			req, NULL);
	}
	cr_expect_eq(points, 4);
	metric_set__free(set);
	otlp__stop(e);
}

Test(otlp, retries_503_and_drops_400)
{
	struct otlp *e = tot_start(5, 60000, OTLP_COMPRESSION_GZIP);
	struct otlp_stats st;

	http_stub__script(tot_srv, 503, 0, NULL, 0);
	http_stub__script(tot_srv, 429, 0, NULL, 0);
	tot_add_spans(e, 0, 5);
	TOT_WAIT(e, st, st.signal[OTLP_TRACES].sent_items == 5);
	cr_expect_eq(st.signal[OTLP_TRACES].retries, 2);
	cr_expect_eq(http_stub__count(tot_srv), 3);

	http_stub__script(tot_srv, 400, -1, NULL, 0);
	tot_add_spans(e, 5, 10);
	TOT_WAIT(e, st, st.signal[OTLP_TRACES].dropped_items[OTLP_DROP_NON_RETRYABLE] == 5);
	cr_expect_eq(st.signal[OTLP_TRACES].retries, 2);
	cr_expect_eq(st.signal[OTLP_TRACES].sent_items, 5);
	cr_expect_eq(st.signal[OTLP_TRACES].last_status, 400);
	otlp__stop(e);
}

Test(otlp, partial_success_counted)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	struct otlp *e = tot_start(10, 60000, OTLP_COMPRESSION_GZIP);
	struct otlp_stats st;
	uint8_t buf[128];
	size_t len;

	ps.rejected_spans = 3;
	ps.error_message = "3 spans too old";
	resp.partial_success = &ps;
	len = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&resp,
											      buf);
	http_stub__script(tot_srv, 200, -1, buf, len);
	tot_add_spans(e, 0, 10);
	TOT_WAIT(e, st, st.signal[OTLP_TRACES].sent_requests == 1);
	cr_expect_eq(st.signal[OTLP_TRACES].rejected_items, 3);
	cr_expect_eq(st.signal[OTLP_TRACES].partial_responses, 1);
	cr_expect_eq(st.signal[OTLP_TRACES].sent_items, 7);
	cr_expect_eq(st.signal[OTLP_TRACES].retries, 0);
	otlp__stop(e);
}

Test(otlp, queue_survives_a_restart)
{
	struct otlp_stats st;
	struct otlp *e;
	bool seen[30] = { 0 };
	size_t i, k;

	/* backend down: everything lands in the queue */
	http_stub__set_default(tot_srv, 503, -1);
	e = tot_start(10, 60000, OTLP_COMPRESSION_GZIP);
	tot_add_spans(e, 0, 25);
	otlp__flush(e);
	TOT_WAIT(e, st, st.signal[OTLP_TRACES].queued_files == 3);
	cr_expect_eq(st.signal[OTLP_TRACES].queued_items, 25);
	cr_expect_eq(st.signal[OTLP_TRACES].sent_items, 0);
	otlp__stop(e);

	/* backend back, exporter restarted on the same queue, without gzip now */
	http_stub__reset(tot_srv);
	http_stub__set_default(tot_srv, 200, -1);
	e = tot_start(10, 60000, OTLP_COMPRESSION_NONE);
	tot_add_spans(e, 25, 30);
	otlp__flush(e);
	TOT_WAIT(e, st, st.signal[OTLP_TRACES].sent_items == 30);
	cr_expect_eq(st.signal[OTLP_TRACES].sent_requests, 4);
	/* the queued requests went first, still gzip'd as written */
	cr_assert_eq(http_stub__count(tot_srv), 4);
	for (i = 0; i < 4; i++) {
		tot_trace_req *req = tot_traces(i, i < 3);
		Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
			req->resource_spans[0]->scope_spans[0];

		for (k = 0; k < ss->n_spans; k++) {
			int id = ss->spans[k]->span_id.data[7] - 1;

			cr_assert(id >= 0 && id < 30);
			cr_expect(!seen[id], "span %d sent twice", id);
			seen[id] = true;
		}
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
			req, NULL);
	}
	for (i = 0; i < 30; i++)
		cr_expect(seen[i], "span %zu never sent", i);
	otlp__stop(e);
}

Test(otlp, queue_bound_drops_oldest_and_counts)
{
	struct otlp_opts o = {
		.endpoint = "http://127.0.0.1:1", /* nobody listens: transport errors */
		.batch_max_items = 4,
		.batch_max_delay_ms = 60000,
		.compression = OTLP_COMPRESSION_NONE,
		.queue_max_bytes = 4096,
		.backoff_min_ms = 5000,
	};
	struct otlp *e = tot_start_opts(&o);
	struct tick_sink sink = otlp__metrics_sink(e);
	const struct metric_family *f;
	struct metric_set *set;
	struct otlp_stats st;
	size_t i;
	double dropped = 0;

	/* a batch at a time, so that the writer's backlog bound does not refuse any */
	for (i = 0; i < 100; i += 4) {
		tot_add_spans(e, (int)i, (int)i + 4);
		TOT_WAIT(e, st, st.signal[OTLP_TRACES].pending_items == 0);
	}
	cr_expect_gt(st.signal[OTLP_TRACES].dropped_items[OTLP_DROP_QUEUE_FULL], 0);
	cr_expect_eq(st.signal[OTLP_TRACES].dropped_items[OTLP_DROP_BACKLOG], 0);
	cr_expect_leq(st.signal[OTLP_TRACES].queued_bytes, 4096);
	cr_expect_eq(st.signal[OTLP_TRACES].queued_items +
			     st.signal[OTLP_TRACES].dropped_items[OTLP_DROP_QUEUE_FULL],
		     100);

	/* the counters are metrics */
	set = metric_set__new(0);
	cr_assert_eq(sink.describe(sink.ctx, set), 0);
	f = metric_set__find(set, "novamon_otlp_dropped_items_total");
	cr_assert(f);
	cr_expect_eq(f->nseries, OTLP_SIGNALS * OTLP_DROP_MAX);
	for (i = 0; i < f->nseries; i++)
		if (!strcmp(f->series[i].labels, "signal=\"traces\",reason=\"queue_full\""))
			dropped = f->series[i].value;
	cr_expect_eq(dropped, (double)st.signal[OTLP_TRACES].dropped_items[OTLP_DROP_QUEUE_FULL]);
	f = metric_set__find(set, "novamon_otlp_queue_bytes");
	cr_assert(f);
	cr_expect_eq(f->type, METRIC_GAUGE);
	cr_expect_eq(f->nseries, OTLP_SIGNALS);
	cr_expect(metric_set__find(set, "novamon_otlp_sent_items_total"));
	cr_expect(metric_set__find(set, "novamon_otlp_rejected_items_total"));
	cr_expect(metric_set__find(set, "novamon_otlp_retries_total"));
	metric_set__free(set);
	otlp__stop(e);
}

Test(otlp, refuses_bad_options)
{
	static const char *const bad_hdr[] = { "no colon here" };
	struct otlp_opts o = { .endpoint = "ftp://x", .queue_dir = tot_dir };

	cr_expect_null(otlp__start(&o));
	cr_expect_eq(errno, EINVAL);
	o.endpoint = "http://";
	cr_expect_null(otlp__start(&o));
	o.endpoint = tot_endpoint;
	o.headers = bad_hdr;
	o.nheaders = 1;
	cr_expect_null(otlp__start(&o));
	cr_expect_eq(errno, EINVAL);
	o.nheaders = 0;
	o.ca_file = "/nonexistent/ca.pem";
	cr_expect_null(otlp__start(&o));
	cr_expect_eq(errno, ENOENT);
	cr_expect_eq(otlp__add_span(NULL, NULL), -EINVAL);
	cr_expect_str_eq(otlp_signal_name(OTLP_LOGS), "logs");
	cr_expect_null(otlp_signal_name(OTLP_SIGNALS));
	cr_expect_str_eq(otlp_drop_name(OTLP_DROP_QUEUE_FULL), "queue_full");
	otlp__stop(NULL);
}

/* Load yaml (written to the test's directory) over the defaults. */
static int tot_config(const char *yaml, struct config *cfg, char *err, size_t errlen)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/novamon.yaml", tot_dir);
	f = fopen(path, "w");
	cr_assert(f);
	fputs(yaml, f);
	fclose(f);
	config_defaults(cfg);
	return config_load(cfg, path, true, err, errlen);
}

Test(otlp, config_section)
{
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	cr_expect_str_eq(cfg.otlp_endpoint, "");
	cr_expect(cfg.otlp_gzip);
	cr_expect_eq(cfg.otlp_batch_max_items, OTLP_BATCH_MAX_ITEMS);
	cr_expect_eq(cfg.otlp_batch_max_delay_ms, OTLP_BATCH_MAX_DELAY_MS);
	cr_expect_eq(cfg.otlp_queue_max_bytes, OTLP_QUEUE_MAX_BYTES);
	cr_assert_eq(tot_config("otlp:\n"
				"  endpoint: https://otel.example:4318\n"
				"  headers:\n"
				"    Authorization: Bearer abc\n"
				"    x-scope-orgid: \"tenant 1\"\n"
				"  gzip: false\n"
				"  tls_skip_verify: true\n"
				"  ca_file: /etc/ssl/ca.pem\n"
				"  queue_max_bytes: 2097152\n"
				"  batch_max_items: 100\n"
				"  batch_max_delay_ms: 250\n",
				&cfg, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_str_eq(cfg.otlp_endpoint, "https://otel.example:4318");
	cr_assert_eq(cfg.otlp_nheaders, 2);
	cr_expect_str_eq(cfg.otlp_headers[0], "Authorization: Bearer abc");
	cr_expect_str_eq(cfg.otlp_headers[1], "x-scope-orgid: tenant 1");
	cr_expect(!cfg.otlp_gzip);
	cr_expect(cfg.otlp_tls_skip_verify);
	cr_expect_str_eq(cfg.otlp_ca_file, "/etc/ssl/ca.pem");
	cr_expect_eq(cfg.otlp_queue_max_bytes, 2097152);
	cr_expect_eq(cfg.otlp_batch_max_items, 100);
	cr_expect_eq(cfg.otlp_batch_max_delay_ms, 250);
}

Test(otlp, config_errors)
{
	static const struct {
		const char *yaml, *err;
	} cases[] = {
		{ "otlp:\n  endpoint: grpc://x:4317\n",
		  ":2: otlp.endpoint: \"grpc://x:4317\" is not an http:// or https:// URL" },
		{ "otlp:\n  headers: [a, b]\n",
		  ":2: otlp.headers: expected a mapping of header names to values, got a list" },
		{ "otlp:\n  headers:\n    \"bad name\": x\n",
		  ":3: otlp.headers.bad name: not a valid HTTP header name" },
		{ "otlp:\n  headers:\n    content-encoding: br\n",
		  ":3: otlp.headers.content-encoding: is set by novamon and cannot be configured" },
		{ "otlp:\n  headers:\n    A: x\n    a: y\n",
		  ":4: otlp.headers.a: duplicate header" },
		{ "otlp:\n  headers:\n    A: \"x\\ny\"\n",
		  ":3: otlp.headers.A: the value contains a control character" },
		{ "otlp:\n  headers:\n    A: \"\"\n", ":3: otlp.headers.A: must not be empty" },
		{ "otlp:\n  batch_max_items: 0\n",
		  ":2: otlp.batch_max_items: 0 is outside [1, 100000]" },
		{ "otlp:\n  queue_max_bytes: 1024\n",
		  ":2: otlp.queue_max_bytes: 1024 is outside [1048576, 1099511627776]" },
		{ "otlp:\n  gzip: maybe\n",
		  ":2: otlp.gzip: expected true or false, got \"maybe\"" },
		{ "otlp:\n  compression: gzip\n", ":2: otlp.compression: unknown key" },
	};
	struct config cfg;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(tot_config(cases[i].yaml, &cfg, err, sizeof(err)), -EINVAL, "%s",
			     cases[i].yaml);
		cr_expect(strstr(err, cases[i].err), "got \"%s\", expected \"...%s\"", err,
			  cases[i].err);
	}
}
