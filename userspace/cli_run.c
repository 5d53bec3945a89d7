/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `novamon run`: load the configuration, serve HTTP, start capture, and tick
 * once per second until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <jansson.h>
#include <getopt.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalies.h"
#include "audit.h"
#include "auth.h"
#include "anomaly_api.h"
#include "capture.h"
#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "dashboards.h"
#include "dashstore.h"
#include "exemplars.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ingest.h"
#include "otlp.h"
#include "prom_api.h"
#include "remote_write.h"
#include "registry.h"
#include "spans/logq.h"
#include "spans/span_file.h"
#include "spans/spans.h"
#include "spans/vmtrace.h"
#include "store_sink.h"
#include "system_status.h"
#include "tick.h"
#include "tsdb/tsdb.h"
#include "webui.h"
#include "ws.h"

#define MAX_ROUTES 64
#define MAX_SINKS 16

static volatile sig_atomic_t stop_requested;
/* The query and ingest APIs' state; routes point into them for the daemon's lifetime. */
static struct prom_api api;
static struct ingest ingest;
static struct anomaly_api anomaly_api;
static struct dashboards dashboards;
static struct system_status system_status;

/*
 * The WebSocket feeds' token check (ws_opts.authenticate, ctx the struct
 * auth of the HTTP routes): the Authorization header, or ?access_token=
 * (browsers cannot set headers on a WebSocket).
 */
static int ws_authenticate(void *ctx, const char *authorization, const char *query,
			   struct auth_principal *out, char *why, size_t whylen)
{
	return auth__check_request(ctx, authorization, query, out, why, whylen);
}

/* A tenant's principal streams only its tenant's series, as /api/v1/query answers. */
static int ws_scope(void *ctx, const struct auth_principal *who, struct promql_expr *e, char *err,
		    size_t errlen)
{
	(void)ctx;
	if (!who || !who->tenant[0])
		return 0;
	if (promql_restrict(e, "tenant", who->tenant)) {
		snprintf(err, errlen, "cannot restrict the query to tenant %s", who->tenant);
		return -ENOMEM;
	}
	return 0;
}

/*
 * /ws/dashboards/{id}: the widgets of a stored dashboard that who may see,
 * by the dashboard API's own access rules (dashboards_allowed(), per-widget
 * ACLs).
 */
static int ws_widgets(void *ctx, const char *id, const struct auth_principal *who,
		      struct ws_widget *out, size_t max)
{
	struct dashstore_doc d = { 0 };
	json_t *doc = NULL, *acl = NULL, *w;
	size_t i, n = 0;
	int rc;

	rc = dashstore__get(ctx, id, &d);
	if (rc)
		return rc;
	acl = d.acl ? json_loads(d.acl, 0, NULL) : NULL;
	if (!dashboards_allowed(who, d.owner, d.tenant, acl, DASHBOARDS_READ)) {
		rc = -EACCES;
		goto out;
	}
	doc = json_loads(d.doc, 0, NULL);
	if (!doc) {
		rc = -EINVAL;
		goto out;
	}
	json_array_foreach(json_object_get(doc, "widgets"), i, w)
	{
		const char *wid = json_string_value(json_object_get(w, "id"));
		const char *q = json_string_value(json_object_get(w, "query"));

		if (n >= max)
			break;
		if (!wid || !q || !q[0] || !dashboards_widget_visible(who, d.owner, w))
			continue;
		snprintf(out[n].id, sizeof(out[n].id), "%s", wid);
		snprintf(out[n].query, sizeof(out[n].query), "%s", q);
		out[n].refresh_seconds =
			(unsigned int)json_integer_value(json_object_get(w, "refresh_seconds"));
		n++;
	}
	rc = (int)n;
out:
	json_decref(doc);
	json_decref(acl);
	dashstore_doc__clear(&d);
	return rc;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: novamon run [OPTIONS]\n"
		"\n"
		"Run the monitoring daemon: attach the eBPF probes, compute per-second metrics\n"
		"per VM, vCPU, disk and interface, and serve them over HTTP.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE      configuration file (default %s; optional)\n"
		"  -l, --listen ADDR      HTTP address, HOST:PORT, [V6]:PORT or :PORT (default 127.0.0.1:9477)\n"
		"      --probes LIST      probe families to attach: kvm,block,net,sched (default all)\n"
		"      --no-capture       serve the API without attaching any probe\n"
		"      --ring-bytes N     per-CPU ring buffer size, a power of two (default 8388608)\n"
		"      --log-level LEVEL  error, warn, info or debug (default info)\n"
		"      --state-dir DIR    where the store and queues live (default /var/lib/novamon)\n"
		"      --remote-write URL ship every sample to a Prometheus remote-write endpoint\n"
		"      --otlp-endpoint URL export traces, metrics and logs with OTLP/HTTP to URL\n"
		"                         (e.g. http://collector:4318; /v1/traces... appended)\n"
		"      --spans-file PATH  also write synthesized spans and log records as JSON\n"
		"                         lines to PATH ('-': stdout)\n"
		"  -h, --help             show this help\n"
		"\n"
		"Routes: GET /health (JSON status of capture, probes and workers), GET /metrics\n"
		"(Prometheus text format), the Prometheus query API (/api/v1/query, query_range,\n"
		"series, labels, label/NAME/values), POST /api/metrics (JSON) and POST\n"
		"/api/v1/write (remote-write), /api/anomalies, /api/predictions/METRIC,\n"
		"/api/models/performance, /api/dashboards (dashboards, their data and\n"
		"PNG/PDF/JSON exports), /api/system/metrics, /api/components/status and\n"
		"GET /api/audit (admins). With auth on (auth: in the configuration) every route\n"
		"but /health needs a bearer token: see 'novamon token'. Capture needs root\n"
		"(CAP_BPF, CAP_PERFMON) and kernel BTF; without them the daemon still serves\n"
		"its API and /health says why.\n",
		CONFIG_DEFAULT_PATH);
}

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	int i;

	for (i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long before the second the tick is prepared (tick__prepare()). */
#define TICK_PREPARE_LEAD_MS 20

/* Sleep until the wall-clock time sec + ms, or a signal. */
static void sleep_until(time_t sec, long ms)
{
	struct timespec ts = { .tv_sec = sec, .tv_nsec = ms * 1000000L };

	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000L;
	}
	while (!stop_requested &&
	       clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * The local store under state_dir/tsdb. When the directory cannot be used
 * the daemon keeps a memory-only store and says so: nothing then survives a
 * restart.
 */
static struct tsdb *open_store(const struct config *cfg)
{
	struct tsdb_retention ret[CONFIG_MAX_RETENTION + 1] = { {
		.prefix = "",
		.raw_ms = (int64_t)cfg->retention_raw_seconds * 1000,
		.m1_ms = (int64_t)cfg->retention_1m_seconds * 1000,
		.h1_ms = (int64_t)cfg->retention_1h_seconds * 1000,
	} };
	struct tsdb_opts opts = {
		.key_file = cfg->key_file[0] ? cfg->key_file : NULL,
		.retention = ret,
		.nretention = 1 + cfg->nretention,
		.checkpoint_interval_ms = (int64_t)cfg->checkpoint_interval_seconds * 1000,
	};
	char dir[512], err[512] = "";
	struct tsdb *db;
	uint32_t i;
	int e;

	/* per-prefix rules; a value left out takes the global one (ret[0]) */
	for (i = 0; i < cfg->nretention; i++) {
		const struct config_retention *c = &cfg->retention[i];

		ret[i + 1] = (struct tsdb_retention){
			.prefix = c->prefix,
			.raw_ms = c->raw_seconds == CONFIG_RETENTION_INHERIT ?
					  ret[0].raw_ms :
					  (int64_t)c->raw_seconds * 1000,
			.m1_ms = c->m1_seconds == CONFIG_RETENTION_INHERIT ?
					 ret[0].m1_ms :
					 (int64_t)c->m1_seconds * 1000,
			.h1_ms = c->h1_seconds == CONFIG_RETENTION_INHERIT ?
					 ret[0].h1_ms :
					 (int64_t)c->h1_seconds * 1000,
		};
	}

	snprintf(dir, sizeof(dir), "%s/tsdb", cfg->state_dir);
	e = fsutil_mkdirs(dir, 0750);
	if (e) {
		log_error("cannot create %s: %s; the store keeps data in memory only", dir,
			  strerror(-e));
	} else {
		opts.dir = dir;
		db = tsdb__open(&opts, err, sizeof(err));
		if (db) {
			if (err[0])
				log_warn("store %s: %s", dir, err);
			log_info("store at %s", dir);
			return db;
		}
		log_error("cannot open the store at %s: %s", dir, err[0] ? err : strerror(errno));
		if (opts.key_file)
			return NULL; /* never fall back to unencrypted when a key is configured */
		log_error("the store keeps data in memory only");
	}
	opts.dir = NULL;
	return tsdb__open(&opts, err, sizeof(err));
}

/* The remote-write client, queueing under state_dir/remote-write. */
static struct remote_write *start_remote_write(const struct config *cfg)
{
	static char auth[600];
	const char *headers[1];
	struct remote_write_opts opts = {
		.url = cfg->remote_write_url,
		.queue_max_bytes = cfg->remote_write_queue_bytes,
		.headers = headers,
	};
	struct remote_write *rw;
	char dir[512];

	if (cfg->remote_write_authorization[0]) {
		snprintf(auth, sizeof(auth), "Authorization: %s", cfg->remote_write_authorization);
		headers[opts.nheaders++] = auth;
	}
	snprintf(dir, sizeof(dir), "%s/remote-write", cfg->state_dir);
	fsutil_mkdirs(dir, 0750);
	opts.queue_dir = dir;
	rw = remote_write__start(&opts);
	if (!rw)
		log_error("cannot start remote-write to %s: %s", cfg->remote_write_url,
			  strerror(errno));
	else
		log_info("remote-write to %s (queue %s)", cfg->remote_write_url, dir);
	return rw;
}

/*
 * The OTLP exporter, queueing under state_dir/otlp, its cumulative sums
 * starting at start_ms (the daemon's start).
 */
static struct otlp *start_otlp(const struct config *cfg, int64_t start_ms)
{
	const char *headers[CONFIG_OTLP_MAX_HEADERS];
	struct otlp_opts opts = {
		.endpoint = cfg->otlp_endpoint,
		.headers = headers,
		.nheaders = cfg->otlp_nheaders,
		.compression = cfg->otlp_gzip ? OTLP_COMPRESSION_GZIP : OTLP_COMPRESSION_NONE,
		.tls_skip_verify = cfg->otlp_tls_skip_verify,
		.ca_file = cfg->otlp_ca_file,
		.queue_max_bytes = cfg->otlp_queue_max_bytes,
		.batch_max_items = cfg->otlp_batch_max_items,
		.batch_max_delay_ms = cfg->otlp_batch_max_delay_ms,
		.start_ms = start_ms,
	};
	struct otlp *o;
	char dir[512];
	uint32_t i;

	for (i = 0; i < cfg->otlp_nheaders; i++)
		headers[i] = cfg->otlp_headers[i];
	snprintf(dir, sizeof(dir), "%s/otlp", cfg->state_dir);
	fsutil_mkdirs(dir, 0750);
	opts.queue_dir = dir;
	o = otlp__start(&opts);
	if (!o)
		log_error("cannot start OTLP export to %s: %s", cfg->otlp_endpoint,
			  strerror(errno));
	else
		log_info("OTLP export to %s (queue %s)", cfg->otlp_endpoint, dir);
	return o;
}

/* Spans and log records of the synthesizer into the OTLP exporter. */
static void otlp_span_sink(void *ctx, const struct span *s)
{
	otlp__add_span(ctx, s);
}

static void otlp_log_sink(void *ctx, const struct log_record *r)
{
	otlp__add_log(ctx, r);
}

static enum auth_mode auth_mode_of(int config_mode)
{
	switch (config_mode) {
	case CONFIG_AUTH_ON:
		return AUTH_MODE_ON;
	case CONFIG_AUTH_OFF:
		return AUTH_MODE_OFF;
	default:
		return AUTH_MODE_AUTO;
	}
}

/*
 * Tokens (auth: in the configuration) and the audit log under
 * state_dir/audit. While tokens are enforced the audit log is required;
 * without them a log that cannot be opened is a warning. Returns 0, or -1
 * after logging why the daemon cannot start.
 */
static int start_security(const struct config *cfg, struct auth **auth, struct audit **audit)
{
	struct auth_setup setup = {
		.mode = auth_mode_of(cfg->auth_mode),
		.hs256_secret_file = cfg->auth_hs256_secret_file,
		.rs256_public_key_file = cfg->auth_rs256_public_key_file,
		.issuer = cfg->auth_issuer,
		.audience = cfg->auth_audience,
		.listen = cfg->listen,
		.state_dir = cfg->state_dir,
	};
	struct auth_setup_result res;
	struct audit_open_report rep;
	char err[700], dir[512];

	if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0]) {
		log_error("tls: cert_file and key_file go together");
		return -1;
	}
	if (auth__setup(&setup, auth, &res, err, sizeof(err))) {
		log_error("auth: %s", err);
		return -1;
	}
	if (!res.enforce && !res.loopback)
		log_warn("auth is off on %s, which is not a loopback address: anyone who reaches it can read every series and change state",
			 cfg->listen);
	else if (!res.enforce)
		log_info("auth: off (loopback only; auth.mode: on requires tokens)");
	else
		log_info("auth: bearer tokens required on every route but /health%s",
			 cfg->auth_public_metrics ? " and /metrics" : "");
	if (res.generated)
		log_warn("auth: no key was configured, so one was made at %s; create the first admin token with: novamon token create --role admin --secret-file %s",
			 res.secret_file, res.secret_file);
	else if (res.secret_file[0])
		log_info("auth: using the generated secret %s (novamon token create --role admin --secret-file %s)",
			 res.secret_file, res.secret_file);

	snprintf(dir, sizeof(dir), "%s/audit", cfg->state_dir);
	*audit = audit__open(dir, &rep, err, sizeof(err));
	if (!*audit) {
		if (res.enforce) {
			log_error("audit log: %s", err);
			return -1;
		}
		log_warn("audit log: %s; administrative actions are not recorded", err);
		return 0;
	}
	if (rep.broken)
		log_error("audit log: the chain in %s/%s does not verify from seq %llu: kept as %s, a new segment carries on from the last good record",
			  dir, AUDIT_FILE, (unsigned long long)rep.bad_seq, rep.moved_to);
	else
		log_info("audit log at %s/%s (%llu records verified)", dir, AUDIT_FILE,
			 (unsigned long long)rep.last_seq);
	return 0;
}

/*
 * The dashboard store: dashboards.store, else SQLite at
 * state_dir/dashboards.db. NULL (logged) when it cannot be opened: the daemon
 * then serves everything but the dashboard API.
 */
static struct dashstore *open_dashboards(const struct config *cfg)
{
	char url[600], err[512] = "";
	struct dashstore *ds;
	int e;

	if (cfg->dashboards_store[0]) {
		snprintf(url, sizeof(url), "%s", cfg->dashboards_store);
	} else {
		e = fsutil_mkdirs(cfg->state_dir, 0750);
		if (e)
			log_warn("cannot create %s: %s", cfg->state_dir, strerror(-e));
		snprintf(url, sizeof(url), "sqlite:%s/dashboards.db", cfg->state_dir);
	}
	ds = dashstore__open(url, err, sizeof(err));
	/* a postgresql:// URL may carry a password: name the backend, not the URL */
	if (!ds)
		log_error(
			"cannot open the dashboard store (%s): %s; serving without /api/dashboards",
			strncmp(url, "sqlite:", 7) ? "postgresql" : url,
			err[0] ? err : strerror(errno));
	else
		log_info("dashboards in %s%s", dashstore__backend(ds),
			 strncmp(url, "sqlite:", 7) ? "" : url + 6);
	return ds;
}

static void log_report(const struct capture *cap)
{
	size_t i, attached = 0;

	for (i = 0; i < cap->report.n; i++) {
		const struct probe_status *ps = &cap->report.items[i];

		if (ps->attached) {
			attached++;
			log_debug("probe %s/%s attached to %s", ps->family, ps->program,
				  ps->tracepoint);
		} else {
			log_warn("probe %s/%s (%s) not attached: %s", ps->family, ps->program,
				 ps->tracepoint, ps->reason);
		}
	}
	if (!cap->env.cfg && cap->error[0])
		log_info("capture is off: %s", cap->error);
	else if (cap->error[0])
		log_error("capture is off: %s; serving the API without it", cap->error);
	else
		log_info("capture running: %zu programs attached", attached);
}

int cli_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "probes", required_argument, NULL, 'p' },
		{ "no-capture", no_argument, NULL, 'n' },
		{ "ring-bytes", required_argument, NULL, 'r' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "remote-write", required_argument, NULL, 'w' },
		{ "otlp-endpoint", required_argument, NULL, 'o' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "spans-file", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config_path = CONFIG_DEFAULT_PATH, *listen = NULL, *probes = NULL;
	const char *ring_bytes = NULL, *level = NULL, *remote = NULL, *state_dir = NULL;
	const char *otlp_endpoint = NULL, *spans_path = NULL;
	struct spans *spans = NULL;
	struct logq *logq = NULL;
	struct span_file *spans_file = NULL;
	/* without a token: the UI's page and assets (its API calls carry one), /metrics if configured */
	static const char *const public_paths[] = { WEBUI_PUBLIC_PATHS, "/metrics" };
	struct http_server_opts hopts = { 0 };
	struct auth *auth = NULL;
	struct audit *audit = NULL;
	struct http_server *http = NULL;
	struct metric_store *store = NULL;
	struct registry *reg = NULL;
	struct capture *cap = NULL;
	struct tick *tick = NULL;
	/* the trace covering each VM, from the spans to the tick (exemplars) */
	struct vmtrace *traces = NULL;
	/* the exemplars put on the samples, for /api/v1/query_exemplars */
	struct exemplars *exstore = NULL;
	struct tsdb *db = NULL;
	struct dashstore *dash_store = NULL;
	struct http_route routes[MAX_ROUTES];
	size_t nroutes = 0;
	struct remote_write *rw = NULL;
	struct tick_sink sinks[MAX_SINKS];
	struct anomalies *an = NULL;
	/* OTLP export; spans and log records go to it with otlp__add_span/_log */
	struct otlp *otlp = NULL;
	/* the WebSocket feeds, over the store's PromQL engine */
	struct ws *ws = NULL;
	size_t nsinks = 0;
	bool config_given = false, no_capture = false;
	struct sigaction sa = { .sa_handler = on_signal };
	struct config cfg;
	char err_msg[512];
	int c, err, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			config_given = true;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'p':
			probes = optarg;
			break;
		case 'n':
			no_capture = true;
			break;
		case 'r':
			ring_bytes = optarg;
			break;
		case 'L':
			level = optarg;
			break;
		case 'w':
			remote = optarg;
			break;
		case 'o':
			otlp_endpoint = optarg;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'S':
			spans_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "novamon run: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	err = config_load(&cfg, config_path, config_given, err_msg, sizeof(err_msg));
	if (err) {
		fprintf(stderr, "novamon run: %s\n", err_msg);
		return 1;
	}
	if (listen)
		snprintf(cfg.listen, sizeof(cfg.listen), "%s", listen);
	if (probes && config_parse_probes(probes, &cfg.probes)) {
		fprintf(stderr,
			"novamon run: --probes: unknown family in '%s' (kvm, block, net, sched)\n",
			probes);
		return 2;
	}
	if (no_capture)
		cfg.capture_enabled = false;
	if (remote) {
		if (strncmp(remote, "http://", 7) && strncmp(remote, "https://", 8)) {
			fprintf(stderr,
				"novamon run: --remote-write: '%s' is not an http:// or https:// URL\n",
				remote);
			return 2;
		}
		snprintf(cfg.remote_write_url, sizeof(cfg.remote_write_url), "%s", remote);
	}
	if (otlp_endpoint) {
		if (strncmp(otlp_endpoint, "http://", 7) && strncmp(otlp_endpoint, "https://", 8)) {
			fprintf(stderr,
				"novamon run: --otlp-endpoint: '%s' is not an http:// or https:// URL\n",
				otlp_endpoint);
			return 2;
		}
		if (strlen(otlp_endpoint) >= sizeof(cfg.otlp_endpoint)) {
			fprintf(stderr, "novamon run: --otlp-endpoint: longer than %zu bytes\n",
				sizeof(cfg.otlp_endpoint) - 1);
			return 2;
		}
		snprintf(cfg.otlp_endpoint, sizeof(cfg.otlp_endpoint), "%s", otlp_endpoint);
	}
	if (state_dir)
		snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", state_dir);
	if (ring_bytes) {
		char *end;
		unsigned long long v = strtoull(ring_bytes, &end, 0);

		if (*end || v < 4096 || (v & (v - 1)) || v > (1ull << 30) ||
		    cfg.wakeup_bytes >= v) {
			if (!*end && v >= 4096 && !(v & (v - 1)) && v <= (1ull << 30)) {
				cfg.wakeup_bytes = v / 4;
			} else {
				fprintf(stderr,
					"novamon run: --ring-bytes: '%s' is not a power of two between 4096 and 1073741824\n",
					ring_bytes);
				return 2;
			}
		}
		cfg.ring_bytes = v;
	}
	if (level) {
		if (parse_level(level) < 0) {
			fprintf(stderr,
				"novamon run: --log-level: '%s' is not one of error, warn, info, debug\n",
				level);
			return 2;
		}
		cfg.log_level = parse_level(level);
	}
	log_set_level(cfg.log_level);

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (start_security(&cfg, &auth, &audit))
		goto out;
	store = metric_store__new();
	if (!store)
		goto out;
	if (cfg.store_enabled) {
		db = open_store(&cfg);
		if (!db)
			goto out;
		sinks[nsinks++] = store_sink(db);
		if (prom_api__init(&api, db))
			goto out;
		if (cfg.spans_enabled && (cfg.otlp_endpoint[0] || spans_path)) {
			/* exemplars exist when traces are exported: keep them for query_exemplars */
			exstore = exemplars__new(cfg.spans_max_exemplars);
			if (!exstore) {
				log_error("cannot make the exemplar store: %s", strerror(errno));
				goto out;
			}
			sinks[nsinks++] = exemplars__tick_sink(exstore);
			api.exemplars = exstore;
		}
		err = prom_api__routes(&api, routes + nroutes, MAX_ROUTES - nroutes);
		if (err < 0)
			goto out;
		nroutes += err;
		if (ingest__init(&ingest, db))
			goto out;
		err = ingest__routes(&ingest, routes + nroutes, MAX_ROUTES - nroutes);
		if (err < 0)
			goto out;
		/*
		 * Writes need an operator without a tenant (ingest takes any tenant
		 * label); bulk remote-write is data, not an administrative action.
		 */
		for (; err > 0; err--, nroutes++) {
			routes[nroutes].min_role = AUTH_ROLE_OPERATOR;
			routes[nroutes].flags |= HTTP_ROUTE_ALL_TENANTS;
			if (!strcmp(routes[nroutes].path, "/api/v1/write"))
				routes[nroutes].flags |= HTTP_ROUTE_NO_AUDIT;
		}
		sinks[nsinks++] = ingest__sink(&ingest);
		if (cfg.analytics_enabled) {
			/* after the store sink: it scores what the store just committed */
			struct anomalies_opts ao = {
				.max_series = cfg.analytics_max_series,
				.seasonal_period_seconds = cfg.analytics_seasonal_period_seconds,
				.no_score_series = !cfg.analytics_score_series,
			};

			an = anomalies__new(db, &ao);
			if (an && (errno = -anomalies__start(an))) {
				anomalies__free(an);
				an = NULL;
			}
			if (!an) {
				log_error("cannot start anomaly detection: %s", strerror(errno));
				goto out;
			}
			sinks[nsinks++] = anomalies__sink(an);
			anomaly_api = (struct anomaly_api){ .an = an, .prom = &api };
			err = anomaly_api__routes(&anomaly_api, routes + nroutes,
						  MAX_ROUTES - nroutes);
			if (err < 0)
				goto out;
			nroutes += err;
		}
	}
	dash_store = open_dashboards(&cfg);
	if (dash_store) {
		if (dashboards__init(&dashboards, dash_store, db ? &api.eng : NULL))
			goto out;
		err = dashboards__seed(&dashboards);
		if (err < 0)
			log_warn("cannot create the operations dashboard: %s", strerror(-err));
		else if (err > 0)
			log_info("created the operations dashboard (/api/dashboards/%s)",
				 DASHBOARDS_SEED_ID);
		err = dashboards__routes(&dashboards, routes + nroutes, MAX_ROUTES - nroutes);
		if (err < 0)
			goto out;
		nroutes += err;
	}
	if (system_status__init(&system_status, store, db ? &api.eng : NULL))
		goto out;
	err = system_status__routes(&system_status, routes + nroutes, MAX_ROUTES - nroutes);
	if (err < 0)
		goto out;
	nroutes += err;
	if (cfg.remote_write_url[0]) {
		rw = start_remote_write(&cfg);
		if (!rw)
			goto out;
		sinks[nsinks++] = remote_write__sink(rw);
	}
	if (cfg.otlp_endpoint[0]) {
		otlp = start_otlp(&cfg, (int64_t)now_ms());
		if (!otlp)
			goto out;
		sinks[nsinks++] = otlp__metrics_sink(otlp);
	}
	if (db) {
		struct ws_opts wopts = {
			.engine = &api.eng,
			.authenticate = auth ? ws_authenticate : NULL,
			.auth_ctx = auth,
			.scope = ws_scope,
			.widgets = dash_store ? ws_widgets : NULL,
			.widgets_ctx = dash_store,
		};

		ws = ws__new(&wopts);
		if (!ws) {
			log_error("cannot start the WebSocket feeds: %s", strerror(errno));
			goto out;
		}
		/* after the store sink: it evaluates what that committed */
		sinks[nsinks++] = ws__sink(ws);
		hopts.ws_protocol = ws__protocol(ws);
	}
	err = webui__routes(routes + nroutes, MAX_ROUTES - nroutes);
	if (err < 0)
		goto out;
	nroutes += err;
	if (audit) {
		err = audit__routes(audit, routes + nroutes, MAX_ROUTES - nroutes);
		if (err < 0)
			goto out;
		nroutes += err;
	}
	hopts.listen = cfg.listen;
	hopts.store = store;
	hopts.routes = routes;
	hopts.nroutes = nroutes;
	if (auth) {
		hopts.authenticate = auth__http_authenticate;
		hopts.auth_ctx = auth;
		hopts.public_paths = public_paths;
		hopts.npublic_paths = sizeof(public_paths) / sizeof(public_paths[0]) -
				      (cfg.auth_public_metrics ? 0 : 1);
	}
	if (audit) {
		hopts.audit = audit__http_hook;
		hopts.audit_ctx = audit;
	}
	hopts.tls_cert_file = cfg.tls_cert_file;
	hopts.tls_key_file = cfg.tls_key_file;
	http = http_server__start(&hopts);
	if (!http) {
		log_error("cannot serve HTTP on %s: %s%s", cfg.listen, strerror(errno),
			  cfg.tls_cert_file[0] && (errno == EINVAL || errno == ENOENT) ?
				  " (check tls.cert_file and tls.key_file)" :
				  "");
		goto out;
	}
	log_info("serving %s://%s/ (/metrics, /health%s)", cfg.tls_cert_file[0] ? "https" : "http",
		 cfg.listen, db ? ", /api/v1/query and the Prometheus query API" : "");

	reg = registry__new("/proc");
	if (!reg) {
		log_error("cannot start the VM registry: %s", strerror(errno));
		goto out;
	}
	cap = capture__start(&cfg);
	if (!cap) {
		log_error("cannot start capture: %s%s", strerror(errno),
			  errno == EINVAL ? " (check capture.topology)" : "");
		goto out;
	}
	log_report(cap);
	if (cfg.spans_enabled && (otlp || spans_path)) {
		struct spans_opts so;

		spans_opts__init(&so, &cfg);
		so.workers = cap->workers;
		so.vcpu_map_fd = cap->vcpu_map_fd;
		logq = logq__new(1024, cfg.spans_mask_personal_data);
		so.logq = logq;
		traces = vmtrace__new();
		so.vmtrace = traces; /* NULL (no memory): no exemplars, spans still run */
		if (otlp)
			so.sinks[so.nsinks++] = (struct spans_sink){ .name = "otlp",
								     .span = otlp_span_sink,
								     .log = otlp_log_sink,
								     .ctx = otlp };
		if (spans_path) {
			spans_file = span_file__open(spans_path);
			if (!spans_file) {
				log_error("cannot open --spans-file %s: %s", spans_path,
					  strerror(errno));
				goto out;
			}
			so.sinks[so.nsinks++] = span_file__sink(spans_file);
		}
		spans = logq ? spans__new(&so) : NULL;
		err = spans ? spans__start(spans) : -errno;
		if (err) {
			log_error("cannot start span synthesis: %s", strerror(-err));
			goto out;
		}
		spans_log_capture(logq, &cap->report, true);
		sinks[nsinks++] = spans__tick_sink(spans);
		if (an)
			anomalies__set_logq(an, logq);
	}
	tick = tick__new(&cfg, cap, reg, store, sinks, nsinks);
	if (!tick) {
		log_error("cannot start the tick: %s", strerror(errno));
		goto out;
	}
	tick__set_traces(tick, traces);
	/* Publish at once so /health answers before the first full second. */
	tick__run(tick, now_ms());
	while (!stop_requested) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		sleep_until(ts.tv_sec + 1, -TICK_PREPARE_LEAD_MS);
		if (stop_requested)
			break;
		tick__prepare(tick, now_ms());
		sleep_until(ts.tv_sec + 1, 0);
		if (stop_requested)
			break;
		err = tick__run(tick, now_ms());
		if (err)
			log_warn("tick failed: %s", strerror(-err));
	}
	log_info("stopping");
	ret = 0;
out:
	http_server__stop(http);
	audit__close(audit);
	auth__free(auth);
	if (cap)
		spans_log_capture(logq, &cap->report, false);
	spans__free(spans); /* before capture__stop: it drains the workers' rings */
	span_file__close(spans_file);
	if (an)
		anomalies__set_logq(an, NULL);
	logq__free(logq);
	capture__stop(cap);
	tick__free(tick);
	vmtrace__free(traces); /* after both its writer (spans) and reader (tick) */
	exemplars__free(exstore); /* after the HTTP server and the tick */
	remote_write__stop(rw);
	anomalies__free(an);
	otlp__stop(otlp);
	ws__free(ws); /* after the HTTP server and the tick, which use it */
	dashstore__close(dash_store);
	tsdb__close(db);
	registry__free(reg);
	metric_store__free(store);
	return ret;
}
