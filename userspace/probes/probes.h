/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The four probe families. Each family's loader opens its skeleton, adopts
 * the shared rings, decides per program whether it can load here, loads and
 * attaches what it can (recording the rest in the probe report). Its decoder
 * turns one ring event into a shard update, and its naming functions give
 * the label vocabulary (exit reasons, ops) used when series are built.
 *
 * Decoders run on the per-event path: they validate the size, then do one
 * shard lookup-or-insert. They take no lock and allocate nothing.
 */
#ifndef NOVAMON_PROBES_H
#define NOVAMON_PROBES_H

#include <stddef.h>
#include <stdint.h>

struct event_header;
struct probe_env;
struct shard_table;

/* Decoder return: 0, or -EINVAL for an event of the wrong size or type. */
typedef int (*probe_handler_fn)(struct shard_table *t, const struct event_header *h, size_t size);

/* kvm: bpf/kvm.bpf.c */
struct kvm_probe;
int kvm_probe__open(struct probe_env *env, struct kvm_probe **out);
struct kvm_probe *kvm_probe__destroy(struct kvm_probe *p);
int kvm_probe__handle(struct shard_table *t, const struct event_header *h, size_t size);
/* fd of the tid -> vCPU id map (shared with sched), or -1. */
int kvm_probe__vcpu_map_fd(const struct kvm_probe *p);
/* "io", "mmio", "hlt", ...: KVM_EXIT_* in lower case; "unknown_<n>" (buf) otherwise. */
const char *kvm_userspace_exit_reason(uint32_t reason, char *buf, size_t len);
/* VMX/SVM hardware exit reason names as kvm_stat shows them, lower case. */
const char *kvm_exit_reason(uint32_t isa, uint32_t reason, char *buf, size_t len);
/* "read", "write" or "unsatisfied_read" for the kvm_mmio type. */
const char *kvm_mmio_direction(uint32_t type);

/* block: bpf/block.bpf.c */
struct block_probe;
int block_probe__open(struct probe_env *env, struct block_probe **out);
struct block_probe *block_probe__destroy(struct block_probe *p);
int block_probe__handle(struct shard_table *t, const struct event_header *h, size_t size);
/* "read", "write", "flush", "discard", ... for REQ_OP_*. */
const char *block_op_name(uint32_t op, char *buf, size_t len);

/* net: bpf/net.bpf.c (no ring events: per-CPU counters read each tick) */
struct net_probe;
struct net_key;
int net_probe__open(struct probe_env *env, struct net_probe **out);
struct net_probe *net_probe__destroy(struct net_probe *p);
/*
 * Call fn for every interface counter, the CPUs summed. Returns 0 or a
 * negative errno. *overflow gets the packets not counted (map full).
 */
int net_probe__read(struct net_probe *p,
		    void (*fn)(const struct net_key *key, const char *name, uint64_t packets,
			       uint64_t bytes, void *ctx),
		    void *ctx, uint64_t *overflow);
/* Delete the counter of key (an interface gone). */
int net_probe__forget(struct net_probe *p, const struct net_key *key);

/* sched: bpf/sched.bpf.c */
struct sched_probe;
int sched_probe__open(struct probe_env *env, struct sched_probe **out);
struct sched_probe *sched_probe__destroy(struct sched_probe *p);
int sched_probe__handle(struct shard_table *t, const struct event_header *h, size_t size);

#endif /* NOVAMON_PROBES_H */
