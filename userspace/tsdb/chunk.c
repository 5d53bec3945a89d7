/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chunk: Gorilla encoding (see chunk.h for the format).
 *
 * Bits are written most significant first into a zero-filled buffer, so a
 * writer only ORs; the buffer grows by doubling and always keeps room for
 * the largest sample (a 10-byte varint timestamp and value in the first one,
 * else 5+64 timestamp and at most 6+64 value bits) plus an 8-byte write
 * window before an append starts, so a sample is never half-written.
 */
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"

#define CHUNK_SAMPLE_MAX_BYTES 32
#define CHUNK_NO_WINDOW 0xff

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static const double pow10_tab[CHUNK_MAX_SCALE + 1] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6 };

/* v as i / 10^scale, when exact; the caller checked chunk_value_fits(). */
static inline int64_t scaled(double v, unsigned int scale)
{
	return scale ? llround(v * pow10_tab[scale]) : (int64_t)v;
}

static inline double unscaled(int64_t i, unsigned int scale)
{
	return scale ? (double)i / pow10_tab[scale] : (double)i;
}

bool chunk_value_fits(double v, unsigned int scale)
{
	double x;
	int64_t i;

	if (scale > CHUNK_MAX_SCALE)
		return false;
	x = v * pow10_tab[scale];
	if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0))
		return false; /* NaN, +-Inf, too large */
	if (v == 0)
		return !signbit(v);
	if (!scale)
		return v == (double)(int64_t)v;
	i = llround(x);
	/* Division is correctly rounded: exact for the nearest double to a
	 * scale-digit decimal. Compare bits, not values. */
	return unscaled(i, scale) == v;
}

bool chunk_value_is_int(double v)
{
	return chunk_value_fits(v, 0);
}

int chunk_value_scale(double v)
{
	unsigned int d;

	for (d = 0; d <= CHUNK_MAX_SCALE; d++) {
		if (chunk_value_fits(v, d))
			return (int)d;
	}
	return -1;
}

void chunk__init(struct chunk *c, enum chunk_mode mode, unsigned int scale)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->scale = (uint8_t)(scale > CHUNK_MAX_SCALE ? CHUNK_MAX_SCALE : scale);
	c->lead = CHUNK_NO_WINDOW;
}

void chunk__reset(struct chunk *c)
{
	free(c->buf);
	chunk__init(c, CHUNK_XOR, 0);
}

static int chunk_reserve(struct chunk *c)
{
	uint32_t used = chunk__bytes(c);
	uint32_t ncap;
	uint8_t *nbuf;

	if (c->cap - used >= CHUNK_SAMPLE_MAX_BYTES)
		return 0;
	ncap = c->cap ? c->cap * 2 : 32;
	while (ncap - used < CHUNK_SAMPLE_MAX_BYTES)
		ncap *= 2;
	nbuf = realloc(c->buf, ncap);
	if (!nbuf)
		return -ENOMEM;
	memset(nbuf + c->cap, 0, ncap - c->cap);
	c->buf = nbuf;
	c->cap = ncap;
	return 0;
}

/* Write the low nb (1..32) bits of v: one 64-bit big-endian OR. */
static inline void put_bits32(struct chunk *c, uint64_t v, unsigned int nb)
{
	uint32_t pos = c->nbits;
	uint8_t *p = c->buf + (pos >> 3);
	uint64_t w;

	v &= (1ULL << nb) - 1;
	c->nbits += nb;
	memcpy(&w, p, sizeof(w));
	w = be64toh(w) | (v << (64 - (pos & 7) - nb));
	w = htobe64(w);
	memcpy(p, &w, sizeof(w));
}

/*
 * Write the low nb (1..64) bits of v. The 8 bytes from the current byte are
 * always inside the buffer: chunk_reserve() leaves CHUNK_SAMPLE_MAX_BYTES,
 * more than a sample plus that window.
 */
static inline void put_bits(struct chunk *c, uint64_t v, unsigned int nb)
{
	if (nb > 32) {
		put_bits32(c, v >> 32, nb - 32);
		nb = 32;
	}
	put_bits32(c, v, nb);
}

static inline uint64_t get_bits(struct chunk_iter *it, unsigned int nb)
{
	uint64_t v = 0;
	uint64_t pos = it->pos;

	if (it->pos + nb > it->nbits) {
		it->err = true;
		return 0;
	}
	it->pos += nb;
	while (nb) {
		unsigned int room = 8 - (pos & 7);
		unsigned int take = nb < room ? nb : room;
		unsigned int byte = it->buf[pos >> 3];

		v = (v << take) | ((byte >> (room - take)) & ((1u << take) - 1));
		pos += take;
		nb -= take;
	}
	return v;
}

/* Bucketed signed integers: prefix of ones ending in a zero, then bits. */
struct dod_bucket {
	uint8_t prefix_bits;
	uint8_t prefix;
	uint8_t bits;
};

/* Small first buckets: a 1 s tick's timestamps jitter by a few ms. */
static const struct dod_bucket ts_buckets[] = {
	{ 2, 0x2, 5 }, { 3, 0x6, 9 }, { 4, 0xe, 14 }, { 5, 0x1e, 20 }, { 5, 0x1f, 64 },
};

/*
 * CHUNK_INT values: '0' the delta repeats (delta-of-delta 0), '10' the value
 * repeats (delta 0; only written when the previous delta was not 0), else
 * the delta-of-delta in a bucket. Counters that stay flat and step now and
 * then, and histogram buckets, cost 1 bit per flat second and 2 bits to go
 * flat again after a step.
 */
#define INT_SAME_VALUE_BITS 2
static const struct dod_bucket int_buckets[] = {
	{ 3, 0x6, 4 }, { 4, 0xe, 8 }, { 5, 0x1e, 14 }, { 6, 0x3e, 20 }, { 7, 0x7e, 32 },
	{ 7, 0x7f, 64 },
};

static inline bool fits(int64_t x, unsigned int nb)
{
	if (nb >= 64)
		return true;
	return x >= -((1LL << (nb - 1)) - 1) && x <= (1LL << (nb - 1));
}

static void put_dod(struct chunk *c, int64_t dod, const struct dod_bucket *b, size_t nb)
{
	size_t i;

	if (dod == 0) {
		put_bits(c, 0, 1);
		return;
	}
	for (i = 0; i < nb; i++) {
		if (fits(dod, b[i].bits)) {
			put_bits(c, b[i].prefix, b[i].prefix_bits);
			put_bits(c, (uint64_t)dod, b[i].bits);
			return;
		}
	}
}

/*
 * Read a bucketed value whose '0' means 0; *ones receives the count of
 * leading ones read (so a caller can give a short prefix its own meaning:
 * the first bucket's prefix then has more ones than 1).
 */
static int64_t get_dod_ones(struct chunk_iter *it, const struct dod_bucket *b, size_t nb,
			    unsigned int *ones_out)
{
	unsigned int ones = 0;
	uint64_t bits;
	unsigned int w = 0;
	size_t i;

	/* Count leading ones up to the last bucket's prefix length. */
	while (ones < b[nb - 1].prefix_bits && get_bits(it, 1))
		ones++;
	*ones_out = ones;
	if (ones == 0)
		return 0;
	/* The last two buckets share a prefix length: all ones is the last. */
	if (ones == b[nb - 1].prefix_bits) {
		w = b[nb - 1].bits;
	} else {
		for (i = 0; i < nb - 1; i++) {
			if (b[i].prefix_bits == ones + 1) {
				w = b[i].bits;
				break;
			}
		}
		if (!w)
			return 0; /* a caller-defined prefix */
	}
	bits = get_bits(it, w);
	if (w < 64 && bits > (1ULL << (w - 1)))
		return (int64_t)(bits - (1ULL << w));
	return (int64_t)bits;
}

static int64_t get_dod(struct chunk_iter *it, const struct dod_bucket *b, size_t nb)
{
	unsigned int ones;

	return get_dod_ones(it, b, nb, &ones);
}

/* Unsigned LEB128 in whole bytes of the bit stream (at most 10). */
static void put_uvarint(struct chunk *c, uint64_t u)
{
	while (u >= 0x80) {
		put_bits(c, (u & 0x7f) | 0x80, 8);
		u >>= 7;
	}
	put_bits(c, u, 8);
}

static uint64_t get_uvarint(struct chunk_iter *it)
{
	uint64_t u = 0, b;
	unsigned int shift;

	for (shift = 0; shift < 64; shift += 7) {
		b = get_bits(it, 8);
		if (it->err)
			return 0;
		u |= (b & 0x7f) << shift;
		if (!(b & 0x80))
			return u;
	}
	it->err = true;
	return 0;
}

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/*
 * The bucket tables above are laid out so that bucket k (0-based) has a
 * prefix of k+1 ones then a zero, except the last, which is all ones with
 * the same length as the one before it.
 */

static void put_xor(struct chunk *c, uint64_t bits)
{
	uint64_t delta = bits ^ c->vlast;
	unsigned int lead, trail, sig;

	c->vlast = bits;
	if (!delta) {
		put_bits(c, 0, 1);
		return;
	}
	lead = (unsigned int)__builtin_clzll(delta);
	trail = (unsigned int)__builtin_ctzll(delta);
	if (lead > 31)
		lead = 31;
	if (c->lead != CHUNK_NO_WINDOW && lead >= c->lead && trail >= c->trail) {
		put_bits(c, 0x2, 2);
		put_bits(c, delta >> c->trail, 64 - c->lead - c->trail);
		return;
	}
	c->lead = (uint8_t)lead;
	c->trail = (uint8_t)trail;
	sig = 64 - lead - trail;
	put_bits(c, 0x3, 2);
	put_bits(c, lead, 5);
	put_bits(c, sig & 63, 6); /* 64 significant bits are written as 0 */
	put_bits(c, delta >> trail, sig);
}

int chunk__append(struct chunk *c, int64_t t, double v)
{
	uint64_t bits;
	int64_t iv, delta;
	int err;

	if (c->n) {
		if (c->n >= CHUNK_MAX_SAMPLES ||
		    floor_div(t, CHUNK_WINDOW_MS) != floor_div(c->t0, CHUNK_WINDOW_MS))
			return -ENOSPC;
		if (c->mode == CHUNK_INT && !chunk_value_fits(v, c->scale))
			return -ENOSPC;
	} else if (c->mode == CHUNK_INT && !chunk_value_fits(v, c->scale)) {
		int d = chunk_value_scale(v);

		if (d < 0)
			c->mode = CHUNK_XOR;
		else
			c->scale = (uint8_t)d; /* fits at scale implies fits above */
	}
	err = chunk_reserve(c);
	if (err)
		return err;

	memcpy(&bits, &v, sizeof(bits));
	iv = c->mode == CHUNK_INT ? scaled(v, c->scale) : 0;
	if (!c->n) {
		put_uvarint(c, zigzag(t));
		if (c->mode == CHUNK_INT) {
			put_bits(c, c->scale, 3);
			put_uvarint(c, zigzag(iv));
		} else {
			put_bits(c, bits, 64);
		}
		c->t0 = t;
		c->vlast = c->mode == CHUNK_INT ? (uint64_t)iv : bits;
	} else {
		/* Unsigned arithmetic: wraps identically in the decoder. */
		delta = (int64_t)((uint64_t)t - (uint64_t)c->tlast);
		put_dod(c, (int64_t)((uint64_t)delta - (uint64_t)c->tdelta), ts_buckets, 5);
		c->tdelta = delta;
		if (c->mode == CHUNK_INT) {
			delta = (int64_t)((uint64_t)iv - c->vlast);
			if (delta == 0 && c->vdelta != 0)
				put_bits(c, 0x2, INT_SAME_VALUE_BITS);
			else
				put_dod(c, (int64_t)((uint64_t)delta - (uint64_t)c->vdelta),
					int_buckets, 6);
			c->vdelta = delta;
			c->vlast = (uint64_t)iv;
		} else {
			put_xor(c, bits);
		}
	}
	c->tlast = t;
	c->n++;
	return 0;
}

uint8_t *chunk__take(struct chunk *c, uint32_t *nbytes)
{
	uint8_t *buf = c->buf;
	uint8_t *shrunk;
	uint32_t used = chunk__bytes(c);

	*nbytes = used;
	if (!c->n) {
		chunk__reset(c);
		return NULL;
	}
	shrunk = realloc(buf, used);
	if (shrunk)
		buf = shrunk;
	c->buf = NULL;
	chunk__reset(c);
	return buf;
}

void chunk_iter__init(struct chunk_iter *it, const uint8_t *buf, uint32_t nbytes, uint16_t n,
		      enum chunk_mode mode)
{
	memset(it, 0, sizeof(*it));
	it->buf = buf;
	it->nbits = (uint64_t)nbytes * 8;
	it->n = n;
	it->mode = mode;
	it->lead = CHUNK_NO_WINDOW;
}

static uint64_t get_xor(struct chunk_iter *it)
{
	unsigned int sig;
	uint64_t delta;

	if (!get_bits(it, 1))
		return it->vlast;
	if (!get_bits(it, 1)) {
		if (it->lead == CHUNK_NO_WINDOW) {
			it->err = true;
			return 0;
		}
		sig = 64 - it->lead - it->trail;
	} else {
		it->lead = (uint8_t)get_bits(it, 5);
		sig = (unsigned int)get_bits(it, 6);
		if (!sig)
			sig = 64;
		if (it->lead + sig > 64) {
			it->err = true;
			return 0;
		}
		it->trail = (uint8_t)(64 - it->lead - sig);
	}
	delta = get_bits(it, sig);
	return it->vlast ^ (delta << it->trail);
}

bool chunk_iter__next(struct chunk_iter *it, int64_t *t, double *v)
{
	uint64_t bits;
	int64_t iv;

	if (it->i >= it->n || it->err)
		return false;
	if (!it->i) {
		it->t = unzigzag(get_uvarint(it));
		if (it->mode == CHUNK_INT) {
			it->scale = (uint8_t)get_bits(it, 3);
			if (it->scale > CHUNK_MAX_SCALE)
				it->err = true;
			it->vlast = (uint64_t)unzigzag(get_uvarint(it));
		} else {
			it->vlast = get_bits(it, 64);
		}
	} else {
		it->tdelta = (int64_t)((uint64_t)it->tdelta + (uint64_t)get_dod(it, ts_buckets, 5));
		it->t = (int64_t)((uint64_t)it->t + (uint64_t)it->tdelta);
		if (it->mode == CHUNK_INT) {
			unsigned int ones;
			int64_t dod = get_dod_ones(it, int_buckets, 6, &ones);

			if (ones == 1)
				it->vdelta = 0; /* '10': the value repeats */
			else
				it->vdelta = (int64_t)((uint64_t)it->vdelta + (uint64_t)dod);
			it->vlast += (uint64_t)it->vdelta;
		} else {
			it->vlast = get_xor(it);
		}
	}
	if (it->err)
		return false;
	it->i++;
	*t = it->t;
	if (it->mode == CHUNK_INT) {
		iv = (int64_t)it->vlast;
		*v = unscaled(iv, it->scale);
	} else {
		bits = it->vlast;
		memcpy(v, &bits, sizeof(*v));
	}
	return true;
}
