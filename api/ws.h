/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws: the live WebSocket feeds, a libwebsockets protocol on the daemon's one
 * HTTP port (api/http.c registers it next to its own and routes the
 * upgrades to it; TLS applies as to HTTP).
 *
 *   WS /ws/metrics          the client subscribes with PromQL and receives
 *                           each new 1-second value as it is computed
 *   WS /ws/dashboards/{id}  the server subscribes every widget of the
 *                           dashboard (opts->widgets) and sends each widget's
 *                           data at its refresh interval, the widget id
 *                           being the subscription id
 *
 * The messages (JSON deltas, or a compact binary encoding after a hello) are
 * specified in ws_proto.h and docs/websocket.md. No Sec-WebSocket-Protocol is
 * needed; a client may name WS_PROTOCOL_NAME.
 *
 * How data flows: the tick calls the sink's flush once per second after the
 * store committed; that only wakes the evaluator thread (the tick never
 * waits). The evaluator evaluates each distinct (query, tenant) once at the
 * tick's whole second with the PromQL engine, keeps the last history_seconds
 * evaluations of each ("streams"), renders the shared messages (the full state
 * and the delta from the previous second) and wakes the network thread with
 * lws_cancel_service(). The network thread writes to each connection that
 * is behind (or asks for WRITEABLE where lws holds unsent bytes): every
 * subscriber of a stream gets the same rendered bytes with its own id in
 * front. Nothing is evaluated on the network thread. That fan-out is one
 * send() per connection and costs about 5 us each on loopback, so with more
 * than one CPU a round of 256 connections or more is written by
 * opts->senders sender threads, each pinned to one of the daemon's CPUs,
 * which take the round's connections in chunks from a shared cursor and
 * send() on the sockets directly while the network thread waits for them;
 * what the kernel does not take goes to lws afterwards, on the network
 * thread.
 *
 * Backpressure: a connection holds no queue of data messages; a
 * subscription only remembers the seq it last sent. While the bytes the
 * kernel has not yet delivered exceed soft_bytes, nothing more is written
 * to it; when it drains, each subscription gets one coalesced delta from its
 * last seq to the newest (or the full state when that seq is no longer held).
 * A connection that stays over soft_bytes for stall_seconds is closed with
 * 1008 and a reason. Replies (errors, resync) queue up to WS_MAX_REPLIES per
 * connection, beyond which it is closed with 1008 too. So a slow or stalled
 * client costs a bounded amount of memory, and never delays the others or
 * the tick.
 *
 * Inbound limits: a message over max_message_bytes closes with 1009; a
 * binary frame closes with 1003; a malformed message, an unknown type or a
 * bad query gets an error message, and WS_MAX_BAD of them in a row close
 * with 1008. Keepalive: a connection silent for ping_seconds gets a ping;
 * no frame back within pong_timeout_seconds closes it (1001).
 *
 * Resume: a subscribe with resume_from replays, in order, every held
 * evaluation after that seq, each as the delta from the one before (so no
 * value is skipped); when that seq is not held a resync message precedes a
 * full state. A stream outlives its last subscriber by history_seconds so a
 * client that reconnects can resume.
 */
#ifndef NOVAMON_WS_H
#define NOVAMON_WS_H

#include <stddef.h>
#include <stdint.h>

#include "tick.h"
#include "ws_proto.h"

#define WS_PROTOCOL_NAME "novamon.v1"
#define WS_MAX_WIDGETS 64
#define WS_MAX_REPLIES 64
#define WS_MAX_BAD 8

struct auth_principal;
struct lws_protocols;
struct promql_engine;
struct promql_expr;

/* One widget of a dashboard, as the dashboard store gives it. */
struct ws_widget {
	char id[WS_PROTO_MAX_ID + 1];
	char query[WS_PROTO_MAX_QUERY + 1];
	unsigned int refresh_seconds; /* 0: 1 */
};

/*
 * Authenticate an upgrade: the Authorization header value ("" when absent)
 * and the raw query string (for ?access_token=). 0 with *out filled, or a
 * negative errno (the upgrade gets 401) with a reason safe to send back.
 * Runs on the network thread.
 */
typedef int (*ws_auth_fn)(void *ctx, const char *authorization, const char *query,
			  struct auth_principal *out, char *why, size_t whylen);
/*
 * Restrict a parsed query to what who may see (e.g. promql_restrict() with
 * the tenant label). It must depend only on who->tenant: streams are shared
 * by everyone of a tenant. 0, or a negative errno with err (the subscription
 * gets an error message).
 */
typedef int (*ws_scope_fn)(void *ctx, const struct auth_principal *who, struct promql_expr *e,
			   char *err, size_t errlen);
/*
 * The widgets of dashboard_id that who may see, at most max, into out.
 * Returns their count, -ENOENT (404), -EACCES (403) or another negative
 * errno (500). who is NULL when auth is off. Runs on the network thread.
 */
typedef int (*ws_widgets_fn)(void *ctx, const char *dashboard_id, const struct auth_principal *who,
			     struct ws_widget *out, size_t max);

struct ws_opts {
	const struct promql_engine *engine; /* required; must outlive the ws */
	ws_auth_fn authenticate; /* NULL: no tokens (principal NULL) */
	void *auth_ctx;
	ws_scope_fn scope; /* NULL: queries see everything */
	void *scope_ctx;
	ws_widgets_fn widgets; /* NULL: /ws/dashboards/ answers 404 */
	void *widgets_ctx;
	size_t max_message_bytes; /* inbound; 0: 64 KiB */
	size_t soft_bytes; /* undelivered bytes before coalescing; 0: 256 KiB */
	unsigned int stall_seconds; /* over soft_bytes this long: closed; 0: 10 */
	unsigned int ping_seconds; /* 0: 30 */
	unsigned int pong_timeout_seconds; /* 0: 10 */
	unsigned int history_seconds; /* evaluations held for resume; 0: 60 */
	unsigned int max_subscriptions; /* per connection; 0: 64 */
	unsigned int max_series; /* per stream; a larger result is an error; 0: 20000 */
	/*
	 * Threads that write a round's messages (up to 16); 0: one per CPU
	 * the daemon may run on; 1: the network thread alone, through lws.
	 */
	unsigned int senders;
};

struct ws;

/* Start the evaluator thread. Returns NULL with errno set (EINVAL, ENOMEM, ...). */
struct ws *ws__new(const struct ws_opts *opts);
/*
 * The protocol to give to the HTTP server (http_server_opts.ws_protocol);
 * its user pointer is ws, which must outlive the server.
 */
const struct lws_protocols *ws__protocol(struct ws *ws);
/* The tick sink whose flush wakes the evaluator; place it after the store's. */
struct tick_sink ws__sink(struct ws *ws);
/* Stop the evaluator and free. Call after http_server__stop(); NULL is fine. */
void ws__free(struct ws *ws);

/* Counters, for tests and the sink's own metrics. */
struct ws_stats {
	uint64_t connections; /* open now */
	uint64_t subscriptions; /* open now */
	uint64_t streams; /* distinct (query, tenant) held */
	uint64_t messages; /* data messages written */
	uint64_t coalesced; /* writes that skipped held evaluations */
	uint64_t dropped; /* connections closed for being slow or silent */
	uint64_t eval_errors;
	double last_eval_seconds; /* the last tick's evaluation */
	double last_fanout_seconds; /* the last round of writes, network thread */
};
void ws__stats(struct ws *ws, struct ws_stats *out);

#endif /* NOVAMON_WS_H */
