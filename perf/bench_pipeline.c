/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_pipeline: throughput and loss of the capture pipeline, kernel to
 * shard, and the cost a traced event adds to the traced task.
 *
 * The real pipeline: topology__probe(), rings__new() (per-CPU rings),
 * rings__adopt() into perf/bench.bpf.c, workers__start() (one epoll worker
 * per NUMA node decoding into its shard tables). Producers are pinned
 * threads calling getpgid() in a loop; bench.bpf.c turns each call into
 * batch EV_SCHED_DELAY events through ring_reserve/ring_submit. Counts:
 * produced and lost from the per-CPU ring counters (rings__read_stats()),
 * consumed from the workers' counters; after each run the rings are drained
 * and produced = consumed + lost is checked exactly.
 *
 * Benchmarks, as in tools/testing/selftests/bpf/bench.c, are named entries
 * of one table, each measured after a warmup over a fixed duration:
 *   sweep     producers x batch x wake-up mode, unpaced
 *   rate      all CPUs producing batch-64 events at offered rates: the
 *             zero-loss knee and the loss curve above it
 *   overhead  ns per getpgid() with no program, with the program filtering
 *             the call out, and with it emitting one event per call
 *
 * Prints a table and `bench <name> <value> <unit>` lines. Exits 77 when not
 * root or without kernel BTF.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bench.h"
#include "bench.skel.h"
#include "bpf/sched.h"
#include "rings.h"
#include "topology.h"
#include "worker.h"

#define BENCH_MAX_PRODUCERS 256
#define BENCH_MAX_RATES 32
#define BENCH_DRAIN_MS 5000
#define BENCH_OVERHEAD_ROUNDS 3

enum bench_wake {
	WAKE_THRESHOLD, /* ring_submit(): wake when unread data crosses wakeup_bytes */
	WAKE_FORCE, /* BPF_RB_FORCE_WAKEUP on every event */
};

static const char *const wake_names[] = {
	[WAKE_THRESHOLD] = "threshold",
	[WAKE_FORCE] = "force",
};

/* One measured configuration. */
struct run_cfg {
	int producers;
	int batch;
	enum bench_wake wake;
	bool attach; /* load and attach bench.bpf.c */
	bool match; /* the program's tgid filter lets our calls through */
	double rate; /* offered events/s over all producers; 0 = unpaced */
};

struct run_result {
	double secs;
	double calls; /* syscalls/s, all producers */
	double produced; /* events/s the program tried to emit */
	double consumed; /* events/s decoded by the workers */
	double lost; /* events/s whose reservation failed */
	double wakeups; /* worker loop iterations/s */
	double ns_per_call; /* per producer: 1e9 * producers / calls */
	bool exact; /* after draining, produced = consumed + lost */
};

/* Per-producer state, one cache line pair each (no shared hot counters). */
struct producer {
	uint64_t calls; /* written by the producer only */
	int cpu;
	double trig_rate; /* syscalls/s for this producer, 0 = unpaced */
	pthread_t thread;
	bool started;
} __attribute__((aligned(128)));

struct bench_env {
	/* options */
	double duration;
	double warmup;
	int *producers; /* producer counts to sweep */
	int nproducers;
	int *batches;
	int nbatches;
	bool wake[2];
	double rates[BENCH_MAX_RATES];
	int nrates; /* 0: automatic */
	uint64_t ring_bytes;
	uint64_t wakeup_bytes;
	int poll_ms;
	uint32_t shard_entries;
	bool verbose;

	/* pipeline */
	struct topology *topo;
	int *cpus; /* online CPUs, producers are pinned round-robin */
	int ncpus;
	struct rings *rings;
	struct workers *workers;
	uint64_t *produced_cpu;
	uint64_t *lost_cpu;

	/* results folded into the summary */
	double best_zero_loss; /* max consumed/s of a run with no loss */
	char best_zero_loss_cfg[64];
};

struct bench {
	const char *name;
	const char *desc;
	int (*run)(struct bench_env *env);
};

static struct producer producers[BENCH_MAX_PRODUCERS];
static volatile bool producers_stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/*
 * The producer loop: getpgid() as fast as possible, or paced to trig_rate
 * calls/s. When ahead of schedule it sleeps (timer slack is 1 ns) so that
 * a paced producer leaves its CPU to the worker, as a real workload would.
 */
static void *producer_main(void *arg)
{
	struct producer *p = arg;
	uint64_t calls = 0;
	cpu_set_t set;
	double start;

	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	start = now_s();
	while (!producers_stop) {
		if (p->trig_rate > 0 && (calls & 15) == 0) {
			double ahead = calls / p->trig_rate - (now_s() - start);

			if (ahead > 20e-6)
				sleep_s(ahead);
		}
		syscall(SYS_getpgid, 0);
		calls++;
		__atomic_store_n(&p->calls, calls, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int producers_start(struct bench_env *env, int n, double trig_rate)
{
	int i, err;

	producers_stop = false;
	for (i = 0; i < n; i++) {
		struct producer *p = &producers[i];

		memset(p, 0, sizeof(*p));
		p->cpu = env->cpus[i % env->ncpus];
		p->trig_rate = trig_rate / n;
		err = pthread_create(&p->thread, NULL, producer_main, p);
		if (err)
			return -err;
		p->started = true;
	}
	return 0;
}

static void producers_join(void)
{
	int i;

	producers_stop = true;
	for (i = 0; i < BENCH_MAX_PRODUCERS; i++) {
		if (!producers[i].started)
			continue;
		pthread_join(producers[i].thread, NULL);
		producers[i].started = false;
	}
}

struct snapshot {
	double t;
	uint64_t calls;
	uint64_t produced;
	uint64_t lost;
	uint64_t consumed;
	uint64_t decode_errors;
	uint64_t wakeups;
};

static int snapshot_take(struct bench_env *env, int nprod, struct snapshot *s)
{
	size_t i;
	int cpu, err;

	memset(s, 0, sizeof(*s));
	s->t = now_s();
	for (i = 0; i < (size_t)nprod; i++)
		s->calls += __atomic_load_n(&producers[i].calls, __ATOMIC_RELAXED);
	for (i = 0; i < env->workers->n; i++) {
		struct worker *w = env->workers->w[i];
		int src;

		for (src = 0; src < SOURCE_MAX; src++)
			s->consumed += __atomic_load_n(&w->consumed[src], __ATOMIC_RELAXED);
		s->decode_errors += __atomic_load_n(&w->decode_errors, __ATOMIC_RELAXED);
		s->wakeups += __atomic_load_n(&w->wakeups, __ATOMIC_RELAXED);
	}
	err = rings__read_stats(env->rings, env->produced_cpu, env->lost_cpu);
	if (err)
		return err;
	for (cpu = 0; cpu < env->rings->nr_cpus; cpu++) {
		s->produced += env->produced_cpu[cpu];
		s->lost += env->lost_cpu[cpu];
	}
	return 0;
}

/* Wait until the workers have consumed everything produced and not lost. */
static bool drain(struct bench_env *env)
{
	struct snapshot s;
	int waited;

	for (waited = 0; waited < BENCH_DRAIN_MS; waited++) {
		if (snapshot_take(env, 0, &s))
			return false;
		if (s.consumed + s.decode_errors == s.produced - s.lost)
			return s.decode_errors == 0;
		sleep_s(1e-3);
	}
	return false;
}

static struct bench_bpf *bench_open(struct bench_env *env, const struct run_cfg *rc, int *err)
{
	struct bench_bpf *skel;

	skel = bench_bpf__open();
	if (!skel) {
		*err = -errno;
		return NULL;
	}
	*err = rings__adopt(env->rings, skel->obj);
	if (*err)
		goto err_destroy;
	skel->rodata->bench_tgid = rc->match ? (uint32_t)getpid() : BENCH_TGID_NONE;
	skel->rodata->bench_syscall = SYS_getpgid;
	skel->rodata->batch = rc->batch;
	skel->rodata->force_wakeup = rc->wake == WAKE_FORCE;
	skel->rodata->wakeup_bytes = env->wakeup_bytes;
	*err = bench_bpf__load(skel);
	if (*err)
		goto err_destroy;
	*err = bench_bpf__attach(skel);
	if (*err)
		goto err_destroy;
	return skel;

err_destroy:
	bench_bpf__destroy(skel);
	return NULL;
}

/*
 * Measure one configuration: attach, start producers, warm up, count over
 * the duration, stop, detach, drain. Returns 0 or a negative errno.
 */
static int run_once(struct bench_env *env, const struct run_cfg *rc, struct run_result *res)
{
	struct bench_bpf *skel = NULL;
	struct snapshot s0, s1;
	double dt;
	int err;

	memset(res, 0, sizeof(*res));
	if (rc->attach) {
		skel = bench_open(env, rc, &err);
		if (!skel)
			return err;
	}
	err = producers_start(env, rc->producers, rc->batch ? rc->rate / rc->batch : 0);
	if (err)
		goto out;
	sleep_s(env->warmup);
	err = snapshot_take(env, rc->producers, &s0);
	if (err)
		goto out;
	sleep_s(env->duration);
	err = snapshot_take(env, rc->producers, &s1);
	if (err)
		goto out;
	producers_join();
	bench_bpf__destroy(skel);
	skel = NULL;

	dt = s1.t - s0.t;
	res->secs = dt;
	res->calls = (s1.calls - s0.calls) / dt;
	res->produced = (s1.produced - s0.produced) / dt;
	res->consumed = (s1.consumed - s0.consumed) / dt;
	res->lost = (s1.lost - s0.lost) / dt;
	res->wakeups = (s1.wakeups - s0.wakeups) / dt;
	res->ns_per_call = res->calls > 0 ? 1e9 * rc->producers / res->calls : 0;
	res->exact = drain(env);
out:
	producers_join();
	bench_bpf__destroy(skel);
	return err;
}

static void cfg_name(const struct run_cfg *rc, char *buf, size_t len)
{
	snprintf(buf, len, "p%d_b%d_%s", rc->producers, rc->batch, wake_names[rc->wake]);
}

static void note_zero_loss(struct bench_env *env, const struct run_cfg *rc,
			   const struct run_result *r)
{
	if (r->lost > 0 || !r->exact || r->consumed <= env->best_zero_loss)
		return;
	env->best_zero_loss = r->consumed;
	cfg_name(rc, env->best_zero_loss_cfg, sizeof(env->best_zero_loss_cfg));
	if (rc->rate > 0) {
		size_t n = strlen(env->best_zero_loss_cfg);

		snprintf(env->best_zero_loss_cfg + n, sizeof(env->best_zero_loss_cfg) - n,
			 "_rate%.0f", rc->rate);
	}
}

static void print_row(const char *label, const struct run_result *r)
{
	double offered = r->produced > 0 ? r->produced : 1;

	printf("%-24s %10.3f %10.3f %10.3f %7.2f%% %9.0f %8.1f %s\n", label, r->produced / 1e6,
	       r->consumed / 1e6, r->lost / 1e6, 100.0 * r->lost / offered, r->wakeups,
	       r->ns_per_call, r->exact ? "yes" : "NO");
}

static void print_header(void)
{
	printf("%-24s %10s %10s %10s %8s %9s %8s %s\n", "config", "prod M/s", "cons M/s",
	       "lost M/s", "lost", "wakeups/s", "ns/call", "exact");
}

/* sweep: producers x batch x wake-up mode, unpaced. */
static int bench_sweep(struct bench_env *env)
{
	struct run_result r;
	char name[64];
	int pi, bi, wi, err;

	printf("\n# sweep: unpaced producers, %d worker(s)\n", (int)env->workers->n);
	print_header();
	for (wi = 0; wi < 2; wi++) {
		if (!env->wake[wi])
			continue;
		for (pi = 0; pi < env->nproducers; pi++) {
			for (bi = 0; bi < env->nbatches; bi++) {
				struct run_cfg rc = {
					.producers = env->producers[pi],
					.batch = env->batches[bi],
					.wake = wi,
					.attach = true,
					.match = true,
				};

				err = run_once(env, &rc, &r);
				if (err)
					return err;
				cfg_name(&rc, name, sizeof(name));
				print_row(name, &r);
				printf("bench pipeline_consumed_%s %.0f events/s\n", name,
				       r.consumed);
				printf("bench pipeline_lost_%s %.0f events/s\n", name, r.lost);
				fflush(stdout);
				note_zero_loss(env, &rc, &r);
			}
		}
	}
	return 0;
}

/*
 * rate: every CPU produces batch-64 events at a total offered rate: 1/8,
 * 1/4, 1/2, 0.7 and 0.85 of the unpaced maximum (measured first), then
 * unpaced, unless --rates lists the rates.
 */
static int bench_rate(struct bench_env *env)
{
	struct run_cfg rc = {
		.producers = env->ncpus,
		.batch = BENCH_MAX_BATCH,
		.wake = WAKE_THRESHOLD,
		.attach = true,
		.match = true,
	};
	double rates[BENCH_MAX_RATES], max = 0;
	struct run_result r;
	int i, n = 0, err;
	char label[64];

	printf("\n# rate: %d producer(s), batch %d, threshold wake-up, offered events/s\n",
	       rc.producers, rc.batch);
	print_header();
	if (env->nrates) {
		memcpy(rates, env->rates, sizeof(double) * env->nrates);
		n = env->nrates;
	} else {
		err = run_once(env, &rc, &r);
		if (err)
			return err;
		static const double fractions[] = { 0.125, 0.25, 0.5, 0.7, 0.85 };

		max = r.produced;
		printf("# unpaced maximum offered: %.3f M events/s\n", max / 1e6);
		for (n = 0; n < (int)(sizeof(fractions) / sizeof(fractions[0])); n++)
			rates[n] = fractions[n] * max;
		rates[n++] = 0; /* unpaced again, last */
	}
	for (i = 0; i < n; i++) {
		rc.rate = rates[i];
		err = run_once(env, &rc, &r);
		if (err)
			return err;
		if (rc.rate > 0)
			snprintf(label, sizeof(label), "offered %.0fk", rc.rate / 1e3);
		else
			snprintf(label, sizeof(label), "offered unpaced");
		print_row(label, &r);
		printf("bench pipeline_rate_consumed_%.0f %.0f events/s\n", rc.rate, r.consumed);
		printf("bench pipeline_rate_lost_%.0f %.0f events/s\n", rc.rate, r.lost);
		fflush(stdout);
		note_zero_loss(env, &rc, &r);
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * overhead: one producer, ns per getpgid() with no program, with the
 * program attached but filtering the call out (another tgid), and emitting
 * one event per call; rounds interleaved, medians reported.
 */
static int bench_overhead(struct bench_env *env)
{
	static const char *const names[] = { "none", "filtered", "traced" };
	double ns[3][BENCH_OVERHEAD_ROUNDS], med[3];
	struct run_result r;
	int round, m, err;

	printf("\n# overhead: 1 producer on CPU %d, ns per getpgid(), median of %d rounds\n",
	       env->cpus[0], BENCH_OVERHEAD_ROUNDS);
	for (round = 0; round < BENCH_OVERHEAD_ROUNDS; round++) {
		for (m = 0; m < 3; m++) {
			struct run_cfg rc = {
				.producers = 1,
				.batch = 1,
				.wake = WAKE_THRESHOLD,
				.attach = m > 0,
				.match = m == 2,
			};

			err = run_once(env, &rc, &r);
			if (err)
				return err;
			ns[m][round] = r.ns_per_call;
			if (env->verbose)
				printf("round %d %-8s %8.1f ns/call, %.3f M events/s\n", round,
				       names[m], r.ns_per_call, r.produced / 1e6);
		}
	}
	for (m = 0; m < 3; m++) {
		qsort(ns[m], BENCH_OVERHEAD_ROUNDS, sizeof(double), cmp_double);
		med[m] = ns[m][BENCH_OVERHEAD_ROUNDS / 2];
		printf("%-10s %8.1f ns/call\n", names[m], med[m]);
	}
	printf("bench syscall_ns_untraced %.1f ns\n", med[0]);
	printf("bench syscall_ns_filtered %.1f ns\n", med[1]);
	printf("bench syscall_ns_traced %.1f ns\n", med[2]);
	printf("bench filter_cost_per_call %.1f ns\n", med[1] - med[0]);
	printf("bench ns_added_per_traced_event %.1f ns\n", med[2] - med[0]);
	fflush(stdout);
	return 0;
}

static const struct bench benches[] = {
	{ "sweep", "producers x batch x wake-up mode, unpaced", bench_sweep },
	{ "rate", "offered-rate sweep: zero-loss knee and loss curve", bench_rate },
	{ "overhead", "ns per syscall: untraced, filtered out, one event", bench_overhead },
};

#define NR_BENCHES (sizeof(benches) / sizeof(benches[0]))

static void usage(FILE *f, const char *prog)
{
	size_t i;

	fprintf(f,
		"Usage: %s [OPTIONS] [BENCH...]\n"
		"Measure the novamon ring pipeline (BPF rings -> worker -> shard). Needs root and\n"
		"kernel BTF; exits 77 without them. BENCH (default: all):\n",
		prog);
	for (i = 0; i < NR_BENCHES; i++)
		fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].desc);
	fprintf(f,
		"\n"
		"  -d, --duration SEC      measured seconds per run (default 1.0)\n"
		"  -w, --warmup SEC        seconds before measuring (default 0.25)\n"
		"  -p, --producers LIST    producer counts for sweep, e.g. 1-2 (default 1-<ncpus>)\n"
		"  -b, --batch LIST        events per syscall for sweep, <= %d (default 1,8,64)\n"
		"  -m, --wakeup MODE       threshold, force or both (default both)\n"
		"  -r, --rates LIST        offered events/s for rate, e.g. 1e6,2e6 (default: 1/8 to\n"
		"                          0.85 of the unpaced maximum, then unpaced)\n"
		"      --ring-bytes N      per-CPU ring size (default 8388608)\n"
		"      --wakeup-bytes N    threshold wake-up (default 262144)\n"
		"      --poll-ms N         worker poll timeout (default 10)\n"
		"  -v, --verbose           per-round figures\n"
		"  -h, --help              show this help\n"
		"\n"
		"Prints a table per benchmark and `bench <name> <value> <unit>` lines.\n",
		BENCH_MAX_BATCH);
}

static int parse_rates(const char *s, struct bench_env *env)
{
	char *end;

	env->nrates = 0;
	while (*s) {
		double v;

		if (env->nrates >= BENCH_MAX_RATES)
			return -E2BIG;
		errno = 0;
		v = strtod(s, &end);
		if (errno || end == s || !(v > 0) || !isfinite(v))
			return -EINVAL;
		env->rates[env->nrates++] = v;
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	return env->nrates ? 0 : -EINVAL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

static int parse_args(int argc, char **argv, struct bench_env *env, bool *selected)
{
	enum { OPT_RING_BYTES = 256, OPT_WAKEUP_BYTES, OPT_POLL_MS };
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "producers", required_argument, NULL, 'p' },
		{ "batch", required_argument, NULL, 'b' },
		{ "wakeup", required_argument, NULL, 'm' },
		{ "rates", required_argument, NULL, 'r' },
		{ "ring-bytes", required_argument, NULL, OPT_RING_BYTES },
		{ "wakeup-bytes", required_argument, NULL, OPT_WAKEUP_BYTES },
		{ "poll-ms", required_argument, NULL, OPT_POLL_MS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint64_t v;
	char *end;
	int c, i, n;
	size_t b;

	while ((c = getopt_long(argc, argv, "d:w:p:b:m:r:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
		case 'w':
			errno = 0;
			if (c == 'd')
				env->duration = strtod(optarg, &end);
			else
				env->warmup = strtod(optarg, &end);
			if (errno || *end || env->duration <= 0 || env->warmup < 0) {
				fprintf(stderr, "bench_pipeline: bad -%c '%s'\n", c, optarg);
				return -EINVAL;
			}
			break;
		case 'p':
		case 'b':
			free(c == 'p' ? env->producers : env->batches);
			n = topology_parse_cpulist(optarg,
						   c == 'p' ? &env->producers : &env->batches);
			if (n <= 0) {
				fprintf(stderr, "bench_pipeline: bad -%c '%s'\n", c, optarg);
				return -EINVAL;
			}
			for (i = 0; i < n; i++) {
				int x = c == 'p' ? env->producers[i] : env->batches[i];
				int max = c == 'p' ? BENCH_MAX_PRODUCERS : BENCH_MAX_BATCH;

				if (x < 1 || x > max) {
					fprintf(stderr, "bench_pipeline: -%c: %d not in 1..%d\n", c,
						x, max);
					return -EINVAL;
				}
			}
			*(c == 'p' ? &env->nproducers : &env->nbatches) = n;
			break;
		case 'm':
			env->wake[WAKE_THRESHOLD] = !strcmp(optarg, "threshold") ||
						    !strcmp(optarg, "both");
			env->wake[WAKE_FORCE] = !strcmp(optarg, "force") || !strcmp(optarg, "both");
			if (!env->wake[WAKE_THRESHOLD] && !env->wake[WAKE_FORCE]) {
				fprintf(stderr, "bench_pipeline: bad --wakeup '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			if (parse_rates(optarg, env)) {
				fprintf(stderr, "bench_pipeline: bad --rates '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_RING_BYTES:
			if (parse_u64(optarg, &v) || v < 4096 || (v & (v - 1))) {
				fprintf(stderr, "bench_pipeline: bad --ring-bytes '%s'\n", optarg);
				return -EINVAL;
			}
			env->ring_bytes = v;
			break;
		case OPT_WAKEUP_BYTES:
			if (parse_u64(optarg, &v)) {
				fprintf(stderr, "bench_pipeline: bad --wakeup-bytes '%s'\n",
					optarg);
				return -EINVAL;
			}
			env->wakeup_bytes = v;
			break;
		case OPT_POLL_MS:
			if (parse_u64(optarg, &v) || v < 1 || v > 10000) {
				fprintf(stderr, "bench_pipeline: bad --poll-ms '%s'\n", optarg);
				return -EINVAL;
			}
			env->poll_ms = (int)v;
			break;
		case 'v':
			env->verbose = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			exit(0);
		default:
			usage(stderr, argv[0]);
			return -EINVAL;
		}
	}
	for (i = optind; i < argc; i++) {
		for (b = 0; b < NR_BENCHES; b++)
			if (!strcmp(argv[i], benches[b].name))
				break;
		if (b == NR_BENCHES) {
			fprintf(stderr, "bench_pipeline: unknown benchmark '%s'\n", argv[i]);
			return -EINVAL;
		}
		selected[b] = true;
	}
	if (optind == argc)
		for (b = 0; b < NR_BENCHES; b++)
			selected[b] = true;
	return 0;
}

/* The online CPUs of topo, ascending by node then CPU. */
static int env_cpus(struct bench_env *env)
{
	size_t n, c;

	env->cpus = calloc(env->topo->max_cpu + 1, sizeof(int));
	if (!env->cpus)
		return -ENOMEM;
	for (n = 0; n < env->topo->nnodes; n++)
		for (c = 0; c < env->topo->nodes[n].ncpus; c++)
			env->cpus[env->ncpus++] = env->topo->nodes[n].cpus[c];
	return env->ncpus ? 0 : -ENODEV;
}

int main(int argc, char **argv)
{
	struct bench_env env = {
		.duration = 1.0,
		.warmup = 0.25,
		.wake = { true, true },
		.ring_bytes = 8 << 20,
		.wakeup_bytes = 256 << 10,
		.poll_ms = 10,
		.shard_entries = 16384,
	};
	bool selected[NR_BENCHES] = { false };
	int err, i;
	size_t b;

	err = parse_args(argc, argv, &env, selected);
	if (err)
		return 2;
	if (geteuid() != 0 || access("/sys/kernel/btf/vmlinux", R_OK)) {
		printf("bench pipeline skipped: needs root and kernel BTF (/sys/kernel/btf/vmlinux)\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);

	env.topo = topology__probe();
	if (!env.topo) {
		err = -errno;
		fprintf(stderr, "bench_pipeline: topology: %s\n", strerror(-err));
		goto cleanup;
	}
	err = env_cpus(&env);
	if (err)
		goto cleanup;
	if (!env.producers) {
		env.producers = calloc(env.ncpus, sizeof(int));
		if (!env.producers) {
			err = -ENOMEM;
			goto cleanup;
		}
		for (i = 0; i < env.ncpus; i++)
			env.producers[i] = i + 1;
		env.nproducers = env.ncpus;
	}
	if (!env.batches) {
		static const int defaults[] = { 1, 8, 64 };

		env.batches = malloc(sizeof(defaults));
		if (!env.batches) {
			err = -ENOMEM;
			goto cleanup;
		}
		memcpy(env.batches, defaults, sizeof(defaults));
		env.nbatches = 3;
	}
	env.rings = rings__new(env.topo, env.ring_bytes);
	if (!env.rings) {
		err = -errno;
		fprintf(stderr, "bench_pipeline: rings: %s\n", strerror(-err));
		goto cleanup;
	}
	env.produced_cpu = calloc(env.rings->nr_cpus, sizeof(uint64_t));
	env.lost_cpu = calloc(env.rings->nr_cpus, sizeof(uint64_t));
	if (!env.produced_cpu || !env.lost_cpu) {
		err = -ENOMEM;
		goto cleanup;
	}
	env.workers = workers__start(env.topo, env.rings, env.shard_entries, env.poll_ms);
	if (!env.workers) {
		err = -errno;
		fprintf(stderr, "bench_pipeline: workers: %s\n", strerror(-err));
		goto cleanup;
	}

	printf("# novamon ring pipeline: %d online CPU(s), %zu NUMA node(s), %zu worker(s)\n",
	       env.ncpus, env.topo->nnodes, env.workers->n);
	printf("# ring %" PRIu64 " B/CPU, wakeup_bytes %" PRIu64
	       ", poll %d ms, event %zu B + 8 B ring header\n",
	       env.ring_bytes, env.wakeup_bytes, env.poll_ms, sizeof(struct sched_delay_event));
	printf("# warmup %.2f s, duration %.2f s per run; producers pinned round-robin to CPUs,\n",
	       env.warmup, env.duration);
	printf("# the worker pinned to its node's CPUs: with %d CPU(s), producers and the worker\n"
	       "# %s; consumed/s is what one worker achieves while sharing them.\n",
	       env.ncpus, env.ncpus <= 2 ? "contend for the same cores" : "may share cores");

	for (b = 0; b < NR_BENCHES; b++) {
		if (!selected[b])
			continue;
		err = benches[b].run(&env);
		if (err) {
			fprintf(stderr, "bench_pipeline: %s: %s\n", benches[b].name,
				strerror(-err));
			goto cleanup;
		}
	}
	if (selected[0] || selected[1]) {
		printf("\n# summary\n");
		if (env.best_zero_loss > 0)
			printf("max consumed with zero loss, one worker: %.3f M events/s (%s)\n",
			       env.best_zero_loss / 1e6, env.best_zero_loss_cfg);
		else
			printf("no run was loss-free\n");
		printf("bench pipeline_max_zero_loss_events %.0f events/s\n", env.best_zero_loss);
	}

cleanup:
	producers_join();
	workers__stop(env.workers);
	rings__free(env.rings);
	topology__free(env.topo);
	free(env.produced_cpu);
	free(env.lost_cpu);
	free(env.cpus);
	free(env.producers);
	free(env.batches);
	return err ? 1 : 0;
}
