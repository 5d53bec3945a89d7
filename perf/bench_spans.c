/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_spans: spans synthesized per second on one core, from a recorded
 * event stream (generated here, with the real ring-event layouts of
 * bpf/block.h, bpf/kvm.h and bpf/sched.h).
 *
 * The stream: 4 VMs (qemu processes of a fake proc tree holding a KVM VM
 * fd, 4 vCPU threads each) and 2 plain processes; per 16 events: 11 block
 * completions (reads and writes on 4 devices, VM I/O and not), 2 long vCPU
 * halts, 2 long run-queue delays, 1 KVM exit (counted for storms). The
 * whole path runs on one pinned thread, as a worker and the synthesizer
 * would on their own cores, alternating like a worker pass and a
 * synthesizer round:
 *
 *   worker_dispatch() (the real decoders: shard update + candidate push)
 *     -> span ring -> spans__poll() (attribution, baselines, sampling,
 *     IDs, struct span) -> a sink that reads every span
 *
 * Benchmarks (a table of named entries, each warmed up then timed):
 *   synth      spans__poll() alone on candidates already in the ring,
 *              budget unlimited (every candidate becomes a span)
 *   pipeline   decode + synthesize, budget unlimited
 *   sampled    decode + synthesize at the default budget (1000 spans/s):
 *              candidates handled per second when nearly all are sampled out
 *
 * Prints a table and `bench <name> <value> <unit>` lines, the headline being
 * `bench spans_synthesized_per_core <value> spans/s` (the pipeline entry).
 * No root needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "bpf/block.h"
#include "bpf/kvm.h"
#include "bpf/sched.h"
#include "shard.h"
#include "spans/spans.h"
#include "worker.h"

#define BENCH_VMS 4
#define BENCH_VCPUS 4
#define BENCH_EVENTS 65536 /* the recorded stream, replayed in a loop */
#define BENCH_CHUNK 4096 /* events per "worker pass" before a synthesizer round */
#define BENCH_BASE_TGID 41000

struct bench_opts {
	double warmup_s;
	double duration_s;
	int cpu;
};

struct bench_event {
	union {
		struct event_header h;
		struct block_rq_event block;
		struct kvm_wakeup_event wakeup;
		struct sched_delay_event delay;
		struct kvm_userspace_exit_event exit;
	};
};

struct bench_result {
	uint64_t events;
	uint64_t spans;
	uint64_t candidates;
	double seconds;
};

struct bench {
	const char *name;
	const char *what;
	uint32_t budget; /* 0: unlimited */
	bool decode; /* replay events through the decoders, else candidates only */
};

static const struct bench benches[] = {
	{ "synth", "spans__poll() alone, every candidate kept", 10000000, false },
	{ "pipeline", "decode + synthesize, every candidate kept", 10000000, true },
	{ "sampled", "decode + synthesize at 1000 spans/s", 1000, true },
};

static char proc_root[64];
static struct bench_event stream[BENCH_EVENTS];
static uint64_t sink_spans, sink_bytes;

static void sink_span(void *ctx, const struct span *s)
{
	unsigned int i;

	(void)ctx;
	/* Read the record as an exporter would. */
	sink_spans++;
	sink_bytes += s->name[0] + s->span_id[0] + s->trace_id[15];
	for (i = 0; i < s->nattrs; i++)
		sink_bytes += s->attrs[i].key[0] + (uint64_t)s->attrs[i].i;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int write_text(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* A qemu-like process (kvm: with a KVM VM fd and vCPU threads) in the fake tree. */
static int fake_process(uint32_t pid, bool kvm)
{
	char path[256], text[256];
	int n, v, err = 0;

	snprintf(path, sizeof(path), "%s/%u", proc_root, pid);
	if (mkdir(path, 0755))
		return -errno;
	snprintf(path, sizeof(path), "%s/%u/stat", proc_root, pid);
	n = snprintf(text, sizeof(text),
		     "%u (qemu) S 1 %u %u 0 -1 0 0 0 0 0 0 0 0 0 20 0 9 0 %u 0 0\n", pid, pid, pid,
		     pid);
	err = err ?: write_text(path, text, (size_t)n);
	snprintf(path, sizeof(path), "%s/%u/cmdline", proc_root, pid);
	n = snprintf(text, sizeof(text), "qemu-system-x86_64%c-name%cguest=bench-vm-%u%c", 0, 0,
		     pid, 0);
	err = err ?: write_text(path, text, (size_t)n);
	snprintf(path, sizeof(path), "%s/%u/fd", proc_root, pid);
	if (mkdir(path, 0755))
		return -errno;
	snprintf(path, sizeof(path), "%s/%u/task", proc_root, pid);
	if (mkdir(path, 0755))
		return -errno;
	if (!kvm)
		return err;
	snprintf(path, sizeof(path), "%s/%u/fd/11", proc_root, pid);
	if (symlink("anon_inode:kvm-vm", path))
		return -errno;
	for (v = 0; v < BENCH_VCPUS; v++) {
		snprintf(path, sizeof(path), "%s/%u/task/%u", proc_root, pid, pid + 1 + v);
		if (mkdir(path, 0755))
			return -errno;
		strcat(path, "/comm");
		n = snprintf(text, sizeof(text), "CPU %d/KVM\n", v);
		err = err ?: write_text(path, text, (size_t)n);
	}
	return err;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* xorshift64: the stream's own generator, fixed seed: every run replays the same stream. */
static uint64_t gen_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void make_stream(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, ts = 0, r;
	size_t i;

	for (i = 0; i < BENCH_EVENTS; i++) {
		struct bench_event *e = &stream[i];
		uint32_t vm = (uint32_t)(gen_next(&x) % (BENCH_VMS + 2));
		uint32_t tgid = BENCH_BASE_TGID + vm * 100;
		uint32_t vcpu = (uint32_t)(gen_next(&x) % BENCH_VCPUS);
		unsigned int slot = i % 16;

		r = gen_next(&x);
		ts += 2000 + r % 4000; /* about 250K events/s of kernel time */
		memset(e, 0, sizeof(*e));
		if (slot < 11) {
			e->block = (struct block_rq_event){
				.h = { .type = EV_BLOCK_RQ, .size = sizeof(e->block) },
				.major = 7 + (uint32_t)(r % 2) * 246,
				.minor = (uint32_t)(r >> 8) % 2,
				.op = (uint32_t)(r >> 16) % 2,
				.bytes = 4096u << ((r >> 20) % 4),
				.latency_ns = 50000 + (r >> 24) % 200000,
				.error = (r >> 40) % 10000 == 0 ? 10 : 0,
				.sector = (r >> 12) % (1u << 30),
				.queue_ns = (r >> 32) % 2 ? (r >> 44) % 20000 : 0,
			};
		} else if (slot < 13) {
			e->wakeup = (struct kvm_wakeup_event){
				.h = { .type = EV_KVM_WAKEUP, .size = sizeof(e->wakeup) },
				.vcpu_id = vcpu,
				.waited = 1,
				.valid = 1,
				.ns = 10000000 + r % 40000000,
			};
		} else if (slot < 15) {
			e->delay = (struct sched_delay_event){
				.h = { .type = EV_SCHED_DELAY, .size = sizeof(e->delay) },
				.delay_ns = 1000000 + r % 3000000,
			};
		} else {
			e->exit = (struct kvm_userspace_exit_event){
				.h = { .type = EV_KVM_USERSPACE_EXIT, .size = sizeof(e->exit) },
				.vcpu_id = vcpu,
				.reason = 2,
			};
		}
		if (slot >= 11 && vm >= BENCH_VMS)
			tgid = BENCH_BASE_TGID; /* KVM events come from VMs */
		e->h.tgid = tgid;
		e->h.tid = slot < 11 && vm >= BENCH_VMS ? tgid : tgid + 1 + vcpu;
		e->h.ts_ns = ts;
	}
}

/* Replay one chunk of the stream, shifted to the current monotonic time. */
static void replay(struct worker *w, struct shard_table *t, size_t *pos, uint64_t base)
{
	size_t i;

	for (i = 0; i < BENCH_CHUNK; i++) {
		struct bench_event e = stream[*pos];

		e.h.ts_ns += base;
		worker_dispatch(w, t, &e, e.h.size);
		if (++*pos == BENCH_EVENTS) {
			*pos = 0;
			shard_table__clear(t); /* as the tick would, once a second */
		}
	}
}

/* Fill the ring with the candidates of one chunk (decoded once, outside the timing). */
static void candidates_only(struct span_ring *ring, const struct span_cand *cands, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		span_ring__push(ring, &cands[i]);
}

static int run(const struct bench *b, const struct bench_opts *o, struct bench_result *res)
{
	struct span_ring_params rp = { .entries = 1 << 16 };
	struct span_cand *cands = NULL;
	struct shard_table t = { 0 };
	struct worker *w = NULL;
	struct span_ring *ring = NULL;
	struct spans *syn = NULL;
	struct spans_opts so;
	uint64_t start, end, warm_end, t0, base, events = 0, spans0 = 0;
	size_t pos = 0, ncands = 0;
	struct spans_stats st;
	bool timing = false;
	int err = 0;

	memset(res, 0, sizeof(*res));
	ring = span_ring__new(&rp, -1);
	w = aligned_alloc(128, sizeof(*w));
	if (!ring || !w || shard_table__init(&t, 16384, -1)) {
		err = -ENOMEM;
		goto cleanup;
	}
	memset(w, 0, sizeof(*w));
	t.spans = ring;
	spans_opts__init(&so, NULL);
	so.budget_per_second = b->budget;
	so.proc_root = proc_root;
	so.no_lifecycle = true;
	so.sinks[0] = (struct spans_sink){ .name = "bench", .span = sink_span };
	so.nsinks = 1;
	syn = spans__new(&so);
	if (!syn) {
		err = -errno;
		goto cleanup;
	}
	spans__add_ring(syn, ring);
	base = now_ns(CLOCK_MONOTONIC);

	if (!b->decode) {
		/* Record one chunk's candidates (shifted on replay to stay recent). */
		cands = calloc(BENCH_CHUNK, sizeof(*cands));
		if (!cands) {
			err = -ENOMEM;
			goto cleanup;
		}
		replay(w, &t, &pos, base);
		ncands = span_ring__pop_burst(ring, cands, BENCH_CHUNK);
	}

	t0 = now_ns(CLOCK_MONOTONIC);
	warm_end = t0 + (uint64_t)(o->warmup_s * 1e9);
	end = warm_end + (uint64_t)(o->duration_s * 1e9);
	start = t0;
	for (;;) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (!timing && now >= warm_end) {
			timing = true;
			start = now;
			spans__stats(syn, &st);
			spans0 = sink_spans;
			res->candidates = 0;
			events = 0;
			for (int k = 0; k < SPANS_KIND_MAX; k++)
				res->candidates -= st.synthesized[k] + st.sampled_out[k];
		}
		if (now >= end)
			break;
		if (b->decode) {
			/* Events replayed at the current time: the stream is "live". */
			replay(w, &t, &pos, now - stream[pos].h.ts_ns);
			events += BENCH_CHUNK;
		} else {
			size_t i;

			for (i = 0; i < ncands; i++)
				cands[i].end_ns = now - (ncands - i) * 1000;
			candidates_only(ring, cands, ncands);
			events += ncands;
		}
		spans__poll(syn, now, now_ns(CLOCK_REALTIME));
	}
	res->seconds = (double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
	res->events = events;
	res->spans = sink_spans - spans0;
	spans__stats(syn, &st);
	for (int k = 0; k < SPANS_KIND_MAX; k++)
		res->candidates += st.synthesized[k] + st.sampled_out[k];
	if (st.ring_dropped)
		fprintf(stderr, "bench %s: %llu candidates dropped (ring full)\n", b->name,
			(unsigned long long)st.ring_dropped);

cleanup:
	spans__free(syn);
	span_ring__free(ring);
	shard_table__destroy(&t);
	free(w);
	free(cands);
	return err;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: bench_spans [--warmup S] [--duration S] [--cpu N] [BENCH...]\n"
		   "Spans synthesized per second on one core from a generated event stream.\n"
		   "Benches: synth, pipeline, sampled (default: all).\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "warmup", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bench_opts o = { .warmup_s = 0.5, .duration_s = 2.0, .cpu = 0 };
	struct bench_result res[sizeof(benches) / sizeof(benches[0])];
	bool want[sizeof(benches) / sizeof(benches[0])] = { false };
	size_t i, nb = sizeof(benches) / sizeof(benches[0]);
	bool any = false;
	cpu_set_t set;
	int c, err = 0, v;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			o.warmup_s = atof(optarg);
			break;
		case 'd':
			o.duration_s = atof(optarg);
			break;
		case 'c':
			o.cpu = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (; optind < argc; optind++) {
		for (i = 0; i < nb; i++)
			if (!strcmp(argv[optind], benches[i].name))
				break;
		if (i == nb) {
			fprintf(stderr, "bench_spans: unknown bench '%s'\n", argv[optind]);
			return 2;
		}
		want[i] = any = true;
	}
	for (i = 0; i < nb && !any; i++)
		want[i] = true;

	CPU_ZERO(&set);
	CPU_SET(o.cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, "bench_spans: cannot pin to CPU %d: %s (running unpinned)\n", o.cpu,
			strerror(errno));

	strcpy(proc_root, "/tmp/novamon-bench-spans-XXXXXX");
	if (!mkdtemp(proc_root)) {
		perror("mkdtemp");
		return 1;
	}
	for (v = 0; v <= BENCH_VMS && !err; v++)
		err = fake_process(BENCH_BASE_TGID + (uint32_t)v * 100, v < BENCH_VMS);
	if (err) {
		fprintf(stderr, "bench_spans: fake proc tree: %s\n", strerror(-err));
		goto out;
	}
	make_stream();

	printf("%-10s %12s %12s %14s %14s  %s\n", "bench", "events/s", "cands/s", "spans/s",
	       "ns/span", "what");
	for (i = 0; i < nb; i++) {
		if (!want[i])
			continue;
		err = run(&benches[i], &o, &res[i]);
		if (err) {
			fprintf(stderr, "bench_spans: %s: %s\n", benches[i].name, strerror(-err));
			goto out;
		}
		printf("%-10s %12.0f %12.0f %14.0f %14.1f  %s\n", benches[i].name,
		       res[i].events / res[i].seconds, res[i].candidates / res[i].seconds,
		       res[i].spans / res[i].seconds,
		       res[i].spans ? res[i].seconds * 1e9 / res[i].spans : 0.0, benches[i].what);
	}
	for (i = 0; i < nb; i++) {
		if (!want[i])
			continue;
		if (!strcmp(benches[i].name, "pipeline"))
			printf("bench spans_synthesized_per_core %.0f spans/s\n",
			       res[i].spans / res[i].seconds);
		else if (!strcmp(benches[i].name, "synth"))
			printf("bench spans_synth_only_per_core %.0f spans/s\n",
			       res[i].spans / res[i].seconds);
		else
			printf("bench spans_sampled_candidates_per_core %.0f candidates/s\n",
			       res[i].candidates / res[i].seconds);
	}
	printf("(sink checksum %llu)\n", (unsigned long long)sink_bytes);
out:
	nftw(proc_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return err ? 1 : 0;
}
