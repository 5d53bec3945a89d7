/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shard: the worker's open-addressing aggregate table. Capacity checks,
 * lookup-or-insert (zeroed on insert, found again, one slot per distinct
 * key), the 3/4 fill limit and its overflow counter, both clear strategies,
 * iteration, the log2 histogram buckets, and allocation on NUMA node 0 and
 * with plain calloc.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <numa.h>

#include "shard.h"

static struct shard_table tbl;

static void shard_setup(void)
{
	cr_assert_eq(shard_table__init(&tbl, 1024, -1), 0);
}

static void shard_teardown(void)
{
	shard_table__destroy(&tbl);
}

TestSuite(shard, .init = shard_setup, .fini = shard_teardown);

/* A key that differs from key_n(m) for every m != n, in several fields. */
static struct shard_key key_n(uint32_t n)
{
	return (struct shard_key){
		.kind = SHARD_BLOCK,
		.tgid = 1000 + n,
		.tid = 2000 + n,
		.a = n,
		.b = n * 3,
		.c = 7,
	};
}

static bool val_is_zero(const struct shard_val *v)
{
	static const struct shard_val zero;

	return !memcmp(v, &zero, sizeof(zero));
}

/* Every slot of t, used or not, is all zero bytes. */
static void assert_all_slots_zero(const struct shard_table *t)
{
	static const struct shard_entry zero;
	uint32_t i;

	for (i = 0; i < t->cap; i++)
		cr_assert(!memcmp(&t->entries[i], &zero, sizeof(zero)), "slot %u not cleared", i);
}

static void fill(struct shard_table *t, uint32_t n)
{
	struct shard_val *v;
	struct shard_key k;
	uint32_t i;

	for (i = 0; i < n; i++) {
		k = key_n(i);
		v = shard_table__get(t, &k);
		cr_assert_not_null(v, "insert %u of %u failed", i, n);
		v->count = i + 1;
		v->sum = 10 * (i + 1);
		shard_val__observe(v, 5000);
	}
	cr_assert_eq(t->used, n);
}

Test(shard, init_rejects_bad_caps)
{
	static const uint32_t bad[] = { 0, 1, 2, 8, 15, 17, 24, 100, 1000, 3u << 10 };
	struct shard_table t;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&t, 0xa5, sizeof(t));
		cr_assert_eq(shard_table__init(&t, bad[i], -1), -EINVAL, "cap %u accepted", bad[i]);
		cr_assert_null(t.entries, "cap %u: entries left set", bad[i]);
		cr_assert_eq(t.cap, 0);
		shard_table__destroy(&t); /* safe after a failed init */
	}
}

Test(shard, init_accepts_powers_of_two)
{
	struct shard_table t;
	uint32_t cap;

	for (cap = 16; cap <= 4096; cap <<= 1) {
		cr_assert_eq(shard_table__init(&t, cap, -1), 0, "cap %u rejected", cap);
		cr_assert_not_null(t.entries);
		cr_assert_eq(t.cap, cap);
		cr_assert_eq(t.used, 0);
		cr_assert_eq(t.overflow, 0);
		cr_assert_eq(t.node, -1);
		assert_all_slots_zero(&t);
		shard_table__destroy(&t);
		cr_assert_null(t.entries);
		shard_table__destroy(&t); /* twice is fine */
	}
}

Test(shard, get_inserts_zeroed_and_finds_again)
{
	struct shard_key k = key_n(42), copy;
	struct shard_val *v, *again;

	v = shard_table__get(&tbl, &k);
	cr_assert_not_null(v);
	cr_assert(val_is_zero(v), "new value not zeroed");
	cr_assert_eq(tbl.used, 1);
	v->count = 5;
	v->sum = 77;
	v->hist[3] = 9;

	copy = k; /* found by content, not by the caller's pointer */
	again = shard_table__get(&tbl, &copy);
	cr_assert_eq(again, v, "same key gave another slot");
	cr_assert_eq(again->count, 5);
	cr_assert_eq(again->sum, 77);
	cr_assert_eq(again->hist[3], 9);
	cr_assert_eq(tbl.used, 1, "lookup of an existing key inserted");
	cr_assert_eq(tbl.overflow, 0);
}

Test(shard, distinct_keys_get_distinct_values)
{
	/* Keys that differ from base in exactly one field each. */
	struct shard_key keys[7];
	struct shard_val *v[7];
	int i, j;

	keys[0] = (struct shard_key){ .kind = 1, .tgid = 2, .tid = 3, .a = 4, .b = 5, .c = 6 };
	for (i = 1; i < 7; i++)
		keys[i] = keys[0];
	keys[1].kind++;
	keys[2].tgid++;
	keys[3].tid++;
	keys[4].a++;
	keys[5].b++;
	keys[6].c++;

	for (i = 0; i < 7; i++) {
		v[i] = shard_table__get(&tbl, &keys[i]);
		cr_assert_not_null(v[i]);
		cr_assert(val_is_zero(v[i]), "key %d found another key's value", i);
		v[i]->count = 100 + i;
	}
	cr_assert_eq(tbl.used, 7);
	for (i = 0; i < 7; i++)
		for (j = i + 1; j < 7; j++)
			cr_assert_neq(v[i], v[j], "keys %d and %d share a slot", i, j);
	for (i = 0; i < 7; i++)
		cr_assert_eq(shard_table__get(&tbl, &keys[i])->count, (uint64_t)(100 + i));
	cr_assert_eq(tbl.used, 7);
}

Test(shard, many_keys_all_found)
{
	struct shard_val *v;
	struct shard_key k;
	uint32_t i;

	fill(&tbl, 768); /* exactly the 3/4 limit of 1024 */
	for (i = 0; i < 768; i++) {
		k = key_n(i);
		v = shard_table__get(&tbl, &k);
		cr_assert_not_null(v, "key %u lost", i);
		cr_assert_eq(v->count, i + 1, "key %u has key %" PRIu64 "'s value", i,
			     v->count - 1);
	}
	cr_assert_eq(tbl.used, 768);
	cr_assert_eq(tbl.overflow, 0);
}

Test(shard, overflow_past_three_quarters)
{
	struct shard_table t;
	struct shard_val *v;
	struct shard_key k;
	uint32_t i;

	cr_assert_eq(shard_table__init(&t, 16, -1), 0);
	fill(&t, 12); /* 16 - 16 / 4 */
	cr_assert_eq(t.overflow, 0);

	k = key_n(12);
	cr_assert_null(shard_table__get(&t, &k), "13th key inserted into a 16-slot table");
	cr_assert_eq(t.overflow, 1);
	cr_assert_eq(t.used, 12);
	k = key_n(13);
	cr_assert_null(shard_table__get(&t, &k));
	cr_assert_eq(t.overflow, 2);

	/* Keys already present are still found, and that is not an overflow. */
	for (i = 0; i < 12; i++) {
		k = key_n(i);
		v = shard_table__get(&t, &k);
		cr_assert_not_null(v, "key %u not found in a full table", i);
		cr_assert_eq(v->count, i + 1);
	}
	cr_assert_eq(t.overflow, 2);
	cr_assert_eq(t.used, 12);

	/* After a clear the table takes new keys again and overflow restarts. */
	shard_table__clear(&t);
	cr_assert_eq(t.overflow, 0);
	k = key_n(12);
	cr_assert_not_null(shard_table__get(&t, &k));
	shard_table__destroy(&t);
}

static void check_clear(uint32_t n)
{
	struct shard_key k;
	struct shard_val *v;

	fill(&tbl, n);
	tbl.overflow = 3;
	shard_table__clear(&tbl);
	cr_assert_eq(tbl.used, 0);
	cr_assert_eq(tbl.overflow, 0);
	cr_assert_eq(tbl.cap, 1024);
	assert_all_slots_zero(&tbl);

	/* The old keys come back as new, zeroed values. */
	k = key_n(0);
	v = shard_table__get(&tbl, &k);
	cr_assert_not_null(v);
	cr_assert(val_is_zero(v));
	cr_assert_eq(tbl.used, 1);
}

Test(shard, clear_few_used)
{
	check_clear(5); /* <= cap / 8: slot by slot */
}

Test(shard, clear_at_threshold)
{
	check_clear(128); /* exactly cap / 8: still slot by slot */
}

Test(shard, clear_many_used)
{
	check_clear(600); /* > cap / 8: one memset */
}

Test(shard, clear_empty)
{
	shard_table__clear(&tbl);
	cr_assert_eq(tbl.used, 0);
	assert_all_slots_zero(&tbl);
}

Test(shard, for_each_visits_exactly_the_used)
{
	static bool seen[300];
	struct shard_key want;
	struct shard_entry *e;
	uint32_t n = 0, i;
	uint64_t sum = 0;

	shard_table__for_each(&tbl, e) n++;
	cr_assert_eq(n, 0, "empty table visited %u entries", n);

	fill(&tbl, 300);
	shard_table__for_each(&tbl, e)
	{
		cr_assert(e->used);
		i = e->key.a;
		cr_assert_lt(i, 300, "visited a key never inserted");
		want = key_n(i);
		cr_assert(!memcmp(&e->key, &want, sizeof(want)), "key %u corrupted", i);
		cr_assert_eq(e->val.count, i + 1);
		cr_assert(!seen[i], "key %u visited twice", i);
		seen[i] = true;
		sum += e->val.count;
		n++;
	}
	cr_assert_eq(n, 300);
	cr_assert_eq(sum, 300ull * 301 / 2);

	shard_table__clear(&tbl);
	n = 0;
	shard_table__for_each(&tbl, e) n++;
	cr_assert_eq(n, 0, "cleared table visited %u entries", n);
}

Test(shard, hist_bucket_boundaries)
{
	static const struct {
		uint64_t ns;
		unsigned int bucket;
	} cases[] = {
		{ 0, 0 },
		{ 1, 0 },
		{ 1023, 0 },
		{ 1024, 0 },
		{ 1025, 1 },
		{ 2048, 1 },
		{ 2049, 2 },
		{ 4096, 2 },
		{ 4097, 3 },
		{ 1000000, 10 }, /* 1 ms: 2^19 < 1e6 <= 2^20 */
		{ 1ull << 40, 30 }, /* the last finite bucket's bound */
		{ (1ull << 40) + 1, 31 },
		{ 1ull << 41, 31 },
		{ 1ull << 63, 31 },
		{ UINT64_MAX, 31 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(shard_hist_bucket(cases[i].ns), cases[i].bucket,
			     "%" PRIu64 " ns: bucket %u, want %u", cases[i].ns,
			     shard_hist_bucket(cases[i].ns), cases[i].bucket);
}

Test(shard, hist_bucket_powers_of_two)
{
	unsigned int b;

	/* 2^(b + 10) is the inclusive upper bound of bucket b. */
	for (b = 1; b < SHARD_HIST_BUCKETS - 1; b++) {
		uint64_t bound = 1ull << (b + SHARD_HIST_MIN_SHIFT);

		cr_assert_eq(shard_hist_bucket(bound), b, "2^%u", b + SHARD_HIST_MIN_SHIFT);
		cr_assert_eq(shard_hist_bucket(bound + 1), b + 1, "2^%u + 1",
			     b + SHARD_HIST_MIN_SHIFT);
		cr_assert_eq(shard_hist_bucket(bound / 2 + 1), b, "2^%u + 1",
			     b + SHARD_HIST_MIN_SHIFT - 1);
	}
}

Test(shard, val_observe)
{
	struct shard_val v;
	unsigned int b, n = 0;

	memset(&v, 0, sizeof(v));
	shard_val__observe(&v, 1000);
	shard_val__observe(&v, 1024);
	shard_val__observe(&v, 3000);
	shard_val__observe(&v, UINT64_MAX / 4);
	cr_assert_eq(v.hist[0], 2);
	cr_assert_eq(v.hist[2], 1);
	cr_assert_eq(v.hist[SHARD_HIST_BUCKETS - 1], 1);
	for (b = 0; b < SHARD_HIST_BUCKETS; b++)
		n += v.hist[b];
	cr_assert_eq(n, 4, "observations in other buckets");
	cr_assert_eq(v.hist_sum, 1000 + 1024 + 3000 + UINT64_MAX / 4);
	cr_assert_eq(v.count, 0, "observe touched count");
	cr_assert_eq(v.sum, 0, "observe touched sum");
}

Test(shard, numa_node0)
{
	struct shard_table t;
	struct shard_key k = key_n(1);
	struct shard_val *v;

	cr_assert_eq(shard_table__init(&t, 256, 0), 0);
	cr_assert_not_null(t.entries);
	if (numa_available() >= 0)
		cr_assert_eq(t.node, 0, "node 0 allocation fell back to calloc");
	else
		cr_assert_eq(t.node, -1);
	cr_assert_eq(t.cap, 256);
	assert_all_slots_zero(&t);
	v = shard_table__get(&t, &k);
	cr_assert_not_null(v);
	v->count = 3;
	cr_assert_eq(shard_table__get(&t, &k)->count, 3);
	shard_table__clear(&t);
	cr_assert_eq(t.used, 0);
	shard_table__destroy(&t);
	cr_assert_null(t.entries);
}

Test(shard, numa_node_minus_one_uses_calloc)
{
	struct shard_table t;

	cr_assert_eq(shard_table__init(&t, 64, -1), 0);
	cr_assert_not_null(t.entries);
	cr_assert_eq(t.node, -1);
	cr_assert_eq(t.cap, 64);
	fill(&t, 48);
	shard_table__destroy(&t);
	cr_assert_null(t.entries);
}
