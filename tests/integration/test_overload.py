#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Overload: with the daemon stopped (SIGSTOP) and tiny rings, events are
produced faster than consumed. They must be counted as lost per CPU, and once
the daemon runs again, produced = consumed + lost exactly."""
import os
import signal

from harness import Daemon, LoopDevice, fail, need_bpf, value

READS = 3000


def totals(m):
    produced = value(m, "novamon_events_produced_total")
    lost = value(m, "novamon_events_lost_total")
    consumed = value(m, "novamon_events_total")
    return produced, consumed, lost


def main():
    need_bpf()
    # 4 KiB rings hold a few dozen events: a burst overflows them.
    with LoopDevice() as loop, Daemon("--ring-bytes", "4096", probes="block") as d:
        d.require_attached("block", ["block_rq_issue", "block_rq_complete"])
        d.wait_tick(1)
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            loop.direct_reads(READS)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        # Settle: other processes' I/O keeps producing block events, so some may
        # be in flight at a tick; wait for a tick where none are.
        for _ in range(30):
            d.wait_tick(1)
            produced, consumed, lost = totals(d.metrics())
            if produced == consumed + lost:
                break
        print(f"produced {produced}, consumed {consumed}, lost {lost}")
        if lost <= 0:
            fail("expected events to be lost with 4 KiB rings and a stopped reader")
        if produced != consumed + lost:
            fail(f"produced {produced} != consumed {consumed} + lost {lost}")
        if produced < READS:
            fail(f"produced {produced} < {READS} requests issued")
    print("ok")


if __name__ == "__main__":
    main()
