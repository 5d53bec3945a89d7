/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chunk: a Gorilla-style compressed run of (timestamp ms, double) samples.
 *
 * The first timestamp is a zigzag LEB128 varint, the rest delta-of-delta
 * with variable-width buckets sized for a 1 s tick's jitter ('0', '10'+5
 * bits, '110'+9, '1110'+14, '11110'+20, '11111'+64).
 * Values use one of two encodings, fixed for the life of a chunk:
 *
 *   CHUNK_XOR  Gorilla XOR of the IEEE-754 bits against the previous value,
 *              reusing the previous leading/trailing-zero window when it fits.
 *              Any double, bit-exact (NaN payloads, -0.0, +-Inf).
 *   CHUNK_INT  round(v * 10^scale) as an integer, for values that are
 *              exactly i / 10^scale with |i| <= 2^53 (not -0.0;
 *              chunk_value_fits()); scale (0..CHUNK_MAX_SCALE) is fixed per
 *              chunk and written in 3 bits after the first timestamp, then
 *              the first value as a zigzag varint. Later values: '0' the
 *              delta repeats, '10' the value repeats (delta 0), else the
 *              delta-of-delta ('110'+4 bits, '1110'+8, '11110'+14,
 *              '111110'+20, '1111110'+32, '1111111'+64). Counters, byte
 *              gauges and decimal gauges (percentages with two decimals)
 *              compress far better this way than by XOR, and bit-exactly.
 *
 * A chunk holds at most CHUNK_MAX_SAMPLES samples and only timestamps in one
 * CHUNK_WINDOW_MS-aligned window; chunk__append() returns -ENOSPC when the
 * sample does not belong in it (full, other window, or a value that does not
 * fit a CHUNK_INT chunk's scale) and the caller cuts a new one. chunk__close() shrinks the
 * buffer to the bytes used. Timestamps must ascend strictly (the caller
 * filters out-of-order samples and duplicates).
 *
 * Not thread safe: the store serialises writers against readers.
 */
#ifndef NOVAMON_TSDB_CHUNK_H
#define NOVAMON_TSDB_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_MAX_SAMPLES 120
#define CHUNK_WINDOW_MS (2 * 3600 * 1000LL)
#define CHUNK_MAX_SCALE 6

enum chunk_mode {
	CHUNK_XOR = 0,
	CHUNK_INT = 1,
};

/* An open (appendable) chunk with its encoder state. */
struct chunk {
	uint8_t *buf;
	uint32_t cap; /* bytes allocated, zero-filled past nbits */
	uint32_t nbits; /* bits written */
	uint16_t n; /* samples */
	uint8_t mode; /* enum chunk_mode */
	uint8_t lead; /* XOR: leading zeros of the current window */
	uint8_t trail; /* XOR: trailing zeros of the current window */
	uint8_t scale; /* INT: decimal digits */
	int64_t t0; /* first timestamp */
	int64_t tlast;
	int64_t tdelta;
	uint64_t vlast; /* XOR: bits of the last value; INT: the last value */
	int64_t vdelta; /* INT: last value delta */
};

/* Decoder over an encoded buffer (open or closed chunk). */
struct chunk_iter {
	const uint8_t *buf;
	uint64_t nbits; /* readable bits */
	uint64_t pos;
	uint16_t n, i;
	uint8_t mode, lead, trail, scale;
	bool err; /* ran past the buffer: corrupt input */
	int64_t t, tdelta;
	uint64_t vlast;
	int64_t vdelta;
};

/* True when v == i / 10^scale exactly for an integer |i| <= 2^53, v != -0.0. */
bool chunk_value_fits(double v, unsigned int scale);
/* chunk_value_fits(v, 0). */
bool chunk_value_is_int(double v);
/* The smallest scale v fits at, or -1. */
int chunk_value_scale(double v);

/*
 * Start an empty chunk in mode (CHUNK_INT: at scale, raised at the first
 * append if that value needs more, or CHUNK_XOR if it fits no scale); no
 * allocation until the first append.
 */
void chunk__init(struct chunk *c, enum chunk_mode mode, unsigned int scale);
/* Free the buffer and reset to an empty CHUNK_XOR chunk. */
void chunk__reset(struct chunk *c);

/*
 * Append (t, v). Returns 0, -ENOSPC when the sample belongs in a new chunk
 * (see above; nothing was written), -ENOMEM.
 */
int chunk__append(struct chunk *c, int64_t t, double v);

/* Bytes holding the encoded samples. */
static inline uint32_t chunk__bytes(const struct chunk *c)
{
	return (c->nbits + 7) / 8;
}

/*
 * Detach the encoded bytes (shrunk to chunk__bytes()) for the caller to own
 * and free; the chunk is reset to empty. Returns NULL (and resets) when the
 * chunk is empty. *nbytes receives the size.
 */
uint8_t *chunk__take(struct chunk *c, uint32_t *nbytes);

/* Iterate n samples of an encoded buffer of nbytes in mode. */
void chunk_iter__init(struct chunk_iter *it, const uint8_t *buf, uint32_t nbytes, uint16_t n,
		      enum chunk_mode mode);
/* Next sample into *t, *v: true, or false at the end (or on corrupt input). */
bool chunk_iter__next(struct chunk_iter *it, int64_t *t, double *v);

#endif /* NOVAMON_TSDB_CHUNK_H */
