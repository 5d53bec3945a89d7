/* SPDX-License-Identifier: Apache-2.0 */
/*
 * simd: which vector instruction set the analytics kernels run on.
 *
 * Every SIMD kernel exists three times, one file per ISA (DPDK style:
 * statdet.c is the scalar reference, statdet_avx2.c and statdet_avx512.c are
 * compiled with their own -m flags and nothing else is). A detector picks its
 * kernel once, at __new time, from its params' isa field; SIMD_AUTO means
 * simd_isa(). The kernels use only IEEE basic operations (+ - * / sqrt, min,
 * max, compares) in the same order in every path and no FMA contraction
 * (all analytics files are compiled with -ffp-contract=off), so the three
 * paths give bit-identical scores; tests/unit/test_simd.c checks it.
 *
 *   simd_isa_max()   the widest ISA this CPU and OS support: cpuid feature
 *                    bits plus xgetbv (the OS saves the YMM / ZMM state).
 *                    AVX2 needs AVX + AVX2 and YMM state; AVX-512 needs
 *                    AVX-512F and opmask/ZMM state as well.
 *   simd_isa()       simd_isa_max() capped by the environment variable
 *                    NOVAMON_SIMD=scalar|avx2|avx512, decided on the first
 *                    call and fixed for the life of the process (an
 *                    unknown value is ignored: the library never logs, the
 *                    daemon may check it with simd_isa_parse()).
 *   simd_isa_name()  "scalar", "avx2", "avx512" ("?" for anything else).
 *   simd_isa_parse() the enum value for one of those names, or -EINVAL.
 *   simd_isa_resolve()  a detector's params->isa made concrete: SIMD_AUTO
 *                    gives simd_isa(); an enum value is returned as is if
 *                    this CPU has it; -EINVAL for anything else, -ENOTSUP
 *                    for an ISA above simd_isa_max().
 *
 * Thread safe.
 */
#ifndef NOVAMON_ANALYTICS_SIMD_H
#define NOVAMON_ANALYTICS_SIMD_H

enum simd_isa {
	SIMD_SCALAR = 0,
	SIMD_AVX2 = 1,
	SIMD_AVX512 = 2,
};

#define SIMD_AUTO (-1)

/* Lanes of the widest vector (AVX-512 floats): state arrays are padded to a
 * multiple of this and aligned to SIMD_ALIGN bytes. */
#define SIMD_LANES 16
#define SIMD_ALIGN 64

enum simd_isa simd_isa_max(void);
enum simd_isa simd_isa(void);
const char *simd_isa_name(enum simd_isa isa);
int simd_isa_parse(const char *name);
int simd_isa_resolve(int isa);

#endif /* NOVAMON_ANALYTICS_SIMD_H */
