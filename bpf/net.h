/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI between bpf/net.bpf.c and userspace/probes/net.c.
 *
 * Packets are the hottest events on a host (millions per second), so they do
 * not go through the rings: they are pre-aggregated in a per-CPU hash keyed
 * by interface and direction, which userspace reads once per tick. Totals are
 * exact; the per-packet cost is one per-CPU hash lookup.
 */
#ifndef NOVAMON_BPF_NET_H
#define NOVAMON_BPF_NET_H

#include "events.h"

#define NET_DIR_RX 0
#define NET_DIR_TX 1
#define NET_IFNAMSIZ 16

struct net_key {
	__u32 netns; /* network namespace inode number */
	__u32 ifindex;
	__u32 dir; /* NET_DIR_* */
	__u32 pad;
};

/* Per CPU; userspace sums the CPUs. */
struct net_counts {
	__u64 packets;
	__u64 bytes;
	char name[NET_IFNAMSIZ]; /* the interface name when the entry was made */
};

#endif /* NOVAMON_BPF_NET_H */
