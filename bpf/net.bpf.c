// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Per-interface packets and bytes, both directions, aggregated in the kernel
 * (see net.h for why). tp_btf on net_dev_xmit (a successful transmit) and
 * netif_receive_skb (every packet entering the stack, NAPI or backlog).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "net.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* resized by userspace */
	__type(key, struct net_key);
	__type(value, struct net_counts);
} net_counts SEC(".maps");

/* Counted when the map is full: an interface we could not account. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} net_overflow SEC(".maps");

static __always_inline void count(struct net_device *dev, __u32 dir, __u64 bytes)
{
	struct net_key key = {
		.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum),
		.ifindex = BPF_CORE_READ(dev, ifindex),
		.dir = dir,
	};
	struct net_counts *c = bpf_map_lookup_elem(&net_counts, &key);
	__u32 zero = 0;
	__u64 *ovf;

	/* Atomic although per-CPU: receive (softirq) can interrupt transmit on this CPU. */
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, bytes);
		return;
	}

	struct net_counts init = { .packets = 1, .bytes = bytes };

	bpf_probe_read_kernel_str(init.name, sizeof(init.name), dev->name);
	if (!bpf_map_update_elem(&net_counts, &key, &init, BPF_NOEXIST))
		return;
	/* Raced with another CPU creating it: it exists now. */
	c = bpf_map_lookup_elem(&net_counts, &key);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, bytes);
		return;
	}
	ovf = bpf_map_lookup_elem(&net_overflow, &zero);
	if (ovf)
		__sync_fetch_and_add(ovf, 1);
}

SEC("tp_btf/net_dev_xmit")
int BPF_PROG(net_dev_xmit, struct sk_buff *skb, int rc, struct net_device *dev, unsigned int len)
{
	if (rc == 0 /* NETDEV_TX_OK */)
		count(dev, NET_DIR_TX, len);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(netif_receive_skb, struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	if (dev)
		count(dev, NET_DIR_RX, BPF_CORE_READ(skb, len));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
