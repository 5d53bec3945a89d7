/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wal: the store's write-ahead log and checkpoints, for opaque records.
 *
 * Records are appended to a buffer and written out with wal__sync(), which
 * returns only once they are on disk (fdatasync): after it, kill -9 loses
 * nothing. On disk, each sync writes one frame: length, CRC32C, and the
 * records; with a key, the frame body is sealed with AES-256-GCM (random
 * 96-bit nonce per frame, the frame header as associated data). Segments
 * roll at WAL_SEGMENT_BYTES.
 *
 * A checkpoint is a snapshot of the store written as records through
 * wal__checkpoint(): written to a temporary file, fsynced, renamed into
 * place. One generation is kept: writing checkpoint P deletes the checkpoints
 * older than the previous one (M) and the segments below M, so a corrupt P
 * falls back to M plus the log after it without loss. Replay yields the
 * latest valid checkpoint's records, then every WAL record written after it.
 * A torn or corrupted frame stops the replay of that segment there: it is
 * counted and reported; in the last segment the file is truncated there so
 * appends continue from a clean tail (a crash can only tear the tail); in an
 * earlier segment the replay continues with the next one. Never a crash. A
 * wrong key is -EKEYREJECTED ("cannot decrypt WAL: wrong key?"), an encrypted
 * log without a key -ENOKEY; nothing is then delivered or truncated.
 *
 * Not thread safe: the store serialises calls.
 */
#ifndef NOVAMON_WAL_H
#define NOVAMON_WAL_H

#include <stddef.h>
#include <stdint.h>

#define WAL_SEGMENT_BYTES (64u << 20)
/* Segment size in use; WAL_SEGMENT_BYTES unless a test lowers it. */
extern uint64_t wal_segment_bytes;
#define WAL_KEY_BYTES 32

struct wal;

struct wal_opts {
	const char *dir;    /* created if missing */
	const uint8_t *key; /* WAL_KEY_BYTES, or NULL for no encryption */
};

struct wal_replay_stats {
	uint64_t records;        /* records delivered */
	uint64_t frames;
	uint64_t corrupt_frames; /* frames rejected (bad CRC, bad tag, torn) */
	uint64_t skipped_bytes;  /* bytes after the first corruption, not replayed */
	char first_error[256];   /* where and what, "" if none */
};

/* Open dir. Returns NULL with errno set and a message in err. */
struct wal *wal__open(const struct wal_opts *opts, char *err, size_t errlen);
/* Sync and close; NULL is fine. */
void wal__close(struct wal *w);

/*
 * Replay the latest checkpoint then the log, calling fn for each record in
 * order; fn returning non-zero stops the replay with that value. Call once,
 * right after open and before any append. Returns 0, fn's value, or -errno.
 */
int wal__replay(struct wal *w, int (*fn)(const void *rec, size_t len, void *ctx), void *ctx,
		struct wal_replay_stats *st);

/* Buffer a record (at most 16 MiB). Returns 0 or -errno. */
int wal__append(struct wal *w, const void *rec, size_t len);
/* Write and fdatasync everything buffered. Returns 0 or -errno. */
int wal__sync(struct wal *w);

/*
 * Write a checkpoint: dump(emit, ectx, ctx) must call emit(ectx, rec, len) for
 * every record of the snapshot and return 0. The snapshot must include every
 * record appended before this call. Returns 0 or -errno (the previous
 * checkpoint and log stay valid on failure).
 */
typedef int (*wal_emit_fn)(void *ectx, const void *rec, size_t len);
int wal__checkpoint(struct wal *w, int (*dump)(wal_emit_fn emit, void *ectx, void *ctx),
		    void *ctx);

/* Bytes of log on disk since the last checkpoint. */
uint64_t wal__size(const struct wal *w);

/*
 * Read a key file: 32 raw bytes or 64 hex characters (whitespace ignored).
 * A file readable by group or others is accepted with a warning in err
 * ("... chmod 600 it"); check err even on success.
 */
int wal_read_key(const char *path, uint8_t key[WAL_KEY_BYTES], char *err, size_t errlen);

#endif /* NOVAMON_WAL_H */
