/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rx.h"

/* Parse "{m}", "{m,}" or "{m,n}" at p; returns its length and the largest count, or 0. */
static size_t parse_braces(const char *p, long *max)
{
	const char *q = p + 1;
	char *end;
	long m, n;

	if (!isdigit((unsigned char)*q))
		return 0;
	m = strtol(q, &end, 10);
	n = m;
	if (*end == ',') {
		q = end + 1;
		if (*q == '}')
			n = m;
		else if (isdigit((unsigned char)*q))
			n = strtol(q, &end, 10);
		else
			return 0;
		if (*q == '}')
			end = (char *)q;
	}
	if (*end != '}')
		return 0;
	*max = m > n ? m : n;
	return (size_t)(end - p) + 1;
}

int rx_check(const char *p, char *err, size_t errlen)
{
	const char *start = p;
	bool after_quant = false, after_lazy = false;
	double product = 1;
	size_t len;
	long max;

	if (strlen(p) > RX_MAX_PATTERN) {
		snprintf(err, errlen, "regular expression longer than %d bytes", RX_MAX_PATTERN);
		return -EINVAL;
	}
	while (*p) {
		if (*p == '\\') {
			p += p[1] ? 2 : 1;
			after_quant = after_lazy = false;
			continue;
		}
		if (*p == '[') {
			/* A bracket expression: ']' first is literal; skip to its end. */
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']')
				p++;
			if (*p)
				p++;
			after_quant = after_lazy = false;
			continue;
		}
		len = 0;
		max = 0;
		if (*p == '*' || *p == '+' || *p == '?')
			len = 1;
		else if (*p == '{')
			len = parse_braces(p, &max);
		if (!len) {
			after_quant = after_lazy = false;
			p++;
			continue;
		}
		if (after_quant) {
			/* RE2 allows one lazy '?' after a quantifier, nothing more. */
			if (*p != '?' || after_lazy) {
				snprintf(err, errlen, "invalid nested repetition operator: `%.*s`",
					 (int)(p - start >= 1 ? 1 : 0) + (int)len,
					 p - start >= 1 ? p - 1 : p);
				return -EINVAL;
			}
			after_lazy = true;
			p += len;
			continue;
		}
		if (max > RX_MAX_REPEAT) {
			snprintf(err, errlen, "invalid repeat count: `%.*s`", (int)len, p);
			return -EINVAL;
		}
		if (max > 1)
			product *= (double)max;
		if (product > RX_MAX_REPEAT * 10.0) {
			snprintf(err, errlen,
				 "expression too large: counted repetitions multiply past %d",
				 RX_MAX_REPEAT * 10);
			return -EINVAL;
		}
		after_quant = true;
		after_lazy = false;
		p += len;
	}
	return 0;
}

int rx_compile(regex_t *re, const char *pattern, int cflags, char *err, size_t errlen)
{
	int rc = rx_check(pattern, err, errlen);

	if (rc)
		return rc;
	rc = regcomp(re, pattern, cflags);
	if (rc) {
		regerror(rc, re, err, errlen);
		regfree(re);
		return -EINVAL;
	}
	return 0;
}
