/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spans: the span candidate ring (order, wrap, counted drops), exit-storm
 * detection on the producer side, the decoders' pushes, the log queue
 * (order, drops, trace IDs, masking, concurrent producers), the spans file,
 * and the synthesizer driven by hand with spans__poll(): block spans and
 * their attributes, parentage under per-VM "vm activity" spans, IDs,
 * sampling to the budget with exact re-weighting, errors and slow spans
 * kept, KVM spans, VM lifecycle from a fake proc tree and, with libvirt,
 * from its in-process test driver.
 */
#ifdef __has_include
#if __has_include("build_config.h")
#include "build_config.h"
#endif
#endif
#ifndef HAVE_LIBVIRT
#define HAVE_LIBVIRT 0
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/types.h>

#include <criterion/criterion.h>

#if HAVE_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif

#include "bpf/block.h"
#include "bpf/kvm.h"
#include "bpf/sched.h"
#include "config.h"
#include "metrics.h"
#include "probes/probes.h"
#include "shard.h"
#include "spans/logq.h"
#include "spans/span_file.h"
#include "spans/span_ring.h"
#include "spans/spans.h"
#include "span_attrs.h"

#define NS 1000000000ull
#define MS 1000000ull
/* A wall clock well away from 0, on a 10 s period boundary. */
#define REAL0 (1700000000ull * NS)
#define MONO0 (1000ull * NS)

/* ---- a fake proc tree ---- */

static char root[64];

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void fake_proc(unsigned int pid, const char *argv, size_t len, bool kvm)
{
	char path[256], line[256];
	int n;

	snprintf(path, sizeof(path), "%s/%u", root, pid);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%u/stat", root, pid);
	n = snprintf(line, sizeof(line),
		     "%u (qemu) S 1 %u %u 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 9 0 %u 0 0\n", pid, pid,
		     pid, 100 + pid);
	write_file(path, line, (size_t)n);
	snprintf(path, sizeof(path), "%s/%u/cmdline", root, pid);
	write_file(path, argv, len);
	snprintf(path, sizeof(path), "%s/%u/fd", root, pid);
	cr_assert_eq(mkdir(path, 0755), 0);
	if (kvm) {
		snprintf(path, sizeof(path), "%s/%u/fd/11", root, pid);
		cr_assert_eq(symlink("anon_inode:kvm-vm", path), 0);
	}
	snprintf(path, sizeof(path), "%s/%u/task", root, pid);
	cr_assert_eq(mkdir(path, 0755), 0);
}

static void fake_vcpu(unsigned int pid, unsigned int tid, int index)
{
	char path[256], comm[32];
	int n;

	snprintf(path, sizeof(path), "%s/%u/task/%u", root, pid, tid);
	cr_assert_eq(mkdir(path, 0755), 0);
	strcat(path, "/comm");
	n = snprintf(comm, sizeof(comm), "CPU %d/KVM\n", index);
	write_file(path, comm, (size_t)n);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fake_exit(unsigned int pid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%u", root, pid);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define ARGV(s) (s), sizeof(s) - 1

/* ---- a sink that keeps everything ---- */

struct capture_sink {
	struct span *spans;
	size_t n, cap;
	struct log_record *logs;
	size_t nlogs, caplogs;
	int flushes;
};

static struct capture_sink got;

static void got_span(void *ctx, const struct span *s)
{
	struct capture_sink *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->spans = realloc(c->spans, c->cap * sizeof(*c->spans));
		cr_assert_not_null(c->spans);
	}
	c->spans[c->n++] = *s;
}

static void got_log(void *ctx, const struct log_record *r)
{
	struct capture_sink *c = ctx;

	if (c->nlogs == c->caplogs) {
		c->caplogs = c->caplogs ? c->caplogs * 2 : 16;
		c->logs = realloc(c->logs, c->caplogs * sizeof(*c->logs));
		cr_assert_not_null(c->logs);
	}
	c->logs[c->nlogs++] = *r;
}

static void got_flush(void *ctx)
{
	((struct capture_sink *)ctx)->flushes++;
}

static void got_reset(void)
{
	free(got.spans);
	free(got.logs);
	memset(&got, 0, sizeof(got));
}

static const char *log_event(const struct log_record *r)
{
	const struct span_attr *a = attr(r->attrs, r->nattrs, "novamon.event");

	cr_assert_not_null(a);
	return a->s;
}

static bool zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static const struct span *find_span(const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < got.n; i++)
		if (!strcmp(got.spans[i].name, name) && !nth--)
			return &got.spans[i];
	return NULL;
}

static size_t count_spans(const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < got.n; i++)
		n += !strcmp(got.spans[i].name, name);
	return n;
}

/* ---- fixtures ---- */

static struct span_ring *ring;
static struct spans *syn;
static struct logq *lq;
static struct span_ring_params ring_params = { .entries = 1024, .storm_entries = 64 };
static struct span_ring_params synth_ring_params = { .entries = 16384 };

static void rings_setup(void)
{
	ring = span_ring__new(&ring_params, -1);
	cr_assert_not_null(ring);
}

static void rings_teardown(void)
{
	ring = span_ring__free(ring);
}

TestSuite(span_ring, .init = rings_setup, .fini = rings_teardown);
TestSuite(span_storm, .init = rings_setup, .fini = rings_teardown);
TestSuite(span_decode, .init = rings_setup, .fini = rings_teardown);
TestSuite(logq);
TestSuite(span_file);

static void synth_setup(void)
{
	char path[128];

	strcpy(root, "/tmp/novamon-spans-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/self", root);
	cr_assert_eq(mkdir(path, 0755), 0);
	ring = span_ring__new(&synth_ring_params, -1);
	cr_assert_not_null(ring);
	lq = logq__new(64, false);
	cr_assert_not_null(lq);
	memset(&got, 0, sizeof(got));
}

static void synth_teardown(void)
{
	syn = spans__free(syn);
	ring = span_ring__free(ring);
	lq = logq__free(lq);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	got_reset();
}

TestSuite(spans, .init = synth_setup, .fini = synth_teardown);

/* A synthesizer on the fake tree, draining ring, with the capture sink. */
static void synth_start(uint32_t budget, bool lifecycle)
{
	struct spans_opts o;

	spans_opts__init(&o, NULL);
	o.budget_per_second = budget;
	o.proc_root = root;
	o.sys_root = root; /* no <root>/dev/block: devices are named MAJ:MIN */
	o.logq = lq;
	o.no_lifecycle = !lifecycle;
	o.sinks[0] = (struct spans_sink){
		.name = "test", .span = got_span, .log = got_log, .flush = got_flush, .ctx = &got
	};
	o.nsinks = 1;
	syn = spans__new(&o);
	cr_assert_not_null(syn, "spans__new: %s", strerror(errno));
	cr_assert_eq(spans__add_ring(syn, ring), 0);
}

static struct span_cand block_cand(uint32_t tgid, uint64_t end_mono, uint64_t queue,
				   uint64_t service, int error)
{
	return (struct span_cand){
		.kind = SPAN_CAND_BLOCK,
		.tgid = tgid,
		.tid = tgid + 1,
		.vcpu = SPAN_VCPU_UNKNOWN,
		.end_ns = end_mono,
		.block = { .sector = 2048,
			   .queue_ns = queue,
			   .service_ns = service,
			   .bytes = 4096,
			   .major = 7,
			   .minor = 3,
			   .op = 0,
			   .error = (int16_t)error },
	};
}

/* ---- the ring ---- */

Test(span_ring, fifo_wrap_and_counted_drops)
{
	struct span_cand c = block_cand(1, 0, 0, 0, 0), out[700];
	uint64_t i, next = 0;
	size_t n, k;

	cr_assert_eq(ring->mask, 1023);
	/* Three laps of the ring in unequal bursts: FIFO, nothing lost. */
	for (i = 0; i < 3000; i++) {
		c.end_ns = i;
		cr_assert(span_ring__push(ring, &c));
		if (i % 600 == 599) {
			n = span_ring__pop_burst(ring, out, 700);
			for (k = 0; k < n; k++)
				cr_assert_eq(out[k].end_ns, next++);
		}
	}
	while ((n = span_ring__pop_burst(ring, out, 700)))
		for (k = 0; k < n; k++)
			cr_assert_eq(out[k].end_ns, next++);
	cr_assert_eq(next, 3000);
	/* Full: the 1025th push is dropped and counted under its kind. */
	for (i = 0; i < 1024; i++)
		cr_assert(span_ring__push(ring, &c));
	c.kind = SPAN_CAND_KVM_HALT;
	cr_assert_not(span_ring__push(ring, &c));
	cr_assert_not(span_ring__push(ring, &c));
	cr_assert_eq(ring->dropped[SPAN_CAND_KVM_HALT], 2);
	cr_assert_eq(ring->dropped[SPAN_CAND_BLOCK], 0);
	cr_assert_eq(span_ring__dropped(ring), 2);
	cr_assert_eq(span_ring__pop_burst(ring, out, 1), 1);
	cr_assert(span_ring__push(ring, &c));
}

Test(span_ring, bad_sizes)
{
	struct span_ring_params p = { .entries = 1000 };

	cr_assert_null(span_ring__new(&p, -1));
	cr_assert_eq(errno, EINVAL);
	p.entries = 0;
	p.storm_entries = 3;
	cr_assert_null(span_ring__new(&p, -1));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(span_ring__free(NULL));
}

/* ---- storms ---- */

/* n exits of (tgid 10, tid 11, io) spread over window w (100 ms windows from t0). */
static void exits(uint64_t t0, unsigned int w, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		span_ring__count_exit(ring, 10, 11, 3, SPAN_EXIT_USERSPACE, 2,
				      t0 + w * 100 * MS + (uint64_t)i * (100 * MS) / n);
}

Test(span_storm, burst_above_baseline_is_one_storm)
{
	uint64_t t0 = 5 * NS;
	struct span_cand out[4];
	unsigned int w;

	/* 20 windows at 200 exits: the baseline. */
	for (w = 0; w < 20; w++)
		exits(t0, w, 200);
	/* 3 windows at 3000 (> 4 x 200 and > 1000): one storm. */
	for (; w < 23; w++)
		exits(t0, w, 3000);
	cr_assert_eq(span_ring__pop_burst(ring, out, 4), 0, "not over until a calm window");
	for (; w < 26; w++)
		exits(t0, w, 200);
	cr_assert_eq(span_ring__pop_burst(ring, out, 4), 1);
	cr_assert_eq(out[0].kind, SPAN_CAND_KVM_STORM);
	cr_assert_eq(out[0].tgid, 10);
	cr_assert_eq(out[0].tid, 11);
	cr_assert_eq(out[0].vcpu, 3);
	cr_assert_eq(out[0].storm.exits, 9000);
	cr_assert_eq(out[0].storm.windows, 3);
	cr_assert_eq(out[0].storm.reason, 2);
	cr_assert_eq(out[0].storm.exit_class, SPAN_EXIT_USERSPACE);
	cr_assert_eq(out[0].storm.baseline, 200);
	cr_assert_eq(out[0].storm.window_ms, 100);
	cr_assert_eq(out[0].storm.duration_ns, 300 * MS);
	cr_assert_eq(out[0].end_ns, t0 + 23 * 100 * MS);
}

Test(span_storm, steady_high_rate_and_warmup_are_not_storms)
{
	struct span_cand out[4];
	unsigned int w;

	/* A burst during warm-up, then a steady 5000 per window. */
	exits(NS, 0, 100);
	exits(NS, 1, 5000);
	for (w = 2; w < 40; w++)
		exits(NS, w, 5000);
	span_ring__sweep(ring, NS + 60 * 100 * MS);
	cr_assert_eq(span_ring__pop_burst(ring, out, 4), 0);
}

Test(span_storm, quiet_after_storm_ends_it_on_sweep)
{
	struct span_cand out[4];
	unsigned int w;

	for (w = 0; w < 12; w++)
		exits(NS, w, 10);
	exits(NS, 12, 2000); /* 2000 >= max(4 x 10, 1000) */
	span_ring__sweep(ring, NS + 13 * 100 * MS - 1);
	cr_assert_eq(span_ring__pop_burst(ring, out, 4), 0, "the storm window is still open");
	span_ring__sweep(ring, NS + 15 * 100 * MS);
	cr_assert_eq(span_ring__pop_burst(ring, out, 4), 1);
	cr_assert_eq(out[0].storm.exits, 2000);
	cr_assert_eq(out[0].end_ns, NS + 13 * 100 * MS);
	/* Idle for a minute: the key is forgotten. */
	cr_assert_eq(ring->storm_used, 1);
	span_ring__sweep(ring, NS + 80 * NS);
	cr_assert_eq(ring->storm_used, 0);
}

Test(span_storm, full_table_counts_untracked_exits)
{
	uint32_t tid;

	/* 64 slots, kept at most 3/4 full (48 keys). */
	for (tid = 0; tid < 60; tid++)
		span_ring__count_exit(ring, 1, tid, 0, SPAN_EXIT_VMX, 30, NS);
	cr_assert_eq(ring->storm_used, 48);
	cr_assert_eq(ring->storm_untracked, 12);
	/* Deletion keeps every other key reachable. */
	span_ring__sweep(ring, 100 * NS);
	cr_assert_eq(ring->storm_used, 0);
}

/* ---- decoders ---- */

static struct shard_table tbl;

Test(span_decode, block_kvm_sched_push_candidates)
{
	struct block_rq_event b = {
		.h = { .type = EV_BLOCK_RQ, .size = sizeof(b), .tgid = 5, .tid = 6, .ts_ns = 777 },
		.major = 7,
		.minor = 3,
		.op = 1,
		.bytes = 8192,
		.latency_ns = 300,
		.error = 10,
		.sector = 99,
		.queue_ns = 40,
	};
	struct kvm_wakeup_event wk = {
		.h = { .type = EV_KVM_WAKEUP,
		       .size = sizeof(wk),
		       .tgid = 5,
		       .tid = 7,
		       .ts_ns = 900 },
		.vcpu_id = 1,
		.waited = 1,
		.valid = 1,
		.ns = 20 * MS,
	};
	struct sched_delay_event sd = {
		.h = { .type = EV_SCHED_DELAY,
		       .size = sizeof(sd),
		       .tgid = 5,
		       .tid = 7,
		       .ts_ns = 950 },
		.delay_ns = 2 * MS,
	};
	struct span_cand out[8];

	cr_assert_eq(shard_table__init(&tbl, 64, -1), 0);
	/* No ring: nothing pushed, counts as before. */
	cr_assert_eq(block_probe__handle(&tbl, &b.h, sizeof(b)), 0);
	tbl.spans = ring;
	cr_assert_eq(block_probe__handle(&tbl, &b.h, sizeof(b)), 0);
	cr_assert_eq(kvm_probe__handle(&tbl, &wk.h, sizeof(wk)), 0);
	wk.ns = 1 * MS; /* below halt_min_ns (10 ms): no span */
	cr_assert_eq(kvm_probe__handle(&tbl, &wk.h, sizeof(wk)), 0);
	cr_assert_eq(sched_probe__handle(&tbl, &sd.h, sizeof(sd)), 0);
	sd.delay_ns = 10000; /* below 1 ms */
	cr_assert_eq(sched_probe__handle(&tbl, &sd.h, sizeof(sd)), 0);
	shard_table__clear(&tbl);
	cr_assert_eq(tbl.spans, ring, "clear keeps the ring");
	cr_assert_eq(span_ring__pop_burst(ring, out, 8), 3);
	cr_assert_eq(out[0].kind, SPAN_CAND_BLOCK);
	cr_assert_eq(out[0].tgid, 5);
	cr_assert_eq(out[0].tid, 6);
	cr_assert_eq(out[0].end_ns, 777);
	cr_assert_eq(out[0].block.sector, 99);
	cr_assert_eq(out[0].block.queue_ns, 40);
	cr_assert_eq(out[0].block.service_ns, 300);
	cr_assert_eq(out[0].block.bytes, 8192);
	cr_assert_eq(out[0].block.major, 7);
	cr_assert_eq(out[0].block.minor, 3);
	cr_assert_eq(out[0].block.op, 1);
	cr_assert_eq(out[0].block.error, 10);
	cr_assert_eq(out[1].kind, SPAN_CAND_KVM_HALT);
	cr_assert_eq(out[1].vcpu, 1);
	cr_assert_eq(out[1].wait.duration_ns, 20 * MS);
	cr_assert_eq(out[1].wait.waited, 1);
	cr_assert_eq(out[2].kind, SPAN_CAND_SCHED_DELAY);
	cr_assert_eq(out[2].wait.duration_ns, 2 * MS);
	cr_assert_eq(out[2].vcpu, SPAN_VCPU_UNKNOWN);
	shard_table__destroy(&tbl);
}

Test(span_decode, exits_feed_storm_detection)
{
	struct kvm_userspace_exit_event e = {
		.h = { .type = EV_KVM_USERSPACE_EXIT, .size = sizeof(e), .tgid = 5, .tid = 6 },
		.vcpu_id = 0,
		.reason = 2,
	};
	struct kvm_exit_event hx = {
		.h = { .type = EV_KVM_EXIT, .size = sizeof(hx), .tgid = 5, .tid = 6, .ts_ns = NS },
		.vcpu_id = 0,
		.reason = 30,
		.isa = 1,
		.duration_ns = 100,
	};

	cr_assert_eq(shard_table__init(&tbl, 64, -1), 0);
	tbl.spans = ring;
	e.h.ts_ns = NS;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(kvm_probe__handle(&tbl, &hx.h, sizeof(hx)), 0);
	cr_assert_eq(ring->storm_used, 2, "one key per exit class and reason");
	shard_table__destroy(&tbl);
}

/* ---- the log queue ---- */

Test(logq, order_ids_attributes_and_drops)
{
	struct logq *q = logq__new(4, false);
	uint8_t trace[16], span[8], zeros[16] = { 0 };
	struct log_record out[8];
	size_t i;

	cr_assert_not_null(q);
	memset(trace, 0xab, sizeof(trace));
	memset(span, 0xcd, sizeof(span));
	cr_assert_eq(logq__emit(q, LOG_SEV_INFO, LOGQ_EVENT_CAPTURE_ATTACH, NULL, NULL, NULL, 0,
				"probe %s attached", "block/block_rq_issue"),
		     0);
	cr_assert_eq(logq__emit(q, LOG_SEV_WARN, LOGQ_EVENT_ANOMALY_RAISED, trace, span,
				(struct logq_attr[]){ LOGQ_STR("novamon.vm", "web-1"),
						      LOGQ_INT("process.pid", 42),
						      LOGQ_DOUBLE("novamon.score", 0.75) },
				3, "anomaly"),
		     0);
	cr_assert_eq(logq__emit(q, LOG_SEV_INFO, LOGQ_EVENT_VM_APPEARED, zeros, zeros, NULL, 0,
				"zero ids are none"),
		     0);
	cr_assert_eq(logq__emit(q, LOG_SEV_INFO, "x", NULL, NULL, NULL, 0, "4th"), 0);
	cr_assert_eq(logq__emit(q, LOG_SEV_INFO, "x", NULL, NULL, NULL, 0, "5th"), -ENOSPC);
	cr_assert_eq(logq__dropped(q), 1);
	cr_assert_eq(logq__emitted(q), 4);
	cr_assert_eq(logq__drain(q, out, 8), 4);
	cr_assert_str_eq(out[0].body, "probe block/block_rq_issue attached");
	cr_assert_eq(out[0].severity, LOG_SEV_INFO);
	cr_assert_not(out[0].has_trace);
	cr_assert_gt(out[0].time_ns, REAL0);
	cr_assert_str_eq(log_event(&out[0]), "capture.attach");
	cr_assert(out[1].has_trace);
	cr_assert_eq(memcmp(out[1].trace_id, trace, 16), 0);
	cr_assert_eq(memcmp(out[1].span_id, span, 8), 0);
	cr_assert_eq(out[1].nattrs, 4);
	cr_assert_str_eq(out[1].attrs[1].s, "web-1");
	cr_assert_eq(out[1].attrs[2].i, 42);
	cr_assert_float_eq(out[1].attrs[3].d, 0.75, 1e-12);
	cr_assert_not(out[2].has_trace);
	cr_assert_eq(logq__drain(q, out, 8), 0);
	/* Room again after the drain, for several laps. */
	for (i = 0; i < 10; i++) {
		cr_assert_eq(logq__emit(q, LOG_SEV_DEBUG, "x", NULL, NULL, NULL, 0, "%zu", i), 0);
		cr_assert_eq(logq__drain(q, out, 8), 1);
	}
	cr_assert_eq(logq__emit(NULL, LOG_SEV_INFO, "x", NULL, NULL, NULL, 0, "off"), 0);
	logq__free(q);
	cr_assert_null(logq__new(6, false));
	cr_assert_eq(errno, EINVAL);
}

Test(logq, masks_ips_and_user_names)
{
	struct logq *q = logq__new(4, true);
	struct log_record out[2];
	char a[128], b[128];

	cr_assert_not_null(q);
	cr_assert_eq(logq__emit(q, LOG_SEV_INFO, "x", NULL, NULL,
				(struct logq_attr[]){ LOGQ_STR("user.name", "alice"),
						      LOGQ_STR("client.address", "10.1.2.3"),
						      LOGQ_STR("novamon.vm", "web-1") },
				3, "login user=alice from 192.168.0.17:22 and fe80::1 v1.2.3"),
		     0);
	cr_assert_eq(logq__drain(q, out, 2), 1);
	cr_assert_null(strstr(out[0].body, "alice"), "%s", out[0].body);
	cr_assert_null(strstr(out[0].body, "192.168"), "%s", out[0].body);
	cr_assert_null(strstr(out[0].body, "fe80"), "%s", out[0].body);
	cr_assert_not_null(strstr(out[0].body, "user=user-"), "%s", out[0].body);
	cr_assert_not_null(strstr(out[0].body, ":22 and ip-"), "%s", out[0].body);
	cr_assert_not_null(strstr(out[0].body, "v1.2.3"), "version numbers stay: %s", out[0].body);
	cr_assert_eq(strncmp(out[0].attrs[1].s, "user-", 5), 0, "%s", out[0].attrs[1].s);
	cr_assert_eq(strncmp(out[0].attrs[2].s, "ip-", 3), 0, "%s", out[0].attrs[2].s);
	cr_assert_str_eq(out[0].attrs[3].s, "web-1");
	cr_assert_str_eq(out[0].attrs[0].s, "x");
	/* Same salt, same value: same mask; another value: another. */
	logq_mask("a 10.0.0.1 b", false, 7, a, sizeof(a));
	logq_mask("c 10.0.0.1", false, 7, b, sizeof(b));
	cr_assert_not_null(strstr(a, "ip-"));
	cr_assert_eq(strncmp(strstr(a, "ip-"), strstr(b, "ip-"), 11), 0, "%s / %s", a, b);
	logq_mask("c 10.0.0.2", false, 7, b, sizeof(b));
	cr_assert_neq(strncmp(strstr(a, "ip-"), strstr(b, "ip-"), 11), 0, "%s / %s", a, b);
	logq_mask("1.2.3.4.5 256.1.1.1 12:30:00", false, 7, a, sizeof(a));
	cr_assert_str_eq(a, "1.2.3.4.5 256.1.1.1 12:30:00");
	logq_mask("bob", true, 7, a, sizeof(a));
	cr_assert_eq(strncmp(a, "user-", 5), 0);
	logq_mask("x 10.0.0.1", false, 7, a, 6); /* truncated, still terminated */
	cr_assert_eq(strlen(a), 5);
	logq__free(q);
}

#define LOGQ_THREADS 4
#define LOGQ_PER_THREAD 20000

static void *logq_producer(void *arg)
{
	struct logq *q = arg;
	int i;

	for (i = 0; i < LOGQ_PER_THREAD; i++)
		logq__emit(q, LOG_SEV_INFO, "x", NULL, NULL, NULL, 0, "%d", i);
	return NULL;
}

Test(logq, concurrent_producers_lose_nothing_uncounted)
{
	struct logq *q = logq__new(256, false);
	pthread_t th[LOGQ_THREADS];
	struct log_record *out = malloc(64 * sizeof(*out));
	uint64_t drained = 0;
	size_t n;
	int i;

	cr_assert_not_null(q);
	cr_assert_not_null(out);
	for (i = 0; i < LOGQ_THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, logq_producer, q), 0);
	for (;;) {
		n = logq__drain(q, out, 64);
		drained += n;
		if (!n && logq__emitted(q) + logq__dropped(q) == LOGQ_THREADS * LOGQ_PER_THREAD &&
		    drained == logq__emitted(q))
			break;
	}
	for (i = 0; i < LOGQ_THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(drained + logq__dropped(q), LOGQ_THREADS * LOGQ_PER_THREAD);
	free(out);
	logq__free(q);
}

/* ---- the spans file ---- */

Test(span_file, json_lines)
{
	char path[] = "/tmp/novamon-spans-file-XXXXXX", line[4096];
	struct span s = { .kind = SPAN_KIND_INTERNAL, .start_ns = 1, .end_ns = 2, .nattrs = 3 };
	struct log_record r = { .time_ns = 5, .severity = LOG_SEV_INFO, .nattrs = 1 };
	struct span_file *f;
	FILE *in;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	memset(s.trace_id, 0x11, 16);
	memset(s.span_id, 0x22, 8);
	strcpy(s.name, "block read");
	strcpy(s.attrs[0].key, "system.device");
	s.attrs[0].type = SPAN_ATTR_STR;
	strcpy(s.attrs[0].s, "lo\"op\n");
	strcpy(s.attrs[1].key, "novamon.block.bytes");
	s.attrs[1].type = SPAN_ATTR_INT;
	s.attrs[1].i = -4096;
	strcpy(s.attrs[2].key, "novamon.sample_rate");
	s.attrs[2].type = SPAN_ATTR_DOUBLE;
	s.attrs[2].d = 2.5;
	strcpy(r.body, "hi");
	strcpy(r.attrs[0].key, "novamon.event");
	strcpy(r.attrs[0].s, "vm.appeared");
	f = span_file__open(path);
	cr_assert_not_null(f);
	cr_assert_eq(span_file__write_span(f, &s), 0);
	cr_assert_eq(span_file__write_log(f, &r), 0);
	span_file__close(f);
	in = fopen(path, "r");
	cr_assert_not_null(in);
	cr_assert_not_null(fgets(line, sizeof(line), in));
	cr_assert_str_eq(line,
			 "{\"type\":\"span\",\"trace_id\":\"11111111111111111111111111111111\","
			 "\"span_id\":\"2222222222222222\",\"parent_span_id\":\"\","
			 "\"name\":\"block read\",\"kind\":1,\"start_ns\":1,\"end_ns\":2,"
			 "\"status\":0,\"status_message\":\"\",\"attributes\":{"
			 "\"system.device\":\"lo\\\"op\\n\",\"novamon.block.bytes\":-4096,"
			 "\"novamon.sample_rate\":2.5}}\n");
	cr_assert_not_null(fgets(line, sizeof(line), in));
	cr_assert_str_eq(line, "{\"type\":\"log\",\"time_ns\":5,\"severity\":9,\"trace_id\":\"\","
			       "\"span_id\":\"\",\"body\":\"hi\",\"attributes\":{"
			       "\"novamon.event\":\"vm.appeared\"}}\n");
	fclose(in);
	unlink(path);
}

/* ---- the synthesizer ---- */

Test(spans, block_spans_attributes_and_vm_parentage)
{
	const struct span *vm_child, *plain, *act;
	uint64_t mono = MONO0, real = REAL0 + 2 * NS;
	struct span_cand c;
	size_t i;

	fake_proc(1000,
		  ARGV("qemu\0-name\0guest=web-1\0-uuid\0"
		       "c7a5fdbd-cdaf-9455-926a-d65c16db1809\0"),
		  true);
	fake_proc(2000, ARGV("dd\0if=/dev/loop3\0"), false);
	synth_start(1000, false);
	c = block_cand(1000, mono - 5 * MS, 1000, 250000, 0);
	span_ring__push(ring, &c);
	c = block_cand(2000, mono - 4 * MS, 0, 90000, 0);
	c.block.op = 1;
	span_ring__push(ring, &c);
	cr_assert_eq(spans__poll(syn, mono, real), 2);
	cr_assert_eq(got.n, 2);
	cr_assert_eq(got.flushes, 1);

	vm_child = find_span("block read", 0);
	cr_assert_not_null(vm_child);
	cr_assert_eq(vm_child->kind, SPAN_KIND_INTERNAL);
	cr_assert_eq(vm_child->status, SPAN_STATUS_UNSET);
	cr_assert_eq(vm_child->end_ns, real - 5 * MS);
	cr_assert_eq(vm_child->end_ns - vm_child->start_ns, 1000 + 250000);
	cr_assert_str_eq(attr_s(vm_child, "system.device"), "7:3");
	cr_assert_str_eq(attr_s(vm_child, "disk.io.direction"), "read");
	cr_assert_str_eq(attr_s(vm_child, "novamon.block.op"), "read");
	cr_assert_eq(attr_i(vm_child, "novamon.block.sector"), 2048);
	cr_assert_eq(attr_i(vm_child, "novamon.block.bytes"), 4096);
	cr_assert_eq(attr_i(vm_child, "novamon.block.queue_ns"), 1000);
	cr_assert_eq(attr_i(vm_child, "novamon.block.service_ns"), 250000);
	cr_assert_eq(attr_i(vm_child, "process.pid"), 1000);
	cr_assert_eq(attr_i(vm_child, "thread.id"), 1001);
	cr_assert_float_eq(attr_d(vm_child, "novamon.sample_rate"), 1.0, 1e-12);
	cr_assert_str_eq(attr_s(vm_child, "novamon.vm"), "web-1");
	cr_assert_not(zero(vm_child->parent_span_id, 8), "a VM's request has a parent");

	plain = find_span("block write", 0);
	cr_assert_not_null(plain);
	cr_assert(zero(plain->parent_span_id, 8), "not a VM's: a root span");
	cr_assert_str_eq(attr_s(plain, "disk.io.direction"), "write");
	cr_assert_null(attr(plain->attrs, plain->nattrs, "novamon.vm"));
	cr_assert_neq(memcmp(plain->trace_id, vm_child->trace_id, 16), 0);
	for (i = 0; i < got.n; i++) {
		cr_assert_not(zero(got.spans[i].trace_id, 16));
		cr_assert_not(zero(got.spans[i].span_id, 8));
	}

	/* The period [REAL0, REAL0 + 10 s) ends; its parent is emitted 1 s later. */
	got.n = 0;
	spans__poll(syn, mono + 8 * NS, REAL0 + 10 * NS + 500 * MS);
	cr_assert_eq(got.n, 0);
	spans__poll(syn, mono + 9 * NS, REAL0 + 11 * NS);
	cr_assert_eq(got.n, 1);
	act = &got.spans[0];
	cr_assert_str_eq(act->name, "vm activity");
	cr_assert(zero(act->parent_span_id, 8));
	cr_assert_eq(act->start_ns, REAL0);
	cr_assert_eq(act->end_ns, REAL0 + 10 * NS);
	cr_assert_str_eq(attr_s(act, "novamon.vm"), "web-1");
	cr_assert_str_eq(attr_s(act, "novamon.vm.uuid"), "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
	cr_assert_eq(attr_i(act, "process.pid"), 1000);
	cr_assert_eq(attr_i(act, "novamon.block.requests"), 1);
	cr_assert_eq(attr_i(act, "novamon.block.bytes"), 4096);
	cr_assert_eq(attr_i(act, "novamon.spans.children"), 1);
}

Test(spans, parent_ids_match_and_periods_roll)
{
	uint64_t mono = MONO0, real = REAL0 + 9 * NS;
	const struct span *a, *b, *p1;
	struct span_cand c;
	size_t i;

	fake_proc(1000, ARGV("qemu\0-name\0web-1\0"), true);
	synth_start(1000, false);
	c = block_cand(1000, mono - 1 * MS, 0, 1000, 0);
	span_ring__push(ring, &c);
	spans__poll(syn, mono, real);
	/* 2 s later: the next period; the previous one is closed at once. */
	c = block_cand(1000, mono + 2 * NS, 0, 1000, 0);
	span_ring__push(ring, &c);
	spans__poll(syn, mono + 2 * NS, real + 2 * NS);
	/* A late child of the first period after it was closed. */
	c = block_cand(1000, mono - 500 * MS, 0, 1000, 0);
	span_ring__push(ring, &c);
	spans__poll(syn, mono + 2 * NS + MS, real + 2 * NS + MS);
	syn = spans__free(syn); /* emits the open second period */
	cr_assert_eq(count_spans("vm activity"), 2);
	a = find_span("block read", 0);
	b = find_span("block read", 1);
	p1 = find_span("vm activity", 0);
	cr_assert_eq(memcmp(a->parent_span_id, p1->span_id, 8), 0);
	cr_assert_eq(memcmp(a->trace_id, p1->trace_id, 16), 0);
	cr_assert_neq(memcmp(b->parent_span_id, p1->span_id, 8), 0);
	cr_assert_eq(memcmp(find_span("block read", 2)->parent_span_id, p1->span_id, 8), 0);
	cr_assert_eq(memcmp(b->parent_span_id, find_span("vm activity", 1)->span_id, 8), 0);
	for (i = 0; i + 1 < got.n; i++)
		cr_assert_neq(memcmp(got.spans[i].span_id, got.spans[i + 1].span_id, 8), 0);
}

Test(spans, sampling_to_budget_reweights_exactly_and_keeps_errors)
{
	uint64_t mono = MONO0, real = REAL0, total = 0, errors = 0;
	double weighted = 0;
	struct span_cand c;
	struct spans_stats st;
	int round, i;
	size_t k;

	fake_proc(2000, ARGV("fio\0"), false);
	synth_start(2000, false);
	/* 20 rounds of 50 ms, 10000 plain requests each (200K/s), 1 error each. */
	for (round = 0; round < 20; round++) {
		mono += 50 * MS;
		real += 50 * MS;
		for (i = 0; i < 10000; i++) {
			c = block_cand(2000, mono - MS, 0, 100000 + (uint64_t)(i % 7) * 1000, 0);
			cr_assert(span_ring__push(ring, &c));
		}
		c = block_cand(2000, mono - MS, 0, 50000, 10);
		cr_assert(span_ring__push(ring, &c));
		spans__poll(syn, mono, real);
		total += 10001;
	}
	for (k = 0; k < got.n; k++) {
		const struct span *s = &got.spans[k];

		weighted += attr_d(s, "novamon.sample_rate");
		if (s->status == SPAN_STATUS_ERROR) {
			errors++;
			cr_assert_float_eq(attr_d(s, "novamon.sample_rate"), 1.0, 1e-12);
			cr_assert_str_eq(attr_s(s, "error.type"), "ioerr");
			cr_assert_not_null(strstr(s->status_message, "ioerr"));
		}
	}
	cr_assert_eq(errors, 20, "every error is kept");
	/* A 1 s burst, then 2000/s for 0.95 s: about 3900 sampled, plus the errors. */
	cr_assert_leq(got.n, 20 + 4200);
	cr_assert_geq(got.n, 20 + 3600);
	/* Re-weighted, the counts come back (random: the bound is about 4.5 sigma). */
	cr_assert(fabs(weighted - (double)total) < 0.1 * (double)total, "weighted %f of %lu",
		  weighted, (unsigned long)total);
	spans__stats(syn, &st);
	cr_assert_eq(st.synthesized[SPANS_KIND_BLOCK] + st.sampled_out[SPANS_KIND_BLOCK], total);
	cr_assert_eq(st.synthesized[SPANS_KIND_BLOCK], got.n);
}

/*
 * One span of budget per batch of 2000: every batch keeps one span that
 * stands for its 2000 (systematic sampling), so no batch goes missing from
 * the re-weighted count; a coin per candidate kept none about 1 time in e.
 */
Test(spans, reweighted_count_misses_no_batch_on_a_tight_budget)
{
	uint64_t mono = MONO0, real = REAL0;
	struct span_cand c;
	size_t before = 0;
	double weighted;
	int round, i;
	size_t k;

	fake_proc(2000, ARGV("fio\0"), false);
	synth_start(1, false);
	for (round = 0; round < 20; round++) {
		mono += 50 * MS;
		real += 50 * MS;
		for (i = 0; i < 2000; i++) {
			c = block_cand(2000, mono - MS, 0, 100000, 0);
			cr_assert(span_ring__push(ring, &c));
		}
		spans__poll(syn, mono, real);
		weighted = 0;
		for (k = before; k < got.n; k++)
			weighted += attr_d(&got.spans[k], "novamon.sample_rate");
		cr_assert_geq(got.n - before, 1, "round %d kept no span", round);
		cr_assert(fabs(weighted - 2000) <= 2000 * 0.01, "round %d: weighted %f of 2000",
			  round, weighted);
		before = got.n;
	}
}

Test(spans, slow_spans_are_kept_over_budget)
{
	uint64_t mono = MONO0, real = REAL0;
	struct span_cand c;
	int i;

	fake_proc(2000, ARGV("fio\0"), false);
	synth_start(1, false);
	for (i = 0; i < 100; i++) {
		c = block_cand(2000, mono - MS, 0, 100000, 0);
		span_ring__push(ring, &c);
	}
	c = block_cand(2000, mono - MS, 0, 2000000, 0); /* 20x the baseline */
	span_ring__push(ring, &c);
	mono += 50 * MS;
	real += 50 * MS;
	spans__poll(syn, mono, real);
	cr_assert_geq(count_spans("block read"), 1);
	/* The budget is 1 span/s: p = 0.01 for the 100 others (P(> 6) < 0.001). */
	cr_assert_leq(count_spans("block read"), 7);
	cr_assert_eq(attr_i(&got.spans[got.n - 1], "novamon.block.service_ns"), 2000000);
	cr_assert_float_eq(attr_d(&got.spans[got.n - 1], "novamon.sample_rate"), 1.0, 1e-12);
}

Test(spans, fair_share_between_kinds)
{
	uint64_t mono = MONO0 + 50 * MS, real = REAL0;
	struct span_cand c;
	int i;

	fake_proc(1000, ARGV("qemu\0-name\0web-1\0"), true);
	synth_start(100, false);
	/* 100 spans/s of budget: 5000 block candidates and 10 halts. */
	for (i = 0; i < 5000; i++) {
		c = block_cand(1000, mono - MS, 0, 100000, 0);
		span_ring__push(ring, &c);
	}
	for (i = 0; i < 10; i++) {
		c = (struct span_cand){ .kind = SPAN_CAND_KVM_HALT,
					.tgid = 1000,
					.tid = 1001,
					.vcpu = 0,
					.end_ns = mono - MS,
					.wait = { .duration_ns = 20 * MS } };
		span_ring__push(ring, &c);
	}
	spans__poll(syn, mono, real);
	cr_assert_eq(count_spans("kvm halt"), 10, "a small kind gets all it asks");
	cr_assert_float_eq(attr_d(find_span("kvm halt", 0), "novamon.sample_rate"), 1.0, 1e-12);
	/* The other 90 of the budget: p = 0.018, about 90 +- 9.4. */
	cr_assert_leq(count_spans("block read"), 135);
	cr_assert_geq(count_spans("block read"), 50);
}

Test(spans, kvm_spans)
{
	uint64_t mono = MONO0, real = REAL0 + NS;
	const struct span *s;
	struct span_cand c;

	fake_proc(1000, ARGV("qemu\0-name\0web-1\0"), true);
	fake_vcpu(1000, 1002, 1);
	synth_start(1000, false);
	c = (struct span_cand){ .kind = SPAN_CAND_KVM_STORM,
				.tgid = 1000,
				.tid = 1002,
				.vcpu = SPAN_VCPU_UNKNOWN,
				.end_ns = mono - 100 * MS,
				.storm = { .duration_ns = 300 * MS,
					   .exits = 9000,
					   .baseline = 200,
					   .reason = 2,
					   .exit_class = SPAN_EXIT_USERSPACE,
					   .window_ms = 100,
					   .windows = 3 } };
	span_ring__push(ring, &c);
	c = (struct span_cand){ .kind = SPAN_CAND_KVM_STORM,
				.tgid = 1000,
				.tid = 1002,
				.vcpu = 4,
				.end_ns = mono - 100 * MS,
				.storm = { .duration_ns = 100 * MS,
					   .exits = 5000,
					   .baseline = 10,
					   .reason = 12,
					   .exit_class = SPAN_EXIT_VMX,
					   .window_ms = 100,
					   .windows = 1 } };
	span_ring__push(ring, &c);
	c = (struct span_cand){ .kind = SPAN_CAND_KVM_HALT,
				.tgid = 1000,
				.tid = 1002,
				.vcpu = 1,
				.end_ns = mono - 10 * MS,
				.wait = { .duration_ns = 30 * MS, .waited = 1 } };
	span_ring__push(ring, &c);
	c = (struct span_cand){ .kind = SPAN_CAND_SCHED_DELAY,
				.tgid = 1000,
				.tid = 1002,
				.vcpu = SPAN_VCPU_UNKNOWN,
				.end_ns = mono - 10 * MS,
				.wait = { .duration_ns = 3 * MS } };
	span_ring__push(ring, &c);
	cr_assert_eq(spans__poll(syn, mono, real), 4);

	s = find_span("kvm exit_storm", 0);
	cr_assert_not_null(s);
	cr_assert_str_eq(attr_s(s, "novamon.vm"), "web-1");
	cr_assert_eq(attr_i(s, "novamon.vcpu"), 1, "from the thread name");
	cr_assert_str_eq(attr_s(s, "novamon.kvm.exit_reason"), "io");
	cr_assert_str_eq(attr_s(s, "novamon.kvm.exit_class"), "userspace");
	cr_assert_eq(attr_i(s, "novamon.kvm.exits"), 9000);
	cr_assert_eq(attr_i(s, "novamon.kvm.baseline"), 200);
	cr_assert_eq(s->end_ns - s->start_ns, 300 * MS);
	cr_assert_not(zero(s->parent_span_id, 8));
	s = find_span("kvm exit_storm", 1);
	cr_assert_str_eq(attr_s(s, "novamon.kvm.exit_reason"), "hlt");
	cr_assert_str_eq(attr_s(s, "novamon.kvm.exit_class"), "vmx");
	cr_assert_eq(attr_i(s, "novamon.vcpu"), 4);
	s = find_span("kvm halt", 0);
	cr_assert_not_null(s);
	cr_assert_eq(attr_i(s, "novamon.kvm.halt_ns"), 30 * MS);
	cr_assert_eq(attr_i(s, "novamon.vcpu"), 1);
	cr_assert_eq(s->end_ns - s->start_ns, 30 * MS);
	s = find_span("sched runqueue_delay", 0);
	cr_assert_not_null(s);
	cr_assert_eq(attr_i(s, "novamon.sched.delay_ns"), 3 * MS);
	cr_assert_eq(attr_i(s, "novamon.vcpu"), 1);
	cr_assert_str_eq(attr_s(s, "novamon.vm"), "web-1");
	cr_assert_eq(attr_i(s, "thread.id"), 1002);
}

Test(spans, process_lifecycle_spans_and_logs)
{
	uint64_t mono = MONO0, real = REAL0;
	const struct span *start, *stop;
	const struct log_record *appeared = NULL, *gone = NULL;
	size_t i;

	fake_proc(1000, ARGV("qemu\0-name\0old\0"), true);
	synth_start(1000, true);
	spans__poll(syn, mono, real);
	cr_assert_eq(got.nlogs, 1);
	cr_assert_str_eq(log_event(&got.logs[0]), "vm.appeared");
	cr_assert_not(got.logs[0].has_trace, "running before us: no start span");
	cr_assert_eq(got.n, 0);

	fake_proc(3000, ARGV("qemu\0-name\0guest=new,debug-threads=on\0"), true);
	spans__poll(syn, mono += NS, real += NS);
	cr_assert_eq(count_spans("vm start"), 0, "waits a refresh for libvirt");
	spans__poll(syn, mono += NS, real += NS);
	cr_assert_eq(count_spans("vm start"), 1);
	fake_exit(3000);
	spans__poll(syn, mono += NS, real += NS);
	cr_assert_eq(count_spans("vm shutdown"), 1);

	start = find_span("vm start", 0);
	stop = find_span("vm shutdown", 0);
	cr_assert_str_eq(attr_s(start, "novamon.vm"), "new");
	cr_assert_str_eq(attr_s(start, "novamon.vm.source"), "process");
	cr_assert_eq(attr_i(start, "process.pid"), 3000);
	cr_assert_eq(start->end_ns, REAL0 + NS, "ends when the VM was first seen");
	cr_assert_leq(start->start_ns, start->end_ns);
	cr_assert(zero(start->parent_span_id, 8));
	cr_assert_eq(stop->start_ns, REAL0 + 2 * NS);
	cr_assert_eq(stop->end_ns, REAL0 + 3 * NS);
	for (i = 0; i < got.nlogs; i++) {
		if (!strcmp(log_event(&got.logs[i]), "vm.appeared") && got.logs[i].has_trace)
			appeared = &got.logs[i];
		if (!strcmp(log_event(&got.logs[i]), "vm.disappeared"))
			gone = &got.logs[i];
	}
	cr_assert_not_null(appeared);
	cr_assert_not_null(gone);
	cr_assert_eq(memcmp(appeared->trace_id, start->trace_id, 16), 0);
	cr_assert_eq(memcmp(appeared->span_id, start->span_id, 8), 0);
	cr_assert_eq(memcmp(gone->trace_id, stop->trace_id, 16), 0);
	cr_assert_str_eq(attr(gone->attrs, gone->nattrs, "novamon.vm")->s, "new");
}

/* A VM gone before its second sighting still started: start, shutdown and both logs. */
Test(spans, short_lived_vm_process_has_a_start)
{
	uint64_t mono = MONO0, real = REAL0;
	const struct span *start, *stop;
	size_t i, appeared = 0, gone = 0;

	synth_start(1000, true);
	spans__poll(syn, mono, real);
	fake_proc(3000, ARGV("qemu\0-name\0guest=brief\0"), true);
	spans__poll(syn, mono += NS, real += NS);
	cr_assert_eq(count_spans("vm start"), 0);
	fake_exit(3000);
	spans__poll(syn, mono += NS, real += NS);
	start = find_span("vm start", 0);
	stop = find_span("vm shutdown", 0);
	cr_assert_not_null(start);
	cr_assert_not_null(stop);
	cr_assert_str_eq(attr_s(start, "novamon.vm"), "brief");
	cr_assert_eq(start->end_ns, REAL0 + NS, "ends when the VM was first seen");
	cr_assert_leq(start->end_ns, stop->start_ns);
	for (i = 0; i < got.nlogs; i++) {
		appeared += !strcmp(log_event(&got.logs[i]), "vm.appeared");
		gone += !strcmp(log_event(&got.logs[i]), "vm.disappeared");
	}
	cr_assert_eq(appeared, 1);
	cr_assert_eq(gone, 1);
}

/*
 * qemu reads its disk before it creates its VM: those reads wait and are the
 * VM's once it is one (as /metrics counts them); so is a read a tenth of a
 * second after it did, without waiting for the next refresh.
 */
Test(spans, a_process_turning_into_a_vm_is_asked_again)
{
	uint64_t mono = MONO0, real = REAL0;
	struct span_cand c;
	const struct span *b;
	char path[256];
	int k;

	synth_start(1000, false);
	spans__poll(syn, mono, real);
	spans__poll(syn, mono += NS,
		    real += NS); /* past the first refresh: new processes are young */
	fake_proc(4000, ARGV("qemu\0-name\0guest=late\0"), false);
	c = block_cand(4000, mono, 0, 100000, 0);
	span_ring__push(ring, &c);
	spans__poll(syn, mono += 10 * MS, real += 10 * MS);
	cr_assert_null(find_span("block read", 0), "a young process's read waits");
	snprintf(path, sizeof(path), "%s/4000/fd/11", root);
	cr_assert_eq(symlink("anon_inode:kvm-vm", path), 0); /* KVM_CREATE_VM */
	c = block_cand(4000, mono + 150 * MS, 0, 100000, 0);
	span_ring__push(ring, &c);
	spans__poll(syn, mono += 200 * MS, real += 200 * MS); /* the same refresh period */
	for (k = 0; k < 2; k++) {
		b = find_span("block read", (size_t)k);
		cr_assert_not_null(b, "read %d", k);
		cr_assert_str_eq(attr_s(b, "novamon.vm"), "late");
		cr_assert_not(zero(b->parent_span_id, 8), "a child of the VM's activity span");
	}
}

/* A young process that never holds a VM: its spans come, without a VM, a second late at most. */
Test(spans, a_young_plain_process_waits_at_most_a_second)
{
	uint64_t mono = MONO0, real = REAL0;
	struct span_cand c;
	const struct span *b;

	synth_start(1000, false);
	spans__poll(syn, mono, real);
	spans__poll(syn, mono += NS, real += NS);
	fake_proc(4100, ARGV("dd\0if=/dev/loop0\0"), false);
	c = block_cand(4100, mono, 0, 100000, 0);
	span_ring__push(ring, &c);
	spans__poll(syn, mono += 500 * MS, real += 500 * MS);
	cr_assert_null(find_span("block read", 0));
	spans__poll(syn, mono += 600 * MS, real += 600 * MS);
	b = find_span("block read", 0);
	cr_assert_not_null(b);
	cr_assert_null(attr(b->attrs, b->nattrs, "novamon.vm"));
	cr_assert(zero(b->parent_span_id, 8));
}

Test(spans, logq_records_reach_the_sinks_and_counters)
{
	struct metric_set *set = metric_set__new(0);
	const struct metric_family *f;
	struct tick_sink ts;

	synth_start(1000, false);
	logq__emit(lq, LOG_SEV_WARN, LOGQ_EVENT_ANOMALY_RAISED, NULL, NULL, NULL, 0, "score %d", 1);
	spans__poll(syn, MONO0, REAL0);
	cr_assert_eq(got.nlogs, 1);
	cr_assert_str_eq(got.logs[0].body, "score 1");
	ts = spans__tick_sink(syn);
	cr_assert_not_null(set);
	cr_assert_eq(ts.describe(ts.ctx, set), 0);
	cr_assert_not_null(f = metric_set__find(set, "novamon_spans_synthesized_total"));
	cr_assert_eq(f->nseries, SPANS_KIND_MAX);
	cr_assert_not_null(metric_set__find(set, "novamon_spans_sampled_out_total"));
	cr_assert_not_null(f = metric_set__find(set, "novamon_spans_dropped_total"));
	cr_assert_str_eq(f->series[0].labels, "reason=\"ring_full\"");
	cr_assert_not_null(f = metric_set__find(set, "novamon_logs_exported_total"));
	cr_assert_float_eq(f->series[0].value, 1.0, 1e-12);
	metric_set__free(set);
}

Test(spans, config_section)
{
	char path[] = "/tmp/novamon-spans-cfg-XXXXXX", err[256];
	static const char yaml[] = "spans:\n  enabled: false\n  budget_per_second: 50\n"
				   "  slow_factor: 8\n  vm_period_seconds: 30\n"
				   "  mask_personal_data: true\n";
	struct spans_opts o;
	struct config cfg;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)sizeof(yaml) - 1);
	close(fd);
	config_defaults(&cfg);
	cr_assert(cfg.spans_enabled);
	cr_assert_eq(cfg.spans_budget_per_second, 1000);
	cr_assert_eq(config_load(&cfg, path, true, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(cfg.spans_enabled);
	cr_assert(cfg.spans_mask_personal_data);
	spans_opts__init(&o, &cfg);
	cr_assert_eq(o.budget_per_second, 50);
	cr_assert_eq(o.slow_factor, 8);
	cr_assert_eq(o.vm_period_seconds, 30);
	cr_assert_eq(o.vcpu_map_fd, -1);
	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, "spans:\n  slow_factor: 0\n", 24), 24);
	close(fd);
	cr_assert_eq(config_load(&cfg, path, true, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "spans.slow_factor"), "%s", err);
	unlink(path);
}

#if HAVE_LIBVIRT
#define LC_XML(name)                                                             \
	"<domain type='test'><name>" name "</name>"                              \
	"<uuid>0b2d7c2e-1f3a-4c5d-9e8f-a1b2c3d4e5f6</uuid><memory>1024</memory>" \
	"<os><type>hvm</type></os></domain>"

static void silent(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* Poll (a refresh each simulated second) until a span called name is there. */
static const struct span *wait_span(uint64_t *mono, uint64_t *real, const char *name)
{
	int i;

	for (i = 0; i < 100 && !find_span(name, 0); i++) {
		usleep(20000);
		spans__poll(syn, *mono += NS, *real += NS);
	}
	cr_assert_not_null(find_span(name, 0), "no %s span", name);
	return find_span(name, 0);
}

Test(spans, libvirt_lifecycle)
{
	uint64_t mono = MONO0, real = REAL0;
	struct spans_opts o;
	virConnectPtr conn;
	virDomainPtr dom;
	const struct span *s;
	size_t i, appeared = 0, gone = 0;

	virSetErrorFunc(NULL, silent);
	conn = virConnectOpen("test:///default");
	cr_assert_not_null(conn);
	spans_opts__init(&o, NULL);
	o.proc_root = root;
	o.logq = lq;
	o.libvirt_uri = "test:///default";
	o.sinks[0] = (struct spans_sink){ .span = got_span, .log = got_log, .ctx = &got };
	o.nsinks = 1;
	syn = spans__new(&o);
	cr_assert_not_null(syn);
	spans__poll(syn, mono, real);
	dom = virDomainDefineXML(conn, LC_XML("lcspan"));
	cr_assert_not_null(dom);
	wait_span(&mono, &real, "vm define");
	cr_assert_eq(virDomainCreate(dom), 0);
	s = wait_span(&mono, &real, "vm start");
	cr_assert_str_eq(attr_s(s, "novamon.vm"), "lcspan");
	cr_assert_str_eq(attr_s(s, "novamon.vm.source"), "libvirt");
	cr_assert_eq(virDomainSuspend(dom), 0);
	wait_span(&mono, &real, "vm pause");
	cr_assert_eq(virDomainResume(dom), 0);
	wait_span(&mono, &real, "vm resume");
	cr_assert_eq(virDomainDestroy(dom), 0);
	wait_span(&mono, &real, "vm destroy");
	cr_assert_eq(virDomainUndefine(dom), 0);
	wait_span(&mono, &real, "vm undefine");
	for (i = 0; i < got.nlogs; i++) {
		const struct span_attr *vm =
			attr(got.logs[i].attrs, got.logs[i].nattrs, "novamon.vm");

		if (!vm || strcmp(vm->s, "lcspan"))
			continue;
		appeared += !strcmp(log_event(&got.logs[i]), "vm.appeared");
		gone += !strcmp(log_event(&got.logs[i]), "vm.disappeared");
		cr_assert(got.logs[i].has_trace);
	}
	cr_assert_eq(appeared, 1);
	cr_assert_eq(gone, 1);
	syn = spans__free(syn);
	virDomainFree(dom);
	virConnectClose(conn);
}
#endif
