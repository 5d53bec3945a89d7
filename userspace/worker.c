/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "probes/probes.h"
#include "rings.h"
#include "spans/span_ring.h"
#include "topology.h"
#include "worker.h"

#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define add_relaxed(p, v) __atomic_store_n((p), *(p) + (v), __ATOMIC_RELAXED)

static const probe_handler_fn handlers[SOURCE_MAX] = {
	[SOURCE_KVM] = kvm_probe__handle,
	[SOURCE_BLOCK] = block_probe__handle,
	[SOURCE_SCHED] = sched_probe__handle,
};

int worker_dispatch(struct worker *w, struct shard_table *t, const void *data, size_t size)
{
	const struct event_header *h = data;
	unsigned int src;

	if (size < sizeof(*h) || h->size > size)
		goto bad;
	src = NOVAMON_EVENT_SOURCE(h->type);
	/* Decode by the size the event claims, which must fit the sample. */
	if (src >= SOURCE_MAX || !handlers[src] || handlers[src](t, h, h->size))
		goto bad;
	/* Only this thread writes its counters; the tick reads them. */
	add_relaxed(&w->consumed[src], 1);
	return 0;
bad:
	add_relaxed(&w->decode_errors, 1);
	return 0;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct worker_ring *ring = ctx;

	worker_dispatch(ring->w, ring->w->cur, data, size);
	/* The event is consumed either way; stop this ring at its budget. */
	return ++ring->n >= WORKER_RING_BUDGET ? -EAGAIN : 0;
}

/* Drain every ring once, up to its budget. Returns true if one has more. */
static bool drain(struct worker *w)
{
	bool more = false;
	size_t i, r;

	for (i = 0; i < w->nrings; i++) {
		r = (w->next_ring + i) % w->nrings;
		w->rings[r].n = 0;
		if (ring_buffer__consume(w->rings[r].rb) == -EAGAIN)
			more = true;
	}
	if (w->nrings)
		w->next_ring = (w->next_ring + 1) % w->nrings;
	return more;
}

static void pin_to_cpus(const struct worker *w)
{
	cpu_set_t set;
	size_t i;

	CPU_ZERO(&set);
	for (i = 0; i < w->ncpus; i++)
		CPU_SET(w->cpus[i], &set);
	/* Best effort: a cpuset may forbid some CPUs; the worker still runs. */
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (numa_available() >= 0)
		numa_set_preferred(w->node);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[4];
	bool more = false;
	char name[16];
	uint64_t e, v;
	int n, i;

	snprintf(name, sizeof(name), "novamon-w%d", w->id);
	pthread_setname_np(pthread_self(), name);
	pin_to_cpus(w);

	while (!*w->quit) {
		n = epoll_wait(w->epfd, evs, 4, more ? 0 : w->poll_ms);
		for (i = 0; i < n; i++)
			if (evs[i].data.fd == w->wake_fd)
				(void)!read(w->wake_fd, &v, sizeof(v));
		e = __atomic_load_n(&w->epoch, __ATOMIC_ACQUIRE);
		w->cur = &w->tables[e & 1];
		w->cur->spans = __atomic_load_n(&w->span_ring, __ATOMIC_ACQUIRE);
		more = drain(w);
		if (w->cur->spans)
			span_ring__sweep(w->cur->spans, mono_ns());
		__atomic_store_n(&w->seen_epoch, e, __ATOMIC_RELEASE);
		add_relaxed(&w->wakeups, 1);
	}
	return NULL;
}

static void worker_free(struct worker *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; w->rings && i < w->nrings; i++)
		ring_buffer__free(w->rings[i].rb);
	free(w->rings);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	shard_table__destroy(&w->tables[0]);
	shard_table__destroy(&w->tables[1]);
	span_ring__free(w->span_ring);
	free(w->cpus);
	if (numa_available() >= 0)
		numa_free(w, sizeof(*w));
	else
		free(w);
}

static struct worker *worker_new(int id, const struct topology_node *tn, const struct rings *r,
				 uint32_t shard_entries, int poll_ms, const volatile bool *quit)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct worker *w = NULL;
	size_t i;
	int err;

	if (numa_available() >= 0)
		w = numa_alloc_onnode(sizeof(*w), tn->node);
	if (!w) {
		w = aligned_alloc(128, sizeof(*w));
		if (!w)
			return NULL;
	}
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->node = tn->node;
	w->epfd = -1;
	w->wake_fd = -1;
	w->poll_ms = poll_ms;
	w->quit = quit;
	w->cpus = calloc(tn->ncpus, sizeof(int));
	w->rings = calloc(tn->ncpus, sizeof(*w->rings));
	if (!w->cpus || !w->rings) {
		err = -ENOMEM;
		goto err_free;
	}
	memcpy(w->cpus, tn->cpus, tn->ncpus * sizeof(int));
	w->ncpus = tn->ncpus;

	err = shard_table__init(&w->tables[0], shard_entries, tn->node);
	if (!err)
		err = shard_table__init(&w->tables[1], shard_entries, tn->node);
	if (err)
		goto err_free;
	w->cur = &w->tables[0];

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd < 0 || w->wake_fd < 0) {
		err = -errno;
		goto err_free;
	}
	ev.data.fd = w->wake_fd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev)) {
		err = -errno;
		goto err_free;
	}

	for (i = 0; i < tn->ncpus; i++) {
		struct worker_ring *ring = &w->rings[w->nrings];
		int cpu = tn->cpus[i];

		if (cpu >= r->nr_cpus || r->ring_fd[cpu] < 0)
			continue;
		ring->w = w;
		ring->cpu = cpu;
		ring->rb = ring_buffer__new(r->ring_fd[cpu], on_event, ring, NULL);
		if (!ring->rb) {
			err = -errno;
			goto err_free;
		}
		w->nrings++;
		/*
		 * Edge-triggered: a ring with unread data is always readable, so
		 * level-triggered polling would spin; edges come only from the
		 * producers' wake-ups (the wakeup_bytes threshold).
		 */
		ev.events = EPOLLIN | EPOLLET;
		ev.data.fd = r->ring_fd[cpu];
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, r->ring_fd[cpu], &ev)) {
			err = -errno;
			goto err_free;
		}
	}
	return w;

err_free:
	worker_free(w);
	errno = -err;
	return NULL;
}

struct workers *workers__start(const struct topology *topo, const struct rings *rings,
			       uint32_t shard_entries, int poll_ms)
{
	struct workers *ws;
	size_t i;
	int err;

	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return NULL;
	ws->w = calloc(topo->nnodes, sizeof(*ws->w));
	if (!ws->w) {
		err = -ENOMEM;
		goto err_stop;
	}
	for (i = 0; i < topo->nnodes; i++) {
		struct worker *w = worker_new(ws->n, &topo->nodes[i], rings, shard_entries, poll_ms,
					      &ws->quit);

		if (!w) {
			err = -errno;
			goto err_stop;
		}
		ws->w[ws->n++] = w;
		err = -pthread_create(&w->thread, NULL, worker_main, w);
		if (err)
			goto err_stop;
		w->started = true;
	}
	return ws;

err_stop:
	workers__stop(ws);
	errno = -err;
	return NULL;
}

struct workers *workers__stop(struct workers *ws)
{
	uint64_t one = 1;
	size_t i;

	if (!ws)
		return NULL;
	ws->quit = true;
	for (i = 0; i < ws->n; i++) {
		struct worker *w = ws->w[i];

		if (w->started) {
			(void)!write(w->wake_fd, &one, sizeof(one));
			pthread_join(w->thread, NULL);
		}
		worker_free(w);
	}
	free(ws->w);
	free(ws);
	return NULL;
}

struct span_ring *worker__enable_spans(struct worker *w, const struct span_ring_params *p)
{
	struct span_ring *r = __atomic_load_n(&w->span_ring, __ATOMIC_ACQUIRE), *none = NULL;

	if (r)
		return r;
	r = span_ring__new(p, w->node);
	if (!r)
		return NULL;
	if (!__atomic_compare_exchange_n(&w->span_ring, &none, r, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		span_ring__free(r);
		return none; /* another caller's, now in none */
	}
	return r;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct shard_table *worker__flip(struct worker *w, int wait_ms)
{
	uint64_t one = 1, target;
	int waited;

	if (!w->merge_pending) {
		/* Only flip once the worker has taken the previous flip. */
		if (__atomic_load_n(&w->seen_epoch, __ATOMIC_ACQUIRE) != w->epoch)
			return NULL;
		target = w->epoch + 1;
		__atomic_store_n(&w->epoch, target, __ATOMIC_RELEASE);
		w->merge_pending = target;
		(void)!write(w->wake_fd, &one, sizeof(one));
	}
	target = w->merge_pending;
	for (waited = 0;; waited++) {
		if (__atomic_load_n(&w->seen_epoch, __ATOMIC_ACQUIRE) == target)
			break;
		if (waited >= wait_ms)
			return NULL;
		sleep_ms(1);
	}
	w->merge_pending = 0;
	return &w->tables[(target - 1) & 1];
}
