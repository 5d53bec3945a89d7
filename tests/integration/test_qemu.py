#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A qemu guest (qemu-system-x86_64 -enable-kvm, named with -name) shows up
under its VM name, with vCPU labels, in the KVM metrics and novamon_vm_info."""
import os
import shutil
import subprocess
import time
import uuid

from harness import Daemon, fail, need_bpf, need_kvm, skip

NAME = f"novamon-test-{os.getpid()}"


def main():
    need_bpf()
    need_kvm()
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    vm_uuid = str(uuid.uuid4())
    with Daemon(probes="kvm,sched") as d:
        d.require_attached("kvm", ["kvm_userspace_exit", "kvm_pio"])
        # SeaBIOS alone makes tens of thousands of exits; no disk, no display.
        q = subprocess.Popen([qemu, "-enable-kvm", "-name", f"guest={NAME},debug-threads=on",
                              "-uuid", vm_uuid, "-smp", "2", "-m", "64", "-nodefaults",
                              "-display", "none", "-serial", "null", "-monitor", "none"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 30
            seen = None
            while time.time() < deadline:
                if q.poll() is not None:
                    fail(f"qemu exited with {q.returncode}: {q.stderr.read()}")
                d.wait_tick(1)
                m = d.metrics()
                exits = [(dict(ls), v) for (n, ls), v in m.items()
                         if n == "novamon_kvm_userspace_exits_total" and ("vm", NAME) in ls]
                vcpus = {ls["vcpu"] for ls, _ in exits}
                info = [dict(ls) for (n, ls), _ in m.items()
                        if n == "novamon_vm_info" and ("vm", NAME) in ls]
                if exits and info and vcpus & {"0", "1"}:
                    seen = (exits, info, vcpus)
                    break
            if not seen:
                fail(f"qemu guest {NAME} did not appear with vCPU labels within 30 s")
            exits, info, vcpus = seen
            print(f"{NAME}: vcpus {sorted(vcpus)}, {sum(v for _, v in exits):.0f} userspace exits")
            if info[0].get("uuid") != vm_uuid:
                fail(f"novamon_vm_info uuid {info[0].get('uuid')} != {vm_uuid}")
            if info[0].get("pid") != str(q.pid):
                fail(f"novamon_vm_info pid {info[0].get('pid')} != {q.pid}")
            bad = vcpus - {"0", "1"}
            if bad:
                fail(f"unexpected vcpu labels {bad} (want 0 and 1)")
        finally:
            q.kill()
            q.wait()
    print("ok")


if __name__ == "__main__":
    main()
