/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_simd: updates per second per core of the analytics SoA detectors, on
 * every ISA this CPU has, in one run (scalar, AVX2, AVX-512; see
 * analytics/simd.h). One update = one sample of one series; the daemon's
 * 1 Hz tick is one update per series per second, so updates/s on one core is
 * also the number of series one core keeps up with.
 *
 *   statdet          --series (1M) series, noise with 1 % NaN
 *   seasonal         the same, period 86400 (a day at 1 Hz), 96 buckets
 *   seasonal_detect  --detect-series (16K) series of period-60 sines and
 *                    noise, period detection on (max_period 128); timed
 *                    after 5 * max_period warm-up ticks, so the staggered
 *                    re-detection (amortised 4 * max_period multiply-adds
 *                    per update) is in the figure
 *
 * Each (detector, ISA): new, warm-up ticks (pages faulted in, caches and
 * branch predictors warm), then whole ticks until --duration seconds have
 * passed; the rate is updates / the thread's CPU time (the machine may be
 * shared: CPU time is what one core did; wall time is printed with -v).
 *
 * Prints `bench <det>_<isa> <v> updates/s`, `bench <det>_<isa>_vs_scalar <x>
 * ratio` and `bench <det>_series_per_core_1hz <v> series` (at simd_isa(), the
 * ISA the daemon would pick). Default run: about 10 s of CPU (15-40 s of
 * wall time on a shared 2-CPU machine).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity; meson passes -D_GNU_SOURCE */
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

#include "seasonal.h"
#include "simd.h"
#include "statdet.h"

#define BENCH_INPUTS 4 /* distinct ticks of input, cycled */

struct bench_opts {
	size_t series, detect_series;
	double duration;
	unsigned warmup;
	const char *only;
	bool verbose;
};

/* One detector kind: a named vtable. */
struct bench_det {
	const char *name;
	void *(*make)(size_t n, int isa);
	void (*update)(void *d, const float *x, float *score);
	void (*free)(void *d);
	size_t (*series)(const struct bench_opts *o);
	unsigned (*warmup)(const struct bench_opts *o);
	float *(*input)(size_t n);
};

static double bench_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t bench_rng = 0x853c49e6748fea9bull;

static double bench_unif(void)
{
	bench_rng ^= bench_rng << 13;
	bench_rng ^= bench_rng >> 7;
	bench_rng ^= bench_rng << 17;
	return (double)(bench_rng >> 11) / 9007199254740992.0;
}

static double bench_gauss(void)
{
	return sqrt(-2.0 * log(bench_unif() + 1e-300)) * cos(2.0 * M_PI * bench_unif());
}

/* BENCH_INPUTS ticks of n series: noise around per-series levels, 1 % NaN. */
static float *bench_input_noise(size_t n)
{
	float *x = malloc(BENCH_INPUTS * n * sizeof(*x));
	size_t i;

	if (!x)
		return NULL;
	for (i = 0; i < BENCH_INPUTS * n; i++)
		x[i] = bench_unif() < 0.01 ? NAN :
					     (float)(100.0 * (1 + i % 1000) + 5.0 * bench_gauss());
	return x;
}

/* Period-60 sines (every other series) and noise; seasonal_detect cycles
 * through 60 ticks of it so the periods are real. */
static float *bench_input_sine(size_t n)
{
	float *x = malloc(60 * n * sizeof(*x));
	size_t i, t;

	if (!x)
		return NULL;
	for (t = 0; t < 60; t++)
		for (i = 0; i < n; i++)
			x[t * n + i] = (float)(100.0 + bench_gauss() +
					       (i % 2 ? 0.0 : 10.0 * sin(2 * M_PI * t / 60.0 + i)));
	return x;
}

static void *bench_statdet_make(size_t n, int isa)
{
	struct statdet_params p = { .isa = isa };

	return statdet__new(n, &p);
}

static void bench_statdet_update(void *d, const float *x, float *score)
{
	statdet__update(d, x, score);
}

static void bench_statdet_free(void *d)
{
	statdet__free(d);
}

static void *bench_seasonal_make(size_t n, int isa)
{
	struct seasonal_params p = { .period = 86400, .isa = isa };

	return seasonal__new(n, &p);
}

static void *bench_detect_make(size_t n, int isa)
{
	struct seasonal_params p = { .period = 0, .isa = isa };

	return seasonal__new(n, &p);
}

static void bench_seasonal_update(void *s, const float *x, float *score)
{
	seasonal__update(s, x, score);
}

static void bench_seasonal_free(void *s)
{
	seasonal__free(s);
}

static size_t bench_series(const struct bench_opts *o)
{
	return o->series;
}

static size_t bench_detect_series(const struct bench_opts *o)
{
	return o->detect_series;
}

static unsigned bench_warmup(const struct bench_opts *o)
{
	return o->warmup;
}

static unsigned bench_detect_warmup(const struct bench_opts *o)
{
	return o->warmup + 5 * SEASONAL_DEFAULT_MAX_PERIOD;
}

static const struct bench_det bench_dets[] = {
	{ "statdet", bench_statdet_make, bench_statdet_update, bench_statdet_free, bench_series,
	  bench_warmup, bench_input_noise },
	{ "seasonal", bench_seasonal_make, bench_seasonal_update, bench_seasonal_free, bench_series,
	  bench_warmup, bench_input_noise },
	{ "seasonal_detect", bench_detect_make, bench_seasonal_update, bench_seasonal_free,
	  bench_detect_series, bench_detect_warmup, bench_input_sine },
};

/* Updates per CPU-second of one (detector, ISA), or a negative errno. */
static double bench_run(const struct bench_det *b, const struct bench_opts *o, int isa,
			const float *x, size_t ninputs)
{
	size_t n = b->series(o), ticks = 0;
	double c0, w0, cpu, wall;
	float *score = malloc(n * sizeof(*score));
	void *d = b->make(n, isa);
	unsigned k;

	if (!d || !score) {
		free(score);
		b->free(d);
		return -ENOMEM;
	}
	for (k = 0; k < b->warmup(o); k++)
		b->update(d, x + k % ninputs * n, score);
	c0 = bench_clock(CLOCK_THREAD_CPUTIME_ID);
	w0 = bench_clock(CLOCK_MONOTONIC);
	do {
		b->update(d, x + (k++ % ninputs) * n, score);
		ticks++;
		cpu = bench_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
	} while (cpu < o->duration || ticks < 3);
	wall = bench_clock(CLOCK_MONOTONIC) - w0;
	if (o->verbose)
		fprintf(stderr, "%s %s: %zu series x %zu ticks, %.3f s CPU, %.3f s wall\n", b->name,
			simd_isa_name(isa), n, ticks, cpu, wall);
	b->free(d);
	free(score);
	return (double)n * ticks / cpu;
}

static void bench_one(const struct bench_det *b, const struct bench_opts *o)
{
	size_t n = b->series(o);
	double rate[SIMD_AVX512 + 1] = { 0 };
	float *x = b->input(n);
	size_t ninputs = b->input == bench_input_sine ? 60 : BENCH_INPUTS;
	int isa;

	if (!x) {
		fprintf(stderr, "bench_simd: out of memory for %s input\n", b->name);
		exit(1);
	}
	for (isa = SIMD_SCALAR; isa <= (int)simd_isa_max(); isa++) {
		rate[isa] = bench_run(b, o, isa, x, ninputs);
		if (rate[isa] < 0) {
			fprintf(stderr, "bench_simd: %s %s: %s\n", b->name, simd_isa_name(isa),
				strerror((int)-rate[isa]));
			exit(1);
		}
		printf("bench %s_%s %.0f updates/s\n", b->name, simd_isa_name(isa), rate[isa]);
		fflush(stdout);
	}
	for (isa = SIMD_AVX2; isa <= (int)simd_isa_max(); isa++)
		printf("bench %s_%s_vs_scalar %.2f ratio\n", b->name, simd_isa_name(isa),
		       rate[isa] / rate[SIMD_SCALAR]);
	printf("bench %s_series_per_core_1hz %.0f series\n", b->name, rate[simd_isa()]);
	fflush(stdout);
	free(x);
}

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: bench_simd [options]\n"
		   "  -n, --series N         series for statdet and seasonal (1048576)\n"
		   "  -N, --detect-series N  series for seasonal_detect (16384)\n"
		   "  -d, --duration S       CPU seconds per detector and ISA (0.5)\n"
		   "  -w, --warmup T         warm-up ticks (3)\n"
		   "  -o, --only NAME        statdet, seasonal or seasonal_detect\n"
		   "  -c, --cpu N            pin to CPU N\n"
		   "  -v, --verbose          ticks and times on stderr\n"
		   "  -h, --help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "series", required_argument, NULL, 'n' },
		{ "detect-series", required_argument, NULL, 'N' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "only", required_argument, NULL, 'o' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = {
		.series = 1 << 20,
		.detect_series = 1 << 14,
		.duration = 0.5,
		.warmup = 3,
	};
	cpu_set_t set;
	size_t i;
	int c;

	while ((c = getopt_long(argc, argv, "n:N:d:w:o:c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.series = strtoull(optarg, NULL, 0);
			break;
		case 'N':
			o.detect_series = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'w':
			o.warmup = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			o.only = optarg;
			break;
		case 'c':
			CPU_ZERO(&set);
			CPU_SET(atoi(optarg), &set);
			if (sched_setaffinity(0, sizeof(set), &set)) {
				perror("bench_simd: sched_setaffinity");
				return 1;
			}
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			bench_usage(stdout);
			return 0;
		default:
			bench_usage(stderr);
			return 2;
		}
	}
	if (!o.series || !o.detect_series || !(o.duration > 0)) {
		bench_usage(stderr);
		return 2;
	}
	printf("# bench_simd: isa max %s, chosen %s\n", simd_isa_name(simd_isa_max()),
	       simd_isa_name(simd_isa()));
	for (i = 0; i < sizeof(bench_dets) / sizeof(bench_dets[0]); i++)
		if (!o.only || !strcmp(o.only, bench_dets[i].name))
			bench_one(&bench_dets[i], &o);
	return 0;
}
