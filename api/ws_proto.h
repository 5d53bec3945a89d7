/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws_proto: the messages of the WebSocket feeds (api/ws.h), without any
 * socket: the parser of what a client sends, the diff of two evaluations of
 * a query, and the JSON and binary encoders of what the server sends. Pure
 * functions on caller-owned memory, so they are unit-tested and fuzzed
 * alone (tests/unit/test_ws_proto.c, tests/fuzz/fuzz_ws_sub.c).
 *
 * Client -> server: one JSON object per text frame.
 *
 *   {"type":"hello","encoding":"json"|"binary"}
 *   {"type":"subscribe","id":"cpu","query":"rate(x[1m])","resume_from":1732262400}
 *   {"type":"unsubscribe","id":"cpu"}
 *
 *   id is 1..WS_PROTO_MAX_ID bytes of UTF-8 chosen by the client (the
 *   widget id on a dashboard feed); query is PromQL of at most
 *   WS_PROTO_MAX_QUERY bytes; resume_from (optional, null = absent) is the
 *   seq of the last data message the client applied. Unknown or repeated
 *   members, wrong types and a NUL inside a string are errors.
 *
 * Server -> client, JSON (text frames):
 *
 *   {"type":"data","id":"cpu","seq":1732262401,"t":1732262401000,"full":false,
 *    "set":[{"labels":{"__name__":"x","vm":"a"},"v":1.5}, ...],
 *    "del":[{"__name__":"x","vm":"b"}, ...]}
 *
 *   seq is the unix second of the evaluation (strictly increasing within a
 *   subscription); t its time in ms. With full true the client drops what
 *   it holds for the id and takes set as the whole result (del is then
 *   empty); otherwise set holds the series that are new or whose value
 *   changed since the previous message of the subscription, and del the
 *   label sets that are gone. v is a JSON number, or one of the strings
 *   "NaN", "+Inf", "-Inf". A scalar result is one series with labels {}.
 *
 *   {"type":"error","id":"cpu","error":"1:5: unexpected ..."}   (id absent
 *       when the message could not be tied to one)
 *   {"type":"resync","id":"cpu","seq":1732262401}   resume_from is no longer
 *       held (or never was): the next data message of id is full.
 *
 * Server -> client, binary (after hello "binary"; data messages only, the
 * error and resync messages stay JSON text). Integers are unsigned LEB128
 * varints, v is an IEEE 754 double, little-endian:
 *
 *   u8 'D' (0x44), varint id_len, id bytes,
 *   u8 flags (bit 0: full), varint seq, varint t,
 *   varint nset, nset x { varint (index << 1 | defined),
 *                         [defined: varint len, len bytes of labels JSON],
 *                         f64 v },
 *   varint ndel, ndel x { varint index }
 *
 *   index is the series' number in the subscription's series table: a set
 *   entry defines (carries the label set of) every series the client does
 *   not hold yet, later ones name it by index only; del removes an index;
 *   full clears the table first.
 */
#ifndef NOVAMON_WS_PROTO_H
#define NOVAMON_WS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_PROTO_MAX_ID 64
#define WS_PROTO_MAX_QUERY 4096
/* The first byte of a binary data message. */
#define WS_PROTO_BIN_DATA 0x44
#define WS_PROTO_BIN_FULL 0x01

enum ws_proto_type {
	WS_PROTO_HELLO = 1,
	WS_PROTO_SUBSCRIBE,
	WS_PROTO_UNSUBSCRIBE,
};

enum ws_proto_encoding {
	WS_ENC_JSON,
	WS_ENC_BINARY,
};

/* A parsed client message. */
struct ws_proto_request {
	enum ws_proto_type type;
	char id[WS_PROTO_MAX_ID + 1]; /* subscribe, unsubscribe; "" when unknown */
	char query[WS_PROTO_MAX_QUERY + 1]; /* subscribe */
	bool has_resume;
	uint64_t resume_from;
	enum ws_proto_encoding encoding; /* hello */
};

/*
 * Parse one client message of len bytes (not NUL-terminated). Returns 0, or
 * -EINVAL with a one-line reason in err; out->id is filled as soon as a
 * valid id was read, so that an error can name its subscription.
 */
int ws_proto_parse_request(const char *buf, size_t len, struct ws_proto_request *out, char *err,
			   size_t errlen);

/*
 * One label set of a query result, interned by its owner (api/ws.c) per
 * stream so that every evaluation holding it points at the same object.
 * json is the label set as a JSON object with names sorted, e.g.
 * {"__name__":"up","job":"a"}; index numbers it for the binary encoding.
 * refs, hash and next belong to the owner.
 */
struct ws_series {
	struct ws_series *next;
	uint32_t refs;
	uint32_t hash;
	uint32_t index;
	uint32_t len;
	char json[];
};

/* One series' value in an evaluation; evaluations are sorted by ws_proto_series_cmp(). */
struct ws_point {
	const struct ws_series *s;
	double v;
};

/* Order of label sets: bytes of their JSON, then length. */
int ws_proto_series_cmp(const struct ws_series *a, const struct ws_series *b);

/* A growable byte buffer; err is sticky (-ENOMEM) and then len stops growing. */
struct ws_buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

void ws_buf_put(struct ws_buf *b, const void *data, size_t len);
void ws_buf_puts(struct ws_buf *b, const char *s);
void ws_buf_free(struct ws_buf *b);
/* s (len bytes) as a JSON string with quotes; invalid UTF-8 becomes U+FFFD. */
void ws_buf_json_string(struct ws_buf *b, const char *s, size_t len);
void ws_buf_varint(struct ws_buf *b, uint64_t v);

/*
 * Render labels (n name/value pairs, sorted by name) as the JSON object a
 * ws_series holds. Returns 0 or -ENOMEM (b->err).
 */
int ws_proto_labels_json(struct ws_buf *b, const char *const *names, const char *const *values,
			 size_t n);

/*
 * Append the tail of a data message, everything after its id, for the
 * change from base (nbase points) to cur (ncur points), both sorted; full
 * ignores base and sets every point of cur. JSON: `,"seq":...}`; binary:
 * from the flags byte on. Values compare by bits (NaN equals NaN). Returns
 * 0 or -ENOMEM.
 */
int ws_proto_data_tail(struct ws_buf *b, enum ws_proto_encoding enc, uint64_t seq, int64_t t_ms,
		       bool full, const struct ws_point *base, size_t nbase,
		       const struct ws_point *cur, size_t ncur);
/*
 * The head of a data message for subscription id (idlen bytes): JSON
 * `{"type":"data","id":"..."`, binary 'D' varint(len) id. head + tail is the
 * message. Returns 0 or -ENOMEM.
 */
int ws_proto_data_head(struct ws_buf *b, enum ws_proto_encoding enc, const char *id, size_t idlen);

/* {"type":"error","id":id,"error":msg} (no id member when id is NULL or ""). */
int ws_proto_error(struct ws_buf *b, const char *id, const char *msg);
/* {"type":"resync","id":id,"seq":seq} */
int ws_proto_resync(struct ws_buf *b, const char *id, uint64_t seq);

/* What ws_proto_decode_binary() read, for tests and clients written in C. */
struct ws_proto_bin_msg {
	const char *id; /* points into the message, idlen bytes */
	size_t idlen;
	bool full;
	uint64_t seq;
	uint64_t t_ms;
	size_t nset;
	size_t ndel;
};

/*
 * Decode a binary data message of len bytes. set (may be NULL) is called
 * for each set entry with its index, the labels JSON (NULL, 0 when not
 * defined here) and the value; del (may be NULL) for each deleted index;
 * a callback returning non-zero stops the decode with that value. Returns
 * 0, -EBADMSG for a malformed or truncated message, or a callback's value.
 */
int ws_proto_decode_binary(const void *buf, size_t len, struct ws_proto_bin_msg *out,
			   int (*set)(void *ctx, uint64_t index, const char *labels,
				      size_t labels_len, double v),
			   int (*del)(void *ctx, uint64_t index), void *ctx);

#endif /* NOVAMON_WS_PROTO_H */
