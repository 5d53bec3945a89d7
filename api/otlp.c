/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otlp: the OTLP/HTTP exporter (see otlp.h).
 *
 * Callers fill each signal's current batch under one mutex; the writer
 * thread encodes full or due batches (metrics arrive encoded), compresses
 * them and pushes them to the signal's spool, whose sender delivers them.
 * Messages for one request are built in an arena and freed in one go.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "feed.h"
#include "log.h"
#include "logs_service.pb-c.h"
#include "metrics.h"
#include "metrics_service.pb-c.h"
#include "otlp.h"
#include "pb_arena.h"
#include "spool.h"
#include "trace_service.pb-c.h"

/*
 * protobuf-c's generated names run past 50 characters; these aliases keep
 * the encoders readable. They name existing typedefs, not new types.
 */
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_trace_req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_trace_resp;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum pb_sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge pb_gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram pb_histogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_number_point;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_histogram_point;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pb_exemplar;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pb_scope_metrics;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pb_resource_metrics;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest pb_metrics_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse pb_metrics_resp;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_scope_logs;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_resource_logs;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_logs_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_logs_resp;

#define OTLP_NRESOURCE 4
#define OTLP_ARENA_HINT (64u << 10) /* first block of a request's messages */
#define OTLP_WARN_INTERVAL_MS 60000
/* OpenTelemetry's namespace for service.instance.id UUIDv5s (semantic conventions). */
static const uint8_t otlp_instance_ns[16] = { 0x4d, 0x63, 0x00, 0x9a, 0x8d, 0x0f, 0x11, 0xee,
					      0xaa, 0xd7, 0x4c, 0x79, 0x6e, 0xd8, 0xe3, 0x20 };

/* A log record with the time the exporter took it. */
struct otlp_log {
	struct log_record r;
	uint64_t observed_ns;
};

/*
 * A batch: records (spans or struct otlp_log) being filled or waiting for
 * the writer, or one encoded metrics request (packed).
 */
struct otlp_batch {
	struct otlp_batch *next;
	void *items;
	uint8_t *packed;
	size_t len; /* of packed */
	size_t n; /* records, or data points in packed */
	int64_t born_ms; /* monotonic time of the first record */
};

struct otlp_sig {
	struct otlp *o;
	enum otlp_signal id;
	size_t item_size; /* 0 for metrics: they arrive encoded */
	struct spool *spool;
	struct otlp_batch *cur;
	struct otlp_batch *full; /* oldest first */
	struct otlp_batch *full_tail;
	size_t full_items; /* items in the full batches: the backlog */
	uint64_t writing; /* items the writer took and has not pushed yet */
	/* under o->lock */
	uint64_t dropped[OTLP_DROP_MAX]; /* before the spool: backlog, error */
	uint64_t rejected;
	uint64_t partial_responses;
	int64_t last_warn_ms;
};

struct otlp {
	size_t batch_max;
	int64_t delay_ms;
	bool gzip;
	uint64_t start_ns;

	/* the resource and scope of every request, read-only once started */
	char host_name[256];
	char instance_id[40];
	pb_any res_val[OTLP_NRESOURCE];
	pb_kv res_kv[OTLP_NRESOURCE];
	pb_kv *res_kvp[OTLP_NRESOURCE];
	pb_resource resource;
	pb_scope scope;

	pthread_mutex_t lock;
	pthread_cond_t writer_cond;
	struct otlp_sig sig[OTLP_SIGNALS];
	bool flush_req;
	atomic_bool stop;
	pthread_t writer;
	bool writer_started;
};

static const char *const otlp_signal_names[OTLP_SIGNALS] = {
	[OTLP_TRACES] = "traces",
	[OTLP_METRICS] = "metrics",
	[OTLP_LOGS] = "logs",
};

static const char *const otlp_drop_names[OTLP_DROP_MAX] = {
	[OTLP_DROP_BACKLOG] = "backlog",
	[OTLP_DROP_QUEUE_FULL] = "queue_full",
	[OTLP_DROP_NON_RETRYABLE] = "non_retryable",
	[OTLP_DROP_ERROR] = "error",
};

const char *otlp_signal_name(enum otlp_signal signal)
{
	return (unsigned int)signal < OTLP_SIGNALS ? otlp_signal_names[signal] : NULL;
}

const char *otlp_drop_name(enum otlp_drop reason)
{
	return (unsigned int)reason < OTLP_DROP_MAX ? otlp_drop_names[reason] : NULL;
}

static int64_t otlp_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t otlp_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct otlp_batch *otlp_batch__free(struct otlp_batch *b)
{
	if (!b)
		return NULL;
	free(b->items);
	free(b->packed);
	free(b);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* the messages of one request, built in a pb_arena */

/* A new message of descriptor d, initialised (defaults, descriptor). */
static void *otlp_msg(struct pb_arena *a, const ProtobufCMessageDescriptor *d)
{
	void *m = pb_arena__zalloc(a, d->sizeof_message);

	if (m)
		protobuf_c_message_init(d, m);
	return m;
}

/* A NUL-terminated copy of the first max bytes of s (fixed-size record fields). */
static char *otlp_strndup(struct pb_arena *a, const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	char *p = pb_arena__zalloc(a, len + 1);

	if (p)
		memcpy(p, s, len);
	return p;
}

/* ------------------------------------------------------------------ */
/* encoding */

static bool otlp_all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static ProtobufCBinaryData otlp_id(const uint8_t *id, size_t len)
{
	/* an all-zero id is invalid in OTLP: send none */
	return (ProtobufCBinaryData){
		.len = otlp_all_zero(id, len) ? 0 : len,
		.data = (uint8_t *)id,
	};
}

/*
 * Convert a record's attributes. Those past SPAN_MAX_ATTRS, with an empty
 * key or an unknown type count into *dropped.
 */
static pb_kv **otlp_attrs(struct pb_arena *a, const struct span_attr *attrs, unsigned int n,
			  size_t *nout, uint32_t *dropped)
{
	unsigned int i, keep = n < SPAN_MAX_ATTRS ? n : SPAN_MAX_ATTRS;
	pb_kv **out;

	*nout = 0;
	*dropped = n - keep;
	if (!keep)
		return NULL;
	out = pb_arena__zalloc(a, keep * sizeof(*out));
	if (!out)
		return NULL;
	for (i = 0; i < keep; i++) {
		const struct span_attr *at = &attrs[i];
		pb_kv *kv;
		pb_any *v;

		if (!at->key[0] || at->type > SPAN_ATTR_BOOL) {
			(*dropped)++;
			continue;
		}
		kv = otlp_msg(a, &opentelemetry__proto__common__v1__key_value__descriptor);
		v = otlp_msg(a, &opentelemetry__proto__common__v1__any_value__descriptor);
		if (!kv || !v)
			return NULL;
		kv->key = otlp_strndup(a, at->key, SPAN_KEY_LEN);
		kv->value = v;
		switch (at->type) {
		case SPAN_ATTR_STR:
			v->value_case =
				OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			v->string_value = otlp_strndup(a, at->s, SPAN_STR_LEN);
			break;
		case SPAN_ATTR_INT:
			v->value_case =
				OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
			v->int_value = at->i;
			break;
		case SPAN_ATTR_DOUBLE:
			v->value_case =
				OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
			v->double_value = at->d;
			break;
		default:
			v->value_case =
				OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
			v->bool_value = at->b;
			break;
		}
		out[(*nout)++] = kv;
	}
	return out;
}

/* Pack msg into a malloc'd buffer. Returns 0 or -ENOMEM. */
static int otlp_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);

	if (!buf)
		return -ENOMEM;
	*len = protobuf_c_message_pack(msg, buf);
	*out = buf;
	return 0;
}

static pb_span *otlp_span(struct pb_arena *a, const struct span *s)
{
	pb_span *p = otlp_msg(a, &opentelemetry__proto__trace__v1__span__descriptor);
	uint32_t dropped;

	if (!p)
		return NULL;
	p->trace_id = otlp_id(s->trace_id, sizeof(s->trace_id));
	p->span_id = otlp_id(s->span_id, sizeof(s->span_id));
	p->parent_span_id = otlp_id(s->parent_span_id, sizeof(s->parent_span_id));
	p->name = otlp_strndup(a, s->name, SPAN_NAME_LEN);
	p->kind = s->kind <= SPAN_KIND_CONSUMER ? (int)s->kind : SPAN_KIND_UNSPECIFIED;
	p->start_time_unix_nano = s->start_ns;
	p->end_time_unix_nano = s->end_ns;
	p->attributes = otlp_attrs(a, s->attrs, s->nattrs, &p->n_attributes, &dropped);
	p->dropped_attributes_count = dropped;
	if (s->status != SPAN_STATUS_UNSET || s->status_message[0]) {
		pb_status *st = otlp_msg(a, &opentelemetry__proto__trace__v1__status__descriptor);

		if (!st)
			return NULL;
		st->code = s->status <= SPAN_STATUS_ERROR ? (int)s->status : SPAN_STATUS_UNSET;
		st->message = otlp_strndup(a, s->status_message, SPAN_STR_LEN);
		p->status = st;
	}
	return p;
}

static int otlp_encode_spans(struct otlp *o, const struct span *spans, size_t n, uint8_t **out,
			     size_t *len)
{
	pb_trace_req req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	pb_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	pb_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	pb_resource_spans *rsp = &rs;
	pb_scope_spans *ssp = &ss;
	struct pb_arena a;
	size_t i;
	int err = -ENOMEM;

	pb_arena__init(&a, OTLP_ARENA_HINT);
	ss.scope = &o->scope;
	ss.spans = pb_arena__zalloc(&a, n * sizeof(*ss.spans));
	for (i = 0; ss.spans && i < n; i++)
		ss.spans[i] = otlp_span(&a, &spans[i]);
	if (a.failed)
		goto out;
	ss.n_spans = n;
	rs.resource = &o->resource;
	rs.scope_spans = &ssp;
	rs.n_scope_spans = 1;
	req.resource_spans = &rsp;
	req.n_resource_spans = 1;
	err = otlp_pack(&req.base, out, len);
out:
	pb_arena__destroy(&a);
	return err;
}

static const char *otlp_severity_text(unsigned int sev)
{
	static const char *const names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL" };

	return sev >= 1 && sev <= 24 ? names[(sev - 1) / 4] : "";
}

static pb_log *otlp_log_record(struct pb_arena *a, const struct otlp_log *l)
{
	pb_log *p = otlp_msg(a, &opentelemetry__proto__logs__v1__log_record__descriptor);
	const struct log_record *r = &l->r;
	uint32_t dropped;
	pb_any *body;

	if (!p)
		return NULL;
	body = otlp_msg(a, &opentelemetry__proto__common__v1__any_value__descriptor);
	if (!body)
		return NULL;
	p->time_unix_nano = r->time_ns;
	p->observed_time_unix_nano = l->observed_ns;
	p->severity_number = r->severity <= 24 ? (int)r->severity : 0;
	p->severity_text = (char *)otlp_severity_text(r->severity);
	body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	body->string_value = otlp_strndup(a, r->body, LOG_BODY_LEN);
	p->body = body;
	p->attributes = otlp_attrs(a, r->attrs, r->nattrs, &p->n_attributes, &dropped);
	p->dropped_attributes_count = dropped;
	if (r->has_trace) {
		p->trace_id = otlp_id(r->trace_id, sizeof(r->trace_id));
		p->span_id = otlp_id(r->span_id, sizeof(r->span_id));
	}
	return p;
}

static int otlp_encode_logs(struct otlp *o, const struct otlp_log *logs, size_t n, uint8_t **out,
			    size_t *len)
{
	pb_logs_req req =
		OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
	pb_resource_logs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
	pb_scope_logs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
	pb_resource_logs *rlp = &rl;
	pb_scope_logs *slp = &sl;
	struct pb_arena a;
	size_t i;
	int err = -ENOMEM;

	pb_arena__init(&a, OTLP_ARENA_HINT);
	sl.scope = &o->scope;
	sl.log_records = pb_arena__zalloc(&a, n * sizeof(*sl.log_records));
	for (i = 0; sl.log_records && i < n; i++)
		sl.log_records[i] = otlp_log_record(&a, &logs[i]);
	if (a.failed)
		goto out;
	sl.n_log_records = n;
	rl.resource = &o->resource;
	rl.scope_logs = &slp;
	rl.n_scope_logs = 1;
	req.resource_logs = &rlp;
	req.n_resource_logs = 1;
	err = otlp_pack(&req.base, out, len);
out:
	pb_arena__destroy(&a);
	return err;
}

/* A series' rendered labels as string attributes; -EINVAL/-E2BIG when they do not parse. */
static int otlp_labels(struct pb_arena *a, const char *rendered, pb_kv ***out, size_t *nout)
{
	struct tsdb_label labels[TSDB_MAX_LABELS];
	size_t buflen = strlen(rendered) + 2;
	char *buf = pb_arena__zalloc(a, buflen);
	pb_kv **kvs;
	int i, n;

	*nout = 0;
	if (!buf)
		return -ENOMEM;
	n = feed_parse_labels(rendered, labels, TSDB_MAX_LABELS, buf, buflen);
	if (n <= 0)
		return n;
	kvs = pb_arena__zalloc(a, (size_t)n * sizeof(*kvs));
	if (!kvs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		pb_kv *kv = otlp_msg(a, &opentelemetry__proto__common__v1__key_value__descriptor);
		pb_any *v = otlp_msg(a, &opentelemetry__proto__common__v1__any_value__descriptor);

		if (!kv || !v)
			return -ENOMEM;
		kv->key = (char *)labels[i].name;
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = (char *)labels[i].value;
		kv->value = v;
		kvs[i] = kv;
	}
	*out = kvs;
	*nout = (size_t)n;
	return 0;
}

/*
 * The exemplar of series s as a one-element list (in a), or NULL with *n 0
 * when it has none. -ENOMEM when out of memory.
 */
static int otlp_exemplar(struct pb_arena *a, const struct metric_series *s, pb_exemplar ***out,
			 size_t *n)
{
	pb_exemplar **list;
	pb_exemplar *e;

	*out = NULL;
	*n = 0;
	if (!s->has_exemplar)
		return 0;
	list = pb_arena__zalloc(a, sizeof(*list));
	e = otlp_msg(a, &opentelemetry__proto__metrics__v1__exemplar__descriptor);
	if (!list || !e)
		return -ENOMEM;
	e->has_time_unix_nano = true;
	e->time_unix_nano = (uint64_t)s->exemplar.timestamp_ms * 1000000ull;
	e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
	e->as_double = s->exemplar.value;
	e->trace_id = otlp_id(s->exemplar.trace_id, sizeof(s->exemplar.trace_id));
	e->has_trace_id = e->trace_id.len > 0;
	e->span_id = otlp_id(s->exemplar.span_id, sizeof(s->exemplar.span_id));
	e->has_span_id = e->span_id.len > 0;
	list[0] = e;
	*out = list;
	*n = 1;
	return 0;
}

/*
 * Series [first, first + n) of fam as one Metric; series whose labels do
 * not parse are left out and counted in *failed. NULL when out of memory.
 */
static pb_metric *otlp_metric(struct otlp *o, struct pb_arena *a, const struct metric_family *fam,
			      size_t first, size_t n, uint64_t t_ns, size_t *failed)
{
	pb_metric *m = otlp_msg(a, &opentelemetry__proto__metrics__v1__metric__descriptor);
	pb_number_point **np = NULL;
	pb_histogram_point **hp = NULL;
	size_t i, k = 0;

	if (!m)
		return NULL;
	m->name = fam->name;
	m->description = fam->help;
	if (fam->type == METRIC_HISTOGRAM)
		hp = pb_arena__zalloc(a, n * sizeof(*hp));
	else
		np = pb_arena__zalloc(a, n * sizeof(*np));
	if (!hp && !np)
		return NULL;
	for (i = first; i < first + n; i++) {
		const struct metric_series *s = &fam->series[i];
		pb_kv **attrs = NULL;
		size_t nattrs = 0;
		int err = otlp_labels(a, s->labels, &attrs, &nattrs);

		if (err == -ENOMEM)
			return NULL;
		if (err) {
			(*failed)++;
			continue;
		}
		if (hp) {
			pb_histogram_point *p = otlp_msg(
				a,
				&opentelemetry__proto__metrics__v1__histogram_data_point__descriptor);

			if (!p)
				return NULL;
			p->attributes = attrs;
			p->n_attributes = nattrs;
			p->has_start_time_unix_nano = true;
			p->start_time_unix_nano = o->start_ns;
			p->has_time_unix_nano = true;
			p->time_unix_nano = t_ns;
			p->has_count = true;
			p->count = s->count;
			p->has_sum = true;
			p->sum = s->sum;
			p->bucket_counts = s->buckets;
			p->n_bucket_counts = fam->nbounds + 1;
			p->explicit_bounds = (double *)fam->bounds;
			p->n_explicit_bounds = fam->nbounds;
			if (otlp_exemplar(a, s, &p->exemplars, &p->n_exemplars))
				return NULL;
			hp[k++] = p;
		} else {
			pb_number_point *p = otlp_msg(
				a,
				&opentelemetry__proto__metrics__v1__number_data_point__descriptor);

			if (!p)
				return NULL;
			p->attributes = attrs;
			p->n_attributes = nattrs;
			if (fam->type == METRIC_COUNTER)
				p->start_time_unix_nano = o->start_ns;
			p->time_unix_nano = t_ns;
			p->value_case =
				OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
			p->as_double = s->value;
			if (otlp_exemplar(a, s, &p->exemplars, &p->n_exemplars))
				return NULL;
			np[k++] = p;
		}
	}
	switch (fam->type) {
	case METRIC_COUNTER: {
		pb_sum *sum = otlp_msg(a, &opentelemetry__proto__metrics__v1__sum__descriptor);

		if (!sum)
			return NULL;
		sum->data_points = np;
		sum->n_data_points = k;
		sum->aggregation_temporality =
			OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
		sum->is_monotonic = true;
		m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
		m->sum = sum;
		break;
	}
	case METRIC_HISTOGRAM: {
		pb_histogram *h =
			otlp_msg(a, &opentelemetry__proto__metrics__v1__histogram__descriptor);

		if (!h)
			return NULL;
		h->data_points = hp;
		h->n_data_points = k;
		h->aggregation_temporality =
			OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
		m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
		m->histogram = h;
		break;
	}
	default: {
		pb_gauge *g = otlp_msg(a, &opentelemetry__proto__metrics__v1__gauge__descriptor);

		if (!g)
			return NULL;
		g->data_points = np;
		g->n_data_points = k;
		m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
		m->gauge = g;
		break;
	}
	}
	return k ? m : NULL;
}

/* Hand a finished batch to the writer; the caller holds the lock. */
static void otlp_queue_full(struct otlp *o, struct otlp_sig *sig, struct otlp_batch *b)
{
	if (sig->full_tail)
		sig->full_tail->next = b;
	else
		sig->full = b;
	sig->full_tail = b;
	sig->full_items += b->n;
	pthread_cond_signal(&o->writer_cond);
}

/*
 * Whether sig's backlog (full batches the writer has not taken, while it is
 * busy: a slow disk's fsync, say) refuses more: OTLP_MAX_PENDING_BATCHES
 * batches' worth of items, and never fewer than OTLP_MIN_PENDING_ITEMS, so
 * that small batches do not make a backlog of a fraction of a second.
 */
static bool otlp_backlog_full(const struct otlp *o, const struct otlp_sig *sig, size_t more)
{
	size_t max = OTLP_MAX_PENDING_BATCHES * o->batch_max;

	if (max < OTLP_MIN_PENDING_ITEMS)
		max = OTLP_MIN_PENDING_ITEMS;
	return sig->full_items + more > max;
}

/*
 * Encode families from (*f, *s) on into one request of at most batch_max
 * data points and queue it; advance (*f, *s). Returns the points that could
 * not be queued.
 */
static size_t otlp_metrics_request(struct otlp *o, const struct metric_set *set, size_t *f,
				   size_t *s, uint64_t t_ns)
{
	pb_metrics_req req =
		OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	pb_resource_metrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
	pb_scope_metrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
	struct otlp_sig *sig = &o->sig[OTLP_METRICS];
	pb_resource_metrics *rmp = &rm;
	pb_scope_metrics *smp = &sm;
	struct pb_arena a;
	struct otlp_batch *b = NULL;
	size_t points = 0, failed = 0, nmax;

	pb_arena__init(&a, OTLP_ARENA_HINT);
	nmax = set->nfamilies - *f < o->batch_max ? set->nfamilies - *f : o->batch_max;
	sm.metrics = pb_arena__zalloc(&a, nmax * sizeof(*sm.metrics));
	while (sm.metrics && *f < set->nfamilies && points < o->batch_max) {
		const struct metric_family *fam = &set->families[*f];
		size_t take = fam->nseries - *s;
		pb_metric *m;

		if (!take) {
			(*f)++;
			*s = 0;
			continue;
		}
		if (take > o->batch_max - points)
			take = o->batch_max - points;
		m = otlp_metric(o, &a, fam, *s, take, t_ns, &failed);
		if (m)
			sm.metrics[sm.n_metrics++] = m;
		*s += take;
		points += take;
	}
	if (a.failed)
		goto fail;
	if (points == failed)
		goto out;
	sm.scope = &o->scope;
	rm.resource = &o->resource;
	rm.scope_metrics = &smp;
	rm.n_scope_metrics = 1;
	req.resource_metrics = &rmp;
	req.n_resource_metrics = 1;
	b = calloc(1, sizeof(*b));
	if (!b || otlp_pack(&req.base, &b->packed, &b->len)) {
		b = otlp_batch__free(b);
		goto fail;
	}
	b->n = points - failed;
	pthread_mutex_lock(&o->lock);
	if (otlp_backlog_full(o, sig, b->n)) {
		sig->dropped[OTLP_DROP_BACKLOG] += b->n;
		failed = points;
		b = otlp_batch__free(b);
	} else {
		otlp_queue_full(o, sig, b);
	}
	pthread_mutex_unlock(&o->lock);
out:
	pb_arena__destroy(&a);
	return failed;
fail:
	pthread_mutex_lock(&o->lock);
	sig->dropped[OTLP_DROP_ERROR] += points - failed;
	pthread_mutex_unlock(&o->lock);
	pb_arena__destroy(&a);
	return points;
}

int otlp__add_metrics(struct otlp *o, const struct metric_set *set, int64_t t_ms)
{
	uint64_t t_ns = (uint64_t)t_ms * 1000000ull;
	size_t f = 0, s = 0, failed = 0;

	if (!o || !set || t_ms < 0)
		return -EINVAL;
	while (f < set->nfamilies)
		failed += otlp_metrics_request(o, set, &f, &s, t_ns);
	return failed > INT32_MAX ? INT32_MAX : (int)failed;
}

/* gzip (RFC 1952) in one pass. Returns 0 or -ENOMEM/-EIO. */
static int otlp_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream z = { 0 };
	uint8_t *buf = NULL;
	size_t bound;
	int err = -EIO;

	/* Level 1: protobuf with repeated label strings compresses nearly as well, 3x faster. */
	if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&z, len);
	buf = malloc(bound);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		goto out;
	*out = buf;
	*outlen = z.total_out;
	buf = NULL;
	err = 0;
out:
	deflateEnd(&z);
	free(buf);
	return err;
}

/* Encode (unless packed), compress and queue one batch; the spool counts what it refuses. */
static void otlp_write_batch(struct otlp *o, struct otlp_sig *sig, struct otlp_batch *b)
{
	uint8_t *packed = b->packed, *body = NULL;
	size_t len = b->len, blen;
	int err = 0;

	if (!b->n)
		return;
	if (!packed) {
		if (sig->id == OTLP_TRACES)
			err = otlp_encode_spans(o, b->items, b->n, &packed, &len);
		else
			err = otlp_encode_logs(o, b->items, b->n, &packed, &len);
		b->packed = packed;
		b->len = len;
	}
	if (!err && o->gzip)
		err = otlp_gzip(packed, len, &body, &blen);
	if (err) {
		pthread_mutex_lock(&o->lock);
		sig->dropped[OTLP_DROP_ERROR] += b->n;
		pthread_mutex_unlock(&o->lock);
		return;
	}
	if (o->gzip)
		spool__push(sig->spool, body, blen, b->n);
	else
		spool__push(sig->spool, packed, len, b->n);
	free(body);
}

/* ------------------------------------------------------------------ */
/* the writer thread */

static void *otlp_writer_main(void *arg)
{
	struct otlp *o = arg;
	struct otlp_batch *take[OTLP_SIGNALS], *b, *next;
	int64_t now, deadline;
	bool stopping, any;
	int i;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		now = otlp_mono_ms();
		stopping = atomic_load(&o->stop);
		deadline = INT64_MAX;
		any = false;
		for (i = 0; i < OTLP_SIGNALS; i++) {
			struct otlp_sig *sig = &o->sig[i];

			if (sig->cur && sig->cur->n) {
				if (stopping || o->flush_req ||
				    now - sig->cur->born_ms >= o->delay_ms) {
					otlp_queue_full(o, sig, sig->cur);
					sig->cur = NULL;
				} else if (sig->cur->born_ms + o->delay_ms < deadline) {
					deadline = sig->cur->born_ms + o->delay_ms;
				}
			}
			take[i] = sig->full;
			any |= take[i] != NULL;
			for (b = take[i]; b; b = b->next)
				sig->writing += b->n;
			sig->full = sig->full_tail = NULL;
			sig->full_items = 0;
		}
		o->flush_req = false;
		if (any) {
			pthread_mutex_unlock(&o->lock);
			for (i = 0; i < OTLP_SIGNALS; i++) {
				for (b = take[i]; b; b = next) {
					next = b->next;
					otlp_write_batch(o, &o->sig[i], b);
					pthread_mutex_lock(&o->lock);
					o->sig[i].writing -= b->n;
					pthread_mutex_unlock(&o->lock);
					otlp_batch__free(b);
				}
			}
			pthread_mutex_lock(&o->lock);
			continue;
		}
		if (stopping)
			break;
		if (deadline != INT64_MAX) {
			struct timespec ts = {
				.tv_sec = deadline / 1000,
				.tv_nsec = (deadline % 1000) * 1000000,
			};

			pthread_cond_timedwait(&o->writer_cond, &o->lock, &ts);
		} else {
			pthread_cond_wait(&o->writer_cond, &o->lock);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* Copy one record into sig's current batch. */
static int otlp_add(struct otlp *o, enum otlp_signal id, const void *rec, size_t size,
		    uint64_t observed_ns)
{
	struct otlp_sig *sig = &o->sig[id];
	struct otlp_batch *b;
	char *slot;
	int err = 0;

	pthread_mutex_lock(&o->lock);
	if (otlp_backlog_full(o, sig, 1)) {
		sig->dropped[OTLP_DROP_BACKLOG]++;
		err = -ENOBUFS;
		goto out;
	}
	b = sig->cur;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b)
			b->items = malloc(o->batch_max * sig->item_size);
		if (!b || !b->items) {
			otlp_batch__free(b);
			sig->dropped[OTLP_DROP_ERROR]++;
			err = -ENOMEM;
			goto out;
		}
		b->born_ms = otlp_mono_ms();
		sig->cur = b;
		/* the writer now has a deadline to wait for */
		pthread_cond_signal(&o->writer_cond);
	}
	slot = (char *)b->items + b->n * sig->item_size;
	memcpy(slot, rec, size);
	if (id == OTLP_LOGS)
		((struct otlp_log *)slot)->observed_ns = observed_ns;
	if (++b->n == o->batch_max) {
		otlp_queue_full(o, sig, b);
		sig->cur = NULL;
	}
out:
	pthread_mutex_unlock(&o->lock);
	return err;
}

int otlp__add_span(struct otlp *o, const struct span *span)
{
	if (!o || !span)
		return -EINVAL;
	return otlp_add(o, OTLP_TRACES, span, sizeof(*span), 0);
}

int otlp__add_log(struct otlp *o, const struct log_record *rec)
{
	if (!o || !rec)
		return -EINVAL;
	return otlp_add(o, OTLP_LOGS, rec, sizeof(*rec), otlp_wall_ns());
}

void otlp__flush(struct otlp *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->flush_req = true;
	pthread_cond_signal(&o->writer_cond);
	pthread_mutex_unlock(&o->lock);
}

/* ------------------------------------------------------------------ */
/* answers */

/* The partial_success of a 2xx body: rejected count and message; false when there is none. */
static bool otlp_partial(enum otlp_signal id, const struct spool_reply *r, int64_t *rejected,
			 char *msg, size_t msglen)
{
	const uint8_t *body = (const uint8_t *)r->body;
	const char *m = NULL;
	bool found = false;

	*rejected = 0;
	switch (id) {
	case OTLP_TRACES: {
		pb_trace_resp *p =
			opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
				NULL, r->body_len, body);

		if (p && p->partial_success) {
			*rejected = p->partial_success->rejected_spans;
			m = p->partial_success->error_message;
			snprintf(msg, msglen, "%s", m ? m : "");
			found = true;
		}
		if (p)
			protobuf_c_message_free_unpacked(&p->base, NULL);
		break;
	}
	case OTLP_METRICS: {
		pb_metrics_resp *p =
			opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
				NULL, r->body_len, body);

		if (p && p->partial_success) {
			*rejected = p->partial_success->rejected_data_points;
			m = p->partial_success->error_message;
			snprintf(msg, msglen, "%s", m ? m : "");
			found = true;
		}
		if (p)
			protobuf_c_message_free_unpacked(&p->base, NULL);
		break;
	}
	default: {
		pb_logs_resp *p =
			opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(
				NULL, r->body_len, body);

		if (p && p->partial_success) {
			*rejected = p->partial_success->rejected_log_records;
			m = p->partial_success->error_message;
			snprintf(msg, msglen, "%s", m ? m : "");
			found = true;
		}
		if (p)
			protobuf_c_message_free_unpacked(&p->base, NULL);
		break;
	}
	}
	return found && (*rejected > 0 || msg[0]);
}

/*
 * On the sender thread, after each attempt: count and log partial
 * successes, and say (at most once a minute) that requests are being
 * dropped on non-retryable answers.
 */
static void otlp_on_reply(void *ctx, const struct spool_reply *r)
{
	struct otlp_sig *sig = ctx;
	const char *name = otlp_signal_names[sig->id];
	char msg[256] = "";
	int64_t rejected, now;
	bool warn;

	if (r->status >= 200 && r->status < 300) {
		if (!r->body_len || !otlp_partial(sig->id, r, &rejected, msg, sizeof(msg)))
			return;
		if (rejected < 0)
			rejected = 0;
		if ((uint64_t)rejected > r->items)
			rejected = (int64_t)r->items;
		pthread_mutex_lock(&sig->o->lock);
		sig->rejected += (uint64_t)rejected;
		sig->partial_responses++;
		pthread_mutex_unlock(&sig->o->lock);
		log_warn("otlp %s: the backend rejected %lld of %llu items%s%s", name,
			 (long long)rejected, (unsigned long long)r->items, msg[0] ? ": " : "",
			 msg);
		return;
	}
	if (!r->status || spool_retry_otlp(r->status))
		return;
	now = otlp_mono_ms();
	pthread_mutex_lock(&sig->o->lock);
	warn = !sig->last_warn_ms || now - sig->last_warn_ms >= OTLP_WARN_INTERVAL_MS;
	if (warn)
		sig->last_warn_ms = now;
	pthread_mutex_unlock(&sig->o->lock);
	if (warn)
		log_warn("otlp %s: the backend answered %ld, dropping %llu items (not retryable)",
			 name, r->status, (unsigned long long)r->items);
}

/* ------------------------------------------------------------------ */
/* start, stats, stop */

/* service.instance.id: UUIDv5 (RFC 9562) of the machine-id, else a random UUIDv4. */
static void otlp_instance_id(char *out, size_t len)
{
	uint8_t buf[16 + 64], md[EVP_MAX_MD_SIZE], u[16];
	unsigned int mdlen = 0;
	ssize_t n = -1;
	int fd;

	fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf + 16, 64);
		close(fd);
	}
	while (n > 0 && (buf[16 + n - 1] == '\n' || buf[16 + n - 1] == ' '))
		n--;
	memcpy(buf, otlp_instance_ns, 16);
	if (n > 0 && EVP_Digest(buf, 16 + (size_t)n, md, &mdlen, EVP_sha1(), NULL) && mdlen >= 16) {
		memcpy(u, md, 16);
		u[6] = (u[6] & 0x0f) | 0x50;
	} else {
		if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
			uint64_t t = otlp_wall_ns() ^ (uint64_t)getpid() << 32;

			memcpy(u, &t, 8);
			memcpy(u + 8, &t, 8);
		}
		u[6] = (u[6] & 0x0f) | 0x40;
	}
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static void otlp_resource_init(struct otlp *o, const struct otlp_opts *opts)
{
	const char *keys[OTLP_NRESOURCE] = {
		"service.name",
		"service.version",
		"host.name",
		"service.instance.id",
	};
	const char *vals[OTLP_NRESOURCE] = { "novamon", NOVAMON_VERSION, o->host_name,
					     o->instance_id };
	int i;

	if (opts->host_name)
		snprintf(o->host_name, sizeof(o->host_name), "%s", opts->host_name);
	else if (gethostname(o->host_name, sizeof(o->host_name) - 1))
		snprintf(o->host_name, sizeof(o->host_name), "localhost");
	if (opts->instance_id)
		snprintf(o->instance_id, sizeof(o->instance_id), "%s", opts->instance_id);
	else
		otlp_instance_id(o->instance_id, sizeof(o->instance_id));
	for (i = 0; i < OTLP_NRESOURCE; i++) {
		opentelemetry__proto__common__v1__any_value__init(&o->res_val[i]);
		o->res_val[i].value_case =
			OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		o->res_val[i].string_value = (char *)vals[i];
		opentelemetry__proto__common__v1__key_value__init(&o->res_kv[i]);
		o->res_kv[i].key = (char *)keys[i];
		o->res_kv[i].value = &o->res_val[i];
		o->res_kvp[i] = &o->res_kv[i];
	}
	opentelemetry__proto__resource__v1__resource__init(&o->resource);
	o->resource.attributes = o->res_kvp;
	o->resource.n_attributes = OTLP_NRESOURCE;
	opentelemetry__proto__common__v1__instrumentation_scope__init(&o->scope);
	o->scope.name = (char *)"novamon";
	o->scope.version = (char *)NOVAMON_VERSION;
}

/* Start the spool of one signal: <queue_dir>/<signal>, POSTing to <endpoint>/v1/<signal>. */
static int otlp_spool_start(struct otlp *o, struct otlp_sig *sig, const struct otlp_opts *opts,
			    const char *const *headers, size_t nheaders)
{
	static const struct spool_encoding gzip_first[] = {
		{ "gz", "Content-Encoding: gzip" },
		{ "pb", NULL },
	};
	static const struct spool_encoding plain_first[] = {
		{ "pb", NULL },
		{ "gz", "Content-Encoding: gzip" },
	};
	const char *name = otlp_signal_names[sig->id];
	size_t elen = strlen(opts->endpoint);
	char *url = NULL, *dir = NULL;
	int err = -ENOMEM;

	while (elen && opts->endpoint[elen - 1] == '/')
		elen--;
	if (asprintf(&url, "%.*s/v1/%s", (int)elen, opts->endpoint, name) < 0)
		url = NULL;
	if (asprintf(&dir, "%s/%s", opts->queue_dir, name) < 0)
		dir = NULL;
	if (url && dir) {
		struct spool_opts so = {
			.url = url,
			.dir = dir,
			.encodings = o->gzip ? gzip_first : plain_first,
			.nencodings = 2,
			.headers = headers,
			.nheaders = nheaders,
			.max_bytes = opts->queue_max_bytes ? opts->queue_max_bytes :
							     OTLP_QUEUE_MAX_BYTES,
			.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : OTLP_TIMEOUT_MS,
			.backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms :
								     OTLP_BACKOFF_MIN_MS,
			.backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms :
								     OTLP_BACKOFF_MAX_MS,
			.tls_skip_verify = opts->tls_skip_verify,
			.ca_file = opts->ca_file,
			.retryable = spool_retry_otlp,
			.on_reply = otlp_on_reply,
			.ctx = sig,
		};

		sig->spool = spool__start(&so);
		err = sig->spool ? 0 : -errno;
	}
	free(url);
	free(dir);
	return err;
}

static bool otlp_endpoint_ok(const char *e)
{
	return e && ((!strncmp(e, "http://", 7) && e[7]) || (!strncmp(e, "https://", 8) && e[8]));
}

struct otlp *otlp__start(const struct otlp_opts *opts)
{
	struct otlp *o = NULL;
	const char **headers = NULL;
	pthread_condattr_t ca;
	size_t i, nheaders = 0;
	int err = -EINVAL;

	if (!opts || !otlp_endpoint_ok(opts->endpoint) || !opts->queue_dir || !opts->queue_dir[0] ||
	    (opts->nheaders && !opts->headers))
		goto fail;
	for (i = 0; i < opts->nheaders; i++)
		if (!opts->headers[i] || !strchr(opts->headers[i], ':') ||
		    opts->headers[i][0] == ':')
			goto fail;
	if (opts->ca_file && opts->ca_file[0] && access(opts->ca_file, R_OK)) {
		err = -errno;
		goto fail;
	}
	err = -ENOMEM;
	o = calloc(1, sizeof(*o));
	if (!o)
		goto fail;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->writer_cond, &ca);
	pthread_condattr_destroy(&ca);
	headers = calloc(opts->nheaders + 1, sizeof(*headers));
	if (!headers)
		goto fail;
	o->batch_max = opts->batch_max_items ? opts->batch_max_items : OTLP_BATCH_MAX_ITEMS;
	o->delay_ms = opts->batch_max_delay_ms > 0 ? opts->batch_max_delay_ms :
						     OTLP_BATCH_MAX_DELAY_MS;
	o->gzip = opts->compression == OTLP_COMPRESSION_GZIP;
	o->start_ns = opts->start_ms > 0 ? (uint64_t)opts->start_ms * 1000000ull : otlp_wall_ns();
	otlp_resource_init(o, opts);
	for (i = 0; i < OTLP_SIGNALS; i++) {
		o->sig[i].o = o;
		o->sig[i].id = (enum otlp_signal)i;
	}
	o->sig[OTLP_TRACES].item_size = sizeof(struct span);
	o->sig[OTLP_LOGS].item_size = sizeof(struct otlp_log);

	memcpy(headers, opts->headers, opts->nheaders * sizeof(*headers));
	nheaders = opts->nheaders;
	headers[nheaders++] = "Content-Type: application/x-protobuf";
	if (mkdir(opts->queue_dir, 0700) && errno != EEXIST) {
		err = -errno;
		goto fail;
	}
	for (i = 0; i < OTLP_SIGNALS; i++) {
		err = otlp_spool_start(o, &o->sig[i], opts, headers, nheaders);
		if (err)
			goto fail;
	}
	err = -pthread_create(&o->writer, NULL, otlp_writer_main, o);
	if (err)
		goto fail;
	o->writer_started = true;
	free(headers);
	return o;
fail:
	free(headers);
	otlp__stop(o);
	errno = -err;
	return NULL;
}

void otlp__stats(struct otlp *o, struct otlp_stats *st)
{
	struct spool_stats ss;
	struct otlp_batch *b;
	int i, d;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < OTLP_SIGNALS; i++) {
		struct otlp_signal_stats *s = &st->signal[i];
		struct otlp_sig *sig = &o->sig[i];

		spool__stats(sig->spool, &ss);
		s->queued_bytes = ss.queued_bytes;
		s->queued_files = ss.queued_files;
		s->queued_items = ss.queued_items;
		s->sent_requests = ss.sent_files;
		s->failed_requests = ss.failed_requests;
		s->retries = ss.retries;
		s->last_status = ss.last_status;
		s->dropped_items[OTLP_DROP_QUEUE_FULL] = ss.dropped_items[SPOOL_DROP_OVERFLOW];
		s->dropped_items[OTLP_DROP_NON_RETRYABLE] = ss.dropped_items[SPOOL_DROP_REFUSED];
		s->dropped_items[OTLP_DROP_ERROR] = ss.dropped_items[SPOOL_DROP_IO];
		pthread_mutex_lock(&o->lock);
		for (d = 0; d < OTLP_DROP_MAX; d++)
			s->dropped_items[d] += sig->dropped[d];
		s->rejected_items = sig->rejected;
		s->partial_responses = sig->partial_responses;
		s->sent_items = ss.sent_items > sig->rejected ? ss.sent_items - sig->rejected : 0;
		s->pending_items = sig->writing + (sig->cur ? sig->cur->n : 0);
		for (b = sig->full; b; b = b->next)
			s->pending_items += b->n;
		pthread_mutex_unlock(&o->lock);
	}
}

void otlp__stop(struct otlp *o)
{
	struct otlp_batch *b, *next;
	int i;

	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	atomic_store(&o->stop, true);
	pthread_cond_broadcast(&o->writer_cond);
	pthread_mutex_unlock(&o->lock);
	/* the writer drains the batches into the queues before it exits */
	if (o->writer_started)
		pthread_join(o->writer, NULL);
	for (i = 0; i < OTLP_SIGNALS; i++) {
		struct otlp_sig *sig = &o->sig[i];

		spool__stop(sig->spool);
		for (b = sig->full; b; b = next) {
			next = b->next;
			otlp_batch__free(b);
		}
		otlp_batch__free(sig->cur);
	}
	pthread_cond_destroy(&o->writer_cond);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

/* ------------------------------------------------------------------ */
/* the tick sink */

static int otlp_sink_set(void *ctx, const struct metric_set *set, int64_t t_ms)
{
	return otlp__add_metrics(ctx, set, t_ms);
}

static int otlp_sink_describe(void *ctx, struct metric_set *set)
{
	struct metric_labels l;
	struct otlp_stats st;
	int i, d;

	otlp__stats(ctx, &st);
	for (i = 0; i < OTLP_SIGNALS; i++) {
		const struct otlp_signal_stats *s = &st.signal[i];

		metric_labels__init(&l);
		metric_labels__add(&l, "signal", otlp_signal_names[i]);
		metric_set__add_value(set, "novamon_otlp_queue_bytes",
				      "Bytes of OTLP requests waiting in the queue on disk.",
				      METRIC_GAUGE, &l, s->queued_bytes);
		metric_set__add_value(
			set, "novamon_otlp_sent_items_total",
			"Spans, data points or log records the OTLP backend accepted.",
			METRIC_COUNTER, &l, s->sent_items);
		metric_set__add_value(
			set, "novamon_otlp_rejected_items_total",
			"Items the OTLP backend rejected in partial-success responses.",
			METRIC_COUNTER, &l, s->rejected_items);
		metric_set__add_value(set, "novamon_otlp_retries_total",
				      "OTLP requests repeated after a retryable failure.",
				      METRIC_COUNTER, &l, s->retries);
		for (d = 0; d < OTLP_DROP_MAX; d++) {
			metric_labels__init(&l);
			metric_labels__add(&l, "signal", otlp_signal_names[i]);
			metric_labels__add(&l, "reason", otlp_drop_names[d]);
			metric_set__add_value(
				set, "novamon_otlp_dropped_items_total",
				"OTLP items dropped: writer backlog, queue full, non-retryable answer, or error.",
				METRIC_COUNTER, &l, s->dropped_items[d]);
		}
	}
	return 0;
}

struct tick_sink otlp__metrics_sink(struct otlp *o)
{
	return (struct tick_sink){
		.name = "otlp",
		.set = otlp_sink_set,
		.describe = otlp_sink_describe,
		.ctx = o,
	};
}
