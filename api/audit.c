/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit: the hash-chained log of administrative actions (see audit.h).
 *
 * Records are rendered by hand in one fixed canonical form (key order, no
 * blanks, every byte outside printable ASCII escaped as \u00XX), so the
 * bytes that were hashed are exactly the bytes on disk and any JSON reader
 * can parse them. Verification works on those bytes, never on a re-render.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "fsutil.h"
#include "auth.h"
#include "log.h"
#include "prom_api.h"

#define AUDIT_HASH_HEX 64
/* ,"hash":"<64 hex>"} */
#define AUDIT_SUFFIX_LEN (9 + AUDIT_HASH_HEX + 2)
#define AUDIT_FIELD_MAX 512
#define AUDIT_DEFAULT_LIMIT 100
#define AUDIT_MAX_LIMIT 10000
#define AUDIT_SEGMENT "audit.segment"

static const char audit_zero_hash[AUDIT_HASH_HEX + 1] =
	"0000000000000000000000000000000000000000000000000000000000000000";

struct audit {
	pthread_mutex_t lock;
	int fd;
	char dir[512];
	char path[600];
	uint64_t seq; /* the newest record's */
	char hash[AUDIT_HASH_HEX + 1];
	atomic_bool failing; /* the last append failed (logged once) */
};

/* ------------------------------------------------------------------ */
/* rendering */

struct audit_buf {
	char p[AUDIT_MAX_RECORD];
	size_t len;
	bool full;
};

static void audit_putn(struct audit_buf *b, const char *s, size_t n)
{
	if (b->len + n >= sizeof(b->p)) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void audit_puts(struct audit_buf *b, const char *s)
{
	audit_putn(b, s, strlen(s));
}

/* s as a JSON string, at most AUDIT_FIELD_MAX bytes of it. */
static void audit_putstr(struct audit_buf *b, const char *s)
{
	size_t i;

	audit_putn(b, "\"", 1);
	for (i = 0; s && s[i] && i < AUDIT_FIELD_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			audit_putn(b, esc, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			audit_putn(b, esc, 6);
		} else {
			audit_putn(b, (const char *)&c, 1);
		}
	}
	audit_putn(b, "\"", 1);
}

static void audit_hex(const unsigned char *md, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256(prev || body[0..n) || "}") as hex into out (65 bytes). Returns 0 or -ENOMEM. */
static int audit_hash(const char *prev, const char *body, size_t n, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, prev, AUDIT_HASH_HEX) == 1 &&
	     EVP_DigestUpdate(ctx, body, n) == 1 && EVP_DigestUpdate(ctx, "}", 1) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -ENOMEM;
	audit_hex(md, mdlen, out);
	return 0;
}

static void audit_format_time(int64_t ms, char *out, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int64_t audit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Render record seq after prev into b as a whole line ending in '\n', and
 * its hash into hash. Returns 0, -E2BIG or -ENOMEM.
 */
static int audit_render(struct audit_buf *b, uint64_t seq, const char *prev,
			const struct audit_entry *e, char *hash)
{
	char num[32], when[64];
	size_t body;
	int err;

	b->len = 0;
	b->full = false;
	b->p[0] = '\0';
	audit_format_time(e->time_ms > 0 ? e->time_ms : audit_now_ms(), when, sizeof(when));
	snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
	audit_puts(b, "{\"seq\":");
	audit_puts(b, num);
	audit_puts(b, ",\"time\":");
	audit_putstr(b, when);
	audit_puts(b, ",\"actor\":{\"subject\":");
	audit_putstr(b, e->subject);
	audit_puts(b, ",\"role\":");
	audit_putstr(b, e->role);
	audit_puts(b, ",\"tenant\":");
	audit_putstr(b, e->tenant);
	audit_puts(b, "},\"remote_addr\":");
	audit_putstr(b, e->remote_addr);
	audit_puts(b, ",\"action\":");
	audit_putstr(b, e->action);
	audit_puts(b, ",\"target\":");
	audit_putstr(b, e->target);
	snprintf(num, sizeof(num), "%d", e->result);
	audit_puts(b, ",\"result\":");
	audit_puts(b, num);
	audit_puts(b, ",\"prev_hash\":\"");
	audit_puts(b, prev);
	audit_puts(b, "\"");
	if (b->full)
		return -E2BIG;
	body = b->len;
	err = audit_hash(prev, b->p, body, hash);
	if (err)
		return err;
	audit_puts(b, ",\"hash\":\"");
	audit_puts(b, hash);
	audit_puts(b, "\"}\n");
	return b->full ? -E2BIG : 0;
}

/* ------------------------------------------------------------------ */
/* verification */

static bool audit_is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * Check one line (without its '\n') against the chain so far (*seq, prev;
 * first: no record yet). On success advance *seq and prev. Returns 0 or
 * -EBADMSG.
 */
static int audit_check_line(char *line, size_t len, bool first, uint64_t *seq, char *prev)
{
	char want[AUDIT_HASH_HEX + 1], *stored;
	const char *ph, *action;
	json_t *rec = NULL, *v;
	size_t body;
	uint64_t s;
	int rc = -EBADMSG;

	if (len < AUDIT_SUFFIX_LEN + 2)
		return -EBADMSG;
	body = len - AUDIT_SUFFIX_LEN;
	stored = line + body + 9;
	if (memcmp(line + body, ",\"hash\":\"", 9) || !audit_is_hex(stored, AUDIT_HASH_HEX) ||
	    memcmp(line + len - 2, "\"}", 2))
		return -EBADMSG;
	/* parse the canonical body: the line with its hash member cut off */
	line[body] = '}';
	rec = json_loadb(line, body + 1, JSON_REJECT_DUPLICATES, NULL);
	line[body] = ',';
	v = rec ? json_object_get(rec, "seq") : NULL;
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		goto out;
	s = (uint64_t)json_integer_value(v);
	v = json_object_get(rec, "prev_hash");
	ph = json_string_value(v);
	action = json_string_value(json_object_get(rec, "action"));
	if (!ph || strlen(ph) != AUDIT_HASH_HEX || !audit_is_hex(ph, AUDIT_HASH_HEX) || !action)
		goto out;
	if (first) {
		/* a chain starts at seq 1 from zeros, or at a segment record */
		if (!(s == 1 && !strcmp(ph, audit_zero_hash)) && strcmp(action, AUDIT_SEGMENT))
			goto out;
	} else if (s != *seq + 1 || strcmp(ph, prev)) {
		goto out;
	}
	if (audit_hash(ph, line, body, want) || memcmp(want, stored, AUDIT_HASH_HEX))
		goto out;
	*seq = s;
	memcpy(prev, want, sizeof(want));
	rc = 0;
out:
	json_decref(rec);
	return rc;
}

int audit__verify(const char *path, uint64_t *bad_seq, uint64_t *last_seq, char *last_hash)
{
	char prev[AUDIT_HASH_HEX + 1];
	char *line = NULL;
	size_t cap = 0;
	uint64_t seq = 0;
	ssize_t n;
	bool first = true;
	FILE *f;
	int rc = 0;

	memcpy(prev, audit_zero_hash, sizeof(prev));
	if (bad_seq)
		*bad_seq = 0;
	f = fopen(path, "re");
	if (!f) {
		rc = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		/* a last line without its newline is a torn write */
		if (line[n - 1] != '\n' || n - 1 > AUDIT_MAX_RECORD ||
		    audit_check_line(line, (size_t)n - 1, first, &seq, prev)) {
			rc = -EBADMSG;
			if (bad_seq)
				*bad_seq = seq + 1;
			break;
		}
		first = false;
	}
	if (!rc && ferror(f))
		rc = -EIO;
	fclose(f);
out:
	free(line);
	if (last_seq)
		*last_seq = seq;
	if (last_hash)
		memcpy(last_hash, prev, sizeof(prev));
	return rc;
}

/* ------------------------------------------------------------------ */
/* the log */

static void audit_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Write and fsync one rendered record at the end of the file. Returns 0 or -errno. */
static int audit_write(struct audit *a, const struct audit_buf *b)
{
	ssize_t n;

	do {
		n = write(a->fd, b->p, b->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != b->len)
		return -EIO; /* torn: the next open starts a new segment */
	if (fsync(a->fd))
		return -errno;
	return 0;
}

/* Move a broken log aside as evidence. Returns 0 or -errno; moved_to gets the name. */
static int audit_move_aside(struct audit *a, char *moved_to, size_t len)
{
	char when[32];
	struct tm tm;
	time_t now = time(NULL);
	int i;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	for (i = 0; i < 100; i++) {
		struct stat st;

		int n;

		if (i)
			n = snprintf(moved_to, len, "%s/audit-broken-%s-%d.log", a->dir, when, i);
		else
			n = snprintf(moved_to, len, "%s/audit-broken-%s.log", a->dir, when);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		if (stat(moved_to, &st) && errno == ENOENT)
			break;
	}
	if (rename(a->path, moved_to))
		return -errno;
	audit_sync_dir(a->dir);
	return 0;
}

struct audit *audit__open(const char *dir, struct audit_open_report *report, char *err,
			  size_t errlen)
{
	struct audit_open_report rep = { 0 };
	struct audit *a = NULL;
	uint64_t bad = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!dir || !dir[0] || strlen(dir) >= sizeof(a->dir)) {
		rc = -EINVAL;
		goto fail;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		rc = -ENOMEM;
		goto fail;
	}
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	atomic_init(&a->failing, false);
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	snprintf(a->path, sizeof(a->path), "%s/%s", dir, AUDIT_FILE);
	rc = fsutil_mkdirs(dir, 0700);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
		goto fail;
	}

	rc = audit__verify(a->path, &bad, &a->seq, a->hash);
	if (rc == -EBADMSG) {
		rep.broken = true;
		rep.bad_seq = bad;
		rc = audit_move_aside(a, rep.moved_to, sizeof(rep.moved_to));
		if (rc) {
			if (err && errlen)
				snprintf(err, errlen, "%s does not verify and cannot be moved: %s",
					 a->path, strerror(-rc));
			goto fail;
		}
	} else if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", a->path, strerror(-rc));
		goto fail;
	}

	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		rc = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		goto fail;
	}
	audit_sync_dir(a->dir);
	if (rep.broken) {
		const char *base = strrchr(rep.moved_to, '/');
		char target[600];
		struct audit_entry seg = {
			.subject = "novamon",
			.action = AUDIT_SEGMENT,
			.target = target,
		};

		snprintf(target, sizeof(target), "%s broke at seq %llu", base ? base + 1 : "",
			 (unsigned long long)rep.bad_seq);
		rc = audit__append(a, &seg);
		if (rc) {
			if (err && errlen)
				snprintf(err, errlen, "%s: %s", a->path, strerror(-rc));
			goto fail;
		}
	}
	rep.last_seq = a->seq;
	if (report)
		*report = rep;
	return a;
fail:
	audit__close(a);
	errno = -rc;
	return NULL;
}

struct audit *audit__close(struct audit *a)
{
	if (!a)
		return NULL;
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
	return NULL;
}

int audit__append(struct audit *a, const struct audit_entry *e)
{
	char hash[AUDIT_HASH_HEX + 1];
	struct audit_buf *b;
	int rc;

	if (!a || !e)
		return -EINVAL;
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	rc = audit_render(b, a->seq + 1, a->hash, e, hash);
	if (!rc)
		rc = audit_write(a, b);
	if (!rc) {
		a->seq++;
		memcpy(a->hash, hash, sizeof(hash));
	}
	pthread_mutex_unlock(&a->lock);
	free(b);
	return rc;
}

void audit__head(struct audit *a, uint64_t *seq, char hash[65])
{
	pthread_mutex_lock(&a->lock);
	*seq = a->seq;
	memcpy(hash, a->hash, AUDIT_HASH_HEX + 1);
	pthread_mutex_unlock(&a->lock);
}

void audit__http_hook(void *ctx, const struct http_request *req, int status)
{
	const struct auth_principal *p = req->principal;
	struct audit *a = ctx;
	char action[AUDIT_FIELD_MAX];
	struct audit_entry e = {
		.subject = p ? p->subject : "",
		.role = p ? auth_role_name(p->role) : "",
		.tenant = p ? p->tenant : "",
		.remote_addr = req->remote_addr,
		.action = action,
		.target = req->path,
		.result = status,
	};
	int rc;

	snprintf(action, sizeof(action), "%s %s", req->method, req->path);
	rc = audit__append(a, &e);
	/* the hook is the caller here: it logs once per run of failures */
	if (rc && !atomic_exchange(&a->failing, true))
		log_error("audit: cannot record \"%s\" by %s: %s", action,
			  e.subject[0] ? e.subject : "(no token)", strerror(-rc));
	else if (!rc && atomic_exchange(&a->failing, false))
		log_info("audit: recording again");
}

/* ------------------------------------------------------------------ */
/* GET /api/audit */

static int audit_reply_json(struct http_response *resp, json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(doc);
	if (!s)
		return -ENOMEM;
	resp->status = 200;
	resp->content_type = "application/json";
	resp->body = s;
	resp->body_len = strlen(s);
	return 0;
}

static int audit_h_get(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct audit *a = ctx;
	char buf[128], head_hash[AUDIT_HASH_HEX + 1];
	int64_t since = INT64_MIN;
	unsigned long long after = 0;
	unsigned long limit = AUDIT_DEFAULT_LIMIT;
	uint64_t bad = 0, head_seq;
	json_t *doc = NULL, *recs = NULL, *rec = NULL;
	char *line = NULL, *end;
	size_t cap = 0;
	bool truncated = false;
	FILE *f = NULL;
	ssize_t n;
	int vrc, rc = 0;

	if (http_param(req->query, "since", 0, buf, sizeof(buf)) >= 0 && buf[0] &&
	    prom_api_parse_time(buf, &since))
		return http_error(resp, 400, "bad_data",
				  "invalid parameter \"since\": RFC 3339 or unix seconds");
	if (http_param(req->query, "after_seq", 0, buf, sizeof(buf)) >= 0 && buf[0]) {
		errno = 0;
		after = strtoull(buf, &end, 10);
		if (*end || errno || buf[0] == '-')
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"after_seq\": a sequence number");
	}
	if (http_param(req->query, "limit", 0, buf, sizeof(buf)) >= 0 && buf[0]) {
		limit = strtoul(buf, &end, 10);
		if (*end || !limit || limit > AUDIT_MAX_LIMIT || buf[0] == '-')
			return http_error(resp, 400, "bad_data",
					  "invalid parameter \"limit\": 1 to %d", AUDIT_MAX_LIMIT);
	}

	doc = json_object();
	recs = json_array();
	if (!doc || !recs) {
		rc = -ENOMEM;
		goto out;
	}
	/* under the lock: no record is half-written while we read */
	pthread_mutex_lock(&a->lock);
	head_seq = a->seq;
	memcpy(head_hash, a->hash, sizeof(head_hash));
	vrc = audit__verify(a->path, &bad, NULL, NULL);
	f = fopen(a->path, "re");
	while (f && (n = getline(&line, &cap, f)) > 0) {
		json_t *t;
		int64_t ms;

		rec = json_loadb(line, (size_t)n, 0, NULL);
		if (!json_is_object(rec))
			continue; /* a broken line: "verified" says so */
		t = json_object_get(rec, "seq");
		if ((uint64_t)json_integer_value(t) <= after ||
		    (since != INT64_MIN &&
		     (prom_api_parse_time(json_string_value(json_object_get(rec, "time")), &ms) ||
		      ms < since))) {
			json_decref(rec);
			rec = NULL;
			continue;
		}
		if (json_array_size(recs) == limit) {
			truncated = true;
			break;
		}
		if (json_array_append_new(recs, rec)) {
			rec = NULL;
			rc = -ENOMEM;
			break;
		}
		rec = NULL;
	}
	pthread_mutex_unlock(&a->lock);
	if (rc)
		goto out;
	if (vrc && vrc != -EBADMSG) {
		rc = http_error(resp, 500, "internal", "cannot read the audit log: %s",
				strerror(-vrc));
		goto out;
	}
	if (json_object_set_new(doc, "records", recs)) {
		recs = NULL;
		rc = -ENOMEM;
		goto out;
	}
	recs = NULL;
	if (json_object_set_new(doc, "verified", json_boolean(vrc == 0)) ||
	    (vrc && json_object_set_new(doc, "broken_at", json_integer((json_int_t)bad))) ||
	    json_object_set_new(doc, "head",
				json_pack("{s:I, s:s}", "seq", (json_int_t)head_seq, "hash",
					  head_hash)) ||
	    json_object_set_new(doc, "truncated", json_boolean(truncated))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = audit_reply_json(resp, doc);
	doc = NULL;
out:
	if (f)
		fclose(f);
	free(line);
	json_decref(rec);
	json_decref(recs);
	json_decref(doc);
	return rc;
}

int audit__routes(struct audit *a, struct http_route *routes, size_t max)
{
	if (!a || !routes)
		return -EINVAL;
	if (max < AUDIT_NROUTES)
		return -ENOSPC;
	routes[0] = (struct http_route){
		.method = "GET",
		.path = "/api/audit",
		.fn = audit_h_get,
		.ctx = a,
		.min_role = AUTH_ROLE_ADMIN,
	};
	return AUDIT_NROUTES;
}
