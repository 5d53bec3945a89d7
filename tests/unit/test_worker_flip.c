/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker__flip: the tick's side of the two-table hand-off, without threads
 * or BPF. The worker side is played by hand: it writes the table of
 * seen_epoch and acknowledges a flip by storing seen_epoch = epoch. Checked:
 * an unacknowledged flip returns NULL after wait_ms and stays pending, a
 * later call after the acknowledgement returns the previous table, no second
 * flip starts while the first is pending, and the counts written before the
 * flip (even late ones) are the ones handed over.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include <criterion/criterion.h>

#include "shard.h"
#include "worker.h"

static struct worker w;

static void flip_setup(void)
{
	memset(&w, 0, sizeof(w));
	w.epfd = -1;
	w.wake_fd = eventfd(0, EFD_NONBLOCK);
	cr_assert_geq(w.wake_fd, 0, "eventfd: %s", strerror(errno));
	cr_assert_eq(shard_table__init(&w.tables[0], 64, -1), 0);
	cr_assert_eq(shard_table__init(&w.tables[1], 64, -1), 0);
	w.cur = &w.tables[0];
}

static void flip_teardown(void)
{
	shard_table__destroy(&w.tables[0]);
	shard_table__destroy(&w.tables[1]);
	if (w.wake_fd >= 0)
		close(w.wake_fd);
}

TestSuite(worker_flip, .init = flip_setup, .fini = flip_teardown);

/* Worker side: take the current epoch, as worker_main does on each pass. */
static void worker_ack(void)
{
	uint64_t e = __atomic_load_n(&w.epoch, __ATOMIC_ACQUIRE);

	w.cur = &w.tables[e & 1];
	__atomic_store_n(&w.seen_epoch, e, __ATOMIC_RELEASE);
}

/* Worker side: count one event of key a in the table it writes. */
static void worker_count(uint32_t a, uint64_t n)
{
	struct shard_key k = { .kind = SHARD_SCHED_DELAY, .tgid = 1, .tid = 2, .a = a };
	struct shard_val *v = shard_table__get(w.cur, &k);

	cr_assert_not_null(v);
	v->count += n;
}

static uint64_t count_of(const struct shard_table *t, uint32_t a)
{
	struct shard_key k = { .kind = SHARD_SCHED_DELAY, .tgid = 1, .tid = 2, .a = a };
	struct shard_entry *e;

	shard_table__for_each(t, e) if (!memcmp(&e->key, &k, sizeof(k))) return e->val.count;
	return 0;
}

/* Wake-ups written to the eventfd since the last call (0 if none). */
static uint64_t wakeups(void)
{
	uint64_t v = 0;

	if (read(w.wake_fd, &v, sizeof(v)) != sizeof(v)) {
		cr_assert_eq(errno, EAGAIN);
		return 0;
	}
	return v;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(worker_flip, unacknowledged_returns_null_after_wait)
{
	int64_t t0, elapsed;

	t0 = now_ms();
	cr_assert_null(worker__flip(&w, 20));
	elapsed = now_ms() - t0;
	cr_assert_geq(elapsed, 20, "gave up after %" PRId64 " ms, not 20", elapsed);
	cr_assert_eq(w.epoch, 1, "epoch not bumped");
	cr_assert_eq(w.merge_pending, 1, "flip not left pending");
	cr_assert_eq(wakeups(), 1, "worker not woken");
	cr_assert_eq(w.seen_epoch, 0);
}

Test(worker_flip, zero_wait_returns_at_once)
{
	int64_t t0 = now_ms();

	cr_assert_null(worker__flip(&w, 0));
	cr_assert_lt(now_ms() - t0, 500); /* no 1 ms sleep loop */
	cr_assert_eq(w.merge_pending, 1);
}

Test(worker_flip, acknowledged_later_returns_previous_table)
{
	cr_assert_null(worker__flip(&w, 1));
	cr_assert_eq(w.merge_pending, 1);

	worker_ack();
	cr_assert_eq(w.cur, &w.tables[1], "worker did not switch to table 1");
	cr_assert_eq(worker__flip(&w, 1), &w.tables[0], "epoch 1: table 0 not handed over");
	cr_assert_eq(w.merge_pending, 0, "merge_pending not cleared");
	cr_assert_eq(w.epoch, 1, "completing a pending flip started another");
	cr_assert_eq(wakeups(), 1);

	/* The next cycle hands over the other table. */
	cr_assert_null(worker__flip(&w, 1));
	cr_assert_eq(w.epoch, 2);
	cr_assert_eq(w.merge_pending, 2);
	worker_ack();
	cr_assert_eq(worker__flip(&w, 1), &w.tables[1], "epoch 2: table 1 not handed over");
	cr_assert_eq(w.merge_pending, 0);

	/* And back to the first. */
	cr_assert_null(worker__flip(&w, 0));
	worker_ack();
	cr_assert_eq(worker__flip(&w, 0), &w.tables[0], "epoch 3: table 0 not handed over");
	cr_assert_eq(w.epoch, 3);
}

Test(worker_flip, no_second_flip_while_pending)
{
	int i;

	cr_assert_null(worker__flip(&w, 0));
	for (i = 0; i < 5; i++) {
		cr_assert_null(worker__flip(&w, 1), "call %d", i);
		cr_assert_eq(w.epoch, 1, "call %d: epoch moved to %" PRIu64, i, w.epoch);
		cr_assert_eq(w.merge_pending, 1);
	}
	cr_assert_eq(wakeups(), 1, "woken again for a flip already pending");

	worker_ack();
	cr_assert_eq(worker__flip(&w, 0), &w.tables[0]);
	cr_assert_eq(w.epoch, 1);
}

Test(worker_flip, no_flip_until_worker_caught_up)
{
	/* The worker still writes epoch 2's table although epoch is 3. */
	w.epoch = 3;
	w.seen_epoch = 2;
	cr_assert_null(worker__flip(&w, 0));
	cr_assert_eq(w.epoch, 3, "flipped under a worker that had not switched");
	cr_assert_eq(w.merge_pending, 0);
	cr_assert_eq(wakeups(), 0);
}

Test(worker_flip, handed_over_counts_are_the_pre_flip_ones)
{
	struct shard_table *t;

	/* Epoch 0: the worker writes table 0. */
	worker_count(1, 10);
	worker_count(2, 5);
	cr_assert_null(worker__flip(&w, 0));

	/* Busy worker: still on table 0 and writing to it after the bump. */
	worker_count(1, 3);
	cr_assert_null(worker__flip(&w, 0));

	/* It switches; what it writes now is the next second's. */
	worker_ack();
	worker_count(1, 100);
	worker_count(3, 7);

	t = worker__flip(&w, 0);
	cr_assert_eq(t, &w.tables[0]);
	cr_assert_eq(t->used, 2);
	cr_assert_eq(count_of(t, 1), 13, "late pre-flip counts lost or doubled");
	cr_assert_eq(count_of(t, 2), 5);
	cr_assert_eq(count_of(t, 3), 0, "post-flip count in the handed-over table");
	cr_assert_eq(count_of(&w.tables[1], 1), 100);
	cr_assert_eq(count_of(&w.tables[1], 3), 7);
	cr_assert_eq(count_of(&w.tables[1], 2), 0);

	/* The tick clears what it read; the next flip hands over table 1 as written. */
	shard_table__clear(t);
	cr_assert_null(worker__flip(&w, 0));
	worker_ack();
	cr_assert_eq(w.cur, &w.tables[0]);
	worker_count(2, 1);
	t = worker__flip(&w, 0);
	cr_assert_eq(t, &w.tables[1]);
	cr_assert_eq(count_of(t, 1), 100);
	cr_assert_eq(count_of(t, 3), 7);
	cr_assert_eq(t->used, 2);
	cr_assert_eq(count_of(&w.tables[0], 2), 1);
	cr_assert_eq(w.tables[0].used, 1);
}
