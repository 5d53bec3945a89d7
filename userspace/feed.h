/* SPDX-License-Identifier: Apache-2.0 */
/*
 * feed: walk a published metric set as individual samples, the way a
 * Prometheus scrape of /metrics would see them (histograms as _bucket{le}
 * cumulative, _sum and _count), and hand each to a sink: the local store,
 * the remote-write client. Runs once per tick, never per event.
 */
#ifndef NOVAMON_FEED_H
#define NOVAMON_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

struct metric_set;

/* Receives one sample; labels include __name__. Returns 0 or a negative errno. */
typedef int (*feed_sample_fn)(void *ctx, const struct tsdb_label *labels, size_t nlabels,
			      int64_t t_ms, double v);

/*
 * Call fn for every sample of set at t_ms. A sink error does not stop the
 * walk (each series is independent); the number of failed samples is
 * returned, or a negative errno for a malformed set.
 */
int feed_metric_set(const struct metric_set *set, int64_t t_ms, feed_sample_fn fn, void *ctx);

/*
 * Split a rendered label string (`a="x",b="y\"z"`, as metric_labels__add
 * writes it) into labels, unescaping values into buf. Returns the count,
 * or -E2BIG (too many labels or buf too small) / -EINVAL (malformed).
 */
int feed_parse_labels(const char *rendered, struct tsdb_label *labels, size_t max, char *buf,
		      size_t buflen);

#endif /* NOVAMON_FEED_H */
