/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "rx.h"

Test(rx, accepts_ordinary_patterns)
{
	static const char *const ok[] = {
		"",	  "a",	    "a+",     "a*b?", "(ab)+c", "a{2}",	 "a{2,}",
		"a{2,5}", "[+*?]+", "\\+\\+", "a+?",  "x|y{3}", "[]a]+", "[^]+]*",
	};
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert_eq(rx_check(ok[i], err, sizeof(err)), 0, "%s: %s", ok[i], err);
}

Test(rx, refuses_what_re2_refuses)
{
	static const char *const bad[] = {
		"a++",
		"a**",
		"a+*",
		"a{2}{3}",
		"a*{2}",
		"a+??",
		"eqtot++++++++++",
		"a{1001}",
		"(a{100}){100}(b{100})",
	};
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(rx_check(bad[i], err, sizeof(err)), -EINVAL, "%s", bad[i]);
		cr_assert(err[0], "%s: no message", bad[i]);
	}
	cr_assert_not_null(strstr((rx_check("a++", err, sizeof(err)), err), "nested repetition"));
}

Test(rx, compile_reports_regcomp_errors)
{
	regex_t re;
	char err[128];

	cr_assert_eq(rx_compile(&re, "^(a|b)$", REG_EXTENDED | REG_NOSUB, err, sizeof(err)), 0);
	cr_assert_eq(regexec(&re, "b", 0, NULL, 0), 0);
	regfree(&re);
	cr_assert_eq(rx_compile(&re, "(a", REG_EXTENDED, err, sizeof(err)), -EINVAL);
	cr_assert(err[0]);
}

Test(rx, refuses_overlong_patterns)
{
	char big[RX_MAX_PATTERN + 2], err[128];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(rx_check(big, err, sizeof(err)), -EINVAL);
}
