/* SPDX-License-Identifier: Apache-2.0 */
/*
 * index: series catalogue and inverted index (see index.h).
 *
 * Three open-addressing hash tables with linear probing: series (id by
 * label-set hash), label names, and per name its values; each value holds
 * its postings as a sorted id array. Deleted slots become tombstones and
 * tables are rebuilt when live plus dead slots pass half the capacity.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/index.h"
#include "tsdb/matcher.h"

#define TOMBSTONE ((void *)1)

struct strmap_entry {
	uint64_t hash;
	char *key;
	size_t len;
};

struct strmap {
	struct strmap_entry **slots;
	size_t cap; /* power of two, or 0 */
	size_t n; /* live entries */
	size_t used; /* live + tombstones */
};

struct ix_value {
	struct strmap_entry e; /* first: the map stores this */
	uint32_t *ids;
	uint32_t n, cap;
};

struct ix_name {
	struct strmap_entry e;
	struct strmap values;
};

struct ix_series {
	uint64_t hash;
	struct tsdb_label *labels; /* interned strings; NULL: unused id */
	uint32_t n;
};

struct index {
	struct ix_series *series; /* by id */
	uint32_t id_end; /* allocated slots in series[] in use up to here */
	uint32_t series_cap;
	size_t count;
	uint32_t *table; /* series hash table: id + 1; 0 empty; UINT32_MAX dead */
	size_t table_cap, table_used;
	struct strmap names;
	size_t memory;
};

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t index_hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *s = p;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
	uint64_t k;

	while (len >= 8) {
		memcpy(&k, s, 8);
		h ^= rotl64(k * 0x87c37b91114253d5ULL, 31) * 0x4cf5ad432745937fULL;
		h = rotl64(h, 27) * 5 + 0x52dce729;
		s += 8;
		len -= 8;
	}
	k = 0;
	memcpy(&k, s, len);
	h ^= rotl64(k * 0x87c37b91114253d5ULL, 31) * 0x4cf5ad432745937fULL;
	return fmix64(h);
}

uint64_t index_hash_labels(const struct tsdb_label *l, size_t n)
{
	uint64_t h = 0x6a09e667f3bcc909ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h = index_hash_bytes(l[i].name, strlen(l[i].name), h);
		h = index_hash_bytes(l[i].value, strlen(l[i].value), h + 1);
	}
	return h;
}

/* --- string maps --- */

static struct strmap_entry *strmap_get(const struct strmap *m, const char *key, size_t len,
				       uint64_t hash)
{
	size_t i, mask = m->cap - 1;
	struct strmap_entry *e;

	if (!m->cap)
		return NULL;
	for (i = hash & mask;; i = (i + 1) & mask) {
		e = m->slots[i];
		if (!e)
			return NULL;
		if (e != TOMBSTONE && e->hash == hash && e->len == len && !memcmp(e->key, key, len))
			return e;
	}
}

static int strmap_grow(struct strmap *m)
{
	size_t ncap = m->cap ? m->cap : 8;
	struct strmap_entry **nslots;
	size_t i, j;

	while (m->n * 2 + 2 > ncap)
		ncap *= 2;
	nslots = calloc(ncap, sizeof(*nslots));
	if (!nslots)
		return -ENOMEM;
	for (i = 0; i < m->cap; i++) {
		struct strmap_entry *e = m->slots[i];

		if (!e || e == TOMBSTONE)
			continue;
		for (j = e->hash & (ncap - 1); nslots[j]; j = (j + 1) & (ncap - 1))
			;
		nslots[j] = e;
	}
	free(m->slots);
	m->slots = nslots;
	m->cap = ncap;
	m->used = m->n;
	return 0;
}

/* Insert e (not present). */
static int strmap_put(struct strmap *m, struct strmap_entry *e)
{
	size_t i;
	int err;

	if ((m->used + 1) * 2 > m->cap) {
		err = strmap_grow(m);
		if (err)
			return err;
	}
	for (i = e->hash & (m->cap - 1); m->slots[i] && m->slots[i] != TOMBSTONE;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->slots[i])
		m->used++;
	m->slots[i] = e;
	m->n++;
	return 0;
}

static void strmap_del(struct strmap *m, struct strmap_entry *e)
{
	size_t i, mask = m->cap - 1;

	for (i = e->hash & mask; m->slots[i]; i = (i + 1) & mask) {
		if (m->slots[i] == e) {
			m->slots[i] = TOMBSTONE;
			m->n--;
			return;
		}
	}
}

static struct strmap_entry *entry_new(size_t size, const char *key, size_t len, uint64_t hash)
{
	struct strmap_entry *e = calloc(1, size);

	if (!e)
		return NULL;
	e->key = malloc(len + 1);
	if (!e->key) {
		free(e);
		return NULL;
	}
	memcpy(e->key, key, len + 1);
	e->len = len;
	e->hash = hash;
	return e;
}

/* --- postings --- */

static int postings_add(struct ix_value *v, uint32_t id)
{
	uint32_t lo = 0, hi = v->n, mid;

	if (v->n == v->cap) {
		uint32_t ncap = v->cap ? v->cap * 2 : 2;
		uint32_t *nids = realloc(v->ids, ncap * sizeof(*nids));

		if (!nids)
			return -ENOMEM;
		v->ids = nids;
		v->cap = ncap;
	}
	if (!v->n || v->ids[v->n - 1] < id) {
		v->ids[v->n++] = id;
		return 0;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(v->ids + lo + 1, v->ids + lo, (v->n - lo) * sizeof(*v->ids));
	v->ids[lo] = id;
	v->n++;
	return 0;
}

static void postings_del(struct ix_value *v, uint32_t id)
{
	uint32_t lo = 0, hi = v->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->n && v->ids[lo] == id) {
		memmove(v->ids + lo, v->ids + lo + 1, (v->n - lo - 1) * sizeof(*v->ids));
		v->n--;
	}
}

/* --- index --- */

struct index *index__new(void)
{
	struct index *ix = calloc(1, sizeof(*ix));

	if (!ix)
		errno = ENOMEM;
	return ix;
}

static void name_free(struct ix_name *nm)
{
	size_t i;

	for (i = 0; i < nm->values.cap; i++) {
		struct ix_value *v = (struct ix_value *)nm->values.slots[i];

		if (!v || (void *)v == TOMBSTONE)
			continue;
		free(v->ids);
		free(v->e.key);
		free(v);
	}
	free(nm->values.slots);
	free(nm->e.key);
	free(nm);
}

void index__free(struct index *ix)
{
	uint32_t id;
	size_t i;

	if (!ix)
		return;
	for (id = 0; id < ix->id_end; id++)
		free(ix->series[id].labels);
	for (i = 0; i < ix->names.cap; i++) {
		struct strmap_entry *e = ix->names.slots[i];

		if (e && e != TOMBSTONE)
			name_free((struct ix_name *)e);
	}
	free(ix->names.slots);
	free(ix->series);
	free(ix->table);
	free(ix);
}

static bool labels_equal(const struct tsdb_label *a, size_t na, const struct tsdb_label *b,
			 size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++) {
		if (strcmp(a[i].name, b[i].name) || strcmp(a[i].value, b[i].value))
			return false;
	}
	return true;
}

int64_t index__find(const struct index *ix, const struct tsdb_label *l, size_t n, uint64_t hash)
{
	size_t i, mask = ix->table_cap - 1;
	uint32_t slot;
	const struct ix_series *s;

	if (!ix->table_cap)
		return -ENOENT;
	for (i = hash & mask;; i = (i + 1) & mask) {
		slot = ix->table[i];
		if (!slot)
			return -ENOENT;
		if (slot == UINT32_MAX)
			continue;
		s = &ix->series[slot - 1];
		if (s->hash == hash && labels_equal(s->labels, s->n, l, n))
			return slot - 1;
	}
}

static int table_grow(struct index *ix)
{
	size_t ncap = ix->table_cap ? ix->table_cap : 64;
	uint32_t *nt;
	size_t i, j;

	while (ix->count * 2 + 2 > ncap)
		ncap *= 2;
	nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	for (i = 0; i < ix->table_cap; i++) {
		uint32_t slot = ix->table[i];

		if (!slot || slot == UINT32_MAX)
			continue;
		for (j = ix->series[slot - 1].hash & (ncap - 1); nt[j]; j = (j + 1) & (ncap - 1))
			;
		nt[j] = slot;
	}
	free(ix->table);
	ix->table = nt;
	ix->table_cap = ncap;
	ix->table_used = ix->count;
	return 0;
}

static int series_slot_reserve(struct index *ix, uint32_t id)
{
	uint32_t ncap;
	struct ix_series *ns;

	if (id < ix->series_cap)
		return 0;
	ncap = ix->series_cap ? ix->series_cap : 64;
	while (ncap <= id)
		ncap *= 2;
	ns = realloc(ix->series, (size_t)ncap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	memset(ns + ix->series_cap, 0, (size_t)(ncap - ix->series_cap) * sizeof(*ns));
	ix->memory += (size_t)(ncap - ix->series_cap) * sizeof(*ns);
	ix->series = ns;
	ix->series_cap = ncap;
	return 0;
}

/* Find or create name=value; returns the value with *name_out set. */
static struct ix_value *value_get_or_add(struct index *ix, const char *name, const char *value,
					 struct ix_name **name_out)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	uint64_t nh = index_hash_bytes(name, nlen, 0), vh = index_hash_bytes(value, vlen, 0);
	struct ix_name *nm = (struct ix_name *)strmap_get(&ix->names, name, nlen, nh);
	struct ix_value *v;

	if (!nm) {
		nm = (struct ix_name *)entry_new(sizeof(*nm), name, nlen, nh);
		if (!nm)
			return NULL;
		if (strmap_put(&ix->names, &nm->e)) {
			free(nm->e.key);
			free(nm);
			return NULL;
		}
		ix->memory += sizeof(*nm) + nlen + 1;
	}
	*name_out = nm;
	v = (struct ix_value *)strmap_get(&nm->values, value, vlen, vh);
	if (v)
		return v;
	v = (struct ix_value *)entry_new(sizeof(*v), value, vlen, vh);
	if (!v)
		return NULL;
	if (strmap_put(&nm->values, &v->e)) {
		free(v->e.key);
		free(v);
		return NULL;
	}
	ix->memory += sizeof(*v) + vlen + 1 + 2 * sizeof(void *);
	return v;
}

static void value_release(struct index *ix, const char *name, const char *value, uint32_t id)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	struct ix_name *nm;
	struct ix_value *v;

	nm = (struct ix_name *)strmap_get(&ix->names, name, nlen, index_hash_bytes(name, nlen, 0));
	if (!nm)
		return;
	v = (struct ix_value *)strmap_get(&nm->values, value, vlen,
					  index_hash_bytes(value, vlen, 0));
	if (!v)
		return;
	postings_del(v, id);
	if (v->n)
		return;
	strmap_del(&nm->values, &v->e);
	ix->memory -= sizeof(*v) + vlen + 1 + 2 * sizeof(void *);
	free(v->ids);
	free(v->e.key);
	free(v);
	if (nm->values.n)
		return;
	strmap_del(&ix->names, &nm->e);
	ix->memory -= sizeof(*nm) + nlen + 1;
	name_free(nm);
}

int index__add(struct index *ix, uint32_t id, const struct tsdb_label *l, size_t n, uint64_t hash)
{
	struct tsdb_label *ls = NULL;
	struct ix_name *nm;
	struct ix_value *v;
	size_t i, added = 0, j;
	int err;

	if (id == UINT32_MAX - 1 || id == UINT32_MAX)
		return -ERANGE;
	err = series_slot_reserve(ix, id);
	if (err)
		return err;
	if (ix->series[id].labels || index__find(ix, l, n, hash) >= 0)
		return -EEXIST;
	if ((ix->table_used + 1) * 2 > ix->table_cap) {
		err = table_grow(ix);
		if (err)
			return err;
	}
	ls = calloc(n ? n : 1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		v = value_get_or_add(ix, l[i].name, l[i].value, &nm);
		if (!v || postings_add(v, id)) {
			err = -ENOMEM;
			goto out_undo;
		}
		added++;
		ls[i].name = nm->e.key;
		ls[i].value = v->e.key;
	}
	for (j = hash & (ix->table_cap - 1); ix->table[j] && ix->table[j] != UINT32_MAX;
	     j = (j + 1) & (ix->table_cap - 1))
		;
	if (!ix->table[j])
		ix->table_used++;
	ix->table[j] = id + 1;
	ix->series[id].hash = hash;
	ix->series[id].labels = ls;
	ix->series[id].n = (uint32_t)n;
	ix->count++;
	if (id >= ix->id_end)
		ix->id_end = id + 1;
	ix->memory += n * sizeof(*ls) + 2 * sizeof(uint32_t) * n + 16;
	return 0;

out_undo:
	for (i = 0; i < added; i++)
		value_release(ix, l[i].name, l[i].value, id);
	free(ls);
	return err;
}

void index__remove(struct index *ix, uint32_t id)
{
	struct ix_series *s;
	size_t i, mask;
	uint32_t k;

	if (id >= ix->id_end || !ix->series[id].labels)
		return;
	s = &ix->series[id];
	mask = ix->table_cap - 1;
	for (i = s->hash & mask; ix->table[i]; i = (i + 1) & mask) {
		if (ix->table[i] == id + 1) {
			ix->table[i] = UINT32_MAX;
			break;
		}
	}
	/* Each release may free that label's interned strings, used no more. */
	for (k = 0; k < s->n; k++)
		value_release(ix, s->labels[k].name, s->labels[k].value, id);
	ix->memory -= s->n * sizeof(*s->labels) + 2 * sizeof(uint32_t) * s->n + 16;
	free(s->labels);
	s->labels = NULL;
	s->n = 0;
	ix->count--;
}

const struct tsdb_label *index__labels(const struct index *ix, uint32_t id, size_t *n)
{
	if (id >= ix->id_end || !ix->series[id].labels)
		return NULL;
	*n = ix->series[id].n;
	return ix->series[id].labels;
}

uint32_t index__id_end(const struct index *ix)
{
	return ix->id_end;
}

size_t index__count(const struct index *ix)
{
	return ix->count;
}

size_t index__memory(const struct index *ix)
{
	return ix->memory + ix->table_cap * sizeof(*ix->table) +
	       ix->names.cap * sizeof(*ix->names.slots) + sizeof(*ix);
}

/* --- selection --- */

struct idvec {
	uint32_t *v;
	size_t n, cap;
};

static int idvec_push_many(struct idvec *a, const uint32_t *ids, size_t n)
{
	if (!n)
		return 0;
	if (a->n + n > a->cap) {
		size_t ncap = a->cap ? a->cap : 64;
		uint32_t *nv;

		while (ncap < a->n + n)
			ncap *= 2;
		nv = realloc(a->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = ncap;
	}
	memcpy(a->v + a->n, ids, n * sizeof(*ids));
	a->n += n;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void idvec_sort_unique(struct idvec *a, bool sorted)
{
	size_t i, o = 0;

	if (!sorted && a->n > 1)
		qsort(a->v, a->n, sizeof(*a->v), cmp_u32);
	for (i = 0; i < a->n; i++) {
		if (!o || a->v[o - 1] != a->v[i])
			a->v[o++] = a->v[i];
	}
	a->n = o;
}

/*
 * Series whose value of the matcher's label satisfies want == tsdb_cmatcher__match():
 * the union of the postings of the values that do (series lacking the label
 * are not included).
 */
static int collect(const struct index *ix, const struct tsdb_cmatcher *cm, bool want,
		   struct idvec *out)
{
	const char *name = cm->m->name;
	size_t nlen = strlen(name), i, nvals = 0;
	const struct ix_name *nm;
	const struct ix_value *v;

	out->n = 0;
	nm = (const struct ix_name *)strmap_get(&ix->names, name, nlen,
						index_hash_bytes(name, nlen, 0));
	if (!nm)
		return 0;
	if (cm->m->type == TSDB_MATCH_EQ && want) {
		/* Direct lookup: one postings list. */
		size_t vlen = strlen(cm->m->value);

		v = (const struct ix_value *)strmap_get(&nm->values, cm->m->value, vlen,
							index_hash_bytes(cm->m->value, vlen, 0));
		return v ? idvec_push_many(out, v->ids, v->n) : 0;
	}
	for (i = 0; i < nm->values.cap; i++) {
		v = (const struct ix_value *)nm->values.slots[i];
		if (!v || (const void *)v == TOMBSTONE)
			continue;
		if (tsdb_cmatcher__match(cm, v->e.key) != want)
			continue;
		if (idvec_push_many(out, v->ids, v->n))
			return -ENOMEM;
		nvals++;
	}
	idvec_sort_unique(out, nvals <= 1);
	return 0;
}

/* a = a AND b (intersect = true) or a AND NOT b; both sorted. */
static void merge(struct idvec *a, const struct idvec *b, bool intersect)
{
	size_t i = 0, j = 0, o = 0;

	while (i < a->n) {
		while (j < b->n && b->v[j] < a->v[i])
			j++;
		if ((j < b->n && b->v[j] == a->v[i]) == intersect)
			a->v[o++] = a->v[i];
		i++;
	}
	a->n = o;
}

int index__select(const struct index *ix, const struct tsdb_matcher *m, size_t nm, uint32_t **ids,
		  size_t *n)
{
	struct tsdb_cmatcher *cms = NULL;
	struct idvec acc = { 0 }, tmp = { 0 };
	size_t i, ncm = 0;
	ssize_t first = -1;
	uint32_t id;
	int err = 0;

	*ids = NULL;
	*n = 0;
	if (!nm) {
		for (id = 0; id < ix->id_end; id++) {
			if (ix->series[id].labels && (err = idvec_push_many(&acc, &id, 1)))
				goto cleanup;
		}
		goto done;
	}
	cms = calloc(nm, sizeof(*cms));
	if (!cms)
		return -ENOMEM;
	for (i = 0; i < nm; i++) {
		err = tsdb_cmatcher__init(&cms[i], &m[i]);
		if (err)
			goto cleanup;
		ncm++;
		if (first < 0 && !cms[i].matches_empty)
			first = (ssize_t)i;
	}
	if (first < 0) {
		err = -EINVAL;
		goto cleanup;
	}
	err = collect(ix, &cms[first], true, &acc);
	if (err)
		goto cleanup;
	for (i = 0; i < nm && acc.n; i++) {
		if ((ssize_t)i == first)
			continue;
		/* Matching "" means lacking the label is fine: drop only the
		 * series whose value fails; otherwise keep those whose value
		 * passes. */
		err = collect(ix, &cms[i], !cms[i].matches_empty, &tmp);
		if (err)
			goto cleanup;
		merge(&acc, &tmp, !cms[i].matches_empty);
	}
done:
	*ids = acc.v;
	*n = acc.n;
	acc.v = NULL;
cleanup:
	for (i = 0; i < ncm; i++)
		tsdb_cmatcher__fini(&cms[i]);
	free(cms);
	free(acc.v);
	free(tmp.v);
	return err;
}
