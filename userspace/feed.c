/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "feed.h"
#include "metrics.h"

int feed_parse_labels(const char *s, struct tsdb_label *labels, size_t max, char *buf,
		      size_t buflen)
{
	size_t n = 0, used = 0;

	while (*s) {
		const char *eq = strchr(s, '=');
		size_t nlen;

		if (!eq || eq[1] != '"')
			return -EINVAL;
		if (n >= max)
			return -E2BIG;
		/* The name, copied so both strings live in buf. */
		nlen = eq - s;
		if (used + nlen + 1 > buflen)
			return -E2BIG;
		memcpy(buf + used, s, nlen);
		buf[used + nlen] = '\0';
		labels[n].name = buf + used;
		used += nlen + 1;
		labels[n].value = buf + used;
		for (s = eq + 2; *s && *s != '"'; s++) {
			char c = *s;

			if (c == '\\') {
				s++;
				if (*s == 'n')
					c = '\n';
				else if (*s == '\\' || *s == '"')
					c = *s;
				else
					return -EINVAL;
			}
			if (used + 1 >= buflen)
				return -E2BIG;
			buf[used++] = c;
		}
		if (*s != '"')
			return -EINVAL;
		buf[used++] = '\0';
		n++;
		s++;
		if (*s == ',')
			s++;
		else if (*s)
			return -EINVAL;
	}
	return (int)n;
}

struct sample_ctx {
	feed_sample_fn fn;
	void *ctx;
	int64_t t_ms;
	int failed;
};

/* Emit name{labels..., extra_name=extra_value} = v. */
static void emit(struct sample_ctx *c, const char *name, struct tsdb_label *labels, int n,
		 const char *extra_name, const char *extra_value, double v)
{
	int k = n;

	labels[k].name = TSDB_NAME_LABEL;
	labels[k++].value = name;
	if (extra_name) {
		labels[k].name = extra_name;
		labels[k++].value = extra_value;
	}
	if (c->fn(c->ctx, labels, k, c->t_ms, v))
		c->failed++;
}

int feed_metric_set(const struct metric_set *set, int64_t t_ms, feed_sample_fn fn, void *ctx)
{
	struct sample_ctx c = { .fn = fn, .ctx = ctx, .t_ms = t_ms };
	struct tsdb_label labels[TSDB_MAX_LABELS + 2];
	char buf[4096], name[256], le[32];
	size_t f, i;
	unsigned int b;

	for (f = 0; f < set->nfamilies; f++) {
		const struct metric_family *fam = &set->families[f];

		for (i = 0; i < fam->nseries; i++) {
			const struct metric_series *s = &fam->series[i];
			int n = feed_parse_labels(s->labels, labels, TSDB_MAX_LABELS, buf,
						  sizeof(buf));
			uint64_t cum = 0;

			if (n < 0)
				return n;
			if (fam->type != METRIC_HISTOGRAM) {
				emit(&c, fam->name, labels, n, NULL, NULL, s->value);
				continue;
			}
			snprintf(name, sizeof(name), "%s_bucket", fam->name);
			for (b = 0; b <= fam->nbounds; b++) {
				cum += s->buckets[b];
				if (b < fam->nbounds)
					metric_format_double(le, sizeof(le), fam->bounds[b]);
				else
					snprintf(le, sizeof(le), "+Inf");
				emit(&c, name, labels, n, "le", le, (double)cum);
			}
			snprintf(name, sizeof(name), "%s_sum", fam->name);
			emit(&c, name, labels, n, NULL, NULL, s->sum);
			snprintf(name, sizeof(name), "%s_count", fam->name);
			emit(&c, name, labels, n, NULL, NULL, (double)s->count);
		}
	}
	return c.failed;
}
