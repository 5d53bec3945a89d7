/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dtoa: the shortest decimal digits that read back as the same double, the
 * digit generation behind Go's strconv.FormatFloat(v, 'f'/'e', -1, 64) and
 * so behind Prometheus's JSON values.
 *
 * A thin C face on Google's double-conversion (Grisu3 with a bignum
 * fallback, as used by V8 and Chromium): ~50 ns per value, where the
 * snprintf("%.*e") + strtod() search it replaced cost ~750 ns, which was
 * most of the time of a query answer of millions of points.
 */
#ifndef NOVAMON_PROMQL_DTOA_H
#define NOVAMON_PROMQL_DTOA_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Digits of |v| (finite, non-zero) into digits (at least 18 bytes, NUL
 * terminated, no trailing zeros) such that |v| = 0.DIGITS x 10^*point.
 * Returns the number of digits.
 */
int dtoa_shortest(double v, char *digits, int *point);

#ifdef __cplusplus
}
#endif

#endif /* NOVAMON_PROMQL_DTOA_H */
