/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql functions: the function table and the functions themselves, each
 * following Prometheus 2.42's promql/functions.go (extrapolatedRate,
 * instantValue, linearRegression, aggrOverTime bodies, bucketQuantile,
 * quantile, funcLabelReplace). Range functions see one window of one
 * series; instant functions map whole vectors over all steps.
 */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/ast.h"
#include "rx.h"

/* ---- range vector functions ---- */

/* Adds each counter reset's pre-reset value to sum, in order, as Prometheus does. */
static double reset_sum(const struct pq_window *w, double sum)
{
	double last = 0;
	size_t i, r;

	if (!w->next_reset) {
		for (i = 0; i < w->n; i++) {
			if (w->v[i] < last)
				sum += last;
			last = w->v[i];
		}
		return sum;
	}
	for (r = w->n > 1 ? w->next_reset[1] - w->base : w->n; r < w->n;
	     r = r + 1 < w->n ? w->next_reset[r + 1] - w->base : w->n)
		sum += w->v[r - 1];
	return sum;
}

/* extrapolatedRate(): rate, increase and delta. */
static bool extrapolated_rate(const struct pq_window *w, bool counter, bool is_rate, double *out)
{
	double range_start = (double)(w->ts - (w->range_ms + w->offset_ms));
	double range_end = (double)(w->ts - w->offset_ms);
	double result, to_start, to_end, sampled, avg, threshold, interval, factor;
	size_t n = w->n;

	if (n < 2)
		return false;
	result = w->v[n - 1] - w->v[0];
	if (counter)
		result = reset_sum(w, result);
	to_start = ((double)w->t[0] - range_start) / 1000;
	to_end = (range_end - (double)w->t[n - 1]) / 1000;
	sampled = (double)(w->t[n - 1] - w->t[0]) / 1000;
	avg = sampled / (double)(n - 1);
	if (counter && result > 0 && w->v[0] >= 0) {
		double to_zero = sampled * (w->v[0] / result);

		if (to_zero < to_start)
			to_start = to_zero;
	}
	threshold = avg * 1.1;
	interval = sampled;
	interval += to_start < threshold ? to_start : avg / 2;
	interval += to_end < threshold ? to_end : avg / 2;
	factor = interval / sampled;
	if (is_rate)
		factor /= (double)w->range_ms / 1000;
	*out = result * factor;
	return true;
}

static bool fn_rate(const struct pq_window *w, double a, double *out)
{
	(void)a;
	return extrapolated_rate(w, true, true, out);
}

static bool fn_increase(const struct pq_window *w, double a, double *out)
{
	(void)a;
	return extrapolated_rate(w, true, false, out);
}

static bool fn_delta(const struct pq_window *w, double a, double *out)
{
	(void)a;
	return extrapolated_rate(w, false, false, out);
}

/* instantValue(): irate and idelta from the last two samples. */
static bool instant_value(const struct pq_window *w, bool is_rate, double *out)
{
	double last, prev, r;
	int64_t dt;

	if (w->n < 2)
		return false;
	last = w->v[w->n - 1];
	prev = w->v[w->n - 2];
	r = is_rate && last < prev ? last : last - prev;
	dt = w->t[w->n - 1] - w->t[w->n - 2];
	if (dt == 0)
		return false;
	if (is_rate)
		r /= (double)dt / 1000;
	*out = r;
	return true;
}

static bool fn_irate(const struct pq_window *w, double a, double *out)
{
	(void)a;
	return instant_value(w, true, out);
}

static bool fn_idelta(const struct pq_window *w, double a, double *out)
{
	(void)a;
	return instant_value(w, false, out);
}

/* linearRegression() with the intercept at the first sample's time. */
static bool fn_deriv(const struct pq_window *w, double a, double *out)
{
	double n = 0, sx = 0, sy = 0, sxy = 0, sx2 = 0, init;
	bool const_y = true;
	size_t i;

	(void)a;
	if (w->n < 2)
		return false;
	init = w->v[0];
	for (i = 0; i < w->n; i++) {
		double x = (double)(w->t[i] - w->t[0]) / 1e3;

		if (const_y && i > 0 && w->v[i] != init)
			const_y = false;
		n += 1;
		sx += x;
		sy += w->v[i];
		sxy += x * w->v[i];
		sx2 += x * x;
	}
	if (const_y) {
		*out = isinf(init) ? NAN : 0;
		return true;
	}
	*out = (sxy - sx * sy / n) / (sx2 - sx * sx / n);
	return true;
}

static bool fn_avg_ot(const struct pq_window *w, double a, double *out)
{
	double mean = 0, count = 0;
	size_t i;

	(void)a;
	for (i = 0; i < w->n; i++) {
		double v = w->v[i];

		count++;
		if (isinf(mean)) {
			if (isinf(v) && (mean > 0) == (v > 0))
				continue;
			if (!isinf(v) && !isnan(v))
				continue;
		}
		mean += v / count - mean / count;
	}
	*out = mean;
	return true;
}

static bool fn_count_ot(const struct pq_window *w, double a, double *out)
{
	(void)a;
	*out = (double)w->n;
	return true;
}

static bool fn_sum_ot(const struct pq_window *w, double a, double *out)
{
	double sum = 0;
	size_t i;

	(void)a;
	for (i = 0; i < w->n; i++)
		sum += w->v[i];
	*out = sum;
	return true;
}

static bool fn_max_ot(const struct pq_window *w, double a, double *out)
{
	double m = w->v[0];
	size_t i;

	(void)a;
	for (i = 0; i < w->n; i++)
		if (w->v[i] > m || isnan(m))
			m = w->v[i];
	*out = m;
	return true;
}

static bool fn_min_ot(const struct pq_window *w, double a, double *out)
{
	double m = w->v[0];
	size_t i;

	(void)a;
	for (i = 0; i < w->n; i++)
		if (w->v[i] < m || isnan(m))
			m = w->v[i];
	*out = m;
	return true;
}

static bool fn_last_ot(const struct pq_window *w, double a, double *out)
{
	(void)a;
	*out = w->v[w->n - 1];
	return true;
}

static bool fn_present_ot(const struct pq_window *w, double a, double *out)
{
	(void)a;
	(void)w;
	*out = 1;
	return true;
}

/* Welford, population variance (divide by n), as funcStdvarOverTime. */
static double variance(const struct pq_window *w)
{
	double count = 0, mean = 0, aux = 0;
	size_t i;

	for (i = 0; i < w->n; i++) {
		double delta;

		count++;
		delta = w->v[i] - mean;
		mean += delta / count;
		aux += delta * (w->v[i] - mean);
	}
	return aux / count;
}

static bool fn_stdvar_ot(const struct pq_window *w, double a, double *out)
{
	(void)a;
	*out = variance(w);
	return true;
}

static bool fn_stddev_ot(const struct pq_window *w, double a, double *out)
{
	(void)a;
	*out = sqrt(variance(w));
	return true;
}

static int cmp_value(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	/* vectorByValueHeap.Less: NaN sorts first */
	if (isnan(a))
		return isnan(b) ? 0 : -1;
	if (isnan(b))
		return 1;
	return a < b ? -1 : a > b ? 1 : 0;
}

/* quantile(): the weighted value at rank q * (n - 1); sorts vals. */
double pq_quantile(double q, double *vals, size_t n)
{
	double rank, lo, hi, weight;

	if (!n || isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(vals, n, sizeof(*vals), cmp_value);
	rank = q * (double)(n - 1);
	lo = fmax(0, floor(rank));
	hi = fmin((double)n - 1, lo + 1);
	weight = rank - floor(rank);
	return vals[(size_t)lo] * (1 - weight) + vals[(size_t)hi] * weight;
}

static bool fn_quantile_ot(const struct pq_window *w, double q, double *out)
{
	double *vals = malloc(w->n * sizeof(*vals));

	if (!vals) {
		*out = NAN;
		return true;
	}
	memcpy(vals, w->v, w->n * sizeof(*vals));
	*out = pq_quantile(q, vals, w->n);
	free(vals);
	return true;
}

/* ---- instant vector functions ---- */

static double go_max(double x, double y)
{
	if (isinf(x) && x > 0)
		return x;
	if (isinf(y) && y > 0)
		return y;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? y : x;
	return x > y ? x : y;
}

static double go_min(double x, double y)
{
	if (isinf(x) && x < 0)
		return x;
	if (isinf(y) && y < 0)
		return y;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? x : y;
	return x < y ? x : y;
}

static double m_abs(double v, double a, double b)
{
	(void)a;
	(void)b;
	return fabs(v);
}

static double m_ceil(double v, double a, double b)
{
	(void)a;
	(void)b;
	return ceil(v);
}

static double m_floor(double v, double a, double b)
{
	(void)a;
	(void)b;
	return floor(v);
}

static double m_round(double v, double to_nearest, double b)
{
	double inv = 1.0 / to_nearest;

	(void)b;
	return floor(v * inv + 0.5) / inv;
}

static double m_clamp_min(double v, double min, double b)
{
	(void)b;
	return go_max(min, v);
}

static double m_clamp_max(double v, double max, double b)
{
	(void)b;
	return go_min(max, v);
}

static int fi_abs(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		  struct pq_value *out)
{
	(void)c;
	return pq_map_drop_name(ev, &a[0], out, m_abs, NULL, NULL);
}

static int fi_ceil(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		   struct pq_value *out)
{
	(void)c;
	return pq_map_drop_name(ev, &a[0], out, m_ceil, NULL, NULL);
}

static int fi_floor(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		    struct pq_value *out)
{
	(void)c;
	return pq_map_drop_name(ev, &a[0], out, m_floor, NULL, NULL);
}

static int fi_round(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		    struct pq_value *out)
{
	double *one = NULL;
	size_t i;
	int rc;

	if (c->nargs > 1)
		return pq_map_drop_name(ev, &a[0], out, m_round, a[1].scalar, NULL);
	one = malloc(ev->nsteps * sizeof(*one));
	if (!one)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < ev->nsteps; i++)
		one[i] = 1;
	rc = pq_map_drop_name(ev, &a[0], out, m_round, one, NULL);
	free(one);
	return rc;
}

static int fi_clamp_min(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
			struct pq_value *out)
{
	(void)c;
	return pq_map_drop_name(ev, &a[0], out, m_clamp_min, a[1].scalar, NULL);
}

static int fi_clamp_max(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
			struct pq_value *out)
{
	(void)c;
	return pq_map_drop_name(ev, &a[0], out, m_clamp_max, a[1].scalar, NULL);
}

static int fi_time(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		   struct pq_value *out)
{
	size_t i;

	(void)c;
	(void)a;
	out->type = PROMQL_SCALAR;
	out->scalar = malloc(ev->nsteps * sizeof(double));
	if (!out->scalar)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < ev->nsteps; i++)
		out->scalar[i] = (double)pq_step_ts(ev, i) / 1000.0;
	return 0;
}

static int fi_vector(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		     struct pq_value *out)
{
	struct pq_labels none = { 0 };
	size_t i;
	int rc;

	(void)c;
	out->type = PROMQL_VECTOR;
	rc = pq_value_add_series(ev, out, &none);
	if (rc)
		return rc;
	for (i = 0; i < ev->nsteps; i++) {
		out->s[0].ok[i] = 1;
		out->s[0].v[i] = a[0].scalar[i];
	}
	return 0;
}

static int fi_scalar(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		     struct pq_value *out)
{
	size_t i, j;

	(void)c;
	out->type = PROMQL_SCALAR;
	out->scalar = malloc(ev->nsteps * sizeof(double));
	if (!out->scalar)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	for (i = 0; i < ev->nsteps; i++) {
		size_t n = 0;
		double v = NAN;

		for (j = 0; j < a[0].ns && n < 2; j++) {
			if (a[0].s[j].ok[i]) {
				n++;
				v = a[0].s[j].v[i];
			}
		}
		out->scalar[i] = n == 1 ? v : NAN;
	}
	return 0;
}

/* createLabelsForAbsentFunction(): equality matchers of a bare selector. */
static int fi_absent(struct pq_eval *ev, const struct promql_expr *c, struct pq_value *a,
		     struct pq_value *out)
{
	const struct promql_expr *arg = c->args[0];
	struct pq_labels ls = { 0 };
	size_t i, j;
	int rc;

	out->type = PROMQL_VECTOR;
	if (arg->kind == PQ_VSEL || arg->kind == PQ_MSEL) {
		const struct promql_expr *vs = arg->kind == PQ_MSEL ? arg->sub : arg;
		const char **drop = calloc(vs->nmatchers + 1, sizeof(*drop));
		size_t ndrop = 0;

		if (!drop)
			return pq_errorf(ev, -ENOMEM, "out of memory");
		for (i = 0; i < vs->nmatchers; i++) {
			const struct tsdb_matcher *m = &vs->matchers[i];

			if (!strcmp(m->name, TSDB_NAME_LABEL))
				continue;
			if (m->type == TSDB_MATCH_EQ && !pq_labels_get(&ls, m->name))
				rc = pq_labels_set(ev, &ls, m->name, m->value, &ls);
			else {
				drop[ndrop++] = m->name;
				rc = 0;
			}
			if (rc) {
				free(drop);
				return rc;
			}
		}
		rc = pq_labels_without(ev, &ls, drop, ndrop, false, &ls);
		free(drop);
		if (rc)
			return rc;
	}
	rc = pq_value_add_series(ev, out, &ls);
	if (rc)
		return rc;
	for (i = 0; i < ev->nsteps; i++) {
		bool any = false;

		for (j = 0; j < a[0].ns && !any; j++)
			any = a[0].s[j].ok[i];
		if (!any) {
			out->s[0].ok[i] = 1;
			out->s[0].v[i] = 1;
		}
	}
	return 0;
}

/* ---- histogram_quantile ---- */

struct bucket {
	double upper;
	double count;
};

static int cmp_bucket(const void *pa, const void *pb)
{
	const struct bucket *a = pa, *b = pb;

	return a->upper < b->upper ? -1 : a->upper > b->upper ? 1 : 0;
}

/* bucketQuantile() including coalesceBuckets() and ensureMonotonic(). */
static double bucket_quantile(double q, struct bucket *b, size_t n)
{
	double observations, rank, start = 0, end, count, max = -INFINITY;
	size_t i, o = 0, lo, hi;

	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(b, n, sizeof(*b), cmp_bucket);
	if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
		return NAN;
	for (i = 1; i < n; i++) {
		if (b[i].upper == b[o].upper) {
			b[o].count += b[i].count;
		} else {
			b[++o] = b[i];
		}
	}
	n = o + 1;
	for (i = 0; i < n; i++) {
		if (b[i].count > max)
			max = b[i].count;
		else if (b[i].count < max)
			b[i].count = max;
	}
	if (n < 2)
		return NAN;
	observations = b[n - 1].count;
	if (observations == 0)
		return NAN;
	rank = q * observations;
	/* sort.Search(n - 1, count >= rank) */
	lo = 0;
	hi = n - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (!(b[mid].count >= rank))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n - 1)
		return b[n - 2].upper;
	if (lo == 0 && b[0].upper <= 0)
		return b[0].upper;
	end = b[lo].upper;
	count = b[lo].count;
	if (lo > 0) {
		start = b[lo - 1].upper;
		count -= b[lo - 1].count;
		rank -= b[lo - 1].count;
	}
	return start + (end - start) * (rank / count);
}

static bool parse_le(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	*out = strtod(s, &end);
	return *end == '\0';
}

int pq_histogram_quantile(struct pq_eval *ev, const struct promql_expr *call, struct pq_value *args,
			  struct pq_value *out)
{
	static const char *const le_only[] = { "le" };
	struct pq_value *in = &args[1];
	struct pq_keymap km = { 0 };
	struct pq_pool pool;
	size_t *grp = NULL, *outidx = NULL, *nb = NULL, i, g, s;
	double *le = NULL;
	bool *valid = NULL;
	struct bucket **bk = NULL;
	int rc = 0;

	(void)call;
	pq_pool_init(&pool, out);
	grp = calloc(in->ns + 1, sizeof(*grp));
	le = calloc(in->ns + 1, sizeof(*le));
	valid = calloc(in->ns + 1, sizeof(*valid));
	if (!grp || !le || !valid)
		goto nomem;
	for (i = 0; i < in->ns; i++) {
		struct pq_labels key;

		valid[i] = parse_le(pq_labels_get(&in->s[i].ls, "le"), &le[i]);
		if (!valid[i])
			continue;
		rc = pq_labels_without(ev, &in->s[i].ls, le_only, 1, false, &key);
		if (rc)
			goto out;
		if (pq_keymap_get(&km, &key, true, &grp[i]))
			goto nomem;
	}
	outidx = calloc(km.nkeys + 1, sizeof(*outidx));
	nb = calloc(km.nkeys + 1, sizeof(*nb));
	bk = calloc(km.nkeys + 1, sizeof(*bk));
	if (!outidx || !nb || !bk)
		goto nomem;
	for (i = 0; i < in->ns; i++)
		if (valid[i])
			nb[grp[i]]++;
	for (g = 0; g < km.nkeys; g++) {
		struct pq_labels ol;

		bk[g] = malloc((nb[g] + 1) * sizeof(**bk));
		if (!bk[g])
			goto nomem;
		rc = pq_labels_without(ev, &km.keys[g], NULL, 0, true, &ol);
		if (!rc)
			rc = pq_pool_get(ev, &pool, &ol, &outidx[g]);
		if (rc)
			goto out;
	}
	for (s = 0; s < ev->nsteps; s++) {
		memset(nb, 0, km.nkeys * sizeof(*nb));
		for (i = 0; i < in->ns; i++) {
			if (!valid[i] || !in->s[i].ok[s])
				continue;
			g = grp[i];
			bk[g][nb[g]].upper = le[i];
			bk[g][nb[g]++].count = in->s[i].v[s];
		}
		for (g = 0; g < km.nkeys; g++) {
			if (!nb[g])
				continue;
			rc = pq_pool_put(ev, &pool, outidx[g], s,
					 bucket_quantile(args[0].scalar[s], bk[g], nb[g]));
			if (rc)
				goto out;
		}
	}
	goto out;
nomem:
	rc = pq_errorf(ev, -ENOMEM, "out of memory");
out:
	for (g = 0; bk && g < km.nkeys; g++)
		free(bk[g]);
	free(bk);
	free(nb);
	free(outidx);
	free(grp);
	free(le);
	free(valid);
	pq_keymap_free(&km);
	pq_pool_free(&pool);
	return rc;
}

/* ---- label_replace ---- */

static const char *str_arg(const struct promql_expr *e)
{
	while (e->kind == PQ_PAREN)
		e = e->sub;
	return e->str;
}

static bool valid_label_name(const char *s)
{
	size_t i;

	if (!*s)
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static bool is_word(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * Regexp.ExpandString: $1, ${1}, $name (named groups do not exist in POSIX
 * ERE: empty); $$ is '$'; a malformed $ is literal. Group n of the user's
 * regex is POSIX group n + 1 because of the anchoring wrapper.
 */
static char *expand(struct pq_arena *a, const char *tmpl, const char *src, const regmatch_t *m,
		    size_t nm)
{
	size_t cap = strlen(tmpl) + 1, o = 0, i;
	char *out;

	for (i = 0; tmpl[i]; i++)
		if (tmpl[i] == '$')
			cap += strlen(src);
	out = pq_arena_alloc(a, cap);
	if (!out)
		return NULL;
	for (i = 0; tmpl[i];) {
		size_t ns, ne, j;
		bool brace = false, num = true;
		long n = 0;

		if (tmpl[i] != '$') {
			out[o++] = tmpl[i++];
			continue;
		}
		if (tmpl[i + 1] == '$') {
			out[o++] = '$';
			i += 2;
			continue;
		}
		ns = i + 1;
		if (tmpl[ns] == '{') {
			brace = true;
			ns++;
		}
		for (ne = ns; is_word(tmpl[ne]); ne++)
			;
		if (ne == ns || (brace && tmpl[ne] != '}')) {
			out[o++] = '$';
			i++;
			continue;
		}
		for (j = ns; j < ne; j++) {
			if (tmpl[j] < '0' || tmpl[j] > '9') {
				num = false;
				break;
			}
			n = n * 10 + (tmpl[j] - '0');
			if (n >= 100000000) {
				num = false;
				break;
			}
		}
		i = brace ? ne + 1 : ne;
		if (num && (size_t)n + 1 < nm && m[n + 1].rm_so >= 0) {
			size_t l = (size_t)(m[n + 1].rm_eo - m[n + 1].rm_so);

			memcpy(out + o, src + m[n + 1].rm_so, l);
			o += l;
		}
	}
	out[o] = '\0';
	return out;
}

int pq_label_replace(struct pq_eval *ev, const struct promql_expr *call, struct pq_value *args,
		     struct pq_value *out)
{
	char rx_err[128];
	const char *dst = str_arg(call->args[1]), *repl = str_arg(call->args[2]);
	const char *src = str_arg(call->args[3]), *re = str_arg(call->args[4]);
	struct pq_value *in = &args[0];
	struct pq_pool pool;
	regmatch_t m[10];
	regex_t rx;
	char *anch;
	size_t i, j;
	int rc = 0;

	anch = malloc(strlen(re) + 5);
	if (!anch)
		return pq_errorf(ev, -ENOMEM, "out of memory");
	sprintf(anch, "^(%s)$", re);
	rc = rx_compile(&rx, anch, REG_EXTENDED, rx_err, sizeof(rx_err));
	free(anch);
	if (rc)
		return pq_errorf(ev, -EINVAL, "invalid regular expression in label_replace(): %s: %s",
				 re, rx_err);
	if (!valid_label_name(dst)) {
		regfree(&rx);
		return pq_errorf(ev, -EINVAL,
				 "invalid destination label name in label_replace(): %s", dst);
	}
	pq_pool_init(&pool, out);
	for (i = 0; i < in->ns; i++) {
		const char *sv = pq_labels_get(&in->s[i].ls, src);
		struct pq_labels ls = in->s[i].ls;
		size_t idx;

		if (!sv)
			sv = "";
		if (!regexec(&rx, sv, 10, m, 0)) {
			char *res = expand(&ev->arena, repl, sv, m, 10);

			if (!res) {
				rc = pq_errorf(ev, -ENOMEM, "out of memory");
				goto out;
			}
			rc = pq_labels_set(ev, &ls, dst, res, &ls);
			if (rc)
				goto out;
		}
		rc = pq_pool_get(ev, &pool, &ls, &idx);
		if (rc)
			goto out;
		for (j = 0; j < ev->nsteps; j++) {
			if (!in->s[i].ok[j])
				continue;
			rc = pq_pool_put(ev, &pool, idx, j, in->s[i].v[j]);
			if (rc == -EEXIST) {
				char buf[256];
				size_t k, o = 0;

				o += (size_t)snprintf(buf, sizeof(buf), "{");
				for (k = 0; k < in->s[i].ls.n && o < sizeof(buf); k++)
					o += (size_t)snprintf(buf + o, sizeof(buf) - o,
							      "%s%s=\"%s\"", k ? ", " : "",
							      in->s[i].ls.l[k].name,
							      in->s[i].ls.l[k].value);
				if (o < sizeof(buf))
					snprintf(buf + o, sizeof(buf) - o, "}");
				rc = pq_errorf(
					ev, -EINVAL,
					"duplicated label set in output of label_replace(): %s",
					buf);
			}
			if (rc)
				goto out;
		}
	}
out:
	regfree(&rx);
	pq_pool_free(&pool);
	return rc;
}

/* ---- the table ---- */

#define S PROMQL_SCALAR
#define V PROMQL_VECTOR
#define M PROMQL_MATRIX
#define STR PROMQL_STRING

static const struct pq_func pq_funcs[] = {
	{ "abs", { V }, 1, 0, V, -1, false, false, NULL, fi_abs },
	{ "absent", { V }, 1, 0, V, -1, false, false, NULL, fi_absent },
	{ "avg_over_time", { M }, 1, 0, V, 0, false, false, fn_avg_ot, NULL },
	{ "ceil", { V }, 1, 0, V, -1, false, false, NULL, fi_ceil },
	{ "clamp_max", { V, S }, 2, 0, V, -1, false, false, NULL, fi_clamp_max },
	{ "clamp_min", { V, S }, 2, 0, V, -1, false, false, NULL, fi_clamp_min },
	{ "count_over_time", { M }, 1, 0, V, 0, false, false, fn_count_ot, NULL },
	{ "delta", { M }, 1, 0, V, 0, false, false, fn_delta, NULL },
	{ "deriv", { M }, 1, 0, V, 0, false, false, fn_deriv, NULL },
	{ "floor", { V }, 1, 0, V, -1, false, false, NULL, fi_floor },
	{ "histogram_quantile", { S, V }, 2, 0, V, -1, false, false, NULL, pq_histogram_quantile },
	{ "idelta", { M }, 1, 0, V, 0, false, false, fn_idelta, NULL },
	{ "increase", { M }, 1, 0, V, 0, false, true, fn_increase, NULL },
	{ "irate", { M }, 1, 0, V, 0, false, false, fn_irate, NULL },
	{ "label_replace",
	  { V, STR, STR, STR, STR },
	  5,
	  0,
	  V,
	  -1,
	  false,
	  false,
	  NULL,
	  pq_label_replace },
	{ "last_over_time", { M }, 1, 0, V, 0, true, false, fn_last_ot, NULL },
	{ "max_over_time", { M }, 1, 0, V, 0, false, false, fn_max_ot, NULL },
	{ "min_over_time", { M }, 1, 0, V, 0, false, false, fn_min_ot, NULL },
	{ "present_over_time", { M }, 1, 0, V, 0, false, false, fn_present_ot, NULL },
	{ "quantile_over_time", { S, M }, 2, 0, V, 1, false, false, fn_quantile_ot, NULL },
	{ "rate", { M }, 1, 0, V, 0, false, true, fn_rate, NULL },
	{ "round", { V, S }, 1, 1, V, -1, false, false, NULL, fi_round },
	{ "scalar", { V }, 1, 0, S, -1, false, false, NULL, fi_scalar },
	{ "stddev_over_time", { M }, 1, 0, V, 0, false, false, fn_stddev_ot, NULL },
	{ "stdvar_over_time", { M }, 1, 0, V, 0, false, false, fn_stdvar_ot, NULL },
	{ "sum_over_time", { M }, 1, 0, V, 0, false, false, fn_sum_ot, NULL },
	{ "time", { S }, 0, 0, S, -1, false, false, NULL, fi_time },
	/* timestamp is evaluated by eval.c (it needs the sample times) */
	{ "timestamp", { V }, 1, 0, V, -1, false, false, NULL, NULL },
	{ "vector", { S }, 1, 0, V, -1, false, false, NULL, fi_vector },
};

const struct pq_func *pq_func_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(pq_funcs) / sizeof(pq_funcs[0]); i++)
		if (!strcmp(pq_funcs[i].name, name))
			return &pq_funcs[i];
	return NULL;
}

bool pq_func_known_unsupported(const char *name)
{
	static const char *const other[] = {
		"absent_over_time",
		"acos",
		"acosh",
		"asin",
		"asinh",
		"atan",
		"atanh",
		"changes",
		"clamp",
		"cos",
		"cosh",
		"day_of_month",
		"day_of_week",
		"day_of_year",
		"days_in_month",
		"deg",
		"exp",
		"holt_winters",
		"hour",
		"label_join",
		"ln",
		"log10",
		"log2",
		"minute",
		"month",
		"pi",
		"predict_linear",
		"rad",
		"resets",
		"sgn",
		"sin",
		"sinh",
		"sort",
		"sort_desc",
		"sqrt",
		"tan",
		"tanh",
		"year",
		"histogram_count",
		"histogram_sum",
		"histogram_fraction",
	};
	size_t i;

	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (!strcmp(other[i], name))
			return true;
	return false;
}
