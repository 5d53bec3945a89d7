/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write: the remote-write client (see remote_write.h).
 *
 * Three parties share one mutex: callers of remote_write__enqueue() fill the
 * current batch; the writer thread turns batches into queue files; the
 * sender thread POSTs the oldest file. The queue index (files[], oldest
 * first) lives in memory and mirrors the directory; the file being sent is
 * marked in flight so that the writer, making room, never deletes it.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "remote.pb-c.h"
#include "metrics.h"
#include "remote_write.h"

/* One sample with its labels copied: "name\0value\0name\0value\0", sorted by name. */
struct rw_sample {
	char *blob;
	size_t blob_len;
	size_t nlabels;
	int64_t t_ms;
	double v;
};

struct rw_batch {
	struct rw_batch *next;
	struct rw_sample *s;
	size_t n;
	size_t cap;
	int64_t born_ms; /* monotonic time of the first sample */
};

/* One queue file. */
struct rw_file {
	uint64_t seq;
	uint64_t samples;
	uint64_t bytes;
};

struct remote_write {
	char *url;
	char *dir;
	int dir_fd;
	uint64_t queue_max_bytes;
	size_t batch_max;
	int64_t delay_ms;
	int64_t timeout_ms;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	bool tls_skip_verify;
	struct curl_slist *headers;

	pthread_mutex_t lock;
	pthread_cond_t writer_cond;
	pthread_cond_t sender_cond;
	struct rw_batch *cur;
	struct rw_batch *full; /* oldest first */
	struct rw_batch *full_tail;
	size_t nfull;
	bool flush_req;
	struct rw_file *files; /* oldest first */
	size_t nfiles;
	size_t files_cap;
	bool inflight; /* files[0] is being sent */
	uint64_t next_seq;
	struct remote_write_stats st;
	atomic_bool stop;

	pthread_t writer;
	pthread_t sender;
	bool writer_started;
	bool sender_started;
};

static int64_t rw_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cond until the monotonic deadline (ms). */
static void rw_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ms)
{
	struct timespec ts = {
		.tv_sec = deadline_ms / 1000,
		.tv_nsec = (deadline_ms % 1000) * 1000000,
	};

	pthread_cond_timedwait(cond, lock, &ts);
}

static struct rw_batch *rw_batch__free(struct rw_batch *b)
{
	size_t i;

	if (!b)
		return NULL;
	for (i = 0; i < b->n; i++)
		free(b->s[i].blob);
	free(b->s);
	free(b);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* encoding */

/*
 * Encode a batch as a snappy-compressed WriteRequest, one TimeSeries per run
 * of samples with the same labels. Returns 0 with *out (malloc'd) or -ENOMEM.
 */
static int rw_encode(const struct rw_batch *b, char **out, size_t *outlen)
{
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries *ts = NULL, **tsp = NULL;
	Prometheus__Label *lab = NULL, **labp = NULL;
	Prometheus__Sample *smp = NULL, **smpp = NULL;
	size_t i, k, nts = 0, nl = 0, plen, clen;
	uint8_t *packed = NULL;
	char *comp = NULL;
	int err = -ENOMEM;

	for (i = 0; i < b->n; i++)
		nl += b->s[i].nlabels;
	ts = calloc(b->n ? b->n : 1, sizeof(*ts));
	tsp = calloc(b->n ? b->n : 1, sizeof(*tsp));
	lab = calloc(nl ? nl : 1, sizeof(*lab));
	labp = calloc(nl ? nl : 1, sizeof(*labp));
	smp = calloc(b->n ? b->n : 1, sizeof(*smp));
	smpp = calloc(b->n ? b->n : 1, sizeof(*smpp));
	if (!ts || !tsp || !lab || !labp || !smp || !smpp)
		goto cleanup;
	nl = 0;
	for (i = 0; i < b->n; i++) {
		const struct rw_sample *s = &b->s[i];
		Prometheus__TimeSeries *t;
		char *p = s->blob;

		if (!i || s->blob_len != b->s[i - 1].blob_len ||
		    memcmp(s->blob, b->s[i - 1].blob, s->blob_len)) {
			t = &ts[nts];
			prometheus__time_series__init(t);
			tsp[nts++] = t;
			t->labels = &labp[nl];
			t->n_labels = s->nlabels;
			t->samples = &smpp[i];
			for (k = 0; k < s->nlabels; k++) {
				prometheus__label__init(&lab[nl]);
				lab[nl].name = p;
				p += strlen(p) + 1;
				lab[nl].value = p;
				p += strlen(p) + 1;
				labp[nl] = &lab[nl];
				nl++;
			}
		}
		t = &ts[nts - 1];
		prometheus__sample__init(&smp[i]);
		smp[i].timestamp = s->t_ms;
		smp[i].value = s->v;
		smpp[i] = &smp[i];
		t->n_samples++;
	}
	wr.n_timeseries = nts;
	wr.timeseries = tsp;
	plen = prometheus__write_request__get_packed_size(&wr);
	packed = malloc(plen ? plen : 1);
	if (!packed)
		goto cleanup;
	prometheus__write_request__pack(&wr, packed);
	clen = snappy_max_compressed_length(plen);
	comp = malloc(clen);
	if (!comp)
		goto cleanup;
	if (snappy_compress((const char *)packed, plen, comp, &clen) != SNAPPY_OK) {
		err = -EIO;
		goto cleanup;
	}
	*out = comp;
	*outlen = clen;
	comp = NULL;
	err = 0;
cleanup:
	free(comp);
	free(packed);
	free(ts);
	free(tsp);
	free(lab);
	free(labp);
	free(smp);
	free(smpp);
	return err;
}

/* ------------------------------------------------------------------ */
/* the queue directory */

static void rw_file_name(char *buf, size_t len, const struct rw_file *f)
{
	snprintf(buf, len, "%016llx-%llu.rw", (unsigned long long)f->seq,
		 (unsigned long long)f->samples);
}

static int rw_file_cmp(const void *a, const void *b)
{
	const struct rw_file *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Remove files[i] from the index and the disk; the caller holds the lock. */
static void rw_file_remove(struct remote_write *rw, size_t i)
{
	char name[64];

	rw_file_name(name, sizeof(name), &rw->files[i]);
	unlinkat(rw->dir_fd, name, 0);
	rw->st.queued_bytes -= rw->files[i].bytes;
	rw->st.queued_files--;
	memmove(&rw->files[i], &rw->files[i + 1], (rw->nfiles - i - 1) * sizeof(*rw->files));
	rw->nfiles--;
}

static int rw_files_push(struct remote_write *rw, const struct rw_file *f)
{
	if (rw->nfiles == rw->files_cap) {
		size_t cap = rw->files_cap ? rw->files_cap * 2 : 64;
		struct rw_file *p = realloc(rw->files, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		rw->files = p;
		rw->files_cap = cap;
	}
	rw->files[rw->nfiles++] = *f;
	rw->st.queued_bytes += f->bytes;
	rw->st.queued_files++;
	return 0;
}

/* Index the files a previous run left; remove half-written ones. */
static int rw_scan(struct remote_write *rw)
{
	struct dirent *de;
	struct stat sb;
	DIR *d = NULL;
	int fd, err = 0;

	fd = dup(rw->dir_fd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((de = readdir(d))) {
		unsigned long long seq, n;
		struct rw_file f;
		char check[64];

		if (!strncmp(de->d_name, ".tmp-", 5)) {
			unlinkat(rw->dir_fd, de->d_name, 0);
			continue;
		}
		if (sscanf(de->d_name, "%16llx-%llu.rw", &seq, &n) != 2)
			continue;
		f.seq = seq;
		f.samples = n;
		rw_file_name(check, sizeof(check), &f);
		if (strcmp(check, de->d_name) || fstatat(rw->dir_fd, de->d_name, &sb, 0))
			continue;
		f.bytes = (uint64_t)sb.st_size;
		err = rw_files_push(rw, &f);
		if (err)
			break;
		if (seq >= rw->next_seq)
			rw->next_seq = seq + 1;
	}
	closedir(d);
	if (rw->nfiles > 1)
		qsort(rw->files, rw->nfiles, sizeof(*rw->files), rw_file_cmp);
	return err;
}

static int rw_write_all(int fd, const char *p, size_t n)
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

/* Encode b into a new queue file, making room by dropping the oldest files. */
static void rw_write_batch(struct remote_write *rw, struct rw_batch *b)
{
	char tmp[80], name[64], *body = NULL;
	struct rw_file f = { 0 };
	size_t len = 0;
	int fd = -1, err;

	if (!b->n)
		return;
	err = rw_encode(b, &body, &len);
	if (err)
		goto drop;
	pthread_mutex_lock(&rw->lock);
	f.seq = rw->next_seq++;
	/* make room: the oldest files go first, never the one in flight */
	while (rw->st.queued_bytes + len > rw->queue_max_bytes &&
	       rw->nfiles > (rw->inflight ? 1 : 0)) {
		size_t victim = rw->inflight ? 1 : 0;

		rw->st.dropped_samples += rw->files[victim].samples;
		rw->st.dropped_batches++;
		rw_file_remove(rw, victim);
	}
	/* Only the file in flight is left and it leaves no room: the bound holds, this batch goes. */
	if (rw->st.queued_bytes + len > rw->queue_max_bytes) {
		pthread_mutex_unlock(&rw->lock);
		goto drop;
	}
	pthread_mutex_unlock(&rw->lock);
	f.samples = b->n;
	f.bytes = len;
	rw_file_name(name, sizeof(name), &f);
	snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
	fd = openat(rw->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto drop;
	if (rw_write_all(fd, body, len) || fsync(fd) ||
	    renameat(rw->dir_fd, tmp, rw->dir_fd, name)) {
		unlinkat(rw->dir_fd, tmp, 0);
		goto drop;
	}
	close(fd);
	fd = -1;
	fsync(rw->dir_fd);
	pthread_mutex_lock(&rw->lock);
	if (rw_files_push(rw, &f)) {
		pthread_mutex_unlock(&rw->lock);
		/* the file stays on disk and is found on the next start */
		goto out;
	}
	pthread_cond_signal(&rw->sender_cond);
	pthread_mutex_unlock(&rw->lock);
	goto out;
drop:
	pthread_mutex_lock(&rw->lock);
	rw->st.dropped_samples += b->n;
	rw->st.dropped_batches++;
	pthread_mutex_unlock(&rw->lock);
out:
	if (fd >= 0)
		close(fd);
	free(body);
}

static void *rw_writer_main(void *arg)
{
	struct remote_write *rw = arg;
	struct rw_batch *take, *next;
	bool stopping;

	pthread_mutex_lock(&rw->lock);
	for (;;) {
		int64_t now = rw_mono_ms();

		stopping = atomic_load(&rw->stop);
		if (rw->cur && rw->cur->n &&
		    (stopping || rw->flush_req || now - rw->cur->born_ms >= rw->delay_ms)) {
			/* the current batch is due: move it to the full list */
			if (rw->full_tail)
				rw->full_tail->next = rw->cur;
			else
				rw->full = rw->cur;
			rw->full_tail = rw->cur;
			rw->nfull++;
			rw->cur = NULL;
		}
		rw->flush_req = false;
		if (rw->full) {
			take = rw->full;
			rw->full = rw->full_tail = NULL;
			rw->nfull = 0;
			pthread_mutex_unlock(&rw->lock);
			for (; take; take = next) {
				next = take->next;
				rw_write_batch(rw, take);
				rw_batch__free(take);
			}
			pthread_mutex_lock(&rw->lock);
			continue;
		}
		if (stopping)
			break;
		if (rw->cur && rw->cur->n)
			rw_wait_until(&rw->writer_cond, &rw->lock, rw->cur->born_ms + rw->delay_ms);
		else
			pthread_cond_wait(&rw->writer_cond, &rw->lock);
	}
	pthread_mutex_unlock(&rw->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* sending */

struct rw_reply {
	int64_t retry_after_ms; /* -1: none */
};

static size_t rw_header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct rw_reply *r = arg;
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
		r->retry_after_ms = secs * 1000;
		return len;
	}
	when = curl_getdate(val, NULL);
	if (when != (time_t)-1)
		r->retry_after_ms = when > time(NULL) ? (int64_t)(when - time(NULL)) * 1000 : 0;
	return len;
}

static size_t rw_discard_cb(char *buf, size_t size, size_t n, void *arg)
{
	(void)buf;
	(void)arg;
	return size * n;
}

static int rw_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct remote_write *rw = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&rw->stop) ? 1 : 0;
}

static int rw_read_file(struct remote_write *rw, const struct rw_file *f, char **out)
{
	char name[64], *buf = NULL;
	size_t got = 0;
	int fd, err = 0;

	rw_file_name(name, sizeof(name), f);
	fd = openat(rw->dir_fd, name, O_RDONLY | O_CLOEXEC);
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

/* POST one body. Returns the HTTP status, or 0 for a transport error. */
static long rw_post(struct remote_write *rw, CURL *c, const char *body, size_t len,
		    struct rw_reply *reply)
{
	long status = 0;

	reply->retry_after_ms = -1;
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, reply);
	if (curl_easy_perform(c) != CURLE_OK)
		return 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	(void)rw;
	return status;
}

static CURL *rw_curl_new(struct remote_write *rw)
{
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, rw->url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, rw->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)rw->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, rw_header_cb);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rw_discard_cb);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, rw_progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, rw);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "novamon/" NOVAMON_VERSION);
	if (rw->tls_skip_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return c;
}

static void *rw_sender_main(void *arg)
{
	struct remote_write *rw = arg;
	unsigned int seed = (unsigned int)rw_mono_ms() ^ (unsigned int)getpid();
	unsigned int attempt = 0;
	struct rw_reply reply;
	struct rw_file f;
	char *body = NULL;
	CURL *c;
	long status;
	int64_t wait;

	c = rw_curl_new(rw);
	pthread_mutex_lock(&rw->lock);
	while (!atomic_load(&rw->stop)) {
		if (!rw->nfiles || !c) {
			pthread_cond_wait(&rw->sender_cond, &rw->lock);
			continue;
		}
		f = rw->files[0];
		rw->inflight = true;
		pthread_mutex_unlock(&rw->lock);

		body = NULL;
		if (rw_read_file(rw, &f, &body)) {
			/* unreadable: nothing can ever send it */
			pthread_mutex_lock(&rw->lock);
			rw->inflight = false;
			rw->st.dropped_samples += f.samples;
			rw->st.dropped_batches++;
			rw_file_remove(rw, 0);
			continue;
		}
		status = rw_post(rw, c, body, f.bytes, &reply);
		free(body);

		pthread_mutex_lock(&rw->lock);
		rw->inflight = false;
		rw->st.last_status = (int)status;
		if (atomic_load(&rw->stop) && status == 0)
			break; /* aborted by stop: the file stays */
		if (status >= 200 && status < 300) {
			attempt = 0;
			rw->st.sent_samples += f.samples;
			rw->st.sent_batches++;
			rw_file_remove(rw, 0);
			continue;
		}
		rw->st.failed_requests++;
		if (status >= 400 && status < 500 && status != 429) {
			attempt = 0;
			rw->st.dropped_samples += f.samples;
			rw->st.dropped_batches++;
			rw_file_remove(rw, 0);
			continue;
		}
		/* 5xx, 429, transport error: back off and retry */
		rw->st.retries++;
		if (status && reply.retry_after_ms >= 0) {
			wait = reply.retry_after_ms;
		} else {
			wait = rw->backoff_min_ms;
			for (unsigned int i = 0; i < attempt && wait < rw->backoff_max_ms; i++)
				wait *= 2;
			if (wait > rw->backoff_max_ms)
				wait = rw->backoff_max_ms;
			wait = wait / 2 + (int64_t)(rand_r(&seed) % (unsigned int)(wait / 2 + 1));
		}
		if (wait > rw->backoff_max_ms)
			wait = rw->backoff_max_ms;
		attempt++;
		wait += rw_mono_ms();
		while (!atomic_load(&rw->stop) && rw_mono_ms() < wait)
			rw_wait_until(&rw->sender_cond, &rw->lock, wait);
	}
	pthread_mutex_unlock(&rw->lock);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* API */

struct remote_write *remote_write__start(const struct remote_write_opts *opts)
{
	struct remote_write *rw = NULL;
	pthread_condattr_t ca;
	size_t i;
	int err = -EINVAL;

	if (!opts || !opts->url || !opts->queue_dir || !opts->url[0] || !opts->queue_dir[0])
		goto fail;
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		err = -EIO;
		goto fail;
	}
	err = -ENOMEM;
	rw = calloc(1, sizeof(*rw));
	if (!rw)
		goto fail;
	rw->dir_fd = -1;
	pthread_mutex_init(&rw->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rw->writer_cond, &ca);
	pthread_cond_init(&rw->sender_cond, &ca);
	pthread_condattr_destroy(&ca);
	rw->url = strdup(opts->url);
	rw->dir = strdup(opts->queue_dir);
	if (!rw->url || !rw->dir)
		goto fail;
	rw->queue_max_bytes = opts->queue_max_bytes ? opts->queue_max_bytes :
						      REMOTE_WRITE_QUEUE_MAX_BYTES;
	rw->batch_max = opts->batch_max_samples ? opts->batch_max_samples :
						  REMOTE_WRITE_BATCH_MAX_SAMPLES;
	rw->delay_ms = opts->batch_max_delay_ms > 0 ? opts->batch_max_delay_ms :
						      REMOTE_WRITE_BATCH_MAX_DELAY_MS;
	rw->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : REMOTE_WRITE_TIMEOUT_MS;
	rw->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms :
							REMOTE_WRITE_BACKOFF_MIN_MS;
	rw->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms :
							REMOTE_WRITE_BACKOFF_MAX_MS;
	rw->tls_skip_verify = opts->tls_skip_verify;
	for (i = 0; i < opts->nheaders; i++) {
		struct curl_slist *h = curl_slist_append(rw->headers, opts->headers[i]);

		if (!h)
			goto fail;
		rw->headers = h;
	}
	{
		static const char *const fixed[] = {
			"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
			"X-Prometheus-Remote-Write-Version: 0.1.0",
			"Expect:", /* no 100-continue round trip */
		};
		for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			struct curl_slist *h = curl_slist_append(rw->headers, fixed[i]);

			if (!h)
				goto fail;
			rw->headers = h;
		}
	}
	if (mkdir(rw->dir, 0700) && errno != EEXIST) {
		err = -errno;
		goto fail;
	}
	rw->dir_fd = open(rw->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rw->dir_fd < 0) {
		err = -errno;
		goto fail;
	}
	err = rw_scan(rw);
	if (err)
		goto fail;
	err = -pthread_create(&rw->writer, NULL, rw_writer_main, rw);
	if (err)
		goto fail;
	rw->writer_started = true;
	err = -pthread_create(&rw->sender, NULL, rw_sender_main, rw);
	if (err)
		goto fail;
	rw->sender_started = true;
	return rw;
fail:
	remote_write__stop(rw);
	errno = -err;
	return NULL;
}

/* Copy labels (empty values dropped) sorted by name into one blob. */
static int rw_sample_init(struct rw_sample *s, const struct tsdb_label *labels, size_t nlabels)
{
	size_t order[TSDB_MAX_LABELS], i, j, n = 0, len = 0;
	bool name = false;
	char *p;

	if (nlabels > TSDB_MAX_LABELS)
		return -EINVAL;
	for (i = 0; i < nlabels; i++) {
		if (!labels[i].name || !labels[i].value || !labels[i].name[0])
			return -EINVAL;
		if (!labels[i].value[0])
			continue;
		if (!strcmp(labels[i].name, TSDB_NAME_LABEL))
			name = true;
		/* insertion sort by name */
		for (j = n; j > 0 && strcmp(labels[order[j - 1]].name, labels[i].name) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
		n++;
		len += strlen(labels[i].name) + strlen(labels[i].value) + 2;
	}
	if (!name)
		return -EINVAL;
	s->blob = malloc(len);
	if (!s->blob)
		return -ENOMEM;
	p = s->blob;
	for (i = 0; i < n; i++) {
		const struct tsdb_label *l = &labels[order[i]];
		size_t a = strlen(l->name) + 1, b = strlen(l->value) + 1;

		memcpy(p, l->name, a);
		memcpy(p + a, l->value, b);
		p += a + b;
	}
	s->blob_len = len;
	s->nlabels = n;
	return 0;
}

int remote_write__enqueue(struct remote_write *rw, const struct tsdb_label *labels, size_t nlabels,
			  int64_t t_ms, double v)
{
	struct rw_sample s;
	struct rw_batch *b;
	int err;

	if (!rw || (!labels && nlabels))
		return -EINVAL;
	err = rw_sample_init(&s, labels, nlabels);
	if (err)
		return err;
	s.t_ms = t_ms;
	s.v = v;
	pthread_mutex_lock(&rw->lock);
	if (rw->nfull >= REMOTE_WRITE_MAX_PENDING_BATCHES) {
		rw->st.dropped_samples++;
		err = -ENOBUFS;
		goto out;
	}
	b = rw->cur;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b)
			b->s = malloc(rw->batch_max * sizeof(*b->s));
		if (!b || !b->s) {
			free(b);
			err = -ENOMEM;
			goto out;
		}
		b->cap = rw->batch_max;
		b->born_ms = rw_mono_ms();
		rw->cur = b;
		/* the writer now has a deadline to wait for */
		pthread_cond_signal(&rw->writer_cond);
	}
	b->s[b->n++] = s;
	s.blob = NULL;
	if (b->n == b->cap) {
		if (rw->full_tail)
			rw->full_tail->next = b;
		else
			rw->full = b;
		rw->full_tail = b;
		rw->nfull++;
		rw->cur = NULL;
		pthread_cond_signal(&rw->writer_cond);
	}
out:
	pthread_mutex_unlock(&rw->lock);
	free(s.blob);
	return err;
}

void remote_write__flush(struct remote_write *rw)
{
	if (!rw)
		return;
	pthread_mutex_lock(&rw->lock);
	rw->flush_req = true;
	pthread_cond_signal(&rw->writer_cond);
	pthread_mutex_unlock(&rw->lock);
}

void remote_write__stats(struct remote_write *rw, struct remote_write_stats *st)
{
	struct rw_batch *b;

	pthread_mutex_lock(&rw->lock);
	*st = rw->st;
	st->pending_samples = rw->cur ? rw->cur->n : 0;
	for (b = rw->full; b; b = b->next)
		st->pending_samples += b->n;
	pthread_mutex_unlock(&rw->lock);
}

void remote_write__stop(struct remote_write *rw)
{
	struct rw_batch *b, *next;

	if (!rw)
		return;
	pthread_mutex_lock(&rw->lock);
	atomic_store(&rw->stop, true);
	pthread_cond_broadcast(&rw->writer_cond);
	pthread_cond_broadcast(&rw->sender_cond);
	pthread_mutex_unlock(&rw->lock);
	/* the writer drains the batches into queue files before it exits */
	if (rw->writer_started)
		pthread_join(rw->writer, NULL);
	if (rw->sender_started)
		pthread_join(rw->sender, NULL);
	for (b = rw->full; b; b = next) {
		next = b->next;
		rw_batch__free(b);
	}
	rw_batch__free(rw->cur);
	curl_slist_free_all(rw->headers);
	if (rw->dir_fd >= 0)
		close(rw->dir_fd);
	pthread_cond_destroy(&rw->writer_cond);
	pthread_cond_destroy(&rw->sender_cond);
	pthread_mutex_destroy(&rw->lock);
	free(rw->files);
	free(rw->url);
	free(rw->dir);
	free(rw);
}

/* The tick's samples into the client, and its counters into /metrics. */
static int rw_sink_sample(void *ctx, const struct tsdb_label *labels, size_t nlabels, int64_t t_ms,
			  double v)
{
	return remote_write__enqueue(ctx, labels, nlabels, t_ms, v);
}

static int rw_sink_flush(void *ctx, int64_t now_ms)
{
	(void)now_ms;
	remote_write__flush(ctx);
	return 0;
}

static int rw_sink_describe(void *ctx, struct metric_set *set)
{
	struct remote_write_stats st;

	remote_write__stats(ctx, &st);
	metric_set__add_value(set, "novamon_remote_write_queue_bytes",
			      "Bytes waiting in the remote-write queue on disk.", METRIC_GAUGE,
			      NULL, st.queued_bytes);
	metric_set__add_value(set, "novamon_remote_write_pending_samples",
			      "Samples in memory not yet written to the queue.", METRIC_GAUGE, NULL,
			      st.pending_samples);
	metric_set__add_value(set, "novamon_remote_write_sent_samples_total",
			      "Samples the backend acknowledged.", METRIC_COUNTER, NULL,
			      st.sent_samples);
	metric_set__add_value(set, "novamon_remote_write_failed_requests_total",
			      "Remote-write requests that failed (non-2xx or transport error).",
			      METRIC_COUNTER, NULL, st.failed_requests);
	metric_set__add_value(set, "novamon_remote_write_retries_total",
			      "Remote-write requests retried.", METRIC_COUNTER, NULL, st.retries);
	metric_set__add_value(set, "novamon_remote_write_dropped_samples_total",
			      "Samples dropped (4xx answers, queue overflow).", METRIC_COUNTER,
			      NULL, st.dropped_samples);
	return 0;
}

struct tick_sink remote_write__sink(struct remote_write *rw)
{
	return (struct tick_sink){
		.name = "remote_write",
		.sample = rw_sink_sample,
		.flush = rw_sink_flush,
		.describe = rw_sink_describe,
		.ctx = rw,
	};
}
