/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashstore: where dashboards live. One interface over two backends, picked
 * by the URL given to dashstore__open():
 *
 *   sqlite:PATH              SQLite 3 file (created with its table), the default
 *                            (state_dir/dashboards.db); "sqlite:" alone is refused
 *   postgresql://... or      PostgreSQL through libpq (any libpq connection URI;
 *   postgres://...           the table is created when missing)
 *
 * A dashboard is a document (its JSON text, opaque here) with the columns the
 * API filters and authorizes on: id, name, owner, tenant, acl (JSON text),
 * created and updated (ms since the epoch) and a version for optimistic
 * concurrency: create sets it to 1, each update to the stored one + 1, and an
 * update or delete that names another version than the stored one fails with
 * -ESTALE (the HTTP API answers 409).
 *
 * Both backends keep one connection behind a mutex, so a struct dashstore may
 * be used from any number of threads. Nothing here logs: errors come back as
 * negative errno values, with the backend's message where the call takes an
 * err buffer.
 *
 * Schema (both backends; the names are the API for anyone reading the DB):
 *   novamon_dashboards(id TEXT PRIMARY KEY, name TEXT, owner TEXT, tenant TEXT,
 *                      acl TEXT, doc TEXT, created_ms BIGINT, updated_ms BIGINT,
 *                      version BIGINT)
 *   novamon_flags(name TEXT PRIMARY KEY, set_ms BIGINT)   one-shot facts
 *                      ("the operations dashboard was seeded")
 */
#ifndef NOVAMON_DASHSTORE_H
#define NOVAMON_DASHSTORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "build_config.h"

#define DASHSTORE_ID_LEN 64 /* with the NUL: ids are [A-Za-z0-9_-]{1,63} */
#define DASHSTORE_NAME_LEN 256 /* with the NUL */
#define DASHSTORE_SUBJECT_LEN 64
#define DASHSTORE_TENANT_LEN 64

/* One stored dashboard. acl and doc are malloc'd, owned by the struct. */
struct dashstore_doc {
	char id[DASHSTORE_ID_LEN];
	char name[DASHSTORE_NAME_LEN];
	char owner[DASHSTORE_SUBJECT_LEN];
	char tenant[DASHSTORE_TENANT_LEN]; /* "" = no tenant */
	char *acl; /* JSON text; NULL is stored as "{}" */
	char *doc; /* JSON text of the dashboard */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t version;
};

/* Free acl and doc and zero the struct; NULL is fine. */
void dashstore_doc__clear(struct dashstore_doc *d);

/* A list of documents from dashstore__list(). */
struct dashstore_list {
	struct dashstore_doc *items;
	size_t n;
	size_t cap;
};

void dashstore_list__free(struct dashstore_list *l);

struct dashstore;

/*
 * Open the store at url (see the top of this file), creating the schema when
 * missing. Returns the store, or NULL with errno set (EINVAL: a URL of no
 * known scheme; ENOTSUP: postgresql:// in a build without libpq; EIO: the
 * backend refused, its message in err).
 */
struct dashstore *dashstore__open(const char *url, char *err, size_t errlen);
/* Close and free; NULL is fine. Returns NULL. */
struct dashstore *dashstore__close(struct dashstore *ds);
/* "sqlite" or "postgresql". */
const char *dashstore__backend(const struct dashstore *ds);

/*
 * Store a new dashboard. d->id must be a valid id (dashstore_id_ok());
 * created/updated are set to now_ms and version to 1 in *d. Returns 0,
 * -EEXIST when the id is taken, -EINVAL for a bad id or name, -EIO.
 */
int dashstore__create(struct dashstore *ds, struct dashstore_doc *d, int64_t now_ms);
/* Read dashboard id into *out (cleared first). Returns 0, -ENOENT, -EIO. */
int dashstore__get(struct dashstore *ds, const char *id, struct dashstore_doc *out);
/*
 * Replace dashboard d->id when its stored version is d->version: the row takes
 * d's name, owner, tenant, acl and doc, updated = now_ms and version + 1,
 * which are written back into *d (created too). Returns 0, -ENOENT, -ESTALE
 * (another version is stored: nothing written), -EIO.
 */
int dashstore__update(struct dashstore *ds, struct dashstore_doc *d, int64_t now_ms);
/* Delete id; version 0 deletes any version. Returns 0, -ENOENT, -ESTALE, -EIO. */
int dashstore__delete(struct dashstore *ds, const char *id, int64_t version);
/*
 * List dashboards ordered by name, then id. tenant NULL: all; else only those
 * of that tenant ("" = only those without a tenant). Returns 0 or -EIO/-ENOMEM.
 */
int dashstore__list(struct dashstore *ds, const char *tenant, struct dashstore_list *out);
/*
 * One-shot facts: dashstore__flag_set() records name (idempotent), and
 * dashstore__flag_test() returns 1 when it was recorded, 0 when not, or -EIO.
 */
int dashstore__flag_set(struct dashstore *ds, const char *name, int64_t now_ms);
int dashstore__flag_test(struct dashstore *ds, const char *name);

/* A new random id: 32 lower-case hex digits. Returns 0 or -errno. */
int dashstore_new_id(char id[DASHSTORE_ID_LEN]);
/* An id the store accepts: 1 to 63 of [A-Za-z0-9_-]. */
bool dashstore_id_ok(const char *id);

/*
 * Backends. Each fills in a struct dashstore_ops and hands it to
 * dashstore__wrap(); dashstore.c checks arguments and dispatches.
 */
struct dashstore_ops {
	const char *name;
	int (*create)(void *be, const struct dashstore_doc *d);
	int (*get)(void *be, const char *id, struct dashstore_doc *out);
	/*
	 * Write d's columns with version d->version + 1 where id = d->id and
	 * version = d->version (the expected one); 0 rows: -ENOENT or -ESTALE.
	 * Reads back the row's created_ms.
	 */
	int (*update)(void *be, const struct dashstore_doc *d, int64_t *created_ms);
	int (*del)(void *be, const char *id, int64_t version);
	int (*list)(void *be, const char *tenant, struct dashstore_list *out);
	int (*flag_set)(void *be, const char *name, int64_t now_ms);
	int (*flag_test)(void *be, const char *name);
	void (*close)(void *be);
};

/* Returns a store over be, or NULL with errno set (be is closed then). */
struct dashstore *dashstore__wrap(const struct dashstore_ops *ops, void *be);
/* Append one row to a list (the strings are copied). Returns 0 or -ENOMEM. */
int dashstore_list__push(struct dashstore_list *l, const char *id, const char *name,
			 const char *owner, const char *tenant, const char *acl, const char *doc,
			 int64_t created_ms, int64_t updated_ms, int64_t version);
/* Fill *d from row values as above (cleared first). Returns 0 or -ENOMEM. */
int dashstore_doc__fill(struct dashstore_doc *d, const char *id, const char *name,
			const char *owner, const char *tenant, const char *acl, const char *doc,
			int64_t created_ms, int64_t updated_ms, int64_t version);

/* dashstore_sqlite.c: path is a file name. NULL with errno set, message in err. */
struct dashstore *dashstore_sqlite__open(const char *path, char *err, size_t errlen);

#if HAVE_POSTGRESQL
/* dashstore_pg.c: conninfo is a libpq URI. NULL with errno set, message in err. */
struct dashstore *dashstore_pg__open(const char *conninfo, char *err, size_t errlen);
#else
static inline struct dashstore *dashstore_pg__open(const char *conninfo, char *err, size_t errlen)
{
	(void)conninfo;
	if (err && errlen)
		snprintf(
			err, errlen,
			"this novamon was built without PostgreSQL support (meson -Dpostgresql=enabled)");
	errno = ENOTSUP;
	return NULL;
}
#endif

#endif /* NOVAMON_DASHSTORE_H */
