/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws: the WebSocket feeds (see ws.h for what they do, ws_proto.h for the
 * messages).
 *
 * Threads and what they own:
 *   - the tick thread only rings the bell (ws->bell_lock, held for a few
 *     instructions): ws__sink()'s flush never waits for an evaluation;
 *   - the evaluator thread evaluates streams (PromQL, without any lock),
 *     interns their label sets, renders the shared messages and publishes
 *     each evaluation as an immutable struct ws_state into the stream's ring;
 *   - the lws service thread owns every connection (struct ws_conn, lws
 *     per-session data) and its subscriptions, and writes.
 * ws->lock guards the streams, their rings, intern tables and rendered-message
 * caches, and the reference counts of states; it is held for lookups and
 * pointer updates, and on the network thread for rendering a delta nobody
 * rendered before (a subscriber that fell behind), never for an evaluation
 * or a socket write. Rendered messages (struct ws_blob) are immutable and
 * reference-counted with atomics, so a write needs no lock.
 *
 * A connection holds no queue of data: each subscription remembers the seq
 * it last sent, and on WRITEABLE gets the next message computed from the
 * stream's ring. Live subscribers all want "the delta from the previous
 * evaluation", which the evaluator rendered once; the network thread only
 * copies the subscription's id in front of it.
 */
#include <errno.h>
#include <libwebsockets.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "auth.h"
#include "metrics.h"
#include "promql/promql.h"
#include "router.h"
#include "ws.h"

#define WS_DEFAULT_MAX_MESSAGE (64u * 1024)
#define WS_DEFAULT_SOFT_BYTES (256u * 1024)
#define WS_DEFAULT_STALL_S 10
#define WS_DEFAULT_PING_S 30
#define WS_DEFAULT_PONG_S 10
#define WS_DEFAULT_HISTORY_S 60
#define WS_DEFAULT_MAX_SUBS 64
#define WS_DEFAULT_MAX_SERIES 20000
/* Per-connection receive buffer of lws: longer messages arrive in pieces. */
#define WS_RX_BUFFER 1024
/* Bytes composed for one write before the rest waits for the next WRITEABLE. */
#define WS_WRITE_BATCH (64u * 1024)
/* Due connections in a round below which the network thread writes them alone. */
#define WS_FANOUT_MIN 256
/* The senders' nice value (ws_sender_thread). */
#define WS_SENDER_NICE 10
/* Connections a writer of the round takes at a time. */
#define WS_FANOUT_CHUNK 32
/* How far ahead of the round's walk a connection starts loading. */
#define WS_WALK_AHEAD 8
#define WS_MAX_SENDERS 16
/* Bytes written between two looks at the kernel's unsent bytes. */
#define WS_OUTQ_CHECK (32u * 1024)
/* Largest send(); a longer write (a big full state) goes out in such pieces. */
#define WS_TX_PACKET (256u * 1024)
/* Rendered messages kept per evaluation: (base seq, encoding) pairs. */
#define WS_CACHE_SLOTS 8
#define WS_STREAM_BUCKETS 1024
#define WS_PATH_METRICS "/ws/metrics"
#define WS_PATH_DASHBOARDS "/ws/dashboards/"
/* After the reason of a close is sent, how long lws may take to flush it. */
#define WS_CLOSE_GRACE_S 5

/* A rendered message tail, shared by every subscriber that sends it. */
struct ws_blob {
	atomic_uint refs;
	uint32_t len;
	char data[];
};

struct ws_cached {
	struct ws_blob *blob;
	uint64_t base; /* seq of the state it is the delta from; 0: the full state */
	enum ws_proto_encoding enc;
};

struct ws_stream;

/* One evaluation of a stream; immutable once in the ring. */
struct ws_state {
	struct ws_stream *stream;
	uint64_t seq;
	int64_t t_ms;
	unsigned int refs; /* ws->lock */
	size_t n;
	struct ws_point *pts; /* sorted by ws_proto_series_cmp() */
	struct ws_cached cache[WS_CACHE_SLOTS]; /* ws->lock */
	unsigned int ncache;
	unsigned int next_slot;
};

/* One distinct (query, tenant): its expression, history and interned label sets. */
struct ws_stream {
	struct ws_stream *hnext; /* bucket chain */
	struct ws_stream *next; /* ws->streams */
	uint32_t hash;
	char *query;
	char tenant[sizeof(((struct auth_principal *)0)->tenant)];
	struct promql_expr *expr; /* scoped; read by the evaluator only */
	unsigned int nsubs;
	int64_t idle_since_ms;
	bool evaluated;
	/* the ring of held evaluations, oldest at head */
	struct ws_state **ring;
	unsigned int cap, head, n;
	atomic_uint_fast64_t latest; /* seq of the newest, 0: none */
	/* the last evaluation error and its seq */
	char error[256];
	atomic_uint_fast64_t error_seq;
	/* interned label sets, by hash */
	struct ws_series **itab;
	size_t ibuckets, icount;
	uint32_t next_index;
	/*
	 * A fan-out round's view, set and cleared by the network thread with
	 * ws->lock (ws_round_begin/end) while no sender runs: the newest state
	 * and the one before it, each with a reference, and the delta between
	 * them per encoding, rendered by the first sender that needs it (with
	 * ws->lock) and read by the others without it.
	 */
	struct ws_state *rnd_cur, *rnd_prev;
	_Atomic(struct ws_blob *) rnd_blob[2];
};

struct ws_sub {
	struct ws_sub *next;
	struct ws_stream *st;
	uint64_t last_seq; /* of the last data message sent; 0: none (the next is full) */
	uint64_t err_seen; /* the stream error_seq already reported */
	unsigned int refresh; /* seconds between messages (dashboards) */
	bool dashboard; /* always the newest state at its interval */
	enum ws_proto_encoding head_enc; /* of head */
	struct ws_buf head; /* the data message head with this id, rendered once */
	size_t idlen;
	char id[WS_PROTO_MAX_ID + 1];
};

struct ws_reply {
	struct ws_reply *next;
	size_t len;
	char data[];
};

/* Per connection: lws' per-session data, zeroed by lws. */
struct ws_conn {
	struct lws *wsi;
	int fd;
	size_t slot; /* its place in ws->conns while in_list */
	struct ws_sub *subs;
	unsigned int nsubs;
	struct ws_reply *rq_head, *rq_tail;
	unsigned int nreplies;
	char *rx; /* a message arriving in pieces */
	size_t rx_len;
	struct ws_widget *widgets; /* from the upgrade to ESTABLISHED */
	int nwidgets;
	int64_t last_rx_ms;
	int64_t ping_sent_ms;
	int64_t ping_early_ms; /* this ping comes this much before ping_seconds */
	int64_t over_since_ms; /* undelivered bytes above soft_bytes since */
	int64_t want_since_ms; /* asked for WRITEABLE and not had it since */
	size_t unchecked; /* bytes written since the kernel's queue was last looked at */
	unsigned int bad; /* bad messages in a row */
	uint16_t close_code;
	bool in_list;
	bool dashboard;
	bool authed;
	bool want_ping;
	bool lagging; /* was over soft_bytes: coalesce until caught up */
	bool peer_closed; /* the client sent a close */
	bool tls; /* lws must write: no send() of our own */
	/* a sender's outcome for this connection in the round (ws_send_chunks) */
	bool tx_failed, tx_more;
	char *tx_rest; /* LWS_PRE, then what the kernel did not take */
	size_t tx_rest_len;
	enum ws_proto_encoding enc;
	char close_reason[100];
	struct auth_principal who;
};

struct ws {
	struct ws_opts o;
	struct lws_protocols protocol;

	pthread_mutex_t lock;
	struct lws_context *ctx; /* set by PROTOCOL_INIT; ws->lock */
	struct ws_stream *streams;
	struct ws_stream *buckets[WS_STREAM_BUCKETS];
	size_t nstreams;

	/* the evaluator's bell */
	pthread_mutex_t bell_lock;
	pthread_cond_t bell;
	int64_t tick_ms; /* pending tick */
	bool tick_pending;
	bool fresh_pending; /* a stream waits for its first evaluation */
	bool quit;
	pthread_t thread;
	bool thread_started;
	int64_t last_tick_ms; /* evaluator thread */
	atomic_int kick; /* new evaluations: the network thread looks at its connections */

	/* the senders that write a round's fan-out beside the network thread */
	struct ws_sender *senders;
	unsigned int nsenders;
	pthread_mutex_t fan_lock;
	pthread_cond_t fan_go, fan_done;
	unsigned int fan_gen, fan_left;
	bool fan_quit;
	struct ws_conn **fan; /* the round's connections for them; network thread */
	size_t fan_n, fan_cap;
	atomic_size_t fan_next; /* the next connection of the round nobody took */
	atomic_size_t fan_pub; /* connections of ws->fan the senders may take */
	atomic_bool fan_walking; /* the network thread may still add some */
	uint64_t rng; /* network thread: ping jitter */
	int64_t fan_now;
	_Atomic double fanout_seconds;

	/* network thread only */
	struct ws_conn **conns; /* every established connection, in no order */
	size_t nconns, conns_cap;
	struct ws_buf out; /* LWS_PRE headroom, then the frame */
	struct ws_proto_request req;

	atomic_uint_fast64_t n_conns, n_subs, n_messages, n_coalesced, n_dropped, n_eval_errors;
	_Atomic double eval_seconds;
};

/* A thread that writes its slice of each round's connections (ws_fanout). */
struct ws_sender {
	struct ws *ws;
	pthread_t thread;
	int cpu; /* the CPU it is pinned to, -1: none */
	bool started;
	struct ws_buf out;
};

static int64_t ws_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t ws_hash(const void *data, size_t len, uint32_t h)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* ------------------------------------------------------------------------ */
/* Rendered messages and states (ws->lock unless said otherwise) */

static struct ws_blob *ws_blob_new(const struct ws_buf *b)
{
	struct ws_blob *blob;

	if (b->err || b->len > UINT32_MAX)
		return NULL;
	blob = malloc(sizeof(*blob) + b->len);
	if (!blob)
		return NULL;
	atomic_init(&blob->refs, 1);
	blob->len = (uint32_t)b->len;
	memcpy(blob->data, b->p, b->len);
	return blob;
}

/* Any thread, no lock. */
static void ws_blob_put(struct ws_blob *blob)
{
	if (blob && atomic_fetch_sub(&blob->refs, 1) == 1)
		free(blob);
}

static void ws_series_put(struct ws_stream *st, struct ws_series *s)
{
	struct ws_series **pp;

	if (--s->refs)
		return;
	for (pp = &st->itab[s->hash & (st->ibuckets - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	st->icount--;
	free(s);
}

static void ws_state_put(struct ws_state *state)
{
	size_t i;

	if (!state || --state->refs)
		return;
	for (i = 0; i < state->n; i++)
		ws_series_put(state->stream, (struct ws_series *)state->pts[i].s);
	for (i = 0; i < state->ncache; i++)
		ws_blob_put(state->cache[i].blob);
	free(state->pts);
	free(state);
}

static struct ws_state *ws_ring_at(const struct ws_stream *st, unsigned int i)
{
	return st->ring[(st->head + i) % st->cap];
}

static struct ws_state *ws_newest(const struct ws_stream *st)
{
	return st->n ? ws_ring_at(st, st->n - 1) : NULL;
}

/* The held state with this seq, and its position in *pos; NULL when not held. */
static struct ws_state *ws_find_state(const struct ws_stream *st, uint64_t seq, unsigned int *pos)
{
	unsigned int lo = 0, hi = st->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		struct ws_state *s = ws_ring_at(st, mid);

		if (s->seq == seq) {
			if (pos)
				*pos = mid;
			return s;
		}
		if (s->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct ws_blob *ws_cache_find(struct ws_state *s, uint64_t base, enum ws_proto_encoding enc)
{
	unsigned int i;

	for (i = 0; i < s->ncache; i++)
		if (s->cache[i].base == base && s->cache[i].enc == enc)
			return s->cache[i].blob;
	return NULL;
}

/* Keep blob (the reference is the cache's) in s, replacing the oldest entry when full. */
static void ws_cache_add(struct ws_state *s, uint64_t base, enum ws_proto_encoding enc,
			 struct ws_blob *blob)
{
	struct ws_cached *c;

	if (s->ncache < WS_CACHE_SLOTS) {
		c = &s->cache[s->ncache++];
	} else {
		c = &s->cache[s->next_slot];
		s->next_slot = (s->next_slot + 1) % WS_CACHE_SLOTS;
		ws_blob_put(c->blob);
	}
	c->blob = blob;
	c->base = base;
	c->enc = enc;
}

/* Render the tail of cur as a delta from base (NULL: full). */
static struct ws_blob *ws_render(const struct ws_state *base, const struct ws_state *cur,
				 enum ws_proto_encoding enc)
{
	struct ws_buf b = { 0 };
	struct ws_blob *blob;

	ws_proto_data_tail(&b, enc, cur->seq, cur->t_ms, !base, base ? base->pts : NULL,
			   base ? base->n : 0, cur->pts, cur->n);
	blob = ws_blob_new(&b);
	ws_buf_free(&b);
	return blob;
}

/*
 * The message tail for cur as a delta from base (NULL: full), from the cache
 * or rendered now. Returns a new reference, or NULL on ENOMEM.
 */
static struct ws_blob *ws_get_blob(struct ws_state *base, struct ws_state *cur,
				   enum ws_proto_encoding enc)
{
	uint64_t key = base ? base->seq : 0;
	struct ws_blob *blob = ws_cache_find(cur, key, enc);

	if (!blob) {
		blob = ws_render(base, cur, enc);
		if (!blob)
			return NULL;
		ws_cache_add(cur, key, enc, blob);
	}
	atomic_fetch_add(&blob->refs, 1);
	return blob;
}

/* ------------------------------------------------------------------------ */
/* Streams (ws->lock) */

static struct ws_stream *ws_stream_find(struct ws *ws, const char *query, const char *tenant,
					uint32_t hash)
{
	struct ws_stream *st;

	for (st = ws->buckets[hash % WS_STREAM_BUCKETS]; st; st = st->hnext)
		if (st->hash == hash && !strcmp(st->query, query) && !strcmp(st->tenant, tenant))
			return st;
	return NULL;
}

static void ws_stream_free(struct ws_stream *st)
{
	unsigned int i;

	if (!st)
		return;
	for (i = 0; i < st->n; i++)
		ws_state_put(ws_ring_at(st, i));
	free(st->ring);
	free(st->itab);
	promql_expr__free(st->expr);
	free(st->query);
	free(st);
}

static struct ws_stream *ws_stream_new(struct ws *ws, const char *query, const char *tenant,
				       uint32_t hash, struct promql_expr *expr)
{
	struct ws_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->query = strdup(query);
	st->cap = ws->o.history_seconds;
	st->ring = calloc(st->cap, sizeof(*st->ring));
	st->ibuckets = 64;
	st->itab = calloc(st->ibuckets, sizeof(*st->itab));
	if (!st->query || !st->ring || !st->itab) {
		ws_stream_free(st);
		return NULL;
	}
	snprintf(st->tenant, sizeof(st->tenant), "%s", tenant);
	st->hash = hash;
	st->expr = expr;
	atomic_init(&st->latest, 0);
	atomic_init(&st->error_seq, 0);
	st->hnext = ws->buckets[hash % WS_STREAM_BUCKETS];
	ws->buckets[hash % WS_STREAM_BUCKETS] = st;
	st->next = ws->streams;
	ws->streams = st;
	ws->nstreams++;
	return st;
}

static void ws_stream_unlink(struct ws *ws, struct ws_stream *st)
{
	struct ws_stream **pp;

	for (pp = &ws->buckets[st->hash % WS_STREAM_BUCKETS]; *pp; pp = &(*pp)->hnext) {
		if (*pp == st) {
			*pp = st->hnext;
			break;
		}
	}
	for (pp = &ws->streams; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
	ws->nstreams--;
}

/* The interned label set of json (len bytes), with a new reference; NULL on ENOMEM. */
static struct ws_series *ws_intern(struct ws_stream *st, const char *json, size_t len,
				   uint32_t hash)
{
	struct ws_series *s;

	for (s = st->itab[hash & (st->ibuckets - 1)]; s; s = s->next) {
		if (s->hash == hash && s->len == len && !memcmp(s->json, json, len)) {
			s->refs++;
			return s;
		}
	}
	if (st->icount >= st->ibuckets) {
		size_t nb = st->ibuckets * 2, i;
		struct ws_series **tab = calloc(nb, sizeof(*tab));

		if (tab) {
			for (i = 0; i < st->ibuckets; i++) {
				while (st->itab[i]) {
					struct ws_series *x = st->itab[i];

					st->itab[i] = x->next;
					x->next = tab[x->hash & (nb - 1)];
					tab[x->hash & (nb - 1)] = x;
				}
			}
			free(st->itab);
			st->itab = tab;
			st->ibuckets = nb;
		}
	}
	s = malloc(sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	s->refs = 1;
	s->hash = hash;
	s->len = (uint32_t)len;
	s->index = st->next_index++;
	memcpy(s->json, json, len);
	s->json[len] = '\0';
	s->next = st->itab[hash & (st->ibuckets - 1)];
	st->itab[hash & (st->ibuckets - 1)] = s;
	st->icount++;
	return s;
}

/* ------------------------------------------------------------------------ */
/* The evaluator */

/* One series of a result before interning: its label JSON at off in a shared buffer. */
struct ws_raw {
	size_t off;
	uint32_t len;
	uint32_t hash;
	double v;
};

static int ws_raw_cmp(const void *a, const void *b, void *arg)
{
	const struct ws_raw *x = a, *y = b;
	const char *base = arg;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(base + x->off, base + y->off, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void ws_set_error(struct ws *ws, struct ws_stream *st, uint64_t seq, const char *msg)
{
	pthread_mutex_lock(&ws->lock);
	if (strcmp(st->error, msg) || atomic_load(&st->error_seq) <= atomic_load(&st->latest)) {
		snprintf(st->error, sizeof(st->error), "%s", msg);
		atomic_store(&st->error_seq, seq);
	}
	st->evaluated = true;
	pthread_mutex_unlock(&ws->lock);
	atomic_fetch_add(&ws->n_eval_errors, 1);
}

/*
 * Turn a result into sorted raw series with their label JSON in lb.
 * Returns the count, or -EINVAL (with err) for a result that cannot stream.
 */
static long ws_flatten(const struct ws *ws, const struct promql_result *r, struct ws_buf *lb,
		       struct ws_raw **out, char *err, size_t errlen)
{
	const char *names[TSDB_MAX_LABELS + 1], *values[TSDB_MAX_LABELS + 1];
	struct ws_raw *raw;
	size_t n, i, j, k;

	*out = NULL;
	if (r->type == PROMQL_MATRIX) {
		snprintf(err, errlen,
			 "a range vector cannot be streamed: wrap it in a function such as rate()");
		return -EINVAL;
	}
	if (r->type == PROMQL_STRING) {
		snprintf(err, errlen, "a string result cannot be streamed");
		return -EINVAL;
	}
	n = r->type == PROMQL_SCALAR ? 1 : r->nseries;
	if (n > ws->o.max_series) {
		snprintf(err, errlen, "the result has %zu series, more than the %u a feed streams",
			 n, ws->o.max_series);
		return -EINVAL;
	}
	raw = calloc(n ? n : 1, sizeof(*raw));
	if (!raw)
		return -ENOMEM;
	for (i = 0, k = 0; i < n; i++) {
		const struct promql_series *s = r->type == PROMQL_SCALAR ? NULL : &r->series[i];
		size_t nl = 0;

		if (s && !s->n)
			continue;
		for (j = 0; s && j < s->nlabels && nl < TSDB_MAX_LABELS + 1; j++) {
			names[nl] = s->labels[j].name;
			values[nl++] = s->labels[j].value;
		}
		raw[k].off = lb->len;
		ws_proto_labels_json(lb, names, values, nl);
		raw[k].len = (uint32_t)(lb->len - raw[k].off);
		raw[k].v = s ? s->v[s->n - 1] : r->scalar;
		k++;
	}
	if (lb->err) {
		free(raw);
		return -ENOMEM;
	}
	for (i = 0; i < k; i++)
		raw[i].hash = ws_hash(lb->p + raw[i].off, raw[i].len, 2166136261u);
	qsort_r(raw, k, sizeof(*raw), ws_raw_cmp, lb->p);
	*out = raw;
	return (long)k;
}

/* Evaluate one stream at t_ms and publish the evaluation. */
static void ws_eval_stream(struct ws *ws, struct ws_stream *st, int64_t t_ms)
{
	uint64_t seq = (uint64_t)(t_ms / 1000);
	struct promql_result *r = NULL;
	struct ws_state *state = NULL, *prev = NULL, *old = NULL;
	struct ws_blob *full = NULL, *delta = NULL;
	struct ws_buf lb = { 0 };
	struct ws_raw *raw = NULL;
	char err[256] = "";
	long n = 0, i, k;
	int e;

	if (atomic_load(&st->latest) >= seq)
		return; /* a fresh stream's first evaluation already covered this second */
	e = promql_eval_instant(ws->o.engine, st->expr, t_ms, &r, err, sizeof(err));
	if (!e)
		n = ws_flatten(ws, r, &lb, &raw, err, sizeof(err));
	promql_result__free(r);
	if (e || n < 0) {
		if (!err[0])
			snprintf(err, sizeof(err), "evaluation failed: %s",
				 strerror(e ? -e : (int)-n));
		ws_set_error(ws, st, seq, err);
		goto out;
	}

	state = calloc(1, sizeof(*state));
	if (!state || !(state->pts = calloc(n ? (size_t)n : 1, sizeof(*state->pts)))) {
		ws_set_error(ws, st, seq, "out of memory");
		goto out;
	}
	state->stream = st;
	state->seq = seq;
	state->t_ms = t_ms;
	state->refs = 1;

	pthread_mutex_lock(&ws->lock);
	for (i = 0, k = 0; i < n; i++) {
		struct ws_series *s;

		if (k && state->pts[k - 1].s->len == raw[i].len &&
		    !memcmp(state->pts[k - 1].s->json, lb.p + raw[i].off, raw[i].len))
			continue; /* a repeated label set: the first one wins */
		s = ws_intern(st, lb.p + raw[i].off, raw[i].len, raw[i].hash);
		if (!s)
			break;
		state->pts[k].s = s;
		state->pts[k++].v = raw[i].v;
	}
	state->n = (size_t)k;
	prev = ws_newest(st);
	if (prev)
		prev->refs++;
	pthread_mutex_unlock(&ws->lock);
	if (i < n) {
		pthread_mutex_lock(&ws->lock);
		ws_state_put(state);
		ws_state_put(prev);
		pthread_mutex_unlock(&ws->lock);
		state = NULL;
		ws_set_error(ws, st, seq, "out of memory");
		goto out;
	}

	/* what every live subscriber will send, rendered once, outside the lock */
	full = ws_render(NULL, state, WS_ENC_JSON);
	if (prev)
		delta = ws_render(prev, state, WS_ENC_JSON);

	pthread_mutex_lock(&ws->lock);
	if (full)
		ws_cache_add(state, 0, WS_ENC_JSON, full);
	if (delta)
		ws_cache_add(state, prev->seq, WS_ENC_JSON, delta);
	if (st->n == st->cap) {
		old = st->ring[st->head];
		st->head = (st->head + 1) % st->cap;
		st->n--;
	}
	st->ring[(st->head + st->n) % st->cap] = state; /* the ring takes our reference */
	st->n++;
	atomic_store(&st->latest, seq);
	st->evaluated = true;
	ws_state_put(old);
	ws_state_put(prev);
	pthread_mutex_unlock(&ws->lock);
out:
	free(raw);
	ws_buf_free(&lb);
}

/* Free the streams nobody has subscribed to for history_seconds (ws->lock). */
static void ws_gc_streams(struct ws *ws, int64_t now_ms)
{
	struct ws_stream *st = ws->streams, *next;

	for (; st; st = next) {
		next = st->next;
		if (st->nsubs || now_ms - st->idle_since_ms < (int64_t)ws->o.history_seconds * 1000)
			continue;
		ws_stream_unlink(ws, st);
		ws_stream_free(st);
	}
}

static void *ws_eval_thread(void *arg)
{
	struct ws *ws = arg;
	struct ws_stream **due = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&ws->bell_lock);
	for (;;) {
		struct timespec t0, t1;
		struct ws_stream *st;
		bool tick;
		int64_t t;
		size_t n = 0, i;

		while (!ws->quit && !ws->tick_pending && !ws->fresh_pending)
			pthread_cond_wait(&ws->bell, &ws->bell_lock);
		if (ws->quit)
			break;
		tick = ws->tick_pending;
		if (tick)
			ws->last_tick_ms = ws->tick_ms;
		t = ws->last_tick_ms;
		ws->tick_pending = false;
		ws->fresh_pending = false;
		pthread_mutex_unlock(&ws->bell_lock);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		pthread_mutex_lock(&ws->lock);
		if (t) {
			for (st = ws->streams; st; st = st->next) {
				if (!tick && st->evaluated)
					continue;
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 64;
					struct ws_stream **p = realloc(due, nc * sizeof(*p));

					if (!p)
						break;
					due = p;
					cap = nc;
				}
				due[n++] = st;
			}
		}
		pthread_mutex_unlock(&ws->lock);

		/* only this thread frees streams: the pointers stay valid */
		for (i = 0; i < n; i++)
			ws_eval_stream(ws, due[i], t);

		pthread_mutex_lock(&ws->lock);
		if (tick)
			ws_gc_streams(ws, ws_now_ms());
		if (ws->ctx && n) {
			atomic_store(&ws->kick, 1);
			lws_cancel_service(ws->ctx);
		}
		pthread_mutex_unlock(&ws->lock);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (tick)
			atomic_store(&ws->eval_seconds, (double)(t1.tv_sec - t0.tv_sec) +
								(t1.tv_nsec - t0.tv_nsec) / 1e9);
		pthread_mutex_lock(&ws->bell_lock);
	}
	pthread_mutex_unlock(&ws->bell_lock);
	free(due);
	return NULL;
}

static int ws_sink_flush(void *ctx, int64_t now_ms)
{
	struct ws *ws = ctx;

	pthread_mutex_lock(&ws->bell_lock);
	ws->tick_ms = now_ms - now_ms % 1000;
	ws->tick_pending = true;
	pthread_cond_signal(&ws->bell);
	pthread_mutex_unlock(&ws->bell_lock);
	return 0;
}

static int ws_sink_describe(void *ctx, struct metric_set *set)
{
	struct ws_stats s;

	ws__stats(ctx, &s);
	metric_set__add_value(set, "novamon_ws_connections", "Open WebSocket feed connections.",
			      METRIC_GAUGE, NULL, (double)s.connections);
	metric_set__add_value(set, "novamon_ws_subscriptions",
			      "Open subscriptions of the WebSocket feeds.", METRIC_GAUGE, NULL,
			      (double)s.subscriptions);
	metric_set__add_value(set, "novamon_ws_streams",
			      "Distinct (query, tenant) pairs the feeds evaluate each second.",
			      METRIC_GAUGE, NULL, (double)s.streams);
	metric_set__add_value(set, "novamon_ws_messages_total",
			      "Data messages written to WebSocket clients.", METRIC_COUNTER, NULL,
			      (double)s.messages);
	metric_set__add_value(set, "novamon_ws_coalesced_total",
			      "Data messages that skipped evaluations for a slow client.",
			      METRIC_COUNTER, NULL, (double)s.coalesced);
	metric_set__add_value(set, "novamon_ws_dropped_total",
			      "WebSocket clients closed for not reading or not answering pings.",
			      METRIC_COUNTER, NULL, (double)s.dropped);
	metric_set__add_value(set, "novamon_ws_eval_errors_total", "Feed evaluations that failed.",
			      METRIC_COUNTER, NULL, (double)s.eval_errors);
	metric_set__add_value(set, "novamon_ws_eval_seconds",
			      "Time the last tick's feed evaluations took.", METRIC_GAUGE, NULL,
			      s.last_eval_seconds);
	metric_set__add_value(set, "novamon_ws_fanout_seconds",
			      "Time the last round of writes to the WebSocket clients took.",
			      METRIC_GAUGE, NULL, s.last_fanout_seconds);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections (network thread) */

static void ws_close_soon(struct ws_conn *c, uint16_t code, const char *reason)
{
	if (c->close_code)
		return;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	lws_callback_on_writable(c->wsi);
	/* a peer that never lets us write is cut off all the same */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, WS_CLOSE_GRACE_S);
}

/* Queue a text reply (an error or resync message); b is consumed. */
static void ws_reply(struct ws_conn *c, struct ws_buf *b)
{
	struct ws_reply *r;

	if (b->err || c->close_code)
		goto out;
	if (c->nreplies >= WS_MAX_REPLIES) {
		ws_close_soon(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many unread replies");
		goto out;
	}
	r = malloc(sizeof(*r) + b->len);
	if (!r)
		goto out;
	r->next = NULL;
	r->len = b->len;
	memcpy(r->data, b->p, b->len);
	if (c->rq_tail)
		c->rq_tail->next = r;
	else
		c->rq_head = r;
	c->rq_tail = r;
	c->nreplies++;
	lws_callback_on_writable(c->wsi);
out:
	ws_buf_free(b);
}

static void ws_reply_error(struct ws_conn *c, const char *id, const char *msg)
{
	struct ws_buf b = { 0 };

	ws_proto_error(&b, id, msg);
	ws_reply(c, &b);
}

static struct ws_sub *ws_sub_find(struct ws_conn *c, const char *id, struct ws_sub ***where)
{
	struct ws_sub **pp;

	for (pp = &c->subs; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->id, id)) {
			if (where)
				*where = pp;
			return *pp;
		}
	}
	return NULL;
}

static void ws_sub_release(struct ws *ws, struct ws_sub *sub)
{
	pthread_mutex_lock(&ws->lock);
	if (!--sub->st->nsubs)
		sub->st->idle_since_ms = ws_now_ms();
	pthread_mutex_unlock(&ws->lock);
	ws_buf_free(&sub->head);
	free(sub);
	atomic_fetch_sub(&ws->n_subs, 1);
}

/*
 * Subscribe c to query as id. resume: resume_from, or NULL. Errors go to the
 * client as error messages.
 */
static void ws_subscribe(struct ws *ws, struct ws_conn *c, const char *id, const char *query,
			 unsigned int refresh, const uint64_t *resume)
{
	const char *tenant = c->authed ? c->who.tenant : "";
	struct promql_expr *expr;
	struct ws_stream *st;
	struct ws_sub *sub;
	bool fresh = false, resync = false;
	uint64_t latest = 0;
	char err[256] = "";
	uint32_t hash;

	if (ws_sub_find(c, id, NULL)) {
		ws_reply_error(c, id, "this id is already subscribed: unsubscribe it first");
		return;
	}
	if (c->nsubs >= ws->o.max_subscriptions) {
		snprintf(err, sizeof(err), "at most %u subscriptions per connection",
			 ws->o.max_subscriptions);
		ws_reply_error(c, id, err);
		return;
	}
	expr = promql_parse(query, err, sizeof(err));
	if (!expr) {
		ws_reply_error(c, id, err);
		return;
	}
	if (ws->o.scope &&
	    ws->o.scope(ws->o.scope_ctx, c->authed ? &c->who : NULL, expr, err, sizeof(err))) {
		promql_expr__free(expr);
		ws_reply_error(c, id,
			       err[0] ? err : "the query cannot be restricted to the tenant");
		return;
	}
	sub = calloc(1, sizeof(*sub));
	if (!sub) {
		promql_expr__free(expr);
		ws_reply_error(c, id, "out of memory");
		return;
	}
	hash = ws_hash(query, strlen(query), ws_hash(tenant, strlen(tenant) + 1, 2166136261u));

	pthread_mutex_lock(&ws->lock);
	st = ws_stream_find(ws, query, tenant, hash);
	if (!st) {
		st = ws_stream_new(ws, query, tenant, hash, expr);
		if (!st) {
			pthread_mutex_unlock(&ws->lock);
			promql_expr__free(expr);
			free(sub);
			ws_reply_error(c, id, "out of memory");
			return;
		}
		expr = NULL;
		fresh = true;
	}
	st->nsubs++;
	latest = atomic_load(&st->latest);
	if (resume && *resume && ws_find_state(st, *resume, NULL))
		sub->last_seq = *resume;
	else if (resume)
		resync = true;
	/* an error the stream is in now is news to this subscriber */
	sub->err_seen = 0;
	pthread_mutex_unlock(&ws->lock);
	promql_expr__free(expr);

	sub->st = st;
	sub->refresh = refresh ? refresh : 1;
	sub->dashboard = c->dashboard;
	sub->idlen = strlen(id);
	memcpy(sub->id, id, sub->idlen + 1);
	sub->next = c->subs;
	c->subs = sub;
	c->nsubs++;
	atomic_fetch_add(&ws->n_subs, 1);

	if (resync) {
		struct ws_buf b = { 0 };

		ws_proto_resync(&b, id, latest);
		ws_reply(c, &b);
	}
	if (fresh) {
		pthread_mutex_lock(&ws->bell_lock);
		ws->fresh_pending = true;
		pthread_cond_signal(&ws->bell);
		pthread_mutex_unlock(&ws->bell_lock);
	}
	lws_callback_on_writable(c->wsi);
}

static void ws_unsubscribe(struct ws *ws, struct ws_conn *c, const char *id)
{
	struct ws_sub **pp, *sub = ws_sub_find(c, id, &pp);

	if (!sub) {
		ws_reply_error(c, id, "no such subscription");
		return;
	}
	*pp = sub->next;
	c->nsubs--;
	ws_sub_release(ws, sub);
}

/* A bad message: an error back, and a close after WS_MAX_BAD in a row. */
static void ws_bad_message(struct ws_conn *c, const char *id, const char *msg)
{
	ws_reply_error(c, id, msg);
	if (++c->bad >= WS_MAX_BAD)
		ws_close_soon(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad messages");
}

static void ws_on_message(struct ws *ws, struct ws_conn *c, const char *buf, size_t len)
{
	struct ws_proto_request *req = &ws->req;
	char err[256];
	struct ws_sub *sub;

	if (ws_proto_parse_request(buf, len, req, err, sizeof(err))) {
		ws_bad_message(c, req->id, err);
		return;
	}
	switch (req->type) {
	case WS_PROTO_HELLO:
		if (req->encoding != c->enc) {
			/* the client's series table starts empty: everything full again */
			c->enc = req->encoding;
			for (sub = c->subs; sub; sub = sub->next)
				sub->last_seq = 0;
			lws_callback_on_writable(c->wsi);
		}
		break;
	case WS_PROTO_SUBSCRIBE:
		if (c->dashboard) {
			ws_bad_message(c, req->id, "a dashboard feed takes no subscriptions");
			return;
		}
		ws_subscribe(ws, c, req->id, req->query, 1,
			     req->has_resume ? &req->resume_from : NULL);
		break;
	case WS_PROTO_UNSUBSCRIBE:
		if (c->dashboard) {
			ws_bad_message(c, req->id, "a dashboard feed takes no subscriptions");
			return;
		}
		ws_unsubscribe(ws, c, req->id);
		break;
	}
	c->bad = 0;
}

/* A piece of a message. Returns 0, or -1 to close. */
static int ws_on_receive(struct ws *ws, struct ws_conn *c, const void *in, size_t len)
{
	size_t max = ws->o.max_message_bytes;
	char reason[64];
	char *p;

	c->last_rx_ms = ws_now_ms();
	c->ping_sent_ms = 0;
	if (lws_frame_is_binary(c->wsi)) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 (unsigned char *)"binary frames are not accepted", 30);
		return -1;
	}
	if (c->rx_len + len > max || lws_remaining_packet_payload(c->wsi) > max - c->rx_len - len) {
		int n = snprintf(reason, sizeof(reason), "a message is at most %zu bytes", max);

		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)reason, (size_t)n);
		return -1;
	}
	if (!c->rx && lws_is_final_fragment(c->wsi)) {
		ws_on_message(ws, c, in, len);
		return 0;
	}
	p = realloc(c->rx, c->rx_len + len + 1);
	if (!p)
		return -1;
	c->rx = p;
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(c->wsi))
		return 0;
	ws_on_message(ws, c, c->rx, c->rx_len);
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	return 0;
}

/* Bytes written to the socket that the peer has not acknowledged yet. */
static int ws_unsent(int fd)
{
	int n = 0;

	if (ioctl(fd, SIOCOUTQ, &n))
		return 0;
	return n;
}

static void ws_out_reset(struct ws *ws)
{
	static const char pre[LWS_PRE];

	ws->out.len = 0;
	ws->out.err = 0;
	ws_buf_put(&ws->out, pre, LWS_PRE);
}

/* A server frame header (FIN set, no mask) for a payload of len bytes. */
static void ws_frame_head(struct ws_buf *b, unsigned char opcode, size_t len)
{
	unsigned char h[10];
	size_t n = 2, i;

	h[0] = 0x80 | opcode;
	if (len < 126) {
		h[1] = (unsigned char)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		n = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		n = 10;
	}
	ws_buf_put(b, h, n);
}

static void ws_frame(struct ws_buf *b, unsigned char opcode, const void *p, size_t len)
{
	ws_frame_head(b, opcode, len);
	ws_buf_put(b, p, len);
}

/*
 * Send the frames composed in ws->out (after LWS_PRE) in one write: lws
 * would make a send() of each message, and on a busy host the wake-up of
 * the reader per send() costs more than the send. Returns 0, or -1 to close.
 */
static int ws_flush_out(struct ws *ws, struct lws *wsi)
{
	size_t len = ws->out.len - LWS_PRE;

	if (ws->out.err)
		return -1;
	if (!len)
		return 0;
	return lws_write(wsi, (unsigned char *)ws->out.p + LWS_PRE, len, LWS_WRITE_RAW) < (int)len ?
		       -1 :
		       0;
}

/* Whether sub is due a data message once its stream's newest is seq. */
static bool ws_seq_due(const struct ws_sub *sub, uint64_t seq)
{
	return seq > sub->last_seq && (!sub->last_seq || seq - sub->last_seq >= sub->refresh);
}

/* Whether sub has a stream error to report (newer than its last data). */
static bool ws_error_due(const struct ws_sub *sub)
{
	uint64_t eseq = atomic_load(&sub->st->error_seq);

	return eseq > sub->err_seen && eseq > atomic_load(&sub->st->latest);
}

/*
 * What sub sends next: the blob, the seq it brings the subscriber to, and
 * whether more is held after it. ws->lock held. Returns 1 with *blob set
 * (a reference), 0 when nothing is due, -1 on ENOMEM.
 */
static int ws_next_message(struct ws *ws, struct ws_conn *c, struct ws_sub *sub, bool coalesce,
			   struct ws_blob **blob, uint64_t *seq, bool *more)
{
	struct ws_stream *st = sub->st;
	struct ws_state *newest = ws_newest(st), *base = NULL, *target;
	unsigned int pos = 0;

	if (!newest || !ws_seq_due(sub, newest->seq))
		return 0;
	if (sub->last_seq)
		base = ws_find_state(st, sub->last_seq, &pos);
	if (!base || sub->dashboard || coalesce)
		target = newest;
	else
		target = ws_ring_at(st, pos + 1); /* replay: each held evaluation in turn */
	if (base && target != ws_ring_at(st, pos + 1))
		atomic_fetch_add(&ws->n_coalesced, 1);
	*more = target != newest;
	*blob = ws_get_blob(base, target, c->enc);
	*seq = target->seq;
	return *blob ? 1 : -1;
}

/* A due error of sub's stream, copied into msg. ws->lock held. */
static bool ws_due_error(struct ws_sub *sub, char *msg, size_t len)
{
	if (!ws_error_due(sub))
		return false;
	sub->err_seen = atomic_load(&sub->st->error_seq);
	snprintf(msg, len, "%s", sub->st->error);
	return true;
}

/*
 * Append one data frame of sub: its head (rendered once per subscription
 * and encoding, and kept) and the shared tail. Returns 0, or -1 on ENOMEM.
 */
static int ws_put_data(struct ws_conn *c, struct ws_sub *sub, const struct ws_blob *blob,
		       struct ws_buf *out)
{
	if (!sub->head.len || sub->head_enc != c->enc) {
		sub->head.len = 0;
		sub->head.err = 0;
		sub->head_enc = c->enc;
		if (ws_proto_data_head(&sub->head, c->enc, sub->id, sub->idlen)) {
			sub->head.len = 0;
			return -1;
		}
	}
	ws_frame_head(out, c->enc == WS_ENC_BINARY ? 0x2 : 0x1, sub->head.len + blob->len);
	ws_buf_put(out, sub->head.p, sub->head.len);
	ws_buf_put(out, blob->data, blob->len);
	return 0;
}

/*
 * Append sub's due error and data frames to out. ws->lock held (taken once
 * per connection, not per subscription). The data head ({"type":"data","id":..
 * or its binary form) is rendered once per subscription and encoding and
 * kept with it. Returns 1 when it has more, 0, or -1 on ENOMEM.
 */
static int ws_compose_sub(struct ws *ws, struct ws_conn *c, struct ws_sub *sub, bool coalesce,
			  struct ws_buf *out)
{
	struct ws_buf msg = { 0 };
	struct ws_blob *blob = NULL;
	char emsg[256];
	uint64_t seq = 0;
	bool more = false;
	int rc;

	if (ws_due_error(sub, emsg, sizeof(emsg))) {
		ws_proto_error(&msg, sub->id, emsg);
		ws_frame(out, 0x1, msg.p, msg.len);
		ws_buf_free(&msg);
	}
	rc = ws_next_message(ws, c, sub, coalesce, &blob, &seq, &more);
	if (rc <= 0)
		return rc;
	rc = ws_put_data(c, sub, blob, out);
	ws_blob_put(blob);
	if (rc)
		return -1;
	sub->last_seq = seq;
	atomic_fetch_add(&ws->n_messages, 1);
	return more;
}

/*
 * Whether c may be written this round: the kernel's unsent bytes cost a
 * syscall, so they are looked at only after WS_OUTQ_CHECK bytes were
 * written (a client cannot get far behind before that), or while the
 * connection is behind. Past soft_bytes it waits for the next round; a
 * stall closes it.
 */
static bool ws_outq_ok(struct ws *ws, struct ws_conn *c, int64_t now)
{
	if (c->unchecked < WS_OUTQ_CHECK && !c->lagging)
		return true;
	c->unchecked = 0;
	if ((size_t)ws_unsent(c->fd) > ws->o.soft_bytes) {
		if (!c->over_since_ms)
			c->over_since_ms = now;
		c->lagging = true;
		return false;
	}
	c->over_since_ms = 0;
	return true;
}

/*
 * Append c's due data (and stream errors) to out. ws->lock held. Touches
 * only c, its subscriptions and what ws->lock guards, so a sender thread
 * may run it for a connection the network thread does not touch meanwhile.
 * *more: a subscription has more to send, or the batch limit stopped the
 * walk. Returns 0, or -1 to close.
 */
static int ws_compose(struct ws *ws, struct ws_conn *c, struct ws_buf *out, bool *more)
{
	size_t start = out->len;
	struct ws_sub *sub = NULL;
	int rc = 0;

	*more = false;
	for (sub = c->subs; sub && out->len - start < WS_WRITE_BATCH; sub = sub->next) {
		rc = ws_compose_sub(ws, c, sub, c->lagging, out);
		if (rc < 0)
			break;
		*more |= rc > 0;
	}
	if (rc < 0 || out->err)
		return -1;
	c->unchecked += out->len - start;
	if (!*more && !sub)
		c->lagging = false;
	*more |= sub != NULL;
	return 0;
}

/* ws_compose() of c's due data after ws_outq_ok(), taking ws->lock. */
static int ws_fill(struct ws *ws, struct ws_conn *c, struct ws_buf *out, int64_t now, bool *more)
{
	int rc;

	*more = false;
	if (!ws_outq_ok(ws, c, now))
		return 0;
	pthread_mutex_lock(&ws->lock);
	rc = ws_compose(ws, c, out, more);
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

/*
 * Ping c a random 0-50 % before ping_seconds next time: connections opened
 * together (a restart, a reconnect storm) would otherwise be pinged, and
 * answer, in the same round every time. Network thread.
 */
static void ws_ping_jitter(struct ws *ws, struct ws_conn *c)
{
	uint64_t half = (uint64_t)ws->o.ping_seconds * 500 + 1;

	ws->rng = ws->rng * 6364136223846793005ull + 1442695040888963407ull; /* PCG's LCG step */
	c->ping_early_ms = (int64_t)((ws->rng >> 33) % half);
}

/* Append c's ping when one is wanted: with its data, it costs no write of its own. */
static void ws_put_ping(struct ws_conn *c, struct ws_buf *out, int64_t now)
{
	if (!c->want_ping)
		return;
	ws_frame(out, 0x9, "novamon", 7);
	c->want_ping = false;
	c->ping_sent_ms = now;
}

/*
 * Take the round's view of every subscribed stream (see struct ws_stream).
 * Network thread, before the senders start; the streams with subscribers
 * are not freed meanwhile (only the evaluator frees, and only those with
 * none, which change on the network thread alone).
 */
static void ws_round_begin(struct ws *ws)
{
	struct ws_stream *st;

	pthread_mutex_lock(&ws->lock);
	for (st = ws->streams; st; st = st->next) {
		if (!st->nsubs || !st->n)
			continue;
		st->rnd_cur = ws_newest(st);
		st->rnd_cur->refs++;
		if (st->n >= 2) {
			st->rnd_prev = ws_ring_at(st, st->n - 2);
			st->rnd_prev->refs++;
		}
	}
	pthread_mutex_unlock(&ws->lock);
}

/* Drop the round's view. Network thread, once the senders are done. */
static void ws_round_end(struct ws *ws)
{
	struct ws_stream *st;

	pthread_mutex_lock(&ws->lock);
	for (st = ws->streams; st; st = st->next) {
		if (!st->rnd_cur)
			continue;
		for (size_t e = 0; e < 2; e++) {
			struct ws_blob *b = atomic_exchange(&st->rnd_blob[e], NULL);

			if (b)
				ws_blob_put(b);
		}
		ws_state_put(st->rnd_cur);
		ws_state_put(st->rnd_prev);
		st->rnd_cur = st->rnd_prev = NULL;
	}
	pthread_mutex_unlock(&ws->lock);
}

/* The round's delta of st in enc, rendered once; NULL on ENOMEM. */
static struct ws_blob *ws_round_blob(struct ws *ws, struct ws_stream *st,
				     enum ws_proto_encoding enc)
{
	struct ws_blob *b = atomic_load(&st->rnd_blob[enc]);

	if (b)
		return b;
	pthread_mutex_lock(&ws->lock);
	b = atomic_load(&st->rnd_blob[enc]);
	if (!b) {
		b = ws_get_blob(st->rnd_prev, st->rnd_cur, enc);
		atomic_store(&st->rnd_blob[enc], b);
	}
	pthread_mutex_unlock(&ws->lock);
	return b;
}

/*
 * What a round writes to most connections, without ws->lock: each due
 * subscription is one second behind, so its message is the round's delta
 * of its stream. Returns 1 with c's messages appended to out (*nmsg
 * counted), 0 when c needs ws_compose() instead (a full state, a resume or
 * catch-up from further back, a stream error to report; nothing written),
 * -1 on ENOMEM (c is to be closed).
 */
static int ws_compose_round(struct ws *ws, struct ws_conn *c, struct ws_buf *out, uint64_t *nmsg)
{
	size_t start = out->len;
	struct ws_sub *sub;

	for (sub = c->subs; sub; sub = sub->next) {
		struct ws_stream *st = sub->st;

		if (ws_error_due(sub))
			return 0;
		if (st->rnd_cur && ws_seq_due(sub, st->rnd_cur->seq) &&
		    (!st->rnd_prev || st->rnd_prev->seq != sub->last_seq))
			return 0;
	}
	for (sub = c->subs; sub && out->len - start < WS_WRITE_BATCH; sub = sub->next) {
		struct ws_stream *st = sub->st;
		struct ws_blob *blob;

		if (!st->rnd_cur || !ws_seq_due(sub, st->rnd_cur->seq))
			continue;
		blob = ws_round_blob(ws, st, c->enc);
		if (!blob || ws_put_data(c, sub, blob, out))
			return -1;
		sub->last_seq = st->rnd_cur->seq;
		(*nmsg)++;
	}
	if (out->err)
		return -1;
	c->unchecked += out->len - start;
	c->tx_more = sub != NULL;
	if (!sub)
		c->lagging = false;
	return 1;
}

/* Write what is due on c, in one write. Returns 0, or -1 to close. */
static int ws_on_writeable(struct ws *ws, struct ws_conn *c)
{
	struct lws *wsi = c->wsi;
	int64_t now = ws_now_ms();
	bool more = false;

	c->want_since_ms = 0;
	if (c->close_code) {
		lws_close_reason(wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason, strlen(c->close_reason));
		return -1;
	}
	ws_out_reset(ws);
	while (c->rq_head && ws->out.len < WS_WRITE_BATCH) {
		struct ws_reply *r = c->rq_head;

		ws_frame(&ws->out, 0x1, r->data, r->len);
		c->rq_head = r->next;
		if (!c->rq_head)
			c->rq_tail = NULL;
		c->nreplies--;
		free(r);
	}
	ws_put_ping(c, &ws->out, now);
	if (ws_fill(ws, c, &ws->out, now, &more))
		return -1;
	if (ws_flush_out(ws, wsi))
		return -1;
	if (more || c->rq_head) {
		c->want_since_ms = now;
		lws_callback_on_writable(wsi);
	}
	return 0;
}

/* Whether any subscription of c has data or an error to send. */
static bool ws_conn_due(struct ws_conn *c)
{
	struct ws_sub *sub;

	for (sub = c->subs; sub; sub = sub->next)
		if (ws_seq_due(sub, atomic_load(&sub->st->latest)) || ws_error_due(sub))
			return true;
	return false;
}

/*
 * Write c's due messages at once rather than from its WRITEABLE: a
 * WRITEABLE for each of thousands of connections costs a poll() over all
 * of them and lws' dispatch, more than the writes. This is safe while lws
 * holds nothing unsent for c (then the write goes to the kernel or lws
 * keeps the rest, as from WRITEABLE) and the close handshake has not
 * begun; otherwise WRITEABLE does it.
 */
static void ws_write_now(struct ws *ws, struct ws_conn *c, int64_t now)
{
	if (c->close_code || c->peer_closed || c->want_since_ms || lws_partial_buffered(c->wsi)) {
		if (!c->want_since_ms)
			c->want_since_ms = now;
		lws_callback_on_writable(c->wsi);
		return;
	}
	if (ws_on_writeable(ws, c))
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/*
 * Whether a sender may write c's data with a send() of its own: lws must
 * hold nothing unsent for it and have nothing of its own to write (close
 * handshake, TLS), and c has no replies queued (those go through lws on
 * the network thread). A wanted ping goes with the sender's data.
 */
static bool ws_direct_ok(const struct ws_conn *c)
{
	return !c->close_code && !c->peer_closed && !c->want_since_ms && !c->tls && !c->rq_head &&
	       !lws_partial_buffered(c->wsi);
}

/*
 * A sender's send() of c's composed bytes. What the kernel does not take is
 * kept in c->tx_rest for the network thread to hand to lws (which queues it
 * and waits for POLLOUT), so the bytes stay in order.
 */
static void ws_send_bytes(struct ws_conn *c, const char *p, size_t len)
{
	ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		c->tx_failed = true;
		return;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n == len)
		return;
	c->tx_rest_len = len - (size_t)n;
	c->tx_rest = malloc(LWS_PRE + c->tx_rest_len);
	if (!c->tx_rest) {
		c->tx_failed = true;
		return;
	}
	memcpy(c->tx_rest + LWS_PRE, p + n, c->tx_rest_len);
}

/*
 * End c's piece of a chunk's buffer, begun at at: its ping after its data,
 * or, when composing failed (or ran out of memory), nothing of it kept and
 * c marked to be closed. Returns the piece's length.
 */
static size_t ws_piece_done(struct ws_conn *c, struct ws_buf *out, size_t at, bool failed,
			    int64_t now)
{
	if (!failed)
		ws_put_ping(c, out, now);
	if (failed || out->err) {
		c->tx_failed = true;
		out->len = at;
		out->err = 0;
	}
	return out->len - at;
}

/* Start loading the fields of c a round reads (the first 192 bytes). */
static void ws_prefetch_conn(const struct ws_conn *c)
{
	for (size_t off = 0; off < 256; off += 64)
		__builtin_prefetch((const char *)c + off);
}

/*
 * Start loading what composing fan[from, to) reads: each connection, its
 * subscriptions (a list) and their message heads. A round touches each of
 * these once a second, so all are cold; walked one connection after the
 * other, every subscription costs a miss the next one waits for. Here the
 * chunk's loads go out together, one list step of every connection at a
 * time.
 */
static void ws_prefetch_chunk(struct ws_conn *const *fan, size_t from, size_t to)
{
	const struct ws_sub *p[WS_FANOUT_CHUNK];
	size_t i, k, n = to - from;
	bool more = true;

	for (i = from; i < to; i++)
		ws_prefetch_conn(fan[i]);
	for (k = 0; k < n; k++) {
		p[k] = fan[from + k]->subs;
		if (p[k])
			__builtin_prefetch(p[k]);
	}
	while (more) {
		more = false;
		for (k = 0; k < n; k++) {
			if (!p[k])
				continue;
			__builtin_prefetch(p[k]->head.p);
			p[k] = p[k]->next;
			if (p[k]) {
				__builtin_prefetch(p[k]);
				more = true;
			}
		}
	}
}

/*
 * Write the round's connections until none is left, WS_FANOUT_CHUNK at a
 * time from a shared cursor, not a fixed share each: a writer whose CPU is
 * busier (another process, the readers' TCP input on loopback) then takes
 * fewer, and the round ends when the fastest would have ended it. A chunk
 * is composed, then sent: most connections without ws->lock
 * (ws_compose_round()), the rest of the chunk under one hold of it. Only
 * the chunk's connections and what ws->lock guards are touched: the
 * network thread waits for the senders meanwhile.
 */
static void ws_send_chunks(struct ws *ws, struct ws_buf *out)
{
	size_t at[WS_FANOUT_CHUNK], len[WS_FANOUT_CHUNK];
	bool slow[WS_FANOUT_CHUNK];
	size_t from, to, i;
	uint64_t nmsg = 0;

	for (;;) {
		bool any_slow = false;
		size_t pub;

		from = atomic_fetch_add(&ws->fan_next, WS_FANOUT_CHUNK);
		/* ahead of the walk: let it run (it may share this CPU) */
		for (;;) {
			bool walking = atomic_load_explicit(&ws->fan_walking, memory_order_acquire);

			pub = atomic_load_explicit(&ws->fan_pub, memory_order_acquire);
			if (!walking || from + WS_FANOUT_CHUNK <= pub)
				break;
			sched_yield();
		}
		if (from >= pub)
			break;
		to = from + WS_FANOUT_CHUNK < pub ? from + WS_FANOUT_CHUNK : pub;
		ws_prefetch_chunk(ws->fan, from, to);
		out->len = 0;
		out->err = 0;
		for (i = from; i < to; i++) {
			struct ws_conn *c = ws->fan[i];
			size_t k = i - from;
			int rc = 0;

			c->tx_failed = false;
			c->tx_more = false;
			at[k] = out->len;
			if (ws_outq_ok(ws, c, ws->fan_now))
				rc = ws_compose_round(ws, c, out, &nmsg);
			else
				rc = 1; /* behind: nothing this round */
			slow[k] = !rc;
			any_slow |= !rc;
			if (rc)
				len[k] = ws_piece_done(c, out, at[k], rc < 0, ws->fan_now);
		}
		if (any_slow) {
			pthread_mutex_lock(&ws->lock);
			for (i = from; i < to; i++) {
				struct ws_conn *c = ws->fan[i];
				size_t k = i - from;
				bool failed;

				if (!slow[k])
					continue;
				at[k] = out->len;
				failed = ws_compose(ws, c, out, &c->tx_more) < 0;
				len[k] = ws_piece_done(c, out, at[k], failed, ws->fan_now);
			}
			pthread_mutex_unlock(&ws->lock);
		}
		for (i = from; i < to; i++)
			if (len[i - from] && !ws->fan[i]->tx_failed)
				ws_send_bytes(ws->fan[i], out->p + at[i - from], len[i - from]);
	}
	atomic_fetch_add(&ws->n_messages, nmsg);
}

static void *ws_sender_thread(void *arg)
{
	struct ws_sender *s = arg;
	struct ws *ws = s->ws;
	unsigned int gen = 0;

	/*
	 * A round's writes give way to the host's own work (the VMs' vCPU
	 * threads, the capture workers, a client on this host): on a busy CPU
	 * this writer takes fewer chunks and the others take the rest. Not
	 * fatal: an ordinary-priority sender writes as well.
	 */
	setpriority(PRIO_PROCESS, (id_t)gettid(), WS_SENDER_NICE);
	pthread_mutex_lock(&ws->fan_lock);
	for (;;) {
		while (!ws->fan_quit && ws->fan_gen == gen)
			pthread_cond_wait(&ws->fan_go, &ws->fan_lock);
		if (ws->fan_quit)
			break;
		gen = ws->fan_gen;
		pthread_mutex_unlock(&ws->fan_lock);
		ws_send_chunks(ws, &s->out);
		pthread_mutex_lock(&ws->fan_lock);
		if (!--ws->fan_left)
			pthread_cond_signal(&ws->fan_done);
	}
	pthread_mutex_unlock(&ws->fan_lock);
	return NULL;
}

/*
 * Start the senders on the round's connections, ws->fan, which the network
 * thread goes on filling (ws->fan_pub) while they write: the fan-out is
 * one send() per connection, which on loopback also runs the reader's TCP
 * input, about 4-5 us each here, and lws (4.1.6 as packaged: LWS_MAX_SMP 1)
 * has one service thread; the walk over every connection that finds them
 * costs about 0.1 us each, which the first writes need not wait for.
 */
static void ws_fanout_start(struct ws *ws, int64_t now)
{
	ws->fan_now = now;
	atomic_store(&ws->fan_next, 0);
	ws_round_begin(ws);
	pthread_mutex_lock(&ws->fan_lock);
	ws->fan_left = ws->nsenders;
	ws->fan_gen++;
	pthread_cond_broadcast(&ws->fan_go);
	pthread_mutex_unlock(&ws->fan_lock);
}

/*
 * Once the walk is over: wait for the senders, then, on the network
 * thread, hand to lws what the kernel did not take, close the failed ones
 * and ask for WRITEABLE where more is held.
 */
static void ws_fanout_finish(struct ws *ws, int64_t now)
{
	size_t i;

	atomic_store(&ws->fan_walking, false);
	pthread_mutex_lock(&ws->fan_lock);
	while (ws->fan_left)
		pthread_cond_wait(&ws->fan_done, &ws->fan_lock);
	pthread_mutex_unlock(&ws->fan_lock);
	ws_round_end(ws);

	for (i = 0; i < ws->fan_n; i++) {
		struct ws_conn *c = ws->fan[i];

		if (c->tx_rest && !c->tx_failed &&
		    lws_write(c->wsi, (unsigned char *)c->tx_rest + LWS_PRE, c->tx_rest_len,
			      LWS_WRITE_RAW) < (int)c->tx_rest_len)
			c->tx_failed = true;
		free(c->tx_rest);
		c->tx_rest = NULL;
		if (c->tx_failed) {
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		} else if (c->tx_more) {
			c->want_since_ms = now;
			lws_callback_on_writable(c->wsi);
		}
	}
}

/*
 * Put c in the round's fan-out, starting the senders once it holds
 * WS_FANOUT_MIN. The array is not grown while they read it: it was sized
 * for every connection before the walk. Returns false when c must be
 * written by the network thread instead.
 */
static bool ws_fan_add(struct ws *ws, struct ws_conn *c, int64_t now, bool *started)
{
	if (ws->fan_n == ws->fan_cap)
		return false;
	ws->fan[ws->fan_n++] = c;
	atomic_store_explicit(&ws->fan_pub, ws->fan_n, memory_order_release);
	if (!*started && ws->fan_n == WS_FANOUT_MIN) {
		atomic_store(&ws->fan_walking, true);
		ws_fanout_start(ws, now);
		*started = true;
	}
	return true;
}

/*
 * Once per evaluation round: ask for WRITEABLE where data is due, ping
 * silent connections, and close those that stall or do not answer.
 */
static void ws_service_round(struct ws *ws)
{
	int64_t now = ws_now_ms();
	int64_t stall = (int64_t)ws->o.stall_seconds * 1000;
	int64_t ping_ms = (int64_t)ws->o.ping_seconds * 1000;
	size_t want = ws->nconns;
	struct timespec t0, t1;
	bool started = false;
	struct ws_conn *c;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ws->fan_n = 0;
	atomic_store(&ws->fan_pub, 0);
	if (ws->nsenders && want > ws->fan_cap) {
		struct ws_conn **p = realloc(ws->fan, want * sizeof(*p));

		if (p) {
			ws->fan = p;
			ws->fan_cap = want;
		}
	}
	for (i = 0; i < ws->nconns; i++) {
		char reason[100];

		c = ws->conns[i];
		if (i + WS_WALK_AHEAD < ws->nconns)
			ws_prefetch_conn(ws->conns[i + WS_WALK_AHEAD]);
		if (c->close_code)
			continue;
		if ((c->over_since_ms && now - c->over_since_ms >= stall) ||
		    (c->want_since_ms && now - c->want_since_ms >= stall)) {
			snprintf(reason, sizeof(reason),
				 "client too slow: updates not read for %u s", ws->o.stall_seconds);
			atomic_fetch_add(&ws->n_dropped, 1);
			ws_close_soon(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, reason);
			continue;
		}
		if (c->ping_sent_ms &&
		    now - c->ping_sent_ms >= (int64_t)ws->o.pong_timeout_seconds * 1000) {
			snprintf(reason, sizeof(reason), "no pong within %u s",
				 ws->o.pong_timeout_seconds);
			atomic_fetch_add(&ws->n_dropped, 1);
			ws_close_soon(c, LWS_CLOSE_STATUS_GOINGAWAY, reason);
			continue;
		}
		if (!c->ping_sent_ms && !c->want_ping &&
		    now - c->last_rx_ms >= ping_ms - c->ping_early_ms) {
			c->want_ping = true;
			ws_ping_jitter(ws, c);
		}
		/*
		 * With senders, whether c has anything due is theirs to find
		 * out while they compose (in parallel, and without this walk
		 * touching every subscription before the first write).
		 */
		if (ws->nsenders && ws_direct_ok(c) && c->subs && ws_fan_add(ws, c, now, &started))
			continue;
		if (c->want_ping || ws_conn_due(c))
			ws_write_now(ws, c, now);
	}
	if (started) {
		ws_fanout_finish(ws, now);
	} else {
		for (i = 0; i < ws->fan_n; i++)
			if (ws->fan[i]->want_ping || ws_conn_due(ws->fan[i]))
				ws_write_now(ws, ws->fan[i], now);
	}
	ws->fan_n = 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	atomic_store(&ws->fanout_seconds,
		     (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* ------------------------------------------------------------------------ */
/* The upgrade */

/*
 * Refuse an upgrade with an HTTP status: lws has not answered yet, so the
 * response is written as raw bytes before the connection is dropped.
 */
static int ws_refuse(struct lws *wsi, unsigned int status, const char *msg, bool bearer)
{
	static const char *const texts[] = {
		[0] = "Bad Request",
		[1] = "Unauthorized",
		[3] = "Forbidden",
		[4] = "Not Found",
	};
	struct ws_buf body = { 0 }, b = { 0 };
	static const char pre[LWS_PRE];
	char head[512];
	const char *text = "Internal Server Error";
	int n;

	if (status >= 400 && status <= 404 && texts[status - 400])
		text = texts[status - 400];
	ws_buf_puts(&body, "{\"status\":\"error\",\"errorType\":\"");
	ws_buf_puts(&body, status == 401 ? "unauthorized" :
			   status == 403 ? "forbidden" :
			   status == 404 ? "not_found" :
					   "bad_data");
	ws_buf_puts(&body, "\",\"error\":");
	ws_buf_json_string(&body, msg, strlen(msg));
	ws_buf_puts(&body, "}\n");
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %u %s\r\ncontent-type: application/json\r\n"
		     "content-length: %zu\r\ncache-control: no-store\r\n%s"
		     "connection: close\r\n\r\n",
		     status, text, body.len,
		     bearer ? "www-authenticate: Bearer realm=\"novamon\"\r\n" : "");
	ws_buf_put(&b, pre, LWS_PRE);
	ws_buf_put(&b, head, (size_t)n);
	ws_buf_put(&b, body.p, body.len);
	if (!b.err)
		lws_write(wsi, (unsigned char *)b.p + LWS_PRE, b.len - LWS_PRE, LWS_WRITE_RAW);
	ws_buf_free(&b);
	ws_buf_free(&body);
	return -1;
}

/* Decide on an upgrade (FILTER_PROTOCOL_CONNECTION). Returns 0 to accept, -1 refused. */
static int ws_on_filter(struct ws *ws, struct ws_conn *c, struct lws *wsi)
{
	char path[512], auth[AUTH_MAX_TOKEN + 64], arg[AUTH_MAX_TOKEN + 64], why[200] = "";
	char *query = NULL;
	size_t qlen = 0;
	int n, rc;

	memset(c, 0, sizeof(*c));
	c->wsi = wsi;
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
		return ws_refuse(wsi, 404, "not found", false);
	if (strcmp(path, WS_PATH_METRICS) &&
	    strncmp(path, WS_PATH_DASHBOARDS, strlen(WS_PATH_DASHBOARDS)))
		return ws_refuse(wsi, 404, "no WebSocket feed at this path", false);

	if (ws->o.authenticate) {
		auth[0] = '\0';
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) >= (int)sizeof(auth) ||
		    lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
			auth[0] = '\0';
		for (n = 0;
		     lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, n) >= 0;
		     n++) {
			if (router_query_append(&query, &qlen, arg)) {
				free(query);
				return ws_refuse(wsi, 500, "out of memory", false);
			}
		}
		rc = ws->o.authenticate(ws->o.auth_ctx, auth, query ? query : "", &c->who, why,
					sizeof(why));
		free(query);
		if (rc)
			return ws_refuse(wsi, 401, why[0] ? why : "a bearer token is needed", true);
		c->authed = true;
	}

	if (!strcmp(path, WS_PATH_METRICS))
		return 0;
	c->dashboard = true;
	{
		const char *id = path + strlen(WS_PATH_DASHBOARDS);

		if (!id[0] || strchr(id, '/'))
			return ws_refuse(wsi, 404, "no such dashboard", false);
		if (!ws->o.widgets)
			return ws_refuse(wsi, 404, "dashboard feeds are not configured", false);
		c->widgets = calloc(WS_MAX_WIDGETS, sizeof(*c->widgets));
		if (!c->widgets)
			return ws_refuse(wsi, 500, "out of memory", false);
		rc = ws->o.widgets(ws->o.widgets_ctx, id, c->authed ? &c->who : NULL, c->widgets,
				   WS_MAX_WIDGETS);
		if (rc < 0) {
			free(c->widgets);
			c->widgets = NULL;
			if (rc == -ENOENT)
				return ws_refuse(wsi, 404, "no such dashboard", false);
			if (rc == -EACCES || rc == -EPERM)
				return ws_refuse(wsi, 403, "this dashboard is not yours to read",
						 false);
			return ws_refuse(wsi, 500, "cannot read the dashboard", false);
		}
		c->nwidgets = rc > WS_MAX_WIDGETS ? WS_MAX_WIDGETS : rc;
	}
	return 0;
}

/* Returns 0, or -1 (no memory to keep it) to close c. */
static int ws_on_established(struct ws *ws, struct ws_conn *c, struct lws *wsi)
{
	int i, sndbuf = (int)(2 * ws->o.soft_bytes);

	if (ws->nconns == ws->conns_cap) {
		size_t nc = ws->conns_cap ? ws->conns_cap * 2 : 256;
		struct ws_conn **p = realloc(ws->conns, nc * sizeof(*p));

		if (!p)
			return -1;
		ws->conns = p;
		ws->conns_cap = nc;
	}
	c->wsi = wsi;
	c->fd = lws_get_socket_fd(wsi);
	c->tls = lws_is_ssl(wsi);
	c->last_rx_ms = ws_now_ms();
	ws_ping_jitter(ws, c);
	c->slot = ws->nconns;
	ws->conns[ws->nconns++] = c;
	c->in_list = true;
	atomic_fetch_add(&ws->n_conns, 1);
	/*
	 * Room in the kernel well beyond soft_bytes (plus the last message
	 * written before the check saw it): when a stalled client is cut off,
	 * the socket is still writable and its close frame fits behind the
	 * data it did not read.
	 */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (i = 0; i < c->nwidgets; i++) {
		struct ws_widget *w = &c->widgets[i];

		w->id[sizeof(w->id) - 1] = '\0';
		w->query[sizeof(w->query) - 1] = '\0';
		if (!w->id[0])
			continue;
		ws_subscribe(ws, c, w->id, w->query, w->refresh_seconds, NULL);
	}
	free(c->widgets);
	c->widgets = NULL;
	c->nwidgets = 0;
	return 0;
}

static void ws_on_closed(struct ws *ws, struct ws_conn *c)
{
	struct ws_sub *sub;
	struct ws_reply *r;

	if (c->in_list) {
		struct ws_conn *last = ws->conns[--ws->nconns];

		ws->conns[c->slot] = last;
		last->slot = c->slot;
		c->in_list = false;
		atomic_fetch_sub(&ws->n_conns, 1);
	}
	while ((sub = c->subs)) {
		c->subs = sub->next;
		ws_sub_release(ws, sub);
	}
	c->nsubs = 0;
	while ((r = c->rq_head)) {
		c->rq_head = r->next;
		free(r);
	}
	c->rq_tail = NULL;
	c->nreplies = 0;
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	free(c->widgets);
	c->widgets = NULL;
	free(c->tx_rest);
	c->tx_rest = NULL;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	const struct lws_protocols *p = lws_get_protocol(wsi);
	struct ws *ws = p ? p->user : NULL;
	struct ws_conn *c = user;

	if (!ws)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_PROTOCOL_INIT:
		pthread_mutex_lock(&ws->lock);
		ws->ctx = lws_get_context(wsi);
		pthread_mutex_unlock(&ws->lock);
		return 0;
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		pthread_mutex_lock(&ws->lock);
		ws->ctx = NULL;
		pthread_mutex_unlock(&ws->lock);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (!c)
			return -1;
		return ws_on_filter(ws, c, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		if (!c)
			return -1;
		return ws_on_established(ws, c, wsi);
	case LWS_CALLBACK_RECEIVE:
		if (!c)
			return -1;
		return ws_on_receive(ws, c, in, len);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c)
			c->peer_closed = true;
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (c) {
			c->last_rx_ms = ws_now_ms();
			c->ping_sent_ms = 0;
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c)
			return -1;
		return ws_on_writeable(ws, c);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (atomic_exchange(&ws->kick, 0))
			ws_service_round(ws);
		return 0;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if (c)
			ws_on_closed(ws, c);
		return 0;
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------------ */

/* The CPUs this process may run on, in cpus[] (up to max; NULL: count only); their number. */
static unsigned int ws_cpus(int *cpus, unsigned int max)
{
	unsigned int n = 0;
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
		if (CPU_ISSET(cpu, &set)) {
			if (cpus)
				cpus[n] = cpu;
			n++;
		}
	return n;
}

/*
 * Start the senders (ws->nsenders of them), each pinned to one of the CPUs
 * the daemon may run on, in turn: with the writers on distinct CPUs and the
 * round shared out in chunks, one busy CPU slows its own writer only; left
 * to the scheduler, two writers were seen sharing one CPU for a whole round
 * while the other idled. Returns 0 or a positive errno.
 */
static int ws_start_senders(struct ws *ws)
{
	int cpus[WS_MAX_SENDERS];
	unsigned int i, ncpus;
	int err;

	if (!ws->nsenders)
		return 0;
	ws->senders = calloc(ws->nsenders, sizeof(*ws->senders));
	if (!ws->senders)
		return ENOMEM;
	ncpus = ws_cpus(cpus, WS_MAX_SENDERS);
	for (i = 0; i < ws->nsenders; i++) {
		struct ws_sender *s = &ws->senders[i];

		s->ws = ws;
		s->cpu = ncpus ? cpus[i % ncpus] : -1;
		err = pthread_create(&s->thread, NULL, ws_sender_thread, s);
		if (err)
			return err;
		s->started = true;
		if (s->cpu >= 0) {
			cpu_set_t one;

			CPU_ZERO(&one);
			CPU_SET(s->cpu, &one);
			/* not fatal: an unpinned sender still writes its chunks */
			pthread_setaffinity_np(s->thread, sizeof(one), &one);
		}
	}
	return 0;
}

struct ws *ws__new(const struct ws_opts *opts)
{
	struct ws *ws;
	int err;

	if (!opts || !opts->engine) {
		errno = EINVAL;
		return NULL;
	}
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return NULL;
	ws->o = *opts;
	if (!ws->o.max_message_bytes)
		ws->o.max_message_bytes = WS_DEFAULT_MAX_MESSAGE;
	if (!ws->o.soft_bytes)
		ws->o.soft_bytes = WS_DEFAULT_SOFT_BYTES;
	if (!ws->o.stall_seconds)
		ws->o.stall_seconds = WS_DEFAULT_STALL_S;
	if (!ws->o.ping_seconds)
		ws->o.ping_seconds = WS_DEFAULT_PING_S;
	ws->rng = (uint64_t)ws_now_ms() ^ (uint64_t)(uintptr_t)ws;
	if (!ws->o.pong_timeout_seconds)
		ws->o.pong_timeout_seconds = WS_DEFAULT_PONG_S;
	if (!ws->o.history_seconds)
		ws->o.history_seconds = WS_DEFAULT_HISTORY_S;
	if (!ws->o.max_subscriptions)
		ws->o.max_subscriptions = WS_DEFAULT_MAX_SUBS;
	if (!ws->o.max_series)
		ws->o.max_series = WS_DEFAULT_MAX_SERIES;
	ws->protocol.name = WS_PROTOCOL_NAME;
	ws->protocol.callback = ws_callback;
	ws->protocol.per_session_data_size = sizeof(struct ws_conn);
	ws->protocol.rx_buffer_size = WS_RX_BUFFER;
	/* else lws cuts every send() to rx_buffer_size and queues the rest */
	ws->protocol.tx_packet_size = WS_TX_PACKET;
	ws->protocol.user = ws;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_mutex_init(&ws->bell_lock, NULL);
	pthread_cond_init(&ws->bell, NULL);
	pthread_mutex_init(&ws->fan_lock, NULL);
	pthread_cond_init(&ws->fan_go, NULL);
	pthread_cond_init(&ws->fan_done, NULL);
	if (ws->o.senders)
		ws->nsenders = ws->o.senders;
	else
		ws->nsenders = ws_cpus(NULL, WS_MAX_SENDERS);
	if (ws->nsenders > WS_MAX_SENDERS)
		ws->nsenders = WS_MAX_SENDERS;
	/* one writer: the network thread itself, through lws, and no sender */
	if (ws->nsenders == 1)
		ws->nsenders = 0;
	atomic_init(&ws->kick, 0);
	err = pthread_create(&ws->thread, NULL, ws_eval_thread, ws);
	if (err) {
		ws__free(ws);
		errno = err;
		return NULL;
	}
	ws->thread_started = true;
	err = ws_start_senders(ws);
	if (err) {
		ws__free(ws);
		errno = err;
		return NULL;
	}
	return ws;
}

const struct lws_protocols *ws__protocol(struct ws *ws)
{
	return ws ? &ws->protocol : NULL;
}

struct tick_sink ws__sink(struct ws *ws)
{
	return (struct tick_sink){
		.name = "websocket",
		.flush = ws_sink_flush,
		.describe = ws_sink_describe,
		.ctx = ws,
	};
}

void ws__stats(struct ws *ws, struct ws_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->connections = atomic_load(&ws->n_conns);
	out->subscriptions = atomic_load(&ws->n_subs);
	pthread_mutex_lock(&ws->lock);
	out->streams = ws->nstreams;
	pthread_mutex_unlock(&ws->lock);
	out->messages = atomic_load(&ws->n_messages);
	out->coalesced = atomic_load(&ws->n_coalesced);
	out->dropped = atomic_load(&ws->n_dropped);
	out->eval_errors = atomic_load(&ws->n_eval_errors);
	out->last_eval_seconds = atomic_load(&ws->eval_seconds);
	out->last_fanout_seconds = atomic_load(&ws->fanout_seconds);
}

void ws__free(struct ws *ws)
{
	struct ws_stream *st;
	unsigned int i;

	if (!ws)
		return;
	if (ws->thread_started) {
		pthread_mutex_lock(&ws->bell_lock);
		ws->quit = true;
		pthread_cond_signal(&ws->bell);
		pthread_mutex_unlock(&ws->bell_lock);
		pthread_join(ws->thread, NULL);
	}
	pthread_mutex_lock(&ws->fan_lock);
	ws->fan_quit = true;
	pthread_cond_broadcast(&ws->fan_go);
	pthread_mutex_unlock(&ws->fan_lock);
	for (i = 0; ws->senders && i < ws->nsenders; i++) {
		if (ws->senders[i].started)
			pthread_join(ws->senders[i].thread, NULL);
		ws_buf_free(&ws->senders[i].out);
	}
	free(ws->senders);
	free(ws->fan);
	free(ws->conns);
	pthread_cond_destroy(&ws->fan_done);
	pthread_cond_destroy(&ws->fan_go);
	pthread_mutex_destroy(&ws->fan_lock);
	while ((st = ws->streams)) {
		ws->streams = st->next;
		ws_stream_free(st);
	}
	ws_buf_free(&ws->out);
	pthread_cond_destroy(&ws->bell);
	pthread_mutex_destroy(&ws->bell_lock);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}
