/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selfstat: the live /proc, and a fake proc tree whose comm holds ") (" and
 * blanks (fields are found after the last ')'), plus malformed trees.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "selfstat.h"

static char root[64];

static void write_file(const char *rel, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void mkdir_rel(const char *rel)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
}

/* A fake proc root with self/stat = stat_line, stat with btime, and four fds. */
static void fake_proc(const char *stat_line, const char *proc_stat)
{
	mkdir_rel("self");
	mkdir_rel("self/fd");
	write_file("self/fd/0", "");
	write_file("self/fd/1", "");
	write_file("self/fd/2", "");
	write_file("self/fd/7", "");
	write_file("self/stat", stat_line);
	write_file("stat", proc_stat);
}

static void fake_setup(void)
{
	snprintf(root, sizeof(root), "/tmp/novamon-selfstat-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fake_teardown(void)
{
	nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(selfstat_fake, .init = fake_setup, .fini = fake_teardown);

#define PROC_STAT                                                                   \
	"cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 1 2 3\nctxt 99\n" \
	"btime 1700000000\nprocesses 5\n"

/*
 * Fields 3.. of a stat line: utime 250, stime 150, threads 7, starttime
 * 12345, vsize 100 MiB, rss 2560 pages; tty_nr -1 and nice -5 are negative.
 */
#define STAT_TAIL                                                                           \
	" S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 -5 7 0 12345 104857600 2560 " \
	"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

static void assert_fake_values(const struct selfstat *s)
{
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

	cr_assert_float_eq(s->cpu_seconds, 400.0 / tck, 1e-9);
	cr_assert_eq(s->rss_bytes, 2560ULL * page);
	cr_assert_eq(s->vsize_bytes, 104857600ULL);
	cr_assert_eq(s->threads, 7);
	cr_assert_eq(s->open_fds, 4);
	cr_assert_float_eq(s->start_time_seconds, 1700000000.0 + 12345.0 / tck, 1e-6);
}

Test(selfstat_fake, comm_with_parens_and_blanks)
{
	struct selfstat s;

	fake_proc("4242 (a) (b)" STAT_TAIL, PROC_STAT);
	cr_assert_eq(selfstat_read(root, &s), 0);
	assert_fake_values(&s);
}

Test(selfstat_fake, comm_that_mimics_fields)
{
	struct selfstat s;

	/* comm "x) R 9 9 9 (y" looks like the start of the fields. */
	fake_proc("4242 (x) R 9 9 9 (y)" STAT_TAIL, PROC_STAT);
	cr_assert_eq(selfstat_read(root, &s), 0);
	assert_fake_values(&s);
}

Test(selfstat_fake, plain_comm)
{
	struct selfstat s;

	fake_proc("4242 (novamon)" STAT_TAIL, PROC_STAT);
	cr_assert_eq(selfstat_read(root, &s), 0);
	assert_fake_values(&s);
}

Test(selfstat_fake, no_paren)
{
	struct selfstat s;

	memset(&s, 0x5a, sizeof(s));
	fake_proc("4242 novamon S 1 2 3\n", PROC_STAT);
	cr_assert_eq(selfstat_read(root, &s), -EINVAL);
	cr_assert_eq(s.threads, 0x5a5a5a5a5a5a5a5aULL); /* untouched on error */
}

Test(selfstat_fake, truncated_line)
{
	struct selfstat s;

	fake_proc("4242 (a) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 -5 7 0 12345\n",
		  PROC_STAT);
	cr_assert_eq(selfstat_read(root, &s), -EINVAL);
}

Test(selfstat_fake, junk_in_a_used_field)
{
	struct selfstat s;

	fake_proc("4242 (a) S 1 4242 4242 0 -1 4194560 100 0 0 0 25x 150 0 0 20 -5 7 0 12345 "
		  "104857600 2560\n",
		  PROC_STAT);
	cr_assert_eq(selfstat_read(root, &s), -EINVAL);
}

Test(selfstat_fake, no_btime)
{
	struct selfstat s;

	fake_proc("4242 (a)" STAT_TAIL, "cpu  1 2 3\nctxt 5\n");
	cr_assert_eq(selfstat_read(root, &s), -EINVAL);
}

Test(selfstat_fake, missing_tree)
{
	struct selfstat s;

	cr_assert_eq(selfstat_read(root, &s), -ENOENT);
	cr_assert_eq(selfstat_read(NULL, NULL), -EINVAL);
}

Test(selfstat, live_proc)
{
	struct selfstat s;
	long boot_guess;

	cr_assert_eq(selfstat_read(NULL, &s), 0);
	cr_assert_geq(s.cpu_seconds, 0.0);
	cr_assert_gt(s.rss_bytes, 0);
	cr_assert_gt(s.vsize_bytes, s.rss_bytes / 2);
	cr_assert_geq(s.threads, 1);
	cr_assert_gt(s.open_fds, 0);
	/* Started after 2020 and not in the future. */
	boot_guess = (long)time(NULL);
	cr_assert_gt(s.start_time_seconds, 1577836800.0);
	cr_assert_leq(s.start_time_seconds, (double)boot_guess + 1.0);
}

Test(selfstat, open_fds_counts_exactly)
{
	struct selfstat a, b;
	int fd;

	cr_assert_eq(selfstat_read("/proc", &a), 0);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(selfstat_read("/proc", &b), 0);
	close(fd);
	cr_assert_eq(b.open_fds, a.open_fds + 1);
}
