/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exposition: render a struct metric_set as Prometheus text exposition
 * format 0.0.4 (HELP and TYPE per family; histograms as _bucket{le}, _sum,
 * _count with cumulative buckets), valid for `promtool check metrics`, or,
 * for a scraper whose Accept header asks for it, as OpenMetrics 1.0.0 text
 * with the series' exemplars.
 */
#ifndef NOVAMON_EXPOSITION_H
#define NOVAMON_EXPOSITION_H

#include <stddef.h>

struct metric_set;

#define EXPOSITION_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define EXPOSITION_OPENMETRICS_CONTENT_TYPE \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"

enum exposition_format {
	EXPOSITION_TEXT, /* Prometheus text 0.0.4, the default */
	EXPOSITION_OPENMETRICS, /* OpenMetrics 1.0.0 text, with exemplars */
};

/*
 * Render set into a malloc'd buffer (*out, *len, NUL-terminated). An empty or
 * NULL set renders as "". Returns 0 or -ENOMEM.
 */
int exposition_render(const struct metric_set *set, char **out, size_t *len);

/*
 * Render set in format f, as exposition_render() does. OpenMetrics: a
 * counter's family is its name without `_total` (its samples keep the
 * name; a counter not named *_total is typed unknown so that its series
 * name stays the same in both formats), HELP escapes quotes too, exemplars
 * go on counters' `_total` lines and on the `_bucket` line holding their
 * value, and the text ends with `# EOF`.
 */
int exposition_render_format(const struct metric_set *set, enum exposition_format f, char **out,
			     size_t *len);

/*
 * The format an HTTP Accept header asks for: OpenMetrics when it lists
 * application/openmetrics-text (version 1.0.0, 0.0.1 or none) with a
 * higher q than text/plain and any wildcard, else text. NULL or "" is text.
 */
enum exposition_format exposition_negotiate(const char *accept);

/* The Content-Type of format f. */
const char *exposition_content_type(enum exposition_format f);

#endif /* NOVAMON_EXPOSITION_H */
