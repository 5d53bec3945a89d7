/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness: ingest_parse_json() with a sink that checks what it is handed. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

static int fuzz_sink(void *ctx, const struct tsdb_sample *s, size_t n, int *errs)
{
	size_t i, j;

	(void)ctx;
	for (i = 0; i < n; i++) {
		if (!s[i].nlabels || strcmp(s[i].labels[0].name, TSDB_NAME_LABEL))
			abort();
		for (j = 0; j < s[i].nlabels; j++) {
			if (!s[i].labels[j].name[0] || strlen(s[i].labels[j].value) > (1u << 24))
				abort();
		}
		/* refuse every third sample as the store would an out-of-order one */
		errs[i] = i % 3 == 2 ? -ERANGE : 0;
	}
	return (int)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ingest_json_result res;

	ingest_parse_json((const char *)data, size, 1795334400000LL, fuzz_sink, NULL, &res);
	ingest_json_result__free(&res);
	return 0;
}
