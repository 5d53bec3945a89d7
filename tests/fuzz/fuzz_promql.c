/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness: promql_parse() + promql_expr__free(). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promql/promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct promql_expr *e;
	char err[256];
	char *q = malloc(size + 1);

	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	e = promql_parse(q, err, sizeof(err));
	promql_expr__free(e);
	free(q);
	return 0;
}
