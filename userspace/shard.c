/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <numa.h>
#include <stdlib.h>
#include <string.h>

#include "shard.h"

/* Murmur3-style finaliser over the six key words: cheap and well mixed. */
static inline uint32_t key_hash(const struct shard_key *k)
{
	uint64_t h = ((uint64_t)k->kind << 32 | k->tgid) * 0x9e3779b97f4a7c15ull;

	h ^= ((uint64_t)k->tid << 32 | k->a) * 0xc2b2ae3d27d4eb4full;
	h ^= ((uint64_t)k->b << 32 | k->c) * 0x165667b19e3779f9ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

static inline bool key_eq(const struct shard_key *x, const struct shard_key *y)
{
	return !memcmp(x, y, sizeof(*x));
}

int shard_table__init(struct shard_table *t, uint32_t cap, int node)
{
	size_t bytes = (size_t)cap * sizeof(struct shard_entry);

	memset(t, 0, sizeof(*t));
	if (cap < 16 || (cap & (cap - 1)))
		return -EINVAL;
	t->node = -1;
	if (node >= 0 && numa_available() >= 0) {
		t->entries = numa_alloc_onnode(bytes, node);
		if (t->entries) {
			memset(t->entries, 0, bytes); /* first touch, on the node */
			t->node = node;
		}
	}
	if (!t->entries)
		t->entries = calloc(cap, sizeof(struct shard_entry));
	if (!t->entries)
		return -ENOMEM;
	t->cap = cap;
	return 0;
}

void shard_table__destroy(struct shard_table *t)
{
	if (!t->entries)
		return;
	if (t->node >= 0)
		numa_free(t->entries, (size_t)t->cap * sizeof(struct shard_entry));
	else
		free(t->entries);
	t->entries = NULL;
}

void shard_table__clear(struct shard_table *t)
{
	struct shard_entry *e;

	if (t->used > t->cap / 8) {
		memset(t->entries, 0, (size_t)t->cap * sizeof(*e));
	} else {
		shard_table__for_each(t, e)
			memset(e, 0, sizeof(*e));
	}
	t->used = 0;
	t->overflow = 0;
}

struct shard_val *shard_table__get(struct shard_table *t, const struct shard_key *key)
{
	uint32_t mask = t->cap - 1, i = key_hash(key) & mask;
	struct shard_entry *e;

	for (;;) {
		e = &t->entries[i];
		if (!e->used)
			break;
		if (key_eq(&e->key, key))
			return &e->val;
		i = (i + 1) & mask;
	}
	if (t->used >= t->cap - t->cap / 4) {
		t->overflow++;
		return NULL;
	}
	e->key = *key;
	e->used = 1;
	t->used++;
	return &e->val;
}
