/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: VM and vCPU attribution against a fake proc tree built in a
 * temporary directory (pid dirs with cmdline, stat, fd/ and task/), plus one
 * smoke test against the real /proc and, when built with libvirt, some
 * against libvirt's in-process test driver (matching, lifecycle events).
 */
#ifdef __has_include
#if __has_include("build_config.h")
#include "build_config.h"
#endif
#endif
#ifndef HAVE_LIBVIRT
#define HAVE_LIBVIRT 0
#endif

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#if HAVE_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif

#include "registry.h"

/* A NUL-separated argv literal and its length without the final NUL. */
#define ARGV(s) (s), sizeof(s) - 1

static char root[64];
static struct registry *reg;

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void fake_path(char *buf, size_t size, unsigned int pid, const char *rest)
{
	snprintf(buf, size, "%s/%u%s", root, pid, rest);
}

static void fake_stat(unsigned int pid, unsigned long long starttime)
{
	char path[256], line[512];
	int n;

	fake_path(path, sizeof(path), pid, "/stat");
	/* comm with a space and a parenthesis, as a hostile process may choose. */
	n = snprintf(line, sizeof(line),
		     "%u (qemu (x) y) S 1 %u %u 0 -1 4194560 21517 0 0 0 1200 300 0 0 20 0 9 0 "
		     "%llu 4294967296 200000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 3 "
		     "0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		     pid, pid, pid, starttime);
	write_file(path, line, (size_t)n);
}

static void fake_cmdline(unsigned int pid, const char *argv, size_t len)
{
	char path[256];

	fake_path(path, sizeof(path), pid, "/cmdline");
	write_file(path, argv, len);
}

static void fake_kvm_fd(unsigned int pid)
{
	char path[256];

	fake_path(path, sizeof(path), pid, "/fd/11");
	cr_assert_eq(symlink("anon_inode:kvm-vm", path), 0);
}

static void fake_thread(unsigned int pid, unsigned int tid, const char *comm)
{
	char path[256], rest[64];

	snprintf(rest, sizeof(rest), "/task/%u", tid);
	fake_path(path, sizeof(path), pid, rest);
	cr_assert_eq(mkdir(path, 0755), 0);
	strcat(path, "/comm");
	write_file(path, comm, strlen(comm));
}

/* A process with some ordinary fds, its main thread, and a KVM VM fd if kvm. */
static void fake_proc(unsigned int pid, unsigned long long starttime, const char *argv, size_t len,
		      int kvm)
{
	char path[256];

	fake_path(path, sizeof(path), pid, "");
	cr_assert_eq(mkdir(path, 0755), 0);
	fake_stat(pid, starttime);
	fake_cmdline(pid, argv, len);
	fake_path(path, sizeof(path), pid, "/fd");
	cr_assert_eq(mkdir(path, 0755), 0);
	fake_path(path, sizeof(path), pid, "/fd/0");
	cr_assert_eq(symlink("/dev/null", path), 0);
	fake_path(path, sizeof(path), pid, "/fd/10");
	cr_assert_eq(symlink("anon_inode:kvm-vcpu:0", path), 0);
	fake_path(path, sizeof(path), pid, "/fd/12");
	cr_assert_eq(symlink("/dev/kvm", path), 0);
	if (kvm)
		fake_kvm_fd(pid);
	fake_path(path, sizeof(path), pid, "/task");
	cr_assert_eq(mkdir(path, 0755), 0);
	fake_thread(pid, pid, "qemu-system-x86\n");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fake_exit(unsigned int pid)
{
	char path[256];

	fake_path(path, sizeof(path), pid, "");
	rm_tree(path);
}

static void setup(void)
{
	char path[128];

	strcpy(root, "/tmp/novamon-registry-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	/* Not processes: must be skipped. */
	snprintf(path, sizeof(path), "%s/self", root);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/12abc", root);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/uptime", root);
	write_file(path, "1.0 1.0\n", 8);
	reg = registry__new(root);
	cr_assert_not_null(reg);
}

static void teardown(void)
{
	registry__free(reg);
	reg = NULL;
	rm_tree(root);
}

TestSuite(registry, .init = setup, .fini = teardown);

Test(registry, guest_name_and_uuid)
{
	const struct vm_info *vm;

	fake_proc(1000, 5000,
		  ARGV("/usr/bin/qemu-system-x86_64\0-name\0guest=web-1,debug-threads=on\0"
		       "-uuid\0C7A5FDBD-CDAF-9455-926A-D65C16DB1809\0-m\0"
		       "4096\0"),
		  1);
	cr_assert_eq(registry__refresh(reg, 1000), 1);
	vm = registry__vm(reg, 1000);
	cr_assert_not_null(vm);
	cr_assert_eq(vm->tgid, 1000);
	cr_assert_str_eq(vm->name, "web-1");
	cr_assert_str_eq(vm->uuid, "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
	cr_assert_str_eq(vm->tenant, "");
	cr_assert_eq(vm->is_kvm, 1);
	cr_assert_eq(vm->last_seen_ms, 1000);
}

Test(registry, bare_and_qualified_names)
{
	fake_proc(1001, 1, ARGV("qemu\0-name\0db\0"), 1);
	fake_proc(1002, 1, ARGV("qemu\0-name\0cache,process=qemu-cache\0"), 1);
	fake_proc(1003, 1, ARGV("qemu\0-name\0process=p,guest=late,debug-threads=on\0"), 1);
	/* The last -name wins, as in qemu. */
	fake_proc(1004, 1, ARGV("qemu\0-name\0first\0-name\0second\0"), 1);
	cr_assert_eq(registry__refresh(reg, 1000), 4);
	cr_assert_str_eq(registry__vm(reg, 1001)->name, "db");
	cr_assert_str_eq(registry__vm(reg, 1002)->name, "cache");
	cr_assert_str_eq(registry__vm(reg, 1003)->name, "late");
	cr_assert_str_eq(registry__vm(reg, 1004)->name, "second");
}

Test(registry, escaped_commas)
{
	fake_proc(1001, 1, ARGV("qemu\0-name\0guest=a,,b,debug-threads=on\0"), 1);
	fake_proc(1002, 1, ARGV("qemu\0-name\0x,,y,,,process=p\0"), 1);
	fake_proc(1003, 1, ARGV("qemu\0-name\0guest=tail,,\0"), 1);
	cr_assert_eq(registry__refresh(reg, 1000), 3);
	cr_assert_str_eq(registry__vm(reg, 1001)->name, "a,b");
	cr_assert_str_eq(registry__vm(reg, 1002)->name, "x,y,");
	cr_assert_str_eq(registry__vm(reg, 1003)->name, "tail,");
}

Test(registry, unnamed_and_bad_values)
{
	char longname[300] = "qemu\0-name\0";
	const struct vm_info *vm;
	size_t len = 11;

	fake_proc(1001, 1,
		  ARGV("qemu-system-x86_64\0-enable-kvm\0-m\0"
		       "512\0"),
		  1);
	/* Empty name, a malformed UUID, and a trailing -name without value. */
	fake_proc(1002, 1, ARGV("qemu\0-name\0guest=\0-uuid\0not-a-uuid\0-name\0"), 1);
	/* A name too long for vm_info: cut at a character boundary. */
	memset(longname + len, 'a', 126);
	len += 126;
	memcpy(longname + len, "\xc3\xa9\xc3\xa9", 4); /* "éé" */
	len += 4;
	longname[len++] = '\0';
	fake_proc(1003, 1, longname, len, 1);
	cr_assert_eq(registry__refresh(reg, 1000), 3);
	cr_assert_str_eq(registry__vm(reg, 1001)->name, "pid-1001");
	vm = registry__vm(reg, 1002);
	cr_assert_str_eq(vm->name, "pid-1002");
	cr_assert_str_eq(vm->uuid, "");
	vm = registry__vm(reg, 1003);
	cr_assert_eq(strlen(vm->name), 126);
	cr_assert_eq(vm->name[125], 'a');
}

static int count_vm(const struct vm_info *vm, void *ctx)
{
	(void)vm;
	(*(int *)ctx)++;
	return 0;
}

Test(registry, non_kvm_ignored)
{
	const struct vm_info *vm;
	int n = 0;

	fake_proc(1001, 1, ARGV("qemu\0-name\0vm\0"), 1);
	fake_proc(2000, 1, ARGV("/usr/sbin/sshd\0-D\0"), 0);
	fake_proc(2001, 1, ARGV("qemu-img\0-name\0not-a-vm\0"), 0);
	cr_assert_eq(registry__refresh(reg, 1000), 1);
	cr_assert_eq(registry__for_each_vm(reg, count_vm, &n), 0);
	cr_assert_eq(n, 1);
	/* It can still be looked up, and is named, but is not a VM. */
	vm = registry__vm(reg, 2001);
	cr_assert_str_eq(vm->name, "not-a-vm");
	cr_assert_eq(vm->is_kvm, 0);
	cr_assert_eq(registry__refresh(reg, 2000), 1);
	n = 0;
	registry__for_each_vm(reg, count_vm, &n);
	cr_assert_eq(n, 1);
}

Test(registry, vcpus)
{
	char path[256];

	fake_proc(1000, 1, ARGV("qemu\0-name\0guest=vm,debug-threads=on\0"), 1);
	fake_thread(1000, 1001, "CPU 0/KVM\n");
	fake_thread(1000, 1002, "CPU 12/KVM\n");
	fake_thread(1000, 1003, "CPU 1/KVM"); /* no newline */
	fake_thread(1000, 1004, "CPU x/KVM\n");
	fake_thread(1000, 1005, "CPU 3/KVMX\n");
	fake_thread(1000, 1006, "CPU /KVM\n");
	fake_thread(1000, 1007, "IO mon_iothread\n");
	cr_assert_eq(registry__refresh(reg, 1000), 1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1001), 0);
	cr_assert_eq(registry__vcpu(reg, 1000, 1002), 12);
	cr_assert_eq(registry__vcpu(reg, 1000, 1003), 1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1000), -1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1004), -1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1005), -1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1006), -1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1007), -1);
	cr_assert_eq(registry__vcpu(reg, 1000, 4242), -1);
	/* A vCPU thread created after the refresh is found on the spot. */
	fake_thread(1000, 1008, "CPU 2/KVM\n");
	cr_assert_eq(registry__vcpu(reg, 1000, 1008), 2);
	cr_assert_eq(registry__vcpu(reg, 1000, 1008), 2);
	/* A thread named only after the last refresh is picked up by the next. */
	fake_path(path, sizeof(path), 1000, "/task/1004/comm");
	write_file(path, "CPU 4/KVM\n", 10);
	cr_assert_eq(registry__refresh(reg, 2000), 1);
	cr_assert_eq(registry__vcpu(reg, 1000, 1004), 4);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

Test(registry, vcpu_tids)
{
	uint32_t tids[8];
	size_t n;

	fake_proc(1000, 1, ARGV("qemu\0-name\0a\0"), 1);
	fake_thread(1000, 1001, "CPU 0/KVM\n");
	fake_thread(1000, 1002, "CPU 1/KVM\n");
	fake_proc(2000, 1, ARGV("qemu\0-name\0b\0"), 1);
	fake_thread(2000, 2001, "CPU 0/KVM\n");
	fake_thread(2000, 2002, "worker\n");
	/* Not a VM: its thread must not be listed. */
	fake_proc(3000, 1, ARGV("fake\0"), 0);
	fake_thread(3000, 3001, "CPU 0/KVM\n");
	cr_assert_eq(registry__refresh(reg, 1000), 2);
	n = registry__vcpu_tids(reg, tids, 8);
	cr_assert_eq(n, 3);
	qsort(tids, n, sizeof(tids[0]), cmp_u32);
	cr_assert_eq(tids[0], 1001);
	cr_assert_eq(tids[1], 1002);
	cr_assert_eq(tids[2], 2001);
	cr_assert_eq(registry__vcpu_tids(reg, tids, 2), 2);
	cr_assert_eq(registry__vcpu_tids(reg, tids, 0), 0);
}

Test(registry, process_exit)
{
	const struct vm_info *vm;
	uint32_t tids[4];
	int n = 0;

	fake_proc(1000, 1, ARGV("qemu\0-name\0gone-soon\0"), 1);
	fake_thread(1000, 1001, "CPU 0/KVM\n");
	cr_assert_eq(registry__refresh(reg, 1000), 1);
	fake_exit(1000);
	cr_assert_eq(registry__refresh(reg, 2000), 0);
	cr_assert_eq(registry__for_each_vm(reg, count_vm, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(registry__vcpu_tids(reg, tids, 4), 0);
	/* Late events of the VM that just exited are still attributed. */
	vm = registry__vm(reg, 1000);
	cr_assert_str_eq(vm->name, "gone-soon");
	cr_assert_eq(registry__vcpu(reg, 1000, 1001), 0);
	/* Until it has been unused for a minute. */
	cr_assert_eq(registry__refresh(reg, 61999), 0);
	cr_assert_str_eq(registry__vm(reg, 1000)->name, "gone-soon");
	cr_assert_eq(registry__refresh(reg, 122000), 0);
	vm = registry__vm(reg, 1000);
	cr_assert_str_eq(vm->name, "pid-1000");
	cr_assert_eq(vm->is_kvm, 0);
	cr_assert_eq(registry__vcpu(reg, 1000, 1001), -1);
}

Test(registry, unknown_gone_pid)
{
	const struct vm_info *vm;

	cr_assert_eq(registry__refresh(reg, 1000), 0);
	vm = registry__vm(reg, 4000000);
	cr_assert_not_null(vm);
	cr_assert_eq(vm->tgid, 4000000);
	cr_assert_str_eq(vm->name, "pid-4000000");
	cr_assert_eq(vm->is_kvm, 0);
	cr_assert_eq(vm->last_seen_ms, 0);
	cr_assert_eq(registry__vcpu(reg, 4000000, 4000001), -1);
	/* The same pid starting later is resolved afresh. */
	fake_proc(4000000, 7, ARGV("qemu\0-name\0late\0"), 1);
	cr_assert_eq(registry__refresh(reg, 2000), 1);
	cr_assert_str_eq(registry__vm(reg, 4000000)->name, "late");
}

Test(registry, pid_reuse)
{
	const struct vm_info *vm;

	fake_proc(1000, 100, ARGV("qemu\0-name\0old\0"), 1);
	fake_thread(1000, 1001, "CPU 0/KVM\n");
	cr_assert_eq(registry__refresh(reg, 1000), 1);
	cr_assert_str_eq(registry__vm(reg, 1000)->name, "old");
	/* Same pid, new process (new start time): a VM with another name. */
	fake_exit(1000);
	fake_proc(1000, 900, ARGV("qemu\0-name\0new\0"), 1);
	cr_assert_eq(registry__refresh(reg, 2000), 1);
	cr_assert_str_eq(registry__vm(reg, 1000)->name, "new");
	cr_assert_eq(registry__vcpu(reg, 1000, 1001), -1);
	/* And again, now as a process that is no VM. */
	fake_exit(1000);
	fake_proc(1000, 1700, ARGV("bash\0"), 0);
	cr_assert_eq(registry__refresh(reg, 3000), 0);
	vm = registry__vm(reg, 1000);
	cr_assert_str_eq(vm->name, "pid-1000");
	cr_assert_eq(vm->is_kvm, 0);
}

Test(registry, unchanged_pid_not_rescanned)
{
	char path[256];

	fake_proc(1000, 100, ARGV("qemu\0-name\0stay\0"), 1);
	cr_assert_eq(registry__refresh(reg, 1000), 1);
	/* Same start time: the fds are not listed again, the VM stays. */
	fake_path(path, sizeof(path), 1000, "/fd/11");
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(registry__refresh(reg, 2000), 1);
	cr_assert_str_eq(registry__vm(reg, 1000)->name, "stay");
}

Test(registry, vm_fd_opened_after_first_check)
{
	fake_proc(1000, 1, ARGV("init\0"), 0);
	cr_assert_eq(registry__refresh(reg, 1000), 0);
	/* qemu started: seen before it created its VM. */
	fake_proc(1500, 50, ARGV("qemu\0-name\0slow-start\0"), 0);
	cr_assert_eq(registry__refresh(reg, 2000), 0);
	fake_kvm_fd(1500);
	cr_assert_eq(registry__refresh(reg, 3000), 1);
	cr_assert_str_eq(registry__vm(reg, 1500)->name, "slow-start");
	cr_assert_eq(registry__vm(reg, 1500)->is_kvm, 1);
}

Test(registry, appears_between_refreshes)
{
	const struct vm_info *vm;
	int n = 0;

	cr_assert_eq(registry__refresh(reg, 1000), 0);
	fake_proc(1234, 77,
		  ARGV("qemu\0-name\0guest=fresh\0-uuid\0"
		       "0b8f6c2e-1a52-4b3e-9e6b-0f1c2d3e4f50\0"),
		  1);
	fake_thread(1234, 1240, "CPU 5/KVM\n");
	vm = registry__vm(reg, 1234);
	cr_assert_str_eq(vm->name, "fresh");
	cr_assert_str_eq(vm->uuid, "0b8f6c2e-1a52-4b3e-9e6b-0f1c2d3e4f50");
	cr_assert_eq(vm->is_kvm, 1);
	cr_assert_eq(registry__vcpu(reg, 1234, 1240), 5);
	cr_assert_eq(registry__for_each_vm(reg, count_vm, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(registry__refresh(reg, 2000), 1);
	cr_assert_str_eq(registry__vm(reg, 1234)->name, "fresh");
}

struct stop_ctx {
	int calls;
	int stop_at;
};

static int stop_early(const struct vm_info *vm, void *ctx)
{
	struct stop_ctx *c = ctx;

	cr_assert_eq(vm->is_kvm, 1);
	return ++c->calls == c->stop_at ? 7 : 0;
}

Test(registry, for_each_stops_early)
{
	struct stop_ctx c = { .stop_at = 2 };

	fake_proc(1001, 1, ARGV("qemu\0"), 1);
	fake_proc(1002, 1, ARGV("qemu\0"), 1);
	fake_proc(1003, 1, ARGV("qemu\0"), 1);
	cr_assert_eq(registry__refresh(reg, 1000), 3);
	cr_assert_eq(registry__for_each_vm(reg, stop_early, &c), 7);
	cr_assert_eq(c.calls, 2);
	c = (struct stop_ctx){ .stop_at = 0 };
	cr_assert_eq(registry__for_each_vm(reg, stop_early, &c), 0);
	cr_assert_eq(c.calls, 3);
}

Test(registry, many_processes)
{
	unsigned int pid;
	int n = 0;

	/* Enough to grow the hash table a few times. */
	for (pid = 100; pid < 2600; pid++)
		fake_proc(pid, pid, ARGV("qemu\0"), pid % 10 == 0);
	cr_assert_eq(registry__refresh(reg, 1000), 250);
	for (pid = 100; pid < 2600; pid += 2)
		fake_exit(pid);
	cr_assert_eq(registry__refresh(reg, 2000), 0);
	cr_assert_eq(registry__refresh(reg, 70000), 0);
	cr_assert_str_eq(registry__vm(reg, 105)->name, "pid-105");
	cr_assert_eq(registry__vm(reg, 105)->is_kvm, 0);
	registry__for_each_vm(reg, count_vm, &n);
	cr_assert_eq(n, 0);
}

Test(registry, new_bad_root)
{
	struct registry *r = registry__new("/nonexistent/novamon");

	cr_assert_null(r);
	cr_assert_eq(errno, ENOENT);
	registry__free(NULL);
}

Test(registry, real_proc)
{
	struct registry *r = registry__new("/proc");
	const struct vm_info *vm;
	char name[32];

	cr_assert_not_null(r);
	cr_assert_geq(registry__refresh(r, 1000), 0);
	vm = registry__vm(r, (uint32_t)getpid());
	cr_assert_not_null(vm);
	snprintf(name, sizeof(name), "pid-%d", (int)getpid());
	cr_assert_str_eq(vm->name, name);
	cr_assert_eq(vm->is_kvm, 0);
	cr_assert_eq(registry__vcpu(r, (uint32_t)getpid(), (uint32_t)gettid()), -1);
	cr_assert_geq(registry__refresh(r, 2000), 0);
	registry__free(r);
}

static int count_lifecycle(const char *vm, const char *event, uint64_t count, void *ctx)
{
	(void)vm;
	(void)event;
	(void)count;
	(*(int *)ctx)++;
	return 0;
}

Test(registry, lifecycle_empty)
{
	int n = 0;

	cr_assert_eq(registry__refresh(reg, 1000), 0);
	cr_assert_eq(registry__for_each_lifecycle(reg, count_lifecycle, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(registry__lifecycle_dropped(reg), 0);
}

#if HAVE_LIBVIRT
/* The running domain "test" of libvirt's built-in test driver. */
#define TEST_DOMAIN_UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

static void silent(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

Test(registry, libvirt_test_driver)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	virDomainPtr dom, byname;
	const struct vm_info *vm;
	virConnectPtr conn;

	virSetErrorFunc(NULL, silent);
	/* test:///default is one shared in-process state while a connection is open. */
	conn = virConnectOpen("test:///default");
	cr_assert_not_null(conn);
	dom = virDomainLookupByName(conn, "test");
	cr_assert_not_null(dom);
	cr_assert_eq(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
					  "<tenant>acme &amp; co</tenant>", "novamon",
					  "https://novacron.io/xmlns/novamon/1",
					  VIR_DOMAIN_AFFECT_LIVE),
		     0);
	byname = virDomainCreateXML(conn,
				    "<domain type='test'><name>byname</name><memory>1024</memory>"
				    "<os><type>hvm</type></os></domain>",
				    0);
	cr_assert_not_null(byname);
	cr_assert_eq(virDomainGetUUIDString(byname, uuid), 0);
	/* Matched by UUID although its command line names it differently. */
	fake_proc(1000, 1, ARGV("qemu\0-name\0guest=other\0-uuid\0" TEST_DOMAIN_UUID "\0"), 1);
	/* Matched by name (no -uuid), and not matched at all. */
	fake_proc(1001, 1, ARGV("qemu\0-name\0byname\0"), 1);
	fake_proc(1002, 1, ARGV("qemu\0-name\0nolibvirt\0"), 1);
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), 0);
	cr_assert_eq(registry__refresh(reg, 1000), 3);
	vm = registry__vm(reg, 1000);
	cr_assert_str_eq(vm->name, "test");
	cr_assert_str_eq(vm->uuid, TEST_DOMAIN_UUID);
	cr_assert_str_eq(vm->tenant, "acme & co");
	vm = registry__vm(reg, 1001);
	cr_assert_str_eq(vm->name, "byname");
	cr_assert_str_eq(vm->uuid, uuid);
	cr_assert_str_eq(vm->tenant, "");
	vm = registry__vm(reg, 1002);
	cr_assert_str_eq(vm->name, "nolibvirt");
	cr_assert_str_eq(vm->uuid, "");
	cr_assert_str_eq(vm->tenant, "");
	/* An attribute works too, picked up by the periodic rematch. */
	cr_assert_eq(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, "<info tenant='blue'/>",
					  "novamon", "https://novacron.io/xmlns/novamon/1",
					  VIR_DOMAIN_AFFECT_LIVE),
		     0);
	cr_assert_eq(registry__refresh(reg, 2000), 3);
	cr_assert_str_eq(registry__vm(reg, 1000)->tenant, "acme & co");
	cr_assert_eq(registry__refresh(reg, 32000), 3);
	cr_assert_str_eq(registry__vm(reg, 1000)->tenant, "blue");
	virDomainDestroy(byname);
	virDomainFree(byname);
	virDomainFree(dom);
	virConnectClose(conn);
}

/* A domain of our own for lifecycle tests; none is active at first. */
#define LC_UUID "3f1c9a2e-5b7d-4e60-8a1f-2c3d4e5f6a7b"
#define LC_XML(name)                                                        \
	"<domain type='test'><name>" name "</name><uuid>" LC_UUID "</uuid>" \
	"<memory>1024</memory><os><type>hvm</type></os></domain>"

struct lc_query {
	const char *vm;
	const char *event;
	uint64_t count; /* of vm and event */
	int entries; /* all calls */
	uint64_t total; /* sum of all counts */
};

static int query_lifecycle(const char *vm, const char *event, uint64_t count, void *ctx)
{
	struct lc_query *q = ctx;

	cr_assert_gt(count, 0);
	if (!strcmp(vm, q->vm) && !strcmp(event, q->event))
		q->count = count;
	q->entries++;
	q->total += count;
	return 0;
}

static struct lc_query lc_query(const char *vm, const char *event)
{
	struct lc_query q = { .vm = vm, .event = event };

	cr_assert_eq(registry__for_each_lifecycle(reg, query_lifecycle, &q), 0);
	return q;
}

/* Refresh (advancing *now) until vm has want events of that kind, for up to 2 s. */
static void wait_lifecycle(uint64_t *now, const char *vm, const char *event, uint64_t want)
{
	int i;

	for (i = 0; i < 200; i++) {
		*now += 10;
		cr_assert_geq(registry__refresh(reg, *now), 0);
		if (lc_query(vm, event).count >= want)
			break;
		usleep(10000);
	}
	cr_assert_eq(lc_query(vm, event).count, want, "%s %s", vm, event);
}

static int stop_lifecycle(const char *vm, const char *event, uint64_t count, void *ctx)
{
	(void)vm;
	(void)event;
	(void)count;
	return ++*(int *)ctx == 2 ? 5 : 0;
}

Test(registry, libvirt_lifecycle)
{
	static const char *const events[] = { "defined", "started", "suspended",
					      "resumed", "stopped", "undefined" };
	virConnectPtr conn;
	virDomainPtr dom;
	uint64_t now = 1000;
	struct lc_query q;
	size_t i;
	int n = 0;

	virSetErrorFunc(NULL, silent);
	/* Shares the registry's test driver state while it is open. */
	conn = virConnectOpen("test:///default");
	cr_assert_not_null(conn);
	fake_proc(1000, 1, ARGV("qemu\0-name\0guest=other\0-uuid\0" LC_UUID "\0"), 1);
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), 0);
	cr_assert_eq(registry__refresh(reg, now), 1);
	cr_assert_str_eq(registry__vm(reg, 1000)->name, "other");
	dom = virDomainDefineXML(conn, LC_XML("lc1"));
	cr_assert_not_null(dom);
	wait_lifecycle(&now, "lc1", "defined", 1);
	cr_assert_eq(virDomainCreate(dom), 0);
	wait_lifecycle(&now, "lc1", "started", 1);
	/* Named at once, not at the next periodic match 30 s later. */
	cr_assert_lt(now, 31000);
	cr_assert_str_eq(registry__vm(reg, 1000)->name, "lc1");
	cr_assert_eq(virDomainSuspend(dom), 0);
	wait_lifecycle(&now, "lc1", "suspended", 1);
	/* A new connection gets a new callback, and the old one is gone. */
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), 0);
	cr_assert_eq(registry__refresh(reg, now += 10), 1);
	cr_assert_eq(virDomainResume(dom), 0);
	wait_lifecycle(&now, "lc1", "resumed", 1);
	cr_assert_eq(virDomainDestroy(dom), 0);
	wait_lifecycle(&now, "lc1", "stopped", 1);
	cr_assert_eq(virDomainUndefine(dom), 0);
	wait_lifecycle(&now, "lc1", "undefined", 1);
	usleep(50000);
	cr_assert_eq(registry__refresh(reg, now += 10), 1);
	for (i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		cr_assert_eq(lc_query("lc1", events[i]).count, 1, "%s", events[i]);
	q = lc_query("lc1", "started");
	cr_assert_eq(q.entries, 6);
	cr_assert_eq(q.total, 6);
	cr_assert_eq(registry__lifecycle_dropped(reg), 0);
	cr_assert_eq(registry__for_each_lifecycle(reg, stop_lifecycle, &n), 5);
	cr_assert_eq(n, 2);
	/* Counts of a VM undefined an hour ago are forgotten. */
	cr_assert_eq(registry__refresh(reg, now + 3000000), 1);
	cr_assert_eq(lc_query("lc1", "started").entries, 6);
	cr_assert_eq(registry__refresh(reg, now + 3700000), 1);
	cr_assert_eq(lc_query("lc1", "started").entries, 0);
	virDomainFree(dom);
	virConnectClose(conn);
}

Test(registry, libvirt_lifecycle_queue_full)
{
	virConnectPtr conn;
	virDomainPtr dom;
	uint64_t now = 1000;
	struct lc_query q;
	int i;

	virSetErrorFunc(NULL, silent);
	conn = virConnectOpen("test:///default");
	cr_assert_not_null(conn);
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), 0);
	cr_assert_eq(registry__refresh(reg, now), 0);
	dom = virDomainCreateXML(conn, LC_XML("burst"), 0);
	cr_assert_not_null(dom);
	wait_lifecycle(&now, "burst", "started", 1);
	/* 400 events without a refresh: the queue (256) overflows. */
	for (i = 0; i < 200; i++) {
		cr_assert_eq(virDomainSuspend(dom), 0);
		cr_assert_eq(virDomainResume(dom), 0);
	}
	for (i = 0; i < 200 && registry__lifecycle_dropped(reg) < 400 - 256; i++)
		usleep(10000);
	usleep(50000);
	cr_assert_eq(registry__lifecycle_dropped(reg), 400 - 256);
	cr_assert_geq(registry__refresh(reg, now += 10), 0);
	q = lc_query("burst", "suspended");
	cr_assert_eq(q.total, 1 + 256);
	cr_assert_eq(q.count + lc_query("burst", "resumed").count, 256);
	/* Nothing is lost once the queue has room again. */
	cr_assert_eq(virDomainDestroy(dom), 0);
	wait_lifecycle(&now, "burst", "stopped", 1);
	cr_assert_eq(registry__lifecycle_dropped(reg), 400 - 256);
	virDomainFree(dom);
	virConnectClose(conn);
}
Test(registry, libvirt_loop_restart)
{
	virConnectPtr conn;
	virDomainPtr dom;
	struct registry *other;
	uint64_t now = 1000;

	virSetErrorFunc(NULL, silent);
	conn = virConnectOpen("test:///default");
	cr_assert_not_null(conn);
	/* Two registries share the event loop thread; freeing one keeps it. */
	other = registry__new(root);
	cr_assert_not_null(other);
	cr_assert_eq(registry__set_libvirt_uri(other, "test:///default"), 0);
	cr_assert_eq(registry__refresh(other, now), 0);
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), 0);
	cr_assert_eq(registry__refresh(reg, now), 0);
	registry__free(other);
	dom = virDomainDefineXML(conn, LC_XML("again"));
	cr_assert_not_null(dom);
	wait_lifecycle(&now, "again", "defined", 1);
	/* The last one stops it; the next registry starts it again. */
	registry__free(reg);
	reg = registry__new(root);
	cr_assert_not_null(reg);
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), 0);
	cr_assert_eq(registry__refresh(reg, now), 0);
	cr_assert_eq(virDomainCreate(dom), 0);
	wait_lifecycle(&now, "again", "started", 1);
	cr_assert_eq(lc_query("again", "defined").count, 0);
	cr_assert_eq(virDomainDestroy(dom), 0);
	cr_assert_eq(virDomainUndefine(dom), 0);
	virDomainFree(dom);
	virConnectClose(conn);
}
#else
Test(registry, libvirt_unsupported)
{
	cr_assert_eq(registry__set_libvirt_uri(reg, "test:///default"), -EOPNOTSUPP);
	cr_assert_eq(registry__refresh(reg, 1000), 0);
	cr_assert_eq(registry__for_each_lifecycle(reg, NULL, NULL), 0);
	cr_assert_eq(registry__lifecycle_dropped(reg), 0);
}
#endif
