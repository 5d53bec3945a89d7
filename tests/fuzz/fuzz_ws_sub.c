/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the WebSocket subscription parser (api/ws_proto.c).
 * Any input: ws_proto_parse_request() must not crash or leak, and the
 * error reply naming what it read must be valid JSON; the JSON string
 * escaper must turn any bytes into a valid JSON string; the binary data
 * decoder must refuse or decode any bytes without reading past them.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ws_proto.h"

static void must_be_json(const struct ws_buf *b)
{
	json_error_t e;
	json_t *j;

	if (b->err)
		return;
	j = json_loadb(b->p, b->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!j)
		abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ws_proto_request req;
	struct ws_proto_bin_msg msg;
	struct ws_buf b = { 0 };
	char err[256];

	if (!ws_proto_parse_request((const char *)data, size, &req, err, sizeof(err))) {
		if (req.type == WS_PROTO_SUBSCRIBE && (!req.id[0] || !req.query[0]))
			abort();
		ws_proto_error(&b, req.id, req.query);
	} else {
		ws_proto_error(&b, req.id, err);
	}
	must_be_json(&b);
	ws_buf_free(&b);

	ws_buf_json_string(&b, (const char *)data, size);
	must_be_json(&b);
	ws_buf_free(&b);

	ws_proto_decode_binary(data, size, &msg, NULL, NULL, NULL);
	return 0;
}
