/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

struct series_table {
	struct series **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	unsigned int nfamilies;
	struct series **heads; /* [nfamilies] */
	struct series ***tails;
};

/* FNV-1a over family and labels. */
static uint64_t series_hash(unsigned int family, const char *labels)
{
	uint64_t h = 0xcbf29ce484222325ull ^ family;

	for (; *labels; labels++) {
		h ^= (unsigned char)*labels;
		h *= 0x100000001b3ull;
	}
	return h;
}

struct series_table *series_table__new(unsigned int nfamilies)
{
	struct series_table *t = calloc(1, sizeof(*t));
	unsigned int f;

	if (!t)
		return NULL;
	t->nbuckets = 1024;
	t->nfamilies = nfamilies;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->heads = calloc(nfamilies, sizeof(*t->heads));
	t->tails = calloc(nfamilies, sizeof(*t->tails));
	if (!t->buckets || !t->heads || !t->tails) {
		series_table__free(t);
		errno = ENOMEM;
		return NULL;
	}
	for (f = 0; f < nfamilies; f++)
		t->tails[f] = &t->heads[f];
	return t;
}

void series_table__free(struct series_table *t)
{
	struct series *s, *n;
	size_t i;

	if (!t)
		return;
	for (i = 0; t->buckets && i < t->nbuckets; i++)
		for (s = t->buckets[i]; s; s = n) {
			n = s->hnext;
			free(s);
		}
	free(t->buckets);
	free(t->heads);
	free(t->tails);
	free(t);
}

static void grow(struct series_table *t)
{
	size_t n = t->nbuckets * 2, i;
	struct series **b = calloc(n, sizeof(*b)), *s, *next;

	if (!b)
		return; /* keep the longer chains */
	for (i = 0; i < t->nbuckets; i++)
		for (s = t->buckets[i]; s; s = next) {
			next = s->hnext;
			s->hnext = b[s->hash & (n - 1)];
			b[s->hash & (n - 1)] = s;
		}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

struct series *series_table__get(struct series_table *t, unsigned int family, const char *labels,
				 uint64_t now_ms)
{
	uint64_t h = series_hash(family, labels);
	struct series *s;
	size_t len;

	if (family >= t->nfamilies) {
		errno = EINVAL;
		return NULL;
	}
	for (s = t->buckets[h & (t->nbuckets - 1)]; s; s = s->hnext)
		if (s->hash == h && s->family == family && !strcmp(s->labels, labels))
			goto found;
	len = strlen(labels);
	s = calloc(1, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	memcpy(s->labels, labels, len + 1);
	s->hash = h;
	s->family = family;
	s->hnext = t->buckets[h & (t->nbuckets - 1)];
	t->buckets[h & (t->nbuckets - 1)] = s;
	/* Append to the family list. */
	s->pprev = t->tails[family];
	*t->tails[family] = s;
	t->tails[family] = &s->next;
	if (++t->count > t->nbuckets)
		grow(t);
	s->last_ms = now_ms;
found:
	return s;
}

struct series *series_table__first(const struct series_table *t, unsigned int family)
{
	return family < t->nfamilies ? t->heads[family] : NULL;
}

size_t series_table__expire(struct series_table *t, uint64_t now_ms, uint64_t max_idle_ms)
{
	struct series **pp, *s;
	size_t i, dropped = 0;

	for (i = 0; i < t->nbuckets; i++) {
		pp = &t->buckets[i];
		while ((s = *pp)) {
			if (s->last_ms >= now_ms || now_ms - s->last_ms <= max_idle_ms) {
				pp = &s->hnext;
				continue;
			}
			*pp = s->hnext;
			/* Unlink from the family list. */
			*s->pprev = s->next;
			if (s->next)
				s->next->pprev = s->pprev;
			else
				t->tails[s->family] = s->pprev;
			free(s);
			t->count--;
			dropped++;
		}
	}
	return dropped;
}

size_t series_table__count(const struct series_table *t)
{
	return t->count;
}
