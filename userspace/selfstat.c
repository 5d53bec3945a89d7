/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selfstat: the daemon's own CPU, memory, threads and fds from procfs. See
 * selfstat.h for the contract.
 *
 * /proc/<pid>/stat is "pid (comm) state f4 f5 ...". comm is whatever the
 * process named itself (prctl(PR_SET_NAME)), so it may hold blanks and
 * parentheses: the fields are located after the LAST ')' in the line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selfstat.h"

/* Fields of /proc/<pid>/stat, numbered as in proc(5). */
#define SELFSTAT_F_STATE 3
#define SELFSTAT_F_UTIME 14
#define SELFSTAT_F_STIME 15
#define SELFSTAT_F_NUM_THREADS 20
#define SELFSTAT_F_STARTTIME 22
#define SELFSTAT_F_VSIZE 23
#define SELFSTAT_F_RSS 24

/* Read the whole (small) file at path into buf, NUL-terminated. Length or negative errno. */
static ssize_t selfstat_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	if (err)
		return err;
	buf[len] = '\0';
	return len;
}

/* Parse a decimal token of exactly tok..tok+len; digits only. Returns 0 or -EINVAL. */
static int selfstat_parse_u64(const char *tok, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (tok[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (tok[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Pick the numeric fields we need out of a stat line. Fields after comm may
 * be negative (nice, tty_nr): only the ones we use are parsed.
 */
static int selfstat_parse_stat(const char *line, uint64_t *utime, uint64_t *stime,
			       uint64_t *threads, uint64_t *starttime, uint64_t *vsize,
			       uint64_t *rss)
{
	const char *p = strrchr(line, ')');
	int field = SELFSTAT_F_STATE;

	if (!p)
		return -EINVAL;
	p++;
	while (field <= SELFSTAT_F_RSS) {
		const char *tok;
		uint64_t *dst = NULL;
		size_t len;

		if (*p != ' ')
			return -EINVAL;
		while (*p == ' ')
			p++;
		tok = p;
		while (*p && *p != ' ' && *p != '\n')
			p++;
		len = p - tok;
		if (len == 0)
			return -EINVAL; /* line ends before the fields we need */

		switch (field) {
		case SELFSTAT_F_UTIME:
			dst = utime;
			break;
		case SELFSTAT_F_STIME:
			dst = stime;
			break;
		case SELFSTAT_F_NUM_THREADS:
			dst = threads;
			break;
		case SELFSTAT_F_STARTTIME:
			dst = starttime;
			break;
		case SELFSTAT_F_VSIZE:
			dst = vsize;
			break;
		case SELFSTAT_F_RSS:
			dst = rss;
			break;
		}
		if (dst && selfstat_parse_u64(tok, len, dst))
			return -EINVAL;
		field++;
	}
	return 0;
}

/* The boot time ("btime N" in <proc_root>/stat), seconds since the epoch. */
static int selfstat_read_btime(const char *proc_root, uint64_t *btime)
{
	char path[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	FILE *f = NULL;
	int err = -EINVAL; /* no btime line */

	if (snprintf(path, sizeof(path), "%s/stat", proc_root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* The intr line is long on big hosts: getline, not a fixed buffer. */
	while (getline(&line, &cap, f) >= 0) {
		size_t len;

		if (strncmp(line, "btime ", 6) != 0)
			continue;
		len = strcspn(line + 6, "\n");
		err = selfstat_parse_u64(line + 6, len, btime);
		break;
	}
	if (err == -EINVAL && ferror(f))
		err = -EIO;
	free(line);
	fclose(f);
	return err;
}

/*
 * Count the entries of <proc_root>/self/fd. When reading the live /proc the
 * directory stream holds an fd of its own, which is not counted.
 */
static int selfstat_count_fds(const char *proc_root, bool live, uint64_t *count)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir = NULL;
	char self[16];
	uint64_t n = 0;

	if (snprintf(path, sizeof(path), "%s/self/fd", proc_root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	/*
	 * Since Linux 6.2 ("proc: report open files as size in stat() for
	 * /proc/pid/fd") the live directory's size is the number of open fds:
	 * one stat() instead of a readdir that makes a dentry per fd, which
	 * took 3 ms of each tick with 5,000 WebSocket clients. Older kernels
	 * report 0, and read the directory.
	 */
	if (live && !stat(path, &st) && st.st_size > 0) {
		*count = (uint64_t)st.st_size;
		return 0;
	}
	dir = opendir(path);
	if (!dir)
		return -errno;
	snprintf(self, sizeof(self), "%d", dirfd(dir));

	errno = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (live && !strcmp(de->d_name, self))
			continue;
		n++;
	}
	if (errno) {
		int err = -errno;

		closedir(dir);
		return err;
	}
	closedir(dir);
	*count = n;
	return 0;
}

int selfstat_read(const char *proc_root, struct selfstat *s)
{
	uint64_t utime = 0, stime = 0, threads = 0, starttime = 0, vsize = 0, rss = 0;
	uint64_t btime = 0, fds = 0;
	char path[PATH_MAX];
	char buf[4096];
	long tck, page;
	bool live;
	ssize_t len;
	int err;

	if (!s)
		return -EINVAL;
	if (!proc_root)
		proc_root = "/proc";
	live = !strcmp(proc_root, "/proc");

	tck = sysconf(_SC_CLK_TCK);
	page = sysconf(_SC_PAGESIZE);
	if (tck <= 0 || page <= 0)
		return -EINVAL;

	if (snprintf(path, sizeof(path), "%s/self/stat", proc_root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	len = selfstat_read_file(path, buf, sizeof(buf));
	if (len < 0)
		return len;
	err = selfstat_parse_stat(buf, &utime, &stime, &threads, &starttime, &vsize, &rss);
	if (err)
		return err;
	err = selfstat_read_btime(proc_root, &btime);
	if (err)
		return err;
	err = selfstat_count_fds(proc_root, live, &fds);
	if (err)
		return err;

	s->cpu_seconds = (double)(utime + stime) / tck;
	s->rss_bytes = rss * (uint64_t)page;
	s->vsize_bytes = vsize;
	s->open_fds = fds;
	s->threads = threads;
	s->start_time_seconds = (double)btime + (double)starttime / tck;
	return 0;
}
