/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_odirect: K O_DIRECT reads of BS bytes from a block device (or file)
 * at successive offsets wrapping at the device size, one at a time (queue
 * depth 1), pinned to one CPU. Each read is one block request, so reads/s
 * is the rate at which block_rq_issue/block_rq_complete fire; used by
 * perf/bench_overhead.sh to measure what tracing adds to each request.
 *
 * Prints one line: `reads <K> seconds <S> reads_per_sec <R>`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [OPTIONS] DEVICE\n"
		"Read DEVICE with O_DIRECT, one request at a time, and print reads/s.\n"
		"\n"
		"  -n, --reads K      number of reads (default 100000)\n"
		"  -s, --size BS      bytes per read, a multiple of 512 (default 4096)\n"
		"  -c, --cpu N        pin to CPU N (default: CPU 0; -1 to not pin)\n"
		"  -h, --help         show this help\n",
		prog);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Size of a block device or regular file, or 0 on error. */
static uint64_t dev_size(int fd)
{
	uint64_t bytes = 0;
	struct stat st;

	if (fstat(fd, &st))
		return 0;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, &bytes) ? 0 : bytes;
	return st.st_size;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reads", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned long reads = 100000, bs = 4096, i;
	uint64_t size, span;
	void *buf = NULL;
	int fd = -1, cpu = 0, c, ret = 1;
	double t0, dt;
	char *end;

	while ((c = getopt_long(argc, argv, "n:s:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
		case 's':
			errno = 0;
			i = strtoul(optarg, &end, 0);
			if (errno || *end || !i || *optarg == '-' ||
			    (c == 's' && (i % 512 || i > (1 << 20)))) {
				fprintf(stderr, "bench_odirect: bad -%c '%s'\n", c, optarg);
				return 2;
			}
			*(c == 'n' ? &reads : &bs) = i;
			break;
		case 'c':
			cpu = atoi(optarg);
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			fprintf(stderr, "bench_odirect: cannot pin to CPU %d: %s\n", cpu,
				strerror(errno));
	}
	fd = open(argv[optind], O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bench_odirect: %s: %s\n", argv[optind], strerror(errno));
		goto cleanup;
	}
	size = dev_size(fd);
	span = size / bs * bs;
	if (!span) {
		fprintf(stderr, "bench_odirect: %s is smaller than one read\n", argv[optind]);
		goto cleanup;
	}
	/* O_DIRECT wants the buffer aligned to the logical block size: a page is enough. */
	if (posix_memalign(&buf, 4096, bs)) {
		buf = NULL;
		fprintf(stderr, "bench_odirect: out of memory\n");
		goto cleanup;
	}
	t0 = now_s();
	for (i = 0; i < reads; i++) {
		ssize_t n = pread(fd, buf, bs, (off_t)((i * bs) % span));

		if (n != (ssize_t)bs) {
			fprintf(stderr, "bench_odirect: read %lu: %s\n", i,
				n < 0 ? strerror(errno) : "short read");
			goto cleanup;
		}
	}
	dt = now_s() - t0;
	printf("reads %lu seconds %.6f reads_per_sec %.1f\n", reads, dt, reads / dt);
	ret = 0;
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}
