/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statdet_avx2: the AVX2 kernel of statdet (8 series per instruction).
 * Build with -mavx2 -ffp-contract=off and nothing wider; only called when
 * simd_isa_max() >= SIMD_AVX2. No FMA on purpose: see statdet_impl.h.
 */
#include <immintrin.h>

#include "statdet_impl.h"

void statdet_kernel_avx2(const struct statdet *d, size_t off, size_t cnt, const float *x,
			 float *score)
{
	const struct statdet_core_cfg cfg = statdet_cfg(d);
	__m256 sp;
	size_t i;

	for (i = 0; i < cnt; i += 8) {
		__m256 xv = _mm256_loadu_ps(x + i);
		__m256 lvl = _mm256_load_ps(d->core.med + off + i);

		_mm256_storeu_ps(score + i, statdet_core_avx2(&d->core, off + i, xv, lvl, &cfg,
							      statdet_valid_avx2(xv), &sp));
	}
}
