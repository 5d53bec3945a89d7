/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statdet: construction, dispatch and the scalar reference kernel (see
 * statdet.h for the model, statdet_impl.h for the per-sample step).
 *
 * The scalar kernel is the reference the SIMD kernels are tested against and
 * the baseline of perf/bench_simd.c, so it must stay scalar: build this file
 * with -fno-tree-vectorize -ffp-contract=off (GCC 12 vectorises at -O2).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "statdet_impl.h"

void statdet_kernel_scalar(const struct statdet *d, size_t off, size_t cnt, const float *x,
			   float *score)
{
	const struct statdet_core *c = &d->core;
	const struct statdet_core_cfg cfg = statdet_cfg(d);
	float sp;
	size_t i;

	for (i = 0; i < cnt; i++)
		score[i] = statdet_valid(x[i]) ? statdet_core_scalar(c, off + i, x[i],
								     c->med[off + i], &cfg, &sp) :
						 0.0f;
}

static void (*statdet_kernel_for(enum simd_isa isa))(const struct statdet *, size_t, size_t,
						     const float *, float *)
{
#if defined(__x86_64__) || defined(__i386__)
	if (isa == SIMD_AVX512)
		return statdet_kernel_avx512;
	if (isa == SIMD_AVX2)
		return statdet_kernel_avx2;
#endif
	(void)isa;
	return statdet_kernel_scalar;
}

struct statdet *statdet__new(size_t n, const struct statdet_params *p)
{
	struct statdet *d = NULL;
	float alpha = STATDET_DEFAULT_ALPHA;
	uint32_t warmup = STATDET_DEFAULT_WARMUP;
	int isa = SIMD_AUTO, err;
	size_t npad, bytes;

	if (p) {
		if (p->ewma_alpha != 0.0f)
			alpha = p->ewma_alpha;
		if (p->warmup)
			warmup = p->warmup;
		isa = p->isa;
	}
	err = -EINVAL;
	if (n == 0 || n > SIZE_MAX / 2 || !(alpha > 0.0f && alpha < 1.0f))
		goto fail;
	isa = simd_isa_resolve(isa);
	if (isa < 0) {
		err = isa;
		goto fail;
	}
	npad = (n + SIMD_LANES - 1) & ~(size_t)(SIMD_LANES - 1);
	if (npad > SIZE_MAX / (STATDET_CORE_ROWS * sizeof(float))) {
		err = -ENOMEM;
		goto fail;
	}
	bytes = STATDET_CORE_ROWS * npad * sizeof(float);

	err = -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d)
		goto fail;
	d->mem = aligned_alloc(SIMD_ALIGN, bytes);
	if (!d->mem)
		goto fail;
	memset(d->mem, 0, bytes);
	d->n = n;
	d->npad = npad;
	d->alpha = alpha;
	d->warmup = warmup < STATDET_CNT_MAX ? (float)warmup : STATDET_CNT_MAX;
	d->isa = isa;
	d->kernel = statdet_kernel_for(isa);
	statdet_core_init(&d->core, d->mem, npad);
	return d;

fail:
	statdet__free(d);
	errno = -err;
	return NULL;
}

void statdet__free(struct statdet *d)
{
	if (!d)
		return;
	free(d->mem);
	free(d);
}

void statdet__reset(struct statdet *d, size_t i)
{
	if (i < d->n)
		statdet_core_reset(&d->core, i);
}

void statdet__update(struct statdet *d, const float *x, float *score)
{
	float xt[SIMD_LANES] __attribute__((aligned(SIMD_ALIGN)));
	float st[SIMD_LANES] __attribute__((aligned(SIMD_ALIGN)));
	size_t body = d->n & ~(size_t)(SIMD_LANES - 1), i;

	if (body)
		d->kernel(d, 0, body, x, score);
	if (body == d->n)
		return;
	/* The tail runs through a full vector whose padding lanes are NaN, that
	 * is no sample: their state stays zero. */
	for (i = 0; i < SIMD_LANES; i++)
		xt[i] = body + i < d->n ? x[body + i] : NAN;
	d->kernel(d, body, SIMD_LANES, xt, st);
	memcpy(score + body, st, (d->n - body) * sizeof(*score));
}

void statdet__expected(const struct statdet *d, size_t i, float *center, float *spread)
{
	float med = i < d->n ? d->core.med[i] : 0.0f;

	if (center)
		*center = med;
	if (spread)
		*spread = i < d->n ? statdet_core_spread(&d->core, i, med) : 0.0f;
}
