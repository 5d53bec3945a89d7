/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "logq.h"

struct logq_cell {
	uint64_t seq; /* == pos: free for the producer at pos; pos + 1: full */
	struct log_record rec;
};

struct logq {
	uint64_t enqueue_pos __attribute__((aligned(64)));
	uint64_t emitted;
	uint64_t dropped;
	uint64_t dequeue_pos __attribute__((aligned(64)));
	struct logq_cell *cells;
	uint32_t mask;
	bool masking;
	uint64_t salt;
};

struct logq *logq__new(uint32_t cap, bool mask)
{
	struct logq *q;
	uint32_t i;

	if (cap < 2 || (cap & (cap - 1))) {
		errno = EINVAL;
		return NULL;
	}
	q = aligned_alloc(64, sizeof(*q));
	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->cells = calloc(cap, sizeof(*q->cells));
	if (!q->cells) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < cap; i++)
		q->cells[i].seq = i;
	q->mask = cap - 1;
	q->masking = mask;
	if (getrandom(&q->salt, sizeof(q->salt), 0) != sizeof(q->salt))
		q->salt = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	return q;
}

struct logq *logq__free(struct logq *q)
{
	if (!q)
		return NULL;
	free(q->cells);
	free(q);
	return NULL;
}

static uint32_t mask_hash(uint64_t salt, const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ salt;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	return (uint32_t)(h ^ (h >> 32));
}

static bool is_ipchar(char c)
{
	return isxdigit((unsigned char)c) || c == ':' || c == '.';
}

/* Length of a dotted-quad IPv4 address at s (each part 0-255, 1-3 digits), or 0. */
static size_t ipv4_len(const char *s)
{
	size_t n = 0;
	int part, digits, v;

	for (part = 0; part < 4; part++) {
		if (part) {
			if (s[n] != '.')
				return 0;
			n++;
		}
		for (digits = 0, v = 0; digits < 3 && isdigit((unsigned char)s[n]); digits++)
			v = v * 10 + (s[n++] - '0');
		if (!digits || v > 255)
			return 0;
	}
	/* 1.2.3.45678 or 1.2.3.4.5 is not an address. */
	if (isdigit((unsigned char)s[n]) || (s[n] == '.' && isdigit((unsigned char)s[n + 1])))
		return 0;
	return n;
}

/* Length of an IPv6 address at s (the longest run inet_pton accepts), or 0. */
static size_t ipv6_len(const char *s)
{
	struct in6_addr a;
	char buf[INET6_ADDRSTRLEN + 1];
	size_t run = 0, colons = 0, n;

	while (is_ipchar(s[run]) && run < INET6_ADDRSTRLEN) {
		colons += s[run] == ':';
		run++;
	}
	if (colons < 2)
		return 0;
	for (n = run; n >= 2; n--) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &a) == 1)
			return n;
	}
	return 0;
}

/* Append s[len] to out at *o, keeping room for the NUL. */
static void put(char *out, size_t outlen, size_t *o, const char *s, size_t len)
{
	if (*o + len >= outlen)
		len = outlen - 1 - *o;
	memcpy(out + *o, s, len);
	*o += len;
}

static void put_masked(char *out, size_t outlen, size_t *o, const char *what, uint64_t salt,
		       const char *s, size_t len)
{
	char tok[24];
	int n = snprintf(tok, sizeof(tok), "%s-%08x", what, mask_hash(salt, s, len));

	put(out, outlen, o, tok, (size_t)n);
}

/* "user=" or "username=" ending at s + i (case-insensitive). */
static size_t user_key_len(const char *s, size_t i)
{
	static const char *const keys[] = { "username=", "user=" };
	size_t k, n;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		n = strlen(keys[k]);
		if (!strncasecmp(s + i, keys[k], n) &&
		    (i == 0 || !isalnum((unsigned char)s[i - 1]) || s[i - 1] == '.'))
			return n;
	}
	return 0;
}

void logq_mask(const char *in, bool is_user, uint64_t salt, char *out, size_t outlen)
{
	size_t i = 0, o = 0, n, len = strlen(in);

	if (!outlen)
		return;
	if (is_user) {
		if (len)
			put_masked(out, outlen, &o, "user", salt, in, len);
		out[o] = '\0';
		return;
	}
	while (i < len && o + 1 < outlen) {
		bool boundary = i == 0 || !(isalnum((unsigned char)in[i - 1]) || in[i - 1] == '.' ||
					    in[i - 1] == ':' || in[i - 1] == '_');

		if ((n = user_key_len(in, i))) {
			size_t v = i + n, end = v;

			while (end < len && !isspace((unsigned char)in[end]) && in[end] != ',' &&
			       in[end] != ';' && in[end] != '"' && in[end] != '\'')
				end++;
			put(out, outlen, &o, in + i, n);
			if (end > v)
				put_masked(out, outlen, &o, "user", salt, in + v, end - v);
			i = end;
			continue;
		}
		if (boundary && is_ipchar(in[i])) {
			n = ipv6_len(in + i);
			if (!n)
				n = ipv4_len(in + i);
			if (n) {
				put_masked(out, outlen, &o, "ip", salt, in + i, n);
				i += n;
				continue;
			}
		}
		out[o++] = in[i++];
	}
	out[o] = '\0';
}

static bool is_user_key(const char *key)
{
	static const char *const keys[] = { "user", "user.name", "user.id", "enduser.id",
					    "username" };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

static void set_str_attr(struct span_attr *a, const char *key, const char *v, bool masking,
			 uint64_t salt)
{
	snprintf(a->key, sizeof(a->key), "%s", key);
	a->type = SPAN_ATTR_STR;
	if (masking)
		logq_mask(v ? v : "", is_user_key(key), salt, a->s, sizeof(a->s));
	else
		snprintf(a->s, sizeof(a->s), "%s", v ? v : "");
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int logq__emit(struct logq *q, uint8_t severity, const char *event, const uint8_t *trace_id,
	       const uint8_t *span_id, const struct logq_attr *attrs, size_t nattrs,
	       const char *fmt, ...)
{
	struct logq_cell *cell;
	struct log_record *r;
	struct timespec ts;
	char body[LOG_BODY_LEN];
	uint64_t pos, seq;
	va_list ap;
	size_t i;

	if (!q)
		return 0;
	pos = __atomic_load_n(&q->enqueue_pos, __ATOMIC_RELAXED);
	for (;;) {
		cell = &q->cells[pos & q->mask];
		seq = __atomic_load_n(&cell->seq, __ATOMIC_ACQUIRE);
		if (seq == pos) {
			if (__atomic_compare_exchange_n(&q->enqueue_pos, &pos, pos + 1, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		} else if ((int64_t)(seq - pos) < 0) {
			__atomic_fetch_add(&q->dropped, 1, __ATOMIC_RELAXED);
			return -ENOSPC;
		} else {
			pos = __atomic_load_n(&q->enqueue_pos, __ATOMIC_RELAXED);
		}
	}

	/* The cell is ours until seq is published. */
	r = &cell->rec;
	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_REALTIME, &ts);
	r->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	r->severity = severity;
	if (trace_id && span_id && !all_zero(trace_id, 16) && !all_zero(span_id, 8)) {
		memcpy(r->trace_id, trace_id, 16);
		memcpy(r->span_id, span_id, 8);
		r->has_trace = true;
	}
	va_start(ap, fmt);
	vsnprintf(q->masking ? body : r->body, sizeof(body), fmt, ap);
	va_end(ap);
	if (q->masking)
		logq_mask(body, false, q->salt, r->body, sizeof(r->body));
	set_str_attr(&r->attrs[r->nattrs++], "novamon.event", event, false, 0);
	for (i = 0; i < nattrs && r->nattrs < SPAN_MAX_ATTRS; i++) {
		struct span_attr *a = &r->attrs[r->nattrs++];

		switch (attrs[i].type) {
		case SPAN_ATTR_STR:
			set_str_attr(a, attrs[i].key, attrs[i].s, q->masking, q->salt);
			break;
		case SPAN_ATTR_INT:
			snprintf(a->key, sizeof(a->key), "%s", attrs[i].key);
			a->type = SPAN_ATTR_INT;
			a->i = attrs[i].i;
			break;
		case SPAN_ATTR_DOUBLE:
			snprintf(a->key, sizeof(a->key), "%s", attrs[i].key);
			a->type = SPAN_ATTR_DOUBLE;
			a->d = attrs[i].d;
			break;
		default:
			snprintf(a->key, sizeof(a->key), "%s", attrs[i].key);
			a->type = SPAN_ATTR_BOOL;
			a->b = attrs[i].i != 0;
			break;
		}
	}
	__atomic_store_n(&cell->seq, pos + 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&q->emitted, 1, __ATOMIC_RELAXED);
	return 0;
}

size_t logq__drain(struct logq *q, struct log_record *out, size_t max)
{
	struct logq_cell *cell;
	size_t n = 0;

	while (n < max) {
		cell = &q->cells[q->dequeue_pos & q->mask];
		if (__atomic_load_n(&cell->seq, __ATOMIC_ACQUIRE) != q->dequeue_pos + 1)
			break;
		out[n++] = cell->rec;
		__atomic_store_n(&cell->seq, q->dequeue_pos + q->mask + 1, __ATOMIC_RELEASE);
		q->dequeue_pos++;
	}
	return n;
}

uint64_t logq__emitted(const struct logq *q)
{
	return q ? __atomic_load_n(&q->emitted, __ATOMIC_RELAXED) : 0;
}

uint64_t logq__dropped(const struct logq *q)
{
	return q ? __atomic_load_n(&q->dropped, __ATOMIC_RELAXED) : 0;
}
