/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/index.h"

static struct index *ix_fixture;

static void index_test_setup(void)
{
	/* id 0: up{job=a,instance=x}, 1: up{job=b}, 2: cpu{job=a,mode=idle},
	 * 3: cpu{job=a,mode=user}, 4: cpu{job=ab} */
	static const struct tsdb_label s0[] = { { "__name__", "up" },
						{ "instance", "x" },
						{ "job", "a" } };
	static const struct tsdb_label s1[] = { { "__name__", "up" }, { "job", "b" } };
	static const struct tsdb_label s2[] = { { "__name__", "cpu" },
						{ "job", "a" },
						{ "mode", "idle" } };
	static const struct tsdb_label s3[] = { { "__name__", "cpu" },
						{ "job", "a" },
						{ "mode", "user" } };
	static const struct tsdb_label s4[] = { { "__name__", "cpu" }, { "job", "ab" } };
	const struct tsdb_label *sets[] = { s0, s1, s2, s3, s4 };
	size_t ns[] = { 3, 2, 3, 3, 2 };
	uint32_t i;

	ix_fixture = index__new();
	cr_assert_not_null(ix_fixture);
	/* Out of order ids on purpose. */
	for (i = 5; i-- > 0;)
		cr_assert_eq(index__add(ix_fixture, i, sets[i], ns[i],
					index_hash_labels(sets[i], ns[i])),
			     0);
}

static void index_test_teardown(void)
{
	index__free(ix_fixture);
}

TestSuite(tsdb_index, .init = index_test_setup, .fini = index_test_teardown);

/* Select and compare to the expected ids given as a bit mask. */
static void index_test_expect(const struct tsdb_matcher *m, size_t nm, unsigned int mask)
{
	uint32_t *ids = NULL;
	size_t n = 0, i;
	unsigned int got = 0;

	cr_assert_eq(index__select(ix_fixture, m, nm, &ids, &n), 0);
	for (i = 0; i < n; i++) {
		if (i)
			cr_assert_lt(ids[i - 1], ids[i]);
		got |= 1u << ids[i];
	}
	free(ids);
	cr_assert_eq(got, mask, "got %#x want %#x", got, mask);
}

Test(tsdb_index, find_and_exact_compare)
{
	const struct tsdb_label q[] = { { "__name__", "up" }, { "job", "b" } };
	const struct tsdb_label miss[] = { { "__name__", "up" }, { "job", "c" } };
	size_t n;

	cr_assert_eq(index__find(ix_fixture, q, 2, index_hash_labels(q, 2)), 1);
	cr_assert_eq(index__find(ix_fixture, miss, 2, index_hash_labels(miss, 2)), -ENOENT);
	/* Same hash, other labels: never a false hit. */
	cr_assert_eq(index__find(ix_fixture, miss, 2, index_hash_labels(q, 2)), -ENOENT);
	cr_assert_eq(index__add(ix_fixture, 9, q, 2, index_hash_labels(q, 2)), -EEXIST);
	cr_assert_not_null(index__labels(ix_fixture, 2, &n));
	cr_assert_eq(n, 3);
	cr_assert_eq(index__count(ix_fixture), 5);
}

Test(tsdb_index, equality_and_negation)
{
	struct tsdb_matcher m[2] = { { TSDB_MATCH_EQ, "__name__", "cpu" },
				     { TSDB_MATCH_NEQ, "mode", "idle" } };

	index_test_expect(m, 1, 0x1c);
	index_test_expect(m, 2, 0x18); /* missing mode matches "" != "idle" */
	m[1] = (struct tsdb_matcher){ TSDB_MATCH_EQ, "job", "a" };
	index_test_expect(m, 2, 0x0c);
}

Test(tsdb_index, regex_is_anchored)
{
	struct tsdb_matcher m[2] = { { TSDB_MATCH_RE, "job", "a" } };

	index_test_expect(m, 1, 0x0d); /* not "ab" */
	m[0].value = "a.*";
	index_test_expect(m, 1, 0x1d);
	m[0].value = "a|b";
	index_test_expect(m, 1, 0x0f); /* alternation inside the anchors */
	m[0] = (struct tsdb_matcher){ TSDB_MATCH_EQ, "__name__", "cpu" };
	m[1] = (struct tsdb_matcher){ TSDB_MATCH_NRE, "mode", "i.*" };
	index_test_expect(m, 2, 0x18);
}

Test(tsdb_index, empty_value_semantics)
{
	struct tsdb_matcher m[2] = { { TSDB_MATCH_EQ, "__name__", "cpu" },
				     { TSDB_MATCH_EQ, "mode", "" } };
	uint32_t *ids = NULL;
	size_t n;

	index_test_expect(m, 2, 0x10); /* lacks mode */
	m[1] = (struct tsdb_matcher){ TSDB_MATCH_NEQ, "mode", "" };
	index_test_expect(m, 2, 0x0c); /* has mode */
	m[1] = (struct tsdb_matcher){ TSDB_MATCH_RE, "mode", "idle|" };
	index_test_expect(m, 2, 0x14);
	m[1] = (struct tsdb_matcher){ TSDB_MATCH_RE, "instance", ".+" };
	index_test_expect(&m[1], 1, 0x01);
	/* Only matchers that accept "": refused. */
	m[0] = (struct tsdb_matcher){ TSDB_MATCH_RE, "job", ".*" };
	m[1] = (struct tsdb_matcher){ TSDB_MATCH_NEQ, "job", "x" };
	cr_assert_eq(index__select(ix_fixture, m, 2, &ids, &n), -EINVAL);
	m[0] = (struct tsdb_matcher){ TSDB_MATCH_EQ, "nosuch", "" };
	cr_assert_eq(index__select(ix_fixture, m, 1, &ids, &n), -EINVAL);
	m[0] = (struct tsdb_matcher){ TSDB_MATCH_RE, "job", "(" };
	cr_assert_eq(index__select(ix_fixture, m, 1, &ids, &n), -EINVAL);
	cr_assert_eq(index__select(ix_fixture, NULL, 0, &ids, &n), 0);
	cr_assert_eq(n, 5);
	free(ids);
}

Test(tsdb_index, remove_updates_postings)
{
	struct tsdb_matcher m = { TSDB_MATCH_EQ, "job", "a" };
	const struct tsdb_label s2[] = { { "__name__", "cpu" },
					 { "job", "a" },
					 { "mode", "idle" } };
	struct tsdb_matcher mm = { TSDB_MATCH_RE, "mode", ".+" };

	index__remove(ix_fixture, 2);
	index__remove(ix_fixture, 2);
	index_test_expect(&m, 1, 0x09);
	index__remove(ix_fixture, 3);
	index_test_expect(&mm, 1, 0);
	cr_assert_eq(index__find(ix_fixture, s2, 3, index_hash_labels(s2, 3)), -ENOENT);
	cr_assert_eq(index__add(ix_fixture, 7, s2, 3, index_hash_labels(s2, 3)), 0);
	index_test_expect(&mm, 1, 1u << 7);
	cr_assert_eq(index__id_end(ix_fixture), 8);
}

Test(tsdb_index, many_series)
{
	struct index *ix = index__new();
	struct tsdb_label l[3] = { { "__name__", "m" }, { "i", NULL }, { "k", NULL } };
	char a[16], b[16];
	struct tsdb_matcher m[2] = { { TSDB_MATCH_EQ, "k", "3" }, { TSDB_MATCH_RE, "i", "1.*" } };
	uint32_t *ids, i;
	size_t n;

	for (i = 0; i < 20000; i++) {
		snprintf(a, sizeof(a), "%u", i);
		snprintf(b, sizeof(b), "%u", i % 10);
		l[1].value = a;
		l[2].value = b;
		cr_assert_eq(index__add(ix, i, l, 3, index_hash_labels(l, 3)), 0);
	}
	for (i = 0; i < 20000; i += 2)
		index__remove(ix, i);
	cr_assert_eq(index__count(ix), 10000);
	cr_assert_eq(index__select(ix, m, 2, &ids, &n), 0);
	/* odd i ending in 3 and starting with 1: 13, 103..193, 1003..1993, 10003..19993 */
	cr_assert_eq(n, 1 + 10 + 100 + 1000);
	free(ids);
	index__free(ix);
}
