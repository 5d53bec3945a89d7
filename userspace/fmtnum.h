/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fmtnum: decimal digits of an unsigned integer, two at a time from a table.
 * Query answers print two integers per point (a timestamp and often an
 * integral value), millions of times for a wide range query: a division per
 * digit pair instead of per digit is a third of that work.
 */
#ifndef NOVAMON_FMTNUM_H
#define NOVAMON_FMTNUM_H

#include <stdint.h>
#include <string.h>

/* Number of decimal digits of u (1 for 0). */
static inline unsigned int fmtnum_u64_len(uint64_t u)
{
	unsigned int n = 1;

	while (u >= 10000) {
		u /= 10000;
		n += 4;
	}
	return n + (u >= 10) + (u >= 100) + (u >= 1000);
}

/*
 * Write u's decimal digits at dst (no NUL); returns how many (at most 20).
 * Forward, so that callers write in place without a copy.
 */
static inline unsigned int fmtnum_u64(char *dst, uint64_t u)
{
	static const char pairs[201] = "00010203040506070809"
				       "10111213141516171819"
				       "20212223242526272829"
				       "30313233343536373839"
				       "40414243444546474849"
				       "50515253545556575859"
				       "60616263646566676869"
				       "70717273747576777879"
				       "80818283848586878889"
				       "90919293949596979899";
	unsigned int n = fmtnum_u64_len(u);
	char *p = dst + n;

	while (u >= 100) {
		unsigned int r = (unsigned int)(u % 100);

		u /= 100;
		p -= 2;
		memcpy(p, &pairs[2 * r], 2);
	}
	if (u >= 10)
		memcpy(p - 2, &pairs[2 * u], 2);
	else
		p[-1] = (char)('0' + u);
	return n;
}

#endif /* NOVAMON_FMTNUM_H */
