/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exposition: render a struct metric_set as Prometheus text exposition
 * format 0.0.4 (HELP and TYPE per family; histograms as _bucket{le}, _sum,
 * _count with cumulative buckets), valid for `promtool check metrics`.
 */
#ifndef NOVAMON_EXPOSITION_H
#define NOVAMON_EXPOSITION_H

#include <stddef.h>

struct metric_set;

#define EXPOSITION_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Render set into a malloc'd buffer (*out, *len, NUL-terminated). An empty or
 * NULL set renders as "". Returns 0 or -ENOMEM.
 */
int exposition_render(const struct metric_set *set, char **out, size_t *len);

#endif /* NOVAMON_EXPOSITION_H */
