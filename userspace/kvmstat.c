/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvmstat: KVM's debugfs statistics as metric families; see kvmstat.h.
 *
 * One scan gathers every (vm, vcpu, stat, value) into a flat array, which is
 * then sorted and merged (a process with two VMs gives two directories with
 * the same vm name) before the series are added, so the output is sorted and
 * has no duplicate series.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstat.h"
#include "metrics.h"
#include "registry.h"

#define KVMSTAT_VM_FAMILY "novamon_kvm_debugfs_vm_stat"
#define KVMSTAT_VCPU_FAMILY "novamon_kvm_debugfs_vcpu_stat"
#define KVMSTAT_VM_HELP "KVM statistic of one VM from debugfs (the numbers kvm_stat shows)."
#define KVMSTAT_VCPU_HELP "KVM statistic of one vCPU from debugfs (the numbers kvm_stat shows)."

/* A stat file holds one integer: anything this long is something else. */
#define KVMSTAT_MAX_FILE 64

struct kvmstat_entry {
	char vm[sizeof(((struct vm_info *)0)->name)];
	int vcpu; /* -1: a VM stat */
	char stat[64];
	double value;
};

struct kvmstat_vec {
	struct kvmstat_entry *v;
	size_t n;
	size_t cap;
};

static void kvmstat_vec_release(struct kvmstat_vec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = 0;
	vec->cap = 0;
}

static int kvmstat_vec_push(struct kvmstat_vec *vec, const char *vm, int vcpu, const char *stat,
			    double value)
{
	struct kvmstat_entry *e;

	if (strlen(stat) >= sizeof(e->stat))
		return 0; /* no real stat name is this long; skip it like junk */
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 64;
		struct kvmstat_entry *v = realloc(vec->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vec->v = v;
		vec->cap = cap;
	}
	e = &vec->v[vec->n++];
	snprintf(e->vm, sizeof(e->vm), "%s", vm);
	e->vcpu = vcpu;
	snprintf(e->stat, sizeof(e->stat), "%s", stat);
	e->value = value;
	return 0;
}

/*
 * Parse a whole file's text as one decimal integer with optional surrounding
 * white space. Returns 0 and *value, or -EINVAL.
 */
static int kvmstat_parse_value(const char *buf, double *value)
{
	const char *p = buf;
	char *end;

	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p) && !(*p == '-' && isdigit((unsigned char)p[1])))
		return -EINVAL;
	errno = 0;
	if (*p == '-')
		*value = (double)strtoll(p, &end, 10);
	else
		*value = (double)strtoull(p, &end, 10);
	if (errno)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	return *end ? -EINVAL : 0;
}

/*
 * Read the stat file name in dirfd. Returns 0 and *value, or a negative
 * errno when it cannot be read or is not a single integer (the caller skips
 * it).
 */
static int kvmstat_read_stat(int dirfd, const char *name, double *value)
{
	char buf[KVMSTAT_MAX_FILE + 1];
	size_t len = 0;
	ssize_t n;
	int fd;
	int err = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno; /* EISDIR for a directory, EACCES, ... */
			goto out_close;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == sizeof(buf) - 1) {
		err = -EINVAL;
		goto out_close;
	}
	buf[len] = '\0';
	err = kvmstat_parse_value(buf, value);
out_close:
	close(fd);
	return err;
}

/* "vcpu<N>" -> N, or -1. */
static int kvmstat_vcpu_index(const char *name)
{
	unsigned long v;
	char *end;

	if (strncmp(name, "vcpu", 4) != 0 || !isdigit((unsigned char)name[4]))
		return -1;
	errno = 0;
	v = strtoul(name + 4, &end, 10);
	if (errno || *end || v > INT32_MAX)
		return -1;
	return (int)v;
}

/* "<pid>-<anything>" -> 0 and *pid, or -EINVAL. */
static int kvmstat_vm_pid(const char *name, uint32_t *pid)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)name[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (errno || *end != '-' || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*pid = (uint32_t)v;
	return 0;
}

/*
 * Scan one VM directory (vcpu < 0) or one vCPU directory and push its stats.
 * dirfd is consumed (closed). Unreadable entries are skipped. Returns 0 or
 * -ENOMEM.
 */
static int kvmstat_scan(int dirfd, const char *vm, int vcpu, struct kvmstat_vec *vec)
{
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return 0; /* vanished or unreadable: skip quietly */
	}
	while ((de = readdir(d))) {
		double value = 0;
		int idx;

		if (de->d_name[0] == '.')
			continue;
		idx = vcpu < 0 ? kvmstat_vcpu_index(de->d_name) : -1;
		if (idx >= 0 && (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)) {
			int fd = openat(dirfd, de->d_name,
					O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

			if (fd < 0)
				continue;
			err = kvmstat_scan(fd, vm, idx, vec);
			if (err)
				goto out_close;
			continue;
		}
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (kvmstat_read_stat(dirfd, de->d_name, &value))
			continue;
		err = kvmstat_vec_push(vec, vm, vcpu, de->d_name, value);
		if (err)
			goto out_close;
	}
out_close:
	closedir(d);
	return err;
}

static int kvmstat_entry_cmp(const void *a, const void *b)
{
	const struct kvmstat_entry *x = a;
	const struct kvmstat_entry *y = b;
	int c;

	c = strcmp(x->vm, y->vm);
	if (c)
		return c;
	if (x->vcpu != y->vcpu)
		return x->vcpu < y->vcpu ? -1 : 1;
	return strcmp(x->stat, y->stat);
}

/* Sort, then fold equal (vm, vcpu, stat) entries into one by summing. */
static void kvmstat_merge(struct kvmstat_vec *vec)
{
	size_t i, out = 0;

	if (!vec->n)
		return;
	qsort(vec->v, vec->n, sizeof(vec->v[0]), kvmstat_entry_cmp);
	for (i = 1; i < vec->n; i++) {
		if (!kvmstat_entry_cmp(&vec->v[out], &vec->v[i]))
			vec->v[out].value += vec->v[i].value;
		else
			vec->v[++out] = vec->v[i];
	}
	vec->n = out + 1;
}

static int kvmstat_emit(const struct kvmstat_vec *vec, struct metric_set *set)
{
	struct metric_family *vm_fam;
	struct metric_family *vcpu_fam;
	struct metric_labels labels;
	size_t i;
	int err;

	vm_fam = metric_set__family(set, KVMSTAT_VM_FAMILY, KVMSTAT_VM_HELP, METRIC_GAUGE, NULL, 0);
	if (!vm_fam)
		return errno ? -errno : -ENOMEM;
	vcpu_fam = metric_set__family(set, KVMSTAT_VCPU_FAMILY, KVMSTAT_VCPU_HELP, METRIC_GAUGE,
				      NULL, 0);
	if (!vcpu_fam)
		return errno ? -errno : -ENOMEM;

	for (i = 0; i < vec->n; i++) {
		const struct kvmstat_entry *e = &vec->v[i];

		metric_labels__init(&labels);
		metric_labels__add(&labels, "vm", e->vm);
		if (e->vcpu >= 0)
			metric_labels__addf(&labels, "vcpu", "%d", e->vcpu);
		metric_labels__add(&labels, "stat", e->stat);
		err = metric_family__add_value(e->vcpu >= 0 ? vcpu_fam : vm_fam, &labels, e->value);
		if (err == -E2BIG)
			continue; /* an absurdly long vm name; drop that series only */
		if (err)
			return err;
	}
	return 0;
}

int kvmstat__collect_named(const char *dir, const char *(*vm_name)(void *ctx, uint32_t pid),
			   void *ctx, struct metric_set *set)
{
	struct kvmstat_vec vec = { 0 };
	struct dirent *de;
	DIR *d = NULL;
	int err = 0;

	if (!dir)
		dir = KVMSTAT_DEFAULT_DIR;
	if (!vm_name || !set)
		return -EINVAL;

	d = opendir(dir);
	if (!d)
		return -errno;

	for (;;) {
		const char *name;
		uint32_t pid;
		int fd;

		errno = 0;
		de = readdir(d);
		if (!de) {
			err = -errno;
			if (err)
				goto cleanup;
			break;
		}
		/* Global stat files and anything not "<pid>-..." are skipped. */
		if (kvmstat_vm_pid(de->d_name, &pid))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue; /* the VM went away since readdir */
		name = vm_name(ctx, pid);
		if (!name) {
			close(fd);
			err = -ENOMEM;
			goto cleanup;
		}
		err = kvmstat_scan(fd, name, -1, &vec);
		if (err)
			goto cleanup;
	}

	kvmstat_merge(&vec);
	err = kvmstat_emit(&vec, set);

cleanup:
	if (d)
		closedir(d);
	kvmstat_vec_release(&vec);
	return err;
}

static const char *kvmstat_registry_name(void *ctx, uint32_t pid)
{
	const struct vm_info *info = registry__vm(ctx, pid);

	return info ? info->name : NULL;
}

int kvmstat__collect(const char *dir, struct registry *reg, struct metric_set *set)
{
	if (!reg)
		return -EINVAL;
	return kvmstat__collect_named(dir, kvmstat_registry_name, reg, set);
}
