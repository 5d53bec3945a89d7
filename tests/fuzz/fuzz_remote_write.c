/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: ingest_decode_remote_write(). The input is used twice:
 * as the snappy body, and snappy-compressed by the harness so that the
 * protobuf decoder and the label checks get structured input too.
 */
#include <errno.h>
#include <snappy-c.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

static int fuzz_sink(void *ctx, const struct tsdb_sample *s, size_t n, int *errs)
{
	size_t i;

	(void)ctx;
	for (i = 0; i < n; i++) {
		if (!s[i].nlabels || s[i].nlabels > TSDB_MAX_LABELS)
			abort();
		errs[i] = i % 5 == 4 ? -EEXIST : 0;
	}
	return (int)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ingest_rw_result res;
	size_t clen = snappy_max_compressed_length(size);
	char *comp = malloc(clen);

	ingest_decode_remote_write(data, size, 1u << 20, fuzz_sink, NULL, &res);
	if (comp && snappy_compress((const char *)data, size, comp, &clen) == SNAPPY_OK)
		ingest_decode_remote_write(comp, clen, 1u << 20, fuzz_sink, NULL, &res);
	free(comp);
	return 0;
}
