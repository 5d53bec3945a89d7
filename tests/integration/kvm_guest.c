/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvm_guest: a test guest with a known number of VM exits.
 *
 * Drives /dev/kvm directly (no qemu): one VM, one 64 KiB memory slot at guest
 * physical address 0, one vCPU in real mode running a few hand-assembled
 * bytes that do exactly N `out dx, al` to port P and then `hlt`. Every `out`
 * is an exit to userspace (KVM_EXIT_IO), the `hlt` is the final
 * KVM_EXIT_HLT; anything else is a failure. Integration tests run it under
 * `novamon run` and compare what the probes counted with N.
 *
 * Prints one JSON line on stdout:
 *   {"tgid":..,"tid":..,"io_exits":N,"hlt_exits":1,"seconds":..,"exits_per_sec":..}
 * where tid is the thread that called KVM_RUN, seconds is the time spent in
 * the KVM_RUN loop and exits_per_sec counts the I/O and HLT exits in it.
 *
 * Exit status: 0 on success, 1 on any failure, 77 (meson's "skipped") when
 * /dev/kvm is missing or KVM_CREATE_VM fails.
 *
 * Follows the LWN "Using the KVM API" example (https://lwn.net/Articles/658511/).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KVM_GUEST_SKIP 77
#define KVM_GUEST_MEM_SIZE 0x10000 /* one 64 KiB slot at guest physical 0 */
#define KVM_GUEST_CODE_ADDR 0x1000
#define KVM_GUEST_STACK_TOP 0xfff0
#define KVM_GUEST_TSS_ADDR 0xfeffd000UL
#define KVM_GUEST_DEFAULT_EXITS 1000
#define KVM_GUEST_DEFAULT_PORT 0x10
#define KVM_GUEST_VCPU_COMM "CPU 0/KVM" /* qemu's name with debug-threads=on */

/*
 * The guest, 16-bit real mode, loaded at 0x1000 (cs base 0, ip 0x1000).
 * ecx = N, dx = port and al = data come from KVM_SET_REGS. The 0x66
 * operand-size prefix makes the counter 32 bits wide, so any N up to
 * 2^32 - 1 is exact; N = 0 goes straight to hlt.
 *
 * `objdump -D -b binary -mi8086 -M intel --adjust-vma=0x1000` of the bytes:
 *
 *     1000:	66 85 c9             	test   ecx,ecx
 *     1003:	74 05                	je     0x100a
 *     1005:	ee                   	out    dx,al
 *     1006:	66 49                	dec    ecx
 *     1008:	75 fb                	jne    0x1005
 *     100a:	f4                   	hlt
 *     100b:	eb fd                	jmp    0x100a
 *
 * The final jmp only matters if someone resumed the vCPU after the hlt.
 * The bytes were also run under qemu TCG as a boot sector behind
 * `cli; mov ecx, N; mov dx, 0xe9; mov al, 'N'` with isa-debugcon on 0xe9:
 * N = 0, 1, 65537 and 300000 wrote exactly N bytes.
 */
/* clang-format off */
static const uint8_t guest_code[] = {
	0x66, 0x85, 0xc9,	/* test ecx, ecx */
	0x74, 0x05,		/* je   hlt */
	0xee,			/* out  dx, al */
	0x66, 0x49,		/* dec  ecx */
	0x75, 0xfb,		/* jne  out */
	0xf4,			/* hlt */
	0xeb, 0xfd,		/* jmp  hlt */
};
/* clang-format on */

struct kvm_guest {
	/* configuration */
	uint32_t exits;
	uint16_t port;
	int vcpu_thread;
	int hold;
	int rate;

	/* resources, released by kvm_guest_close() */
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	void *mem;
	struct kvm_run *run;
	size_t run_size;

	/* results of kvm_guest_run() */
	int err; /* 0, or the exit status to use */
	pid_t tid;
	uint64_t io_exits;
	uint64_t hlt_exits;
	double seconds;

	/* --vcpu-thread --hold: the vCPU thread lives on until released */
	sem_t finished;
	sem_t released;
};

static double kvm_guest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *kvm_guest_exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN:
		return "KVM_EXIT_UNKNOWN";
	case KVM_EXIT_EXCEPTION:
		return "KVM_EXIT_EXCEPTION";
	case KVM_EXIT_IO:
		return "KVM_EXIT_IO";
	case KVM_EXIT_HYPERCALL:
		return "KVM_EXIT_HYPERCALL";
	case KVM_EXIT_DEBUG:
		return "KVM_EXIT_DEBUG";
	case KVM_EXIT_HLT:
		return "KVM_EXIT_HLT";
	case KVM_EXIT_MMIO:
		return "KVM_EXIT_MMIO";
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return "KVM_EXIT_IRQ_WINDOW_OPEN";
	case KVM_EXIT_SHUTDOWN:
		return "KVM_EXIT_SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY:
		return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTR:
		return "KVM_EXIT_INTR";
	case KVM_EXIT_INTERNAL_ERROR:
		return "KVM_EXIT_INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT:
		return "KVM_EXIT_SYSTEM_EVENT";
	default:
		return "unknown";
	}
}

/*
 * Open /dev/kvm and create the VM with its memory slot holding the guest
 * code. Returns 0, KVM_GUEST_SKIP when KVM is not usable here, or 1.
 */
static int kvm_guest_create_vm(struct kvm_guest *g)
{
	struct kvm_userspace_memory_region region = { 0 };
	int ret;

	g->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (g->kvm_fd < 0) {
		fprintf(stderr, "kvm_guest: cannot open /dev/kvm: %s; skipping\n", strerror(errno));
		return KVM_GUEST_SKIP;
	}
	ret = ioctl(g->kvm_fd, KVM_GET_API_VERSION, NULL);
	if (ret != KVM_API_VERSION) {
		fprintf(stderr, "kvm_guest: KVM_GET_API_VERSION returned %d, want %d; skipping\n",
			ret, KVM_API_VERSION);
		return KVM_GUEST_SKIP;
	}
	if (ioctl(g->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0) {
		fprintf(stderr, "kvm_guest: KVM_CAP_USER_MEMORY is missing; skipping\n");
		return KVM_GUEST_SKIP;
	}
	g->vm_fd = ioctl(g->kvm_fd, KVM_CREATE_VM, 0UL);
	if (g->vm_fd < 0) {
		fprintf(stderr, "kvm_guest: KVM_CREATE_VM failed: %s; skipping\n", strerror(errno));
		return KVM_GUEST_SKIP;
	}
	/*
	 * VMX without unrestricted guest runs real mode through vm86 and needs
	 * a 3-page TSS outside guest memory (qemu puts it at 0xfeffd000). Other
	 * KVMs accept the call and ignore it; a failure only matters on those
	 * old hosts, where KVM_RUN will then report it.
	 */
	if (ioctl(g->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0)
		ioctl(g->vm_fd, KVM_SET_TSS_ADDR, KVM_GUEST_TSS_ADDR);

	g->mem = mmap(NULL, KVM_GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->mem == MAP_FAILED) {
		g->mem = NULL;
		fprintf(stderr, "kvm_guest: mmap of guest memory: %s\n", strerror(errno));
		return 1;
	}
	memcpy((uint8_t *)g->mem + KVM_GUEST_CODE_ADDR, guest_code, sizeof(guest_code));

	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = KVM_GUEST_MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)g->mem;
	if (ioctl(g->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fprintf(stderr, "kvm_guest: KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * Create vCPU 0, map its kvm_run area and put it in real mode at the guest
 * code with the counter, port and data registers set. Runs in the thread
 * that will call KVM_RUN, as qemu does. Returns 0 or 1.
 */
static int kvm_guest_create_vcpu(struct kvm_guest *g)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int size;

	g->vcpu_fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, 0UL);
	if (g->vcpu_fd < 0) {
		fprintf(stderr, "kvm_guest: KVM_CREATE_VCPU: %s\n", strerror(errno));
		return 1;
	}
	size = ioctl(g->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (size < (int)sizeof(struct kvm_run)) {
		fprintf(stderr, "kvm_guest: KVM_GET_VCPU_MMAP_SIZE returned %d: %s\n", size,
			size < 0 ? strerror(errno) : "too small");
		return 1;
	}
	g->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu_fd, 0);
	if (g->run == MAP_FAILED) {
		g->run = NULL;
		fprintf(stderr, "kvm_guest: mmap of kvm_run: %s\n", strerror(errno));
		return 1;
	}
	g->run_size = (size_t)size;

	if (ioctl(g->vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "kvm_guest: KVM_GET_SREGS: %s\n", strerror(errno));
		return 1;
	}
	/* Real mode after reset, but with cs pointing at 0 instead of 0xf0000. */
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(g->vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "kvm_guest: KVM_SET_SREGS: %s\n", strerror(errno));
		return 1;
	}

	memset(&regs, 0, sizeof(regs));
	regs.rip = KVM_GUEST_CODE_ADDR;
	regs.rflags = 0x2; /* bit 1 is reserved and must be set */
	regs.rsp = KVM_GUEST_STACK_TOP;
	regs.rcx = g->exits;
	regs.rdx = g->port;
	regs.rax = 'N';
	if (ioctl(g->vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "kvm_guest: KVM_SET_REGS: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * The KVM_RUN loop: count `out` exits until the hlt. Any other exit, an
 * `out` that is not one byte to our port, or a wrong count fails.
 * Sets g->err to 0 or 1 and returns it.
 */
static int kvm_guest_run(struct kvm_guest *g)
{
	struct kvm_run *run;
	double start;

	g->tid = (pid_t)syscall(SYS_gettid);
	g->err = kvm_guest_create_vcpu(g);
	if (g->err)
		return g->err;
	run = g->run;

	start = kvm_guest_now();
	for (;;) {
		if (ioctl(g->vcpu_fd, KVM_RUN, NULL) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "kvm_guest: KVM_RUN: %s\n", strerror(errno));
			g->err = 1;
			break;
		}
		if (run->exit_reason == KVM_EXIT_IO) {
			if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != g->port ||
			    run->io.size != 1 || run->io.count != 1) {
				fprintf(stderr,
					"kvm_guest: unexpected KVM_EXIT_IO: direction %u port 0x%x size %u count %u\n",
					run->io.direction, run->io.port, run->io.size,
					run->io.count);
				g->err = 1;
				break;
			}
			g->io_exits++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT) {
			g->hlt_exits++;
			break;
		}
		fprintf(stderr,
			"kvm_guest: unexpected exit reason %u (%s) after %" PRIu64 " io exits",
			run->exit_reason, kvm_guest_exit_name(run->exit_reason), g->io_exits);
		if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
			fprintf(stderr, ": hardware_entry_failure_reason 0x%llx",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
			fprintf(stderr, ": suberror %u", run->internal.suberror);
		fputc('\n', stderr);
		g->err = 1;
		break;
	}
	g->seconds = kvm_guest_now() - start;

	if (!g->err && g->io_exits != g->exits) {
		fprintf(stderr, "kvm_guest: counted %" PRIu64 " io exits, want %" PRIu32 "\n",
			g->io_exits, g->exits);
		g->err = 1;
	}
	return g->err;
}

static void *kvm_guest_vcpu_thread(void *arg)
{
	struct kvm_guest *g = arg;

	/* Name the thread before the vCPU exists so that observers see a vCPU thread. */
	pthread_setname_np(pthread_self(), KVM_GUEST_VCPU_COMM);
	kvm_guest_run(g);
	sem_post(&g->finished);
	/* Stay alive (and keep the name) while main holds for observers. */
	while (sem_wait(&g->released) < 0 && errno == EINTR)
		;
	return NULL;
}

static void kvm_guest_print(const struct kvm_guest *g)
{
	uint64_t total = g->io_exits + g->hlt_exits;
	double rate = g->seconds > 0 ? (double)total / g->seconds : 0.0;

	printf("{\"tgid\":%d,\"tid\":%d,\"io_exits\":%" PRIu64 ",\"hlt_exits\":%" PRIu64
	       ",\"seconds\":%.6f,\"exits_per_sec\":%.1f}\n",
	       (int)getpid(), (int)g->tid, g->io_exits, g->hlt_exits, g->seconds, rate);
	fflush(stdout);
	if (g->rate)
		fprintf(stderr, "kvm_guest: %" PRIu64 " exits in %.6f s: %.0f exits/s\n", total,
			g->seconds, rate);
}

/* Block until stdin reaches EOF (or fails), so observers can still see us. */
static void kvm_guest_hold(void)
{
	char buf[256];
	ssize_t n;

	for (;;) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		break;
	}
}

static void kvm_guest_close(struct kvm_guest *g)
{
	if (g->run)
		munmap(g->run, g->run_size);
	if (g->vcpu_fd >= 0)
		close(g->vcpu_fd);
	if (g->mem)
		munmap(g->mem, KVM_GUEST_MEM_SIZE);
	if (g->vm_fd >= 0)
		close(g->vm_fd);
	if (g->kvm_fd >= 0)
		close(g->kvm_fd);
}

static void kvm_guest_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [OPTIONS]\n"
		"Run a tiny real-mode KVM guest that does exactly N `out` to one port, then hlt.\n"
		"\n"
		"  -n, --exits N      number of `out dx, al` exits (default %d, at most 4294967295)\n"
		"  -p, --port P       I/O port, decimal or 0x hex (default 0x%x)\n"
		"  -t, --vcpu-thread  run the vCPU in a thread named \"%s\" (like qemu)\n"
		"      --hold         after printing the result, wait for EOF on stdin\n"
		"  -r, --rate         also print exits per second on stderr\n"
		"  -h, --help         show this help\n"
		"\n"
		"Prints {\"tgid\",\"tid\",\"io_exits\",\"hlt_exits\",\"seconds\",\"exits_per_sec\"} as JSON.\n"
		"Exits 0 on success, 1 on failure, 77 when /dev/kvm is not usable.\n",
		prog, KVM_GUEST_DEFAULT_EXITS, KVM_GUEST_DEFAULT_PORT, KVM_GUEST_VCPU_COMM);
}

static int kvm_guest_parse_u(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "exits", required_argument, NULL, 'n' },
		{ "port", required_argument, NULL, 'p' },
		{ "vcpu-thread", no_argument, NULL, 't' },
		{ "hold", no_argument, NULL, 'H' },
		{ "rate", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kvm_guest g = {
		.exits = KVM_GUEST_DEFAULT_EXITS,
		.port = KVM_GUEST_DEFAULT_PORT,
		.kvm_fd = -1,
		.vm_fd = -1,
		.vcpu_fd = -1,
	};
	unsigned long long v;
	pthread_t thread;
	int sems = 0;
	int ret;
	int opt;

	while ((opt = getopt_long(argc, argv, "n:p:trh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (kvm_guest_parse_u(optarg, UINT32_MAX, &v)) {
				fprintf(stderr, "kvm_guest: bad --exits '%s'\n", optarg);
				return 1;
			}
			g.exits = (uint32_t)v;
			break;
		case 'p':
			if (kvm_guest_parse_u(optarg, 0xffff, &v)) {
				fprintf(stderr, "kvm_guest: bad --port '%s'\n", optarg);
				return 1;
			}
			g.port = (uint16_t)v;
			break;
		case 't':
			g.vcpu_thread = 1;
			break;
		case 'H':
			g.hold = 1;
			break;
		case 'r':
			g.rate = 1;
			break;
		case 'h':
			kvm_guest_usage(stdout, argv[0]);
			return 0;
		default:
			kvm_guest_usage(stderr, argv[0]);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvm_guest: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}

	ret = kvm_guest_create_vm(&g);
	if (ret)
		goto cleanup;

	if (!g.vcpu_thread) {
		ret = kvm_guest_run(&g);
		if (!ret) {
			kvm_guest_print(&g);
			if (g.hold)
				kvm_guest_hold();
		}
		goto cleanup;
	}

	if (sem_init(&g.finished, 0, 0) || sem_init(&g.released, 0, 0)) {
		fprintf(stderr, "kvm_guest: sem_init: %s\n", strerror(errno));
		ret = 1;
		goto cleanup;
	}
	sems = 1;
	ret = pthread_create(&thread, NULL, kvm_guest_vcpu_thread, &g);
	if (ret) {
		fprintf(stderr, "kvm_guest: pthread_create: %s\n", strerror(ret));
		ret = 1;
		goto cleanup;
	}
	while (sem_wait(&g.finished) < 0 && errno == EINTR)
		;
	ret = g.err;
	if (!ret) {
		kvm_guest_print(&g);
		if (g.hold)
			kvm_guest_hold();
	}
	sem_post(&g.released);
	pthread_join(thread, NULL);

cleanup:
	if (sems) {
		sem_destroy(&g.finished);
		sem_destroy(&g.released);
	}
	kvm_guest_close(&g);
	return ret;
}
