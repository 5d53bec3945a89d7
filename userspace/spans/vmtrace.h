/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmtrace: which trace covers VM X now. The span synthesizer publishes,
 * per VM process (tgid), the IDs of the span that covers its present: a
 * lifecycle operation while it runs ("vm start", "vm shutdown"), else the
 * VM's open "vm activity" period. The tick reads it to put exemplars on the
 * VM's samples, so that a metric spike leads to the trace.
 *
 * Data flows one way: spans writes (its own thread), the tick reads (its
 * own thread); neither knows the other. Every published span is one the
 * synthesizer will emit (when the operation ends or the period closes).
 * All functions accept a NULL board (no exemplars) and are thread safe.
 */
#ifndef NOVAMON_VMTRACE_H
#define NOVAMON_VMTRACE_H

#include <stdbool.h>
#include <stdint.h>

struct vmtrace_ref {
	uint8_t trace_id[16];
	uint8_t span_id[8];
};

struct vmtrace;

/* Returns an empty board, or NULL with errno set. */
struct vmtrace *vmtrace__new(void);
/* NULL is fine; returns NULL. */
struct vmtrace *vmtrace__free(struct vmtrace *b);

/*
 * The "vm activity" span of tgid for [start_ns, end_ns) (Unix ns). The
 * period before it stays known, for the samples of its last instants.
 */
void vmtrace__set_period(struct vmtrace *b, uint32_t tgid, const uint8_t *trace_id,
			 const uint8_t *span_id, uint64_t start_ns, uint64_t end_ns);
/* A lifecycle operation of tgid running since start_ns; it wins over periods. */
void vmtrace__begin_op(struct vmtrace *b, uint32_t tgid, const uint8_t *trace_id,
		       const uint8_t *span_id, uint64_t start_ns);
/* The operation of tgid ended (its span was emitted). */
void vmtrace__end_op(struct vmtrace *b, uint32_t tgid);
/* tgid is gone: forget its spans. */
void vmtrace__forget(struct vmtrace *b, uint32_t tgid);

/*
 * The span covering instant at_ns of VM tgid: its running operation if one
 * began by then, else the period holding at_ns. Returns false (out untouched)
 * when none does.
 */
bool vmtrace__covering(struct vmtrace *b, uint32_t tgid, uint64_t at_ns, struct vmtrace_ref *out);

/* Number of VMs on the board. */
unsigned int vmtrace__count(struct vmtrace *b);

#endif /* NOVAMON_VMTRACE_H */
