/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool: the on-disk queue and its sender thread (see spool.h).
 *
 * Pushers and the sender share one mutex. The queue index (files[], oldest
 * first) lives in memory and mirrors the directory; the file being sent is
 * marked in flight so that a push, making room, never deletes it. Bytes of
 * pushes being written are reserved up front so that concurrent pushes
 * cannot overshoot max_bytes together.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

#define SPOOL_NAME_MAX 64

/* One queue file. */
struct spool_file {
	uint64_t seq;
	uint64_t items;
	uint64_t bytes;
	unsigned int enc; /* index into encodings */
};

struct spool {
	char *url;
	char *dir;
	int dir_fd;
	uint64_t max_bytes;
	int64_t timeout_ms;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	bool tls_skip_verify;
	char *ca_file;
	spool_retry_fn retryable;
	void (*on_reply)(void *ctx, const struct spool_reply *reply);
	void *ctx;
	char *ext[SPOOL_MAX_ENCODINGS];
	struct curl_slist *headers[SPOOL_MAX_ENCODINGS]; /* common + the encoding's */
	size_t nencodings;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* the sender waits for files, or out its backoff */
	struct spool_file *files; /* oldest first */
	size_t nfiles;
	size_t files_cap;
	bool inflight; /* files[0] is being sent */
	uint64_t reserved_bytes; /* of pushes being written */
	uint64_t next_seq;
	struct spool_stats st;
	atomic_bool stop;

	pthread_t sender;
	bool sender_started;
};

bool spool_retry_remote_write(long status)
{
	return status == 429 || status < 400 || status >= 500;
}

bool spool_retry_otlp(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

static int64_t spool_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cond until the monotonic deadline (ms). */
static void spool_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ms)
{
	struct timespec ts = {
		.tv_sec = deadline_ms / 1000,
		.tv_nsec = (deadline_ms % 1000) * 1000000,
	};

	pthread_cond_timedwait(cond, lock, &ts);
}

/* ------------------------------------------------------------------ */
/* the queue directory */

static void spool_file_name(const struct spool *sp, char *buf, size_t len,
			    const struct spool_file *f)
{
	snprintf(buf, len, "%016llx-%llu.%s", (unsigned long long)f->seq,
		 (unsigned long long)f->items, sp->ext[f->enc]);
}

static int spool_file_cmp(const void *a, const void *b)
{
	const struct spool_file *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Remove files[i] from the index and the disk; the caller holds the lock. */
static void spool_file_remove(struct spool *sp, size_t i)
{
	char name[SPOOL_NAME_MAX];

	spool_file_name(sp, name, sizeof(name), &sp->files[i]);
	unlinkat(sp->dir_fd, name, 0);
	sp->st.queued_bytes -= sp->files[i].bytes;
	sp->st.queued_items -= sp->files[i].items;
	sp->st.queued_files--;
	memmove(&sp->files[i], &sp->files[i + 1], (sp->nfiles - i - 1) * sizeof(*sp->files));
	sp->nfiles--;
}

/* Count files[i] as dropped for why and remove it; the caller holds the lock. */
static void spool_file_drop(struct spool *sp, size_t i, enum spool_drop why)
{
	sp->st.dropped_items[why] += sp->files[i].items;
	sp->st.dropped_files[why]++;
	spool_file_remove(sp, i);
}

static int spool_files_push(struct spool *sp, const struct spool_file *f)
{
	if (sp->nfiles == sp->files_cap) {
		size_t cap = sp->files_cap ? sp->files_cap * 2 : 64;
		struct spool_file *p = realloc(sp->files, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		sp->files = p;
		sp->files_cap = cap;
	}
	sp->files[sp->nfiles++] = *f;
	sp->st.queued_bytes += f->bytes;
	sp->st.queued_items += f->items;
	sp->st.queued_files++;
	return 0;
}

/* Parse "<16 hex>-<items>.<ext>" with a known ext; false for anything else. */
static bool spool_parse_name(const struct spool *sp, const char *name, struct spool_file *f)
{
	unsigned long long seq, items;
	char check[SPOOL_NAME_MAX];
	const char *dot;
	unsigned int e;

	if (sscanf(name, "%16llx-%llu.", &seq, &items) != 2)
		return false;
	dot = strchr(name, '.');
	if (!dot)
		return false;
	for (e = 0; e < sp->nencodings; e++) {
		if (strcmp(dot + 1, sp->ext[e]))
			continue;
		f->seq = seq;
		f->items = items;
		f->enc = e;
		/* only the canonical spelling: no leading '+', no extra zeros */
		spool_file_name(sp, check, sizeof(check), f);
		return !strcmp(check, name);
	}
	return false;
}

/* Index the files a previous run left; remove half-written ones. */
static int spool_scan(struct spool *sp)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd, err = 0;

	fd = dup(sp->dir_fd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((de = readdir(d))) {
		struct spool_file f;

		if (!strncmp(de->d_name, ".tmp-", 5)) {
			unlinkat(sp->dir_fd, de->d_name, 0);
			continue;
		}
		if (!spool_parse_name(sp, de->d_name, &f) ||
		    fstatat(sp->dir_fd, de->d_name, &sb, 0) || !S_ISREG(sb.st_mode))
			continue;
		f.bytes = (uint64_t)sb.st_size;
		err = spool_files_push(sp, &f);
		if (err)
			break;
		if (f.seq >= sp->next_seq)
			sp->next_seq = f.seq + 1;
	}
	closedir(d);
	if (sp->nfiles > 1)
		qsort(sp->files, sp->nfiles, sizeof(*sp->files), spool_file_cmp);
	return err;
}

static int spool_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write body to name through a temporary file, fsync'd and renamed. */
static int spool_write_file(struct spool *sp, const char *name, const void *body, size_t len)
{
	char tmp[SPOOL_NAME_MAX + 8];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
	fd = openat(sp->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = spool_write_all(fd, body, len);
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(sp->dir_fd, tmp, sp->dir_fd, name))
		err = -errno;
	if (err) {
		unlinkat(sp->dir_fd, tmp, 0);
		return err;
	}
	fsync(sp->dir_fd); /* the rename itself */
	return 0;
}

int spool__push(struct spool *sp, const void *body, size_t len, uint64_t items)
{
	char name[SPOOL_NAME_MAX];
	struct spool_file f = { .items = items, .bytes = len, .enc = 0 };
	enum spool_drop why = SPOOL_DROP_OVERFLOW;
	int err;

	if (!sp || !body || !len)
		return -EINVAL;
	pthread_mutex_lock(&sp->lock);
	if (len > sp->max_bytes) {
		err = -E2BIG;
		goto drop;
	}
	/* make room: the oldest files go first, never the one in flight */
	while (sp->st.queued_bytes + sp->reserved_bytes + len > sp->max_bytes &&
	       sp->nfiles > (sp->inflight ? 1u : 0u))
		spool_file_drop(sp, sp->inflight ? 1 : 0, SPOOL_DROP_OVERFLOW);
	/* only the file in flight (or other pushes) left, and no room: the bound holds, this goes */
	if (sp->st.queued_bytes + sp->reserved_bytes + len > sp->max_bytes) {
		err = -ENOSPC;
		goto drop;
	}
	f.seq = sp->next_seq++;
	sp->reserved_bytes += len;
	pthread_mutex_unlock(&sp->lock);

	spool_file_name(sp, name, sizeof(name), &f);
	err = spool_write_file(sp, name, body, len);

	pthread_mutex_lock(&sp->lock);
	sp->reserved_bytes -= len;
	if (err) {
		why = SPOOL_DROP_IO;
		goto drop;
	}
	/* on ENOMEM the file stays on disk and is found on the next start */
	err = spool_files_push(sp, &f);
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	return err;
drop:
	sp->st.dropped_items[why] += items;
	sp->st.dropped_files[why]++;
	pthread_mutex_unlock(&sp->lock);
	return err;
}

/* ------------------------------------------------------------------ */
/* sending */

struct spool_answer {
	struct spool *sp;
	int64_t retry_after_ms; /* -1: none */
	char *body; /* up to SPOOL_REPLY_MAX bytes, when the spool has on_reply */
	size_t body_len;
};

static size_t spool_header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct spool_answer *a = arg;
	size_t len = size * n;
	char val[128], *end;
	long long secs;
	time_t when;
	size_t vl;

	if (len < 12 || strncasecmp(buf, "Retry-After:", 12))
		return len;
	vl = len - 12 < sizeof(val) - 1 ? len - 12 : sizeof(val) - 1;
	memcpy(val, buf + 12, vl);
	val[vl] = '\0';
	while (vl && (val[vl - 1] == '\r' || val[vl - 1] == '\n' || val[vl - 1] == ' '))
		val[--vl] = '\0';
	end = val;
	while (*end == ' ' || *end == '\t')
		end++;
	secs = strtoll(end, &end, 10);
	if (end != val && !*end && secs >= 0) {
		a->retry_after_ms = secs * 1000;
		return len;
	}
	when = curl_getdate(val, NULL);
	if (when != (time_t)-1)
		a->retry_after_ms = when > time(NULL) ? (int64_t)(when - time(NULL)) * 1000 : 0;
	return len;
}

static size_t spool_body_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct spool_answer *a = arg;
	size_t len = size * n, keep;

	if (!a->sp->on_reply || a->body_len >= SPOOL_REPLY_MAX)
		return len;
	keep = len < SPOOL_REPLY_MAX - a->body_len ? len : SPOOL_REPLY_MAX - a->body_len;
	memcpy(a->body + a->body_len, buf, keep);
	a->body_len += keep;
	return len;
}

static int spool_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct spool *sp = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&sp->stop) ? 1 : 0;
}

static int spool_read_file(struct spool *sp, const struct spool_file *f, char **out)
{
	char name[SPOOL_NAME_MAX], *buf = NULL;
	size_t got = 0;
	int fd, err = 0;

	spool_file_name(sp, name, sizeof(name), f);
	fd = openat(sp->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(f->bytes ? f->bytes : 1);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	while (got < f->bytes) {
		ssize_t r = read(fd, buf + got, f->bytes - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EIO;
			goto cleanup;
		}
		got += (size_t)r;
	}
	*out = buf;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return err;
}

/* POST one file's body. Returns the HTTP status, or 0 for a transport error. */
static long spool_post(struct spool *sp, CURL *c, const struct spool_file *f, const char *body,
		       struct spool_answer *a)
{
	long status = 0;

	a->retry_after_ms = -1;
	a->body_len = 0;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sp->headers[f->enc]);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->bytes);
	if (curl_easy_perform(c) != CURLE_OK)
		return 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static CURL *spool_curl_new(struct spool *sp, struct spool_answer *a)
{
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, sp->url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sp->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, spool_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, spool_body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, spool_progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, sp);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "novamon/" NOVAMON_VERSION);
	if (sp->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, sp->ca_file);
	if (sp->tls_skip_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return c;
}

/* The wait before retry number attempt (0-based): Retry-After, else jittered backoff. */
static int64_t spool_backoff(const struct spool *sp, unsigned int attempt, int64_t retry_after_ms,
			     unsigned int *seed)
{
	int64_t wait;
	unsigned int i;

	if (retry_after_ms >= 0) {
		wait = retry_after_ms;
	} else {
		wait = sp->backoff_min_ms;
		for (i = 0; i < attempt && wait < sp->backoff_max_ms; i++)
			wait *= 2;
		if (wait > sp->backoff_max_ms)
			wait = sp->backoff_max_ms;
		wait = wait / 2 + (int64_t)(rand_r(seed) % (unsigned int)(wait / 2 + 1));
	}
	return wait < sp->backoff_max_ms ? wait : sp->backoff_max_ms;
}

static void *spool_sender_main(void *arg)
{
	struct spool *sp = arg;
	unsigned int seed = (unsigned int)spool_mono_ms() ^ (unsigned int)getpid();
	struct spool_answer a = { .sp = sp };
	unsigned int attempt = 0;
	struct spool_reply reply;
	struct spool_file f;
	char *body;
	CURL *c = NULL;
	long status;
	int64_t until;

	if (sp->on_reply)
		a.body = malloc(SPOOL_REPLY_MAX);
	if (!sp->on_reply || a.body)
		c = spool_curl_new(sp, &a);
	pthread_mutex_lock(&sp->lock);
	while (!atomic_load(&sp->stop)) {
		if (!sp->nfiles || !c) {
			pthread_cond_wait(&sp->cond, &sp->lock);
			continue;
		}
		f = sp->files[0];
		sp->inflight = true;
		pthread_mutex_unlock(&sp->lock);

		body = NULL;
		if (spool_read_file(sp, &f, &body)) {
			/* unreadable: nothing can ever send it */
			pthread_mutex_lock(&sp->lock);
			sp->inflight = false;
			spool_file_drop(sp, 0, SPOOL_DROP_IO);
			continue;
		}
		status = spool_post(sp, c, &f, body, &a);
		free(body);
		if (atomic_load(&sp->stop) && status == 0) {
			pthread_mutex_lock(&sp->lock);
			break; /* aborted by stop: the file stays */
		}
		if (sp->on_reply) {
			reply = (struct spool_reply){
				.status = status,
				.retry_after_ms = a.retry_after_ms,
				.body = a.body,
				.body_len = a.body_len,
				.items = f.items,
			};
			sp->on_reply(sp->ctx, &reply);
		}

		pthread_mutex_lock(&sp->lock);
		sp->inflight = false;
		sp->st.last_status = (int)status;
		if (status >= 200 && status < 300) {
			attempt = 0;
			sp->st.sent_items += f.items;
			sp->st.sent_files++;
			spool_file_remove(sp, 0);
			continue;
		}
		sp->st.failed_requests++;
		if (status && !sp->retryable(status)) {
			attempt = 0;
			spool_file_drop(sp, 0, SPOOL_DROP_REFUSED);
			continue;
		}
		/* retryable answer or transport error: back off and retry */
		sp->st.retries++;
		until = spool_mono_ms() +
			spool_backoff(sp, attempt, status ? a.retry_after_ms : -1, &seed);
		attempt++;
		while (!atomic_load(&sp->stop) && spool_mono_ms() < until)
			spool_wait_until(&sp->cond, &sp->lock, until);
	}
	sp->inflight = false;
	pthread_mutex_unlock(&sp->lock);
	if (c)
		curl_easy_cleanup(c);
	free(a.body);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* API */

static bool spool_ext_ok(const char *ext)
{
	size_t i;

	if (!ext || !ext[0] || strlen(ext) > 8)
		return false;
	for (i = 0; ext[i]; i++)
		if (!((ext[i] >= 'a' && ext[i] <= 'z') || (ext[i] >= '0' && ext[i] <= '9')))
			return false;
	return true;
}

static int spool_headers_init(struct spool *sp, const struct spool_opts *opts)
{
	size_t e, i;

	for (e = 0; e < sp->nencodings; e++) {
		const char *enc = opts->encodings[e].header;
		struct curl_slist *h;

		sp->ext[e] = strdup(opts->encodings[e].ext);
		if (!sp->ext[e])
			return -ENOMEM;
		for (i = 0; i <= opts->nheaders; i++) {
			const char *line = i < opts->nheaders ? opts->headers[i] : enc;

			if (!line)
				continue;
			h = curl_slist_append(sp->headers[e], line);
			if (!h)
				return -ENOMEM;
			sp->headers[e] = h;
		}
		/* no 100-continue round trip */
		h = curl_slist_append(sp->headers[e], "Expect:");
		if (!h)
			return -ENOMEM;
		sp->headers[e] = h;
	}
	return 0;
}

struct spool *spool__start(const struct spool_opts *opts)
{
	struct spool *sp = NULL;
	pthread_condattr_t ca;
	size_t e;
	int err = -EINVAL;

	if (!opts || !opts->url || !opts->dir || !opts->url[0] || !opts->dir[0] ||
	    !opts->max_bytes || !opts->encodings || !opts->nencodings ||
	    opts->nencodings > SPOOL_MAX_ENCODINGS || (opts->nheaders && !opts->headers))
		goto fail;
	for (e = 0; e < opts->nencodings; e++)
		if (!spool_ext_ok(opts->encodings[e].ext))
			goto fail;
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		err = -EIO;
		goto fail;
	}
	err = -ENOMEM;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		goto fail;
	sp->dir_fd = -1;
	pthread_mutex_init(&sp->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->cond, &ca);
	pthread_condattr_destroy(&ca);
	sp->nencodings = opts->nencodings;
	sp->url = strdup(opts->url);
	sp->dir = strdup(opts->dir);
	sp->ca_file = opts->ca_file && opts->ca_file[0] ? strdup(opts->ca_file) : NULL;
	if (!sp->url || !sp->dir || (opts->ca_file && opts->ca_file[0] && !sp->ca_file))
		goto fail;
	sp->max_bytes = opts->max_bytes;
	sp->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : SPOOL_TIMEOUT_MS;
	sp->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms : SPOOL_BACKOFF_MIN_MS;
	sp->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : SPOOL_BACKOFF_MAX_MS;
	sp->tls_skip_verify = opts->tls_skip_verify;
	sp->retryable = opts->retryable ? opts->retryable : spool_retry_remote_write;
	sp->on_reply = opts->on_reply;
	sp->ctx = opts->ctx;
	err = spool_headers_init(sp, opts);
	if (err)
		goto fail;
	if (mkdir(sp->dir, 0700) && errno != EEXIST) {
		err = -errno;
		goto fail;
	}
	sp->dir_fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dir_fd < 0) {
		err = -errno;
		goto fail;
	}
	err = spool_scan(sp);
	if (err)
		goto fail;
	err = -pthread_create(&sp->sender, NULL, spool_sender_main, sp);
	if (err)
		goto fail;
	sp->sender_started = true;
	return sp;
fail:
	spool__stop(sp);
	errno = -err;
	return NULL;
}

void spool__stats(struct spool *sp, struct spool_stats *st)
{
	pthread_mutex_lock(&sp->lock);
	*st = sp->st;
	pthread_mutex_unlock(&sp->lock);
}

void spool__stop(struct spool *sp)
{
	size_t e;

	if (!sp)
		return;
	pthread_mutex_lock(&sp->lock);
	atomic_store(&sp->stop, true);
	pthread_cond_broadcast(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	if (sp->sender_started)
		pthread_join(sp->sender, NULL);
	for (e = 0; e < SPOOL_MAX_ENCODINGS; e++) {
		curl_slist_free_all(sp->headers[e]);
		free(sp->ext[e]);
	}
	if (sp->dir_fd >= 0)
		close(sp->dir_fd);
	pthread_cond_destroy(&sp->cond);
	pthread_mutex_destroy(&sp->lock);
	free(sp->files);
	free(sp->url);
	free(sp->dir);
	free(sp->ca_file);
	free(sp);
}
