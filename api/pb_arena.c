/* SPDX-License-Identifier: Apache-2.0 */
/* pb_arena: a bump allocator for protobuf-c's unpack (see pb_arena.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pb_arena.h"

#define PB_ARENA_MIN_BLOCK (16u << 10)
#define PB_ARENA_ALIGN 16u

struct pb_arena_block {
	struct pb_arena_block *next;
	size_t used;
	size_t cap;
	_Alignas(16) unsigned char data[];
};

static void *pb_arena_alloc(void *ctx, size_t size)
{
	struct pb_arena *a = ctx;
	struct pb_arena_block *b = a->blocks;
	size_t need = (size + PB_ARENA_ALIGN - 1) & ~(size_t)(PB_ARENA_ALIGN - 1);
	size_t cap;
	void *p;

	if (need < size)
		return NULL;
	if (!b || b->cap - b->used < need) {
		cap = a->hint > need ? a->hint : need;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = a->blocks;
		a->blocks = b;
		/* grow geometrically: a bad hint costs a few blocks, not thousands */
		if (a->hint < SIZE_MAX / 2)
			a->hint *= 2;
	}
	p = b->data + b->used;
	b->used += need;
	return p;
}

/* Individual frees are no-ops: everything goes in pb_arena__destroy(). */
static void pb_arena_free(void *ctx, void *p)
{
	(void)ctx;
	(void)p;
}

void pb_arena__init(struct pb_arena *a, size_t size_hint)
{
	a->alloc.alloc = pb_arena_alloc;
	a->alloc.free = pb_arena_free;
	a->alloc.allocator_data = a;
	a->blocks = NULL;
	a->failed = false;
	a->hint = size_hint > PB_ARENA_MIN_BLOCK ? size_hint : PB_ARENA_MIN_BLOCK;
}

void *pb_arena__zalloc(struct pb_arena *a, size_t size)
{
	void *p = pb_arena_alloc(a, size);

	if (!p) {
		a->failed = true;
		return NULL;
	}
	return memset(p, 0, size);
}

void pb_arena__destroy(struct pb_arena *a)
{
	struct pb_arena_block *b = a->blocks, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	a->blocks = NULL;
}
