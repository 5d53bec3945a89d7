/* SPDX-License-Identifier: Apache-2.0 */
/*
 * span_attrs: the unit tests' look-ups of a span's (or log record's)
 * attributes by key, asserting the type where a value is wanted.
 */
#ifndef NOVAMON_TEST_SPAN_ATTRS_H
#define NOVAMON_TEST_SPAN_ATTRS_H

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "spans/span.h"

static inline const struct span_attr *attr(const struct span_attr *attrs, unsigned int n,
					   const char *key)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!strcmp(attrs[i].key, key))
			return &attrs[i];
	return NULL;
}

/* s's attribute key, which must exist and be of type. */
static inline const struct span_attr *attr_of(const struct span *s, const char *key, int type)
{
	const struct span_attr *a = attr(s->attrs, s->nattrs, key);

	cr_assert_not_null(a, "%s: no attribute %s", s->name, key);
	cr_assert_eq(a->type, type, "%s: %s", s->name, key);
	return a;
}

static inline int64_t attr_i(const struct span *s, const char *key)
{
	return attr_of(s, key, SPAN_ATTR_INT)->i;
}

static inline const char *attr_s(const struct span *s, const char *key)
{
	return attr_of(s, key, SPAN_ATTR_STR)->s;
}

static inline double attr_d(const struct span *s, const char *key)
{
	return attr_of(s, key, SPAN_ATTR_DOUBLE)->d;
}

#endif
