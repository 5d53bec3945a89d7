/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lws' allocator (api/lws_alloc.h): lws' realloc contract across the
 * malloc/mmap boundary, and big blocks going back to the kernel when freed.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lws_alloc.h"

TestSuite(lws_alloc);

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

static bool same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 31 + seed))
			return false;
	return true;
}

/* Resident bytes of this process (/proc/self/statm). */
static long long resident(void)
{
	long long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	cr_assert(f);
	cr_assert_eq(fscanf(f, "%lld %lld", &size, &res), 2);
	fclose(f);
	return res * 4096;
}

Test(lws_alloc, keeps_contents_across_the_boundary)
{
	static const size_t sizes[] = { 1,     100,    LWS_ALLOC_MAPPED - 1, LWS_ALLOC_MAPPED,
					20000, 300000, LWS_ALLOC_MAPPED + 1, 64,
					5 };
	unsigned char *p = lws_alloc__realloc(NULL, 10, "test");
	size_t have = 10;

	cr_assert(p);
	fill(p, have, 3);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t keep = have < sizes[i] ? have : sizes[i];

		p = lws_alloc__realloc(p, sizes[i], "test");
		cr_assert(p, "resize to %zu", sizes[i]);
		cr_assert_eq((uintptr_t)p % 16, 0, "aligned as malloc's");
		cr_assert(same(p, keep, 3), "the first %zu bytes kept at %zu", keep, sizes[i]);
		fill(p, sizes[i], 3);
		have = sizes[i];
	}
	cr_assert_null(lws_alloc__realloc(p, 0, "test"));
	cr_assert_null(lws_alloc__realloc(NULL, 0, "test"), "nothing to free: still NULL");
}

Test(lws_alloc, refuses_what_cannot_be_had)
{
	unsigned char *p = lws_alloc__realloc(NULL, 100, "test");

	cr_assert(p);
	fill(p, 100, 9);
	cr_assert_null(lws_alloc__realloc(p, SIZE_MAX - 8, "test"));
	cr_assert(same(p, 100, 9), "a failed resize leaves the block as it was");
	lws_alloc__realloc(p, 0, "test");
}

Test(lws_alloc, big_blocks_go_back_when_freed)
{
	enum { N = 256, SIZE = 16 * 1024 };
	void *small[N], *big[N];
	long long before, full, after;

	before = resident();
	for (int i = 0; i < N; i++) {
		/* interleaved with small ones that stay, as a connection's state does */
		big[i] = lws_alloc__realloc(NULL, SIZE, "ah data");
		small[i] = lws_alloc__realloc(NULL, 200, "wsi");
		cr_assert(big[i] && small[i]);
		memset(big[i], 1, SIZE);
	}
	full = resident();
	for (int i = 0; i < N; i++)
		lws_alloc__realloc(big[i], 0, "ah data");
	after = resident();
	cr_assert_geq(full - before, (long long)N * SIZE * 9 / 10, "resident: %lld -> %lld", before,
		      full);
	cr_assert_leq(after - before, (long long)N * SIZE / 10,
		      "after freeing: %lld (%lld with the big blocks, %lld before)", after, full,
		      before);
	for (int i = 0; i < N; i++)
		lws_alloc__realloc(small[i], 0, "wsi");
}
