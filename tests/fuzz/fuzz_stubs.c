/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Link stubs for the fuzz harnesses: ingest.c's handlers reference the HTTP
 * error helper and the store, which the parse functions under test never
 * call. Defining them here keeps libwebsockets, OpenSSL and the store out of
 * the fuzz binaries.
 */
#include <errno.h>
#include <stdlib.h>

#include "http.h"
#include "tsdb/tsdb.h"

int http_error(struct http_response *resp, int status, const char *type, const char *fmt, ...)
{
	(void)resp;
	(void)status;
	(void)type;
	(void)fmt;
	abort();
}

int tsdb__append_batch(struct tsdb *db, const struct tsdb_sample *s, size_t n, int *errs)
{
	(void)db;
	(void)s;
	(void)n;
	(void)errs;
	abort();
}

int tsdb__commit(struct tsdb *db)
{
	(void)db;
	abort();
}

/* promql/eval.c frees select results; the parser harness never selects. */
void tsdb_result__free(struct tsdb_result *r)
{
	(void)r;
	abort();
}
