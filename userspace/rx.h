/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rx: compile user-supplied regular expressions safely. Label matchers and
 * label_replace come from HTTP requests; glibc's regcomp() can take
 * gigabytes on patterns RE2 (Prometheus' engine) refuses outright, such as
 * nested repetition ("a++++") or huge counted repetition. rx_compile()
 * refuses those first, with RE2's wording, then calls regcomp().
 */
#ifndef NOVAMON_RX_H
#define NOVAMON_RX_H

#include <regex.h>
#include <stddef.h>

#define RX_MAX_PATTERN 4096 /* bytes */
#define RX_MAX_REPEAT 1000  /* as RE2 */

/*
 * Check pattern (POSIX ERE) for constructs we refuse. Returns 0 or -EINVAL
 * with a message in err ("invalid nested repetition operator: `++`").
 */
int rx_check(const char *pattern, char *err, size_t errlen);

/*
 * rx_check() then regcomp(re, pattern, cflags). Returns 0, or -EINVAL with
 * the reason in err (from rx_check or regerror); re is then not compiled.
 */
int rx_compile(regex_t *re, const char *pattern, int cflags, char *err, size_t errlen);

#endif /* NOVAMON_RX_H */
