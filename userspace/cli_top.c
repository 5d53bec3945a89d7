/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `novamon top`: a live terminal view of a running daemon, like kvm_stat.
 *
 * Once per interval it GETs /metrics over a plain HTTP/1.1 socket, keeps the
 * few counter families it shows (struct cli_top_snapshot), and turns two
 * snapshots into per-second rates (struct cli_top_view) printed as tables:
 * the busiest vCPUs, block devices and interfaces, and the event pipeline's
 * own rate and losses. On a terminal it redraws in place until q or Ctrl-C;
 * otherwise (or with --batch) it prints one plain snapshot per interval.
 *
 * The counters read, all cumulative:
 *   vCPU rows (vm, vcpu)   exits/s = novamon_kvm_userspace_exits_total
 *                                  + novamon_kvm_exits_total (any reason)
 *                          pio/s, mmio/s, emulated insn/s, run delay ms/s
 *   device rows (device)   IOPS and latency from the request duration
 *                          histogram's _count and _sum, MB/s from bytes
 *   interface rows         pps and MB/s per direction (rx, tx)
 *   pipeline               novamon_events_total, novamon_events_lost_total
 * Every other label (reason, op, cpu, source, ...) is summed over.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "expfmt.h"
#include "httpc.h"

#define TOP_DEFAULT_HOST "127.0.0.1"
#define TOP_DEFAULT_PORT "9477"
#define TOP_DEFAULT_PATH "/metrics"
#define TOP_MAX_RESPONSE (256u << 20)
#define TOP_TTY_ROWS 5 /* device and interface rows on a terminal */
#define TOP_TTY_FIXED 12 /* title, events, 3 headers, 3 gaps, 3 "more", 1 spare */
#define TOP_KEY_SEP '\x1f' /* joins label values in keys; never in a sane label */

enum top_metric {
	TOP_EXITS,
	TOP_PIO,
	TOP_MMIO,
	TOP_EMULATED,
	TOP_RUN_DELAY,
	TOP_BLK_COUNT,
	TOP_BLK_SUM,
	TOP_BLK_BYTES,
	TOP_NET_RX_PKTS,
	TOP_NET_TX_PKTS,
	TOP_NET_RX_BYTES,
	TOP_NET_TX_BYTES,
	TOP_EVENTS,
	TOP_LOST,
	TOP_NR_METRICS,
};

/* Which table a series feeds, in the order they are shown. */
enum top_table {
	TOP_T_VCPU,
	TOP_T_DEV,
	TOP_T_IF,
	TOP_T_PIPELINE,
};

struct top_source {
	const char *name;
	enum top_metric metric; /* for interfaces the rx one; tx is the next */
	enum top_table table;
};

/* The metric names are the daemon's API (DESIGN.md); keep them in sync. */
static const struct top_source top_sources[] = {
	{ "novamon_kvm_userspace_exits_total", TOP_EXITS, TOP_T_VCPU },
	{ "novamon_kvm_exits_total", TOP_EXITS, TOP_T_VCPU },
	{ "novamon_kvm_pio_total", TOP_PIO, TOP_T_VCPU },
	{ "novamon_kvm_mmio_total", TOP_MMIO, TOP_T_VCPU },
	{ "novamon_kvm_emulated_instructions_total", TOP_EMULATED, TOP_T_VCPU },
	{ "novamon_vcpu_run_delay_seconds_total", TOP_RUN_DELAY, TOP_T_VCPU },
	{ "novamon_block_request_duration_seconds_count", TOP_BLK_COUNT, TOP_T_DEV },
	{ "novamon_block_request_duration_seconds_sum", TOP_BLK_SUM, TOP_T_DEV },
	{ "novamon_block_bytes_total", TOP_BLK_BYTES, TOP_T_DEV },
	{ "novamon_net_packets_total", TOP_NET_RX_PKTS, TOP_T_IF },
	{ "novamon_net_bytes_total", TOP_NET_RX_BYTES, TOP_T_IF },
	{ "novamon_events_total", TOP_EVENTS, TOP_T_PIPELINE },
	{ "novamon_events_lost_total", TOP_LOST, TOP_T_PIPELINE },
};

/*
 * One kept series. str holds "id\0key\0": id is the name and every label
 * (the series identity, matched between snapshots), key the row it feeds.
 */
struct top_series {
	char *str;
	const char *key;
	enum top_metric metric;
	enum top_table table;
	double value;
};

struct cli_top_snapshot {
	double t;
	struct top_series *v;
	size_t n;
	size_t cap;
};

/* ------------------------------------------------------------------ */
/* Snapshots */

static const struct top_source *top_source_find(const char *name)
{
	size_t i;

	if (strncmp(name, "novamon_", 8) != 0)
		return NULL;
	for (i = 0; i < sizeof(top_sources) / sizeof(top_sources[0]); i++)
		if (!strcmp(top_sources[i].name, name))
			return &top_sources[i];
	return NULL;
}

static const char *top_label(const struct expfmt_sample *s, const char *name)
{
	const char *v = expfmt_sample__label(s, name);

	return v ? v : "";
}

/* Append a copy of sample s as a series of metric/table. Returns 0 or -ENOMEM. */
static int top_snapshot_add(struct cli_top_snapshot *snap, const struct expfmt_sample *s,
			    enum top_metric metric, enum top_table table)
{
	char key[512];
	size_t idlen, keylen, i;
	struct top_series *e;
	char *str, *p;

	switch (table) {
	case TOP_T_VCPU:
		snprintf(key, sizeof(key), "%s%c%s", top_label(s, "vm"), TOP_KEY_SEP,
			 top_label(s, "vcpu"));
		break;
	case TOP_T_DEV:
		snprintf(key, sizeof(key), "%s", top_label(s, "device"));
		break;
	case TOP_T_IF:
		snprintf(key, sizeof(key), "%s", top_label(s, "interface"));
		break;
	default:
		key[0] = '\0';
		break;
	}

	idlen = strlen(s->name);
	for (i = 0; i < s->nlabels; i++)
		idlen += 2 + strlen(s->labels[i].name) + strlen(s->labels[i].value);
	keylen = strlen(key);
	str = malloc(idlen + 1 + keylen + 1);
	if (!str)
		return -ENOMEM;
	p = stpcpy(str, s->name);
	for (i = 0; i < s->nlabels; i++) {
		*p++ = TOP_KEY_SEP;
		p = stpcpy(p, s->labels[i].name);
		*p++ = '=';
		p = stpcpy(p, s->labels[i].value);
	}
	*p++ = '\0';
	memcpy(p, key, keylen + 1);

	if (snap->n == snap->cap) {
		size_t cap = snap->cap ? snap->cap * 2 : 64;
		struct top_series *v = realloc(snap->v, cap * sizeof(*v));

		if (!v) {
			free(str);
			return -ENOMEM;
		}
		snap->v = v;
		snap->cap = cap;
	}
	e = &snap->v[snap->n++];
	e->str = str;
	e->key = p;
	e->metric = metric;
	e->table = table;
	e->value = s->value;
	return 0;
}

static int top_series_id_cmp(const void *a, const void *b)
{
	const struct top_series *x = a;
	const struct top_series *y = b;

	return strcmp(x->str, y->str);
}

struct cli_top_snapshot *cli_top_snapshot__free(struct cli_top_snapshot *s)
{
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < s->n; i++)
		free(s->v[i].str);
	free(s->v);
	free(s);
	return NULL;
}

struct cli_top_snapshot *cli_top_snapshot__parse(const char *text, size_t len, double t_sec)
{
	struct cli_top_snapshot *snap;
	struct expfmt_parser p;
	struct expfmt_sample s;
	int64_t newest = INT64_MIN;
	int err = 0;
	int r;

	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return NULL;
	snap->t = t_sec;

	expfmt_parser__init(&p, text, len);
	while ((r = expfmt_parser__next(&p, &s)) != 0) {
		const struct top_source *src;
		enum top_metric metric;

		if (r == -ENOMEM) {
			err = r;
			goto cleanup;
		}
		if (r < 0)
			continue; /* a line we cannot read is not worth failing the view */
		src = top_source_find(s.name);
		if (!src)
			continue;
		metric = src->metric;
		if (src->table == TOP_T_IF) {
			const char *dir = top_label(&s, "direction");

			if (!strcmp(dir, "tx"))
				metric = (enum top_metric)(metric + 1);
			else if (strcmp(dir, "rx") != 0)
				continue;
		}
		err = top_snapshot_add(snap, &s, metric, src->table);
		if (err)
			goto cleanup;
		if (s.has_timestamp && s.timestamp_ms > newest)
			newest = s.timestamp_ms;
	}
	if (newest != INT64_MIN)
		snap->t = (double)newest / 1000.0;
	if (snap->n)
		qsort(snap->v, snap->n, sizeof(snap->v[0]), top_series_id_cmp);

cleanup:
	expfmt_parser__release(&p);
	if (err) {
		cli_top_snapshot__free(snap);
		errno = -err;
		return NULL;
	}
	return snap;
}

/* ------------------------------------------------------------------ */
/* Rates and tables */

static int top_series_row_cmp(const void *a, const void *b)
{
	const struct top_series *x = *(const struct top_series *const *)a;
	const struct top_series *y = *(const struct top_series *const *)b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* Grow *arr (of *n elements of size) by one zeroed element; returns it or NULL. */
static void *top_push(void **arr, size_t *n, size_t size)
{
	char *v = realloc(*arr, (*n + 1) * size);

	if (!v)
		return NULL;
	*arr = v;
	memset(v + *n * size, 0, size);
	return v + (*n)++ * size;
}

/* Numeric when both are numbers ("2" < "10"), else by string. */
static int top_vcpu_cmp_str(const char *a, const char *b)
{
	char *ea, *eb;
	long x = strtol(a, &ea, 10);
	long y = strtol(b, &eb, 10);

	if (*a && *b && !*ea && !*eb && x != y)
		return x < y ? -1 : 1;
	return strcmp(a, b);
}

static int top_vcpu_row_cmp(const void *a, const void *b)
{
	const struct cli_top_vcpu_row *x = a;
	const struct cli_top_vcpu_row *y = b;
	int c;

	if (x->exits != y->exits)
		return x->exits > y->exits ? -1 : 1;
	c = strcmp(x->vm, y->vm);
	return c ? c : top_vcpu_cmp_str(x->vcpu, y->vcpu);
}

static int top_dev_row_cmp(const void *a, const void *b)
{
	const struct cli_top_dev_row *x = a;
	const struct cli_top_dev_row *y = b;

	if (x->iops != y->iops)
		return x->iops > y->iops ? -1 : 1;
	if (x->mbps != y->mbps)
		return x->mbps > y->mbps ? -1 : 1;
	return strcmp(x->device, y->device);
}

static int top_if_row_cmp(const void *a, const void *b)
{
	const struct cli_top_if_row *x = a;
	const struct cli_top_if_row *y = b;
	double px = x->rx_pps + x->tx_pps, py = y->rx_pps + y->tx_pps;

	if (px != py)
		return px > py ? -1 : 1;
	return strcmp(x->iface, y->iface);
}

/* Turn the summed deltas d of one row of table into a row of v. */
static int top_emit_row(struct cli_top_view *v, enum top_table table, const char *key,
			const double *d, double dt)
{
	switch (table) {
	case TOP_T_VCPU: {
		struct cli_top_vcpu_row *r = top_push((void **)&v->vcpus, &v->nvcpus, sizeof(*r));
		const char *sep = strchr(key, TOP_KEY_SEP);

		if (!r)
			return -ENOMEM;
		snprintf(r->vm, sizeof(r->vm), "%.*s", (int)(sep ? sep - key : (long)strlen(key)),
			 key);
		snprintf(r->vcpu, sizeof(r->vcpu), "%s", sep ? sep + 1 : "");
		r->exits = d[TOP_EXITS] / dt;
		r->pio = d[TOP_PIO] / dt;
		r->mmio = d[TOP_MMIO] / dt;
		r->emulated = d[TOP_EMULATED] / dt;
		r->run_delay_ms = d[TOP_RUN_DELAY] * 1000.0 / dt;
		break;
	}
	case TOP_T_DEV: {
		struct cli_top_dev_row *r = top_push((void **)&v->devs, &v->ndevs, sizeof(*r));

		if (!r)
			return -ENOMEM;
		snprintf(r->device, sizeof(r->device), "%s", key);
		r->iops = d[TOP_BLK_COUNT] / dt;
		r->mbps = d[TOP_BLK_BYTES] / dt / 1e6;
		r->has_lat = d[TOP_BLK_COUNT] > 0;
		r->lat_ms = r->has_lat ? d[TOP_BLK_SUM] / d[TOP_BLK_COUNT] * 1000.0 : 0.0;
		break;
	}
	case TOP_T_IF: {
		struct cli_top_if_row *r = top_push((void **)&v->ifs, &v->nifs, sizeof(*r));

		if (!r)
			return -ENOMEM;
		snprintf(r->iface, sizeof(r->iface), "%s", key);
		r->rx_pps = d[TOP_NET_RX_PKTS] / dt;
		r->tx_pps = d[TOP_NET_TX_PKTS] / dt;
		r->rx_mbps = d[TOP_NET_RX_BYTES] / dt / 1e6;
		r->tx_mbps = d[TOP_NET_TX_BYTES] / dt / 1e6;
		break;
	}
	case TOP_T_PIPELINE:
		v->events += d[TOP_EVENTS] / dt;
		v->lost += d[TOP_LOST] / dt;
		break;
	}
	return 0;
}

void cli_top_view__release(struct cli_top_view *v)
{
	free(v->vcpus);
	free(v->devs);
	free(v->ifs);
	memset(v, 0, sizeof(*v));
}

int cli_top_view__build(struct cli_top_view *v, const struct cli_top_snapshot *prev,
			const struct cli_top_snapshot *cur)
{
	const struct top_series **idx = NULL;
	double d[TOP_NR_METRICS];
	double dt;
	size_t i, j;
	int err = 0;

	memset(v, 0, sizeof(*v));
	if (!prev || !cur)
		return -EINVAL;
	dt = cur->t - prev->t;
	if (!(dt > 0))
		return -EAGAIN;
	v->interval = dt;

	/* Visit cur grouped by row; each row sums the deltas of its series. */
	if (cur->n) {
		idx = malloc(cur->n * sizeof(*idx));
		if (!idx)
			return -ENOMEM;
	}
	for (i = 0; i < cur->n; i++)
		idx[i] = &cur->v[i];
	if (cur->n)
		qsort(idx, cur->n, sizeof(*idx), top_series_row_cmp);

	for (i = 0; i < cur->n; i = j) {
		memset(d, 0, sizeof(d));
		for (j = i; j < cur->n && !top_series_row_cmp(&idx[i], &idx[j]); j++) {
			const struct top_series *c = idx[j];
			const struct top_series *p;
			double delta;

			p = prev->n ? bsearch(c, prev->v, prev->n, sizeof(prev->v[0]),
					      top_series_id_cmp) :
				      NULL;
			if (!p)
				continue; /* new series: no rate until the next refresh */
			delta = c->value - p->value;
			if (delta < 0)
				delta = c->value; /* the counter was reset */
			d[c->metric] += delta;
		}
		err = top_emit_row(v, idx[i]->table, idx[i]->key, d, dt);
		if (err)
			goto cleanup;
	}

	if (v->nvcpus)
		qsort(v->vcpus, v->nvcpus, sizeof(v->vcpus[0]), top_vcpu_row_cmp);
	if (v->ndevs)
		qsort(v->devs, v->ndevs, sizeof(v->devs[0]), top_dev_row_cmp);
	if (v->nifs)
		qsort(v->ifs, v->nifs, sizeof(v->ifs[0]), top_if_row_cmp);
cleanup:
	free(idx);
	return err;
}

/* ------------------------------------------------------------------ */
/* Rendering */

static int top_clamp_width(size_t w, int lo, int hi)
{
	if (w < (size_t)lo)
		return lo;
	if (w > (size_t)hi)
		return hi;
	return (int)w;
}

static void top_render_more(FILE *f, size_t total, size_t shown, const char *what)
{
	if (total > shown)
		fprintf(f, "  ... %zu more %s\n", total - shown, what);
}

void cli_top_view__render(const struct cli_top_view *v, FILE *f, const char *title,
			  size_t max_vcpus, size_t max_rows)
{
	size_t i, n, w;
	int cw;

	fprintf(f, "%s\n", title ? title : "novamon top");
	fprintf(f, "events %.1f/s  lost %.1f/s  interval %.2f s\n\n", v->events, v->lost,
		v->interval);

	n = max_vcpus && v->nvcpus > max_vcpus ? max_vcpus : v->nvcpus;
	for (w = 2, i = 0; i < n; i++)
		w = strlen(v->vcpus[i].vm) > w ? strlen(v->vcpus[i].vm) : w;
	cw = top_clamp_width(w, 8, 32);
	fprintf(f, "%-*s %5s %12s %10s %10s %10s %12s\n", cw, "VM", "VCPU", "EXITS/s", "PIO/s",
		"MMIO/s", "EMUL/s", "RUNDLY ms/s");
	for (i = 0; i < n; i++) {
		const struct cli_top_vcpu_row *r = &v->vcpus[i];

		fprintf(f, "%-*.*s %5s %12.1f %10.1f %10.1f %10.1f %12.1f\n", cw, cw,
			r->vm[0] ? r->vm : "-", r->vcpu[0] ? r->vcpu : "-", r->exits, r->pio,
			r->mmio, r->emulated, r->run_delay_ms);
	}
	if (!v->nvcpus)
		fprintf(f, "  (no vCPU counters yet)\n");
	top_render_more(f, v->nvcpus, n, "vCPUs");

	n = max_rows && v->ndevs > max_rows ? max_rows : v->ndevs;
	for (w = 6, i = 0; i < n; i++)
		w = strlen(v->devs[i].device) > w ? strlen(v->devs[i].device) : w;
	cw = top_clamp_width(w, 8, 32);
	fprintf(f, "\n%-*s %10s %10s %10s\n", cw, "DEVICE", "IOPS", "MB/s", "LAT ms");
	for (i = 0; i < n; i++) {
		const struct cli_top_dev_row *r = &v->devs[i];
		char lat[32];

		if (r->has_lat)
			snprintf(lat, sizeof(lat), "%.3f", r->lat_ms);
		else
			snprintf(lat, sizeof(lat), "-");
		fprintf(f, "%-*.*s %10.1f %10.2f %10s\n", cw, cw, r->device[0] ? r->device : "-",
			r->iops, r->mbps, lat);
	}
	if (!v->ndevs)
		fprintf(f, "  (no block counters yet)\n");
	top_render_more(f, v->ndevs, n, "devices");

	n = max_rows && v->nifs > max_rows ? max_rows : v->nifs;
	for (w = 9, i = 0; i < n; i++)
		w = strlen(v->ifs[i].iface) > w ? strlen(v->ifs[i].iface) : w;
	cw = top_clamp_width(w, 9, 32);
	fprintf(f, "\n%-*s %10s %10s %10s %10s\n", cw, "INTERFACE", "RX pps", "TX pps", "RX MB/s",
		"TX MB/s");
	for (i = 0; i < n; i++) {
		const struct cli_top_if_row *r = &v->ifs[i];

		fprintf(f, "%-*.*s %10.1f %10.1f %10.2f %10.2f\n", cw, cw,
			r->iface[0] ? r->iface : "-", r->rx_pps, r->tx_pps, r->rx_mbps, r->tx_mbps);
	}
	if (!v->nifs)
		fprintf(f, "  (no interface counters yet)\n");
	top_render_more(f, v->nifs, n, "interfaces");
}

/* ------------------------------------------------------------------ */
/* Target and HTTP */

int cli_top_target__parse(struct cli_top_target *t, const char *s)
{
	const char *hp, *hend, *path, *port = NULL;
	size_t hlen;
	int scheme = 0;

	memset(t, 0, sizeof(*t));
	if (!s || !*s)
		return -EINVAL;
	if (!strncasecmp(s, "http://", 7)) {
		s += 7;
		scheme = 1;
	} else if (strstr(s, "://")) {
		return -EINVAL; /* https and others: not spoken here */
	}
	path = strchr(s, '/');
	hend = path ? path : s + strlen(s);
	hp = s;
	if (*hp == '[') {
		const char *close = memchr(hp, ']', (size_t)(hend - hp));

		if (!close)
			return -EINVAL;
		hp++;
		hlen = (size_t)(close - hp);
		if (close + 1 < hend) {
			if (close[1] != ':')
				return -EINVAL;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(hp, ':', (size_t)(hend - hp));

		hlen = (size_t)((colon ? colon : hend) - hp);
		if (colon)
			port = colon + 1;
	}
	if (hlen >= sizeof(t->host))
		return -EINVAL;
	if (hlen)
		memcpy(t->host, hp, hlen);
	else
		snprintf(t->host, sizeof(t->host), "%s", TOP_DEFAULT_HOST);

	if (port) {
		size_t plen = (size_t)(hend - port);
		unsigned long v;
		char *end;

		if (!plen || plen >= sizeof(t->port) || port[0] < '0' || port[0] > '9')
			return -EINVAL;
		memcpy(t->port, port, plen);
		v = strtoul(t->port, &end, 10);
		if (*end || v == 0 || v > 65535)
			return -EINVAL;
	} else {
		snprintf(t->port, sizeof(t->port), "%s", scheme ? "80" : TOP_DEFAULT_PORT);
	}

	if (!path || !strcmp(path, "/"))
		path = TOP_DEFAULT_PATH;
	if (strlen(path) >= sizeof(t->path) || strpbrk(path, " \r\n"))
		return -EINVAL;
	snprintf(t->path, sizeof(t->path), "%s", path);
	if (strchr(t->host, ':'))
		snprintf(t->display, sizeof(t->display), "[%s]:%s", t->host, t->port);
	else
		snprintf(t->display, sizeof(t->display), "%s:%s", t->host, t->port);
	return 0;
}

int cli_top_http_decode(const char *buf, size_t len, int eof, int *status, char **body,
			size_t *body_len)
{
	return httpc_decode(buf, len, eof, status, body, body_len);
}

static volatile sig_atomic_t top_quit;

static void top_on_signal(int sig)
{
	(void)sig;
	top_quit = 1;
}

/* GET t->path: see httpc_fetch(). */
static int top_fetch(const struct cli_top_target *t, int timeout_ms, int *status, char **body,
		     size_t *body_len, int *gai_err)
{
	const struct httpc_target ht = {
		.host = t->host, .port = t->port, .path = t->path, .display = t->display
	};

	return httpc_fetch(&ht, "novamon-top", "text/plain", timeout_ms, status, body, body_len,
			   gai_err);
}

/* ------------------------------------------------------------------ */
/* The command */

struct top_opts {
	struct cli_top_target target;
	double interval;
	long count;
	int batch;
};

struct top_term {
	int active;
	int have_termios;
	struct termios saved;
};

static double top_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void top_usage(FILE *f)
{
	fprintf(f,
		"Usage: novamon top [OPTIONS]\n"
		"Live view of a running novamon daemon, like kvm_stat: the busiest vCPUs\n"
		"(exits, PIO, MMIO, emulated instructions, run-queue delay), block devices,\n"
		"interfaces and the event pipeline, as per-second rates.\n"
		"\n"
		"  -u, --url URL            metrics URL (default http://%s:%s%s)\n"
		"  -l, --listen HOST:PORT   the daemon's listen address, instead of --url\n"
		"  -i, --interval SECONDS   refresh interval (default 1)\n"
		"  -n, --count COUNT        stop after COUNT refreshes\n"
		"  -b, --batch              print plain snapshots instead of redrawing\n"
		"  -h, --help               show this help\n"
		"\n"
		"On a terminal, q or Ctrl-C quits. Not on a terminal, --batch is implied.\n",
		TOP_DEFAULT_HOST, TOP_DEFAULT_PORT, TOP_DEFAULT_PATH);
}

/* Returns 0, 1 after --help (exit 0), or -EINVAL after a message (exit 2). */
static int top_parse_args(struct top_opts *o, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "batch", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int opt;

	memset(o, 0, sizeof(*o));
	o->interval = 1.0;
	cli_top_target__parse(&o->target, TOP_DEFAULT_HOST ":" TOP_DEFAULT_PORT);
	optind = 0; /* reset getopt: the caller may have used it */
	while ((opt = getopt_long(argc, argv, "u:l:i:n:bh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
		case 'l':
			if (cli_top_target__parse(&o->target, optarg)) {
				fprintf(stderr, "novamon top: bad %s '%s'\n",
					opt == 'u' ? "--url" : "--listen", optarg);
				return -EINVAL;
			}
			break;
		case 'i':
			errno = 0;
			o->interval = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(o->interval >= 0.1) ||
			    o->interval > 86400) {
				fprintf(stderr,
					"novamon top: bad --interval '%s' (seconds, 0.1 to 86400)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			errno = 0;
			o->count = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || o->count <= 0) {
				fprintf(stderr, "novamon top: bad --count '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'b':
			o->batch = 1;
			break;
		case 'h':
			top_usage(stdout);
			return 1;
		default:
			top_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "novamon top: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static void top_term_enter(struct top_term *term)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &term->saved) == 0) {
		struct termios raw = term->saved;

		/* Keys without Enter and without echo; keep ISIG so Ctrl-C is SIGINT. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			term->have_termios = 1;
	}
	/* Alternate screen, cursor hidden. */
	fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
	fflush(stdout);
	term->active = 1;
}

static void top_term_leave(struct top_term *term)
{
	if (!term->active)
		return;
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (term->have_termios)
		tcsetattr(STDIN_FILENO, TCSANOW, &term->saved);
	term->active = 0;
	term->have_termios = 0;
}

/* Draw text at the top of the screen, clipped to the terminal size. */
static void top_term_draw(const char *text)
{
	struct winsize ws = { 0 };
	unsigned int rows = 24, cols = 80, row = 0;
	const char *p = text;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		rows = ws.ws_row;
		cols = ws.ws_col;
	}
	fputs("\033[H", stdout);
	while (*p && row < rows) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		fwrite(p, 1, len < cols ? len : cols, stdout);
		fputs("\033[K", stdout);
		p += len + (nl ? 1 : 0);
		if (++row < rows)
			fputc('\n', stdout);
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

/*
 * Sleep until deadline (monotonic seconds). On the terminal, read keys
 * meanwhile. Returns 1 when the user or a signal asked to quit.
 */
static int top_wait(double deadline, int keys)
{
	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		double left = deadline - top_now();
		int rc;

		if (top_quit)
			return 1;
		if (left <= 0)
			return 0;
		rc = poll(&pfd, keys ? 1 : 0, (int)(left * 1000.0) + 1);
		if (rc < 0 && errno != EINTR)
			return 1;
		if (rc > 0 && (pfd.revents & POLLIN)) {
			char c;
			ssize_t n = read(STDIN_FILENO, &c, 1);

			if (n <= 0)
				keys = 0; /* EOF on stdin: only time and signals from now on */
			else if (c == 'q' || c == 'Q' || c == 0x04 /* Ctrl-D */)
				return 1;
		} else if (rc > 0) {
			keys = 0; /* POLLHUP/POLLERR */
		}
	}
}

static void top_title(char *buf, size_t size, const struct top_opts *o, int interactive)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);

	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, size, "novamon top - %s - %s%s", o->target.display, stamp,
		 interactive ? "  (q to quit)" : "");
}

/* Describe a fetch failure the way a user can act on it. */
static void top_fetch_error(char *msg, size_t size, const struct top_opts *o, int err, int gai_err)
{
	if (gai_err)
		snprintf(msg, size, "cannot reach novamon at %s: %s; is `novamon run` running?\n",
			 o->target.display, gai_strerror(gai_err));
	else if (err == -EPROTO || err == -EFBIG)
		snprintf(msg, size, "novamon at %s sent a response that is not valid HTTP (%s)\n",
			 o->target.display, strerror(-err));
	else
		snprintf(msg, size, "cannot reach novamon at %s: %s; is `novamon run` running?\n",
			 o->target.display, strerror(-err));
}

/*
 * One fetch turned into a snapshot. Returns 0 with *out, 1 when a signal
 * interrupted it (time to quit), or -1 with the reason in msg (printed by
 * the caller once the terminal is restored).
 */
static int top_sample(const struct top_opts *o, struct cli_top_snapshot **out, char *msg,
		      size_t msgsize)
{
	int timeout_ms = (int)(o->interval * 1000.0);
	char *body = NULL;
	size_t len = 0;
	int status = 0;
	int gai_err;
	double t;
	int err;

	*out = NULL;
	if (timeout_ms < 1000)
		timeout_ms = 1000;
	if (timeout_ms > 5000)
		timeout_ms = 5000;
	t = top_now();
	err = top_fetch(&o->target, timeout_ms, &status, &body, &len, &gai_err);
	if (err == -EINTR || top_quit) {
		free(body);
		return 1;
	}
	if (err) {
		top_fetch_error(msg, msgsize, o, err, gai_err);
		return -1;
	}
	if (status != 200) {
		snprintf(msg, msgsize, "novamon at %s answered HTTP %d for %s\n", o->target.display,
			 status, o->target.path);
		free(body);
		return -1;
	}
	*out = cli_top_snapshot__parse(body, len, t);
	free(body);
	if (!*out) {
		snprintf(msg, msgsize, "novamon top: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int cli_top(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = top_on_signal }, old_int, old_term, old_hup;
	struct cli_top_snapshot *prev = NULL, *cur = NULL;
	struct top_term term = { 0 };
	struct cli_top_view view = { 0 };
	struct top_opts o;
	char *text = NULL;
	size_t text_len = 0;
	char title[512];
	char msg[640] = "";
	double deadline;
	long refreshes = 0;
	int interactive;
	int ret = 1;
	int err;

	err = top_parse_args(&o, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	interactive = !o.batch && isatty(STDOUT_FILENO);

	/* No SA_RESTART: a signal must interrupt poll() and recv(). */
	sigemptyset(&sa.sa_mask);
	top_quit = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);

	deadline = top_now();
	err = top_sample(&o, &prev, msg, sizeof(msg));
	if (err) {
		ret = err > 0 ? 0 : 1;
		goto cleanup;
	}
	if (interactive) {
		top_term_enter(&term);
		top_title(title, sizeof(title), &o, 1);
		fprintf(stdout, "%s\n\ncollecting the first %.1f s ...\033[K\033[J", title,
			o.interval);
		fflush(stdout);
	}

	for (;;) {
		FILE *mem;

		deadline += o.interval;
		if (deadline < top_now() - o.interval)
			deadline = top_now(); /* fell behind (slow daemon): do not burst */
		if (top_wait(deadline, interactive && term.have_termios)) {
			ret = 0;
			break;
		}
		err = top_sample(&o, &cur, msg, sizeof(msg));
		if (err) {
			ret = err > 0 ? 0 : 1;
			break;
		}
		err = cli_top_view__build(&view, prev, cur);
		if (err == -EAGAIN) {
			/* Nothing published since the last fetch: keep the older baseline. */
			cli_top_view__release(&view);
			cur = cli_top_snapshot__free(cur);
			continue;
		}
		if (err) {
			snprintf(msg, sizeof(msg), "novamon top: %s\n", strerror(-err));
			break;
		}
		prev = cli_top_snapshot__free(prev);
		prev = cur;
		cur = NULL;

		top_title(title, sizeof(title), &o, interactive);
		if (interactive) {
			struct winsize ws = { 0 };
			size_t rows = 24, max_vcpus;

			if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
				rows = ws.ws_row;
			/*
			 * Devices and interfaces get TOP_TTY_ROWS rows each, the
			 * vCPUs what is left after the title, headers, gaps and
			 * "more" lines.
			 */
			max_vcpus = rows > TOP_TTY_FIXED + 2 * TOP_TTY_ROWS + 3 ?
					    rows - TOP_TTY_FIXED - 2 * TOP_TTY_ROWS :
					    3;
			mem = open_memstream(&text, &text_len);
			if (!mem) {
				snprintf(msg, sizeof(msg), "novamon top: %s\n", strerror(errno));
				break;
			}
			cli_top_view__render(&view, mem, title, max_vcpus, TOP_TTY_ROWS);
			fclose(mem);
			top_term_draw(text);
			free(text);
			text = NULL;
		} else {
			cli_top_view__render(&view, stdout, title, 0, 0);
			fputc('\n', stdout);
			fflush(stdout);
		}
		cli_top_view__release(&view);
		if (o.count && ++refreshes >= o.count) {
			ret = 0;
			break;
		}
	}

cleanup:
	top_term_leave(&term);
	if (msg[0])
		fputs(msg, stderr);
	cli_top_view__release(&view);
	cli_top_snapshot__free(prev);
	cli_top_snapshot__free(cur);
	free(text);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	return ret;
}
