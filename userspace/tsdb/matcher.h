/* SPDX-License-Identifier: Apache-2.0 */
/*
 * matcher: a label matcher (=, !=, =~, !~) compiled once and applied to
 * many values, for the series index and the exemplar store alike.
 * Regular expressions are POSIX extended and fully anchored ("^(re)$"), as
 * Prometheus anchors its RE2 ones.
 */
#ifndef NOVAMON_TSDB_MATCHER_H
#define NOVAMON_TSDB_MATCHER_H

#include <regex.h>
#include <stdbool.h>

#include "tsdb/tsdb.h"

struct tsdb_cmatcher {
	const struct tsdb_matcher *m; /* borrowed: outlives the compiled form */
	regex_t re;
	bool has_re;
	bool matches_empty; /* a series without the label matches it */
};

/*
 * Compile m into cm. Returns 0, -EINVAL (no name or value, an unknown type,
 * or a bad regular expression) or -ENOMEM; cm needs tsdb_cmatcher__fini()
 * only after a 0.
 */
int tsdb_cmatcher__init(struct tsdb_cmatcher *cm, const struct tsdb_matcher *m);
/* Whether value (a missing label is "") satisfies the matcher. */
bool tsdb_cmatcher__match(const struct tsdb_cmatcher *cm, const char *value);
/* Release what init compiled. */
void tsdb_cmatcher__fini(struct tsdb_cmatcher *cm);

#endif /* NOVAMON_TSDB_MATCHER_H */
