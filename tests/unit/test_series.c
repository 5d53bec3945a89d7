/* SPDX-License-Identifier: Apache-2.0 */
/*
 * series: the tick's cumulative series table. One series per (family,
 * labels), family lists in creation order, growth of the hash past its
 * initial 1024 buckets, expiry of idle series with the family lists kept
 * consistent (head, middle, tail, runs, a whole family), and out-of-range
 * family indexes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "series.h"

#define NFAMILIES 3

static struct series_table *tbl;

static void series_setup(void)
{
	tbl = series_table__new(NFAMILIES);
	cr_assert_not_null(tbl);
}

static void series_teardown(void)
{
	series_table__free(tbl);
}

TestSuite(series, .init = series_setup, .fini = series_teardown);

/*
 * Walk family's list and check it holds exactly want[0..n) in that order,
 * with every back link pointing at the link that points to the series.
 */
static void assert_family(const struct series_table *t, unsigned int family,
			  const char *const *want, size_t n)
{
	const struct series *s;
	size_t i = 0;

	for (s = series_table__first(t, family); s; s = s->next, i++) {
		cr_assert_lt(i, n, "family %u: more than %zu series (extra \"%s\")", family, n,
			     s->labels);
		cr_assert_str_eq(s->labels, want[i], "family %u [%zu]", family, i);
		cr_assert_eq(s->family, family);
		cr_assert_not_null(s->pprev);
		cr_assert_eq(*s->pprev, s, "family %u [%zu] \"%s\": bad back link", family, i,
			     s->labels);
	}
	cr_assert_eq(i, n, "family %u: %zu series, want %zu", family, i, n);
}

Test(series, new_table_is_empty)
{
	unsigned int f;

	cr_assert_eq(series_table__count(tbl), 0);
	for (f = 0; f < NFAMILIES; f++)
		cr_assert_null(series_table__first(tbl, f));
	cr_assert_eq(series_table__expire(tbl, 1000000, 0), 0);
}

Test(series, get_creates_once)
{
	struct series *s, *again, *other_family, *other_labels;
	char labels[32];

	s = series_table__get(tbl, 1, "vm=\"a\"", 100);
	cr_assert_not_null(s);
	cr_assert_str_eq(s->labels, "vm=\"a\"");
	cr_assert_eq(s->family, 1);
	cr_assert_eq(s->last_ms, 100);
	cr_assert_eq(s->value, 0);
	cr_assert_eq(s->hist_sum, 0);
	cr_assert_eq(s->hist[0], 0);
	cr_assert_eq(s->hist[SHARD_HIST_BUCKETS - 1], 0);
	cr_assert_eq(series_table__count(tbl), 1);
	s->value = 42;

	/* Found by content: a different buffer with the same labels. */
	strcpy(labels, "vm=\"a\"");
	again = series_table__get(tbl, 1, labels, 900);
	cr_assert_eq(again, s);
	cr_assert_eq(again->value, 42);
	cr_assert_eq(again->last_ms, 100, "lookup of an existing series moved last_ms");
	cr_assert_eq(series_table__count(tbl), 1);

	/* Same labels in another family, and another label set: new series. */
	other_family = series_table__get(tbl, 2, "vm=\"a\"", 100);
	other_labels = series_table__get(tbl, 1, "vm=\"b\"", 100);
	cr_assert_not_null(other_family);
	cr_assert_not_null(other_labels);
	cr_assert_neq(other_family, s);
	cr_assert_neq(other_labels, s);
	cr_assert_neq(other_family, other_labels);
	cr_assert_eq(other_family->value, 0);
	cr_assert_eq(series_table__count(tbl), 3);
}

Test(series, empty_labels)
{
	struct series *s = series_table__get(tbl, 0, "", 1);

	cr_assert_not_null(s);
	cr_assert_str_eq(s->labels, "");
	cr_assert_eq(series_table__get(tbl, 0, "", 2), s);
	cr_assert_neq(series_table__get(tbl, 1, "", 2), s);
	cr_assert_eq(series_table__count(tbl), 2);
}

Test(series, family_lists_in_creation_order)
{
	static const char *const f0[] = { "x", "y", "z", "a" };
	static const char *const f2[] = { "p", "q" };

	/* Interleaved creation, with repeated lookups that must not reorder. */
	cr_assert_not_null(series_table__get(tbl, 0, "x", 1));
	cr_assert_not_null(series_table__get(tbl, 2, "p", 1));
	cr_assert_not_null(series_table__get(tbl, 0, "y", 1));
	cr_assert_not_null(series_table__get(tbl, 0, "x", 2));
	cr_assert_not_null(series_table__get(tbl, 0, "z", 1));
	cr_assert_not_null(series_table__get(tbl, 2, "q", 1));
	cr_assert_not_null(series_table__get(tbl, 2, "p", 2));
	cr_assert_not_null(series_table__get(tbl, 0, "a", 1));

	assert_family(tbl, 0, f0, 4);
	assert_family(tbl, 1, NULL, 0);
	assert_family(tbl, 2, f2, 2);
	cr_assert_eq(series_table__count(tbl), 6);
}

Test(series, grow_past_1024)
{
	enum { N = 5000 };
	static struct series *made[N];
	struct series *s;
	char labels[32];
	size_t i, n[2] = { 0, 0 };

	for (i = 0; i < N; i++) {
		snprintf(labels, sizeof(labels), "id=\"%zu\"", i);
		made[i] = series_table__get(tbl, i % 2, labels, i);
		cr_assert_not_null(made[i], "series %zu", i);
		made[i]->value = (double)i;
		cr_assert_eq(series_table__count(tbl), i + 1);
	}
	/* Every one is found again, unchanged, after the rehashes. */
	for (i = 0; i < N; i++) {
		snprintf(labels, sizeof(labels), "id=\"%zu\"", i);
		s = series_table__get(tbl, i % 2, labels, 0);
		cr_assert_eq(s, made[i], "series %zu not found after growth", i);
		cr_assert_eq(s->value, (double)i);
		cr_assert_eq(s->last_ms, i);
	}
	cr_assert_eq(series_table__count(tbl), N);

	/* The family lists still hold each one once, in creation order. */
	for (i = 0; i < 2; i++)
		for (s = series_table__first(tbl, i); s; s = s->next) {
			cr_assert_eq(s, made[2 * n[i] + i], "family %zu [%zu]", i, n[i]);
			n[i]++;
		}
	cr_assert_eq(n[0], N / 2);
	cr_assert_eq(n[1], N / 2);

	/* And growth does not break expiry: drop the even-numbered half. */
	for (i = 0; i < N; i++)
		made[i]->last_ms = i % 2 ? 10000 : 0;
	cr_assert_eq(series_table__expire(tbl, 10000, 5000), N / 2);
	cr_assert_eq(series_table__count(tbl), N / 2);
	cr_assert_null(series_table__first(tbl, 0));
	cr_assert_eq(series_table__first(tbl, 1), made[1]);
}

/* Create family 0 = s0..s9 at time 0 and return them. */
static void make_ten(struct series **s)
{
	char labels[8];
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(labels, sizeof(labels), "s%d", i);
		s[i] = series_table__get(tbl, 0, labels, 0);
		cr_assert_not_null(s[i]);
	}
}

Test(series, expire_drops_only_idle)
{
	static const char *const left[] = { "s1", "s2", "s5", "s6", "s7", "s8" };
	static const char *const after[] = { "s1", "s2", "s5", "s6", "s7", "s8", "n0", "n1" };
	static const char *const other[] = { "keep" };
	struct series *s[10], *keep;
	int i;

	make_ten(s);
	keep = series_table__get(tbl, 1, "keep", 0);
	keep->last_ms = 1000;
	for (i = 0; i < 10; i++)
		s[i]->last_ms = 1000;
	/* Idle: the head, a run in the middle, the tail. */
	s[0]->last_ms = 0;
	s[3]->last_ms = 0;
	s[4]->last_ms = 0;
	s[9]->last_ms = 0;
	s[8]->last_ms = 500; /* idle exactly max_idle_ms: kept */

	cr_assert_eq(series_table__expire(tbl, 1500, 1000), 4);
	cr_assert_eq(series_table__count(tbl), 7);
	assert_family(tbl, 0, left, 6);
	assert_family(tbl, 1, other, 1);

	/* New series go after the survivors (the tail link was fixed). */
	cr_assert_not_null(series_table__get(tbl, 0, "n0", 1500));
	cr_assert_not_null(series_table__get(tbl, 0, "n1", 1500));
	assert_family(tbl, 0, after, 8);
	cr_assert_eq(series_table__count(tbl), 9);

	/* An expired series comes back as a new one at zero, at the tail. */
	s[1]->value = 7;
	cr_assert_eq(series_table__get(tbl, 0, "s1", 1600)->value, 7);
	cr_assert_eq(series_table__get(tbl, 0, "s9", 1600)->value, 0);
	cr_assert_eq(series_table__count(tbl), 10);
	cr_assert_str_eq(s[2]->next->labels, "s5");
	cr_assert_null(series_table__get(tbl, 0, "s9", 1600)->next);

	/* Nothing idle (s8 exactly at the limit): nothing dropped. */
	cr_assert_eq(series_table__expire(tbl, 1600, 1100), 0);
	cr_assert_eq(series_table__count(tbl), 10);
}

Test(series, expire_tail_then_append)
{
	static const char *const want[] = { "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "new" };
	struct series *s[10];
	int i;

	make_ten(s);
	for (i = 0; i < 9; i++)
		s[i]->last_ms = 100;
	cr_assert_eq(series_table__expire(tbl, 100, 50), 1);
	cr_assert_null(s[8]->next);
	cr_assert_not_null(series_table__get(tbl, 0, "new", 100));
	cr_assert_eq(s[8]->next, series_table__get(tbl, 0, "new", 100));
	/* s8, now in the middle, is expired next. */
	s[8]->last_ms = 0;
	cr_assert_eq(series_table__expire(tbl, 100, 50), 1);
	assert_family(tbl, 0, want, 9);
	cr_assert_eq(series_table__count(tbl), 9);

	/* Expire the tail itself again, then append: lands after s7. */
	series_table__get(tbl, 0, "new", 100)->last_ms = 0;
	cr_assert_eq(series_table__expire(tbl, 100, 50), 1);
	cr_assert_null(s[7]->next);
	cr_assert_not_null(series_table__get(tbl, 0, "new2", 100));
	cr_assert_str_eq(s[7]->next->labels, "new2");
	cr_assert_eq(series_table__count(tbl), 9);
}

Test(series, expire_whole_family_then_add)
{
	static const char *const again[] = { "s4", "s2" };
	static const char *const other[] = { "o" };
	struct series *s[10];

	make_ten(s);
	cr_assert_not_null(series_table__get(tbl, 2, "o", 500));
	cr_assert_eq(series_table__expire(tbl, 500, 100), 10);
	cr_assert_eq(series_table__count(tbl), 1);
	cr_assert_null(series_table__first(tbl, 0));
	assert_family(tbl, 2, other, 1);

	/* The emptied family's head and tail are usable again. */
	cr_assert_not_null(series_table__get(tbl, 0, "s4", 500));
	cr_assert_not_null(series_table__get(tbl, 0, "s2", 500));
	assert_family(tbl, 0, again, 2);
	cr_assert_eq(series_table__count(tbl), 3);

	/* max_idle 0 drops anything not touched at now_ms exactly. */
	cr_assert_eq(series_table__expire(tbl, 500, 0), 0);
	cr_assert_eq(series_table__expire(tbl, 501, 0), 3);
	cr_assert_eq(series_table__count(tbl), 0);
	cr_assert_null(series_table__first(tbl, 0));
	cr_assert_null(series_table__first(tbl, 2));
}

Test(series, family_out_of_range)
{
	cr_assert_not_null(series_table__get(tbl, NFAMILIES - 1, "ok", 0));
	errno = 0;
	cr_assert_null(series_table__get(tbl, NFAMILIES, "x", 0));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(series_table__get(tbl, UINT32_MAX, "x", 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(series_table__first(tbl, NFAMILIES));
	cr_assert_null(series_table__first(tbl, UINT32_MAX));
	cr_assert_eq(series_table__count(tbl), 1);
}

Test(series, zero_families)
{
	struct series_table *t = series_table__new(0);

	/* calloc(0) may legitimately return NULL: then ENOMEM, else a usable table. */
	if (!t) {
		cr_assert_eq(errno, ENOMEM);
		return;
	}
	errno = 0;
	cr_assert_null(series_table__get(t, 0, "x", 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(series_table__first(t, 0));
	series_table__free(t);
}

Test(series, free_null)
{
	series_table__free(NULL);
}
