#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A test guest driving /dev/kvm performs exactly N port writes: novamon counts
exactly N io userspace exits and N pio writes for that VM and vCPU."""
import json
import os
import subprocess

from harness import Daemon, fail, need_bpf, need_kvm, value

N = 20000
PORT = 0x10


def main():
    need_bpf()
    need_kvm()
    guest = os.environ["KVM_GUEST"]
    with Daemon(probes="kvm,sched") as d:
        d.require_attached("kvm", ["kvm_userspace_exit", "kvm_pio"])
        # --hold keeps the process alive until we close its stdin, so the
        # registry can still look it up when the tick resolves its events.
        p = subprocess.Popen([guest, "--exits", str(N), "--port", str(PORT), "--vcpu-thread",
                              "--hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            if not line:
                fail(f"kvm_guest printed nothing (exit {p.wait()})")
            res = json.loads(line)
            if res["io_exits"] != N:
                fail(f"kvm_guest itself saw {res['io_exits']} io exits, not {N}")
            vm = f"pid-{res['tgid']}"
            d.wait_tick(2)
            m = d.metrics()
        finally:
            p.stdin.close()
            p.wait()
        io = value(m, "novamon_kvm_userspace_exits_total", vm=vm, vcpu="0", reason="io")
        hlt = value(m, "novamon_kvm_userspace_exits_total", vm=vm, vcpu="0", reason="hlt")
        pio = value(m, "novamon_kvm_pio_total", vm=vm, vcpu="0", direction="write",
                    port=hex(PORT))
        print(f"{vm}: io exits {io}, hlt exits {hlt}, pio writes {pio}")
        if io != N:
            fail(f"expected exactly {N} io userspace exits for {vm} vcpu 0, got {io}")
        if pio != N:
            fail(f"expected exactly {N} pio writes to {hex(PORT)} for {vm} vcpu 0, got {pio}")
        if hlt != 1:
            fail(f"expected 1 hlt exit for {vm}, got {hlt}")
        if value(m, "novamon_vm_info", vm=vm) != 1:
            fail(f"{vm} missing from novamon_vm_info")
    print("ok")


if __name__ == "__main__":
    main()
