/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql selectors: the vector selectors of a parsed expression, the way
 * Prometheus' parser.ExtractSelectors finds them for query_exemplars.
 */
#include <errno.h>

#include "promql/ast.h"

int promql_for_each_selector(const struct promql_expr *e, promql_selector_fn fn, void *ctx)
{
	size_t i;
	int err;

	if (!e)
		return 0;
	if (e->kind == PQ_VSEL)
		return fn(ctx, e->matchers, e->nmatchers);
	for (i = 0; i < e->nargs; i++) {
		err = promql_for_each_selector(e->args[i], fn, ctx);
		if (err)
			return err;
	}
	err = promql_for_each_selector(e->param, fn, ctx);
	if (!err)
		err = promql_for_each_selector(e->lhs, fn, ctx);
	if (!err)
		err = promql_for_each_selector(e->rhs, fn, ctx);
	if (!err)
		err = promql_for_each_selector(e->sub, fn, ctx);
	return err;
}
