#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A veth pair into a network namespace with exactly K packets sent: K tx
packets on one end, K rx on the other (and the bytes match)."""
import os
import socket
import subprocess

from harness import Daemon, fail, need_bpf, run, value

K = 1000
PAYLOAD = 100


def sh(*cmd):
    run(list(cmd))


def main():
    need_bpf()
    tag = f"nm{os.getpid() % 100000}"
    ns, host_if, peer_if = f"{tag}ns", f"{tag}a", f"{tag}b"
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        sh("ip", "link", "set", peer_if, "netns", ns)
        # No IPv6 (router solicitations, DAD, MLD) and static neighbours (no ARP):
        # the only packets on the link are ours.
        for pre, ifname in (([], host_if), (["ip", "netns", "exec", ns], peer_if)):
            sh(*pre, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1")
        sh("ip", "addr", "add", "10.237.0.1/30", "dev", host_if)
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", "10.237.0.2/30", "dev", peer_if)
        host_mac = open(f"/sys/class/net/{host_if}/address").read().strip()
        peer_mac = run(["ip", "netns", "exec", ns, "cat",
                        f"/sys/class/net/{peer_if}/address"]).stdout.strip()
        sh("ip", "neigh", "add", "10.237.0.2", "lladdr", peer_mac, "dev", host_if, "nud", "permanent")
        sh("ip", "netns", "exec", ns, "ip", "neigh", "add", "10.237.0.1", "lladdr", host_mac,
           "dev", peer_if, "nud", "permanent")
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", peer_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

        with Daemon(probes="net") as d:
            d.require_attached("net", ["net_dev_xmit", "netif_receive_skb"])
            d.wait_tick(1)
            before = d.metrics()
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(K):
                s.sendto(b"x" * PAYLOAD, ("10.237.0.2", 9))  # discard port; no reply is sent
            s.close()
            d.wait_tick(2)
            after = d.metrics()

            def delta(name, **labels):
                return value(after, name, **labels) - value(before, name, **labels)

            tx = delta("novamon_net_packets_total", interface=host_if, direction="tx")
            rx = delta("novamon_net_packets_total", interface=peer_if, direction="rx")
            txb = delta("novamon_net_bytes_total", interface=host_if, direction="tx")
            rxb = delta("novamon_net_bytes_total", interface=peer_if, direction="rx")
            print(f"{host_if} tx {tx} ({txb} B), {peer_if} rx {rx} ({rxb} B)")
            if tx != K:
                fail(f"expected exactly {K} tx packets on {host_if}, got {tx}")
            if rx != K:
                fail(f"expected exactly {K} rx packets on {peer_if}, got {rx}")
            # tx counts the Ethernet frame, rx the frame after eth_type_trans pulled the header.
            if txb != K * (14 + 20 + 8 + PAYLOAD) or rxb != K * (20 + 8 + PAYLOAD):
                fail(f"unexpected byte counts: tx {txb}, rx {rxb}")
            # The peer end lives in another namespace and says so.
            peer = [ls for (n, ls) in after if n == "novamon_net_packets_total"
                    and ("interface", peer_if) in ls]
            if not any(dict(ls).get("netns") for ls in peer):
                fail(f"{peer_if} series carry no netns label: {peer}")
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print("ok")


if __name__ == "__main__":
    main()
