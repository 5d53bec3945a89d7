/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gru.h"
#include "rng.h"

TestSuite(gru);

#define GRU_TEST_PERIOD 24.0
#define GRU_TEST_AMP 2.0

static float gru_test_sine(size_t i)
{
	return (float)(5.0 + GRU_TEST_AMP * sin(2.0 * M_PI * (double)i / GRU_TEST_PERIOD));
}

Test(gru, bad_params)
{
	struct gru_params p = { .window = 1 };

	errno = 0;
	cr_assert_null(gru__new(&p, 1));
	cr_assert_eq(errno, EINVAL);
	p = (struct gru_params){ .window = 64, .history = 70 };
	cr_assert_null(gru__new(&p, 1));
	p = (struct gru_params){ .lr = -1.0f };
	cr_assert_null(gru__new(&p, 1));
	gru__free(NULL);
}

/* Before the first training: score 0, no forecast; gru__train refuses a
 * history shorter than window + 16; due once warm-up is reached. */
Test(gru, warmup)
{
	struct gru_params p = { .window = 16, .warmup = 100, .retrain_every = 50 };
	struct gru *g = gru__new(&p, 1);
	float pred = 0.0f;
	size_t i;

	cr_assert_not_null(g);
	for (i = 0; i < 20; i++)
		cr_assert_eq(gru__update(g, gru_test_sine(i), &pred), 0.0f);
	cr_assert(isnan(pred));
	cr_assert_eq(gru__train(g), -ENODATA);
	for (; i < 99; i++)
		cr_assert_eq(gru__update(g, gru_test_sine(i), NULL), 0.0f);
	cr_assert_not(gru__training_due(g));
	gru__update(g, gru_test_sine(i++), NULL);
	cr_assert(gru__training_due(g));
	cr_assert_eq(gru__train(g), 0);
	cr_assert_not(gru__training_due(g));
	for (size_t k = 0; k < 49; k++)
		gru__update(g, gru_test_sine(i++), &pred);
	cr_assert_not(isnan(pred));
	cr_assert_not(gru__training_due(g));
	gru__update(g, gru_test_sine(i++), NULL);
	cr_assert(gru__training_due(g));
	gru__free(g);
}

/* Trained (sync) on 1024 samples of a sine of period 24: the forecast RMSE
 * over the next 500 samples is below 5% of the amplitude and below a third
 * of the naive last-value forecast's (18% of the amplitude); clean samples
 * score < 0.5, a spike of one amplitude > 0.8. */
Test(gru, sine_forecast_and_spike)
{
	struct gru_params p = { .history = 1024, .warmup = 1024, .sync_train = true };
	struct gru *g = gru__new(&p, 1);
	double se = 0.0, se_naive = 0.0;
	float pred, s, x;
	size_t i, n = 0;

	cr_assert_not_null(g);
	for (i = 0; i < 1024; i++)
		cr_assert_eq(gru__update(g, gru_test_sine(i), NULL), 0.0f);
	for (; i < 1524; i++) {
		x = gru_test_sine(i);
		s = gru__update(g, x, &pred);
		cr_assert_lt(s, 0.5f, "clean sample %zu scored %g", i, s);
		se += (x - pred) * (x - pred);
		se_naive += (x - gru_test_sine(i - 1)) * (x - gru_test_sine(i - 1));
		n++;
	}
	cr_assert_lt(sqrt(se / n), 0.05 * GRU_TEST_AMP, "rmse %g", sqrt(se / n));
	cr_assert_lt(se, se_naive / 9.0, "rmse %g, naive %g", sqrt(se / n), sqrt(se_naive / n));
	s = gru__update(g, gru_test_sine(i) + (float)GRU_TEST_AMP, &pred);
	cr_assert_gt(s, 0.8f, "spike scored %g", s);
	gru__free(g);
}

/* Synchronous training is deterministic per seed, and NaN is no sample. */
Test(gru, deterministic_and_nan)
{
	struct gru_params p = {
		.history = 256, .warmup = 128, .retrain_every = 128, .epochs = 2, .sync_train = true
	};
	struct gru *ga = gru__new(&p, 9), *gb = gru__new(&p, 9);
	float sa, sb, pa, pb;
	struct rng r;
	size_t i;
	float x;

	cr_assert(ga && gb);
	rng_seed(&r, 4);
	for (i = 0; i < 600; i++) {
		x = gru_test_sine(i) + 0.1f * (float)rng_normal(&r);
		if (i % 5 == 2) {
			cr_assert_eq(gru__update(gb, NAN, &pb), 0.0f);
			cr_assert(isnan(pb));
		}
		sa = gru__update(ga, x, &pa);
		sb = gru__update(gb, x, &pb);
		cr_assert_eq(sa, sb, "sample %zu: score %g != %g", i, sa, sb);
		cr_assert(pa == pb || (isnan(pa) && isnan(pb)), "sample %zu: %g != %g", i, pa, pb);
		cr_assert(sa >= 0.0f && sa <= 1.0f);
	}
	gru__free(ga);
	gru__free(gb);
}

struct gru_test_trainer {
	struct gru *g;
	atomic_bool stop;
	atomic_int trainings;
	int err;
};

static void *gru_test_train_loop(void *arg)
{
	struct gru_test_trainer *t = arg;
	int err;

	while (!atomic_load(&t->stop)) {
		err = gru__train(t->g);
		if (err == -ENODATA)
			continue;
		if (err) {
			t->err = err;
			break;
		}
		atomic_fetch_add(&t->trainings, 1);
	}
	return NULL;
}

/* gru__train on a thread while gru__update loops on this one, until three
 * trainings have swapped their weights in: scores stay in [0, 1] and the
 * last model forecasts well (the data-race part is for ASan/TSan). */
Test(gru, train_concurrently_with_update)
{
	struct gru_params p = { .history = 512, .window = 16, .epochs = 1 };
	struct gru_test_trainer t = { 0 };
	float pred = NAN, s;
	pthread_t th;
	struct rng r;
	size_t i;

	t.g = gru__new(&p, 2);
	cr_assert_not_null(t.g);
	rng_seed(&r, 5);
	cr_assert_eq(pthread_create(&th, NULL, gru_test_train_loop, &t), 0);
	for (i = 0; i < 5000 || atomic_load(&t.trainings) < 3; i++) {
		s = gru__update(t.g, gru_test_sine(i) + 0.05f * (float)rng_normal(&r), &pred);
		if (!(s >= 0.0f && s <= 1.0f) || t.err)
			break;
	}
	atomic_store(&t.stop, true);
	pthread_join(th, NULL);
	cr_assert(s >= 0.0f && s <= 1.0f, "sample %zu scored %g", i, s);
	cr_assert_eq(t.err, 0);
	s = gru__update(t.g, gru_test_sine(i), &pred);
	cr_assert_lt(fabsf(pred - gru_test_sine(i)), 0.5f, "forecast %g, actual %g", pred,
		     gru_test_sine(i));
	gru__free(t.g);
}
