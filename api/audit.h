/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit: the log of administrative actions (who, what, when, from where,
 * result), append-only and hash-chained so that tampering shows.
 *
 * One JSON object per line in DIR/audit.log, keys in this order:
 *
 *   {"seq":7,"time":"2026-03-01T10:00:00.123Z",
 *    "actor":{"subject":"alice","role":"admin","tenant":""},
 *    "remote_addr":"10.0.0.5","action":"POST /api/dashboards",
 *    "target":"/api/dashboards","result":201,
 *    "prev_hash":"<64 hex>","hash":"<64 hex>"}
 *
 * hash = SHA-256(prev_hash as its 64 hex characters || the line up to
 * ,"hash": followed by "}"), lower-case hex. seq counts from 1; the first
 * record of a chain has prev_hash of 64 zeros. Each record is written with
 * one write(2) and fsync'd before audit__append() returns (administrative
 * actions are rare; losing one is worse than the latency).
 *
 * A broken chain is never continued. audit__open() verifies the file; if
 * it does not verify (an edited, deleted, reordered or torn record), the
 * file is renamed, untouched, to audit-broken-<UTC time>.log as evidence,
 * and a new audit.log starts with an "audit.segment" record that names that
 * file and the seq where it broke, carrying on from the last record that
 * verified (its seq + 1, its hash as prev_hash). A chain may therefore
 * start at an "audit.segment" record instead of seq 1.
 *
 * What a chain cannot show by itself: a cut of the newest records, or a
 * rewrite of the whole file with fresh hashes. Anchor the head (GET
 * /api/audit returns it) somewhere the host cannot rewrite to catch those.
 */
#ifndef NOVAMON_AUDIT_H
#define NOVAMON_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define AUDIT_FILE "audit.log"
#define AUDIT_MAX_RECORD 8192 /* bytes of one line; longer fields are cut */

/* One action to record; strings may be NULL (recorded as ""). */
struct audit_entry {
	const char *subject; /* "" when auth is off */
	const char *role;
	const char *tenant;
	const char *remote_addr;
	const char *action; /* "POST /api/dashboards", "audit.segment", ... */
	const char *target;
	int result; /* the HTTP status */
	int64_t time_ms; /* 0: now */
};

/* What audit__open() found. */
struct audit_open_report {
	uint64_t last_seq; /* of the chain continued (0: a new log) */
	bool broken; /* the old file did not verify */
	uint64_t bad_seq; /* where it broke */
	char moved_to[512]; /* where the broken file went */
};

struct audit;

/*
 * Open (creating DIR, mode 0700, and the file, 0600, as needed) and verify
 * the log; see the comment at the top for a broken chain. Returns the log
 * or NULL with errno set and a reason in err.
 */
struct audit *audit__open(const char *dir, struct audit_open_report *report, char *err,
			  size_t errlen);
/* Close; NULL is fine. Returns NULL. */
struct audit *audit__close(struct audit *a);

/*
 * Append one record and fsync it. Thread safe. Returns 0 or a negative
 * errno (the record may then be torn on disk: the next open starts a new
 * segment).
 */
int audit__append(struct audit *a, const struct audit_entry *e);

/* The newest record's seq (0: none) and hash (65 bytes). */
void audit__head(struct audit *a, uint64_t *seq, char hash[65]);

/*
 * Verify the chain in the file at path. Returns 0 when every record
 * verifies (an empty or missing file too), -EBADMSG with *bad_seq set to
 * the seq the first bad record should have had (a changed byte, a deleted
 * or reordered record, a torn last line), or another negative errno for
 * I/O. *last_seq and *last_hash (either may be NULL; the hash needs 65
 * bytes) get the seq and hash of the last record that verified (0 and 64
 * zeros when none did).
 */
int audit__verify(const char *path, uint64_t *bad_seq, uint64_t *last_seq, char *last_hash);

/*
 * An http_server_opts.audit callback for ctx = struct audit: records
 * "METHOD PATH" (never the query string, which may hold a token), the
 * principal, the peer and the status. Called on a handler thread. A failed
 * write is logged once (and again after a success).
 */
void audit__http_hook(void *ctx, const struct http_request *req, int status);

/* How many routes audit__routes() fills. */
#define AUDIT_NROUTES 1

/*
 * GET /api/audit?since=TIME&after_seq=N&limit=N, admins only: the records
 * at or after since (RFC 3339 or unix seconds) and after seq N, oldest
 * first, at most limit (default 100, at most 10000), as
 * {"records":[...],"verified":true,"head":{"seq":N,"hash":"..."},
 * "truncated":false}; verified false adds "broken_at":SEQ.
 * Returns AUDIT_NROUTES or -ENOSPC.
 */
int audit__routes(struct audit *a, struct http_route *routes, size_t max);

#endif /* NOVAMON_AUDIT_H */
