/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selfstat: the daemon's own cost, exported so it can be watched for weeks:
 * CPU seconds (user+system) and resident memory, from /proc/self.
 */
#ifndef NOVAMON_SELFSTAT_H
#define NOVAMON_SELFSTAT_H

#include <stdint.h>

struct selfstat {
	double cpu_seconds; /* user + system since start */
	uint64_t rss_bytes;
	uint64_t vsize_bytes;
	uint64_t open_fds;
	uint64_t threads;
	double start_time_seconds; /* since the epoch */
};

/*
 * Read /proc/self (or proc_root/self for tests; NULL means "/proc"):
 * <root>/self/stat for CPU, memory, threads and start time (plus "btime" in
 * <root>/stat), and the entries of <root>/self/fd for open_fds (on the live
 * /proc, not counting the fd this call holds to list them).
 * Returns 0, or a negative errno (-EINVAL on an unparsable stat file); s is
 * written only on success.
 */
int selfstat_read(const char *proc_root, struct selfstat *s);

#endif /* NOVAMON_SELFSTAT_H */
