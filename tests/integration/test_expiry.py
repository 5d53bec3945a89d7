#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Memory stays bounded as objects come and go: the series of an interface
that disappeared expire after series_expire_seconds, and are counted."""
import os
import socket
import subprocess
import time

from harness import Daemon, fail, need_bpf, run, value

EXPIRE = 2


def main():
    need_bpf()
    tag = f"nx{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    try:
        run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        run(["ip", "addr", "add", "10.238.0.1/30", "dev", a])
        run(["ip", "link", "set", a, "up"])
        run(["ip", "link", "set", b, "up"])
        with Daemon(probes="net", config=Daemon.DEFAULT_CONFIG +
                    f"series_expire_seconds: {EXPIRE}\n") as d:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"x", ("10.238.0.2", 9))  # ARP for it: packets on both ends
            s.close()
            d.wait_tick(1)
            m = d.metrics()
            if value(m, "novamon_net_packets_total", interface=a) <= 0:
                fail(f"no packets counted on {a}")
            subprocess.run(["ip", "link", "del", a], check=True)
            deadline = time.time() + EXPIRE + 6
            while time.time() < deadline:
                d.wait_tick(1)
                m = d.metrics()
                left = [ls for (n, ls) in m if ("interface", a) in ls or ("interface", b) in ls]
                if not left:
                    break
            else:
                fail(f"series of deleted {a}/{b} still exported after {EXPIRE + 6} s: {left}")
            expired = value(m, "novamon_series_expired_total")
            print(f"series of {a}/{b} gone; novamon_series_expired_total {expired}")
            if expired < 2:
                fail(f"novamon_series_expired_total {expired}, want >= 2")
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)
    print("ok")


if __name__ == "__main__":
    main()
