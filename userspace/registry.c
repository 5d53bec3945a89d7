/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: tgid -> VM identity, tid -> vCPU index, from /proc and (when
 * built with it) libvirt. See registry.h for the contract.
 *
 * One hash table keyed by tgid holds an entry for every process seen in
 * proc_root, so that a refresh only opens <pid>/stat of processes it already
 * knows (to notice pid reuse through the start time) and lists <pid>/fd of
 * new ones. Only KVM users and processes looked up with registry__vm() carry
 * a struct vm_info. A process that is gone is forgotten at the next refresh,
 * unless it has a vm_info that was in use (seen as a KVM user or looked up)
 * in the last REGISTRY_KEEP_MS: events of a VM that just exited may still be
 * queued and should get its real name.
 *
 * With libvirt, its lifecycle, migration-iteration and job-completed events
 * arrive in a thread of ours running libvirt's default event loop; they
 * cross to the tick thread through a small locked queue (struct
 * registry_lc_queue), the only shared state. The callbacks only copy: every
 * call into libvirt that waits for libvirtd (listing domains, job stats)
 * runs in registry__refresh(), on the thread that owns the registry.
 */
#ifdef __has_include
#if __has_include("build_config.h")
#include "build_config.h"
#endif
#endif
#ifndef HAVE_LIBVIRT
#define HAVE_LIBVIRT 0
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "registry.h"

/* How long a gone process's vm_info survives its last use. */
#define REGISTRY_KEEP_MS 60000
/*
 * A process first seen after the first refresh is "young": qemu opens its VM
 * fd only some time after exec, so its fds are checked again at doubling
 * intervals (1, 2, 4, ... s after it was first seen) during this window.
 */
#define REGISTRY_YOUNG_MS 60000
/* Upper bound for a command line we parse; qemu's from libvirt are ~5 KiB. */
#define REGISTRY_CMDLINE_MAX (256 * 1024)
#define REGISTRY_KVM_VM_LINK "anon_inode:kvm-vm"

struct registry_vcpu {
	uint32_t tid;
	int index;
};

struct registry_proc {
	struct registry_proc *next; /* hash chain */
	uint32_t tgid;
	uint32_t gen; /* refresh generation that last saw it alive */
	uint64_t starttime; /* stat field 22; 0 when unknown (gone at lookup) */
	uint64_t first_ms; /* first seen */
	uint64_t checked_ms; /* last fd scan */
	uint64_t used_ms; /* last lookup, or last refresh that saw it as a KVM user */
	uint64_t virt_ms; /* last libvirt match attempt; 0 = never */
	bool alive;
	bool checked; /* fds scanned at least once */
	bool young; /* first seen after the first refresh: recheck fds a few times */
	bool is_kvm;
	struct vm_info *info; /* KVM users and looked-up processes only */
	struct registry_vcpu *vcpus; /* sorted by tid */
	size_t nvcpus;
	size_t vcpus_cap;
};

struct registry {
	int root_fd;
	struct registry_proc **buckets;
	size_t nbuckets; /* a power of two */
	size_t nprocs;
	uint32_t gen; /* number of refreshes so far */
	uint64_t now_ms; /* time of the last refresh */
	struct registry_virt *virt; /* libvirt state; always NULL without libvirt */
	bool track_jobs; /* registry__track_jobs() */
};

/* libvirt enrichment, at the bottom of this file; no-ops without libvirt. */
static void registry_virt_refresh(struct registry *r, uint64_t now_ms);
static void registry_virt_free(struct registry *r);

/* Bucket of tgid in a table of nbuckets (a power of two) buckets. */
static size_t registry_hash(size_t nbuckets, uint32_t tgid)
{
	return (size_t)((tgid * 2654435761u) & (nbuckets - 1));
}

static struct registry_proc *registry_find(const struct registry *r, uint32_t tgid)
{
	struct registry_proc *p;

	for (p = r->buckets[registry_hash(r->nbuckets, tgid)]; p; p = p->next)
		if (p->tgid == tgid)
			return p;
	return NULL;
}

static int registry_grow(struct registry *r)
{
	size_t n = r->nbuckets * 2, i;
	struct registry_proc **b;

	b = calloc(n, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (i = 0; i < r->nbuckets; i++) {
		struct registry_proc *p = r->buckets[i], *next;

		for (; p; p = next) {
			size_t h = registry_hash(n, p->tgid);

			next = p->next;
			p->next = b[h];
			b[h] = p;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = n;
	return 0;
}

static struct registry_proc *registry_add(struct registry *r, uint32_t tgid)
{
	struct registry_proc *p;
	size_t h;

	/* Growing is best effort: long chains are slow, not wrong. */
	if (r->nprocs >= r->nbuckets && registry_grow(r))
		log_debug("registry: cannot grow the hash table");
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->tgid = tgid;
	p->first_ms = r->now_ms;
	p->young = r->gen > 1;
	h = registry_hash(r->nbuckets, tgid);
	p->next = r->buckets[h];
	r->buckets[h] = p;
	r->nprocs++;
	return p;
}

/* Forget everything learned about the process (pid reused). */
static void registry_proc_reset(struct registry_proc *p)
{
	free(p->info);
	p->info = NULL;
	free(p->vcpus);
	p->vcpus = NULL;
	p->nvcpus = 0;
	p->vcpus_cap = 0;
	p->checked = false;
	p->is_kvm = false;
	p->virt_ms = 0;
}

static void registry_proc_free(struct registry_proc *p)
{
	if (!p)
		return;
	registry_proc_reset(p);
	free(p);
}

/*
 * Read the file at path (relative to dirfd) into buf, NUL-terminated, at
 * most size - 1 bytes. Returns the length read or a negative errno.
 */
static ssize_t registry_read_at(int dirfd, const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/*
 * The start time (clock ticks after boot, field 22 of <pid>/stat) of tgid.
 * Returns 0, -ENOENT/-ESRCH when the process is gone, -EINVAL on a bad line.
 */
static int registry_read_starttime(const struct registry *r, uint32_t tgid, uint64_t *out)
{
	char path[32], buf[1024], *s, *end;
	ssize_t n;
	int field;

	snprintf(path, sizeof(path), "%u/stat", tgid);
	n = registry_read_at(r->root_fd, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* comm (field 2) may hold spaces and parentheses: skip to the last ')'. */
	s = strrchr(buf, ')');
	if (!s)
		return -EINVAL;
	s++;
	for (field = 3; field < 22; field++) {
		s = strchr(s + 1, ' ');
		if (!s)
			return -EINVAL;
	}
	errno = 0;
	*out = strtoull(s + 1, &end, 10);
	if (errno || end == s + 1)
		return -EINVAL;
	return 0;
}

/* Does tgid hold a KVM VM fd? A process we may not look into does not. */
static bool registry_scan_fds(const struct registry *r, uint32_t tgid)
{
	char path[32], link[sizeof(REGISTRY_KVM_VM_LINK) + 1];
	struct dirent *de;
	bool found = false;
	DIR *dir = NULL;
	int fd;

	snprintf(path, sizeof(path), "%u/fd", tgid);
	fd = openat(r->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return false;
	}
	while (!found && (de = readdir(dir))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(fd, de->d_name, link, sizeof(link));
		found = n == (ssize_t)strlen(REGISTRY_KVM_VM_LINK) &&
			!memcmp(link, REGISTRY_KVM_VM_LINK, (size_t)n);
	}
	closedir(dir);
	return found;
}

/*
 * Copy src (len bytes) into dst of size size, NUL-terminated, cutting at a
 * UTF-8 character boundary when it does not fit.
 */
static void registry_copy(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size) {
		len = size - 1;
		while (len && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * The guest name in a qemu `-name` value, QemuOpts syntax: comma-separated
 * elements, ",," is a literal comma; `guest=NAME` names the guest, and so
 * does a first element without '=' (the implied option). Writes "" into name
 * when there is none.
 */
static void registry_parse_name_opt(const char *val, char *name, size_t size)
{
	char buf[sizeof(((struct vm_info *)0)->name) * 2];
	const char *p = val;
	bool first = true;

	name[0] = '\0';
	while (*p) {
		size_t klen = strcspn(p, "=,"), len = 0;
		bool is_name;

		if (p[klen] == '=') {
			is_name = klen == 5 && !memcmp(p, "guest", 5);
			p += klen + 1;
		} else {
			/* A flag ("foo") or, first, the implied guest name. */
			is_name = first;
		}
		/* The value runs to the next single comma. */
		for (; *p; p++) {
			if (*p == ',') {
				if (p[1] != ',')
					break;
				p++;
			}
			if (len < sizeof(buf) - 1)
				buf[len++] = *p;
		}
		if (is_name)
			registry_copy(name, size, buf, len);
		if (*p == ',')
			p++;
		first = false;
	}
}

/* Is s a UUID in the 8-4-4-4-12 hex form? */
static bool registry_is_uuid(const char *s)
{
	int i;

	for (i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return s[36] == '\0';
}

static void registry_set_uuid(struct vm_info *info, const char *s)
{
	int i;

	if (!registry_is_uuid(s))
		return;
	for (i = 0; i < 36; i++)
		info->uuid[i] = (char)tolower((unsigned char)s[i]);
	info->uuid[36] = '\0';
}

/*
 * Fill name and uuid of info from <tgid>/cmdline. A later -name or -uuid
 * wins, as in qemu. Returns 0 or a negative errno (the process is gone).
 */
static int registry_parse_cmdline(const struct registry *r, struct vm_info *info)
{
	size_t size = 4096, len;
	char path[32], *buf = NULL, *p, *end;
	ssize_t n;
	int err;

	snprintf(path, sizeof(path), "%u/cmdline", info->tgid);
	for (;;) {
		char *nbuf = realloc(buf, size);

		if (!nbuf) {
			err = -ENOMEM;
			goto cleanup;
		}
		buf = nbuf;
		n = registry_read_at(r->root_fd, path, buf, size);
		if (n < 0) {
			err = (int)n;
			goto cleanup;
		}
		if ((size_t)n < size - 1 || size >= REGISTRY_CMDLINE_MAX)
			break;
		size *= 2;
	}
	len = (size_t)n;
	end = buf + len;
	for (p = buf; p < end; p += strlen(p) + 1) {
		const char *arg = p, *val = p + strlen(p) + 1;

		if (val >= end)
			break;
		if (!strcmp(arg, "-name"))
			registry_parse_name_opt(val, info->name, sizeof(info->name));
		else if (!strcmp(arg, "-uuid"))
			registry_set_uuid(info, val);
	}
	err = 0;
cleanup:
	free(buf);
	return err;
}

/* "CPU <n>/KVM" (with or without the newline) -> n; -1 otherwise. */
static int registry_parse_vcpu_comm(const char *comm)
{
	const char *p = comm + 4;
	long n = 0;

	if (strncmp(comm, "CPU ", 4) || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		n = n * 10 + (*p - '0');
		if (n > 1000000)
			return -1;
	}
	if (strncmp(p, "/KVM", 4))
		return -1;
	p += 4;
	if (*p == '\n')
		p++;
	return *p ? -1 : (int)n;
}

static int registry_read_vcpu(const struct registry *r, uint32_t tgid, uint32_t tid)
{
	char path[64], comm[64];

	snprintf(path, sizeof(path), "%u/task/%u/comm", tgid, tid);
	if (registry_read_at(r->root_fd, path, comm, sizeof(comm)) < 0)
		return -1;
	return registry_parse_vcpu_comm(comm);
}

static int registry_vcpu_cmp(const void *a, const void *b)
{
	const struct registry_vcpu *x = a, *y = b;

	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static struct registry_vcpu *registry_vcpu_find(const struct registry_proc *p, uint32_t tid)
{
	struct registry_vcpu key = { .tid = tid };

	if (!p->nvcpus)
		return NULL;
	return bsearch(&key, p->vcpus, p->nvcpus, sizeof(key), registry_vcpu_cmp);
}

static int registry_vcpu_push(struct registry_vcpu **v, size_t *n, size_t *cap, uint32_t tid,
			      int index)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct registry_vcpu *nv = realloc(*v, ncap * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[*n].tid = tid;
	(*v)[*n].index = index;
	(*n)++;
	return 0;
}

/*
 * Rebuild the vCPU list of p from <tgid>/task. The comm of a thread known
 * as a vCPU is not read again (a tid is not reused while the pid space has
 * not wrapped); other threads are read, since qemu names a vCPU thread only
 * after creating it. Keeps the old list when the task dir is unreadable.
 */
static int registry_update_vcpus(const struct registry *r, struct registry_proc *p)
{
	struct registry_vcpu *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir = NULL;
	char path[32];
	int fd, err;

	snprintf(path, sizeof(path), "%u/task", p->tgid);
	fd = openat(r->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((de = readdir(dir))) {
		const struct registry_vcpu *old;
		unsigned long tid;
		char *end;
		int index;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		tid = strtoul(de->d_name, &end, 10);
		if (*end || tid > UINT32_MAX)
			continue;
		old = registry_vcpu_find(p, (uint32_t)tid);
		index = old ? old->index : registry_read_vcpu(r, p->tgid, (uint32_t)tid);
		if (index < 0)
			continue;
		err = registry_vcpu_push(&v, &n, &cap, (uint32_t)tid, index);
		if (err)
			goto cleanup;
	}
	if (n)
		qsort(v, n, sizeof(*v), registry_vcpu_cmp);
	free(p->vcpus);
	p->vcpus = v;
	p->nvcpus = n;
	p->vcpus_cap = cap;
	v = NULL;
	err = 0;
cleanup:
	free(v);
	closedir(dir);
	return err;
}

/* Create p->info from the command line ("pid-<tgid>" when gone or unnamed). */
static int registry_resolve(const struct registry *r, struct registry_proc *p)
{
	struct vm_info *info;

	info = calloc(1, sizeof(*info));
	if (!info)
		return -ENOMEM;
	info->tgid = p->tgid;
	if (p->alive) {
		if (registry_parse_cmdline(r, info) == -ENOMEM) {
			free(info);
			return -ENOMEM;
		}
		info->last_seen_ms = r->now_ms;
	}
	if (!info->name[0])
		snprintf(info->name, sizeof(info->name), "pid-%u", p->tgid);
	info->is_kvm = p->is_kvm;
	p->info = info;
	return 0;
}

/* Scan the fds of p; a process turning out to be a KVM user gets resolved. */
static int registry_check(const struct registry *r, struct registry_proc *p, uint64_t now_ms)
{
	p->is_kvm = registry_scan_fds(r, p->tgid);
	p->checked = true;
	p->checked_ms = now_ms;
	if (!p->is_kvm)
		return 0;
	if (p->info) {
		p->info->is_kvm = 1;
		return 0;
	}
	return registry_resolve(r, p);
}

/* Should the fds of p be listed in this refresh? */
static bool registry_needs_check(const struct registry_proc *p, uint64_t now_ms)
{
	uint64_t age, since;

	if (!p->checked)
		return true;
	/* qemu does not close its VM fd; whoever else does is rare enough. */
	if (p->is_kvm || !p->young || now_ms < p->checked_ms)
		return false;
	age = now_ms - p->first_ms;
	since = now_ms - p->checked_ms;
	return age < REGISTRY_YOUNG_MS && since >= p->checked_ms - p->first_ms;
}

static bool registry_parse_pid(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Look at one live pid during a refresh. */
static int registry_visit(struct registry *r, uint32_t tgid, uint64_t now_ms)
{
	struct registry_proc *p;
	uint64_t starttime;
	int err;

	if (registry_read_starttime(r, tgid, &starttime))
		return 0; /* gone since readdir, or not a process */
	p = registry_find(r, tgid);
	if (p && p->starttime != starttime) {
		log_debug("registry: pid %u was reused", tgid);
		registry_proc_reset(p);
		p->first_ms = now_ms;
		p->young = r->gen > 1;
	}
	if (!p) {
		p = registry_add(r, tgid);
		if (!p)
			return -ENOMEM;
	}
	p->starttime = starttime;
	p->gen = r->gen;
	p->alive = true;
	if (registry_needs_check(p, now_ms)) {
		err = registry_check(r, p, now_ms);
		if (err)
			return err;
	}
	if (p->info)
		p->info->last_seen_ms = now_ms;
	if (p->is_kvm) {
		p->used_ms = now_ms;
		/* A thread list that cannot be read keeps the last one. */
		registry_update_vcpus(r, p);
	}
	return 0;
}

/* Drop processes not seen by this refresh, keeping recently used VM names. */
static void registry_sweep(struct registry *r, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < r->nbuckets; i++) {
		struct registry_proc **pp = &r->buckets[i];

		while (*pp) {
			struct registry_proc *p = *pp;

			if (p->gen == r->gen) {
				pp = &p->next;
				continue;
			}
			if (p->info && now_ms >= p->used_ms &&
			    now_ms - p->used_ms < REGISTRY_KEEP_MS) {
				p->alive = false;
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			r->nprocs--;
			registry_proc_free(p);
		}
	}
}

void registry__track_jobs(struct registry *r, bool on)
{
	r->track_jobs = on;
}

struct registry *registry__new(const char *proc_root)
{
	struct registry *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->root_fd = -1;
	r->nbuckets = 1024;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	if (!r->buckets) {
		err = -ENOMEM;
		goto cleanup;
	}
	r->root_fd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->root_fd < 0) {
		err = -errno;
		goto cleanup;
	}
	return r;
cleanup:
	registry__free(r);
	errno = -err;
	return NULL;
}

void registry__free(struct registry *r)
{
	size_t i;

	if (!r)
		return;
	registry_virt_free(r);
	for (i = 0; r->buckets && i < r->nbuckets; i++) {
		struct registry_proc *p = r->buckets[i], *next;

		for (; p; p = next) {
			next = p->next;
			registry_proc_free(p);
		}
	}
	free(r->buckets);
	if (r->root_fd >= 0)
		close(r->root_fd);
	free(r);
}

static bool registry_is_live_vm(const struct registry_proc *p)
{
	return p->alive && p->is_kvm && p->info;
}

int registry__refresh(struct registry *r, uint64_t now_ms)
{
	struct dirent *de;
	DIR *dir = NULL;
	int fd, err, count = 0;
	size_t i;

	r->gen++;
	r->now_ms = now_ms;
	fd = openat(r->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		err = -errno;
		close(fd);
		return err;
	}
	for (;;) {
		uint32_t tgid;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			err = -errno;
			break;
		}
		if (!registry_parse_pid(de->d_name, &tgid))
			continue;
		err = registry_visit(r, tgid, now_ms);
		if (err)
			break;
	}
	closedir(dir);
	/* After a failed scan, entries not reached yet must not be dropped. */
	if (err)
		return err;
	registry_sweep(r, now_ms);
	registry_virt_refresh(r, now_ms);
	for (i = 0; i < r->nbuckets; i++) {
		const struct registry_proc *p;

		for (p = r->buckets[i]; p; p = p->next)
			count += registry_is_live_vm(p);
	}
	return count;
}

const struct vm_info *registry__vm(struct registry *r, uint32_t tgid)
{
	return registry__vm_at(r, tgid, r->now_ms);
}

const struct vm_info *registry__vm_at(struct registry *r, uint32_t tgid, uint64_t now_ms)
{
	struct registry_proc *p;
	uint64_t starttime;

	p = registry_find(r, tgid);
	if (p && p->info) {
		if (!p->is_kvm && p->alive && p->young &&
		    now_ms >= p->checked_ms + REGISTRY_RECHECK_MS &&
		    now_ms - p->first_ms < REGISTRY_RECHECK_WINDOW_MS &&
		    registry_check(r, p, now_ms))
			return NULL;
		p->used_ms = r->now_ms;
		return p->info;
	}
	if (!p) {
		p = registry_add(r, tgid);
		if (!p)
			return NULL;
		/* gen 0: the next refresh drops it unless it sees the process. */
		if (!registry_read_starttime(r, tgid, &starttime)) {
			p->starttime = starttime;
			p->alive = true;
		}
	}
	/*
	 * Also rescan a process checked as not KVM before: one that is looked up
	 * is likely to be a VM that opened its VM fd after that check.
	 */
	if (p->alive && registry_check(r, p, r->now_ms))
		return NULL;
	if (!p->info && registry_resolve(r, p))
		return NULL;
	if (p->is_kvm)
		registry_update_vcpus(r, p);
	p->used_ms = r->now_ms;
	return p->info;
}

int registry__vcpu(struct registry *r, uint32_t tgid, uint32_t tid)
{
	struct registry_proc *p = registry_find(r, tgid);
	const struct registry_vcpu *v;
	size_t pos;
	int index;

	if (!p || !p->is_kvm)
		return registry_read_vcpu(r, tgid, tid);
	v = registry_vcpu_find(p, tid);
	if (v)
		return v->index;
	index = registry_read_vcpu(r, tgid, tid);
	if (index < 0)
		return -1;
	/* Insert in tid order; on allocation failure the answer stays right. */
	if (registry_vcpu_push(&p->vcpus, &p->nvcpus, &p->vcpus_cap, tid, index))
		return index;
	for (pos = p->nvcpus - 1; pos && p->vcpus[pos - 1].tid > tid; pos--)
		p->vcpus[pos] = p->vcpus[pos - 1];
	p->vcpus[pos].tid = tid;
	p->vcpus[pos].index = index;
	return index;
}

size_t registry__vcpu_tids(struct registry *r, uint32_t *tids, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < r->nbuckets; i++) {
		const struct registry_proc *p;

		for (p = r->buckets[i]; p; p = p->next) {
			if (!registry_is_live_vm(p))
				continue;
			for (j = 0; j < p->nvcpus && n < max; j++)
				tids[n++] = p->vcpus[j].tid;
		}
	}
	return n;
}

int registry__for_each_vcpu(struct registry *r,
			    int (*fn)(uint32_t tgid, uint32_t tid, int index, void *ctx), void *ctx)
{
	size_t i, j;
	int ret;

	for (i = 0; i < r->nbuckets; i++) {
		const struct registry_proc *p;

		for (p = r->buckets[i]; p; p = p->next) {
			if (!registry_is_live_vm(p))
				continue;
			for (j = 0; j < p->nvcpus; j++) {
				ret = fn(p->tgid, p->vcpus[j].tid, p->vcpus[j].index, ctx);
				if (ret)
					return ret;
			}
		}
	}
	return 0;
}

int registry__for_each_vm(struct registry *r, int (*fn)(const struct vm_info *, void *), void *ctx)
{
	size_t i;
	int ret;

	for (i = 0; i < r->nbuckets; i++) {
		const struct registry_proc *p;

		for (p = r->buckets[i]; p; p = p->next) {
			if (!registry_is_live_vm(p))
				continue;
			ret = fn(p->info, ctx);
			if (ret)
				return ret;
		}
	}
	return 0;
}

#if HAVE_LIBVIRT
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* Retry interval after a failed connection to libvirtd. */
#define REGISTRY_VIRT_RETRY_MS 30000
/* Interval between two matches of all VMs (tenant metadata may change). */
#define REGISTRY_VIRT_FULL_MS 30000
#define REGISTRY_VIRT_NS "https://novacron.io/xmlns/novamon/1"
/* Interval between two polls of every active domain for a job. */
#define REGISTRY_JOB_SCAN_MS 5000
/* Domains with an active job polled every refresh; more wait for the scan. */
#define REGISTRY_JOB_MAX 256
/* Domains whose last completed job statistics are remembered. */
#define REGISTRY_JOB_SEEN 64
/* Job observations kept from one refresh; more are dropped. */
#define REGISTRY_JOB_OBS_MAX 1024
/* Lifecycle events queued between two refreshes; more are dropped. */
#define REGISTRY_LC_QUEUE 256
/* VMs with lifecycle counts; the least recently active is evicted past it. */
#define REGISTRY_LC_MAX_VMS 1024
/* Counts of a VM last undefined or stopped this long ago are forgotten. */
#define REGISTRY_LC_FORGET_MS 3600000
/* Interval between two looks for counts to forget. */
#define REGISTRY_LC_SWEEP_MS 60000
#define REGISTRY_LC_NEVENTS 9

/* Names of virDomainEventType values, as exported. */
static const char *const registry_lc_names[REGISTRY_LC_NEVENTS] = {
	[VIR_DOMAIN_EVENT_DEFINED] = "defined",	  [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
	[VIR_DOMAIN_EVENT_STARTED] = "started",	  [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
	[VIR_DOMAIN_EVENT_RESUMED] = "resumed",	  [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
	[VIR_DOMAIN_EVENT_SHUTDOWN] = "shutdown", [VIR_DOMAIN_EVENT_PMSUSPENDED] = "pmsuspended",
	[VIR_DOMAIN_EVENT_CRASHED] = "crashed",
};

/* What a queued event is; only lifecycle events are counted. */
enum registry_ev_kind {
	REGISTRY_EV_LIFECYCLE,
	REGISTRY_EV_ITERATION,
	REGISTRY_EV_JOB_COMPLETED,
};

struct registry_lc_event {
	char name[sizeof(((struct vm_info *)0)->name)];
	char uuid[VIR_UUID_STRING_BUFLEN]; /* "" when unknown */
	uint8_t kind; /* enum registry_ev_kind */
	int event; /* virDomainEventType */
	int detail;
	uint64_t iteration; /* REGISTRY_EV_ITERATION */
	uint64_t ts_ms; /* CLOCK_MONOTONIC, when libvirt delivered it */
	struct vm_job_stats stats; /* REGISTRY_EV_JOB_COMPLETED */
};

/*
 * What libvirt's event thread shares with the tick thread, all under lock:
 * the callbacks only queue events and raise flags, the tick drains them.
 * Reference counted: the registry holds one reference, and so does every
 * lifecycle callback registration (released by libvirt through its freecb,
 * which runs only once the callback can no longer be running).
 */
struct registry_lc_queue {
	pthread_mutex_t lock;
	unsigned int refs;
	bool rescan; /* a domain changed: match all VMs at the next refresh */
	bool closed; /* the connection closed under us */
	uint64_t dropped; /* events lost to a full queue */
	size_t head, len;
	struct registry_lc_event ev[REGISTRY_LC_QUEUE];
};

/* A domain whose job is active, polled at every refresh until it ends. */
struct registry_job {
	char name[sizeof(((struct vm_info *)0)->name)];
	char uuid[VIR_UUID_STRING_BUFLEN]; /* "" when unknown */
};

/*
 * The last completed statistics seen of a domain (job-completed event, or
 * read when a job ended): libvirt keeps them after a job that ends with
 * none of its own (a cancelled migration), which must not be given them.
 */
struct registry_job_seen {
	char name[sizeof(((struct vm_info *)0)->name)];
	struct vm_job_stats st;
};

/* Cumulative lifecycle counts of one VM (by domain name). */
struct registry_lc_vm {
	char name[sizeof(((struct vm_info *)0)->name)];
	uint64_t counts[REGISTRY_LC_NEVENTS];
	uint64_t last_ms; /* registry time of its last event */
	bool gone; /* that event was "undefined" or "stopped" */
};

struct registry_virt {
	virConnectPtr conn;
	char *uri; /* NULL: "qemu:///system", when its socket exists */
	uint64_t retry_ms; /* earliest next connection attempt */
	uint64_t full_ms; /* next match of all VMs */
	struct registry_lc_queue *q; /* NULL until the first connection */
	int lc_id; /* lifecycle callback id on conn, -1 when none */
	int iter_id; /* migration iteration callback id, -1 when none */
	int done_id; /* job completed callback id, -1 when none */
	bool close_cb; /* close callback registered on conn */
	bool loop_ref; /* holds a reference on the event loop thread */
	struct registry_lc_vm *lc; /* counts, unordered */
	size_t nlc;
	size_t lc_cap;
	uint64_t lc_sweep_ms; /* next look for counts to forget */
	struct registry_job *jobs; /* domains with an active job */
	size_t njobs;
	size_t jobs_cap;
	uint64_t job_scan_ms; /* next poll of every active domain for a job */
	bool track_jobs; /* a copy of the registry's, for the drain */
	struct registry_job_seen seen[REGISTRY_JOB_SEEN]; /* a ring */
	size_t seen_next;
	struct vm_job_obs *obs; /* the last refresh's job observations */
	size_t nobs;
	size_t obs_cap;
};

/*
 * libvirt's default event loop, process wide: registered once, run by one
 * thread that lives while some registry holds a reference on it. The wake
 * timer is disabled (-1) while the thread runs; stopping sets registry_ev_stop
 * and arms it, so that virEventRunDefaultImpl() returns and the thread sees
 * the flag.
 */
static pthread_once_t registry_ev_once = PTHREAD_ONCE_INIT;
static bool registry_ev_ok; /* virEventRegisterDefaultImpl() succeeded */
static pthread_mutex_t registry_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int registry_ev_refs;
static pthread_t registry_ev_thread;
static int registry_ev_timer = -1;
static atomic_bool registry_ev_stop;

static void registry_ev_register(void)
{
	registry_ev_ok = virEventRegisterDefaultImpl() == 0;
}

static void registry_ev_wake(int timer, void *opaque)
{
	(void)timer;
	(void)opaque;
}

static void *registry_ev_run(void *arg)
{
	(void)arg;
	while (!atomic_load(&registry_ev_stop)) {
		if (virEventRunDefaultImpl() < 0) {
			log_debug("registry: libvirt event loop failed");
			break;
		}
	}
	return NULL;
}

/*
 * Take a reference on the event loop thread, registering libvirt's default
 * event loop first (it must be before a connection is opened). Returns 0 or
 * a negative errno; without it, VMs are still matched by polling.
 */
static int registry_ev_get(void)
{
	int err = 0;

	pthread_once(&registry_ev_once, registry_ev_register);
	if (!registry_ev_ok)
		return -ENOTSUP;
	pthread_mutex_lock(&registry_ev_lock);
	if (registry_ev_refs++)
		goto unlock;
	registry_ev_timer = virEventAddTimeout(-1, registry_ev_wake, NULL, NULL);
	if (registry_ev_timer < 0) {
		err = -ENOMEM;
		goto fail;
	}
	atomic_store(&registry_ev_stop, false);
	err = -pthread_create(&registry_ev_thread, NULL, registry_ev_run, NULL);
	if (!err)
		goto unlock;
	virEventRemoveTimeout(registry_ev_timer);
	registry_ev_timer = -1;
fail:
	registry_ev_refs--;
unlock:
	pthread_mutex_unlock(&registry_ev_lock);
	return err;
}

/* Drop a reference on the event loop thread; the last one stops and joins it. */
static void registry_ev_put(void)
{
	pthread_mutex_lock(&registry_ev_lock);
	if (!--registry_ev_refs) {
		atomic_store(&registry_ev_stop, true);
		virEventUpdateTimeout(registry_ev_timer, 0);
		pthread_join(registry_ev_thread, NULL);
		virEventRemoveTimeout(registry_ev_timer);
		registry_ev_timer = -1;
	}
	pthread_mutex_unlock(&registry_ev_lock);
}

static struct registry_lc_queue *registry_lc_queue_new(void)
{
	struct registry_lc_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	if (pthread_mutex_init(&q->lock, NULL)) {
		free(q);
		return NULL;
	}
	q->refs = 1;
	return q;
}

static void registry_lc_queue_ref(struct registry_lc_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->refs++;
	pthread_mutex_unlock(&q->lock);
}

/* Drop a reference on q (a virFreeCallback); the last one frees it. */
static void registry_lc_queue_unref(void *opaque)
{
	struct registry_lc_queue *q = opaque;
	unsigned int refs;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	refs = --q->refs;
	pthread_mutex_unlock(&q->lock);
	if (refs)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/*
 * Queue a copy of *in for dom (name, UUID and time filled in here), in the
 * event loop thread. Neither virDomainGetName() nor virDomainGetUUIDString()
 * asks libvirtd: they read the virDomainPtr.
 */
static void registry_ev_queue(struct registry_lc_queue *q, virDomainPtr dom,
			      const struct registry_lc_event *in)
{
	struct registry_lc_event *e;
	struct timespec ts;
	const char *name;

	name = virDomainGetName(dom);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&q->lock);
	q->rescan = true;
	if (!name || q->len == REGISTRY_LC_QUEUE) {
		q->dropped++;
		goto unlock;
	}
	e = &q->ev[(q->head + q->len) % REGISTRY_LC_QUEUE];
	*e = *in;
	registry_copy(e->name, sizeof(e->name), name, strlen(name));
	if (virDomainGetUUIDString(dom, e->uuid))
		e->uuid[0] = '\0';
	e->ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	q->len++;
unlock:
	pthread_mutex_unlock(&q->lock);
}

/* Lifecycle callback, in the event loop thread: queue the event, nothing else. */
static int registry_lc_on_event(virConnectPtr conn, virDomainPtr dom, int event, int detail,
				void *opaque)
{
	struct registry_lc_event e = {
		.kind = REGISTRY_EV_LIFECYCLE,
		.event = event,
		.detail = detail,
	};

	(void)conn;
	registry_ev_queue(opaque, dom, &e);
	return 0;
}

/* libvirt's job type and typed statistics as a struct vm_job_stats; no I/O. */
static void registry_job_parse(int type, virTypedParameterPtr params, int n,
			       struct vm_job_stats *st)
{
	unsigned long long u;
	const char *str;
	int i;

	memset(st, 0, sizeof(*st));
	switch (type) {
	case VIR_DOMAIN_JOB_BOUNDED:
	case VIR_DOMAIN_JOB_UNBOUNDED:
		st->result = VM_JOB_RUNNING;
		break;
	case VIR_DOMAIN_JOB_COMPLETED:
		st->result = VM_JOB_COMPLETED;
		break;
	case VIR_DOMAIN_JOB_FAILED:
		st->result = VM_JOB_FAILED;
		break;
	case VIR_DOMAIN_JOB_CANCELLED:
		st->result = VM_JOB_CANCELLED;
		break;
	default:
		st->result = VM_JOB_UNKNOWN;
		break;
	}
	if (virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION, &i) == 1) {
		switch (i) {
		case VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT:
			st->op = VM_JOB_OP_MIGRATION_OUT;
			break;
		case VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN:
			st->op = VM_JOB_OP_MIGRATION_IN;
			break;
		case VIR_DOMAIN_JOB_OPERATION_SAVE:
			st->op = VM_JOB_OP_SAVE;
			break;
		case VIR_DOMAIN_JOB_OPERATION_RESTORE:
			st->op = VM_JOB_OP_RESTORE;
			break;
		case VIR_DOMAIN_JOB_OPERATION_DUMP:
			st->op = VM_JOB_OP_DUMP;
			break;
		case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT:
			st->op = VM_JOB_OP_SNAPSHOT;
			break;
		case VIR_DOMAIN_JOB_OPERATION_UNKNOWN:
			st->op = VM_JOB_OP_UNKNOWN;
			break;
		default:
			st->op = VM_JOB_OP_OTHER;
			break;
		}
	}
	/* A completed job's event has "success" instead of a job type. */
	if (virTypedParamsGetBoolean(params, n, VIR_DOMAIN_JOB_SUCCESS, &i) == 1)
		st->result = i ? VM_JOB_COMPLETED : VM_JOB_FAILED;
	if (virTypedParamsGetString(params, n, VIR_DOMAIN_JOB_ERRMSG, &str) == 1 && str)
		registry_copy(st->errmsg, sizeof(st->errmsg), str, strlen(str));
#define GET(key, field, bit)                                            \
	do {                                                            \
		if (virTypedParamsGetULLong(params, n, key, &u) == 1) { \
			st->field = u;                                  \
			st->have |= (bit);                              \
		}                                                       \
	} while (0)
	GET(VIR_DOMAIN_JOB_TIME_ELAPSED, elapsed_ms, VM_JOB_HAVE_ELAPSED);
	GET(VIR_DOMAIN_JOB_SETUP_TIME, setup_ms, VM_JOB_HAVE_SETUP);
	GET(VIR_DOMAIN_JOB_DOWNTIME, downtime_ms, VM_JOB_HAVE_DOWNTIME);
	GET(VIR_DOMAIN_JOB_DATA_TOTAL, data_total, VM_JOB_HAVE_DATA);
	GET(VIR_DOMAIN_JOB_DATA_PROCESSED, data_processed, VM_JOB_HAVE_DATA);
	GET(VIR_DOMAIN_JOB_DATA_REMAINING, data_remaining, VM_JOB_HAVE_DATA);
	GET(VIR_DOMAIN_JOB_MEMORY_TOTAL, mem_total, VM_JOB_HAVE_MEMORY);
	GET(VIR_DOMAIN_JOB_MEMORY_PROCESSED, mem_processed, VM_JOB_HAVE_MEMORY);
	GET(VIR_DOMAIN_JOB_MEMORY_REMAINING, mem_remaining, VM_JOB_HAVE_MEMORY);
	GET(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, dirty_rate, VM_JOB_HAVE_DIRTY_RATE);
	GET(VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, page_size, VM_JOB_HAVE_PAGE_SIZE);
	GET(VIR_DOMAIN_JOB_MEMORY_ITERATION, iteration, VM_JOB_HAVE_ITERATION);
#undef GET
}

/* Migration iteration callback, in the event loop thread: queue it. */
static void registry_iter_on_event(virConnectPtr conn, virDomainPtr dom, int iteration,
				   void *opaque)
{
	struct registry_lc_event e = {
		.kind = REGISTRY_EV_ITERATION,
		.iteration = iteration > 0 ? (uint64_t)iteration : 0,
	};

	(void)conn;
	registry_ev_queue(opaque, dom, &e);
}

/* Job completed callback, in the event loop thread: parse and queue it. */
static void registry_done_on_event(virConnectPtr conn, virDomainPtr dom,
				   virTypedParameterPtr params, int nparams, void *opaque)
{
	struct registry_lc_event e = { .kind = REGISTRY_EV_JOB_COMPLETED };

	(void)conn;
	registry_job_parse(VIR_DOMAIN_JOB_COMPLETED, params, nparams, &e.stats);
	registry_ev_queue(opaque, dom, &e);
}

/* Close callback, in the event loop thread: have the tick reconnect. */
static void registry_lc_on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct registry_lc_queue *q = opaque;

	(void)conn;
	(void)reason;
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}

static struct registry_virt *registry_virt_get(struct registry *r)
{
	if (!r->virt) {
		r->virt = calloc(1, sizeof(*r->virt));
		if (r->virt) {
			r->virt->lc_id = -1;
			r->virt->iter_id = -1;
			r->virt->done_id = -1;
		}
	}
	return r->virt;
}

/* libvirt prints every error to stderr by default; we only debug-log. */
static void registry_virt_on_error(void *opaque, virErrorPtr err)
{
	(void)opaque;
	log_debug("registry: libvirt: %s", err && err->message ? err->message : "error");
}

/* Deregister the callbacks from the connection and close it. */
static void registry_virt_close(struct registry_virt *v)
{
	if (!v->conn)
		return;
	/* On a dead connection this fails, but still drops the callback. */
	if (v->lc_id >= 0)
		virConnectDomainEventDeregisterAny(v->conn, v->lc_id);
	if (v->iter_id >= 0)
		virConnectDomainEventDeregisterAny(v->conn, v->iter_id);
	if (v->done_id >= 0)
		virConnectDomainEventDeregisterAny(v->conn, v->done_id);
	v->lc_id = -1;
	v->iter_id = -1;
	v->done_id = -1;
	/* Fails when it has fired: libvirt then forgot it already. */
	if (v->close_cb)
		virConnectUnregisterCloseCallback(v->conn, registry_lc_on_close);
	v->close_cb = false;
	virConnectClose(v->conn);
	v->conn = NULL;
}

/*
 * Register the lifecycle and close callbacks on the new connection. Without
 * them, VMs are still matched by polling and no lifecycle event is counted.
 */
static void registry_virt_listen(struct registry_virt *v)
{
	if (!v->loop_ref || !v->q)
		return;
	registry_lc_queue_ref(v->q);
	v->lc_id = virConnectDomainEventRegisterAny(v->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
						    VIR_DOMAIN_EVENT_CALLBACK(registry_lc_on_event),
						    v->q, registry_lc_queue_unref);
	if (v->lc_id < 0) {
		registry_lc_queue_unref(v->q);
		log_debug("registry: no libvirt lifecycle events");
		return;
	}
	/* Jobs are still found by polling without these. */
	registry_lc_queue_ref(v->q);
	v->iter_id = virConnectDomainEventRegisterAny(
		v->conn, NULL, VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
		VIR_DOMAIN_EVENT_CALLBACK(registry_iter_on_event), v->q, registry_lc_queue_unref);
	if (v->iter_id < 0)
		registry_lc_queue_unref(v->q);
	registry_lc_queue_ref(v->q);
	v->done_id = virConnectDomainEventRegisterAny(
		v->conn, NULL, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
		VIR_DOMAIN_EVENT_CALLBACK(registry_done_on_event), v->q, registry_lc_queue_unref);
	if (v->done_id < 0)
		registry_lc_queue_unref(v->q);
	/*
	 * No freecb: the drivers that do not implement close callbacks would
	 * never call it. The callback runs under a lock that unregistering
	 * takes too, and the registry's own reference outlives the connection.
	 */
	v->close_cb = !virConnectRegisterCloseCallback(v->conn, registry_lc_on_close, v->q, NULL);
	/* Notices a dead libvirtd (remote driver only; others refuse). */
	virConnectSetKeepAlive(v->conn, 5, 3);
}

/*
 * Connected to libvirtd? Connects when it is not, at most once every
 * REGISTRY_VIRT_RETRY_MS, and only when its read-only socket exists, so
 * that a host without libvirtd costs one access() per retry interval.
 */
static bool registry_virt_connect(struct registry_virt *v, uint64_t now_ms)
{
	if (v->conn && virConnectIsAlive(v->conn) == 1)
		return true;
	registry_virt_close(v);
	if (now_ms < v->retry_ms)
		return false;
	v->retry_ms = now_ms + REGISTRY_VIRT_RETRY_MS;
	if (!v->uri && access("/run/libvirt/libvirt-sock-ro", F_OK) &&
	    access("/var/run/libvirt/libvirt-sock-ro", F_OK))
		return false;
	/* Process wide; libvirt has no per-open error handler. */
	virSetErrorFunc(NULL, registry_virt_on_error);
	if (!v->q)
		v->q = registry_lc_queue_new();
	/* The event loop must be registered before the connection is opened. */
	if (!v->loop_ref)
		v->loop_ref = !registry_ev_get();
	v->conn = virConnectOpenReadOnly(v->uri ? v->uri : "qemu:///system");
	if (!v->conn)
		return false;
	log_debug("registry: connected to libvirt");
	registry_virt_listen(v);
	v->full_ms = 0;
	return true;
}

/* The counts of the VM called name, created when new; NULL on ENOMEM. */
static struct registry_lc_vm *registry_lc_vm_get(struct registry_virt *v, const char *name)
{
	struct registry_lc_vm *e, *victim = NULL;
	size_t i;

	for (i = 0; i < v->nlc; i++) {
		e = &v->lc[i];
		if (!strcmp(e->name, name))
			return e;
		/* The least recently active, preferring VMs that are gone. */
		if (!victim || (e->gone && !victim->gone) ||
		    (e->gone == victim->gone && e->last_ms < victim->last_ms))
			victim = e;
	}
	if (v->nlc == REGISTRY_LC_MAX_VMS) {
		log_debug("registry: forgetting lifecycle counts of %s", victim->name);
		e = victim;
	} else {
		if (v->nlc == v->lc_cap) {
			size_t ncap = v->lc_cap ? v->lc_cap * 2 : 16;

			e = realloc(v->lc, ncap * sizeof(*e));
			if (!e)
				return NULL;
			v->lc = e;
			v->lc_cap = ncap;
		}
		e = &v->lc[v->nlc++];
	}
	memset(e, 0, sizeof(*e));
	registry_copy(e->name, sizeof(e->name), name, strlen(name));
	return e;
}

/* Forget the counts of VMs undefined or stopped over REGISTRY_LC_FORGET_MS ago. */
static void registry_lc_sweep(struct registry_virt *v, uint64_t now_ms)
{
	size_t i = 0;

	if (now_ms < v->lc_sweep_ms)
		return;
	v->lc_sweep_ms = now_ms + REGISTRY_LC_SWEEP_MS;
	while (i < v->nlc) {
		struct registry_lc_vm *e = &v->lc[i];

		if (e->gone && now_ms >= e->last_ms && now_ms - e->last_ms > REGISTRY_LC_FORGET_MS)
			*e = v->lc[--v->nlc];
		else
			i++;
	}
}

/*
 * What a lifecycle event tells of a long job (enum vm_job_lc): incoming
 * migration or restore, pause for migration or post-copy, resume after it,
 * the end of an outgoing migration or save; VM_JOB_LC_NONE for the others.
 */
static uint8_t registry_lc_job(int event, int detail)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		if (detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED)
			return VM_JOB_LC_INCOMING;
		if (detail == VIR_DOMAIN_EVENT_STARTED_RESTORED)
			return VM_JOB_LC_RESTORED;
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		if (detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
		    detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY)
			return VM_JOB_LC_PAUSED;
		if (detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED)
			return VM_JOB_LC_POSTCOPY_FAILED;
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		if (detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED ||
		    detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY)
			return VM_JOB_LC_RESUMED;
		if (detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED)
			return VM_JOB_LC_POSTCOPY_FAILED;
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		if (detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED ||
		    detail == VIR_DOMAIN_EVENT_STOPPED_SAVED)
			return VM_JOB_LC_STOPPED;
		break;
	}
	return VM_JOB_LC_NONE;
}

/* A new observation for the domain name/uuid, or NULL past REGISTRY_JOB_OBS_MAX. */
static struct vm_job_obs *registry_job_obs(struct registry_virt *v, const char *name,
					   const char *uuid, uint8_t kind, uint64_t ts_ms)
{
	struct vm_job_obs *o;

	if (v->nobs == v->obs_cap) {
		size_t ncap = v->obs_cap ? v->obs_cap * 2 : 16;

		if (ncap > REGISTRY_JOB_OBS_MAX)
			return NULL;
		o = realloc(v->obs, ncap * sizeof(*o));
		if (!o)
			return NULL;
		v->obs = o;
		v->obs_cap = ncap;
	}
	o = &v->obs[v->nobs++];
	memset(o, 0, sizeof(*o));
	registry_copy(o->name, sizeof(o->name), name, strlen(name));
	registry_copy(o->uuid, sizeof(o->uuid), uuid, strlen(uuid));
	o->kind = kind;
	o->ts_ms = ts_ms;
	return o;
}

static struct registry_job *registry_job_find(struct registry_virt *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->njobs; i++)
		if (!strcmp(v->jobs[i].name, name))
			return &v->jobs[i];
	return NULL;
}

/* Poll name's job at every refresh from now on (up to REGISTRY_JOB_MAX domains). */
static void registry_job_watch(struct registry_virt *v, const char *name, const char *uuid)
{
	struct registry_job *j = registry_job_find(v, name);

	if (!j) {
		if (v->njobs == v->jobs_cap) {
			size_t ncap = v->jobs_cap ? v->jobs_cap * 2 : 8;

			if (ncap > REGISTRY_JOB_MAX)
				return;
			j = realloc(v->jobs, ncap * sizeof(*j));
			if (!j)
				return;
			v->jobs = j;
			v->jobs_cap = ncap;
		}
		j = &v->jobs[v->njobs++];
		memset(j, 0, sizeof(*j));
		registry_copy(j->name, sizeof(j->name), name, strlen(name));
	}
	registry_copy(j->uuid, sizeof(j->uuid), uuid, strlen(uuid));
}

static void registry_job_unwatch(struct registry_virt *v, const char *name)
{
	struct registry_job *j = registry_job_find(v, name);

	if (j)
		*j = v->jobs[--v->njobs];
}

/*
 * A queued job event (iteration, completion, job-related lifecycle event)
 * as an observation; the domain is polled from now on until its job ends.
 */
static bool registry_job_fresh(struct registry_virt *v, const char *name,
			       const struct vm_job_stats *st);

static void registry_job_event(struct registry_virt *v, const struct registry_lc_event *e)
{
	struct vm_job_obs *o;
	uint8_t kind;

	if (!v->track_jobs)
		return;
	switch (e->kind) {
	case REGISTRY_EV_ITERATION:
		kind = VM_JOB_OBS_ITERATION;
		break;
	case REGISTRY_EV_JOB_COMPLETED:
		kind = VM_JOB_OBS_COMPLETED;
		break;
	default:
		kind = VM_JOB_OBS_LIFECYCLE;
		break;
	}
	o = registry_job_obs(v, e->name, e->uuid, kind, e->ts_ms);
	if (o) {
		if (kind == VM_JOB_OBS_LIFECYCLE)
			o->lc = registry_lc_job(e->event, e->detail);
		o->iteration = e->iteration;
		o->stats = e->stats;
	}
	if (kind == VM_JOB_OBS_COMPLETED) {
		registry_job_fresh(v, e->name, &e->stats);
		registry_job_unwatch(v, e->name);
	} else if (kind == VM_JOB_OBS_ITERATION ||
		   (o && (o->lc == VM_JOB_LC_INCOMING || o->lc == VM_JOB_LC_PAUSED)))
		registry_job_watch(v, e->name, e->uuid);
}

/*
 * Poll dom's job (a blocking call to libvirtd: tick thread only). An active
 * job is observed _STATS and watched from now on; the end of a watched one
 * _GONE, with the completed job's statistics if libvirt kept them (not
 * removed: other clients may want them too).
 */
/* The statistics libvirt keeps of dom's last completed job (type NONE: none). */
static void registry_job_completed(virDomainPtr dom, struct vm_job_stats *st)
{
	virTypedParameterPtr params = NULL;
	int type = VIR_DOMAIN_JOB_NONE, n = 0;

	if (virDomainGetJobStats(dom, &type, &params, &n,
				 VIR_DOMAIN_JOB_STATS_COMPLETED |
					 VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0)
		type = VIR_DOMAIN_JOB_NONE;
	registry_job_parse(type, params, n, st);
	virTypedParamsFree(params, n);
}

/*
 * Are st, completed statistics of name, new? Remembers them: the next call
 * with the same ones says no.
 */
static bool registry_job_fresh(struct registry_virt *v, const char *name,
			       const struct vm_job_stats *st)
{
	struct registry_job_seen *e = NULL;
	size_t i;

	for (i = 0; i < REGISTRY_JOB_SEEN && !e; i++)
		if (!strcmp(v->seen[i].name, name))
			e = &v->seen[i];
	if (e && e->st.op == st->op && e->st.elapsed_ms == st->elapsed_ms &&
	    e->st.data_processed == st->data_processed && e->st.mem_processed == st->mem_processed)
		return false;
	if (!e) {
		e = &v->seen[v->seen_next];
		v->seen_next = (v->seen_next + 1) % REGISTRY_JOB_SEEN;
		registry_copy(e->name, sizeof(e->name), name, strlen(name));
	}
	e->st = *st;
	return true;
}

static void registry_job_poll(struct registry_virt *v, virDomainPtr dom, const char *name,
			      const char *uuid, uint64_t now_ms)
{
	struct registry_job *j = registry_job_find(v, name);
	bool watched = j != NULL;
	virTypedParameterPtr params = NULL;
	struct vm_job_obs *o;
	int type = VIR_DOMAIN_JOB_NONE, n = 0;

	if (dom && virDomainGetJobStats(dom, &type, &params, &n, 0) < 0) {
		/*
		 * Only a domain that is gone ends the job: a destination host
		 * refuses statistics of an incoming migration until it is over.
		 */
		if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) {
			log_debug("registry: no job statistics of %s: %s", name,
				  virGetLastErrorMessage());
			goto out;
		}
		dom = NULL;
	}
	if (dom && type != VIR_DOMAIN_JOB_NONE) {
		o = registry_job_obs(v, name, uuid, VM_JOB_OBS_STATS, now_ms);
		if (o)
			registry_job_parse(type, params, n, &o->stats);
		registry_job_watch(v, name, uuid);
		goto out;
	}
	if (!watched)
		goto out;
	o = registry_job_obs(v, name, uuid, VM_JOB_OBS_GONE, now_ms);
	if (o) {
		if (dom)
			registry_job_completed(dom, &o->stats);
		else
			o->stats.result = VM_JOB_UNKNOWN;
		if (o->stats.result != VM_JOB_UNKNOWN && !registry_job_fresh(v, name, &o->stats)) {
			memset(&o->stats, 0, sizeof(o->stats));
			o->stats.result = VM_JOB_UNKNOWN;
		}
		log_debug("registry: job of %s over (%s statistics)", name,
			  o->stats.result == VM_JOB_UNKNOWN ? "no" : "with");
	}
	registry_job_unwatch(v, name);
out:
	virTypedParamsFree(params, n);
}

/*
 * Poll the jobs of the watched domains not in doms[0..n) (the domains the
 * scan just polled); a domain that is gone (say, migrated away and
 * transient) ends its job _GONE with no statistics.
 */
static void registry_job_poll_watched(struct registry_virt *v, virDomainPtr *doms, int n,
				      uint64_t now_ms)
{
	size_t i = v->njobs;

	while (i--) {
		struct registry_job j = v->jobs[i];
		virDomainPtr dom = NULL;
		const char *name;
		int k;

		for (k = 0; k < n; k++) {
			name = virDomainGetName(doms[k]);
			if (name && !strcmp(name, j.name))
				break;
		}
		if (k < n)
			continue;
		if (j.uuid[0])
			dom = virDomainLookupByUUIDString(v->conn, j.uuid);
		else
			dom = virDomainLookupByName(v->conn, j.name);
		registry_job_poll(v, dom, j.name, j.uuid, now_ms);
		if (dom)
			virDomainFree(dom);
	}
}

/*
 * Count the queued lifecycle events, and close the connection when libvirt
 * said it closed. Returns whether a domain changed since the last call.
 */
static bool registry_lc_drain(struct registry_virt *v, uint64_t now_ms)
{
	struct registry_lc_queue *q = v->q;
	bool rescan = false, closed = false;

	if (!q)
		return false;
	for (;;) {
		struct registry_lc_event e;
		struct registry_lc_vm *vm;

		pthread_mutex_lock(&q->lock);
		if (!q->len) {
			rescan = q->rescan;
			closed = q->closed;
			q->rescan = false;
			q->closed = false;
			pthread_mutex_unlock(&q->lock);
			break;
		}
		e = q->ev[q->head];
		q->head = (q->head + 1) % REGISTRY_LC_QUEUE;
		q->len--;
		pthread_mutex_unlock(&q->lock);
		if (e.kind != REGISTRY_EV_LIFECYCLE) {
			registry_job_event(v, &e);
			continue;
		}
		if (registry_lc_job(e.event, e.detail) != VM_JOB_LC_NONE)
			registry_job_event(v, &e);
		if (e.event < 0 || e.event >= REGISTRY_LC_NEVENTS) {
			log_debug("registry: libvirt event %d of %s ignored", e.event, e.name);
			continue;
		}
		vm = registry_lc_vm_get(v, e.name);
		if (!vm)
			continue;
		vm->counts[e.event]++;
		vm->last_ms = now_ms;
		vm->gone = e.event == VIR_DOMAIN_EVENT_UNDEFINED ||
			   e.event == VIR_DOMAIN_EVENT_STOPPED;
		log_debug("registry: domain %s (%s) %s, detail %d, at %llu ms", e.name, e.uuid,
			  registry_lc_names[e.event], e.detail, (unsigned long long)e.ts_ms);
	}
	if (closed) {
		log_debug("registry: libvirt connection closed");
		registry_virt_close(v);
	}
	registry_lc_sweep(v, now_ms);
	return rescan;
}

/* Decode the five predefined XML entities of s[0..len) into dst. */
static void registry_virt_xml_text(char *dst, size_t size, const char *s, size_t len)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&amp;", '&' },
		     { "&lt;", '<' },
		     { "&gt;", '>' },
		     { "&quot;", '"' },
		     { "&apos;", '\'' } };
	char buf[256];
	size_t i, n = 0;

	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	for (i = 0; i < len && n < sizeof(buf); i++) {
		size_t k;

		buf[n] = s[i];
		for (k = 0; s[i] == '&' && k < sizeof(ents) / sizeof(ents[0]); k++) {
			size_t el = strlen(ents[k].ent);

			if (len - i >= el && !memcmp(s + i, ents[k].ent, el)) {
				buf[n] = ents[k].c;
				i += el - 1;
				break;
			}
		}
		n++;
	}
	registry_copy(dst, size, buf, n);
}

/*
 * The tenant in our metadata element, as libvirt returns it, e.g.
 * `<tenant xmlns="...">acme</tenant>` or `<novamon tenant="acme"/>`: the
 * `tenant` attribute when there is one, else the element's text. Not an XML
 * parser; good for the element we write ourselves.
 */
static void registry_virt_parse_tenant(const char *xml, char *tenant, size_t size)
{
	const char *s, *e;

	tenant[0] = '\0';
	s = strstr(xml, " tenant=");
	if (s) {
		char q = s[8];

		s += 9;
		e = (q == '"' || q == '\'') ? strchr(s, q) : NULL;
		if (e)
			registry_virt_xml_text(tenant, size, s, (size_t)(e - s));
		return;
	}
	s = strchr(xml, '>');
	if (!s || s[-1] == '/')
		return;
	s++;
	e = strchr(s, '<');
	if (e)
		registry_virt_xml_text(tenant, size, s, (size_t)(e - s));
}

/* The live KVM VM with this UUID, or else one with this name and no UUID, or NULL. */
static struct registry_proc *registry_virt_match(struct registry *r, const char *uuid,
						 const char *name)
{
	struct registry_proc *p, *by_name = NULL;
	size_t i;

	for (i = 0; i < r->nbuckets; i++) {
		for (p = r->buckets[i]; p; p = p->next) {
			if (!registry_is_live_vm(p))
				continue;
			if (uuid && !strcasecmp(p->info->uuid, uuid))
				return p;
			/* A VM whose UUID we know is matched by UUID only. */
			if (!by_name && !p->info->uuid[0] && !strcmp(p->info->name, name))
				by_name = p;
		}
	}
	return by_name;
}

static void registry_virt_apply(struct registry *r, virDomainPtr dom)
{
	char uuid[VIR_UUID_STRING_BUFLEN], *xml;
	struct registry_proc *p;
	const char *name;
	bool has_uuid;

	name = virDomainGetName(dom);
	if (!name)
		return;
	has_uuid = !virDomainGetUUIDString(dom, uuid);
	p = registry_virt_match(r, has_uuid ? uuid : NULL, name);
	if (!p)
		return;
	registry_copy(p->info->name, sizeof(p->info->name), name, strlen(name));
	if (has_uuid)
		registry_set_uuid(p->info, uuid);
	/* Fails with VIR_ERR_NO_DOMAIN_METADATA when there is none. */
	xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, REGISTRY_VIRT_NS, 0);
	if (xml)
		registry_virt_parse_tenant(xml, p->info->tenant, sizeof(p->info->tenant));
	else
		p->info->tenant[0] = '\0';
	free(xml);
}

/*
 * Match active libvirt domains to live KVM VMs: when a VM appeared that was
 * never matched, when libvirt reported a lifecycle event, and every
 * REGISTRY_VIRT_FULL_MS. Errors are only logged at debug: the registry works
 * from /proc alone.
 */
static void registry_virt_refresh(struct registry *r, uint64_t now_ms)
{
	struct registry_virt *v = registry_virt_get(r);
	virDomainPtr *doms = NULL;
	bool need, full, scan;
	size_t i;
	int n, k;

	if (!v)
		return;
	v->nobs = 0;
	v->track_jobs = r->track_jobs;
	need = registry_lc_drain(v, now_ms);
	if (!registry_virt_connect(v, now_ms))
		return;
	for (i = 0; i < r->nbuckets; i++) {
		struct registry_proc *p;

		for (p = r->buckets[i]; p; p = p->next) {
			if (!registry_is_live_vm(p))
				continue;
			need |= !p->virt_ms;
			p->virt_ms = now_ms ? now_ms : 1;
		}
	}
	scan = r->track_jobs && now_ms >= v->job_scan_ms;
	full = need || now_ms >= v->full_ms;
	if (!full && !scan) {
		if (r->track_jobs)
			registry_job_poll_watched(v, NULL, 0, now_ms);
		return;
	}
	n = virConnectListAllDomains(v->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		registry_virt_close(v);
		return;
	}
	for (k = 0; k < n; k++) {
		char uuid[VIR_UUID_STRING_BUFLEN];
		const char *name = virDomainGetName(doms[k]);

		if (full)
			registry_virt_apply(r, doms[k]);
		if (scan && name) {
			if (virDomainGetUUIDString(doms[k], uuid))
				uuid[0] = '\0';
			registry_job_poll(v, doms[k], name, uuid, now_ms);
		}
	}
	if (r->track_jobs)
		registry_job_poll_watched(v, scan ? doms : NULL, scan ? n : 0, now_ms);
	for (k = 0; k < n; k++)
		virDomainFree(doms[k]);
	free(doms);
	if (full)
		v->full_ms = now_ms + REGISTRY_VIRT_FULL_MS;
	if (scan)
		v->job_scan_ms = now_ms + REGISTRY_JOB_SCAN_MS;
}

static void registry_virt_free(struct registry *r)
{
	struct registry_virt *v = r->virt;

	if (!v)
		return;
	registry_virt_close(v);
	if (v->loop_ref)
		registry_ev_put();
	registry_lc_queue_unref(v->q);
	free(v->lc);
	free(v->jobs);
	free(v->obs);
	free(v->uri);
	free(v);
	r->virt = NULL;
}

int registry__set_libvirt_uri(struct registry *r, const char *uri)
{
	struct registry_virt *v = registry_virt_get(r);
	char *copy = NULL;

	if (!v)
		return -ENOMEM;
	if (uri) {
		copy = strdup(uri);
		if (!copy)
			return -ENOMEM;
	}
	registry_virt_close(v);
	free(v->uri);
	v->uri = copy;
	v->retry_ms = 0;
	return 0;
}

int registry__for_each_lifecycle(struct registry *r,
				 int (*fn)(const char *vm, const char *event, uint64_t count,
					   void *ctx),
				 void *ctx)
{
	size_t i;
	int k, ret;

	if (!r->virt)
		return 0;
	for (i = 0; i < r->virt->nlc; i++) {
		const struct registry_lc_vm *e = &r->virt->lc[i];

		for (k = 0; k < REGISTRY_LC_NEVENTS; k++) {
			if (!e->counts[k])
				continue;
			ret = fn(e->name, registry_lc_names[k], e->counts[k], ctx);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int registry__for_each_job(struct registry *r, int (*fn)(const struct vm_job_obs *obs, void *ctx),
			   void *ctx)
{
	size_t i;
	int ret;

	for (i = 0; r->virt && i < r->virt->nobs; i++) {
		ret = fn(&r->virt->obs[i], ctx);
		if (ret)
			return ret;
	}
	return 0;
}

uint64_t registry__lifecycle_dropped(const struct registry *r)
{
	struct registry_lc_queue *q = r->virt ? r->virt->q : NULL;
	uint64_t n;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	n = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return n;
}
#else /* !HAVE_LIBVIRT */
static void registry_virt_refresh(struct registry *r, uint64_t now_ms)
{
	(void)r;
	(void)now_ms;
}

static void registry_virt_free(struct registry *r)
{
	(void)r;
}

int registry__set_libvirt_uri(struct registry *r, const char *uri)
{
	(void)r;
	(void)uri;
	return -EOPNOTSUPP;
}

int registry__for_each_lifecycle(struct registry *r,
				 int (*fn)(const char *vm, const char *event, uint64_t count,
					   void *ctx),
				 void *ctx)
{
	(void)r;
	(void)fn;
	(void)ctx;
	return 0;
}

uint64_t registry__lifecycle_dropped(const struct registry *r)
{
	(void)r;
	return 0;
}

int registry__for_each_job(struct registry *r, int (*fn)(const struct vm_job_obs *obs, void *ctx),
			   void *ctx)
{
	(void)r;
	(void)fn;
	(void)ctx;
	return 0;
}
#endif /* HAVE_LIBVIRT */
