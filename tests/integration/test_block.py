#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A loop device on a file with exactly M O_DIRECT reads: novamon counts exactly
M read requests for that device, and M samples in its latency histogram."""
import mmap
import os
import tempfile

from harness import Daemon, fail, need_bpf, run, value

M = 500
BS = 4096


def main():
    need_bpf()
    backing = tempfile.NamedTemporaryFile(prefix="novamon-loop-", dir="/var/tmp", delete=False)
    backing.truncate(16 << 20)
    backing.close()
    loop = None
    try:
        loop = run(["losetup", "-f", "--show", backing.name]).stdout.strip()
        dev = os.path.basename(loop)
        with Daemon(probes="block") as d:
            d.require_attached("block", ["block_rq_issue", "block_rq_complete"])
            d.wait_tick(1)
            before = d.metrics()
            fd = os.open(loop, os.O_RDONLY | os.O_DIRECT)
            buf = mmap.mmap(-1, BS)  # page aligned, as O_DIRECT wants
            try:
                for i in range(M):
                    # Distinct offsets: each read is one request of BS bytes.
                    if os.preadv(fd, [buf], (i * BS) % (16 << 20)) != BS:
                        fail("short O_DIRECT read")
            finally:
                os.close(fd)
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
            if nbytes != M * BS:
                fail(f"expected {M * BS} bytes read on {dev}, got {nbytes}")
            if value(after, "novamon_block_request_duration_seconds_sum", device=dev, op="read") <= 0:
                fail("latency sum is not positive")
    finally:
        if loop:
            run(["losetup", "-d", loop])
        os.unlink(backing.name)
    print("ok")


if __name__ == "__main__":
    main()
