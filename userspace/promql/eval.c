/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql evaluator: evaluates an AST over all steps of a query at once, as
 * Prometheus 2.42's engine.go rangeEval does. Every node yields a scalar
 * (one value per step) or a vector (series with a value-or-gap per step);
 * an instant query is a range query with one step. Each selector issues one
 * select over the whole query window and is then sliced per step, so a 1 h
 * range at 1 s costs one pass over the samples.
 *
 * Semantics kept from Prometheus: lookback [t - 5m, t] inclusive, range
 * windows [t - range, t] inclusive (2.x), stale markers hide a series,
 * __name__ dropped by arithmetic, functions (not last_over_time), unary
 * minus and comparisons with bool; vector matching with on/ignoring,
 * group_left/right and its error messages; aggregation group order by first
 * appearance; topk/bottomk via the same binary heap and final sort; range
 * query matrices sorted by label set.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/ast.h"
#include "fmtnum.h"
#include "promql/dtoa.h"

#define PQ_DEFAULT_MAX_SAMPLES 50000000UL

int pq_errorf(struct pq_eval *ev, int rc, const char *fmt, ...)
{
	va_list ap;

	if (ev->err && ev->errlen) {
		va_start(ap, fmt);
		vsnprintf(ev->err, ev->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

bool pq_is_stale_nan(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits == 0x7ff0000000000002ULL;
}

int64_t pq_step_ts(const struct pq_eval *ev, size_t i)
{
	return ev->start + (int64_t)i * ev->step;
}

/* ---- labels ---- */

int pq_labels_cmp(const struct pq_labels *a, const struct pq_labels *b)
{
	size_t n = a->n < b->n ? a->n : b->n, i;
	int c;

	for (i = 0; i < n; i++) {
		c = strcmp(a->l[i].name, b->l[i].name);
		if (c)
			return c < 0 ? -1 : 1;
		c = strcmp(a->l[i].value, b->l[i].value);
		if (c)
			return c < 0 ? -1 : 1;
	}
	return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= 0xff;
	h *= 1099511628211ULL;
	return h;
}

uint64_t pq_labels_hash(const struct pq_labels *a)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < a->n; i++) {
		h = fnv(h, a->l[i].name);
		h = fnv(h, a->l[i].value);
	}
	return h;
}

const char *pq_labels_get(const struct pq_labels *ls, const char *name)
{
	size_t i;

	for (i = 0; i < ls->n; i++)
		if (!strcmp(ls->l[i].name, name))
			return ls->l[i].value;
	return NULL;
}

static bool in_names(const char *name, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

int pq_labels_without(struct pq_eval *ev, const struct pq_labels *ls, const char *const *names,
		      size_t nnames, bool drop_name, struct pq_labels *out)
{
	struct tsdb_label *l = pq_arena_alloc(&ev->arena, (ls->n + 1) * sizeof(*l));
	size_t i, n = 0;

	if (!l)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < ls->n; i++) {
		if (drop_name && !strcmp(ls->l[i].name, TSDB_NAME_LABEL))
			continue;
		if (in_names(ls->l[i].name, names, nnames))
			continue;
		l[n++] = ls->l[i];
	}
	out->l = l;
	out->n = n;
	return 0;
}

int pq_labels_keep(struct pq_eval *ev, const struct pq_labels *ls, const char *const *names,
		   size_t nnames, struct pq_labels *out)
{
	struct tsdb_label *l = pq_arena_alloc(&ev->arena, (ls->n + 1) * sizeof(*l));
	size_t i, n = 0;

	if (!l)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < ls->n; i++)
		if (in_names(ls->l[i].name, names, nnames))
			l[n++] = ls->l[i];
	out->l = l;
	out->n = n;
	return 0;
}

int pq_labels_set(struct pq_eval *ev, const struct pq_labels *ls, const char *name,
		  const char *value, struct pq_labels *out)
{
	struct tsdb_label *l = pq_arena_alloc(&ev->arena, (ls->n + 1) * sizeof(*l));
	size_t i, n = 0;
	bool done = !value || !*value;

	if (!l)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < ls->n; i++) {
		int c = strcmp(ls->l[i].name, name);

		if (c == 0)
			continue;
		if (c > 0 && !done) {
			l[n].name = name;
			l[n++].value = value;
			done = true;
		}
		l[n++] = ls->l[i];
	}
	if (!done) {
		l[n].name = name;
		l[n++].value = value;
	}
	out->l = l;
	out->n = n;
	return 0;
}

/* Prometheus' Labels.String(): {a="b", c="d"} */
static void labels_str(const struct pq_labels *ls, char *buf, size_t len)
{
	size_t i, o = 0;

	o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "{");
	for (i = 0; i < ls->n; i++)
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s=\"%s\"", i ? ", " : "",
				      ls->l[i].name, ls->l[i].value);
	snprintf(buf + o, o < len ? len - o : 0, "}");
}

/* ---- values ---- */

int pq_value_add_series(struct pq_eval *ev, struct pq_value *val, const struct pq_labels *ls)
{
	struct pq_series *s;

	if (val->ns == val->cap) {
		size_t cap = val->cap ? 2 * val->cap : 16;
		struct pq_series *ns = realloc(val->s, cap * sizeof(*ns));

		if (!ns)
			return pq_errorf(ev, -ENOMEM, "out of memory");
		val->s = ns;
		val->cap = cap;
	}
	s = &val->s[val->ns];
	s->v = malloc(ev->nsteps * (sizeof(double) + 1));
	if (!s->v)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	s->ok = (uint8_t *)(s->v + ev->nsteps);
	memset(s->ok, 0, ev->nsteps);
	s->ls = *ls;
	val->ns++;
	return 0;
}

void pq_value_release(struct pq_eval *ev, struct pq_value *val)
{
	size_t i;

	for (i = 0; i < val->ns; i++)
		free(val->s[i].v);
	free(val->s);
	free(val->scalar);
	ev->cur_samples -= val->counted < ev->cur_samples ? val->counted : ev->cur_samples;
	memset(val, 0, sizeof(*val));
}

/* Drop series without any point; charge the points to the sample limit. */
static int value_finish(struct pq_eval *ev, struct pq_value *val)
{
	size_t i, j, o = 0, pts = 0;

	if (val->type != PROMQL_VECTOR)
		return 0;
	for (i = 0; i < val->ns; i++) {
		size_t n = 0;

		for (j = 0; j < ev->nsteps; j++)
			n += val->s[i].ok[j];
		if (!n) {
			free(val->s[i].v);
			continue;
		}
		pts += n;
		val->s[o++] = val->s[i];
	}
	val->ns = o;
	val->counted += pts;
	ev->cur_samples += pts;
	if (ev->cur_samples > ev->max_samples)
		return pq_errorf(
			ev, -E2BIG,
			"query processing would load too many samples into memory in query execution");
	return 0;
}

/* ---- keymap and pool ---- */

static int keymap_grow(struct pq_keymap *km)
{
	size_t cap = km->cap ? 2 * km->cap : 64, i;
	size_t *slots = calloc(cap, sizeof(*slots));
	uint64_t *hash = calloc(cap, sizeof(*hash));

	if (!slots || !hash) {
		free(slots);
		free(hash);
		return -ENOMEM;
	}
	for (i = 0; i < km->cap; i++) {
		size_t j;

		if (!km->slots[i])
			continue;
		for (j = km->hash[i] & (cap - 1); slots[j]; j = (j + 1) & (cap - 1))
			;
		slots[j] = km->slots[i];
		hash[j] = km->hash[i];
	}
	free(km->slots);
	free(km->hash);
	km->slots = slots;
	km->hash = hash;
	km->cap = cap;
	return 0;
}

int pq_keymap_get(struct pq_keymap *km, const struct pq_labels *ls, bool create, size_t *id)
{
	uint64_t h = pq_labels_hash(ls);
	size_t j;

	if (km->cap) {
		for (j = h & (km->cap - 1); km->slots[j]; j = (j + 1) & (km->cap - 1)) {
			if (km->hash[j] == h && !pq_labels_cmp(&km->keys[km->slots[j] - 1], ls)) {
				*id = km->slots[j] - 1;
				return 0;
			}
		}
	}
	if (!create)
		return -ENOENT;
	if ((km->nkeys + 1) * 2 > km->cap && keymap_grow(km))
		return -ENOMEM;
	if (km->nkeys == km->capkeys) {
		size_t cap = km->capkeys ? 2 * km->capkeys : 16;
		struct pq_labels *k = realloc(km->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		km->keys = k;
		km->capkeys = cap;
	}
	km->keys[km->nkeys++] = *ls;
	for (j = h & (km->cap - 1); km->slots[j]; j = (j + 1) & (km->cap - 1))
		;
	km->slots[j] = km->nkeys;
	km->hash[j] = h;
	*id = km->nkeys - 1;
	return 0;
}

void pq_keymap_free(struct pq_keymap *km)
{
	free(km->keys);
	free(km->slots);
	free(km->hash);
	memset(km, 0, sizeof(*km));
}

void pq_pool_init(struct pq_pool *p, struct pq_value *out)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	out->type = PROMQL_VECTOR;
}

int pq_pool_get(struct pq_eval *ev, struct pq_pool *p, const struct pq_labels *ls, size_t *idx)
{
	size_t before = p->km.nkeys;
	int rc = pq_keymap_get(&p->km, ls, true, idx);

	if (rc)
		return pq_errorf(ev, rc, "out of memory");
	if (p->km.nkeys != before)
		return pq_value_add_series(ev, p->out, ls);
	return 0;
}

int pq_pool_put(struct pq_eval *ev, struct pq_pool *p, size_t idx, size_t step, double v)
{
	struct pq_series *s = &p->out->s[idx];

	if (s->ok[step])
		return pq_errorf(ev, -EEXIST,
				 "vector cannot contain metrics with the same labelset");
	s->ok[step] = 1;
	s->v[step] = v;
	return 0;
}

void pq_pool_free(struct pq_pool *p)
{
	pq_keymap_free(&p->km);
}

int pq_map_drop_name(struct pq_eval *ev, struct pq_value *in, struct pq_value *out,
		     double (*fn)(double v, double a, double b), const double *a, const double *b)
{
	struct pq_pool pool;
	size_t i, j;
	int rc = 0;

	pq_pool_init(&pool, out);
	for (i = 0; i < in->ns; i++) {
		struct pq_labels ls;
		size_t idx;

		rc = pq_labels_without(ev, &in->s[i].ls, NULL, 0, true, &ls);
		if (!rc)
			rc = pq_pool_get(ev, &pool, &ls, &idx);
		if (rc)
			goto out;
		for (j = 0; j < ev->nsteps; j++) {
			if (!in->s[i].ok[j])
				continue;
			rc = pq_pool_put(ev, &pool, idx, j,
					 fn(in->s[i].v[j], a ? a[j] : 0, b ? b[j] : 0));
			if (rc)
				goto out;
		}
	}
out:
	pq_pool_free(&pool);
	return rc;
}

/* ---- selectors ---- */

static int do_select(struct pq_eval *ev, const struct promql_expr *vs, int64_t mint, int64_t maxt,
		     struct tsdb_result **res)
{
	int rc = ev->eng->select(ev->eng->ctx, vs->matchers, vs->nmatchers, mint, maxt, res);

	if (rc)
		return pq_errorf(ev, rc, "select: %s", strerror(-rc));
	return 0;
}

static int copy_labels(struct pq_eval *ev, const struct tsdb_series_data *sd, bool drop_name,
		       struct pq_labels *out)
{
	struct tsdb_label *l = pq_arena_alloc(&ev->arena, (sd->nlabels + 1) * sizeof(*l));
	size_t i, n = 0;

	if (!l)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < sd->nlabels; i++) {
		if (drop_name && !strcmp(sd->labels[i].name, TSDB_NAME_LABEL))
			continue;
		l[n].name = pq_arena_strndup(&ev->arena, sd->labels[i].name,
					     strlen(sd->labels[i].name));
		l[n].value = pq_arena_strndup(&ev->arena, sd->labels[i].value,
					      strlen(sd->labels[i].value));
		if (!l[n].name || !l[n].value)
			return pq_errorf(ev, -ENOMEM, "out of memory");
		n++;
	}
	out->l = l;
	out->n = n;
	return 0;
}

/*
 * An instant vector selector at every step: the newest sample in
 * [ts - offset - lookback, ts - offset], unless it is a stale marker.
 * ts_mode yields the sample's timestamp in seconds instead (timestamp()).
 */
static int eval_vsel(struct pq_eval *ev, const struct promql_expr *vs, bool ts_mode,
		     struct pq_value *out)
{
	struct tsdb_result *res = NULL;
	int64_t off = vs->offset_ms;
	size_t i, j;
	int rc;

	out->type = PROMQL_VECTOR;
	rc = do_select(ev, vs, ev->start - off - ev->lookback, ev->end - off, &res);
	if (rc)
		return rc;
	for (i = 0; i < res->n; i++) {
		const struct tsdb_series_data *sd = &res->series[i];
		struct pq_labels ls;
		struct pq_series *s;
		size_t k = 0;

		rc = copy_labels(ev, sd, false, &ls);
		if (!rc)
			rc = pq_value_add_series(ev, out, &ls);
		if (rc)
			goto out;
		s = &out->s[out->ns - 1];
		for (j = 0; j < ev->nsteps; j++) {
			int64_t ref = pq_step_ts(ev, j) - off;

			while (k < sd->n && sd->t[k] <= ref)
				k++;
			if (!k || sd->t[k - 1] < ref - ev->lookback ||
			    pq_is_stale_nan(sd->v[k - 1]))
				continue;
			s->ok[j] = 1;
			s->v[j] = ts_mode ? (double)sd->t[k - 1] / 1000.0 : sd->v[k - 1];
		}
	}
out:
	tsdb_result__free(res);
	return rc;
}

/* Copy a series' samples without stale markers (NULL copy when none). */
static int strip_stale(const struct tsdb_series_data *sd, int64_t **t, double **v, size_t *n)
{
	size_t i, o = 0;

	for (i = 0; i < sd->n; i++)
		if (pq_is_stale_nan(sd->v[i]))
			break;
	if (i == sd->n) {
		*t = sd->t;
		*v = sd->v;
		*n = sd->n;
		return 0;
	}
	*t = malloc(sd->n * sizeof(**t) + 1);
	*v = malloc(sd->n * sizeof(**v) + 1);
	if (!*t || !*v) {
		free(*t);
		free(*v);
		return -ENOMEM;
	}
	for (i = 0; i < sd->n; i++) {
		if (pq_is_stale_nan(sd->v[i]))
			continue;
		(*t)[o] = sd->t[i];
		(*v)[o++] = sd->v[i];
	}
	*n = o;
	return 1;
}

static const struct promql_expr *unparen(const struct promql_expr *e)
{
	while (e->kind == PQ_PAREN)
		e = e->sub;
	return e;
}

static bool has_dup_labels(struct pq_value *v)
{
	struct pq_keymap km = { 0 };
	size_t i, id;
	bool dup = false;

	for (i = 0; i < v->ns && !dup; i++) {
		size_t before = km.nkeys;

		if (pq_keymap_get(&km, &v->s[i].ls, true, &id))
			break;
		dup = km.nkeys == before;
	}
	pq_keymap_free(&km);
	return dup;
}

/* A function over a range vector: one select, a sliding window per step. */
static int eval_range_func(struct pq_eval *ev, const struct promql_expr *call,
			   struct pq_value *scalar_args, struct pq_value *out)
{
	const struct pq_func *f = call->func;
	const struct promql_expr *ms = unparen(call->args[f->matrix_arg]);
	const struct promql_expr *vs = ms->sub;
	int64_t off = vs->offset_ms, range = ms->range_ms;
	struct tsdb_result *res = NULL;
	size_t i, j, *nr = NULL;
	int rc;

	out->type = PROMQL_VECTOR;
	rc = do_select(ev, vs, ev->start - off - range, ev->end - off, &res);
	if (rc)
		return rc;
	for (i = 0; i < res->n; i++) {
		const struct tsdb_series_data *sd = &res->series[i];
		struct pq_window w = { .range_ms = range, .offset_ms = off };
		int64_t *t;
		double *v;
		size_t n, lo = 0, hi = 0;
		struct pq_labels ls;
		struct pq_series *s;
		int copied = strip_stale(sd, &t, &v, &n);

		if (copied < 0) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
		rc = copy_labels(ev, sd, !f->keep_name, &ls);
		if (!rc)
			rc = pq_value_add_series(ev, out, &ls);
		if (rc) {
			if (copied) {
				free(t);
				free(v);
			}
			goto out;
		}
		s = &out->s[out->ns - 1];
		free(nr);
		nr = NULL;
		if (f->resets) {
			size_t k;

			nr = malloc((n + 1) * sizeof(*nr));
			if (!nr) {
				rc = pq_errorf(ev, -ENOMEM, "out of memory");
				if (copied) {
					free(t);
					free(v);
				}
				goto out;
			}
			nr[n] = n;
			for (k = n; k-- > 0;)
				nr[k] = k >= 1 && v[k] < v[k - 1] ? k : nr[k + 1];
		}
		for (j = 0; j < ev->nsteps; j++) {
			int64_t ref = pq_step_ts(ev, j) - off;
			double arg = 0;

			while (lo < n && t[lo] < ref - range)
				lo++;
			if (hi < lo)
				hi = lo;
			while (hi < n && t[hi] <= ref)
				hi++;
			if (hi == lo)
				continue;
			w.t = t + lo;
			w.v = v + lo;
			w.n = hi - lo;
			w.next_reset = nr ? nr + lo : NULL;
			w.base = lo;
			w.ts = pq_step_ts(ev, j);
			if (f->matrix_arg > 0)
				arg = scalar_args[0].scalar[j];
			if (f->range_fn(&w, arg, &s->v[j]))
				s->ok[j] = 1;
		}
		if (copied) {
			free(t);
			free(v);
		}
	}
	/* engine.go: checked over the whole matrix, not per step */
	rc = value_finish(ev, out);
	if (!rc && has_dup_labels(out))
		rc = pq_errorf(ev, -EINVAL, "vector cannot contain metrics with the same labelset");
out:
	free(nr);
	tsdb_result__free(res);
	return rc;
}

static int eval(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *out);

static double fn_ident(double v, double a, double b)
{
	(void)a;
	(void)b;
	return v;
}

static int eval_call(struct pq_eval *ev, const struct promql_expr *call, struct pq_value *out)
{
	const struct pq_func *f = call->func;
	struct pq_value args[5] = { 0 };
	size_t i, nscalar = 0;
	int rc = 0;

	if (!strcmp(f->name, "timestamp")) {
		const struct promql_expr *a = call->args[0];
		struct pq_value in = { 0 };

		if (a->kind == PQ_VSEL) {
			rc = eval_vsel(ev, a, true, &in);
		} else {
			rc = eval(ev, a, &in);
			for (i = 0; !rc && i < in.ns; i++) {
				size_t j;

				for (j = 0; j < ev->nsteps; j++)
					in.s[i].v[j] = (double)pq_step_ts(ev, j) / 1000.0;
			}
		}
		if (!rc)
			rc = pq_map_drop_name(ev, &in, out, fn_ident, NULL, NULL);
		pq_value_release(ev, &in);
		return rc;
	}
	if (f->matrix_arg >= 0) {
		for (i = 0; i < call->nargs; i++) {
			if ((int)i == f->matrix_arg)
				continue;
			rc = eval(ev, call->args[i], &args[nscalar++]);
			if (rc)
				goto out;
		}
		rc = eval_range_func(ev, call, args, out);
		goto out;
	}
	for (i = 0; i < call->nargs; i++) {
		rc = eval(ev, call->args[i], &args[i]);
		if (rc)
			goto out;
	}
	rc = f->inst_fn(ev, call, args, out);
out:
	for (i = 0; i < 5; i++)
		pq_value_release(ev, &args[i]);
	return rc;
}

/* ---- aggregation ---- */

struct topk_heap {
	size_t *idx; /* series indices */
	size_t n;
};

/* container/heap Less of vectorByValueHeap (topk) / ByReverseValue (bottomk) */
static bool heap_less(const struct pq_value *in, size_t step, bool bottom, size_t a, size_t b)
{
	double va = in->s[a].v[step], vb = in->s[b].v[step];

	if (isnan(va))
		return true;
	return bottom ? va > vb : va < vb;
}

static void heap_up(struct topk_heap *h, const struct pq_value *in, size_t step, bool bottom,
		    size_t j)
{
	for (;;) {
		size_t i = (j - 1) / 2, tmp;

		if (j == 0 || i == j || !heap_less(in, step, bottom, h->idx[j], h->idx[i]))
			break;
		tmp = h->idx[i];
		h->idx[i] = h->idx[j];
		h->idx[j] = tmp;
		j = i;
	}
}

static void heap_down(struct topk_heap *h, const struct pq_value *in, size_t step, bool bottom,
		      size_t i, size_t n)
{
	for (;;) {
		size_t j1 = 2 * i + 1, j = j1, tmp;

		if (j1 >= n)
			break;
		if (j1 + 1 < n && heap_less(in, step, bottom, h->idx[j1 + 1], h->idx[j1]))
			j = j1 + 1;
		if (!heap_less(in, step, bottom, h->idx[j], h->idx[i]))
			break;
		tmp = h->idx[i];
		h->idx[i] = h->idx[j];
		h->idx[j] = tmp;
		i = j;
	}
}

struct sort_ctx {
	const struct pq_value *in;
	size_t step;
	bool bottom;
};

static struct sort_ctx *g_sort_ctx;

struct sort_item {
	size_t idx;
	size_t pos;
};

static int sort_rev_cmp(const void *pa, const void *pb)
{
	const struct sort_item *a = pa, *b = pb;
	struct sort_ctx *c = g_sort_ctx;

	/* sort.Reverse: a before b when Less(b, a) */
	if (heap_less(c->in, c->step, c->bottom, b->idx, a->idx))
		return -1;
	if (heap_less(c->in, c->step, c->bottom, a->idx, b->idx))
		return 1;
	return a->pos < b->pos ? -1 : 1;
}

/*
 * sort.Sort(sort.Reverse(heap)): Go's pdqsort is an insertion sort below 12
 * elements (stable), so ties keep heap order there; beyond, ties keep heap
 * order too here (Prometheus' order is unspecified then).
 */
static void heap_sort_reverse(struct topk_heap *h, const struct pq_value *in, size_t step,
			      bool bottom)
{
	size_t i, j;

	if (h->n <= 12) {
		for (i = 1; i < h->n; i++)
			for (j = i; j > 0 && heap_less(in, step, bottom, h->idx[j - 1], h->idx[j]);
			     j--) {
				size_t tmp = h->idx[j];

				h->idx[j] = h->idx[j - 1];
				h->idx[j - 1] = tmp;
			}
		return;
	} else {
		struct sort_item *it = malloc(h->n * sizeof(*it));
		struct sort_ctx c = { in, step, bottom };

		if (!it)
			return;
		for (i = 0; i < h->n; i++) {
			it[i].idx = h->idx[i];
			it[i].pos = i;
		}
		g_sort_ctx = &c;
		qsort(it, h->n, sizeof(*it), sort_rev_cmp);
		for (i = 0; i < h->n; i++)
			h->idx[i] = it[i].idx;
		free(it);
	}
}

static bool convertible_to_int64(double f)
{
	return f <= 9223372036854775807.0 && f >= -9223372036854775808.0;
}

static int eval_topk(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *in,
		     const double *param, const size_t *grp, size_t ngroups, struct pq_value *out)
{
	bool bottom = e->agg == AGG_BOTTOMK;
	struct topk_heap *heaps = calloc(ngroups + 1, sizeof(*heaps));
	size_t *members = calloc(ngroups + 1, sizeof(*members));
	ssize_t *outidx = malloc((in->ns + 1) * sizeof(*outidx));
	size_t i, g, s;
	int rc = 0;

	out->type = PROMQL_VECTOR;
	if (!heaps || !members || !outidx) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < in->ns; i++) {
		members[grp[i]]++;
		outidx[i] = -1;
	}
	for (g = 0; g < ngroups; g++) {
		heaps[g].idx = malloc((members[g] + 1) * sizeof(size_t));
		if (!heaps[g].idx) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
	}
	for (s = 0; s < ev->nsteps; s++) {
		int64_t k;

		if (!convertible_to_int64(param[s])) {
			rc = pq_errorf(ev, -EINVAL, "Scalar value %g overflows int64", param[s]);
			goto out;
		}
		k = (int64_t)param[s];
		if (k < 1)
			continue;
		for (g = 0; g < ngroups; g++)
			heaps[g].n = 0;
		for (i = 0; i < in->ns; i++) {
			struct topk_heap *h;
			double v, top;

			if (!in->s[i].ok[s])
				continue;
			h = &heaps[grp[i]];
			if (!h->n) {
				h->idx[h->n++] = i;
				continue;
			}
			v = in->s[i].v[s];
			top = in->s[h->idx[0]].v[s];
			if ((int64_t)h->n < k || (bottom ? top > v : top < v) || isnan(top)) {
				if ((int64_t)h->n == k) {
					if (k == 1) {
						h->idx[0] = i;
						continue;
					}
					/* heap.Pop */
					h->idx[0] = h->idx[h->n - 1];
					h->idx[h->n - 1] = 0;
					heap_down(h, in, s, bottom, 0, h->n - 1);
					h->n--;
				}
				h->idx[h->n++] = i;
				heap_up(h, in, s, bottom, h->n - 1);
			}
		}
		for (g = 0; g < ngroups; g++) {
			struct topk_heap *h = &heaps[g];

			if (h->n > 1)
				heap_sort_reverse(h, in, s, bottom);
			for (i = 0; i < h->n; i++) {
				size_t si = h->idx[i];

				if (outidx[si] < 0) {
					rc = pq_value_add_series(ev, out, &in->s[si].ls);
					if (rc)
						goto out;
					outidx[si] = (ssize_t)out->ns - 1;
				}
				out->s[outidx[si]].ok[s] = 1;
				out->s[outidx[si]].v[s] = in->s[si].v[s];
			}
		}
	}
out:
	for (g = 0; heaps && g < ngroups; g++)
		free(heaps[g].idx);
	free(heaps);
	free(members);
	free(outidx);
	return rc;
}

static int eval_agg(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *out)
{
	struct pq_value in = { 0 }, param = { 0 };
	struct pq_keymap km = { 0 };
	size_t *grp = NULL, i, g, s, ngroups;
	double *value = NULL, *mean = NULL, *cnt = NULL;
	double **qv = NULL;
	size_t *qn = NULL;
	int rc;

	out->type = PROMQL_VECTOR;
	rc = eval(ev, e->sub, &in);
	if (!rc && e->param)
		rc = eval(ev, e->param, &param);
	if (rc)
		goto out;
	grp = malloc((in.ns + 1) * sizeof(*grp));
	if (!grp) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < in.ns; i++) {
		struct pq_labels gl;

		if (e->without)
			rc = pq_labels_without(ev, &in.s[i].ls, (const char *const *)e->grouping,
					       e->ngrouping, true, &gl);
		else
			rc = pq_labels_keep(ev, &in.s[i].ls, (const char *const *)e->grouping,
					    e->ngrouping, &gl);
		if (rc)
			goto out;
		if (pq_keymap_get(&km, &gl, true, &grp[i])) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
	}
	ngroups = km.nkeys;
	if (e->agg == AGG_TOPK || e->agg == AGG_BOTTOMK) {
		rc = eval_topk(ev, e, &in, param.scalar, grp, ngroups, out);
		goto out;
	}
	for (g = 0; g < ngroups; g++) {
		rc = pq_value_add_series(ev, out, &km.keys[g]);
		if (rc)
			goto out;
	}
	value = calloc(ngroups + 1, sizeof(*value));
	mean = calloc(ngroups + 1, sizeof(*mean));
	cnt = calloc(ngroups + 1, sizeof(*cnt));
	if (!value || !mean || !cnt) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	if (e->agg == AGG_QUANTILE) {
		qv = calloc(ngroups + 1, sizeof(*qv));
		qn = calloc(ngroups + 1, sizeof(*qn));
		if (!qv || !qn) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
		for (i = 0; i < in.ns; i++)
			qn[grp[i]]++;
		for (g = 0; g < ngroups; g++) {
			qv[g] = malloc((qn[g] + 1) * sizeof(double));
			if (!qv[g]) {
				rc = pq_errorf(ev, -ENOMEM, "out of memory");
				goto out;
			}
		}
	}
	for (s = 0; s < ev->nsteps; s++) {
		memset(cnt, 0, ngroups * sizeof(*cnt));
		for (i = 0; i < in.ns; i++) {
			double v;

			if (!in.s[i].ok[s])
				continue;
			g = grp[i];
			v = in.s[i].v[s];
			if (cnt[g] == 0) {
				cnt[g] = 1;
				value[g] = v;
				mean[g] = v;
				if (e->agg == AGG_STDDEV || e->agg == AGG_STDVAR)
					value[g] = 0;
				else if (e->agg == AGG_GROUP)
					value[g] = 1;
				else if (e->agg == AGG_QUANTILE)
					qv[g][0] = v;
				continue;
			}
			switch (e->agg) {
			case AGG_SUM:
				value[g] += v;
				break;
			case AGG_AVG:
				cnt[g]++;
				if (isinf(mean[g])) {
					if (isinf(v) && (mean[g] > 0) == (v > 0))
						break;
					if (!isinf(v) && !isnan(v))
						break;
				}
				mean[g] += v / cnt[g] - mean[g] / cnt[g];
				break;
			case AGG_MAX:
				if (value[g] < v || isnan(value[g]))
					value[g] = v;
				break;
			case AGG_MIN:
				if (value[g] > v || isnan(value[g]))
					value[g] = v;
				break;
			case AGG_COUNT:
				cnt[g]++;
				break;
			case AGG_STDDEV:
			case AGG_STDVAR: {
				double delta;

				cnt[g]++;
				delta = v - mean[g];
				mean[g] += delta / cnt[g];
				value[g] += delta * (v - mean[g]);
				break;
			}
			case AGG_QUANTILE:
				qv[g][(size_t)cnt[g]] = v;
				cnt[g]++;
				break;
			default:
				break;
			}
		}
		for (g = 0; g < ngroups; g++) {
			double r;

			if (!cnt[g])
				continue;
			switch (e->agg) {
			case AGG_AVG:
				r = mean[g];
				break;
			case AGG_COUNT:
				r = cnt[g];
				break;
			case AGG_STDVAR:
				r = value[g] / cnt[g];
				break;
			case AGG_STDDEV:
				r = sqrt(value[g] / cnt[g]);
				break;
			case AGG_QUANTILE:
				r = pq_quantile(param.scalar[s], qv[g], (size_t)cnt[g]);
				break;
			default:
				r = value[g];
				break;
			}
			out->s[g].ok[s] = 1;
			out->s[g].v[s] = r;
		}
	}
out:
	if (qv)
		for (g = 0; g < km.nkeys; g++)
			free(qv[g]);
	free(qv);
	free(qn);
	free(value);
	free(mean);
	free(cnt);
	free(grp);
	pq_keymap_free(&km);
	pq_value_release(ev, &in);
	pq_value_release(ev, &param);
	return rc;
}

/* ---- binary operators ---- */

static bool is_cmp(enum pq_binop op)
{
	return op >= OP_EQLC && op <= OP_LTE;
}

static bool drops_name(enum pq_binop op)
{
	return op <= OP_POW || op == OP_ATAN2;
}

/* vectorElemBinop: value and whether to keep the element. */
static double elem_binop(enum pq_binop op, double l, double r, bool *keep)
{
	*keep = true;
	switch (op) {
	case OP_ADD:
		return l + r;
	case OP_SUB:
		return l - r;
	case OP_MUL:
		return l * r;
	case OP_DIV:
		return l / r;
	case OP_POW:
		return pow(l, r);
	case OP_MOD:
		return fmod(l, r);
	case OP_ATAN2:
		return atan2(l, r);
	case OP_EQLC:
		*keep = l == r;
		return l;
	case OP_NEQ:
		*keep = l != r;
		return l;
	case OP_GTR:
		*keep = l > r;
		return l;
	case OP_LSS:
		*keep = l < r;
		return l;
	case OP_GTE:
		*keep = l >= r;
		return l;
	case OP_LTE:
		*keep = l <= r;
		return l;
	default:
		*keep = false;
		return 0;
	}
}

static int eval_vector_scalar(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *vec,
			      const double *sc, bool swap, struct pq_value *out)
{
	struct pq_pool pool;
	size_t i, j;
	int rc = 0;

	pq_pool_init(&pool, out);
	for (i = 0; i < vec->ns; i++) {
		struct pq_labels ls = vec->s[i].ls;
		bool have = false;
		size_t idx = 0;

		if (drops_name(e->op) || e->ret_bool) {
			rc = pq_labels_without(ev, &vec->s[i].ls, NULL, 0, true, &ls);
			if (rc)
				goto out;
		}
		for (j = 0; j < ev->nsteps; j++) {
			double lv, rv, v;
			bool keep;

			if (!vec->s[i].ok[j])
				continue;
			lv = vec->s[i].v[j];
			rv = sc[j];
			if (swap) {
				double t = lv;

				lv = rv;
				rv = t;
			}
			v = elem_binop(e->op, lv, rv, &keep);
			if (is_cmp(e->op) && swap)
				v = rv;
			if (e->ret_bool) {
				v = keep ? 1.0 : 0.0;
				keep = true;
			}
			if (!keep)
				continue;
			if (!have) {
				rc = pq_pool_get(ev, &pool, &ls, &idx);
				if (rc)
					goto out;
				have = true;
			}
			rc = pq_pool_put(ev, &pool, idx, j, v);
			if (rc)
				goto out;
		}
	}
out:
	pq_pool_free(&pool);
	return rc;
}

static int signature(struct pq_eval *ev, const struct promql_expr *e, const struct pq_labels *ls,
		     struct pq_labels *sig)
{
	if (e->matching && e->on)
		return pq_labels_keep(ev, ls, (const char *const *)e->match_labels,
				      e->nmatch_labels, sig);
	return pq_labels_without(ev, ls, (const char *const *)e->match_labels, e->nmatch_labels,
				 true, sig);
}

static int eval_set_op(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *l,
		       struct pq_value *r, struct pq_keymap *km, const size_t *lg, const size_t *rg,
		       struct pq_value *out)
{
	size_t *lstamp = calloc(km->nkeys + 1, sizeof(*lstamp));
	size_t *rstamp = calloc(km->nkeys + 1, sizeof(*rstamp));
	ssize_t *lout = malloc((l->ns + 1) * sizeof(*lout));
	ssize_t *rout = malloc((r->ns + 1) * sizeof(*rout));
	size_t i, s;
	int rc = 0;

	out->type = PROMQL_VECTOR;
	if (!lstamp || !rstamp || !lout || !rout) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < l->ns; i++)
		lout[i] = -1;
	for (i = 0; i < r->ns; i++)
		rout[i] = -1;
	for (s = 0; s < ev->nsteps; s++) {
		for (i = 0; i < r->ns; i++)
			if (r->s[i].ok[s])
				rstamp[rg[i]] = s + 1;
		for (i = 0; i < l->ns; i++) {
			bool keep;

			if (!l->s[i].ok[s])
				continue;
			lstamp[lg[i]] = s + 1;
			if (e->op == OP_AND)
				keep = rstamp[lg[i]] == s + 1;
			else if (e->op == OP_UNLESS)
				keep = rstamp[lg[i]] != s + 1;
			else
				keep = true;
			if (!keep)
				continue;
			if (lout[i] < 0) {
				rc = pq_value_add_series(ev, out, &l->s[i].ls);
				if (rc)
					goto out;
				lout[i] = (ssize_t)out->ns - 1;
			}
			out->s[lout[i]].ok[s] = 1;
			out->s[lout[i]].v[s] = l->s[i].v[s];
		}
		if (e->op != OP_OR)
			continue;
		for (i = 0; i < r->ns; i++) {
			if (!r->s[i].ok[s] || lstamp[rg[i]] == s + 1)
				continue;
			if (rout[i] < 0) {
				rc = pq_value_add_series(ev, out, &r->s[i].ls);
				if (rc)
					goto out;
				rout[i] = (ssize_t)out->ns - 1;
			}
			out->s[rout[i]].ok[s] = 1;
			out->s[rout[i]].v[s] = r->s[i].v[s];
		}
	}
	/* lhs and rhs series with one label set (a or b over time) merge */
	if (e->op == OP_OR && has_dup_labels(out)) {
		struct pq_value merged = { .type = PROMQL_VECTOR };
		struct pq_pool pool;
		size_t j;

		pq_pool_init(&pool, &merged);
		for (i = 0; !rc && i < out->ns; i++) {
			size_t idx;

			rc = pq_pool_get(ev, &pool, &out->s[i].ls, &idx);
			for (j = 0; !rc && j < ev->nsteps; j++)
				if (out->s[i].ok[j])
					rc = pq_pool_put(ev, &pool, idx, j, out->s[i].v[j]);
		}
		pq_pool_free(&pool);
		pq_value_release(ev, out);
		*out = merged;
	}
out:
	free(lstamp);
	free(rstamp);
	free(lout);
	free(rout);
	return rc;
}

static int result_labels(struct pq_eval *ev, const struct promql_expr *e, const struct pq_labels *l,
			 const struct pq_labels *r, struct pq_labels *out)
{
	struct pq_labels cur = *l;
	size_t i;
	int rc;

	if (drops_name(e->op) || e->ret_bool) {
		rc = pq_labels_without(ev, &cur, NULL, 0, true, &cur);
		if (rc)
			return rc;
	}
	if (e->card == CARD_ONE_TO_ONE) {
		if (e->matching && e->on)
			rc = pq_labels_keep(ev, &cur, (const char *const *)e->match_labels,
					    e->nmatch_labels, &cur);
		else
			rc = pq_labels_without(ev, &cur, (const char *const *)e->match_labels,
					       e->nmatch_labels, false, &cur);
		if (rc)
			return rc;
	}
	for (i = 0; i < e->ninclude; i++) {
		const char *v = pq_labels_get(r, e->include[i]);

		rc = pq_labels_set(ev, &cur, e->include[i], v ? v : "", &cur);
		if (rc)
			return rc;
	}
	*out = cur;
	return 0;
}

static int eval_vector_vector(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *lhs,
			      struct pq_value *rhs, struct pq_value *out)
{
	bool swap = e->card == CARD_ONE_TO_MANY;
	struct pq_value *l = swap ? rhs : lhs, *r = swap ? lhs : rhs;
	struct pq_keymap km = { 0 };
	struct pq_pool pool;
	size_t *lg = malloc((l->ns + 1) * sizeof(*lg));
	size_t *rg = malloc((r->ns + 1) * sizeof(*rg));
	size_t *rstamp = NULL, *rpres = NULL, *mstamp = NULL;
	ssize_t *lout = NULL, *lastr = NULL;
	size_t i, s;
	int rc = 0;

	pq_pool_init(&pool, out);
	if (!lg || !rg) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < l->ns + r->ns; i++) {
		struct pq_series *se = i < l->ns ? &l->s[i] : &r->s[i - l->ns];
		struct pq_labels sig;

		rc = signature(ev, e, &se->ls, &sig);
		if (rc)
			goto out;
		if (pq_keymap_get(&km, &sig, true, i < l->ns ? &lg[i] : &rg[i - l->ns])) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (e->card == CARD_MANY_TO_MANY) {
		rc = eval_set_op(ev, e, lhs, rhs, &km, lg, rg, out);
		goto out;
	}
	rstamp = calloc(km.nkeys + 1, sizeof(*rstamp));
	rpres = calloc(km.nkeys + 1, sizeof(*rpres));
	mstamp = calloc(km.nkeys + 1, sizeof(*mstamp));
	lout = malloc((l->ns + 1) * sizeof(*lout));
	lastr = malloc((l->ns + 1) * sizeof(*lastr));
	if (!rstamp || !rpres || !mstamp || !lout || !lastr) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < l->ns; i++) {
		lout[i] = -1;
		lastr[i] = -1;
	}
	for (s = 0; s < ev->nsteps; s++) {
		bool any_l = false, any_r = false;

		for (i = 0; i < l->ns && !any_l; i++)
			any_l = l->s[i].ok[s];
		for (i = 0; i < r->ns && !any_r; i++)
			any_r = r->s[i].ok[s];
		if (!any_l || !any_r)
			continue;
		for (i = 0; i < r->ns; i++) {
			size_t g = rg[i];

			if (!r->s[i].ok[s])
				continue;
			if (rstamp[g] == s + 1) {
				char a[512], b[512], m[512];
				struct pq_labels ml;

				if (signature(ev, e, &r->s[i].ls, &ml))
					ml.n = 0;
				if (!(e->matching && e->on))
					ml = km.keys[g];
				labels_str(&ml, m, sizeof(m));
				labels_str(&r->s[i].ls, a, sizeof(a));
				labels_str(&r->s[rpres[g]].ls, b, sizeof(b));
				rc = pq_errorf(
					ev, -EINVAL,
					"found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];many-to-many matching not allowed: matching labels must be unique on one side",
					m, swap ? "left" : "right", a, b);
				goto out;
			}
			rstamp[g] = s + 1;
			rpres[g] = i;
		}
		for (i = 0; i < l->ns; i++) {
			size_t g = lg[i], ri;
			double vl, vr, v;
			bool keep;

			if (!l->s[i].ok[s] || rstamp[g] != s + 1)
				continue;
			ri = rpres[g];
			vl = l->s[i].v[s];
			vr = r->s[ri].v[s];
			if (swap) {
				double t = vl;

				vl = vr;
				vr = t;
			}
			v = elem_binop(e->op, vl, vr, &keep);
			if (e->ret_bool)
				v = keep ? 1.0 : 0.0;
			else if (!keep)
				continue;
			if (lout[i] < 0 || (e->ninclude && lastr[i] != (ssize_t)ri)) {
				struct pq_labels rl;
				size_t idx;

				rc = result_labels(ev, e, &l->s[i].ls, &r->s[ri].ls, &rl);
				if (!rc)
					rc = pq_pool_get(ev, &pool, &rl, &idx);
				if (rc)
					goto out;
				lout[i] = (ssize_t)idx;
				lastr[i] = (ssize_t)ri;
			}
			if (e->card == CARD_ONE_TO_ONE) {
				if (mstamp[g] == s + 1) {
					rc = pq_errorf(
						ev, -EINVAL,
						"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
					goto out;
				}
				mstamp[g] = s + 1;
			}
			rc = pq_pool_put(ev, &pool, (size_t)lout[i], s, v);
			if (rc == -EEXIST && e->card != CARD_ONE_TO_ONE)
				rc = pq_errorf(
					ev, -EINVAL,
					"multiple matches for labels: grouping labels must ensure unique matches");
			if (rc)
				goto out;
		}
	}
out:
	pq_pool_free(&pool);
	pq_keymap_free(&km);
	free(lg);
	free(rg);
	free(rstamp);
	free(rpres);
	free(mstamp);
	free(lout);
	free(lastr);
	return rc;
}

static int eval_binary(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *out)
{
	struct pq_value l = { 0 }, r = { 0 };
	size_t j;
	int rc;

	rc = eval(ev, e->lhs, &l);
	if (!rc)
		rc = eval(ev, e->rhs, &r);
	if (rc)
		goto out;
	if (l.type == PROMQL_SCALAR && r.type == PROMQL_SCALAR) {
		out->type = PROMQL_SCALAR;
		out->scalar = malloc(ev->nsteps * sizeof(double));
		if (!out->scalar) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
		for (j = 0; j < ev->nsteps; j++) {
			bool keep;
			double v = elem_binop(e->op, l.scalar[j], r.scalar[j], &keep);

			out->scalar[j] = is_cmp(e->op) ? (keep ? 1.0 : 0.0) : v;
		}
	} else if (l.type == PROMQL_VECTOR && r.type == PROMQL_SCALAR) {
		rc = eval_vector_scalar(ev, e, &l, r.scalar, false, out);
	} else if (l.type == PROMQL_SCALAR && r.type == PROMQL_VECTOR) {
		rc = eval_vector_scalar(ev, e, &r, l.scalar, true, out);
	} else {
		rc = eval_vector_vector(ev, e, &l, &r, out);
	}
out:
	pq_value_release(ev, &l);
	pq_value_release(ev, &r);
	return rc;
}

static double fn_neg(double v, double a, double b)
{
	(void)a;
	(void)b;
	return -v;
}

static int eval_unary(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *out)
{
	struct pq_value in = { 0 };
	size_t j;
	int rc = eval(ev, e->sub, &in);

	if (rc || e->op == OP_ADD) {
		*out = in;
		if (rc)
			pq_value_release(ev, out);
		return rc;
	}
	if (in.type == PROMQL_SCALAR) {
		for (j = 0; j < ev->nsteps; j++)
			in.scalar[j] = -in.scalar[j];
		*out = in;
		return 0;
	}
	/* engine.go: the name goes, a duplicate anywhere in the matrix is an error */
	for (j = 0; j < in.ns; j++) {
		rc = pq_labels_without(ev, &in.s[j].ls, NULL, 0, true, &in.s[j].ls);
		if (rc)
			goto out;
	}
	if (has_dup_labels(&in)) {
		rc = pq_errorf(ev, -EINVAL, "vector cannot contain metrics with the same labelset");
		goto out;
	}
	rc = pq_map_drop_name(ev, &in, out, fn_neg, NULL, NULL);
out:
	pq_value_release(ev, &in);
	return rc;
}

static int eval(struct pq_eval *ev, const struct promql_expr *e, struct pq_value *out)
{
	size_t j;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	switch (e->kind) {
	case PQ_NUMBER:
		out->type = PROMQL_SCALAR;
		out->scalar = malloc(ev->nsteps * sizeof(double));
		if (!out->scalar)
			return pq_errorf(ev, -ENOMEM, "out of memory");
		for (j = 0; j < ev->nsteps; j++)
			out->scalar[j] = e->num;
		return 0;
	case PQ_STRING:
		out->type = PROMQL_STRING;
		out->str = e->str;
		return 0;
	case PQ_PAREN:
		return eval(ev, e->sub, out);
	case PQ_VSEL:
		rc = eval_vsel(ev, e, false, out);
		break;
	case PQ_MSEL:
		return pq_errorf(ev, -EINVAL, "range vector not allowed here");
	case PQ_CALL:
		rc = eval_call(ev, e, out);
		break;
	case PQ_AGG:
		rc = eval_agg(ev, e, out);
		break;
	case PQ_BINARY:
		rc = eval_binary(ev, e, out);
		break;
	case PQ_UNARY:
		rc = eval_unary(ev, e, out);
		break;
	}
	if (!rc && out->type == PROMQL_VECTOR && !out->counted)
		rc = value_finish(ev, out);
	if (rc)
		pq_value_release(ev, out);
	return rc;
}

/* ---- results ---- */

static int result_labels_dup(struct promql_series *rs, const struct pq_labels *ls)
{
	size_t i;

	rs->labels = calloc(ls->n + 1, sizeof(*rs->labels));
	if (!rs->labels)
		return -ENOMEM;
	rs->nlabels = ls->n;
	for (i = 0; i < ls->n; i++) {
		rs->labels[i].name = strdup(ls->l[i].name);
		rs->labels[i].value = strdup(ls->l[i].value);
		if (!rs->labels[i].name || !rs->labels[i].value)
			return -ENOMEM;
	}
	return 0;
}

void promql_result__free(struct promql_result *r)
{
	size_t i, j;

	if (!r)
		return;
	for (i = 0; i < r->nseries; i++) {
		struct promql_series *s = &r->series[i];

		for (j = 0; s->labels && j < s->nlabels; j++) {
			free((char *)s->labels[j].name);
			free((char *)s->labels[j].value);
		}
		free(s->labels);
		free(s->t);
		free(s->v);
	}
	free(r->series);
	free(r->string);
	free(r);
}

static int cmp_series(const void *a, const void *b)
{
	const struct pq_series *x = a, *y = b;

	return pq_labels_cmp(&x->ls, &y->ls);
}

static int ev_init(struct pq_eval *ev, const struct promql_engine *eng, int64_t start, int64_t end,
		   int64_t step, char *err, size_t errlen)
{
	memset(ev, 0, sizeof(*ev));
	ev->eng = eng;
	ev->start = start;
	ev->end = end;
	ev->step = step;
	ev->nsteps = (size_t)((end - start) / step) + 1;
	ev->lookback = eng->lookback_ms > 0 ? eng->lookback_ms : PROMQL_LOOKBACK_MS;
	ev->max_samples = eng->max_samples ? eng->max_samples : PQ_DEFAULT_MAX_SAMPLES;
	ev->err = err;
	ev->errlen = err ? errlen : 0;
	if (err && errlen)
		err[0] = '\0';
	if (!eng->select)
		return pq_errorf(ev, -EINVAL, "engine has no select function");
	return 0;
}

/* The raw samples of a top-level range selector (instant queries only). */
static int eval_matrix(struct pq_eval *ev, const struct promql_expr *ms, struct promql_result *r)
{
	const struct promql_expr *vs = ms->sub;
	int64_t maxt = ev->start - vs->offset_ms;
	struct tsdb_result *res = NULL;
	size_t i, j;
	int rc = do_select(ev, vs, maxt - ms->range_ms, maxt, &res);

	if (rc)
		return rc;
	r->series = calloc(res->n + 1, sizeof(*r->series));
	if (!r->series) {
		rc = pq_errorf(ev, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < res->n; i++) {
		const struct tsdb_series_data *sd = &res->series[i];
		struct promql_series *s = &r->series[r->nseries];
		struct pq_labels ls = { sd->labels, sd->nlabels };
		size_t n = 0;

		s->t = malloc((sd->n + 1) * sizeof(*s->t));
		s->v = malloc((sd->n + 1) * sizeof(*s->v));
		r->nseries++;
		if (!s->t || !s->v || result_labels_dup(s, &ls)) {
			rc = pq_errorf(ev, -ENOMEM, "out of memory");
			goto out;
		}
		for (j = 0; j < sd->n; j++) {
			if (sd->t[j] < maxt - ms->range_ms || sd->t[j] > maxt ||
			    pq_is_stale_nan(sd->v[j]))
				continue;
			s->t[n] = sd->t[j];
			s->v[n++] = sd->v[j];
		}
		s->n = n;
		ev->cur_samples += n;
		if (!n) {
			/* keep the slot tidy: drop the series */
			r->nseries--;
			for (j = 0; j < s->nlabels; j++) {
				free((char *)s->labels[j].name);
				free((char *)s->labels[j].value);
			}
			free(s->labels);
			free(s->t);
			free(s->v);
			memset(s, 0, sizeof(*s));
		}
	}
	if (ev->cur_samples > ev->max_samples)
		rc = pq_errorf(
			ev, -E2BIG,
			"query processing would load too many samples into memory in query execution");
out:
	tsdb_result__free(res);
	return rc;
}

static int to_result(struct pq_eval *ev, struct pq_value *v, bool range, struct promql_result *r)
{
	size_t i, j;

	r->type = v->type;
	if (v->type == PROMQL_STRING) {
		r->string = strdup(v->str);
		return r->string ? 0 : pq_errorf(ev, -ENOMEM, "out of memory");
	}
	if (v->type == PROMQL_SCALAR && !range) {
		r->scalar = v->scalar[0];
		r->scalar_t = ev->start;
		return 0;
	}
	if (v->type == PROMQL_SCALAR) {
		/* a range query's scalar is one series without labels */
		r->type = PROMQL_MATRIX;
		r->series = calloc(1, sizeof(*r->series));
		if (!r->series)
			return pq_errorf(ev, -ENOMEM, "out of memory");
		r->nseries = 1;
		r->series[0].t = malloc(ev->nsteps * sizeof(int64_t));
		r->series[0].v = malloc(ev->nsteps * sizeof(double));
		r->series[0].labels = calloc(1, sizeof(struct tsdb_label));
		if (!r->series[0].t || !r->series[0].v || !r->series[0].labels)
			return pq_errorf(ev, -ENOMEM, "out of memory");
		for (j = 0; j < ev->nsteps; j++) {
			r->series[0].t[j] = pq_step_ts(ev, j);
			r->series[0].v[j] = v->scalar[j];
		}
		r->series[0].n = ev->nsteps;
		return 0;
	}
	if (range) {
		r->type = PROMQL_MATRIX;
		if (v->ns)
			qsort(v->s, v->ns, sizeof(*v->s), cmp_series);
	}
	r->series = calloc(v->ns + 1, sizeof(*r->series));
	if (!r->series)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < v->ns; i++) {
		struct promql_series *s = &r->series[i];
		size_t n = 0;

		r->nseries++;
		for (j = 0; j < ev->nsteps; j++)
			n += v->s[i].ok[j];
		s->t = malloc((n + 1) * sizeof(*s->t));
		s->v = malloc((n + 1) * sizeof(*s->v));
		if (!s->t || !s->v || result_labels_dup(s, &v->s[i].ls))
			return pq_errorf(ev, -ENOMEM, "out of memory");
		for (j = 0; j < ev->nsteps; j++) {
			if (!v->s[i].ok[j])
				continue;
			s->t[s->n] = pq_step_ts(ev, j);
			s->v[s->n++] = v->s[i].v[j];
		}
	}
	return 0;
}

int promql_eval_instant(const struct promql_engine *eng, const struct promql_expr *e, int64_t t_ms,
			struct promql_result **out, char *err, size_t errlen)
{
	struct pq_eval ev;
	struct pq_value v = { 0 };
	struct promql_result *r = NULL;
	const struct promql_expr *root;
	int rc;

	*out = NULL;
	rc = ev_init(&ev, eng, t_ms, t_ms, 1, err, errlen);
	if (rc)
		return rc;
	if (!e)
		return pq_errorf(&ev, -EINVAL, "no expression");
	r = calloc(1, sizeof(*r));
	if (!r)
		return pq_errorf(&ev, -ENOMEM, "out of memory");
	root = unparen(e);
	if (root->kind == PQ_MSEL) {
		r->type = PROMQL_MATRIX;
		rc = eval_matrix(&ev, root, r);
	} else {
		rc = eval(&ev, e, &v);
		if (!rc)
			rc = to_result(&ev, &v, false, r);
	}
	pq_value_release(&ev, &v);
	pq_arena_free(&ev.arena);
	if (rc) {
		promql_result__free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int promql_eval_range(const struct promql_engine *eng, const struct promql_expr *e,
		      int64_t start_ms, int64_t end_ms, int64_t step_ms, struct promql_result **out,
		      char *err, size_t errlen)
{
	struct pq_eval ev;
	struct pq_value v = { 0 };
	struct promql_result *r = NULL;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!e) {
		snprintf(err, errlen, "no expression");
		return -EINVAL;
	}
	if (step_ms <= 0 || end_ms < start_ms) {
		snprintf(err, errlen, "range query needs step > 0 and end >= start");
		return -EINVAL;
	}
	if (e->type != PROMQL_SCALAR && e->type != PROMQL_VECTOR) {
		snprintf(err, errlen,
			 "range query needs a scalar or instant vector expression, got %s",
			 pq_type_name(e->type));
		return -EINVAL;
	}
	rc = ev_init(&ev, eng, start_ms, end_ms, step_ms, err, errlen);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return pq_errorf(&ev, -ENOMEM, "out of memory");
	rc = eval(&ev, e, &v);
	if (!rc)
		rc = to_result(&ev, &v, true, r);
	pq_value_release(&ev, &v);
	pq_arena_free(&ev.arena);
	if (rc) {
		promql_result__free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/*
 * Go's strconv.AppendFloat(v, 'f' or 'e', -1, 64) as Prometheus' JSON
 * marshalValue uses it: shortest round-trip digits, 'e' below 1e-6 and from
 * 1e21 on.
 */
/* strlcpy of n bytes: the end of promql_format_value(). Returns the length written. */
static size_t pq_copy_out(char *buf, size_t len, const char *s, size_t n)
{
	if (n >= len)
		n = len - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return n;
}

size_t promql_format_value(double v, char *buf, size_t len)
{
	char tmp[40], digits[24], *base, *o;
	int exp10, nd, i;
	double a = fabs(v);

	if (!len)
		return 0;
	if (isnan(v))
		return pq_copy_out(buf, len, "NaN", 3);
	if (isinf(v))
		return pq_copy_out(buf, len, v > 0 ? "+Inf" : "-Inf", 4);
	if (v == 0)
		return signbit(v) ? pq_copy_out(buf, len, "-0", 2) : pq_copy_out(buf, len, "0", 1);
	/* in place when it surely fits: this runs once per point of a query answer */
	base = o = len >= sizeof(tmp) ? buf : tmp;
	if (v < 0)
		*o++ = '-';
	/* Integers below 2^53 print as Go's 'f', -1 does: plain digits, by hand. */
	if (a < 9007199254740992.0 && v == (double)(long long)v) {
		o += fmtnum_u64(o, (uint64_t)a);
		goto out;
	}
	/*
	 * Few decimals (12.25, 99.5, 0.001234): if v is exactly the double
	 * nearest to m / 10^k with m < 10^15, that decimal of at most 15
	 * significant digits round-trips, and no other decimal of at most 15
	 * digits does (DBL_DIG), so it is the shortest: print it without the
	 * digit search (most gauges on a dashboard take this path).
	 */
	if (a < 1e12) {
		bool six = a < 1e9;
		double scale = six ? 1e6 : 1e3, m = nearbyint(a * scale);

		if (m >= 1 && m / scale == a) {
			uint64_t u = (uint64_t)m;
			/* constant divisors (multiplications), zero-padded by the leading 1 */
			uint64_t ip = six ? u / 1000000 : u / 1000,
				 fp = six ? u % 1000000 : u % 1000;
			char f[8] = { 0 };

			o += fmtnum_u64(o, ip);
			*o++ = '.';
			fmtnum_u64(f, fp + (six ? 1000000 : 1000));
			memcpy(o, f + 1, 6);
			o += six ? 6 : 3;
			while (o[-1] == '0') /* fp > 0: v is not an integer */
				o--;
			goto out;
		}
	}
	/* Shortest round-trip digits: v = 0.DIGITS x 10^point. */
	nd = dtoa_shortest(v, digits, &exp10);
	exp10--; /* as d.ddd x 10^exp10 */
	if (a < 1e-6 || a >= 1e21) {
		*o++ = digits[0];
		if (nd > 1) {
			*o++ = '.';
			for (i = 1; i < nd; i++)
				*o++ = digits[i];
		}
		*o++ = 'e';
		*o++ = exp10 < 0 ? '-' : '+';
		if (abs(exp10) < 10) /* Go's 'e': at least two exponent digits */
			*o++ = '0';
		o += fmtnum_u64(o, (uint64_t)abs(exp10));
	} else if (exp10 < 0) {
		*o++ = '0';
		*o++ = '.';
		for (i = 0; i < -exp10 - 1; i++)
			*o++ = '0';
		for (i = 0; i < nd; i++)
			*o++ = digits[i];
	} else {
		for (i = 0; i <= exp10 || i < nd; i++) {
			if (i == exp10 + 1)
				*o++ = '.';
			*o++ = i < nd ? digits[i] : '0';
		}
	}
out:
	if (base == buf) {
		*o = '\0';
		return (size_t)(o - buf);
	}
	return pq_copy_out(buf, len, tmp, (size_t)(o - tmp));
}
