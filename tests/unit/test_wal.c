/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wal: round trips, segment rolls, checkpoints and their fallback, torn and
 * corrupted tails, encryption, key files, and kill -9 at random moments.
 *
 * Each test gets a fresh directory under $TMPDIR (default /tmp).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/wal.h"

/* Test hook in wal.c: the segment roll size (WAL_SEGMENT_BYTES otherwise). */
extern uint64_t wal_segment_bytes;

static char tw_dir[4096];

static const uint8_t tw_key1[WAL_KEY_BYTES] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
						0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
						0xa5, 0x5a, 0x0f, 0xf0, 0x11, 0x22, 0x33, 0x44,
						0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc };
static const uint8_t tw_key2[WAL_KEY_BYTES] = { 0x02 };

static int tw_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tw_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tw_dir, sizeof(tw_dir), "%s/novamon-wal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(tw_dir));
	wal_segment_bytes = WAL_SEGMENT_BYTES;
}

static void tw_teardown(void)
{
	nftw(tw_dir, tw_rm, 16, FTW_DEPTH | FTW_PHYS);
	wal_segment_bytes = WAL_SEGMENT_BYTES;
}

TestSuite(wal, .init = tw_setup, .fini = tw_teardown, .timeout = 120);

/* --- helpers ------------------------------------------------------------- */

struct tw_col {
	char **recs;
	size_t *lens;
	size_t n, cap;
	size_t stop_at; /* return 99 when this many were seen; 0: never */
};

static int tw_collect(const void *rec, size_t len, void *ctx)
{
	struct tw_col *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->recs = realloc(c->recs, c->cap * sizeof(*c->recs));
		c->lens = realloc(c->lens, c->cap * sizeof(*c->lens));
		cr_assert(c->recs && c->lens);
	}
	c->recs[c->n] = malloc(len + 1);
	cr_assert_not_null(c->recs[c->n]);
	memcpy(c->recs[c->n], rec, len);
	c->recs[c->n][len] = '\0';
	c->lens[c->n] = len;
	c->n++;
	return c->stop_at && c->n == c->stop_at ? 99 : 0;
}

static void tw_col_free(struct tw_col *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->recs[i]);
	free(c->recs);
	free(c->lens);
	memset(c, 0, sizeof(*c));
}

static struct wal *tw_open(const uint8_t *key)
{
	struct wal_opts o = { .dir = tw_dir, .key = key };
	char err[256];
	struct wal *w = wal__open(&o, err, sizeof(err));

	cr_assert_not_null(w, "wal__open: %s", err);
	return w;
}

/* Open, replay into c, and return the open log (replay's return in *rc). */
static struct wal *tw_reopen(const uint8_t *key, struct tw_col *c, struct wal_replay_stats *st,
			     int *rc)
{
	struct wal *w = tw_open(key);

	*rc = wal__replay(w, tw_collect, c, st);
	return w;
}

static void tw_rec(char *buf, size_t len, unsigned int i)
{
	snprintf(buf, len, "record-%05u", i);
}

static void tw_append_n(struct wal *w, unsigned int from, unsigned int n)
{
	char buf[32];

	for (unsigned int i = from; i < from + n; i++) {
		tw_rec(buf, sizeof(buf), i);
		cr_assert_eq(wal__append(w, buf, strlen(buf)), 0);
	}
}

/* Check c->recs[at..] is record-from .. record-(from+n-1). */
static void tw_expect_seq(const struct tw_col *c, size_t at, unsigned int from, unsigned int n)
{
	char buf[32];

	cr_assert_geq(c->n, at + n, "only %zu records, wanted %zu", c->n, at + n);
	for (unsigned int i = 0; i < n; i++) {
		tw_rec(buf, sizeof(buf), from + i);
		cr_assert_str_eq(c->recs[at + i], buf, "record %zu", at + i);
	}
}

static char *tw_path(const char *name)
{
	static char p[4200];

	snprintf(p, sizeof(p), "%s/%s", tw_dir, name);
	return p;
}

static int tw_count(const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(tw_dir);
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/* Name of the highest-numbered file with this prefix ("" if none). */
static void tw_last(const char *prefix, char *out, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(tw_dir);

	cr_assert_not_null(d);
	out[0] = '\0';
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)) && !strstr(de->d_name, ".tmp") &&
		    strlen(de->d_name) < len && strcmp(de->d_name, out) > 0)
			memcpy(out, de->d_name, strlen(de->d_name) + 1);
	closedir(d);
}

static uint8_t *tw_slurp(const char *name, size_t *len)
{
	struct stat stb;
	uint8_t *buf;
	int fd = open(tw_path(name), O_RDONLY);

	cr_assert_geq(fd, 0, "open %s", name);
	cr_assert_eq(fstat(fd, &stb), 0);
	buf = malloc((size_t)stb.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(read(fd, buf, (size_t)stb.st_size), stb.st_size);
	close(fd);
	*len = (size_t)stb.st_size;
	return buf;
}

static void tw_spit(const char *name, const uint8_t *buf, size_t len)
{
	int fd = open(tw_path(name), O_WRONLY | O_TRUNC | O_CREAT, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void tw_flip(const char *name, size_t off)
{
	size_t len;
	uint8_t *buf = tw_slurp(name, &len);

	cr_assert_lt(off, len);
	buf[off] ^= 0x40;
	tw_spit(name, buf, len);
	free(buf);
}

/* Bitwise CRC32C, the reference the table-driven one in wal.c must match. */
static uint32_t tw_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static uint32_t tw_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recompute the CRC of the frame at off, as a forger would. */
static void tw_fix_crc(uint8_t *buf, size_t off)
{
	uint32_t len = tw_get32(buf + off + 8);
	uint32_t crc = tw_crc32c(tw_crc32c(0, buf + off, 12), buf + off + 16, len);

	buf[off + 12] = crc;
	buf[off + 13] = crc >> 8;
	buf[off + 14] = crc >> 16;
	buf[off + 15] = crc >> 24;
}

struct tw_dump_ctx {
	const char *marker;
	unsigned int n; /* records record-0 .. record-(n-1) */
	int fail_after; /* emit that many then fail with -EIO; -1: never */
};

static int tw_dump(wal_emit_fn emit, void *ectx, void *ctx)
{
	struct tw_dump_ctx *d = ctx;
	char buf[32];
	int err;

	err = emit(ectx, d->marker, strlen(d->marker));
	if (err)
		return err;
	for (unsigned int i = 0; i < d->n; i++) {
		if (d->fail_after >= 0 && (int)i == d->fail_after)
			return -EIO;
		tw_rec(buf, sizeof(buf), i);
		err = emit(ectx, buf, strlen(buf));
		if (err)
			return err;
	}
	return 0;
}

/* --- round trips --------------------------------------------------------- */

Test(wal, crc32c_matches_reference_on_disk)
{
	struct wal *w = tw_open(NULL);
	uint8_t *buf;
	size_t len;

	cr_assert_eq(tw_crc32c(0, (const uint8_t *)"123456789", 9), 0xe3069283u);
	cr_assert_eq(wal__replay(w, tw_collect, &(struct tw_col){ 0 }, NULL), 0);
	tw_append_n(w, 0, 100);
	cr_assert_eq(wal__sync(w), 0);
	wal__close(w);
	buf = tw_slurp("wal-00000001", &len);
	cr_assert_eq(memcmp(buf, "NVWL", 4), 0);
	cr_assert_eq(tw_get32(buf + 8) + 16, len);
	cr_assert_eq(tw_get32(buf + 12), tw_crc32c(tw_crc32c(0, buf, 12), buf + 16, len - 16));
	free(buf);
}

Test(wal, round_trip_several_syncs)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(wal__size(w), 0);
	for (unsigned int s = 0; s < 5; s++) {
		tw_append_n(w, s * 10, 10);
		cr_assert_eq(wal__sync(w), 0);
	}
	cr_assert_eq(wal__append(w, NULL, 0), 0); /* an empty record is a record */
	cr_assert_eq(wal__sync(w), 0);
	cr_assert_eq(wal__sync(w), 0); /* nothing buffered: no empty frame */
	cr_assert_gt(wal__size(w), 0);
	wal__close(w);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 51);
	tw_expect_seq(&c, 0, 0, 50);
	cr_assert_eq(c.lens[50], 0);
	cr_assert_eq(st.records, 51);
	cr_assert_eq(st.frames, 6);
	cr_assert_eq(st.corrupt_frames, 0);
	cr_assert_str_empty(st.first_error);
	cr_assert_eq(wal__replay(w, tw_collect, &c, &st), -EINVAL, "replay twice");
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, append_without_replay_and_limits)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w = tw_open(NULL);
	int rc;

	tw_append_n(w, 0, 3);
	cr_assert_eq(wal__sync(w), 0);
	cr_assert_eq(wal__append(w, NULL, 1), -EINVAL);
	cr_assert_eq(wal__append(w, "x", (16u << 20) + 1), -EMSGSIZE);
	cr_assert_eq(wal__replay(w, tw_collect, &c, &st), -EINVAL, "replay after append");
	wal__close(w);
	wal__close(NULL);

	/* Without a replay the next session appends to a new segment. */
	w = tw_open(NULL);
	tw_append_n(w, 3, 3);
	wal__close(w); /* close syncs */
	cr_assert_eq(tw_count("wal-"), 2);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 6);
	tw_expect_seq(&c, 0, 0, 6);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, replay_callback_stops)
{
	struct wal_replay_stats st;
	struct tw_col c = { .stop_at = 4 };
	struct wal *w = tw_open(NULL);
	int rc;

	tw_append_n(w, 0, 10);
	wal__close(w);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 99);
	cr_assert_eq(c.n, 4);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, large_records_and_auto_flush)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	size_t big = 3u << 20;
	char *rec = malloc(big);
	struct wal *w = tw_open(NULL);
	int rc;

	cr_assert_not_null(rec);
	for (size_t i = 0; i < big; i++)
		rec[i] = (char)('a' + i % 26);
	cr_assert_eq(wal__append(w, rec, big), 0);
	cr_assert_eq(wal__append(w, rec, 1000), 0);
	cr_assert_eq(wal__append(w, rec, big), 0);
	cr_assert_eq(wal__sync(w), 0);
	wal__close(w);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(c.lens[0], big);
	cr_assert_eq(c.lens[1], 1000);
	cr_assert_eq(c.lens[2], big);
	cr_assert_eq(memcmp(c.recs[2], rec, big), 0);
	cr_assert_geq(st.frames, 2, "a frame is written once a megabyte is buffered");
	wal__close(w);
	tw_col_free(&c);
	free(rec);
}

Test(wal, segments_roll_and_replay_in_order)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	wal_segment_bytes = 512;
	w = tw_reopen(NULL, &c, &st, &rc);
	for (unsigned int s = 0; s < 100; s++) {
		tw_append_n(w, s * 3, 3);
		cr_assert_eq(wal__sync(w), 0);
	}
	wal__close(w);
	cr_assert_gt(tw_count("wal-"), 10);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 300);
	tw_expect_seq(&c, 0, 0, 300);
	cr_assert_eq(st.corrupt_frames, 0);
	tw_append_n(w, 300, 5);
	wal__close(w);

	tw_col_free(&c);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	tw_expect_seq(&c, 0, 0, 305);
	cr_assert_eq(c.n, 305);
	wal__close(w);
	tw_col_free(&c);
}

/* --- checkpoints --------------------------------------------------------- */

Test(wal, checkpoint_then_records)
{
	struct tw_dump_ctx d1 = { .marker = "ckpt-1", .n = 40, .fail_after = -1 };
	struct tw_dump_ctx d2 = { .marker = "ckpt-2", .n = 60, .fail_after = -1 };
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	wal_segment_bytes = 256;
	w = tw_reopen(NULL, &c, &st, &rc);
	for (unsigned int s = 0; s < 10; s++) {
		tw_append_n(w, s * 4, 4);
		cr_assert_eq(wal__sync(w), 0);
	}
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d1), 0);
	cr_assert_eq(wal__size(w), 0);
	cr_assert_eq(tw_count("checkpoint-"), 1);
	tw_append_n(w, 40, 20); /* synced by the checkpoint below */
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d2), 0);
	/* checkpoint-1's segments are gone; the ones it does not cover stay. */
	cr_assert_eq(tw_count("checkpoint-"), 2);
	tw_append_n(w, 60, 5);
	cr_assert_eq(wal__sync(w), 0);
	cr_assert_gt(wal__size(w), 0);
	wal__close(w);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 1 + 60 + 5);
	cr_assert_str_eq(c.recs[0], "ckpt-2");
	tw_expect_seq(&c, 1, 0, 65);
	cr_assert_eq(st.corrupt_frames, 0);
	cr_assert_str_empty(st.first_error);

	/* A third checkpoint retires checkpoint-1 and everything before ckpt-2. */
	tw_col_free(&c);
	d2.marker = "ckpt-3";
	d2.n = 65;
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d2), 0);
	cr_assert_eq(tw_count("checkpoint-"), 2);
	/* Only the segment written after ckpt-2 (records 60..64) is left. */
	cr_assert_eq(tw_count("wal-"), 1);
	wal__close(w);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 66);
	cr_assert_str_eq(c.recs[0], "ckpt-3");
	tw_expect_seq(&c, 1, 0, 65);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, checkpoint_deletes_covered_segments)
{
	struct tw_dump_ctx d = { .marker = "m", .fail_after = -1 };
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	wal_segment_bytes = 64; /* one 64-byte frame per segment */
	w = tw_reopen(NULL, &c, &st, &rc);
	for (unsigned int round = 0; round < 4; round++) {
		for (unsigned int s = 0; s < 5; s++) {
			tw_append_n(w, d.n, 3);
			d.n += 3;
			cr_assert_eq(wal__sync(w), 0);
		}
		cr_assert_eq(wal__checkpoint(w, tw_dump, &d), 0);
	}
	/* Two checkpoints; the five segments between them; none older. */
	cr_assert_eq(tw_count("checkpoint-"), 2);
	cr_assert_eq(tw_count("wal-"), 5);
	wal__close(w);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 1 + 60);
	tw_expect_seq(&c, 1, 0, 60);
	cr_assert_eq(st.frames, 2, "checkpoint data frame and end frame, no segment frame");
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, corrupt_checkpoint_falls_back)
{
	struct tw_dump_ctx d1 = { .marker = "ckpt-1", .n = 10, .fail_after = -1 };
	struct tw_dump_ctx d2 = { .marker = "ckpt-2", .n = 20, .fail_after = -1 };
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	char ck2[64];
	size_t len;
	uint8_t *buf;
	struct wal *w;
	int rc;

	w = tw_reopen(NULL, &c, &st, &rc);
	tw_append_n(w, 0, 10);
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d1), 0);
	tw_append_n(w, 10, 10);
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d2), 0);
	tw_append_n(w, 20, 10);
	wal__close(w);
	tw_last("checkpoint-", ck2, sizeof(ck2));

	tw_flip(ck2, 30);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(c.recs[0], "ckpt-1");
	cr_assert_eq(c.n, 1 + 30);
	tw_expect_seq(&c, 1, 0, 30);
	cr_assert_eq(st.corrupt_frames, 1);
	cr_assert(strstr(st.first_error, ck2), "%s", st.first_error);
	cr_assert(strstr(st.first_error, "bad CRC"), "%s", st.first_error);
	cr_assert(strstr(st.first_error, "checkpoint-"), "%s", st.first_error);
	wal__close(w);
	tw_col_free(&c);

	/* Cut off the end frame instead: incomplete, same fallback. */
	tw_flip(ck2, 30);
	buf = tw_slurp(ck2, &len);
	tw_spit(ck2, buf, len - 40);
	free(buf);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(c.recs[0], "ckpt-1");
	tw_expect_seq(&c, 1, 0, 30);
	cr_assert_eq(st.corrupt_frames, 1);

	/* The next checkpoint works and drops the corrupt one. */
	d2.marker = "ckpt-3";
	d2.n = 30;
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d2), 0);
	wal__close(w);
	tw_col_free(&c);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(c.recs[0], "ckpt-3");
	cr_assert_eq(c.n, 31);
	cr_assert_eq(st.corrupt_frames, 0);
	cr_assert_eq(tw_count("checkpoint-"), 2);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, failed_checkpoint_leaves_log_valid)
{
	struct tw_dump_ctx d = { .marker = "ckpt", .n = 10, .fail_after = 5 };
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	w = tw_reopen(NULL, &c, &st, &rc);
	tw_append_n(w, 0, 10);
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d), -EIO);
	cr_assert_eq(tw_count("checkpoint-"), 0, "no checkpoint, no temp file");
	tw_append_n(w, 10, 2);
	wal__close(w);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 12);
	tw_expect_seq(&c, 0, 0, 12);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, stale_temp_files_are_ignored)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	w = tw_reopen(NULL, &c, &st, &rc);
	tw_append_n(w, 0, 5);
	wal__close(w);
	tw_spit("wal-00000009.tmp", (const uint8_t *)"junk", 4);
	tw_spit("checkpoint-00000010.tmp", (const uint8_t *)"junk", 4);
	tw_spit("notes.txt", (const uint8_t *)"keep", 4);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 5);
	cr_assert_eq(st.corrupt_frames, 0);
	cr_assert_eq(access(tw_path("wal-00000009.tmp"), F_OK), -1);
	cr_assert_eq(access(tw_path("checkpoint-00000010.tmp"), F_OK), -1);
	cr_assert_eq(access(tw_path("notes.txt"), F_OK), 0);
	wal__close(w);
	tw_col_free(&c);
}

/* --- torn and corrupted tails ------------------------------------------- */

/*
 * Three frames of 3 records; cut the segment at every offset inside the last
 * frame: replay yields the first two frames exactly, reports the tail, and
 * appends after it replay.
 */
static void tw_torn_every_offset(const uint8_t *key)
{
	uint64_t start, end;
	struct wal *w;
	uint8_t *orig;
	size_t len;
	int rc;

	w = tw_open(key);
	cr_assert_eq(wal__replay(w, tw_collect, &(struct tw_col){ 0 }, NULL), 0);
	for (unsigned int s = 0; s < 2; s++) {
		tw_append_n(w, s * 3, 3);
		cr_assert_eq(wal__sync(w), 0);
	}
	start = wal__size(w);
	tw_append_n(w, 6, 3);
	cr_assert_eq(wal__sync(w), 0);
	end = wal__size(w);
	wal__close(w);
	orig = tw_slurp("wal-00000001", &len);
	cr_assert_eq(len, end);

	for (uint64_t cut = start; cut < end; cut++) {
		struct wal_replay_stats st;
		struct tw_col c = { 0 };
		struct stat stb;

		tw_spit("wal-00000001", orig, cut);
		unlink(tw_path("wal-00000002"));
		w = tw_reopen(key, &c, &st, &rc);
		cr_assert_eq(rc, 0, "cut %llu", (unsigned long long)cut);
		cr_assert_eq(c.n, 6, "cut %llu: %zu records", (unsigned long long)cut, c.n);
		tw_expect_seq(&c, 0, 0, 6);
		cr_assert_eq(st.frames, 2);
		cr_assert_eq(st.corrupt_frames, cut > start, "cut %llu", (unsigned long long)cut);
		cr_assert_eq(st.skipped_bytes, cut - start);
		if (cut > start) {
			cr_assert(strstr(st.first_error, "wal-00000001 offset "), "%s",
				  st.first_error);
			cr_assert(strstr(st.first_error, "truncated"), "%s", st.first_error);
		}
		cr_assert_eq(stat(tw_path("wal-00000001"), &stb), 0);
		cr_assert_eq((uint64_t)stb.st_size, start, "torn tail truncated away");
		cr_assert_eq(wal__size(w), start);

		tw_append_n(w, 100, 2);
		wal__close(w);
		tw_col_free(&c);
		w = tw_reopen(key, &c, &st, &rc);
		cr_assert_eq(rc, 0);
		cr_assert_eq(c.n, 8);
		tw_expect_seq(&c, 0, 0, 6);
		tw_expect_seq(&c, 6, 100, 2);
		cr_assert_eq(st.corrupt_frames, 0);
		wal__close(w);
		tw_col_free(&c);
	}
	free(orig);
}

Test(wal, torn_tail_at_every_offset)
{
	tw_torn_every_offset(NULL);
}

Test(wal, torn_tail_at_every_offset_encrypted)
{
	tw_torn_every_offset(tw_key1);
}

Test(wal, flipped_byte_is_bad_crc)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	uint64_t f1, f2, f3;
	struct wal *w;
	char want[64];
	int rc;

	w = tw_reopen(NULL, &c, &st, &rc);
	tw_append_n(w, 0, 3);
	cr_assert_eq(wal__sync(w), 0);
	f1 = wal__size(w);
	tw_append_n(w, 3, 3);
	cr_assert_eq(wal__sync(w), 0);
	f2 = wal__size(w);
	tw_append_n(w, 6, 3);
	cr_assert_eq(wal__sync(w), 0);
	f3 = wal__size(w);
	wal__close(w);

	tw_flip("wal-00000001", f1 + (f2 - f1) / 2);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 3);
	tw_expect_seq(&c, 0, 0, 3);
	cr_assert_eq(st.corrupt_frames, 1);
	cr_assert_eq(st.skipped_bytes, f3 - f1);
	snprintf(want, sizeof(want), "wal-00000001 offset %llu: bad CRC", (unsigned long long)f1);
	cr_assert_str_eq(st.first_error, want);
	tw_append_n(w, 50, 1);
	wal__close(w);
	tw_col_free(&c);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(c.n, 4);
	cr_assert_str_eq(c.recs[3], "record-00050");
	cr_assert_eq(st.corrupt_frames, 0);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, corrupt_middle_segment_skips_to_next)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	size_t len, len_after;
	uint8_t *buf;
	int rc;

	wal_segment_bytes = 100; /* a frame of 3 records is 64 bytes: one per segment */
	w = tw_reopen(NULL, &c, &st, &rc);
	for (unsigned int s = 0; s < 4; s++) {
		tw_append_n(w, s * 3, 3);
		cr_assert_eq(wal__sync(w), 0);
	}
	tw_append_n(w, 12, 3);
	cr_assert_eq(wal__sync(w), 0);
	wal__close(w);
	cr_assert_eq(tw_count("wal-"), 5);

	buf = tw_slurp("wal-00000002", &len);
	free(buf);
	tw_flip("wal-00000002", 20);
	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 12);
	tw_expect_seq(&c, 0, 0, 3);
	tw_expect_seq(&c, 3, 6, 9);
	cr_assert_eq(st.corrupt_frames, 1);
	cr_assert_eq(st.skipped_bytes, len);
	cr_assert_str_eq(st.first_error, "wal-00000002 offset 0: bad CRC");
	buf = tw_slurp("wal-00000002", &len_after);
	free(buf);
	cr_assert_eq(len_after, len, "a non-final segment is left for inspection");
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, zero_filled_tail)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	uint8_t zeros[4096] = { 0 };
	size_t len;
	uint8_t *buf;
	struct wal *w;
	int rc;

	w = tw_reopen(NULL, &c, &st, &rc);
	tw_append_n(w, 0, 3);
	wal__close(w);
	buf = tw_slurp("wal-00000001", &len);
	buf = realloc(buf, len + sizeof(zeros));
	memcpy(buf + len, zeros, sizeof(zeros));
	tw_spit("wal-00000001", buf, len + sizeof(zeros));
	free(buf);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(st.corrupt_frames, 1);
	cr_assert_eq(st.skipped_bytes, sizeof(zeros));
	cr_assert(strstr(st.first_error, "bad magic"), "%s", st.first_error);
	wal__close(w);
	tw_col_free(&c);
}

/* --- encryption ---------------------------------------------------------- */

static int tw_contains(const char *name, const char *needle)
{
	size_t len;
	uint8_t *buf = tw_slurp(name, &len);
	int found = memmem(buf, len, needle, strlen(needle)) != NULL;

	free(buf);
	return found;
}

Test(wal, encrypted_round_trip_hides_plaintext)
{
	struct tw_dump_ctx d = { .marker = "SECRET-CHECKPOINT-MARKER", .n = 3, .fail_after = -1 };
	const char *secret = "SECRET-RECORD-the-quick-brown-fox";
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	char ck[64];
	struct wal *w;
	int rc;

	w = tw_reopen(tw_key1, &c, &st, &rc);
	tw_append_n(w, 0, 3);
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d), 0);
	cr_assert_eq(wal__append(w, secret, strlen(secret)), 0);
	cr_assert_eq(wal__sync(w), 0);
	wal__close(w);

	tw_last("checkpoint-", ck, sizeof(ck));
	cr_assert_not(tw_contains(ck, "SECRET"));
	cr_assert_not(tw_contains(ck, "record-"));
	cr_assert_not(tw_contains("wal-00000003", "SECRET"));
	cr_assert_not(tw_contains("wal-00000001", "record-"));

	w = tw_reopen(tw_key1, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 5);
	cr_assert_str_eq(c.recs[0], d.marker);
	tw_expect_seq(&c, 1, 0, 3);
	cr_assert_str_eq(c.recs[4], secret);
	cr_assert_eq(st.corrupt_frames, 0);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, plaintext_is_visible_without_key)
{
	struct wal *w = tw_open(NULL);

	cr_assert_eq(wal__append(w, "PLAIN-MARKER", 12), 0);
	wal__close(w);
	cr_assert(tw_contains("wal-00000001", "PLAIN-MARKER"), "sanity check of tw_contains");
}

Test(wal, wrong_key_is_reported_and_log_untouched)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	size_t before, after;
	uint8_t *buf;
	struct wal *w;
	int rc;

	w = tw_reopen(tw_key1, &c, &st, &rc);
	tw_append_n(w, 0, 3);
	cr_assert_eq(wal__sync(w), 0);
	tw_append_n(w, 3, 3);
	wal__close(w);
	buf = tw_slurp("wal-00000001", &before);
	tw_spit("wal-00000001", buf, before - 5); /* and a torn tail */
	free(buf);
	before -= 5;

	w = tw_reopen(tw_key2, &c, &st, &rc);
	cr_assert_eq(rc, -EKEYREJECTED);
	cr_assert_eq(c.n, 0);
	cr_assert(strstr(st.first_error, "cannot decrypt WAL: wrong key?"), "%s", st.first_error);
	cr_assert_eq(wal__append(w, "x", 1), -EKEYREJECTED, "no writing over an unreadable log");
	wal__close(w);
	buf = tw_slurp("wal-00000001", &after);
	free(buf);
	cr_assert_eq(after, before, "nothing truncated under a wrong key");
	cr_assert_eq(tw_count("wal-"), 1);

	w = tw_reopen(NULL, &c, &st, &rc);
	cr_assert_eq(rc, -ENOKEY);
	cr_assert(strstr(st.first_error, "no key"), "%s", st.first_error);
	wal__close(w);

	w = tw_reopen(tw_key1, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(st.corrupt_frames, 1);
	wal__close(w);
	tw_col_free(&c);
}

Test(wal, wrong_key_on_checkpoint)
{
	struct tw_dump_ctx d = { .marker = "ck", .n = 3, .fail_after = -1 };
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	struct wal *w;
	int rc;

	w = tw_reopen(tw_key1, &c, &st, &rc);
	tw_append_n(w, 0, 3);
	cr_assert_eq(wal__checkpoint(w, tw_dump, &d), 0);
	wal__close(w);
	w = tw_reopen(tw_key2, &c, &st, &rc);
	cr_assert_eq(rc, -EKEYREJECTED);
	cr_assert_eq(c.n, 0);
	cr_assert(strstr(st.first_error, "wrong key"), "%s", st.first_error);
	wal__close(w);
	cr_assert_eq(tw_count("checkpoint-"), 1);
}

Test(wal, forged_frame_is_bad_tag)
{
	struct wal_replay_stats st;
	struct tw_col c = { 0 };
	uint64_t f1, f2;
	size_t len;
	uint8_t *buf;
	struct wal *w;
	int rc;

	w = tw_reopen(tw_key1, &c, &st, &rc);
	tw_append_n(w, 0, 3);
	cr_assert_eq(wal__sync(w), 0);
	f1 = wal__size(w);
	tw_append_n(w, 3, 3);
	cr_assert_eq(wal__sync(w), 0);
	f2 = wal__size(w);
	wal__close(w);

	/* Change ciphertext in frame 2 and fix its CRC: only the tag can tell. */
	buf = tw_slurp("wal-00000001", &len);
	buf[f1 + (f2 - f1) / 2] ^= 1;
	tw_fix_crc(buf, f1);
	tw_spit("wal-00000001", buf, len);
	free(buf);

	w = tw_reopen(tw_key1, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(st.corrupt_frames, 1);
	cr_assert(strstr(st.first_error, "bad tag"), "%s", st.first_error);
	wal__close(w);
	tw_col_free(&c);

	/* A plain flip is caught by the CRC before decryption. */
	w = tw_reopen(tw_key1, &c, &st, &rc);
	tw_append_n(w, 3, 3);
	wal__close(w);
	tw_col_free(&c);
	tw_flip("wal-00000002", 40);
	w = tw_reopen(tw_key1, &c, &st, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(c.n, 3);
	cr_assert_str_eq(st.first_error, "wal-00000002 offset 0: bad CRC");
	wal__close(w);
	tw_col_free(&c);
}

/* --- key files ----------------------------------------------------------- */

static int tw_key_file(const char *content, size_t len, mode_t mode, uint8_t key[WAL_KEY_BYTES],
		       char *err, size_t errlen)
{
	unlink(tw_path("key"));
	tw_spit("key", (const uint8_t *)content, len);
	cr_assert_eq(chmod(tw_path("key"), mode), 0);
	return wal_read_key(tw_path("key"), key, err, errlen);
}

Test(wal, key_file_parsing)
{
	const char *hex = "0123456789abcdef1032547698BADCFEa55a0ff011223344 5566778899aabbcc\n";
	uint8_t key[WAL_KEY_BYTES];
	char raw[WAL_KEY_BYTES];
	char err[256];

	cr_assert_eq(tw_key_file(hex, strlen(hex), 0600, key, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_empty(err);
	cr_assert_eq(memcmp(key, tw_key1, WAL_KEY_BYTES), 0);

	memcpy(raw, tw_key1, sizeof(raw));
	raw[5] = '\n'; /* raw keys may contain anything */
	memset(key, 0, sizeof(key));
	cr_assert_eq(tw_key_file(raw, sizeof(raw), 0400, key, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(key, raw, WAL_KEY_BYTES), 0);

	/* Readable by others: accepted, with a warning to log. */
	cr_assert_eq(tw_key_file(hex, strlen(hex), 0644, key, err, sizeof(err)), 0);
	cr_assert(strstr(err, "warning") && strstr(err, "0644"), "%s", err);

	cr_assert_eq(tw_key_file(raw, 31, 0600, key, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "expected 32 raw bytes or 64 hex characters"), "%s", err);
	cr_assert_eq(tw_key_file(hex, 63, 0600, key, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "62 hex digits"), "%s", err);
	cr_assert_eq(tw_key_file("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
				 64, 0600, key, err, sizeof(err)),
		     -EINVAL);
	cr_assert_eq(tw_key_file("", 0, 0600, key, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "empty"), "%s", err);
	cr_assert_eq(wal_read_key(tw_path("missing"), key, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "missing") && strstr(err, "No such file"), "%s", err);
	cr_assert_eq(wal_read_key(tw_dir, key, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not a regular file"), "%s", err);
}

/* --- kill -9 ------------------------------------------------------------- */

/* Record seq of the crash test: its number, then seq % 37 bytes of filler. */
static size_t tw_crash_rec(char *buf, unsigned int seq)
{
	int n = sprintf(buf, "seq:%08u:", seq);

	memset(buf + n, 'a' + seq % 26, seq % 37);
	return (size_t)n + seq % 37;
}

static int tw_crash_dump(wal_emit_fn emit, void *ectx, void *ctx)
{
	unsigned int n = *(unsigned int *)ctx;
	char buf[64];
	int err;

	for (unsigned int i = 0; i < n; i++) {
		err = emit(ectx, buf, tw_crash_rec(buf, i));
		if (err)
			return err;
	}
	return 0;
}

struct tw_crash_col {
	unsigned int n;
	int bad;
};

static int tw_crash_check(const void *rec, size_t len, void *ctx)
{
	struct tw_crash_col *cc = ctx;
	char buf[64];
	size_t want = tw_crash_rec(buf, cc->n);

	if (len != want || memcmp(rec, buf, len))
		cc->bad = 1;
	cc->n++;
	return 0;
}

/* The child: continue the sequence, ack each sync on fd, checkpoint now and then. */
static void tw_crash_child(int fd, const uint8_t *key)
{
	struct wal_opts o = { .dir = tw_dir, .key = key };
	struct tw_crash_col cc = { 0 };
	char err[256], buf[64];
	struct wal *w;

	wal_segment_bytes = 4096;
	w = wal__open(&o, err, sizeof(err));
	if (!w || wal__replay(w, tw_crash_check, &cc, NULL) || cc.bad)
		_exit(2);
	for (unsigned int iter = 0; iter < 1000000; iter++) {
		unsigned int k = 1 + iter % 5;

		for (unsigned int i = 0; i < k; i++)
			if (wal__append(w, buf, tw_crash_rec(buf, cc.n + i)))
				_exit(3);
		if (wal__sync(w))
			_exit(4);
		cc.n += k;
		if (write(fd, &cc.n, sizeof(cc.n)) != sizeof(cc.n))
			_exit(5);
		if (iter % 97 == 96 && wal__checkpoint(w, tw_crash_dump, &cc.n))
			_exit(6);
	}
	_exit(0);
}

static void tw_crash_rounds(const uint8_t *key, unsigned int rounds)
{
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	unsigned int acked = 0, total_acks = 0;

	for (unsigned int round = 0; round < rounds; round++) {
		struct wal_replay_stats st;
		struct tw_crash_col cc = { 0 };
		struct timespec t0, t;
		struct wal *w;
		int p[2], status;
		unsigned int v;
		long wait_ms = 5 + rand_r(&seed) % 80;
		pid_t pid;

		cr_assert_eq(pipe(p), 0);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(p[0]);
			tw_crash_child(p[1], key);
		}
		close(p[1]);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			struct pollfd pfd = { .fd = p[0], .events = POLLIN };
			long el;

			clock_gettime(CLOCK_MONOTONIC, &t);
			el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (el >= wait_ms)
				break;
			if (poll(&pfd, 1, (int)(wait_ms - el)) > 0 &&
			    read(p[0], &v, sizeof(v)) == sizeof(v)) {
				acked = v;
				total_acks++;
			}
		}
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "child exited with %d (seed %u)", WEXITSTATUS(status), seed);
		while (read(p[0], &v, sizeof(v)) == sizeof(v)) {
			acked = v;
			total_acks++;
		}
		close(p[0]);

		w = tw_open(key);
		cr_assert_eq(wal__replay(w, tw_crash_check, &cc, &st), 0, "%s", st.first_error);
		wal__close(w);
		cr_assert_not(cc.bad, "round %u: records out of sequence (seed %u)", round, seed);
		cr_assert_geq(cc.n, acked, "round %u: %u replayed < %u acknowledged (seed %u)",
			      round, cc.n, acked, seed);
		cr_log_info("round %u: %u acknowledged, %u replayed, torn: %s", round, acked, cc.n,
			    st.first_error[0] ? st.first_error : "no");
	}
	cr_assert_gt(total_acks, 0, "the child never got to sync (seed %u)", seed);
}

Test(wal, kill9_loses_no_acknowledged_record, .timeout = 300)
{
	tw_crash_rounds(NULL, 12);
}

Test(wal, kill9_encrypted, .timeout = 300)
{
	tw_crash_rounds(tw_key1, 6);
}
