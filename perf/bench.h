/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI between perf/bench.bpf.c and perf/bench_pipeline.c: the bounds of the
 * rodata knobs and the fake vCPU threads the benchmark events are charged
 * to. The events themselves are EV_SCHED_DELAY (bpf/sched.h), so the real
 * worker decoder and shard insert run on them.
 */
#ifndef NOVAMON_PERF_BENCH_H
#define NOVAMON_PERF_BENCH_H

/* Events emitted per trigger are at most this (the BPF loop bound). */
#define BENCH_MAX_BATCH 64

/* Fake vCPU threads: tgid BENCH_FAKE_TGID, tids BENCH_FAKE_TID + [0, BENCH_FAKE_VCPUS). */
#define BENCH_FAKE_TGID 0x7ffe0000
#define BENCH_FAKE_TID 0x7ffe0001
#define BENCH_FAKE_VCPUS 16 /* a power of two */

/* bench_tgid value that no task has: the program runs, filters, emits nothing. */
#define BENCH_TGID_NONE 0xffffffff

#endif /* NOVAMON_PERF_BENCH_H */
