/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_proc: what the benchmarks that start a daemon share: a free port,
 * CPU time of this process and of another, and removing a work directory.
 */
#ifndef NOVAMON_BENCH_PROC_H
#define NOVAMON_BENCH_PROC_H

#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bound, read back, released), or -1. */
int bench_free_port(void);
/* user + system CPU seconds of this process. */
double bench_self_cpu_s(void);
/* utime + stime of process pid in seconds; -1 when unreadable. */
double bench_proc_cpu_s(pid_t pid);
/* rm -rf dir (best effort). */
void bench_rm_rf(const char *dir);

#endif /* NOVAMON_BENCH_PROC_H */
