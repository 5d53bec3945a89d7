/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashstore_pg: the PostgreSQL backend of dashstore (see dashstore.h),
 * through libpq. One connection behind a mutex; a connection found broken is
 * reset once and the statement retried (every statement here is idempotent
 * or conditional on the version, so a retry cannot apply a write twice with
 * a different outcome than -ESTALE/-EEXIST). Parameters go as text through
 * PQexecParams, never spliced into SQL.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashstore.h"

/* SQLSTATE unique_violation */
#define DS_PG_UNIQUE_VIOLATION "23505"

struct ds_pg {
	PGconn *conn;
	pthread_mutex_t lock;
};

static const char ds_pg_schema[] =
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

#define DS_PG_COLS "id, name, owner, tenant, acl, doc, created_ms, updated_ms, version"

/*
 * Run sql with n text parameters, resetting a broken connection once. Returns
 * the result (PQclear it) or NULL when the server could not be reached.
 */
static PGresult *ds_pg_exec(struct ds_pg *p, const char *sql, int n, const char *const *params)
{
	PGresult *r;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (PQstatus(p->conn) != CONNECTION_OK) {
			PQreset(p->conn);
			if (PQstatus(p->conn) != CONNECTION_OK)
				continue;
		}
		r = PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
		if (r && PQresultStatus(r) == PGRES_FATAL_ERROR &&
		    PQstatus(p->conn) != CONNECTION_OK) {
			/* the connection broke under the statement: try once more */
			PQclear(r);
			continue;
		}
		return r;
	}
	return NULL;
}

static bool ds_pg_ok(const PGresult *r)
{
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static int64_t ds_pg_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int ds_pg_row(const PGresult *r, int row, struct dashstore_list *out_list,
		     struct dashstore_doc *out_doc)
{
	const char *id = PQgetvalue(r, row, 0), *name = PQgetvalue(r, row, 1);
	const char *owner = PQgetvalue(r, row, 2), *tenant = PQgetvalue(r, row, 3);
	const char *acl = PQgetvalue(r, row, 4), *doc = PQgetvalue(r, row, 5);
	int64_t created = ds_pg_i64(r, row, 6), updated = ds_pg_i64(r, row, 7);
	int64_t version = ds_pg_i64(r, row, 8);

	if (out_list)
		return dashstore_list__push(out_list, id, name, owner, tenant, acl, doc, created,
					    updated, version);
	return dashstore_doc__fill(out_doc, id, name, owner, tenant, acl, doc, created, updated,
				   version);
}

/* The nine columns of d as text parameters; nums holds the numbers' text. */
static void ds_pg_params(const struct dashstore_doc *d, char nums[3][24], const char *params[9])
{
	snprintf(nums[0], sizeof(nums[0]), "%" PRId64, d->created_ms);
	snprintf(nums[1], sizeof(nums[1]), "%" PRId64, d->updated_ms);
	snprintf(nums[2], sizeof(nums[2]), "%" PRId64, d->version);
	params[0] = d->id;
	params[1] = d->name;
	params[2] = d->owner;
	params[3] = d->tenant;
	params[4] = d->acl ? d->acl : "{}";
	params[5] = d->doc;
	params[6] = nums[0];
	params[7] = nums[1];
	params[8] = nums[2];
}

static int ds_pg_create(void *be, const struct dashstore_doc *d)
{
	struct ds_pg *p = be;
	const char *params[9];
	char nums[3][24];
	PGresult *r;
	int err = 0;

	ds_pg_params(d, nums, params);
	pthread_mutex_lock(&p->lock);
	r = ds_pg_exec(p,
		       "INSERT INTO novamon_dashboards (" DS_PG_COLS
		       ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		       9, params);
	if (!ds_pg_ok(r)) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		err = state && !strcmp(state, DS_PG_UNIQUE_VIOLATION) ? -EEXIST : -EIO;
	}
	PQclear(r);
	pthread_mutex_unlock(&p->lock);
	return err;
}

/* Called with the lock held. */
static int ds_pg_get_locked(struct ds_pg *p, const char *id, struct dashstore_doc *out)
{
	const char *params[1] = { id };
	PGresult *r;
	int err;

	r = ds_pg_exec(p, "SELECT " DS_PG_COLS " FROM novamon_dashboards WHERE id = $1", 1, params);
	if (!ds_pg_ok(r))
		err = -EIO;
	else if (PQntuples(r) == 0)
		err = -ENOENT;
	else
		err = ds_pg_row(r, 0, NULL, out);
	PQclear(r);
	return err;
}

static int ds_pg_get(void *be, const char *id, struct dashstore_doc *out)
{
	struct ds_pg *p = be;
	int err;

	pthread_mutex_lock(&p->lock);
	err = ds_pg_get_locked(p, id, out);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int ds_pg_why_not(struct ds_pg *p, const char *id)
{
	struct dashstore_doc cur = { 0 };
	int err = ds_pg_get_locked(p, id, &cur);

	dashstore_doc__clear(&cur);
	return err == 0 ? -ESTALE : err;
}

static int ds_pg_update(void *be, const struct dashstore_doc *d, int64_t *created_ms)
{
	struct ds_pg *p = be;
	const char *all[9], *params[8];
	char nums[3][24];
	PGresult *r;
	int err;

	/* every column but created_ms, which an update keeps */
	ds_pg_params(d, nums, all);
	memcpy(params, all, 6 * sizeof(*params));
	params[6] = all[7];
	params[7] = all[8];
	pthread_mutex_lock(&p->lock);
	r = ds_pg_exec(p,
		       "UPDATE novamon_dashboards SET name = $2, owner = $3, tenant = $4, acl = $5,"
		       " doc = $6, updated_ms = $7, version = $8::bigint + 1"
		       " WHERE id = $1 AND version = $8::bigint RETURNING created_ms",
		       8, params);
	if (!ds_pg_ok(r)) {
		err = -EIO;
	} else if (PQntuples(r) == 0) {
		err = ds_pg_why_not(p, d->id);
	} else {
		*created_ms = ds_pg_i64(r, 0, 0);
		err = 0;
	}
	PQclear(r);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int ds_pg_del(void *be, const char *id, int64_t version)
{
	struct ds_pg *p = be;
	char v[24];
	const char *params[2] = { id, v };
	PGresult *r;
	int err;

	snprintf(v, sizeof(v), "%" PRId64, version);
	pthread_mutex_lock(&p->lock);
	r = ds_pg_exec(p,
		       "DELETE FROM novamon_dashboards"
		       " WHERE id = $1 AND ($2::bigint = 0 OR version = $2::bigint)",
		       2, params);
	if (!ds_pg_ok(r))
		err = -EIO;
	else if (strtoll(PQcmdTuples(r), NULL, 10) == 0)
		err = ds_pg_why_not(p, id);
	else
		err = 0;
	PQclear(r);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int ds_pg_list(void *be, const char *tenant, struct dashstore_list *out)
{
	struct ds_pg *p = be;
	const char *params[1] = { tenant };
	PGresult *r;
	int i, err = 0;

	pthread_mutex_lock(&p->lock);
	/* a NULL parameter is SQL NULL: every tenant */
	r = ds_pg_exec(p,
		       "SELECT " DS_PG_COLS " FROM novamon_dashboards"
		       " WHERE $1::text IS NULL OR tenant = $1::text ORDER BY name, id",
		       1, params);
	if (!ds_pg_ok(r))
		err = -EIO;
	for (i = 0; !err && i < PQntuples(r); i++)
		err = ds_pg_row(r, i, out, NULL);
	PQclear(r);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int ds_pg_flag_set(void *be, const char *name, int64_t now_ms)
{
	struct ds_pg *p = be;
	char t[24];
	const char *params[2] = { name, t };
	PGresult *r;
	int err;

	snprintf(t, sizeof(t), "%" PRId64, now_ms);
	pthread_mutex_lock(&p->lock);
	r = ds_pg_exec(p,
		       "INSERT INTO novamon_flags (name, set_ms) VALUES ($1, $2)"
		       " ON CONFLICT (name) DO NOTHING",
		       2, params);
	err = ds_pg_ok(r) ? 0 : -EIO;
	PQclear(r);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int ds_pg_flag_test(void *be, const char *name)
{
	struct ds_pg *p = be;
	const char *params[1] = { name };
	PGresult *r;
	int err;

	pthread_mutex_lock(&p->lock);
	r = ds_pg_exec(p, "SELECT 1 FROM novamon_flags WHERE name = $1", 1, params);
	err = !ds_pg_ok(r) ? -EIO : PQntuples(r) > 0;
	PQclear(r);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static void ds_pg_close(void *be)
{
	struct ds_pg *p = be;

	if (!p)
		return;
	PQfinish(p->conn);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct dashstore_ops ds_pg_ops = {
	.name = "postgresql",
	.create = ds_pg_create,
	.get = ds_pg_get,
	.update = ds_pg_update,
	.del = ds_pg_del,
	.list = ds_pg_list,
	.flag_set = ds_pg_flag_set,
	.flag_test = ds_pg_flag_test,
	.close = ds_pg_close,
};

static void ds_pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The first line of libpq's message (they end in a newline, some have two lines). */
static void ds_pg_message(char *err, size_t errlen, const char *what, const char *msg)
{
	size_t n = strcspn(msg ? msg : "", "\n");

	if (err && errlen)
		snprintf(err, errlen, "postgresql: %s: %.*s", what, (int)n, msg ? msg : "");
}

struct dashstore *dashstore_pg__open(const char *conninfo, char *err, size_t errlen)
{
	struct ds_pg *p;
	PGresult *r;

	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->conn = PQconnectdb(conninfo);
	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		ds_pg_message(err, errlen, "cannot connect",
			      p->conn ? PQerrorMessage(p->conn) : "out of memory");
		goto fail;
	}
	/* keep the server's notices ("relation already exists, skipping") off stderr */
	PQsetNoticeProcessor(p->conn, ds_pg_quiet, NULL);
	r = PQexec(p->conn, ds_pg_schema);
	if (!ds_pg_ok(r)) {
		ds_pg_message(err, errlen, "cannot create the schema", PQerrorMessage(p->conn));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return dashstore__wrap(&ds_pg_ops, p);

fail:
	ds_pg_close(p);
	errno = EIO;
	return NULL;
}
