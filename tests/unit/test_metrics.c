/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for userspace/metrics.c: label building and escaping, families,
 * series, and the refcounted store.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const double test_metrics_bounds[] = { 0.001, 0.01, 0.1, 1 };

Test(metrics, labels_empty)
{
	struct metric_labels l;

	metric_labels__init(&l);
	cr_assert_str_eq(l.buf, "");
	cr_assert_eq(l.len, 0);
	cr_assert_eq(l.truncated, 0);
}

Test(metrics, labels_add_and_addf)
{
	struct metric_labels l;

	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "web-1");
	metric_labels__addf(&l, "vcpu", "%d", 3);
	cr_assert_str_eq(l.buf, "vm=\"web-1\",vcpu=\"3\"");
	cr_assert_eq(l.len, strlen(l.buf));
	cr_assert_eq(l.truncated, 0);
}

Test(metrics, labels_escaping)
{
	struct metric_labels l;

	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "a\\b\"c\nd");
	cr_assert_str_eq(l.buf, "vm=\"a\\\\b\\\"c\\nd\"");
	metric_labels__add(&l, "empty", "");
	metric_labels__add(&l, "null", NULL);
	cr_assert_str_eq(l.buf, "vm=\"a\\\\b\\\"c\\nd\",empty=\"\",null=\"\"");
}

Test(metrics, labels_truncation_keeps_whole_pairs)
{
	struct metric_labels l;
	char big[600];
	char before[sizeof(l.buf)];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "web-1");
	strcpy(before, l.buf);
	metric_labels__add(&l, "device", big);
	cr_assert_eq(l.truncated, 1);
	cr_assert_str_eq(l.buf, before);
	cr_assert_eq(l.len, strlen(before));

	/* once truncated, later pairs are ignored even if they would fit */
	metric_labels__add(&l, "op", "read");
	cr_assert_str_eq(l.buf, before);

	/* escaping that pushes a value over the edge truncates too */
	metric_labels__init(&l);
	memset(big, '"', 300);
	big[300] = '\0';
	metric_labels__add(&l, "v", big);
	cr_assert_eq(l.truncated, 1);
	cr_assert_str_eq(l.buf, "");

	metric_labels__init(&l);
	metric_labels__addf(&l, "v", "%s", big);
	cr_assert_eq(l.truncated, 1);
}

Test(metrics, labels_exact_fit)
{
	struct metric_labels l;
	char val[sizeof(l.buf)];
	/* a="<val>" is 4 + n bytes; fill the buffer up to the NUL */
	size_t n = sizeof(l.buf) - 1 - 4;

	memset(val, 'v', n);
	val[n] = '\0';
	metric_labels__init(&l);
	metric_labels__add(&l, "a", val);
	cr_assert_eq(l.truncated, 0);
	cr_assert_eq(l.len, sizeof(l.buf) - 1);

	val[n] = 'v';
	val[n + 1] = '\0';
	metric_labels__init(&l);
	metric_labels__add(&l, "a", val);
	cr_assert_eq(l.truncated, 1);
	cr_assert_eq(l.len, 0);
}

Test(metrics, family_find_or_add)
{
	struct metric_set *set = metric_set__new(1234);
	struct metric_family *f1, *f2;

	cr_assert_not_null(set);
	cr_assert_eq(set->timestamp_ms, 1234);
	cr_assert_eq(set->refcount, 1);

	f1 = metric_set__family(set, "novamon_a_total", "A.", METRIC_COUNTER, NULL, 0);
	cr_assert_not_null(f1);
	f2 = metric_set__family(set, "novamon_b", "B.", METRIC_GAUGE, NULL, 0);
	cr_assert_not_null(f2);
	cr_assert_eq(set->nfamilies, 2);

	f1 = metric_set__family(set, "novamon_a_total", "other help", METRIC_COUNTER, NULL, 0);
	cr_assert_eq(f1, &set->families[0]);
	cr_assert_str_eq(f1->help, "A.");
	cr_assert_eq(set->nfamilies, 2);

	cr_assert_eq(metric_set__find(set, "novamon_b"), &set->families[1]);
	cr_assert_null(metric_set__find(set, "novamon_c"));
	metric_set__free(set);
}

Test(metrics, family_type_clash)
{
	struct metric_set *set = metric_set__new(0);
	static const double other[] = { 1, 2 };

	cr_assert_not_null(metric_set__family(set, "novamon_x", "X.", METRIC_GAUGE, NULL, 0));
	errno = 0;
	cr_assert_null(metric_set__family(set, "novamon_x", "X.", METRIC_COUNTER, NULL, 0));
	cr_assert_eq(errno, EINVAL);

	cr_assert_not_null(metric_set__family(set, "novamon_h_seconds", "H.", METRIC_HISTOGRAM,
					      test_metrics_bounds, 4));
	errno = 0;
	cr_assert_null(
		metric_set__family(set, "novamon_h_seconds", "H.", METRIC_HISTOGRAM, other, 2));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(set->nfamilies, 2);
	metric_set__free(set);
}

Test(metrics, family_rejects_bad_input)
{
	struct metric_set *set = metric_set__new(0);
	static const double unsorted[] = { 1, 0.5 };
	static const double inf[] = { 1, INFINITY };

	errno = 0;
	cr_assert_null(metric_set__family(set, "0bad", "h", METRIC_GAUGE, NULL, 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(metric_set__family(set, "bad-name", "h", METRIC_GAUGE, NULL, 0));
	cr_assert_null(metric_set__family(set, "", "h", METRIC_GAUGE, NULL, 0));
	cr_assert_null(metric_set__family(set, "ok", "", METRIC_GAUGE, NULL, 0));
	cr_assert_null(metric_set__family(set, "ok", NULL, METRIC_GAUGE, NULL, 0));
	cr_assert_null(metric_set__family(set, "h", "h", METRIC_HISTOGRAM, unsorted, 2));
	cr_assert_null(metric_set__family(set, "h", "h", METRIC_HISTOGRAM, inf, 2));
	cr_assert_null(metric_set__family(set, "h", "h", METRIC_HISTOGRAM, NULL, 2));
	cr_assert_eq(set->nfamilies, 0);
	cr_assert_not_null(metric_set__family(set, "ns:sub_name", "h", METRIC_GAUGE, NULL, 0));
	metric_set__free(set);
}

Test(metrics, series_values_and_histograms)
{
	struct metric_set *set = metric_set__new(0);
	struct metric_family *fam;
	struct metric_labels l;
	uint64_t buckets[5] = { 1, 2, 3, 4, 5 };
	int i;

	fam = metric_set__family(set, "novamon_exits_total", "Exits.", METRIC_COUNTER, NULL, 0);
	for (i = 0; i < 100; i++) {
		metric_labels__init(&l);
		metric_labels__addf(&l, "vcpu", "%d", i);
		cr_assert_eq(metric_family__add_value(fam, &l, i * 2.0), 0);
	}
	cr_assert_eq(metric_family__add_value(fam, NULL, 7), 0);
	cr_assert_eq(fam->nseries, 101);
	cr_assert_str_eq(fam->series[42].labels, "vcpu=\"42\"");
	cr_assert_eq(fam->series[42].value, 84.0);
	cr_assert_str_eq(fam->series[100].labels, "");
	cr_assert_eq(metric_family__add_histogram(fam, NULL, buckets, 1), -EINVAL);

	fam = metric_set__family(set, "novamon_lat_seconds", "Latency.", METRIC_HISTOGRAM,
				 test_metrics_bounds, 4);
	metric_labels__init(&l);
	metric_labels__add(&l, "vm", "a");
	cr_assert_eq(metric_family__add_histogram(fam, &l, buckets, 2.5), 0);
	buckets[0] = 100; /* the set holds a copy */
	cr_assert_eq(fam->series[0].buckets[0], 1);
	cr_assert_eq(fam->series[0].buckets[4], 5);
	cr_assert_eq(fam->series[0].count, 15);
	cr_assert_eq(fam->series[0].sum, 2.5);
	cr_assert_eq(metric_family__add_value(fam, &l, 1), -EINVAL);

	l.truncated = 1;
	cr_assert_eq(metric_family__add_histogram(fam, &l, buckets, 0), -E2BIG);
	fam = &set->families[0];
	cr_assert_eq(metric_family__add_value(fam, &l, 1), -E2BIG);
	cr_assert_eq(fam->nseries, 101);
	metric_set__free(set);
}

Test(metrics, many_families_grow)
{
	struct metric_set *set = metric_set__new(0);
	char name[32];
	int i;

	for (i = 0; i < 200; i++) {
		struct metric_family *fam;

		snprintf(name, sizeof(name), "novamon_f%d", i);
		fam = metric_set__family(set, name, "F.", METRIC_GAUGE, NULL, 0);
		cr_assert_not_null(fam);
		cr_assert_eq(metric_family__add_value(fam, NULL, i), 0);
	}
	cr_assert_eq(set->nfamilies, 200);
	cr_assert_eq(metric_set__find(set, "novamon_f150")->series[0].value, 150.0);
	cr_assert_null(metric_set__free(set));
	cr_assert_null(metric_set__free(NULL));
}

Test(metrics, store_publish_get_put)
{
	struct metric_store *store = metric_store__new();
	struct metric_set *s1, *s2, *got, *got2;
	char *health = (char *)1;

	cr_assert_not_null(store);
	cr_assert_null(metric_store__get(store, &health));
	cr_assert_null(health);
	metric_store__put(store, NULL);

	s1 = metric_set__new(1);
	metric_store__publish(store, s1, strdup("{\"status\":\"ok\",\"n\":1}"));
	got = metric_store__get(store, &health);
	cr_assert_eq(got, s1);
	cr_assert_eq(s1->refcount, 2);
	cr_assert_str_eq(health, "{\"status\":\"ok\",\"n\":1}");
	free(health);

	/* replacing keeps s1 alive for its reader */
	s2 = metric_set__new(2);
	metric_store__publish(store, s2, NULL);
	cr_assert_eq(s1->refcount, 1);
	cr_assert_eq(got->timestamp_ms, 1);
	got2 = metric_store__get(store, &health);
	cr_assert_eq(got2, s2);
	cr_assert_null(health);
	got2 = metric_store__get(store, NULL);
	cr_assert_eq(s2->refcount, 3);
	metric_store__put(store, got2);
	metric_store__put(store, got2);
	metric_store__put(store, got); /* frees s1: ASan would flag a leak otherwise */

	metric_store__free(store);
	metric_store__free(NULL);
}

struct test_metrics_reader {
	struct metric_store *store;
	int iterations;
};

static void *test_metrics_reader_thread(void *arg)
{
	struct test_metrics_reader *r = arg;
	int i;

	for (i = 0; i < r->iterations; i++) {
		char *health = NULL;
		struct metric_set *set = metric_store__get(r->store, &health);

		if (set && metric_set__find(set, "novamon_t")->series[0].value != set->timestamp_ms)
			abort();
		free(health);
		metric_store__put(r->store, set);
	}
	return NULL;
}

Test(metrics, store_concurrent_readers)
{
	struct test_metrics_reader r = { .store = metric_store__new(), .iterations = 20000 };
	pthread_t th[3];
	int i;

	for (i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, test_metrics_reader_thread, &r), 0);
	for (i = 0; i < 2000; i++) {
		struct metric_set *set = metric_set__new(i);
		struct metric_family *fam;

		fam = metric_set__family(set, "novamon_t", "T.", METRIC_GAUGE, NULL, 0);
		metric_family__add_value(fam, NULL, i);
		metric_store__publish(r.store, set, strdup("{}"));
	}
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	metric_store__free(r.store);
}
