/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"
#include "taps.h"

#define TAPS_IFNAMSIZ 16

struct tap {
	char name[TAPS_IFNAMSIZ];
	uint32_t tgid;
};

struct taps {
	char proc_root[256];
	struct tap *v;
	size_t n, cap;
	uint64_t last_ms;
	int scanned;
};

struct taps *taps__new(const char *proc_root)
{
	struct taps *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	snprintf(t->proc_root, sizeof(t->proc_root), "%s", proc_root);
	return t;
}

void taps__free(struct taps *t)
{
	if (!t)
		return;
	free(t->v);
	free(t);
}

static int taps_add(struct taps *t, const char *name, uint32_t tgid)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct tap *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	snprintf(t->v[t->n].name, TAPS_IFNAMSIZ, "%s", name);
	t->v[t->n++].tgid = tgid;
	return 0;
}

/* "iff:\tvnet0" in the fdinfo of a tun fd names its interface. */
static void scan_fd(struct taps *t, uint32_t tgid, const char *fd)
{
	char path[800], buf[1024], *iff, *end;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "%s/%u/fd/%s", t->proc_root, tgid, fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strcmp(buf, "/dev/net/tun"))
		return;
	snprintf(path, sizeof(path), "%s/%u/fdinfo/%s", t->proc_root, tgid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return;
	buf[n] = '\0';
	iff = strstr(buf, "iff:");
	if (!iff)
		return;
	iff += 4;
	iff += strspn(iff, " \t");
	end = iff + strcspn(iff, "\n");
	*end = '\0';
	if (*iff)
		taps_add(t, iff, tgid);
}

static int scan_vm(const struct vm_info *vm, void *ctx)
{
	struct taps *t = ctx;
	struct dirent *de;
	char path[300];
	DIR *d;

	snprintf(path, sizeof(path), "%s/%u/fd", t->proc_root, vm->tgid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			scan_fd(t, vm->tgid, de->d_name);
	closedir(d);
	return 0;
}

int taps__refresh(struct taps *t, struct registry *reg, uint64_t now_ms)
{
	if (t->scanned && now_ms - t->last_ms < TAPS_REFRESH_MS)
		return 0;
	t->n = 0;
	t->last_ms = now_ms;
	t->scanned = 1;
	return registry__for_each_vm(reg, scan_vm, t);
}

uint32_t taps__owner(const struct taps *t, const char *ifname)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].name, ifname))
			return t->v[i].tgid;
	return 0;
}
