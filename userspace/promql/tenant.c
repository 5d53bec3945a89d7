/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql tenant scoping: restrict a parsed expression to the series of one
 * label value (tenant="acme") by rewriting its selectors, so the limit holds
 * in the engine whatever the query says (see promql_restrict() in promql.h).
 *
 * Selectors are the only way an expression reads data, and the evaluator
 * hands a selector's matchers to the store as they are, ANDed: an equality
 * matcher appended to each one cannot be widened by anything the user wrote
 * next to it (tenant!="x" or tenant=~".*" only narrow it further).
 */
#include <errno.h>
#include <string.h>

#include "promql/ast.h"

/* Append name=value to every selector under e, allocating in arena a. */
static int promql_restrict_node(struct pq_arena *a, struct promql_expr *e, const char *name,
				const char *value)
{
	struct tsdb_matcher *m;
	size_t i;
	int err;

	if (!e)
		return 0;
	if (e->kind == PQ_VSEL) {
		m = pq_arena_alloc(a, (e->nmatchers + 1) * sizeof(*m));
		if (!m)
			return -ENOMEM;
		if (e->nmatchers)
			memcpy(m, e->matchers, e->nmatchers * sizeof(*m));
		m[e->nmatchers] = (struct tsdb_matcher){
			.type = TSDB_MATCH_EQ,
			.name = name,
			.value = value,
		};
		e->matchers = m;
		e->nmatchers++;
		return 0;
	}
	for (i = 0; i < e->nargs; i++) {
		err = promql_restrict_node(a, e->args[i], name, value);
		if (err)
			return err;
	}
	err = promql_restrict_node(a, e->param, name, value);
	if (!err)
		err = promql_restrict_node(a, e->lhs, name, value);
	if (!err)
		err = promql_restrict_node(a, e->rhs, name, value);
	if (!err)
		err = promql_restrict_node(a, e->sub, name, value);
	return err;
}

int promql_restrict(struct promql_expr *e, const char *name, const char *value)
{
	char *n, *v;

	if (!e || !e->arena || !name || !name[0] || !value || !value[0])
		return -EINVAL;
	/* the arena's copies: the caller's strings may not outlive the expression */
	n = pq_arena_strndup(e->arena, name, strlen(name));
	v = pq_arena_strndup(e->arena, value, strlen(value));
	if (!n || !v)
		return -ENOMEM;
	return promql_restrict_node(e->arena, e, n, v);
}
