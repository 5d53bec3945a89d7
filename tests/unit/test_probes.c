/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probes: the ring-event decoders of the kvm, block and sched families fed
 * synthetic events built from the ABI headers (the shard entry each one
 * produces, short and foreign events refused without touching the table),
 * the label vocabularies (KVM userspace and hardware exit reasons, MMIO
 * direction, block ops), and worker_dispatch's routing and error counting.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include <linux/types.h>

#include <criterion/criterion.h>

#include "bpf/block.h"
#include "bpf/events.h"
#include "bpf/kvm.h"
#include "bpf/sched.h"
#include "probes/probes.h"
#include "shard.h"
#include "worker.h"

#define TGID 4242
#define TID 4243

static struct shard_table tbl;

static void probes_setup(void)
{
	cr_assert_eq(shard_table__init(&tbl, 64, -1), 0);
}

static void probes_teardown(void)
{
	shard_table__destroy(&tbl);
}

TestSuite(probes_decode, .init = probes_setup, .fini = probes_teardown);
TestSuite(probes_names);
TestSuite(probes_dispatch, .init = probes_setup, .fini = probes_teardown);

static struct event_header hdr(uint16_t type, size_t size)
{
	return (struct event_header){
		.type = type,
		.size = (__u16)size,
		.tgid = TGID,
		.tid = TID,
		.ts_ns = 123456789,
	};
}

/* The entry of t with exactly key k, or NULL; never inserts. */
static const struct shard_val *find(const struct shard_table *t, struct shard_key k)
{
	struct shard_entry *e;

	shard_table__for_each(t, e) if (!memcmp(&e->key, &k, sizeof(k))) return &e->val;
	return NULL;
}

static uint32_t hist_total(const struct shard_val *v)
{
	uint32_t n = 0;
	int b;

	for (b = 0; b < SHARD_HIST_BUCKETS; b++)
		n += v->hist[b];
	return n;
}

static bool table_is_empty(const struct shard_table *t)
{
	static const struct shard_entry zero;
	uint32_t i;

	if (t->used || t->overflow)
		return false;
	for (i = 0; i < t->cap; i++)
		if (memcmp(&t->entries[i], &zero, sizeof(zero)))
			return false;
	return true;
}

static struct kvm_pio_event pio_event(uint32_t vcpu, uint32_t rw, uint32_t port, uint32_t count)
{
	struct kvm_pio_event e = {
		.h = hdr(EV_KVM_PIO, sizeof(e)),
		.vcpu_id = vcpu,
		.rw = rw,
		.port = port,
		.size = 1,
		.count = count,
	};

	return e;
}

static struct kvm_exit_event exit_event(uint32_t isa, uint32_t reason, uint64_t ns)
{
	struct kvm_exit_event e = {
		.h = hdr(EV_KVM_EXIT, sizeof(e)),
		.vcpu_id = 2,
		.reason = reason,
		.isa = isa,
		.duration_ns = ns,
	};

	return e;
}

static struct block_rq_event block_event(uint32_t op, uint32_t bytes, uint64_t ns)
{
	struct block_rq_event e = {
		.h = hdr(EV_BLOCK_RQ, sizeof(e)),
		.major = 253,
		.minor = 4,
		.op = op,
		.bytes = bytes,
		.latency_ns = ns,
	};

	return e;
}

static struct sched_delay_event sched_event(uint32_t tid, uint64_t ns)
{
	struct sched_delay_event e = { .h = hdr(EV_SCHED_DELAY, sizeof(e)), .delay_ns = ns };

	e.h.tid = tid;
	return e;
}

/* ---- decoders ---- */

Test(probes_decode, kvm_pio_counts_exits_not_reps)
{
	struct kvm_pio_event e = pio_event(3, 1, 0x3f8, 16);
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	v = find(&tbl, (struct shard_key){ .kind = SHARD_KVM_PIO,
					   .tgid = TGID,
					   .tid = TID,
					   .a = 0x3f8,
					   .b = 1,
					   .c = 3 });
	cr_assert_not_null(v, "no SHARD_KVM_PIO entry keyed port/rw/vcpu");
	cr_assert_eq(v->count, 2, "count %" PRIu64 ": the rep count leaked in", v->count);
	cr_assert_eq(v->sum, 0);
	cr_assert_eq(hist_total(v), 0);
	cr_assert_eq(tbl.used, 1);

	/* Another direction, port or vCPU is another entry. */
	e = pio_event(3, 0, 0x3f8, 1);
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e = pio_event(3, 1, 0x3f9, 1);
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e = pio_event(KVM_VCPU_UNKNOWN, 1, 0x3f8, 1);
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(tbl.used, 4);
	cr_assert_not_null(find(&tbl, (struct shard_key){ .kind = SHARD_KVM_PIO,
							  .tgid = TGID,
							  .tid = TID,
							  .a = 0x3f8,
							  .b = 0,
							  .c = 3 }));
	cr_assert_not_null(find(&tbl, (struct shard_key){ .kind = SHARD_KVM_PIO,
							  .tgid = TGID,
							  .tid = TID,
							  .a = 0x3f8,
							  .b = 1,
							  .c = KVM_VCPU_UNKNOWN }));
}

Test(probes_decode, kvm_userspace_exit)
{
	struct kvm_userspace_exit_event e = {
		.h = hdr(EV_KVM_USERSPACE_EXIT, sizeof(e)),
		.vcpu_id = 1,
		.reason = 6,
		.err = 0,
	};
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	v = find(&tbl, (struct shard_key){ .kind = SHARD_KVM_USERSPACE_EXIT,
					   .tgid = TGID,
					   .tid = TID,
					   .a = 6,
					   .c = 1 });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 1);
	cr_assert_eq(tbl.used, 1);
}

Test(probes_decode, kvm_mmio)
{
	struct kvm_mmio_event e = {
		.h = hdr(EV_KVM_MMIO, sizeof(e)),
		.vcpu_id = 5,
		.type = 2,
		.len = 4,
		.gpa = 0xfee00000,
	};
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.type = 1;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.gpa = 0x1000; /* not part of the key */
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	v = find(&tbl, (struct shard_key){
			       .kind = SHARD_KVM_MMIO, .tgid = TGID, .tid = TID, .a = 2, .c = 5 });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 1);
	v = find(&tbl, (struct shard_key){
			       .kind = SHARD_KVM_MMIO, .tgid = TGID, .tid = TID, .a = 1, .c = 5 });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 2);
	cr_assert_eq(tbl.used, 2);
}

Test(probes_decode, kvm_exit_timed)
{
	struct kvm_exit_event e = exit_event(1, 30, 3000);
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.duration_ns = 500;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	v = find(&tbl, (struct shard_key){ .kind = SHARD_KVM_EXIT,
					   .tgid = TGID,
					   .tid = TID,
					   .a = 30,
					   .b = 1,
					   .c = 2 });
	cr_assert_not_null(v, "no SHARD_KVM_EXIT entry keyed reason/isa/vcpu");
	cr_assert_eq(v->count, 2);
	cr_assert_eq(v->hist[shard_hist_bucket(3000)], 1);
	cr_assert_eq(v->hist[0], 1);
	cr_assert_eq(hist_total(v), 2);
	cr_assert_eq(v->hist_sum, 3500);
	cr_assert_eq(v->sum, 0);

	/* Same reason number under the other ISA: another entry. */
	e = exit_event(2, 30, 100);
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(tbl.used, 2);
}

Test(probes_decode, kvm_exit_untimed_counts_without_histogram)
{
	struct kvm_exit_event e = exit_event(2, 0x7b, KVM_EXIT_UNTIMED);
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	v = find(&tbl, (struct shard_key){ .kind = SHARD_KVM_EXIT,
					   .tgid = TGID,
					   .tid = TID,
					   .a = 0x7b,
					   .b = 2,
					   .c = 2 });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 2);
	cr_assert_eq(hist_total(v), 0, "untimed exit went into the histogram");
	cr_assert_eq(v->hist_sum, 0);

	/* A timed one on the same key adds to the histogram only. */
	e.duration_ns = 2000;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(v->count, 3);
	cr_assert_eq(hist_total(v), 1);
	cr_assert_eq(v->hist[1], 1);
	cr_assert_eq(v->hist_sum, 2000);
}

Test(probes_decode, kvm_emulate)
{
	struct kvm_emulate_event e = { .h = hdr(EV_KVM_EMULATE, sizeof(e)), .vcpu_id = 9 };
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.failed = 7; /* any non-zero is "failed" = 1 */
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.failed = 1;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	v = find(&tbl,
		 (struct shard_key){
			 .kind = SHARD_KVM_EMULATE, .tgid = TGID, .tid = TID, .a = 0, .c = 9 });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 1);
	v = find(&tbl,
		 (struct shard_key){
			 .kind = SHARD_KVM_EMULATE, .tgid = TGID, .tid = TID, .a = 1, .c = 9 });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 2);
	cr_assert_eq(tbl.used, 2);
}

Test(probes_decode, kvm_wakeup_sums_halted_time)
{
	struct kvm_wakeup_event e = {
		.h = hdr(EV_KVM_WAKEUP, sizeof(e)),
		.vcpu_id = 0,
		.waited = 5,
		.valid = 3,
		.ns = 1000,
	};
	const struct shard_val *v;

	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.ns = 250000;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.waited = 0;
	e.valid = 0;
	e.ns = 77;
	cr_assert_eq(kvm_probe__handle(&tbl, &e.h, sizeof(e)), 0);

	v = find(&tbl, (struct shard_key){ .kind = SHARD_KVM_WAKEUP,
					   .tgid = TGID,
					   .tid = TID,
					   .a = 1,
					   .b = 1,
					   .c = 0 });
	cr_assert_not_null(v, "waited/valid not normalised to 1");
	cr_assert_eq(v->count, 2);
	cr_assert_eq(v->sum, 251000);
	v = find(&tbl, (struct shard_key){ .kind = SHARD_KVM_WAKEUP, .tgid = TGID, .tid = TID });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 1);
	cr_assert_eq(v->sum, 77);
	cr_assert_eq(tbl.used, 2);
}

Test(probes_decode, block_request)
{
	struct block_rq_event e = block_event(1, 4096, 150000);
	const struct shard_val *v;

	cr_assert_eq(block_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e = block_event(1, 65536, 900);
	e.h.tid = TID + 1; /* another thread of the same process: same entry */
	cr_assert_eq(block_probe__handle(&tbl, &e.h, sizeof(e)), 0);

	v = find(&tbl,
		 (struct shard_key){
			 .kind = SHARD_BLOCK, .tgid = TGID, .tid = 0, .a = 253, .b = 4, .c = 1 });
	cr_assert_not_null(v, "no SHARD_BLOCK entry keyed tgid/major/minor/op (tid 0)");
	cr_assert_eq(v->count, 2);
	cr_assert_eq(v->sum, 4096 + 65536);
	cr_assert_eq(v->hist[shard_hist_bucket(150000)], 1);
	cr_assert_eq(v->hist[0], 1);
	cr_assert_eq(hist_total(v), 2);
	cr_assert_eq(v->hist_sum, 150900);
	cr_assert_eq(tbl.used, 1);

	/* Another op or device: other entries. */
	e = block_event(0, 512, 100);
	cr_assert_eq(block_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e = block_event(1, 512, 100);
	e.minor = 5;
	cr_assert_eq(block_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	cr_assert_eq(tbl.used, 3);
}

Test(probes_decode, sched_delay_sums)
{
	struct sched_delay_event e = sched_event(TID, 1500);
	const struct shard_val *v;

	cr_assert_eq(sched_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e.delay_ns = 2500;
	cr_assert_eq(sched_probe__handle(&tbl, &e.h, sizeof(e)), 0);
	e = sched_event(TID + 1, 10);
	cr_assert_eq(sched_probe__handle(&tbl, &e.h, sizeof(e)), 0);

	v = find(&tbl, (struct shard_key){ .kind = SHARD_SCHED_DELAY, .tgid = TGID, .tid = TID });
	cr_assert_not_null(v);
	cr_assert_eq(v->count, 2);
	cr_assert_eq(v->sum, 4000);
	cr_assert_eq(hist_total(v), 0);
	v = find(&tbl,
		 (struct shard_key){ .kind = SHARD_SCHED_DELAY, .tgid = TGID, .tid = TID + 1 });
	cr_assert_not_null(v);
	cr_assert_eq(v->sum, 10);
	cr_assert_eq(tbl.used, 2);
}

/* An event buffer of the largest struct, its header set to type. */
union any_event {
	struct event_header h;
	struct kvm_userspace_exit_event ue;
	struct kvm_pio_event pio;
	struct kvm_mmio_event mmio;
	struct kvm_exit_event exit;
	struct kvm_emulate_event emu;
	struct kvm_wakeup_event wake;
	struct block_rq_event blk;
	struct sched_delay_event sd;
};

Test(probes_decode, short_events_refused)
{
	static const struct {
		uint16_t type;
		size_t size;
		probe_handler_fn fn;
	} cases[] = {
		{ EV_KVM_USERSPACE_EXIT, sizeof(struct kvm_userspace_exit_event),
		  kvm_probe__handle },
		{ EV_KVM_PIO, sizeof(struct kvm_pio_event), kvm_probe__handle },
		{ EV_KVM_MMIO, sizeof(struct kvm_mmio_event), kvm_probe__handle },
		{ EV_KVM_EXIT, sizeof(struct kvm_exit_event), kvm_probe__handle },
		{ EV_KVM_EMULATE, sizeof(struct kvm_emulate_event), kvm_probe__handle },
		{ EV_KVM_WAKEUP, sizeof(struct kvm_wakeup_event), kvm_probe__handle },
		{ EV_BLOCK_RQ, sizeof(struct block_rq_event), block_probe__handle },
		{ EV_SCHED_DELAY, sizeof(struct sched_delay_event), sched_probe__handle },
	};
	union any_event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.h = hdr(cases[i].type, cases[i].size - 1);
		cr_assert_eq(cases[i].fn(&tbl, &ev.h, cases[i].size - 1), -EINVAL,
			     "type %#x: %zu bytes accepted", cases[i].type, cases[i].size - 1);
		cr_assert_eq(cases[i].fn(&tbl, &ev.h, sizeof(ev.h)), -EINVAL,
			     "type %#x: a bare header accepted", cases[i].type);
		cr_assert(table_is_empty(&tbl), "type %#x: refused event touched the table",
			  cases[i].type);
		/* The exact size is accepted (so the refusals above were about size). */
		ev.h.size = cases[i].size;
		cr_assert_eq(cases[i].fn(&tbl, &ev.h, cases[i].size), 0, "type %#x", cases[i].type);
		cr_assert_eq(tbl.used, 1);
		shard_table__clear(&tbl);
	}
}

Test(probes_decode, wrong_types_refused)
{
	static const struct {
		uint16_t type;
		probe_handler_fn fn;
	} cases[] = {
		{ 0, kvm_probe__handle },
		{ 0x0100, kvm_probe__handle },
		{ 0x0107, kvm_probe__handle },
		{ EV_BLOCK_RQ, kvm_probe__handle },
		{ EV_SCHED_DELAY, kvm_probe__handle },
		{ EV_KVM_PIO, block_probe__handle },
		{ 0x0202, block_probe__handle },
		{ EV_SCHED_DELAY, block_probe__handle },
		{ EV_KVM_EXIT, sched_probe__handle },
		{ EV_BLOCK_RQ, sched_probe__handle },
		{ 0x0402, sched_probe__handle },
	};
	union any_event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.h = hdr(cases[i].type, sizeof(ev));
		cr_assert_eq(cases[i].fn(&tbl, &ev.h, sizeof(ev)), -EINVAL,
			     "case %zu: type %#x accepted", i, cases[i].type);
		cr_assert(table_is_empty(&tbl), "case %zu: type %#x touched the table", i,
			  cases[i].type);
	}
}

Test(probes_decode, full_table_counts_overflow)
{
	struct shard_table small;
	struct kvm_pio_event e;
	uint32_t port;

	cr_assert_eq(shard_table__init(&small, 16, -1), 0);
	for (port = 0; port < 12; port++) {
		e = pio_event(0, 0, port, 1);
		cr_assert_eq(kvm_probe__handle(&small, &e.h, sizeof(e)), 0);
	}
	cr_assert_eq(small.overflow, 0);
	e = pio_event(0, 0, 12, 1);
	/* A full table is not a decode error: the event is counted in overflow. */
	cr_assert_eq(kvm_probe__handle(&small, &e.h, sizeof(e)), 0);
	cr_assert_eq(small.overflow, 1);
	cr_assert_eq(small.used, 12);
	shard_table__destroy(&small);
}

/* ---- names ---- */

Test(probes_names, kvm_userspace_exit_reason)
{
	static const struct {
		uint32_t reason;
		const char *name;
	} cases[] = {
		{ 0, "unknown" },
		{ 1, "exception" },
		{ 2, "io" },
		{ 5, "hlt" },
		{ 6, "mmio" },
		{ 8, "shutdown" },
		{ 9, "fail_entry" },
		{ 17, "internal_error" },
		{ 24, "system_event" },
		{ 29, "x86_rdmsr" },
		{ 30, "x86_wrmsr" },
		{ 39, "memory_fault" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(kvm_userspace_exit_reason(cases[i].reason, buf, sizeof(buf)),
				 cases[i].name, "reason %u", cases[i].reason);

	cr_assert_str_eq(kvm_userspace_exit_reason(40, buf, sizeof(buf)), "unknown_40");
	cr_assert_str_eq(kvm_userspace_exit_reason(1000, buf, sizeof(buf)), "unknown_1000");
	cr_assert_str_eq(kvm_userspace_exit_reason(UINT32_MAX, buf, sizeof(buf)),
			 "unknown_4294967295");
	/* The unknown name is built in the caller's buffer, truncated to it. */
	cr_assert_eq(kvm_userspace_exit_reason(1000, buf, sizeof(buf)), buf);
	cr_assert_str_eq(kvm_userspace_exit_reason(1000, buf, 6), "unkno");
}

Test(probes_names, kvm_exit_reason_vmx)
{
	static const struct {
		uint32_t reason;
		const char *name;
	} cases[] = {
		{ 0, "exception_nmi" },
		{ 1, "external_interrupt" },
		{ 10, "cpuid" },
		{ 12, "hlt" },
		{ 28, "cr_access" },
		{ 30, "io_instruction" },
		{ 31, "msr_read" },
		{ 32, "msr_write" },
		{ 48, "ept_violation" },
		{ 49, "ept_misconfig" },
		{ 52, "preemption_timer" },
		{ 75, "notify" },
		/* Bit 31 (VM-entry failure) and other high bits: the basic reason. */
		{ 0x80000021u, "invalid_state" },
		{ (1u << 27) | 30, "io_instruction" },
		{ 0xffff0000u | 48, "ept_violation" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(kvm_exit_reason(1, cases[i].reason, buf, sizeof(buf)),
				 cases[i].name, "VMX reason %#x", cases[i].reason);

	/* Gaps in the table and reasons past it. */
	cr_assert_str_eq(kvm_exit_reason(1, 5, buf, sizeof(buf)), "unknown_5");
	cr_assert_str_eq(kvm_exit_reason(1, 76, buf, sizeof(buf)), "unknown_76");
	cr_assert_str_eq(kvm_exit_reason(1, 0xffff, buf, sizeof(buf)), "unknown_65535");
}

Test(probes_names, kvm_exit_reason_svm)
{
	static const struct {
		uint32_t reason;
		const char *name;
	} cases[] = {
		{ 0x00, "read_cr0" },	  { 0x08, "read_cr8" },	   { 0x10, "write_cr0" },
		{ 0x13, "write_cr3" },	  { 0x1f, "write_cr15" },  { 0x20, "read_dr0" },
		{ 0x27, "read_dr7" },	  { 0x30, "write_dr0" },   { 0x37, "write_dr7" },
		{ 0x40, "exception_0" },  { 0x45, "exception_5" }, { 0x4e, "exception_14" },
		{ 0x5f, "exception_31" }, { 0x60, "intr" },	   { 0x72, "cpuid" },
		{ 0x78, "hlt" },	  { 0x7b, "ioio" },	   { 0x7c, "msr" },
		{ 0x7f, "shutdown" },	  { 0x81, "vmmcall" },	   { 0x8e, "rdpru" },
		{ 0x400, "npf" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(kvm_exit_reason(2, cases[i].reason, buf, sizeof(buf)),
				 cases[i].name, "SVM exit code %#x", cases[i].reason);

	/* Gaps, codes past the table, and SVM_EXIT_ERR (-1). */
	cr_assert_str_eq(kvm_exit_reason(2, 0x66, buf, sizeof(buf)), "unknown_102");
	cr_assert_str_eq(kvm_exit_reason(2, 0x8f, buf, sizeof(buf)), "unknown_143");
	cr_assert_str_eq(kvm_exit_reason(2, 0x401, buf, sizeof(buf)), "unknown_1025");
	cr_assert_str_eq(kvm_exit_reason(2, UINT32_MAX, buf, sizeof(buf)), "unknown_4294967295");
	/* No VMX-style masking on SVM: 0x1007b is not ioio. */
	cr_assert_str_eq(kvm_exit_reason(2, 0x1007b, buf, sizeof(buf)), "unknown_65659");
}

Test(probes_names, kvm_exit_reason_unknown_isa)
{
	char buf[32];

	cr_assert_str_eq(kvm_exit_reason(0, 30, buf, sizeof(buf)), "unknown_30");
	cr_assert_str_eq(kvm_exit_reason(3, 0x7b, buf, sizeof(buf)), "unknown_123");
}

Test(probes_names, kvm_mmio_direction)
{
	cr_assert_str_eq(kvm_mmio_direction(0), "unsatisfied_read");
	cr_assert_str_eq(kvm_mmio_direction(1), "read");
	cr_assert_str_eq(kvm_mmio_direction(2), "write");
	cr_assert_str_eq(kvm_mmio_direction(3), "unknown");
	cr_assert_str_eq(kvm_mmio_direction(UINT32_MAX), "unknown");
}

Test(probes_names, block_op_name)
{
	static const struct {
		uint32_t op;
		const char *name;
	} cases[] = {
		{ 0, "read" },	       { 1, "write" },	      { 2, "flush" },
		{ 3, "discard" },      { 5, "secure_erase" }, { 7, "zone_append" },
		{ 9, "write_zeroes" }, { 10, "zone_open" },   { 11, "zone_close" },
		{ 12, "zone_finish" }, { 13, "zone_reset" },  { 15, "zone_reset_all" },
		{ 34, "drv_in" },      { 35, "drv_out" },     { 4, "op_4" },
		{ 8, "op_8" },	       { 36, "op_36" },	      { 255, "op_255" },
	};
	char buf[16];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(block_op_name(cases[i].op, buf, sizeof(buf)), cases[i].name,
				 "op %u", cases[i].op);
}

/* ---- worker_dispatch ---- */

static void assert_counters(const struct worker *w, const uint64_t *consumed, uint64_t errors)
{
	int s;

	for (s = 0; s < SOURCE_MAX; s++)
		cr_assert_eq(w->consumed[s], consumed[s],
			     "consumed[%d] = %" PRIu64 ", want %" PRIu64, s, w->consumed[s],
			     consumed[s]);
	cr_assert_eq(w->decode_errors, errors, "decode_errors = %" PRIu64 ", want %" PRIu64,
		     w->decode_errors, errors);
}

Test(probes_dispatch, good_events_counted_per_source)
{
	static struct worker w;
	struct kvm_pio_event pio = pio_event(1, 1, 0x70, 1);
	struct block_rq_event blk = block_event(0, 4096, 2000);
	struct sched_delay_event sd = sched_event(TID, 300);
	uint64_t want[SOURCE_MAX] = { 0 };

	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, sizeof(pio)), 0);
	want[SOURCE_KVM] = 1;
	assert_counters(&w, want, 0);
	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, sizeof(pio)), 0);
	cr_assert_eq(worker_dispatch(&w, &tbl, &blk, sizeof(blk)), 0);
	cr_assert_eq(worker_dispatch(&w, &tbl, &sd, sizeof(sd)), 0);
	want[SOURCE_KVM] = 2;
	want[SOURCE_BLOCK] = 1;
	want[SOURCE_SCHED] = 1;
	assert_counters(&w, want, 0);

	/* And the events reached the table given. */
	cr_assert_eq(tbl.used, 3);
	cr_assert_eq(find(&tbl, (struct shard_key){ .kind = SHARD_KVM_PIO,
						    .tgid = TGID,
						    .tid = TID,
						    .a = 0x70,
						    .b = 1,
						    .c = 1 })
			     ->count,
		     2);
	cr_assert_not_null(find(
		&tbl,
		(struct shard_key){ .kind = SHARD_BLOCK, .tgid = TGID, .a = 253, .b = 4, .c = 0 }));
	cr_assert_not_null(find(
		&tbl, (struct shard_key){ .kind = SHARD_SCHED_DELAY, .tgid = TGID, .tid = TID }));
}

Test(probes_dispatch, ring_sample_longer_than_event)
{
	static struct worker w;
	/* A sample may carry bytes past h->size (h->size < size is fine). */
	struct {
		struct sched_delay_event e;
		uint8_t tail[8];
	} ev = { .e = sched_event(TID, 1) };
	uint64_t want[SOURCE_MAX] = { [SOURCE_SCHED] = 1 };

	cr_assert_eq(worker_dispatch(&w, &tbl, &ev, sizeof(ev)), 0);
	assert_counters(&w, want, 0);
}

Test(probes_dispatch, truncated_events_are_errors)
{
	static struct worker w;
	struct kvm_pio_event pio = pio_event(1, 1, 0x70, 1);
	uint64_t none[SOURCE_MAX] = { 0 };

	/* Shorter than the header. */
	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, sizeof(struct event_header) - 1), 0);
	assert_counters(&w, none, 1);
	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, 0), 0);
	assert_counters(&w, none, 2);

	/* The header claims more than the ring delivered. */
	pio.h.size = sizeof(pio) + 1;
	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, sizeof(pio)), 0);
	assert_counters(&w, none, 3);
	pio.h.size = sizeof(pio);
	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, sizeof(pio) - 4), 0);
	assert_counters(&w, none, 4);

	/* A whole header but a short body: the decoder refuses it. */
	pio.h.size = sizeof(pio.h);
	cr_assert_eq(worker_dispatch(&w, &tbl, &pio, sizeof(pio.h)), 0);
	assert_counters(&w, none, 5);

	cr_assert(table_is_empty(&tbl), "a refused event reached the table");
}

Test(probes_dispatch, unknown_sources_are_errors)
{
	static const uint16_t types[] = { 0x0001, 0x0501, 0x0901, 0xff01, 0xffff };
	static struct worker w;
	union any_event ev;
	uint64_t none[SOURCE_MAX] = { 0 };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.h = hdr(types[i], sizeof(ev));
		cr_assert_eq(worker_dispatch(&w, &tbl, &ev, sizeof(ev)), 0);
		assert_counters(&w, none, i + 1);
	}
	cr_assert(table_is_empty(&tbl));
}

Test(probes_dispatch, net_source_has_no_handler)
{
	static struct worker w;
	union any_event ev;
	uint64_t none[SOURCE_MAX] = { 0 };

	memset(&ev, 0, sizeof(ev));
	ev.h = hdr(SOURCE_NET << 8 | 1, sizeof(ev));
	cr_assert_eq(worker_dispatch(&w, &tbl, &ev, sizeof(ev)), 0);
	assert_counters(&w, none, 1);
	cr_assert(table_is_empty(&tbl));
}

Test(probes_dispatch, wrong_type_within_source_is_error)
{
	static struct worker w;
	union any_event ev;
	uint64_t none[SOURCE_MAX] = { 0 };

	memset(&ev, 0, sizeof(ev));
	ev.h = hdr(0x01ff, sizeof(ev)); /* kvm source, no such kvm event */
	cr_assert_eq(worker_dispatch(&w, &tbl, &ev, sizeof(ev)), 0);
	ev.h = hdr(0x0202, sizeof(ev));
	cr_assert_eq(worker_dispatch(&w, &tbl, &ev, sizeof(ev)), 0);
	assert_counters(&w, none, 2);
	cr_assert(table_is_empty(&tbl));
}
