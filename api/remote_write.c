/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write: the remote-write client (see remote_write.h).
 *
 * Callers of remote_write__enqueue() fill the current batch under the
 * mutex; the writer thread encodes full or due batches and pushes them to
 * the spool (spool.h), whose sender thread delivers them.
 */
#include <errno.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote.pb-c.h"
#include "metrics.h"
#include "remote_write.h"
#include "spool.h"

/* One sample with its labels copied: "name\0value\0name\0value\0", sorted by name. */
struct rw_sample {
	char *blob;
	size_t blob_len;
	size_t nlabels;
	int64_t t_ms;
	double v;
};

struct rw_batch {
	struct rw_batch *next;
	struct rw_sample *s;
	size_t n;
	size_t cap;
	int64_t born_ms; /* monotonic time of the first sample */
};

struct remote_write {
	size_t batch_max;
	int64_t delay_ms;
	struct spool *spool;

	pthread_mutex_t lock;
	pthread_cond_t writer_cond;
	struct rw_batch *cur;
	struct rw_batch *full; /* oldest first */
	struct rw_batch *full_tail;
	size_t nfull;
	bool flush_req;
	/* dropped before reaching the spool (refused enqueues, encoding failures) */
	uint64_t dropped_samples;
	uint64_t dropped_batches;
	atomic_bool stop;

	pthread_t writer;
	bool writer_started;
};

static int64_t rw_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cond until the monotonic deadline (ms). */
static void rw_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ms)
{
	struct timespec ts = {
		.tv_sec = deadline_ms / 1000,
		.tv_nsec = (deadline_ms % 1000) * 1000000,
	};

	pthread_cond_timedwait(cond, lock, &ts);
}

static struct rw_batch *rw_batch__free(struct rw_batch *b)
{
	size_t i;

	if (!b)
		return NULL;
	for (i = 0; i < b->n; i++)
		free(b->s[i].blob);
	free(b->s);
	free(b);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* encoding */

/*
 * Encode a batch as a snappy-compressed WriteRequest, one TimeSeries per run
 * of samples with the same labels. Returns 0 with *out (malloc'd) or -ENOMEM.
 */
static int rw_encode(const struct rw_batch *b, char **out, size_t *outlen)
{
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries *ts = NULL, **tsp = NULL;
	Prometheus__Label *lab = NULL, **labp = NULL;
	Prometheus__Sample *smp = NULL, **smpp = NULL;
	size_t i, k, nts = 0, nl = 0, plen, clen;
	uint8_t *packed = NULL;
	char *comp = NULL;
	int err = -ENOMEM;

	for (i = 0; i < b->n; i++)
		nl += b->s[i].nlabels;
	ts = calloc(b->n ? b->n : 1, sizeof(*ts));
	tsp = calloc(b->n ? b->n : 1, sizeof(*tsp));
	lab = calloc(nl ? nl : 1, sizeof(*lab));
	labp = calloc(nl ? nl : 1, sizeof(*labp));
	smp = calloc(b->n ? b->n : 1, sizeof(*smp));
	smpp = calloc(b->n ? b->n : 1, sizeof(*smpp));
	if (!ts || !tsp || !lab || !labp || !smp || !smpp)
		goto cleanup;
	nl = 0;
	for (i = 0; i < b->n; i++) {
		const struct rw_sample *s = &b->s[i];
		Prometheus__TimeSeries *t;
		char *p = s->blob;

		if (!i || s->blob_len != b->s[i - 1].blob_len ||
		    memcmp(s->blob, b->s[i - 1].blob, s->blob_len)) {
			t = &ts[nts];
			prometheus__time_series__init(t);
			tsp[nts++] = t;
			t->labels = &labp[nl];
			t->n_labels = s->nlabels;
			t->samples = &smpp[i];
			for (k = 0; k < s->nlabels; k++) {
				prometheus__label__init(&lab[nl]);
				lab[nl].name = p;
				p += strlen(p) + 1;
				lab[nl].value = p;
				p += strlen(p) + 1;
				labp[nl] = &lab[nl];
				nl++;
			}
		}
		t = &ts[nts - 1];
		prometheus__sample__init(&smp[i]);
		smp[i].timestamp = s->t_ms;
		smp[i].value = s->v;
		smpp[i] = &smp[i];
		t->n_samples++;
	}
	wr.n_timeseries = nts;
	wr.timeseries = tsp;
	plen = prometheus__write_request__get_packed_size(&wr);
	packed = malloc(plen ? plen : 1);
	if (!packed)
		goto cleanup;
	prometheus__write_request__pack(&wr, packed);
	clen = snappy_max_compressed_length(plen);
	comp = malloc(clen);
	if (!comp)
		goto cleanup;
	if (snappy_compress((const char *)packed, plen, comp, &clen) != SNAPPY_OK) {
		err = -EIO;
		goto cleanup;
	}
	*out = comp;
	*outlen = clen;
	comp = NULL;
	err = 0;
cleanup:
	free(comp);
	free(packed);
	free(ts);
	free(tsp);
	free(lab);
	free(labp);
	free(smp);
	free(smpp);
	return err;
}

/* Encode b and push it to the spool, which counts what it cannot keep. */
static void rw_write_batch(struct remote_write *rw, struct rw_batch *b)
{
	char *body = NULL;
	size_t len = 0;

	if (!b->n)
		return;
	if (rw_encode(b, &body, &len)) {
		pthread_mutex_lock(&rw->lock);
		rw->dropped_samples += b->n;
		rw->dropped_batches++;
		pthread_mutex_unlock(&rw->lock);
		return;
	}
	spool__push(rw->spool, body, len, b->n);
	free(body);
}

static void *rw_writer_main(void *arg)
{
	struct remote_write *rw = arg;
	struct rw_batch *take, *next;
	bool stopping;

	pthread_mutex_lock(&rw->lock);
	for (;;) {
		int64_t now = rw_mono_ms();

		stopping = atomic_load(&rw->stop);
		if (rw->cur && rw->cur->n &&
		    (stopping || rw->flush_req || now - rw->cur->born_ms >= rw->delay_ms)) {
			/* the current batch is due: move it to the full list */
			if (rw->full_tail)
				rw->full_tail->next = rw->cur;
			else
				rw->full = rw->cur;
			rw->full_tail = rw->cur;
			rw->nfull++;
			rw->cur = NULL;
		}
		rw->flush_req = false;
		if (rw->full) {
			take = rw->full;
			rw->full = rw->full_tail = NULL;
			rw->nfull = 0;
			pthread_mutex_unlock(&rw->lock);
			for (; take; take = next) {
				next = take->next;
				rw_write_batch(rw, take);
				rw_batch__free(take);
			}
			pthread_mutex_lock(&rw->lock);
			continue;
		}
		if (stopping)
			break;
		if (rw->cur && rw->cur->n)
			rw_wait_until(&rw->writer_cond, &rw->lock, rw->cur->born_ms + rw->delay_ms);
		else
			pthread_cond_wait(&rw->writer_cond, &rw->lock);
	}
	pthread_mutex_unlock(&rw->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* API */

struct remote_write *remote_write__start(const struct remote_write_opts *opts)
{
	static const struct spool_encoding snappy = { "rw", "Content-Encoding: snappy" };
	struct spool_opts so = {
		.encodings = &snappy,
		.nencodings = 1,
		.retryable = spool_retry_remote_write,
	};
	struct remote_write *rw = NULL;
	const char **headers = NULL;
	pthread_condattr_t ca;
	int err = -EINVAL;

	if (!opts || !opts->url || !opts->queue_dir || !opts->url[0] || !opts->queue_dir[0] ||
	    (opts->nheaders && !opts->headers))
		goto fail;
	err = -ENOMEM;
	rw = calloc(1, sizeof(*rw));
	if (!rw)
		goto fail;
	pthread_mutex_init(&rw->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rw->writer_cond, &ca);
	pthread_condattr_destroy(&ca);
	headers = calloc(opts->nheaders + 2, sizeof(*headers));
	if (!headers)
		goto fail;
	rw->batch_max = opts->batch_max_samples ? opts->batch_max_samples :
						  REMOTE_WRITE_BATCH_MAX_SAMPLES;
	rw->delay_ms = opts->batch_max_delay_ms > 0 ? opts->batch_max_delay_ms :
						      REMOTE_WRITE_BATCH_MAX_DELAY_MS;

	memcpy(headers, opts->headers, opts->nheaders * sizeof(*headers));
	headers[opts->nheaders] = "Content-Type: application/x-protobuf";
	headers[opts->nheaders + 1] = "X-Prometheus-Remote-Write-Version: 0.1.0";
	so.url = opts->url;
	so.dir = opts->queue_dir;
	so.headers = headers;
	so.nheaders = opts->nheaders + 2;
	so.max_bytes = opts->queue_max_bytes ? opts->queue_max_bytes : REMOTE_WRITE_QUEUE_MAX_BYTES;
	so.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : REMOTE_WRITE_TIMEOUT_MS;
	so.backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms :
						       REMOTE_WRITE_BACKOFF_MIN_MS;
	so.backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms :
						       REMOTE_WRITE_BACKOFF_MAX_MS;
	so.tls_skip_verify = opts->tls_skip_verify;
	rw->spool = spool__start(&so);
	if (!rw->spool) {
		err = -errno;
		goto fail;
	}
	err = -pthread_create(&rw->writer, NULL, rw_writer_main, rw);
	if (err)
		goto fail;
	rw->writer_started = true;
	free(headers);
	return rw;
fail:
	free(headers);
	remote_write__stop(rw);
	errno = -err;
	return NULL;
}

/* Copy labels (empty values dropped) sorted by name into one blob. */
static int rw_sample_init(struct rw_sample *s, const struct tsdb_label *labels, size_t nlabels)
{
	size_t order[TSDB_MAX_LABELS], i, j, n = 0, len = 0;
	bool name = false;
	char *p;

	if (nlabels > TSDB_MAX_LABELS)
		return -EINVAL;
	for (i = 0; i < nlabels; i++) {
		if (!labels[i].name || !labels[i].value || !labels[i].name[0])
			return -EINVAL;
		if (!labels[i].value[0])
			continue;
		if (!strcmp(labels[i].name, TSDB_NAME_LABEL))
			name = true;
		/* insertion sort by name */
		for (j = n; j > 0 && strcmp(labels[order[j - 1]].name, labels[i].name) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
		n++;
		len += strlen(labels[i].name) + strlen(labels[i].value) + 2;
	}
	if (!name)
		return -EINVAL;
	s->blob = malloc(len);
	if (!s->blob)
		return -ENOMEM;
	p = s->blob;
	for (i = 0; i < n; i++) {
		const struct tsdb_label *l = &labels[order[i]];
		size_t a = strlen(l->name) + 1, b = strlen(l->value) + 1;

		memcpy(p, l->name, a);
		memcpy(p + a, l->value, b);
		p += a + b;
	}
	s->blob_len = len;
	s->nlabels = n;
	return 0;
}

int remote_write__enqueue(struct remote_write *rw, const struct tsdb_label *labels, size_t nlabels,
			  int64_t t_ms, double v)
{
	struct rw_sample s;
	struct rw_batch *b;
	int err;

	if (!rw || (!labels && nlabels))
		return -EINVAL;
	err = rw_sample_init(&s, labels, nlabels);
	if (err)
		return err;
	s.t_ms = t_ms;
	s.v = v;
	pthread_mutex_lock(&rw->lock);
	if (rw->nfull >= REMOTE_WRITE_MAX_PENDING_BATCHES) {
		rw->dropped_samples++;
		err = -ENOBUFS;
		goto out;
	}
	b = rw->cur;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b)
			b->s = malloc(rw->batch_max * sizeof(*b->s));
		if (!b || !b->s) {
			free(b);
			err = -ENOMEM;
			goto out;
		}
		b->cap = rw->batch_max;
		b->born_ms = rw_mono_ms();
		rw->cur = b;
		/* the writer now has a deadline to wait for */
		pthread_cond_signal(&rw->writer_cond);
	}
	b->s[b->n++] = s;
	s.blob = NULL;
	if (b->n == b->cap) {
		if (rw->full_tail)
			rw->full_tail->next = b;
		else
			rw->full = b;
		rw->full_tail = b;
		rw->nfull++;
		rw->cur = NULL;
		pthread_cond_signal(&rw->writer_cond);
	}
out:
	pthread_mutex_unlock(&rw->lock);
	free(s.blob);
	return err;
}

void remote_write__flush(struct remote_write *rw)
{
	if (!rw)
		return;
	pthread_mutex_lock(&rw->lock);
	rw->flush_req = true;
	pthread_cond_signal(&rw->writer_cond);
	pthread_mutex_unlock(&rw->lock);
}

void remote_write__stats(struct remote_write *rw, struct remote_write_stats *st)
{
	struct spool_stats ss;
	struct rw_batch *b;
	int why;

	spool__stats(rw->spool, &ss);
	memset(st, 0, sizeof(*st));
	st->queued_bytes = ss.queued_bytes;
	st->queued_files = ss.queued_files;
	st->sent_samples = ss.sent_items;
	st->sent_batches = ss.sent_files;
	st->failed_requests = ss.failed_requests;
	st->retries = ss.retries;
	st->last_status = ss.last_status;
	for (why = 0; why < SPOOL_DROP_MAX; why++) {
		st->dropped_samples += ss.dropped_items[why];
		st->dropped_batches += ss.dropped_files[why];
	}
	pthread_mutex_lock(&rw->lock);
	st->dropped_samples += rw->dropped_samples;
	st->dropped_batches += rw->dropped_batches;
	st->pending_samples = rw->cur ? rw->cur->n : 0;
	for (b = rw->full; b; b = b->next)
		st->pending_samples += b->n;
	pthread_mutex_unlock(&rw->lock);
}

void remote_write__stop(struct remote_write *rw)
{
	struct rw_batch *b, *next;

	if (!rw)
		return;
	pthread_mutex_lock(&rw->lock);
	atomic_store(&rw->stop, true);
	pthread_cond_broadcast(&rw->writer_cond);
	pthread_mutex_unlock(&rw->lock);
	/* the writer drains the batches into the spool before it exits */
	if (rw->writer_started)
		pthread_join(rw->writer, NULL);
	spool__stop(rw->spool);
	for (b = rw->full; b; b = next) {
		next = b->next;
		rw_batch__free(b);
	}
	rw_batch__free(rw->cur);
	pthread_cond_destroy(&rw->writer_cond);
	pthread_mutex_destroy(&rw->lock);
	free(rw);
}

/* The tick's samples into the client, and its counters into /metrics. */
static int rw_sink_sample(void *ctx, const struct tsdb_label *labels, size_t nlabels, int64_t t_ms,
			  double v)
{
	return remote_write__enqueue(ctx, labels, nlabels, t_ms, v);
}

static int rw_sink_flush(void *ctx, int64_t now_ms)
{
	(void)now_ms;
	remote_write__flush(ctx);
	return 0;
}

static int rw_sink_describe(void *ctx, struct metric_set *set)
{
	struct remote_write_stats st;

	remote_write__stats(ctx, &st);
	metric_set__add_value(set, "novamon_remote_write_queue_bytes",
			      "Bytes waiting in the remote-write queue on disk.", METRIC_GAUGE,
			      NULL, st.queued_bytes);
	metric_set__add_value(set, "novamon_remote_write_pending_samples",
			      "Samples in memory not yet written to the queue.", METRIC_GAUGE, NULL,
			      st.pending_samples);
	metric_set__add_value(set, "novamon_remote_write_sent_samples_total",
			      "Samples the backend acknowledged.", METRIC_COUNTER, NULL,
			      st.sent_samples);
	metric_set__add_value(set, "novamon_remote_write_failed_requests_total",
			      "Remote-write requests that failed (non-2xx or transport error).",
			      METRIC_COUNTER, NULL, st.failed_requests);
	metric_set__add_value(set, "novamon_remote_write_retries_total",
			      "Remote-write requests retried.", METRIC_COUNTER, NULL, st.retries);
	metric_set__add_value(set, "novamon_remote_write_dropped_samples_total",
			      "Samples dropped (4xx answers, queue overflow).", METRIC_COUNTER,
			      NULL, st.dropped_samples);
	return 0;
}

struct tick_sink remote_write__sink(struct remote_write *rw)
{
	return (struct tick_sink){
		.name = "remote_write",
		.sample = rw_sink_sample,
		.flush = rw_sink_flush,
		.describe = rw_sink_describe,
		.ctx = rw,
	};
}
