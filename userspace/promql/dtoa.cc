/* SPDX-License-Identifier: Apache-2.0 */
/* dtoa: see dtoa.h. The only C++ in novamon: double-conversion has no C API. */
#include <double-conversion/double-to-string.h>

#include "dtoa.h"

int dtoa_shortest(double v, char *digits, int *point)
{
	bool sign;
	int length = 0;

	double_conversion::DoubleToStringConverter::DoubleToAscii(
		v, double_conversion::DoubleToStringConverter::SHORTEST, 0, digits, 18, &sign,
		&length, point);
	return length;
}
