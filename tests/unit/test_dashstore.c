/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashstore over SQLite in a private temporary directory: create, read,
 * update with optimistic concurrency (a stale version is -ESTALE and writes
 * nothing), delete, listing filtered by tenant, one-shot flags, persistence
 * across a reopen, and the URL forms dashstore__open() refuses.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "dashstore.h"

static char ds_dir[64];
static char ds_url[PATH_MAX + 8];
static char ds_path[PATH_MAX];

static void ds_setup(void)
{
	snprintf(ds_dir, sizeof(ds_dir), "/tmp/novamon-dashstore-XXXXXX");
	cr_assert_not_null(mkdtemp(ds_dir));
	snprintf(ds_path, sizeof(ds_path), "%s/dashboards.db", ds_dir);
	snprintf(ds_url, sizeof(ds_url), "sqlite:%s", ds_path);
}

static void ds_teardown(void)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char p[PATH_MAX + 16];
	size_t i;

	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", ds_path, suffix[i]);
		unlink(p);
	}
	rmdir(ds_dir);
}

TestSuite(dashstore, .init = ds_setup, .fini = ds_teardown);

static struct dashstore *ds_open(void)
{
	char err[256] = "";
	struct dashstore *ds = dashstore__open(ds_url, err, sizeof(err));

	cr_assert_not_null(ds, "open %s: %s", ds_url, err);
	cr_assert_str_eq(dashstore__backend(ds), "sqlite");
	return ds;
}

/* A document with the given columns; doc text is {"n":N}. */
static void ds_doc(struct dashstore_doc *d, const char *id, const char *name, const char *tenant,
		   int n)
{
	char doc[32];

	snprintf(doc, sizeof(doc), "{\"n\":%d}", n);
	cr_assert_eq(dashstore_doc__fill(d, id, name, "alice", tenant, "{\"viewers\":[]}", doc, 0,
					 0, 0),
		     0);
}

Test(dashstore, crud_and_versions)
{
	struct dashstore *ds = ds_open();
	struct dashstore_doc d = { 0 }, got = { 0 }, stale = { 0 };

	ds_doc(&d, "a1", "First", "", 1);
	cr_assert_eq(dashstore__create(ds, &d, 1000), 0);
	cr_assert_eq(d.version, 1);
	cr_assert_eq(d.created_ms, 1000);
	cr_assert_eq(dashstore__create(ds, &d, 1001), -EEXIST, "an id is created once");

	cr_assert_eq(dashstore__get(ds, "a1", &got), 0);
	cr_assert_str_eq(got.name, "First");
	cr_assert_str_eq(got.owner, "alice");
	cr_assert_str_eq(got.doc, "{\"n\":1}");
	cr_assert_str_eq(got.acl, "{\"viewers\":[]}");
	cr_assert_eq(got.version, 1);
	cr_assert_eq(got.created_ms, 1000);
	cr_assert_eq(got.updated_ms, 1000);
	cr_assert_eq(dashstore__get(ds, "nope", &got), -ENOENT);
	cr_assert_eq(dashstore__get(ds, "bad id!", &got), -ENOENT);

	/* two writers read version 1; the first update wins, the second is stale */
	cr_assert_eq(dashstore__get(ds, "a1", &got), 0);
	cr_assert_eq(dashstore__get(ds, "a1", &stale), 0);
	free(got.doc);
	got.doc = strdup("{\"n\":2}");
	snprintf(got.name, sizeof(got.name), "Second");
	cr_assert_eq(dashstore__update(ds, &got, 2000), 0);
	cr_assert_eq(got.version, 2);
	cr_assert_eq(got.created_ms, 1000, "an update keeps the creation time");
	cr_assert_eq(got.updated_ms, 2000);
	free(stale.doc);
	stale.doc = strdup("{\"n\":99}");
	cr_assert_eq(dashstore__update(ds, &stale, 2001), -ESTALE);
	cr_assert_eq(stale.version, 1, "a refused update leaves the caller's version");
	dashstore_doc__clear(&got);
	cr_assert_eq(dashstore__get(ds, "a1", &got), 0);
	cr_assert_str_eq(got.doc, "{\"n\":2}", "the stale write changed nothing");
	cr_assert_str_eq(got.name, "Second");
	cr_assert_eq(got.version, 2);

	/* update of a missing id */
	snprintf(stale.id, sizeof(stale.id), "gone");
	cr_assert_eq(dashstore__update(ds, &stale, 3000), -ENOENT);

	/* delete: a stale version is refused, the right one or 0 deletes */
	cr_assert_eq(dashstore__delete(ds, "a1", 1), -ESTALE);
	cr_assert_eq(dashstore__delete(ds, "a1", 2), 0);
	cr_assert_eq(dashstore__delete(ds, "a1", 0), -ENOENT);
	cr_assert_eq(dashstore__get(ds, "a1", &got), -ENOENT);

	/* the store checks what it keeps */
	ds_doc(&d, "", "No id", "", 1);
	cr_assert_eq(dashstore__create(ds, &d, 1), -EINVAL);
	ds_doc(&d, "x", "", "", 1);
	cr_assert_eq(dashstore__create(ds, &d, 1), -EINVAL, "a name is required");

	dashstore_doc__clear(&d);
	dashstore_doc__clear(&got);
	dashstore_doc__clear(&stale);
	dashstore__close(ds);
}

Test(dashstore, list_by_tenant)
{
	struct dashstore *ds = ds_open();
	struct dashstore_doc d = { 0 };
	struct dashstore_list l = { 0 };
	static const struct {
		const char *id, *name, *tenant;
	} rows[] = {
		{ "t1", "Zulu", "acme" }, { "t2", "Alpha", "acme" }, { "t3", "Mid", "globex" },
		{ "t4", "Host", "" },	  { "t5", "Alpha", "" },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ds_doc(&d, rows[i].id, rows[i].name, rows[i].tenant, (int)i);
		cr_assert_eq(dashstore__create(ds, &d, 10), 0);
	}
	cr_assert_eq(dashstore__list(ds, NULL, &l), 0);
	cr_assert_eq(l.n, 5);
	/* ordered by name, then id */
	cr_assert_str_eq(l.items[0].id, "t2");
	cr_assert_str_eq(l.items[1].id, "t5");
	cr_assert_str_eq(l.items[4].id, "t1");
	dashstore_list__free(&l);

	cr_assert_eq(dashstore__list(ds, "acme", &l), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.items[0].name, "Alpha");
	cr_assert_str_eq(l.items[0].tenant, "acme");
	cr_assert_str_eq(l.items[1].name, "Zulu");
	dashstore_list__free(&l);

	cr_assert_eq(dashstore__list(ds, "", &l), 0);
	cr_assert_eq(l.n, 2, "\"\" lists the dashboards of no tenant");
	cr_assert_str_eq(l.items[0].id, "t5");
	cr_assert_str_eq(l.items[1].id, "t4");
	dashstore_list__free(&l);

	cr_assert_eq(dashstore__list(ds, "initech", &l), 0);
	cr_assert_eq(l.n, 0);
	dashstore_list__free(&l);
	dashstore_doc__clear(&d);
	dashstore__close(ds);
}

Test(dashstore, persists_across_reopen)
{
	struct dashstore *ds = ds_open();
	struct dashstore_doc d = { 0 };
	const char *big;
	char *doc;
	size_t n = 200000;

	/* a document larger than a page, with quotes and UTF-8 */
	doc = malloc(n + 32);
	cr_assert_not_null(doc);
	memset(doc, 'x', n + 32);
	memcpy(doc, "{\"s\":\"\xc3\xa9\\\"", 10);
	strcpy(doc + n, "\"}");
	ds_doc(&d, "keep", "Kept", "acme", 7);
	free(d.doc);
	d.doc = doc;
	cr_assert_eq(dashstore__create(ds, &d, 5), 0);
	cr_assert_eq(dashstore__update(ds, &d, 6), 0);
	cr_assert_eq(dashstore__flag_test(ds, "seeded.operations"), 0);
	cr_assert_eq(dashstore__flag_set(ds, "seeded.operations", 6), 0);
	cr_assert_eq(dashstore__flag_set(ds, "seeded.operations", 7), 0, "idempotent");
	dashstore__close(ds);

	ds = ds_open();
	dashstore_doc__clear(&d);
	cr_assert_eq(dashstore__get(ds, "keep", &d), 0);
	cr_assert_str_eq(d.name, "Kept");
	cr_assert_str_eq(d.tenant, "acme");
	cr_assert_eq(d.version, 2);
	cr_assert_eq(d.created_ms, 5);
	cr_assert_eq(d.updated_ms, 6);
	big = d.doc;
	cr_assert_eq(strlen(big), n + 2);
	cr_assert_eq(memcmp(big, "{\"s\":\"\xc3\xa9\\\"", 10), 0);
	cr_assert_eq(dashstore__flag_test(ds, "seeded.operations"), 1);
	cr_assert_eq(dashstore__flag_test(ds, "seeded.other"), 0);
	dashstore_doc__clear(&d);
	dashstore__close(ds);
}

Test(dashstore, open_urls)
{
	char err[256];

	errno = 0;
	cr_assert_null(dashstore__open("sqlite:", err, sizeof(err)));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(err, "file name"), "%s", err);
	cr_assert_null(dashstore__open("mysql://x", err, sizeof(err)));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(err, "sqlite:PATH"), "%s", err);
	cr_assert_null(dashstore__open("sqlite:/nonexistent-dir/x/y.db", err, sizeof(err)));
	cr_assert_eq(errno, EIO);
	cr_assert(strstr(err, "/nonexistent-dir/x/y.db"), "%s", err);
#if HAVE_POSTGRESQL
	/* nothing listens on port 1: a clear connection error */
	cr_assert_null(
		dashstore__open("postgresql://127.0.0.1:1/x?connect_timeout=2", err, sizeof(err)));
	cr_assert_eq(errno, EIO);
	cr_assert(strstr(err, "postgresql: cannot connect"), "%s", err);
#else
	cr_assert_null(dashstore__open("postgresql://127.0.0.1/x", err, sizeof(err)));
	cr_assert_eq(errno, ENOTSUP);
#endif
}

Test(dashstore, ids)
{
	char a[DASHSTORE_ID_LEN], b[DASHSTORE_ID_LEN];

	cr_assert_eq(dashstore_new_id(a), 0);
	cr_assert_eq(dashstore_new_id(b), 0);
	cr_assert_eq(strlen(a), 32);
	cr_assert_str_neq(a, b);
	cr_assert(dashstore_id_ok(a));
	cr_assert(dashstore_id_ok("operations"));
	cr_assert(dashstore_id_ok("A-b_9"));
	cr_assert_not(dashstore_id_ok(""));
	cr_assert_not(dashstore_id_ok("a/b"));
	cr_assert_not(dashstore_id_ok("a b"));
	cr_assert_not(dashstore_id_ok("../x"));
	cr_assert_not(dashstore_id_ok(
		"0123456789012345678901234567890123456789012345678901234567890123"));
}

/* dashboards.store in the configuration: "", sqlite:PATH or a PostgreSQL URI. */
Test(dashstore, config_key)
{
	static const struct {
		const char *yaml, *want, *err;
	} cases[] = {
		{ "dashboards:\n  store: \"sqlite:/var/lib/x.db\"\n", "sqlite:/var/lib/x.db",
		  NULL },
		{ "dashboards:\n  store: postgresql://u@db/novamon\n", "postgresql://u@db/novamon",
		  NULL },
		{ "dashboards:\n  store: postgres:///d?host=/run/pg\n",
		  "postgres:///d?host=/run/pg", NULL },
		{ "dashboards:\n  store: \"\"\n", "", NULL },
		{ "dashboards:\n  store: \"sqlite:\"\n", NULL,
		  "dashboards.store: \"sqlite:\" is neither sqlite:PATH nor a postgresql:// URI" },
		{ "dashboards:\n  store: mysql://x\n", NULL,
		  "dashboards.store: \"mysql://x\" is neither" },
		{ "dashboards:\n  stor: x\n", NULL, "dashboards.stor" },
	};
	char path[PATH_MAX + 16], err[512];
	struct config cfg;
	size_t i;

	snprintf(path, sizeof(path), "%s/novamon.yaml", ds_dir);
	config_defaults(&cfg);
	cr_assert_str_eq(cfg.dashboards_store, "", "the default is SQLite in the state directory");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f = fopen(path, "w");
		int rc;

		cr_assert_not_null(f);
		fputs(cases[i].yaml, f);
		fclose(f);
		config_defaults(&cfg);
		err[0] = '\0';
		rc = config_load(&cfg, path, true, err, sizeof(err));
		if (cases[i].want) {
			cr_assert_eq(rc, 0, "%s: %s", cases[i].yaml, err);
			cr_assert_str_eq(cfg.dashboards_store, cases[i].want);
		} else {
			cr_assert_eq(rc, -EINVAL, "%s", cases[i].yaml);
			cr_assert(strstr(err, cases[i].err), "%s: %s", cases[i].yaml, err);
		}
	}
	unlink(path);
}
