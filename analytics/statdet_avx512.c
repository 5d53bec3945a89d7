/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statdet_avx512: the AVX-512 kernel of statdet (16 series per instruction,
 * AVX-512F only). Build with -mavx512f -ffp-contract=off (AVX-512F implies
 * FMA, so the contraction flag matters here: with it on, GCC fuses the
 * mul/add pairs and the results drift from the scalar reference by an ulp).
 * Only called when simd_isa_max() == SIMD_AVX512.
 */
#include <immintrin.h>

#include "statdet_impl.h"

void statdet_kernel_avx512(const struct statdet *d, size_t off, size_t cnt, const float *x,
			   float *score)
{
	const struct statdet_core_cfg cfg = statdet_cfg(d);
	__m512 sp;
	size_t i;

	for (i = 0; i < cnt; i += 16) {
		__m512 xv = _mm512_loadu_ps(x + i);
		__m512 lvl = _mm512_load_ps(d->core.med + off + i);

		_mm512_storeu_ps(score + i, statdet_core_avx512(&d->core, off + i, xv, lvl, &cfg,
								statdet_valid_avx512(xv), &sp));
	}
}
