/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvmstat: KVM debugfs statistics against a fake debugfs tree built under
 * mkdtemp: global stat files, VM directories "<pid>-<fd>" with stat files,
 * junk and vcpu<N>/ subdirectories.
 *
 * VM names come from a fake naming function through kvmstat__collect_named()
 * (a fake registry__vm() in this file would clash with registry.c in the one
 * unit-test executable); kvmstat__collect() itself is checked with a real
 * registry over an empty proc tree, where every VM is "pid-<tgid>".
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "kvmstat.h"
#include "metrics.h"
#include "registry.h"

static char kvm_root[64];
static struct metric_set *kvm_set;

static void kvm_write(const char *rel, const char *text)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", kvm_root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void kvm_mkdir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", kvm_root, rel);
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path, strerror(errno));
}

static int kvm_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void kvm_setup(void)
{
	snprintf(kvm_root, sizeof(kvm_root), "/tmp/novamon-kvmstat-XXXXXX");
	cr_assert_not_null(mkdtemp(kvm_root));
	kvm_set = metric_set__new(0);
	cr_assert_not_null(kvm_set);
}

static void kvm_teardown(void)
{
	kvm_set = metric_set__free(kvm_set);
	nftw(kvm_root, kvm_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A host with: global files; VM 1234 ("web-1") with two VM fds (summed),
 * two vCPUs and assorted junk; VM 5678 (no better name) with one vCPU;
 * directories that are not VMs.
 */
static void kvm_build_tree(void)
{
	kvm_write("exits", "1000\n");
	kvm_write("halt_exits", "50\n");

	kvm_mkdir("1234-11");
	kvm_write("1234-11/exits", "100\n");
	kvm_write("1234-11/halt_exits", "5\n");
	kvm_write("1234-11/remote_tlb_flush", "  7 \n");
	kvm_write("1234-11/junk", "abc\n");
	kvm_write("1234-11/table", "1 2\n3 4\n");
	kvm_write("1234-11/empty", "");
	kvm_write("1234-11/hex", "0x10\n");
	kvm_write("1234-11/huge", "18446744073709551615\n");
	kvm_write("1234-11/toolong",
		  "1111111111111111111111111111111111111111111111111111111111111111111111\n");
	kvm_mkdir("1234-11/mmu");
	kvm_write("1234-11/mmu/pages", "3\n");
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/1234-11/dangling", kvm_root);
		cr_assert_eq(symlink("/nonexistent/novamon-kvmstat", path), 0);
	}
	kvm_mkdir("1234-11/vcpu0");
	kvm_write("1234-11/vcpu0/exits", "60\n");
	kvm_write("1234-11/vcpu0/tsc-offset", "-5\n");
	kvm_write("1234-11/vcpu0/junk", "x\n");
	kvm_mkdir("1234-11/vcpu1");
	kvm_write("1234-11/vcpu1/exits", "40\n");
	kvm_mkdir("1234-11/vcpu1/vcpu9"); /* nested: not a vCPU */
	kvm_write("1234-11/vcpu1/vcpu9/exits", "999\n");
	kvm_mkdir("1234-11/vcpux");
	kvm_write("1234-11/vcpux/exits", "999\n");

	kvm_mkdir("1234-12"); /* a second VM fd of the same process */
	kvm_write("1234-12/exits", "1\n");
	kvm_mkdir("1234-12/vcpu0");
	kvm_write("1234-12/vcpu0/exits", "2\n");

	kvm_mkdir("5678-3");
	kvm_write("5678-3/exits", "9\n");
	kvm_mkdir("5678-3/vcpu0");
	kvm_write("5678-3/vcpu0/exits", "9\n");

	kvm_mkdir("notavm-1");
	kvm_write("notavm-1/exits", "999\n");
	kvm_mkdir("0-1");
	kvm_write("0-1/exits", "999\n");
	kvm_mkdir("42");
	kvm_write("42/exits", "999\n");
	kvm_write("99-1", "999\n"); /* a file named like a VM */
}

static const char *kvm_fake_name(void *ctx, uint32_t pid)
{
	static char buf[32];
	int *calls = ctx;

	(*calls)++;
	if (pid == 1234)
		return "web-1";
	snprintf(buf, sizeof(buf), "pid-%u", pid);
	return buf;
}

static const char *kvm_null_name(void *ctx, uint32_t pid)
{
	(void)ctx;
	(void)pid;
	return NULL;
}

/* The value of the series of family name with exactly these labels; fails if absent. */
static double kvm_value(const char *name, const char *labels)
{
	const struct metric_family *fam = metric_set__find(kvm_set, name);
	size_t i;

	cr_assert_not_null(fam, "no family %s", name);
	for (i = 0; i < fam->nseries; i++)
		if (!strcmp(fam->series[i].labels, labels))
			return fam->series[i].value;
	cr_assert_fail("no series %s{%s}", name, labels);
	return 0;
}

static int kvm_has(const char *name, const char *labels)
{
	const struct metric_family *fam = metric_set__find(kvm_set, name);
	size_t i;

	if (!fam)
		return 0;
	for (i = 0; i < fam->nseries; i++)
		if (!strcmp(fam->series[i].labels, labels))
			return 1;
	return 0;
}

#define VM_FAM "novamon_kvm_debugfs_vm_stat"
#define VCPU_FAM "novamon_kvm_debugfs_vcpu_stat"

TestSuite(kvmstat, .init = kvm_setup, .fini = kvm_teardown);

Test(kvmstat, missing_dir_is_enoent)
{
	char path[128];
	int calls = 0;

	snprintf(path, sizeof(path), "%s/nope", kvm_root);
	cr_assert_eq(kvmstat__collect_named(path, kvm_fake_name, &calls, kvm_set), -ENOENT);
	cr_assert_eq(kvm_set->nfamilies, 0, "set must stay untouched");
	cr_assert_eq(calls, 0);
}

Test(kvmstat, file_is_enotdir)
{
	char path[128];
	int calls = 0;

	kvm_write("plain", "1\n");
	snprintf(path, sizeof(path), "%s/plain", kvm_root);
	cr_assert_eq(kvmstat__collect_named(path, kvm_fake_name, &calls, kvm_set), -ENOTDIR);
}

Test(kvmstat, bad_arguments)
{
	int calls = 0;

	cr_assert_eq(kvmstat__collect_named(kvm_root, NULL, &calls, kvm_set), -EINVAL);
	cr_assert_eq(kvmstat__collect_named(kvm_root, kvm_fake_name, &calls, NULL), -EINVAL);
	cr_assert_eq(kvmstat__collect(kvm_root, NULL, kvm_set), -EINVAL);
}

Test(kvmstat, empty_dir_gives_empty_families)
{
	const struct metric_family *fam;
	int calls = 0;

	cr_assert_eq(kvmstat__collect_named(kvm_root, kvm_fake_name, &calls, kvm_set), 0);
	fam = metric_set__find(kvm_set, VM_FAM);
	cr_assert_not_null(fam);
	cr_assert_eq(fam->type, METRIC_GAUGE);
	cr_assert_eq(fam->nseries, 0);
	fam = metric_set__find(kvm_set, VCPU_FAM);
	cr_assert_not_null(fam);
	cr_assert_eq(fam->type, METRIC_GAUGE);
	cr_assert_eq(fam->nseries, 0);
}

Test(kvmstat, fake_tree)
{
	const struct metric_family *vm, *vcpu;
	int calls = 0;

	kvm_build_tree();
	cr_assert_eq(kvmstat__collect_named(kvm_root, kvm_fake_name, &calls, kvm_set), 0);
	cr_assert_eq(calls, 3, "one name lookup per VM directory, got %d", calls);

	/* VM stats: the two fds of 1234 are summed. */
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"web-1\",stat=\"exits\""), 101.0, 1e-9);
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"web-1\",stat=\"halt_exits\""), 5.0, 1e-9);
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"web-1\",stat=\"remote_tlb_flush\""), 7.0, 1e-9);
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"web-1\",stat=\"huge\""), 18446744073709551615.0,
			   1e6);
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"pid-5678\",stat=\"exits\""), 9.0, 1e-9);

	/* Junk is skipped quietly. */
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"junk\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"table\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"empty\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"hex\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"toolong\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"mmu\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"dangling\""));
	cr_assert_not(kvm_has(VM_FAM, "vm=\"web-1\",stat=\"vcpux\""));

	/* vCPU stats. */
	cr_assert_float_eq(kvm_value(VCPU_FAM, "vm=\"web-1\",vcpu=\"0\",stat=\"exits\""), 62.0,
			   1e-9);
	cr_assert_float_eq(kvm_value(VCPU_FAM, "vm=\"web-1\",vcpu=\"0\",stat=\"tsc-offset\""), -5.0,
			   1e-9);
	cr_assert_float_eq(kvm_value(VCPU_FAM, "vm=\"web-1\",vcpu=\"1\",stat=\"exits\""), 40.0,
			   1e-9);
	cr_assert_float_eq(kvm_value(VCPU_FAM, "vm=\"pid-5678\",vcpu=\"0\",stat=\"exits\""), 9.0,
			   1e-9);
	cr_assert_not(kvm_has(VCPU_FAM, "vm=\"web-1\",vcpu=\"0\",stat=\"junk\""));
	cr_assert_not(kvm_has(VCPU_FAM, "vm=\"web-1\",vcpu=\"9\",stat=\"exits\""));

	vm = metric_set__find(kvm_set, VM_FAM);
	vcpu = metric_set__find(kvm_set, VCPU_FAM);
	cr_assert_eq(vm->nseries, 5, "vm series: %zu", vm->nseries);
	cr_assert_eq(vcpu->nseries, 4, "vcpu series: %zu", vcpu->nseries);

	/* Sorted by vm, then vcpu, then stat. */
	cr_assert_str_eq(vm->series[0].labels, "vm=\"pid-5678\",stat=\"exits\"");
	cr_assert_str_eq(vcpu->series[3].labels, "vm=\"web-1\",vcpu=\"1\",stat=\"exits\"");
}

Test(kvmstat, unreadable_vm_dir_is_skipped)
{
	char path[256];
	int calls = 0;

	if (geteuid() == 0)
		cr_skip_test("root reads mode 000 files; nothing to check");
	kvm_mkdir("1-1");
	kvm_write("1-1/exits", "5\n");
	kvm_mkdir("2-1");
	kvm_write("2-1/exits", "6\n");
	kvm_write("2-1/secret", "7\n");
	snprintf(path, sizeof(path), "%s/2-1/secret", kvm_root);
	cr_assert_eq(chmod(path, 0), 0);
	snprintf(path, sizeof(path), "%s/1-1", kvm_root);
	cr_assert_eq(chmod(path, 0), 0);
	cr_assert_eq(kvmstat__collect_named(kvm_root, kvm_fake_name, &calls, kvm_set), 0);
	cr_assert_eq(chmod(path, 0755), 0);
	cr_assert_not(kvm_has(VM_FAM, "vm=\"pid-1\",stat=\"exits\""));
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"pid-2\",stat=\"exits\""), 6.0, 1e-9);
	cr_assert_not(kvm_has(VM_FAM, "vm=\"pid-2\",stat=\"secret\""));
}

Test(kvmstat, name_failure_is_enomem)
{
	kvm_build_tree();
	cr_assert_eq(kvmstat__collect_named(kvm_root, kvm_null_name, NULL, kvm_set), -ENOMEM);
}

Test(kvmstat, label_values_are_escaped)
{
	int calls = 0;

	kvm_mkdir("1234-1");
	kvm_write("1234-1/exits", "3\n");
	/* kvm_fake_name calls 1234 "web-1"; a quote in a stat name must be escaped. */
	kvm_write("1234-1/we\"ird", "4\n");
	cr_assert_eq(kvmstat__collect_named(kvm_root, kvm_fake_name, &calls, kvm_set), 0);
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"web-1\",stat=\"we\\\"ird\""), 4.0, 1e-9);
}

Test(kvmstat, collect_with_registry)
{
	char proc[128];
	struct registry *reg;

	/* An empty proc tree: every pid is gone, so VMs are named "pid-<tgid>". */
	snprintf(proc, sizeof(proc), "%s/proc", kvm_root);
	cr_assert_eq(mkdir(proc, 0755), 0);
	reg = registry__new(proc);
	cr_assert_not_null(reg);
	kvm_mkdir("4321-7");
	kvm_write("4321-7/exits", "11\n");
	kvm_mkdir("4321-7/vcpu2");
	kvm_write("4321-7/vcpu2/exits", "12\n");
	cr_assert_eq(kvmstat__collect(kvm_root, reg, kvm_set), 0);
	registry__free(reg);
	cr_assert_float_eq(kvm_value(VM_FAM, "vm=\"pid-4321\",stat=\"exits\""), 11.0, 1e-9);
	cr_assert_float_eq(kvm_value(VCPU_FAM, "vm=\"pid-4321\",vcpu=\"2\",stat=\"exits\""), 12.0,
			   1e-9);
}

Test(kvmstat, real_debugfs_smoke)
{
	int calls = 0;
	int err;

	/* Whatever this host has: -ENOENT without debugfs/KVM, otherwise 0. */
	err = kvmstat__collect_named(NULL, kvm_fake_name, &calls, kvm_set);
	if (err == -ENOENT || err == -EACCES)
		cr_skip_test("no readable %s here (%s)", KVMSTAT_DEFAULT_DIR, strerror(-err));
	cr_assert_eq(err, 0, "collect: %s", strerror(-err));
}
