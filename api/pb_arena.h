/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pb_arena: a bump allocator for protobuf-c messages, unpacked (as the
 * ProtobufCAllocator of *__unpack()) or built for packing (pb_arena__zalloc()).
 *
 * protobuf_c_message_unpack() allocates every nested message, string and
 * repeated array separately; a remote-write request of 2,000 samples is
 * ~10,000 mallocs and as many frees, which was ~40 % of ingest time. All of
 * them live exactly as long as the request, so they come from a few large
 * blocks here and go in one pb_arena__destroy(). The same holds for the
 * messages an exporter builds for one request (api/otlp.c). Not thread-safe:
 * one arena per request.
 */
#ifndef NOVAMON_PB_ARENA_H
#define NOVAMON_PB_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

struct pb_arena_block;

struct pb_arena {
	ProtobufCAllocator alloc; /* pass &arena->alloc to *__unpack() */
	struct pb_arena_block *blocks;
	size_t hint; /* size of the next block */
	bool failed; /* a pb_arena__zalloc() failed: what was being built is incomplete */
};

/*
 * Start an empty arena whose first block holds about size_hint bytes (the
 * unpacked form of a message is a small multiple of its wire size).
 */
void pb_arena__init(struct pb_arena *a, size_t size_hint);
/*
 * size zeroed bytes aligned for any type, or NULL when out of memory (and
 * a->failed set, so a builder can check once at the end).
 */
void *pb_arena__zalloc(struct pb_arena *a, size_t size);

/* Free every block. The arena can be initialised again. */
void pb_arena__destroy(struct pb_arena *a);

#endif /* NOVAMON_PB_ARENA_H */
