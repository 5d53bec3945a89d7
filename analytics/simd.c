/* SPDX-License-Identifier: Apache-2.0 */
/*
 * simd: run-time ISA selection (see simd.h). The feature test reads cpuid
 * and xgetbv directly, like DPDK's rte_cpu_get_flag_enabled(), rather than
 * trusting the compiler's flags: the whole library is built for baseline
 * x86-64 and only the *_avx2.c / *_avx512.c files carry -m flags.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0 bits: x87 | SSE | AVX (YMM upper halves) */
#define SIMD_XCR0_YMM 0x06u
/* ... | opmask | ZMM0-15 upper halves | ZMM16-31 */
#define SIMD_XCR0_ZMM 0xe6u

static uint64_t simd_xgetbv(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static enum simd_isa simd_probe(void)
{
	uint32_t a, b, c, d, max_leaf;
	uint64_t xcr0;

	max_leaf = __get_cpuid_max(0, NULL);
	if (max_leaf < 7 || !__get_cpuid(1, &a, &b, &c, &d))
		return SIMD_SCALAR;
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
		return SIMD_SCALAR;
	xcr0 = simd_xgetbv();
	if ((xcr0 & SIMD_XCR0_YMM) != SIMD_XCR0_YMM)
		return SIMD_SCALAR;
	__cpuid_count(7, 0, a, b, c, d);
	if (!(b & bit_AVX2))
		return SIMD_SCALAR;
	if ((b & bit_AVX512F) && (xcr0 & SIMD_XCR0_ZMM) == SIMD_XCR0_ZMM)
		return SIMD_AVX512;
	return SIMD_AVX2;
}
#else
static enum simd_isa simd_probe(void)
{
	return SIMD_SCALAR;
}
#endif

enum simd_isa simd_isa_max(void)
{
	static int max = -1;
	int v = __atomic_load_n(&max, __ATOMIC_RELAXED);

	/* Idempotent: two threads racing here store the same value. */
	if (v < 0) {
		v = simd_probe();
		__atomic_store_n(&max, v, __ATOMIC_RELAXED);
	}
	return (enum simd_isa)v;
}

enum simd_isa simd_isa(void)
{
	static int chosen = -1;
	int v = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
	const char *env;
	int cap;

	if (v < 0) {
		v = simd_isa_max();
		env = getenv("NOVAMON_SIMD");
		cap = env ? simd_isa_parse(env) : -EINVAL;
		if (cap >= 0 && cap < v)
			v = cap;
		__atomic_store_n(&chosen, v, __ATOMIC_RELAXED);
	}
	return (enum simd_isa)v;
}

const char *simd_isa_name(enum simd_isa isa)
{
	switch (isa) {
	case SIMD_SCALAR:
		return "scalar";
	case SIMD_AVX2:
		return "avx2";
	case SIMD_AVX512:
		return "avx512";
	}
	return "?";
}

int simd_isa_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "scalar"))
		return SIMD_SCALAR;
	if (!strcmp(name, "avx2"))
		return SIMD_AVX2;
	if (!strcmp(name, "avx512"))
		return SIMD_AVX512;
	return -EINVAL;
}

int simd_isa_resolve(int isa)
{
	if (isa == SIMD_AUTO)
		return simd_isa();
	if (isa < SIMD_SCALAR || isa > SIMD_AVX512)
		return -EINVAL;
	if (isa > (int)simd_isa_max())
		return -ENOTSUP;
	return isa;
}
