/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wal: the store's write-ahead log and checkpoints (see wal.h for the
 * contract).
 *
 * Files in the directory, one counter numbering both kinds:
 *
 *   wal-%08u         a log segment: frames, nothing else
 *   checkpoint-%08u  a snapshot covering every segment numbered below it
 *   *.tmp            a file being created; removed at open
 *
 * Every new segment or checkpoint takes the next number, so a checkpoint
 * numbered N covers the segments < N and replay reads the segments > N.
 *
 * Frame (all integers little-endian):
 *
 *   0  magic    "NVWL"
 *   4  version  1
 *   5  flags    WAL_F_ENCRYPTED | WAL_F_CHECKPOINT | WAL_F_END
 *   6  reserved 0 (u16)
 *   8  length   bytes of body after this 16-byte header (u32)
 *  12  crc      CRC32C (Castagnoli, table driven below) of bytes 0..11
 *               and of the body as stored (the ciphertext when encrypted)
 *  16  body     plaintext: records, each a u32 length then its bytes
 *               encrypted: nonce[12] | AES-256-GCM(records) | tag[16],
 *               with header bytes 0..11 as associated data
 *
 * A frame is atomic: its records are delivered all or none. The CRC is
 * checked before decryption, so a frame with a good CRC and a bad tag was
 * written with another key (or forged): if no frame of this replay has
 * authenticated yet that is reported as a wrong key, nothing is delivered
 * and nothing is truncated; once the key has proved right it is a corrupt
 * frame ("bad tag").
 *
 * A checkpoint file is the same frames with WAL_F_CHECKPOINT set, ending in
 * one WAL_F_END frame whose body holds the record count (u64), the frame
 * count (u32) and the checkpoint's own number (u32). It is validated in a
 * first pass (every frame, the end frame, the counts) before a second pass
 * delivers its records.
 *
 * Retention: the previous checkpoint and the segments after it are kept
 * until the next checkpoint, so that a checkpoint found corrupt at replay
 * can fall back to the previous one plus those segments without losing
 * anything. Writing checkpoint P with a previous checkpoint M deletes the
 * checkpoints other than P and M and the segments below M (with no previous
 * checkpoint nothing is deleted). The log therefore holds at most two
 * checkpoint intervals; wal__size() counts only the segments after the
 * latest checkpoint.
 *
 * Appends after an open always go to a new segment, created (temp file,
 * fsync, rename, fsync of the directory) at the first write; a torn tail
 * left by a crash is truncated by wal__replay() and never has frames after
 * it.
 *
 * Plaintext frames are accepted when a key is configured (a store turning
 * encryption on can still read its old log; the next checkpoint rewrites it
 * encrypted). Encryption protects confidentiality at rest; whoever can write
 * the directory can anyway delete or truncate the log.
 *
 * AES-GCM nonces are 96 random bits per frame (RAND_bytes); at one frame per
 * second the 2^32-frames-per-key bound for random nonces is 136 years away.
 *
 * Errors after an fdatasync() failure are sticky (-EIO from then on): the
 * kernel may have dropped the dirty pages, and a retry would report success
 * for data that is not on disk. The store must reopen the log.
 */
#include "tsdb/wal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define WAL_MAGIC "NVWL"
#define WAL_VERSION 1
#define WAL_HDR_BYTES 16
#define WAL_AAD_BYTES 12
#define WAL_NONCE_BYTES 12
#define WAL_TAG_BYTES 16
#define WAL_SEAL_BYTES (WAL_NONCE_BYTES + WAL_TAG_BYTES)
#define WAL_REC_HDR_BYTES 4
#define WAL_RECORD_MAX (16u << 20)
/* A frame is written once its records reach this many bytes. */
#define WAL_FRAME_FLUSH (1u << 20)
/* Largest body accepted at replay: one flush's worth plus a largest record. */
#define WAL_FRAME_MAX (WAL_FRAME_FLUSH + WAL_RECORD_MAX + WAL_REC_HDR_BYTES + WAL_SEAL_BYTES)
#define WAL_END_BYTES 16

#define WAL_F_ENCRYPTED 0x01
#define WAL_F_CHECKPOINT 0x02
#define WAL_F_END 0x04
#define WAL_F_KNOWN (WAL_F_ENCRYPTED | WAL_F_CHECKPOINT | WAL_F_END)

/*
 * Test hook: segments roll once they exceed this many bytes. Tests lower it
 * to exercise rolls without writing 64 MiB; nothing else may change it.
 */
uint64_t wal_segment_bytes = WAL_SEGMENT_BYTES;

enum wal_kind {
	WAL_SEG,
	WAL_CKPT,
};

/* Records of one frame under construction, after WAL_HDR_BYTES of room. */
struct wal_fbuf {
	uint8_t *buf;
	size_t len; /* header room included */
	size_t cap;
	uint64_t records;
};

struct wal_file {
	uint32_t no;
	enum wal_kind kind;
	uint64_t size;
};

struct wal {
	int dir_fd;
	bool encrypt;
	uint8_t key[WAL_KEY_BYTES];
	EVP_CIPHER_CTX *cctx;

	uint32_t max_no; /* highest number in use */
	bool has_ckpt; /* latest valid checkpoint known */
	uint32_t ckpt_no; /* its number */

	int seg_fd; /* segment appends go to, or -1 until the first write */
	uint32_t seg_no;
	uint64_t seg_size;
	bool seg_dirty; /* written since the last fdatasync */
	uint64_t log_bytes;

	struct wal_fbuf app; /* buffered appends */
	uint8_t *out; /* sealed frame */
	size_t out_cap;

	bool replayed; /* replay called or appends made: no replay any more */
	int sticky; /* -errno that disables the log, or 0 */
};

/* --- CRC32C (Castagnoli, reflected 0x82f63b78), slicing by 8 ------------ */

static uint32_t wal_crc_table[8][256];
static pthread_once_t wal_crc_once = PTHREAD_ONCE_INIT;

static void wal_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		wal_crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			wal_crc_table[t][i] = (wal_crc_table[t - 1][i] >> 8) ^
					      wal_crc_table[0][wal_crc_table[t - 1][i] & 0xff];
}

/* Continue a CRC32C: start with crc = 0, feed the result back for more. */
static uint32_t wal_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	pthread_once(&wal_crc_once, wal_crc_init);
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);

		crc = wal_crc_table[7][lo & 0xff] ^ wal_crc_table[6][(lo >> 8) & 0xff] ^
		      wal_crc_table[5][(lo >> 16) & 0xff] ^ wal_crc_table[4][lo >> 24] ^
		      wal_crc_table[3][p[4]] ^ wal_crc_table[2][p[5]] ^ wal_crc_table[1][p[6]] ^
		      wal_crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ wal_crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

/* --- small helpers ------------------------------------------------------ */

static void wal_put32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t wal_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wal_put64(uint8_t *p, uint64_t v)
{
	wal_put32(p, (uint32_t)v);
	wal_put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t wal_get64(const uint8_t *p)
{
	return (uint64_t)wal_get32(p) | (uint64_t)wal_get32(p + 4) << 32;
}

static void wal_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void wal_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *wal_prefix(enum wal_kind kind)
{
	return kind == WAL_SEG ? "wal" : "checkpoint";
}

static void wal_name(char *buf, size_t len, enum wal_kind kind, uint32_t no, bool tmp)
{
	snprintf(buf, len, "%s-%08u%s", wal_prefix(kind), no, tmp ? ".tmp" : "");
}

static int wal_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int wal_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Read exactly len bytes at off; -EIO on a short read. */
static int wal_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int wal_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : 4096;
	uint8_t *nbuf;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	nbuf = realloc(*buf, ncap);
	if (!nbuf)
		return -ENOMEM;
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

static void wal_fbuf_reset(struct wal_fbuf *fb)
{
	fb->len = WAL_HDR_BYTES;
	fb->records = 0;
}

static int wal_fbuf_add(struct wal_fbuf *fb, const void *rec, size_t len)
{
	int err;

	if (len > WAL_RECORD_MAX)
		return -EMSGSIZE;
	if (len && !rec)
		return -EINVAL;
	if (fb->len < WAL_HDR_BYTES)
		wal_fbuf_reset(fb);
	err = wal_reserve(&fb->buf, &fb->cap, fb->len + WAL_REC_HDR_BYTES + len);
	if (err)
		return err;
	wal_put32(fb->buf + fb->len, (uint32_t)len);
	if (len)
		memcpy(fb->buf + fb->len + WAL_REC_HDR_BYTES, rec, len);
	fb->len += WAL_REC_HDR_BYTES + len;
	fb->records++;
	return 0;
}

static bool wal_fbuf_empty(const struct wal_fbuf *fb)
{
	return fb->len <= WAL_HDR_BYTES;
}

static void wal_hdr_fill(uint8_t *hdr, uint8_t flags, uint32_t len)
{
	memcpy(hdr, WAL_MAGIC, 4);
	hdr[4] = WAL_VERSION;
	hdr[5] = flags;
	hdr[6] = 0;
	hdr[7] = 0;
	wal_put32(hdr + 8, len);
}

/*
 * Turn the records of fb into one frame with the given flags. Returns the
 * frame in *frame (fb's own buffer, or w->out when sealed; fb keeps its
 * plaintext so a failed write can be retried) and its size, or -errno.
 */
static int wal_seal(struct wal *w, struct wal_fbuf *fb, uint8_t flags, const uint8_t **frame,
		    size_t *frame_len)
{
	size_t plen = fb->len - WAL_HDR_BYTES;
	uint8_t *f, *nonce, *ct;
	int outl, err;

	if (!w->encrypt) {
		wal_hdr_fill(fb->buf, flags, (uint32_t)plen);
		wal_put32(fb->buf + WAL_AAD_BYTES, wal_crc32c(wal_crc32c(0, fb->buf, WAL_AAD_BYTES),
							      fb->buf + WAL_HDR_BYTES, plen));
		*frame = fb->buf;
		*frame_len = fb->len;
		return 0;
	}

	err = wal_reserve(&w->out, &w->out_cap, fb->len + WAL_SEAL_BYTES);
	if (err)
		return err;
	f = w->out;
	nonce = f + WAL_HDR_BYTES;
	ct = nonce + WAL_NONCE_BYTES;
	flags |= WAL_F_ENCRYPTED;
	wal_hdr_fill(f, flags, (uint32_t)(plen + WAL_SEAL_BYTES));
	if (RAND_bytes(nonce, WAL_NONCE_BYTES) != 1)
		return -EIO;
	if (EVP_EncryptInit_ex(w->cctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(w->cctx, EVP_CTRL_GCM_SET_IVLEN, WAL_NONCE_BYTES, NULL) != 1 ||
	    EVP_EncryptInit_ex(w->cctx, NULL, NULL, w->key, nonce) != 1 ||
	    EVP_EncryptUpdate(w->cctx, NULL, &outl, f, WAL_AAD_BYTES) != 1 ||
	    EVP_EncryptUpdate(w->cctx, ct, &outl, fb->buf + WAL_HDR_BYTES, (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(w->cctx, ct + plen, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(w->cctx, EVP_CTRL_GCM_GET_TAG, WAL_TAG_BYTES, ct + plen) != 1)
		return -EIO;
	wal_put32(f + WAL_AAD_BYTES, wal_crc32c(wal_crc32c(0, f, WAL_AAD_BYTES), f + WAL_HDR_BYTES,
						plen + WAL_SEAL_BYTES));
	*frame = f;
	*frame_len = fb->len + WAL_SEAL_BYTES;
	return 0;
}

static int wal_fsync_dir(struct wal *w)
{
	return fsync(w->dir_fd) ? -errno : 0;
}

/*
 * Create an empty file of that kind and number durably (temp file, fsync,
 * rename, fsync of the directory) when final; for a checkpoint, which is
 * filled before it is renamed, only open the temp file. Returns the fd or
 * -errno.
 */
static int wal_create(struct wal *w, enum wal_kind kind, uint32_t no, bool final)
{
	char tmp[64], name[64];
	int fd, err;

	wal_name(tmp, sizeof(tmp), kind, no, true);
	wal_name(name, sizeof(name), kind, no, false);
	unlinkat(w->dir_fd, tmp, 0);
	fd = openat(w->dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (!final)
		return fd;
	if (fsync(fd) || renameat(w->dir_fd, tmp, w->dir_fd, name)) {
		err = -errno;
		goto out_unlink;
	}
	err = wal_fsync_dir(w);
	if (err) {
		close(fd);
		return err;
	}
	return fd;

out_unlink:
	close(fd);
	unlinkat(w->dir_fd, tmp, 0);
	return err;
}

/* Write the buffered appends as one frame, rolling the segment if needed. */
static int wal_flush(struct wal *w)
{
	const uint8_t *frame;
	size_t flen;
	int err;

	if (wal_fbuf_empty(&w->app))
		return 0;
	err = wal_seal(w, &w->app, 0, &frame, &flen);
	if (err)
		return err;

	if (w->seg_fd >= 0 && w->seg_size && w->seg_size + flen > wal_segment_bytes) {
		if (w->seg_dirty && fdatasync(w->seg_fd)) {
			w->sticky = -EIO;
			return -EIO;
		}
		close(w->seg_fd);
		w->seg_fd = -1;
		w->seg_dirty = false;
	}
	if (w->seg_fd < 0) {
		int fd = wal_create(w, WAL_SEG, w->max_no + 1, true);

		if (fd < 0)
			return fd;
		w->seg_fd = fd;
		w->seg_no = ++w->max_no;
		w->seg_size = 0;
	}

	err = wal_pwrite_full(w->seg_fd, frame, flen, w->seg_size);
	if (err) {
		/* Keep the tail clean so a retry appends after whole frames. */
		if (ftruncate(w->seg_fd, (off_t)w->seg_size))
			w->sticky = -EIO;
		return err;
	}
	w->seg_size += flen;
	w->log_bytes += flen;
	w->seg_dirty = true;
	wal_fbuf_reset(&w->app);
	return 0;
}

/* --- directory scan ----------------------------------------------------- */

static int wal_file_cmp(const void *a, const void *b)
{
	const struct wal_file *x = a, *y = b;

	return x->no < y->no ? -1 : x->no > y->no;
}

/* Parse "wal-%08u" / "checkpoint-%08u" exactly; false for anything else. */
static bool wal_parse_name(const char *name, enum wal_kind *kind, uint32_t *no)
{
	const char *p;
	uint32_t v = 0;

	if (!strncmp(name, "wal-", 4)) {
		*kind = WAL_SEG;
		p = name + 4;
	} else if (!strncmp(name, "checkpoint-", 11)) {
		*kind = WAL_CKPT;
		p = name + 11;
	} else {
		return false;
	}
	if (strlen(p) != 8)
		return false;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = v * 10 + (uint32_t)(*p - '0');
	}
	*no = v;
	return true;
}

static bool wal_is_tmp(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && !strcmp(name + n - 4, ".tmp") &&
	       (!strncmp(name, "wal-", 4) || !strncmp(name, "checkpoint-", 11));
}

/*
 * List the segments and checkpoints in ascending order into *files (caller
 * frees); removes leftover temp files. Returns the count or -errno.
 */
static int wal_scan(struct wal *w, struct wal_file **files)
{
	struct wal_file *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int fd, err = 0;

	*files = NULL;
	fd = openat(w->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat stb;
		enum wal_kind kind;
		uint32_t no;

		if (wal_is_tmp(de->d_name)) {
			unlinkat(w->dir_fd, de->d_name, 0);
			continue;
		}
		if (!wal_parse_name(de->d_name, &kind, &no))
			continue;
		if (fstatat(w->dir_fd, de->d_name, &stb, 0)) {
			err = -errno;
			goto cleanup;
		}
		if (!S_ISREG(stb.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				goto cleanup;
			}
			v = nv;
		}
		v[n++] = (struct wal_file){ .no = no, .kind = kind, .size = (uint64_t)stb.st_size };
	}
	if (errno) {
		err = -errno;
		goto cleanup;
	}
	if (n)
		qsort(v, n, sizeof(*v), wal_file_cmp);
	*files = v;
	v = NULL;
	err = (int)n;
cleanup:
	free(v);
	closedir(d);
	return err;
}

/* Bytes of the segments numbered above the latest checkpoint. */
static void wal_recount(struct wal *w, const struct wal_file *files, int n)
{
	w->log_bytes = 0;
	for (int i = 0; i < n; i++)
		if (files[i].kind == WAL_SEG && (!w->has_ckpt || files[i].no > w->ckpt_no))
			w->log_bytes += files[i].size;
}

/* --- open / close ------------------------------------------------------- */

static int wal_mkdir_p(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (!len || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

struct wal *wal__open(const struct wal_opts *opts, char *err, size_t errlen)
{
	struct wal_file *files = NULL;
	struct wal *w = NULL;
	int n, ret;

	/* err is written only on failure: it may hold wal_read_key()'s warning. */
	if (!opts || !opts->dir || !*opts->dir) {
		wal_errf(err, errlen, "wal: no directory given");
		ret = -EINVAL;
		goto fail;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		wal_errf(err, errlen, "wal: out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	w->dir_fd = -1;
	w->seg_fd = -1;
	ret = wal_mkdir_p(opts->dir);
	if (ret) {
		wal_errf(err, errlen, "wal: cannot create %s: %s", opts->dir, strerror(-ret));
		goto fail;
	}
	w->dir_fd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		ret = -errno;
		wal_errf(err, errlen, "wal: cannot open %s: %s", opts->dir, strerror(-ret));
		goto fail;
	}
	if (opts->key) {
		w->encrypt = true;
		memcpy(w->key, opts->key, WAL_KEY_BYTES);
	}
	w->cctx = EVP_CIPHER_CTX_new();
	if (!w->cctx) {
		wal_errf(err, errlen, "wal: cannot allocate a cipher context");
		ret = -ENOMEM;
		goto fail;
	}
	n = wal_scan(w, &files);
	if (n < 0) {
		ret = n;
		wal_errf(err, errlen, "wal: cannot list %s: %s", opts->dir, strerror(-ret));
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		if (files[i].no > w->max_no)
			w->max_no = files[i].no;
		if (files[i].kind == WAL_CKPT) {
			w->has_ckpt = true;
			w->ckpt_no = files[i].no;
		}
	}
	if (w->max_no == UINT32_MAX) {
		wal_errf(err, errlen, "wal: %s: file numbers exhausted", opts->dir);
		ret = -EOVERFLOW;
		goto fail;
	}
	wal_recount(w, files, n);
	free(files);
	wal_fbuf_reset(&w->app);
	return w;

fail:
	free(files);
	if (w) {
		w->replayed = true;
		wal__close(w);
	}
	errno = -ret;
	return NULL;
}

void wal__close(struct wal *w)
{
	if (!w)
		return;
	wal__sync(w);
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	EVP_CIPHER_CTX_free(w->cctx);
	if (w->app.buf)
		OPENSSL_cleanse(w->app.buf, w->app.cap);
	if (w->out)
		OPENSSL_cleanse(w->out, w->out_cap);
	free(w->app.buf);
	free(w->out);
	OPENSSL_cleanse(w->key, sizeof(w->key));
	free(w);
}

/* --- append / sync ------------------------------------------------------ */

int wal__append(struct wal *w, const void *rec, size_t len)
{
	int err;

	if (!w)
		return -EINVAL;
	if (w->sticky)
		return w->sticky;
	w->replayed = true;
	err = wal_fbuf_add(&w->app, rec, len);
	if (err)
		return err;
	/*
	 * Bound the buffer: write a full frame now, fdatasync at the next sync.
	 * The record is buffered either way, so a failed write is left for
	 * wal__sync() to retry and report.
	 */
	if (w->app.len - WAL_HDR_BYTES >= WAL_FRAME_FLUSH)
		wal_flush(w);
	return w->sticky;
}

int wal__sync(struct wal *w)
{
	int err;

	if (!w)
		return -EINVAL;
	if (w->sticky)
		return w->sticky;
	err = wal_flush(w);
	if (err)
		return err;
	if (w->seg_dirty) {
		if (fdatasync(w->seg_fd)) {
			w->sticky = -EIO;
			return -EIO;
		}
		w->seg_dirty = false;
	}
	return 0;
}

uint64_t wal__size(const struct wal *w)
{
	return w ? w->log_bytes : 0;
}

/* --- checkpoint --------------------------------------------------------- */

struct wal_ckpt_writer {
	struct wal *w;
	int fd;
	struct wal_fbuf fb;
	uint64_t records;
	uint32_t frames;
};

static int wal_ckpt_flush(struct wal_ckpt_writer *cw, uint8_t flags)
{
	const uint8_t *frame;
	size_t flen;
	int err;

	err = wal_seal(cw->w, &cw->fb, WAL_F_CHECKPOINT | flags, &frame, &flen);
	if (err)
		return err;
	err = wal_write_full(cw->fd, frame, flen);
	if (err)
		return err;
	cw->frames++;
	wal_fbuf_reset(&cw->fb);
	return 0;
}

static int wal_ckpt_emit(void *ectx, const void *rec, size_t len)
{
	struct wal_ckpt_writer *cw = ectx;
	int err;

	err = wal_fbuf_add(&cw->fb, rec, len);
	if (err)
		return err;
	cw->records++;
	if (cw->fb.len - WAL_HDR_BYTES >= WAL_FRAME_FLUSH)
		return wal_ckpt_flush(cw, 0);
	return 0;
}

/* Delete what checkpoint `no` with previous checkpoint prev makes useless. */
static void wal_retire(struct wal *w, uint32_t no, bool has_prev, uint32_t prev)
{
	struct wal_file *files = NULL;
	char name[64];
	int n;

	if (!has_prev)
		return;
	n = wal_scan(w, &files);
	for (int i = 0; i < n; i++) {
		bool del;

		if (files[i].kind == WAL_CKPT)
			del = files[i].no != no && files[i].no != prev;
		else
			del = files[i].no < prev;
		if (!del)
			continue;
		wal_name(name, sizeof(name), files[i].kind, files[i].no, false);
		unlinkat(w->dir_fd, name, 0);
	}
	free(files);
}

int wal__checkpoint(struct wal *w, int (*dump)(wal_emit_fn emit, void *ectx, void *ctx), void *ctx)
{
	struct wal_ckpt_writer cw = { .w = w, .fd = -1 };
	char tmp[64], name[64];
	uint8_t end[WAL_END_BYTES];
	uint32_t no;
	int err;

	if (!w || !dump)
		return -EINVAL;
	if (w->sticky)
		return w->sticky;
	if (w->max_no >= UINT32_MAX - 1)
		return -EOVERFLOW;
	/* The records appended so far must be durable before the old log goes. */
	err = wal__sync(w);
	if (err)
		return err;
	w->replayed = true;

	no = w->max_no + 1;
	wal_name(tmp, sizeof(tmp), WAL_CKPT, no, true);
	wal_name(name, sizeof(name), WAL_CKPT, no, false);
	cw.fd = wal_create(w, WAL_CKPT, no, false);
	if (cw.fd < 0)
		return cw.fd;
	wal_fbuf_reset(&cw.fb);

	err = dump(wal_ckpt_emit, &cw, ctx);
	if (err)
		goto out_unlink;
	if (!wal_fbuf_empty(&cw.fb)) {
		err = wal_ckpt_flush(&cw, 0);
		if (err)
			goto out_unlink;
	}
	wal_put64(end, cw.records);
	wal_put32(end + 8, cw.frames);
	wal_put32(end + 12, no);
	err = wal_fbuf_add(&cw.fb, end, sizeof(end));
	if (err)
		goto out_unlink;
	err = wal_ckpt_flush(&cw, WAL_F_END);
	if (err)
		goto out_unlink;
	if (fsync(cw.fd) || renameat(w->dir_fd, tmp, w->dir_fd, name)) {
		err = -errno;
		goto out_unlink;
	}
	close(cw.fd);
	cw.fd = -1;
	err = wal_fsync_dir(w);
	if (err) {
		/* The rename may or may not be durable: the log stays as it is. */
		w->max_no = no;
		goto out_free;
	}

	w->max_no = no;
	if (w->seg_fd >= 0) {
		close(w->seg_fd);
		w->seg_fd = -1;
	}
	wal_retire(w, no, w->has_ckpt, w->ckpt_no);
	w->has_ckpt = true;
	w->ckpt_no = no;
	w->log_bytes = 0;
	err = 0;
	goto out_free;

out_unlink:
	unlinkat(w->dir_fd, tmp, 0);
out_free:
	if (cw.fd >= 0)
		close(cw.fd);
	if (cw.fb.buf)
		OPENSSL_cleanse(cw.fb.buf, cw.fb.cap);
	free(cw.fb.buf);
	return err;
}

/* --- replay ------------------------------------------------------------- */

enum wal_frame_res {
	WAL_FRAME_OK,
	WAL_FRAME_CORRUPT, /* reason in the reader's why */
};

struct wal_reader {
	struct wal *w;
	int fd;
	uint64_t size;
	char name[64];
	uint8_t *buf; /* frame as read, then plaintext body */
	size_t cap;
	const uint8_t *body; /* records of the last frame read */
	size_t body_len;
	uint8_t flags;
	const char *why;
	bool key_proven; /* a frame of this replay has authenticated */
	bool saw_encrypted;
};

/*
 * Read, check and open the frame at *off. On WAL_FRAME_OK, body/body_len
 * hold its records (checked to parse exactly) and *off moves past it. On
 * WAL_FRAME_CORRUPT, why says what. Returns -ENOKEY or -EKEYREJECTED when
 * the key cannot open the log, other -errno on I/O errors.
 */
static int wal_read_frame(struct wal_reader *r, uint64_t *off)
{
	struct wal *w = r->w;
	uint64_t left = r->size - *off;
	uint8_t *hdr, *body;
	uint32_t len, crc;
	size_t plen;
	int outl, err;

	if (left < WAL_HDR_BYTES) {
		r->why = "truncated frame header";
		return WAL_FRAME_CORRUPT;
	}
	err = wal_reserve(&r->buf, &r->cap, WAL_HDR_BYTES);
	if (err)
		return err;
	err = wal_pread_full(r->fd, r->buf, WAL_HDR_BYTES, *off);
	if (err)
		return err;
	hdr = r->buf;
	if (memcmp(hdr, WAL_MAGIC, 4)) {
		r->why = "bad magic";
		return WAL_FRAME_CORRUPT;
	}
	len = wal_get32(hdr + 8);
	if (len > WAL_FRAME_MAX) {
		r->why = "bad frame length";
		return WAL_FRAME_CORRUPT;
	}
	if (len > left - WAL_HDR_BYTES) {
		r->why = "truncated frame";
		return WAL_FRAME_CORRUPT;
	}
	err = wal_reserve(&r->buf, &r->cap, WAL_HDR_BYTES + (size_t)len);
	if (err)
		return err;
	hdr = r->buf;
	body = hdr + WAL_HDR_BYTES;
	err = wal_pread_full(r->fd, body, len, *off + WAL_HDR_BYTES);
	if (err)
		return err;
	crc = wal_crc32c(wal_crc32c(0, hdr, WAL_AAD_BYTES), body, len);
	if (crc != wal_get32(hdr + WAL_AAD_BYTES)) {
		r->why = "bad CRC";
		return WAL_FRAME_CORRUPT;
	}
	/* The CRC holds from here: a mismatch below is not a torn write. */
	if (hdr[4] != WAL_VERSION || (hdr[5] & ~WAL_F_KNOWN) || hdr[6] || hdr[7]) {
		r->why = "unsupported frame version or flags";
		return WAL_FRAME_CORRUPT;
	}
	r->flags = hdr[5];
	plen = len;
	if (r->flags & WAL_F_ENCRYPTED) {
		uint8_t *ct = body + WAL_NONCE_BYTES;

		r->saw_encrypted = true;
		if (!w->encrypt)
			return -ENOKEY;
		if (len < WAL_SEAL_BYTES) {
			r->why = "bad frame length";
			return WAL_FRAME_CORRUPT;
		}
		plen = len - WAL_SEAL_BYTES;
		/* In place: GCM is a stream mode, plaintext overwrites ciphertext. */
		if (EVP_DecryptInit_ex(w->cctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		    EVP_CIPHER_CTX_ctrl(w->cctx, EVP_CTRL_GCM_SET_IVLEN, WAL_NONCE_BYTES, NULL) !=
			    1 ||
		    EVP_DecryptInit_ex(w->cctx, NULL, NULL, w->key, body) != 1 ||
		    EVP_DecryptUpdate(w->cctx, NULL, &outl, hdr, WAL_AAD_BYTES) != 1 ||
		    EVP_DecryptUpdate(w->cctx, ct, &outl, ct, (int)plen) != 1 ||
		    EVP_CIPHER_CTX_ctrl(w->cctx, EVP_CTRL_GCM_SET_TAG, WAL_TAG_BYTES, ct + plen) !=
			    1)
			return -EIO;
		if (EVP_DecryptFinal_ex(w->cctx, ct + plen, &outl) != 1) {
			if (!r->key_proven)
				return -EKEYREJECTED;
			r->why = "bad tag (authentication failed)";
			return WAL_FRAME_CORRUPT;
		}
		r->key_proven = true;
		body = ct;
	}
	for (size_t p = 0; p < plen;) {
		uint32_t rlen;

		if (plen - p < WAL_REC_HDR_BYTES) {
			r->why = "bad record length";
			return WAL_FRAME_CORRUPT;
		}
		rlen = wal_get32(body + p);
		p += WAL_REC_HDR_BYTES;
		if (rlen > WAL_RECORD_MAX || rlen > plen - p) {
			r->why = "bad record length";
			return WAL_FRAME_CORRUPT;
		}
		p += rlen;
	}
	r->body = body;
	r->body_len = plen;
	*off += WAL_HDR_BYTES + len;
	return WAL_FRAME_OK;
}

/* Call fn for each record of the last frame read; returns fn's first non-zero. */
static int wal_deliver(struct wal_reader *r, int (*fn)(const void *, size_t, void *), void *ctx,
		       struct wal_replay_stats *st)
{
	for (size_t p = 0; p < r->body_len;) {
		uint32_t rlen = wal_get32(r->body + p);
		int ret;

		p += WAL_REC_HDR_BYTES;
		st->records++;
		ret = fn(r->body + p, rlen, ctx);
		if (ret)
			return ret;
		p += rlen;
	}
	return 0;
}

static int wal_reader_open(struct wal_reader *r, enum wal_kind kind, uint32_t no)
{
	struct stat stb;

	wal_name(r->name, sizeof(r->name), kind, no, false);
	r->fd = openat(r->w->dir_fd, r->name, O_RDWR | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (fstat(r->fd, &stb)) {
		int err = -errno;

		close(r->fd);
		r->fd = -1;
		return err;
	}
	r->size = (uint64_t)stb.st_size;
	return 0;
}

static void wal_reader_close(struct wal_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static void wal_report(struct wal_replay_stats *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void wal_report(struct wal_replay_stats *st, const char *fmt, ...)
{
	va_list ap;

	if (st->first_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(st->first_error, sizeof(st->first_error), fmt, ap);
	va_end(ap);
}

/* Message for a key error met in r at offset off; returns err. */
static int wal_key_error(struct wal_reader *r, uint64_t off, int err, struct wal_replay_stats *st)
{
	st->first_error[0] = '\0';
	if (err == -ENOKEY)
		wal_report(st, "WAL is encrypted but no key is configured (%s offset %llu)",
			   r->name, (unsigned long long)off);
	else
		wal_report(st,
			   "cannot decrypt WAL: wrong key? (%s offset %llu: authentication failed)",
			   r->name, (unsigned long long)off);
	return err;
}

/*
 * Validate checkpoint `no` completely. Returns 0 if it is whole, 1 if it is
 * corrupt (reported in st), or -errno (key errors included).
 */
static int wal_ckpt_check(struct wal_reader *r, uint32_t no, struct wal_replay_stats *st)
{
	uint64_t off = 0, records = 0;
	uint32_t frames = 0;
	bool end = false;
	int ret;

	ret = wal_reader_open(r, WAL_CKPT, no);
	if (ret)
		return ret;
	while (off < r->size) {
		ret = wal_read_frame(r, &off);
		if (ret < 0) {
			if (ret == -ENOKEY || ret == -EKEYREJECTED)
				wal_key_error(r, off, ret, st);
			goto out;
		}
		if (ret == WAL_FRAME_CORRUPT) {
			wal_report(st, "%s offset %llu: %s", r->name, (unsigned long long)off,
				   r->why);
			goto corrupt;
		}
		if (!(r->flags & WAL_F_CHECKPOINT) || end) {
			wal_report(st, "%s offset %llu: %s", r->name, (unsigned long long)off,
				   end ? "data after the end frame" : "not a checkpoint frame");
			goto corrupt;
		}
		if (r->flags & WAL_F_END) {
			if (r->body_len != WAL_REC_HDR_BYTES + WAL_END_BYTES ||
			    wal_get32(r->body) != WAL_END_BYTES ||
			    wal_get64(r->body + 4) != records ||
			    wal_get32(r->body + 12) != frames || wal_get32(r->body + 16) != no) {
				wal_report(st, "%s: end frame does not match its contents",
					   r->name);
				goto corrupt;
			}
			end = true;
			continue;
		}
		frames++;
		for (size_t p = 0; p < r->body_len; records++)
			p += WAL_REC_HDR_BYTES + wal_get32(r->body + p);
	}
	if (!end) {
		wal_report(st, "%s offset %llu: missing end frame", r->name,
			   (unsigned long long)off);
		goto corrupt;
	}
	ret = 0;
	goto out;
corrupt:
	st->corrupt_frames++;
	st->skipped_bytes += r->size;
	ret = 1;
out:
	wal_reader_close(r);
	return ret;
}

/* Deliver the records of a checkpoint that wal_ckpt_check() accepted. */
static int wal_ckpt_replay(struct wal_reader *r, uint32_t no,
			   int (*fn)(const void *, size_t, void *), void *ctx,
			   struct wal_replay_stats *st)
{
	uint64_t off = 0;
	int ret;

	ret = wal_reader_open(r, WAL_CKPT, no);
	if (ret)
		return ret;
	while (off < r->size) {
		ret = wal_read_frame(r, &off);
		if (ret == WAL_FRAME_CORRUPT)
			ret = -EIO; /* changed since it was checked */
		if (ret)
			break;
		st->frames++;
		if (r->flags & WAL_F_END)
			break;
		ret = wal_deliver(r, fn, ctx, st);
		if (ret)
			break;
	}
	wal_reader_close(r);
	return ret;
}

/*
 * Replay one segment. A corrupt frame ends it: reported, counted, and in the
 * last segment truncated away (fsynced) so the log ends in whole frames.
 */
static int wal_seg_replay(struct wal_reader *r, uint32_t no, bool last,
			  int (*fn)(const void *, size_t, void *), void *ctx,
			  struct wal_replay_stats *st)
{
	uint64_t off = 0;
	int ret;

	ret = wal_reader_open(r, WAL_SEG, no);
	if (ret)
		return ret;
	while (off < r->size) {
		ret = wal_read_frame(r, &off);
		if (ret < 0) {
			if (ret == -ENOKEY || ret == -EKEYREJECTED)
				wal_key_error(r, off, ret, st);
			goto out;
		}
		if (ret == WAL_FRAME_CORRUPT || (r->flags & (WAL_F_CHECKPOINT | WAL_F_END))) {
			const char *why =
				ret == WAL_FRAME_CORRUPT ? r->why : "checkpoint frame in a segment";

			st->corrupt_frames++;
			st->skipped_bytes += r->size - off;
			wal_report(st, "%s offset %llu: %s", r->name, (unsigned long long)off, why);
			ret = 0;
			if (last) {
				if (ftruncate(r->fd, (off_t)off) || fsync(r->fd))
					ret = -errno;
			}
			goto out;
		}
		st->frames++;
		ret = wal_deliver(r, fn, ctx, st);
		if (ret)
			goto out;
	}
	ret = 0;
out:
	wal_reader_close(r);
	return ret;
}

int wal__replay(struct wal *w, int (*fn)(const void *rec, size_t len, void *ctx), void *ctx,
		struct wal_replay_stats *st)
{
	struct wal_reader r = { .w = w, .fd = -1 };
	struct wal_replay_stats dummy;
	struct wal_file *files = NULL;
	bool chosen = false;
	uint32_t chosen_no = 0;
	int n, ret = 0, last_seg = -1;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (!w || !fn)
		return -EINVAL;
	if (w->sticky)
		return w->sticky;
	if (w->replayed)
		return -EINVAL;
	w->replayed = true;

	n = wal_scan(w, &files);
	if (n < 0)
		return n;

	for (int i = n - 1; i >= 0; i--) {
		if (files[i].kind != WAL_CKPT)
			continue;
		ret = wal_ckpt_check(&r, files[i].no, st);
		if (ret < 0)
			goto fail;
		if (ret == 0) {
			chosen = true;
			chosen_no = files[i].no;
			break;
		}
	}
	if (st->corrupt_frames) {
		size_t l = strlen(st->first_error);
		char ckpt[64];

		wal_name(ckpt, sizeof(ckpt), WAL_CKPT, chosen_no, false);
		snprintf(st->first_error + l, sizeof(st->first_error) - l, "; replaying from %s",
			 chosen ? ckpt : "the oldest segment");
	}
	w->has_ckpt = chosen;
	w->ckpt_no = chosen_no;
	wal_recount(w, files, n);

	if (chosen) {
		ret = wal_ckpt_replay(&r, chosen_no, fn, ctx, st);
		if (ret)
			goto fail;
	}
	for (int i = 0; i < n; i++)
		if (files[i].kind == WAL_SEG)
			last_seg = i;
	for (int i = 0; i < n; i++) {
		if (files[i].kind != WAL_SEG || (chosen && files[i].no < chosen_no))
			continue;
		ret = wal_seg_replay(&r, files[i].no, i == last_seg, fn, ctx, st);
		if (ret)
			goto fail;
	}
	free(files);
	/* Truncation may have shrunk the last segment. */
	n = wal_scan(w, &files);
	if (n >= 0)
		wal_recount(w, files, n);
	ret = 0;
fail:
	if (ret == -ENOKEY || ret == -EKEYREJECTED)
		w->sticky = ret; /* never write over a log this key cannot read */
	if (r.buf)
		OPENSSL_cleanse(r.buf, r.cap);
	free(r.buf);
	free(files);
	return ret;
}

/* --- key file ----------------------------------------------------------- */

static int wal_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Read a key file: exactly 32 raw bytes, or 64 hexadecimal characters
 * (either case) with any whitespace around or between them.
 *
 * Returns 0 with err "" on success; -errno with a message in err otherwise.
 * A key file that group or others may read is accepted (refusing would stop
 * a daemon over a permission an operator can fix later) but reported: the
 * function returns 0 with a warning in err, which the caller should log.
 */
int wal_read_key(const char *path, uint8_t key[WAL_KEY_BYTES], char *err, size_t errlen)
{
	uint8_t buf[4096], hex[2 * WAL_KEY_BYTES];
	size_t len = 0, nhex = 0;
	bool raw_ok, hex_ok = true;
	struct stat stb;
	int fd = -1, ret;

	wal_errf(err, errlen, "%s", "");
	if (!path || !key) {
		wal_errf(err, errlen, "key file: no path given");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		wal_errf(err, errlen, "key file %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &stb)) {
		ret = -errno;
		wal_errf(err, errlen, "key file %s: %s", path, strerror(-ret));
		goto out;
	}
	if (!S_ISREG(stb.st_mode)) {
		ret = -EINVAL;
		wal_errf(err, errlen, "key file %s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			wal_errf(err, errlen, "key file %s: %s", path, strerror(-ret));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf)) {
			ret = -EINVAL;
			wal_errf(
				err, errlen,
				"key file %s: too large (expected 32 raw bytes or 64 hex characters)",
				path);
			goto out;
		}
	}

	for (size_t i = 0; i < len; i++) {
		if (isspace(buf[i]))
			continue;
		if (wal_hexval(buf[i]) < 0)
			hex_ok = false;
		else if (nhex < sizeof(hex))
			hex[nhex] = buf[i];
		nhex++;
	}
	hex_ok = hex_ok && nhex == sizeof(hex);
	raw_ok = len == WAL_KEY_BYTES;
	if (hex_ok) {
		for (size_t i = 0; i < WAL_KEY_BYTES; i++)
			key[i] =
				(uint8_t)(wal_hexval(hex[2 * i]) << 4 | wal_hexval(hex[2 * i + 1]));
	} else if (raw_ok) {
		memcpy(key, buf, WAL_KEY_BYTES);
	} else {
		ret = -EINVAL;
		if (!len)
			wal_errf(err, errlen, "key file %s: empty", path);
		else
			wal_errf(
				err, errlen,
				"key file %s: expected 32 raw bytes or 64 hex characters, found %zu bytes (%zu hex digits)",
				path, len, nhex);
		goto out;
	}
	ret = 0;
	if (stb.st_mode & 077)
		wal_errf(
			err, errlen,
			"warning: key file %s is accessible by group or others (mode %04o); chmod 600 it",
			path, (unsigned int)(stb.st_mode & 07777));
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(hex, sizeof(hex));
	close(fd);
	return ret;
}
