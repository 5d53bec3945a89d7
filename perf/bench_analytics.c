/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_analytics: the anomaly detectors and the engine, in-process.
 *
 * Throughput (per CPU-second of the benchmark thread, so other load on the
 * machine does not count against it; one sample per series per second means
 * samples/s/core = series one core sustains at 1 Hz):
 *
 *   statdet_<isa>          samples/s/core, SoA over --slots series (1M)
 *   seasonal_<isa>         the same, period 86400 (a day at 1 Hz), 96 buckets
 *   seasonal_detect_<isa>  the same with the period detected per series
 *                          (64K series: detection keeps 5 * max_period floats each)
 *   iforest_update         samples/s/core of one forest, rebuilds included
 *   iforest_rebuild        seconds per rebuild (its "training")
 *   gru_update             samples/s/core of one GRU, training excluded
 *   gru_train              seconds per training (defaults: history 1024, 8 epochs)
 *   gru_series_1hz         series one core sustains at 1 Hz, update + training
 *                          amortised over retrain_every samples
 *   engine_cheap           engine__tick over --slots slots, statdet + seasonal +
 *                          the ensemble + bookkeeping: samples/s/core and ms per tick
 *   engine_full            every detector on every sample (16 series with warm
 *                          models, GRUs trained synchronously on the same core)
 *   engine_heavy_budget_1hz_at_N  iforest+GRU slot-updates per tick one core
 *                          affords at 1 Hz next to the cheap path over N slots
 *
 * Then the labelled benchmark (analytics/labelled.h): for each detector alone
 * (score >= 0.5), each detector by the ensemble's adaptive threshold, and the
 * ensemble, per anomaly kind and overall: precision, recall, F1, mean
 * detection delay (samples), true and false alarms.
 *
 * Prints `bench <name> <value> <unit>` lines. No root needed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getcpu(), CPU_SET() */
#endif
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "gru.h"
#include "iforest.h"
#include "labelled.h"
#include "rng.h"
#include "seasonal.h"
#include "simd.h"
#include "statdet.h"

struct bench_opts {
	size_t slots;
	double seconds; /* per throughput measure, at least */
	uint64_t seed;
	uint32_t replicas;
	bool labelled;
	bool throughput;
};

static double bench_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n values of noisy series around 100 (one tick of n series). */
static void bench_fill(float *x, size_t n, struct rng *r, uint64_t t)
{
	size_t i;

	for (i = 0; i < n; i++)
		x[i] = 100.0f + 8.0f * sinf((float)(t % 86400) * 7.27e-5f + (float)i) +
		       (float)(rng_uniform(r) - 0.5);
}

/* Precomputed ticks, so that input generation is not timed. */
#define BENCH_TICKS 8

static float *bench_ticks(size_t n)
{
	float *x = malloc(sizeof(*x) * n * BENCH_TICKS);
	struct rng r;
	int t;

	if (!x)
		return NULL;
	rng_seed(&r, 1);
	for (t = 0; t < BENCH_TICKS; t++)
		bench_fill(x + (size_t)t * n, n, &r, t);
	return x;
}

static void bench_print(const char *name, double value, const char *unit)
{
	printf("bench %s %.6g %s\n", name, value, unit);
	fflush(stdout);
}

static void bench_statdet(const struct bench_opts *o, const float *ticks, float *score)
{
	int isa;

	for (isa = SIMD_SCALAR; isa <= (int)simd_isa_max(); isa++) {
		struct statdet *d = statdet__new(o->slots, &(struct statdet_params){ .isa = isa });
		double c0, c;
		uint64_t t = 0;
		char name[64];

		if (!d) {
			fprintf(stderr, "statdet__new: %s\n", strerror(errno));
			return;
		}
		c0 = bench_cpu();
		do {
			statdet__update(d, ticks + (t % BENCH_TICKS) * o->slots, score);
			t++;
		} while ((c = bench_cpu() - c0) < o->seconds || t < 3);
		snprintf(name, sizeof(name), "statdet_%s", simd_isa_name(isa));
		bench_print(name, t * o->slots / c, "samples/s/core");
		statdet__free(d);
	}
}

static void bench_seasonal(const struct bench_opts *o, const float *ticks, float *score,
			   bool detect)
{
	size_t n = detect ? (o->slots < 65536 ? o->slots : 65536) : o->slots;
	int isa;

	for (isa = SIMD_SCALAR; isa <= (int)simd_isa_max(); isa++) {
		struct seasonal_params p = { .period = detect ? 0 : 86400, .isa = isa };
		struct seasonal *s = seasonal__new(n, &p);
		double c0, c;
		uint64_t t = 0;
		char name[64];

		if (!s) {
			fprintf(stderr, "seasonal__new: %s\n", strerror(errno));
			return;
		}
		c0 = bench_cpu();
		do {
			seasonal__update(s, ticks + (t % BENCH_TICKS) * o->slots, score);
			t++;
		} while ((c = bench_cpu() - c0) < o->seconds || t < 3);
		snprintf(name, sizeof(name), "seasonal%s_%s", detect ? "_detect" : "",
			 simd_isa_name(isa));
		bench_print(name, t * n / c, "samples/s/core");
		seasonal__free(s);
	}
}

static void bench_iforest(const struct bench_opts *o)
{
	struct iforest *f = iforest__new(NULL, o->seed);
	double c0, c, worst = 0.0, rebuild_s = 0.0;
	uint64_t t = 0, rebuilds = 0;
	struct rng r;

	if (!f)
		return;
	rng_seed(&r, 2);
	/* a rebuild is the slowest update of its stretch: time each update */
	c0 = bench_cpu();
	do {
		double u0 = bench_cpu(), du;

		iforest__update(f, 100.0f + (float)rng_normal(&r));
		du = bench_cpu() - u0;
		if (du > 20e-6) { /* far above an update's few us: a rebuild */
			rebuilds++;
			rebuild_s += du;
		}
		worst = du > worst ? du : worst;
		t++;
	} while ((c = bench_cpu() - c0) < o->seconds || t < 2000);
	bench_print("iforest_update", t / c, "samples/s/core");
	if (rebuilds)
		bench_print("iforest_rebuild", rebuild_s / rebuilds, "s");
	bench_print("iforest_series_1hz", t / c, "series/core");
	iforest__free(f);
}

static void bench_gru(const struct bench_opts *o)
{
	struct gru_params p = { 0 };
	struct gru *g = gru__new(&p, o->seed);
	double c0, c, train = 0.0, update;
	uint64_t t = 0, trains = 0;
	struct rng r;

	if (!g)
		return;
	rng_seed(&r, 3);
	/* learn a model first, then time updates alone */
	while (t < 1024 || !trains) {
		gru__update(g, 100.0f + 8.0f * sinf(t * 0.13f) + (float)rng_normal(&r), NULL);
		t++;
		if (gru__training_due(g)) {
			double t0 = bench_cpu();

			if (!gru__train(g)) {
				train += bench_cpu() - t0;
				trains++;
			}
		}
	}
	t = 0;
	c0 = bench_cpu();
	do {
		float pred;

		gru__update(g, 100.0f + 8.0f * sinf(t * 0.13f) + (float)rng_normal(&r), &pred);
		t++;
	} while ((c = bench_cpu() - c0) < o->seconds || t < 1000);
	update = c / t;
	bench_print("gru_update", 1.0 / update, "samples/s/core");
	/* one more training, timed */
	c0 = bench_cpu();
	if (!gru__train(g)) {
		train += bench_cpu() - c0;
		trains++;
	}
	bench_print("gru_train", train / trains, "s");
	/* default retrain_every = history / 2 = 512 samples */
	bench_print("gru_series_1hz", 1.0 / (update + train / trains / 512.0), "series/core");
	gru__free(g);
}

/*
 * engine_cheap: --slots slots, statdet + seasonal + ensemble. Returns the
 * CPU seconds per tick (0 on failure).
 */
static double bench_engine_cheap(const struct bench_opts *o, const float *ticks)
{
	struct engine_verdict *v = malloc(sizeof(*v) * o->slots);
	struct engine_params p;
	struct engine *e = NULL;
	double c0, c = 0.0;
	uint64_t t = 0;
	size_t i;

	engine_params_init(&p);
	p.slots = o->slots;
	p.detectors = (1u << DETECTOR_STAT) | (1u << DETECTOR_SEASONAL);
	p.seasonal.period = 86400;
	if (v)
		e = engine__new(&p);
	if (!e) {
		fprintf(stderr, "engine__new: %s\n", strerror(errno));
		free(v);
		return 0.0;
	}
	for (i = 0; i < o->slots; i++)
		engine__add(e);
	engine__tick(e, 0, ticks, v); /* untimed: first touch of every page */
	c0 = bench_cpu();
	do {
		t++;
		engine__tick(e, 1000 * (int64_t)t, ticks + (t % BENCH_TICKS) * o->slots, v);
	} while ((c = bench_cpu() - c0) < o->seconds || t < 3);
	bench_print("engine_cheap", t * o->slots / c, "samples/s/core");
	bench_print("engine_cheap_tick", 1e3 * c / t, "ms");
	bench_print("engine_cheap_series_1hz", t * o->slots / c, "series/core");
	engine__free(e);
	free(v);
	return c / t;
}

/*
 * engine_full: every detector on every sample of 16 series (budget: all),
 * GRUs trained synchronously on this core; timed after 3000 ticks, when the
 * models are built and retrain on their schedule. The per-sample cost of the
 * heavy path then gives the iforest+GRU budget per tick one core affords next
 * to the cheap path over --slots slots (engine_heavy_budget_1hz).
 */
static void bench_engine_full(const struct bench_opts *o, double cheap_tick)
{
	enum { N = 16, WARM = 3000 };
	struct engine_verdict v[N];
	struct engine_params p;
	struct engine *e;
	float x[N];
	struct rng r;
	double c0, c, per;
	uint64_t t = 0, t0;
	size_t i;

	engine_params_init(&p);
	p.slots = N;
	p.sync_train = true;
	p.seed = o->seed;
	e = engine__new(&p);
	if (!e)
		return;
	for (i = 0; i < N; i++)
		engine__add(e);
	rng_seed(&r, 4);
	for (; t < WARM; t++) {
		bench_fill(x, N, &r, t);
		engine__tick(e, 1000 * (int64_t)t, x, v);
	}
	t0 = t;
	c0 = bench_cpu();
	do {
		bench_fill(x, N, &r, t);
		engine__tick(e, 1000 * (int64_t)t, x, v);
		t++;
	} while ((c = bench_cpu() - c0) < 2 * o->seconds || t - t0 < 1100);
	per = c / ((t - t0) * N);
	bench_print("engine_full", 1.0 / per, "samples/s/core");
	bench_print("engine_full_series_1hz", 1.0 / per, "series/core");
	if (cheap_tick > 0.0 && cheap_tick < 1.0) {
		char name[64];

		snprintf(name, sizeof(name), "engine_heavy_budget_1hz_at_%zu", o->slots);
		bench_print(name, (1.0 - cheap_tick) / per, "slot-updates/tick");
	}
	engine__free(e);
}

static void bench_labelled(const struct bench_opts *o)
{
	struct labelled_params lp = { .seed = o->seed, .replicas = o->replicas };
	struct labelled_report *r = calloc(1, sizeof(*r));
	struct labelled_set *set = labelled_set__new(&lp);
	char name[128];
	int src, k;

	if (!r || !set || labelled_run(set, NULL, 0, r)) {
		fprintf(stderr, "labelled benchmark: %s\n", strerror(errno));
		goto out;
	}
	bench_print("labelled_samples", (double)r->samples, "samples");
	bench_print("labelled_seconds", r->seconds, "s");
	printf("# labelled benchmark, seed %llu: %zu series x %u samples, grace %u\n",
	       (unsigned long long)o->seed, set->n, set->p.length, set->p.grace);
	printf("# %-18s %-17s %6s %6s %6s %8s %5s %5s %5s\n", "source", "kind", "P", "R", "F1",
	       "delay", "win", "TP", "FP");
	for (src = 0; src < LABELLED_SOURCES; src++) {
		for (k = 0; k <= LABELLED_KINDS; k++) {
			const struct labelled_score *s = k < LABELLED_KINDS ? &r->src[src].kind[k] :
									      &r->src[src].all;
			const char *kind = k < LABELLED_KINDS ? labelled_kind_name(k) : "all";
			char src_name[32];
			size_t c;

			printf("# %-18s %-17s %6.3f %6.3f %6.3f %8.1f %5llu %5llu %5llu\n",
			       labelled_source_name(src), kind, s->precision, s->recall, s->f1,
			       s->mean_delay, (unsigned long long)s->windows,
			       (unsigned long long)s->true_alarms,
			       (unsigned long long)s->false_alarms);
			/* metric-safe names: stat/adaptive -> stat_adaptive */
			snprintf(src_name, sizeof(src_name), "%s", labelled_source_name(src));
			for (c = 0; src_name[c]; c++)
				if (src_name[c] == '/')
					src_name[c] = '_';
			if (k == LABELLED_NONE) {
				snprintf(name, sizeof(name), "labelled_%s_clean_false_alarms",
					 src_name);
				bench_print(name, (double)s->false_alarms, "alarms");
				continue;
			}
			snprintf(name, sizeof(name), "labelled_%s_%s_precision", src_name, kind);
			bench_print(name, s->precision, "ratio");
			snprintf(name, sizeof(name), "labelled_%s_%s_recall", src_name, kind);
			bench_print(name, s->recall, "ratio");
			snprintf(name, sizeof(name), "labelled_%s_%s_f1", src_name, kind);
			bench_print(name, s->f1, "ratio");
			snprintf(name, sizeof(name), "labelled_%s_%s_delay", src_name, kind);
			bench_print(name, s->mean_delay, "samples");
		}
	}
out:
	labelled_set__free(set);
	free(r);
}

static void bench_usage(FILE *f)
{
	fprintf(f, "Usage: bench_analytics [OPTIONS]\n"
		   "  -n, --slots N       series for the SoA detectors and the engine (1000000)\n"
		   "  -d, --seconds S     CPU seconds per throughput measure, at least (1)\n"
		   "  -s, --seed N        labelled benchmark seed (1)\n"
		   "  -r, --replicas N    labelled series per kind and combination (1)\n"
		   "      --no-labelled   throughput only\n"
		   "      --labelled-only the labelled benchmark only\n"
		   "  -h, --help\n");
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "slots", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "no-labelled", no_argument, NULL, 'L' },
		{ "labelled-only", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = {
		.slots = 1000000,
		.seconds = 1.0,
		.seed = 1,
		.replicas = 1,
		.labelled = true,
		.throughput = true,
	};
	float *ticks = NULL, *score = NULL;
	cpu_set_t cpus;
	int c;

	while ((c = getopt_long(argc, argv, "n:d:s:r:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.slots = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			o.seconds = atof(optarg);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			o.replicas = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'L':
			o.labelled = false;
			break;
		case 'T':
			o.throughput = false;
			break;
		case 'h':
			bench_usage(stdout);
			return 0;
		default:
			bench_usage(stderr);
			return 2;
		}
	}
	if (!o.slots || o.seconds <= 0.0 || !o.replicas) {
		bench_usage(stderr);
		return 2;
	}
	/* one core: pin to the CPU we started on */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	printf("# bench_analytics: %zu slots, isa max %s, pinned to CPU %d\n", o.slots,
	       simd_isa_name(simd_isa_max()), sched_getcpu());
	if (o.throughput) {
		ticks = bench_ticks(o.slots);
		score = malloc(sizeof(*score) * o.slots);
		if (!ticks || !score) {
			fprintf(stderr, "out of memory\n");
			return 1;
		}
		bench_statdet(&o, ticks, score);
		bench_seasonal(&o, ticks, score, false);
		bench_seasonal(&o, ticks, score, true);
		bench_iforest(&o);
		bench_gru(&o);
		bench_engine_full(&o, bench_engine_cheap(&o, ticks));
		free(ticks);
		free(score);
	}
	if (o.labelled)
		bench_labelled(&o);
	return 0;
}
