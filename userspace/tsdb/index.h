/* SPDX-License-Identifier: Apache-2.0 */
/*
 * index: the store's series catalogue and inverted index.
 *
 * A series is a sorted label set (names strictly ascending, values
 * non-empty) with a caller-chosen numeric id. Series are found by the hash
 * of their label set with an exact compare, and selected through postings:
 * label name=value -> ascending series ids. Label strings are interned: a
 * series' label array points into the index's name and value tables and
 * stays valid until the series is removed.
 *
 * Matchers follow Prometheus: a label the series lacks matches as the empty
 * string, regular expressions are fully anchored (POSIX ERE, compiled as
 * "^(re)$"), and a selection needs at least one matcher that does not match
 * the empty string.
 *
 * Not thread safe: the store serialises calls.
 */
#ifndef NOVAMON_TSDB_INDEX_H
#define NOVAMON_TSDB_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

struct index;

/* 64-bit hash of len bytes, chained through seed. */
uint64_t index_hash_bytes(const void *p, size_t len, uint64_t seed);
/* Hash of a sorted label set (the key index__find() expects). */
uint64_t index_hash_labels(const struct tsdb_label *l, size_t n);

/* A new empty index, or NULL with errno set. */
struct index *index__new(void);
void index__free(struct index *ix);

/* Id of the series with exactly the sorted label set l, or -ENOENT. */
int64_t index__find(const struct index *ix, const struct tsdb_label *l, size_t n, uint64_t hash);

/*
 * Add a series under an unused id (ids need not arrive in order). l must be
 * sorted and valid; strings are copied. Returns 0, -EEXIST (id in use or
 * label set present), -ENOMEM.
 */
int index__add(struct index *ix, uint32_t id, const struct tsdb_label *l, size_t n, uint64_t hash);
/* Remove a series; unknown ids are ignored. */
void index__remove(struct index *ix, uint32_t id);

/* The interned, sorted labels of a series, or NULL when id is unused. */
const struct tsdb_label *index__labels(const struct index *ix, uint32_t id, size_t *n);
/* One past the highest id ever added. */
uint32_t index__id_end(const struct index *ix);
/* Series held. */
size_t index__count(const struct index *ix);
/* Approximate heap bytes held. */
size_t index__memory(const struct index *ix);

/*
 * Ids (ascending, malloc'd into *ids, count in *n) of the series matching
 * every matcher. nm == 0 selects every series. Returns 0, -EINVAL (a bad
 * regular expression, or no matcher that rejects the empty string), -ENOMEM.
 */
int index__select(const struct index *ix, const struct tsdb_matcher *m, size_t nm, uint32_t **ids,
		  size_t *n);

#endif /* NOVAMON_TSDB_INDEX_H */
