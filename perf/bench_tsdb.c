/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_tsdb: the store core in-process, on one core.
 *
 *   append_1k    samples/s appending 1000 series x 1 s samples (an hour)
 *   append_100k  samples/s appending 100,000 series x 60 s of samples
 *   append_ref_* the same through series references (tsdb__ref() once per
 *                series, then tsdb__append_ref()), as Prometheus's scrape
 *                loop appends with its series cache; the ref lookups of the
 *                first second are timed too
 *   *_per_core   the same figure per CPU-second of the benchmark thread, so
 *                that other load on the machine does not count against it
 *   bytes_*      compressed bytes per raw sample for host-metric shapes:
 *                counters (integral, noisy rate), gauges with noise (two
 *                decimals), constants, and the mix of the three
 *   bytes_realistic  the same over what novamon stores about itself (its own
 *                /metrics, see bench_realistic()): exact 1 s ticks, counters
 *                flat for long stretches or rising by small integers,
 *                histogram buckets, rarely changing gauges
 *   mem_series   heap bytes per active series (100K series, labels + head)
 *   select_1h    latency of selecting 1 h at 1 s over 1,000 series
 *
 * Prints `bench <name> <value> <unit>` lines. No options but --help; no root.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsdb/tsdb.h"

#define T0 1700000000000LL

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bench_series {
	char inst[32], dev[32];
	struct tsdb_label l[4];
	double acc, rate;
};

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct bench_series *bench_series_new(size_t n, const char *name)
{
	struct bench_series *s = calloc(n, sizeof(*s));
	size_t i;

	if (!s)
		exit(1);
	for (i = 0; i < n; i++) {
		snprintf(s[i].inst, sizeof(s[i].inst), "vm-%zu", i / 16);
		snprintf(s[i].dev, sizeof(s[i].dev), "vd%zu", i % 16);
		s[i].l[0] = (struct tsdb_label){ "__name__", name };
		s[i].l[1] = (struct tsdb_label){ "vm", s[i].inst };
		s[i].l[2] = (struct tsdb_label){ "device", s[i].dev };
		s[i].l[3] = (struct tsdb_label){ "job", "novamon" };
		s[i].acc = 1e6 * (double)(i % 97);
		s[i].rate = 100 + (double)(i % 1000) * 37;
	}
	return s;
}

/* Samples per wall second; *per_core gets samples per CPU second. */
static double bench_append(size_t nseries, int seconds, bool by_ref, double *per_core,
			   struct tsdb **keep)
{
	struct tsdb *db = tsdb__open(NULL, NULL, 0);
	struct bench_series *s = bench_series_new(nseries, "novamon_bench_total");
	uint32_t *ref = calloc(nseries, sizeof(*ref));
	double t0, c0, dt;
	int64_t r;
	size_t i;
	int k;

	if (!db || !s || !ref)
		exit(2);
	t0 = now_s();
	c0 = cpu_s();
	for (k = 0; k < seconds; k++) {
		for (i = 0; i < nseries; i++) {
			s[i].acc += s[i].rate;
			if (!by_ref) {
				if (tsdb__append(db, s[i].l, 4, T0 + k * 1000LL, s[i].acc))
					exit(2);
				continue;
			}
			if (!k) {
				r = tsdb__ref(db, s[i].l, 4);
				if (r < 0)
					exit(2);
				ref[i] = (uint32_t)r;
			}
			if (tsdb__append_ref(db, ref[i], T0 + k * 1000LL, s[i].acc))
				exit(2);
		}
	}
	*per_core = (double)nseries * seconds / (cpu_s() - c0);
	dt = now_s() - t0;
	free(ref);
	free(s);
	if (keep)
		*keep = db;
	else
		tsdb__close(db);
	return (double)nseries * seconds / dt;
}

enum bench_shape { SHAPE_COUNTER, SHAPE_GAUGE, SHAPE_CONST };

static double bench_value(enum bench_shape shape, struct bench_series *s, int k)
{
	switch (shape) {
	case SHAPE_COUNTER:
		/* bytes/packets: integral, rate with +-20 % noise */
		s->acc += floor(s->rate * (0.8 + 0.4 * rand() / RAND_MAX));
		return s->acc;
	case SHAPE_GAUGE:
		/* CPU percent-like: slow wave plus noise, two decimals */
		return round((50 + 20 * sin(k / 300.0) + 5.0 * rand() / RAND_MAX) * 100) / 100;
	case SHAPE_CONST:
		return 4.0 * 1024 * 1024 * 1024;
	}
	return 0;
}

static double bench_bytes(const enum bench_shape *shapes, size_t nshapes)
{
	struct tsdb *db = tsdb__open(NULL, NULL, 0);
	struct bench_series *s = bench_series_new(300, "novamon_bench");
	struct tsdb_stats st;
	size_t i;
	int k;

	srand(7);
	for (k = 0; k < 7200; k++) {
		for (i = 0; i < 300; i++) {
			double v = bench_value(shapes[i % nshapes], &s[i], k);

			/* +-3 ms of scheduling jitter on the tick */
			if (tsdb__append(db, s[i].l, 4, T0 + k * 1000LL + rand() % 7 - 3, v))
				exit(3);
		}
	}
	tsdb__stats(db, &st);
	tsdb__close(db);
	free(s);
	return (double)st.chunk_bytes / (double)st.samples;
}

/*
 * A model of novamon's own /metrics scraped by its 1 Hz tick for two hours.
 * Per "component" (16 of them, e.g. one per capture worker or route):
 *   - 4 error/drop counters: flat, +1..3 with probability 1 %
 *   - 3 activity counters: + 0..4 every second (packets handled, requests)
 *   - 1 tick counter: exactly +1 per second
 *   - a latency histogram: 12 cumulative _bucket series, _count (integers,
 *     flat unless an observation lands, ~0.3 observations/s) and _sum (a
 *     float of seconds, changes with each observation)
 *   - 3 gauges: RSS in bytes (page multiples, changes with probability 3 %),
 *     threads (constant), up (1)
 *   - 1 gauge with two decimals changing every second (a CPU percentage)
 *   - 1 gauge stepping every 15 minutes (a config generation)
 * That is 27 series per component, 432 in all.
 */
#define REAL_COMPONENTS 16
#define REAL_PER_COMP 27
#define REAL_BUCKETS 12

static double bench_realistic(void)
{
	static const double le[REAL_BUCKETS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
						 0.01,	 0.025,	  0.05,	  0.1,	 0.25,	 1e300 };
	enum { NS = REAL_COMPONENTS * REAL_PER_COMP };
	struct tsdb *db = tsdb__open(NULL, NULL, 0);
	struct bench_series *s = bench_series_new(NS, "novamon_real");
	static char names[NS][48];
	double v[NS];
	struct tsdb_stats st;
	size_t c, i, j;
	int k;

	srand(11);
	memset(v, 0, sizeof(v));
	for (c = 0; c < REAL_COMPONENTS; c++) {
		double *cv = v + c * REAL_PER_COMP;

		for (j = 0; j < REAL_PER_COMP; j++)
			snprintf(names[c * REAL_PER_COMP + j], sizeof(names[0]), "novamon_real_%zu",
				 j);
		cv[0] = rand() % 5;
		cv[4] = 1e6 + rand() % 100000;
		cv[7] = 1000 + rand() % 5000;
		cv[22] = 4096.0 * (5000 + rand() % 20000);
		cv[23] = 4 + rand() % 8;
		cv[24] = 1;
	}
	for (i = 0; i < NS; i++)
		s[i].l[0].value = names[i];
	for (k = 0; k < 7200; k++) {
		for (c = 0; c < REAL_COMPONENTS; c++) {
			double *cv = v + c * REAL_PER_COMP;

			for (j = 0; j < 4; j++) {
				if (rand() % 100 == 0)
					cv[j] += 1 + rand() % 3;
			}
			for (j = 4; j < 7; j++)
				cv[j] += rand() % 5;
			cv[7] += 1;
			/* histogram: buckets 8..19, _count 20, _sum 21 */
			while (rand() % 10 < 3) {
				double obs = 0.00005 * exp((rand() % 1000) / 100.0);

				for (j = 0; j < REAL_BUCKETS; j++) {
					if (obs <= le[j])
						cv[8 + j] += 1;
				}
				cv[20] += 1;
				cv[21] += obs;
			}
			if (rand() % 100 < 3)
				cv[22] += 4096.0 * (rand() % 64 - 32);
			cv[25] = round((2 + 1.5 * sin(k / 600.0) + (double)rand() / RAND_MAX) *
				       100) /
				 100;
			cv[26] = (double)(k / 900); /* e.g. a config generation */
		}
		for (i = 0; i < NS; i++) {
			if (tsdb__append(db, s[i].l, 4, T0 + k * 1000LL, v[i]))
				exit(6);
		}
	}
	tsdb__stats(db, &st);
	tsdb__close(db);
	free(s);
	return (double)st.chunk_bytes / (double)st.samples;
}

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"Usage: %s [--help]\n"
		"The store core in-process on one core: append throughput (labels and series\n"
		"references, 1k and 100k series), select latency of 1 h at 1 s over 1,000\n"
		"series, compressed bytes per sample per data shape and on realistic data, heap\n"
		"bytes per active series. Prints `bench <name> <value> <unit>` lines.\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const enum bench_shape counter[] = { SHAPE_COUNTER }, gauge[] = { SHAPE_GAUGE },
				      constant[] = { SHAPE_CONST },
				      mix[] = { SHAPE_COUNTER, SHAPE_COUNTER, SHAPE_GAUGE,
						SHAPE_CONST };
	struct tsdb_matcher m = { TSDB_MATCH_EQ, "__name__", "novamon_bench_total" };
	struct tsdb_result *r;
	struct tsdb_stats st;
	struct tsdb *db;
	double rate, core, t0, best = 1e9, dt;
	size_t n, i;
	int k;

	if (argc > 1) {
		bool help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");

		usage(help ? stdout : stderr, argv[0]);
		return help ? 0 : 2;
	}
	rate = bench_append(1000, 3600, false, &core, &db);
	printf("bench tsdb_append_1k_series %.0f samples/s\n", rate);
	printf("bench tsdb_append_1k_series_per_core %.0f samples/s\n", core);
	for (k = 0; k < 5; k++) {
		t0 = now_s();
		if (tsdb__select(db, &m, 1, T0, T0 + 3599000, &r))
			return 4;
		dt = now_s() - t0;
		for (i = 0, n = 0; i < r->n; i++)
			n += r->series[i].n;
		if (n != 3600000)
			return 5;
		tsdb_result__free(r);
		if (dt < best)
			best = dt;
	}
	printf("bench tsdb_select_1h_1k_series %.2f ms\n", best * 1e3);
	tsdb__close(db);

	rate = bench_append(1000, 3600, true, &core, NULL);
	printf("bench tsdb_append_ref_1k_series %.0f samples/s\n", rate);
	printf("bench tsdb_append_ref_1k_series_per_core %.0f samples/s\n", core);
	rate = bench_append(100000, 60, true, &core, NULL);
	printf("bench tsdb_append_ref_100k_series %.0f samples/s\n", rate);
	printf("bench tsdb_append_ref_100k_series_per_core %.0f samples/s\n", core);

	rate = bench_append(100000, 60, false, &core, &db);
	printf("bench tsdb_append_100k_series %.0f samples/s\n", rate);
	printf("bench tsdb_append_100k_series_per_core %.0f samples/s\n", core);
	tsdb__stats(db, &st);
	printf("bench tsdb_mem_per_series %.0f bytes\n", (double)st.memory_bytes / st.series);
	tsdb__close(db);

	printf("bench tsdb_bytes_counter %.3f bytes/sample\n", bench_bytes(counter, 1));
	printf("bench tsdb_bytes_gauge %.3f bytes/sample\n", bench_bytes(gauge, 1));
	printf("bench tsdb_bytes_const %.3f bytes/sample\n", bench_bytes(constant, 1));
	printf("bench tsdb_bytes_mix %.3f bytes/sample\n", bench_bytes(mix, 4));
	printf("bench tsdb_bytes_realistic %.3f bytes/sample\n", bench_realistic());
	return 0;
}
