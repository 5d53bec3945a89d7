/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashstore_sqlite: the SQLite backend of dashstore (see dashstore.h). One
 * connection behind a mutex; WAL journal with synchronous=FULL, so an
 * acknowledged write survives a crash; a busy timeout for a second process
 * (`novamon` tools) reading the same file.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashstore.h"

#define DS_SQLITE_BUSY_MS 5000

struct ds_sqlite {
	sqlite3 *db;
	pthread_mutex_t lock;
};

static const char ds_sqlite_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS novamon_dashboards ("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" owner TEXT NOT NULL DEFAULT '',"
	" tenant TEXT NOT NULL DEFAULT '',"
	" acl TEXT NOT NULL DEFAULT '{}',"
	" doc TEXT NOT NULL,"
	" created_ms BIGINT NOT NULL,"
	" updated_ms BIGINT NOT NULL,"
	" version BIGINT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS novamon_dashboards_tenant ON novamon_dashboards (tenant);"
	"CREATE TABLE IF NOT EXISTS novamon_flags (name TEXT PRIMARY KEY, set_ms BIGINT NOT NULL);";

#define DS_SQLITE_COLS "id, name, owner, tenant, acl, doc, created_ms, updated_ms, version"

/* Prepare sql; NULL on failure (the caller answers -EIO). */
static sqlite3_stmt *ds_sqlite_prepare(struct ds_sqlite *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static const char *ds_sqlite_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? (const char *)t : "";
}

/* A row of DS_SQLITE_COLS into a list (out_list) or one document (out_doc). */
static int ds_sqlite_row(sqlite3_stmt *st, struct dashstore_list *out_list,
			 struct dashstore_doc *out_doc)
{
	const char *id = ds_sqlite_text(st, 0), *name = ds_sqlite_text(st, 1);
	const char *owner = ds_sqlite_text(st, 2), *tenant = ds_sqlite_text(st, 3);
	const char *acl = ds_sqlite_text(st, 4), *doc = ds_sqlite_text(st, 5);
	int64_t created = sqlite3_column_int64(st, 6), updated = sqlite3_column_int64(st, 7);
	int64_t version = sqlite3_column_int64(st, 8);

	if (out_list)
		return dashstore_list__push(out_list, id, name, owner, tenant, acl, doc, created,
					    updated, version);
	return dashstore_doc__fill(out_doc, id, name, owner, tenant, acl, doc, created, updated,
				   version);
}

static int ds_sqlite_bind_doc(sqlite3_stmt *st, const struct dashstore_doc *d)
{
	int rc = SQLITE_OK;

	rc |= sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 2, d->name, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 3, d->owner, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 4, d->tenant, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 5, d->acl ? d->acl : "{}", -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 6, d->doc, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(st, 7, d->created_ms);
	rc |= sqlite3_bind_int64(st, 8, d->updated_ms);
	rc |= sqlite3_bind_int64(st, 9, d->version);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int ds_sqlite_create(void *be, const struct dashstore_doc *d)
{
	struct ds_sqlite *s = be;
	sqlite3_stmt *st;
	int rc, err = -EIO;

	pthread_mutex_lock(&s->lock);
	st = ds_sqlite_prepare(s, "INSERT INTO novamon_dashboards (" DS_SQLITE_COLS
				  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
	if (!st || ds_sqlite_bind_doc(st, d))
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		err = 0;
	else if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
		err = -EEXIST;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* Called with the lock held. */
static int ds_sqlite_get_locked(struct ds_sqlite *s, const char *id, struct dashstore_doc *out)
{
	sqlite3_stmt *st;
	int rc, err = -EIO;

	st = ds_sqlite_prepare(s,
			       "SELECT " DS_SQLITE_COLS " FROM novamon_dashboards WHERE id = ?1");
	if (!st || sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = ds_sqlite_row(st, NULL, out);
	else if (rc == SQLITE_DONE)
		err = -ENOENT;
out:
	sqlite3_finalize(st);
	return err;
}

static int ds_sqlite_get(void *be, const char *id, struct dashstore_doc *out)
{
	struct ds_sqlite *s = be;
	int err;

	pthread_mutex_lock(&s->lock);
	err = ds_sqlite_get_locked(s, id, out);
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* After a conditional write touched no row: was the id missing or the version stale? */
static int ds_sqlite_why_not(struct ds_sqlite *s, const char *id)
{
	struct dashstore_doc cur = { 0 };
	int err = ds_sqlite_get_locked(s, id, &cur);

	dashstore_doc__clear(&cur);
	return err == 0 ? -ESTALE : err;
}

static int ds_sqlite_update(void *be, const struct dashstore_doc *d, int64_t *created_ms)
{
	struct ds_sqlite *s = be;
	sqlite3_stmt *st;
	int err = -EIO;

	pthread_mutex_lock(&s->lock);
	st = ds_sqlite_prepare(s,
			       "UPDATE novamon_dashboards SET name = ?2, owner = ?3, tenant = ?4,"
			       " acl = ?5, doc = ?6, updated_ms = ?8, version = ?9 + 1"
			       " WHERE id = ?1 AND version = ?9 RETURNING created_ms");
	if (!st || ds_sqlite_bind_doc(st, d))
		goto out;
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		*created_ms = sqlite3_column_int64(st, 0);
		err = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		break;
	case SQLITE_DONE:
		err = ds_sqlite_why_not(s, d->id);
		break;
	default:
		break;
	}
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int ds_sqlite_del(void *be, const char *id, int64_t version)
{
	struct ds_sqlite *s = be;
	sqlite3_stmt *st;
	int err = -EIO;

	pthread_mutex_lock(&s->lock);
	st = ds_sqlite_prepare(s, "DELETE FROM novamon_dashboards"
				  " WHERE id = ?1 AND (?2 = 0 OR version = ?2)");
	if (!st || sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, version) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	err = sqlite3_changes(s->db) ? 0 : ds_sqlite_why_not(s, id);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int ds_sqlite_list(void *be, const char *tenant, struct dashstore_list *out)
{
	struct ds_sqlite *s = be;
	sqlite3_stmt *st;
	int rc, err = -EIO;

	pthread_mutex_lock(&s->lock);
	st = ds_sqlite_prepare(s, "SELECT " DS_SQLITE_COLS " FROM novamon_dashboards"
				  " WHERE ?1 IS NULL OR tenant = ?1 ORDER BY name, id");
	if (!st)
		goto out;
	rc = tenant ? sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC) :
		      sqlite3_bind_null(st, 1);
	if (rc != SQLITE_OK)
		goto out;
	err = 0;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = ds_sqlite_row(st, out, NULL);
	if (!err && rc != SQLITE_DONE)
		err = -EIO;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int ds_sqlite_flag_set(void *be, const char *name, int64_t now_ms)
{
	struct ds_sqlite *s = be;
	sqlite3_stmt *st;
	int err = -EIO;

	pthread_mutex_lock(&s->lock);
	st = ds_sqlite_prepare(s, "INSERT INTO novamon_flags (name, set_ms) VALUES (?1, ?2)"
				  " ON CONFLICT (name) DO NOTHING");
	if (st && sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_int64(st, 2, now_ms) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
		err = 0;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int ds_sqlite_flag_test(void *be, const char *name)
{
	struct ds_sqlite *s = be;
	sqlite3_stmt *st;
	int rc, err = -EIO;

	pthread_mutex_lock(&s->lock);
	st = ds_sqlite_prepare(s, "SELECT 1 FROM novamon_flags WHERE name = ?1");
	if (st && sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK) {
		rc = sqlite3_step(st);
		err = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static void ds_sqlite_close(void *be)
{
	struct ds_sqlite *s = be;

	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct dashstore_ops ds_sqlite_ops = {
	.name = "sqlite",
	.create = ds_sqlite_create,
	.get = ds_sqlite_get,
	.update = ds_sqlite_update,
	.del = ds_sqlite_del,
	.list = ds_sqlite_list,
	.flag_set = ds_sqlite_flag_set,
	.flag_test = ds_sqlite_flag_test,
	.close = ds_sqlite_close,
};

struct dashstore *dashstore_sqlite__open(const char *path, char *err, size_t errlen)
{
	struct ds_sqlite *s = NULL;
	char *msg = NULL;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	/* the mutex serializes our use; NOMUTEX spares SQLite's own */
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		if (err && errlen)
			snprintf(err, errlen, "sqlite %s: %s", path,
				 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, DS_SQLITE_BUSY_MS);
	if (sqlite3_exec(s->db, ds_sqlite_schema, NULL, NULL, &msg) != SQLITE_OK) {
		if (err && errlen)
			snprintf(err, errlen, "sqlite %s: %s", path, msg ? msg : "schema failed");
		sqlite3_free(msg);
		goto fail;
	}
	return dashstore__wrap(&ds_sqlite_ops, s);

fail:
	ds_sqlite_close(s);
	errno = EIO;
	return NULL;
}
