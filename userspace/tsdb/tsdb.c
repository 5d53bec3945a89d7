/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tsdb: the store (see tsdb.h).
 *
 * Layout: the index (index.h) maps label sets to series ids; db->series[id]
 * holds a series' samples: closed Gorilla chunks (chunk.h) in time order,
 * one open head chunk, and the 1-minute and 1-hour aggregate tiers, which are
 * filled from raw samples as tsdb__maintain() trims them off the raw tier.
 *
 * Appends go through a direct-mapped cache keyed by the hash of the caller's
 * label array as given (unsorted, empty values included), verified by an
 * exact compare against the series' labels, so the tick's repeated appends
 * of the same series skip validation, sorting and the index.
 *
 * WAL records (little-endian, packed) are sequences of entries, each
 * starting with one kind byte:
 *
 *   'S' series   u32 id, u8 nlabels, nlabels x (u16 len, name, u16 len, value)
 *   'P' sample   u32 id, i64 t, u64 value bits
 *   'C' chunk    u32 id, i64 mint, i64 maxt, u16 n, u8 mode, u32 nbytes, bytes
 *   'A' tier     u32 id, u8 tier, u32 count, count x (i64 t, f64 min, f64 max,
 *                f64 sum, u64 count)
 *   'D' delete   u32 id (retention emptied the series; its id is not reused)
 *
 * Appends buffer 'S' and 'P' entries and hand them to the WAL as one record
 * when the buffer fills, on commit and before a checkpoint. A checkpoint is,
 * per series, one record of 'S', its closed chunks as 'C', its tiers as 'A'
 * and its head chunk's samples as 'P'. Ids in the log are the in-memory ids;
 * replay restores them as they were.
 *
 * Locks: db->lock (rwlock) guards everything in memory; db->wal_lock
 * serialises the WAL. Order: db->lock, then wal_lock. tsdb__commit() takes
 * the buffered entries under the write lock, takes wal_lock, drops the write
 * lock and syncs, so appends go on during the fdatasync while the log keeps
 * the append order.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/index.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"

#define MS_MINUTE 60000LL
#define MS_HOUR 3600000LL
#define TSDB_WBUF_FLUSH (1u << 20)
#define TSDB_DEFAULT_CKPT_MS (5 * MS_MINUTE)

enum { TIER_1M, TIER_1H, TIER_COUNT };

static const int64_t tier_width[TIER_COUNT] = { MS_MINUTE, MS_HOUR };

struct tsdb_agg {
	int64_t t; /* interval start */
	double min, max, sum;
	uint64_t count;
};

struct tsdb_tier {
	struct tsdb_agg *b;
	size_t n, cap;
};

struct tsdb_closed {
	uint8_t *data;
	int64_t mint, maxt;
	uint32_t nbytes;
	uint16_t n;
	uint8_t mode;
};

struct tsdb_series {
	uint32_t id;
	uint16_t rule; /* index into db->rules */
	bool has_last;
	bool int_ok; /* every value fitted a decimal scale: cut CHUNK_INT chunks */
	uint8_t scale; /* the largest scale needed so far */
	int64_t last_t;
	uint64_t last_bits;
	const struct tsdb_label *labels; /* interned in the index */
	size_t nlabels;
	struct chunk head;
	struct tsdb_closed *closed;
	uint32_t nclosed, capclosed;
	struct tsdb_tier tier[TIER_COUNT];
};

struct tsdb_rule {
	char *prefix;
	size_t len;
	int64_t ms[1 + TIER_COUNT]; /* raw, 1m, 1h */
};

#define CACHE_PROBES 4

struct cache_ent {
	uint64_t hash;
	uint32_t id1; /* id + 1; 0: empty */
};

struct tsdb {
	pthread_rwlock_t lock;
	struct index *ix;
	struct tsdb_series **series; /* by id */
	uint32_t series_cap;
	uint32_t next_id;
	struct cache_ent *cache;
	size_t cache_mask;
	struct tsdb_rule *rules; /* longest prefix first */
	size_t nrules;

	pthread_mutex_t wal_lock;
	struct wal *wal;
	uint8_t *wbuf;
	size_t wlen, wcap;
	int64_t ckpt_interval_ms;
	int64_t last_ckpt_ms;
	bool replaying;

	/* Counters, under lock (write) or atomics where noted. */
	uint64_t nsamples;
	uint64_t closed_bytes;
	uint64_t appended_total;
	uint64_t ooo_total;
	uint64_t wal_corruptions;
	uint64_t checkpoints;
};

/* --- small helpers --- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static inline uint64_t dbits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static inline double bitsd(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

/* --- validation --- */

static bool name_valid(const char *s)
{
	const char *p;

	if (!s || !*s)
		return false;
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (p = s + 1; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	if (s[0] == '_' && s[1] == '_' && strcmp(s, TSDB_NAME_LABEL))
		return false;
	return true;
}

static bool utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t cp;
	int n, i;

	while (*s) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0) {
			n = 1;
			cp = *s & 0x1f;
		} else if ((*s & 0xf0) == 0xe0) {
			n = 2;
			cp = *s & 0x0f;
		} else if ((*s & 0xf8) == 0xf0) {
			n = 3;
			cp = *s & 0x07;
		} else {
			return false;
		}
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/*
 * Validate labels and write the non-empty ones sorted by name into out
 * (TSDB_MAX_LABELS entries). Returns the count or -EINVAL.
 */
static int labels_normalize(const struct tsdb_label *in, size_t nin, struct tsdb_label *out)
{
	size_t i, j, n = 0;
	bool has_name = false;
	struct tsdb_label tmp;

	if (!in && nin)
		return -EINVAL;
	for (i = 0; i < nin; i++) {
		if (!in[i].name || !in[i].value || !name_valid(in[i].name))
			return -EINVAL;
		if (!in[i].value[0])
			continue;
		if (!utf8_valid(in[i].value) || n == TSDB_MAX_LABELS)
			return -EINVAL;
		if (!strcmp(in[i].name, TSDB_NAME_LABEL))
			has_name = true;
		tmp = in[i];
		for (j = n; j > 0 && strcmp(out[j - 1].name, tmp.name) > 0; j--)
			out[j] = out[j - 1];
		out[j] = tmp;
		n++;
	}
	if (!has_name)
		return -EINVAL;
	for (i = 1; i < n; i++) {
		if (!strcmp(out[i - 1].name, out[i].name))
			return -EINVAL;
	}
	return (int)n;
}

/* --- retention rules --- */

static const char *series_metric_name(const struct tsdb_label *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strcmp(l[i].name, TSDB_NAME_LABEL))
			return l[i].value;
	}
	return "";
}

static uint16_t rule_for(const struct tsdb *db, const char *metric)
{
	size_t i;

	for (i = 0; i < db->nrules; i++) {
		if (!strncmp(metric, db->rules[i].prefix, db->rules[i].len))
			return (uint16_t)i;
	}
	return (uint16_t)(db->nrules - 1); /* the catch-all "" rule is last */
}

static int cmp_rule(const void *a, const void *b)
{
	const struct tsdb_rule *x = a, *y = b;

	return (x->len < y->len) - (x->len > y->len);
}

static int rules_init(struct tsdb *db, const struct tsdb_opts *opts)
{
	size_t i, n = opts->nretention;
	bool has_default = false;

	db->rules = calloc(n + 1, sizeof(*db->rules));
	if (!db->rules)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct tsdb_retention *r = &opts->retention[i];
		const char *prefix = r->prefix ? r->prefix : "";

		if (r->raw_ms <= 0 || r->m1_ms < 0 || r->h1_ms < 0)
			return -EINVAL;
		db->rules[i].prefix = strdup(prefix);
		if (!db->rules[i].prefix)
			return -ENOMEM;
		db->nrules++;
		db->rules[i].len = strlen(prefix);
		db->rules[i].ms[0] = r->raw_ms;
		db->rules[i].ms[1] = r->m1_ms;
		db->rules[i].ms[2] = r->h1_ms;
		if (!*prefix)
			has_default = true;
	}
	if (!has_default) {
		db->rules[n].prefix = strdup("");
		if (!db->rules[n].prefix)
			return -ENOMEM;
		db->rules[n].ms[0] = 24 * MS_HOUR;
		db->rules[n].ms[1] = 30 * 24 * MS_HOUR;
		db->rules[n].ms[2] = 400 * 24 * MS_HOUR;
		db->nrules++;
	}
	/* Stable enough: equal lengths are distinct prefixes, never both match. */
	qsort(db->rules, db->nrules, sizeof(*db->rules), cmp_rule);
	return 0;
}

/* --- series --- */

static void series_free(struct tsdb_series *s)
{
	uint32_t i;
	int k;

	if (!s)
		return;
	chunk__reset(&s->head);
	for (i = 0; i < s->nclosed; i++)
		free(s->closed[i].data);
	free(s->closed);
	for (k = 0; k < TIER_COUNT; k++)
		free(s->tier[k].b);
	free(s);
}

static int series_table_reserve(struct tsdb *db, uint32_t id)
{
	uint32_t ncap;
	struct tsdb_series **ns;

	if (id < db->series_cap)
		return 0;
	ncap = db->series_cap ? db->series_cap : 64;
	while (ncap <= id)
		ncap *= 2;
	ns = realloc(db->series, (size_t)ncap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	memset(ns + db->series_cap, 0, (size_t)(ncap - db->series_cap) * sizeof(*ns));
	db->series = ns;
	db->series_cap = ncap;
	return 0;
}

static int cache_resize(struct tsdb *db)
{
	size_t want = 1024;
	struct cache_ent *nc;

	while (want < (size_t)index__count(db->ix) * 2)
		want *= 2;
	if (db->cache && want <= db->cache_mask + 1)
		return 0;
	nc = calloc(want, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	free(db->cache);
	db->cache = nc;
	db->cache_mask = want - 1;
	return 0;
}

static int wbuf_reserve(struct tsdb *db, size_t more)
{
	size_t ncap;
	uint8_t *nb;

	if (db->wlen + more <= db->wcap)
		return 0;
	ncap = db->wcap ? db->wcap : 64 * 1024;
	while (ncap < db->wlen + more)
		ncap *= 2;
	nb = realloc(db->wbuf, ncap);
	if (!nb)
		return -ENOMEM;
	db->wbuf = nb;
	db->wcap = ncap;
	return 0;
}

static inline void put_u8(uint8_t **p, uint8_t v)
{
	*(*p)++ = v;
}

static inline void put_u16(uint8_t **p, uint16_t v)
{
	memcpy(*p, &v, 2);
	*p += 2;
}

static inline void put_u32(uint8_t **p, uint32_t v)
{
	memcpy(*p, &v, 4);
	*p += 4;
}

static inline void put_u64(uint8_t **p, uint64_t v)
{
	memcpy(*p, &v, 8);
	*p += 8;
}

static size_t series_entry_size(const struct tsdb_label *l, size_t n)
{
	size_t i, sz = 1 + 4 + 1;

	for (i = 0; i < n; i++)
		sz += 4 + strlen(l[i].name) + strlen(l[i].value);
	return sz;
}

static void series_entry_put(uint8_t **p, uint32_t id, const struct tsdb_label *l, size_t n)
{
	size_t i, len;

	put_u8(p, 'S');
	put_u32(p, id);
	put_u8(p, (uint8_t)n);
	for (i = 0; i < n; i++) {
		len = strlen(l[i].name);
		put_u16(p, (uint16_t)len);
		memcpy(*p, l[i].name, len);
		*p += len;
		len = strlen(l[i].value);
		put_u16(p, (uint16_t)len);
		memcpy(*p, l[i].value, len);
		*p += len;
	}
}

/* Label names are at most... anything, but the WAL stores u16 lengths. */
static bool labels_fit_wal(const struct tsdb_label *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strlen(l[i].name) > UINT16_MAX || strlen(l[i].value) > UINT16_MAX)
			return false;
	}
	return true;
}

/* Hand the buffered entries to the WAL. Caller holds db->lock (write). */
static int wbuf_flush_locked(struct tsdb *db)
{
	int err = 0;

	if (!db->wal || !db->wlen)
		return 0;
	pthread_mutex_lock(&db->wal_lock);
	err = wal__append(db->wal, db->wbuf, db->wlen);
	pthread_mutex_unlock(&db->wal_lock);
	if (!err)
		db->wlen = 0;
	return err;
}

/*
 * Create a series under id for the normalized labels (written to the WAL
 * unless replaying). Returns the series or NULL with *err set.
 */
static struct tsdb_series *series_create(struct tsdb *db, uint32_t id, const struct tsdb_label *l,
					 size_t n, uint64_t hash, int *err)
{
	struct tsdb_series *s = NULL;
	uint8_t *p;

	if (db->wal && !labels_fit_wal(l, n)) {
		*err = -EINVAL;
		return NULL;
	}
	*err = series_table_reserve(db, id);
	if (*err)
		return NULL;
	if (db->wal && !db->replaying) {
		*err = wbuf_reserve(db, series_entry_size(l, n));
		if (*err)
			return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = index__add(db->ix, id, l, n, hash);
	if (*err) {
		free(s);
		return NULL;
	}
	s->id = id;
	s->int_ok = true;
	s->labels = index__labels(db->ix, id, &s->nlabels);
	s->rule = rule_for(db, series_metric_name(s->labels, s->nlabels));
	chunk__init(&s->head, CHUNK_INT, 0);
	db->series[id] = s;
	if (id >= db->next_id)
		db->next_id = id + 1;
	if (db->wal && !db->replaying) {
		p = db->wbuf + db->wlen;
		series_entry_put(&p, id, s->labels, s->nlabels);
		db->wlen = (size_t)(p - db->wbuf);
	}
	if (cache_resize(db)) {
		/* The cache is an accelerator: keep the old one. */
	}
	return s;
}

static void series_delete(struct tsdb *db, struct tsdb_series *s)
{
	uint8_t *p;

	/* Best effort: without it, replay meets the label set again under a
	 * newer id and drops the older series then (replay_entry_series()). */
	if (db->wal && !db->replaying && !wbuf_reserve(db, 5)) {
		p = db->wbuf + db->wlen;
		put_u8(&p, 'D');
		put_u32(&p, s->id);
		db->wlen += 5;
	}
	db->series[s->id] = NULL;
	index__remove(db->ix, s->id);
	series_free(s);
}

/* Move the head chunk to the closed list. */
static int series_cut(struct tsdb *db, struct tsdb_series *s)
{
	struct tsdb_closed *c;
	uint32_t nbytes;
	uint8_t mode = s->head.mode;
	uint16_t n = s->head.n;
	int64_t mint = s->head.t0, maxt = s->head.tlast;
	uint8_t *data;

	if (!n)
		return 0;
	if (s->nclosed == s->capclosed) {
		uint32_t ncap = s->capclosed ? s->capclosed * 2 : 4;
		struct tsdb_closed *nc = realloc(s->closed, ncap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		s->closed = nc;
		s->capclosed = ncap;
	}
	data = chunk__take(&s->head, &nbytes);
	c = &s->closed[s->nclosed++];
	c->data = data;
	c->nbytes = nbytes;
	c->n = n;
	c->mode = mode;
	c->mint = mint;
	c->maxt = maxt;
	db->closed_bytes += nbytes;
	return 0;
}

/*
 * Append to a series. Returns 0 (stored), 1 (duplicate, ignored), -ERANGE,
 * -EEXIST, -ENOMEM.
 */
static int series_append(struct tsdb *db, struct tsdb_series *s, int64_t t, double v)
{
	uint64_t bits = dbits(v);
	int err;

	if (s->has_last) {
		if (t < s->last_t) {
			db->ooo_total++;
			return -ERANGE;
		}
		if (t == s->last_t)
			return bits == s->last_bits ? 1 : -EEXIST;
	}
	err = chunk__append(&s->head, t, v);
	if (!err && s->head.n == 1 && s->head.mode == CHUNK_INT)
		s->scale = s->head.scale;
	if (err == -ENOSPC) {
		if (s->head.mode == CHUNK_INT && !chunk_value_fits(v, s->head.scale)) {
			int d = chunk_value_scale(v);

			if (d < 0)
				s->int_ok = false;
			else if (d > s->scale)
				s->scale = (uint8_t)d;
		}
		err = series_cut(db, s);
		if (err)
			return err;
		chunk__init(&s->head, s->int_ok ? CHUNK_INT : CHUNK_XOR, s->scale);
		err = chunk__append(&s->head, t, v);
	}
	if (err)
		return err;
	s->has_last = true;
	s->last_t = t;
	s->last_bits = bits;
	db->nsamples++;
	db->appended_total++;
	return 0;
}

/* --- append fast path --- */

static uint64_t raw_hash(const struct tsdb_label *l, size_t n)
{
	uint64_t h = 0x243f6a8885a308d3ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!l[i].name || !l[i].value)
			return 0; /* never cached: the slow path rejects it */
		h = index_hash_bytes(l[i].name, strlen(l[i].name), h);
		h = index_hash_bytes(l[i].value, strlen(l[i].value), h + 1);
	}
	return h;
}

/* Does the caller's array (unsorted, empty values allowed) equal s's set? */
static bool labels_match_series(const struct tsdb_label *l, size_t n, const struct tsdb_series *s)
{
	uint64_t seen = 0;
	size_t i, k = 0, lo, hi, mid;
	int c;

	/* Common case: the caller's non-empty labels are already sorted. */
	for (i = 0; i < n; i++) {
		if (!l[i].value[0])
			continue;
		if (k >= s->nlabels || strcmp(l[i].name, s->labels[k].name) ||
		    strcmp(l[i].value, s->labels[k].value))
			break;
		k++;
	}
	if (i == n)
		return k == s->nlabels;
	/* Otherwise look each one up; every series label must be hit once. */
	k = 0;
	for (i = 0; i < n; i++) {
		if (!l[i].value[0])
			continue;
		lo = 0;
		hi = s->nlabels;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			c = strcmp(s->labels[mid].name, l[i].name);
			if (!c)
				break;
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo >= hi || strcmp(s->labels[mid].value, l[i].value) || (seen >> mid) & 1)
			return false;
		seen |= 1ULL << mid;
		k++;
	}
	return k == s->nlabels;
}

static struct tsdb_series *series_lookup_slow(struct tsdb *db, const struct tsdb_label *labels,
					      size_t nlabels, int *err)
{
	struct tsdb_label sorted[TSDB_MAX_LABELS];
	uint64_t hash;
	int64_t id;
	int n;

	n = labels_normalize(labels, nlabels, sorted);
	if (n < 0) {
		*err = n;
		return NULL;
	}
	hash = index_hash_labels(sorted, (size_t)n);
	id = index__find(db->ix, sorted, (size_t)n, hash);
	if (id >= 0)
		return db->series[id];
	if (db->next_id >= UINT32_MAX - 2) {
		*err = -ENOSPC;
		return NULL;
	}
	return series_create(db, db->next_id, sorted, (size_t)n, hash, err);
}

/* The series of a label set, from the append cache or the index (created if new). */
static struct tsdb_series *series_resolve(struct tsdb *db, const struct tsdb_label *labels,
					  size_t nlabels, int *err)
{
	uint64_t h = raw_hash(labels, nlabels);
	struct cache_ent *ce = NULL;
	struct tsdb_series *s = NULL;
	unsigned int i;

	if (h && db->cache) {
		/* Linear probing over a few slots, so colliding series do not evict each other. */
		for (i = 0; i < CACHE_PROBES; i++) {
			ce = &db->cache[(h + i) & db->cache_mask];
			if (!ce->id1)
				break;
			if (ce->hash != h)
				continue;
			s = db->series[ce->id1 - 1];
			if (s && labels_match_series(labels, nlabels, s))
				return s;
			s = NULL;
		}
	}
	s = series_lookup_slow(db, labels, nlabels, err);
	if (!s)
		return NULL;
	if (h && db->cache) {
		/* The cache may have been resized by series_create(). */
		ce = &db->cache[h & db->cache_mask];
		for (i = 0; i < CACHE_PROBES; i++) {
			struct cache_ent *e = &db->cache[(h + i) & db->cache_mask];

			if (!e->id1 || e->hash == h) {
				ce = e;
				break;
			}
		}
		ce->hash = h;
		ce->id1 = s->id + 1;
	}
	return s;
}

/* Append to a resolved series and log it to the WAL buffer. */
static int append_series_locked(struct tsdb *db, struct tsdb_series *s, int64_t t, double v)
{
	uint8_t *p;
	int err;

	if (db->wal) {
		err = wbuf_reserve(db, 21);
		if (err)
			return err;
	}
	err = series_append(db, s, t, v);
	if (err)
		return err == 1 ? 0 : err;
	if (db->wal) {
		p = db->wbuf + db->wlen;
		put_u8(&p, 'P');
		put_u32(&p, s->id);
		put_u64(&p, (uint64_t)t);
		put_u64(&p, dbits(v));
		db->wlen += 21;
		if (db->wlen >= TSDB_WBUF_FLUSH)
			err = wbuf_flush_locked(db);
	}
	return err;
}

static int append_locked(struct tsdb *db, const struct tsdb_label *labels, size_t nlabels,
			 int64_t t, double v)
{
	struct tsdb_series *s;
	int err = 0;

	s = series_resolve(db, labels, nlabels, &err);
	if (!s)
		return err;
	return append_series_locked(db, s, t, v);
}

int tsdb__append(struct tsdb *db, const struct tsdb_label *labels, size_t nlabels, int64_t t_ms,
		 double v)
{
	int err;

	if (!db)
		return -EINVAL;
	pthread_rwlock_wrlock(&db->lock);
	err = append_locked(db, labels, nlabels, t_ms, v);
	pthread_rwlock_unlock(&db->lock);
	return err;
}

size_t tsdb__each_latest(struct tsdb *db, int64_t since_ms,
			 void (*fn)(void *ctx, uint32_t id, const struct tsdb_label *labels,
				    size_t nlabels, int64_t t_ms, double v),
			 void *ctx)
{
	size_t n = 0;
	uint32_t id;

	if (!db || !fn)
		return 0;
	pthread_rwlock_rdlock(&db->lock);
	for (id = 0; id < db->next_id; id++) {
		const struct tsdb_series *s = db->series[id];

		if (!s || !s->has_last || s->last_t <= since_ms)
			continue;
		fn(ctx, id, s->labels, s->nlabels, s->last_t, bitsd(s->last_bits));
		n++;
	}
	pthread_rwlock_unlock(&db->lock);
	return n;
}

int64_t tsdb__ref(struct tsdb *db, const struct tsdb_label *labels, size_t nlabels)
{
	struct tsdb_series *s;
	int err = 0;

	if (!db)
		return -EINVAL;
	pthread_rwlock_wrlock(&db->lock);
	s = series_resolve(db, labels, nlabels, &err);
	pthread_rwlock_unlock(&db->lock);
	return s ? (int64_t)s->id : err;
}

int tsdb__append_ref(struct tsdb *db, uint32_t ref, int64_t t_ms, double v)
{
	struct tsdb_series *s;
	int err;

	if (!db)
		return -EINVAL;
	pthread_rwlock_wrlock(&db->lock);
	s = ref < db->series_cap ? db->series[ref] : NULL;
	err = s ? append_series_locked(db, s, t_ms, v) : -ENOENT;
	pthread_rwlock_unlock(&db->lock);
	return err;
}

int tsdb__append_batch(struct tsdb *db, const struct tsdb_sample *s, size_t n, int *errs)
{
	size_t i;
	int err, ok = 0;

	if (!db || (n && !s))
		return -EINVAL;
	pthread_rwlock_wrlock(&db->lock);
	for (i = 0; i < n; i++) {
		err = append_locked(db, s[i].labels, s[i].nlabels, s[i].t_ms, s[i].v);
		if (errs)
			errs[i] = err;
		if (!err)
			ok++;
	}
	pthread_rwlock_unlock(&db->lock);
	return ok;
}

int tsdb__commit(struct tsdb *db)
{
	uint8_t *buf;
	size_t len;
	int err = 0;

	if (!db)
		return -EINVAL;
	if (!db->wal)
		return 0;
	pthread_rwlock_wrlock(&db->lock);
	buf = db->wbuf;
	len = db->wlen;
	db->wbuf = NULL;
	db->wlen = 0;
	db->wcap = 0;
	pthread_mutex_lock(&db->wal_lock);
	pthread_rwlock_unlock(&db->lock);
	if (len)
		err = wal__append(db->wal, buf, len);
	if (!err)
		err = wal__sync(db->wal);
	pthread_mutex_unlock(&db->wal_lock);
	free(buf);
	return err;
}

/* --- tiers --- */

static int tier_add(struct tsdb_tier *tr, int64_t width, int64_t t, double v)
{
	int64_t start = floor_div(t, width) * width;
	struct tsdb_agg *a = NULL;
	size_t lo, hi, mid;

	if (isnan(v))
		return 0; /* staleness markers carry no value */
	if (tr->n && tr->b[tr->n - 1].t == start) {
		a = &tr->b[tr->n - 1];
	} else {
		lo = 0;
		hi = tr->n;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (tr->b[mid].t < start)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < tr->n && tr->b[lo].t == start) {
			a = &tr->b[lo];
		} else {
			if (tr->n == tr->cap) {
				size_t ncap = tr->cap ? tr->cap * 2 : 8;
				struct tsdb_agg *nb = realloc(tr->b, ncap * sizeof(*nb));

				if (!nb)
					return -ENOMEM;
				tr->b = nb;
				tr->cap = ncap;
			}
			memmove(tr->b + lo + 1, tr->b + lo, (tr->n - lo) * sizeof(*tr->b));
			tr->n++;
			a = &tr->b[lo];
			a->t = start;
			a->min = v;
			a->max = v;
			a->sum = v;
			a->count = 1;
			return 0;
		}
	}
	if (v < a->min)
		a->min = v;
	if (v > a->max)
		a->max = v;
	a->sum += v;
	a->count++;
	return 0;
}

static int tiers_add(struct tsdb_series *s, int64_t t, double v)
{
	int k, err;

	for (k = 0; k < TIER_COUNT; k++) {
		err = tier_add(&s->tier[k], tier_width[k], t, v);
		if (err)
			return err;
	}
	return 0;
}

static int tiers_add_chunk(struct tsdb_series *s, const uint8_t *buf, uint32_t nbytes, uint16_t n,
			   uint8_t mode)
{
	struct chunk_iter it;
	int64_t t;
	double v;
	int err;

	chunk_iter__init(&it, buf, nbytes, n, mode);
	while (chunk_iter__next(&it, &t, &v)) {
		err = tiers_add(s, t, v);
		if (err)
			return err;
	}
	return 0;
}

static void tier_trim(struct tsdb_tier *tr, int64_t width, int64_t cutoff)
{
	size_t i = 0;

	while (i < tr->n && tr->b[i].t + width <= cutoff)
		i++;
	if (!i)
		return;
	memmove(tr->b, tr->b + i, (tr->n - i) * sizeof(*tr->b));
	tr->n -= i;
	if (!tr->n) {
		free(tr->b);
		tr->b = NULL;
		tr->cap = 0;
	}
}

/*
 * Move raw samples older than the rule's raw retention into the tiers, trim
 * the tiers; true when the series holds nothing any more.
 */
static int series_trim(struct tsdb *db, struct tsdb_series *s, int64_t now, bool *empty)
{
	const struct tsdb_rule *r = &db->rules[s->rule];
	int64_t cutoff = now - r->ms[0];
	uint32_t i = 0, k;
	uint8_t *data;
	uint32_t nbytes;
	int err;

	*empty = false;
	while (i < s->nclosed && s->closed[i].maxt < cutoff) {
		struct tsdb_closed *c = &s->closed[i];

		err = tiers_add_chunk(s, c->data, c->nbytes, c->n, c->mode);
		if (err)
			break;
		db->nsamples -= c->n;
		db->closed_bytes -= c->nbytes;
		free(c->data);
		i++;
	}
	if (i) {
		memmove(s->closed, s->closed + i, (s->nclosed - i) * sizeof(*s->closed));
		s->nclosed -= i;
	}
	if (!s->nclosed && s->head.n && s->head.tlast < cutoff) {
		uint16_t n = s->head.n;
		uint8_t mode = s->head.mode;

		err = tiers_add_chunk(s, s->head.buf, chunk__bytes(&s->head), n, mode);
		if (err)
			return err;
		db->nsamples -= n;
		data = chunk__take(&s->head, &nbytes);
		free(data);
		chunk__init(&s->head, s->int_ok ? CHUNK_INT : CHUNK_XOR, s->scale);
	}
	for (k = 0; k < TIER_COUNT; k++)
		tier_trim(&s->tier[k], tier_width[k], now - r->ms[1 + k]);
	*empty = !s->nclosed && !s->head.n && !s->tier[0].n && !s->tier[1].n;
	return 0;
}

/* --- select --- */

struct samples {
	int64_t *t;
	double *v;
	size_t n, cap;
};

/* Room for at least extra more samples, so the pushes below never copy. */
static int samples_reserve(struct samples *a, size_t extra)
{
	size_t ncap = a->n + extra;
	int64_t *nt;
	double *nv;

	if (ncap <= a->cap)
		return 0;
	nt = realloc(a->t, ncap * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	a->t = nt;
	nv = realloc(a->v, ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	a->v = nv;
	a->cap = ncap;
	return 0;
}

static int samples_push(struct samples *a, int64_t t, double v)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		int64_t *nt = realloc(a->t, ncap * sizeof(*nt));
		double *nv;

		if (!nt)
			return -ENOMEM;
		a->t = nt;
		nv = realloc(a->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = ncap;
	}
	a->t[a->n] = t;
	a->v[a->n] = v;
	a->n++;
	return 0;
}

static int chunk_collect(const uint8_t *buf, uint32_t nbytes, uint16_t n, uint8_t mode,
			 int64_t mint, int64_t maxt, struct samples *out)
{
	struct chunk_iter it;
	int64_t t;
	double v;

	chunk_iter__init(&it, buf, nbytes, n, mode);
	while (chunk_iter__next(&it, &t, &v)) {
		if (t > maxt)
			break;
		if (t >= mint && samples_push(out, t, v))
			return -ENOMEM;
	}
	return 0;
}

static int64_t series_raw_first(const struct tsdb_series *s)
{
	if (s->nclosed)
		return s->closed[0].mint;
	if (s->head.n)
		return s->head.t0;
	return INT64_MAX;
}

/* Samples of s in [mint, maxt]: 1h tier, then 1m tier, then raw. */
static int series_collect(const struct tsdb_series *s, int64_t mint, int64_t maxt,
			  struct samples *out)
{
	int64_t bound[TIER_COUNT];
	uint32_t i;
	size_t j;
	int k, err;

	/* An upper bound of what is collected, so a wide select does not grow
	 * (and copy) every series' arrays a dozen times. */
	size_t bound_n = s->tier[TIER_1M].n + s->tier[TIER_1H].n;

	for (i = 0; i < s->nclosed; i++)
		if (s->closed[i].maxt >= mint && s->closed[i].mint <= maxt)
			bound_n += s->closed[i].n;
	if (s->head.n && s->head.tlast >= mint && s->head.t0 <= maxt)
		bound_n += s->head.n;
	err = samples_reserve(out, bound_n);
	if (err)
		return err;

	bound[TIER_1M] = series_raw_first(s);
	bound[TIER_1H] = s->tier[TIER_1M].n ? s->tier[TIER_1M].b[0].t : bound[TIER_1M];
	for (k = TIER_COUNT - 1; k >= 0; k--) {
		const struct tsdb_tier *tr = &s->tier[k];

		for (j = 0; j < tr->n && tr->b[j].t < bound[k] && tr->b[j].t <= maxt; j++) {
			if (tr->b[j].t < mint)
				continue;
			err = samples_push(out, tr->b[j].t, tr->b[j].sum / (double)tr->b[j].count);
			if (err)
				return err;
		}
	}
	for (i = 0; i < s->nclosed; i++) {
		const struct tsdb_closed *c = &s->closed[i];

		if (c->maxt < mint)
			continue;
		if (c->mint > maxt)
			return 0;
		err = chunk_collect(c->data, c->nbytes, c->n, c->mode, mint, maxt, out);
		if (err)
			return err;
	}
	if (s->head.n && s->head.tlast >= mint && s->head.t0 <= maxt)
		return chunk_collect(s->head.buf, chunk__bytes(&s->head), s->head.n, s->head.mode,
				     mint, maxt, out);
	return 0;
}

/* Any sample in [mint, maxt]? */
static bool series_has_samples(const struct tsdb_series *s, int64_t mint, int64_t maxt)
{
	struct samples tmp = { 0 };
	bool any;

	/* Cheap answers first: raw chunk bounds are exact for the raw tier. */
	if (s->head.n && s->head.t0 >= mint && s->head.tlast <= maxt)
		return true;
	if (series_collect(s, mint, maxt, &tmp))
		any = true; /* out of memory: err on showing the series */
	else
		any = tmp.n > 0;
	free(tmp.t);
	free(tmp.v);
	return any;
}

static int labels_cmp(const struct tsdb_label *a, size_t na, const struct tsdb_label *b, size_t nb)
{
	size_t i;
	int c;

	for (i = 0; i < na && i < nb; i++) {
		c = strcmp(a[i].name, b[i].name);
		if (c)
			return c;
		c = strcmp(a[i].value, b[i].value);
		if (c)
			return c;
	}
	return (na > nb) - (na < nb);
}

static int cmp_series_data(const void *a, const void *b)
{
	const struct tsdb_series_data *x = a, *y = b;

	return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* One allocation: the label array followed by its strings. */
static struct tsdb_label *labels_dup(const struct tsdb_label *l, size_t n)
{
	size_t i, sz = n * sizeof(*l), ln, lv;
	struct tsdb_label *out;
	char *p;

	for (i = 0; i < n; i++)
		sz += strlen(l[i].name) + strlen(l[i].value) + 2;
	out = malloc(sz ? sz : 1);
	if (!out)
		return NULL;
	p = (char *)(out + n);
	for (i = 0; i < n; i++) {
		ln = strlen(l[i].name) + 1;
		lv = strlen(l[i].value) + 1;
		memcpy(p, l[i].name, ln);
		out[i].name = p;
		p += ln;
		memcpy(p, l[i].value, lv);
		out[i].value = p;
		p += lv;
	}
	return out;
}

void tsdb_result__free(struct tsdb_result *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++) {
		free(r->series[i].labels);
		free(r->series[i].t);
		free(r->series[i].v);
	}
	free(r->series);
	free(r);
}

int tsdb__select(struct tsdb *db, const struct tsdb_matcher *m, size_t nm, int64_t mint,
		 int64_t maxt, struct tsdb_result **out)
{
	struct tsdb_result *r = NULL;
	uint32_t *ids = NULL;
	size_t nids = 0, i;
	struct samples smp = { 0 };
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!db || (nm && !m) || !nm)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_rwlock_rdlock(&db->lock);
	err = index__select(db->ix, m, nm, &ids, &nids);
	if (err)
		goto out_unlock;
	if (nids) {
		r->series = calloc(nids, sizeof(*r->series));
		if (!r->series) {
			err = -ENOMEM;
			goto out_unlock;
		}
	}
	for (i = 0; i < nids; i++) {
		const struct tsdb_series *s = db->series[ids[i]];
		struct tsdb_series_data *d;

		if (!s)
			continue;
		memset(&smp, 0, sizeof(smp));
		if (mint <= maxt) {
			err = series_collect(s, mint, maxt, &smp);
			if (err)
				goto out_unlock;
			if (!smp.n)
				continue;
		}
		d = &r->series[r->n++];
		d->t = smp.t;
		d->v = smp.v;
		d->n = smp.n;
		smp.t = NULL;
		smp.v = NULL;
		d->labels = labels_dup(s->labels, s->nlabels);
		d->nlabels = s->nlabels;
		if (!d->labels) {
			err = -ENOMEM;
			goto out_unlock;
		}
	}
out_unlock:
	pthread_rwlock_unlock(&db->lock);
	free(smp.t);
	free(smp.v);
	free(ids);
	if (err) {
		tsdb_result__free(r);
		return err;
	}
	if (r->n > 1)
		qsort(r->series, r->n, sizeof(*r->series), cmp_series_data);
	*out = r;
	return 0;
}

/* --- label names / values --- */

struct strset {
	char **s;
	size_t n, cap;
};

static int strset_add(struct strset *ss, const char *s)
{
	if (ss->n + 1 >= ss->cap) {
		size_t ncap = ss->cap ? ss->cap * 2 : 16;
		char **ns = realloc(ss->s, ncap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		ss->s = ns;
		ss->cap = ncap;
	}
	ss->s[ss->n] = (char *)s; /* interned: duplicated at the end */
	ss->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void tsdb_strings__free(char **s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; s[i]; i++)
		free(s[i]);
	free(s);
}

/* name == NULL: label names; else values of name. */
static int label_strings(struct tsdb *db, const char *name, const struct tsdb_matcher *m, size_t nm,
			 int64_t mint, int64_t maxt, char ***out)
{
	struct strset ss = { 0 };
	uint32_t *ids = NULL;
	size_t nids = 0, i, j, o = 0;
	char **res = NULL;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!db || (nm && !m))
		return -EINVAL;
	pthread_rwlock_rdlock(&db->lock);
	err = index__select(db->ix, m, nm, &ids, &nids);
	if (err)
		goto out_unlock;
	for (i = 0; i < nids; i++) {
		const struct tsdb_series *s = db->series[ids[i]];

		if (!s || (mint <= maxt && !series_has_samples(s, mint, maxt)))
			continue;
		for (j = 0; j < s->nlabels; j++) {
			if (name && strcmp(s->labels[j].name, name))
				continue;
			err = strset_add(&ss, name ? s->labels[j].value : s->labels[j].name);
			if (err)
				goto out_unlock;
		}
	}
	if (ss.n)
		qsort(ss.s, ss.n, sizeof(*ss.s), cmp_str);
	res = calloc(ss.n + 1, sizeof(*res));
	if (!res) {
		err = -ENOMEM;
		goto out_unlock;
	}
	for (i = 0; i < ss.n; i++) {
		if (o && !strcmp(res[o - 1], ss.s[i]))
			continue;
		res[o] = strdup(ss.s[i]);
		if (!res[o]) {
			err = -ENOMEM;
			goto out_unlock;
		}
		o++;
	}
out_unlock:
	pthread_rwlock_unlock(&db->lock);
	free(ss.s);
	free(ids);
	if (err) {
		tsdb_strings__free(res);
		return err;
	}
	*out = res;
	return (int)o;
}

int tsdb__label_names(struct tsdb *db, const struct tsdb_matcher *m, size_t nm, int64_t mint,
		      int64_t maxt, char ***out)
{
	return label_strings(db, NULL, m, nm, mint, maxt, out);
}

int tsdb__label_values(struct tsdb *db, const char *name, const struct tsdb_matcher *m, size_t nm,
		       int64_t mint, int64_t maxt, char ***out)
{
	if (!name)
		return -EINVAL;
	return label_strings(db, name, m, nm, mint, maxt, out);
}

/* --- stats --- */

void tsdb__stats(struct tsdb *db, struct tsdb_stats *st)
{
	uint64_t head_bytes = 0, mem = 0;
	uint32_t id;
	int k;

	memset(st, 0, sizeof(*st));
	if (!db)
		return;
	pthread_rwlock_rdlock(&db->lock);
	for (id = 0; id < db->next_id; id++) {
		const struct tsdb_series *s = db->series[id];

		if (!s)
			continue;
		head_bytes += chunk__bytes(&s->head);
		mem += sizeof(*s) + s->head.cap + (uint64_t)s->capclosed * sizeof(*s->closed);
		for (k = 0; k < TIER_COUNT; k++)
			mem += s->tier[k].cap * sizeof(*s->tier[k].b);
	}
	st->series = index__count(db->ix);
	st->samples = db->nsamples;
	st->chunk_bytes = db->closed_bytes + head_bytes;
	st->appended_total = db->appended_total;
	st->out_of_order_total = db->ooo_total;
	st->wal_corruptions_total = db->wal_corruptions;
	st->checkpoints_total = db->checkpoints;
	st->memory_bytes = mem + db->closed_bytes + index__memory(db->ix) +
			   (uint64_t)db->series_cap * sizeof(*db->series) +
			   (db->cache_mask + 1) * sizeof(*db->cache) + db->wcap + sizeof(*db);
	pthread_rwlock_unlock(&db->lock);
	if (db->wal) {
		pthread_mutex_lock(&db->wal_lock);
		st->wal_bytes = wal__size(db->wal);
		pthread_mutex_unlock(&db->wal_lock);
	}
}

/* --- checkpoint and replay --- */

struct emitter {
	wal_emit_fn emit;
	void *ectx;
	uint8_t *buf;
	size_t len, cap;
};

static int em_reserve(struct emitter *e, size_t more)
{
	size_t ncap;
	uint8_t *nb;

	if (e->len + more <= e->cap)
		return 0;
	ncap = e->cap ? e->cap : 4096;
	while (ncap < e->len + more)
		ncap *= 2;
	nb = realloc(e->buf, ncap);
	if (!nb)
		return -ENOMEM;
	e->buf = nb;
	e->cap = ncap;
	return 0;
}

static int dump_series(struct emitter *e, const struct tsdb_series *s)
{
	struct chunk_iter it;
	uint8_t *p;
	uint32_t i;
	size_t j;
	int64_t t;
	double v;
	int k, err;

	e->len = 0;
	err = em_reserve(e, series_entry_size(s->labels, s->nlabels));
	if (err)
		return err;
	p = e->buf;
	series_entry_put(&p, s->id, s->labels, s->nlabels);
	e->len = (size_t)(p - e->buf);
	for (i = 0; i < s->nclosed; i++) {
		const struct tsdb_closed *c = &s->closed[i];

		err = em_reserve(e, 28 + c->nbytes);
		if (err)
			return err;
		p = e->buf + e->len;
		put_u8(&p, 'C');
		put_u32(&p, s->id);
		put_u64(&p, (uint64_t)c->mint);
		put_u64(&p, (uint64_t)c->maxt);
		put_u16(&p, c->n);
		put_u8(&p, c->mode);
		put_u32(&p, c->nbytes);
		memcpy(p, c->data, c->nbytes);
		e->len += 28 + c->nbytes;
	}
	for (k = 0; k < TIER_COUNT; k++) {
		const struct tsdb_tier *tr = &s->tier[k];

		if (!tr->n)
			continue;
		err = em_reserve(e, 10 + tr->n * 40);
		if (err)
			return err;
		p = e->buf + e->len;
		put_u8(&p, 'A');
		put_u32(&p, s->id);
		put_u8(&p, (uint8_t)k);
		put_u32(&p, (uint32_t)tr->n);
		for (j = 0; j < tr->n; j++) {
			put_u64(&p, (uint64_t)tr->b[j].t);
			put_u64(&p, dbits(tr->b[j].min));
			put_u64(&p, dbits(tr->b[j].max));
			put_u64(&p, dbits(tr->b[j].sum));
			put_u64(&p, tr->b[j].count);
		}
		e->len = (size_t)(p - e->buf);
	}
	chunk_iter__init(&it, s->head.buf, chunk__bytes(&s->head), s->head.n, s->head.mode);
	while (chunk_iter__next(&it, &t, &v)) {
		err = em_reserve(e, 21);
		if (err)
			return err;
		p = e->buf + e->len;
		put_u8(&p, 'P');
		put_u32(&p, s->id);
		put_u64(&p, (uint64_t)t);
		put_u64(&p, dbits(v));
		e->len += 21;
	}
	return e->emit(e->ectx, e->buf, e->len);
}

static int dump_all(wal_emit_fn emit, void *ectx, void *ctx)
{
	struct tsdb *db = ctx;
	struct emitter e = { .emit = emit, .ectx = ectx };
	uint32_t id;
	int err = 0;

	for (id = 0; id < db->next_id && !err; id++) {
		if (db->series[id])
			err = dump_series(&e, db->series[id]);
	}
	free(e.buf);
	return err;
}

/* Checkpoint; caller holds db->lock (write). */
static int checkpoint_locked(struct tsdb *db)
{
	int err;

	if (!db->wal)
		return 0;
	pthread_mutex_lock(&db->wal_lock);
	/* The snapshot covers the buffered entries: hand them over first so the
	 * log and the snapshot agree on what was appended. */
	err = db->wlen ? wal__append(db->wal, db->wbuf, db->wlen) : 0;
	if (!err) {
		db->wlen = 0;
		err = wal__checkpoint(db->wal, dump_all, db);
	}
	pthread_mutex_unlock(&db->wal_lock);
	if (!err)
		db->checkpoints++;
	return err;
}

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static const uint8_t *rd(struct reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	return p;
}

static uint8_t rd_u8(struct reader *r)
{
	const uint8_t *p = rd(r, 1);

	return p ? *p : 0;
}

static uint16_t rd_u16(struct reader *r)
{
	const uint8_t *p = rd(r, 2);
	uint16_t v = 0;

	if (p)
		memcpy(&v, p, 2);
	return v;
}

static uint32_t rd_u32(struct reader *r)
{
	const uint8_t *p = rd(r, 4);
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, 4);
	return v;
}

static uint64_t rd_u64(struct reader *r)
{
	const uint8_t *p = rd(r, 8);
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, 8);
	return v;
}

static struct tsdb_series *replay_series(struct tsdb *db, uint32_t id)
{
	return id < db->series_cap ? db->series[id] : NULL;
}

static int replay_entry_series(struct tsdb *db, struct reader *r)
{
	struct tsdb_label l[TSDB_MAX_LABELS], sorted[TSDB_MAX_LABELS];
	char *strs[2 * TSDB_MAX_LABELS] = { 0 };
	uint32_t id = rd_u32(r);
	uint8_t n = rd_u8(r);
	size_t i, nstr = 0;
	uint16_t len;
	const uint8_t *p;
	int err = 0, ns;

	if (n > TSDB_MAX_LABELS || id >= UINT32_MAX - 2) {
		r->bad = true;
		return 0;
	}
	for (i = 0; i < n && !r->bad; i++) {
		for (int k = 0; k < 2; k++) {
			len = rd_u16(r);
			p = rd(r, len);
			if (!p)
				break;
			strs[nstr] = strndup((const char *)p, len);
			if (!strs[nstr]) {
				err = -ENOMEM;
				goto cleanup;
			}
			if (k)
				l[i].value = strs[nstr];
			else
				l[i].name = strs[nstr];
			nstr++;
		}
	}
	if (r->bad)
		goto cleanup;
	ns = labels_normalize(l, n, sorted);
	if (ns < 0 || (size_t)ns != n) {
		r->bad = true;
		goto cleanup;
	}
	if (!replay_series(db, id)) {
		uint64_t hash = index_hash_labels(sorted, n);
		int64_t old = index__find(db->ix, sorted, n, hash);

		/* The set was emptied by retention and created anew. */
		if (old >= 0)
			series_delete(db, db->series[old]);
		if (!series_create(db, id, sorted, n, hash, &err))
			goto cleanup;
	}
cleanup:
	for (i = 0; i < nstr; i++)
		free(strs[i]);
	return err;
}

static int replay_entry_chunk(struct tsdb *db, struct reader *r)
{
	struct tsdb_series *s = replay_series(db, rd_u32(r));
	int64_t mint = (int64_t)rd_u64(r), maxt = (int64_t)rd_u64(r), t = 0, lt = 0;
	uint16_t n = rd_u16(r);
	uint8_t mode = rd_u8(r);
	uint32_t nbytes = rd_u32(r);
	const uint8_t *data = rd(r, nbytes);
	struct chunk_iter it;
	struct tsdb_closed *c;
	uint16_t got = 0;
	double v = 0, lv = 0;
	uint8_t *copy;

	if (!data || !s || mode > CHUNK_INT || !n || (s->has_last && mint <= s->last_t) ||
	    s->head.n) {
		r->bad = true;
		return 0;
	}
	chunk_iter__init(&it, data, nbytes, n, mode);
	while (chunk_iter__next(&it, &t, &v)) {
		if (!got && t != mint)
			break;
		got++;
		lt = t;
		lv = v;
	}
	if (got != n || lt != maxt) {
		r->bad = true;
		return 0;
	}
	if (s->nclosed == s->capclosed) {
		uint32_t ncap = s->capclosed ? s->capclosed * 2 : 4;
		struct tsdb_closed *nc = realloc(s->closed, ncap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		s->closed = nc;
		s->capclosed = ncap;
	}
	copy = malloc(nbytes);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, nbytes);
	c = &s->closed[s->nclosed++];
	c->data = copy;
	c->nbytes = nbytes;
	c->n = n;
	c->mode = mode;
	c->mint = mint;
	c->maxt = maxt;
	if (mode == CHUNK_XOR)
		s->int_ok = false;
	s->has_last = true;
	s->last_t = lt;
	s->last_bits = dbits(lv);
	db->closed_bytes += nbytes;
	db->nsamples += n;
	return 0;
}

static int replay_entry_tier(struct tsdb *db, struct reader *r)
{
	struct tsdb_series *s = replay_series(db, rd_u32(r));
	uint8_t k = rd_u8(r);
	uint32_t n = rd_u32(r), i;
	struct tsdb_tier *tr;
	struct tsdb_agg *b;

	if (r->bad || !s || k >= TIER_COUNT || (size_t)(r->end - r->p) / 40 < n || s->tier[k].n) {
		r->bad = true;
		return 0;
	}
	tr = &s->tier[k];
	b = calloc(n ? n : 1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		b[i].t = (int64_t)rd_u64(r);
		b[i].min = bitsd(rd_u64(r));
		b[i].max = bitsd(rd_u64(r));
		b[i].sum = bitsd(rd_u64(r));
		b[i].count = rd_u64(r);
		if (!b[i].count || (i && b[i].t <= b[i - 1].t))
			r->bad = true;
	}
	if (r->bad) {
		free(b);
		return 0;
	}
	tr->b = b;
	tr->n = n;
	tr->cap = n;
	return 0;
}

static int replay_entry_sample(struct tsdb *db, struct reader *r)
{
	struct tsdb_series *s = replay_series(db, rd_u32(r));
	int64_t t = (int64_t)rd_u64(r);
	double v = bitsd(rd_u64(r));
	int err;

	if (r->bad || !s) {
		r->bad = true;
		return 0;
	}
	err = series_append(db, s, t, v);
	db->appended_total -= err == 0;
	/* Out of order or duplicate in the log cannot come from an acknowledged
	 * append; keep what is there. */
	return err == -ENOMEM ? err : 0;
}

static int replay_record(const void *rec, size_t len, void *ctx)
{
	struct tsdb *db = ctx;
	struct reader r = { .p = rec, .end = (const uint8_t *)rec + len };
	int err = 0;

	while (r.p < r.end && !r.bad && !err) {
		switch (rd_u8(&r)) {
		case 'S':
			err = replay_entry_series(db, &r);
			break;
		case 'P':
			err = replay_entry_sample(db, &r);
			break;
		case 'C':
			err = replay_entry_chunk(db, &r);
			break;
		case 'A':
			err = replay_entry_tier(db, &r);
			break;
		case 'D': {
			struct tsdb_series *s = replay_series(db, rd_u32(&r));

			if (s)
				series_delete(db, s);
			break;
		}
		default:
			r.bad = true;
		}
	}
	if (r.bad)
		db->wal_corruptions++;
	return err;
}

/* --- open / close / maintain --- */

static void db_free(struct tsdb *db)
{
	uint32_t id;
	size_t i;

	if (!db)
		return;
	wal__close(db->wal);
	for (id = 0; id < db->next_id; id++)
		series_free(db->series[id]);
	free(db->series);
	index__free(db->ix);
	free(db->cache);
	for (i = 0; i < db->nrules; i++)
		free(db->rules[i].prefix);
	free(db->rules);
	free(db->wbuf);
	pthread_rwlock_destroy(&db->lock);
	pthread_mutex_destroy(&db->wal_lock);
	free(db);
}

struct tsdb *tsdb__open(const struct tsdb_opts *opts, char *err, size_t errlen)
{
	static const struct tsdb_opts defaults;
	struct wal_replay_stats rs = { 0 };
	uint8_t key[WAL_KEY_BYTES];
	struct wal_opts wo = { 0 };
	struct tsdb *db = NULL;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!opts)
		opts = &defaults;
	if (opts->nretention && !opts->retention) {
		seterr(err, errlen, "tsdb: retention rules missing");
		errno = EINVAL;
		return NULL;
	}
	db = calloc(1, sizeof(*db));
	if (!db) {
		seterr(err, errlen, "tsdb: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	pthread_rwlock_init(&db->lock, NULL);
	pthread_mutex_init(&db->wal_lock, NULL);
	db->ckpt_interval_ms = opts->checkpoint_interval_ms > 0 ? opts->checkpoint_interval_ms :
								  TSDB_DEFAULT_CKPT_MS;
	rc = rules_init(db, opts);
	if (rc) {
		seterr(err, errlen, "tsdb: %s",
		       rc == -EINVAL ? "bad retention rule" : "out of memory");
		goto fail;
	}
	db->ix = index__new();
	if (!db->ix || cache_resize(db)) {
		rc = -ENOMEM;
		seterr(err, errlen, "tsdb: out of memory");
		goto fail;
	}
	if (!opts->dir)
		return db;
	if (opts->key_file) {
		rc = wal_read_key(opts->key_file, key, err, errlen);
		if (rc)
			goto fail;
		wo.key = key;
	}
	wo.dir = opts->dir;
	db->wal = wal__open(&wo, err, errlen);
	explicit_bzero(key, sizeof(key));
	if (!db->wal) {
		rc = -(errno ? errno : EIO);
		goto fail;
	}
	db->replaying = true;
	rc = wal__replay(db->wal, replay_record, db, &rs);
	db->replaying = false;
	if (rc) {
		seterr(err, errlen, "tsdb: replay of %s failed: %s", opts->dir, strerror(-rc));
		goto fail;
	}
	db->wal_corruptions += rs.corrupt_frames;
	if (rs.corrupt_frames || rs.first_error[0])
		seterr(err, errlen,
		       "tsdb: WAL replay skipped %llu corrupt frame(s), %llu bytes: %s",
		       (unsigned long long)rs.corrupt_frames, (unsigned long long)rs.skipped_bytes,
		       rs.first_error);
	else if (db->wal_corruptions)
		seterr(err, errlen, "tsdb: WAL replay skipped %llu malformed record(s)",
		       (unsigned long long)db->wal_corruptions);
	return db;

fail:
	db_free(db);
	errno = rc < 0 ? -rc : EINVAL;
	return NULL;
}

void tsdb__close(struct tsdb *db)
{
	if (!db)
		return;
	if (db->wal) {
		pthread_rwlock_wrlock(&db->lock);
		if (checkpoint_locked(db)) {
			/* Keep the log: it replays what the checkpoint would hold. */
			pthread_mutex_lock(&db->wal_lock);
			if (db->wlen && !wal__append(db->wal, db->wbuf, db->wlen))
				db->wlen = 0;
			wal__sync(db->wal);
			pthread_mutex_unlock(&db->wal_lock);
		}
		pthread_rwlock_unlock(&db->lock);
	}
	db_free(db);
}

int tsdb__maintain(struct tsdb *db, int64_t now_ms)
{
	uint32_t id;
	bool empty;
	int err = 0, rc;

	if (!db)
		return -EINVAL;
	pthread_rwlock_wrlock(&db->lock);
	for (id = 0; id < db->next_id; id++) {
		struct tsdb_series *s = db->series[id];

		if (!s)
			continue;
		rc = series_trim(db, s, now_ms, &empty);
		if (rc && !err)
			err = rc;
		if (!rc && empty)
			series_delete(db, s);
	}
	if (db->wal) {
		if (!db->last_ckpt_ms)
			db->last_ckpt_ms = now_ms;
		if (now_ms - db->last_ckpt_ms >= db->ckpt_interval_ms) {
			rc = checkpoint_locked(db);
			if (!rc)
				db->last_ckpt_ms = now_ms;
			if (rc && !err)
				err = rc;
		}
	}
	pthread_rwlock_unlock(&db->lock);
	return err;
}

int tsdb__checkpoint(struct tsdb *db)
{
	int err;

	if (!db)
		return -EINVAL;
	pthread_rwlock_wrlock(&db->lock);
	err = checkpoint_locked(db);
	pthread_rwlock_unlock(&db->lock);
	return err;
}
