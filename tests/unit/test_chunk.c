/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"

TestSuite(tsdb_chunk);

static uint64_t chunk_test_bits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

/* Encode t/v into consecutive chunks (cutting on -ENOSPC), decode, compare
 * bit-exactly; returns the encoded bytes. */
static size_t chunk_test_roundtrip(const int64_t *t, const double *v, size_t n,
				   enum chunk_mode mode)
{
	struct chunk c;
	uint8_t *bufs[4096];
	uint32_t nb[4096];
	uint16_t ns[4096];
	uint8_t modes[4096];
	size_t nchunks = 0, i, k = 0, bytes = 0;
	struct chunk_iter it;
	int64_t tt;
	double vv;
	int err;

	chunk__init(&c, mode, 0);
	for (i = 0; i < n; i++) {
		err = chunk__append(&c, t[i], v[i]);
		if (err == -ENOSPC) {
			cr_assert(c.n > 0);
			ns[nchunks] = c.n;
			modes[nchunks] = c.mode;
			bufs[nchunks] = chunk__take(&c, &nb[nchunks]);
			nchunks++;
			chunk__init(&c, chunk_value_scale(v[i]) >= 0 ? mode : CHUNK_XOR, 0);
			err = chunk__append(&c, t[i], v[i]);
		}
		cr_assert_eq(err, 0);
	}
	if (c.n) {
		ns[nchunks] = c.n;
		modes[nchunks] = c.mode;
		bufs[nchunks] = chunk__take(&c, &nb[nchunks]);
		nchunks++;
	}
	for (i = 0; i < nchunks; i++) {
		cr_assert_leq(ns[i], CHUNK_MAX_SAMPLES);
		chunk_iter__init(&it, bufs[i], nb[i], ns[i], modes[i]);
		while (chunk_iter__next(&it, &tt, &vv)) {
			cr_assert_lt(k, n);
			cr_assert_eq(tt, t[k], "sample %zu: t %lld != %lld", k, (long long)tt,
				     (long long)t[k]);
			cr_assert_eq(chunk_test_bits(vv), chunk_test_bits(v[k]),
				     "sample %zu: %a != %a", k, vv, v[k]);
			k++;
		}
		cr_assert_not(it.err);
		bytes += nb[i];
		free(bufs[i]);
	}
	cr_assert_eq(k, n);
	return bytes;
}

Test(tsdb_chunk, random_floats)
{
	enum { N = 5000 };
	int64_t *t = malloc(N * sizeof(*t));
	double *v = malloc(N * sizeof(*v));
	size_t i;

	srand(1);
	for (i = 0; i < N; i++) {
		t[i] = 1700000000000LL + (int64_t)i * 1000;
		v[i] = (double)rand() / RAND_MAX * 1e6 - 5e5;
	}
	chunk_test_roundtrip(t, v, N, CHUNK_XOR);
	chunk_test_roundtrip(t, v, N, CHUNK_INT);
	free(t);
	free(v);
}

Test(tsdb_chunk, constant_is_tiny)
{
	enum { N = 7200 };
	static int64_t t[N];
	static double v[N];
	size_t i, bytes;

	for (i = 0; i < N; i++) {
		t[i] = 1700000000000LL + (int64_t)i * 1000;
		v[i] = 42.5;
	}
	bytes = chunk_test_roundtrip(t, v, N, CHUNK_XOR);
	cr_log_info("constant: %.3f B/sample", (double)bytes / N);
	cr_assert_lt((double)bytes / N, 0.45); /* the 16-byte header per 120 dominates */
}

Test(tsdb_chunk, integer_counter)
{
	enum { N = 7200 };
	static int64_t t[N];
	static double v[N];
	double acc = 1e9;
	size_t i, bytes_int, bytes_xor;

	srand(2);
	for (i = 0; i < N; i++) {
		t[i] = 1700000000000LL + (int64_t)i * 1000;
		acc += 1000 + rand() % 50;
		v[i] = acc;
	}
	bytes_int = chunk_test_roundtrip(t, v, N, CHUNK_INT);
	bytes_xor = chunk_test_roundtrip(t, v, N, CHUNK_XOR);
	cr_log_info("counter: int %.3f, xor %.3f B/sample", (double)bytes_int / N,
		    (double)bytes_xor / N);
	cr_assert_lt(bytes_int, bytes_xor);
	cr_assert_lt((double)bytes_int / N, 2.0);
}

Test(tsdb_chunk, special_floats)
{
	double nan1 = NAN, nan2;
	uint64_t payload = 0x7ff0000000000123ULL; /* signalling NaN with a payload */
	double v[] = { 0.0, -0.0, INFINITY, -INFINITY, 0, 1e308, -1e-308, 5e-324, 0, 3, -0.0, 7 };
	int64_t t[sizeof(v) / sizeof(v[0])];
	size_t i;

	memcpy(&nan2, &payload, sizeof(nan2));
	v[4] = nan1;
	v[8] = nan2;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		t[i] = (int64_t)i * 15000;
	chunk_test_roundtrip(t, v, sizeof(v) / sizeof(v[0]), CHUNK_XOR);
	chunk_test_roundtrip(t, v, sizeof(v) / sizeof(v[0]), CHUNK_INT);
	cr_assert_not(chunk_value_is_int(-0.0));
	cr_assert_not(chunk_value_is_int(NAN));
	cr_assert_not(chunk_value_is_int(INFINITY));
	cr_assert_not(chunk_value_is_int(1e300));
	cr_assert(chunk_value_is_int(-12345));
}

Test(tsdb_chunk, irregular_timestamps)
{
	enum { N = 3000 };
	static int64_t t[N];
	static double v[N];
	int64_t cur = -5000000; /* negative times and window boundaries */
	size_t i;

	srand(3);
	for (i = 0; i < N; i++) {
		switch (rand() % 6) {
		case 0:
			cur += 1;
			break;
		case 1:
			cur += rand() % 100000;
			break;
		case 2:
			cur += (int64_t)(rand() % 1000) * 1000000;
			break;
		case 3:
			cur += 1000 + rand() % 21 - 10;
			break;
		default:
			cur += 1000;
		}
		t[i] = cur;
		v[i] = (double)(rand() % 100);
	}
	chunk_test_roundtrip(t, v, N, CHUNK_INT);
	chunk_test_roundtrip(t, v, N, CHUNK_XOR);
}

Test(tsdb_chunk, cuts_at_120_and_window)
{
	struct chunk c;
	int64_t t0 = CHUNK_WINDOW_MS - 5000;
	int i;

	chunk__init(&c, CHUNK_XOR, 0);
	for (i = 0; i < 5; i++)
		cr_assert_eq(chunk__append(&c, t0 + i * 1000, i), 0);
	cr_assert_eq(chunk__append(&c, CHUNK_WINDOW_MS, 1), -ENOSPC);
	chunk__reset(&c);
	chunk__init(&c, CHUNK_XOR, 0);
	for (i = 0; i < CHUNK_MAX_SAMPLES; i++)
		cr_assert_eq(chunk__append(&c, i * 1000, i), 0);
	cr_assert_eq(chunk__append(&c, i * 1000, i), -ENOSPC);
	chunk__reset(&c);
	chunk__init(&c, CHUNK_INT, 0);
	cr_assert_eq(chunk__append(&c, 0, 1), 0);
	cr_assert_eq(chunk__append(&c, 1000, 1.5), -ENOSPC);
	chunk__reset(&c);
}

Test(tsdb_chunk, truncated_buffer_stops)
{
	struct chunk c;
	struct chunk_iter it;
	uint8_t *buf;
	uint32_t nb;
	int64_t t;
	double v;
	int i, got = 0;

	chunk__init(&c, CHUNK_XOR, 0);
	for (i = 0; i < 100; i++)
		chunk__append(&c, i * 1000, i * 1.1);
	buf = chunk__take(&c, &nb);
	chunk_iter__init(&it, buf, nb / 2, 100, CHUNK_XOR);
	while (chunk_iter__next(&it, &t, &v))
		got++;
	cr_assert_lt(got, 100);
	cr_assert(it.err);
	free(buf);
}

Test(tsdb_chunk, decimal_gauge_scales)
{
	enum { N = 2400 };
	static int64_t t[N];
	static double v[N];
	size_t i, bytes_int, bytes_xor;

	srand(4);
	for (i = 0; i < N; i++) {
		t[i] = 1700000000000LL + (int64_t)i * 1000 + rand() % 5;
		v[i] = (double)(4000 + rand() % 2000) / 100; /* 40.00 .. 59.99 */
	}
	cr_assert_eq(chunk_value_scale(52.37), 2);
	cr_assert_eq(chunk_value_scale(0.1), 1);
	cr_assert_eq(chunk_value_scale(3), 0);
	cr_assert_eq(chunk_value_scale(1.0 / 3), -1);
	bytes_int = chunk_test_roundtrip(t, v, N, CHUNK_INT);
	bytes_xor = chunk_test_roundtrip(t, v, N, CHUNK_XOR);
	cr_log_info("decimal gauge: int %.3f, xor %.3f B/sample", (double)bytes_int / N,
		    (double)bytes_xor / N);
	cr_assert_lt(bytes_int * 2, bytes_xor);
}

/* CHUNK_INT's '10' (value repeats) code, every delta-of-delta bucket and
 * the varint header with negative and extreme first values. */
Test(tsdb_chunk, int_repeat_code_and_varint_header)
{
	enum { N = 3000 };
	static int64_t t[N];
	static double v[N];
	static const double big[] = { -9007199254740992.0, 9007199254740992.0, -1, 0, 1e15 };
	double acc = 0;
	size_t i, bytes;

	srand(5);
	for (i = 0; i < N; i++) {
		t[i] = -5000000LL + (int64_t)i * 1000;
		if (rand() % 50 == 0)
			acc += 1 + rand() % 3; /* a flat counter stepping now and then */
		v[i] = acc;
	}
	bytes = chunk_test_roundtrip(t, v, N, CHUNK_INT);
	cr_log_info("flat stepping counter: %.3f B/sample", (double)bytes / N);
	cr_assert_lt((double)bytes / N, 0.4);
	for (i = 0; i < N; i++) {
		int64_t r = rand() % 7;

		/* deltas spanning every bucket, 0 repeats and sign changes */
		acc += r == 0 ? 0 : (double)((rand() % 2 ? 1 : -1) * (1LL << (rand() % 50)));
		v[i] = i % 97 == 0 ? big[(i / 97) % 5] : acc;
		t[i] = 1700000000000LL + (int64_t)i * 1000 + rand() % 3;
	}
	chunk_test_roundtrip(t, v, N, CHUNK_INT);
	chunk_test_roundtrip(t, v, N, CHUNK_XOR);
}
