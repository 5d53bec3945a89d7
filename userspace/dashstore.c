/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashstore: the backend-neutral half (see dashstore.h). Checks arguments,
 * stamps times and versions, and dispatches to the backend's ops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dashstore.h"

struct dashstore {
	const struct dashstore_ops *ops;
	void *be;
};

void dashstore_doc__clear(struct dashstore_doc *d)
{
	if (!d)
		return;
	free(d->acl);
	free(d->doc);
	memset(d, 0, sizeof(*d));
}

void dashstore_list__free(struct dashstore_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		dashstore_doc__clear(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
	l->cap = 0;
}

int dashstore_doc__fill(struct dashstore_doc *d, const char *id, const char *name,
			const char *owner, const char *tenant, const char *acl, const char *doc,
			int64_t created_ms, int64_t updated_ms, int64_t version)
{
	dashstore_doc__clear(d);
	snprintf(d->id, sizeof(d->id), "%s", id ? id : "");
	snprintf(d->name, sizeof(d->name), "%s", name ? name : "");
	snprintf(d->owner, sizeof(d->owner), "%s", owner ? owner : "");
	snprintf(d->tenant, sizeof(d->tenant), "%s", tenant ? tenant : "");
	d->acl = strdup(acl ? acl : "{}");
	d->doc = strdup(doc ? doc : "{}");
	d->created_ms = created_ms;
	d->updated_ms = updated_ms;
	d->version = version;
	if (!d->acl || !d->doc) {
		dashstore_doc__clear(d);
		return -ENOMEM;
	}
	return 0;
}

int dashstore_list__push(struct dashstore_list *l, const char *id, const char *name,
			 const char *owner, const char *tenant, const char *acl, const char *doc,
			 int64_t created_ms, int64_t updated_ms, int64_t version)
{
	struct dashstore_doc *grown;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;

		grown = realloc(l->items, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		l->items = grown;
		l->cap = cap;
	}
	memset(&l->items[l->n], 0, sizeof(l->items[l->n]));
	if (dashstore_doc__fill(&l->items[l->n], id, name, owner, tenant, acl, doc, created_ms,
				updated_ms, version))
		return -ENOMEM;
	l->n++;
	return 0;
}

bool dashstore_id_ok(const char *id)
{
	size_t i;

	if (!id || !id[0])
		return false;
	for (i = 0; id[i]; i++) {
		char c = id[i];

		if (i >= DASHSTORE_ID_LEN - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int dashstore_new_id(char id[DASHSTORE_ID_LEN])
{
	unsigned char r[16];
	size_t i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return errno ? -errno : -EIO;
	for (i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	return 0;
}

struct dashstore *dashstore__wrap(const struct dashstore_ops *ops, void *be)
{
	struct dashstore *ds = calloc(1, sizeof(*ds));

	if (!ds) {
		ops->close(be);
		errno = ENOMEM;
		return NULL;
	}
	ds->ops = ops;
	ds->be = be;
	return ds;
}

struct dashstore *dashstore__open(const char *url, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!url) {
		errno = EINVAL;
		return NULL;
	}
	if (!strncmp(url, "sqlite:", 7)) {
		if (!url[7]) {
			if (err && errlen)
				snprintf(err, errlen,
					 "sqlite: needs a file name (sqlite:/path/to/db)");
			errno = EINVAL;
			return NULL;
		}
		return dashstore_sqlite__open(url + 7, err, errlen);
	}
	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))
		return dashstore_pg__open(url, err, errlen);
	if (err && errlen)
		snprintf(err, errlen, "\"%.100s\" is neither sqlite:PATH nor postgresql://...",
			 url);
	errno = EINVAL;
	return NULL;
}

struct dashstore *dashstore__close(struct dashstore *ds)
{
	if (!ds)
		return NULL;
	ds->ops->close(ds->be);
	free(ds);
	return NULL;
}

const char *dashstore__backend(const struct dashstore *ds)
{
	return ds->ops->name;
}

/* The columns every write checks; the document's own content is the API's business. */
static bool dashstore_doc_ok(const struct dashstore_doc *d)
{
	return dashstore_id_ok(d->id) && d->name[0] && d->doc &&
	       memchr(d->name, '\0', sizeof(d->name)) && memchr(d->owner, '\0', sizeof(d->owner)) &&
	       memchr(d->tenant, '\0', sizeof(d->tenant));
}

int dashstore__create(struct dashstore *ds, struct dashstore_doc *d, int64_t now_ms)
{
	if (!ds || !d || !dashstore_doc_ok(d))
		return -EINVAL;
	d->created_ms = now_ms;
	d->updated_ms = now_ms;
	d->version = 1;
	return ds->ops->create(ds->be, d);
}

int dashstore__get(struct dashstore *ds, const char *id, struct dashstore_doc *out)
{
	if (!ds || !out)
		return -EINVAL;
	dashstore_doc__clear(out);
	if (!dashstore_id_ok(id))
		return -ENOENT;
	return ds->ops->get(ds->be, id, out);
}

int dashstore__update(struct dashstore *ds, struct dashstore_doc *d, int64_t now_ms)
{
	int64_t created = 0;
	int err;

	if (!ds || !d || !dashstore_doc_ok(d) || d->version < 1)
		return -EINVAL;
	d->updated_ms = now_ms;
	err = ds->ops->update(ds->be, d, &created);
	if (err)
		return err;
	d->version++;
	d->created_ms = created;
	return 0;
}

int dashstore__delete(struct dashstore *ds, const char *id, int64_t version)
{
	if (!ds || version < 0)
		return -EINVAL;
	if (!dashstore_id_ok(id))
		return -ENOENT;
	return ds->ops->del(ds->be, id, version);
}

int dashstore__list(struct dashstore *ds, const char *tenant, struct dashstore_list *out)
{
	int err;

	if (!ds || !out)
		return -EINVAL;
	out->items = NULL;
	out->n = 0;
	out->cap = 0;
	err = ds->ops->list(ds->be, tenant, out);
	if (err)
		dashstore_list__free(out);
	return err;
}

int dashstore__flag_set(struct dashstore *ds, const char *name, int64_t now_ms)
{
	if (!ds || !name || !name[0])
		return -EINVAL;
	return ds->ops->flag_set(ds->be, name, now_ms);
}

int dashstore__flag_test(struct dashstore *ds, const char *name)
{
	if (!ds || !name || !name[0])
		return -EINVAL;
	return ds->ops->flag_test(ds->be, name);
}
