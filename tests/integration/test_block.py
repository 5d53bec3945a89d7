#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A loop device on a file with exactly M O_DIRECT reads: novamon counts exactly
M read requests for that device, and M samples in its latency histogram."""
from harness import Daemon, LoopDevice, fail, need_bpf, value

M = 500


def main():
    need_bpf()
    with LoopDevice() as loop, Daemon(probes="block") as d:
        dev = loop.name
        d.require_attached("block", ["block_rq_issue", "block_rq_complete"])
        d.wait_tick(1)
        before = d.metrics()
        loop.direct_reads(M)
        d.wait_tick(2)
        after = d.metrics()

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        reqs = delta("novamon_block_requests_total", device=dev, op="read")
        hist = delta("novamon_block_request_duration_seconds_count", device=dev, op="read")
        inf = delta("novamon_block_request_duration_seconds_bucket", device=dev, op="read",
                    le="+Inf")
        nbytes = delta("novamon_block_bytes_total", device=dev, op="read")
        print(f"{dev}: requests {reqs}, histogram count {hist}, +Inf bucket {inf}, bytes {nbytes}")
        if reqs != M:
            fail(f"expected exactly {M} read requests on {dev}, got {reqs}")
        if hist != M or inf != M:
            fail(f"expected {M} latency samples on {dev}, got count {hist} and +Inf {inf}")
        if nbytes != M * LoopDevice.BS:
            fail(f"expected {M * LoopDevice.BS} bytes read on {dev}, got {nbytes}")
        if value(after, "novamon_block_request_duration_seconds_sum", device=dev, op="read") <= 0:
            fail("latency sum is not positive")
    print("ok")


if __name__ == "__main__":
    main()
