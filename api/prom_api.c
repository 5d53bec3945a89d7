/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prom_api: the Prometheus HTTP query API (see prom_api.h).
 *
 * Handlers are thin: read and check parameters, call the engine or the
 * store, render. JSON is written by hand into a growing buffer (jansson's
 * number formatting cannot give Prometheus' timestamps and value strings);
 * every string goes through prom_buf_str(), which escapes quotes, backslashes
 * and control characters and passes UTF-8 through unchanged.
 *
 * Tenancy: a request whose principal (api/auth.h) carries a tenant sees only
 * series labelled tenant="<it>", on every route: queries are rewritten with
 * promql_restrict(), and the metadata routes add the same matcher to each
 * match[] (or use it alone when there is none). Series without the label
 * (host-wide ones) are therefore invisible to tenants.
 */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "exemplars.h"
#include "fmtnum.h"
#include "prom_api.h"
#include "rx.h"

#define PROM_JSON "application/json"
#define PROM_PARAM_MAX 65536
#define PROM_MAX_MATCHERS TSDB_MAX_LABELS
#define PROM_MAX_MATCH_PARAMS 64
#define PROM_SEARCH_LIMIT 100
#define PROM_TENANT_LABEL "tenant"
/* Prometheus' minTime/maxTime stand-ins: the whole range. */
#define PROM_MIN_T (INT64_MIN / 4)
#define PROM_MAX_T (INT64_MAX / 4)

/* ------------------------------------------------------------------ */
/* JSON output */

struct prom_buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

/* Room for n more bytes and the NUL. Returns 0 or -ENOMEM (also kept in b->err). */
static int prom_buf_reserve(struct prom_buf *b, size_t n)
{
	size_t cap;
	char *grown;

	if (b->err)
		return b->err;
	if (b->len + n + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	grown = realloc(b->p, cap);
	if (!grown) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->p = grown;
	b->cap = cap;
	return 0;
}

static void prom_buf_putn(struct prom_buf *b, const char *s, size_t n)
{
	if (prom_buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void prom_buf_puts(struct prom_buf *b, const char *s)
{
	prom_buf_putn(b, s, strlen(s));
}

/* s as a JSON string, quotes included. */
static void prom_buf_str(struct prom_buf *b, const char *s)
{
	const char *run = s;

	prom_buf_putn(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		prom_buf_putn(b, run, (size_t)(s - run));
		run = s + 1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
		} else if (c == '\n') {
			strcpy(esc, "\\n");
		} else if (c == '\t') {
			strcpy(esc, "\\t");
		} else if (c == '\r') {
			strcpy(esc, "\\r");
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		}
		prom_buf_puts(b, esc);
	}
	prom_buf_putn(b, run, (size_t)(s - run));
	prom_buf_putn(b, "\"", 1);
}

size_t prom_api_format_time(int64_t ms, char *buf, size_t len)
{
	uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
	unsigned int frac = (unsigned int)(a % 1000);
	char tmp[32], *p;
	size_t n;

	if (!len)
		return 0;
	/* by hand, not snprintf, and in place when it fits: once per point of an answer */
	p = len >= sizeof(tmp) ? buf : tmp;
	n = 0;
	if (ms < 0)
		p[n++] = '-';
	n += fmtnum_u64(p + n, a / 1000);
	if (frac) {
		p[n++] = '.';
		p[n++] = (char)('0' + frac / 100);
		if (frac % 100) {
			p[n++] = (char)('0' + frac / 10 % 10);
			if (frac % 10)
				p[n++] = (char)('0' + frac % 10);
		}
	}
	if (p == tmp) {
		if (n >= len)
			n = len - 1;
		memcpy(buf, tmp, n);
	}
	buf[n] = '\0';
	return n;
}

/*
 * The timestamps of a matrix answer: every series of a range query repeats
 * the same step grid, so each distinct timestamp is formatted once and
 * copied after (Fibonacci hashing spreads an arithmetic progression of
 * timestamps over the slots; a collision only costs a new formatting).
 */
#define TS_CACHE_BITS 12
struct ts_cache {
	int64_t t[1 << TS_CACHE_BITS];
	uint8_t len[1 << TS_CACHE_BITS]; /* 0: empty */
	char s[1 << TS_CACHE_BITS][23]; /* "-9223372036854775.808" fits */
};

/* Format t at p (room for 32 bytes, not NUL-terminated), through the cache when there is one. */
static size_t ts_cache_format(struct ts_cache *c, int64_t t, char *p)
{
	size_t slot, n;

	if (!c)
		return prom_api_format_time(t, p, 32);
	slot = (size_t)(((uint64_t)t * 0x9e3779b97f4a7c15ull) >> (64 - TS_CACHE_BITS));
	if (c->len[slot] && c->t[slot] == t) {
		/* all 24 bytes: a fixed-size copy is three moves, a variable one a slow rep movs */
		memcpy(p, c->s[slot], sizeof(c->s[slot]));
		return c->len[slot];
	}
	n = prom_api_format_time(t, p, 32);
	if (n < sizeof(c->s[slot])) {
		memcpy(c->s[slot], p, n);
		c->t[slot] = t;
		c->len[slot] = (uint8_t)n;
	}
	return n;
}

/* [t,"v"], written in place: this runs once per point of an answer. */
static void prom_buf_point(struct prom_buf *b, struct ts_cache *tc, int64_t t, double v)
{
	enum { TIME_MAX = 32, VALUE_MAX = 48 };
	char *p;

	if (prom_buf_reserve(b, TIME_MAX + VALUE_MAX + 5))
		return;
	p = b->p + b->len;
	*p++ = '[';
	p += ts_cache_format(tc, t, p);
	*p++ = ',';
	*p++ = '"';
	p += promql_format_value(v, p, VALUE_MAX);
	*p++ = '"';
	*p++ = ']';
	*p = '\0';
	b->len = (size_t)(p - b->p);
}

/* {"name":"value",...} */
static void prom_buf_labels(struct prom_buf *b, const struct tsdb_label *l, size_t n)
{
	size_t i;

	prom_buf_putn(b, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			prom_buf_putn(b, ",", 1);
		prom_buf_str(b, l[i].name);
		prom_buf_putn(b, ":", 1);
		prom_buf_str(b, l[i].value);
	}
	prom_buf_putn(b, "}", 1);
}

static void prom_buf_result(struct prom_buf *b, const struct promql_result *r, int64_t t_ms)
{
	static const char *const types[] = {
		[PROMQL_SCALAR] = "scalar",
		[PROMQL_VECTOR] = "vector",
		[PROMQL_MATRIX] = "matrix",
		[PROMQL_STRING] = "string",
	};
	struct ts_cache *tc = NULL;
	size_t i, j;

	prom_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"");
	prom_buf_puts(b, types[r->type]);
	prom_buf_puts(b, "\",\"result\":");
	switch (r->type) {
	case PROMQL_SCALAR:
		prom_buf_point(b, NULL, r->scalar_t, r->scalar);
		break;
	case PROMQL_STRING: {
		char ts[32];

		prom_api_format_time(t_ms, ts, sizeof(ts));
		prom_buf_putn(b, "[", 1);
		prom_buf_puts(b, ts);
		prom_buf_putn(b, ",", 1);
		prom_buf_str(b, r->string ? r->string : "");
		prom_buf_putn(b, "]", 1);
		break;
	}
	case PROMQL_VECTOR:
	case PROMQL_MATRIX:
		/* ~30 bytes a point, a few hundred per series: grow once, not 20 times */
		for (i = 0, j = 0; i < r->nseries; i++)
			j += r->series[i].n;
		prom_buf_reserve(b, j * 32 + r->nseries * 256);
		/* worth its 128 KiB when series share timestamps; without it, formatted each time */
		if (r->type == PROMQL_MATRIX && r->nseries > 1 && j > 4096)
			tc = calloc(1, sizeof(*tc));
		prom_buf_putn(b, "[", 1);
		for (i = 0; i < r->nseries; i++) {
			const struct promql_series *s = &r->series[i];

			if (i)
				prom_buf_putn(b, ",", 1);
			prom_buf_puts(b, "{\"metric\":");
			prom_buf_labels(b, s->labels, s->nlabels);
			if (r->type == PROMQL_VECTOR) {
				prom_buf_puts(b, ",\"value\":");
				if (s->n)
					prom_buf_point(b, NULL, s->t[0], s->v[0]);
				else
					prom_buf_point(b, NULL, t_ms, NAN);
			} else {
				prom_buf_puts(b, ",\"values\":[");
				for (j = 0; j < s->n; j++) {
					if (j)
						prom_buf_putn(b, ",", 1);
					prom_buf_point(b, tc, s->t[j], s->v[j]);
				}
				prom_buf_putn(b, "]", 1);
			}
			prom_buf_putn(b, "}", 1);
		}
		prom_buf_putn(b, "]", 1);
		free(tc);
		break;
	}
	prom_buf_puts(b, "}}\n");
}

int prom_api_render_result(const struct promql_result *r, int64_t t_ms, char **out, size_t *len)
{
	struct prom_buf b = { 0 };

	if ((unsigned int)r->type > PROMQL_STRING)
		return -EINVAL;
	prom_buf_result(&b, r, t_ms);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* Hand the buffer to the response as a 200 JSON body. */
static int prom_reply(struct http_response *resp, struct prom_buf *b)
{
	if (b->err) {
		free(b->p);
		return b->err;
	}
	resp->status = 200;
	resp->content_type = PROM_JSON;
	resp->body = b->p;
	resp->body_len = b->len;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Parameters */

int prom_api_parse_time(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, n = 0, off = 0;
	double frac = 0, v;
	struct tm tm = { 0 };
	const char *p;
	char *end;
	time_t t;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (!*end && end != s && !errno) {
		if (!isfinite(v) || fabs(v) > 9.2e15)
			return -EINVAL;
		*ms = (int64_t)llround(v * 1000.0);
		return 0;
	}
	/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return -EINVAL;
	p = s + n;
	if (*p == '.') {
		const char *f = ++p;
		double scale = 0.1;

		while (*p >= '0' && *p <= '9') {
			frac += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
		if (p == f)
			return -EINVAL;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, m2 = 0;

		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m2) != 2 || m2 != 5 || oh > 23 || om > 59)
			return -EINVAL;
		off = (oh * 60 + om) * 60 * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = ((int64_t)t - off) * 1000 + (int64_t)llround(frac * 1000.0);
	return 0;
}

int prom_api_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "ms", 1 },	   { "s", 1000 },      { "m", 60000 },	       { "h", 3600000 },
		{ "d", 86400000 }, { "w", 604800000 }, { "y", 31536000000LL },
	};
	int64_t total = 0;
	size_t last = sizeof(units) / sizeof(units[0]);
	const char *p = s;
	double v;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (!*end && !errno) {
		if (!isfinite(v) || v < 0 || v > 9.2e15)
			return -EINVAL;
		*ms = (int64_t)llround(v * 1000.0);
		return 0;
	}
	/* Prometheus form: integer+unit pairs, largest unit first, each at most once */
	while (*p) {
		unsigned long long n = 0;
		const char *digits = p;
		size_t u;

		while (*p >= '0' && *p <= '9') {
			if (n > 1000000000000ULL)
				return -EINVAL;
			n = n * 10 + (unsigned long long)(*p++ - '0');
		}
		if (p == digits)
			return -EINVAL;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			size_t ul = strlen(units[u].unit);

			/* "m" must not eat the "m" of "ms" */
			if (!strncmp(p, units[u].unit, ul) && !(u == 2 && p[1] == 's'))
				break;
		}
		if (u == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		/* order: y w d h m s ms, i.e. strictly decreasing unit size */
		if (last != sizeof(units) / sizeof(units[0]) && units[u].ms >= units[last].ms)
			return -EINVAL;
		last = u;
		p += strlen(units[u].unit);
		if (n > (unsigned long long)(INT64_MAX / 4 / units[u].ms))
			return -EINVAL;
		total += (int64_t)n * units[u].ms;
	}
	*ms = total;
	return 0;
}

int prom_api_param(const struct http_request *req, const char *name, unsigned int n, char *buf,
		   size_t len)
{
	int rc = -ENOENT;

	if (req->body_len && !strncmp(req->content_type, "application/x-www-form-urlencoded", 33))
		rc = http_param(req->body, name, n, buf, len);
	if (rc == -ENOENT)
		rc = http_param(req->query, name, n, buf, len);
	return rc;
}

/* A request being parsed, with room for one decoded parameter (heap: it is big). */
struct prom_params {
	const struct http_request *req;
	struct http_response *resp;
	char buf[PROM_PARAM_MAX];
};

/*
 * Read time parameter name into *ms (def when absent). Returns 0, or -EINVAL
 * after writing the 400 answer.
 */
static int prom_time_param(struct prom_params *pp, const char *name, int64_t def, int64_t *ms)
{
	int rc = prom_api_param(pp->req, name, 0, pp->buf, sizeof(pp->buf));

	*ms = def;
	if (rc == -ENOENT || (rc == 0 && !pp->buf[0]))
		return 0;
	if (rc < 0 || prom_api_parse_time(pp->buf, ms)) {
		http_error(pp->resp, 400, "bad_data",
			   "invalid parameter \"%s\": cannot parse \"%.200s\" to a valid timestamp",
			   name, rc < 0 ? "" : pp->buf);
		return -EINVAL;
	}
	return 0;
}

/*
 * The optional start and end of the metadata routes (series, labels,
 * query_exemplars): all time when absent. Returns 0, or -EINVAL after
 * writing the 400 answer (a bad time, or end before start).
 */
static int prom_window_params(struct prom_params *pp, int64_t *start, int64_t *end)
{
	if (prom_time_param(pp, "start", PROM_MIN_T, start) ||
	    prom_time_param(pp, "end", PROM_MAX_T, end))
		return -EINVAL;
	if (*end < *start) {
		http_error(
			pp->resp, 400, "bad_data",
			"invalid parameter \"end\": end timestamp must not be before start time");
		return -EINVAL;
	}
	return 0;
}

/*
 * The "query" parameter parsed. Returns the expression, or NULL after
 * writing the 400 answer (missing, too long, or a syntax error).
 */
static struct promql_expr *prom_query_param(struct prom_params *pp)
{
	struct promql_expr *e;
	char err[512] = "";
	int rc;

	rc = prom_api_param(pp->req, "query", 0, pp->buf, sizeof(pp->buf));
	if (rc < 0 || !pp->buf[0]) {
		http_error(pp->resp, 400, "bad_data", "invalid parameter \"query\": %s",
			   rc == -E2BIG ? "too long" : "missing");
		return NULL;
	}
	e = promql_parse(pp->buf, err, sizeof(err));
	if (!e)
		http_error(pp->resp, 400, "bad_data", "invalid parameter \"query\": %s", err);
	return e;
}

static int prom_duration_param(struct prom_params *pp, const char *name, int64_t *ms, bool *present)
{
	int rc = prom_api_param(pp->req, name, 0, pp->buf, sizeof(pp->buf));

	*present = rc >= 0 && pp->buf[0];
	*ms = 0;
	if (!*present)
		return 0;
	if (prom_api_parse_duration(pp->buf, ms)) {
		http_error(pp->resp, 400, "bad_data",
			   "invalid parameter \"%s\": cannot parse \"%.200s\" to a valid duration",
			   name, pp->buf);
		return -EINVAL;
	}
	return 0;
}

static int64_t prom_now(const struct prom_api *api)
{
	struct timespec ts;

	if (api->now_ms)
		return api->now_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The tenant the request is limited to, or NULL (auth off, admin, all tenants). */
static const char *prom_tenant(const struct http_request *req)
{
	return req->principal && req->principal->tenant[0] ? req->principal->tenant : NULL;
}

/* ------------------------------------------------------------------ */
/* Queries */

/* Map an engine error to Prometheus' status and type. */
static int prom_eval_error(struct http_response *resp, int err, const char *msg)
{
	if (err == -ETIMEDOUT || err == -ECANCELED)
		return http_error(resp, 503, "timeout", "%s", msg);
	if (err == -ENOMEM)
		return http_error(resp, 503, "execution", "%s", msg[0] ? msg : "out of memory");
	return http_error(resp, 422, "execution", "%s", msg);
}

/*
 * The query: parameters. range false: an instant query at time; true: a range
 * query over start, end, step. simple: the /api/metrics/query defaults.
 */
static int prom_run_query(struct prom_api *api, const struct http_request *req,
			  struct http_response *resp, int range, bool simple)
{
	struct prom_params *pp;
	struct promql_result *res = NULL;
	struct promql_expr *e = NULL;
	int64_t t, start, end, step = 0, timeout;
	char err[512] = "";
	bool have_step, have_timeout;
	int rc;

	pp = malloc(sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	pp->req = req;
	pp->resp = resp;
	rc = 0;
	if (prom_duration_param(pp, "timeout", &timeout, &have_timeout))
		goto out;
	if (simple) {
		bool s = prom_api_param(req, "start", 0, pp->buf, sizeof(pp->buf)) >= 0;
		bool en = prom_api_param(req, "end", 0, pp->buf, sizeof(pp->buf)) >= 0;

		range = s || en;
	}
	if (range) {
		if (prom_time_param(pp, "start", INT64_MIN, &start) ||
		    prom_time_param(pp, "end", INT64_MIN, &end) ||
		    prom_duration_param(pp, "step", &step, &have_step))
			goto out;
		if (start == INT64_MIN || end == INT64_MIN) {
			http_error(resp, 400, "bad_data", "invalid parameter \"%s\": missing",
				   start == INT64_MIN ? "start" : "end");
			goto out;
		}
		if (end < start) {
			http_error(
				resp, 400, "bad_data",
				"invalid parameter \"end\": end timestamp must not be before start time");
			goto out;
		}
		if (!have_step && simple) {
			step = (end - start) / 250 / 1000 * 1000;
			if (step < 1000)
				step = 1000;
		} else if (!have_step) {
			http_error(resp, 400, "bad_data", "invalid parameter \"step\": missing");
			goto out;
		}
		if (step <= 0) {
			http_error(
				resp, 400, "bad_data",
				"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer");
			goto out;
		}
		if ((end - start) / step > PROM_API_MAX_POINTS) {
			http_error(
				resp, 400, "bad_data",
				"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)");
			goto out;
		}
	} else if (prom_time_param(pp, "time", prom_now(api), &t)) {
		goto out;
	}

	e = prom_query_param(pp);
	if (!e)
		goto out;
	if (prom_tenant(req)) {
		rc = promql_restrict(e, PROM_TENANT_LABEL, prom_tenant(req));
		if (rc)
			goto out;
	}
	if (range)
		rc = promql_eval_range(&api->eng, e, start, end, step, &res, err, sizeof(err));
	else
		rc = promql_eval_instant(&api->eng, e, t, &res, err, sizeof(err));
	if (rc == -EINVAL && range) {
		/* the expression's type does not suit a range query: a request error */
		rc = 0;
		http_error(resp, 400, "bad_data", "%s", err);
		goto out;
	}
	if (rc) {
		rc = prom_eval_error(resp, rc, err);
		goto out;
	}
	{
		struct prom_buf b = { 0 };

		prom_buf_result(&b, res, range ? end : t);
		rc = prom_reply(resp, &b);
	}
out:
	promql_result__free(res);
	promql_expr__free(e);
	free(pp);
	return rc;
}

static int prom_h_query(const struct http_request *req, struct http_response *resp, void *ctx)
{
	return prom_run_query(ctx, req, resp, 0, false);
}

static int prom_h_query_range(const struct http_request *req, struct http_response *resp, void *ctx)
{
	return prom_run_query(ctx, req, resp, 1, false);
}

static int prom_h_simple_query(const struct http_request *req, struct http_response *resp,
			       void *ctx)
{
	return prom_run_query(ctx, req, resp, 0, true);
}

/* ------------------------------------------------------------------ */
/* Metadata: series, labels, label values */

/* The parsed match[] parameters: each a matcher list with its owner. */
struct prom_matches {
	struct promql_expr *expr[PROM_MAX_MATCH_PARAMS];
	struct tsdb_matcher m[PROM_MAX_MATCH_PARAMS][PROM_MAX_MATCHERS];
	int nm[PROM_MAX_MATCH_PARAMS];
	unsigned int n;
	int64_t start, end;
	bool have_range;
};

static void prom_matches_free(struct prom_matches *mt)
{
	unsigned int i;

	if (!mt)
		return;
	for (i = 0; i < mt->n; i++)
		promql_expr__free(mt->expr[i]);
	free(mt);
}

/*
 * Parse match[] (name: "match[]"), start and end. Returns the set, or NULL
 * with *rc 0 after a 400 answer, or *rc -ENOMEM.
 */
static struct prom_matches *prom_matches_parse(const struct http_request *req,
					       struct http_response *resp, const char *name,
					       int *rc)
{
	struct prom_params *pp = malloc(sizeof(*pp));
	struct prom_matches *mt = calloc(1, sizeof(*mt));
	const char *tenant = prom_tenant(req);
	char err[512];
	int r;

	*rc = -ENOMEM;
	if (!pp || !mt)
		goto fail;
	*rc = 0;
	pp->req = req;
	pp->resp = resp;
	if (prom_window_params(pp, &mt->start, &mt->end))
		goto fail;
	mt->have_range = mt->start != PROM_MIN_T || mt->end != PROM_MAX_T;
	while ((r = prom_api_param(req, name, mt->n, pp->buf, sizeof(pp->buf))) != -ENOENT) {
		int nm;

		if (mt->n == PROM_MAX_MATCH_PARAMS || r < 0) {
			http_error(resp, 400, "bad_data", "invalid parameter \"%s\": %s", name,
				   r < 0 ? "too long" : "too many");
			goto fail;
		}
		/* room for the tenant's matcher */
		nm = promql_parse_selector(pp->buf, &mt->expr[mt->n], mt->m[mt->n],
					   PROM_MAX_MATCHERS - 1, err, sizeof(err));
		if (nm < 0) {
			http_error(resp, 400, "bad_data", "invalid parameter \"%s\": %s", name,
				   err);
			goto fail;
		}
		if (tenant)
			mt->m[mt->n][nm++] =
				(struct tsdb_matcher){ TSDB_MATCH_EQ, PROM_TENANT_LABEL, tenant };
		mt->nm[mt->n++] = nm;
	}
	free(pp);
	return mt;

fail:
	free(pp);
	prom_matches_free(mt);
	return NULL;
}

static int prom_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growing list of malloc'd strings, sorted and made unique before output. */
struct prom_strv {
	char **v;
	size_t n;
	size_t cap;
};

static int prom_strv_add(struct prom_strv *sv, char *s)
{
	if (!s)
		return -ENOMEM;
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 64;
		char **grown = realloc(sv->v, cap * sizeof(*grown));

		if (!grown) {
			free(s);
			return -ENOMEM;
		}
		sv->v = grown;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	return 0;
}

static void prom_strv_free(struct prom_strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

/*
 * Answer {"status":"success","data":[...]} from sv: sorted, duplicates
 * dropped; raw: the items are JSON already, else strings to quote.
 */
static int prom_reply_strv(struct http_response *resp, struct prom_strv *sv, bool raw)
{
	struct prom_buf b = { 0 };
	size_t i, out = 0;

	if (sv->n)
		qsort(sv->v, sv->n, sizeof(*sv->v), prom_strcmp);
	prom_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
	for (i = 0; i < sv->n; i++) {
		if (i && !strcmp(sv->v[i], sv->v[i - 1]))
			continue;
		if (out++)
			prom_buf_putn(&b, ",", 1);
		if (raw)
			prom_buf_puts(&b, sv->v[i]);
		else
			prom_buf_str(&b, sv->v[i]);
	}
	prom_buf_puts(&b, "]}\n");
	return prom_reply(resp, &b);
}

/* The store's error as an answer: a bad selector is the client's fault. */
static int prom_store_error(struct http_response *resp, int err)
{
	if (err == -EINVAL)
		return http_error(resp, 400, "bad_data",
				  "match[] must contain at least one non-empty matcher");
	return http_error(resp, 422, "execution", "%s", strerror(-err));
}

static int prom_h_series(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct prom_api *api = ctx;
	struct prom_strv sv = { 0 };
	struct prom_matches *mt;
	unsigned int i;
	int rc;

	mt = prom_matches_parse(req, resp, "match[]", &rc);
	if (!mt)
		return rc;
	if (!mt->n) {
		rc = http_error(resp, 400, "bad_data", "no match[] parameter provided");
		goto out;
	}
	for (i = 0; i < mt->n; i++) {
		struct tsdb_result *res = NULL;
		size_t j;

		/* without a range, metadata only (mint > maxt): every series, no samples read */
		rc = tsdb__select(api->db, mt->m[i], (size_t)mt->nm[i],
				  mt->have_range ? mt->start : 1, mt->have_range ? mt->end : 0,
				  &res);
		if (rc) {
			rc = prom_store_error(resp, rc);
			goto out;
		}
		for (j = 0; j < res->n && !rc; j++) {
			struct prom_buf b = { 0 };

			prom_buf_labels(&b, res->series[j].labels, res->series[j].nlabels);
			rc = b.err ? b.err : prom_strv_add(&sv, b.p);
			if (b.err)
				free(b.p);
		}
		tsdb_result__free(res);
		if (rc)
			goto out;
	}
	rc = prom_reply_strv(resp, &sv, true);
out:
	prom_strv_free(&sv);
	prom_matches_free(mt);
	return rc;
}

/* Label names (name NULL) or the values of label name, over every match[]. */
static int prom_labels(struct prom_api *api, const struct http_request *req,
		       struct http_response *resp, const char *name)
{
	struct prom_strv sv = { 0 };
	struct prom_matches *mt;
	unsigned int i;
	int rc = 0;

	mt = prom_matches_parse(req, resp, "match[]", &rc);
	if (!mt)
		return rc;
	for (i = 0; i < (mt->n ? mt->n : 1); i++) {
		const struct tsdb_matcher only_tenant = { TSDB_MATCH_EQ, PROM_TENANT_LABEL,
							  prom_tenant(req) };
		const struct tsdb_matcher *m = mt->n ? mt->m[i] : NULL;
		size_t nm = mt->n ? (size_t)mt->nm[i] : 0;
		char **out = NULL;
		int n, j;

		if (!mt->n && only_tenant.value) {
			m = &only_tenant;
			nm = 1;
		}
		if (name)
			n = tsdb__label_values(api->db, name, m, nm, mt->start, mt->end, &out);
		else
			n = tsdb__label_names(api->db, m, nm, mt->start, mt->end, &out);
		if (n < 0) {
			rc = prom_store_error(resp, n);
			goto out;
		}
		for (j = 0; j < n && !rc; j++)
			rc = prom_strv_add(&sv, strdup(out[j]));
		tsdb_strings__free(out);
		if (rc)
			goto out;
	}
	rc = prom_reply_strv(resp, &sv, false);
out:
	prom_strv_free(&sv);
	prom_matches_free(mt);
	return rc;
}

static int prom_h_labels(const struct http_request *req, struct http_response *resp, void *ctx)
{
	return prom_labels(ctx, req, resp, NULL);
}

static bool prom_label_name_ok(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* GET /api/v1/label/<name>/values (a prefix route on /api/v1/label/). */
static int prom_h_label_values(const struct http_request *req, struct http_response *resp,
			       void *ctx)
{
	static const char prefix[] = "/api/v1/label/", suffix[] = "/values";
	const char *name = req->path + sizeof(prefix) - 1;
	size_t plen = strlen(req->path), nlen;
	char label[256];

	if (plen < sizeof(prefix) - 1 + sizeof(suffix) - 1 ||
	    strcmp(req->path + plen - (sizeof(suffix) - 1), suffix))
		return http_error(resp, 404, "bad_data", "not found");
	nlen = plen - (sizeof(prefix) - 1) - (sizeof(suffix) - 1);
	if (!prom_label_name_ok(name, nlen) || nlen >= sizeof(label))
		return http_error(resp, 400, "bad_data", "invalid label name: \"%.*s\"",
				  (int)(nlen < 200 ? nlen : 200), name);
	memcpy(label, name, nlen);
	label[nlen] = '\0';
	return prom_labels(ctx, req, resp, label);
}

/* GET /api/metrics/search: metric names with their label sets (see prom_api.h). */
static int prom_h_search(const struct http_request *req, struct http_response *resp, void *ctx)
{
	char rx_err[128];
	struct prom_api *api = ctx;
	struct prom_params *pp = NULL;
	struct tsdb_matcher nm_re = { TSDB_MATCH_RE, TSDB_NAME_LABEL, NULL };
	struct tsdb_matcher names_m[2];
	const char *tenant = prom_tenant(req);
	size_t nnames_m = 0;
	struct prom_buf b = { 0 };
	char sub[512] = "", **names = NULL;
	unsigned long limit = PROM_SEARCH_LIMIT;
	regex_t re;
	bool have_re = false;
	int n, i, rc = 0, out = 0;

	pp = malloc(sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	if (prom_api_param(req, "limit", 0, pp->buf, sizeof(pp->buf)) > 0) {
		char *end;

		limit = strtoul(pp->buf, &end, 10);
		if (*end || !limit) {
			rc = http_error(resp, 400, "bad_data",
					"invalid parameter \"limit\": a positive integer");
			goto out;
		}
	}
	if (prom_api_param(req, "regex", 0, pp->buf, sizeof(pp->buf)) > 0) {
		nm_re.value = pp->buf;
		/* check it here for a clear message (the store anchors it) */
		if (rx_compile(&re, pp->buf, REG_EXTENDED | REG_NOSUB, rx_err, sizeof(rx_err))) {
			rc = http_error(resp, 400, "bad_data", "invalid parameter \"regex\": %s",
					rx_err);
			goto out;
		}
		regfree(&re);
		have_re = true;
	} else if (prom_api_param(req, "match", 0, sub, sizeof(sub)) == -E2BIG) {
		rc = http_error(resp, 400, "bad_data", "invalid parameter \"match\": too long");
		goto out;
	}

	if (have_re)
		names_m[nnames_m++] = nm_re;
	if (tenant)
		names_m[nnames_m++] =
			(struct tsdb_matcher){ TSDB_MATCH_EQ, PROM_TENANT_LABEL, tenant };
	n = tsdb__label_values(api->db, TSDB_NAME_LABEL, nnames_m ? names_m : NULL, nnames_m,
			       PROM_MIN_T, PROM_MAX_T, &names);
	if (n < 0) {
		rc = prom_store_error(resp, n);
		goto out;
	}
	prom_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
	for (i = 0; i < n; i++) {
		struct tsdb_matcher m[2] = {
			{ TSDB_MATCH_EQ, TSDB_NAME_LABEL, names[i] },
			{ TSDB_MATCH_EQ, PROM_TENANT_LABEL, tenant },
		};
		struct tsdb_result *res = NULL;
		size_t j;

		if (sub[0] && !strstr(names[i], sub))
			continue;
		rc = tsdb__select(api->db, m, tenant ? 2 : 1, 1, 0, &res);
		if (rc) {
			rc = prom_store_error(resp, rc);
			goto out;
		}
		prom_buf_puts(&b, out++ ? ",{\"name\":" : "{\"name\":");
		prom_buf_str(&b, names[i]);
		prom_buf_puts(&b, ",\"series\":[");
		for (j = 0; j < res->n && j < limit; j++) {
			if (j)
				prom_buf_putn(&b, ",", 1);
			prom_buf_labels(&b, res->series[j].labels, res->series[j].nlabels);
		}
		prom_buf_puts(&b, "]}");
		tsdb_result__free(res);
	}
	prom_buf_puts(&b, "]}\n");
	rc = prom_reply(resp, &b);
	b.p = NULL;
out:
	free(b.p);
	tsdb_strings__free(names);
	free(pp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Exemplars */

/* The selectors of a query_exemplars expression, each with room for the tenant's matcher. */
struct prom_ex_sel {
	struct exemplars_selector sel[PROM_MAX_MATCH_PARAMS];
	struct tsdb_matcher m[PROM_MAX_MATCH_PARAMS][PROM_MAX_MATCHERS];
	size_t n;
	const char *tenant;
};

static int prom_ex_selector(void *ctx, const struct tsdb_matcher *m, size_t n)
{
	struct prom_ex_sel *xs = ctx;
	size_t k = n + (xs->tenant ? 1 : 0);

	if (xs->n == PROM_MAX_MATCH_PARAMS || k > PROM_MAX_MATCHERS)
		return -E2BIG;
	memcpy(xs->m[xs->n], m, n * sizeof(*m));
	if (xs->tenant)
		xs->m[xs->n][n] =
			(struct tsdb_matcher){ TSDB_MATCH_EQ, PROM_TENANT_LABEL, xs->tenant };
	xs->sel[xs->n] = (struct exemplars_selector){ .m = xs->m[xs->n], .n = k };
	xs->n++;
	return 0;
}

static void prom_buf_hex(struct prom_buf *b, const uint8_t *id, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char s[2];
	size_t i;

	for (i = 0; i < n; i++) {
		s[0] = hex[id[i] >> 4];
		s[1] = hex[id[i] & 15];
		prom_buf_putn(b, s, 2);
	}
}

/* {"seriesLabels":{...},"exemplars":[{"labels":{...},"value":"v","timestamp":t},...]} */
static int prom_ex_series(void *ctx, const struct tsdb_label *labels, size_t nlabels,
			  const struct metric_exemplar *const *ex, size_t nex)
{
	struct prom_buf *b = ctx;
	char num[48];
	size_t i;

	if (b->len && b->p[b->len - 1] != '[')
		prom_buf_puts(b, ",");
	prom_buf_puts(b, "{\"seriesLabels\":");
	prom_buf_labels(b, labels, nlabels);
	prom_buf_puts(b, ",\"exemplars\":[");
	for (i = 0; i < nex; i++) {
		prom_buf_puts(b,
			      i ? ",{\"labels\":{\"trace_id\":\"" : "{\"labels\":{\"trace_id\":\"");
		prom_buf_hex(b, ex[i]->trace_id, sizeof(ex[i]->trace_id));
		prom_buf_puts(b, "\",\"span_id\":\"");
		prom_buf_hex(b, ex[i]->span_id, sizeof(ex[i]->span_id));
		prom_buf_puts(b, "\"},\"value\":\"");
		promql_format_value(ex[i]->value, num, sizeof(num));
		prom_buf_puts(b, num);
		prom_buf_puts(b, "\",\"timestamp\":");
		prom_api_format_time(ex[i]->timestamp_ms, num, sizeof(num));
		prom_buf_puts(b, num);
		prom_buf_puts(b, "}");
	}
	prom_buf_puts(b, "]}");
	return b->err;
}

/*
 * GET/POST /api/v1/query_exemplars?query=&start=&end=: the exemplars of the
 * series the expression's selectors match, in Prometheus' shape; tenants
 * see only their series, as on every query route.
 */
static int prom_h_query_exemplars(const struct http_request *req, struct http_response *resp,
				  void *ctx)
{
	struct prom_api *api = ctx;
	struct prom_params *pp = malloc(sizeof(*pp));
	struct prom_ex_sel *xs = calloc(1, sizeof(*xs));
	struct prom_buf b = { 0 };
	struct promql_expr *e = NULL;
	int64_t start, end;
	int rc = -ENOMEM;

	if (!pp || !xs)
		goto out;
	rc = 0;
	pp->req = req;
	pp->resp = resp;
	if (prom_window_params(pp, &start, &end))
		goto out;
	e = prom_query_param(pp);
	if (!e)
		goto out;
	xs->tenant = prom_tenant(req);
	if (promql_for_each_selector(e, prom_ex_selector, xs)) {
		http_error(resp, 400, "bad_data",
			   "invalid parameter \"query\": too many selectors");
		goto out;
	}
	prom_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
	rc = exemplars__query(api->exemplars, xs->sel, xs->n, start, end, prom_ex_series, &b);
	if (rc == -EINVAL || rc == -E2BIG) {
		free(b.p);
		rc = 0;
		http_error(resp, 400, "bad_data", "invalid parameter \"query\": bad matcher");
		goto out;
	}
	if (rc) {
		free(b.p);
		goto out;
	}
	prom_buf_puts(&b, "]}");
	rc = prom_reply(resp, &b);
out:
	promql_expr__free(e);
	free(xs);
	free(pp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Set-up */

static int prom_select(void *ctx, const struct tsdb_matcher *m, size_t nm, int64_t mint,
		       int64_t maxt, struct tsdb_result **out)
{
	return tsdb__select(ctx, m, nm, mint, maxt, out);
}

int prom_api__init(struct prom_api *api, struct tsdb *db)
{
	if (!api || !db)
		return -EINVAL;
	memset(api, 0, sizeof(*api));
	api->db = db;
	api->eng.select = prom_select;
	api->eng.ctx = db;
	return 0;
}

int prom_api__routes(struct prom_api *api, struct http_route *routes, size_t max)
{
	const struct http_route all[PROM_API_NROUTES] = {
		{ "GET", "/api/v1/query", prom_h_query, api },
		{ "POST", "/api/v1/query", prom_h_query, api },
		{ "GET", "/api/v1/query_range", prom_h_query_range, api },
		{ "POST", "/api/v1/query_range", prom_h_query_range, api },
		{ "GET", "/api/v1/series", prom_h_series, api },
		{ "POST", "/api/v1/series", prom_h_series, api },
		{ "GET", "/api/v1/labels", prom_h_labels, api },
		{ "POST", "/api/v1/labels", prom_h_labels, api },
		{ "GET", "/api/v1/label/", prom_h_label_values, api },
		{ "GET", "/api/metrics/query", prom_h_simple_query, api },
		{ "POST", "/api/metrics/query", prom_h_simple_query, api },
		{ "GET", "/api/metrics/search", prom_h_search, api },
		{ "GET", "/api/v1/query_exemplars", prom_h_query_exemplars, api },
		{ "POST", "/api/v1/query_exemplars", prom_h_query_exemplars, api },
	};

	if (!api || !routes)
		return -EINVAL;
	if (max < PROM_API_NROUTES)
		return -ENOSPC;
	memcpy(routes, all, sizeof(all));
	return PROM_API_NROUTES;
}
